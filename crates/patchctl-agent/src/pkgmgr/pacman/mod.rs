//! The pacman backend (Arch Linux).
//!
//! # The inventory
//!
//! Read directly from the local database, `/var/lib/pacman/local/*/desc`
//! ([`crate::inventory::pacman`]); no process runs.
//!
//! # A separate sync database: the system's is never refreshed
//!
//! Arch supports only full upgrades: refreshing the system's sync database
//! (`/var/lib/pacman/sync`) without upgrading everything (`pacman -Sy` alone) leaves
//! the host in a *partial upgrade* state, where the next `pacman -S foo` of an
//! administrator installs a package built against libraries the system does not
//! have. So the agent never refreshes it. Like Arch's `checkupdates`, it keeps its
//! own pacman database directory, [`PacmanOptions::dbpath`]
//! (`/var/lib/patchctl/pacman` in production):
//!
//! - `local` is a symbolic link to the system's local database
//!   (`/var/lib/pacman/local`), so pacman sees what is really installed;
//! - `sync/` holds the agent's own copy of the repositories' databases, refreshed by
//!   [`refresh_argv`] (`pacman -Sy --dbpath D --logfile /dev/null`: the system's log
//!   would otherwise record a `-Sy` that the system never had).
//!
//! Every pacman run of the agent passes `--dbpath D`; the system's configuration
//! (`/etc/pacman.conf`: repositories, mirrors, `SigLevel`, `CacheDir`, `LogFile`,
//! `IgnorePkg`, hooks) is used as it is.
//!
//! # Updates, origins and the security flag
//!
//! [`updates_argv`] (`pacman -Qu`) lists `name installed -> available`; pacman exits
//! with 1 when there is nothing to list. Packages in `IgnorePkg`/`IgnoreGroup`
//! (marked `[ignored]`) are the administrator's decision and are left out. The origin
//! of each update is the repository that offers that exact version, from
//! [`info_argv`] (`pacman -Si`, one block per repository that has the package, in
//! the configuration's order). The installed packages that a full upgrade would
//! remove (conflicts and replaces of the new versions against the local database, as
//! below) are reported as `removals`.
//!
//! Arch repositories carry no security metadata (no advisory type, no security
//! repository): `security` is always false and `advisories` empty. Whether an update
//! fixes a vulnerability is the platform's CVE correlation's call, never guessed here
//! from version strings.
//!
//! # Installing exactly the approved versions
//!
//! pacman installs the version its sync database offers; it cannot be asked for
//! another one. So [`Backend::simulate`] asks pacman for its plan
//! ([`print_argv`]: `pacman -S --print --print-format '%n %v' --needed`, which takes
//! no lock and changes nothing) and the shared gate ([`super::refusals`]) refuses
//! when a planned version is not the approved one ("would install pc-sec 1.1-1, which
//! was not approved"), when a dependency not approved would be installed, or when a
//! version would go down ([`Family::compare`]). A target the repositories do not have
//! makes pacman fail the plan ("target not found"), which is a refusal too.
//!
//! `--print` does not show removals (pacman skips its conflict check when it only
//! prints a plan), so the backend finds them itself ([`removals`]): for every planned
//! package, its `Conflicts With` and `Replaces` (from `pacman -Si`) against the local
//! database (names and, for conflicts, what installed packages provide, with version
//! constraints), and the installed packages' own `%CONFLICTS%` against the planned
//! packages. Each hit is a removal and the gate refuses ("would remove pc-victim").
//! `pacman -S` itself acts on conflicts only; a replacement would be acted on by the
//! next full upgrade, so approving the replacing package means approving the removal:
//! refused as well. Should a conflict still slip through, `--noconfirm` answers
//! pacman's "Remove pc-victim? [y/N]" with its default, no, and pacman aborts
//! without changing anything.
//!
//! # Installing from the separate database, and pacman's lock
//!
//! The install is [`install_argv`]: `pacman -S --needed --noconfirm --dbpath D --
//! NAMES`. It must use `D`: with the system's database path, pacman would install
//! what the system's (older) sync database offers, and making that one offer the
//! approved versions would be exactly the partial `-Sy` this design avoids. Through
//! `D/local` pacman records the install in the system's local database, runs the
//! system's hooks, and logs to the system's log.
//!
//! But pacman's lock is `<dbpath>/db.lck`: a run with `--dbpath D` locks `D/db.lck`
//! only, and would not stop (or be stopped by) an administrator's `pacman -Syu` on the
//! system's database, both writing `/var/lib/pacman/local` at once. The backend closes
//! that hole itself: before the install it creates `/var/lib/pacman/db.lck`
//! exclusively (`O_CREAT|O_EXCL`, as pacman does), waiting up to
//! [`PacmanOptions::lock_timeout`] while another process holds it; it removes it when
//! pacman has finished. Any other pacman on the system then fails with "unable to lock
//! database" for the duration, and the agent never starts while one runs. When the
//! wait runs out, nothing runs and the result says "locked by another process". When
//! pacman is killed mid-transaction (the executor's timeout), or the agent itself
//! dies during an install, the lock file stays behind, exactly as after a crash of
//! pacman: the system must be checked first, and the `package_lock` health check
//! reports it.
//!
//! The agent handles one command at a time, so nothing refreshes `D` between the
//! accepted simulation and the install; after the install the report compares what
//! is installed with the approved versions anyway.
//!
//! # Reboot
//!
//! Arch keeps no reboot flag. The running kernel's release
//! (`/proc/sys/kernel/osrelease`, read directly) has no `/usr/lib/modules/<release>`
//! after its package was upgraded: then a reboot is required. Where `/usr/lib/modules`
//! is absent or empty (a container running the host's kernel) nothing can be told
//! and the answer is no.
//!
//! Layout: this file holds the options, the argument vectors and the [`Backend`]
//! implementation (what runs, and in which order); `parse.rs` holds the parsers of
//! the output (pure, re-exported here); `tests.rs` the unit tests.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use patchctl_proto::agent::InstalledPackage;
use patchctl_proto::command::{AvailableUpdate, PackageTarget};
use patchctl_proto::validate::PackageName;

