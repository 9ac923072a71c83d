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
use patchctl_proto::command::{AvailableUpdate, PackageTarget};
use patchctl_proto::validate::PackageName;

use super::{Backend, Candidate, Change, Family, InstallRun, PkgError, Transaction, Updates};
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

impl Simulation {
    /// The simulation as a transaction for the install gate ([`super::refusals`]).
    pub fn transaction(&self) -> Transaction {
        let mut changes: Vec<Change> = self
            .updates
            .iter()
            .map(|u| Change {
                name: u.name.clone(),
                from: u.current_version.clone(),
                to: Some(u.candidate_version.clone()),
            })
            .collect();
        changes.extend(self.removals.iter().map(|r| Change {
            name: r.clone(),
            from: None,
            to: None,
        }));
        Transaction {
            changes,
            skipped: self.skipped.clone(),
        }
    }
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

/// What `apt-cache policy` says of one package.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// Installed version.
    pub installed: Option<String>,
    /// Candidate version.
    pub candidate: Option<String>,
    /// Archives (suites) the candidate comes from, e.g. `bookworm-security`.
    pub candidate_archives: Vec<String>,
}

impl Policy {
    /// True when the candidate differs from what is installed and one of its archives
    /// is a security archive.
    pub fn security_update(&self) -> bool {
        self.candidate.is_some()
            && self.candidate != self.installed
            && self
                .candidate_archives
                .iter()
                .any(|a| a.ends_with("-security"))
    }
}

/// Parses `apt-cache policy` output for one package. Never panics.
pub fn parse_policy(output: &str) -> Policy {
    let mut p = Policy::default();
    let none = |v: &str| (v != "(none)" && !v.is_empty()).then(|| v.to_owned());
    let mut in_candidate = false;
    for line in output.lines() {
        let t = line.trim();
        if let Some(v) = t.strip_prefix("Installed:") {
            p.installed = none(v.trim());
        } else if let Some(v) = t.strip_prefix("Candidate:") {
            p.candidate = none(v.trim());
        } else if line.starts_with("     ") || line.starts_with(" *** ") {
            // A version line of the version table: "     VERSION PRIO" / " *** VERSION PRIO".
            if !line.starts_with("        ") {
                let ver = t.trim_start_matches("***").split_whitespace().next();
                in_candidate = ver.is_some() && ver.map(str::to_owned) == p.candidate;
                continue;
            }
            // A source line under it: "PRIO URI ARCHIVE/COMPONENT ARCH Packages".
            if in_candidate {
                let f: Vec<&str> = t.split_whitespace().collect();
                if f.len() >= 5 && f[f.len() - 1] == "Packages" {
                    let archive = f[2].split('/').next().unwrap_or("").to_owned();
                    if !archive.is_empty() && !p.candidate_archives.contains(&archive) {
                        p.candidate_archives.push(archive);
                    }
                }
            }
        }
    }
    p
}

/// True when apt's output says another process holds the dpkg lock.
pub fn is_locked(stderr: &str) -> bool {
    stderr.contains("Could not get lock")
        || stderr.contains("Unable to acquire the dpkg frontend lock")
}

/// What a simulation said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Simulation {
    /// Packages upgraded or newly installed.
    pub updates: Vec<AvailableUpdate>,
    /// Packages removed.
    pub removals: Vec<String>,
    /// `Inst`/`Remv` lines that could not be read, with why.
    pub skipped: Vec<String>,
}

/// True when one of apt's release strings (`Label:Version/Archive`) names a security
/// archive.
pub fn is_security_origin(origin: &str) -> bool {
    let archive = origin.rsplit('/').next().unwrap_or("");
    archive.ends_with("-security")
}

/// Parses the output of [`simulate_argv`]. Lines other than `Inst` and `Remv` are
/// ignored; malformed ones are recorded in `skipped`. Never panics.
pub fn parse_simulation(output: &str) -> Simulation {
    let mut sim = Simulation::default();
    for line in output.lines() {
        if let Some(rest) = line.strip_prefix("Inst ") {
            match parse_inst(rest) {
                Some(u) => sim.updates.push(u),
                None => sim.skipped.push(format!(
                    "unreadable line: {}",
                    crate::text::truncate(line, 200)
                )),
            }
        } else if let Some(rest) = line.strip_prefix("Remv ") {
            match rest.split_whitespace().next() {
                Some(name) => sim.removals.push(name.to_owned()),
                None => sim.skipped.push("Remv line without a package".into()),
            }
        }
    }
    sim
}

