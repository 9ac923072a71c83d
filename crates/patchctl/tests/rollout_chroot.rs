//! A real staged rollout, end to end: three Debian hosts, each a private copy of the
//! cached debootstrap chroot with the real `patchctl-agent` running inside (in a UTS
//! namespace of its own, so each has its own hostname), a local apt repository built by
//! the test, and the real platform on the host's loopback with a one-second policy tick.
//!
//! The repository holds `demo-app` 2.0 and 3.0 (1.0 is installed on every host) and
//! `demo-bad` 2.0, whose postinst exits 1 (1.0 is installed). Approvals and manifests
//! go through the operator CLI: `m-good` pins demo-app 2.0 for group `all`, `m-bad`
//! pins demo-bad 2.0 for the tagged group `fleet`.
//!
//! Then two deployments of three rings (33 %, 66 %, 100 %: one host each, as the
//! contract's `ring_ends` cuts three hosts; no soak, no reboot) through the REST API: `m-good` completes ring after ring, every host healthy and at exactly
//! 2.0 (not the newer 3.0) in its own dpkg database, each host's only install command
//! naming exactly `demo-app=2.0`; `m-bad` halts on its canary ring, whose host failed
//! the install on the postinst, the later rings are skipped and their hosts got no
//! install command and still have demo-bad 1.0. Events and audit entries of both are
//! read back. Needs root (chroot, mount, unshare, nsenter, dpkg).

// The harness runs debootstrap, dpkg-deb, chroot and the binaries under test.
#![allow(clippy::disallowed_methods)]

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::chroot::{Deb, suite};
use common::chroot_agent::ChrootAgent;
use common::platform::Platform;
use common::wait_for;
use http::Method;
use patchctl_testkit::{Harness, Need, trial};
use serde_json::Value;

fn main() -> std::process::ExitCode {
    // Root: chroot, mount, unshare and dpkg inside the chroots. debootstrap builds the
    // cached chroot on the first run.
    Harness::new()
        .test(trial!(three_ring_rollout_on_debian_chroots).needs([
            Need::Root,
            Need::Program("debootstrap"),
            Need::Program("dpkg-deb"),
            Need::Program("chroot"),
            Need::Program("unshare"),
            Need::Program("nsenter"),
            Need::Program("hostname"),
        ]))
        .run()
}

/// The hosts' names, one chroot each.
const HOSTS: [&str; 3] = ["rollout-a", "rollout-b", "rollout-c"];

/// demo-bad 2.0's postinst: a maintainer script that fails, as a broken one does.
const FAILING_POSTINST: &str =
    "#!/bin/sh\necho 'demo-bad: postinst failed on purpose' >&2\nexit 1\n";

/// The chroots' ecosystem as the platform names it (`Debian:12`), from the cached
/// chroot's os-release.
fn ecosystem(root: &Path) -> String {
    let os = fs::read_to_string(root.join("etc/os-release")).unwrap();
    let version = os
        .lines()
        .find_map(|l| l.strip_prefix("VERSION_ID="))
        .expect("VERSION_ID in the chroot's os-release")
        .trim_matches('"');
    format!("Debian:{version}")
}

/// The test's packages, built once: (name, version) -> .deb.
fn packages(out: &Path) -> BTreeMap<(&'static str, &'static str), PathBuf> {
    fs::create_dir_all(out).unwrap();
    let mut debs = BTreeMap::new();
    for (name, version) in [
        ("demo-app", "1.0"),
        ("demo-app", "2.0"),
        ("demo-app", "3.0"),
        ("demo-bad", "1.0"),
    ] {
        debs.insert((name, version), Deb::new(name, version).build(out));
    }
    let bad = Deb {
        postinst: Some(FAILING_POSTINST.into()),
        ..Deb::new("demo-bad", "2.0")
    };
    debs.insert(("demo-bad", "2.0"), bad.build(out));
    debs
}

