//! The SQL of [`ApprovalStore`]: `approvals` (one active row per group and update, by a
//! partial unique index), `approval_rules`, `update_sightings`, `manifests` and
//! `manifest_items`.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use patchctl_proto::policy::approvals::{MinSeverity, UpdateItem};
use uuid::Uuid;

use super::{
    PostgresStore, SqliteStore, conflict, corrupt, count, from_json, ms, opt_time, time, to_json,
    uuid,
};
use crate::approvals::{
    Approval, ApprovalRule, ApprovalStore, Manifest, ManifestApprovalRow, NewApprovals,
};
use crate::error::Result;

macro_rules! approval_columns {
    () => {
        "id, group_id, ecosystem, name, version, rule_id, rule_name, approved_by, approved_at, \
         revoked_at, revoked_by"
    };
}

#[derive(sqlx::FromRow)]
struct ApprovalDb {
    id: String,
    group_id: String,
    ecosystem: String,
    name: String,
    version: String,
    rule_id: Option<String>,
    rule_name: Option<String>,
    approved_by: String,
    approved_at: i64,
    revoked_at: Option<i64>,
    revoked_by: Option<String>,
}

impl ApprovalDb {
    fn decode(self) -> Result<Approval> {
        let rule = match (self.rule_id, self.rule_name) {
            (Some(id), Some(name)) => Some((Some(uuid(&id, "approvals.rule_id")?), name)),
            // The rule was deleted: its name stays, the id is gone.
            (None, Some(name)) => Some((None, name)),
            _ => None,
        };
        let revoked = match opt_time(self.revoked_at, "approvals.revoked_at")? {
            Some(at) => Some((at, self.revoked_by.unwrap_or_default())),
            None => None,
        };
        Ok(Approval {
            id: uuid(&self.id, "approvals.id")?,
            group_id: uuid(&self.group_id, "approvals.group_id")?,
            item: UpdateItem {
                ecosystem: self.ecosystem,
                name: self.name,
                version: self.version,
            },
            rule,
            approved_by: self.approved_by,
            approved_at: time(self.approved_at, "approvals.approved_at")?,
            revoked,
        })
    }
}

macro_rules! rule_columns {
    () => {
        "id, name, group_id, security_only, min_severity, after_days, created_by, created_at, \
         last_run_at"
    };
}

#[derive(sqlx::FromRow)]
struct RuleDb {
    id: String,
    name: String,
    group_id: String,
    security_only: bool,
    min_severity: String,
    after_days: i64,
    created_by: String,
    created_at: i64,
    last_run_at: Option<i64>,
}

impl RuleDb {
    fn decode(self) -> Result<ApprovalRule> {
        let min_severity: MinSeverity = serde_json::from_value(serde_json::Value::String(
            self.min_severity.clone(),
        ))
        .map_err(|_| {
            corrupt(
                "approval_rules.min_severity",
                format!("unknown severity {:?}", self.min_severity),
            )
        })?;
        Ok(ApprovalRule {
            id: uuid(&self.id, "approval_rules.id")?,
            name: self.name,
            group_id: uuid(&self.group_id, "approval_rules.group_id")?,
            security_only: self.security_only,
            min_severity,
            after_days: count(self.after_days, "approval_rules.after_days")?,
            created_by: self.created_by,
            created_at: time(self.created_at, "approval_rules.created_at")?,
            last_run_at: opt_time(self.last_run_at, "approval_rules.last_run_at")?,
        })
    }
}

