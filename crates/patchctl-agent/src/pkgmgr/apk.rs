//! The apk backend (Alpine, apk-tools 2.x): the inventory read from the installed
//! database directly, `apk update` to refresh, `apk list --upgradable` for updates,
//! `apk policy` for one package's candidate, `apk add --simulate` then `apk add` to
//! install exactly the approved versions.
//!
//! Alpine's repositories carry no security flag and no advisories: every update is
//! reported with `security: false` and no advisories, and the platform decides by
//! correlating the source package (the inventory's `source_name`, apk's origin) with
//! Alpine's security database. Nothing is guessed from version strings.
//!
//! Why `apk list --upgradable` and not `apk version -l '<'`: apk-tools 2.12 to 2.14
//! print `apk version`'s `NAME-VERSION` column through a 41-byte buffer, so long names
//! come out cut and glued to the `<`; `apk list` prints full names, the architecture
//! and the origin.
//!
//! Output formats follow apk-tools 2.14 (`src/app_list.c`, `src/app_policy.c`,
//! `src/commit.c`, `src/database.c`); every parser here never panics and records what
//! it could not read.

use std::cmp::Ordering;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use patchctl_proto::agent::InstalledPackage;
use patchctl_proto::command::{AvailableUpdate, PackageTarget};
use patchctl_proto::validate::PackageName;

use super::{
    Backend, Candidate, Change, Family, InstallRun, LOCK_TIMEOUT_SECS, Transaction, Updates,
};
use crate::exec::{ExecRequest, Executor};
use crate::inventory::apk as db;

/// apk's path.
pub const APK: &str = "/sbin/apk";

/// Where the kernel tells its release (`6.6.49-0-lts`).
pub const KERNEL_RELEASE: &str = "/proc/sys/kernel/osrelease";

/// The longest excerpt of a line quoted in a skip reason.
const MAX_QUOTE: usize = 120;

/// Settings of the apk backend. The default is production: the system at `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApkOptions {
    /// The system's root: `/` in production; anything else is passed as `--root`.
    pub root: PathBuf,
    /// The file the running kernel's release is read from.
    pub kernel_release: PathBuf,
    /// How long a changing run waits for apk's database lock (`--wait`).
    pub lock_wait_secs: u64,
}

impl Default for ApkOptions {
    fn default() -> Self {
        ApkOptions {
            root: PathBuf::from("/"),
            kernel_release: PathBuf::from(KERNEL_RELEASE),
            lock_wait_secs: LOCK_TIMEOUT_SECS,
        }
    }
}

impl ApkOptions {
    /// `apk APPLET [--root R] --no-progress`: the applet first, so apk never takes a
    /// later argument for it.
    fn base(&self, applet: &str) -> Vec<String> {
        let mut argv = vec![APK.to_owned(), applet.to_owned()];
        if self.root != Path::new("/") {
            argv.push("--root".into());
            argv.push(self.root.display().to_string());
        }
        argv.push("--no-progress".into());
        argv
    }

    fn wait(&self, argv: &mut Vec<String>) {
        argv.push("--wait".into());
        argv.push(self.lock_wait_secs.to_string());
    }

    /// The installed database under the root.
    pub fn installed_path(&self) -> PathBuf {
        self.root.join(db::INSTALLED_PATH.trim_start_matches('/'))
    }
}

/// `apk update --wait N`: refresh the repository indexes (needs root).
pub fn update_argv(o: &ApkOptions) -> Vec<String> {
    let mut argv = o.base("update");
    o.wait(&mut argv);
    argv
}

/// `apk list --upgradable`: every available version newer than the installed one.
/// Read-only: takes no lock.
pub fn upgradable_argv(o: &ApkOptions) -> Vec<String> {
    let mut argv = o.base("list");
    argv.push("--upgradable".into());
    argv
}

/// `apk policy -- NAME`: the versions of one package and the repositories that carry
/// each. Read-only.
pub fn policy_argv(o: &ApkOptions, name: &PackageName) -> Vec<String> {
    let mut argv = o.base("policy");
    argv.push("--".into());
    argv.push(name.to_string());
    argv
}

fn targets(argv: &mut Vec<String>, targets: &[PackageTarget]) {
    argv.push("--".into());
    for t in targets {
        // Validated names and versions: no leading '-', no metacharacters.
        argv.push(format!("{}={}", t.name, t.version));
    }
}

/// `apk add --wait N --simulate -- NAME=VERSION...`: what installing exactly the
/// approved versions would do, without doing it.
///
/// No `--upgrade`: the `=VERSION` constraint already selects the version, and
/// `--upgrade` would also upgrade every dependency of the named packages to its
/// latest version, which the install gate would then refuse as not approved.
pub fn add_simulate_argv(o: &ApkOptions, t: &[PackageTarget]) -> Vec<String> {
    let mut argv = o.base("add");
    o.wait(&mut argv);
    argv.push("--simulate".into());
    targets(&mut argv, t);
    argv
}

/// `apk add --wait N -- NAME=VERSION...`: installs exactly the approved versions,
/// waiting a bounded time for the database lock.
pub fn add_argv(o: &ApkOptions, t: &[PackageTarget]) -> Vec<String> {
    let mut argv = o.base("add");
    o.wait(&mut argv);
    targets(&mut argv, t);
    argv
}

/// The request [`ApkBackend::refresh`] runs.
pub fn update_request(o: &ApkOptions) -> ExecRequest {
    ExecRequest::from_argv(&update_argv(o))
        .with_timeout(Duration::from_secs(o.lock_wait_secs + 600))
}

/// The request [`ApkBackend::simulate`] runs.
pub fn simulate_request(o: &ApkOptions, t: &[PackageTarget]) -> ExecRequest {
    ExecRequest::from_argv(&add_simulate_argv(o, t))
        .with_timeout(Duration::from_secs(o.lock_wait_secs + 300))
}

/// The request [`ApkBackend::install`] runs.
pub fn install_request(o: &ApkOptions, t: &[PackageTarget]) -> ExecRequest {
    ExecRequest::from_argv(&add_argv(o, t))
        .with_timeout(Duration::from_secs(o.lock_wait_secs + 1800))
}

/// True when apk gave up because another process holds its database lock
/// (`ERROR: Unable to lock database: ...`, after `--wait` ran out or without it).
pub fn is_locked(stderr: &str) -> bool {
    stderr.contains("Unable to lock database")
}

