//! The audit trail of operators ([`AuditStore`]): one entry per state-changing request
//! (and per login and logout), whatever its outcome, append-only. The SQL is in
//! `sql/audit.rs`; triggers of migration 0007 refuse any `UPDATE` or `DELETE` of the
//! table on both backends. No secret is ever put in an entry: the platform writes the
//! route's path parameters and the handler's structured details, never a body.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::Result;

/// Who made a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditActor {
    /// `token`, `org-token`, `session` or `anonymous`.
    pub kind: String,
    /// The token's or session's id (never the secret).
    pub id: Option<String>,
    /// For people: `user alice (token ci)`, `organisation token admin`, `anonymous`.
    pub name: String,
    /// The user, when there is one.
    pub user_id: Option<Uuid>,
}

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditOutcome {
    /// Done (2xx, 3xx).
    Ok,
    /// Refused for who asked: 401, 403, 429.
    Refused,
    /// Refused for what was asked: any other 4xx.
    Rejected,
    /// The platform failed: 5xx.
    Failed,
}

impl AuditOutcome {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditOutcome::Ok => "ok",
            AuditOutcome::Refused => "refused",
            AuditOutcome::Rejected => "rejected",
            AuditOutcome::Failed => "failed",
        }
    }

    /// The outcome of an HTTP status.
    pub fn of_status(status: u16) -> Self {
        match status {
            401 | 403 | 429 => AuditOutcome::Refused,
            400..=499 => AuditOutcome::Rejected,
            500.. => AuditOutcome::Failed,
            _ => AuditOutcome::Ok,
        }
    }

    /// Parses a stored or typed name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            AuditOutcome::Ok,
            AuditOutcome::Refused,
            AuditOutcome::Rejected,
            AuditOutcome::Failed,
        ]
        .into_iter()
        .find(|o| o.as_str() == s)
    }
}

/// A new entry (see [`AuditStore::append_audit`]).
#[derive(Debug, Clone, PartialEq)]
pub struct NewAuditEntry {
    /// The organisation (none: a refusal that names none, e.g. an unknown token).
    pub org_id: Option<Uuid>,
    /// When.
    pub at: DateTime<Utc>,
    /// Who.
    pub actor: AuditActor,
    /// From which address.
    pub peer: Option<String>,
    /// HTTP method.
    pub method: String,
    /// The route template (`/api/v1/hosts/{host}/revoke`), never the raw path.
    pub route: String,
    /// What, by name (`host.revoke`).
    pub action: String,
    /// The route's path parameters (a JSON object).
    pub target: serde_json::Value,
    /// What the handler did, in structured form (a JSON value; `null` when none).
    pub details: serde_json::Value,
    /// HTTP status of the answer.
    pub status: u16,
    /// How it ended.
    pub outcome: AuditOutcome,
    /// The answer's machine-readable error code, when it was an error.
    pub error_code: Option<String>,
}

/// A stored entry.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    /// Position in the trail (grows with every entry).
    pub seq: i64,
    /// Everything as appended.
    pub entry: NewAuditEntry,
}

/// What [`AuditStore::list_audit`] returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Entries whose actor name or id contains this.
    pub actor: Option<String>,
    /// Entries whose action starts with this.
    pub action: Option<String>,
    /// Entries with this outcome.
    pub outcome: Option<AuditOutcome>,
    /// At or after.
    pub since: Option<DateTime<Utc>>,
    /// Before.
    pub until: Option<DateTime<Utc>>,
    /// Entries before this seq (the cursor of the next page).
    pub before_seq: Option<i64>,
}

/// The audit trail.
#[async_trait]
pub trait AuditStore: Send + Sync + 'static {
    /// Appends an entry; returns its seq.
    async fn append_audit(&self, entry: NewAuditEntry) -> Result<i64>;
    /// Entries of `org_id` and entries that name no organisation, newest first, at
    /// most `limit`.
    async fn list_audit(
        &self,
        org_id: Uuid,
        filter: &AuditFilter,
        limit: u32,
    ) -> Result<Vec<AuditEntry>>;
}
