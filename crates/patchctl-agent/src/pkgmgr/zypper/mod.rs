//! The zypper backend (SUSE Linux Enterprise, openSUSE Leap and Tumbleweed).
//!
//! The inventory is rpm's ([`crate::inventory::rpm`]); everything else is zypper,
//! read through its XML output (`--xmlout`), the interface zypper keeps stable for
//! programs. The XML is parsed with `roxmltree`; every parser (`parse.rs`) is `pub`, never
//! panics, and records what it could not read in `skipped`.
//!
//! | operation | command (global options: `--non-interactive`, `--root R` in tests) |
//! |-----------|----------------------------------------------------------------------|
//! | refresh | `zypper refresh` |
//! | updates | `--xmlout --no-refresh list-updates`, `list-patches`, `info -t patch -- PATCH...` and a full `update --dry-run --no-recommends` for the removals |
//! | candidate | `--xmlout --no-refresh info -t package -- NAME` (+ the patch queries when it is out of date) |
//! | simulate | `--xmlout --no-refresh update --dry-run --no-recommends -- NAME=VERSION...` |
//! | install | `--no-refresh update --no-recommends -- NAME=VERSION...` |
//! | reboot | `needs-rebooting` (exit 102 = needed) |
//!
//! Decisions:
//! - **Security comes from patches.** An update is a security update when a *needed*
//!   patch of category `security` (the repository's updateinfo) fixes that package at
//!   or below the candidate's version; its advisories are those patches (id = patch
//!   name, kind = category, severity). `list-patches` lists the patches but not their
//!   packages; `info -t patch` names them, as text inside an XML `<message>`
//!   (`Conflicts : [N]` then one `NAME[.ARCH] < EDITION` per line: a patch conflicts
//!   with the versions it fixes). Patches of every category are listed, not only
//!   `--category security`: zypper 1.14.42 ignores that filter in XML mode (checked;
//!   `tests/data/zypper/list-patches-category-security.xml`), and the advisories of
//!   recommended and optional patches are worth reporting too. Version strings never
//!   decide.
//! - **One set of metadata.** Only [`refresh_argv`] refreshes; every other run has
//!   `--no-refresh`, so the simulation and the install plan from the same metadata
//!   (an auto-refreshing repository could otherwise change the plan in between).
//! - **`update`, not `install`.** `zypper update NAME=VERSION` only updates installed
//!   packages and never downgrades ("has lower version than the installed one"); a
//!   target the plan does not contain (not installed, no such version, lower version)
//!   is refused with zypper's own words, unless it is installed at exactly that version
//!   already. `--no-recommends`: recommended packages would be new, unapproved packages.
//! - **Same plan, same solver.** The install is the simulation's argument vector
//!   without `--dry-run` and `--xmlout` (plain text reads better as an output tail).
//! - **Nothing is agreed to on the operator's behalf**: no `--auto-agree-with-licenses`
//!   (a package with a licence to confirm fails the install, and the tail says why),
//!   no `--gpg-auto-import-keys` (an unknown repository key fails the refresh).
//! - **The lock.** As root, every zypper command, even `list-updates`, takes the zypp
//!   lock (`/run/zypp.pid`). Every run gets `ZYPP_LOCK_TIMEOUT` ([`LOCK_TIMEOUT_SECS`]
//!   in production) and an executor timeout of that plus the work's own. A run that
//!   still finds the lock exits 7 with "System management is locked by the application
//!   with pid N (NAME)"; that is reported as "zypper is locked by another process".
//! - **Exit codes** (zypper(8)): 0 ok; 100–103 and 106 are informational (updates or
//!   a reboot/restart needed, repositories skipped) and count as success for queries;
//!   104 means "not found"; an install ending in 102/103 (reboot or restart of the
//!   package manager needed) succeeded and is reported as 0, with the note in the tail.
//! - **Reboot**: `zypper needs-rebooting` (libzypp's `/run/reboot-needed` flag, set
//!   by packages that ask for it); when the command gives another answer (an older
//!   zypper without it), the flag file itself is read.
//! - **No repair step**: rpm has no half-configured state to finish like dpkg's.
//! - **What `list-updates` leaves out**: an update zypper could not install (a
//!   dependency problem) is not listed at all (seen with zypper 1.14.42), and it is
//!   vendor-sticky like `update`. The removals of a full update come from a full
//!   `update --dry-run`; when that cannot be planned (a problem, not root) the updates
//!   are still reported and the reason is logged.
//! - **Many patches**: `info -t patch` gets at most [`PATCHES_PER_INFO`] names per run
//!   (long patch descriptions, e.g. the kernel's, make big outputs).
//!
//! Tested for real on Debian 12 (zypper 1.14.42, libzypp 17.25.7, rpm 4.18) against a
//! private `--root` (tests/zypper_real.rs); the fixtures under `tests/data/zypper/`
//! were captured there by `tests/data/zypper/capture.sh`. `zypper --root R` keeps the
//! repositories, caches, lock and reboot flag under `R`, and its librpm reads the same
//! `%_dbpath` as `rpm --root=R` (Debian's rpm: `~/.rpmdb`, i.e. `R/root/.rpmdb` for
//! root; SUSE's: `/usr/lib/sysimage/rpm`), so the inventory and zypper agree.
//!
//! Layout: this file holds the options, the argument vectors and the [`Backend`]
//! implementation (what runs, and in which order); `parse.rs` holds the parsers of
//! the output (pure, re-exported here); `tests.rs` the unit tests.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use patchctl_proto::agent::InstalledPackage;
use patchctl_proto::command::{Advisory, AvailableUpdate, PackageTarget};
use patchctl_proto::validate::PackageName;

