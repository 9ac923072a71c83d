//! The Debian Security Tracker's data, in the three shapes it is published in.
//!
//! * **Tracker JSON** (`/tracker/data/json`, and the osv.dev test mock of it):
//!   `{source: {CVE-id: {description, scope, debianbug, releases: {codename: {status,
//!   fixed_version, urgency, nodsa, nodsa_reason, repositories}}}}}` →
//!   [`parse_tracker_json`]. One [`Record`] per issue id (the entries of every source
//!   package merged), one [`Affected`] per `(release, source package)`.
//! * **vuln-list-debian records** (`CVE/*.json`, `DSA/*.json`, `DLA/*.json`: the
//!   tracker's `data/*/list` files, one JSON record per entry, each annotation line
//!   parsed) → [`VulnList`], which needs every record before it can resolve them.
//! * **`security-support-ended.debN`** (package `debian-security-support`) →
//!   [`parse_security_support`]. `security-support-limited` is not imported: its lines
//!   carry no version and no end, only "supported with restrictions", which is none of
//!   the statuses; `security-support-ended` without `.debN` is not imported either, since
//!   it does not say which release it is about.
//!
//! Invariants of everything this module produces:
//!
//! * Packages are **source** packages; ecosystems are `Debian:N` from the codename
//!   ([`debian_ecosystem`]). `sid` and codenames PatchCTL has no number for are skipped
//!   silently: they are no release a host runs (tracker JSON entries for them are not
//!   even checked; list lines for them are, being part of the same entry).
//! * Every `Fixed` version and every `last_affected` passed dpkg's `parse_check`; a
//!   record with one that does not is rejected as a whole (named by its id, with the
//!   package), never imported in part.
//! * Severity is the tracker's urgency word without its `*` marks (`high**` → `high`);
//!   `not yet assigned` is no severity.
//! * A record without any statement for a Debian release is not emitted (a CVE that is
//!   `NOT-FOR-US`, or whose only lines are for `sid` or `<removed>`/`<itp>`).
//! * Output is deterministic: records sorted by id, `affected` by `(ecosystem,
//!   package)`, every record [normalized](Record::normalize).
//!
//! Status mapping (tracker JSON / list line → [`Status`], the tracker's words kept in
//! [`Affected::note`]):
//!
//! | tracker JSON | list line | status |
//! |---|---|---|
//! | `resolved`, `fixed_version` `0` | `<not-affected>` | `NotAffected` |
//! | `resolved`, `fixed_version` V | `- pkg V` | `Fixed { V }` |
//! | `open` | `<unfixed>` | `AffectedNoFix` |
//! | `open`, `nodsa_reason` `postponed` / empty | `<postponed>`, `<no-dsa>` | `AffectedNoFix` (note says so) |
//! | `open`, `nodsa_reason` `ignored` | `<ignored>` | `WillNotFix` |
//! | `open`, urgency `end-of-life` | `<end-of-life>` | `EndOfLife` |
//! | `undetermined` | `<undetermined>` | `UnderInvestigation` |
//! | — | `<removed>`, `<itp>` | no statement |
//!
//! **Inheritance (list records).** In the tracker's list files the line without a
//! release is about unstable, and a release without a line of its own is compared with
//! unstable's statement. So the unstable statement of a package is *inherited* by every
//! release from buster to forky ([`INHERITING`]) without a line for that package, with a
//! note that says so. A DSA/DLA that fixes the package in a release and names the CVE
//! replaces an inherited statement with its fixed version (an explicit line of the CVE
//! always wins), and its id becomes an alias of the CVE. DSA/DLA records are never
//! emitted themselves: each fix would otherwise be reported twice.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Display;

use patchctl_version::Scheme;
use serde_json::{Map, Value};

use crate::ecosystem::debian_ecosystem;
use crate::{Affected, Parsed, Record, Rejected, Status};

/// The feed name these importers report.
pub const FEED: &str = "debian-tracker";

/// Releases that inherit unstable's statement when they have no line of their own.
pub const INHERITING: [&str; 5] = ["buster", "bullseye", "bookworm", "trixie", "forky"];

