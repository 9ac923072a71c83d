//! `patchctl vulndb ...` (the vulnerability database, offline on the database itself)
//! and `patchctl vulns ...` (findings: over the API, or offline with `vulns check`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use chrono::Utc;
use clap::{Args, Subcommand};
use patchctl_storage::Storage;
use patchctl_vuln::fleet::Summary;
use patchctl_vuln::import::{self, FeedBatch};
use patchctl_vuln::matcher::{Finding, Index, SourcedRecord};
use patchctl_vuln::report::{AdvisoryHosts, Filter, HostFindings};
use patchctl_vuln::{ecosystem, inventory};

use crate::cli::{Api, ago, enc, print_json};
use crate::{Conn, Output, table};

/// Default server configuration, where `--database-url` is not given.
const DEFAULT_SERVER_CONFIG: &str = "/etc/patchctl/server.json";
/// The development platform's configuration (`patchctl server --dev`).
const DEV_SERVER_CONFIG: &str = "patchctl-dev/server.json";

/// Which database the offline commands work on.
#[derive(Args, Clone, Debug)]
pub struct Db {
    /// Database URL: sqlite://PATH or postgres://USER@HOST/DB. Default: the one in the
    /// server configuration (--config).
    #[arg(long, env = "PATCHCTL_DATABASE_URL", global = true)]
    pub database_url: Option<String>,
    /// Server configuration whose database to use (default /etc/patchctl/server.json,
    /// else ./patchctl-dev/server.json).
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
}

impl Db {
    /// The server configuration named or found, if any.
    pub fn settings(&self) -> anyhow::Result<Option<patchctl_server::Settings>> {
        let candidates: Vec<PathBuf> = match &self.config {
            Some(c) => vec![c.clone()],
            None => vec![DEFAULT_SERVER_CONFIG.into(), DEV_SERVER_CONFIG.into()],
        };
        for c in &candidates {
            if c.exists() || self.config.is_some() {
                return Ok(Some(patchctl_server::Settings::load(c)?));
            }
        }
        Ok(None)
    }

    fn url(&self) -> anyhow::Result<String> {
        if let Some(url) = &self.database_url {
            return Ok(url.clone());
        }
        if let Some(s) = self.settings()? {
            return Ok(s.database_url);
        }
        bail!(
            "no database given: pass --database-url sqlite://PATH (or postgres://...), or --config with the server's configuration (none at {DEFAULT_SERVER_CONFIG} or ./{DEV_SERVER_CONFIG})"
        )
    }

    /// Opens the database.
    pub async fn open(&self) -> anyhow::Result<Arc<dyn Storage>> {
        let url = self.url()?;
        patchctl_storage::open(&url)
            .await
            .with_context(|| "cannot open the database".to_string())
    }
}

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

/// `patchctl vulns ...`.
#[derive(Subcommand)]
pub enum VulnsCmd {
    /// A host's findings, with the evidence of each.
    List {
        /// Host id or name.
        #[arg(long)]
        host: String,
        #[command(flatten)]
        filter: FilterArgs,
    },
    /// The hosts with a finding about one advisory or CVE id.
    Show {
        /// CVE id or advisory id (CVE-2024-6387, ALSA-2024:0001).
        id: String,
        #[command(flatten)]
        filter: FilterArgs,
    },
    /// Vulnerable findings of the fleet by severity.
    Summary,
    /// Match an inventory against the imported database, offline (no server).
    Check(CheckArgs),
}

/// Filters shared by the views.
#[derive(Args, Clone, Debug, Default)]
pub struct FilterArgs {
    /// Only these severities (comma-separated: critical,high,medium,low,negligible,unknown).
    #[arg(long)]
    pub severity: Option<String>,
    /// Only fixable findings (installed < fixed).
    #[arg(long)]
    pub fixable: bool,
    /// Only these statuses (comma-separated: fixed, not_affected, affected_no_fix,
    /// will_not_fix, end_of_life, under_investigation). Default: all but not_affected.
    #[arg(long)]
    pub status: Option<String>,
}

