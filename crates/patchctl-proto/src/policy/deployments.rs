//! Deployments: a manifest applied to groups in ordered rings, gated on health.
//!
//! A deployment freezes its target hosts when it is created: the hosts of its groups,
//! ordered by a stable hash of (deployment, host) and cut into rings by cumulative
//! percentage (canary 5 % → 25 % → 100 %). A ring's hosts install the manifest's exact
//! versions for their ecosystem (`install_updates` with the deployment's reboot policy)
//! inside their maintenance window; the next ring starts only when every host of the
//! previous ring is **healthy** and stayed so through the ring's soak time:
//!
//! - the install succeeded;
//! - the agent heartbeats again (after the reboot, with a later boot time, if there was
//!   one);
//! - `health_check` passes;
//! - no systemd unit is failed that was not failed in the baseline `health_check` run
//!   before the install.
//!
//! A ring whose failed hosts exceed its threshold halts the deployment and says why.
//! Operators pause, resume and cancel. Every transition is kept and audited.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::command::RebootPolicy;

/// The most rings a deployment has.
pub const MAX_RINGS: usize = 10;
/// The longest soak time, in minutes (one week).
pub const MAX_SOAK_MINUTES: u32 = 7 * 24 * 60;

/// One ring of a deployment request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RingSpec {
    /// Name (`canary`, `early`, `all`); `ring-N` when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Cumulative share of the target hosts reached once this ring is done, 1–100;
    /// strictly increasing, and the last ring is 100. A ring always holds at least one
    /// host when any are left.
    pub percent: u8,
    /// The share of this ring's hosts that may fail before the deployment halts, 0–100
    /// (0: the first failure halts it).
    #[serde(default)]
    pub max_failed_percent: u8,
    /// Minutes every host of the ring must stay healthy before the next ring starts.
    #[serde(default = "default_soak")]
    pub soak_minutes: u32,
}

fn default_soak() -> u32 {
    10
}

/// `POST /api/v1/deployments`: deploy a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DeploymentRequest {
    /// Name, unique in the organisation.
    pub name: String,
    /// The manifest (name or id).
    pub manifest: String,
    /// The groups whose hosts take it (names or ids); a host in several counts once.
    pub groups: Vec<String>,
    /// The rings, in order. Left out: one ring of 100 %.
    #[serde(default)]
    pub rings: Vec<RingSpec>,
    /// Whether `install_updates` reboots a host that needs it (inside its window).
    #[serde(default)]
    pub reboot: RebootPolicy,
}

/// A deployment's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DeploymentState {
    /// Rings are being worked through.
    Running,
    /// An operator paused it: no new install starts; running ones finish.
    Paused,
    /// A ring failed beyond its threshold: nothing more is installed.
    Halted,
    /// Every ring passed.
    Completed,
    /// An operator cancelled it: nothing more is installed.
    Cancelled,
}

impl DeploymentState {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            DeploymentState::Running => "running",
            DeploymentState::Paused => "paused",
            DeploymentState::Halted => "halted",
            DeploymentState::Completed => "completed",
            DeploymentState::Cancelled => "cancelled",
        }
    }

    /// Whether no transition leaves this state.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            DeploymentState::Halted | DeploymentState::Completed | DeploymentState::Cancelled
        )
    }
}

/// A ring's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RingState {
    /// Waiting for the rings before it.
    Pending,
    /// Its hosts are installing (or waiting for their window).
    Active,
    /// Every host is healthy: soaking until the soak time has passed for all.
    Soaking,
    /// Done: the next ring may start.
    Passed,
    /// Its failures passed the threshold: the deployment halted here.
    Failed,
    /// The deployment stopped (halted or cancelled) before this ring finished.
    Skipped,
}