fn severity_text(s: MinSeverity) -> String {
    serde_json::to_value(s)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

macro_rules! manifest_columns {
    () => {
        "id, name, group_id, group_name, created_by, created_at, item_count"
    };
}

#[derive(sqlx::FromRow)]
struct ManifestDb {
    id: String,
    name: String,
    group_id: String,
    group_name: String,
    created_by: String,
    created_at: i64,
    item_count: i64,
}

impl ManifestDb {
    fn decode(self) -> Result<Manifest> {
        Ok(Manifest {
            id: uuid(&self.id, "manifests.id")?,
            name: self.name,
            group_id: uuid(&self.group_id, "manifests.group_id")?,
            group_name: self.group_name,
            created_by: self.created_by,
            created_at: time(self.created_at, "manifests.created_at")?,
            item_count: count(self.item_count, "manifests.item_count")?,
        })
    }
}

/// Implements [`ApprovalStore`] for `$store` (a struct with `writer` and `reader` pools
/// of database `$db`).
macro_rules! impl_approvals {
    ($store:ident, $db:ty) => {
        #[async_trait]
        impl ApprovalStore for $store {
            async fn approve(&self, org_id: Uuid, new: &NewApprovals) -> Result<Vec<Approval>> {
                let mut tx = self.writer.begin().await?;
                let mut made = Vec::new();
                let (rule_id, rule_name) = match &new.rule {
                    Some((id, name)) => (Some(id.to_string()), Some(name.clone())),
                    None => (None, None),
                };
                for item in &new.items {
                    let row: Option<ApprovalDb> = sqlx::query_as(concat!(
                        "INSERT INTO approvals (id, org_id, group_id, ecosystem, name, version, \
                         rule_id, rule_name, approved_by, approved_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                         ON CONFLICT (group_id, ecosystem, name, version) WHERE revoked_at IS NULL \
                         DO NOTHING RETURNING ",
                        approval_columns!()
                    ))
                    .bind(Uuid::new_v4().to_string())
                    .bind(org_id.to_string())
                    .bind(new.group_id.to_string())
                    .bind(&item.ecosystem)
                    .bind(&item.name)
                    .bind(&item.version)
                    .bind(rule_id.as_deref())
                    .bind(rule_name.as_deref())
                    .bind(&new.actor)
                    .bind(ms(new.now))
                    .fetch_optional(&mut *tx)
                    .await?;
                    if let Some(r) = row {
                        made.push(r.decode()?);
                    }
                }
                tx.commit().await?;
                Ok(made)
            }

            async fn list_approvals(
                &self,
                org_id: Uuid,
                group: Option<Uuid>,
                include_revoked: bool,
            ) -> Result<Vec<Approval>> {
                let rows: Vec<ApprovalDb> = sqlx::query_as(concat!(
                    "SELECT ",
                    approval_columns!(),
                    " FROM approvals WHERE org_id = $1 \
                     AND (CAST($2 AS TEXT) IS NULL OR group_id = $2) \
                     AND ($3 OR revoked_at IS NULL) \
                     ORDER BY approved_at DESC, ecosystem, name, version"
                ))
                .bind(org_id.to_string())
                .bind(group.map(|g| g.to_string()))
                .bind(include_revoked)
                .fetch_all(&self.reader)
                .await?;
                rows.into_iter().map(ApprovalDb::decode).collect()
            }

            async fn revoke_approval(
                &self,
                org_id: Uuid,
                id: Uuid,
                actor: &str,
                now: DateTime<Utc>,
            ) -> Result<Option<Approval>> {
                let row: Option<ApprovalDb> = sqlx::query_as(concat!(
                    "UPDATE approvals SET revoked_at = $3, revoked_by = $4 \
                     WHERE id = $1 AND org_id = $2 AND revoked_at IS NULL RETURNING ",
                    approval_columns!()
                ))
                .bind(id.to_string())
                .bind(org_id.to_string())
                .bind(ms(now))
                .bind(actor)
                .fetch_optional(&self.writer)
                .await?;
                row.map(ApprovalDb::decode).transpose()
            }

            async fn create_rule(&self, org_id: Uuid, r: &ApprovalRule) -> Result<()> {
                sqlx::query(
                    "INSERT INTO approval_rules (id, org_id, name, group_id, security_only, \
                     min_severity, after_days, created_by, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(r.id.to_string())
                .bind(org_id.to_string())
                .bind(&r.name)
                .bind(r.group_id.to_string())
                .bind(r.security_only)
                .bind(severity_text(r.min_severity))
                .bind(i64::from(r.after_days))
                .bind(&r.created_by)
                .bind(ms(r.created_at))
                .execute(&self.writer)
                .await
                .map_err(|e| conflict(e, || format!("approval rule {:?}", r.name)))?;
                Ok(())
            }

            async fn list_rules(&self, org_id: Uuid) -> Result<Vec<ApprovalRule>> {
                let rows: Vec<RuleDb> = sqlx::query_as(concat!(
                    "SELECT ",
                    rule_columns!(),
                    " FROM approval_rules WHERE org_id = $1 ORDER BY name"
                ))
                .bind(org_id.to_string())
                .fetch_all(&self.reader)
                .await?;
                rows.into_iter().map(RuleDb::decode).collect()
            }

            async fn all_rules(&self) -> Result<Vec<(Uuid, ApprovalRule)>> {
                #[derive(sqlx::FromRow)]
                struct Row {
                    org_id: String,
                    #[sqlx(flatten)]
                    rule: RuleDb,
                }
                let rows: Vec<Row> = sqlx::query_as(concat!(
                    "SELECT org_id, ",
                    rule_columns!(),
                    " FROM approval_rules ORDER BY org_id, name"
                ))
                .fetch_all(&self.reader)
                .await?;
                rows.into_iter()
                    .map(|r| Ok((uuid(&r.org_id, "approval_rules.org_id")?, r.rule.decode()?)))
                    .collect()
            }

            async fn delete_rule(&self, org_id: Uuid, id: Uuid) -> Result<bool> {
                let done = sqlx::query("DELETE FROM approval_rules WHERE id = $1 AND org_id = $2")
                    .bind(id.to_string())
                    .bind(org_id.to_string())
                    .execute(&self.writer)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn rule_ran(&self, org_id: Uuid, id: Uuid, now: DateTime<Utc>) -> Result<()> {
                sqlx::query("UPDATE approval_rules SET last_run_at = $3 WHERE id = $1 AND org_id = $2")
                    .bind(id.to_string())
                    .bind(org_id.to_string())
                    .bind(ms(now))
                    .execute(&self.writer)
                    .await?;
                Ok(())
            }

            async fn sight_updates(
                &self,
                org_id: Uuid,
                items: &[UpdateItem],
                now: DateTime<Utc>,
            ) -> Result<HashMap<UpdateItem, DateTime<Utc>>> {
                let mut tx = self.writer.begin().await?;
                let mut seen = HashMap::with_capacity(items.len());
                for item in items {
                    let (at,): (i64,) = sqlx::query_as(
                        "INSERT INTO update_sightings (org_id, ecosystem, name, version, \
                         first_seen_at) VALUES ($1, $2, $3, $4, $5) \
                         ON CONFLICT (org_id, ecosystem, name, version) \
                         DO UPDATE SET first_seen_at = update_sightings.first_seen_at \
                         RETURNING first_seen_at",
                    )
                    .bind(org_id.to_string())
                    .bind(&item.ecosystem)
                    .bind(&item.name)
                    .bind(&item.version)
                    .bind(ms(now))
                    .fetch_one(&mut *tx)
                    .await?;
                    seen.insert(item.clone(), time(at, "update_sightings.first_seen_at")?);
                }
                tx.commit().await?;
                Ok(seen)
            }

            async fn create_manifest(
                &self,
                org_id: Uuid,
                m: &Manifest,
                items: &[UpdateItem],
            ) -> Result<()> {
                let mut tx = self.writer.begin().await?;
                sqlx::query(
                    "INSERT INTO manifests (id, org_id, name, group_id, group_name, created_by, \
                     created_at, item_count) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(m.id.to_string())
                .bind(org_id.to_string())
                .bind(&m.name)
                .bind(m.group_id.to_string())
                .bind(&m.group_name)
                .bind(&m.created_by)
                .bind(ms(m.created_at))
                .bind(items.len() as i64)
                .execute(&mut *tx)
                .await
                .map_err(|e| conflict(e, || format!("manifest {:?}", m.name)))?;
                for chunk in items.chunks(super::ID_CHUNK / 4) {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO manifest_items (manifest_id, ecosystem, name, version) ",
                    );
                    qb.push_values(chunk, |mut b, i| {
                        b.push_bind(m.id.to_string())
                            .push_bind(i.ecosystem.as_str())
                            .push_bind(i.name.as_str())
                            .push_bind(i.version.as_str());
                    });
                    qb.build().execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn list_manifests(&self, org_id: Uuid) -> Result<Vec<Manifest>> {
                let rows: Vec<ManifestDb> = sqlx::query_as(concat!(
                    "SELECT ",
                    manifest_columns!(),
                    " FROM manifests WHERE org_id = $1 ORDER BY created_at DESC, name"
                ))
                .bind(org_id.to_string())
                .fetch_all(&self.reader)
                .await?;
                rows.into_iter().map(ManifestDb::decode).collect()
            }

            async fn manifest(
                &self,
                org_id: Uuid,
                reference: &str,
            ) -> Result<Option<(Manifest, Vec<UpdateItem>)>> {
                let row: Option<ManifestDb> = sqlx::query_as(concat!(
                    "SELECT ",
                    manifest_columns!(),
                    " FROM manifests WHERE org_id = $1 AND (id = $2 OR name = $2)"
                ))
                .bind(org_id.to_string())
                .bind(reference)
                .fetch_optional(&self.reader)
                .await?;
                let Some(row) = row else {
                    return Ok(None);
                };
                let m = row.decode()?;
                let items: Vec<(String, String, String)> = sqlx::query_as(
                    "SELECT ecosystem, name, version FROM manifest_items \
                     WHERE manifest_id = $1 ORDER BY ecosystem, name",
                )
                .bind(m.id.to_string())
                .fetch_all(&self.reader)
                .await?;
                let items = items
                    .into_iter()
                    .map(|(ecosystem, name, version)| UpdateItem {
                        ecosystem,
                        name,
                        version,
                    })
                    .collect();
                Ok(Some((m, items)))
            }

            async fn add_manifest_approval(&self, a: &ManifestApprovalRow) -> Result<()> {
                let signed = to_json(&a.signed, "manifest_approvals.signed_json")?;
                let mut tx = self.writer.begin().await?;
                sqlx::query("DELETE FROM manifest_approvals WHERE manifest_id = $1 AND key_id = $2")
                    .bind(a.manifest_id.to_string())
                    .bind(&a.key_id)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(
                    "INSERT INTO manifest_approvals (manifest_id, org_id, key_id, approver, \
                     signed_json, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(a.manifest_id.to_string())
                .bind(a.org_id.to_string())
                .bind(&a.key_id)
                .bind(&a.approver)
                .bind(signed)
                .bind(ms(a.created_at))
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn manifest_approvals(
                &self,
                org_id: Uuid,
                manifest_id: Uuid,
            ) -> Result<Vec<ManifestApprovalRow>> {
                let rows: Vec<(String, String, String, i64)> = sqlx::query_as(
                    "SELECT key_id, approver, signed_json, created_at FROM manifest_approvals \
                     WHERE org_id = $1 AND manifest_id = $2 ORDER BY created_at, key_id",
                )
                .bind(org_id.to_string())
                .bind(manifest_id.to_string())
                .fetch_all(&self.reader)
                .await?;
                rows.into_iter()
                    .map(|(key_id, approver, signed, at)| {
                        Ok(ManifestApprovalRow {
                            manifest_id,
                            org_id,
                            key_id,
                            approver,
                            signed: from_json(&signed, "manifest_approvals.signed_json")?,
                            created_at: time(at, "manifest_approvals.created_at")?,
                        })
                    })
                    .collect()
            }
        }
    };
}

impl_approvals!(SqliteStore, sqlx::Sqlite);
impl_approvals!(PostgresStore, sqlx::Postgres);
