//! Fedora's security updates: Bodhi update objects (JSON) and the repositories'
//! `updateinfo.xml` (read by [`super::updateinfo`]): feed [`FEED`].
//!
//! Fedora publishes no CVE feed: these are security advisories only
//! ([`crate::ecosystem::DataKind::SecurityAdvisories`]). A CVE no update fixed yet is
//! not in the data, and "not affected" or "will not fix" is never stated: every
//! statement is [`Status::Fixed`].
//!
//! Only updates of type `security` become records; `bugfix`, `enhancement` and
//! `newpackage` updates are skipped (they are not rejections). So are the releases that
//! are not a Fedora host's packages: Bodhi's flatpak (`F38F`) and container (`F29C`)
//! releases and EPEL ([`names::fedora`] says `None`).
//!
//! **Bodhi** (`/updates/?releases=F38&type=security`: the response object with its
//! `updates` array, the array alone, or one update object): record id the update's
//! `alias` (`FEDORA-2023-bb021a4854`), ecosystem from `release.name` (`F38`, modular
//! `F38M` → `Fedora:38`). Each RPM build's `nvr` is a **source** NVR
//! (`kernel-6.6.2-101.fc38`) with the epoch in the separate `epoch` field: one `Fixed`
//! per build keyed by the source name at `[epoch:]version-release`; the matcher finds
//! it from a binary through its source RPM (`kernel-core` → `kernel`). A module build
//! (`mysql-8.0-3820230907003352.75741a8b`) names no RPM version and gives no statement
//! (the record keeps its CVE ids). CVE ids come only from the titles of bugs marked
//! `security: true`.
//!
//! **updateinfo.xml**: each `<package>` is a fixed binary RPM (`src` ones under their
//! own name): one `Fixed` per name (see [`super::updateinfo`]); ecosystem from the
//! collection's short name (`F43`, `F38M`), else `<release>` (`Fedora 38 Modular`);
//! CVE ids from `<reference type="cve">` and the bugzilla references' titles. A modular
//! security update has an empty pkglist: its record has no statement.
//!
//! **Status** (Bodhi `status`, updateinfo `status`): `stable` → `Fixed`; `testing` →
//! `Fixed` too, with the note "fixed in updates-testing only …": the fix exists and is
//! installable from updates-testing, a host below it is vulnerable either way, and a
//! host that installed the testing build must not be reported vulnerable (which
//! `affected_no_fix` would do to every version). Any other Bodhi status (`pending`,
//! `obsolete`, `unpushed`, `revoked`) means the builds are not, or no longer, what the
//! repositories ship: the record is kept `withdrawn` (never matched), its note names the
//! status.
//!
//! Rejected (by id): an update without id or release, an RPM build whose NVR is not
//! `name-version-release` or whose version rpm cannot read, a non-numeric epoch.

use serde::Deserialize;
use serde_json::Value;

use crate::ecosystem::{self, names};
use crate::{Affected, Parsed, Record, Rejected, Status};

use super::updateinfo::{Update, cve_ids_in, fixed_per_name, utc_time};
use super::{bare_record, clip, one_line};

/// Feed name of Fedora's security updates.
pub const FEED: &str = "fedora-updates";

/// The note of a statement whose fix is only in updates-testing.
pub const TESTING_NOTE: &str = "fixed in updates-testing only (status testing): not yet \
     in the stable updates repository";

/// Whether `v` is Bodhi's update data: the `/updates/` response (`updates` array with
/// `total`/`page`), an array of update objects, or one update object.
pub fn looks_like_bodhi(v: &Value) -> bool {
    let is_update = |u: &Value| {
        u.get("builds").is_some()
            && u.get("release").is_some()
            && (u.get("alias").is_some() || u.get("updateid").is_some())
    };
    match v {
        Value::Array(items) => items.first().is_some_and(is_update),
        Value::Object(o) => match o.get("updates") {
            Some(Value::Array(items)) => match items.first() {
                Some(first) => is_update(first),
                None => o.contains_key("total") || o.contains_key("page"),
            },
            _ => is_update(v),
        },
        _ => false,
    }
}

