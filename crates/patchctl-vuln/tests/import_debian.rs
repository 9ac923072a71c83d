//! The Debian importers against the real tracker data in `../shared/data/debian` (beside
//! the repository; never copied into it). Without that data each test says so loudly and
//! returns, except under `CI=true`, where it fails.

use std::fs;
use std::path::{Path, PathBuf};

use patchctl_testkit::{Harness, Need, trial};
use patchctl_vuln::import::debian::{
    self, VulnList, looks_like_security_support, looks_like_tracker_json, looks_like_vuln_list,
    parse_security_support, parse_tracker_json,
};
use patchctl_vuln::{Parsed, Record, Status};
use proptest::prelude::*;

mod common;
use common::{data, entry, find, fixed};
use serde_json::{Value, json};

fn main() -> std::process::ExitCode {
    let vuln_list_samples = [Need::SharedData("debian/vuln-list-debian-samples")];
    let vunnel = [Need::SharedData(
        "debian/tracker-json-samples/vunnel-debian.json",
    )];
    let security_support = [Need::SharedData("debian/security-support")];
    Harness::new()
        .test(trial!(xz_cve_2024_3094_not_affected_on_bookworm).needs(vuln_list_samples))
        .test(trial!(coreutils_cve_2016_2781_ignored_is_will_not_fix).needs(vuln_list_samples))
        .test(trial!(openssh_cve_2024_6387_fixed_by_dsa_5724_1).needs(vuln_list_samples))
        .test(trial!(util_linux_cve_2024_28085_keyed_by_source).needs(vuln_list_samples))
        .test(trial!(glibc_cve_2023_4911_release_line_beats_unstable).needs(vuln_list_samples))
        .test(trial!(
            dsa_rules_explicit_lines_win_and_lone_cves_get_records
        ))
        .test(trial!(malformed_list_records_are_rejected_by_id))
        .test(trial!(tracker_json_vunnel_sample).needs(vunnel))
        .test(trial!(tracker_json_osv_dev_mock).needs([Need::SharedData(
            "debian/tracker-json-samples/osvdev-debian_security_tracker_mock.json",
        )]))
        .test(trial!(tracker_json_nodsa_and_merge))
        .test(trial!(malformed_tracker_json_is_rejected_by_id))
        .test(trial!(security_support_ended_deb12).needs(security_support))
        .test(trial!(security_support_ended_older_releases).needs(security_support))
        .test(trial!(security_support_malformed_lines))
        .test(trial!(reimport_is_identical).needs(vunnel))
        .test(trial!(arbitrary_json_never_panics))
        .test(trial!(arbitrary_bytes_never_panic))
        .run()
}

