//! The agent's unit tests that need this machine to have something: root (to chown a
//! config file to someone else) or a real program for the executor to run. They were
//! `#[cfg(test)]` tests in `src/config.rs` and `src/exec.rs` that skipped by printing a
//! line; here the patchctl-testkit harness reports a missing prerequisite as a skip with
//! its reason (a failure under `CI=true`).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use patchctl_agent::config::AgentConfig;
use patchctl_agent::exec::{ExecRequest, Executor, ProcessExecutor};
use patchctl_testkit::{Harness, Need, trial};

fn main() -> std::process::ExitCode {
    Harness::new()
        // Root: chown the test file and directory to nobody.
        .test(trial!(refuses_foreign_owner).needs([Need::Root]))
        .test(
            trial!(async runs_with_clean_environment_and_caps_output)
                .needs([Need::Program("/usr/bin/dpkg-query")]),
        )
        .run()
}

const GOOD: &str = r#"{"server_url": "https://patch.example:8443", "license_key": "canary-key-1"}"#;

fn write(dir: &Path, text: &str, mode: u32) -> PathBuf {
    let p = dir.join("config.json");
    std::fs::write(&p, text).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    p
}

fn private_dir() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    d
}

fn refuses_foreign_owner() {
    let d = private_dir();
    let p = write(d.path(), GOOD, 0o600);
    let nobody = nix::unistd::Uid::from_raw(65534);
    nix::unistd::chown(&p, Some(nobody), None).unwrap();
    let e = AgentConfig::load(&p).unwrap_err().to_string();
    assert!(e.contains("owned by uid 65534, not by root"), "{e}");
    assert!(e.contains("chown root:root"), "{e}");
    // And the directory.
    let d = private_dir();
    let p = write(d.path(), GOOD, 0o600);
    nix::unistd::chown(d.path(), Some(nobody), None).unwrap();
    let e = AgentConfig::load(&p).unwrap_err().to_string();
    assert!(
        e.contains("directory") && e.contains("owned by uid 65534"),
        "{e}"
    );
}

async fn runs_with_clean_environment_and_caps_output() {
    let ex = ProcessExecutor::new();
    let mut req = ExecRequest::from_argv(&[
        "/usr/bin/dpkg-query".into(),
        "-W".into(),
        "-f".into(),
        "${Package}\n".into(),
    ]);
    req.max_output = 64;
    let out = ex.run(req).await.unwrap();
    assert!(out.success(), "{out:?}");
    assert!(out.truncated);
    assert!(out.stdout.len() <= 64);
    assert_eq!(ex.history().len(), 1);
    assert_eq!(ex.history()[0][0], "/usr/bin/dpkg-query");
}
