//! The SQL of [`ComplianceStore`]: `finding_first_seen` (written in multi-row
//! `INSERT ... ON CONFLICT DO NOTHING` statements, so a stored time is never moved),
//! `exceptions` (scope as `host_id` / `group_id`, both NULL for every host; revoking is
//! a conditional `UPDATE ... RETURNING`) and `deadline_policies` (one row per
//! organisation, upserted).

use async_trait::async_trait;
use patchctl_policy::deadline::DeadlinePolicy;
use uuid::Uuid;

use super::{PostgresStore, SqliteStore, count, uuid};
use crate::compliance::{
    ComplianceStore, DeadlinePolicyRow, ExceptionRow, ExceptionScope, FirstSeen, NewException,
    RevokeOutcome,
};
use crate::error::Result;

/// First-seen rows per multi-row statement (5 bound values each; SQLite allows 32,766).
const SEEN_CHUNK: usize = 2_000;

/// The columns of `exceptions` that make an [`ExceptionRow`] (see [`ExceptionDb`]).
macro_rules! exception_columns {
    () => {
        "id, org_id, vuln_id, host_id, group_id, reason, owner, expires_at, created_by, \
         created_at, revoked_at, revoked_by"
    };
}

#[derive(sqlx::FromRow)]
struct SeenDb {
    org_id: String,
    host_id: String,
    vuln_id: String,
    package: String,
    first_seen_at: i64,
}

impl SeenDb {
    fn decode(self) -> Result<FirstSeen> {
        Ok(FirstSeen {
            org_id: uuid(&self.org_id, "finding_first_seen.org_id")?,
            host_id: uuid(&self.host_id, "finding_first_seen.host_id")?,
            vuln_id: self.vuln_id,
            package: self.package,
            first_seen_at: self.first_seen_at,
        })
    }
}

#[derive(sqlx::FromRow)]
struct ExceptionDb {
    id: String,
    org_id: String,
    vuln_id: String,
    host_id: Option<String>,
    group_id: Option<String>,
    reason: String,
    owner: String,
    expires_at: i64,
    created_by: String,
    created_at: i64,
    revoked_at: Option<i64>,
    revoked_by: Option<String>,
}

impl ExceptionDb {
    fn decode(self) -> Result<ExceptionRow> {
        let scope = match (&self.host_id, &self.group_id) {
            (Some(h), _) => ExceptionScope::Host(uuid(h, "exceptions.host_id")?),
            (None, Some(g)) => ExceptionScope::Group(uuid(g, "exceptions.group_id")?),
            (None, None) => ExceptionScope::All,
        };
        Ok(ExceptionRow {
            id: uuid(&self.id, "exceptions.id")?,
            new: NewException {
                org_id: uuid(&self.org_id, "exceptions.org_id")?,
                vuln_id: self.vuln_id,
                scope,
                reason: self.reason,
                owner: self.owner,
                expires_at: self.expires_at,
                created_by: self.created_by,
                created_at: self.created_at,
            },
            revoked_at: self.revoked_at,
            revoked_by: self.revoked_by,
        })
    }
}

#[derive(sqlx::FromRow)]
struct PolicyDb {
    critical_days: i64,
    high_days: i64,
    medium_days: i64,
    low_days: i64,
    kev_days: i64,
    due_soon_days: i64,
    updated_by: String,
    updated_at: i64,
}

impl PolicyDb {
    fn decode(self) -> Result<DeadlinePolicyRow> {
        let c = "deadline_policies";
        Ok(DeadlinePolicyRow {
            policy: DeadlinePolicy {
                critical_days: count(self.critical_days, c)?,
                high_days: count(self.high_days, c)?,
                medium_days: count(self.medium_days, c)?,
                low_days: count(self.low_days, c)?,
                kev_days: count(self.kev_days, c)?,
                due_soon_days: count(self.due_soon_days, c)?,
            },
            updated_by: self.updated_by,
            updated_at: self.updated_at,
        })
    }
}

fn scope_columns(s: ExceptionScope) -> (Option<String>, Option<String>) {
    match s {
        ExceptionScope::Host(h) => (Some(h.to_string()), None),
        ExceptionScope::Group(g) => (None, Some(g.to_string())),
        ExceptionScope::All => (None, None),
    }
}

