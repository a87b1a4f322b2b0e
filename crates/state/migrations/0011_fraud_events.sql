-- Fraud findings (seed 004's `fraud_events`): one row per finding of the fraud detectors
-- (`dozor_detect::fraud`) on tracked sales and checked events. `subject` is who
-- (`user:<id>`, `card:<id>`, `ip:<address>`); `data` the event that revealed it (JSON);
-- `investigated` 0 or 1, with who closed it, when and with what `outcome`
-- (`confirmed`, `false_positive`, `inconclusive`) and a note.
CREATE TABLE fraud_events (
    tenant          TEXT NOT NULL,
    id              TEXT NOT NULL,
    user_id         TEXT NOT NULL,
    subject         TEXT NOT NULL,
    pattern         TEXT NOT NULL,
    risk_level      TEXT NOT NULL,
    reason          TEXT NOT NULL,
    at              BIGINT NOT NULL,
    data            TEXT NOT NULL,
    investigated    INTEGER NOT NULL,
    investigated_by TEXT NOT NULL,
    investigated_at BIGINT,
    outcome         TEXT NOT NULL,
    note            TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX fraud_events_by_time ON fraud_events (tenant, at);
CREATE INDEX fraud_events_by_user ON fraud_events (tenant, user_id);
CREATE INDEX fraud_events_open ON fraud_events (tenant, investigated, risk_level);
