//! Remediation deadlines, exceptions (accepted risk) and compliance: the operator API's
//! types (`/api/v1/deadline-policy`, `/api/v1/exceptions`, `/api/v1/compliance`) and the
//! remediation a vulnerable finding carries in the vulnerability views.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The most days an exception may run: risk accepted for longer than a year is not
/// reviewed, and yearly is the slowest review cycle of the usual audits (SOC 2, ISO
/// 27001). Renewing one means creating a new exception, which is audited again.
pub const MAX_EXCEPTION_DAYS: i64 = 365;

/// A finding's state at the time asked about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum FindingState {
    /// Within its deadline (or without one: no fix to install yet).
    Open,
    /// Within the policy's due-soon days of its deadline.
    DueSoon,
    /// Past its deadline.
    Overdue,
    /// Covered by a valid exception: left out of the fixable and overdue counts.
    Excepted,
}

impl FindingState {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            FindingState::Open => "open",
            FindingState::DueSoon => "due_soon",
            FindingState::Overdue => "overdue",
            FindingState::Excepted => "excepted",
        }
    }
}

/// The exception that covers a finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExceptionRef {
    /// The exception's id.
    pub id: Uuid,
    /// Until when it holds (the finding re-opens then).
    pub expires_at: DateTime<Utc>,
}

/// What the deadline policy says about one vulnerable finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Remediation {
    /// When the platform first saw the finding on the host.
    pub first_seen: DateTime<Utc>,
    /// When it is due; absent while no fixed version exists (nothing to install yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due: Option<DateTime<Utc>>,
    /// Which rule set the due date: `severity` or `kev`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basis: Option<String>,
    /// The state at the time of the answer.
    pub state: FindingState,
    /// The CVE is in CISA's KEV catalog, added on this day (`YYYY-MM-DD`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kev_date_added: Option<String>,
    /// The valid exception covering it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exception: Option<ExceptionRef>,
}

/// An organisation's deadline policy (`GET /api/v1/deadline-policy`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeadlinePolicyView {
    /// The days.
    #[serde(flatten)]
    pub days: DeadlineDays,
    /// True while the organisation never set one (these are the defaults).
    pub default: bool,
    /// Who set it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_by: Option<String>,
    /// When.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<DateTime<Utc>>,
}

/// The days of a deadline policy, as a policy view shows them (flattened into
/// [`DeadlinePolicyView`], so its schema leaves other properties open; the request
/// body, strict about unknown fields, is [`DeadlineDaysRequest`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeadlineDays {
    /// Days for a critical finding (1–1825).
    pub critical_days: u32,
    /// Days for a high finding.
    pub high_days: u32,
    /// Days for a medium (and unassessed) finding.
    pub medium_days: u32,
    /// Days for a low (and negligible) finding.
    pub low_days: u32,
    /// Days for a known exploited (CISA KEV) finding, from the later of first seen and
    /// the catalog's date added; the earlier deadline wins.
    pub kev_days: u32,
    /// "Due soon" starts this many days before the deadline (0–90).
    pub due_soon_days: u32,
}

/// `PUT /api/v1/deadline-policy`: every field required, no other field accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DeadlineDaysRequest {
    /// Days for a critical finding (1–1825).
    pub critical_days: u32,
    /// Days for a high finding.
    pub high_days: u32,
    /// Days for a medium (and unassessed) finding.
    pub medium_days: u32,
    /// Days for a low (and negligible) finding.
    pub low_days: u32,
    /// Days for a known exploited (CISA KEV) finding.
    pub kev_days: u32,
    /// "Due soon" starts this many days before the deadline (0–90).
    pub due_soon_days: u32,
}

impl From<DeadlineDaysRequest> for DeadlineDays {
    fn from(r: DeadlineDaysRequest) -> DeadlineDays {
        DeadlineDays {
            critical_days: r.critical_days,
            high_days: r.high_days,
            medium_days: r.medium_days,
            low_days: r.low_days,
            kev_days: r.kev_days,
            due_soon_days: r.due_soon_days,
        }
    }
}

/// What an exception covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ExceptionScopeView {
    /// One host.
    Host {
        /// The host.
        host_id: Uuid,
        /// Its name, when it still exists.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        hostname: Option<String>,
    },
    /// The hosts of one group.
    Group {
        /// The group.
        group_id: Uuid,
    },
    /// Every host of the organisation.
    All,
}

