//! The SQL of [`HostStore`]: `hosts` (credentials, approval, the latest heartbeat and
//! metrics, listing). Enrollment's SQL is in `enroll.rs`, the heartbeat batch's and the
//! `metrics_history` ring's in `heartbeats.rs`; the trait's methods here delegate to
//! them. A change of a host's standing (revoked, approved, rejected, credential
//! promoted) announces [`Change::Standing`] with its write (`commit_announcing`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use patchctl_proto::agent::Metrics;
use patchctl_proto::api::HostStatus;
use patchctl_proto::trust::Approval;
use uuid::Uuid;

use super::host_list::{ListBind, host_list_order, host_list_where};
use super::{
    PostgresStore, SqliteStore, conflict, corrupt, count, from_json, ms, opt_time, time, uuid,
};
use crate::changes::Change;
use crate::error::Result;
use crate::hosts::{
    AgentVersionCount, ApprovalChange, CredentialSlot, EnrollHost, Enrollment, FleetCounts,
    HeartbeatOutcome, HeartbeatWrite, HostAuth, HostListPage, HostListQuery, HostRow,
    HostStatusCount, HostStore, NewHost,
};

/// The columns of `hosts` that make a [`HostRow`] (see [`HostDb`]).
macro_rules! host_columns {
    () => {
        "id, org_id, hostname, system_json, agent_version, enrolled_at, last_seen, revoked, \
         approval, credential_issued_at, metrics_json, metrics_at, inventory_scanned_at, \
         package_manager, package_count, update_count, security_update_count, agent_target, \
         update_step, update_version, update_detail, update_at, reboot_required, \
         reboot_reasons_json, reboot_since, booted_at"
    };
}

/// Hosts per organisation and status, the host listing's rule in SQL: revoked, else
/// pending, else online when seen at or after `$1`, else offline.
const HOST_STATUS_COUNTS: &str = "SELECT h.org_id, o.name, \
     CASE WHEN h.revoked THEN 'revoked' WHEN h.approval = 'pending' THEN 'pending' \
     WHEN h.last_seen >= $1 THEN 'online' ELSE 'offline' END AS host_status, COUNT(*) AS n \
     FROM hosts h JOIN orgs o ON o.id = h.org_id \
     GROUP BY h.org_id, o.name, host_status ORDER BY o.name, host_status";

/// Hosts that are not revoked per organisation and agent version.
const AGENT_VERSION_COUNTS: &str = "SELECT h.org_id, o.name, h.agent_version, COUNT(*) AS n \
     FROM hosts h JOIN orgs o ON o.id = h.org_id WHERE NOT h.revoked \
     GROUP BY h.org_id, o.name, h.agent_version ORDER BY o.name, h.agent_version";

/// A status as [`HOST_STATUS_COUNTS`] names it.
fn host_status(s: &str) -> Result<HostStatus> {
    [
        HostStatus::Online,
        HostStatus::Offline,
        HostStatus::Revoked,
        HostStatus::Pending,
    ]
    .into_iter()
    .find(|x| x.as_str() == s)
    .ok_or_else(|| corrupt("hosts (status)", format!("unknown value {s:?}")))
}

