-- PatchCTL schema, PostgreSQL flavour. Shipped migrations are never edited; add a new file.
-- Conventions (shared with migrations/sqlite): ids are hyphenated UUIDs as TEXT,
-- times are unix milliseconds as BIGINT, JSON documents are TEXT, booleans are
-- BOOLEAN. Every integer is BIGINT so it decodes as a 64-bit value. Text that is
-- sorted on (host names; package names, versions and arches) uses the "C" collation,
-- so it sorts byte-wise exactly as SQLite's BINARY collation does.

CREATE TABLE orgs (
    id          TEXT    NOT NULL PRIMARY KEY,
    name        TEXT    NOT NULL UNIQUE,
    created_at  BIGINT  NOT NULL
);

CREATE TABLE api_tokens (
    id          TEXT    NOT NULL PRIMARY KEY,
    org_id      TEXT    NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name        TEXT    NOT NULL,
    token_hash  TEXT    NOT NULL UNIQUE,
    created_at  BIGINT  NOT NULL
);
CREATE INDEX api_tokens_org ON api_tokens (org_id);

CREATE TABLE enrollment_keys (
    id          TEXT    NOT NULL PRIMARY KEY,
    org_id      TEXT    NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name        TEXT    NOT NULL,
    key_hash    TEXT    NOT NULL UNIQUE,
    revoked     BOOLEAN NOT NULL DEFAULT FALSE,
    created_at  BIGINT  NOT NULL
);
CREATE INDEX enrollment_keys_org ON enrollment_keys (org_id);

CREATE TABLE hosts (
    id                    TEXT    NOT NULL PRIMARY KEY,
    org_id                TEXT    NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    enrollment_key_id     TEXT    REFERENCES enrollment_keys (id) ON DELETE SET NULL,
    credential_hash       TEXT    NOT NULL UNIQUE,
    revoked               BOOLEAN NOT NULL DEFAULT FALSE,
    hostname              TEXT    COLLATE "C" NOT NULL,
    system_json           TEXT    NOT NULL,
    agent_version         TEXT    NOT NULL,
    enrolled_at           BIGINT  NOT NULL,
    last_seen             BIGINT,
    metrics_json          TEXT,
    metrics_at            BIGINT,
    inventory_scanned_at  BIGINT,
    package_manager       TEXT,
    package_count         BIGINT  NOT NULL DEFAULT 0,
    heartbeat_count       BIGINT  NOT NULL DEFAULT 0
);
CREATE INDEX hosts_org_hostname ON hosts (org_id, hostname);
CREATE INDEX hosts_enrollment_key ON hosts (enrollment_key_id);

-- Ring buffer: slot = heartbeat_count % history_len, so at most history_len rows per
-- host; seq is the heartbeat's number (tie-break when two share a time).
CREATE TABLE metrics_history (
    host_id       TEXT    NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
    slot          BIGINT  NOT NULL,
    seq           BIGINT  NOT NULL,
    at            BIGINT  NOT NULL,
    metrics_json  TEXT    NOT NULL,
    PRIMARY KEY (host_id, slot)
);

CREATE TABLE packages (
    host_id         TEXT NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
    name            TEXT COLLATE "C" NOT NULL,
    version         TEXT COLLATE "C" NOT NULL,
    arch            TEXT COLLATE "C" NOT NULL,
    source_name     TEXT,
    source_version  TEXT,
    status          TEXT NOT NULL
);
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
    created_at   BIGINT  NOT NULL,
    updated_at   BIGINT  NOT NULL,
    expires_at   BIGINT  NOT NULL,
    lease_until  BIGINT,
    deliveries   BIGINT  NOT NULL DEFAULT 0,
    result_json  TEXT
);
CREATE INDEX commands_host_state ON commands (host_id, state, created_at);
CREATE INDEX commands_org_created ON commands (org_id, created_at);
CREATE INDEX commands_org_host_created ON commands (org_id, host_id, created_at);

CREATE TABLE command_events (
    id          BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    command_id  TEXT    NOT NULL REFERENCES commands (id) ON DELETE CASCADE,
    state       TEXT    NOT NULL,
    at          BIGINT  NOT NULL,
    detail      TEXT    NOT NULL
);
CREATE INDEX command_events_command ON command_events (command_id, id);
