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

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use patchctl_proto::agent::InstalledPackage;
use patchctl_proto::command::{AvailableUpdate, PackageTarget};
use patchctl_proto::validate::PackageName;

use super::{
    Backend, Candidate, Change, Family, InstallRun, LOCK_TIMEOUT_SECS, Transaction, Updates,
};
use crate::exec::{ExecError, ExecOutput, ExecRequest, Executor};
use crate::inventory::pacman::{self as local, LocalPackage, ParsedLocal};

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

/// The longest excerpt of a malformed line quoted in a skip reason.
const MAX_QUOTE: usize = 200;

fn unreadable(line: &str) -> String {
    format!(
        "unreadable line: {:?}",
        crate::text::truncate(line, MAX_QUOTE)
    )
}

/// One line of `pacman -Qu`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upgrade {
    /// Package name.
    pub name: String,
    /// Installed version.
    pub installed: String,
    /// Version in the sync database.
    pub available: String,
    /// True when the package is in `IgnorePkg`/`IgnoreGroup` (`[ignored]`).
    pub ignored: bool,
}

/// What `pacman -Qu` said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedUpgrades {
    /// The upgrades, in output order.
    pub upgrades: Vec<Upgrade>,
    /// Lines that could not be read, with why.
    pub skipped: Vec<String>,
}

/// Parses `pacman -Qu` output: `name installed -> available [ignored]`. Never panics.
pub fn parse_upgrades(output: &str) -> ParsedUpgrades {
    let mut out = ParsedUpgrades::default();
    for line in output.lines() {
        if line.trim().is_empty() {
            continue;
        }
        let w: Vec<&str> = line.split_whitespace().collect();
        let ignored = match w.get(4) {
            None => false,
            Some(&"[ignored]") if w.len() == 5 => true,
            Some(_) => {
                out.skipped.push(unreadable(line));
                continue;
            }
        };
        match w.as_slice() {
            [name, old, "->", new, ..] => out.upgrades.push(Upgrade {
                name: (*name).to_owned(),
                installed: (*old).to_owned(),
                available: (*new).to_owned(),
                ignored,
            }),
            _ => out.skipped.push(unreadable(line)),
        }
    }
    out
}

/// One package block of `pacman -Si`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncPackage {
    /// `Repository`.
    pub repo: String,
    /// `Name`.
    pub name: String,
    /// `Version`.
    pub version: String,
    /// `Architecture`.
    pub arch: String,
    /// `Provides`: `name` or `name=version`.
    pub provides: Vec<String>,
    /// `Depends On`.
    pub depends: Vec<String>,
    /// `Conflicts With`: dependency strings.
    pub conflicts: Vec<String>,
    /// `Replaces`: dependency strings.
    pub replaces: Vec<String>,
}

/// What `pacman -Si` said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedInfo {
    /// The package blocks, in output order (repositories in configuration order).
    pub packages: Vec<SyncPackage>,
    /// Blocks that could not be read, with why.
    pub skipped: Vec<String>,
}

/// Parses `pacman -Si` output: blocks of `Key : value` lines separated by empty
/// lines; a line starting with white space continues the previous value (pacman wraps
/// long lists on a terminal). List values are separated by white space; `None` is
/// an empty list. A block without `Repository`, `Name` or `Version`, with a line that
/// is no field, or with a field given twice is skipped. Never panics.
pub fn parse_info(output: &str) -> ParsedInfo {
    let mut out = ParsedInfo::default();
    let mut block: Vec<(String, String)> = Vec::new();
    let mut error: Option<String> = None;
    let mut first_line = 0;
    let lines: Vec<&str> = output.lines().collect();
    for (index, line) in lines.iter().chain(std::iter::once(&"")).enumerate() {
        if line.trim().is_empty() {
            if !block.is_empty() || error.is_some() {
                finish_block(
                    &mut out,
                    std::mem::take(&mut block),
                    error.take(),
                    first_line,
                );
            }
            continue;
        }
        if block.is_empty() && error.is_none() {
            first_line = index + 1;
        }
        if line.starts_with([' ', '\t']) {
            match block.last_mut() {
                Some((_, v)) => {
                    v.push(' ');
                    v.push_str(line.trim());
                }
                None => {
                    error.get_or_insert_with(|| {
                        format!("continuation without a field: {}", unreadable(line))
                    });
                }
            }
            continue;
        }
        match line.split_once(':') {
            Some((k, v)) if !k.trim().is_empty() => {
                let k = k.trim();
                if block.iter().any(|(key, _)| key == k) {
                    error.get_or_insert_with(|| format!("field {k:?} given twice"));
                }
                block.push((k.to_owned(), v.trim().to_owned()));
            }
            _ => {
                error.get_or_insert_with(|| unreadable(line));
            }
        }
    }
    out
}

