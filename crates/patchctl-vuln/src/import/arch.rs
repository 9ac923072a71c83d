//! The Arch Linux security tracker (<https://security.archlinux.org/>) JSON: feed
//! [`FEED`]. Its `all.json` is an array of AVG groups; mirrors also store one group per
//! file (`AVG-1000.json`). Both are read.
//!
//! One [`Record`] per AVG group: id `AVG-…`, aliases the `issues` (CVE ids) then the
//! `advisories` (ASA ids), severity the tracker's word (`Critical`, `High`, `Unknown`),
//! summary the group's `type` (`denial of service`). One [`Affected`] per package in
//! `packages`, in the one ecosystem [`names::ARCH`], keyed by the package name (pacman
//! versions `[epoch:]pkgver-pkgrel`):
//!
//! | tracker `status` | statement |
//! |---|---|
//! | `Fixed` (with `fixed`) | [`Status::Fixed`] at `fixed` |
//! | `Testing` (with `fixed`) | [`Status::Fixed`] at `fixed`, note "fixed in … in the \[testing\] repositories only": the fix exists; a host below it is vulnerable, one that installed the testing build is not |
//! | `Vulnerable` | [`Status::AffectedNoFix`] |
//! | `Not affected` | [`Status::NotAffected`], even with a `fixed` version (AVG-2737): the note keeps it |
//! | `Unknown` | [`Status::UnderInvestigation`], a `fixed` version kept in the note (AVG-2780) |
//!
//! `affected` is the single version the tracker saw vulnerable, **not** a range: it is
//! never used as `introduced` or `last_affected`, only quoted in the note.
//!
//! Rejected (by id, or `<file>: group N`): an entry without an `AVG-` name, without
//! packages, with an unknown status, `Fixed`/`Testing` without a `fixed` version, or a
//! version pacman's syntax refuses.

use serde::Deserialize;
use serde_json::Value;

use crate::ecosystem::{self, names};
use crate::{Affected, Parsed, Record, Rejected, Status};

use super::{bare_record, clip, one_line};

/// Feed name of the Arch Linux security tracker.
pub const FEED: &str = "arch-tracker";

/// Most packages kept from one group (the real maximum is a few dozen).
const MAX_PACKAGES: usize = 10_000;

/// Whether `v` is tracker data: an AVG group (`name` `AVG-…`, `packages`, `status`) or
/// an array whose first element is one.
pub fn looks_like(v: &Value) -> bool {
    let is_group = |g: &Value| {
        g.get("name")
            .and_then(Value::as_str)
            .is_some_and(|n| n.starts_with("AVG-"))
            && g.get("packages").is_some()
            && g.get("status").is_some()
    };
    match v {
        Value::Array(items) => items.first().is_some_and(is_group),
        _ => is_group(v),
    }
}

/// Parses tracker data (see [`looks_like`]); `origin` names the document in rejections
/// of groups without a name.
pub fn parse(origin: &str, v: &Value) -> Parsed {
    let groups: Vec<&Value> = match v {
        Value::Array(items) => items.iter().collect(),
        _ => vec![v],
    };
    let mut parsed = Parsed::default();
    for (i, g) in groups.into_iter().enumerate() {
        match group(origin, i, g) {
            Ok(record) => parsed.records.push(record),
            Err(rejected) => parsed.rejected.push(rejected),
        }
    }
    parsed
}

#[derive(Deserialize)]
struct Group {
    name: Option<String>,
    #[serde(default)]
    packages: Vec<String>,
    status: Option<String>,
    severity: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    affected: Option<String>,
    fixed: Option<String>,
    #[serde(default)]
    issues: Vec<String>,
    #[serde(default)]
    advisories: Vec<String>,
}

