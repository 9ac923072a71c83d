//! The importers against the real feed data in `../shared/data` (see its PROVENANCE.md),
//! plus malformed inputs made here.
//!
//! The real data is never copied into the repository: a test that needs it and does not
//! find it says so loudly and returns, except under `CI=true` where it fails.

use std::io::Write;
use std::path::PathBuf;

use patchctl_testkit::{Harness, Need, trial};
use patchctl_vuln::import::{FeedBatch, ImportError, MAX_ENTRY_BYTES, import_paths, parse_bytes};
use patchctl_vuln::{Record, Status};
use proptest::prelude::*;

mod common;
use common::{data, entry, fixed};

fn main() -> std::process::ExitCode {
    let alma_zips = [
        Need::SharedData("osv/almalinux-8.zip"),
        Need::SharedData("osv/almalinux-9.zip"),
        Need::SharedData("osv/almalinux-10.zip"),
    ];
    Harness::new()
        .test(trial!(almalinux_archives_import_completely).needs(alma_zips))
        .test(trial!(ubuntu_samples_directory).needs([Need::SharedData("osv/ubuntu-samples")]))
        .test(trial!(ubuntu_vex_statements).needs([Need::SharedData("osv/ubuntu-samples/vex")]))
        .test(
            trial!(ubuntu_vex_with_a_metadata_header_and_without_statements)
                .needs([Need::SharedData("ubuntu/vuls-data-update-samples/vex")]),
        )
        .test(
            trial!(alpine_secdb)
                .needs([Need::SharedData("alpine/alpine-secdb-2020/v3.11/main.yaml")]),
        )
        .test(
            trial!(alpine_branches_merge_and_zero_is_not_affected)
                .needs([Need::SharedData("alpine")]),
        )
        .test(trial!(rocky_samples).needs([Need::SharedData("osv/rocky-samples")]))
        .test(trial!(reimport_gives_identical_records).needs([
            Need::SharedData("osv/almalinux-10.zip"),
            Need::SharedData("osv/ubuntu-samples"),
            Need::SharedData("alpine/alpine-secdb-2020/v3.9"),
        ]))
        .test(trial!(malformed_records_are_rejected_by_id))
        .test(trial!(unknown_format_is_a_clear_error))
        .test(trial!(zip_with_bad_entries))
        .test(trial!(zip_bomb_entry_is_refused))
        .test(trial!(later_modified_wins_across_files))
        .test(trial!(parse_bytes_never_panics_on_bytes))
        .test(trial!(parse_bytes_never_panics_on_json))
        .run()
}

fn import(paths: &[PathBuf]) -> Vec<FeedBatch> {
    import_paths(paths, &mut |_| {}).expect("import succeeds")
}

fn batch<'a>(batches: &'a [FeedBatch], feed: &str) -> &'a FeedBatch {
    batches
        .iter()
        .find(|b| b.feed == feed)
        .unwrap_or_else(|| panic!("no {feed} batch in {:?}", feeds(batches)))
}

fn feeds(batches: &[FeedBatch]) -> Vec<&str> {
    batches.iter().map(|b| b.feed).collect()
}

fn record<'a>(batch: &'a FeedBatch, id: &str) -> &'a Record {
    let records = &batch.parsed.records;
    records
        .iter()
        .find(|r| r.id == id)
        .unwrap_or_else(|| panic!("no record {id} in {}", batch.feed))
}

fn alma_zips() -> Vec<PathBuf> {
    ["8", "9", "10"]
        .iter()
        .map(|v| data(&format!("osv/almalinux-{v}.zip")))
        .collect()
}

