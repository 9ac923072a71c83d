//! The `rpm -qa` parser of [`patchctl_proto::inventory::rpm`] on TAB- and space-separated
//! fixtures, small cases, source RPM names, and generated output.

use patchctl_proto::agent::InstalledPackage;
use patchctl_proto::inventory::rpm::{parse_qa, parse_source_rpm};
use proptest::prelude::*;

const TAB_FIXTURE: &str = include_str!("data/inventory/rpm-qa-almalinux9.txt");
const SPACE_FIXTURE: &str = include_str!("data/inventory/rpm-qa-almalinux9-space.txt");

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

/// Parses `input` and expects exactly one package, or a skip when `None`.
fn check(input: &str, expected: Option<InstalledPackage>) {
    let parsed = parse_qa(input);
    match expected {
        Some(p) => {
            assert_eq!(parsed.packages, [p], "input: {input:?}");
            assert!(
                parsed.skipped.is_empty(),
                "input: {input:?}: {:?}",
                parsed.skipped
            );
        }
        None => {
            assert!(
                parsed.packages.is_empty(),
                "input: {input:?}: {:?}",
                parsed.packages
            );
            assert_eq!(parsed.skipped.len(), 1, "input: {input:?}");
        }
    }
}

fn fixture_expectations() -> Vec<(usize, InstalledPackage)> {
    vec![
        (0, pkg("gpg-pubkey", "b86b3716-61e69f29", "", None)),
        (
            3,
            pkg(
                "tzdata",
                "2024a-1.el9",
                "noarch",
                Some(("tzdata", "2024a-1.el9")),
            ),
        ),
        (
            6,
            pkg(
                "libgcc",
                "11.4.1-3.el9.alma.1",
                "i686",
                Some(("gcc", "11.4.1-3.el9.alma.1")),
            ),
        ),
        (
            7,
            pkg(
                "libstdc++",
                "11.4.1-3.el9.alma.1",
                "x86_64",
                Some(("gcc", "11.4.1-3.el9.alma.1")),
            ),
        ),
        (
            16,
            pkg(
                "openssl-libs",
                "1:3.0.7-27.el9",
                "x86_64",
                Some(("openssl", "3.0.7-27.el9")),
            ),
        ),
        (
            31,
            pkg(
                "python3-libs",
                "3.9.18-3.el9_4.1",
                "x86_64",
                Some(("python3.9", "3.9.18-3.el9_4.1")),
            ),
        ),
        (
            40,
            pkg(
                "bind-license",
                "32:9.16.23-18.el9_4.1",
                "noarch",
                Some(("bind", "9.16.23-18.el9_4.1")),
            ),
        ),
        (
            53,
            pkg(
                "kernel",
                "5.14.0-427.18.1.el9_4",
                "x86_64",
                Some(("kernel", "5.14.0-427.18.1.el9_4")),
            ),
        ),
        (
            57,
            pkg(
                "npm",
                "1:10.2.4-1.20.11.1.1.module_el9.3.0+88+29afeaa2",
                "x86_64",
                Some(("nodejs", "20.11.1-1.module_el9.3.0+88+29afeaa2")),
            ),
        ),
    ]
}

#[test]
fn tab_fixture_has_exact_fields() {
    let parsed = parse_qa(TAB_FIXTURE);
    assert!(parsed.skipped.is_empty(), "{:?}", parsed.skipped);
    assert_eq!(parsed.packages.len(), 58);
    for (index, want) in fixture_expectations() {
        assert_eq!(parsed.packages[index], want, "line {}", index + 1);
    }
    assert_eq!(
        parsed
            .packages
            .iter()
            .filter(|p| p.name == "kernel")
            .count(),
        2
    );
    assert!(parsed.packages.iter().all(|p| p.status == "installed"));
}