use super::{
    Backend, Candidate, Family, InstallRun, LOCK_TIMEOUT_SECS, PkgError, Transaction, Updates,
};
use crate::exec::{ExecError, ExecOutput, ExecRequest, Executor};
use crate::inventory::pacman::{self as local, LocalPackage, ParsedLocal};

mod parse;
#[cfg(test)]
mod tests;

pub use parse::*;

/// pacman's path.
pub const PACMAN: &str = "/usr/bin/pacman";

/// The agent's own pacman database directory in production.
pub const DEFAULT_DBPATH: &str = "/var/lib/patchctl/pacman";

/// The system's pacman database directory, relative to the root.
pub const SYSTEM_DBPATH: &str = "var/lib/pacman";

/// The `--print-format` of the install plan: one `name version` line per package.
pub const PRINT_FORMAT: &str = "%n %v";

/// Where the running kernel's release is read.
pub const OSRELEASE: &str = "/proc/sys/kernel/osrelease";

/// Kernel modules directories, relative to the root.
pub const MODULES_DIR: &str = "usr/lib/modules";

/// Settings of the pacman backend. The default is production: the system at `/`,
/// the agent's database in [`DEFAULT_DBPATH`], pacman's own configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacmanOptions {
    /// The system's root: its local database, lock and kernel modules are under it.
    pub root: PathBuf,
    /// The agent's own database directory (`local` → the system's, `sync/` its own).
    pub dbpath: PathBuf,
    /// `--config FILE` for every run; `None` uses pacman's default
    /// (`/etc/pacman.conf`). Tests point it at a private configuration.
    pub config: Option<PathBuf>,
    /// How long an install waits for the system's pacman lock.
    pub lock_timeout: Duration,
}

impl Default for PacmanOptions {
    fn default() -> Self {
        PacmanOptions {
            root: PathBuf::from("/"),
            dbpath: PathBuf::from(DEFAULT_DBPATH),
            config: None,
            lock_timeout: Duration::from_secs(LOCK_TIMEOUT_SECS),
        }
    }
}

impl PacmanOptions {
    /// The system's database directory (`/var/lib/pacman`).
    pub fn system_dbpath(&self) -> PathBuf {
        self.root.join(SYSTEM_DBPATH)
    }

    /// The system's local database, which the inventory reads and `D/local` points to.
    pub fn local_db(&self) -> PathBuf {
        self.root.join(local::LOCAL_DB)
    }

    /// The system's pacman lock file, held by the agent while it installs.
    pub fn system_lock(&self) -> PathBuf {
        self.system_dbpath().join("db.lck")
    }

