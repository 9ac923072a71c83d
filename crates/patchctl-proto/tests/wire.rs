//! What the agent sends is exactly what PRODUCT.md allows.
//!
//! Every agent→platform message is built with every optional field filled, serialised,
//! and each JSON path compared with the allow-list below, grouped by the PRODUCT.md
//! category it falls under. A new field fails this test until it is added here, under
//! an allowed category, by someone who read the promise. Fixtures of protocol v1
//! messages must keep parsing.

use std::collections::BTreeSet;

use chrono::{TimeZone, Utc};
use patchctl_proto::Secret;
use patchctl_proto::agent::*;
use patchctl_proto::command::*;
use serde_json::Value;
use uuid::Uuid;

/// PRODUCT.md, "Data it sends": system identification (hostname, IPs, OS), hardware
/// (CPU, RAM, disk), package list and versions, update availability, command results.
/// Plus the protocol's own bookkeeping (versions, the enrollment key, timestamps).
const ALLOWED: &[(&str, &[&str])] = &[
    (
        "protocol",
        &[
            "enroll.protocol_version",
            "enroll.license_key",
            "enroll.agent_version",
            "heartbeat.agent_version",
            // The agent's own life cycle (self-update): its build target, and each
            // step of an update with the version and the reason of a refusal.
            "heartbeat.agent_target",
            "heartbeat.update_events[].at",
            "heartbeat.update_events[].step",
            "heartbeat.update_events[].version",
            "heartbeat.update_events[].detail",
            "heartbeat.trial",
            // When the host booted: the platform tells by it that a host came back
            // after a reboot (the same fact as the uptime, as a time).
            "heartbeat.booted_at",
            // The id of the command-signing key the agent trusts (a hash of a public
            // key the platform gave it): the platform answers with the rotations.
            "heartbeat.command_key_id",
            // The serial of the approver list it holds (signed by that key).
            "heartbeat.approvers_serial",
            "inventory.scanned_at",
            "inventory.package_manager",
            "scan.scanned_at",
            "scan.digest",
            "scan.body.kind",
            "scan.body.base",
            "scan.body.state.package_manager",
        ],
    ),
    (
        "system identification",
        &[
            "*.system.hostname",
            "*.system.ips[]",
            "*.system.os.id",
            "*.system.os.id_like[]",
            "*.system.os.version_id",
            "*.system.os.version_codename",
            "*.system.os.pretty_name",
            "*.system.kernel",
            "*.system.arch",
            // The labels the operator wrote into the agent's config (`tags`).
            "*.system.tags[]",
        ],
    ),
    (
        "hardware",
        &[
            "*.system.cpu_model",
            "*.system.cpu_count",
            "*.system.mem_total_bytes",
            "*.system.disks[].mount",
            "*.system.disks[].fs_type",
            "*.system.disks[].used_bytes",
            "*.system.disks[].total_bytes",
            "heartbeat.metrics.cpu_percent",
            "heartbeat.metrics.load[]",
            "heartbeat.metrics.mem_used_bytes",
            "heartbeat.metrics.mem_total_bytes",
            "heartbeat.metrics.swap_used_bytes",
            "heartbeat.metrics.swap_total_bytes",
            "heartbeat.metrics.disks[].mount",
            "heartbeat.metrics.disks[].fs_type",
            "heartbeat.metrics.disks[].used_bytes",
            "heartbeat.metrics.disks[].total_bytes",
            "heartbeat.metrics.uptime_secs",
        ],
    ),
    (
        "package list and versions",
        &[
            "inventory.packages[].name",
            "inventory.packages[].version",
            "inventory.packages[].arch",
            "inventory.packages[].source_name",
            "inventory.packages[].source_version",
            "inventory.packages[].status",
            // Compact rows: [name, version, arch, source_name, source_version, status]
            // and, for removals, [name, arch, version].
            "scan.body.state.packages[][]",
            "scan.body.added[][]",
            "scan.body.removed[][]",
        ],
    ),
    (
        "command results",
        &[
            "results.results[].command_id",
            "results.results[].status",
            "results.results[].summary",
            "results.results[].started_at",
            "results.results[].finished_at",
            "results.results[].output.type",
            "results.results[].output.agent_version",
            "results.results[].output.checks[].name",
            "results.results[].output.checks[].status",
            "results.results[].output.checks[].detail",
            // systemd units in the failed state (health of the patched host).
            "results.results[].output.failed_units[]",
            "results.results[].output.name",
            "results.results[].output.package_manager",
            "results.results[].output.candidate_version",
            "results.results[].output.candidate_origins[]",
            "results.results[].output.security_update",
            "results.results[].output.installed[].name",
            "results.results[].output.installed[].version",
            "results.results[].output.installed[].arch",
            "results.results[].output.installed[].source_name",
            "results.results[].output.installed[].source_version",
            "results.results[].output.installed[].status",
        ],
    ),
    (
        "update availability",
        &[
            "results.results[].output.refreshed",
            "results.results[].output.refresh_error",
            "results.results[].output.removals[]",
            "*.updates.refreshed",
            "*.updates.removals[]",
            "*.updates.error",
            "*.updates[].name",
            "*.updates[].arch",
            "*.updates[].current_version",
            "*.updates[].candidate_version",
            "*.updates[].origins[]",
            "*.updates[].security",
            "*.updates[].advisories[].id",
            "*.updates[].advisories[].kind",
            "*.updates[].advisories[].severity",
            "results.results[].output.refused[]",
            "results.results[].output.packages[].name",
            "results.results[].output.packages[].target_version",
            "results.results[].output.packages[].before",
            "results.results[].output.packages[].after",
            "results.results[].output.packages[].ok",
            "results.results[].output.reboot_required",
            "results.results[].output.reboot_reasons[]",
            "results.results[].output.reboot",
            // Whether the updates installed wait for a reboot, and why (the packages
            // or the kernel versions that ask for it).
            "heartbeat.reboot.required",
            "heartbeat.reboot.reasons[]",
            "scan.reboot.required",
            "scan.reboot.reasons[]",
            "results.results[].output.output_tail",
        ],
    ),
];

