//! Tests of the matcher: source versus binary matching, statuses, the most specific
//! ecosystem, RPM module builds and streams, the running kernel, incremental updates.

use super::decide::module_streams;
use super::*;
use crate::model::{Affected, Record, Status};

fn pkg(name: &str, version: &str, source: Option<(&str, &str)>) -> InstalledPackage {
    InstalledPackage {
        name: name.into(),
        version: version.into(),
        arch: "amd64".into(),
        source_name: source.map(|s| s.0.into()),
        source_version: source.map(|s| s.1.into()),
        status: "installed".into(),
    }
}

fn fixed(eco: &str, package: &str, v: &str) -> Affected {
    Affected {
        ecosystem: eco.into(),
        package: package.into(),
        introduced: None,
        last_affected: None,
        status: Status::Fixed {
            fixed_version: v.into(),
        },
        note: None,
        severity: None,
    }
}

fn with(eco: &str, package: &str, status: Status) -> Affected {
    Affected {
        status,
        ..fixed(eco, package, "0")
    }
}

fn record(id: &str, summary: &str, affected: Vec<Affected>) -> SourcedRecord {
    SourcedRecord {
        source: "test".into(),
        imported_at: None,
        record: Record {
            id: id.into(),
            aliases: vec![],
            summary: summary.into(),
            severity: None,
            cvss_vector: None,
            published: None,
            modified: None,
            withdrawn: false,
            exploited: None,
            affected,
        },
    }
}

fn ecos(e: &[&str]) -> Vec<String> {
    e.iter().map(|s| s.to_string()).collect()
}

fn ids(f: &[Finding]) -> Vec<(String, String, &'static str)> {
    f.iter()
        .map(|f| (f.advisory.clone(), f.package.clone(), f.status.name()))
        .collect()
}

#[test]
fn debian_matches_the_source_version_not_the_binary_epoch() {
    let idx = Index::build([record(
        "CVE-1",
        "",
        vec![fixed("Debian:12", "util-linux", "2.38.1-5+deb12u1")],
    )]);
    let host = [
        pkg("bsdutils", "1:2.38.1-5", Some(("util-linux", "2.38.1-5"))),
        pkg("util-linux", "2.38.1-5", Some(("util-linux", "2.38.1-5"))),
    ];
    let f = idx.match_host(&ecos(&["Debian:12"]), None, &host);
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].binaries, ["bsdutils", "util-linux"]);
    assert_eq!(f[0].installed_version, "2.38.1-5");
    assert!(f[0].fixable && f[0].vulnerable);
    assert_eq!(
        f[0].comparison,
        "installed 2.38.1-5 < fixed 2.38.1-5+deb12u1 (dpkg)"
    );
    // another release's data never applies
    assert!(
        idx.match_host(&ecos(&["Debian:11"]), None, &host)
            .is_empty()
    );
    // at the fix: nothing
    let fixed_host = [pkg(
        "bsdutils",
        "1:2.38.1-5+deb12u1",
        Some(("util-linux", "2.38.1-5+deb12u1")),
    )];
    assert!(
        idx.match_host(&ecos(&["Debian:12"]), None, &fixed_host)
            .is_empty()
    );
}

#[test]
fn statuses_are_shown_as_what_they_are() {
    let idx = Index::build([
        record(
            "A",
            "",
            vec![with("Debian:12", "xz-utils", Status::NotAffected)],
        ),
        record(
            "B",
            "",
            vec![with("Debian:12", "coreutils", Status::WillNotFix)],
        ),
        record(
            "C",
            "",
            vec![with("Debian:12", "expat", Status::AffectedNoFix)],
        ),
    ]);
    let host = [
        pkg("xz-utils", "5.4.1-0.2", None),
        pkg("coreutils", "9.1-1", None),
        pkg("libexpat1", "2.5.0-1", Some(("expat", "2.5.0-1"))),
    ];
    let f = idx.match_host(&ecos(&["Debian:12"]), None, &host);
    let got = ids(&f);
    assert!(got.contains(&("A".into(), "xz-utils".into(), "not_affected")));
    assert!(got.contains(&("B".into(), "coreutils".into(), "will_not_fix")));
    assert!(got.contains(&("C".into(), "expat".into(), "affected_no_fix")));
    assert!(f.iter().all(|f| !f.fixable));
    assert!(!f.iter().find(|f| f.advisory == "A").unwrap().vulnerable);
}

