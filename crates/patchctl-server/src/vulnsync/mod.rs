//! The platform's vulnerability feed sync: one implementation, used by
//! `patchctl vulndb sync` (all feeds, now) and by the scheduler every platform node runs
//! ([`schedule`]: due feeds, one node at a time).
//!
//! A feed ([`crate::settings::Feed`]) is a name, a URL and a [`FeedKind`] ([`feeds`]):
//! a `file` is downloaded as it is; a `repomd` repository leads through `mirror.list`
//! and `repomd.xml` to its `updateinfo` file; a `redhat-vex-bulk` feed is Red Hat's
//! archive first and its `changes.csv` and `deletions.csv` afterwards ([`kinds`], the
//! pointer files parsed in [`pointers`]). Every download is conditional (the validators
//! of the last good one are kept in the feed's cursor) and is streamed into a temporary
//! directory under the sync's working directory, which is removed afterwards; the
//! downloaded files are then read by the [`Importer`] (normally
//! [`patchctl_vuln::import::import_paths`]) and stored, one transaction per feed batch.
//!
//! Invariants:
//! - Nothing of a failed or partial download is imported: every file of a feed's
//!   attempt is downloaded before any is read.
//! - A feed's cursor (validators, archive, last change seen) advances only when its
//!   import is stored, so a failed import is retried in full.
//! - Every attempt leaves the feed's [`FeedSyncState`]: success (time, records, next
//!   attempt one jittered interval later) or failure (the error, URLs without
//!   credentials, consecutive failures, an earlier retry with backoff, never later than
//!   the interval). [`status`] turns these into the report.

pub mod feeds;
pub mod kinds;
pub mod pointers;
pub mod schedule;
pub mod status;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use patchctl_net::download::{DownloadError, Downloader, Validators};
use patchctl_storage::{FeedSyncState, Storage, StorageError, VulnImport};
use patchctl_vuln::import::{FeedBatch, ImportError};
use serde::{Deserialize, Serialize};

pub use feeds::{DEFAULT_FEEDS, FeedKind, default_feeds, effective_feeds};

use crate::settings::Feed;
pub use crate::settings::work_dir_for;

/// Largest pointer file read (`mirror.list`, `repomd.xml`, `archive_latest.txt`,
/// `changes.csv`): 64 MiB.
pub const MAX_POINTER_BYTES: u64 = 64 << 20;

