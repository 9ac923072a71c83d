//! Table tests from the package managers' own test suites: pacman's
//! `test/util/vercmptest.sh` (there are no shared pacman vectors) and rpm's
//! `tests/rpmvercmp.at`, plus EVR-level cases for both. Each row is checked in both
//! directions.

use std::cmp::Ordering;

use patchctl_version::{Scheme, rpm};

/// `a op b` under `scheme`, and the reverse.
fn check(scheme: Scheme, a: &str, op: &str, b: &str) {
    let expected = match op {
        "<" => Ordering::Less,
        "=" => Ordering::Equal,
        ">" => Ordering::Greater,
        _ => panic!("bad operator {op:?}"),
    };
    let forward = scheme.compare(a, b).unwrap();
    let backward = scheme.compare(b, a).unwrap();
    assert_eq!(forward, expected, "{scheme}: {a} {op} {b}");
    assert_eq!(
        backward,
        expected.reverse(),
        "{scheme}: reversed {a} {op} {b}"
    );
}

#[rustfmt::skip]
const PACMAN: &[(&str, &str, &str)] = &[
    // all similar length, no pkgrel
    ("1.5.0", "=", "1.5.0"),
    ("1.5.1", ">", "1.5.0"),
    // mixed length
    ("1.5.1", ">", "1.5"),
    ("1.5.0", ">", "1.5"),
    // with pkgrel, simple
    ("1.5.0-1", "=", "1.5.0-1"),
    ("1.5.0-1", "<", "1.5.0-2"),
    ("1.5.0-1", "<", "1.5.1-1"),
    ("1.5.0-2", "<", "1.5.1-1"),
    // with pkgrel, mixed lengths
    ("1.5-1", "<", "1.5.1-1"),
    ("1.5-2", "<", "1.5.1-1"),
    ("1.5-2", "<", "1.5.1-2"),
    // mixed pkgrel inclusion: the pkgrel is compared only when both have one
    ("1.5", "=", "1.5-1"),
    ("1.5-1", "=", "1.5"),
    ("1.1-1", "=", "1.1"),
    ("1.0-1", "<", "1.1"),
    ("1.1-1", ">", "1.0"),
    ("1.0-1", "<", "1.0-2"),
    // alphanumeric versions
    ("1.5b-1", "<", "1.5-1"),
    ("1.5b", "<", "1.5"),
    ("1.5b-1", "<", "1.5"),
    ("1.5b", "<", "1.5.1"),
    ("1.1a", "<", "1.1"),
    // from the manpage
    ("1.0a", "<", "1.0alpha"),
    ("1.0alpha", "<", "1.0b"),
    ("1.0b", "<", "1.0beta"),
    ("1.0beta", "<", "1.0rc"),
    ("1.0rc", "<", "1.0"),
    ("1.0", "<", "1.0.1"),
    // going crazy? alpha-dotted versions
    ("1.5.a", ">", "1.5"),
    ("1.5.b", ">", "1.5.a"),
    ("1.5.1", ">", "1.5.b"),
    ("1.0", "<", "1.0.0"),
    // alpha dots and dashes
    ("1.5.b-1", "=", "1.5.b"),
    ("1.5-1", "<", "1.5.b"),
    // same/similar content, differing separators
    ("2.0", "=", "2_0"),
    ("2.0_a", "=", "2_0.a"),
    ("2.0a", "<", "2.0.a"),
    ("2___a", ">", "2_a"),
    // epoch included version comparisons
    ("0:1.0", "=", "0:1.0"),
    ("0:1.0", "<", "0:1.1"),
    ("1:1.0", ">", "0:1.0"),
    ("1:1.0", ">", "0:1.1"),
    ("1:1.0", "<", "2:1.1"),
    // epoch + sometimes present pkgrel
    ("1:1.0", ">", "0:1.0-1"),
    ("1:1.0-1", ">", "0:1.1-1"),
    // epoch included on one version
    ("0:1.0", "=", "1.0"),
    ("0:1.0", "<", "1.1"),
    ("0:1.1", ">", "1.0"),
    ("1:1.0", ">", "1.0"),
    ("1:1.0", ">", "1.1"),
    ("1:1.1", ">", "1.1"),
    ("1:1.0", ">", "2.0"),
    ("1:1.0-1", ">", "2.0-1"),
    // no ~ or ^ magic in pacman: both are plain separators
    ("1.0~rc1", ">", "1.0"),
    ("1.0~rc1", "=", "1.0.rc1"),
    ("1.0^git1", "=", "1.0.git1"),
    // numbers of any length, leading zeros
    ("1.010", "=", "1.10"),
    ("1.99999999999999999999999", "<", "1.100000000000000000000000"),
    // realistic Arch versions
    ("6.9.7.arch1-1", "<", "6.9.8.arch1-1"),
    ("6.9.8.arch1-1", "<", "6.9.8.arch2-1"),
    ("2:9.1.0-1", ">", "1:9.2.0-1"),
    ("1.2.3.r12.gabcdef-1", "<", "1.2.3.r13.g012345-1"),
    ("20240101-1", "<", "20240101-2"),
    ("1.0-1.1", ">", "1.0-1"),
];

