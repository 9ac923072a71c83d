-- Maintenance windows (issue 14 §3): recurring windows per group, in a time zone.
-- Conventions as in 0001_init.sql: ids as text, times as unix milliseconds. The schedule
-- is stored as the operator wrote it (checked by the platform before it is stored):
-- days as `mon,tue` (empty: every day), the local start as `HH:MM`, an IANA zone name.
CREATE TABLE maintenance_windows (
    id                     TEXT    NOT NULL PRIMARY KEY,
    org_id                 TEXT    NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    group_id               TEXT    NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    name                   TEXT    NOT NULL CHECK (name <> ''),
    days                   TEXT    NOT NULL,
    start_local            TEXT    NOT NULL,
    timezone               TEXT    NOT NULL,
    duration_minutes       INTEGER NOT NULL CHECK (duration_minutes BETWEEN 1 AND 10080),
    min_remaining_minutes  INTEGER NOT NULL CHECK (min_remaining_minutes >= 0),
    missed_policy          TEXT    NOT NULL CHECK (missed_policy IN ('next_window', 'immediately')),
    created_by             TEXT    NOT NULL,
    created_at             INTEGER NOT NULL,
    updated_at             INTEGER NOT NULL,
    UNIQUE (org_id, name)
) STRICT;
CREATE INDEX maintenance_windows_group ON maintenance_windows (org_id, group_id, name);
