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

/// A cached copy of `base` (the cached minimal chroot,
/// [`super::chroot::cached_chroot`]) with Debian's `packages` installed from the
/// release's mirror, created once as `<codename>-<name>` and recognised by `marker`
/// (a path inside it). `openrc`: the real `openrc-run`, `rc-service` and `rc-update`
/// (OpenRC does not boot there); `rpm`: an rpm database in the chroot itself, so that
/// the agent run inside finds the .rpm that owns it.
pub fn cached_chroot_with(base: &Path, name: &str, packages: &[&str], marker: &str) -> PathBuf {
    use std::fs;
    let codename = super::chroot::codename();
    let dir = Path::new(super::chroot::CACHE).join(format!("{codename}-{name}"));
    if dir.join(marker).exists() {
        return dir;
    }
    let tmp = Path::new(super::chroot::CACHE).join(format!("{codename}-{name}.tmp"));
    let _ = fs::remove_dir_all(&tmp);
    eprintln!(
        "adding {} to a copy of {} in {} (once; cached)",
        packages.join(" "),
        base.display(),
        dir.display()
    );
    run(Command::new("cp").arg("-a").arg(base).arg(&tmp));
    fs::copy("/etc/resolv.conf", tmp.join("etc/resolv.conf")).unwrap();
    run(Command::new("mount")
        .args(["-t", "proc", "proc"])
        .arg(tmp.join("proc")));
    let update = Command::new("chroot")
        .arg(&tmp)
        .args(["apt-get", "update", "-qq"])
        .output();
    let install = Command::new("chroot")
        .arg(&tmp)
        .args(["apt-get", "install", "-y", "-qq", "--no-install-recommends"])
        .args(packages)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .output();
    let _ = Command::new("umount").arg(tmp.join("proc")).status();
    for (what, out) in [("apt-get update", update), ("apt-get install", install)] {
        let out = out.unwrap();
        assert!(
            out.status.success(),
            "{what} in {}: {}{}",
            tmp.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    run(Command::new("chroot").arg(&tmp).args(["apt-get", "clean"]));
    fs::rename(&tmp, &dir).unwrap();
    dir
}
