//! The SQL of [`ReleaseStore`]: `releases` (bundle and artifact of each published
//! `(product, version, target)`), `agent_rollouts` (one row per organisation that set
//! one) and `agent_update_events` (with the host's last step in `hosts.update_*`).
//!
//! Publishing inserts with `ON CONFLICT DO NOTHING` and, when nothing was inserted,
//! reads the stored release to tell the same artifact from another: a release row is
//! never updated, so no transaction is needed. The highest version is chosen in Rust
//! with `patchctl_release::ReleaseVersion`'s order, which text order is not.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use patchctl_proto::release::{AgentRollout, ReleaseBundle, ReleaseInfo, UpdateEvent, UpdateStep};
use patchctl_release::ReleaseVersion;
use uuid::Uuid;

use super::{PostgresStore, SqliteStore, corrupt, count, from_json, ms, opt_time, time, to_json};
use crate::error::{Result, StorageError};
use crate::releases::{
    NewRelease, PutRelease, ReleaseRow, ReleaseStore, RolloutRow, StoredUpdateEvent,
};

/// The columns of `releases` that make a [`ReleaseRow`] (see [`ReleaseDb`]).
macro_rules! release_columns {
    () => {
        "product, version, target, channel, sha256, size, expires_at, published_at, published_by"
    };
}

/// Update events per multi-row statement (7 bound values each).
const EVENT_CHUNK: usize = 500;

/// A row of `releases` without bundle and artifact.
#[derive(sqlx::FromRow)]
struct ReleaseDb {
    product: String,
    version: String,
    target: String,
    channel: String,
    sha256: String,
    size: i64,
    expires_at: i64,
    published_at: i64,
    published_by: String,
}

impl ReleaseDb {
    fn decode(self) -> Result<ReleaseRow> {
        Ok(ReleaseRow {
            info: ReleaseInfo {
                product: self.product,
                version: self.version,
                target: self.target,
                channel: self.channel,
                sha256: self.sha256,
                size: count(self.size, "releases.size")?,
                expires: time(self.expires_at, "releases.expires_at")?,
                published_at: time(self.published_at, "releases.published_at")?,
            },
            published_by: self.published_by,
        })
    }
}

/// A row of `agent_update_events`.
#[derive(sqlx::FromRow)]
struct EventDb {
    at: i64,
    step: String,
    version: String,
    detail: Option<String>,
    received_at: i64,
}

impl EventDb {
    fn decode(self) -> Result<StoredUpdateEvent> {
        Ok(StoredUpdateEvent {
            event: UpdateEvent {
                at: time(self.at, "agent_update_events.at")?,
                step: step(&self.step, "agent_update_events.step")?,
                version: self.version,
                detail: self.detail,
            },
            received_at: time(self.received_at, "agent_update_events.received_at")?,
        })
    }
}

/// A stored update step.
pub(super) fn step(s: &str, column: &str) -> Result<UpdateStep> {
    UpdateStep::parse(s).ok_or_else(|| corrupt(column, format!("unknown step {s:?}")))
}

/// A canary share as stored, refusing one outside 1–100.
fn canary_column(percent: Option<u8>) -> Result<Option<i64>> {
    match percent {
        Some(p) if !(1..=100).contains(&p) => Err(StorageError::Invalid(format!(
            "a canary of {p} %: use 1 to 100, or none for every host"
        ))),
        p => Ok(p.map(i64::from)),
    }
}

/// The release with the highest version (rows whose version does not parse, which a
/// verified release cannot have, are passed over).
fn highest(rows: Vec<ReleaseDb>) -> Result<Option<ReleaseRow>> {
    let best = rows
        .into_iter()
        .filter_map(|r| ReleaseVersion::parse(&r.version).ok().map(|v| (v, r)))
        .max_by(|a, b| a.0.cmp(&b.0));
    best.map(|(_, r)| r.decode()).transpose()
}

