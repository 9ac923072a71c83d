//! The systemd unit shipped in `dist/patchctl.service`: `systemd-analyze verify` accepts
//! it, it runs the agent from the documented path as `patchctl` in the journal, and its
//! settings are the ones package managers and maintainer scripts need (the reasons are
//! the unit's comments; `unit_sandbox.rs` installs a real package under it). The same
//! checks run against the unit as it was before issue 10 and find what was wrong with
//! it, so they can fail; `systemd-analyze security` confirms systemd reads the unit the
//! same way. Issue 15: the unit states low CPU and IO weights and no limit that could
//! stop or stall an install.

// The harness runs systemd-analyze; the no-spawn rule is for agent code.
#![allow(clippy::disallowed_methods)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::unit::{Unit, shipped_text};
use patchctl_testkit::{Harness, Need, trial};
use serde_json::Value;

/// The unit before issue 10 (UMask=0077, CAP_MAC_ADMIN dropped, ProtectClock, the
/// default KillMode): what the checks must reject.
const BEFORE: &str = include_str!("data/dist/patchctl.service.before-issue-10");

fn main() -> std::process::ExitCode {
    Harness::new()
        .test(trial!(the_unit_gives_package_managers_what_they_need))
        .test(
            trial!(unit_verifies_and_keeps_its_promises).needs([Need::Program("systemd-analyze")]),
        )
        .test(
            trial!(systemd_reads_the_sandbox_the_same_way)
                .needs([Need::Program("systemd-analyze")]),
        )
        .run()
}

/// Settings that break a package install, a maintainer script or a kernel/bootloader
/// hook when set (the unit's comments say which package needs what).
const BREAKING: &[&str] = &[
    "ProtectSystem",
    "ReadOnlyPaths",
    "NoNewPrivileges",
    "RestrictSUIDSGID",
    "PrivateDevices",
    "DevicePolicy",
    "DeviceAllow",
    "ProtectClock",
    "ProtectKernelModules",
    "ProtectKernelTunables",
    "ProtectHome",
    "ProtectHostname",
    "SystemCallArchitectures",
    "SystemCallFilter",
    "RestrictAddressFamilies",
    "RestrictNamespaces",
    "MemoryDenyWriteExecute",
    "ProtectProc",
    "ProcSubset",
    "PrivateUsers",
    "PrivateNetwork",
    "IPAddressDeny",
    "User",
    "DynamicUser",
];

/// Capabilities maintainer scripts use (the unit's comments say which).
const NEEDED_CAPABILITIES: &[&str] = &[
    "CAP_SYS_ADMIN",
    "CAP_SYS_MODULE",
    "CAP_MAC_ADMIN",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_SYS_PTRACE",
    "CAP_SYS_RAWIO",
    "CAP_AUDIT_CONTROL",
    "CAP_MKNOD",
    "CAP_SETFCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_CHOWN",
    "CAP_FOWNER",
    "CAP_DAC_OVERRIDE",
    "CAP_SETUID",
    "CAP_SETGID",
];

/// What is wrong with `unit` for a package-manager agent; empty when nothing is.
fn problems(unit: &Unit) -> Vec<String> {
    let mut out = Vec::new();
    for key in BREAKING {
        let set = match *key {
            // An explicit `no` is harmless; anything else restricts.
            "ProtectSystem"
            | "ProtectHome"
            | "ProtectHostname"
            | "ProtectClock"
            | "ProtectKernelModules"
            | "ProtectKernelTunables"
            | "PrivateDevices"
            | "NoNewPrivileges"
            | "RestrictSUIDSGID"
            | "MemoryDenyWriteExecute"
            | "PrivateUsers"
            | "PrivateNetwork"
            | "DynamicUser" => unit.yes(key),
            _ => unit.get(key).is_some_and(|v| !v.is_empty()),
        };
        if set {
            out.push(format!("{key} is set"));
        }
    }
    if unit.umask() != 0o022 {
        out.push(format!("UMask is {:04o}, not 0022", unit.umask()));
    }
    let kept = unit.bounding_set();
    for cap in NEEDED_CAPABILITIES {
        if !kept.contains(cap) {
            out.push(format!("{cap} is dropped"));
        }
    }
    if unit.get("KillMode") != Some("process") {
        out.push("KillMode is not process".into());
    }
    if unit.timeout_stop_secs() < 3600 {
        out.push(format!(
            "TimeoutStopSec is {} s, shorter than an install",
            unit.timeout_stop_secs()
        ));
    }
    if !unit
        .values("RestartPreventExitStatus")
        .iter()
        .any(|v| v.split_whitespace().any(|s| s == "78"))
    {
        out.push("RestartPreventExitStatus does not hold 78".into());
    }
    if unit.get("OOMPolicy") != Some("continue") {
        out.push("OOMPolicy is not continue".into());
    }
    out.extend(resource_problems(unit));
    out
}

