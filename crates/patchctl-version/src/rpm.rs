//! Red Hat family versions: `[epoch:]version[-release]`, ordered as rpm orders them.
//!
//! Written here rather than taken from crates.io: `rpm` (rpm-rs) needs Rust 1.88 and
//! brings a package parser, `rpmvercmp` is a binding to the C `librpm`, and `rpm-version`
//! (pure Rust, the closest candidate) fails the shared vectors: it cannot tell a missing
//! release from an empty one (`1 < 1-`) and splits the epoch at any `:`.
//!
//! # Algorithm
//!
//! * [`rpmvercmp`] is a transcription of rpm's `rpmvercmp()` (rpmio/rpmvercmp.c, rpm
//!   4.15+): the strings are split into maximal runs of ASCII digits or ASCII letters,
//!   anything else is a separator; numeric runs compare by value (leading zeros ignored,
//!   no overflow at any length), alphabetic runs with `strcmp`, a numeric run is newer
//!   than an alphabetic one; `~` sorts before everything, even the end of the string
//!   (`1.0~rc1 < 1.0`); `^` sorts after the end of the string but before any further
//!   segment (`1.0 < 1.0^git1 < 1.0.1`); when all segments match, the string with
//!   segments left over is newer. Non-ASCII bytes are separators (rpm uses its own
//!   ASCII-only `risalnum`), so `1.1.α == 1.1.β`, as in rpm.
//! * The epoch/version/release split is rpm's `parseEVR()`: the epoch is the run of
//!   leading digits when a `:` follows it (`:1.0` has epoch 0), otherwise there is none
//!   (`a:1` is a version containing a colon); the release is what follows the *last* `-`.
//! * Epochs compare numerically, a missing epoch counting as 0. Versions compare with
//!   [`rpmvercmp`]. Releases compare with [`rpmvercmp`] when both are present; a version
//!   without a release sorts before the same version with any release, even an empty
//!   one (`1 < 1- == 1-`).
//!
//! The last rule is where this differs from rpm's dependency matching (`rpmdsCompare`,
//! `rpmverCmp`), which skips the release when either side lacks one so that `foo >= 1.0`
//! matches every release of 1.0. That rule is not transitive (`1.0-1 == 1.0 == 1.0-2`
//! but `1.0-1 < 1.0-2`), so it cannot be a sort order; the shared vectors (and
//! `rpmVersionCompare()` on headers, which always have a release) use the total order
//! implemented here. Callers matching a release-less constraint should compare
//! [`Evr::epoch`] and [`Evr::version`] themselves.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use crate::num::span;
use crate::{Scheme, VersionError};

const SCHEME: Scheme = Scheme::Rpm;

/// An rpm epoch-version-release triple.
///
/// Equality and ordering follow rpm ([`Evr::cmp`]), not the spelling: `1.0 == 1_0` and
/// `0:1.0 == 1.0`. `Display` prints the triple back in `[epoch:]version[-release]` form.
#[derive(Debug, Clone)]
pub struct Evr {
    /// The epoch; `None` when the string had none. A missing epoch compares as 0.
    pub epoch: Option<u64>,
    /// The version (never contains the epoch's `:`; may be empty for odd input).
    pub version: String,
    /// The release: what follows the last `-`, `None` when there is no `-`.
    pub release: Option<String>,
}

impl Evr {
    /// Splits `s` the way rpm's `parseEVR()` does. This accepts any string (rpm does);
    /// the only error is an epoch too large for a `u64`. Use [`Evr::parse_strict`] to
    /// also require a well-formed version.
    pub fn parse(s: &str) -> Result<Evr, VersionError> {
        let (epoch, version, release) = split(s)?;
        Ok(Evr {
            epoch,
            version: version.to_owned(),
            release: release.map(str::to_owned),
        })
    }

    /// [`parse_check`] then [`Evr::parse`]: only well-formed versions are accepted.
    pub fn parse_strict(s: &str) -> Result<Evr, VersionError> {
        parse_check(s)?;
        Evr::parse(s)
    }

