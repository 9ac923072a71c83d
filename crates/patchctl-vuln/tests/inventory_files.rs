//! The offline inventory readers of `patchctl vulns check` on real-format inputs: dpkg
//! status excerpts, `rpm -qa` listings, the apk databases kept in the agent's test data,
//! `patchctl-agent scan --print` documents, and this machine's own dpkg database.

use std::path::Path;

use chrono::{TimeZone, Utc};
use patchctl_proto::agent::{InstalledPackage, InventoryUpload, OsInfo, SystemInfo};
use patchctl_proto::scan::{PackageRow, ScanBody, ScanState, ScanUpload};
use patchctl_testkit::{Harness, Need, trial};
use patchctl_vuln::inventory::{
    Format, parse_apk_installed, parse_dpkg_status, parse_os_release, parse_rpm_qa,
    parse_scan_print,
};
use proptest::prelude::*;

fn main() -> std::process::ExitCode {
    Harness::new()
        .test(trial!(dpkg_status_gives_source_packages_and_versions))
        .test(trial!(malformed_dpkg_status_names_the_stanza_line))
        .test(trial!(rpm_qa_gives_epoch_versions_and_source_rpms))
        .test(trial!(
            the_agents_rpm_fixture_reads_the_same_in_both_layouts
        ))
        .test(trial!(malformed_rpm_lines_are_named))
        .test(trial!(apk_databases_from_real_alpine_systems))
        .test(trial!(malformed_apk_blocks_are_named))
        .test(trial!(os_release_of_a_debian_host))
        .test(trial!(scan_print_documents))
        .test(trial!(scan_print_refusals_say_why))
        .test(trial!(this_machines_dpkg_database).needs([Need::File("/var/lib/dpkg/status")]))
        .test(trial!(never_panics_on_bytes))
        .test(trial!(never_panics_on_format_like_text))
        .test(trial!(never_panics_on_json))
        .run()
}

/// Reads a file of this machine the test needs: the harness runs the test only when the
/// file is there (`Need::File`).
fn needed(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The agent's real inventory samples (kept in the repository).
const ALPINE_320: &str =
    include_str!("../../patchctl-proto/tests/data/inventory/installed-alpine3.20-x86_64");
const ALPINE_314: &str =
    include_str!("../../patchctl-proto/tests/data/inventory/installed-alpine3.14-armv7");
const RPM_TAB: &str =
    include_str!("../../patchctl-proto/tests/data/inventory/rpm-qa-almalinux9.txt");
const RPM_SPACE: &str =
    include_str!("../../patchctl-proto/tests/data/inventory/rpm-qa-almalinux9-space.txt");

fn pkg(name: &str, version: &str, arch: &str, source: Option<(&str, &str)>) -> InstalledPackage {
    InstalledPackage {
        name: name.into(),
        version: version.into(),
        arch: arch.into(),
        source_name: source.map(|s| s.0.into()),
        source_version: source.map(|s| s.1.into()),
        status: "installed".into(),
    }
}

fn find<'a>(packages: &'a [InstalledPackage], name: &str) -> &'a InstalledPackage {
    packages
        .iter()
        .find(|p| p.name == name)
        .unwrap_or_else(|| panic!("{name} is not among the parsed packages"))
}

/// Stanzas as Debian 12 writes them (fields abridged).
const DPKG_STATUS: &str = "\
Package: bsdutils
Essential: yes
Status: install ok installed
Priority: required
Section: utils
Installed-Size: 355
Maintainer: util-linux packagers <util-linux@packages.debian.org>
Architecture: amd64
Multi-Arch: foreign
Source: util-linux (2.38.1-5+deb12u3)
Version: 1:2.38.1-5+deb12u3
Pre-Depends: libc6 (>= 2.34), libsystemd0
Description: basic utilities from 4.4BSD-Lite
 This package contains the bare minimum of BSD utilities.

Package: openssh-server
Status: install ok installed
Priority: optional
Section: net
Installed-Size: 1851
Maintainer: Debian OpenSSH Maintainers <debian-ssh@lists.debian.org>
Architecture: amd64
Multi-Arch: foreign
Source: openssh
Version: 1:9.2p1-2+deb12u6
Replaces: openssh-client (<< 1:7.9p1-8), ssh (<< 1:6.5p1-2)
Conffiles:
 /etc/default/ssh 500e3cf069fe9a7b9936108eb9d9c035
 /etc/ssh/moduli 2ab3ee5e4e6e4e6a2c8d4d3b0b5b3c5d
