//! The ecosystem strings of every family, and the mapping of each vendor's own product
//! names (Red Hat CPEs, SUSE product names, Amazon and Fedora releases) onto them.
//!
//! Every importer names ecosystems through these functions, and
//! [`super::host_ecosystems`] builds a host's ecosystems with the same ones, so that a
//! record and a host meet on equal strings:
//!
//! | family | ecosystem strings | from |
//! |---|---|---|
//! | Red Hat Enterprise Linux | `Red Hat:9` (BaseOS, AppStream, CRB and the other main repositories of major 9 merged: their package names do not overlap), `Red Hat:9.2 EUS`, `Red Hat:9.0 E4S`, `Red Hat:8.4 AUS`, `Red Hat:8.4 TUS`, `Red Hat:6 ELS` | the product's CPE ([`redhat_from_cpe`]) |
//! | SUSE Linux Enterprise | `SUSE:Linux Enterprise 15 SP5` (Server, Desktop, SAP, HPC and every module of 15 SP5 merged), `SUSE:Linux Enterprise 15 SP3 LTSS`, `SUSE:Linux Enterprise 16.0`, `SUSE:Linux Enterprise Micro 5.5`, `SUSE:Linux Micro 6.0` | the product name ([`suse_from_product`]) |
//! | openSUSE | `openSUSE:Leap 15.5`, `openSUSE:Leap Micro 5.5`, `openSUSE:Tumbleweed` | the product name ([`suse_from_product`]) |
//! | Amazon Linux | `Amazon Linux:1` (2018.03), `Amazon Linux:2`, `Amazon Linux:2022`, `Amazon Linux:2023`; AL2 "extras" kernels `Amazon Linux:2 extras kernel-5.15` | [`amazon`] |
//! | Fedora | `Fedora:40` | [`fedora`] (Bodhi's `F40`, modular `F40M` too) |
//! | Arch Linux | `Arch Linux` (rolling: one ecosystem) | [`ARCH`] |
//!
//! Families without a feed of their own still get an ecosystem (`CentOS Stream:9`,
//! `CentOS:7`, `Oracle Linux:9`), so that a host of theirs is shown as "no vulnerability
//! data for CentOS Stream:9", never matched against another distribution's data.

/// The one ecosystem of Arch Linux (a rolling release).
pub const ARCH: &str = "Arch Linux";

/// `openSUSE Tumbleweed` (a rolling release).
pub const TUMBLEWEED: &str = "openSUSE:Tumbleweed";

/// The Red Hat ecosystem of a product CPE (`cpe:/a:redhat:enterprise_linux:9::appstream`
/// → `Red Hat:9`, `cpe:/a:redhat:rhel_eus:9.2::baseos` → `Red Hat:9.2 EUS`,
/// `cpe:/o:redhat:rhel_els:6` → `Red Hat:6 ELS`). Also accepts the CPE without its
/// `cpe:/x:redhat:` prefix, as Red Hat's OSV ecosystems write it
/// (`rhel_eus:9.2::appstream`). `None` for a product that is not the RHEL operating
/// system (OpenShift, Software Collections, JBoss, ...) or a malformed CPE.
pub fn redhat_from_cpe(cpe: &str) -> Option<String> {
    let rest = match cpe
        .strip_prefix("cpe:/o:redhat:")
        .or_else(|| cpe.strip_prefix("cpe:/a:redhat:"))
    {
        Some(r) => r,
        None if !cpe.starts_with("cpe:") => cpe,
        None => return None,
    };
    let mut parts = rest.split(':');
    let product = parts.next()?;
    let version = parts.next().unwrap_or("");
    let major = version.split('.').next().unwrap_or("");
    if major.is_empty() || !major.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let minor_stream = |kind: &str| -> Option<String> {
        let (maj, min) = version.split_once('.')?;
        let min: String = min.chars().take_while(char::is_ascii_digit).collect();
        (!min.is_empty()).then(|| format!("Red Hat:{maj}.{min} {kind}"))
    };
    match product {
        "enterprise_linux" => Some(format!("Red Hat:{major}")),
        "rhel_eus" => minor_stream("EUS"),
        "rhel_e4s" => minor_stream("E4S"),
        "rhel_aus" => minor_stream("AUS"),
        "rhel_tus" => minor_stream("TUS"),
        "rhel_els" => Some(format!("Red Hat:{major} ELS")),
        _ => None,
    }
}