/// Whether `v` is Bodhi's list of releases (`/releases/`): not updates.
pub fn looks_like_bodhi_releases(v: &Value) -> bool {
    v.get("releases")
        .and_then(Value::as_array)
        .and_then(|r| r.first())
        .is_some_and(|r| r.get("id_prefix").is_some() || r.get("dist_tag").is_some())
}

/// What [`crate::import`] answers for Bodhi's release list.
pub const RELEASES_HINT: &str = "Bodhi's list of releases, not updates: import \
     /updates/?releases=F40&type=security (the `updates` it returns)";

/// Parses Bodhi update data (see [`looks_like_bodhi`]); `origin` names the document
/// in rejections of updates without an id.
pub fn parse_bodhi(origin: &str, v: &Value) -> Parsed {
    let items: Vec<&Value> = match v {
        Value::Array(items) => items.iter().collect(),
        Value::Object(o) => match o.get("updates") {
            Some(Value::Array(items)) => items.iter().collect(),
            _ => vec![v],
        },
        _ => Vec::new(),
    };
    let mut parsed = Parsed::default();
    for (i, item) in items.into_iter().enumerate() {
        match bodhi_update(origin, i, item) {
            Ok(Some(record)) => parsed.records.push(record),
            Ok(None) => {}
            Err(rejected) => parsed.rejected.push(rejected),
        }
    }
    parsed
}

#[derive(Deserialize)]
struct BodhiUpdate {
    alias: Option<String>,
    updateid: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    status: Option<String>,
    severity: Option<String>,
    title: Option<String>,
    release: Option<BodhiRelease>,
    #[serde(default)]
    builds: Vec<BodhiBuild>,
    #[serde(default)]
    bugs: Vec<BodhiBug>,
    date_submitted: Option<String>,
    date_pushed: Option<String>,
    date_testing: Option<String>,
    date_stable: Option<String>,
    date_modified: Option<String>,
}

#[derive(Deserialize)]
struct BodhiRelease {
    name: Option<String>,
}

