//! The feed sync report: per configured feed, its state, age, last error and next
//! attempt, as `patchctl vulndb status` and `GET /api/v1/vulndb/status` show it.

use chrono::{DateTime, Utc};
use patchctl_storage::FeedSyncState;
use serde::Serialize;

use super::{FeedKind, effective_feeds, without_userinfo};
use crate::Settings;
use crate::settings::{Feed, redact_url};

/// How a feed stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FeedState {
    /// Its last attempt succeeded.
    Ok,
    /// Its last attempt failed; its earlier data (if any) is kept.
    Failing,
    /// No attempt yet.
    NeverSynced,
    /// Automatic sync is off (`vuln_sync: false`); `patchctl vulndb sync` and
    /// `vulndb import` still work.
    Disabled,
}

impl FeedState {
    /// As shown in a table.
    pub fn as_str(self) -> &'static str {
        match self {
            FeedState::Ok => "ok",
            FeedState::Failing => "failing",
            FeedState::NeverSynced => "never synced",
            FeedState::Disabled => "disabled",
        }
    }
}

/// One feed in the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FeedStatus {
    /// The feed's name.
    pub name: String,
    /// Its kind.
    pub kind: FeedKind,
    /// Its URL, without credentials.
    pub url: String,
    /// How it stands.
    pub state: FeedState,
    /// Records handed to the import by its last download.
    pub records: Option<u64>,
    /// When its data was last made current.
    pub last_success_at: Option<DateTime<Utc>>,
    /// Seconds since then (the data's age).
    pub age_secs: Option<i64>,
    /// When it was last tried.
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// Failed attempts in a row.
    pub failures: u32,
    /// What the last failed attempt said.
    pub last_error: Option<String>,
    /// When it is tried next (`None` when automatic sync is off).
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SyncStatus {
    /// Whether the platform syncs on its own (`vuln_sync`).
    pub automatic: bool,
    /// Seconds between two syncs of a feed (`vuln_sync_interval_secs`), before jitter.
    pub interval_secs: u64,
    /// Every configured feed, in configuration order.
    pub feeds: Vec<FeedStatus>,
}

/// The report of `settings`' feeds (their defaults when none are configured) from the
/// stored `states`, at `now`. Without settings (a database used alone) the defaults
/// and automatic sync are assumed.
pub fn report(
    settings: Option<&Settings>,
    states: &[FeedSyncState],
    now: DateTime<Utc>,
) -> SyncStatus {
    let (feeds, automatic, interval_secs) = match settings {
        Some(s) => (
            effective_feeds(&s.vuln_feeds),
            s.vuln_sync,
            s.vuln_sync_interval_secs,
        ),
        None => (
            effective_feeds(&[]),
            true,
            crate::settings::default_vuln_sync_interval(),
        ),
    };
    SyncStatus {
        automatic,
        interval_secs,
        feeds: feeds
            .iter()
            .map(|f| feed_status(f, states, automatic, now))
            .collect(),
    }
}

fn feed_status(
    feed: &Feed,
    states: &[FeedSyncState],
    automatic: bool,
    now: DateTime<Utc>,
) -> FeedStatus {
    let state = states
        .iter()
        .find(|s| s.name == feed.name && s.url == feed.url && s.kind == feed.kind.as_str());
    let shown = FeedStatus {
        name: feed.name.clone(),
        kind: feed.kind,
        url: without_userinfo(&redact_url(&feed.url)),
        state: if automatic {
            FeedState::NeverSynced
        } else {
            FeedState::Disabled
        },
        records: None,
        last_success_at: None,
        age_secs: None,
        last_attempt_at: None,
        failures: 0,
        last_error: None,
        next_attempt_at: None,
    };
    let Some(s) = state else { return shown };
    FeedStatus {
        state: match (automatic, s.failures, s.last_attempt_at) {
            (false, _, _) => FeedState::Disabled,
            (true, 1.., _) => FeedState::Failing,
            (true, 0, Some(_)) => FeedState::Ok,
            (true, 0, None) => FeedState::NeverSynced,
        },
        records: s.records,
        last_success_at: s.last_success_at,
        age_secs: s.last_success_at.map(|t| (now - t).num_seconds().max(0)),
        last_attempt_at: s.last_attempt_at,
        failures: s.failures,
        last_error: s.last_error.clone(),
        next_attempt_at: if automatic { s.next_attempt_at } else { None },
        ..shown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_ages_and_urls_without_credentials() {
        let now = Utc::now();
        let feeds = [
            ("ok", 0, true),
            ("failing", 2, true),
            ("never", 0, false),
            ("new", 0, false),
        ];
        let mut settings_feeds = Vec::new();
        let mut states = Vec::new();
        for (name, failures, attempted) in feeds {
            let url = format!("https://u:secret@mirror.example/{name}?token=t0k");
            settings_feeds.push(Feed {
                name: name.into(),
                url: url.clone(),
                kind: FeedKind::File,
            });
            if name != "new" {
                states.push(FeedSyncState {
                    name: name.into(),
                    kind: "file".into(),
                    url,
                    last_attempt_at: attempted.then_some(now),
                    last_success_at: (name == "ok").then(|| now - chrono::Duration::seconds(90)),
                    failures,
                    last_error: (failures > 0).then(|| "boom".to_owned()),
                    next_attempt_at: Some(now),
                    ..Default::default()
                });
            }
        }
        let dir = std::path::Path::new("/nonexistent");
        let settings = Settings {
            heartbeat_interval_secs: 1,
            command_lease_secs: 1,
            metrics_history_len: 1,
            vuln_feeds: settings_feeds,
            vuln_sync_interval_secs: 3600,
            enroll_per_address_per_min: 1,
            enroll_per_key_per_min: 1,
            ..Settings::with_defaults(
                "127.0.0.1:1".parse().unwrap(),
                "sqlite://x",
                dir.join("c"),
                dir.join("k"),
            )
        };
        let r = report(Some(&settings), &states, now);
        let got: Vec<(&str, FeedState)> =
            r.feeds.iter().map(|f| (f.name.as_str(), f.state)).collect();
        assert_eq!(
            got,
            [
                ("ok", FeedState::Ok),
                ("failing", FeedState::Failing),
                ("never", FeedState::NeverSynced),
                ("new", FeedState::NeverSynced)
            ]
        );
        assert_eq!(r.feeds[0].age_secs, Some(90));
        assert_eq!(r.feeds[1].last_error.as_deref(), Some("boom"));
        for f in &r.feeds {
            assert_eq!(
                f.url,
                format!("https://***@mirror.example/{}?token=***", f.name)
            );
        }
        let off = Settings {
            vuln_sync: false,
            ..settings
        };
        let r = report(Some(&off), &states, now);
        assert!(!r.automatic);
        assert!(
            r.feeds
                .iter()
                .all(|f| f.state == FeedState::Disabled && f.next_attempt_at.is_none())
        );
        // Without settings: the default feeds, never synced.
        let r = report(None, &[], now);
        assert_eq!(r.feeds.len(), super::super::DEFAULT_FEEDS.len());
        assert!(r.feeds.iter().all(|f| f.state == FeedState::NeverSynced));
    }
}