/// Limits that could kill or stall an install if set on the agent's unit (every child
/// runs in its cgroup), and scheduling settings every child would inherit.
const LIMITS: &[&str] = &[
    "CPUQuota",
    "MemoryMax",
    "MemoryHigh",
    "MemoryLimit",
    "MemorySwapMax",
    "TasksMax",
    "IOReadBandwidthMax",
    "IOWriteBandwidthMax",
    "IOReadIOPSMax",
    "IOWriteIOPSMax",
    "LimitAS",
    "LimitDATA",
    "LimitRSS",
    "Nice",
    "IOSchedulingClass",
    "IOSchedulingPriority",
    "CPUSchedulingPolicy",
];

/// Issue 15: the unit states low CPU and IO weights (proportional shares, below the
/// default 100) and no limit.
fn resource_problems(unit: &Unit) -> Vec<String> {
    let mut out = Vec::new();
    for key in ["CPUWeight", "IOWeight"] {
        match unit.get(key).map(str::parse::<u32>) {
            Some(Ok(w)) if (1..100).contains(&w) => {}
            Some(_) => out.push(format!("{key} is not a weight below the default 100")),
            None => out.push(format!("{key} is not set")),
        }
    }
    for key in LIMITS {
        if unit
            .get(key)
            .is_some_and(|v| !v.is_empty() && v != "infinity")
        {
            out.push(format!("{key} limits every install"));
        }
    }
    out
}

fn the_unit_gives_package_managers_what_they_need() {
    let unit = Unit::shipped();
    assert_eq!(problems(&unit), Vec::<String>::new());
    // What is still cut: nothing a package manager runs needs it.
    let kept = unit.bounding_set();
    for cap in [
        "CAP_SYS_BOOT",
        "CAP_SYS_TIME",
        "CAP_SYSLOG",
        "CAP_WAKE_ALARM",
    ] {
        assert!(!kept.contains(&cap), "{cap} should be dropped");
    }
    for key in [
        "PrivateTmp",
        "ProtectControlGroups",
        "ProtectKernelLogs",
        "LockPersonality",
        "RestrictRealtime",
    ] {
        assert!(unit.yes(key), "{key} should stay on");
    }
    assert_eq!(unit.get("CPUWeight"), Some("20"));
    assert_eq!(unit.get("IOWeight"), Some("20"));
    // The resource check can fail: a cap, an inherited nice value, a default weight.
    let capped = Unit::parse(&shipped_text().replace(
        "CPUWeight=20\n",
        "CPUWeight=100\nMemoryMax=64M\nCPUQuota=20%\nNice=10\n",
    ));
    let mut capped = resource_problems(&capped);
    capped.sort();
    assert_eq!(
        capped,
        [
            "CPUQuota limits every install",
            "CPUWeight is not a weight below the default 100",
            "MemoryMax limits every install",
            "Nice limits every install",
        ]
    );
    assert_eq!(unit.get("SyslogIdentifier"), Some("patchctl"));
    assert_eq!(unit.get("StateDirectoryMode"), Some("0700"));

    // The unit before issue 10 fails exactly where it broke packages.
    let mut before = problems(&Unit::parse(BEFORE));
    before.sort();
    let mut want = vec![
        "CAP_MAC_ADMIN is dropped",
        "CAP_NET_ADMIN is dropped",
        "CAP_NET_RAW is dropped",
        "CAP_SYS_PTRACE is dropped",
        "CAP_SYS_RAWIO is dropped",
        "CAP_AUDIT_CONTROL is dropped",
        "CPUWeight is not set",
        "IOWeight is not set",
        "KillMode is not process",
        "OOMPolicy is not continue",
        "ProtectClock is set",
        "ProtectHome is set",
        "ProtectHostname is set",
        "RestartPreventExitStatus does not hold 78",
        "RestrictAddressFamilies is set",
        "SystemCallArchitectures is set",
        "TimeoutStopSec is 30 s, shorter than an install",
        "UMask is 0077, not 0022",
    ];
    want.sort();
    assert_eq!(before, want);
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

/// The unit with ExecStart pointing at the agent binary of this build (verify wants it
/// to exist).
fn local_text() -> String {
    let agent = Path::new(env!("CARGO_BIN_EXE_patchctl")).with_file_name("patchctl-agent");
    shipped_text().replace(
        "/opt/patchctl/bin/patchctl-agent",
        &agent.display().to_string(),
    )
}

fn unit_verifies_and_keeps_its_promises() {
    let unit = Unit::shipped();
    assert_eq!(
        unit.get("ExecStart"),
        Some("/opt/patchctl/bin/patchctl-agent run --config /etc/patchctl/config.json")
    );
    let local = local_text();
    let (ok, err) = verify(&local);
    assert!(ok, "systemd-analyze verify: {err}");
    // And the check can fail.
    let (ok, _) = verify(&local.replace("PrivateTmp=yes", "PrivateTmp=maybe\nBogusKey=1"));
    assert!(!ok, "a broken unit must not verify");
}

/// `systemd-analyze security --offline=yes --json=short`: setting name → whether
/// systemd counts it as set.
fn security(text: &str) -> (Vec<(String, Option<bool>)>, String) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("patchctl.service");
    std::fs::write(&p, text).unwrap();
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--json=short"])
        .arg(&p)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let rows: Vec<Value> = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "systemd-analyze security: {e}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let rows = rows
        .iter()
        .map(|r| {
            (
                r["json_field"].as_str().unwrap().to_owned(),
                r["set"].as_bool(),
            )
        })
        .collect();
    (rows, stdout)
}

