//! The SQL of [`IdentityStore`]: organisations and their settings (`orgs`), operator
//! API tokens (`api_tokens`) and enrollment keys (`enrollment_keys`, with expiry,
//! maximum and count of uses, revocation time and the key a rotation replaced). Only
//! hashes of secrets are stored; a duplicate name or hash is
//! [`StorageError::Conflict`]. A key's use is counted where a host enrolls
//! (`sql/hosts.rs`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use patchctl_proto::trust::OrgSettings;
use uuid::Uuid;

use super::{PostgresStore, SqliteStore, conflict, count, ms, opt_time, time, trunc, uuid};
use crate::error::{Result, StorageError};
use crate::identity::{ApiToken, EnrollmentKey, IdentityStore, KeyRotation, NewEnrollmentKey, Org};

/// The columns of `enrollment_keys` that make an [`EnrollmentKey`] (see [`KeyDb`]).
macro_rules! key_columns {
    () => {
        "id, org_id, name, created_at, expires_at, max_uses, uses, revoked_at, rotated_from"
    };
}

// ---------------------------------------------------------------------------------
// Rows as they come out of the database.

/// A row of `orgs`.
#[derive(sqlx::FromRow)]
struct OrgDb {
    id: String,
    name: String,
    created_at: i64,
}

impl OrgDb {
    fn decode(self) -> Result<Org> {
        Ok(Org {
            id: uuid(&self.id, "orgs.id")?,
            name: self.name,
            created_at: time(self.created_at, "orgs.created_at")?,
        })
    }
}

/// The columns of `api_tokens` that make an [`ApiToken`] (see [`TokenDb`]).
macro_rules! token_columns {
    () => {
        "id, org_id, name, created_at, user_id, read_only, expires_at, last_used_at, revoked_at"
    };
}
pub(super) use token_columns;

/// The [`token_columns!`] of a row of `api_tokens`.
#[derive(sqlx::FromRow)]
pub(super) struct TokenDb {
    id: String,
    org_id: String,
    name: String,
    created_at: i64,
    user_id: Option<String>,
    read_only: bool,
    expires_at: Option<i64>,
    last_used_at: Option<i64>,
    revoked_at: Option<i64>,
}

impl TokenDb {
    pub(super) fn decode(self) -> Result<ApiToken> {
        Ok(ApiToken {
            id: uuid(&self.id, "api_tokens.id")?,
            org_id: uuid(&self.org_id, "api_tokens.org_id")?,
            name: self.name,
            created_at: time(self.created_at, "api_tokens.created_at")?,
            user_id: self
                .user_id
                .as_deref()
                .map(|s| uuid(s, "api_tokens.user_id"))
                .transpose()?,
            read_only: self.read_only,
            expires_at: opt_time(self.expires_at, "api_tokens.expires_at")?,
            last_used_at: opt_time(self.last_used_at, "api_tokens.last_used_at")?,
            revoked_at: opt_time(self.revoked_at, "api_tokens.revoked_at")?,
        })
    }
}

/// The [`key_columns!`] of a row of `enrollment_keys`.
#[derive(sqlx::FromRow)]
struct KeyDb {
    id: String,
    org_id: String,
    name: String,
    created_at: i64,
    expires_at: Option<i64>,
    max_uses: Option<i64>,
    uses: i64,
    revoked_at: Option<i64>,
    rotated_from: Option<String>,
}

impl KeyDb {
    fn decode(self) -> Result<EnrollmentKey> {
        Ok(EnrollmentKey {
            id: uuid(&self.id, "enrollment_keys.id")?,
            org_id: uuid(&self.org_id, "enrollment_keys.org_id")?,
            name: self.name,
            created_at: time(self.created_at, "enrollment_keys.created_at")?,
            expires_at: opt_time(self.expires_at, "enrollment_keys.expires_at")?,
            max_uses: self
                .max_uses
                .map(|m| count(m, "enrollment_keys.max_uses"))
                .transpose()?,
            uses: count(self.uses, "enrollment_keys.uses")?,
            revoked_at: opt_time(self.revoked_at, "enrollment_keys.revoked_at")?,
            rotated_from: self
                .rotated_from
                .as_deref()
                .map(|s| uuid(s, "enrollment_keys.rotated_from"))
                .transpose()?,
        })
    }
}

