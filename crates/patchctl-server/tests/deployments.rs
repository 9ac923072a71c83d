//! Deployments over the real platform (TLS 1.3 on loopback, a real SQLite file): agents
//! speak the agent API (heartbeats collect the queued commands, results are posted
//! back), and the policy tick is driven by the test on the clock it chooses. Three rings
//! pass with the manifest's exact pairs in every install; a closed window holds the
//! install until it opens; an install failure in the canary halts the deployment and
//! the later rings' hosts get no command; a new failed unit fails the gate; a host that
//! stops heartbeating during its soak fails; pause stops new work, resume continues,
//! cancel skips; events and audit entries are kept.

mod support;

use std::collections::HashMap;

use axum::http::StatusCode;
use chrono::{DateTime, Duration, Utc};
use patchctl_proto::agent::{
    HeartbeatRequest, HeartbeatResponse, Metrics, OsInfo, ResultsUpload, SystemInfo,
};
use patchctl_proto::command::{
    CommandResult, HealthItem, HealthReport, HealthStatus, InstallReport, RebootOutcome,
    ResultOutput, ResultStatus,
};
use patchctl_proto::policy::approvals::UpdateItem;
use patchctl_proto::policy::groups::GroupSelector;
use patchctl_proto::policy::webhooks::EventType;
use patchctl_server::auth::hash_secret;
use patchctl_server::{AppState, Settings};
use patchctl_storage::{AuditFilter, Manifest, NewGroup, NewHost, NewWebhook};
use serde_json::{Value, json};
use support::{Platform, platform};
use uuid::Uuid;

/// How one test agent behaves.
#[derive(Clone, Default)]
struct Behaviour {
    /// Failed units before the install.
    units_before: Vec<String>,
    /// Failed units after it.
    units_after: Vec<String>,
    /// The install fails with this text.
    install_error: Option<String>,
    /// The agent stopped (no heartbeat, no result).
    silent: bool,
    /// The install schedules a reboot (the next heartbeat reports a later boot time).
    reboots: bool,
}

struct Agent {
    host: Uuid,
    hostname: String,
    credential: String,
    installed: bool,
    does: Behaviour,
    /// The `install_updates` parameters it received.
    installs: Vec<Value>,
    /// Every command kind it received.
    kinds: Vec<String>,
    /// The boot time it reports.
    booted_at: DateTime<Utc>,
}

impl Agent {
    async fn heartbeat(&self, p: &Platform) -> HeartbeatResponse {
        let hb = HeartbeatRequest {
            agent_version: "1.0.0".into(),
            metrics: Metrics::default(),
            agent_target: None,
            update_events: Vec::new(),
            trial: false,
            reboot: None,
            booted_at: Some(self.booted_at),
        };
        let r = p
            .req(
                "POST",
                "/api/v1/agent/heartbeat",
                Some(&self.credential),
                Some(&serde_json::to_value(&hb).unwrap()),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        serde_json::from_value(r.body).unwrap()
    }

    fn health(&self) -> HealthReport {
        HealthReport {
            agent_version: "1.0.0".into(),
            checks: vec![HealthItem {
                name: "server".into(),
                status: HealthStatus::Ok,
                detail: "reachable".into(),
            }],
            failed_units: Some(if self.installed {
                self.does.units_after.clone()
            } else {
                self.does.units_before.clone()
            }),
        }
    }

    /// One round: a heartbeat, the commands it brought answered, a heartbeat after.
    async fn round(&mut self, p: &Platform) {
        if self.does.silent {
            return;
        }
        let got = self.heartbeat(p).await;
        let mut results = Vec::new();
        for c in got.commands {
            self.kinds.push(c.kind.clone());
            let now = Utc::now();
            let (status, summary, output) = match c.kind.as_str() {
                "health_check" => (
                    ResultStatus::Succeeded,
                    "healthy".to_owned(),
                    ResultOutput::Health(self.health()),
                ),
                "install_updates" => {
                    self.installs.push(c.params.clone());
                    let report = InstallReport {
                        refused: Vec::new(),
                        packages: Vec::new(),
                        reboot_required: false,
                        reboot_reasons: Vec::new(),
                        reboot: Some(if self.does.reboots {
                            RebootOutcome::Scheduled
                        } else {
                            RebootOutcome::NotRequired
                        }),
                        output_tail: String::new(),
                    };
                    match &self.does.install_error {
                        Some(e) => (
                            ResultStatus::Failed,
                            e.clone(),
                            ResultOutput::Install(report),
                        ),
                        None => {
                            self.installed = true;
                            if self.does.reboots {
                                self.booted_at = Utc::now() + Duration::seconds(1);
                            }
                            (
                                ResultStatus::Succeeded,
                                "2 packages installed".to_owned(),
                                ResultOutput::Install(report),
                            )
                        }
                    }
                }
                other => panic!("a deployment queued {other}"),
            };
            results.push(CommandResult {
                command_id: c.id,
                status,
                summary,
                started_at: now,
                finished_at: now,
                output: Some(output),
            });
        }
        if !results.is_empty() {
            let up = ResultsUpload { results };
            let r = p
                .req(
                    "POST",
                    "/api/v1/agent/results",
                    Some(&self.credential),
                    Some(&serde_json::to_value(&up).unwrap()),
                )
                .await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.text);
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            self.heartbeat(p).await;
        }
    }
}

