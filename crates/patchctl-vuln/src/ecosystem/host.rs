//! A host's ecosystems, from its os-release (and, for Amazon Linux 2's extras kernels,
//! its running kernel).
//!
//! | os-release `ID` | `VERSION_ID` | ecosystems (least specific first) |
//! |---|---|---|
//! | `debian` | `12` (or the codename) | `Debian:12` |
//! | `ubuntu` | `22.04` | `Ubuntu:22.04:LTS` (+ `Ubuntu:Pro:22.04:LTS` with ESM) |
//! | `almalinux`, `rocky` | `9.4` | `AlmaLinux:9`, `Rocky Linux:9` |
//! | `alpine` | `3.19.1` | `Alpine:v3.19` |
//! | `rhel` | `9.4` / `7.9` | `Red Hat:9`, `Red Hat:9.4 EUS` / `Red Hat:7`, `Red Hat:7 ELS` |
//! | `centos` | `9` (CentOS Stream) / `7` | `CentOS Stream:9` / `CentOS:7`: no feed, said so |
//! | `ol` | `9.4` | `Oracle Linux:9`: no feed, said so |
//! | `fedora` | `40` | `Fedora:40` |
//! | `amzn` | `2`, `2023`, `2018.03` | `Amazon Linux:2` (+ `Amazon Linux:2 extras kernel-5.15` when that kernel runs), `Amazon Linux:2023`, `Amazon Linux:1` |
//! | `sles`, `sled`, `sles_sap` | `15.5` | `SUSE:Linux Enterprise 15 SP5`, `SUSE:Linux Enterprise 15 SP5 LTSS` |
//! | `sles` | `16.0` | `SUSE:Linux Enterprise 16.0` |
//! | `sle-micro` / `sl-micro` | `5.5` / `6.0` | `SUSE:Linux Enterprise Micro 5.5` / `SUSE:Linux Micro 6.0` |
//! | `opensuse-leap`, `opensuse-leap-micro` | `15.5` | `openSUSE:Leap 15.5`, `openSUSE:Leap Micro 5.5` |
//! | `opensuse-tumbleweed` | (a date) | `openSUSE:Tumbleweed` |
//! | `arch` | (none) | `Arch Linux` |
//!
//! Minor-release streams: a RHEL host at 9.4 is matched by the EUS statements for 9.4
//! where a record has them (a host that stays on a minor release after the next one
//! shipped is on Extended Update Support, or unpatched: either way the EUS statement is
//! the one that speaks of its builds), else by the main `Red Hat:9` statements. SUSE's
//! LTSS is handled the same way for service packs.

use patchctl_proto::agent::OsInfo;

use super::names;
use super::{debian_ecosystem, ubuntu_ecosystem};

