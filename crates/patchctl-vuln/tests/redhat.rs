//! Red Hat Enterprise Linux on the real samples in ../shared/data/redhat, through the real
//! importers (`import_paths`) and the real matcher: main and EUS streams, the epoch rule,
//! module builds, the six statuses, the bulk archive, deletions and the API JSON.

use std::path::PathBuf;

use patchctl_proto::agent::{InstalledPackage, OsInfo};
use patchctl_testkit::{Harness, Need, trial};
use patchctl_vuln::ecosystem::host_ecosystems;
use patchctl_vuln::import::{self, FeedBatch, ImportError};
use patchctl_vuln::matcher::{Finding, Index, MatchedBy};
use patchctl_vuln::model::Status;

mod common;

fn main() -> std::process::ExitCode {
    let vex = [Need::SharedData("redhat/csaf-vex")];
    let rhsa = [Need::SharedData("redhat/csaf-advisories")];
    let api = [Need::SharedData("redhat/security-data-api")];
    Harness::new()
        .test(trial!(rhel9_main_and_eus_just_below_and_exactly_at_glibc_fix).needs(vex))
        .test(trial!(kernel_cve_2023_6238_is_only_not_affected).needs(vex))
        .test(trial!(libtiff_will_not_fix_out_of_support_and_affected).needs(vex))
        .test(trial!(epoch_zero_written_and_non_zero_epochs).needs([vex[0], rhsa[0]]))
        .test(trial!(ruby_2_7_module_build_matches_only_module_builds_of_its_stream).needs(rhsa))
        .test(
            trial!(bulk_tar_zst_read_entry_by_entry_and_deletions_withdraw)
                .needs([Need::SharedData("redhat/csaf-vex-bulk")]),
        )
        .test(trial!(malformed_documents_rejected_by_id_the_rest_imported).needs(vex))
        .test(trial!(api_openssh_cve_2024_6387_fixed_for_rhel9_not_affected_for_rhel8).needs(api))
        .test(trial!(api_list_endpoint_is_not_records).needs(api))
        .test(
            trial!(red_hat_osv_epochs_and_eus_ecosystems)
                .needs([Need::SharedData("redhat/osv/all.zip")]),
        )
        .run()
}

fn batches(paths: &[PathBuf]) -> Vec<FeedBatch> {
    import::import_paths(paths, &mut |_| {}).expect("import")
}

fn index_of(batches: Vec<FeedBatch>) -> Index {
    common::index_of_batches(batches)
}

fn index(rel: &[&str]) -> Index {
    let paths: Vec<PathBuf> = rel.iter().map(|r| common::data(r)).collect();
    index_of(batches(&paths))
}

/// A RHEL host's ecosystems, from its os-release as the agent reports it.
fn rhel(version_id: &str) -> Vec<String> {
    host_ecosystems(
        &OsInfo {
            id: "rhel".into(),
            version_id: version_id.into(),
            ..OsInfo::default()
        },
        false,
        None,
    )
}

/// An installed RPM as the agent reports it (`rpm -qa`: the epoch only when not 0).
fn rpm(name: &str, version: &str, source: &str) -> InstalledPackage {
    InstalledPackage {
        name: name.into(),
        version: version.into(),
        arch: "x86_64".into(),
        source_name: Some(source.into()),
        source_version: None,
        status: "installed".into(),
    }
}

/// The findings of one record on a host with one package.
fn findings(idx: &Index, ecos: &[String], pkg: InstalledPackage, id: &str) -> Vec<Finding> {
    idx.match_host(ecos, None, &[pkg])
        .into_iter()
        .filter(|f| f.advisory == id)
        .collect()
}

/// The one finding of record `id`.
fn one(idx: &Index, ecos: &[String], pkg: InstalledPackage, id: &str) -> Finding {
    let mut f = findings(idx, ecos, pkg, id);
    assert_eq!(f.len(), 1, "{id}: {f:?}");
    f.remove(0)
}

fn assert_fixable(f: &Finding, ecosystem: &str, fixed: &str) {
    assert_eq!(f.status, common::fixed(fixed), "{f:?}");
    assert!(f.vulnerable && f.fixable, "{f:?}");
    assert_eq!(f.ecosystem, ecosystem);
    assert!(
        f.comparison.contains(&format!("< fixed {fixed} (rpm)")),
        "{}",
        f.comparison
    );
}

