//! The SQL of [`AuditStore`]: `audit_log`, append-only (the triggers of migration 0007
//! refuse `UPDATE` and `DELETE`). Filters are bound parameters; text filters are
//! `LIKE` patterns with their wildcards escaped.

use async_trait::async_trait;
use uuid::Uuid;

use super::{PostgresStore, SqliteStore, corrupt, from_json, ms, time, to_json, uuid};
use crate::audit::{AuditActor, AuditEntry, AuditFilter, AuditOutcome, AuditStore, NewAuditEntry};
use crate::error::Result;

/// The columns of `audit_log` that make an [`AuditEntry`] (see [`AuditDb`]).
macro_rules! audit_columns {
    () => {
        "seq, org_id, at, actor_kind, actor_id, actor_name, actor_user_id, peer, method, \
         route, action, target_json, details_json, status, outcome, error_code"
    };
}

/// A row of `audit_log`.
#[derive(sqlx::FromRow)]
struct AuditDb {
    seq: i64,
    org_id: Option<String>,
    at: i64,
    actor_kind: String,
    actor_id: Option<String>,
    actor_name: String,
    actor_user_id: Option<String>,
    peer: Option<String>,
    method: String,
    route: String,
    action: String,
    target_json: String,
    details_json: String,
    status: i64,
    outcome: String,
    error_code: Option<String>,
}

impl AuditDb {
    fn decode(self) -> Result<AuditEntry> {
        Ok(AuditEntry {
            seq: self.seq,
            entry: NewAuditEntry {
                org_id: self
                    .org_id
                    .as_deref()
                    .map(|s| uuid(s, "audit_log.org_id"))
                    .transpose()?,
                at: time(self.at, "audit_log.at")?,
                actor: AuditActor {
                    kind: self.actor_kind,
                    id: self.actor_id,
                    name: self.actor_name,
                    user_id: self
                        .actor_user_id
                        .as_deref()
                        .map(|s| uuid(s, "audit_log.actor_user_id"))
                        .transpose()?,
                },
                peer: self.peer,
                method: self.method,
                route: self.route,
                action: self.action,
                target: from_json(&self.target_json, "audit_log.target_json")?,
                details: from_json(&self.details_json, "audit_log.details_json")?,
                status: u16::try_from(self.status)
                    .map_err(|_| corrupt("audit_log.status", self.status))?,
                outcome: AuditOutcome::parse(&self.outcome)
                    .ok_or_else(|| corrupt("audit_log.outcome", &self.outcome))?,
                error_code: self.error_code,
            },
        })
    }
}

/// `s` with the `LIKE` wildcards and the escape character escaped.
fn like_escaped(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Implements [`AuditStore`] for `$store` (a struct with `writer` and `reader` pools
/// of database `$db`).
macro_rules! impl_audit {
    ($store:ident, $db:ty) => {
        #[async_trait]
        impl AuditStore for $store {
            async fn append_audit(&self, e: NewAuditEntry) -> Result<i64> {
                let (seq,): (i64,) = sqlx::query_as(
                    "INSERT INTO audit_log (org_id, at, actor_kind, actor_id, actor_name, \
                     actor_user_id, peer, method, route, action, target_json, details_json, \
                     status, outcome, error_code) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
                     RETURNING seq",
                )
                .bind(e.org_id.map(|o| o.to_string()))
                .bind(ms(e.at))
                .bind(&e.actor.kind)
                .bind(&e.actor.id)
                .bind(&e.actor.name)
                .bind(e.actor.user_id.map(|u| u.to_string()))
                .bind(&e.peer)
                .bind(&e.method)
                .bind(&e.route)
                .bind(&e.action)
                .bind(to_json(&e.target, "audit_log.target_json")?)
                .bind(to_json(&e.details, "audit_log.details_json")?)
                .bind(i64::from(e.status))
                .bind(e.outcome.as_str())
                .bind(&e.error_code)
                .fetch_one(&self.writer)
                .await?;
                Ok(seq)
            }

            async fn list_audit(
                &self,
                org_id: Uuid,
                f: &AuditFilter,
                limit: u32,
            ) -> Result<Vec<AuditEntry>> {
                let rows: Vec<AuditDb> = sqlx::query_as(concat!(
                    "SELECT ",
                    audit_columns!(),
                    " FROM audit_log \
                     WHERE (org_id = $1 OR org_id IS NULL) \
                     AND (CAST($2 AS TEXT) IS NULL \
                          OR actor_name LIKE $2 ESCAPE '\\' OR actor_id LIKE $2 ESCAPE '\\') \
                     AND (CAST($3 AS TEXT) IS NULL OR action LIKE $3 ESCAPE '\\') \
                     AND (CAST($4 AS TEXT) IS NULL OR outcome = $4) \
                     AND (CAST($5 AS BIGINT) IS NULL OR at >= $5) \
                     AND (CAST($6 AS BIGINT) IS NULL OR at < $6) \
                     AND (CAST($7 AS BIGINT) IS NULL OR seq < $7) \
                     ORDER BY seq DESC LIMIT $8"
                ))
                .bind(org_id.to_string())
                .bind(f.actor.as_deref().map(|a| format!("%{}%", like_escaped(a))))
                .bind(f.action.as_deref().map(|a| format!("{}%", like_escaped(a))))
                .bind(f.outcome.map(AuditOutcome::as_str))
                .bind(f.since.map(ms))
                .bind(f.until.map(ms))
                .bind(f.before_seq)
                .bind(i64::from(limit))
                .fetch_all(&self.reader)
                .await?;
                rows.into_iter().map(AuditDb::decode).collect()
            }
        }
    };
}

impl_audit!(SqliteStore, sqlx::Sqlite);
impl_audit!(PostgresStore, sqlx::Postgres);
