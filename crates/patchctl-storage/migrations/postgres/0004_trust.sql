-- Trust (issue 10): enrollment keys with a life cycle, host approval, credential
-- rotation and the organisation's settings. Conventions as in 0001_init.sql.

-- Enrollment keys: expiry, a maximum number of uses and the uses so far, when the key
-- was revoked, and the key a rotation replaced. `revoked` stays and is kept equal to
-- `revoked_at IS NOT NULL`.
ALTER TABLE enrollment_keys ADD COLUMN expires_at BIGINT;
ALTER TABLE enrollment_keys ADD COLUMN max_uses BIGINT CHECK (max_uses IS NULL OR max_uses >= 1);
ALTER TABLE enrollment_keys ADD COLUMN uses BIGINT NOT NULL DEFAULT 0;
ALTER TABLE enrollment_keys ADD COLUMN revoked_at BIGINT;
ALTER TABLE enrollment_keys ADD COLUMN rotated_from TEXT
    REFERENCES enrollment_keys (id) ON DELETE SET NULL;
-- Keys revoked before this migration: the time is unknown, the creation time stands in.
UPDATE enrollment_keys SET revoked_at = created_at WHERE revoked;
UPDATE enrollment_keys SET uses =
    (SELECT COUNT(*) FROM hosts WHERE hosts.enrollment_key_id = enrollment_keys.id);

-- Hosts: approval ('approved', 'pending', 'rejected'; a rejected host is also revoked),
-- when the credential in use was issued, and the next credential of a rotation (valid
-- beside the current one until it is first used, then it replaces it).
ALTER TABLE hosts ADD COLUMN approval TEXT NOT NULL DEFAULT 'approved'
    CHECK (approval IN ('approved', 'pending', 'rejected'));
ALTER TABLE hosts ADD COLUMN credential_issued_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE hosts ADD COLUMN next_credential_hash TEXT;
ALTER TABLE hosts ADD COLUMN next_credential_issued_at BIGINT;
UPDATE hosts SET credential_issued_at = enrolled_at;
CREATE UNIQUE INDEX hosts_next_credential ON hosts (next_credential_hash);

-- Organisation settings.
ALTER TABLE orgs ADD COLUMN require_approval BOOLEAN NOT NULL DEFAULT FALSE;
