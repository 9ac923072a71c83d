//! Deployments with the real `patchctl` binary against `patchctl server --dev` over
//! real TLS: three Debian hosts (straight into the platform's database, with a scan
//! that offers a security update) tagged into a group, their update approved and frozen
//! into a manifest with the CLI, then `deployments create` in three rings
//! (`--rings 5,25,100`), `list`, `show` (the rings with their counts), `hosts` (every
//! host in its ring), `pause`, `resume`, `cancel` with reasons (each refused transition
//! answered 409 with a hint of what the state allows), `events` (every transition with
//! who and why), text and `--json`, and the errors of bad input: rings that are not
//! cumulative, a reboot policy that does not exist, an unknown manifest or group, a
//! name used twice.

// The harness starts the binary under test; the no-spawn rule is for agent code.
#![allow(clippy::disallowed_methods)]

mod common;

use std::process::Output;

use chrono::Utc;
use common::platform::Platform;
use patchctl_proto::agent::{OsInfo, SystemInfo};
use patchctl_proto::command::AvailableUpdate;
use patchctl_proto::scan::{ScanState, ScanUpdates};
use patchctl_storage::NewHost;
use serde_json::Value;

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[track_caller]
fn ok(p: &Platform, args: &[&str]) -> String {
    let out = p.cli(args);
    let (o, e) = text(&out);
    assert!(out.status.success(), "patchctl {args:?} failed: {e}");
    o
}

#[track_caller]
fn fails(p: &Platform, args: &[&str]) -> String {
    let out = p.cli(args);
    let (o, e) = text(&out);
    assert!(!out.status.success(), "patchctl {args:?} succeeded: {o}");
    e
}

/// `args` with `--json`, parsed.
#[track_caller]
fn json(p: &Platform, args: &[&str]) -> Value {
    let mut a = args.to_vec();
    a.push("--json");
    let out = p.cli(&a);
    let (o, e) = text(&out);
    assert!(out.status.success(), "patchctl {a:?} failed: {e}");
    serde_json::from_str(&o).unwrap_or_else(|err| panic!("patchctl {a:?}: {err}: {o}"))
}

/// Debian 12 hosts, each with one security update, straight into the database.
fn add_hosts(p: &Platform, names: &[&str]) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = patchctl_storage::open(p.dev["database_url"].as_str().unwrap())
            .await
            .unwrap();
        let org = store.org_by_name("default").await.unwrap().unwrap();
        let key = store
            .create_enrollment_key(org.id, "deploy", "deploy-key-hash", Utc::now())
            .await
            .unwrap();
        for name in names {
            let system = SystemInfo {
                hostname: (*name).into(),
                os: OsInfo {
                    id: "debian".into(),
                    version_id: "12".into(),
                    version_codename: "bookworm".into(),
                    ..Default::default()
                },
                ..Default::default()
            };
            let h = store
                .create_host(NewHost {
                    org_id: org.id,
                    enrollment_key_id: key.id,
                    credential_hash: format!("deploy-cli-credential-{name}"),
                    agent_version: "1.0.0".into(),
                    system: system.clone(),
                    now: Utc::now(),
                })
                .await
                .unwrap();
            let mut state = ScanState {
                system,
                package_manager: Some("dpkg".into()),
                packages: Vec::new(),
                updates: Some(ScanUpdates {
                    refreshed: true,
                    updates: vec![AvailableUpdate {
                        name: "openssl".into(),
                        arch: "amd64".into(),
                        current_version: Some("3.0.14-1~deb12u2".into()),
                        candidate_version: "3.0.15-1~deb12u1".into(),
                        origins: vec!["Debian-Security:12/stable-security".into()],
                        security: true,
                        advisories: Vec::new(),
                    }],
                    removals: Vec::new(),
                    error: None,
                }),
            };
            state.canonicalize();
            store
                .put_scan(
                    h.id,
                    Utc::now(),
                    &state.digest(),
                    &state,
                    patchctl_storage::ScanKind::Full,
                )
                .await
                .unwrap();
        }
    });
}