/// Longest summary, in characters.
const SUMMARY_CHARS: usize = 200;

// ---------------------------------------------------------------------------------------
// Shared helpers

/// A one-line summary: whitespace collapsed, at most [`SUMMARY_CHARS`] characters.
fn summary(text: &str) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(SUMMARY_CHARS) {
        Some((cut, _)) => line[..cut].to_owned(),
        None => line,
    }
}

/// `word: text`, either part optional.
fn note(word: Option<&str>, text: Option<&str>) -> Option<String> {
    let text = text.map(str::trim).filter(|t| !t.is_empty());
    match (word, text) {
        (Some(w), Some(t)) => Some(format!("{w}: {t}")),
        (Some(w), None) => Some(w.to_owned()),
        (None, t) => t.map(str::to_owned),
    }
}

/// The tracker's urgency as a severity word: `*` marks dropped, `not yet assigned` and
/// `end-of-life` (a status, not a severity) are none.
fn severity(urgency: Option<&str>) -> Option<String> {
    let word = urgency?.trim().trim_end_matches('*').trim();
    match word {
        "" | "not yet assigned" | "end-of-life" => None,
        w => Some(w.to_owned()),
    }
}

/// A `Fixed` status, when `version` is a well-formed Debian version.
fn fixed(version: &str) -> Result<Status, String> {
    Scheme::Dpkg
        .parse_check(version)
        .map(|()| Status::Fixed {
            fixed_version: version.to_owned(),
        })
        .map_err(|e| e.to_string())
}

/// Field `key` of `obj` as a string: `None` when absent or null, an error when it is
/// something else.
fn opt_str<'a>(obj: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, String> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(format!("{key} is {}, not a string", kind_of(other))),
    }
}

/// Field `key` of `obj` as an object: empty when absent, null or `[]` (how an empty
/// table is sometimes serialized), an error when it is something else.
fn opt_object<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
) -> Result<Option<&'a Map<String, Value>>, String> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(a)) if a.is_empty() => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m)),
        Some(other) => Err(format!("{key} is {}, not an object", kind_of(other))),
    }
}

/// The JSON type of `v`, for messages.
fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn rejected(id: impl Into<String>, reason: impl Display) -> Rejected {
    Rejected {
        id: id.into(),
        reason: reason.to_string(),
    }
}

/// A record from its parts; `None` when it has no statement.
fn record(
    id: String,
    aliases: impl IntoIterator<Item = String>,
    summary: String,
    withdrawn: bool,
    affected: Vec<Affected>,
) -> Option<Record> {
    if affected.is_empty() {
        return None;
    }
    let mut record = Record {
        id,
        aliases: aliases.into_iter().collect(),
        summary,
        severity: None,
        cvss_vector: None,
        published: None,
        modified: None,
        withdrawn,
        affected,
    };
    record.normalize();
    Some(record)
}

/// A statement about one package of one release.
fn affected(ecosystem: String, package: &str, status: Status) -> Affected {
    Affected {
        ecosystem,
        package: package.to_owned(),
        introduced: None,
        last_affected: None,
        status,
        note: None,
        severity: None,
    }
}

// ---------------------------------------------------------------------------------------
// Tracker JSON

/// Whether `v` has the tracker JSON's shape: `{source: {issue-id: {releases: …}}}`.
pub fn looks_like_tracker_json(v: &Value) -> bool {
    v.as_object().is_some_and(|sources| {
        sources.values().any(|issues| {
            issues
                .as_object()
                .is_some_and(|m| m.values().any(|e| e.get("releases").is_some()))
        })
    })
}

/// One issue while the sources are merged.
#[derive(Default)]
struct Issue {
    summary: String,
    affected: BTreeMap<(String, String), Affected>,
    error: Option<String>,
}

