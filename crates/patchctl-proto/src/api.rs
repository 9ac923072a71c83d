//! The operator API (`/api/v1/...`, bearer token) as used by the CLI and dashboard.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::agent::{InstalledPackage, Metrics, SystemInfo};
use crate::command::{AvailableUpdate, CommandResult};

/// Error body of every non-2xx answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiErrorBody {
    /// What was wrong and, where there is something to do, what to do.
    pub error: String,
    /// Machine-readable reason ([`crate::trust::ErrorCode`]): a specific code where a
    /// client must tell answers apart, else the general code of the status
    /// (`not_found`, `bad_request`, ...). Always sent by this platform; absent from
    /// answers of older platforms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<crate::trust::ErrorCode>,
}

/// Whether a host is talking to the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum HostStatus {
    /// A heartbeat arrived within the last three intervals.
    Online,
    /// No heartbeat for three intervals or more.
    Offline,
    /// The host's credential was revoked (or an operator rejected it).
    Revoked,
    /// Enrolled, waiting for an operator's approval.
    Pending,
}

impl HostStatus {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            HostStatus::Online => "online",
            HostStatus::Offline => "offline",
            HostStatus::Revoked => "revoked",
            HostStatus::Pending => "pending",
        }
    }
}

/// One line of `hosts list`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HostSummary {
    /// Host id.
    pub id: Uuid,
    /// Host name as reported.
    pub hostname: String,
    /// Operating system (`PRETTY_NAME`).
    pub os: String,
    /// Online, offline, revoked or pending approval.
    pub status: HostStatus,
    /// Last heartbeat.
    pub last_seen: Option<DateTime<Utc>>,
    /// Agent version at the last heartbeat.
    pub agent_version: String,
    /// Packages in the stored inventory.
    pub packages: u64,
    /// Available updates the last scan reported.
    #[serde(default)]
    pub updates: u64,
    /// Of those, the security updates.
    #[serde(default)]
    pub security_updates: u64,
    /// When the host enrolled.
    pub enrolled_at: DateTime<Utc>,
    /// What vulnerability data covers the host's release, in words: `full CVE data
    /// (Red Hat:9)`, `no vulnerability data for CentOS Stream:9 (…)`, `security
    /// advisories only for Fedora:40: …`. Absent while the platform's correlation is
    /// still loading.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vulnerability_data: Option<String>,
    /// The last step of the agent's own update the host reported, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_update: Option<crate::release::HostUpdateState>,
}

/// `hosts show`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HostDetail {
    /// The summary.
    #[serde(flatten)]
    pub summary: HostSummary,
    /// System identification from the last scan.
    pub system: SystemInfo,
    /// Latest metrics.
    pub metrics: Option<Metrics>,
    /// When the latest metrics arrived.
    pub metrics_at: Option<DateTime<Utc>>,
    /// When the stored inventory was scanned.
    pub inventory_scanned_at: Option<DateTime<Utc>>,
    /// Package manager of the stored inventory.
    pub package_manager: Option<String>,
    /// When the agent credential in use was issued (enrollment or the latest
    /// rotation); absent from platforms before credential rotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_issued_at: Option<DateTime<Utc>>,
    /// Whether the host needs a reboot (and why, since when) and when it last booted;
    /// absent from platforms before reboot reporting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reboot: Option<crate::policy::reboot::HostReboot>,
}

/// `GET /api/v1/hosts/{host}/packages`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HostPackages {
    /// Host id.
    pub host_id: Uuid,
    /// When the inventory was scanned.
    pub scanned_at: Option<DateTime<Utc>>,
    /// The packages.
    pub packages: Vec<InstalledPackage>,
}

/// `GET /api/v1/hosts/{host}/updates`: the available updates as the host's last scan
/// reported them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HostUpdates {
    /// Host id.
    pub host_id: Uuid,
    /// When a scan last reported (or confirmed) these updates; `None` when the host
    /// never reported any (an agent that only uploads inventories, or one that found
    /// no package manager to ask).
    pub scanned_at: Option<DateTime<Utc>>,
    /// True when the repository metadata was refreshed before the updates were listed.
    pub refreshed: bool,
    /// Why the updates could not be listed or the metadata refreshed, when that
    /// happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The available updates, by name, architecture and candidate version.
    pub updates: Vec<AvailableUpdate>,
    /// Installed packages a full upgrade would remove.
    #[serde(default)]
    pub removals: Vec<String>,
    /// Number of available updates.
    pub update_count: u64,
    /// Number of those that are security updates.
    pub security_update_count: u64,
}

/// `POST /api/v1/commands`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QueueCommandRequest {
    /// Host id or host name.
    pub host: String,
    /// One of the four command kinds.
    pub kind: String,
    /// The command's parameters.
    #[serde(default)]
    pub params: serde_json::Value,
    /// Seconds after which an undelivered command expires (default one day).
    #[serde(default)]
    pub expires_in_secs: Option<u64>,
}

/// Life-cycle state of a queued command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CommandState {
    /// Waiting for the host's next heartbeat.
    Queued,
    /// Handed to the agent; leased until a result arrives or the lease runs out.
    Delivered,
    /// The agent reported success.
    Succeeded,
    /// The agent reported failure.
    Failed,
    /// The agent refused the command (not whitelisted, invalid parameters).
    Rejected,
    /// Not delivered before it expired.
    Expired,
    /// Cancelled by an operator before delivery.
    Cancelled,
}

impl CommandState {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            CommandState::Queued => "queued",
            CommandState::Delivered => "delivered",
            CommandState::Succeeded => "succeeded",
            CommandState::Failed => "failed",
            CommandState::Rejected => "rejected",
            CommandState::Expired => "expired",
            CommandState::Cancelled => "cancelled",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "queued" => CommandState::Queued,
            "delivered" => CommandState::Delivered,
            "succeeded" => CommandState::Succeeded,
            "failed" => CommandState::Failed,
            "rejected" => CommandState::Rejected,
            "expired" => CommandState::Expired,
            "cancelled" => CommandState::Cancelled,
            _ => return None,
        })
    }

    /// True once nothing more can happen to the command.
    pub fn is_terminal(self) -> bool {
        !matches!(self, CommandState::Queued | CommandState::Delivered)
    }
}

/// One state change of a command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CommandEvent {
    /// The state entered.
    pub state: CommandState,
    /// When.
    pub at: DateTime<Utc>,
    /// Why, when there is something to say.
    pub detail: String,
}

/// A command as the operator sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CommandRecord {
    /// Command id.
    pub id: Uuid,
    /// Host it is for.
    pub host_id: Uuid,
    /// Kind.
    pub kind: String,
    /// Parameters.
    pub params: serde_json::Value,
    /// Current state.
    pub state: CommandState,
    /// When it was queued.
    pub created_at: DateTime<Utc>,
    /// When it last changed state.
    pub updated_at: DateTime<Utc>,
    /// When an undelivered command expires.
    pub expires_at: DateTime<Utc>,
    /// How many times it was handed to the agent.
    pub deliveries: u32,
    /// The agent's result, once there is one.
    pub result: Option<CommandResult>,
    /// Every state change, oldest first.
    pub events: Vec<CommandEvent>,
}