/// `NAME [OLD] (NEW ORIGIN, ORIGIN [ARCH])`, the `[OLD]` part absent for new packages.
fn parse_inst(rest: &str) -> Option<AvailableUpdate> {
    let (name, rest) = rest.split_once(' ')?;
    let rest = rest.trim_start();
    let (current, rest) = match rest.strip_prefix('[') {
        Some(r) => {
            let (old, r) = r.split_once(']')?;
            (Some(old.to_owned()), r.trim_start())
        }
        None => (None, rest),
    };
    let inner = rest.strip_prefix('(')?;
    let inner = &inner[..inner.rfind(')')?];
    let (candidate, rest) = inner.split_once(' ').unwrap_or((inner, ""));
    let rest = rest.trim();
    let (origins, arch) = match rest
        .rfind(" [")
        .or_else(|| rest.starts_with('[').then_some(0))
    {
        Some(i) if rest.ends_with(']') => {
            let arch = rest[i..]
                .trim()
                .trim_start_matches('[')
                .trim_end_matches(']');
            (rest[..i].trim(), arch.to_owned())
        }
        _ => (rest, String::new()),
    };
    if name.is_empty() || candidate.is_empty() {
        return None;
    }
    let origins: Vec<String> = origins
        .split(", ")
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .map(str::to_owned)
        .collect();
    let security = origins.iter().any(|o| is_security_origin(o));
    Some(AvailableUpdate {
        name: name.to_owned(),
        arch,
        current_version: current,
        candidate_version: candidate.to_owned(),
        origins,
        security,
        advisories: Vec::new(),
    })
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
        run_ok(exec, req, "apt-get update").await.map(drop)
    }

    async fn updates(&self, exec: &dyn Executor) -> Result<Updates, PkgError> {
        let out = run_ok(
            exec,
            ExecRequest::from_argv(&simulate_argv(&self.opts)),
            "apt-get -s dist-upgrade",
        )
        .await?;
        let sim = parse_simulation(&out);
        Ok(Updates {
            updates: sim.updates,
            removals: sim.removals,
            skipped: sim.skipped,
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
        let out = run_ok(
            exec,
            ExecRequest::from_argv(&install_simulate_argv(&self.opts, targets)),
            "apt-get cannot plan the install:",
        )
        .await?;
        Ok(parse_simulation(&out).transaction())
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

    async fn reboot_required(&self, _exec: &dyn Executor) -> bool {
        self.root.join("run/reboot-required").exists()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn up(
        name: &str,
        cur: Option<&str>,
        cand: &str,
        origins: &[&str],
        arch: &str,
        security: bool,
    ) -> AvailableUpdate {
        AvailableUpdate {
            name: name.into(),
            arch: arch.into(),
            current_version: cur.map(Into::into),
            candidate_version: cand.into(),
            origins: origins.iter().map(|s| s.to_string()).collect(),
            security,
            advisories: Vec::new(),
        }
    }

    fn check(line: &str, want: Option<AvailableUpdate>) {
        let sim = parse_simulation(line);
        assert_eq!(sim.updates.first().cloned(), want, "{line}");
    }

    #[test]
    fn inst_lines() {
        // Real lines of `apt-get -s dist-upgrade` on Debian 12 and Ubuntu 22.04.
        check(
            "Inst libssl3 [3.0.11-1~deb12u2] (3.0.15-1~deb12u1 Debian-Security:12/stable-security [amd64])",
            Some(up(
                "libssl3",
                Some("3.0.11-1~deb12u2"),
                "3.0.15-1~deb12u1",
                &["Debian-Security:12/stable-security"],
                "amd64",
                true,
            )),
        );
        check(
            "Inst tzdata [2024a-0+deb12u1] (2025b-0+deb12u1 Debian:12.11/stable, Debian:12-updates/stable-updates [all])",
            Some(up(
                "tzdata",
                Some("2024a-0+deb12u1"),
                "2025b-0+deb12u1",
                &["Debian:12.11/stable", "Debian:12-updates/stable-updates"],
                "all",
                false,
            )),
        );
        check(
            "Inst libc6 [2.35-0ubuntu3.6] (2.35-0ubuntu3.8 Ubuntu:22.04/jammy-updates, Ubuntu:22.04/jammy-security [amd64]) []",
            Some(up(
                "libc6",
                Some("2.35-0ubuntu3.6"),
                "2.35-0ubuntu3.8",
                &["Ubuntu:22.04/jammy-updates", "Ubuntu:22.04/jammy-security"],
                "amd64",
                true,
            )),
        );
        check(
            "Inst linux-image-6.1.0-28-amd64 (6.1.119-1 Debian-Security:12/stable-security [amd64])",
            Some(up(
                "linux-image-6.1.0-28-amd64",
                None,
                "6.1.119-1",
                &["Debian-Security:12/stable-security"],
                "amd64",
                true,
            )),
        );
        check(
            "Inst python3-jinja2 [3.0.3-1ubuntu0.1] (3.0.3-1ubuntu0.2+esm1 UbuntuESMApps:22.04/jammy-apps-security [all])",
            Some(up(
                "python3-jinja2",
                Some("3.0.3-1ubuntu0.1"),
                "3.0.3-1ubuntu0.2+esm1",
                &["UbuntuESMApps:22.04/jammy-apps-security"],
                "all",
                true,
            )),
        );
        check("Inst", None);
        check("Inst foo [1.0 (2.0 x [amd64])", None);
        check("Inst foo [1.0] 2.0", None);
    }

    #[test]
    fn whole_output() {
        let out = "NOTE: This is only a simulation!\n\
                   Reading package lists...\n\
                   Inst pc-new [1.0] (1.1 Test:12/bookworm-updates [all])\n\
                   Remv pc-victim [1.0]\n\
                   Conf pc-new (1.1 Test:12/bookworm-updates [all])\n\
                   Inst broken\n";
        let sim = parse_simulation(out);
        assert_eq!(sim.updates.len(), 1);
        assert_eq!(sim.removals, vec!["pc-victim".to_string()]);
        assert_eq!(sim.skipped.len(), 1);
    }

    #[test]
    fn security_comes_from_the_archive_only() {
        assert!(is_security_origin("Debian-Security:12/stable-security"));
        assert!(is_security_origin("Debian:12/bookworm-security"));
        assert!(!is_security_origin("Debian:12.11/stable"));
        assert!(
            !is_security_origin("Security-Team:1/stable"),
            "labels do not count"
        );
        assert!(!is_security_origin("Debian:12/stable-security-not"));
    }

    #[test]
    fn golden_argv() {
        assert_eq!(
            update_argv(&AptOptions::default()),
            ["/usr/bin/apt-get", "-q", "update"]
        );
        assert_eq!(
            simulate_argv(&AptOptions::default()),
            [
                "/usr/bin/apt-get",
                "-s",
                "-q",
                "-o",
                "Debug::NoLocking=true",
                "dist-upgrade"
            ]
        );
        let o = AptOptions {
            config: vec![("Dir::State::status".into(), "/tmp/s".into())],
        };
        assert_eq!(
            simulate_argv(&o),
            [
                "/usr/bin/apt-get",
                "-s",
                "-q",
                "-o",
                "Debug::NoLocking=true",
                "-o",
                "Dir::State::status=/tmp/s",
                "dist-upgrade"
            ]
        );
    }

    fn target(n: &str, v: &str) -> PackageTarget {
        PackageTarget {
            name: patchctl_proto::validate::PackageName::parse(n).unwrap(),
            version: patchctl_proto::validate::PackageVersion::parse(v).unwrap(),
        }
    }

    #[test]
    fn install_plans() {
        let t = [
            target("openssl", "3.0.15-1~deb12u1"),
            target("libssl3", "3.0.15-1~deb12u1"),
        ];
        assert_eq!(
            install_simulate_argv(&AptOptions::default(), &t),
            [
                "/usr/bin/apt-get",
                "-s",
                "-q",
                "-o",
                "Debug::NoLocking=true",
                "install",
                "--only-upgrade",
                "openssl=3.0.15-1~deb12u1",
                "libssl3=3.0.15-1~deb12u1"
            ]
        );
        assert_eq!(
            install_argv(&AptOptions::default(), &t[..1]),
            [
                "/usr/bin/apt-get",
                "-y",
                "-q",
                "-o",
                "Dpkg::Options::=--force-confdef",
                "-o",
                "Dpkg::Options::=--force-confold",
                "-o",
                "DPkg::Lock::Timeout=300",
                "install",
                "--only-upgrade",
                "openssl=3.0.15-1~deb12u1"
            ]
        );
    }

    fn gate(sim: &Simulation, approved: &[PackageTarget]) -> Vec<String> {
        super::super::refusals(Family::Apt, &sim.transaction(), approved)
    }

    #[test]
    fn refusal_reasons() {
        let approved = [target("a", "1.1")];
        let sim = |out: &str| parse_simulation(out);
        assert!(gate(&sim("Inst a [1.0] (1.1 X:1/s-security [all])"), &approved).is_empty());
        let r = gate(
            &sim("Inst a [1.0] (1.1 X:1/s [all])\nRemv b [1.0]"),
            &approved,
        );
        assert_eq!(r, ["would remove b"]);
        let r = gate(
            &sim("Inst a [1.0] (1.1 X:1/s [all])\nInst c (2.0 X:1/s [all])"),
            &approved,
        );
        assert_eq!(r, ["would install c 2.0, which was not approved"]);
        let r = gate(&sim("Inst a [1.2] (1.1 X:1/s [all])"), &approved);
        assert_eq!(r, ["would downgrade a from 1.2 to 1.1"]);
        let r = gate(&sim("Inst a [1:1.0] (1.1 X:1/s [all])"), &approved);
        assert_eq!(
            r,
            ["would downgrade a from 1:1.0 to 1.1"],
            "the epoch decides"
        );
        let r = gate(
            &sim("Inst a [1.0~rc1] (1.0 X:1/s [all])"),
            &[target("a", "1.0")],
        );
        assert!(r.is_empty(), "~ sorts before the release: {r:?}");
    }

    #[test]
    fn policy() {
        let p = parse_policy(include_str!(
            "../../tests/data/apt-cache-policy-openssl.txt"
        ));
        assert_eq!(p.installed.as_deref(), Some("3.0.11-1~deb12u2"));
        assert_eq!(p.candidate.as_deref(), Some("3.0.15-1~deb12u1"));
        assert_eq!(p.candidate_archives, ["bookworm-security"]);
        assert!(p.security_update());
        let p = parse_policy(
            "dpkg:\n  Installed: 1.21.22\n  Candidate: 1.21.23\n  Version table:\n     1.21.23 500\n        500 http://deb.debian.org/debian bookworm/main amd64 Packages\n *** 1.21.22 100\n        100 /var/lib/dpkg/status\n",
        );
        assert_eq!(p.candidate_archives, ["bookworm"]);
        assert!(!p.security_update());
        let p = parse_policy("foo:\n  Installed: (none)\n  Candidate: (none)\n  Version table:\n");
        assert_eq!(p, Policy::default());
        assert!(is_locked(
            "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 123 (apt-get)"
        ));
        assert!(!is_locked("E: Version '9' for 'x' was not found"));
    }

    proptest! {
        #[test]
        fn policy_never_panics(s in "\\PC{0,400}") {
            let _ = parse_policy(&s);
        }
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,400}") {
            let _ = parse_simulation(&s);
            let _ = parse_simulation(&format!("Inst {s}"));
        }

        #[test]
        fn well_formed_lines_round_trip(
            name in "[a-z0-9][a-z0-9.+-]{0,20}",
            old in proptest::option::of("[0-9][0-9a-z.+~-]{0,12}"),
            new in "[0-9][0-9a-z.+~-]{0,12}",
            origins in proptest::collection::vec(("[A-Za-z-]{1,10}", "[0-9.]{1,5}", "[a-z]{1,8}(-security|-updates)?"), 1..3),
            arch in "(amd64|all|arm64)",
        ) {
            let origins: Vec<String> = origins.iter().map(|(l, v, a)| format!("{l}:{v}/{a}")).collect();
            let line = match &old {
                Some(o) => format!("Inst {name} [{o}] ({new} {} [{arch}])", origins.join(", ")),
                None => format!("Inst {name} ({new} {} [{arch}])", origins.join(", ")),
            };
            let sim = parse_simulation(&line);
            prop_assert_eq!(sim.updates.len(), 1, "{}", line);
            let u = &sim.updates[0];
            prop_assert_eq!(&u.name, &name);
            prop_assert_eq!(&u.current_version, &old);
            prop_assert_eq!(&u.candidate_version, &new);
            prop_assert_eq!(&u.arch, &arch);
            prop_assert_eq!(&u.origins, &origins);
            prop_assert_eq!(u.security, origins.iter().any(|o| o.ends_with("-security")));
        }
    }
}
