//! The zypper backend (SUSE Linux Enterprise, openSUSE Leap and Tumbleweed).
//!
//! The inventory is rpm's ([`crate::inventory::rpm`]); everything else is zypper,
//! read through its XML output (`--xmlout`), the interface zypper keeps stable for
//! programs. The XML is parsed with `roxmltree`; every parser here is `pub`, never
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

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use patchctl_proto::agent::InstalledPackage;
use patchctl_proto::command::{Advisory, AvailableUpdate, PackageTarget};
use patchctl_proto::validate::PackageName;

use super::{
    Backend, Candidate, Change, Family, InstallRun, LOCK_TIMEOUT_SECS, Transaction, Updates,
};
use crate::exec::{ExecOutput, ExecRequest, Executor};
use crate::inventory::rpm;

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

/// The XML document in zypper's standard output: from `<?xml` (or `<stream`) to the
/// last `</stream>`, so stray text around it does not matter.
fn document(xml: &str) -> Result<roxmltree::Document<'_>, String> {
    let start = xml
        .find("<?xml")
        .or_else(|| xml.find("<stream"))
        .ok_or_else(|| "zypper printed no XML (expected --xmlout output)".to_owned())?;
    let body = &xml[start..];
    let end = body
        .rfind("</stream>")
        .map(|i| i + "</stream>".len())
        .unwrap_or(body.len());
    roxmltree::Document::parse(&body[..end])
        .map_err(|e| format!("zypper's XML output cannot be read: {e}"))
}

fn attr(n: roxmltree::Node<'_, '_>, name: &str) -> Option<String> {
    n.attribute(name)
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

fn text_of(n: roxmltree::Node<'_, '_>) -> String {
    n.descendants()
        .filter(|d| d.is_text())
        .filter_map(|d| d.text())
        .collect::<String>()
}

fn quote(s: &str) -> String {
    crate::text::truncate(s.trim(), 120).replace('\n', " ")
}

/// What zypper said besides its data: `<message>`s, problem descriptions of
/// `<prompt>`s, and bare text in the stream (`package 'x' not found.`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Messages {
    /// `<message type="error">` texts and problem descriptions (dependency problems).
    pub errors: Vec<String>,
    /// `<message type="warning">` texts.
    pub warnings: Vec<String>,
    /// `<message type="info">` texts (also of unknown types) and bare text.
    pub info: Vec<String>,
}

impl Messages {
    fn read(doc: &roxmltree::Document<'_>) -> Messages {
        let mut m = Messages::default();
        for n in doc.descendants().filter(|n| n.is_element()) {
            match n.tag_name().name() {
                "message" => {
                    let text = text_of(n).trim().to_owned();
                    if text.is_empty() {
                        continue;
                    }
                    match n.attribute("type") {
                        Some("error") => m.errors.push(text),
                        Some("warning") => m.warnings.push(text),
                        _ => m.info.push(text),
                    }
                }
                "prompt" => {
                    for d in n.children().filter(|c| c.has_tag_name("description")) {
                        let text = text_of(d).trim().to_owned();
                        if !text.is_empty() {
                            m.errors.push(text);
                        }
                    }
                }
                "stream" => {
                    for t in n.children().filter(|c| c.is_text()) {
                        let text = t.text().unwrap_or("").trim();
                        if !text.is_empty() {
                            m.info.push(text.to_owned());
                        }
                    }
                }
                _ => {}
            }
        }
        m
    }
}

/// Parses only the messages of any zypper XML output.
pub fn parse_messages(xml: &str) -> Result<Messages, String> {
    Ok(Messages::read(&document(xml)?))
}

/// One package update of `list-updates`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PackageUpdate {
    /// Package name.
    pub name: String,
    /// Architecture.
    pub arch: String,
    /// The candidate's edition (`[E:]V-R`).
    pub edition: String,
    /// The installed edition (`edition-old`; absent before zypper 1.14).
    pub edition_old: Option<String>,
    /// The repository's alias (or its URL when there is no alias).
    pub repository: Option<String>,
}

/// What `list-updates` said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListUpdates {
    /// The package updates.
    pub updates: Vec<PackageUpdate>,
    /// Entries that could not be read, with why.
    pub skipped: Vec<String>,
    /// zypper's messages.
    pub messages: Messages,
}

fn update_list<'a, 'i>(
    doc: &'a roxmltree::Document<'i>,
    what: &str,
) -> Result<Vec<roxmltree::Node<'a, 'i>>, String> {
    let status = doc
        .descendants()
        .find(|n| n.has_tag_name("update-status"))
        .ok_or_else(|| {
            let m = Messages::read(doc);
            if m.errors.is_empty() {
                format!("zypper's {what} output has no <update-status> element")
            } else {
                format!("zypper {what}: {}", m.errors.join("; "))
            }
        })?;
    Ok(status
        .children()
        .filter(|n| n.has_tag_name("update-list"))
        .flat_map(|l| l.children().filter(|n| n.has_tag_name("update")))
        .collect())
}

/// Parses `zypper --xmlout list-updates`. `Err` when the output is not zypper's XML or
/// has no `<update-status>` (an empty list of updates is still an `<update-status>`).
/// Entries of other kinds than `package` are ignored. Never panics.
pub fn parse_list_updates(xml: &str) -> Result<ListUpdates, String> {
    let doc = document(xml)?;
    let mut out = ListUpdates {
        messages: Messages::read(&doc),
        ..ListUpdates::default()
    };
    for u in update_list(&doc, "list-updates")? {
        if u.attribute("kind").is_some_and(|k| k != "package") {
            continue;
        }
        let (Some(name), Some(edition)) = (attr(u, "name"), attr(u, "edition")) else {
            out.skipped.push(format!(
                "an update without a name or edition: name={:?} edition={:?}",
                u.attribute("name").map(quote),
                u.attribute("edition").map(quote)
            ));
            continue;
        };
        let source = u.children().find(|c| c.has_tag_name("source"));
        out.updates.push(PackageUpdate {
            name,
            arch: attr(u, "arch").unwrap_or_default(),
            edition,
            edition_old: attr(u, "edition-old"),
            repository: source.and_then(|s| attr(s, "alias").or_else(|| attr(s, "url"))),
        });
    }
    Ok(out)
}

