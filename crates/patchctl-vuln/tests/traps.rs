//! The known traps of CVE matching, each on the real records in ../shared/data, through
//! the real importers and the real matcher.

use std::collections::BTreeSet;
use std::path::PathBuf;

use patchctl_proto::agent::InstalledPackage;
use patchctl_testkit::{Harness, Need, trial};

mod common;
use patchctl_vuln::matcher::{Finding, Index};
use patchctl_vuln::model::Status;

fn main() -> std::process::ExitCode {
    let vuln_list_samples = [Need::SharedData("debian/vuln-list-debian-samples")];
    Harness::new()
        .test(trial!(xz_cve_2024_3094_is_not_affected_on_bookworm).needs(vuln_list_samples))
        .test(
            trial!(coreutils_cve_2016_2781_ignored_is_will_not_fix_and_not_fixable)
                .needs(vuln_list_samples),
        )
        .test(trial!(openssh_cve_2024_6387_is_fixed_by_dsa_5724_1).needs(vuln_list_samples))
        .test(
            trial!(util_linux_cve_2024_28085_is_matched_through_the_source_version)
                .needs(vuln_list_samples),
        )
        .test(
            trial!(almalinux_9_just_below_and_exactly_at_fixed_versions)
                .needs([Need::SharedData("osv/almalinux-9.zip")]),
        )
        .run()
}

fn index_of(paths: &[PathBuf]) -> Index {
    common::index_of_batches(common::batches(paths))
}

fn deb(name: &str, version: &str, source: &str, source_version: &str) -> InstalledPackage {
    InstalledPackage {
        name: name.into(),
        version: version.into(),
        arch: "amd64".into(),
        source_name: Some(source.into()),
        source_version: Some(source_version.into()),
        status: "installed".into(),
    }
}

fn rpm(name: &str, version: &str, source: &str) -> InstalledPackage {
    InstalledPackage {
        name: name.into(),
        version: version.into(),
        arch: "x86_64".into(),
        source_name: Some(source.into()),
        source_version: Some(
            version
                .split_once(':')
                .map_or(version, |(_, r)| r)
                .to_string(),
        ),
        status: "installed".into(),
    }
}

fn debian_index() -> Index {
    let d = common::data("");
    index_of(&[d.join("debian/vuln-list-debian-samples")])
}

fn about<'a>(f: &'a [Finding], id: &str) -> Vec<&'a Finding> {
    f.iter().filter(|f| f.concerns(id)).collect()
}

const BOOKWORM: &[&str] = &["Debian:12"];

fn ecos(e: &[&str]) -> Vec<String> {
    e.iter().map(|s| s.to_string()).collect()
}

fn xz_cve_2024_3094_is_not_affected_on_bookworm() {
    let idx = debian_index();
    let host = [
        deb("xz-utils", "5.4.1-0.2", "xz-utils", "5.4.1-0.2"),
        deb("liblzma5", "5.4.1-0.2", "xz-utils", "5.4.1-0.2"),
    ];
    let f = idx.match_host(&ecos(BOOKWORM), None, &host);
    let xz = about(&f, "CVE-2024-3094");
    assert_eq!(xz.len(), 1, "{f:#?}");
    assert_eq!(xz[0].status, Status::NotAffected);
    assert!(!xz[0].vulnerable && !xz[0].fixable);
    assert_eq!(xz[0].note.as_deref(), Some("Vulnerable code not present"));
    assert_eq!(xz[0].binaries, ["liblzma5", "xz-utils"]);
    // the backdoored 5.6.0 in trixie is vulnerable (the unstable fix applies there)
    let trixie = [deb("liblzma5", "5.6.0-0.2", "xz-utils", "5.6.0-0.2")];
    let f = idx.match_host(&ecos(&["Debian:13"]), None, &trixie);
    let xz = about(&f, "CVE-2024-3094");
    assert_eq!(xz[0].status.fixed_version(), Some("5.6.1+really5.4.5-1"));
    assert!(xz[0].fixable);
}

fn coreutils_cve_2016_2781_ignored_is_will_not_fix_and_not_fixable() {
    let idx = debian_index();
    let host = [deb("coreutils", "9.1-1", "coreutils", "9.1-1")];
    let f = idx.match_host(&ecos(BOOKWORM), None, &host);
    let c = about(&f, "CVE-2016-2781");
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].status, Status::WillNotFix);
    assert!(c[0].vulnerable);
    assert!(
        !c[0].fixable,
        "an ignored issue is never counted as fixable"
    );
}

fn openssh_cve_2024_6387_is_fixed_by_dsa_5724_1() {
    let idx = debian_index();
    let before = [deb(
        "openssh-server",
        "1:9.2p1-2+deb12u2",
        "openssh",
        "1:9.2p1-2+deb12u2",
    )];
    let f = idx.match_host(&ecos(BOOKWORM), None, &before);
    let o = about(&f, "CVE-2024-6387");
    assert_eq!(o.len(), 1, "{f:#?}");
    assert_eq!(o[0].status.fixed_version(), Some("1:9.2p1-2+deb12u3"));
    assert!(o[0].fixable);
    assert!(
        o[0].aliases.iter().any(|a| a == "DSA-5724-1"),
        "{:?}",
        o[0].aliases
    );
    assert_eq!(
        o[0].comparison,
        "installed 1:9.2p1-2+deb12u2 < fixed 1:9.2p1-2+deb12u3 (dpkg)"
    );
    assert_eq!(o[0].affected_range, ">= 0, < 1:9.2p1-2+deb12u3");
    // fixed by the DSA, and later point releases: not vulnerable
    for v in ["1:9.2p1-2+deb12u3", "1:9.2p1-2+deb12u6"] {
        let host = [deb("openssh-server", v, "openssh", v)];
        let f = idx.match_host(&ecos(BOOKWORM), None, &host);
        assert!(about(&f, "CVE-2024-6387").is_empty(), "{v}: {f:#?}");
    }
    // bullseye is not affected (code introduced later)
    let bullseye = [deb(
        "openssh-server",
        "1:8.4p1-5+deb11u3",
        "openssh",
        "1:8.4p1-5+deb11u3",
    )];
    let f = idx.match_host(&ecos(&["Debian:11"]), None, &bullseye);
    assert_eq!(about(&f, "CVE-2024-6387")[0].status, Status::NotAffected);
}

