//! Whether the host needs a reboot, and why: each family's own signal
//! ([`Backend::reboot_reasons`]: `/run/reboot-required` with its `.pkgs`,
//! `needs-restarting -r`, `zypper needs-rebooting`, kernel modules gone) and, for every
//! family, the running kernel older than the newest installed kernel package of its
//! flavour ([`kernel_behind`], versions compared by the family's rules through
//! patchctl-version). [`state`] combines them into the [`RebootState`] that scans,
//! heartbeats and install results carry.

use std::cmp::Ordering;
use std::path::Path;

use patchctl_proto::agent::{InstalledPackage, RebootState};

use super::{Backend, Family};
use crate::exec::Executor;

/// The running kernel's release.
pub const OSRELEASE: &str = "/proc/sys/kernel/osrelease";

/// Most package names a `/run/reboot-required.pkgs` reason lists.
const MAX_LISTED: usize = 10;

/// The reason `/run/reboot-required` (Debian, Ubuntu) gives under `root`, naming the
/// packages of `/run/reboot-required.pkgs` when that file lists some; `None` when the
/// flag is absent.
pub fn debian_flag(root: &Path) -> Option<String> {
    let flag = root.join("run/reboot-required");
    if !flag.exists() {
        return None;
    }
    let pkgs = std::fs::read_to_string(root.join("run/reboot-required.pkgs")).unwrap_or_default();
    Some(format!("/run/reboot-required{}", listed(&pkgs)))
}

/// ` (a, b, and 3 more)` for the package names of a `.pkgs` file; empty for none.
fn listed(pkgs: &str) -> String {
    let mut names: Vec<&str> = pkgs
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && l.len() <= 128 && l.chars().all(|c| c.is_ascii_graphic()))
        .collect();
    names.sort_unstable();
    names.dedup();
    match names.len() {
        0 => String::new(),
        n if n <= MAX_LISTED => format!(" ({})", names.join(", ")),
        n => format!(
            " ({}, and {} more)",
            names[..MAX_LISTED].join(", "),
            n - MAX_LISTED
        ),
    }
}

/// The kernel release (`uname -r`) an installed kernel package boots, and its flavour
/// (packages of one flavour replace each other), for the family's kernel packages;
/// `None` for any other package.
pub fn kernel_release(family: Family, p: &InstalledPackage) -> Option<(String, String)> {
    let version = p
        .version
        .split_once(':')
        .map_or(p.version.as_str(), |(_, v)| v);
    match family {
        // linux-image-6.1.0-28-amd64: the name carries the release.
        Family::Apt => {
            let rel = p.name.strip_prefix("linux-image-")?;
            if !rel.starts_with(|c: char| c.is_ascii_digit()) || rel.ends_with("-dbg") {
                return None;
            }
            // 6.1.0-28-cloud-amd64: the flavour follows the version and ABI number.
            let flavour = rel.splitn(3, '-').nth(2).unwrap_or("").to_owned();
            Some((rel.to_owned(), flavour))
        }
        // kernel-core 5.14.0-427.el9 x86_64: 5.14.0-427.el9.x86_64.
        Family::Dnf | Family::Yum => matches!(
            p.name.as_str(),
            "kernel" | "kernel-core" | "kernel-uek" | "kernel-uek-core"
        )
        .then(|| (format!("{version}.{}", p.arch), p.name.clone())),
        // kernel-default 6.4.0-150600.23.25.1: 6.4.0-150600.23.25-default.
        Family::Zypper => {
            let flavour = p.name.strip_prefix("kernel-")?;
            if !matches!(
                flavour,
                "default" | "azure" | "rt" | "preempt" | "kvmsmall" | "64kb"
            ) {
                return None;
            }
            let base = version.rsplit_once('.').map_or(version, |(b, _)| b);
            Some((format!("{base}-{flavour}"), flavour.to_owned()))
        }
        // linux-lts 6.6.31-r0: 6.6.31-0-lts.
        Family::Apk => {
            let flavour = p.name.strip_prefix("linux-")?;
            if !matches!(flavour, "lts" | "virt" | "edge" | "rpi") {
                return None;
            }
            let (ver, rel) = version.rsplit_once("-r")?;
            Some((format!("{ver}-{rel}-{flavour}"), flavour.to_owned()))
        }
        // linux 6.12.1.arch1-1: 6.12.1-arch1-1; linux-lts 6.6.63-1: 6.6.63-1-lts.
        Family::Pacman => {
            let flavour = match p.name.as_str() {
                "linux" => "",
                "linux-lts" => "lts",
                "linux-zen" => "zen",
                "linux-hardened" => "hardened",
                _ => return None,
            };
            let (pkgver, pkgrel) = version.rsplit_once('-')?;
            let pkgver = match pkgver.rsplit_once('.') {
                Some((head, tail)) if tail.starts_with(|c: char| c.is_ascii_alphabetic()) => {
                    format!("{head}-{tail}")
                }
                _ => pkgver.to_owned(),
            };
            let suffix = if flavour.is_empty() {
                String::new()
            } else {
                format!("-{flavour}")
            };
            Some((format!("{pkgver}-{pkgrel}{suffix}"), flavour.to_owned()))
        }
    }
}