#[test]
fn most_specific_ecosystem_decides() {
    let idx = Index::build([record(
        "U",
        "",
        vec![
            with("Ubuntu:16.04:LTS", "wayland", Status::WillNotFix),
            fixed(
                "Ubuntu:Pro:16.04:LTS",
                "wayland",
                "1.12.0-1~ubuntu16.04.3+esm1",
            ),
        ],
    )]);
    let host = [pkg(
        "libwayland-client0",
        "1.12.0-1~ubuntu16.04.3+esm1",
        Some(("wayland", "1.12.0-1~ubuntu16.04.3+esm1")),
    )];
    assert!(
        idx.match_host(
            &ecos(&["Ubuntu:16.04:LTS", "Ubuntu:Pro:16.04:LTS"]),
            None,
            &host
        )
        .is_empty()
    );
    let f = idx.match_host(&ecos(&["Ubuntu:16.04:LTS"]), None, &host);
    assert_eq!(ids(&f), [("U".into(), "wayland".into(), "will_not_fix")]);
}

#[test]
fn rpm_alternative_builds_and_module_streams() {
    let idx = Index::build([
        record(
            "ALSA-1",
            "Moderate: oci security update",
            vec![
                fixed(
                    "AlmaLinux:8",
                    "oci-umount",
                    "2:2.3.4-2.module_el8.5.0+119+9a9ec082",
                ),
                fixed(
                    "AlmaLinux:8",
                    "oci-umount",
                    "2:2.3.4-2.module_el8.4.0+2496+12421f43",
                ),
            ],
        ),
        record(
            "ALSA-18",
            "Important: nodejs:18 security update",
            vec![fixed(
                "AlmaLinux:8",
                "nodejs",
                "1:18.14.2-3.module_el8.8.0+30+e3312493",
            )],
        ),
        record(
            "ALSA-20",
            "Important: nodejs:20 security update",
            vec![fixed(
                "AlmaLinux:8",
                "nodejs",
                "1:20.5.1-1.module_el8.8.0+31+aaaaaaaa",
            )],
        ),
        record(
            "ALSA-plain",
            "Important: nodejs security update",
            vec![fixed("AlmaLinux:8", "nodejs", "1:16.20.2-1.el8")],
        ),
    ]);
    let e = ecos(&["AlmaLinux:8"]);
    // at the 8.4 build: fixed (one of the alternatives)
    let at = [pkg(
        "oci-umount",
        "2:2.3.4-2.module_el8.4.0+2496+12421f43",
        None,
    )];
    assert!(idx.match_host(&e, None, &at).is_empty());
    // below both: vulnerable, the lowest fix shown
    let below = [pkg(
        "oci-umount",
        "2:2.3.4-1.module_el8.4.0+2000+12421f43",
        None,
    )];
    let f = idx.match_host(&e, None, &below);
    assert_eq!(
        f[0].status.fixed_version(),
        Some("2:2.3.4-2.module_el8.4.0+2496+12421f43")
    );
    // nodejs 18 module: only the nodejs:18 advisory applies
    let n18 = [pkg(
        "nodejs",
        "1:18.10.0-1.module_el8.7.0+10+bbbbbbbb",
        None,
    )];
    assert_eq!(
        ids(&idx.match_host(&e, None, &n18)),
        [("ALSA-18".into(), "nodejs".into(), "fixed")]
    );
    // plain nodejs 16: module advisories do not apply
    let n16 = [pkg("nodejs", "1:16.19.0-1.el8", None)];
    assert_eq!(
        ids(&idx.match_host(&e, None, &n16)),
        [("ALSA-plain".into(), "nodejs".into(), "fixed")]
    );
}

#[test]
fn rpm_falls_back_to_the_source_rpm() {
    let idx = Index::build([record(
        "ALSA-2",
        "",
        vec![fixed("AlmaLinux:9", "openssl", "1:3.0.7-27.el9")],
    )]);
    let host = [pkg(
        "openssl-fips-provider",
        "1:3.0.7-20.el9",
        Some(("openssl", "3.0.7-20.el9")),
    )];
    let f = idx.match_host(&ecos(&["AlmaLinux:9"]), None, &host);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].matched_by, MatchedBy::SourceRpm);
    assert_eq!(f[0].installed_version, "1:3.0.7-20.el9");
}

