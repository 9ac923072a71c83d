//! The SQL of heartbeats: the group-committed batch ([`HostStore::record_heartbeats`])
//! and the `metrics_history` ring it fills, trimmed and read back; `hosts.rs` delegates
//! to it.
//!
//! [`HostStore::record_heartbeats`]: crate::hosts::HostStore::record_heartbeats

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use patchctl_proto::agent::Metrics;
use patchctl_proto::api::CommandState;
use uuid::Uuid;

use super::{PostgresStore, SqliteStore, from_json, ms, time, to_json, uuid};
use crate::error::Result;
use crate::hosts::{HeartbeatOutcome, HeartbeatWrite};

/// Heartbeats per multi-row statement (8 bound values each; far below SQLite's 32766).
const HEARTBEAT_CHUNK: usize = 500;

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

/// Implements the heartbeats' SQL as inherent methods of `$store` (a store of database
/// `$db`), for `hosts.rs`.
macro_rules! impl_heartbeats {
    ($store:ident, $db:ty) => {
        impl $store {
            pub(super) async fn write_heartbeats(
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
                        w.agent_target.as_deref(),
                        w.reboot.required.as_ref().map(|(r, _)| *r),
                        super::reboots::reasons_json(&w.reboot)?,
                        w.reboot.booted_at.map(ms),
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
                         agent_target = v.column5, heartbeat_count = hosts.heartbeat_count + 1, \
                         reboot_since = CASE WHEN COALESCE(v.column6, hosts.reboot_required) \
                         THEN COALESCE(hosts.reboot_since, v.column2) ELSE NULL END, \
                         reboot_required = COALESCE(v.column6, hosts.reboot_required), \
                         reboot_reasons_json = CASE WHEN v.column6 IS NULL \
                         THEN hosts.reboot_reasons_json ELSE v.column7 END, \
                         booted_at = COALESCE(v.column8, hosts.booted_at) FROM (",
                    );
                    qb.push_values(chunk, |mut b, r| {
                        b.push_bind(r.0.as_str())
                            .push_bind(r.1)
                            .push_bind(r.2)
                            .push_bind(r.3.as_str())
                            .push_bind(r.4)
                            .push_bind(r.5)
                            .push_bind(r.6.as_deref())
                            .push_bind(r.7);
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

            pub(super) async fn trim_history(&self, history_len: u32) -> Result<u64> {
                let done = sqlx::query("DELETE FROM metrics_history WHERE slot >= $1")
                    .bind(i64::from(history_len))
                    .execute(&self.writer)
                    .await?;
                Ok(done.rows_affected())
            }

            pub(super) async fn read_history(
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
        }
    };
}

impl_heartbeats!(SqliteStore, sqlx::Sqlite);
impl_heartbeats!(PostgresStore, sqlx::Postgres);
