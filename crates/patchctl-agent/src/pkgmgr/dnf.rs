//! The dnf backend (RHEL 8+, AlmaLinux, Rocky, Fedora, Amazon Linux 2023), and yum on
//! older systems (RHEL/CentOS 7, Amazon Linux 2) with the same commands and output.
//!
//! What runs (every argument vector is built by a `pub fn` below and golden-tested):
//!
//! | operation | command |
//! |---|---|
//! | inventory | `rpm -qa --queryformat …` ([`crate::inventory::rpm`]) |
//! | one package | `rpm -q --queryformat … -- NAME` (exit 1 when not installed: empty) |
//! | refresh | `dnf -q makecache --refresh`; yum: `yum -q clean expire-cache`, then `yum -q makecache` |
//! | updates | `dnf -q check-update` (exit 100: updates, 0: none), then `dnf -q updateinfo list --updates` (yum: `updateinfo list updates`) |
//! | candidate | `dnf -q list -- NAME`, and `dnf -q updateinfo list --updates -- NAME` when an update is available |
//! | simulate | `dnf --assumeno --setopt=install_weak_deps=False upgrade -- NAME-EVR…` |
//! | install | `dnf -y --setopt=exit_on_lock=True --setopt=install_weak_deps=False upgrade -- NAME-EVR…` |
//! | reboot | `dnf -q needs-restarting -r`, else `rpm -q --queryformat '%{INSTALLTIME} %{VERSION}-%{RELEASE}.%{ARCH}\n' -- kernel-core kernel …` |
//!
//! Every dnf run starts with the common options of [`DnfOptions`]: `--installroot=`,
//! `--config=`, `--releasever=` and `--setopt=K=V` when set (tests point dnf at a private
//! installroot, repositories and cache with them; production sets none).
//!
//! Choices:
//! - **Security** comes only from the repository's update metadata (`updateinfo.xml`):
//!   an update is a security update when an advisory of type `security` lists a newer
//!   version of the package (`dnf updateinfo list --updates`, label `Important/Sec.`).
//!   Advisories are attached to the update of the same name and architecture, with their
//!   ids and severities; the repository id is the update's origin.
//! - **Versions** are `E:V-R` when the epoch is not 0, else `V-R`, as `rpm -q` gives them
//!   through [`crate::inventory::rpm::parse_qa`] and as dnf prints them. A target is
//!   passed to dnf as `NAME-EVR` (dnf and yum both read `NAME-[E:]V-R`).
//! - **The simulation** is the real command with `--assumeno`: dnf resolves, prints its
//!   transaction table and answers "no" (exit 1 with `Operation aborted.`, the expected
//!   outcome). The table is parsed into a [`Plan`]; `replacing` lines (obsoleted
//!   packages) are removals. Every target must appear in the plan at exactly its
//!   version, or be installed at it already: dnf silently leaves out an argument it has
//!   no match for (`No match for argument`), a version that is not newer (`Nothing to
//!   do.`) and a package with conflicts (`Skipping packages with conflicts`), and each of
//!   those is a refusal with its reason. Rows of module or group sections are refusals
//!   too (the plan would change more than packages).
//! - **Weak dependencies** are not installed (`install_weak_deps=False`, dnf only): a new
//!   `Recommends:` would otherwise be an unapproved install and block the update.
//! - **Locks**: before the install, the rpm transaction lock (`.rpm.lock` in the rpm
//!   database directory) is read from `/proc/locks` without taking it; the install runs
//!   with `exit_on_lock=True`, so dnf's own lock makes it exit at once (exit 200, `RPMDB
//!   already locked by PID`) instead of waiting without bound. Both are retried every 2 s
//!   until [`DnfOptions::lock_timeout`] (default [`super::LOCK_TIMEOUT_SECS`]); then the
//!   run reports `locked: true` with "locked by another process" and the holder.
//! - **Reboot**: `dnf needs-restarting -r` (dnf-plugins-core; exit 1 and "Reboot is
//!   required" when kernel, glibc, systemd… were updated since boot). When it is not
//!   available (plugin missing, plugins off, yum), the newest installed kernel (by install
//!   time) is compared with the running one (`/proc/sys/kernel/osrelease`): a reboot is
//!   required when they differ. The fallback sees only the kernel, not glibc or systemd.
//! - **No repair step**: rpm has no "configuration pending" state like dpkg's to finish
//!   automatically. An interrupted transaction can leave an old and a new version both
//!   installed (`dnf check --duplicates` shows them); that is left to an operator.
//! - dnf 5 (Fedora 41+, also `/usr/bin/dnf`) has not been tried: its output may differ,
//!   and then the parsers record unreadable lines and the gate refuses.

use std::cmp::Ordering;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use patchctl_proto::agent::InstalledPackage;
use patchctl_proto::command::{Advisory, AvailableUpdate, PackageTarget};
use patchctl_proto::validate::PackageName;

use super::{Backend, Candidate, Change, Family, InstallRun, Transaction, Updates, failed};
use crate::exec::{ExecRequest, Executor};
use crate::inventory::rpm;

/// dnf's path.
pub const DNF: &str = "/usr/bin/dnf";
/// yum's path (old systems, and a link to dnf on new ones).
pub const YUM: &str = "/usr/bin/yum";

/// Packages whose newest installed version is the kernel a reboot would boot, for the
/// reboot check without `needs-restarting`.
pub const KERNEL_PACKAGES: &[&str] = &[
    "kernel-core",
    "kernel",
    "kernel-uek-core",
    "kernel-uek",
    "kernel-rt-core",
    "kernel-rt",
];

/// The `--queryformat` of the kernel query: install time, then `V-R.ARCH` as `uname -r`
/// shows a running kernel.
pub const KERNEL_QUERY_FORMAT: &str = "%{INSTALLTIME} %{VERSION}-%{RELEASE}.%{ARCH}\n";

/// Where rpm keeps its transaction lock, relative to the root (RHEL 8 and older,
/// Fedora 36+ / RHEL 10).
const RPM_LOCKS: &[&str] = &["var/lib/rpm/.rpm.lock", "usr/lib/sysimage/rpm/.rpm.lock"];

/// How often a locked install is retried.
const LOCK_POLL: Duration = Duration::from_secs(2);

/// How long a real install may run before it is killed.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(1800);

/// Settings of the dnf backend. [`DnfOptions::default`] is production dnf at `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnfOptions {
    /// The program: [`DNF`] or [`YUM`].
    pub program: String,
    /// True for yum 3 (RHEL 7, Amazon Linux 2): a few commands differ.
    pub yum: bool,
    /// `--installroot=`: the system dnf works on and rpm reads (`/` when `None`).
    pub installroot: Option<PathBuf>,
    /// `--config=`: another configuration file.
    pub config: Option<PathBuf>,
    /// `--releasever=`.
    pub releasever: Option<String>,
    /// `--setopt=KEY=VALUE` for every run (tests: `reposdir`, `cachedir`, `gpgcheck`).
    pub setopt: Vec<(String, String)>,
    /// More rpm transaction lock files to wait for, absolute (besides the standard ones
    /// under the root).
    pub rpm_locks: Vec<PathBuf>,
    /// How long an install waits for another process's lock.
    pub lock_timeout: Duration,
}

impl Default for DnfOptions {
    fn default() -> Self {
        DnfOptions {
            program: DNF.to_owned(),
            yum: false,
            installroot: None,
            config: None,
            releasever: None,
            setopt: Vec::new(),
            rpm_locks: Vec::new(),
            lock_timeout: Duration::from_secs(super::LOCK_TIMEOUT_SECS),
        }
    }
}

impl DnfOptions {
    /// Settings for yum systems (`/usr/bin/yum`, yum 3 dialect).
    pub fn yum() -> Self {
        DnfOptions {
            program: YUM.to_owned(),
            yum: true,
            ..DnfOptions::default()
        }
    }

    /// The root of the system worked on: the installroot, or `/`.
    pub fn root(&self) -> &Path {
        self.installroot.as_deref().unwrap_or(Path::new("/"))
    }

    /// The rpm transaction lock files an install waits for.
    pub fn rpm_lock_files(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = RPM_LOCKS.iter().map(|l| self.root().join(l)).collect();
        v.extend(self.rpm_locks.iter().cloned());
        v
    }

    fn name(&self) -> &'static str {
        if self.yum { "yum" } else { "dnf" }
    }

    /// The program and the common options of every run.
    fn base(&self) -> Vec<String> {
        let mut argv = vec![self.program.clone()];
        if let Some(r) = &self.installroot {
            argv.push(format!("--installroot={}", r.display()));
        }
        if let Some(c) = &self.config {
            argv.push(format!("--config={}", c.display()));
        }
        if let Some(r) = &self.releasever {
            argv.push(format!("--releasever={r}"));
        }
        for (k, v) in &self.setopt {
            argv.push(format!("--setopt={k}={v}"));
        }
        argv
    }
}

fn strs(argv: &mut Vec<String>, args: &[&str]) {
    argv.extend(args.iter().map(|s| (*s).to_owned()));
}

/// The metadata refresh, one or two runs: `dnf -q makecache --refresh`; for yum,
/// `yum -q clean expire-cache` then `yum -q makecache`.
pub fn refresh_argvs(o: &DnfOptions) -> Vec<Vec<String>> {
    if o.yum {
        let mut expire = o.base();
        strs(&mut expire, &["-q", "clean", "expire-cache"]);
        let mut make = o.base();
        strs(&mut make, &["-q", "makecache"]);
        vec![expire, make]
    } else {
        let mut argv = o.base();
        strs(&mut argv, &["-q", "makecache", "--refresh"]);
        vec![argv]
    }
}

/// `dnf -q check-update`: every available update (exit 100 when there are some).
pub fn check_update_argv(o: &DnfOptions) -> Vec<String> {
    let mut argv = o.base();
    strs(&mut argv, &["-q", "check-update"]);
    argv
}

