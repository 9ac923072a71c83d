//! Parsers of what dnf, yum and rpm print: `check-update`, `list`, `updateinfo list`,
//! the transaction summary of `upgrade --assumeno` (and what it means for the install
//! gate), `needs-restarting -r`, the kernel query and dnf's lock messages. Pure: text in,
//! values out, no input makes them panic.

use std::cmp::Ordering;

use patchctl_proto::agent::InstalledPackage;
use patchctl_proto::command::{Advisory, PackageTarget};

use crate::pkgmgr::{Change, Family, Transaction};

use super::*;

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
pub(super) fn installed_version(
    installed: &[InstalledPackage],
    name: &str,
    arch: &str,
) -> Option<String> {
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
    /// The plan as a transaction for the install gate ([`crate::pkgmgr::refusals`]), with the
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
