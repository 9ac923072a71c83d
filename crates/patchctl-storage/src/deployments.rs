//! Deployments ([`DeploymentStore`]): a manifest applied to groups in ordered rings, its
//! frozen target hosts with their stage, and every transition as an event. The SQL is
//! in `sql/deployments.rs`.
//!
//! Creating a deployment writes the deployment, its rings, every host row and the first
//! events in one transaction with multi-row `INSERT`s (100,000 hosts plan in seconds on
//! SQLite). A tick's progress ([`Progress`]) is written in one transaction too, guarded
//! by the deployment's state so that an operator's pause or cancel and the tick cannot
//! both win.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use patchctl_proto::api::CommandState;
use patchctl_proto::command::{CommandResult, RebootPolicy};
use patchctl_proto::policy::deployments::{DeploymentEvent, DeploymentState, HostStage, RingState};
use uuid::Uuid;

use crate::error::Result;

/// A stored deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentRow {
    /// Id.
    pub id: Uuid,
    /// Its organisation.
    pub org_id: Uuid,
    /// Name, unique in the organisation.
    pub name: String,
    /// The manifest.
    pub manifest_id: Uuid,
    /// Its name when the deployment was made.
    pub manifest_name: String,
    /// The target groups' names.
    pub groups: Vec<String>,
    /// Reboot policy of its installs.
    pub reboot: RebootPolicy,
    /// State.
    pub state: DeploymentState,
    /// Why it halted, or who cancelled it.
    pub reason: Option<String>,
    /// The ring being worked on, while running or paused.
    pub current_ring: Option<u32>,
    /// Target hosts.
    pub host_count: u64,
    /// Who made it.
    pub created_by: String,
    /// When.
    pub created_at: DateTime<Utc>,
    /// Last transition.
    pub updated_at: DateTime<Utc>,
}

/// A stored ring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RingRow {
    /// Position, from 0.
    pub index: u32,
    /// Name.
    pub name: String,
    /// Cumulative share of the target hosts.
    pub percent: u8,
    /// Failure threshold.
    pub max_failed_percent: u8,
    /// Soak time.
    pub soak_minutes: u32,
    /// State.
    pub state: RingState,
    /// When it started.
    pub started_at: Option<DateTime<Utc>>,
    /// When it passed, failed or was skipped.
    pub finished_at: Option<DateTime<Utc>>,
}

/// One target host of a deployment, with what the engine remembers of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentHostRow {
    /// The host.
    pub host_id: Uuid,
    /// Its name (empty when the host is gone).
    pub hostname: String,
    /// Its ring.
    pub ring: u32,
    /// Where it stands.
    pub stage: HostStage,
    /// What happened last, for a person.
    pub detail: Option<String>,
    /// Packages of the manifest it installs.
    pub packages: u64,
    /// The baseline `health_check`.
    pub baseline_command: Option<Uuid>,
    /// Failed units of the baseline run; `None`: unknown (not run yet, or systemd could
    /// not be asked).
    pub baseline_failed_units: Option<Vec<String>>,
    /// The `install_updates` command.
    pub install_command: Option<Uuid>,
    /// The `health_check` after the install (or at the end of the soak).
    pub verify_command: Option<Uuid>,
    /// The boot time before a reboot it waits for.
    pub boot_before: Option<DateTime<Utc>>,
    /// When the stage last changed.
    pub stage_since: DateTime<Utc>,
    /// When it was first found healthy.
    pub healthy_since: Option<DateTime<Utc>>,
    /// Last change of the row.
    pub updated_at: DateTime<Utc>,
}

/// A host of a new deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDeploymentHost {
    /// The host.
    pub host_id: Uuid,
    /// Its ring.
    pub ring: u32,
    /// Its first stage (`pending`, or `skipped` when nothing applies to it).
    pub stage: HostStage,
    /// Why, for a skipped host.
    pub detail: Option<String>,
    /// Packages of the manifest it installs.
    pub packages: u64,
}