/// Implements [`ReleaseStore`] for `$store` (a struct with `writer` and `reader` pools
/// of database `$db`).
macro_rules! impl_releases {
    ($store:ident, $db:ty) => {
        #[async_trait]
        impl ReleaseStore for $store {
            async fn put_release(&self, r: &NewRelease) -> Result<PutRelease> {
                let size = i64::try_from(r.artifact.len())
                    .map_err(|_| StorageError::Invalid("an artifact this large".into()))?;
                let bundle_json = to_json(&r.bundle, "releases.bundle_json")?;
                let done = sqlx::query(
                    "INSERT INTO releases (product, version, target, channel, sha256, size, \
                     expires_at, bundle_json, artifact, published_at, published_by) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
                     ON CONFLICT (product, version, target) DO NOTHING",
                )
                .bind(&r.product)
                .bind(&r.version)
                .bind(&r.target)
                .bind(&r.channel)
                .bind(&r.sha256)
                .bind(size)
                .bind(ms(r.expires))
                .bind(&bundle_json)
                .bind(&r.artifact)
                .bind(ms(r.published_at))
                .bind(&r.published_by)
                .execute(&self.writer)
                .await?;
                let stored: ReleaseDb = sqlx::query_as(concat!(
                    "SELECT ",
                    release_columns!(),
                    " FROM releases WHERE product = $1 AND version = $2 AND target = $3"
                ))
                .bind(&r.product)
                .bind(&r.version)
                .bind(&r.target)
                .fetch_one(&self.writer)
                .await?;
                let row = stored.decode()?;
                Ok(if done.rows_affected() > 0 {
                    PutRelease::Created(row)
                } else if row.info.sha256 == r.sha256 {
                    PutRelease::Unchanged(row)
                } else {
                    PutRelease::Conflict(row)
                })
            }

            async fn list_releases(&self) -> Result<Vec<ReleaseRow>> {
                let rows: Vec<ReleaseDb> = sqlx::query_as(concat!(
                    "SELECT ",
                    release_columns!(),
                    " FROM releases ORDER BY published_at DESC, product, version DESC, target"
                ))
                .fetch_all(&self.reader)
                .await?;
                rows.into_iter().map(ReleaseDb::decode).collect()
            }

            async fn release_bundle(
                &self,
                product: &str,
                version: &str,
                target: &str,
            ) -> Result<Option<ReleaseBundle>> {
                let row: Option<(String,)> = sqlx::query_as(
                    "SELECT bundle_json FROM releases \
                     WHERE product = $1 AND version = $2 AND target = $3",
                )
                .bind(product)
                .bind(version)
                .bind(target)
                .fetch_optional(&self.reader)
                .await?;
                row.map(|(j,)| from_json(&j, "releases.bundle_json"))
                    .transpose()
            }

            async fn release_artifact(
                &self,
                product: &str,
                version: &str,
                target: &str,
            ) -> Result<Option<Vec<u8>>> {
                let row: Option<(Vec<u8>,)> = sqlx::query_as(
                    "SELECT artifact FROM releases \
                     WHERE product = $1 AND version = $2 AND target = $3",
                )
                .bind(product)
                .bind(version)
                .bind(target)
                .fetch_optional(&self.reader)
                .await?;
                Ok(row.map(|(a,)| a))
            }

            async fn latest_release(
                &self,
                product: &str,
                target: &str,
            ) -> Result<Option<ReleaseRow>> {
                let rows: Vec<ReleaseDb> = sqlx::query_as(concat!(
                    "SELECT ",
                    release_columns!(),
                    " FROM releases WHERE product = $1 AND target = $2"
                ))
                .bind(product)
                .bind(target)
                .fetch_all(&self.reader)
                .await?;
                highest(rows)
            }

            async fn agent_rollout(&self, org_id: Uuid) -> Result<RolloutRow> {
                let row: Option<(Option<String>, Option<i64>, i64, String)> = sqlx::query_as(
                    "SELECT version, canary_percent, updated_at, updated_by \
                     FROM agent_rollouts WHERE org_id = $1",
                )
                .bind(org_id.to_string())
                .fetch_optional(&self.reader)
                .await?;
                let Some((version, canary, at, by)) = row else {
                    return Ok(RolloutRow::default());
                };
                let canary_percent = canary
                    .map(|c| {
                        u8::try_from(c).map_err(|_| corrupt("agent_rollouts.canary_percent", c))
                    })
                    .transpose()?;
                Ok(RolloutRow {
                    rollout: AgentRollout {
                        version,
                        canary_percent,
                    },
                    updated_at: Some(time(at, "agent_rollouts.updated_at")?),
                    updated_by: Some(by),
                })
            }

            async fn set_agent_rollout(
                &self,
                org_id: Uuid,
                rollout: &AgentRollout,
                actor: &str,
                now: DateTime<Utc>,
            ) -> Result<bool> {
                let canary = canary_column(rollout.canary_percent)?;
                let done = sqlx::query(
                    "INSERT INTO agent_rollouts \
                     (org_id, version, canary_percent, updated_at, updated_by) \
                     SELECT id, $2, $3, $4, $5 FROM orgs WHERE id = $1 \
                     ON CONFLICT (org_id) DO UPDATE SET version = excluded.version, \
                     canary_percent = excluded.canary_percent, \
                     updated_at = excluded.updated_at, updated_by = excluded.updated_by",
                )
                .bind(org_id.to_string())
                .bind(rollout.version.as_deref())
                .bind(canary)
                .bind(ms(now))
                .bind(actor)
                .execute(&self.writer)
                .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn record_update_events(
                &self,
                host_id: Uuid,
                events: &[UpdateEvent],
                received_at: DateTime<Utc>,
            ) -> Result<bool> {
                let Some(last) = events.last() else {
                    return Ok(true);
                };
                let host = host_id.to_string();
                let received = ms(received_at);
                let mut tx = self.writer.begin().await?;
                let done = sqlx::query(
                    "UPDATE hosts SET update_step = $2, update_version = $3, \
                     update_detail = $4, update_at = $5 WHERE id = $1",
                )
                .bind(&host)
                .bind(last.step.as_str())
                .bind(&last.version)
                .bind(last.detail.as_deref())
                .bind(ms(last.at))
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() == 0 {
                    return Ok(false);
                }
                for (n, chunk) in events.chunks(EVENT_CHUNK).enumerate() {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO agent_update_events \
                         (host_id, seq, at, step, version, detail, received_at) ",
                    );
                    qb.push_values(chunk.iter().enumerate(), |mut b, (i, e)| {
                        let seq = (n * EVENT_CHUNK + i) as i64;
                        b.push_bind(host.as_str())
                            .push_bind(seq)
                            .push_bind(ms(e.at))
                            .push_bind(e.step.as_str())
                            .push_bind(e.version.as_str())
                            .push_bind(e.detail.as_deref())
                            .push_bind(received);
                    });
                    qb.build().execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(true)
            }

            async fn update_events(
                &self,
                org_id: Uuid,
                host_id: Uuid,
                limit: u32,
            ) -> Result<Vec<StoredUpdateEvent>> {
                let rows: Vec<EventDb> = sqlx::query_as(
                    "SELECT e.at, e.step, e.version, e.detail, e.received_at \
                     FROM agent_update_events e JOIN hosts h ON h.id = e.host_id \
                     WHERE e.host_id = $1 AND h.org_id = $2 \
                     ORDER BY e.received_at DESC, e.seq DESC LIMIT $3",
                )
                .bind(host_id.to_string())
                .bind(org_id.to_string())
                .bind(i64::from(limit))
                .fetch_all(&self.reader)
                .await?;
                let mut out = rows
                    .into_iter()
                    .map(EventDb::decode)
                    .collect::<Result<Vec<_>>>()?;
                out.reverse();
                Ok(out)
            }
        }
    };
}

impl_releases!(SqliteStore, sqlx::Sqlite);
impl_releases!(PostgresStore, sqlx::Postgres);

/// The host's stored update state (`hosts.update_*`), for `sql/hosts.rs`.
pub(super) fn update_state(
    step_col: Option<String>,
    version: Option<String>,
    detail: Option<String>,
    at: Option<i64>,
) -> Result<Option<patchctl_proto::release::HostUpdateState>> {
    let (Some(s), Some(version), Some(at)) = (step_col, version, opt_time(at, "hosts.update_at")?)
    else {
        return Ok(None);
    };
    Ok(Some(patchctl_proto::release::HostUpdateState {
        step: step(&s, "hosts.update_step")?,
        version,
        detail,
        at,
    }))
}
