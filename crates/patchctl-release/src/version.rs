//! Release versions: `MAJOR.MINOR.PATCH` with an optional `-PRERELEASE`, ordered the
//! way SemVer 2.0 orders them (a pre-release sorts before its release; identifiers
//! compare numerically when both are numbers, else as ASCII, numbers first).

use std::cmp::Ordering;
use std::fmt;

/// A parsed release version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseVersion {
    major: u64,
    minor: u64,
    patch: u64,
    pre: Vec<String>,
}

/// Why a string is not a release version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not a release version: expected MAJOR.MINOR.PATCH with an optional -PRERELEASE (e.g. 1.4.0 or 1.4.0-rc.1)"
)]
pub struct VersionError(pub String);

fn number(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 19 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if s.len() > 1 && s.starts_with('0') {
        return None;
    }
    s.parse().ok()
}

impl ReleaseVersion {
    /// Parses `1.4.0` or `1.4.0-rc.1`; anything else (build metadata, leading zeros,
    /// empty identifiers, more than 64 bytes) is refused.
    pub fn parse(s: &str) -> Result<ReleaseVersion, VersionError> {
        let err = || VersionError(s.chars().take(80).collect());
        if s.len() > 64 {
            return Err(err());
        }
        let (core, pre) = match s.split_once('-') {
            Some((c, p)) => (c, Some(p)),
            None => (s, None),
        };
        let parts: Vec<&str> = core.split('.').collect();
        let [a, b, c] = parts.as_slice() else {
            return Err(err());
        };
        let (major, minor, patch) = (
            number(a).ok_or_else(err)?,
            number(b).ok_or_else(err)?,
            number(c).ok_or_else(err)?,
        );
        let pre = match pre {
            None => Vec::new(),
            Some(p) => {
                let ids: Vec<String> = p.split('.').map(str::to_owned).collect();
                for id in &ids {
                    let ok = !id.is_empty()
                        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                        && (!id.bytes().all(|b| b.is_ascii_digit()) || number(id).is_some());
                    if !ok {
                        return Err(err());
                    }
                }
                ids
            }
        };
        Ok(ReleaseVersion {
            major,
            minor,
            patch,
            pre,
        })
    }
}

impl fmt::Display for ReleaseVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)?;
        if !self.pre.is_empty() {
            write!(f, "-{}", self.pre.join("."))?;
        }
        Ok(())
    }
}

fn cmp_ident(a: &str, b: &str) -> Ordering {
    match (number(a), number(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.cmp(b),
    }
}

impl Ord for ReleaseVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.major, self.minor, self.patch)
            .cmp(&(other.major, other.minor, other.patch))
            .then_with(|| match (self.pre.is_empty(), other.pre.is_empty()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => {
                    for (a, b) in self.pre.iter().zip(&other.pre) {
                        let o = cmp_ident(a, b);
                        if o != Ordering::Equal {
                            return o;
                        }
                    }
                    self.pre.len().cmp(&other.pre.len())
                }
            })
    }
}

impl PartialOrd for ReleaseVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn v(s: &str) -> ReleaseVersion {
        ReleaseVersion::parse(s).unwrap()
    }

    #[test]
    fn semver_precedence() {
        // SemVer 2.0's own example chain.
        let chain = [
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
            "1.0.1",
            "1.1.0",
            "1.10.0",
            "2.0.0",
        ];
        for w in chain.windows(2) {
            assert!(v(w[0]) < v(w[1]), "{} < {}", w[0], w[1]);
        }
        assert_eq!(v("0.1.0"), v("0.1.0"));
    }

    #[test]
    fn refuses_what_is_not_a_version() {
        for bad in [
            "",
            "1",
            "1.2",
            "1.2.3.4",
            "01.2.3",
            "1.2.3-",
            "1.2.3-a..b",
            "1.2.3+build",
            "v1.2.3",
            "1.2.3-01",
            " 1.2.3",
            "1.2.x",
            "-1.2.3",
        ] {
            assert!(ReleaseVersion::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(ReleaseVersion::parse(&format!("1.2.3-{}", "a".repeat(80))).is_err());
    }

    proptest! {
        #[test]
        fn parse_never_panics_and_display_round_trips(s in "\\PC{0,40}") {
            if let Ok(x) = ReleaseVersion::parse(&s) {
                prop_assert_eq!(x.to_string(), s);
            }
        }

        #[test]
        fn order_is_total_and_consistent(
            a in (0u64..4, 0u64..4, 0u64..4, proptest::option::of("[a-c0-2]{1,2}(\\.[a-c0-2]{1,2})?")),
            b in (0u64..4, 0u64..4, 0u64..4, proptest::option::of("[a-c0-2]{1,2}(\\.[a-c0-2]{1,2})?")),
        ) {
            let mk = |(x, y, z, p): (u64, u64, u64, Option<String>)| {
                let s = match p { Some(p) => format!("{x}.{y}.{z}-{p}"), None => format!("{x}.{y}.{z}") };
                ReleaseVersion::parse(&s).ok()
            };
            if let (Some(a), Some(b)) = (mk(a), mk(b)) {
                prop_assert_eq!(a.cmp(&b), b.cmp(&a).reverse());
                prop_assert_eq!(a.cmp(&b) == Ordering::Equal, a == b);
            }
        }
    }
}
