//! `patchctl vulndb sync`: every configured feed, now, with the platform's own sync
//! ([`patchctl_server::vulnsync`]: conditional downloads, `file`, `repomd` and
//! `redhat-vex-bulk` feeds, the feed's status kept for `vulndb status`), with progress
//! on the terminal. The list comes from `--feed NAME=URL`, else the server
//! configuration's `vuln_feeds`, else the platform's default feeds.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, bail};
use patchctl_net::download::Downloader;
use patchctl_server::settings::Feed;
use patchctl_server::vulnsync::{Event, Observer, Syncer, effective_feeds, work_dir_for};

use crate::db::Db;
use crate::output::{self, Format};

fn feeds(configured: &[Feed], given: &[String]) -> anyhow::Result<Vec<Feed>> {
    if given.is_empty() {
        return Ok(effective_feeds(configured));
    }
    given
        .iter()
        .map(|f| {
            let (name, url) = f
                .split_once('=')
                .with_context(|| format!("--feed {f:?}: write NAME=URL"))?;
            Ok(Feed {
                name: name.to_string(),
                url: url.to_string(),
                kind: Default::default(),
            })
        })
        .collect()
}

/// The CLI's progress lines, and the JSON report at the end.
struct Progress {
    format: Format,
    report: Vec<serde_json::Value>,
    last: Instant,
}

impl Observer for Progress {
    fn event(&mut self, event: Event<'_>) {
        match event {
            Event::Progress { feed, got, total } => {
                if self.last.elapsed().as_millis() >= 200 {
                    let total =
                        total.map_or(String::new(), |t| format!(" of {:.1} MB", t as f64 / 1e6));
                    output::progress(&format!("{feed}: {:.1} MB{total}   ", got as f64 / 1e6));
                    self.last = Instant::now();
                }
            }
            Event::NotModified { feed } => {
                output::note_over_progress(&format!("{feed}: not modified since the last sync"));
            }
            Event::Downloaded {
                feed,
                files,
                bytes,
                elapsed,
            } => output::note_over_progress(&format!(
                "{feed}: {:.1} MB ({files} file{}) in {:.1} s; importing",
                bytes as f64 / 1e6,
                if files == 1 { "" } else { "s" },
                elapsed.as_secs_f64()
            )),
            Event::Note { feed, text } => output::note(&format!("{feed}: {text}")),
            Event::Rejected {
                source, id, reason, ..
            } => output::note(&format!("skipped {id} ({source}): {reason}")),
            Event::Stored {
                source,
                records,
                rejected,
                outcome,
                ..
            } => {
                self.report.push(serde_json::json!({
                    "source": source,
                    "records": records,
                    "inserted": outcome.inserted,
                    "updated": outcome.updated,
                    "unchanged": outcome.unchanged,
                    "rejected": rejected,
                }));
                if self.format == Format::Table {
                    output::text(&format!(
                        "{source}: {records} records ({} new, {} changed, {} unchanged), {rejected} rejected\n",
                        outcome.inserted, outcome.updated, outcome.unchanged
                    ));
                }
            }
            Event::Failed { feed, error } => {
                output::note_over_progress(&format!("{feed}: {error}"));
            }
        }
    }
}

/// Downloads every feed that changed and imports it.
pub async fn sync(
    db: &Db,
    format: Format,
    given: &[String],
    ca_file: Option<&Path>,
) -> anyhow::Result<()> {
    let settings = if given.is_empty() || db.database_url.is_none() {
        db.settings()?
    } else {
        None
    };
    let configured = settings
        .as_ref()
        .map(|s| s.vuln_feeds.clone())
        .unwrap_or_default();
    let feeds = feeds(&configured, given)?;
    let store = db.open().await?;
    let ca_file = ca_file.or(settings.as_ref().and_then(|s| s.vuln_ca_file.as_deref()));
    let tls = patchctl_net::client_config(ca_file)?;
    let work_dir = match (&settings, &db.database_url) {
        (_, Some(url)) => work_dir_for(
            url,
            settings.as_ref().and_then(|s| s.vuln_sync_dir.as_deref()),
        ),
        (Some(s), None) => s.vuln_work_dir(),
        (None, None) => std::env::temp_dir(),
    };
    let interval = std::time::Duration::from_secs(
        settings
            .as_ref()
            .map_or_else(patchctl_server::settings::default_vuln_sync_interval, |s| {
                s.vuln_sync_interval_secs
            }),
    );
    let syncer = Syncer::new(store, Downloader::new(tls), work_dir, interval);
    let mut progress = Progress {
        format,
        report: Vec::new(),
        last: Instant::now(),
    };
    let reports = syncer.sync(&feeds, false, &mut progress).await?;
    if format == Format::Json {
        output::json(&progress.report)?;
    }
    let failed: Vec<&str> = reports
        .iter()
        .filter(|r| r.outcome.is_err())
        .map(|r| r.feed.name.as_str())
        .collect();
    if !failed.is_empty() {
        bail!(
            "{} of {} feeds could not be synced ({}); what was synced is stored, and \
             `patchctl vulndb status --feeds` shows each feed",
            failed.len(),
            feeds.len(),
            failed.join(", ")
        );
    }
    Ok(())
}