fn finish_block(
    out: &mut ParsedInfo,
    block: Vec<(String, String)>,
    error: Option<String>,
    first_line: usize,
) {
    match error.map_or_else(|| build_block(&block), Err) {
        Ok(p) => out.packages.push(p),
        Err(why) => out
            .skipped
            .push(format!("package block at line {first_line}: {why}")),
    }
}

fn build_block(block: &[(String, String)]) -> Result<SyncPackage, String> {
    let field = |k: &str| {
        block
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    let word = |k: &str| -> Result<String, String> {
        match field(k) {
            None => Err(format!("no {k}")),
            Some(v) if v.is_empty() || v.contains(char::is_whitespace) => Err(format!(
                "{k} {:?} is not one word",
                crate::text::truncate(v, 60)
            )),
            Some(v) => Ok(v.to_owned()),
        }
    };
    let list = |k: &str| -> Vec<String> {
        match field(k) {
            None | Some("None") => Vec::new(),
            Some(v) => v.split_whitespace().map(str::to_owned).collect(),
        }
    };
    Ok(SyncPackage {
        repo: word("Repository")?,
        name: word("Name")?,
        version: word("Version")?,
        arch: field("Architecture").unwrap_or("").to_owned(),
        provides: list("Provides"),
        depends: list("Depends On"),
        conflicts: list("Conflicts With"),
        replaces: list("Replaces"),
    })
}

/// One package of the install plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    /// Package name.
    pub name: String,
    /// The version pacman would install.
    pub version: String,
}

/// What `pacman -S --print --print-format '%n %v'` said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedPlan {
    /// Packages pacman would install or upgrade, dependencies first.
    pub packages: Vec<Planned>,
    /// Lines that could not be read, with why (a reason to refuse).
    pub skipped: Vec<String>,
}

/// Parses the output of [`print_argv`]: one `name version` line per package. Never
/// panics.
pub fn parse_plan(output: &str) -> ParsedPlan {
    let mut out = ParsedPlan::default();
    for line in output.lines() {
        let t = line.trim();
        if t.is_empty() || t == "there is nothing to do" {
            continue;
        }
        let w: Vec<&str> = t.split_whitespace().collect();
        match w.as_slice() {
            [name, version] => out.packages.push(Planned {
                name: (*name).to_owned(),
                version: (*version).to_owned(),
            }),
            _ => out.skipped.push(unreadable(line)),
        }
    }
    out
}

/// A version constraint of a dependency string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
}

/// `name[<|<=|=|>=|>version]`, pacman's dependency strings (a `: description`
/// suffix, as optional dependencies have, is ignored).
fn parse_dep(s: &str) -> (&str, Option<(Op, &str)>) {
    let s = s.split(": ").next().unwrap_or(s);
    let Some(i) = s.find(['<', '>', '=']) else {
        return (s, None);
    };
    let (name, rest) = s.split_at(i);
    let (op, version) = if let Some(v) = rest.strip_prefix("<=") {
        (Op::Le, v)
    } else if let Some(v) = rest.strip_prefix(">=") {
        (Op::Ge, v)
    } else if let Some(v) = rest.strip_prefix('<') {
        (Op::Lt, v)
    } else if let Some(v) = rest.strip_prefix('>') {
        (Op::Gt, v)
    } else {
        (Op::Eq, rest.trim_start_matches('='))
    };
    if version.is_empty() {
        (name, None)
    } else {
        (name, Some((op, version)))
    }
}

/// True when `version` satisfies the constraint; a comparison that cannot be made
/// counts as satisfied (a conflict is assumed rather than ruled out).
fn meets(version: &str, op: Op, wanted: &str) -> bool {
    use std::cmp::Ordering::*;
    match Family::Pacman.compare(version, wanted) {
        None => true,
        Some(o) => match op {
            Op::Lt => o == Less,
            Op::Le => o != Greater,
            Op::Eq => o == Equal,
            Op::Ge => o != Less,
            Op::Gt => o == Greater,
        },
    }
}

/// True when the dependency string `dep` names the package `name` `version`, or one of
/// its `provides` (pacman's rule: an unversioned provision satisfies only an
/// unversioned dependency).
pub fn dep_matches(dep: &str, name: &str, version: &str, provides: &[String]) -> bool {
    let (dname, constraint) = parse_dep(dep);
    if dname.is_empty() {
        return false;
    }
    let fits = |v: Option<&str>| match (constraint, v) {
        (None, _) => true,
        (Some((op, want)), Some(v)) => meets(v, op, want),
        (Some(_), None) => false,
    };
    (dname == name && fits(Some(version)))
        || provides.iter().any(|p| {
            let (pname, pv) = parse_dep(p);
            pname == dname && fits(pv.map(|(_, v)| v))
        })
}

