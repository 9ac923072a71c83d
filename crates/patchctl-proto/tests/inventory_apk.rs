//! The apk installed-database parser of [`patchctl_proto::inventory::apk`] on two real
//! Alpine databases, malformed blocks, line endings, and generated databases.

use patchctl_proto::agent::InstalledPackage;
use patchctl_proto::inventory::apk::{ParsedInstalled, parse_installed};
use proptest::prelude::*;

const ALPINE_320: &str = include_str!("data/inventory/installed-alpine3.20-x86_64");
const ALPINE_314: &str = include_str!("data/inventory/installed-alpine3.14-armv7");

fn pkg(name: &str, version: &str, arch: &str, origin: &str) -> InstalledPackage {
    InstalledPackage {
        name: name.into(),
        version: version.into(),
        arch: arch.into(),
        source_name: Some(origin.into()),
        source_version: Some(version.into()),
        status: "installed".into(),
    }
}

#[test]
fn alpine_3_20_database() {
    let parsed = parse_installed(ALPINE_320);
    assert!(parsed.skipped.is_empty(), "{:?}", parsed.skipped);
    let names: Vec<&str> = parsed.packages.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "alpine-baselayout-data",
            "apk-tools",
            "brotli-libs",
            "busybox",
            "busybox-binsh",
            "c-ares",
            "ca-certificates-bundle",
            "curl",
            "libcrypto3",
            "libcurl",
            "libidn2",
            "libpsl",
            "libssl3",
            "libunistring",
            "musl",
            "musl-utils",
            "nghttp2-libs",
            "openssl",
            "scanelf",
            "ssl_client",
        ]
    );
    let find = |n: &str| parsed.packages.iter().find(|p| p.name == n).unwrap();
    // Origin differs from the name: the source package decides.
    assert_eq!(
        *find("libcrypto3"),
        pkg("libcrypto3", "3.3.1-r3", "x86_64", "openssl")
    );
    assert_eq!(
        *find("libssl3"),
        pkg("libssl3", "3.3.1-r3", "x86_64", "openssl")
    );
    assert_eq!(
        *find("alpine-baselayout-data"),
        pkg(
            "alpine-baselayout-data",
            "3.6.5-r0",
            "x86_64",
            "alpine-baselayout"
        )
    );
    assert_eq!(
        *find("scanelf"),
        pkg("scanelf", "1.3.7-r2", "x86_64", "pax-utils")
    );
    assert_eq!(
        *find("ca-certificates-bundle"),
        pkg(
            "ca-certificates-bundle",
            "20240705-r0",
            "x86_64",
            "ca-certificates"
        )
    );
    assert_eq!(
        *find("apk-tools"),
        pkg("apk-tools", "2.14.4-r0", "x86_64", "apk-tools")
    );
    assert!(parsed.packages.iter().all(|p| p.status == "installed"));
}

#[test]
fn alpine_3_14_database() {
    let parsed = parse_installed(ALPINE_314);
    assert!(parsed.skipped.is_empty(), "{:?}", parsed.skipped);
    assert_eq!(parsed.packages.len(), 10);
    assert_eq!(
        parsed.packages[1],
        pkg("libcrypto1.1", "1.1.1k-r0", "armv7", "openssl")
    );
    // A block without files (a meta package) and whose origin is another name.
    assert_eq!(
        parsed.packages[7],
        pkg("libc-utils", "0.7.2-r3", "armv7", "libc-dev")
    );
}

#[test]
fn malformed_blocks_are_skipped_with_a_reason() {
    let input = "P:good\nV:1.0-r0\nA:x86_64\n\n\
                 P:noversion\nA:x86_64\n\n\
                 V:1.0-r0\nA:x86_64\n\n\
                 P:twice\nV:1-r0\nV:2-r0\n\n\
                 P:garbage\nV:1-r0\nthis is not a field\n\n\
                 P:spaced\nV:1 0\n\n\
                 P:noarch\nV:2-r0\no:\n";
    let parsed = parse_installed(input);
    let names: Vec<&str> = parsed.packages.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["good", "noarch"]);
    assert_eq!(parsed.packages[1], pkg("noarch", "2-r0", "", "noarch"));
    assert_eq!(parsed.skipped.len(), 5, "{:?}", parsed.skipped);
    assert!(parsed.skipped[0].contains("line 5 (package noversion): no V"));
    assert!(parsed.skipped[1].contains("no P"));
    assert!(parsed.skipped[2].contains("field V given twice"));
    assert!(parsed.skipped[3].contains("not a K:value line"));
    assert!(parsed.skipped[4].contains("white space"));
}

#[test]
fn line_endings_and_blank_runs() {
    let parsed = parse_installed("\n\n  \nP:a\r\nV:1-r0\r\n\r\n\r\n\nP:b\nV:2-r0");
    assert!(parsed.skipped.is_empty(), "{:?}", parsed.skipped);
    assert_eq!(parsed.packages.len(), 2);
    assert_eq!(parsed.packages[0].version, "1-r0");
    assert_eq!(parse_installed(""), ParsedInstalled::default());
}

proptest! {
    #[test]
    fn never_panics(s in "\\PC{0,600}") {
        let _ = parse_installed(&s);
    }

    #[test]
    fn never_panics_on_block_like_input(s in "([PVAoCFR]:[a-z0-9. -]{0,6}\n{1,2}){0,20}") {
        let _ = parse_installed(&s);
    }

    #[test]
    fn generated_databases_round_trip(
        rows in prop::collection::vec((
            "[a-z0-9][a-z0-9._+-]{0,20}",
            "[0-9]{1,3}(\\.[0-9]{1,3}){0,3}-r[0-9]{1,2}",
            prop::sample::select(vec!["x86_64", "aarch64", "armv7", "noarch"]),
            proptest::option::of("[a-z0-9][a-z0-9._+-]{0,20}"),
            "[A-Za-z0-9 <>@.]{0,30}",
        ), 0..20)
    ) {
        let mut db = String::new();
        let mut want = Vec::new();
        for (name, version, arch, origin, maint) in &rows {
            db.push_str(&format!("C:Q1abc=\nP:{name}\nV:{version}\nA:{arch}\nT:{maint}\n"));
            if let Some(o) = origin {
                db.push_str(&format!("o:{o}\n"));
            }
            db.push_str("F:usr\nR:file\nZ:Q1def=\n\n");
            want.push(pkg(name, version, arch, origin.as_deref().unwrap_or(name)));
        }
        let parsed = parse_installed(&db);
        prop_assert!(parsed.skipped.is_empty(), "{:?}", parsed.skipped);
        prop_assert_eq!(parsed.packages, want);
    }
}