/// The reason to reboot when the running kernel (`running`, `uname -r`) is older than
/// the newest installed kernel package of its flavour, compared by the family's
/// version rules; `None` when it is the newest, or when no installed package boots the
/// running release (a container, a kernel installed by hand: nothing can be told).
pub fn kernel_behind(
    family: Family,
    packages: &[InstalledPackage],
    running: &str,
) -> Option<String> {
    let running = running.trim();
    let kernels: Vec<(&InstalledPackage, String, String)> = packages
        .iter()
        .filter_map(|p| kernel_release(family, p).map(|(r, f)| (p, r, f)))
        .collect();
    let (current, _, flavour) = kernels.iter().find(|(_, r, _)| r == running)?;
    let newest = kernels
        .iter()
        .filter(|(p, _, f)| f == flavour && p.name.starts_with(kernel_stem(family, &current.name)))
        .max_by(|a, b| {
            family
                .compare(&a.0.version, &b.0.version)
                .unwrap_or(Ordering::Equal)
        })?;
    (family.compare(&newest.0.version, &current.version) == Some(Ordering::Greater)).then(|| {
        format!(
            "kernel {} ({}) is installed, {running} ({}) is running",
            newest.1, newest.0.version, current.version
        )
    })
}

/// The part of a kernel package's name its newer versions share: `linux-image-` for
/// Debian (each release is its own package), the whole name elsewhere.
fn kernel_stem(family: Family, name: &str) -> &str {
    match family {
        Family::Apt => "linux-image-",
        _ => name,
    }
}

/// Whether the system under the backend needs a reboot, and every reason found: the
/// family's own signals, then the kernel check over `packages` (the installed
/// packages) against `running`. An empty `running` skips the kernel check.
pub async fn state(
    backend: &dyn Backend,
    exec: &dyn Executor,
    packages: &[InstalledPackage],
    running: &str,
) -> RebootState {
    let mut reasons = backend.reboot_reasons(exec).await;
    if let Some(k) = kernel_behind(backend.family(), packages, running) {
        if !reasons.iter().any(|r| r.starts_with("kernel ")) {
            reasons.push(k);
        }
    }
    RebootState {
        required: !reasons.is_empty(),
        reasons,
    }
}