/// A Debian 12 host (`os` overrides) carrying agent tag `tag`.
async fn agent(p: &Platform, name: &str, tag: &str, os: Option<(&str, &str)>) -> Agent {
    let key = p
        .store
        .create_enrollment_key(p.org_id, "k", &Uuid::new_v4().to_string(), Utc::now())
        .await
        .unwrap();
    let credential = format!("cred-{}", Uuid::new_v4());
    let (id, version) = os.unwrap_or(("debian", "12"));
    let h = p
        .store
        .create_host(NewHost {
            org_id: p.org_id,
            enrollment_key_id: key.id,
            credential_hash: hash_secret(&credential),
            agent_version: "1.0.0".into(),
            system: SystemInfo {
                hostname: name.into(),
                os: OsInfo {
                    id: id.into(),
                    version_id: version.into(),
                    ..Default::default()
                },
                tags: vec![tag.into()],
                ..Default::default()
            },
            now: Utc::now(),
        })
        .await
        .unwrap();
    Agent {
        host: h.id,
        hostname: name.into(),
        credential,
        installed: false,
        does: Behaviour::default(),
        installs: Vec::new(),
        kinds: Vec::new(),
        booted_at: DateTime::from_timestamp(Utc::now().timestamp() - 86_400, 0).unwrap(),
    }
}

async fn group(p: &Platform, name: &str) {
    p.store
        .create_group(
            p.org_id,
            &NewGroup {
                name: name.into(),
                description: String::new(),
                selector: GroupSelector {
                    agent_tags: vec![name.into()],
                    ..Default::default()
                },
                actor: "test".into(),
                now: Utc::now(),
            },
        )
        .await
        .unwrap();
}

fn item(eco: &str, name: &str, version: &str) -> UpdateItem {
    UpdateItem {
        ecosystem: eco.into(),
        name: name.into(),
        version: version.into(),
    }
}

async fn manifest(p: &Platform) {
    let all = p
        .store
        .group_by_name(p.org_id, "all")
        .await
        .unwrap()
        .unwrap();
    p.store
        .create_manifest(
            p.org_id,
            &Manifest {
                id: Uuid::new_v4(),
                name: "october".into(),
                group_id: all.id,
                group_name: "all".into(),
                created_by: "test".into(),
                created_at: Utc::now(),
                item_count: 3,
            },
            &[
                item("AlmaLinux:9", "openssl", "3.0.7-27.el9"),
                item("Debian:12", "curl", "7.88.1-10+deb12u8"),
                item("Debian:12", "openssl", "3.0.15-1~deb12u1"),
            ],
        )
        .await
        .unwrap();
}

