//! The SQL of [`VulnStore`]: the vulnerability database (`vuln_*` tables).
//!
//! These tables keep these invariants:
//! * `vuln_records` holds one row per `(source, id)`, never deleted by an import; its
//!   `digest` is [`Record::digest`] of `record_json`'s content, so an import recognises
//!   unchanged records by digest alone and leaves them (and their `imported_at`) alone.
//! * `vuln_keys` holds exactly the distinct `(ecosystem, package)` pairs of each
//!   record's affected entries: written with the record, deleted with its old content.
//! * `vuln_sources.record_count` is the number of `vuln_records` rows of the source.
//! * `vuln_meta.generation` grows by one with every import that wrote a record, in the
//!   same transaction; an import is one transaction, so readers see all of it or none.

use std::collections::{BTreeSet, HashMap};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use patchctl_vuln::Record;

use super::{
    ID_CHUNK, PostgresStore, SqliteStore, corrupt, count, from_json, ms, opt_time, time, to_json,
};
use crate::error::{Result, StorageError};
use crate::vulns::{FeedSyncState, StoredVulnRecord, VulnImport, VulnSource, VulnStore};

/// Vulnerability records per multi-row upsert (7 parameters each).
const VULN_RECORD_CHUNK: usize = 500;
/// Rows of `vuln_keys` per multi-row `INSERT` (4 parameters each).
const VULN_KEY_CHUNK: usize = 1_000;
/// Pairs per `VALUES` list joined against `vuln_keys` or `vuln_records` (2 parameters
/// each).
const PAIR_CHUNK: usize = 1_000;

// ---------------------------------------------------------------------------------
// Rows as they come out of (and go into) the database.

/// A row of `vuln_records` as the record readers select it.
#[derive(sqlx::FromRow)]
struct VulnRecordDb {
    source: String,
    id: String,
    digest: String,
    imported_at: i64,
    record_json: String,
}

impl VulnRecordDb {
    fn decode(self) -> Result<StoredVulnRecord> {
        let record: Record = from_json(&self.record_json, "vuln_records.record_json")?;
        if record.id != self.id {
            return Err(corrupt(
                "vuln_records.record_json",
                format!("row {:?} holds record {:?}", self.id, record.id),
            ));
        }
        Ok(StoredVulnRecord {
            source: self.source,
            digest: self.digest,
            imported_at: time(self.imported_at, "vuln_records.imported_at")?,
            record,
        })
    }
}

/// A row of `vuln_sources`.
#[derive(sqlx::FromRow)]
struct VulnSourceDb {
    name: String,
    record_count: i64,
    imported_at: Option<i64>,
    checked_at: Option<i64>,
    url: Option<String>,
    etag: Option<String>,
    last_modified: Option<String>,
}

impl VulnSourceDb {
    fn decode(self) -> Result<VulnSource> {
        Ok(VulnSource {
            name: self.name,
            record_count: count(self.record_count, "vuln_sources.record_count")?,
            imported_at: opt_time(self.imported_at, "vuln_sources.imported_at")?,
            checked_at: opt_time(self.checked_at, "vuln_sources.checked_at")?,
            url: self.url,
            etag: self.etag,
            last_modified: self.last_modified,
        })
    }
}

/// A row of `vuln_feed_sync`.
#[derive(sqlx::FromRow)]
struct FeedSyncDb {
    name: String,
    kind: String,
    url: String,
    last_attempt_at: Option<i64>,
    last_success_at: Option<i64>,
    failures: i64,
    last_error: Option<String>,
    next_attempt_at: Option<i64>,
    records: Option<i64>,
    cursor_json: Option<String>,
}

impl FeedSyncDb {
    fn decode(self) -> Result<FeedSyncState> {
        let failures = u32::try_from(self.failures)
            .map_err(|_| corrupt("vuln_feed_sync.failures", self.failures))?;
        Ok(FeedSyncState {
            name: self.name,
            kind: self.kind,
            url: self.url,
            last_attempt_at: opt_time(self.last_attempt_at, "vuln_feed_sync.last_attempt_at")?,
            last_success_at: opt_time(self.last_success_at, "vuln_feed_sync.last_success_at")?,
            failures,
            last_error: self.last_error,
            next_attempt_at: opt_time(self.next_attempt_at, "vuln_feed_sync.next_attempt_at")?,
            records: self
                .records
                .map(|r| count(r, "vuln_feed_sync.records"))
                .transpose()?,
            cursor_json: self.cursor_json,
        })
    }
}

