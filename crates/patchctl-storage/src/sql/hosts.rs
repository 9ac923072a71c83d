//! The SQL of [`HostStore`]: `hosts` (enrollment, credentials, the latest heartbeat and
//! metrics, listing) and the `metrics_history` ring. A heartbeat batch is one
//! transaction (group commit) and also reports which of its hosts have queued or
//! delivered commands, so that only those are leased.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use patchctl_proto::agent::Metrics;
use patchctl_proto::api::CommandState;
use uuid::Uuid;

use super::{
    PostgresStore, SqliteStore, conflict, count, from_json, ms, opt_time, time, to_json, trunc,
    uuid,
};
use crate::error::Result;
use crate::hosts::{HeartbeatOutcome, HeartbeatWrite, HostAuth, HostRow, HostStore, NewHost};

/// Heartbeats per multi-row statement (4 bound values each; far below SQLite's 32766).
const HEARTBEAT_CHUNK: usize = 500;

/// The columns of `hosts` that make a [`HostRow`] (see [`HostDb`]).
macro_rules! host_columns {
    () => {
        "id, org_id, hostname, system_json, agent_version, enrolled_at, last_seen, revoked, \
         metrics_json, metrics_at, inventory_scanned_at, package_manager, package_count, \
         update_count, security_update_count"
    };
}

// ---------------------------------------------------------------------------------
// Rows as they come out of the database.

/// The [`host_columns!`] of a row of `hosts`.
#[derive(sqlx::FromRow)]
struct HostDb {
    id: String,
    org_id: String,
    hostname: String,
    system_json: String,
    agent_version: String,
    enrolled_at: i64,
    last_seen: Option<i64>,
    revoked: bool,
    metrics_json: Option<String>,
    metrics_at: Option<i64>,
    inventory_scanned_at: Option<i64>,
    package_manager: Option<String>,
    package_count: i64,
    update_count: i64,
    security_update_count: i64,
}

impl HostDb {
    fn decode(self) -> Result<HostRow> {
        Ok(HostRow {
            id: uuid(&self.id, "hosts.id")?,
            org_id: uuid(&self.org_id, "hosts.org_id")?,
            hostname: self.hostname,
            system: from_json(&self.system_json, "hosts.system_json")?,
            agent_version: self.agent_version,
            enrolled_at: time(self.enrolled_at, "hosts.enrolled_at")?,
            last_seen: opt_time(self.last_seen, "hosts.last_seen")?,
            revoked: self.revoked,
            metrics: self
                .metrics_json
                .as_deref()
                .map(|s| from_json(s, "hosts.metrics_json"))
                .transpose()?,
            metrics_at: opt_time(self.metrics_at, "hosts.metrics_at")?,
            inventory_scanned_at: opt_time(
                self.inventory_scanned_at,
                "hosts.inventory_scanned_at",
            )?,
            package_manager: self.package_manager,
            package_count: count(self.package_count, "hosts.package_count")?,
            update_count: count(self.update_count, "hosts.update_count")?,
            security_update_count: count(
                self.security_update_count,
                "hosts.security_update_count",
            )?,
        })
    }
}

/// A row of `metrics_history`.
#[derive(sqlx::FromRow)]
struct HistoryDb {
    at: i64,
    metrics_json: String,
}

impl HistoryDb {
    fn decode(self) -> Result<(DateTime<Utc>, Metrics)> {
        Ok((
            time(self.at, "metrics_history.at")?,
            from_json(&self.metrics_json, "metrics_history.metrics_json")?,
        ))
    }
}

// ---------------------------------------------------------------------------------

