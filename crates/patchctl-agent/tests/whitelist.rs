//! The whitelist gate: commands outside the four operations, or with injected
//! parameters, are rejected and never reach a process. The assertion is on the real
//! executor's own record of what it ran; a valid command on the same set-up does reach
//! it, so the test can fail.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use patchctl_agent::exec::{Executor, ProcessExecutor};
use patchctl_agent::ops::{LinkState, Operations};
use patchctl_agent::pkgmgr::{Family, backend_for};
use patchctl_proto::command::{CommandEnvelope, ResultStatus};
use patchctl_testkit::{Harness, Need, trial};
use serde_json::{Value, json};
use uuid::Uuid;

fn main() -> std::process::ExitCode {
    Harness::new()
        .test(trial!(async rejected_commands_never_reach_a_process))
        .test(trial!(async without_a_package_manager_operations_say_so_and_run_nothing))
        // install_updates needs root to reach the family check.
        .test(
            trial!(async names_invalid_for_the_family_are_refused_before_anything_runs)
                .needs([Need::Root]),
        )
        .test(
            trial!(async get_package_info_reads_the_real_dpkg_database)
                .needs([Need::File("/var/lib/dpkg/status")]),
        )
        .test(trial!(async health_check_reports_every_check))
        .run()
}

fn ops(exec: Arc<ProcessExecutor>) -> Operations {
    let root = tempfile::tempdir().unwrap();
    // The dnf backend runs `rpm -q` for get_package_info, so a command that got past
    // the gate would show up in the executor's history.
    Operations::new(
        exec,
        root.path(),
        None,
        Duration::from_secs(300),
        Arc::new(Mutex::new(LinkState::default())),
    )
    .with_backend(Some(backend_for(Family::Dnf)))
}

fn envelope(kind: &str, params: Value) -> CommandEnvelope {
    CommandEnvelope {
        id: Uuid::new_v4(),
        kind: kind.into(),
        params,
        queued_at: Utc::now(),
        // `Operations::handle` runs what admission (the signature check, `admit`)
        // already let through; these tests start there.
        signed: None,
    }
}

async fn rejected_commands_never_reach_a_process() {
    let exec = Arc::new(ProcessExecutor::new());
    let ops = ops(exec.clone());
    let long = "a".repeat(10_000);
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "run_script",
            json!({"script": "id"}),
            "unknown command kind",
        ),
        ("shell", json!({}), "unknown command kind"),
        ("", json!({}), "unknown command kind"),
        ("health_check; id", json!({}), "unknown command kind"),
        (
            "get_package_info",
            json!({"name": "-oAPT::x"}),
            "must start with a letter or digit",
        ),
        ("get_package_info", json!({"name": "foo;rm"}), "';'"),
        ("get_package_info", json!({"name": "foo*"}), "'*'"),
        ("get_package_info", json!({"name": "foo bar"}), "' '"),
        (
            "get_package_info",
            json!({"name": " foo"}),
            "must start with",
        ),
        ("get_package_info", json!({"name": "foo\tbar"}), "'\\t'"),
        ("get_package_info", json!({"name": "foo\u{0}"}), "'\\0'"),
        ("get_package_info", json!({"name": "foo\nbar"}), "'\\n'"),
        (
            "get_package_info",
            json!({"name": "$(id)"}),
            "must start with",
        ),
        ("get_package_info", json!({"name": long}), "at most 128"),
        (
            "get_package_info",
            json!({"name": ["dpkg"]}),
            "invalid type",
        ),
        ("get_package_info", json!({}), "missing field `name`"),
        (
            "get_package_info",
            json!({"name": "dpkg", "opts": "-x"}),
            "unknown field `opts`",
        ),
        ("health_check", json!({"verbose": true}), "unknown field"),
        ("check_updates", json!("all"), "invalid"),
        ("install_updates", json!({"packages": []}), "no packages"),
        (
            "install_updates",
            json!({"packages": [{"name": "openssl", "version": "3.0; reboot"}]}),
            "package version",
        ),
        (
            "install_updates",
            json!({"packages": [{"name": "openssl", "version": "1", "repo": "evil"}]}),
            "unknown field `repo`",
        ),
    ];
    for (kind, params, want) in cases {
        let env = envelope(kind, params.clone());
        let r = ops.handle(&env).await;
        assert_eq!(r.status, ResultStatus::Rejected, "{kind} {params}: {r:?}");
        assert_eq!(r.command_id, env.id);
        assert!(r.summary.contains(want), "{kind} {params}: {}", r.summary);
        assert!(r.output.is_none());
    }
    assert_eq!(
        exec.history(),
        Vec::<Vec<String>>::new(),
        "a rejected command reached a process"
    );

    // Positive control: a valid command does reach the executor, with the name after "--".
    let r = ops
        .handle(&envelope(
            "get_package_info",
            json!({"name": "openssl-libs"}),
        ))
        .await;
    assert_ne!(r.status, ResultStatus::Rejected, "{r:?}");
    let h = exec.history();
    // `rpm -q -- NAME` for what is installed, then `dnf -q list -- NAME` for the candidate.
    assert!(!h.is_empty(), "{h:?}");
    assert_eq!(h[0][0], "/usr/bin/rpm");
    for argv in &h {
        assert_eq!(argv.last().unwrap(), "openssl-libs", "{argv:?}");
        assert_eq!(argv[argv.len() - 2], "--", "{argv:?}");
    }
}

