//! The SQL backends of [`Storage`]: SQLite ([`SqliteStore`]) and PostgreSQL
//! ([`PostgresStore`]).
//!
//! Both run the very same SQL text (`$N` placeholders, `INSERT ... ON CONFLICT`,
//! `RETURNING`), written once in the [`sql_storage!`] macro below and instantiated for
//! each backend's pool type; the backends differ only in how they open their pools
//! (`sqlite.rs`, `postgres.rs`) and in their migrations (`migrations/<backend>/`).
//! Column conventions, identical in both: ids are hyphenated UUIDs as text, times are
//! unix milliseconds as 64-bit integers, JSON documents are text, booleans are bound as
//! Rust `bool`. Anything that does not decode back is reported as
//! [`StorageError::Corrupt`] naming the table and column.
//!
//! The vulnerability database (`vuln_*` tables) keeps these invariants:
//! * `vuln_records` holds one row per `(source, id)`, never deleted by an import; its
//!   `digest` is [`Record::digest`] of `record_json`'s content, so an import recognises
//!   unchanged records by digest alone and leaves them (and their `imported_at`) alone.
//! * `vuln_keys` holds exactly the distinct `(ecosystem, package)` pairs of each
//!   record's affected entries: written with the record, deleted with its old content.
//! * `vuln_sources.record_count` is the number of `vuln_records` rows of the source.
//! * `vuln_meta.generation` grows by one with every import that wrote a record, in the
//!   same transaction; an import is one transaction, so readers see all of it or none.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use patchctl_proto::agent::{InstalledPackage, InventoryUpload, Metrics};
use patchctl_proto::api::{CommandEvent, CommandRecord, CommandState, HostUpdates};
use patchctl_proto::command::{CommandEnvelope, CommandResult, ResultStatus};
use patchctl_proto::scan::{PackageRow, ScanState, ScanUpdates};
use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use patchctl_vuln::Record;

use crate::{
    ApiToken, CancelOutcome, EnrollmentKey, HeartbeatOutcome, HeartbeatWrite, HostAuth, HostRow,
    NewCommand, NewHost, Org, RecordOutcome, Result, Storage, StorageError, StoredVulnRecord,
    VulnImport, VulnSource,
};

/// Heartbeats per multi-row statement (4 bound values each; far below SQLite's 32766).
const HEARTBEAT_CHUNK: usize = 500;

mod postgres;
mod sqlite;

pub(crate) use postgres::PostgresStore;
pub(crate) use sqlite::SqliteStore;

/// Packages per multi-row `INSERT` (7 parameters each: far below SQLite's 32766).
const PACKAGE_CHUNK: usize = 1_000;
/// Available updates per multi-row `INSERT` (8 parameters each).
const UPDATE_CHUNK: usize = 1_000;
/// Times [`Storage::scan_state`] reads again when a scan was stored between its two
/// reads.
const SCAN_READ_ATTEMPTS: usize = 3;
/// Events per multi-row `INSERT` (4 parameters each).
const EVENT_CHUNK: usize = 1_000;
/// Ids per `IN (...)` list.
const ID_CHUNK: usize = 1_000;
/// Vulnerability records per multi-row upsert (7 parameters each).
const VULN_RECORD_CHUNK: usize = 500;
/// Rows of `vuln_keys` per multi-row `INSERT` (4 parameters each).
const VULN_KEY_CHUNK: usize = 1_000;
/// Pairs per `VALUES` list joined against `vuln_keys` or `vuln_records` (2 parameters
/// each).
const PAIR_CHUNK: usize = 1_000;
/// Longest event detail stored (in characters).
const MAX_DETAIL_CHARS: usize = 1_000;
/// Event detail when an undelivered command expires.
const EXPIRED_DETAIL: &str = "not delivered before it expired";
/// Event detail when an operator cancels a command.
const CANCELLED_DETAIL: &str = "cancelled by an operator";

