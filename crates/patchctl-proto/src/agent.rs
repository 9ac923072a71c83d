//! Messages between the agent and the platform's agent API (`/api/v1/agent/...`).
//!
//! What the agent may send is exactly what PRODUCT.md lists: system identification
//! (hostname, IPs, OS), hardware (CPU, RAM, disk), package list and versions, update
//! availability, command results. There is deliberately no free-form map anywhere in
//! these types: a field that is not declared here cannot be sent.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Secret;
use crate::command::{CommandEnvelope, CommandResult};
pub use crate::package::InstalledPackage;
use crate::release::{AgentUpdateOffer, UpdateEvent};

/// `POST /api/v1/agent/enroll`: trade the license key for a per-agent credential.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EnrollRequest {
    /// The agent's [`crate::PROTOCOL_VERSION`].
    pub protocol_version: u32,
    /// The organisation's enrollment (license) key. Sent only here, only once.
    pub license_key: Secret,
    /// The agent's version.
    pub agent_version: String,
    /// Who is enrolling.
    pub system: SystemInfo,
}

/// Answer to [`EnrollRequest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EnrollResponse {
    /// The host's id on the platform.
    pub host_id: Uuid,
    /// The agent's own credential (≥256 random bits); the platform keeps only its hash.
    pub credential: Secret,
    /// The organisation's command-signing key: every command the agent runs must be
    /// signed by it (unless the agent's config pins another: strict mode). Absent from
    /// platforms before signed commands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command_key: Option<crate::signing::CommandKeyInfo>,
}

/// `POST /api/v1/agent/heartbeat`: "I am alive", with metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HeartbeatRequest {
    /// The agent's version: the signed release it runs, or its build's version.
    pub agent_version: String,
    /// Current metrics.
    pub metrics: Metrics,
    /// The Rust target triple the agent was built for, so that the platform offers
    /// an update built for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_target: Option<String>,
    /// Steps of the agent's own update since the last heartbeat the platform answered.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub update_events: Vec<UpdateEvent>,
    /// A new agent binary on trial proving that it reaches the platform: the platform
    /// records the heartbeat and leases no command (the trial exits right after).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub trial: bool,
    /// Whether the host asks for a reboot, and why, as the agent last found it (after
    /// its latest scan or install); absent from agents before reboot reporting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reboot: Option<RebootState>,
    /// When the host booted (`btime` of `/proc/stat`): a later value than the one the
    /// platform holds tells it that the host rebooted and is back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub booted_at: Option<DateTime<Utc>>,
    /// The id of the command-signing key the agent trusts now, so that the platform
    /// answers with the rotations that lead from it to the current key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command_key_id: Option<String>,
    /// The serial of the organisation's approver list the agent holds, so that the
    /// platform sends a newer one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approvers_serial: Option<u64>,
}

/// Whether a host asks for a reboot, and why (sent with heartbeats and scans).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RebootState {
    /// True when a reboot is needed to finish an update.
    pub required: bool,
    /// Why, one line each: `/run/reboot-required (linux-image-6.1.0-28-amd64)`,
    /// `needs-restarting -r: core libraries or services have been updated`,
    /// `kernel 6.1.0-28-amd64 (6.1.119-1) is installed, 6.1.0-26-amd64 runs`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
}

/// Answer to [`HeartbeatRequest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HeartbeatResponse {
    /// The platform's clock, for the agent's clock check.
    pub server_time: DateTime<Utc>,
    /// Commands to run, oldest first. Each is leased to this agent for a while and
    /// delivered again if no result arrives.
    pub commands: Vec<CommandEnvelope>,
    /// The release the organisation wants this agent to run, when it is not the one
    /// the heartbeat reported. Not a command: the agent's own life cycle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_update: Option<AgentUpdateOffer>,
    /// The organisation's command-signing key with the rotations that lead to it from
    /// the key the heartbeat reported, when that is not the current one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command_key: Option<crate::signing::CommandKeyInfo>,
}

/// `POST /api/v1/agent/commands/wait`: the agent's long-poll (issue 16). One outbound
/// request that the platform answers as soon as a command is queued for this host, or
/// with no command after `wait_secs` (cut to the platform's `long_poll_max_secs`). The
/// agent still opens no listening socket: it holds this request between heartbeats.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CommandWaitRequest {
    /// Longest the agent will wait for an answer, in seconds (0: answer at once).
    pub wait_secs: u32,
    /// The id of the command-signing key the agent knows, as in a heartbeat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command_key_id: Option<String>,
    /// The serial of the approver list the agent knows, as in a heartbeat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approvers_serial: Option<u64>,
}

