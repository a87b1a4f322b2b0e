-- Anomaly events (seed 001's `anomaly_events`): one row per firing of an alert whose
-- labels carry `anomaly_type`, with seed 001's columns. Types are the ones both engines
-- speak: `timestamp` in ms since the epoch, `is_alert` 0 or 1, `tags` (the alert's
-- labels) and `metrics` (its value and rule) as JSON text. `id` is the alert episode's.
CREATE TABLE anomaly_events (
    tenant         TEXT NOT NULL,
    id             TEXT NOT NULL,
    timestamp      BIGINT NOT NULL,
    is_alert       INTEGER NOT NULL,
    alert_type     TEXT NOT NULL,
    alert_level    TEXT NOT NULL,
    alert_title    TEXT NOT NULL,
    alert_message  TEXT NOT NULL,
    user_id        TEXT,
    tags           TEXT NOT NULL,
    metrics        TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX anomaly_events_by_time ON anomaly_events (tenant, timestamp);
