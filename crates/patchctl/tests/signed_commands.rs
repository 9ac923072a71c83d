//! Signed commands end to end (issue 15 §1), with the real binaries on loopback:
//! `patchctl server --dev` and a separate `patchctl-agent` process over real TLS 1.3,
//! real ed25519 keys, and rows written straight into the platform's SQLite database.
//!
//! - A command row with no signature, a forged signature, an altered statement, a
//!   statement for another host or one past its expiry is refused by the agent: a
//!   `rejected` result naming the reason (`patchctl commands show`), an audit event,
//!   and no process started.
//! - A command that ran, set back to `queued` in the database, is refused as replayed.
//! - `patchctl admin signing-key rotate` while everything runs: a command queued before
//!   the rotation is signed again at its lease, the agent follows the signed rotation,
//!   and a command signed by the retired key is refused.
//! - Strict mode: an agent that pins a key refuses the platform's commands when the
//!   platform's key is another (a substituted key), whatever it announced.

// The harness starts the binaries under test; the no-spawn rule is for agent code.
#![allow(clippy::disallowed_methods)]

mod agent_platform;
mod common;

use std::path::{Path, PathBuf};

use agent_platform::{Platform, enrolled_agent, patchctl};
use chrono::{Duration, Utc};
use common::signing::{
    insert_row, insert_signed, org_of_host, platform_key, requeue_row, statement,
};
use common::wait_for;
use serde_json::{Value, json};
use uuid::Uuid;

fn db(plat: &Platform) -> String {
    plat.dev["database_url"].as_str().unwrap().to_owned()
}

fn server_json(plat: &Platform) -> PathBuf {
    PathBuf::from(plat.dev["server_config"].as_str().unwrap())
}

fn key_file(plat: &Platform) -> PathBuf {
    server_json(plat).with_file_name("command-signing.key")
}

/// Waits for the command's final state and returns its record.
fn finished(plat: &Platform, id: Uuid) -> Value {
    wait_for(&format!("command {id} to finish"), 90, || {
        let r = plat.json(&["commands", "show", &id.to_string()]);
        ["succeeded", "failed", "rejected"]
            .contains(&r["state"].as_str().unwrap_or(""))
            .then_some(r)
    })
}

fn assert_refused(plat: &Platform, id: Uuid, words: &str) {
    let rec = finished(plat, id);
    assert_eq!(rec["state"], "rejected", "{rec}");
    let summary = rec["result"]["summary"].as_str().unwrap();
    assert!(
        summary.starts_with("refused: ") && summary.contains(words),
        "{summary}"
    );
    // `patchctl commands show` tells the operator the same.
    let shown = plat.cli(&["commands", "show", &id.to_string()]);
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(text.contains(words), "{text}");
}

