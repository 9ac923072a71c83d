//! The SQL of [`DeploymentStore`]: `deployments`, `deployment_rings`,
//! `deployment_hosts` (index `(deployment_id, ring, stage)`) and `deployment_events`
//! (migration 0015). Hosts and events are written with multi-row `INSERT`s; states are
//! stored by their wire names.

use std::collections::HashMap;

use async_trait::async_trait;
use patchctl_proto::api::CommandState;
use patchctl_proto::policy::deployments::{DeploymentEvent, HostStage};
use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use super::{
    PostgresStore, SqliteStore, conflict, corrupt, count, from_json, ms, opt_time, time, to_json,
    uuid,
};
use crate::deployments::{
    CommandOutcome, DeploymentHostRow, DeploymentRow, DeploymentStore, NewDeployment, Progress,
    RingRow,
};
use crate::error::Result;

/// Host rows per multi-row `INSERT` (8 parameters each).
const HOST_CHUNK: usize = 2_000;
/// Events per multi-row `INSERT` (10 parameters each).
const EVENT_CHUNK: usize = 1_000;

/// The wire name of a state enum.
fn wire<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// A state enum from its wire name.
fn unwire<T: DeserializeOwned>(s: &str, column: &str) -> Result<T> {
    serde_json::from_value(serde_json::Value::String(s.to_owned()))
        .map_err(|_| corrupt(column, format!("unknown state {s:?}")))
}

fn opt_uuid(s: Option<String>, column: &str) -> Result<Option<Uuid>> {
    s.map(|s| uuid(&s, column)).transpose()
}

macro_rules! deployment_columns {
    () => {
        "id, org_id, name, manifest_id, manifest_name, groups_json, reboot, state, reason, \
         current_ring, host_count, created_by, created_at, updated_at"
    };
}

#[derive(sqlx::FromRow)]
struct DeploymentDb {
    id: String,
    org_id: String,
    name: String,
    manifest_id: String,
    manifest_name: String,
    groups_json: String,
    reboot: String,
    state: String,
    reason: Option<String>,
    current_ring: Option<i64>,
    host_count: i64,
    created_by: String,
    created_at: i64,
    updated_at: i64,
}

impl DeploymentDb {
    fn decode(self) -> Result<DeploymentRow> {
        Ok(DeploymentRow {
            id: uuid(&self.id, "deployments.id")?,
            org_id: uuid(&self.org_id, "deployments.org_id")?,
            name: self.name,
            manifest_id: uuid(&self.manifest_id, "deployments.manifest_id")?,
            manifest_name: self.manifest_name,
            groups: from_json(&self.groups_json, "deployments.groups_json")?,
            reboot: unwire(&self.reboot, "deployments.reboot")?,
            state: unwire(&self.state, "deployments.state")?,
            reason: self.reason,
            current_ring: self
                .current_ring
                .map(|r| count(r, "deployments.current_ring"))
                .transpose()?,
            host_count: count(self.host_count, "deployments.host_count")?,
            created_by: self.created_by,
            created_at: time(self.created_at, "deployments.created_at")?,
            updated_at: time(self.updated_at, "deployments.updated_at")?,
        })
    }
}

#[derive(sqlx::FromRow)]
struct RingDb {
    idx: i64,
    name: String,
    percent: i64,
    max_failed_percent: i64,
    soak_minutes: i64,
    state: String,
    started_at: Option<i64>,
    finished_at: Option<i64>,
}

impl RingDb {
    fn decode(self) -> Result<RingRow> {
        Ok(RingRow {
            index: count(self.idx, "deployment_rings.idx")?,
            name: self.name,
            percent: count(self.percent, "deployment_rings.percent")?,
            max_failed_percent: count(self.max_failed_percent, "deployment_rings.max_failed")?,
            soak_minutes: count(self.soak_minutes, "deployment_rings.soak_minutes")?,
            state: unwire(&self.state, "deployment_rings.state")?,
            started_at: opt_time(self.started_at, "deployment_rings.started_at")?,
            finished_at: opt_time(self.finished_at, "deployment_rings.finished_at")?,
        })
    }
}

