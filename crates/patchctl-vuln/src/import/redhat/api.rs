//! The Red Hat Security Data API's per-CVE JSON (`/hydra/rest/securitydata/cve/CVE-….json`,
//! and Aqua's vuln-list-redhat copies of it): one record per CVE.
//!
//! `affected_release[]` are fixed builds: `package` is the **source** NVR with its epoch
//! (`openssh-0:8.7p1-38.el9_4.1`), so the statement is keyed by the source name (the
//! matcher falls back to a binary's source RPM name). `package_state[]` holds the other
//! statuses by `fix_state` (see the module docs of [`super`]). Entries whose CPE is not
//! RHEL, module entries (`nodejs:18`), and container names (`rhel9/…`) are left out. A
//! record is rejected when it does not have the API's shape or a RHEL fixed build has no
//! readable version.

use serde::Deserialize;
use serde_json::Value;

use super::component;
use super::{Statements, ecosystems_of};
use crate::import::{bare_record, one_line};
use crate::{Record, Rejected, Status};
use patchctl_version::Scheme;

#[derive(Deserialize)]
struct ApiCve {
    name: String,
    #[serde(default)]
    threat_severity: Option<String>,
    #[serde(default)]
    public_date: Option<String>,
    #[serde(default)]
    bugzilla: Option<Bugzilla>,
    #[serde(default)]
    cvss3: Option<Cvss3>,
    #[serde(default)]
    cvss: Option<Cvss2>,
    #[serde(default)]
    affected_release: Option<Vec<Release>>,
    #[serde(default)]
    package_state: Option<Vec<State>>,
}

#[derive(Deserialize)]
struct Bugzilla {
    #[serde(default)]
    description: Option<String>,
}

#[derive(Deserialize)]
struct Cvss3 {
    #[serde(default)]
    cvss3_scoring_vector: Option<String>,
}

#[derive(Deserialize)]
struct Cvss2 {
    #[serde(default)]
    cvss_scoring_vector: Option<String>,
}

#[derive(Deserialize)]
struct Release {
    #[serde(default)]
    advisory: Option<String>,
    #[serde(default)]
    cpe: Option<String>,
    #[serde(default)]
    package: Option<String>,
}

#[derive(Deserialize)]
struct State {
    #[serde(default)]
    fix_state: Option<String>,
    #[serde(default)]
    package_name: Option<String>,
    #[serde(default)]
    cpe: Option<String>,
}

/// Parses one API CVE document.
pub fn parse(origin: &str, v: &Value) -> Result<Record, Rejected> {
    let id = v
        .get("name")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .unwrap_or(origin)
        .to_string();
    let reject = |reason: String| Rejected {
        id: id.clone(),
        reason,
    };
    let cve = ApiCve::deserialize(v).map_err(|e| {
        reject(format!(
            "not a valid Red Hat Security Data API document: {}",
            one_line(&e.to_string())
        ))
    })?;
    let mut statements = Statements::default();
    for (i, r) in cve.affected_release.iter().flatten().enumerate() {
        let ecosystems = ecosystems_of("", r.cpe.as_deref().unwrap_or(""));
        let Some(package) = r.package.as_deref().filter(|_| !ecosystems.is_empty()) else {
            continue;
        };
        if package
            .split_once(':')
            .is_some_and(|(l, _)| !l.contains('-'))
        {
            continue; // a module (`nodejs:18-8090020230815121209.a75119d5`)
        }
        let c = component::from_id(package, false)
            .filter(|c| c.evr.is_some())
            .ok_or_else(|| {
                reject(format!(
                    "affected_release[{i}]: package {package:?} is not a source NVR"
                ))
            })?;
        let evr = c.evr.unwrap_or_default();
        Scheme::Rpm
            .parse_check(&evr)
            .map_err(|e| reject(format!("affected_release[{i}]: version {evr:?}: {e}")))?;
        for eco in &ecosystems {
            statements.add(
                eco,
                &c.name,
                None,
                Status::Fixed {
                    fixed_version: evr.clone(),
                },
                r.advisory.clone(),
            );
        }
    }
    for s in cve.package_state.iter().flatten() {
        let ecosystems = ecosystems_of("", s.cpe.as_deref().unwrap_or(""));
        let (Some(name), Some(state)) = (s.package_name.as_deref(), s.fix_state.as_deref()) else {
            continue;
        };
        let Some(c) = component::from_id(name, false).filter(|c| c.evr.is_none()) else {
            continue; // a container image or a module
        };
        let Some(status) = status_of(state) else {
            continue;
        };
        for eco in &ecosystems {
            statements.add(eco, &c.name, None, status.clone(), Some(state.to_string()));
        }
    }
    let mut record = bare_record(cve.name, None);
    record.summary = cve
        .bugzilla
        .and_then(|b| b.description)
        .map(|d| one_line(&d))
        .unwrap_or_default();
    record.severity = cve.threat_severity.filter(|s| !s.is_empty());
    record.cvss_vector = cve
        .cvss3
        .and_then(|c| c.cvss3_scoring_vector)
        .or_else(|| cve.cvss.and_then(|c| c.cvss_scoring_vector))
        .filter(|v| !v.is_empty());
    record.published = cve.public_date;
    record.aliases = cve
        .affected_release
        .iter()
        .flatten()
        .filter(|r| {
            r.cpe
                .as_deref()
                .is_some_and(|c| !ecosystems_of("", c).is_empty())
        })
        .filter_map(|r| r.advisory.clone())
        .filter(|a| a.starts_with("RH"))
        .collect();
    record.affected = statements.finish();
    record.normalize();
    Ok(record)
}

/// The status of a `fix_state`; `None` for a state PatchCTL does not know (left out).
fn status_of(state: &str) -> Option<Status> {
    Some(match state.trim() {
        "Not affected" => Status::NotAffected,
        "Affected" | "Fix deferred" | "Deferred" => Status::AffectedNoFix,
        "Will not fix" => Status::WillNotFix,
        "Out of support scope" => Status::EndOfLife,
        "Under investigation" => Status::UnderInvestigation,
        _ => return None,
    })
}
