//! The SQL of [`ScanStore`]: a host's scan columns in `hosts` (system identification,
//! package manager, scan digest, updates and their counts), its `packages` and its
//! `available_updates`, and the delta chain (`hosts.delta_chain`, migration 0019).
//! Storing a scan replaces all of them in one transaction, which announces
//! [`Change::Scan`] (`commit_announcing`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use patchctl_proto::agent::{InstalledPackage, InventoryUpload};
use patchctl_proto::api::HostUpdates;
use patchctl_proto::scan::{PackageRow, ScanState, ScanUpdates};
use uuid::Uuid;

use super::{PostgresStore, SqliteStore, corrupt, count, from_json, ms, opt_time, to_json, uuid};
use crate::changes::Change;
use crate::error::Result;
use crate::scans::{ScanKind, ScanStore, StoredScan};

/// Packages per multi-row `INSERT` (7 parameters each: far below SQLite's 32766).
const PACKAGE_CHUNK: usize = 1_000;
/// Available updates per multi-row `INSERT` (8 parameters each).
const UPDATE_CHUNK: usize = 1_000;
/// Times [`ScanStore::scan_state`] reads again when a scan was stored between its two
/// reads.
const SCAN_READ_ATTEMPTS: usize = 3;

/// A count for storing.
fn stored_count(n: usize, column: &str) -> Result<i64> {
    i64::try_from(n).map_err(|_| corrupt(column, format!("count {n} out of range")))
}

/// The number of updates and of security updates in `updates`.
fn update_counts(updates: Option<&ScanUpdates>) -> (usize, usize) {
    updates.map_or((0, 0), |u| {
        (
            u.updates.len(),
            u.updates.iter().filter(|x| x.security).count(),
        )
    })
}

// ---------------------------------------------------------------------------------
// Rows as they come out of (and go into) the database.

/// A row of `packages`.
#[derive(sqlx::FromRow)]
struct PackageDb {
    name: String,
    version: String,
    arch: String,
    source_name: Option<String>,
    source_version: Option<String>,
    status: String,
}

impl PackageDb {
    fn decode(self) -> InstalledPackage {
        InstalledPackage {
            name: self.name,
            version: self.version,
            arch: self.arch,
            source_name: self.source_name,
            source_version: self.source_version,
            status: self.status,
        }
    }
}

/// What [`ScanStore::scan_state`] reads from `hosts`.
#[derive(sqlx::FromRow)]
struct ScanHostDb {
    scan_digest: Option<String>,
    system_json: String,
    package_manager: Option<String>,
    updates_json: Option<String>,
    delta_chain: i64,
}

/// A package row as [`ScanStore::scan_state`] reads it, beside the host's digest at the
/// time of the read (package columns are NULL for a host without packages).
#[derive(sqlx::FromRow)]
struct ScanPackageDb {
    scan_digest: Option<String>,
    name: Option<String>,
    version: Option<String>,
    arch: Option<String>,
    source_name: Option<String>,
    source_version: Option<String>,
    status: Option<String>,
}

/// What [`ScanStore::host_updates`] reads from `hosts`.
#[derive(sqlx::FromRow)]
struct UpdatesDb {
    updates_json: Option<String>,
    updates_scanned_at: Option<i64>,
    update_count: i64,
    security_update_count: i64,
}

/// One row of `available_updates`, encoded for writing.
struct UpdateRowDb<'a> {
    name: &'a str,
    arch: &'a str,
    current_version: Option<&'a str>,
    candidate_version: &'a str,
    security: bool,
    origins_json: String,
    advisories_json: String,
}

// ---------------------------------------------------------------------------------

