//! The agent's CPU over heartbeats: the release `patchctl server --dev` and the release
//! `patchctl-agent run` (5 s heartbeats) as child processes, as in `footprint.rs`. After
//! the agent's first scan has reached the platform, its CPU time is read over a window
//! of heartbeats and nothing else (the next scan is six hours away): per thread from
//! `/proc/PID/task/*/schedstat` (nanoseconds) and, as a cross-check that also holds
//! threads that ended, `utime + stime + cutime + cstime` of `/proc/PID/stat` (ticks).
//!
//! At 5 s the agent's HTTPS client reuses its connection; at the default 300 s it does
//! not (hyper's pool drops a connection idle for 90 s), so every heartbeat then opens a
//! new TLS 1.3 connection. That extra is measured in this process with the agent's own
//! client (`patchctl_net::HttpsClient`, the same TLS configuration) against the same
//! platform: the calling thread's CPU (`RUSAGE_THREAD`) for a request on a new
//! connection minus one on a reused connection, and added to the day's figure.

use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::footprint::{self, Config, hosts_list, start_dev_server, write_agent_config};
use crate::procs::ChildGuard;

/// The heartbeat interval `footprint::write_agent_config` gives the agent.
pub const HEARTBEAT_SECS: f64 = 5.0;
/// Heartbeats a day at the agent's default interval (300 s).
pub const HEARTBEATS_PER_DAY: f64 = 288.0;
/// Longest wait for the first scan to reach the platform.
const FIRST_SCAN_TIMEOUT: Duration = Duration::from_secs(120);
/// Clock ticks per second of `/proc/PID/stat` (`USER_HZ`).
const TICKS_PER_SEC: u64 = 100;

/// What was measured.
#[derive(Debug, Clone)]
pub struct HeartbeatCost {
    /// The measured window.
    pub window: Duration,
    /// Heartbeats in it (window / interval: the interval is jittered ±10 %).
    pub heartbeats: f64,
    /// CPU time of the agent's threads alive at the end (schedstat).
    pub cpu: Duration,
    /// CPU time of the whole process and its reaped children (stat ticks).
    pub cpu_ticks: Duration,
    /// Client CPU of a request on a new TLS connection minus one on a reused one.
    pub new_connection: Duration,
}

impl HeartbeatCost {
    /// CPU time per heartbeat (the larger of the two readings).
    pub fn per_heartbeat(&self) -> Duration {
        self.cpu
            .max(self.cpu_ticks)
            .div_f64(self.heartbeats.max(1.0))
    }

    /// CPU time per heartbeat at the default 300 s interval: a new connection each.
    pub fn per_default_heartbeat(&self) -> Duration {
        self.per_heartbeat() + self.new_connection
    }

    /// Percent of one core over a day of heartbeats at the default 300 s interval.
    pub fn day_share_percent(&self) -> f64 {
        self.per_default_heartbeat().as_secs_f64() * HEARTBEATS_PER_DAY / 86_400.0 * 100.0
    }
}

fn schedstat(pid: u32) -> HashMap<u32, u64> {
    let mut out = HashMap::new();
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for e in dir.flatten() {
        let Some(tid) = e.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        let ns = std::fs::read_to_string(e.path().join("schedstat"))
            .ok()
            .and_then(|t| t.split_whitespace().next()?.parse().ok());
        if let Some(ns) = ns {
            out.insert(tid, ns);
        }
    }
    out
}

fn stat_ticks(pid: u32) -> anyhow::Result<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after = &text[text.rfind(')').unwrap_or(0) + 1..];
    let f: Vec<u64> = after
        .split_whitespace()
        .skip(11)
        .take(4)
        .filter_map(|v| v.parse().ok())
        .collect();
    anyhow::ensure!(f.len() == 4, "cannot read the CPU times of {pid}");
    Ok(f.iter().sum())
}

