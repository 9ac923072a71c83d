//! The platform's storage: one trait, [`Storage`], and a backend per database.
//!
//! The backend is chosen once, from the database URL, by [`open`]: `sqlite://PATH`
//! (the default; WAL, one file) or `postgres://...`. Each backend has its own
//! migrations under `migrations/<backend>/`; a shipped migration is never edited, a new
//! one is added. One conformance suite (`tests/conformance.rs`) runs against both.
//!
//! Architecture invariant: handlers never branch on the backend; everything they need is
//! a method of [`Storage`].

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use patchctl_proto::agent::{InstalledPackage, InventoryUpload, Metrics, SystemInfo};
use patchctl_proto::api::{CommandRecord, HostUpdates};
use patchctl_proto::command::{CommandEnvelope, CommandResult};
use patchctl_proto::scan::ScanState;
use uuid::Uuid;

mod sql;

/// What went wrong in storage. Messages never contain secrets (only hashes are stored).
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The database URL is not one this build understands.
    #[error("unsupported database URL scheme {0:?}; use sqlite://PATH or postgres://USER@HOST/DB")]
    UnsupportedUrl(String),
    /// The database answered with an error or could not be reached.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A migration failed.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored value could not be decoded (a bug or a hand-edited database).
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// A unique value (organisation name, key hash) already exists.
    #[error("{0} already exists")]
    Conflict(String),
    /// A value cannot be stored as given (the message says which and why); nothing was
    /// written.
    #[error("cannot store {0}")]
    Invalid(String),
}

/// Result alias for storage operations.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// An organisation: every key, host, token and command belongs to exactly one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Org {
    /// Id.
    pub id: Uuid,
    /// Unique name.
    pub name: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// An operator API token (only its SHA-256 is stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    /// Id.
    pub id: Uuid,
    /// Organisation.
    pub org_id: Uuid,
    /// A label for people.
    pub name: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// An enrollment (license) key (only its SHA-256 is stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrollmentKey {
    /// Id.
    pub id: Uuid,
    /// Organisation.
    pub org_id: Uuid,
    /// A label for people.
    pub name: String,
    /// Revoked keys enroll nothing.
    pub revoked: bool,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// A new host, as enrollment creates it.
#[derive(Debug, Clone)]
pub struct NewHost {
    /// Organisation (the enrollment key's).
    pub org_id: Uuid,
    /// The enrollment key used.
    pub enrollment_key_id: Uuid,
    /// SHA-256 (hex) of the agent's credential.
    pub credential_hash: String,
    /// The agent's version.
    pub agent_version: String,
    /// System identification sent at enrollment.
    pub system: SystemInfo,
    /// Enrollment time.
    pub now: DateTime<Utc>,
}

/// Who an agent credential belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostAuth {
    /// Host id.
    pub host_id: Uuid,
    /// Organisation.
    pub org_id: Uuid,
}

/// A host as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct HostRow {
    /// Id.
    pub id: Uuid,
    /// Organisation.
    pub org_id: Uuid,
    /// Host name from the latest system identification.
    pub hostname: String,
    /// Latest system identification.
    pub system: SystemInfo,
    /// Agent version at the latest contact.
    pub agent_version: String,
    /// Enrollment time.
    pub enrolled_at: DateTime<Utc>,
    /// Latest heartbeat.
    pub last_seen: Option<DateTime<Utc>>,
    /// Credential revoked by an operator.
    pub revoked: bool,
    /// Latest metrics.
    pub metrics: Option<Metrics>,
    /// When the latest metrics arrived.
    pub metrics_at: Option<DateTime<Utc>>,
    /// When the stored inventory was scanned.
    pub inventory_scanned_at: Option<DateTime<Utc>>,
    /// Package manager of the stored inventory.
    pub package_manager: Option<String>,
    /// Packages in the stored inventory.
    pub package_count: u64,
    /// Available updates the last scan reported.
    pub update_count: u64,
    /// Of those, the security updates.
    pub security_update_count: u64,
}

/// A command to queue.
#[derive(Debug, Clone)]
pub struct NewCommand {
    /// Organisation (must own the host).
    pub org_id: Uuid,
    /// Target host.
    pub host_id: Uuid,
    /// Validated kind.
    pub kind: String,
    /// Validated parameters.
    pub params: serde_json::Value,
    /// Queue time.
    pub now: DateTime<Utc>,
    /// After this, an undelivered command expires.
    pub expires_at: DateTime<Utc>,
}