/// Implements [`ScanStore`] for `$store` (a struct with `writer` and `reader` pools of
/// database `$db`).
macro_rules! impl_scans {
    ($store:ident, $db:ty) => {
        impl $store {
            /// Replaces the packages of `host` with `packages` inside `tx`.
            async fn replace_packages(
                tx: &mut sqlx::Transaction<'_, $db>,
                host: &str,
                packages: &[InstalledPackage],
            ) -> Result<()> {
                sqlx::query("DELETE FROM packages WHERE host_id = $1")
                    .bind(host)
                    .execute(&mut **tx)
                    .await?;
                for chunk in packages.chunks(PACKAGE_CHUNK) {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO packages \
                         (host_id, name, version, arch, source_name, source_version, status) ",
                    );
                    qb.push_values(chunk, |mut b, p| {
                        b.push_bind(host)
                            .push_bind(p.name.as_str())
                            .push_bind(p.version.as_str())
                            .push_bind(p.arch.as_str())
                            .push_bind(p.source_name.as_deref())
                            .push_bind(p.source_version.as_deref())
                            .push_bind(p.status.as_str());
                    });
                    qb.build().execute(&mut **tx).await?;
                }
                Ok(())
            }

            /// Replaces the rows of `available_updates` of `host` inside `tx`.
            async fn replace_updates(
                tx: &mut sqlx::Transaction<'_, $db>,
                host: &str,
                rows: &[UpdateRowDb<'_>],
            ) -> Result<()> {
                sqlx::query("DELETE FROM available_updates WHERE host_id = $1")
                    .bind(host)
                    .execute(&mut **tx)
                    .await?;
                for chunk in rows.chunks(UPDATE_CHUNK) {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO available_updates \
                         (host_id, name, arch, current_version, candidate_version, security, \
                         origins_json, advisories_json) ",
                    );
                    qb.push_values(chunk, |mut b, u| {
                        b.push_bind(host)
                            .push_bind(u.name)
                            .push_bind(u.arch)
                            .push_bind(u.current_version)
                            .push_bind(u.candidate_version)
                            .push_bind(u.security)
                            .push_bind(u.origins_json.as_str())
                            .push_bind(u.advisories_json.as_str());
                    });
                    qb.build().execute(&mut **tx).await?;
                }
                Ok(())
            }
        }

        #[async_trait]
        impl ScanStore for $store {
            async fn put_inventory(&self, host_id: Uuid, upload: &InventoryUpload) -> Result<u64> {
                let host = host_id.to_string();
                let system_json = to_json(&upload.system, "hosts.system_json")?;
                let stored = upload.packages.len() as u64;
                let stored_i64 = stored_count(upload.packages.len(), "hosts.package_count")?;
                let mut tx = self.writer.begin().await?;
                // A v1 inventory says nothing about the scan state's other parts, so
                // the digest becomes unknown: a later delta gets "send the full state".
                let org: Option<String> = sqlx::query_scalar(
                    "UPDATE hosts SET system_json = $2, hostname = $3, inventory_scanned_at = $4, \
                     package_manager = $5, package_count = $6, scan_digest = NULL WHERE id = $1 \
                     RETURNING org_id",
                )
                .bind(&host)
                .bind(&system_json)
                .bind(&upload.system.hostname)
                .bind(ms(upload.scanned_at))
                .bind(upload.package_manager.as_deref())
                .bind(stored_i64)
                .fetch_optional(&mut *tx)
                .await?;
                let Some(org) = org else {
                    // Dropping `tx` rolls back.
                    return Err(sqlx::Error::RowNotFound.into());
                };
                Self::replace_packages(&mut tx, &host, &upload.packages).await?;
                let org = uuid(&org, "hosts.org_id")?;
                let change = Change::Scan { org, host: host_id };
                self.commit_announcing(tx, &[change]).await?;
                Ok(stored)
            }

            async fn put_scan(
                &self,
                host_id: Uuid,
                scanned_at: DateTime<Utc>,
                digest: &str,
                state: &ScanState,
                kind: ScanKind,
            ) -> Result<u64> {
                let host = host_id.to_string();
                let system_json = to_json(&state.system, "hosts.system_json")?;
                let packages: Vec<InstalledPackage> =
                    state.packages.iter().map(PackageRow::to_package).collect();
                let package_count = stored_count(packages.len(), "hosts.package_count")?;
                let updates = state.updates.as_ref();
                let updates_json = updates
                    .map(|u| to_json(u, "hosts.updates_json"))
                    .transpose()?;
                let (total, security) = update_counts(updates);
                let mut rows = Vec::with_capacity(total);
                for u in updates.map(|u| u.updates.as_slice()).unwrap_or_default() {
                    rows.push(UpdateRowDb {
                        name: &u.name,
                        arch: &u.arch,
                        current_version: u.current_version.as_deref(),
                        candidate_version: &u.candidate_version,
                        security: u.security,
                        origins_json: to_json(&u.origins, "available_updates.origins_json")?,
                        advisories_json: to_json(
                            &u.advisories,
                            "available_updates.advisories_json",
                        )?,
                    });
                }
                let mut tx = self.writer.begin().await?;
                let org: Option<String> = sqlx::query_scalar(
                    "UPDATE hosts SET system_json = $2, hostname = $3, inventory_scanned_at = $4, \
                     package_manager = $5, package_count = $6, scan_digest = $7, \
                     updates_json = $8, update_count = $9, security_update_count = $10, \
                     updates_scanned_at = $11, \
                     delta_chain = CASE WHEN $12 THEN delta_chain + 1 ELSE 0 END \
                     WHERE id = $1 RETURNING org_id",
                )
                .bind(&host)
                .bind(&system_json)
                .bind(&state.system.hostname)
                .bind(ms(scanned_at))
                .bind(state.package_manager.as_deref())
                .bind(package_count)
                .bind(digest)
                .bind(updates_json.as_deref())
                .bind(stored_count(total, "hosts.update_count")?)
                .bind(stored_count(security, "hosts.security_update_count")?)
                .bind(updates.map(|_| ms(scanned_at)))
                .bind(kind == ScanKind::Delta)
                .fetch_optional(&mut *tx)
                .await?;
                let Some(org) = org else {
                    // Dropping `tx` rolls back.
                    return Err(sqlx::Error::RowNotFound.into());
                };
                Self::replace_packages(&mut tx, &host, &packages).await?;
                Self::replace_updates(&mut tx, &host, &rows).await?;
                let org = uuid(&org, "hosts.org_id")?;
                let change = Change::Scan { org, host: host_id };
                self.commit_announcing(tx, &[change]).await?;
                Ok(packages.len() as u64)
            }

            async fn touch_scan(
                &self,
                host_id: Uuid,
                scanned_at: DateTime<Utc>,
                digest: &str,
            ) -> Result<bool> {
                let done = sqlx::query(
                    "UPDATE hosts SET inventory_scanned_at = $2, updates_scanned_at = \
                     CASE WHEN updates_json IS NULL THEN updates_scanned_at ELSE $2 END \
                     WHERE id = $1 AND scan_digest = $3",
                )
                .bind(host_id.to_string())
                .bind(ms(scanned_at))
                .bind(digest)
                .execute(&self.writer)
                .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn scan_state(&self, host_id: Uuid) -> Result<Option<StoredScan>> {
                let host = host_id.to_string();
                // Two statements may see two different committed states (PostgreSQL
                // reads each statement's own snapshot), so the packages are read with
                // the digest beside them and the pair is kept only when the digests
                // agree; a state stored in between means reading again.
                for _ in 0..SCAN_READ_ATTEMPTS {
                    let row: Option<ScanHostDb> = sqlx::query_as(
                        "SELECT scan_digest, system_json, package_manager, updates_json, \
                         delta_chain FROM hosts WHERE id = $1",
                    )
                    .bind(&host)
                    .fetch_optional(&self.reader)
                    .await?;
                    let Some(ScanHostDb {
                        scan_digest: Some(digest),
                        system_json,
                        package_manager,
                        updates_json,
                        delta_chain,
                    }) = row
                    else {
                        return Ok(None);
                    };
                    let rows: Vec<ScanPackageDb> = sqlx::query_as(
                        "SELECT h.scan_digest, p.name, p.version, p.arch, p.source_name, \
                         p.source_version, p.status \
                         FROM hosts h LEFT JOIN packages p ON p.host_id = h.id \
                         WHERE h.id = $1",
                    )
                    .bind(&host)
                    .fetch_all(&self.reader)
                    .await?;
                    if rows
                        .iter()
                        .any(|r| r.scan_digest.as_deref() != Some(digest.as_str()))
                    {
                        continue;
                    }
                    let mut packages = Vec::with_capacity(rows.len());
                    for r in rows {
                        let (Some(name), Some(version), Some(arch), Some(status)) =
                            (r.name, r.version, r.arch, r.status)
                        else {
                            // The one row of a host without packages.
                            continue;
                        };
                        packages.push(PackageRow::from_package(&InstalledPackage {
                            name,
                            version,
                            arch,
                            source_name: r.source_name,
                            source_version: r.source_version,
                            status,
                        }));
                    }
                    let mut state = ScanState {
                        system: from_json(&system_json, "hosts.system_json")?,
                        package_manager,
                        packages,
                        updates: updates_json
                            .as_deref()
                            .map(|s| from_json(s, "hosts.updates_json"))
                            .transpose()?,
                    };
                    state.canonicalize();
                    return Ok(Some(StoredScan {
                        digest,
                        state,
                        delta_chain: count(delta_chain, "hosts.delta_chain")?,
                    }));
                }
                tracing::debug!(%host_id, "scan state kept changing while being read");
                Ok(None)
            }

            async fn host_updates(
                &self,
                org_id: Uuid,
                host_id: Uuid,
            ) -> Result<Option<HostUpdates>> {
                let row: Option<UpdatesDb> = sqlx::query_as(
                    "SELECT updates_json, updates_scanned_at, update_count, \
                     security_update_count FROM hosts WHERE id = $1 AND org_id = $2",
                )
                .bind(host_id.to_string())
                .bind(org_id.to_string())
                .fetch_optional(&self.reader)
                .await?;
                let Some(row) = row else {
                    return Ok(None);
                };
                let updates: ScanUpdates = row
                    .updates_json
                    .as_deref()
                    .map(|s| from_json(s, "hosts.updates_json"))
                    .transpose()?
                    .unwrap_or_default();
                Ok(Some(HostUpdates {
                    host_id,
                    scanned_at: opt_time(row.updates_scanned_at, "hosts.updates_scanned_at")?,
                    refreshed: updates.refreshed,
                    error: updates.error,
                    updates: updates.updates,
                    removals: updates.removals,
                    update_count: count(row.update_count, "hosts.update_count")?,
                    security_update_count: count(
                        row.security_update_count,
                        "hosts.security_update_count",
                    )?,
                }))
            }

            async fn host_packages(
                &self,
                org_id: Uuid,
                host_id: Uuid,
            ) -> Result<Vec<InstalledPackage>> {
                let rows: Vec<PackageDb> = sqlx::query_as(
                    "SELECT p.name, p.version, p.arch, p.source_name, p.source_version, p.status \
                     FROM packages p JOIN hosts h ON h.id = p.host_id \
                     WHERE p.host_id = $1 AND h.org_id = $2 \
                     ORDER BY p.name, p.arch, p.version",
                )
                .bind(host_id.to_string())
                .bind(org_id.to_string())
                .fetch_all(&self.reader)
                .await?;
                Ok(rows.into_iter().map(PackageDb::decode).collect())
            }
        }
    };
}

impl_scans!(SqliteStore, sqlx::Sqlite);
impl_scans!(PostgresStore, sqlx::Postgres);
