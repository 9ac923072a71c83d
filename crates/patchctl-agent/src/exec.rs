//! The one place where the agent starts a process.
//!
//! A program runs by absolute path from a fixed allow-list, with an argument vector
//! (never a shell), a cleared environment holding only a fixed `PATH` and `LC_ALL=C`,
//! stdin from `/dev/null`, in its own process group, under a timeout (SIGTERM to the
//! group, then SIGKILL), with its output captured up to a cap and drained beyond it.
//! Every run is recorded (audit log and an in-memory history that tests assert on).
//! A request carries a [`Priority`]: scans ask for [`Priority::Background`], and the
//! child lowers its nice value and IO priority before exec ([`crate::priority`]);
//! installs and repairs keep the default, [`Priority::Normal`], and are never slowed.
//! Besides the package managers of [`ALLOWED_PROGRAMS`], a program outside that list
//! runs only as one of the exact argument vectors of [`ALLOWED_ARGV`]: doctor's one
//! question to systemd ([`SYSTEMCTL_SHOW_UNIT`]), `health_check`'s list of failed
//! units ([`SYSTEMCTL_FAILED_UNITS`]), the reboot of `install_updates`
//! ([`SYSTEMCTL_REBOOT`]) and the service steps of `patchctl-agent uninstall`
//! ([`UNINSTALL_SERVICE_STEPS`]), never built from input.
//!
//! Architecture invariant: `Command::new` appears nowhere else in the agent; clippy's
//! `disallowed-methods` (clippy.toml) enforces it.

use std::process::Stdio;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::{AsyncRead, AsyncReadExt};

pub use crate::priority::Priority;

/// Programs the agent may ever run. Anything else is refused before a process starts.
pub const ALLOWED_PROGRAMS: &[&str] = &[
    "/usr/bin/rpm",
    "/usr/bin/dpkg",
    "/usr/bin/dpkg-query",
    "/usr/bin/apt-get",
    "/usr/bin/apt-cache",
    "/usr/bin/dnf",
    "/usr/bin/yum",
    "/usr/bin/zypper",
    "/sbin/apk",
    "/usr/bin/pacman",
];

/// The one question `patchctl-agent doctor` asks systemd, allowed as this exact argument
/// vector and nothing else (no other `systemctl` verb, unit or option passes): read-only,
/// and never built by the four operations.
pub const SYSTEMCTL_SHOW_UNIT: &[&str] = &[
    "/usr/bin/systemctl",
    "show",
    "patchctl.service",
    "--property=LoadState,ActiveState,SubState,UnitFileState,Result,ExecMainStatus,NRestarts",
];

/// `health_check`'s question to systemd: the units in the failed state, one row each
/// (`UNIT LOAD ACTIVE SUB DESCRIPTION`), read by [`crate::units::parse_failed_units`].
/// Read-only; exactly this vector.
pub const SYSTEMCTL_FAILED_UNITS: &[&str] = &[
    "/usr/bin/systemctl",
    "list-units",
    "--state=failed",
    "--all",
    "--plain",
    "--no-legend",
    "--no-pager",
    "--full",
];

/// The reboot of `install_updates` with `reboot: if_required`, run only after the
/// install's result was delivered to the platform (see `docs/reboots.md`). Exactly
/// this vector: systemd's orderly reboot, nothing built from input.
pub const SYSTEMCTL_REBOOT: &[&str] = &["/usr/bin/systemctl", "reboot"];

/// Where every package installs the agent's binary; `patchctl-agent uninstall` asks
/// the package managers who owns it.
pub const AGENT_BINARY: &str = "/opt/patchctl/bin/patchctl-agent";

/// The name of the agent's package in every family.
pub const AGENT_PACKAGE: &str = "patchctl-agent";