fn almalinux_archives_import_completely() {
    let zips = alma_zips();
    let mut reports = Vec::new();
    let batches = import_paths(&zips, &mut |p| reports.push(p)).expect("import");
    assert_eq!(feeds(&batches), ["osv"]);
    let osv = &batches[0].parsed;
    assert_eq!(osv.rejected, [], "every AlmaLinux record must import");
    // 5,680 records in the three archives; 37 advisories that cover two releases are
    // shipped, byte for byte, in both archives (some in all three): 5,637 distinct ids.
    assert_eq!(osv.records.len(), 5637);
    let last = reports.last().expect("progress reported");
    assert_eq!((last.files_done, last.files_total), (3, 3));
    assert_eq!((last.documents, last.rejected), (5680, 0));
    assert!(
        reports.len() > 6,
        "progress within archives too: {}",
        reports.len()
    );

    let alsa = record(&batches[0], "ALSA-2024:0001");
    assert_eq!(alsa.summary, "Important: thunderbird security update");
    assert_eq!(alsa.severity.as_deref(), Some("Important"));
    assert_eq!(alsa.cvss_vector, None);
    assert_eq!(alsa.modified.as_deref(), Some("2024-01-03T17:21:11Z"));
    assert_eq!(alsa.published.as_deref(), Some("2024-01-02T00:00:00Z"));
    assert!(!alsa.withdrawn);
    assert_eq!(alsa.aliases.len(), 11);
    assert_eq!(alsa.aliases[0], "CVE-2023-50761", "sorted, CVE ids first");
    assert!(alsa.aliases.contains(&"CVE-2023-6856".to_string()));
    let thunderbird = entry(alsa, "AlmaLinux:9", "thunderbird");
    assert_eq!(thunderbird.status, fixed("115.6.0-1.el9_3.alma"));
    assert_eq!(
        (&thunderbird.introduced, &thunderbird.last_affected),
        (&None, &None)
    );

    let module = record(&batches[0], "ALSA-2024:0387");
    assert_eq!(module.affected.len(), 31);
    assert_eq!(module.severity.as_deref(), Some("Moderate"));
    let php = entry(module, "AlmaLinux:9", "php");
    assert_eq!(php.status, fixed("8.1.27-1.module_el9.3.0+53+44872dd1"));

    let epoch = record(&batches[0], "ALSA-2024:11216");
    let plugins = entry(epoch, "AlmaLinux:9", "containernetworking-plugins");
    assert_eq!(plugins.status, fixed("1:1.5.1-3.el9_5"));
}

fn ubuntu_samples_directory() {
    let dir = data("osv/ubuntu-samples");
    let batches = import(&[dir]);
    assert_eq!(feeds(&batches), ["osv", "ubuntu-vex"]);
    let osv = batch(&batches, "osv");
    assert_eq!(osv.parsed.rejected, []);
    assert_eq!(osv.parsed.records.len(), 9);

    let wayland = record(osv, "UBUNTU-CVE-2021-3782");
    assert_eq!(wayland.severity.as_deref(), Some("medium"));
    assert_eq!(
        wayland.cvss_vector.as_deref(),
        Some("CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:L/I:L/A:H")
    );
    assert_eq!(
        wayland.aliases,
        ["CVE-2021-3782", "USN-5614-1", "USN-5614-2"]
    );
    assert!(
        wayland
            .summary
            .starts_with("An internal reference count is held")
    );
    let pro = entry(wayland, "Ubuntu:Pro:16.04:LTS", "wayland");
    assert_eq!(pro.status, fixed("1.12.0-1~ubuntu16.04.3+esm1"));
    let jammy = entry(wayland, "Ubuntu:22.04:LTS", "wayland");
    assert_eq!(jammy.status, fixed("1.20.0-1ubuntu0.1"));

    let withdrawn = record(osv, "UBUNTU-CVE-2013-2208");
    assert!(withdrawn.withdrawn);
    assert!(!record(osv, "UBUNTU-CVE-2021-3782").withdrawn);

    let open = record(osv, "UBUNTU-CVE-2026-1403");
    let gitlab = entry(open, "Ubuntu:16.04:LTS", "gitlab");
    assert_eq!(gitlab.status, Status::AffectedNoFix);
    assert_eq!(gitlab.introduced, None);

    let netty = record(osv, "UBUNTU-CVE-2022-24823");
    let esm = entry(netty, "Ubuntu:Pro:22.04:LTS", "netty");
    assert_eq!(esm.status, fixed("1:4.1.48-4+deb11u2ubuntu0.1~esm1"));
    assert_eq!(netty.severity.as_deref(), Some("low"));

    let usn = record(osv, "USN-5614-1");
    assert_eq!(usn.summary, "wayland vulnerability");
    assert_eq!(usn.aliases, ["UBUNTU-CVE-2021-3782"]);
}

