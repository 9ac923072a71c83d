-- Operators (issue 13): users with a role in their organisation, dashboard sessions,
-- API tokens that belong to a user, and the append-only audit trail of operators.
-- Conventions as in 0001_init.sql: ids as text, times as unix milliseconds; only
-- hashes of secrets (Argon2id PHC strings for passwords, SHA-256 for the rest).

-- Usernames are unique on the whole platform (a login names no organisation); the
-- platform stores them lowercased.
CREATE TABLE users (
    id             TEXT    NOT NULL PRIMARY KEY,
    org_id         TEXT    NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    username       TEXT    COLLATE "C" NOT NULL UNIQUE,
    password_hash  TEXT    NOT NULL,
    role           TEXT    NOT NULL
        CHECK (role IN ('owner', 'admin', 'operator', 'viewer', 'auditor')),
    created_at     BIGINT  NOT NULL,
    disabled_at    BIGINT
);
CREATE INDEX users_org ON users (org_id, username);

-- A dashboard session: the SHA-256 of the cookie's secret. ended_at: logout, or the
-- user was disabled. Idle and absolute timeouts are checked by the platform against
-- last_seen_at and created_at.
CREATE TABLE sessions (
    id            TEXT    NOT NULL PRIMARY KEY,
    secret_hash   TEXT    NOT NULL UNIQUE,
    user_id       TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    org_id        TEXT    NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    created_at    BIGINT  NOT NULL,
    last_seen_at  BIGINT  NOT NULL,
    ended_at      BIGINT
);
CREATE INDEX sessions_user ON sessions (user_id);

-- API tokens gain their user (NULL: the organisation's own token, which acts as an
-- owner), a scope, an expiry, a last-used time and a revocation time.
ALTER TABLE api_tokens ADD COLUMN user_id TEXT REFERENCES users (id) ON DELETE CASCADE;
ALTER TABLE api_tokens ADD COLUMN read_only BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE api_tokens ADD COLUMN expires_at BIGINT;
ALTER TABLE api_tokens ADD COLUMN last_used_at BIGINT;
ALTER TABLE api_tokens ADD COLUMN revoked_at BIGINT;
CREATE INDEX api_tokens_user ON api_tokens (user_id);

-- The audit trail of operators: one row per state-changing request (and login,
-- logout), whatever its outcome. org_id NULL: a refusal no organisation can be named
-- for (an unknown token). target_json: the route's path parameters; details_json:
-- what the handler did, in structured form. Never a secret.
CREATE TABLE audit_log (
    seq            BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id         TEXT,
    at             BIGINT  NOT NULL,
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
    status         BIGINT  NOT NULL,
    outcome        TEXT    NOT NULL
        CHECK (outcome IN ('ok', 'refused', 'rejected', 'failed')),
    error_code     TEXT
);
CREATE INDEX audit_log_org ON audit_log (org_id, seq);

-- Append-only: no row is ever changed or removed.
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit trail is append-only';
END
$$;
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