/// True when `v` is a version as apk writes it: starts with a digit and follows
/// apk-tools' version grammar (`1.2.3`, `1.2a`, `1.0_rc1_p2`, `2.0~a1b2-r3`, `-rN`
/// last). A port of apk-tools' tokenizer (`src/version.c`), used to split
/// `NAME-VERSION` strings; comparisons are [`Family::compare`]'s business.
pub fn valid_version(v: &str) -> bool {
    #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
    enum T {
        DigitOrZero,
        Digit,
        Letter,
        Suffix,
        SuffixNo,
        CommitHash,
        RevisionNo,
    }
    const SUFFIXES: [&str; 9] = ["alpha", "beta", "pre", "rc", "cvs", "svn", "git", "hg", "p"];
    let b = v.as_bytes();
    if !b.first().is_some_and(u8::is_ascii_digit) {
        return false;
    }
    let mut i = 0;
    let mut t = T::Digit;
    loop {
        // The token's value.
        match t {
            T::DigitOrZero | T::Digit | T::SuffixNo | T::RevisionNo => {
                let start = i;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
                // Stricter than apk, which reads an empty number as 0: `1..2`,
                // `1.` and `1-r` are refused.
                if t != T::SuffixNo && i == start {
                    return false;
                }
            }
            T::Letter => i += 1,
            T::Suffix => {
                let Some(s) = SUFFIXES.iter().find(|s| b[i..].starts_with(s.as_bytes())) else {
                    return false;
                };
                i += s.len();
                if i == b.len() {
                    return true;
                }
                t = T::SuffixNo;
                continue;
            }
            T::CommitHash => {
                let start = i;
                while i < b.len() && b[i].is_ascii_hexdigit() {
                    i += 1;
                }
                if i == start {
                    return false;
                }
            }
        }
        if i >= b.len() {
            return true;
        }
        // The next token's type, from its first byte.
        let c = b[i];
        let n = if matches!(t, T::Digit | T::DigitOrZero) && c.is_ascii_lowercase() {
            T::Letter
        } else if t == T::Letter && c.is_ascii_digit() {
            T::Digit
        } else if t == T::Suffix && c.is_ascii_digit() {
            T::SuffixNo
        } else {
            i += 1;
            match c {
                b'.' => T::DigitOrZero,
                b'_' => T::Suffix,
                b'~' => T::CommitHash,
                b'-' if b.get(i) == Some(&b'r') => {
                    i += 1;
                    T::RevisionNo
                }
                _ => return false,
            }
        };
        let allowed_back = (n == T::DigitOrZero && t == T::Digit)
            || (n == T::Suffix && t == T::SuffixNo)
            || (n == T::Digit && t == T::Letter);
        if n < t && !allowed_back {
            return false;
        }
        // One revision and one commit hash at most.
        if n == t && matches!(t, T::RevisionNo | T::CommitHash) {
            return false;
        }
        t = n;
    }
}

/// Splits apk's `NAME-VERSION` (`libcrypto3-3.3.2-r0`) the way apk-tools does: the
/// version starts after the last `-` that is followed by a digit, stepping over at
/// most one other `-` (the one of `-rN`). `None` when there is no such `-`, the name
/// is empty or the rest is not a valid version ([`valid_version`]).
pub fn split_pkgver(s: &str) -> Option<(&str, &str)> {
    let b = s.as_bytes();
    let mut dashes = 0;
    let mut i = b.len().checked_sub(2)?;
    loop {
        if b[i] == b'-' {
            if b[i + 1].is_ascii_digit() {
                break;
            }
            dashes += 1;
            if dashes >= 2 {
                return None;
            }
        }
        i = i.checked_sub(1)?;
    }
    let (name, version) = (&s[..i], &s[i + 1..]);
    (!name.is_empty() && valid_version(version)).then_some((name, version))
}

/// One line of `apk list --upgradable`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Package name.
    pub name: String,
    /// The available version.
    pub version: String,
    /// Architecture.
    pub arch: String,
    /// The origin (source package).
    pub origin: String,
    /// The license, as the index states it.
    pub license: String,
    /// The installed version it would replace.
    pub from: String,
}

/// What `apk list --upgradable` said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Upgradable {
    /// The lines read, in output order (a package may appear more than once when
    /// several repositories carry newer versions).
    pub listed: Vec<Listed>,
    /// Lines that could not be read, with why.
    pub skipped: Vec<String>,
}

/// Parses `apk list --upgradable`:
/// `NAME-VERSION ARCH {ORIGIN} (LICENSE) [upgradable from: NAME-OLDVERSION]`.
/// Never panics.
pub fn parse_upgradable(output: &str) -> Upgradable {
    let mut out = Upgradable::default();
    for line in output.lines() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        match parse_listed(line) {
            Ok(l) => out.listed.push(l),
            Err(why) => out.skipped.push(format!(
                "{why}: {:?}",
                crate::ops::truncate(line, MAX_QUOTE)
            )),
        }
    }
    out
}

fn parse_listed(line: &str) -> Result<Listed, &'static str> {
    let (pkgver, rest) = line.split_once(' ').ok_or("not an apk list line")?;
    let (name, version) = split_pkgver(pkgver).ok_or("unreadable NAME-VERSION")?;
    let (arch, rest) = rest.split_once(' ').ok_or("no architecture")?;
    let rest = rest.strip_prefix('{').ok_or("no {origin}")?;
    let (origin, rest) = rest.split_once("} (").ok_or("no {origin} (license)")?;
    const FROM: &str = ") [upgradable from: ";
    let at = rest.rfind(FROM).ok_or("no [upgradable from: ...]")?;
    let license = &rest[..at];
    let from = rest[at + FROM.len()..]
        .strip_suffix(']')
        .ok_or("no closing ]")?;
    let from = match from.strip_prefix(name).and_then(|f| f.strip_prefix('-')) {
        Some(v) if valid_version(v) => v,
        _ => return Err("the installed NAME-VERSION names another package"),
    };
    if arch.is_empty() || origin.is_empty() || origin.contains(char::is_whitespace) {
        return Err("empty architecture or unreadable origin");
    }
    Ok(Listed {
        name: name.to_owned(),
        version: version.to_owned(),
        arch: arch.to_owned(),
        origin: origin.to_owned(),
        license: license.to_owned(),
        from: from.to_owned(),
    })
}

impl Upgradable {
    /// One update per package: the highest listed version by `cmp` when a package is
    /// listed more than once. When `cmp` cannot order two versions, the first listed
    /// is kept and the choice recorded in `skipped`. Alpine carries no security flag,
    /// so `security` is false and `advisories` and `origins` are empty.
    pub fn updates(&self, cmp: impl Fn(&str, &str) -> Option<Ordering>) -> Updates {
        let mut updates: Vec<AvailableUpdate> = Vec::new();
        let mut skipped = self.skipped.clone();
        for l in &self.listed {
            if let Some(u) = updates.iter_mut().find(|u| u.name == l.name) {
                match cmp(&l.version, &u.candidate_version) {
                    Some(Ordering::Greater) => u.candidate_version = l.version.clone(),
                    Some(_) => {}
                    None => skipped.push(format!(
                        "{} is listed with several versions and they cannot be compared; kept {}, not {}",
                        l.name, u.candidate_version, l.version
                    )),
                }
                continue;
            }
            updates.push(AvailableUpdate {
                name: l.name.clone(),
                arch: l.arch.clone(),
                current_version: Some(l.from.clone()),
                candidate_version: l.version.clone(),
                origins: Vec::new(),
                security: false,
                advisories: Vec::new(),
            });
        }
        Updates {
            updates,
            removals: Vec::new(),
            skipped,
        }
    }
}

/// One version of a package as `apk policy` lists it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyVersion {
    /// The version.
    pub version: String,
    /// True when this version is the installed one.
    pub installed: bool,
    /// Repositories carrying it: `URL` for untagged repositories, `@TAG URL` for
    /// tagged (pinned) ones.
    pub repos: Vec<String>,
}

impl PolicyVersion {
    /// True when an untagged repository carries it: only those are candidates for
    /// a package that was not installed from a tag.
    pub fn untagged(&self) -> bool {
        self.repos.iter().any(|r| !r.starts_with('@'))
    }
}

/// What `apk policy NAME` said of one package.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// Every version listed, in output order.
    pub versions: Vec<PolicyVersion>,
    /// Lines that could not be read, with why.
    pub skipped: Vec<String>,
}

/// The line apk prints under the installed version (`lib/apk/db` + `/installed`).
const INSTALLED_MARK: &str = "lib/apk/db/installed";