fn rhel9_main_and_eus_just_below_and_exactly_at_glibc_fix() {
    let idx = index(&["redhat/csaf-vex/cve-2024-2961.json.xz"]);
    let cve = "CVE-2024-2961";
    assert_eq!(rhel("9.2"), ["Red Hat:9", "Red Hat:9.2 EUS"]);
    // 9.2: the EUS statement decides (the main stream's fix is 9.4's)
    let f = one(
        &idx,
        &rhel("9.2"),
        rpm("glibc", "2.34-60.el9_2.13", "glibc"),
        cve,
    );
    assert_fixable(&f, "Red Hat:9.2 EUS", "0:2.34-60.el9_2.14");
    assert_eq!(f.note.as_deref(), Some("RHSA-2024:3411"));
    assert!(
        findings(
            &idx,
            &rhel("9.2"),
            rpm("glibc", "2.34-60.el9_2.14", "glibc"),
            cve
        )
        .is_empty()
    );
    // 9.3 has no EUS statement: the main stream decides
    let f = one(
        &idx,
        &rhel("9.3"),
        rpm("glibc", "2.34-83.el9_3.12", "glibc"),
        cve,
    );
    assert_fixable(&f, "Red Hat:9", "0:2.34-100.el9_4.2");
    assert!(
        findings(
            &idx,
            &rhel("9.3"),
            rpm("glibc", "2.34-100.el9_4.2", "glibc"),
            cve
        )
        .is_empty()
    );
    // 8.8 EUS and 8.4 E4S-only builds: an 8.4 host sees 8.4's builds only through data
    // of its own (no EUS statement for 8.4: the main RHEL 8 fix applies)
    let f = one(
        &idx,
        &rhel("8.8"),
        rpm("glibc", "2.28-225.el8_8.10", "glibc"),
        cve,
    );
    assert_fixable(&f, "Red Hat:8.8 EUS", "0:2.28-225.el8_8.11");
    // RHEL 6: out of support scope, vulnerable and not fixable
    let f = one(
        &idx,
        &rhel("6.10"),
        rpm("glibc", "2.12-1.212.el6", "glibc"),
        cve,
    );
    assert_eq!(
        (f.status.clone(), f.vulnerable, f.fixable),
        (Status::EndOfLife, true, false)
    );
    assert_eq!(f.note.as_deref(), Some("Out of support scope"));
}

fn kernel_cve_2023_6238_is_only_not_affected() {
    let idx = index(&["redhat/csaf-vex/cve-2023-6238.json"]);
    let host = [rpm("kernel-core", "5.14.0-427.13.1.el9_4", "kernel")];
    let all = idx.match_host(&rhel("9.4"), Some("5.14.0-427.13.1.el9_4.x86_64"), &host);
    assert_eq!(all.len(), 1, "{all:?}");
    let f = &all[0];
    assert_eq!(f.advisory, "CVE-2023-6238");
    assert_eq!(f.status, Status::NotAffected);
    assert!(!f.vulnerable && !f.fixable);
    assert_eq!(
        (f.ecosystem.as_str(), f.package.as_str()),
        ("Red Hat:9", "kernel")
    );
    assert_eq!(f.matched_by, MatchedBy::SourceRpm);
    assert_eq!(f.note.as_deref(), Some("vulnerable_code_not_present"));
}

fn libtiff_will_not_fix_out_of_support_and_affected() {
    let idx = index(&["redhat/csaf-vex/cve-2023-6228.json"]);
    let cve = "CVE-2023-6228";
    let check = |ecos: &[String], pkg: InstalledPackage, status: Status, note: &str| {
        let f = one(&idx, ecos, pkg, cve);
        assert_eq!(f.status, status, "{f:?}");
        assert!(f.vulnerable && !f.fixable, "{f:?}");
        assert_eq!(f.note.as_deref(), Some(note));
    };
    let compat = rpm("compat-libtiff3", "3.9.4-13.el8", "compat-libtiff3");
    check(&rhel("8.9"), compat, Status::WillNotFix, "Will not fix");
    let libtiff8 = rpm("libtiff", "4.0.9-29.el8_8", "libtiff");
    check(&rhel("8.9"), libtiff8, Status::AffectedNoFix, "Affected");
    let libtiff7 = rpm("libtiff", "4.0.3-35.el7", "libtiff");
    check(
        &rhel("7.9"),
        libtiff7,
        Status::EndOfLife,
        "Out of support scope",
    );
    // RHEL 9: fixed in 0:4.4.0-12.el9, the host's rpm writes no zero epoch
    let f = one(
        &idx,
        &rhel("9.4"),
        rpm("libtiff-devel", "4.4.0-11.el9", "libtiff"),
        cve,
    );
    assert_fixable(&f, "Red Hat:9", "0:4.4.0-12.el9");
    assert_eq!(f.matched_by, MatchedBy::Binary);
    assert!(
        findings(
            &idx,
            &rhel("9.4"),
            rpm("libtiff-devel", "4.4.0-12.el9", "libtiff"),
            cve
        )
        .is_empty()
    );
}