macro_rules! host_columns {
    () => {
        "d.host_id, COALESCE(h.hostname, '') AS hostname, d.ring, d.stage, d.detail, \
         d.packages, d.baseline_command, d.baseline_failed_units, d.install_command, \
         d.verify_command, d.boot_before, d.stage_since, d.healthy_since, d.updated_at"
    };
}

#[derive(sqlx::FromRow)]
struct HostDb {
    host_id: String,
    hostname: String,
    ring: i64,
    stage: String,
    detail: Option<String>,
    packages: i64,
    baseline_command: Option<String>,
    baseline_failed_units: Option<String>,
    install_command: Option<String>,
    verify_command: Option<String>,
    boot_before: Option<i64>,
    stage_since: i64,
    healthy_since: Option<i64>,
    updated_at: i64,
}

impl HostDb {
    fn decode(self) -> Result<DeploymentHostRow> {
        const T: &str = "deployment_hosts";
        Ok(DeploymentHostRow {
            host_id: uuid(&self.host_id, "deployment_hosts.host_id")?,
            hostname: self.hostname,
            ring: count(self.ring, "deployment_hosts.ring")?,
            stage: unwire(&self.stage, "deployment_hosts.stage")?,
            detail: self.detail,
            packages: count(self.packages, "deployment_hosts.packages")?,
            baseline_command: opt_uuid(self.baseline_command, T)?,
            baseline_failed_units: self
                .baseline_failed_units
                .map(|s| from_json(&s, "deployment_hosts.baseline_failed_units"))
                .transpose()?,
            install_command: opt_uuid(self.install_command, T)?,
            verify_command: opt_uuid(self.verify_command, T)?,
            boot_before: opt_time(self.boot_before, "deployment_hosts.boot_before")?,
            stage_since: time(self.stage_since, "deployment_hosts.stage_since")?,
            healthy_since: opt_time(self.healthy_since, "deployment_hosts.healthy_since")?,
            updated_at: time(self.updated_at, "deployment_hosts.updated_at")?,
        })
    }
}

#[derive(sqlx::FromRow)]
struct EventDb {
    at: i64,
    subject: String,
    ring: Option<i64>,
    host_id: Option<String>,
    from_state: Option<String>,
    to_state: String,
    actor: String,
    reason: Option<String>,
}

impl EventDb {
    fn decode(self) -> Result<DeploymentEvent> {
        Ok(DeploymentEvent {
            at: time(self.at, "deployment_events.at")?,
            subject: self.subject,
            ring: self
                .ring
                .map(|r| count(r, "deployment_events.ring"))
                .transpose()?,
            host_id: opt_uuid(self.host_id, "deployment_events.host_id")?,
            from: self.from_state,
            to: self.to_state,
            by: self.actor,
            reason: self.reason,
        })
    }
}

