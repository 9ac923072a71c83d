//! The systemd unit shipped in `dist/patchctl.service`: `systemd-analyze verify` accepts
//! it, it runs the agent from the documented path as `patchctl` in the journal, and its
//! hardening leaves package managers able to work.

// The harness runs systemd-analyze; the no-spawn rule is for agent code.
#![allow(clippy::disallowed_methods)]

use std::path::{Path, PathBuf};
use std::process::Command;

use patchctl_testkit::{Harness, Need, trial};

fn unit_text() -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dist/patchctl.service");
    std::fs::read_to_string(p).unwrap()
}

fn verify(text: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let p: PathBuf = dir.path().join("patchctl.service");
    std::fs::write(&p, text).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&p)
        .output();
    let out = out.unwrap_or_else(|e| panic!("systemd-analyze: {e}"));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.success() && stderr.trim().is_empty(), stderr)
}

fn main() -> std::process::ExitCode {
    Harness::new()
        .test(
            trial!(unit_verifies_and_keeps_its_promises).needs([Need::Program("systemd-analyze")]),
        )
        .run()
}

fn unit_verifies_and_keeps_its_promises() {
    let text = unit_text();
    assert!(text.contains(
        "ExecStart=/opt/patchctl/bin/patchctl-agent run --config /etc/patchctl/config.json"
    ));
    assert!(text.contains("SyslogIdentifier=patchctl"));
    // Package managers write /usr, /etc, /boot and create setuid files.
    for breaking in [
        "ProtectSystem=",
        "RestrictSUIDSGID=yes",
        "ProtectKernelModules=yes",
        "ReadOnlyPaths=/usr",
        "NoNewPrivileges=yes",
    ] {
        assert!(
            !text.contains(breaking),
            "{breaking} would break package installs"
        );
    }
    // verify wants ExecStart to exist: point it at a binary that does.
    let agent = Path::new(env!("CARGO_BIN_EXE_patchctl")).with_file_name("patchctl-agent");
    let local = text.replace(
        "/opt/patchctl/bin/patchctl-agent",
        &agent.display().to_string(),
    );
    let (ok, err) = verify(&local);
    assert!(ok, "systemd-analyze verify: {err}");
    // And the check can fail.
    let (ok, _) = verify(&local.replace("ProtectHome=read-only", "ProtectHome=maybe\nBogusKey=1"));
    assert!(!ok, "a broken unit must not verify");
}