/// The AppState the test ticks with: the platform's database, a heartbeat interval of
/// two hours (offline after six), so that the test's clock may run ahead of the agents.
fn ticker(p: &Platform) -> AppState {
    AppState::new(
        p.store.clone(),
        Settings {
            heartbeat_interval_secs: 7_200,
            ..Settings::with_defaults(
                "127.0.0.1:0".parse().unwrap(),
                "sqlite::memory:",
                "/x",
                "/y",
            )
        },
    )
}

async fn tick(st: &AppState, now: DateTime<Utc>) {
    let mut last = Some(now);
    patchctl_server::policy::tick(st, now, &mut last).await;
}

async fn create(p: &Platform, body: Value) -> Value {
    let op = p.caller("operator").token.clone();
    let r = p
        .req("POST", "/api/v1/deployments", Some(&op), Some(&body))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    r.body
}

async fn show(p: &Platform, name: &str) -> Value {
    let viewer = p.caller("viewer").token.clone();
    p.req(
        "GET",
        &format!("/api/v1/deployments/{name}"),
        Some(&viewer),
        None,
    )
    .await
    .ok()
}

async fn hosts(p: &Platform, name: &str) -> HashMap<String, Value> {
    let viewer = p.caller("viewer").token.clone();
    let v = p
        .req(
            "GET",
            &format!("/api/v1/deployments/{name}/hosts"),
            Some(&viewer),
            None,
        )
        .await
        .ok();
    v.as_array()
        .unwrap()
        .iter()
        .map(|h| (h["hostname"].as_str().unwrap().to_owned(), h.clone()))
        .collect()
}

