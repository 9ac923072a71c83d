//! The SQL of enrollment: a host created with a key ([`HostStore::enroll_host`]) or by
//! the platform itself ([`HostStore::create_host`]); `hosts.rs` delegates to it.
//!
//! Enrollment counts the key's use with one conditional `UPDATE ... RETURNING` in the
//! transaction that creates the host: PostgreSQL re-checks the condition on the row a
//! concurrent enrollment just updated, and SQLite has one writer, so a key never enrolls
//! more hosts than its maximum.
//!
//! That update is the transaction's last statement. It takes the key's row lock, which
//! every enrollment with the same key waits for, so the lock is held from the update to
//! the commit and not across the reads and the insert before it: enrollments with one
//! shared key (a whole fleet's, say) queue for two round trips each, not four. The
//! insert's foreign key check takes the row's `KEY SHARE` lock, which the update's
//! `NO KEY UPDATE` lock does not wait for.
//!
//! [`HostStore::enroll_host`]: crate::hosts::HostStore::enroll_host
//! [`HostStore::create_host`]: crate::hosts::HostStore::create_host

use chrono::{DateTime, Utc};
use patchctl_proto::trust::Approval;
use uuid::Uuid;

use super::{PostgresStore, SqliteStore, conflict, ms, to_json, trunc, uuid};
use crate::error::Result;
use crate::hosts::{EnrollHost, Enrollment, HostRow, KeyRefusal, NewHost};

/// Creates a host: id, organisation, key, credential hash, approval, host name, system
/// JSON, agent version, enrollment time (also the credential's issue time).
const INSERT_HOST: &str = "INSERT INTO hosts (id, org_id, enrollment_key_id, credential_hash, \
     revoked, approval, hostname, system_json, agent_version, enrolled_at, \
     credential_issued_at, package_count, heartbeat_count) \
     VALUES ($1, $2, $3, $4, FALSE, $5, $6, $7, $8, $9, $9, 0, 0)";

/// The key a secret names, with its organisation's approval rule and the limits
/// [`refusal`] reads.
const KEY_FOR_ENROLLMENT: &str = "SELECT k.id, k.org_id, o.require_approval, \
     k.revoked_at, k.expires_at, k.max_uses, k.uses \
     FROM enrollment_keys k JOIN orgs o ON o.id = k.org_id WHERE k.key_hash = $1";

/// Counts one use of key `$1` at `$2` if it may still enroll; no row when it may not.
const COUNT_USE: &str = "UPDATE enrollment_keys SET uses = uses + 1 \
     WHERE id = $1 AND revoked_at IS NULL \
     AND (expires_at IS NULL OR expires_at > $2) \
     AND (max_uses IS NULL OR uses < max_uses) \
     RETURNING id";

/// A key's stored `revoked_at`, `expires_at`, `max_uses` and `uses`.
type KeyLimits = (Option<i64>, Option<i64>, Option<i64>, i64);

/// A row of [`KEY_FOR_ENROLLMENT`]: id, organisation, approval rule, then [`KeyLimits`].
type KeyRow = (
    String,
    String,
    bool,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    i64,
);

/// Why a key whose use could not be counted enrolls nothing, from its stored limits
/// (none: there is no such key).
fn refusal(row: Option<KeyLimits>, now: i64) -> KeyRefusal {
    match row {
        None => KeyRefusal::Unknown,
        Some((Some(_), _, _, _)) => KeyRefusal::Revoked,
        Some((None, Some(e), _, _)) if e <= now => KeyRefusal::Expired,
        Some((None, _, Some(m), uses)) if uses >= m => KeyRefusal::Exhausted,
        // Valid again at this instant (a concurrent change): refused all the same, as
        // the conditional update saw it.
        Some(_) => KeyRefusal::Exhausted,
    }
}

/// Whether a key with these limits may enroll at `now`: no refusal.
fn admits(limits: KeyLimits, now: i64) -> bool {
    let (revoked, expires, max, uses) = limits;
    revoked.is_none() && expires.is_none_or(|e| e > now) && max.is_none_or(|m| uses < m)
}