/// An installed package that installing the planned packages would remove.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removal {
    /// The installed package.
    pub name: String,
    /// Its installed version.
    pub version: String,
    /// Why, e.g. `pc-new 1.1-1 conflicts with it (pc-victim)`.
    pub because: String,
}

/// The installed packages that installing `incoming` would remove: a package that an
/// incoming one conflicts with (by name or by what it provides) or replaces (by name),
/// or one whose own conflicts name an incoming package. Packages being upgraded (same
/// name) are not removals.
pub fn removals(installed: &[LocalPackage], incoming: &[SyncPackage]) -> Vec<Removal> {
    let mut out: Vec<Removal> = Vec::new();
    for l in installed {
        if incoming.iter().any(|p| p.name == l.name) || out.iter().any(|r| r.name == l.name) {
            continue;
        }
        let why = incoming.iter().find_map(|p| {
            let who = format!("{} {}", p.name, p.version);
            if let Some(c) = p
                .conflicts
                .iter()
                .find(|c| dep_matches(c, &l.name, &l.version, &l.provides))
            {
                return Some(format!("{who} conflicts with it ({c})"));
            }
            if let Some(r) = p
                .replaces
                .iter()
                .find(|r| dep_matches(r, &l.name, &l.version, &[]))
            {
                return Some(format!("{who} replaces it ({r})"));
            }
            l.conflicts
                .iter()
                .find(|c| dep_matches(c, &p.name, &p.version, &p.provides))
                .map(|c| format!("it conflicts with {who} ({c})"))
        });
        if let Some(because) = why {
            out.push(Removal {
                name: l.name.clone(),
                version: l.version.clone(),
                because,
            });
        }
    }
    out
}

