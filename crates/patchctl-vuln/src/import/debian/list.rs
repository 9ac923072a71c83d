//! The vuln-list-debian records (`CVE/*.json`, `DSA/*.json`, `DLA/*.json`): collected
//! by [`VulnList`], then resolved (unstable lines inherited, DSA/DLA fixes merged; see
//! the module docs of `debian`).

use std::collections::{BTreeMap, BTreeSet};

use patchctl_version::Scheme;
use serde_json::{Map, Value};

use super::{
    EntryError, INHERITING, affected, fixed, kind_of, note, opt_str, record, rejected, summary,
};
use crate::ecosystem::debian_ecosystem;
use crate::{Affected, Parsed, Rejected, Status};

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
) -> Result<Vec<Line<'a>>, EntryError> {
    let mut lines = Vec::new();
    for (n, annotation) in annotations.iter().enumerate() {
        let at = |e: EntryError| EntryError::Annotation {
            n,
            error: Box::new(e),
        };
        let a = annotation
            .as_object()
            .ok_or_else(|| at(EntryError::AnnotationNotObject(kind_of(annotation))))?;
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
fn package_line(a: &Map<String, Value>) -> Result<Line<'_>, EntryError> {
    let package = opt_str(a, "Package")?
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .ok_or(EntryError::NoPackage)?;
    let kind = opt_str(a, "Kind")?.ok_or_else(|| EntryError::NoKind.of_package(package))?;
    let version = opt_str(a, "Version")?;
    let status = match kind {
        "fixed" => {
            let v = version.ok_or_else(|| EntryError::FixedWithoutVersion.of_package(package))?;
            Some((fixed(v).map_err(|e| e.of_package(package))?, None))
        }
        "not-affected" => Some((Status::NotAffected, None)),
        "unfixed" => Some((Status::AffectedNoFix, None)),
        "no-dsa" => Some((Status::AffectedNoFix, Some("no DSA"))),
        "postponed" => Some((Status::AffectedNoFix, Some("postponed"))),
        "ignored" => Some((Status::WillNotFix, Some("ignored"))),
        "end-of-life" => Some((Status::EndOfLife, Some("end-of-life"))),
        "undetermined" => Some((Status::UnderInvestigation, None)),
        "removed" | "itp" => None,
        other => return Err(EntryError::UnknownKind(other.to_owned()).of_package(package)),
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
fn vuln(origin: &str, summary: String, annotations: &[Value]) -> Result<Vuln, EntryError> {
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
            return Err(EntryError::TwoLines {
                package: line.package.to_owned(),
                release: line.release.unwrap_or("unstable").to_owned(),
            });
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
fn advisory(origin: &str, summary: String, annotations: &[Value]) -> Result<Advisory, EntryError> {
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
