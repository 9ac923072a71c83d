//! The per-tick state machine of a deployment: the active ring's hosts move through
//! baseline check → window → install → (reboot) → verify → soak → healthy, or fail a
//! gate; a ring passes when all its hosts are done, fails past its threshold (the
//! deployment halts, later rings and hosts are skipped), and the next ring starts.
//!
//! One tick reads the ring's hosts, their commands and boot states in bulk (a handful
//! of queries for any number of hosts), queues what is due and writes every change in
//! one guarded transaction. A paused deployment queues nothing new but keeps reading
//! results.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use patchctl_policy::rollout::{baseline_gate, health_gate, threshold_exceeded};
use patchctl_proto::api::CommandState;
use patchctl_proto::command::{
    Command, CommandResult, HealthReport, InstallUpdatesParams, MAX_INSTALL_PACKAGES, NoParams,
    PackageTarget, RebootOutcome, ResultOutput,
};
use patchctl_proto::policy::deployments::{DeploymentEvent, DeploymentState, HostStage, RingState};
use patchctl_proto::policy::webhooks::WebhookEvent;
use patchctl_proto::validate::{PackageName, PackageVersion};
use patchctl_storage::{CancelOutcome, CommandOutcome, DeploymentHostRow, DeploymentRow, Progress};
use uuid::Uuid;

use super::{
    NOT_STARTED, PLATFORM, audit_platform, deployment_event, ecosystem_of, ring_event, wire,
};
use crate::AppState;
use crate::error::ApiError;

/// How long a host may take to come back after its reboot.
pub const REBOOT_TIMEOUT: Duration = Duration::minutes(30);
/// Life of a command a deployment queues, undelivered.
const COMMAND_LIFE: Duration = Duration::days(1);
/// Most hosts one tick starts (baseline checks and installs queued): a ring of 75,000
/// hosts starts over a few minutes instead of one tick holding the writer for long.
pub const MAX_STARTS_PER_TICK: usize = 5_000;

/// Advances every running or paused deployment at `now` (the policy tick); a failure
/// of one is logged and the others go on.
pub async fn advance_all(st: &AppState, now: DateTime<Utc>) {
    let active = match st.store.active_deployments().await {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(error = %e, "could not read the running deployments");
            return;
        }
    };
    for d in active {
        if let Err(e) = advance(st, &d, now).await {
            tracing::warn!(deployment = %d.name, "deployment tick failed: {}", e.message);
        }
    }
}

/// The first line of an agent's text, cut to 300 characters.
fn first_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
        .chars()
        .take(300)
        .collect()
}

fn health_of(r: &CommandResult) -> Option<&HealthReport> {
    match &r.output {
        Some(ResultOutput::Health(h)) => Some(h),
        _ => None,
    }
}

/// Why a command that did not succeed failed the host.
fn not_ok(what: &str, o: &CommandOutcome) -> String {
    let said = o
        .result
        .as_ref()
        .map(|r| first_line(&r.summary))
        .filter(|s| !s.is_empty());
    match said {
        Some(s) => format!("{what} failed: {s}"),
        None => format!("{what} {}", o.state.as_str()),
    }
}

/// Where a command stands, for the engine.
enum Seen<'a> {
    /// Queued or delivered: wait.
    Waiting,
    /// Succeeded.
    Ok(&'a CommandOutcome),
    /// Failed, rejected, expired, cancelled (or lost).
    Bad(String),
}

fn seen<'a>(outcomes: &'a HashMap<Uuid, CommandOutcome>, id: Option<Uuid>, what: &str) -> Seen<'a> {
    let Some(o) = id.and_then(|id| outcomes.get(&id)) else {
        return Seen::Bad(format!("{what}: the command is gone"));
    };
    match o.state {
        CommandState::Queued | CommandState::Delivered => Seen::Waiting,
        CommandState::Succeeded => Seen::Ok(o),
        _ => Seen::Bad(not_ok(what, o)),
    }
}

/// One tick's work on one deployment.
struct Tick<'a> {
    st: &'a AppState,
    d: &'a DeploymentRow,
    now: DateTime<Utc>,
    events: Vec<DeploymentEvent>,
    queued: Vec<Uuid>,
    failures: Vec<(String, String)>,
}

