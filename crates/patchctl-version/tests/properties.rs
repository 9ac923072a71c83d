//! Property tests for every scheme: `compare` never panics on arbitrary input
//! (arbitrary Unicode, arbitrary bytes decoded lossily, and strings over each scheme's
//! punctuation), it is reflexive and antisymmetric everywhere, and transitive on
//! generated well-formed versions. `apk` and `rpm` are total preorders on *all* strings,
//! which is checked too.

use std::cmp::Ordering;

use patchctl_version::Scheme;
use proptest::prelude::*;
use proptest::string::string_regex;

/// Strings made of arbitrary bytes (invalid UTF-8 replaced), like a corrupted database.
fn bytes_like() -> impl Strategy<Value = String> {
    prop::collection::vec(any::<u8>(), 0..24)
        .prop_map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
}

/// Short strings over the characters every scheme treats specially, where the
/// interesting paths are.
fn version_alphabet() -> impl Strategy<Value = String> {
    string_regex(r"[0-9a-zA-Z.:~^_+\-r\x00 ]{0,10}").unwrap()
}

fn any_input() -> impl Strategy<Value = String> {
    prop_oneof![any::<String>(), bytes_like(), version_alphabet()]
}

/// Antisymmetry (including agreeing on errors) and reflexivity for one pair.
fn check_pair(scheme: Scheme, a: &str, b: &str) -> Result<(), TestCaseError> {
    let forward = scheme.compare(a, b);
    let backward = scheme.compare(b, a);
    match (&forward, &backward) {
        (Ok(f), Ok(r)) => prop_assert_eq!(*f, r.reverse(), "{} {:?} vs {:?}", scheme, a, b),
        (Err(_), Err(_)) => {}
        _ => prop_assert!(
            false,
            "{scheme}: {a:?} vs {b:?} is {forward:?} but reversed {backward:?}"
        ),
    }
    for s in [a, b] {
        if let Ok(order) = scheme.compare(s, s) {
            prop_assert_eq!(
                order,
                Ordering::Equal,
                "{} {:?} not equal to itself",
                scheme,
                s
            );
        }
        // Must not panic either.
        let _ = scheme.parse_check(s);
    }
    Ok(())
}

/// Every triple of `versions` is transitive (for `<=`, and so for `=` and `<`).
fn check_transitive(scheme: Scheme, versions: &[String]) -> Result<(), TestCaseError> {
    let n = versions.len();
    let mut table = vec![vec![Ordering::Equal; n]; n];
    for i in 0..n {
        for j in 0..n {
            table[i][j] = match scheme.compare(&versions[i], &versions[j]) {
                Ok(order) => order,
                Err(e) => return Err(TestCaseError::fail(format!("{scheme}: {e}"))),
            };
        }
    }
    for i in 0..n {
        for j in 0..n {
            for k in 0..n {
                let (ab, bc, ac) = (table[i][j], table[j][k], table[i][k]);
                if ab != Ordering::Greater && bc != Ordering::Greater {
                    let expected = if ab == Ordering::Less || bc == Ordering::Less {
                        Ordering::Less
                    } else {
                        Ordering::Equal
                    };
                    prop_assert_eq!(
                        ac,
                        expected,
                        "{}: {:?} {:?} {:?}, {:?} {:?} {:?}, but {:?} {:?} {:?}",
                        scheme,
                        versions[i],
                        ab,
                        versions[j],
                        versions[j],
                        bc,
                        versions[k],
                        versions[i],
                        ac,
                        versions[k]
                    );
                }
            }
        }
    }
    Ok(())
}

fn well_formed(scheme: Scheme, pattern: &str) -> impl Strategy<Value = String> {
    string_regex(pattern)
        .unwrap()
        .prop_filter("well-formed", move |s| scheme.parse_check(s).is_ok())
}