#[derive(Deserialize)]
struct BodhiBuild {
    nvr: Option<String>,
    epoch: Option<Value>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

#[derive(Deserialize)]
struct BodhiBug {
    security: Option<bool>,
    title: Option<String>,
}

/// The id of the `i`th update of a document, for rejections.
fn bodhi_id(origin: &str, i: usize, v: &Value) -> String {
    ["alias", "updateid"]
        .iter()
        .find_map(|k| v.get(*k).and_then(Value::as_str))
        .filter(|s| !s.is_empty())
        .map_or_else(|| format!("{origin}: update {}", i + 1), |s| clip(s, 200))
}

fn bodhi_update(origin: &str, i: usize, v: &Value) -> Result<Option<Record>, Rejected> {
    let id = bodhi_id(origin, i, v);
    let reject = |reason: String| Rejected {
        id: id.clone(),
        reason,
    };
    let u = BodhiUpdate::deserialize(v).map_err(|e| reject(format!("not a Bodhi update: {e}")))?;
    let Some(alias) = u.alias.or(u.updateid).filter(|s| !s.is_empty()) else {
        return Err(reject("an update without alias or updateid".into()));
    };
    if u.kind.as_deref() != Some("security") {
        return Ok(None);
    }
    let release = u
        .release
        .and_then(|r| r.name)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| reject("no release.name".into()))?;
    let Some(eco) = names::fedora(&release) else {
        return Ok(None); // flatpak, container, EPEL: not a Fedora host's packages
    };
    let scheme = ecosystem::rules(&eco)
        .map(|r| r.scheme)
        .ok_or_else(|| reject(format!("no version rules for {eco}")))?;
    let status = u.status.unwrap_or_default();
    let note = status_note(&status);
    let mut record = bare_record(alias, None);
    for b in &u.builds {
        if !matches!(b.kind.as_deref(), None | Some("rpm")) {
            continue; // a module build names no RPM version
        }
        let nvr = b.nvr.as_deref().unwrap_or_default();
        let (name, version, rel) = split_nvr(nvr)
            .ok_or_else(|| reject(format!("build {nvr:?} is not name-version-release")))?;
        let epoch = match &b.epoch {
            None | Some(Value::Null) => Some(0),
            Some(Value::Number(n)) => n.as_u64(),
            Some(Value::String(s)) if s.is_empty() => Some(0),
            Some(Value::String(s)) => s.parse().ok(),
            Some(_) => None,
        }
        .ok_or_else(|| reject(format!("build {nvr}: epoch is not a number")))?;
        let evr = if epoch == 0 {
            format!("{version}-{rel}")
        } else {
            format!("{epoch}:{version}-{rel}")
        };
        scheme
            .parse_check(&evr)
            .map_err(|e| reject(format!("build {nvr}: version {evr:?}: {e}")))?;
        record.affected.push(Affected {
            ecosystem: eco.clone(),
            package: name.to_string(),
            introduced: None,
            last_affected: None,
            status: Status::Fixed { fixed_version: evr },
            note: note.clone(),
            severity: None,
        });
    }
    record.withdrawn = !matches!(status.as_str(), "stable" | "testing");
    record.summary = one_line(&format!(
        "{} security update",
        u.title.as_deref().unwrap_or_default()
    ));
    record.severity = u.severity.filter(|s| !s.is_empty() && s != "unspecified");
    record.aliases = u
        .bugs
        .iter()
        .filter(|b| b.security == Some(true))
        .flat_map(|b| cve_ids_in(b.title.as_deref().unwrap_or_default()))
        .collect();
    let date = |d: &Option<String>| d.as_deref().map(utc_time);
    record.published = date(&u.date_pushed).or(date(&u.date_submitted));
    record.modified = [
        &u.date_modified,
        &u.date_stable,
        &u.date_testing,
        &u.date_pushed,
    ]
    .into_iter()
    .filter_map(date)
    .max();
    record.normalize();
    Ok(Some(record))
}

/// The note of a status: `testing` → [`TESTING_NOTE`], `stable` and empty → none,
/// another → `Bodhi status <s>`.
fn status_note(status: &str) -> Option<String> {
    match status {
        "" | "stable" | "final" => None,
        "testing" => Some(TESTING_NOTE.to_string()),
        other => Some(format!("Bodhi status {}", clip(other, 40))),
    }
}

/// `name-version-release` → its three parts (the name may contain `-`).
fn split_nvr(nvr: &str) -> Option<(&str, &str, &str)> {
    let (nv, release) = nvr.rsplit_once('-')?;
    let (name, version) = nv.rsplit_once('-')?;
    (!name.is_empty() && !version.is_empty() && !release.is_empty())
        .then_some((name, version, release))
}

/// The Fedora ecosystem of an `updateinfo.xml` update: from a collection's short name
/// (`F43`, `F38M`), else from `<release>` (`Fedora 38 Modular`). `Ok(None)` for EPEL and
/// other non-Fedora releases; Err when the update names no release at all.
fn updateinfo_ecosystem(u: &Update) -> Result<Option<String>, String> {
    let from_release = |r: &str| -> Option<String> {
        let rest = r.strip_prefix("Fedora ")?;
        names::fedora(rest.split_whitespace().next()?)
    };
    let found = u
        .collections
        .iter()
        .find_map(|c| names::fedora(c))
        .or_else(|| from_release(&u.release));
    if found.is_none() && u.collections.iter().all(String::is_empty) && u.release.is_empty() {
        return Err("no release: neither a collection short name nor <release>".into());
    }
    Ok(found)
}

