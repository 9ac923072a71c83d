//! The package inventory: which package manager a host uses and what it has installed.
//!
//! [`dpkg`] reads the dpkg database file directly; [`rpm`] builds the argument vectors
//! of the `rpm` queries, which the executor runs, and parses their output. Both produce
//! [`patchctl_proto::agent::InstalledPackage`] values and nothing else: names,
//! versions, architectures, source packages and package states.

use std::path::Path;

pub mod dpkg;
pub mod rpm;

pub use dpkg::{ParsedStatus, STATUS_PATH, parse_status, read_status};
pub use rpm::{ParsedQa, QUERY_FORMAT, parse_qa, query_all_argv, query_one_argv};

/// A package manager whose inventory the agent can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PackageManager {
    /// Debian, Ubuntu and derivatives: `/var/lib/dpkg/status`.
    Dpkg,
    /// RHEL, AlmaLinux, Rocky, Fedora, SUSE: `/usr/bin/rpm`.
    Rpm,
}

impl PackageManager {
    /// The package manager of the system under `root` (`/` in production): dpkg when
    /// `ROOT/var/lib/dpkg/status` exists, else rpm when `ROOT/usr/bin/rpm` exists.
    /// dpkg wins on a Debian host that also has the `rpm` package installed.
    pub fn detect(root: &Path) -> Option<PackageManager> {
        if root.join(STATUS_PATH.trim_start_matches('/')).is_file() {
            Some(PackageManager::Dpkg)
        } else if root.join(rpm::RPM_PATH.trim_start_matches('/')).is_file() {
            Some(PackageManager::Rpm)
        } else {
            None
        }
    }

    /// The name sent in [`patchctl_proto::agent::InventoryUpload::package_manager`].
    pub fn as_str(self) -> &'static str {
        match self {
            PackageManager::Dpkg => "dpkg",
            PackageManager::Rpm => "rpm",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    /// Creates `files` under a fresh root and checks what is detected.
    fn check(files: &[&str], expected: Option<PackageManager>) {
        let root = tempfile::tempdir().unwrap();
        for file in files {
            let path = root.path().join(file);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, b"").unwrap();
        }
        assert_eq!(PackageManager::detect(root.path()), expected, "{files:?}");
    }

    #[test]
    fn detects_the_package_manager() {
        check(&[], None);
        check(&["var/lib/dpkg/status"], Some(PackageManager::Dpkg));
        check(&["usr/bin/rpm"], Some(PackageManager::Rpm));
        check(
            &["usr/bin/rpm", "var/lib/dpkg/status"],
            Some(PackageManager::Dpkg),
        );
        check(&["var/lib/dpkg/available"], None);
        check(&["usr/bin/rpmbuild"], None);
    }

    #[test]
    fn a_directory_is_not_a_status_file() {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir_all(root.path().join("var/lib/dpkg/status")).unwrap();
        assert_eq!(PackageManager::detect(root.path()), None);
    }

    #[test]
    fn names() {
        assert_eq!(PackageManager::Dpkg.as_str(), "dpkg");
        assert_eq!(PackageManager::Rpm.as_str(), "rpm");
    }
}
