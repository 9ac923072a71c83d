//! The agent's memory ceiling (`patchctl_agent::ceiling`), installed in this test
//! binary exactly as `main.rs` installs it in the agent's. Each case runs in a child
//! process of this binary (the test re-runs itself with `PATCHCTL_CEILING_CASE` set),
//! because reaching the ceiling ends the process:
//!
//! - a child that grows past a ceiling of what it holds plus 8 MiB is ended by the
//!   ceiling, with status 75 and its one line on stderr;
//! - the same child growing by 4 MiB under the same ceiling finishes normally (so the
//!   first case fails for the ceiling, not for something else);
//! - a scan of 2,000 packages (the agent's own code: read the dpkg status, build the
//!   state, hash, diff, encode, store) measured for its peak heap, which must stay
//!   far below the agent's ceiling.

#![allow(clippy::disallowed_methods)] // The test runs itself as a child.

use std::path::Path;
use std::process::Command;

use patchctl_agent::ceiling::{Ceiling, DEFAULT_CEILING, EXIT_MEMORY_CEILING};

#[global_allocator]
static ALLOCATOR: Ceiling = Ceiling::new(usize::MAX);

const CASE_ENV: &str = "PATCHCTL_CEILING_CASE";
const MIB: usize = 1024 * 1024;

/// Packages in the measured scan.
const SCAN_PACKAGES: usize = 2000;

/// Runs `case` in a child process of this binary; its status and outputs.
fn child(test: &str, case: &str) -> std::process::Output {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(CASE_ENV, case)
        .output()
        .unwrap()
}

/// Grows by `mib` MiB in 1 MiB steps, touching every page, under a ceiling of what it
/// holds now plus 8 MiB. Returns only if every step was allowed.
fn grow(mib: usize) {
    ALLOCATOR.set_limit(ALLOCATOR.in_use() + 8 * MIB);
    let mut kept: Vec<Vec<u8>> = Vec::with_capacity(64);
    for i in 0..mib {
        kept.push(vec![i as u8; MIB]);
        println!("held {} MiB", i + 1);
    }
    println!("grew by {mib} MiB, peak {} bytes", ALLOCATOR.peak());
}

#[test]
fn growing_past_the_ceiling_ends_the_process_with_its_status() {
    match std::env::var(CASE_ENV).as_deref() {
        Ok("past") => return grow(32),
        Ok("within") => return grow(4),
        Ok(_) => return,
        Err(_) => {}
    }
    let me = "growing_past_the_ceiling_ends_the_process_with_its_status";
    let within = child(me, "within");
    assert!(
        within.status.success(),
        "4 MiB under an 8 MiB ceiling must pass: {within:?}"
    );
    let past = child(me, "past");
    let stderr = String::from_utf8_lossy(&past.stderr);
    let stdout = String::from_utf8_lossy(&past.stdout);
    assert_eq!(
        past.status.code(),
        Some(EXIT_MEMORY_CEILING),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    assert!(
        stderr.contains("patchctl-agent: memory ceiling reached")
            && stderr.contains("exiting with status 75"),
        "{stderr}"
    );
    // It held up to the ceiling and not past it: at most 8 of the 1 MiB steps.
    let held = stdout.lines().filter(|l| l.starts_with("held ")).count();
    assert!((6..=8).contains(&held), "held {held} MiB\n{stdout}");
    assert!(!stdout.contains("grew by"), "{stdout}");
}

/// A dpkg status of `n` installed packages: this repository's real Debian 12 status
/// stanzas of installed packages, repeated under new names (`name-k`) until there are
/// `n`.
fn status_of(n: usize) -> String {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../patchctl-proto/tests/data/inventory/dpkg-status-bookworm.txt");
    let text = std::fs::read_to_string(fixture).unwrap();
    let stanzas: Vec<&str> = text
        .split("\n\n")
        .map(str::trim)
        .filter(|s| s.starts_with("Package:") && s.contains("\nStatus: install ok installed"))
        .collect();
    assert!(!stanzas.is_empty());
    let mut out = String::new();
    for i in 0..n {
        let s = stanzas[i % stanzas.len()];
        let (first, rest) = s.split_once('\n').unwrap();
        out.push_str(&format!("{first}-{}\n{rest}\n\n", i / stanzas.len()));
    }
    out
}

/// One scan of the agent's own work on `status`, as the runtime does it.
fn scan_once(status: &Path, state_dir: &Path) -> usize {
    use patchctl_agent::scan::{Acked, encode, upload_for};
    use patchctl_proto::scan::{PackageRow, ScanState};
    let parsed = patchctl_agent::inventory::dpkg::read_status(status).unwrap();
    let mut state = ScanState {
        system: patchctl_agent::sysinfo::collect(),
        package_manager: Some("dpkg".into()),
        packages: parsed
            .packages
            .iter()
            .map(PackageRow::from_package)
            .collect(),
        updates: None,
    };
    state.canonicalize();
    let upload = upload_for(&state, None, chrono::Utc::now());
    let (bytes, gzip) = encode(&upload).unwrap();
    assert!(gzip && !bytes.is_empty());
    let acked = Acked {
        digest: upload.digest,
        state,
    };
    acked.save(state_dir).unwrap();
    acked.state.packages.len()
}

#[test]
fn a_scan_of_2000_packages_stays_far_below_the_ceiling() {
    match std::env::var(CASE_ENV).as_deref() {
        Ok("scan") => {}
        Ok(_) => return,
        Err(_) => {
            let me = "a_scan_of_2000_packages_stays_far_below_the_ceiling";
            let out = child(me, "scan");
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success(), "{out:?}");
            let peak: usize = stdout
                .lines()
                .find_map(|l| l.split_once("scan peak bytes: ").map(|(_, v)| v))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or_else(|| panic!("no peak in {stdout}"));
            println!(
                "a scan of {SCAN_PACKAGES} packages: peak heap {:.1} MiB (ceiling {} MiB)",
                peak as f64 / MIB as f64,
                DEFAULT_CEILING / MIB
            );
            // The agent's ceiling leaves a scan at least four times its need.
            assert!(peak * 4 < DEFAULT_CEILING, "peak {peak} bytes");
            return;
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let status = dir.path().join("status");
    std::fs::write(&status, status_of(SCAN_PACKAGES)).unwrap();
    // The agent's ceiling, as the binary has it.
    ALLOCATOR.set_limit(DEFAULT_CEILING);
    let base = ALLOCATOR.in_use();
    ALLOCATOR.reset_peak();
    let n = scan_once(&status, dir.path());
    assert_eq!(n, SCAN_PACKAGES);
    println!("scan peak bytes: {}", ALLOCATOR.peak() - base);
}
