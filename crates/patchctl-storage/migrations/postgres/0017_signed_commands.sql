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