impl FilterArgs {
    fn filter(&self) -> anyhow::Result<Filter> {
        Filter::parse(
            self.severity.as_deref(),
            self.fixable,
            self.status.as_deref(),
        )
        .map_err(anyhow::Error::msg)
    }

    fn query(&self) -> String {
        let mut q = Vec::new();
        if let Some(s) = &self.severity {
            q.push(format!("severity={}", enc(s)));
        }
        if self.fixable {
            q.push("fixable=true".into());
        }
        if let Some(s) = &self.status {
            q.push(format!("status={}", enc(s)));
        }
        if q.is_empty() {
            String::new()
        } else {
            format!("?{}", q.join("&"))
        }
    }
}

/// `patchctl vulns check`.
#[derive(Args, Clone, Debug)]
pub struct CheckArgs {
    /// The host's /etc/os-release.
    #[arg(long)]
    pub os_release: PathBuf,
    /// A dpkg status file (/var/lib/dpkg/status).
    #[arg(long, group = "packages_from")]
    pub dpkg_status: Option<PathBuf>,
    /// Output of rpm -qa --qf '%{NAME} %{EPOCHNUM}:%{VERSION}-%{RELEASE} %{ARCH} %{SOURCERPM}\n'.
    #[arg(long, group = "packages_from")]
    pub rpm_qa: Option<PathBuf>,
    /// An apk database (/lib/apk/db/installed).
    #[arg(long, group = "packages_from")]
    pub apk_installed: Option<PathBuf>,
    /// What `patchctl-agent scan --print` printed.
    #[arg(long, group = "packages_from")]
    pub inventory: Option<PathBuf>,
    /// The running kernel (uname -r); default: the one in --inventory, else the newest
    /// installed kernel.
    #[arg(long)]
    pub kernel: Option<String>,
    /// The host has Ubuntu Pro (ESM) enabled (default: detected from +esm versions).
    #[arg(long)]
    pub ubuntu_pro: bool,
    #[command(flatten)]
    pub filter: FilterArgs,
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

fn progress_line(msg: &str) {
    let mut err = std::io::stderr();
    let _ = write!(err, "\r{msg:<78}");
    let _ = err.flush();
}

/// Runs a `vulndb` subcommand.
pub async fn vulndb(db: &Db, output: Output, cmd: VulndbCmd) -> anyhow::Result<()> {
    match cmd {
        VulndbCmd::Import { paths } => {
            let store = db.open().await?;
            let started = Instant::now();
            let mut last = Instant::now();
            let batches = import::import_paths(&paths, &mut |p| {
                if last.elapsed().as_millis() >= 200 {
                    progress_line(&format!(
                        "reading {} ({} of {} files, {} records)",
                        p.path.display(),
                        p.files_done,
                        p.files_total,
                        p.documents
                    ));
                    last = Instant::now();
                }
            })?;
            eprintln!();
            store_batches(&*store, &batches, output).await?;
            eprintln!("done in {:.1} s", started.elapsed().as_secs_f64());
            Ok(())
        }
        VulndbCmd::Sync { feeds, ca_file } => {
            crate::sync::sync(db, output, &feeds, ca_file.as_deref()).await
        }
        VulndbCmd::Status => {
            let store = db.open().await?;
            let mut sources = store.vuln_sources().await?;
            for s in &mut sources {
                s.url = s.url.as_deref().map(without_userinfo);
            }
            if output == Output::Json {
                return print_json(&sources);
            }
            if sources.is_empty() {
                println!(
                    "the vulnerability database is empty: run `patchctl vulndb import PATH...` or `patchctl vulndb sync`"
                );
                return Ok(());
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
            print!(
                "{}",
                table::render(&["SOURCE", "RECORDS", "CHANGED", "CHECKED", "URL"], &rows)
            );
            Ok(())
        }
    }
}

/// A URL as shown: credentials in it (`https://user:pass@host/`) are replaced.
pub fn without_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
        None => url.to_string(),
    }
}