/// `dnf -q updateinfo list --updates [-- NAME]`: the advisories of the available
/// updates (yum 3 takes `updates` as a word).
pub fn updateinfo_argv(o: &DnfOptions, name: Option<&PackageName>) -> Vec<String> {
    let mut argv = o.base();
    strs(&mut argv, &["-q", "updateinfo", "list"]);
    argv.push(if o.yum { "updates" } else { "--updates" }.into());
    if let Some(n) = name {
        argv.push("--".into());
        argv.push(n.to_string());
    }
    argv
}

/// `dnf -q list -- NAME`: the installed and the available versions of one package.
pub fn list_argv(o: &DnfOptions, name: &PackageName) -> Vec<String> {
    let mut argv = o.base();
    strs(&mut argv, &["-q", "list", "--"]);
    argv.push(name.to_string());
    argv
}

/// The package argument of a target: `NAME-[E:]V-R`.
pub fn target_spec(t: &PackageTarget) -> String {
    format!("{}-{}", t.name, t.version)
}

fn upgrade_args(o: &DnfOptions, argv: &mut Vec<String>, targets: &[PackageTarget]) {
    if !o.yum {
        argv.push("--setopt=install_weak_deps=False".into());
    }
    argv.push("upgrade".into());
    argv.push("--".into());
    argv.extend(targets.iter().map(target_spec));
}

/// `dnf --assumeno --setopt=install_weak_deps=False upgrade -- NAME-EVR…`: the plan of
/// installing exactly the targets, answered "no". Not `-q`, which hides the plan.
pub fn simulate_argv(o: &DnfOptions, targets: &[PackageTarget]) -> Vec<String> {
    let mut argv = o.base();
    argv.push("--assumeno".into());
    upgrade_args(o, &mut argv, targets);
    argv
}

/// `dnf -y --setopt=exit_on_lock=True --setopt=install_weak_deps=False upgrade --
/// NAME-EVR…`: the install; exits at once (200) when another dnf holds its lock.
pub fn install_argv(o: &DnfOptions, targets: &[PackageTarget]) -> Vec<String> {
    let mut argv = o.base();
    argv.push("-y".into());
    argv.push("--setopt=exit_on_lock=True".into());
    upgrade_args(o, &mut argv, targets);
    argv
}

/// The request [`DnfBackend::install`] runs: [`install_argv`] with a 30-minute timeout.
pub fn install_request(o: &DnfOptions, targets: &[PackageTarget]) -> ExecRequest {
    ExecRequest::from_argv(&install_argv(o, targets)).with_timeout(INSTALL_TIMEOUT)
}

/// `dnf -q needs-restarting -r`; `None` for yum, whose `needs-restarting` is another
/// program.
pub fn needs_restarting_argv(o: &DnfOptions) -> Option<Vec<String>> {
    if o.yum {
        return None;
    }
    let mut argv = o.base();
    strs(&mut argv, &["-q", "needs-restarting", "-r"]);
    Some(argv)
}

/// `rpm -q --queryformat KERNEL_QUERY_FORMAT -- kernel-core kernel …`: the installed
/// kernels with their install times.
pub fn kernel_query_argv(o: &DnfOptions) -> Vec<String> {
    let mut argv = vec![rpm::RPM_PATH.to_owned()];
    if o.root() != Path::new("/") {
        argv.push(format!("--root={}", o.root().display()));
    }
    strs(
        &mut argv,
        &["-q", "--queryformat", KERNEL_QUERY_FORMAT, "--"],
    );
    strs(&mut argv, KERNEL_PACKAGES);
    argv
}

// ---------------------------------------------------------------------------------
// Parsers. None of them panics; lines they cannot read go to `skipped` with why.
// ---------------------------------------------------------------------------------

/// One package line of dnf's list-style output: `NAME.ARCH  [E:]V-R  REPO`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Package name.
    pub name: String,
    /// Architecture.
    pub arch: String,
    /// `[E:]V-R`.
    pub evr: String,
    /// Repository id (`@System` or `@REPO` for installed packages).
    pub repo: String,
}

/// What `dnf check-update` printed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckUpdate {
    /// The updates.
    pub updates: Vec<Listed>,
    /// `Obsoleting Packages`: (the obsoleting package, the installed one it replaces).
    pub obsoletes: Vec<(Listed, Listed)>,
    /// Lines that could not be read, with why.
    pub skipped: Vec<String>,
}

fn quote(s: &str) -> &str {
    crate::text::truncate(s, 120)
}

fn skip(skipped: &mut Vec<String>, line: usize, why: &str, text: &str) {
    skipped.push(format!("line {line}: {why}: {:?}", quote(text.trim())));
}

/// A plausible `[E:]V-R`: non-empty, a `-` with text on both sides, an all-digit epoch.
fn is_evr(s: &str) -> bool {
    let (epoch, vr) = match s.split_once(':') {
        Some((e, vr)) => (e, vr),
        None => ("0", s),
    };
    let digits = !epoch.is_empty() && epoch.bytes().all(|b| b.is_ascii_digit());
    match vr.rsplit_once('-') {
        Some((v, r)) => {
            digits
                && !v.is_empty()
                && !r.is_empty()
                && !v.contains(':')
                && !r.contains(':')
                && !s.chars().any(char::is_whitespace)
        }
        None => false,
    }
}

/// `name.arch` → (name, arch).
fn split_name_arch(s: &str) -> Option<(&str, &str)> {
    let (n, a) = s.rsplit_once('.')?;
    (!n.is_empty() && !a.is_empty()).then_some((n, a))
}

/// Parses `NAME-[E:]V-R.ARCH` (dnf's and yum's NEVRA) into (name, evr, arch).
pub fn parse_nevra(s: &str) -> Option<(&str, &str, &str)> {
    let (nevr, arch) = s.rsplit_once('.')?;
    let (nev, release) = nevr.rsplit_once('-')?;
    let (name, ev) = nev.rsplit_once('-')?;
    let evr = &nevr[name.len() + 1..];
    if name.is_empty() || arch.is_empty() || ev.is_empty() || release.is_empty() {
        return None;
    }
    is_evr(evr).then_some((name, evr, arch))
}

fn listed(fields: &[&str]) -> Result<Listed, &'static str> {
    let [na, evr, repo] = fields else {
        return Err("expected NAME.ARCH VERSION REPOSITORY");
    };
    let (name, arch) = split_name_arch(na).ok_or("no NAME.ARCH")?;
    if !is_evr(evr) {
        return Err("version is not [EPOCH:]VERSION-RELEASE");
    }
    Ok(Listed {
        name: name.to_owned(),
        arch: arch.to_owned(),
        evr: (*evr).to_owned(),
        repo: (*repo).to_owned(),
    })
}

/// One row of list-style output, re-joined when dnf or yum wrapped it: a field wider than
/// its column ends the line and the next fields follow on an indented line.
struct Row<'a> {
    section: Option<usize>,
    indented: bool,
    fields: Vec<&'a str>,
    line: usize,
}

fn list_rows<'a>(output: &'a str, headers: &[&str], skipped: &mut Vec<String>) -> Vec<Row<'a>> {
    let mut rows = Vec::new();
    let mut section = None;
    let mut pending: Option<Row<'a>> = None;
    let flush = |p: &mut Option<Row<'a>>, rows: &mut Vec<Row<'a>>, skipped: &mut Vec<String>| {
        if let Some(r) = p.take() {
            if r.fields.len() == 3 {
                rows.push(r);
            } else {
                skip(
                    skipped,
                    r.line,
                    "expected NAME.ARCH VERSION REPOSITORY",
                    &r.fields.join(" "),
                );
            }
        }
    };
    for (i, raw) in output.lines().enumerate() {
        let line = raw.trim_end();
        let trimmed = line.trim();
        if trimmed.is_empty() {
            flush(&mut pending, &mut rows, skipped);
            continue;
        }
        let indented = line.starts_with(char::is_whitespace);
        if !indented {
            if let Some(h) = headers.iter().position(|h| *h == trimmed) {
                flush(&mut pending, &mut rows, skipped);
                section = Some(h);
                continue;
            }
        }
        let fields: Vec<&str> = trimmed.split_whitespace().collect();
        match &mut pending {
            // The rest of a wrapped row.
            Some(p) if indented && p.fields.len() < 3 => p.fields.extend(fields),
            _ => {
                flush(&mut pending, &mut rows, skipped);
                pending = Some(Row {
                    section,
                    indented,
                    fields,
                    line: i + 1,
                });
            }
        }
        if pending.as_ref().is_some_and(|p| p.fields.len() >= 3) {
            flush(&mut pending, &mut rows, skipped);
        }
    }
    flush(&mut pending, &mut rows, skipped);
    rows
}

const OBSOLETING: &str = "Obsoleting Packages";

/// Parses `dnf -q check-update` (and yum's): `NAME.ARCH EVR REPO` lines, then an
/// optional `Obsoleting Packages` section where each obsoleting package is followed by
/// the indented installed packages it replaces. Wrapped lines are joined.
pub fn parse_check_update(output: &str) -> CheckUpdate {
    let mut cu = CheckUpdate::default();
    let rows = list_rows(output, &[OBSOLETING], &mut cu.skipped);
    let mut by: Option<Listed> = None;
    for r in rows {
        let l = match listed(&r.fields) {
            Ok(l) => l,
            Err(why) => {
                skip(&mut cu.skipped, r.line, why, &r.fields.join(" "));
                continue;
            }
        };
        match (r.section, r.indented) {
            (None, false) => cu.updates.push(l),
            (Some(_), false) => by = Some(l),
            (Some(_), true) => match &by {
                Some(b) => cu.obsoletes.push((b.clone(), l)),
                None => skip(
                    &mut cu.skipped,
                    r.line,
                    "obsoleted package without an obsoleting one",
                    &r.fields.join(" "),
                ),
            },
            (None, true) => skip(
                &mut cu.skipped,
                r.line,
                "indented line outside a section",
                &r.fields.join(" "),
            ),
        }
    }
    cu
}

/// What `dnf -q list -- NAME` printed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PackageList {
    /// `Installed Packages`.
    pub installed: Vec<Listed>,
    /// `Available Packages` / `Available Upgrades` (yum: `Updated Packages`): newer
    /// versions, or versions of a package that is not installed.
    pub available: Vec<Listed>,
    /// Lines that could not be read, with why.
    pub skipped: Vec<String>,
}

