//! Debian versions: `[epoch:]upstream_version[-debian_revision]`, ordered as
//! `dpkg --compare-versions` does.
//!
//! dpkg's own algorithm (`parseversion` and `verrevcmp` of dpkg's lib/dpkg/version.c),
//! written here. A missing epoch counts as 0 and a missing revision as `0`, so
//! `1.0 == 0:1.0 == 1.0-0`; where one version has a run of digits and the other none at
//! the same place, the missing run reads as 0 (`1.0a == 1.0a0`), as in dpkg.
//!
//! This replaced a wrapper around the `debversion` crate: that crate pulls a regular
//! expression engine (lazy-regex) into the agent, about 0.5 MiB of resident code, and
//! the agent's idle RSS target is 8 MB (ARCHITECTURE.md, Decisions). The shared
//! vectors (`tests/vectors.rs`, 7,251 dpkg cases) hold it to dpkg's order.
//!
//! [`compare`] accepts Debian's character set plus `_` (which dpkg only warns about);
//! [`parse_check`] applies Debian Policy §5.6.12 and dpkg's own errors.

use std::cmp::Ordering;

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

/// A version as [`compare`] reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parsed<'a> {
    /// The epoch (0 when absent).
    pub epoch: i32,
    /// The upstream version.
    pub upstream: &'a str,
    /// The Debian revision (empty when absent, which orders as `0`).
    pub revision: &'a str,
}

/// Parses `s` as [`compare`] does: dpkg's hard errors (empty, whitespace, bad epoch,
/// empty part) are errors, its warnings (an upstream version not starting with a digit,
/// `_`) are not; characters outside `A-Za-z0-9.+~-:_` are errors.
pub fn parse(s: &str) -> Result<Parsed<'_>, VersionError> {
    let (has_epoch, upstream, revision, _) = split(s)?;
    if let Some((index, ch)) = s
        .char_indices()
        .find(|&(_, c)| !(c.is_ascii_alphanumeric() || ".+~-:_".contains(c)))
    {
        return Err(VersionError::InvalidChar {
            scheme: SCHEME,
            version: s.to_owned(),
            ch,
            index,
            part: "version",
        });
    }
    let epoch = if has_epoch {
        // `split` checked that it is a number that fits.
        s.split(':')
            .next()
            .and_then(|e| e.parse().ok())
            .unwrap_or(0)
    } else {
        0
    };
    Ok(Parsed {
        epoch,
        upstream,
        revision: revision.unwrap_or(""),
    })
}

/// dpkg's character weight: digits 0 (they are compared as numbers), letters first,
/// `~` before everything (even the end), other characters after letters.
fn order(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(b'~') => -1,
        Some(c) => i32::from(c) + 256,
    }
}

/// dpkg's `verrevcmp`.
fn verrevcmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    let digit = |s: &[u8], k: usize| s.get(k).is_some_and(u8::is_ascii_digit);
    while i < a.len() || j < b.len() {
        while (i < a.len() && !digit(a, i)) || (j < b.len() && !digit(b, j)) {
            let (ac, bc) = (order(a.get(i).copied()), order(b.get(j).copied()));
            if ac != bc {
                return ac.cmp(&bc);
            }
            i += 1;
            j += 1;
        }
        while a.get(i) == Some(&b'0') {
            i += 1;
        }
        while b.get(j) == Some(&b'0') {
            j += 1;
        }
        let mut first_diff = Ordering::Equal;
        while digit(a, i) && digit(b, j) {
            if first_diff == Ordering::Equal {
                first_diff = a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
        }
        if digit(a, i) {
            return Ordering::Greater;
        }
        if digit(b, j) {
            return Ordering::Less;
        }
        if first_diff != Ordering::Equal {
            return first_diff;
        }
    }
    Ordering::Equal
}

/// Orders two Debian versions like `dpkg --compare-versions`.
pub fn compare(a: &str, b: &str) -> Result<Ordering, VersionError> {
    let (a, b) = (parse(a)?, parse(b)?);
    Ok(a.epoch
        .cmp(&b.epoch)
        .then_with(|| verrevcmp(a.upstream, b.upstream))
        .then_with(|| verrevcmp(a.revision, b.revision)))
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
    fn a_missing_digit_run_reads_as_zero_as_in_dpkg() {
        // `dpkg --compare-versions 1.0a eq 1.0a0` is true (debversion said less).
        assert_eq!(compare("1.0a", "1.0a0").unwrap(), Ordering::Equal);
        assert_eq!(compare("1.0a", "1.0a1").unwrap(), Ordering::Less);
        assert_eq!(compare("1.0~", "1.0").unwrap(), Ordering::Less);
        assert_eq!(compare("1.0+", "1.0").unwrap(), Ordering::Greater);
        assert_eq!(compare("1.0.a", "1.0a").unwrap(), Ordering::Greater);
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