async fn without_a_package_manager_operations_say_so_and_run_nothing() {
    let exec = Arc::new(ProcessExecutor::new());
    let ops = ops(exec.clone()).with_backend(None);
    for (kind, params) in [
        ("check_updates", json!({})),
        ("get_package_info", json!({"name": "openssl"})),
        (
            "install_updates",
            json!({"packages": [{"name": "openssl", "version": "3.0.15-1~deb12u1"}]}),
        ),
    ] {
        let r = ops.handle(&envelope(kind, params)).await;
        assert_eq!(r.status, ResultStatus::Failed, "{kind}");
        let root = nix::unistd::geteuid().is_root();
        let want = if kind == "install_updates" && !root {
            "needs root"
        } else {
            "no supported package manager"
        };
        assert!(r.summary.contains(want), "{kind}: {}", r.summary);
    }
    assert!(exec.history().is_empty());
}

async fn names_invalid_for_the_family_are_refused_before_anything_runs() {
    let exec = Arc::new(ProcessExecutor::new());
    // Upper case passes the generic name check but not Debian policy.
    let ops = ops(exec.clone()).with_backend(Some(backend_for(Family::Apt)));
    let r = ops
        .handle(&envelope(
            "install_updates",
            json!({"packages": [{"name": "OpenSSL", "version": "3.0.15-1~deb12u1"}]}),
        ))
        .await;
    assert_eq!(r.status, ResultStatus::Rejected, "{r:?}");
    assert!(r.summary.contains("lower-case"), "{}", r.summary);
    // A version that is not a dpkg version.
    let r = ops
        .handle(&envelope(
            "install_updates",
            json!({"packages": [{"name": "openssl", "version": "1:"}]}),
        ))
        .await;
    assert_eq!(r.status, ResultStatus::Rejected, "{r:?}");
    assert!(exec.history().is_empty(), "{:?}", exec.history());
}

async fn get_package_info_reads_the_real_dpkg_database() {
    let exec = Arc::new(ProcessExecutor::new());
    let ops = Operations::new(
        exec.clone(),
        std::path::Path::new("/"),
        None,
        Duration::from_secs(300),
        Arc::new(Mutex::new(LinkState::default())),
    );
    assert_eq!(ops.family(), Some(Family::Apt));
    let r = ops
        .handle(&envelope("get_package_info", json!({"name": "dpkg"})))
        .await;
    assert_eq!(r.status, ResultStatus::Succeeded, "{r:?}");
    let out = serde_json::to_value(&r.output).unwrap();
    assert_eq!(out["installed"][0]["name"], "dpkg");
    assert_eq!(out["package_manager"], "dpkg");
    let r = ops
        .handle(&envelope(
            "get_package_info",
            json!({"name": "surely-not-installed-pkg"}),
        ))
        .await;
    assert_eq!(r.status, ResultStatus::Succeeded);
    assert!(r.summary.contains("not installed"));
    // Installed versions come from the status file; the only process is apt-cache
    // policy for the candidate, once per query, with the validated name last.
    let h = exec.history();
    assert_eq!(h.len(), 2, "{h:?}");
    assert_eq!(h[0], ["/usr/bin/apt-cache", "policy", "dpkg"]);
    assert_eq!(
        h[1],
        ["/usr/bin/apt-cache", "policy", "surely-not-installed-pkg"]
    );
}

async fn health_check_reports_every_check() {
    let exec = Arc::new(ProcessExecutor::new());
    let link = Arc::new(Mutex::new(LinkState {
        last_contact: Some(Utc::now()),
        last_rtt: Some(Duration::from_millis(3)),
        clock_skew_secs: Some(400.0),
        last_error: None,
    }));
    let ops = Operations::new(
        exec.clone(),
        std::path::Path::new("/"),
        None,
        Duration::from_secs(300),
        link,
    );
    let r = ops.handle(&envelope("health_check", json!({}))).await;
    let out = serde_json::to_value(&r.output).unwrap();
    let checks = out["checks"].as_array().unwrap();
    let get = |n: &str| {
        checks
            .iter()
            .find(|c| c["name"] == n)
            .unwrap_or_else(|| panic!("no {n}: {out}"))
            .clone()
    };
    assert_eq!(get("server")["status"], "ok");
    assert_eq!(get("clock")["status"], "fail", "400 s of skew must fail");
    assert!(get("disk:/")["status"].is_string());
    assert!(get("package_lock")["detail"].is_string());
    assert_eq!(
        r.status,
        ResultStatus::Failed,
        "a failing check fails the result"
    );
    assert!(r.summary.contains("clock"));
    assert!(exec.history().is_empty());
}
