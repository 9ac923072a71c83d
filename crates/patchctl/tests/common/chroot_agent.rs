//! A Debian host for the tests that install real packages: a private copy of the cached
//! debootstrap chroot ([`super::chroot::cached_chroot`]) with `/proc` mounted, packages
//! installed with its own dpkg, a local apt repository as its only source, and the real
//! `patchctl-agent` binary running inside it, enrolled with a [`Platform`]. Each agent
//! may run in its own UTS namespace so that several chroots on one machine report
//! several hostnames. Dropping the guard kills the agent, unmounts `/proc` and removes
//! the copy, however the test ends.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::chroot::{cached_chroot, run};
use super::platform::Platform;

/// A copy of the cached chroot, maybe with the agent running inside; see the module
/// documentation.
pub struct ChrootAgent {
    /// The chroot's root directory (`DIR/root`).
    pub root: PathBuf,
    /// The directory holding it and the agent's log (`DIR/agent.log`).
    dir: PathBuf,
    agent: Option<Child>,
}

impl ChrootAgent {
    /// Copies the cached chroot into `dir/root` (`dir` is created) and mounts `/proc` in
    /// it.
    pub fn new(dir: &Path) -> ChrootAgent {
        let cached = cached_chroot();
        fs::create_dir_all(dir).unwrap();
        let root = dir.join("root");
        run(Command::new("cp").arg("-a").arg(&cached).arg(&root));
        let guard = ChrootAgent {
            root: root.clone(),
            dir: dir.to_owned(),
            agent: None,
        };
        run(Command::new("mount")
            .args(["-t", "proc", "proc"])
            .arg(root.join("proc")));
        guard
    }

    /// Runs `args` inside the chroot, failing the test when it fails; its stdout.
    pub fn run(&self, args: &[&str]) -> String {
        run(Command::new("chroot").arg(&self.root).args(args))
    }

    /// Installs `debs` with the chroot's own `dpkg -i` (copied to `/tmp/debs` inside).
    pub fn dpkg_install(&self, debs: &[PathBuf]) {
        let inside = self.root.join("tmp/debs");
        fs::create_dir_all(&inside).unwrap();
        let mut args = vec!["dpkg".to_owned(), "-i".to_owned()];
        for d in debs {
            let name = d.file_name().unwrap().to_str().unwrap();
            fs::copy(d, inside.join(name)).unwrap();
            args.push(format!("/tmp/debs/{name}"));
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.run(&args);
    }

    /// What dpkg says of `name` inside the chroot (`dpkg-query -W`): its status
    /// (`install ok installed`, `install ok half-configured`) and version; `None` when
    /// dpkg does not know it.
    pub fn dpkg_status(&self, name: &str) -> Option<(String, String)> {
        let out = Command::new("chroot")
            .arg(&self.root)
            .args(["dpkg-query", "-W", "-f", "${Status}\t${Version}", name])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let (status, version) = text.split_once('\t')?;
        out.status
            .success()
            .then(|| (status.to_owned(), version.to_owned()))
    }

    /// The version of `name` dpkg has installed and configured, `None` when it is not.
    pub fn dpkg_version(&self, name: &str) -> Option<String> {
        self.dpkg_status(name)
            .and_then(|(status, version)| (status == "install ok installed").then_some(version))
    }

    /// Makes `list` (`sources.list` lines, `file:` repositories under the chroot) the
    /// chroot's only apt sources.
    pub fn apt_sources(&self, list: &str) {
        fs::write(self.root.join("etc/apt/sources.list"), list).unwrap();
        let _ = fs::remove_dir_all(self.root.join("etc/apt/sources.list.d"));
    }

    /// The agent's stderr, written to `DIR/agent.log`.
    pub fn agent_log(&self) -> PathBuf {
        self.dir.join("agent.log")
    }

    /// A new UTS namespace bound to `DIR/uts` (unmounted when the guard drops).
    fn uts_namespace(&self) -> PathBuf {
        let ns = self.dir.join("uts");
        fs::write(&ns, b"").unwrap();
        run(Command::new("unshare")
            .arg(format!("--uts={}", ns.display()))
            .arg("true"));
        ns
    }

    /// Installs the real agent binary with its private config for `platform` (its CA,
    /// the enrollment key, a 5 s heartbeat) and starts it as root inside the chroot; with
    /// `hostname`, in a UTS namespace of its own where that is the hostname.
    pub fn start_agent(&mut self, platform: &Platform, hostname: Option<&str>) {
        assert!(self.agent.is_none(), "the agent already runs");
        fs::create_dir_all(self.root.join("opt/patchctl/bin")).unwrap();
        fs::copy(
            super::agent_bin(),
            self.root.join("opt/patchctl/bin/patchctl-agent"),
        )
        .unwrap();
        let etc = self.root.join("etc/patchctl");
        fs::create_dir_all(&etc).unwrap();
        fs::set_permissions(&etc, fs::Permissions::from_mode(0o700)).unwrap();
        fs::copy(platform.ca_file(), etc.join("ca.pem")).unwrap();
        let cfg = platform.agent_config("/etc/patchctl/ca.pem");
        fs::write(etc.join("config.json"), serde_json::to_vec(&cfg).unwrap()).unwrap();
        fs::set_permissions(etc.join("config.json"), fs::Permissions::from_mode(0o600)).unwrap();
        // With a hostname: a UTS namespace of its own, kept in a file (`unshare
        // --uts=FILE`), named with `hostname` inside it, then entered by the agent's
        // `chroot` — every step execs a program, none a shell, and the child's pid is the
        // agent's.
        let mut cmd = match hostname {
            Some(name) => {
                let ns = self.uts_namespace();
                run(Command::new("nsenter")
                    .arg(format!("--uts={}", ns.display()))
                    .args(["hostname", name]));
                let mut c = Command::new("nsenter");
                c.arg(format!("--uts={}", ns.display()))
                    .arg("chroot")
                    .arg(&self.root)
                    .args(["/opt/patchctl/bin/patchctl-agent", "run"]);
                c
            }
            None => {
                let mut c = Command::new("chroot");
                c.arg(&self.root)
                    .args(["/opt/patchctl/bin/patchctl-agent", "run"]);
                c
            }
        };
        let log = fs::File::create(self.agent_log()).unwrap();
        self.agent = Some(
            cmd.stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap(),
        );
    }
}

impl Drop for ChrootAgent {
    fn drop(&mut self) {
        if let Some(mut c) = self.agent.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.root.join("proc"))
            .status();
        let uts = self.dir.join("uts");
        if uts.exists() {
            let _ = Command::new("umount").arg(&uts).status();
            let _ = fs::remove_file(&uts);
        }
        let _ = fs::remove_dir_all(&self.root);
    }
}
