//! Amazon Linux ALAS (`updateinfo.xml`) on the real samples in ../shared/data/amazon,
//! through the real import front door and the real matcher.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;

use patchctl_proto::agent::{InstalledPackage, OsInfo};
use patchctl_testkit::{Harness, Need, trial};
use patchctl_vuln::ecosystem::{host_ecosystems, names};
use patchctl_vuln::import::{FeedBatch, amazon};
use patchctl_vuln::matcher::{Finding, Index};
use patchctl_vuln::{Record, Status};

mod common;

const SAMPLES: Need = Need::SharedData("amazon/updateinfo-samples");
const ITEMS: Need = Need::SharedData("amazon/updateinfo-samples-vuln-list-update");

fn main() -> std::process::ExitCode {
    Harness::new()
        .test(trial!(every_sample_imports_into_its_release).needs([SAMPLES, ITEMS]))
        .test(trial!(amazon_data_states_only_fixes_never_not_affected).needs([SAMPLES, ITEMS]))
        .test(trial!(qemu_kvm_just_below_the_fix_is_vulnerable_and_fixable).needs([ITEMS]))
        .test(trial!(qemu_kvm_exactly_at_the_fix_is_no_finding).needs([ITEMS]))
        .test(trial!(epoch_10_and_2_outrank_higher_epochless_versions).needs([SAMPLES, ITEMS]))
        .test(trial!(kernel_5_15_extra_applies_only_to_hosts_running_it).needs([SAMPLES]))
        .test(trial!(broken_update_is_rejected_by_id_and_the_rest_imported).needs([ITEMS]))
        .run()
}

/// Every updateinfo file of the samples (the repomd.xml beside them is an index).
fn sample_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in [
        "amazon/updateinfo-samples",
        "amazon/updateinfo-samples-vuln-list-update",
    ] {
        let mut in_dir: Vec<PathBuf> = std::fs::read_dir(common::data(dir))
            .expect("sample dir")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.to_string_lossy().ends_with(".xml.gz"))
            .collect();
        in_dir.sort();
        files.extend(in_dir);
    }
    files
}

fn batches(paths: &[PathBuf]) -> Vec<FeedBatch> {
    common::batches(paths)
}

fn records(paths: &[PathBuf]) -> Vec<Record> {
    common::records_of(paths, amazon::FEED)
}

fn index(records: Vec<Record>) -> Index {
    common::index_of(amazon::FEED, records)
}

fn items_index() -> Index {
    let d = common::data("amazon/updateinfo-samples-vuln-list-update");
    index(records(&[d.join("updateinfo_2_items.xml.gz")]))
}

fn amzn(version_id: &str, kernel: Option<&str>) -> Vec<String> {
    let os = OsInfo {
        id: "amzn".into(),
        version_id: version_id.into(),
        ..OsInfo::default()
    };
    host_ecosystems(&os, false, kernel)
}

/// An installed RPM as the agent reports it (`E:V-R`, the epoch only when not 0).
fn rpm(name: &str, version: &str, source: &str) -> InstalledPackage {
    InstalledPackage {
        name: name.into(),
        version: version.into(),
        arch: "x86_64".into(),
        source_name: Some(source.into()),
        source_version: None,
        status: "installed".into(),
    }
}

fn about<'a>(f: &'a [Finding], id: &str) -> Vec<&'a Finding> {
    f.iter().filter(|f| f.advisory == id).collect()
}

