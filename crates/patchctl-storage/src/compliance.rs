//! Remediation deadlines and accepted risk ([`ComplianceStore`]): when each finding was
//! first seen on a host, the organisations' exceptions and their deadline policies.
//! The SQL is in `sql/compliance.rs`; the math (due dates, states, percentages) is
//! `patchctl_policy::deadline`.
//!
//! First-seen times are written by the CVE engine in bulk and idempotently: a row that
//! exists is never changed, so a finding keeps the time it was first seen. An exception
//! is valid while it is not revoked and `expires_at` is after the time asked about;
//! nothing runs to expire one.

use async_trait::async_trait;
use patchctl_policy::deadline::DeadlinePolicy;
use uuid::Uuid;

use crate::error::Result;

/// When a finding was first seen on a host (times are Unix ms).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FirstSeen {
    /// Organisation.
    pub org_id: Uuid,
    /// Host.
    pub host_id: Uuid,
    /// The finding's vulnerability (advisory or CVE) id.
    pub vuln_id: String,
    /// The package the finding names (the record's key).
    pub package: String,
    /// When it was first seen.
    pub first_seen_at: i64,
}

/// What an exception covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExceptionScope {
    /// One host.
    Host(Uuid),
    /// The hosts of one group (a `groups` id).
    Group(Uuid),
    /// Every host of the organisation.
    All,
}

/// An exception to create (times are Unix ms).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewException {
    /// Organisation.
    pub org_id: Uuid,
    /// The vulnerability (CVE or advisory id) it accepts.
    pub vuln_id: String,
    /// Where.
    pub scope: ExceptionScope,
    /// Why the risk is accepted.
    pub reason: String,
    /// Who answers for it.
    pub owner: String,
    /// When it stops being valid.
    pub expires_at: i64,
    /// Who created it (the audit actor).
    pub created_by: String,
    /// When.
    pub created_at: i64,
}

/// A stored exception.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExceptionRow {
    /// Its id.
    pub id: Uuid,
    /// What was created.
    pub new: NewException,
    /// When it was revoked.
    pub revoked_at: Option<i64>,
    /// By whom.
    pub revoked_by: Option<String>,
}

impl ExceptionRow {
    /// Whether it is in force at `now` (Unix ms).
    pub fn valid_at(&self, now: i64) -> bool {
        patchctl_policy::deadline::exception_valid(self.new.expires_at, self.revoked_at, now)
    }
}

/// What [`ComplianceStore::revoke_exception`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevokeOutcome {
    /// Revoked now.
    Revoked(ExceptionRow),
    /// It was revoked before (the row as it is).
    AlreadyRevoked(ExceptionRow),
    /// No such exception in the organisation.
    NotFound,
}

/// An organisation's deadline policy as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadlinePolicyRow {
    /// The days.
    pub policy: DeadlinePolicy,
    /// Who set it.
    pub updated_by: String,
    /// When (Unix ms).
    pub updated_at: i64,
}

/// First-seen times, exceptions and deadline policies.
#[async_trait]
pub trait ComplianceStore: Send + Sync {
    /// Stores the first-seen times of `rows` that are not stored yet (a stored row is
    /// kept as it is); returns how many were new. Multi-row statements, one transaction.
    async fn record_first_seen(&self, rows: &[FirstSeen]) -> Result<u64>;

    /// Every stored first-seen time (of every organisation), for the CVE engine's start.
    async fn all_first_seen(&self) -> Result<Vec<FirstSeen>>;

    /// The first-seen times of one host.
    async fn host_first_seen(&self, org: Uuid, host: Uuid) -> Result<Vec<FirstSeen>>;

    /// Creates an exception (the caller validated it).
    async fn create_exception(&self, e: &NewException) -> Result<ExceptionRow>;

    /// One exception of the organisation.
    async fn exception(&self, org: Uuid, id: Uuid) -> Result<Option<ExceptionRow>>;

    /// The organisation's exceptions, newest first; only those valid at `valid_at`
    /// (Unix ms) when given.
    async fn list_exceptions(&self, org: Uuid, valid_at: Option<i64>) -> Result<Vec<ExceptionRow>>;

    /// Revokes an exception at `now` (Unix ms) by `by`.
    async fn revoke_exception(
        &self,
        org: Uuid,
        id: Uuid,
        by: &str,
        now: i64,
    ) -> Result<RevokeOutcome>;

    /// The organisation's deadline policy, if one was set.
    async fn deadline_policy(&self, org: Uuid) -> Result<Option<DeadlinePolicyRow>>;

    /// Sets the organisation's deadline policy (the caller validated it).
    async fn put_deadline_policy(&self, org: Uuid, row: &DeadlinePolicyRow) -> Result<()>;
}