/// Canonical's OpenVEX as vuls-data-update keeps it: the header (`@context`,
/// `timestamp`) under `metadata`, the statements beside it; CVE-2025-0194's document
/// states nothing yet (no record, no rejection).
fn ubuntu_vex_with_a_metadata_header_and_without_statements() {
    let batches = import(&[data("ubuntu/vuls-data-update-samples/vex")]);
    assert_eq!(feeds(&batches), ["ubuntu-vex"]);
    let vex = &batches[0];
    assert_eq!(vex.parsed.rejected, []);
    let ids: Vec<&str> = vex.parsed.records.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["CVE-2025-0167", "USN-7372-1"]);
    let curl = record(vex, "CVE-2025-0167");
    let of = |eco: &str| {
        curl.affected
            .iter()
            .find(|a| a.ecosystem == eco && a.package == "curl")
            .map(|a| a.status.name())
    };
    assert_eq!(of("Ubuntu:22.04:LTS"), Some("affected_no_fix"));
    assert_eq!(of("Ubuntu:20.04:LTS"), Some("not_affected"));
    let usn = record(vex, "USN-7372-1");
    assert_eq!(usn.aliases, ["CVE-2022-45060"]);
    let fixed: Vec<(&str, Option<&str>)> = usn
        .affected
        .iter()
        .map(|a| (a.ecosystem.as_str(), a.status.fixed_version()))
        .collect();
    assert_eq!(
        fixed,
        [
            ("Ubuntu:Pro:18.04:LTS", Some("5.2.1-1ubuntu0.1+esm1")),
            ("Ubuntu:Pro:20.04:LTS", Some("6.2.1-2ubuntu0.2+esm1")),
            ("Ubuntu:Pro:22.04:LTS", Some("6.6.1-1ubuntu0.2+esm1")),
        ]
    );
    assert!(usn.modified.is_some(), "the header's timestamp is read");
}

fn ubuntu_vex_statements() {
    let dir = data("osv/ubuntu-samples/vex");
    let batches = import(&[dir]);
    assert_eq!(feeds(&batches), ["ubuntu-vex"]);
    let vex = &batches[0];
    assert_eq!(vex.parsed.rejected, []);
    assert_eq!(vex.parsed.records.len(), 2);

    let curl = record(vex, "CVE-2023-38545");
    assert_eq!(curl.aliases, ["USN-6429-1", "USN-6429-3"]);
    assert_eq!(
        curl.modified.as_deref(),
        Some("2026-05-20T15:02:47.589121Z")
    );
    assert!(curl.summary.starts_with("This flaw makes curl overflow"));
    assert_eq!(
        entry(curl, "Ubuntu:22.04:LTS", "curl").status,
        fixed("7.81.0-1ubuntu1.24")
    );
    assert_eq!(
        entry(curl, "Ubuntu:24.04:LTS", "curl").status,
        fixed("8.5.0-2ubuntu10.9")
    );
    let trusty = entry(curl, "Ubuntu:Pro:14.04:LTS", "curl");
    assert_eq!(trusty.status, Status::NotAffected);
    let note = trusty.note.as_deref().unwrap_or_default();
    assert!(note.starts_with("vulnerable_code_not_present: "), "{note}");
    assert!(note.contains("affects 7.69 and higher"), "{note}");
    let xenial = entry(curl, "Ubuntu:16.04:LTS", "curl");
    assert_eq!(xenial.status, Status::EndOfLife, "{:?}", xenial.note);
    assert_eq!(curl.affected.len(), 2 + 1 + 4, "source products only");

    let crypt = record(vex, "CVE-2016-20013");
    let dietlibc = entry(crypt, "Ubuntu:14.04:LTS", "dietlibc");
    assert_eq!(dietlibc.status, Status::WillNotFix);
    assert!(
        dietlibc
            .note
            .as_deref()
            .unwrap_or_default()
            .contains("decided to not fix")
    );
    let glibc = entry(crypt, "Ubuntu:Pro:20.04:LTS", "glibc");
    assert_eq!(glibc.status, Status::WillNotFix);
    let zabbix = entry(crypt, "Ubuntu:24.04:LTS", "zabbix");
    assert_eq!(zabbix.status, Status::NotAffected);
    assert!(
        zabbix
            .note
            .as_deref()
            .unwrap_or_default()
            .starts_with("component_not_present")
    );
}

