//! The apt backend (Debian, Ubuntu): refresh with `apt-get update`, list updates with a
//! full-upgrade simulation (`apt-get -s dist-upgrade`).
//!
//! Whether an update is a security update is read from the release it comes from, as
//! apt prints it for each candidate (`Label:Version/Archive`): an archive ending in
//! `-security` (`bookworm-security`, `stable-security`, `jammy-security`,
//! `jammy-apps-security` for ESM) is a security release. Version strings are never
//! used to guess.

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use patchctl_proto::agent::InstalledPackage;
use patchctl_proto::command::PackageTarget;
use patchctl_proto::validate::PackageName;

mod parse;

pub use parse::{
    Policy, Simulation, Summary, is_locked, is_security_origin, parse_policy, parse_simulation,
    update_failures,
};

use super::{Backend, Candidate, Family, InstallRun, PkgError, Transaction, Updates};
use crate::exec::{ExecRequest, Executor};
use crate::inventory::dpkg;

/// apt-get's path.
pub const APT_GET: &str = "/usr/bin/apt-get";

/// Extra `-o Key=Value` settings for every apt run. Empty in production; tests point
/// apt at a private root (its own status file, sources and lists) with them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AptOptions {
    /// `(key, value)` pairs passed as `-o key=value`.
    pub config: Vec<(String, String)>,
}

impl AptOptions {
    fn push(&self, argv: &mut Vec<String>) {
        for (k, v) in &self.config {
            argv.push("-o".into());
            argv.push(format!("{k}={v}"));
        }
    }
}

/// `apt-get update`: refresh the package lists (needs root).
pub fn update_argv(o: &AptOptions) -> Vec<String> {
    let mut argv = vec![APT_GET.to_owned(), "-q".into()];
    o.push(&mut argv);
    argv.push("update".into());
    argv
}

/// `apt-get -s dist-upgrade`: what a full upgrade would do, without doing it and
/// without taking the dpkg lock (a simulation must never block a real run).
pub fn simulate_argv(o: &AptOptions) -> Vec<String> {
    let mut argv = vec![
        APT_GET.to_owned(),
        "-s".into(),
        "-q".into(),
        "-o".into(),
        "Debug::NoLocking=true".into(),
    ];
    o.push(&mut argv);
    argv.push("dist-upgrade".into());
    argv
}

use super::LOCK_TIMEOUT_SECS;

fn targets_args(argv: &mut Vec<String>, targets: &[PackageTarget]) {
    argv.push("install".into());
    argv.push("--only-upgrade".into());
    for t in targets {
        // Validated names and versions: no leading '-', no metacharacters.
        argv.push(format!("{}={}", t.name, t.version));
    }
}

/// `apt-get -s install --only-upgrade NAME=VERSION...`: what installing exactly the
/// approved versions would do.
pub fn install_simulate_argv(o: &AptOptions, targets: &[PackageTarget]) -> Vec<String> {
    let mut argv = vec![
        APT_GET.to_owned(),
        "-s".into(),
        "-q".into(),
        "-o".into(),
        "Debug::NoLocking=true".into(),
    ];
    o.push(&mut argv);
    targets_args(&mut argv, targets);
    argv
}

/// `apt-get -y install --only-upgrade NAME=VERSION...`, keeping local configuration
/// files and waiting a bounded time for the dpkg lock.
pub fn install_argv(o: &AptOptions, targets: &[PackageTarget]) -> Vec<String> {
    let mut argv = vec![
        APT_GET.to_owned(),
        "-y".into(),
        "-q".into(),
        "-o".into(),
        "Dpkg::Options::=--force-confdef".into(),
        "-o".into(),
        "Dpkg::Options::=--force-confold".into(),
        "-o".into(),
        format!("DPkg::Lock::Timeout={LOCK_TIMEOUT_SECS}"),
    ];
    o.push(&mut argv);
    targets_args(&mut argv, targets);
    argv
}

/// apt-cache's path.
pub const APT_CACHE: &str = "/usr/bin/apt-cache";

/// `apt-cache policy NAME`: installed and candidate versions and where each comes from.
pub fn policy_argv(o: &AptOptions, name: &patchctl_proto::validate::PackageName) -> Vec<String> {
    let mut argv = vec![APT_CACHE.to_owned()];
    o.push(&mut argv);
    argv.push("policy".into());
    argv.push(name.to_string());
    argv
}

/// dpkg's path (for `dpkg --configure -a`).
pub const DPKG: &str = "/usr/bin/dpkg";

/// `dpkg --configure -a` in `admindir`: finishes an interrupted run, keeping local
/// configuration files.
pub fn repair_argv(admindir: &std::path::Path) -> Vec<String> {
    vec![
        DPKG.to_owned(),
        format!("--admindir={}", admindir.display()),
        "--force-confdef".into(),
        "--force-confold".into(),
        "--configure".into(),
        "-a".into(),
    ]
}

/// The environment of every apt and dpkg run that may change the system: no
/// questions asked, no pager, no service-restart prompts.
pub const NONINTERACTIVE_ENV: &[(&str, &str)] = &[
    ("DEBIAN_FRONTEND", "noninteractive"),
    ("APT_LISTCHANGES_FRONTEND", "none"),
    ("NEEDRESTART_MODE", "l"),
];

fn noninteractive(argv: &[String]) -> ExecRequest {
    NONINTERACTIVE_ENV
        .iter()
        .fold(ExecRequest::from_argv(argv), |r, (k, v)| r.with_env(k, v))
}

/// The request [`AptBackend::install`] runs: [`install_argv`] without questions.
pub fn install_request(o: &AptOptions, targets: &[PackageTarget]) -> ExecRequest {
    noninteractive(&install_argv(o, targets)).with_timeout(Duration::from_secs(1800))
}