/// Implements [`DeploymentStore`] for `$store` (a struct with `writer` and `reader`
/// pools of database `$db`).
macro_rules! impl_deployments {
    ($store:ident, $db:ty) => {
        impl $store {
            async fn insert_events(
                tx: &mut sqlx::Transaction<'_, $db>,
                deployment_id: Uuid,
                events: &[DeploymentEvent],
            ) -> Result<()> {
                let id = deployment_id.to_string();
                for chunk in events.chunks(EVENT_CHUNK) {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO deployment_events (deployment_id, at, subject, ring, \
                         host_id, from_state, to_state, actor, reason) ",
                    );
                    qb.push_values(chunk, |mut b, e| {
                        b.push_bind(id.clone())
                            .push_bind(ms(e.at))
                            .push_bind(e.subject.clone())
                            .push_bind(e.ring.map(i64::from))
                            .push_bind(e.host_id.map(|h| h.to_string()))
                            .push_bind(e.from.clone())
                            .push_bind(e.to.clone())
                            .push_bind(e.by.clone())
                            .push_bind(e.reason.clone());
                    });
                    qb.build().execute(&mut **tx).await?;
                }
                Ok(())
            }

            async fn write_ring(
                tx: &mut sqlx::Transaction<'_, $db>,
                deployment_id: Uuid,
                r: &RingRow,
                insert: bool,
            ) -> Result<()> {
                let sql = if insert {
                    "INSERT INTO deployment_rings (deployment_id, idx, name, percent, \
                     max_failed_percent, soak_minutes, state, started_at, finished_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
                } else {
                    "UPDATE deployment_rings SET name = $3, percent = $4, \
                     max_failed_percent = $5, soak_minutes = $6, state = $7, \
                     started_at = $8, finished_at = $9 WHERE deployment_id = $1 AND idx = $2"
                };
                sqlx::query(sql)
                    .bind(deployment_id.to_string())
                    .bind(i64::from(r.index))
                    .bind(&r.name)
                    .bind(i64::from(r.percent))
                    .bind(i64::from(r.max_failed_percent))
                    .bind(i64::from(r.soak_minutes))
                    .bind(wire(&r.state))
                    .bind(r.started_at.map(ms))
                    .bind(r.finished_at.map(ms))
                    .execute(&mut **tx)
                    .await?;
                Ok(())
            }
        }

        #[async_trait]
        impl DeploymentStore for $store {
            async fn create_deployment(&self, new: &NewDeployment) -> Result<()> {
                let d = &new.deployment;
                let id = d.id.to_string();
                let mut tx = self.writer.begin().await?;
                sqlx::query(concat!(
                    "INSERT INTO deployments (",
                    deployment_columns!(),
                    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
                ))
                .bind(&id)
                .bind(d.org_id.to_string())
                .bind(&d.name)
                .bind(d.manifest_id.to_string())
                .bind(&d.manifest_name)
                .bind(to_json(&d.groups, "deployments.groups_json")?)
                .bind(wire(&d.reboot))
                .bind(wire(&d.state))
                .bind(d.reason.as_deref())
                .bind(d.current_ring.map(i64::from))
                .bind(new.hosts.len() as i64)
                .bind(&d.created_by)
                .bind(ms(d.created_at))
                .bind(ms(d.updated_at))
                .execute(&mut *tx)
                .await
                .map_err(|e| conflict(e, || format!("deployment {:?}", d.name)))?;
                for r in &new.rings {
                    Self::write_ring(&mut tx, d.id, r, true).await?;
                }
                let now = ms(d.created_at);
                for chunk in new.hosts.chunks(HOST_CHUNK) {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO deployment_hosts (deployment_id, host_id, ring, stage, \
                         detail, packages, stage_since, updated_at) ",
                    );
                    qb.push_values(chunk, |mut b, h| {
                        b.push_bind(id.clone())
                            .push_bind(h.host_id.to_string())
                            .push_bind(i64::from(h.ring))
                            .push_bind(wire(&h.stage))
                            .push_bind(h.detail.clone())
                            .push_bind(h.packages as i64)
                            .push_bind(now)
                            .push_bind(now);
                    });
                    qb.build().execute(&mut *tx).await?;
                }
                Self::insert_events(&mut tx, d.id, &new.events).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn list_deployments(&self, org_id: Uuid) -> Result<Vec<DeploymentRow>> {
                let rows: Vec<DeploymentDb> = sqlx::query_as(concat!(
                    "SELECT ",
                    deployment_columns!(),
                    " FROM deployments WHERE org_id = $1 ORDER BY created_at DESC, name"
                ))
                .bind(org_id.to_string())
                .fetch_all(&self.reader)
                .await?;
                rows.into_iter().map(DeploymentDb::decode).collect()
            }

            async fn deployment(
                &self,
                org_id: Uuid,
                reference: &str,
            ) -> Result<Option<DeploymentRow>> {
                let row: Option<DeploymentDb> = sqlx::query_as(concat!(
                    "SELECT ",
                    deployment_columns!(),
                    " FROM deployments WHERE org_id = $1 AND (id = $2 OR name = $2)"
                ))
                .bind(org_id.to_string())
                .bind(reference)
                .fetch_optional(&self.reader)
                .await?;
                row.map(DeploymentDb::decode).transpose()
            }

            async fn active_deployments(&self) -> Result<Vec<DeploymentRow>> {
                let rows: Vec<DeploymentDb> = sqlx::query_as(concat!(
                    "SELECT ",
                    deployment_columns!(),
                    " FROM deployments WHERE state IN ('running', 'paused') ORDER BY created_at"
                ))
                .fetch_all(&self.reader)
                .await?;
                rows.into_iter().map(DeploymentDb::decode).collect()
            }

            async fn deployment_rings(&self, deployment_id: Uuid) -> Result<Vec<RingRow>> {
                let rows: Vec<RingDb> = sqlx::query_as(
                    "SELECT idx, name, percent, max_failed_percent, soak_minutes, state, \
                     started_at, finished_at FROM deployment_rings WHERE deployment_id = $1 \
                     ORDER BY idx",
                )
                .bind(deployment_id.to_string())
                .fetch_all(&self.reader)
                .await?;
                rows.into_iter().map(RingDb::decode).collect()
            }

            async fn deployment_stage_counts(
                &self,
                deployment_id: Uuid,
            ) -> Result<HashMap<(u32, HostStage), u64>> {
                let rows: Vec<(i64, String, i64)> = sqlx::query_as(
                    "SELECT ring, stage, COUNT(*) FROM deployment_hosts \
                     WHERE deployment_id = $1 GROUP BY ring, stage",
                )
                .bind(deployment_id.to_string())
                .fetch_all(&self.reader)
                .await?;
                rows.into_iter()
                    .map(|(ring, stage, n)| {
                        Ok((
                            (
                                count(ring, "deployment_hosts.ring")?,
                                unwire(&stage, "deployment_hosts.stage")?,
                            ),
                            count(n, "deployment_hosts count")?,
                        ))
                    })
                    .collect()
            }

            async fn deployment_hosts(
                &self,
                deployment_id: Uuid,
                ring: Option<u32>,
            ) -> Result<Vec<DeploymentHostRow>> {
                let rows: Vec<HostDb> = sqlx::query_as(concat!(
                    "SELECT ",
                    host_columns!(),
                    " FROM deployment_hosts d LEFT JOIN hosts h ON h.id = d.host_id \
                     WHERE d.deployment_id = $1 AND (CAST($2 AS BIGINT) IS NULL OR d.ring = $2) \
                     ORDER BY d.ring, hostname, d.host_id"
                ))
                .bind(deployment_id.to_string())
                .bind(ring.map(i64::from))
                .fetch_all(&self.reader)
                .await?;
                rows.into_iter().map(HostDb::decode).collect()
            }

            async fn deployment_events(
                &self,
                deployment_id: Uuid,
            ) -> Result<Vec<DeploymentEvent>> {
                let rows: Vec<EventDb> = sqlx::query_as(
                    "SELECT at, subject, ring, host_id, from_state, to_state, actor, reason \
                     FROM deployment_events WHERE deployment_id = $1 ORDER BY seq",
                )
                .bind(deployment_id.to_string())
                .fetch_all(&self.reader)
                .await?;
                rows.into_iter().map(EventDb::decode).collect()
            }

            async fn save_progress(&self, deployment_id: Uuid, p: &Progress) -> Result<bool> {
                let id = deployment_id.to_string();
                let now = ms(p.now.unwrap_or_else(chrono::Utc::now));
                let mut tx = self.writer.begin().await?;
                // Take the write lock first (SQLite) and check the state in the same
                // statement.
                let (state, reason, ring) = match &p.deployment {
                    Some((s, r, c)) => (Some(wire(s)), r.clone(), *c),
                    None => (None, None, None),
                };
                let set = p.deployment.is_some();
                let done = sqlx::query(
                    "UPDATE deployments SET \
                     state = CASE WHEN $2 THEN $3 ELSE state END, \
                     reason = CASE WHEN $2 THEN $4 ELSE reason END, \
                     current_ring = CASE WHEN $2 THEN $5 ELSE current_ring END, \
                     updated_at = CASE WHEN $2 THEN $6 ELSE updated_at END \
                     WHERE id = $1 AND (CAST($7 AS TEXT) IS NULL OR state = $7)",
                )
                .bind(&id)
                .bind(set)
                .bind(state.unwrap_or_default())
                .bind(reason)
                .bind(ring.map(i64::from))
                .bind(now)
                .bind(p.expect.map(|s| wire(&s)))
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() == 0 {
                    tx.rollback().await?;
                    return Ok(false);
                }
                for r in &p.rings {
                    Self::write_ring(&mut tx, deployment_id, r, false).await?;
                }
                for h in &p.hosts {
                    sqlx::query(
                        "UPDATE deployment_hosts SET stage = $3, detail = $4, \
                         baseline_command = $5, baseline_failed_units = $6, \
                         install_command = $7, verify_command = $8, boot_before = $9, \
                         stage_since = $10, healthy_since = $11, updated_at = $12 \
                         WHERE deployment_id = $1 AND host_id = $2",
                    )
                    .bind(&id)
                    .bind(h.host_id.to_string())
                    .bind(wire(&h.stage))
                    .bind(h.detail.as_deref())
                    .bind(h.baseline_command.map(|c| c.to_string()))
                    .bind(
                        h.baseline_failed_units
                            .as_ref()
                            .map(|u| to_json(u, "deployment_hosts.baseline_failed_units"))
                            .transpose()?,
                    )
                    .bind(h.install_command.map(|c| c.to_string()))
                    .bind(h.verify_command.map(|c| c.to_string()))
                    .bind(h.boot_before.map(ms))
                    .bind(ms(h.stage_since))
                    .bind(h.healthy_since.map(ms))
                    .bind(ms(h.updated_at))
                    .execute(&mut *tx)
                    .await?;
                }
                Self::insert_events(&mut tx, deployment_id, &p.events).await?;
                if let Some((stages, detail)) = &p.skip {
                    let stages: Vec<String> = stages.iter().map(wire).collect();
                    let list = serde_json::to_string(&stages).unwrap_or_default();
                    // The events first, from the rows as they were.
                    sqlx::query(
                        "INSERT INTO deployment_events (deployment_id, at, subject, ring, \
                         host_id, from_state, to_state, actor, reason) \
                         SELECT deployment_id, $2, 'host', ring, host_id, stage, 'skipped', $3, $4 \
                         FROM deployment_hosts WHERE deployment_id = $1 \
                         AND $5 LIKE '%\"' || stage || '\"%' ORDER BY ring, host_id",
                    )
                    .bind(&id)
                    .bind(now)
                    .bind(&p.by)
                    .bind(detail)
                    .bind(&list)
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query(
                        "UPDATE deployment_hosts SET stage = 'skipped', detail = $2, \
                         stage_since = $3, updated_at = $3 \
                         WHERE deployment_id = $1 AND $4 LIKE '%\"' || stage || '\"%'",
                    )
                    .bind(&id)
                    .bind(detail)
                    .bind(now)
                    .bind(&list)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(true)
            }

            async fn command_outcomes(
                &self,
                org_id: Uuid,
                ids: &[Uuid],
            ) -> Result<HashMap<Uuid, CommandOutcome>> {
                let mut out = HashMap::with_capacity(ids.len());
                for chunk in ids.chunks(super::ID_CHUNK) {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(
                        "SELECT id, state, created_at, updated_at, result_json FROM commands WHERE org_id = ",
                    );
                    qb.push_bind(org_id.to_string()).push(" AND id IN (");
                    let mut sep = qb.separated(", ");
                    for id in chunk {
                        sep.push_bind(id.to_string());
                    }
                    qb.push(")");
                    let rows: Vec<(String, String, i64, i64, Option<String>)> =
                        qb.build_query_as().fetch_all(&self.reader).await?;
                    for (id, state, created, at, result) in rows {
                        out.insert(
                            uuid(&id, "commands.id")?,
                            CommandOutcome {
                                state: CommandState::parse(&state).ok_or_else(|| {
                                    corrupt("commands.state", format!("unknown state {state:?}"))
                                })?,
                                created_at: time(created, "commands.created_at")?,
                                updated_at: time(at, "commands.updated_at")?,
                                result: result
                                    .map(|r| from_json(&r, "commands.result_json"))
                                    .transpose()?,
                            },
                        );
                    }
                }
                Ok(out)
            }
        }
    };
}

impl_deployments!(SqliteStore, sqlx::Sqlite);
impl_deployments!(PostgresStore, sqlx::Postgres);