/// Where one host of a deployment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum HostStage {
    /// Its ring has not started.
    Pending,
    /// The baseline `health_check` is queued or running.
    Baseline,
    /// Waiting for its maintenance window to open.
    WaitingWindow,
    /// `install_updates` is queued or running.
    Installing,
    /// The install asked for a reboot: waiting for the agent to come back with a later
    /// boot time.
    Rebooting,
    /// The check after the install is queued or running.
    Verifying,
    /// Healthy, soaking.
    Soaking,
    /// Healthy through the soak time.
    Healthy,
    /// A gate failed (`detail` says which).
    Failed,
    /// Nothing of the manifest applies to it (no item for its ecosystem), or the
    /// deployment stopped before it started.
    Skipped,
}

impl HostStage {
    /// Whether the host is done (healthy, failed or skipped).
    pub fn is_done(self) -> bool {
        matches!(
            self,
            HostStage::Healthy | HostStage::Failed | HostStage::Skipped
        )
    }
}

/// Host counts of a ring, by stage.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StageCounts {
    /// Not started.
    pub pending: u64,
    /// Baseline, window, installing, rebooting or verifying.
    pub in_progress: u64,
    /// Healthy and soaking.
    pub soaking: u64,
    /// Healthy through the soak.
    pub healthy: u64,
    /// Failed.
    pub failed: u64,
    /// Skipped.
    pub skipped: u64,
}

/// One ring of a deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RingView {
    /// Position, from 0.
    pub index: u32,
    /// Name.
    pub name: String,
    /// Cumulative share of the target hosts.
    pub percent: u8,
    /// Failure threshold (share of the ring's hosts).
    pub max_failed_percent: u8,
    /// Soak time.
    pub soak_minutes: u32,
    /// State.
    pub state: RingState,
    /// Hosts in the ring.
    pub hosts: u64,
    /// By stage.
    pub counts: StageCounts,
    /// When it started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    /// When it passed or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
}

/// A deployment (`GET /api/v1/deployments/{deployment}`; the list leaves `rings`' host
/// counts as they are and is ordered newest first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeploymentView {
    /// Id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// The manifest.
    pub manifest_id: Uuid,
    /// Its name.
    pub manifest: String,
    /// The target groups' names.
    pub groups: Vec<String>,
    /// Reboot policy of its installs.
    pub reboot: RebootPolicy,
    /// State.
    pub state: DeploymentState,
    /// Why it halted (`ring canary: 1 of 1 hosts failed (threshold 0 %): web-1:
    /// install failed: ...`), or who cancelled it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The ring being worked on (index), while running or paused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_ring: Option<u32>,
    /// The rings.
    pub rings: Vec<RingView>,
    /// Target hosts.
    pub hosts: u64,
    /// Who created it.
    pub created_by: String,
    /// When.
    pub created_at: DateTime<Utc>,
    /// Last transition.
    pub updated_at: DateTime<Utc>,
}

/// One host of a deployment (`GET /api/v1/deployments/{deployment}/hosts`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeploymentHostView {
    /// The host.
    pub host_id: Uuid,
    /// Its name.
    pub hostname: String,
    /// Its ring (index).
    pub ring: u32,
    /// Where it stands.
    pub stage: HostStage,
    /// What happened last, for a person (`install failed: dpkg: error processing
    /// package foo`, `new failed unit: nginx.service`, `waiting for window sat-night`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Packages of the manifest it installs (its ecosystem's items).
    pub packages: u64,
    /// The `install_updates` command, once queued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub install_command: Option<Uuid>,
    /// When the stage last changed.
    pub updated_at: DateTime<Utc>,
}

/// A state change of a deployment, a ring or a host (`GET
/// /api/v1/deployments/{deployment}/events`), oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeploymentEvent {
    /// When.
    pub at: DateTime<Utc>,
    /// `deployment`, `ring` or `host`.
    pub subject: String,
    /// The ring's index, for ring and host events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ring: Option<u32>,
    /// The host, for host events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_id: Option<Uuid>,
    /// State before (wire name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// State after (wire name).
    pub to: String,
    /// Who (`user alice (cli)`, `platform`).
    pub by: String,
    /// Why, for a person.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `POST /api/v1/deployments/{deployment}/{pause|resume|cancel}`: an optional reason.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DeploymentAction {
    /// Why, kept with the transition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Checks a request's rings; the rings it stands for (one of 100 % when none given).
