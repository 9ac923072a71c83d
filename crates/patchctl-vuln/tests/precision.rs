//! Precision, measured over whole datasets: for one dataset per importer, every `fixed`
//! statement of every record is tried on a host with the package exactly at the fixed
//! version and just below it, and the matcher's findings must equal a direct computation
//! over the records, written plainly below (not through the matcher's code).
//!
//! A dataset is one line of [`DATASETS`]: its paths under `../shared/data` and the
//! os-release `ID`s of the hosts that use it. A host is made from an os-release whose
//! ecosystems ([`host_ecosystems`]) contain the statement's ecosystem; the `VERSION_ID`
//! is read off the ecosystem string (`Red Hat:9.2 EUS` → `rhel` `9.2`, `SUSE:Linux
//! Enterprise 15 SP5` → `sles` `15.5`, `Alpine:v3.15` → `alpine` `3.15`). An ecosystem no
//! os-release of the line gives (`Amazon Linux:2 extras kernel-5.15`, which needs the
//! running kernel too, or an ecosystem string the host code does not produce) is passed
//! to the matcher directly; the output counts those statements apart ("direct").
//!
//! The direct computation, per record (withdrawn ones aside) naming the host's package
//! in one of the host's ecosystems:
//!
//! * only the statements of the most specific host ecosystem the record names count;
//! * RPM: a statement whose fixed version is a module build applies only to an installed
//!   module build and vice versa; if the record's summary names a numeric module stream
//!   (`nodejs:18`) that the fixed version follows, only to a version of that stream;
//! * `introduced <= v` and `v <= last_affected` when given;
//! * a bounded fixed statement (`introduced` given) is vulnerable when `v < fixed`; the
//!   unbounded ones are alternative fixes: vulnerable when `v` is below all of them; the
//!   fix shown is the lowest vulnerable one (the first of equals, bounded first);
//! * at or above an unbounded fix and vulnerable to no bounded one: no finding;
//! * a comparison the scheme cannot make: `unknown_version` with the failing text;
//! * else the first applicable statement of another status, as stated.
//!
//! Compared exactly: the sets of (source, record id, package, status, version shown).
//! Kernel packages are left out (the running-kernel rule has its own tests).

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use patchctl_proto::agent::{InstalledPackage, OsInfo};
use patchctl_testkit::{Harness, Need};
use patchctl_version::Scheme;
use patchctl_vuln::ecosystem::{self, KeyedBy, host_ecosystems};
use patchctl_vuln::import;
use patchctl_vuln::matcher::{Index, SourcedRecord};
use patchctl_vuln::model::{Affected, Record, Status};

