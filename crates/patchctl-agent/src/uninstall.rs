//! `patchctl-agent uninstall [--purge] [--yes]`: removes the agent the way it was
//! installed.
//!
//! Who owns [`AGENT_BINARY`] decides: dpkg (`dpkg --remove`, or `--purge`, whose
//! maintainer scripts stop the service and remove the rest), rpm (`rpm -e`, then with
//! `--purge` what rpm leaves: it has no purge), pacman (`pacman -R`, the same), or no
//! package manager (the Alpine tarball or a copied binary: the agent stops the service
//! through systemd or OpenRC and removes the binary, the unit or init script itself).
//! `--purge` also removes the config and credential (`/etc/patchctl`), the state
//! (`/var/lib/patchctl`) and the logs (`/var/log/patchctl`); a `state_dir` or `log_dir`
//! the config points elsewhere is named and left, never removed blindly.
//!
//! The plan is computed first ([`plan`], a pure function of what [`Facts`] found) and
//! shown; it runs only with `--yes`. Without it nothing changes and nothing is asked
//! (the command reads no stdin): the caller exits 2, saying to run again with `--yes`.
//! Every program runs through [`Executor`] as one of `exec`'s named argument vectors.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{DEFAULT_CONFIG_PATH, DEFAULT_STATE_DIR};
use crate::exec::{
    AGENT_BINARY, AGENT_PACKAGE, DPKG_OWNER, DPKG_PURGE, DPKG_REMOVE, ExecError, ExecRequest,
    Executor, PACMAN_OWNER, PACMAN_REMOVE, RC_SERVICE_STOP, RC_UPDATE_DEL, RPM_ERASE, RPM_OWNER,
    SYSTEMCTL_DAEMON_RELOAD, SYSTEMCTL_DISABLE, SYSTEMCTL_STOP,
};

/// Where the agent's log directory is when nothing else is configured (the packages'
/// purge removes it).
pub const DEFAULT_LOG_DIR: &str = "/var/log/patchctl";

/// The self-update's leftovers beside the binary: the previous version kept for a
/// rollback, and a download being staged.
pub const SELF_UPDATE_LEFTOVERS: &[&str] = &[
    "/opt/patchctl/bin/patchctl-agent.previous",
    "/opt/patchctl/bin/.patchctl-agent.staging",
];

/// Where a manual install may have put the systemd unit (and its `enable` link) or the
/// OpenRC service (and its runlevel link).
const SERVICE_FILES: &[&str] = &[
    "/etc/systemd/system/multi-user.target.wants/patchctl.service",
    "/etc/systemd/system/patchctl.service",
    "/lib/systemd/system/patchctl.service",
    "/usr/lib/systemd/system/patchctl.service",
    "/etc/runlevels/default/patchctl",
    "/etc/init.d/patchctl",
];

/// The OpenRC service script of a manual (Alpine) install.
const OPENRC_SERVICE: &str = "/etc/init.d/patchctl";

/// The directory that holds the binary, and its parent; removed when empty.
const INSTALL_DIRS: &[&str] = &["/opt/patchctl/bin", "/opt/patchctl"];

/// How long a package manager's removal may take: its prerm stops the agent, which
/// first finishes the command in progress (the unit allows an hour).
const REMOVE_TIMEOUT: Duration = Duration::from_secs(2 * 3600);

/// How the agent was installed, from who owns [`AGENT_BINARY`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// The .deb: dpkg owns the binary.
    Dpkg,
    /// The .rpm: rpm owns the binary.
    Rpm,
    /// The Arch package: pacman owns the binary.
    Pacman,
    /// No package manager owns it (the Alpine tarball, a copied binary).
    Manual,
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Method::Dpkg => "from the .deb package (dpkg owns the binary)",
            Method::Rpm => "from the .rpm package (rpm owns the binary)",
            Method::Pacman => "from the Arch package (pacman owns the binary)",
            Method::Manual => {
                "by hand or from the Alpine tarball (no package manager owns the binary)"
            }
        })
    }
}