/// Parses `apk policy` output for `name`:
///
/// ```text
/// openssl policy:
///   3.3.1-r3:
///     lib/apk/db/installed
///   3.3.2-r0:
///     https://mirror.example/alpine/v3.20/main
///   3.4.0-r1:
///     @edge https://mirror.example/alpine/edge/main
/// ```
///
/// Blocks of other names are ignored. Never panics.
pub fn parse_policy(output: &str, name: &str) -> Policy {
    let mut p = Policy::default();
    let mut mine = false;
    for line in output.lines() {
        let line = line.trim_end_matches(['\r', ' ']);
        if line.is_empty() {
            continue;
        }
        if let Some(n) = line.strip_suffix(" policy:") {
            if !n.starts_with(' ') {
                mine = n == name;
                continue;
            }
        }
        if !mine {
            continue;
        }
        if let Some(entry) = line.strip_prefix("    ") {
            let entry = entry.trim();
            match p.versions.last_mut() {
                Some(v) if entry == INSTALLED_MARK => v.installed = true,
                Some(v) if !entry.is_empty() && !entry.contains(char::is_control) => {
                    v.repos.push(entry.to_owned())
                }
                _ => p.skipped.push(format!(
                    "a repository before any version: {:?}",
                    crate::ops::truncate(line, MAX_QUOTE)
                )),
            }
        } else if let Some(v) = line
            .strip_prefix("  ")
            .and_then(|v| v.strip_suffix(':'))
            .filter(|v| !v.starts_with(' ') && valid_version(v))
        {
            p.versions.push(PolicyVersion {
                version: v.to_owned(),
                ..PolicyVersion::default()
            });
        } else {
            p.skipped.push(format!(
                "unreadable line: {:?}",
                crate::ops::truncate(line, MAX_QUOTE)
            ));
        }
    }
    p
}

impl Policy {
    /// The installed version, if any.
    pub fn installed(&self) -> Option<&str> {
        self.versions
            .iter()
            .find(|v| v.installed)
            .map(|v| v.version.as_str())
    }

    /// The version apk would pick for an untagged package: the highest by `cmp` of
    /// the installed version and the versions an untagged repository carries. When
    /// `cmp` cannot order them, the answer is known only if there is one such version.
    pub fn candidate(
        &self,
        cmp: impl Fn(&str, &str) -> Option<Ordering>,
    ) -> Option<&PolicyVersion> {
        let mut eligible = self.versions.iter().filter(|v| v.installed || v.untagged());
        let mut best = eligible.next()?;
        for v in eligible {
            match cmp(&v.version, &best.version) {
                Some(Ordering::Greater) => best = v,
                Some(_) => {}
                None => return None,
            }
        }
        Some(best)
    }
}

/// What a simulated (or real) `apk add` would do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Simulation {
    /// Every package the transaction touches; a `@tag` after a name is dropped.
    pub changes: Vec<Change>,
    /// Lines that looked like steps but could not be read, with why.
    pub skipped: Vec<String>,
}

impl Simulation {
    /// The simulation as a transaction for the install gate ([`super::refusals`]).
    pub fn transaction(&self) -> Transaction {
        Transaction {
            changes: self.changes.clone(),
            skipped: self.skipped.clone(),
        }
    }
}

/// Parses the steps apk prints for a transaction (`src/commit.c`):
///
/// ```text
/// (1/3) Upgrading libcrypto3 (3.3.1-r3 -> 3.3.2-r0)
/// (2/3) Installing foo (1.0-r0)
/// (3/3) Purging bar (2.0-r1)
/// ```
///
/// plus `Downgrading`, `Replacing` (same version, another build), `Re-installing`,
/// `[APK unavailable, skipped] Re-installing` and `Updating pinning`. Other lines
/// (`OK: ...`, `Executing ...`, warnings) are ignored; a `(i/n)` line that cannot be
/// read goes to `skipped`. Never panics.
pub fn parse_simulation(output: &str) -> Simulation {
    let mut sim = Simulation::default();
    for line in output.lines() {
        let line = line.trim_end_matches(['\r', ' ']);
        let Some(rest) = step(line) else {
            continue;
        };
        match parse_step(rest) {
            Some(c) => sim.changes.push(c),
            None => sim.skipped.push(format!(
                "unreadable step: {:?}",
                crate::ops::truncate(line, MAX_QUOTE)
            )),
        }
    }
    sim
}

/// The text after a `(i/n) ` counter.
fn step(line: &str) -> Option<&str> {
    let inner = line.strip_prefix('(')?;
    let (count, rest) = inner.split_once(") ")?;
    let (i, n) = count.split_once('/')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (digits(i) && digits(n)).then_some(rest)
}

fn parse_step(rest: &str) -> Option<Change> {
    const ACTIONS: [&str; 8] = [
        "[APK unavailable, skipped] Re-installing ",
        "Updating pinning ",
        "Re-installing ",
        "Installing ",
        "Purging ",
        "Upgrading ",
        "Downgrading ",
        "Replacing ",
    ];
    let (action, rest) = ACTIONS
        .iter()
        .find_map(|a| rest.strip_prefix(a).map(|r| (a.trim(), r)))?;
    let (name, versions) = rest.split_once(" (")?;
    let versions = versions.strip_suffix(')')?;
    // `name@tag` when the package comes from a tagged repository.
    let name = name.split_once('@').map_or(name, |(n, _)| n);
    if name.is_empty() || name.contains(char::is_whitespace) {
        return None;
    }
    let word = |v: &str| (!v.is_empty() && !v.contains(char::is_whitespace)).then(|| v.to_owned());
    let (from, to) = match action {
        "Installing" => (None, Some(word(versions)?)),
        "Purging" => (Some(word(versions)?), None),
        "Upgrading" | "Downgrading" | "Replacing" => {
            let (a, b) = versions.split_once(" -> ")?;
            (Some(word(a)?), Some(word(b)?))
        }
        _ => {
            let v = word(versions)?;
            (Some(v.clone()), Some(v))
        }
    };
    Some(Change {
        name: name.to_owned(),
        from,
        to,
    })
}

/// apk's own words for why it cannot do something: every `ERROR:` line of its output
/// with the indented lines that follow it, joined on one line (`unable to select
/// packages: openssl-3.3.1-r3: breaks: world[openssl=3.9.9-r0]`). Falls back to the
/// tail of stderr when there is no `ERROR:` line.
pub fn error_reason(stdout: &str, stderr: &str) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut in_error = false;
    for line in stderr.lines().chain(stdout.lines()) {
        let line = line.trim_end();
        if let Some(e) = line.strip_prefix("ERROR: ") {
            in_error = true;
            parts.push(e.trim().to_owned());
        } else if in_error && line.starts_with(' ') && !line.trim().is_empty() {
            if let Some(last) = parts.last_mut() {
                last.push(' ');
                last.push_str(line.trim());
            }
        } else {
            in_error = false;
        }
    }
    let reason = if parts.is_empty() {
        crate::ops::tail(stderr, 500).to_owned()
    } else {
        parts.join("; ")
    };
    crate::ops::truncate(&reason, 1000).to_owned()
}

fn locked_message(o: &ApkOptions) -> String {
    format!(
        "the apk database is locked by another process (waited {} s); nothing was changed, try again later",
        o.lock_wait_secs
    )
}