/// A new host as [`INSERT_HOST`] stored it.
fn new_host_row(
    id: Uuid,
    org_id: Uuid,
    approval: Approval,
    agent_version: String,
    system: patchctl_proto::agent::SystemInfo,
    now: DateTime<Utc>,
) -> HostRow {
    HostRow {
        id,
        org_id,
        hostname: system.hostname.clone(),
        system,
        agent_version,
        enrolled_at: trunc(now),
        last_seen: None,
        revoked: false,
        approval,
        credential_issued_at: trunc(now),
        metrics: None,
        metrics_at: None,
        inventory_scanned_at: None,
        package_manager: None,
        package_count: 0,
        update_count: 0,
        security_update_count: 0,
        agent_target: None,
        agent_update: None,
        boot: Default::default(),
    }
}

/// Implements enrollment's SQL as inherent methods of `$store`, for `hosts.rs`.
macro_rules! impl_enroll {
    ($store:ident) => {
        impl $store {
            pub(super) async fn insert_host(&self, host: NewHost) -> Result<HostRow> {
                let id = Uuid::new_v4();
                let system_json = to_json(&host.system, "hosts.system_json")?;
                sqlx::query(INSERT_HOST)
                    .bind(id.to_string())
                    .bind(host.org_id.to_string())
                    .bind(host.enrollment_key_id.to_string())
                    .bind(&host.credential_hash)
                    .bind(Approval::Approved.as_str())
                    .bind(&host.system.hostname)
                    .bind(&system_json)
                    .bind(&host.agent_version)
                    .bind(ms(host.now))
                    .execute(&self.writer)
                    .await
                    .map_err(|e| conflict(e, || "a host credential with this hash".to_owned()))?;
                Ok(new_host_row(
                    id,
                    host.org_id,
                    Approval::Approved,
                    host.agent_version,
                    host.system,
                    host.now,
                ))
            }

            /// [`HostStore::enroll_host`](crate::hosts::HostStore::enroll_host).
            pub(super) async fn enroll_with_key(&self, e: EnrollHost) -> Result<Enrollment> {
                let now = ms(e.now);
                let system_json = to_json(&e.system, "hosts.system_json")?;
                let mut tx = self.writer.begin().await?;
                let key: Option<KeyRow> = sqlx::query_as(KEY_FOR_ENROLLMENT)
                    .bind(&e.key_hash)
                    .fetch_optional(&mut *tx)
                    .await?;
                let Some((key_id, org_id, require, revoked, expires, max, uses)) = key else {
                    return Ok(Enrollment::Refused(KeyRefusal::Unknown));
                };
                let limits = (revoked, expires, max, uses);
                if !admits(limits, now) {
                    return Ok(Enrollment::Refused(refusal(Some(limits), now)));
                }
                let key_uuid = uuid(&key_id, "enrollment_keys.id")?;
                let org_uuid = uuid(&org_id, "enrollment_keys.org_id")?;
                let approval = if require {
                    Approval::Pending
                } else {
                    Approval::Approved
                };
                let id = Uuid::new_v4();
                sqlx::query(INSERT_HOST)
                    .bind(id.to_string())
                    .bind(&org_id)
                    .bind(&key_id)
                    .bind(&e.credential_hash)
                    .bind(approval.as_str())
                    .bind(&e.system.hostname)
                    .bind(&system_json)
                    .bind(&e.agent_version)
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| conflict(e, || "a host credential with this hash".to_owned()))?;
                // Last, so that the key's row lock is held only until the commit.
                let counted: Option<(String,)> = sqlx::query_as(COUNT_USE)
                    .bind(&key_id)
                    .bind(now)
                    .fetch_optional(&mut *tx)
                    .await?;
                if counted.is_none() {
                    // A concurrent enrollment took the last use, or the key was revoked
                    // meanwhile: the host goes with the transaction.
                    let row: Option<KeyRow> = sqlx::query_as(KEY_FOR_ENROLLMENT)
                        .bind(&e.key_hash)
                        .fetch_optional(&mut *tx)
                        .await?;
                    let limits = row.map(|(_, _, _, r, x, m, u)| (r, x, m, u));
                    tx.rollback().await?;
                    return Ok(Enrollment::Refused(refusal(limits, now)));
                }
                tx.commit().await?;
                Ok(Enrollment::Enrolled {
                    host: Box::new(new_host_row(
                        id,
                        org_uuid,
                        approval,
                        e.agent_version,
                        e.system,
                        e.now,
                    )),
                    key_id: key_uuid,
                })
            }
        }
    };
}

impl_enroll!(SqliteStore);
impl_enroll!(PostgresStore);
