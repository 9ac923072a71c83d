//! `patchctl-bench vulnfeeds`: CVE data of every family (issue 12).
//!
//! * Import, per feed: `patchctl vulndb import` of each feed's real sample in
//!   ../shared/data into a fresh SQLite database, under `rusage-of` (wall time and peak
//!   RSS of exactly that process). One line of [`FEEDS`] per feed.
//! * Index memory at full size: the samples are tiny, so every family's data is
//!   generated at its real feed's size (`synth::FAMILIES`: records × statements per record,
//!   estimates documented in docs/benchmarks.md) with the real shapes (ecosystem
//!   strings from `ecosystem::names` and the host rules, keys by source or binary as
//!   the family's feed keys them, fixed versions in the family's syntax, the six
//!   statuses), plus the real AlmaLinux database. Measured: RSS growth of this process
//!   while the [`Index`] is built from a stream of records (never all held), then with
//!   a [`Fleet`] of hosts over it.
//! * Correlation rate, one core, over a mixed fleet of every family's hosts (from
//!   os-release, as the platform makes them): *cold* (every probe evaluated, nothing
//!   shared) on a sample, and the platform's [`Fleet`] engine on all hosts.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use patchctl_vuln::fleet::Fleet;
use patchctl_vuln::matcher::{self, Index, SourcedRecord};
use uuid::Uuid;

use crate::stats::{mib, thousands};

mod synth;

use synth::{FAMILIES, HostMaker, synthetic_records};

/// Every feed's sample under ../shared/data: a label and its paths. Adding a feed is
/// one line.
pub const FEEDS: &[(&str, &[&str])] = &[
    (
        "AlmaLinux OSV (almalinux-8/9/10.zip)",
        &[
            "osv/almalinux-8.zip",
            "osv/almalinux-9.zip",
            "osv/almalinux-10.zip",
        ],
    ),
    ("Rocky Linux OSV samples", &["osv/rocky-samples"]),
    (
        "Ubuntu OSV and OpenVEX samples",
        &[
            "osv/ubuntu-samples",
            "ubuntu/vuls-data-update-samples/osv",
            "ubuntu/vuls-data-update-samples/vex",
        ],
    ),
    (
        "Debian tracker JSON samples",
        &["debian/tracker-json-samples"],
    ),
    (
        "Debian vuln-list samples",
        &["debian/vuln-list-debian-samples"],
    ),
    (
        "Debian security-support lists",
        &["debian/security-support"],
    ),
    (
        "Alpine secdb 2020 (v3.3–v3.11)",
        &["alpine/alpine-secdb-2020"],
    ),
    (
        "Alpine secdb (vunnel fixtures)",
        &["alpine/vunnel-fixtures"],
    ),
    ("Red Hat CSAF VEX (glibc: 23 MB .xz)", &["redhat/csaf-vex"]),
    ("Red Hat CSAF RHSA advisories", &["redhat/csaf-advisories"]),
    (
        "Red Hat bulk VEX (tar.zst, deletions.csv)",
        &["redhat/csaf-vex-bulk"],
    ),
    (
        "Red Hat Security Data API JSON",
        &[
            "redhat/security-data-api/CVE-2023-4863",
            "redhat/security-data-api/CVE-2023-48161.json",
            "redhat/security-data-api/CVE-2023-6204.json",
            "redhat/security-data-api/CVE-2023-6205.json",
            "redhat/security-data-api/CVE-2023-6206.json",
            "redhat/security-data-api/CVE-2023-6207.json",
            "redhat/security-data-api/vuln-list-redhat",
        ],
    ),
    ("Red Hat OSV (all.zip)", &["redhat/osv/all.zip"]),
    ("SUSE CSAF VEX", &["suse/csaf-vex"]),
    ("SUSE CSAF advisories", &["suse/csaf"]),
    ("SUSE OSV", &["suse/osv"]),
    (
        "SUSE OVAL (gzip excerpts)",
        &["suse/oval", "suse/oval-vunnel"],
    ),
    (
        "Amazon Linux updateinfo.xml (ALAS)",
        &[
            "amazon/updateinfo-samples/updateinfo_1.xml.gz",
            "amazon/updateinfo-samples/updateinfo_2.xml.gz",
            "amazon/updateinfo-samples/updateinfo_2022.xml.gz",
            "amazon/updateinfo-samples/updateinfo_2023.xml.gz",
            "amazon/updateinfo-samples/updateinfo_2023_kernel-livepatch.xml.gz",
            "amazon/updateinfo-samples/updateinfo_2023_nvidia.xml.gz",
            "amazon/updateinfo-samples/updateinfo_2_kernel-5.15.xml.gz",
            "amazon/updateinfo-samples-vuln-list-update/updateinfo_2_items.xml.gz",
        ],
    ),
    (
        "Fedora Bodhi and updateinfo.xml",
        &[
            "fedora/bodhi-api-updates/F29C.json",
            "fedora/bodhi-api-updates/F38.json",
            "fedora/bodhi-api-updates/F38F.json",
            "fedora/bodhi-api-updates/F38M.json",
            "fedora/bodhi-api-updates/F40.json",
            "fedora/updateinfo/epel6-archive/804c7236e6d341cbb68a257bf8b984a140c1f1d2006e35ba9f6d2383b1a50ab0-updateinfo.xml.bz2",
            "fedora/updateinfo/f38-modular/5018295245e031a2d51db78a23935461d067cdbc1b6e43d8575983c5f6893252-updateinfo.xml.xz",
            "fedora/updateinfo/f43-everything/74f58a91baa4a290e7ab058c6298b46ef49fc5ee990ede14d181340e5d22fca9-updateinfo.xml.zst",
        ],
    ),
    (
        "Arch security tracker JSON",
        &[
            "arch/trivy-db",
            "arch/vuln-list",
            "arch/vuln-list-update",
            "arch/vuls-data-update",
        ],
    ),
    (
        "CISA KEV catalog",
        &["kev/known_exploited_vulnerabilities.json"],
    ),
];

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .map(|s| crate::procs::parse_status(&s).rss_kib)
        .unwrap_or(0)
}