/// Implements [`HostStore`] for `$store` (a struct with `writer` and `reader` pools of
/// database `$db`).
macro_rules! impl_hosts {
    ($store:ident, $db:ty) => {
        #[async_trait]
        impl HostStore for $store {
            async fn create_host(&self, host: NewHost) -> Result<HostRow> {
                let id = Uuid::new_v4();
                let system_json = to_json(&host.system, "hosts.system_json")?;
                sqlx::query(
                    "INSERT INTO hosts (id, org_id, enrollment_key_id, credential_hash, revoked, \
                     hostname, system_json, agent_version, enrolled_at, package_count, \
                     heartbeat_count) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, 0)",
                )
                .bind(id.to_string())
                .bind(host.org_id.to_string())
                .bind(host.enrollment_key_id.to_string())
                .bind(&host.credential_hash)
                .bind(false)
                .bind(&host.system.hostname)
                .bind(&system_json)
                .bind(&host.agent_version)
                .bind(ms(host.now))
                .execute(&self.writer)
                .await
                .map_err(|e| conflict(e, || "a host credential with this hash".to_owned()))?;
                Ok(HostRow {
                    id,
                    org_id: host.org_id,
                    hostname: host.system.hostname.clone(),
                    system: host.system,
                    agent_version: host.agent_version,
                    enrolled_at: trunc(host.now),
                    last_seen: None,
                    revoked: false,
                    metrics: None,
                    metrics_at: None,
                    inventory_scanned_at: None,
                    package_manager: None,
                    package_count: 0,
                    update_count: 0,
                    security_update_count: 0,
                })
            }

            async fn host_by_credential(
                &self,
                credential_hash: &str,
            ) -> Result<Option<HostAuth>> {
                let row: Option<(String, String)> = sqlx::query_as(
                    "SELECT id, org_id FROM hosts WHERE credential_hash = $1 AND NOT revoked",
                )
                .bind(credential_hash)
                .fetch_optional(&self.reader)
                .await?;
                row.map(|(id, org)| {
                    Ok(HostAuth {
                        host_id: uuid(&id, "hosts.id")?,
                        org_id: uuid(&org, "hosts.org_id")?,
                    })
                })
                .transpose()
            }

            async fn revoke_host(&self, org_id: Uuid, host_id: Uuid) -> Result<bool> {
                let done =
                    sqlx::query("UPDATE hosts SET revoked = $3 WHERE id = $1 AND org_id = $2")
                        .bind(host_id.to_string())
                        .bind(org_id.to_string())
                        .bind(true)
                        .execute(&self.writer)
                        .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn record_heartbeats(
                &self,
                batch: &[HeartbeatWrite],
                history_len: u32,
            ) -> Result<HeartbeatOutcome> {
                // For a host named twice in the batch the last entry wins: a multi-row
                // upsert may not touch one row twice.
                let mut last: HashMap<Uuid, usize> = HashMap::with_capacity(batch.len());
                for (i, w) in batch.iter().enumerate() {
                    last.insert(w.host_id, i);
                }
                let mut idx: Vec<usize> = last.into_values().collect();
                idx.sort_unstable();
                let mut rows = Vec::with_capacity(idx.len());
                for i in idx {
                    let w = &batch[i];
                    rows.push((
                        w.host_id.to_string(),
                        ms(w.at),
                        w.agent_version.as_str(),
                        to_json(&w.metrics, "hosts.metrics_json")?,
                    ));
                }
                let len = i64::from(history_len);
                let mut out = HeartbeatOutcome::default();
                if rows.is_empty() {
                    return Ok(out);
                }
                let mut tx = self.writer.begin().await?;
                for chunk in rows.chunks(HEARTBEAT_CHUNK) {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(
                        "UPDATE hosts SET last_seen = v.column2, metrics_at = v.column2, \
                         agent_version = v.column3, metrics_json = v.column4, \
                         heartbeat_count = hosts.heartbeat_count + 1 FROM (",
                    );
                    qb.push_values(chunk, |mut b, r| {
                        b.push_bind(r.0.as_str())
                            .push_bind(r.1)
                            .push_bind(r.2)
                            .push_bind(r.3.as_str());
                    });
                    qb.push(") AS v WHERE hosts.id = v.column1");
                    out.updated += qb.build().execute(&mut *tx).await?.rows_affected();
                    if len > 0 {
                        // The ring slot follows the host's heartbeat count, as just
                        // incremented in this transaction.
                        let mut qb = sqlx::QueryBuilder::<$db>::new(
                            "INSERT INTO metrics_history (host_id, slot, seq, at, metrics_json) \
                             SELECT hosts.id, hosts.heartbeat_count % ",
                        );
                        qb.push_bind(len);
                        qb.push(", hosts.heartbeat_count, v.column2, v.column3 FROM hosts JOIN (");
                        qb.push_values(chunk, |mut b, r| {
                            b.push_bind(r.0.as_str()).push_bind(r.1).push_bind(r.3.as_str());
                        });
                        qb.push(
                            ") AS v ON hosts.id = v.column1 WHERE true \
                             ON CONFLICT (host_id, slot) DO UPDATE SET \
                             seq = excluded.seq, at = excluded.at, metrics_json = excluded.metrics_json",
                        );
                        qb.build().execute(&mut *tx).await?;
                    }
                    let mut qb = sqlx::QueryBuilder::<$db>::new(
                        "SELECT DISTINCT host_id FROM commands WHERE state IN (",
                    );
                    qb.push_bind(CommandState::Queued.as_str());
                    qb.push(", ");
                    qb.push_bind(CommandState::Delivered.as_str());
                    qb.push(") AND host_id IN (");
                    let mut sep = qb.separated(", ");
                    for r in chunk {
                        sep.push_bind(r.0.as_str());
                    }
                    sep.push_unseparated(")");
                    let ids: Vec<String> = qb.build_query_scalar().fetch_all(&mut *tx).await?;
                    for id in ids {
                        out.pending_commands.push(uuid(&id, "commands.host_id")?);
                    }
                }
                tx.commit().await?;
                Ok(out)
            }

            async fn trim_metrics_history(&self, history_len: u32) -> Result<u64> {
                let done = sqlx::query("DELETE FROM metrics_history WHERE slot >= $1")
                    .bind(i64::from(history_len))
                    .execute(&self.writer)
                    .await?;
                Ok(done.rows_affected())
            }

            async fn list_hosts(&self, org_id: Uuid) -> Result<Vec<HostRow>> {
                let rows: Vec<HostDb> = sqlx::query_as(concat!(
                    "SELECT ",
                    host_columns!(),
                    " FROM hosts WHERE org_id = $1 ORDER BY hostname, id"
                ))
                .bind(org_id.to_string())
                .fetch_all(&self.reader)
                .await?;
                rows.into_iter().map(HostDb::decode).collect()
            }

            async fn host(&self, org_id: Uuid, host_id: Uuid) -> Result<Option<HostRow>> {
                let row: Option<HostDb> = sqlx::query_as(concat!(
                    "SELECT ",
                    host_columns!(),
                    " FROM hosts WHERE id = $1 AND org_id = $2"
                ))
                .bind(host_id.to_string())
                .bind(org_id.to_string())
                .fetch_optional(&self.reader)
                .await?;
                row.map(HostDb::decode).transpose()
            }

            async fn hosts_by_name(&self, org_id: Uuid, hostname: &str) -> Result<Vec<HostRow>> {
                let rows: Vec<HostDb> = sqlx::query_as(concat!(
                    "SELECT ",
                    host_columns!(),
                    " FROM hosts WHERE org_id = $1 AND hostname = $2 ORDER BY enrolled_at, id"
                ))
                .bind(org_id.to_string())
                .bind(hostname)
                .fetch_all(&self.reader)
                .await?;
                rows.into_iter().map(HostDb::decode).collect()
            }

            async fn metrics_history(
                &self,
                org_id: Uuid,
                host_id: Uuid,
            ) -> Result<Vec<(DateTime<Utc>, Metrics)>> {
                let rows: Vec<HistoryDb> = sqlx::query_as(
                    "SELECT m.at, m.metrics_json \
                     FROM metrics_history m JOIN hosts h ON h.id = m.host_id \
                     WHERE m.host_id = $1 AND h.org_id = $2 \
                     ORDER BY m.at, m.seq",
                )
                .bind(host_id.to_string())
                .bind(org_id.to_string())
                .fetch_all(&self.reader)
                .await?;
                rows.into_iter().map(HistoryDb::decode).collect()
            }

            async fn all_hosts(&self) -> Result<Vec<HostRow>> {
                let rows: Vec<HostDb> = sqlx::query_as(concat!(
                    "SELECT ",
                    host_columns!(),
                    " FROM hosts WHERE NOT revoked ORDER BY org_id, hostname, id"
                ))
                .fetch_all(&self.reader)
                .await?;
                rows.into_iter().map(HostDb::decode).collect()
            }
        }
    };
}

impl_hosts!(SqliteStore, sqlx::Sqlite);
impl_hosts!(PostgresStore, sqlx::Postgres);
