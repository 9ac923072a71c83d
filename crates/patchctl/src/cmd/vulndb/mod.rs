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
    /// Sources, record counts and ages.
    Status,
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
        VulndbCmd::Status => {
            let store = db.open().await?;
            let mut sources = store.vuln_sources().await?;
            for s in &mut sources {
                s.url = s.url.as_deref().map(without_userinfo);
            }
            output::emit(format, &sources, |sources| {
                if sources.is_empty() {
                    return "the vulnerability database is empty: run `patchctl vulndb import PATH...` or `patchctl vulndb sync`\n".into();
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
                table(&["SOURCE", "RECORDS", "CHANGED", "CHECKED", "URL"], &rows)
            })
        }
    }
}

/// A URL as shown: credentials in it (`https://user:pass@host/`) are replaced.
fn without_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
        None => url.to_string(),
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
