//! The Arch Linux security tracker JSON on the real samples in ../shared/data/arch,
//! through the real import front door and the real matcher.

use std::path::{Path, PathBuf};

use patchctl_proto::agent::{InstalledPackage, OsInfo};
use patchctl_testkit::{Harness, Need, trial};
use patchctl_vuln::ecosystem::{host_ecosystems, names};
use patchctl_vuln::import::{FeedBatch, arch};
use patchctl_vuln::matcher::{Finding, Index, MatchedBy};
use patchctl_vuln::{Record, Status};

mod common;

const ARCH: Need = Need::SharedData("arch");

fn main() -> std::process::ExitCode {
    Harness::new()
        .test(trial!(every_sample_imports_one_record_per_avg).needs([ARCH]))
        .test(trial!(linux_lts_just_below_the_fix_is_vulnerable_and_fixable).needs([ARCH]))
        .test(trial!(linux_lts_exactly_at_the_fix_is_no_finding).needs([ARCH]))
        .test(trial!(avg_2737_not_affected_even_with_a_fixed_version).needs([ARCH]))
        .test(trial!(avg_2780_unknown_is_under_investigation).needs([ARCH]))
        .test(trial!(pkgrel_and_epoch_follow_pacman_ordering).needs([ARCH]))
        .test(trial!(testing_status_is_a_fix_from_the_testing_repositories).needs([ARCH]))
        .test(trial!(broken_group_is_rejected_by_id_and_the_rest_imported).needs([ARCH]))
        .run()
}

fn batches(paths: &[PathBuf]) -> Vec<FeedBatch> {
    common::batches(paths)
}

fn records(paths: &[PathBuf]) -> Vec<Record> {
    common::records_of(paths, arch::FEED)
}

fn all_records() -> Vec<Record> {
    records(&[common::data("arch")])
}

fn index(records: Vec<Record>) -> Index {
    common::index_of(arch::FEED, records)
}

fn arch_host() -> Vec<String> {
    let os = OsInfo {
        id: "arch".into(),
        version_id: String::new(),
        ..OsInfo::default()
    };
    host_ecosystems(&os, false, None)
}

/// An installed pacman package (`[epoch:]pkgver-pkgrel`).
fn pacman(name: &str, version: &str) -> InstalledPackage {
    InstalledPackage {
        name: name.into(),
        version: version.into(),
        arch: "x86_64".into(),
        source_name: None,
        source_version: None,
        status: "installed".into(),
    }
}

fn findings(idx: &Index, name: &str, version: &str) -> Vec<Finding> {
    idx.match_host(&arch_host(), None, &[pacman(name, version)])
}

fn every_sample_imports_one_record_per_avg() {
    let recs = all_records();
    let ids: Vec<_> = recs.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "AVG-1", "AVG-1000", "AVG-20", "AVG-2737", "AVG-2780", "AVG-2800", "AVG-4", "AVG-5",
            "AVG-984"
        ]
    );
    assert_eq!(arch_host(), [names::ARCH]);
    let r = common::find(&recs, "AVG-984");
    // issues (CVEs) then advisories, the repeated ASA once
    assert_eq!(
        r.aliases,
        [
            "CVE-2019-11477",
            "CVE-2019-11478",
            "CVE-2019-11479",
            "ASA-201906-14"
        ]
    );
    assert_eq!(r.summary, "denial of service");
    assert_eq!(r.severity.as_deref(), Some("High"));
    let e = common::entry(r, names::ARCH, "linux-lts");
    assert_eq!(e.status, common::fixed("4.19.52-1"));
    // `affected` is one version seen vulnerable, not a range: only in the note
    assert_eq!((&e.introduced, &e.last_affected), (&None, &None));
    assert_eq!(
        e.note.as_deref(),
        Some("Fixed; version seen vulnerable: 4.19.51-1")
    );
    let five = common::find(&recs, "AVG-5");
    assert_eq!(
        five.aliases,
        ["CVE-2015-7554", "CVE-2016-10095", "ASA-201707-17"]
    );
    assert!(
        recs.iter()
            .all(|r| r.affected.iter().all(|a| a.introduced.is_none()
                && a.last_affected.is_none()
                && a.ecosystem == names::ARCH))
    );
}

fn linux_lts_just_below_the_fix_is_vulnerable_and_fixable() {
    let idx = index(all_records());
    let f = findings(&idx, "linux-lts", "4.19.51-1");
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0].advisory, "AVG-984");
    assert!(f[0].vulnerable && f[0].fixable);
    assert_eq!(f[0].matched_by, MatchedBy::Binary);
    assert_eq!(f[0].status.fixed_version(), Some("4.19.52-1"));
    assert_eq!(
        f[0].comparison,
        "installed 4.19.51-1 < fixed 4.19.52-1 (pacman)"
    );
    assert_eq!(f[0].severity.name(), "high");
    assert!(f[0].aliases.iter().any(|a| a == "CVE-2019-11477"));
}

