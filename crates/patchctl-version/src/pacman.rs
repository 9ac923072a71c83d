//! Arch Linux versions: `[epoch:]pkgver[-pkgrel]`, ordered as pacman's
//! `alpm_pkg_vercmp()` (what `vercmp(8)` prints).
//!
//! Written here (the `alpm-types` crate needs Rust 1.95). It transcribes libalpm's
//! `version.c`:
//!
//! * The split is `parseEVR()`: the epoch is the run of leading digits when a `:`
//!   follows it (an empty one, or none at all, is `0`); the pkgrel is what follows the
//!   last `-`.
//! * Epoch, pkgver and pkgrel are each compared with libalpm's own copy of
//!   `rpmvercmp()`, which is an *older fork* of rpm's ([`crate::rpm::rpmvercmp`]) and
//!   differs from it on purpose:
//!   - there is no `~` or `^` handling: both are ordinary separators;
//!   - when the separators before two segments differ in length, the longer one wins
//!     (`2___a > 2_a`), segments are not even compared;
//!   - when all segments match, a leftover that starts with a letter loses to the end of
//!     the string, anything else left over wins: `1.0a < 1.0alpha < 1.0b < 1.0` but
//!     `1.0 < 1.0.a` and `1.0 < 1.0.1`.
//! * The pkgrel is compared only when *both* sides have one, so `1.0 == 1.0-1 == 1.0-2`
//!   while `1.0-1 < 1.0-2`. That is pacman's behaviour (a dependency on `foo>=1.0`
//!   accepts every pkgrel) and it makes the order non-transitive when versions with and
//!   without pkgrel are mixed; among versions that all have a pkgrel, or none has, the
//!   order is a total preorder. Full package versions (what the agent sees installed or
//!   offered) always have a pkgrel.
//! * One more native quirk breaks transitivity: a pkgver *ending* in a separator. The
//!   final showdown looks at the raw leftover, so `a. < a1 < a.b < a.` is a cycle in
//!   pacman too. Versions that do not end in a separator are totally preordered.

use std::cmp::Ordering;

use crate::num::span;
use crate::{Scheme, VersionError};

const SCHEME: Scheme = Scheme::Pacman;

/// Orders two pacman versions like `alpm_pkg_vercmp()`. Accepts any string.
pub fn compare(a: &str, b: &str) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    let (epoch_a, ver_a, rel_a) = split_evr(a);
    let (epoch_b, ver_b, rel_b) = split_evr(b);
    vercmp(epoch_a, epoch_b)
        .then_with(|| vercmp(ver_a, ver_b))
        .then_with(|| match (rel_a, rel_b) {
            (Some(a), Some(b)) => vercmp(a, b),
            _ => Ordering::Equal,
        })
}

/// libalpm's `parseEVR()`: `(epoch, pkgver, pkgrel)`, the epoch defaulting to `"0"`.
fn split_evr(s: &str) -> (&str, &str, Option<&str>) {
    let digits = span(s.as_bytes(), 0, |c| c.is_ascii_digit());
    let (epoch, rest) = if s.as_bytes().get(digits) == Some(&b':') {
        let epoch = &s[..digits];
        (if epoch.is_empty() { "0" } else { epoch }, &s[digits + 1..])
    } else {
        ("0", s)
    };
    match rest.rfind('-') {
        Some(hyphen) => (epoch, &rest[..hyphen], Some(&rest[hyphen + 1..])),
        None => (epoch, rest, None),
    }
}

/// libalpm's `rpmvercmp()` fork, used for each of epoch, pkgver and pkgrel (see the
/// module docs for how it differs from rpm's). Accepts any string.
pub fn vercmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a == b {
        return Ordering::Equal;
    }
    let is_separator = |c: u8| !c.is_ascii_alphanumeric();
    // `one`/`two` walk the strings; `ptr1`/`ptr2` mark the end of the previous segment,
    // so `one - ptr1` is the length of the separator run in front of the next segment.
    let (mut one, mut two) = (0, 0);
    let (mut ptr1, mut ptr2) = (0, 0);
    while one < a.len() && two < b.len() {
        one = span(a, one, is_separator);
        two = span(b, two, is_separator);
        if one == a.len() || two == b.len() {
            break;
        }
        if one - ptr1 != two - ptr2 {
            return (one - ptr1).cmp(&(two - ptr2));
        }
        match crate::num::segment(a, one, b, two) {
            Ok((end_a, end_b)) => (ptr1, ptr2) = (end_a, end_b),
            Err(order) => return order,
        }
        one = ptr1;
        two = ptr2;
    }
    let (rest_a, rest_b) = (a.get(one).copied(), b.get(two).copied());
    match (rest_a, rest_b) {
        (None, None) => Ordering::Equal,
        // "The final showdown": a leftover starting with a letter loses to the end of
        // the string; any other leftover wins.
        (None, Some(c)) => {
            if c.is_ascii_alphabetic() {
                Ordering::Greater
            } else {
                Ordering::Less
            }
        }
        (Some(c), _) => {
            if c.is_ascii_alphabetic() {
                Ordering::Less
            } else {
                Ordering::Greater
            }
        }
    }
}