/// One step of an uninstall.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Run one of `exec`'s named argument vectors; a failure stops the uninstall.
    Run(&'static [&'static str]),
    /// Remove a file or a symbolic link.
    RemoveFile(PathBuf),
    /// Remove a directory and everything in it.
    RemoveTree(PathBuf),
    /// Remove a directory if it is empty (left as it is otherwise).
    RemoveDirIfEmpty(PathBuf),
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Run(argv) => write!(f, "run {}", argv.join(" ")),
            Step::RemoveFile(p) => write!(f, "remove {}", p.display()),
            Step::RemoveTree(p) => write!(f, "remove {} and everything in it", p.display()),
            Step::RemoveDirIfEmpty(p) => write!(f, "remove {} if empty", p.display()),
        }
    }
}

/// What an uninstall will do, and what it leaves on purpose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// How the agent was installed.
    pub method: Method,
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// What stays afterwards, and why (one sentence each).
    pub kept: Vec<String>,
}

/// What the plan depends on, found on this system by [`Facts::gather`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// True when systemd is the running init (`/run/systemd/system` exists).
    pub systemd_running: bool,
    /// The paths of interest that exist (files, links, directories, programs).
    pub present: BTreeSet<PathBuf>,
    /// `state_dir` and `log_dir` from the config when they are set (read as plain JSON:
    /// a config the agent would refuse still names its directories).
    pub configured_dirs: Vec<(&'static str, PathBuf)>,
}

impl Facts {
    /// Looks at this system: systemd, the agent's files, the service managers' programs
    /// and the config's directories.
    pub fn gather() -> Facts {
        let mut present = BTreeSet::new();
        let mut look = |p: &str| {
            if std::fs::symlink_metadata(p).is_ok() {
                present.insert(PathBuf::from(p));
            }
        };
        look(AGENT_BINARY);
        SELF_UPDATE_LEFTOVERS.iter().for_each(|p| look(p));
        SERVICE_FILES.iter().for_each(|p| look(p));
        INSTALL_DIRS.iter().for_each(|p| look(p));
        for argv in [SYSTEMCTL_STOP, RC_SERVICE_STOP, RC_UPDATE_DEL] {
            look(argv[0]);
        }
        look(CONFIG_DIR);
        look(DEFAULT_STATE_DIR);
        look(DEFAULT_LOG_DIR);
        Facts {
            systemd_running: Path::new("/run/systemd/system").is_dir(),
            present,
            configured_dirs: configured_dirs(Path::new(DEFAULT_CONFIG_PATH)),
        }
    }

    fn has(&self, p: &str) -> bool {
        self.present.contains(Path::new(p))
    }
}

/// The directory of the config and the credential.
const CONFIG_DIR: &str = "/etc/patchctl";

/// `state_dir` and `log_dir` as the config file at `path` sets them, if it does.
fn configured_dirs(path: &Path) -> Vec<(&'static str, PathBuf)> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let Ok(serde_json::Value::Object(map)) = serde_json::from_str(&text) else {
        return Vec::new();
    };
    ["state_dir", "log_dir"]
        .into_iter()
        .filter_map(|k| Some((k, PathBuf::from(map.get(k)?.as_str()?))))
        .collect()
}