fn admin(args: &[&str]) -> Value {
    let out = std::process::Command::new(patchctl())
        .args(["admin", "signing-key"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "patchctl admin signing-key {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

fn queue(plat: &Platform, host: &str, kind: &str, params: &[&str]) -> Uuid {
    let mut args = vec!["commands", "queue", "--host", host, kind];
    for p in params {
        args.extend(["--param", p]);
    }
    plat.json(&args)["id"].as_str().unwrap().parse().unwrap()
}

fn known_key(agent_dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(agent_dir.join("command-keys.json")).unwrap()).unwrap()
}

#[test]
fn commands_written_into_the_database_without_the_key_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let plat = Platform::start(&tmp.path().join("platform"));
    let dir = tmp.path().join("agent");
    let (mut agent, host) = enrolled_agent(&dir, &plat, json!({}));
    let host: Uuid = host.parse().unwrap();
    let db = db(&plat);
    let org = org_of_host(&db, host);

    // The agent learned the platform's key at enrollment: the one `show` prints.
    let shown = std::process::Command::new(patchctl())
        .args(["admin", "signing-key", "show", "--config"])
        .arg(server_json(&plat))
        .output()
        .unwrap();
    let shown = String::from_utf8(shown.stdout).unwrap();
    let pk = known_key(&dir)["current"].as_str().unwrap().to_owned();
    assert!(shown.contains(&pk), "{shown}");

    // A command queued through the platform runs.
    let ok = queue(&plat, &host.to_string(), "get_package_info", &["name=dpkg"]);
    assert_eq!(finished(&plat, ok)["state"], "succeeded");

    let later = Utc::now() + Duration::hours(1);
    let params = json!({"name": "dpkg"});
    let real = platform_key(&key_file(&plat), org);
    let attacker =
        patchctl_release::SecretKey::from_seed(patchctl_release::KeyRole::Command, [7; 32]);

    // 1. No signature at all.
    let unsigned = Uuid::new_v4();
    insert_row(&db, org, host, unsigned, "get_package_info", &params, None);
    // 2. Signed by a key the agent does not know.
    let forged = Uuid::new_v4();
    let doc = statement(
        &attacker,
        org,
        host,
        forged,
        "get_package_info",
        params.clone(),
        later,
    );
    insert_row(
        &db,
        org,
        host,
        forged,
        "get_package_info",
        &params,
        Some(&doc),
    );
    // 3. A real signature over a statement that was then altered (health_check made
    //    into check_updates).
    let altered = Uuid::new_v4();
    let mut doc = statement(&real, org, host, altered, "health_check", json!({}), later);
    doc.signed = doc.signed.replace("health_check", "check_updates");
    insert_row(
        &db,
        org,
        host,
        altered,
        "check_updates",
        &json!({}),
        Some(&doc),
    );
    // 4. Really signed, for another host.
    let elsewhere = Uuid::new_v4();
    let doc = statement(
        &real,
        org,
        Uuid::new_v4(),
        elsewhere,
        "get_package_info",
        params.clone(),
        later,
    );
    insert_row(
        &db,
        org,
        host,
        elsewhere,
        "get_package_info",
        &params,
        Some(&doc),
    );
    // 5. Really signed, expired (the row itself says it is still valid).
    let expired = Uuid::new_v4();
    let doc = statement(
        &real,
        org,
        host,
        expired,
        "get_package_info",
        params.clone(),
        Utc::now() - Duration::seconds(5),
    );
    insert_row(
        &db,
        org,
        host,
        expired,
        "get_package_info",
        &params,
        Some(&doc),
    );
    // 6. A signature copied from another command onto a new row.
    let copied = Uuid::new_v4();
    let doc = statement(
        &real,
        org,
        host,
        Uuid::new_v4(),
        "get_package_info",
        params.clone(),
        later,
    );
    insert_row(
        &db,
        org,
        host,
        copied,
        "get_package_info",
        &params,
        Some(&doc),
    );

    assert_refused(&plat, unsigned, "not signed");
    assert_refused(&plat, forged, "unknown key");
    assert_refused(&plat, altered, "does not verify");
    assert_refused(&plat, elsewhere, "not this one");
    assert_refused(&plat, expired, "expired");
    assert_refused(&plat, copied, "id differs from what was signed");

    // 7. The command that ran, replayed by setting its row back to queued.
    requeue_row(&db, ok);
    let log = dir.with_extension("agent.log");
    wait_for("the replay to be refused", 60, || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        text.lines()
            .any(|l| {
                l.contains("command refused")
                    && l.contains("replayed")
                    && l.contains(&ok.to_string())
            })
            .then_some(())
    });
    // Its first, real result stands.
    assert_eq!(
        plat.json(&["commands", "show", &ok.to_string()])["result"]["status"],
        "succeeded"
    );

    // Each refusal is an audit event of the agent with its reason; no process started
    // for any of them (the agent logs every process it starts).
    let text = std::fs::read_to_string(&log).unwrap();
    for reason in [
        "unsigned",
        "unknown_key",
        "bad_signature",
        "other_host",
        "expired",
        "altered",
        "replayed",
    ] {
        assert!(
            text.lines()
                .any(|l| l.contains("command refused") && l.contains(reason)),
            "no audit event for {reason}"
        );
    }
    for id in [unsigned, forged, altered, elsewhere, expired, copied] {
        assert!(
            !text
                .lines()
                .any(|l| l.contains(&id.to_string()) && l.contains("command accepted")),
            "command {id} was accepted"
        );
    }

    // What the README shows a newcomer: `patchctl admin signing-key check-agent` writes
    // an unsigned and a foreign-signed command into the database; both are refused.
    let made = admin(&[
        "check-agent",
        "--config",
        server_json(&plat).to_str().unwrap(),
        "--host",
        &host.to_string(),
    ]);
    let made = made.as_array().unwrap();
    assert_eq!(made.len(), 2, "{made:?}");
    assert_refused(
        &plat,
        made[0]["command_id"].as_str().unwrap().parse().unwrap(),
        "not signed",
    );
    assert_refused(
        &plat,
        made[1]["command_id"].as_str().unwrap().parse().unwrap(),
        "unknown key",
    );
    assert!(agent.running());
}

