//! Approvals, auto-approval rules and manifests.
//!
//! An approval names one update — package and exact version in one ecosystem (the
//! host's release, `Debian:12`, `AlmaLinux:9`) — for one group, with who approved it and
//! when (a person, or a rule). A rule approves on its own: the security updates of a
//! severity or above, a number of days after the platform first saw them, for every
//! family. A manifest freezes a group's approvals into exact `(name, version)` pairs per
//! ecosystem; a deployment installs a manifest and nothing else.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The most packages one approval request or manifest names.
pub const MAX_ITEMS: usize = 5_000;

/// One update: a package at an exact version in an ecosystem.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateItem {
    /// The host release's ecosystem (`Debian:12`), as `patchctl hosts show` names it.
    pub ecosystem: String,
    /// Binary package name.
    pub name: String,
    /// Exact version.
    pub version: String,
}

/// How an approval came to be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum ApprovalSource {
    /// A person (or a token) approved it.
    Manual,
    /// A rule approved it.
    Rule {
        /// The rule; left out once the rule is deleted (its name stays).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rule_id: Option<Uuid>,
        /// Its name.
        rule: String,
    },
}

/// An approval (`GET /api/v1/approvals`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApprovalView {
    /// Id.
    pub id: Uuid,
    /// The group it is for.
    pub group_id: Uuid,
    /// That group's name.
    pub group: String,
    /// What is approved.
    #[serde(flatten)]
    pub item: UpdateItem,
    /// How.
    pub source: ApprovalSource,
    /// Who approved it (`user alice (dashboard)`, `rule high-after-3d`).
    pub approved_by: String,
    /// When.
    pub approved_at: DateTime<Utc>,
    /// When it was withdrawn, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<DateTime<Utc>>,
    /// Who withdrew it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_by: Option<String>,
}

/// `POST /api/v1/approvals`: approve named updates, or a host's available updates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ApproveRequest {
    /// The group (name or id).
    pub group: String,
    /// The updates to approve.
    #[serde(default)]
    pub updates: Vec<UpdateItem>,
    /// Also approve what this host (name or id) can update to now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_host: Option<String>,
    /// With `from_host`: only its security updates.
    #[serde(default)]
    pub security_only: bool,
}

/// The answer to an approval request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApproveOutcome {
    /// Approvals made by this request.
    pub approved: Vec<ApprovalView>,
    /// Updates that were approved already (for this group), left as they were.
    pub already: u64,
}

/// A minimum severity of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum MinSeverity {
    /// Any update the rule's other conditions let through, rated or not.
    Any,
    /// Low or above.
    Low,
    /// Medium or above.
    Medium,
    /// High or above.
    High,
    /// Critical only.
    Critical,
}

impl MinSeverity {
    /// The rank of a severity name as the CVE data rates it (`critical` 4 … `low` 1,
    /// anything else 0).
    pub fn rank_of(severity: &str) -> u8 {
        match severity.to_ascii_lowercase().as_str() {
            "critical" => 4,
            "high" | "important" => 3,
            "medium" | "moderate" => 2,
            "low" => 1,
            _ => 0,
        }
    }

    /// Whether an update rated `best` (its highest-rated fixed finding; `None` when
    /// unrated) passes.
    pub fn admits(self, best: Option<&str>) -> bool {
        let need = match self {
            MinSeverity::Any => return true,
            MinSeverity::Low => 1,
            MinSeverity::Medium => 2,
            MinSeverity::High => 3,
            MinSeverity::Critical => 4,
        };
        best.is_some_and(|s| MinSeverity::rank_of(s) >= need)
    }
}

/// A rule that approves on its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RuleRequest {
    /// Name, unique in the organisation.
    pub name: String,
    /// The group whose hosts' updates it approves (name or id).
    pub group: String,
    /// Only security updates (from the repository's metadata or the CVE data).
    #[serde(default = "yes")]
    pub security_only: bool,
    /// The lowest severity approved (the highest-rated CVE the update fixes).
    pub min_severity: MinSeverity,
    /// Days after the platform first saw the update available.
    pub after_days: u32,
}

fn yes() -> bool {
    true
}

/// A rule (`GET /api/v1/approval-rules`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RuleView {
    /// Id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// The group.
    pub group_id: Uuid,
    /// Its name.
    pub group: String,
    /// Only security updates.
    pub security_only: bool,
    /// The lowest severity approved.
    pub min_severity: MinSeverity,
    /// Days after first seen.
    pub after_days: u32,
    /// Who made it.
    pub created_by: String,
    /// When.
    pub created_at: DateTime<Utc>,
    /// When it last ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run_at: Option<DateTime<Utc>>,
}

/// A manifest (`GET /api/v1/manifests/{manifest}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ManifestView {
    /// Id.
    pub id: Uuid,
    /// Name, unique in the organisation.
    pub name: String,
    /// The group whose approvals it froze.
    pub group_id: Uuid,
    /// That group's name (when it still exists).
    pub group: String,
    /// Who froze it.
    pub created_by: String,
    /// When.
    pub created_at: DateTime<Utc>,
    /// How many packages it names.
    pub item_count: u64,
    /// The exact versions, by ecosystem and name (empty in lists).
    #[serde(default)]
    pub items: Vec<UpdateItem>,
}

/// `POST /api/v1/manifests`: freeze a group's approvals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ManifestRequest {
    /// Name (letters, digits, `._:/=-`).
    pub name: String,
    /// The group whose current approvals are frozen (name or id).
    pub group: String,
}

/// `POST /api/v1/manifests/{manifest}/signatures`: an approver's signature of the
/// manifest (`patchctl approvals sign` makes it with the approver's own key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ManifestSignatureRequest {
    /// The `ManifestApproval` as the approver signed it.
    pub signed: crate::release::SignedDocument,
}

/// An approver's signature of a manifest, as the platform keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ManifestSignatureView {
    /// The manifest.
    pub manifest_id: Uuid,
    /// The approver, as the organisation's approver list names them.
    pub approver: String,
    /// The approver's key id.
    pub key_id: String,
    /// When the platform took it.
    pub created_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities_rank_as_the_feeds_name_them() {
        assert!(MinSeverity::High.admits(Some("critical")));
        assert!(MinSeverity::High.admits(Some("Important")));
        assert!(!MinSeverity::High.admits(Some("moderate")));
        assert!(
            !MinSeverity::Low.admits(None),
            "an unrated update is not rated low"
        );
        assert!(MinSeverity::Any.admits(None));
        assert!(!MinSeverity::Critical.admits(Some("unknown")));
    }

    #[test]
    fn sources_are_tagged() {
        let v = serde_json::to_value(ApprovalSource::Manual).unwrap();
        assert_eq!(v, serde_json::json!({"kind": "manual"}));
    }
}