fn paths(prefix: &str, v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                paths(&format!("{prefix}.{k}"), v, out);
            }
        }
        Value::Array(a) => {
            if a.is_empty() {
                out.insert(format!("{prefix}[]"));
            }
            for v in a {
                paths(&format!("{prefix}[]"), v, out);
            }
        }
        _ => {
            out.insert(prefix.to_owned());
        }
    }
}

/// `*.a.b` matches any path ending in `.a.b`; anything else matches exactly.
fn matches(pat: &str, path: &str) -> bool {
    match pat.strip_prefix('*') {
        Some(rest) => path.ends_with(rest),
        None => path == pat,
    }
}

fn allowed(path: &str) -> Option<&'static str> {
    for (cat, list) in ALLOWED {
        for pat in *list {
            let ok = matches(pat, path);
            if ok {
                return Some(cat);
            }
        }
    }
    None
}

fn t() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, 12, 0, 0).unwrap()
}

fn system() -> SystemInfo {
    SystemInfo {
        hostname: "web-1".into(),
        ips: vec!["192.0.2.10".into(), "2001:db8::10".into()],
        os: OsInfo {
            id: "debian".into(),
            id_like: vec!["debian".into()],
            version_id: "12".into(),
            version_codename: "bookworm".into(),
            pretty_name: "Debian GNU/Linux 12 (bookworm)".into(),
        },
        kernel: "6.1.0-26-amd64".into(),
        arch: "x86_64".into(),
        cpu_model: "Intel(R) Xeon(R)".into(),
        cpu_count: 2,
        mem_total_bytes: 25_000_000_000,
        disks: vec![disk()],
        tags: vec!["web".into()],
    }
}

fn disk() -> DiskUsage {
    DiskUsage {
        mount: "/".into(),
        fs_type: "ext4".into(),
        used_bytes: 1,
        total_bytes: 2,
    }
}

fn package() -> InstalledPackage {
    InstalledPackage {
        name: "libuuid1".into(),
        version: "2.38.1-5+deb12u1".into(),
        arch: "amd64".into(),
        source_name: Some("util-linux".into()),
        source_version: Some("2.38.1-5+deb12u1".into()),
        status: "installed".into(),
    }
}