Description: secure shell (SSH) server, for secure access from remote machines
 This is the portable version of OpenSSH.

Package: util-linux
Essential: yes
Status: install ok installed
Architecture: amd64
Version: 2.38.1-5+deb12u3

Package: mawk
Status: deinstall ok config-files
Architecture: amd64
Version: 1.3.4.20200120-3.1

Package: xz-utils
Status: install ok half-configured
Architecture: amd64
Source: xz-utils
Version: 5.4.1-0.2
";

fn dpkg_status_gives_source_packages_and_versions() {
    let packages = parse_dpkg_status(DPKG_STATUS).unwrap();
    let names: Vec<&str> = packages.iter().map(|p| p.name.as_str()).collect();
    // mawk's configuration files are all that is left of it: not installed.
    assert_eq!(
        names,
        ["bsdutils", "openssh-server", "util-linux", "xz-utils"]
    );
    // The epoch is on the binary only: the source version is the one to compare.
    assert_eq!(
        packages[0],
        pkg(
            "bsdutils",
            "1:2.38.1-5+deb12u3",
            "amd64",
            Some(("util-linux", "2.38.1-5+deb12u3"))
        )
    );
    // `Source: openssh` without a version: the binary's version.
    assert_eq!(
        packages[1],
        pkg(
            "openssh-server",
            "1:9.2p1-2+deb12u6",
            "amd64",
            Some(("openssh", "1:9.2p1-2+deb12u6"))
        )
    );
    // No Source field: the package is its own source.
    assert_eq!(
        packages[2],
        pkg(
            "util-linux",
            "2.38.1-5+deb12u3",
            "amd64",
            Some(("util-linux", "2.38.1-5+deb12u3"))
        )
    );
    // A package dpkg left half-configured keeps dpkg's word.
    assert_eq!(packages[3].status, "half-configured");
    assert_eq!(packages[3].source_version.as_deref(), Some("5.4.1-0.2"));
}

fn malformed_dpkg_status_names_the_stanza_line() {
    let text = format!(
        "{DPKG_STATUS}\nPackage: broken\nStatus: install ok installed\nArchitecture: amd64\n\n\
         Package: spaced\nStatus: install ok installed\nVersion: 1.0 2\n"
    );
    let err = parse_dpkg_status(&text).unwrap_err().in_file("status.copy");
    assert_eq!(err.format(), Format::DpkgStatus);
    assert_eq!(
        err.problems(),
        [
            "stanza at line 50 (package broken): no Version field",
            "stanza at line 54 (package spaced): Version \"1.0 2\" contains white space",
        ]
    );
    let msg = err.to_string();
    assert!(
        msg.starts_with("status.copy: not a usable dpkg status file: stanza at line 50"),
        "{msg}"
    );
    assert!(
        msg.ends_with("(use a copy of the host's /var/lib/dpkg/status)"),
        "{msg}"
    );
    // An rpm listing given as a dpkg status file is refused line by line.
    let err = parse_dpkg_status(RPM_QA).unwrap_err();
    assert!(
        err.problems()[0].starts_with("stanza at line 1: not a field"),
        "{err}"
    );
    // Nothing installed is no inventory.
    let err = parse_dpkg_status("").unwrap_err().to_string();
    assert!(err.contains("it lists no installed package"), "{err}");
}

/// `rpm -qa --qf '%{NAME} %{EPOCHNUM}:%{VERSION}-%{RELEASE} %{ARCH} %{SOURCERPM}\n'` on
/// AlmaLinux 9, with a locally built package that has no source RPM.
const RPM_QA: &str = "\
gpg-pubkey 0:b86b3716-61e69f29 (none) (none)
almalinux-release 0:9.4-1.el9 x86_64 almalinux-release-9.4-1.el9.src.rpm
openssl-libs 1:3.0.7-27.el9 x86_64 openssl-3.0.7-27.el9.src.rpm
nodejs 1:18.19.1-1.module_el9.3.0+59+28b95644 x86_64 nodejs-18.19.1-1.module_el9.3.0+59+28b95644.src.rpm
kernel-core 0:5.14.0-427.13.1.el9_4 x86_64 kernel-5.14.0-427.13.1.el9_4.src.rpm
tzdata 0:2024a-1.el9 noarch tzdata-2024a-1.el9.src.rpm
site-agent 0:2.1-3 x86_64 (none)
";

