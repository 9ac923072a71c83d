//! Fedora's security updates (Bodhi JSON and `updateinfo.xml`) on the real samples in
//! ../shared/data/fedora, through the real import front door and the real matcher.

use std::io::Read;
use std::path::{Path, PathBuf};

use patchctl_proto::agent::{InstalledPackage, OsInfo};
use patchctl_testkit::{Harness, Need, trial};
use patchctl_vuln::ecosystem::{DataKind, data_kind, host_ecosystems};
use patchctl_vuln::import::{self, FeedBatch, ImportError, fedora};
use patchctl_vuln::inventory::parse_rpm_qa;
use patchctl_vuln::matcher::{Finding, Index, MatchedBy};
use patchctl_vuln::{Record, Status};

mod common;

const BODHI: Need = Need::SharedData("fedora/bodhi-api-updates");
const UPDATEINFO: Need = Need::SharedData("fedora/updateinfo");

fn main() -> std::process::ExitCode {
    Harness::new()
        .test(trial!(bodhi_samples_give_security_updates_of_host_releases_only).needs([BODHI]))
        .test(trial!(updateinfo_samples_give_security_advisories_only).needs([UPDATEINFO]))
        .test(trial!(updateinfo_security_packages_are_fixed_per_binary).needs([UPDATEINFO]))
        .test(trial!(fedora_data_states_only_fixes_never_not_affected).needs([BODHI, UPDATEINFO]))
        .test(trial!(kernel_core_below_the_fix_matches_through_its_source_rpm).needs([BODHI]))
        .test(trial!(libcap_just_below_and_exactly_at_a_testing_fix).needs([BODHI]))
        .test(trial!(bodhi_epoch_field_is_part_of_the_fixed_version).needs([BODHI]))
        .test(trial!(broken_bodhi_update_is_rejected_by_alias_and_the_rest_imported).needs([BODHI]))
        .run()
}

fn bodhi(name: &str) -> PathBuf {
    common::data("fedora/bodhi-api-updates").join(name)
}

fn updateinfo(dir: &str) -> PathBuf {
    let d = common::data(&format!("fedora/updateinfo/{dir}"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(&d)
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.to_string_lossy().contains("-updateinfo.xml"))
        .collect();
    assert_eq!(files.len(), 1, "{}", d.display());
    files.remove(0)
}

fn batches(paths: &[PathBuf]) -> Vec<FeedBatch> {
    common::batches(paths)
}

fn records(paths: &[PathBuf]) -> Vec<Record> {
    common::records_of(paths, fedora::FEED)
}

fn index(records: Vec<Record>) -> Index {
    common::index_of(fedora::FEED, records)
}

fn fedora_host(version_id: &str) -> Vec<String> {
    let os = OsInfo {
        id: "fedora".into(),
        version_id: version_id.into(),
        ..OsInfo::default()
    };
    host_ecosystems(&os, false, None)
}

/// Installed packages from `rpm -qa` lines (`NAME E:V-R ARCH SOURCERPM`), read by the
/// same parser as `patchctl vulns check --rpm-qa`.
fn rpm_qa(lines: &str) -> Vec<InstalledPackage> {
    parse_rpm_qa(lines).expect("rpm -qa lines")
}

fn about<'a>(f: &'a [Finding], id: &str) -> Vec<&'a Finding> {
    f.iter().filter(|f| f.advisory == id).collect()
}

fn ids(records: &[Record]) -> Vec<&str> {
    records.iter().map(|r| r.id.as_str()).collect()
}

