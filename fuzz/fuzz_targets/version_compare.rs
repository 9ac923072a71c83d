//! Fuzzes `patchctl_version`: the input is split on 0xFF bytes (never valid UTF-8, so
//! never part of a decoded version) into up to three strings, decoded lossily, and
//! compared under every scheme.
//!
//! Asserts: no panic; antisymmetry, errors included (`compare(a, b)` fails exactly when
//! `compare(b, a)` does, otherwise they are opposite); reflexivity; a version that passes
//! `parse_check` compares without error; transitivity where the crate promises it
//! (apk and rpm on any string, dpkg on anything it parses; pacman's native order is not
//! transitive, see its module docs).

#![no_main]

use std::cmp::Ordering;

use libfuzzer_sys::fuzz_target;
use patchctl_version::Scheme;

fuzz_target!(|data: &[u8]| {
    let parts: Vec<String> = data
        .splitn(3, |&b| b == 0xFF)
        .map(|part| String::from_utf8_lossy(part).into_owned())
        .collect();
    let a = &parts[0];
    let b = parts.get(1).unwrap_or(a);

    for scheme in Scheme::ALL {
        let forward = scheme.compare(a, b);
        let backward = scheme.compare(b, a);
        match (&forward, &backward) {
            (Ok(f), Ok(r)) => assert_eq!(*f, r.reverse(), "{scheme}: {a:?} vs {b:?}"),
            (Err(_), Err(_)) => {}
            _ => panic!("{scheme}: {a:?} vs {b:?}: {forward:?} but reversed {backward:?}"),
        }
        for s in [a, b] {
            let well_formed = scheme.parse_check(s).is_ok();
            match scheme.compare(s, s) {
                Ok(order) => assert_eq!(order, Ordering::Equal, "{scheme}: {s:?}"),
                Err(e) => assert!(!well_formed, "{scheme}: well-formed {s:?} fails: {e}"),
            }
        }
        if scheme.parse_check(a).is_ok() && scheme.parse_check(b).is_ok() {
            assert!(
                forward.is_ok(),
                "{scheme}: well-formed {a:?} vs {b:?}: {forward:?}"
            );
        }

        if let (Some(c), false) = (parts.get(2), scheme == Scheme::Pacman) {
            let (Ok(ab), Ok(bc), Ok(ac)) = (
                scheme.compare(a, b),
                scheme.compare(b, c),
                scheme.compare(a, c),
            ) else {
                continue;
            };
            if ab != Ordering::Greater && bc != Ordering::Greater {
                let expected = if ab == Ordering::Less || bc == Ordering::Less {
                    Ordering::Less
                } else {
                    Ordering::Equal
                };
                assert_eq!(
                    ac, expected,
                    "{scheme}: {a:?} {ab:?} {b:?}, {b:?} {bc:?} {c:?}, but {a:?} {ac:?} {c:?}"
                );
            }
        }
    }
});