fn rpm_qa_gives_epoch_versions_and_source_rpms() {
    let packages = parse_rpm_qa(RPM_QA).unwrap();
    // gpg-pubkey is a key, not a package.
    assert_eq!(packages.len(), 6);
    assert!(packages.iter().all(|p| p.name != "gpg-pubkey"));
    // Epoch 0 is not written, as AlmaLinux writes fixed versions.
    assert_eq!(
        packages[0],
        pkg(
            "almalinux-release",
            "9.4-1.el9",
            "x86_64",
            Some(("almalinux-release", "9.4-1.el9"))
        )
    );
    // Epoch 1 is, on the binary; the source RPM file name carries none.
    assert_eq!(
        *find(&packages, "openssl-libs"),
        pkg(
            "openssl-libs",
            "1:3.0.7-27.el9",
            "x86_64",
            Some(("openssl", "3.0.7-27.el9"))
        )
    );
    // A module package (ALSA-2024:0950 fixes nodejs at exactly this version).
    assert_eq!(
        *find(&packages, "nodejs"),
        pkg(
            "nodejs",
            "1:18.19.1-1.module_el9.3.0+59+28b95644",
            "x86_64",
            Some(("nodejs", "18.19.1-1.module_el9.3.0+59+28b95644"))
        )
    );
    assert_eq!(
        find(&packages, "kernel-core").source_name.as_deref(),
        Some("kernel")
    );
    assert_eq!(find(&packages, "tzdata").arch, "noarch");
    // No source RPM: no source package.
    assert_eq!(
        *find(&packages, "site-agent"),
        pkg("site-agent", "2.1-3", "x86_64", None)
    );
}

fn the_agents_rpm_fixture_reads_the_same_in_both_layouts() {
    let space = parse_rpm_qa(RPM_SPACE).unwrap();
    assert_eq!(parse_rpm_qa(RPM_TAB).unwrap(), space);
    assert_eq!(
        *find(&space, "npm"),
        pkg(
            "npm",
            "1:10.2.4-1.20.11.1.1.module_el9.3.0+88+29afeaa2",
            "x86_64",
            Some(("nodejs", "20.11.1-1.module_el9.3.0+88+29afeaa2"))
        )
    );
}

fn malformed_rpm_lines_are_named() {
    let text = format!("{RPM_QA}openssl-libs 1:3.0.7 x86_64 openssl-3.0.7-27.el9.src.rpm\nbash\n");
    let err = parse_rpm_qa(&text).unwrap_err().in_file("qa.txt");
    assert_eq!(
        err.problems(),
        [
            "line 8: version is not EPOCH:VERSION-RELEASE: \"openssl-libs 1:3.0.7 x86_64 openssl-3.0.7-27.el9.src.rpm\"",
            "line 9: expected 4 space-separated fields: \"bash\"",
        ]
    );
    let msg = err.to_string();
    assert!(
        msg.starts_with("qa.txt: not a usable rpm -qa listing: line 8:"),
        "{msg}"
    );
    assert!(
        msg.contains("produce it on the host with: rpm -qa --qf"),
        "{msg}"
    );
    // Only keys: no inventory.
    let err = parse_rpm_qa("gpg-pubkey 0:b86b3716-61e69f29 (none) (none)\n").unwrap_err();
    assert_eq!(err.problems(), ["it lists no installed package"]);
}

fn apk_databases_from_real_alpine_systems() {
    let packages = parse_apk_installed(ALPINE_320).unwrap();
    assert_eq!(packages.len(), 20);
    // The origin is the source package; the source version is the package's own.
    assert_eq!(
        *find(&packages, "libcrypto3"),
        pkg(
            "libcrypto3",
            "3.3.1-r3",
            "x86_64",
            Some(("openssl", "3.3.1-r3"))
        )
    );
    assert_eq!(
        *find(&packages, "scanelf"),
        pkg(
            "scanelf",
            "1.3.7-r2",
            "x86_64",
            Some(("pax-utils", "1.3.7-r2"))
        )
    );
    let packages = parse_apk_installed(ALPINE_314).unwrap();
    assert_eq!(
        *find(&packages, "libcrypto1.1"),
        pkg(
            "libcrypto1.1",
            "1.1.1k-r0",
            "armv7",
            Some(("openssl", "1.1.1k-r0"))
        )
    );
}

