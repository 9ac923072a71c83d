//! Native package version comparison for the four package-manager families PatchCTL
//! manages: Debian (`dpkg`), Red Hat (`rpm`), Alpine (`apk`) and Arch (`pacman`).
//!
//! The agent uses it to refuse downgrades, the platform's CVE matcher to decide whether an
//! installed version is below a fixed one. Each scheme lives in its own module and follows
//! the package manager's own algorithm; [`Scheme`] dispatches to them.
//!
//! Two entry points per scheme:
//!
//! * [`Scheme::compare`] orders two versions the way the package manager does. It is as
//!   lenient as the native tool: `rpm`, `apk` and `pacman` order *any* string (their tools
//!   never reject a version when comparing), `dpkg` rejects what cannot be parsed at all.
//!   It never panics, it is reflexive and antisymmetric on every input, and transitive on
//!   well-formed versions (see each module for the exact guarantees and the native quirks
//!   that are kept).
//! * [`Scheme::parse_check`] says whether a string is a *well-formed* version of the
//!   scheme, with an error that names what is wrong. Use it on input that should be a real
//!   package version (an advisory's fixed version, an operator's pin).
//!
//! ```
//! use std::cmp::Ordering;
//! use patchctl_version::Scheme;
//!
//! assert_eq!(Scheme::Dpkg.compare("1.0~rc1-1", "1.0-1").unwrap(), Ordering::Less);
//! assert_eq!(Scheme::Rpm.compare("1:1.0-1.el9", "2.0-1.el9").unwrap(), Ordering::Greater);
//! assert_eq!(Scheme::Apk.compare("1.2_rc1-r0", "1.2-r0").unwrap(), Ordering::Less);
//! assert_eq!(Scheme::Pacman.compare("1.1a-1", "1.1-1").unwrap(), Ordering::Less);
//! assert!(Scheme::Rpm.parse_check("1.0-1-1").is_err());
//! ```
//!
//! None of the comparisons uses a third-party implementation. `dpkg` first wrapped the
//! `debversion` crate and was rewritten for the agent's memory (see `dpkg`). The `rpm`,
//! `apk` and `pacman` algorithms are written here
//! (the crates.io candidates either failed the shared test vectors, need a newer Rust than
//! the workspace's 1.85, or are C bindings); see the module docs.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

pub mod apk;
pub mod dpkg;
pub mod pacman;
pub mod rpm;

mod num;

pub use rpm::Evr;

/// A package-version scheme: which package manager's ordering rules apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scheme {
    /// Debian and derivatives: `[epoch:]upstream_version[-debian_revision]`, compared as
    /// `dpkg --compare-versions` does.
    Dpkg,
    /// Red Hat family (RHEL, Fedora, SUSE, ...): `[epoch:]version[-release]`, compared with
    /// rpm's `rpmvercmp` and epoch rules.
    Rpm,
    /// Alpine: `number{.number}[letter]{_suffix[number]}[~hash][-rN]`, compared as
    /// apk-tools does.
    Apk,
    /// Arch Linux: `[epoch:]pkgver[-pkgrel]`, compared as pacman's `alpm_pkg_vercmp`.
    Pacman,
}

impl Scheme {
    /// Every scheme, in declaration order.
    pub const ALL: [Scheme; 4] = [Scheme::Dpkg, Scheme::Rpm, Scheme::Apk, Scheme::Pacman];

    /// Orders `a` against `b` with this scheme's native rules.
    ///
    /// `Ordering::Less` means `a` is the older version. Errors only when a version cannot
    /// be interpreted at all (for `dpkg` a string its parser rejects, for `rpm` an epoch
    /// that does not fit in 64 bits); `apk` and `pacman` never fail.
    pub fn compare(self, a: &str, b: &str) -> Result<Ordering, VersionError> {
        match self {
            Scheme::Dpkg => dpkg::compare(a, b),
            Scheme::Rpm => rpm::compare(a, b),
            Scheme::Apk => Ok(apk::compare(a, b)),
            Scheme::Pacman => Ok(pacman::compare(a, b)),
        }
    }

    /// Checks that `s` is a well-formed version of this scheme; the error says what is
    /// wrong with it.
    pub fn parse_check(self, s: &str) -> Result<(), VersionError> {
        match self {
            Scheme::Dpkg => dpkg::parse_check(s),
            Scheme::Rpm => rpm::parse_check(s),
            Scheme::Apk => apk::parse_check(s),
            Scheme::Pacman => pacman::parse_check(s),
        }
    }

