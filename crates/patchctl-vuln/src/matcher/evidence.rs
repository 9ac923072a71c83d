//! Findings: what a hit on a probe shows a person, with the evidence that decided it, and
//! the order findings are listed in.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::decide::{Hit, is_vulnerable};
use super::{MatchedBy, Probe};
use crate::model::{Affected, Exploited, Status};
use crate::severity::Severity;

/// A finding on a host, with the evidence that decided it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Finding {
    /// Advisory or vulnerability id of the record.
    pub advisory: String,
    /// Its aliases (CVE ids first).
    pub aliases: Vec<String>,
    /// Feed.
    pub source: String,
    /// When the record's content was imported.
    pub imported_at: Option<DateTime<Utc>>,
    /// Summary.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub summary: String,
    /// Ecosystem whose statement decided.
    pub ecosystem: String,
    /// Package the record names (source package for Debian/Ubuntu/Alpine).
    pub package: String,
    /// How the host's package was matched to it.
    pub matched_by: MatchedBy,
    /// Installed binary packages concerned.
    pub binaries: Vec<String>,
    /// Installed version compared (the source version where matched by source).
    pub installed_version: String,
    /// Status for this host.
    #[serde(flatten)]
    pub status: Status,
    /// The record's affected range, in words (`>= 0, < 1:9.2p1-2+deb12u3`).
    pub affected_range: String,
    /// The comparison that decided.
    pub comparison: String,
    /// The feed's own words, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Vulnerable: fixed-above-installed, affected without fix, will not fix, end of life.
    pub vulnerable: bool,
    /// Vulnerable and a fixed version exists (`installed < fixed`): the only actionable
    /// kind.
    pub fixable: bool,
    /// Overall severity (distribution's when known, else from CVSS).
    pub severity: Severity,
    /// Distribution severity as published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distro_severity: Option<String>,
    /// CVSS vector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cvss_vector: Option<String>,
    /// CVSS base score from the vector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cvss_score: Option<f32>,
    /// The CVE is known to be exploited in the wild (CISA's KEV catalog).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub known_exploited: Option<Exploited>,
    /// Its deadline and state under the organisation's policy (vulnerable findings in
    /// the platform's views; absent offline).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remediation: Option<patchctl_proto::policy::deadlines::Remediation>,
}

impl Finding {
    /// The CVE ids of the finding (its id when a CVE, and its CVE aliases).
    pub fn cve_ids(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.advisory.as_str())
            .chain(self.aliases.iter().map(String::as_str))
            .filter(|s| s.starts_with("CVE-"))
    }

    /// Whether the finding is about this advisory or CVE id.
    pub fn concerns(&self, id: &str) -> bool {
        self.advisory == id || self.aliases.iter().any(|a| a == id)
    }
}

/// Orders findings: vulnerable first, then severity (highest first), advisory, package.
pub fn sort_findings(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        (
            !a.vulnerable,
            std::cmp::Reverse(a.severity),
            &a.advisory,
            &a.package,
        )
            .cmp(&(
                !b.vulnerable,
                std::cmp::Reverse(b.severity),
                &b.advisory,
                &b.package,
            ))
    });
}

/// The finding a hit makes on a probe.
pub fn finding(hit: &Hit, probe: &Probe) -> Finding {
    let adv = hit.advisory();
    let affected = hit.affected();
    let status = hit.status();
    let vulnerable = is_vulnerable(&status);
    Finding {
        advisory: adv.id.clone(),
        aliases: adv.aliases.clone(),
        source: adv.source.clone(),
        imported_at: adv.imported_at,
        summary: adv.summary.clone(),
        ecosystem: affected.ecosystem.clone(),
        package: affected.package.clone(),
        matched_by: if hit.by_fallback() {
            MatchedBy::SourceRpm
        } else {
            probe.matched_by
        },
        binaries: probe.binaries.clone(),
        installed_version: probe.version.clone(),
        status,
        affected_range: range_words(&affected),
        comparison: hit.comparison(probe),
        note: affected.note.clone(),
        vulnerable,
        fixable: hit.fixable(),
        severity: hit.severity(),
        distro_severity: hit.distro_severity().map(str::to_string),
        cvss_vector: adv.cvss_vector.clone(),
        cvss_score: adv.cvss_score,
        known_exploited: None,
        remediation: None,
    }
}

/// The affected range of a statement, in words.
fn range_words(a: &Affected) -> String {
    let low = a.introduced.as_deref().unwrap_or("0");
    match (&a.status, &a.last_affected) {
        (Status::Fixed { fixed_version }, _) => format!(">= {low}, < {fixed_version}"),
        (_, Some(last)) => format!(">= {low}, <= {last} ({})", a.status.name()),
        (s, None) if a.introduced.is_some() => format!(">= {low} ({})", s.name()),
        (s, None) => format!("all versions ({})", s.name()),
    }
}
