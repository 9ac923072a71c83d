//! `patchctl-bench hostload` (issue 15): what the agent costs the host it runs on.
//!
//! 1. A scan of 2,000 packages: the agent's own scan code (`patchctl_agent`: read and
//!    parse the dpkg status, build the state, hash, diff, compress, store the
//!    acknowledged state), with its CPU time (`getrusage`, this process and its
//!    children) and IO (`/proc/self/io`) per scan. The status file is this host's
//!    `/var/lib/dpkg/status` (its installed packages, repeated under new names up to
//!    2,000), as the `inventory` benchmark reads it; read warm (the page cache holds
//!    it, as after dpkg wrote it) and once cold (evicted with `POSIX_FADV_DONTNEED`).
//! 2. The agent's CPU over heartbeats ([`agent`]), extrapolated to a day of 288.
//! 3. A CPU-bound and an IO-bound load ([`loads`]), each alone and beside repeated
//!    scans, alternated in the same run, all pinned to the same CPU: the slowdown of
//!    the load (issue target: at most 2 %).
//!
//! The scans here run in this process at the agent's background priority (its code
//! lowers its own threads); the loads run at nice 0. The unit's `CPUWeight=20`
//! does not apply: the bench is one process in one cgroup.

pub mod agent;
pub mod loads;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Utc;
use nix::sys::resource::{UsageWho, getrusage};
use patchctl_agent::inventory::dpkg;
use patchctl_agent::priority::in_background;
use patchctl_agent::scan::{Acked, encode, state_of, upload_for};

use loads::{Scanner, cpu_load, filesystem_of, io_load, median};

/// The target: the slowdown of a busy host's load beside a scan.
pub const TARGET_SLOWDOWN_PERCENT: f64 = 2.0;
/// The target: the agent's share of one core over a day of heartbeats.
pub const TARGET_DAY_SHARE_PERCENT: f64 = 0.01;

/// `patchctl-bench hostload`.
#[derive(clap::Args)]
pub struct Args {
    /// Packages in the scanned dpkg status.
    #[arg(long, default_value_t = 2000)]
    packages: usize,
    /// Timed scans for the cost per scan.
    #[arg(long, default_value_t = 20)]
    scans: u32,
    /// Seconds of each load run (alone or beside scans).
    #[arg(long, default_value_t = 5.0)]
    secs: f64,
    /// Alone/beside pairs per load.
    #[arg(long, default_value_t = 5)]
    rounds: u32,
    /// Seconds of heartbeats measured.
    #[arg(long, default_value_t = 120)]
    heartbeat_secs: u64,
    /// The CPU the loads and the scans are pinned to.
    #[arg(long, default_value_t = 0)]
    cpu: usize,
    /// Directory of the IO load's file (default: the system's temporary directory).
    #[arg(long)]
    dir: Option<PathBuf>,
    #[command(flatten)]
    bins: crate::Bins,
}

/// IO counters of `/proc/self/io`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Io {
    /// Bytes read by system calls (page cache included).
    pub rchar: u64,
    /// Bytes written by system calls.
    pub wchar: u64,
    /// Bytes fetched from storage.
    pub read_bytes: u64,
    /// Bytes sent to storage.
    pub write_bytes: u64,
}

fn io_now() -> Io {
    let text = std::fs::read_to_string("/proc/self/io").unwrap_or_default();
    let get = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(k)?.trim().parse().ok())
            .unwrap_or(0)
    };
    Io {
        rchar: get("rchar:"),
        wchar: get("wchar:"),
        read_bytes: get("read_bytes:"),
        write_bytes: get("write_bytes:"),
    }
}

impl Io {
    fn per(self, later: Io, n: u64) -> Io {
        let d = |a: u64, b: u64| b.saturating_sub(a) / n.max(1);
        Io {
            rchar: d(self.rchar, later.rchar),
            wchar: d(self.wchar, later.wchar),
            read_bytes: d(self.read_bytes, later.read_bytes),
            write_bytes: d(self.write_bytes, later.write_bytes),
        }
    }
}

