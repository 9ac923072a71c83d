//! Hosts and their agents: enrollment, credentials (revocation, approval, rotation),
//! heartbeats (with the metrics history ring) and host listing ([`HostStore`]). The SQL
//! is in `sql/hosts.rs`.
//!
//! Enrollment ([`HostStore::enroll_host`]) counts the key's use and creates the host in
//! one transaction, with a conditional update of the key, so that concurrent
//! enrollments never pass a key's maximum of uses. A credential is looked up whatever
//! the host's standing ([`HostAuth`] says it), so that the platform can tell a revoked
//! credential from an unknown one. A rotation stores the next credential beside the
//! current one; the first use of the next one promotes it and the old one stops
//! working ([`HostStore::promote_credential`]).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use patchctl_proto::agent::{Metrics, SystemInfo};
use patchctl_proto::api::HostStatus;
use patchctl_proto::release::HostUpdateState;
use patchctl_proto::trust::Approval;
use uuid::Uuid;

use crate::error::{Result, StorageError};

/// A new host, as enrollment creates it.
#[derive(Debug, Clone)]
pub struct NewHost {
    /// Organisation (the enrollment key's).
    pub org_id: Uuid,
    /// The enrollment key used.
    pub enrollment_key_id: Uuid,
    /// SHA-256 (hex) of the agent's credential.
    pub credential_hash: String,
    /// The agent's version.
    pub agent_version: String,
    /// System identification sent at enrollment.
    pub system: SystemInfo,
    /// Enrollment time.
    pub now: DateTime<Utc>,
}

/// An enrollment: the presented key's hash and the host to create (see
/// [`HostStore::enroll_host`]).
#[derive(Debug, Clone)]
pub struct EnrollHost {
    /// SHA-256 (hex) of the enrollment key presented.
    pub key_hash: String,
    /// SHA-256 (hex) of the agent's new credential.
    pub credential_hash: String,
    /// The agent's version.
    pub agent_version: String,
    /// System identification sent at enrollment.
    pub system: SystemInfo,
    /// Enrollment time (the key's expiry is judged at this time).
    pub now: DateTime<Utc>,
}

/// Why an enrollment key enrolled nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRefusal {
    /// No key has this hash.
    Unknown,
    /// An operator revoked it.
    Revoked,
    /// Past its expiry.
    Expired,
    /// It enrolled its maximum number of hosts.
    Exhausted,
}

/// What [`HostStore::enroll_host`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Enrollment {
    /// The host was created and the key's use counted.
    Enrolled {
        /// The new host (pending when the organisation requires approval).
        host: Box<HostRow>,
        /// The key used.
        key_id: Uuid,
    },
    /// Nothing was written.
    Refused(KeyRefusal),
}

/// Which of a host's credentials a hash matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialSlot {
    /// The credential in use.
    Current,
    /// The next credential of a rotation, not used before: promote it
    /// ([`HostStore::promote_credential`]).
    Next,
}

/// Who an agent credential belongs to, and the host's standing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostAuth {
    /// Host id.
    pub host_id: Uuid,
    /// Organisation.
    pub org_id: Uuid,
    /// An operator revoked the host (or rejected it).
    pub revoked: bool,
    /// Approved, pending or rejected.
    pub approval: Approval,
    /// Which credential matched.
    pub slot: CredentialSlot,
}

impl HostAuth {
    /// The host may use the agent API: neither revoked nor waiting for approval.
    pub fn accepted(&self) -> bool {
        !self.revoked && self.approval == Approval::Approved
    }
}

/// What [`HostStore::set_approval`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalChange {
    /// The pending host is now approved (or rejected and revoked).
    Changed,
    /// The host is not pending (approved earlier, rejected or revoked): unchanged.
    NotPending,
    /// The organisation has no such host.
    NotFound,
}