/// `uninstall`: does dpkg own the binary? (exit 0 and `patchctl-agent: PATH` if so).
pub const DPKG_OWNER: &[&str] = &["/usr/bin/dpkg-query", "-S", AGENT_BINARY];
/// `uninstall`: remove the .deb, keeping its configuration (the prerm stops the service).
pub const DPKG_REMOVE: &[&str] = &["/usr/bin/dpkg", "--remove", AGENT_PACKAGE];
/// `uninstall --purge`: remove the .deb with its config, state and logs (its postrm).
pub const DPKG_PURGE: &[&str] = &["/usr/bin/dpkg", "--purge", AGENT_PACKAGE];
/// `uninstall`: does rpm own the binary? (prints the owning package's name).
pub const RPM_OWNER: &[&str] = &[
    "/usr/bin/rpm",
    "-qf",
    "--queryformat",
    "%{NAME}",
    AGENT_BINARY,
];
/// `uninstall`: remove the .rpm (its %preun stops the service; rpm has no purge).
pub const RPM_ERASE: &[&str] = &["/usr/bin/rpm", "-e", AGENT_PACKAGE];
/// `uninstall`: does pacman own the binary? (prints the owning package's name).
pub const PACMAN_OWNER: &[&str] = &["/usr/bin/pacman", "-Qqo", AGENT_BINARY];
/// `uninstall`: remove the Arch package (its install script stops the service).
pub const PACMAN_REMOVE: &[&str] = &["/usr/bin/pacman", "-R", "--noconfirm", AGENT_PACKAGE];

/// `uninstall` of a manual install under systemd: stop the agent.
pub const SYSTEMCTL_STOP: &[&str] = &["/usr/bin/systemctl", "stop", "patchctl.service"];
/// `uninstall` of a manual install under systemd: disable the unit.
pub const SYSTEMCTL_DISABLE: &[&str] = &["/usr/bin/systemctl", "disable", "patchctl.service"];
/// `uninstall` of a manual install under systemd: forget the removed unit.
pub const SYSTEMCTL_DAEMON_RELOAD: &[&str] = &["/usr/bin/systemctl", "daemon-reload"];
/// `uninstall` of a manual install under OpenRC: stop the agent.
pub const RC_SERVICE_STOP: &[&str] = &["/sbin/rc-service", "patchctl", "stop"];
/// `uninstall` of a manual install under OpenRC: take it out of the default runlevel.
pub const RC_UPDATE_DEL: &[&str] = &["/sbin/rc-update", "del", "patchctl", "default"];

/// The service steps of `patchctl-agent uninstall` whose program is not in
/// [`ALLOWED_PROGRAMS`]. (Its dpkg, rpm and pacman vectors run programs that are.)
pub const UNINSTALL_SERVICE_STEPS: &[&[&str]] = &[
    SYSTEMCTL_STOP,
    SYSTEMCTL_DISABLE,
    SYSTEMCTL_DAEMON_RELOAD,
    RC_SERVICE_STOP,
    RC_UPDATE_DEL,
];

/// Whole argument vectors allowed besides [`ALLOWED_PROGRAMS`]: exactly these, with no
/// extra environment.
pub const ALLOWED_ARGV: &[&[&str]] = &[
    SYSTEMCTL_SHOW_UNIT,
    SYSTEMCTL_FAILED_UNITS,
    SYSTEMCTL_REBOOT,
    SYSTEMCTL_STOP,
    SYSTEMCTL_DISABLE,
    SYSTEMCTL_DAEMON_RELOAD,
    RC_SERVICE_STOP,
    RC_UPDATE_DEL,
];

fn is_allowed(req: &ExecRequest) -> bool {
    if !req.program.starts_with('/') {
        return false;
    }
    ALLOWED_PROGRAMS.contains(&req.program.as_str())
        || ALLOWED_ARGV.iter().any(|argv| {
            argv[0] == req.program
                && argv.len() == req.args.len() + 1
                && argv[1..].iter().zip(&req.args).all(|(a, b)| a == b)
                && req.env.is_empty()
        })
}