/// True when the system runs a kernel whose modules are gone: the kernel package was
/// upgraded (apk removes the old `/lib/modules/RELEASE`) and the new kernel waits for
/// a reboot. A system without `/lib/modules` (a container) never needs one for this,
/// nor does one whose running release (`kernel_release`) cannot be read.
pub fn kernel_reboot_required(root: &Path, kernel_release: &Path) -> bool {
    let Ok(release) = std::fs::read_to_string(kernel_release) else {
        return false;
    };
    super::kernel_modules_gone(&root.join("lib/modules"), &release)
}

/// Alpine: the installed database read directly, apk for everything else.
#[derive(Debug, Clone)]
pub struct ApkBackend {
    opts: ApkOptions,
}

impl ApkBackend {
    /// A backend with these settings ([`ApkOptions::default`] in production).
    pub fn new(opts: ApkOptions) -> Self {
        ApkBackend { opts }
    }

    /// The settings.
    pub fn options(&self) -> &ApkOptions {
        &self.opts
    }
}

fn compare(a: &str, b: &str) -> Option<Ordering> {
    Family::Apk.compare(a, b)
}

/// Runs `req` and returns its standard output, or why it failed in apk's words.
async fn run_ok(exec: &dyn Executor, req: ExecRequest, what: &str) -> Result<String, String> {
    super::run_ok(exec, req, what, error_reason).await
}

#[async_trait]
impl Backend for ApkBackend {
    fn family(&self) -> Family {
        Family::Apk
    }

    async fn inventory(&self, _exec: &dyn Executor) -> Result<Vec<InstalledPackage>, String> {
        let parsed = super::read_database(self.opts.installed_path(), db::read_installed).await?;
        for reason in &parsed.skipped {
            tracing::warn!(%reason, "skipped a malformed apk database entry");
        }
        Ok(parsed.packages)
    }

    async fn refresh(&self, exec: &dyn Executor) -> Result<(), String> {
        match exec.run(update_request(&self.opts)).await {
            Ok(o) if o.success() => Ok(()),
            Ok(o) if is_locked(&o.stderr) => Err(locked_message(&self.opts)),
            Ok(o) => Err(format!(
                "apk update failed (exit {:?}): {}; check /etc/apk/repositories and the network",
                o.code,
                error_reason(&o.stdout, &o.stderr)
            )),
            Err(e) => Err(e.to_string()),
        }
    }

    async fn updates(&self, exec: &dyn Executor) -> Result<Updates, String> {
        let out = run_ok(
            exec,
            ExecRequest::from_argv(&upgradable_argv(&self.opts)),
            "apk list --upgradable",
        )
        .await?;
        Ok(parse_upgradable(&out).updates(compare))
    }

    async fn candidate(
        &self,
        exec: &dyn Executor,
        name: &PackageName,
    ) -> Result<Candidate, String> {
        let out = run_ok(
            exec,
            ExecRequest::from_argv(&policy_argv(&self.opts, name)),
            "apk policy",
        )
        .await?;
        let p = parse_policy(&out, name.as_str());
        for reason in &p.skipped {
            tracing::warn!(%reason, "skipped a line of apk policy");
        }
        Ok(match p.candidate(compare) {
            Some(c) => Candidate {
                version: Some(c.version.clone()),
                origins: c
                    .repos
                    .iter()
                    .filter(|r| !r.starts_with('@'))
                    .cloned()
                    .collect(),
                // Alpine's repositories carry no security flag.
                security: false,
            },
            None => Candidate::default(),
        })
    }

    async fn simulate(
        &self,
        exec: &dyn Executor,
        targets: &[PackageTarget],
    ) -> Result<Transaction, String> {
        // apk add installs what is missing; install_updates only updates.
        let installed = self.inventory(exec).await?;
        let missing: Vec<&str> = targets
            .iter()
            .map(|t| t.name.as_str())
            .filter(|n| !installed.iter().any(|p| p.name == *n))
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "not installed, and install_updates only updates installed packages: {}",
                missing.join(", ")
            ));
        }
        let o = match exec.run(simulate_request(&self.opts, targets)).await {
            Ok(o) => o,
            Err(e) => return Err(e.to_string()),
        };
        if is_locked(&o.stderr) {
            return Err(locked_message(&self.opts));
        }
        if !o.success() {
            return Err(format!(
                "apk cannot plan the install (exit {:?}): {}",
                o.code,
                error_reason(&o.stdout, &o.stderr)
            ));
        }
        Ok(parse_simulation(&o.stdout).transaction())
    }

    async fn install(&self, exec: &dyn Executor, targets: &[PackageTarget]) -> InstallRun {
        let world = self.opts.root.join(WORLD);
        let before = std::fs::read_to_string(&world).ok();
        let mut run = InstallRun::finished(
            exec.run(install_request(&self.opts, targets)).await,
            is_locked,
        );
        // `apk add NAME=VERSION` pins NAME to VERSION in the world file; an approved
        // update must not freeze the package, so the world is put back as it was.
        if let Some(before) = before {
            let after = std::fs::read_to_string(&world).unwrap_or_default();
            match unpinned_world(&before, &after, targets) {
                Ok(Some(text)) => {
                    if let Err(e) = rewrite_keeping_mode(&world, text.as_bytes()) {
                        run.output.push_str(&format!(
                            "\nthe approved versions stay pinned in {}: {e}",
                            world.display()
                        ));
                    }
                }
                Ok(None) => {}
                Err(why) => {
                    tracing::warn!(target: "audit", %why, "apk world file left as apk wrote it");
                    run.output.push_str(&format!("\n{why}"));
                }
            }
        }
        run
    }

    async fn reboot_required(&self, _exec: &dyn Executor) -> bool {
        let (root, release) = (self.opts.root.clone(), self.opts.kernel_release.clone());
        tokio::task::spawn_blocking(move || kernel_reboot_required(&root, &release))
            .await
            .unwrap_or(false)
    }
}

/// apk's world file (the packages the administrator asked for), relative to the root.
pub const WORLD: &str = "etc/apk/world";

/// The world file to write back after installing `targets`: `before`, when the only
/// difference apk made is the `NAME=VERSION` pins of the targets. `Ok(None)` when there
/// is nothing to undo; `Err` (and the file is left alone) when apk changed anything
/// else.
pub fn unpinned_world(
    before: &str,
    after: &str,
    targets: &[PackageTarget],
) -> Result<Option<String>, String> {
    if before == after {
        return Ok(None);
    }
    let old: std::collections::BTreeSet<&str> = before.split_whitespace().collect();
    let pins: std::collections::BTreeSet<String> = targets
        .iter()
        .map(|t| format!("{}={}", t.name, t.version))
        .collect();
    let names: std::collections::BTreeSet<&str> = targets.iter().map(|t| t.name.as_str()).collect();
    for word in after.split_whitespace() {
        let pinned_target = pins.contains(word);
        if old.contains(word) || pinned_target {
            continue;
        }
        return Err(format!(
            "apk changed its world file beyond the approved versions ({word:?}); left as it is"
        ));
    }
    for word in &old {
        // apk replaces an entry for a target (`openssl`) by the pin; anything else of the
        // old world must still be there.
        let name = word.split(|c| "=<>~".contains(c)).next().unwrap_or(word);
        if !after.split_whitespace().any(|w| w == *word) && !names.contains(name) {
            return Err(format!(
                "apk dropped {word:?} from its world file; left as it is"
            ));
        }
    }
    Ok(Some(before.to_owned()))
}