/// CPU time of this process and its reaped children so far.
fn cpu_now() -> anyhow::Result<Duration> {
    let mut total = Duration::ZERO;
    for who in [UsageWho::RUSAGE_SELF, UsageWho::RUSAGE_CHILDREN] {
        let u = getrusage(who)?;
        for t in [u.user_time(), u.system_time()] {
            total += Duration::from_micros(t.tv_sec() as u64 * 1_000_000 + t.tv_usec() as u64);
        }
    }
    Ok(total)
}

/// Writes a dpkg status of `n` installed packages to `path`: the installed stanzas of
/// `source`, repeated under new names (`name-k`); its size in bytes.
pub fn write_status(source: &Path, n: usize, path: &Path) -> anyhow::Result<usize> {
    let text = std::fs::read_to_string(source)
        .with_context(|| format!("cannot read {}", source.display()))?;
    let stanzas: Vec<&str> = text
        .split("\n\n")
        .map(str::trim)
        .filter(|s| s.starts_with("Package:") && s.contains("\nStatus: install ok installed"))
        .collect();
    anyhow::ensure!(
        !stanzas.is_empty(),
        "no installed package in {}",
        source.display()
    );
    let mut out = String::new();
    for i in 0..n {
        let s = stanzas[i % stanzas.len()];
        let (first, rest) = s.split_once('\n').unwrap_or((s, ""));
        out.push_str(&format!("{first}-{}\n{rest}\n\n", i / stanzas.len()));
    }
    std::fs::write(path, &out)?;
    Ok(out.len())
}

/// One scan of the agent's own work, as its runtime does it; the packages found.
pub fn scan_once(status: &Path, state_dir: &Path) -> anyhow::Result<usize> {
    let parsed = dpkg::read_status(status)?;
    let system = in_background(patchctl_agent::sysinfo::collect);
    let state = state_of(system, Some("dpkg".into()), &parsed.packages, None);
    let upload = upload_for(&state, None, Utc::now());
    encode(&upload).map_err(anyhow::Error::msg)?;
    let n = state.packages.len();
    Acked {
        digest: upload.digest,
        state,
    }
    .save(state_dir)?;
    Ok(n)
}

/// The cost of one scan.
#[derive(Debug, Clone)]
pub struct ScanCost {
    /// Packages scanned.
    pub packages: usize,
    /// Size of the status file.
    pub status_bytes: usize,
    /// Timed scans.
    pub scans: u32,
    /// CPU time per warm scan (user + system, this process and children).
    pub cpu: Duration,
    /// Wall time per warm scan.
    pub wall: Duration,
    /// IO per warm scan.
    pub io: Io,
    /// CPU time of one scan with the status file evicted from the page cache.
    pub cold_cpu: Duration,
    /// IO of that scan.
    pub cold_io: Io,
}

fn evict(path: &Path) -> anyhow::Result<()> {
    use nix::fcntl::{PosixFadviseAdvice, posix_fadvise};
    let f = std::fs::File::open(path)?;
    f.sync_all()?;
    posix_fadvise(&f, 0, 0, PosixFadviseAdvice::POSIX_FADV_DONTNEED)?;
    Ok(())
}