/// Variables a backend may add to a child's environment, on top of [`CHILD_ENV`].
pub const ALLOWED_ENV: &[&str] = &[
    "DEBIAN_FRONTEND",
    "APT_LISTCHANGES_FRONTEND",
    "NEEDRESTART_MODE",
    "ZYPP_LOCK_TIMEOUT",
];

/// The environment every child gets, and nothing else.
pub const CHILD_ENV: &[(&str, &str)] =
    &[("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), ("LC_ALL", "C")];

/// How many runs the in-memory history keeps.
const HISTORY_LEN: usize = 256;

/// How long the output pipes are still read after the program exited. A program whose
/// maintainer scripts started a daemon may leave that daemon holding the pipes open
/// for ever; after this grace the agent stops reading and reports the output as cut.
pub const PIPE_GRACE: Duration = Duration::from_secs(5);

/// A program to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecRequest {
    /// Absolute path of the program; must be in [`ALLOWED_PROGRAMS`].
    pub program: String,
    /// Arguments, passed as they are (no shell).
    pub args: Vec<String>,
    /// Kill the process group after this long.
    pub timeout: Duration,
    /// Keep at most this many bytes of stdout and of stderr each.
    pub max_output: usize,
    /// Extra environment variables; names must be in [`ALLOWED_ENV`].
    pub env: Vec<(String, String)>,
    /// CPU and IO priority of the child: [`Priority::Background`] for scans.
    pub priority: Priority,
}

impl ExecRequest {
    /// A request for `argv[0]` with `argv[1..]`, a 5-minute timeout and an 8 MiB cap.
    pub fn from_argv(argv: &[String]) -> Self {
        ExecRequest {
            program: argv.first().cloned().unwrap_or_default(),
            args: argv.iter().skip(1).cloned().collect(),
            timeout: Duration::from_secs(300),
            max_output: 8 * 1024 * 1024,
            env: Vec::new(),
            priority: Priority::Normal,
        }
    }

    /// The same request at another CPU and IO priority.
    pub fn with_priority(mut self, priority: Priority) -> Self {
        self.priority = priority;
        self
    }

    /// The same request with `key=value` added to the child's environment.
    pub fn with_env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// The same request with another timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// What a finished program left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    /// Exit code; `None` when killed by a signal.
    pub code: Option<i32>,
    /// Captured stdout (lossy UTF-8), at most `max_output` bytes.
    pub stdout: String,
    /// Captured stderr (lossy UTF-8), at most `max_output` bytes.
    pub stderr: String,
    /// True when output beyond the cap was discarded.
    pub truncated: bool,
}

impl ExecOutput {
    /// True when the program exited with 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

/// Why a program did not run to completion.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The program is not on the allow-list or not absolute.
    #[error("refusing to run {0:?}: not an allowed program")]
    NotAllowed(String),
    /// An environment variable outside [`ALLOWED_ENV`] was asked for.
    #[error("refusing to set {0:?} in a child's environment: not an allowed variable")]
    EnvNotAllowed(String),
    /// The program could not be started.
    #[error("cannot start {program}: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// Why.
        source: std::io::Error,
    },
    /// The program ran past its timeout and was killed.
    #[error("{program} did not finish within {secs} s and was killed")]
    Timeout {
        /// The program.
        program: String,
        /// The timeout.
        secs: u64,
    },
    /// Waiting for the program failed.
    #[error("waiting for {program} failed: {source}")]
    Wait {
        /// The program.
        program: String,
        /// Why.
        source: std::io::Error,
    },
}

/// Runs programs. One real implementation; tests use it too and read its history.
#[async_trait]
pub trait Executor: Send + Sync {
    /// Runs one program.
    async fn run(&self, req: ExecRequest) -> Result<ExecOutput, ExecError>;
    /// Argument vectors of the runs attempted so far (program first), oldest first.
    fn history(&self) -> Vec<Vec<String>>;
}