/// Implements [`ComplianceStore`] for `$store` (a struct with `writer` and `reader`
/// pools of database `$db`).
macro_rules! impl_compliance {
    ($store:ident, $db:ty) => {
        #[async_trait]
        impl ComplianceStore for $store {
            async fn record_first_seen(&self, rows: &[FirstSeen]) -> Result<u64> {
                if rows.is_empty() {
                    return Ok(0);
                }
                let mut tx = self.writer.begin().await?;
                let mut added = 0;
                for chunk in rows.chunks(SEEN_CHUNK) {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO finding_first_seen \
                         (org_id, host_id, vuln_id, package, first_seen_at) ",
                    );
                    qb.push_values(chunk, |mut b, r| {
                        b.push_bind(r.org_id.to_string())
                            .push_bind(r.host_id.to_string())
                            .push_bind(r.vuln_id.as_str())
                            .push_bind(r.package.as_str())
                            .push_bind(r.first_seen_at);
                    });
                    qb.push(" ON CONFLICT (org_id, host_id, vuln_id, package) DO NOTHING");
                    added += qb.build().execute(&mut *tx).await?.rows_affected();
                }
                tx.commit().await?;
                Ok(added)
            }

            async fn all_first_seen(&self) -> Result<Vec<FirstSeen>> {
                let rows: Vec<SeenDb> = sqlx::query_as(
                    "SELECT org_id, host_id, vuln_id, package, first_seen_at \
                     FROM finding_first_seen",
                )
                .fetch_all(&self.reader)
                .await?;
                rows.into_iter().map(SeenDb::decode).collect()
            }

            async fn host_first_seen(&self, org: Uuid, host: Uuid) -> Result<Vec<FirstSeen>> {
                let rows: Vec<SeenDb> = sqlx::query_as(
                    "SELECT org_id, host_id, vuln_id, package, first_seen_at \
                     FROM finding_first_seen WHERE org_id = $1 AND host_id = $2 \
                     ORDER BY vuln_id, package",
                )
                .bind(org.to_string())
                .bind(host.to_string())
                .fetch_all(&self.reader)
                .await?;
                rows.into_iter().map(SeenDb::decode).collect()
            }

            async fn create_exception(&self, e: &NewException) -> Result<ExceptionRow> {
                let id = Uuid::new_v4();
                let (host, group) = scope_columns(e.scope);
                sqlx::query(
                    "INSERT INTO exceptions (id, org_id, vuln_id, host_id, group_id, reason, \
                     owner, expires_at, created_by, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                )
                .bind(id.to_string())
                .bind(e.org_id.to_string())
                .bind(&e.vuln_id)
                .bind(host)
                .bind(group)
                .bind(&e.reason)
                .bind(&e.owner)
                .bind(e.expires_at)
                .bind(&e.created_by)
                .bind(e.created_at)
                .execute(&self.writer)
                .await?;
                Ok(ExceptionRow {
                    id,
                    new: e.clone(),
                    revoked_at: None,
                    revoked_by: None,
                })
            }

            async fn exception(&self, org: Uuid, id: Uuid) -> Result<Option<ExceptionRow>> {
                let row: Option<ExceptionDb> = sqlx::query_as(concat!(
                    "SELECT ",
                    exception_columns!(),
                    " FROM exceptions WHERE org_id = $1 AND id = $2"
                ))
                .bind(org.to_string())
                .bind(id.to_string())
                .fetch_optional(&self.reader)
                .await?;
                row.map(ExceptionDb::decode).transpose()
            }

            async fn list_exceptions(
                &self,
                org: Uuid,
                valid_at: Option<i64>,
            ) -> Result<Vec<ExceptionRow>> {
                let rows: Vec<ExceptionDb> = match valid_at {
                    None => {
                        sqlx::query_as(concat!(
                            "SELECT ",
                            exception_columns!(),
                            " FROM exceptions WHERE org_id = $1 \
                             ORDER BY created_at DESC, id"
                        ))
                        .bind(org.to_string())
                        .fetch_all(&self.reader)
                        .await?
                    }
                    Some(now) => {
                        sqlx::query_as(concat!(
                            "SELECT ",
                            exception_columns!(),
                            " FROM exceptions WHERE org_id = $1 AND expires_at > $2 \
                             AND (revoked_at IS NULL OR revoked_at > $2) \
                             ORDER BY created_at DESC, id"
                        ))
                        .bind(org.to_string())
                        .bind(now)
                        .fetch_all(&self.reader)
                        .await?
                    }
                };
                rows.into_iter().map(ExceptionDb::decode).collect()
            }

            async fn revoke_exception(
                &self,
                org: Uuid,
                id: Uuid,
                by: &str,
                now: i64,
            ) -> Result<RevokeOutcome> {
                let row: Option<ExceptionDb> = sqlx::query_as(concat!(
                    "UPDATE exceptions SET revoked_at = $3, revoked_by = $4 \
                     WHERE org_id = $1 AND id = $2 AND revoked_at IS NULL RETURNING ",
                    exception_columns!()
                ))
                .bind(org.to_string())
                .bind(id.to_string())
                .bind(now)
                .bind(by)
                .fetch_optional(&self.writer)
                .await?;
                if let Some(row) = row {
                    return Ok(RevokeOutcome::Revoked(row.decode()?));
                }
                Ok(match self.exception(org, id).await? {
                    Some(row) => RevokeOutcome::AlreadyRevoked(row),
                    None => RevokeOutcome::NotFound,
                })
            }

            async fn deadline_policy(&self, org: Uuid) -> Result<Option<DeadlinePolicyRow>> {
                let row: Option<PolicyDb> = sqlx::query_as(
                    "SELECT critical_days, high_days, medium_days, low_days, kev_days, \
                     due_soon_days, updated_by, updated_at \
                     FROM deadline_policies WHERE org_id = $1",
                )
                .bind(org.to_string())
                .fetch_optional(&self.reader)
                .await?;
                row.map(PolicyDb::decode).transpose()
            }

            async fn put_deadline_policy(&self, org: Uuid, row: &DeadlinePolicyRow) -> Result<()> {
                let p = &row.policy;
                sqlx::query(
                    "INSERT INTO deadline_policies (org_id, critical_days, high_days, \
                     medium_days, low_days, kev_days, due_soon_days, updated_by, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                     ON CONFLICT (org_id) DO UPDATE SET critical_days = $2, high_days = $3, \
                     medium_days = $4, low_days = $5, kev_days = $6, due_soon_days = $7, \
                     updated_by = $8, updated_at = $9",
                )
                .bind(org.to_string())
                .bind(i64::from(p.critical_days))
                .bind(i64::from(p.high_days))
                .bind(i64::from(p.medium_days))
                .bind(i64::from(p.low_days))
                .bind(i64::from(p.kev_days))
                .bind(i64::from(p.due_soon_days))
                .bind(&row.updated_by)
                .bind(row.updated_at)
                .execute(&self.writer)
                .await?;
                Ok(())
            }
        }
    };
}

impl_compliance!(SqliteStore, sqlx::Sqlite);
impl_compliance!(PostgresStore, sqlx::Postgres);
