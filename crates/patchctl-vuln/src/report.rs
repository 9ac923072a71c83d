//! What the API and the CLI exchange about findings, and the filters both apply.

use std::collections::BTreeSet;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::coverage::Coverage;
use crate::matcher::Finding;
use crate::model::Status;
use crate::severity::{ParseSeverityError, Severity};

/// Findings of one host (`GET /api/v1/hosts/{host}/vulns`, `patchctl vulns list`,
/// `patchctl vulns check`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HostFindings {
    /// Host id (absent for an offline check).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_id: Option<Uuid>,
    /// Host name, when known.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hostname: String,
    /// Ecosystems matched (from the host's os-release).
    pub ecosystems: Vec<String>,
    /// Whether the imported data covers the host's release; when it does not, the
    /// findings are unknown, not zero, and `coverage.message` says so.
    pub coverage: Coverage,
    /// Packages considered.
    pub packages: u64,
    /// Vulnerable findings among those listed.
    pub vulnerable: u64,
    /// Fixable findings among those listed.
    pub fixable: u64,
    /// Findings among those listed whose versions could not be compared.
    #[serde(default)]
    pub unknown_version: u64,
    /// The findings that pass the filter, most important first.
    pub findings: Vec<Finding>,
}

/// One host's finding about an advisory (`GET /api/v1/vulns/{id}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AffectedHost {
    /// Host id.
    pub host_id: Uuid,
    /// Host name.
    pub hostname: String,
    /// The finding.
    pub finding: Finding,
}

/// Hosts with findings about one advisory or CVE.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AdvisoryHosts {
    /// The id asked for.
    pub id: String,
    /// Hosts and their findings (filtered).
    pub hosts: Vec<AffectedHost>,
}

/// Which findings to show. Default: everything but `not_affected` statements.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filter {
    /// Only these severities (none: all).
    #[serde(default)]
    pub severity: BTreeSet<Severity>,
    /// Only fixable findings (`installed < fixed`).
    #[serde(default)]
    pub fixable: bool,
    /// Only these statuses (none: all but `not_affected`).
    #[serde(default)]
    pub status: BTreeSet<String>,
}

/// A filter word that names no severity or status ([`Filter::parse`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    /// A severity word that names no severity.
    #[error(transparent)]
    Severity(#[from] ParseSeverityError),
    /// A status word that names no status.
    #[error("unknown status {0:?}; use one of {names}", names = Status::NAMES.join(", "))]
    Status(String),
}

impl Filter {
    /// A filter from the API's / CLI's comma-separated words; the error names the bad
    /// word and the accepted ones.
    pub fn parse(
        severity: Option<&str>,
        fixable: bool,
        status: Option<&str>,
    ) -> Result<Filter, FilterError> {
        let mut f = Filter {
            fixable,
            ..Filter::default()
        };
        for word in words(severity) {
            f.severity.insert(Severity::from_str(word)?);
        }
        for word in words(status) {
            if !Status::NAMES.contains(&word) {
                return Err(FilterError::Status(word.to_string()));
            }
            f.status.insert(word.to_string());
        }
        Ok(f)
    }

    /// Whether a finding passes.
    pub fn keep(&self, f: &Finding) -> bool {
        (self.severity.is_empty() || self.severity.contains(&f.severity))
            && (!self.fixable || f.fixable)
            && if self.status.is_empty() {
                !matches!(f.status, Status::NotAffected)
            } else {
                self.status.contains(f.status.name())
            }
    }
}

fn words(s: Option<&str>) -> impl Iterator<Item = &str> {
    s.unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|w| !w.is_empty())
}

impl HostFindings {
    /// The report of `findings` (already sorted) passing `filter`.
    pub fn new(
        host_id: Option<Uuid>,
        hostname: String,
        ecosystems: Vec<String>,
        coverage: Coverage,
        packages: u64,
        findings: Vec<Finding>,
        filter: &Filter,
    ) -> HostFindings {
        let findings: Vec<Finding> = findings.into_iter().filter(|f| filter.keep(f)).collect();
        HostFindings {
            host_id,
            hostname,
            ecosystems,
            coverage,
            packages,
            vulnerable: findings.iter().filter(|f| f.vulnerable).count() as u64,
            fixable: findings.iter().filter(|f| f.fixable).count() as u64,
            unknown_version: findings
                .iter()
                .filter(|f| matches!(f.status, Status::UnknownVersion { .. }))
                .count() as u64,
            findings,
        }
    }
}
