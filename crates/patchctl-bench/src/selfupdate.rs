//! The agent's self-update, timed and weighed: the release `patchctl server --dev
//! --no-agent`, the release agent running from its own directory, its own binary signed
//! with the test keys as 0.2.0, published and rolled out with the release CLI. Measured:
//! the time from the rollout (the announcement) until the platform lists the update as
//! confirmed, and the memory of the agent (and of the new binary's trial) while it
//! downloads, verifies, swaps and hands over, sampled every 20 ms.
//!
//! The agent must trust the test root: build it with
//! `PATCHCTL_RELEASE_ROOTS=$PWD/crates/patchctl-release/testdata/test-root.pub`.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::Utc;
use patchctl_release::{MANIFEST_KIND, Manifest, ReleaseBundle, SecretKey};

use crate::footprint::{
    Config, hosts_list, require_binaries, start_dev_server, write_agent_config,
};
use crate::procs::{ChildGuard, mem};
use crate::stats::mib;

const TEST_ROOT: &str = include_str!("../../patchctl-release/testdata/test-root.key");
const TEST_SIGNING: &str = include_str!("../../patchctl-release/testdata/test-signing.key");

/// The build that makes the agent trust the test root.
pub const BUILD_HINT: &str = "PATCHCTL_RELEASE_ROOTS=$PWD/crates/patchctl-release/testdata/test-root.pub cargo build --release -p patchctl-agent";

/// What was measured.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// From the rollout until the platform listed the update as confirmed.
    pub to_confirmed: Duration,
    /// From the rollout until the platform listed the new version.
    pub to_new_version: Duration,
    /// Largest VmRSS of the agent process while it updated.
    pub agent_peak_kib: u64,
    /// Largest VmRSS of the trial (the new binary proving itself).
    pub trial_peak_kib: u64,
    /// VmRSS of the agent before the update.
    pub before_kib: u64,
    /// VmRSS of the agent (now the new binary) a few seconds after the hand-over.
    pub after_kib: u64,
    /// Size of the published artifact.
    pub artifact_bytes: u64,
}

fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for t in tasks.flatten() {
            if let Ok(text) = std::fs::read_to_string(t.path().join("children")) {
                out.extend(
                    text.split_whitespace()
                        .filter_map(|p| p.parse::<u32>().ok()),
                );
            }
        }
    }
    out
}