/// The real executor.
#[derive(Debug, Default)]
pub struct ProcessExecutor {
    history: Mutex<Vec<Vec<String>>>,
}

impl ProcessExecutor {
    /// A new executor with an empty history.
    pub fn new() -> Self {
        Self::default()
    }

    fn record(&self, req: &ExecRequest) {
        let mut argv = vec![req.program.clone()];
        argv.extend(req.args.iter().cloned());
        tracing::info!(target: "audit", program = %req.program, args = ?req.args, env = ?req.env, priority = ?req.priority, "running program");
        let mut h = self.history.lock().unwrap_or_else(|e| e.into_inner());
        if h.len() == HISTORY_LEN {
            h.remove(0);
        }
        h.push(argv);
    }
}

/// What a reader collected so far: shared, so that a reader stopped early (see
/// [`drain`]) still leaves what it read.
#[derive(Debug, Default)]
struct Captured {
    kept: Vec<u8>,
    truncated: bool,
}

type Capture = std::sync::Arc<Mutex<Captured>>;

async fn read_capped<R: AsyncRead + Unpin>(mut r: R, cap: usize, into: Capture) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let mut c = into.lock().unwrap_or_else(|e| e.into_inner());
                let room = cap.saturating_sub(c.kept.len());
                if n > room {
                    c.truncated = true;
                }
                c.kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
}

#[async_trait]
impl Executor for ProcessExecutor {
    async fn run(&self, req: ExecRequest) -> Result<ExecOutput, ExecError> {
        if !is_allowed(&req) {
            return Err(ExecError::NotAllowed(req.program));
        }
        if let Some((k, _)) = req
            .env
            .iter()
            .find(|(k, _)| !ALLOWED_ENV.contains(&k.as_str()))
        {
            return Err(ExecError::EnvNotAllowed(k.clone()));
        }
        self.record(&req);
        spawn_and_collect(req).await
    }