/// The columns of `hosts` that make a [`HostRow`] (see [`HostDb`]).
macro_rules! host_columns {
    () => {
        "id, org_id, hostname, system_json, agent_version, enrolled_at, last_seen, revoked, \
         metrics_json, metrics_at, inventory_scanned_at, package_manager, package_count, \
         update_count, security_update_count"
    };
}

/// The columns of `commands` that make a [`CommandRecord`] (see [`CommandDb`]).
macro_rules! command_columns {
    () => {
        "id, host_id, kind, params_json, state, created_at, updated_at, expires_at, \
         deliveries, result_json"
    };
}

// ---------------------------------------------------------------------------------
// Conversions shared by both backends.

/// A time as stored: unix milliseconds.
fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// `t` as it reads back after storing (millisecond precision).
fn trunc(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms(t)).unwrap_or(t)
}

/// Milliseconds in `d`, saturating.
fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// A [`StorageError::Corrupt`] for `column` (`table.column`).
fn corrupt(column: &str, why: impl std::fmt::Display) -> StorageError {
    StorageError::Corrupt(format!("{column}: {why}"))
}

/// Decodes a stored time.
fn time(v: i64, column: &str) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp_millis(v)
        .ok_or_else(|| corrupt(column, format!("time {v} out of range")))
}

/// Decodes a stored optional time.
fn opt_time(v: Option<i64>, column: &str) -> Result<Option<DateTime<Utc>>> {
    v.map(|v| time(v, column)).transpose()
}

/// Decodes a stored id.
fn uuid(s: &str, column: &str) -> Result<Uuid> {
    Uuid::parse_str(s).map_err(|e| corrupt(column, format!("bad id {s:?}: {e}")))
}

/// Decodes a stored JSON document.
fn from_json<T: DeserializeOwned>(s: &str, column: &str) -> Result<T> {
    serde_json::from_str(s).map_err(|e| corrupt(column, e))
}

/// Encodes a JSON document for storing.
fn to_json<T: Serialize>(v: &T, column: &str) -> Result<String> {
    serde_json::to_string(v).map_err(|e| corrupt(column, format!("cannot encode: {e}")))
}

/// Decodes a stored non-negative count.
fn count<T: TryFrom<i64>>(v: i64, column: &str) -> Result<T> {
    T::try_from(v).map_err(|_| corrupt(column, format!("count {v} out of range")))
}

/// Decodes a stored command state.
fn state(s: &str, column: &str) -> Result<CommandState> {
    CommandState::parse(s).ok_or_else(|| corrupt(column, format!("unknown state {s:?}")))
}

/// Maps a unique-constraint violation to [`StorageError::Conflict`] naming `what`.
fn conflict(e: sqlx::Error, what: impl FnOnce() -> String) -> StorageError {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => StorageError::Conflict(what()),
        _ => StorageError::Database(e),
    }
}

/// The state a result moves its command to.
fn result_state(status: ResultStatus) -> CommandState {
    match status {
        ResultStatus::Succeeded => CommandState::Succeeded,
        ResultStatus::Failed => CommandState::Failed,
        ResultStatus::Rejected => CommandState::Rejected,
    }
}

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

/// An event detail, cut to [`MAX_DETAIL_CHARS`].
fn detail(s: &str) -> String {
    s.chars().take(MAX_DETAIL_CHARS).collect()
}

// ---------------------------------------------------------------------------------
// Rows as they come out of the database.

/// A row of `orgs`.
#[derive(sqlx::FromRow)]
struct OrgDb {
    id: String,
    name: String,
    created_at: i64,
}

impl OrgDb {
    fn decode(self) -> Result<Org> {
        Ok(Org {
            id: uuid(&self.id, "orgs.id")?,
            name: self.name,
            created_at: time(self.created_at, "orgs.created_at")?,
        })
    }
}

/// A row of `api_tokens`.
#[derive(sqlx::FromRow)]
struct TokenDb {
    id: String,
    org_id: String,
    name: String,
    created_at: i64,
}

impl TokenDb {
    fn decode(self) -> Result<ApiToken> {
        Ok(ApiToken {
            id: uuid(&self.id, "api_tokens.id")?,
            org_id: uuid(&self.org_id, "api_tokens.org_id")?,
            name: self.name,
            created_at: time(self.created_at, "api_tokens.created_at")?,
        })
    }
}