/// A maximum of uses as stored: at least 1, and within the column's range.
fn max_uses_column(max_uses: Option<u64>) -> Result<Option<i64>> {
    max_uses
        .map(|m| match i64::try_from(m) {
            Ok(v) if v >= 1 => Ok(v),
            _ => Err(StorageError::Invalid(format!(
                "an enrollment key with a maximum of {m} uses: use 1 to {}",
                i64::MAX
            ))),
        })
        .transpose()
}

// ---------------------------------------------------------------------------------

/// Implements [`IdentityStore`] for `$store` (a struct with `writer` and `reader` pools
/// of database `$db`).
macro_rules! impl_identity {
    ($store:ident, $db:ty) => {
        #[async_trait]
        impl IdentityStore for $store {
            async fn create_org(&self, name: &str, now: DateTime<Utc>) -> Result<Org> {
                let id = Uuid::new_v4();
                let mut tx = self.writer.begin().await?;
                sqlx::query("INSERT INTO orgs (id, name, created_at) VALUES ($1, $2, $3)")
                    .bind(id.to_string())
                    .bind(name)
                    .bind(ms(now))
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| conflict(e, || format!("organisation {name:?}")))?;
                // Every organisation has the group of all its hosts (migration 0009).
                sqlx::query(
                    "INSERT INTO groups (id, org_id, name, description, selector_json, \
                     created_by, created_at, updated_at) \
                     VALUES ($1, $2, $3, 'Every host of the organisation', '{}', 'platform', $4, $4)",
                )
                .bind(Uuid::new_v4().to_string())
                .bind(id.to_string())
                .bind(patchctl_proto::policy::groups::ALL_GROUP)
                .bind(ms(now))
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(Org {
                    id,
                    name: name.to_owned(),
                    created_at: trunc(now),
                })
            }

            async fn org_by_name(&self, name: &str) -> Result<Option<Org>> {
                let row: Option<OrgDb> =
                    sqlx::query_as("SELECT id, name, created_at FROM orgs WHERE name = $1")
                        .bind(name)
                        .fetch_optional(&self.reader)
                        .await?;
                row.map(OrgDb::decode).transpose()
            }

            async fn list_orgs(&self) -> Result<Vec<Org>> {
                let rows: Vec<OrgDb> =
                    sqlx::query_as("SELECT id, name, created_at FROM orgs ORDER BY name")
                        .fetch_all(&self.reader)
                        .await?;
                rows.into_iter().map(OrgDb::decode).collect()
            }

            async fn create_api_token(
                &self,
                org_id: Uuid,
                name: &str,
                token_hash: &str,
                now: DateTime<Utc>,
            ) -> Result<ApiToken> {
                let id = Uuid::new_v4();
                sqlx::query(
                    "INSERT INTO api_tokens (id, org_id, name, token_hash, created_at) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(id.to_string())
                .bind(org_id.to_string())
                .bind(name)
                .bind(token_hash)
                .bind(ms(now))
                .execute(&self.writer)
                .await
                .map_err(|e| conflict(e, || "an API token with this hash".to_owned()))?;
                Ok(ApiToken {
                    id,
                    org_id,
                    name: name.to_owned(),
                    created_at: trunc(now),
                    user_id: None,
                    read_only: false,
                    expires_at: None,
                    last_used_at: None,
                    revoked_at: None,
                })
            }

            async fn api_token_by_hash(&self, token_hash: &str) -> Result<Option<ApiToken>> {
                let row: Option<TokenDb> = sqlx::query_as(concat!(
                    "SELECT ",
                    token_columns!(),
                    " FROM api_tokens WHERE token_hash = $1"
                ))
                .bind(token_hash)
                .fetch_optional(&self.reader)
                .await?;
                row.map(TokenDb::decode).transpose()
            }

            async fn org_settings(&self, org_id: Uuid) -> Result<OrgSettings> {
                let row: Option<(bool,)> =
                    sqlx::query_as("SELECT require_approval FROM orgs WHERE id = $1")
                        .bind(org_id.to_string())
                        .fetch_optional(&self.reader)
                        .await?;
                Ok(OrgSettings {
                    require_approval: row.is_some_and(|r| r.0),
                })
            }

            async fn set_org_settings(&self, org_id: Uuid, settings: &OrgSettings) -> Result<bool> {
                let done = sqlx::query("UPDATE orgs SET require_approval = $2 WHERE id = $1")
                    .bind(org_id.to_string())
                    .bind(settings.require_approval)
                    .execute(&self.writer)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn org_command_key(&self, org_id: Uuid) -> Result<Option<String>> {
                let row: Option<(Option<String>,)> =
                    sqlx::query_as("SELECT command_key FROM orgs WHERE id = $1")
                        .bind(org_id.to_string())
                        .fetch_optional(&self.reader)
                        .await?;
                Ok(row.and_then(|r| r.0))
            }

            async fn set_org_command_key(
                &self,
                org_id: Uuid,
                key: &str,
                expected: Option<&str>,
            ) -> Result<bool> {
                // One conditional statement: two nodes recording a key at once cannot
                // both win.
                let done = match expected {
                    None => sqlx::query(
                        "UPDATE orgs SET command_key = $2 WHERE id = $1 AND command_key IS NULL",
                    )
                    .bind(org_id.to_string())
                    .bind(key)
                    .execute(&self.writer)
                    .await?,
                    Some(old) => sqlx::query(
                        "UPDATE orgs SET command_key = $2 WHERE id = $1 AND command_key = $3",
                    )
                    .bind(org_id.to_string())
                    .bind(key)
                    .bind(old)
                    .execute(&self.writer)
                    .await?,
                };
                Ok(done.rows_affected() > 0)
            }

            async fn insert_enrollment_key(&self, key: NewEnrollmentKey) -> Result<EnrollmentKey> {
                let max_uses = max_uses_column(key.max_uses)?;
                let id = Uuid::new_v4();
                sqlx::query(
                    "INSERT INTO enrollment_keys (id, org_id, name, key_hash, revoked, created_at, \
                     expires_at, max_uses, uses) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0)",
                )
                .bind(id.to_string())
                .bind(key.org_id.to_string())
                .bind(&key.name)
                .bind(&key.key_hash)
                .bind(false)
                .bind(ms(key.now))
                .bind(key.expires_at.map(ms))
                .bind(max_uses)
                .execute(&self.writer)
                .await
                .map_err(|e| conflict(e, || "an enrollment key with this hash".to_owned()))?;
                Ok(EnrollmentKey {
                    id,
                    org_id: key.org_id,
                    name: key.name,
                    created_at: trunc(key.now),
                    expires_at: key.expires_at.map(trunc),
                    max_uses: key.max_uses,
                    uses: 0,
                    revoked_at: None,
                    rotated_from: None,
                })
            }

            async fn enrollment_key_by_hash(
                &self,
                key_hash: &str,
            ) -> Result<Option<EnrollmentKey>> {
                let row: Option<KeyDb> = sqlx::query_as(concat!(
                    "SELECT ",
                    key_columns!(),
                    " FROM enrollment_keys WHERE key_hash = $1"
                ))
                .bind(key_hash)
                .fetch_optional(&self.reader)
                .await?;
                row.map(KeyDb::decode).transpose()
            }

            async fn enrollment_key(
                &self,
                org_id: Uuid,
                key_id: Uuid,
            ) -> Result<Option<EnrollmentKey>> {
                let row: Option<KeyDb> = sqlx::query_as(concat!(
                    "SELECT ",
                    key_columns!(),
                    " FROM enrollment_keys WHERE id = $1 AND org_id = $2"
                ))
                .bind(key_id.to_string())
                .bind(org_id.to_string())
                .fetch_optional(&self.reader)
                .await?;
                row.map(KeyDb::decode).transpose()
            }

            async fn list_enrollment_keys(&self, org_id: Uuid) -> Result<Vec<EnrollmentKey>> {
                let rows: Vec<KeyDb> = sqlx::query_as(concat!(
                    "SELECT ",
                    key_columns!(),
                    " FROM enrollment_keys WHERE org_id = $1 ORDER BY created_at, id"
                ))
                .bind(org_id.to_string())
                .fetch_all(&self.reader)
                .await?;
                rows.into_iter().map(KeyDb::decode).collect()
            }

            async fn revoke_enrollment_key(
                &self,
                org_id: Uuid,
                key_id: Uuid,
                now: DateTime<Utc>,
            ) -> Result<bool> {
                let done = sqlx::query(
                    "UPDATE enrollment_keys SET revoked = $3, \
                     revoked_at = COALESCE(revoked_at, $4) WHERE id = $1 AND org_id = $2",
                )
                .bind(key_id.to_string())
                .bind(org_id.to_string())
                .bind(true)
                .bind(ms(now))
                .execute(&self.writer)
                .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn rotate_enrollment_key(
                &self,
                org_id: Uuid,
                key_id: Uuid,
                new_key_hash: &str,
                old_expires_at: DateTime<Utc>,
                now: DateTime<Utc>,
            ) -> Result<KeyRotation> {
                const SELECT: &str = concat!(
                    "SELECT ",
                    key_columns!(),
                    " FROM enrollment_keys WHERE id = $1 AND org_id = $2"
                );
                let mut tx = self.writer.begin().await?;
                let old: Option<KeyDb> = sqlx::query_as(SELECT)
                    .bind(key_id.to_string())
                    .bind(org_id.to_string())
                    .fetch_optional(&mut *tx)
                    .await?;
                let Some(old) = old.map(KeyDb::decode).transpose()? else {
                    return Ok(KeyRotation::NotFound);
                };
                if old.revoked_at.is_some() {
                    return Ok(KeyRotation::Revoked(old));
                }
                // The same lifetime, counted from now.
                let expires_at = old.expires_at.map(|e| now + (e - old.created_at));
                let new = EnrollmentKey {
                    id: Uuid::new_v4(),
                    org_id,
                    name: old.name.clone(),
                    created_at: trunc(now),
                    expires_at: expires_at.map(trunc),
                    max_uses: old.max_uses,
                    uses: 0,
                    revoked_at: None,
                    rotated_from: Some(old.id),
                };
                sqlx::query(
                    "INSERT INTO enrollment_keys (id, org_id, name, key_hash, revoked, created_at, \
                     expires_at, max_uses, uses, rotated_from) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $9)",
                )
                .bind(new.id.to_string())
                .bind(org_id.to_string())
                .bind(&new.name)
                .bind(new_key_hash)
                .bind(false)
                .bind(ms(now))
                .bind(expires_at.map(ms))
                .bind(max_uses_column(new.max_uses)?)
                .bind(old.id.to_string())
                .execute(&mut *tx)
                .await
                .map_err(|e| conflict(e, || "an enrollment key with this hash".to_owned()))?;
                sqlx::query(
                    "UPDATE enrollment_keys SET expires_at = $2 \
                     WHERE id = $1 AND (expires_at IS NULL OR expires_at > $2)",
                )
                .bind(old.id.to_string())
                .bind(ms(old_expires_at))
                .execute(&mut *tx)
                .await?;
                let old: KeyDb = sqlx::query_as(SELECT)
                    .bind(key_id.to_string())
                    .bind(org_id.to_string())
                    .fetch_one(&mut *tx)
                    .await?;
                let old = old.decode()?;
                tx.commit().await?;
                Ok(KeyRotation::Rotated { old, new })
            }
        }
    };
}

impl_identity!(SqliteStore, sqlx::Sqlite);
impl_identity!(PostgresStore, sqlx::Postgres);
