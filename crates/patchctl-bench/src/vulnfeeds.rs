//! `patchctl-bench vulnfeeds`: CVE data of every family (issue 12).
//!
//! * Import, per feed: `patchctl vulndb import` of each feed's real sample in
//!   ../shared/data into a fresh SQLite database, under `rusage-of` (wall time and peak
//!   RSS of exactly that process). One line of [`FEEDS`] per feed.
//! * Index memory at full size: the samples are tiny, so every family's data is
//!   generated at its real feed's size ([`FAMILIES`]: records × statements per record,
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
use patchctl_proto::agent::{InstalledPackage, OsInfo};
use patchctl_version::Scheme;
use patchctl_vuln::ecosystem::{self, KeyedBy, host_ecosystems, names};
use patchctl_vuln::fleet::Fleet;
use patchctl_vuln::matcher::{self, Index, SourcedRecord};
use patchctl_vuln::model::{Affected, Record, Status};
use uuid::Uuid;

use crate::stats::{mib, thousands};

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

/// How a family's versions are written.
#[derive(Clone, Copy)]
enum Style {
    /// `1.2.3-4+deb12u1`
    Debian,
    /// `1.2.3-0ubuntu0.22.04.1`
    Ubuntu,
    /// `1:1.2.3-4.el9_4`
    RedHat,
    /// `1.2.3-150500.3.2`
    Suse,
    /// `1.2.3-1.amzn2023.0.1`
    Amazon,
    /// `1.2.3-1.fc41`
    Fedora,
    /// `1.2.3-r1`
    Alpine,
    /// `1:1.2.3-2`
    Arch,
    /// `1.2.3-4.el9`
    Rebuild,
}

/// One family at its real size: a label, the record ecosystems (from the vendors'
/// product names through `ecosystem::names`), records, statements per record, how
/// versions look, and the os-releases of its hosts in the fleet.
struct Family {
    label: &'static str,
    ecosystems: fn() -> Vec<String>,
    records: usize,
    per_record: usize,
    style: Style,
    hosts: &'static [(&'static str, &'static str)],
}

fn debian_ecos() -> Vec<String> {
    ["buster", "bullseye", "bookworm", "trixie"]
        .iter()
        .filter_map(|c| ecosystem::debian_ecosystem(c))
        .collect()
}

fn ubuntu_ecos() -> Vec<String> {
    let mut v: Vec<String> = ["20.04", "22.04", "24.04", "24.10", "25.04"]
        .iter()
        .filter_map(|r| ecosystem::ubuntu_ecosystem(r, false))
        .collect();
    v.extend(
        ["16.04", "18.04", "20.04", "22.04"]
            .iter()
            .filter_map(|r| ecosystem::ubuntu_ecosystem(r, true)),
    );
    v
}

fn redhat_ecos() -> Vec<String> {
    [
        "cpe:/o:redhat:enterprise_linux:8::baseos",
        "cpe:/o:redhat:enterprise_linux:9::baseos",
        "cpe:/a:redhat:enterprise_linux:10::appstream",
        "cpe:/a:redhat:rhel_eus:9.2::appstream",
        "cpe:/a:redhat:rhel_eus:9.4::appstream",
        "cpe:/a:redhat:rhel_eus:8.8::appstream",
        "cpe:/a:redhat:rhel_e4s:9.0::appstream",
        "cpe:/a:redhat:rhel_aus:8.4::baseos",
        "cpe:/o:redhat:rhel_els:7",
    ]
    .iter()
    .filter_map(|c| names::redhat_from_cpe(c))
    .collect()
}

fn suse_ecos() -> Vec<String> {
    let mut v: Vec<String> = [
        "SUSE Linux Enterprise Server 15 SP5",
        "SUSE Linux Enterprise Server 15 SP6",
        "SUSE Linux Enterprise Server 15 SP4",
        "SUSE Linux Enterprise Server 12 SP5",
        "SUSE Linux Enterprise Micro 5.5",
        "openSUSE Leap 15.5",
        "openSUSE Leap 15.6",
    ]
    .iter()
    .filter_map(|p| names::suse_from_product(p))
    .collect();
    v.push(names::TUMBLEWEED.to_string());
    v
}

fn amazon_ecos() -> Vec<String> {
    vec![
        names::amazon("2018.03", None),
        names::amazon("2", None),
        names::amazon("2023", None),
    ]
}