    fn history(&self) -> Vec<Vec<String>> {
        self.history
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// The agent's own life cycle (self-update), the only processes besides the allow-list:
/// its staged release, after the signature chain, hash, size, product, target and
/// version all held, run with exactly `self-test`; that release in place, started as
/// the trial with the agent's own arguments; and the hand-over that replaces this
/// process with it. None of them is reachable from the four operations.
pub mod own {
    use std::ffi::OsString;
    use std::path::Path;
    use std::time::Duration;

    use super::{ExecError, ExecOutput, ExecRequest, Priority};

    /// Runs `staged self-test` (cleared environment, no stdin, own process group,
    /// timeout, capped output).
    pub async fn self_test(staged: &Path, timeout: Duration) -> Result<ExecOutput, ExecError> {
        let program = staged.to_string_lossy().into_owned();
        tracing::info!(target: "audit", program = %program, "running the staged release's self-test");
        super::spawn_and_collect(ExecRequest {
            program,
            args: vec!["self-test".into()],
            timeout,
            max_output: 64 * 1024,
            env: Vec::new(),
            priority: Priority::Normal,
        })
        .await
    }

    /// This process's arguments after the program name, as it was started.
    fn own_args() -> Vec<OsString> {
        std::env::args_os().skip(1).collect()
    }

    /// Starts `exe` with this process's arguments and environment plus
    /// `PATCHCTL_UPDATE_TRIAL=<version>`: the new binary proves it reaches the
    /// platform, then exits. Killed if this process drops it.
    pub fn spawn_trial(exe: &Path, version: &str) -> Result<tokio::process::Child, ExecError> {
        tracing::info!(target: "audit", program = %exe.display(), version, "starting the new binary's trial");
        #[allow(clippy::disallowed_methods)] // This is the executor.
        let mut cmd = tokio::process::Command::new(exe);
        cmd.args(own_args())
            .env("PATCHCTL_UPDATE_TRIAL", version)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        cmd.spawn().map_err(|source| ExecError::Spawn {
            program: exe.display().to_string(),
            source,
        })
    }

    /// Replaces this process with `exe`, same arguments and environment (the process
    /// id, and so the service's main process, stays). Returns only when that failed.
    pub fn replace_process(exe: &Path) -> std::io::Error {
        use std::os::unix::process::CommandExt;
        tracing::info!(target: "audit", program = %exe.display(), "handing over to the new binary");
        #[allow(clippy::disallowed_methods)] // This is the executor.
        let mut cmd = std::process::Command::new(exe);
        cmd.args(own_args()).env_remove("PATCHCTL_UPDATE_TRIAL");
        cmd.exec()
    }
}

/// Starts `req` (already checked against the allow-lists) and collects what it left.
async fn spawn_and_collect(req: ExecRequest) -> Result<ExecOutput, ExecError> {
    {
        #[allow(clippy::disallowed_methods)] // This is the executor.
        let mut cmd = tokio::process::Command::new(&req.program);
        cmd.args(&req.args)
            .env_clear()
            .envs(CHILD_ENV.iter().copied())
            .envs(req.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        if req.priority == Priority::Background {
            lower_before_exec(&mut cmd);
        }
        let mut child = cmd.spawn().map_err(|source| ExecError::Spawn {
            program: req.program.clone(),
            source,
        })?;
        let pid = child.id();
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let cap = req.max_output;
        let (out_buf, err_buf) = (Capture::default(), Capture::default());
        let out_task = {
            let into = out_buf.clone();
            tokio::spawn(async move {
                if let Some(s) = stdout {
                    read_capped(s, cap, into).await
                }
            })
        };
        let err_task = {
            let into = err_buf.clone();
            tokio::spawn(async move {
                if let Some(s) = stderr {
                    read_capped(s, cap, into).await
                }
            })
        };
        let status = match tokio::time::timeout(req.timeout, child.wait()).await {
            Ok(r) => r.map_err(|source| ExecError::Wait {
                program: req.program.clone(),
                source,
            })?,
            Err(_) => {
                kill_group(pid, &mut child).await;
                tracing::warn!(target: "audit", program = %req.program, timeout_secs = req.timeout.as_secs(), "program timed out and was killed");
                return Err(ExecError::Timeout {
                    program: req.program,
                    secs: req.timeout.as_secs(),
                });
            }
        };
        let held = drain([out_task, err_task], PIPE_GRACE).await;
        let take = |c: &Capture| std::mem::take(&mut *c.lock().unwrap_or_else(|e| e.into_inner()));
        let (out, err) = (take(&out_buf), take(&err_buf));
        let (t1, t2) = (out.truncated, err.truncated);
        let (out, err) = (out.kept, err.kept);
        if held {
            tracing::warn!(target: "audit", program = %req.program, grace_secs = PIPE_GRACE.as_secs(), "a process the program left behind holds its output open; stopped reading");
        }
        Ok(ExecOutput {
            code: status.code(),
            stdout: String::from_utf8_lossy(&out).into_owned(),
            stderr: String::from_utf8_lossy(&err).into_owned(),
            truncated: t1 || t2 || held,
        })
    }
}

/// Makes the child lower its own CPU and IO priority between fork and exec, so that
/// the program and everything it starts run at the background priority from their
/// first instruction (setting it from the parent after the spawn would race the
/// program's first children).
#[allow(unsafe_code)]
fn lower_before_exec(cmd: &mut tokio::process::Command) {
    // SAFETY: the hook runs in the forked child before exec; `lower_in_child` makes
    // plain system calls only (no allocation, no lock), which is async-signal-safe.
    unsafe {
        cmd.pre_exec(crate::priority::lower_in_child);
    }
}

/// Waits at most `grace` (in all) for the output readers once the program exited. A
/// reader still blocked then (a process the program left behind holds the pipe) is
/// stopped; what it read so far stays in its [`Capture`]. True when one was stopped.
async fn drain(readers: [tokio::task::JoinHandle<()>; 2], grace: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + grace;
    let mut held = false;
    for mut task in readers {
        if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
            held = true;
            task.abort();
        }
    }
    held
}

/// SIGTERM to the child's process group, five seconds' grace, then SIGKILL.
async fn kill_group(pid: Option<u32>, child: &mut tokio::process::Child) {
    use nix::sys::signal::{Signal, killpg};
    use nix::unistd::Pid;
    if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
        let _ = killpg(Pid::from_raw(pid), Signal::SIGTERM);
        if tokio::time::timeout(Duration::from_secs(5), child.wait())
            .await
            .is_ok()
        {
            return;
        }
        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
    }
    let _ = child.kill().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn refuses_programs_off_the_list() {
        let ex = ProcessExecutor::new();
        for p in ["/bin/sh", "sh", "/usr/bin/env", "rpm", "/usr/bin/../bin/sh"] {
            // A shell invocation, which must be refused before anything starts.
            let shell_flag = ["-", "c"].concat();
            let req = ExecRequest::from_argv(&[p.to_string(), shell_flag, "id".into()]);
            assert!(
                matches!(ex.run(req).await, Err(ExecError::NotAllowed(_))),
                "{p}"
            );
        }
        assert!(ex.history().is_empty());
    }

    #[test]
    fn systemctl_is_allowed_only_as_doctors_exact_question() {
        let req = |argv: &[&str]| {
            ExecRequest::from_argv(&argv.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        };
        assert!(is_allowed(&req(SYSTEMCTL_SHOW_UNIT)));
        let mut other_unit = SYSTEMCTL_SHOW_UNIT.to_vec();
        other_unit[2] = "sshd.service";
        let mut extra = SYSTEMCTL_SHOW_UNIT.to_vec();
        extra.push("--no-pager");
        for bad in [
            &["/usr/bin/systemctl", "start", "evil.service"][..],
            &["/usr/bin/systemctl", "show", "patchctl.service"][..],
            &other_unit[..],
            &extra[..],
            &["systemctl", "show", "patchctl.service"][..],
        ] {
            assert!(!is_allowed(&req(bad)), "{bad:?}");
        }
        assert!(!is_allowed(
            &req(SYSTEMCTL_SHOW_UNIT).with_env("DEBIAN_FRONTEND", "noninteractive")
        ));
        assert!(is_allowed(&req(&[
            "/usr/bin/apt-get",
            "-s",
            "dist-upgrade"
        ])));
    }

    #[test]
    fn uninstall_runs_only_its_exact_vectors() {
        let req = |argv: &[&str]| {
            ExecRequest::from_argv(&argv.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        };
        let package_steps = [
            DPKG_OWNER,
            DPKG_REMOVE,
            DPKG_PURGE,
            RPM_OWNER,
            RPM_ERASE,
            PACMAN_OWNER,
            PACMAN_REMOVE,
        ];
        assert!(is_allowed(&req(SYSTEMCTL_FAILED_UNITS)));
        assert!(is_allowed(&req(SYSTEMCTL_REBOOT)));
        for argv in UNINSTALL_SERVICE_STEPS.iter().chain(&package_steps) {
            assert!(is_allowed(&req(argv)), "{argv:?}");
        }
        for bad in [
            &["/usr/bin/systemctl", "stop", "sshd.service"][..],
            &["/usr/bin/systemctl", "start", "patchctl.service"][..],
            &[
                "/usr/bin/systemctl",
                "--no-block",
                "stop",
                "patchctl.service",
            ][..],
            &["/usr/bin/systemctl", "daemon-reexec"][..],
            &["/usr/bin/systemctl", "reboot", "--force"][..],
            &["/usr/bin/systemctl", "poweroff"][..],
            &["/usr/bin/systemctl", "list-units", "--state=failed"][..],
            &["/sbin/rc-service", "sshd", "stop"][..],
            &["/sbin/rc-service", "patchctl", "start"][..],
            &["/sbin/rc-update", "add", "patchctl", "default"][..],
        ] {
            assert!(!is_allowed(&req(bad)), "{bad:?}");
        }
    }

    /// Finds the child of this process running exactly `argv` and reads its priority
    /// from the kernel while it runs (`/proc/<pid>/stat` and `ioprio_get`).
    async fn priority_of_child(argv: &[&str], priority: Priority) -> crate::priority::Observed {
        let req = ExecRequest::from_argv(&argv.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .with_priority(priority);
        let run = tokio::spawn(spawn_and_collect(req));
        let me = std::process::id();
        let want: Vec<u8> = argv
            .iter()
            .flat_map(|a| [a.as_bytes(), b"\0"].concat())
            .collect();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let seen = loop {
            let found = std::fs::read_dir("/proc").unwrap().flatten().find_map(|e| {
                let pid: u32 = e.file_name().to_str()?.parse().ok()?;
                let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
                let ppid: u32 = stat[stat.rfind(')')? + 1..]
                    .split_whitespace()
                    .nth(1)?
                    .parse()
                    .ok()?;
                let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
                (ppid == me && cmdline == want).then_some(pid)
            });
            if let Some(pid) = found {
                break crate::priority::observe(pid).unwrap();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the child {argv:?} never showed up"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        assert_eq!(run.await.unwrap().unwrap().code, Some(0));
        seen
    }

    /// A scan's child runs at nice 10 and IO best-effort 7, set before exec; an
    /// install's child keeps exactly the agent's priority. Measured on the running
    /// children, not taken from the request.
    #[tokio::test]
    async fn background_children_run_lowered_and_normal_ones_do_not() {
        use crate::priority::{BACKGROUND_NICE, IOPRIO_CLASS_BE, ioprio_class, ioprio_level};
        let parent = crate::priority::observe_current_thread().unwrap();
        let low = priority_of_child(&["/usr/bin/sleep", "1.5"], Priority::Background).await;
        assert_eq!(low.nice, parent.nice.max(BACKGROUND_NICE), "{low:?}");
        assert_eq!(ioprio_class(low.ioprio), IOPRIO_CLASS_BE, "{low:?}");
        assert_eq!(ioprio_level(low.ioprio), 7, "{low:?}");
        let normal = priority_of_child(&["/usr/bin/sleep", "1.25"], Priority::Normal).await;
        assert_eq!(
            normal, parent,
            "a normal child must keep the agent's priority"
        );
        // The parent itself was not touched by its lowered child.
        assert_eq!(crate::priority::observe_current_thread().unwrap(), parent);
    }

    /// A program that exits while a process it started keeps the output pipes open (a
    /// daemon started by a maintainer script): the run ends after [`PIPE_GRACE`], with
    /// the output marked as cut, instead of hanging until that process exits. Real
    /// processes: `setsid -f` forks `sleep` into its own session and exits at once.
    #[tokio::test]
    async fn a_leftover_process_holding_the_pipe_does_not_hang_the_run() {
        let setsid = "/usr/bin/setsid";
        assert!(
            std::path::Path::new(setsid).exists(),
            "{setsid} (util-linux) is part of every Debian system"
        );
        let holder_secs = PIPE_GRACE.as_secs() * 4;
        let req = ExecRequest::from_argv(&[
            setsid.to_string(),
            "-f".into(),
            "/usr/bin/sleep".into(),
            holder_secs.to_string(),
        ]);
        let started = std::time::Instant::now();
        let out = spawn_and_collect(req).await.unwrap();
        let took = started.elapsed();
        assert_eq!(out.code, Some(0), "{out:?}");
        assert!(out.truncated, "a held pipe must mark the output as cut");
        assert!(
            took >= PIPE_GRACE && took < PIPE_GRACE * 3,
            "took {took:?}; the holder lives {holder_secs} s"
        );
    }
}
