//! SUSE Linux Enterprise and openSUSE: the CSAF VEX documents, CSAF advisories and OSV
//! records in ../shared/data/suse, through the real importers and the real matcher.

use std::path::{Path, PathBuf};

use patchctl_proto::agent::{InstalledPackage, OsInfo};
use patchctl_testkit::{Harness, Need, trial};
use patchctl_vuln::ecosystem::host_ecosystems;
use patchctl_vuln::import::{self, FeedBatch};
use patchctl_vuln::matcher::{Finding, Index, MatchedBy};
use patchctl_vuln::model::Status;

mod common;

const VEX: Need = Need::SharedData("suse/csaf-vex");
const ADVISORIES: Need = Need::SharedData("suse/csaf");
const OSV: Need = Need::SharedData("suse/osv");
const OVAL: Need = Need::SharedData("suse/oval");
const OVAL_2021: Need = Need::SharedData("suse/oval-vunnel/suse_truncated.xml");

fn main() -> std::process::ExitCode {
    Harness::new()
        .test(
            trial!(samba_cve_2023_5568_tumbleweed_just_below_and_exactly_at_the_recommended_build)
                .needs([VEX]),
        )
        .test(
            trial!(samba_cve_2023_5568_sl_micro_6_is_fixed_under_its_old_product_name).needs([VEX]),
        )
        .test(trial!(samba_cve_2023_5568_is_not_affected_on_sles_15).needs([VEX]))
        .test(
            trial!(suse_versions_have_no_epoch_and_binaries_fall_back_to_their_source).needs([VEX]),
        )
        .test(
            trial!(products_of_one_service_pack_that_disagree_keep_the_protective_statement)
                .needs([VEX]),
        )
        .test(
            trial!(cve_1999_0003_without_product_status_is_a_record_without_statements)
                .needs([VEX]),
        )
        .test(trial!(osv_binaries_related_cves_and_empty_affected).needs([OSV]))
        .test(trial!(bind_advisory_suse_su_2015_0011_2_binds_sles_11_sp2).needs([ADVISORIES]))
        .test(trial!(chromium_package_hub_advisory_has_no_statements).needs([ADVISORIES, OSV]))
        .test(
            trial!(malformed_records_are_rejected_by_id_and_the_rest_imports)
                .needs([VEX, ADVISORIES, OSV]),
        )
        .test(
            trial!(oval_tar_just_below_and_exactly_at_the_fix_on_sles_16_and_tumbleweed)
                .needs([OVAL]),
        )
        .test(trial!(oval_not_affected_and_extended_support_products).needs([OVAL, OVAL_2021]))
        .test(trial!(oval_of_another_vendor_and_malformed_definitions).needs([OVAL]))
        .run()
}

fn import(paths: &[PathBuf]) -> Vec<FeedBatch> {
    import::import_paths(paths, &mut |_| {}).expect("import")
}

fn index_of(batches: Vec<FeedBatch>) -> Index {
    common::index_of_batches(batches)
}

fn vex_index() -> Index {
    index_of(import(&[common::data("suse/csaf-vex")]))
}

/// A host's ecosystems from its os-release `ID` and `VERSION_ID`.
fn host(id: &str, version_id: &str) -> Vec<String> {
    let os = OsInfo {
        id: id.into(),
        version_id: version_id.into(),
        ..OsInfo::default()
    };
    host_ecosystems(&os, false, None)
}

/// An installed RPM as the agent reports it (`rpm -q`: `version-release`, or
/// `epoch:version-release`), built from `source`'s source RPM.
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
    f.iter().filter(|f| f.concerns(id)).collect()
}

const SAMBA_CVE: &str = "CVE-2023-5568";
const TW_FIX: &str = "4.19.2+git.322.7e9201cef5-1.1";