fn alpine_secdb() {
    let main = data("alpine/alpine-secdb-2020/v3.11/main.yaml");
    let batches = import(&[main]);
    assert_eq!(feeds(&batches), ["alpine-secdb"]);
    let alpine = &batches[0];
    // Three versions in this file are not apk versions; each is reported, the package's
    // other fixes are kept.
    let rejected: Vec<&str> = alpine
        .parsed
        .rejected
        .iter()
        .map(|r| r.id.as_str())
        .collect();
    assert_eq!(
        rejected,
        [
            "Alpine:v3.11/opensmtpd",
            "Alpine:v3.11/python2",
            "Alpine:v3.11/xen"
        ]
    );
    let xen_rejected = &alpine.parsed.rejected[2].reason;
    assert!(xen_rejected.starts_with("secfix version '4.10-1-r1' is not a valid apk version"));
    let ansible = record(alpine, "CVE-2019-14904");
    assert_eq!(ansible.affected.len(), 1);
    assert_eq!(
        entry(ansible, "Alpine:v3.11", "ansible").status,
        fixed("2.9.3-r0")
    );
    let xen = record(alpine, "CVE-2017-8904");
    assert_eq!(xen.aliases, ["XSA-214"]);
    assert_eq!(entry(xen, "Alpine:v3.11", "xen").status, fixed("4.8.1-r2"));
    let placeholder = record(alpine, "XSA-295");
    assert_eq!(placeholder.affected[0].package, "xen");
}

fn alpine_branches_merge_and_zero_is_not_affected() {
    let dir = data("alpine");
    let batches = import(&[dir]);
    let alpine = batch(&batches, "alpine-secdb");
    let db = record(alpine, "CVE-2016-0682");
    assert_eq!(entry(db, "Alpine:v3.8", "db").status, Status::NotAffected);

    let xen = record(alpine, "CVE-2017-8904");
    let branches: Vec<&str> = xen.affected.iter().map(|a| a.ecosystem.as_str()).collect();
    assert_eq!(
        branches,
        [
            "Alpine:v3.10",
            "Alpine:v3.11",
            "Alpine:v3.3",
            "Alpine:v3.4",
            "Alpine:v3.5",
            "Alpine:v3.6",
            "Alpine:v3.7",
            "Alpine:v3.8",
            "Alpine:v3.9",
        ]
    );
    let note = &record(alpine, "CVE-2018-14467").affected[0].note;
    assert_eq!(note.as_deref(), Some("BGP"));

    // The 2020 data has a few versions apk rejects; those package entries are reported.
    let irssi = alpine
        .parsed
        .rejected
        .iter()
        .find(|r| r.id == "Alpine:v3.5/irssi")
        .expect("irssi's '0.8.21.r2' is rejected");
    assert!(
        irssi
            .reason
            .contains("'0.8.21.r2' is not a valid apk version"),
        "{}",
        irssi.reason
    );
    assert!(irssi.reason.contains("v3.5/main.yaml"), "{}", irssi.reason);
    let irssi_fix = record(alpine, "CVE-2017-10965");
    assert!(
        !irssi_fix
            .affected
            .iter()
            .any(|a| a.ecosystem == "Alpine:v3.5")
    );
    assert_eq!(
        entry(irssi_fix, "Alpine:v3.7", "irssi").status,
        fixed("1.0.4-r0")
    );
    assert_eq!(
        (alpine.parsed.records.len(), alpine.parsed.rejected.len()),
        (2479, 24)
    );
}