fn fedora_ecos() -> Vec<String> {
    ["40", "41", "42"]
        .iter()
        .filter_map(|r| names::fedora(r))
        .collect()
}

fn arch_ecos() -> Vec<String> {
    vec![names::ARCH.to_string()]
}

fn alpine_ecos() -> Vec<String> {
    [
        "Alpine:v3.18",
        "Alpine:v3.19",
        "Alpine:v3.20",
        "Alpine:v3.21",
    ]
    .iter()
    .filter_map(|e| names::normalize(e))
    .collect()
}

fn rocky_ecos() -> Vec<String> {
    ["Rocky Linux:8", "Rocky Linux:9"]
        .iter()
        .filter_map(|e| names::normalize(e))
        .collect()
}

/// The families at full size (AlmaLinux is the real database, imported). Sizes: see
/// "Issue 12: every family" in docs/benchmarks.md.
const FAMILIES: &[Family] = &[
    Family {
        label: "Red Hat (CSAF VEX)",
        ecosystems: redhat_ecos,
        records: 40_000,
        per_record: 50,
        style: Style::RedHat,
        hosts: &[("rhel", "9.4"), ("rhel", "8.10"), ("rhel", "9.2")],
    },
    Family {
        label: "SUSE and openSUSE (CSAF VEX)",
        ecosystems: suse_ecos,
        records: 40_000,
        per_record: 50,
        style: Style::Suse,
        hosts: &[
            ("sles", "15.5"),
            ("sles", "15.6"),
            ("opensuse-leap", "15.6"),
            ("opensuse-tumbleweed", "20250101"),
        ],
    },
    Family {
        label: "Debian (tracker)",
        ecosystems: debian_ecos,
        records: 50_000,
        per_record: 6,
        style: Style::Debian,
        hosts: &[("debian", "12"), ("debian", "11"), ("debian", "13")],
    },
    Family {
        label: "Ubuntu (OSV/VEX)",
        ecosystems: ubuntu_ecos,
        records: 45_000,
        per_record: 8,
        style: Style::Ubuntu,
        hosts: &[("ubuntu", "22.04"), ("ubuntu", "24.04")],
    },
    Family {
        label: "Amazon Linux (ALAS updateinfo)",
        ecosystems: amazon_ecos,
        records: 7_000,
        per_record: 15,
        style: Style::Amazon,
        hosts: &[("amzn", "2"), ("amzn", "2023")],
    },
    Family {
        label: "Fedora (Bodhi security updates)",
        ecosystems: fedora_ecos,
        records: 20_000,
        per_record: 5,
        style: Style::Fedora,
        hosts: &[("fedora", "41"), ("fedora", "42")],
    },
    Family {
        label: "Alpine (secdb)",
        ecosystems: alpine_ecos,
        records: 10_000,
        per_record: 4,
        style: Style::Alpine,
        hosts: &[("alpine", "3.20.3"), ("alpine", "3.21.0")],
    },
    Family {
        label: "Arch (tracker AVGs)",
        ecosystems: arch_ecos,
        records: 3_000,
        per_record: 2,
        style: Style::Arch,
        hosts: &[("arch", "")],
    },
    Family {
        label: "Rocky Linux (OSV)",
        ecosystems: rocky_ecos,
        records: 5_500,
        per_record: 12,
        style: Style::Rebuild,
        hosts: &[("rocky", "9.4"), ("rocky", "8.10")],
    },
];

/// AlmaLinux hosts (the real database).
const ALMA_HOSTS: &[(&str, &str)] = &[("almalinux", "9.4"), ("almalinux", "8.10")];

/// Source packages per family.
const POOL: u64 = 4_000;
/// Versions in circulation per package across the fleet.
const VARIANTS: u64 = 4;

fn hash(s: u64, salt: u64) -> u64 {
    let mut h = 0xcbf29ce484222325u64 ^ salt;
    for b in s.to_le_bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x100000001b3);
    }
    h ^ (h >> 29)
}

fn source_name(family: usize, n: u64) -> String {
    const STEMS: [&str; 8] = [
        "lib", "python3-", "perl-", "golang-", "xorg-", "gnome-", "node-", "",
    ];
    format!("{}pkg{family}x{n}", STEMS[(n % 8) as usize])
}

/// The binaries built from a source (binary-keyed families name them).
fn binary_name(src: &str, k: usize) -> String {
    const SUFFIX: [&str; 6] = ["", "-libs", "-devel", "-tools", "-doc", "-common"];
    format!("{src}{}", SUFFIX[k % SUFFIX.len()])
}

