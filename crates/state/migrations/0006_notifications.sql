-- Notifications (crates/alerting): silences as Alertmanager's API shows them (`matchers` a
-- JSON array of {name, value, isRegex, isEqual}); the notification log, one row per alert
-- group with the fingerprints its last notification carried (JSON arrays), so a restart
-- does not announce again what was announced; and the delivery log, one row per call of a
-- receiver's integration with its outcome. Times are ms since the epoch.
CREATE TABLE silences (
    tenant      TEXT NOT NULL,
    id          TEXT NOT NULL,
    matchers    TEXT NOT NULL,
    starts_at   BIGINT NOT NULL,
    ends_at     BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    created_by  TEXT NOT NULL,
    comment     TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE TABLE notification_log (
    tenant      TEXT NOT NULL,
    group_key   TEXT NOT NULL,
    firing      TEXT NOT NULL,
    resolved    TEXT NOT NULL,
    sent_at     BIGINT NOT NULL,
    PRIMARY KEY (tenant, group_key)
);
CREATE TABLE notification_deliveries (
    tenant       TEXT NOT NULL,
    id           TEXT NOT NULL,
    at           BIGINT NOT NULL,
    receiver     TEXT NOT NULL,
    integration  TEXT NOT NULL,
    group_key    TEXT NOT NULL,
    alerts       BIGINT NOT NULL,
    status       TEXT NOT NULL,
    attempts     BIGINT NOT NULL,
    error        TEXT,
    duration_ms  BIGINT NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX notification_deliveries_by_time ON notification_deliveries (tenant, at);
