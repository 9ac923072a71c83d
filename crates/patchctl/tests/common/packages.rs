//! The agent's packages for the tests: `dist/package/build.sh` run on a stripped copy
//! of the workspace's agent binary (a debug build, so with `--allow-test-root`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::agent_bin;
use super::chroot::run;

/// The repository's root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// The package builder, run with `args`.
pub fn builder(args: &[&str]) -> Output {
    Command::new(repo().join("dist/package/build.sh"))
        .args(args)
        .output()
        .unwrap()
}

/// A stripped copy of the workspace's agent binary in `dir`.
pub fn stripped_agent(dir: &Path) -> PathBuf {
    let out = dir.join("patchctl-agent");
    run(Command::new("strip").arg("-o").arg(&out).arg(agent_bin()));
    out
}

/// Builds `formats` of `version` from `agent` into `out`; the packages' paths.
pub fn build(agent: &Path, version: &str, formats: &str, out: &Path) -> Vec<PathBuf> {
    let o = builder(&[
        "--binary",
        agent.to_str().unwrap(),
        "--version",
        version,
        "--out",
        out.to_str().unwrap(),
        "--formats",
        formats,
        "--allow-test-root",
    ]);
    assert!(
        o.status.success(),
        "build.sh failed: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let paths: Vec<PathBuf> = String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(PathBuf::from)
        .collect();
    assert_eq!(paths.len(), formats.split(',').count(), "{paths:?}");
    paths
}
