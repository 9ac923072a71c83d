//! The dnf backend against the real dnf 4 and rpm: the agent's operations run the real
//! `dnf makecache`, `check-update`, `updateinfo`, `list`, `upgrade --assumeno` and
//! `upgrade -y` through its executor, on a private installroot (its own rpm database,
//! repositories and cache, nothing of the machine's) with a `file://` repository of tiny
//! noarch RPMs built here with rpmbuild, indexed with createrepo_c, and an
//! `updateinfo.xml` added with modifyrepo_c. The security flag must come from the
//! advisory's type, the install must install exactly what was approved, and whatever the
//! simulation shows beyond that must be refused before anything is installed.
#![allow(clippy::disallowed_methods)] // Test harness: runs rpmbuild, createrepo_c, rpm.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::{clean, envelope, install, tool};
use patchctl_agent::exec::{Executor, ProcessExecutor};
use patchctl_agent::ops::Operations;
use patchctl_agent::pkgmgr::Backend;
use patchctl_agent::pkgmgr::dnf::{self, DnfBackend, DnfOptions};
use patchctl_proto::command::{InstallReport, ResultOutput, ResultStatus};
use patchctl_testkit::{Harness, Need, trial};

fn main() -> std::process::ExitCode {
    // Root: a private installroot (rpm database, dnf upgrade).
    Harness::new()
        .test(trial!(async check_updates_and_package_info_read_the_advisories).needs(NEEDS))
        .test(trial!(async install_updates_installs_exactly_the_approved_versions).needs(NEEDS))
        .test(trial!(async install_updates_reports_a_locked_package_manager).needs(NEEDS))
        .test(trial!(async a_plan_cut_short_by_the_executor_is_refused).needs(NEEDS))
        .test(
            trial!(async an_interrupted_transaction_is_repaired_before_the_next_install)
                .needs(NEEDS),
        )
        .run()
}

const NEEDS: [Need; 6] = [
    Need::Root,
    Need::Program("/usr/bin/dnf"),
    Need::Program("/usr/bin/rpm"),
    Need::Program("/usr/bin/rpmbuild"),
    Need::Program("/usr/bin/createrepo_c"),
    Need::Program("/usr/bin/modifyrepo_c"),
];

fn advisory(id: &str, kind: &str, severity: &str, name: &str, evr: &str) -> String {
    let (epoch, vr) = evr.split_once(':').unwrap_or(("0", evr));
    let (v, r) = vr.rsplit_once('-').unwrap();
    format!(
        r#"  <update from="tests@patchctl.invalid" status="stable" type="{kind}" version="2.0">
    <id>{id}</id>
    <title>{name} update</title>
    <issued date="2024-05-01 00:00:00"/>
    <severity>{severity}</severity>
    <summary>{name}</summary>
    <description>{name} update.</description>
    <pkglist>
      <collection short="pctest">
        <name>PatchCTL Test</name>
        <package name="{name}" version="{v}" release="{r}" epoch="{epoch}" arch="noarch">
          <filename>{name}-{vr}.noarch.rpm</filename>
        </package>
      </collection>
    </pkglist>
  </update>
"#
    )
}

/// The RPMs, built once per test run (one rpmbuild for all), shared read-only.
struct Built {
    /// The 1.0 packages the installroots start with.
    base: Vec<PathBuf>,
    /// The repository of updates, with its updateinfo.xml.
    repo: PathBuf,
    /// A kernel package, for the reboot check.
    kernel: PathBuf,
}