use super::{
    Backend, Candidate, Family, InstallRun, LOCK_TIMEOUT_SECS, PkgError, Transaction, Updates,
};
use crate::exec::{ExecOutput, ExecRequest, Executor};
use crate::inventory::rpm;

mod parse;
#[cfg(test)]
mod tests;

pub use parse::*;

/// zypper's path.
pub const ZYPPER: &str = "/usr/bin/zypper";

/// The environment variable that bounds libzypp's wait for the zypp lock, in seconds.
pub const LOCK_ENV: &str = "ZYPP_LOCK_TIMEOUT";

/// zypper's exit code when the zypp lock is held by another process.
pub const EXIT_LOCKED: i32 = 7;

/// zypper's exit code when a reboot is needed (`needs-rebooting`, after an install).
pub const EXIT_REBOOT_NEEDED: i32 = 102;

/// zypper's exit code when the package manager itself was updated and must be re-run.
pub const EXIT_RESTART_NEEDED: i32 = 103;

/// zypper's exit code when something asked for was not found.
pub const EXIT_NOT_FOUND: i32 = 104;

/// How many patch names one `info -t patch` run is given (bounds argv and output).
pub const PATCHES_PER_INFO: usize = 100;

/// Settings of the zypper backend. The default is production: the system at `/`,
/// waiting [`LOCK_TIMEOUT_SECS`] for the lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZypperOptions {
    /// The system to manage (`zypper --root R`, `rpm --root=R`); `None` for `/`.
    /// Repositories, caches and the lock then live under it too.
    pub root: Option<PathBuf>,
    /// How long every run waits for the zypp lock (`ZYPP_LOCK_TIMEOUT`), in seconds.
    pub lock_timeout_secs: u64,
}

impl Default for ZypperOptions {
    fn default() -> Self {
        ZypperOptions {
            root: None,
            lock_timeout_secs: LOCK_TIMEOUT_SECS,
        }
    }
}

impl ZypperOptions {
    /// The root directory of the managed system.
    pub fn root_dir(&self) -> &Path {
        self.root.as_deref().unwrap_or(Path::new("/"))
    }
}

/// `zypper --non-interactive [--root R] [--xmlout] [--no-refresh]`.
fn base(o: &ZypperOptions, xml: bool, no_refresh: bool) -> Vec<String> {
    let mut argv = vec![ZYPPER.to_owned(), "--non-interactive".into()];
    if o.root_dir() != Path::new("/") {
        argv.push("--root".into());
        argv.push(o.root_dir().display().to_string());
    }
    if xml {
        argv.push("--xmlout".into());
    }
    if no_refresh {
        argv.push("--no-refresh".into());
    }
    argv
}