/// One heartbeat to record (see [`Storage::record_heartbeats`]).
#[derive(Debug, Clone)]
pub struct HeartbeatWrite {
    /// The host (already authenticated).
    pub host_id: Uuid,
    /// Agent version reported.
    pub agent_version: String,
    /// Metrics reported.
    pub metrics: Metrics,
    /// Arrival time.
    pub at: DateTime<Utc>,
}

/// What recording a batch of heartbeats found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeartbeatOutcome {
    /// Hosts updated (distinct hosts of the batch that exist).
    pub updated: u64,
    /// Hosts of the batch that have queued or delivered commands, so that only they
    /// need [`Storage::lease_commands`].
    pub pending_commands: Vec<Uuid>,
}

/// What recording a result did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordOutcome {
    /// The result was stored and the command moved to its final state.
    Stored,
    /// A result was already stored; nothing changed.
    Duplicate,
    /// No such command for this host; nothing changed.
    UnknownCommand,
}

/// What cancelling did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelOutcome {
    /// The command is now cancelled.
    Cancelled,
    /// No such command in this organisation.
    NotFound,
    /// The command is past `queued` (its state is given) and cannot be cancelled.
    NotCancellable(patchctl_proto::api::CommandState),
}

/// What [`Storage::import_vuln_records`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VulnImport {
    /// Records stored for the first time.
    pub inserted: u64,
    /// Records whose content changed and was replaced.
    pub updated: u64,
    /// Records stored before with the same content (left untouched).
    pub unchanged: u64,
    /// The `(ecosystem, package)` pairs of inserted and changed records, including the
    /// old pairs of changed ones: deduplicated, sorted.
    pub changed_keys: Vec<(String, String)>,
    /// The database generation after the import.
    pub generation: i64,
}

/// A stored vulnerability record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredVulnRecord {
    /// The source (feed) it was imported from.
    pub source: String,
    /// `Record::digest` of the stored content, as stored: equal digests, equal content
    /// (readers compare it instead of hashing records again).
    pub digest: String,
    /// When this content was first stored.
    pub imported_at: DateTime<Utc>,
    /// The record.
    pub record: patchctl_vuln::Record,
}

/// A vulnerability data source (feed) and its bookkeeping.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VulnSource {
    /// Name (as the importer names the feed).
    pub name: String,
    /// Records stored for this source.
    pub record_count: u64,
    /// The last import that changed something, or the first import.
    pub imported_at: Option<DateTime<Utc>>,
    /// The last import or sync attempt.
    pub checked_at: Option<DateTime<Utc>>,
    /// Where the feed was last downloaded from.
    pub url: Option<String>,
    /// `ETag` of that download, for a conditional request.
    pub etag: Option<String>,
    /// `Last-Modified` of that download, for a conditional request.
    pub last_modified: Option<String>,
}

