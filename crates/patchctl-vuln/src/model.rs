//! The normalized vulnerability record every importer produces and the matcher reads.
//!
//! One [`Record`] is one advisory or vulnerability as one feed publishes it (an OSV
//! record, a Debian tracker CVE, a VEX statement set, an Alpine secfix); its
//! [`Affected`] entries say, per `(ecosystem, package)`, what the feed states: a
//! [`Status`] and, for `fixed`, the first fixed version. Ecosystems are plain strings
//! (`Debian:12`, `Ubuntu:Pro:22.04:LTS`, `AlmaLinux:9`, `Alpine:v3.19`): a new one is
//! data, never a code change. Which package name an ecosystem is keyed by (source or
//! binary) and which version ordering applies is decided by [`crate::ecosystem`].

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What a feed states about one package of one release. One enum for every feed: the
/// importers map their own vocabularies onto it and keep the feed's words in
/// [`Affected::note`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Status {
    /// Fixed in `fixed_version`: versions below it (and at or above
    /// [`Affected::introduced`]) are vulnerable, and the fix is that version.
    Fixed {
        /// The first fixed version, in the ecosystem's version syntax.
        fixed_version: String,
    },
    /// The package in this release is not affected (code not present, not built, ...).
    NotAffected,
    /// Affected, and no fix has been released.
    AffectedNoFix,
    /// Affected, and the distribution has decided not to fix it (Debian `<ignored>`,
    /// `<postponed>`-as-ignored, Ubuntu "will not fix"/`ignored`).
    WillNotFix,
    /// Affected, and the release or package is out of security support.
    EndOfLife,
    /// Not yet triaged by the distribution (Debian `undetermined`, Ubuntu
    /// `needs-triage`, VEX `under_investigation`).
    UnderInvestigation,
    /// Never stated by a feed (importers produce only the six statuses above): the
    /// matcher's answer when the ecosystem's version rules cannot compare the installed
    /// version with the statement's version. The finding shows the text that failed and
    /// why; it is never silently dropped.
    UnknownVersion {
        /// The version text the ecosystem's rules could not read or compare.
        failed_version: String,
    },
}

impl Status {
    /// The status name as it appears in the API, the CLI and filters.
    pub fn name(&self) -> &'static str {
        match self {
            Status::Fixed { .. } => "fixed",
            Status::NotAffected => "not_affected",
            Status::AffectedNoFix => "affected_no_fix",
            Status::WillNotFix => "will_not_fix",
            Status::EndOfLife => "end_of_life",
            Status::UnderInvestigation => "under_investigation",
            Status::UnknownVersion { .. } => "unknown_version",
        }
    }

    /// Every status name, for validating filters.
    pub const NAMES: [&'static str; 7] = [
        "fixed",
        "not_affected",
        "affected_no_fix",
        "will_not_fix",
        "end_of_life",
        "under_investigation",
        "unknown_version",
    ];

    /// The fixed version, for [`Status::Fixed`].
    pub fn fixed_version(&self) -> Option<&str> {
        match self {
            Status::Fixed { fixed_version } => Some(fixed_version),
            _ => None,
        }
    }
}

/// What one record says about one package in one ecosystem.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Affected {
    /// Ecosystem string exactly as the data names it (`Debian:12`, `AlmaLinux:9`).
    pub ecosystem: String,
    /// Package name: the **source** package for Debian, Ubuntu and Alpine, the
    /// **binary** RPM name for the RPM families (see [`crate::ecosystem`]).
    pub package: String,
    /// Lowest affected version (inclusive); `None` when every version below the fix is
    /// affected (OSV `introduced: "0"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introduced: Option<String>,
    /// Highest affected version (inclusive), from OSV `last_affected`; versions above it
    /// are not affected. Only with a status other than `fixed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_affected: Option<String>,
    /// The feed's statement.
    #[serde(flatten)]
    pub status: Status,
    /// The feed's own words: justification, tracker status, reason (`Minor issue`,
    /// `Vulnerable code not present`, `ignored: end of life`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Severity the feed gives this package in this release (Debian urgency, Ubuntu
    /// priority), when it differs from the record's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
}

/// One advisory or vulnerability as one feed publishes it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Record {
    /// The feed's id (`ALSA-2024:0001`, `CVE-2024-3094`, `UBUNTU-CVE-2021-3782`,
    /// `DSA-5724-1`).
    pub id: String,
    /// Other ids of the same issue: CVE ids first (sorted), then other advisory ids
    /// (DSA, USN, RHSA). Never contains `id`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// One-line summary.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub summary: String,
    /// The distribution's severity word as published (`Important`, `high`, `medium`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    /// CVSS vector (`CVSS:3.1/AV:N/...`), the highest version the feed gives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cvss_vector: Option<String>,
    /// Publication time (RFC 3339) as the feed gives it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<String>,
    /// Last modification time (RFC 3339) as the feed gives it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified: Option<String>,
    /// The feed withdrew the record: it is kept (so a re-import is idempotent) but never
    /// matched.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub withdrawn: bool,
    /// What the record says per `(ecosystem, package)`.
    pub affected: Vec<Affected>,
    /// The CVE is known to be exploited (CISA's KEV catalog): such a record has no
    /// statements; every finding about its CVE carries this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exploited: Option<Exploited>,
}

/// A CVE known to be exploited in the wild, as a catalog lists it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Exploited {
    /// The catalog and its version (`CISA KEV 2025.08.25`).
    pub catalog: String,
    /// When the catalog added the CVE (`YYYY-MM-DD`).
    pub date_added: String,
    /// The remediation due date the catalog sets for US federal agencies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_date: Option<String>,
    /// Known to be used in ransomware campaigns.
    #[serde(default)]
    pub ransomware: bool,
    /// What the catalog asks to do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_action: Option<String>,
}

impl Record {
    /// The CVE ids of this record: its id when it is one, and its CVE aliases.
    pub fn cve_ids(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.id.as_str())
            .chain(self.aliases.iter().map(String::as_str))
            .filter(|s| s.starts_with("CVE-"))
    }

    /// Sorts and deduplicates aliases (CVE ids first) and removes the record's own id,
    /// so that equal content has equal bytes.
    pub fn normalize(&mut self) {
        let id = self.id.clone();
        self.aliases.retain(|a| *a != id && !a.is_empty());
        self.aliases
            .sort_by(|a, b| (!a.starts_with("CVE-"), a).cmp(&(!b.starts_with("CVE-"), b)));
        self.aliases.dedup();
    }

    /// sha256 of the record's canonical JSON: equal content, equal digest. The store
    /// uses it so that re-importing the same data changes nothing.
    pub fn digest(&self) -> String {
        let bytes = serde_json::to_vec(self).expect("a Record always serializes");
        hex::encode(Sha256::digest(&bytes))
    }
}

/// A record the importer could not use, reported by id (or position) and skipped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejected {
    /// The record's id when it could be read, else where it was (`all.zip:ALSA-x.json`,
    /// `record 12`).
    pub id: String,
    /// What was wrong.
    pub reason: String,
}

/// What a parser made of one input: the usable records and the rejected ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed {
    /// Records to import, normalized.
    pub records: Vec<Record>,
    /// Records skipped, each with its reason.
    pub rejected: Vec<Rejected>,
}

impl Parsed {
    /// Adds another parse result.
    pub fn extend(&mut self, other: Parsed) {
        self.records.extend(other.records);
        self.rejected.extend(other.rejected);
    }
}