/// The SQL of the feed sync bookkeeping and lease (one text for both backends).
const FEED_STATES_SQL: &str = "SELECT name, kind, url, last_attempt_at, last_success_at, \
     failures, last_error, next_attempt_at, records, cursor_json FROM vuln_feed_sync \
     ORDER BY name";
const PUT_FEED_STATE_SQL: &str = "INSERT INTO vuln_feed_sync (name, kind, url, \
     last_attempt_at, last_success_at, failures, last_error, next_attempt_at, records, \
     cursor_json) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
     ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, url = excluded.url, \
     last_attempt_at = excluded.last_attempt_at, last_success_at = excluded.last_success_at, \
     failures = excluded.failures, last_error = excluded.last_error, \
     next_attempt_at = excluded.next_attempt_at, records = excluded.records, \
     cursor_json = excluded.cursor_json";
const TAKE_LEASE_SQL: &str = "UPDATE vuln_sync_lease SET holder = $1, expires_at = $2 \
     WHERE id = 1 AND (holder IS NULL OR holder = $1 OR expires_at <= $3)";
const RELEASE_LEASE_SQL: &str =
    "UPDATE vuln_sync_lease SET holder = NULL, expires_at = 0 WHERE id = 1 AND holder = $1";

/// Text bound to a column must not contain NUL (PostgreSQL refuses it).
fn check_feed_state(s: &FeedSyncState) -> Result<()> {
    let texts = [
        Some(s.name.as_str()),
        Some(s.kind.as_str()),
        Some(s.url.as_str()),
        s.last_error.as_deref(),
        s.cursor_json.as_deref(),
    ];
    if texts.into_iter().flatten().any(|t| t.contains('\0')) {
        return Err(StorageError::Invalid(format!(
            "feed {:?}: its sync state contains a NUL character",
            s.name
        )));
    }
    Ok(())
}

/// A record to import, encoded for `vuln_records` and `vuln_keys`.
struct VulnRecordRow<'a> {
    id: &'a str,
    digest: String,
    json: String,
    modified: Option<&'a str>,
    withdrawn: bool,
    /// The record's distinct `(ecosystem, package)` pairs, sorted.
    keys: Vec<(&'a str, &'a str)>,
}

/// Encodes `records` of `source` for importing: one row per id (the last record with
/// that id wins), in input order. Text bound to a column must not contain NUL
/// (PostgreSQL refuses it; SQLite would take it), so such a record fails the import on
/// both backends alike, before anything is written.
fn vuln_rows<'a>(source: &str, records: &'a [Record]) -> Result<Vec<VulnRecordRow<'a>>> {
    if source.contains('\0') {
        return Err(StorageError::Invalid(format!(
            "vulnerability source {source:?}: the name contains a NUL character"
        )));
    }
    let last: HashMap<&str, usize> = records
        .iter()
        .enumerate()
        .map(|(i, r)| (r.id.as_str(), i))
        .collect();
    let mut rows = Vec::with_capacity(last.len());
    for (i, r) in records.iter().enumerate() {
        if last.get(r.id.as_str()) != Some(&i) {
            continue;
        }
        let mut keys: Vec<(&str, &str)> = r
            .affected
            .iter()
            .map(|a| (a.ecosystem.as_str(), a.package.as_str()))
            .collect();
        keys.sort_unstable();
        keys.dedup();
        let mut columns = keys.iter().flat_map(|&(e, p)| [e, p]);
        if r.id.contains('\0')
            || r.modified.as_deref().is_some_and(|m| m.contains('\0'))
            || columns.any(|c| c.contains('\0'))
        {
            return Err(StorageError::Invalid(format!(
                "vulnerability record {:?} of source {source:?}: its id, modification time, \
                 ecosystem or package name contains a NUL character; the importer must \
                 reject such records",
                r.id
            )));
        }
        rows.push(VulnRecordRow {
            id: &r.id,
            digest: r.digest(),
            json: to_json(r, "vuln_records.record_json")?,
            modified: r.modified.as_deref(),
            withdrawn: r.withdrawn,
            keys,
        });
    }
    Ok(rows)
}