/// The record of one Fedora `updateinfo.xml` `<update>`; `Ok(None)` for an update that is
/// not of type `security` or not of a Fedora release (EPEL).
pub fn parse_update(u: &Update) -> Result<Option<Record>, Rejected> {
    let reject = |reason: String| Rejected {
        id: u.id.clone(),
        reason,
    };
    if u.kind != "security" {
        return Ok(None);
    }
    let Some(eco) = updateinfo_ecosystem(u).map_err(reject)? else {
        return Ok(None);
    };
    let scheme = ecosystem::rules(&eco)
        .map(|r| r.scheme)
        .ok_or_else(|| reject(format!("no version rules for {eco}")))?;
    let mut affected = fixed_per_name(&eco, scheme, &u.packages).map_err(reject)?;
    let note = status_note(&u.status);
    for a in &mut affected {
        a.note = match (a.note.take(), &note) {
            (Some(a), Some(n)) => Some(format!("{n}; {a}")),
            (a, n) => a.or(n.clone()),
        };
    }
    let mut record = bare_record(u.id.clone(), u.updated.clone().or(u.issued.clone()));
    record.withdrawn = !matches!(u.status.as_str(), "" | "stable" | "testing" | "final");
    record.published = u.issued.clone();
    record.summary = one_line(&u.title);
    record.severity = Some(u.severity.clone()).filter(|s| !s.is_empty() && s != "None");
    for r in &u.references {
        if r.kind.eq_ignore_ascii_case("cve") && !r.id.is_empty() {
            record.aliases.push(r.id.clone());
        } else {
            record.aliases.extend(cve_ids_in(&r.title));
        }
    }
    record.affected = affected;
    record.normalize();
    Ok(Some(record))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nvrs() {
        assert_eq!(
            split_nvr("kernel-headers-6.6.2-101.fc38"),
            Some(("kernel-headers", "6.6.2", "101.fc38"))
        );
        assert_eq!(split_nvr("kernel-6.6.2"), None);
        assert_eq!(split_nvr("nodash"), None);
    }

    #[test]
    fn bodhi_shapes() {
        let u = serde_json::json!({"alias": "FEDORA-1", "builds": [], "release": {}});
        assert!(looks_like_bodhi(&u));
        assert!(looks_like_bodhi(&serde_json::json!([u])));
        assert!(looks_like_bodhi(
            &serde_json::json!({"updates": [u], "total": 1})
        ));
        assert!(looks_like_bodhi(
            &serde_json::json!({"updates": [], "total": 0})
        ));
        assert!(!looks_like_bodhi(&serde_json::json!({"updates": []})));
        assert!(!looks_like_bodhi(&serde_json::json!([{"name": "AVG-1"}])));
    }

    #[test]
    fn bad_builds_are_rejected_by_alias() {
        let doc = serde_json::json!([
            {"alias": "FEDORA-A", "type": "security", "status": "stable",
             "release": {"name": "F40"}, "builds": [{"nvr": "nodash", "type": "rpm"}]},
            {"alias": "FEDORA-B", "type": "security", "status": "stable",
             "release": {"name": "F40"}, "builds": [{"nvr": "a-1-1", "epoch": "x"}]},
            {"type": "security", "builds": [], "release": {"name": "F40"}},
            {"alias": "FEDORA-C", "type": "bugfix", "release": {"name": "F40"}, "builds": []},
            {"alias": "FEDORA-D", "type": "security", "status": "obsolete",
             "release": {"name": "F40"}, "builds": [{"nvr": "a-1-2.fc40", "epoch": 1}]}
        ]);
        let p = parse_bodhi("f.json", &doc);
        let ids: Vec<_> = p.rejected.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["FEDORA-A", "FEDORA-B", "f.json: update 3"]);
        assert_eq!(p.records.len(), 1);
        let d = &p.records[0];
        assert!(d.withdrawn);
        assert_eq!(d.affected[0].status.fixed_version(), Some("1:1-2.fc40"));
        assert_eq!(d.affected[0].note.as_deref(), Some("Bodhi status obsolete"));
    }
}