fn rocky_samples() {
    let dir = data("osv/rocky-samples");
    let batches = import(&[dir]);
    let osv = batch(&batches, "osv");
    assert_eq!(osv.parsed.rejected, []);
    let ruby = record(osv, "RLSA-2024:3671");
    let entry = entry(ruby, "Rocky Linux:9", "ruby");
    assert_eq!(
        entry.status,
        fixed("0:3.3.1-2.module+el9.4.0+20787+4c237fd3")
    );
    let java = record(osv, "RLSA-2021:3891");
    assert_eq!(java.severity.as_deref(), Some("Important"));
    assert_eq!(
        java.cvss_vector.as_deref(),
        Some("CVSS:3.1/AV:N/AC:L/PR:L/UI:R/S:C/C:H/I:N/A:N")
    );
}

fn reimport_gives_identical_records() {
    let (zip, ubuntu, alpine) = (
        data("osv/almalinux-10.zip"),
        data("osv/ubuntu-samples"),
        data("alpine/alpine-secdb-2020/v3.9"),
    );
    let paths = [zip.clone(), ubuntu, alpine];
    let digests = |batches: Vec<FeedBatch>| -> Vec<(String, String)> {
        batches
            .iter()
            .flat_map(|b| b.parsed.records.iter().map(|r| (r.id.clone(), r.digest())))
            .collect()
    };
    let first = digests(import(&paths));
    assert!(first.len() > 660);
    assert_eq!(first, digests(import(&paths)));
    let bytes = std::fs::read(&zip).expect("read zip");
    let from_bytes = digests(parse_bytes("almalinux-10.zip", &bytes).expect("parse"));
    let from_path = digests(import(&[zip]));
    assert_eq!(from_bytes, from_path);
}

const GOOD: &str = r#"{"id": "ALSA-2099:0001", "summary": "Low: x", "modified": "2099-01-01T00:00:00Z",
  "unknown_field": {"tolerated": true},
  "affected": [{"package": {"ecosystem": "AlmaLinux:9", "name": "x"},
    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.0-1.el9"}]}]}]}"#;

fn osv_with(id: &str, package: &str, events: &str) -> String {
    format!(
        r#"{{"id": "{id}", "affected": [{{"package": {package},
            "ranges": [{{"type": "ECOSYSTEM", "events": {events}}}]}}]}}"#
    )
}