/// A version in the family's syntax; `seed` picks the numbers, `eco` the release.
fn version(style: Style, seed: u64, eco: usize) -> String {
    let (a, b, c) = (seed % 9 + 1, seed / 9 % 20, seed / 180 % 30);
    let rel = seed / 5400 % 12 + 2;
    match style {
        Style::Debian => format!("{a}.{b}.{c}-{rel}+deb{}u{}", 10 + eco, seed % 3 + 1),
        Style::Ubuntu => format!("{a}.{b}.{c}-{rel}ubuntu0.{}.{}", eco, seed % 4 + 1),
        Style::RedHat => {
            let epoch = if seed % 7 == 0 { "1:" } else { "" };
            format!("{epoch}{a}.{b}.{c}-{rel}.el9_{}", eco % 6)
        }
        Style::Suse => format!("{a}.{b}.{c}-150{}00.{rel}.{}", eco + 3, seed % 5 + 1),
        Style::Amazon => format!("{a}.{b}.{c}-{rel}.amzn2023.0.{}", eco + 1),
        Style::Fedora => format!("{a}.{b}.{c}-{rel}.fc{}", 40 + eco),
        Style::Alpine => format!("{a}.{b}.{c}-r{}", rel + eco as u64),
        Style::Arch => format!("{a}.{b}.{c}-{rel}"),
        Style::Rebuild => format!("{a}.{b}.{c}-{rel}.el{}_{}", 8 + eco, seed % 6),
    }
}

/// A version just below `v` in `scheme`: `~` for dpkg and rpm, the previous `-rN` or
/// pkgrel for apk and pacman (the generated ones are at least 2).
fn below(scheme: Scheme, v: &str) -> String {
    match scheme {
        Scheme::Dpkg | Scheme::Rpm => format!("{v}~"),
        Scheme::Apk | Scheme::Pacman => {
            let sep = if matches!(scheme, Scheme::Apk) {
                "-r"
            } else {
                "-"
            };
            match v
                .rsplit_once(sep)
                .and_then(|(h, n)| Some((h, n.parse::<u64>().ok()?)))
            {
                Some((h, n)) if n > 0 => format!("{h}{sep}{}", n - 1),
                _ => v.to_string(),
            }
        }
    }
}

/// Record `r` of family `f`: one CVE, its source package, statements over the family's
/// ecosystems (binaries for binary-keyed families), mostly fixed, some of the other
/// statuses as the feeds state them.
fn record(f: usize, fam: &Family, ecos: &[String], r: usize) -> Record {
    let seed = hash(r as u64, f as u64);
    let src = source_name(f, seed % POOL);
    let binary = ecosystem::rules(&ecos[0]).is_some_and(|x| x.keyed_by == KeyedBy::Binary);
    let used = ecos.len().min(fam.per_record).max(1);
    let per_eco = if binary {
        (fam.per_record / used).max(1)
    } else {
        1
    };
    let first_eco = (seed as usize / 7) % ecos.len();
    let mut affected = Vec::with_capacity(used * per_eco);
    for i in 0..used {
        let e = (first_eco + i) % ecos.len();
        for k in 0..per_eco {
            let package = if binary {
                binary_name(&src, k)
            } else {
                src.clone()
            };
            let status = match hash(seed, (e * 16 + k) as u64) % 10 {
                0 => Status::NotAffected,
                1 => Status::WillNotFix,
                2 => Status::AffectedNoFix,
                _ => Status::Fixed {
                    fixed_version: version(fam.style, seed, e),
                },
            };
            affected.push(Affected {
                ecosystem: ecos[e].clone(),
                package,
                introduced: None,
                last_affected: None,
                status,
                note: None,
                severity: None,
            });
        }
    }
    Record {
        id: format!("CVE-{}-{:05}", 2000 + seed % 26, r),
        aliases: Vec::new(),
        summary: format!("{src}: synthetic vulnerability {r}"),
        severity: Some(["low", "medium", "high", "critical"][(seed % 4) as usize].into()),
        cvss_vector: Some("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H".into()),
        published: Some("2024-08-04T00:00:00Z".into()),
        modified: Some("2024-08-04T00:00:00Z".into()),
        withdrawn: false,
        affected,
        exploited: None,
    }
}