fn read_json(path: &Path) -> Value {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every record of `CVE/` and `DSA/` of the vuln-list samples, in `order` of directory.
fn vuln_list(dirs: &[&str]) -> Parsed {
    let root = data("debian/vuln-list-debian-samples");
    let mut list = VulnList::default();
    for dir in dirs {
        let mut files: Vec<PathBuf> = fs::read_dir(root.join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for file in files {
            let v = read_json(&file);
            assert!(looks_like_vuln_list(&v), "{}", file.display());
            assert!(!looks_like_tracker_json(&v), "{}", file.display());
            list.add(&file.display().to_string(), &v).unwrap();
        }
    }
    assert!(!list.is_empty());
    list.finish()
}

/// Invariants every output must keep: no record without a statement, every version
/// well-formed, output sorted.
fn check_invariants(parsed: &Parsed) {
    for r in &parsed.records {
        assert!(!r.affected.is_empty(), "{}", r.id);
        assert!(!r.aliases.contains(&r.id), "{}", r.id);
        for a in &r.affected {
            assert!(a.ecosystem.starts_with("Debian:"), "{}: {a:?}", r.id);
            for v in a
                .status
                .fixed_version()
                .iter()
                .chain(&a.last_affected.as_deref())
            {
                patchctl_version::Scheme::Dpkg
                    .parse_check(v)
                    .unwrap_or_else(|e| panic!("{}: {e}", r.id));
            }
        }
        let keys: Vec<_> = r
            .affected
            .iter()
            .map(|a| (&a.ecosystem, &a.package))
            .collect();
        assert!(keys.is_sorted(), "{}", r.id);
    }
    assert!(parsed.records.is_sorted_by(|a, b| a.id < b.id));
}

fn xz_cve_2024_3094_not_affected_on_bookworm() {
    let parsed = vuln_list(&["CVE"]);
    let r = find(&parsed.records, "CVE-2024-3094");
    let bookworm = entry(r, "Debian:12", "xz-utils");
    assert_eq!(bookworm.status, Status::NotAffected);
    assert_eq!(
        bookworm.note.as_deref(),
        Some("Vulnerable code not present")
    );
    assert_eq!(
        entry(r, "Debian:11", "xz-utils").status,
        Status::NotAffected
    );
    // trixie has no line: it compares with unstable's fix.
    let trixie = entry(r, "Debian:13", "xz-utils");
    assert_eq!(trixie.status, fixed("5.6.1+really5.4.5-1"));
    assert_eq!(
        trixie.note.as_deref(),
        Some("fixed in unstable; no release-specific line")
    );
    // buster..forky, one statement each.
    assert_eq!(r.affected.len(), 5);
}

fn coreutils_cve_2016_2781_ignored_is_will_not_fix() {
    let parsed = vuln_list(&["CVE"]);
    let r = find(&parsed.records, "CVE-2016-2781");
    assert_eq!(
        r.summary,
        "chroot in GNU coreutils, when used with --userspec, allows local users ..."
    );
    let bookworm = entry(r, "Debian:12", "coreutils");
    assert_eq!(bookworm.status, Status::WillNotFix);
    assert_eq!(bookworm.note.as_deref(), Some("ignored: Minor issue"));
    // The release line has no severity of its own: unstable's applies.
    assert_eq!(bookworm.severity.as_deref(), Some("low"));
    assert_eq!(bookworm.status.fixed_version(), None);
    assert_eq!(
        entry(r, "Debian:10", "coreutils").status,
        Status::WillNotFix
    );
    assert_eq!(entry(r, "Debian:13", "coreutils").status, fixed("9.4-1"));
    // Older releases with their own line keep it (jessie is Debian 8).
    assert_eq!(entry(r, "Debian:8", "coreutils").status, Status::WillNotFix);
}

fn openssh_cve_2024_6387_fixed_by_dsa_5724_1() {
    for dirs in [["CVE", "DSA"], ["DSA", "CVE"]] {
        let parsed = vuln_list(&dirs);
        assert!(parsed.rejected.is_empty(), "{:?}", parsed.rejected);
        // The DSA is merged into its CVE, never a record of its own.
        assert!(parsed.records.iter().all(|r| !r.id.starts_with("DSA-")));
        let r = find(&parsed.records, "CVE-2024-6387");
        assert_eq!(r.aliases, ["DSA-5724-1"]);
        let bookworm = entry(r, "Debian:12", "openssh");
        assert_eq!(bookworm.status, fixed("1:9.2p1-2+deb12u3"));
        assert_eq!(bookworm.note.as_deref(), Some("fixed by DSA-5724-1"));
        let trixie = entry(r, "Debian:13", "openssh");
        assert_eq!(trixie.status, fixed("1:9.7p1-7"));
        assert_eq!(
            trixie.note.as_deref(),
            Some("fixed in unstable; no release-specific line")
        );
        let bullseye = entry(r, "Debian:11", "openssh");
        assert_eq!(bullseye.status, Status::NotAffected);
        assert_eq!(
            bullseye.note.as_deref(),
            Some("Vulnerable code introduced later")
        );
        assert_eq!(parsed.records.len(), 6);
        check_invariants(&parsed);
    }
}

fn util_linux_cve_2024_28085_keyed_by_source() {
    let parsed = vuln_list(&["CVE"]);
    let r = find(&parsed.records, "CVE-2024-28085");
    assert_eq!(r.summary, "escape sequence Injection in wall");
    let bookworm = entry(r, "Debian:12", "util-linux");
    assert_eq!(bookworm.status, Status::AffectedNoFix);
    assert_eq!(
        bookworm.note.as_deref(),
        Some("unfixed in unstable; no release-specific line")
    );
    // The binaries (bsdutils, mount, ...) are never a record's package.
    assert!(r.affected.iter().all(|a| a.package == "util-linux"));
    assert_eq!(r.affected.len(), 5);
}

fn glibc_cve_2023_4911_release_line_beats_unstable() {
    let parsed = vuln_list(&["CVE"]);
    let r = find(&parsed.records, "CVE-2023-4911");
    assert_eq!(entry(r, "Debian:10", "glibc").status, Status::NotAffected);
    assert_eq!(entry(r, "Debian:12", "glibc").status, Status::AffectedNoFix);
    let expat = find(&parsed.records, "CVE-2024-45490");
    assert_eq!(
        entry(expat, "Debian:14", "expat").status,
        Status::AffectedNoFix
    );
}

fn list_record(id: &str, annotations: Value) -> Value {
    json!({"Header": {"ID": id, "Original": id, "Description": "(x)"}, "Annotations": annotations})
}

fn dsa_rules_explicit_lines_win_and_lone_cves_get_records() {
    let mut list = VulnList::default();
    let cve = list_record(
        "CVE-2099-0001",
        json!([
            {"Type": "package", "Package": "foo", "Kind": "fixed", "Version": "2.0-1", "Severity": "high"},
            {"Type": "package", "Release": "bookworm", "Package": "foo", "Kind": "postponed",
             "Description": "revisit when fixed upstream"},
            {"Type": "package", "Release": "bullseye", "Package": "foo", "Kind": "removed"},
            {"Type": "NOTE", "Description": "whatever"},
            {"Type": "future-type", "Anything": [1, 2]}
        ]),
    );
    let dsa = |id: &str, version: &str| {
        list_record(
            id,
            json!([
                {"Type": "xref", "Bugs": ["CVE-2099-0001", "CVE-2099-0002"]},
                {"Type": "package", "Release": "bookworm", "Package": "foo", "Kind": "fixed", "Version": version},
                {"Type": "package", "Release": "trixie", "Package": "foo", "Kind": "fixed", "Version": version}
            ]),
        )
    };
    list.add("a", &cve).unwrap();
    list.add("b", &dsa("DSA-9001-1", "1.5-1+deb12u2")).unwrap();
    list.add("c", &dsa("DSA-9000-1", "1.5-1+deb12u1")).unwrap();
    let parsed = list.finish();
    check_invariants(&parsed);
    assert_eq!(parsed.records.len(), 2);

    let r = find(&parsed.records, "CVE-2099-0001");
    assert_eq!(r.aliases, ["DSA-9000-1", "DSA-9001-1"]);
    let bookworm = entry(r, "Debian:12", "foo");
    assert_eq!(bookworm.status, Status::AffectedNoFix);
    assert_eq!(
        bookworm.note.as_deref(),
        Some("postponed: revisit when fixed upstream")
    );
    assert_eq!(bookworm.severity.as_deref(), Some("high"));
    // The lower of the two advisories' versions replaces the inherited fix.
    let trixie = entry(r, "Debian:13", "foo");
    assert_eq!(trixie.status, fixed("1.5-1+deb12u1"));
    assert_eq!(trixie.note.as_deref(), Some("fixed by DSA-9000-1"));
    assert_eq!(trixie.severity.as_deref(), Some("high"));
    // `<removed>` in bullseye: no statement, and nothing inherited either.
    assert!(r.affected.iter().all(|a| a.ecosystem != "Debian:11"));

    let lone = find(&parsed.records, "CVE-2099-0002");
    assert_eq!(lone.aliases, ["DSA-9000-1", "DSA-9001-1"]);
    assert_eq!(lone.affected.len(), 2);
    assert_eq!(
        entry(lone, "Debian:12", "foo").status,
        fixed("1.5-1+deb12u1")
    );
}

fn malformed_list_records_are_rejected_by_id() {
    let cases = [
        (json!(["not an object"]), "annotation 0"),
        (
            json!([{"Type": "package", "Kind": "unfixed"}]),
            "without Package",
        ),
        (
            json!([{"Type": "package", "Package": "foo", "Kind": "fixed"}]),
            "without Version",
        ),
        (
            json!([{"Type": "package", "Package": "foo", "Kind": "fixed", "Version": "bad version"}]),
            "foo: dpkg version",
        ),
        (
            json!([{"Type": "package", "Package": "foo", "Kind": "fixd"}]),
            "unknown Kind",
        ),
        (json!({"not": "an array"}), "not an array"),
    ];
    for (annotations, reason) in cases {
        for id in ["CVE-2099-1000", "DLA-4000-1"] {
            let mut list = VulnList::default();
            let e = list
                .add("file.json", &list_record(id, annotations.clone()))
                .unwrap_err();
            assert_eq!(e.id, id);
            assert!(
                e.reason.contains(reason),
                "{id}: {:?} lacks {reason:?}",
                e.reason
            );
            assert!(list.is_empty());
        }
    }
    let twice = json!([{"Type": "package", "Package": "foo", "Kind": "unfixed"},
                       {"Type": "package", "Package": "foo", "Kind": "fixed", "Version": "1"}]);
    let e = VulnList::default()
        .add("f", &list_record("CVE-2099-1001", twice))
        .unwrap_err();
    assert!(
        e.reason.contains("two lines for foo in unstable"),
        "{}",
        e.reason
    );

    let mut list = VulnList::default();
    let e = list.add("CVE/x.json", &json!({"Header": {}})).unwrap_err();
    assert_eq!(e.id, "CVE/x.json");
    let ok = list_record("CVE-2099-1", json!([]));
    list.add("one.json", &ok).unwrap();
    let e = list.add("two.json", &ok).unwrap_err();
    assert_eq!(e.id, "CVE-2099-1");
    assert!(e.reason.contains("one.json"), "{}", e.reason);
    // A CVE without a Debian statement is not emitted.
    assert!(list.finish().records.is_empty());
}

fn tracker_json_vunnel_sample() {
    let path = data("debian/tracker-json-samples/vunnel-debian.json");
    let v = read_json(&path);
    assert!(looks_like_tracker_json(&v));
    assert!(!looks_like_vuln_list(&v));
    let parsed = parse_tracker_json(&v);
    check_invariants(&parsed);
    assert!(parsed.rejected.is_empty(), "{:?}", parsed.rejected);
    let ids: Vec<&str> = parsed.records.iter().map(|r| r.id.as_str()).collect();
    // CVE-2022-0358 has no releases: no record.
    assert_eq!(
        ids,
        [
            "CVE-2005-3111",
            "CVE-2007-2383",
            "CVE-2008-7220",
            "CVE-2013-1444",
            "CVE-2022-0456",
            "CVE-2025-53603"
        ]
    );
    let total: usize = parsed.records.iter().map(|r| r.affected.len()).sum();
    // sid is never an ecosystem: 3+3+3+3 (stretch, jessie, buster) + 4 + 3.
    assert_eq!(total, 19);

    let not_affected = entry(
        find(&parsed.records, "CVE-2007-2383"),
        "Debian:10",
        "prototypejs",
    );
    assert_eq!(not_affected.status, Status::NotAffected);
    assert_eq!(not_affected.severity.as_deref(), Some("unimportant"));

    let r = find(&parsed.records, "CVE-2008-7220");
    assert!(
        r.summary
            .starts_with("Unspecified vulnerability in Prototype")
    );
    let a = entry(r, "Debian:9", "prototypejs");
    assert_eq!(a.status, fixed("1.6.0.2-1"));
    assert_eq!(a.severity.as_deref(), Some("high"));

    let chromium = find(&parsed.records, "CVE-2022-0456");
    assert!(chromium.summary.chars().count() <= 200);
    let buster = entry(chromium, "Debian:10", "chromium");
    assert_eq!(buster.status, Status::EndOfLife);
    assert_eq!(buster.severity, None);
    assert_eq!(
        entry(chromium, "Debian:11", "chromium").status,
        fixed("98.0.4758.80-1~deb11u1")
    );
    assert_eq!(
        entry(find(&parsed.records, "CVE-2025-53603"), "Debian:13", "sope").status,
        fixed("5.12.1-2")
    );
}

fn tracker_json_osv_dev_mock() {
    let path = data("debian/tracker-json-samples/osvdev-debian_security_tracker_mock.json");
    let v = read_json(&path);
    assert!(looks_like_tracker_json(&v));
    let parsed = parse_tracker_json(&v);
    check_invariants(&parsed);
    assert!(parsed.rejected.is_empty(), "{:?}", parsed.rejected);
    assert_eq!(parsed.records.len(), 3);

    let r = find(&parsed.records, "CVE-2014-1424");
    assert_eq!(r.affected.len(), 4);
    assert!(r.affected.iter().all(|a| a.status == Status::NotAffected));

    let r = find(&parsed.records, "CVE-2016-1585");
    let bookworm = entry(r, "Debian:12", "apparmor");
    assert_eq!(bookworm.status, Status::AffectedNoFix);
    assert_eq!(bookworm.severity.as_deref(), Some("unimportant"));
    assert_eq!(entry(r, "Debian:13", "apparmor").status, fixed("3.0.12-1"));

    let a = entry(
        find(&parsed.records, "CVE-2017-6507"),
        "Debian:12",
        "apparmor",
    );
    assert_eq!(a.status, fixed("2.11.0-3"));
    assert_eq!(a.severity, None, "\"not yet assigned\" is no severity");
}

fn tracker_json_nodsa_and_merge() {
    let rel = |status: &str, extra: Value| {
        let mut r = json!({"status": status, "urgency": "low*", "repositories": {"bookworm": "1"}});
        r.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        r
    };
    let v = json!({
        "zlib": {"CVE-2023-45853": {"description": "MiniZip\n  overflow", "releases": {
            "bookworm": rel("open", json!({"nodsa": "contrib/minizip not built", "nodsa_reason": "ignored"})),
            "bullseye": rel("open", json!({"nodsa": "Minor issue", "nodsa_reason": "postponed"})),
            "buster": rel("open", json!({"nodsa": "Minor issue", "nodsa_reason": ""})),
            "trixie": rel("undetermined", json!({})),
            "sid": rel("open", json!({})),
            "woody": rel("open", json!({}))
        }}},
        "minizip": {"CVE-2023-45853": {"releases": {"bookworm": rel("resolved", json!({"fixed_version": "1.1-8+deb12u1"}))}}}
    });
    let parsed = parse_tracker_json(&v);
    check_invariants(&parsed);
    assert_eq!(parsed.records.len(), 1);
    let r = &parsed.records[0];
    assert_eq!(r.summary, "MiniZip overflow");
    assert_eq!(r.affected.len(), 5);
    let ignored = entry(r, "Debian:12", "zlib");
    assert_eq!(ignored.status, Status::WillNotFix);
    assert_eq!(
        ignored.note.as_deref(),
        Some("ignored (no DSA): contrib/minizip not built")
    );
    assert_eq!(ignored.severity.as_deref(), Some("low"));
    let postponed = entry(r, "Debian:11", "zlib");
    assert_eq!(postponed.status, Status::AffectedNoFix);
    assert_eq!(
        postponed.note.as_deref(),
        Some("postponed (no DSA): Minor issue")
    );
    assert_eq!(
        entry(r, "Debian:10", "zlib").note.as_deref(),
        Some("no DSA: Minor issue")
    );
    assert_eq!(
        entry(r, "Debian:13", "zlib").status,
        Status::UnderInvestigation
    );
    assert_eq!(
        entry(r, "Debian:12", "minizip").status,
        fixed("1.1-8+deb12u1")
    );
}

fn malformed_tracker_json_is_rejected_by_id() {
    let v = json!({
        "good": {"CVE-2099-0001": {"releases": {
            "bookworm": {"status": "resolved", "fixed_version": "1.0-1"},
            "sid": "never read"
        }}},
        "bad": {
            "CVE-2099-0002": {"releases": {"bookworm": {"status": "resolved", "fixed_version": "not a version"}}},
            "CVE-2099-0003": {"releases": {"bookworm": {"status": "fixed?"}}},
            "CVE-2099-0004": {"releases": {"bookworm": {"status": "resolved"}}},
            "CVE-2099-0005": {"releases": ["bookworm"]},
            "CVE-2099-0006": "text",
            "CVE-2099-0007": {"description": 7, "releases": {}}
        },
        "worse": ["not", "an", "object"]
    });
    let parsed = parse_tracker_json(&v);
    assert_eq!(parsed.records.len(), 1);
    assert_eq!(parsed.records[0].id, "CVE-2099-0001");
    let reasons: Vec<(&str, &str)> = parsed
        .rejected
        .iter()
        .map(|r| (r.id.as_str(), r.reason.as_str()))
        .collect();
    let expect = [
        ("worse", "not an object"),
        (
            "CVE-2099-0002",
            "source package bad: release bookworm: dpkg version",
        ),
        ("CVE-2099-0003", "unknown status \"fixed?\""),
        ("CVE-2099-0004", "resolved without fixed_version"),
        ("CVE-2099-0005", "releases is an array"),
        ("CVE-2099-0006", "not an object"),
        ("CVE-2099-0007", "description is a number"),
    ];
    assert_eq!(reasons.len(), expect.len(), "{reasons:?}");
    for (id, part) in expect {
        assert!(
            reasons.iter().any(|(i, r)| *i == id && r.contains(part)),
            "{id}: {part:?} not in {reasons:?}"
        );
    }
    let top = parse_tracker_json(&json!([1, 2]));
    assert_eq!(top.rejected.len(), 1);
}

fn security_support_ended_deb12() {
    let dir = data("debian/security-support");
    let file = dir.join("security-support-ended.deb12");
    let name = file.display().to_string();
    assert!(looks_like_security_support(&name));
    let parsed = parse_security_support(&name, &fs::read_to_string(&file).unwrap());
    check_invariants(&parsed);
    assert_eq!(parsed.records.len(), 15);
    assert_eq!(parsed.rejected.len(), 1, "{:?}", parsed.rejected);
    assert_eq!(parsed.rejected[0].id, "DEBIAN-EOL-12-php-horde.*");

    let r = find(&parsed.records, "DEBIAN-EOL-12-wpewebkit");
    assert_eq!(
        r.summary,
        "security support for wpewebkit ended in Debian 12: https://bugs.debian.org/1035794"
    );
    assert_eq!(r.published.as_deref(), Some("2023-05-09T00:00:00Z"));
    let a = entry(r, "Debian:12", "wpewebkit");
    assert_eq!(a.status, Status::EndOfLife);
    assert_eq!(a.last_affected.as_deref(), Some("2.38.6-1"));
    assert_eq!(
        a.note.as_deref(),
        Some("security support ended 2023-05-09: https://bugs.debian.org/1035794")
    );
    let suricata = entry(
        find(&parsed.records, "DEBIAN-EOL-12-suricata"),
        "Debian:12",
        "suricata",
    );
    assert_eq!(suricata.last_affected.as_deref(), Some("1:6.0.10-1"));
}

fn security_support_ended_older_releases() {
    let dir = data("debian/security-support");
    let parse = |n: &str| {
        let name = format!("security-support-ended.deb{n}");
        parse_security_support(&name, &fs::read_to_string(dir.join(&name)).unwrap())
    };
    let deb9 = parse("9");
    assert_eq!(deb9.records.len(), 20);
    assert_eq!(deb9.rejected.len(), 1);
    assert_eq!(deb9.rejected[0].id, "DEBIAN-EOL-9-node-.*");
    // Version 0: every version.
    let nasm = entry(
        find(&deb9.records, "DEBIAN-EOL-9-nasm-mozilla"),
        "Debian:9",
        "nasm-mozilla",
    );
    assert_eq!(nasm.last_affected, None);
    assert_eq!(nasm.status, Status::EndOfLife);
    assert_eq!(parse("10").records.len(), 8);
    assert_eq!(parse("11"), Parsed::default());

    for name in [
        "security-support-limited",
        "security-support-ended",
        "copyright",
    ] {
        assert!(!looks_like_security_support(name), "{name}");
    }
    let wrong = parse_security_support("security-support-limited", "adns  text");
    assert!(wrong.records.is_empty());
    assert_eq!(wrong.rejected.len(), 1);
}

fn security_support_malformed_lines() {
    let text = "# comment\nfoo\nbar  1.0  2024-01-01\nbar  1.1  2024-02-01\nbaz  1.0?x  2024-01-01\nqux 2.0-1 see notes\n";
    let parsed = parse_security_support("security-support-ended.deb13", text);
    assert_eq!(parsed.records.len(), 2);
    let ids: Vec<&str> = parsed.rejected.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "DEBIAN-EOL-13-foo",
            "DEBIAN-EOL-13-bar",
            "DEBIAN-EOL-13-baz"
        ]
    );
    assert!(parsed.rejected[1].reason.contains("line 3"));
    // No date: the whole rest is the details.
    let qux = find(&parsed.records, "DEBIAN-EOL-13-qux");
    assert_eq!(qux.published, None);
    assert_eq!(
        qux.affected[0].note.as_deref(),
        Some("security support ended: see notes")
    );
}