fn bodhi_samples_give_security_updates_of_host_releases_only() {
    let recs = records(
        &[
            "F38.json",
            "F40.json",
            "F38M.json",
            "F38F.json",
            "F29C.json",
        ]
        .map(bodhi),
    );
    // F38F (flatpak) and F29C (container) are not a host's packages: skipped
    assert_eq!(
        ids(&recs),
        [
            "FEDORA-2023-5911638116",
            "FEDORA-2023-91e69ea326",
            "FEDORA-2023-bb021a4854",
            "FEDORA-2023-bd14c83780",
            "FEDORA-MODULAR-2023-5b8a7bde59",
        ]
    );
    let find = |id: &str| common::find(&recs, id);
    let libcap = find("FEDORA-2023-5911638116");
    assert_eq!(libcap.aliases, ["CVE-2023-2602", "CVE-2023-2603"]);
    assert_eq!(libcap.severity.as_deref(), Some("high"));
    assert_eq!(libcap.published.as_deref(), Some("2023-11-24T02:18:33Z"));
    let e = common::entry(libcap, "Fedora:38", "libcap");
    assert_eq!(e.status, common::fixed("2.48-7.fc38"));
    assert_eq!(e.note.as_deref(), Some(fedora::TESTING_NOTE));
    // kernel: only the security bugs' CVE, one statement per build (source names)
    let kernel = find("FEDORA-2023-bd14c83780");
    assert_eq!(kernel.aliases, ["CVE-2023-31083"]);
    assert_eq!(kernel.severity, None, "unspecified is no severity");
    let pkgs: Vec<_> = kernel.affected.iter().map(|a| a.package.as_str()).collect();
    assert_eq!(pkgs, ["kernel", "kernel-headers", "kernel-tools"]);
    assert_eq!(
        common::entry(kernel, "Fedora:38", "kernel-tools").status,
        common::fixed("6.6.2-100.fc38")
    );
    // stable F40 update: no note; the non-security bugs give no ids
    let rails = find("FEDORA-2023-91e69ea326");
    assert_eq!(
        rails.aliases,
        ["CVE-2022-23518", "CVE-2022-23519", "CVE-2022-23520"]
    );
    let e = common::entry(rails, "Fedora:40", "rubygem-rails-html-sanitizer");
    assert_eq!(
        (e.status.clone(), e.note.clone()),
        (common::fixed("1.6.0-1.fc40"), None)
    );
    // a module build names no RPM version: the record keeps its CVEs, no statement
    let mysql = find("FEDORA-MODULAR-2023-5b8a7bde59");
    assert!(mysql.affected.is_empty());
    assert_eq!(mysql.aliases.len(), 13, "{:?}", mysql.aliases);
    assert!(
        mysql
            .aliases
            .iter()
            .all(|a| a.len() >= "CVE-2022-2159".len())
    );
    assert!(recs.iter().all(|r| !r.withdrawn));
    // Bodhi's release list is not updates: said so
    match import::import_paths(&[bodhi("releases.json")], &mut |_| {}) {
        Err(ImportError::NotRecords { hint, .. }) => assert_eq!(hint, fedora::RELEASES_HINT),
        other => panic!("{other:?}"),
    }
}

fn updateinfo_samples_give_security_advisories_only() {
    let files = [
        updateinfo("f38-modular"),
        updateinfo("f43-everything"),
        updateinfo("epel6-archive"),
    ];
    // the F43 and EPEL 6 updates are bugfixes: skipped, not rejected
    let recs = records(&files);
    assert_eq!(ids(&recs), ["FEDORA-MODULAR-2024-deafa21e1d"]);
    let r = &recs[0];
    assert_eq!(r.aliases, ["CVE-2024-24989", "CVE-2024-24990"]);
    assert_eq!(r.severity.as_deref(), Some("Important"));
    assert_eq!(r.modified.as_deref(), Some("2024-02-28T01:27:47Z"));
    assert!(r.affected.is_empty(), "the modular pkglist is empty");
    let bugfix_only = records(&files[1..]);
    assert!(bugfix_only.is_empty());
    assert_eq!(data_kind("Fedora:43"), Some(DataKind::SecurityAdvisories));
}