/// Stores parsed feeds, reporting what changed and what was rejected.
pub async fn store_batches(
    store: &dyn Storage,
    batches: &[FeedBatch],
    output: Output,
) -> anyhow::Result<()> {
    let mut report = Vec::new();
    for b in batches {
        for r in &b.parsed.rejected {
            eprintln!("skipped {} ({}): {}", r.id, b.feed, r.reason);
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
        if output == Output::Table {
            println!(
                "{}: {} records ({} new, {} changed, {} unchanged), {} rejected",
                b.feed,
                b.parsed.records.len(),
                outcome.inserted,
                outcome.updated,
                outcome.unchanged,
                b.parsed.rejected.len()
            );
        }
    }
    if output == Output::Json {
        print_json(&report)?;
    }
    Ok(())
}

/// Runs a `vulns` subcommand.
pub async fn vulns(conn: &Conn, db: &Db, cmd: VulnsCmd) -> anyhow::Result<()> {
    match cmd {
        VulnsCmd::Check(args) => check(db, conn.output, &args).await,
        VulnsCmd::List { host, filter } => {
            filter.filter()?;
            let api = Api::new(conn)?;
            let path = format!("/api/v1/hosts/{}/vulns{}", enc(&host), filter.query());
            let report: HostFindings = api.get(&path).await?;
            print_report(&report, conn.output)
        }
        VulnsCmd::Show { id, filter } => {
            filter.filter()?;
            let api = Api::new(conn)?;
            let path = format!("/api/v1/vulns/{}{}", enc(&id), filter.query());
            let found: AdvisoryHosts = api.get(&path).await?;
            if conn.output == Output::Json {
                return print_json(&found);
            }
            if found.hosts.is_empty() {
                println!("no host has a finding about {}", found.id);
                return Ok(());
            }
            let rows = found
                .hosts
                .iter()
                .map(|h| {
                    let f = &h.finding;
                    vec![
                        h.hostname.clone(),
                        f.package.clone(),
                        f.installed_version.clone(),
                        status_words(f),
                        f.severity.name().into(),
                        f.advisory.clone(),
                    ]
                })
                .collect::<Vec<_>>();
            print!(
                "{}",
                table::render(
                    &[
                        "HOST",
                        "PACKAGE",
                        "INSTALLED",
                        "STATUS",
                        "SEVERITY",
                        "ADVISORY"
                    ],
                    &rows
                )
            );
            Ok(())
        }
        VulnsCmd::Summary => {
            let api = Api::new(conn)?;
            let s: Summary = api.get("/api/v1/vulns/summary").await?;
            if conn.output == Output::Json {
                return print_json(&s);
            }
            println!(
                "{} hosts, {} with vulnerable findings; {} vulnerable findings ({} fixable) over {} advisories",
                s.hosts, s.vulnerable_hosts, s.vulnerable, s.fixable, s.advisories
            );
            let rows = patchctl_vuln::severity::Severity::ALL
                .iter()
                .map(|sev| {
                    let n = s.by_severity.get(sev.name()).copied().unwrap_or(0);
                    vec![sev.name().to_string(), n.to_string()]
                })
                .collect::<Vec<_>>();
            print!("{}", table::render(&["SEVERITY", "FINDINGS"], &rows));
            Ok(())
        }
    }
}

fn status_words(f: &Finding) -> String {
    match f.status.fixed_version() {
        Some(v) => format!("fixed in {v}"),
        None => f.status.name().to_string(),
    }
}

fn print_report(report: &HostFindings, output: Output) -> anyhow::Result<()> {
    if output == Output::Json {
        return print_json(report);
    }
    println!(
        "{}{} packages over {}: {} vulnerable findings, {} fixable",
        if report.hostname.is_empty() {
            String::new()
        } else {
            format!("{}: ", report.hostname)
        },
        report.packages,
        if report.ecosystems.is_empty() {
            "no known release".to_string()
        } else {
            report.ecosystems.join(" + ")
        },
        report.vulnerable,
        report.fixable
    );
    let rows = report
        .findings
        .iter()
        .map(|f| {
            vec![
                f.advisory.clone(),
                f.cve_ids()
                    .filter(|c| *c != f.advisory)
                    .take(3)
                    .collect::<Vec<_>>()
                    .join(","),
                f.package.clone(),
                f.installed_version.clone(),
                status_words(f),
                f.severity.name().into(),
                f.comparison.clone(),
            ]
        })
        .collect::<Vec<_>>();
    print!(
        "{}",
        table::render(
            &[
                "ADVISORY",
                "CVE",
                "PACKAGE",
                "INSTALLED",
                "STATUS",
                "SEVERITY",
                "WHY"
            ],
            &rows
        )
    );
    Ok(())
}

/// `patchctl vulns check`: the platform's matcher, offline, on the imported database.
async fn check(db: &Db, output: Output, args: &CheckArgs) -> anyhow::Result<()> {
    let filter = args.filter.filter()?;
    let os = inventory::parse_os_release(&read(&args.os_release)?);
    let (kernel, packages) = if let Some(p) = &args.dpkg_status {
        (
            None,
            inventory::parse_dpkg_status(&read(p)?)
                .with_context(|| format!("{} is not a dpkg status file", p.display()))?,
        )
    } else if let Some(p) = &args.rpm_qa {
        (
            None,
            inventory::parse_rpm_qa(&read(p)?).with_context(|| {
                format!(
                    "{} is not rpm -qa output in the documented format",
                    p.display()
                )
            })?,
        )
    } else if let Some(p) = &args.apk_installed {
        (
            None,
            inventory::parse_apk_installed(&read(p)?)
                .with_context(|| format!("{} is not an apk installed database", p.display()))?,
        )
    } else if let Some(p) = &args.inventory {
        let (system, packages) = inventory::parse_scan_print(&read(p)?).with_context(|| {
            format!(
                "{} is not what `patchctl-agent scan --print` prints",
                p.display()
            )
        })?;
        (system.map(|s| s.kernel).filter(|k| !k.is_empty()), packages)
    } else {
        bail!(
            "give the host's packages: --dpkg-status FILE, --rpm-qa FILE, --apk-installed FILE or --inventory FILE"
        );
    };
    let pro = args.ubuntu_pro || ecosystem::esm_installed(&os, &packages);
    let ecosystems = ecosystem::host_ecosystems(&os, pro);
    if ecosystems.is_empty() {
        bail!(
            "{}: {:?} {:?} is not a release PatchCTL has vulnerability data rules for (Debian, Ubuntu, AlmaLinux, Rocky, Alpine, openSUSE, SLES)",
            args.os_release.display(),
            os.id,
            os.version_id
        );
    }
    let store = db.open().await?;
    let keys = lookup_keys(&ecosystems, &packages);
    let records = store.vuln_records_for(&keys).await?;
    let index = Index::build(records.into_iter().map(|s| SourcedRecord {
        source: s.source,
        imported_at: Some(s.imported_at),
        record: s.record,
    }));
    let kernel = args.kernel.clone().or(kernel);
    let findings = index.match_host(&ecosystems, kernel.as_deref(), &packages);
    let report = HostFindings::new(
        None,
        os.pretty_name.clone(),
        ecosystems,
        packages.len() as u64,
        findings,
        &filter,
    );
    print_report(&report, output)
}

/// Every `(ecosystem, name)` a host's packages could be keyed by in the records (binary,
/// source and kernel names), so that only those records are loaded.
fn lookup_keys(
    ecosystems: &[String],
    packages: &[patchctl_proto::agent::InstalledPackage],
) -> Vec<(String, String)> {
    let mut names: Vec<String> = Vec::new();
    for p in packages {
        names.push(p.name.clone());
        if let Some(s) = &p.source_name {
            names.push(s.clone());
            names.push(patchctl_vuln::matcher::record_key_of_source(s));
        }
    }
    names.sort();
    names.dedup();
    ecosystems
        .iter()
        .flat_map(|e| names.iter().map(move |n| (e.clone(), n.clone())))
        .collect()
}