#[test]
fn a_rotation_reaches_running_agents_and_retires_the_old_key() {
    let tmp = tempfile::tempdir().unwrap();
    let plat = Platform::start(&tmp.path().join("platform"));
    let dir = tmp.path().join("agent");
    let (agent, host) = enrolled_agent(&dir, &plat, json!({}));
    let host_id: Uuid = host.parse().unwrap();
    let db = db(&plat);
    let org = org_of_host(&db, host_id);
    let first = known_key(&dir)["current"].as_str().unwrap().to_owned();
    let old_secret = platform_key(&key_file(&plat), org);

    // The agent stops; a command is queued (signed by the first key); the key rotates.
    drop(agent);
    let before = queue(&plat, &host, "get_package_info", &["name=dpkg"]);
    let config = server_json(&plat);
    let rotated = admin(&[
        "rotate",
        "--config",
        config.to_str().unwrap(),
        "--org",
        "default",
    ]);
    assert_ne!(rotated["key"].as_str().unwrap(), first);

    // The rotation signed the queued command again with the new key; back up, the
    // agent follows the signed rotation and runs it.
    let cfg = dir.join("config.json");
    let _agent = agent_platform::start_agent(&cfg, &dir.with_extension("agent2.log"));
    let rec = finished(&plat, before);
    assert_eq!(rec["state"], "succeeded", "{rec}");
    let keys = known_key(&dir);
    assert_eq!(keys["current"], rotated["key"]);
    assert!(
        keys["retired"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k == rotated["retired"].as_str().unwrap()),
        "{keys}"
    );

    // New commands run under the new key (the platform re-read its key file).
    let after = queue(&plat, &host, "health_check", &[]);
    assert!(["succeeded", "failed"].contains(&finished(&plat, after)["state"].as_str().unwrap()));

    // A command signed by the retired key is refused.
    let params = json!({"name": "dpkg"});
    let stale = insert_signed(&db, &old_secret, org, host_id, "get_package_info", &params);
    // Written after the rotation, it is never signed again: the agent refuses it.
    assert_refused(&plat, stale, "retired key");

    // The rotation is in the audit trail.
    let audit = plat.json(&["audit", "list"]);
    assert!(audit.to_string().contains("signing_key.rotate"), "{audit}");
}

#[test]
fn a_pinned_agent_refuses_a_platform_with_a_substituted_key() {
    let tmp = tempfile::tempdir().unwrap();
    let plat = Platform::start(&tmp.path().join("platform"));
    let dir = tmp.path().join("agent");
    // The operator pinned the organisation's real key... of another platform: from the
    // agent's side, this platform's key is a substitute.
    let pinned =
        patchctl_release::SecretKey::from_seed(patchctl_release::KeyRole::Command, [42; 32]);
    let (agent, host) = enrolled_agent(
        &dir,
        &plat,
        json!({ "command_signing_key": pinned.public().to_line() }),
    );
    assert_eq!(known_key(&dir)["current"], pinned.public().to_line());
    let id = queue(&plat, &host, "get_package_info", &["name=dpkg"]);
    assert_refused(&plat, id, "unknown key");
    // A command signed by the pinned key runs.
    let db = db(&plat);
    let host_id: Uuid = host.parse().unwrap();
    let org = org_of_host(&db, host_id);
    let params = json!({"name": "dpkg"});
    let good = insert_signed(&db, &pinned, org, host_id, "get_package_info", &params);
    assert_eq!(finished(&plat, good)["state"], "succeeded");
    drop(agent);
}

