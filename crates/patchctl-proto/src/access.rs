//! Who may do what on the platform: the roles a user holds in an organisation
//! ([`Role`]) and what a route needs ([`Need`]).
//!
//! The matrix ([`Role::allows`]):
//!
//! | need         | owner | admin | operator | viewer | auditor |
//! |--------------|-------|-------|----------|--------|---------|
//! | `read`       | yes   | yes   | yes      | yes    |         |
//! | `operate`    | yes   | yes   | yes      |        |         |
//! | `administer` | yes   | yes   |          |        |         |
//! | `own`        | yes   |       |          |        |         |
//! | `audit`      | yes   | yes   |          |        | yes     |
//! | `identity`   | yes   | yes   | yes      | yes    | yes     |
//! | `account`    | yes   | yes   | yes      | yes    | yes     |
//!
//! `read` is every view of hosts, packages, updates, findings and commands; `operate`
//! queues and cancels commands; `administer` manages enrollment keys, hosts' standing
//! (revoke, approve, reject), the organisation's settings, users other than owners,
//! other people's tokens, releases and the agent rollout; `own` makes and demotes
//! owners; `audit` reads the audit trail; `identity` is who one is and one's own tokens;
//! `account` is one's own tokens and password (the handler checks that they are one's
//! own, or that the caller may administer). A read-only API token allows only `read` and
//! `audit`, whatever its user's role.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Secret;

/// A user's role in their organisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything, including making and demoting owners.
    Owner,
    /// Everything but owners.
    Admin,
    /// Reads, and queues and cancels commands.
    Operator,
    /// Reads only.
    Viewer,
    /// Reads the audit trail only.
    Auditor,
}

/// What a route needs of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Need {
    /// Views of the fleet.
    Read,
    /// Queueing and cancelling commands.
    Operate,
    /// Keys, hosts' standing, settings, users, tokens, releases.
    Administer,
    /// Owners.
    Own,
    /// The audit trail.
    Audit,
    /// Who one is and one's own tokens (`whoami`, listing them): every role, read-only
    /// tokens too. What is someone else's is checked by the handler.
    Identity,
    /// One's own account: creating and revoking one's own tokens, changing one's own
    /// password. Every role, read-write credentials only; someone else's is checked
    /// by the handler (administer).
    Account,
}

impl Role {
    /// Every role, most powerful first.
    pub const ALL: [Role; 5] = [
        Role::Owner,
        Role::Admin,
        Role::Operator,
        Role::Viewer,
        Role::Auditor,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Viewer => "viewer",
            Role::Auditor => "auditor",
        }
    }

    /// Whether this role may do what `need` names (the matrix in the module docs).
    pub fn allows(self, need: Need) -> bool {
        use Role::*;
        match need {
            Need::Read => matches!(self, Owner | Admin | Operator | Viewer),
            Need::Operate => matches!(self, Owner | Admin | Operator),
            Need::Administer => matches!(self, Owner | Admin),
            Need::Own => self == Owner,
            Need::Audit => matches!(self, Owner | Admin | Auditor),
            Need::Identity | Need::Account => true,
        }
    }
}

impl Need {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Need::Read => "read",
            Need::Operate => "operate",
            Need::Administer => "administer",
            Need::Own => "own",
            Need::Audit => "audit",
            Need::Identity => "identity",
            Need::Account => "account",
        }
    }

    /// Whether a read-only token may do this.
    pub fn read_only(self) -> bool {
        matches!(self, Need::Read | Need::Audit | Need::Identity)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Need {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role name that is none of the five.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?}: use owner, admin, operator, viewer or auditor")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s.trim().to_ascii_lowercase())
            .ok_or_else(|| UnknownRole(s.to_owned()))
    }
}

// ---------------------------------------------------------------------------------
// Users and API tokens on the wire (helper A).
//
// - `GET /api/v1/whoami` → [`OperatorIdentity`].
// - `GET /api/v1/users` → `[UserInfo]`; `POST /api/v1/users` ([`NewUserRequest`]) →
//   201 [`UserInfo`]; `GET /api/v1/users/{user}` (name or id) → [`UserInfo`];
//   `PUT /api/v1/users/{user}/role` ([`RoleChange`]); `POST /api/v1/users/{user}/disable`;
//   `PUT /api/v1/users/{user}/password` ([`PasswordChange`]).
// - `GET /api/v1/tokens[?user=NAME]` → `[TokenInfo]`; `POST /api/v1/tokens`
//   ([`NewTokenRequest`]) → 201 [`CreatedToken`] (the token shown this once);
//   `POST /api/v1/tokens/{id}/revoke` → [`TokenInfo`].

/// How long a new API token lives when the request does not say: 90 days.
pub const DEFAULT_TOKEN_LIFETIME_SECS: u64 = 90 * 86_400;

/// Shortest password the platform accepts, in characters.
pub const MIN_PASSWORD_CHARS: usize = 12;

/// An operator as others see it (never the password or its hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserInfo {
    /// Id.
    pub id: Uuid,
    /// Login name, unique on the platform.
    pub username: String,
    /// Role in the organisation.
    pub role: Role,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was disabled (a disabled user can neither log in nor use a token).
    pub disabled_at: Option<DateTime<Utc>>,
}

