//! The gauges read at scrape time: hosts by status and agent version, commands by
//! state and the queue depth (cheap aggregate queries), the CVE engine's size and its
//! hosts without data, and the feed sync. The page is cached for [`CACHE_FOR`], and
//! concurrent scrapes wait for one computation, so that a scrape storm costs the
//! database one set of queries every few seconds.
//!
//! A scrape with an API token sees the organisation families (`org` label) of its own
//! organisation only; the plain listener (`metrics_listen`) sees every organisation.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::Utc;
use patchctl_proto::api::{CommandState, HostStatus};
use patchctl_storage::{AgentVersionCount, CommandStateCount, HostStatusCount};
use tokio::sync::Mutex;
use uuid::Uuid;

use super::text::{Kind, Text};
use crate::AppState;
use crate::vulnsync::status::{FeedState, report};

/// How long a computed page is served again.
pub const CACHE_FOR: Duration = Duration::from_secs(5);

/// Every host status, as labelled.
const STATUSES: [HostStatus; 4] = [
    HostStatus::Online,
    HostStatus::Offline,
    HostStatus::Pending,
    HostStatus::Revoked,
];

/// Every command state, as labelled.
const STATES: [CommandState; 7] = [
    CommandState::Queued,
    CommandState::Delivered,
    CommandState::Succeeded,
    CommandState::Failed,
    CommandState::Rejected,
    CommandState::Expired,
    CommandState::Cancelled,
];

/// Every feed state, as labelled.
const FEED_STATES: [(FeedState, &str); 4] = [
    (FeedState::Ok, "ok"),
    (FeedState::Failing, "failing"),
    (FeedState::NeverSynced, "never_synced"),
    (FeedState::Disabled, "disabled"),
];

/// The cached results of the scrape-time queries.
#[derive(Debug, Default)]
pub struct FleetCache {
    snapshot: Mutex<Option<(Instant, std::sync::Arc<Snapshot>)>>,
}

/// One computation: the per-organisation rows, and the platform-wide page.
#[derive(Debug, Default)]
struct Snapshot {
    hosts: Option<Vec<HostStatusCount>>,
    versions: Option<Vec<AgentVersionCount>>,
    commands: Option<Vec<CommandStateCount>>,
    /// The engine, the feeds and the query's own gauges.
    platform: String,
}

impl FleetCache {
    /// The page for `org` (every organisation when `None`), from queries made at most
    /// once every [`CACHE_FOR`].
    pub async fn page(&self, st: &AppState, org: Option<Uuid>) -> String {
        let snapshot = {
            let mut cached = self.snapshot.lock().await;
            match cached.as_ref() {
                Some((at, s)) if at.elapsed() < CACHE_FOR => std::sync::Arc::clone(s),
                _ => {
                    let s = std::sync::Arc::new(compute(st).await);
                    *cached = Some((Instant::now(), std::sync::Arc::clone(&s)));
                    s
                }
            }
        };
        encode(&snapshot, org)
    }
}

/// Runs the queries; a failed one leaves its families out and sets
/// `patchctl_fleet_query_ok` to 0 (the other families are still served).
async fn compute(st: &AppState) -> Snapshot {
    let started = Instant::now();
    let mut ok = true;
    let online_since =
        Utc::now() - chrono::Duration::from_std(st.settings.offline_after()).unwrap_or_default();
    let mut failed = |what: &str, e: patchctl_storage::StorageError| {
        ok = false;
        tracing::warn!(error = %e, "metrics: {what} failed");
    };
    let hosts = st
        .store
        .host_status_counts(online_since)
        .await
        .map_err(|e| failed("host status counts", e))
        .ok();
    let versions = st
        .store
        .agent_version_counts()
        .await
        .map_err(|e| failed("agent version counts", e))
        .ok();
    let commands = st
        .store
        .command_state_counts()
        .await
        .map_err(|e| failed("command state counts", e))
        .ok();
    let feed_states = st
        .store
        .vuln_feed_states()
        .await
        .map_err(|e| failed("feed states", e))
        .ok();
    let mut t = Text::new();
    engine(st, &mut t).await;
    if let Some(states) = feed_states {
        feeds(st, &states, &mut t);
    }
    t.family(
        "patchctl_fleet_query_ok",
        Kind::Gauge,
        "1 when every scrape-time query of the database succeeded, 0 when some family is missing.",
    );
    t.sample("patchctl_fleet_query_ok", &[], if ok { 1.0 } else { 0.0 });
    t.family(
        "patchctl_fleet_query_seconds",
        Kind::Gauge,
        "Time the scrape-time gauges took to compute (cached for 5 seconds).",
    );
    t.sample(
        "patchctl_fleet_query_seconds",
        &[],
        started.elapsed().as_secs_f64(),
    );
    Snapshot {
        hosts,
        versions,
        commands,
        platform: t.finish(),
    }
}