fn malformed_records_are_rejected_by_id() {
    let dir = tempfile::tempdir().expect("tempdir");
    let alma = r#"{"ecosystem": "AlmaLinux:9", "name": "y"}"#;
    let files = [
        ("a-good.json", GOOD.to_string()),
        (
            "b-bad-version.json",
            osv_with(
                "ALSA-2099:0002",
                alma,
                r#"[{"introduced": "0"}, {"fixed": "1.0-1-1"}]"#,
            ),
        ),
        (
            "c-no-name.json",
            osv_with("ALSA-2099:0003", r#"{"ecosystem": "AlmaLinux:9"}"#, "[]"),
        ),
        (
            "d-bad-event.json",
            osv_with(
                "ALSA-2099:0004",
                alma,
                r#"[{"introduced": "0", "fixed": "1-1"}]"#,
            ),
        ),
        (
            "e-fixed-first.json",
            osv_with("ALSA-2099:0005", alma, r#"[{"fixed": "1-1"}]"#),
        ),
        ("f-no-id.json", r#"{"id": 7, "affected": []}"#.to_string()),
        (
            "g-open.json",
            osv_with(
                "ALSA-2099:0006",
                alma,
                r#"[{"introduced": "2-1"}, {"last_affected": "3-1"}, {"introduced": "5-1"}]"#,
            ),
        ),
        (".hidden.json", "not json at all {".to_string()),
        ("notes.txt", "ignored: not a feed file".to_string()),
    ];
    for (name, text) in &files {
        std::fs::write(dir.path().join(name), text).expect("write");
    }
    let batches = import(&[dir.path().to_path_buf()]);
    let osv = batch(&batches, "osv");
    let ids: Vec<&str> = osv.parsed.records.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["ALSA-2099:0001", "ALSA-2099:0006"]);
    let good = &osv.parsed.records[0];
    assert_eq!(
        (good.severity.as_deref(), good.affected[0].status.clone()),
        (Some("Low"), fixed("1.0-1.el9"))
    );
    let open = &osv.parsed.records[1].affected;
    assert_eq!(open.len(), 2);
    assert_eq!(
        (
            open[0].introduced.as_deref(),
            open[0].last_affected.as_deref(),
            &open[0].status
        ),
        (Some("2-1"), Some("3-1"), &Status::AffectedNoFix)
    );
    assert_eq!(
        (open[1].introduced.as_deref(), &open[1].last_affected),
        (Some("5-1"), &None)
    );

    let rejected: Vec<(&str, &str)> = osv
        .parsed
        .rejected
        .iter()
        .map(|r| (r.id.as_str(), r.reason.as_str()))
        .collect();
    assert_eq!(rejected.len(), 5, "{rejected:#?}");
    let reason = |id: &str| {
        rejected
            .iter()
            .find(|r| r.0 == id)
            .map(|r| r.1)
            .unwrap_or_default()
    };
    assert!(
        reason("ALSA-2099:0002")
            .contains("fixed version '1.0-1-1' of package y is not a valid rpm version"),
        "{rejected:#?}"
    );
    assert!(
        reason("ALSA-2099:0003").contains("has no name"),
        "{rejected:#?}"
    );
    assert!(reason("ALSA-2099:0004").contains("not an object with one non-empty string value"));
    assert!(reason("ALSA-2099:0005").contains("does not follow an 'introduced'"));
    let no_id = rejected
        .iter()
        .find(|r| r.0.ends_with("f-no-id.json"))
        .expect("by file name");
    assert!(no_id.1.contains("not a valid OSV record"), "{}", no_id.1);
}

fn unknown_format_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("a.json"), GOOD).expect("write");
    let odd = dir.path().join("b.json");
    std::fs::write(&odd, r#"{"hello": "world"}"#).expect("write");
    let err = import_paths(&[dir.path().to_path_buf()], &mut |_| {}).expect_err("unknown format");
    assert!(
        matches!(&err, ImportError::UnknownFormat { path } if path.ends_with("b.json")),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("b.json") && msg.contains("accepted: OSV records"),
        "{msg}"
    );

    let err = parse_bytes("feed.json", b"{\"id\": ").expect_err("truncated JSON");
    assert!(
        err.to_string().starts_with("feed.json is not valid JSON"),
        "{err}"
    );
    let missing = dir.path().join("missing.zip");
    let err = import_paths(&[missing], &mut |_| {}).expect_err("missing");
    assert!(
        err.to_string().contains("missing.zip") && err.to_string().contains("check that it exists")
    );
    let err = parse_bytes("x.zip", b"PK\x03\x04garbage").expect_err("bad zip");
    assert!(
        err.to_string()
            .contains("x.zip is not a readable zip archive"),
        "{err}"
    );
}

fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut out);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in entries {
        zip.start_file(*name, options).expect("start");
        zip.write_all(bytes).expect("write");
    }
    zip.finish().expect("finish");
    out.into_inner()
}