/// A stored approval.
fn approval(s: &str) -> Result<Approval> {
    Approval::parse(s).ok_or_else(|| corrupt("hosts.approval", format!("unknown value {s:?}")))
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
    approval: String,
    credential_issued_at: i64,
    metrics_json: Option<String>,
    metrics_at: Option<i64>,
    inventory_scanned_at: Option<i64>,
    package_manager: Option<String>,
    package_count: i64,
    update_count: i64,
    security_update_count: i64,
    agent_target: Option<String>,
    update_step: Option<String>,
    update_version: Option<String>,
    update_detail: Option<String>,
    update_at: Option<i64>,
    reboot_required: bool,
    reboot_reasons_json: Option<String>,
    reboot_since: Option<i64>,
    booted_at: Option<i64>,
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
            approval: approval(&self.approval)?,
            credential_issued_at: time(self.credential_issued_at, "hosts.credential_issued_at")?,
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
            agent_target: self.agent_target,
            agent_update: super::releases::update_state(
                self.update_step,
                self.update_version,
                self.update_detail,
                self.update_at,
            )?,
            boot: super::reboots::boot(
                self.reboot_required,
                self.reboot_reasons_json.as_deref(),
                self.reboot_since,
                self.booted_at,
            )?,
        })
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
                self.insert_host(host).await
            }

            async fn enroll_host(&self, e: EnrollHost) -> Result<Enrollment> {
                self.enroll_with_key(e).await
            }

            async fn host_by_credential(
                &self,
                credential_hash: &str,
            ) -> Result<Option<HostAuth>> {
                let row: Option<(String, String, bool, String, bool)> = sqlx::query_as(
                    "SELECT id, org_id, revoked, approval, credential_hash = $1 FROM hosts \
                     WHERE credential_hash = $1 OR next_credential_hash = $1",
                )
                .bind(credential_hash)
                .fetch_optional(&self.reader)
                .await?;
                row.map(|(id, org, revoked, appr, current)| {
                    Ok(HostAuth {
                        host_id: uuid(&id, "hosts.id")?,
                        org_id: uuid(&org, "hosts.org_id")?,
                        revoked,
                        approval: approval(&appr)?,
                        slot: if current {
                            CredentialSlot::Current
                        } else {
                            CredentialSlot::Next
                        },
                    })
                })
                .transpose()
            }

            async fn revoke_host(&self, org_id: Uuid, host_id: Uuid) -> Result<bool> {
                let mut tx = self.writer.begin().await?;
                let done =
                    sqlx::query("UPDATE hosts SET revoked = $3 WHERE id = $1 AND org_id = $2")
                        .bind(host_id.to_string())
                        .bind(org_id.to_string())
                        .bind(true)
                        .execute(&mut *tx)
                        .await?;
                if done.rows_affected() == 0 {
                    return Ok(false); // Dropping `tx` rolls back.
                }
                let change = Change::Standing { host: host_id };
                self.commit_announcing(tx, &[change]).await?;
                Ok(true)
            }

            async fn set_approval(
                &self,
                org_id: Uuid,
                host_id: Uuid,
                approve: bool,
            ) -> Result<ApprovalChange> {
                let (to, revoked) = if approve {
                    (Approval::Approved, false)
                } else {
                    (Approval::Rejected, true)
                };
                let mut tx = self.writer.begin().await?;
                let done = sqlx::query(
                    "UPDATE hosts SET approval = $3, revoked = $4 \
                     WHERE id = $1 AND org_id = $2 AND approval = $5 AND NOT revoked",
                )
                .bind(host_id.to_string())
                .bind(org_id.to_string())
                .bind(to.as_str())
                .bind(revoked)
                .bind(Approval::Pending.as_str())
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() > 0 {
                    let change = Change::Standing { host: host_id };
                    self.commit_announcing(tx, &[change]).await?;
                    return Ok(ApprovalChange::Changed);
                }
                let exists: Option<(String,)> =
                    sqlx::query_as("SELECT id FROM hosts WHERE id = $1 AND org_id = $2")
                        .bind(host_id.to_string())
                        .bind(org_id.to_string())
                        .fetch_optional(&mut *tx)
                        .await?;
                tx.rollback().await?;
                Ok(if exists.is_some() {
                    ApprovalChange::NotPending
                } else {
                    ApprovalChange::NotFound
                })
            }

            async fn stage_credential(
                &self,
                host_id: Uuid,
                credential_hash: &str,
                now: DateTime<Utc>,
            ) -> Result<bool> {
                let done = sqlx::query(
                    "UPDATE hosts SET next_credential_hash = $2, next_credential_issued_at = $3 \
                     WHERE id = $1",
                )
                .bind(host_id.to_string())
                .bind(credential_hash)
                .bind(ms(now))
                .execute(&self.writer)
                .await
                .map_err(|e| conflict(e, || "a host credential with this hash".to_owned()))?;
                Ok(done.rows_affected() > 0)
            }

            async fn promote_credential(&self, host_id: Uuid, credential_hash: &str) -> Result<bool> {
                let mut tx = self.writer.begin().await?;
                let done = sqlx::query(
                    "UPDATE hosts SET credential_hash = next_credential_hash, \
                     credential_issued_at = next_credential_issued_at, \
                     next_credential_hash = NULL, next_credential_issued_at = NULL \
                     WHERE id = $1 AND next_credential_hash = $2",
                )
                .bind(host_id.to_string())
                .bind(credential_hash)
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() == 0 {
                    return Ok(false); // Dropping `tx` rolls back.
                }
                let change = Change::Standing { host: host_id };
                self.commit_announcing(tx, &[change]).await?;
                Ok(true)
            }

            async fn record_heartbeats(
                &self,
                batch: &[HeartbeatWrite],
                history_len: u32,
            ) -> Result<HeartbeatOutcome> {
                self.write_heartbeats(batch, history_len).await
            }

            async fn trim_metrics_history(&self, history_len: u32) -> Result<u64> {
                self.trim_history(history_len).await
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

            async fn host_list_page(
                &self,
                org_id: Uuid,
                q: &HostListQuery,
            ) -> Result<HostListPage> {
                let (filter, binds) = host_list_where(org_id, q);
                let count_sql = format!("SELECT COUNT(*){filter}");
                let mut count_q = sqlx::query_as::<_, (i64,)>(&count_sql);
                for b in &binds {
                    count_q = match b {
                        ListBind::Text(t) => count_q.bind(t.clone()),
                        ListBind::Int(i) => count_q.bind(*i),
                    };
                }
                let (total,) = count_q.fetch_one(&self.reader).await?;
                let n = binds.len();
                let page_sql = format!(
                    "SELECT {}{filter} ORDER BY {} LIMIT ${} OFFSET ${}",
                    host_columns!(),
                    host_list_order(q.sort),
                    n + 1,
                    n + 2
                );
                let mut page_q = sqlx::query_as::<_, HostDb>(&page_sql);
                for b in &binds {
                    page_q = match b {
                        ListBind::Text(t) => page_q.bind(t.clone()),
                        ListBind::Int(i) => page_q.bind(*i),
                    };
                }
                let rows = page_q
                    .bind(i64::from(q.limit))
                    .bind(i64::try_from(q.offset).unwrap_or(i64::MAX))
                    .fetch_all(&self.reader)
                    .await?;
                Ok(HostListPage {
                    hosts: rows.into_iter().map(HostDb::decode).collect::<Result<_>>()?,
                    total: count(total, "hosts")?,
                })
            }

            async fn fleet_counts(
                &self,
                org_id: Uuid,
                online_since: DateTime<Utc>,
            ) -> Result<FleetCounts> {
                type Row = (i64, i64, i64, i64, i64, i64, i64, i64);
                let r: Row = sqlx::query_as(
                    "SELECT COUNT(*), \
                     CAST(COALESCE(SUM(CASE WHEN revoked THEN 1 ELSE 0 END), 0) AS BIGINT), \
                     CAST(COALESCE(SUM(CASE WHEN NOT revoked AND approval = 'pending' THEN 1 ELSE 0 END), 0) AS BIGINT), \
                     CAST(COALESCE(SUM(CASE WHEN NOT revoked AND approval <> 'pending' AND last_seen >= $2 THEN 1 ELSE 0 END), 0) AS BIGINT), \
                     CAST(COALESCE(SUM(CASE WHEN NOT revoked THEN update_count ELSE 0 END), 0) AS BIGINT), \
                     CAST(COALESCE(SUM(CASE WHEN NOT revoked THEN security_update_count ELSE 0 END), 0) AS BIGINT), \
                     CAST(COALESCE(SUM(CASE WHEN NOT revoked AND update_count > 0 THEN 1 ELSE 0 END), 0) AS BIGINT), \
                     CAST(COALESCE(SUM(CASE WHEN NOT revoked AND security_update_count > 0 THEN 1 ELSE 0 END), 0) AS BIGINT) \
                     FROM hosts WHERE org_id = $1",
                )
                .bind(org_id.to_string())
                .bind(ms(online_since))
                .fetch_one(&self.reader)
                .await?;
                let versions: Vec<(String, i64)> = sqlx::query_as(
                    "SELECT agent_version, COUNT(*) FROM hosts WHERE org_id = $1 AND NOT revoked \
                     GROUP BY agent_version ORDER BY COUNT(*) DESC, agent_version",
                )
                .bind(org_id.to_string())
                .fetch_all(&self.reader)
                .await?;
                let n = |v: i64| count::<u64>(v, "hosts");
                let (total, revoked, pending, online) = (n(r.0)?, n(r.1)?, n(r.2)?, n(r.3)?);
                Ok(FleetCounts {
                    online,
                    offline: total.saturating_sub(revoked + pending + online),
                    pending,
                    revoked,
                    updates: n(r.4)?,
                    security_updates: n(r.5)?,
                    hosts_with_updates: n(r.6)?,
                    hosts_with_security_updates: n(r.7)?,
                    agent_versions: versions
                        .into_iter()
                        .map(|(v, c)| Ok((v, n(c)?)))
                        .collect::<Result<_>>()?,
                })
            }

            async fn host_package_managers(&self, org_id: Uuid) -> Result<Vec<String>> {
                let rows: Vec<(String,)> = sqlx::query_as(
                    "SELECT DISTINCT package_manager FROM hosts \
                     WHERE org_id = $1 AND package_manager IS NOT NULL ORDER BY package_manager",
                )
                .bind(org_id.to_string())
                .fetch_all(&self.reader)
                .await?;
                Ok(rows.into_iter().map(|(p,)| p).collect())
            }

            async fn list_hosts_page(
                &self,
                org_id: Uuid,
                after: Option<(String, Uuid)>,
                limit: u32,
            ) -> Result<Vec<HostRow>> {
                let (name, id) = match after {
                    Some((name, id)) => (Some(name), Some(id.to_string())),
                    None => (None, None),
                };
                let rows: Vec<HostDb> = sqlx::query_as(concat!(
                    "SELECT ",
                    host_columns!(),
                    " FROM hosts WHERE org_id = $1 \
                     AND ($2 IS NULL OR hostname > $2 OR (hostname = $2 AND id > $3)) \
                     ORDER BY hostname, id LIMIT $4"
                ))
                .bind(org_id.to_string())
                .bind(name)
                .bind(id)
                .bind(i64::from(limit))
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
                self.read_history(org_id, host_id).await
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

            async fn host_status_counts(
                &self,
                online_since: DateTime<Utc>,
            ) -> Result<Vec<HostStatusCount>> {
                let rows: Vec<(String, String, String, i64)> =
                    sqlx::query_as(HOST_STATUS_COUNTS)
                        .bind(ms(online_since))
                        .fetch_all(&self.reader)
                        .await?;
                rows.into_iter()
                    .map(|(org_id, org, status, n)| {
                        Ok(HostStatusCount {
                            org_id: uuid(&org_id, "hosts.org_id")?,
                            org,
                            status: host_status(&status)?,
                            count: count(n, "COUNT(*)")?,
                        })
                    })
                    .collect()
            }

            async fn agent_version_counts(&self) -> Result<Vec<AgentVersionCount>> {
                let rows: Vec<(String, String, String, i64)> =
                    sqlx::query_as(AGENT_VERSION_COUNTS)
                        .fetch_all(&self.reader)
                        .await?;
                rows.into_iter()
                    .map(|(org_id, org, version, n)| {
                        Ok(AgentVersionCount {
                            org_id: uuid(&org_id, "hosts.org_id")?,
                            org,
                            version,
                            count: count(n, "COUNT(*)")?,
                        })
                    })
                    .collect()
            }
        }
    };
}

impl_hosts!(SqliteStore, sqlx::Sqlite);
impl_hosts!(PostgresStore, sqlx::Postgres);
