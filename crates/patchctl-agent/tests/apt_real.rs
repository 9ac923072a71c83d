//! `check_updates` against the real apt: the agent's operation runs the real
//! `apt-get update` and `apt-get -s dist-upgrade` through its executor, on a private apt
//! root (its own dpkg status file, sources and lists, nothing of the machine's) with a
//! `file:` repository of two suites: `bookworm-security` and `bookworm-updates`. The
//! security flag must come from the suite, whatever the versions say.

mod common;

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use common::{envelope, install};
use patchctl_agent::exec::{Executor, ProcessExecutor};
use patchctl_agent::ops::Operations;
use patchctl_agent::pkgmgr::apt::{self, AptBackend, AptOptions};
use patchctl_agent::pkgmgr::{self, Family};
use patchctl_proto::command::{ResultOutput, ResultStatus};
use patchctl_testkit::{Harness, Need, trial};
use sha2::{Digest, Sha256};

fn main() -> std::process::ExitCode {
    // Root: check_updates refreshes apt lists (apt-get update), even in a private root.
    Harness::new()
        .test(
            trial!(async check_updates_reads_security_from_the_suite)
                .needs([Need::Root, Need::Program("/usr/bin/apt-get")]),
        )
        .test(
            trial!(async install_updates_simulates_first_and_refuses_what_was_not_approved)
                .needs([Need::Root, Need::Program("/usr/bin/apt-get")]),
        )
        .test(
            trial!(async get_package_info_reports_the_candidate_and_its_security_release)
                .needs([Need::Root, Need::Program("/usr/bin/apt-get")]),
        )
        .test(
            trial!(async a_purge_in_the_plan_is_a_removal_and_refuses_the_install)
                .needs([Need::Root, Need::Program("/usr/bin/apt-get")]),
        )
        .test(
            trial!(async a_plan_cut_short_by_the_executor_is_refused)
                .needs([Need::Root, Need::Program("/usr/bin/apt-get")]),
        )
        .test(
            trial!(async unreachable_and_unsigned_repositories_are_reported_not_refreshed)
                .needs([Need::Root, Need::Program("/usr/bin/apt-get")]),
        )
        .run()
}

fn stanza(name: &str, version: &str, extra: &str) -> String {
    format!(
        "Package: {name}\nVersion: {version}\nArchitecture: all\nMaintainer: PatchCTL Tests <tests@patchctl.invalid>\nPriority: optional\nSection: misc\n{extra}Description: PatchCTL test package\n"
    )
}

fn suite(repo: &Path, name: &str, label: &str, packages: &[String]) {
    let dir = repo.join("dists").join(name);
    let mut release = format!(
        "Origin: Debian\nLabel: {label}\nSuite: {name}\nCodename: {name}\nVersion: 12\nDate: Sat, 21 Nov 2026 00:00:00 UTC\nArchitectures: amd64\nComponents: main\nDescription: PatchCTL test suite\nSHA256:\n"
    );
    let mut index = String::new();
    for (i, p) in packages.iter().enumerate() {
        if i > 0 {
            index.push('\n');
        }
        let file = format!(
            "pool/{}.deb",
            p.lines().next().unwrap().trim_start_matches("Package: ")
        );
        write!(
            index,
            "{p}Filename: {file}\nSize: 1000\nSHA256: {}\n",
            "0".repeat(64)
        )
        .unwrap();
    }
    let rel = "main/binary-amd64/Packages";
    std::fs::create_dir_all(dir.join("main/binary-amd64")).unwrap();
    std::fs::write(dir.join(rel), &index).unwrap();
    writeln!(
        release,
        " {} {} {rel}",
        hex::encode(Sha256::digest(index.as_bytes())),
        index.len()
    )
    .unwrap();
    std::fs::write(dir.join("Release"), release).unwrap();
}