/// Why one feed's sync failed. The text is what `vulndb status` shows: it names URLs
/// without credentials.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// A download failed (unreachable, TLS, HTTP status, too large, truncated).
    #[error(transparent)]
    Download(#[from] DownloadError),
    /// A pointer file (`mirror.list`, `repomd.xml`, `archive_latest.txt`, `changes.csv`)
    /// could not be used.
    #[error("{file} of {url}: {source}")]
    Pointer {
        /// Which file.
        file: &'static str,
        /// Its URL, without credentials.
        url: String,
        /// What is wrong.
        source: pointers::PointerError,
    },
    /// The downloaded files could not be read as records.
    #[error(transparent)]
    Import(#[from] ImportError),
    /// Storing the records (or the sync state) failed.
    #[error("storing the feed failed: {0}")]
    Store(#[from] StorageError),
    /// The temporary download directory could not be made.
    #[error("cannot prepare {}: {source}", path.display())]
    WorkDir {
        /// The directory.
        path: PathBuf,
        /// What the file system said.
        source: std::io::Error,
    },
    /// The import task stopped without an answer.
    #[error("the import stopped unexpectedly: {0}")]
    Task(String),
}

/// Reads downloaded files into records: the seam between fetching and importing.
pub trait Importer: Send + Sync + 'static {
    /// Reads `files` (downloaded for `feed`, in this order) into batches. Runs on a
    /// blocking thread.
    fn import(&self, feed: &Feed, files: &[PathBuf]) -> Result<Vec<FeedBatch>, ImportError>;
}

/// The importer of the real formats: [`patchctl_vuln::import::import_paths`].
#[derive(Debug, Clone, Copy, Default)]
pub struct PathImporter;

impl Importer for PathImporter {
    fn import(&self, _feed: &Feed, files: &[PathBuf]) -> Result<Vec<FeedBatch>, ImportError> {
        patchctl_vuln::import::import_paths(files, &mut |_| {})
    }
}

/// What happens during a sync, for whoever shows it (the CLI's progress lines, the
/// scheduler's log).
#[derive(Debug)]
pub enum Event<'a> {
    /// Bytes of a download so far.
    Progress {
        /// Feed name.
        feed: &'a str,
        /// Bytes received.
        got: u64,
        /// Bytes announced.
        total: Option<u64>,
    },
    /// The feed did not change since its last sync.
    NotModified {
        /// Feed name.
        feed: &'a str,
    },
    /// The feed's files are downloaded and are being read.
    Downloaded {
        /// Feed name.
        feed: &'a str,
        /// Files downloaded.
        files: usize,
        /// Their size.
        bytes: u64,
        /// Time taken.
        elapsed: Duration,
    },
    /// A note about the feed (a changed document that is gone, skipped lines).
    Note {
        /// Feed name.
        feed: &'a str,
        /// The note.
        text: String,
    },
    /// A record was rejected by the importer.
    Rejected {
        /// Feed name.
        feed: &'a str,
        /// The importer's source.
        source: &'a str,
        /// Record id.
        id: &'a str,
        /// Why.
        reason: &'a str,
    },
    /// A batch was stored.
    Stored {
        /// Feed name.
        feed: &'a str,
        /// The importer's source (`osv`, `debian-tracker`, …).
        source: &'a str,
        /// Records in the batch.
        records: usize,
        /// Records rejected.
        rejected: usize,
        /// What the store did.
        outcome: &'a VulnImport,
    },
    /// The feed's sync failed; its earlier data is kept.
    Failed {
        /// Feed name.
        feed: &'a str,
        /// The error.
        error: &'a SyncError,
    },
}

/// Receives [`Event`]s.
pub trait Observer: Send {
    /// One event.
    fn event(&mut self, event: Event<'_>);
}

/// An observer that logs with `tracing` (the scheduler's).
#[derive(Debug, Default)]
pub struct LogObserver;

impl Observer for LogObserver {
    fn event(&mut self, event: Event<'_>) {
        match event {
            Event::Progress { .. } | Event::Rejected { .. } => {}
            Event::NotModified { feed } => tracing::debug!(feed, "feed not modified"),
            Event::Downloaded {
                feed, files, bytes, ..
            } => tracing::info!(feed, files, bytes, "feed downloaded; importing"),
            Event::Note { feed, text } => tracing::info!(feed, "{text}"),
            Event::Stored {
                feed,
                source,
                records,
                rejected,
                outcome,
            } => tracing::info!(
                feed,
                source,
                records,
                rejected,
                inserted = outcome.inserted,
                updated = outcome.updated,
                "feed imported"
            ),
            Event::Failed { feed, error } => {
                tracing::debug!(feed, error = %error, "feed sync failed")
            }
        }
    }
}

/// Validators of one download of a feed, and the URL (without credentials) they belong
/// to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    /// The URL, without credentials.
    pub url: String,
    /// Its validators.
    pub validators: Validators,
}

/// A feed's own sync state (stored as JSON in [`FeedSyncState::cursor_json`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// Validators by role (`file`, `repomd`, `updateinfo`, `changes`, `deletions`).
    #[serde(default)]
    pub stamps: BTreeMap<String, Stamp>,
    /// `redhat-vex-bulk`: the archive last imported whole.
    #[serde(default)]
    pub archive: Option<String>,
    /// `redhat-vex-bulk`: changes up to this time are imported.
    #[serde(default)]
    pub since: Option<DateTime<Utc>>,
}