/// The SUSE ecosystem of a product name as SUSE's CSAF, OVAL and OSV write it:
/// `SUSE Linux Enterprise Server 15 SP5`, `SUSE Linux Enterprise Module for Basesystem
/// 15 SP5` and `SUSE Linux Enterprise Server for SAP Applications 15 SP5` →
/// `SUSE:Linux Enterprise 15 SP5`; `SUSE Linux Enterprise Server 15 SP3-LTSS` and
/// `SUSE Linux Enterprise Server LTSS 15 SP3` → `SUSE:Linux Enterprise 15 SP3 LTSS`;
/// `SUSE Linux Enterprise Micro 5.5` → `SUSE:Linux Enterprise Micro 5.5`; `openSUSE Leap
/// 15.5` → `openSUSE:Leap 15.5`; `openSUSE Tumbleweed` → `openSUSE:Tumbleweed`. OSV's
/// `SUSE:…`/`openSUSE:…` ecosystems are accepted too. `None` for other products (SUSE
/// Manager, Enterprise Storage, ...).
pub fn suse_from_product(name: &str) -> Option<String> {
    let name = name.trim();
    let name = if let Some(r) = name.strip_prefix("SUSE:") {
        format!("SUSE {r}")
    } else if let Some(r) = name.strip_prefix("openSUSE:") {
        format!("openSUSE {r}")
    } else {
        name.to_string()
    };
    if let Some(rest) = name.strip_prefix("openSUSE ") {
        if rest.starts_with("Tumbleweed") {
            return Some(TUMBLEWEED.to_string());
        }
        for kind in ["Leap Micro", "Leap"] {
            if let Some(v) = rest.strip_prefix(kind).map(str::trim) {
                let v = first_version(v)?;
                return Some(format!("openSUSE:{kind} {v}"));
            }
        }
        return None;
    }
    if let Some(rest) = name.strip_prefix("SUSE Linux Micro ") {
        return Some(format!("SUSE:Linux Micro {}", first_version(rest)?));
    }
    let rest = name.strip_prefix("SUSE Linux Enterprise ")?;
    if let Some(v) = rest.strip_prefix("Micro ") {
        let v = first_version(v)?;
        // SLE Micro 6 was renamed SUSE Linux Micro 6; SUSE's CSAF still uses the old name
        if v.split('.').next().and_then(|m| m.parse::<u32>().ok()) >= Some(6) {
            return Some(format!("SUSE:Linux Micro {v}"));
        }
        return Some(format!("SUSE:Linux Enterprise Micro {v}"));
    }
    // Extended service pack support (ESPOS, BCL) is long-term support of that SP
    let rest = rest.replace("-ESPOS", "-LTSS").replace("-BCL", "-LTSS");
    let rest = rest.as_str();
    let ltss = rest.contains("LTSS");
    // the version: the first token that starts with a digit, and an SPn after it
    let tokens: Vec<&str> = rest.split_whitespace().collect();
    let at = tokens
        .iter()
        .position(|t| t.starts_with(|c: char| c.is_ascii_digit()))?;
    let major = tokens[at].trim_end_matches("-LTSS");
    let major: String = major
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let sp = tokens
        .get(at + 1)
        .map(|t| t.trim_end_matches("-LTSS"))
        .filter(|t| t.starts_with("SP") && t[2..].chars().all(|c| c.is_ascii_digit()))
        .filter(|t| t.len() > 2);
    let mut eco = format!("SUSE:Linux Enterprise {major}");
    if let Some(sp) = sp {
        eco.push(' ');
        eco.push_str(sp);
    }
    if ltss {
        eco.push_str(" LTSS");
    }
    Some(eco)
}

/// The first whitespace-separated token, when it is a version (`15.5`, `5.5`).
fn first_version(s: &str) -> Option<&str> {
    let v = s.split_whitespace().next()?;
    v.chars()
        .all(|c| c.is_ascii_digit() || c == '.')
        .then_some(v)
        .filter(|v| !v.is_empty())
}

/// The Amazon Linux ecosystem of a release (`2`, `2023`, `2022`; `1` or `2018.03` for
/// Amazon Linux AMI) and, for Amazon Linux 2's "extras" repositories, the extra
/// (`kernel-5.15` → `Amazon Linux:2 extras kernel-5.15`).
pub fn amazon(release: &str, extra: Option<&str>) -> String {
    let release = if release.starts_with("2018") || release.starts_with("2017") {
        "1"
    } else {
        release
    };
    match extra {
        Some(x) => format!("Amazon Linux:{release} extras {x}"),
        None => format!("Amazon Linux:{release}"),
    }
}

