//! The health of a patched host under a running systemd, and the reboot of
//! `install_updates`: the cached bootable Debian chroot (`unit_sandbox.rs`'s) is copied
//! and booted with `systemd-nspawn --boot`; the real agent runs there under the shipped
//! unit against the real platform on the host's loopback.
//!
//! - A unit made to fail (`ExecStart=/bin/false`) is in `health_check`'s
//!   `failed_units`, read from the real `systemctl list-units --state=failed`, with a
//!   check item naming it; after `systemctl reset-failed` the list is empty.
//! - `install_updates` with `reboot=if_required` of a package whose postinst sets
//!   `/run/reboot-required`: the result (`reboot: scheduled`) reaches the platform, then
//!   the agent runs `systemctl reboot` and the container goes down (systemd-nspawn
//!   exits, as it does when its container reboots). Booted again, the agent heartbeats
//!   again. What this cannot show is a new `booted_at`: a container shares the host's
//!   kernel, and `btime` in `/proc/stat` is that kernel's boot time, so it stays the
//!   same across the container's reboot (the platform's `booted_at` is asserted equal
//!   to the host's btime, before and after).

// The harness boots a container and runs the binaries under test.
#![allow(clippy::disallowed_methods)]

mod common;

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::process::Command;

use common::chroot::{Deb, cached_bootable_chroot, run, suite};
use common::container::{Container, NSPAWN};
use common::platform::Platform;
use common::unit::shipped_text;
use common::wait_for;
use patchctl_testkit::{Harness, Need, trial};
use serde_json::Value;

fn main() -> std::process::ExitCode {
    Harness::new()
        .test(
            trial!(failed_units_and_the_reboot_under_a_running_systemd).needs([
                Need::Root,
                Need::Program("debootstrap"),
                Need::Program("dpkg-deb"),
                Need::Program("chroot"),
                Need::Program("nsenter"),
                Need::Check(&NSPAWN),
            ]),
        )
        .run()
}

/// The unit that fails at boot.
const BROKEN_UNIT: &str = "[Unit]\nDescription=PatchCTL test: fails\n\n[Service]\nType=oneshot\nExecStart=/bin/false\n\n[Install]\nWantedBy=multi-user.target\n";

/// pc-boot's update asks for a reboot, as Debian's kernel packages do.
const ASKS_FOR_REBOOT: &str =
    "#!/bin/sh\nset -e\ntouch /run/reboot-required\necho pc-boot >> /run/reboot-required.pkgs\n";

fn enable(root: &Path, unit: &str) {
    let wants = root.join("etc/systemd/system/multi-user.target.wants");
    fs::create_dir_all(&wants).unwrap();
    let _ = fs::remove_file(wants.join(unit));
    symlink(format!("/etc/systemd/system/{unit}"), wants.join(unit)).unwrap();
}

fn health(platform: &Platform, host: &str) -> Value {
    let hc = platform.command(host, "health_check", &[], 120);
    assert!(hc["result"]["output"].is_object(), "{hc}");
    hc["result"]["output"].clone()
}

fn item(out: &Value, name: &str) -> Value {
    out["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no {name} item in {out}"))
}