/// `zypper refresh`: refreshes the metadata of every enabled repository (needs root).
pub fn refresh_argv(o: &ZypperOptions) -> Vec<String> {
    let mut argv = base(o, false, false);
    argv.push("refresh".into());
    argv
}

/// `zypper --xmlout --no-refresh list-updates`: the update candidate of each installed
/// package that has one.
pub fn list_updates_argv(o: &ZypperOptions) -> Vec<String> {
    let mut argv = base(o, true, true);
    argv.push("list-updates".into());
    argv
}

/// `zypper --xmlout --no-refresh list-patches`: the needed patches, every category.
pub fn list_patches_argv(o: &ZypperOptions) -> Vec<String> {
    let mut argv = base(o, true, true);
    argv.push("list-patches".into());
    argv
}

/// `zypper --xmlout --no-refresh info -t patch -- PATCH...`: the packages each patch
/// fixes. The names come from zypper's own output and are filtered by
/// [`is_patch_name`] first.
pub fn patch_info_argv(o: &ZypperOptions, patches: &[String]) -> Vec<String> {
    let mut argv = base(o, true, true);
    argv.extend(["info", "-t", "patch", "--"].map(String::from));
    argv.extend(patches.iter().cloned());
    argv
}

/// `zypper --xmlout --no-refresh info -t package -- NAME`: the installed version,
/// zypper's candidate and the repository it comes from.
pub fn package_info_argv(o: &ZypperOptions, name: &PackageName) -> Vec<String> {
    let mut argv = base(o, true, true);
    argv.extend(["info", "-t", "package", "--"].map(String::from));
    argv.push(name.to_string());
    argv
}

/// `zypper --xmlout --no-refresh update --dry-run --no-recommends`: what a full update
/// would do (read for the packages it would remove).
pub fn full_update_simulate_argv(o: &ZypperOptions) -> Vec<String> {
    let mut argv = base(o, true, true);
    argv.extend(["update", "--dry-run", "--no-recommends"].map(String::from));
    argv
}

fn target_args(argv: &mut Vec<String>, targets: &[PackageTarget]) {
    argv.push("--".into());
    for t in targets {
        // Validated names and versions: no leading '-', no white space or metacharacters.
        argv.push(format!("{}={}", t.name, t.version));
    }
}

/// `zypper --xmlout --no-refresh update --dry-run --no-recommends -- NAME=VERSION...`:
/// what updating exactly the approved versions would do.
pub fn simulate_argv(o: &ZypperOptions, targets: &[PackageTarget]) -> Vec<String> {
    let mut argv = full_update_simulate_argv(o);
    target_args(&mut argv, targets);
    argv
}

/// `zypper --no-refresh update --no-recommends -- NAME=VERSION...`: the install, the
/// simulation's command without `--dry-run` (and in plain text, for the output tail).
pub fn install_argv(o: &ZypperOptions, targets: &[PackageTarget]) -> Vec<String> {
    let mut argv = base(o, false, true);
    argv.extend(["update", "--no-recommends"].map(String::from));
    target_args(&mut argv, targets);
    argv
}

/// `zypper needs-rebooting`: exit 102 when a reboot is needed, 0 when not.
pub fn needs_rebooting_argv(o: &ZypperOptions) -> Vec<String> {
    let mut argv = base(o, false, false);
    argv.push("needs-rebooting".into());
    argv
}

/// How long each kind of run may work once it has the lock.
pub mod work {
    use std::time::Duration;
    /// `refresh`: downloads metadata.
    pub const REFRESH: Duration = Duration::from_secs(600);
    /// Queries and simulations.
    pub const QUERY: Duration = Duration::from_secs(300);
    /// The install: downloads and installs packages.
    pub const INSTALL: Duration = Duration::from_secs(1800);
}

/// The request that runs `argv`: `ZYPP_LOCK_TIMEOUT` set, and an executor timeout of
/// the lock wait plus `work`.
pub fn request(o: &ZypperOptions, argv: &[String], work: Duration) -> ExecRequest {
    ExecRequest::from_argv(argv)
        .with_env(LOCK_ENV, &o.lock_timeout_secs.to_string())
        .with_timeout(Duration::from_secs(o.lock_timeout_secs) + work)
}