#[test]
fn only_the_running_kernel_counts() {
    let idx = Index::build([
        record("K", "", vec![fixed("Debian:12", "linux", "6.1.90-1")]),
        record(
            "RK",
            "",
            vec![
                fixed("AlmaLinux:9", "kernel-core", "5.14.0-427.el9"),
                fixed("AlmaLinux:9", "kernel-headers", "5.14.0-427.el9"),
                fixed("AlmaLinux:9", "bpftool", "7.3.0-427.el9"),
            ],
        ),
    ]);
    let deb = [
        pkg(
            "linux-image-6.1.0-18-amd64",
            "6.1.76-1",
            Some(("linux-signed-amd64", "6.1.76+1")),
        ),
        pkg(
            "linux-image-6.1.0-17-amd64",
            "6.1.69-1",
            Some(("linux-signed-amd64", "6.1.69+1")),
        ),
        pkg(
            "linux-headers-6.1.0-18-amd64",
            "6.1.76-1",
            Some(("linux", "6.1.76-1")),
        ),
        pkg("linux-libc-dev", "6.1.76-1", Some(("linux", "6.1.76-1"))),
    ];
    let f = idx.match_host(&ecos(&["Debian:12"]), Some("6.1.0-18-amd64"), &deb);
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].binaries, ["linux-image-6.1.0-18-amd64"]);
    assert_eq!(f[0].installed_version, "6.1.76-1");
    // running kernel unknown: the newest image is taken
    assert_eq!(
        idx.match_host(&ecos(&["Debian:12"]), None, &deb)[0].binaries,
        ["linux-image-6.1.0-18-amd64"]
    );
    // already running a fixed kernel: headers of the old one do not count
    let f = idx.match_host(&ecos(&["Debian:12"]), Some("6.1.0-21-amd64"), &deb);
    assert!(f.is_empty(), "{f:?}");

    let mut core = pkg(
        "kernel-core",
        "5.14.0-362.el9",
        Some(("kernel", "5.14.0-362.el9")),
    );
    core.arch = "x86_64".into();
    let rpm = [
        core,
        pkg(
            "kernel-headers",
            "5.14.0-362.el9",
            Some(("kernel", "5.14.0-362.el9")),
        ),
        pkg(
            "bpftool",
            "7.2.0-362.el9",
            Some(("kernel", "5.14.0-362.el9")),
        ),
    ];
    let f = idx.match_host(&ecos(&["AlmaLinux:9"]), Some("5.14.0-362.el9.x86_64"), &rpm);
    assert_eq!(ids(&f), [("RK".into(), "kernel-core".into(), "fixed")]);
}

#[test]
fn candidate_source_versions() {
    assert_eq!(
        candidate_source_version("1:2.38.1-5", Some("2.38.1-5"), "1:2.38.1-5+deb12u1"),
        "2.38.1-5+deb12u1"
    );
    assert_eq!(
        candidate_source_version("1.0-1+b1", Some("1.0-1"), "1.0-2+b1"),
        "1.0-2"
    );
    assert_eq!(candidate_source_version("1.0-1", None, "1.0-2"), "1.0-2");
    assert_eq!(
        candidate_source_version("1:9.2p1-2", Some("1:9.2p1-2"), "1:9.2p1-2+deb12u3"),
        "1:9.2p1-2+deb12u3"
    );
}

#[test]
fn incremental_upsert_and_remove() {
    let mut idx = Index::build([record("A", "", vec![fixed("Debian:12", "a", "2")])]);
    assert_eq!(idx.len(), 1);
    let touched = idx.upsert(record("A", "", vec![fixed("Debian:12", "b", "2")]));
    assert_eq!(
        touched,
        [
            ("Debian:12".to_string(), "a".to_string()),
            ("Debian:12".to_string(), "b".to_string())
        ]
    );
    assert!(!idx.has("Debian:12", "a") && idx.has("Debian:12", "b"));
    assert_eq!(idx.remove("test", "A").len(), 1);
    assert!(idx.is_empty());
}

#[test]
fn streams_from_summaries() {
    assert_eq!(
        module_streams("Moderate: nodejs:18 security update"),
        ["18"]
    );
    assert_eq!(
        module_streams("Important: php:8.1 and ruby:3.1 update"),
        ["3.1", "8.1"]
    );
    assert!(module_streams("Important: container-tools:rhel8 security update").is_empty());
}

