//! The agent's footprint: the release `patchctl server --dev --no-agent` and the release
//! `patchctl-agent run` as child processes on `127.0.0.1`; the agent's peak RSS during
//! its first scan (`VmHWM` right after its inventory shows up on the platform), its RSS
//! once idle (the largest of several `VmRSS` samples taken after a quiet period that
//! spans a heartbeat), and the sizes of the two release binaries.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use patchctl_proto::api::{HostStatus, HostSummary};

use crate::procs::{ChildGuard, Mem, mem};
use crate::stats::{mib, mib_bytes};

/// The target for the idle agent's RSS.
pub const TARGET_IDLE_KIB: u64 = 8 * 1024;
/// The target for the agent's RSS during a scan.
pub const TARGET_SCAN_KIB: u64 = 32 * 1024;
/// The agent's heartbeat interval in this benchmark.
const HEARTBEAT_SECS: u64 = 5;
/// Longest wait for the platform to write `dev.json`.
const SERVER_START_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait for the agent's host and inventory to show up.
const INVENTORY_TIMEOUT: Duration = Duration::from_secs(90);
/// Longest a `patchctl hosts list` may take.
const CLI_TIMEOUT: Duration = Duration::from_secs(15);
/// Time between two polls of the host list.
const POLL_EVERY: Duration = Duration::from_millis(200);

/// The command that builds what this benchmark needs.
pub const BUILD_HINT: &str =
    "cargo build --release -p patchctl -p patchctl-agent -p patchctl-bench";

/// Parameters of a run.
#[derive(Debug, Clone)]
pub struct Config {
    /// The `patchctl-agent` binary.
    pub agent_bin: PathBuf,
    /// The `patchctl` binary.
    pub patchctl_bin: PathBuf,
    /// Quiet time after the inventory upload before the idle samples.
    pub idle: Duration,
    /// Idle samples.
    pub samples: u32,
    /// Time between idle samples.
    pub sample_every: Duration,
}

/// `NAME` in the directory of this executable (where cargo puts the release binaries).
pub fn beside_me(name: &str) -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("."))
        .join(name)
}

/// What was measured.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// From the agent's start until its host was listed.
    pub enrolled_after: Duration,
    /// From the agent's start until its inventory was listed.
    pub inventory_after: Duration,
    /// Packages in the stored inventory.
    pub packages: u64,
    /// The agent's memory right after the inventory showed up.
    pub at_scan: Mem,
    /// The idle sample with the largest RSS.
    pub idle_max: Mem,
    /// Idle samples taken.
    pub idle_samples: u32,
    /// The agent's memory at the end (its `VmHWM` is the lifetime peak).
    pub at_end: Mem,
    /// The host's status at the end.
    pub final_status: Option<HostStatus>,
    /// Size of the `patchctl-agent` binary.
    pub agent_size: u64,
    /// Size of the `patchctl` binary.
    pub patchctl_size: u64,
    /// Warnings and errors the agent and the platform logged.
    pub log_warnings: Vec<String>,
}

/// Fails with the build command when a binary is missing.
pub fn require_binaries(cfg: &Config) -> anyhow::Result<()> {
    for bin in [&cfg.patchctl_bin, &cfg.agent_bin] {
        if !bin.is_file() {
            anyhow::bail!(
                "{} not found: build the release binaries with `{BUILD_HINT}` (or pass --agent-bin/--patchctl-bin)",
                bin.display()
            );
        }
    }
    Ok(())
}

/// The fields of `dev.json` used here.
pub(crate) struct DevJson {
    pub(crate) url: String,
    pub(crate) token: String,
    pub(crate) enrollment_key: String,
    pub(crate) ca_file: PathBuf,
}

pub(crate) fn read_dev_json(path: &Path) -> Option<DevJson> {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    let s = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_owned);
    Some(DevJson {
        url: s("url")?,
        token: s("token")?,
        enrollment_key: s("enrollment_key")?,
        ca_file: PathBuf::from(s("ca_file")?),
    })
}

/// Runs `patchctl hosts list --output json`, bounded by [`CLI_TIMEOUT`].
pub(crate) fn hosts_list(
    cfg: &Config,
    dev: &DevJson,
    scratch: &Path,
) -> anyhow::Result<Vec<HostSummary>> {
    let out_path = scratch.join("hosts.json");
    let err_path = scratch.join("hosts.err");
    let mut child = Command::new(&cfg.patchctl_bin)
        .args(["hosts", "list", "--output", "json"])
        .env("PATCHCTL_SERVER", &dev.url)
        .env("PATCHCTL_TOKEN", &dev.token)
        .env("PATCHCTL_CA_FILE", &dev.ca_file)
        .stdin(Stdio::null())
        .stdout(File::create(&out_path)?)
        .stderr(File::create(&err_path)?)
        .spawn()
        .context("cannot run patchctl hosts list")?;
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait()? {
            break st;
        }
        if start.elapsed() > CLI_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            anyhow::bail!("patchctl hosts list did not finish within {CLI_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    if !status.success() {
        anyhow::bail!(
            "patchctl hosts list failed ({status}): {}",
            std::fs::read_to_string(&err_path)
                .unwrap_or_default()
                .trim()
        );
    }
    let bytes = std::fs::read(&out_path)?;
    serde_json::from_slice(&bytes).context("patchctl hosts list printed unexpected JSON")
}