/// Rounds of every agent then a tick, a minute apart from `from`, until the
/// deployment's state is no longer `running` (at most `max` rounds); the last clock.
async fn run(
    p: &Platform,
    st: &AppState,
    agents: &mut [Agent],
    name: &str,
    from: DateTime<Utc>,
    max: u32,
) -> DateTime<Utc> {
    let mut now = from;
    for _ in 0..max {
        tick(st, now).await;
        for a in agents.iter_mut() {
            a.round(p).await;
        }
        if show(p, name).await["state"] != "running" {
            return now;
        }
        now += Duration::minutes(1);
    }
    now
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rings_pass_with_the_exact_pairs_and_failures_halt() {
    let p = platform().await;
    let st = ticker(&p);
    manifest(&p).await;
    for g in ["a", "c", "d", "e"] {
        group(&p, g).await;
    }
    let op = p.caller("operator").token.clone();
    let hook = p
        .store
        .create_webhook(&NewWebhook {
            org_id: p.org_id,
            name: "deploys".into(),
            url: "https://hooks.example.com/deploys".into(),
            events: vec![
                EventType::DeploymentRingCompleted,
                EventType::DeploymentHalted,
                EventType::DeploymentCompleted,
            ],
            min_severity: None,
            enabled: true,
            secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
            created_by: "test".into(),
            created_at: Utc::now(),
        })
        .await
        .unwrap();

    // Refusals first.
    let bad = |body: Value, want: StatusCode| {
        let op = op.clone();
        let p = &p;
        async move {
            let r = p
                .req("POST", "/api/v1/deployments", Some(&op), Some(&body))
                .await;
            assert_eq!(r.status, want, "{}", r.text);
        }
    };
    bad(
        json!({"name": "x", "manifest": "nope", "groups": ["a"]}),
        StatusCode::NOT_FOUND,
    )
    .await;
    bad(
        json!({"name": "x", "manifest": "october", "groups": ["nope"]}),
        StatusCode::NOT_FOUND,
    )
    .await;
    bad(
        json!({"name": "x", "manifest": "october", "groups": ["a"],
               "rings": [{"percent": 50}, {"percent": 40}]}),
        StatusCode::BAD_REQUEST,
    )
    .await;
    bad(
        json!({"name": "x", "manifest": "october", "groups": ["a"]}),
        StatusCode::BAD_REQUEST,
    )
    .await;
    let viewer = p.caller("viewer").token.clone();
    let r = p
        .req(
            "POST",
            "/api/v1/deployments",
            Some(&viewer),
            Some(&json!({"name": "x", "manifest": "october", "groups": ["a"]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);

    // A: four Debian hosts and one of a release the manifest has nothing for, in
    // rings of 25, 50 and 100 %.
    let mut a = Vec::new();
    for i in 0..4 {
        a.push(agent(&p, &format!("a-{i}"), "a", None).await);
    }
    a.push(agent(&p, "a-plan9", "a", Some(("plan9", "4"))).await);
    let d = create(
        &p,
        json!({"name": "oct-a", "manifest": "october", "groups": ["a"], "rings": [
            {"name": "canary", "percent": 25, "soak_minutes": 0},
            {"name": "early", "percent": 50, "soak_minutes": 0},
            {"name": "all", "percent": 100, "soak_minutes": 0}]}),
    )
    .await;
    assert_eq!(d["state"], "running");
    assert_eq!(d["hosts"], 5);
    assert_eq!(d["rings"][0]["state"], "active");
    let r = p
        .req(
            "POST",
            "/api/v1/deployments",
            Some(&op),
            Some(&json!({"name": "oct-a", "manifest": "october", "groups": ["a"]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    let before = hosts(&p, "oct-a").await;
    assert_eq!(before["a-plan9"]["stage"], "skipped");
    assert_eq!(
        before["a-plan9"]["detail"],
        "the manifest has nothing for plan9 4"
    );
    assert_eq!(before["a-0"]["packages"], 2);

    let t0 = Utc::now();
    run(&p, &st, &mut a, "oct-a", t0, 60).await;
    let done = show(&p, "oct-a").await;
    assert_eq!(done["state"], "completed", "{done:#}");
    let states: Vec<&str> = done["rings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["passed", "passed", "passed"]);
    let pairs = json!({"packages": [
        {"name": "curl", "version": "7.88.1-10+deb12u8"},
        {"name": "openssl", "version": "3.0.15-1~deb12u1"}]});
    for x in &a[..4] {
        assert_eq!(x.installs, vec![pairs.clone()], "{}", x.hostname);
        assert_eq!(
            x.kinds,
            [
                "health_check",
                "install_updates",
                "health_check",
                "health_check"
            ]
        );
    }
    assert!(a[4].kinds.is_empty(), "the skipped host gets nothing");
    let final_hosts = hosts(&p, "oct-a").await;
    for x in &a[..4] {
        assert_eq!(
            final_hosts[&x.hostname]["stage"], "healthy",
            "{:#}",
            final_hosts[&x.hostname]
        );
    }
    // The rings ran in order: each ring's first install after the ring before passed.
    let events = p
        .req(
            "GET",
            "/api/v1/deployments/oct-a/events",
            Some(&viewer),
            None,
        )
        .await
        .ok();
    let ev = events.as_array().unwrap();
    let rings_passed: Vec<u64> = ev
        .iter()
        .filter(|e| e["subject"] == "ring" && e["to"] == "passed")
        .map(|e| e["ring"].as_u64().unwrap())
        .collect();
    assert_eq!(rings_passed, [0, 1, 2]);
    assert_eq!(ev.last().unwrap()["subject"], "deployment");
    assert_eq!(ev.last().unwrap()["to"], "completed");
    let installs_by_ring: Vec<(u64, usize)> = ev
        .iter()
        .enumerate()
        .filter(|(_, e)| e["subject"] == "host" && e["to"] == "installing")
        .map(|(i, e)| (e["ring"].as_u64().unwrap(), i))
        .collect();
    for (ring, at) in installs_by_ring {
        if ring > 0 {
            let passed_at = ev
                .iter()
                .position(|e| {
                    e["subject"] == "ring" && e["to"] == "passed" && e["ring"] == ring - 1
                })
                .unwrap();
            assert!(
                passed_at < at,
                "ring {ring} installed before ring {} passed",
                ring - 1
            );
        }
    }
    let audit = p
        .store
        .list_audit(
            p.org_id,
            &AuditFilter {
                action: Some("deployment.".into()),
                ..Default::default()
            },
            100,
        )
        .await
        .unwrap();
    let actions: Vec<&str> = audit.iter().map(|e| e.entry.action.as_str()).collect();
    assert!(actions.contains(&"deployment.create"), "{actions:?}");
    assert_eq!(
        actions
            .iter()
            .filter(|a| **a == "deployment.ring_completed")
            .count(),
        3
    );
    assert!(actions.contains(&"deployment.completed"), "{actions:?}");

    // C: an install failure in the canary halts; the later ring's hosts get nothing.
    let mut c = Vec::new();
    for i in 0..3 {
        let mut x = agent(&p, &format!("c-{i}"), "c", None).await;
        x.does.install_error = Some(
            "dpkg: error processing package openssl (--configure):\n installed post-installation script returned error exit status 1".into(),
        );
        c.push(x);
    }
    create(
        &p,
        json!({"name": "oct-c", "manifest": "october", "groups": ["c"], "rings": [
        {"name": "canary", "percent": 10, "soak_minutes": 0},
        {"name": "all", "percent": 100, "soak_minutes": 0}]}),
    )
    .await;
    run(&p, &st, &mut c, "oct-c", Utc::now(), 30).await;
    let halted = show(&p, "oct-c").await;
    assert_eq!(halted["state"], "halted", "{halted:#}");
    let hs = hosts(&p, "oct-c").await;
    let canary = hs.values().find(|h| h["ring"] == 0).unwrap();
    let canary_name = canary["hostname"].as_str().unwrap();
    assert_eq!(
        halted["reason"],
        format!(
            "ring canary: 1 of 1 hosts failed (threshold 0 %): {canary_name}: install failed: dpkg: error processing package openssl (--configure):"
        )
    );
    assert_eq!(halted["rings"][0]["state"], "failed");
    assert_eq!(halted["rings"][1]["state"], "skipped");
    for x in &c {
        if x.hostname == canary_name {
            assert_eq!(x.installs.len(), 1);
        } else {
            assert!(x.kinds.is_empty(), "{} got {:?}", x.hostname, x.kinds);
            assert_eq!(hs[&x.hostname]["stage"], "skipped");
            let cmds = p
                .store
                .list_commands(p.org_id, Some(x.host), 10)
                .await
                .unwrap();
            assert!(cmds.is_empty());
        }
    }
    let audit = p
        .store
        .list_audit(
            p.org_id,
            &AuditFilter {
                action: Some("deployment.h".into()),
                ..Default::default()
            },
            100,
        )
        .await
        .unwrap();
    assert!(audit.iter().any(|e| e.entry.action == "deployment.halted"));
    assert!(
        audit
            .iter()
            .any(|e| e.entry.action == "deployment.host_failed")
    );

    // D: a unit failed after the install that was not before fails the gate.
    let mut dd = vec![agent(&p, "d-0", "d", None).await];
    dd[0].does.units_before = vec!["old.service".into()];
    dd[0].does.units_after = vec!["nginx.service".into(), "old.service".into()];
    create(
        &p,
        json!({"name": "oct-d", "manifest": "october", "groups": ["d"]}),
    )
    .await;
    run(&p, &st, &mut dd, "oct-d", Utc::now(), 30).await;
    assert_eq!(show(&p, "oct-d").await["state"], "halted");
    assert_eq!(
        hosts(&p, "oct-d").await["d-0"]["detail"],
        "new failed unit: nginx.service"
    );

    // The webhook events were enqueued: three rings and a completion of A, the halts of
    // C and D.
    let sent = p
        .store
        .webhook_deliveries(p.org_id, hook.id, None, 100)
        .await
        .unwrap();
    let count = |t: &str| sent.items.iter().filter(|m| m.event_type == t).count();
    assert_eq!(count("deployment.ring_completed"), 3);
    assert_eq!(count("deployment.completed"), 1);
    assert_eq!(count("deployment.halted"), 2);

    // E: a host that stops heartbeating during its soak fails.
    let mut e = [agent(&p, "e-0", "e", None).await];
    create(
        &p,
        json!({"name": "oct-e", "manifest": "october", "groups": ["e"],
        "rings": [{"percent": 100, "soak_minutes": 60}]}),
    )
    .await;
    let mut now = Utc::now();
    for _ in 0..10 {
        tick(&st, now).await;
        e[0].round(&p).await;
        now += Duration::minutes(1);
    }
    assert_eq!(hosts(&p, "oct-e").await["e-0"]["stage"], "soaking");
    e[0].does.silent = true;
    tick(&st, now + Duration::hours(7)).await;
    assert_eq!(show(&p, "oct-e").await["state"], "halted");
    assert_eq!(
        hosts(&p, "oct-e").await["e-0"]["detail"],
        "stopped heartbeating during the soak"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windows_hold_installs_and_operators_pause_resume_cancel() {
    let p = platform().await;
    let st = ticker(&p);
    manifest(&p).await;
    group(&p, "w").await;
    group(&p, "f").await;
    let admin = p.caller("admin").token.clone();
    let op = p.caller("operator").token.clone();

    // W: a daily window three hours from now.
    let opens = Utc::now() + Duration::hours(3);
    let r = p
        .req(
            "POST",
            "/api/v1/windows",
            Some(&admin),
            Some(&json!({
            "name": "later", "group": "w", "days": [], "start": opens.format("%H:%M").to_string(),
            "timezone": "UTC", "duration_minutes": 120})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let mut w = vec![agent(&p, "w-0", "w", None).await];
    create(
        &p,
        json!({"name": "oct-w", "manifest": "october", "groups": ["w"]}),
    )
    .await;
    let mut now = Utc::now();
    for _ in 0..6 {
        tick(&st, now).await;
        w[0].round(&p).await;
        now += Duration::minutes(1);
    }
    assert_eq!(
        w[0].kinds,
        ["health_check"],
        "nothing but the baseline while closed"
    );
    let h = &hosts(&p, "oct-w").await["w-0"];
    assert_eq!(h["stage"], "waiting_window");
    assert!(
        h["detail"]
            .as_str()
            .unwrap()
            .starts_with("waiting for its maintenance window: the window is closed until"),
        "{h}"
    );
    run(&p, &st, &mut w, "oct-w", opens + Duration::minutes(2), 30).await;
    assert_eq!(w[0].kinds[1], "install_updates");
    assert_eq!(show(&p, "oct-w").await["state"], "completed");

    // R: an install that reboots the host: back with a later boot time, then verified.
    group(&p, "r").await;
    let mut r = vec![agent(&p, "r-0", "r", None).await];
    r[0].does.reboots = true;
    create(
        &p,
        json!({"name": "oct-r", "manifest": "october", "groups": ["r"],
        "reboot": "if_required", "rings": [{"percent": 100, "soak_minutes": 0}]}),
    )
    .await;
    run(&p, &st, &mut r, "oct-r", Utc::now(), 30).await;
    assert_eq!(show(&p, "oct-r").await["state"], "completed");
    assert_eq!(r[0].installs[0]["reboot"], "if_required");
    let ev = p
        .req(
            "GET",
            "/api/v1/deployments/oct-r/events",
            Some(&p.caller("viewer").token),
            None,
        )
        .await
        .ok();
    let stages: Vec<&str> = ev
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["subject"] == "host")
        .map(|e| e["to"].as_str().unwrap())
        .collect();
    assert_eq!(
        stages,
        [
            "baseline",
            "waiting_window",
            "installing",
            "rebooting",
            "verifying",
            "soaking",
            "healthy"
        ]
    );

    // F: pause stops new work, resume continues, cancel skips.
    let mut f = vec![
        agent(&p, "f-0", "f", None).await,
        agent(&p, "f-1", "f", None).await,
    ];
    create(
        &p,
        json!({"name": "oct-f", "manifest": "october", "groups": ["f"],
        "rings": [{"percent": 50}, {"percent": 100}]}),
    )
    .await;
    let act = |what: &str, body: Option<Value>| {
        let path = format!("/api/v1/deployments/oct-f/{what}");
        let op = op.clone();
        let p = &p;
        async move { p.req("POST", &path, Some(&op), body.as_ref()).await }
    };
    let r = act("resume", None).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    let r = act("pause", Some(json!({"reason": "change freeze"}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["state"], "paused");
    let mut now = Utc::now();
    for _ in 0..3 {
        tick(&st, now).await;
        for x in f.iter_mut() {
            x.round(&p).await;
        }
        now += Duration::minutes(1);
    }
    assert!(
        f.iter().all(|x| x.kinds.is_empty()),
        "paused: nothing queued"
    );
    let r = act("resume", Some(json!({}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    tick(&st, now).await;
    let queued: usize = {
        let mut n = 0;
        for x in &f {
            n += p
                .store
                .list_commands(p.org_id, Some(x.host), 10)
                .await
                .unwrap()
                .len();
        }
        n
    };
    assert_eq!(queued, 1, "resumed: the canary's baseline check");
    let r = act("cancel", Some(json!({"reason": "wrong manifest"}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["state"], "cancelled");
    assert!(
        r.body["reason"]
            .as_str()
            .unwrap()
            .ends_with("wrong manifest")
    );
    let r = act("cancel", None).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    let hs = hosts(&p, "oct-f").await;
    assert!(hs.values().all(|h| h["stage"] == "skipped"), "{hs:#?}");
    for x in &f {
        for c in p
            .store
            .list_commands(p.org_id, Some(x.host), 10)
            .await
            .unwrap()
        {
            assert_eq!(c.state.as_str(), "cancelled");
        }
    }
    tick(&st, now + Duration::minutes(1)).await;
    for x in f.iter_mut() {
        x.round(&p).await;
    }
    assert!(
        f.iter().all(|x| x.kinds.is_empty()),
        "cancelled: nothing delivered"
    );
    let viewer = p.caller("viewer").token.clone();
    let ev = p
        .req(
            "GET",
            "/api/v1/deployments/oct-f/events",
            Some(&viewer),
            None,
        )
        .await
        .ok();
    let dep: Vec<&str> = ev
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["subject"] == "deployment")
        .map(|e| e["to"].as_str().unwrap())
        .collect();
    assert_eq!(dep, ["running", "paused", "running", "cancelled"]);
    let paused = ev
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["to"] == "paused")
        .unwrap();
    assert_eq!(paused["reason"], "change freeze");
    assert!(paused["by"].as_str().unwrap().starts_with("user operator"));
    let audit = p
        .store
        .list_audit(
            p.org_id,
            &AuditFilter {
                action: Some("deployment.".into()),
                ..Default::default()
            },
            100,
        )
        .await
        .unwrap();
    for a in ["deployment.pause", "deployment.resume", "deployment.cancel"] {
        assert!(audit.iter().any(|e| e.entry.action == a), "{a}");
    }
    let list = p
        .req("GET", "/api/v1/deployments", Some(&viewer), None)
        .await
        .ok();
    assert_eq!(list[0]["name"], "oct-f", "newest first");
    let r = p
        .req("GET", "/api/v1/deployments/nope", Some(&viewer), None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}