/// Why an uninstall could not be planned or did not finish.
#[derive(Debug, thiserror::Error)]
pub enum UninstallError {
    /// Not running as root.
    #[error(
        "uninstall must run as root: it removes /opt/patchctl and the service (try: sudo patchctl-agent uninstall)"
    )]
    NotRoot,
    /// Another package than the agent's owns the binary: removing it by hand would break
    /// that package manager's records.
    #[error(
        "{binary} belongs to the package {package:?} ({manager}), not to {AGENT_PACKAGE}: remove that package with {manager}, not with this command",
        binary = AGENT_BINARY
    )]
    ForeignOwner {
        /// The package manager.
        manager: &'static str,
        /// The package it names.
        package: String,
    },
    /// A program could not be run.
    #[error(transparent)]
    Exec(#[from] ExecError),
    /// A program of the plan failed; the steps after it did not run.
    #[error(
        "`{command}` failed ({status}): {detail}\nnothing after this step was done; fix the cause and run `patchctl-agent uninstall` again"
    )]
    StepFailed {
        /// The command line.
        command: String,
        /// Its exit status, as text.
        status: String,
        /// The end of its output.
        detail: String,
    },
    /// A file or directory could not be removed.
    #[error(
        "cannot remove {path}: {source}\nnothing after this step was done; fix the cause and run `patchctl-agent uninstall` again"
    )]
    Remove {
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Finds how the agent was installed: asks dpkg, rpm and pacman (those present) who
/// owns [`AGENT_BINARY`].
pub async fn detect(ex: &dyn Executor, facts: &Facts) -> Result<Method, UninstallError> {
    if !facts.has(AGENT_BINARY) {
        return Ok(Method::Manual);
    }
    let managers: [(&'static str, &'static [&'static str], Method); 3] = [
        ("dpkg", DPKG_OWNER, Method::Dpkg),
        ("rpm", RPM_OWNER, Method::Rpm),
        ("pacman", PACMAN_OWNER, Method::Pacman),
    ];
    for (manager, argv, method) in managers {
        if !Path::new(argv[0]).exists() {
            continue;
        }
        let out = ex.run(request(argv)).await?;
        if !out.success() {
            continue; // Not owned (or no database): the next manager is asked.
        }
        match owner(manager, &out.stdout) {
            Some(p) if p == AGENT_PACKAGE => return Ok(method),
            Some(p) => {
                return Err(UninstallError::ForeignOwner {
                    manager,
                    package: p.to_owned(),
                });
            }
            None => continue,
        }
    }
    Ok(Method::Manual)
}

/// The owning package's name in a successful owner query's output: dpkg-query prints
/// `package[:arch][, other]: path`, rpm and pacman (with the vectors used) the name.
fn owner<'a>(manager: &str, stdout: &'a str) -> Option<&'a str> {
    let line = stdout
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with("diversion by "))?;
    if manager == "dpkg" {
        let (packages, _path) = line.split_once(": ")?;
        let first = packages.split(", ").next()?;
        Some(first.split(':').next().unwrap_or(first))
    } else {
        Some(line)
    }
}

/// The plan for `method` on a system described by `facts`.
pub fn plan(method: Method, purge: bool, facts: &Facts) -> Plan {
    let mut steps = Vec::new();
    let mut kept = Vec::new();
    match method {
        Method::Dpkg => {
            steps.push(Step::Run(if purge { DPKG_PURGE } else { DPKG_REMOVE }));
        }
        Method::Rpm => {
            steps.push(Step::Run(RPM_ERASE));
            leftovers(&mut steps, facts);
        }
        Method::Pacman => {
            steps.push(Step::Run(PACMAN_REMOVE));
            leftovers(&mut steps, facts);
        }
        Method::Manual => manual(&mut steps, &mut kept, facts),
    }
    let data = [CONFIG_DIR, DEFAULT_STATE_DIR, DEFAULT_LOG_DIR];
    if purge {
        // dpkg's postrm purges these itself; the others leave them.
        if method != Method::Dpkg {
            for d in data.iter().filter(|d| facts.has(d)) {
                steps.push(Step::RemoveTree(d.into()));
            }
        }
        for (key, dir) in &facts.configured_dirs {
            if !data.iter().any(|d| Path::new(d) == dir) {
                kept.push(format!(
                    "{}: the config's {key}, not a default path, so it is not removed (remove it yourself if it holds nothing else)",
                    dir.display()
                ));
            }
        }
    } else {
        let left: Vec<_> = match method {
            // dpkg keeps them on --remove whether they exist now or not.
            Method::Dpkg => data.to_vec(),
            _ => data.iter().copied().filter(|d| facts.has(d)).collect(),
        };
        if !left.is_empty() {
            kept.push(format!(
                "{}: the config, credential, state and logs are kept (--purge removes them)",
                left.join(", ")
            ));
        }
    }
    Plan {
        method,
        steps,
        kept,
    }
}

