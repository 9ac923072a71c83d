//! Package-manager backends: each *plans* exact argument vectors for an operation and
//! parses what the program printed; the executor runs the plans. Tests assert on the
//! plans without running anything, and real-manager tests run them for real.
//!
//! One [`Backend`] per family ([`Family`]), chosen once by [`Family::detect`]. What is
//! the same for every family lives here and nowhere else: the install gate
//! ([`refusals`]: a simulated transaction that removes, downgrades or installs anything
//! not approved is refused) and the per-family validation of names and versions
//! ([`Family::validate_targets`]) that runs before any process starts.
//!
//! Architecture invariant: a backend never runs a real install before its
//! [`Backend::simulate`] of exactly the same targets was accepted by [`refusals`];
//! [`crate::ops`] enforces that order, backends only provide the steps.

use std::cmp::Ordering;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use patchctl_proto::agent::InstalledPackage;
use patchctl_proto::command::{AvailableUpdate, PackageTarget};
use patchctl_proto::validate::PackageName;

use crate::exec::{ExecError, ExecOutput, ExecRequest, Executor};
use crate::inventory::PackageManager;

pub mod apk;
pub mod apt;
pub mod dnf;
mod error;
pub mod pacman;
pub mod reboot;
pub mod zypper;

pub use error::PkgError;

/// How long an install waits for another package manager's lock before giving up.
pub const LOCK_TIMEOUT_SECS: u64 = 300;

/// A package-manager family: how updates are found and installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// Debian, Ubuntu: dpkg + apt.
    Apt,
    /// RHEL 8+, AlmaLinux, Rocky, Fedora, Amazon Linux 2023: rpm + dnf.
    Dnf,
    /// RHEL/CentOS 7, Amazon Linux 2: rpm + yum (same commands and output as dnf).
    Yum,
    /// SUSE, openSUSE: rpm + zypper.
    Zypper,
    /// Alpine: apk.
    Apk,
    /// Arch Linux: pacman.
    Pacman,
}

/// The binaries whose presence tells the family, relative to the root.
const APT_GET: &str = "usr/bin/apt-get";
const DNF: &str = "usr/bin/dnf";
const YUM: &str = "usr/bin/yum";
const ZYPPER: &str = "usr/bin/zypper";
const APK: &str = "sbin/apk";
const PACMAN: &str = "usr/bin/pacman";

impl Family {
    /// Every family, in detection order.
    pub const ALL: [Family; 6] = [
        Family::Apt,
        Family::Dnf,
        Family::Yum,
        Family::Zypper,
        Family::Apk,
        Family::Pacman,
    ];

