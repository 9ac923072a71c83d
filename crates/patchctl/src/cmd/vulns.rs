//! `patchctl vulns ...`: vulnerability findings per host, per advisory and for the
//! fleet (over the operator API), and `vulns check`, the platform's matcher run offline
//! on an inventory file and the imported database.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use patchctl_vuln::coverage::{self, DataLevel};
use patchctl_vuln::fleet::Summary;
use patchctl_vuln::matcher::{Finding, Index, SourcedRecord};
use patchctl_vuln::report::{AdvisoryHosts, Filter, HostFindings};
use patchctl_vuln::{ecosystem, inventory};

use crate::client::{Api, Conn, enc};
use crate::db::Db;
use crate::output::{self, Format, table};

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
    /// will_not_fix, end_of_life, under_investigation, unknown_version). Default: all but
    /// not_affected.
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
    /// Output of `pacman -Q` (Arch Linux).
    #[arg(long, group = "packages_from")]
    pub pacman_q: Option<PathBuf>,
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

/// Runs a `vulns` subcommand.
pub async fn run(conn: &Conn, db: &Db, cmd: VulnsCmd) -> anyhow::Result<()> {
    match cmd {
        VulnsCmd::Check(args) => check(db, conn.output, &args).await,
        VulnsCmd::List { host, filter } => {
            filter.filter()?;
            let api = Api::new(conn)?;
            let path = format!("/api/v1/hosts/{}/vulns{}", enc(&host), filter.query());
            // The findings come a page at a time; the rest of the report is the same on
            // every page.
            let mut pages = api
                .get_pages::<HostFindings>(&paged(&path))
                .await?
                .into_iter();
            let mut report = pages.next().context("the platform answered no page")?;
            report.findings.extend(pages.flat_map(|p| p.findings));
            output::emit(conn.output, &report, report_text)
        }
        VulnsCmd::Show { id, filter } => {
            filter.filter()?;
            let api = Api::new(conn)?;
            let path = format!("/api/v1/vulns/{}{}", enc(&id), filter.query());
            let mut pages = api
                .get_pages::<AdvisoryHosts>(&paged(&path))
                .await?
                .into_iter();
            let mut found = pages.next().context("the platform answered no page")?;
            found.hosts.extend(pages.flat_map(|p| p.hosts));
            output::emit(conn.output, &found, advisory_text)
        }
        VulnsCmd::Summary => {
            let api = Api::new(conn)?;
            let s: Summary = api.get("/api/v1/vulns/summary").await?;
            output::emit(conn.output, &s, summary_text)
        }
    }
}

/// `path` asking for the largest pages.
fn paged(path: &str) -> String {
    let sep = if path.contains('?') { '&' } else { '?' };
    format!("{path}{sep}limit=1000")
}

