//! The dpkg status parser of [`patchctl_proto::inventory::dpkg`] on a real status file
//! fixture, small cases, malformed stanzas, this machine's own status file, and
//! generated stanzas.

use std::collections::BTreeMap;
use std::path::Path;

use patchctl_proto::agent::InstalledPackage;
use patchctl_proto::inventory::dpkg::{ParsedStatus, STATES, parse_status};
use proptest::prelude::*;

const FIXTURE: &str = include_str!("data/inventory/dpkg-status-bookworm.txt");

/// Where dpkg keeps its database of installed packages.
const STATUS_PATH: &str = "/var/lib/dpkg/status";

fn pkg(
    name: &str,
    version: &str,
    arch: &str,
    source: (&str, &str),
    status: &str,
) -> InstalledPackage {
    InstalledPackage {
        name: name.into(),
        version: version.into(),
        arch: arch.into(),
        source_name: Some(source.0.into()),
        source_version: Some(source.1.into()),
        status: status.into(),
    }
}

/// Parses `input` and compares the packages and the number of skipped stanzas.
fn check(input: &str, expected: &[InstalledPackage], skipped: usize) {
    let parsed = parse_status(input);
    assert_eq!(parsed.packages, expected, "input:\n{input}");
    assert_eq!(
        parsed.skipped.len(),
        skipped,
        "skipped: {:?}\ninput:\n{input}",
        parsed.skipped
    );
}

fn find<'a>(parsed: &'a ParsedStatus, name: &str) -> &'a InstalledPackage {
    parsed
        .packages
        .iter()
        .find(|p| p.name == name)
        .unwrap_or_else(|| panic!("{name} not in the parsed fixture"))
}

#[test]
fn fixture_packages_have_exact_fields() {
    let parsed = parse_status(FIXTURE);
    assert!(parsed.skipped.is_empty(), "{:?}", parsed.skipped);
    // 32 stanzas, one config-files (mawk) and one not-installed (curl).
    assert_eq!(parsed.packages.len(), 30);
    let expected = [
        // No Source field: the package is its own source.
        pkg("apt", "2.6.1", "amd64", ("apt", "2.6.1"), "installed"),
        // binNMU: Source carries the version without "+b8".
        pkg(
            "bash",
            "5.2.15-2+b8",
            "amd64",
            ("bash", "5.2.15-2"),
            "installed",
        ),
        // Binary epoch that the source version does not have.
        pkg(
            "bsdutils",
            "1:2.38.1-5+deb12u3",
            "amd64",
            ("util-linux", "2.38.1-5+deb12u3"),
            "installed",
        ),
        // Source without a version: the binary version is the source version.
        pkg(
            "libuuid1",
            "2.38.1-5+deb12u3",
            "amd64",
            ("util-linux", "2.38.1-5+deb12u3"),
            "installed",
        ),
        pkg(
            "cpp",
            "4:12.2.0-3",
            "amd64",
            ("gcc-defaults", "1.203"),
            "installed",
        ),
        pkg(
            "dmsetup",
            "2:1.02.185-2",
            "amd64",
            ("lvm2", "2.03.16-2"),
            "installed",
        ),
        // Source version with an epoch.
        pkg(
            "libcap2",
            "1:2.66-4+deb12u2+b2",
            "amd64",
            ("libcap2", "1:2.66-4+deb12u2"),
            "installed",
        ),
        pkg(
            "libc6",
            "2.36-9+deb12u14",
            "amd64",
            ("glibc", "2.36-9+deb12u14"),
            "installed",
        ),
        pkg(
            "ca-certificates",
            "20230311+deb12u1",
            "all",
            ("ca-certificates", "20230311+deb12u1"),
            "installed",
        ),
        pkg(
            "tzdata",
            "2025b-0+deb12u2",
            "all",
            ("tzdata", "2025b-0+deb12u2"),
            "installed",
        ),
        pkg("sed", "4.9-1", "amd64", ("sed", "4.9-1"), "half-configured"),
        pkg(
            "tar",
            "1.34+dfsg-1.2+deb12u1",
            "amd64",
            ("tar", "1.34+dfsg-1.2+deb12u1"),
            "half-installed",
        ),
        pkg(
            "gpgv",
            "2.2.40-1.1+deb12u2",
            "amd64",
            ("gnupg2", "2.2.40-1.1+deb12u2"),
            "unpacked",
        ),
    ];
    for want in expected {
        assert_eq!(find(&parsed, &want.name), &want);
    }
    for absent in ["mawk", "curl"] {
        assert!(
            parsed.packages.iter().all(|p| p.name != absent),
            "{absent} is not installed"
        );
    }
    // File order is kept.
    let names: Vec<&str> = parsed.packages.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(&names[..4], ["apt", "base-files", "bash", "bsdutils"]);
}

