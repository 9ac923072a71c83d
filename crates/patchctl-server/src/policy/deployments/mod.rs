//! Deployments: a manifest applied to groups in ordered rings, gated on health (docs/
//! deployments.md). The service functions the API and the dashboard share (`create`,
//! `list`, `show`, `hosts`, `events`, `act`) and, in `advance`, the state machine the
//! policy tick runs for every running or paused deployment.
//!
//! Every transition of a deployment, a ring or a host is a `deployment_events` row;
//! deployment and ring transitions and host failures the tick makes are audit entries
//! too (actor `platform`); an operator's are audited by the route layer.

mod advance;

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use patchctl_proto::policy::deployments::{
    DeploymentEvent, DeploymentHostView, DeploymentRequest, DeploymentState, DeploymentView,
    HostStage, RingState, RingView, StageCounts, validate_rings,
};
use patchctl_proto::policy::groups::validate_group_name;
use patchctl_storage::{
    AuditActor, AuditOutcome, DeploymentRow, NewAuditEntry, NewDeployment, NewDeploymentHost,
    Progress, RingRow,
};
use serde::Serialize;
use uuid::Uuid;

pub use advance::{advance, advance_all};

use super::groups;
use crate::AppState;
use crate::access::Principal;
use crate::error::ApiError;

/// Who the platform's own transitions are by.
pub const PLATFORM: &str = "platform";

/// The wire name of a state.
pub(crate) fn wire<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// An event of the deployment itself.
pub(crate) fn deployment_event(
    at: DateTime<Utc>,
    from: Option<DeploymentState>,
    to: DeploymentState,
    by: &str,
    reason: Option<String>,
) -> DeploymentEvent {
    DeploymentEvent {
        at,
        subject: "deployment".into(),
        ring: None,
        host_id: None,
        from: from.map(|s| s.as_str().to_owned()),
        to: to.as_str().to_owned(),
        by: by.to_owned(),
        reason,
    }
}

/// An event of a ring.
pub(crate) fn ring_event(
    at: DateTime<Utc>,
    ring: u32,
    from: Option<RingState>,
    to: RingState,
    by: &str,
    reason: Option<String>,
) -> DeploymentEvent {
    DeploymentEvent {
        at,
        subject: "ring".into(),
        ring: Some(ring),
        host_id: None,
        from: from.map(|s| wire(&s)),
        to: wire(&to),
        by: by.to_owned(),
        reason,
    }
}

/// An audit entry of the platform's own (the tick's) about deployment `d`.
pub(crate) async fn audit_platform(
    st: &AppState,
    d: &DeploymentRow,
    action: &str,
    now: DateTime<Utc>,
    details: serde_json::Value,
) {
    crate::audit::append(
        st,
        NewAuditEntry {
            org_id: Some(d.org_id),
            at: now,
            actor: AuditActor {
                kind: PLATFORM.into(),
                id: None,
                name: PLATFORM.into(),
                user_id: None,
            },
            peer: None,
            method: "TICK".into(),
            route: "policy tick".into(),
            action: action.into(),
            target: serde_json::json!({"deployment": d.name, "deployment_id": d.id}),
            details,
            status: 200,
            outcome: AuditOutcome::Ok,
            error_code: None,
        },
    )
    .await;
}

fn no_deployment(reference: &str) -> ApiError {
    ApiError::not_found(format!(
        "no deployment {reference:?}; `patchctl deployments list` shows them"
    ))
}

/// The deployment `reference` names (id or name).
pub async fn find(st: &AppState, org: Uuid, reference: &str) -> Result<DeploymentRow, ApiError> {
    st.store
        .deployment(org, reference)
        .await?
        .ok_or_else(|| no_deployment(reference))
}