/// One patch of `list-patches`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Patch {
    /// The patch's name, the advisory id (`openSUSE-SLE-15.6-2024-1234`).
    pub name: String,
    /// `security`, `recommended`, `optional`, `feature`, `document`, `yast`.
    pub category: Option<String>,
    /// `critical`, `important`, `moderate`, `low`, `unspecified`.
    pub severity: Option<String>,
    /// `needed`, `applied`, `not-needed`.
    pub status: Option<String>,
    /// The repository's alias.
    pub repository: Option<String>,
}

/// What `list-patches` said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListPatches {
    /// The patches, needed or not, as listed.
    pub patches: Vec<Patch>,
    /// Entries that could not be read, with why.
    pub skipped: Vec<String>,
}

impl ListPatches {
    /// The patches that are needed (no status counts as needed: `list-patches` lists
    /// only those by default).
    pub fn needed(&self) -> impl Iterator<Item = &Patch> {
        self.patches
            .iter()
            .filter(|p| p.status.as_deref().is_none_or(|s| s == "needed"))
    }
}

/// Parses `zypper --xmlout list-patches`. `Err` as for [`parse_list_updates`]. Never
/// panics.
pub fn parse_list_patches(xml: &str) -> Result<ListPatches, String> {
    let doc = document(xml)?;
    let mut out = ListPatches::default();
    for u in update_list(&doc, "list-patches")? {
        if u.attribute("kind").is_some_and(|k| k != "patch") {
            continue;
        }
        let Some(name) = attr(u, "name") else {
            out.skipped.push("a patch without a name".into());
            continue;
        };
        let source = u.children().find(|c| c.has_tag_name("source"));
        out.patches.push(Patch {
            name,
            category: attr(u, "category"),
            severity: attr(u, "severity"),
            status: attr(u, "status"),
            repository: source.and_then(|s| attr(s, "alias")),
        });
    }
    Ok(out)
}

/// A package version a patch fixes: the patch conflicts with `name[.arch] < edition`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fix {
    /// Package name.
    pub name: String,
    /// Architecture, when the entry names one (`pc-lib.x86_64`); `None` for any.
    pub arch: Option<String>,
    /// The first fixed edition.
    pub edition: String,
}

/// One patch as `info -t patch` describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PatchDetail {
    /// The patch's name.
    pub name: String,
    /// Its category.
    pub category: Option<String>,
    /// Its severity.
    pub severity: Option<String>,
    /// The package versions it fixes (source packages left out).
    pub fixes: Vec<Fix>,
}

/// What `info -t patch` said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PatchInfo {
    /// One entry per patch found.
    pub patches: Vec<PatchDetail>,
    /// Lines that could not be read, with why.
    pub skipped: Vec<String>,
}

/// Architectures rpm knows, to tell `name.arch` from a name with a dot.
const ARCHES: &[&str] = &[
    "noarch",
    "x86_64",
    "i386",
    "i486",
    "i586",
    "i686",
    "athlon",
    "aarch64",
    "aarch64_ilp32",
    "armv5tel",
    "armv6hl",
    "armv6l",
    "armv7hl",
    "armv7l",
    "ppc",
    "ppc64",
    "ppc64le",
    "ppc64p7",
    "s390",
    "s390x",
    "riscv64",
    "ia64",
    "loongarch64",
    "src",
    "nosrc",
];

/// The `Key : Value` fields of one block of zypper's `info` text, each with the
/// indented lines that follow it.
fn fields(text: &str) -> Vec<(String, String, Vec<String>)> {
    let mut out: Vec<(String, String, Vec<String>)> = Vec::new();
    for line in text.lines() {
        let starts_field = !line.starts_with([' ', '\t']);
        match line.split_once(" : ").or_else(|| {
            line.strip_suffix(" :")
                .or_else(|| line.trim_end().strip_suffix(" :"))
                .map(|k| (k, ""))
        }) {
            Some((k, v)) if starts_field && !k.trim().is_empty() => {
                out.push((k.trim().to_owned(), v.trim().to_owned(), Vec::new()));
            }
            _ => {
                if let Some(last) = out.last_mut() {
                    if !line.trim().is_empty() {
                        last.2.push(line.trim().to_owned());
                    }
                }
            }
        }
    }
    out
}

fn field<'a>(f: &'a [(String, String, Vec<String>)], key: &str) -> Option<&'a str> {
    f.iter()
        .find(|(k, _, _)| k == key)
        .map(|(_, v, _)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// Reads one conflict entry: `NAME[.ARCH] < EDITION`. `Ok(None)` for entries that are
/// not binary packages (`srcpackage:x`, `x.src`).
fn parse_fix(entry: &str) -> Result<Option<Fix>, String> {
    let mut words = entry.split_whitespace();
    let (Some(cap), Some(op), Some(edition), None) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return Err(format!("unreadable conflict {:?}", quote(entry)));
    };
    if !matches!(op, "<" | "<=") {
        return Err(format!(
            "unexpected conflict operator in {:?}",
            quote(entry)
        ));
    }
    if cap.contains(':') {
        // `srcpackage:NAME`, `patch:NAME`: not an installable package.
        return Ok(None);
    }
    let (name, arch) = match cap.rsplit_once('.') {
        Some((n, a)) if ARCHES.contains(&a) && !n.is_empty() => (n, Some(a)),
        _ => (cap, None),
    };
    if matches!(arch, Some("src" | "nosrc")) {
        return Ok(None);
    }
    Ok(Some(Fix {
        name: name.to_owned(),
        arch: arch.map(str::to_owned),
        edition: edition.to_owned(),
    }))
}

