//! The pacman backend against the real pacman: a private Arch root (its own local
//! database, written by `pacman -U`), its own pacman.conf, and a `file://` repository
//! built with `bsdtar` and `repo-add`. The agent's operations run through
//! `Operations::handle` and the real executor:
//!
//! - check_updates refreshes the agent's *separate* sync database and lists pc-sec,
//!   pc-upd and pc-new with versions and repository, and pc-victim as a removal; the
//!   root's own sync database is never written (byte-for-byte and mtime unchanged,
//!   and no `-Sy` in the root's pacman log);
//! - get_package_info reads the installed package and its candidate;
//! - install_updates refuses pc-new 1.1-1 ("would remove pc-victim"), a version the
//!   repository does not offer, and a package it does not have, running nothing but
//!   simulations; waits for the root's pacman lock and reports "locked by another
//!   process"; then really installs pc-sec 1.1-1 and nothing else.
//!
//! The setup (building packages, the repository and the 1.0 system) runs bsdtar,
//! repo-add and pacman directly: that is the test's fixture, not the agent.
#![allow(clippy::disallowed_methods)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use common::{envelope, install, run, target};
use patchctl_agent::exec::{Executor, ProcessExecutor};
use patchctl_agent::ops::Operations;
use patchctl_agent::pkgmgr::pacman::{self, PacmanBackend, PacmanOptions};
use patchctl_agent::pkgmgr::{self, Backend};
use patchctl_proto::command::{ResultOutput, ResultStatus};
use patchctl_testkit::{Harness, Need, trial};

fn main() -> std::process::ExitCode {
    // Root: pacman installs packages into a private root.
    Harness::new()
        .test(
            trial!(async check_updates_and_package_info_use_a_separate_sync_database).needs(NEEDS),
        )
        .test(trial!(async install_updates_installs_exactly_the_approved_versions).needs(NEEDS))
        .run()
}

const NEEDS: [Need; 4] = [
    Need::Root,
    Need::Program("/usr/bin/pacman"),
    Need::Program("/usr/bin/bsdtar"),
    Need::Program("/usr/bin/repo-add"),
];

/// Builds `name-version-any.pkg.tar.gz` in `out` by hand (makepkg refuses root): a
/// `.PKGINFO` and one file.
fn package(out: &Path, name: &str, version: &str, extra: &[&str]) -> PathBuf {
    let dir = tempfile::tempdir().unwrap();
    let share = dir.path().join("usr/share").join(name);
    std::fs::create_dir_all(&share).unwrap();
    std::fs::write(share.join("version"), format!("{name} {version}\n")).unwrap();
    let mut info = format!(
        "pkgname = {name}\npkgbase = {name}\npkgver = {version}\npkgdesc = PatchCTL test package\n\
         url = https://patchctl.invalid\nbuilddate = 1700000000\n\
         packager = PatchCTL Tests <tests@patchctl.invalid>\nsize = 10\narch = any\nlicense = MIT\n"
    );
    for e in extra {
        info.push_str(e);
        info.push('\n');
    }
    std::fs::write(dir.path().join(".PKGINFO"), info).unwrap();
    let file = out.join(format!("{name}-{version}-any.pkg.tar.gz"));
    run(Command::new("/usr/bin/bsdtar")
        .arg("-czf")
        .arg(&file)
        .arg("-C")
        .arg(dir.path())
        .args([".PKGINFO", "usr"]));
    file
}

/// Replaces the repository's contents with `packages` and builds its database.
fn repository(repo: &Path, packages: &[PathBuf]) {
    let _ = std::fs::remove_dir_all(repo);
    std::fs::create_dir_all(repo).unwrap();
    let mut cmd = Command::new("/usr/bin/repo-add");
    cmd.arg("-q").arg(repo.join("pctest.db.tar.gz"));
    for p in packages {
        let to = repo.join(p.file_name().unwrap());
        std::fs::copy(p, &to).unwrap();
        cmd.arg(to);
    }
    run(&mut cmd);
}

struct Root {
    _tmp: tempfile::TempDir,
    tmp: PathBuf,
    root: PathBuf,
    opts: PacmanOptions,
}

impl Root {
    fn local(&self) -> PathBuf {
        self.root.join("var/lib/pacman/local")
    }
    fn system_sync(&self) -> PathBuf {
        self.root.join("var/lib/pacman/sync")
    }
    fn log(&self) -> String {
        std::fs::read_to_string(self.tmp.join("pacman.log")).unwrap_or_default()
    }
    /// Every file of the root's own sync database with its bytes and mtime.
    fn system_sync_snapshot(&self) -> BTreeMap<String, (Vec<u8>, SystemTime)> {
        std::fs::read_dir(self.system_sync())
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let meta = e.metadata().unwrap();
                (
                    e.file_name().to_string_lossy().into_owned(),
                    (std::fs::read(e.path()).unwrap(), meta.modified().unwrap()),
                )
            })
            .collect()
    }
}