pub(crate) fn write_agent_config(dir: &Path, dev: &DevJson) -> anyhow::Result<PathBuf> {
    std::fs::DirBuilder::new().mode(0o700).create(dir)?;
    let cfg = serde_json::json!({
        "server_url": dev.url,
        "license_key": dev.enrollment_key,
        "ca_bundle": dev.ca_file,
        "heartbeat_interval_secs": HEARTBEAT_SECS,
        "state_dir": dir.join("state"),
    });
    let path = dir.join("config.json");
    let mut f = File::options()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)?;
    f.write_all(&serde_json::to_vec_pretty(&cfg)?)?;
    f.sync_all()?;
    Ok(path)
}

/// `text` without ANSI escape sequences (`ESC [ ... final-byte`): the agent and the
/// platform colour their log lines even when stderr is not a terminal.
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for f in chars.by_ref() {
                if ('@'..='~').contains(&f) {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Collects (at most 10) warning and error lines of a log into `out`.
fn warnings(text: &str, who: &str, out: &mut Vec<String>) {
    for line in strip_ansi(text).lines() {
        if (line.contains(" WARN ") || line.contains(" ERROR ")) && out.len() < 10 {
            out.push(format!("{who}: {}", line.trim()));
        }
    }
}

/// Starts the release `patchctl server --dev --no-agent` on 127.0.0.1:0 with its data
/// in `dir/server`, and waits for its `dev.json`.
pub(crate) fn start_dev_server(cfg: &Config, dir: &Path) -> anyhow::Result<(ChildGuard, DevJson)> {
    let data_dir = dir.join("server");
    let mut server_cmd = Command::new(&cfg.patchctl_bin);
    server_cmd
        .args([
            "server",
            "--dev",
            "--no-agent",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(&data_dir);
    let mut server = ChildGuard::spawn(server_cmd, "patchctl server", &dir.join("server.log"))?;
    let dev_json = data_dir.join("dev.json");
    let start = Instant::now();
    loop {
        server.ensure_running()?;
        if let Some(d) = read_dev_json(&dev_json) {
            return Ok((server, d));
        }
        if start.elapsed() > SERVER_START_TIMEOUT {
            anyhow::bail!(
                "the platform wrote no {} within {SERVER_START_TIMEOUT:?}; its output:\n{}",
                dev_json.display(),
                server.log_tail(20)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs the footprint measurement.
pub fn run(cfg: &Config) -> anyhow::Result<Outcome> {
    require_binaries(cfg)?;
    let tmp = tempfile::Builder::new()
        .prefix("patchctl-bench-agent-")
        .tempdir()?;
    let (mut server, dev) = start_dev_server(cfg, tmp.path())?;

    let config = write_agent_config(&tmp.path().join("agent"), &dev)?;
    let mut agent_cmd = Command::new(&cfg.agent_bin);
    agent_cmd.arg("run").arg("--config").arg(&config);
    let agent_start = Instant::now();
    let mut agent = ChildGuard::spawn(agent_cmd, "patchctl-agent", &tmp.path().join("agent.log"))?;
    let pid = agent.pid();

    // Wait for the host, then for its inventory.
    let mut enrolled_after = None;
    let mut last_error = None;
    let (packages, at_scan, inventory_after) = loop {
        agent.ensure_running()?;
        server.ensure_running()?;
        match hosts_list(cfg, &dev, tmp.path()) {
            Ok(hosts) => {
                if let Some(h) = hosts.first() {
                    enrolled_after.get_or_insert_with(|| agent_start.elapsed());
                    if h.packages > 0 {
                        let m = mem(pid)?;
                        break (h.packages, m, agent_start.elapsed());
                    }
                }
            }
            Err(e) => last_error = Some(e),
        }
        if agent_start.elapsed() > INVENTORY_TIMEOUT {
            let state = match enrolled_after {
                Some(_) => "enrolled but its inventory never arrived",
                None => "never enrolled",
            };
            anyhow::bail!(
                "the agent {state} within {INVENTORY_TIMEOUT:?} (last CLI error: {}); agent output:\n{}",
                last_error
                    .map(|e| format!("{e:#}"))
                    .unwrap_or_else(|| "none".into()),
                agent.log_tail(20)
            );
        }
        std::thread::sleep(POLL_EVERY);
    };
    let enrolled_after = enrolled_after.unwrap_or(inventory_after);

    // Idle: let it settle, then sample across at least one heartbeat.
    let idle_until = Instant::now() + cfg.idle;
    while Instant::now() < idle_until {
        agent.ensure_running()?;
        std::thread::sleep(Duration::from_millis(250));
    }
    let mut idle_max = Mem::default();
    for i in 0..cfg.samples.max(1) {
        if i > 0 {
            std::thread::sleep(cfg.sample_every);
        }
        agent.ensure_running()?;
        let m = mem(pid)?;
        if m.rss_kib > idle_max.rss_kib {
            idle_max = m;
        }
    }
    let at_end = mem(pid)?;
    let final_status = hosts_list(cfg, &dev, tmp.path())
        .ok()
        .and_then(|h| h.first().map(|h| h.status));

    let mut log_warnings = Vec::new();
    warnings(&agent.log_text(), "agent", &mut log_warnings);
    warnings(&server.log_text(), "platform", &mut log_warnings);
    drop(agent);
    drop(server);

    Ok(Outcome {
        enrolled_after,
        inventory_after,
        packages,
        at_scan,
        idle_max,
        idle_samples: cfg.samples.max(1),
        at_end,
        final_status,
        agent_size: std::fs::metadata(&cfg.agent_bin)?.len(),
        patchctl_size: std::fs::metadata(&cfg.patchctl_bin)?.len(),
        log_warnings,
    })
}

fn verdict(kib: u64, target: u64) -> String {
    if kib <= target {
        format!("met ({:.0} % of it)", 100.0 * kib as f64 / target as f64)
    } else {
        format!("MISSED by {}", mib(kib - target))
    }
}

/// The Markdown report.
pub fn markdown(cfg: &Config, o: &Outcome) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "### Agent footprint\n\nRelease `patchctl server --dev --no-agent` and release `patchctl-agent run` \
         (heartbeat every {HEARTBEAT_SECS} s) as child processes on 127.0.0.1. The agent enrolled \
         {:.2} s after it started; its inventory ({} packages) was on the platform after {:.2} s.\n\n",
        o.enrolled_after.as_secs_f64(),
        o.packages,
        o.inventory_after.as_secs_f64(),
    ));
    s.push_str("| | measured | target | verdict |\n|---|---:|---:|---|\n");
    s.push_str(&format!(
        "| peak RSS during the first scan (VmHWM right after the upload) | {} | ≤ 32 MiB | {} |\n",
        mib(o.at_scan.hwm_kib),
        verdict(o.at_scan.hwm_kib, TARGET_SCAN_KIB)
    ));
    s.push_str(&format!(
        "| idle RSS (max VmRSS of {} samples, {:.0} s after the upload, {} ms apart) | {} | ≤ 8 MiB | {} |\n",
        o.idle_samples,
        cfg.idle.as_secs_f64(),
        cfg.sample_every.as_millis(),
        mib(o.idle_max.rss_kib),
        verdict(o.idle_max.rss_kib, TARGET_IDLE_KIB)
    ));
    s.push_str(&format!(
        "| stripped `patchctl-agent` binary | {} | | |\n| stripped `patchctl` binary (platform + CLI) | {} | | |\n\n",
        mib_bytes(o.agent_size),
        mib_bytes(o.patchctl_size)
    ));
    s.push_str(&format!(
        "- Idle RSS breakdown (largest sample): {} anonymous (heap, stacks) + {} file-backed (mostly the binary's own pages).\n",
        mib(o.idle_max.anon_kib),
        mib(o.idle_max.file_kib)
    ));
    s.push_str(&format!(
        "- Right after the upload: VmRSS {}; at the end: VmRSS {}, lifetime peak VmHWM {}.\n",
        mib(o.at_scan.rss_kib),
        mib(o.at_end.rss_kib),
        mib(o.at_end.hwm_kib)
    ));
    s.push_str(&format!(
        "- References from the issue: Wazuh's agent ~35 MB, Nessus's ~50 MB resident.\n- Host status at the end: {}.\n",
        match o.final_status {
            Some(st) => format!("{st:?}").to_lowercase(),
            None => "unknown (the last host list failed)".into(),
        }
    ));
    for w in &o.log_warnings {
        s.push_str(&format!("- logged: `{}`\n", w.replace('`', "'")));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_coloured_warnings() {
        let log = "\u{1b}[2m2026-11-22T00:51:37Z\u{1b}[0m \u{1b}[32m INFO\u{1b}[0m \u{1b}[2mx\u{1b}[0m: fine\n\
                   \u{1b}[2m2026-11-22T00:51:38Z\u{1b}[0m \u{1b}[33m WARN\u{1b}[0m \u{1b}[2mx\u{1b}[0m: careful\n\
                   2026-11-22T00:51:39Z ERROR x: broken\n";
        let mut out = Vec::new();
        warnings(log, "agent", &mut out);
        assert_eq!(
            out,
            vec![
                "agent: 2026-11-22T00:51:38Z  WARN x: careful".to_owned(),
                "agent: 2026-11-22T00:51:39Z ERROR x: broken".to_owned(),
            ]
        );
    }
}
