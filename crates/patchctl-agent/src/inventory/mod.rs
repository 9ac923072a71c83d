//! The package inventory: which package manager a host uses and what it has installed.
//!
//! [`dpkg`] reads the dpkg database file directly; [`rpm`] builds the argument vectors
//! of the `rpm` queries, has the executor run them, and parses their output. Both produce
//! [`patchctl_proto::agent::InstalledPackage`] values and nothing else: names,
//! versions, architectures, source packages and package states.
//!
//! The parsers of the dpkg, rpm and apk formats are pure and live in
//! [`patchctl_proto::inventory`], so that the platform's offline check reads exactly
//! what the agent reads; the modules here re-export them.

pub mod apk;
pub mod dpkg;
pub mod pacman;
pub mod rpm;

pub use dpkg::{ParsedStatus, STATUS_PATH, parse_status, read_status};
pub use rpm::{ParsedQa, QUERY_FORMAT, parse_qa, query_all_argv, query_one_argv};

/// The longest excerpt of a malformed line quoted in a skip reason.
const MAX_QUOTE: usize = 60;

/// At most [`MAX_QUOTE`] bytes of `s`, cut on a character boundary.
fn quote(s: &str) -> &str {
    crate::text::truncate(s, MAX_QUOTE)
}

/// A package manager whose inventory the agent can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PackageManager {
    /// Debian, Ubuntu and derivatives: `/var/lib/dpkg/status`.
    Dpkg,
    /// RHEL, AlmaLinux, Rocky, Fedora, SUSE: `/usr/bin/rpm`.
    Rpm,
    /// Alpine: `/lib/apk/db/installed`.
    Apk,
    /// Arch: `/var/lib/pacman/local/*/desc`.
    Pacman,
}

impl PackageManager {
    /// The name sent in [`patchctl_proto::agent::InventoryUpload::package_manager`].
    pub fn as_str(self) -> &'static str {
        match self {
            PackageManager::Dpkg => "dpkg",
            PackageManager::Rpm => "rpm",
            PackageManager::Apk => "apk",
            PackageManager::Pacman => "pacman",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(PackageManager::Dpkg.as_str(), "dpkg");
        assert_eq!(PackageManager::Rpm.as_str(), "rpm");
        assert_eq!(PackageManager::Apk.as_str(), "apk");
        assert_eq!(PackageManager::Pacman.as_str(), "pacman");
    }
}
