//! Validated values that reach a package manager's argument vector.
//!
//! Raw strings from the network become these types once, at the edge; nothing else is
//! ever passed to a process. A `PackageName` cannot start with `-` (no option
//! injection), cannot hold globs, regex or shell metacharacters, whitespace or NUL, and
//! is bounded in length. The grammar is the union of the Debian policy, RPM, apk and
//! pacman name grammars' safe characters; the per-family rules of the package-manager
//! backends are applied on top of it.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Longest package name accepted (Debian and RPM names are far shorter in practice).
pub const MAX_NAME_LEN: usize = 128;
/// Longest version string accepted.
pub const MAX_VERSION_LEN: usize = 128;

/// Why a value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidValue {
    /// The value was empty.
    #[error("{what} is empty")]
    Empty {
        /// Which kind of value.
        what: &'static str,
    },
    /// The value was longer than allowed.
    #[error("{what} is {len} bytes long; at most {max} are allowed")]
    TooLong {
        /// Which kind of value.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The value starts with a character that could be read as an option or is not
    /// allowed first.
    #[error("{what} must start with a letter or digit, not {found:?}")]
    BadFirst {
        /// Which kind of value.
        what: &'static str,
        /// The offending character.
        found: char,
    },
    /// The value breaks a rule of its package manager's grammar.
    #[error("{what} must have {rule}")]
    Grammar {
        /// Which kind of value.
        what: &'static str,
        /// The rule, for the message.
        rule: &'static str,
    },
    /// The value holds a character outside its grammar.
    #[error("{what} contains {found:?} at byte {at}; allowed are letters, digits and {allowed}")]
    BadChar {
        /// Which kind of value.
        what: &'static str,
        /// The offending character.
        found: char,
        /// Its byte offset.
        at: usize,
        /// The allowed punctuation, for the message.
        allowed: &'static str,
    },
}

/// Checks a name against one package-manager family's own name grammar, on top of
/// the generic [`PackageName`] rules (which every name already passed):
///
/// - `apt` (Debian policy 5.6.1): lower-case letters, digits, `+`, `-`, `.`; at least
///   two characters.
/// - `dnf`, `yum`, `zypper` (RPM): letters, digits, `-`, `.`, `_`, `+`.
/// - `apk` (Alpine): letters, digits, `-`, `.`, `_`, `+`.
/// - `pacman` (Arch): lower-case letters, digits, `.`, `_`, `+`, `-` (`@` too in pacman,
///   but never in a [`PackageName`]); not starting
///   with `-` or `.`.
///
/// An unknown family is refused: nothing runs for a package manager we do not know.
pub fn family_name(family: &str, s: &str) -> Result<(), InvalidValue> {
    let (allowed, lower, min): (&'static str, bool, usize) = match family {
        "apt" => ("+-.", true, 2),
        "dnf" | "yum" | "zypper" | "apk" => ("-._+", false, 1),
        "pacman" => ("._+-", true, 1),
        _ => {
            return Err(InvalidValue::Grammar {
                what: "package name",
                rule: "a known package-manager family (apt, dnf, yum, zypper, apk, pacman)",
            });
        }
    };
    let what = "package name";
    check(what, s, MAX_NAME_LEN, allowed)?;
    if lower && s.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(InvalidValue::Grammar {
            what,
            rule: "lower-case letters only for this package manager",
        });
    }
    if s.len() < min {
        return Err(InvalidValue::Grammar {
            what,
            rule: "at least two characters (Debian policy)",
        });
    }
    if let Some(rule) = local_file_rule(family, s) {
        return Err(InvalidValue::Grammar { what, rule });
    }
    Ok(())
}

/// Why `s` would be read as a local package file by `family`'s package manager (dnf,
/// yum and zypper take an argument ending in `.rpm` as a file to install, apk one ending
/// in `.apk`), or `None`. A package is only ever installed from its repositories.
pub fn local_file_rule(family: &str, s: &str) -> Option<&'static str> {
    let lower = s.to_ascii_lowercase();
    match family {
        "dnf" | "yum" | "zypper" if lower.ends_with(".rpm") => {
            Some("no .rpm ending (dnf, yum and zypper read such an argument as a local file)")
        }
        "apk" if lower.ends_with(".apk") => {
            Some("no .apk ending (apk reads such an argument as a local file)")
        }
        _ => None,
    }
}

fn check(
    what: &'static str,
    s: &str,
    max: usize,
    allowed: &'static str,
) -> Result<(), InvalidValue> {
    if s.is_empty() {
        return Err(InvalidValue::Empty { what });
    }
    if s.len() > max {
        return Err(InvalidValue::TooLong {
            what,
            len: s.len(),
            max,
        });
    }
    let first = s.chars().next().unwrap_or('\0');
    if !first.is_ascii_alphanumeric() {
        return Err(InvalidValue::BadFirst { what, found: first });
    }
    for (at, c) in s.char_indices() {
        if !(c.is_ascii_alphanumeric() || allowed.contains(c)) {
            return Err(InvalidValue::BadChar {
                what,
                found: c,
                at,
                allowed,
            });
        }
    }
    Ok(())
}

