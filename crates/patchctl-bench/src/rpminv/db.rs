//! The benchmark's rpm database: one rpmbuild of the generated spec, one `rpm -i
//! --justdb` into a private root, kept under [`CACHE_DIR`] between runs.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context;
use patchctl_agent::inventory::rpm;

use super::packages::spec;
use super::rusage::{count_installed, setup};

/// Where built rpm databases are kept between runs (outside the repository).
pub const CACHE_DIR: &str = "/var/cache/patchctl-ci";
/// The program that builds the packages.
pub const RPMBUILD: &str = "/usr/bin/rpmbuild";
/// The file inside a built root that records how long its build took.
const BUILD_NOTE: &str = "patchctl-bench-build.txt";

/// Where the rpm database came from.
#[derive(Debug, Clone)]
pub enum DbOrigin {
    /// Built in this run: rpmbuild time, rpm -i time.
    Built(Duration, Duration),
    /// Reused from the cache; the note its build left, if any.
    Cached(Option<String>),
}

/// The cached root for `n` packages.
pub fn cache_root(n: usize) -> PathBuf {
    Path::new(CACHE_DIR).join(format!("rpmdb-{n}"))
}

/// Builds a root with `n` packages under [`CACHE_DIR`] and moves it to
/// [`cache_root`], replacing what was there. Returns (rpmbuild time, rpm -i time).
pub fn build(n: usize) -> anyhow::Result<(Duration, Duration)> {
    for tool in [RPMBUILD, rpm::RPM_PATH] {
        if !Path::new(tool).exists() {
            anyhow::bail!("{tool} is missing (Debian: apt-get install rpm)");
        }
    }
    std::fs::create_dir_all(CACHE_DIR).with_context(|| {
        format!("cannot create {CACHE_DIR} (the rpm benchmark runs as root: it installs into a private rpm root)")
    })?;
    let staging = tempfile::Builder::new()
        .prefix(&format!(".rpmdb-{n}-build-"))
        .tempdir_in(CACHE_DIR)?;
    let t = staging.path();
    let spec_file = t.join("pcb.spec");
    std::fs::write(&spec_file, spec(n))?;
    let top = t.join("top");
    let t0 = Instant::now();
    setup(
        Command::new(RPMBUILD)
            .arg("--quiet")
            .args(["--define", &format!("_topdir {}", top.display())])
            .args(["--define", "_build_id_links none"])
            .args(["--define", "debug_package %{nil}"])
            .args(["--define", "__os_install_post %{nil}"])
            // Empty payloads: no compression to spend time on.
            .args(["--define", "_binary_payload w0.ufdio"])
            .arg("-bb")
            .arg(&spec_file),
        "rpmbuild",
    )?;
    let rpmbuild_time = t0.elapsed();
    let rpms_dir = top.join("RPMS/noarch");
    let mut rpms: Vec<String> = std::fs::read_dir(&rpms_dir)
        .with_context(|| format!("rpmbuild left no {}", rpms_dir.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|f| f.ends_with(".rpm"))
        .collect();
    rpms.sort();
    if rpms.len() != n {
        anyhow::bail!("rpmbuild made {} packages, not {n}", rpms.len());
    }
    let root = t.join("root");
    std::fs::create_dir_all(&root)?;
    let t1 = Instant::now();
    setup(
        Command::new(rpm::RPM_PATH)
            .arg("--root")
            .arg(&root)
            .arg("--initdb"),
        "rpm --initdb",
    )?;
    // Relative names (run in the RPMS directory) keep the command line short.
    setup(
        Command::new(rpm::RPM_PATH)
            .current_dir(&rpms_dir)
            .arg("--root")
            .arg(&root)
            .args([
                "-i",
                "--justdb",
                "--nodeps",
                "--noscripts",
                "--notriggers",
                "--nodigest",
                "--nosignature",
            ])
            .args(&rpms),
        "rpm -i",
    )?;
    let install_time = t1.elapsed();
    let counted = count_installed(&root)?;
    if counted != n {
        anyhow::bail!(
            "rpm --root {} -qa lists {counted} packages after installing {n}",
            root.display()
        );
    }
    std::fs::write(
        root.join(BUILD_NOTE),
        format!(
            "built {} with {n} packages: rpmbuild {:.1} s, rpm -i {:.1} s\n",
            chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
            rpmbuild_time.as_secs_f64(),
            install_time.as_secs_f64()
        ),
    )?;
    let dest = cache_root(n);
    if dest.exists() {
        std::fs::remove_dir_all(&dest)
            .with_context(|| format!("cannot remove the stale {}", dest.display()))?;
    }
    std::fs::rename(&root, &dest)
        .with_context(|| format!("cannot move the new root to {}", dest.display()))?;
    Ok((rpmbuild_time, install_time))
}

/// The cached root for `n` packages, built when missing or when it does not list
/// exactly `n` packages.
pub fn ensure_db(n: usize) -> anyhow::Result<(PathBuf, DbOrigin)> {
    let root = cache_root(n);
    if root.is_dir() {
        match count_installed(&root) {
            Ok(c) if c == n => {
                let note = std::fs::read_to_string(root.join(BUILD_NOTE))
                    .ok()
                    .map(|s| s.trim().to_owned());
                return Ok((root, DbOrigin::Cached(note)));
            }
            Ok(c) => eprintln!(
                "rpm inventory: {} lists {c} packages, not {n}: rebuilding",
                root.display()
            ),
            Err(e) => eprintln!(
                "rpm inventory: {} is unusable ({e:#}): rebuilding",
                root.display()
            ),
        }
    }
    eprintln!("rpm inventory: building an rpm database of {n} packages ...");
    let (b, i) = build(n)?;
    eprintln!(
        "rpm inventory: built in {:.1} s (rpmbuild {:.1} s, rpm -i {:.1} s)",
        (b + i).as_secs_f64(),
        b.as_secs_f64(),
        i.as_secs_f64()
    );
    Ok((root, DbOrigin::Built(b, i)))
}