impl Cursor {
    /// The validators of `role` when they belong to `url`.
    pub fn validators(&self, role: &str, url: &str) -> Validators {
        self.stamps
            .get(role)
            .filter(|s| s.url == without_userinfo(url))
            .map(|s| s.validators.clone())
            .unwrap_or_default()
    }

    /// Remembers `validators` of `role` for `url`.
    pub fn stamp(&mut self, role: &str, url: &str, validators: Validators) {
        self.stamps.insert(
            role.to_owned(),
            Stamp {
                url: without_userinfo(url),
                validators,
            },
        );
    }
}

/// A URL as shown: credentials in it (`https://user:pass@host/`) are replaced by `***`.
pub fn without_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
        None => url.to_string(),
    }
}

/// The result of one feed's sync.
#[derive(Debug)]
pub struct FeedReport {
    /// The feed.
    pub feed: Feed,
    /// `Ok(None)`: not modified; `Ok(Some(n))`: `n` records imported; or the error.
    pub outcome: Result<Option<u64>, SyncError>,
    /// The state stored after the attempt.
    pub state: FeedSyncState,
}

/// Downloads feeds and imports them into the store.
#[derive(Clone)]
pub struct Syncer {
    store: Arc<dyn Storage>,
    downloader: Downloader,
    work_dir: PathBuf,
    importer: Arc<dyn Importer>,
    interval: Duration,
}

impl Syncer {
    /// A syncer over `store`, downloading with `downloader` into temporary directories
    /// under `work_dir`, reading with [`PathImporter`]; feeds are due again `interval`
    /// (jittered) after a success.
    pub fn new(
        store: Arc<dyn Storage>,
        downloader: Downloader,
        work_dir: PathBuf,
        interval: Duration,
    ) -> Syncer {
        Syncer {
            store,
            downloader,
            work_dir,
            importer: Arc::new(PathImporter),
            interval,
        }
    }

