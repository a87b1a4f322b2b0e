-- Reports (seed 004's report builder and workers): `definition` is the JSON the API checks
-- (sections with their queries, range, schedule, recipients, formats); `next_run_at` (ms) is
-- when the scheduler generates it next, NULL when not scheduled; `enabled` is 0 or 1.
CREATE TABLE reports (
    tenant      TEXT NOT NULL,
    id          TEXT NOT NULL,
    name        TEXT NOT NULL,
    definition  TEXT NOT NULL,
    enabled     INTEGER NOT NULL,
    next_run_at BIGINT,
    owner       TEXT NOT NULL,
    version     BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_by  TEXT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX reports_due ON reports (next_run_at);

-- Each generation of a report (seed 004's `report_history`): the rendered HTML and CSV,
-- what triggered it (`schedule` or `manual`), and its delivery: `status` is `generated`
-- (not to be sent), `pending` (the scheduler sends it), `delivered` or `failed` (`error`).
CREATE TABLE report_history (
    tenant       TEXT NOT NULL,
    id           TEXT NOT NULL,
    report_id    TEXT NOT NULL,
    report_name  TEXT NOT NULL,
    trigger_kind TEXT NOT NULL,
    generated_at BIGINT NOT NULL,
    range_start  BIGINT NOT NULL,
    range_end    BIGINT NOT NULL,
    status       TEXT NOT NULL,
    recipients   TEXT NOT NULL,
    error        TEXT NOT NULL,
    delivered_at BIGINT,
    html         TEXT NOT NULL,
    csv          TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX report_history_by_report ON report_history (tenant, report_id, generated_at);
CREATE INDEX report_history_by_status ON report_history (status);