/// Runs the measurement over `window`.
pub fn run(cfg: &Config, window: Duration) -> anyhow::Result<HeartbeatCost> {
    footprint::require_binaries(cfg)?;
    let tmp = tempfile::Builder::new()
        .prefix("patchctl-bench-hostload-")
        .tempdir()?;
    let (mut server, dev) = start_dev_server(cfg, tmp.path())?;
    let config = write_agent_config(&tmp.path().join("agent"), &dev)?;
    let mut cmd = Command::new(&cfg.agent_bin);
    cmd.arg("run").arg("--config").arg(&config);
    let mut agent = ChildGuard::spawn(cmd, "patchctl-agent", &tmp.path().join("agent.log"))?;
    let pid = agent.pid();
    let start = Instant::now();
    loop {
        agent.ensure_running()?;
        server.ensure_running()?;
        let scanned = hosts_list(cfg, &dev, tmp.path())
            .map(|h| h.first().is_some_and(|h| h.packages > 0))
            .unwrap_or(false);
        if scanned {
            break;
        }
        anyhow::ensure!(
            start.elapsed() < FIRST_SCAN_TIMEOUT,
            "the agent's first scan did not arrive within {FIRST_SCAN_TIMEOUT:?}; its output:\n{}",
            agent.log_tail(20)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Let the scan's upload and its state file finish.
    std::thread::sleep(Duration::from_secs(2));
    let (a, a_ticks, t0) = (schedstat(pid), stat_ticks(pid)?, Instant::now());
    while t0.elapsed() < window {
        agent.ensure_running()?;
        std::thread::sleep(Duration::from_millis(250));
    }
    let (b, b_ticks, elapsed) = (schedstat(pid), stat_ticks(pid)?, t0.elapsed());
    agent.ensure_running()?;
    let ns: u64 = b
        .iter()
        .map(|(tid, ns)| ns.saturating_sub(a.get(tid).copied().unwrap_or(0)))
        .sum();
    drop(agent);
    let new_connection = new_connection_cost(&dev.url, &dev.ca_file, 50)?;
    drop(server);
    Ok(HeartbeatCost {
        new_connection,
        window: elapsed,
        heartbeats: elapsed.as_secs_f64() / HEARTBEAT_SECS,
        cpu: Duration::from_nanos(ns),
        cpu_ticks: Duration::from_millis(b_ticks.saturating_sub(a_ticks) * 1000 / TICKS_PER_SEC),
    })
}

fn thread_cpu() -> anyhow::Result<Duration> {
    use nix::sys::resource::{UsageWho, getrusage};
    let u = getrusage(UsageWho::RUSAGE_THREAD)?;
    Ok([u.user_time(), u.system_time()]
        .iter()
        .map(|t| Duration::from_micros(t.tv_sec() as u64 * 1_000_000 + t.tv_usec() as u64))
        .sum())
}

/// The client's CPU for `GET /api/v1/health` on a new connection minus on a reused
/// one, the mean of `n` each, all on this thread (a current-thread runtime; the
/// address is an IP, so no resolver thread).
fn new_connection_cost(url: &str, ca: &std::path::Path, n: u32) -> anyhow::Result<Duration> {
    use patchctl_net::HttpsClient;
    let tls = patchctl_net::client_config(Some(ca))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let get = |c: &HttpsClient| -> anyhow::Result<()> {
        rt.block_on(c.json::<(), serde_json::Value>(
            http::Method::GET,
            "/api/v1/health",
            None,
            None,
        ))?;
        Ok(())
    };
    let reused = HttpsClient::new(url, tls.clone())?;
    get(&reused)?;
    let c0 = thread_cpu()?;
    for _ in 0..n {
        get(&reused)?;
    }
    let on_reused = (thread_cpu()? - c0) / n;
    let c0 = thread_cpu()?;
    for _ in 0..n {
        get(&HttpsClient::new(url, tls.clone())?)?;
    }
    let on_new = (thread_cpu()? - c0) / n;
    Ok(on_new.saturating_sub(on_reused))
}