fn built() -> &'static Built {
    static BUILT: std::sync::OnceLock<Built> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| {
        let t = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dnf_real");
        let _ = std::fs::remove_dir_all(&t);
        let installed = [
            ("pc-sec", "1.0-1", ""),
            ("pc-upd", "1.0-1", ""),
            ("pc-new", "1.0-1", ""),
            ("pc-victim", "1.0-1", ""),
            ("pc-needs", "1.0-1", ""),
            ("pc-epoch", "1:2.0-1", ""),
            ("kernel", "5.14.0-427.18.1.el9_4", ""),
        ];
        let updates = [
            ("pc-sec", "1.1-1", ""),
            // An older version than the installed one (repositories keep old versions).
            ("pc-sec", "0.9-1", ""),
            ("pc-upd", "1.1-1", ""),
            // Upgrading pc-new removes pc-victim.
            ("pc-new", "1.1-1", "Obsoletes: pc-victim < 2\n"),
            // Upgrading pc-needs installs a new package, and recommends another.
            (
                "pc-needs",
                "1.1-1",
                "Requires: pc-dep\nRecommends: pc-weak\n",
            ),
            ("pc-dep", "1.0-1", ""),
            ("pc-weak", "1.0-1", ""),
            // A higher epoch with a lower version is newer.
            ("pc-epoch", "2:1.5-1", ""),
        ];
        let all: Vec<(&str, &str, &str)> = installed.iter().chain(&updates).copied().collect();
        let mut rpms = common::build_rpms(&t.join("top"), &all);
        let updated = rpms.split_off(installed.len());
        let repo = t.join("repo");
        common::rpm_repository(
            &repo,
            &updated,
            &format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<updates>\n{}{}</updates>\n",
                advisory(
                    "PCTEST-2024:0001",
                    "security",
                    "Important",
                    "pc-sec",
                    "1.1-1"
                ),
                advisory("PCTEST-2024:0002", "bugfix", "None", "pc-upd", "1.1-1"),
            ),
        );
        let (kernel, base): (Vec<_>, Vec<_>) = installed
            .iter()
            .zip(rpms)
            .partition(|((n, _, _), _)| *n == "kernel");
        Built {
            base: base.into_iter().map(|(_, rpm)| rpm).collect(),
            repo,
            kernel: kernel.into_iter().map(|(_, rpm)| rpm).next().unwrap(),
        }
    })
}

/// The private system: an installroot with the 1.0 packages installed, and dnf
/// pointed at it, at the repository of updates and at its own cache.
struct Fixture {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    opts: DnfOptions,
    kernel_rpm: PathBuf,
}