    /// The scheme's lower-case name: `dpkg`, `rpm`, `apk` or `pacman`.
    pub fn name(self) -> &'static str {
        match self {
            Scheme::Dpkg => "dpkg",
            Scheme::Rpm => "rpm",
            Scheme::Apk => "apk",
            Scheme::Pacman => "pacman",
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Scheme {
    type Err = UnknownScheme;

    /// Parses a scheme name as printed by [`Scheme::name`] (ASCII case-insensitive).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scheme::ALL
            .into_iter()
            .find(|scheme| scheme.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownScheme(s.to_owned()))
    }
}

/// Error of [`Scheme::from_str`]: the name is none of `dpkg`, `rpm`, `apk`, `pacman`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown version scheme {0:?} (expected dpkg, rpm, apk or pacman)")]
pub struct UnknownScheme(pub String);

/// Why a version string was rejected.
///
/// Every variant carries the scheme and the offending version (printed with `{:?}`, so
/// control characters are escaped) and its message says what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VersionError {
    /// The version string is empty.
    #[error("{scheme} version is empty")]
    Empty {
        /// Scheme whose rules were applied.
        scheme: Scheme,
    },
    /// The epoch (the part before `:`) is not a number, is empty, or is too large.
    #[error("{scheme} version {version:?}: invalid epoch: {reason}")]
    InvalidEpoch {
        /// Scheme whose rules were applied.
        scheme: Scheme,
        /// The whole version string.
        version: String,
        /// What is wrong with the epoch.
        reason: &'static str,
    },
    /// A character the scheme does not allow where it appears.
    #[error("{scheme} version {version:?}: invalid character {ch:?} at byte {index} in the {part}")]
    InvalidChar {
        /// Scheme whose rules were applied.
        scheme: Scheme,
        /// The whole version string.
        version: String,
        /// The offending character.
        ch: char,
        /// Its byte offset in `version`.
        index: usize,
        /// Which part of the version it is in (`version`, `release`, ...).
        part: &'static str,
    },
    /// The version's structure is wrong (an empty part, a part in the wrong place, ...).
    #[error("{scheme} version {version:?}: {reason}")]
    Malformed {
        /// Scheme whose rules were applied.
        scheme: Scheme,
        /// The whole version string.
        version: String,
        /// What is wrong.
        reason: String,
    },
}

impl VersionError {
    /// The scheme whose rules rejected the version.
    pub fn scheme(&self) -> Scheme {
        match self {
            VersionError::Empty { scheme }
            | VersionError::InvalidEpoch { scheme, .. }
            | VersionError::InvalidChar { scheme, .. }
            | VersionError::Malformed { scheme, .. } => *scheme,
        }
    }

    pub(crate) fn malformed(scheme: Scheme, version: &str, reason: impl Into<String>) -> Self {
        VersionError::Malformed {
            scheme,
            version: version.to_owned(),
            reason: reason.into(),
        }
    }

    pub(crate) fn epoch(scheme: Scheme, version: &str, reason: &'static str) -> Self {
        VersionError::InvalidEpoch {
            scheme,
            version: version.to_owned(),
            reason,
        }
    }

    /// First character of `version[offset..]` that `allowed` rejects, as an error.
    pub(crate) fn check_chars(
        scheme: Scheme,
        version: &str,
        offset: usize,
        part_str: &str,
        part: &'static str,
        allowed: impl Fn(char) -> bool,
    ) -> Result<(), Self> {
        match part_str.char_indices().find(|&(_, c)| !allowed(c)) {
            None => Ok(()),
            Some((i, ch)) => Err(VersionError::InvalidChar {
                scheme,
                version: version.to_owned(),
                ch,
                index: offset + i,
                part,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheme_names_round_trip() {
        for scheme in Scheme::ALL {
            assert_eq!(scheme.name().parse::<Scheme>().unwrap(), scheme);
            assert_eq!(scheme.to_string(), scheme.name());
        }
        assert_eq!("RPM".parse::<Scheme>().unwrap(), Scheme::Rpm);
        let err = "zypper".parse::<Scheme>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown version scheme \"zypper\" (expected dpkg, rpm, apk or pacman)"
        );
    }

    #[test]
    fn error_messages_say_what_is_wrong() {
        let cases = [
            (Scheme::Dpkg, "", "dpkg version is empty"),
            (
                Scheme::Rpm,
                "x:1.0",
                "rpm version \"x:1.0\": invalid epoch: not a number",
            ),
            (
                Scheme::Rpm,
                "1.0-1-2",
                "rpm version \"1.0-1-2\": invalid character '-' at byte 5 in the release",
            ),
            (
                Scheme::Apk,
                "1.0-r",
                "apk version \"1.0-r\": \"-r\" is not followed by a revision number",
            ),
        ];
        for (scheme, version, message) in cases {
            let err = scheme.parse_check(version).unwrap_err();
            assert_eq!(err.to_string(), message, "{scheme} {version:?}");
            assert_eq!(err.scheme(), scheme);
        }
    }
}