/// True for a patch name that may be passed back to zypper: the characters of SUSE
/// patch names (`openSUSE-SLE-15.6-2024-1234`, `SUSE-SLE-Module-Basesystem-15-SP6-2024-1`,
/// `PCTEST-SU-2024:0001`), not starting with `-`.
pub fn is_patch_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 200
        && !s.starts_with('-')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:+-".contains(&b))
}

// ---------------------------------------------------------------------------------
// XML
// ---------------------------------------------------------------------------------

/// True when zypper's output says another process holds the zypp lock.
pub fn is_locked(code: Option<i32>, stdout: &str, stderr: &str) -> bool {
    const SAID: &str = "System management is locked";
    code == Some(EXIT_LOCKED) || stdout.contains(SAID) || stderr.contains(SAID)
}

/// What a zypper exit code means (zypper(8), EXIT CODES).
pub fn exit_meaning(code: Option<i32>) -> &'static str {
    match code {
        None => "killed by a signal",
        Some(0) => "ok",
        Some(1) => "zypper bug",
        Some(2) => "syntax error",
        Some(3) => "invalid arguments",
        Some(4) => "a problem reported by libzypp (dependencies, repositories)",
        Some(5) => "root privileges are needed",
        Some(6) => "no repositories are defined",
        Some(7) => "locked by another process",
        Some(8) => "the transaction failed",
        Some(100) => "updates are available",
        Some(101) => "security updates are available",
        Some(102) => "a reboot is needed",
        Some(103) => "the package manager was updated; run again",
        Some(104) => "not found",
        Some(105) => "interrupted",
        Some(106) => "some repositories were skipped (not refreshed or not cached)",
        Some(107) => "packages were installed but an rpm scriptlet failed",
        Some(_) => "unknown exit code",
    }
}

/// Exit codes a query may end with and still be read.
fn query_ok(code: Option<i32>) -> bool {
    matches!(code, Some(0 | 100 | 101 | 102 | 103 | 106))
}

fn locked_message(o: &ExecOutput, waited: u64) -> String {
    let said = [o.stdout.as_str(), o.stderr.as_str()]
        .iter()
        .flat_map(|s| s.lines())
        .find(|l| l.contains("System management is locked"))
        .map(|l| {
            let l = l.trim();
            let l = l.find("System").map(|i| &l[i..]).unwrap_or(l);
            quote(l)
        })
        .unwrap_or_default();
    format!(
        "zypper is locked by another process ({said}); waited {waited} s; nothing was changed, try again later"
    )
}

/// Why a zypper run failed, in zypper's words: its XML error messages when it printed
/// any, else the tail of its standard error.
fn failure(what: &str, o: &ExecOutput) -> PkgError {
    let said = parse_messages(&o.stdout)
        .ok()
        .map(|m| m.errors.join("; "))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| {
            let err = crate::text::tail(&o.stderr, 500);
            if err.is_empty() {
                crate::text::tail(&o.stdout, 500).to_owned()
            } else {
                err.to_owned()
            }
        });
    PkgError::ToolFailed {
        what: format!("{what} failed"),
        exit: format!(
            "zypper exit {}: {}",
            o.code.map_or("-".to_owned(), |c| c.to_string()),
            exit_meaning(o.code)
        ),
        output: crate::text::truncate(said.trim(), 1000).to_owned(),
    }
}

