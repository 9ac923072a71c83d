//! OSV records (<https://ossf.github.io/osv-schema/>), as AlmaLinux, Rocky Linux, Ubuntu
//! and osv.dev publish them.
//!
//! One OSV record becomes one [`Record`] of the feed [`FEED`]; every `ECOSYSTEM` range
//! interval of an `affected[]` entry becomes one [`Affected`]:
//!
//! * `introduced` .. `fixed` → [`Status::Fixed`] (`introduced: "0"` → no lower bound);
//! * `introduced` .. `last_affected` → [`Status::AffectedNoFix`] with `last_affected`;
//! * `introduced` with nothing after it → [`Status::AffectedNoFix`];
//! * no `ECOSYSTEM` range but a `versions` list → [`Status::AffectedNoFix`] with the note
//!   "listed versions only". `GIT` and `SEMVER` ranges are ignored (distribution data
//!   never relies on them), and so is `limit`.
//!
//! Ids: `aliases`, `upstream` and `related` all become aliases: AlmaLinux and Rocky list
//! their CVE ids in `related`, Ubuntu in `upstream` (and its USN ids in `related`).
//! Severity: an `Ubuntu` severity entry, else `database_specific.severity`, else the word
//! before `": "` in the summary when it is Red Hat's (`Important: thunderbird security
//! update`). CVSS: the first `CVSS_V3` vector, else `CVSS_V4`, else `CVSS_V2`.
//!
//! What the real data showed: AlmaLinux (5,680 records) and Rocky only use
//! `introduced: "0"` .. `fixed` ranges and carry no `severity` array; Rocky writes the
//! zero epoch explicitly (`0:102.11.0-2.el8_7`). Ubuntu's `ecosystem_specific` holds only
//! `binaries` and `availability` (which Ubuntu Pro subscription ships the fix): no
//! "will not fix", "deferred", "ignored" or "needs-triage" survives the conversion to OSV,
//! so an unfixed Ubuntu issue is an `introduced`-only range ([`Status::AffectedNoFix`])
//! whatever Ubuntu decided; those statuses are only in the OpenVEX documents
//! ([`super::vex`]). osv.dev's Debian records put the tracker's `urgency` in
//! `ecosystem_specific`, which becomes [`Affected::severity`].
//! SUSE's records name the **source** package and list the advisory's binaries with their
//! fixed builds in `ecosystem_specific.binaries`: each binary gets a fixed statement of
//! its own, and the statements of products merged into one ecosystem are merged
//! ([`super::suse`]).
//!
//! Strictness (a violation rejects the whole record, reported by its id): `id` is a
//! non-empty string; every `affected[]` entry names its ecosystem and package; every
//! range event is an object with one of `introduced`, `fixed`, `last_affected` or
//! `limit` mapped to a string, a `fixed` or `last_affected` closes an interval that an
//! `introduced` opened; and when [`crate::ecosystem::rules`] knows the ecosystem's family,
//! every version passes that scheme's well-formedness check. Unknown fields are ignored.

use patchctl_version::{Scheme, VersionError};
use serde::Deserialize;
use serde_json::Value;

use super::one_line;
use crate::ecosystem;
use crate::{Affected, Record, Rejected, Status};

/// Feed name of OSV records.
pub const FEED: &str = "osv";

/// Whether `v` looks like an OSV record: an object with `id` and one of `affected`,
/// `schema_version` or `modified`.
pub fn looks_like(v: &Value) -> bool {
    v.get("id").is_some()
        && ["affected", "schema_version", "modified"]
            .iter()
            .any(|k| v.get(k).is_some())
}

#[derive(Deserialize)]
struct Osv {
    id: String,
    #[serde(default)]
    aliases: Option<Vec<String>>,
    #[serde(default)]
    upstream: Option<Vec<String>>,
    #[serde(default)]
    related: Option<Vec<String>>,
    #[serde(default)]
    summary: Option<String>,
    #[serde(default)]
    details: Option<String>,
    #[serde(default)]
    severity: Option<Vec<Severity>>,
    #[serde(default)]
    published: Option<String>,
    #[serde(default)]
    modified: Option<String>,
    #[serde(default)]
    withdrawn: Option<String>,
    #[serde(default)]
    database_specific: Option<Value>,
    #[serde(default)]
    affected: Option<Vec<OsvAffected>>,
}

#[derive(Deserialize)]
struct Severity {
    #[serde(rename = "type")]
    kind: String,
    score: String,
}

#[derive(Deserialize)]
struct OsvAffected {
    #[serde(default)]
    package: Option<Package>,
    #[serde(default)]
    ranges: Option<Vec<Range>>,
    #[serde(default)]
    versions: Option<Vec<String>>,
    #[serde(default)]
    ecosystem_specific: Option<Value>,
    #[serde(default)]
    database_specific: Option<Value>,
}

