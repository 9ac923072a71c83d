-- Signed releases and the agent's self-update (issue 11). Conventions as in
-- 0001_init.sql: ids as text, times as unix milliseconds.

-- Published releases, platform-wide (the public downloads know no organisation). A
-- (product, version, target) is immutable: publishing it again is accepted only with
-- the same artifact. `bundle_json` is the ReleaseBundle as published (the exact signed
-- texts), `artifact` the bytes the manifest describes.
CREATE TABLE releases (
    product       TEXT    NOT NULL,
    version       TEXT    NOT NULL,
    target        TEXT    NOT NULL,
    channel       TEXT    NOT NULL,
    sha256        TEXT    NOT NULL,
    size          INTEGER NOT NULL CHECK (size > 0),
    expires_at    INTEGER NOT NULL,
    bundle_json   TEXT    NOT NULL,
    artifact      BLOB    NOT NULL,
    published_at  INTEGER NOT NULL,
    published_by  TEXT    NOT NULL,
    PRIMARY KEY (product, version, target)
) STRICT;
CREATE INDEX releases_published ON releases (published_at);

-- The agent release an organisation's hosts should run (NULL: none offered), and the
-- canary share of hosts it is offered to (NULL: all).
CREATE TABLE agent_rollouts (
    org_id          TEXT    NOT NULL PRIMARY KEY REFERENCES orgs (id) ON DELETE CASCADE,
    version         TEXT,
    canary_percent  INTEGER CHECK (canary_percent IS NULL OR canary_percent BETWEEN 1 AND 100),
    updated_at      INTEGER NOT NULL,
    updated_by      TEXT    NOT NULL
) STRICT;

-- Hosts: the target triple the agent reports with its heartbeats, and the last step of
-- its own update it reported.
ALTER TABLE hosts ADD COLUMN agent_target TEXT;
ALTER TABLE hosts ADD COLUMN update_step TEXT;
ALTER TABLE hosts ADD COLUMN update_version TEXT;
ALTER TABLE hosts ADD COLUMN update_detail TEXT;
ALTER TABLE hosts ADD COLUMN update_at INTEGER;

-- Every update step the agents reported: `at` by the agent's clock, `received_at` by
-- the platform's.
CREATE TABLE agent_update_events (
    host_id      TEXT    NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
    seq          INTEGER NOT NULL,
    at           INTEGER NOT NULL,
    step         TEXT    NOT NULL,
    version      TEXT    NOT NULL,
    detail       TEXT,
    received_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX agent_update_events_host ON agent_update_events (host_id, received_at, seq);