/// The F43 update made a security update (a modified copy of the real file): each
/// binary (and the source RPM, under its name) is fixed at its own version.
fn updateinfo_security_packages_are_fixed_per_binary() {
    let src = updateinfo("f43-everything");
    let mut xml = Vec::new();
    ruzstd::decoding::StreamingDecoder::new(std::fs::File::open(src).expect("sample"))
        .expect("zstd")
        .read_to_end(&mut xml)
        .expect("zstd");
    let xml = String::from_utf8(xml).expect("utf-8");
    let security = xml.replacen(
        r#"status="stable" type="bugfix""#,
        r#"status="testing" type="security""#,
        1,
    );
    assert_ne!(security, xml);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(dir.path(), "updateinfo.xml", &security);
    let recs = records(&[path]);
    assert_eq!(ids(&recs), ["FEDORA-2025-4a08954c02"]);
    let r = &recs[0];
    let pkgs: Vec<_> = r.affected.iter().map(|a| a.package.as_str()).collect();
    assert_eq!(
        pkgs,
        [
            "python-boto3",
            "python-botocore",
            "python-s3transfer",
            "python3-boto3",
            "python3-botocore",
            "python3-s3transfer",
        ]
    );
    let e = common::entry(r, "Fedora:43", "python3-botocore");
    assert_eq!(e.status, common::fixed("1.41.6-1.fc43"));
    assert_eq!(e.note.as_deref(), Some(fedora::TESTING_NOTE));
    let idx = index(recs);
    let host =
        rpm_qa("python3-botocore 0:1.41.5-1.fc43 noarch python-botocore-1.41.5-1.fc43.src.rpm\n");
    let f = idx.match_host(&fedora_host("43"), None, &host);
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0].matched_by, MatchedBy::Binary);
    assert!(f[0].fixable);
}

/// Fedora publishes security advisories only: nothing says "not affected" (there is no
/// not-affected trap for this family), every statement is a fix.
fn fedora_data_states_only_fixes_never_not_affected() {
    let mut paths = ["F38.json", "F40.json", "F38M.json"].map(bodhi).to_vec();
    paths.push(updateinfo("f38-modular"));
    let recs = records(&paths);
    let statements: Vec<_> = recs.iter().flat_map(|r| &r.affected).collect();
    assert_eq!(statements.len(), 6);
    assert!(
        statements
            .iter()
            .all(|a| matches!(a.status, Status::Fixed { .. }))
    );
}

/// Bodhi names the source `kernel`; the host has the binary `kernel-core`: found through
/// its source RPM.
fn kernel_core_below_the_fix_matches_through_its_source_rpm() {
    let idx = index(records(&[bodhi("F38.json")]));
    let running = "6.6.1-100.fc38.x86_64";
    let host = rpm_qa(
        "kernel-core 0:6.6.1-100.fc38 x86_64 kernel-6.6.1-100.fc38.src.rpm\n\
         kernel-modules 0:6.6.1-100.fc38 x86_64 kernel-6.6.1-100.fc38.src.rpm\n",
    );
    let f = idx.match_host(&fedora_host("38"), Some(running), &host);
    let k = about(&f, "FEDORA-2023-bd14c83780");
    assert_eq!(k.len(), 1, "{f:#?}");
    assert_eq!(k[0].package, "kernel");
    assert_eq!(k[0].matched_by, MatchedBy::SourceRpm);
    assert_eq!(k[0].binaries, ["kernel-core", "kernel-modules"]);
    assert!(k[0].vulnerable && k[0].fixable);
    assert_eq!(
        k[0].comparison,
        "installed 6.6.1-100.fc38 < fixed 6.6.2-101.fc38 (rpm)"
    );
    assert_eq!(k[0].note.as_deref(), Some(fedora::TESTING_NOTE));
    assert_eq!(k[0].aliases, ["CVE-2023-31083"]);
    // running exactly the fixed kernel: nothing
    let host = rpm_qa("kernel-core 0:6.6.2-101.fc38 x86_64 kernel-6.6.2-101.fc38.src.rpm\n");
    assert!(
        idx.match_host(&fedora_host("38"), Some("6.6.2-101.fc38.x86_64"), &host)
            .is_empty()
    );
    // a Fedora 40 host is never matched by F38 data
    let host = rpm_qa("kernel-core 0:6.6.1-100.fc38 x86_64 kernel-6.6.1-100.fc38.src.rpm\n");
    assert!(
        idx.match_host(&fedora_host("40"), Some(running), &host)
            .is_empty()
    );
}

