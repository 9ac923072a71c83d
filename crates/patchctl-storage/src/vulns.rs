//! Vulnerability data: imported records, their sources (feeds) and the database
//! generation ([`VulnStore`]). The SQL, and the invariants of the `vuln_*` tables, are
//! in `sql/vulns.rs`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::Result;

/// What [`VulnStore::import_vuln_records`] did.
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

/// The sync bookkeeping of one configured feed (`vuln_feed_sync`), kept by the
/// platform's feed sync: what the status report shows and what the next sync starts
/// from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedSyncState {
    /// The feed's configured name.
    pub name: String,
    /// The feed's kind at the last attempt (`file`, `repomd`, `redhat-vex-bulk`).
    pub kind: String,
    /// The feed's URL at the last attempt, as configured (may hold credentials: show it
    /// only without its user information).
    pub url: String,
    /// When the last attempt started.
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// When an attempt last ended with the feed's data current (imported, or not
    /// modified).
    pub last_success_at: Option<DateTime<Utc>>,
    /// Failed attempts in a row since then.
    pub failures: u32,
    /// What the last failed attempt said (URLs without credentials); `None` once an
    /// attempt succeeds.
    pub last_error: Option<String>,
    /// When the feed is due next.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Records handed to the import by the feed's last download.
    pub records: Option<u64>,
    /// The kind's own sync state (validators, archive name), opaque JSON.
    pub cursor_json: Option<String>,
}

/// The vulnerability database. Times are passed in (never read from the clock inside).
#[async_trait]
pub trait VulnStore: Send + Sync + 'static {
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
    /// [`StorageError::Invalid`]: crate::StorageError::Invalid
    async fn import_vuln_records(
        &self,
        source: &str,
        records: &[patchctl_vuln::Record],
        now: DateTime<Utc>,
    ) -> Result<VulnImport>;
    /// Every stored record (withdrawn ones included) with its source and import time,
    /// by source then id, for building the in-memory index. Read
    /// [`VulnStore::vuln_generation`] first: a later generation means a reload is due.
    async fn vuln_records(&self) -> Result<Vec<StoredVulnRecord>>;
    /// The records touching any of these `(ecosystem, package)` pairs, each once, by
    /// source then id. Any number of pairs (they are looked up in chunks).
    async fn vuln_records_for(&self, keys: &[(String, String)]) -> Result<Vec<StoredVulnRecord>>;
    /// Which of these ecosystems any stored record states something about (those whose
    /// releases have vulnerability data), in the order given.
    async fn vuln_ecosystems_with_data(&self, ecosystems: &[String]) -> Result<Vec<String>>;
    /// Every stored record of one source (feed), by id: the catalogs that name no
    /// package (CISA KEV) are loaded this way by the offline check.
    async fn vuln_records_of(&self, source: &str) -> Result<Vec<StoredVulnRecord>>;
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
    /// Every feed's sync bookkeeping, by name.
    async fn vuln_feed_states(&self) -> Result<Vec<FeedSyncState>>;
    /// Stores `state` as the bookkeeping of feed `state.name`, replacing what was there.
    async fn put_vuln_feed_state(&self, state: &FeedSyncState) -> Result<()>;
    /// Takes or renews the feed sync lease for `holder` until `until`: succeeds (true)
    /// when the lease is free, expired at `now`, or already `holder`'s. One conditional
    /// `UPDATE`, so of several nodes asking at once exactly one gets a free lease.
    async fn take_vuln_sync_lease(
        &self,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool>;
    /// Gives the lease up if `holder` has it.
    async fn release_vuln_sync_lease(&self, holder: &str) -> Result<()>;
    /// The vulnerability database generation: 0 before the first import that stored a
    /// record, bumped by every import that changed something.
    async fn vuln_generation(&self) -> Result<i64>;
}