macro_rules! validated_string {
    ($(#[$doc:meta])* $name:ident, $what:literal, $max:expr, $allowed:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Validates `s`.
            pub fn parse(s: &str) -> Result<Self, InvalidValue> {
                check($what, s, $max, $allowed)?;
                Ok(Self(s.to_owned()))
            }

            /// The validated value.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidValue;
            fn try_from(s: String) -> Result<Self, InvalidValue> {
                check($what, &s, $max, $allowed)?;
                Ok(Self(s))
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }
    };
}

validated_string!(
    /// A package name safe to put in an argument vector.
    PackageName,
    "package name",
    MAX_NAME_LEN,
    "._+-"
);

validated_string!(
    /// A package version (with optional epoch) safe to put in an argument vector.
    PackageVersion,
    "package version",
    MAX_VERSION_LEN,
    ".+~:_^-"
);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn name(s: &str) -> Result<PackageName, InvalidValue> {
        PackageName::parse(s)
    }

    #[test]
    fn accepts_real_names() {
        for ok in [
            "dpkg",
            "libc6",
            "g++",
            "libstdc++6",
            "python3.11",
            "NetworkManager",
            "perl-Data-Dumper",
            "xz-libs",
            "lib32gcc-s1",
            "kernel_headers",
        ] {
            assert!(name(ok).is_ok(), "{ok} should be accepted");
        }
    }

    #[test]
    fn rejects_injection_attempts() {
        let long = "a".repeat(10_000);
        for bad in [
            "-oAPT::x",
            "--help",
            "foo;rm",
            "foo*",
            "foo?",
            "foo[1]",
            "foo bar",
            " foo",
            "foo\n",
            "foo\0",
            "foo|x",
            "foo$(x)",
            "foo`x`",
            "foo/../x",
            "",
            long.as_str(),
        ] {
            assert!(name(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn error_says_what_was_wrong() {
        let e = name("foo;rm").unwrap_err().to_string();
        assert!(e.contains("';'"), "{e}");
        let e = name("-oAPT::x").unwrap_err().to_string();
        assert!(e.contains("must start with a letter or digit"), "{e}");
    }

    #[test]
    fn versions() {
        for ok in [
            "1:9.2p1-2+deb12u3",
            "2.36.1-8+deb12u1",
            "1.0~rc1",
            "5.1.8-6.el9",
            "1.2^post",
        ] {
            assert!(PackageVersion::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["-1", "1 2", "1;2", "1*", ":1"] {
            assert!(PackageVersion::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn deserialisation_validates() {
        assert!(serde_json::from_str::<PackageName>("\"foo;rm\"").is_err());
        assert_eq!(
            serde_json::from_str::<PackageName>("\"dpkg\"")
                .unwrap()
                .as_str(),
            "dpkg"
        );
    }

    fn fam(f: &str, s: &str) -> bool {
        family_name(f, s).is_ok()
    }

    #[test]
    fn family_grammars() {
        for (f, ok, bad) in [
            (
                "apt",
                &["libc6", "g++", "python3.11", "lib32gcc-s1"][..],
                &["NetworkManager", "kernel_headers", "a", "libc6:amd64"][..],
            ),
            (
                "dnf",
                &[
                    "NetworkManager",
                    "perl-Data-Dumper",
                    "kernel_headers",
                    "a",
                    "libstdc++",
                ][..],
                &["foo;rm", "-x", "foo*", "evil.rpm", "evil.RPM"][..],
            ),
            ("yum", &["openssl"][..], &["evil.rpm"][..]),
            (
                "zypper",
                &["libopenssl3", "patterns-base-base"][..],
                &["foo bar", "evil.rpm"][..],
            ),
            (
                "apk",
                &["musl", "py3-pip", "libcrypto3"][..],
                &["so:libc", "-x", "evil.apk"][..],
            ),
            (
                "pacman",
                &["linux-firmware", "python-pip", "lib32-glibc"][..],
                &["Linux", ".hidden", "-x"][..],
            ),
            ("nix", &[][..], &["hello"][..]),
        ] {
            for n in ok {
                assert!(fam(f, n), "{f}: {n} should be accepted");
            }
            for n in bad {
                assert!(!fam(f, n), "{f}: {n:?} should be refused");
            }
        }
        let e = family_name("apt", "NetworkManager")
            .unwrap_err()
            .to_string();
        assert!(e.contains("lower-case"), "{e}");
        // Local-file lookalikes are a family matter: apk's .apk is a fine apt name.
        assert!(fam("apt", "foo.apk") && fam("apk", "foo.rpm"));
        let e = family_name("dnf", "evil.rpm").unwrap_err().to_string();
        assert_eq!(
            e,
            "package name must have no .rpm ending (dnf, yum and zypper read such an argument as a local file)"
        );
    }

    proptest! {
        #[test]
        fn family_names_are_generic_names(f in prop::sample::select(vec!["apt", "dnf", "yum", "zypper", "apk", "pacman"]), s in "\\PC{0,200}") {
            // Every family grammar is at least as strict as the generic one.
            if family_name(f, &s).is_ok() {
                prop_assert!(PackageName::parse(&s).is_ok());
            }
        }

        #[test]
        fn accepted_names_are_argv_safe(s in "\\PC{0,200}") {
            if let Ok(n) = PackageName::parse(&s) {
                let v = n.as_str();
                prop_assert!(!v.starts_with('-'));
                prop_assert!(v.len() <= MAX_NAME_LEN);
                prop_assert!(v.bytes().all(|b| b.is_ascii_alphanumeric() || b"._+-".contains(&b)));
            }
        }

        #[test]
        fn accepted_versions_are_argv_safe(s in "\\PC{0,200}") {
            if let Ok(n) = PackageVersion::parse(&s) {
                prop_assert!(n.as_str().bytes().next().unwrap().is_ascii_alphanumeric());
                prop_assert!(n.as_str().bytes().all(|b| b.is_ascii_alphanumeric() || b".+~:_^-".contains(&b)));
            }
        }
    }
}