fn every_sample_imports_into_its_release() {
    let recs = records(&sample_files());
    let ecos: BTreeMap<&str, Vec<&str>> = recs
        .iter()
        .map(|r| {
            let mut e: Vec<&str> = r.affected.iter().map(|a| a.ecosystem.as_str()).collect();
            e.dedup();
            (r.id.as_str(), e)
        })
        .collect();
    let expect = [
        ("ALAS-2011-1", "Amazon Linux:1"),
        ("ALAS2-2018-939", "Amazon Linux:2"),
        ("ALAS2-2018-942", "Amazon Linux:2"),
        ("ALAS2-2018-949", "Amazon Linux:2"),
        ("ALAS2022-2021-001", "Amazon Linux:2022"),
        ("ALAS2023-2023-001", "Amazon Linux:2023"),
        ("ALAS2023LIVEPATCH-2023-001", "Amazon Linux:2023"),
        ("ALAS2023NVIDIA-2025-001", "Amazon Linux:2023"),
        (
            "ALAS2KERNEL-5.15-2022-001",
            "Amazon Linux:2 extras kernel-5.15",
        ),
    ];
    assert_eq!(ecos.len(), expect.len(), "{:?}", ecos.keys());
    for (id, eco) in expect {
        assert_eq!(ecos[id], [eco], "{id}");
    }
    assert_eq!(
        names::amazon("2", Some("kernel-5.15")),
        "Amazon Linux:2 extras kernel-5.15"
    );
    let find = |id: &str| common::find(&recs, id);
    // severity words as published (case varies), CVE aliases, summary without prefix
    assert_eq!(find("ALAS2-2018-939").severity.as_deref(), Some("critical"));
    assert_eq!(
        find("ALAS2023-2023-001").severity.as_deref(),
        Some("Important")
    );
    assert_eq!(
        find("ALAS2-2018-939").aliases,
        ["CVE-2017-5715", "CVE-2017-5754"]
    );
    assert_eq!(
        find("ALAS2-2018-939").summary,
        "critical priority package update for kernel"
    );
    assert_eq!(find("ALAS-2011-1").aliases, ["CVE-2011-3192"]);
    assert_eq!(
        find("ALAS-2011-1").modified.as_deref(),
        Some("2014-09-14T14:25:00Z")
    );
    // arches collapse: rsyslog-openssl is listed for x86_64, i686, aarch64
    let rs = find("ALAS2023-2023-001");
    let openssl: Vec<_> = rs
        .affected
        .iter()
        .filter(|a| a.package == "rsyslog-openssl")
        .collect();
    assert_eq!(openssl.len(), 1);
    assert_eq!(openssl[0].status, common::fixed("8.2204.0-3.amzn2023.0.2"));
    // the epoch is part of the fixed version
    let vim = common::entry(
        find("ALAS2022-2021-001"),
        "Amazon Linux:2022",
        "vim-common-debuginfo",
    );
    assert_eq!(vim.status, common::fixed("2:8.2.3512-1.amzn2022"));
    let lp = find("ALAS2023LIVEPATCH-2023-001");
    assert_eq!(lp.affected.len(), 1);
    assert_eq!(lp.affected[0].package, "kernel-livepatch-6.1.12-19.43");
    assert_eq!(lp.affected[0].status, common::fixed("1.0-1.amzn2023"));
    let nv = common::entry(
        find("ALAS2023NVIDIA-2025-001"),
        "Amazon Linux:2023",
        "libnvidia-container-tools",
    );
    assert_eq!(nv.status, common::fixed("1.17.4-1"));
}

/// Amazon's updateinfo.xml states fixes only: no "not affected" and no "will not fix"
/// exist in it, so the importer never produces them (there is no not-affected trap to
/// test for this family).
fn amazon_data_states_only_fixes_never_not_affected() {
    let recs = records(&sample_files());
    let statements: Vec<_> = recs.iter().flat_map(|r| &r.affected).collect();
    assert_eq!(statements.len(), 70);
    for a in statements {
        assert!(matches!(a.status, Status::Fixed { .. }), "{a:?}");
    }
}

fn qemu_kvm_just_below_the_fix_is_vulnerable_and_fixable() {
    let idx = items_index();
    let host = [rpm("qemu-kvm", "10:1.5.3-141.amzn2.5.2", "qemu-kvm")];
    let f = idx.match_host(&amzn("2", None), None, &host);
    let q = about(&f, "ALAS2-2018-942");
    assert_eq!(q.len(), 1, "{f:#?}");
    assert!(q[0].vulnerable && q[0].fixable);
    assert_eq!(q[0].status.fixed_version(), Some("10:1.5.3-141.amzn2.5.3"));
    assert_eq!(q[0].ecosystem, "Amazon Linux:2");
    assert_eq!(q[0].aliases, ["CVE-2017-5715"]);
    assert_eq!(
        q[0].comparison,
        "installed 10:1.5.3-141.amzn2.5.2 < fixed 10:1.5.3-141.amzn2.5.3 (rpm)"
    );
    assert_eq!(q[0].distro_severity.as_deref(), Some("important"));
    assert_eq!(q[0].severity.name(), "high");
}

fn qemu_kvm_exactly_at_the_fix_is_no_finding() {
    let idx = items_index();
    for v in ["10:1.5.3-141.amzn2.5.3", "10:1.5.3-141.amzn2.5.4"] {
        let host = [
            rpm("qemu-kvm", v, "qemu-kvm"),
            rpm("qemu-img", v, "qemu-kvm"),
        ];
        let f = idx.match_host(&amzn("2", None), None, &host);
        assert!(f.is_empty(), "{v}: {f:#?}");
    }
    // the same host on Amazon Linux 2023 is never matched by AL2 data
    let host = [rpm("qemu-kvm", "10:1.5.3-141.amzn2.5.2", "qemu-kvm")];
    assert!(idx.match_host(&amzn("2023", None), None, &host).is_empty());
}