    /// The family's name as reports show it.
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Apt => "apt",
            Family::Dnf => "dnf",
            Family::Yum => "yum",
            Family::Zypper => "zypper",
            Family::Apk => "apk",
            Family::Pacman => "pacman",
        }
    }

    /// The package database the family keeps its inventory in.
    pub fn database(self) -> PackageManager {
        match self {
            Family::Apt => PackageManager::Dpkg,
            Family::Dnf | Family::Yum | Family::Zypper => PackageManager::Rpm,
            Family::Apk => PackageManager::Apk,
            Family::Pacman => PackageManager::Pacman,
        }
    }

    /// The version grammar and ordering of the family's packages.
    pub fn scheme(self) -> patchctl_version::Scheme {
        match self {
            Family::Apt => patchctl_version::Scheme::Dpkg,
            Family::Dnf | Family::Yum | Family::Zypper => patchctl_version::Scheme::Rpm,
            Family::Apk => patchctl_version::Scheme::Apk,
            Family::Pacman => patchctl_version::Scheme::Pacman,
        }
    }

    /// Compares two versions by the family's rules; `None` when either cannot be read.
    pub fn compare(self, a: &str, b: &str) -> Option<Ordering> {
        self.scheme().compare(a, b).ok()
    }

    /// Checks that `v` is a well-formed version of the family.
    pub fn check_version(self, v: &str) -> Result<(), patchctl_version::VersionError> {
        self.scheme().parse_check(v)
    }

    /// The family of the system under `root` (`/` in production).
    ///
    /// `/etc/os-release` decides first (`ID`, then `ID_LIKE`), confirmed by the
    /// family's binary being present: a Debian host with the `rpm` or `dnf` packages
    /// installed is still an apt host. Without a usable os-release, the binaries alone
    /// decide, apt first.
    pub fn detect(root: &Path) -> Option<Family> {
        let has = |rel: &str| root.join(rel).is_file();
        let present = |f: Family| match f {
            Family::Apt => {
                has(APT_GET)
                    && root
                        .join(crate::inventory::STATUS_PATH.trim_start_matches('/'))
                        .is_file()
            }
            Family::Dnf => has(DNF),
            Family::Yum => has(YUM) && !has(DNF),
            Family::Zypper => has(ZYPPER),
            Family::Apk => has(APK),
            Family::Pacman => has(PACMAN),
        };
        let os = std::fs::read_to_string(root.join("etc/os-release")).unwrap_or_default();
        let mut ids = Vec::new();
        for line in os.lines() {
            let (k, v) = match line.split_once('=') {
                Some(kv) => kv,
                None => continue,
            };
            if k == "ID" || k == "ID_LIKE" {
                let v = v.trim().trim_matches('"').trim_matches('\'');
                let words = v.split_whitespace().map(str::to_ascii_lowercase);
                if k == "ID" {
                    ids.splice(0..0, words);
                } else {
                    ids.extend(words);
                }
            }
        }
        for id in &ids {
            let candidates: &[Family] = match id.as_str() {
                "debian" | "ubuntu" => &[Family::Apt],
                "rhel" | "fedora" | "centos" | "almalinux" | "rocky" | "amzn" | "ol" => {
                    &[Family::Dnf, Family::Yum]
                }
                "suse" | "opensuse" | "sles" | "sled" | "opensuse-leap" | "opensuse-tumbleweed" => {
                    &[Family::Zypper]
                }
                "alpine" => &[Family::Apk],
                "arch" | "archlinux" => &[Family::Pacman],
                _ => &[],
            };
            if let Some(f) = candidates.iter().copied().find(|f| present(*f)) {
                return Some(f);
            }
        }
        Family::ALL.into_iter().find(|f| present(*f))
    }

    /// Checks names and versions against the family's own grammar (on top of the
    /// generic safe-character check every [`PackageName`] already passed). Returns one
    /// message per bad value; nothing may run when it is not empty.
    pub fn validate_targets(self, targets: &[PackageTarget]) -> Vec<String> {
        let mut why = Vec::new();
        for t in targets {
            if let Err(e) = patchctl_proto::validate::family_name(self.as_str(), t.name.as_str()) {
                why.push(format!("{}: {e}", t.name));
            }
            if let Err(e) = self.check_version(t.version.as_str()) {
                why.push(format!("{} {}: {e}", t.name, t.version));
            }
            // The version ends the argument (`name-version`, `name=version`): it must
            // not make it look like a local file either.
            if let Some(rule) =
                patchctl_proto::validate::local_file_rule(self.as_str(), t.version.as_str())
            {
                why.push(format!(
                    "{} {}: the version must have {rule}",
                    t.name, t.version
                ));
            }
        }
        why
    }
}

/// Available updates as a backend found them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Updates {
    /// The updates, with origins, security flags and advisories.
    pub updates: Vec<AvailableUpdate>,
    /// Installed packages a full upgrade would remove.
    pub removals: Vec<String>,
    /// Lines of the package manager's output that could not be read, with why.
    pub skipped: Vec<String>,
}

/// What a backend knows about one package's candidate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Candidate {
    /// The version the package manager would install.
    pub version: Option<String>,
    /// Repositories or releases it comes from.
    pub origins: Vec<String>,
    /// True when it is newer than what is installed and a security update.
    pub security: bool,
}

/// One change in a simulated transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Package name.
    pub name: String,
    /// Installed version before; `None` for a newly installed package.
    pub from: Option<String>,
    /// Version after; `None` when the package is removed.
    pub to: Option<String>,
}

/// What a simulated install would do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Transaction {
    /// Every package the transaction touches.
    pub changes: Vec<Change>,
    /// Parts of the plan that could not be read, with why (a reason to refuse).
    pub skipped: Vec<String>,
}

/// How a real install run ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstallRun {
    /// The package manager's exit code; `None` when it did not run to the end.
    pub code: Option<i32>,
    /// The tail of its output (stdout then stderr), or why it did not run.
    pub output: String,
    /// True when it gave up because another process held the package lock.
    pub locked: bool,
}

impl InstallRun {
    /// How an install the executor ran ended: the exit code, the tail of the output
    /// (stdout then stderr), and `locked` when `is_locked` finds the package manager's
    /// lock message in its standard error; the executor's error when it did not run.
    pub(crate) fn finished(
        result: Result<ExecOutput, ExecError>,
        is_locked: fn(&str) -> bool,
    ) -> InstallRun {
        match result {
            Ok(o) => InstallRun {
                code: o.code,
                locked: is_locked(&o.stderr),
                output: crate::text::tail(&format!("{}\n{}", o.stdout, o.stderr), 2000).to_owned(),
            },
            Err(e) => InstallRun {
                code: None,
                output: e.to_string(),
                locked: false,
            },
        }
    }
}