/// The status file this host's agent would read, or the repository's fixture.
fn status_source() -> PathBuf {
    let host = Path::new(dpkg::STATUS_PATH);
    if host.is_file() {
        return host.to_path_buf();
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../patchctl-proto/tests/data/inventory/dpkg-status-bookworm.txt")
}

/// Measures the cost per scan of `packages` packages over `scans` scans.
pub fn scan_cost(dir: &Path, packages: usize, scans: u32) -> anyhow::Result<ScanCost> {
    let status = dir.join("status");
    let status_bytes = write_status(&status_source(), packages, &status)?;
    let state_dir = dir.join("state");
    std::fs::create_dir_all(&state_dir)?;
    let found = scan_once(&status, &state_dir)?;
    anyhow::ensure!(
        found == packages,
        "scanned {found} packages, wrote {packages}"
    );
    evict(&status)?;
    let (c0, i0) = (cpu_now()?, io_now());
    scan_once(&status, &state_dir)?;
    let (cold_cpu, cold_io) = (cpu_now()? - c0, i0.per(io_now(), 1));
    let (c0, i0, t0) = (cpu_now()?, io_now(), Instant::now());
    for _ in 0..scans {
        scan_once(&status, &state_dir)?;
    }
    let n = scans.max(1);
    Ok(ScanCost {
        packages,
        status_bytes,
        scans,
        wall: t0.elapsed() / n,
        cpu: (cpu_now()? - c0) / n,
        io: i0.per(io_now(), u64::from(n)),
        cold_cpu,
        cold_io,
    })
}

/// A load alone and beside scans.
#[derive(Debug, Clone)]
pub struct SideBySide {
    /// Which load.
    pub load: &'static str,
    /// Its unit of work.
    pub unit: &'static str,
    /// Rates alone, one per round.
    pub alone: Vec<f64>,
    /// Rates beside scans, one per round.
    pub beside: Vec<f64>,
    /// Scans made beside it, in all.
    pub scans: u64,
    /// Seconds beside scans, in all.
    pub beside_secs: f64,
}

impl SideBySide {
    /// The load's slowdown beside scans, in percent of its median rate alone.
    pub fn slowdown_percent(&self) -> f64 {
        let alone = median(&self.alone);
        (1.0 - median(&self.beside) / alone.max(f64::MIN_POSITIVE)) * 100.0
    }

    /// Round-to-round spread of the load alone (max - min over median, percent): the
    /// noise a slowdown must be read against.
    pub fn spread_percent(&self) -> f64 {
        let max = self.alone.iter().copied().fold(f64::MIN, f64::max);
        let min = self.alone.iter().copied().fold(f64::MAX, f64::min);
        (max - min) / median(&self.alone).max(f64::MIN_POSITIVE) * 100.0
    }
}

/// Runs `load` alone and beside back-to-back scans on `scan_cpu` (any CPU for `None`),
/// `rounds` times, alternating which goes first, after one unmeasured warm-up run of
/// the load (the first runs after creating its file are not the load's steady state).
fn side_by_side(
    name: &'static str,
    unit: &'static str,
    rounds: u32,
    scan_cpu: Option<usize>,
    dir: &Path,
    load: &dyn Fn() -> anyhow::Result<f64>,
) -> anyhow::Result<SideBySide> {
    let status = dir.join("status");
    let state_dir = dir.join("state");
    let mut out = SideBySide {
        load: name,
        unit,
        alone: Vec::new(),
        beside: Vec::new(),
        scans: 0,
        beside_secs: 0.0,
    };
    load()?;
    for round in 0..rounds {
        for beside in [round % 2 == 1, round % 2 == 0] {
            if beside {
                let scanner = Scanner::start(scan_cpu, status.clone(), state_dir.clone());
                let t0 = Instant::now();
                let rate = load()?;
                out.beside_secs += t0.elapsed().as_secs_f64();
                out.scans += scanner.stop()?;
                out.beside.push(rate);
            } else {
                out.alone.push(load()?);
            }
        }
    }
    Ok(out)
}

/// Everything `hostload` measured.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Per scan.
    pub scan: ScanCost,
    /// Over heartbeats; `None` when not measured (the smoke form without binaries).
    pub heartbeats: Option<anyhow::Result<agent::HeartbeatCost, String>>,
    /// The loads.
    pub loads: Vec<SideBySide>,
    /// The CPU everything was pinned to.
    pub cpu: usize,
    /// Where the IO load wrote.
    pub io_fs: String,
    /// Fraction of the machine busy during the load runs (all processes).
    pub machine_busy: f64,
}