/// The running kernel's release, empty when it cannot be read.
pub fn running_release() -> String {
    std::fs::read_to_string(OSRELEASE)
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkg(name: &str, version: &str, arch: &str) -> InstalledPackage {
        InstalledPackage {
            name: name.into(),
            version: version.into(),
            arch: arch.into(),
            source_name: None,
            source_version: None,
            status: "installed".into(),
        }
    }

    #[test]
    fn releases_of_each_familys_kernel_packages() {
        let rel = |f, n, v, a| kernel_release(f, &pkg(n, v, a)).map(|(r, _)| r);
        assert_eq!(
            rel(
                Family::Apt,
                "linux-image-6.1.0-28-amd64",
                "6.1.119-1",
                "amd64"
            )
            .as_deref(),
            Some("6.1.0-28-amd64")
        );
        assert_eq!(
            rel(Family::Apt, "linux-image-amd64", "6.1.119-1", "amd64"),
            None
        );
        assert_eq!(rel(Family::Apt, "openssl", "3.0.15-1", "amd64"), None);
        assert_eq!(
            rel(Family::Dnf, "kernel-core", "5.14.0-427.el9", "x86_64").as_deref(),
            Some("5.14.0-427.el9.x86_64")
        );
        assert_eq!(
            rel(
                Family::Zypper,
                "kernel-default",
                "6.4.0-150600.23.25.1",
                "x86_64"
            )
            .as_deref(),
            Some("6.4.0-150600.23.25-default")
        );
        assert_eq!(
            rel(Family::Apk, "linux-lts", "6.6.31-r0", "x86_64").as_deref(),
            Some("6.6.31-0-lts")
        );
        assert_eq!(
            rel(Family::Pacman, "linux", "6.12.1.arch1-1", "x86_64").as_deref(),
            Some("6.12.1-arch1-1")
        );
        assert_eq!(
            rel(Family::Pacman, "linux-lts", "6.6.63-1", "x86_64").as_deref(),
            Some("6.6.63-1-lts")
        );
    }

    #[test]
    fn a_newer_kernel_of_the_running_flavour_asks_for_a_reboot() {
        let deb = [
            pkg("linux-image-6.1.0-26-amd64", "6.1.112-1", "amd64"),
            pkg("linux-image-6.1.0-28-amd64", "6.1.119-1", "amd64"),
            pkg("linux-image-6.1.0-28-cloud-amd64", "6.1.119-1", "amd64"),
        ];
        assert_eq!(
            kernel_behind(Family::Apt, &deb, "6.1.0-26-amd64\n").as_deref(),
            Some(
                "kernel 6.1.0-28-amd64 (6.1.119-1) is installed, 6.1.0-26-amd64 (6.1.112-1) is running"
            )
        );
        assert_eq!(kernel_behind(Family::Apt, &deb, "6.1.0-28-amd64"), None);
        // The running release has no package (a container): nothing can be told.
        assert_eq!(kernel_behind(Family::Apt, &deb, "5.10.0-1-amd64"), None);
        assert_eq!(kernel_behind(Family::Apt, &deb, ""), None);
        // rpm: two kernel-core instances; the epoch-free versions compare by rpm rules.
        let rpm = [
            pkg("kernel-core", "5.14.0-427.el9", "x86_64"),
            pkg("kernel-core", "5.14.0-503.el9", "x86_64"),
            pkg("kernel-uek-core", "6.0.0-1.el9", "x86_64"),
        ];
        assert!(kernel_behind(Family::Dnf, &rpm, "5.14.0-427.el9.x86_64").is_some());
        assert_eq!(
            kernel_behind(Family::Dnf, &rpm, "5.14.0-503.el9.x86_64"),
            None
        );
        // Another flavour's newer version does not count.
        assert_eq!(kernel_behind(Family::Dnf, &rpm, "6.0.0-1.el9.x86_64"), None);
        let suse = [
            pkg("kernel-default", "6.4.0-150600.23.25.1", "x86_64"),
            pkg("kernel-default", "6.4.0-150600.23.30.1", "x86_64"),
        ];
        assert!(kernel_behind(Family::Zypper, &suse, "6.4.0-150600.23.25-default").is_some());
    }

    #[test]
    fn the_debian_flag_names_its_packages() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(debian_flag(dir.path()), None);
        std::fs::create_dir_all(dir.path().join("run")).unwrap();
        std::fs::write(
            dir.path().join("run/reboot-required"),
            "*** System restart required ***\n",
        )
        .unwrap();
        assert_eq!(
            debian_flag(dir.path()).as_deref(),
            Some("/run/reboot-required")
        );
        std::fs::write(
            dir.path().join("run/reboot-required.pkgs"),
            "libc6\nlinux-image-6.1.0-28-amd64\nlibc6\n\n",
        )
        .unwrap();
        assert_eq!(
            debian_flag(dir.path()).as_deref(),
            Some("/run/reboot-required (libc6, linux-image-6.1.0-28-amd64)")
        );
        let many: String = (0..13).map(|i| format!("p{i:02}\n")).collect();
        std::fs::write(dir.path().join("run/reboot-required.pkgs"), many).unwrap();
        assert!(
            debian_flag(dir.path())
                .unwrap()
                .ends_with(", p09, and 3 more)")
        );
    }
}