impl Tick<'_> {
    fn host_event(&mut self, h: &DeploymentHostRow, from: HostStage) {
        self.events.push(DeploymentEvent {
            at: self.now,
            subject: "host".into(),
            ring: Some(h.ring),
            host_id: Some(h.host_id),
            from: Some(wire(&from)),
            to: wire(&h.stage),
            by: PLATFORM.into(),
            reason: h.detail.clone(),
        });
        if h.stage == HostStage::Failed {
            self.failures
                .push((h.hostname.clone(), h.detail.clone().unwrap_or_default()));
        }
    }

    async fn queue(
        &mut self,
        host: Uuid,
        cmd: &Command,
        approval: Option<patchctl_proto::signing::SignedDocument>,
    ) -> Result<Uuid, ApiError> {
        let signed = self
            .st
            .signer
            .command_approved(
                self.st.store.as_ref(),
                self.d.org_id,
                host,
                cmd,
                self.now,
                self.now + COMMAND_LIFE,
                approval,
            )
            .await?;
        // Queueing announces it: the host's long-poll wakes, on whichever node.
        let rec = self.st.store.queue_command(signed).await?;
        tracing::info!(command_id = %rec.id, host_id = %host, kind = %rec.kind,
            deployment = %self.d.name, "command queued by deployment {}", self.d.name);
        self.queued.push(rec.id);
        Ok(rec.id)
    }

    async fn health_check(&mut self, host: Uuid) -> Result<Uuid, ApiError> {
        self.queue(host, &Command::HealthCheck(NoParams {}), None)
            .await
    }
}

/// The install command of a host of `ecosystem`: the manifest's exact pairs for it.
fn install_for(
    items: &[patchctl_proto::policy::approvals::UpdateItem],
    ecosystem: &str,
    d: &DeploymentRow,
) -> Result<Command, String> {
    let mut packages = Vec::new();
    for i in items.iter().filter(|i| i.ecosystem == ecosystem) {
        let name = PackageName::parse(&i.name).map_err(|e| format!("{}: {e}", i.name))?;
        let version =
            PackageVersion::parse(&i.version).map_err(|e| format!("{}: {e}", i.version))?;
        packages.push(PackageTarget { name, version });
    }
    if packages.is_empty() {
        return Err(format!("the manifest has nothing for {ecosystem}"));
    }
    if packages.len() > MAX_INSTALL_PACKAGES {
        return Err(format!(
            "the manifest names {} packages for {ecosystem}; one install takes at most \
             {MAX_INSTALL_PACKAGES}",
            packages.len()
        ));
    }
    Ok(Command::InstallUpdates(InstallUpdatesParams {
        packages,
        reboot: d.reboot,
    }))
}

