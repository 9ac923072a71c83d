//! The sync scheduler every platform node runs: shortly after start, and then whenever
//! a feed is due, the node takes the sync lease (one row in the database: of several
//! nodes on one PostgreSQL, one syncs at a time; the others skip the round and their
//! CVE engines follow the stored generation), syncs the due feeds and gives the lease
//! back.
//!
//! Times: a feed is due again one interval after a success, jittered by ±10 %
//! ([`after_success`]) so that many platforms do not all ask the vendors at once; after
//! a failure it is retried sooner, with backoff ([`after_failure`]: 5 min, 10, 20, …,
//! never later than the interval).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Local, Utc};
use patchctl_storage::FeedSyncState;
use rand::Rng;

use patchctl_net::download::Downloader;
use patchctl_storage::Storage;

use super::{FeedReport, LogObserver, SyncError, Syncer, effective_feeds};
use crate::Settings;
use crate::settings::Feed;

/// Share of the interval a next attempt is moved by, either way.
pub const JITTER: f64 = 0.10;
/// The first retry after a failure; doubled with every further failure.
pub const FIRST_RETRY: Duration = Duration::from_secs(5 * 60);
/// How long a lease lasts without renewal (a node that dies holding it delays the next
/// sync by at most this).
pub const LEASE: Duration = Duration::from_secs(5 * 60);
/// How often a syncing node renews its lease.
pub const RENEW_EVERY: Duration = Duration::from_secs(60);
/// Longest a node sleeps before it looks at the feeds' next attempts again.
pub const CHECK_EVERY: Duration = Duration::from_secs(60);
/// The first round after the platform starts (jittered): soon, but not in the way of
/// the start itself.
pub const FIRST_DELAY: Duration = Duration::from_secs(10);

/// `d` moved by a random share of at most [`JITTER`] either way.
pub fn jittered(d: Duration) -> Duration {
    let factor = rand::rng().random_range((1.0 - JITTER)..=(1.0 + JITTER));
    d.mul_f64(factor)
}

/// When a feed is due after a success: the interval, jittered.
pub fn after_success(interval: Duration) -> chrono::Duration {
    chrono::Duration::from_std(jittered(interval)).unwrap_or(chrono::Duration::MAX)
}

/// When a feed is due after its `failures`-th failure in a row: [`FIRST_RETRY`] doubled
/// per earlier failure, jittered, and never later than the interval.
pub fn after_failure(failures: u32, interval: Duration) -> chrono::Duration {
    let doublings = failures.saturating_sub(1).min(20);
    let backoff = FIRST_RETRY.saturating_mul(1 << doublings);
    let wait = jittered(backoff).min(interval);
    chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX)
}

/// Whether a feed with this state (`None`: never synced) is due at `now`.
pub fn is_due(state: Option<&FeedSyncState>, now: DateTime<Utc>) -> bool {
    state
        .and_then(|s| s.next_attempt_at)
        .is_none_or(|next| next <= now)
}

/// What the scheduler of one node needs.
pub struct Scheduler {
    syncer: Syncer,
    feeds: Vec<Feed>,
    holder: String,
    first_delay: Duration,
}

impl Scheduler {
    /// A scheduler syncing `feeds` with `syncer`, as the node `holder` (a unique name).
    pub fn new(syncer: Syncer, feeds: Vec<Feed>, holder: String) -> Scheduler {
        Scheduler {
            syncer,
            feeds,
            holder,
            first_delay: jittered(FIRST_DELAY),
        }
    }

    /// This scheduler with another delay before its first round (tests: zero).
    pub fn with_first_delay(mut self, delay: Duration) -> Scheduler {
        self.first_delay = delay;
        self
    }

    /// Runs rounds forever (spawn it; abort the task to stop it).
    pub async fn run(self) {
        tokio::time::sleep(self.first_delay).await;
        let mut told = false;
        loop {
            match self.round().await {
                Ok(Some(reports)) => {
                    if !told && !reports.is_empty() {
                        told = true;
                        if let Some(notice) = first_round_notice(&reports) {
                            tracing::warn!("{notice}");
                        }
                    }
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "vulnerability feed sync round failed"),
            }
            tokio::time::sleep(self.sleep_time().await).await;
        }
    }