fn linux_lts_exactly_at_the_fix_is_no_finding() {
    let idx = index(all_records());
    for v in ["4.19.52-1", "4.19.52-2", "5.4.1-1"] {
        assert!(findings(&idx, "linux-lts", v).is_empty(), "{v}");
    }
}

/// AVG-2737 is "Not affected" and still carries a fixed version: not affected, and the
/// fixed version is kept in the note only.
fn avg_2737_not_affected_even_with_a_fixed_version() {
    let idx = index(all_records());
    for v in ["42.1-1", "41.0-1"] {
        let f = findings(&idx, "gnome-remote-desktop", v);
        assert_eq!(f.len(), 1, "{f:#?}");
        assert_eq!(f[0].advisory, "AVG-2737");
        assert_eq!(f[0].status, Status::NotAffected);
        assert!(!f[0].vulnerable && !f[0].fixable);
        assert_eq!(
            f[0].note.as_deref(),
            Some("Not affected; version seen vulnerable: 42.1-1; fixed version given: 42.1.1-1")
        );
    }
}

fn avg_2780_unknown_is_under_investigation() {
    let idx = index(all_records());
    let f = findings(&idx, "wpewebkit", "2.36.3-1");
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0].status, Status::UnderInvestigation);
    assert!(!f[0].fixable);
    assert_eq!(
        f[0].note.as_deref(),
        Some("Unknown; version seen vulnerable: 2.36.3-1; fixed version given: 2.36.4-1")
    );
}

fn pkgrel_and_epoch_follow_pacman_ordering() {
    let idx = index(all_records());
    // AVG-4: bzip2 fixed by a pkgrel bump, 1.0.6-5 → 1.0.6-6
    let f = findings(&idx, "bzip2", "1.0.6-5");
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(
        f[0].comparison,
        "installed 1.0.6-5 < fixed 1.0.6-6 (pacman)"
    );
    assert_eq!(
        findings(&idx, "bzip2", "1.0.6-5.1").len(),
        1,
        "pkgrel 5.1 < 6"
    );
    assert!(findings(&idx, "bzip2", "1.0.6-6").is_empty());
    assert!(findings(&idx, "bzip2", "1.0.6-6.1").is_empty());
    // an epoch outranks any version without one
    assert!(findings(&idx, "bzip2", "1:1.0.6-5").is_empty());
    assert!(findings(&idx, "bzip2", "1:0.9-1").is_empty());
    // AVG-1: a git-describe pkgver `2.36.0+2+ga7c869a`
    assert_eq!(findings(&idx, "lib32-gdk-pixbuf2", "2.36.0-1").len(), 1);
    assert!(findings(&idx, "lib32-gdk-pixbuf2", "2.36.0+2+ga7c869a-1").is_empty());
    // AVG-2800: `5.19.15.hardened2-1`
    assert_eq!(
        findings(&idx, "linux-hardened", "5.19.14.hardened1-1").len(),
        1
    );
    assert!(findings(&idx, "linux-hardened", "5.19.15.hardened2-1").is_empty());
}

/// "Testing": the fix is in Arch's [testing] repositories. It is a fix (a host that
/// installed it is not vulnerable), shown with a note (a modified copy of AVG-1000).
fn testing_status_is_a_fix_from_the_testing_repositories() {
    let src = common::data("arch/vuln-list/arch-linux/AVG-1000.json");
    let json = std::fs::read_to_string(src).expect("sample");
    let testing = json.replacen("\"status\": \"Fixed\"", "\"status\": \"Testing\"", 1);
    assert_ne!(testing, json);
    let dir = tempfile::tempdir().expect("tempdir");
    let idx = index(records(&[write(dir.path(), "AVG-1000.json", &testing)]));
    let f = findings(&idx, "python-django", "2.2.2-1");
    assert_eq!(f.len(), 1, "{f:#?}");
    assert!(f[0].vulnerable && f[0].fixable);
    assert_eq!(f[0].status.fixed_version(), Some("2.2.3-1"));
    assert_eq!(
        f[0].note.as_deref(),
        Some(
            "Testing: fixed in 2.2.3-1 in the [testing] repositories only; version seen \
             vulnerable: 2.2.2-1"
        )
    );
    assert!(findings(&idx, "python-django", "2.2.3-1").is_empty());
}

fn broken_group_is_rejected_by_id_and_the_rest_imported() {
    let src = common::data("arch/vuls-data-update/advisory.json");
    let json = std::fs::read_to_string(src).expect("sample");
    let broken = json.replacen("\"fixed\": \"4.0.8-2\"", "\"fixed\": null", 1);
    assert_ne!(broken, json);
    let dir = tempfile::tempdir().expect("tempdir");
    let b = batches(&[write(dir.path(), "all.json", &broken)]);
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].feed, arch::FEED);
    let rejected: Vec<_> = b[0].parsed.rejected.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(rejected, ["AVG-5"]);
    assert_eq!(
        b[0].parsed.rejected[0].reason,
        "status Fixed without a fixed version"
    );
    let ids: Vec<_> = b[0].parsed.records.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["AVG-1"]);
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    path
}