/// Parses `zypper --xmlout info -t patch -- PATCH...`: each patch is a `<message>`
/// holding `Key : Value` text; `Conflicts : [N]` is followed by N indented entries, or
/// `Conflicts : ENTRY` holds a single one. Never panics.
pub fn parse_patch_info(xml: &str) -> Result<PatchInfo, String> {
    let doc = document(xml)?;
    let mut out = PatchInfo::default();
    for m in doc.descendants().filter(|n| n.has_tag_name("message")) {
        let text = text_of(m);
        let f = fields(&text);
        let Some(name) = field(&f, "Name") else {
            continue;
        };
        let mut p = PatchDetail {
            name: name.to_owned(),
            category: field(&f, "Category").map(str::to_owned),
            severity: field(&f, "Severity").map(str::to_owned),
            fixes: Vec::new(),
        };
        if let Some((_, value, more)) = f.iter().find(|(k, _, _)| k == "Conflicts") {
            let count = value
                .strip_prefix('[')
                .and_then(|v| v.strip_suffix(']'))
                .and_then(|n| n.parse::<usize>().ok());
            let entries: Vec<&str> = match count {
                Some(n) => {
                    if n != more.len() {
                        out.skipped.push(format!(
                            "patch {}: {n} conflicts announced, {} listed",
                            quote(name),
                            more.len()
                        ));
                    }
                    more.iter().map(String::as_str).collect()
                }
                None => std::iter::once(value.as_str())
                    .chain(more.iter().map(String::as_str))
                    .collect(),
            };
            for e in entries {
                match parse_fix(e) {
                    Ok(Some(fix)) => p.fixes.push(fix),
                    Ok(None) => {}
                    Err(why) => out.skipped.push(format!("patch {}: {why}", quote(name))),
                }
            }
        }
        out.patches.push(p);
    }
    Ok(out)
}

/// What `info -t package` says of one package.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PackageInfo {
    /// Package name.
    pub name: String,
    /// zypper's candidate: the update candidate when there is one, else the installed
    /// or the best available version.
    pub version: String,
    /// Architecture.
    pub arch: Option<String>,
    /// The candidate's repository (`@System` when it is only installed).
    pub repository: Option<String>,
    /// `Installed : Yes…`.
    pub installed: bool,
    /// `up-to-date`, `out-of-date (version X installed)`, `not installed`.
    pub status: Option<String>,
}

impl PackageInfo {
    /// True when zypper says a newer version than the installed one is available.
    pub fn out_of_date(&self) -> bool {
        self.status
            .as_deref()
            .is_some_and(|s| s.starts_with("out-of-date"))
    }
}

/// Parses `zypper --xmlout info -t package -- NAME`; `Ok(None)` when zypper knows no
/// such package. Never panics.
pub fn parse_package_info(xml: &str) -> Result<Option<PackageInfo>, String> {
    let doc = document(xml)?;
    for m in doc.descendants().filter(|n| n.has_tag_name("message")) {
        let f = fields(&text_of(m));
        let (Some(name), Some(version)) = (field(&f, "Name"), field(&f, "Version")) else {
            continue;
        };
        return Ok(Some(PackageInfo {
            name: name.to_owned(),
            version: version.to_owned(),
            arch: field(&f, "Arch").map(str::to_owned),
            repository: field(&f, "Repository").map(str::to_owned),
            installed: field(&f, "Installed").is_some_and(|v| v.starts_with("Yes")),
            status: field(&f, "Status").map(str::to_owned),
        }));
    }
    Ok(None)
}

/// One solvable of an install summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedChange {
    /// The summary's section: `to-upgrade`, `to-install`, `to-remove`, ...
    pub section: String,
    /// The change for the install gate.
    pub change: Change,
    /// Architecture.
    pub arch: String,
}

/// What a dry run (`--dry-run`) said it would do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// True when zypper printed an `<install-summary>` (absent when it stopped at a
    /// problem or an error).
    pub summary: bool,
    /// Every change, in the summary's order.
    pub changes: Vec<PlannedChange>,
    /// Parts of the summary that could not be read, with why.
    pub skipped: Vec<String>,
    /// zypper's messages (errors include dependency problems).
    pub messages: Messages,
}

impl Plan {
    /// The plan as a transaction for the install gate ([`super::refusals`]).
    pub fn transaction(&self) -> Transaction {
        Transaction {
            changes: self.changes.iter().map(|c| c.change.clone()).collect(),
            skipped: self.skipped.clone(),
        }
    }

    /// Names of the packages the plan removes.
    pub fn removals(&self) -> Vec<String> {
        self.changes
            .iter()
            .filter(|c| c.change.to.is_none())
            .map(|c| c.change.name.clone())
            .collect()
    }
}

/// Sections of `<install-summary>` that change packages; `_unsupported` only repeats
/// solvables of these with their support level.
const SECTIONS: &[&str] = &[
    "to-upgrade",
    "to-downgrade",
    "to-install",
    "to-reinstall",
    "to-remove",
    "to-change-arch",
    "to-change-vendor",
];