fn advisory() -> Advisory {
    Advisory {
        id: "ALSA-2024:1234".into(),
        kind: Some("security".into()),
        severity: Some("Important".into()),
    }
}

fn reboot() -> RebootState {
    RebootState {
        required: true,
        reasons: vec!["/run/reboot-required (linux-image-6.1.0-28-amd64)".into()],
    }
}

fn scan_updates() -> patchctl_proto::scan::ScanUpdates {
    patchctl_proto::scan::ScanUpdates {
        refreshed: true,
        updates: vec![AvailableUpdate {
            name: "openssl".into(),
            arch: "x86_64".into(),
            current_version: Some("1:3.0.7-25.el9".into()),
            candidate_version: "1:3.0.7-27.el9".into(),
            origins: vec!["baseos".into()],
            security: true,
            advisories: vec![advisory()],
        }],
        removals: vec!["old-lib".into()],
        error: Some("repository metadata could not be refreshed".into()),
    }
}

fn scan_samples() -> Vec<(&'static str, Value)> {
    use patchctl_proto::scan::*;
    let state = ScanState {
        system: system(),
        package_manager: Some("dpkg".into()),
        packages: vec![PackageRow::from_package(&package())],
        updates: Some(scan_updates()),
    };
    let upload = |body| {
        serde_json::to_value(ScanUpload {
            scanned_at: t(),
            digest: state.digest(),
            body,
            reboot: Some(reboot()),
        })
        .unwrap()
    };
    vec![
        (
            "scan",
            upload(ScanBody::Full {
                state: state.clone(),
            }),
        ),
        (
            "scan",
            upload(ScanBody::Delta {
                base: state.digest(),
                system: Some(system()),
                added: vec![PackageRow::from_package(&package())],
                removed: vec![PackageRow::from_package(&package()).key()],
                updates: Some(Some(scan_updates())),
            }),
        ),
        ("scan", upload(ScanBody::Unchanged)),
    ]
}

/// Every agent→platform message, every optional field set, every output variant.
fn samples() -> Vec<(&'static str, Value)> {
    let id = Uuid::from_u128(7);
    let result = |output| CommandResult {
        command_id: id,
        status: ResultStatus::Succeeded,
        summary: "ok".into(),
        started_at: t(),
        finished_at: t(),
        output,
    };
    vec![
        (
            "enroll",
            serde_json::to_value(EnrollRequest {
                protocol_version: 1,
                license_key: Secret::new("pek_x"),
                agent_version: "0.1.0".into(),
                system: system(),
            })
            .unwrap(),
        ),
        (
            "heartbeat",
            serde_json::to_value(HeartbeatRequest {
                agent_version: "0.1.0".into(),
                metrics: Metrics {
                    cpu_percent: 1.0,
                    load: [0.1, 0.2, 0.3],
                    mem_used_bytes: 1,
                    mem_total_bytes: 2,
                    swap_used_bytes: 0,
                    swap_total_bytes: 0,
                    disks: vec![disk()],
                    uptime_secs: 9,
                },
                agent_target: Some("x86_64-unknown-linux-gnu".into()),
                update_events: vec![patchctl_proto::release::UpdateEvent {
                    at: t(),
                    step: patchctl_proto::release::UpdateStep::RolledBack,
                    version: "0.2.0".into(),
                    detail: Some("the new binary exited".into()),
                }],
                trial: true,
                reboot: Some(reboot()),
                booted_at: Some(t()),
                command_key_id: Some("0123456789abcdef".into()),
                approvers_serial: Some(3),
            })
            .unwrap(),
        ),
        (
            "inventory",
            serde_json::to_value(InventoryUpload {
                scanned_at: t(),
                system: system(),
                package_manager: Some("dpkg".into()),
                packages: vec![package()],
            })
            .unwrap(),
        ),
        (
            "results",
            serde_json::to_value(ResultsUpload {
                results: vec![
                    result(None),
                    result(Some(ResultOutput::Health(HealthReport {
                        agent_version: "0.1.0".into(),
                        checks: vec![HealthItem {
                            name: "clock".into(),
                            status: HealthStatus::Ok,
                            detail: "ok".into(),
                        }],
                        failed_units: Some(vec!["nginx.service".into()]),
                    }))),
                    result(Some(ResultOutput::PackageInfo(PackageInfoReport {
                        name: "dpkg".into(),
                        package_manager: "dpkg".into(),
                        installed: vec![package()],
                        candidate_version: Some("1.21.23".into()),
                        candidate_origins: vec!["bookworm-security".into()],
                        security_update: true,
                    }))),
                    result(Some(ResultOutput::Updates(UpdatesReport {
                        package_manager: "dpkg".into(),
                        refreshed: false,
                        refresh_error: Some(
                            "the package lists were not fully refreshed: W: Failed to fetch".into(),
                        ),
                        updates: vec![AvailableUpdate {
                            name: "openssl".into(),
                            arch: "amd64".into(),
                            current_version: Some("3.0.11-1~deb12u2".into()),
                            candidate_version: "3.0.15-1~deb12u1".into(),
                            origins: vec!["Debian-Security:12/stable-security".into()],
                            security: true,
                            advisories: vec![advisory()],
                        }],
                        removals: vec!["old-lib".into()],
                    }))),
                    result(Some(ResultOutput::Install(InstallReport {
                        refused: vec!["would remove old-lib".into()],
                        packages: vec![InstallOutcome {
                            name: "openssl".into(),
                            target_version: "3.0.15-1~deb12u1".into(),
                            before: Some("3.0.11-1~deb12u2".into()),
                            after: Some("3.0.15-1~deb12u1".into()),
                            ok: true,
                        }],
                        reboot_required: true,
                        reboot_reasons: vec!["/run/reboot-required (libc6)".into()],
                        reboot: Some(RebootOutcome::Scheduled),
                        output_tail: "Setting up openssl".into(),
                    }))),
                ],
            })
            .unwrap(),
        ),
    ]
}

