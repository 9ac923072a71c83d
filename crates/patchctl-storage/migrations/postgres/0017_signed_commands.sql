-- Signed commands (issue 15 §1).
--
-- commands.signed_json: the SignedDocument of the command's statement, signed by the
-- organisation's command-signing key when it was queued. NULL for a command queued
-- before signing existed (the agent refuses it as unsigned).
-- orgs.command_key: the organisation's current command-signing PUBLIC key
-- (`ed25519:<hex>`), recorded so that a platform node whose key file holds another key
-- refuses to start. The secret key is never in the database.
ALTER TABLE commands ADD COLUMN signed_json TEXT;
ALTER TABLE orgs ADD COLUMN command_key TEXT;

-- Approver signatures (the two-person rule): an approver's own signature over a
-- manifest's exact updates, as the approver's CLI made it (a SignedDocument). The
-- platform checked it against the organisation's approver list (signed by the command
-- key, kept in the key file) before storing; the agent checks it again.
CREATE TABLE manifest_approvals (
    manifest_id TEXT    NOT NULL REFERENCES manifests (id) ON DELETE CASCADE,
    org_id      TEXT    NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    key_id      TEXT    NOT NULL,
    approver    TEXT    NOT NULL,
    signed_json TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL,
    PRIMARY KEY (manifest_id, key_id)
);