fn host_btime() -> i64 {
    fs::read_to_string("/proc/stat")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

fn failed_units_and_the_reboot_under_a_running_systemd() {
    let tmp = tempfile::Builder::new()
        .prefix("patchctl-health-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let work = tmp.path();
    let root = work.join("root");
    run(Command::new("cp")
        .arg("-a")
        .arg(cached_bootable_chroot())
        .arg(&root));

    // pc-boot 1.0 installed; 1.1 (asking for a reboot) in a local repository.
    let debs = work.join("debs");
    fs::create_dir_all(&debs).unwrap();
    let first = Deb::new("pc-boot", "1.0").build(&debs);
    fs::copy(&first, root.join("var/tmp/pc-boot_1.0_all.deb")).unwrap();
    run(Command::new("chroot")
        .arg(&root)
        .args(["dpkg", "-i", "/var/tmp/pc-boot_1.0_all.deb"]));
    let update = Deb {
        postinst: Some(ASKS_FOR_REBOOT.into()),
        ..Deb::new("pc-boot", "1.1")
    };
    suite(
        &root.join("srv/repo"),
        "patchctl-test",
        "PatchCTL",
        &[update.build(&debs)],
    );
    fs::write(
        root.join("etc/apt/sources.list"),
        "deb [trusted=yes] file:/srv/repo patchctl-test main\n",
    )
    .unwrap();
    let _ = fs::remove_dir_all(root.join("etc/apt/sources.list.d"));
    for timer in ["apt-daily.timer", "apt-daily-upgrade.timer"] {
        let _ = fs::remove_file(root.join("etc/systemd/system").join(timer));
        symlink("/dev/null", root.join("etc/systemd/system").join(timer)).unwrap();
    }
    fs::write(
        root.join("etc/systemd/system/pc-broken.service"),
        BROKEN_UNIT,
    )
    .unwrap();
    enable(&root, "pc-broken.service");

    // The platform on the host; the agent under the shipped unit in the container.
    let platform = Platform::start(&work.join("platform"), &work.join("server.log"));
    fs::create_dir_all(root.join("opt/patchctl/bin")).unwrap();
    fs::copy(
        common::agent_bin(),
        root.join("opt/patchctl/bin/patchctl-agent"),
    )
    .unwrap();
    let etc = root.join("etc/patchctl");
    fs::create_dir_all(&etc).unwrap();
    fs::set_permissions(&etc, fs::Permissions::from_mode(0o700)).unwrap();
    fs::copy(platform.ca_file(), etc.join("ca.pem")).unwrap();
    let cfg = platform.agent_config("/etc/patchctl/ca.pem");
    fs::write(etc.join("config.json"), serde_json::to_vec(&cfg).unwrap()).unwrap();
    fs::set_permissions(etc.join("config.json"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::write(
        root.join("etc/systemd/system/patchctl.service"),
        shipped_text(),
    )
    .unwrap();
    enable(&root, "patchctl.service");

    let mut ct = Container::boot(&root, &work.join("container.log"), "patchctl-health");
    let host = wait_for("the container's host", 120, || {
        let h = platform.json(&["hosts", "list"]);
        h.as_array()?.first()?["id"].as_str().map(str::to_owned)
    });

    // The failed unit, from the real systemctl.
    let out = health(&platform, &host);
    assert_eq!(
        out["failed_units"],
        serde_json::json!(["pc-broken.service"]),
        "{out}"
    );
    let it = item(&out, "failed_units");
    assert_eq!(it["status"], "warn", "{out}");
    assert!(
        it["detail"].as_str().unwrap().contains("pc-broken.service"),
        "{out}"
    );
    ct.ok(&["systemctl", "reset-failed", "pc-broken.service"]);
    let out = health(&platform, &host);
    assert_eq!(out["failed_units"], serde_json::json!([]), "{out}");
    assert_eq!(item(&out, "failed_units")["status"], "ok", "{out}");

    // The boot time the heartbeats carry: the host kernel's.
    let shown = wait_for("the boot time", 60, || {
        let s = platform.json(&["hosts", "show", &host]);
        s["reboot"]["booted_at"].is_string().then_some(s)
    });
    let booted = |s: &Value| {
        chrono::DateTime::parse_from_rfc3339(s["reboot"]["booted_at"].as_str().unwrap())
            .unwrap()
            .timestamp()
    };
    assert_eq!(booted(&shown), host_btime());

    // The install with reboot=if_required: the result first, then the reboot.
    platform.command(&host, "check_updates", &[], 120);
    let iu = platform.command(
        &host,
        "install_updates",
        &["package=pc-boot=1.1", "reboot=if_required"],
        180,
    );
    assert_eq!(iu["state"], "succeeded", "{iu}");
    assert_eq!(iu["result"]["output"]["reboot"], "scheduled", "{iu}");
    let status = wait_for("the container to reboot", 120, || ct.exited());
    eprintln!("systemd-nspawn ended with {status} after the container's reboot");
    let seen_before = platform.json(&["hosts", "show", &host])["last_seen"].clone();
    drop(ct);

    // Booted again: the agent is back (a later heartbeat); /run is new, the need is
    // gone, so the host leaves the reboots list.
    let ct = Container::boot(&root, &work.join("container-2.log"), "patchctl-health");
    let back = wait_for("the agent back after the reboot", 120, || {
        let s = platform.json(&["hosts", "show", &host]);
        (s["last_seen"] != seen_before && s["reboot"]["required"] == false).then_some(s)
    });
    assert_eq!(
        booted(&back),
        host_btime(),
        "a container shares the host's btime"
    );
    assert_eq!(platform.json(&["hosts", "reboots"]), serde_json::json!([]));
    drop(ct);
}