#[test]
fn pacman_vercmptest() {
    for (a, op, b) in PACMAN {
        check(Scheme::Pacman, a, op, b);
    }
}

#[rustfmt::skip]
const RPMVERCMP: &[(&str, &str, &str)] = &[
    ("1.0", "=", "1.0"),
    ("1.0", "<", "2.0"),
    ("2.0", ">", "1.0"),
    ("2.0.1", "=", "2.0.1"),
    ("2.0", "<", "2.0.1"),
    ("2.0.1", ">", "2.0"),
    ("2.0.1a", "=", "2.0.1a"),
    ("2.0.1a", ">", "2.0.1"),
    ("2.0.1", "<", "2.0.1a"),
    ("5.5p1", "=", "5.5p1"),
    ("5.5p1", "<", "5.5p2"),
    ("5.5p2", ">", "5.5p1"),
    ("5.5p10", "=", "5.5p10"),
    ("5.5p1", "<", "5.5p10"),
    ("5.5p10", ">", "5.5p1"),
    ("10xyz", "<", "10.1xyz"),
    ("10.1xyz", ">", "10xyz"),
    ("xyz10", "=", "xyz10"),
    ("xyz10", "<", "xyz10.1"),
    ("xyz10.1", ">", "xyz10"),
    ("xyz.4", "=", "xyz.4"),
    ("xyz.4", "<", "8"),
    ("8", ">", "xyz.4"),
    ("xyz.4", "<", "2"),
    ("2", ">", "xyz.4"),
    ("5.5p2", "<", "5.6p1"),
    ("5.6p1", ">", "5.5p2"),
    ("5.6p1", "<", "6.5p1"),
    ("6.5p1", ">", "5.6p1"),
    ("6.0.rc1", ">", "6.0"),
    ("6.0", "<", "6.0.rc1"),
    ("10b2", ">", "10a1"),
    ("10a2", "<", "10b2"),
    ("1.0aa", "=", "1.0aa"),
    ("1.0a", "<", "1.0aa"),
    ("1.0aa", ">", "1.0a"),
    ("10.0001", "=", "10.0001"),
    ("10.0001", "=", "10.1"),
    ("10.1", "=", "10.0001"),
    ("10.0001", "<", "10.0039"),
    ("10.0039", ">", "10.0001"),
    ("4.999.9", "<", "5.0"),
    ("5.0", ">", "4.999.9"),
    ("20101121", "=", "20101121"),
    ("20101121", "<", "20101122"),
    ("20101122", ">", "20101121"),
    ("2_0", "=", "2_0"),
    ("2.0", "=", "2_0"),
    ("2_0", "=", "2.0"),
    // RhBug:178798
    ("a", "=", "a"),
    ("a+", "=", "a+"),
    ("a+", "=", "a_"),
    ("a_", "=", "a+"),
    ("+a", "=", "+a"),
    ("+a", "=", "_a"),
    ("_a", "=", "+a"),
    ("+_", "=", "+_"),
    ("_+", "=", "+_"),
    ("_+", "=", "_+"),
    ("+", "=", "_"),
    ("_", "=", "+"),
    // tilde
    ("1.0~rc1", "=", "1.0~rc1"),
    ("1.0~rc1", "<", "1.0"),
    ("1.0", ">", "1.0~rc1"),
    ("1.0~rc1", "<", "1.0~rc2"),
    ("1.0~rc2", ">", "1.0~rc1"),
    ("1.0~rc1~git123", "=", "1.0~rc1~git123"),
    ("1.0~rc1~git123", "<", "1.0~rc1"),
    ("1.0~rc1", ">", "1.0~rc1~git123"),
    // caret
    ("1.0^", "=", "1.0^"),
    ("1.0^", ">", "1.0"),
    ("1.0", "<", "1.0^"),
    ("1.0^git1", "=", "1.0^git1"),
    ("1.0^git1", ">", "1.0"),
    ("1.0", "<", "1.0^git1"),
    ("1.0^git1", "<", "1.0^git2"),
    ("1.0^git2", ">", "1.0^git1"),
    ("1.0^git1", "<", "1.01"),
    ("1.01", ">", "1.0^git1"),
    ("1.0^20160101", "=", "1.0^20160101"),
    ("1.0^20160101", "<", "1.0.1"),
    ("1.0.1", ">", "1.0^20160101"),
    ("1.0^20160101^git1", "=", "1.0^20160101^git1"),
    ("1.0^20160102", ">", "1.0^20160101^git1"),
    ("1.0^20160101^git1", "<", "1.0^20160102"),
    // tilde and caret
    ("1.0~rc1^git1", "=", "1.0~rc1^git1"),
    ("1.0~rc1^git1", ">", "1.0~rc1"),
    ("1.0~rc1", "<", "1.0~rc1^git1"),
    ("1.0^git1~pre", "=", "1.0^git1~pre"),
    ("1.0^git1", ">", "1.0^git1~pre"),
    ("1.0^git1~pre", "<", "1.0^git1"),
    // rpmvercmp.at's "oddities" section: current, arguably buggy, behaviour
    ("1b.fc17", "=", "1b.fc17"),
    ("1b.fc17", "<", "1.fc17"),
    ("1.fc17", ">", "1b.fc17"),
    ("1g.fc17", "=", "1g.fc17"),
    ("1g.fc17", ">", "1.fc17"),
    ("1.fc17", "<", "1g.fc17"),
    // non-ASCII characters are separators, so these are all equal
    ("1.1.α", "=", "1.1.α"),
    ("1.1.α", "=", "1.1.β"),
    ("1.1.β", "=", "1.1.α"),
    ("1.1.αα", "=", "1.1.α"),
    ("1.1.α", "=", "1.1.ββ"),
    ("1.1.ββ", "=", "1.1.αα"),
];

