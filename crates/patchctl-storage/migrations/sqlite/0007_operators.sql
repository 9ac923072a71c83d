-- Operators (issue 13): users with a role in their organisation, dashboard sessions,
-- API tokens that belong to a user, and the append-only audit trail of operators.
-- Conventions as in 0001_init.sql: ids as text, times as unix milliseconds; only
-- hashes of secrets (Argon2id PHC strings for passwords, SHA-256 for the rest).

-- Usernames are unique on the whole platform (a login names no organisation); the
-- platform stores them lowercased.
CREATE TABLE users (
    id             TEXT    NOT NULL PRIMARY KEY,
    org_id         TEXT    NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    username       TEXT    NOT NULL UNIQUE,
    password_hash  TEXT    NOT NULL,
    role           TEXT    NOT NULL
        CHECK (role IN ('owner', 'admin', 'operator', 'viewer', 'auditor')),
    created_at     INTEGER NOT NULL,
    disabled_at    INTEGER
) STRICT;
CREATE INDEX users_org ON users (org_id, username);

-- A dashboard session: the SHA-256 of the cookie's secret. ended_at: logout, or the
-- user was disabled. Idle and absolute timeouts are checked by the platform against
-- last_seen_at and created_at.
CREATE TABLE sessions (
    id            TEXT    NOT NULL PRIMARY KEY,
    secret_hash   TEXT    NOT NULL UNIQUE,
    user_id       TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    org_id        TEXT    NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    created_at    INTEGER NOT NULL,
    last_seen_at  INTEGER NOT NULL,
    ended_at      INTEGER
) STRICT;
CREATE INDEX sessions_user ON sessions (user_id);

-- API tokens gain their user (NULL: the organisation's own token, which acts as an
-- owner), a scope, an expiry, a last-used time and a revocation time.
ALTER TABLE api_tokens ADD COLUMN user_id TEXT REFERENCES users (id) ON DELETE CASCADE;
ALTER TABLE api_tokens ADD COLUMN read_only INTEGER NOT NULL DEFAULT 0
    CHECK (read_only IN (0, 1));
ALTER TABLE api_tokens ADD COLUMN expires_at INTEGER;
ALTER TABLE api_tokens ADD COLUMN last_used_at INTEGER;
ALTER TABLE api_tokens ADD COLUMN revoked_at INTEGER;
CREATE INDEX api_tokens_user ON api_tokens (user_id);

-- The audit trail of operators: one row per state-changing request (and login,
-- logout), whatever its outcome. org_id NULL: a refusal no organisation can be named
-- for (an unknown token). target_json: the route's path parameters; details_json:
-- what the handler did, in structured form. Never a secret.
CREATE TABLE audit_log (
    seq            INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    org_id         TEXT,
    at             INTEGER NOT NULL,
    actor_kind     TEXT    NOT NULL,
    actor_id       TEXT,
    actor_name     TEXT    NOT NULL,
    actor_user_id  TEXT,
    peer           TEXT,
    method         TEXT    NOT NULL,
    route          TEXT    NOT NULL,
    action         TEXT    NOT NULL,
    target_json    TEXT    NOT NULL,
    details_json   TEXT    NOT NULL,
    status         INTEGER NOT NULL,
    outcome        TEXT    NOT NULL
        CHECK (outcome IN ('ok', 'refused', 'rejected', 'failed')),
    error_code     TEXT
) STRICT;
CREATE INDEX audit_log_org ON audit_log (org_id, seq);

-- Append-only: no row is ever changed or removed.
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit trail is append-only');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit trail is append-only');
END;