fn samba_cve_2023_5568_tumbleweed_just_below_and_exactly_at_the_recommended_build() {
    let idx = vex_index();
    let tw = host("opensuse-tumbleweed", "20231101");
    assert_eq!(tw, ["openSUSE:Tumbleweed"]);
    for below in [
        "4.19.1+git.312.b4b2c0d5c1-1.1",
        "4.19.2+git.322.7e9201cef5-1",
    ] {
        let f = tw_findings(&idx, &tw, below);
        assert_eq!(f.len(), 1, "{below}: {f:#?}");
        let s = &f[0];
        assert_eq!(s.source, "suse-csaf");
        assert_eq!(s.ecosystem, "openSUSE:Tumbleweed");
        assert_eq!(
            (s.package.as_str(), s.matched_by),
            ("samba", MatchedBy::Binary)
        );
        assert_eq!(s.status.fixed_version(), Some(TW_FIX));
        assert!(s.vulnerable && s.fixable, "{s:#?}");
        assert_eq!(s.installed_version, below);
        assert_eq!(
            s.comparison,
            format!("installed {below} < fixed {TW_FIX} (rpm)")
        );
        assert_eq!(s.note.as_deref(), Some("recommended"));
        assert_eq!(s.distro_severity.as_deref(), Some("moderate"));
        assert_eq!(
            s.cvss_vector.as_deref(),
            Some("CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:U/C:N/I:N/A:H")
        );
    }
    // exactly at the recommended build, and above it: no finding at all
    for at in [TW_FIX, "4.19.3+git.330.0a1b2c3d4e-1.1"] {
        let f = tw_findings(&idx, &tw, at);
        assert!(f.is_empty(), "{at}: {f:#?}");
    }
}

fn tw_findings(idx: &Index, tw: &[String], version: &str) -> Vec<Finding> {
    let f = idx.match_host(tw, None, &[rpm("samba", version, "samba")]);
    f.into_iter().filter(|f| f.concerns(SAMBA_CVE)).collect()
}

/// SUSE's CSAF names SUSE Linux Micro 6.0 "SUSE Linux Enterprise Micro 6.0"; an
/// `sl-micro` 6.0 host still meets it.
fn samba_cve_2023_5568_sl_micro_6_is_fixed_under_its_old_product_name() {
    let idx = vex_index();
    let micro = host("sl-micro", "6.0");
    let fix = "4.19.4+git.339.acf1ccaa02-1.22";
    let below = [rpm(
        "samba-client-libs",
        "4.19.4+git.339.acf1ccaa02-1.21",
        "samba",
    )];
    let f = idx.match_host(&micro, None, &below);
    let s = about(&f, SAMBA_CVE);
    assert_eq!(s.len(), 1, "{f:#?}");
    assert_eq!(s[0].ecosystem, "SUSE:Linux Micro 6.0");
    assert_eq!(s[0].status.fixed_version(), Some(fix));
    assert!(s[0].vulnerable && s[0].fixable);
    let at = [rpm("samba-client-libs", fix, "samba")];
    assert!(about(&idx.match_host(&micro, None, &at), SAMBA_CVE).is_empty());
}

fn samba_cve_2023_5568_is_not_affected_on_sles_15() {
    let idx = vex_index();
    // SLES 15 SP5: Basesystem and HA Extension 15 SP5 both say known_not_affected
    let sp5 = host("sles", "15.5");
    let packages = [
        rpm("samba", "4.17.9+git.421.abde31ca5c2-150500.3.11.1", "samba"),
        rpm(
            "samba-client-libs",
            "4.17.9+git.421.abde31ca5c2-150500.3.11.1",
            "samba",
        ),
    ];
    let f = idx.match_host(&sp5, None, &packages);
    let s = about(&f, SAMBA_CVE);
    assert_eq!(s.len(), 2, "{f:#?}");
    for finding in &s {
        assert_eq!(finding.status, Status::NotAffected);
        assert_eq!(finding.ecosystem, "SUSE:Linux Enterprise 15 SP5");
        assert!(!finding.vulnerable && !finding.fixable);
        assert_eq!(finding.note.as_deref(), Some("known_not_affected"));
    }
    // SLES 15 SP3 is in LTSS: its LTSS products' statement decides
    let sp3 = host("sles", "15.3");
    let f = idx.match_host(&sp3, None, &packages[..1]);
    let s = about(&f, SAMBA_CVE);
    assert_eq!(s.len(), 1, "{f:#?}");
    assert_eq!(s[0].ecosystem, "SUSE:Linux Enterprise 15 SP3 LTSS");
    assert_eq!(s[0].status, Status::NotAffected);
    assert!(f.iter().all(|f| !f.vulnerable), "{f:#?}");
}