/// Busy fraction of the machine between two `/proc/stat` readings.
fn machine_ticks() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let v: Vec<u64> = text
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    (v.iter().sum(), idle)
}

/// Runs every part.
pub fn run(a: &Args) -> anyhow::Result<Outcome> {
    let tmp = tempfile::Builder::new()
        .prefix("patchctl-bench-hostload-")
        .tempdir()?;
    let io_dir = match &a.dir {
        Some(d) => tempfile::Builder::new()
            .prefix("hostload-io-")
            .tempdir_in(d)?,
        None => tempfile::Builder::new().prefix("hostload-io-").tempdir()?,
    };
    let scan = scan_cost(tmp.path(), a.packages, a.scans)?;
    let secs = Duration::from_secs_f64(a.secs);
    let (t0, i0) = machine_ticks();
    let cpu_load = || cpu_load(a.cpu, secs);
    let io_load = || io_load(a.cpu, io_dir.path(), secs);
    let cpu = side_by_side(
        "CPU-bound (xorshift loop), scans on its CPU",
        "iterations/s",
        a.rounds,
        Some(a.cpu),
        tmp.path(),
        &cpu_load,
    )?;
    let io = side_by_side(
        "IO-bound (4 KiB write + fdatasync + 4 KiB read), scans on its CPU",
        "ops/s",
        a.rounds,
        Some(a.cpu),
        tmp.path(),
        &io_load,
    )?;
    let cpu_free = side_by_side(
        "CPU-bound (xorshift loop), scans free to use any CPU",
        "iterations/s",
        a.rounds,
        None,
        tmp.path(),
        &cpu_load,
    )?;
    let (t1, i1) = machine_ticks();
    let machine_busy = 1.0 - (i1 - i0) as f64 / (t1 - t0).max(1) as f64;
    let heartbeats = (a.heartbeat_secs > 0).then(|| {
        let fcfg = crate::footprint_config(&a.bins, 0, 1);
        agent::run(&fcfg, Duration::from_secs(a.heartbeat_secs)).map_err(|e| format!("{e:#}"))
    });
    Ok(Outcome {
        scan,
        heartbeats,
        loads: vec![cpu, io, cpu_free],
        cpu: a.cpu,
        io_fs: filesystem_of(io_dir.path()),
        machine_busy,
    })
}

fn kib(b: u64) -> String {
    format!("{:.1} KiB", b as f64 / 1024.0)
}