/// The ecosystems whose data applies to a host, most specific last. A release PatchCTL
/// has no rules for gets one pseudo-ecosystem naming it (`gentoo 2.15`, `unknown
/// release`): no data ever matches it, and the host is shown as "no vulnerability data
/// for gentoo 2.15", never as zero findings. Never empty. `ubuntu_pro`: the host has Ubuntu Pro (ESM) enabled, so `Ubuntu:Pro:…` data
/// applies too. `kernel`: the running kernel (`uname -r`), for Amazon Linux 2's extras
/// kernels.
pub fn host_ecosystems(os: &OsInfo, ubuntu_pro: bool, kernel: Option<&str>) -> Vec<String> {
    let version = os.version_id.trim();
    let major = version.split('.').next().unwrap_or("");
    let minor = version.split('.').nth(1).unwrap_or("");
    let one = |e: String| vec![e];
    let unknown = || {
        let label = format!("{} {}", os.id.trim(), version);
        let label = label.trim();
        vec![if os.id.trim().is_empty() {
            "unknown release".to_string()
        } else {
            label.to_string()
        }]
    };
    let v = match os.id.as_str() {
        "debian" => {
            if !version.is_empty() {
                one(format!("Debian:{major}"))
            } else {
                debian_ecosystem(&os.version_codename)
                    .map(one)
                    .unwrap_or_default()
            }
        }
        "ubuntu" => {
            let mut v: Vec<String> = ubuntu_ecosystem(version, false).into_iter().collect();
            if ubuntu_pro {
                v.extend(ubuntu_ecosystem(version, true));
            }
            v
        }
        _ if major.is_empty() && !matches!(os.id.as_str(), "arch" | "opensuse-tumbleweed") => {
            Vec::new()
        }
        "almalinux" => one(format!("AlmaLinux:{major}")),
        "rocky" => one(format!("Rocky Linux:{major}")),
        "alpine" if !minor.is_empty() => one(format!("Alpine:v{major}.{minor}")),
        "rhel" => {
            let mut v = vec![format!("Red Hat:{major}")];
            if major.parse::<u32>().is_ok_and(|m| m <= 7) {
                // RHEL 6 and 7 are past their maintenance phases: fixes come in ELS
                v.push(format!("Red Hat:{major} ELS"));
            } else if !minor.is_empty() {
                v.push(format!("Red Hat:{major}.{minor} EUS"));
            }
            v
        }
        "centos" => {
            let stream =
                os.pretty_name.contains("Stream") || major.parse::<u32>().unwrap_or(0) >= 9;
            if stream {
                one(format!("CentOS Stream:{major}"))
            } else {
                one(format!("CentOS:{major}"))
            }
        }
        "ol" => one(format!("Oracle Linux:{major}")),
        "fedora" => names::fedora(major).map(one).unwrap_or_default(),
        "amzn" => {
            let mut v = vec![names::amazon(version, None)];
            v.extend(kernel.and_then(|k| names::amazon_kernel_extra(version, k)));
            v
        }
        "sles" | "sled" | "sles_sap" => {
            let base = if major.parse::<u32>().unwrap_or(0) >= 16 {
                format!(
                    "SUSE:Linux Enterprise {major}.{}",
                    if minor.is_empty() { "0" } else { minor }
                )
            } else if minor.is_empty() || minor == "0" {
                format!("SUSE:Linux Enterprise {major}")
            } else {
                format!("SUSE:Linux Enterprise {major} SP{minor}")
            };
            if major.parse::<u32>().unwrap_or(0) >= 16 {
                one(base)
            } else {
                let ltss = format!("{base} LTSS");
                vec![base, ltss]
            }
        }
        "sle-micro" => one(format!("SUSE:Linux Enterprise Micro {version}")),
        "sl-micro" => one(format!("SUSE:Linux Micro {version}")),
        "opensuse-leap" => one(format!("openSUSE:Leap {version}")),
        "opensuse-leap-micro" => one(format!("openSUSE:Leap Micro {version}")),
        "opensuse-tumbleweed" => one(names::TUMBLEWEED.to_string()),
        "arch" => one(names::ARCH.to_string()),
        _ => Vec::new(),
    };
    if v.is_empty() { unknown() } else { v }
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

    fn ecos(id: &str, version_id: &str) -> Vec<String> {
        host_ecosystems(&os(id, version_id, ""), false, None)
    }

    #[test]
    fn release_exact_ecosystems() {
        assert_eq!(
            host_ecosystems(&os("debian", "12", "bookworm"), false, None),
            ["Debian:12"]
        );
        assert_eq!(
            host_ecosystems(&os("debian", "", "trixie"), false, None),
            ["Debian:13"]
        );
        assert_eq!(ecos("ubuntu", "22.04"), ["Ubuntu:22.04:LTS"]);
        assert_eq!(
            host_ecosystems(&os("ubuntu", "22.04", "jammy"), true, None),
            ["Ubuntu:22.04:LTS", "Ubuntu:Pro:22.04:LTS"]
        );
        assert_eq!(ecos("ubuntu", "23.10"), ["Ubuntu:23.10"]);
        assert_eq!(ecos("almalinux", "9.4"), ["AlmaLinux:9"]);
        assert_eq!(ecos("rocky", "8.10"), ["Rocky Linux:8"]);
        assert_eq!(ecos("alpine", "3.19.1"), ["Alpine:v3.19"]);
        assert_eq!(ecos("alpine", "3"), ["alpine 3"]);
        assert_eq!(ecos("gentoo", "2.15"), ["gentoo 2.15"]);
        assert_eq!(ecos("rhel", ""), ["rhel"]);
        assert_eq!(ecos("", ""), ["unknown release"]);
        assert!(crate::ecosystem::rules("gentoo 2.15").is_none());
    }

    #[test]
    fn every_family_from_its_os_release() {
        assert_eq!(ecos("rhel", "9.4"), ["Red Hat:9", "Red Hat:9.4 EUS"]);
        assert_eq!(ecos("rhel", "7.9"), ["Red Hat:7", "Red Hat:7 ELS"]);
        let stream = OsInfo {
            pretty_name: "CentOS Stream 8".into(),
            ..os("centos", "8", "")
        };
        assert_eq!(host_ecosystems(&stream, false, None), ["CentOS Stream:8"]);
        assert_eq!(ecos("centos", "9"), ["CentOS Stream:9"]);
        assert_eq!(ecos("centos", "7"), ["CentOS:7"]);
        assert_eq!(ecos("ol", "9.4"), ["Oracle Linux:9"]);
        assert_eq!(ecos("fedora", "40"), ["Fedora:40"]);
        assert_eq!(ecos("amzn", "2023"), ["Amazon Linux:2023"]);
        assert_eq!(ecos("amzn", "2018.03"), ["Amazon Linux:1"]);
        assert_eq!(
            host_ecosystems(
                &os("amzn", "2", ""),
                false,
                Some("5.15.73-45.135.amzn2.x86_64")
            ),
            ["Amazon Linux:2", "Amazon Linux:2 extras kernel-5.15"]
        );
        assert_eq!(
            host_ecosystems(
                &os("amzn", "2", ""),
                false,
                Some("4.14.343-261.564.amzn2.x86_64")
            ),
            ["Amazon Linux:2"]
        );
        assert_eq!(
            ecos("sles", "15.5"),
            [
                "SUSE:Linux Enterprise 15 SP5",
                "SUSE:Linux Enterprise 15 SP5 LTSS"
            ]
        );
        assert_eq!(
            ecos("sled", "15"),
            ["SUSE:Linux Enterprise 15", "SUSE:Linux Enterprise 15 LTSS"]
        );
        assert_eq!(ecos("sles", "16.0"), ["SUSE:Linux Enterprise 16.0"]);
        assert_eq!(
            ecos("sle-micro", "5.5"),
            ["SUSE:Linux Enterprise Micro 5.5"]
        );
        assert_eq!(ecos("opensuse-leap", "15.5"), ["openSUSE:Leap 15.5"]);
        assert_eq!(
            ecos("opensuse-tumbleweed", "20240101"),
            ["openSUSE:Tumbleweed"]
        );
        assert_eq!(ecos("opensuse-tumbleweed", ""), ["openSUSE:Tumbleweed"]);
        assert_eq!(ecos("arch", ""), ["Arch Linux"]);
    }

    #[test]
    fn host_names_agree_with_the_vendor_product_names() {
        // what a host is called and what the importers call the data meet exactly
        assert_eq!(
            names::suse_from_product("SUSE Linux Enterprise Server 15 SP5").as_deref(),
            Some(ecos("sles", "15.5")[0].as_str())
        );
        assert_eq!(
            names::suse_from_product("openSUSE Leap 15.5").as_deref(),
            Some(ecos("opensuse-leap", "15.5")[0].as_str())
        );
        assert_eq!(
            names::redhat_from_cpe("cpe:/a:redhat:rhel_eus:9.4::appstream").as_deref(),
            Some(ecos("rhel", "9.4")[1].as_str())
        );
        assert_eq!(
            names::redhat_from_cpe("cpe:/o:redhat:enterprise_linux:9::baseos").as_deref(),
            Some(ecos("rhel", "9.4")[0].as_str())
        );
    }
}