/// An exception's standing at the time of the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ExceptionStatus {
    /// In force.
    Active,
    /// Past its expiry: its findings are open again.
    Expired,
    /// Revoked by an operator.
    Revoked,
}

/// An exception (`GET /api/v1/exceptions/{exception}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExceptionView {
    /// Its id.
    pub id: Uuid,
    /// The CVE or advisory id it accepts.
    pub vuln_id: String,
    /// Where.
    pub scope: ExceptionScopeView,
    /// Why the risk is accepted.
    pub reason: String,
    /// Who answers for it.
    pub owner: String,
    /// When it stops holding.
    pub expires_at: DateTime<Utc>,
    /// Who created it.
    pub created_by: String,
    /// When.
    pub created_at: DateTime<Utc>,
    /// When it was revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<DateTime<Utc>>,
    /// By whom.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_by: Option<String>,
    /// Active, expired or revoked, now.
    pub status: ExceptionStatus,
}

/// `POST /api/v1/exceptions`: give exactly one of `host`, `group` or `all_hosts: true`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewExceptionBody {
    /// The CVE (`CVE-2024-6387`) or advisory (`DSA-5724-1`) id.
    pub vuln_id: String,
    /// A host id or host name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// A group name or id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Every host of the organisation.
    #[serde(default)]
    pub all_hosts: bool,
    /// Why the risk is accepted (required).
    pub reason: String,
    /// Who answers for it (required).
    pub owner: String,
    /// When it expires: in the future, at most [`MAX_EXCEPTION_DAYS`] days ahead.
    pub expires_at: DateTime<Utc>,
}

/// The compliance of a set of hosts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ComplianceTally {
    /// Hosts the CVE data covers.
    pub hosts: u64,
    /// Of those, hosts without an overdue finding.
    pub compliant_hosts: u64,
    /// Percentage of covered hosts that are compliant (absent without covered hosts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_percent: Option<f64>,
    /// Hosts whose release the CVE data does not cover: shown apart, never compliant.
    pub hosts_without_data: u64,
    /// Findings with a deadline (vulnerable and fixable), excepted ones included.
    pub findings: u64,
    /// Open.
    pub open: u64,
    /// Due soon.
    pub due_soon: u64,
    /// Overdue.
    pub overdue: u64,
    /// Of the overdue, known exploited (CISA KEV).
    pub overdue_kev: u64,
    /// Excepted (out of the overdue count).
    pub excepted: u64,
    /// Percentage of findings (excepted ones left out) not overdue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finding_percent: Option<f64>,
}

/// One group's compliance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GroupCompliance {
    /// The group.
    pub group_id: Uuid,
    /// Its name.
    pub name: String,
    /// Its hosts' compliance.
    pub compliance: ComplianceTally,
}

/// `GET /api/v1/compliance`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ComplianceReport {
    /// The time the states are computed at.
    pub at: DateTime<Utc>,
    /// The deadline policy applied.
    pub policy: DeadlinePolicyView,
    /// The whole fleet (or the group asked for).
    pub fleet: ComplianceTally,
    /// Per group (each group's own hosts).
    #[serde(default)]
    pub groups: Vec<GroupCompliance>,
}

/// One overdue finding (`GET /api/v1/compliance/overdue`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OverdueFinding {
    /// The host.
    pub host_id: Uuid,
    /// Its name.
    pub hostname: String,
    /// The finding's advisory or CVE id.
    pub vuln_id: String,
    /// Its aliases (CVE ids first).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// The package the record names.
    pub package: String,
    /// Severity name.
    pub severity: String,
    /// The day CISA's KEV catalog added the CVE, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kev_date_added: Option<String>,
    /// First seen on the host.
    pub first_seen: DateTime<Utc>,
    /// Due.
    pub due: DateTime<Utc>,
    /// `severity` or `kev`.
    pub basis: String,
    /// Whole days past the due date.
    pub days_overdue: i64,
}

/// A page of overdue findings, most overdue first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OverduePage {
    /// The time the states are computed at.
    pub at: DateTime<Utc>,
    /// Overdue findings matching the filters, in all pages.
    pub total: u64,
    /// This page.
    pub findings: Vec<OverdueFinding>,
}