fn cli(cfg: &Config, dev: &crate::footprint::DevJson, args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new(&cfg.patchctl_bin)
        .args(args)
        .env("PATCHCTL_SERVER", &dev.url)
        .env("PATCHCTL_TOKEN", &dev.token)
        .env("PATCHCTL_CA_FILE", &dev.ca_file)
        .output()
        .with_context(|| format!("patchctl {args:?}"))?;
    if !out.status.success() {
        bail!(
            "patchctl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

fn sign(artifact: &[u8], version: &str) -> anyhow::Result<ReleaseBundle> {
    let root = SecretKey::from_file(TEST_ROOT)?;
    let signing = SecretKey::from_file(TEST_SIGNING)?;
    let now = Utc::now();
    let keys = patchctl_release::sign_key_list(
        &[&root],
        &[signing.public()],
        now,
        now + chrono::Duration::days(1),
    )?;
    let manifest = Manifest {
        kind: MANIFEST_KIND.into(),
        product: "patchctl-agent".into(),
        version: version.into(),
        target: format!("{}-unknown-linux-gnu", std::env::consts::ARCH),
        sha256: patchctl_release::sha256_hex(artifact),
        size: artifact.len() as u64,
        channel: "stable".into(),
        created: now,
        expires: now + chrono::Duration::days(1),
    };
    Ok(ReleaseBundle {
        keys,
        manifest: patchctl_release::sign_manifest(&signing, &manifest)?,
    })
}

/// Runs the measurement.
pub fn run(cfg: &Config) -> anyhow::Result<Outcome> {
    require_binaries(cfg)?;
    let roots = Command::new(&cfg.agent_bin).arg("roots").output()?;
    let test_root_hex = SecretKey::from_file(TEST_ROOT)?.public().to_hex();
    if !String::from_utf8_lossy(&roots.stdout).contains(&test_root_hex) {
        bail!(
            "{} does not trust the test release root, so it would refuse the test release; build it with `{BUILD_HINT}`",
            cfg.agent_bin.display()
        );
    }
    let tmp = tempfile::Builder::new()
        .prefix("patchctl-bench-update-")
        .tempdir()?;
    let (mut server, dev) = start_dev_server(cfg, tmp.path())?;
    let bin_dir = tmp.path().join("bin");
    std::fs::create_dir_all(&bin_dir)?;
    let bin = bin_dir.join("patchctl-agent");
    std::fs::copy(&cfg.agent_bin, &bin)?;
    let config = write_agent_config(&tmp.path().join("agent"), &dev)?;
    let mut agent_cmd = Command::new(&bin);
    agent_cmd.arg("run").arg("--config").arg(&config);
    let mut agent = ChildGuard::spawn(agent_cmd, "patchctl-agent", &tmp.path().join("agent.log"))?;
    let pid = agent.pid();
    let wait_host = Instant::now();
    loop {
        agent.ensure_running()?;
        if hosts_list(cfg, &dev, tmp.path())?
            .first()
            .is_some_and(|h| h.packages > 0)
        {
            break;
        }
        if wait_host.elapsed() > Duration::from_secs(90) {
            bail!("the agent never showed up: {}", agent.log_tail(20));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(2));
    let before_kib = mem(pid)?.rss_kib;

    let artifact = std::fs::read(&bin)?;
    let bundle = sign(&artifact, "0.2.0")?;
    let art_path = tmp.path().join("release");
    std::fs::write(&art_path, &artifact)?;
    let bundle_path = tmp.path().join("release.json");
    std::fs::write(&bundle_path, serde_json::to_vec(&bundle)?)?;
    cli(
        cfg,
        &dev,
        &["release", "publish", path(&bundle_path), path(&art_path)],
    )?;

    let announced = Instant::now();
    cli(cfg, &dev, &["release", "rollout", "0.2.0"])?;
    let (mut agent_peak_kib, mut trial_peak_kib) = (before_kib, 0);
    let mut to_new_version = None;
    let mut last_poll = Instant::now() - Duration::from_secs(1);
    let to_confirmed = loop {
        agent.ensure_running()?;
        server.ensure_running()?;
        if let Ok(m) = mem(pid) {
            agent_peak_kib = agent_peak_kib.max(m.rss_kib);
        }
        for c in children(pid) {
            if let Ok(m) = mem(c) {
                trial_peak_kib = trial_peak_kib.max(m.rss_kib);
            }
        }
        if last_poll.elapsed() >= Duration::from_millis(200) {
            last_poll = Instant::now();
            let hosts = hosts_list(cfg, &dev, tmp.path())?;
            if let Some(h) = hosts.first() {
                if h.agent_version == "0.2.0" {
                    to_new_version.get_or_insert_with(|| announced.elapsed());
                }
                if let Some(u) = &h.agent_update {
                    use patchctl_proto::release::UpdateStep;
                    match u.step {
                        UpdateStep::Confirmed => break announced.elapsed(),
                        UpdateStep::Refused | UpdateStep::RolledBack => bail!(
                            "the update was {}: {}",
                            u.step.as_str(),
                            u.detail.clone().unwrap_or_default()
                        ),
                        _ => {}
                    }
                }
            }
        }
        if announced.elapsed() > Duration::from_secs(120) {
            bail!(
                "no confirmation within 120 s; agent output:\n{}",
                agent.log_tail(30)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    std::thread::sleep(Duration::from_secs(3));
    agent.ensure_running()?;
    let after_kib = mem(pid)?.rss_kib;
    Ok(Outcome {
        to_confirmed,
        to_new_version: to_new_version.unwrap_or(to_confirmed),
        agent_peak_kib,
        trial_peak_kib,
        before_kib,
        after_kib,
        artifact_bytes: artifact.len() as u64,
    })
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap_or_default()
}

/// The Markdown report.
pub fn markdown(o: &Outcome) -> String {
    format!(
        "### Agent self-update\n\nRelease agent (heartbeat every 5 s) updating to its own binary signed as 0.2.0 \
         ({:.1} MiB artifact) on a release `patchctl server --dev` on 127.0.0.1.\n\n\
         | | measured |\n|---|---:|\n\
         | rollout (announcement) → update listed as confirmed | {:.2} s |\n\
         | rollout → new version listed | {:.2} s |\n\
         | agent RSS before the update | {} |\n\
         | agent RSS peak while it fetched, verified, swapped and waited for the trial (20 ms samples) | {} |\n\
         | the trial's RSS peak (the new binary proving it reaches the platform) | {} |\n\
         | agent RSS 3 s after the hand-over (the new binary, same pid) | {} |\n\n\
         The time is mostly the wait for the next heartbeat (up to 5 s ± 10 %), the trial's one \
         heartbeat, and the heartbeat that carries the confirmation.\n",
        o.artifact_bytes as f64 / 1048576.0,
        o.to_confirmed.as_secs_f64(),
        o.to_new_version.as_secs_f64(),
        mib(o.before_kib),
        mib(o.agent_peak_kib),
        mib(o.trial_peak_kib),
        mib(o.after_kib),
    )
}
