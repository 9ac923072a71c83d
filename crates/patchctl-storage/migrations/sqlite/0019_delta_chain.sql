-- The scan deltas stored since the host's last full scan (issue 16 follow-up): counted
-- with the scan state, by every node together, and kept across restarts. `put_scan`
-- sets it in the write that stores the scan: 0 for a full state, + 1 for a delta.
ALTER TABLE hosts ADD COLUMN delta_chain INTEGER NOT NULL DEFAULT 0;
