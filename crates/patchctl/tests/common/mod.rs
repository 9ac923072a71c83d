//! Helpers shared by the integration tests of the `patchctl` binary.

// Every test binary compiles all of these and uses some.
#![allow(dead_code)]

pub mod chroot;
pub mod chroot_agent;
pub mod container;
pub mod nodes;
pub mod packages;
pub mod platform;
pub mod signing;
pub mod unit;

use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The agent binary, built beside `patchctl` by `cargo test --workspace`.
pub fn agent_bin() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_BIN_EXE_patchctl")).with_file_name("patchctl-agent");
    assert!(
        p.exists(),
        "{} is missing: run the tests with `cargo test --workspace` (or `cargo build -p patchctl-agent` first)",
        p.display()
    );
    p
}

/// Polls `f` until it returns `Some`, failing the test after `secs` seconds with what
/// was awaited.
pub fn wait_for<T>(what: &str, secs: u64, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {secs} s waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
