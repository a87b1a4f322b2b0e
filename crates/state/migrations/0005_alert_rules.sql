-- Structured alert rules (seed 003's threshold, trend, anomaly and composite kinds) that
-- users manage through /api/v1/alerts/rules. `spec` is the rule as JSON, checked and
-- compiled by the rules engine, not here; `enabled` is 0 or 1; times are ms since the
-- epoch; `version` counts changes.
CREATE TABLE alert_rules (
    tenant      TEXT NOT NULL,
    id          TEXT NOT NULL,
    name        TEXT NOT NULL,
    spec        TEXT NOT NULL,
    enabled     INTEGER NOT NULL,
    version     BIGINT NOT NULL,
    created_by  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_by  TEXT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant, id)
);
