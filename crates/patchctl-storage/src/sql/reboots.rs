//! The SQL of [`RebootStore`]: the reboot columns of `hosts` (migration 0012). The
//! heartbeat group commit writes the same columns in `sql/hosts.rs` with the same rule
//! ([`REBOOT_SET`]'s shape): a need that starts gets `since = now`, one that goes on
//! keeps it, none clears it; an unreported need or boot time leaves the stored one.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{ID_CHUNK, PostgresStore, SqliteStore, count, from_json, ms, opt_time, to_json, uuid};
use crate::error::Result;
use crate::reboots::{
    HostBoot, HostBootState, RebootLine, RebootReport, RebootStore, bounded_reasons,
};

/// A scan's reboot report: `$1` host, `$2` required (NULL: not reported), `$3` the
/// reasons' JSON, `$4` now, `$5` boot time (NULL: not reported). The right-hand sides
/// all read the row as it was.
const REBOOT_SET: &str = "UPDATE hosts SET \
     reboot_since = CASE WHEN COALESCE($2, reboot_required) \
     THEN COALESCE(reboot_since, $4) ELSE NULL END, \
     reboot_required = COALESCE($2, reboot_required), \
     reboot_reasons_json = CASE WHEN $2 IS NULL THEN reboot_reasons_json ELSE $3 END, \
     booted_at = COALESCE($5, booted_at) \
     WHERE id = $1";

/// The reasons' JSON as stored for a report (none when the need was not reported).
pub(super) fn reasons_json(report: &RebootReport) -> Result<Option<String>> {
    report
        .required
        .as_ref()
        .map(|(_, r)| to_json(&bounded_reasons(r), "hosts.reboot_reasons_json"))
        .transpose()
}

/// Decodes the reboot columns of a row of `hosts`.
pub(super) fn boot(
    required: bool,
    reasons_json: Option<&str>,
    since: Option<i64>,
    booted_at: Option<i64>,
) -> Result<HostBoot> {
    Ok(HostBoot {
        reboot_required: required,
        reasons: reasons_json
            .map(|s| from_json(s, "hosts.reboot_reasons_json"))
            .transpose()?
            .unwrap_or_default(),
        since: opt_time(since, "hosts.reboot_since")?,
        booted_at: opt_time(booted_at, "hosts.booted_at")?,
    })
}

/// A row of the list of hosts needing a reboot.
#[derive(sqlx::FromRow)]
struct LineDb {
    id: String,
    hostname: String,
    system_json: String,
    last_seen: Option<i64>,
    reboot_reasons_json: Option<String>,
    reboot_since: Option<i64>,
    booted_at: Option<i64>,
}

impl LineDb {
    fn decode(self) -> Result<RebootLine> {
        let system: patchctl_proto::agent::SystemInfo =
            from_json(&self.system_json, "hosts.system_json")?;
        Ok(RebootLine {
            host_id: uuid(&self.id, "hosts.id")?,
            hostname: self.hostname,
            os: system.os.pretty_name,
            last_seen: opt_time(self.last_seen, "hosts.last_seen")?,
            boot: boot(
                true,
                self.reboot_reasons_json.as_deref(),
                self.reboot_since,
                self.booted_at,
            )?,
        })
    }
}

/// A row of [`RebootStore::host_boot_state`].
#[derive(sqlx::FromRow)]
struct StateDb {
    id: String,
    last_seen: Option<i64>,
    booted_at: Option<i64>,
    reboot_required: bool,
}

/// Implements [`RebootStore`] for `$store` (a struct with `writer` and `reader` pools
/// of database `$db`).
macro_rules! impl_reboots {
    ($store:ident, $db:ty) => {
        #[async_trait]
        impl RebootStore for $store {
            async fn record_reboot_state(
                &self,
                host_id: Uuid,
                report: &RebootReport,
                now: DateTime<Utc>,
            ) -> Result<bool> {
                let done = sqlx::query(REBOOT_SET)
                    .bind(host_id.to_string())
                    .bind(report.required.as_ref().map(|(r, _)| *r))
                    .bind(reasons_json(report)?)
                    .bind(ms(now))
                    .bind(report.booted_at.map(ms))
                    .execute(&self.writer)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn reboot_page(
                &self,
                org_id: Uuid,
                after: Option<(DateTime<Utc>, Uuid)>,
                limit: u32,
            ) -> Result<(Vec<RebootLine>, u64)> {
                let total = self.reboot_count(org_id).await?;
                if limit == 0 {
                    return Ok((Vec::new(), total));
                }
                let mut qb = sqlx::QueryBuilder::<$db>::new(
                    "SELECT id, hostname, system_json, last_seen, reboot_reasons_json, \
                     reboot_since, booted_at FROM hosts WHERE org_id = ",
                );
                qb.push_bind(org_id.to_string());
                qb.push(" AND revoked = FALSE AND reboot_required = TRUE");
                if let Some((since, id)) = after {
                    let since = ms(since);
                    qb.push(" AND (COALESCE(reboot_since, 0) > ")
                        .push_bind(since)
                        .push(" OR (COALESCE(reboot_since, 0) = ")
                        .push_bind(since)
                        .push(" AND id > ")
                        .push_bind(id.to_string())
                        .push("))");
                }
                qb.push(" ORDER BY COALESCE(reboot_since, 0), id LIMIT ")
                    .push_bind(i64::from(limit));
                let rows: Vec<LineDb> = qb.build_query_as().fetch_all(&self.reader).await?;
                let lines = rows
                    .into_iter()
                    .map(LineDb::decode)
                    .collect::<Result<Vec<_>>>()?;
                Ok((lines, total))
            }

            async fn reboot_count(&self, org_id: Uuid) -> Result<u64> {
                let (n,): (i64,) = sqlx::query_as(
                    "SELECT COUNT(*) FROM hosts WHERE org_id = $1 AND revoked = FALSE \
                     AND reboot_required = TRUE",
                )
                .bind(org_id.to_string())
                .fetch_one(&self.reader)
                .await?;
                count(n, "hosts (reboot count)")
            }

            async fn host_boot_state(
                &self,
                org_id: Uuid,
                host_ids: &[Uuid],
            ) -> Result<Vec<HostBootState>> {
                let mut found = std::collections::HashMap::with_capacity(host_ids.len());
                for chunk in host_ids.chunks(ID_CHUNK) {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(
                        "SELECT id, last_seen, booted_at, reboot_required FROM hosts \
                         WHERE org_id = ",
                    );
                    qb.push_bind(org_id.to_string());
                    qb.push(" AND id IN (");
                    let mut sep = qb.separated(", ");
                    for id in chunk {
                        sep.push_bind(id.to_string());
                    }
                    sep.push_unseparated(")");
                    let rows: Vec<StateDb> = qb.build_query_as().fetch_all(&self.reader).await?;
                    for r in rows {
                        let id = uuid(&r.id, "hosts.id")?;
                        found.insert(
                            id,
                            HostBootState {
                                host_id: id,
                                last_seen: opt_time(r.last_seen, "hosts.last_seen")?,
                                booted_at: opt_time(r.booted_at, "hosts.booted_at")?,
                                reboot_required: r.reboot_required,
                            },
                        );
                    }
                }
                Ok(host_ids.iter().filter_map(|id| found.remove(id)).collect())
            }
        }
    };
}

impl_reboots!(SqliteStore, sqlx::Sqlite);
impl_reboots!(PostgresStore, sqlx::Postgres);