/// Joins the package updates with the needed patches that fix them: the advisories of
/// each update, and its security flag (a `security` patch fixes it). A patch counts
/// when one of its fixes names the package (and its arch, when the fix names one) at
/// an edition the candidate reaches; when the two editions cannot be compared, the
/// patch still counts (zypper lists it as needed for that package).
pub fn join(
    updates: &[PackageUpdate],
    patches: &[Patch],
    details: &[PatchDetail],
) -> Vec<AvailableUpdate> {
    updates
        .iter()
        .map(|u| {
            let mut advisories: Vec<Advisory> = Vec::new();
            let mut security = false;
            for d in details {
                let fixes = d.fixes.iter().any(|f| {
                    f.name == u.name
                        && f.arch.as_deref().is_none_or(|a| a == u.arch)
                        && Family::Zypper.compare(&u.edition, &f.edition)
                            != Some(std::cmp::Ordering::Less)
                });
                if !fixes || advisories.iter().any(|a| a.id == d.name) {
                    continue;
                }
                let listed = patches.iter().find(|p| p.name == d.name);
                let kind = listed
                    .and_then(|p| p.category.clone())
                    .or_else(|| d.category.clone());
                let severity = listed
                    .and_then(|p| p.severity.clone())
                    .or_else(|| d.severity.clone());
                security |= kind.as_deref() == Some("security");
                advisories.push(Advisory {
                    id: d.name.clone(),
                    kind,
                    severity,
                });
            }
            AvailableUpdate {
                name: u.name.clone(),
                arch: u.arch.clone(),
                current_version: u.edition_old.clone(),
                candidate_version: u.edition.clone(),
                origins: u.repository.iter().cloned().collect(),
                security,
                advisories,
            }
        })
        .collect()
}

/// The request [`ZypperBackend::install`] runs.
pub fn install_request(o: &ZypperOptions, targets: &[PackageTarget]) -> ExecRequest {
    request(o, &install_argv(o, targets), work::INSTALL)
}

/// SUSE and openSUSE: rpm's database for the inventory, zypper for everything else.
#[derive(Debug, Clone)]
pub struct ZypperBackend {
    opts: ZypperOptions,
}

impl ZypperBackend {
    /// A backend with these settings.
    pub fn new(opts: ZypperOptions) -> Self {
        ZypperBackend { opts }
    }

    /// Runs a zypper query; `Err` with zypper's words unless it ended with a readable
    /// exit code (`extra_ok` adds codes, like 104 "not found").
    async fn query(
        &self,
        exec: &dyn Executor,
        argv: Vec<String>,
        work: Duration,
        what: &str,
        extra_ok: &[i32],
    ) -> Result<ExecOutput, PkgError> {
        let o = exec
            .run(request(&self.opts, &argv, work))
            .await
            .map_err(|source| PkgError::Run {
                what: format!("{what} failed:"),
                source,
            })?;
        if is_locked(o.code, &o.stdout, &o.stderr) {
            return Err(PkgError::Locked(locked_message(
                &o,
                self.opts.lock_timeout_secs,
            )));
        }
        if query_ok(o.code) || o.code.is_some_and(|c| extra_ok.contains(&c)) {
            if o.truncated {
                return Err(PkgError::Unparsable(format!(
                    "{what}: zypper's output was too large and was cut"
                )));
            }
            Ok(o)
        } else {
            Err(failure(what, &o))
        }
    }

    /// The needed patches and the packages they fix.
    async fn patches(
        &self,
        exec: &dyn Executor,
    ) -> Result<(ListPatches, Vec<PatchDetail>, Vec<String>), PkgError> {
        let o = self
            .query(
                exec,
                list_patches_argv(&self.opts),
                work::QUERY,
                "zypper list-patches",
                &[],
            )
            .await?;
        let listed = parse_list_patches(&o.stdout)?;
        let mut skipped = listed.skipped.clone();
        let mut names = Vec::new();
        for p in listed.needed() {
            if is_patch_name(&p.name) {
                names.push(p.name.clone());
            } else {
                skipped.push(format!(
                    "a patch with an unusable name: {:?}",
                    quote(&p.name)
                ));
            }
        }
        let mut details = Vec::new();
        for chunk in names.chunks(PATCHES_PER_INFO) {
            let o = self
                .query(
                    exec,
                    patch_info_argv(&self.opts, chunk),
                    work::QUERY,
                    "zypper info -t patch",
                    &[EXIT_NOT_FOUND],
                )
                .await?;
            let info = parse_patch_info(&o.stdout)?;
            skipped.extend(info.skipped);
            details.extend(info.patches);
        }
        Ok((listed, details, skipped))
    }
}

#[async_trait]
impl Backend for ZypperBackend {
    fn family(&self) -> Family {
        Family::Zypper
    }

    async fn inventory(&self, exec: &dyn Executor) -> Result<Vec<InstalledPackage>, PkgError> {
        rpm::inventory(exec, self.opts.root_dir())
            .await
            .map_err(PkgError::from)
    }