#[test]
fn a_record_naming_only_the_source_rpm_is_not_hidden_by_one_naming_the_binary() {
    // Red Hat: a fixed CVE lists the binaries, an unfixed one names only the source
    let idx = Index::build([
        record(
            "CVE-FIXED",
            "",
            vec![fixed("Red Hat:9", "openssl-libs", "1:3.0.7-27.el9")],
        ),
        record(
            "CVE-UNFIXED",
            "",
            vec![with("Red Hat:9", "openssl", Status::AffectedNoFix)],
        ),
        record(
            "CVE-BOTH",
            "",
            vec![
                fixed("Red Hat:9", "openssl-libs", "1:3.0.7-20.el9"),
                with("Red Hat:9", "openssl", Status::WillNotFix),
            ],
        ),
    ]);
    let host = [pkg(
        "openssl-libs",
        "1:3.0.7-24.el9",
        Some(("openssl", "3.0.7-24.el9")),
    )];
    let f = idx.match_host(&ecos(&["Red Hat:9"]), None, &host);
    let mut got: Vec<_> = f
        .iter()
        .map(|f| (f.advisory.as_str(), f.status.name(), f.matched_by))
        .collect();
    got.sort();
    // CVE-BOTH names the binary: its binary statement decides (resolved at -20)
    assert_eq!(
        got,
        [
            ("CVE-FIXED", "fixed", MatchedBy::Binary),
            ("CVE-UNFIXED", "affected_no_fix", MatchedBy::SourceRpm),
        ]
    );
}

#[test]
fn a_version_that_cannot_be_compared_is_an_unknown_version_finding() {
    let idx = Index::build([
        record("DSA-1", "", vec![fixed("Debian:12", "foo", "1.2-1")]),
        record(
            "DSA-2",
            "",
            vec![fixed("Debian:12", "bar", "not a version!")],
        ),
    ]);
    // an installed version dpkg rejects (a space), a stated one it rejects
    let host = [
        pkg("foo", "1.0 1", Some(("foo", "1.0 1"))),
        pkg("bar", "1.0-1", Some(("bar", "1.0-1"))),
    ];
    let f = idx.match_host(&ecos(&["Debian:12"]), None, &host);
    assert_eq!(f.len(), 2, "{f:?}");
    for f in &f {
        assert_eq!(f.status.name(), "unknown_version", "{f:?}");
        assert!(!f.vulnerable && !f.fixable, "{f:?}");
        assert!(
            f.comparison.starts_with("cannot compare"),
            "{}",
            f.comparison
        );
    }
    let failed = |id: &str| {
        let f = f.iter().find(|f| f.advisory == id).unwrap();
        match &f.status {
            Status::UnknownVersion { failed_version } => failed_version.clone(),
            s => panic!("{s:?}"),
        }
    };
    assert_eq!(failed("DSA-1"), "1.0 1");
    assert_eq!(failed("DSA-2"), "not a version!");
    // the JSON a client sees names the status and the text
    let json = serde_json::to_value(&f[0]).unwrap();
    assert_eq!(json["status"], "unknown_version");
    assert!(json["failed_version"].is_string());
    // a comparable installed version is decided as usual
    let ok = [pkg("foo", "1.0-1", Some(("foo", "1.0-1")))];
    let f = idx.match_host(&ecos(&["Debian:12"]), None, &ok);
    assert_eq!(ids(&f), [("DSA-1".into(), "foo".into(), "fixed")]);
}

#[test]
fn findings_about_a_known_exploited_cve_carry_the_catalog_entry() {
    let mut kev = record("CVE-2024-6387", "Known exploited (OpenBSD OpenSSH)", vec![]);
    kev.source = "cisa-kev".into();
    kev.record.exploited = Some(crate::model::Exploited {
        catalog: "CISA KEV 2025.08.25".into(),
        date_added: "2024-07-01".into(),
        due_date: Some("2024-07-22".into()),
        ransomware: false,
        required_action: None,
    });
    let mut dsa = record(
        "DSA-5724-1",
        "",
        vec![fixed("Debian:12", "openssh", "1:9.2p1-2+deb12u3")],
    );
    dsa.record.aliases = vec!["CVE-2024-6387".into()];
    let mut idx = Index::build([dsa, kev.clone()]);
    let host = [pkg(
        "openssh-server",
        "1:9.2p1-2+deb12u2",
        Some(("openssh", "1:9.2p1-2+deb12u2")),
    )];
    let f = idx.match_host(&ecos(&["Debian:12"]), None, &host);
    assert_eq!(f.len(), 1);
    let e = f[0].known_exploited.as_ref().expect("marked as exploited");
    assert_eq!(e.date_added, "2024-07-01");
    // the catalog drops it: the mark goes
    idx.remove("cisa-kev", "CVE-2024-6387");
    let f = idx.match_host(&ecos(&["Debian:12"]), None, &host);
    assert!(f[0].known_exploited.is_none());
}