/// What rpm and pacman leave beside the binary (their scripts remove these too; this
/// covers a package whose scripts did not run).
fn leftovers(steps: &mut Vec<Step>, facts: &Facts) {
    for p in SELF_UPDATE_LEFTOVERS.iter().filter(|p| facts.has(p)) {
        steps.push(Step::RemoveFile(p.into()));
    }
    for d in INSTALL_DIRS.iter().filter(|d| facts.has(d)) {
        steps.push(Step::RemoveDirIfEmpty(d.into()));
    }
}

fn manual(steps: &mut Vec<Step>, kept: &mut Vec<String>, facts: &Facts) {
    let unit_present = SERVICE_FILES[..4].iter().any(|p| facts.has(p));
    let openrc_present = facts.has(OPENRC_SERVICE);
    let mut stopped = false;
    if unit_present && facts.systemd_running && facts.has(SYSTEMCTL_STOP[0]) {
        steps.push(Step::Run(SYSTEMCTL_STOP));
        steps.push(Step::Run(SYSTEMCTL_DISABLE));
        stopped = true;
    }
    if openrc_present && facts.has(RC_SERVICE_STOP[0]) {
        steps.push(Step::Run(RC_SERVICE_STOP));
        if facts.has(RC_UPDATE_DEL[0]) {
            steps.push(Step::Run(RC_UPDATE_DEL));
        }
        stopped = true;
    }
    if !stopped && (unit_present || openrc_present) {
        kept.push(
            "no running service manager to stop the agent with (systemd is not running, OpenRC's rc-service is missing): an agent still running keeps running until it is stopped"
                .to_owned(),
        );
    }
    let files = std::iter::once(AGENT_BINARY)
        .chain(SELF_UPDATE_LEFTOVERS.iter().copied())
        .chain(SERVICE_FILES.iter().copied());
    for p in files.filter(|p| facts.has(p)) {
        steps.push(Step::RemoveFile(p.into()));
    }
    if unit_present && facts.systemd_running && facts.has(SYSTEMCTL_DAEMON_RELOAD[0]) {
        steps.push(Step::Run(SYSTEMCTL_DAEMON_RELOAD));
    }
    for d in INSTALL_DIRS.iter().filter(|d| facts.has(d)) {
        steps.push(Step::RemoveDirIfEmpty(d.into()));
    }
}

fn request(argv: &[&str]) -> ExecRequest {
    ExecRequest::from_argv(&argv.iter().map(|s| s.to_string()).collect::<Vec<_>>())
}