    /// One round: takes the lease, syncs the due feeds, gives the lease back. `None`
    /// when another node holds the lease.
    pub async fn round(&self) -> Result<Option<Vec<FeedReport>>, patchctl_storage::StorageError> {
        let store = self.syncer.store().clone();
        let now = Utc::now();
        let until = now + chrono::Duration::from_std(LEASE).unwrap_or(chrono::Duration::MAX);
        if !store.take_vuln_sync_lease(&self.holder, now, until).await? {
            tracing::debug!("another platform node is syncing the vulnerability feeds");
            return Ok(None);
        }
        let renew = {
            let store = store.clone();
            let holder = self.holder.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(RENEW_EVERY).await;
                    let now = Utc::now();
                    let until =
                        now + chrono::Duration::from_std(LEASE).unwrap_or(chrono::Duration::MAX);
                    if let Err(e) = store.take_vuln_sync_lease(&holder, now, until).await {
                        tracing::warn!(error = %e, "cannot renew the feed sync lease");
                    }
                }
            })
        };
        // The due feeds are read under the lease: a node that waited for it sees what
        // the previous holder did.
        let result = self.syncer.sync(&self.feeds, true, &mut LogObserver).await;
        renew.abort();
        if let Err(e) = store.release_vuln_sync_lease(&self.holder).await {
            tracing::warn!(error = %e, "cannot release the feed sync lease");
        }
        result.map(Some)
    }

    /// Until the next feed is due, at most [`CHECK_EVERY`] (jittered), at least 1 s.
    async fn sleep_time(&self) -> Duration {
        let states = match self.syncer.store().vuln_feed_states().await {
            Ok(s) => s,
            Err(_) => return jittered(CHECK_EVERY),
        };
        let now = Utc::now();
        let next = self
            .feeds
            .iter()
            .map(|f| {
                states
                    .iter()
                    .find(|s| s.name == f.name && s.url == f.url && s.kind == f.kind.as_str())
                    .and_then(|s| s.next_attempt_at)
                    .unwrap_or(now)
            })
            .min();
        let wait = next
            .map(|n| (n - now).to_std().unwrap_or(Duration::ZERO))
            .unwrap_or(CHECK_EVERY);
        wait.clamp(Duration::from_secs(1), jittered(CHECK_EVERY))
    }
}

/// What the log says once after this node's first round that synced something, when
/// feeds failed: `vulnerability feeds: offline (cannot reach HOST: …); keeping the
/// current data; next attempt at HH:MM; …` when every feed failed to connect, else how
/// many failed. `None` when all went well.
pub fn first_round_notice(reports: &[FeedReport]) -> Option<String> {
    let failed: Vec<(&FeedReport, &SyncError)> = reports
        .iter()
        .filter_map(|r| r.outcome.as_ref().err().map(|e| (r, e)))
        .collect();
    let (first, error) = failed.first()?;
    let next = reports
        .iter()
        .filter(|r| r.outcome.is_err())
        .filter_map(|r| r.state.next_attempt_at)
        .min()
        .map(|t| t.with_timezone(&Local).format("%H:%M").to_string())
        .unwrap_or_else(|| "-".into());
    let unreachable = |e: &SyncError| {
        matches!(
            e,
            SyncError::Download(
                patchctl_net::download::DownloadError::Connect { .. }
                    | patchctl_net::download::DownloadError::Timeout { .. }
            )
        )
    };
    let advice =
        "import files with `patchctl vulndb import`; `patchctl vulndb status` shows each feed";
    if failed.len() == reports.len() && failed.iter().all(|(_, e)| unreachable(e)) {
        let host = host_of(&first.feed.url);
        let reason = short_reason(error);
        return Some(format!(
            "vulnerability feeds: offline (cannot reach {host}: {reason}); keeping the current \
             data; next attempt at {next}; {advice}"
        ));
    }
    Some(format!(
        "vulnerability feeds: {} of {} failing (first: {}: {}); keeping their current data; \
         next attempt at {next}; {advice}",
        failed.len(),
        reports.len(),
        first.feed.name,
        error
    ))
}

/// `host[:port]` of a URL, without credentials.
fn host_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    authority
        .rsplit_once('@')
        .map_or(authority, |(_, h)| h)
        .to_owned()
}