/// The private system: pc-sec, pc-upd, pc-new and pc-victim 1.0-1 installed; its own
/// sync database synced from an *older* repository state (only pc-sec 1.0-1); the
/// repository now offering 1.1-1 of pc-sec, pc-upd and pc-new, where pc-new conflicts
/// with and replaces pc-victim.
fn private_root() -> Root {
    let tmp_dir = tempfile::tempdir().unwrap();
    let tmp = tmp_dir.path().to_owned();
    let root = tmp.join("root");
    std::fs::create_dir_all(root.join("var/lib/pacman")).unwrap();
    for d in ["cache", "gnupg", "hooks", "pkgs"] {
        std::fs::create_dir_all(tmp.join(d)).unwrap();
    }
    let conf = tmp.join("pacman.conf");
    std::fs::write(
        &conf,
        format!(
            "[options]\nRootDir = {r}\nDBPath = {r}/var/lib/pacman/\nCacheDir = {t}/cache/\n\
             LogFile = {t}/pacman.log\nGPGDir = {t}/gnupg/\nHookDir = {t}/hooks/\n\
             SigLevel = Never\nArchitecture = auto\n\n[pctest]\nServer = file://{t}/repo\n",
            r = root.display(),
            t = tmp.display()
        ),
    )
    .unwrap();
    let pkgs = tmp.join("pkgs");
    let old: Vec<PathBuf> = ["pc-sec", "pc-upd", "pc-new", "pc-victim"]
        .iter()
        .map(|n| package(&pkgs, n, "1.0-1", &[]))
        .collect();
    let new = vec![
        package(&pkgs, "pc-sec", "1.1-1", &[]),
        package(&pkgs, "pc-upd", "1.1-1", &[]),
        package(
            &pkgs,
            "pc-new",
            "1.1-1",
            &["conflict = pc-victim", "replaces = pc-victim"],
        ),
        // In the repository, never installed: install_updates must not install it.
        package(&pkgs, "pc-extra", "1.0-1", &[]),
    ];
    let repo = tmp.join("repo");
    let pacman = || {
        let mut c = Command::new("/usr/bin/pacman");
        c.arg("--config").arg(&conf).arg("--noconfirm");
        c
    };
    // The system's own sync database, from the older repository state.
    repository(&repo, &old[..1]);
    run(pacman().arg("-Sy"));
    run(pacman().arg("-U").args(&old));
    repository(&repo, &new);
    // The running kernel has its modules: no reboot needed.
    let release = std::fs::read_to_string(pacman::OSRELEASE).unwrap();
    std::fs::create_dir_all(root.join("usr/lib/modules").join(release.trim())).unwrap();
    let opts = PacmanOptions {
        root: root.clone(),
        dbpath: tmp.join("patchctl/pacman"),
        config: Some(conf),
        lock_timeout: Duration::from_secs(2),
    };
    Root {
        _tmp: tmp_dir,
        tmp,
        root,
        opts,
    }
}

fn ops(exec: Arc<ProcessExecutor>, opts: PacmanOptions) -> Operations {
    common::ops(exec, PacmanBackend::new(opts))
}

fn installed(r: &Root) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(r.local())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "ALPM_DB_VERSION")
        .collect();
    v.sort();
    v
}