/// Parses the tracker JSON: one record per issue id over every source package. A
/// malformed entry rejects its whole issue (`Rejected { id: CVE, reason }` naming the
/// package and release); a malformed source package is rejected by its name.
pub fn parse_tracker_json(v: &Value) -> Parsed {
    let mut parsed = Parsed::default();
    let Some(sources) = v.as_object() else {
        parsed.rejected.push(rejected(
            "tracker JSON",
            format!(
                "the document is {}, not an object of source packages",
                kind_of(v)
            ),
        ));
        return parsed;
    };
    let mut issues: BTreeMap<&str, Issue> = BTreeMap::new();
    for (source, entries) in sources {
        let Some(entries) = entries.as_object() else {
            parsed.rejected.push(rejected(
                source.as_str(),
                format!(
                    "source package entry is {}, not an object of issues",
                    kind_of(entries)
                ),
            ));
            continue;
        };
        for (id, entry) in entries {
            if id.trim().is_empty() {
                parsed
                    .rejected
                    .push(rejected(source.as_str(), "an issue with an empty id"));
                continue;
            }
            let issue = issues.entry(id.as_str()).or_default();
            if issue.error.is_none() {
                if let Err(e) = tracker_entry(issue, source, entry) {
                    issue.error = Some(format!("source package {source}: {e}"));
                }
            }
        }
    }
    for (id, issue) in issues {
        if let Some(reason) = issue.error {
            parsed.rejected.push(rejected(id, reason));
            continue;
        }
        let affected = issue.affected.into_values().collect();
        parsed
            .records
            .extend(record(id.to_owned(), [], issue.summary, false, affected));
    }
    parsed
}

/// Adds one `(source, issue)` entry of the tracker JSON to `issue`.
fn tracker_entry(issue: &mut Issue, source: &str, entry: &Value) -> Result<(), String> {
    let entry = entry
        .as_object()
        .ok_or_else(|| format!("the entry is {}, not an object", kind_of(entry)))?;
    if issue.summary.is_empty() {
        issue.summary = summary(opt_str(entry, "description")?.unwrap_or(""));
    }
    let Some(releases) = opt_object(entry, "releases")? else {
        return Ok(());
    };
    for (codename, release) in releases {
        // sid and unnumbered codenames are no host's release: not even checked.
        let Some(ecosystem) = debian_ecosystem(codename) else {
            continue;
        };
        let (status, note, severity) = release
            .as_object()
            .ok_or_else(|| format!("{codename} is {}, not an object", kind_of(release)))
            .and_then(tracker_release)
            .map_err(|e| format!("release {codename}: {e}"))?;
        let mut a = affected(ecosystem.clone(), source, status);
        a.note = note;
        a.severity = severity;
        issue.affected.insert((ecosystem, source.to_owned()), a);
    }
    Ok(())
}

/// Status, note and severity of one release entry of the tracker JSON.
fn tracker_release(
    release: &Map<String, Value>,
) -> Result<(Status, Option<String>, Option<String>), String> {
    let urgency = opt_str(release, "urgency")?;
    let nodsa = opt_str(release, "nodsa")?;
    let reason = opt_str(release, "nodsa_reason")?.map(str::trim);
    let (status, word) = match opt_str(release, "status")? {
        Some("resolved") => match opt_str(release, "fixed_version")? {
            Some("0") => (Status::NotAffected, None),
            Some(v) => (fixed(v)?, None),
            None => return Err("status resolved without fixed_version".into()),
        },
        Some("open") if urgency.is_some_and(|u| u.trim() == "end-of-life") => {
            (Status::EndOfLife, Some("end-of-life"))
        }
        Some("open") => match (reason, nodsa) {
            (Some("ignored"), _) => (Status::WillNotFix, Some("ignored (no DSA)")),
            (Some("postponed"), _) => (Status::AffectedNoFix, Some("postponed (no DSA)")),
            (Some(r), _) if !r.is_empty() => return Err(format!("unknown nodsa_reason {r:?}")),
            (_, Some(_)) => (Status::AffectedNoFix, Some("no DSA")),
            _ => (Status::AffectedNoFix, None),
        },
        Some("undetermined") => (Status::UnderInvestigation, None),
        Some(other) => return Err(format!("unknown status {other:?}")),
        None => return Err("no status".into()),
    };
    Ok((status, note(word, nodsa), severity(urgency)))
}

