//! `patchctl vulns check` for a host of every family the agent manages, with the real
//! binary, on the real vendor samples in ../shared/data imported with `patchctl vulndb
//! import`: each finding correct and evidenced (advisory, ecosystem, fixed version, the
//! comparison that decided), a host exactly at the fix clean, and a release without
//! data said to have none, never "0 findings".
#![allow(clippy::disallowed_methods)] // tests run the real binary

use std::path::{Path, PathBuf};
use std::process::Command;

use patchctl_testkit::{Harness, Need, trial};
use serde_json::Value;

fn main() -> std::process::ExitCode {
    Harness::new()
        .test(trial!(every_family_checked_offline_with_evidence).needs([
            Need::SharedData("redhat/csaf-vex"),
            Need::SharedData("redhat/security-data-api/CVE-2023-4863"),
            Need::SharedData("suse/csaf-vex"),
            Need::SharedData("amazon/updateinfo-samples-vuln-list-update"),
            Need::SharedData("fedora/bodhi-api-updates/F38.json"),
            Need::SharedData("arch/trivy-db"),
            Need::SharedData("kev/known_exploited_vulnerabilities.json"),
        ]))
        .run()
}

fn patchctl(args: &[&str]) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_patchctl"))
        .args(args)
        .env_remove("PATCHCTL_DATABASE_URL")
        .output()
        .expect("run patchctl");
    assert!(
        o.status.success(),
        "patchctl {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).expect("UTF-8 output")
}

/// One host to check: its os-release and its packages in one of the CLI's formats.
struct Host<'a> {
    os_release: &'a str,
    flag: &'a str,
    packages: &'a str,
}

impl Host<'_> {
    /// `vulns check` of this host: the JSON report and the table.
    fn check(&self, db: &str, dir: &Path, name: &str) -> (Value, String) {
        let os = dir.join(format!("{name}.os-release"));
        let pkgs = dir.join(format!("{name}.packages"));
        std::fs::write(&os, self.os_release).unwrap();
        std::fs::write(&pkgs, self.packages).unwrap();
        let (os, pkgs) = (os.display().to_string(), pkgs.display().to_string());
        let base = [
            "vulns",
            "check",
            "--database-url",
            db,
            "--os-release",
            &os,
            self.flag,
            &pkgs,
        ];
        let json = patchctl(&[&base[..], &["--output", "json"]].concat());
        let text = patchctl(&base);
        (serde_json::from_str(&json).expect("JSON report"), text)
    }
}

/// The findings of a report about `advisory`.
fn about<'a>(report: &'a Value, advisory: &str) -> Vec<&'a Value> {
    report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["advisory"] == advisory)
        .collect()
}

/// The one vulnerable, fixable finding about `advisory`, checked for its evidence.
fn fixable<'a>(
    report: &'a Value,
    advisory: &str,
    ecosystem: &str,
    fixed: &str,
    comparison: &str,
) -> &'a Value {
    let f = about(report, advisory);
    assert_eq!(f.len(), 1, "{advisory}: {report:#}");
    let f = f[0];
    assert_eq!(f["status"], "fixed", "{f:#}");
    assert_eq!(f["fixed_version"], fixed, "{f:#}");
    assert_eq!(f["ecosystem"], ecosystem, "{f:#}");
    assert_eq!(f["comparison"], comparison, "{f:#}");
    assert_eq!(
        (&f["vulnerable"], &f["fixable"]),
        (&true.into(), &true.into())
    );
    assert!(
        f["source"].is_string() && f["imported_at"].is_string(),
        "{f:#}"
    );
    f
}

fn rpm_host<'a>(os_release: &'a str, packages: &'a str) -> Host<'a> {
    Host {
        os_release,
        flag: "--rpm-qa",
        packages,
    }
}

const RHEL_93: &str = "NAME=\"Red Hat Enterprise Linux\"\nID=\"rhel\"\nVERSION_ID=\"9.3\"\nPRETTY_NAME=\"Red Hat Enterprise Linux 9.3 (Plow)\"\n";
const RHEL_810: &str = "NAME=\"Red Hat Enterprise Linux\"\nID=\"rhel\"\nVERSION_ID=\"8.10\"\nPRETTY_NAME=\"Red Hat Enterprise Linux 8.10 (Ootpa)\"\n";
const TUMBLEWEED: &str = "NAME=\"openSUSE Tumbleweed\"\nID=\"opensuse-tumbleweed\"\nVERSION_ID=\"20240101\"\nPRETTY_NAME=\"openSUSE Tumbleweed\"\n";
const SLES_155: &str = "NAME=\"SLES\"\nID=\"sles\"\nVERSION_ID=\"15.5\"\nPRETTY_NAME=\"SUSE Linux Enterprise Server 15 SP5\"\n";
const AMAZON_2: &str =
    "NAME=\"Amazon Linux\"\nID=\"amzn\"\nVERSION_ID=\"2\"\nPRETTY_NAME=\"Amazon Linux 2\"\n";
