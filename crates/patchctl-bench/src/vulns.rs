//! `patchctl-bench vulns`: CVE correlation over the real AlmaLinux data.
//!
//! * Import: `patchctl vulndb import` of the three AlmaLinux `all.zip` archives into a
//!   fresh SQLite database, run under `rusage-of` (wall time and peak RSS of exactly that
//!   process), then the same import again (nothing changes).
//! * Index memory: RSS growth of this process while every record of ../shared/data is
//!   parsed and indexed (records dropped after indexing; the figure includes allocator
//!   slack, so it is an upper bound).
//! * Correlation throughput, one core: synthetic AlmaLinux 9 hosts × packages. Package
//!   names are the AlmaLinux 9 names the data knows plus names it does not (a real host
//!   has both); versions are the data's own fixed versions, exactly or just below, in a
//!   few variants per package so that hosts share some and differ in others. Two
//!   figures: *cold* (every probe evaluated against the index, nothing shared: the cost
//!   of a pair) and *fleet* (the platform's [`Fleet`], which shares decisions across
//!   hosts with the same `(ecosystem, package, version)`).
//! * Re-correlation after one new advisory: [`Fleet::apply`] of one new record on a
//!   package every host has.
//!
//! Reference, in the same table: Fleet documents about 10 hosts/s for Linux OVAL
//! matching, i.e. about 20,000 host×package pairs/s.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::bail;
use patchctl_proto::agent::InstalledPackage;
use patchctl_vuln::fleet::Fleet;
use patchctl_vuln::matcher::{self, Index, SourcedRecord};
use patchctl_vuln::model::{Affected, Record, Status};
use uuid::Uuid;

use crate::stats::thousands;

/// Fleet's documented OVAL matching rate for Linux hosts, as pairs/s (10 hosts/s ×
/// ~2,000 packages).
const FLEET_REFERENCE_PAIRS_PER_S: f64 = 20_000.0;
/// Versions in circulation per package across the synthetic fleet.
const VARIANTS: u64 = 4;

/// What the run measured.
pub struct Report {
    /// Markdown.
    pub markdown: String,
    /// Cold pairs/s.
    pub cold_pairs_per_s: f64,
    /// Fleet pairs/s.
    pub fleet_pairs_per_s: f64,
    /// Re-correlation after one advisory.
    pub recorrelate: Duration,
}

impl Report {
    /// Throughput ≥ 1,000,000 pairs/s/core and re-correlation < 1 s.
    pub fn meets_targets(&self) -> bool {
        self.fleet_pairs_per_s >= 1_000_000.0 && self.recorrelate < Duration::from_secs(1)
    }
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .map(|s| crate::procs::parse_status(&s).rss_kib)
        .unwrap_or(0)
}

fn hash(s: &str, salt: u64) -> u64 {
    s.bytes().fold(0xcbf29ce484222325u64 ^ salt, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    })
}

/// The data folder: `--data`, else ../shared/data from the working directory.
pub fn data_dir(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    let d = given.map_or_else(|| PathBuf::from("../shared/data"), Path::to_path_buf);
    if !d.join("osv/almalinux-9.zip").is_file() {
        bail!(
            "{} does not hold osv/almalinux-9.zip; run from the repository with ../shared beside it, or pass --data DIR",
            d.display()
        );
    }
    Ok(d)
}

fn alma_zips(data: &Path) -> Vec<PathBuf> {
    ["almalinux-8.zip", "almalinux-9.zip", "almalinux-10.zip"]
        .iter()
        .map(|z| data.join("osv").join(z))
        .collect()
}

/// Import of the three archives by the real CLI, timed with peak RSS.
fn import_runs(patchctl: &Path, data: &Path) -> anyhow::Result<Vec<(String, Duration, u64)>> {
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}", dir.path().join("vuln.db").display());
    let mut out = Vec::new();
    for label in ["first import", "same data again"] {
        let mut argv: Vec<String> = vec![
            patchctl.display().to_string(),
            "vulndb".into(),
            "import".into(),
            "--database-url".into(),
            url.clone(),
        ];
        for z in alma_zips(data) {
            argv.push(std::fs::canonicalize(&z)?.display().to_string());
        }
        let m = crate::rpminv::measure(&argv)?;
        out.push((label.to_string(), m.wall, m.maxrss_kib));
    }
    Ok(out)
}