/// `vulns show`.
fn advisory_text(found: &AdvisoryHosts) -> String {
    if found.hosts.is_empty() {
        return format!("no host has a finding about {}\n", found.id);
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
    table(
        &[
            "HOST",
            "PACKAGE",
            "INSTALLED",
            "STATUS",
            "SEVERITY",
            "ADVISORY",
        ],
        &rows,
    )
}

/// `vulns summary`.
fn summary_text(s: &Summary) -> String {
    let rows = patchctl_vuln::severity::Severity::ALL
        .iter()
        .map(|sev| {
            let n = s.by_severity.get(sev.name()).copied().unwrap_or(0);
            vec![sev.name().to_string(), n.to_string()]
        })
        .collect::<Vec<_>>();
    let mut out = format!(
        "{} hosts, {} with vulnerable findings; {} vulnerable findings ({} fixable) over {} advisories\n",
        s.hosts, s.vulnerable_hosts, s.vulnerable, s.fixable, s.advisories,
    );
    if s.hosts_without_data > 0 {
        let releases: Vec<String> = s
            .without_data
            .iter()
            .map(|(release, n)| format!("{release} ({n})"))
            .collect();
        out.push_str(&format!(
            "{} hosts have no vulnerability data (not checked, not \"0 findings\"): {}\n",
            s.hosts_without_data,
            releases.join(", ")
        ));
    }
    if s.hosts_advisories_only > 0 {
        out.push_str(&format!(
            "{} hosts have security advisories only, no CVE feed (Fedora): unfixed CVEs are not known\n",
            s.hosts_advisories_only
        ));
    }
    if s.unknown_version > 0 {
        out.push_str(&format!(
            "{} findings could not be decided: versions that cannot be compared (status unknown_version)\n",
            s.unknown_version
        ));
    }
    out.push_str(&table(&["SEVERITY", "FINDINGS"], &rows));
    out
}

fn status_words(f: &Finding) -> String {
    match f.status.fixed_version() {
        Some(v) => format!("fixed in {v}"),
        None => f.status.name().to_string(),
    }
}

/// `vulns list` and `vulns check`: a host's findings under a one-line summary.
fn report_text(report: &HostFindings) -> String {
    let who = if report.hostname.is_empty() {
        String::new()
    } else {
        format!("{}: ", report.hostname)
    };
    let over = report.ecosystems.join(" + ");
    let mut head = match (&report.coverage.level, &report.coverage.message) {
        // never "0 findings" for a release the data does not cover
        (DataLevel::None, Some(message)) => {
            format!("{who}{} packages over {over}: {message}\n", report.packages)
        }
        (_, message) => {
            let mut h = format!(
                "{who}{} packages over {over}: {} vulnerable findings, {} fixable\n",
                report.packages, report.vulnerable, report.fixable
            );
            if let Some(m) = message {
                h.push_str(&format!("note: {m}\n"));
            }
            h
        }
    };
    if report.unknown_version > 0 {
        head.push_str(&format!(
            "{} findings could not be decided: the versions cannot be compared (status unknown_version)\n",
            report.unknown_version
        ));
    }
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
    head + &table(
        &[
            "ADVISORY",
            "CVE",
            "PACKAGE",
            "INSTALLED",
            "STATUS",
            "SEVERITY",
            "WHY",
        ],
        &rows,
    )
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

/// `patchctl vulns check`: the platform's matcher, offline, on the imported database.
async fn check(db: &Db, format: Format, args: &CheckArgs) -> anyhow::Result<()> {
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
    } else if let Some(p) = &args.pacman_q {
        (
            None,
            inventory::parse_pacman_q(&read(p)?)
                .with_context(|| format!("{} is not pacman -Q output", p.display()))?,
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
            "give the host's packages: --dpkg-status FILE, --rpm-qa FILE, --apk-installed FILE, --pacman-q FILE or --inventory FILE"
        );
    };
    let pro = args.ubuntu_pro || ecosystem::esm_installed(&os, &packages);
    let ecosystems = ecosystem::host_ecosystems(&os, pro, kernel.as_deref());
    let store = db.open().await?;
    let keys = lookup_keys(&ecosystems, &packages);
    let mut records = store.vuln_records_for(&keys).await?;
    // the known-exploited catalog names no package: loaded whole (about 1,400 records)
    records.extend(
        store
            .vuln_records_of(patchctl_vuln::import::kev::FEED)
            .await?,
    );
    let index = Index::build(records.into_iter().map(|s| SourcedRecord {
        source: s.source,
        imported_at: Some(s.imported_at),
        record: s.record,
    }));
    let kernel = args.kernel.clone().or(kernel);
    let findings = index.match_host(&ecosystems, kernel.as_deref(), &packages);
    let with_data = store.vuln_ecosystems_with_data(&ecosystems).await?;
    let coverage = coverage::coverage_from(&ecosystems, |e| with_data.iter().any(|w| w == e));
    let report = HostFindings::new(
        None,
        os.pretty_name.clone(),
        ecosystems,
        coverage,
        packages.len() as u64,
        findings,
        &filter,
    );
    output::emit(format, &report, report_text)
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

#[cfg(test)]
mod tests {
    use super::*;

    const EVIL: &str = "\u{1b}]0;owned\u{7}\u{1b}[2J\rok\u{9b}31m\u{7f}";

    #[test]
    fn vulns_show_neutralises_host_and_package_names() {
        let found: AdvisoryHosts = serde_json::from_value(serde_json::json!({
            "id": "CVE-2024-6387",
            "hosts": [{
                "host_id": uuid::Uuid::nil(),
                "hostname": format!("web-1{EVIL}"),
                "finding": {
                    "advisory": "CVE-2024-6387", "aliases": [], "source": "osv",
                    "imported_at": null, "ecosystem": "Debian:12",
                    "package": format!("openssh{EVIL}"), "matched_by": "source",
                    "binaries": [EVIL], "installed_version": EVIL,
                    "status": "fixed", "fixed_version": EVIL,
                    "affected_range": EVIL, "comparison": EVIL,
                    "vulnerable": true, "fixable": true, "severity": "high",
                },
            }],
        }))
        .unwrap();
        let text = advisory_text(&found);
        assert!(
            !text.chars().any(|c| c.is_control() && c != '\n'),
            "{text:?}"
        );
        assert!(text.contains(r"web-1\x1b]0;owned\x07"), "{text}");
        assert!(text.contains(r"fixed in \x1b]0;owned"), "{text}");
        assert_eq!(text.lines().count(), 2, "{text}");
    }
}