/// Answer to [`CommandWaitRequest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CommandWaitResponse {
    /// The platform's clock.
    pub server_time: DateTime<Utc>,
    /// Commands to run, oldest first, leased as a heartbeat leases them; empty when the
    /// wait ended without one.
    pub commands: Vec<CommandEnvelope>,
    /// How long the platform waited at most for this request, in seconds (its
    /// `long_poll_max_secs` when that cut the agent's `wait_secs`; 0 when long-polling is
    /// switched off on the platform, and the agent then waits by sleeping).
    pub waited_max_secs: u32,
    /// The organisation's command-signing key with its rotations, as in a heartbeat
    /// answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command_key: Option<crate::signing::CommandKeyInfo>,
}

/// `POST /api/v1/agent/results`: outcomes of commands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ResultsUpload {
    /// The results; the platform records each once (by command id).
    pub results: Vec<CommandResult>,
}

/// Answer to [`ResultsUpload`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ResultsAck {
    /// Ids whose result is now stored (including ones stored before); the agent may
    /// forget them.
    pub stored: Vec<Uuid>,
}

/// `POST /api/v1/agent/inventory`: system identification and the package inventory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InventoryUpload {
    /// When the scan ran.
    pub scanned_at: DateTime<Utc>,
    /// System identification and hardware.
    pub system: SystemInfo,
    /// The package manager the inventory came from (`dpkg`, `rpm`), if any.
    pub package_manager: Option<String>,
    /// Every installed package.
    pub packages: Vec<InstalledPackage>,
}

/// Answer to [`InventoryUpload`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InventoryAck {
    /// Packages stored.
    pub packages: u64,
}

/// System identification and hardware, sent at enrollment and with every scan.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SystemInfo {
    /// Host name.
    pub hostname: String,
    /// IP addresses of the host's interfaces (loopback excluded).
    pub ips: Vec<String>,
    /// From `/etc/os-release`.
    pub os: OsInfo,
    /// Running kernel release (`uname -r`).
    pub kernel: String,
    /// Machine architecture (`x86_64`, `aarch64`).
    pub arch: String,
    /// CPU model name.
    pub cpu_model: String,
    /// Logical CPUs.
    pub cpu_count: u32,
    /// Physical memory in bytes.
    pub mem_total_bytes: u64,
    /// Mounted local file systems.
    pub disks: Vec<DiskUsage>,
    /// The tags of the agent's config (`tags`), which groups can select on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

/// The fields of `/etc/os-release` that identify a distribution release.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OsInfo {
    /// `ID` (`debian`, `ubuntu`, `almalinux`).
    pub id: String,
    /// `ID_LIKE`, split on whitespace.
    pub id_like: Vec<String>,
    /// `VERSION_ID` (`12`, `22.04`, `9.4`).
    pub version_id: String,
    /// `VERSION_CODENAME` (`bookworm`), when present.
    pub version_codename: String,
    /// `PRETTY_NAME`.
    pub pretty_name: String,
}

/// Metrics sent with each heartbeat.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Metrics {
    /// CPU busy percentage since the previous heartbeat (0–100).
    pub cpu_percent: f32,
    /// Load averages over 1, 5 and 15 minutes.
    pub load: [f32; 3],
    /// Memory in use (total − available), bytes.
    pub mem_used_bytes: u64,
    /// Physical memory, bytes.
    pub mem_total_bytes: u64,
    /// Swap in use, bytes.
    pub swap_used_bytes: u64,
    /// Swap, bytes.
    pub swap_total_bytes: u64,
    /// Usage of each local file system.
    pub disks: Vec<DiskUsage>,
    /// Seconds since boot.
    pub uptime_secs: u64,
}

/// Usage of one mounted file system.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DiskUsage {
    /// Mount point.
    pub mount: String,
    /// File system type (`ext4`, `xfs`).
    pub fs_type: String,
    /// Bytes in use.
    pub used_bytes: u64,
    /// Size in bytes.
    pub total_bytes: u64,
}