#[test]
fn small_cases() {
    let basic = pkg("a", "1.0", "amd64", ("a", "1.0"), "installed");
    let stanza = "Package: a\nStatus: install ok installed\nVersion: 1.0\nArchitecture: amd64\n";
    check(stanza, std::slice::from_ref(&basic), 0);
    // No trailing newline, CRLF line ends, several blank lines, leading blank lines.
    check(stanza.trim_end(), std::slice::from_ref(&basic), 0);
    check(
        &stanza.replace('\n', "\r\n"),
        std::slice::from_ref(&basic),
        0,
    );
    check(
        &format!("\n\n{stanza}\n\n\n{}", stanza.replace("a\n", "b\n")),
        &[
            basic.clone(),
            pkg("b", "1.0", "amd64", ("b", "1.0"), "installed"),
        ],
        0,
    );
    // Field names are case-insensitive; values are trimmed.
    check(
        "package: a\nSTATUS:install ok installed\nversion:   1.0  \narchitecture:\tamd64\n",
        std::slice::from_ref(&basic),
        0,
    );
    // Continuation lines are stepped over, even ones that look like fields.
    check(
        "Package: a\nDescription: x\n Version: 9\n .\n\tPackage: z\nStatus: install ok installed\nVersion: 1.0\nArchitecture: amd64\n",
        std::slice::from_ref(&basic),
        0,
    );
    // Conffiles and other fields are ignored.
    check(
        "Package: a\nConffiles:\n /etc/a 0123 obsolete\nStatus: install ok installed\nVersion: 1.0\nArchitecture: amd64\nDepends: b (>= 1)\n",
        std::slice::from_ref(&basic),
        0,
    );
    // A line of spaces between stanzas is no separator inside a stanza.
    check(&format!("  \n{stanza}"), std::slice::from_ref(&basic), 0);
    // Source forms.
    check(
        "Package: a\nStatus: install ok installed\nVersion: 1:1.0+b1\nArchitecture: amd64\nSource: s (1.0)\n",
        &[pkg("a", "1:1.0+b1", "amd64", ("s", "1.0"), "installed")],
        0,
    );
    check(
        "Package: a\nStatus: install ok installed\nVersion: 1.0\nArchitecture: amd64\nSource: s\n",
        &[pkg("a", "1.0", "amd64", ("s", "1.0"), "installed")],
        0,
    );
    check(
        "Package: a\nStatus: install ok installed\nVersion: 1.0\nArchitecture: amd64\nSource: s(2)\n",
        &[pkg("a", "1.0", "amd64", ("s", "2"), "installed")],
        0,
    );
    // Missing Architecture is accepted as empty.
    check(
        "Package: a\nStatus: install ok installed\nVersion: 1.0\n",
        &[pkg("a", "1.0", "", ("a", "1.0"), "installed")],
        0,
    );
    // Every installed-ish state is kept.
    for state in [
        "installed",
        "half-installed",
        "half-configured",
        "unpacked",
        "triggers-awaited",
        "triggers-pending",
    ] {
        check(
            &format!(
                "Package: a\nStatus: hold reinstreq {state}\nVersion: 1.0\nArchitecture: amd64\n"
            ),
            &[pkg("a", "1.0", "amd64", ("a", "1.0"), state)],
            0,
        );
    }
    // Not installed: dropped silently, even without a Version.
    check("Package: a\nStatus: purge ok not-installed\n", &[], 0);
    check(
        "Package: a\nStatus: deinstall ok config-files\nVersion: 1.0\nArchitecture: amd64\n",
        &[],
        0,
    );
    check("", &[], 0);
    check("\n\n \n\t\n", &[], 0);
}