fn epoch_zero_written_and_non_zero_epochs() {
    let idx = index(&["redhat/csaf-vex/cve-2023-6237.json"]);
    let cve = "CVE-2023-6237";
    let e9 = rhel("9.4");
    // openssl epoch 1: just below, exactly at, and a version without epoch (epoch 0)
    // that reads higher but is lower
    let f = one(&idx, &e9, rpm("openssl", "1:3.0.7-26.el9", "openssl"), cve);
    assert_fixable(&f, "Red Hat:9", "1:3.0.7-27.el9");
    assert!(findings(&idx, &e9, rpm("openssl", "1:3.0.7-27.el9", "openssl"), cve).is_empty());
    let f = one(&idx, &e9, rpm("openssl", "3.0.8-1.el9", "openssl"), cve);
    assert_fixable(&f, "Red Hat:9", "1:3.0.7-27.el9");
    // known_not_affected: openssl-fips-provider
    let f = one(
        &idx,
        &e9,
        rpm(
            "openssl-fips-provider",
            "3.0.7-2.el9",
            "openssl-fips-provider",
        ),
        cve,
    );
    assert_eq!(f.status, Status::NotAffected);
    // known_affected without remediation words other than "Affected": edk2
    let f = one(&idx, &e9, rpm("edk2-ovmf", "20231122-6.el9", "edk2"), cve);
    assert_eq!(
        (f.status.clone(), f.matched_by),
        (Status::AffectedNoFix, MatchedBy::SourceRpm)
    );

    // bind, epoch 32, RHEL 6 ELS (host_ecosystems gives no ELS ecosystem: named here)
    let idx = index(&["redhat/csaf-advisories/rhsa-2025_23414.json"]);
    let els: Vec<String> = vec!["Red Hat:6".into(), "Red Hat:6 ELS".into()];
    let rhsa = "RHSA-2025:23414";
    let fixed = "32:9.8.2-0.68.rc1.el6_10.17";
    let f = one(
        &idx,
        &els,
        rpm("bind", "32:9.8.2-0.68.rc1.el6_10.16", "bind"),
        rhsa,
    );
    assert_fixable(&f, "Red Hat:6 ELS", fixed);
    assert!(findings(&idx, &els, rpm("bind", fixed, "bind"), rhsa).is_empty());
    let f = one(&idx, &els, rpm("bind", "9.9.4-1.el6", "bind"), rhsa);
    assert_fixable(&f, "Red Hat:6 ELS", fixed);
    // the advisory's known_not_affected (per CVE, in the note)
    let f = one(
        &idx,
        &els,
        rpm("bind-chroot", "32:9.8.2-0.68.rc1.el6_10.16", "bind"),
        rhsa,
    );
    assert_eq!(f.status, Status::NotAffected);
    assert_eq!(
        f.note.as_deref(),
        Some("CVE-2021-25220: vulnerable_code_not_present")
    );
    assert_eq!(f.aliases, ["CVE-2021-25220", "CVE-2025-40778"]);
}

fn ruby_2_7_module_build_matches_only_module_builds_of_its_stream() {
    let idx = index(&["redhat/csaf-advisories/rhsa-2023_3821.json"]);
    let rhsa = "RHSA-2023:3821";
    let fixed = "0:2.7.8-139.module+el8.8.0+18745+f1bef313";
    let e88 = rhel("8.8");
    let below = "2.7.6-138.module+el8.7.0+17412+54d5bbf6";
    let f = one(&idx, &e88, rpm("ruby", below, "ruby"), rhsa);
    assert_fixable(&f, "Red Hat:8.8 EUS", fixed);
    assert_eq!(f.note.as_deref(), Some("RHSA-2023:3821 (module ruby:2.7)"));
    // on the main stream too (AppStream-8.8.0.Z.MAIN.EUS has the main CPE)
    let f = one(&idx, &rhel("8.9"), rpm("ruby", below, "ruby"), rhsa);
    assert_fixable(&f, "Red Hat:8", fixed);
    let at = "2.7.8-139.module+el8.8.0+18745+f1bef313";
    assert!(findings(&idx, &e88, rpm("ruby", at, "ruby"), rhsa).is_empty());
    // a plain (non-module) build and another stream's module build are not concerned
    assert!(findings(&idx, &e88, rpm("ruby", "2.5.9-110.el8", "ruby"), rhsa).is_empty());
    let ruby31 = "3.1.2-141.module+el8.7.0+17124+4b0b0da2";
    assert!(findings(&idx, &e88, rpm("ruby", ruby31, "ruby"), rhsa).is_empty());
}