// ---------------------------------------------------------------------------------------
// vuln-list records

/// Whether `v` has a vuln-list record's shape: `{"Header": {"ID": …}, "Annotations": […]}`.
pub fn looks_like_vuln_list(v: &Value) -> bool {
    v.get("Header").is_some_and(|h| h.get("ID").is_some())
        && v.get("Annotations")
            .is_none_or(|a| a.is_array() || a.is_null())
}

/// Where a statement of a CVE record comes from; decides what may replace it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// The CVE's own line for the release: never replaced.
    Explicit,
    /// Unstable's line, for a release without its own: a DSA/DLA fix replaces it.
    Inherited,
    /// A DSA/DLA fix: a lower fixed version from another advisory replaces it.
    Advisory,
}

/// A CVE (or TEMP-) record of the list, with its statements resolved.
struct Vuln {
    origin: String,
    summary: String,
    aliases: BTreeSet<String>,
    withdrawn: bool,
    affected: BTreeMap<(String, String), (Affected, Origin)>,
}

/// A DSA/DLA record: the CVEs it names and its fixes per release.
struct Advisory {
    origin: String,
    summary: String,
    cves: Vec<String>,
    /// `(ecosystem, package, fixed version)`.
    fixes: Vec<(String, String, String)>,
}

/// One `package` annotation of a list record.
struct Line<'a> {
    release: Option<&'a str>,
    package: &'a str,
    kind: &'a str,
    /// Status and the tracker's word for the note; `None` for `<removed>`/`<itp>`.
    status: Option<(Status, Option<&'static str>)>,
    description: Option<&'a str>,
    severity: Option<&'a str>,
}

/// Collects vuln-list-debian records ([`VulnList::add`]) and resolves them into CVE
/// records ([`VulnList::finish`]): unstable lines inherited, DSA/DLA fixes merged.
#[derive(Default)]
pub struct VulnList {
    vulns: BTreeMap<String, Vuln>,
    advisories: BTreeMap<String, Advisory>,
}

impl VulnList {
    /// Adds one record. `origin` (its file) names it when it has no readable id, and
    /// in the message when an id is added twice. A malformed record is returned as
    /// `Rejected` and not kept.
    pub fn add(&mut self, origin: &str, v: &Value) -> Result<(), Rejected> {
        let header = v.get("Header").and_then(Value::as_object);
        let id = match header.map(|h| opt_str(h, "ID")) {
            Some(Ok(Some(id))) if !id.trim().is_empty() => id.trim(),
            _ => {
                return Err(rejected(
                    origin,
                    "no Header.ID string; not a vuln-list record",
                ));
            }
        };
        let previous = self
            .vulns
            .get(id)
            .map(|v| &v.origin)
            .or_else(|| self.advisories.get(id).map(|a| &a.origin));
        if let Some(previous) = previous {
            return Err(rejected(
                id,
                format!("{origin}: the record was already read from {previous}"),
            ));
        }
        let description = header
            .and_then(|h| h.get("Description"))
            .and_then(Value::as_str);
        let annotations = match v.get("Annotations") {
            None | Some(Value::Null) => &[][..],
            Some(Value::Array(a)) => a.as_slice(),
            Some(other) => {
                return Err(rejected(
                    id,
                    format!("Annotations is {}, not an array", kind_of(other)),
                ));
            }
        };
        let is_advisory = ["DSA-", "DLA-", "DTSA-"].iter().any(|p| id.starts_with(p));
        let summary = summary(description.unwrap_or("").trim_matches(['(', ')', '[', ']']));
        let result = if is_advisory {
            advisory(origin, summary, annotations).map(|a| {
                self.advisories.insert(id.to_owned(), a);
            })
        } else {
            vuln(origin, summary, annotations).map(|v| {
                self.vulns.insert(id.to_owned(), v);
            })
        };
        result.map_err(|reason| rejected(id, reason))
    }

