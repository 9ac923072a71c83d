//! Reboots ([`RebootStore`], issue 14 §5): the hosts that need a reboot, fleet-wide,
//! and the boot state of hosts (what the rollout engine asks to tell that a host came
//! back after its reboot). The state itself lives on `hosts` (migration 0012), written
//! by the heartbeat group commit ([`crate::HostStore::record_heartbeats`]) and by
//! scans ([`RebootStore::record_reboot_state`]). The SQL is in `sql/reboots.rs`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::Result;

/// A host's reboot and boot state as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostBoot {
    /// The agent last reported that the host needs a reboot.
    pub reboot_required: bool,
    /// Why, as the agent said it.
    pub reasons: Vec<String>,
    /// When the platform first heard of the current need (none when none).
    pub since: Option<DateTime<Utc>>,
    /// When the host last booted, as its agent reported it.
    pub booted_at: Option<DateTime<Utc>>,
}

/// What an agent reported about reboots (with a heartbeat or a scan).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RebootReport {
    /// Whether the host needs a reboot, and why; `None`: the agent did not say (an
    /// older agent), the stored need stays.
    pub required: Option<(bool, Vec<String>)>,
    /// When the host booted; `None`: not reported, the stored time stays.
    pub booted_at: Option<DateTime<Utc>>,
}

/// One host of the fleet-wide list of hosts needing a reboot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RebootLine {
    /// Host id.
    pub host_id: Uuid,
    /// Host name.
    pub hostname: String,
    /// The `PRETTY_NAME` of its system.
    pub os: String,
    /// Last heartbeat.
    pub last_seen: Option<DateTime<Utc>>,
    /// Its reboot state (`reboot_required` is true).
    pub boot: HostBoot,
}

/// What the rollout engine reads of a host after its install: is it back, and did it
/// reboot ([`RebootStore::host_boot_state`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostBootState {
    /// Host id.
    pub host_id: Uuid,
    /// Last heartbeat.
    pub last_seen: Option<DateTime<Utc>>,
    /// When the host last booted.
    pub booted_at: Option<DateTime<Utc>>,
    /// The agent last reported that it needs a reboot.
    pub reboot_required: bool,
}

/// Most reasons kept per host, and longest reason kept, in characters.
pub const MAX_REASONS: usize = 32;
/// Longest reason kept, in characters.
pub const MAX_REASON_CHARS: usize = 500;

/// Reasons cut to what is stored: at most [`MAX_REASONS`], each at most
/// [`MAX_REASON_CHARS`] characters.
pub fn bounded_reasons(reasons: &[String]) -> Vec<String> {
    reasons
        .iter()
        .take(MAX_REASONS)
        .map(|r| r.chars().take(MAX_REASON_CHARS).collect())
        .collect()
}

/// Hosts needing a reboot, and the boot state of hosts. Times are passed in.
#[async_trait]
pub trait RebootStore: Send + Sync + 'static {
    /// Records what an agent's scan said about reboots (the heartbeat's report goes
    /// through the group commit instead). A need that starts now gets `since = now`;
    /// one that goes on keeps its `since`; none clears it. False when there is no such
    /// host.
    async fn record_reboot_state(
        &self,
        host_id: Uuid,
        report: &RebootReport,
        now: DateTime<Utc>,
    ) -> Result<bool>;
    /// One page of `org_id`'s hosts (not revoked) that need a reboot, longest waiting
    /// first (by `since`, then id), after `after` (the last of the previous page), at
    /// most `limit`; and how many there are in all.
    async fn reboot_page(
        &self,
        org_id: Uuid,
        after: Option<(DateTime<Utc>, Uuid)>,
        limit: u32,
    ) -> Result<(Vec<RebootLine>, u64)>;
    /// Hosts of `org_id` (not revoked) that need a reboot.
    async fn reboot_count(&self, org_id: Uuid) -> Result<u64>;
    /// The last heartbeat, boot time and reboot need of each of `host_ids` that
    /// `org_id` has (others are left out), in the order asked.
    async fn host_boot_state(&self, org_id: Uuid, host_ids: &[Uuid]) -> Result<Vec<HostBootState>>;
}