fn synthetic_records(f: usize) -> impl Iterator<Item = SourcedRecord> {
    let fam = &FAMILIES[f];
    let ecos = (fam.ecosystems)();
    // one feed per family: the same CVE id in two families is two records
    let source = format!("synthetic-{f}");
    (0..fam.records).map(move |r| SourcedRecord {
        source: source.clone(),
        imported_at: None,
        record: record(f, fam, &ecos, r),
    })
}

fn os(id: &str, version_id: &str) -> OsInfo {
    OsInfo {
        id: id.into(),
        version_id: version_id.into(),
        ..OsInfo::default()
    }
}

/// One synthetic host of the mixed fleet: its ecosystems and packages.
struct HostMaker {
    /// Per family (index into FAMILIES, or None for AlmaLinux): os-release, ecosystems.
    kinds: Vec<(Option<usize>, Vec<String>)>,
    /// AlmaLinux names and fixed versions from the real data, per major.
    alma: Vec<(String, String)>,
    packages: usize,
}

impl HostMaker {
    fn new(alma: &[SourcedRecord], packages: usize) -> HostMaker {
        let mut kinds = Vec::new();
        for (f, fam) in FAMILIES.iter().enumerate() {
            for (id, v) in fam.hosts {
                kinds.push((Some(f), host_ecosystems(&os(id, v), false, None)));
            }
        }
        for (id, v) in ALMA_HOSTS {
            kinds.push((None, host_ecosystems(&os(id, v), false, None)));
        }
        let mut names: Vec<(String, String)> = alma
            .iter()
            .flat_map(|r| r.record.affected.iter())
            .filter(|a| a.ecosystem == "AlmaLinux:9" && !a.package.starts_with("kernel"))
            .filter_map(|a| Some((a.package.clone(), a.status.fixed_version()?.to_string())))
            .collect();
        names.sort();
        names.dedup_by(|a, b| a.0 == b.0);
        HostMaker {
            kinds,
            alma: names,
            packages,
        }
    }

    fn ecosystems(&self, h: usize) -> &[String] {
        &self.kinds[h % self.kinds.len()].1
    }

    fn host(&self, h: usize) -> Vec<InstalledPackage> {
        let (family, ecos) = &self.kinds[h % self.kinds.len()];
        let rules = ecos.iter().find_map(|e| ecosystem::rules(e));
        let scheme = rules.map_or(Scheme::Rpm, |r| r.scheme);
        let source_keyed = rules.is_some_and(|r| r.keyed_by == KeyedBy::Source);
        // about 40 % of a real host's packages are named by advisories
        let from_data = self.packages * 2 / 5;
        let mut pkgs = Vec::with_capacity(self.packages);
        for i in 0..from_data {
            let variant = (h as u64 / self.kinds.len() as u64 + i as u64) % VARIANTS;
            let (name, src, fixed) = match family {
                Some(f) => {
                    let fam = &FAMILIES[*f];
                    let n = hash((h / self.kinds.len() % 64) as u64, i as u64 + 7) % POOL;
                    let src = source_name(*f, n);
                    let fixed = version(fam.style, hash(n, variant), i % 3);
                    let name = if source_keyed {
                        format!("{src}-bin")
                    } else {
                        binary_name(&src, i % 3)
                    };
                    (name, src, fixed)
                }
                None => {
                    let (n, v) = &self.alma[(h * 7919 + i) % self.alma.len()];
                    (n.clone(), n.clone(), v.clone())
                }
            };
            let v = if variant % 2 == 0 {
                fixed
            } else {
                below(scheme, &fixed)
            };
            pkgs.push(pkg(&name, &v, source_keyed.then_some((&src, &v))));
        }
        for i in from_data..self.packages {
            let variant = (h as u64 + i as u64) % VARIANTS;
            pkgs.push(pkg(
                &format!("filler-{i}"),
                &format!("1.{variant}-1"),
                source_keyed.then_some((&format!("filler-{i}"), &format!("1.{variant}-1"))),
            ));
        }
        pkgs
    }
}

fn pkg(name: &str, version: &str, source: Option<(&String, &String)>) -> InstalledPackage {
    InstalledPackage {
        name: name.to_string(),
        version: version.to_string(),
        arch: "x86_64".into(),
        source_name: source.map(|(n, _)| n.clone()),
        source_version: source.map(|(_, v)| v.clone()),
        status: "installed".into(),
    }
}

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