fn bulk_tar_zst_read_entry_by_entry_and_deletions_withdraw() {
    let dir = common::data("redhat/csaf-vex-bulk");
    let mut total = 0;
    let batches = import::import_paths(&[dir], &mut |p| total = p.files_total).expect("import");
    // the archive and deletions.csv; changes.csv and archive_latest.txt are not read
    assert_eq!(total, 2);
    assert_eq!(batches.len(), 1);
    let b = &batches[0];
    assert_eq!(b.feed, "redhat-csaf");
    assert!(b.parsed.rejected.is_empty(), "{:?}", b.parsed.rejected);
    let ids: Vec<(&str, bool)> = b
        .parsed
        .records
        .iter()
        .map(|r| (r.id.as_str(), r.withdrawn))
        .collect();
    // CVE-2023-6237 is in the archive (modified 2024-08-02) and deleted on 2024-08-04:
    // the deletion is later and wins
    assert_eq!(
        ids,
        [
            ("CVE-2023-6212", false),
            ("CVE-2023-6228", false),
            ("CVE-2023-6237", true),
            ("CVE-2023-6238", false),
            ("CVE-2023-6240", false),
            ("CVE-2024-44943", true),
            ("CVE-2024-5480", true),
        ]
    );
    let deleted = common::find(&b.parsed.records, "CVE-2023-6237");
    assert_eq!(
        deleted.modified.as_deref(),
        Some("2024-08-04T16:17:31+00:00")
    );
    assert!(deleted.affected.is_empty());
    // withdrawn: the archive's openssl statement no longer matches
    let idx = index_of(batches);
    let host = [rpm("openssl", "1:3.0.7-26.el9", "openssl")];
    let all = idx.match_host(&rhel("9.4"), None, &host);
    assert!(all.iter().all(|f| f.advisory != "CVE-2023-6237"), "{all:?}");
    // while a document from the archive does
    let host = [rpm("libtiff", "4.4.0-11.el9", "libtiff")];
    let all = idx.match_host(&rhel("9.4"), None, &host);
    assert!(
        all.iter()
            .any(|f| f.advisory == "CVE-2023-6228" && f.fixable),
        "{all:?}"
    );
}

fn malformed_documents_rejected_by_id_the_rest_imported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let read = |name: &str| {
        std::fs::read_to_string(common::data(&format!("redhat/csaf-vex/{name}"))).expect("read")
    };
    // a fixed build whose version rpm cannot read
    let bad_version = read("cve-2023-6228.json").replace(
        "pkg:rpm/redhat/libtiff@4.4.0-12.el9?arch=x86_64",
        "pkg:rpm/redhat/libtiff@4.4.0 12.el9?arch=x86_64",
    );
    assert_ne!(bad_version, read("cve-2023-6228.json"));
    // vulnerabilities that are not a list
    let mut bad_shape: serde_json::Value =
        serde_json::from_str(&read("cve-2023-6238.json")).expect("json");
    bad_shape["vulnerabilities"] = serde_json::Value::String("none".into());
    std::fs::write(dir.path().join("a.json"), bad_version).expect("write");
    std::fs::write(dir.path().join("b.json"), bad_shape.to_string()).expect("write");
    std::fs::write(dir.path().join("c.json"), read("cve-2023-6237.json")).expect("write");
    let batches = batches(&[dir.path().to_path_buf()]);
    assert_eq!(batches.len(), 1);
    let p = &batches[0].parsed;
    let rejected: Vec<&str> = p.rejected.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(rejected, ["CVE-2023-6228", "CVE-2023-6238"]);
    assert!(
        p.rejected[0].reason.contains("4.4.0 12.el9"),
        "{}",
        p.rejected[0].reason
    );
    assert!(
        p.rejected[1].reason.contains("not a valid Red Hat CSAF"),
        "{}",
        p.rejected[1].reason
    );
    let ids: Vec<&str> = p.records.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["CVE-2023-6237"]);
}