/// The detail of an unreachable download, without the long advice.
fn short_reason(e: &SyncError) -> String {
    match e {
        SyncError::Download(patchctl_net::download::DownloadError::Connect { detail, .. }) => {
            detail.clone()
        }
        SyncError::Download(patchctl_net::download::DownloadError::Timeout { timeout, .. }) => {
            format!("no answer within {} s", timeout.as_secs())
        }
        other => other.to_string(),
    }
}

/// A unique name for this node's lease: host name, process id and a random suffix.
pub fn holder_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "node".into());
    format!(
        "{host}/{}/{}",
        std::process::id(),
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

/// Starts this node's scheduler on the current runtime as `settings` say (`None`
/// when `vuln_sync` is false, or the feeds' CA bundle cannot be read, which is logged).
/// Abort the task to stop it.
pub fn start(settings: &Settings, store: Arc<dyn Storage>) -> Option<tokio::task::JoinHandle<()>> {
    if !settings.vuln_sync {
        tracing::info!("automatic vulnerability feed sync is off (vuln_sync: false)");
        return None;
    }
    let tls = match patchctl_net::client_config(settings.vuln_ca_file.as_deref()) {
        Ok(tls) => tls,
        Err(e) => {
            tracing::error!(error = %e, "vulnerability feed sync not started: cannot load the feeds' CA bundle (vuln_ca_file)");
            return None;
        }
    };
    let interval = Duration::from_secs(settings.vuln_sync_interval_secs);
    let feeds = effective_feeds(&settings.vuln_feeds);
    tracing::info!(
        feeds = feeds.len(),
        interval_secs = interval.as_secs(),
        "vulnerability feed sync on: each feed every interval_secs (±10 %), first round in about 10 s"
    );
    let syncer = Syncer::new(
        store,
        Downloader::new(tls),
        settings.vuln_work_dir(),
        interval,
    );
    Some(tokio::spawn(
        Scheduler::new(syncer, feeds, holder_name()).run(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_ten_percent() {
        let d = Duration::from_secs(6 * 3600);
        let (lo, hi) = (d.mul_f64(0.9), d.mul_f64(1.1));
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..2_000 {
            let j = jittered(d);
            assert!(lo <= j && j <= hi, "{j:?}");
            seen.insert(j.as_secs() / 60);
        }
        // It does move: 2,000 draws over a 72-minute window land on many minutes.
        assert!(seen.len() > 30, "{}", seen.len());
    }

    #[test]
    fn backoff_doubles_and_never_passes_the_interval() {
        let interval = Duration::from_secs(6 * 3600);
        let mins = |f| after_failure(f, interval).num_seconds() as f64 / 60.0;
        for (failures, base) in [(1, 5.0), (2, 10.0), (3, 20.0), (4, 40.0), (5, 80.0)] {
            let m = mins(failures);
            assert!(m >= base * 0.9 && m <= base * 1.1, "{failures}: {m}");
        }
        for failures in [7, 8, 30, u32::MAX] {
            assert!(after_failure(failures, interval).to_std().unwrap() <= interval);
        }
        let short = Duration::from_secs(60);
        assert_eq!(after_failure(3, short).to_std().unwrap(), short);
        let s = after_success(interval).to_std().unwrap();
        assert!(s >= interval.mul_f64(0.9) && s <= interval.mul_f64(1.1));
    }

    #[test]
    fn due_when_never_synced_or_next_attempt_passed() {
        let now = Utc::now();
        assert!(is_due(None, now));
        let mut s = FeedSyncState::default();
        assert!(is_due(Some(&s), now));
        s.next_attempt_at = Some(now + chrono::Duration::seconds(5));
        assert!(!is_due(Some(&s), now));
        s.next_attempt_at = Some(now);
        assert!(is_due(Some(&s), now));
    }

    #[test]
    fn hosts_are_shown_without_credentials() {
        assert_eq!(
            host_of("https://u:p@feeds.example:8443/a"),
            "feeds.example:8443"
        );
        assert_eq!(
            host_of("https://security-tracker.debian.org/tracker/data/json"),
            "security-tracker.debian.org"
        );
    }
}