    /// `--color never [--config FILE] --dbpath D`, common to every run.
    fn push(&self, argv: &mut Vec<String>) {
        argv.push("--color".into());
        argv.push("never".into());
        if let Some(c) = &self.config {
            argv.push("--config".into());
            argv.push(c.display().to_string());
        }
        argv.push("--dbpath".into());
        argv.push(self.dbpath.display().to_string());
    }
}

fn argv(op: &[&str], o: &PacmanOptions) -> Vec<String> {
    let mut argv = vec![PACMAN.to_owned()];
    argv.extend(op.iter().map(|s| (*s).to_owned()));
    o.push(&mut argv);
    argv
}

/// `pacman -Sy --dbpath D --logfile /dev/null`: refreshes the agent's own sync
/// database (never the system's).
pub fn refresh_argv(o: &PacmanOptions) -> Vec<String> {
    let mut a = argv(&["-Sy", "--noprogressbar"], o);
    a.extend(["--logfile".into(), "/dev/null".into()]);
    a
}

/// `pacman -Qu --dbpath D`: installed packages with a newer version in the agent's
/// sync database.
pub fn updates_argv(o: &PacmanOptions) -> Vec<String> {
    argv(&["-Qu"], o)
}

/// `pacman -Si --dbpath D -- NAMES`: repository, version, conflicts and replaces of
/// each name, one block per repository that has it.
pub fn info_argv<S: AsRef<str>>(o: &PacmanOptions, names: &[S]) -> Vec<String> {
    let mut a = argv(&["-Si"], o);
    a.push("--".into());
    a.extend(names.iter().map(|n| n.as_ref().to_owned()));
    a
}

fn names(argv: &mut Vec<String>, targets: &[PackageTarget]) {
    argv.push("--".into());
    // Validated names (no leading '-', pacman's grammar), after `--` anyway.
    argv.extend(targets.iter().map(|t| t.name.to_string()));
}

/// `pacman -S --print --print-format '%n %v' --needed --dbpath D -- NAMES`: what
/// installing the targets would install, without a lock and without changing anything.
pub fn print_argv(o: &PacmanOptions, targets: &[PackageTarget]) -> Vec<String> {
    let mut a = argv(
        &["-S", "--print", "--print-format", PRINT_FORMAT, "--needed"],
        o,
    );
    names(&mut a, targets);
    a
}

/// `pacman -S --needed --noconfirm --dbpath D -- NAMES`: the install (run while the
/// agent holds the system's lock).
pub fn install_argv(o: &PacmanOptions, targets: &[PackageTarget]) -> Vec<String> {
    let mut a = argv(&["-S", "--needed", "--noconfirm", "--noprogressbar"], o);
    names(&mut a, targets);
    a
}

/// The request [`PacmanBackend::refresh`] runs.
pub fn refresh_request(o: &PacmanOptions) -> ExecRequest {
    ExecRequest::from_argv(&refresh_argv(o)).with_timeout(Duration::from_secs(600))
}

/// The request [`PacmanBackend::install`] runs.
pub fn install_request(o: &PacmanOptions, targets: &[PackageTarget]) -> ExecRequest {
    ExecRequest::from_argv(&install_argv(o, targets)).with_timeout(Duration::from_secs(1800))
}

/// True when pacman's output says the database is locked.
pub fn is_locked(stderr: &str) -> bool {
    stderr.contains("unable to lock database") || stderr.contains("could not lock database")
}

/// Whether a reboot is required: `modules` (`/usr/lib/modules`) has kernels but none
/// for the running `release` ([`super::kernel_modules_gone`]). `false` when nothing can
/// be told.
pub fn reboot_needed(modules: &Path, release: &str) -> bool {
    super::kernel_modules_gone(modules, release)
}

/// The system's pacman lock, created by the agent (as pacman does: the file exists
/// while its holder runs) and removed when dropped.
#[derive(Debug)]
pub struct SystemLock {
    path: PathBuf,
}

/// Why the system's lock could not be taken.
#[derive(Debug)]
pub enum LockError {
    /// Another process held it for the whole wait.
    Busy,
    /// The lock file could not be created.
    Io(io::Error),
}