async fn check_updates_and_package_info_use_a_separate_sync_database() {
    let r = private_root();
    let before = r.system_sync_snapshot();
    assert!(before.contains_key("pctest.db"), "{:?}", before.keys());
    let syncs_before = r.log().matches("synchronizing package lists").count();
    assert_eq!(syncs_before, 1, "the setup's own -Sy");

    let exec = Arc::new(ProcessExecutor::new());
    let ops = ops(exec.clone(), r.opts.clone());
    let res = ops
        .handle(&envelope("check_updates", serde_json::json!({})))
        .await;
    assert_eq!(res.status, ResultStatus::Succeeded, "{res:?}");
    let Some(ResultOutput::Updates(report)) = &res.output else {
        panic!("no updates report: {res:?}");
    };
    assert!(report.refreshed);
    assert_eq!(report.package_manager, "pacman");
    let got: Vec<String> = report
        .updates
        .iter()
        .map(|u| {
            format!(
                "{} {} -> {} {} {:?} security={}",
                u.name,
                u.current_version.as_deref().unwrap_or("-"),
                u.candidate_version,
                u.arch,
                u.origins,
                u.security
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            "pc-new 1.0-1 -> 1.1-1 any [\"pctest\"] security=false",
            "pc-sec 1.0-1 -> 1.1-1 any [\"pctest\"] security=false",
            "pc-upd 1.0-1 -> 1.1-1 any [\"pctest\"] security=false",
        ]
    );
    assert!(report.updates.iter().all(|u| u.advisories.is_empty()));
    assert_eq!(report.removals, ["pc-victim"]);
    assert_eq!(res.summary, "3 updates available (0 security)");

    // Exactly the planned runs, all on the agent's database.
    let o = &r.opts;
    assert_eq!(
        exec.history(),
        vec![
            pacman::refresh_argv(o),
            pacman::updates_argv(o),
            pacman::info_argv(o, &["pc-new", "pc-sec", "pc-upd"]),
        ]
    );
    // The agent's database: a link to the real local database and its own sync copy.
    assert_eq!(
        std::fs::read_link(o.dbpath.join("local")).unwrap(),
        r.local()
    );
    assert!(o.dbpath.join("sync/pctest.db").is_file());

    let info = common::package_info;
    let res = ops.handle(&info("pc-sec")).await;
    assert_eq!(res.status, ResultStatus::Succeeded, "{res:?}");
    let Some(ResultOutput::PackageInfo(p)) = &res.output else {
        panic!("{res:?}");
    };
    assert_eq!(p.package_manager, "pacman");
    assert_eq!(p.installed.len(), 1);
    assert_eq!(p.installed[0].version, "1.0-1");
    assert_eq!(p.installed[0].arch, "any");
    assert_eq!(p.installed[0].source_name.as_deref(), Some("pc-sec"));
    assert_eq!(p.installed[0].status, "installed");
    assert_eq!(p.candidate_version.as_deref(), Some("1.1-1"));
    assert_eq!(p.candidate_origins, ["pctest"]);
    assert!(!p.security_update, "Arch has no security metadata");
    assert_eq!(
        res.summary,
        "pc-sec 1.0-1 (any) is installed; candidate 1.1-1"
    );
    // Installed, but in no repository.
    let res = ops.handle(&info("pc-victim")).await;
    let Some(ResultOutput::PackageInfo(p)) = &res.output else {
        panic!("{res:?}");
    };
    assert_eq!(p.installed[0].version, "1.0-1");
    assert_eq!(p.candidate_version, None);
    let res = ops.handle(&info("pc-absent")).await;
    assert_eq!(res.summary, "pc-absent is not installed", "{res:?}");

    // The root's own sync database was never written, and no -Sy was logged.
    assert_eq!(r.system_sync_snapshot(), before);
    assert_eq!(r.log().matches("synchronizing package lists").count(), 1);
    assert_eq!(
        installed(&r),
        [
            "pc-new-1.0-1",
            "pc-sec-1.0-1",
            "pc-upd-1.0-1",
            "pc-victim-1.0-1"
        ]
    );
}

async fn install_updates_installs_exactly_the_approved_versions() {
    let r = private_root();
    let sync_before = r.system_sync_snapshot();
    let exec = Arc::new(ProcessExecutor::new());
    let backend = PacmanBackend::new(r.opts.clone());
    backend.refresh(exec.as_ref()).await.unwrap();
    let ops = ops(exec.clone(), r.opts.clone());
    let o = &r.opts;
    let start = exec.history().len();
    let ran = |from: usize| exec.history()[from..].to_vec();

    // Refusals: nothing but simulations run.
    for (name, version, want, runs) in [
        (
            "pc-new",
            "1.1-1",
            "refused, nothing installed: would remove pc-victim",
            vec![
                pacman::print_argv(o, &[target("pc-new", "1.1-1")]),
                pacman::info_argv(o, &["pc-new"]),
            ],
        ),
        (
            "pc-sec",
            "9.9-1",
            "refused, nothing installed: would install pc-sec 1.1-1, which was not approved",
            vec![
                pacman::print_argv(o, &[target("pc-sec", "9.9-1")]),
                pacman::info_argv(o, &["pc-sec"]),
            ],
        ),
        (
            "pc-extra",
            "1.0-1",
            "refused, nothing installed: not installed, and install_updates only updates installed packages: pc-extra",
            vec![],
        ),
        (
            "pc-nope",
            "1.0-1",
            "refused, nothing installed: not installed, and install_updates only updates installed packages: pc-nope",
            vec![],
        ),
    ] {
        let from = exec.history().len();
        let res = ops.handle(&install(name, version)).await;
        assert_eq!(res.status, ResultStatus::Failed, "{name}: {res:?}");
        assert_eq!(res.summary, want, "{name}");
        let Some(ResultOutput::Install(rep)) = &res.output else {
            panic!("no install report: {res:?}");
        };
        assert!(!rep.refused.is_empty());
        assert!(!rep.packages[0].ok);
        assert_eq!(rep.packages[0].before, rep.packages[0].after);
        assert_eq!(ran(from), runs, "{name}");
    }
    assert_eq!(
        installed(&r),
        [
            "pc-new-1.0-1",
            "pc-sec-1.0-1",
            "pc-upd-1.0-1",
            "pc-victim-1.0-1"
        ]
    );

    // The root's pacman lock is held by someone else: the agent waits, then gives up.
    let lock = r.opts.system_lock();
    std::fs::write(&lock, "").unwrap();
    let from = exec.history().len();
    let t = std::time::Instant::now();
    let res = ops.handle(&install("pc-sec", "1.1-1")).await;
    assert!(t.elapsed() >= Duration::from_secs(2), "waited for the lock");
    assert_eq!(res.status, ResultStatus::Failed, "{res:?}");
    assert!(
        res.summary.contains("locked by another process"),
        "{}",
        res.summary
    );
    let Some(ResultOutput::Install(rep)) = &res.output else {
        panic!("{res:?}");
    };
    assert!(rep.output_tail.contains("db.lck"), "{}", rep.output_tail);
    assert_eq!(rep.packages[0].after.as_deref(), Some("1.0-1"));
    assert_eq!(
        ran(from),
        vec![
            pacman::print_argv(o, &[target("pc-sec", "1.1-1")]),
            pacman::info_argv(o, &["pc-sec"]),
        ],
        "no install ran"
    );
    assert!(lock.exists(), "someone else's lock is never removed");
    std::fs::remove_file(&lock).unwrap();

    // A plan the executor had to cut is refused whole.
    let capped = common::CappedExecutor {
        inner: ProcessExecutor::new(),
        cap: 8,
    };
    let err = backend
        .simulate(&capped, &[target("pc-sec", "1.1-1")])
        .await
        .unwrap_err();
    assert!(err.to_string().contains(pkgmgr::CUT_SHORT), "{err}");

    // The approved update alone: installed for real, through the agent's database
    // into the root's local database.
    let from = exec.history().len();
    let res = ops.handle(&install("pc-sec", "1.1-1")).await;
    assert_eq!(res.status, ResultStatus::Succeeded, "{res:?}");
    assert_eq!(res.summary, "1 of 1 approved updates installed");
    let Some(ResultOutput::Install(rep)) = &res.output else {
        panic!("{res:?}");
    };
    assert!(rep.refused.is_empty());
    let p = &rep.packages[0];
    assert_eq!(
        (p.before.as_deref(), p.after.as_deref(), p.ok),
        (Some("1.0-1"), Some("1.1-1"), true)
    );
    assert!(!rep.reboot_required);
    assert!(
        rep.output_tail.contains("upgrading pc-sec"),
        "{}",
        rep.output_tail
    );
    assert_eq!(
        ran(from),
        vec![
            pacman::print_argv(o, &[target("pc-sec", "1.1-1")]),
            pacman::info_argv(o, &["pc-sec"]),
            pacman::install_argv(o, &[target("pc-sec", "1.1-1")]),
        ]
    );
    assert_eq!(
        installed(&r),
        [
            "pc-new-1.0-1",
            "pc-sec-1.1-1",
            "pc-upd-1.0-1",
            "pc-victim-1.0-1"
        ]
    );
    let desc = std::fs::read_to_string(r.local().join("pc-sec-1.1-1/desc")).unwrap();
    assert!(desc.contains("%VERSION%\n1.1-1\n"), "{desc}");
    assert_eq!(
        std::fs::read_to_string(r.root.join("usr/share/pc-sec/version")).unwrap(),
        "pc-sec 1.1-1\n"
    );
    assert!(!lock.exists(), "the agent released the root's lock");
    assert!(
        r.log().contains("upgraded pc-sec (1.0-1 -> 1.1-1)"),
        "the root's pacman log records the install"
    );
    assert!(!r.log().contains("upgraded pc-upd"));
    // Installing again is a no-op (--needed): pacman plans nothing.
    let res = ops.handle(&install("pc-sec", "1.1-1")).await;
    assert_eq!(res.status, ResultStatus::Succeeded, "{res:?}");
    // The root's sync database was never touched by any of it.
    assert_eq!(r.system_sync_snapshot(), sync_before);
    assert!(
        exec.history()[start..]
            .iter()
            .all(|a| !a.contains(&"-Sy".to_string()))
    );

    // The running kernel's modules gone, another kernel's present: reboot required.
    let release = std::fs::read_to_string(pacman::OSRELEASE).unwrap();
    let modules = r.root.join("usr/lib/modules");
    std::fs::remove_dir(modules.join(release.trim())).unwrap();
    std::fs::create_dir(modules.join("0.0.1-arch1-1")).unwrap();
    assert!(backend.reboot_required(exec.as_ref()).await);
}