fn malformed_apk_blocks_are_named() {
    let text = "P:musl\nV:1.2.5-r0\nA:x86_64\n\nP:busybox\nA:x86_64\n\nP:x\nV:1-r0\nnot a line\n";
    let err = parse_apk_installed(text).unwrap_err();
    assert_eq!(
        err.problems(),
        [
            "block at line 5 (package busybox): no V (version) field",
            "block at line 8 (package x): not a K:value line: \"not a line\"",
        ]
    );
    assert!(
        err.to_string()
            .contains("use a copy of the host's /lib/apk/db/installed")
    );
}

fn debian_system() -> SystemInfo {
    SystemInfo {
        hostname: "web-1".into(),
        os: parse_os_release(
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\n\
             VERSION_ID=\"12\"\nVERSION=\"12 (bookworm)\"\nVERSION_CODENAME=bookworm\nID=debian\n",
        ),
        kernel: "6.1.0-21-amd64".into(),
        arch: "x86_64".into(),
        ..SystemInfo::default()
    }
}

fn debian_state() -> ScanState {
    let packages = parse_dpkg_status(DPKG_STATUS).unwrap();
    let mut state = ScanState {
        system: debian_system(),
        package_manager: Some("dpkg".into()),
        packages: packages.iter().map(PackageRow::from_package).collect(),
        updates: None,
    };
    state.canonicalize();
    state
}

fn os_release_of_a_debian_host() {
    assert_eq!(
        debian_system().os,
        OsInfo {
            id: "debian".into(),
            id_like: vec![],
            version_id: "12".into(),
            version_codename: "bookworm".into(),
            pretty_name: "Debian GNU/Linux 12 (bookworm)".into(),
        }
    );
    let alma = parse_os_release(
        "NAME=\"AlmaLinux\"\nVERSION=\"9.4 (Seafoam Ocelot)\"\nID=\"almalinux\"\n\
         ID_LIKE=\"rhel centos fedora\"\n# a comment\nVERSION_ID='9.4'\n",
    );
    assert_eq!(alma.id, "almalinux");
    assert_eq!(alma.id_like, ["rhel", "centos", "fedora"]);
    assert_eq!(alma.version_id, "9.4");
}

fn scan_print_documents() {
    let state = debian_state();
    let want = parse_dpkg_status(DPKG_STATUS).unwrap();
    let sorted = |mut v: Vec<InstalledPackage>| {
        v.sort_by(|a, b| (&a.name, &a.version).cmp(&(&b.name, &b.version)));
        v
    };
    let at = Utc.with_ymd_and_hms(2026, 8, 21, 10, 0, 0).unwrap();
    // What `patchctl-agent scan --print` prints: an upload with the full state.
    let upload = ScanUpload {
        scanned_at: at,
        digest: state.digest(),
        body: ScanBody::Full {
            state: state.clone(),
        },
        reboot: None,
    };
    let (system, packages) = parse_scan_print(&serde_json::to_string(&upload).unwrap()).unwrap();
    assert_eq!(system, Some(debian_system()));
    assert_eq!(sorted(packages.clone()), sorted(want.clone()));
    let bsdutils = find(&packages, "bsdutils");
    assert_eq!(bsdutils.source_name.as_deref(), Some("util-linux"));
    assert_eq!(bsdutils.source_version.as_deref(), Some("2.38.1-5+deb12u3"));
    assert_eq!(find(&packages, "xz-utils").status, "half-configured");

    // A bare state, pretty-printed.
    let (system, packages) =
        parse_scan_print(&serde_json::to_string_pretty(&state).unwrap()).unwrap();
    assert_eq!(system.unwrap().os.version_codename, "bookworm");
    assert_eq!(sorted(packages), sorted(want.clone()));

    // The v1 inventory upload.
    let v1 = InventoryUpload {
        scanned_at: at,
        system: debian_system(),
        package_manager: Some("dpkg".into()),
        packages: want.clone(),
    };
    let (system, packages) = parse_scan_print(&serde_json::to_string(&v1).unwrap()).unwrap();
    assert_eq!(system.unwrap().hostname, "web-1");
    assert_eq!(packages, want);

    // A state without a release: the os-release must come from elsewhere.
    let mut anonymous = state.clone();
    anonymous.system.os = OsInfo::default();
    let (system, _) = parse_scan_print(&serde_json::to_string(&anonymous).unwrap()).unwrap();
    assert_eq!(system, None);
}

