-- Incidents (seed 004's `incidents`, with seed 002's collected data): opened from critical
-- alert groups or by hand; `status` open, acknowledged or resolved; `group_key` the alert
-- group that opened it (NULL for one opened by hand); `context` JSON (logs around the
-- start, metric snapshots of the alerts' expressions, related alerts); `postmortem` free
-- text. `incident_events` is the timeline: alerts firing and resolving, acknowledgements,
-- notes, actions, status changes, in `seq` order. Times are ms since the epoch.
CREATE TABLE incidents (
    tenant           TEXT NOT NULL,
    id               TEXT NOT NULL,
    title            TEXT NOT NULL,
    description      TEXT NOT NULL,
    status           TEXT NOT NULL,
    severity         TEXT NOT NULL,
    service_name     TEXT NOT NULL,
    group_key        TEXT,
    detected_at      BIGINT NOT NULL,
    acknowledged_at  BIGINT,
    acknowledged_by  TEXT,
    resolved_at      BIGINT,
    resolved_by      TEXT,
    postmortem       TEXT NOT NULL,
    context          TEXT NOT NULL,
    created_by       TEXT NOT NULL,
    updated_at       BIGINT NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX incidents_by_status ON incidents (tenant, status, detected_at);
CREATE INDEX incidents_by_group ON incidents (tenant, group_key);
CREATE TABLE incident_events (
    tenant    TEXT NOT NULL,
    incident  TEXT NOT NULL,
    seq       BIGINT NOT NULL,
    at        BIGINT NOT NULL,
    kind      TEXT NOT NULL,
    actor     TEXT NOT NULL,
    text      TEXT NOT NULL,
    data      TEXT NOT NULL,
    PRIMARY KEY (tenant, incident, seq)
);