/// What the install gate says of a plan whose output the executor had to cut (past its
/// size cap, or a pipe held open by a leftover process): never installed from.
pub const CUT_SHORT: &str = "the package manager's output was cut short (too long, or a leftover process held its pipe); the plan cannot be read whole";

/// Refuses a simulation whose output the executor did not read whole: a plan read in
/// part could hide a removal. Every family's `simulate` calls it.
pub(crate) fn whole_plan(o: &ExecOutput, program: &str) -> Result<(), PkgError> {
    if o.truncated {
        return Err(PkgError::Refused(format!(
            "{program}: {CUT_SHORT}; refusing to install"
        )));
    }
    Ok(())
}

/// Runs `req` and returns its standard output. When it exits with anything but 0:
/// `"{what} failed (exit CODE): REASON"`, `reason` read from its standard output and
/// error; when it did not run, the executor's error.
pub(crate) async fn run_ok(
    exec: &dyn Executor,
    req: ExecRequest,
    what: &str,
    reason: fn(&str, &str) -> String,
) -> Result<String, PkgError> {
    match exec.run(req).await {
        Ok(o) if o.success() => Ok(o.stdout),
        Ok(o) => Err(PkgError::exited(what, o.code, reason(&o.stdout, &o.stderr))),
        Err(e) => Err(e.into()),
    }
}

/// Reads a package database with `read` on a blocking thread (a database is many
/// files, or one large one); the error names `path`.
pub(crate) async fn read_database<T: Send + 'static>(
    path: PathBuf,
    read: fn(&Path) -> std::io::Result<T>,
) -> Result<T, PkgError> {
    tokio::task::spawn_blocking(move || {
        read(&path).map_err(|source| PkgError::Io {
            action: "read",
            path,
            source,
        })
    })
    .await?
}

/// True when `modules` (the kernel modules directory) holds some kernel's modules but
/// none for the running `release`: the kernel package was upgraded (removing the old
/// modules) and the new kernel waits for a reboot. `false` when nothing can be told: no
/// modules at all (a container), or a release that is empty or no plain directory name.
pub fn kernel_modules_gone(modules: &Path, release: &str) -> bool {
    let release = release.trim();
    if release.is_empty() || release.contains('/') || release.starts_with('.') {
        return false;
    }
    let has_kernels = std::fs::read_dir(modules)
        .map(|mut d| d.next().is_some())
        .unwrap_or(false);
    has_kernels && !modules.join(release).exists()
}

/// One package-manager family's operations. Every method builds argument vectors,
/// has `exec` run them, and parses the output; none runs anything else.
#[async_trait]
pub trait Backend: Send + Sync {
    /// The family.
    fn family(&self) -> Family;

    /// The installed packages.
    async fn inventory(&self, exec: &dyn Executor) -> Result<Vec<InstalledPackage>, PkgError>;

    /// Refreshes the repository metadata (called only as root).
    async fn refresh(&self, exec: &dyn Executor) -> Result<(), PkgError>;

    /// The installed instances of one package (several for multi-arch).
    async fn installed(
        &self,
        exec: &dyn Executor,
        name: &PackageName,
    ) -> Result<Vec<InstalledPackage>, PkgError> {
        let all = self.inventory(exec).await?;
        Ok(all
            .into_iter()
            .filter(|p| p.name == name.as_str())
            .collect())
    }

    /// The available updates according to the metadata as it is now.
    async fn updates(&self, exec: &dyn Executor) -> Result<Updates, PkgError>;

    /// The candidate version of one package and where it comes from.
    async fn candidate(
        &self,
        exec: &dyn Executor,
        name: &PackageName,
    ) -> Result<Candidate, PkgError>;

    /// What installing exactly `targets` would do, without doing it.
    async fn simulate(
        &self,
        exec: &dyn Executor,
        targets: &[PackageTarget],
    ) -> Result<Transaction, PkgError>;

    /// Repairs an interrupted earlier run before an install (`dpkg --configure -a`).
    /// Returns what was done, `None` when nothing was needed.
    async fn repair(&self, _exec: &dyn Executor) -> Result<Option<String>, PkgError> {
        Ok(None)
    }

