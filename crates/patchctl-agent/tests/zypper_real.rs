//! The agent's operations against the real zypper (and rpm) on a private root: small
//! RPMs built here with rpmbuild, a `file://` repository made with createrepo_c whose
//! updateinfo (modifyrepo_c) holds a security patch for pc-sec and a recommended one
//! for pc-upd, and a system root `R` (`rpm --root R`, `zypper --root R`) with the 1.0
//! versions installed. Nothing of the machine's own package state is used or changed.
//!
//! What it proves, through `Operations::handle` with the zypper backend:
//! - check_updates runs refresh, list-updates, list-patches, info -t patch and a full
//!   update dry run, exactly as planned, and marks pc-sec (and only pc-sec) as a
//!   security update with its advisory id and severity; pc-new's update would remove
//!   pc-victim, and the report says so;
//! - get_package_info reports the installed version and zypper's candidate with its
//!   repository and security flag;
//! - install_updates refuses (after a dry run only, nothing installed) an update that
//!   would remove a package, one that would install an unapproved package, a version
//!   that does not exist and a downgrade; then really installs the approved pc-sec
//!   1.1-1 into R, leaves pc-upd alone, and reports before/after;
//! - a held zypp lock is waited for (boundedly) and reported as "locked by another
//!   process"; `needs-rebooting` is read.

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{envelope, install, target, tool};
use patchctl_agent::exec::{ExecRequest, Executor, ProcessExecutor};
use patchctl_agent::ops::Operations;
use patchctl_agent::pkgmgr::Backend;
use patchctl_agent::pkgmgr::zypper::{self, ZypperBackend, ZypperOptions};
use patchctl_proto::command::{Advisory, ResultOutput, ResultStatus};
use patchctl_proto::validate::PackageName;
use patchctl_testkit::{Harness, Need, trial};

fn main() -> std::process::ExitCode {
    // Root: zypper takes the zypp lock and installs.
    Harness::new()
        .test(trial!(async check_updates_reads_security_from_patches).needs(NEEDS))
        .test(trial!(async get_package_info_reports_the_candidate_and_its_security_patch).needs(NEEDS))
        .test(trial!(async install_updates_simulates_first_refuses_and_installs_only_what_was_approved).needs(NEEDS))
        .test(trial!(async a_held_lock_is_waited_for_and_reported_and_reboots_are_read).needs(NEEDS))
        .test(trial!(async a_plan_cut_short_by_the_executor_is_refused).needs(NEEDS))
        .run()
}

const NEEDS: [Need; 6] = [
    Need::Root,
    Need::Program("/usr/bin/zypper"),
    Need::Program("/usr/bin/rpm"),
    Need::Program("/usr/bin/rpmbuild"),
    Need::Program("/usr/bin/createrepo_c"),
    Need::Program("/usr/bin/modifyrepo_c"),
];

const UPDATEINFO: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<updates>
  <update from="tests@patchctl.invalid" status="stable" type="security" version="1">
    <id>PCTEST-SU-2024:0001</id>
    <title>Security update for pc-sec</title>
    <severity>important</severity>
    <release>PatchCTL Test</release>
    <issued date="1700000000"/>
    <references><reference href="https://example.invalid/CVE-2024-0001" id="CVE-2024-0001" title="CVE-2024-0001" type="cve"/></references>
    <description>Fixes CVE-2024-0001 in pc-sec.</description>
    <pkglist><collection>
      <package name="pc-sec" epoch="0" version="1.1" release="1" arch="noarch" src="pc-sec-1.1-1.src.rpm"><filename>pc-sec-1.1-1.noarch.rpm</filename></package>
    </collection></pkglist>
  </update>
  <update from="tests@patchctl.invalid" status="stable" type="recommended" version="1">
    <id>PCTEST-RU-2024:0002</id>
    <title>Recommended update for pc-upd</title>
    <severity>moderate</severity>
    <release>PatchCTL Test</release>
    <issued date="1700000000"/>
    <description>Bug fixes in pc-upd.</description>
    <pkglist><collection>
      <package name="pc-upd" epoch="0" version="1.1" release="1.security" arch="noarch" src="pc-upd-1.1-1.security.src.rpm"><filename>pc-upd-1.1-1.security.noarch.rpm</filename></package>
    </collection></pkglist>
  </update>
