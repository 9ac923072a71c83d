//! The audit trail of operators as the operator API shows it (`GET /api/v1/audit`,
//! `GET /api/v1/audit/{seq}`): one [`AuditRecord`] per state-changing request, kept
//! append-only and forever. No record holds a secret: tokens, keys and passwords never
//! reach the trail (docs/audit.md).

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// How a recorded request ended, from its status code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum AuditOutcome {
    /// It was done (2xx, 3xx).
    Ok,
    /// The caller was refused: not authenticated (401), not allowed (403) or too fast
    /// (429).
    Refused,
    /// The platform rejected the request itself (any other 4xx: a command outside the
    /// whitelist, an unknown host, a conflict).
    Rejected,
    /// The platform failed (5xx).
    Failed,
}

impl AuditOutcome {
    /// Every outcome, in the order of the documentation.
    pub const ALL: [AuditOutcome; 4] = [
        AuditOutcome::Ok,
        AuditOutcome::Refused,
        AuditOutcome::Rejected,
        AuditOutcome::Failed,
    ];

    /// The lowercase name (`ok`, `refused`, `rejected`, `failed`).
    pub fn as_str(self) -> &'static str {
        match self {
            AuditOutcome::Ok => "ok",
            AuditOutcome::Refused => "refused",
            AuditOutcome::Rejected => "rejected",
            AuditOutcome::Failed => "failed",
        }
    }

    /// The outcome of an answer with HTTP status `status`.
    pub fn of_status(status: u16) -> AuditOutcome {
        match status {
            401 | 403 | 429 => AuditOutcome::Refused,
            400..=499 => AuditOutcome::Rejected,
            500.. => AuditOutcome::Failed,
            _ => AuditOutcome::Ok,
        }
    }
}

impl fmt::Display for AuditOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An outcome name that is none of `ok`, `refused`, `rejected`, `failed`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown outcome {0:?}; the outcomes are ok, refused, rejected and failed")]
pub struct UnknownOutcome(pub String);

impl FromStr for AuditOutcome {
    type Err = UnknownOutcome;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AuditOutcome::ALL
            .into_iter()
            .find(|o| o.as_str() == s)
            .ok_or_else(|| UnknownOutcome(s.to_owned()))
    }
}

/// Who made a recorded request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditActorRecord {
    /// `token` (a user's API token), `org-token` (the organisation's token),
    /// `session` (the dashboard) or `anonymous` (no valid credential: the request was
    /// refused).
    pub kind: String,
    /// The token's or session's id, when there is one (never the secret).
    pub id: Option<String>,
    /// For people: `user alice (token ci)`, `organisation token default`,
    /// `anonymous`.
    pub name: String,
    /// The user behind the token or session (none for the organisation token and
    /// anonymous requests).
    pub user_id: Option<Uuid>,
}

/// One entry of the audit trail.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditRecord {
    /// Position in the trail: grows with every entry, platform-wide; the newest entry
    /// has the highest.
    pub seq: i64,
    /// The organisation acted on; none for a refusal of a credential the platform does
    /// not know.
    pub org_id: Option<Uuid>,
    /// When the answer was given.
    pub at: DateTime<Utc>,
    /// Who.
    pub actor: AuditActorRecord,
    /// The TCP peer address the request came from.
    pub peer: Option<String>,
    /// HTTP method (`POST`, `PUT`, `DELETE`).
    pub method: String,
    /// The route template, such as `/api/v1/hosts/{host}/revoke`.
    pub route: String,
    /// What was asked, such as `host.revoke` or `command.queue` (the route's access
    /// rule names it).
    pub action: String,
    /// What it was asked of: the path parameters, such as `{"host": "web-1"}`.
    pub target: serde_json::Value,
    /// What was done, as the handler describes it (`{}` when it says nothing, such as
    /// for a refusal): for a revocation the host's id and name, for a queued command its
    /// id, operation and packages, for settings the values before and after.
    pub details: serde_json::Value,
    /// The HTTP status of the answer.
    pub status: u16,
    /// The outcome, from the status.
    pub outcome: AuditOutcome,
    /// The error's stable code (`forbidden`, `not_found`, ...) when it failed.
    pub error_code: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_follow_the_status_and_parse_back() {
        for (status, outcome) in [
            (200, AuditOutcome::Ok),
            (201, AuditOutcome::Ok),
            (400, AuditOutcome::Rejected),
            (401, AuditOutcome::Refused),
            (403, AuditOutcome::Refused),
            (404, AuditOutcome::Rejected),
            (409, AuditOutcome::Rejected),
            (413, AuditOutcome::Rejected),
            (429, AuditOutcome::Refused),
            (500, AuditOutcome::Failed),
            (503, AuditOutcome::Failed),
        ] {
            assert_eq!(AuditOutcome::of_status(status), outcome, "{status}");
        }
        for o in AuditOutcome::ALL {
            assert_eq!(o.as_str().parse::<AuditOutcome>(), Ok(o));
            assert_eq!(
                serde_json::to_value(o).unwrap(),
                serde_json::json!(o.as_str())
            );
        }
        let e = "denied".parse::<AuditOutcome>().unwrap_err().to_string();
        assert!(e.contains("ok, refused, rejected and failed"), "{e}");
    }
}