fn suse_versions_have_no_epoch_and_binaries_fall_back_to_their_source() {
    let idx = vex_index();
    let tw = host("opensuse-tumbleweed", "");
    // the agent writes an explicit zero epoch as rpm prints it: equal to SUSE's
    // epoch-less version
    let at = [rpm("samba-libs", &format!("0:{TW_FIX}"), "samba")];
    assert!(about(&idx.match_host(&tw, None, &at), SAMBA_CVE).is_empty());
    let below = [rpm("samba-libs", "0:4.19.2+git.322.7e9201cef5-1", "samba")];
    let f = idx.match_host(&tw, None, &below);
    assert_eq!(about(&f, SAMBA_CVE)[0].status.fixed_version(), Some(TW_FIX));
    // a binary the document does not name, built from samba: matched through its
    // source RPM's statement
    let unnamed = [rpm(
        "samba-dcerpc",
        "4.19.1+git.312.b4b2c0d5c1-1.1",
        "samba",
    )];
    let f = idx.match_host(&tw, None, &unnamed);
    let s = about(&f, SAMBA_CVE);
    assert_eq!(s.len(), 1, "{f:#?}");
    assert_eq!(
        (s[0].package.as_str(), s[0].matched_by),
        ("samba", MatchedBy::SourceRpm)
    );
    assert_eq!(s[0].binaries, ["samba-dcerpc"]);
    assert!(s[0].vulnerable && s[0].fixable);
    let fixed = [rpm("samba-dcerpc", TW_FIX, "samba")];
    assert!(about(&idx.match_host(&tw, None, &fixed), SAMBA_CVE).is_empty());
}

/// A copy of the samba document where SLES 15 SP5 also recommends a samba build while
/// Basesystem 15 SP5 says samba is not affected: one statement is kept for
/// `SUSE:Linux Enterprise 15 SP5`, the fixed one (a host below it is vulnerable).
fn products_of_one_service_pack_that_disagree_keep_the_protective_statement() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fix = "4.17.12+git.432.c6c9d7ac0a-150500.3.17.1";
    let mut doc = read_json(&common::data("suse/csaf-vex/cve-2023-5568.json"));
    let recommended = doc
        .pointer_mut("/vulnerabilities/0/product_status/recommended")
        .and_then(|r| r.as_array_mut())
        .expect("recommended");
    recommended.push(format!("SUSE Linux Enterprise Server 15 SP5:samba-{fix}").into());
    write_json(&dir.path().join("cve-2023-5568.json"), &doc);
    let batches = import(&[dir.path().to_path_buf()]);
    let record = &batches[0].parsed.records[0];
    let samba = common::entry(record, "SUSE:Linux Enterprise 15 SP5", "samba");
    assert_eq!(samba.status, common::fixed(fix));
    assert_eq!(
        samba.note.as_deref(),
        Some("recommended; other products of SUSE:Linux Enterprise 15 SP5 say: not affected")
    );
    let n = record
        .affected
        .iter()
        .filter(|a| a.ecosystem == "SUSE:Linux Enterprise 15 SP5" && a.package == "samba")
        .count();
    assert_eq!(n, 1, "one statement per (ecosystem, package)");
    // the agreeing products' statements stay one each
    let client = common::entry(record, "SUSE:Linux Enterprise 15 SP5", "samba-client");
    assert_eq!(
        (&client.status, client.note.as_deref()),
        (&Status::NotAffected, Some("known_not_affected"))
    );
    let idx = index_of(batches);
    let sp5 = host("sles", "15.5");
    let below = [rpm(
        "samba",
        "4.17.12+git.432.c6c9d7ac0a-150500.3.14.1",
        "samba",
    )];
    let f = idx.match_host(&sp5, None, &below);
    let s = about(&f, SAMBA_CVE);
    assert_eq!(s.len(), 1, "{f:#?}");
    assert!(s[0].vulnerable && s[0].fixable);
    assert_eq!(s[0].status.fixed_version(), Some(fix));
    let at = [rpm("samba", fix, "samba")];
    assert!(about(&idx.match_host(&sp5, None, &at), SAMBA_CVE).is_empty());
}

