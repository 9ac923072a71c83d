//! `patchctl-bench fleet-shard` (internal): one process of simulated agents for
//! `patchctl-bench fleet-nodes`. Every process here may open at most 20,000 files, so a
//! fleet of 100,000 agents holding their long-polls needs several simulator processes,
//! as it needs several platform nodes.
//!
//! A shard runs agents `first .. first + count` (their index gives each its host name
//! and source address, as in `fleet`) with the long-poll against one node, and every
//! second replaces `DIR/shard-K.json` with its [`Status`] (written to a temporary file
//! and renamed, so the parent never reads half of one).

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use patchctl_proto::Secret;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::agent::{self, Fleet, Liveness, Recorder};
use super::{conn, scan};

/// `patchctl-bench fleet-shard` (started by `fleet-nodes`, not by hand).
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// The node these agents talk to.
    #[arg(long)]
    pub server: std::net::SocketAddr,
    /// The platform's CA certificate.
    #[arg(long)]
    pub ca: PathBuf,
    /// A file holding the enrollment key (kept off the command line).
    #[arg(long)]
    pub key_file: PathBuf,
    /// Where to write the status.
    #[arg(long)]
    pub status: PathBuf,
    /// The first agent's index.
    #[arg(long)]
    pub first: usize,
    /// Agents in this shard.
    #[arg(long)]
    pub count: usize,
    /// Heartbeat interval, seconds.
    #[arg(long)]
    pub interval_secs: u64,
    /// Seconds over which the agents start.
    #[arg(long)]
    pub ramp_secs: u64,
    /// Packages per agent.
    #[arg(long)]
    pub packages: usize,
    /// Worker threads.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
}

/// What a shard reports, every second.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Status {
    /// Enrollments that succeeded / failed.
    pub enrolled: u64,
    /// Failed enrollment attempts (shed or refused, retried).
    pub enroll_failed: u64,
    /// Heartbeats that succeeded / failed.
    pub heartbeats: u64,
    /// Failed heartbeats.
    pub heartbeat_failed: u64,
    /// Long-polls answered / failed.
    pub waits: u64,
    /// Failed long-polls.
    pub wait_failed: u64,
    /// Failed scans, results and connections.
    pub other_failed: u64,
    /// Long-polls held now.
    pub waiting: i64,
    /// Host ids of the enrolled agents.
    pub hosts: Vec<Uuid>,
    /// Each command's arrival at its agent, in microseconds since the Unix epoch.
    pub received: Vec<(Uuid, u64)>,
    /// A few distinct errors.
    pub errors: Vec<String>,
}

/// Microseconds since the Unix epoch (the clock the parent and every shard share).
pub fn unix_us(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// Runs the shard until it is killed.
pub fn main(a: Args) -> std::process::ExitCode {
    match run(a) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("patchctl-bench: fleet-shard: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(a: Args) -> anyhow::Result<()> {
    let nofile = super::platform::raise_nofile(super::platform::nr_open());
    let key = Secret::new(std::fs::read_to_string(&a.key_file)?.trim().to_owned());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(a.threads.max(1))
        .thread_name(crate::cpu::LOAD_THREADS)
        .enable_all()
        .build()?;
    let end = a.first + a.count;
    let fleet = Arc::new(Fleet {
        server: a.server,
        tls: conn::base_config(&a.ca)?,
        key,
        interval: Duration::from_secs(a.interval_secs.max(1)),
        // One scan after enrollment; the next after 1,000 heartbeats (not in the run).
        scan_every: 1_000,
        change_every: 0,
        long_poll: true,
        inventory: scan::Inventory::new(a.packages),
        rec: Recorder::default(),
        live: (0..end).map(|_| Liveness::default()).collect(),
        hosts: Mutex::new(Vec::with_capacity(a.count)),
        epoch: Instant::now(),
        stop: Default::default(),
        conns: Arc::new(tokio::sync::Semaphore::new(
            (nofile.saturating_sub(1_000) as usize).max(1_000),
        )),
    });
    let ramp = Duration::from_secs(a.ramp_secs);
    for (n, i) in (a.first..end).enumerate() {
        let delay = ramp.mul_f64(n as f64 / a.count.max(1) as f64);
        rt.spawn(agent::run(fleet.clone(), i, delay));
    }
    // The wall clock at the simulator's epoch: `received` holds monotonic instants.
    let (epoch, epoch_wall) = (Instant::now(), SystemTime::now());
    let tmp = a.status.with_extension("tmp");
    let parent = std::os::unix::process::parent_id();
    loop {
        std::thread::sleep(Duration::from_secs(1));
        if std::os::unix::process::parent_id() != parent {
            // `fleet-nodes` is gone (killed without the chance to stop its shards).
            anyhow::bail!("the parent process {parent} is gone; stopping");
        }
        let status = status_of(&fleet, epoch, epoch_wall);
        std::fs::write(&tmp, serde_json::to_vec(&status)?)?;
        std::fs::rename(&tmp, &a.status)?;
    }
}

fn status_of(fleet: &Fleet, epoch: Instant, epoch_wall: SystemTime) -> Status {
    let r = &fleet.rec;
    let load = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
    let received = r
        .received
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .map(|(id, at)| {
            let wall = match at.checked_duration_since(epoch) {
                Some(d) => epoch_wall + d,
                None => epoch_wall - epoch.duration_since(*at),
            };
            (*id, unix_us(wall))
        })
        .collect();
    Status {
        enrolled: load(&r.enroll.ok),
        enroll_failed: load(&r.enroll.err),
        heartbeats: load(&r.heartbeat.ok),
        heartbeat_failed: load(&r.heartbeat.err),
        waits: load(&r.waits.ok),
        wait_failed: load(&r.waits.err),
        other_failed: load(&r.scan.err) + load(&r.results.err) + load(&r.connect_errors),
        waiting: r.waiting.load(Ordering::Relaxed),
        hosts: fleet
            .hosts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone(),
        received,
        errors: r.errors.lock().unwrap_or_else(|p| p.into_inner()).clone(),
    }
}
