//! Trust on the wire: the machine-readable error codes, the agent's view of its own
//! standing (`whoami`), credential rotation, enrollment keys with a life cycle, host
//! approval and the organisation's settings.
//!
//! The contract, in one place:
//!
//! - Agent credential refused: `401` with [`ErrorCode::CredentialUnknown`] (never
//!   issued, or replaced by a rotation); `403` with [`ErrorCode::CredentialRevoked`]
//!   (an operator revoked the host, or rejected it while it waited for approval). A
//!   revoked agent stops contacting the platform and never re-enrolls on its own.
//! - A host waiting for approval gets `403` [`ErrorCode::PendingApproval`] on every
//!   agent route except `GET /api/v1/agent/whoami`, and keeps asking at its heartbeat
//!   interval.
//! - `GET /api/v1/agent/whoami` (bearer credential) → [`WhoAmI`].
//! - `POST /api/v1/agent/credential` (bearer credential, empty body) →
//!   [`CredentialRotation`]: a new credential. The old one stays valid until the new
//!   one is first used, so an agent that crashes before storing the new credential
//!   keeps working with the old one.
//! - Enrollment: `401` [`ErrorCode::EnrollmentKeyInvalid`] (unknown, revoked, expired
//!   or used up: the message says which), `429` [`ErrorCode::RateLimited`] with a
//!   `Retry-After` header.
//! - The database-bound agent routes (enrollment, inventory, scan, results, credential
//!   rotation) answer `503` [`ErrorCode::Overloaded`] with a `Retry-After` header at
//!   once when the node already holds its limit of such requests in flight.
//! - Operator routes: `GET/POST /api/v1/enrollment-keys`,
//!   `POST /api/v1/enrollment-keys/{id}/revoke`, `POST /api/v1/enrollment-keys/{id}/rotate`,
//!   `GET /api/v1/hosts?status=pending`, `POST /api/v1/hosts/{host}/approve`,
//!   `POST /api/v1/hosts/{host}/reject`, `GET/PUT /api/v1/settings`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Secret;

/// Machine-readable reason of an error answer ([`crate::api::ApiErrorBody::code`]).
/// Clients branch on this, never on the message text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The agent credential was never issued or was replaced by a rotation (401).
    CredentialUnknown,
    /// The agent credential was revoked by an operator (403). Coming back takes an
    /// operator action.
    CredentialRevoked,
    /// The host waits for an operator to approve it (403).
    PendingApproval,
    /// The enrollment key is unknown, revoked, expired or used up (401).
    EnrollmentKeyInvalid,
    /// Too many requests from this key or address; retry after `Retry-After` (429).
    RateLimited,
    /// No valid operator credential: a missing, unknown, expired or revoked API token
    /// or session, or a disabled user (401).
    Unauthorized,
    /// The caller's role (or its read-only token) does not allow this (403).
    Forbidden,
    /// The route has no access rule, so it is refused for everyone (403; a platform
    /// bug to report).
    NoAccessRule,
    /// The `cursor` of a list request is not one this platform handed out (400).
    BadCursor,
    /// The request is malformed: a parameter, the body or its JSON (400).
    BadRequest,
    /// No such resource or endpoint (404).
    NotFound,
    /// The method is not served on this path (405).
    MethodNotAllowed,
    /// The request conflicts with the resource's state, or names an ambiguous host
    /// (409).
    Conflict,
    /// The body is over the route's limit (413).
    TooLarge,
    /// The body is not JSON, or has an unknown `Content-Encoding` (415).
    UnsupportedMediaType,
    /// The platform failed; it logged the cause (500).
    Internal,
    /// The database or the vulnerability correlation cannot answer right now; retry
    /// shortly (503).
    Unavailable,
    /// The platform node holds as many agent requests as it may at once
    /// (`agent_requests_in_flight`); retry after `Retry-After` (503).
    Overloaded,
    /// A code this build does not know (a newer platform). Never sent.
    #[serde(other)]
    Other,
}

impl ErrorCode {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::CredentialUnknown => "credential_unknown",
            ErrorCode::CredentialRevoked => "credential_revoked",
            ErrorCode::PendingApproval => "pending_approval",
            ErrorCode::EnrollmentKeyInvalid => "enrollment_key_invalid",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NoAccessRule => "no_access_rule",
            ErrorCode::BadCursor => "bad_cursor",
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::Conflict => "conflict",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::Internal => "internal",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Overloaded => "overloaded",
            ErrorCode::Other => "other",
        }
    }

    /// Every code a platform sends (not [`ErrorCode::Other`]).
    pub const ALL: [ErrorCode; 18] = [
        ErrorCode::CredentialUnknown,
        ErrorCode::CredentialRevoked,
        ErrorCode::PendingApproval,
        ErrorCode::EnrollmentKeyInvalid,
        ErrorCode::RateLimited,
        ErrorCode::Unauthorized,
        ErrorCode::Forbidden,
        ErrorCode::NoAccessRule,
        ErrorCode::BadCursor,
        ErrorCode::BadRequest,
        ErrorCode::NotFound,
        ErrorCode::MethodNotAllowed,
        ErrorCode::Conflict,
        ErrorCode::TooLarge,
        ErrorCode::UnsupportedMediaType,
        ErrorCode::Internal,
        ErrorCode::Unavailable,
        ErrorCode::Overloaded,
    ];

    /// The general code of an HTTP error status, for answers without a more specific
    /// one.
    pub fn for_status(status: u16) -> Self {
        match status {
            401 => ErrorCode::Unauthorized,
            403 => ErrorCode::Forbidden,
            404 => ErrorCode::NotFound,
            405 => ErrorCode::MethodNotAllowed,
            409 => ErrorCode::Conflict,
            413 => ErrorCode::TooLarge,
            415 => ErrorCode::UnsupportedMediaType,
            429 => ErrorCode::RateLimited,
            500..=502 | 504..=599 => ErrorCode::Internal,
            503 => ErrorCode::Unavailable,
            _ => ErrorCode::BadRequest,
        }
    }
}