/// The view of `d`: its rings with host counts by stage (one grouped query).
pub async fn view(st: &AppState, d: &DeploymentRow) -> Result<DeploymentView, ApiError> {
    let rings = st.store.deployment_rings(d.id).await?;
    let counts = st.store.deployment_stage_counts(d.id).await?;
    let rings = rings
        .into_iter()
        .map(|r| {
            let mut c = StageCounts::default();
            for ((ring, stage), n) in &counts {
                if *ring != r.index {
                    continue;
                }
                let slot = match stage {
                    HostStage::Pending => &mut c.pending,
                    HostStage::Baseline
                    | HostStage::WaitingWindow
                    | HostStage::Installing
                    | HostStage::Rebooting
                    | HostStage::Verifying => &mut c.in_progress,
                    HostStage::Soaking => &mut c.soaking,
                    HostStage::Healthy => &mut c.healthy,
                    HostStage::Failed => &mut c.failed,
                    HostStage::Skipped => &mut c.skipped,
                };
                *slot += n;
            }
            RingView {
                index: r.index,
                name: r.name,
                percent: r.percent,
                max_failed_percent: r.max_failed_percent,
                soak_minutes: r.soak_minutes,
                state: r.state,
                hosts: c.pending + c.in_progress + c.soaking + c.healthy + c.failed + c.skipped,
                counts: c,
                started_at: r.started_at,
                finished_at: r.finished_at,
            }
        })
        .collect();
    Ok(DeploymentView {
        id: d.id,
        name: d.name.clone(),
        manifest_id: d.manifest_id,
        manifest: d.manifest_name.clone(),
        groups: d.groups.clone(),
        reboot: d.reboot,
        state: d.state,
        reason: d.reason.clone(),
        current_ring: d.current_ring,
        rings,
        hosts: d.host_count,
        created_by: d.created_by.clone(),
        created_at: d.created_at,
        updated_at: d.updated_at,
    })
}

/// The organisation's deployments, newest first.
pub async fn list(st: &AppState, org: Uuid) -> Result<Vec<DeploymentView>, ApiError> {
    let mut out = Vec::new();
    for d in st.store.list_deployments(org).await? {
        out.push(view(st, &d).await?);
    }
    Ok(out)
}

/// One deployment.
pub async fn show(st: &AppState, org: Uuid, reference: &str) -> Result<DeploymentView, ApiError> {
    view(st, &find(st, org, reference).await?).await
}

/// A deployment's hosts, by ring then hostname.
pub async fn hosts(
    st: &AppState,
    org: Uuid,
    reference: &str,
) -> Result<Vec<DeploymentHostView>, ApiError> {
    let d = find(st, org, reference).await?;
    Ok(st
        .store
        .deployment_hosts(d.id, None)
        .await?
        .into_iter()
        .map(|h| DeploymentHostView {
            host_id: h.host_id,
            hostname: h.hostname,
            ring: h.ring,
            stage: h.stage,
            detail: h.detail,
            packages: h.packages,
            install_command: h.install_command,
            updated_at: h.updated_at,
        })
        .collect())
}

/// A deployment's events, oldest first.
pub async fn events(
    st: &AppState,
    org: Uuid,
    reference: &str,
) -> Result<Vec<DeploymentEvent>, ApiError> {
    let d = find(st, org, reference).await?;
    Ok(st.store.deployment_events(d.id).await?)
}

/// The ecosystem of a host from the facts groups select on (the release's main
/// ecosystem, as [`super::approvals::host_ecosystem`] names it).
pub(crate) fn ecosystem_of(f: &patchctl_proto::policy::groups::HostFacts) -> String {
    let os = patchctl_proto::agent::OsInfo {
        id: f.os_id.clone(),
        id_like: f.os_like.clone(),
        version_id: f.os_version.clone(),
        version_codename: String::new(),
        pretty_name: String::new(),
    };
    patchctl_vuln::ecosystem::host_ecosystems(&os, false, None)
        .into_iter()
        .next()
        .unwrap_or_else(|| "unknown release".into())
}