#[test]
fn malformed_stanzas_are_skipped_with_a_reason() {
    let good = "Package: g\nStatus: install ok installed\nVersion: 2\nArchitecture: all\n";
    let g = pkg("g", "2", "all", ("g", "2"), "installed");
    for (bad, reason) in [
        (
            "Status: install ok installed\nVersion: 1\n",
            "no Package field",
        ),
        (
            "Package: a\nStatus: install ok installed\n",
            "no Version field",
        ),
        ("Package: a\nVersion: 1\n", "no Status field"),
        (
            "Package: a\nStatus: install ok\nVersion: 1\n",
            "is not \"want flag status\"",
        ),
        (
            "Package: a\nStatus: install ok installed x\nVersion: 1\n",
            "is not \"want flag status\"",
        ),
        (
            "Package: a\nStatus: install ok broken\nVersion: 1\n",
            "unknown state",
        ),
        (
            "Package: a\nStatus: wish ok installed\nVersion: 1\n",
            "unknown selection",
        ),
        (
            "Package: a\nStatus: install bad installed\nVersion: 1\n",
            "unknown flag",
        ),
        (
            "Package: a\nStatus: install ok installed\nVersion: 1\ngarbage\n",
            "not a field",
        ),
        (
            "Package: a\nbad name: x\nStatus: install ok installed\nVersion: 1\n",
            "not a field",
        ),
        (
            "Package: a\n: x\nStatus: install ok installed\nVersion: 1\n",
            "not a field",
        ),
        (
            " orphan\nPackage: a\nStatus: install ok installed\nVersion: 1\n",
            "continuation line",
        ),
        (
            "Package: a\nStatus: install ok installed\nVersion: 1\nPackage: b\n",
            "given twice",
        ),
        (
            "Package: a\nStatus: install ok installed\nVersion:\n",
            "empty Version",
        ),
        (
            "Package:\nStatus: install ok installed\nVersion: 1\n",
            "empty Package",
        ),
        (
            "Package: a b\nStatus: install ok installed\nVersion: 1\n",
            "white space",
        ),
        (
            "Package: a\nStatus: install ok installed\nVersion: 1 2\n",
            "white space",
        ),
        (
            "Package: a\nStatus: install ok installed\nVersion: 1\nSource: s (1\n",
            "Source",
        ),
        (
            "Package: a\nStatus: install ok installed\nVersion: 1\nSource: s ()\n",
            "Source",
        ),
        (
            "Package: a\nStatus: install ok installed\nVersion: 1\nSource: s t\n",
            "Source",
        ),
        (
            "Package: a\nStatus: install ok installed\nVersion: 1\nSource: (1)\n",
            "Source",
        ),
        (
            "Package: a\nStatus: install ok installed\nVersion: 1\nSource: s (1) (2)\n",
            "Source",
        ),
    ] {
        let input = format!("{good}\n{bad}\n{good}");
        let parsed = parse_status(&input);
        assert_eq!(parsed.packages, [g.clone(), g.clone()], "input:\n{input}");
        assert_eq!(parsed.skipped.len(), 1, "input:\n{input}");
        assert!(
            parsed.skipped[0].contains(reason),
            "{:?} should mention {reason:?}",
            parsed.skipped[0]
        );
        assert!(
            parsed.skipped[0].starts_with("stanza at line 6"),
            "{:?}",
            parsed.skipped[0]
        );
    }
}

#[test]
fn long_garbage_is_quoted_briefly() {
    let line = "é".repeat(100);
    let parsed = parse_status(&format!("Package: a\n{line}\n"));
    assert_eq!(parsed.skipped.len(), 1);
    assert!(parsed.skipped[0].len() < 150, "{}", parsed.skipped[0]);
}

/// The packages dpkg-query would list as installed, found independently: split on
/// blank lines and look at the Status and Package lines only.
fn independent_installed(text: &str) -> BTreeMap<(String, String), String> {
    let mut out = BTreeMap::new();
    for stanza in text.split("\n\n") {
        let get = |field: &str| {
            stanza
                .lines()
                .find_map(|l| l.strip_prefix(field).and_then(|v| v.strip_prefix(": ")))
                .map(str::to_owned)
        };
        let (Some(name), Some(status)) = (get("Package"), get("Status")) else {
            continue;
        };
        let state = status.split_whitespace().nth(2).unwrap_or_default();
        if state != "not-installed" && state != "config-files" {
            let arch = get("Architecture").unwrap_or_default();
            out.insert((name, arch), get("Version").unwrap_or_default());
        }
    }
    out
}

