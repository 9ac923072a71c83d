//! The SQL of [`OperatorStore`]: users (`users`), dashboard sessions (`sessions`) and
//! users' API tokens (`api_tokens`, whose columns `sql/identity.rs` decodes). A
//! duplicate username or hash is [`StorageError::Conflict`].

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use patchctl_proto::access::Role;
use uuid::Uuid;

use super::identity::{TokenDb, token_columns};
use super::{
    PostgresStore, SqliteStore, conflict, corrupt, count, ms, opt_time, time, trunc, uuid,
};
use crate::error::Result;
use crate::identity::ApiToken;
use crate::operators::{
    NewApiToken, NewSession, NewUser, OperatorStore, SessionRow, TokenAuth, User,
};

/// The columns of `users` that make a [`User`] (see [`UserDb`]).
macro_rules! user_columns {
    () => {
        "id, org_id, username, role, created_at, disabled_at"
    };
}

/// The guard of a change that takes user `$2` of organisation `$1` out of the active
/// owners: it is not one, or another active owner stays.
macro_rules! keeps_an_owner {
    () => {
        "(role <> 'owner' OR disabled_at IS NOT NULL OR \
         (SELECT COUNT(*) FROM users o WHERE o.org_id = $1 AND o.role = 'owner' \
          AND o.disabled_at IS NULL AND o.id <> $2) > 0)"
    };
}

/// How long a token's last use is kept unwritten.
const TOUCH_EVERY_MS: i64 = 60_000;

/// The [`user_columns!`] of a row of `users`.
#[derive(sqlx::FromRow)]
struct UserDb {
    id: String,
    org_id: String,
    username: String,
    role: String,
    created_at: i64,
    disabled_at: Option<i64>,
}

fn role(s: &str, column: &str) -> Result<Role> {
    s.parse().map_err(|e| corrupt(column, e))
}

impl UserDb {
    fn decode(self) -> Result<User> {
        Ok(User {
            id: uuid(&self.id, "users.id")?,
            org_id: uuid(&self.org_id, "users.org_id")?,
            username: self.username,
            role: role(&self.role, "users.role")?,
            created_at: time(self.created_at, "users.created_at")?,
            disabled_at: opt_time(self.disabled_at, "users.disabled_at")?,
        })
    }
}

/// A row of `sessions` joined with its user.
#[derive(sqlx::FromRow)]
struct SessionDb {
    id: String,
    user_id: String,
    org_id: String,
    username: String,
    role: String,
    created_at: i64,
    last_seen_at: i64,
    ended_at: Option<i64>,
    disabled_at: Option<i64>,
}

impl SessionDb {
    fn decode(self) -> Result<SessionRow> {
        Ok(SessionRow {
            id: uuid(&self.id, "sessions.id")?,
            user_id: uuid(&self.user_id, "sessions.user_id")?,
            org_id: uuid(&self.org_id, "sessions.org_id")?,
            username: self.username,
            role: role(&self.role, "users.role")?,
            created_at: time(self.created_at, "sessions.created_at")?,
            last_seen_at: time(self.last_seen_at, "sessions.last_seen_at")?,
            ended_at: opt_time(self.ended_at, "sessions.ended_at")?,
            user_disabled: self.disabled_at.is_some(),
        })
    }
}