/// The Amazon Linux 2 "extras" ecosystem a running kernel comes from (`5.15.73-45.135.amzn2.x86_64`
/// → `Amazon Linux:2 extras kernel-5.15`); `None` for the core kernel (4.14) and others.
pub fn amazon_kernel_extra(release: &str, kernel: &str) -> Option<String> {
    if release != "2" || !kernel.contains(".amzn2") {
        return None;
    }
    let mut parts = kernel.split('.');
    let (major, minor) = (parts.next()?, parts.next()?);
    let series = format!("{major}.{minor}");
    (series != "4.14").then(|| amazon(release, Some(&format!("kernel-{series}"))))
}

/// The Fedora ecosystem of a release: a number (`40`) or Bodhi's release name (`F40`,
/// modular `F40M`). `None` for Bodhi's flatpak (`F40F`) and container (`F40C`) releases
/// and for EPEL (not Fedora hosts' packages).
pub fn fedora(release: &str) -> Option<String> {
    let r = release.strip_prefix('F').unwrap_or(release);
    let r = r.strip_suffix('M').unwrap_or(r);
    (!r.is_empty() && r.chars().all(|c| c.is_ascii_digit())).then(|| format!("Fedora:{r}"))
}

/// An ecosystem string as the data names it, made canonical: Red Hat's OSV ecosystems
/// (`Red Hat:rhel_eus:9.2::appstream`) and SUSE's (`SUSE:Linux Enterprise Module for
/// Basesystem 15 SP5`) become this module's names; `None` when the ecosystem belongs to
/// one of those vendors but names a product that is not an operating system (the record
/// keeps no statement for it). Other ecosystems are returned unchanged.
pub fn normalize(ecosystem: &str) -> Option<String> {
    if let Some(cpe) = ecosystem.strip_prefix("Red Hat:") {
        // already canonical (`Red Hat:9`, `Red Hat:9.2 EUS`)?
        if cpe.starts_with(|c: char| c.is_ascii_digit()) {
            return Some(ecosystem.to_string());
        }
        return redhat_from_cpe(cpe);
    }
    if ecosystem.starts_with("SUSE:") || ecosystem.starts_with("openSUSE:") {
        return suse_from_product(ecosystem);
    }
    Some(ecosystem.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redhat_streams_from_cpes() {
        let r = |c: &str| redhat_from_cpe(c);
        assert_eq!(
            r("cpe:/a:redhat:enterprise_linux:9::appstream").as_deref(),
            Some("Red Hat:9")
        );
        assert_eq!(
            r("cpe:/o:redhat:enterprise_linux:8::baseos").as_deref(),
            Some("Red Hat:8")
        );
        assert_eq!(
            r("cpe:/o:redhat:enterprise_linux:7::server").as_deref(),
            Some("Red Hat:7")
        );
        assert_eq!(
            r("cpe:/o:redhat:enterprise_linux:7").as_deref(),
            Some("Red Hat:7")
        );
        assert_eq!(
            r("cpe:/a:redhat:rhel_eus:9.2::appstream").as_deref(),
            Some("Red Hat:9.2 EUS")
        );
        assert_eq!(
            r("cpe:/a:redhat:rhel_e4s:9.0::baseos").as_deref(),
            Some("Red Hat:9.0 E4S")
        );
        assert_eq!(
            r("cpe:/o:redhat:rhel_els:6").as_deref(),
            Some("Red Hat:6 ELS")
        );
        assert_eq!(
            r("rhel_eus:9.2::appstream").as_deref(),
            Some("Red Hat:9.2 EUS")
        );
        assert_eq!(r("cpe:/a:redhat:openshift:4.12::el8"), None);
        assert_eq!(r("cpe:/a:redhat:rhel_eus:9::appstream"), None);
        assert_eq!(r("cpe:/a:redhat:enterprise_linux"), None);
        assert_eq!(r("cpe:/a:debian:debian_linux:12"), None);
    }

    #[test]
    fn suse_products() {
        let s = |c: &str| suse_from_product(c);
        assert_eq!(
            s("SUSE Linux Enterprise Server 15 SP5").as_deref(),
            Some("SUSE:Linux Enterprise 15 SP5")
        );
        assert_eq!(
            s("SUSE Linux Enterprise Module for Basesystem 15 SP5").as_deref(),
            Some("SUSE:Linux Enterprise 15 SP5")
        );
        assert_eq!(
            s("SUSE Linux Enterprise Server for SAP Applications 12 SP5").as_deref(),
            Some("SUSE:Linux Enterprise 12 SP5")
        );
        assert_eq!(
            s("SUSE Linux Enterprise Server 15 SP3-LTSS").as_deref(),
            Some("SUSE:Linux Enterprise 15 SP3 LTSS")
        );
        assert_eq!(
            s("SUSE Linux Enterprise Server LTSS 15 SP3").as_deref(),
            Some("SUSE:Linux Enterprise 15 SP3 LTSS")
        );
        assert_eq!(
            s("SUSE Linux Enterprise Server 11").as_deref(),
            Some("SUSE:Linux Enterprise 11")
        );
        assert_eq!(
            s("SUSE Linux Enterprise Server 16.0").as_deref(),
            Some("SUSE:Linux Enterprise 16.0")
        );
        assert_eq!(
            s("SUSE Linux Enterprise Micro 5.5").as_deref(),
            Some("SUSE:Linux Enterprise Micro 5.5")
        );
        assert_eq!(
            s("openSUSE Leap 15.5").as_deref(),
            Some("openSUSE:Leap 15.5")
        );
        assert_eq!(
            s("openSUSE Leap Micro 5.5").as_deref(),
            Some("openSUSE:Leap Micro 5.5")
        );
        assert_eq!(s("openSUSE Tumbleweed").as_deref(), Some(TUMBLEWEED));
        assert_eq!(
            s("SUSE:Linux Enterprise Server 15 SP5").as_deref(),
            Some("SUSE:Linux Enterprise 15 SP5")
        );
        assert_eq!(
            s("openSUSE:Leap 15.5").as_deref(),
            Some("openSUSE:Leap 15.5")
        );
        assert_eq!(
            s("SUSE Linux Enterprise Micro 6.0").as_deref(),
            Some("SUSE:Linux Micro 6.0")
        );
        assert_eq!(
            s("SUSE Linux Enterprise High Performance Computing 15 SP3-ESPOS").as_deref(),
            Some("SUSE:Linux Enterprise 15 SP3 LTSS")
        );
        assert_eq!(
            s("SUSE Linux Enterprise Server 12 SP2-BCL").as_deref(),
            Some("SUSE:Linux Enterprise 12 SP2 LTSS")
        );
        assert_eq!(s("SUSE Manager Server 4.3"), None);
        assert_eq!(s("SUSE Enterprise Storage 7.1"), None);
    }

    #[test]
    fn amazon_and_fedora() {
        assert_eq!(amazon("2", None), "Amazon Linux:2");
        assert_eq!(amazon("2018.03", None), "Amazon Linux:1");
        assert_eq!(
            amazon("2", Some("kernel-5.15")),
            "Amazon Linux:2 extras kernel-5.15"
        );
        assert_eq!(
            amazon_kernel_extra("2", "5.15.73-45.135.amzn2.x86_64").as_deref(),
            Some("Amazon Linux:2 extras kernel-5.15")
        );
        assert_eq!(
            amazon_kernel_extra("2", "4.14.343-261.564.amzn2.x86_64"),
            None
        );
        assert_eq!(amazon_kernel_extra("2023", "6.1.1-1.amzn2023.x86_64"), None);
        assert_eq!(fedora("F40").as_deref(), Some("Fedora:40"));
        assert_eq!(fedora("F38M").as_deref(), Some("Fedora:38"));
        assert_eq!(fedora("40").as_deref(), Some("Fedora:40"));
        assert_eq!(fedora("F38F"), None);
        assert_eq!(fedora("F29C"), None);
        assert_eq!(fedora("EPEL-9"), None);
    }

    #[test]
    fn normalized_osv_ecosystems() {
        assert_eq!(
            normalize("Red Hat:rhel_eus:9.2::appstream").as_deref(),
            Some("Red Hat:9.2 EUS")
        );
        assert_eq!(normalize("Red Hat:9").as_deref(), Some("Red Hat:9"));
        assert_eq!(normalize("Red Hat:openshift:4.12::el8"), None);
        assert_eq!(
            normalize("SUSE:Linux Enterprise Desktop 15 SP4").as_deref(),
            Some("SUSE:Linux Enterprise 15 SP4")
        );
        assert_eq!(normalize("AlmaLinux:9").as_deref(), Some("AlmaLinux:9"));
        assert_eq!(normalize("Debian:12").as_deref(), Some("Debian:12"));
    }
}