fn scan_print_refusals_say_why() {
    let state = debian_state();
    let at = Utc.with_ymd_and_hms(2026, 8, 21, 10, 0, 0).unwrap();
    for body in [
        ScanBody::Unchanged,
        ScanBody::Delta {
            base: "0".repeat(64),
            system: None,
            added: state.packages[..1].to_vec(),
            removed: vec![],
            updates: None,
        },
    ] {
        let upload = ScanUpload {
            scanned_at: at,
            digest: state.digest(),
            body,
            reboot: None,
        };
        let err = parse_scan_print(&serde_json::to_string(&upload).unwrap()).unwrap_err();
        assert_eq!(
            err.problems(),
            ["this upload holds only changes against an earlier scan, not the inventory"]
        );
        assert!(err.to_string().contains("patchctl-agent scan --print"));
    }
    // Broken JSON names its line and column.
    let err = parse_scan_print("{\n  \"system\": {\n    \"hostname\": 3,\n")
        .unwrap_err()
        .in_file("scan.json");
    let msg = err.to_string();
    assert!(
        msg.starts_with(
            "scan.json: not a usable patchctl-agent scan --print document: invalid JSON: "
        ),
        "{msg}"
    );
    assert!(msg.contains("line 4 column 0"), "{msg}");
    // A type error, too.
    let mut doc = serde_json::to_value(&state).unwrap();
    doc["packages"][1] = serde_json::json!(["name-only"]);
    let err = parse_scan_print(&serde_json::to_string_pretty(&doc).unwrap()).unwrap_err();
    assert!(err.problems()[0].contains("at line"), "{err}");
    // Rows that cannot be matched are named by their position.
    let mut doc = state.clone();
    doc.packages[2].1 = String::new();
    doc.packages[3].0 = "two words".into();
    let err = parse_scan_print(&serde_json::to_string(&doc).unwrap()).unwrap_err();
    assert_eq!(
        err.problems(),
        [
            "package 3: empty version",
            "package 4: name \"two words\" contains white space"
        ]
    );
    for text in ["", "[]", "null", "42", "{}"] {
        assert!(parse_scan_print(text).is_err(), "{text:?}");
    }
}

fn this_machines_dpkg_database() {
    let text = needed(Path::new("/var/lib/dpkg/status"));
    let packages = parse_dpkg_status(&text).unwrap();
    assert!(packages.len() > 100, "{} packages", packages.len());
    let bsdutils = find(&packages, "bsdutils");
    assert_eq!(bsdutils.source_name.as_deref(), Some("util-linux"));
    // The binary carries the epoch, the source version does not.
    assert!(bsdutils.version.starts_with("1:"), "{}", bsdutils.version);
    assert_eq!(
        bsdutils.source_version.as_deref(),
        bsdutils.version.strip_prefix("1:")
    );
}

proptest! {
    fn never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2000)) {
        let text = String::from_utf8_lossy(&bytes);
        let _ = parse_dpkg_status(&text);
        let _ = parse_rpm_qa(&text);
        let _ = parse_apk_installed(&text);
        let _ = parse_scan_print(&text);
        let _ = parse_os_release(&text);
    }

    fn never_panics_on_format_like_text(
        lines in prop::collection::vec(
            "(Package|Status|Version|Source|P|V|o|A|ID|[a-z-]{1,8})(:|=| )?[ a-z0-9():.+~-]{0,20}",
            0..30,
        ),
        blank in 1usize..3,
    ) {
        let text = lines.join(&"\n".repeat(blank));
        for result in [parse_dpkg_status(&text), parse_rpm_qa(&text), parse_apk_installed(&text)] {
            if let Err(e) = result {
                prop_assert!(!e.problems().is_empty());
                prop_assert!(!e.to_string().is_empty());
            }
        }
    }

    fn never_panics_on_json(
        value in any_json(),
    ) {
        let text = serde_json::to_string(&value).unwrap();
        let _ = parse_scan_print(&text);
    }
}

/// Arbitrary JSON with the keys the scan documents use.
fn any_json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        "[a-z0-9:. -]{0,12}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(serde_json::Value::from),
            prop::collection::btree_map(
                prop::sample::select(vec![
                    "body",
                    "kind",
                    "state",
                    "system",
                    "packages",
                    "scanned_at",
                    "digest",
                    "os",
                    "id",
                    "hostname",
                    "package_manager",
                    "x",
                ])
                .prop_map(str::to_owned),
                inner,
                0..6,
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}