/// The report.
pub fn markdown(a: &Args, o: &Outcome) -> String {
    let s = &o.scan;
    let mut md = format!(
        "### Issue 15: the agent on a busy host\n\n\
         `patchctl-bench hostload --packages {} --scans {} --secs {} --rounds {} --heartbeat-secs {} --cpu {}` (release)\n\n\
         **Per scan of {} packages** (dpkg status {:.2} MB; the agent's own scan work at its background priority, mean of {} warm scans):\n\n\
         | | CPU (user+sys) | wall | rchar | wchar | read_bytes | write_bytes |\n|---|---|---|---|---|---|---|\n\
         | warm (status in the page cache) | {:.1} ms | {:.1} ms | {} | {} | {} | {} |\n\
         | cold (status evicted first) | {:.1} ms | | {} | {} | {} | {} |\n\n",
        a.packages,
        a.scans,
        a.secs,
        a.rounds,
        a.heartbeat_secs,
        a.cpu,
        s.packages,
        s.status_bytes as f64 / 1e6,
        s.scans,
        s.cpu.as_secs_f64() * 1e3,
        s.wall.as_secs_f64() * 1e3,
        kib(s.io.rchar),
        kib(s.io.wchar),
        kib(s.io.read_bytes),
        kib(s.io.write_bytes),
        s.cold_cpu.as_secs_f64() * 1e3,
        kib(s.cold_io.rchar),
        kib(s.cold_io.wchar),
        kib(s.cold_io.read_bytes),
        kib(s.cold_io.write_bytes),
    );
    match &o.heartbeats {
        None => md.push_str("**Heartbeats:** not measured.\n\n"),
        Some(Err(e)) => md.push_str(&format!("**Heartbeats:** FAILED: {e}\n\n")),
        Some(Ok(h)) => md.push_str(&format!(
            "**Heartbeats** (release agent against a release platform on 127.0.0.1, heartbeat every {} s, {:.0} s measured after the first scan: ≈{:.0} heartbeats): \
             {:.2} ms CPU in the agent's threads (schedstat), {:.0} ms by `/proc/PID/stat` ticks with reaped children: \
             {:.3} ms per heartbeat on a reused connection (the larger); a new TLS 1.3 connection adds {:.3} ms (the agent's client, measured in-process), \
             which every heartbeat at the default 300 s opens: **{:.3} ms per heartbeat** → 288 a day = **{:.5} % of one core** (target < {TARGET_DAY_SHARE_PERCENT} %: {}).\n\n",
            agent::HEARTBEAT_SECS,
            h.window.as_secs_f64(),
            h.heartbeats,
            h.cpu.as_secs_f64() * 1e3,
            h.cpu_ticks.as_secs_f64() * 1e3,
            h.per_heartbeat().as_secs_f64() * 1e3,
            h.new_connection.as_secs_f64() * 1e3,
            h.per_default_heartbeat().as_secs_f64() * 1e3,
            h.day_share_percent(),
            if h.day_share_percent() < TARGET_DAY_SHARE_PERCENT { "met" } else { "NOT met" },
        )),
    }
    md.push_str(&format!(
        "**A busy host's load beside repeated scans** (load pinned to CPU {}, the scanner pinned to the same CPU (the worst case) or free; scans back to back; each load run {} s, one warm-up run, then {} alone/beside pairs alternated; IO on {}; machine busy {:.0} % over these runs):\n\n\
         | load | median alone | median beside scans | slowdown | spread alone | scans beside (per s) | target ≤ {TARGET_SLOWDOWN_PERCENT} % |\n|---|---|---|---|---|---|---|\n",
        o.cpu, a.secs, a.rounds, o.io_fs, o.machine_busy * 100.0
    ));
    for l in &o.loads {
        md.push_str(&format!(
            "| {} | {:.4e} {} | {:.4e} {} | {:.1} % | {:.1} % | {} ({:.1}) | {} |\n",
            l.load,
            median(&l.alone),
            l.unit,
            median(&l.beside),
            l.unit,
            l.slowdown_percent(),
            l.spread_percent(),
            l.scans,
            l.scans as f64 / l.beside_secs.max(1e-9),
            if l.slowdown_percent() <= TARGET_SLOWDOWN_PERCENT {
                "met"
            } else {
                "NOT met"
            },
        ));
    }
    md
}

/// `patchctl-bench hostload`.
pub fn main(a: Args) -> ExitCode {
    println!("{}", crate::machine_markdown());
    match run(&a) {
        Ok(o) => {
            println!("{}", markdown(&a, &o));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("hostload: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The smoke form: 2,000 packages, 3 scans, 1 s loads, 1 round, 20 s of heartbeats;
/// fails only on an implausible measurement (the targets are for the full run).
pub fn smoke() -> anyhow::Result<String> {
    let a = Args {
        packages: 2000,
        scans: 3,
        secs: 1.0,
        rounds: 1,
        heartbeat_secs: 20,
        cpu: 0,
        dir: None,
        bins: crate::Bins {
            agent_bin: None,
            patchctl_bin: None,
        },
    };
    let o = run(&a)?;
    let md = markdown(&a, &o);
    let implausible = o.scan.cpu.is_zero()
        || o.loads
            .iter()
            .any(|l| l.scans == 0 || median(&l.alone) <= 0.0)
        || !matches!(&o.heartbeats, Some(Ok(h)) if h.heartbeats >= 1.0);
    anyhow::ensure!(!implausible, "implausible measurement\n{md}");
    Ok(md)
}
