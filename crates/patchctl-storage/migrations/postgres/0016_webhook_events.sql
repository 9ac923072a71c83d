-- Webhook events the platform emits from its own sweeps (issue 14 §8).
--
-- deadline.missed: when the policy tick announced that a finding's remediation deadline
-- passed (once per finding: set together with queueing the event, in one transaction).
-- host.offline keeps using hosts.offline_event_seen (migration 0011).
ALTER TABLE finding_first_seen ADD COLUMN deadline_missed_at BIGINT;