fn cve_1999_0003_without_product_status_is_a_record_without_statements() {
    // the directory holds SUSE's .sha256 files too: skipped by name, never an error
    let dir = common::data("suse/csaf-vex");
    assert!(dir.join("cve-1999-0003.json.sha256").exists());
    let batches = import(&[dir]);
    assert_eq!(batches.len(), 1);
    assert_eq!(batches[0].feed, "suse-csaf");
    assert!(batches[0].parsed.rejected.is_empty());
    let ids: Vec<&str> = batches[0]
        .parsed
        .records
        .iter()
        .map(|r| r.id.as_str())
        .collect();
    assert_eq!(ids, ["CVE-1999-0003", "CVE-2023-5568"]);
    let old = common::find(&batches[0].parsed.records, "CVE-1999-0003");
    assert!(old.affected.is_empty());
    assert_eq!(old.severity.as_deref(), Some("critical"));
    assert_eq!(
        old.summary,
        "Execute commands as root via buffer overflow in Tooltalk database server (rpc.ttdbserverd)."
    );
    let samba = common::find(&batches[0].parsed.records, SAMBA_CVE);
    assert_eq!(samba.affected.len(), 687);
    assert_eq!(samba.modified.as_deref(), Some("2024-07-26T03:43:57Z"));
    assert_eq!(samba.published.as_deref(), Some("2023-10-20T01:08:03Z"));
}

fn osv_binaries_related_cves_and_empty_affected() {
    let batches = import(&[common::data("suse/osv")]);
    assert_eq!(batches.len(), 1);
    assert_eq!(batches[0].feed, "osv");
    let records = &batches[0].parsed.records;
    assert!(batches[0].parsed.rejected.is_empty());
    // SUSE-SU-403: libqt4 (source) lists 16 binaries; every product of SLE 12 and of SLE
    // 12 SP1 maps to one ecosystem each, and their statements are kept once
    let qt = common::find(records, "SUSE-SU-403");
    assert!(
        qt.aliases.iter().any(|a| a == "CVE-2014-3566"),
        "related → aliases"
    );
    assert_eq!(qt.aliases.len(), 54);
    assert_eq!(qt.affected.len(), 46);
    for eco in ["SUSE:Linux Enterprise 12", "SUSE:Linux Enterprise 12 SP1"] {
        for package in ["libqt4", "libqt4-sql-plugins", "libqt4-x11"] {
            let e = common::entry(qt, eco, package);
            assert_eq!(e.status, common::fixed("4.8.6-7.1"), "{eco} {package}");
        }
        // the documentation source was rebuilt once more
        let e = common::entry(qt, eco, "libqt4-devel-doc");
        assert_eq!(e.status, common::fixed("4.8.6-7.3"));
        let n = qt
            .affected
            .iter()
            .filter(|a| a.ecosystem == eco && a.package == "libqt4");
        assert_eq!(n.count(), 1, "one statement per (ecosystem, package)");
    }
    // SUSE-SU-2015:0011-2: `affected: []`, a record without statements, its CVEs kept
    let bind = common::find(records, "SUSE-SU-2015:0011-2");
    assert!(bind.affected.is_empty());
    assert_eq!(bind.aliases.len(), 7);
    assert!(bind.aliases.iter().any(|a| a == "CVE-2014-0591"));

    // the matcher: a SLES 12 SP1 host with a binary just below its fix, matched by the
    // binary's own name; exactly at it, nothing
    let idx = index_of(batches);
    let sp1 = host("sles", "12.1");
    let f = idx.match_host(&sp1, None, &[rpm("libqt4-x11", "4.8.6-6.1", "libqt4")]);
    let q = about(&f, "SUSE-SU-403");
    assert_eq!(q.len(), 1, "{f:#?}");
    assert_eq!(q[0].ecosystem, "SUSE:Linux Enterprise 12 SP1");
    assert_eq!(
        (q[0].package.as_str(), q[0].matched_by),
        ("libqt4-x11", MatchedBy::Binary)
    );
    assert!(q[0].vulnerable && q[0].fixable);
    assert!(q[0].concerns("CVE-2014-3566"));
    let at = [rpm("libqt4-x11", "4.8.6-7.1", "libqt4")];
    assert!(about(&idx.match_host(&sp1, None, &at), "SUSE-SU-403").is_empty());
    // an unlisted binary of a listed source: the source's statement
    let other = [rpm("libqt4-demo", "4.8.6-6.1", "libqt4")];
    let f = idx.match_host(&sp1, None, &other);
    let q = about(&f, "SUSE-SU-403");
    assert_eq!(q.len(), 1, "{f:#?}");
    assert_eq!(
        (q[0].package.as_str(), q[0].matched_by),
        ("libqt4", MatchedBy::SourceRpm)
    );
}

