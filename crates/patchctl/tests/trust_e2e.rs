//! Trust, end to end with the real binaries on loopback (`patchctl server --dev` and a
//! separate `patchctl-agent` process over real TLS 1.3): a revoked agent stops with
//! exit code 78 and stays out until `patchctl-agent reenroll`; an unknown credential
//! still enrolls again; a host waiting for approval asks at its heartbeat and does
//! nothing else until an operator approves it; the agent rotates its credential.
//!
//! The platform's side of `403 credential_revoked`, approval and rotation comes with
//! issue 10's server work: `revoked_agent_stops_with_78_and_stays_out_until_reenroll`,
//! `pending_host_waits_for_approval_then_carries_on` and
//! `credential_rotates_without_missing_a_heartbeat` need it.

// The harness starts the binaries under test; the no-spawn rule is for agent code.
#![allow(clippy::disallowed_methods)]

mod agent_platform;
mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use agent_platform::{Platform, agent_bin, agent_config, enrolled_agent, identity, start_agent};
use common::wait_for;
use serde_json::{Value, json};

fn reenroll(cfg: &std::path::Path) -> String {
    let out = Command::new(agent_bin())
        .args(["reenroll", "--config"])
        .arg(cfg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn assert_no_secret(text: &str, secrets: &[&str]) {
    for s in secrets {
        assert!(!text.contains(s), "a secret reached the log");
    }
}

#[test]
fn a_revoked_marker_stops_the_agent_before_it_contacts_anything() {
    let tmp = tempfile::tempdir().unwrap();
    let plat = Platform::start(&tmp.path().join("platform"));
    let dir = tmp.path().join("agent");
    let cfg = agent_config(&dir, &plat, json!({}));
    patchctl_agent::state::write_revoked(
        &dir,
        &patchctl_agent::state::RevokedMarker {
            revoked_at: chrono::Utc::now(),
            server_url: plat.url().to_owned(),
            host_id: None,
            message: "host revoked by an operator".into(),
        },
    )
    .unwrap();
    let mut agent = start_agent(&cfg, &tmp.path().join("agent.log"));
    let status = agent.wait_exit("the agent to stop on its marker", 30);
    assert_eq!(status.code(), Some(78));
    let log = agent.log_text();
    assert!(
        log.contains("the platform revoked this agent's credential"),
        "{log}"
    );
    assert!(log.contains("patchctl-agent reenroll"), "{log}");
    assert!(!log.contains("connected to the platform"), "{log}");
    // It did not enroll on its own.
    assert!(identity(&dir).is_none());
    assert!(plat.hosts().is_empty());

    let said = reenroll(&cfg);
    assert!(said.contains("systemctl restart patchctl"), "{said}");
    let mut agent = start_agent(&cfg, &tmp.path().join("agent2.log"));
    let host = wait_for("enrollment after reenroll", 60, || {
        identity(&dir).and_then(|v| v["host_id"].as_str().map(str::to_owned))
    });
    wait_for("the new host online", 60, || {
        plat.hosts()
            .iter()
            .any(|h| h["id"] == host.as_str() && h["status"] == "online")
            .then_some(())
    });
    assert!(agent.running());
}

#[test]
fn an_unknown_credential_enrolls_again_with_the_license_key() {
    let tmp = tempfile::tempdir().unwrap();
    let plat = Platform::start(&tmp.path().join("platform"));
    let dir = tmp.path().join("agent");
    let (agent, first) = enrolled_agent(&dir, &plat, json!({}));
    drop(agent);
    // A credential the platform never issued: 401 credential_unknown.
    let mut id = identity(&dir).unwrap();
    id["credential"] =
        Value::from("pac_0000000000000000000000000000000000000000000000000000000000000000");
    fs::write(
        dir.join("credential.json"),
        serde_json::to_vec(&id).unwrap(),
    )
    .unwrap();
    let log = tmp.path().join("again.log");
    let _agent = start_agent(&dir.join("config.json"), &log);
    let second = wait_for("enrollment as a new host", 60, || {
        let h = identity(&dir)?["host_id"].as_str()?.to_owned();
        (h != first).then_some(h)
    });
    wait_for("the new host online", 60, || {
        plat.hosts()
            .iter()
            .any(|h| h["id"] == second.as_str() && h["status"] == "online")
            .then_some(())
    });
    let text = fs::read_to_string(&log).unwrap();
    assert!(text.contains("re-enrolling with the license key"), "{text}");
    assert!(!dir.join("revoked.json").exists());
}

// Needs the platform's side of issue 10 (403 credential_revoked).
#[test]
fn revoked_agent_stops_with_78_and_stays_out_until_reenroll() {
    let tmp = tempfile::tempdir().unwrap();
    let plat = Platform::start(&tmp.path().join("platform"));
    let dir = tmp.path().join("agent");
    let (mut agent, host) = enrolled_agent(&dir, &plat, json!({}));
    let cred = identity(&dir).unwrap()["credential"]
        .as_str()
        .unwrap()
        .to_owned();
    let revoked = plat.json(&["hosts", "revoke", &host]);
    assert_eq!(revoked["status"], "revoked");

    let status = agent.wait_exit("the revoked agent to stop", 60);
    assert_eq!(status.code(), Some(78), "{}", agent.log_text());
    let marker_path = dir.join("revoked.json");
    let mode = fs::metadata(&marker_path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let marker_text = fs::read_to_string(&marker_path).unwrap();
    let marker: Value = serde_json::from_str(&marker_text).unwrap();
    assert_eq!(marker["host_id"], host.as_str());
    assert_eq!(marker["server_url"], plat.url());
    assert!(!marker["message"].as_str().unwrap().is_empty(), "{marker}");
    assert!(marker["revoked_at"].is_string());
    assert!(!marker_text.contains(&cred));
    let log = agent.log_text();
    assert!(
        log.contains("the platform revoked this agent's credential"),
        "{log}"
    );
    assert!(!log.contains("re-enrolling"), "{log}");

    // Started again (systemd would not, RestartPreventExitStatus=78): it stops at once.
    let mut again = start_agent(&dir.join("config.json"), &tmp.path().join("again.log"));
    assert_eq!(
        again.wait_exit("the agent to stop again", 30).code(),
        Some(78)
    );
    let hosts = plat.hosts();
    assert_eq!(
        hosts.len(),
        1,
        "a revoked agent must not come back on its own: {hosts:?}"
    );
    assert_eq!(hosts[0]["status"], "revoked");
    assert_eq!(identity(&dir).unwrap()["host_id"], host.as_str());

    // The operator's way back: a new host, the old one stays revoked.
    let said = reenroll(&dir.join("config.json"));
    assert!(
        said.contains("removed the revoked marker and the stored credential"),
        "{said}"
    );
    let _back = start_agent(&dir.join("config.json"), &tmp.path().join("back.log"));
    let new_host = wait_for("enrollment after reenroll", 60, || {
        let h = identity(&dir)?["host_id"].as_str()?.to_owned();
        (h != host).then_some(h)
    });
    wait_for("the new host online", 60, || {
        plat.hosts()
            .iter()
            .any(|h| h["id"] == new_host.as_str() && h["status"] == "online")
            .then_some(())
    });
    assert_no_secret(&log, &[&cred, plat.dev["enrollment_key"].as_str().unwrap()]);
}

// Needs the platform's side of issue 10 (settings, 403 pending_approval, approve).
#[test]
fn pending_host_waits_for_approval_then_carries_on() {
    let tmp = tempfile::tempdir().unwrap();
    let plat = Platform::start(&tmp.path().join("platform"));
    plat.api(
        http::Method::PUT,
        "/api/v1/settings",
        Some(json!({"require_approval": true})),
    )
    .expect("turn on approval");
    let dir = tmp.path().join("agent");
    let cfg = agent_config(&dir, &plat, json!({}));
    let mut agent = start_agent(&cfg, &tmp.path().join("agent.log"));
    let host = wait_for("the agent's credential", 60, || {
        identity(&dir).and_then(|v| v["host_id"].as_str().map(str::to_owned))
    });
    wait_for("the agent to say it waits", 60, || {
        agent
            .log_text()
            .contains("waiting for an operator to approve this host")
            .then_some(())
    });
    let pending = plat
        .api(http::Method::GET, "/api/v1/hosts?status=pending", None)
        .unwrap();
    assert!(pending.to_string().contains(&host), "{pending}");

    // doctor sees it too.
    let d = agent_platform::doctor(&cfg, &["--output", "json"]);
    let cred = d.check("credential");
    assert_eq!(cred["level"], "warn", "{cred}");
    assert!(
        cred["detail"]
            .as_str()
            .unwrap()
            .starts_with("pending approval"),
        "{cred}"
    );

    // Three heartbeats later: still asking, said once, nothing scanned or run.
    std::thread::sleep(std::time::Duration::from_secs(16));
    assert!(agent.running());
    let log = agent.log_text();
    assert_eq!(
        log.matches("waiting for an operator to approve this host")
            .count(),
        1,
        "{log}"
    );
    assert!(!log.contains("scan uploaded"), "{log}");
    assert!(!log.contains("platform unreachable"), "{log}");
    assert!(
        identity(&dir).is_some(),
        "the credential is kept while pending"
    );

    plat.api(
        http::Method::POST,
        &format!("/api/v1/hosts/{host}/approve"),
        None,
    )
    .expect("approve");
    wait_for("the agent to carry on", 60, || {
        let log = agent.log_text();
        (log.contains("an operator approved this host") && log.contains("scan uploaded"))
            .then_some(())
    });
    wait_for("the approved host online with packages", 60, || {
        plat.hosts()
            .iter()
            .any(|h| {
                h["id"] == host.as_str()
                    && h["status"] == "online"
                    && h["packages"].as_u64().unwrap_or(0) > 0
            })
            .then_some(())
    });
}

// Needs the platform's side of issue 10 (`POST /api/v1/agent/credential`, whoami).
#[test]
fn credential_rotates_without_missing_a_heartbeat() {
    let tmp = tempfile::tempdir().unwrap();
    let plat = Platform::start(&tmp.path().join("platform"));
    let dir = tmp.path().join("agent");
    let (agent, host) = enrolled_agent(&dir, &plat, json!({"credential_rotation_days": 1}));
    drop(agent);
    // The stored credential is two days old now.
    let mut id = identity(&dir).unwrap();
    let old = id["credential"].as_str().unwrap().to_owned();
    id["issued_at"] = Value::from((chrono::Utc::now() - chrono::Duration::days(2)).to_rfc3339());
    fs::write(
        dir.join("credential.json"),
        serde_json::to_vec(&id).unwrap(),
    )
    .unwrap();

    let log = tmp.path().join("rotating.log");
    let agent = start_agent(&dir.join("config.json"), &log);
    let new = wait_for("the rotated credential stored", 60, || {
        let c = identity(&dir)?["credential"].as_str()?.to_owned();
        (c != old).then_some(c)
    });
    let stored = identity(&dir).unwrap();
    assert_eq!(stored["host_id"], host.as_str());
    let issued: chrono::DateTime<chrono::Utc> =
        stored["issued_at"].as_str().unwrap().parse().unwrap();
    assert!(
        chrono::Utc::now() - issued < chrono::Duration::minutes(5),
        "{issued}"
    );
    let mode = fs::metadata(dir.join("credential.json"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    wait_for("the audit line", 30, || {
        fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("credential rotated")
            .then_some(())
    });

    // The next requests use the new one; once used, the old one is gone.
    let done = plat.json(&[
        "commands",
        "queue",
        "--host",
        &host,
        "health_check",
        "--wait",
        "60",
    ]);
    assert_ne!(done["state"], "queued", "{done}");
    let who = plat.whoami(&new).expect("the new credential is accepted");
    assert_eq!(who["host_id"], host.as_str());
    let refused = plat.whoami(&old).unwrap_err();
    assert_eq!(refused.status(), Some(401), "{refused}");
    assert_eq!(refused.code(), Some("credential_unknown"));

    // Same host, still online, one of it; no heartbeat failed on the way.
    let hosts = plat.hosts();
    assert_eq!(hosts.len(), 1, "{hosts:?}");
    assert_eq!(hosts[0]["status"], "online");
    let text = fs::read_to_string(&log).unwrap();
    assert!(!text.contains("platform unreachable"), "{text}");
    assert!(!text.contains("re-enrolling"), "{text}");
    assert_no_secret(&text, &[&old, &new]);
    drop(agent);
}