#[test]
fn deployments_from_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let p = Platform::start(&tmp.path().join("dev"), &tmp.path().join("server.log"));
    add_hosts(&p, &["web-1", "web-2", "web-3"]);

    // A group, the hosts in it, their update approved and frozen.
    ok(&p, &["groups", "create", "web", "--tag", "web"]);
    for h in ["web-1", "web-2", "web-3"] {
        ok(&p, &["groups", "tag", h, "web"]);
    }
    ok(
        &p,
        &[
            "approvals",
            "add",
            "--group",
            "web",
            "--host",
            "web-1",
            "--security-only",
        ],
    );
    ok(&p, &["manifests", "create", "dec", "--group", "web"]);

    // Bad input, refused before or by the platform, with the reason.
    let base = [
        "deployments",
        "create",
        "--name",
        "rollout",
        "--manifest",
        "dec",
        "--group",
        "web",
    ];
    let with = |extra: &[&'static str]| -> Vec<&str> {
        let mut a = base.to_vec();
        a.extend_from_slice(extra);
        a
    };
    let e = fails(&p, &with(&["--rings", "25,5,100"]));
    assert!(e.contains("--rings") && e.contains("cumulative"), "{e}");
    let e = fails(&p, &with(&["--rings", "5,50"]));
    assert!(e.contains("must be 100"), "{e}");
    let e = fails(&p, &with(&["--rings", "0,100"]));
    assert!(e.contains("--rings"), "{e}");
    let e = fails(&p, &with(&["--reboot", "always"]));
    assert!(e.contains("never or if_required"), "{e}");
    let e = fails(
        &p,
        &[
            "deployments",
            "create",
            "--name",
            "x",
            "--manifest",
            "no-such-manifest",
            "--group",
            "web",
        ],
    );
    assert!(e.contains("404"), "{e}");
    let e = fails(
        &p,
        &[
            "deployments",
            "create",
            "--name",
            "x",
            "--manifest",
            "dec",
            "--group",
            "no-such-group",
        ],
    );
    assert!(e.contains("404"), "{e}");
    let e = fails(
        &p,
        &["deployments", "create", "--name", "x", "--manifest", "dec"],
    );
    assert!(e.contains("--group"), "{e}");
    assert!(
        p.json(&["deployments", "list"])
            .as_array()
            .unwrap()
            .is_empty(),
        "nothing was created"
    );

    // Three rings over three hosts: one host each.
    let d = json(
        &p,
        &with(&[
            "--rings",
            "5,25,100",
            "--soak-minutes",
            "30",
            "--max-failed-percent",
            "10",
        ]),
    );
    assert_eq!(d["name"], "rollout");
    assert_eq!(d["manifest"], "dec");
    assert_eq!(d["groups"], serde_json::json!(["web"]));
    assert_eq!(d["reboot"], "never");
    assert_eq!(d["hosts"], 3);
    assert_eq!(d["state"], "running");
    let rings = d["rings"].as_array().unwrap();
    assert_eq!(rings.len(), 3);
    for (r, percent) in rings.iter().zip([5, 25, 100]) {
        assert_eq!(r["percent"], percent);
        assert_eq!(r["hosts"], 1);
        assert_eq!(r["soak_minutes"], 30);
        assert_eq!(r["max_failed_percent"], 10);
    }
    let e = fails(&p, &with(&["--rings", "50,100"]));
    assert!(
        e.contains("409") && e.contains("hint:"),
        "a name is used once: {e}"
    );

    // list, show, hosts: text and JSON.
    let o = ok(&p, &["deployments", "list"]);
    assert!(
        o.contains("NAME") && o.contains("STATE") && o.contains("rollout") && o.contains("dec"),
        "{o}"
    );
    let listed = p.json(&["deployments", "list"]);
    assert_eq!(listed[0]["id"], d["id"]);
    let o = ok(&p, &["deployments", "show", "rollout"]);
    for want in [
        "rollout",
        "state:     running",
        "manifest:  dec",
        "groups:    web",
        "RING",
        "PERCENT",
        "HEALTHY",
        "FAILED",
        "IN PROGRESS",
        "PENDING",
        "ring-1",
        "ring-3",
        "100 %",
    ] {
        assert!(o.contains(want), "show lacks {want:?}: {o}");
    }
    let by_id = json(&p, &["deployments", "show", d["id"].as_str().unwrap()]);
    assert_eq!(by_id["name"], "rollout");
    let hosts = json(&p, &["deployments", "hosts", "rollout"]);
    let hosts = hosts.as_array().unwrap();
    assert_eq!(hosts.len(), 3);
    let mut rings_of: Vec<u64> = hosts.iter().map(|h| h["ring"].as_u64().unwrap()).collect();
    rings_of.sort();
    assert_eq!(rings_of, [0, 1, 2], "one host per ring");
    let o = ok(&p, &["deployments", "hosts", "rollout"]);
    for want in [
        "HOSTNAME", "RING", "STAGE", "DETAIL", "web-1", "web-2", "web-3", "ring-2",
    ] {
        assert!(o.contains(want), "hosts lacks {want:?}: {o}");
    }
    let e = fails(&p, &["deployments", "show", "nope"]);
    assert!(e.contains("404"), "{e}");

    // pause, resume, cancel; each refused transition says what the state allows.
    let o = ok(
        &p,
        &[
            "deployments",
            "pause",
            "rollout",
            "--reason",
            "change freeze",
        ],
    );
    assert!(o.contains("deployment rollout: paused (pause)"), "{o}");
    let e = fails(&p, &["deployments", "pause", "rollout"]);
    assert!(
        e.contains("409") && e.contains("only a running deployment can be paused"),
        "{e}"
    );
    let v = json(&p, &["deployments", "resume", "rollout"]);
    assert_eq!(v["state"], "running");
    let e = fails(&p, &["deployments", "resume", "rollout"]);
    assert!(
        e.contains("409")
            && e.contains("only a paused deployment can be resumed")
            && e.contains("patchctl deployments show rollout"),
        "{e}"
    );
    let v = json(
        &p,
        &[
            "deployments",
            "cancel",
            "rollout",
            "--reason",
            "wrong manifest",
        ],
    );
    assert_eq!(v["state"], "cancelled");
    for action in ["pause", "resume", "cancel"] {
        let e = fails(&p, &["deployments", action, "rollout"]);
        assert!(e.contains("409") && e.contains("hint:"), "{action}: {e}");
    }
    let o = ok(&p, &["deployments", "show", "rollout"]);
    assert!(o.contains("state:     cancelled"), "{o}");

    // Every transition kept, with who and why.
    let events = json(&p, &["deployments", "events", "rollout"]);
    let events = events.as_array().unwrap();
    let deployment: Vec<(&str, Option<&str>)> = events
        .iter()
        .filter(|e| e["subject"] == "deployment")
        .map(|e| (e["to"].as_str().unwrap(), e["reason"].as_str()))
        .collect();
    let to: Vec<&str> = deployment.iter().map(|(t, _)| *t).collect();
    let tail = &to[to.len() - 3..];
    assert_eq!(tail, ["paused", "running", "cancelled"], "{events:?}");
    assert!(
        deployment.contains(&("paused", Some("change freeze")))
            && deployment.contains(&("cancelled", Some("wrong manifest"))),
        "{events:?}"
    );
    let o = ok(&p, &["deployments", "events", "rollout"]);
    for want in [
        "SUBJECT",
        "CHANGE",
        "running -> paused",
        "paused -> running",
        "change freeze",
        "wrong manifest",
    ] {
        assert!(o.contains(want), "events lack {want:?}: {o}");
    }
}