/// A host as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct HostRow {
    /// Id.
    pub id: Uuid,
    /// Organisation.
    pub org_id: Uuid,
    /// Host name from the latest system identification.
    pub hostname: String,
    /// Latest system identification.
    pub system: SystemInfo,
    /// Agent version at the latest contact.
    pub agent_version: String,
    /// Enrollment time.
    pub enrolled_at: DateTime<Utc>,
    /// Latest heartbeat.
    pub last_seen: Option<DateTime<Utc>>,
    /// Credential revoked by an operator (a rejected host is revoked too).
    pub revoked: bool,
    /// Approved, pending or rejected.
    pub approval: Approval,
    /// When the credential in use was issued.
    pub credential_issued_at: DateTime<Utc>,
    /// Latest metrics.
    pub metrics: Option<Metrics>,
    /// When the latest metrics arrived.
    pub metrics_at: Option<DateTime<Utc>>,
    /// When the stored inventory was scanned.
    pub inventory_scanned_at: Option<DateTime<Utc>>,
    /// Package manager of the stored inventory.
    pub package_manager: Option<String>,
    /// Packages in the stored inventory.
    pub package_count: u64,
    /// Available updates the last scan reported.
    pub update_count: u64,
    /// Of those, the security updates.
    pub security_update_count: u64,
    /// The target triple the agent reported with its latest heartbeat.
    pub agent_target: Option<String>,
    /// The last step of its own update the agent reported
    /// ([`crate::ReleaseStore::record_update_events`]).
    pub agent_update: Option<HostUpdateState>,
    /// Whether it needs a reboot (why, since when) and when it last booted.
    pub boot: crate::reboots::HostBoot,
}

/// The order of a page of the host list ([`HostStore::host_list_page`]); ties are
/// broken by host name and id, so pages never overlap.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum HostSort {
    /// By host name.
    #[default]
    Name,
    /// Most recently seen first (never seen last).
    LastSeen,
    /// Most available updates first.
    Updates,
    /// Most security updates first.
    SecurityUpdates,
}

/// Which hosts a page of the host list shows ([`HostStore::host_list_page`]).
#[derive(Debug, Clone, Default)]
pub struct HostListQuery {
    /// Only hosts whose name contains this text (case-insensitive).
    pub search: Option<String>,
    /// Only hosts of this status.
    pub status: Option<patchctl_proto::api::HostStatus>,
    /// A host seen at or after this time is online (the caller's offline threshold).
    pub online_since: DateTime<Utc>,
    /// Only hosts whose package manager (the family: `apt`, `dnf`, ...) is this.
    pub package_manager: Option<String>,
    /// Order.
    pub sort: HostSort,
    /// Hosts skipped.
    pub offset: u64,
    /// Hosts returned at most.
    pub limit: u32,
}

/// One page of the host list, and how many hosts the query matches in all.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostListPage {
    /// The hosts of the page.
    pub hosts: Vec<HostRow>,
    /// Hosts matching the query.
    pub total: u64,
}

/// An organisation's hosts counted ([`HostStore::fleet_counts`]), for the fleet
/// overview.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FleetCounts {
    /// Approved hosts seen since the offline threshold (not revoked).
    pub online: u64,
    /// Approved hosts not seen since then (not revoked).
    pub offline: u64,
    /// Hosts waiting for approval (not revoked).
    pub pending: u64,
    /// Revoked (or rejected) hosts.
    pub revoked: u64,
    /// Available updates over the hosts not revoked.
    pub updates: u64,
    /// Of those, security updates.
    pub security_updates: u64,
    /// Hosts (not revoked) with at least one available update.
    pub hosts_with_updates: u64,
    /// Hosts (not revoked) with at least one security update.
    pub hosts_with_security_updates: u64,
    /// Agent versions of the hosts not revoked, with their counts, most common first.
    pub agent_versions: Vec<(String, u64)>,
}