/// What the run measured.
pub struct Report {
    /// Markdown.
    pub markdown: String,
    /// Index RSS growth, KiB.
    pub index_kib: u64,
    /// Cold pairs/s.
    pub cold_pairs_per_s: f64,
    /// Fleet pairs/s.
    pub fleet_pairs_per_s: f64,
    /// Feeds whose import failed.
    pub failed_imports: usize,
}

impl Report {
    /// Index ≤ 1 GB, fleet ≥ 1,000,000 pairs/s, every feed imported.
    pub fn meets_targets(&self) -> bool {
        self.index_kib <= 1_000_000_000 / 1024
            && self.fleet_pairs_per_s >= 1_000_000.0
            && self.failed_imports == 0
    }
}

/// Size of the generated data: `scale` 1.0 is full size (the smoke run uses less).
pub struct Config {
    /// Hosts in the mixed fleet.
    pub hosts: usize,
    /// Packages per host.
    pub packages: usize,
    /// Fraction of each family's full size generated.
    pub scale: f64,
}

fn import_rows(patchctl: &Path, data: &Path, md: &mut String) -> anyhow::Result<usize> {
    md.push_str(
        "| feed sample | files | records | rejected | import wall | peak RSS |\n|---|---:|---:|---:|---:|---:|\n",
    );
    let mut failed = 0;
    for (label, rel) in FEEDS {
        let paths: Vec<PathBuf> = rel.iter().map(|p| data.join(p)).collect();
        let parsed = patchctl_vuln::import::import_paths(&paths, &mut |_| {});
        let (records, rejected) = match &parsed {
            Ok(b) => (
                b.iter().map(|b| b.parsed.records.len()).sum::<usize>(),
                b.iter().map(|b| b.parsed.rejected.len()).sum::<usize>(),
            ),
            Err(_) => (0, 0),
        };
        let dir = tempfile::tempdir()?;
        let url = format!("sqlite://{}", dir.path().join("vuln.db").display());
        let mut argv: Vec<String> = vec![
            patchctl.display().to_string(),
            "vulndb".into(),
            "import".into(),
            "--database-url".into(),
            url,
        ];
        for p in &paths {
            argv.push(
                std::fs::canonicalize(p)
                    .with_context(|| format!("{}", p.display()))?
                    .display()
                    .to_string(),
            );
        }
        match (parsed, crate::rpminv::measure(&argv)) {
            (Ok(_), Ok(m)) => md.push_str(&format!(
                "| {label} | {} | {} | {} | {:.2} s | {} |\n",
                rel.len(),
                thousands(records as u64),
                rejected,
                m.wall.as_secs_f64(),
                mib(m.maxrss_kib)
            )),
            (p, m) => {
                failed += 1;
                let why = p
                    .err()
                    .map(|e| e.to_string())
                    .or_else(|| m.err().map(|e| format!("{e:#}")))
                    .unwrap_or_default();
                md.push_str(&format!(
                    "| {label} | {} | FAILED: {why} | | | |\n",
                    rel.len()
                ));
            }
        }
    }
    Ok(failed)
}