/// Replaces `path` atomically, keeping its permissions.
fn rewrite_keeping_mode(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let perms = std::fs::metadata(path)?.permissions();
    let tmp = path.with_extension("patchctl-tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        f.set_permissions(perms)?;
    }
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::{ExecError, ExecOutput};
    use proptest::prelude::*;
    use std::sync::Mutex;

    fn t(name: &str, version: &str) -> PackageTarget {
        PackageTarget {
            name: PackageName::parse(name).unwrap(),
            version: patchctl_proto::validate::PackageVersion::parse(version).unwrap(),
        }
    }

    #[test]
    fn the_world_file_loses_the_pins_an_install_added() {
        let targets = [t("openssl", "3.3.2-r0"), t("libcrypto3", "3.3.2-r0")];
        let before = "alpine-base\nopenssl\ncurl\n";
        // apk replaced `openssl` by the pin and added the dependency's pin.
        let after = "alpine-base\ncurl\nlibcrypto3=3.3.2-r0\nopenssl=3.3.2-r0\n";
        assert_eq!(
            unpinned_world(before, after, &targets),
            Ok(Some(before.to_owned()))
        );
        assert_eq!(unpinned_world(before, before, &targets), Ok(None));
        // Anything else changed: left alone, with a reason.
        assert!(unpinned_world(before, "alpine-base\nopenssl=3.3.2-r0\nvim\n", &targets).is_err());
        assert!(unpinned_world(before, "openssl=3.3.2-r0\ncurl\n", &targets).is_err());
    }

    #[test]
    fn the_world_file_is_rewritten_in_place_with_its_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let world = dir.path().join("world");
        std::fs::write(&world, "a=1\n").unwrap();
        std::fs::set_permissions(&world, std::fs::Permissions::from_mode(0o644)).unwrap();
        rewrite_keeping_mode(&world, b"a\n").unwrap();
        assert_eq!(std::fs::read_to_string(&world).unwrap(), "a\n");
        assert_eq!(
            std::fs::metadata(&world).unwrap().permissions().mode() & 0o777,
            0o644
        );
    }

    const LIST: &str = include_str!("../../tests/data/apk/list-upgradable-alpine3.20.txt");
    const POLICY: &str = include_str!("../../tests/data/apk/policy-openssl.txt");
    const SIM_OK: &str = include_str!("../../tests/data/apk/add-simulate-openssl.txt");
    const SIM_REFUSED: &str = include_str!("../../tests/data/apk/add-simulate-refused.txt");
    const UNABLE: &str = include_str!("../../tests/data/apk/add-error-unable-to-select.txt");
    const LOCKED: &str = include_str!("../../tests/data/apk/add-error-locked.txt");
    const UP_COMPLICATED4: &str =
        include_str!("../../tests/data/apk/apk-tools-test-complicated4.txt");
    const UP_SWAP: &str = include_str!("../../tests/data/apk/apk-tools-test-provides-swap.txt");
    const UP_PINNING12: &str = include_str!("../../tests/data/apk/apk-tools-test-pinning12.txt");
    const UP_ERROR1: &str = include_str!("../../tests/data/apk/apk-tools-test-error1.txt");
    const INSTALLED: &str =
        include_str!("../../../patchctl-proto/tests/data/inventory/installed-alpine3.20-x86_64");

    fn target(n: &str, v: &str) -> PackageTarget {
        PackageTarget {
            name: PackageName::parse(n).unwrap(),
            version: patchctl_proto::validate::PackageVersion::parse(v).unwrap(),
        }
    }

    fn private() -> ApkOptions {
        ApkOptions {
            root: PathBuf::from("/tmp/alpine"),
            kernel_release: PathBuf::from("/tmp/osrelease"),
            lock_wait_secs: 30,
        }
    }

    /// Orders the versions the fixtures use; a test stand-in for the apk comparison
    /// that `Family::compare` gets from patchctl-version.
    fn fixture_order(a: &str, b: &str) -> Option<Ordering> {
        const ORDER: [&str; 6] = [
            "3.3.1-r3",
            "3.3.2-r0",
            "3.4.0-r1",
            "8.9.0-r0",
            "8.9.1-r0",
            "8.10.0-r0",
        ];
        let pos = |v: &str| ORDER.iter().position(|o| *o == v);
        Some(pos(a)?.cmp(&pos(b)?))
    }

    #[test]
    fn golden_argv() {
        let d = ApkOptions::default();
        assert_eq!(d.root, PathBuf::from("/"));
        assert_eq!(d.lock_wait_secs, 300);
        assert_eq!(
            update_argv(&d),
            ["/sbin/apk", "update", "--no-progress", "--wait", "300"]
        );
        assert_eq!(
            update_argv(&private()),
            [
                "/sbin/apk",
                "update",
                "--root",
                "/tmp/alpine",
                "--no-progress",
                "--wait",
                "30"
            ]
        );
        assert_eq!(
            upgradable_argv(&d),
            ["/sbin/apk", "list", "--no-progress", "--upgradable"]
        );
        let name = PackageName::parse("libcrypto3").unwrap();
        assert_eq!(
            policy_argv(&d, &name),
            ["/sbin/apk", "policy", "--no-progress", "--", "libcrypto3"]
        );
        assert_eq!(
            policy_argv(&private(), &name),
            [
                "/sbin/apk",
                "policy",
                "--root",
                "/tmp/alpine",
                "--no-progress",
                "--",
                "libcrypto3"
            ]
        );
        let t = [target("openssl", "3.3.2-r0"), target("libssl3", "3.3.2-r0")];
        assert_eq!(
            add_simulate_argv(&d, &t),
            [
                "/sbin/apk",
                "add",
                "--no-progress",
                "--wait",
                "300",
                "--simulate",
                "--",
                "openssl=3.3.2-r0",
                "libssl3=3.3.2-r0"
            ]
        );
        assert_eq!(
            add_argv(&d, &t[..1]),
            [
                "/sbin/apk",
                "add",
                "--no-progress",
                "--wait",
                "300",
                "--",
                "openssl=3.3.2-r0"
            ]
        );
        assert_eq!(
            add_argv(&private(), &t[1..]),
            [
                "/sbin/apk",
                "add",
                "--root",
                "/tmp/alpine",
                "--no-progress",
                "--wait",
                "30",
                "--",
                "libssl3=3.3.2-r0"
            ]
        );
        // The requests: no extra environment, timeouts past the lock wait.
        let r = install_request(&d, &t);
        assert!(r.env.is_empty());
        assert_eq!(r.program, APK);
        assert_eq!(r.timeout, Duration::from_secs(2100));
        assert_eq!(simulate_request(&d, &t).timeout, Duration::from_secs(600));
        assert_eq!(update_request(&d).timeout, Duration::from_secs(900));
        assert!(update_request(&d).env.is_empty());
        assert_eq!(d.installed_path(), PathBuf::from("/lib/apk/db/installed"));
        assert_eq!(
            private().installed_path(),
            PathBuf::from("/tmp/alpine/lib/apk/db/installed")
        );
    }

    #[test]
    fn versions() {
        for v in [
            "1",
            "1.0",
            "3.3.1-r3",
            "20240705-r0",
            "1.2.5_git20230424-r1",
            "1.0_rc1_p2-r10",
            "1.36.1-r29",
            "2.3a",
            "1.2a3",
            "1.0_alpha",
            "1.0_alpha1",
            "0.0.0",
            "1.0~a1b2c3-r0",
            "1.0.007",
        ] {
            assert!(valid_version(v), "{v} is valid");
        }
        for v in [
            "",
            "r1",
            "-r1",
            "1-",
            "1-r",
            "1..2",
            "1.",
            "1.2-r1-r2",
            "1_foo",
            "1ab",
            "1a.2",
            "1.0-1",
            "1.0 ",
            "a1",
            "1-r1a",
            "1~",
            "1_rc1.2",
        ] {
            assert!(!valid_version(v), "{v:?} is invalid");
        }
    }

    #[test]
    fn name_version_splits() {
        for (s, want) in [
            ("libcrypto3-3.3.2-r0", Some(("libcrypto3", "3.3.2-r0"))),
            (
                "busybox-binsh-1.36.1-r29",
                Some(("busybox-binsh", "1.36.1-r29")),
            ),
            ("py3-foo-2-1.0-r0", Some(("py3-foo-2", "1.0-r0"))),
            ("lua5.1-lpeg-1.1.0-r0", Some(("lua5.1-lpeg", "1.1.0-r0"))),
            (
                "gcc-13.2.1_git20240309-r0",
                Some(("gcc", "13.2.1_git20240309-r0")),
            ),
            (
                "ca-certificates-bundle-20240705-r0",
                Some(("ca-certificates-bundle", "20240705-r0")),
            ),
            ("a-1", Some(("a", "1"))),
            ("foo", None),
            ("foo-", None),
            ("-1.0-r0", None),
            ("foo-bar-baz", None),
            ("foo-1.0-r0-x-y", None),
            ("foo-1.0.", None),
            ("", None),
            ("-", None),
        ] {
            assert_eq!(split_pkgver(s), want, "{s}");
        }
    }

    #[test]
    fn upgradable_fixture() {
        let u = parse_upgradable(LIST);
        assert!(u.skipped.is_empty(), "{:?}", u.skipped);
        assert_eq!(u.listed.len(), 9);
        assert_eq!(
            u.listed[4],
            Listed {
                name: "libcrypto3".into(),
                version: "3.3.2-r0".into(),
                arch: "x86_64".into(),
                origin: "openssl".into(),
                license: "Apache-2.0".into(),
                from: "3.3.1-r3".into(),
            }
        );
        assert_eq!(u.listed[2].license, "MPL-2.0 AND MIT");
        assert_eq!(u.listed[2].name, "ca-certificates-bundle");
        let up = u.updates(|_, _| None);
        assert!(up.skipped.is_empty());
        assert!(up.removals.is_empty());
        assert_eq!(up.updates.len(), 9);
        let ssl = &up.updates[6];
        assert_eq!(
            *ssl,
            AvailableUpdate {
                name: "libssl3".into(),
                arch: "x86_64".into(),
                current_version: Some("3.3.1-r3".into()),
                candidate_version: "3.3.2-r0".into(),
                origins: Vec::new(),
                security: false,
                advisories: Vec::new(),
            }
        );
        assert!(
            up.updates
                .iter()
                .all(|u| !u.security && u.advisories.is_empty())
        );
        // Every installed version listed is the one in the database of that host.
        let inv = crate::inventory::apk::parse_installed(INSTALLED).packages;
        for u in &up.updates {
            let p = inv.iter().find(|p| p.name == u.name).unwrap();
            assert_eq!(Some(&p.version), u.current_version.as_ref(), "{}", u.name);
        }
    }

    #[test]
    fn upgradable_lines() {
        let bad = [
            "",
            "ERROR: something",
            "libfoo-1.0-r0",
            "libfoo-1.0-r0 x86_64",
            "libfoo-1.0-r0 x86_64 {foo} (MIT) [installed]",
            "libfoo-1.0-r0 x86_64 {foo} (MIT) [upgradable from: libbar-0.9-r0]",
            "libfoo-1.0-r0 x86_64 {foo} (MIT) [upgradable from: libfoo-0.9-r0",
            "libfoo x86_64 {foo} (MIT) [upgradable from: libfoo-0.9-r0]",
            "libfoo-1.0-r0 x86_64 foo (MIT) [upgradable from: libfoo-0.9-r0]",
        ];
        for line in bad {
            let u = parse_upgradable(line);
            assert!(u.listed.is_empty(), "{line}");
            assert_eq!(u.skipped.len(), usize::from(!line.is_empty()), "{line}");
        }
        // A license with parentheses of its own.
        let u = parse_upgradable(
            "libx-2.0-r1 aarch64 {x} (MIT AND (LGPL-2.1-or-later OR BSD-3-Clause)) [upgradable from: libx-1.9-r0]\r\n",
        );
        assert!(u.skipped.is_empty(), "{:?}", u.skipped);
        assert_eq!(
            u.listed[0].license,
            "MIT AND (LGPL-2.1-or-later OR BSD-3-Clause)"
        );
        assert_eq!(u.listed[0].arch, "aarch64");
    }

    #[test]
    fn several_candidates_keep_the_highest() {
        let out = "curl-8.9.1-r0 x86_64 {curl} (curl) [upgradable from: curl-8.9.0-r0]\n\
                   curl-8.10.0-r0 x86_64 {curl} (curl) [upgradable from: curl-8.9.0-r0]\n";
        let up = parse_upgradable(out).updates(fixture_order);
        assert_eq!(up.updates.len(), 1);
        assert_eq!(up.updates[0].candidate_version, "8.10.0-r0");
        assert!(up.skipped.is_empty());
        // Without a comparison the first is kept and the choice is said.
        let up = parse_upgradable(out).updates(|_, _| None);
        assert_eq!(up.updates[0].candidate_version, "8.9.1-r0");
        assert_eq!(up.skipped.len(), 1);
    }

    #[test]
    fn policy_fixture() {
        let p = parse_policy(POLICY, "openssl");
        assert!(p.skipped.is_empty(), "{:?}", p.skipped);
        assert_eq!(p.installed(), Some("3.3.1-r3"));
        assert_eq!(p.versions.len(), 3);
        assert!(p.versions[0].repos.is_empty());
        assert_eq!(
            p.versions[2].repos,
            ["@edge https://mirror.example/alpine/edge/main"]
        );
        // The tagged 3.4.0 is not a candidate; 3.3.2 from the untagged repository is.
        let c = p.candidate(fixture_order).unwrap();
        assert_eq!(c.version, "3.3.2-r0");
        assert_eq!(c.repos, ["https://mirror.example/alpine/v3.20/main"]);
        // Without a comparison, two eligible versions leave the candidate unknown.
        assert_eq!(p.candidate(|_, _| None), None);
        // Another package's block is not read.
        assert_eq!(parse_policy(POLICY, "libssl3"), Policy::default());
        // Installed only.
        let p = parse_policy("x policy:\n  1.0-r0:\n    lib/apk/db/installed\n", "x");
        assert_eq!(p.candidate(|_, _| None).unwrap().version, "1.0-r0");
        // Nothing at all.
        assert_eq!(parse_policy("", "x").candidate(fixture_order), None);
        // Unreadable lines.
        let p = parse_policy(
            "x policy:\n    https://orphan\n  not a version:\nnoise\n",
            "x",
        );
        assert_eq!(p.skipped.len(), 3, "{:?}", p.skipped);
    }

    #[test]
    fn simulation_fixtures() {
        let sim = parse_simulation(SIM_OK);
        assert!(sim.skipped.is_empty());
        let ch = |n: &str, f: Option<&str>, t: Option<&str>| Change {
            name: n.into(),
            from: f.map(Into::into),
            to: t.map(Into::into),
        };
        assert_eq!(
            sim.changes,
            [
                ch("libcrypto3", Some("3.3.1-r3"), Some("3.3.2-r0")),
                ch("libssl3", Some("3.3.1-r3"), Some("3.3.2-r0")),
                ch("openssl", Some("3.3.1-r3"), Some("3.3.2-r0")),
            ]
        );
        let sim = parse_simulation(SIM_REFUSED);
        assert!(sim.skipped.is_empty());
        assert_eq!(
            sim.changes,
            [
                ch("libressl3.8-libcrypto", Some("3.8.2-r0"), None),
                ch("libcrypto3", None, Some("3.3.2-r0")),
                ch("curl", Some("8.9.0-r0"), Some("8.5.0-r0")),
                ch("busybox", Some("1.36.1-r29"), Some("1.36.1-r29")),
                ch("ssl_client", Some("1.36.1-r29"), Some("1.36.1-r29")),
            ]
        );
        // apk-tools' own test expectations.
        let sim = parse_simulation(UP_COMPLICATED4);
        assert_eq!(sim.changes.len(), 4);
        assert_eq!(sim.changes[0], ch("d", Some("1.0"), Some("1.5")));
        assert_eq!(sim.changes[3], ch("a", None, Some("2")));
        let sim = parse_simulation(UP_SWAP);
        assert_eq!(sim.changes[0], ch("mailreadplus", Some("1"), None));
        let sim = parse_simulation(UP_PINNING12);
        assert_eq!(sim.changes[1], ch("a", None, Some("3")));
        assert!(parse_simulation(UP_ERROR1).changes.is_empty());
        // Other step kinds and garbage.
        let sim = parse_simulation(
            "(1/4) Updating pinning foo@edge (1.0-r0)\n\
             (2/4) [APK unavailable, skipped] Re-installing bar (2.0-r0)\n\
             (3/4) Frobnicating baz (1.0)\n\
             (4/4) Upgrading qux (1.0 ->)\n\
             Executing busybox-1.36.1-r29.trigger\n\
             (a/b) Installing x (1)\n\
             OK: 13 MiB in 27 packages\n",
        );
        assert_eq!(
            sim.changes,
            [
                ch("foo", Some("1.0-r0"), Some("1.0-r0")),
                ch("bar", Some("2.0-r0"), Some("2.0-r0")),
            ]
        );
        assert_eq!(sim.skipped.len(), 2, "{:?}", sim.skipped);
    }

    #[test]
    fn the_gate_on_apk_plans() {
        let approved = [
            target("openssl", "3.3.2-r0"),
            target("libssl3", "3.3.2-r0"),
            target("libcrypto3", "3.3.2-r0"),
        ];
        let tx = parse_simulation(SIM_REFUSED).transaction();
        let why = super::super::refusals(Family::Apk, &tx, &approved);
        assert!(
            why.contains(&"would remove libressl3.8-libcrypto".to_string()),
            "{why:?}"
        );
        assert!(
            why.iter()
                .any(|w| w.starts_with("would install curl 8.5.0-r0")),
            "{why:?}"
        );
        assert!(
            why.iter()
                .any(|w| w == "would downgrade curl from 8.9.0-r0 to 8.5.0-r0"),
            "{why:?}"
        );
        let tx = parse_simulation("(1/1) Frobnicating x (1)\n").transaction();
        assert_eq!(super::super::refusals(Family::Apk, &tx, &[]).len(), 1);
        // Only approved packages at their approved versions: nothing but the
        // downgrade check is left, and that needs the apk comparison.
        let tx = parse_simulation(SIM_OK).transaction();
        let why = super::super::refusals(Family::Apk, &tx, &approved);
        assert!(
            why.iter().all(|w| w.starts_with("would downgrade")),
            "{why:?}"
        );
    }

    #[test]
    fn errors_and_locks() {
        assert_eq!(
            error_reason("", UNABLE),
            "unable to select packages: openssl-3.3.1-r3: breaks: world[openssl=3.9.9-r0] \
             nosuchpkg (no such package): required by: world[nosuchpkg=1.0-r0]"
        );
        assert_eq!(
            error_reason(UP_ERROR1, ""),
            "unable to select packages: d-2.0: breaks: b-1[d<2.0] satisfies: world[d>1.5] a-3[d>1.5] c-1[d>1.0]"
        );
        assert!(is_locked(LOCKED));
        assert_eq!(
            error_reason("Waiting for repository lock\n", LOCKED),
            "Unable to lock database: Interrupted system call; \
             Failed to open apk database: Interrupted system call"
        );
        assert!(!is_locked(UNABLE));
        assert!(!is_locked(
            "ERROR: Failed to open apk database: Permission denied"
        ));
        assert_eq!(error_reason("", "  something odd\n"), "something odd");
    }

    #[test]
    fn reboot_after_a_kernel_upgrade() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let release = dir.path().join("osrelease");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(&release, "6.6.49-0-lts\n").unwrap();
        // A container: no /lib/modules at all.
        assert!(!kernel_reboot_required(&root, &release));
        // The running kernel's modules are there.
        std::fs::create_dir_all(root.join("lib/modules/6.6.49-0-lts")).unwrap();
        assert!(!kernel_reboot_required(&root, &release));
        // linux-lts was upgraded: the old modules are gone, new ones are there.
        std::fs::remove_dir(root.join("lib/modules/6.6.49-0-lts")).unwrap();
        std::fs::create_dir_all(root.join("lib/modules/6.6.58-0-lts")).unwrap();
        assert!(kernel_reboot_required(&root, &release));
        // No readable release: do not claim a reboot.
        assert!(!kernel_reboot_required(&root, &dir.path().join("missing")));
        std::fs::write(&release, "../../etc\n").unwrap();
        assert!(!kernel_reboot_required(&root, &release));
    }

    /// An executor that answers from a script and records what was asked.
    struct Scripted {
        answers: Mutex<Vec<ExecOutput>>,
        seen: Mutex<Vec<ExecRequest>>,
    }

    impl Scripted {
        fn new(answers: Vec<(i32, &str, &str)>) -> Self {
            Scripted {
                answers: Mutex::new(
                    answers
                        .into_iter()
                        .rev()
                        .map(|(code, out, err)| ExecOutput {
                            code: Some(code),
                            stdout: out.into(),
                            stderr: err.into(),
                            truncated: false,
                        })
                        .collect(),
                ),
                seen: Mutex::new(Vec::new()),
            }
        }
    }

    #[async_trait]
    impl Executor for Scripted {
        async fn run(&self, req: ExecRequest) -> Result<ExecOutput, ExecError> {
            self.seen.lock().unwrap().push(req.clone());
            self.answers
                .lock()
                .unwrap()
                .pop()
                .ok_or(ExecError::NotAllowed("no scripted answer".into()))
        }
        fn history(&self) -> Vec<Vec<String>> {
            self.seen
                .lock()
                .unwrap()
                .iter()
                .map(|r| {
                    let mut v = vec![r.program.clone()];
                    v.extend(r.args.iter().cloned());
                    v
                })
                .collect()
        }
    }

    fn backend_with_db() -> (tempfile::TempDir, ApkBackend) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lib/apk/db/installed");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, INSTALLED).unwrap();
        let b = ApkBackend::new(ApkOptions {
            root: dir.path().to_owned(),
            kernel_release: dir.path().join("osrelease"),
            lock_wait_secs: 5,
        });
        (dir, b)
    }

    #[tokio::test]
    async fn backend_runs_the_plans() {
        let (dir, b) = backend_with_db();
        let root = dir.path().display().to_string();
        let exec = Scripted::new(vec![
            (0, "", ""),
            (0, LIST, ""),
            (0, POLICY, ""),
            (0, SIM_OK, ""),
            (0, "OK: 13 MiB in 27 packages\n", ""),
        ]);
        let inv = b.inventory(&exec).await.unwrap();
        assert_eq!(inv.len(), 20);
        b.refresh(&exec).await.unwrap();
        let up = b.updates(&exec).await.unwrap();
        assert_eq!(up.updates.len(), 9);
        let name = PackageName::parse("openssl").unwrap();
        let c = b.candidate(&exec, &name).await.unwrap();
        // Family::compare decides between 3.3.1-r3 and 3.3.2-r0; without it the
        // candidate is unknown rather than guessed.
        match Family::Apk.compare("3.3.2-r0", "3.3.1-r3") {
            Some(_) => assert_eq!(c.version.as_deref(), Some("3.3.2-r0")),
            None => assert_eq!(c, Candidate::default()),
        }
        assert!(!c.security);
        let t = [target("openssl", "3.3.2-r0")];
        let tx = b.simulate(&exec, &t).await.unwrap();
        assert_eq!(tx.changes.len(), 3);
        let run = b.install(&exec, &t).await;
        assert_eq!(run.code, Some(0));
        assert!(!run.locked);
        assert!(run.output.contains("OK: 13 MiB"));
        let h = exec.history();
        let o = b.options();
        assert_eq!(
            h,
            [
                update_argv(o),
                upgradable_argv(o),
                policy_argv(o, &name),
                add_simulate_argv(o, &t),
                add_argv(o, &t),
            ]
        );
        assert!(h.iter().all(|a| a[2] == "--root" && a[3] == root));
        assert!(!b.reboot_required(&exec).await);
    }

    #[tokio::test]
    async fn backend_refuses_clearly() {
        let (_dir, b) = backend_with_db();
        // Not installed: nothing runs.
        let exec = Scripted::new(vec![]);
        let e = b
            .simulate(&exec, &[target("nginx", "1.26.2-r0")])
            .await
            .unwrap_err();
        assert!(e.contains("not installed") && e.contains("nginx"), "{e}");
        assert!(exec.history().is_empty());
        // apk cannot select the packages.
        let exec = Scripted::new(vec![(1, "", UNABLE)]);
        let e = b
            .simulate(&exec, &[target("openssl", "3.9.9-r0")])
            .await
            .unwrap_err();
        assert!(
            e.starts_with("apk cannot plan the install (exit Some(1)): unable to select packages: openssl-3.3.1-r3: breaks:"),
            "{e}"
        );
        // Locked, during the simulation, the install and the refresh.
        let exec = Scripted::new(vec![
            (99, "Waiting for repository lock\n", LOCKED),
            (99, "Waiting for repository lock\n", LOCKED),
            (99, "", LOCKED),
        ]);
        let t = [target("openssl", "3.3.2-r0")];
        let e = b.simulate(&exec, &t).await.unwrap_err();
        assert!(e.contains("locked by another process (waited 5 s)"), "{e}");
        let run = b.install(&exec, &t).await;
        assert!(run.locked);
        assert!(run.output.contains("Unable to lock database"));
        let e = b.refresh(&exec).await.unwrap_err();
        assert!(e.contains("locked by another process"), "{e}");
        // A failing update says apk's reason.
        let exec = Scripted::new(vec![(
            2,
            "",
            "WARNING: fetching https://mirror.example/alpine/v3.20/main: temporary error (try again later)\nERROR: unable to update some repositories\n",
        )]);
        let e = b.refresh(&exec).await.unwrap_err();
        assert!(e.contains("unable to update some repositories"), "{e}");
        // A missing database is an error, not an empty inventory.
        let b = ApkBackend::new(ApkOptions {
            root: PathBuf::from("/nonexistent-root"),
            ..ApkOptions::default()
        });
        assert!(
            b.inventory(&exec)
                .await
                .unwrap_err()
                .contains("cannot read")
        );
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,400}") {
            let _ = parse_upgradable(&s);
            let _ = parse_policy(&s, "x");
            let _ = parse_policy(&format!("x policy:\n{s}"), "x");
            let _ = parse_simulation(&s);
            let _ = parse_simulation(&format!("(1/1) {s}"));
            let _ = error_reason(&s, &s);
            let _ = split_pkgver(&s);
            let _ = valid_version(&s);
        }

        #[test]
        fn name_version_round_trip(
            name in "[a-z0-9][a-z0-9._+]{0,10}(-[a-z][a-z0-9._+]{0,6}|-[0-9][a-z][a-z0-9]{0,4}){0,3}",
            version in "[0-9]{1,4}(\\.[0-9]{1,4}){0,3}[a-z]?(_(alpha|beta|pre|rc|git|p)[0-9]{0,8}){0,2}",
            rel in proptest::option::of(0u32..100),
        ) {
            let version = match rel {
                Some(r) => format!("{version}-r{r}"),
                None => version,
            };
            prop_assert!(valid_version(&version), "{}", version);
            let s = format!("{name}-{version}");
            prop_assert_eq!(split_pkgver(&s), Some((name.as_str(), version.as_str())));
        }

        #[test]
        fn list_lines_round_trip(
            name in "[a-z][a-z0-9_+-]{0,20}[a-z]",
            ver in "[0-9]{1,3}\\.[0-9]{1,3}-r[0-9]{1,2}",
            old in "[0-9]{1,3}\\.[0-9]{1,3}-r[0-9]{1,2}",
            arch in prop::sample::select(vec!["x86_64", "aarch64", "armv7", "noarch"]),
            origin in "[a-z][a-z0-9_.+-]{0,20}",
            license in "[A-Za-z0-9.() -]{1,30}",
        ) {
            prop_assume!(!name.contains("--") && !name.ends_with('-'));
            let line = format!("{name}-{ver} {arch} {{{origin}}} ({license}) [upgradable from: {name}-{old}]");
            let u = parse_upgradable(&line);
            prop_assert!(u.skipped.is_empty(), "{:?}", u.skipped);
            let l = &u.listed[0];
            prop_assert_eq!(&l.name, &name);
            prop_assert_eq!(&l.version, &ver);
            prop_assert_eq!(&l.from, &old);
            prop_assert_eq!(&l.arch, arch);
            prop_assert_eq!(&l.origin, &origin);
            prop_assert_eq!(&l.license, &license);
        }

        #[test]
        fn steps_round_trip(
            steps in prop::collection::vec((
                0usize..4,
                "[a-z][a-z0-9_.+-]{0,15}",
                "[0-9][0-9.]{0,6}-r[0-9]{1,2}",
                "[0-9][0-9.]{0,6}-r[0-9]{1,2}",
            ), 1..8)
        ) {
            let n = steps.len();
            let mut out = String::new();
            let mut want = Vec::new();
            for (i, (kind, name, a, b)) in steps.iter().enumerate() {
                let (text, from, to) = match kind {
                    0 => (format!("Installing {name} ({b})"), None, Some(b.clone())),
                    1 => (format!("Purging {name} ({a})"), Some(a.clone()), None),
                    2 => (format!("Upgrading {name} ({a} -> {b})"), Some(a.clone()), Some(b.clone())),
                    _ => (format!("Downgrading {name} ({a} -> {b})"), Some(a.clone()), Some(b.clone())),
                };
                out.push_str(&format!("({}/{n}) {text}\n", i + 1));
                want.push(Change { name: name.clone(), from, to });
            }
            out.push_str("OK: 1 MiB in 3 packages\n");
            let sim = parse_simulation(&out);
            prop_assert!(sim.skipped.is_empty(), "{:?}", sim.skipped);
            prop_assert_eq!(sim.changes, want);
        }
    }
}
