//! Whether the imported vulnerability data covers a host's release, said in words.
//!
//! A host whose release has no imported data is never shown as "0 findings": its
//! [`Coverage`] is [`DataLevel::None`] with the message "no vulnerability data for
//! <ecosystem>", and the fleet summary counts such hosts apart. A release whose vendor
//! publishes only security advisories (Fedora) is [`DataLevel::SecurityAdvisories`],
//! said as such. Coverage is a property of the data actually imported (the matcher's
//! index), not of a list in the code: a Debian 14 host is uncovered until Debian 14 data
//! is imported.

use serde::{Deserialize, Serialize};

use crate::ecosystem::{self, DataKind};
use crate::matcher::Index;

/// How much vulnerability data applies to a host's release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DataLevel {
    /// The vendor's CVE data for the release is imported.
    Cve,
    /// Only the repositories' security advisories exist for this family (Fedora).
    SecurityAdvisories,
    /// No vulnerability data for the release: its findings are unknown, not zero.
    None,
}

/// What the data says about one host's release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Coverage {
    /// How much data applies.
    pub level: DataLevel,
    /// The host's ecosystems with imported data.
    pub covered: Vec<String>,
    /// What the user must know, in words: `no vulnerability data for Fedora:41 (…)` or
    /// `security advisories only for Fedora:40 (…)`; absent when full CVE data applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl Coverage {
    /// Whether any data applies (its findings mean something).
    pub fn has_data(&self) -> bool {
        self.level != DataLevel::None
    }

    /// What the data covers, in words: the message, or `full CVE data (<ecosystems>)`.
    pub fn words(&self) -> String {
        self.message
            .clone()
            .unwrap_or_else(|| format!("full CVE data ({})", self.covered.join(", ")))
    }

    /// The release's label in the fleet summary's count of hosts without data.
    pub fn label(ecosystems: &[String]) -> String {
        ecosystems
            .first()
            .cloned()
            .unwrap_or_else(|| "unknown release".to_string())
    }
}

/// The coverage of a host whose ecosystems are `ecosystems` (least specific first, as
/// [`ecosystem::host_ecosystems`] gives them).
pub fn coverage(index: &Index, ecosystems: &[String]) -> Coverage {
    coverage_from(ecosystems, |e| index.covers(e))
}

/// The coverage of a host whose ecosystems are `ecosystems`, where `has_data` says
/// which ecosystems the stored data states something about (the offline check asks the
/// database instead of a full index).
pub fn coverage_from(ecosystems: &[String], has_data: impl Fn(&str) -> bool) -> Coverage {
    let covered: Vec<String> = ecosystems
        .iter()
        .filter(|e| ecosystem::rules(e).is_some() && has_data(e))
        .cloned()
        .collect();
    let label = Coverage::label(ecosystems);
    match covered.first().map(|e| ecosystem::data_kind(e)) {
        None => {
            let why = match ecosystems.iter().find_map(|e| ecosystem::data_kind(e)) {
                Some(_) => "import or sync this release's feed; see `patchctl vulndb status`",
                None => {
                    "PatchCTL has no vulnerability source for this distribution; its packages are not checked"
                }
            };
            Coverage {
                level: DataLevel::None,
                covered,
                message: Some(format!("no vulnerability data for {label} ({why})")),
            }
        }
        Some(Some(DataKind::SecurityAdvisories)) => Coverage {
            level: DataLevel::SecurityAdvisories,
            message: Some(format!(
                "security advisories only for {label}: {}",
                DataKind::SecurityAdvisories.describe()
            )),
            covered,
        },
        Some(_) => Coverage {
            level: DataLevel::Cve,
            covered,
            message: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matcher::SourcedRecord;
    use crate::model::{Affected, Record, Status};

    fn index_with(ecosystems: &[&str]) -> Index {
        Index::build(ecosystems.iter().map(|e| SourcedRecord {
            source: "t".into(),
            imported_at: None,
            record: Record {
                id: format!("X-{e}"),
                aliases: vec![],
                summary: String::new(),
                severity: None,
                cvss_vector: None,
                published: None,
                modified: None,
                withdrawn: false,
                exploited: None,
                affected: vec![Affected {
                    ecosystem: e.to_string(),
                    package: "p".into(),
                    introduced: None,
                    last_affected: None,
                    status: Status::AffectedNoFix,
                    note: None,
                    severity: None,
                }],
            },
        }))
    }

    fn ecos(e: &[&str]) -> Vec<String> {
        e.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn no_data_is_said_never_zero() {
        let idx = index_with(&["Debian:12", "Fedora:40", "Red Hat:9"]);
        let c = coverage(&idx, &ecos(&["Debian:12"]));
        assert_eq!((c.level, c.message.as_deref()), (DataLevel::Cve, None));
        let c = coverage(&idx, &ecos(&["Debian:13"]));
        assert_eq!(c.level, DataLevel::None);
        assert_eq!(
            c.message.as_deref(),
            Some(
                "no vulnerability data for Debian:13 (import or sync this release's feed; see `patchctl vulndb status`)"
            )
        );
        let c = coverage(&idx, &ecos(&["CentOS Stream:9"]));
        assert_eq!(c.level, DataLevel::None);
        assert!(
            c.message
                .unwrap()
                .contains("no vulnerability source for this distribution")
        );
        let c = coverage(&idx, &ecos(&["gentoo 2.15"]));
        assert!(
            c.message
                .unwrap()
                .starts_with("no vulnerability data for gentoo 2.15")
        );
        // the main stream covers an EUS host
        let c = coverage(&idx, &ecos(&["Red Hat:9", "Red Hat:9.4 EUS"]));
        assert_eq!(
            (c.level, c.covered.clone()),
            (DataLevel::Cve, ecos(&["Red Hat:9"]))
        );
        let c = coverage(&idx, &ecos(&["Fedora:40"]));
        assert_eq!(c.level, DataLevel::SecurityAdvisories);
        assert!(
            c.message
                .unwrap()
                .starts_with("security advisories only for Fedora:40")
        );
    }
}