/// Everything the platform stores. Times are passed in (never read from the clock
/// inside) so that leases and expiry are testable.
#[async_trait]
pub trait Storage: Send + Sync + 'static {
    /// Creates an organisation; `Conflict` if the name exists.
    async fn create_org(&self, name: &str, now: DateTime<Utc>) -> Result<Org>;
    /// Finds an organisation by name.
    async fn org_by_name(&self, name: &str) -> Result<Option<Org>>;

    /// Stores a new API token's hash.
    async fn create_api_token(
        &self,
        org_id: Uuid,
        name: &str,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<ApiToken>;
    /// Finds the token with this hash.
    async fn api_token_by_hash(&self, token_hash: &str) -> Result<Option<ApiToken>>;

    /// Stores a new enrollment key's hash.
    async fn create_enrollment_key(
        &self,
        org_id: Uuid,
        name: &str,
        key_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<EnrollmentKey>;
    /// Finds the enrollment key with this hash (revoked ones too: the caller decides).
    async fn enrollment_key_by_hash(&self, key_hash: &str) -> Result<Option<EnrollmentKey>>;
    /// Revokes an enrollment key of `org_id`; false when there is none.
    async fn revoke_enrollment_key(&self, org_id: Uuid, key_id: Uuid) -> Result<bool>;

    /// Creates a host for a successful enrollment.
    async fn create_host(&self, host: NewHost) -> Result<HostRow>;
    /// The host whose (non-revoked) credential has this hash.
    async fn host_by_credential(&self, credential_hash: &str) -> Result<Option<HostAuth>>;
    /// Revokes a host's credential; false when `org_id` has no such host.
    async fn revoke_host(&self, org_id: Uuid, host_id: Uuid) -> Result<bool>;
    /// Records a heartbeat: last seen, agent version, latest metrics, and the metrics
    /// history, a ring of `history_len` entries per host. An unknown host is an error.
    async fn record_heartbeat(
        &self,
        host_id: Uuid,
        agent_version: &str,
        metrics: &Metrics,
        now: DateTime<Utc>,
        history_len: u32,
    ) -> Result<()> {
        let w = HeartbeatWrite {
            host_id,
            agent_version: agent_version.to_owned(),
            metrics: metrics.clone(),
            at: now,
        };
        let out = self
            .record_heartbeats(std::slice::from_ref(&w), history_len)
            .await?;
        if out.updated == 0 {
            return Err(StorageError::Database(sqlx::Error::RowNotFound));
        }
        Ok(())
    }
    /// Records many heartbeats in one transaction (group commit): what
    /// [`Storage::record_heartbeat`] does for each, where for a host named twice the
    /// last entry wins. Unknown hosts are skipped (`updated` counts the others).
    async fn record_heartbeats(
        &self,
        batch: &[HeartbeatWrite],
        history_len: u32,
    ) -> Result<HeartbeatOutcome>;
    /// Drops metrics history beyond `history_len` entries per host (after the setting
    /// was lowered); returns the rows removed.
    async fn trim_metrics_history(&self, history_len: u32) -> Result<u64>;
    /// Replaces the host's inventory and system identification atomically (a v1
    /// upload); returns the number of packages stored. The scan digest becomes unknown,
    /// so the next scan delta is answered with "send the full state"; the stored
    /// updates stay, with their own scan time.
    async fn put_inventory(&self, host_id: Uuid, upload: &InventoryUpload) -> Result<u64>;
    /// Replaces the host's whole scan state in one transaction: system identification,
    /// host name, package manager, packages (stored as [`PackageRow::to_package`]),
    /// the updates (as given and as rows of the update index), their counts, the scan
    /// time and `digest`. Returns the number of packages stored; an unknown host is an
    /// error and a failed write changes nothing.
    ///
    /// `state` must be canonical ([`ScanState::canonicalize`]) and `digest` its
    /// [`ScanState::digest`], and every row must survive the trip through
    /// [`PackageRow::to_package`] unchanged (the agent's rows do); then
    /// [`Storage::scan_state`] gives back a state with exactly this digest.
    ///
    /// [`PackageRow::to_package`]: patchctl_proto::scan::PackageRow::to_package
    async fn put_scan(
        &self,
        host_id: Uuid,
        scanned_at: DateTime<Utc>,
        digest: &str,
        state: &ScanState,
    ) -> Result<u64>;
    /// Records `scanned_at` as the host's latest scan time (of the inventory, and of the
    /// updates when there are any) when its stored scan digest is `digest`; false, with
    /// nothing changed, otherwise (another digest, none, or no such host).
    async fn touch_scan(
        &self,
        host_id: Uuid,
        scanned_at: DateTime<Utc>,
        digest: &str,
    ) -> Result<bool>;
    /// The stored scan digest and the state rebuilt from storage (canonical, so its
    /// digest is the stored one); `None` when the digest is unknown or there is no such
    /// host. Deltas apply to this state.
    async fn scan_state(&self, host_id: Uuid) -> Result<Option<(String, ScanState)>>;
    /// The available updates of a host of `org_id` as the last scan reported them,
    /// sorted by name, arch and candidate version; `None` when `org_id` has no such
    /// host, `scanned_at: None` when the host never reported updates.
    async fn host_updates(&self, org_id: Uuid, host_id: Uuid) -> Result<Option<HostUpdates>>;
    /// Hosts of an organisation, by host name.
    async fn list_hosts(&self, org_id: Uuid) -> Result<Vec<HostRow>>;
    /// One host of an organisation.
    async fn host(&self, org_id: Uuid, host_id: Uuid) -> Result<Option<HostRow>>;
    /// Hosts of an organisation with this host name.
    async fn hosts_by_name(&self, org_id: Uuid, hostname: &str) -> Result<Vec<HostRow>>;
    /// The stored inventory of a host of `org_id`, by name then arch.
    async fn host_packages(&self, org_id: Uuid, host_id: Uuid) -> Result<Vec<InstalledPackage>>;
    /// The metrics history of a host of `org_id`, oldest first.
    async fn metrics_history(
        &self,
        org_id: Uuid,
        host_id: Uuid,
    ) -> Result<Vec<(DateTime<Utc>, Metrics)>>;

    /// Queues a command (state `queued`, first event recorded).
    async fn queue_command(&self, cmd: NewCommand) -> Result<CommandRecord>;
    /// Hands the host its deliverable commands, oldest first, at most `max`: queued
    /// ones, and delivered ones whose lease ran out (redelivery). Each is marked
    /// `delivered` with a lease of `lease` from `now`. Undelivered commands past their
    /// expiry become `expired` instead.
    async fn lease_commands(
        &self,
        host_id: Uuid,
        now: DateTime<Utc>,
        lease: Duration,
        max: u32,
    ) -> Result<Vec<CommandEnvelope>>;
    /// Records an agent's result, once per command id.
    async fn record_result(
        &self,
        host_id: Uuid,
        result: &CommandResult,
        now: DateTime<Utc>,
    ) -> Result<RecordOutcome>;
    /// Cancels a queued command of `org_id`.
    async fn cancel_command(
        &self,
        org_id: Uuid,
        command_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<CancelOutcome>;
    /// One command of `org_id`, with its result and every event.
    async fn command(&self, org_id: Uuid, command_id: Uuid) -> Result<Option<CommandRecord>>;
    /// Commands of `org_id` (of one host when given), newest first, at most `limit`,
    /// with results and events.
    async fn list_commands(
        &self,
        org_id: Uuid,
        host_id: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<CommandRecord>>;

    /// Every non-revoked host of every organisation, by organisation, host name and id
    /// (for the correlation engine at start-up).
    async fn all_hosts(&self) -> Result<Vec<HostRow>>;

    /// Imports `records` of `source` in one transaction (creating the source if
    /// needed): records whose `(source, id)` digest ([`Record::digest`]) is unchanged are
    /// untouched; new ones are inserted and changed ones replaced, with `imported_at =
    /// now` for those, and their `(ecosystem, package)` keys rewritten. Records absent
    /// from `records` are never deleted (imports may be partial). When an id appears
    /// twice in `records` the last one counts. The source's record count follows, its
    /// `checked_at` becomes `now`, and so does its `imported_at` when something changed
    /// or it had none. The generation is bumped only when something changed.
    ///
    /// Returns the counts and the `(ecosystem, package)` pairs touched by inserted and
    /// changed records (old keys of changed records included; deduplicated, sorted).
    /// Text containing NUL is refused with [`StorageError::Invalid`] before anything is
    /// written (PostgreSQL cannot store it); a failed import changes nothing.
    ///
    /// [`Record::digest`]: patchctl_vuln::Record::digest
    async fn import_vuln_records(
        &self,
        source: &str,
        records: &[patchctl_vuln::Record],
        now: DateTime<Utc>,
    ) -> Result<VulnImport>;
    /// Every stored record (withdrawn ones included) with its source and import time,
    /// by source then id, for building the in-memory index. Read
    /// [`Storage::vuln_generation`] first: a later generation means a reload is due.
    async fn vuln_records(&self) -> Result<Vec<StoredVulnRecord>>;
    /// The records touching any of these `(ecosystem, package)` pairs, each once, by
    /// source then id. Any number of pairs (they are looked up in chunks).
    async fn vuln_records_for(&self, keys: &[(String, String)]) -> Result<Vec<StoredVulnRecord>>;
    /// Every source with its bookkeeping, by name.
    async fn vuln_sources(&self) -> Result<Vec<VulnSource>>;
    /// Remembers a sync attempt of source `name` at `now`: the URL and the response's
    /// validators (replacing the previous ones; `None` clears one). Creates the source
    /// row (with no records) if absent; its records and `imported_at` are untouched.
    async fn record_vuln_sync(
        &self,
        name: &str,
        url: &str,
        etag: Option<&str>,
        last_modified: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<()>;
    /// The vulnerability database generation: 0 before the first import that stored a
    /// record, bumped by every import that changed something.
    async fn vuln_generation(&self) -> Result<i64>;
}

/// Opens (creating if needed) and migrates the database that `url` names:
/// `sqlite://PATH` / `sqlite:PATH` or `postgres://...` / `postgresql://...`.
pub async fn open(url: &str) -> Result<Arc<dyn Storage>> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(sql::SqliteStore::open(url).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(sql::PostgresStore::open(url).await?))
    } else {
        let scheme = url.split(':').next().unwrap_or("").to_owned();
        Err(StorageError::UnsupportedUrl(scheme))
    }
}