/// A row of `enrollment_keys`.
#[derive(sqlx::FromRow)]
struct KeyDb {
    id: String,
    org_id: String,
    name: String,
    revoked: bool,
    created_at: i64,
}

impl KeyDb {
    fn decode(self) -> Result<EnrollmentKey> {
        Ok(EnrollmentKey {
            id: uuid(&self.id, "enrollment_keys.id")?,
            org_id: uuid(&self.org_id, "enrollment_keys.org_id")?,
            name: self.name,
            revoked: self.revoked,
            created_at: time(self.created_at, "enrollment_keys.created_at")?,
        })
    }
}

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

/// What [`Storage::scan_state`] reads from `hosts`.
#[derive(sqlx::FromRow)]
struct ScanHostDb {
    scan_digest: Option<String>,
    system_json: String,
    package_manager: Option<String>,
    updates_json: Option<String>,
}

/// A package row as [`Storage::scan_state`] reads it, beside the host's digest at the
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

/// What [`Storage::host_updates`] reads from `hosts`.
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

/// The [`command_columns!`] of a row of `commands`.
#[derive(sqlx::FromRow)]
struct CommandDb {
    id: String,
    host_id: String,
    kind: String,
    params_json: String,
    state: String,
    created_at: i64,
    updated_at: i64,
    expires_at: i64,
    deliveries: i64,
    result_json: Option<String>,
}

impl CommandDb {
    fn decode(self, events: Vec<CommandEvent>) -> Result<CommandRecord> {
        Ok(CommandRecord {
            id: uuid(&self.id, "commands.id")?,
            host_id: uuid(&self.host_id, "commands.host_id")?,
            kind: self.kind,
            params: from_json(&self.params_json, "commands.params_json")?,
            state: state(&self.state, "commands.state")?,
            created_at: time(self.created_at, "commands.created_at")?,
            updated_at: time(self.updated_at, "commands.updated_at")?,
            expires_at: time(self.expires_at, "commands.expires_at")?,
            deliveries: count(self.deliveries, "commands.deliveries")?,
            result: self
                .result_json
                .as_deref()
                .map(|s| from_json(s, "commands.result_json"))
                .transpose()?,
            events,
        })
    }
}

/// A row of `command_events`.
#[derive(sqlx::FromRow)]
struct EventDb {
    command_id: String,
    state: String,
    at: i64,
    detail: String,
}

impl EventDb {
    fn decode(self) -> Result<CommandEvent> {
        Ok(CommandEvent {
            state: state(&self.state, "command_events.state")?,
            at: time(self.at, "command_events.at")?,
            detail: self.detail,
        })
    }
}

/// A deliverable command, as `lease_commands` selects it.
#[derive(sqlx::FromRow)]
struct LeaseDb {
    id: String,
    kind: String,
    params_json: String,
    created_at: i64,
}

/// An event to append.
struct NewEvent {
    command_id: String,
    state: CommandState,
    at: i64,
    detail: String,
}

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
// The one implementation.