#[test]
fn space_fixture_parses_to_the_same_packages() {
    let tab = parse_qa(TAB_FIXTURE);
    let space = parse_qa(SPACE_FIXTURE);
    assert!(space.skipped.is_empty(), "{:?}", space.skipped);
    assert_eq!(space, tab);
    // Mixed input, as when two outputs are pasted together.
    let mixed = format!("{TAB_FIXTURE}{SPACE_FIXTURE}");
    let parsed = parse_qa(&mixed);
    assert!(parsed.skipped.is_empty());
    assert_eq!(parsed.packages[..58], parsed.packages[58..]);
}

#[test]
fn small_cases() {
    let bash = || {
        Some(pkg(
            "bash",
            "5.1.8-6.el9",
            "x86_64",
            Some(("bash", "5.1.8-6.el9")),
        ))
    };
    check(
        "bash\t0\t5.1.8\t6.el9\tx86_64\tbash-5.1.8-6.el9.src.rpm\n",
        bash(),
    );
    check(
        "bash\t0\t5.1.8\t6.el9\tx86_64\tbash-5.1.8-6.el9.src.rpm\r\n",
        bash(),
    );
    check(
        "bash\t(none)\t5.1.8\t6.el9\tx86_64\tbash-5.1.8-6.el9.src.rpm",
        bash(),
    );
    check("bash 0:5.1.8-6.el9 x86_64 bash-5.1.8-6.el9.src.rpm", bash());
    check("bash 5.1.8-6.el9 x86_64 bash-5.1.8-6.el9.src.rpm", bash());
    check(
        "  bash   0:5.1.8-6.el9\tx86_64 bash-5.1.8-6.el9.src.rpm",
        None,
    );
    check(
        "bash  0:5.1.8-6.el9  x86_64  bash-5.1.8-6.el9.src.rpm  ",
        bash(),
    );
    check(
        "openssl 1:3.0.7-27.el9 x86_64 openssl-3.0.7-27.el9.src.rpm",
        Some(pkg(
            "openssl",
            "1:3.0.7-27.el9",
            "x86_64",
            Some(("openssl", "3.0.7-27.el9")),
        )),
    );
    check(
        "gpg-pubkey\t0\tb86b3716\t61e69f29\t(none)\t(none)",
        Some(pkg("gpg-pubkey", "b86b3716-61e69f29", "", None)),
    );
    check(
        "x 0:1-2 noarch x-1-2.nosrc.rpm",
        Some(pkg("x", "1-2", "noarch", Some(("x", "1-2")))),
    );
    // An unreadable source RPM name keeps the package, without a source.
    check(
        "x 0:1-2 noarch weird",
        Some(pkg("x", "1-2", "noarch", None)),
    );
    // Skipped lines.
    check("package foo is not installed", None);
    check("bash\t0\t5.1.8\t6.el9\tx86_64", None);
    check("bash\t0\t5.1.8\t6.el9\tx86_64\ts.src.rpm\textra", None);
    check(
        "bash\tx\t5.1.8\t6.el9\tx86_64\tbash-5.1.8-6.el9.src.rpm",
        None,
    );
    check(
        "bash\t-1\t5.1.8\t6.el9\tx86_64\tbash-5.1.8-6.el9.src.rpm",
        None,
    );
    check(
        "bash\t99999999999\t5.1.8\t6.el9\tx86_64\tbash-5.1.8-6.el9.src.rpm",
        None,
    );
    check("bash\t0\t\t6.el9\tx86_64\tbash-5.1.8-6.el9.src.rpm", None);
    check(
        "bash\t0\t5.1-8\t6.el9\tx86_64\tbash-5.1.8-6.el9.src.rpm",
        None,
    );
    check("bash 0:5.1.8 x86_64 bash-5.1.8-6.el9.src.rpm", None);
    check("bash 0:5.1.8-6.el9 x86_64", None);
    check("bash a:5.1.8-6.el9 x86_64 bash-5.1.8-6.el9.src.rpm", None);
    check("bash 0:1:5.1.8-6.el9 x86_64 bash-5.1.8-6.el9.src.rpm", None);
    check("garbage", None);
    let empty = parse_qa("\n \n\r\n");
    assert!(empty.packages.is_empty() && empty.skipped.is_empty());
}