const LIST_HEADERS: &[&str] = &[
    "Installed Packages",
    "Available Packages",
    "Available Upgrades",
    "Updated Packages",
    "Extra Packages",
    "Obsoleting Packages",
    "Recently Added Packages",
    "Available Downgrades",
    "Autoremove Packages",
];

/// Parses `dnf -q list` output. Rows of other sections (extras, obsoletes…) are ignored.
pub fn parse_list(output: &str) -> PackageList {
    let mut pl = PackageList::default();
    let rows = list_rows(output, LIST_HEADERS, &mut pl.skipped);
    for r in rows {
        let l = match listed(&r.fields) {
            Ok(l) => l,
            Err(why) => {
                skip(&mut pl.skipped, r.line, why, &r.fields.join(" "));
                continue;
            }
        };
        match r.section {
            Some(0) => pl.installed.push(l),
            Some(1..=3) => pl.available.push(l),
            Some(_) => {}
            None => skip(
                &mut pl.skipped,
                r.line,
                "package line outside a section",
                &l.name,
            ),
        }
    }
    pl
}

/// One advisory line of `dnf updateinfo list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdvisoryEntry {
    /// The advisory.
    pub advisory: Advisory,
    /// Package name.
    pub name: String,
    /// The package version the advisory ships, `[E:]V-R`.
    pub evr: String,
    /// Architecture.
    pub arch: String,
}

/// What `dnf updateinfo list` printed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdvisoryList {
    /// One entry per advisory and package.
    pub entries: Vec<AdvisoryEntry>,
    /// Lines that could not be read, with why.
    pub skipped: Vec<String>,
}

/// The advisory type and severity of a label of `updateinfo list`: `Important/Sec.` is
/// a security advisory of severity Important (`Unknown/Sec.`: no severity); `bugfix`,
/// `enhancement`, `newpackage`, `security` name the type alone.
pub fn parse_label(label: &str) -> Option<(Option<String>, Option<String>)> {
    if let Some(sev) = label.strip_suffix("/Sec.") {
        if sev.is_empty() || sev.contains(char::is_whitespace) {
            return None;
        }
        let sev = (sev != "Unknown").then(|| sev.to_owned());
        return Some((Some("security".into()), sev));
    }
    match label {
        "bugfix" | "enhancement" | "newpackage" | "security" => {
            Some((Some(label.to_owned()), None))
        }
        "unknown" => Some((None, None)),
        _ => None,
    }
}

/// Parses `dnf updateinfo list` (and yum's): `ID  LABEL  NEVRA` lines, optionally
/// starting with the installed mark of `--all` (`i`).
pub fn parse_updateinfo_list(output: &str) -> AdvisoryList {
    let mut al = AdvisoryList::default();
    for (i, line) in output.lines().enumerate() {
        let mut f: Vec<&str> = line.split_whitespace().collect();
        if f.is_empty() || f == ["updateinfo", "list", "done"] {
            continue;
        }
        if f.len() == 4 && f[0] == "i" {
            f.remove(0);
        }
        let [id, label, nevra] = f[..] else {
            skip(&mut al.skipped, i + 1, "expected ID TYPE NEVRA", line);
            continue;
        };
        let Some((kind, severity)) = parse_label(label) else {
            skip(&mut al.skipped, i + 1, "unknown advisory type", line);
            continue;
        };
        let Some((name, evr, arch)) = parse_nevra(nevra) else {
            skip(
                &mut al.skipped,
                i + 1,
                "package is not NAME-VERSION-RELEASE.ARCH",
                line,
            );
            continue;
        };
        al.entries.push(AdvisoryEntry {
            advisory: Advisory {
                id: id.to_owned(),
                kind,
                severity,
            },
            name: name.to_owned(),
            evr: evr.to_owned(),
            arch: arch.to_owned(),
        });
    }
    al
}

/// What one line of a transaction table does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// A new package (also a dependency or weak dependency).
    Install,
    /// A newer version of an installed package.
    Upgrade,
    /// The same version again.
    Reinstall,
    /// An older version.
    Downgrade,
    /// Removed.
    Remove,
    /// Left out by dnf (conflicts, broken dependencies): not part of the transaction.
    Skip,
}

/// One package of a transaction table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanItem {
    /// What happens to it.
    pub action: Action,
    /// Package name.
    pub name: String,
    /// Architecture.
    pub arch: String,
    /// The version it will have (for a removal, the installed one).
    pub evr: String,
    /// Repository id (`@System` for a removal).
    pub repo: String,
}

/// An installed package that a package of the plan obsoletes (a `replacing` line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replaced {
    /// Package name.
    pub name: String,
    /// Architecture.
    pub arch: String,
    /// Installed version.
    pub evr: String,
    /// The package of the plan that replaces it.
    pub by: String,
}

/// A parsed dnf (or yum) transaction: the table and the messages around it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// The packages of the table, in order.
    pub items: Vec<PlanItem>,
    /// Installed packages removed because a package of the plan obsoletes them.
    pub replaced: Vec<Replaced>,
    /// Arguments dnf found nothing for (`No match for argument: X`; yum: `No package X
    /// available.`).
    pub no_match: Vec<String>,
    /// True when dnf said `Nothing to do.` (yum: `No packages marked for update`).
    pub nothing_to_do: bool,
    /// Lines of the table that could not be read, or that change more than packages
    /// (module streams, groups), with why: each one is a reason to refuse.
    pub skipped: Vec<String>,
}