/// Implements [`Storage`] for `$store` (a struct with `writer` and `reader` pools of
/// database `$db`). Every write and every transaction uses `writer`; single-statement
/// reads use `reader`.
macro_rules! sql_storage {
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

            /// Appends `events` to `command_events` inside `tx`.
            async fn append_events(
                tx: &mut sqlx::Transaction<'_, $db>,
                events: &[NewEvent],
            ) -> Result<()> {
                for chunk in events.chunks(EVENT_CHUNK) {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO command_events (command_id, state, at, detail) ",
                    );
                    qb.push_values(chunk, |mut b, e| {
                        b.push_bind(e.command_id.as_str())
                            .push_bind(e.state.as_str())
                            .push_bind(e.at)
                            .push_bind(e.detail.as_str());
                    });
                    qb.build().execute(&mut **tx).await?;
                }
                Ok(())
            }

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

            /// The events of the commands `ids`, oldest first, by command id.
            async fn events_of(
                &self,
                ids: &[String],
            ) -> Result<HashMap<String, Vec<CommandEvent>>> {
                let mut out: HashMap<String, Vec<CommandEvent>> = HashMap::new();
                for chunk in ids.chunks(ID_CHUNK) {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(
                        "SELECT command_id, state, at, detail FROM command_events \
                         WHERE command_id IN (",
                    );
                    let mut list = qb.separated(", ");
                    for id in chunk {
                        list.push_bind(id.as_str());
                    }
                    qb.push(") ORDER BY id");
                    let rows: Vec<EventDb> = qb.build_query_as().fetch_all(&self.reader).await?;
                    for row in rows {
                        let id = row.command_id.clone();
                        out.entry(id).or_default().push(row.decode()?);
                    }
                }
                Ok(out)
            }
        }

        #[async_trait]
        impl Storage for $store {
            async fn create_org(&self, name: &str, now: DateTime<Utc>) -> Result<Org> {
                let id = Uuid::new_v4();
                sqlx::query("INSERT INTO orgs (id, name, created_at) VALUES ($1, $2, $3)")
                    .bind(id.to_string())
                    .bind(name)
                    .bind(ms(now))
                    .execute(&self.writer)
                    .await
                    .map_err(|e| conflict(e, || format!("organisation {name:?}")))?;
                Ok(Org {
                    id,
                    name: name.to_owned(),
                    created_at: trunc(now),
                })
            }

            async fn org_by_name(&self, name: &str) -> Result<Option<Org>> {
                let row: Option<OrgDb> =
                    sqlx::query_as("SELECT id, name, created_at FROM orgs WHERE name = $1")
                        .bind(name)
                        .fetch_optional(&self.reader)
                        .await?;
                row.map(OrgDb::decode).transpose()
            }

            async fn create_api_token(
                &self,
                org_id: Uuid,
                name: &str,
                token_hash: &str,
                now: DateTime<Utc>,
            ) -> Result<ApiToken> {
                let id = Uuid::new_v4();
                sqlx::query(
                    "INSERT INTO api_tokens (id, org_id, name, token_hash, created_at) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(id.to_string())
                .bind(org_id.to_string())
                .bind(name)
                .bind(token_hash)
                .bind(ms(now))
                .execute(&self.writer)
                .await
                .map_err(|e| conflict(e, || "an API token with this hash".to_owned()))?;
                Ok(ApiToken {
                    id,
                    org_id,
                    name: name.to_owned(),
                    created_at: trunc(now),
                })
            }

            async fn api_token_by_hash(&self, token_hash: &str) -> Result<Option<ApiToken>> {
                let row: Option<TokenDb> = sqlx::query_as(
                    "SELECT id, org_id, name, created_at FROM api_tokens WHERE token_hash = $1",
                )
                .bind(token_hash)
                .fetch_optional(&self.reader)
                .await?;
                row.map(TokenDb::decode).transpose()
            }

            async fn create_enrollment_key(
                &self,
                org_id: Uuid,
                name: &str,
                key_hash: &str,
                now: DateTime<Utc>,
            ) -> Result<EnrollmentKey> {
                let id = Uuid::new_v4();
                sqlx::query(
                    "INSERT INTO enrollment_keys (id, org_id, name, key_hash, revoked, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(id.to_string())
                .bind(org_id.to_string())
                .bind(name)
                .bind(key_hash)
                .bind(false)
                .bind(ms(now))
                .execute(&self.writer)
                .await
                .map_err(|e| conflict(e, || "an enrollment key with this hash".to_owned()))?;
                Ok(EnrollmentKey {
                    id,
                    org_id,
                    name: name.to_owned(),
                    revoked: false,
                    created_at: trunc(now),
                })
            }

            async fn enrollment_key_by_hash(
                &self,
                key_hash: &str,
            ) -> Result<Option<EnrollmentKey>> {
                let row: Option<KeyDb> = sqlx::query_as(
                    "SELECT id, org_id, name, revoked, created_at FROM enrollment_keys \
                     WHERE key_hash = $1",
                )
                .bind(key_hash)
                .fetch_optional(&self.reader)
                .await?;
                row.map(KeyDb::decode).transpose()
            }

            async fn revoke_enrollment_key(&self, org_id: Uuid, key_id: Uuid) -> Result<bool> {
                let done = sqlx::query(
                    "UPDATE enrollment_keys SET revoked = $3 WHERE id = $1 AND org_id = $2",
                )
                .bind(key_id.to_string())
                .bind(org_id.to_string())
                .bind(true)
                .execute(&self.writer)
                .await?;
                Ok(done.rows_affected() > 0)
            }

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

            async fn put_inventory(&self, host_id: Uuid, upload: &InventoryUpload) -> Result<u64> {
                let host = host_id.to_string();
                let system_json = to_json(&upload.system, "hosts.system_json")?;
                let stored = upload.packages.len() as u64;
                let stored_i64 = stored_count(upload.packages.len(), "hosts.package_count")?;
                let mut tx = self.writer.begin().await?;
                // A v1 inventory says nothing about the scan state's other parts, so
                // the digest becomes unknown: a later delta gets "send the full state".
                let done = sqlx::query(
                    "UPDATE hosts SET system_json = $2, hostname = $3, inventory_scanned_at = $4, \
                     package_manager = $5, package_count = $6, scan_digest = NULL WHERE id = $1",
                )
                .bind(&host)
                .bind(&system_json)
                .bind(&upload.system.hostname)
                .bind(ms(upload.scanned_at))
                .bind(upload.package_manager.as_deref())
                .bind(stored_i64)
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() == 0 {
                    // Dropping `tx` rolls back.
                    return Err(sqlx::Error::RowNotFound.into());
                }
                Self::replace_packages(&mut tx, &host, &upload.packages).await?;
                tx.commit().await?;
                Ok(stored)
            }

            async fn put_scan(
                &self,
                host_id: Uuid,
                scanned_at: DateTime<Utc>,
                digest: &str,
                state: &ScanState,
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
                let done = sqlx::query(
                    "UPDATE hosts SET system_json = $2, hostname = $3, inventory_scanned_at = $4, \
                     package_manager = $5, package_count = $6, scan_digest = $7, \
                     updates_json = $8, update_count = $9, security_update_count = $10, \
                     updates_scanned_at = $11 WHERE id = $1",
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
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() == 0 {
                    // Dropping `tx` rolls back.
                    return Err(sqlx::Error::RowNotFound.into());
                }
                Self::replace_packages(&mut tx, &host, &packages).await?;
                Self::replace_updates(&mut tx, &host, &rows).await?;
                tx.commit().await?;
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

            async fn scan_state(&self, host_id: Uuid) -> Result<Option<(String, ScanState)>> {
                let host = host_id.to_string();
                // Two statements may see two different committed states (PostgreSQL
                // reads each statement's own snapshot), so the packages are read with
                // the digest beside them and the pair is kept only when the digests
                // agree; a state stored in between means reading again.
                for _ in 0..SCAN_READ_ATTEMPTS {
                    let row: Option<ScanHostDb> = sqlx::query_as(
                        "SELECT scan_digest, system_json, package_manager, updates_json \
                         FROM hosts WHERE id = $1",
                    )
                    .bind(&host)
                    .fetch_optional(&self.reader)
                    .await?;
                    let Some(ScanHostDb {
                        scan_digest: Some(digest),
                        system_json,
                        package_manager,
                        updates_json,
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
                    return Ok(Some((digest, state)));
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

            async fn queue_command(&self, cmd: NewCommand) -> Result<CommandRecord> {
                let id = Uuid::new_v4();
                let params_json = to_json(&cmd.params, "commands.params_json")?;
                let now = ms(cmd.now);
                let mut tx = self.writer.begin().await?;
                // Inserted only if the organisation owns the host.
                let done = sqlx::query(
                    "INSERT INTO commands (id, org_id, host_id, kind, params_json, state, \
                     created_at, updated_at, expires_at, deliveries) \
                     SELECT $1, org_id, id, $4, $5, $6, $7, $7, $8, 0 \
                     FROM hosts WHERE id = $2 AND org_id = $3",
                )
                .bind(id.to_string())
                .bind(cmd.host_id.to_string())
                .bind(cmd.org_id.to_string())
                .bind(&cmd.kind)
                .bind(&params_json)
                .bind(CommandState::Queued.as_str())
                .bind(now)
                .bind(ms(cmd.expires_at))
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() == 0 {
                    return Err(sqlx::Error::RowNotFound.into());
                }
                let event = NewEvent {
                    command_id: id.to_string(),
                    state: CommandState::Queued,
                    at: now,
                    detail: String::new(),
                };
                Self::append_events(&mut tx, std::slice::from_ref(&event)).await?;
                tx.commit().await?;
                Ok(CommandRecord {
                    id,
                    host_id: cmd.host_id,
                    kind: cmd.kind,
                    params: cmd.params,
                    state: CommandState::Queued,
                    created_at: trunc(cmd.now),
                    updated_at: trunc(cmd.now),
                    expires_at: trunc(cmd.expires_at),
                    deliveries: 0,
                    result: None,
                    events: vec![CommandEvent {
                        state: CommandState::Queued,
                        at: trunc(cmd.now),
                        detail: String::new(),
                    }],
                })
            }

            async fn lease_commands(
                &self,
                host_id: Uuid,
                now: DateTime<Utc>,
                lease: Duration,
                max: u32,
            ) -> Result<Vec<CommandEnvelope>> {
                let host = host_id.to_string();
                let now = ms(now);
                let until = now.saturating_add(duration_ms(lease));
                // The common case on every heartbeat: nothing queued or delivered, so
                // there is nothing to expire or lease. Answer it from a reader without
                // taking the writer. (A command queued right after this check is simply
                // leased on the next call, as if it had been queued after this one.)
                let pending: Option<String> = sqlx::query_scalar(
                    "SELECT id FROM commands WHERE host_id = $1 AND state IN ($2, $3) LIMIT 1",
                )
                .bind(&host)
                .bind(CommandState::Queued.as_str())
                .bind(CommandState::Delivered.as_str())
                .fetch_optional(&self.reader)
                .await?;
                if pending.is_none() {
                    return Ok(Vec::new());
                }
                let mut tx = self.writer.begin().await?;

                // 1. Undelivered (or lease-lapsed) commands past their expiry expire.
                let expired: Vec<String> = sqlx::query_scalar(
                    "UPDATE commands SET state = $3, updated_at = $2, lease_until = NULL \
                     WHERE host_id = $1 AND expires_at < $2 \
                     AND (state = $4 OR (state = $5 AND lease_until < $2)) \
                     RETURNING id",
                )
                .bind(&host)
                .bind(now)
                .bind(CommandState::Expired.as_str())
                .bind(CommandState::Queued.as_str())
                .bind(CommandState::Delivered.as_str())
                .fetch_all(&mut *tx)
                .await?;
                let events: Vec<NewEvent> = expired
                    .into_iter()
                    .map(|command_id| NewEvent {
                        command_id,
                        state: CommandState::Expired,
                        at: now,
                        detail: EXPIRED_DETAIL.to_owned(),
                    })
                    .collect();
                Self::append_events(&mut tx, &events).await?;

                // 2. The deliverable ones, oldest first.
                let candidates: Vec<LeaseDb> = if max == 0 {
                    Vec::new()
                } else {
                    sqlx::query_as(
                        "SELECT id, kind, params_json, created_at FROM commands \
                         WHERE host_id = $1 \
                         AND (state = $3 OR (state = $4 AND lease_until < $2)) \
                         ORDER BY created_at, id LIMIT $5",
                    )
                    .bind(&host)
                    .bind(now)
                    .bind(CommandState::Queued.as_str())
                    .bind(CommandState::Delivered.as_str())
                    .bind(i64::from(max))
                    .fetch_all(&mut *tx)
                    .await?
                };
                if candidates.is_empty() {
                    tx.commit().await?;
                    return Ok(Vec::new());
                }
                let mut envelopes = Vec::with_capacity(candidates.len());
                for c in &candidates {
                    envelopes.push(CommandEnvelope {
                        id: uuid(&c.id, "commands.id")?,
                        kind: c.kind.clone(),
                        params: from_json(&c.params_json, "commands.params_json")?,
                        queued_at: time(c.created_at, "commands.created_at")?,
                    });
                }

                // 3. Lease them. The state condition is checked again so that a
                // concurrent lease (PostgreSQL, READ COMMITTED) never hands out the
                // same command twice: only the rows this statement changed count.
                let mut qb = sqlx::QueryBuilder::<$db>::new(
                    "UPDATE commands SET state = ",
                );
                qb.push_bind(CommandState::Delivered.as_str())
                    .push(", lease_until = ")
                    .push_bind(until)
                    .push(", deliveries = deliveries + 1, updated_at = ")
                    .push_bind(now)
                    .push(" WHERE host_id = ")
                    .push_bind(host.as_str())
                    .push(" AND (state = ")
                    .push_bind(CommandState::Queued.as_str())
                    .push(" OR (state = ")
                    .push_bind(CommandState::Delivered.as_str())
                    .push(" AND lease_until < ")
                    .push_bind(now)
                    .push(")) AND id IN (");
                let mut list = qb.separated(", ");
                for c in &candidates {
                    list.push_bind(c.id.as_str());
                }
                qb.push(") RETURNING id, deliveries");
                let leased: Vec<(String, i64)> =
                    qb.build_query_as().fetch_all(&mut *tx).await?;
                let attempts: HashMap<String, i64> = leased.into_iter().collect();
                let mut events = Vec::with_capacity(attempts.len());
                let mut delivered = Vec::with_capacity(attempts.len());
                for (c, envelope) in candidates.iter().zip(envelopes) {
                    if let Some(n) = attempts.get(&c.id) {
                        events.push(NewEvent {
                            command_id: c.id.clone(),
                            state: CommandState::Delivered,
                            at: now,
                            detail: format!("delivered (attempt {n})"),
                        });
                        delivered.push(envelope);
                    }
                }
                Self::append_events(&mut tx, &events).await?;
                tx.commit().await?;
                Ok(delivered)
            }

            async fn record_result(
                &self,
                host_id: Uuid,
                result: &CommandResult,
                now: DateTime<Utc>,
            ) -> Result<RecordOutcome> {
                let id = result.command_id.to_string();
                let host = host_id.to_string();
                let new_state = result_state(result.status);
                let result_json = to_json(result, "commands.result_json")?;
                let mut tx = self.writer.begin().await?;
                // Only a command without a result that is queued, delivered or expired
                // takes one (a late result beats expiry).
                let done = sqlx::query(
                    "UPDATE commands SET state = $3, result_json = $4, updated_at = $5, \
                     lease_until = NULL \
                     WHERE id = $1 AND host_id = $2 AND result_json IS NULL \
                     AND state IN ($6, $7, $8)",
                )
                .bind(&id)
                .bind(&host)
                .bind(new_state.as_str())
                .bind(&result_json)
                .bind(ms(now))
                .bind(CommandState::Queued.as_str())
                .bind(CommandState::Delivered.as_str())
                .bind(CommandState::Expired.as_str())
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() == 0 {
                    let exists: Option<String> = sqlx::query_scalar(
                        "SELECT state FROM commands WHERE id = $1 AND host_id = $2",
                    )
                    .bind(&id)
                    .bind(&host)
                    .fetch_optional(&mut *tx)
                    .await?;
                    tx.rollback().await?;
                    return Ok(match exists {
                        Some(_) => RecordOutcome::Duplicate,
                        None => RecordOutcome::UnknownCommand,
                    });
                }
                let event = NewEvent {
                    command_id: id,
                    state: new_state,
                    at: ms(now),
                    detail: detail(&result.summary),
                };
                Self::append_events(&mut tx, std::slice::from_ref(&event)).await?;
                tx.commit().await?;
                Ok(RecordOutcome::Stored)
            }

            async fn cancel_command(
                &self,
                org_id: Uuid,
                command_id: Uuid,
                now: DateTime<Utc>,
            ) -> Result<CancelOutcome> {
                let id = command_id.to_string();
                let org = org_id.to_string();
                let mut tx = self.writer.begin().await?;
                let done = sqlx::query(
                    "UPDATE commands SET state = $3, updated_at = $4, lease_until = NULL \
                     WHERE id = $1 AND org_id = $2 AND state = $5",
                )
                .bind(&id)
                .bind(&org)
                .bind(CommandState::Cancelled.as_str())
                .bind(ms(now))
                .bind(CommandState::Queued.as_str())
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() == 0 {
                    let current: Option<String> = sqlx::query_scalar(
                        "SELECT state FROM commands WHERE id = $1 AND org_id = $2",
                    )
                    .bind(&id)
                    .bind(&org)
                    .fetch_optional(&mut *tx)
                    .await?;
                    tx.rollback().await?;
                    return match current {
                        Some(s) => Ok(CancelOutcome::NotCancellable(state(&s, "commands.state")?)),
                        None => Ok(CancelOutcome::NotFound),
                    };
                }
                let event = NewEvent {
                    command_id: id,
                    state: CommandState::Cancelled,
                    at: ms(now),
                    detail: CANCELLED_DETAIL.to_owned(),
                };
                Self::append_events(&mut tx, std::slice::from_ref(&event)).await?;
                tx.commit().await?;
                Ok(CancelOutcome::Cancelled)
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

            async fn vuln_generation(&self) -> Result<i64> {
                let generation: i64 =
                    sqlx::query_scalar("SELECT generation FROM vuln_meta WHERE id = 1")
                        .fetch_one(&self.reader)
                        .await?;
                Ok(generation)
            }

            async fn command(
                &self,
                org_id: Uuid,
                command_id: Uuid,
            ) -> Result<Option<CommandRecord>> {
                let row: Option<CommandDb> = sqlx::query_as(concat!(
                    "SELECT ",
                    command_columns!(),
                    " FROM commands WHERE id = $1 AND org_id = $2"
                ))
                .bind(command_id.to_string())
                .bind(org_id.to_string())
                .fetch_optional(&self.reader)
                .await?;
                let Some(row) = row else {
                    return Ok(None);
                };
                let mut events = self.events_of(std::slice::from_ref(&row.id)).await?;
                let events = events.remove(&row.id).unwrap_or_default();
                row.decode(events).map(Some)
            }

            async fn list_commands(
                &self,
                org_id: Uuid,
                host_id: Option<Uuid>,
                limit: u32,
            ) -> Result<Vec<CommandRecord>> {
                if limit == 0 {
                    return Ok(Vec::new());
                }
                let org = org_id.to_string();
                let limit = i64::from(limit);
                let rows: Vec<CommandDb> = match host_id {
                    Some(host_id) => {
                        sqlx::query_as(concat!(
                            "SELECT ",
                            command_columns!(),
                            " FROM commands WHERE org_id = $1 AND host_id = $2 \
                             ORDER BY created_at DESC, id DESC LIMIT $3"
                        ))
                        .bind(&org)
                        .bind(host_id.to_string())
                        .bind(limit)
                        .fetch_all(&self.reader)
                        .await?
                    }
                    None => {
                        sqlx::query_as(concat!(
                            "SELECT ",
                            command_columns!(),
                            " FROM commands WHERE org_id = $1 \
                             ORDER BY created_at DESC, id DESC LIMIT $2"
                        ))
                        .bind(&org)
                        .bind(limit)
                        .fetch_all(&self.reader)
                        .await?
                    }
                };
                let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
                let mut events = self.events_of(&ids).await?;
                rows.into_iter()
                    .map(|row| {
                        let ev = events.remove(&row.id).unwrap_or_default();
                        row.decode(ev)
                    })
                    .collect()
            }
        }
    };
}

sql_storage!(SqliteStore, sqlx::Sqlite);
sql_storage!(PostgresStore, sqlx::Postgres);
