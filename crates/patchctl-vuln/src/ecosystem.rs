//! Which release's data applies to a host, and how its packages are matched.
//!
//! Ecosystems stay plain strings end to end (`Debian:12`, `Ubuntu:Pro:22.04:LTS`,
//! `AlmaLinux:9`, `Alpine:v3.19`, `openSUSE:Leap 15.5`); only their *family* (the part
//! before the first `:`) decides the rules: which version ordering compares versions and
//! whether records are keyed by the **source** package (Debian, Ubuntu, Alpine: the
//! installed *source* version is compared) or by the **binary** RPM name (RPM families,
//! with the source RPM as a fallback key). An ecosystem of an unknown family is still
//! imported and stored; it is simply never matched.
//!
//! A host's ecosystems come from its os-release only ([`host_ecosystems`]): a Debian 12
//! host is `Debian:12` and nothing else, so another release's data never applies.

use patchctl_proto::agent::{InstalledPackage, OsInfo};
use patchctl_version::Scheme;

/// Which package name an ecosystem's records are keyed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyedBy {
    /// The source package (`util-linux` for the binary `bsdutils`); compare the installed
    /// source version.
    Source,
    /// The binary package name (`openssl-libs`), with the source RPM's name as fallback;
    /// compare the installed binary version (epoch included).
    Binary,
}

/// How records of one ecosystem family are matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rules {
    /// Version ordering.
    pub scheme: Scheme,
    /// Key of the records.
    pub keyed_by: KeyedBy,
}

/// The rules for an ecosystem string, from its family (the text before the first `:`);
/// `None` for a family PatchCTL does not match (the data is still kept).
pub fn rules(ecosystem: &str) -> Option<Rules> {
    let family = ecosystem.split(':').next().unwrap_or("");
    let (scheme, keyed_by) = match family {
        "Debian" | "Ubuntu" => (Scheme::Dpkg, KeyedBy::Source),
        "Alpine" => (Scheme::Apk, KeyedBy::Source),
        "AlmaLinux" | "Rocky Linux" | "Red Hat" | "openSUSE" | "SUSE" | "Mageia" | "openEuler" => {
            (Scheme::Rpm, KeyedBy::Binary)
        }
        _ => return None,
    };
    Some(Rules { scheme, keyed_by })
}

/// Debian codenames and their release numbers (the tracker speaks in codenames, OSV and
/// os-release in numbers).
pub const DEBIAN_RELEASES: [(&str, &str); 10] = [
    ("squeeze", "6"),
    ("wheezy", "7"),
    ("jessie", "8"),
    ("stretch", "9"),
    ("buster", "10"),
    ("bullseye", "11"),
    ("bookworm", "12"),
    ("trixie", "13"),
    ("forky", "14"),
    ("duke", "15"),
];

/// Ubuntu codenames and their versions (VEX product URLs name the codename).
pub const UBUNTU_RELEASES: [(&str, &str); 22] = [
    ("precise", "12.04"),
    ("trusty", "14.04"),
    ("xenial", "16.04"),
    ("bionic", "18.04"),
    ("cosmic", "18.10"),
    ("disco", "19.04"),
    ("eoan", "19.10"),
    ("focal", "20.04"),
    ("groovy", "20.10"),
    ("hirsute", "21.04"),
    ("impish", "21.10"),
    ("jammy", "22.04"),
    ("kinetic", "22.10"),
    ("lunar", "23.04"),
    ("mantic", "23.10"),
    ("noble", "24.04"),
    ("oracular", "24.10"),
    ("plucky", "25.04"),
    ("questing", "25.10"),
    ("resolute", "26.04"),
    ("sid", ""),
    ("devel", ""),
];

/// `Debian:N` for a Debian codename (`bookworm` → `Debian:12`); `None` for `sid` and
/// unknown names.
pub fn debian_ecosystem(codename: &str) -> Option<String> {
    DEBIAN_RELEASES
        .iter()
        .find(|(c, _)| *c == codename)
        .map(|(_, n)| format!("Debian:{n}"))
}

/// The ecosystem of an Ubuntu release version (`22.04` → `Ubuntu:22.04:LTS`, `23.10` →
/// `Ubuntu:23.10`), with `Pro:` for Ubuntu Pro / ESM (`Ubuntu:Pro:16.04:LTS`).
pub fn ubuntu_ecosystem(version: &str, pro: bool) -> Option<String> {
    let (year, month) = version.split_once('.')?;
    let year: u32 = year.parse().ok()?;
    if month.parse::<u32>().is_err() {
        return None;
    }
    let lts = month == "04" && year % 2 == 0;
    let pro = if pro { "Pro:" } else { "" };
    let lts = if lts { ":LTS" } else { "" };
    Some(format!("Ubuntu:{pro}{version}{lts}"))
}

/// The Ubuntu version of a codename (`jammy` → `22.04`).
pub fn ubuntu_version(codename: &str) -> Option<&'static str> {
    UBUNTU_RELEASES
        .iter()
        .find(|(c, v)| *c == codename && !v.is_empty())
        .map(|(_, v)| *v)
}

/// Whether an Ubuntu host uses Ubuntu Pro (ESM): an installed package's version carries
/// `+esm` (only ESM repositories publish such versions).
pub fn esm_installed(os: &OsInfo, packages: &[InstalledPackage]) -> bool {
    os.id == "ubuntu" && packages.iter().any(|p| p.version.contains("+esm"))
}