#[derive(Deserialize)]
struct Package {
    #[serde(default)]
    ecosystem: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize)]
struct Range {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    events: Vec<Value>,
}

/// Parses one OSV record. `origin` names where it came from, for the rejection of a
/// record whose id cannot be read.
pub fn parse(origin: &str, v: &Value) -> Result<Record, Rejected> {
    let id = v
        .get("id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .unwrap_or(origin)
        .to_string();
    let reject = |reason: String| Rejected {
        id: id.clone(),
        reason,
    };
    let osv = Osv::deserialize(v).map_err(|e| {
        reject(format!(
            "not a valid OSV record: {}",
            one_line(&e.to_string())
        ))
    })?;
    if osv.id.is_empty() {
        return Err(reject("the OSV record's id is empty".into()));
    }
    let mut affected = Vec::new();
    for (i, entry) in osv.affected.iter().flatten().enumerate() {
        affected_entry(entry, &mut affected).map_err(|e| reject(format!("affected[{i}]: {e}")))?;
    }
    super::suse::merge_products(&mut affected);
    let severities = osv.severity.as_deref().unwrap_or_default();
    let summary = osv
        .summary
        .as_deref()
        .filter(|s| !s.trim().is_empty())
        .or(osv.details.as_deref())
        .map(one_line)
        .unwrap_or_default();
    let severity = severities
        .iter()
        .find(|s| s.kind == "Ubuntu")
        .map(|s| s.score.clone())
        .or_else(|| string_field(osv.database_specific.as_ref(), "severity"))
        .or_else(|| red_hat_severity(&summary));
    let mut record = Record {
        id: osv.id,
        aliases: [osv.aliases, osv.upstream, osv.related]
            .into_iter()
            .flatten()
            .flatten()
            .collect(),
        summary,
        severity,
        cvss_vector: best_cvss(severities),
        published: osv.published,
        modified: osv.modified,
        withdrawn: osv.withdrawn.is_some(),
        exploited: None,
        affected,
    };
    record.normalize();
    Ok(record)
}

/// The word before `": "` in a Red Hat style summary, when it is a severity.
fn red_hat_severity(summary: &str) -> Option<String> {
    let (word, _) = summary.split_once(": ")?;
    ["Critical", "Important", "Moderate", "Low"]
        .contains(&word)
        .then(|| word.to_string())
}

fn best_cvss(severities: &[Severity]) -> Option<String> {
    ["CVSS_V3", "CVSS_V4", "CVSS_V2"].iter().find_map(|kind| {
        severities
            .iter()
            .find(|s| s.kind == *kind && !s.score.is_empty())
            .map(|s| s.score.clone())
    })
}

/// `obj[key]` when it is a string.
fn string_field(obj: Option<&Value>, key: &str) -> Option<String> {
    obj?.get(key)?.as_str().map(str::to_string)
}

/// The entry's own severity: `severity` or `urgency` of `ecosystem_specific` or
/// `database_specific`, when a string.
fn entry_severity(entry: &OsvAffected) -> Option<String> {
    [&entry.ecosystem_specific, &entry.database_specific]
        .into_iter()
        .flat_map(|obj| ["severity", "urgency"].map(|k| string_field(obj.as_ref(), k)))
        .flatten()
        .next()
}

/// What is wrong with one `affected[]` entry (the reason of a rejection).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum EntryError {
    /// The entry names no package.
    #[error("no package")]
    NoPackage,
    /// The package names no ecosystem.
    #[error("package has no ecosystem")]
    NoEcosystem,
    /// The package has no name.
    #[error("package in {0} has no name")]
    NoName(String),
    /// A version that is not one of the ecosystem's scheme.
    #[error(
        "{what} version '{version}' of package {name} is not a valid {scheme} version: {error}"
    )]
    BadVersion {
        what: String,
        version: String,
        name: String,
        scheme: Scheme,
        error: Box<VersionError>,
    },
    /// An `ECOSYSTEM` range without events.
    #[error("an ECOSYSTEM range of {0} has no events")]
    NoEvents(String),
    /// A range event that is not a one-key object with a non-empty string.
    #[error("range event {0} is not an object with one non-empty string value")]
    BadEvent(String),
    /// A `fixed` or `last_affected` event before any `introduced`.
    #[error("'{kind}: {version}' of {name} does not follow an 'introduced'")]
    Unopened {
        kind: String,
        version: String,
        name: String,
    },
    /// A range event of an unknown kind.
    #[error("unknown range event '{kind}' for {name}")]
    UnknownEvent { kind: String, name: String },
    /// SUSE's `ecosystem_specific.binaries` of an unreadable shape.
    #[error("{0}")]
    SuseBinaries(String),
}