fn util_linux_cve_2024_28085_is_matched_through_the_source_version() {
    let idx = debian_index();
    // bsdutils carries an epoch its source does not have
    let host = [deb(
        "bsdutils",
        "1:2.38.1-5+deb12u3",
        "util-linux",
        "2.38.1-5+deb12u3",
    )];
    let f = idx.match_host(&ecos(BOOKWORM), None, &host);
    let u = about(&f, "CVE-2024-28085");
    assert_eq!(u.len(), 1, "{f:#?}");
    assert_eq!(u[0].package, "util-linux");
    assert_eq!(u[0].binaries, ["bsdutils"]);
    assert_eq!(
        u[0].installed_version, "2.38.1-5+deb12u3",
        "the source version, not the binary's 1:…"
    );
    assert_eq!(u[0].status, Status::AffectedNoFix);
    assert!(u[0].vulnerable && !u[0].fixable);
}

/// AlmaLinux 9: packages just below and exactly at the fixed versions of several ALSA
/// advisories, module packages and the kernel included.
fn almalinux_9_just_below_and_exactly_at_fixed_versions() {
    let d = common::data("");
    let idx = index_of(&[d.join("osv/almalinux-9.zip")]);
    let e = ecos(&["AlmaLinux:9"]);
    let vulnerable = |host: &[InstalledPackage], kernel: Option<&str>| -> BTreeSet<String> {
        idx.match_host(&e, kernel, host)
            .into_iter()
            .filter(|f| f.vulnerable)
            .map(|f| f.advisory)
            .collect()
    };
    // exactly at ALSA-2026:22312's fix: that one and the older ones are fixed, the newer
    // ALSA-2026:25239 is not
    let at = vulnerable(&[rpm("openssl-libs", "1:3.5.5-3.el9_8", "openssl")], None);
    assert!(
        !at.contains("ALSA-2026:22312")
            && !at.contains("ALSA-2026:19218")
            && !at.contains("ALSA-2026:1473"),
        "{at:?}"
    );
    assert!(at.contains("ALSA-2026:25239"), "{at:?}");
    // just below ALSA-2026:19218's fix
    let below = vulnerable(&[rpm("openssl-libs", "1:3.5.5-1.el9_8", "openssl")], None);
    for id in ["ALSA-2026:19218", "ALSA-2026:22312", "ALSA-2026:25239"] {
        assert!(below.contains(id), "{id}: {below:?}");
    }
    assert!(!below.contains("ALSA-2026:1473"));
    // sudo exactly at the newest fix: nothing
    assert!(vulnerable(&[rpm("sudo", "1.9.17p2-3.el9_8", "sudo")], None).is_empty());
    assert!(
        vulnerable(&[rpm("sudo", "1.9.17p2-2.el9_8", "sudo")], None).contains("ALSA-2026:19220")
    );

    // module stream nodejs:22: exactly at ALSA-2026:47058's fix → nothing, and the
    // nodejs:24 and nodejs:20 advisories never apply to it
    let n22 = "1:22.23.1-2.module_el9.8.0+285+5c3b0251";
    let at = vulnerable(&[rpm("nodejs", n22, "nodejs")], None);
    assert!(at.is_empty(), "{at:?}");
    let below = vulnerable(
        &[rpm(
            "nodejs",
            "1:22.23.1-1.module_el9.8.0+284+5c3b0251",
            "nodejs",
        )],
        None,
    );
    assert!(below.contains("ALSA-2026:47058"), "{below:?}");
    for other in ["ALSA-2026:47057", "ALSA-2026:7350", "ALSA-2026:7896"] {
        assert!(
            !below.contains(other),
            "{other} is another stream's: {below:?}"
        );
    }

    // kernel: only the running kernel's packages; headers, bpftool and an older kernel
    // still installed produce nothing
    let running = "5.14.0-611.49.1.el9_7";
    let host = [
        rpm("kernel-core", running, "kernel"),
        rpm("kernel-core", "5.14.0-503.23.2.el9_5", "kernel"),
        rpm("kernel-headers", "5.14.0-503.23.2.el9_5", "kernel"),
        rpm("bpftool", "7.4.0-503.23.2.el9_5", "kernel"),
    ];
    let got = idx.match_host(&e, Some(&format!("{running}.x86_64")), &host);
    assert!(
        got.iter()
            .all(|f| f.package == "kernel-core" && f.installed_version == running),
        "{got:#?}"
    );
    let ids: BTreeSet<&str> = got.iter().map(|f| f.advisory.as_str()).collect();
    assert!(ids.contains("ALSA-2026:A002") && ids.contains("ALSA-2026:A009"));
    assert!(
        !ids.contains("ALSA-2026:8921"),
        "the running kernel is exactly at its fix"
    );
}