/// A private apt root: its own dpkg status, sources, lists and cache, and a `file:`
/// repository with a security and an updates suite. Nothing of the machine's is used.
fn private_root() -> (tempfile::TempDir, AptOptions) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let repo = root.join("repo");
    let installed = |name: &str, extra: &str| {
        format!(
            "{}Status: install ok installed\n",
            stanza(name, "1.0", extra)
        )
    };
    let status = [
        installed("pc-sec", ""),
        installed("pc-upd", ""),
        installed("pc-new", ""),
        installed("pc-victim", ""),
        installed("pc-same", ""),
        installed("pc-down", ""),
    ]
    .join("\n");
    std::fs::write(root.join("status"), status).unwrap();
    // The security suite's update has a *lower-looking* version suffix than the normal
    // one: only the suite may decide.
    suite(
        &repo,
        "bookworm-security",
        "Debian-Security",
        &[stanza("pc-sec", "1.0+deb12u1", "")],
    );
    suite(
        &repo,
        "bookworm-updates",
        "Debian",
        &[
            stanza("pc-upd", "1.1+security1", ""),
            stanza("pc-new", "1.1", "Conflicts: pc-victim\n"),
            stanza("pc-same", "1.0", ""),
            stanza("pc-down", "0.9", ""),
        ],
    );
    let sources = format!(
        "deb [trusted=yes] file:{0} bookworm-security main\ndeb [trusted=yes] file:{0} bookworm-updates main\n",
        repo.display()
    );
    std::fs::write(root.join("sources.list"), sources).unwrap();
    for d in ["parts", "lists/partial", "cache/archives/partial"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    let r = |p: &str| root.join(p).display().to_string();
    let opts = AptOptions {
        config: vec![
            ("Dir::State::status".into(), r("status")),
            ("Dir::State::extended_states".into(), r("extended_states")),
            ("Dir::State::Lists".into(), r("lists")),
            ("Dir::Cache".into(), r("cache")),
            ("Dir::Etc::SourceList".into(), r("sources.list")),
            ("Dir::Etc::SourceParts".into(), r("parts")),
            ("Dir::Etc::Preferences".into(), r("preferences")),
            ("Dir::Etc::PreferencesParts".into(), r("parts")),
            ("APT::Architecture".into(), "amd64".into()),
            ("APT::Architectures".into(), "amd64".into()),
            ("APT::Sandbox::User".into(), "root".into()),
            ("Acquire::Languages".into(), "none".into()),
        ],
    };
    (tmp, opts)
}

fn ops(exec: Arc<ProcessExecutor>, opts: AptOptions) -> Operations {
    common::ops(exec, AptBackend::new(opts))
}

async fn check_updates_reads_security_from_the_suite() {
    let (_tmp, opts) = private_root();
    let exec = Arc::new(ProcessExecutor::new());
    let ops = ops(exec.clone(), opts.clone());
    let res = ops
        .handle(&envelope("check_updates", serde_json::json!({})))
        .await;
    assert_eq!(res.status, ResultStatus::Succeeded, "{res:?}");
    let Some(ResultOutput::Updates(report)) = &res.output else {
        panic!("no updates report: {res:?}");
    };
    assert!(report.refreshed);
    eprintln!(
        "apt said: {} / updates {:?} / removals {:?}",
        res.summary,
        report.updates.iter().map(|u| &u.name).collect::<Vec<_>>(),
        report.removals
    );
    let get = |n: &str| report.updates.iter().find(|u| u.name == n).cloned();
    let sec = get("pc-sec").expect("pc-sec update");
    assert_eq!(sec.current_version.as_deref(), Some("1.0"));
    assert_eq!(sec.candidate_version, "1.0+deb12u1");
    assert!(sec.security, "{sec:?}");
    assert!(
        sec.origins
            .iter()
            .any(|o| o.ends_with("/bookworm-security")),
        "{sec:?}"
    );
    let upd = get("pc-upd").expect("pc-upd update");
    assert!(
        !upd.security,
        "a version string must not make an update a security one: {upd:?}"
    );
    assert!(
        get("pc-same").is_none(),
        "no update for an unchanged version"
    );
    // A full upgrade takes pc-new to 1.1 by removing the package it conflicts with;
    // the report says so (install_updates will refuse such a run).
    let new = get("pc-new").expect("pc-new update");
    assert!(!new.security);
    assert_eq!(report.removals, vec!["pc-victim".to_string()]);
    assert!(res.summary.contains("(1 security)"), "{}", res.summary);
    // Exactly the planned argument vectors ran, and nothing else.
    let mut want_update = vec!["/usr/bin/apt-get".to_string(), "-q".into()];
    let mut want_sim = vec![
        "/usr/bin/apt-get".to_string(),
        "-s".into(),
        "-q".into(),
        "-o".into(),
        "Debug::NoLocking=true".into(),
    ];
    for (k, v) in &opts.config {
        for w in [&mut want_update, &mut want_sim] {
            w.push("-o".into());
            w.push(format!("{k}={v}"));
        }
    }
    want_update.push("update".into());
    want_sim.push("dist-upgrade".into());
    assert_eq!(exec.history(), vec![want_update, want_sim]);
}

