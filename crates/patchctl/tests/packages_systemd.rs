//! The .deb's maintainer scripts and `patchctl-agent uninstall` under a running systemd:
//! the cached bootable Debian chroot (`unit_sandbox.rs`'s) is copied and booted with
//! `systemd-nspawn --boot`, and dpkg, systemctl and the agent run inside it.
//!
//! - Installed without a config: the service is neither enabled nor started.
//! - Installed with a config: enabled and started (the agent keeps retrying a platform
//!   that does not answer, which is all this needs of it).
//! - Upgraded: the running agent is restarted (`--no-block try-restart`: a new main
//!   PID), config and state untouched.
//! - Removed: the service is stopped and no agent process is left; config and state stay.
//! - Installed again after that: enabled and started again (the preinst's marker).
//! - `patchctl-agent uninstall --purge --yes` of a running .deb install (dpkg's prerm
//!   stops it) and of a manual install under systemd (the agent's own `systemctl stop`,
//!   `disable` and `daemon-reload`): nothing is left, nothing runs.

// The harness boots a container and runs dpkg, systemctl and the binaries under test.
#![allow(clippy::disallowed_methods)]

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::chroot::{cached_bootable_chroot, run};
use common::container::{Container, NSPAWN};
use common::packages::{build, repo, stripped_agent};
use common::wait_for;
use patchctl_testkit::{Harness, Need, trial};

/// The host's CA bundle, given to the agent as its `ca_bundle` (the container may have
/// no trust store of its own).
const HOST_CA: &str = "/etc/ssl/certs/ca-certificates.crt";

fn main() -> std::process::ExitCode {
    Harness::new()
        .test(
            trial!(deb_scripts_and_uninstall_under_a_running_systemd).needs([
                Need::Root,
                Need::Program("debootstrap"),
                Need::Program("dpkg-deb"),
                Need::Program("chroot"),
                Need::Program("nsenter"),
                Need::Check(&NSPAWN),
                Need::File(HOST_CA),
            ]),
        )
        .run()
}

/// A config whose platform never answers (the discard port): the agent keeps running
/// and retrying, with backoff.
const CONFIG: &str = r#"{"server_url": "https://127.0.0.1:9", "license_key": "test-key", "ca_bundle": "/etc/patchctl/ca.pem"}"#;

fn write_config(root: &Path) {
    fs::create_dir_all(root.join("etc/patchctl")).unwrap();
    fs::set_permissions(root.join("etc/patchctl"), fs::Permissions::from_mode(0o700)).unwrap();
    fs::copy(HOST_CA, root.join("etc/patchctl/ca.pem")).unwrap();
    let config = root.join("etc/patchctl/config.json");
    fs::write(&config, CONFIG).unwrap();
    fs::set_permissions(&config, fs::Permissions::from_mode(0o600)).unwrap();
}

struct Booted {
    ct: Container,
    root: PathBuf,
    _work: tempfile::TempDir,
}

impl Booted {
    fn state(&self) -> (String, String, String) {
        (
            self.ct.show("patchctl.service", "LoadState"),
            self.ct.show("patchctl.service", "ActiveState"),
            self.ct.show("patchctl.service", "UnitFileState"),
        )
    }

    fn main_pid(&self) -> String {
        self.ct.show("patchctl.service", "MainPID")
    }

    /// Waits until the service is active with a main PID other than `not`; that PID.
    fn running(&self, not: &str) -> String {
        wait_for("the agent's service to run", 60, || {
            let pid = self.main_pid();
            (self.state().1 == "active" && pid != "0" && pid != not).then_some(pid)
        })
    }

    /// No process in the container runs the agent (read from the host's /proc: a
    /// process whose root is the container's and whose first argument is the binary).
    fn assert_no_agent_process(&self) {
        let ours = fs::canonicalize(&self.root).unwrap();
        let agents: Vec<String> = fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter(|e| {
                e.file_name()
                    .to_str()
                    .is_some_and(|n| n.parse::<u32>().is_ok())
            })
            .filter(|e| fs::read_link(e.path().join("root")).is_ok_and(|r| r == ours))
            .filter_map(|e| fs::read(e.path().join("cmdline")).ok())
            .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
            .filter(|c| c.starts_with("/opt/patchctl/bin/patchctl-agent"))
            .collect();
        assert!(agents.is_empty(), "an agent still runs: {agents:?}");
    }

    fn exists(&self, rel: &str) -> bool {
        fs::symlink_metadata(self.root.join(rel.trim_start_matches('/'))).is_ok()
    }
}

