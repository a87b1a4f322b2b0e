-- Alert history: one row per episode of an alert, from the evaluation that made it fire
-- to its resolution (by its condition clearing, or by a person), with who acknowledged
-- it. `id` is the alert's fingerprint (a hash of its labels, the API's alert id) and
-- the time it became active, so re-firing after a resolution is a new row.
CREATE TABLE alert_history (
    tenant           TEXT NOT NULL,
    id               TEXT NOT NULL,
    fingerprint      TEXT NOT NULL,
    rule             TEXT NOT NULL,
    rule_group       TEXT NOT NULL,
    severity         TEXT NOT NULL,
    service          TEXT NOT NULL,
    labels           TEXT NOT NULL,
    annotations      TEXT NOT NULL,
    value            DOUBLE PRECISION NOT NULL,
    active_ms        BIGINT NOT NULL,
    fired_ms         BIGINT NOT NULL,
    resolved_ms      BIGINT,
    resolved_by      TEXT,
    resolve_comment  TEXT,
    acked_ms         BIGINT,
    acked_by         TEXT,
    ack_comment      TEXT,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX alert_history_by_time ON alert_history (tenant, fired_ms);
CREATE INDEX alert_history_open ON alert_history (tenant, fingerprint, resolved_ms);