/// One dataset per importer: a name, its paths under ../shared/data, and the
/// os-release `ID`s whose hosts it is for. Adding a family is one line here.
const DATASETS: &[(&str, &[&str], &[&str])] = &[
    (
        "almalinux-osv",
        &[
            "osv/almalinux-8.zip",
            "osv/almalinux-9.zip",
            "osv/almalinux-10.zip",
        ],
        &["almalinux"],
    ),
    ("rocky-osv", &["osv/rocky-samples"], &["rocky"]),
    (
        "ubuntu-osv-vex",
        &[
            "osv/ubuntu-samples",
            "ubuntu/vuls-data-update-samples/osv",
            "ubuntu/vuls-data-update-samples/vex",
        ],
        &["ubuntu"],
    ),
    (
        "debian-tracker",
        &[
            "debian/tracker-json-samples",
            "debian/vuln-list-debian-samples",
            "debian/security-support",
        ],
        &["debian"],
    ),
    (
        "alpine-secdb",
        &["alpine/alpine-secdb-2020", "alpine/vunnel-fixtures"],
        &["alpine"],
    ),
    (
        "redhat-csaf",
        &[
            "redhat/csaf-vex",
            "redhat/csaf-advisories",
            "redhat/csaf-vex-bulk",
        ],
        &["rhel"],
    ),
    (
        "redhat-api",
        &[
            "redhat/security-data-api/CVE-2023-4863",
            "redhat/security-data-api/CVE-2023-48161.json",
            "redhat/security-data-api/CVE-2023-6204.json",
            "redhat/security-data-api/CVE-2023-6205.json",
            "redhat/security-data-api/CVE-2023-6206.json",
            "redhat/security-data-api/CVE-2023-6207.json",
            "redhat/security-data-api/vuln-list-redhat",
        ],
        &["rhel"],
    ),
    ("redhat-osv", &["redhat/osv/all.zip"], &["rhel"]),
    (
        "suse-csaf",
        &["suse/csaf-vex", "suse/csaf"],
        &[
            "sles",
            "sled",
            "sles_sap",
            "sle-micro",
            "sl-micro",
            "opensuse-leap",
            "opensuse-leap-micro",
            "opensuse-tumbleweed",
        ],
    ),
    (
        "suse-osv",
        &["suse/osv"],
        &[
            "sles",
            "sled",
            "sles_sap",
            "sle-micro",
            "sl-micro",
            "opensuse-leap",
            "opensuse-leap-micro",
            "opensuse-tumbleweed",
        ],
    ),
    (
        "suse-oval",
        &["suse/oval", "suse/oval-vunnel"],
        &[
            "sles",
            "sled",
            "sles_sap",
            "sle-micro",
            "sl-micro",
            "opensuse-leap",
            "opensuse-leap-micro",
            "opensuse-tumbleweed",
        ],
    ),
    (
        "amazon-updateinfo",
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
        &["amzn"],
    ),
    (
        "fedora",
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
        &["fedora"],
    ),
    (
        "arch",
        &[
            "arch/trivy-db",
            "arch/vuln-list",
            "arch/vuln-list-update",
            "arch/vuls-data-update",
        ],
        &["arch"],
    ),
];

fn main() -> std::process::ExitCode {
    let mut h = Harness::new();
    for (name, paths, os_ids) in DATASETS {
        let needs: Vec<Need> = paths.iter().map(|p| Need::SharedData(p)).collect();
        h = h.test(
            patchctl_testkit::Test::sync(format!("precision_{name}"), move || {
                dataset(name, paths, os_ids)
            })
            .needs(needs),
        );
    }
    h.run()
}

/// What one package at one version on one host is expected to get: (source, record id,
/// package, status, version shown).
type Expected = BTreeSet<(String, String, String, String, String)>;

/// A host: its ecosystems (least specific first), one package and its version.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Host {
    ecosystems: Vec<String>,
    package: String,
    version: String,
}

/// The counts printed per dataset.
#[derive(Debug, Default)]
struct Counts {
    records: usize,
    statements: usize,
    fixed_checked: usize,
    direct: usize,
    kernel: usize,
    unmatched_ecosystem: usize,
    no_below: usize,
    hosts: usize,
    findings: usize,
}

