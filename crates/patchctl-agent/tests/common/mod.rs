//! What the real-manager tests (apt_real, dnf_real, pacman_real, zypper_real) share:
//! the agent's operations with one backend, the command envelopes they send, and the
//! setup programs they run themselves (the rpm packages, repositories and roots of
//! dnf_real and zypper_real). Whether a test may run here (root, the manager's
//! programs) each binary declares to the patchctl-testkit harness in its `main`.
//!
//! Each test binary includes this module with `mod common;` and uses a part of it, so
//! the items not every binary uses carry `#[allow(dead_code)]`.
#![allow(clippy::disallowed_methods)] // Test setup: rpmbuild, createrepo_c, rpm, zypper, pacman.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use patchctl_agent::exec::ProcessExecutor;
use patchctl_agent::ops::{LinkState, Operations};
use patchctl_agent::pkgmgr::Backend;
use patchctl_proto::command::{CommandEnvelope, PackageTarget};
use patchctl_proto::validate::{PackageName, PackageVersion};

/// The agent's operations on the real executor `exec`, with `backend` (no detection).
pub fn ops(exec: Arc<ProcessExecutor>, backend: impl Backend + 'static) -> Operations {
    Operations::new(
        exec,
        Path::new("/"),
        None,
        Duration::from_secs(300),
        Arc::new(Mutex::new(LinkState::default())),
    )
    .with_backend(Some(Arc::new(backend)))
}

/// The real executor with a small output cap: a run whose output passes `cap` bytes is
/// cut by the executor itself, as a very long plan would be in production.
pub struct CappedExecutor {
    /// The real executor that runs everything.
    pub inner: ProcessExecutor,
    /// The cap put on each run's stdout and stderr.
    pub cap: usize,
}

#[async_trait::async_trait]
impl patchctl_agent::exec::Executor for CappedExecutor {
    async fn run(
        &self,
        mut req: patchctl_agent::exec::ExecRequest,
    ) -> Result<patchctl_agent::exec::ExecOutput, patchctl_agent::exec::ExecError> {
        req.max_output = self.cap;
        self.inner.run(req).await
    }

    fn history(&self) -> Vec<Vec<String>> {
        self.inner.history()
    }
}

/// The plan of `targets` is accepted when read whole, and refused, naming the cut, when
/// the executor cuts its output after a few bytes.
#[allow(dead_code)]
pub async fn assert_a_cut_plan_is_refused(
    backend: &dyn Backend,
    family: patchctl_agent::pkgmgr::Family,
    targets: &[PackageTarget],
) {
    let whole = backend
        .simulate(&ProcessExecutor::new(), targets)
        .await
        .unwrap();
    assert!(
        patchctl_agent::pkgmgr::refusals(family, &whole, targets).is_empty(),
        "{whole:?}"
    );
    let capped = CappedExecutor {
        inner: ProcessExecutor::new(),
        cap: 64,
    };
    let err = backend.simulate(&capped, targets).await.unwrap_err();
    assert!(
        err.to_string().contains(patchctl_agent::pkgmgr::CUT_SHORT),
        "{err}"
    );
}

/// A command of `kind` as the platform queues it.
pub fn envelope(kind: &str, params: serde_json::Value) -> CommandEnvelope {
    CommandEnvelope {
        id: uuid::Uuid::new_v4(),
        kind: kind.into(),
        params,
        queued_at: Utc::now(),
        // `Operations::handle` runs what admission (the signature check, `admit`)
        // already let through; these tests start there.
        signed: None,
    }
}

/// `install_updates` of one approved `name` `version`.
pub fn install(name: &str, version: &str) -> CommandEnvelope {
    envelope(
        "install_updates",
        serde_json::json!({"packages": [{"name": name, "version": version}]}),
    )
}

/// `get_package_info` of `name`.
pub fn package_info(name: &str) -> CommandEnvelope {
    envelope("get_package_info", serde_json::json!({"name": name}))
}

/// An approved target.
pub fn target(name: &str, version: &str) -> PackageTarget {
    PackageTarget {
        name: PackageName::parse(name).unwrap(),
        version: PackageVersion::parse(version).unwrap(),
    }
}

/// The environment the agent's executor gives its children, so that a setup program
/// sees what the agent's runs see (rpm, for one, finds its database where dnf and
/// zypper run by the executor do).
#[allow(dead_code)]
pub fn clean(cmd: &mut Command) -> &mut Command {
    cmd.env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("LC_ALL", "C")
}