fn api_openssh_cve_2024_6387_fixed_for_rhel9_not_affected_for_rhel8() {
    let all = batches(&[
        common::data("redhat/security-data-api/vuln-list-redhat"),
        common::data("redhat/security-data-api/CVE-2023-4863"),
    ]);
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].feed, "redhat-api");
    let ids: Vec<&str> = all[0]
        .parsed
        .records
        .iter()
        .map(|r| r.id.as_str())
        .collect();
    assert_eq!(
        ids,
        [
            "CVE-2021-3156",
            "CVE-2021-4034",
            "CVE-2023-4863",
            "CVE-2023-4911",
            "CVE-2024-6387"
        ]
    );
    let r = common::find(&all[0].parsed.records, "CVE-2024-6387");
    assert_eq!(
        common::entry(r, "Red Hat:9", "openssh").status,
        common::fixed("0:8.7p1-38.el9_4.1")
    );
    let idx = index_of(all);
    let cve = "CVE-2024-6387";
    // keyed by the source name: openssh-server falls back to its source RPM
    let f = one(
        &idx,
        &rhel("9.4"),
        rpm("openssh-server", "8.7p1-38.el9", "openssh"),
        cve,
    );
    assert_fixable(&f, "Red Hat:9", "0:8.7p1-38.el9_4.1");
    assert_eq!(f.matched_by, MatchedBy::SourceRpm);
    assert_eq!(f.note.as_deref(), Some("RHSA-2024:4312"));
    let at = rpm("openssh-server", "8.7p1-38.el9_4.1", "openssh");
    assert!(findings(&idx, &rhel("9.4"), at, cve).is_empty());
    let f = one(
        &idx,
        &rhel("9.2"),
        rpm("openssh-server", "8.7p1-30.el9_2.3", "openssh"),
        cve,
    );
    assert_fixable(&f, "Red Hat:9.2 EUS", "0:8.7p1-30.el9_2.4");
    // RHEL 8: package_state "Not affected"
    let f = one(
        &idx,
        &rhel("8.10"),
        rpm("openssh-server", "8.0p1-24.el8", "openssh"),
        cve,
    );
    assert_eq!(
        (f.status.clone(), f.vulnerable),
        (Status::NotAffected, false)
    );
    assert_eq!(f.note.as_deref(), Some("Not affected"));
}

fn api_list_endpoint_is_not_records() {
    let path = common::data("redhat/security-data-api/cve.json");
    match import::import_paths(&[path], &mut |_| {}) {
        Err(ImportError::NotRecords { hint, .. }) => assert!(hint.contains("cve.json"), "{hint}"),
        other => panic!("{other:?}"),
    }
}

fn red_hat_osv_epochs_and_eus_ecosystems() {
    let all = batches(&[common::data("redhat/osv/all.zip")]);
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].feed, "osv");
    let records = &all[0].parsed.records;
    let ids: Vec<&str> = records.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["RHBA-2024:6202", "RHEA-2024:1870", "RHSA-2024:8709"]);
    // `Red Hat:rhel_eus:9.2::appstream` → `Red Hat:9.2 EUS`, the epoch always written
    let podman = common::find(records, "RHSA-2024:8709");
    assert_eq!(
        common::entry(podman, "Red Hat:9.2 EUS", "podman").status,
        common::fixed("2:4.4.1-21.el9_2")
    );
    let firmware = common::find(records, "RHBA-2024:6202");
    assert_eq!(
        common::entry(firmware, "Red Hat:8.8 EUS", "iwl100-firmware").status,
        common::fixed("0:39.31.5.1-118.2.el8_8.1")
    );
    let idx = index_of(all);
    let f = one(
        &idx,
        &rhel("9.2"),
        rpm("podman", "2:4.4.1-20.el9_2", "podman"),
        "RHSA-2024:8709",
    );
    assert_fixable(&f, "Red Hat:9.2 EUS", "2:4.4.1-21.el9_2");
    // a host version without epoch is epoch 0: below 2:…
    let f = one(
        &idx,
        &rhel("9.2"),
        rpm("podman", "4.9.0-1.el9", "podman"),
        "RHSA-2024:8709",
    );
    assert!(f.fixable);
    assert!(
        findings(
            &idx,
            &rhel("9.2"),
            rpm("podman", "2:4.4.1-21.el9_2", "podman"),
            "RHSA-2024:8709"
        )
        .is_empty()
    );
    // 0: written vs none on the host: equal
    let fw = rpm(
        "iwl100-firmware",
        "39.31.5.1-118.2.el8_8.1",
        "linux-firmware",
    );
    assert!(findings(&idx, &rhel("8.8"), fw, "RHBA-2024:6202").is_empty());
}