/// Runs the benchmark.
pub fn run(patchctl: &Path, data: &Path, cfg: &Config) -> anyhow::Result<Report> {
    if !data.join("osv/almalinux-9.zip").is_file() {
        bail!(
            "{} does not hold osv/almalinux-9.zip; run from the repository with ../shared beside it, or pass --data DIR",
            data.display()
        );
    }
    let mut md = String::from("### CVE data of every family (issue 12)\n\n");
    let failed_imports = import_rows(patchctl, data, &mut md)?;

    // index memory at full size
    let alma_paths: Vec<PathBuf> = FEEDS[0].1.iter().map(|p| data.join(p)).collect();
    let alma: Vec<SourcedRecord> = patchctl_vuln::import::import_paths(&alma_paths, &mut |_| {})?
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
        .collect();
    let before = rss_kib();
    let started = Instant::now();
    let mut rows = Vec::new();
    let mut index = Index::build(alma.iter().cloned());
    rows.push((
        "AlmaLinux (real database)".to_string(),
        alma.len(),
        index.len(),
    ));
    for (f, fam) in FAMILIES.iter().enumerate() {
        let n = ((fam.records as f64) * cfg.scale).ceil() as usize;
        let s0 = index.len();
        for r in synthetic_records(f).take(n) {
            index.upsert(r);
        }
        rows.push((fam.label.to_string(), n, index.len() - s0));
    }
    let build = started.elapsed();
    let index_kib = rss_kib().saturating_sub(before);
    md.push_str(&format!(
        "\n| family (scale {:.2}) | records | statements |\n|---|---:|---:|\n",
        cfg.scale
    ));
    for (label, records, statements) in &rows {
        md.push_str(&format!(
            "| {label} | {} | {} |\n",
            thousands(*records as u64),
            thousands(*statements as u64)
        ));
    }
    md.push_str(&format!(
        "| **all families in one index** | {} | {} |\n\nIndex built in {:.1} s; RSS growth of the process: **{}** (target ≤ 1 GB; includes allocator slack).\n",
        thousands(index.records() as u64),
        thousands(index.len() as u64),
        build.as_secs_f64(),
        mib(index_kib)
    ));

    // every host kind has data
    let maker = HostMaker::new(&alma, cfg.packages);
    drop(alma);
    for (_, ecos) in &maker.kinds {
        if !ecos.iter().any(|e| index.covers(e)) {
            bail!("no data for a host of {ecos:?}: the generated records miss it");
        }
    }

    // cold: every probe evaluated (a sample of hosts, every kind)
    let sample = cfg.hosts.min(maker.kinds.len() * 20);
    let mut hits = 0usize;
    let mut cold = Duration::ZERO;
    let mut cold_pairs = 0usize;
    for h in 0..sample {
        let pkgs = maker.host(h);
        let started = Instant::now();
        for p in matcher::probes(&index, maker.ecosystems(h), None, &pkgs) {
            hits += index.evaluate(&p).len();
        }
        cold += started.elapsed();
        cold_pairs += pkgs.len();
    }
    let cold_rate = cold_pairs as f64 / cold.as_secs_f64();

    // the fleet engine over all hosts
    let before_fleet = rss_kib();
    let mut fleet = Fleet::new(index);
    let mut fleet_time = Duration::ZERO;
    for h in 0..cfg.hosts {
        let pkgs = maker.host(h);
        let started = Instant::now();
        fleet.set_host(Uuid::new_v4(), maker.ecosystems(h), None, &pkgs);
        fleet_time += started.elapsed();
    }
    let fleet_kib = rss_kib().saturating_sub(before_fleet);
    let pairs = (cfg.hosts * cfg.packages) as f64;
    let fleet_rate = pairs / fleet_time.as_secs_f64();
    let work = fleet.work();
    let summary = fleet.summary(None);
    md.push_str(&format!(
        "\n| correlation, 1 core, mixed fleet: {} hosts × {} packages, {} host kinds | pairs/s | hosts/s | |\n|---|---:|---:|---|\n",
        thousands(cfg.hosts as u64),
        thousands(cfg.packages as u64),
        maker.kinds.len()
    ));
    md.push_str(&format!(
        "| cold: every probe evaluated ({sample} hosts, {} hits) | {} | {:.0} | per-pair cost |\n",
        thousands(hits as u64),
        thousands(cold_rate as u64),
        cold_rate / cfg.packages as f64
    ));
    md.push_str(&format!(
        "| fleet engine ({} evaluated, {} shared; {:.2} s) | {} | {:.0} | target ≥ 1,000,000 |\n",
        thousands(work.evaluated),
        thousands(work.shared),
        fleet_time.as_secs_f64(),
        thousands(fleet_rate as u64),
        cfg.hosts as f64 / fleet_time.as_secs_f64()
    ));
    md.push_str(&format!(
        "\nFleet: {} vulnerable findings over {} hosts ({} fixable), {} distinct decisions; RSS growth with the fleet over the index: {}; process RSS: {}.\n",
        thousands(summary.vulnerable),
        thousands(summary.hosts),
        thousands(summary.fixable),
        thousands(fleet.decision_count() as u64),
        mib(fleet_kib),
        mib(rss_kib())
    ));
    Ok(Report {
        markdown: md,
        index_kib,
        cold_pairs_per_s: cold_rate,
        fleet_pairs_per_s: fleet_rate,
        failed_imports,
    })
}