fn group(origin: &str, i: usize, v: &Value) -> Result<Record, Rejected> {
    let id = v
        .get("name")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map_or_else(|| format!("{origin}: group {}", i + 1), |s| clip(s, 200));
    let reject = |reason: String| Rejected {
        id: id.clone(),
        reason,
    };
    let g = Group::deserialize(v).map_err(|e| reject(format!("not a tracker group: {e}")))?;
    let name = g.name.unwrap_or_default();
    if !name.starts_with("AVG-") {
        return Err(reject("the group's name is not an AVG id".into()));
    }
    if g.packages.is_empty() || g.packages.iter().any(|p| p.trim().is_empty()) {
        return Err(reject("no packages, or an empty package name".into()));
    }
    if g.packages.len() > MAX_PACKAGES {
        return Err(reject(format!("more than {MAX_PACKAGES} packages")));
    }
    let eco = names::ARCH;
    let scheme = ecosystem::rules(eco)
        .map(|r| r.scheme)
        .ok_or_else(|| reject(format!("no version rules for {eco}")))?;
    let fixed = g.fixed.filter(|f| !f.trim().is_empty());
    if let Some(f) = &fixed {
        scheme
            .parse_check(f)
            .map_err(|e| reject(format!("fixed version {f:?}: {e}")))?;
    }
    let tracker_status = g.status.unwrap_or_default();
    let seen = g
        .affected
        .filter(|a| !a.trim().is_empty())
        .map(|a| format!("; version seen vulnerable: {}", clip(&a, 100)))
        .unwrap_or_default();
    let fixed_note = fixed
        .as_deref()
        .map(|f| format!("; fixed version given: {f}"))
        .unwrap_or_default();
    let need_fixed = || {
        fixed
            .clone()
            .ok_or_else(|| reject(format!("status {tracker_status} without a fixed version")))
    };
    let (status, note) = match tracker_status.as_str() {
        "Fixed" => (
            Status::Fixed {
                fixed_version: need_fixed()?,
            },
            format!("Fixed{seen}"),
        ),
        "Testing" => {
            let f = need_fixed()?;
            let note = format!("Testing: fixed in {f} in the [testing] repositories only{seen}");
            (Status::Fixed { fixed_version: f }, note)
        }
        "Vulnerable" => (
            Status::AffectedNoFix,
            format!("Vulnerable{seen}{fixed_note}"),
        ),
        "Not affected" => (
            Status::NotAffected,
            format!("Not affected{seen}{fixed_note}"),
        ),
        "Unknown" => (
            Status::UnderInvestigation,
            format!("Unknown{seen}{fixed_note}"),
        ),
        other => {
            return Err(reject(format!(
                "unknown status {:?} (Vulnerable, Fixed, Testing, Not affected or Unknown)",
                clip(other, 40)
            )));
        }
    };
    let mut record = bare_record(name, None);
    record.summary = one_line(g.kind.as_deref().unwrap_or_default());
    record.severity = g.severity.filter(|s| !s.is_empty());
    record.aliases = g.issues.into_iter().chain(g.advisories).collect();
    let mut packages = g.packages;
    packages.sort();
    packages.dedup();
    record.affected = packages
        .into_iter()
        .map(|package| Affected {
            ecosystem: eco.to_string(),
            package,
            introduced: None,
            last_affected: None,
            status: status.clone(),
            note: Some(note.clone()),
            severity: None,
        })
        .collect();
    record.normalize();
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use proptest::prelude::*;

    /// JSON values made of the tracker's and Bodhi's own keys and words.
    fn value() -> impl Strategy<Value = Value> {
        let word = prop::sample::select(vec![
            "AVG-1",
            "Fixed",
            "Testing",
            "Vulnerable",
            "Not affected",
            "Unknown",
            "1:2.0-1",
            "1.0-1",
            "",
            "security",
            "stable",
            "testing",
            "F40",
            "F40F",
            "a-1-1.fc40",
            "rpm",
            "module",
            "CVE-2020-12345",
        ]);
        let leaf = prop_oneof![
            word.prop_map(|w| Value::String(w.into())),
            any::<i64>().prop_map(Value::from),
            any::<bool>().prop_map(Value::from),
            Just(Value::Null),
        ];
        let key = prop::sample::select(vec![
            "name",
            "packages",
            "status",
            "fixed",
            "affected",
            "issues",
            "advisories",
            "type",
            "severity",
            "alias",
            "builds",
            "release",
            "nvr",
            "epoch",
            "bugs",
            "security",
            "title",
            "updates",
            "total",
        ]);
        leaf.prop_recursive(4, 64, 8, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map(key.clone(), inner, 0..8).prop_map(|m| {
                    Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
                }),
            ]
        })
    }

    proptest! {
        #[test]
        fn any_json_never_panics(v in value()) {
            let arch = parse("p.json", &v);
            prop_assert!(arch.records.iter().all(|r| r.id.starts_with("AVG-")));
            let _ = looks_like(&v);
            let bodhi = super::super::fedora::parse_bodhi("p.json", &v);
            prop_assert!(bodhi.records.iter().all(|r| !r.id.is_empty()));
        }
    }

    #[test]
    fn statuses_and_rejections() {
        let doc = json!([
            {"name": "AVG-1", "packages": ["a", "b"], "status": "Testing", "fixed": "1:2.0-1",
             "affected": "1:1.0-1", "issues": ["CVE-2020-1"], "advisories": []},
            {"name": "AVG-2", "packages": ["a"], "status": "Vulnerable", "fixed": null},
            {"name": "AVG-3", "packages": ["a"], "status": "Fixed", "fixed": null},
            {"name": "AVG-4", "packages": ["a"], "status": "Broken"},
            {"packages": ["a"], "status": "Fixed"},
            {"name": "AVG-6", "packages": [], "status": "Fixed", "fixed": "1-1"},
            {"name": "AVG-7", "packages": "a", "status": "Fixed"}
        ]);
        let p = parse("all.json", &doc);
        let ids: Vec<_> = p.rejected.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(
            ids,
            ["AVG-3", "AVG-4", "all.json: group 5", "AVG-6", "AVG-7"]
        );
        assert_eq!(p.records.len(), 2);
        let t = &p.records[0];
        assert_eq!(t.affected.len(), 2);
        assert_eq!(t.affected[0].status.fixed_version(), Some("1:2.0-1"));
        assert_eq!(t.affected[0].introduced, None);
        assert_eq!(
            t.affected[0].note.as_deref(),
            Some(
                "Testing: fixed in 1:2.0-1 in the [testing] repositories only; version seen \
                 vulnerable: 1:1.0-1"
            )
        );
        assert_eq!(p.records[1].affected[0].status, Status::AffectedNoFix);
        assert!(looks_like(&doc));
        assert!(!looks_like(&json!([])));
    }
}