</updates>
"#;

/// Packages installed at 1.0-1 in the private root.
const INSTALLED: [&str; 7] = [
    "pc-sec",
    "pc-upd",
    "pc-new",
    "pc-victim",
    "pc-dep",
    "pc-down",
    "pc-same",
];

/// A private system root with the 1.0 packages installed and the test repository
/// added (not yet refreshed).
struct Setup {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    opts: ZypperOptions,
}

fn setup() -> Setup {
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    let root = tmp.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    let mut packages: Vec<(&str, &str, &str)> =
        INSTALLED.iter().map(|name| (*name, "1.0-1", "")).collect();
    // The repository. The normal update's release says "security": only the patch's
    // category may make an update a security one.
    packages.extend([
        ("pc-sec", "1.1-1", ""),
        ("pc-upd", "1.1-1.security", ""),
        ("pc-new", "1.1-1", "Obsoletes: pc-victim < 2"),
        ("pc-dep", "1.1-1", "Requires: pc-newdep"),
        ("pc-newdep", "1.0-2", ""),
        ("pc-down", "0.9-1", ""),
    ]);
    let mut installed = common::build_rpms(&tmp.path().join("build"), &packages);
    let mut offered = installed.split_off(INSTALLED.len());
    // pc-same 1.0-1 is also in the repository (no update for it).
    offered.extend(
        installed
            .iter()
            .filter(|p| p.ends_with("pc-same-1.0-1.noarch.rpm"))
            .cloned(),
    );
    common::rpm_repository(&repo, &offered, UPDATEINFO);
    common::rpm_root(&root, &installed);
    tool(
        "/usr/bin/zypper",
        &[
            "--non-interactive",
            "--root",
            &root.display().to_string(),
            "addrepo",
            "--no-gpgcheck",
            &format!("file://{}", repo.display()),
            "pctest",
        ],
    );
    eprintln!("setup took {:?}", started.elapsed());
    Setup {
        opts: ZypperOptions {
            root: Some(root.clone()),
            lock_timeout_secs: 3,
        },
        root,
        _tmp: tmp,
    }
}

fn ops(exec: Arc<ProcessExecutor>, opts: &ZypperOptions) -> Operations {
    common::ops(exec, ZypperBackend::new(opts.clone()))
}

async fn refresh(opts: &ZypperOptions) {
    ZypperBackend::new(opts.clone())
        .refresh(&ProcessExecutor::new())
        .await
        .expect("zypper refresh");
}

/// The installed version of `name` in the root, straight from rpm.
async fn rpm_version(opts: &ZypperOptions, name: &str) -> Option<String> {
    ZypperBackend::new(opts.clone())
        .installed(&ProcessExecutor::new(), &PackageName::parse(name).unwrap())
        .await
        .unwrap()
        .first()
        .map(|p| p.version.clone())
}

