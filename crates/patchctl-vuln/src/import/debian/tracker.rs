//! The tracker JSON (`/tracker/data/json`): one record per issue over every source
//! package (see the module docs of `debian`).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::{
    EntryError, affected, fixed, kind_of, note, opt_object, opt_str, record, rejected, severity,
    summary,
};
use crate::ecosystem::debian_ecosystem;
use crate::{Affected, Parsed, Status};

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
fn tracker_entry(issue: &mut Issue, source: &str, entry: &Value) -> Result<(), EntryError> {
    let entry = entry.as_object().ok_or_else(|| EntryError::NotObject {
        what: "the entry".to_owned(),
        kind: kind_of(entry),
    })?;
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
            .ok_or_else(|| EntryError::NotObject {
                what: codename.clone(),
                kind: kind_of(release),
            })
            .and_then(tracker_release)
            .map_err(|e| EntryError::InRelease {
                codename: codename.clone(),
                error: Box::new(e),
            })?;
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
) -> Result<(Status, Option<String>, Option<String>), EntryError> {
    let urgency = opt_str(release, "urgency")?;
    let nodsa = opt_str(release, "nodsa")?;
    let reason = opt_str(release, "nodsa_reason")?.map(str::trim);
    let (status, word) = match opt_str(release, "status")? {
        Some("resolved") => match opt_str(release, "fixed_version")? {
            Some("0") => (Status::NotAffected, None),
            Some(v) => (fixed(v)?, None),
            None => return Err(EntryError::ResolvedWithoutFixed),
        },
        Some("open") if urgency.is_some_and(|u| u.trim() == "end-of-life") => {
            (Status::EndOfLife, Some("end-of-life"))
        }
        Some("open") => match (reason, nodsa) {
            (Some("ignored"), _) => (Status::WillNotFix, Some("ignored (no DSA)")),
            (Some("postponed"), _) => (Status::AffectedNoFix, Some("postponed (no DSA)")),
            (Some(r), _) if !r.is_empty() => {
                return Err(EntryError::UnknownNodsaReason(r.to_owned()));
            }
            (_, Some(_)) => (Status::AffectedNoFix, Some("no DSA")),
            _ => (Status::AffectedNoFix, None),
        },
        Some("undetermined") => (Status::UnderInvestigation, None),
        Some(other) => return Err(EntryError::UnknownStatus(other.to_owned())),
        None => return Err(EntryError::NoStatus),
    };
    Ok((status, note(word, nodsa), severity(urgency)))
}