// ---------------------------------------------------------------------------------

/// Implements [`VulnStore`] for `$store` (a struct with `writer` and `reader` pools of
/// database `$db`).
macro_rules! impl_vulns {
    ($store:ident, $db:ty) => {
        impl $store {
            /// `head WHERE source = <source> AND id IN (<ids>) tail`.
            fn by_source_ids<'a>(
                head: &str,
                source: &'a str,
                ids: &[&'a str],
                tail: &str,
            ) -> sqlx::QueryBuilder<'a, $db> {
                let mut qb = sqlx::QueryBuilder::<$db>::new(head);
                qb.push(" WHERE source = ").push_bind(source).push(" AND id IN (");
                let mut list = qb.separated(", ");
                for id in ids {
                    list.push_bind(*id);
                }
                qb.push(") ").push(tail);
                qb
            }

            /// `head (VALUES <pairs>) AS v ON on` (the pair's columns are `v.column1`
            /// and `v.column2`).
            fn join_pairs<'a>(
                head: &str,
                pairs: &'a [(String, String)],
                on: &str,
            ) -> sqlx::QueryBuilder<'a, $db> {
                let mut qb = sqlx::QueryBuilder::<$db>::new(head);
                qb.push(" (");
                qb.push_values(pairs, |mut b, (x, y)| {
                    b.push_bind(x.as_str()).push_bind(y.as_str());
                });
                qb.push(") AS v ON ").push(on);
                qb
            }
        }

        #[async_trait]
        impl VulnStore for $store {
            async fn import_vuln_records(
                &self,
                source: &str,
                records: &[Record],
                now: DateTime<Utc>,
            ) -> Result<VulnImport> {
                let rows = vuln_rows(source, records)?;
                let now = ms(now);
                let mut tx = self.writer.begin().await?;
                // Creates the source; on PostgreSQL this also locks its row until the
                // commit, so imports of one source run one after the other and the
                // digests read next are the latest.
                sqlx::query(
                    "INSERT INTO vuln_sources (name, record_count, checked_at) \
                     VALUES ($1, 0, $2) \
                     ON CONFLICT (name) DO UPDATE SET checked_at = excluded.checked_at",
                )
                .bind(source)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                let ids: Vec<&str> = rows.iter().map(|r| r.id).collect();
                let mut stored: HashMap<String, String> = HashMap::with_capacity(ids.len());
                for chunk in ids.chunks(ID_CHUNK) {
                    let mut qb = Self::by_source_ids(
                        "SELECT id, digest FROM vuln_records",
                        source,
                        chunk,
                        "",
                    );
                    let found: Vec<(String, String)> =
                        qb.build_query_as().fetch_all(&mut *tx).await?;
                    stored.extend(found);
                }

                let mut out = VulnImport::default();
                let mut changed_keys: BTreeSet<(String, String)> = BTreeSet::new();
                let mut write = Vec::new();
                let mut replaced = Vec::new();
                for r in &rows {
                    match stored.get(r.id) {
                        Some(digest) if *digest == r.digest => {
                            out.unchanged += 1;
                            continue;
                        }
                        Some(_) => {
                            out.updated += 1;
                            replaced.push(r.id);
                        }
                        None => out.inserted += 1,
                    }
                    changed_keys
                        .extend(r.keys.iter().map(|&(e, p)| (e.to_owned(), p.to_owned())));
                    write.push(r);
                }
                for chunk in replaced.chunks(ID_CHUNK) {
                    let mut qb = Self::by_source_ids(
                        "DELETE FROM vuln_keys",
                        source,
                        chunk,
                        "RETURNING ecosystem, package",
                    );
                    let old: Vec<(String, String)> =
                        qb.build_query_as().fetch_all(&mut *tx).await?;
                    changed_keys.extend(old);
                }
                for chunk in write.chunks(VULN_RECORD_CHUNK) {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO vuln_records \
                         (source, id, digest, record_json, modified, imported_at, withdrawn) ",
                    );
                    qb.push_values(chunk, |mut b, r| {
                        b.push_bind(source)
                            .push_bind(r.id)
                            .push_bind(r.digest.as_str())
                            .push_bind(r.json.as_str())
                            .push_bind(r.modified)
                            .push_bind(now)
                            .push_bind(r.withdrawn);
                    });
                    qb.push(
                        " ON CONFLICT (source, id) DO UPDATE SET digest = excluded.digest, \
                         record_json = excluded.record_json, modified = excluded.modified, \
                         imported_at = excluded.imported_at, withdrawn = excluded.withdrawn",
                    );
                    qb.build().execute(&mut *tx).await?;
                }
                let keys: Vec<(&str, &str, &str)> = write
                    .iter()
                    .flat_map(|r| r.keys.iter().map(|&(e, p)| (r.id, e, p)))
                    .collect();
                for chunk in keys.chunks(VULN_KEY_CHUNK) {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO vuln_keys (source, id, ecosystem, package) ",
                    );
                    qb.push_values(chunk, |mut b, &(id, ecosystem, package)| {
                        b.push_bind(source)
                            .push_bind(id)
                            .push_bind(ecosystem)
                            .push_bind(package);
                    });
                    qb.build().execute(&mut *tx).await?;
                }

                let changed = !write.is_empty();
                out.generation = if changed {
                    sqlx::query_scalar(
                        "UPDATE vuln_meta SET generation = generation + 1 WHERE id = 1 \
                         RETURNING generation",
                    )
                    .fetch_one(&mut *tx)
                    .await?
                } else {
                    sqlx::query_scalar("SELECT generation FROM vuln_meta WHERE id = 1")
                        .fetch_one(&mut *tx)
                        .await?
                };
                sqlx::query(
                    "UPDATE vuln_sources SET \
                     record_count = (SELECT COUNT(*) FROM vuln_records WHERE source = $1), \
                     imported_at = CASE WHEN $2 OR imported_at IS NULL THEN $3 \
                     ELSE imported_at END \
                     WHERE name = $1",
                )
                .bind(source)
                .bind(changed)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                out.changed_keys = changed_keys.into_iter().collect();
                Ok(out)
            }

            async fn vuln_records(&self) -> Result<Vec<StoredVulnRecord>> {
                let rows: Vec<VulnRecordDb> = sqlx::query_as(
                    "SELECT source, id, digest, imported_at, record_json FROM vuln_records \
                     ORDER BY source, id",
                )
                .fetch_all(&self.reader)
                .await?;
                rows.into_iter().map(VulnRecordDb::decode).collect()
            }

            async fn vuln_ecosystems_with_data(
                &self,
                ecosystems: &[String],
            ) -> Result<Vec<String>> {
                let mut out = Vec::new();
                for e in ecosystems {
                    let found: Option<String> = sqlx::query_scalar(
                        "SELECT ecosystem FROM vuln_keys WHERE ecosystem = $1 LIMIT 1",
                    )
                    .bind(e)
                    .fetch_optional(&self.reader)
                    .await?;
                    if found.is_some() {
                        out.push(e.clone());
                    }
                }
                Ok(out)
            }

            async fn vuln_records_of(&self, source: &str) -> Result<Vec<StoredVulnRecord>> {
                let rows: Vec<VulnRecordDb> = sqlx::query_as(
                    "SELECT source, id, digest, imported_at, record_json FROM vuln_records \
                     WHERE source = $1 ORDER BY id",
                )
                .bind(source)
                .fetch_all(&self.reader)
                .await?;
                rows.into_iter().map(VulnRecordDb::decode).collect()
            }

            async fn vuln_records_for(
                &self,
                keys: &[(String, String)],
            ) -> Result<Vec<StoredVulnRecord>> {
                // Which records, then the records themselves: each record once, however
                // many of the pairs it touches.
                let mut wanted: BTreeSet<(String, String)> = BTreeSet::new();
                for chunk in keys.chunks(PAIR_CHUNK) {
                    let mut qb = Self::join_pairs(
                        "SELECT DISTINCT k.source, k.id FROM vuln_keys k JOIN",
                        chunk,
                        "k.ecosystem = v.column1 AND k.package = v.column2",
                    );
                    let found: Vec<(String, String)> =
                        qb.build_query_as().fetch_all(&self.reader).await?;
                    wanted.extend(found);
                }
                let wanted: Vec<(String, String)> = wanted.into_iter().collect();
                let mut rows: Vec<VulnRecordDb> = Vec::with_capacity(wanted.len());
                for chunk in wanted.chunks(PAIR_CHUNK) {
                    let mut qb = Self::join_pairs(
                        "SELECT r.source, r.id, r.digest, r.imported_at, r.record_json \
                         FROM vuln_records r JOIN",
                        chunk,
                        "r.source = v.column1 AND r.id = v.column2",
                    );
                    let found: Vec<VulnRecordDb> =
                        qb.build_query_as().fetch_all(&self.reader).await?;
                    rows.extend(found);
                }
                rows.sort_unstable_by(|a, b| (&a.source, &a.id).cmp(&(&b.source, &b.id)));
                rows.into_iter().map(VulnRecordDb::decode).collect()
            }

            async fn vuln_sources(&self) -> Result<Vec<VulnSource>> {
                let rows: Vec<VulnSourceDb> = sqlx::query_as(
                    "SELECT name, record_count, imported_at, checked_at, url, etag, \
                     last_modified FROM vuln_sources ORDER BY name",
                )
                .fetch_all(&self.reader)
                .await?;
                rows.into_iter().map(VulnSourceDb::decode).collect()
            }

            async fn record_vuln_sync(
                &self,
                name: &str,
                url: &str,
                etag: Option<&str>,
                last_modified: Option<&str>,
                now: DateTime<Utc>,
            ) -> Result<()> {
                sqlx::query(
                    "INSERT INTO vuln_sources \
                     (name, record_count, checked_at, url, etag, last_modified) \
                     VALUES ($1, 0, $2, $3, $4, $5) \
                     ON CONFLICT (name) DO UPDATE SET checked_at = excluded.checked_at, \
                     url = excluded.url, etag = excluded.etag, \
                     last_modified = excluded.last_modified",
                )
                .bind(name)
                .bind(ms(now))
                .bind(url)
                .bind(etag)
                .bind(last_modified)
                .execute(&self.writer)
                .await?;
                Ok(())
            }

            async fn vuln_feed_states(&self) -> Result<Vec<FeedSyncState>> {
                let rows: Vec<FeedSyncDb> = sqlx::query_as(FEED_STATES_SQL)
                    .fetch_all(&self.reader)
                    .await?;
                rows.into_iter().map(FeedSyncDb::decode).collect()
            }

            async fn put_vuln_feed_state(&self, s: &FeedSyncState) -> Result<()> {
                check_feed_state(s)?;
                let records = s
                    .records
                    .map(|r| i64::try_from(r).unwrap_or(i64::MAX));
                sqlx::query(PUT_FEED_STATE_SQL)
                    .bind(&s.name)
                    .bind(&s.kind)
                    .bind(&s.url)
                    .bind(s.last_attempt_at.map(ms))
                    .bind(s.last_success_at.map(ms))
                    .bind(i64::from(s.failures))
                    .bind(s.last_error.as_deref())
                    .bind(s.next_attempt_at.map(ms))
                    .bind(records)
                    .bind(s.cursor_json.as_deref())
                    .execute(&self.writer)
                    .await?;
                Ok(())
            }

            async fn take_vuln_sync_lease(
                &self,
                holder: &str,
                now: DateTime<Utc>,
                until: DateTime<Utc>,
            ) -> Result<bool> {
                let done = sqlx::query(TAKE_LEASE_SQL)
                    .bind(holder)
                    .bind(ms(until))
                    .bind(ms(now))
                    .execute(&self.writer)
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn release_vuln_sync_lease(&self, holder: &str) -> Result<()> {
                sqlx::query(RELEASE_LEASE_SQL)
                    .bind(holder)
                    .execute(&self.writer)
                    .await?;
                Ok(())
            }

            async fn vuln_generation(&self) -> Result<i64> {
                let generation: i64 =
                    sqlx::query_scalar("SELECT generation FROM vuln_meta WHERE id = 1")
                        .fetch_one(&self.reader)
                        .await?;
                Ok(generation)
            }
        }
    };
}

impl_vulns!(SqliteStore, sqlx::Sqlite);
impl_vulns!(PostgresStore, sqlx::Postgres);