#[test]
fn skip_reasons_name_the_line() {
    let parsed = parse_qa("bash 0:1-2 x86_64 bash-1-2.src.rpm\ngarbage\n");
    assert_eq!(parsed.packages.len(), 1);
    assert_eq!(parsed.skipped.len(), 1);
    assert!(
        parsed.skipped[0].starts_with("line 2:"),
        "{}",
        parsed.skipped[0]
    );
    let long = format!("{} x", "é".repeat(200));
    assert!(parse_qa(&long).skipped[0].len() < 200);
}

#[test]
fn source_rpm_names() {
    for (file, want) in [
        ("bash-5.1.8-6.el9.src.rpm", Some(("bash", "5.1.8-6.el9"))),
        (
            "python3.9-3.9.18-3.el9_4.1.src.rpm",
            Some(("python3.9", "3.9.18-3.el9_4.1")),
        ),
        (
            "perl-Data-Dumper-2.174-462.el9.src.rpm",
            Some(("perl-Data-Dumper", "2.174-462.el9")),
        ),
        (
            "nodejs-20.11.1-1.module_el9.3.0+88+29afeaa2.src.rpm",
            Some(("nodejs", "20.11.1-1.module_el9.3.0+88+29afeaa2")),
        ),
        ("x-1-2.nosrc.rpm", Some(("x", "1-2"))),
        ("(none)", None),
        ("bash-5.1.8-6.el9.x86_64.rpm", None),
        ("bash-5.1.8.src.rpm", None),
        ("-1-2.src.rpm", None),
        ("x--2.src.rpm", None),
        ("x-1-.src.rpm", None),
        (".src.rpm", None),
        ("", None),
    ] {
        assert_eq!(parse_source_rpm(file), want, "{file}");
    }
}

proptest! {
    #[test]
    fn never_panics_on_strings(s in "\\PC*") {
        let _ = parse_qa(&s);
    }

    #[test]
    fn never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2000)) {
        let _ = parse_qa(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn never_panics_on_line_like_input(s in "([a-z0-9:().-]{0,8}[\t ]){0,8}\n?") {
        let _ = parse_qa(&s);
    }

    #[test]
    fn both_formats_round_trip(
        rows in prop::collection::vec((
            "[A-Za-z0-9][A-Za-z0-9_+.-]{0,20}",
            0u32..100,
            "[0-9][A-Za-z0-9._+~^]{0,10}",
            "[0-9][A-Za-z0-9._+~^]{0,15}",
            prop::sample::select(vec!["x86_64", "noarch", "i686", "aarch64"]),
            "[A-Za-z0-9][A-Za-z0-9_+.-]{0,20}",
            any::<bool>(),
        ), 0..20)
    ) {
        let mut output = String::new();
        let mut want = Vec::new();
        for (name, epoch, v, r, arch, src, tab) in &rows {
            let srpm = format!("{src}-{v}-{r}.src.rpm");
            if *tab {
                output.push_str(&format!("{name}\t{epoch}\t{v}\t{r}\t{arch}\t{srpm}\n"));
            } else {
                output.push_str(&format!("{name} {epoch}:{v}-{r} {arch} {srpm}\n"));
            }
            let version = if *epoch == 0 { format!("{v}-{r}") } else { format!("{epoch}:{v}-{r}") };
            want.push(InstalledPackage {
                name: name.clone(),
                version,
                arch: (*arch).to_owned(),
                source_name: Some(src.clone()),
                source_version: Some(format!("{v}-{r}")),
                status: "installed".into(),
            });
        }
        let parsed = parse_qa(&output);
        prop_assert!(parsed.skipped.is_empty(), "{:?}", parsed.skipped);
        prop_assert_eq!(parsed.packages, want);
    }
}