fn three_ring_rollout_on_debian_chroots() {
    let started = Instant::now();
    let work = tempfile::Builder::new()
        .prefix("patchctl-rollout-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let debs = packages(&work.path().join("debs"));
    let platform = Platform::start_with(
        &work.path().join("platform"),
        &work.path().join("server.log"),
        &[("PATCHCTL_POLICY_TICK_SECS", "1")],
    );

    // Three hosts: demo-app 1.0 and demo-bad 1.0 installed, the repository as the only
    // apt source, the agent running.
    let mut chroots: Vec<ChrootAgent> = Vec::new();
    for name in HOSTS {
        let mut c = ChrootAgent::new(&work.path().join(name));
        c.dpkg_install(&[
            debs[&("demo-app", "1.0")].clone(),
            debs[&("demo-bad", "1.0")].clone(),
        ]);
        suite(
            &c.root.join("srv/repo"),
            "rollout",
            "PatchCTL",
            &[
                debs[&("demo-app", "2.0")].clone(),
                debs[&("demo-app", "3.0")].clone(),
                debs[&("demo-bad", "2.0")].clone(),
            ],
        );
        c.apt_sources("deb [trusted=yes] file:/srv/repo rollout main\n");
        c.start_agent(&platform, Some(name));
        chroots.push(c);
    }
    let eco = ecosystem(&chroots[0].root);

    // Each host enrolled under its own name, and its scan saw the repository: demo-app
    // 3.0 is the newest, demo-bad 2.0 is there.
    let ids: BTreeMap<String, String> = wait_for("the three hosts", 90, || {
        let list = platform.json(&["hosts", "list"]);
        let ids: BTreeMap<String, String> = list
            .as_array()?
            .iter()
            .map(|h| {
                (
                    h["hostname"].as_str().unwrap().to_owned(),
                    h["id"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        (ids.len() == HOSTS.len()).then_some(ids)
    });
    assert_eq!(
        ids.keys().map(String::as_str).collect::<Vec<_>>(),
        HOSTS,
        "one host per chroot, each with its own name"
    );
    for (name, id) in &ids {
        let updates = wait_for(&format!("{name}'s scanned updates"), 90, || {
            let su = platform.json(&["hosts", "updates", id]);
            let found: BTreeMap<String, String> = su["updates"]
                .as_array()?
                .iter()
                .map(|u| {
                    (
                        u["name"].as_str().unwrap().to_owned(),
                        u["candidate_version"].as_str().unwrap().to_owned(),
                    )
                })
                .collect();
            (found.len() == 2).then_some(found)
        });
        assert_eq!(updates["demo-app"], "3.0", "{name}: {updates:?}");
        assert_eq!(updates["demo-bad"], "2.0", "{name}: {updates:?}");
    }

    // Approvals and the two manifests, through the CLI.
    let approved = platform.json(&[
        "approvals",
        "add",
        "--group",
        "all",
        "--ecosystem",
        &eco,
        "--package",
        "demo-app=2.0",
    ]);
    assert_eq!(approved["approved"][0]["name"], "demo-app", "{approved}");
    let good = platform.json(&["manifests", "create", "m-good", "--group", "all"]);
    assert_eq!(
        good["items"],
        serde_json::json!([{"ecosystem": eco, "name": "demo-app", "version": "2.0"}]),
        "{good}"
    );
    platform.json(&["groups", "create", "fleet", "--tag", "rollout"]);
    for id in ids.values() {
        platform.json(&["groups", "tag", id, "rollout"]);
    }
    assert_eq!(platform.json(&["groups", "show", "fleet"])["host_count"], 3);
    platform.json(&[
        "approvals",
        "add",
        "--group",
        "fleet",
        "--ecosystem",
        &eco,
        "--package",
        "demo-bad=2.0",
    ]);
    let bad = platform.json(&["manifests", "create", "m-bad", "--group", "fleet"]);
    assert_eq!(
        bad["items"],
        serde_json::json!([{"ecosystem": eco, "name": "demo-bad", "version": "2.0"}]),
        "{bad}"
    );

    let by_host: BTreeMap<&str, &ChrootAgent> = ids
        .values()
        .map(String::as_str)
        .zip(chroots.iter())
        .collect();
    good_rollout(&platform, &by_host);
    bad_rollout(&platform, &by_host);
    events_and_audit(&platform);

    eprintln!(
        "rollout_chroot: wall time {:.0} s",
        started.elapsed().as_secs_f64()
    );
    drop(chroots);
    drop(platform);
}

/// Three rings of one host each: `ring_ends` gives 33 %, 66 %, 100 % of three hosts
/// one host per ring (34 % would be two).
fn rings() -> Value {
    serde_json::json!([
        {"name": "canary", "percent": 33, "soak_minutes": 0},
        {"name": "early", "percent": 66, "soak_minutes": 0},
        {"name": "rest", "percent": 100, "soak_minutes": 0},
    ])
}

/// Creates a deployment through the REST API and checks its first view.
fn deploy(p: &Platform, name: &str, manifest: &str, group: &str) -> Value {
    let req = serde_json::json!({
        "name": name,
        "manifest": manifest,
        "groups": [group],
        "rings": rings(),
        "reboot": "never",
    });
    let d = p
        .api(Method::POST, "/api/v1/deployments", Some(&req))
        .unwrap_or_else(|e| panic!("POST /api/v1/deployments {req}: {e}"));
    assert_eq!(d["name"], name, "{d}");
    assert_eq!(d["hosts"], 3, "{d}");
    let sizes: Vec<u64> = d["rings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["hosts"].as_u64().unwrap())
        .collect();
    assert_eq!(sizes, [1, 1, 1], "{d}");
    d
}

/// `GET /api/v1/deployments/{name}{rest}`.
fn get(p: &Platform, name: &str, rest: &str) -> Value {
    let path = format!("/api/v1/deployments/{name}{rest}");
    p.api(Method::GET, &path, None)
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

/// Waits until the deployment reaches a final state; on timeout, fails with where it
/// stands (view, hosts, events).
fn finished(p: &Platform, name: &str, secs: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let d = get(p, name, "");
        if matches!(
            d["state"].as_str(),
            Some("completed" | "halted" | "cancelled")
        ) {
            return d;
        }
        assert!(
            Instant::now() < deadline,
            "deployment {name} not finished after {secs} s:\n{d:#}\nhosts: {:#}\nevents: {:#}",
            get(p, name, "/hosts"),
            get(p, name, "/events")
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The host's `install_updates` commands, newest first.
fn installs(p: &Platform, host: &str) -> Vec<Value> {
    let list = p.json(&["commands", "list", "--host", host, "--limit", "1000"]);
    list.as_array()
        .unwrap()
        .iter()
        .filter(|c| c["kind"] == "install_updates")
        .cloned()
        .collect()
}

/// Rings in order: each one started only after the one before it finished.
fn assert_in_order(d: &Value) {
    let at = |r: &Value, k: &str| {
        chrono::DateTime::parse_from_rfc3339(r[k].as_str().unwrap_or_else(|| panic!("{k}: {r}")))
            .unwrap()
    };
    let rings = d["rings"].as_array().unwrap();
    for pair in rings.windows(2) {
        if pair[1]["state"] == "skipped" {
            continue;
        }
        assert!(
            at(&pair[0], "finished_at") <= at(&pair[1], "started_at"),
            "a ring started before the one before it finished: {d:#}"
        );
    }
}

/// m-good on three rings: completed, every ring passed, every host healthy and at
/// exactly demo-app 2.0, installed by one command naming exactly demo-app=2.0.
fn good_rollout(p: &Platform, chroots: &BTreeMap<&str, &ChrootAgent>) {
    let d = deploy(p, "d-good", "m-good", "all");
    assert_eq!(d["state"], "running", "{d}");
    let d = finished(p, "d-good", 150);
    assert_eq!(d["state"], "completed", "{d:#}");
    for r in d["rings"].as_array().unwrap() {
        assert_eq!(r["state"], "passed", "{d:#}");
        assert_eq!(r["counts"]["healthy"], 1, "{d:#}");
    }
    assert_in_order(&d);
    let hosts = get(p, "d-good", "/hosts");
    let hosts = hosts.as_array().unwrap();
    assert_eq!(hosts.len(), 3, "{hosts:?}");
    let mut rings_seen: Vec<u64> = Vec::new();
    for h in hosts {
        assert_eq!(h["stage"], "healthy", "{h}");
        assert_eq!(h["packages"], 1, "{h}");
        rings_seen.push(h["ring"].as_u64().unwrap());
        let id = h["host_id"].as_str().unwrap();
        let chroot = chroots[id];
        assert_eq!(
            chroot.dpkg_version("demo-app").as_deref(),
            Some("2.0"),
            "{}: the manifest's version, not the newest",
            h["hostname"]
        );
        assert_eq!(
            fs::read_to_string(chroot.root.join("usr/share/patchctl-test/demo-app/version"))
                .unwrap(),
            "2.0"
        );
        let cmds = installs(p, id);
        assert_eq!(cmds.len(), 1, "{}: {cmds:#?}", h["hostname"]);
        assert_eq!(cmds[0]["id"], h["install_command"], "{h}");
        assert_eq!(cmds[0]["state"], "succeeded", "{:#}", cmds[0]);
        assert_eq!(
            cmds[0]["params"],
            serde_json::json!({"packages": [{"name": "demo-app", "version": "2.0"}]}),
            "{:#}",
            cmds[0]
        );
    }
    rings_seen.sort_unstable();
    assert_eq!(rings_seen, [0, 1, 2], "{hosts:?}");
}

/// m-bad on three rings: the canary's postinst fails, the deployment halts naming the
/// ring, the later rings are skipped and their hosts install nothing.
fn bad_rollout(p: &Platform, chroots: &BTreeMap<&str, &ChrootAgent>) {
    deploy(p, "d-bad", "m-bad", "fleet");
    let d = finished(p, "d-bad", 120);
    assert_eq!(d["state"], "halted", "{d:#}");
    let states: Vec<&str> = d["rings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["failed", "skipped", "skipped"], "{d:#}");
    let hosts = get(p, "d-bad", "/hosts");
    let hosts = hosts.as_array().unwrap();
    let canary = hosts.iter().find(|h| h["ring"] == 0).unwrap();
    let reason = d["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("canary") && reason.contains(canary["hostname"].as_str().unwrap()),
        "the reason names the ring and its host: {d:#}"
    );
    assert_eq!(canary["stage"], "failed", "{canary}");
    let detail = canary["detail"].as_str().unwrap_or_default();
    assert!(
        detail.starts_with("install failed: ")
            && detail.contains("dpkg: error processing package demo-bad")
            && detail.contains("post-installation script"),
        "the canary's detail says what failed, in dpkg's words: {canary}"
    );
    let id = canary["host_id"].as_str().unwrap();
    let cmds = installs(p, id);
    assert_eq!(cmds.len(), 2, "d-good's and d-bad's: {cmds:#?}");
    assert_eq!(cmds[0]["id"], canary["install_command"], "{canary}");
    assert_eq!(cmds[0]["state"], "failed", "{:#}", cmds[0]);
    assert_eq!(
        cmds[0]["params"],
        serde_json::json!({"packages": [{"name": "demo-bad", "version": "2.0"}]})
    );
    let (status, version) = chroots[id].dpkg_status("demo-bad").unwrap();
    assert_eq!(version, "2.0");
    assert_ne!(status, "install ok installed", "the postinst failed");

    for h in hosts.iter().filter(|h| h["ring"] != 0) {
        assert_eq!(h["stage"], "skipped", "{h}");
        assert!(h.get("install_command").is_none(), "{h}");
        let id = h["host_id"].as_str().unwrap();
        let cmds = installs(p, id);
        assert_eq!(
            cmds.len(),
            1,
            "{}: only d-good's install: {cmds:#?}",
            h["hostname"]
        );
        assert_eq!(
            cmds[0]["params"]["packages"][0]["name"], "demo-app",
            "{cmds:#?}"
        );
        assert_eq!(
            chroots[id].dpkg_version("demo-bad").as_deref(),
            Some("1.0"),
            "{}",
            h["hostname"]
        );
    }
}

/// The transitions of both deployments are kept as events and audited.
fn events_and_audit(p: &Platform) {
    let has = |events: &Value, subject: &str, to: &str| {
        events
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["subject"] == subject && e["to"] == to)
            .count()
    };
    let good = get(p, "d-good", "/events");
    assert_eq!(has(&good, "deployment", "completed"), 1, "{good:#}");
    assert_eq!(has(&good, "ring", "passed"), 3, "{good:#}");
    assert_eq!(has(&good, "host", "healthy"), 3, "{good:#}");
    let bad = get(p, "d-bad", "/events");
    assert_eq!(has(&bad, "deployment", "halted"), 1, "{bad:#}");
    assert_eq!(has(&bad, "ring", "failed"), 1, "{bad:#}");
    assert_eq!(has(&bad, "ring", "skipped"), 2, "{bad:#}");
    assert_eq!(has(&bad, "host", "failed"), 1, "{bad:#}");

    let audit = p.json(&["audit", "list", "--action", "deployment.", "--all"]);
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    let count = |action: &str| actions.iter().filter(|a| **a == action).count();
    assert_eq!(count("deployment.create"), 2, "{audit:#}");
    assert_eq!(count("deployment.ring_completed"), 3, "{audit:#}");
    assert_eq!(count("deployment.completed"), 1, "{audit:#}");
    assert_eq!(count("deployment.host_failed"), 1, "{audit:#}");
    assert_eq!(count("deployment.halted"), 1, "{audit:#}");
}