    /// This syncer with another importer (tests watch what is handed to the import).
    pub fn with_importer(mut self, importer: Arc<dyn Importer>) -> Syncer {
        self.importer = importer;
        self
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Storage> {
        &self.store
    }

    /// The interval between two syncs of a feed.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Syncs `feeds` now (all of them when `only_due` is false, else only those whose
    /// next attempt has come), one after the other, storing each one's state.
    pub async fn sync(
        &self,
        feeds: &[Feed],
        only_due: bool,
        observer: &mut (dyn Observer + Send),
    ) -> Result<Vec<FeedReport>, StorageError> {
        let states = self.store.vuln_feed_states().await?;
        let mut reports = Vec::new();
        for feed in feeds {
            let previous = states
                .iter()
                .find(|s| s.name == feed.name && s.kind == feed.kind.as_str() && s.url == feed.url)
                .cloned();
            if only_due && !schedule::is_due(previous.as_ref(), Utc::now()) {
                continue;
            }
            reports.push(self.sync_feed(feed, previous, observer).await?);
        }
        Ok(reports)
    }

    /// Syncs one feed from its `previous` state (`None`: never synced, or its URL or
    /// kind changed) and stores the new state.
    async fn sync_feed(
        &self,
        feed: &Feed,
        previous: Option<FeedSyncState>,
        observer: &mut (dyn Observer + Send),
    ) -> Result<FeedReport, StorageError> {
        let started_at = Utc::now();
        let cursor: Cursor = previous
            .as_ref()
            .and_then(|s| s.cursor_json.as_deref())
            .and_then(|j| serde_json::from_str(j).ok())
            .unwrap_or_default();
        let outcome = self.attempt(feed, cursor, observer).await;
        let previous = previous.unwrap_or_default();
        let mut state = FeedSyncState {
            name: feed.name.clone(),
            kind: feed.kind.as_str().to_owned(),
            url: feed.url.clone(),
            last_attempt_at: Some(started_at),
            ..previous
        };
        let now = Utc::now();
        let outcome = match outcome {
            Ok((records, cursor)) => {
                state.last_success_at = Some(now);
                state.failures = 0;
                state.last_error = None;
                state.next_attempt_at = Some(now + schedule::after_success(self.interval));
                if records.is_some() {
                    state.records = records;
                }
                state.cursor_json = serde_json::to_string(&cursor).ok();
                Ok(records)
            }
            Err(e) => {
                observer.event(Event::Failed {
                    feed: &feed.name,
                    error: &e,
                });
                state.failures = state.failures.saturating_add(1);
                state.last_error = Some(e.to_string());
                state.next_attempt_at =
                    Some(now + schedule::after_failure(state.failures, self.interval));
                Err(e)
            }
        };
        self.store.put_vuln_feed_state(&state).await?;
        Ok(FeedReport {
            feed: feed.clone(),
            outcome,
            state,
        })
    }

    /// Downloads what changed, imports it; the records imported (`None`: nothing
    /// changed) and the cursor to keep.
    async fn attempt(
        &self,
        feed: &Feed,
        cursor: Cursor,
        observer: &mut (dyn Observer + Send),
    ) -> Result<(Option<u64>, Cursor), SyncError> {
        let dir = WorkDir::create(&self.work_dir, &feed.name)?;
        let started = Instant::now();
        let mut fetch = kinds::Fetch {
            downloader: &self.downloader,
            dir: &dir.path,
            feed: &feed.name,
            observer,
            bytes: 0,
        };
        let (files, cursor) = match feed.kind {
            FeedKind::File => kinds::file(&mut fetch, &feed.url, cursor).await?,
            FeedKind::Repomd => kinds::repomd(&mut fetch, &feed.url, cursor).await?,
            FeedKind::RedhatVexBulk => {
                kinds::redhat_vex_bulk(&mut fetch, &feed.url, cursor).await?
            }
        };
        let bytes = fetch.bytes;
        if files.is_empty() {
            observer.event(Event::NotModified { feed: &feed.name });
            return Ok((None, cursor));
        }
        observer.event(Event::Downloaded {
            feed: &feed.name,
            files: files.len(),
            bytes,
            elapsed: started.elapsed(),
        });
        let importer = self.importer.clone();
        let owned_feed = feed.clone();
        let batches = tokio::task::spawn_blocking(move || importer.import(&owned_feed, &files))
            .await
            .map_err(|e| SyncError::Task(e.to_string()))??;
        let mut records = 0u64;
        for b in &batches {
            for r in &b.parsed.rejected {
                observer.event(Event::Rejected {
                    feed: &feed.name,
                    source: b.feed,
                    id: &r.id,
                    reason: &r.reason,
                });
            }
            let outcome = self
                .store
                .import_vuln_records(b.feed, &b.parsed.records, Utc::now())
                .await?;
            records += b.parsed.records.len() as u64;
            observer.event(Event::Stored {
                feed: &feed.name,
                source: b.feed,
                records: b.parsed.records.len(),
                rejected: b.parsed.rejected.len(),
                outcome: &outcome,
            });
        }
        drop(dir);
        Ok((Some(records), cursor))
    }
}

/// A temporary directory for one feed's downloads, removed when dropped.
struct WorkDir {
    path: PathBuf,
}

impl WorkDir {
    fn create(under: &Path, feed: &str) -> Result<WorkDir, SyncError> {
        let safe: String = feed
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .take(64)
            .collect();
        let path = under.join(format!(
            ".vulnsync-{safe}-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&path).map_err(|source| SyncError::WorkDir {
            path: path.clone(),
            source,
        })?;
        Ok(WorkDir { path })
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.path) {
            tracing::warn!(path = %self.path.display(), error = %e, "cannot remove a feed download directory");
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn urls_are_shown_without_credentials() {
        use super::without_userinfo as w;
        assert_eq!(
            w("https://u:p@feeds.example/x@y"),
            "https://***@feeds.example/x@y"
        );
        assert_eq!(w("https://feeds.example/a"), "https://feeds.example/a");
        assert_eq!(w("not a url"), "not a url");
    }
}