fn epoch_10_and_2_outrank_higher_epochless_versions() {
    let idx = items_index();
    // qemu-kvm 2.0.0 without epoch is older than 10:1.5.3-141: still vulnerable
    let host = [rpm("qemu-kvm", "2.0.0-1.amzn2", "qemu-kvm")];
    let f = idx.match_host(&amzn("2", None), None, &host);
    let q = about(&f, "ALAS2-2018-942");
    assert_eq!(q.len(), 1, "{f:#?}");
    assert!(q[0].fixable);
    assert_eq!(
        q[0].comparison,
        "installed 2.0.0-1.amzn2 < fixed 10:1.5.3-141.amzn2.5.3 (rpm)"
    );
    // java-1.8.0-openjdk carries epoch 1
    let host = [rpm(
        "java-1.8.0-openjdk",
        "1:1.8.0.151-5.b12.amzn2",
        "java-1.8.0-openjdk",
    )];
    let f = idx.match_host(&amzn("2", None), None, &host);
    assert_eq!(
        about(&f, "ALAS2-2018-949")[0].status.fixed_version(),
        Some("1:1.8.0.161-0.b14.amzn2")
    );
    // vim's epoch 2 on AL2022
    let d = common::data("amazon/updateinfo-samples");
    let idx = index(records(&[d.join("updateinfo_2022.xml.gz")]));
    let e = amzn("2022", None);
    let below = [rpm("vim-common-debuginfo", "9.0.0-1.amzn2022", "vim")];
    let f = idx.match_host(&e, None, &below);
    assert_eq!(about(&f, "ALAS2022-2021-001").len(), 1, "{f:#?}");
    assert!(f[0].fixable);
    let at = [rpm("vim-common-debuginfo", "2:8.2.3512-1.amzn2022", "vim")];
    assert!(idx.match_host(&e, None, &at).is_empty());
    let older = [rpm("vim-common-debuginfo", "2:8.2.3511-1.amzn2022", "vim")];
    assert_eq!(idx.match_host(&e, None, &older).len(), 1);
}

/// ALAS2KERNEL-5.15-2022-001 fixes the kernel-5.15 extra: a host running the core
/// 4.14 kernel is not concerned, one running 5.15 below the fix is.
fn kernel_5_15_extra_applies_only_to_hosts_running_it() {
    let d = common::data("amazon/updateinfo-samples");
    let idx = index(records(&[
        d.join("updateinfo_2.xml.gz"),
        d.join("updateinfo_2_kernel-5.15.xml.gz"),
    ]));
    let old = "5.15.43-20.122.amzn2";
    let core = "4.14.281-212.502.amzn2";
    // running 5.15: the extra's ecosystem applies
    let running = format!("{old}.x86_64");
    let e = amzn("2", Some(&running));
    assert_eq!(e, ["Amazon Linux:2", "Amazon Linux:2 extras kernel-5.15"]);
    let host = [rpm("kernel", old, "kernel"), rpm("kernel", core, "kernel")];
    let f = idx.match_host(&e, Some(&running), &host);
    let k = about(&f, "ALAS2KERNEL-5.15-2022-001");
    assert_eq!(k.len(), 1, "{f:#?}");
    assert!(k[0].fixable);
    assert_eq!(k[0].installed_version, old);
    assert_eq!(k[0].status.fixed_version(), Some("5.15.43-20.123.amzn2"));
    assert_eq!(k[0].ecosystem, "Amazon Linux:2 extras kernel-5.15");
    // ALAS2-2018-939 (core kernel 4.9.76) is older than 5.15: nothing
    assert!(about(&f, "ALAS2-2018-939").is_empty());
    // the same packages, running the core 4.14 kernel: the 5.15 advisory does not apply
    let running = format!("{core}.x86_64");
    let e = amzn("2", Some(&running));
    assert_eq!(e, ["Amazon Linux:2"]);
    let f = idx.match_host(&e, Some(&running), &host);
    assert!(f.is_empty(), "{f:#?}");
    // running 5.15 exactly at the fix: nothing
    let fixed = "5.15.43-20.123.amzn2";
    let running = format!("{fixed}.x86_64");
    let host = [rpm("kernel", fixed, "kernel")];
    assert!(
        idx.match_host(&amzn("2", Some(&running)), Some(&running), &host)
            .is_empty()
    );
}

fn broken_update_is_rejected_by_id_and_the_rest_imported() {
    let src = common::data("amazon/updateinfo-samples-vuln-list-update/updateinfo_2_items.xml.gz");
    let mut xml = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(src).expect("sample"))
        .read_to_string(&mut xml)
        .expect("gzip");
    let broken = xml.replacen(
        r#"epoch="10" name="qemu-img""#,
        r#"epoch="ten" name="qemu-img""#,
        1,
    );
    assert_ne!(broken, xml);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("updateinfo.xml");
    std::fs::write(&path, broken).expect("write");
    let b = batches(&[path]);
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].feed, amazon::FEED);
    let rejected: Vec<_> = b[0].parsed.rejected.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(rejected, ["ALAS2-2018-942"]);
    assert!(
        b[0].parsed.rejected[0]
            .reason
            .contains("qemu-img: epoch \"ten\" is not a number"),
        "{}",
        b[0].parsed.rejected[0].reason
    );
    let ids: Vec<_> = b[0].parsed.records.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["ALAS2-2018-949"]);
}