    async fn installed(
        &self,
        exec: &dyn Executor,
        name: &PackageName,
    ) -> Result<Vec<InstalledPackage>, PkgError> {
        rpm::installed(exec, self.opts.root_dir(), name)
            .await
            .map_err(PkgError::from)
    }

    async fn refresh(&self, exec: &dyn Executor) -> Result<(), PkgError> {
        self.query(
            exec,
            refresh_argv(&self.opts),
            work::REFRESH,
            "zypper refresh",
            &[],
        )
        .await
        .map(drop)
    }

    async fn updates(&self, exec: &dyn Executor) -> Result<Updates, PkgError> {
        let o = self
            .query(
                exec,
                list_updates_argv(&self.opts),
                work::QUERY,
                "zypper list-updates",
                &[],
            )
            .await?;
        let mut listed = parse_list_updates(&o.stdout)?;
        let mut skipped = std::mem::take(&mut listed.skipped);
        skipped.extend(
            listed
                .messages
                .warnings
                .iter()
                .map(|w| format!("zypper: {}", quote(w))),
        );
        let (patches, details, more) = self.patches(exec).await?;
        skipped.extend(more);
        if listed.updates.iter().any(|u| u.edition_old.is_none()) {
            // zypper before 1.14 does not say what is installed: ask rpm.
            let installed = self.inventory(exec).await?;
            for u in listed
                .updates
                .iter_mut()
                .filter(|u| u.edition_old.is_none())
            {
                u.edition_old = installed
                    .iter()
                    .find(|p| p.name == u.name && (p.arch == u.arch || u.arch.is_empty()))
                    .map(|p| p.version.clone());
            }
        }
        let updates = join(&listed.updates, &patches.patches, &details);
        // What a full update would remove; a full update that zypper cannot plan (a
        // dependency problem) or may not run (not root) leaves the list unknown, which
        // is not a reason to hide the updates.
        let removals = match self
            .query(
                exec,
                full_update_simulate_argv(&self.opts),
                work::QUERY,
                "zypper update --dry-run",
                &[],
            )
            .await
            .and_then(|o| parse_plan(&o.stdout))
        {
            Ok(plan) => plan.removals(),
            Err(e) => {
                skipped.push(format!("removals of a full update unknown: {e}"));
                Vec::new()
            }
        };
        Ok(Updates {
            updates,
            removals,
            skipped,
        })
    }

    async fn candidate(
        &self,
        exec: &dyn Executor,
        name: &PackageName,
    ) -> Result<Candidate, PkgError> {
        let o = self
            .query(
                exec,
                package_info_argv(&self.opts, name),
                work::QUERY,
                "zypper info",
                &[EXIT_NOT_FOUND],
            )
            .await?;
        let Some(info) = parse_package_info(&o.stdout)? else {
            return Ok(Candidate::default());
        };
        let mut c = Candidate {
            version: Some(info.version.clone()),
            origins: info.repository.iter().cloned().collect(),
            security: false,
        };
        if info.out_of_date() {
            let (patches, details, _) = self.patches(exec).await?;
            let update = PackageUpdate {
                name: info.name.clone(),
                arch: info.arch.clone().unwrap_or_default(),
                edition: info.version.clone(),
                edition_old: None,
                repository: info.repository.clone(),
            };
            c.security = join(&[update], &patches.patches, &details)
                .first()
                .is_some_and(|u| u.security);
        }
        Ok(c)
    }