/// Creates a deployment: the manifest and groups resolved, the union of the groups'
/// hosts ordered by a stable hash and cut into rings, each host's package count from
/// its ecosystem (none: skipped), ring 0 active.
pub async fn create(
    st: &AppState,
    by: &Principal,
    req: DeploymentRequest,
    now: DateTime<Utc>,
) -> Result<DeploymentView, ApiError> {
    validate_group_name(&req.name).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let rings = validate_rings(&req.rings).map_err(ApiError::bad_request)?;
    if req.groups.is_empty() {
        return Err(ApiError::bad_request(
            "groups: name at least one group whose hosts take the manifest",
        ));
    }
    let (manifest, items) = st
        .store
        .manifest(by.org_id, &req.manifest)
        .await?
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "no manifest {:?}; `patchctl manifests list` shows them",
                req.manifest
            ))
        })?;
    let mut targets = Vec::new();
    let mut names = Vec::new();
    for g in &req.groups {
        let group = groups::resolve(st, by.org_id, g).await?;
        if !names.contains(&group.name) {
            names.push(group.name.clone());
            targets.push(group);
        }
    }
    let facts = st.store.host_facts(by.org_id, None).await?;
    let mut seen = HashSet::new();
    let mut ecosystems: HashMap<Uuid, String> = HashMap::new();
    for f in &facts {
        if targets.iter().any(|g| g.selector.matches(&f.facts)) && seen.insert(f.host_id) {
            ecosystems.insert(f.host_id, ecosystem_of(&f.facts));
        }
    }
    if ecosystems.is_empty() {
        return Err(ApiError::bad_request(format!(
            "the groups {} hold no hosts; a deployment needs at least one",
            names.join(", ")
        )));
    }
    let mut per_ecosystem: HashMap<&str, u64> = HashMap::new();
    for i in &items {
        *per_ecosystem.entry(i.ecosystem.as_str()).or_default() += 1;
    }
    let id = Uuid::new_v4();
    let host_ids: Vec<Uuid> = ecosystems.keys().copied().collect();
    let label = by.label();
    let mut events = vec![
        deployment_event(now, None, DeploymentState::Running, &label, None),
        ring_event(now, 0, None, RingState::Active, &label, None),
    ];
    let hosts: Vec<NewDeploymentHost> =
        patchctl_policy::rollout::assign_rings(id, &host_ids, &rings)
            .into_iter()
            .map(|(host_id, ring)| {
                let eco = &ecosystems[&host_id];
                let packages = per_ecosystem.get(eco.as_str()).copied().unwrap_or(0);
                let (stage, detail) = if packages == 0 {
                    let why = format!("the manifest has nothing for {eco}");
                    events.push(DeploymentEvent {
                        at: now,
                        subject: "host".into(),
                        ring: Some(ring),
                        host_id: Some(host_id),
                        from: None,
                        to: wire(&HostStage::Skipped),
                        by: label.clone(),
                        reason: Some(why.clone()),
                    });
                    (HostStage::Skipped, Some(why))
                } else {
                    (HostStage::Pending, None)
                };
                NewDeploymentHost {
                    host_id,
                    ring,
                    stage,
                    detail,
                    packages,
                }
            })
            .collect();
    let row = DeploymentRow {
        id,
        org_id: by.org_id,
        name: req.name,
        manifest_id: manifest.id,
        manifest_name: manifest.name,
        groups: names,
        reboot: req.reboot,
        state: DeploymentState::Running,
        reason: None,
        current_ring: Some(0),
        host_count: hosts.len() as u64,
        created_by: label,
        created_at: now,
        updated_at: now,
    };
    let ring_rows = rings
        .iter()
        .enumerate()
        .map(|(i, r)| RingRow {
            index: i as u32,
            name: r.name.clone().unwrap_or_else(|| format!("ring-{}", i + 1)),
            percent: r.percent,
            max_failed_percent: r.max_failed_percent,
            soak_minutes: r.soak_minutes,
            state: if i == 0 {
                RingState::Active
            } else {
                RingState::Pending
            },
            started_at: (i == 0).then_some(now),
            finished_at: None,
        })
        .collect();
    st.store
        .create_deployment(&NewDeployment {
            deployment: row.clone(),
            rings: ring_rows,
            hosts,
            events,
        })
        .await?;
    tracing::info!(deployment = %row.name, hosts = row.host_count, "deployment created");
    view(st, &row).await
}

