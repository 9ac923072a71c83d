//! A Debian chroot booted with `systemd-nspawn --boot`: systemd is PID 1 of the
//! container even where the machine's own PID 1 is not systemd (`--register=no
//! --keep-unit` keep nspawn from asking a host systemd for a scope), for the tests that
//! need a running systemd: the unit under systemd (`unit_sandbox.rs`) and the packages'
//! maintainer scripts (`packages_systemd.rs`).

use std::fs;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use patchctl_testkit::{Check, find_program};

use super::wait_for;

/// systemd-nspawn, as a prerequisite of the harness.
pub static NSPAWN: Check = Check {
    what: "systemd-nspawn",
    missing: nspawn_missing,
};

fn nspawn_missing() -> Option<String> {
    find_program("systemd-nspawn")
        .is_none()
        .then(|| "systemd-nspawn is not installed (apt-get install systemd-container)".into())
}

/// A booted container; shut down when dropped.
pub struct Container {
    nspawn: Child,
    leader: u32,
}

impl Container {
    /// Boots `root` (nspawn's output goes to `log`) as machine `name`-PID and waits
    /// until its systemd reports running (or degraded, which is printed).
    pub fn boot(root: &Path, log: &Path, name: &str) -> Container {
        let log = fs::File::create(log).unwrap();
        let nspawn = Command::new(find_program("systemd-nspawn").unwrap())
            .args([
                "--quiet",
                // No machined or scope: this machine's PID 1 may not be systemd.
                "--register=no",
                "--keep-unit",
                "--boot",
                // Every capability the host has: the unit's bounding set is then what
                // limits the agent and its children, as on a real host.
                "--capability=all",
                "--console=pipe",
                &format!("--machine={name}-{}", std::process::id()),
                "--directory",
            ])
            .arg(root)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let pid = nspawn.id();
        let mut ct = Container { nspawn, leader: 0 };
        ct.leader = wait_for("the container's systemd", 60, || {
            let children = fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok()?;
            children.split_whitespace().find_map(|c| {
                let comm = fs::read_to_string(format!("/proc/{c}/comm")).ok()?;
                (comm.trim() == "systemd").then(|| c.parse().unwrap())
            })
        });
        let state = wait_for("the container to finish booting", 120, || {
            let out = ct.run(&["systemctl", "is-system-running"]);
            let s = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            ["running", "degraded"].contains(&s.as_str()).then_some(s)
        });
        if state == "degraded" {
            let failed = ct.run(&["systemctl", "--failed", "--no-pager"]);
            eprintln!(
                "the container booted degraded:\n{}",
                String::from_utf8_lossy(&failed.stdout)
            );
        }
        ct
    }

    /// How systemd-nspawn ended, once the container is gone (shut down or rebooted
    /// from inside: nspawn exits either way); `None` while it runs.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.nspawn.try_wait().ok().flatten()
    }

    /// Runs a program inside the container (its mount, PID, IPC and UTS namespaces).
    pub fn run(&self, args: &[&str]) -> Output {
        Command::new("nsenter")
            .args(["-t", &self.leader.to_string(), "-m", "-p", "-i", "-u", "--"])
            .args(args)
            .output()
            .unwrap()
    }

    /// Like [`Container::run`], failing the test when the program fails.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?} in the container: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A property of a unit as the container's systemd has it.
    pub fn show(&self, unit: &str, property: &str) -> String {
        self.ok(&["systemctl", "show", unit, "-p", property, "--value"])
            .trim()
            .to_owned()
    }

    /// The journal entries of the agent's unit, in order.
    pub fn journal(&self) -> Vec<serde_json::Value> {
        self.ok(&[
            "journalctl",
            "-u",
            "patchctl.service",
            "-o",
            "json",
            "--no-pager",
        ])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        // SIGTERM asks systemd-nspawn to shut the container down cleanly.
        let pid = nix::unistd::Pid::from_raw(self.nspawn.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.nspawn.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let _ = self.nspawn.kill();
        let _ = self.nspawn.wait();
    }
}