#[test]
fn agent_sends_only_allowed_fields() {
    let mut seen = BTreeSet::new();
    for (name, v) in samples().into_iter().chain(scan_samples()) {
        paths(name, &v, &mut seen);
    }
    let forbidden: Vec<&String> = seen.iter().filter(|p| allowed(p).is_none()).collect();
    assert!(
        forbidden.is_empty(),
        "fields outside PRODUCT.md's allowed data: {forbidden:#?}"
    );
    // Every allowed entry is exercised, so the list cannot rot into a blanket pass.
    for (cat, list) in ALLOWED {
        for pat in *list {
            let hit = seen.iter().any(|p| matches(pat, p));
            assert!(
                hit,
                "allow-list entry {pat} ({cat}) is not produced by any sample"
            );
        }
    }
}

#[test]
fn the_check_catches_a_forbidden_field() {
    let mut seen = BTreeSet::new();
    let mut v = samples().remove(1).1;
    v["environment"] = serde_json::json!({"HOME": "/root"});
    paths("heartbeat", &v, &mut seen);
    assert!(seen.iter().any(|p| allowed(p).is_none()));
}

#[test]
fn protocol_v1_fixtures_still_parse() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/v1");
    if std::env::var_os("PATCHCTL_BLESS").is_some() {
        for (name, v) in samples() {
            std::fs::write(
                dir.join(format!("{name}.json")),
                serde_json::to_string_pretty(&v).unwrap(),
            )
            .unwrap();
        }
    }
    let read = |n: &str| std::fs::read_to_string(dir.join(format!("{n}.json"))).unwrap();
    let e: EnrollRequest = serde_json::from_str(&read("enroll")).unwrap();
    assert_eq!(e.system.hostname, "web-1");
    let h: HeartbeatRequest = serde_json::from_str(&read("heartbeat")).unwrap();
    assert_eq!(h.metrics.uptime_secs, 9);
    let i: InventoryUpload = serde_json::from_str(&read("inventory")).unwrap();
    assert_eq!(i.packages[0].source_name.as_deref(), Some("util-linux"));
    let r: ResultsUpload = serde_json::from_str(&read("results")).unwrap();
    assert_eq!(r.results.len(), 3);
}
