//! Which release's data applies to a host, and how its packages are matched.
//!
//! Ecosystems stay plain strings end to end (`Debian:12`, `Ubuntu:Pro:22.04:LTS`,
//! `AlmaLinux:9`, `Alpine:v3.19`, `Red Hat:9.2 EUS`, `SUSE:Linux Enterprise 15 SP5`,
//! `Amazon Linux:2023`, `Fedora:40`, `Arch Linux`; [`names`] lists them all and maps the
//! vendors' product names onto them); only their *family* (the part before the first
//! `:`) decides the rules: which version ordering compares versions and whether records
//! are keyed by the **source** package (Debian, Ubuntu, Alpine: the installed *source*
//! version is compared) or by the **binary** package name (RPM families and Arch, with
//! the source package's name as a fallback key). An ecosystem of an unknown family is
//! still imported and stored; it is simply never matched.
//!
//! A host's ecosystems come from its os-release only ([`host_ecosystems`]): a Debian 12
//! host is `Debian:12` and nothing else, so another release's data never applies. A
//! family may have full CVE data or only its repositories' security advisories
//! ([`data_kind`]); which ecosystems have any data at all is a property of the imported
//! data, decided by the matcher's index.

mod host;
pub mod names;

pub use host::host_ecosystems;

use patchctl_proto::agent::{InstalledPackage, OsInfo};
use patchctl_version::Scheme;

/// Which package name an ecosystem's records are keyed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyedBy {
    /// The source package (`util-linux` for the binary `bsdutils`); compare the installed
    /// source version.
    Source,
    /// The binary package name (`openssl-libs`), with the source package's name as
    /// fallback; compare the installed binary version (epoch included).
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

/// The family of an ecosystem: the text before the first `:` (`Red Hat` for `Red
/// Hat:9.2 EUS`).
pub fn family(ecosystem: &str) -> &str {
    ecosystem.split(':').next().unwrap_or("")
}

/// The rules for an ecosystem string, from its family; `None` for a family PatchCTL does
/// not match (the data is still kept).
pub fn rules(ecosystem: &str) -> Option<Rules> {
    let (scheme, keyed_by) = match family(ecosystem) {
        "Debian" | "Ubuntu" => (Scheme::Dpkg, KeyedBy::Source),
        "Alpine" => (Scheme::Apk, KeyedBy::Source),
        "AlmaLinux" | "Rocky Linux" | "Red Hat" | "openSUSE" | "SUSE" | "Mageia" | "openEuler"
        | "Amazon Linux" | "Fedora" | "CentOS Stream" | "CentOS" | "Oracle Linux" => {
            (Scheme::Rpm, KeyedBy::Binary)
        }
        "Arch Linux" => (Scheme::Pacman, KeyedBy::Binary),
        _ => return None,
    };
    Some(Rules { scheme, keyed_by })
}

/// What kind of vulnerability data a family's vendor publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataKind {
    /// A CVE feed: per CVE, what is fixed, not affected, or will not be fixed (Debian,
    /// Ubuntu, Red Hat, SUSE, AlmaLinux, Rocky, Alpine, Amazon's ALAS, Arch's tracker).
    Cve,
    /// Only the repositories' security advisories (Fedora: Bodhi and `updateinfo.xml`
    /// updates of type security). A CVE that no update fixed yet is not in the data, and
    /// "not affected" is never stated.
    SecurityAdvisories,
}

impl DataKind {
    /// What this kind of data covers, in words for the CLI and the API.
    pub fn describe(self) -> &'static str {
        match self {
            DataKind::Cve => "full CVE data",
            DataKind::SecurityAdvisories => {
                "security advisories only (the vendor publishes no CVE feed: \
                 unfixed CVEs are not known)"
            }
        }
    }
}

/// The kind of data the vendor of an ecosystem's family publishes; `None` for a family
/// PatchCTL has no source for (CentOS Stream, CentOS, Oracle Linux, unknown families).
pub fn data_kind(ecosystem: &str) -> Option<DataKind> {
    match family(ecosystem) {
        "Fedora" => Some(DataKind::SecurityAdvisories),
        "CentOS Stream" | "CentOS" | "Oracle Linux" => None,
        _ => rules(ecosystem).map(|_| DataKind::Cve),
    }
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
        assert_eq!(rules("Arch Linux").unwrap().scheme, Scheme::Pacman);
        assert_eq!(rules("Red Hat:9.2 EUS").unwrap().keyed_by, KeyedBy::Binary);
        assert_eq!(data_kind("Fedora:40"), Some(DataKind::SecurityAdvisories));
        assert_eq!(data_kind("Amazon Linux:2023"), Some(DataKind::Cve));
        assert_eq!(data_kind("CentOS Stream:9"), None);
        assert_eq!(data_kind("npm"), None);
        assert!(rules("npm").is_none());
        assert_eq!(debian_ecosystem("bookworm").as_deref(), Some("Debian:12"));
        assert_eq!(debian_ecosystem("sid"), None);
        assert_eq!(ubuntu_version("jammy"), Some("22.04"));
    }
}