impl SystemLock {
    /// Creates `path` exclusively; `Ok(None)` when it exists (someone holds the lock).
    pub fn try_take(path: &Path) -> io::Result<Option<SystemLock>> {
        use std::os::unix::fs::OpenOptionsExt;
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            Ok(_) => Ok(Some(SystemLock {
                path: path.to_owned(),
            })),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Takes the lock, waiting up to `timeout` while another process holds it.
    pub async fn take(path: &Path, timeout: Duration) -> Result<SystemLock, LockError> {
        let start = Instant::now();
        loop {
            match SystemLock::try_take(path) {
                Ok(Some(lock)) => return Ok(lock),
                Ok(None) if start.elapsed() >= timeout => return Err(LockError::Busy),
                Ok(None) => {
                    tokio::time::sleep(Duration::from_millis(250).min(timeout)).await;
                }
                Err(e) => return Err(LockError::Io(e)),
            }
        }
    }
}

impl SystemLock {
    /// Leaves the lock file in place (pacman was interrupted mid-transaction: the
    /// system must be checked before pacman runs again, which the lock file enforces
    /// and the `package_lock` health check reports).
    pub fn keep(self) {
        tracing::error!(target: "audit", path = %self.path.display(), "pacman was interrupted during an install; its lock stays until an administrator checks the system and removes it");
        std::mem::forget(self);
    }
}

impl Drop for SystemLock {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_file(&self.path) {
            tracing::error!(path = %self.path.display(), error = %e, "cannot remove the pacman lock the agent took; pacman will refuse to run until it is removed");
        }
    }
}

/// Arch Linux: the local database read directly, pacman on the agent's own sync
/// database for everything else.
#[derive(Debug, Clone)]
pub struct PacmanBackend {
    opts: PacmanOptions,
}

impl PacmanBackend {
    /// A backend with these settings.
    pub fn new(opts: PacmanOptions) -> Self {
        PacmanBackend { opts }
    }

    /// Its settings.
    pub fn options(&self) -> &PacmanOptions {
        &self.opts
    }

    /// Creates the agent's database directory: `sync/`, and `local` as a link to the
    /// system's local database (a wrong link is replaced; anything else there is an
    /// error, never deleted).
    pub fn prepare_dbpath(&self) -> Result<(), PkgError> {
        let o = &self.opts;
        let target = o.local_db();
        if !target.is_dir() {
            return Err(PkgError::Setup(format!(
                "no pacman local database at {}: is this an Arch system?",
                target.display()
            )));
        }
        let sync = o.dbpath.join("sync");
        std::fs::create_dir_all(&sync).map_err(|source| PkgError::Io {
            action: "create",
            path: sync.clone(),
            source,
        })?;
        let link = o.dbpath.join("local");
        match std::fs::symlink_metadata(&link) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(PkgError::Io {
                    action: "inspect",
                    path: link,
                    source,
                });
            }
            Ok(m) if m.file_type().is_symlink() => {
                if std::fs::read_link(&link).ok().as_deref() == Some(target.as_path()) {
                    return Ok(());
                }
                tracing::warn!(link = %link.display(), "replacing a link that does not point to the system's local database");
                std::fs::remove_file(&link).map_err(|source| PkgError::Io {
                    action: "replace",
                    path: link.clone(),
                    source,
                })?;
            }
            Ok(_) => {
                return Err(PkgError::Setup(format!(
                    "{} exists and is not a link to {}; move it away (the agent keeps only a link there)",
                    link.display(),
                    target.display()
                )));
            }
        }
        std::os::unix::fs::symlink(&target, &link).map_err(|e| {
            PkgError::Setup(format!(
                "cannot link {} to {}: {e}",
                link.display(),
                target.display()
            ))
        })
    }

    /// Checks that the agent's database is set up and synced before pacman reads it.
    fn ready(&self) -> Result<(), PkgError> {
        let o = &self.opts;
        let link = o.dbpath.join("local");
        let refresh_hint = "check_updates as root sets it up and refreshes it";
        if std::fs::read_link(&link).ok().as_deref() != Some(o.local_db().as_path()) {
            return Err(PkgError::Setup(format!(
                "{} is not a link to the system's local database {}: {refresh_hint}",
                link.display(),
                o.local_db().display()
            )));
        }
        let synced = std::fs::read_dir(o.dbpath.join("sync"))
            .map(|d| {
                d.flatten()
                    .any(|e| e.file_name().to_string_lossy().ends_with(".db"))
            })
            .unwrap_or(false);
        if !synced {
            return Err(PkgError::Setup(format!(
                "the agent's pacman sync database {} is empty: {refresh_hint} (the system's own sync database is never used)",
                o.dbpath.join("sync").display()
            )));
        }
        Ok(())
    }

    async fn local(&self) -> Result<ParsedLocal, PkgError> {
        let parsed = super::read_database(self.opts.local_db(), local::read_local).await?;
        for reason in &parsed.skipped {
            tracing::warn!(%reason, "skipped a malformed pacman local database entry");
        }
        Ok(parsed)
    }

    /// `pacman -Si` of `names`; a name no repository has is simply absent.
    async fn info<S: AsRef<str>>(
        &self,
        exec: &dyn Executor,
        names: &[S],
    ) -> Result<ParsedInfo, PkgError> {
        let o = run(exec, ExecRequest::from_argv(&info_argv(&self.opts, names))).await?;
        let parsed = parse_info(&o.stdout);
        // pacman exits with 1 when one of the names is not found, printing the others.
        let only_not_found = o
            .stderr
            .lines()
            .filter(|l| l.starts_with("error:"))
            .all(|l| l.contains("was not found"));
        let acceptable = o.success() || (o.code == Some(1) && only_not_found);
        if !acceptable {
            return Err(failed("pacman -Si", &o));
        }
        Ok(parsed)
    }
}