fn systemd_reads_the_sandbox_the_same_way() {
    let check = |text: &str| -> Vec<String> {
        let (rows, raw) = security(text);
        let set = |field: &str| -> Option<bool> {
            rows.iter()
                .find(|(f, _)| f == field)
                .unwrap_or_else(|| panic!("no {field} in {raw}"))
                .1
        };
        let mut wrong = Vec::new();
        // Off: each would take away something a maintainer script or hook needs.
        for field in [
            "PrivateDevices",
            "ProtectClock",
            "DeviceAllow",
            "ProtectKernelModules",
            "ProtectKernelTunables",
            // (ProtectHome=read-only counts as unset here, with a lower exposure:
            // `problems` checks it.)
            "ProtectHostname",
            "SystemCallArchitectures",
            "RestrictAddressFamilies_OTHER",
            "NoNewPrivileges",
            "RestrictSUIDSGID",
            "ProtectSystem",
            "CapabilityBoundingSet_CAP_MAC",
            "CapabilityBoundingSet_CAP_SYS_MODULE",
            "CapabilityBoundingSet_CAP_SYS_ADMIN",
            "CapabilityBoundingSet_CAP_SYS_PTRACE",
            "CapabilityBoundingSet_CAP_SYS_RAWIO",
            "CapabilityBoundingSet_CAP_NET_ADMIN",
            // systemd-analyze names it "world-readable by default": what children need.
            "UMask",
        ] {
            if set(field) != Some(false) {
                wrong.push(format!("{field} restricts"));
            }
        }
        // On: nothing a package manager runs needs what they take.
        for field in [
            "PrivateTmp",
            "ProtectControlGroups",
            "ProtectKernelLogs",
            "LockPersonality",
            "RestrictRealtime",
            "CapabilityBoundingSet_CAP_SYS_TIME",
            "CapabilityBoundingSet_CAP_SYS_BOOT",
            "CapabilityBoundingSet_CAP_SYSLOG",
        ] {
            if set(field) != Some(true) {
                wrong.push(format!("{field} is off"));
            }
        }
        wrong
    };
    assert_eq!(check(&local_text()), Vec::<String>::new());
    let mut before = check(BEFORE);
    before.sort();
    assert_eq!(
        before,
        [
            "CapabilityBoundingSet_CAP_MAC restricts",
            "CapabilityBoundingSet_CAP_NET_ADMIN restricts",
            "CapabilityBoundingSet_CAP_SYS_PTRACE restricts",
            "CapabilityBoundingSet_CAP_SYS_RAWIO restricts",
            "ProtectClock restricts",
            "ProtectHostname restricts",
            "RestrictAddressFamilies_OTHER restricts",
            "SystemCallArchitectures restricts",
            "UMask restricts",
        ]
    );
}
