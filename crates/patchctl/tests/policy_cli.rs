//! Groups, host tags, approvals, rules and manifests with the real `patchctl` binary
//! against `patchctl server --dev` over real TLS: a group by tag, a host tagged into it,
//! updates approved by name and from a host's scan, a rule created and run, a manifest
//! frozen and shown, in text and JSON, and the errors of malformed input.

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

/// A Debian 12 host with one security update, straight into the platform's database.
fn add_host(p: &Platform, name: &str) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = patchctl_storage::open(p.dev["database_url"].as_str().unwrap())
            .await
            .unwrap();
        let org = store.org_by_name("default").await.unwrap().unwrap();
        let key = store
            .create_enrollment_key(org.id, "policy", "policy-key-hash", Utc::now())
            .await
            .unwrap();
        let system = SystemInfo {
            hostname: name.into(),
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
                credential_hash: "policy-cli-credential".into(),
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
    });
}

#[test]
fn groups_approvals_and_manifests_from_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let p = Platform::start(&tmp.path().join("dev"), &tmp.path().join("server.log"));
    add_host(&p, "web-1");

    // Groups and tags.
    let o = ok(
        &p,
        &[
            "groups", "create", "canary", "--tag", "canary", "--os", "debian",
        ],
    );
    assert!(
        o.contains("group canary created: tag canary, os debian (0 hosts now)"),
        "{o}"
    );
    let o = ok(&p, &["groups", "tag", "web-1", "canary"]);
    assert!(o.contains("groups:     all canary"), "{o}");
    let g = p.json(&["groups", "show", "canary"]);
    assert_eq!(g["host_count"], 1);
    let o = ok(&p, &["groups", "list"]);
    assert!(
        o.contains("NAME") && o.contains("every host") && o.contains("canary"),
        "{o}"
    );
    let e = fails(&p, &["groups", "tag", "web-1", "bad tag"]);
    assert!(e.contains("bad tag"), "{e}");
    let e = fails(&p, &["groups", "delete", "all"]);
    assert!(e.contains("every host"), "{e}");

    // Approvals: by name, then the host's security updates.
    let e = fails(
        &p,
        &[
            "approvals",
            "add",
            "--group",
            "canary",
            "--package",
            "curl=7.88.1-10+deb12u8",
        ],
    );
    assert!(e.contains("--ecosystem"), "{e}");
    let e = fails(
        &p,
        &[
            "approvals",
            "add",
            "--group",
            "canary",
            "--ecosystem",
            "Debian:12",
            "--package",
            "curl",
        ],
    );
    assert!(e.contains("NAME=VERSION"), "{e}");
    let o = ok(
        &p,
        &[
            "approvals",
            "add",
            "--group",
            "canary",
            "--ecosystem",
            "Debian:12",
            "--package",
            "curl=7.88.1-10+deb12u8",
        ],
    );
    assert!(
        o.contains("1 updates approved (0 were approved already)"),
        "{o}"
    );
    let out = p.json(&[
        "approvals",
        "add",
        "--group",
        "canary",
        "--host",
        "web-1",
        "--security-only",
    ]);
    assert_eq!(out["approved"][0]["name"], "openssl");
    assert_eq!(out["approved"][0]["ecosystem"], "Debian:12");
    let o = ok(&p, &["approvals", "list", "--group", "canary"]);
    assert!(
        o.contains("openssl") && o.contains("3.0.15-1~deb12u1") && o.contains("active"),
        "{o}"
    );

    // A rule, run now (nothing new: a zero-day rule approves what is already approved).
    let o = ok(
        &p,
        &[
            "approvals",
            "rules",
            "create",
            "sec-now",
            "--group",
            "canary",
            "--min-severity",
            "any",
            "--after-days",
            "0",
        ],
    );
    assert!(o.contains("rule sec-now created"), "{o}");
    let e = fails(
        &p,
        &[
            "approvals",
            "rules",
            "create",
            "x",
            "--group",
            "canary",
            "--min-severity",
            "severe",
            "--after-days",
            "1",
        ],
    );
    assert!(e.contains("any, low, medium, high or critical"), "{e}");
    let o = ok(&p, &["approvals", "rules", "run"]);
    assert!(o.contains("the rules approved 0 updates"), "{o}");
    let rules = p.json(&["approvals", "rules", "list"]);
    assert_eq!(rules[0]["name"], "sec-now");

    // A manifest.
    let o = ok(
        &p,
        &["manifests", "create", "patch-day", "--group", "canary"],
    );
    assert!(
        o.contains("manifest patch-day (group canary, 2 packages"),
        "{o}"
    );
    assert!(
        o.contains("openssl") && o.contains("3.0.15-1~deb12u1"),
        "{o}"
    );
    let m = p.json(&["manifests", "show", "patch-day"]);
    assert_eq!(m["items"].as_array().unwrap().len(), 2);
    let list = p.json(&["manifests", "list"]);
    assert_eq!(list[0]["name"], "patch-day");

    // Withdraw one approval.
    let approvals = p.json(&["approvals", "list"]);
    let id = approvals[0]["id"].as_str().unwrap().to_owned();
    let o = ok(&p, &["approvals", "revoke", &id]);
    assert!(o.contains("withdrawn"), "{o}");
    let e = fails(&p, &["approvals", "revoke", &id]);
    assert!(e.contains("no active approval"), "{e}");
}