#[test]
fn rpm_rpmvercmp_at() {
    for (a, op, b) in RPMVERCMP {
        let expected = match *op {
            "<" => Ordering::Less,
            "=" => Ordering::Equal,
            _ => Ordering::Greater,
        };
        assert_eq!(rpm::rpmvercmp(a, b), expected, "rpmvercmp({a}, {b})");
        assert_eq!(
            rpm::rpmvercmp(b, a),
            expected.reverse(),
            "rpmvercmp({b}, {a})"
        );
        // None of these has a '-' or an epoch, so the EVR comparison agrees.
        check(Scheme::Rpm, a, op, b);
    }
}

#[rustfmt::skip]
const RPM_EVR: &[(&str, &str, &str)] = &[
    // epoch: missing is 0, compared numerically
    ("1.0", "=", "0:1.0"),
    ("1:1.0", ">", "2.0"),
    ("1:1.0", "<", "2:0.1"),
    ("10:1", ">", "9:1"),
    ("010:1", "=", "10:1"),
    (":1.0", "=", "1.0"),
    ("18446744073709551615:1", ">", "18446744073709551614:9"),
    // release: after the last '-', compared only after the version
    ("1.0-1", "<", "1.0-2"),
    ("1.0-10", ">", "1.0-9"),
    ("1.1-1", ">", "1.0-99"),
    ("1.0-1.el9", "<", "1.0-1.el9_1"),
    ("1.0-1.el8", "<", "1.0-1.el9"),
    ("3.10.0-229.el7", "<", "3.10.0-229.1.2.el7"),
    ("2.4.21-9.EL", "<", "2.4.21-9.0.1.EL"),
    // a missing release sorts first, even before an empty one (total order)
    ("1.0", "<", "1.0-0"),
    ("1.0", "<", "1.0-"),
    ("1.0-", "=", "1.0-"),
    ("1.0-", "<", "1.0-0"),
    // realistic
    ("2:8.2.2637-20.el9_1", "<", "2:8.2.2637-21.el9"),
    ("1:3.0.7-16.el9_2", ">", "1:3.0.7-16.el9"),
    ("0:4.18.0-513.5.1.el8_9", "<", "4.18.0-513.9.1.el8_9"),
    ("1.0~rc1-1", "<", "1.0-1"),
    ("5.14.0-362.8.1.el9_3", "<", "5.14.0-362.13.1.el9_3"),
];

#[test]
fn rpm_evr() {
    for (a, op, b) in RPM_EVR {
        check(Scheme::Rpm, a, op, b);
    }
}
