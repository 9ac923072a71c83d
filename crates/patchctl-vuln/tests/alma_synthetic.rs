//! The whole AlmaLinux database imports, and a synthetic AlmaLinux 9 host built from it
//! gets exactly the advisories that a direct computation over the records gives.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use patchctl_proto::agent::InstalledPackage;
use patchctl_testkit::{Harness, Need, trial};
use patchctl_version::Scheme;
use patchctl_vuln::import;

mod common;
use patchctl_vuln::matcher::{Index, SourcedRecord, is_module_build};
use patchctl_vuln::model::Record;

fn main() -> std::process::ExitCode {
    Harness::new()
        .test(
            trial!(whole_almalinux_database_and_a_synthetic_host).needs([
                Need::SharedData("osv/almalinux-8.zip"),
                Need::SharedData("osv/almalinux-9.zip"),
                Need::SharedData("osv/almalinux-10.zip"),
            ]),
        )
        .run()
}

/// A stable pseudo-random number from a name (FNV-1a).
fn hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    })
}

fn whole_almalinux_database_and_a_synthetic_host() {
    let d = common::data("osv");
    let paths: Vec<PathBuf> = ["almalinux-8.zip", "almalinux-9.zip", "almalinux-10.zip"]
        .iter()
        .map(|z| d.join(z))
        .collect();
    let batches = import::import_paths(&paths, &mut |_| {}).expect("import");
    assert_eq!(batches.len(), 1);
    let parsed = &batches[0].parsed;
    assert!(parsed.rejected.is_empty(), "{:?}", parsed.rejected);
    // 5,680 documents; 37 advisories covering two releases appear in two archives
    assert_eq!(parsed.records.len(), 5_637);
    let alma9: Vec<&Record> = parsed
        .records
        .iter()
        .filter(|r| r.affected.iter().any(|a| a.ecosystem == "AlmaLinux:9"))
        .collect();
    assert!(alma9.len() > 1_700, "{}", alma9.len());

    // The host: every AlmaLinux 9 package name (kernel packages aside: the running-kernel
    // rule is tested on its own), each at one of its plain (non-module) fixed versions,
    // exactly or just below (`~` sorts before everything in rpm).
    let mut fixed_versions: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for r in &alma9 {
        for a in r.affected.iter().filter(|a| a.ecosystem == "AlmaLinux:9") {
            if let Some(f) = a.status.fixed_version() {
                if !is_module_build(f) && !a.package.starts_with("kernel") {
                    fixed_versions.entry(&a.package).or_default().insert(f);
                }
            }
        }
    }
    let host: Vec<InstalledPackage> = fixed_versions
        .iter()
        .map(|(name, versions)| {
            let h = hash(name);
            let v: Vec<&&str> = versions.iter().collect();
            let chosen = *v[(h as usize) % v.len()];
            let version = if h % 2 == 0 {
                chosen.to_string()
            } else {
                format!("{chosen}~")
            };
            InstalledPackage {
                name: name.to_string(),
                version,
                arch: "x86_64".into(),
                source_name: None,
                source_version: None,
                status: "installed".into(),
            }
        })
        .collect();
    assert!(host.len() > 1_000, "{}", host.len());

    // Direct computation over the records: a (record, package) pair is vulnerable when
    // the installed version is below every fixed version that record gives the package
    // for plain builds (any one of them is a fix).
    let installed: BTreeMap<&str, &str> = host
        .iter()
        .map(|p| (p.name.as_str(), p.version.as_str()))
        .collect();
    let mut expected: BTreeSet<(String, String)> = BTreeSet::new();
    for r in &alma9 {
        let mut per_pkg: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for a in r.affected.iter().filter(|a| a.ecosystem == "AlmaLinux:9") {
            if let Some(f) = a.status.fixed_version() {
                if !is_module_build(f) {
                    per_pkg.entry(&a.package).or_default().push(f);
                }
            }
        }
        for (pkg, fixes) in per_pkg {
            let Some(v) = installed.get(pkg) else {
                continue;
            };
            if fixes
                .iter()
                .all(|f| Scheme::Rpm.compare(v, f).unwrap() == Ordering::Less)
            {
                expected.insert((r.id.clone(), pkg.to_string()));
            }
        }
    }
    assert!(
        expected.len() > 1_000,
        "the host should be vulnerable to many advisories: {}",
        expected.len()
    );

    let index = Index::build(parsed.records.iter().cloned().map(|record| SourcedRecord {
        source: "osv".into(),
        imported_at: None,
        record,
    }));
    let got: BTreeSet<(String, String)> = index
        .match_host(&["AlmaLinux:9".to_string()], None, &host)
        .into_iter()
        .filter(|f| f.vulnerable)
        .map(|f| (f.advisory, f.package))
        .collect();
    let missing: Vec<_> = expected.difference(&got).take(5).collect();
    let extra: Vec<_> = got.difference(&expected).take(5).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?}, extra {extra:?}"
    );
    assert_eq!(got.len(), expected.len());
}