async fn check_updates_reads_security_from_patches() {
    let s = setup();
    let exec = Arc::new(ProcessExecutor::new());
    let ops = ops(exec.clone(), &s.opts);
    let started = Instant::now();
    let res = ops
        .handle(&envelope("check_updates", serde_json::json!({})))
        .await;
    eprintln!(
        "check_updates took {:?}: {}",
        started.elapsed(),
        res.summary
    );
    assert_eq!(res.status, ResultStatus::Succeeded, "{res:?}");
    let Some(ResultOutput::Updates(report)) = &res.output else {
        panic!("no updates report: {res:?}");
    };
    assert!(report.refreshed);
    assert_eq!(report.package_manager, "rpm");
    let get = |n: &str| report.updates.iter().find(|u| u.name == n).cloned();
    let sec = get("pc-sec").expect("pc-sec update");
    assert_eq!(sec.current_version.as_deref(), Some("1.0-1"));
    assert_eq!(sec.candidate_version, "1.1-1");
    assert_eq!(sec.arch, "noarch");
    assert_eq!(sec.origins, ["pctest"]);
    assert!(sec.security, "{sec:?}");
    assert_eq!(
        sec.advisories,
        [Advisory {
            id: "PCTEST-SU-2024:0001".into(),
            kind: Some("security".into()),
            severity: Some("important".into()),
        }]
    );
    let upd = get("pc-upd").expect("pc-upd update");
    assert_eq!(upd.candidate_version, "1.1-1.security");
    assert!(
        !upd.security,
        "a version string must not make an update a security one: {upd:?}"
    );
    assert_eq!(upd.advisories[0].id, "PCTEST-RU-2024:0002");
    assert_eq!(upd.advisories[0].kind.as_deref(), Some("recommended"));
    let new = get("pc-new").expect("pc-new update");
    assert!(!new.security && new.advisories.is_empty());
    assert!(get("pc-dep").is_some());
    assert!(
        get("pc-same").is_none(),
        "no update for an unchanged version"
    );
    assert!(get("pc-down").is_none(), "a lower version is no update");
    assert_eq!(report.updates.len(), 4, "{:?}", report.updates);
    // A full update takes pc-new to 1.1 by removing the package it obsoletes.
    assert_eq!(report.removals, ["pc-victim"]);
    assert!(
        res.summary.contains("4 updates available (1 security)"),
        "{}",
        res.summary
    );
    // Exactly the planned argument vectors ran, and nothing else.
    let o = &s.opts;
    assert_eq!(
        exec.history(),
        vec![
            zypper::refresh_argv(o),
            zypper::list_updates_argv(o),
            zypper::list_patches_argv(o),
            zypper::patch_info_argv(
                o,
                &[
                    "PCTEST-SU-2024:0001".to_string(),
                    "PCTEST-RU-2024:0002".to_string()
                ]
            ),
            zypper::full_update_simulate_argv(o),
        ]
    );
}

async fn get_package_info_reports_the_candidate_and_its_security_patch() {
    let s = setup();
    refresh(&s.opts).await;
    let exec = Arc::new(ProcessExecutor::new());
    let ops = ops(exec.clone(), &s.opts);
    let info = common::package_info;
    let res = ops.handle(&info("pc-sec")).await;
    assert_eq!(res.status, ResultStatus::Succeeded, "{res:?}");
    let Some(ResultOutput::PackageInfo(p)) = &res.output else {
        panic!("{res:?}");
    };
    assert_eq!(p.package_manager, "rpm");
    assert_eq!(p.installed.len(), 1);
    assert_eq!(p.installed[0].version, "1.0-1");
    assert_eq!(p.installed[0].arch, "noarch");
    assert_eq!(p.candidate_version.as_deref(), Some("1.1-1"));
    assert_eq!(p.candidate_origins, ["pctest"]);
    assert!(p.security_update);
    assert!(
        res.summary.contains("candidate 1.1-1 (security update)"),
        "{}",
        res.summary
    );

    let res = ops.handle(&info("pc-upd")).await;
    let Some(ResultOutput::PackageInfo(p)) = &res.output else {
        panic!("{res:?}");
    };
    assert_eq!(p.candidate_version.as_deref(), Some("1.1-1.security"));
    assert!(!p.security_update, "the version string must not decide");

    let res = ops.handle(&info("pc-same")).await;
    let Some(ResultOutput::PackageInfo(p)) = &res.output else {
        panic!("{res:?}");
    };
    assert_eq!(p.candidate_version.as_deref(), Some("1.0-1"));
    assert!(!p.security_update);
    assert_eq!(res.summary, "pc-same 1.0-1 (noarch) is installed");

    let res = ops.handle(&info("pc-nosuch")).await;
    assert_eq!(res.status, ResultStatus::Succeeded, "{res:?}");
    let Some(ResultOutput::PackageInfo(p)) = &res.output else {
        panic!("{res:?}");
    };
    assert!(p.installed.is_empty() && p.candidate_version.is_none());
    assert_eq!(res.summary, "pc-nosuch is not installed");
    // rpm -q, zypper info; the patch queries only for the out-of-date pc-sec.
    let programs: Vec<String> = exec
        .history()
        .iter()
        .map(|a| {
            let i = a
                .iter()
                .position(|w| w == "info" || w == "list-patches" || w == "-q");
            format!("{} {}", a[0], i.map(|i| a[i].as_str()).unwrap_or("?"))
        })
        .collect();
    assert_eq!(
        programs,
        [
            "/usr/bin/rpm -q",
            "/usr/bin/zypper info",
            "/usr/bin/zypper list-patches",
            "/usr/bin/zypper info",
            "/usr/bin/rpm -q",
            "/usr/bin/zypper info",
            "/usr/bin/zypper list-patches",
            "/usr/bin/zypper info",
            "/usr/bin/rpm -q",
            "/usr/bin/zypper info",
            "/usr/bin/rpm -q",
            "/usr/bin/zypper info",
        ]
    );
}