fn bind_advisory_suse_su_2015_0011_2_binds_sles_11_sp2() {
    let batches = import(&[common::data("suse/csaf")]);
    assert_eq!(batches.len(), 1);
    let records = &batches[0].parsed.records;
    let bind = common::find(records, "SUSE-SU-2015:0011-2");
    assert_eq!(bind.summary, "Security update for bind");
    assert_eq!(bind.severity.as_deref(), Some("moderate"));
    assert_eq!(bind.aliases.len(), 7);
    assert_eq!(bind.aliases[0], "CVE-2012-1667");
    // SLES 11 SP2, its LTSS and SAP products: two ecosystems, 8 binaries each, the
    // architecture suffix (.i586, .x86_64, …) removed
    assert_eq!(bind.affected.len(), 16);
    for eco in [
        "SUSE:Linux Enterprise 11 SP2",
        "SUSE:Linux Enterprise 11 SP2 LTSS",
    ] {
        let e = common::entry(bind, eco, "bind-utils");
        assert_eq!(e.status, common::fixed("9.9.4P2-0.6.1"));
        let e = common::entry(bind, eco, "bind-devel");
        assert_eq!(e.status, common::fixed("9.9.6P1-0.5.5"));
    }
    let idx = index_of(batches);
    let sp2 = host("sles", "11.2");
    let below = [rpm("bind-utils", "9.9.4P2-0.5.1", "bind")];
    let f = idx.match_host(&sp2, None, &below);
    let b = about(&f, "CVE-2014-0591");
    assert_eq!(b.len(), 1, "{f:#?}");
    assert_eq!(b[0].advisory, "SUSE-SU-2015:0011-2");
    assert_eq!(b[0].ecosystem, "SUSE:Linux Enterprise 11 SP2 LTSS");
    assert!(b[0].vulnerable && b[0].fixable);
    let at = [rpm("bind-utils", "9.9.4P2-0.6.1", "bind")];
    assert!(about(&idx.match_host(&sp2, None, &at), "CVE-2014-0591").is_empty());
}

/// SUSE Package Hub is not an operating system product: `suse_from_product` maps it to
/// no ecosystem, so the chromium advisory (CSAF and OSV) keeps its record and CVE but
/// states nothing for any host.
fn chromium_package_hub_advisory_has_no_statements() {
    let batches = import(&[common::data("suse/csaf"), common::data("suse/osv")]);
    for b in &batches {
        assert!(b.parsed.rejected.is_empty(), "{b:?}");
        let r = common::find(&b.parsed.records, "openSUSE-SU-2016:1623-1");
        assert!(r.affected.is_empty(), "{}: {:?}", b.feed, r.affected);
        assert_eq!(r.aliases, ["CVE-2016-1704"]);
    }
    let feeds: Vec<&str> = batches.iter().map(|b| b.feed).collect();
    assert_eq!(feeds, ["osv", "suse-csaf"]);
    let csaf = common::find(&batches[1].parsed.records, "openSUSE-SU-2016:1623-1");
    assert_eq!(csaf.severity.as_deref(), Some("important"));
    let idx = index_of(batches);
    let f = idx.match_host(
        &host("sles", "12"),
        None,
        &[rpm("chromium", "50.0.2661.102-1.1", "chromium")],
    );
    assert!(f.is_empty(), "{f:#?}");
}