/// Refreshes the private root's lists (what check_updates does first).
async fn refresh(opts: &AptOptions) {
    let exec = ProcessExecutor::new();
    let out = exec
        .run(patchctl_agent::exec::ExecRequest::from_argv(
            &apt::update_argv(opts),
        ))
        .await
        .unwrap();
    assert!(out.success(), "apt-get update: {}", out.stderr);
}

async fn install_updates_simulates_first_and_refuses_what_was_not_approved() {
    let (_tmp, opts) = private_root();
    refresh(&opts).await;
    let exec = Arc::new(ProcessExecutor::new());
    let ops = ops(exec.clone(), opts.clone());
    for (name, version, want) in [
        ("pc-new", "1.1", "would remove pc-victim"),
        ("pc-down", "0.9", "would downgrade pc-down from 1.0 to 0.9"),
        ("pc-sec", "9.9", "apt-get cannot plan the install"),
    ] {
        let res = ops.handle(&install(name, version)).await;
        assert_eq!(res.status, ResultStatus::Failed, "{name}: {res:?}");
        assert!(res.summary.contains(want), "{name}: {}", res.summary);
        assert!(res.summary.contains("nothing installed"), "{}", res.summary);
        let Some(ResultOutput::Install(r)) = &res.output else {
            panic!("no install report: {res:?}");
        };
        assert!(!r.refused.is_empty());
        assert_eq!(
            r.packages[0].before.as_deref(),
            Some("1.0"),
            "read from the status apt uses"
        );
        assert_eq!(r.packages[0].after.as_deref(), Some("1.0"));
        assert!(!r.packages[0].ok);
    }
    // Only simulations ran: no `apt-get -y install` was ever started.
    let history = exec.history();
    assert_eq!(history.len(), 3, "{history:?}");
    for argv in &history {
        assert_eq!(argv[1], "-s", "{argv:?}");
        assert!(!argv.contains(&"-y".to_string()), "{argv:?}");
    }

    // The approved security update alone is an acceptable plan (checked without
    // running the install, which would act on this machine's dpkg).
    let targets = vec![common::target("pc-sec", "1.0+deb12u1")];
    let out = ProcessExecutor::new()
        .run(patchctl_agent::exec::ExecRequest::from_argv(
            &apt::install_simulate_argv(&opts, &targets),
        ))
        .await
        .unwrap();
    assert!(out.success(), "{}", out.stderr);
    let sim = apt::parse_simulation(&out.stdout);
    assert_eq!(sim.updates.len(), 1, "{sim:?}");
    assert!(
        pkgmgr::refusals(Family::Apt, &sim.transaction(), &targets).is_empty(),
        "{sim:?}"
    );
    // And approving the security update does not drag in the normal one.
    assert!(sim.updates.iter().all(|u| u.name != "pc-upd"));
}

