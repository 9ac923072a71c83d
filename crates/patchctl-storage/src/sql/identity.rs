//! The SQL of [`IdentityStore`]: organisations (`orgs`), operator API tokens
//! (`api_tokens`) and enrollment keys (`enrollment_keys`). Only hashes of secrets are
//! stored; a duplicate name or hash is [`StorageError::Conflict`].
//!
//! [`StorageError::Conflict`]: crate::StorageError::Conflict

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{PostgresStore, SqliteStore, conflict, ms, time, trunc, uuid};
use crate::error::Result;
use crate::identity::{ApiToken, EnrollmentKey, IdentityStore, Org};

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

/// A row of `api_tokens`.
#[derive(sqlx::FromRow)]
struct TokenDb {
    id: String,
    org_id: String,
    name: String,
    created_at: i64,
}

impl TokenDb {
    fn decode(self) -> Result<ApiToken> {
        Ok(ApiToken {
            id: uuid(&self.id, "api_tokens.id")?,
            org_id: uuid(&self.org_id, "api_tokens.org_id")?,
            name: self.name,
            created_at: time(self.created_at, "api_tokens.created_at")?,
        })
    }
}

/// A row of `enrollment_keys`.
#[derive(sqlx::FromRow)]
struct KeyDb {
    id: String,
    org_id: String,
    name: String,
    revoked: bool,
    created_at: i64,
}

impl KeyDb {
    fn decode(self) -> Result<EnrollmentKey> {
        Ok(EnrollmentKey {
            id: uuid(&self.id, "enrollment_keys.id")?,
            org_id: uuid(&self.org_id, "enrollment_keys.org_id")?,
            name: self.name,
            revoked: self.revoked,
            created_at: time(self.created_at, "enrollment_keys.created_at")?,
        })
    }
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
                sqlx::query("INSERT INTO orgs (id, name, created_at) VALUES ($1, $2, $3)")
                    .bind(id.to_string())
                    .bind(name)
                    .bind(ms(now))
                    .execute(&self.writer)
                    .await
                    .map_err(|e| conflict(e, || format!("organisation {name:?}")))?;
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
                })
            }

            async fn api_token_by_hash(&self, token_hash: &str) -> Result<Option<ApiToken>> {
                let row: Option<TokenDb> = sqlx::query_as(
                    "SELECT id, org_id, name, created_at FROM api_tokens WHERE token_hash = $1",
                )
                .bind(token_hash)
                .fetch_optional(&self.reader)
                .await?;
                row.map(TokenDb::decode).transpose()
            }

            async fn create_enrollment_key(
                &self,
                org_id: Uuid,
                name: &str,
                key_hash: &str,
                now: DateTime<Utc>,
            ) -> Result<EnrollmentKey> {
                let id = Uuid::new_v4();
                sqlx::query(
                    "INSERT INTO enrollment_keys (id, org_id, name, key_hash, revoked, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(id.to_string())
                .bind(org_id.to_string())
                .bind(name)
                .bind(key_hash)
                .bind(false)
                .bind(ms(now))
                .execute(&self.writer)
                .await
                .map_err(|e| conflict(e, || "an enrollment key with this hash".to_owned()))?;
                Ok(EnrollmentKey {
                    id,
                    org_id,
                    name: name.to_owned(),
                    revoked: false,
                    created_at: trunc(now),
                })
            }

            async fn enrollment_key_by_hash(
                &self,
                key_hash: &str,
            ) -> Result<Option<EnrollmentKey>> {
                let row: Option<KeyDb> = sqlx::query_as(
                    "SELECT id, org_id, name, revoked, created_at FROM enrollment_keys \
                     WHERE key_hash = $1",
                )
                .bind(key_hash)
                .fetch_optional(&self.reader)
                .await?;
                row.map(KeyDb::decode).transpose()
            }

            async fn revoke_enrollment_key(&self, org_id: Uuid, key_id: Uuid) -> Result<bool> {
                let done = sqlx::query(
                    "UPDATE enrollment_keys SET revoked = $3 WHERE id = $1 AND org_id = $2",
                )
                .bind(key_id.to_string())
                .bind(org_id.to_string())
                .bind(true)
                .execute(&self.writer)
                .await?;
                Ok(done.rows_affected() > 0)
            }
        }
    };
}

impl_identity!(SqliteStore, sqlx::Sqlite);
impl_identity!(PostgresStore, sqlx::Postgres);