async fn install_updates_simulates_first_refuses_and_installs_only_what_was_approved() {
    let s = setup();
    refresh(&s.opts).await;
    let exec = Arc::new(ProcessExecutor::new());
    let ops = ops(exec.clone(), &s.opts);
    for (name, version, want) in [
        ("pc-new", "1.1-1", "would remove pc-victim"),
        (
            "pc-dep",
            "1.1-1",
            "would install pc-newdep 1.0-2, which was not approved",
        ),
        ("pc-sec", "9.9-1", "No provider of 'pc-sec=9.9-1' found"),
        (
            "pc-down",
            "0.9-1",
            "zypper would not update pc-down to 0.9-1: The selected package 'pc-down-0.9-1.noarch' from repository 'pctest' has lower version than the installed one",
        ),
        (
            "pc-newdep",
            "1.0-2",
            "zypper would not update pc-newdep to 1.0-2",
        ),
    ] {
        let res = ops.handle(&install(name, version)).await;
        assert_eq!(res.status, ResultStatus::Failed, "{name}: {res:?}");
        assert!(res.summary.contains(want), "{name}: {}", res.summary);
        assert!(res.summary.contains("nothing installed"), "{}", res.summary);
        let Some(ResultOutput::Install(r)) = &res.output else {
            panic!("no install report: {res:?}");
        };
        assert!(!r.refused.is_empty());
        assert!(!r.packages[0].ok);
        assert_eq!(r.packages[0].before, r.packages[0].after);
    }
    assert_eq!(
        rpm_version(&s.opts, "pc-new").await.as_deref(),
        Some("1.0-1")
    );
    assert_eq!(
        rpm_version(&s.opts, "pc-victim").await.as_deref(),
        Some("1.0-1")
    );
    assert_eq!(rpm_version(&s.opts, "pc-newdep").await, None);
    // Only dry runs of zypper ran: no real `zypper update` was ever started.
    let zypper_runs: Vec<Vec<String>> = exec
        .history()
        .into_iter()
        .filter(|a| a[0] == zypper::ZYPPER)
        .collect();
    assert!(!zypper_runs.is_empty());
    for argv in &zypper_runs {
        // The report of a refusal still says whether a reboot is needed.
        if *argv == zypper::needs_rebooting_argv(&s.opts) {
            continue;
        }
        assert!(argv.contains(&"update".to_string()), "{argv:?}");
        assert!(argv.contains(&"--dry-run".to_string()), "{argv:?}");
    }

    // The approved security update: simulated, then installed for real in the root.
    let before = exec.history().len();
    let res = ops.handle(&install("pc-sec", "1.1-1")).await;
    assert_eq!(res.status, ResultStatus::Succeeded, "{res:?}");
    assert_eq!(res.summary, "1 of 1 approved updates installed", "{res:?}");
    let Some(ResultOutput::Install(r)) = &res.output else {
        panic!("{res:?}");
    };
    assert!(r.refused.is_empty());
    assert_eq!(r.packages[0].before.as_deref(), Some("1.0-1"));
    assert_eq!(r.packages[0].after.as_deref(), Some("1.1-1"));
    assert!(r.packages[0].ok);
    assert!(!r.reboot_required);
    assert!(
        r.output_tail.contains("Installing: pc-sec-1.1-1.noarch"),
        "{}",
        r.output_tail
    );
    assert_eq!(
        rpm_version(&s.opts, "pc-sec").await.as_deref(),
        Some("1.1-1")
    );
    assert_eq!(
        rpm_version(&s.opts, "pc-upd").await.as_deref(),
        Some("1.0-1"),
        "approving pc-sec must not update pc-upd"
    );
    let t = [target("pc-sec", "1.1-1")];
    let o = &s.opts;
    let ran = exec.history()[before..].to_vec();
    let sim = ran.iter().position(|a| *a == zypper::simulate_argv(o, &t));
    let inst = ran.iter().position(|a| *a == zypper::install_argv(o, &t));
    assert!(
        matches!((sim, inst), (Some(a), Some(b)) if a < b),
        "the install runs after the dry run of the same targets: {ran:?}"
    );
    assert_eq!(
        ran.iter()
            .filter(|a| a.contains(&"update".to_string()))
            .count(),
        2,
        "{ran:?}"
    );
    assert_eq!(ran.last(), Some(&zypper::needs_rebooting_argv(o)));

    // Already installed at that version: nothing to do, and nothing refused.
    let res = ops.handle(&install("pc-sec", "1.1-1")).await;
    assert_eq!(res.status, ResultStatus::Succeeded, "{res:?}");
}