/// The request a repair runs: [`repair_argv`] without questions.
pub fn repair_request(admindir: &std::path::Path) -> ExecRequest {
    noninteractive(&repair_argv(admindir)).with_timeout(Duration::from_secs(1800))
}

/// Debian and Ubuntu: dpkg's database read directly, apt for everything else.
#[derive(Debug, Clone)]
pub struct AptBackend {
    opts: AptOptions,
    root: PathBuf,
}

impl AptBackend {
    /// The backend for the system at `/`.
    pub fn new(opts: AptOptions) -> Self {
        AptBackend {
            opts,
            root: PathBuf::from("/"),
        }
    }

    /// The same backend for a system under `root` (tests).
    pub fn with_root(mut self, root: &std::path::Path) -> Self {
        self.root = root.to_owned();
        self
    }

    /// Where the installed state is read: the dpkg status file apt is told to use.
    pub fn status_path(&self) -> PathBuf {
        self.opts
            .config
            .iter()
            .find(|(k, _)| k == "Dir::State::status")
            .map(|(_, v)| PathBuf::from(v))
            .unwrap_or_else(|| self.root.join(dpkg::STATUS_PATH.trim_start_matches('/')))
    }

    fn admindir(&self) -> PathBuf {
        self.status_path()
            .parent()
            .map(|p| p.to_owned())
            .unwrap_or_else(|| PathBuf::from("/var/lib/dpkg"))
    }
}

/// Runs `req` and returns its standard output, or why it failed with the tail of its
/// standard error.
async fn run_ok(exec: &dyn Executor, req: ExecRequest, what: &str) -> Result<String, PkgError> {
    super::run_ok(exec, req, what, |_, stderr| {
        crate::text::tail(stderr, 500).to_owned()
    })
    .await
}

#[async_trait]
impl Backend for AptBackend {
    fn family(&self) -> Family {
        Family::Apt
    }

    async fn inventory(&self, _exec: &dyn Executor) -> Result<Vec<InstalledPackage>, PkgError> {
        let parsed = super::read_database(self.status_path(), dpkg::read_status).await?;
        for reason in &parsed.skipped {
            tracing::warn!(%reason, "skipped a malformed dpkg status entry");
        }
        Ok(parsed.packages)
    }

    async fn refresh(&self, exec: &dyn Executor) -> Result<(), PkgError> {
        let req =
            ExecRequest::from_argv(&update_argv(&self.opts)).with_timeout(Duration::from_secs(600));
        let o = exec.run(req).await?;
        if !o.success() {
            return Err(PkgError::exited(
                "apt-get update",
                o.code,
                crate::text::tail(&o.stderr, 500),
            ));
        }
        // apt-get update exits 0 when a repository is unreachable: its warnings decide.
        let problems = update_failures(&o.stdout, &o.stderr);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(PkgError::RefreshIncomplete(problems.join("; ")))
        }
    }

    async fn updates(&self, exec: &dyn Executor) -> Result<Updates, PkgError> {
        let o = exec
            .run(ExecRequest::from_argv(&simulate_argv(&self.opts)))
            .await?;
        if !o.success() {
            return Err(PkgError::exited(
                "apt-get -s dist-upgrade",
                o.code,
                crate::text::tail(&o.stderr, 500),
            ));
        }
        let sim = parse_simulation(&o.stdout);
        let mut skipped = sim.skipped.clone();
        skipped.extend(sim.incomplete());
        if o.truncated {
            skipped.push(super::CUT_SHORT.to_owned());
        }
        Ok(Updates {
            updates: sim.updates,
            removals: sim.removals,
            skipped,
        })
    }

    async fn candidate(
        &self,
        exec: &dyn Executor,
        name: &PackageName,
    ) -> Result<Candidate, PkgError> {
        let out = run_ok(
            exec,
            ExecRequest::from_argv(&policy_argv(&self.opts, name)),
            "apt-cache policy",
        )
        .await?;
        let p = parse_policy(&out);
        Ok(Candidate {
            security: p.security_update(),
            version: p.candidate,
            origins: p.candidate_archives,
        })
    }

    async fn simulate(
        &self,
        exec: &dyn Executor,
        targets: &[PackageTarget],
    ) -> Result<Transaction, PkgError> {
        let o = exec
            .run(ExecRequest::from_argv(&install_simulate_argv(
                &self.opts, targets,
            )))
            .await?;
        if !o.success() {
            return Err(PkgError::exited(
                "apt-get cannot plan the install:",
                o.code,
                crate::text::tail(&o.stderr, 500),
            ));
        }
        super::whole_plan(&o, "apt-get")?;
        Ok(parse_simulation(&o.stdout).transaction())
    }

    async fn repair(&self, exec: &dyn Executor) -> Result<Option<String>, PkgError> {
        let admindir = self.admindir();
        if !dpkg::interrupted(&admindir) {
            return Ok(None);
        }
        tracing::warn!(target: "audit", admindir = %admindir.display(), "an interrupted dpkg run was found; running dpkg --configure -a");
        run_ok(exec, repair_request(&admindir), "dpkg --configure -a")
            .await
            .map(|_| Some("finished an interrupted dpkg run (dpkg --configure -a)".to_owned()))
    }

    async fn install(&self, exec: &dyn Executor, targets: &[PackageTarget]) -> InstallRun {
        InstallRun::finished(
            exec.run(install_request(&self.opts, targets)).await,
            is_locked,
        )
    }

    async fn reboot_reasons(&self, _exec: &dyn Executor) -> Vec<String> {
        super::reboot::debian_flag(&self.root).into_iter().collect()
    }
}

#[cfg(test)]
mod tests;