/// Small alphabets so that generated versions often share prefixes or compare equal.
fn dpkg_version() -> impl Strategy<Value = String> {
    well_formed(
        Scheme::Dpkg,
        r"([0-2]:)?(0|1|2|10|01)([.+~](0|1|2|10|01|a|b|z|rc|~)){0,3}(-(0|1|2|a|1~b|1\+deb1|1ubuntu1)){0,1}",
    )
}

fn rpm_version() -> impl Strategy<Value = String> {
    well_formed(
        Scheme::Rpm,
        r"([0-2]:)?(0|1|2|10|01|a|b)([._+~^]{1,2}(0|1|2|10|01|a|b|rc|git)){0,3}(-(0|1|2|01|el|a)([._~^](0|1|a|el9)){0,2}){0,1}",
    )
}

fn apk_version() -> impl Strategy<Value = String> {
    well_formed(
        Scheme::Apk,
        r"(0|1|2|10)(\.(0|1|2|10|01|001)){0,3}[abz]?(_(alpha|beta|pre|rc|cvs|svn|git|hg|p)(0|1|2|10)?){0,2}(~[0-9a-f]{1,2})?(-r(0|1|2|10)){0,1}",
    )
}

/// pacman versions with a pkgrel (as installed packages have) and no trailing
/// separator in pkgver (see `patchctl_version::pacman` for why both matter).
fn pacman_version_with_pkgrel() -> impl Strategy<Value = String> {
    well_formed(
        Scheme::Pacman,
        r"([0-2]:)?(0|1|2|10|01|a|b|rc)([._+]{1,2}(0|1|2|10|01|a|b|rc)|(a|b|rc)){0,3}-(1|2|10)(\.[12])?",
    )
}

fn pacman_version_without_pkgrel() -> impl Strategy<Value = String> {
    well_formed(
        Scheme::Pacman,
        r"([0-2]:)?(0|1|2|10|01|a|b|rc)([._+]{1,2}(0|1|2|10|01|a|b|rc)|(a|b|rc)){0,3}",
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn never_panics_reflexive_antisymmetric(a in any_input(), b in any_input()) {
        for scheme in Scheme::ALL {
            check_pair(scheme, &a, &b)?;
        }
    }

    #[test]
    fn antisymmetric_on_well_formed_pairs(
        d in prop::collection::vec(dpkg_version(), 2),
        r in prop::collection::vec(rpm_version(), 2),
        a in prop::collection::vec(apk_version(), 2),
        p in prop::collection::vec(pacman_version_with_pkgrel(), 2),
    ) {
        check_pair(Scheme::Dpkg, &d[0], &d[1])?;
        check_pair(Scheme::Rpm, &r[0], &r[1])?;
        check_pair(Scheme::Apk, &a[0], &a[1])?;
        check_pair(Scheme::Pacman, &p[0], &p[1])?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn dpkg_transitive(versions in prop::collection::vec(dpkg_version(), 3..8)) {
        check_transitive(Scheme::Dpkg, &versions)?;
    }

    #[test]
    fn rpm_transitive(versions in prop::collection::vec(rpm_version(), 3..8)) {
        check_transitive(Scheme::Rpm, &versions)?;
    }

    #[test]
    fn apk_transitive(versions in prop::collection::vec(apk_version(), 3..8)) {
        check_transitive(Scheme::Apk, &versions)?;
    }

    #[test]
    fn pacman_transitive_with_pkgrel(versions in prop::collection::vec(pacman_version_with_pkgrel(), 3..8)) {
        check_transitive(Scheme::Pacman, &versions)?;
    }

    #[test]
    fn pacman_transitive_without_pkgrel(versions in prop::collection::vec(pacman_version_without_pkgrel(), 3..8)) {
        check_transitive(Scheme::Pacman, &versions)?;
    }

    /// apk's and rpm's orders are total preorders on any string, not only well-formed ones.
    #[test]
    fn apk_and_rpm_transitive_on_any_string(versions in prop::collection::vec(version_alphabet(), 3..7)) {
        check_transitive(Scheme::Apk, &versions)?;
        check_transitive(Scheme::Rpm, &versions)?;
    }
}