/// Parses the output of a dry run ([`simulate_argv`], [`full_update_simulate_argv`]):
/// the `<install-summary>`'s sections, and zypper's messages. Solvables that are not
/// packages are named `TYPE:NAME` (so the gate refuses them as unapproved); a section
/// the parser does not know, a solvable without a name or edition, and a downgrade
/// without its installed edition go to `skipped`. Never panics.
pub fn parse_plan(xml: &str) -> Result<Plan, String> {
    let doc = document(xml)?;
    let mut plan = Plan {
        messages: Messages::read(&doc),
        ..Plan::default()
    };
    for summary in doc
        .descendants()
        .filter(|n| n.has_tag_name("install-summary"))
    {
        plan.summary = true;
        for section in summary.children().filter(|n| n.is_element()) {
            let sname = section.tag_name().name();
            if sname == "_unsupported" {
                continue;
            }
            if !SECTIONS.contains(&sname) {
                plan.skipped.push(format!(
                    "unknown install-summary section <{}>",
                    quote(sname)
                ));
                continue;
            }
            for s in section.children().filter(|n| n.has_tag_name("solvable")) {
                let (Some(name), Some(edition)) = (attr(s, "name"), attr(s, "edition")) else {
                    plan.skipped
                        .push(format!("a solvable in <{sname}> without a name or edition"));
                    continue;
                };
                let name = match s.attribute("type") {
                    None | Some("package") => name,
                    Some(t) => format!("{}:{name}", quote(t)),
                };
                let old = attr(s, "edition-old");
                let (from, to) = match sname {
                    "to-remove" => (Some(edition), None),
                    "to-install" => (None, Some(edition)),
                    "to-reinstall" => (Some(old.unwrap_or_else(|| edition.clone())), Some(edition)),
                    _ => {
                        if old.is_none() && sname == "to-downgrade" {
                            plan.skipped.push(format!(
                                "a downgrade of {name} without the installed edition"
                            ));
                            continue;
                        }
                        (old, Some(edition))
                    }
                };
                let change = Change { name, from, to };
                // A package that changes vendor or arch on upgrade is listed twice.
                if plan.changes.iter().any(|c| c.change == change) {
                    continue;
                }
                plan.changes.push(PlannedChange {
                    section: sname.to_owned(),
                    change,
                    arch: attr(s, "arch").unwrap_or_default(),
                });
            }
        }
    }
    Ok(plan)
}

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
fn failure(what: &str, o: &ExecOutput) -> String {
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
    format!(
        "{what} failed (zypper exit {}: {}): {}",
        o.code.map_or("-".to_owned(), |c| c.to_string()),
        exit_meaning(o.code),
        crate::text::truncate(said.trim(), 1000)
    )
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
    ) -> Result<ExecOutput, String> {
        let o = exec
            .run(request(&self.opts, &argv, work))
            .await
            .map_err(|e| format!("{what} failed: {e}"))?;
        if is_locked(o.code, &o.stdout, &o.stderr) {
            return Err(locked_message(&o, self.opts.lock_timeout_secs));
        }
        if query_ok(o.code) || o.code.is_some_and(|c| extra_ok.contains(&c)) {
            if o.truncated {
                return Err(format!("{what}: zypper's output was too large and was cut"));
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
    ) -> Result<(ListPatches, Vec<PatchDetail>, Vec<String>), String> {
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

    async fn inventory(&self, exec: &dyn Executor) -> Result<Vec<InstalledPackage>, String> {
        rpm::inventory(exec, self.opts.root_dir()).await
    }

    async fn installed(
        &self,
        exec: &dyn Executor,
        name: &PackageName,
    ) -> Result<Vec<InstalledPackage>, String> {
        rpm::installed(exec, self.opts.root_dir(), name).await
    }

    async fn refresh(&self, exec: &dyn Executor) -> Result<(), String> {
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

    async fn updates(&self, exec: &dyn Executor) -> Result<Updates, String> {
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
    ) -> Result<Candidate, String> {
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
    ) -> Result<Transaction, String> {
        let what = "zypper cannot plan the install:";
        let o = exec
            .run(request(
                &self.opts,
                &simulate_argv(&self.opts, targets),
                work::QUERY,
            ))
            .await
            .map_err(|e| format!("{what} {e}"))?;
        if is_locked(o.code, &o.stdout, &o.stderr) {
            return Err(locked_message(&o, self.opts.lock_timeout_secs));
        }
        if o.code != Some(0) {
            return Err(failure(what, &o));
        }
        let plan = parse_plan(&o.stdout).map_err(|e| format!("{what} {e}"))?;
        if !plan.messages.errors.is_empty() {
            return Err(format!("{what} {}", plan.messages.errors.join("; ")));
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
                return Err(why.join("; "));
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

    async fn reboot_required(&self, exec: &dyn Executor) -> bool {
        let flag = || self.opts.root_dir().join("run/reboot-needed").exists();
        match exec
            .run(request(
                &self.opts,
                &needs_rebooting_argv(&self.opts),
                work::QUERY,
            ))
            .await
        {
            Ok(o) if o.code == Some(EXIT_REBOOT_NEEDED) => true,
            Ok(o) if o.code == Some(0) => false,
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    macro_rules! fixture {
        ($f:literal) => {
            include_str!(concat!("../../tests/data/zypper/", $f))
        };
    }

    fn target(n: &str, v: &str) -> PackageTarget {
        PackageTarget {
            name: PackageName::parse(n).unwrap(),
            version: patchctl_proto::validate::PackageVersion::parse(v).unwrap(),
        }
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    fn test_opts() -> ZypperOptions {
        ZypperOptions {
            root: Some(PathBuf::from("/tmp/r")),
            lock_timeout_secs: 5,
        }
    }

    #[test]
    fn golden_argv() {
        let o = ZypperOptions::default();
        let z = |rest: &[&str]| {
            let mut v = s(&["/usr/bin/zypper", "--non-interactive"]);
            v.extend(s(rest));
            v
        };
        assert_eq!(refresh_argv(&o), z(&["refresh"]));
        assert_eq!(
            list_updates_argv(&o),
            z(&["--xmlout", "--no-refresh", "list-updates"])
        );
        assert_eq!(
            list_patches_argv(&o),
            z(&["--xmlout", "--no-refresh", "list-patches"])
        );
        assert_eq!(
            patch_info_argv(&o, &s(&["openSUSE-SLE-15.6-2024-1", "PCTEST-SU-2024:0001"])),
            z(&[
                "--xmlout",
                "--no-refresh",
                "info",
                "-t",
                "patch",
                "--",
                "openSUSE-SLE-15.6-2024-1",
                "PCTEST-SU-2024:0001"
            ])
        );
        assert_eq!(
            package_info_argv(&o, &PackageName::parse("libopenssl3").unwrap()),
            z(&[
                "--xmlout",
                "--no-refresh",
                "info",
                "-t",
                "package",
                "--",
                "libopenssl3"
            ])
        );
        assert_eq!(
            full_update_simulate_argv(&o),
            z(&[
                "--xmlout",
                "--no-refresh",
                "update",
                "--dry-run",
                "--no-recommends"
            ])
        );
        let t = [
            target("libopenssl3", "3.1.4-150600.5.15.1"),
            target("kernel-default", "1:6.4.0-150600.23.25.1"),
        ];
        assert_eq!(
            simulate_argv(&o, &t),
            z(&[
                "--xmlout",
                "--no-refresh",
                "update",
                "--dry-run",
                "--no-recommends",
                "--",
                "libopenssl3=3.1.4-150600.5.15.1",
                "kernel-default=1:6.4.0-150600.23.25.1"
            ])
        );
        assert_eq!(
            install_argv(&o, &t[..1]),
            z(&[
                "--no-refresh",
                "update",
                "--no-recommends",
                "--",
                "libopenssl3=3.1.4-150600.5.15.1"
            ])
        );
        assert_eq!(needs_rebooting_argv(&o), z(&["needs-rebooting"]));
        // A private root comes right after --non-interactive.
        let r = test_opts();
        assert_eq!(
            list_updates_argv(&r),
            s(&[
                "/usr/bin/zypper",
                "--non-interactive",
                "--root",
                "/tmp/r",
                "--xmlout",
                "--no-refresh",
                "list-updates"
            ])
        );
        assert_eq!(
            install_argv(&r, &t[..1])[..6],
            s(&[
                "/usr/bin/zypper",
                "--non-interactive",
                "--root",
                "/tmp/r",
                "--no-refresh",
                "update"
            ])
        );
        // `--root /` is left out.
        let slash = ZypperOptions {
            root: Some(PathBuf::from("/")),
            ..ZypperOptions::default()
        };
        assert_eq!(refresh_argv(&slash), refresh_argv(&o));
    }

    #[test]
    fn requests_wait_for_the_lock_a_bounded_time() {
        let o = ZypperOptions::default();
        let t = [target("pc-sec", "1.1-1")];
        let req = install_request(&o, &t);
        assert_eq!(req.program, "/usr/bin/zypper");
        assert_eq!(req.args, install_argv(&o, &t)[1..]);
        assert_eq!(
            req.env,
            [("ZYPP_LOCK_TIMEOUT".to_string(), "300".to_string())]
        );
        assert_eq!(req.timeout, Duration::from_secs(300 + 1800));
        for (argv, work) in [
            (refresh_argv(&o), work::REFRESH),
            (list_updates_argv(&o), work::QUERY),
            (simulate_argv(&o, &t), work::QUERY),
            (needs_rebooting_argv(&o), work::QUERY),
        ] {
            let r = request(&o, &argv, work);
            assert_eq!(
                r.env,
                [("ZYPP_LOCK_TIMEOUT".to_string(), "300".to_string())]
            );
            assert_eq!(r.timeout, Duration::from_secs(300) + work);
            assert!(crate::exec::ALLOWED_ENV.contains(&LOCK_ENV));
        }
        let r = request(&test_opts(), &refresh_argv(&test_opts()), work::REFRESH);
        assert_eq!(r.env, [("ZYPP_LOCK_TIMEOUT".to_string(), "5".to_string())]);
    }

    fn upd(name: &str, arch: &str, edition: &str, old: &str) -> PackageUpdate {
        PackageUpdate {
            name: name.into(),
            arch: arch.into(),
            edition: edition.into(),
            edition_old: Some(old.into()),
            repository: Some("pctest".into()),
        }
    }

    #[test]
    fn list_updates_fixture() {
        let lu = parse_list_updates(fixture!("list-updates.xml")).unwrap();
        assert!(lu.skipped.is_empty(), "{:?}", lu.skipped);
        let names: Vec<&str> = lu.updates.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(names, ["pc-dep", "pc-lib", "pc-new", "pc-sec", "pc-upd"]);
        assert_eq!(lu.updates[1], upd("pc-lib", "x86_64", "1.1-1", "1.0-1"));
        assert_eq!(lu.updates[3], upd("pc-sec", "noarch", "1.1-1", "1.0-1"));
        assert!(lu.messages.errors.is_empty());
        let none = parse_list_updates(fixture!("list-updates-none.xml")).unwrap();
        assert!(none.updates.is_empty() && none.skipped.is_empty());
        // Not zypper's XML, or XML without an update list: an error, never "no updates".
        assert!(parse_list_updates("").is_err());
        assert!(parse_list_updates("Loading repository data...").is_err());
        let locked = parse_list_updates(fixture!("locked.xml")).unwrap_err();
        assert!(locked.contains("System management is locked"), "{locked}");
        let cut = &fixture!("list-updates.xml")[..300];
        assert!(parse_list_updates(cut).is_err());
    }

    #[test]
    fn list_updates_small_cases() {
        let wrap = |body: &str| {
            format!(
                "<?xml version='1.0'?>\n<stream>\n<update-status version=\"0.6\">\n<update-list>\n{body}</update-list>\n</update-status>\n</stream>\n"
            )
        };
        // zypper before 1.14: no edition-old; a URL but no alias; other kinds ignored.
        let lu = parse_list_updates(&wrap(
            "<update kind=\"package\" name=\"a\" edition=\"2:1.0-3.1\" arch=\"x86_64\"><source url=\"http://x/\"/></update>\
             <update kind=\"patch\" name=\"p\" edition=\"1\"/>\
             <update kind=\"package\" name=\"b\"/>",
        ))
        .unwrap();
        assert_eq!(
            lu.updates,
            [PackageUpdate {
                name: "a".into(),
                arch: "x86_64".into(),
                edition: "2:1.0-3.1".into(),
                edition_old: None,
                repository: Some("http://x/".into()),
            }]
        );
        assert_eq!(lu.skipped.len(), 1, "{:?}", lu.skipped);
        // Text before the XML (a warning on stdout) does not matter.
        let lu = parse_list_updates(&format!(
            "Warning: something\n{}",
            wrap("<update kind=\"package\" name=\"a\" edition=\"1-1\" arch=\"noarch\"/>")
        ))
        .unwrap();
        assert_eq!(lu.updates.len(), 1);
        // DTDs are refused by the parser (no entity expansion).
        assert!(
            parse_list_updates("<?xml version='1.0'?><!DOCTYPE s [<!ENTITY a \"b\">]><stream/>")
                .is_err()
        );
    }

    #[test]
    fn list_patches_fixture() {
        let lp = parse_list_patches(fixture!("list-patches.xml")).unwrap();
        assert!(lp.skipped.is_empty());
        assert_eq!(
            lp.patches,
            [
                Patch {
                    name: "PCTEST-SU-2024:0001".into(),
                    category: Some("security".into()),
                    severity: Some("important".into()),
                    status: Some("needed".into()),
                    repository: Some("pctest".into()),
                },
                Patch {
                    name: "PCTEST-RU-2024:0002".into(),
                    category: Some("recommended".into()),
                    severity: Some("moderate".into()),
                    status: Some("needed".into()),
                    repository: Some("pctest".into()),
                }
            ]
        );
        assert_eq!(lp.needed().count(), 2);
        // zypper 1.14.42 ignores --category in XML mode: the same two patches.
        let sec = parse_list_patches(fixture!("list-patches-category-security.xml")).unwrap();
        assert_eq!(sec, lp);
        let none = parse_list_patches(fixture!("list-patches-none.xml")).unwrap();
        assert!(none.patches.is_empty());
        let applied = parse_list_patches(
            "<stream><update-status><update-list><update kind=\"patch\" name=\"x\" status=\"applied\"/></update-list></update-status></stream>",
        )
        .unwrap();
        assert_eq!(applied.needed().count(), 0);
    }

    fn fix(name: &str, arch: Option<&str>, edition: &str) -> Fix {
        Fix {
            name: name.into(),
            arch: arch.map(Into::into),
            edition: edition.into(),
        }
    }

    #[test]
    fn patch_info_fixture() {
        let pi = parse_patch_info(fixture!("info-patch.xml")).unwrap();
        assert!(pi.skipped.is_empty(), "{:?}", pi.skipped);
        assert_eq!(
            pi.patches,
            [
                PatchDetail {
                    name: "PCTEST-SU-2024:0001".into(),
                    category: Some("security".into()),
                    severity: Some("important".into()),
                    fixes: vec![
                        fix("pc-sec", None, "1.1-1"),
                        fix("pc-lib", Some("x86_64"), "1.1-1"),
                        fix("pc-lib", Some("noarch"), "1.1-1"),
                    ],
                },
                PatchDetail {
                    name: "PCTEST-RU-2024:0002".into(),
                    category: Some("recommended".into()),
                    severity: Some("moderate".into()),
                    fixes: vec![fix("pc-upd", None, "1.1-1")],
                }
            ]
        );
    }

    #[test]
    fn conflict_entries() {
        assert_eq!(
            parse_fix("libopenssl3.x86_64 < 3.1.4-150600.5.15.1"),
            Ok(Some(fix(
                "libopenssl3",
                Some("x86_64"),
                "3.1.4-150600.5.15.1"
            )))
        );
        assert_eq!(
            parse_fix("python311-3.11.x86_64 < 1:2-3"),
            Ok(Some(fix("python311-3.11", Some("x86_64"), "1:2-3")))
        );
        // A dot in the name that is not an arch stays in the name.
        assert_eq!(
            parse_fix("python3.11-foo < 1-1"),
            Ok(Some(fix("python3.11-foo", None, "1-1")))
        );
        assert_eq!(parse_fix("srcpackage:openssl-3 < 3.1.4-1"), Ok(None));
        assert_eq!(parse_fix("pc-lib.src < 1.1-1"), Ok(None));
        assert!(parse_fix("pc-lib").is_err());
        assert!(parse_fix("pc-lib > 1.1-1").is_err());
        assert!(parse_fix("pc-lib < 1.1-1 x").is_err());
        // A count that does not match the lines is noted, the entries kept.
        let xml = "<stream><message type=\"info\">Name        : P\nCategory    : security\nConflicts   : [3]\n    a &lt; 1-1\n    garbage\n</message></stream>";
        let pi = parse_patch_info(xml).unwrap();
        assert_eq!(pi.patches[0].fixes, [fix("a", None, "1-1")]);
        assert_eq!(pi.skipped.len(), 2, "{:?}", pi.skipped);
    }

    #[test]
    fn package_info_fixtures() {
        let out = parse_package_info(fixture!("info-package-outdated.xml"))
            .unwrap()
            .unwrap();
        assert_eq!(
            out,
            PackageInfo {
                name: "pc-sec".into(),
                version: "1.1-1".into(),
                arch: Some("noarch".into()),
                repository: Some("pctest".into()),
                installed: true,
                status: Some("out-of-date (version 1.0-1 installed)".into()),
            }
        );
        assert!(out.out_of_date());
        let cur = parse_package_info(fixture!("info-package-current.xml"))
            .unwrap()
            .unwrap();
        assert_eq!((cur.version.as_str(), cur.out_of_date()), ("1.0-1", false));
        let new = parse_package_info(fixture!("info-package-not-installed.xml"))
            .unwrap()
            .unwrap();
        assert!(!new.installed && !new.out_of_date());
        assert_eq!(
            parse_package_info(fixture!("info-package-missing.xml")).unwrap(),
            None
        );
        let m = parse_messages(fixture!("info-package-missing.xml")).unwrap();
        assert!(
            m.info.iter().any(|i| i == "package 'pc-nosuch' not found."),
            "{m:?}"
        );
    }

    fn change(name: &str, from: Option<&str>, to: Option<&str>) -> Change {
        Change {
            name: name.into(),
            from: from.map(Into::into),
            to: to.map(Into::into),
        }
    }

    #[test]
    fn plan_fixtures() {
        let p = parse_plan(fixture!("simulate-upgrade.xml")).unwrap();
        assert!(p.summary && p.skipped.is_empty() && p.messages.errors.is_empty());
        assert_eq!(
            p.transaction().changes,
            [
                change("pc-lib", Some("1.0-1"), Some("1.1-1")),
                change("pc-sec", Some("1.0-1"), Some("1.1-1"))
            ]
        );
        assert_eq!(p.changes[0].arch, "x86_64");
        let p = parse_plan(fixture!("simulate-remove.xml")).unwrap();
        assert_eq!(
            p.transaction().changes,
            [
                change("pc-new", Some("1.0-1"), Some("1.1-1")),
                change("pc-victim", Some("1.0-1"), None)
            ]
        );
        assert_eq!(p.removals(), ["pc-victim"]);
        let p = parse_plan(fixture!("simulate-new-dependency.xml")).unwrap();
        assert_eq!(
            p.transaction().changes,
            [
                change("pc-dep", Some("1.0-1"), Some("1.1-1")),
                change("pc-newdep", None, Some("1.0-1"))
            ]
        );
        let p = parse_plan(fixture!("simulate-downgrade.xml")).unwrap();
        assert_eq!(
            p.transaction().changes,
            [change("pc-down", Some("1.0-1"), Some("0.9-1"))]
        );
        // Nothing planned, and zypper said why.
        for (f, said) in [
            (fixture!("simulate-nothing-to-do.xml"), "Nothing to do."),
            (
                fixture!("simulate-not-installed.xml"),
                "Package 'pc-newdep=1.0-1' is not installed.",
            ),
            (
                fixture!("simulate-other-version.xml"),
                "has lower version than the installed one",
            ),
        ] {
            let p = parse_plan(f).unwrap();
            assert!(p.summary && p.changes.is_empty(), "{p:?}");
            assert!(
                p.messages.info.iter().any(|m| m.contains(said)),
                "{:?}",
                p.messages
            );
        }
        // Stopped before a summary: a dependency problem, a missing version, the lock.
        let p = parse_plan(fixture!("simulate-problem.xml")).unwrap();
        assert!(!p.summary);
        assert!(
            p.messages.errors[0].starts_with(
                "Problem: nothing provides pc-missing-capability needed by pc-broken-1.1-1.noarch"
            ),
            "{:?}",
            p.messages
        );
        let p = parse_plan(fixture!("simulate-no-provider.xml")).unwrap();
        assert_eq!(p.messages.errors, ["No provider of 'pc-sec=9.9-1' found."]);
        let p = parse_plan(fixture!("locked.xml")).unwrap();
        assert!(p.messages.errors[0].starts_with("System management is locked"));
    }

    #[test]
    fn plan_small_cases() {
        let wrap =
            |body: &str| format!("<stream><install-summary>{body}</install-summary></stream>");
        let p = parse_plan(&wrap(
            "<to-upgrade><solvable type=\"product\" name=\"SLES\" edition=\"15.6-0\" edition-old=\"15.5-0\"/></to-upgrade>\
             <to-change-vendor><solvable type=\"package\" name=\"a\" edition=\"2-1\" edition-old=\"1-1\"/></to-change-vendor>\
             <to-upgrade><solvable type=\"package\" name=\"a\" edition=\"2-1\" edition-old=\"1-1\"/></to-upgrade>\
             <to-reinstall><solvable name=\"r\" edition=\"1-1\"/></to-reinstall>\
             <_unsupported><solvable name=\"a\" edition=\"2-1\"/></_unsupported>\
             <to-explode><solvable name=\"x\" edition=\"1\"/></to-explode>\
             <to-downgrade><solvable name=\"d\" edition=\"1-1\"/></to-downgrade>\
             <to-install><solvable name=\"n\"/></to-install>",
        ))
        .unwrap();
        assert_eq!(
            p.transaction().changes,
            [
                change("product:SLES", Some("15.5-0"), Some("15.6-0")),
                change("a", Some("1-1"), Some("2-1")),
                change("r", Some("1-1"), Some("1-1")),
            ]
        );
        assert_eq!(p.skipped.len(), 3, "{:?}", p.skipped);
        // Each skip is a refusal.
        assert_eq!(
            super::super::refusals(Family::Zypper, &p.transaction(), &[]).len(),
            6
        );
    }

    #[test]
    fn the_gate_on_real_plans() {
        let gate = |f: &str, t: &[PackageTarget]| {
            super::super::refusals(Family::Zypper, &parse_plan(f).unwrap().transaction(), t)
        };
        let ok = [target("pc-sec", "1.1-1"), target("pc-lib", "1.1-1")];
        assert!(gate(fixture!("simulate-upgrade.xml"), &ok).is_empty());
        assert_eq!(
            gate(fixture!("simulate-upgrade.xml"), &ok[..1]),
            ["would install pc-lib 1.1-1, which was not approved"]
        );
        assert_eq!(
            gate(
                fixture!("simulate-remove.xml"),
                &[target("pc-new", "1.1-1")]
            ),
            ["would remove pc-victim"]
        );
        assert_eq!(
            gate(
                fixture!("simulate-new-dependency.xml"),
                &[target("pc-dep", "1.1-1")]
            ),
            ["would install pc-newdep 1.0-1, which was not approved"]
        );
        assert_eq!(
            gate(
                fixture!("simulate-downgrade.xml"),
                &[target("pc-down", "0.9-1")]
            ),
            ["would downgrade pc-down from 1.0-1 to 0.9-1"]
        );
    }

    #[test]
    fn security_and_advisories_come_from_patches() {
        let lu = parse_list_updates(fixture!("list-updates.xml")).unwrap();
        let lp = parse_list_patches(fixture!("list-patches.xml")).unwrap();
        let pi = parse_patch_info(fixture!("info-patch.xml")).unwrap();
        let all = join(&lu.updates, &lp.patches, &pi.patches);
        let get = |n: &str| all.iter().find(|u| u.name == n).unwrap();
        let sec = get("pc-sec");
        assert!(sec.security);
        assert_eq!(
            sec.advisories,
            [Advisory {
                id: "PCTEST-SU-2024:0001".into(),
                kind: Some("security".into()),
                severity: Some("important".into()),
            }]
        );
        assert_eq!(sec.current_version.as_deref(), Some("1.0-1"));
        assert_eq!(sec.candidate_version, "1.1-1");
        assert_eq!(sec.origins, ["pctest"]);
        assert!(get("pc-lib").security, "the x86_64 entry of the patch");
        let normal = get("pc-upd");
        assert!(!normal.security);
        assert_eq!(normal.advisories[0].id, "PCTEST-RU-2024:0002");
        assert_eq!(normal.advisories[0].kind.as_deref(), Some("recommended"));
        for n in ["pc-new", "pc-dep"] {
            assert!(!get(n).security && get(n).advisories.is_empty(), "{n}");
        }
        // A fix for another arch, or above the candidate, does not count.
        let d = [PatchDetail {
            name: "S".into(),
            category: Some("security".into()),
            severity: None,
            fixes: vec![fix("a", Some("i586"), "1-1"), fix("b", None, "3-1")],
        }];
        let u = [
            upd("a", "x86_64", "2-1", "1-1"),
            upd("b", "noarch", "2-1", "1-1"),
        ];
        assert!(join(&u, &[], &d).iter().all(|x| !x.security));
        // The category of the listing wins, the detail's fills in.
        let u = [upd("b", "noarch", "3-1", "1-1")];
        assert!(join(&u, &[], &d)[0].security);
    }

    #[test]
    fn lock_and_exit_codes() {
        assert!(is_locked(Some(7), "", ""));
        assert!(is_locked(None, "", fixture!("locked-install.txt")));
        assert!(is_locked(Some(1), fixture!("locked.xml"), ""));
        assert!(!is_locked(Some(0), fixture!("install.txt"), ""));
        let o = ExecOutput {
            code: Some(7),
            stdout: fixture!("locked.xml").into(),
            stderr: String::new(),
            truncated: false,
        };
        let m = locked_message(&o, 300);
        assert!(m.starts_with("zypper is locked by another process (System management is locked by the application with pid "), "{m}");
        assert!(m.contains("waited 300 s"), "{m}");
        assert!(query_ok(Some(0)) && query_ok(Some(106)) && !query_ok(Some(4)) && !query_ok(None));
        let o = ExecOutput {
            code: Some(4),
            stdout: fixture!("simulate-problem.xml").into(),
            stderr: String::new(),
            truncated: false,
        };
        let f = failure("zypper cannot plan the install:", &o);
        assert!(
            f.contains("zypper exit 4: a problem reported by libzypp"),
            "{f}"
        );
        assert!(f.contains("nothing provides pc-missing-capability"), "{f}");
        assert_eq!(fixture!("locked.xml.exit").trim(), "7");
        assert_eq!(fixture!("simulate-no-provider.xml.exit").trim(), "104");
        assert_eq!(fixture!("needs-rebooting-yes.txt.exit").trim(), "102");
        assert_eq!(fixture!("needs-rebooting-no.txt.exit").trim(), "0");
    }

    #[test]
    fn patch_names() {
        for ok in [
            "openSUSE-SLE-15.6-2024-1234",
            "SUSE-SLE-Module-Basesystem-15-SP6-2024-1",
            "PCTEST-SU-2024:0001",
            "openSUSE-2024-1+a",
        ] {
            assert!(is_patch_name(ok), "{ok}");
        }
        for bad in ["", "-x", "a b", "a;b", "a/b", "$(x)"] {
            assert!(!is_patch_name(bad), "{bad}");
        }
    }

    fn esc(s: &str) -> String {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,400}") {
            let _ = parse_list_updates(&s);
            let _ = parse_list_patches(&s);
            let _ = parse_patch_info(&s);
            let _ = parse_package_info(&s);
            let _ = parse_plan(&s);
            let _ = parse_messages(&s);
        }

        #[test]
        fn never_panics_on_xmlish(
            parts in proptest::collection::vec(prop::sample::select(vec![
                "<stream>", "</stream>", "<update-status>", "</update-status>", "<update-list>",
                "</update-list>", "<update kind=\"package\" name=\"a\" edition=\"1\">", "</update>",
                "<install-summary>", "</install-summary>", "<to-remove>", "</to-remove>",
                "<solvable name=\"x\" edition=\"1\"/>", "<message type=\"info\">", "</message>",
                "Name : x\n", "Conflicts : [2]\n", "    a &lt; 1\n", "Version : 1\n", "<prompt><description>",
                "</description></prompt>", "&amp;", "<", ">", "\n", "é",
            ]), 0..40)
        ) {
            let s: String = parts.concat();
            let _ = parse_list_updates(&s);
            let _ = parse_list_patches(&s);
            let _ = parse_patch_info(&s);
            let _ = parse_package_info(&s);
            let _ = parse_plan(&s);
        }

        #[test]
        fn list_updates_round_trip(
            rows in proptest::collection::vec((
                "[A-Za-z0-9][A-Za-z0-9._+-]{0,20}",
                "([0-9]{1,2}:)?[0-9][A-Za-z0-9.+~^]{0,8}-[0-9][A-Za-z0-9.+~^]{0,8}",
                proptest::option::of("[0-9][A-Za-z0-9.]{0,8}-[0-9]{1,3}"),
                prop::sample::select(vec!["x86_64", "noarch", "aarch64"]),
                "[A-Za-z0-9_&<>\"' -]{1,12}",
            ), 0..10)
        ) {
            let mut body = String::new();
            for (n, e, old, a, alias) in &rows {
                let old = old.as_ref().map(|o| format!(" edition-old=\"{o}\"")).unwrap_or_default();
                body.push_str(&format!(
                    "<update kind=\"package\" name=\"{n}\" edition=\"{e}\" arch=\"{a}\"{old}><summary>s &amp; t</summary><source url=\"file:/r\" alias=\"{}\"/></update>",
                    esc(alias)
                ));
            }
            let xml = format!("<?xml version='1.0'?>\n<stream>\n<message type=\"info\">Loading</message>\n<update-status version=\"0.6\">\n<update-list>\n{body}</update-list>\n</update-status>\n</stream>\n");
            let lu = parse_list_updates(&xml).unwrap();
            prop_assert!(lu.skipped.is_empty());
            prop_assert_eq!(lu.updates.len(), rows.len());
            for (u, (n, e, old, a, alias)) in lu.updates.iter().zip(&rows) {
                prop_assert_eq!(&u.name, n);
                prop_assert_eq!(&u.edition, e);
                prop_assert_eq!(&u.edition_old, old);
                prop_assert_eq!(&u.arch, a);
                let want = alias.trim();
                prop_assert_eq!(u.repository.as_deref(), Some(if want.is_empty() { "file:/r" } else { want }));
            }
        }

        #[test]
        fn plan_round_trip(
            rows in proptest::collection::vec((
                prop::sample::select(vec!["to-upgrade", "to-install", "to-remove", "to-downgrade"]),
                "[a-z][a-z0-9-]{0,10}",
                "[0-9]{1,3}\\.[0-9]{1,3}-[0-9]{1,2}",
                "[0-9]{1,3}\\.[0-9]{1,3}-[0-9]{1,2}",
            ), 0..8)
        ) {
            let mut body = String::new();
            let mut want: Vec<Change> = Vec::new();
            for (sec, n, e, old) in &rows {
                let (attrs, c) = match *sec {
                    "to-install" => (String::new(), change(n, None, Some(e))),
                    "to-remove" => (String::new(), change(n, Some(e), None)),
                    _ => (format!(" edition-old=\"{old}\""), change(n, Some(old), Some(e))),
                };
                body.push_str(&format!("<{sec}>\n<solvable type=\"package\" name=\"{n}\" edition=\"{e}\" arch=\"noarch\"{attrs}/>\n</{sec}>\n"));
                if !want.contains(&c) {
                    want.push(c);
                }
            }
            let xml = format!("<stream><install-summary packages-to-change=\"{}\">\n{body}</install-summary></stream>", rows.len());
            let p = parse_plan(&xml).unwrap();
            prop_assert!(p.skipped.is_empty());
            prop_assert_eq!(p.transaction().changes, want);
        }
    }
}