fn malformed_records_are_rejected_by_id_and_the_rest_imports() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    // a VEX document whose Tumbleweed samba build has no version
    let mut vex = read_json(&common::data("suse/csaf-vex/cve-2023-5568.json"));
    let first = vex
        .pointer_mut("/vulnerabilities/0/product_status/recommended/7")
        .expect("recommended[7]");
    assert_eq!(
        *first,
        format!("openSUSE Tumbleweed:samba-{TW_FIX}").as_str()
    );
    *first = "openSUSE Tumbleweed:samba".into();
    write_json(&d.join("cve-2023-5568.json"), &vex);
    std::fs::copy(
        common::data("suse/csaf-vex/cve-1999-0003.json"),
        d.join("cve-1999-0003.json"),
    )
    .expect("copy");
    // an advisory whose vulnerabilities are not a list
    let mut adv = read_json(&common::data("suse/csaf/suse-su-2015_0011-2.json"));
    adv["vulnerabilities"] = "none".into();
    write_json(&d.join("suse-su-2015_0011-2.json"), &adv);
    std::fs::copy(
        common::data("suse/csaf/opensuse-su-2016_1623-1.json"),
        d.join("opensuse-su-2016_1623-1.json"),
    )
    .expect("copy");
    // an OSV record whose binaries have a number for a version
    let mut osv = read_json(&common::data("suse/osv/SUSE-SU-403.json"));
    osv["affected"][0]["ecosystem_specific"]["binaries"][0]["libqt4"] = 7.into();
    write_json(&d.join("SUSE-SU-403.json"), &osv);
    std::fs::copy(
        common::data("suse/osv/SUSE-SU-2015:0011-2.json"),
        d.join("SUSE-SU-2015:0011-2.json"),
    )
    .expect("copy");

    let batches = import(&[d.to_path_buf()]);
    let feed = |name: &str| batches.iter().find(|b| b.feed == name).expect(name);
    let csaf = feed("suse-csaf");
    let rejected: Vec<(&str, &str)> = csaf
        .parsed
        .rejected
        .iter()
        .map(|r| (r.id.as_str(), r.reason.as_str()))
        .collect();
    assert_eq!(rejected.len(), 2, "{rejected:?}");
    assert_eq!(rejected[0].0, SAMBA_CVE);
    assert_eq!(
        rejected[0].1,
        "recommended product 'openSUSE Tumbleweed:samba' is not \
         <product>:<name>-<version>-<release>"
    );
    assert_eq!(rejected[1].0, "SUSE-SU-2015:0011-2");
    assert!(
        rejected[1]
            .1
            .starts_with("not a valid SUSE CSAF document: "),
        "{rejected:?}"
    );
    let ids: Vec<&str> = csaf.parsed.records.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["CVE-1999-0003", "openSUSE-SU-2016:1623-1"]);
    let osv = feed("osv");
    assert_eq!(osv.parsed.rejected.len(), 1);
    assert_eq!(osv.parsed.rejected[0].id, "SUSE-SU-403");
    assert_eq!(
        osv.parsed.rejected[0].reason,
        "affected[0]: binary 'libqt4' in ecosystem_specific.binaries has no version string"
    );
    let ids: Vec<&str> = osv.parsed.records.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["SUSE-SU-2015:0011-2"]);
}

fn read_json(path: &Path) -> serde_json::Value {
    let bytes = std::fs::read(path).expect("read");
    serde_json::from_slice(&bytes).expect("JSON")
}