async fn get_package_info_reports_the_candidate_and_its_security_release() {
    let (_tmp, opts) = private_root();
    refresh(&opts).await;
    let exec = Arc::new(ProcessExecutor::new());
    let ops = ops(exec.clone(), opts);
    let info = common::package_info;
    let res = ops.handle(&info("pc-sec")).await;
    assert_eq!(res.status, ResultStatus::Succeeded, "{res:?}");
    let Some(ResultOutput::PackageInfo(p)) = &res.output else {
        panic!("{res:?}");
    };
    assert_eq!(p.installed[0].version, "1.0");
    assert_eq!(p.candidate_version.as_deref(), Some("1.0+deb12u1"));
    assert_eq!(p.candidate_origins, ["bookworm-security"]);
    assert!(p.security_update);
    assert!(res.summary.contains("(security update)"), "{}", res.summary);
    let res = ops.handle(&info("pc-upd")).await;
    let Some(ResultOutput::PackageInfo(p)) = &res.output else {
        panic!("{res:?}");
    };
    assert_eq!(p.candidate_version.as_deref(), Some("1.1+security1"));
    assert_eq!(p.candidate_origins, ["bookworm-updates"]);
    assert!(!p.security_update, "the version string must not decide");
}

/// With `APT::Get::Purge` set (as an administrator may set it in apt.conf), apt plans a
/// removal as a `Purg` line: it is a removal like `Remv`, and the install is refused.
async fn a_purge_in_the_plan_is_a_removal_and_refuses_the_install() {
    let (_tmp, mut opts) = private_root();
    opts.config.push(("APT::Get::Purge".into(), "true".into()));
    refresh(&opts).await;
    let targets = vec![common::target("pc-new", "1.1")];
    let out = ProcessExecutor::new()
        .run(patchctl_agent::exec::ExecRequest::from_argv(
            &apt::install_simulate_argv(&opts, &targets),
        ))
        .await
        .unwrap();
    assert!(
        out.stdout.lines().any(|l| l.starts_with("Purg pc-victim")),
        "apt did not plan a purge: {}",
        out.stdout
    );
    let exec = Arc::new(ProcessExecutor::new());
    let ops = ops(exec.clone(), opts);
    let res = ops.handle(&install("pc-new", "1.1")).await;
    assert_eq!(res.status, ResultStatus::Failed, "{res:?}");
    assert!(
        res.summary.contains("would remove pc-victim"),
        "{}",
        res.summary
    );
    assert!(
        exec.history().iter().all(|argv| argv[1] == "-s"),
        "only simulations ran: {:?}",
        exec.history()
    );
}

/// The executor cuts output past its cap; a plan read in part is refused whole, even
/// though the part read looks acceptable.
async fn a_plan_cut_short_by_the_executor_is_refused() {
    let (_tmp, opts) = private_root();
    refresh(&opts).await;
    let targets = vec![common::target("pc-sec", "1.0+deb12u1")];
    let backend = AptBackend::new(opts);
    common::assert_a_cut_plan_is_refused(&backend, Family::Apt, &targets).await;
}

/// `apt-get update` exits 0 when a repository cannot be reached; the report must say the
/// lists were not refreshed, and why, instead of `refreshed: true`. An unsigned
/// repository (no `trusted=yes`, no signature) is reported the same way.
async fn unreachable_and_unsigned_repositories_are_reported_not_refreshed() {
    // A port on loopback that nothing listens on: connection refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    for (what, extra_source, want) in [
        (
            "unreachable",
            format!("deb [trusted=yes] http://127.0.0.1:{port}/debian bookworm main\n"),
            format!("127.0.0.1:{port}"),
        ),
        ("unsigned", String::new(), "not signed".to_string()),
    ] {
        let (tmp, opts) = private_root();
        let sources = tmp.path().join("sources.list");
        let mut text = std::fs::read_to_string(&sources).unwrap();
        if what == "unsigned" {
            text = text.replace("[trusted=yes] ", "");
        }
        text.push_str(&extra_source);
        std::fs::write(&sources, text).unwrap();
        let exec = Arc::new(ProcessExecutor::new());
        let ops = ops(exec.clone(), opts);
        let res = ops
            .handle(&envelope("check_updates", serde_json::json!({})))
            .await;
        let Some(ResultOutput::Updates(report)) = &res.output else {
            panic!("{what}: no updates report: {res:?}");
        };
        assert!(!report.refreshed, "{what}: {report:?}");
        let error = report.refresh_error.as_deref().unwrap_or_default();
        assert!(error.contains(&want), "{what}: {error}");
        assert!(
            res.summary.contains("NOT refreshed"),
            "{what}: {}",
            res.summary
        );
    }
}
