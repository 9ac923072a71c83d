//! Debian versions: `[epoch:]upstream_version[-debian_revision]`, ordered as
//! `dpkg --compare-versions` does.
//!
//! A thin wrapper around the [`debversion`] crate (parsing and `verrevcmp`). A missing
//! epoch counts as 0 and a missing revision as `0`, so `1.0 == 0:1.0 == 1.0-0`.
//!
//! [`compare`] accepts what `debversion` parses leniently (Debian's character set plus
//! `_`, which dpkg only warns about); [`parse_check`] applies Debian Policy §5.6.12 and
//! dpkg's own errors.
//!
//! One known divergence from dpkg, kept because it comes from `debversion`: where one
//! version has a run of digits and the other has none at the same place, dpkg reads the
//! missing run as 0 while `debversion` sorts it first, e.g. `1.0a < 1.0a0` (dpkg: equal).
//! Real package versions essentially never differ only in that way.

use std::cmp::Ordering;

use debversion::Version;

use crate::{Scheme, VersionError};

const SCHEME: Scheme = Scheme::Dpkg;

/// dpkg's `parseversion()` split, with its hard errors (the ones `dpkg
/// --compare-versions` refuses to compare): returns `(has_epoch, upstream, revision,
/// offset of upstream)`.
fn split(s: &str) -> Result<(bool, &str, Option<&str>, usize), VersionError> {
    if s.is_empty() {
        return Err(VersionError::Empty { scheme: SCHEME });
    }
    if let Some((index, ch)) = s.char_indices().find(|(_, c)| c.is_whitespace()) {
        return Err(VersionError::InvalidChar {
            scheme: SCHEME,
            version: s.to_owned(),
            ch,
            index,
            part: "version",
        });
    }
    let (has_epoch, rest, offset) = match s.split_once(':') {
        Some((epoch, rest)) => {
            if epoch.is_empty() {
                return Err(VersionError::epoch(SCHEME, s, "empty before ':'"));
            }
            if !epoch.bytes().all(|c| c.is_ascii_digit()) {
                return Err(VersionError::epoch(SCHEME, s, "not a number"));
            }
            // dpkg stores the epoch in an int and rejects anything above INT_MAX.
            if epoch.parse::<i32>().is_err() {
                return Err(VersionError::epoch(SCHEME, s, "too large"));
            }
            if rest.is_empty() {
                return Err(VersionError::malformed(
                    SCHEME,
                    s,
                    "nothing after the epoch's ':'",
                ));
            }
            (true, rest, epoch.len() + 1)
        }
        None => (false, s, 0),
    };
    let (upstream, revision) = match rest.rfind('-') {
        Some(hyphen) => (&rest[..hyphen], Some(&rest[hyphen + 1..])),
        None => (rest, None),
    };
    if revision == Some("") {
        return Err(VersionError::malformed(
            SCHEME,
            s,
            "debian revision is empty",
        ));
    }
    if upstream.is_empty() {
        return Err(VersionError::malformed(
            SCHEME,
            s,
            "upstream version is empty",
        ));
    }
    Ok((has_epoch, upstream, revision, offset))
}

/// Parses `s` as [`compare`] does into a [`debversion::Version`]: dpkg's hard errors
/// (empty, whitespace, bad epoch, empty part) are errors, its warnings (an upstream
/// version not starting with a digit, `_`) are not; characters that neither dpkg's
/// ordering nor `debversion` handle (outside `A-Za-z0-9.+~-:_`) are errors.
pub fn parse(s: &str) -> Result<Version, VersionError> {
    split(s)?;
    Version::parse_lenient(s).map_err(|_| {
        let bad = s
            .char_indices()
            .find(|&(_, c)| !(c.is_ascii_alphanumeric() || ".+~-:_".contains(c)));
        match bad {
            Some((index, ch)) => VersionError::InvalidChar {
                scheme: SCHEME,
                version: s.to_owned(),
                ch,
                index,
                part: "version",
            },
            None => VersionError::malformed(
                SCHEME,
                s,
                "not of the form [epoch:]upstream_version[-debian_revision]",
            ),
        }
    })
}

/// Orders two Debian versions like `dpkg --compare-versions`.
pub fn compare(a: &str, b: &str) -> Result<Ordering, VersionError> {
    if a == b {
        // Still reject garbage, but do not depend on the parser for reflexivity.
        parse(a)?;
        return Ok(Ordering::Equal);
    }
    Ok(parse(a)?.cmp(&parse(b)?))
}

/// Checks that `s` is a well-formed Debian version (Debian Policy §5.6.12, plus dpkg's
/// parse errors): an optional epoch of digits that fits dpkg's range; an upstream version
/// that starts with a digit and uses only `A-Za-z0-9.+~`, plus `-` only when there is a
/// revision and `:` only when there is an epoch; an optional non-empty revision (after
/// the last `-`) of `A-Za-z0-9+.~`.
pub fn parse_check(s: &str) -> Result<(), VersionError> {
    let (has_epoch, upstream, revision, offset) = split(s)?;
    if !upstream.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(VersionError::malformed(
            SCHEME,
            s,
            "upstream version does not start with a digit",
        ));
    }
    let has_revision = revision.is_some();
    VersionError::check_chars(SCHEME, s, offset, upstream, "upstream version", |c| {
        c.is_ascii_alphanumeric()
            || matches!(c, '.' | '+' | '~')
            || (c == '-' && has_revision)
            || (c == ':' && has_epoch)
    })?;
    if let Some(revision) = revision {
        let offset = offset + upstream.len() + 1;
        VersionError::check_chars(SCHEME, s, offset, revision, "debian revision", |c| {
            c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '~')
        })?;
    }
    // Anything accepted above must also be understood by the comparison.
    parse(s).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_epoch_and_revision_are_zero() {
        assert_eq!(compare("1.0", "0:1.0-0").unwrap(), Ordering::Equal);
        assert_eq!(compare("1.0~rc1", "1.0").unwrap(), Ordering::Less);
        assert_eq!(compare("1:0.1", "2.0").unwrap(), Ordering::Greater);
    }

    #[test]
    fn debversion_divergence_is_pinned() {
        // dpkg says equal; documented in the module docs.
        assert_eq!(compare("1.0a", "1.0a0").unwrap(), Ordering::Less);
    }

    #[test]
    fn compare_rejects_what_cannot_be_parsed() {
        for bad in [
            "",
            "1.0 1",
            "1:",
            "x:1.0",
            ":1.0",
            "1.0-",
            "1:-1",
            "99999999999:1.0",
            "ä",
            "1.0/1",
        ] {
            assert!(compare(bad, "1.0").is_err(), "{bad:?}");
            assert!(compare("1.0", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn parse_check_follows_policy() {
        for good in [
            "1.0",
            "1:2.30.2-1+deb11u1",
            "2.7.4+reloaded2-13ubuntu1",
            "1.0~rc1-1~bpo12+1",
            "1.2-3-4",
            "1:2:3-1",
        ] {
            assert!(
                parse_check(good).is_ok(),
                "{good:?}: {:?}",
                parse_check(good)
            );
        }
        for bad in [
            "",
            "a1.0",
            ":1.0",
            "x:1.0",
            "1.0-",
            "1.0_1",
            "1.0-1_2",
            "2147483648:1.0",
            "1.0 ",
            "1:",
        ] {
            assert!(parse_check(bad).is_err(), "{bad:?}");
        }
    }
}