fn cli(plat: &Platform, args: &[&str]) -> String {
    let out = plat.cli(args);
    assert!(
        out.status.success(),
        "patchctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn when_the_organisation_requires_it_an_install_needs_an_approvers_signature() {
    let tmp = tempfile::tempdir().unwrap();
    let plat = Platform::start(&tmp.path().join("platform"));
    let dir = tmp.path().join("agent");
    let (agent, host) = enrolled_agent(&dir, &plat, json!({}));
    let host_id: Uuid = host.parse().unwrap();
    let db = db(&plat);
    let org = org_of_host(&db, host_id);
    let config = server_json(&plat);
    let config = config.to_str().unwrap();

    // Alice makes her own key; an administrator of the platform lists her and turns
    // the rule on. The agent takes the list (signed by the command key) at its next
    // heartbeat.
    let alice = tmp.path().join("alice");
    cli(
        &plat,
        &["approvals", "keygen", "--out", alice.to_str().unwrap()],
    );
    let pubfile = alice.with_extension("pub");
    let out = std::process::Command::new(patchctl())
        .args([
            "admin",
            "approvers",
            "add",
            "--config",
            config,
            "--name",
            "alice",
            "--key",
        ])
        .arg(&pubfile)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = std::process::Command::new(patchctl())
        .args(["admin", "approvers", "require", "on", "--config", config])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_for("the agent to take the approver list", 30, || {
        known_key(&dir)["approvers"].is_object().then_some(())
    });

    // The platform alone (its key, no approver) cannot install.
    let id = queue(
        &plat,
        &host,
        "install_updates",
        &["package=patchctl-no-such-package=1.0"],
    );
    assert_refused(&plat, id, "requires an approver's signature");

    // An install that carries Alice's signature of a manifest naming exactly it is
    // admitted (and then fails in apt: there is no such package), one that names
    // another version is refused.
    let alice_key = patchctl_release::SecretKey::from_file(
        &std::fs::read_to_string(alice.with_extension("key")).unwrap(),
    )
    .unwrap();
    let approval = |version: &str| {
        patchctl_release::command::approval::sign_approval(
            &alice_key,
            &patchctl_proto::signing::ManifestApproval {
                kind: patchctl_proto::signing::MANIFEST_APPROVAL_KIND.into(),
                org,
                manifest: Uuid::new_v4(),
                name: "patch-day".into(),
                items: vec![patchctl_proto::signing::ApprovedItem {
                    ecosystem: "Debian:12".into(),
                    name: "patchctl-no-such-package".into(),
                    version: version.into(),
                }],
                created: Utc::now(),
            },
        )
        .unwrap()
    };
    let real = platform_key(&key_file(&plat), org);
    let params = json!({"packages": [{"name": "patchctl-no-such-package", "version": "1.0"}]});
    for (version, refused) in [("2.0", true), ("1.0", false)] {
        let id = Uuid::new_v4();
        let st = patchctl_proto::signing::CommandStatement {
            kind: patchctl_proto::signing::COMMAND_STATEMENT_KIND.into(),
            org,
            host: host_id,
            command: id,
            operation: "install_updates".into(),
            params: params.clone(),
            queued_at: Utc::now(),
            expires_at: Utc::now() + Duration::hours(1),
            approval: Some(approval(version)),
        };
        let doc = patchctl_release::command::sign_command(&real, &st).unwrap();
        insert_row(
            &db,
            org,
            host_id,
            id,
            "install_updates",
            &params,
            Some(&doc),
        );
        if refused {
            assert_refused(&plat, id, "is not in the approved manifest patch-day");
        } else {
            let rec = finished(&plat, id);
            let summary = rec["result"]["summary"].as_str().unwrap();
            assert!(!summary.starts_with("refused:"), "{rec}");
        }
    }
    drop(agent);
}