/// Appends the intervals of one `affected[]` entry.
fn affected_entry(entry: &OsvAffected, out: &mut Vec<Affected>) -> Result<(), EntryError> {
    let package = entry.package.as_ref().ok_or(EntryError::NoPackage)?;
    let ecosystem = package
        .ecosystem
        .as_deref()
        .filter(|s| !s.is_empty())
        .ok_or(EntryError::NoEcosystem)?;
    // Red Hat's CPE ecosystems and SUSE's product names, made canonical; an entry about
    // a vendor product that is not an operating system (OpenShift, ...) is left out.
    let Some(ecosystem) = ecosystem::names::normalize(ecosystem) else {
        return Ok(());
    };
    let ecosystem = ecosystem.as_str();
    let name = package
        .name
        .as_deref()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| EntryError::NoName(ecosystem.to_string()))?;
    let check = |what: &str, version: &str| -> Result<(), EntryError> {
        match ecosystem::rules(ecosystem) {
            Some(rules) => {
                rules
                    .scheme
                    .parse_check(version)
                    .map_err(|error| EntryError::BadVersion {
                        what: what.to_string(),
                        version: version.to_string(),
                        name: name.to_string(),
                        scheme: rules.scheme,
                        error: Box::new(error),
                    })
            }
            None => Ok(()),
        }
    };
    let severity = entry_severity(entry);
    let base = Affected {
        ecosystem: ecosystem.to_string(),
        package: name.to_string(),
        introduced: None,
        last_affected: None,
        status: Status::AffectedNoFix,
        note: None,
        severity,
    };
    let before = out.len();
    let ranges = entry.ranges.iter().flatten();
    for range in ranges.filter(|r| r.kind == "ECOSYSTEM") {
        if range.events.is_empty() {
            return Err(EntryError::NoEvents(name.to_string()));
        }
        // The interval being walked: `Some(introduced)` once an `introduced` opened it.
        let mut open: Option<Option<String>> = None;
        for event in &range.events {
            let (kind, version) = event_of(event)?;
            match kind {
                "introduced" => {
                    if version != "0" {
                        check(kind, version)?;
                    }
                    if let Some(introduced) = open.take() {
                        out.push(Affected {
                            introduced,
                            ..base.clone()
                        });
                    }
                    open = Some((version != "0").then(|| version.to_string()));
                }
                "fixed" | "last_affected" => {
                    check(kind, version)?;
                    let introduced = open.take().ok_or_else(|| EntryError::Unopened {
                        kind: kind.to_string(),
                        version: version.to_string(),
                        name: name.to_string(),
                    })?;
                    let (status, last_affected) = if kind == "fixed" {
                        let fixed_version = version.to_string();
                        (Status::Fixed { fixed_version }, None)
                    } else {
                        (Status::AffectedNoFix, Some(version.to_string()))
                    };
                    out.push(Affected {
                        introduced,
                        last_affected,
                        status,
                        ..base.clone()
                    });
                }
                "limit" => {}
                other => {
                    return Err(EntryError::UnknownEvent {
                        kind: other.to_string(),
                        name: name.to_string(),
                    });
                }
            }
        }
        if let Some(introduced) = open {
            out.push(Affected {
                introduced,
                ..base.clone()
            });
        }
    }
    let stated = out.len() > before;
    // SUSE: the entry's package is the source; each binary it lists gets its own fixed
    // statement (see super::suse)
    let binaries = super::suse::osv_binaries(ecosystem, entry.ecosystem_specific.as_ref());
    for (binary, fixed_version) in binaries.map_err(EntryError::SuseBinaries)? {
        check("fixed", &fixed_version)?;
        out.push(Affected {
            package: binary,
            status: Status::Fixed { fixed_version },
            ..base.clone()
        });
    }
    if !stated && entry.versions.as_ref().is_some_and(|v| !v.is_empty()) {
        out.push(Affected {
            note: Some("listed versions only".into()),
            ..base
        });
    }
    Ok(())
}

/// A range event: an object with exactly one key mapped to a non-empty string.
fn event_of(event: &Value) -> Result<(&str, &str), EntryError> {
    match event
        .as_object()
        .map(|o| o.iter().collect::<Vec<_>>())
        .as_deref()
    {
        Some([(kind, Value::String(version))]) if !version.is_empty() => {
            Ok((kind.as_str(), version.as_str()))
        }
        _ => Err(EntryError::BadEvent(one_line(&event.to_string()))),
    }
}