    /// Whether no record was added.
    pub fn is_empty(&self) -> bool {
        self.vulns.is_empty() && self.advisories.is_empty()
    }

    /// The CVE records, with every DSA/DLA fix merged into the CVEs it names (a CVE
    /// only a DSA names gets a record of its own).
    pub fn finish(mut self) -> Parsed {
        for (advisory_id, advisory) in &self.advisories {
            for cve in &advisory.cves {
                let vuln = self.vulns.entry(cve.clone()).or_insert_with(|| Vuln {
                    origin: advisory.origin.clone(),
                    summary: advisory.summary.clone(),
                    aliases: BTreeSet::new(),
                    withdrawn: false,
                    affected: BTreeMap::new(),
                });
                vuln.aliases.insert(advisory_id.clone());
                for (ecosystem, package, version) in &advisory.fixes {
                    merge_fix(vuln, advisory_id, ecosystem, package, version);
                }
            }
        }
        let records = self.vulns.into_iter().filter_map(|(id, v)| {
            let affected = v.affected.into_values().map(|(a, _)| a).collect();
            record(id, v.aliases, v.summary, v.withdrawn, affected)
        });
        Parsed {
            records: records.collect(),
            rejected: Vec::new(),
        }
    }
}

/// Applies a DSA/DLA fix to a CVE: it replaces an inherited statement, or an earlier
/// advisory's higher version, never the CVE's own line.
fn merge_fix(vuln: &mut Vuln, advisory: &str, ecosystem: &str, package: &str, version: &str) {
    let key = (ecosystem.to_owned(), package.to_owned());
    let severity = match vuln.affected.get(&key) {
        Some((_, Origin::Explicit)) => return,
        Some((a, Origin::Advisory)) => {
            let lower = a
                .status
                .fixed_version()
                .and_then(|old| Scheme::Dpkg.compare(version, old).ok())
                .is_some_and(|o| o.is_lt());
            if !lower {
                return;
            }
            a.severity.clone()
        }
        Some((a, Origin::Inherited)) => a.severity.clone(),
        None => None,
    };
    let mut a = affected(
        ecosystem.to_owned(),
        package,
        Status::Fixed {
            fixed_version: version.to_owned(),
        },
    );
    a.note = Some(format!("fixed by {advisory}"));
    a.severity = severity;
    vuln.affected.insert(key, (a, Origin::Advisory));
}

/// The `package` lines of a record, checked; other annotation types are returned
/// through `other` (type and the object).
fn package_lines<'a>(
    annotations: &'a [Value],
    mut other: impl FnMut(&'a str, &'a Map<String, Value>),
) -> Result<Vec<Line<'a>>, String> {
    let mut lines = Vec::new();
    for (n, annotation) in annotations.iter().enumerate() {
        let at = |e: String| format!("annotation {n}: {e}");
        let a = annotation
            .as_object()
            .ok_or_else(|| at(format!("is {}, not an object", kind_of(annotation))))?;
        let kind = opt_str(a, "Type").map_err(at)?.unwrap_or("");
        if kind != "package" {
            other(kind, a);
            continue;
        }
        lines.push(package_line(a).map_err(at)?);
    }
    Ok(lines)
}

/// One `package` annotation, checked.
fn package_line(a: &Map<String, Value>) -> Result<Line<'_>, String> {
    let package = opt_str(a, "Package")?
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .ok_or("package line without Package")?;
    let kind = opt_str(a, "Kind")?.ok_or_else(|| format!("{package}: no Kind"))?;
    let version = opt_str(a, "Version")?;
    let status = match kind {
        "fixed" => {
            let v = version.ok_or_else(|| format!("{package}: Kind fixed without Version"))?;
            Some((fixed(v).map_err(|e| format!("{package}: {e}"))?, None))
        }
        "not-affected" => Some((Status::NotAffected, None)),
        "unfixed" => Some((Status::AffectedNoFix, None)),
        "no-dsa" => Some((Status::AffectedNoFix, Some("no DSA"))),
        "postponed" => Some((Status::AffectedNoFix, Some("postponed"))),
        "ignored" => Some((Status::WillNotFix, Some("ignored"))),
        "end-of-life" => Some((Status::EndOfLife, Some("end-of-life"))),
        "undetermined" => Some((Status::UnderInvestigation, None)),
        "removed" | "itp" => None,
        other => return Err(format!("{package}: unknown Kind {other:?}")),
    };
    Ok(Line {
        release: opt_str(a, "Release")?.map(str::trim),
        package,
        kind,
        status,
        description: opt_str(a, "Description")?,
        severity: opt_str(a, "Severity")?,
    })
}