fn reimport_is_identical() {
    let path = data("debian/tracker-json-samples/vunnel-debian.json");
    let v = read_json(&path);
    let digests = |p: Parsed| p.records.iter().map(Record::digest).collect::<Vec<_>>();
    assert_eq!(
        digests(parse_tracker_json(&v)),
        digests(parse_tracker_json(&v))
    );
    assert_eq!(debian::FEED, "debian-tracker");
}

/// Arbitrary JSON, with the keys the parsers look for among the random ones.
fn arb_json() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("releases".to_owned()),
        Just("status".to_owned()),
        Just("fixed_version".to_owned()),
        Just("urgency".to_owned()),
        Just("nodsa".to_owned()),
        Just("nodsa_reason".to_owned()),
        Just("bookworm".to_owned()),
        Just("Header".to_owned()),
        Just("ID".to_owned()),
        Just("Annotations".to_owned()),
        Just("Type".to_owned()),
        Just("Package".to_owned()),
        Just("Kind".to_owned()),
        Just("Version".to_owned()),
        Just("Release".to_owned()),
        Just("Bugs".to_owned()),
        "\\PC{0,8}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        prop_oneof![
            Just("resolved"),
            Just("open"),
            Just("undetermined"),
            Just("0"),
            Just("fixed"),
            Just("package"),
            Just("xref"),
            Just("ignored"),
            Just("bookworm"),
            Just("CVE-2024-1"),
            Just("DSA-1-1"),
            Just("1:2.0-1"),
        ]
        .prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(5, 64, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key.clone(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    fn arbitrary_json_never_panics(v in arb_json(), w in arb_json()) {
        let _ = looks_like_tracker_json(&v);
        let _ = looks_like_vuln_list(&v);
        let parsed = parse_tracker_json(&v);
        for r in &parsed.records {
            prop_assert!(!r.affected.is_empty());
        }
        let mut list = VulnList::default();
        let _ = list.add("v", &v);
        let _ = list.add("w", &w);
        let _ = list.add("v-wrapped", &json!({"Header": {"ID": "DSA-1-1"}, "Annotations": [v]}));
        let _ = list.is_empty();
        let _ = list.finish();
    }

    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let text = String::from_utf8_lossy(&bytes);
        let _ = looks_like_security_support(&text);
        let _ = parse_security_support("security-support-ended.deb12", &text);
        let _ = parse_security_support(&text, &text);
        if let Ok(v) = serde_json::from_slice::<Value>(&bytes) {
            let _ = parse_tracker_json(&v);
        }
    }
}
