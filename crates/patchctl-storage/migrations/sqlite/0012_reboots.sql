-- Reboots (issue 14 §5): whether a host needs a reboot and why (the agent's reasons,
-- a JSON array of lines), since when the platform has known it (the first report of
-- the current spell), and when the host last booted (its agent's btime). Written by
-- the heartbeat group commit and by scans. The fleet-wide list of hosts needing a
-- reboot, longest waiting first, reads the partial index.
ALTER TABLE hosts ADD COLUMN reboot_required INTEGER NOT NULL DEFAULT 0 CHECK (reboot_required IN (0, 1));
ALTER TABLE hosts ADD COLUMN reboot_reasons_json TEXT;
ALTER TABLE hosts ADD COLUMN reboot_since INTEGER;
ALTER TABLE hosts ADD COLUMN booted_at INTEGER;
CREATE INDEX hosts_reboot ON hosts (org_id, reboot_since, id) WHERE reboot_required = TRUE;