fn fixture() -> Fixture {
    let b = built();
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    std::fs::create_dir_all(t.join("repos.d")).unwrap();
    std::fs::write(
        t.join("repos.d/pctest.repo"),
        format!(
            "[pctest-updates]\nname=PatchCTL test updates\nbaseurl=file://{}\ngpgcheck=0\n",
            b.repo.display()
        ),
    )
    .unwrap();
    let root = t.join("root");
    std::fs::create_dir_all(&root).unwrap();
    common::rpm_root(&root, &b.base);
    // The rpm database lives where rpm's macros say (Debian: ~/.rpmdb), inside the root.
    let dbpath = tool("/usr/bin/rpm", &["--eval", "%{_dbpath}"]);
    let rpm_lock = root
        .join(dbpath.trim().trim_start_matches('/'))
        .join(".rpm.lock");
    let opts = DnfOptions {
        installroot: Some(root.clone()),
        releasever: Some("9".into()),
        setopt: [
            ("reposdir", t.join("repos.d").display().to_string()),
            ("cachedir", t.join("cache").display().to_string()),
            ("gpgcheck", "False".into()),
            ("skip_if_unavailable", "False".into()),
            // Host plugins (Debian's dnf-plugins-core adds a local repository) stay out.
            ("plugins", "False".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect(),
        rpm_locks: vec![rpm_lock],
        lock_timeout: Duration::from_secs(2),
        ..DnfOptions::default()
    };
    Fixture {
        _tmp: tmp,
        root,
        opts,
        kernel_rpm: b.kernel.clone(),
    }
}

impl Fixture {
    /// What rpm says is installed: `NAME-VERSION-RELEASE` or "not installed".
    fn rpm_q(&self, name: &str) -> String {
        let out = clean(&mut Command::new("/usr/bin/rpm"))
            .arg(format!("--root={}", self.root.display()))
            .args([
                "-q",
                "--queryformat",
                "%{EPOCH}:%{VERSION}-%{RELEASE}",
                name,
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .replace("(none):", "")
            .trim()
            .to_owned()
    }

    async fn refresh(&self) {
        let exec = ProcessExecutor::new();
        DnfBackend::new(self.opts.clone())
            .refresh(&exec)
            .await
            .expect("dnf makecache");
    }
}

fn ops(exec: Arc<ProcessExecutor>, opts: DnfOptions) -> Operations {
    common::ops(exec, DnfBackend::new(opts))
}

fn report(res: &patchctl_proto::command::CommandResult) -> &InstallReport {
    match &res.output {
        Some(ResultOutput::Install(r)) => r,
        _ => panic!("no install report: {res:?}"),
    }
}

/// The dnf runs with `-y` (real installs) in the history.
fn real_installs(exec: &ProcessExecutor) -> Vec<Vec<String>> {
    exec.history()
        .into_iter()
        .filter(|a| a[0] == dnf::DNF && a.contains(&"-y".to_string()))
        .collect()
}

async fn check_updates_and_package_info_read_the_advisories() {
    let f = fixture();
    let exec = Arc::new(ProcessExecutor::new());
    let ops = ops(exec.clone(), f.opts.clone());
    let res = ops
        .handle(&envelope("check_updates", serde_json::json!({})))
        .await;
    assert_eq!(res.status, ResultStatus::Succeeded, "{res:?}");
    let Some(ResultOutput::Updates(report)) = &res.output else {
        panic!("no updates report: {res:?}");
    };
    assert!(report.refreshed);
    assert_eq!(report.package_manager, "rpm");
    eprintln!("dnf said: {} / {:#?}", res.summary, report.updates);
    let get = |n: &str| {
        report
            .updates
            .iter()
            .find(|u| u.name == n)
            .unwrap_or_else(|| panic!("no update of {n}: {report:?}"))
    };
    let sec = get("pc-sec");
    assert_eq!(sec.arch, "noarch");
    assert_eq!(sec.current_version.as_deref(), Some("1.0-1"));
    assert_eq!(sec.candidate_version, "1.1-1");
    assert_eq!(sec.origins, ["pctest-updates"]);
    assert!(sec.security, "{sec:?}");
    assert_eq!(sec.advisories.len(), 1, "{sec:?}");
    assert_eq!(sec.advisories[0].id, "PCTEST-2024:0001");
    assert_eq!(sec.advisories[0].kind.as_deref(), Some("security"));
    assert_eq!(sec.advisories[0].severity.as_deref(), Some("Important"));
    let upd = get("pc-upd");
    assert_eq!(upd.candidate_version, "1.1-1");
    assert!(
        !upd.security,
        "a bugfix advisory is no security update: {upd:?}"
    );
    assert_eq!(upd.advisories[0].id, "PCTEST-2024:0002");
    let ep = get("pc-epoch");
    assert_eq!(ep.current_version.as_deref(), Some("1:2.0-1"));
    assert_eq!(ep.candidate_version, "2:1.5-1");
    assert!(!ep.security && ep.advisories.is_empty());
    assert!(!get("pc-new").security);
    assert_eq!(
        report.updates.len(),
        5,
        "pc-sec, pc-upd, pc-new, pc-needs, pc-epoch"
    );
    assert_eq!(report.removals, ["pc-victim"], "pc-new obsoletes pc-victim");
    assert!(
        res.summary.contains("5 updates available (1 security)"),
        "{}",
        res.summary
    );
    // Exactly the planned argument vectors ran, and nothing else.
    let o = &f.opts;
    let rpm_qa = patchctl_agent::inventory::rpm::query_all_argv(&f.root);
    let mut want = dnf::refresh_argvs(o);
    want.extend([
        rpm_qa,
        dnf::check_update_argv(o),
        dnf::updateinfo_argv(o, None),
    ]);
    assert_eq!(exec.history(), want);
    assert_eq!(
        exec.history()[0][..3],
        [
            "/usr/bin/dnf".to_string(),
            format!("--installroot={}", f.root.display()),
            "--releasever=9".into()
        ]
    );

    let info = common::package_info;
    let res = ops.handle(&info("pc-sec")).await;
    assert_eq!(res.status, ResultStatus::Succeeded, "{res:?}");
    let Some(ResultOutput::PackageInfo(p)) = &res.output else {
        panic!("{res:?}");
    };
    assert_eq!(p.package_manager, "rpm");
    assert_eq!(p.installed.len(), 1);
    assert_eq!(p.installed[0].version, "1.0-1");
    assert_eq!(
        p.installed[0].source_name.as_deref(),
        Some("pc-sec"),
        "rpm -q gives the source RPM"
    );
    assert_eq!(p.candidate_version.as_deref(), Some("1.1-1"));
    assert_eq!(p.candidate_origins, ["pctest-updates"]);
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
    assert_eq!(p.candidate_version.as_deref(), Some("1.1-1"));
    assert!(!p.security_update);

    // Installed, nothing newer: the candidate is the installed version.
    let res = ops.handle(&info("pc-victim")).await;
    let Some(ResultOutput::PackageInfo(p)) = &res.output else {
        panic!("{res:?}");
    };
    assert_eq!(p.installed[0].version, "1.0-1");
    assert_eq!(p.candidate_version.as_deref(), Some("1.0-1"));
    assert!(!p.security_update);

    // Not installed but available; and neither.
    let res = ops.handle(&info("pc-dep")).await;
    let Some(ResultOutput::PackageInfo(p)) = &res.output else {
        panic!("{res:?}");
    };
    assert!(p.installed.is_empty());
    assert_eq!(p.candidate_version.as_deref(), Some("1.0-1"));
    assert!(
        res.summary.contains("pc-dep is not installed"),
        "{}",
        res.summary
    );
    let res = ops.handle(&info("pc-nope")).await;
    assert_eq!(res.status, ResultStatus::Succeeded, "{res:?}");
    let Some(ResultOutput::PackageInfo(p)) = &res.output else {
        panic!("{res:?}");
    };
    assert!(p.installed.is_empty() && p.candidate_version.is_none());
}

async fn install_updates_installs_exactly_the_approved_versions() {
    let f = fixture();
    f.refresh().await;
    let exec = Arc::new(ProcessExecutor::new());
    let ops = ops(exec.clone(), f.opts.clone());

    // Refused: each simulation shows more than the approved upgrade, or nothing.
    for (name, version, want) in [
        ("pc-new", "1.1-1", "would remove pc-victim"),
        (
            "pc-needs",
            "1.1-1",
            "would install pc-dep 1.0-1, which was not approved",
        ),
        (
            "pc-sec",
            "9.9-1",
            "pc-sec 9.9-1 is not available from the enabled repositories",
        ),
        (
            "pc-sec",
            "0.9-1",
            "dnf would not install pc-sec 0.9-1 (installed: 1.0-1)",
        ),
    ] {
        let res = ops.handle(&install(name, version)).await;
        assert_eq!(res.status, ResultStatus::Failed, "{name}: {res:?}");
        assert!(res.summary.contains(want), "{name}: {}", res.summary);
        assert!(res.summary.contains("nothing installed"), "{}", res.summary);
        // Weak dependencies are not installed, so pc-weak is no reason to refuse.
        assert!(!res.summary.contains("pc-weak"), "{}", res.summary);
        let r = report(&res);
        assert!(!r.refused.is_empty());
        assert_eq!(r.packages[0].before.as_deref(), Some("1.0-1"), "{r:?}");
        assert_eq!(r.packages[0].after.as_deref(), Some("1.0-1"), "{r:?}");
        assert!(!r.packages[0].ok);
    }
    assert!(real_installs(&exec).is_empty(), "{:?}", exec.history());
    assert_eq!(f.rpm_q("pc-new"), "1.0-1");
    assert_eq!(f.rpm_q("pc-victim"), "1.0-1");
    assert_eq!(f.rpm_q("pc-needs"), "1.0-1");
    assert!(f.rpm_q("pc-dep").contains("not installed"));

    // The approved security update is installed, and nothing else.
    let res = ops.handle(&install("pc-sec", "1.1-1")).await;
    assert_eq!(res.status, ResultStatus::Succeeded, "{res:?}");
    assert!(
        res.summary.contains("1 of 1 approved updates installed"),
        "{}",
        res.summary
    );
    let r = report(&res);
    assert!(r.refused.is_empty());
    assert_eq!(r.packages[0].name, "pc-sec");
    assert_eq!(r.packages[0].before.as_deref(), Some("1.0-1"));
    assert_eq!(r.packages[0].after.as_deref(), Some("1.1-1"));
    assert!(r.packages[0].ok);
    assert!(r.output_tail.contains("Complete!"), "{}", r.output_tail);
    assert!(!r.reboot_required, "no kernel in the installroot");
    assert_eq!(f.rpm_q("pc-sec"), "1.1-1");
    assert_eq!(
        f.rpm_q("pc-upd"),
        "1.0-1",
        "approving pc-sec does not drag pc-upd"
    );
    assert_eq!(f.rpm_q("pc-victim"), "1.0-1");

    // The epoch case: 2:1.5-1 replaces 1:2.0-1.
    let res = ops.handle(&install("pc-epoch", "2:1.5-1")).await;
    assert_eq!(res.status, ResultStatus::Succeeded, "{res:?}");
    let r = report(&res);
    assert_eq!(r.packages[0].before.as_deref(), Some("1:2.0-1"));
    assert_eq!(r.packages[0].after.as_deref(), Some("2:1.5-1"));
    assert_eq!(f.rpm_q("pc-epoch"), "2:1.5-1");

    // Only the two approved plans were ever installed, each after its simulation.
    let o = &f.opts;
    let target = common::target;
    let sec = [target("pc-sec", "1.1-1")];
    let ep = [target("pc-epoch", "2:1.5-1")];
    assert_eq!(
        real_installs(&exec),
        [dnf::install_argv(o, &sec), dnf::install_argv(o, &ep)]
    );
    let h = exec.history();
    let pos = |argv: &Vec<String>| h.iter().position(|a| a == argv).unwrap();
    assert!(pos(&dnf::simulate_argv(o, &sec)) < pos(&dnf::install_argv(o, &sec)));
    assert!(pos(&dnf::simulate_argv(o, &ep)) < pos(&dnf::install_argv(o, &ep)));

    // A newer kernel than the running one now is installed: a reboot is required
    // (needs-restarting is off with the plugins, so the kernel comparison decides).
    common::rpm_install(&f.root, std::slice::from_ref(&f.kernel_rpm));
    let b = DnfBackend::new(f.opts.clone());
    let e = ProcessExecutor::new();
    assert!(b.reboot_required(&e).await);
    let h = e.history();
    assert_eq!(h[0], dnf::needs_restarting_argv(o).unwrap());
    assert_eq!(h[1], dnf::kernel_query_argv(o));
}

async fn install_updates_reports_a_locked_package_manager() {
    let f = fixture();
    f.refresh().await;

    // Another dnf holds its rpmdb lock: a live process's pid in the lock file.
    let exec = Arc::new(ProcessExecutor::new());
    let ops_ = ops(exec.clone(), f.opts.clone());
    let pid_file = f.root.join("var/lib/dnf/rpmdb_lock.pid");
    std::fs::create_dir_all(pid_file.parent().unwrap()).unwrap();
    std::fs::write(&pid_file, std::process::id().to_string()).unwrap();
    let started = std::time::Instant::now();
    let res = ops_.handle(&install("pc-sec", "1.1-1")).await;
    let waited = started.elapsed();
    std::fs::remove_file(&pid_file).unwrap();
    assert_eq!(res.status, ResultStatus::Failed, "{res:?}");
    assert!(
        res.summary.contains("locked by another process"),
        "{}",
        res.summary
    );
    let r = report(&res);
    assert!(
        r.output_tail
            .contains(&format!("RPMDB already locked by {}", std::process::id())),
        "{}",
        r.output_tail
    );
    assert!(
        r.output_tail.starts_with("locked by another process"),
        "{}",
        r.output_tail
    );
    assert_eq!(r.packages[0].after.as_deref(), Some("1.0-1"));
    assert!(waited >= Duration::from_secs(2), "it waited: {waited:?}");
    assert!(
        waited < Duration::from_secs(30),
        "the wait is bounded: {waited:?}"
    );
    assert!(
        !real_installs(&exec).is_empty(),
        "dnf tried and exited at once"
    );
    assert_eq!(f.rpm_q("pc-sec"), "1.0-1");

    // Another process holds rpm's transaction lock: dnf is not even started.
    let exec = Arc::new(ProcessExecutor::new());
    let ops_ = ops(exec.clone(), f.opts.clone());
    let lock = std::fs::File::open(&f.opts.rpm_locks[0]).expect("the rpm lock file exists");
    let held = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusiveNonblock)
        .map_err(|(_, e)| e)
        .unwrap();
    let res = ops_.handle(&install("pc-sec", "1.1-1")).await;
    drop(held);
    assert_eq!(res.status, ResultStatus::Failed, "{res:?}");
    assert!(
        res.summary.contains("locked by another process"),
        "{}",
        res.summary
    );
    let r = report(&res);
    assert!(
        r.output_tail.contains("rpm database lock"),
        "{}",
        r.output_tail
    );
    assert!(
        r.output_tail
            .contains(&format!("held by pid {}", std::process::id())),
        "{}",
        r.output_tail
    );
    assert!(real_installs(&exec).is_empty(), "{:?}", exec.history());
    assert_eq!(f.rpm_q("pc-sec"), "1.0-1");

    // Once free, the same command goes through.
    let res = ops_.handle(&install("pc-sec", "1.1-1")).await;
    assert_eq!(res.status, ResultStatus::Succeeded, "{res:?}");
    assert_eq!(f.rpm_q("pc-sec"), "1.1-1");
}

/// The executor cuts output past its cap: the transaction table read in part is
/// refused whole, although the same plan uncut is accepted.
async fn a_plan_cut_short_by_the_executor_is_refused() {
    let f = fixture();
    f.refresh().await;
    let backend = DnfBackend::new(f.opts.clone());
    let targets = [common::target("pc-sec", "1.1-1")];
    common::assert_a_cut_plan_is_refused(&backend, patchctl_agent::pkgmgr::Family::Dnf, &targets)
        .await;
}

/// What an rpm transaction killed half-way leaves (issue 16 §4): the new pc-upd 1.1-1
/// added to the rpm database while the old 1.0-1 was not erased yet (both installed).
/// The next install finds it, runs `dnf remove --duplicates` with an audit line, and
/// only then plans and installs what was approved.
async fn an_interrupted_transaction_is_repaired_before_the_next_install() {
    let f = fixture();
    f.refresh().await;
    let new = built().repo.join("pc-upd-1.1-1.noarch.rpm");
    common::run(
        clean(&mut Command::new("/usr/bin/rpm"))
            .arg(format!("--root={}", f.root.display()))
            .args([
                "-i",
                "--justdb",
                "--nodeps",
                "--noscripts",
                "--replacefiles",
            ])
            .arg(&new),
    );
    let exec = Arc::new(ProcessExecutor::new());
    let b = DnfBackend::new(f.opts.clone());
    assert_eq!(
        dnf::duplicates(&b.inventory(exec.as_ref()).await.unwrap()),
        ["pc-upd.noarch (1.0-1, 1.1-1)"]
    );

    let ops = ops(exec.clone(), f.opts.clone());
    let res = ops.handle(&install("pc-sec", "1.1-1")).await;
    assert_eq!(res.status, ResultStatus::Succeeded, "{res:?}");
    assert!(
        res.summary.contains("dnf remove --duplicates")
            && res.summary.contains("pc-upd.noarch (1.0-1, 1.1-1)"),
        "the result says what was repaired: {}",
        res.summary
    );
    assert_eq!(f.rpm_q("pc-upd"), "1.1-1", "only the newer version is left");
    assert_eq!(f.rpm_q("pc-sec"), "1.1-1");
    let h = exec.history();
    let pos = |argv: &Vec<String>| h.iter().position(|a| a == argv);
    let repair = pos(&dnf::remove_duplicates_argv(&f.opts)).expect("the repair ran");
    let sec = [common::target("pc-sec", "1.1-1")];
    assert!(repair < pos(&dnf::simulate_argv(&f.opts, &sec)).unwrap());

    // Repaired once: the next install runs no repair.
    let before = exec.history().len();
    let res = ops.handle(&install("pc-epoch", "2:1.5-1")).await;
    assert_eq!(res.status, ResultStatus::Succeeded, "{res:?}");
    assert!(!res.summary.contains("duplicates"), "{}", res.summary);
    let again = exec.history()[before..]
        .iter()
        .filter(|a| **a == dnf::remove_duplicates_argv(&f.opts))
        .count();
    assert_eq!(again, 0);
}