/// Section headers of the table: dnf 4 and yum 3 wordings.
fn classify(header: &str) -> Option<Action> {
    Some(match header {
        "Installing"
        | "Installing dependencies"
        | "Installing weak dependencies"
        | "Installing for dependencies" => Action::Install,
        "Upgrading" | "Updating" | "Updating for dependencies" => Action::Upgrade,
        "Reinstalling" => Action::Reinstall,
        "Downgrading" => Action::Downgrade,
        "Removing"
        | "Removing dependent packages"
        | "Removing unused dependencies"
        | "Removing for dependencies"
        | "Erasing" => Action::Remove,
        h if h.starts_with("Skipping packages with") || h.starts_with("Skipped") => Action::Skip,
        _ => return None,
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Section<'a> {
    None,
    Act(Action),
    Other(&'a str),
}

/// Parses what `dnf --assumeno upgrade …` printed (stdout, then stderr). Lines outside
/// the table are ignored except the `No match` and `Nothing to do` messages.
pub fn parse_transaction(output: &str) -> Plan {
    let mut plan = Plan::default();
    let mut rules = 0;
    let mut ended = false;
    let mut section = Section::None;
    // The current row's fields and line number.
    let mut pending: Option<(Vec<&str>, usize)> = None;
    let finish = |pending: &mut Option<(Vec<&str>, usize)>, section: Section, plan: &mut Plan| {
        let Some((f, line)) = pending.take() else {
            return;
        };
        match section {
            Section::Act(action) => {
                // NAME ARCH EVR REPO SIZE, the size being "6.0 k" or "14".
                if (5..=6).contains(&f.len()) && is_evr(f[2]) {
                    plan.items.push(PlanItem {
                        action,
                        name: f[0].to_owned(),
                        arch: f[1].to_owned(),
                        evr: f[2].to_owned(),
                        repo: f[3].to_owned(),
                    });
                } else {
                    skip(
                        &mut plan.skipped,
                        line,
                        "unreadable package line",
                        &f.join(" "),
                    );
                }
            }
            Section::Other(h) => skip(
                &mut plan.skipped,
                line,
                &format!("the plan also changes {h:?}"),
                &f.join(" "),
            ),
            Section::None => skip(
                &mut plan.skipped,
                line,
                "package line outside a section",
                &f.join(" "),
            ),
        }
    };
    for (i, raw) in output.lines().enumerate() {
        let line = raw.trim_end();
        let trimmed = line.trim();
        if let Some(arg) = trimmed.strip_prefix("No match for argument:") {
            plan.no_match.push(arg.trim().to_owned());
            continue;
        }
        if let Some(arg) = trimmed
            .strip_prefix("No package ")
            .and_then(|r| r.strip_suffix(" available."))
        {
            plan.no_match.push(arg.trim().to_owned());
            continue;
        }
        if trimmed == "Nothing to do." || trimmed.starts_with("No packages marked for update") {
            plan.nothing_to_do = true;
            continue;
        }
        if !trimmed.is_empty() && trimmed.bytes().all(|b| b == b'=') {
            rules += 1;
            continue;
        }
        if rules < 2 || ended {
            continue;
        }
        if trimmed.is_empty() {
            finish(&mut pending, section, &mut plan);
            continue;
        }
        if trimmed == "Transaction Summary" {
            finish(&mut pending, section, &mut plan);
            ended = true;
            continue;
        }
        if !line.starts_with(char::is_whitespace) {
            finish(&mut pending, section, &mut plan);
            if line.starts_with('(') {
                // The second line of a "Skipping packages with conflicts:" header.
                continue;
            }
            match line.strip_suffix(':') {
                Some(h) => {
                    section = match classify(h) {
                        Some(a) => Section::Act(a),
                        None => Section::Other(h),
                    }
                }
                None => skip(
                    &mut plan.skipped,
                    i + 1,
                    "unexpected line in the plan",
                    line,
                ),
            }
            continue;
        }
        let fields: Vec<&str> = trimmed.split_whitespace().collect();
        if fields.first() == Some(&"replacing") {
            finish(&mut pending, section, &mut plan);
            let by = plan.items.last().map(|p| p.name.clone());
            match (&fields[..], by) {
                ([_, na, evr], Some(by)) if is_evr(evr) && split_name_arch(na).is_some() => {
                    let (name, arch) = split_name_arch(na).unwrap_or_default();
                    plan.replaced.push(Replaced {
                        name: name.to_owned(),
                        arch: arch.to_owned(),
                        evr: (*evr).to_owned(),
                        by,
                    });
                }
                _ => skip(&mut plan.skipped, i + 1, "unreadable replacing line", line),
            }
            continue;
        }
        // A row starts one space in; a wrapped row's rest is indented further.
        let continues = line
            .as_bytes()
            .get(1)
            .is_some_and(|b| b.is_ascii_whitespace());
        match &mut pending {
            Some((f, _)) if continues && f.len() < 5 => f.extend(fields),
            _ if continues => {
                finish(&mut pending, section, &mut plan);
                skip(&mut plan.skipped, i + 1, "unexpected indented line", line);
            }
            _ => {
                finish(&mut pending, section, &mut plan);
                pending = Some((fields, i + 1));
            }
        }
    }
    finish(&mut pending, section, &mut plan);
    plan
}

/// `[E:]V-R` without a `0:` epoch, for comparing what dnf and the platform print.
pub fn normalize_evr(evr: &str) -> &str {
    evr.strip_prefix("0:").unwrap_or(evr)
}

fn same_evr(a: &str, b: &str) -> bool {
    normalize_evr(a) == normalize_evr(b) || Family::Dnf.compare(a, b) == Some(Ordering::Equal)
}

/// The installed version of `name` (preferring `arch`; the newest of several).
fn installed_version(installed: &[InstalledPackage], name: &str, arch: &str) -> Option<String> {
    let same: Vec<&InstalledPackage> = installed.iter().filter(|p| p.name == name).collect();
    let arch_match: Vec<&InstalledPackage> =
        same.iter().copied().filter(|p| p.arch == arch).collect();
    let pool = if arch_match.is_empty() {
        same
    } else {
        arch_match
    };
    pool.into_iter()
        .map(|p| p.version.clone())
        .reduce(|a, b| match Family::Dnf.compare(&a, &b) {
            Some(Ordering::Greater) => a,
            _ => b,
        })
}

impl Plan {
    /// The plan as a transaction for the install gate ([`super::refusals`]), with the
    /// installed versions (`from`) read from the rpm inventory.
    pub fn transaction(&self, installed: &[InstalledPackage]) -> Transaction {
        let mut tx = Transaction {
            changes: Vec::new(),
            skipped: self.skipped.clone(),
        };
        for it in &self.items {
            let from = match it.action {
                Action::Skip => continue,
                Action::Install => None,
                Action::Remove => Some(it.evr.clone()),
                Action::Upgrade | Action::Reinstall | Action::Downgrade => {
                    installed_version(installed, &it.name, &it.arch)
                }
            };
            if it.action == Action::Downgrade && from.is_none() {
                tx.skipped.push(format!(
                    "dnf would downgrade {} to {}, whose installed version is unknown",
                    it.name, it.evr
                ));
            }
            let to = (it.action != Action::Remove).then(|| it.evr.clone());
            tx.changes.push(Change {
                name: it.name.clone(),
                from,
                to,
            });
        }
        for r in &self.replaced {
            tx.changes.push(Change {
                name: r.name.clone(),
                from: Some(r.evr.clone()),
                to: None,
            });
        }
        tx
    }

    /// Why the plan does not install exactly the targets, one reason per target dnf left
    /// out: no such version, not newer than what is installed, skipped for conflicts.
    /// A target installed at its version already is fine (nothing to do).
    pub fn missing_targets(
        &self,
        program: &str,
        targets: &[PackageTarget],
        installed: &[InstalledPackage],
    ) -> Vec<String> {
        let mut why = Vec::new();
        for t in targets {
            let (name, ver) = (t.name.as_str(), t.version.as_str());
            let planned = self.items.iter().any(|i| {
                i.action != Action::Skip
                    && i.action != Action::Remove
                    && i.name == name
                    && same_evr(&i.evr, ver)
            });
            if planned {
                continue;
            }
            let now: Vec<&str> = installed
                .iter()
                .filter(|p| p.name == name)
                .map(|p| p.version.as_str())
                .collect();
            let touched = self
                .items
                .iter()
                .any(|i| i.name == name && i.action != Action::Skip);
            if !touched && now.iter().any(|v| same_evr(v, ver)) {
                continue;
            }
            let spec = target_spec(t);
            let installed_now = if now.is_empty() {
                "not installed".to_owned()
            } else {
                format!("installed: {}", now.join(", "))
            };
            if self.no_match.contains(&spec) {
                why.push(format!(
                    "{name} {ver} is not available from the enabled repositories ({program}: No match for argument: {spec}; {installed_now})"
                ));
            } else if self
                .items
                .iter()
                .any(|i| i.action == Action::Skip && i.name == name)
            {
                why.push(format!(
                    "{program} would skip {name} {ver}: it conflicts with installed packages or its dependencies cannot be met ({installed_now})"
                ));
            } else {
                why.push(format!(
                    "{program} would not install {name} {ver} ({installed_now}): only an available version newer than the installed one can be installed"
                ));
            }
        }
        // Arguments dnf found nothing for that are not a target's spec.
        for m in &self.no_match {
            if !targets.iter().any(|t| target_spec(t) == *m) {
                why.push(format!("{program}: No match for argument: {m}"));
            }
        }
        why
    }
}

/// Reads `dnf needs-restarting -r`: `Some(true)` for exit 1 with "Reboot is required",
/// `Some(false)` for exit 0 with "Reboot should not be necessary", `None` otherwise (the
/// plugin is missing: "No such command").
pub fn parse_needs_restarting(code: Option<i32>, stdout: &str) -> Option<bool> {
    match code {
        Some(1) if stdout.contains("Reboot is required") => Some(true),
        Some(0) if stdout.contains("Reboot should not be necessary") => Some(false),
        _ => None,
    }
}

/// The newest installed kernel (`V-R.ARCH`, by install time) from the output of
/// [`kernel_query_argv`]; `package … is not installed` lines are ignored.
pub fn parse_kernel_query(output: &str) -> Option<String> {
    output
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (t, vra) = (f.next()?, f.next()?);
            if f.next().is_some() {
                return None;
            }
            Some((t.parse::<u64>().ok()?, vra))
        })
        .max_by_key(|(t, _)| *t)
        .map(|(_, vra)| vra.to_owned())
}

/// True when a newest installed kernel is known and is not the running one.
pub fn kernel_reboot_needed(newest: Option<&str>, running: &str) -> bool {
    newest.is_some_and(|n| n != running.trim())
}

/// The line where dnf or yum says another process holds its lock, if any: dnf 4 with
/// `exit_on_lock` (`RPMDB already locked by 4242`), waiting dnf (`Waiting for process
/// with pid 4242 to finish.`), yum 3 (`Existing lock /var/run/yum.pid: another copy is
/// running as pid 4242.`).
pub fn lock_message(output: &str) -> Option<&str> {
    output.lines().map(str::trim).find(|l| {
        (l.contains(" already locked by ") && l.rsplit(' ').next().is_some_and(is_pid))
            || l.starts_with("Waiting for process with pid ")
            || (l.starts_with("Existing lock ") && l.contains("another copy is running"))
            || l.starts_with("Another app is currently holding the yum lock")
    })
}

fn is_pid(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// The available updates: check-update's list with the installed versions from the
/// inventory, the advisories of `updateinfo` attached by name and architecture, and
/// the packages obsoleting ones would remove.
pub fn updates_report(
    cu: &CheckUpdate,
    advisories: &AdvisoryList,
    installed: &[InstalledPackage],
) -> Updates {
    let mut out = Updates {
        skipped: cu
            .skipped
            .iter()
            .chain(&advisories.skipped)
            .cloned()
            .collect(),
        ..Updates::default()
    };
    let obsoleters = cu.obsoletes.iter().map(|(by, _)| by);
    for l in cu.updates.iter().chain(obsoleters) {
        if out
            .updates
            .iter()
            .any(|u| u.name == l.name && u.arch == l.arch)
        {
            continue;
        }
        let mut advs: Vec<Advisory> = Vec::new();
        for e in &advisories.entries {
            if e.name == l.name && e.arch == l.arch && !advs.iter().any(|a| a.id == e.advisory.id) {
                advs.push(e.advisory.clone());
            }
        }
        out.updates.push(AvailableUpdate {
            name: l.name.clone(),
            arch: l.arch.clone(),
            current_version: installed_version(installed, &l.name, &l.arch),
            candidate_version: l.evr.clone(),
            origins: vec![l.repo.clone()],
            security: advs.iter().any(|a| a.kind.as_deref() == Some("security")),
            advisories: advs,
        });
    }
    for (_, old) in &cu.obsoletes {
        if !out.removals.contains(&old.name) {
            out.removals.push(old.name.clone());
        }
    }
    out
}

/// Which of `files` another process holds a lock on, per `/proc/locks`.
fn rpm_lock_holder(files: &[PathBuf]) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    files.iter().find_map(|f| {
        let meta = std::fs::metadata(f).ok()?;
        let pid = crate::health::lock_holder(&locks, meta.dev(), meta.ino())?;
        Some(format!(
            "the rpm database lock {} is held by pid {pid}",
            f.display()
        ))
    })
}

/// dnf or yum, with rpm for the inventory.
#[derive(Debug, Clone)]
pub struct DnfBackend {
    opts: DnfOptions,
}

impl DnfBackend {
    /// A backend with these settings.
    pub fn new(opts: DnfOptions) -> Self {
        DnfBackend { opts }
    }

    /// Its settings.
    pub fn options(&self) -> &DnfOptions {
        &self.opts
    }
}

#[async_trait]
impl Backend for DnfBackend {
    fn family(&self) -> Family {
        if self.opts.yum {
            Family::Yum
        } else {
            Family::Dnf
        }
    }

    async fn inventory(&self, exec: &dyn Executor) -> Result<Vec<InstalledPackage>, String> {
        rpm::inventory(exec, self.opts.root()).await
    }

    async fn installed(
        &self,
        exec: &dyn Executor,
        name: &PackageName,
    ) -> Result<Vec<InstalledPackage>, String> {
        rpm::installed(exec, self.opts.root(), name).await
    }

    async fn refresh(&self, exec: &dyn Executor) -> Result<(), String> {
        for argv in refresh_argvs(&self.opts) {
            let req = ExecRequest::from_argv(&argv).with_timeout(Duration::from_secs(600));
            let o = exec.run(req).await.map_err(|e| e.to_string())?;
            if !o.success() {
                return Err(failed(
                    &format!(
                        "{} makecache (refreshing the repository metadata)",
                        self.opts.name()
                    ),
                    o.code,
                    &o.stdout,
                    &o.stderr,
                ));
            }
        }
        Ok(())
    }

    async fn updates(&self, exec: &dyn Executor) -> Result<Updates, String> {
        let installed = self.inventory(exec).await?;
        let o = exec
            .run(ExecRequest::from_argv(&check_update_argv(&self.opts)))
            .await
            .map_err(|e| e.to_string())?;
        if !matches!(o.code, Some(0) | Some(100)) {
            return Err(failed(
                &format!("{} check-update", self.opts.name()),
                o.code,
                &o.stdout,
                &o.stderr,
            ));
        }
        let cu = parse_check_update(&o.stdout);
        let o = exec
            .run(ExecRequest::from_argv(&updateinfo_argv(&self.opts, None)))
            .await
            .map_err(|e| e.to_string())?;
        if !o.success() {
            return Err(failed(
                &format!(
                    "{} updateinfo (reading the security advisories)",
                    self.opts.name()
                ),
                o.code,
                &o.stdout,
                &o.stderr,
            ));
        }
        let advisories = parse_updateinfo_list(&o.stdout);
        Ok(updates_report(&cu, &advisories, &installed))
    }

    async fn candidate(
        &self,
        exec: &dyn Executor,
        name: &PackageName,
    ) -> Result<Candidate, String> {
        let o = exec
            .run(ExecRequest::from_argv(&list_argv(&self.opts, name)))
            .await
            .map_err(|e| e.to_string())?;
        if o.code == Some(1) && o.stderr.contains("No matching Packages") {
            return Ok(Candidate::default());
        }
        if !o.success() {
            return Err(failed(
                &format!("{} list", self.opts.name()),
                o.code,
                &o.stdout,
                &o.stderr,
            ));
        }
        let list = parse_list(&o.stdout);
        let installed: Vec<&Listed> = list
            .installed
            .iter()
            .filter(|l| l.name == name.as_str())
            .collect();
        let arch = installed.first().map(|l| l.arch.as_str());
        let avail: Vec<&Listed> = list
            .available
            .iter()
            .filter(|l| l.name == name.as_str())
            .collect();
        // For an installed package, only its own architecture's update counts (an
        // available i686 build is no candidate for an installed x86_64 one).
        let best = match arch {
            Some(a) => avail.iter().find(|l| l.arch == a),
            None => avail.first(),
        }
        .copied();
        let Some(best) = best else {
            // Nothing newer: the candidate is what is installed.
            return Ok(match installed.first() {
                Some(i) => {
                    let repo = i.repo.trim_start_matches('@');
                    Candidate {
                        version: Some(i.evr.clone()),
                        origins: if matches!(repo, "System" | "commandline" | "") {
                            Vec::new()
                        } else {
                            vec![repo.to_owned()]
                        },
                        security: false,
                    }
                }
                None => Candidate::default(),
            });
        };
        let mut security = false;
        if !installed.is_empty() {
            let o = exec
                .run(ExecRequest::from_argv(&updateinfo_argv(
                    &self.opts,
                    Some(name),
                )))
                .await
                .map_err(|e| e.to_string())?;
            if !o.success() {
                return Err(failed(
                    &format!("{} updateinfo", self.opts.name()),
                    o.code,
                    &o.stdout,
                    &o.stderr,
                ));
            }
            security = parse_updateinfo_list(&o.stdout).entries.iter().any(|e| {
                e.name == best.name
                    && e.arch == best.arch
                    && e.advisory.kind.as_deref() == Some("security")
            });
        }
        Ok(Candidate {
            version: Some(best.evr.clone()),
            origins: vec![best.repo.clone()],
            security,
        })
    }

    async fn simulate(
        &self,
        exec: &dyn Executor,
        targets: &[PackageTarget],
    ) -> Result<Transaction, String> {
        let prog = self.opts.name();
        let o = exec
            .run(ExecRequest::from_argv(&simulate_argv(&self.opts, targets)))
            .await
            .map_err(|e| e.to_string())?;
        let plan = parse_transaction(&format!("{}\n{}", o.stdout, o.stderr));
        // --assumeno answers "no": dnf exits 1 after "Operation aborted." (yum: "Exiting
        // on user command"); 0 when there was nothing to do.
        let answered_no = o.code == Some(1)
            && (o.stderr.contains("Operation aborted")
                || o.stdout.contains("Exiting on user command")
                || o.stderr.contains("Exiting on user command"));
        if o.code != Some(0) && !answered_no {
            if !plan.no_match.is_empty() {
                let installed = self.inventory(exec).await?;
                return Err(plan.missing_targets(prog, targets, &installed).join("; "));
            }
            return Err(failed(
                &format!("{prog} cannot plan the install: {prog} upgrade"),
                o.code,
                &o.stdout,
                &o.stderr,
            ));
        }
        let installed = self.inventory(exec).await?;
        let missing = plan.missing_targets(prog, targets, &installed);
        if !missing.is_empty() {
            return Err(missing.join("; "));
        }
        Ok(plan.transaction(&installed))
    }

    async fn install(&self, exec: &dyn Executor, targets: &[PackageTarget]) -> InstallRun {
        let deadline = Instant::now() + self.opts.lock_timeout;
        let wait = || async {
            let left = deadline.saturating_duration_since(Instant::now());
            tokio::time::sleep(LOCK_POLL.min(left)).await;
        };
        let locked = |why: &str, code: Option<i32>| InstallRun {
            code,
            output: format!(
                "locked by another process: {why}; waited {} s, nothing was installed",
                self.opts.lock_timeout.as_secs()
            ),
            locked: true,
        };
        loop {
            let files = self.opts.rpm_lock_files();
            let held = tokio::task::spawn_blocking(move || rpm_lock_holder(&files))
                .await
                .unwrap_or(None);
            if let Some(why) = held {
                if Instant::now() >= deadline {
                    return locked(&why, None);
                }
                wait().await;
                continue;
            }
            let o = match exec.run(install_request(&self.opts, targets)).await {
                Ok(o) => o,
                Err(e) => {
                    return InstallRun {
                        code: None,
                        output: e.to_string(),
                        locked: false,
                    };
                }
            };
            if o.code != Some(0) {
                let both = format!("{}\n{}", o.stderr, o.stdout);
                if let Some(why) = lock_message(&both) {
                    if Instant::now() >= deadline {
                        return locked(why, o.code);
                    }
                    wait().await;
                    continue;
                }
            }
            return InstallRun {
                code: o.code,
                output: crate::text::tail(&format!("{}\n{}", o.stdout, o.stderr), 2000).to_owned(),
                locked: false,
            };
        }
    }

    async fn reboot_required(&self, exec: &dyn Executor) -> bool {
        if let Some(argv) = needs_restarting_argv(&self.opts) {
            if let Ok(o) = exec.run(ExecRequest::from_argv(&argv)).await {
                if let Some(b) = parse_needs_restarting(o.code, &o.stdout) {
                    return b;
                }
            }
        }
        let newest = match exec
            .run(ExecRequest::from_argv(&kernel_query_argv(&self.opts)))
            .await
        {
            Ok(o) => parse_kernel_query(&o.stdout),
            Err(_) => None,
        };
        let running = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        kernel_reboot_needed(newest.as_deref(), &running)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use patchctl_proto::validate::PackageVersion;
    use proptest::prelude::*;

    macro_rules! fixture {
        ($f:literal) => {
            include_str!(concat!("../../tests/data/dnf/", $f))
        };
    }

    fn target(n: &str, v: &str) -> PackageTarget {
        PackageTarget {
            name: PackageName::parse(n).unwrap(),
            version: PackageVersion::parse(v).unwrap(),
        }
    }

    fn pkg(name: &str, version: &str) -> InstalledPackage {
        InstalledPackage {
            name: name.into(),
            version: version.into(),
            arch: "noarch".into(),
            source_name: None,
            source_version: None,
            status: "installed".into(),
        }
    }

    fn listed(name: &str, arch: &str, evr: &str, repo: &str) -> Listed {
        Listed {
            name: name.into(),
            arch: arch.into(),
            evr: evr.into(),
            repo: repo.into(),
        }
    }

    const LONG: &str =
        "pc-an-extremely-long-package-name-that-will-not-fit-into-the-columns-of-dnf";

    /// The installroot of capture.sh before any install.
    fn base_inventory() -> Vec<InstalledPackage> {
        [
            ("pc-sec", "1.0-1"),
            ("pc-upd", "1.0-1"),
            ("pc-new", "1.0-1"),
            ("pc-needs", "1.0-1"),
            (LONG, "1.0-1"),
            ("pc-down", "1.0-1"),
            ("pc-conf", "1.0-1"),
            ("pc-clash", "1.0-1"),
            ("pc-victim", "1.0-1"),
            ("pc-epoch", "1:2.0-1"),
        ]
        .iter()
        .map(|(n, v)| pkg(n, v))
        .collect()
    }

    #[test]
    fn golden_argv_production_dnf() {
        let o = DnfOptions::default();
        assert_eq!(o.root(), Path::new("/"));
        assert_eq!(
            refresh_argvs(&o),
            [["/usr/bin/dnf", "-q", "makecache", "--refresh"]]
        );
        assert_eq!(
            check_update_argv(&o),
            ["/usr/bin/dnf", "-q", "check-update"]
        );
        assert_eq!(
            updateinfo_argv(&o, None),
            ["/usr/bin/dnf", "-q", "updateinfo", "list", "--updates"]
        );
        let name = PackageName::parse("openssl").unwrap();
        assert_eq!(
            updateinfo_argv(&o, Some(&name)),
            [
                "/usr/bin/dnf",
                "-q",
                "updateinfo",
                "list",
                "--updates",
                "--",
                "openssl"
            ]
        );
        assert_eq!(
            list_argv(&o, &name),
            ["/usr/bin/dnf", "-q", "list", "--", "openssl"]
        );
        let t = [
            target("openssl", "1:3.0.7-27.el9"),
            target("openssl-libs", "1:3.0.7-27.el9"),
        ];
        assert_eq!(
            simulate_argv(&o, &t),
            [
                "/usr/bin/dnf",
                "--assumeno",
                "--setopt=install_weak_deps=False",
                "upgrade",
                "--",
                "openssl-1:3.0.7-27.el9",
                "openssl-libs-1:3.0.7-27.el9"
            ]
        );
        assert_eq!(
            install_argv(&o, &t[..1]),
            [
                "/usr/bin/dnf",
                "-y",
                "--setopt=exit_on_lock=True",
                "--setopt=install_weak_deps=False",
                "upgrade",
                "--",
                "openssl-1:3.0.7-27.el9"
            ]
        );
        let req = install_request(&o, &t[..1]);
        assert_eq!(req.program, "/usr/bin/dnf");
        assert!(req.env.is_empty(), "dnf needs no extra environment");
        assert_eq!(req.timeout, Duration::from_secs(1800));
        assert_eq!(
            needs_restarting_argv(&o).unwrap(),
            ["/usr/bin/dnf", "-q", "needs-restarting", "-r"]
        );
        assert_eq!(
            kernel_query_argv(&o),
            [
                "/usr/bin/rpm",
                "-q",
                "--queryformat",
                "%{INSTALLTIME} %{VERSION}-%{RELEASE}.%{ARCH}\n",
                "--",
                "kernel-core",
                "kernel",
                "kernel-uek-core",
                "kernel-uek",
                "kernel-rt-core",
                "kernel-rt"
            ]
        );
        assert_eq!(
            o.rpm_lock_files(),
            [
                PathBuf::from("/var/lib/rpm/.rpm.lock"),
                PathBuf::from("/usr/lib/sysimage/rpm/.rpm.lock")
            ]
        );
        assert_eq!(
            o.lock_timeout,
            Duration::from_secs(super::super::LOCK_TIMEOUT_SECS)
        );
        assert_eq!(DnfBackend::new(o).family(), Family::Dnf);
    }

    #[test]
    fn golden_argv_yum() {
        let o = DnfOptions::yum();
        assert_eq!(
            refresh_argvs(&o),
            [
                vec!["/usr/bin/yum", "-q", "clean", "expire-cache"],
                vec!["/usr/bin/yum", "-q", "makecache"]
            ]
        );
        assert_eq!(
            check_update_argv(&o),
            ["/usr/bin/yum", "-q", "check-update"]
        );
        assert_eq!(
            updateinfo_argv(&o, None),
            ["/usr/bin/yum", "-q", "updateinfo", "list", "updates"]
        );
        let t = [target("openssl", "1:1.0.2k-26.el7_9")];
        assert_eq!(
            simulate_argv(&o, &t),
            [
                "/usr/bin/yum",
                "--assumeno",
                "upgrade",
                "--",
                "openssl-1:1.0.2k-26.el7_9"
            ]
        );
        assert_eq!(
            install_argv(&o, &t),
            [
                "/usr/bin/yum",
                "-y",
                "--setopt=exit_on_lock=True",
                "upgrade",
                "--",
                "openssl-1:1.0.2k-26.el7_9"
            ]
        );
        assert_eq!(needs_restarting_argv(&o), None);
        assert_eq!(kernel_query_argv(&o)[1], "-q");
        assert_eq!(DnfBackend::new(o).family(), Family::Yum);
    }

    #[test]
    fn golden_argv_installroot() {
        let o = DnfOptions {
            installroot: Some("/tmp/r".into()),
            config: Some("/tmp/dnf.conf".into()),
            releasever: Some("9".into()),
            setopt: vec![("reposdir".into(), "/tmp/repos.d".into())],
            rpm_locks: vec!["/tmp/r/root/.rpmdb/.rpm.lock".into()],
            ..DnfOptions::default()
        };
        assert_eq!(
            check_update_argv(&o),
            [
                "/usr/bin/dnf",
                "--installroot=/tmp/r",
                "--config=/tmp/dnf.conf",
                "--releasever=9",
                "--setopt=reposdir=/tmp/repos.d",
                "-q",
                "check-update"
            ]
        );
        assert_eq!(kernel_query_argv(&o)[1], "--root=/tmp/r");
        assert_eq!(
            o.rpm_lock_files(),
            [
                PathBuf::from("/tmp/r/var/lib/rpm/.rpm.lock"),
                PathBuf::from("/tmp/r/usr/lib/sysimage/rpm/.rpm.lock"),
                PathBuf::from("/tmp/r/root/.rpmdb/.rpm.lock")
            ]
        );
    }

    #[test]
    fn check_update_real_output() {
        let cu = parse_check_update(fixture!("check-update.out"));
        assert!(cu.skipped.is_empty(), "{:?}", cu.skipped);
        let names: Vec<&str> = cu.updates.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(
            names,
            [
                LONG, "pc-clash", "pc-conf", "pc-epoch", "pc-needs", "pc-new", "pc-sec", "pc-upd"
            ]
        );
        assert_eq!(
            cu.updates[3],
            listed("pc-epoch", "noarch", "2:1.5-1", "pctest-updates")
        );
        assert_eq!(
            cu.obsoletes,
            [(
                listed("pc-new", "noarch", "1.1-1", "pctest-updates"),
                listed("pc-victim", "noarch", "1.0-1", "@System")
            )]
        );
    }

    #[test]
    fn check_update_wrapped_lines() {
        // yum 3 and narrow dnf columns: a field wider than its column ends the line.
        let out = "\nNetworkManager-libnm.x86_64\n                        1:1.18.8-2.el7_9              updates\n\
                   kernel.x86_64          3.10.0-1160.119.1.el7\n                                 updates\n\
                   openssl.x86_64         1:1.0.2k-26.el7_9       updates\n\
                   Obsoleting Packages\n\
                   grub2.x86_64           1:2.02-0.87.el7_9.14    updates\n    grub2-tools.x86_64\n                          1:2.02-0.86.el7    @updates\n";
        let cu = parse_check_update(out);
        assert!(cu.skipped.is_empty(), "{:?}", cu.skipped);
        assert_eq!(
            cu.updates,
            [
                listed(
                    "NetworkManager-libnm",
                    "x86_64",
                    "1:1.18.8-2.el7_9",
                    "updates"
                ),
                listed("kernel", "x86_64", "3.10.0-1160.119.1.el7", "updates"),
                listed("openssl", "x86_64", "1:1.0.2k-26.el7_9", "updates"),
            ]
        );
        assert_eq!(cu.obsoletes.len(), 1);
        assert_eq!(cu.obsoletes[0].1.name, "grub2-tools");
        assert_eq!(cu.obsoletes[0].1.evr, "1:2.02-0.86.el7");
        // Noise is recorded, not fatal.
        let cu = parse_check_update(
            "Last metadata expiration check: 0:00:01 ago on Sun.\nfoo.x86_64 1.0 repo\nbar.noarch\n",
        );
        assert!(cu.updates.is_empty());
        assert_eq!(cu.skipped.len(), 3, "{:?}", cu.skipped);
        assert_eq!(parse_check_update(""), CheckUpdate::default());
    }

    #[test]
    fn updateinfo_real_output() {
        let al = parse_updateinfo_list(fixture!("updateinfo-list-updates.out"));
        assert!(al.skipped.is_empty(), "{:?}", al.skipped);
        assert_eq!(al.entries.len(), 7);
        let adv = |id: &str, kind: Option<&str>, sev: Option<&str>| Advisory {
            id: id.into(),
            kind: kind.map(Into::into),
            severity: sev.map(Into::into),
        };
        let e = &al.entries;
        assert_eq!(
            e[0].advisory,
            adv("PCTEST-2024:0003", Some("security"), Some("Moderate"))
        );
        assert_eq!((e[0].name.as_str(), e[0].evr.as_str()), (LONG, "1.1-1"));
        assert_eq!(
            e[1].advisory,
            adv("PCTEST-2024:0006", Some("security"), Some("Critical"))
        );
        assert_eq!(
            e[2].advisory,
            adv("PCTEST-2024:0004", Some("enhancement"), None)
        );
        assert_eq!(
            (e[2].name.as_str(), e[2].evr.as_str(), e[2].arch.as_str()),
            ("pc-epoch", "2:1.5-1", "noarch")
        );
        assert_eq!(
            e[3].advisory,
            adv("PCTEST-2024:0005", Some("security"), None),
            "Unknown/Sec."
        );
        assert_eq!(
            e[5].advisory,
            adv("PCTEST-2024:0001", Some("security"), Some("Important"))
        );
        assert_eq!(e[5].name, "pc-sec");
        assert_eq!(e[6].advisory, adv("PCTEST-2024:0002", Some("bugfix"), None));
        let one = parse_updateinfo_list(fixture!("updateinfo-list-updates-pc-sec.out"));
        assert_eq!(one.entries, [e[5].clone()]);
        // A real AlmaLinux line, yum 3's closing line, and garbage.
        let al = parse_updateinfo_list(
            "ALSA-2024:2447 Moderate/Sec.  openssl-libs-1:3.0.7-27.el9.x86_64\nupdateinfo list done\nRHBA-1 weird pkg-1-1.x86_64\nonly two\n",
        );
        assert_eq!(al.entries.len(), 1);
        assert_eq!(al.entries[0].name, "openssl-libs");
        assert_eq!(al.entries[0].evr, "1:3.0.7-27.el9");
        assert_eq!(al.entries[0].arch, "x86_64");
        assert_eq!(al.skipped.len(), 2, "{:?}", al.skipped);
    }

    #[test]
    fn nevra() {
        assert_eq!(
            parse_nevra("openssl-libs-1:3.0.7-27.el9.x86_64"),
            Some(("openssl-libs", "1:3.0.7-27.el9", "x86_64"))
        );
        assert_eq!(
            parse_nevra("pc-sec-1.1-1.noarch"),
            Some(("pc-sec", "1.1-1", "noarch"))
        );
        assert_eq!(parse_nevra("foo.x86_64"), None);
        assert_eq!(parse_nevra("foo-1.x86_64"), None);
        assert_eq!(parse_nevra("-1-1.x86_64"), None);
        assert_eq!(parse_nevra("a-x:1-1.noarch"), None);
    }

    #[test]
    fn updates_from_real_outputs() {
        let cu = parse_check_update(fixture!("check-update.out"));
        let al = parse_updateinfo_list(fixture!("updateinfo-list-updates.out"));
        let u = updates_report(&cu, &al, &base_inventory());
        assert!(u.skipped.is_empty());
        assert_eq!(u.updates.len(), 8, "pc-new once although it also obsoletes");
        let get = |n: &str| u.updates.iter().find(|x| x.name == n).unwrap();
        let sec = get("pc-sec");
        assert_eq!(sec.current_version.as_deref(), Some("1.0-1"));
        assert_eq!(sec.candidate_version, "1.1-1");
        assert_eq!(sec.origins, ["pctest-updates"]);
        assert!(sec.security);
        assert_eq!(sec.advisories.len(), 1);
        assert_eq!(sec.advisories[0].severity.as_deref(), Some("Important"));
        let upd = get("pc-upd");
        assert!(!upd.security, "a bugfix advisory is not a security one");
        assert_eq!(upd.advisories[0].kind.as_deref(), Some("bugfix"));
        let ep = get("pc-epoch");
        assert_eq!(ep.current_version.as_deref(), Some("1:2.0-1"));
        assert_eq!(ep.candidate_version, "2:1.5-1");
        assert!(ep.security, "Unknown/Sec. is still security");
        assert_eq!(ep.advisories.len(), 2);
        let new = get("pc-new");
        assert!(!new.security && new.advisories.is_empty());
        assert_eq!(u.removals, ["pc-victim"]);
    }

    #[test]
    fn list_real_output() {
        let l = parse_list(fixture!("list-pc-sec.out"));
        assert!(l.skipped.is_empty());
        assert_eq!(
            l.installed,
            [listed("pc-sec", "noarch", "1.0-1", "@System")]
        );
        assert_eq!(
            l.available,
            [listed("pc-sec", "noarch", "1.1-1", "pctest-updates")]
        );
        let l = parse_list(fixture!("list-pc-epoch.out"));
        assert_eq!(l.installed[0].evr, "1:2.0-1");
        assert_eq!(l.available[0].evr, "2:1.5-1");
        let l = parse_list(fixture!("list-pc-dep.out"));
        assert!(l.installed.is_empty());
        assert_eq!(l.available.len(), 1);
        let l = parse_list(fixture!("list-pc-victim.out"));
        assert_eq!(l.installed.len(), 1);
        assert!(l.available.is_empty());
        assert_eq!(
            parse_list(fixture!("list-pc-nope.out")),
            PackageList::default()
        );
        // yum 3's name for upgrades.
        let l = parse_list(
            "Installed Packages\nbash.x86_64  4.2.46-34.el7  @base\nUpdated Packages\nbash.x86_64  4.2.46-35.el7_9  updates\n",
        );
        assert_eq!(l.available[0].evr, "4.2.46-35.el7_9");
    }

    fn plan(f: &str) -> Plan {
        parse_transaction(f)
    }

    fn item(action: Action, name: &str, evr: &str) -> PlanItem {
        PlanItem {
            action,
            name: name.into(),
            arch: "noarch".into(),
            evr: evr.into(),
            repo: "pctest-updates".into(),
        }
    }

    #[test]
    fn transaction_real_outputs() {
        let p = plan(fixture!("simulate-upgrade.out"));
        assert_eq!(p.items, [item(Action::Upgrade, "pc-sec", "1.1-1")]);
        assert!(p.skipped.is_empty() && p.replaced.is_empty() && p.no_match.is_empty());
        let tx = p.transaction(&base_inventory());
        assert_eq!(
            tx.changes,
            [Change {
                name: "pc-sec".into(),
                from: Some("1.0-1".into()),
                to: Some("1.1-1".into())
            }]
        );
        assert!(super::super::refusals(Family::Dnf, &tx, &[target("pc-sec", "1.1-1")]).is_empty());

        let p = plan(fixture!("simulate-obsoletes.out"));
        assert_eq!(p.items, [item(Action::Upgrade, "pc-new", "1.1-1")]);
        assert_eq!(
            p.replaced,
            [Replaced {
                name: "pc-victim".into(),
                arch: "noarch".into(),
                evr: "1.0-1".into(),
                by: "pc-new".into()
            }]
        );
        let tx = p.transaction(&base_inventory());
        assert_eq!(
            super::super::refusals(Family::Dnf, &tx, &[target("pc-new", "1.1-1")]),
            ["would remove pc-victim"]
        );

        let p = plan(fixture!("simulate-epoch.out"));
        assert_eq!(p.items, [item(Action::Upgrade, "pc-epoch", "2:1.5-1")]);
        let tx = p.transaction(&base_inventory());
        assert_eq!(tx.changes[0].from.as_deref(), Some("1:2.0-1"));
        assert!(
            super::super::refusals(Family::Dnf, &tx, &[target("pc-epoch", "2:1.5-1")]).is_empty(),
            "the epoch makes 2:1.5 newer than 1:2.0"
        );

        let p = plan(fixture!("simulate-deps.out"));
        assert!(p.skipped.is_empty(), "{:?}", p.skipped);
        assert_eq!(
            p.items,
            [
                item(Action::Upgrade, LONG, "1.1-1"),
                item(Action::Upgrade, "pc-needs", "1.1-1"),
                item(Action::Install, "pc-dep", "1.0-1"),
                item(Action::Install, "pc-weak", "1.0-1"),
            ]
        );
        let tx = p.transaction(&base_inventory());
        assert_eq!(
            super::super::refusals(
                Family::Dnf,
                &tx,
                &[target("pc-needs", "1.1-1"), target(LONG, "1.1-1")]
            ),
            [
                "would install pc-dep 1.0-1, which was not approved",
                "would install pc-weak 1.0-1, which was not approved"
            ]
        );

        let p = plan(fixture!("simulate-conflicts-all.out"));
        assert_eq!(p.items.len(), 9);
        assert_eq!(p.items[8], item(Action::Skip, "pc-clash", "1.1-1"));
        assert!(p.skipped.is_empty(), "{:?}", p.skipped);
        assert_eq!(p.replaced.len(), 1);
        assert_eq!(
            p.replaced[0].by, "pc-new",
            "replacing belongs to the row above it"
        );
        assert_eq!(p.items[7], item(Action::Install, "pc-dep", "1.0-1"));

        let p = plan(fixture!("simulate-downgrade.out"));
        let tx = p.transaction(&base_inventory());
        assert_eq!(
            super::super::refusals(Family::Dnf, &tx, &[target("pc-down", "0.9-1")]),
            ["would downgrade pc-down from 1.0-1 to 0.9-1"]
        );
        let tx = p.transaction(&[]);
        assert_eq!(
            tx.skipped.len(),
            1,
            "a downgrade from an unknown version is refused"
        );

        let p = plan(fixture!("simulate-remove.out"));
        assert_eq!(p.items[0].action, Action::Remove);
        assert_eq!(p.items[0].repo, "@System");
        let tx = p.transaction(&base_inventory());
        assert_eq!(tx.changes[0].to, None);
    }

    fn with_err(name: &str) -> String {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/dnf/");
        let out = std::fs::read_to_string(format!("{dir}{name}.out")).unwrap();
        let err = std::fs::read_to_string(format!("{dir}{name}.err")).unwrap_or_default();
        format!("{out}\n{err}")
    }

    #[test]
    fn targets_dnf_leaves_out() {
        let inv = base_inventory();
        let p = plan(&with_err("simulate-no-match"));
        assert_eq!(p.no_match, ["pc-upd-9.9-1"]);
        let why = p.missing_targets(
            "dnf",
            &[target("pc-sec", "1.1-1"), target("pc-upd", "9.9-1")],
            &inv,
        );
        assert_eq!(why.len(), 1, "{why:?}");
        assert!(
            why[0].starts_with("pc-upd 9.9-1 is not available from the enabled repositories"),
            "{why:?}"
        );
        assert!(why[0].contains("installed: 1.0-1"), "{why:?}");

        let p = plan(&with_err("simulate-only-no-match"));
        assert_eq!(p.no_match, ["pc-sec-9.9-1"]);
        assert!(p.items.is_empty());

        let p = plan(&with_err("simulate-older"));
        assert!(p.nothing_to_do && p.items.is_empty());
        let why = p.missing_targets("dnf", &[target("pc-down", "0.9-1")], &inv);
        assert_eq!(
            why,
            [
                "dnf would not install pc-down 0.9-1 (installed: 1.0-1): only an available version newer than the installed one can be installed"
            ]
        );
        // Already at the target version: nothing to do, nothing refused.
        assert!(
            p.missing_targets("dnf", &[target("pc-down", "1.0-1")], &inv)
                .is_empty()
        );
        assert!(
            p.missing_targets("dnf", &[target("pc-down", "0:1.0-1")], &inv)
                .is_empty()
        );

        let p = plan(&with_err("simulate-skip-conflict"));
        assert!(p.skipped.is_empty(), "{:?}", p.skipped);
        assert_eq!(
            p.items,
            [
                item(Action::Upgrade, "pc-upd", "1.1-1"),
                item(Action::Skip, "pc-clash", "1.1-1")
            ]
        );
        let why = p.missing_targets(
            "dnf",
            &[target("pc-clash", "1.1-1"), target("pc-upd", "1.1-1")],
            &inv,
        );
        assert_eq!(why.len(), 1);
        assert!(
            why[0].starts_with("dnf would skip pc-clash 1.1-1: it conflicts"),
            "{why:?}"
        );
        assert_eq!(
            p.transaction(&inv).changes.len(),
            1,
            "skipped packages do not change"
        );

        let p = plan(&with_err("simulate-best-conflict"));
        assert_eq!(p, Plan::default());

        let p = plan(&with_err("simulate-upgrade"));
        assert!(
            p.missing_targets("dnf", &[target("pc-sec", "1.1-1")], &inv)
                .is_empty()
        );
        assert!(
            p.missing_targets("dnf", &[target("pc-sec", "0:1.1-1")], &inv)
                .is_empty()
        );
    }

    #[test]
    fn transaction_wrapped_and_yum_layout() {
        // The yum 3 layout (its output.py: same columns, other section names), with a
        // name wider than its column wrapped the way fmtColumns wraps it.
        let out = "Resolving Dependencies\n\
Dependencies Resolved\n\
\n\
================================================================================\n \
Package                 Arch       Version                   Repository   Size\n\
================================================================================\n\
Updating:\n \
openssl                 x86_64     1:1.0.2k-26.el7_9         updates     494 k\n \
python-a-very-long-package-name-for-columns\n                         noarch     1.2-3.el7                 updates      12 k\n\
Installing for dependencies:\n \
libfoo                  x86_64     2.0-1.el7                 base         30 k\n\
Updating for dependencies:\n \
openssl-libs            x86_64     1:1.0.2k-26.el7_9         updates     1.2 M\n\
Removing for dependencies:\n \
oldthing                x86_64     0.1-1.el7                 @base        10 k\n\
\n\
Transaction Summary\n\
================================================================================\n\
Upgrade  3 Packages (+1 Dependent package)\n\
Exiting on user command\n";
        let p = plan(out);
        assert!(p.skipped.is_empty(), "{:?}", p.skipped);
        let got: Vec<(Action, &str, &str, &str)> = p
            .items
            .iter()
            .map(|i| (i.action, i.name.as_str(), i.evr.as_str(), i.arch.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (Action::Upgrade, "openssl", "1:1.0.2k-26.el7_9", "x86_64"),
                (
                    Action::Upgrade,
                    "python-a-very-long-package-name-for-columns",
                    "1.2-3.el7",
                    "noarch"
                ),
                (Action::Install, "libfoo", "2.0-1.el7", "x86_64"),
                (
                    Action::Upgrade,
                    "openssl-libs",
                    "1:1.0.2k-26.el7_9",
                    "x86_64"
                ),
                (Action::Remove, "oldthing", "0.1-1.el7", "x86_64"),
            ]
        );
        let p = plan("No package openssl-9.9-1.el7 available.\nError: Nothing to do\n");
        assert_eq!(p.no_match, ["openssl-9.9-1.el7"]);
    }

    #[test]
    fn module_sections_and_garbage_are_refusals() {
        let out = "====\n Package Arch Version Repository Size\n====\n\
Upgrading:\n pc-sec noarch 1.1-1 pctest-updates 6.0 k\n\
Enabling module streams:\n nodejs                20\n\
Upgrading:\n garbage\n\
Transaction Summary\n";
        let p = plan(out);
        assert_eq!(p.items.len(), 1);
        assert_eq!(p.skipped.len(), 2, "{:?}", p.skipped);
        assert!(
            p.skipped[0].contains("Enabling module streams"),
            "{:?}",
            p.skipped
        );
        let tx = p.transaction(&[]);
        assert_eq!(
            super::super::refusals(Family::Dnf, &tx, &[target("pc-sec", "1.1-1")]).len(),
            2
        );
    }

    #[test]
    fn locks() {
        let err = include_str!("../../tests/data/dnf/install-locked.err");
        assert_eq!(lock_message(err), Some("RPMDB already locked by 4242"));
        assert_eq!(
            include_str!("../../tests/data/dnf/install-locked.code").trim(),
            "200"
        );
        assert!(lock_message("Waiting for process with pid 77 to finish.").is_some());
        assert!(
            lock_message("Existing lock /var/run/yum.pid: another copy is running as pid 77.")
                .is_some()
        );
        assert_eq!(lock_message(fixture!("install.out")), None);
        assert_eq!(lock_message("metadata already locked by someone"), None);
    }

    #[test]
    fn reboot_outputs() {
        let code = |s: &str| s.trim().parse::<i32>().ok();
        assert_eq!(
            parse_needs_restarting(
                code(fixture!("needs-restarting-required.code")),
                fixture!("needs-restarting-required.out")
            ),
            Some(true)
        );
        assert_eq!(
            parse_needs_restarting(
                code(fixture!("needs-restarting-not-necessary.code")),
                fixture!("needs-restarting-not-necessary.out")
            ),
            Some(false)
        );
        assert_eq!(
            parse_needs_restarting(
                code(fixture!("needs-restarting-no-plugin.code")),
                fixture!("needs-restarting-no-plugin.out")
            ),
            None
        );
        let newest = parse_kernel_query(fixture!("rpm-q-kernel.out"));
        assert_eq!(newest.as_deref(), Some("5.14.0-427.18.1.el9_4.noarch"));
        assert!(kernel_reboot_needed(
            newest.as_deref(),
            "5.14.0-427.13.1.el9_4.noarch\n"
        ));
        assert!(!kernel_reboot_needed(
            newest.as_deref(),
            "5.14.0-427.18.1.el9_4.noarch\n"
        ));
        assert!(!kernel_reboot_needed(None, "6.1.0-28-amd64"));
        assert_eq!(
            parse_kernel_query("package kernel is not installed\n"),
            None
        );
    }

    #[test]
    fn labels() {
        assert_eq!(
            parse_label("Low/Sec."),
            Some((Some("security".into()), Some("Low".into())))
        );
        assert_eq!(
            parse_label("newpackage"),
            Some((Some("newpackage".into()), None))
        );
        assert_eq!(parse_label("/Sec."), None);
        assert_eq!(parse_label("Sec."), None);
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,400}") {
            let _ = parse_check_update(&s);
            let _ = parse_updateinfo_list(&s);
            let _ = parse_list(&s);
            let _ = parse_transaction(&s);
            let _ = parse_transaction(&format!("===\n===\nUpgrading:\n {s}\n     replacing {s}"));
            let _ = parse_kernel_query(&s);
            let _ = lock_message(&s);
            let _ = parse_nevra(&s);
        }

        #[test]
        fn table_rows_round_trip(
            rows in proptest::collection::vec((
                "[a-z][a-z0-9_+-]{0,30}",
                "(noarch|x86_64|i686)",
                proptest::option::of(1u32..40),
                "[0-9][0-9a-z.+~^]{0,8}",
                "[0-9][0-9a-z._]{0,8}",
                "[a-z][a-z0-9_-]{0,15}",
                any::<bool>(),
                any::<bool>(),
            ), 1..6),
        ) {
            // Each row printed the way dnf's fmtColumns prints it: one space in, fields
            // padded to 20 columns, or wrapped after the name when `wrap`.
            let mut out = String::from("Dependencies resolved.\n====\n Package Arch Version Repository Size\n====\nUpgrading:\n");
            let mut want = Vec::new();
            for (name, arch, epoch, v, r, repo, wrap, kib) in &rows {
                let evr = match epoch { Some(e) => format!("{e}:{v}-{r}"), None => format!("{v}-{r}") };
                let size = if *kib { "6.0 k" } else { "14" };
                if *wrap {
                    out.push_str(&format!(" {name}\n{:22}{arch} {evr} {repo} {size}\n", ""));
                } else {
                    out.push_str(&format!(" {name:<20} {arch:<8} {evr:<16} {repo:<16} {size}\n"));
                }
                want.push(PlanItem { action: Action::Upgrade, name: name.clone(), arch: arch.clone(), evr, repo: repo.clone() });
            }
            out.push_str("\nTransaction Summary\n====\n");
            let p = parse_transaction(&out);
            prop_assert!(p.skipped.is_empty(), "{:?}\n{}", p.skipped, out);
            prop_assert_eq!(p.items, want);
        }

        #[test]
        fn check_update_lines_round_trip(
            rows in proptest::collection::vec((
                "[a-zA-Z][a-zA-Z0-9_+-]{0,50}",
                "(noarch|x86_64|aarch64)",
                "([1-9][0-9]?:)?[0-9][0-9a-z.+~^]{0,10}-[0-9][0-9a-z._]{0,10}",
                "[a-z][a-z0-9_-]{0,20}",
                0usize..3,
            ), 0..6),
        ) {
            let mut out = String::from("\n");
            for (name, arch, evr, repo, wrap) in &rows {
                let na = format!("{name}.{arch}");
                match wrap {
                    0 => out.push_str(&format!("{na:<40} {evr:<22} {repo}\n")),
                    1 => out.push_str(&format!("{na}\n{:41}{evr:<22} {repo}\n", "")),
                    _ => out.push_str(&format!("{na:<40} {evr}\n{:64}{repo}\n", "")),
                }
            }
            let cu = parse_check_update(&out);
            prop_assert!(cu.skipped.is_empty(), "{:?}", cu.skipped);
            let got: Vec<(String, String, String, String)> = cu.updates.into_iter().map(|l| (l.name, l.arch, l.evr, l.repo)).collect();
            let want: Vec<(String, String, String, String)> = rows.into_iter().map(|(n, a, e, r, _)| (n, a, e, r)).collect();
            prop_assert_eq!(got, want);
        }

        #[test]
        fn advisory_lines_round_trip(
            id in "[A-Z]{2,6}-20[0-9]{2}:[0-9]{4}",
            sev in proptest::option::of("(Critical|Important|Moderate|Low)"),
            name in "[a-z][a-z0-9_+-]{0,30}",
            evr in "([1-9]:)?[0-9][0-9a-z.+~^]{0,8}-[0-9][0-9a-z._]{0,8}",
            arch in "(noarch|x86_64)",
        ) {
            let label = match &sev { Some(s) => format!("{s}/Sec."), None => "bugfix".into() };
            let al = parse_updateinfo_list(&format!("{id} {label:<14} {name}-{evr}.{arch}\n"));
            prop_assert!(al.skipped.is_empty(), "{:?}", al.skipped);
            prop_assert_eq!(al.entries.len(), 1);
            let e = &al.entries[0];
            prop_assert_eq!(&e.advisory.id, &id);
            prop_assert_eq!(&e.advisory.severity, &sev);
            prop_assert_eq!(e.advisory.kind.as_deref(), Some(if sev.is_some() { "security" } else { "bugfix" }));
            prop_assert_eq!(&e.name, &name);
            prop_assert_eq!(&e.evr, &evr);
            prop_assert_eq!(&e.arch, &arch);
        }
    }
}