async fn run(exec: &dyn Executor, req: ExecRequest) -> Result<ExecOutput, PkgError> {
    Ok(exec.run(req).await?)
}

fn failed(what: &str, o: &ExecOutput) -> PkgError {
    let why = crate::text::tail(&o.stderr, 500);
    if is_locked(&o.stderr) {
        PkgError::Locked(format!(
            "{what}: the agent's pacman database is locked by another process (another agent run?): {why}"
        ))
    } else {
        PkgError::exited(what, o.code, why)
    }
}

#[async_trait]
impl Backend for PacmanBackend {
    fn family(&self) -> Family {
        Family::Pacman
    }

    async fn inventory(&self, _exec: &dyn Executor) -> Result<Vec<InstalledPackage>, PkgError> {
        Ok(self
            .local()
            .await?
            .packages
            .iter()
            .map(LocalPackage::to_installed)
            .collect())
    }

    async fn refresh(&self, exec: &dyn Executor) -> Result<(), PkgError> {
        self.prepare_dbpath()?;
        let o = run(exec, refresh_request(&self.opts)).await?;
        if !o.success() {
            return Err(failed(
                &format!(
                    "pacman -Sy of the agent's own sync database {}",
                    self.opts.dbpath.display()
                ),
                &o,
            ));
        }
        Ok(())
    }

    async fn updates(&self, exec: &dyn Executor) -> Result<Updates, PkgError> {
        self.ready()?;
        let o = run(exec, ExecRequest::from_argv(&updates_argv(&self.opts))).await?;
        // Exit 1 with nothing printed and no error: nothing to upgrade.
        let nothing = o.code == Some(1)
            && o.stdout.trim().is_empty()
            && !o.stderr.lines().any(|l| l.starts_with("error:"));
        if !o.success() && !nothing {
            return Err(failed("pacman -Qu", &o));
        }
        let parsed = parse_upgrades(&o.stdout);
        let mut out = Updates {
            skipped: parsed.skipped,
            ..Updates::default()
        };
        let wanted: Vec<&Upgrade> = parsed
            .upgrades
            .iter()
            .filter(|u| {
                if u.ignored {
                    tracing::info!(package = %u.name, "update left out: the package is in pacman's IgnorePkg/IgnoreGroup");
                }
                !u.ignored
            })
            .collect();
        if wanted.is_empty() {
            return Ok(out);
        }
        let names: Vec<&str> = wanted.iter().map(|u| u.name.as_str()).collect();
        let info = self.info(exec, &names).await?;
        out.skipped.extend(info.skipped.iter().cloned());
        let installed = self.local().await?.packages;
        let mut incoming = Vec::new();
        for u in wanted {
            let blocks: Vec<&SyncPackage> = info
                .packages
                .iter()
                .filter(|s| s.name == u.name && s.version == u.available)
                .collect();
            let mut origins: Vec<String> = Vec::new();
            for b in &blocks {
                if !origins.contains(&b.repo) {
                    origins.push(b.repo.clone());
                }
            }
            if blocks.is_empty() {
                out.skipped.push(format!(
                    "no repository information for {} {}",
                    u.name, u.available
                ));
            }
            let arch = blocks
                .first()
                .map(|b| b.arch.clone())
                .or_else(|| {
                    installed
                        .iter()
                        .find(|l| l.name == u.name)
                        .map(|l| l.arch.clone())
                })
                .unwrap_or_default();
            incoming.extend(blocks.into_iter().cloned());
            out.updates.push(AvailableUpdate {
                name: u.name.clone(),
                arch,
                current_version: Some(u.installed.clone()),
                candidate_version: u.available.clone(),
                origins,
                // Arch repositories carry no security metadata (see the module doc).
                security: false,
                advisories: Vec::new(),
            });
        }
        out.removals = removals(&installed, &incoming)
            .into_iter()
            .map(|r| r.name)
            .collect();
        Ok(out)
    }

