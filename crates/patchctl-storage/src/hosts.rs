//! Hosts and their agents: enrollment, credentials, heartbeats (with the metrics
//! history ring) and host listing ([`HostStore`]). The SQL is in `sql/hosts.rs`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use patchctl_proto::agent::{Metrics, SystemInfo};
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

/// Who an agent credential belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostAuth {
    /// Host id.
    pub host_id: Uuid,
    /// Organisation.
    pub org_id: Uuid,
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
    /// Credential revoked by an operator.
    pub revoked: bool,
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
}

/// One heartbeat to record (see [`HostStore::record_heartbeats`]).
#[derive(Debug, Clone)]
pub struct HeartbeatWrite {
    /// The host (already authenticated).
    pub host_id: Uuid,
    /// Agent version reported.
    pub agent_version: String,
    /// Metrics reported.
    pub metrics: Metrics,
    /// Arrival time.
    pub at: DateTime<Utc>,
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

/// Hosts, agent credentials, heartbeats and metrics history. Times are passed in (never
/// read from the clock inside).
#[async_trait]
pub trait HostStore: Send + Sync + 'static {
    /// Creates a host for a successful enrollment.
    async fn create_host(&self, host: NewHost) -> Result<HostRow>;
    /// The host whose (non-revoked) credential has this hash.
    async fn host_by_credential(&self, credential_hash: &str) -> Result<Option<HostAuth>>;
    /// Revokes a host's credential; false when `org_id` has no such host.
    async fn revoke_host(&self, org_id: Uuid, host_id: Uuid) -> Result<bool>;
    /// Records a heartbeat: last seen, agent version, latest metrics, and the metrics
    /// history, a ring of `history_len` entries per host. An unknown host is an error.
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
            metrics: metrics.clone(),
            at: now,
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
}