fn write_json(path: &Path, v: &serde_json::Value) {
    std::fs::write(path, serde_json::to_vec(v).expect("serialize")).expect("write");
}

fn oval_index() -> (Vec<FeedBatch>, Index) {
    let batches = import(&[
        common::data("suse/oval"),
        common::data("suse/oval-vunnel/suse_truncated.xml"),
    ]);
    let idx = index_of(batches.clone());
    (batches, idx)
}

/// `tar` on SLE 16.0 (the `-affected` file) and on Tumbleweed: one record per CVE,
/// merged over SUSE's per-product files.
fn oval_tar_just_below_and_exactly_at_the_fix_on_sles_16_and_tumbleweed() {
    let (batches, idx) = oval_index();
    assert_eq!(batches.len(), 1);
    assert_eq!(batches[0].feed, "suse-oval");
    let records = &batches[0].parsed.records;
    assert_eq!(records.len(), 11);
    let tar = common::find(records, "CVE-2001-1267");
    assert_eq!(
        tar.affected.len(),
        11,
        "SLE 16.0 and Tumbleweed statements, merged"
    );
    assert_eq!(
        common::entry(tar, "SUSE:Linux Enterprise 16.0", "tar").status,
        common::fixed("1.35-160000.2.2"),
        "the test's evr, its zero epoch removed"
    );
    assert_eq!(
        common::entry(tar, "openSUSE:Tumbleweed", "tar-tests").status,
        common::fixed("1.34-2.2")
    );
    assert_eq!(tar.modified.as_deref(), Some("2026-01-04"));
    // the GA-media patch definitions: by OVAL id, with their CVEs
    let ds = common::find(records, "oval:org.opensuse.security:def:88827");
    assert_eq!(ds.aliases.len(), 32);
    assert_eq!(
        common::entry(ds, "SUSE:Linux Enterprise 16.0", "389-ds").status,
        common::fixed("3.0.6~git86.dce421a0d-160000.2.2")
    );

    let sles16 = host("sles", "16.0");
    let below = [rpm("tar", "1.35-160000.1.1", "tar")];
    let f = idx.match_host(&sles16, None, &below);
    let ids: Vec<&str> = f
        .iter()
        .filter(|f| f.vulnerable)
        .map(|f| f.advisory.as_str())
        .collect();
    assert_eq!(ids, ["CVE-2001-1267", "CVE-2002-0399"], "{f:#?}");
    assert!(f.iter().all(|f| f.fixable && f.source == "suse-oval"));
    let at = [rpm("tar", "0:1.35-160000.2.2", "tar")];
    assert!(idx.match_host(&sles16, None, &at).is_empty());

    let tw = host("opensuse-tumbleweed", "20240101");
    let below = [rpm("tar-rmt", "1.34-2.1", "tar")];
    let f = idx.match_host(&tw, None, &below);
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(
        (f[0].advisory.as_str(), f[0].status.fixed_version()),
        ("CVE-2001-1267", Some("1.34-2.2"))
    );
    assert!(f[0].vulnerable && f[0].fixable);
    assert!(
        idx.match_host(&tw, None, &[rpm("tar-rmt", "1.34-2.2", "tar")])
            .is_empty()
    );
    // Leap 15.2's fastjar
    let leap = host("opensuse-leap", "15.2");
    let f = idx.match_host(
        &leap,
        None,
        &[rpm("fastjar", "0.98-lp152.4.2.1", "fastjar")],
    );
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0].status.fixed_version(), Some("0.98-lp152.4.3.1"));
}