    async fn candidate(
        &self,
        exec: &dyn Executor,
        name: &PackageName,
    ) -> Result<Candidate, PkgError> {
        self.ready()?;
        let info = self.info(exec, &[name.as_str()]).await?;
        let mut blocks = info.packages.iter().filter(|p| p.name == name.as_str());
        let Some(first) = blocks.next() else {
            return Ok(Candidate::default());
        };
        let mut origins = vec![first.repo.clone()];
        for b in blocks {
            if b.version == first.version && !origins.contains(&b.repo) {
                origins.push(b.repo.clone());
            }
        }
        Ok(Candidate {
            version: Some(first.version.clone()),
            origins,
            security: false,
        })
    }

    async fn simulate(
        &self,
        exec: &dyn Executor,
        targets: &[PackageTarget],
    ) -> Result<Transaction, PkgError> {
        self.ready()?;
        // `pacman -S` installs what is missing; install_updates only updates.
        let installed = self.local().await?.packages;
        let missing: Vec<&str> = targets
            .iter()
            .map(|t| t.name.as_str())
            .filter(|n| !installed.iter().any(|p| p.name == *n))
            .collect();
        if !missing.is_empty() {
            return Err(PkgError::Refused(format!(
                "not installed, and install_updates only updates installed packages: {}",
                missing.join(", ")
            )));
        }
        let o = run(
            exec,
            ExecRequest::from_argv(&print_argv(&self.opts, targets)),
        )
        .await?;
        if !o.success() {
            return Err(PkgError::Refused(format!(
                "pacman cannot plan the install: {}",
                crate::text::tail(&o.stderr, 500)
            )));
        }
        super::whole_plan(&o, "pacman")?;
        let plan = parse_plan(&o.stdout);
        let info = if plan.packages.is_empty() {
            ParsedInfo::default()
        } else {
            let mut names: Vec<&str> = plan.packages.iter().map(|p| p.name.as_str()).collect();
            names.dedup();
            self.info(exec, &names).await?
        };
        Ok(plan_transaction(&plan, &info, &installed))
    }

    async fn install(&self, exec: &dyn Executor, targets: &[PackageTarget]) -> InstallRun {
        let not_run = |output: String, locked: bool| InstallRun {
            code: None,
            output,
            locked,
        };
        if let Err(e) = self.ready() {
            return not_run(format!("nothing installed: {e}"), false);
        }
        let path = self.opts.system_lock();
        let waited = self.opts.lock_timeout;
        let lock = match SystemLock::take(&path, waited).await {
            Ok(l) => l,
            Err(LockError::Busy) => {
                tracing::warn!(target: "audit", lock = %path.display(), "pacman is locked by another process; nothing installed");
                return not_run(
                    format!(
                        "pacman's database is locked by another process: {} existed for the whole wait ({} s); nothing installed. If no pacman runs, a crashed run left it behind: remove it and try again",
                        path.display(),
                        waited.as_secs()
                    ),
                    true,
                );
            }
            Err(LockError::Io(e)) => {
                return not_run(
                    format!(
                        "cannot take pacman's lock {}: {e}; nothing installed",
                        path.display()
                    ),
                    false,
                );
            }
        };
        let result = exec.run(install_request(&self.opts, targets)).await;
        let interrupted = matches!(&result, Err(ExecError::Timeout { .. }))
            || matches!(&result, Ok(o) if o.code.is_none());
        if interrupted {
            // pacman was killed mid-transaction: its own lock stays behind, and so does
            // the system's, as if pacman had been run directly.
            lock.keep();
        } else {
            drop(lock);
        }
        InstallRun::finished(result, is_locked)
    }

    async fn reboot_reasons(&self, _exec: &dyn Executor) -> Vec<String> {
        match std::fs::read_to_string(OSRELEASE) {
            Ok(release) if reboot_needed(&self.opts.root.join(MODULES_DIR), &release) => {
                vec![format!(
                    "the running kernel's modules (/{MODULES_DIR}/{}) are gone: a newer kernel was installed",
                    release.trim()
                )]
            }
            Ok(_) => Vec::new(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the running kernel's release; reboot need unknown");
                Vec::new()
            }
        }
    }
}
