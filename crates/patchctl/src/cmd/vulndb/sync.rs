//! `patchctl vulndb sync`: download the configured feeds and import what changed.
//!
//! Each feed is one URL (a file any importer reads: an OSV `all.zip`, the Debian
//! Security Tracker JSON, an Alpine secdb JSON). The validators of the last download
//! (ETag, Last-Modified) are kept per feed in the database, so a feed that did not change
//! is answered `304 Not Modified` and nothing is downloaded or imported. The list comes
//! from `--feed NAME=URL`, else the server configuration's `vuln_feeds`, else
//! [`DEFAULT_FEEDS`].

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, bail};
use chrono::Utc;
use patchctl_net::download::{Downloader, Fetched, Validators};
use patchctl_server::settings::Feed;

use super::store_batches;
use crate::db::Db;
use crate::output::{self, Format};

/// The official feeds synced when none are configured.
pub const DEFAULT_FEEDS: [(&str, &str); 6] = [
    (
        "osv-almalinux",
        "https://osv-vulnerabilities.storage.googleapis.com/AlmaLinux/all.zip",
    ),
    (
        "osv-rocky",
        "https://osv-vulnerabilities.storage.googleapis.com/Rocky%20Linux/all.zip",
    ),
    (
        "osv-ubuntu",
        "https://osv-vulnerabilities.storage.googleapis.com/Ubuntu/all.zip",
    ),
    (
        "osv-alpine",
        "https://osv-vulnerabilities.storage.googleapis.com/Alpine/all.zip",
    ),
    (
        "debian-tracker",
        "https://security-tracker.debian.org/tracker/data/json",
    ),
    (
        "osv-debian",
        "https://osv-vulnerabilities.storage.googleapis.com/Debian/all.zip",
    ),
];

fn feeds(db: &Db, given: &[String]) -> anyhow::Result<Vec<Feed>> {
    if !given.is_empty() {
        return given
            .iter()
            .map(|f| {
                let (name, url) = f
                    .split_once('=')
                    .with_context(|| format!("--feed {f:?}: write NAME=URL"))?;
                Ok(Feed {
                    name: name.to_string(),
                    url: url.to_string(),
                })
            })
            .collect();
    }
    if let Some(settings) = db.settings()? {
        if !settings.vuln_feeds.is_empty() {
            return Ok(settings.vuln_feeds);
        }
    }
    Ok(DEFAULT_FEEDS
        .iter()
        .map(|(name, url)| Feed {
            name: name.to_string(),
            url: url.to_string(),
        })
        .collect())
}

/// Stores a feed's validators (and that it was checked now).
async fn remember(
    store: &dyn patchctl_storage::Storage,
    source_key: &str,
    url: &str,
    v: &Validators,
) -> anyhow::Result<()> {
    store
        .record_vuln_sync(
            source_key,
            url,
            v.etag.as_deref(),
            v.last_modified.as_deref(),
            Utc::now(),
        )
        .await?;
    Ok(())
}

/// Downloads every feed that changed and imports it.
pub async fn sync(
    db: &Db,
    format: Format,
    given: &[String],
    ca_file: Option<&Path>,
) -> anyhow::Result<()> {
    let feeds = feeds(db, given)?;
    let store = db.open().await?;
    let known = store.vuln_sources().await?;
    let tls = patchctl_net::client_config(ca_file)?;
    let downloader = Downloader::new(tls);
    let mut failed = Vec::new();
    for feed in &feeds {
        let source_key = format!("feed:{}", feed.name);
        let validators = known
            .iter()
            .find(|s| s.name == source_key && s.url.as_deref() == Some(feed.url.as_str()))
            .map(|s| Validators {
                etag: s.etag.clone(),
                last_modified: s.last_modified.clone(),
            })
            .unwrap_or_default();
        let started = Instant::now();
        let mut last = Instant::now();
        let name = feed.name.clone();
        let mut progress = |got: u64, total: Option<u64>| {
            if last.elapsed().as_millis() >= 200 {
                let total =
                    total.map_or(String::new(), |t| format!(" of {:.1} MB", t as f64 / 1e6));
                output::progress(&format!("{name}: {:.1} MB{total}   ", got as f64 / 1e6));
                last = Instant::now();
            }
        };
        let fetched = match downloader
            .fetch(&feed.url, &validators, &mut progress)
            .await
        {
            Ok(f) => f,
            Err(e) => {
                output::note_over_progress(&format!("{}: {e}", feed.name));
                failed.push(feed.name.clone());
                continue;
            }
        };
        match fetched {
            Fetched::NotModified => {
                output::note_over_progress(&format!(
                    "{}: not modified since the last sync",
                    feed.name
                ));
                remember(&*store, &source_key, &feed.url, &validators).await?;
            }
            Fetched::Body { bytes, validators } => {
                output::note_over_progress(&format!(
                    "{}: {:.1} MB in {:.1} s; importing",
                    feed.name,
                    bytes.len() as f64 / 1e6,
                    started.elapsed().as_secs_f64()
                ));
                let batches = match patchctl_vuln::import::parse_bytes(&feed.url, &bytes) {
                    Ok(b) => b,
                    Err(e) => {
                        output::note(&format!("{}: {e}", feed.name));
                        failed.push(feed.name.clone());
                        continue;
                    }
                };
                store_batches(&*store, &batches, format).await?;
                // validators only once the import is stored: a failed import is retried
                remember(&*store, &source_key, &feed.url, &validators).await?;
            }
        }
    }
    if !failed.is_empty() {
        bail!(
            "{} of {} feeds could not be synced ({}); what was synced is stored",
            failed.len(),
            feeds.len(),
            failed.join(", ")
        );
    }
    Ok(())
}