/// Runs `plan`'s steps in order, stopping at the first failure; calls `done` after each
/// step with what it did. Every step is an audit event.
pub async fn execute(
    plan: &Plan,
    ex: &dyn Executor,
    mut done: impl FnMut(&Step, &str),
) -> Result<(), UninstallError> {
    tracing::info!(target: "audit", method = ?plan.method, steps = plan.steps.len(), "uninstalling the agent");
    for step in &plan.steps {
        let what = match step {
            Step::Run(argv) => {
                let out = ex.run(request(argv).with_timeout(REMOVE_TIMEOUT)).await?;
                if !out.success() {
                    let detail = crate::text::tail(
                        crate::text::failure_detail(&out.stdout, &out.stderr),
                        2000,
                    )
                    .trim()
                    .to_owned();
                    tracing::error!(target: "audit", command = %argv.join(" "), code = ?out.code, "uninstall step failed");
                    return Err(UninstallError::StepFailed {
                        command: argv.join(" "),
                        status: crate::text::exit_code(out.code),
                        detail,
                    });
                }
                let said = out.stdout.trim();
                if said.is_empty() {
                    "done".to_owned()
                } else {
                    said.to_owned()
                }
            }
            Step::RemoveFile(p) => remove(p, std::fs::remove_file(p))?,
            Step::RemoveTree(p) => remove(p, std::fs::remove_dir_all(p))?,
            Step::RemoveDirIfEmpty(p) => match std::fs::remove_dir(p) {
                Ok(()) => "removed".to_owned(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => "already gone".to_owned(),
                Err(e) if e.kind() == std::io::ErrorKind::DirectoryNotEmpty => {
                    "not empty, kept".to_owned()
                }
                Err(source) => {
                    return Err(UninstallError::Remove {
                        path: p.clone(),
                        source,
                    });
                }
            },
        };
        tracing::info!(target: "audit", step = %step, outcome = %what, "uninstall step done");
        done(step, &what);
    }
    Ok(())
}

fn remove(path: &Path, r: std::io::Result<()>) -> Result<String, UninstallError> {
    match r {
        Ok(()) => Ok("removed".to_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok("already gone".to_owned()),
        Err(source) => Err(UninstallError::Remove {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Refuses to plan anything unless running as root.
pub fn require_root() -> Result<(), UninstallError> {
    if nix::unistd::geteuid().is_root() {
        Ok(())
    } else {
        Err(UninstallError::NotRoot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(systemd_running: bool, present: &[&str]) -> Facts {
        Facts {
            systemd_running,
            present: present.iter().map(PathBuf::from).collect(),
            configured_dirs: Vec::new(),
        }
    }

    fn shown(plan: &Plan) -> Vec<String> {
        plan.steps.iter().map(Step::to_string).collect()
    }

    #[test]
    fn owners_are_read_from_each_managers_answer() {
        let bin = AGENT_BINARY;
        for (manager, out, want) in [
            (
                "dpkg",
                format!("patchctl-agent: {bin}\n"),
                Some("patchctl-agent"),
            ),
            (
                "dpkg",
                format!("patchctl-agent:amd64: {bin}\n"),
                Some("patchctl-agent"),
            ),
            (
                "dpkg",
                format!(
                    "diversion by x from: {bin}\ndiversion by x to: {bin}.real\nother: {bin}\n"
                ),
                Some("other"),
            ),
            ("dpkg", "".to_owned(), None),
            ("rpm", "patchctl-agent".to_owned(), Some("patchctl-agent")),
            (
                "pacman",
                "patchctl-agent\n".to_owned(),
                Some("patchctl-agent"),
            ),
        ] {
            assert_eq!(owner(manager, &out), want, "{manager}: {out:?}");
        }
    }

    #[test]
    fn a_deb_is_removed_or_purged_by_dpkg_alone() {
        let f = facts(true, &[AGENT_BINARY, CONFIG_DIR, DEFAULT_STATE_DIR]);
        let p = plan(Method::Dpkg, false, &f);
        assert_eq!(p.steps, vec![Step::Run(DPKG_REMOVE)]);
        assert!(
            p.kept[0].contains("/etc/patchctl, /var/lib/patchctl"),
            "{:?}",
            p.kept
        );
        let p = plan(Method::Dpkg, true, &f);
        assert_eq!(p.steps, vec![Step::Run(DPKG_PURGE)]);
        assert!(p.kept.is_empty(), "{:?}", p.kept);
    }

    #[test]
    fn rpm_has_no_purge_so_the_agent_removes_what_it_leaves() {
        let f = facts(
            false,
            &[AGENT_BINARY, CONFIG_DIR, DEFAULT_LOG_DIR, "/opt/patchctl"],
        );
        assert_eq!(
            shown(&plan(Method::Rpm, true, &f)),
            [
                "run /usr/bin/rpm -e patchctl-agent",
                "remove /opt/patchctl if empty",
                "remove /etc/patchctl and everything in it",
                "remove /var/log/patchctl and everything in it",
            ]
        );
        let kept = plan(Method::Rpm, false, &f).kept;
        assert!(
            kept[0].starts_with("/etc/patchctl, /var/log/patchctl:"),
            "{kept:?}"
        );
    }

    #[test]
    fn a_manual_install_under_systemd_is_stopped_then_removed() {
        let f = facts(
            true,
            &[
                AGENT_BINARY,
                SELF_UPDATE_LEFTOVERS[0],
                "/etc/systemd/system/patchctl.service",
                "/etc/systemd/system/multi-user.target.wants/patchctl.service",
                "/usr/bin/systemctl",
                "/opt/patchctl/bin",
                "/opt/patchctl",
                CONFIG_DIR,
            ],
        );
        assert_eq!(
            shown(&plan(Method::Manual, true, &f)),
            [
                "run /usr/bin/systemctl stop patchctl.service",
                "run /usr/bin/systemctl disable patchctl.service",
                "remove /opt/patchctl/bin/patchctl-agent",
                "remove /opt/patchctl/bin/patchctl-agent.previous",
                "remove /etc/systemd/system/multi-user.target.wants/patchctl.service",
                "remove /etc/systemd/system/patchctl.service",
                "run /usr/bin/systemctl daemon-reload",
                "remove /opt/patchctl/bin if empty",
                "remove /opt/patchctl if empty",
                "remove /etc/patchctl and everything in it",
            ]
        );
    }

    #[test]
    fn a_manual_install_without_a_running_service_manager_says_so() {
        let f = facts(
            false,
            &[
                AGENT_BINARY,
                "/etc/systemd/system/patchctl.service",
                "/usr/bin/systemctl",
            ],
        );
        let p = plan(Method::Manual, false, &f);
        assert!(!shown(&p).iter().any(|s| s.contains("systemctl")), "{p:?}");
        assert!(p.kept.iter().any(|k| k.contains("keeps running")), "{p:?}");
    }

    #[test]
    fn an_openrc_install_is_stopped_and_taken_out_of_its_runlevel() {
        let f = facts(
            false,
            &[
                AGENT_BINARY,
                OPENRC_SERVICE,
                "/etc/runlevels/default/patchctl",
                RC_SERVICE_STOP[0],
                RC_UPDATE_DEL[0],
            ],
        );
        assert_eq!(
            shown(&plan(Method::Manual, false, &f)),
            [
                "run /sbin/rc-service patchctl stop",
                "run /sbin/rc-update del patchctl default",
                "remove /opt/patchctl/bin/patchctl-agent",
                "remove /etc/runlevels/default/patchctl",
                "remove /etc/init.d/patchctl",
            ]
        );
    }

    #[test]
    fn directories_the_config_points_elsewhere_are_named_not_removed() {
        let mut f = facts(false, &[AGENT_BINARY, CONFIG_DIR]);
        f.configured_dirs = vec![
            ("state_dir", PathBuf::from("/srv/patchctl-state")),
            ("log_dir", PathBuf::from(DEFAULT_LOG_DIR)),
        ];
        let p = plan(Method::Manual, true, &f);
        assert!(!shown(&p).iter().any(|s| s.contains("/srv")), "{p:?}");
        assert_eq!(p.kept.len(), 1, "{:?}", p.kept);
        assert!(p.kept[0].starts_with("/srv/patchctl-state: the config's state_dir"));
    }

    #[test]
    fn the_config_is_read_for_its_directories_even_when_the_agent_would_refuse_it() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("config.json");
        std::fs::write(
            &path,
            r#"{"state_dir": "/srv/s", "log_dir": "/srv/l", "unknown": 1}"#,
        )
        .unwrap();
        assert_eq!(
            configured_dirs(&path),
            vec![
                ("state_dir", PathBuf::from("/srv/s")),
                ("log_dir", PathBuf::from("/srv/l"))
            ]
        );
        std::fs::write(&path, "not json").unwrap();
        assert!(configured_dirs(&path).is_empty());
    }
}