/// The ecosystems whose data applies to a host, most specific last; empty when the
/// release is not one PatchCTL has data rules for. `ubuntu_pro`: the host has Ubuntu Pro
/// (ESM) enabled, so `Ubuntu:Pro:…` data applies too.
pub fn host_ecosystems(os: &OsInfo, ubuntu_pro: bool) -> Vec<String> {
    let major = os.version_id.split('.').next().unwrap_or("");
    let one = |e: String| vec![e];
    match os.id.as_str() {
        "debian" => {
            if !os.version_id.is_empty() {
                one(format!("Debian:{major}"))
            } else {
                debian_ecosystem(&os.version_codename)
                    .map(one)
                    .unwrap_or_default()
            }
        }
        "ubuntu" => {
            let mut v: Vec<String> = ubuntu_ecosystem(&os.version_id, false)
                .into_iter()
                .collect();
            if ubuntu_pro {
                v.extend(ubuntu_ecosystem(&os.version_id, true));
            }
            v
        }
        "almalinux" if !major.is_empty() => one(format!("AlmaLinux:{major}")),
        "rocky" if !major.is_empty() => one(format!("Rocky Linux:{major}")),
        "alpine" => {
            let mut parts = os.version_id.split('.');
            match (parts.next(), parts.next()) {
                (Some(a), Some(b)) if !a.is_empty() && !b.is_empty() => {
                    one(format!("Alpine:v{a}.{b}"))
                }
                _ => Vec::new(),
            }
        }
        "opensuse-leap" if !os.version_id.is_empty() => {
            one(format!("openSUSE:Leap {}", os.version_id))
        }
        "opensuse-tumbleweed" => one("openSUSE:Tumbleweed".to_string()),
        "sles" | "sled" => {
            let (v, sp) = os
                .version_id
                .split_once('.')
                .unwrap_or((&os.version_id, "0"));
            let kind = if os.id == "sles" { "Server" } else { "Desktop" };
            let sp = if sp == "0" {
                String::new()
            } else {
                format!(" SP{sp}")
            };
            one(format!("SUSE:Linux Enterprise {kind} {v}{sp}"))
        }
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(id: &str, version_id: &str, codename: &str) -> OsInfo {
        OsInfo {
            id: id.into(),
            version_id: version_id.into(),
            version_codename: codename.into(),
            ..OsInfo::default()
        }
    }

    #[test]
    fn release_exact_ecosystems() {
        assert_eq!(
            host_ecosystems(&os("debian", "12", "bookworm"), false),
            ["Debian:12"]
        );
        assert_eq!(
            host_ecosystems(&os("debian", "", "trixie"), false),
            ["Debian:13"]
        );
        assert_eq!(
            host_ecosystems(&os("ubuntu", "22.04", "jammy"), false),
            ["Ubuntu:22.04:LTS"]
        );
        assert_eq!(
            host_ecosystems(&os("ubuntu", "22.04", "jammy"), true),
            ["Ubuntu:22.04:LTS", "Ubuntu:Pro:22.04:LTS"]
        );
        assert_eq!(
            host_ecosystems(&os("ubuntu", "23.10", "mantic"), false),
            ["Ubuntu:23.10"]
        );
        assert_eq!(
            host_ecosystems(&os("almalinux", "9.4", ""), false),
            ["AlmaLinux:9"]
        );
        assert_eq!(
            host_ecosystems(&os("rocky", "8.10", ""), false),
            ["Rocky Linux:8"]
        );
        assert_eq!(
            host_ecosystems(&os("alpine", "3.19.1", ""), false),
            ["Alpine:v3.19"]
        );
        assert_eq!(
            host_ecosystems(&os("sles", "15.5", ""), false),
            ["SUSE:Linux Enterprise Server 15 SP5"]
        );
        assert!(host_ecosystems(&os("gentoo", "2.15", ""), false).is_empty());
    }

    #[test]
    fn ubuntu_pro_from_esm_versions() {
        let pkg = |v: &str| InstalledPackage {
            name: "libwayland-client0".into(),
            version: v.into(),
            arch: "amd64".into(),
            source_name: None,
            source_version: None,
            status: "installed".into(),
        };
        let jammy = os("ubuntu", "22.04", "jammy");
        assert!(esm_installed(&jammy, &[pkg("1.20.0-1ubuntu0.1+esm1")]));
        assert!(!esm_installed(&jammy, &[pkg("1.20.0-1ubuntu0.1")]));
        assert!(!esm_installed(
            &os("debian", "12", "bookworm"),
            &[pkg("1.0+esm1")]
        ));
    }

    #[test]
    fn families() {
        assert_eq!(
            rules("Ubuntu:Pro:16.04:LTS").unwrap().keyed_by,
            KeyedBy::Source
        );
        assert_eq!(rules("AlmaLinux:9").unwrap().scheme, Scheme::Rpm);
        assert_eq!(rules("Alpine:v3.19").unwrap().scheme, Scheme::Apk);
        assert!(rules("npm").is_none());
        assert_eq!(debian_ecosystem("bookworm").as_deref(), Some("Debian:12"));
        assert_eq!(debian_ecosystem("sid"), None);
        assert_eq!(ubuntu_version("jammy"), Some("22.04"));
    }
}