pub fn validate_rings(rings: &[RingSpec]) -> Result<Vec<RingSpec>, String> {
    if rings.is_empty() {
        return Ok(vec![RingSpec {
            name: Some("all".into()),
            percent: 100,
            max_failed_percent: 0,
            soak_minutes: default_soak(),
        }]);
    }
    if rings.len() > MAX_RINGS {
        return Err(format!(
            "{} rings given; a deployment has at most {MAX_RINGS}",
            rings.len()
        ));
    }
    let mut out = Vec::with_capacity(rings.len());
    let mut last = 0u8;
    for (i, r) in rings.iter().enumerate() {
        if r.percent == 0 || r.percent > 100 || r.percent <= last {
            return Err(format!(
                "ring {i}: percent {} must be between 1 and 100 and above the ring before \
                 ({last}); percentages are cumulative (5, 25, 100)",
                r.percent
            ));
        }
        if r.max_failed_percent > 100 {
            return Err(format!(
                "ring {i}: max_failed_percent {} is above 100",
                r.max_failed_percent
            ));
        }
        if r.soak_minutes > MAX_SOAK_MINUTES {
            return Err(format!(
                "ring {i}: soak_minutes {} is above {MAX_SOAK_MINUTES} (one week)",
                r.soak_minutes
            ));
        }
        let name = match &r.name {
            Some(n) => {
                let n = n.trim();
                if n.is_empty()
                    || n.len() > 64
                    || !n
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                {
                    return Err(format!(
                        "ring {i}: name {n:?} must be 1 to 64 letters, digits, '-', '_' or '.'"
                    ));
                }
                n.to_string()
            }
            None => format!("ring-{}", i + 1),
        };
        if out
            .iter()
            .any(|o: &RingSpec| o.name.as_deref() == Some(&name))
        {
            return Err(format!("ring {i}: name {name:?} is used twice"));
        }
        last = r.percent;
        out.push(RingSpec {
            name: Some(name),
            ..r.clone()
        });
    }
    if last != 100 {
        return Err(format!(
            "the last ring reaches {last} %; it must be 100 so that every host is covered"
        ));
    }
    Ok(out)
}

/// How many of `total` ordered hosts the rings end at: ring `i` holds hosts
/// `[ends[i-1], ends[i])`. Each ring takes at least one host while any are left.
pub fn ring_ends(total: u64, rings: &[RingSpec]) -> Vec<u64> {
    let mut ends = Vec::with_capacity(rings.len());
    let mut prev = 0u64;
    for r in rings {
        let want = (total * u64::from(r.percent)).div_ceil(100);
        let end = want.max((prev + 1).min(total)).min(total);
        ends.push(end);
        prev = end;
    }
    ends
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(p: u8) -> RingSpec {
        RingSpec {
            name: None,
            percent: p,
            max_failed_percent: 0,
            soak_minutes: 10,
        }
    }

    #[test]
    fn rings_are_cumulative_and_end_at_100() {
        assert!(validate_rings(&[ring(5), ring(25), ring(100)]).is_ok());
        assert!(validate_rings(&[ring(25), ring(5), ring(100)]).is_err());
        assert!(validate_rings(&[ring(5), ring(50)]).is_err());
        assert!(validate_rings(&[ring(0), ring(100)]).is_err());
        let one = validate_rings(&[]).unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].percent, 100);
        let named = validate_rings(&[ring(50), ring(100)]).unwrap();
        assert_eq!(named[0].name.as_deref(), Some("ring-1"));
    }

    #[test]
    fn every_ring_gets_a_host_while_any_are_left() {
        let rings = [ring(5), ring(25), ring(100)];
        assert_eq!(ring_ends(3, &rings), vec![1, 2, 3]);
        assert_eq!(ring_ends(100, &rings), vec![5, 25, 100]);
        assert_eq!(ring_ends(1, &rings), vec![1, 1, 1]);
        assert_eq!(ring_ends(0, &rings), vec![0, 0, 0]);
        assert_eq!(ring_ends(1000, &rings), vec![50, 250, 1000]);
    }
}
