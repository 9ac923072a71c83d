//! Operators: users with a role in their organisation, their dashboard sessions and
//! their API tokens ([`OperatorStore`]). Only hashes of secrets are stored: Argon2id
//! PHC strings for passwords (computed by the platform), SHA-256 for session secrets
//! and tokens. The SQL is in `sql/operators.rs`.
//!
//! Usernames are unique on the whole platform (a login names no organisation). The
//! organisation's own token (`user_id` none, from `admin create-org`) acts as an owner.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use patchctl_proto::access::Role;
use uuid::Uuid;

use crate::error::Result;
use crate::identity::ApiToken;

/// A user of the platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Id.
    pub id: Uuid,
    /// Organisation.
    pub org_id: Uuid,
    /// Login name (lowercase).
    pub username: String,
    /// Role in the organisation.
    pub role: Role,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was disabled (a disabled user neither logs in nor uses a token).
    pub disabled_at: Option<DateTime<Utc>>,
}

/// A new user (see [`OperatorStore::create_user`]).
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Organisation.
    pub org_id: Uuid,
    /// Login name, already normalised by the caller.
    pub username: String,
    /// Argon2id PHC string of the password.
    pub password_hash: String,
    /// Role.
    pub role: Role,
    /// Creation time.
    pub now: DateTime<Utc>,
}

/// A new dashboard session (see [`OperatorStore::create_session`]).
#[derive(Debug, Clone)]
pub struct NewSession {
    /// Id (not secret: named in the audit trail).
    pub id: Uuid,
    /// SHA-256 (hex) of the cookie's secret.
    pub secret_hash: String,
    /// The user.
    pub user_id: Uuid,
    /// The user's organisation.
    pub org_id: Uuid,
    /// Creation time.
    pub now: DateTime<Utc>,
}

/// A session as looked up by its secret's hash, with its user's standing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    /// Id.
    pub id: Uuid,
    /// The user.
    pub user_id: Uuid,
    /// The user's organisation.
    pub org_id: Uuid,
    /// The user's name.
    pub username: String,
    /// The user's role now (a role change applies at once).
    pub role: Role,
    /// Login time (the absolute timeout counts from here).
    pub created_at: DateTime<Utc>,
    /// Last request (the idle timeout counts from here).
    pub last_seen_at: DateTime<Utc>,
    /// Logout (or the user was disabled).
    pub ended_at: Option<DateTime<Utc>>,
    /// The user is disabled.
    pub user_disabled: bool,
}

/// A new API token (see [`OperatorStore::insert_api_token`]).
#[derive(Debug, Clone)]
pub struct NewApiToken {
    /// Organisation.
    pub org_id: Uuid,
    /// The user it acts for (none: an organisation token, acting as an owner).
    pub user_id: Option<Uuid>,
    /// A label for people.
    pub name: String,
    /// SHA-256 (hex) of the token.
    pub token_hash: String,
    /// Reads only.
    pub read_only: bool,
    /// When it stops working (none: never).
    pub expires_at: Option<DateTime<Utc>>,
    /// Creation time.
    pub now: DateTime<Utc>,
}

/// A token as looked up by its hash, with its user (the caller checks revocation,
/// expiry and a disabled user).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenAuth {
    /// The token.
    pub token: ApiToken,
    /// Its user (none: an organisation token).
    pub user: Option<User>,
}

/// Users, sessions and users' API tokens. Times are passed in.
#[async_trait]
pub trait OperatorStore: Send + Sync + 'static {
    /// Creates a user; `Conflict` when the username exists.
    async fn create_user(&self, user: NewUser) -> Result<User>;
    /// The user with this username, whatever its organisation, with its password hash
    /// (for a login).
    async fn user_login(&self, username: &str) -> Result<Option<(User, String)>>;
    /// One user of `org_id`.
    async fn user(&self, org_id: Uuid, id: Uuid) -> Result<Option<User>>;
    /// The user of `org_id` with this username.
    async fn user_by_name(&self, org_id: Uuid, username: &str) -> Result<Option<User>>;
    /// Every user of `org_id`, by username.
    async fn list_users(&self, org_id: Uuid) -> Result<Vec<User>>;
    /// Changes a user's role; false when there is no such user, or when it would leave
    /// the organisation without an active owner (checked in the statement, with the
    /// organisation's owner changes serialised, so that two racing demotions cannot
    /// both pass).
    async fn set_user_role(&self, org_id: Uuid, id: Uuid, role: Role) -> Result<bool>;
    /// Replaces a user's password hash and ends every dashboard session of theirs (a
    /// stolen session does not outlive a password change), in one transaction; false
    /// when there is no such user.
    async fn set_user_password(
        &self,
        org_id: Uuid,
        id: Uuid,
        hash: &str,
        now: DateTime<Utc>,
    ) -> Result<bool>;
    /// Disables a user (keeping the first time) and ends their sessions, in one
    /// transaction; false when there is no such user, or when it would leave the
    /// organisation without an active owner (as for [`OperatorStore::set_user_role`]).
    async fn disable_user(&self, org_id: Uuid, id: Uuid, now: DateTime<Utc>) -> Result<bool>;
    /// Users of `org_id` with the owner role that are not disabled.
    async fn count_active_owners(&self, org_id: Uuid) -> Result<u64>;

    /// Stores a new session.
    async fn create_session(&self, session: NewSession) -> Result<()>;
    /// The session with this secret hash, with its user's standing.
    async fn session_by_hash(&self, secret_hash: &str) -> Result<Option<SessionRow>>;
    /// Records a request of the session.
    async fn touch_session(&self, id: Uuid, now: DateTime<Utc>) -> Result<()>;
    /// Ends a session (logout); false when it was not open.
    async fn end_session(&self, id: Uuid, now: DateTime<Utc>) -> Result<bool>;

    /// Stores a new API token; `Conflict` for a hash that exists.
    async fn insert_api_token(&self, token: NewApiToken) -> Result<ApiToken>;
    /// The token with this hash and its user, whatever their standing.
    async fn api_token_auth(&self, token_hash: &str) -> Result<Option<TokenAuth>>;
    /// Records a use of the token (written only when the last one is a minute old).
    async fn touch_api_token(&self, id: Uuid, now: DateTime<Utc>) -> Result<()>;
    /// The tokens of `org_id` (of one user when given), by creation time.
    async fn list_api_tokens(&self, org_id: Uuid, user_id: Option<Uuid>) -> Result<Vec<ApiToken>>;
    /// One token of `org_id`.
    async fn api_token(&self, org_id: Uuid, id: Uuid) -> Result<Option<ApiToken>>;
    /// Revokes a token of `org_id` (keeping the first time); false when there is none.
    async fn revoke_api_token(&self, org_id: Uuid, id: Uuid, now: DateTime<Utc>) -> Result<bool>;
}