    /// The epoch, 0 when missing.
    pub fn epoch_or_zero(&self) -> u64 {
        self.epoch.unwrap_or(0)
    }
}

/// `parseEVR()`'s split, borrowed: (epoch, version, release).
fn split(s: &str) -> Result<(Option<u64>, &str, Option<&str>), VersionError> {
    let digits = span(s.as_bytes(), 0, |c| c.is_ascii_digit());
    let (epoch, rest) = if s.as_bytes().get(digits) == Some(&b':') {
        let epoch = parse_epoch(s, &s[..digits])?;
        (Some(epoch), &s[digits + 1..])
    } else {
        (None, s)
    };
    Ok(match rest.rfind('-') {
        Some(hyphen) => (epoch, &rest[..hyphen], Some(&rest[hyphen + 1..])),
        None => (epoch, rest, None),
    })
}

/// rpm's order of two split triples (see [`Evr::cmp`]).
fn cmp_split(
    a: (Option<u64>, &str, Option<&str>),
    b: (Option<u64>, &str, Option<&str>),
) -> Ordering {
    a.0.unwrap_or(0)
        .cmp(&b.0.unwrap_or(0))
        .then_with(|| rpmvercmp(a.1, b.1))
        .then_with(|| match (a.2, b.2) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            (Some(x), Some(y)) => rpmvercmp(x, y),
        })
}

fn parse_epoch(whole: &str, digits: &str) -> Result<u64, VersionError> {
    if digits.is_empty() {
        // rpm: an empty epoch (":1.0") is epoch 0.
        return Ok(0);
    }
    digits
        .parse::<u64>()
        .map_err(|_| VersionError::epoch(SCHEME, whole, "does not fit in 64 bits"))
}

impl Ord for Evr {
    /// rpm's order: epoch (missing = 0), then version with [`rpmvercmp`], then release
    /// with [`rpmvercmp`] where a missing release sorts before any release.
    fn cmp(&self, other: &Self) -> Ordering {
        cmp_split(
            (self.epoch, &self.version, self.release.as_deref()),
            (other.epoch, &other.version, other.release.as_deref()),
        )
    }
}

impl PartialOrd for Evr {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Evr {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Evr {}

impl fmt::Display for Evr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(epoch) = self.epoch {
            write!(f, "{epoch}:")?;
        }
        f.write_str(&self.version)?;
        if let Some(release) = &self.release {
            write!(f, "-{release}")?;
        }
        Ok(())
    }
}

impl FromStr for Evr {
    type Err = VersionError;

    /// Same as [`Evr::parse`] (lenient, like rpm).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Evr::parse(s)
    }
}

/// Orders two rpm EVR strings (see the module docs). Errors only for an epoch that does
/// not fit in a `u64`.
pub fn compare(a: &str, b: &str) -> Result<Ordering, VersionError> {
    Ok(cmp_split(split(a)?, split(b)?))
}

/// Checks that `s` is a well-formed `[epoch:]version[-release]`: the epoch, if any, is a
/// non-empty decimal number that fits in a `u64`; the version is non-empty; the release,
/// if there is a `-`, is non-empty; version and release use only ASCII letters, digits
/// and `. _ + ~ ^` (rpmbuild's set, macros expanded).
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
            parse_epoch(s, epoch)?;
            (rest, epoch.len() + 1)
        }
        None => (s, 0),
    };
    let (version, release) = match rest.split_once('-') {
        Some((version, release)) => (version, Some(release)),
        None => (rest, None),
    };
    if version.is_empty() {
        return Err(VersionError::malformed(SCHEME, s, "version is empty"));
    }
    VersionError::check_chars(SCHEME, s, offset, version, "version", allowed_char)?;
    if let Some(release) = release {
        if release.is_empty() {
            return Err(VersionError::malformed(SCHEME, s, "release is empty"));
        }
        let offset = offset + version.len() + 1;
        VersionError::check_chars(SCHEME, s, offset, release, "release", allowed_char)?;
    }
    Ok(())
}

fn allowed_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '~' | '^')
}

