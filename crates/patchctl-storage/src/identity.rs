//! Identity: organisations and their settings, operator API tokens and enrollment keys
//! with their life cycle ([`IdentityStore`]). Users, sessions and users' tokens are
//! in `operators.rs`, the audit trail in `audit.rs`. Only hashes of secrets are stored. The SQL is in
//! `sql/identity.rs`.
//!
//! An enrollment key's state ([`KeyState`]) is derived from its fields at the time
//! asked ([`EnrollmentKey::state`]): revoked, else expired, else exhausted, else
//! active. Counting a use against the limits is part of enrolling a host
//! ([`crate::HostStore::enroll_host`]), in the same transaction.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use patchctl_proto::trust::{KeyState, OrgSettings};
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
    /// The user it acts for; none: the organisation's own token (acts as an owner).
    pub user_id: Option<Uuid>,
    /// Allows only reads (GET of `read` and `audit` routes).
    pub read_only: bool,
    /// When it stops working (none: never).
    pub expires_at: Option<DateTime<Utc>>,
    /// When it was last used (written at most once a minute).
    pub last_used_at: Option<DateTime<Utc>>,
    /// When it was revoked.
    pub revoked_at: Option<DateTime<Utc>>,
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
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it stops enrolling (none: never).
    pub expires_at: Option<DateTime<Utc>>,
    /// How many hosts it may enroll (none: unlimited).
    pub max_uses: Option<u64>,
    /// How many hosts it enrolled.
    pub uses: u64,
    /// When an operator revoked it (revoked keys enroll nothing).
    pub revoked_at: Option<DateTime<Utc>>,
    /// The key this one replaced, when a rotation made it.
    pub rotated_from: Option<Uuid>,
}

impl EnrollmentKey {
    /// The key's state at `now`: revoked, else expired (at or after `expires_at`), else
    /// exhausted (`uses` reached `max_uses`), else active.
    pub fn state(&self, now: DateTime<Utc>) -> KeyState {
        if self.revoked_at.is_some() {
            KeyState::Revoked
        } else if self.expires_at.is_some_and(|e| e <= now) {
            KeyState::Expired
        } else if self.max_uses.is_some_and(|m| self.uses >= m) {
            KeyState::Exhausted
        } else {
            KeyState::Active
        }
    }
}

/// A new enrollment key (see [`IdentityStore::insert_enrollment_key`]).
#[derive(Debug, Clone)]
pub struct NewEnrollmentKey {
    /// Organisation.
    pub org_id: Uuid,
    /// A label for people.
    pub name: String,
    /// SHA-256 (hex) of the key.
    pub key_hash: String,
    /// When it stops enrolling (none: never).
    pub expires_at: Option<DateTime<Utc>>,
    /// How many hosts it may enroll (none: unlimited; else at least 1).
    pub max_uses: Option<u64>,
    /// Creation time.
    pub now: DateTime<Utc>,
}

/// What [`IdentityStore::rotate_enrollment_key`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyRotation {
    /// The new key was stored and the old one ends at the grace time (or earlier, when
    /// it expired before that anyway).
    Rotated {
        /// The old key as it is now.
        old: EnrollmentKey,
        /// The new key.
        new: EnrollmentKey,
    },
    /// The organisation has no such key.
    NotFound,
    /// The key is revoked; a revoked key is not rotated (create a new one).
    Revoked(EnrollmentKey),
}

/// Organisations, API tokens and enrollment keys. Times are passed in (never read from
/// the clock inside).
#[async_trait]
pub trait IdentityStore: Send + Sync + 'static {
    /// Creates an organisation; `Conflict` if the name exists.
    async fn create_org(&self, name: &str, now: DateTime<Utc>) -> Result<Org>;
    /// Finds an organisation by name.
    async fn org_by_name(&self, name: &str) -> Result<Option<Org>>;
    /// Every organisation, by name.
    async fn list_orgs(&self) -> Result<Vec<Org>>;

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

    /// The organisation's settings (the defaults for an unknown organisation).
    async fn org_settings(&self, org_id: Uuid) -> Result<OrgSettings>;
    /// Replaces the organisation's settings; false when there is no such organisation.
    async fn set_org_settings(&self, org_id: Uuid, settings: &OrgSettings) -> Result<bool>;
    /// The organisation's recorded command-signing public key (`ed25519:<hex>`), if any.
    async fn org_command_key(&self, org_id: Uuid) -> Result<Option<String>>;
    /// Records `key` as the organisation's command-signing public key, only when the
    /// recorded one is `expected` (None: none recorded yet); false when it was not.
    async fn set_org_command_key(
        &self,
        org_id: Uuid,
        key: &str,
        expected: Option<&str>,
    ) -> Result<bool>;

    /// Stores a new enrollment key without limits (a key that never expires and
    /// enrolls any number of hosts).
    async fn create_enrollment_key(
        &self,
        org_id: Uuid,
        name: &str,
        key_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<EnrollmentKey> {
        self.insert_enrollment_key(NewEnrollmentKey {
            org_id,
            name: name.to_owned(),
            key_hash: key_hash.to_owned(),
            expires_at: None,
            max_uses: None,
            now,
        })
        .await
    }
    /// Stores a new enrollment key's hash with its limits; `Invalid` for `max_uses`
    /// of 0, `Conflict` for a hash that exists.
    async fn insert_enrollment_key(&self, key: NewEnrollmentKey) -> Result<EnrollmentKey>;
    /// Finds the enrollment key with this hash, whatever its state (the caller decides).
    async fn enrollment_key_by_hash(&self, key_hash: &str) -> Result<Option<EnrollmentKey>>;
    /// One enrollment key of `org_id`.
    async fn enrollment_key(&self, org_id: Uuid, key_id: Uuid) -> Result<Option<EnrollmentKey>>;
    /// Every enrollment key of `org_id`, by creation time and id.
    async fn list_enrollment_keys(&self, org_id: Uuid) -> Result<Vec<EnrollmentKey>>;
    /// Revokes an enrollment key of `org_id` at `now` (a key revoked before keeps its
    /// first revocation time); false when there is none.
    async fn revoke_enrollment_key(
        &self,
        org_id: Uuid,
        key_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<bool>;
    /// Replaces a key of `org_id`, in one transaction: a new key (`new_key_hash`) with
    /// the old one's name and limits (the same maximum of uses, counted from 0, and
    /// the same lifetime counted from `now`), whose `rotated_from` is the old one; the
    /// old key's expiry becomes `old_expires_at` unless it expires earlier anyway.
    async fn rotate_enrollment_key(
        &self,
        org_id: Uuid,
        key_id: Uuid,
        new_key_hash: &str,
        old_expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<KeyRotation>;
}