/// "<package> is not affected" criteria, and SLE 15 SP1-BCL / SP2-ESPOS products read as
/// the service pack's extended support (LTSS), never as SLE 15 GA.
fn oval_not_affected_and_extended_support_products() {
    let (batches, idx) = oval_index();
    let records = &batches[0].parsed.records;
    let rpcbind = common::find(records, "CVE-1999-0195");
    let e = common::entry(rpcbind, "SUSE:Linux Enterprise 15 SP4", "rpcbind");
    assert_eq!(
        (&e.status, e.note.as_deref()),
        (&Status::NotAffected, Some("not affected"))
    );
    let sp4 = host("sles", "15.4");
    let f = idx.match_host(
        &sp4,
        None,
        &[rpm("rpcbind", "0.2.3-150000.3.5.1", "rpcbind")],
    );
    let r = about(&f, "CVE-1999-0195");
    assert_eq!(r.len(), 1, "{f:#?}");
    assert_eq!(r[0].status, Status::NotAffected);
    assert!(!r[0].vulnerable);
    // the 2021 file: SLE 15 SP1-BCL's kernel fix is stated for 15 SP1 LTSS
    let bpf = common::find(records, "CVE-2021-29154");
    assert_eq!(
        common::entry(bpf, "SUSE:Linux Enterprise 15 SP1 LTSS", "kernel-default").status,
        common::fixed("4.12.14-197.89.2")
    );
    assert_eq!(
        common::entry(bpf, "SUSE:Linux Enterprise 15", "kernel-default").status,
        common::fixed("4.12.14-150.72.1")
    );
    let sp1 = host("sles", "15.1");
    let running = "4.12.14-197.86.1";
    let kernel = [rpm("kernel-default", running, "kernel-default")];
    let f = idx.match_host(&sp1, Some(&format!("{running}-default")), &kernel);
    let k = about(&f, "CVE-2021-29154");
    assert_eq!(k.len(), 1, "{f:#?}");
    assert_eq!(k[0].ecosystem, "SUSE:Linux Enterprise 15 SP1 LTSS");
    assert!(k[0].vulnerable && k[0].fixable);
}

fn oval_of_another_vendor_and_malformed_definitions() {
    let dir = tempfile::tempdir().expect("tempdir");
    // OVAL that is not SUSE's is not read as SUSE's
    let other = dir.path().join("other.xml");
    std::fs::write(
        &other,
        "<?xml version=\"1.0\"?><oval_definitions><generator><product_name>Other \
         OVAL</product_name></generator><definitions/></oval_definitions>",
    )
    .expect("write");
    let err = import::import_paths(std::slice::from_ref(&other), &mut |_| {}).unwrap_err();
    assert!(
        matches!(err, import::ImportError::UnknownFormat { .. }),
        "{err}"
    );
    // Tumbleweed's file with a broken fixed version, beside SLE 16's: CVE-2001-1267 is
    // rejected from the broken file and kept from the other
    let tw = gunzip(&common::data("suse/oval/opensuse.tumbleweed.xml.gz"));
    assert_eq!(tw.matches(">0:1.34-2.2</evr>").count(), 1);
    let broken = tw.replace(">0:1.34-2.2</evr>", ">0:1.34-</evr>");
    let d = dir.path().join("suse");
    std::fs::create_dir(&d).expect("mkdir");
    std::fs::write(d.join("opensuse.tumbleweed.xml"), broken).expect("write");
    std::fs::copy(
        common::data("suse/oval/suse.linux.enterprise.16-affected.xml.gz"),
        d.join("suse.linux.enterprise.16-affected.xml.gz"),
    )
    .expect("copy");
    let batches = import(&[d]);
    assert_eq!(batches.len(), 1);
    let p = &batches[0].parsed;
    assert_eq!(p.rejected.len(), 1, "{:?}", p.rejected);
    assert_eq!(p.rejected[0].id, "CVE-2001-1267");
    assert!(
        p.rejected[0]
            .reason
            .starts_with("fixed version '1.34-' of tar: "),
        "{}",
        p.rejected[0].reason
    );
    let tar = common::find(&p.records, "CVE-2001-1267");
    assert!(
        tar.affected
            .iter()
            .all(|a| a.ecosystem == "SUSE:Linux Enterprise 16.0")
    );
    assert_eq!(tar.affected.len(), 5);
}

fn gunzip(path: &Path) -> String {
    use std::io::Read;
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).expect("open"))
        .read_to_string(&mut text)
        .expect("gunzip");
    text
}