fn dataset(name: &str, paths: &[&str], os_ids: &[&str]) {
    let paths: Vec<PathBuf> = paths
        .iter()
        .map(|p| patchctl_testkit::shared_data(p))
        .collect();
    let batches = import::import_paths(&paths, &mut |_| {}).expect("import");
    let records: Vec<(String, Record)> = batches
        .into_iter()
        .flat_map(|b| {
            let feed = b.feed.to_string();
            b.parsed.records.into_iter().map(move |r| (feed.clone(), r))
        })
        .filter(|(_, r)| r.exploited.is_none())
        .collect();
    let mut counts = Counts {
        records: records.len(),
        ..Counts::default()
    };
    let index = Index::build(records.iter().map(|(source, record)| SourcedRecord {
        source: source.clone(),
        imported_at: None,
        record: record.clone(),
    }));

    // (ecosystem, package) → the records naming it
    let mut naming: BTreeMap<(&str, &str), BTreeSet<usize>> = BTreeMap::new();
    for (i, (_, r)) in records.iter().enumerate() {
        if r.withdrawn {
            continue;
        }
        for a in &r.affected {
            naming
                .entry((&a.ecosystem, &a.package))
                .or_default()
                .insert(i);
        }
    }

    let mut hosts: BTreeSet<Host> = BTreeSet::new();
    let mut direct: BTreeSet<String> = BTreeSet::new();
    for (_, r) in records.iter().filter(|(_, r)| !r.withdrawn) {
        for a in &r.affected {
            counts.statements += 1;
            let Some(fixed) = a.status.fixed_version() else {
                continue;
            };
            let Some(rules) = ecosystem::rules(&a.ecosystem) else {
                counts.unmatched_ecosystem += 1;
                continue;
            };
            if is_kernel(rules.scheme, &a.package) {
                counts.kernel += 1;
                continue;
            }
            counts.fixed_checked += 1;
            let ecosystems = match host_for(&a.ecosystem, os_ids) {
                Some(e) => e,
                None => {
                    counts.direct += 1;
                    direct.insert(a.ecosystem.clone());
                    vec![a.ecosystem.clone()]
                }
            };
            let mut versions = vec![fixed.to_string()];
            match below(rules.scheme, fixed) {
                Some(b) => versions.push(b),
                None => counts.no_below += 1,
            }
            for version in versions {
                hosts.insert(Host {
                    ecosystems: ecosystems.clone(),
                    package: a.package.clone(),
                    version,
                });
            }
        }
    }
    counts.hosts = hosts.len();

    let mut failures = Vec::new();
    for host in &hosts {
        let expected = expect(&records, &naming, host);
        let got = matched(&index, host);
        counts.findings += got.len();
        if expected != got {
            failures.push(format!(
                "{host:?}:\n  missing {:?}\n  extra {:?}",
                expected.difference(&got).collect::<Vec<_>>(),
                got.difference(&expected).collect::<Vec<_>>()
            ));
        }
    }
    println!(
        "precision {name}: {} records, {} statements, {} fixed statements checked \
         ({} with the ecosystem passed directly, no os-release gives it), {} hosts \
         (at and just below), {} findings compared; left out: {} kernel, {} of \
         unmatched ecosystems, {} without a just-below version; {} mismatches",
        counts.records,
        counts.statements,
        counts.fixed_checked,
        counts.direct,
        counts.hosts,
        counts.findings,
        counts.kernel,
        counts.unmatched_ecosystem,
        counts.no_below,
        failures.len()
    );
    if !direct.is_empty() {
        println!("precision {name}: ecosystems passed directly: {direct:?}");
    }
    assert!(
        counts.fixed_checked > 0,
        "{name}: no fixed statement to check"
    );
    assert!(counts.findings > 0, "{name}: no finding at all");
    assert!(
        failures.is_empty(),
        "{name}: {} of {} hosts differ:\n{}",
        failures.len(),
        hosts.len(),
        failures
            .iter()
            .take(10)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// The host's findings, as the matcher gives them.
fn matched(index: &Index, host: &Host) -> Expected {
    let rules = ecosystem::rules(&host.ecosystems[0]).expect("rules");
    let source = matches!(rules.keyed_by, KeyedBy::Source);
    let pkg = InstalledPackage {
        name: host.package.clone(),
        version: host.version.clone(),
        arch: "x86_64".into(),
        source_name: source.then(|| host.package.clone()),
        source_version: source.then(|| host.version.clone()),
        status: "installed".into(),
    };
    index
        .match_host(&host.ecosystems, None, &[pkg])
        .into_iter()
        .map(|f| {
            let shown = match &f.status {
                Status::Fixed { fixed_version } => fixed_version.clone(),
                Status::UnknownVersion { failed_version } => failed_version.clone(),
                _ => String::new(),
            };
            (
                f.source,
                f.advisory,
                f.package,
                f.status.name().to_string(),
                shown,
            )
        })
        .collect()
}

/// The direct computation over the records (see the module docs).
fn expect(
    records: &[(String, Record)],
    naming: &BTreeMap<(&str, &str), BTreeSet<usize>>,
    host: &Host,
) -> Expected {
    let scheme = ecosystem::rules(&host.ecosystems[0]).expect("rules").scheme;
    let v = host.version.as_str();
    let mut ids: BTreeSet<usize> = BTreeSet::new();
    for e in &host.ecosystems {
        if let Some(s) = naming.get(&(e.as_str(), host.package.as_str())) {
            ids.extend(s);
        }
    }
    let mut out = Expected::new();
    for i in ids {
        let (source, r) = &records[i];
        // the most specific host ecosystem the record names for the package
        let eco = host
            .ecosystems
            .iter()
            .rev()
            .find(|e| {
                r.affected
                    .iter()
                    .any(|a| a.ecosystem == **e && a.package == host.package)
            })
            .expect("named");
        let statements: Vec<&Affected> = r
            .affected
            .iter()
            .filter(|a| a.ecosystem == *eco && a.package == host.package)
            .collect();
        if let Some((status, shown)) = decide(scheme, v, &r.summary, &statements) {
            out.insert((
                source.clone(),
                r.id.clone(),
                host.package.clone(),
                status,
                shown,
            ));
        }
    }
    out
}

/// One record's statements on one installed version: (status, version shown).
fn decide(
    scheme: Scheme,
    v: &str,
    summary: &str,
    statements: &[&Affected],
) -> Option<(String, String)> {
    let lt = |a: &str, b: &str| scheme.compare(a, b).map(|o| o == Ordering::Less);
    let mut unknown: Option<String> = None;
    let mut note = |stated: &str| {
        if unknown.is_none() {
            unknown = Some(if scheme.parse_check(v).is_err() {
                v.to_string()
            } else {
                stated.to_string()
            });
        }
    };
    let streams = module_streams(summary);
    let mut applicable = Vec::new();
    for a in statements {
        if let (Scheme::Rpm, Some(f)) = (scheme, a.status.fixed_version()) {
            if module_build(f) != module_build(v) {
                continue;
            }
            if module_build(f) {
                if let Some(s) = streams.iter().find(|s| follows(f, s)) {
                    if !follows(v, s) {
                        continue;
                    }
                }
            }
        }
        if let Some(i) = &a.introduced {
            match lt(v, i) {
                Ok(true) => continue,
                Ok(false) => {}
                Err(_) => {
                    note(i);
                    continue;
                }
            }
        }
        if let Some(l) = &a.last_affected {
            match lt(l, v) {
                Ok(true) => continue,
                Ok(false) => {}
                Err(_) => {
                    note(l);
                    continue;
                }
            }
        }
        applicable.push(*a);
    }
    let lowest = |cur: Option<&str>, cand: &str| -> String {
        match cur {
            Some(c) if !matches!(scheme.compare(c, cand), Ok(Ordering::Greater)) => c.to_string(),
            _ => cand.to_string(),
        }
    };
    let mut bounded: Option<String> = None;
    let mut unbounded: Option<String> = None;
    let mut resolved = false;
    for a in &applicable {
        let Some(f) = a.status.fixed_version() else {
            continue;
        };
        match (lt(v, f), a.introduced.is_some()) {
            (Ok(true), true) => bounded = Some(lowest(bounded.as_deref(), f)),
            (Ok(true), false) => unbounded = Some(lowest(unbounded.as_deref(), f)),
            (Ok(false), false) => resolved = true,
            (Ok(false), true) => {}
            (Err(_), _) => note(f),
        }
    }
    if !resolved {
        if let Some(u) = unbounded {
            bounded = Some(lowest(bounded.as_deref(), &u));
        }
    }
    if let Some(f) = bounded {
        return Some(("fixed".into(), f));
    }
    if resolved {
        return None;
    }
    if let Some(failed) = unknown {
        return Some(("unknown_version".into(), failed));
    }
    applicable
        .iter()
        .find(|a| a.status.fixed_version().is_none())
        .map(|a| (a.status.name().to_string(), String::new()))
}

fn module_build(v: &str) -> bool {
    v.contains(".module_el") || v.contains(".module+el")
}

/// `nodejs:18` in a summary names stream `18`; `container-tools:rhel8` names none.
fn module_streams(summary: &str) -> Vec<String> {
    summary
        .split(|c: char| c.is_whitespace() || matches!(c, ',' | '(' | ')'))
        .filter_map(|t| {
            let (name, stream) = t.split_once(':')?;
            let name_ok = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
            let stream_ok = stream.starts_with(|c: char| c.is_ascii_digit())
                && stream.chars().all(|c| c.is_ascii_digit() || c == '.');
            (name_ok && stream_ok).then(|| stream.to_string())
        })
        .collect()
}

/// The upstream part of `[E:]V-R` is stream `s` or a version of it (`18.14.2` of `18`).
fn follows(version: &str, s: &str) -> bool {
    let v = version.split_once(':').map_or(version, |(_, r)| r);
    let upstream = v.split_once('-').map_or(v, |(u, _)| u);
    upstream == s || upstream.strip_prefix(s).is_some_and(|r| r.starts_with('.'))
}

/// Packages built from the kernel's source: matched only as the running kernel.
fn is_kernel(scheme: Scheme, package: &str) -> bool {
    match scheme {
        Scheme::Rpm => {
            package == "kernel"
                || ["kernel-rt", "kernel-uek", "kernel-64k"]
                    .iter()
                    .any(|k| package.starts_with(k))
        }
        Scheme::Dpkg | Scheme::Apk => package == "linux" || package.starts_with("linux-"),
        Scheme::Pacman => false,
    }
}

/// A version sorting just below `v` in `scheme` (checked with the scheme itself): a
/// trailing `~` for dpkg and rpm; for apk the previous `-rN` or a `_alpha` pre-release;
/// for pacman the previous pkgrel or an `rc0` pre-release.
fn below(scheme: Scheme, v: &str) -> Option<String> {
    let rel = |sep: &str| -> Option<(String, u64)> {
        let (head, n) = v.rsplit_once(sep)?;
        Some((head.to_string(), n.parse().ok()?))
    };
    let candidates: Vec<String> = match scheme {
        Scheme::Dpkg | Scheme::Rpm => vec![format!("{v}~")],
        Scheme::Apk => {
            let mut c = Vec::new();
            if let Some((head, n)) = rel("-r") {
                if n > 0 {
                    c.push(format!("{head}-r{}", n - 1));
                }
                c.push(format!("{head}_alpha-r{n}"));
            } else {
                c.push(format!("{v}_alpha"));
            }
            c
        }
        Scheme::Pacman => {
            let mut c = Vec::new();
            if let Some((head, n)) = rel("-") {
                if n > 1 {
                    c.push(format!("{head}-{}", n - 1));
                }
                c.push(format!("{head}rc0-{n}"));
            } else {
                c.push(format!("{v}rc0"));
            }
            c
        }
    };
    candidates.into_iter().find(|c| {
        scheme.parse_check(c).is_ok() && matches!(scheme.compare(c, v), Ok(Ordering::Less))
    })
}

/// The ecosystems of a host of one of `os_ids` whose os-release gives `eco`, the
/// `VERSION_ID` read off the ecosystem string; `None` when none does.
fn host_for(eco: &str, os_ids: &[&str]) -> Option<Vec<String>> {
    let release = eco.split_once(':').map_or("", |(_, r)| r);
    let numbers: Vec<&str> = release
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .collect();
    let mut candidates = vec![numbers.join(".")];
    if let Some(first) = numbers.first() {
        candidates.push((*first).to_string());
    }
    if numbers.len() > 2 {
        candidates.push(numbers[..2].join("."));
    }
    candidates.push(String::new());
    for id in os_ids {
        for version_id in &candidates {
            for pro in [false, true] {
                let os = OsInfo {
                    id: (*id).to_string(),
                    version_id: version_id.clone(),
                    ..OsInfo::default()
                };
                let ecos = host_ecosystems(&os, pro, None);
                if ecos.iter().any(|e| e == eco) {
                    return Some(ecos);
                }
            }
        }
    }
    None
}