const FEDORA_38: &str = "NAME=\"Fedora Linux\"\nID=fedora\nVERSION_ID=38\nPRETTY_NAME=\"Fedora Linux 38 (Server Edition)\"\n";
const ARCH: &str = "NAME=\"Arch Linux\"\nID=arch\nBUILD_ID=rolling\nPRETTY_NAME=\"Arch Linux\"\n";
const CENTOS_STREAM_9: &str =
    "NAME=\"CentOS Stream\"\nID=\"centos\"\nVERSION_ID=\"9\"\nPRETTY_NAME=\"CentOS Stream 9\"\n";
const DEBIAN_13: &str = "PRETTY_NAME=\"Debian GNU/Linux 13 (trixie)\"\nID=debian\nVERSION_ID=\"13\"\nVERSION_CODENAME=trixie\n";

fn every_family_checked_offline_with_evidence() {
    let data = patchctl_testkit::shared_data("");
    let tmp = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", tmp.path().join("vuln.db").display());
    let paths: Vec<PathBuf> = [
        "redhat/csaf-vex",
        "redhat/security-data-api/CVE-2023-4863",
        "suse/csaf-vex",
        "amazon/updateinfo-samples-vuln-list-update",
        "fedora/bodhi-api-updates/F38.json",
        "arch/trivy-db",
        "kev/known_exploited_vulnerabilities.json",
    ]
    .iter()
    .map(|p| data.join(p))
    .collect();
    let mut import = vec!["vulndb", "import", "--database-url", &db];
    let paths: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    import.extend(paths.iter().map(String::as_str));
    let out = patchctl(&import);
    for feed in [
        "redhat-csaf",
        "redhat-api",
        "suse-csaf",
        "amazon-alas",
        "fedora-updates",
        "arch-tracker",
        "cisa-kev",
    ] {
        assert!(
            out.contains(&format!("{feed}: ")),
            "{feed} not imported:\n{out}"
        );
    }
    let dir = tmp.path();

    // Red Hat: the main stream decides for 9.3 (no EUS statement for 9.3); epoch 0 of
    // the fixed build against an installed version written without it.
    let below = rpm_host(
        RHEL_93,
        "glibc 0:2.34-100.el9_4.1 x86_64 glibc-2.34-100.el9_4.1.src.rpm\n",
    );
    let (r, text) = below.check(&db, dir, "rhel93");
    assert_eq!(
        r["ecosystems"],
        serde_json::json!(["Red Hat:9", "Red Hat:9.3 EUS"])
    );
    assert_eq!(r["coverage"]["level"], "cve");
    fixable(
        &r,
        "CVE-2024-2961",
        "Red Hat:9",
        "0:2.34-100.el9_4.2",
        "installed 2.34-100.el9_4.1 < fixed 0:2.34-100.el9_4.2 (rpm)",
    );
    assert!(text.contains("CVE-2024-2961"), "{text}");
    let at = rpm_host(
        RHEL_93,
        "glibc 0:2.34-100.el9_4.2 x86_64 glibc-2.34-100.el9_4.2.src.rpm\n",
    );
    assert!(about(&at.check(&db, dir, "rhel93at").0, "CVE-2024-2961").is_empty());

    // Red Hat Security Data API, and CISA KEV on the finding (libwebp CVE-2023-4863)
    let webp = rpm_host(
        RHEL_810,
        "libwebp 0:1.0.0-8.el8_8 x86_64 libwebp-1.0.0-8.el8_8.src.rpm\n",
    );
    let (r, text) = webp.check(&db, dir, "rhel810");
    let f = fixable(
        &r,
        "CVE-2023-4863",
        "Red Hat:8",
        "0:1.0.0-8.el8_8.1",
        "installed 1.0.0-8.el8_8 < fixed 0:1.0.0-8.el8_8.1 (rpm)",
    );
    assert_eq!(f["matched_by"], "binary", "{f:#}");
    assert_eq!(f["known_exploited"]["date_added"], "2023-09-13", "{f:#}");
    assert!(text.contains("CVE-2023-4863"), "{text}");

    // openSUSE Tumbleweed: SUSE's `recommended` build, no epoch
    let tw = rpm_host(
        TUMBLEWEED,
        "samba 0:4.19.2+git.322.7e9201cef5-1 x86_64 samba-4.19.2+git.322.7e9201cef5-1.src.rpm\n",
    );
    let (r, _) = tw.check(&db, dir, "tw");
    fixable(
        &r,
        "CVE-2023-5568",
        "openSUSE:Tumbleweed",
        "4.19.2+git.322.7e9201cef5-1.1",
        "installed 4.19.2+git.322.7e9201cef5-1 < fixed 4.19.2+git.322.7e9201cef5-1.1 (rpm)",
    );
    let tw_at = rpm_host(
        TUMBLEWEED,
        "samba 0:4.19.2+git.322.7e9201cef5-1.1 x86_64 samba-4.19.2+git.322.7e9201cef5-1.1.src.rpm\n",
    );
    assert!(about(&tw_at.check(&db, dir, "twat").0, "CVE-2023-5568").is_empty());

    // SLES 15 SP5: samba is not affected: no vulnerable finding, shown on request
    let sles = rpm_host(
        SLES_155,
        "samba 0:4.17.9+git.421.abde31ca5c2-150500.3.11.1 x86_64 samba-4.17.9+git.421.abde31ca5c2-150500.3.11.1.src.rpm\n",
    );
    let (r, _) = sles.check(&db, dir, "sles");
    assert_eq!(r["vulnerable"], 0, "{r:#}");
    assert_eq!(r["coverage"]["level"], "cve", "{r:#}");

    // Amazon Linux 2: the epoch (10) of the ALAS build
    let al2 = rpm_host(
        AMAZON_2,
        "qemu-kvm 10:1.5.3-141.amzn2.5.2 x86_64 qemu-kvm-1.5.3-141.amzn2.5.2.src.rpm\n",
    );
    let (r, _) = al2.check(&db, dir, "al2");
    let alas: Vec<&Value> = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["package"] == "qemu-kvm")
        .collect();
    assert_eq!(alas.len(), 1, "{r:#}");
    let id = alas[0]["advisory"].as_str().unwrap();
    assert!(id.starts_with("ALAS2-"), "{id}");
    fixable(
        &r,
        id,
        "Amazon Linux:2",
        "10:1.5.3-141.amzn2.5.3",
        "installed 10:1.5.3-141.amzn2.5.2 < fixed 10:1.5.3-141.amzn2.5.3 (rpm)",
    );

    // Fedora: found, and said to be security advisories only
    let f38 = rpm_host(
        FEDORA_38,
        "libcap 0:2.48-6.fc38 x86_64 libcap-2.48-6.fc38.src.rpm\n",
    );
    let (r, text) = f38.check(&db, dir, "f38");
    assert_eq!(r["coverage"]["level"], "security_advisories", "{r:#}");
    let f = about(&r, "FEDORA-2023-5911638116");
    assert_eq!(f.len(), 1, "{r:#}");
    assert_eq!(f[0]["vulnerable"], true);
    assert!(
        text.contains("note: security advisories only for Fedora:38"),
        "{text}"
    );

    // Arch: the tracker's fixed pacman version
    let arch = Host {
        os_release: ARCH,
        flag: "--pacman-q",
        packages: "linux-lts 4.19.51-1\nglibc 2.39-1\n",
    };
    let (r, _) = arch.check(&db, dir, "arch");
    fixable(
        &r,
        "AVG-984",
        "Arch Linux",
        "4.19.52-1",
        "installed 4.19.51-1 < fixed 4.19.52-1 (pacman)",
    );

    // No data: said so, never "0 vulnerable findings"
    for (name, os, expect) in [
        (
            "stream",
            CENTOS_STREAM_9,
            "no vulnerability data for CentOS Stream:9 (PatchCTL has no vulnerability source for this distribution",
        ),
        (
            "trixie",
            DEBIAN_13,
            "no vulnerability data for Debian:13 (import or sync this release's feed",
        ),
    ] {
        let host = if name == "trixie" {
            Host {
                os_release: os,
                flag: "--dpkg-status",
                packages: "Package: bash\nStatus: install ok installed\nArchitecture: amd64\nVersion: 5.2.37-2\n",
            }
        } else {
            rpm_host(os, "bash 0:5.1.8-9.el9 x86_64 bash-5.1.8-9.el9.src.rpm\n")
        };
        let (r, text) = host.check(&db, dir, name);
        assert_eq!(r["coverage"]["level"], "none", "{r:#}");
        assert!(
            r["coverage"]["message"]
                .as_str()
                .unwrap()
                .starts_with(expect),
            "{r:#}"
        );
        assert!(text.contains(expect), "{text}");
        assert!(!text.contains("vulnerable findings"), "{text}");
    }
}
