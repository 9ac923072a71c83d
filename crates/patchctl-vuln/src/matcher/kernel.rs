//! Kernel packages: which installed packages are built from the kernel's source, which
//! one is the running kernel's image, and the record key of a signed kernel source.

use std::cmp::Ordering;

use patchctl_proto::agent::InstalledPackage;
use patchctl_version::Scheme;

use crate::ecosystem::Rules;

/// The kernel-family packages of a host, and which of them is the running kernel.
pub(super) fn kernel_source(rules: Rules, p: &InstalledPackage) -> bool {
    match (rules.scheme, rules.keyed_by) {
        (Scheme::Rpm, _) => {
            let src = p.source_name.as_deref().unwrap_or(&p.name);
            src == "kernel"
                || src.starts_with("kernel-rt")
                || src.starts_with("kernel-uek")
                || src.starts_with("kernel-64k")
        }
        (Scheme::Dpkg, _) => {
            let src = record_key_of_source(p.source_name.as_deref().unwrap_or(&p.name));
            is_deb_kernel_source(&src)
        }
        (Scheme::Apk, _) => {
            let src = p.source_name.as_deref().unwrap_or(&p.name);
            matches!(
                src,
                "linux-lts" | "linux-virt" | "linux-edge" | "linux-rpi" | "linux-stable"
            )
        }
        _ => false,
    }
}

/// Ubuntu's kernel flavour source packages (`linux-aws`, `linux-hwe-6.5`, ...) and
/// Debian's `linux`; `linux-firmware`, `linux-base` and the like are not kernels.
fn is_deb_kernel_source(src: &str) -> bool {
    const FLAVOURS: [&str; 19] = [
        "linux-aws",
        "linux-azure",
        "linux-gcp",
        "linux-gke",
        "linux-gkeop",
        "linux-hwe",
        "linux-oem",
        "linux-oracle",
        "linux-kvm",
        "linux-lowlatency",
        "linux-raspi",
        "linux-ibm",
        "linux-nvidia",
        "linux-intel",
        "linux-realtime",
        "linux-riscv",
        "linux-bluefield",
        "linux-xilinx",
        "linux-fips",
    ];
    src == "linux"
        || FLAVOURS
            .iter()
            .any(|f| src == *f || src.strip_prefix(f).is_some_and(|r| r.starts_with('-')))
}

/// The record key of a Debian/Ubuntu kernel source: signed images are built from
/// `linux-signed-*` sources but advisories name the unsigned source (`linux-signed-amd64`
/// → `linux`, `linux-signed-hwe-6.5` → `linux-hwe-6.5`).
pub fn record_key_of_source(src: &str) -> String {
    match src.strip_prefix("linux-signed") {
        Some("") => "linux".to_string(),
        Some(rest) => {
            let rest = rest.trim_start_matches('-');
            if matches!(rest, "amd64" | "arm64" | "i386" | "ppc64el" | "s390x") {
                "linux".to_string()
            } else {
                format!("linux-{rest}")
            }
        }
        None => src.to_string(),
    }
}

/// Whether `p` is the running kernel's image package.
pub(super) fn is_running_kernel(rules: Rules, p: &InstalledPackage, running: &str) -> bool {
    match rules.scheme {
        Scheme::Rpm => {
            const IMAGES: [&str; 9] = [
                "kernel",
                "kernel-core",
                "kernel-modules",
                "kernel-modules-core",
                "kernel-modules-extra",
                "kernel-rt",
                "kernel-rt-core",
                "kernel-uek",
                "kernel-64k-core",
            ];
            let vr = p.version.split_once(':').map_or(&p.version[..], |(_, r)| r);
            IMAGES.contains(&p.name.as_str())
                && (format!("{vr}.{}", p.arch) == running || vr == running)
        }
        Scheme::Dpkg => {
            p.name == format!("linux-image-{running}")
                || p.name == format!("linux-image-unsigned-{running}")
                || p.name == format!("linux-image-{running}-unsigned")
        }
        Scheme::Apk => {
            // uname -r `6.6.14-0-lts` ↔ package `linux-lts` `6.6.14-r0`
            let mut parts = running.rsplitn(2, '-');
            let flavour = parts.next().unwrap_or("");
            let base = parts.next().unwrap_or("").split('-').next().unwrap_or("");
            p.name == format!("linux-{flavour}") && upstream_apk(&p.version) == base
        }
        Scheme::Pacman => false,
    }
}

fn upstream_apk(v: &str) -> &str {
    v.rsplit_once("-r").map_or(v, |(u, _)| u)
}

/// The running kernel when the host did not say: the newest installed kernel image.
pub(super) fn newest_kernel(rules: Rules, packages: &[InstalledPackage]) -> Option<String> {
    let images = packages.iter().filter(|p| {
        kernel_source(rules, p)
            && match rules.scheme {
                Scheme::Dpkg => {
                    p.name.starts_with("linux-image-")
                        && p.name[12..].starts_with(|c: char| c.is_ascii_digit())
                }
                Scheme::Rpm => p.name == "kernel-core" || p.name == "kernel",
                _ => true,
            }
    });
    let best = images.max_by(|a, b| {
        rules
            .scheme
            .compare(&a.version, &b.version)
            .unwrap_or(Ordering::Equal)
    })?;
    Some(match rules.scheme {
        Scheme::Dpkg => best.name.trim_start_matches("linux-image-").to_string(),
        Scheme::Rpm => {
            let vr = best
                .version
                .split_once(':')
                .map_or(&best.version[..], |(_, r)| r);
            format!("{vr}.{}", best.arch)
        }
        _ => {
            let flavour = best.name.trim_start_matches("linux-");
            format!("{}-0-{flavour}", upstream_apk(&best.version))
        }
    })
}