/// Advances deployment `d` at `now`: see the module's documentation.
pub async fn advance(st: &AppState, d: &DeploymentRow, now: DateTime<Utc>) -> Result<(), ApiError> {
    if d.state.is_final() {
        return Ok(());
    }
    let Some(cur) = d.current_ring else {
        return Ok(());
    };
    let rings = st.store.deployment_rings(d.id).await?;
    let Some(ring) = rings.iter().find(|r| r.index == cur).cloned() else {
        return Ok(());
    };
    let paused = d.state == DeploymentState::Paused;
    let mut hosts = st.store.deployment_hosts(d.id, Some(cur)).await?;
    let ids: Vec<Uuid> = hosts
        .iter()
        .filter(|h| !h.stage.is_done())
        .flat_map(|h| [h.baseline_command, h.install_command, h.verify_command])
        .flatten()
        .collect();
    let outcomes = st.store.command_outcomes(d.org_id, &ids).await?;
    let live: Vec<Uuid> = hosts
        .iter()
        .filter(|h| !h.stage.is_done() && h.stage != HostStage::Pending)
        .map(|h| h.host_id)
        .collect();
    let boots: HashMap<Uuid, _> = st
        .store
        .host_boot_state(d.org_id, &live)
        .await?
        .into_iter()
        .map(|b| (b.host_id, b))
        .collect();
    let waiting: Vec<(Uuid, DateTime<Utc>)> = hosts
        .iter()
        .filter(|h| h.stage == HostStage::WaitingWindow)
        .map(|h| (h.host_id, h.stage_since))
        .collect();
    let (windows, ecosystems, items) = if waiting.is_empty() || paused {
        (HashMap::new(), HashMap::new(), Vec::new())
    } else {
        let w = crate::windows::hosts_may_start(st, d.org_id, &waiting, now).await?;
        let e: HashMap<Uuid, String> = st
            .store
            .host_facts(d.org_id, None)
            .await?
            .into_iter()
            .map(|f| (f.host_id, ecosystem_of(&f.facts)))
            .collect();
        let items = st
            .store
            .manifest(d.org_id, &d.manifest_id.to_string())
            .await?
            .map(|(_, items)| items)
            .unwrap_or_default();
        (w, e, items)
    };
    // The approver's signature an install carries, and whether the organisation's
    // approver list requires one (issue 15: the two-person rule).
    let (approval, approval_required) = if items.is_empty() {
        (None, false)
    } else {
        crate::policy::signatures::for_install(st, d.org_id, d.manifest_id).await?
    };
    let offline_after = Duration::from_std(st.settings.offline_after()).unwrap_or(Duration::MAX);
    let soak = Duration::minutes(i64::from(ring.soak_minutes));

    let mut t = Tick {
        st,
        d,
        now,
        events: Vec::new(),
        queued: Vec::new(),
        failures: Vec::new(),
    };
    let mut changed = Vec::new();
    let mut starts = 0usize;
    for h in hosts.iter_mut() {
        let may_start = !paused && starts < MAX_STARTS_PER_TICK;
        let before = h.clone();
        let boot = boots.get(&h.host_id);
        let last_seen = boot.and_then(|b| b.last_seen);
        let fail = |h: &mut DeploymentHostRow, why: String| {
            h.stage = HostStage::Failed;
            h.detail = Some(why);
        };
        match h.stage {
            HostStage::Pending if may_start => {
                starts += 1;
                h.baseline_command = Some(t.health_check(h.host_id).await?);
                h.stage = HostStage::Baseline;
                h.detail = Some("baseline health check queued".into());
            }
            HostStage::Baseline => {
                match seen(&outcomes, h.baseline_command, "baseline health check") {
                    Seen::Waiting => {}
                    Seen::Bad(why) => fail(h, format!("unhealthy before the install: {why}")),
                    Seen::Ok(o) => match o.result.as_ref().and_then(health_of) {
                        None => fail(h, "baseline health check gave no report".into()),
                        Some(report) => match baseline_gate(report) {
                            Err(why) => fail(h, format!("unhealthy before the install: {why}")),
                            Ok(()) => {
                                h.baseline_failed_units = report.failed_units.clone();
                                h.stage = HostStage::WaitingWindow;
                                h.detail = Some("waiting for its maintenance window".into());
                            }
                        },
                    },
                }
            }
            HostStage::WaitingWindow if may_start => match windows.get(&h.host_id) {
                Some(Err(not_now)) => {
                    h.detail = Some(format!("waiting for its maintenance window: {not_now}"));
                }
                _ if approval_required && approval.is_none() => {
                    h.detail = Some(format!(
                        "waiting for an approver to sign manifest {} (`patchctl approvals sign --manifest {}`)",
                        d.manifest_name, d.manifest_name
                    ));
                }
                _ => {
                    let eco = ecosystems
                        .get(&h.host_id)
                        .cloned()
                        .unwrap_or_else(|| "unknown release".into());
                    match install_for(&items, &eco, d) {
                        Err(why) => fail(h, why),
                        Ok(cmd) => {
                            starts += 1;
                            h.install_command =
                                Some(t.queue(h.host_id, &cmd, approval.clone()).await?);
                            // The boot time before the install: the agent may report
                            // the one after its reboot before the tick reads the result.
                            h.boot_before = boot.and_then(|b| b.booted_at);
                            h.stage = HostStage::Installing;
                            h.detail = Some(format!(
                                "install of {} package{} queued",
                                h.packages,
                                if h.packages == 1 { "" } else { "s" }
                            ));
                        }
                    }
                }
            },
            HostStage::Installing => match seen(&outcomes, h.install_command, "install") {
                Seen::Waiting => {}
                Seen::Bad(why) => fail(h, why),
                Seen::Ok(o) => {
                    let rebooting = matches!(
                        o.result.as_ref().map(|r| &r.output),
                        Some(Some(ResultOutput::Install(r))) if r.reboot == Some(RebootOutcome::Scheduled)
                    );
                    if rebooting {
                        h.stage = HostStage::Rebooting;
                        h.detail = Some("installed; rebooting".into());
                    } else if last_seen.is_some_and(|s| s > o.updated_at) && !paused {
                        h.verify_command = Some(t.health_check(h.host_id).await?);
                        h.stage = HostStage::Verifying;
                        h.detail = Some("installed; health check queued".into());
                    } else {
                        h.detail = Some("installed; waiting for a heartbeat".into());
                    }
                }
            },
            HostStage::Rebooting => {
                let back = boot
                    .and_then(|b| b.booted_at)
                    .is_some_and(|at| h.boot_before.is_none_or(|before| at > before));
                if back && !paused {
                    h.verify_command = Some(t.health_check(h.host_id).await?);
                    h.stage = HostStage::Verifying;
                    h.detail = Some("back after the reboot; health check queued".into());
                } else if !back && now - h.stage_since > REBOOT_TIMEOUT {
                    fail(h, "did not come back after the reboot".into());
                }
            }
            HostStage::Verifying => match seen(&outcomes, h.verify_command, "health check") {
                Seen::Waiting => {}
                Seen::Bad(why) => fail(h, why),
                Seen::Ok(o) => match o.result.as_ref().and_then(health_of) {
                    None => fail(h, "health check gave no report".into()),
                    Some(report) => match health_gate(report, h.baseline_failed_units.as_deref()) {
                        Err(why) => fail(h, why),
                        Ok(passed) => {
                            h.stage = HostStage::Soaking;
                            h.healthy_since = Some(now);
                            h.detail = Some(passed.note.unwrap_or_else(|| {
                                format!("healthy; soaking {} minutes", ring.soak_minutes)
                            }));
                        }
                    },
                },
            },
            HostStage::Soaking => {
                let since = h.healthy_since.unwrap_or(h.stage_since);
                let final_check = h
                    .verify_command
                    .and_then(|c| outcomes.get(&c))
                    .filter(|o| o.created_at >= since);
                if last_seen.is_none_or(|s| now - s > offline_after) {
                    fail(h, "stopped heartbeating during the soak".into());
                } else if let Some(o) = final_check {
                    match seen(&outcomes, h.verify_command, "final health check") {
                        Seen::Waiting => {}
                        Seen::Bad(why) => fail(h, why),
                        Seen::Ok(_) => match o.result.as_ref().and_then(health_of) {
                            None => fail(h, "final health check gave no report".into()),
                            Some(report) => {
                                match health_gate(report, h.baseline_failed_units.as_deref()) {
                                    Err(why) => fail(h, format!("during the soak: {why}")),
                                    Ok(passed) => {
                                        h.stage = HostStage::Healthy;
                                        h.detail =
                                            Some(passed.note.unwrap_or_else(|| {
                                                "healthy through the soak".into()
                                            }));
                                    }
                                }
                            }
                        },
                    }
                } else if now >= since + soak && !paused {
                    h.verify_command = Some(t.health_check(h.host_id).await?);
                    h.detail = Some("soak time over; final health check queued".into());
                }
            }
            _ => {}
        }
        if *h != before {
            if h.stage != before.stage {
                h.stage_since = now;
                t.host_event(h, before.stage);
            }
            h.updated_at = now;
            changed.push(h.clone());
        }
    }

    // The ring.
    let mut p = Progress {
        expect: Some(d.state),
        by: PLATFORM.into(),
        now: Some(now),
        ..Progress::default()
    };
    let counted: Vec<&DeploymentHostRow> = hosts
        .iter()
        .filter(|h| h.stage != HostStage::Skipped)
        .collect();
    let failed: Vec<&&DeploymentHostRow> = counted
        .iter()
        .filter(|h| h.stage == HostStage::Failed)
        .collect();
    let all_done = hosts.iter().all(|h| h.stage.is_done());
    let mut after = Vec::new();
    if threshold_exceeded(
        failed.len() as u64,
        counted.len() as u64,
        ring.max_failed_percent,
    ) {
        let first = failed
            .first()
            .map(|h| {
                format!(
                    ": {}: {}",
                    h.hostname,
                    h.detail.as_deref().unwrap_or("failed")
                )
            })
            .unwrap_or_default();
        let reason = format!(
            "ring {}: {} of {} hosts failed (threshold {} %){first}",
            ring.name,
            failed.len(),
            counted.len(),
            ring.max_failed_percent
        );
        for mut r in rings.iter().filter(|r| r.index >= cur).cloned() {
            let to = if r.index == cur {
                RingState::Failed
            } else {
                RingState::Skipped
            };
            t.events.push(ring_event(
                now,
                r.index,
                Some(r.state),
                to,
                PLATFORM,
                Some(reason.clone()),
            ));
            r.state = to;
            r.finished_at = Some(now);
            p.rings.push(r);
        }
        t.events.push(deployment_event(
            now,
            Some(d.state),
            DeploymentState::Halted,
            PLATFORM,
            Some(reason.clone()),
        ));
        p.deployment = Some((DeploymentState::Halted, Some(reason.clone()), None));
        p.skip = Some((
            NOT_STARTED.to_vec(),
            "the deployment halted before this host started".into(),
        ));
        after.push((
            "deployment.halted",
            serde_json::json!({"ring": cur, "ring_name": ring.name, "reason": reason}),
            WebhookEvent::DeploymentHalted {
                deployment_id: d.id.to_string(),
                ring: Some(cur),
                reason,
            },
        ));
    } else if all_done {
        let mut r = ring.clone();
        t.events.push(ring_event(
            now,
            cur,
            Some(r.state),
            RingState::Passed,
            PLATFORM,
            None,
        ));
        r.state = RingState::Passed;
        r.finished_at = Some(now);
        p.rings.push(r);
        after.push((
            "deployment.ring_completed",
            serde_json::json!({"ring": cur, "ring_name": ring.name}),
            WebhookEvent::DeploymentRingCompleted {
                deployment_id: d.id.to_string(),
                ring: cur,
                ring_name: ring.name.clone(),
            },
        ));
        match rings.iter().find(|r| r.index == cur + 1).cloned() {
            Some(mut next) => {
                t.events.push(ring_event(
                    now,
                    next.index,
                    Some(next.state),
                    RingState::Active,
                    PLATFORM,
                    None,
                ));
                next.state = RingState::Active;
                next.started_at = Some(now);
                p.deployment = Some((d.state, d.reason.clone(), Some(next.index)));
                p.rings.push(next);
            }
            None => {
                t.events.push(deployment_event(
                    now,
                    Some(d.state),
                    DeploymentState::Completed,
                    PLATFORM,
                    None,
                ));
                p.deployment = Some((DeploymentState::Completed, None, None));
                after.push((
                    "deployment.completed",
                    serde_json::json!({}),
                    WebhookEvent::DeploymentCompleted {
                        deployment_id: d.id.to_string(),
                    },
                ));
            }
        }
    } else if ring.state == RingState::Active
        && hosts.iter().any(|h| h.stage == HostStage::Soaking)
        && hosts
            .iter()
            .all(|h| h.stage.is_done() || h.stage == HostStage::Soaking)
    {
        let mut r = ring.clone();
        t.events.push(ring_event(
            now,
            cur,
            Some(r.state),
            RingState::Soaking,
            PLATFORM,
            None,
        ));
        r.state = RingState::Soaking;
        p.rings.push(r);
    }
    if changed.is_empty() && t.events.is_empty() {
        return Ok(());
    }
    p.hosts = changed;
    p.events = std::mem::take(&mut t.events);
    if !st.store.save_progress(d.id, &p).await? {
        // An operator changed the deployment meanwhile: take back what was queued.
        for id in &t.queued {
            let _ = st.store.cancel_command(d.org_id, *id, now).await;
        }
        return Ok(());
    }
    for (host, why) in &t.failures {
        audit_platform(
            st,
            d,
            "deployment.host_failed",
            now,
            serde_json::json!({"ring": cur, "hostname": host, "detail": why}),
        )
        .await;
    }
    for (action, details, event) in after {
        audit_platform(st, d, action, now, details).await;
        crate::webhooks::emit(&*st.store, d.org_id, &event).await;
    }
    Ok(())
}