    async fn simulate(
        &self,
        exec: &dyn Executor,
        targets: &[PackageTarget],
    ) -> Result<Transaction, PkgError> {
        let what = "zypper cannot plan the install:";
        let o = exec
            .run(request(
                &self.opts,
                &simulate_argv(&self.opts, targets),
                work::QUERY,
            ))
            .await
            .map_err(|source| PkgError::Run {
                what: what.to_owned(),
                source,
            })?;
        if is_locked(o.code, &o.stdout, &o.stderr) {
            return Err(PkgError::Locked(locked_message(
                &o,
                self.opts.lock_timeout_secs,
            )));
        }
        if o.code != Some(0) {
            return Err(failure(what, &o));
        }
        super::whole_plan(&o, "zypper")?;
        let plan =
            parse_plan(&o.stdout).map_err(|e| PkgError::Unparsable(format!("{what} {e}")))?;
        if !plan.messages.errors.is_empty() {
            return Err(PkgError::Refused(format!(
                "{what} {}",
                plan.messages.errors.join("; ")
            )));
        }
        let tx = plan.transaction();
        // Every approved target must be in the plan, or installed at exactly that
        // version already; anything else is refused with what zypper said about it.
        let planned = |t: &PackageTarget| {
            tx.changes.iter().any(|c| {
                c.name == t.name.as_str()
                    && c.to.as_deref().is_some_and(|to| {
                        to == t.version.as_str()
                            || Family::Zypper.compare(to, t.version.as_str())
                                == Some(std::cmp::Ordering::Equal)
                    })
            })
        };
        let missing: Vec<&PackageTarget> = targets.iter().filter(|t| !planned(t)).collect();
        if !missing.is_empty() {
            let installed = self.inventory(exec).await?;
            let mut why = Vec::new();
            for t in missing {
                let current = installed.iter().find(|p| p.name == t.name.as_str());
                if current.is_some_and(|p| {
                    p.version == t.version.as_str()
                        || Family::Zypper.compare(&p.version, t.version.as_str())
                            == Some(std::cmp::Ordering::Equal)
                }) {
                    continue;
                }
                let said: Vec<String> = plan
                    .messages
                    .info
                    .iter()
                    .chain(&plan.messages.warnings)
                    .filter(|m| m.contains(t.name.as_str()))
                    .map(|m| quote(m))
                    .collect();
                why.push(format!(
                    "zypper would not update {} to {}: {}",
                    t.name,
                    t.version,
                    if said.is_empty() {
                        match current {
                            None => "it is not installed".to_owned(),
                            Some(p) => format!("no such update of the installed {}", p.version),
                        }
                    } else {
                        said.join(" ")
                    }
                ));
            }
            if !why.is_empty() {
                return Err(PkgError::Refused(why.join("; ")));
            }
        }
        Ok(tx)
    }

    async fn install(&self, exec: &dyn Executor, targets: &[PackageTarget]) -> InstallRun {
        match exec.run(install_request(&self.opts, targets)).await {
            Ok(o) => {
                let locked = is_locked(o.code, &o.stdout, &o.stderr);
                let mut output = format!("{}\n{}", o.stdout.trim_end(), o.stderr.trim_end());
                let mut code = o.code;
                if matches!(code, Some(EXIT_REBOOT_NEEDED | EXIT_RESTART_NEEDED)) {
                    output.push_str(&format!(
                        "\n(zypper exit {}: {}; the update itself succeeded)",
                        code.unwrap_or_default(),
                        exit_meaning(code)
                    ));
                    code = Some(0);
                }
                if locked {
                    output.push_str(&format!(
                        "\n{}",
                        locked_message(&o, self.opts.lock_timeout_secs)
                    ));
                }
                InstallRun {
                    code,
                    locked,
                    output: crate::text::tail(&output, 2000).to_owned(),
                }
            }
            Err(e) => InstallRun {
                code: None,
                output: e.to_string(),
                locked: false,
            },
        }
    }

    async fn reboot_reasons(&self, exec: &dyn Executor) -> Vec<String> {
        let flag = || {
            if self.opts.root_dir().join("run/reboot-needed").exists() {
                vec!["/run/reboot-needed".to_owned()]
            } else {
                Vec::new()
            }
        };
        match exec
            .run(request(
                &self.opts,
                &needs_rebooting_argv(&self.opts),
                work::QUERY,
            ))
            .await
        {
            Ok(o) if o.code == Some(EXIT_REBOOT_NEEDED) => {
                vec![
                    "zypper needs-rebooting: core libraries or services have been updated"
                        .to_owned(),
                ]
            }
            Ok(o) if o.code == Some(0) => Vec::new(),
            Ok(o) => {
                tracing::warn!(code = ?o.code, stderr = %crate::text::tail(&o.stderr, 300), "zypper needs-rebooting did not answer; reading /run/reboot-needed");
                flag()
            }
            Err(e) => {
                tracing::warn!(error = %e, "zypper needs-rebooting did not run; reading /run/reboot-needed");
                flag()
            }
        }
    }
}