fn zip_with_bad_entries() {
    let bad_version = osv_with(
        "ALSA-2099:0009",
        r#"{"ecosystem": "AlmaLinux:9", "name": "z"}"#,
        r#"[{"introduced": "0"}, {"fixed": "1:"}]"#,
    );
    let zip = zip_of(&[
        ("ALSA-2099:0001.json", GOOD.as_bytes()),
        ("broken.json", b"{\"id\": \"ALSA-2099:0008\", "),
        ("ALSA-2099:0009.json", bad_version.as_bytes()),
        ("README", b"hello: world"),
    ]);
    let batches = parse_bytes("all.zip", &zip).expect("zip reads");
    let osv = batch(&batches, "osv");
    assert_eq!(osv.parsed.records.len(), 1);
    assert_eq!(osv.parsed.records[0].id, "ALSA-2099:0001");
    let ids: Vec<&str> = osv.parsed.rejected.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(
        ids,
        ["all.zip:broken.json", "ALSA-2099:0009", "all.zip:README"]
    );
    assert!(osv.parsed.rejected[0].reason.starts_with("not valid JSON"));
    assert!(osv.parsed.rejected[2].reason.contains("not a known format"));
}

fn zip_bomb_entry_is_refused() {
    let zeros = vec![b' '; (MAX_ENTRY_BYTES + 1) as usize];
    let zip = zip_of(&[
        ("big.json", &zeros),
        ("ALSA-2099:0001.json", GOOD.as_bytes()),
    ]);
    assert!(zip.len() < 1 << 20, "compressed: {}", zip.len());
    let batches = parse_bytes("all.zip", &zip).expect("zip reads");
    let osv = batch(&batches, "osv");
    assert_eq!(osv.parsed.records.len(), 1);
    assert_eq!(osv.parsed.rejected.len(), 1);
    assert_eq!(osv.parsed.rejected[0].id, "all.zip:big.json");
    assert!(osv.parsed.rejected[0].reason.contains("larger than 64 MiB"));
}

fn later_modified_wins_across_files() {
    let older = GOOD
        .replace("Low: x", "Low: older")
        .replace("2099-01-01", "2098-01-01");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("a.json"), GOOD).expect("write");
    std::fs::write(dir.path().join("b.json"), older).expect("write");
    let batches = import(&[dir.path().to_path_buf()]);
    let records = &batch(&batches, "osv").parsed.records;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].summary, "Low: x");
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::{Value, json};
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        prop_oneof![
            Just("0".to_string()),
            Just("1.0-1".to_string()),
            Just("AlmaLinux:9".to_string()),
            Just("pkg:deb/ubuntu/a@1?arch=source&distro=jammy".to_string()),
            ".{0,12}",
        ]
        .prop_map(Value::from),
    ];
    let keys = prop_oneof![
        Just("id".to_string()),
        Just("affected".to_string()),
        Just("package".to_string()),
        Just("ranges".to_string()),
        Just("events".to_string()),
        Just("introduced".to_string()),
        Just("fixed".to_string()),
        Just("statements".to_string()),
        Just("products".to_string()),
        Just("status".to_string()),
        Just("packages".to_string()),
        Just("pkg".to_string()),
        Just("secfixes".to_string()),
        "[a-z]{1,6}",
    ];
    let tree = leaf.prop_recursive(5, 64, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(keys.clone(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    });
    // Give the detector something to bite on: each document is one of the feed shapes
    // with arbitrary content.
    (tree.clone(), tree).prop_flat_map(|(a, b)| {
        prop_oneof![
            Just(json!({"id": "X-1", "affected": a.clone(), "severity": b.clone()})),
            Just(json!({"@context": "https://openvex.dev/ns/v0.2.0", "statements": a.clone()})),
            Just(json!({"distroversion": "v3.1", "packages": a.clone()})),
            Just(a.clone()),
            Just(b.clone()),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    fn parse_bytes_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_bytes("fuzz", &bytes);
        let mut zip = b"PK\x03\x04".to_vec();
        zip.extend_from_slice(&bytes);
        let _ = parse_bytes("fuzz.zip", &zip);
    }

    fn parse_bytes_never_panics_on_json(value in json_value()) {
        let text = value.to_string();
        let _ = parse_bytes("fuzz.json", text.as_bytes());
        let _ = parse_bytes("fuzz.zip", &zip_of(&[("x.json", text.as_bytes())]));
    }
}