/// `POST /api/v1/users`: a new user of the caller's organisation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewUserRequest {
    /// Login name: 1 to 64 characters of `a-z 0-9 . _ -`, starting with a letter or digit.
    pub username: String,
    /// Role (making an owner takes an owner).
    pub role: Role,
    /// Initial password, at least [`MIN_PASSWORD_CHARS`] characters.
    pub password: Secret,
}

/// `PUT /api/v1/users/{user}/role`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RoleChange {
    /// The new role.
    pub role: Role,
}

/// `PUT /api/v1/users/{user}/password`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    /// The new password, at least [`MIN_PASSWORD_CHARS`] characters.
    pub password: Secret,
}

/// Where an API token stands at the time asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum TokenState {
    /// It authenticates.
    Active,
    /// Past its expiry.
    Expired,
    /// Revoked by an operator.
    Revoked,
}

impl TokenState {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenState::Active => "active",
            TokenState::Expired => "expired",
            TokenState::Revoked => "revoked",
        }
    }
}

/// An API token as operators see it (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenInfo {
    /// Id.
    pub id: Uuid,
    /// A label for people.
    pub name: String,
    /// Its owner; none for the organisation token (which acts as an owner).
    pub user_id: Option<Uuid>,
    /// Its owner's login name.
    pub username: Option<String>,
    /// A read-only token may only read (GET), whatever its user's role.
    pub read_only: bool,
    /// Active, expired or revoked.
    pub state: TokenState,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it stops working (none: never).
    pub expires_at: Option<DateTime<Utc>>,
    /// When it was last used (to the minute).
    pub last_used_at: Option<DateTime<Utc>>,
    /// When it was revoked.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// `POST /api/v1/tokens`: a new token for the caller (or, for an admin, another user).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewTokenRequest {
    /// A label for people (1–100 characters).
    pub name: String,
    /// The user it belongs to (name or id); none: the caller.
    #[serde(default)]
    pub user: Option<String>,
    /// Read-only scope (GET only).
    #[serde(default)]
    pub read_only: bool,
    /// Seconds until it expires; none: [`DEFAULT_TOKEN_LIFETIME_SECS`].
    #[serde(default)]
    pub expires_in_secs: Option<u64>,
    /// A token that never expires (not with `expires_in_secs`).
    #[serde(default)]
    pub never_expires: bool,
}

/// Answer to creating a token: the token, shown this once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatedToken {
    /// The new token's record.
    pub info: TokenInfo,
    /// The token itself; only its hash is stored.
    pub token: Secret,
}

/// How the caller authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CredentialKind {
    /// The organisation token (acts as an owner, belongs to no user).
    OrgToken,
    /// A user's API token.
    Token,
    /// A dashboard session.
    Session,
}

/// `GET /api/v1/whoami`: who the caller is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OperatorIdentity {
    /// The organisation every request of the caller is confined to.
    pub org_id: Uuid,
    /// The role the caller acts with.
    pub role: Role,
    /// The user; none for the organisation token.
    pub user: Option<UserInfo>,
    /// How the caller authenticated.
    pub via: CredentialKind,
    /// The token's id, when a token authenticated.
    pub token_id: Option<Uuid>,
    /// The token's name.
    pub token_name: Option<String>,
    /// True when the token may only read.
    pub read_only: bool,
    /// When the token expires.
    pub token_expires_at: Option<DateTime<Utc>>,
    /// How the caller is named in the audit trail.
    pub label: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_matrix() {
        let table = [
            (Need::Read, "owner admin operator viewer"),
            (Need::Operate, "owner admin operator"),
            (Need::Administer, "owner admin"),
            (Need::Own, "owner"),
            (Need::Audit, "owner admin auditor"),
            (Need::Identity, "owner admin operator viewer auditor"),
            (Need::Account, "owner admin operator viewer auditor"),
        ];
        for (need, allowed) in table {
            let got: Vec<&str> = Role::ALL
                .into_iter()
                .filter(|r| r.allows(need))
                .map(Role::as_str)
                .collect();
            assert_eq!(got.join(" "), allowed, "{need}");
        }
    }

    #[test]
    fn names_round_trip_and_bad_names_say_what_is_valid() {
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>().unwrap(), r);
            assert_eq!(
                serde_json::to_string(&r).unwrap(),
                format!("\"{}\"", r.as_str())
            );
        }
        assert_eq!(" Viewer ".parse::<Role>().unwrap(), Role::Viewer);
        let e = "root".parse::<Role>().unwrap_err().to_string();
        assert!(e.contains("root") && e.contains("auditor"), "{e}");
    }
}

#[cfg(test)]
mod wire_tests {
    use super::*;

    #[test]
    fn a_token_request_needs_only_a_name_and_refuses_unknown_fields() {
        let r: NewTokenRequest = serde_json::from_str(r#"{"name":"ci"}"#).unwrap();
        assert_eq!(r.user, None);
        assert!(!r.read_only && !r.never_expires && r.expires_in_secs.is_none());
        assert!(
            serde_json::from_str::<NewTokenRequest>(r#"{"name":"ci","readonly":true}"#).is_err()
        );
    }

    #[test]
    fn a_password_change_never_formats_the_password() {
        let p: PasswordChange =
            serde_json::from_str(r#"{"password":"canary-password-1"}"#).unwrap();
        assert!(!format!("{p:?}").contains("canary"));
    }
}
