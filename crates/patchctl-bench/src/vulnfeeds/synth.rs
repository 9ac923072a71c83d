//! The synthetic data of `patchctl-bench vulnfeeds`: every family's records at its real
//! feed's size ([`FAMILIES`]) with the real shapes, and the hosts of the mixed fleet
//! ([`HostMaker`]).

use patchctl_proto::agent::{InstalledPackage, OsInfo};
use patchctl_version::Scheme;
use patchctl_vuln::ecosystem::{self, KeyedBy, host_ecosystems, names};
use patchctl_vuln::matcher::SourcedRecord;
use patchctl_vuln::model::{Affected, Record, Status};

/// How a family's versions are written.
#[derive(Clone, Copy)]
pub(super) enum Style {
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
pub(super) struct Family {
    pub(super) label: &'static str,
    pub(super) ecosystems: fn() -> Vec<String>,
    pub(super) records: usize,
    pub(super) per_record: usize,
    pub(super) style: Style,
    pub(super) hosts: &'static [(&'static str, &'static str)],
}

pub(super) fn debian_ecos() -> Vec<String> {
    ["buster", "bullseye", "bookworm", "trixie"]
        .iter()
        .filter_map(|c| ecosystem::debian_ecosystem(c))
        .collect()
}

pub(super) fn ubuntu_ecos() -> Vec<String> {
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

pub(super) fn redhat_ecos() -> Vec<String> {
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

pub(super) fn suse_ecos() -> Vec<String> {
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

pub(super) fn amazon_ecos() -> Vec<String> {
    vec![
        names::amazon("2018.03", None),
        names::amazon("2", None),
        names::amazon("2023", None),
    ]
}

pub(super) fn fedora_ecos() -> Vec<String> {
    ["40", "41", "42"]
        .iter()
        .filter_map(|r| names::fedora(r))
        .collect()
}

pub(super) fn arch_ecos() -> Vec<String> {
    vec![names::ARCH.to_string()]
}

pub(super) fn alpine_ecos() -> Vec<String> {
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

pub(super) fn rocky_ecos() -> Vec<String> {
    ["Rocky Linux:8", "Rocky Linux:9"]
        .iter()
        .filter_map(|e| names::normalize(e))
        .collect()
}

/// The families at full size (AlmaLinux is the real database, imported). Sizes: see
/// "Issue 12: every family" in docs/benchmarks.md.
pub(super) const FAMILIES: &[Family] = &[
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
pub(super) const ALMA_HOSTS: &[(&str, &str)] = &[("almalinux", "9.4"), ("almalinux", "8.10")];

/// Source packages per family.
pub(super) const POOL: u64 = 4_000;
/// Versions in circulation per package across the fleet.
pub(super) const VARIANTS: u64 = 4;

pub(super) fn hash(s: u64, salt: u64) -> u64 {
    let mut h = 0xcbf29ce484222325u64 ^ salt;
    for b in s.to_le_bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x100000001b3);
    }
    h ^ (h >> 29)
}

pub(super) fn source_name(family: usize, n: u64) -> String {
    const STEMS: [&str; 8] = [
        "lib", "python3-", "perl-", "golang-", "xorg-", "gnome-", "node-", "",
    ];
    format!("{}pkg{family}x{n}", STEMS[(n % 8) as usize])
}

/// The binaries built from a source (binary-keyed families name them).
pub(super) fn binary_name(src: &str, k: usize) -> String {
    const SUFFIX: [&str; 6] = ["", "-libs", "-devel", "-tools", "-doc", "-common"];
    format!("{src}{}", SUFFIX[k % SUFFIX.len()])
}

/// A version in the family's syntax; `seed` picks the numbers, `eco` the release.
pub(super) fn version(style: Style, seed: u64, eco: usize) -> String {
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
pub(super) fn below(scheme: Scheme, v: &str) -> String {
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
pub(super) fn record(f: usize, fam: &Family, ecos: &[String], r: usize) -> Record {
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

pub(super) fn synthetic_records(f: usize) -> impl Iterator<Item = SourcedRecord> {
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

pub(super) fn os(id: &str, version_id: &str) -> OsInfo {
    OsInfo {
        id: id.into(),
        version_id: version_id.into(),
        ..OsInfo::default()
    }
}

/// One synthetic host of the mixed fleet: its ecosystems and packages.
pub(super) struct HostMaker {
    /// Per family (index into FAMILIES, or None for AlmaLinux): os-release, ecosystems.
    pub(super) kinds: Vec<(Option<usize>, Vec<String>)>,
    /// AlmaLinux names and fixed versions from the real data, per major.
    pub(super) alma: Vec<(String, String)>,
    pub(super) packages: usize,
}

impl HostMaker {
    pub(super) fn new(alma: &[SourcedRecord], packages: usize) -> HostMaker {
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

    pub(super) fn ecosystems(&self, h: usize) -> &[String] {
        &self.kinds[h % self.kinds.len()].1
    }

    pub(super) fn host(&self, h: usize) -> Vec<InstalledPackage> {
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

pub(super) fn pkg(
    name: &str,
    version: &str,
    source: Option<(&String, &String)>,
) -> InstalledPackage {
    InstalledPackage {
        name: name.to_string(),
        version: version.to_string(),
        arch: "x86_64".into(),
        source_name: source.map(|(n, _)| n.clone()),
        source_version: source.map(|(_, v)| v.clone()),
        status: "installed".into(),
    }
}