/// Checks that `s` is a well-formed `[epoch:]pkgver[-pkgrel]` as makepkg would build it:
/// the epoch, if any, is a non-empty decimal number; pkgver is non-empty printable ASCII
/// without `:`, `/`, `-` or whitespace; the pkgrel, if any, is `integer[.integer]`.
/// The pkgrel is optional because dependency versions (`foo>=1.2`) omit it.
pub fn parse_check(s: &str) -> Result<(), VersionError> {
    if s.is_empty() {
        return Err(VersionError::Empty { scheme: SCHEME });
    }
    let (rest, offset) = match s.split_once(':') {
        Some((epoch, rest)) => {
            if epoch.is_empty() {
                return Err(VersionError::epoch(SCHEME, s, "empty before ':'"));
            }
            if !epoch.bytes().all(|c| c.is_ascii_digit()) {
                return Err(VersionError::epoch(SCHEME, s, "not a number"));
            }
            (rest, epoch.len() + 1)
        }
        None => (s, 0),
    };
    let (pkgver, pkgrel) = match rest.split_once('-') {
        Some((pkgver, pkgrel)) => (pkgver, Some(pkgrel)),
        None => (rest, None),
    };
    if pkgver.is_empty() {
        return Err(VersionError::malformed(SCHEME, s, "pkgver is empty"));
    }
    VersionError::check_chars(SCHEME, s, offset, pkgver, "pkgver", |c| {
        c.is_ascii_graphic() && !matches!(c, ':' | '/' | '-')
    })?;
    if let Some(pkgrel) = pkgrel {
        let offset = offset + pkgver.len() + 1;
        VersionError::check_chars(SCHEME, s, offset, pkgrel, "pkgrel", |c| {
            c.is_ascii_digit() || c == '.'
        })?;
        let mut parts = pkgrel.split('.');
        let well_formed = parts.next().is_some_and(|p| !p.is_empty())
            && parts.next().is_none_or(|p| !p.is_empty())
            && parts.next().is_none();
        if !well_formed {
            return Err(VersionError::malformed(
                SCHEME,
                s,
                "pkgrel must be of the form integer[.integer]",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_is_parse_evr() {
        assert_eq!(split_evr("1:2.0-3"), ("1", "2.0", Some("3")));
        assert_eq!(split_evr(":2.0"), ("0", "2.0", None));
        assert_eq!(split_evr("2.0-a-3"), ("0", "2.0-a", Some("3")));
        assert_eq!(split_evr("a:2.0"), ("0", "a:2.0", None));
    }

    #[test]
    fn native_non_transitive_cases_are_kept() {
        // pkgrel compared only when both have one.
        assert_eq!(compare("1.0-1", "1.0"), Ordering::Equal);
        assert_eq!(compare("1.0", "1.0-2"), Ordering::Equal);
        assert_eq!(compare("1.0-1", "1.0-2"), Ordering::Less);
        // A trailing separator: a cycle, exactly as libalpm computes it.
        assert_eq!(vercmp("a.", "a1"), Ordering::Less);
        assert_eq!(vercmp("a1", "a.b"), Ordering::Less);
        assert_eq!(vercmp("a.b", "a."), Ordering::Less);
    }

    #[test]
    fn parse_check_follows_makepkg() {
        for good in [
            "1.0",
            "1:1.0-1",
            "1.0-1.1",
            "2024.01.01_r3-2",
            "1.0+git3.abc-1",
        ] {
            assert!(parse_check(good).is_ok(), "{good:?}");
        }
        for bad in [
            "", ":1", "a:1.0", "1.0-", "1.0-1-1", "1.0-1.", "1.0-x", "1 0", "a/b",
        ] {
            assert!(parse_check(bad).is_err(), "{bad:?}");
        }
    }
}
