-- PatchCTL schema, SQLite flavour. Shipped migrations are never edited; add a new file.
-- Conventions (shared with migrations/postgres): ids are hyphenated UUIDs as TEXT,
-- times are unix milliseconds as INTEGER, JSON documents are TEXT, booleans are
-- INTEGER 0/1. Tables are STRICT so a wrongly typed write fails loudly.

CREATE TABLE orgs (
    id          TEXT    NOT NULL PRIMARY KEY,
    name        TEXT    NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE api_tokens (
    id          TEXT    NOT NULL PRIMARY KEY,
    org_id      TEXT    NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name        TEXT    NOT NULL,
    token_hash  TEXT    NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX api_tokens_org ON api_tokens (org_id);

CREATE TABLE enrollment_keys (
    id          TEXT    NOT NULL PRIMARY KEY,
    org_id      TEXT    NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name        TEXT    NOT NULL,
    key_hash    TEXT    NOT NULL UNIQUE,
    revoked     INTEGER NOT NULL DEFAULT 0 CHECK (revoked IN (0, 1)),
    created_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX enrollment_keys_org ON enrollment_keys (org_id);

CREATE TABLE hosts (
    id                    TEXT    NOT NULL PRIMARY KEY,
    org_id                TEXT    NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    enrollment_key_id     TEXT    REFERENCES enrollment_keys (id) ON DELETE SET NULL,
    credential_hash       TEXT    NOT NULL UNIQUE,
    revoked               INTEGER NOT NULL DEFAULT 0 CHECK (revoked IN (0, 1)),
    hostname              TEXT    NOT NULL,
    system_json           TEXT    NOT NULL,
    agent_version         TEXT    NOT NULL,
    enrolled_at           INTEGER NOT NULL,
    last_seen             INTEGER,
    metrics_json          TEXT,
    metrics_at            INTEGER,
    inventory_scanned_at  INTEGER,
    package_manager       TEXT,
    package_count         INTEGER NOT NULL DEFAULT 0,
    heartbeat_count       INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX hosts_org_hostname ON hosts (org_id, hostname);
CREATE INDEX hosts_enrollment_key ON hosts (enrollment_key_id);

-- Ring buffer: slot = heartbeat_count % history_len, so at most history_len rows per
-- host; seq is the heartbeat's number (tie-break when two share a time).
CREATE TABLE metrics_history (
    host_id       TEXT    NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
    slot          INTEGER NOT NULL,
    seq           INTEGER NOT NULL,
    at            INTEGER NOT NULL,
    metrics_json  TEXT    NOT NULL,
    PRIMARY KEY (host_id, slot)
) STRICT, WITHOUT ROWID;

CREATE TABLE packages (
    host_id         TEXT NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    version         TEXT NOT NULL,
    arch            TEXT NOT NULL,
    source_name     TEXT,
    source_version  TEXT,
    status          TEXT NOT NULL
) STRICT;
CREATE INDEX packages_host ON packages (host_id, name, arch);

CREATE TABLE commands (
    id           TEXT    NOT NULL PRIMARY KEY,
    org_id       TEXT    NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    host_id      TEXT    NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
    kind         TEXT    NOT NULL,
    params_json  TEXT    NOT NULL,
    state        TEXT    NOT NULL CHECK (state IN ('queued', 'delivered', 'succeeded',
                                                    'failed', 'rejected', 'expired',
                                                    'cancelled')),
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    lease_until  INTEGER,
    deliveries   INTEGER NOT NULL DEFAULT 0,
    result_json  TEXT
) STRICT;
CREATE INDEX commands_host_state ON commands (host_id, state, created_at);
CREATE INDEX commands_org_created ON commands (org_id, created_at);
CREATE INDEX commands_org_host_created ON commands (org_id, host_id, created_at);

CREATE TABLE command_events (
    id          INTEGER NOT NULL PRIMARY KEY,
    command_id  TEXT    NOT NULL REFERENCES commands (id) ON DELETE CASCADE,
    state       TEXT    NOT NULL,
    at          INTEGER NOT NULL,
    detail      TEXT    NOT NULL
) STRICT;
CREATE INDEX command_events_command ON command_events (command_id, id);
