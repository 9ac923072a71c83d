//! `patchctl vulndb ...`: the vulnerability database, worked on directly (no server):
//! `import` of files, `sync` of the configured feeds ([`sync`]), `status`.

mod sync;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use chrono::Utc;
use clap::Subcommand;
use patchctl_storage::Storage;
use patchctl_vuln::import::{self, FeedBatch};

use patchctl_server::vulnsync::status::{SyncStatus, report};
use patchctl_server::vulnsync::without_userinfo;

use crate::db::Db;
use crate::output::{self, Format, ago, table};

/// `patchctl vulndb ...`.
#[derive(Subcommand)]
pub enum VulndbCmd {
    /// Import vulnerability data from files, directories or zip archives (OSV records and
    /// osv.dev all.zip, Debian Security Tracker JSON, Ubuntu OpenVEX, Alpine secdb).
    /// Works offline; importing the same data again changes nothing.
    Import {
        /// Files, directories or .zip archives.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Download the configured feeds (only what changed since the last sync) and import
    /// them.
    Sync {
        /// A feed as NAME=URL (repeatable); replaces the configured list.
        #[arg(long = "feed", value_name = "NAME=URL")]
        feeds: Vec<String>,
        /// CA bundle to trust instead of the system roots.
        #[arg(long)]
        ca_file: Option<PathBuf>,
    },
    /// Sources, record counts and ages, and how each configured feed's sync stands
    /// (state, age, last error, next attempt).
    Status {
        /// Only the feeds' sync report (with --output json: an object with `automatic`,
        /// `interval_secs` and `feeds`; without it the JSON is the list of sources).
        #[arg(long)]
        feeds: bool,
    },
}

/// Runs a `vulndb` subcommand.
pub async fn run(db: &Db, format: Format, cmd: VulndbCmd) -> anyhow::Result<()> {
    match cmd {
        VulndbCmd::Import { paths } => {
            let store = db.open().await?;
            let started = Instant::now();
            let mut last = Instant::now();
            let batches = import::import_paths(&paths, &mut |p| {
                if last.elapsed().as_millis() >= 200 {
                    let msg = format!(
                        "reading {} ({} of {} files, {} records)",
                        p.path.display(),
                        p.files_done,
                        p.files_total,
                        p.documents
                    );
                    output::progress(&format!("{msg:<78}"));
                    last = Instant::now();
                }
            })?;
            output::note("");
            store_batches(&*store, &batches, format).await?;
            output::note(&format!("done in {:.1} s", started.elapsed().as_secs_f64()));
            Ok(())
        }
        VulndbCmd::Sync { feeds, ca_file } => {
            sync::sync(db, format, &feeds, ca_file.as_deref()).await
        }
        VulndbCmd::Status { feeds } => {
            let store = db.open().await?;
            let settings = db.settings().ok().flatten();
            let states = store.vuln_feed_states().await?;
            let sync = report(settings.as_ref(), &states, Utc::now());
            if feeds {
                return output::emit(format, &sync, feeds_table);
            }
            let mut sources = store.vuln_sources().await?;
            for s in &mut sources {
                s.url = s.url.as_deref().map(without_userinfo);
            }
            output::emit(format, &sources, |sources| {
                let feeds = feeds_table(&sync);
                if sources.is_empty() {
                    return format!(
                        "the vulnerability database is empty: run `patchctl vulndb import PATH...` or `patchctl vulndb sync`\n\n{feeds}"
                    );
                }
                let rows = sources
                    .iter()
                    .map(|s| {
                        vec![
                            s.name.clone(),
                            s.record_count.to_string(),
                            ago(s.imported_at),
                            ago(s.checked_at),
                            s.url.clone().unwrap_or_else(|| "-".into()),
                        ]
                    })
                    .collect::<Vec<_>>();
                format!(
                    "{}\n{feeds}",
                    table(&["SOURCE", "RECORDS", "CHANGED", "CHECKED", "URL"], &rows)
                )
            })
        }
    }
}

/// The feeds' sync report as a table, with a line saying whether the platform syncs on
/// its own.
fn feeds_table(sync: &SyncStatus) -> String {
    let when = |t: Option<chrono::DateTime<Utc>>| {
        t.map_or("-".to_owned(), |t| {
            t.with_timezone(&chrono::Local)
                .format("%Y-%m-%d %H:%M")
                .to_string()
        })
    };
    let rows = sync
        .feeds
        .iter()
        .map(|f| {
            vec![
                f.name.clone(),
                f.kind.to_string(),
                f.state.as_str().to_owned(),
                f.records.map_or("-".to_owned(), |r| r.to_string()),
                ago(f.last_success_at),
                ago(f.last_attempt_at),
                when(f.next_attempt_at),
                match (&f.last_error, f.failures) {
                    (Some(e), n) if n > 1 => format!("({n} failures in a row) {e}"),
                    (Some(e), _) => e.clone(),
                    (None, _) => "-".to_owned(),
                },
            ]
        })
        .collect::<Vec<_>>();
    let head = if sync.automatic {
        format!(
            "Feed sync: automatic, every {} (±10 %)\n",
            human_secs(sync.interval_secs)
        )
    } else {
        "Feed sync: automatic sync is off (vuln_sync: false); run `patchctl vulndb sync` or import files with `patchctl vulndb import`\n".to_owned()
    };
    format!(
        "{head}{}",
        table(
            &[
                "FEED",
                "KIND",
                "STATE",
                "RECORDS",
                "LAST SUCCESS",
                "LAST ATTEMPT",
                "NEXT ATTEMPT",
                "LAST ERROR"
            ],
            &rows
        )
    )
}

/// `21600` → `6h`, `90` → `90s`.
fn human_secs(s: u64) -> String {
    match s {
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// Stores parsed feeds, reporting what changed and what was rejected: a line per feed
/// as it is stored, or one JSON list at the end.
async fn store_batches(
    store: &dyn Storage,
    batches: &[FeedBatch],
    format: Format,
) -> anyhow::Result<()> {
    let mut report = Vec::new();
    for b in batches {
        for r in &b.parsed.rejected {
            output::note(&format!("skipped {} ({}): {}", r.id, b.feed, r.reason));
        }
        let outcome = store
            .import_vuln_records(b.feed, &b.parsed.records, Utc::now())
            .await
            .with_context(|| format!("import of {} failed; nothing of it was stored", b.feed))?;
        report.push(serde_json::json!({
            "source": b.feed,
            "records": b.parsed.records.len(),
            "inserted": outcome.inserted,
            "updated": outcome.updated,
            "unchanged": outcome.unchanged,
            "rejected": b.parsed.rejected.len(),
        }));
        if format == Format::Table {
            output::text(&format!(
                "{}: {} records ({} new, {} changed, {} unchanged), {} rejected\n",
                b.feed,
                b.parsed.records.len(),
                outcome.inserted,
                outcome.updated,
                outcome.unchanged,
                b.parsed.rejected.len()
            ));
        }
    }
    if format == Format::Json {
        output::json(&report)?;
    }
    Ok(())
}