/// What an operator does to a deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Stop starting new work.
    Pause,
    /// Start new work again.
    Resume,
    /// Stop for good: pending hosts skipped, undelivered commands cancelled.
    Cancel,
}

impl Action {
    /// The verb, as the routes and the audit trail name it.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Pause => "pause",
            Action::Resume => "resume",
            Action::Cancel => "cancel",
        }
    }
}

/// Stages of hosts that have installed nothing yet: skipped when a deployment stops.
pub(crate) const NOT_STARTED: [HostStage; 3] = [
    HostStage::Pending,
    HostStage::Baseline,
    HostStage::WaitingWindow,
];

/// Pauses, resumes or cancels a deployment; 409 when its state does not allow it.
pub async fn act(
    st: &AppState,
    by: &Principal,
    reference: &str,
    action: Action,
    reason: Option<String>,
    now: DateTime<Utc>,
) -> Result<DeploymentView, ApiError> {
    let d = find(st, by.org_id, reference).await?;
    let reason = reason
        .map(|r| r.trim().chars().take(500).collect::<String>())
        .filter(|r| !r.is_empty());
    let to = match (action, d.state) {
        (Action::Pause, DeploymentState::Running) => DeploymentState::Paused,
        (Action::Resume, DeploymentState::Paused) => DeploymentState::Running,
        (Action::Cancel, DeploymentState::Running | DeploymentState::Paused) => {
            DeploymentState::Cancelled
        }
        (_, s) => {
            return Err(ApiError::conflict(format!(
                "deployment {:?} is {}; {} applies to {}",
                d.name,
                s.as_str(),
                action.as_str(),
                match action {
                    Action::Pause => "a running deployment",
                    Action::Resume => "a paused deployment",
                    Action::Cancel => "a running or paused deployment",
                }
            )));
        }
    };
    let label = by.label();
    let said = match (&reason, action) {
        (Some(r), Action::Cancel) => Some(format!("cancelled by {label}: {r}")),
        (None, Action::Cancel) => Some(format!("cancelled by {label}")),
        (Some(r), Action::Pause) => Some(format!("paused by {label}: {r}")),
        (None, Action::Pause) => Some(format!("paused by {label}")),
        (_, Action::Resume) => None,
    };
    let mut p = Progress {
        expect: Some(d.state),
        deployment: Some((
            to,
            said.clone(),
            if to == DeploymentState::Cancelled {
                None
            } else {
                d.current_ring
            },
        )),
        by: label.clone(),
        events: vec![deployment_event(now, Some(d.state), to, &label, reason)],
        now: Some(now),
        ..Progress::default()
    };
    if to == DeploymentState::Cancelled {
        for mut r in st.store.deployment_rings(d.id).await? {
            if matches!(
                r.state,
                RingState::Pending | RingState::Active | RingState::Soaking
            ) {
                p.events.push(ring_event(
                    now,
                    r.index,
                    Some(r.state),
                    RingState::Skipped,
                    &label,
                    said.clone(),
                ));
                r.state = RingState::Skipped;
                r.finished_at = Some(now);
                p.rings.push(r);
            }
        }
        p.skip = Some((NOT_STARTED.to_vec(), "the deployment was cancelled".into()));
        advance::cancel_undelivered(st, &d, &label, now, &mut p).await?;
    }
    if !st.store.save_progress(d.id, &p).await? {
        return Err(ApiError::conflict(format!(
            "deployment {:?} changed meanwhile; look again and retry",
            d.name
        )));
    }
    show(st, by.org_id, &d.id.to_string()).await
}