    /// Installs exactly `targets` (after an accepted [`Backend::simulate`]).
    async fn install(&self, exec: &dyn Executor, targets: &[PackageTarget]) -> InstallRun;

    /// Why the system asks for a reboot by the family's own signals (new kernel or core
    /// libraries), one line each; empty when it does not. [`reboot::state`] adds the
    /// kernel check every family shares.
    async fn reboot_reasons(&self, exec: &dyn Executor) -> Vec<String>;

    /// Whether the family's own signals ask for a reboot.
    async fn reboot_required(&self, exec: &dyn Executor) -> bool {
        !self.reboot_reasons(exec).await.is_empty()
    }
}

/// Why a simulated install may not run: it would remove a package, downgrade one, or
/// install anything that was not approved (a new dependency included). Empty when the
/// plan is acceptable. Versions are compared by the family's rules; a version that
/// cannot be read counts as a downgrade (refuse rather than guess).
pub fn refusals(family: Family, tx: &Transaction, approved: &[PackageTarget]) -> Vec<String> {
    let mut why = Vec::new();
    for c in &tx.changes {
        let Some(to) = &c.to else {
            why.push(format!("would remove {}", c.name));
            continue;
        };
        let ok = approved.iter().any(|t| {
            t.name.as_str() == c.name
                && (t.version.as_str() == to
                    || family.compare(t.version.as_str(), to) == Some(Ordering::Equal))
        });
        if !ok {
            why.push(format!(
                "would install {} {to}, which was not approved",
                c.name
            ));
        }
        if let Some(from) = &c.from {
            if family.compare(to, from) != Some(Ordering::Greater)
                && family.compare(to, from) != Some(Ordering::Equal)
            {
                why.push(format!("would downgrade {} from {from} to {to}", c.name));
            }
        }
    }
    why.extend(
        tx.skipped
            .iter()
            .map(|s| format!("could not read the package manager's plan: {s}")),
    );
    why
}