/// A deployment to create (see [`DeploymentStore::create_deployment`]).
#[derive(Debug, Clone)]
pub struct NewDeployment {
    /// The deployment (its `host_count` is the number of `hosts`).
    pub deployment: DeploymentRow,
    /// Its rings.
    pub rings: Vec<RingRow>,
    /// Its hosts.
    pub hosts: Vec<NewDeploymentHost>,
    /// Its first events.
    pub events: Vec<DeploymentEvent>,
}

/// A tick's (or an operator's) changes to one deployment, written in one transaction.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    /// Written only while the deployment is in this state (`None`: whatever it is).
    pub expect: Option<DeploymentState>,
    /// New state, reason and current ring of the deployment.
    pub deployment: Option<(DeploymentState, Option<String>, Option<u32>)>,
    /// Rings whose state or times changed (whole rows, by index).
    pub rings: Vec<RingRow>,
    /// Hosts whose row changed (whole rows; `hostname` is not written).
    pub hosts: Vec<DeploymentHostRow>,
    /// Every host still in one of these stages becomes `skipped` with this detail (an
    /// event each): `(stages, detail)`.
    pub skip: Option<(Vec<HostStage>, String)>,
    /// Who, for the events of `skip`.
    pub by: String,
    /// New events.
    pub events: Vec<DeploymentEvent>,
    /// When.
    pub now: Option<DateTime<Utc>>,
}

/// Where a command stands, as the engine reads it (in bulk).
#[derive(Debug, Clone, PartialEq)]
pub struct CommandOutcome {
    /// State.
    pub state: CommandState,
    /// When it was queued.
    pub created_at: DateTime<Utc>,
    /// When it last changed (the result's arrival, once there is one).
    pub updated_at: DateTime<Utc>,
    /// The agent's result.
    pub result: Option<CommandResult>,
}

/// Deployments, their rings, hosts and events.
#[async_trait]
pub trait DeploymentStore: Send + Sync {
    /// Stores a new deployment, its rings, hosts and first events in one transaction;
    /// a name the organisation uses already is a conflict.
    async fn create_deployment(&self, new: &NewDeployment) -> Result<()>;

    /// The organisation's deployments, newest first.
    async fn list_deployments(&self, org_id: Uuid) -> Result<Vec<DeploymentRow>>;

    /// One deployment, by id or name.
    async fn deployment(&self, org_id: Uuid, reference: &str) -> Result<Option<DeploymentRow>>;

    /// Every deployment (of every organisation) that is running or paused.
    async fn active_deployments(&self) -> Result<Vec<DeploymentRow>>;

    /// A deployment's rings, in order.
    async fn deployment_rings(&self, deployment_id: Uuid) -> Result<Vec<RingRow>>;

    /// Host counts per ring and stage, by one grouped query.
    async fn deployment_stage_counts(
        &self,
        deployment_id: Uuid,
    ) -> Result<HashMap<(u32, HostStage), u64>>;

    /// A deployment's hosts (of one ring when given), by ring then hostname.
    async fn deployment_hosts(
        &self,
        deployment_id: Uuid,
        ring: Option<u32>,
    ) -> Result<Vec<DeploymentHostRow>>;

    /// A deployment's events, oldest first.
    async fn deployment_events(&self, deployment_id: Uuid) -> Result<Vec<DeploymentEvent>>;

    /// Writes `progress` to deployment `deployment_id` in one transaction; `false` (and
    /// nothing written) when its state is not `progress.expect`.
    async fn save_progress(&self, deployment_id: Uuid, progress: &Progress) -> Result<bool>;

    /// Where each of `ids` (commands of `org_id`) stands, read in bulk; unknown ids are
    /// left out.
    async fn command_outcomes(
        &self,
        org_id: Uuid,
        ids: &[Uuid],
    ) -> Result<HashMap<Uuid, CommandOutcome>>;
}