/// rpm's `rpmvercmp()`: orders two version (or release) strings segment by segment.
/// See the module docs for the rules. Accepts any string.
pub fn rpmvercmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a == b {
        return Ordering::Equal;
    }
    let is_separator = |c: u8| !(c.is_ascii_alphanumeric() || c == b'~' || c == b'^');
    let (mut i, mut j) = (0, 0);
    loop {
        i = span(a, i, is_separator);
        j = span(b, j, is_separator);
        let (ca, cb) = (a.get(i).copied(), b.get(j).copied());

        // `~` sorts before everything, the end of the string included.
        if ca == Some(b'~') || cb == Some(b'~') {
            if ca != Some(b'~') {
                return Ordering::Greater;
            }
            if cb != Some(b'~') {
                return Ordering::Less;
            }
            i += 1;
            j += 1;
            continue;
        }

        // `^` sorts after the end of the string but before anything else.
        if ca == Some(b'^') || cb == Some(b'^') {
            if ca.is_none() {
                return Ordering::Less;
            }
            if cb.is_none() {
                return Ordering::Greater;
            }
            if ca != Some(b'^') {
                return Ordering::Greater;
            }
            if cb != Some(b'^') {
                return Ordering::Less;
            }
            i += 1;
            j += 1;
            continue;
        }

        let (Some(_), Some(_)) = (ca, cb) else {
            break;
        };

        // Both point at an ASCII letter or digit: compare the runs of `a`'s kind.
        let (end_a, end_b) = match crate::num::segment(a, i, b, j) {
            Ok(ends) => ends,
            Err(order) => return order,
        };
        i = end_a;
        j = end_b;
    }
    // All segments equal: whichever has characters left (an alphanumeric run, since
    // separators were skipped and `~`/`^` handled) is newer.
    match (i < a.len(), j < b.len()) {
        (false, false) => Ordering::Equal,
        (true, _) => Ordering::Greater,
        (false, true) => Ordering::Less,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_splits_like_parse_evr() {
        let evr = Evr::parse("2:1.0-3.el9").unwrap();
        assert_eq!(evr.epoch, Some(2));
        assert_eq!(evr.version, "1.0");
        assert_eq!(evr.release.as_deref(), Some("3.el9"));

        let evr = Evr::parse("1.0").unwrap();
        assert_eq!((evr.epoch, evr.release), (None, None));

        // The release follows the last hyphen, as in rpm.
        let evr = Evr::parse("1.0-rc-2").unwrap();
        assert_eq!(evr.version, "1.0-rc");
        assert_eq!(evr.release.as_deref(), Some("2"));

        // Not an epoch: the colon does not follow a run of leading digits.
        let evr = Evr::parse("a:1").unwrap();
        assert_eq!((evr.epoch, evr.version.as_str()), (None, "a:1"));

        // Empty epoch is 0; an empty release is kept as present.
        let evr = Evr::parse(":1-").unwrap();
        assert_eq!(evr.epoch, Some(0));
        assert_eq!(evr.release.as_deref(), Some(""));

        let err = Evr::parse("99999999999999999999:1").unwrap_err();
        assert!(err.to_string().contains("does not fit in 64 bits"), "{err}");
    }

    #[test]
    fn display_round_trips() {
        for s in ["1.0", "2:1.0-3.el9", "0:1", "1-", "a:1"] {
            assert_eq!(Evr::parse(s).unwrap().to_string(), s);
        }
    }

    #[test]
    fn strict_rejects_what_rpmbuild_rejects() {
        assert!(Evr::parse_strict("1:2.3.4-5.el9_3").is_ok());
        assert!(Evr::parse_strict("1.0~rc1^git2+3").is_ok());
        for bad in [
            "", ":1", "a:1", "1:", "1-", "-1", "1 .0", "1.0-1-1", "1:2:3", "1.0/2",
        ] {
            assert!(Evr::parse_strict(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn equality_follows_order() {
        assert_eq!(Evr::parse("0:1.0").unwrap(), Evr::parse("1_0").unwrap());
        assert_ne!(Evr::parse("1.0").unwrap(), Evr::parse("1.0-1").unwrap());
    }
}