/// The page of `snapshot` for `org` (every organisation when `None`).
fn encode(snapshot: &Snapshot, org: Option<Uuid>) -> String {
    let mut t = Text::new();
    let mine = |id: Uuid| org.is_none_or(|o| o == id);
    if let Some(rows) = &snapshot.hosts {
        {
            let mut by_org: BTreeMap<&str, [u64; 4]> = BTreeMap::new();
            for r in rows.iter().filter(|r| mine(r.org_id)) {
                let slot = STATUSES.iter().position(|s| *s == r.status).unwrap_or(0);
                by_org.entry(&r.org).or_default()[slot] += r.count;
            }
            t.family(
                "patchctl_hosts",
                Kind::Gauge,
                "Hosts by organisation and status (online: a heartbeat within three intervals; offline; pending approval; revoked).",
            );
            for (org, counts) in &by_org {
                for (s, n) in STATUSES.iter().zip(counts) {
                    t.sample(
                        "patchctl_hosts",
                        &[("org", org), ("status", s.as_str())],
                        *n as f64,
                    );
                }
            }
        }
    }
    if let Some(rows) = &snapshot.versions {
        {
            t.family(
                "patchctl_hosts_by_agent_version",
                Kind::Gauge,
                "Hosts (not revoked) by organisation and the agent version they reported.",
            );
            for r in rows.iter().filter(|r| mine(r.org_id)) {
                t.sample(
                    "patchctl_hosts_by_agent_version",
                    &[("org", &r.org), ("version", &r.version)],
                    r.count as f64,
                );
            }
        }
    }
    if let Some(rows) = &snapshot.commands {
        {
            let mut by_org: BTreeMap<&str, [u64; 7]> = BTreeMap::new();
            for r in rows.iter().filter(|r| mine(r.org_id)) {
                let slot = STATES.iter().position(|s| *s == r.state).unwrap_or(0);
                by_org.entry(&r.org).or_default()[slot] += r.count;
            }
            t.family(
                "patchctl_commands",
                Kind::Gauge,
                "Commands by organisation and state.",
            );
            for (org, counts) in &by_org {
                for (s, n) in STATES.iter().zip(counts) {
                    t.sample(
                        "patchctl_commands",
                        &[("org", org), ("state", s.as_str())],
                        *n as f64,
                    );
                }
            }
            t.family(
                "patchctl_command_queue_depth",
                Kind::Gauge,
                "Commands queued and not yet delivered to their host, by organisation.",
            );
            for (org, counts) in &by_org {
                t.sample(
                    "patchctl_command_queue_depth",
                    &[("org", org)],
                    counts[0] as f64,
                );
            }
        }
    }
    t.append(&snapshot.platform);
    t.finish()
}

/// The engine's gauges; while it loads only `patchctl_vuln_engine_ready 0` (its sizes
/// and the hosts without data are unknown then, never zero).
async fn engine(st: &AppState, t: &mut Text) {
    let stats = st.vulns.stats().await;
    t.family(
        "patchctl_vuln_engine_ready",
        Kind::Gauge,
        "1 when the CVE engine has loaded; until then its other gauges are absent.",
    );
    t.sample(
        "patchctl_vuln_engine_ready",
        &[],
        if stats.is_some() { 1.0 } else { 0.0 },
    );
    let Some(s) = stats else { return };
    let gauges: [(&str, &str, u64); 5] = [
        (
            "patchctl_vuln_records",
            "Vulnerability records the CVE engine holds.",
            s.records,
        ),
        (
            "patchctl_vuln_index_entries",
            "Entries of the CVE engine's index.",
            s.entries,
        ),
        (
            "patchctl_vuln_hosts_correlated",
            "Hosts the CVE engine correlates.",
            s.hosts,
        ),
        (
            "patchctl_vuln_hosts_vulnerable",
            "Correlated hosts with at least one vulnerable finding.",
            s.vulnerable_hosts,
        ),
        (
            "patchctl_vuln_hosts_without_data",
            "Correlated hosts whose release has no imported vulnerability data: their findings are unknown, not zero.",
            s.hosts_without_data,
        ),
    ];
    for (name, help, v) in gauges {
        t.family(name, Kind::Gauge, help);
        t.sample(name, &[], v as f64);
    }
    t.family(
        "patchctl_vuln_hosts_without_data_by_release",
        Kind::Gauge,
        "Correlated hosts without vulnerability data, by release.",
    );
    for (release, n) in &s.without_data {
        t.sample(
            "patchctl_vuln_hosts_without_data_by_release",
            &[("release", release)],
            *n as f64,
        );
    }
    t.family(
        "patchctl_vuln_db_generation",
        Kind::Gauge,
        "The vulnerability database generation the CVE engine is at (moves with every import that changed something).",
    );
    t.sample("patchctl_vuln_db_generation", &[], s.generation as f64);
}

/// The feed sync gauges of the configured feeds.
fn feeds(st: &AppState, states: &[patchctl_storage::FeedSyncState], t: &mut Text) {
    let r = report(Some(&st.settings), states, Utc::now());
    t.family(
        "patchctl_vuln_feed_state",
        Kind::Gauge,
        "1 for the state each configured feed is in (ok, failing, never_synced, disabled), 0 for the others.",
    );
    for f in &r.feeds {
        for (state, label) in FEED_STATES {
            t.sample(
                "patchctl_vuln_feed_state",
                &[("feed", &f.name), ("state", label)],
                if f.state == state { 1.0 } else { 0.0 },
            );
        }
    }
    t.family(
        "patchctl_vuln_feed_last_success_timestamp_seconds",
        Kind::Gauge,
        "When each feed's data was last made current (Unix time); absent for a feed never synced.",
    );
    for f in &r.feeds {
        if let Some(at) = f.last_success_at {
            t.sample(
                "patchctl_vuln_feed_last_success_timestamp_seconds",
                &[("feed", &f.name)],
                at.timestamp_millis() as f64 / 1000.0,
            );
        }
    }
    t.family(
        "patchctl_vuln_feed_failures",
        Kind::Gauge,
        "Failed sync attempts of each feed in a row (0 after a success).",
    );
    for f in &r.feeds {
        t.sample(
            "patchctl_vuln_feed_failures",
            &[("feed", &f.name)],
            f64::from(f.failures),
        );
    }
}