/// The backend for `family` with production settings (the system at `/`).
pub fn backend_for(family: Family) -> std::sync::Arc<dyn Backend> {
    use std::sync::Arc;
    match family {
        Family::Apt => Arc::new(apt::AptBackend::new(apt::AptOptions::default())),
        Family::Dnf => Arc::new(dnf::DnfBackend::new(dnf::DnfOptions::default())),
        Family::Yum => Arc::new(dnf::DnfBackend::new(dnf::DnfOptions::yum())),
        Family::Zypper => Arc::new(zypper::ZypperBackend::new(zypper::ZypperOptions::default())),
        Family::Apk => Arc::new(apk::ApkBackend::new(apk::ApkOptions::default())),
        Family::Pacman => Arc::new(pacman::PacmanBackend::new(pacman::PacmanOptions::default())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn detect(files: &[(&str, &str)]) -> Option<Family> {
        let root = tempfile::tempdir().unwrap();
        for (file, body) in files {
            let path = root.path().join(file);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, body).unwrap();
        }
        Family::detect(root.path())
    }

    #[test]
    fn detection_prefers_os_release_confirmed_by_binaries() {
        let deb = ("etc/os-release", "ID=debian\n");
        let apt = [("usr/bin/apt-get", ""), ("var/lib/dpkg/status", "")];
        assert_eq!(detect(&[]), None);
        assert_eq!(detect(&[deb, apt[0], apt[1]]), Some(Family::Apt));
        // A Debian host that also has dnf, zypper and pacman installed stays apt.
        assert_eq!(
            detect(&[
                deb,
                apt[0],
                apt[1],
                ("usr/bin/dnf", ""),
                ("usr/bin/zypper", ""),
                ("usr/bin/pacman", "")
            ]),
            Some(Family::Apt)
        );
        let alma = (
            "etc/os-release",
            "NAME=\"AlmaLinux\"\nID=\"almalinux\"\nID_LIKE=\"rhel centos fedora\"\n",
        );
        assert_eq!(
            detect(&[alma, ("usr/bin/dnf", ""), ("usr/bin/yum", "")]),
            Some(Family::Dnf)
        );
        assert_eq!(
            detect(&[("etc/os-release", "ID=centos\n"), ("usr/bin/yum", "")]),
            Some(Family::Yum)
        );
        let suse = (
            "etc/os-release",
            "ID=\"opensuse-leap\"\nID_LIKE=\"suse opensuse\"\n",
        );
        assert_eq!(
            detect(&[suse, ("usr/bin/zypper", "")]),
            Some(Family::Zypper)
        );
        assert_eq!(
            detect(&[("etc/os-release", "ID=alpine\n"), ("sbin/apk", "")]),
            Some(Family::Apk)
        );
        assert_eq!(
            detect(&[("etc/os-release", "ID=arch\n"), ("usr/bin/pacman", "")]),
            Some(Family::Pacman)
        );
        // ID_LIKE decides for derivatives the table does not name.
        assert_eq!(
            detect(&[
                ("etc/os-release", "ID=pop\nID_LIKE=\"ubuntu debian\"\n"),
                apt[0],
                apt[1]
            ]),
            Some(Family::Apt)
        );
        // os-release names a family whose binary is absent: the binaries decide.
        assert_eq!(
            detect(&[("etc/os-release", "ID=fedora\n"), apt[0], apt[1]]),
            Some(Family::Apt)
        );
        // No os-release at all.
        assert_eq!(detect(&[("usr/bin/pacman", "")]), Some(Family::Pacman));
    }

    fn target(name: &str, version: &str) -> PackageTarget {
        PackageTarget {
            name: PackageName::parse(name).unwrap(),
            version: patchctl_proto::validate::PackageVersion::parse(version).unwrap(),
        }
    }

    fn change(name: &str, from: Option<&str>, to: Option<&str>) -> Change {
        Change {
            name: name.into(),
            from: from.map(Into::into),
            to: to.map(Into::into),
        }
    }

    fn check(family: Family, changes: Vec<Change>, approved: &[PackageTarget], want: &[&str]) {
        let tx = Transaction {
            changes,
            skipped: Vec::new(),
        };
        assert_eq!(refusals(family, &tx, approved), want);
    }

    #[test]
    fn the_install_gate() {
        let ok = [target("openssl", "1:3.0.7-27.el9")];
        check(
            Family::Dnf,
            vec![change(
                "openssl",
                Some("1:3.0.7-25.el9"),
                Some("1:3.0.7-27.el9"),
            )],
            &ok,
            &[],
        );
        check(
            Family::Dnf,
            vec![
                change("openssl", Some("1:3.0.7-25.el9"), Some("1:3.0.7-27.el9")),
                change("libfoo", None, Some("2-1")),
            ],
            &ok,
            &["would install libfoo 2-1, which was not approved"],
        );
        check(
            Family::Dnf,
            vec![
                change("openssl", Some("1:3.0.7-25.el9"), Some("1:3.0.7-27.el9")),
                change("bar", Some("1-1"), None),
            ],
            &ok,
            &["would remove bar"],
        );
        // Epoch decides: 1:1.0 is newer than 2.0, so going from 1:1.0 to 2.0 is a downgrade.
        check(
            Family::Dnf,
            vec![change("x", Some("1:1.0-1"), Some("2.0-1"))],
            &[target("x", "2.0-1")],
            &["would downgrade x from 1:1.0-1 to 2.0-1"],
        );
        check(
            Family::Apt,
            vec![change("x", Some("1.0-1"), Some("1.0-1~bpo1"))],
            &[target("x", "1.0-1~bpo1")],
            &["would downgrade x from 1.0-1 to 1.0-1~bpo1"],
        );
        // A plan line that could not be read is itself a reason to refuse.
        let tx = Transaction {
            changes: Vec::new(),
            skipped: vec!["garbled line".into()],
        };
        assert_eq!(refusals(Family::Apk, &tx, &[]).len(), 1);
    }

    #[test]
    fn arguments_that_read_as_local_files_are_refused() {
        for (family, file, version) in [
            (Family::Dnf, "x.rpm", "1.0-1"),
            (Family::Yum, "x.rpm", "1.0-1"),
            (Family::Zypper, "x.RPM", "1.0-1"),
            (Family::Apk, "x.apk", "1.0-r0"),
        ] {
            // As a name, and as the version that ends `name-version` / `name=version`.
            let by_name = family.validate_targets(&[target(file, version)]);
            assert_eq!(by_name.len(), 1, "{family:?} {file}: {by_name:?}");
            assert!(by_name[0].contains("local file"), "{by_name:?}");
            let by_version = family.validate_targets(&[target("openssl", &format!("1.0-{file}"))]);
            assert!(!by_version.is_empty(), "{family:?} {file}");
        }
        let rpm = Family::Dnf.validate_targets(&[target("openssl", "1.0-1.rpm")]);
        assert_eq!(
            rpm,
            [
                "openssl 1.0-1.rpm: the version must have no .rpm ending (dnf, yum and zypper read such an argument as a local file)"
            ]
        );
        assert!(
            Family::Apt
                .validate_targets(&[target("openssl", "1.0-1")])
                .is_empty()
        );
    }
}