fn parse_all(paths: &[PathBuf]) -> anyhow::Result<Vec<SourcedRecord>> {
    let batches = patchctl_vuln::import::import_paths(paths, &mut |_| {})?;
    Ok(batches
        .into_iter()
        .flat_map(|b| {
            let feed = b.feed;
            b.parsed
                .records
                .into_iter()
                .map(move |record| SourcedRecord {
                    source: feed.to_string(),
                    imported_at: None,
                    record,
                })
        })
        .collect())
}

/// Synthetic hosts: `packages` each, from the AlmaLinux 9 names the data knows (with
/// their fixed versions) and filler names it does not know. Made one at a time, so the
/// fleet never sits in memory as package lists.
struct Synthetic<'a> {
    known: Vec<(&'a str, Vec<&'a str>)>,
    packages: usize,
}

impl<'a> Synthetic<'a> {
    fn new(records: &'a [SourcedRecord], packages: usize) -> Self {
        let mut versions: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for r in records {
            for a in r
                .record
                .affected
                .iter()
                .filter(|a| a.ecosystem == "AlmaLinux:9")
            {
                if let Some(f) = a.status.fixed_version() {
                    versions.entry(&a.package).or_default().push(f);
                }
            }
        }
        Synthetic {
            known: versions.into_iter().collect(),
            packages,
        }
    }

    fn host(&self, h: usize) -> Vec<InstalledPackage> {
        let known = &self.known;
        // about 40 % of a real host's packages are named by advisories
        let from_data = (self.packages * 2 / 5).min(known.len());
        let mut pkgs = Vec::with_capacity(self.packages);
        let offset = (h * 7919) % known.len();
        for i in 0..from_data {
            let (name, vs) = &known[(offset + i) % known.len()];
            let variant = (h as u64 + hash(name, 1)) % VARIANTS;
            let v = vs[(hash(name, variant) as usize) % vs.len()];
            let version = if variant % 2 == 0 {
                v.to_string()
            } else {
                format!("{v}~")
            };
            pkgs.push(pkg(name, &version));
        }
        for i in from_data..self.packages {
            let variant = (h as u64 + i as u64) % VARIANTS;
            pkgs.push(pkg(&format!("filler-{i}"), &format!("1.{variant}-1.el9")));
        }
        pkgs
    }
}

fn pkg(name: &str, version: &str) -> InstalledPackage {
    InstalledPackage {
        name: name.to_string(),
        version: version.to_string(),
        arch: "x86_64".into(),
        source_name: None,
        source_version: None,
        status: "installed".into(),
    }
}