#[test]
fn parses_this_machines_status_file() {
    let path = Path::new(STATUS_PATH);
    if !path.exists() {
        eprintln!("{STATUS_PATH} does not exist; nothing to compare");
        return;
    }
    let text = String::from_utf8_lossy(&std::fs::read(path).unwrap()).into_owned();
    let started = std::time::Instant::now();
    let parsed = parse_status(&text);
    eprintln!(
        "parsed {} packages in {:?}",
        parsed.packages.len(),
        started.elapsed()
    );
    assert!(parsed.skipped.is_empty(), "{:?}", parsed.skipped);
    let expected = independent_installed(&text);
    assert_eq!(parsed.packages.len(), expected.len());
    for p in &parsed.packages {
        assert_eq!(
            expected.get(&(p.name.clone(), p.arch.clone())),
            Some(&p.version),
            "{p:?}"
        );
    }
}

#[derive(Debug, Clone)]
struct Gen {
    name: String,
    version: String,
    arch: String,
    source: Option<(String, Option<String>)>,
    state: &'static str,
    description: Vec<String>,
    conffiles: usize,
}

fn gen_package() -> impl Strategy<Value = Gen> {
    let version = "([0-9]{1,2}:)?[0-9][A-Za-z0-9.+~]{0,10}(-[A-Za-z0-9.+~]{1,8})?";
    (
        "[a-z0-9][a-z0-9+.-]{1,30}",
        version,
        prop::sample::select(vec!["amd64", "arm64", "all", "i386"]),
        prop::option::of(("[a-z0-9][a-z0-9+.-]{1,20}", prop::option::of(version))),
        prop::sample::select(STATES.to_vec()),
        prop::collection::vec("[ -~]{0,40}", 0..4),
        0usize..3,
    )
        .prop_map(
            |(name, version, arch, source, state, description, conffiles)| Gen {
                name,
                version,
                arch: arch.to_owned(),
                source,
                state,
                description,
                conffiles,
            },
        )
}

fn render(p: &Gen, order: u8) -> String {
    let mut fields = vec![
        format!("Package: {}\n", p.name),
        format!("Status: install ok {}\n", p.state),
        format!("Architecture: {}\n", p.arch),
        format!("Version: {}\n", p.version),
        "Maintainer: Someone <someone@example.org>\n".to_owned(),
    ];
    if let Some((name, version)) = &p.source {
        fields.push(match version {
            Some(v) => format!("Source: {name} ({v})\n"),
            None => format!("Source: {name}\n"),
        });
    }
    if p.conffiles > 0 {
        let mut f = "Conffiles:\n".to_owned();
        for i in 0..p.conffiles {
            f.push_str(&format!(" /etc/{}/{i}.conf 0123456789abcdef\n", p.name));
        }
        fields.push(f);
    }
    let mut d = "Description: summary\n".to_owned();
    for line in &p.description {
        let line = line.trim();
        d.push_str(&format!(" {}\n", if line.is_empty() { "." } else { line }));
    }
    fields.push(d);
    let n = fields.len();
    fields.rotate_left(order as usize % n);
    fields.concat()
}

fn expected(p: &Gen) -> Option<InstalledPackage> {
    if p.state == "config-files" || p.state == "not-installed" {
        return None;
    }
    let (sn, sv) = match &p.source {
        None => (p.name.clone(), p.version.clone()),
        Some((n, v)) => (n.clone(), v.clone().unwrap_or_else(|| p.version.clone())),
    };
    Some(pkg(&p.name, &p.version, &p.arch, (&sn, &sv), p.state))
}

proptest! {
    #[test]
    fn never_panics_on_strings(s in "\\PC*") {
        let _ = parse_status(&s);
    }

    #[test]
    fn never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2000)) {
        let _ = parse_status(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn never_panics_on_field_like_lines(
        lines in prop::collection::vec(
            "(Package|Status|Version|Source|Architecture|X| |)(:)?[ a-z0-9():.-]{0,20}",
            0..30,
        )
    ) {
        let _ = parse_status(&lines.join("\n"));
    }

    #[test]
    fn well_formed_stanzas_round_trip(
        packages in prop::collection::vec((gen_package(), any::<u8>()), 0..20),
        blank in 1usize..3,
    ) {
        let text: Vec<String> = packages.iter().map(|(p, o)| render(p, *o)).collect();
        let text = text.join(&"\n".repeat(blank));
        let parsed = parse_status(&text);
        let want: Vec<InstalledPackage> =
            packages.iter().filter_map(|(p, _)| expected(p)).collect();
        prop_assert!(parsed.skipped.is_empty(), "{:?}\n{}", parsed.skipped, text);
        prop_assert_eq!(parsed.packages, want);
    }
}