/// Builds the transaction the install gate judges: the planned packages (with the
/// installed version each replaces), the removals, and whatever could not be read or
/// looked up.
pub fn plan_transaction(
    plan: &ParsedPlan,
    info: &ParsedInfo,
    installed: &[LocalPackage],
) -> Transaction {
    let mut tx = Transaction {
        skipped: plan.skipped.clone(),
        ..Transaction::default()
    };
    let mut incoming = Vec::new();
    for p in &plan.packages {
        tx.changes.push(Change {
            name: p.name.clone(),
            from: installed
                .iter()
                .find(|l| l.name == p.name)
                .map(|l| l.version.clone()),
            to: Some(p.version.clone()),
        });
        let blocks: Vec<&SyncPackage> = info
            .packages
            .iter()
            .filter(|s| s.name == p.name && s.version == p.version)
            .collect();
        if blocks.is_empty() {
            tx.skipped.push(format!(
                "no repository information for {} {}: cannot tell what it conflicts with",
                p.name, p.version
            ));
        }
        // Every repository offering this exact version: all their conflicts count.
        incoming.extend(blocks.into_iter().cloned());
    }
    tx.skipped.extend(info.skipped.iter().cloned());
    for r in removals(installed, &incoming) {
        tracing::warn!(package = %r.name, because = %r.because, "the install would remove an installed package");
        tx.changes.push(Change {
            name: r.name,
            from: Some(r.version),
            to: None,
        });
    }
    tx
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
    pub fn prepare_dbpath(&self) -> Result<(), String> {
        let o = &self.opts;
        let target = o.local_db();
        if !target.is_dir() {
            return Err(format!(
                "no pacman local database at {}: is this an Arch system?",
                target.display()
            ));
        }
        let sync = o.dbpath.join("sync");
        std::fs::create_dir_all(&sync)
            .map_err(|e| format!("cannot create {}: {e}", sync.display()))?;
        let link = o.dbpath.join("local");
        match std::fs::symlink_metadata(&link) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("cannot inspect {}: {e}", link.display())),
            Ok(m) if m.file_type().is_symlink() => {
                if std::fs::read_link(&link).ok().as_deref() == Some(target.as_path()) {
                    return Ok(());
                }
                tracing::warn!(link = %link.display(), "replacing a link that does not point to the system's local database");
                std::fs::remove_file(&link)
                    .map_err(|e| format!("cannot replace {}: {e}", link.display()))?;
            }
            Ok(_) => {
                return Err(format!(
                    "{} exists and is not a link to {}; move it away (the agent keeps only a link there)",
                    link.display(),
                    target.display()
                ));
            }
        }
        std::os::unix::fs::symlink(&target, &link).map_err(|e| {
            format!(
                "cannot link {} to {}: {e}",
                link.display(),
                target.display()
            )
        })
    }

    /// Checks that the agent's database is set up and synced before pacman reads it.
    fn ready(&self) -> Result<(), String> {
        let o = &self.opts;
        let link = o.dbpath.join("local");
        let refresh_hint = "check_updates as root sets it up and refreshes it";
        if std::fs::read_link(&link).ok().as_deref() != Some(o.local_db().as_path()) {
            return Err(format!(
                "{} is not a link to the system's local database {}: {refresh_hint}",
                link.display(),
                o.local_db().display()
            ));
        }
        let synced = std::fs::read_dir(o.dbpath.join("sync"))
            .map(|d| {
                d.flatten()
                    .any(|e| e.file_name().to_string_lossy().ends_with(".db"))
            })
            .unwrap_or(false);
        if !synced {
            return Err(format!(
                "the agent's pacman sync database {} is empty: {refresh_hint} (the system's own sync database is never used)",
                o.dbpath.join("sync").display()
            ));
        }
        Ok(())
    }

    async fn local(&self) -> Result<ParsedLocal, String> {
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
    ) -> Result<ParsedInfo, String> {
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

async fn run(exec: &dyn Executor, req: ExecRequest) -> Result<ExecOutput, String> {
    exec.run(req).await.map_err(|e| e.to_string())
}

fn failed(what: &str, o: &ExecOutput) -> String {
    let why = crate::text::tail(&o.stderr, 500);
    if is_locked(&o.stderr) {
        format!(
            "{what}: the agent's pacman database is locked by another process (another agent run?): {why}"
        )
    } else {
        format!("{what} failed (exit {:?}): {why}", o.code)
    }
}

#[async_trait]
impl Backend for PacmanBackend {
    fn family(&self) -> Family {
        Family::Pacman
    }

    async fn inventory(&self, _exec: &dyn Executor) -> Result<Vec<InstalledPackage>, String> {
        Ok(self
            .local()
            .await?
            .packages
            .iter()
            .map(LocalPackage::to_installed)
            .collect())
    }

    async fn refresh(&self, exec: &dyn Executor) -> Result<(), String> {
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

    async fn updates(&self, exec: &dyn Executor) -> Result<Updates, String> {
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
    ) -> Result<Candidate, String> {
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
    ) -> Result<Transaction, String> {
        self.ready()?;
        let o = run(
            exec,
            ExecRequest::from_argv(&print_argv(&self.opts, targets)),
        )
        .await?;
        if !o.success() {
            return Err(format!(
                "pacman cannot plan the install: {}",
                crate::text::tail(&o.stderr, 500)
            ));
        }
        let plan = parse_plan(&o.stdout);
        let info = if plan.packages.is_empty() {
            ParsedInfo::default()
        } else {
            let mut names: Vec<&str> = plan.packages.iter().map(|p| p.name.as_str()).collect();
            names.dedup();
            self.info(exec, &names).await?
        };
        let installed = self.local().await?.packages;
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

    async fn reboot_required(&self, _exec: &dyn Executor) -> bool {
        match std::fs::read_to_string(OSRELEASE) {
            Ok(release) => reboot_needed(&self.opts.root.join(MODULES_DIR), &release),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the running kernel's release; reboot need unknown");
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::cmp::Ordering;

    const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/pacman");

    fn target(n: &str, v: &str) -> PackageTarget {
        PackageTarget {
            name: PackageName::parse(n).unwrap(),
            version: patchctl_proto::validate::PackageVersion::parse(v).unwrap(),
        }
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn golden_argv() {
        let p = PacmanOptions::default();
        assert_eq!(p.root, Path::new("/"));
        assert_eq!(p.system_lock(), Path::new("/var/lib/pacman/db.lck"));
        assert_eq!(p.local_db(), Path::new("/var/lib/pacman/local"));
        assert_eq!(p.lock_timeout, Duration::from_secs(300));
        let d = ["--color", "never", "--dbpath", "/var/lib/patchctl/pacman"];
        let with = |head: &[&str], tail: &[&str]| {
            let mut v = vec![PACMAN];
            v.extend(head);
            v.extend(d);
            v.extend(tail);
            s(&v)
        };
        assert_eq!(
            refresh_argv(&p),
            with(&["-Sy", "--noprogressbar"], &["--logfile", "/dev/null"])
        );
        assert_eq!(updates_argv(&p), with(&["-Qu"], &[]));
        assert_eq!(
            info_argv(&p, &["openssl"]),
            with(&["-Si"], &["--", "openssl"])
        );
        let t = [
            target("openssl", "3.4.0-1"),
            target("linux", "6.12.1.arch1-1"),
        ];
        assert_eq!(
            print_argv(&p, &t),
            with(
                &["-S", "--print", "--print-format", "%n %v", "--needed"],
                &["--", "openssl", "linux"]
            )
        );
        assert_eq!(
            install_argv(&p, &t),
            with(
                &["-S", "--needed", "--noconfirm", "--noprogressbar"],
                &["--", "openssl", "linux"]
            )
        );
        let r = install_request(&p, &t);
        assert_eq!(r.program, PACMAN);
        assert!(r.env.is_empty(), "pacman needs no extra environment");
        assert_eq!(r.timeout, Duration::from_secs(1800));
        let r = refresh_request(&p);
        assert!(r.env.is_empty());
        assert_eq!(r.timeout, Duration::from_secs(600));
        // A test configuration and database.
        let o = PacmanOptions {
            root: "/tmp/r".into(),
            dbpath: "/tmp/d".into(),
            config: Some("/tmp/pacman.conf".into()),
            lock_timeout: Duration::from_secs(1),
        };
        assert_eq!(
            updates_argv(&o),
            s(&[
                PACMAN,
                "-Qu",
                "--color",
                "never",
                "--config",
                "/tmp/pacman.conf",
                "--dbpath",
                "/tmp/d"
            ])
        );
        assert_eq!(o.system_lock(), Path::new("/tmp/r/var/lib/pacman/db.lck"));
    }

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(Path::new(DATA).join(name)).unwrap()
    }

    #[test]
    fn real_upgrades() {
        let u = parse_upgrades(&fixture("qu.txt"));
        assert!(u.skipped.is_empty());
        let lines: Vec<_> = u
            .upgrades
            .iter()
            .map(|u| format!("{} {} {} {}", u.name, u.installed, u.available, u.ignored))
            .collect();
        assert_eq!(
            lines,
            [
                "pc-new 1.0-1 1.1-1 false",
                "pc-sec 1.0-1 1.1-1 false",
                "pc-upd 1.0-1 1.1-1 false"
            ]
        );
        let u = parse_upgrades(&fixture("qu-ignored.txt"));
        assert_eq!(u.upgrades.len(), 3);
        assert!(u.upgrades[2].ignored && u.upgrades[2].name == "pc-upd");
        let u = parse_upgrades("foo 1 -> 2 [held]\nbar 1 2\n\nbaz 1:1-1 -> 1:2-1\n");
        assert_eq!(u.upgrades.len(), 1);
        assert_eq!(u.skipped.len(), 2);
    }

    #[test]
    fn real_info() {
        let i = parse_info(&fixture("si.txt"));
        assert!(i.skipped.is_empty(), "{:?}", i.skipped);
        let got: Vec<_> = i
            .packages
            .iter()
            .map(|p| format!("{}/{} {}", p.repo, p.name, p.version))
            .collect();
        assert_eq!(
            got,
            [
                "pctest/pc-new 1.1-1",
                "pctest/pc-upd 1.1-1",
                "pcextra/pc-upd 1.2-1",
                "pctest/pc-needsdep 1.0-1",
                "pcextra/pc-extra 0.1.r12.gabcdef-3"
            ]
        );
        assert_eq!(i.packages[0].conflicts, ["pc-victim"]);
        assert_eq!(i.packages[0].replaces, ["pc-victim"]);
        assert_eq!(i.packages[0].arch, "any");
        assert!(i.packages[1].conflicts.is_empty());
        assert_eq!(i.packages[3].depends, ["pc-dep>=3", "pc-sec"]);
        // Wrapped lists (on a terminal), a bad block between good ones.
        let i = parse_info(
            "Repository      : core\nName            : a\nVersion         : 1-1\nConflicts With  : b  c\n                  d<2\n\nName : x\n\nRepository : extra\nName : e\nVersion : 2-1\nbogus\n\n  stray\n\nRepository:r\nName:n\nVersion:v\nName:n\n",
        );
        assert_eq!(i.packages.len(), 1);
        assert_eq!(i.packages[0].conflicts, ["b", "c", "d<2"]);
        assert_eq!(i.skipped.len(), 4, "{:?}", i.skipped);
    }

    #[test]
    fn real_plan() {
        let p = parse_plan(&fixture("print-dep.txt"));
        assert!(p.skipped.is_empty());
        let got: Vec<_> = p
            .packages
            .iter()
            .map(|p| format!("{} {}", p.name, p.version))
            .collect();
        assert_eq!(got, ["pc-dep 3.0-1", "pc-sec 1.1-1", "pc-needsdep 1.0-1"]);
        let p = parse_plan(" there is nothing to do\n\nweird line here\n");
        assert!(p.packages.is_empty());
        assert_eq!(p.skipped.len(), 1);
    }

    #[test]
    fn locked_and_conflict_outputs() {
        assert!(is_locked(&fixture("install-locked.txt")));
        assert!(!is_locked(&fixture("install-conflict.txt")));
        assert!(!is_locked("error: target not found: pc-nope"));
    }

    fn lp(name: &str, version: &str, provides: &[&str], conflicts: &[&str]) -> LocalPackage {
        LocalPackage {
            name: name.into(),
            version: version.into(),
            arch: "any".into(),
            provides: s(provides),
            conflicts: s(conflicts),
            ..LocalPackage::default()
        }
    }

    fn sp(name: &str, version: &str, conflicts: &[&str], replaces: &[&str]) -> SyncPackage {
        SyncPackage {
            repo: "core".into(),
            name: name.into(),
            version: version.into(),
            conflicts: s(conflicts),
            replaces: s(replaces),
            ..SyncPackage::default()
        }
    }

    #[test]
    fn dependency_strings() {
        assert!(dep_matches("foo", "foo", "1-1", &[]));
        assert!(dep_matches("foo<2", "foo", "1.9-1", &[]));
        assert!(!dep_matches("foo<2", "foo", "2.0-1", &[]));
        assert!(dep_matches("foo>=2", "foo", "2-1", &[]));
        assert!(
            dep_matches("foo=1.0", "foo", "1.0-3", &[]),
            "no pkgrel: any release"
        );
        assert!(!dep_matches("foo=1.0-2", "foo", "1.0-3", &[]));
        assert!(dep_matches("foo>1:0", "foo", "1:0.1-1", &[]));
        assert!(!dep_matches("bar", "foo", "1-1", &[]));
        assert!(dep_matches("sh", "bash", "5-1", &s(&["sh"])));
        assert!(dep_matches(
            "libx.so<2",
            "libx",
            "3-1",
            &s(&["libx.so=1-64"])
        ));
        assert!(
            !dep_matches("sh>1", "bash", "5-1", &s(&["sh"])),
            "an unversioned provision does not satisfy a versioned dependency"
        );
        assert!(!dep_matches("", "", "1", &[]));
    }

    #[test]
    fn removals_from_conflicts_and_replaces() {
        let local = [
            lp("pc-new", "1.0-1", &[], &[]),
            lp("pc-victim", "1.0-1", &[], &[]),
            lp("old-sh", "1-1", &["sh"], &[]),
            lp("hater", "1-1", &[], &["pc-upd>=1.1"]),
            lp("pc-upd", "1.0-1", &[], &[]),
        ];
        let r = |incoming: &[SyncPackage]| -> Vec<String> {
            removals(&local, incoming)
                .into_iter()
                .map(|r| r.name)
                .collect()
        };
        assert_eq!(
            r(&[sp("pc-new", "1.1-1", &["pc-victim"], &["pc-victim"])]),
            ["pc-victim"]
        );
        assert_eq!(
            r(&[sp("pc-new", "1.1-1", &[], &["pc-victim"])]),
            ["pc-victim"]
        );
        assert_eq!(
            r(&[sp("pc-new", "1.1-1", &["pc-victim>1.0"], &[])]),
            Vec::<String>::new()
        );
        assert_eq!(r(&[sp("new-sh", "2-1", &["sh"], &[])]), ["old-sh"]);
        assert_eq!(r(&[sp("pc-upd", "1.1-1", &[], &[])]), ["hater"]);
        assert_eq!(
            r(&[sp("pc-upd", "1.0.9-1", &[], &[])]),
            Vec::<String>::new()
        );
        // Upgrading a package is not removing it, even if it "conflicts" with itself.
        assert_eq!(
            r(&[sp("pc-new", "1.1-1", &["pc-new"], &[])]),
            Vec::<String>::new()
        );
        // Replaces matches names only, not provisions.
        assert_eq!(r(&[sp("x", "1-1", &[], &["sh"])]), Vec::<String>::new());
    }

    #[test]
    fn the_gate_on_real_outputs() {
        let local = local::read_local(&Path::new(DATA).join("local"))
            .unwrap()
            .packages;
        let info = parse_info(&fixture("si.txt"));
        let gate = |plan: &str, approved: &[PackageTarget]| {
            super::super::refusals(
                Family::Pacman,
                &plan_transaction(&parse_plan(plan), &info, &local),
                approved,
            )
        };
        assert_eq!(
            gate("pc-new 1.1-1\n", &[target("pc-new", "1.1-1")]),
            ["would remove pc-victim"]
        );
        assert!(gate("pc-upd 1.1-1\n", &[target("pc-upd", "1.1-1")]).is_empty());
        assert_eq!(
            gate("pc-upd 1.1-1\n", &[target("pc-upd", "1.2-1")]),
            ["would install pc-upd 1.1-1, which was not approved"]
        );
        // The real plan of pc-needsdep pulls pc-dep in and upgrades pc-sec: neither was
        // approved (and si.txt has no block for them, which is a reason of its own).
        let no_info = |p: &str| {
            format!(
                "could not read the package manager's plan: no repository information for {p}: cannot tell what it conflicts with"
            )
        };
        assert_eq!(
            gate(&fixture("print-dep.txt"), &[target("pc-needsdep", "1.0-1")]),
            [
                "would install pc-dep 3.0-1, which was not approved".to_string(),
                "would install pc-sec 1.1-1, which was not approved".to_string(),
                no_info("pc-dep 3.0-1"),
                no_info("pc-sec 1.1-1"),
            ]
        );
        assert_eq!(
            gate("pc-upd 0.9-1\n", &[target("pc-upd", "0.9-1")]),
            [
                "would downgrade pc-upd from 1.0-1 to 0.9-1".to_string(),
                no_info("pc-upd 0.9-1"),
            ]
        );
    }

    #[test]
    fn pacman_version_order() {
        // Expected values from pacman 6.0.2's `vercmp` on this machine.
        for (a, b, want) in [
            ("1.0-1", "1.0-2", -1),
            ("1.0", "1.0-1", 0),
            ("1:1.0-1", "2.0-1", 1),
            ("1.0a-1", "1.0-1", -1),
            ("1.0.a", "1.0", 1),
            ("1.0_1", "1.0.1", 0),
            ("1.0", "1.0.0", -1),
            ("0.1.r12.gabcdef-3", "0.1-3", 1),
            ("2:1.0.3-2", "2:1.0.3-2.1", -1),
            ("1.0rc1", "1.0", -1),
            ("1.001", "1.1", 0),
            ("1..0", "1.0", 1),
            ("a", "b", -1),
            ("1.0-1", "1.0", 0),
            (":1-1", "1-1", 0),
            ("1-1", "0:1-1", 0),
            ("1.2.3-4", "1.2.3a-4", 1),
            ("20240101-1", "2024.01.01-1", 1),
        ] {
            let o = Family::Pacman.compare(a, b);
            let want = match want {
                -1 => Ordering::Less,
                0 => Ordering::Equal,
                _ => Ordering::Greater,
            };
            assert_eq!(o, Some(want), "{a} vs {b}");
        }
    }

    #[test]
    fn reboot_from_modules() {
        let tmp = tempfile::tempdir().unwrap();
        let m = tmp.path().join("modules");
        assert!(
            !reboot_needed(&m, "6.12.1-arch1-1\n"),
            "no modules dir: cannot tell"
        );
        std::fs::create_dir_all(&m).unwrap();
        assert!(!reboot_needed(&m, "6.12.1-arch1-1\n"), "empty: cannot tell");
        std::fs::create_dir_all(m.join("6.12.2-arch1-1")).unwrap();
        assert!(reboot_needed(&m, "6.12.1-arch1-1\n"));
        std::fs::create_dir_all(m.join("6.12.1-arch1-1")).unwrap();
        assert!(!reboot_needed(&m, "6.12.1-arch1-1\n"));
        assert!(!reboot_needed(&m, ""));
    }

    #[test]
    fn the_agents_database_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let o = PacmanOptions {
            root: tmp.path().join("root"),
            dbpath: tmp.path().join("agent/pacman"),
            config: None,
            lock_timeout: Duration::from_secs(1),
        };
        let b = PacmanBackend::new(o.clone());
        let err = b.prepare_dbpath().unwrap_err();
        assert!(err.contains("no pacman local database"), "{err}");
        std::fs::create_dir_all(o.local_db()).unwrap();
        let err = b.ready().unwrap_err();
        assert!(err.contains("is not a link"), "{err}");
        b.prepare_dbpath().unwrap();
        b.prepare_dbpath().unwrap();
        let link = o.dbpath.join("local");
        assert_eq!(std::fs::read_link(&link).unwrap(), o.local_db());
        let err = b.ready().unwrap_err();
        assert!(
            err.contains("sync database") && err.contains("is empty"),
            "{err}"
        );
        std::fs::write(o.dbpath.join("sync/core.db"), "").unwrap();
        b.ready().unwrap();
        // A wrong link is replaced; anything else is left alone and reported.
        std::fs::remove_file(&link).unwrap();
        std::os::unix::fs::symlink(tmp.path(), &link).unwrap();
        assert!(b.ready().is_err());
        b.prepare_dbpath().unwrap();
        assert_eq!(std::fs::read_link(&link).unwrap(), o.local_db());
        std::fs::remove_file(&link).unwrap();
        std::fs::create_dir(&link).unwrap();
        let err = b.prepare_dbpath().unwrap_err();
        assert!(err.contains("is not a link"), "{err}");
        assert!(link.is_dir(), "never deleted");
    }

    #[tokio::test]
    async fn the_system_lock() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("db.lck");
        let a = SystemLock::try_take(&path).unwrap().expect("free");
        assert!(path.exists());
        assert!(SystemLock::try_take(&path).unwrap().is_none());
        let t = Instant::now();
        assert!(matches!(
            SystemLock::take(&path, Duration::from_millis(600)).await,
            Err(LockError::Busy)
        ));
        assert!(t.elapsed() >= Duration::from_millis(600));
        drop(a);
        assert!(!path.exists());
        let b = SystemLock::take(&path, Duration::from_secs(1))
            .await
            .unwrap();
        drop(b);
        assert!(!path.exists());
        // An interrupted install keeps it.
        SystemLock::try_take(&path).unwrap().unwrap().keep();
        assert!(path.exists());
        assert!(matches!(
            SystemLock::take(&tmp.path().join("missing/db.lck"), Duration::from_secs(1)).await,
            Err(LockError::Io(_))
        ));
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,400}") {
            let _ = parse_upgrades(&s);
            let _ = parse_info(&s);
            let _ = parse_plan(&s);
            let _ = dep_matches(&s, "a", "1-1", std::slice::from_ref(&s));
        }

        #[test]
        fn upgrade_lines_round_trip(
            lines in proptest::collection::vec((
                "[a-z0-9@_+][a-z0-9@._+-]{0,20}",
                "([0-9]{1,2}:)?[0-9][0-9a-z.+_]{0,8}-[0-9]{1,2}",
                "([0-9]{1,2}:)?[0-9][0-9a-z.+_]{0,8}-[0-9]{1,2}",
                any::<bool>(),
            ), 0..8),
        ) {
            let text: String = lines
                .iter()
                .map(|(n, a, b, i)| format!("{n} {a} -> {b}{}\n", if *i { " [ignored]" } else { "" }))
                .collect();
            let u = parse_upgrades(&text);
            prop_assert!(u.skipped.is_empty());
            prop_assert_eq!(u.upgrades.len(), lines.len());
            for (got, (n, a, b, i)) in u.upgrades.iter().zip(&lines) {
                prop_assert_eq!(&got.name, n);
                prop_assert_eq!(&got.installed, a);
                prop_assert_eq!(&got.available, b);
                prop_assert_eq!(got.ignored, *i);
            }
        }

        #[test]
        fn info_blocks_round_trip(
            blocks in proptest::collection::vec((
                "[a-z]{1,8}",
                "[a-z0-9@_+][a-z0-9@._+-]{0,20}",
                "[0-9][0-9a-z.+_]{0,8}-[0-9]{1,2}",
                proptest::collection::vec("[a-z][a-z0-9.-]{0,10}((<|>|<=|>=|=)[0-9.]{1,5})?", 0..4),
            ), 0..5),
        ) {
            let text: String = blocks
                .iter()
                .map(|(r, n, v, c)| {
                    let c = if c.is_empty() { "None".to_string() } else { c.join("  ") };
                    format!("Repository      : {r}\nName            : {n}\nVersion         : {v}\nDescription     : some words: here\nConflicts With  : {c}\nReplaces        : None\n\n")
                })
                .collect();
            let i = parse_info(&text);
            prop_assert!(i.skipped.is_empty(), "{:?}", i.skipped);
            prop_assert_eq!(i.packages.len(), blocks.len());
            for (got, (r, n, v, c)) in i.packages.iter().zip(&blocks) {
                prop_assert_eq!(&got.repo, r);
                prop_assert_eq!(&got.name, n);
                prop_assert_eq!(&got.version, v);
                prop_assert_eq!(&got.conflicts, c);
                prop_assert!(got.replaces.is_empty());
            }
        }
    }
}