/// Runs the benchmark.
pub fn run(patchctl: &Path, data: &Path, hosts: usize, packages: usize) -> anyhow::Result<Report> {
    let mut md = String::new();
    md.push_str("### CVE correlation (AlmaLinux data)\n\n");

    let imports = import_runs(patchctl, data)?;
    md.push_str(
        "| import of almalinux-8/9/10.zip (5,680 records) | wall | peak RSS |\n|---|---:|---:|\n",
    );
    for (label, wall, rss) in &imports {
        md.push_str(&format!(
            "| {label} | {:.2} s | {} |\n",
            wall.as_secs_f64(),
            crate::stats::mib(*rss)
        ));
    }

    // index memory: every record in ../shared/data
    let before = rss_kib();
    let started = Instant::now();
    let all = parse_all(&[
        data.join("osv"),
        data.join("debian/vuln-list-debian-samples"),
        data.join("debian/tracker-json-samples"),
        data.join("debian/security-support"),
        data.join("alpine"),
    ])?;
    let records = all.len();
    let index = Index::build(all);
    let build = started.elapsed();
    let index_kib = rss_kib().saturating_sub(before);
    md.push_str(&format!(
        "\n| in-memory index, all of ../shared/data | records | statements | parse + build | RSS growth | target |\n|---|---:|---:|---:|---:|---|\n| | {} | {} | {:.2} s | {} | ≤ 1 GB |\n",
        thousands(records as u64),
        thousands(index.len() as u64),
        build.as_secs_f64(),
        crate::stats::mib(index_kib),
    ));
    drop(index);

    let alma = parse_all(&alma_zips(data))?;
    let synthetic = Synthetic::new(&alma, packages);
    let ecos = vec!["AlmaLinux:9".to_string()];
    let pairs = (hosts * packages) as f64;

    // cold: every probe evaluated, nothing shared (a sample of hosts)
    let index = Index::build(alma.clone());
    let sample = hosts.min(200);
    let mut hits = 0usize;
    let mut cold = Duration::ZERO;
    for h in 0..sample {
        let pkgs = synthetic.host(h);
        let started = Instant::now();
        for p in matcher::probes(&index, &ecos, None, &pkgs) {
            hits += index.evaluate(&p).len();
        }
        cold += started.elapsed();
    }
    let cold_rate = (sample * packages) as f64 / cold.as_secs_f64();

    // fleet: the platform's engine, sharing decisions
    let mut fleet = Fleet::new(index);
    let ids: Vec<Uuid> = (0..hosts).map(|_| Uuid::new_v4()).collect();
    let mut fleet_time = Duration::ZERO;
    for (h, id) in ids.iter().enumerate() {
        let pkgs = synthetic.host(h);
        let started = Instant::now();
        fleet.set_host(*id, &ecos, None, &pkgs);
        fleet_time += started.elapsed();
    }
    let fleet_kib = rss_kib();
    let fleet_rate = pairs / fleet_time.as_secs_f64();
    let work = fleet.work();
    let summary = fleet.summary(None);

    // one new advisory on a package every host has
    let target = synthetic.host(0)[0].name.clone();
    let advisory = SourcedRecord {
        source: "bench".into(),
        imported_at: None,
        record: Record {
            id: "BENCH-2026:0001".into(),
            aliases: vec!["CVE-2026-99999".into()],
            summary: "Important: one new advisory".into(),
            severity: Some("Important".into()),
            cvss_vector: None,
            published: None,
            modified: None,
            withdrawn: false,
            exploited: None,
            affected: vec![Affected {
                ecosystem: "AlmaLinux:9".into(),
                package: target.clone(),
                introduced: None,
                last_affected: None,
                status: Status::Fixed {
                    fixed_version: "99:1-1.el9".into(),
                },
                note: None,
                severity: None,
            }],
        },
    };
    let started = Instant::now();
    let redone = fleet.apply([advisory], &[]);
    let recorrelate = started.elapsed();
    let with_new = fleet.hosts_with("CVE-2026-99999", None).len();

    md.push_str(&format!(
        "\n| correlation, 1 core, {} hosts × {} packages (AlmaLinux 9) | pairs/s | hosts/s | |\n|---|---:|---:|---|\n",
        thousands(hosts as u64),
        thousands(packages as u64)
    ));
    md.push_str(&format!(
        "| PatchCTL cold: every probe evaluated, nothing shared ({sample} hosts, {} hits) | {} | {:.0} | per-pair cost |\n",
        thousands(hits as u64),
        thousands(cold_rate as u64),
        cold_rate / packages as f64
    ));
    md.push_str(&format!(
        "| PatchCTL fleet engine ({} evaluated, {} shared; {:.2} s total) | {} | {:.0} | target ≥ 1,000,000 |\n",
        thousands(work.evaluated),
        thousands(work.shared),
        fleet_time.as_secs_f64(),
        thousands(fleet_rate as u64),
        hosts as f64 / fleet_time.as_secs_f64()
    ));
    md.push_str(&format!(
        "| Fleet (documented, OVAL) | {} | 10 | reference |\n",
        thousands(FLEET_REFERENCE_PAIRS_PER_S as u64)
    ));
    md.push_str(&format!(
        "\nFleet findings: {} vulnerable over {} hosts ({} fixable); {} distinct decisions; process RSS with the index and the fleet loaded: {}. One new advisory on `{target}`: re-correlated in {:.1} ms ({} shared decisions re-evaluated, {} hosts now affected; target < 1 s).\n",
        thousands(summary.vulnerable),
        thousands(summary.hosts),
        thousands(summary.fixable),
        thousands(fleet.decision_count() as u64),
        crate::stats::mib(fleet_kib),
        recorrelate.as_secs_f64() * 1e3,
        thousands(redone as u64),
        thousands(with_new as u64),
    ));
    Ok(Report {
        markdown: md,
        cold_pairs_per_s: cold_rate,
        fleet_pairs_per_s: fleet_rate,
        recorrelate,
    })
}