/// One heartbeat to record (see [`HostStore::record_heartbeats`]).
#[derive(Debug, Clone)]
pub struct HeartbeatWrite {
    /// The host (already authenticated).
    pub host_id: Uuid,
    /// Agent version reported.
    pub agent_version: String,
    /// Target triple reported (none: the agent did not say).
    pub agent_target: Option<String>,
    /// Metrics reported.
    pub metrics: Metrics,
    /// Arrival time.
    pub at: DateTime<Utc>,
    /// What the agent said about reboots and its boot time (nothing: older agents).
    pub reboot: crate::reboots::RebootReport,
}

/// What recording a batch of heartbeats found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeartbeatOutcome {
    /// Hosts updated (distinct hosts of the batch that exist).
    pub updated: u64,
    /// Hosts of the batch that have queued or delivered commands, so that only they
    /// need [`CommandStore::lease_commands`] (which does not ask again).
    ///
    /// [`CommandStore::lease_commands`]: crate::CommandStore::lease_commands
    pub pending_commands: Vec<Uuid>,
}

/// How many hosts of one organisation have one status (see
/// [`HostStore::host_status_counts`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostStatusCount {
    /// Organisation.
    pub org_id: Uuid,
    /// The organisation's name.
    pub org: String,
    /// The status, as the host listing derives it.
    pub status: HostStatus,
    /// Hosts.
    pub count: u64,
}

/// How many hosts (not revoked) of one organisation run one agent version (see
/// [`HostStore::agent_version_counts`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentVersionCount {
    /// Organisation.
    pub org_id: Uuid,
    /// The organisation's name.
    pub org: String,
    /// The agent version as the agent reported it (any text).
    pub version: String,
    /// Hosts.
    pub count: u64,
}