async fn a_held_lock_is_waited_for_and_reported_and_reboots_are_read() {
    let s = setup();
    refresh(&s.opts).await;
    let backend = ZypperBackend::new(s.opts.clone());
    let exec = Arc::new(ProcessExecutor::new());
    let ops = ops(exec.clone(), &s.opts);
    // A live process (this test) holds the root's zypp lock.
    let pid_file = s.root.join("run/zypp.pid");
    std::fs::create_dir_all(pid_file.parent().unwrap()).unwrap();
    std::fs::write(&pid_file, format!("{}\n", std::process::id())).unwrap();
    let started = Instant::now();
    let res = ops.handle(&install("pc-sec", "1.1-1")).await;
    let waited = started.elapsed();
    assert_eq!(res.status, ResultStatus::Failed, "{res:?}");
    assert!(
        res.summary.contains("zypper is locked by another process (System management is locked by the application with pid"),
        "{}",
        res.summary
    );
    assert!(res.summary.contains("nothing installed"), "{}", res.summary);
    assert!(waited >= Duration::from_secs(3), "waited {waited:?}");
    // The install step itself reports the lock too.
    let run = backend
        .install(exec.as_ref(), &[target("pc-sec", "1.1-1")])
        .await;
    assert!(run.locked, "{run:?}");
    assert_eq!(run.code, Some(zypper::EXIT_LOCKED));
    assert!(
        run.output.contains("locked by another process"),
        "{}",
        run.output
    );
    let res = ops
        .handle(&envelope("check_updates", serde_json::json!({})))
        .await;
    assert_eq!(res.status, ResultStatus::Failed);
    assert!(
        res.summary
            .starts_with("zypper is locked by another process"),
        "{}",
        res.summary
    );
    std::fs::remove_file(&pid_file).unwrap();
    assert_eq!(
        rpm_version(&s.opts, "pc-sec").await.as_deref(),
        Some("1.0-1")
    );

    // needs-rebooting reads libzypp's flag in the root.
    assert!(!backend.reboot_required(exec.as_ref()).await);
    std::fs::write(s.root.join("run/reboot-needed"), "").unwrap();
    assert!(backend.reboot_required(exec.as_ref()).await);
    let last = exec.history().last().cloned().unwrap();
    assert_eq!(last, zypper::needs_rebooting_argv(&s.opts));
    // And the executor's env carries the bounded lock wait.
    let req: ExecRequest = zypper::request(
        &s.opts,
        &zypper::needs_rebooting_argv(&s.opts),
        zypper::work::QUERY,
    );
    assert_eq!(
        req.env,
        [("ZYPP_LOCK_TIMEOUT".to_string(), "3".to_string())]
    );
}

/// The executor cuts output past its cap: zypper's XML plan read in part is refused
/// whole, although the same plan uncut is accepted.
async fn a_plan_cut_short_by_the_executor_is_refused() {
    let s = setup();
    refresh(&s.opts).await;
    let backend = ZypperBackend::new(s.opts.clone());
    let targets = [target("pc-sec", "1.1-1")];
    common::assert_a_cut_plan_is_refused(
        &backend,
        patchctl_agent::pkgmgr::Family::Zypper,
        &targets,
    )
    .await;
}