/// libcap's fix is in updates-testing (status `testing`): a host below it is vulnerable
/// and the fix is shown with the note; a host that installed the testing build is not.
fn libcap_just_below_and_exactly_at_a_testing_fix() {
    let idx = index(records(&[bodhi("F38.json")]));
    let e = fedora_host("38");
    let below = rpm_qa("libcap 0:2.48-6.fc38 x86_64 libcap-2.48-6.fc38.src.rpm\n");
    let f = idx.match_host(&e, None, &below);
    let l = about(&f, "FEDORA-2023-5911638116");
    assert_eq!(l.len(), 1, "{f:#?}");
    assert!(l[0].vulnerable && l[0].fixable);
    assert_eq!(l[0].status.fixed_version(), Some("2.48-7.fc38"));
    assert_eq!(
        l[0].comparison,
        "installed 2.48-6.fc38 < fixed 2.48-7.fc38 (rpm)"
    );
    assert_eq!(l[0].note.as_deref(), Some(fedora::TESTING_NOTE));
    let at = rpm_qa("libcap 0:2.48-7.fc38 x86_64 libcap-2.48-7.fc38.src.rpm\n");
    assert!(idx.match_host(&e, None, &at).is_empty());
}

/// Bodhi's separate `epoch` field (a modified copy of the real F40 update with epoch 1):
/// the fixed version is `1:1.6.0-1.fc40`, above the same V-R without epoch.
fn bodhi_epoch_field_is_part_of_the_fixed_version() {
    let json = std::fs::read_to_string(bodhi("F40.json")).expect("sample");
    let with_epoch = json.replacen("\"epoch\": 0,", "\"epoch\": 1,", 1);
    assert_ne!(with_epoch, json);
    let dir = tempfile::tempdir().expect("tempdir");
    let recs = records(&[write(dir.path(), "F40.json", &with_epoch)]);
    let e = common::entry(&recs[0], "Fedora:40", "rubygem-rails-html-sanitizer");
    assert_eq!(e.status, common::fixed("1:1.6.0-1.fc40"));
    let idx = index(recs);
    let src = "rubygem-rails-html-sanitizer-1.6.0-1.fc40.src.rpm";
    let no_epoch = rpm_qa(&format!(
        "rubygem-rails-html-sanitizer 0:1.6.0-1.fc40 noarch {src}\n"
    ));
    let f = idx.match_host(&fedora_host("40"), None, &no_epoch);
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(
        f[0].comparison,
        "installed 1.6.0-1.fc40 < fixed 1:1.6.0-1.fc40 (rpm)"
    );
    let epoch = rpm_qa(&format!(
        "rubygem-rails-html-sanitizer 1:1.6.0-1.fc40 noarch {src}\n"
    ));
    assert!(idx.match_host(&fedora_host("40"), None, &epoch).is_empty());
}

fn broken_bodhi_update_is_rejected_by_alias_and_the_rest_imported() {
    let json = std::fs::read_to_string(bodhi("F38.json")).expect("sample");
    let broken = json.replacen(
        "\"nvr\": \"kernel-6.6.2-101.fc38\"",
        "\"nvr\": \"kernel\"",
        1,
    );
    assert_ne!(broken, json);
    let dir = tempfile::tempdir().expect("tempdir");
    let b = batches(&[write(dir.path(), "F38.json", &broken)]);
    assert_eq!(b.len(), 1);
    let rejected: Vec<_> = b[0].parsed.rejected.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(rejected, ["FEDORA-2023-bd14c83780"]);
    assert_eq!(
        b[0].parsed.rejected[0].reason,
        "build \"kernel\" is not name-version-release"
    );
    assert_eq!(
        ids(&b[0].parsed.records),
        ["FEDORA-2023-5911638116", "FEDORA-2023-bb021a4854"]
    );
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    path
}
