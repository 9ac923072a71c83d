//! The updater's own parts: built-in roots, the running version, the floor of
//! rollback protection, the files on disk. The whole update, with real processes and
//! a real platform, is in `crates/patchctl/tests/selfupdate.rs`.

use super::files::{KnownRelease, file_sha256};
use super::*;
use patchctl_proto::release::UpdateStep;

#[test]
fn this_debug_build_trusts_the_test_root_and_says_so() {
    let t = self_test();
    assert_eq!(t.product, "patchctl-agent");
    assert_eq!(t.target, TARGET);
    assert!(t.roots >= 1, "{t:?}");
    let test_root = include_str!("../../../patchctl-release/testdata/test-root.pub")
        .lines()
        .find(|l| l.starts_with("ed25519:"))
        .unwrap();
    let hex = test_root.trim_start_matches("ed25519:");
    assert!(
        builtin_roots()
            .iter()
            .any(|(k, src)| *k == hex && src.starts_with("test")),
        "debug builds trust the test root: {:?}",
        builtin_roots()
    );
}

#[test]
fn the_running_version_is_the_release_whose_hash_the_binary_has() {
    let mut s = UpdateState::default();
    assert_eq!(s.running_version(Some("aa")), crate::VERSION);
    s.running = Some(KnownRelease {
        version: "0.3.0".into(),
        sha256: "aa".into(),
    });
    s.trial = Some(KnownRelease {
        version: "0.4.0".into(),
        sha256: "bb".into(),
    });
    assert_eq!(s.running_version(Some("aa")), "0.3.0");
    assert_eq!(s.running_version(Some("bb")), "0.4.0");
    // A binary replaced by a package upgrade reports its build's version.
    assert_eq!(s.running_version(Some("cc")), crate::VERSION);
    assert_eq!(s.running_version(None), crate::VERSION);
}

#[test]
fn the_floor_is_the_highest_of_record_running_and_build() {
    let mut s = UpdateState::default();
    let build = patchctl_release::ReleaseVersion::parse(crate::VERSION).unwrap();
    assert_eq!(s.highest(crate::VERSION), build);
    s.highest_accepted = Some("9.0.0".into());
    assert_eq!(s.highest("0.0.1").to_string(), "9.0.0");
    s.highest_accepted = Some("garbage".into());
    assert_eq!(s.highest("0.0.1"), build);
}

#[test]
fn state_and_events_survive_on_disk_and_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let s = UpdateState {
        highest_accepted: Some("0.2.0".into()),
        ..Default::default()
    };
    s.save(dir.path()).unwrap();
    assert_eq!(UpdateState::load(dir.path()), s);
    let mode = std::fs::metadata(dir.path().join("update.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let log = EventLog::new(dir.path());
    assert!(log.pending().is_empty());
    log.push(UpdateStep::Downloaded, "0.2.0", None);
    log.push(UpdateStep::Refused, "0.2.0", Some("bad".into()));
    assert_eq!(log.pending().len(), 2);
    log.delivered(1);
    let left = log.pending();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].step, UpdateStep::Refused);
    log.delivered(1);
    assert!(!dir.path().join("update-events.json").exists());
    for _ in 0..100 {
        log.push(UpdateStep::Refused, "0.2.0", None);
    }
    assert_eq!(log.pending().len(), 64);
}

#[test]
fn file_hash_is_sha256() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("f");
    std::fs::write(&p, b"abc").unwrap();
    assert_eq!(
        file_sha256(&p).unwrap(),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}

#[test]
fn only_a_native_executable_for_this_target_is_run() {
    let this = std::fs::read(std::env::current_exe().unwrap()).unwrap();
    assert_eq!(native_executable(&this[..20], TARGET), Ok(()));
    let script = b"#!/bin/sh\nexit 0\n__________";
    assert!(
        native_executable(script, TARGET)
            .unwrap_err()
            .contains("not an ELF")
    );
    assert!(native_executable(&this[..10], TARGET).is_err());
    let mut other = this[..20].to_vec();
    other[18..20].copy_from_slice(
        &(if TARGET.starts_with("x86_64") {
            183u16
        } else {
            62u16
        })
        .to_le_bytes(),
    );
    assert!(
        native_executable(&other, TARGET)
            .unwrap_err()
            .contains("ELF machine")
    );
    let mut bits32 = this[..20].to_vec();
    bits32[4] = 1;
    assert!(native_executable(&bits32, TARGET).is_err());
    assert!(native_executable(&this[..20], "riscv64gc-unknown-linux-gnu").is_err());
}