/// Implements [`OperatorStore`] for `$store` (a struct with `writer` and `reader` pools
/// of database `$db`).
macro_rules! impl_operators {
    ($store:ident, $db:ty) => {
        #[async_trait]
        impl OperatorStore for $store {
            async fn create_user(&self, u: NewUser) -> Result<User> {
                let id = Uuid::new_v4();
                sqlx::query(
                    "INSERT INTO users (id, org_id, username, password_hash, role, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(id.to_string())
                .bind(u.org_id.to_string())
                .bind(&u.username)
                .bind(&u.password_hash)
                .bind(u.role.as_str())
                .bind(ms(u.now))
                .execute(&self.writer)
                .await
                .map_err(|e| conflict(e, || format!("user {:?}", u.username)))?;
                Ok(User {
                    id,
                    org_id: u.org_id,
                    username: u.username,
                    role: u.role,
                    created_at: trunc(u.now),
                    disabled_at: None,
                })
            }

            async fn user_login(&self, username: &str) -> Result<Option<(User, String)>> {
                #[derive(sqlx::FromRow)]
                struct Row {
                    #[sqlx(flatten)]
                    user: UserDb,
                    password_hash: String,
                }
                let row: Option<Row> = sqlx::query_as(concat!(
                    "SELECT ",
                    user_columns!(),
                    ", password_hash FROM users WHERE username = $1"
                ))
                .bind(username)
                .fetch_optional(&self.reader)
                .await?;
                row.map(|r| Ok((r.user.decode()?, r.password_hash)))
                    .transpose()
            }

            async fn user(&self, org_id: Uuid, id: Uuid) -> Result<Option<User>> {
                let row: Option<UserDb> = sqlx::query_as(concat!(
                    "SELECT ",
                    user_columns!(),
                    " FROM users WHERE org_id = $1 AND id = $2"
                ))
                .bind(org_id.to_string())
                .bind(id.to_string())
                .fetch_optional(&self.reader)
                .await?;
                row.map(UserDb::decode).transpose()
            }

            async fn user_by_name(&self, org_id: Uuid, username: &str) -> Result<Option<User>> {
                let row: Option<UserDb> = sqlx::query_as(concat!(
                    "SELECT ",
                    user_columns!(),
                    " FROM users WHERE org_id = $1 AND username = $2"
                ))
                .bind(org_id.to_string())
                .bind(username)
                .fetch_optional(&self.reader)
                .await?;
                row.map(UserDb::decode).transpose()
            }

            async fn list_users(&self, org_id: Uuid) -> Result<Vec<User>> {
                let rows: Vec<UserDb> = sqlx::query_as(concat!(
                    "SELECT ",
                    user_columns!(),
                    " FROM users WHERE org_id = $1 ORDER BY username"
                ))
                .bind(org_id.to_string())
                .fetch_all(&self.reader)
                .await?;
                rows.into_iter().map(UserDb::decode).collect()
            }

            async fn set_user_role(&self, org_id: Uuid, id: Uuid, role: Role) -> Result<bool> {
                let mut tx = self.writer.begin().await?;
                // Serialises owner changes of the organisation (a row lock on
                // PostgreSQL, the write lock on SQLite), so that two demotions racing
                // cannot both pass the guard below.
                sqlx::query("UPDATE orgs SET name = name WHERE id = $1")
                    .bind(org_id.to_string())
                    .execute(&mut *tx)
                    .await?;
                let done = sqlx::query(concat!(
                    "UPDATE users SET role = $3 WHERE org_id = $1 AND id = $2 AND ($3 = 'owner' OR ",
                    keeps_an_owner!(),
                    ")"
                ))
                .bind(org_id.to_string())
                .bind(id.to_string())
                .bind(role.as_str())
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(done.rows_affected() > 0)
            }

            async fn set_user_password(
                &self,
                org_id: Uuid,
                id: Uuid,
                hash: &str,
                now: DateTime<Utc>,
            ) -> Result<bool> {
                let mut tx = self.writer.begin().await?;
                let done = sqlx::query(
                    "UPDATE users SET password_hash = $3 WHERE org_id = $1 AND id = $2",
                )
                .bind(org_id.to_string())
                .bind(id.to_string())
                .bind(hash)
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "UPDATE sessions SET ended_at = $2 WHERE user_id = $1 AND ended_at IS NULL",
                )
                .bind(id.to_string())
                .bind(ms(now))
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(done.rows_affected() > 0)
            }

            async fn disable_user(&self, org_id: Uuid, id: Uuid, now: DateTime<Utc>) -> Result<bool> {
                let mut tx = self.writer.begin().await?;
                sqlx::query("UPDATE orgs SET name = name WHERE id = $1")
                    .bind(org_id.to_string())
                    .execute(&mut *tx)
                    .await?;
                let done = sqlx::query(concat!(
                    "UPDATE users SET disabled_at = COALESCE(disabled_at, $3) \
                     WHERE org_id = $1 AND id = $2 AND ",
                    keeps_an_owner!()
                ))
                .bind(org_id.to_string())
                .bind(id.to_string())
                .bind(ms(now))
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() == 0 {
                    return Ok(false);
                }
                sqlx::query(
                    "UPDATE sessions SET ended_at = $2 WHERE user_id = $1 AND ended_at IS NULL",
                )
                .bind(id.to_string())
                .bind(ms(now))
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn count_active_owners(&self, org_id: Uuid) -> Result<u64> {
                let (n,): (i64,) = sqlx::query_as(
                    "SELECT COUNT(*) FROM users \
                     WHERE org_id = $1 AND role = 'owner' AND disabled_at IS NULL",
                )
                .bind(org_id.to_string())
                .fetch_one(&self.reader)
                .await?;
                count(n, "users (owners)")
            }

            async fn create_session(&self, s: NewSession) -> Result<()> {
                sqlx::query(
                    "INSERT INTO sessions (id, secret_hash, user_id, org_id, created_at, \
                     last_seen_at) VALUES ($1, $2, $3, $4, $5, $5)",
                )
                .bind(s.id.to_string())
                .bind(&s.secret_hash)
                .bind(s.user_id.to_string())
                .bind(s.org_id.to_string())
                .bind(ms(s.now))
                .execute(&self.writer)
                .await
                .map_err(|e| conflict(e, || "a session with this secret".to_owned()))?;
                Ok(())
            }

            async fn session_by_hash(&self, secret_hash: &str) -> Result<Option<SessionRow>> {
                let row: Option<SessionDb> = sqlx::query_as(
                    "SELECT s.id, s.user_id, s.org_id, u.username, u.role, s.created_at, \
                     s.last_seen_at, s.ended_at, u.disabled_at \
                     FROM sessions s JOIN users u ON u.id = s.user_id \
                     WHERE s.secret_hash = $1",
                )
                .bind(secret_hash)
                .fetch_optional(&self.reader)
                .await?;
                row.map(SessionDb::decode).transpose()
            }

            async fn touch_session(&self, id: Uuid, now: DateTime<Utc>) -> Result<()> {
                sqlx::query(
                    "UPDATE sessions SET last_seen_at = $2 \
                     WHERE id = $1 AND ended_at IS NULL AND last_seen_at < $2",
                )
                .bind(id.to_string())
                .bind(ms(now))
                .execute(&self.writer)
                .await?;
                Ok(())
            }

            async fn end_session(&self, id: Uuid, now: DateTime<Utc>) -> Result<bool> {
                let done = sqlx::query(
                    "UPDATE sessions SET ended_at = $2 WHERE id = $1 AND ended_at IS NULL",
                )
                .bind(id.to_string())
                .bind(ms(now))
                .execute(&self.writer)
                .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn insert_api_token(&self, t: NewApiToken) -> Result<ApiToken> {
                let id = Uuid::new_v4();
                sqlx::query(
                    "INSERT INTO api_tokens (id, org_id, name, token_hash, created_at, user_id, \
                     read_only, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(id.to_string())
                .bind(t.org_id.to_string())
                .bind(&t.name)
                .bind(&t.token_hash)
                .bind(ms(t.now))
                .bind(t.user_id.map(|u| u.to_string()))
                .bind(t.read_only)
                .bind(t.expires_at.map(ms))
                .execute(&self.writer)
                .await
                .map_err(|e| conflict(e, || "an API token with this hash".to_owned()))?;
                Ok(ApiToken {
                    id,
                    org_id: t.org_id,
                    name: t.name,
                    created_at: trunc(t.now),
                    user_id: t.user_id,
                    read_only: t.read_only,
                    expires_at: t.expires_at.map(trunc),
                    last_used_at: None,
                    revoked_at: None,
                })
            }

            async fn api_token_auth(&self, token_hash: &str) -> Result<Option<TokenAuth>> {
                let row: Option<TokenDb> = sqlx::query_as(concat!(
                    "SELECT ",
                    token_columns!(),
                    " FROM api_tokens WHERE token_hash = $1"
                ))
                .bind(token_hash)
                .fetch_optional(&self.reader)
                .await?;
                let Some(token) = row.map(TokenDb::decode).transpose()? else {
                    return Ok(None);
                };
                let user = match token.user_id {
                    Some(u) => self.user(token.org_id, u).await?,
                    None => None,
                };
                Ok(Some(TokenAuth { token, user }))
            }

            async fn touch_api_token(&self, id: Uuid, now: DateTime<Utc>) -> Result<()> {
                sqlx::query(
                    "UPDATE api_tokens SET last_used_at = $2 \
                     WHERE id = $1 AND (last_used_at IS NULL OR last_used_at <= $3)",
                )
                .bind(id.to_string())
                .bind(ms(now))
                .bind(ms(now) - TOUCH_EVERY_MS)
                .execute(&self.writer)
                .await?;
                Ok(())
            }

            async fn list_api_tokens(
                &self,
                org_id: Uuid,
                user_id: Option<Uuid>,
            ) -> Result<Vec<ApiToken>> {
                let rows: Vec<TokenDb> = sqlx::query_as(concat!(
                    "SELECT ",
                    token_columns!(),
                    " FROM api_tokens WHERE org_id = $1 AND (CAST($2 AS TEXT) IS NULL OR user_id = $2) \
                     ORDER BY created_at, id"
                ))
                .bind(org_id.to_string())
                .bind(user_id.map(|u| u.to_string()))
                .fetch_all(&self.reader)
                .await?;
                rows.into_iter().map(TokenDb::decode).collect()
            }

            async fn api_token(&self, org_id: Uuid, id: Uuid) -> Result<Option<ApiToken>> {
                let row: Option<TokenDb> = sqlx::query_as(concat!(
                    "SELECT ",
                    token_columns!(),
                    " FROM api_tokens WHERE org_id = $1 AND id = $2"
                ))
                .bind(org_id.to_string())
                .bind(id.to_string())
                .fetch_optional(&self.reader)
                .await?;
                row.map(TokenDb::decode).transpose()
            }

            async fn revoke_api_token(
                &self,
                org_id: Uuid,
                id: Uuid,
                now: DateTime<Utc>,
            ) -> Result<bool> {
                let done = sqlx::query(
                    "UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, $3) \
                     WHERE org_id = $1 AND id = $2",
                )
                .bind(org_id.to_string())
                .bind(id.to_string())
                .bind(ms(now))
                .execute(&self.writer)
                .await?;
                Ok(done.rows_affected() > 0)
            }
        }
    };
}

impl_operators!(SqliteStore, sqlx::Sqlite);
impl_operators!(PostgresStore, sqlx::Postgres);
