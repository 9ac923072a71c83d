//! The apt backend against a real Debian system: a debootstrap chroot (cached outside
//! the repository), a local apt repository of small packages built with `dpkg-deb`
//! (one with its update in `bookworm-security`, one with a normal update, one whose
//! update would remove another package), the real `patchctl-agent` binary running
//! inside the chroot, and the real platform on the host's loopback. Everything is
//! driven through the operator CLI. Needs root (chroot, mount, dpkg).
//!
//! Reboots: two kernel-like packages installed with the chroot's dpkg make the kernel
//! check (read from the real dpkg database, versions compared by dpkg's rules) say
//! the older one runs behind; a package whose postinst sets `/run/reboot-required`
//! (as Debian's kernel and libc packages do) installed with `reboot=if_required`
//! reports the reason and `reboot: scheduled`, its result is delivered before the
//! agent runs `systemctl reboot` (which does nothing inside a chroot), and
//! `patchctl hosts reboots` lists the host with why.

// The harness runs debootstrap, dpkg-deb, chroot and the binaries under test.
#![allow(clippy::disallowed_methods)]

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::chroot::{Deb, build_deb, suite};
use common::chroot_agent::ChrootAgent;
use common::platform::Platform;
use common::wait_for;
use patchctl_agent::pkgmgr::Family;
use patchctl_agent::pkgmgr::reboot::kernel_behind;
use patchctl_testkit::{Harness, Need, trial};
use serde_json::Value;

fn main() -> std::process::ExitCode {
    // Root: chroot, mount, dpkg inside the chroot. debootstrap builds the cached chroot.
    Harness::new()
        .test(trial!(apt_backend_on_a_real_debian_system).needs([
            Need::Root,
            Need::Program("debootstrap"),
            Need::Program("dpkg-deb"),
            Need::Program("chroot"),
        ]))
        .run()
}

/// The operator CLI with `--wait 180` on every queued command.
struct Cli<'a>(&'a Platform);

impl Cli<'_> {
    fn json(&self, args: &[&str]) -> Value {
        self.0.json(args)
    }

    fn command(&self, host: &str, kind: &str, params: &[&str]) -> Value {
        self.0.command(host, kind, params, 180)
    }
}