/// On cancel: the deployment's commands not yet delivered are cancelled; a host whose
/// install never reached it is skipped (its row added to `p`).
pub(super) async fn cancel_undelivered(
    st: &AppState,
    d: &DeploymentRow,
    by: &str,
    now: DateTime<Utc>,
    p: &mut Progress,
) -> Result<(), ApiError> {
    let Some(cur) = d.current_ring else {
        return Ok(());
    };
    for mut h in st.store.deployment_hosts(d.id, Some(cur)).await? {
        let cmd = match h.stage {
            HostStage::Baseline => h.baseline_command,
            HostStage::Installing => h.install_command,
            HostStage::Verifying | HostStage::Soaking => h.verify_command,
            _ => None,
        };
        let Some(cmd) = cmd else { continue };
        let out = st.store.cancel_command(d.org_id, cmd, now).await?;
        if out == CancelOutcome::Cancelled && h.stage == HostStage::Installing {
            let from = h.stage;
            h.stage = HostStage::Skipped;
            h.detail = Some("the deployment was cancelled before the install was delivered".into());
            h.stage_since = now;
            h.updated_at = now;
            p.events.push(DeploymentEvent {
                at: now,
                subject: "host".into(),
                ring: Some(h.ring),
                host_id: Some(h.host_id),
                from: Some(wire(&from)),
                to: wire(&h.stage),
                by: by.to_owned(),
                reason: h.detail.clone(),
            });
            p.hosts.push(h);
        }
    }
    Ok(())
}