fn deb_scripts_and_uninstall_under_a_running_systemd() {
    let cached = cached_bootable_chroot();
    let work = tempfile::Builder::new()
        .prefix("patchctl-packages-systemd-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let root = work.path().join("root");
    run(Command::new("cp").arg("-a").arg(&cached).arg(&root));
    let agent = stripped_agent(work.path());
    let out = work.path().join("out");
    let old = build(&agent, "1.0.0", "deb", &out).remove(0);
    let new = build(&agent, "1.0.1", "deb", &out).remove(0);
    // Not /tmp: the booted container mounts a tmpfs there.
    for d in [&old, &new] {
        fs::copy(d, root.join("srv").join(d.file_name().unwrap())).unwrap();
    }
    let (old, new) = (
        "/srv/patchctl-agent_1.0.0_amd64.deb",
        "/srv/patchctl-agent_1.0.1_amd64.deb",
    );
    let ct = Container::boot(&root, &work.path().join("nspawn.log"), "patchctl-pkg");
    let b = Booted {
        ct,
        root: root.clone(),
        _work: work,
    };
    let ct = &b.ct;
    let inactive = |b: &Booted| {
        let (_, active, _) = b.state();
        active == "inactive"
    };

    // Without a config: installed, neither enabled nor started, and it says so.
    let said = ct.ok(&["dpkg", "-i", old]);
    assert!(said.contains("installed, not started"), "{said}");
    assert_eq!(
        b.state(),
        ("loaded".into(), "inactive".into(), "disabled".into())
    );
    ct.ok(&["dpkg", "--purge", "patchctl-agent"]);

    // With a config: enabled and started by the first install.
    write_config(&root);
    let said = ct.ok(&["dpkg", "-i", old]);
    assert!(said.contains("enabled and started"), "{said}");
    let first = b.running("0");
    assert_eq!(b.state().2, "enabled");

    // Upgrade: restarted (a new main PID), the config untouched.
    fs::write(root.join("var/lib/patchctl/marker"), "state").unwrap();
    ct.ok(&["dpkg", "-i", new]);
    let second = b.running(&first);
    assert_ne!(first, second);
    assert_eq!(
        fs::read_to_string(root.join("etc/patchctl/config.json")).unwrap(),
        CONFIG
    );
    assert_eq!(
        fs::read_to_string(root.join("var/lib/patchctl/marker")).unwrap(),
        "state"
    );

    // Remove: stopped, disabled, the unit gone; config and state kept.
    ct.ok(&["dpkg", "--remove", "patchctl-agent"]);
    assert!(inactive(&b), "{:?}", b.state());
    assert_eq!(b.state().0, "not-found");
    b.assert_no_agent_process();
    assert!(!b.exists("/etc/systemd/system/multi-user.target.wants/patchctl.service"));
    assert!(b.exists("/etc/patchctl/config.json") && b.exists("/var/lib/patchctl/marker"));

    // Installed again after the removal (dpkg's config-files state): enabled and
    // started again, as a first install with a config is.
    let said = ct.ok(&["dpkg", "-i", new]);
    assert!(said.contains("enabled and started"), "{said}");
    b.running("0");
    assert_eq!(b.state().2, "enabled");

    // uninstall --purge --yes of a running .deb install.
    let said = ct.ok(&[
        "/opt/patchctl/bin/patchctl-agent",
        "uninstall",
        "--purge",
        "--yes",
    ]);
    assert!(
        said.contains("run /usr/bin/dpkg --purge patchctl-agent"),
        "{said}"
    );
    assert!(inactive(&b), "{:?}", b.state());
    b.assert_no_agent_process();
    for p in ["/etc/patchctl", "/var/lib/patchctl", "/opt/patchctl"] {
        assert!(!b.exists(p), "{p} is left behind");
    }

    // uninstall --purge --yes of a manual install, enabled and running under systemd.
    write_config(&root);
    fs::create_dir_all(root.join("opt/patchctl/bin")).unwrap();
    fs::copy(&agent, root.join("opt/patchctl/bin/patchctl-agent")).unwrap();
    fs::copy(
        repo().join("dist/patchctl.service"),
        root.join("etc/systemd/system/patchctl.service"),
    )
    .unwrap();
    ct.ok(&["systemctl", "daemon-reload"]);
    ct.ok(&["systemctl", "enable", "--now", "patchctl.service"]);
    b.running("0");
    let said = ct.ok(&[
        "/opt/patchctl/bin/patchctl-agent",
        "uninstall",
        "--purge",
        "--yes",
    ]);
    for step in [
        "run /usr/bin/systemctl stop patchctl.service: done",
        "run /usr/bin/systemctl disable patchctl.service",
        "run /usr/bin/systemctl daemon-reload: done",
    ] {
        assert!(said.contains(step), "{step} missing: {said}");
    }
    assert_eq!(b.state().0, "not-found");
    b.assert_no_agent_process();
    for p in [
        "/etc/patchctl",
        "/var/lib/patchctl",
        "/opt/patchctl",
        "/etc/systemd/system/patchctl.service",
        "/etc/systemd/system/multi-user.target.wants/patchctl.service",
    ] {
        assert!(!b.exists(p), "{p} is left behind");
    }
}