fn apt_backend_on_a_real_debian_system() {
    let work = tempfile::Builder::new()
        .prefix("patchctl-chroot-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let mut guard = ChrootAgent::new(work.path());
    let root = guard.root.clone();

    // Packages: 1.0 installed (pc-half only unpacked, later); updates in two suites.
    let debs = work.path().join("debs");
    fs::create_dir_all(&debs).unwrap();
    let old: Vec<PathBuf> = ["pc-sec", "pc-upd", "pc-new", "pc-victim", "pc-half"]
        .iter()
        .map(|n| build_deb(&debs, n, "1.0", ""))
        .collect();
    guard.dpkg_install(&old[..4]);
    fs::copy(&old[4], root.join("tmp/debs/pc-half_1.0_all.deb")).unwrap();
    let repo = root.join("srv/repo");
    suite(
        &repo,
        "bookworm-security",
        "Debian-Security",
        &[build_deb(&debs, "pc-sec", "1.0+deb12u1", "")],
    );
    suite(
        &repo,
        "bookworm-updates",
        "Debian",
        &[
            build_deb(&debs, "pc-upd", "1.1", ""),
            build_deb(&debs, "pc-new", "1.1", "Conflicts: pc-victim\n"),
        ],
    );
    guard.apt_sources(
        "deb [trusted=yes] file:/srv/repo bookworm-security main\ndeb [trusted=yes] file:/srv/repo bookworm-updates main\n",
    );

    // The platform on the host; the real agent binary inside the chroot, as root, with
    // its private config.
    let platform = Platform::start(
        &work.path().join("platform"),
        &work.path().join("server.log"),
    );
    let cli = Cli(&platform);
    guard.start_agent(&platform, None);

    // The scan: the chroot's packages, ours at 1.0.
    let host = wait_for("the chroot's inventory", 90, || {
        let h = cli.json(&["hosts", "list"]);
        let id = h.as_array()?.first()?["id"].as_str()?.to_owned();
        let p = cli.json(&["hosts", "packages", &id]);
        p["packages"]
            .as_array()?
            .iter()
            .any(|x| x["name"] == "pc-sec")
            .then_some(id)
    });
    let version_of = |name: &str| -> Option<String> {
        let p = cli.json(&["hosts", "packages", &host]);
        p["packages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"] == name)
            .map(|x| x["version"].as_str().unwrap().to_owned())
    };
    assert_eq!(version_of("pc-sec").as_deref(), Some("1.0"));

    // The scan also brought the available updates (metadata refreshed in the chroot).
    let su = cli.json(&["hosts", "updates", &host]);
    assert_eq!(su["refreshed"], true, "{su}");
    let scanned = |su: &Value, n: &str| {
        su["updates"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["name"] == n)
            .cloned()
    };
    let sec = scanned(&su, "pc-sec").expect("pc-sec in the scan");
    assert_eq!(
        (sec["candidate_version"].as_str(), sec["security"].as_bool()),
        (Some("1.0+deb12u1"), Some(true)),
        "{su}"
    );
    assert_eq!(
        scanned(&su, "pc-upd").expect("pc-upd in the scan")["security"],
        false
    );
    assert_eq!(su["removals"], serde_json::json!(["pc-victim"]), "{su}");
    let only_sec = cli.json(&["hosts", "updates", &host, "--security"]);
    let names: Vec<&str> = only_sec["updates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["pc-sec"], "{only_sec}");
    let listed = cli.json(&["hosts", "list"]);
    assert_eq!(listed[0]["security_updates"], 1, "{listed}");

    // check_updates: both updates, with the right security flags, and the removal.
    let cu = cli.command(&host, "check_updates", &[]);
    assert_eq!(cu["state"], "succeeded", "{cu}");
    let out = &cu["result"]["output"];
    assert_eq!(out["refreshed"], true);
    let upd = |n: &str| {
        out["updates"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["name"] == n)
            .cloned()
    };
    let sec = upd("pc-sec").expect("pc-sec update");
    assert_eq!(sec["candidate_version"], "1.0+deb12u1");
    assert_eq!(sec["security"], true);
    assert_eq!(upd("pc-upd").expect("pc-upd update")["security"], false);
    assert_eq!(out["removals"], serde_json::json!(["pc-victim"]));

    // get_package_info.
    let pi = cli.command(&host, "get_package_info", &["name=pc-sec"]);
    assert_eq!(
        pi["result"]["output"]["candidate_version"], "1.0+deb12u1",
        "{pi}"
    );
    assert_eq!(pi["result"]["output"]["security_update"], true);

    // install_updates of the approved security update: installed for real.
    let iu = cli.command(&host, "install_updates", &["package=pc-sec=1.0+deb12u1"]);
    assert_eq!(iu["state"], "succeeded", "{iu}");
    let p = &iu["result"]["output"]["packages"][0];
    assert_eq!(
        (p["before"].as_str(), p["after"].as_str(), p["ok"].as_bool()),
        (Some("1.0"), Some("1.0+deb12u1"), Some(true)),
        "{iu}"
    );
    assert_eq!(
        fs::read_to_string(root.join("usr/share/patchctl-test/pc-sec/version")).unwrap(),
        "1.0+deb12u1"
    );

    // The update that would remove another package is refused; nothing changes.
    let refused = cli.command(&host, "install_updates", &["package=pc-new=1.1"]);
    assert_eq!(refused["state"], "failed", "{refused}");
    assert!(
        refused["result"]["summary"]
            .as_str()
            .unwrap()
            .contains("would remove pc-victim"),
        "{refused}"
    );
    assert_eq!(
        fs::read_to_string(root.join("usr/share/patchctl-test/pc-new/version")).unwrap(),
        "1.0"
    );
    assert!(
        root.join("usr/share/patchctl-test/pc-victim/version")
            .exists()
    );

    // The unapproved update stays, and the platform's inventory shows the new version.
    wait_for("the fresh inventory after the install", 60, || {
        (version_of("pc-sec").as_deref() == Some("1.0+deb12u1")).then_some(())
    });
    assert_eq!(version_of("pc-upd").as_deref(), Some("1.0"));
    assert_eq!(version_of("pc-victim").as_deref(), Some("1.0"));
    // The rescan after the install went as a delta against the first, full scan, and
    // the security update is no longer listed.
    let su = cli.json(&["hosts", "updates", &host]);
    assert!(scanned(&su, "pc-sec").is_none(), "{su}");
    assert!(scanned(&su, "pc-upd").is_some(), "{su}");

    // An interrupted dpkg run (a package unpacked, never configured) is reported by
    // health_check and repaired with `dpkg --configure -a` before the next install.
    guard.run(&["dpkg", "--unpack", "/tmp/debs/pc-half_1.0_all.deb"]);
    let hc = cli.command(&host, "health_check", &[]);
    let lock = hc["result"]["output"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "package_lock")
        .cloned()
        .unwrap();
    assert_eq!(lock["status"], "fail", "{hc}");
    assert!(
        lock["detail"]
            .as_str()
            .unwrap()
            .contains("dpkg --configure -a"),
        "{hc}"
    );
    let iu = cli.command(&host, "install_updates", &["package=pc-upd=1.1"]);
    assert_eq!(iu["state"], "succeeded", "{iu}");
    assert!(
        iu["result"]["summary"]
            .as_str()
            .unwrap()
            .contains("finished an interrupted dpkg run"),
        "{iu}"
    );
    let status = fs::read_to_string(root.join("var/lib/dpkg/status")).unwrap();
    let half = status
        .split("\n\n")
        .find(|s| s.starts_with("Package: pc-half\n"))
        .unwrap();
    assert!(half.contains("Status: install ok installed"), "{half}");

    reboots(&guard, &debs, &cli, &host);

    let log = fs::read_to_string(guard.agent_log()).unwrap();
    let uploads: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("scan uploaded"))
        .collect();
    assert!(uploads.first().is_some_and(|l| l.contains("full")), "{log}");
    assert!(uploads.iter().skip(1).any(|l| l.contains("delta")), "{log}");
    drop(guard);
    drop(platform);
}

