-- Package scans (POST /api/v1/agent/scan): the digest of the stored scan state, the
-- available updates as the agent reported them, and a queryable index of those updates.
-- Conventions as in 0001_init.sql.

-- scan_digest: ScanState::digest of the stored state; NULL when unknown (never scanned,
-- or stored by a v1 inventory upload), so that a delta against it is refused.
-- updates_json: the ScanUpdates as stored; NULL when none were reported.
-- updates_scanned_at: when a scan last reported (or confirmed) the stored updates.
ALTER TABLE hosts ADD COLUMN scan_digest TEXT;
ALTER TABLE hosts ADD COLUMN updates_json TEXT;
ALTER TABLE hosts ADD COLUMN update_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE hosts ADD COLUMN security_update_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE hosts ADD COLUMN updates_scanned_at INTEGER;

-- The same updates as updates_json, one row each, written in the same transaction.
CREATE TABLE available_updates (
    host_id            TEXT    NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
    name               TEXT    NOT NULL CHECK (name <> ''),
    arch               TEXT    NOT NULL,
    current_version    TEXT,
    candidate_version  TEXT    NOT NULL,
    security           INTEGER NOT NULL CHECK (security IN (0, 1)),
    origins_json       TEXT    NOT NULL,
    advisories_json    TEXT    NOT NULL
) STRICT;
CREATE INDEX available_updates_host ON available_updates (host_id, name, arch);