/// Hosts, agent credentials, heartbeats and metrics history. Times are passed in (never
/// read from the clock inside).
#[async_trait]
pub trait HostStore: Send + Sync + 'static {
    /// Creates an approved host outright, without looking at or counting the
    /// enrollment key (set-up and benchmarks; agents enroll through
    /// [`HostStore::enroll_host`]).
    async fn create_host(&self, host: NewHost) -> Result<HostRow>;
    /// Enrolls a host with the key whose hash is given, in one transaction: the key's
    /// use is counted by a conditional update (not revoked, not expired at `now`, uses
    /// below the maximum), then the host is created, pending when the key's
    /// organisation requires approval. A key that does not qualify is
    /// [`Enrollment::Refused`] with the reason, and nothing is written.
    async fn enroll_host(&self, enroll: EnrollHost) -> Result<Enrollment>;
    /// The host one of whose credentials (current or next) has this hash, revoked and
    /// pending hosts included.
    async fn host_by_credential(&self, credential_hash: &str) -> Result<Option<HostAuth>>;
    /// Revokes a host's credentials and announces
    /// [`Change::Standing`](crate::Change::Standing) with it (on PostgreSQL inside the
    /// transaction); false, with nothing announced, when `org_id` has no such host.
    async fn revoke_host(&self, org_id: Uuid, host_id: Uuid) -> Result<bool>;
    /// Approves (`approve`) or rejects a pending host of `org_id`; a rejected host is
    /// also revoked. [`ApprovalChange::Changed`] is announced as
    /// [`Change::Standing`](crate::Change::Standing) with the write.
    async fn set_approval(
        &self,
        org_id: Uuid,
        host_id: Uuid,
        approve: bool,
    ) -> Result<ApprovalChange>;
    /// Stores `credential_hash` as the host's next credential, issued at `now`,
    /// replacing a next credential not used yet; false when the host does not exist.
    async fn stage_credential(
        &self,
        host_id: Uuid,
        credential_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<bool>;
    /// Makes the host's next credential, whose hash is `credential_hash`, the current
    /// one (the old one stops working); false when it is not the host's next
    /// credential (any more). A promotion is announced as
    /// [`Change::Standing`](crate::Change::Standing) with the write.
    async fn promote_credential(&self, host_id: Uuid, credential_hash: &str) -> Result<bool>;
    /// Records a heartbeat: last seen, agent version (the target triple becomes
    /// unknown), latest metrics, and the metrics history, a ring of `history_len`
    /// entries per host. An unknown host is an error.
    async fn record_heartbeat(
        &self,
        host_id: Uuid,
        agent_version: &str,
        metrics: &Metrics,
        now: DateTime<Utc>,
        history_len: u32,
    ) -> Result<()> {
        let w = HeartbeatWrite {
            host_id,
            agent_version: agent_version.to_owned(),
            agent_target: None,
            metrics: metrics.clone(),
            at: now,
            reboot: Default::default(),
        };
        let out = self
            .record_heartbeats(std::slice::from_ref(&w), history_len)
            .await?;
        if out.updated == 0 {
            return Err(StorageError::Database(sqlx::Error::RowNotFound));
        }
        Ok(())
    }
    /// Records many heartbeats in one transaction (group commit): what
    /// [`HostStore::record_heartbeat`] does for each, where for a host named twice the
    /// last entry wins. Unknown hosts are skipped (`updated` counts the others).
    async fn record_heartbeats(
        &self,
        batch: &[HeartbeatWrite],
        history_len: u32,
    ) -> Result<HeartbeatOutcome>;
    /// Drops metrics history beyond `history_len` entries per host (after the setting
    /// was lowered); returns the rows removed.
    async fn trim_metrics_history(&self, history_len: u32) -> Result<u64>;
    /// Hosts of an organisation, by host name.
    async fn list_hosts(&self, org_id: Uuid) -> Result<Vec<HostRow>>;
    /// One page of an organisation's hosts: filtered, sorted and cut in the database
    /// (the dashboard's host list; fleets of 100,000 hosts are never loaded whole).
    async fn host_list_page(&self, org_id: Uuid, query: &HostListQuery) -> Result<HostListPage>;
    /// An organisation's hosts counted by status, updates and agent version, in the
    /// database; a host seen at or after `online_since` is online.
    async fn fleet_counts(&self, org_id: Uuid, online_since: DateTime<Utc>) -> Result<FleetCounts>;
    /// The package managers of an organisation's hosts (the families the host list
    /// filters by), sorted.
    async fn host_package_managers(&self, org_id: Uuid) -> Result<Vec<String>>;
    /// One page of the hosts of an organisation, by host name then id: at most `limit`
    /// hosts that come after `after` (a host name and id, the last of the previous
    /// page; none: from the start).
    async fn list_hosts_page(
        &self,
        org_id: Uuid,
        after: Option<(String, Uuid)>,
        limit: u32,
    ) -> Result<Vec<HostRow>>;
    /// One host of an organisation.
    async fn host(&self, org_id: Uuid, host_id: Uuid) -> Result<Option<HostRow>>;
    /// Hosts of an organisation with this host name.
    async fn hosts_by_name(&self, org_id: Uuid, hostname: &str) -> Result<Vec<HostRow>>;
    /// The metrics history of a host of `org_id`, oldest first.
    async fn metrics_history(
        &self,
        org_id: Uuid,
        host_id: Uuid,
    ) -> Result<Vec<(DateTime<Utc>, Metrics)>>;
    /// Every non-revoked host of every organisation, by organisation, host name and id
    /// (for the correlation engine at start-up).
    async fn all_hosts(&self) -> Result<Vec<HostRow>>;
    /// Hosts per organisation and status, by one aggregate query (for `/metrics`):
    /// revoked, else pending approval, else online when the last heartbeat is at or
    /// after `online_since`, else offline (the host listing's rule). Only non-zero
    /// counts are returned.
    async fn host_status_counts(&self, online_since: DateTime<Utc>)
    -> Result<Vec<HostStatusCount>>;
    /// Hosts that are not revoked, per organisation and agent version, by one aggregate
    /// query (for `/metrics`).
    async fn agent_version_counts(&self) -> Result<Vec<AgentVersionCount>>;
}