/// Whether an operator let the host in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Approval {
    /// Accepted (or the organisation does not require approval).
    Approved,
    /// Waiting for an operator.
    Pending,
    /// Refused by an operator; the credential is revoked.
    Rejected,
}

impl Approval {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Approval::Approved => "approved",
            Approval::Pending => "pending",
            Approval::Rejected => "rejected",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "approved" => Approval::Approved,
            "pending" => Approval::Pending,
            "rejected" => Approval::Rejected,
            _ => return None,
        })
    }
}

/// `GET /api/v1/agent/whoami`: how the platform sees the caller's credential.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WhoAmI {
    /// The host.
    pub host_id: Uuid,
    /// Its name as the platform knows it.
    pub hostname: String,
    /// Approved or waiting (a rejected host gets 403 instead).
    pub approval: Approval,
    /// When the credential in use was issued.
    pub credential_issued_at: DateTime<Utc>,
    /// The platform's clock, for the clock-skew check.
    pub server_time: DateTime<Utc>,
}

/// Answer to `POST /api/v1/agent/credential`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CredentialRotation {
    /// The new credential (the platform keeps only its hash).
    pub credential: Secret,
    /// When it was issued.
    pub issued_at: DateTime<Utc>,
}

/// Life-cycle state of an enrollment key, derived from its fields at answer time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum KeyState {
    /// Enrolls hosts.
    Active,
    /// Past its expiry.
    Expired,
    /// Reached its maximum number of uses.
    Exhausted,
    /// Revoked by an operator.
    Revoked,
}

impl KeyState {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Active => "active",
            KeyState::Expired => "expired",
            KeyState::Exhausted => "exhausted",
            KeyState::Revoked => "revoked",
        }
    }
}

/// An enrollment key as operators see it (never the key itself).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EnrollmentKeyInfo {
    /// Id.
    pub id: Uuid,
    /// A label for people.
    pub name: String,
    /// Active, expired, exhausted or revoked.
    pub state: KeyState,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it stops enrolling (none: never).
    pub expires_at: Option<DateTime<Utc>>,
    /// How many hosts it may enroll (none: unlimited).
    pub max_uses: Option<u64>,
    /// How many hosts it enrolled.
    pub uses: u64,
    /// When it was revoked.
    pub revoked_at: Option<DateTime<Utc>>,
    /// The key this one replaced, when it was made by a rotation.
    pub rotated_from: Option<Uuid>,
}

/// `POST /api/v1/enrollment-keys`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewEnrollmentKey {
    /// A label for people (1–100 characters).
    pub name: String,
    /// Seconds until it expires (none: never).
    #[serde(default)]
    pub expires_in_secs: Option<u64>,
    /// How many hosts it may enroll (none: unlimited; at least 1).
    #[serde(default)]
    pub max_uses: Option<u64>,
}

/// `POST /api/v1/enrollment-keys/{id}/rotate`: a new key with the old one's name and
/// limits; the old one stops enrolling after `grace_secs` (0, the default: at once).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RotateEnrollmentKey {
    /// Seconds the old key keeps enrolling.
    #[serde(default)]
    pub grace_secs: u64,
}

/// Answer to creating or rotating a key: the key, shown this once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatedEnrollmentKey {
    /// The new key's record.
    pub info: EnrollmentKeyInfo,
    /// The key itself; only its hash is stored.
    pub key: Secret,
}

/// `GET/PUT /api/v1/settings`: the organisation's settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OrgSettings {
    /// New hosts wait for an operator's approval before they may do anything.
    #[serde(default)]
    pub require_approval: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_unknown_codes_are_other() {
        for c in ErrorCode::ALL {
            let s = serde_json::to_string(&c).unwrap();
            assert_eq!(s, format!("\"{}\"", c.as_str()));
            assert_eq!(serde_json::from_str::<ErrorCode>(&s).unwrap(), c);
        }
        assert_eq!(
            serde_json::from_str::<ErrorCode>("\"from_the_future\"").unwrap(),
            ErrorCode::Other
        );
    }

    #[test]
    fn every_error_status_has_a_general_code() {
        for (status, code) in [
            (400, "bad_request"),
            (401, "unauthorized"),
            (403, "forbidden"),
            (404, "not_found"),
            (409, "conflict"),
            (413, "too_large"),
            (415, "unsupported_media_type"),
            (422, "bad_request"),
            (429, "rate_limited"),
            (500, "internal"),
            (503, "unavailable"),
        ] {
            assert_eq!(ErrorCode::for_status(status).as_str(), code, "{status}");
        }
    }

    #[test]
    fn approval_names_parse_back() {
        for a in [Approval::Approved, Approval::Pending, Approval::Rejected] {
            assert_eq!(Approval::parse(a.as_str()), Some(a));
        }
        assert_eq!(Approval::parse("maybe"), None);
    }
}