/// Runs a setup program (not the agent: the agent runs programs only through its
/// executor) and returns its standard output; the test fails with its output when it
/// fails.
#[allow(dead_code)]
pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// [`run`] of `program` with `args` in the executor's environment ([`clean`]).
#[allow(dead_code)]
pub fn tool(program: &str, args: &[&str]) -> String {
    run(clean(&mut Command::new(program)).args(args))
}

/// The spec of NAME-[E:]V-R.noarch holding one small file; `preamble` adds tags
/// (`Requires: …`, `Obsoletes: …`).
#[allow(dead_code)]
fn rpm_spec(name: &str, evr: &str, preamble: &str) -> String {
    let (epoch, vr) = match evr.split_once(':') {
        Some((e, vr)) => (format!("Epoch: {e}\n"), vr),
        None => (String::new(), evr),
    };
    let (version, release) = vr.rsplit_once('-').unwrap();
    let preamble = preamble.trim_end();
    format!(
        "%define _build_id_links none\n\
         Name: {name}\nVersion: {version}\nRelease: {release}\n{epoch}\
         Summary: PatchCTL test package\nLicense: MIT\nBuildArch: noarch\n{preamble}\n\
         %description\nPatchCTL test package.\n\
         %install\nmkdir -p %{{buildroot}}/usr/share/patchctl-test\n\
         echo {name}-{vr} > %{{buildroot}}/usr/share/patchctl-test/{name}\n\
         %files\n/usr/share/patchctl-test/{name}\n"
    )
}

/// Builds one noarch RPM per `(NAME, [E:]V-R, preamble)` with a single rpmbuild run
/// under `top` (without the post-install scripts, compressing and stripping, that have
/// nothing to do here). The RPMs' paths, in the order of `packages`.
#[allow(dead_code)]
pub fn build_rpms(top: &Path, packages: &[(&str, &str, &str)]) -> Vec<PathBuf> {
    let specs = top.join("SPECS");
    std::fs::create_dir_all(&specs).unwrap();
    let mut files = Vec::new();
    let mut rpms = Vec::new();
    for (name, evr, preamble) in packages {
        let spec = specs.join(format!("{name}-{}.spec", evr.replace(':', "_")));
        std::fs::write(&spec, rpm_spec(name, evr, preamble)).unwrap();
        files.push(spec);
        let vr = evr.split_once(':').map_or(*evr, |(_, vr)| vr);
        rpms.push(
            top.join("RPMS/noarch")
                .join(format!("{name}-{vr}.noarch.rpm")),
        );
    }
    run(clean(&mut Command::new("/usr/bin/rpmbuild"))
        .arg("--quiet")
        .arg("--define")
        .arg(format!("_topdir {}", top.display()))
        .args(["--define", "__os_install_post %{nil}"])
        .args(["--define", "__spec_install_post %{nil}"])
        .arg("-bb")
        .args(&files));
    rpms
}

/// A `file://` repository in `repo`: `rpms` indexed by createrepo_c, and `updateinfo`
/// (an `updateinfo.xml`) added to its metadata by modifyrepo_c.
#[allow(dead_code)]
pub fn rpm_repository(repo: &Path, rpms: &[PathBuf], updateinfo: &str) {
    std::fs::create_dir_all(repo).unwrap();
    for rpm in rpms {
        std::fs::copy(rpm, repo.join(rpm.file_name().unwrap())).unwrap();
    }
    run(clean(&mut Command::new("/usr/bin/createrepo_c"))
        .arg("--quiet")
        .arg(repo));
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("updateinfo.xml");
    std::fs::write(&file, updateinfo).unwrap();
    run(clean(&mut Command::new("/usr/bin/modifyrepo_c"))
        .arg("--mdtype=updateinfo")
        .arg(&file)
        .arg(repo.join("repodata")));
}

/// Installs `rpms` into the rpm database of the system at `root`, without
/// dependencies or scripts.
#[allow(dead_code)]
pub fn rpm_install(root: &Path, rpms: &[PathBuf]) {
    run(clean(&mut Command::new("/usr/bin/rpm"))
        .arg(format!("--root={}", root.display()))
        .args(["-i", "--nodeps", "--noscripts"])
        .args(rpms));
}

/// A new rpm database for the system at `root`, with `rpms` installed.
#[allow(dead_code)]
pub fn rpm_root(root: &Path, rpms: &[PathBuf]) {
    run(clean(&mut Command::new("/usr/bin/rpm"))
        .arg(format!("--root={}", root.display()))
        .arg("--initdb"));
    rpm_install(root, rpms);
}
