-- Dashboards of the UI's builder (seed 004's `dashboards`): `widgets` (the panels),
-- `layout` (their places) and `settings` (time range, refresh, variables) are JSON the API
-- checks, not here; `shared` is 0 or 1 (shared: every user of the tenant sees it); times
-- are ms since the epoch; `version` counts changes.
CREATE TABLE dashboards (
    tenant      TEXT NOT NULL,
    id          TEXT NOT NULL,
    name        TEXT NOT NULL,
    description TEXT NOT NULL,
    widgets     TEXT NOT NULL,
    layout      TEXT NOT NULL,
    settings    TEXT NOT NULL,
    owner       TEXT NOT NULL,
    shared      INTEGER NOT NULL,
    version     BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_by  TEXT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX dashboards_by_owner ON dashboards (tenant, owner);
CREATE INDEX dashboards_by_name ON dashboards (tenant, name);
