//! Identity: organisations, operator API tokens and enrollment keys ([`IdentityStore`]).
//! Users, roles and the audit trail belong here when they arrive. Only hashes of
//! secrets are stored. The SQL is in `sql/identity.rs`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::Result;

/// An organisation: every key, host, token and command belongs to exactly one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Org {
    /// Id.
    pub id: Uuid,
    /// Unique name.
    pub name: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// An operator API token (only its SHA-256 is stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    /// Id.
    pub id: Uuid,
    /// Organisation.
    pub org_id: Uuid,
    /// A label for people.
    pub name: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// An enrollment (license) key (only its SHA-256 is stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrollmentKey {
    /// Id.
    pub id: Uuid,
    /// Organisation.
    pub org_id: Uuid,
    /// A label for people.
    pub name: String,
    /// Revoked keys enroll nothing.
    pub revoked: bool,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// Organisations, API tokens and enrollment keys. Times are passed in (never read from
/// the clock inside).
#[async_trait]
pub trait IdentityStore: Send + Sync + 'static {
    /// Creates an organisation; `Conflict` if the name exists.
    async fn create_org(&self, name: &str, now: DateTime<Utc>) -> Result<Org>;
    /// Finds an organisation by name.
    async fn org_by_name(&self, name: &str) -> Result<Option<Org>>;

    /// Stores a new API token's hash.
    async fn create_api_token(
        &self,
        org_id: Uuid,
        name: &str,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<ApiToken>;
    /// Finds the token with this hash.
    async fn api_token_by_hash(&self, token_hash: &str) -> Result<Option<ApiToken>>;

    /// Stores a new enrollment key's hash.
    async fn create_enrollment_key(
        &self,
        org_id: Uuid,
        name: &str,
        key_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<EnrollmentKey>;
    /// Finds the enrollment key with this hash (revoked ones too: the caller decides).
    async fn enrollment_key_by_hash(&self, key_hash: &str) -> Result<Option<EnrollmentKey>>;
    /// Revokes an enrollment key of `org_id`; false when there is none.
    async fn revoke_enrollment_key(&self, org_id: Uuid, key_id: Uuid) -> Result<bool>;
}