/// The CVE ids (and other ids) an `xref` annotation lists.
fn xref_ids(a: &Map<String, Value>) -> impl Iterator<Item = String> + '_ {
    a.get("Bugs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// A CVE record: explicit release lines, then unstable's inherited by the releases
/// without one.
fn vuln(origin: &str, summary: String, annotations: &[Value]) -> Result<Vuln, String> {
    let mut aliases = BTreeSet::new();
    let mut withdrawn = false;
    let lines = package_lines(annotations, |kind, a| match kind {
        "xref" => aliases.extend(xref_ids(a)),
        "REJECTED" => withdrawn = true,
        _ => {}
    })?;
    let mut unstable: BTreeMap<&str, &Line> = BTreeMap::new();
    let mut explicit: BTreeSet<(&str, &str)> = BTreeSet::new();
    for line in &lines {
        let fresh = match line.release {
            None => unstable.insert(line.package, line).is_none(),
            Some(release) => explicit.insert((release, line.package)),
        };
        if !fresh {
            return Err(format!(
                "two lines for {} in {}",
                line.package,
                line.release.unwrap_or("unstable")
            ));
        }
    }
    let mut statements = BTreeMap::new();
    let mut put = |release: &str, line: &Line, severity: Option<&str>, word: Option<String>| {
        let (Some(ecosystem), Some((status, kind_word))) =
            (debian_ecosystem(release), line.status.clone())
        else {
            return;
        };
        let mut a = affected(ecosystem.clone(), line.package, status);
        a.note = note(word.as_deref().or(kind_word), line.description);
        a.severity = severity.map(str::to_owned);
        let origin = if word.is_some() {
            Origin::Inherited
        } else {
            Origin::Explicit
        };
        statements.insert((ecosystem, line.package.to_owned()), (a, origin));
    };
    for line in &lines {
        if let Some(release) = line.release {
            let inherited = unstable.get(line.package).and_then(|u| u.severity);
            put(release, line, line.severity.or(inherited), None);
        }
    }
    for (package, line) in &unstable {
        let word = format!("{} in unstable; no release-specific line", line.kind);
        for release in INHERITING {
            if !explicit.contains(&(release, package)) {
                put(release, line, line.severity, Some(word.clone()));
            }
        }
    }
    Ok(Vuln {
        origin: origin.to_owned(),
        summary,
        aliases,
        withdrawn,
        affected: statements,
    })
}

/// A DSA/DLA record: the CVEs of its `xref` lines and its `fixed` release lines.
fn advisory(origin: &str, summary: String, annotations: &[Value]) -> Result<Advisory, String> {
    let mut cves = Vec::new();
    let lines = package_lines(annotations, |kind, a| {
        if kind == "xref" {
            cves.extend(xref_ids(a).filter(|id| id.starts_with("CVE-")));
        }
    })?;
    let fixes = lines
        .iter()
        .filter_map(|line| {
            let ecosystem = debian_ecosystem(line.release?)?;
            let version = line.status.as_ref()?.0.fixed_version()?;
            Some((ecosystem, line.package.to_owned(), version.to_owned()))
        })
        .collect();
    cves.sort();
    cves.dedup();
    Ok(Advisory {
        origin: origin.to_owned(),
        summary,
        cves,
        fixes,
    })
}

// ---------------------------------------------------------------------------------------
// security-support-ended.debN

/// The Debian release number `N` of a `security-support-ended.debN` file name (a path
/// is allowed).
fn support_release(file_name: &str) -> Option<&str> {
    let base = file_name.rsplit(['/', '\\']).next().unwrap_or(file_name);
    let n = base.strip_prefix("security-support-ended.deb")?;
    (!n.is_empty() && n.len() <= 3 && n.bytes().all(|b| b.is_ascii_digit())).then_some(n)
}

/// Whether `file_name` is a `security-support-ended.debN` list.
pub fn looks_like_security_support(file_name: &str) -> bool {
    support_release(file_name).is_some()
}

/// The first whitespace-separated word of `s` and the rest (trimmed).
fn word(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    let end = s.find(char::is_whitespace).unwrap_or(s.len());
    (&s[..end], s[end..].trim())
}

/// Whether `s` is a `YYYY-mm-dd` date.
fn is_date(s: &str) -> bool {
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok() && s.len() == 10
}

/// Whether `s` is a Debian source package name (Policy §5.6.1).
fn is_source_name(s: &str) -> bool {
    s.len() >= 2
        && s.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-.".contains(&b))
}

/// Parses a `security-support-ended.debN` list: one `EndOfLife` record
/// `DEBIAN-EOL-N-pkg` per package, for versions up to the listed one (every version
/// when it is `0`). Lines are `package version date [details]`; `#` starts a comment.
/// A package given as a pattern (`node-.*`) is rejected: records name exact packages.
pub fn parse_security_support(file_name: &str, text: &str) -> Parsed {
    let mut parsed = Parsed::default();
    let Some(n) = support_release(file_name) else {
        parsed.rejected.push(rejected(
            file_name,
            "not a security-support-ended.debN file: the release number N is needed",
        ));
        return parsed;
    };
    let ecosystem = format!("Debian:{n}");
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (index, line) in text.lines().enumerate() {
        let line_no = index + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (package, rest) = word(line);
        let id = format!("DEBIAN-EOL-{n}-{package}");
        match support_line(&ecosystem, n, package, rest) {
            Err(reason) => parsed.rejected.push(rejected(
                id,
                format!("{file_name} line {line_no}: {reason}"),
            )),
            Ok(record) => match seen.insert(id.clone(), line_no) {
                Some(first) => parsed.rejected.push(rejected(
                    id,
                    format!("{file_name} line {line_no}: {package} already listed on line {first}"),
                )),
                None => parsed.records.push(record),
            },
        }
    }
    parsed.records.sort_by(|a, b| a.id.cmp(&b.id));
    parsed
}

/// One line of a `security-support-ended.debN` list after the package name.
fn support_line(ecosystem: &str, n: &str, package: &str, rest: &str) -> Result<Record, String> {
    if !is_source_name(package) {
        return Err(format!(
            "{package:?} is not a source package name (a pattern is not imported: records \
             name exact packages)"
        ));
    }
    let (version, rest) = word(rest);
    if version.is_empty() {
        return Err(format!("{package}: no version column"));
    }
    let (date, details) = match word(rest) {
        (d, details) if is_date(d) => (Some(d), details),
        _ => (None, rest),
    };
    let last_affected = match version {
        "0" => None,
        v => {
            Scheme::Dpkg
                .parse_check(v)
                .map_err(|e| format!("{package}: {e}"))?;
            Some(v.to_owned())
        }
    };
    let details = (!details.is_empty()).then_some(details);
    let mut a = affected(ecosystem.to_owned(), package, Status::EndOfLife);
    a.last_affected = last_affected;
    a.note = note(
        Some(&match date {
            Some(d) => format!("security support ended {d}"),
            None => "security support ended".to_owned(),
        }),
        details,
    );
    let mut text = format!("security support for {package} ended in Debian {n}");
    if let Some(d) = details {
        text = format!("{text}: {d}");
    }
    let mut record = record(
        format!("DEBIAN-EOL-{n}-{package}"),
        [],
        summary(&text),
        false,
        vec![a],
    )
    .ok_or("no statement")?;
    record.published = date.map(|d| format!("{d}T00:00:00Z"));
    Ok(record)
}