/// A package that asks for a reboot in its postinst, as Debian's do
/// (`/usr/share/update-notifier/notify-reboot-required`, by hand here).
const ASKS_FOR_REBOOT: &str = "#!/bin/sh\nset -e\nmkdir -p /run\ntouch /run/reboot-required\necho pc-boot >> /run/reboot-required.pkgs\n";

/// The reboot part of the test (see the module documentation).
fn reboots(chroot: &ChrootAgent, debs: &Path, cli: &Cli<'_>, host: &str) {
    let root = chroot.root.as_path();
    let agent_log = chroot.agent_log();
    // The kernel check on the chroot's real dpkg database.
    chroot.dpkg_install(&[
        build_deb(debs, "linux-image-1.0.0-1-patchctl", "1.0.0-1", ""),
        build_deb(debs, "linux-image-1.0.0-2-patchctl", "1.0.0-2", ""),
    ]);
    let status =
        patchctl_agent::inventory::dpkg::read_status(&root.join("var/lib/dpkg/status")).unwrap();
    let behind = kernel_behind(Family::Apt, &status.packages, "1.0.0-1-patchctl\n");
    assert_eq!(
        behind.as_deref(),
        Some(
            "kernel 1.0.0-2-patchctl (1.0.0-2) is installed, 1.0.0-1-patchctl (1.0.0-1) is running"
        )
    );
    assert_eq!(
        kernel_behind(Family::Apt, &status.packages, "1.0.0-2-patchctl"),
        None
    );

    // /run/reboot-required by the postinst of pc-boot's update; reboot=if_required.
    chroot.dpkg_install(&[build_deb(debs, "pc-boot", "1.0", "")]);
    let boot = Deb {
        postinst: Some(ASKS_FOR_REBOOT.into()),
        ..Deb::new("pc-boot", "1.1")
    };
    let repo = root.join("srv/repo");
    suite(&repo, "bookworm-updates", "Debian", &[boot.build(debs)]);
    let _ = fs::remove_file(root.join("run/reboot-required"));
    cli.command(host, "check_updates", &[]);
    let iu = cli.command(
        host,
        "install_updates",
        &["package=pc-boot=1.1", "reboot=if_required"],
    );
    assert_eq!(iu["state"], "succeeded", "{iu}");
    let out = &iu["result"]["output"];
    assert_eq!(out["reboot_required"], true, "{iu}");
    assert_eq!(out["reboot"], "scheduled", "{iu}");
    assert!(
        out["reboot_reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == "/run/reboot-required (pc-boot)"),
        "{iu}"
    );
    assert!(
        iu["result"]["summary"]
            .as_str()
            .unwrap()
            .ends_with("reboot: scheduled"),
        "{iu}"
    );
    // Delivered first, then the reboot's one argument vector.
    let id = iu["id"].as_str().unwrap().to_owned();
    let log = wait_for("the reboot attempt in the agent's log", 60, || {
        let log = fs::read_to_string(&agent_log).ok()?;
        log.lines()
            .any(|l| {
                l.contains("running program") && l.contains("systemctl") && l.contains("reboot")
            })
            .then_some(log)
    });
    let lines: Vec<&str> = log.lines().collect();
    let delivered = lines
        .iter()
        .position(|l| l.contains("result delivered") && l.contains(&id))
        .expect("the result delivered");
    let rebooted = lines
        .iter()
        .position(|l| {
            l.contains("running program") && l.contains("systemctl") && l.contains("reboot")
        })
        .unwrap();
    assert!(delivered < rebooted, "{log}");

    // The heartbeat carries the need: the host is on the fleet-wide list, with why,
    // and its boot time is known.
    let listed = wait_for("the host on the reboots list", 60, || {
        let v = cli.json(&["hosts", "reboots"]);
        (v.as_array()?.len() == 1).then_some(v)
    });
    assert_eq!(listed[0]["id"], host);
    assert!(
        listed[0]["reboot"]["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == "/run/reboot-required (pc-boot)"),
        "{listed}"
    );
    assert!(listed[0]["reboot"]["booted_at"].is_string(), "{listed}");
    let shown = cli.json(&["hosts", "show", host]);
    assert_eq!(shown["reboot"]["required"], true, "{shown}");
}
