//! `patchctl-bench fleet` (issue 16 §1): N simulated agents with the real agent's
//! protocol code and connection pattern against ONE real `patchctl server` process.
//!
//! - [`platform`]: the release `patchctl server --config` child on SQLite or a scratch
//!   PostgreSQL database, with a development PKI; killed and restarted for the storm.
//! - [`conn`]: each agent's connections (new TCP + TLS 1.3 per step, resumed with its
//!   own session store, from its own source address in 127.0.0.0/8).
//! - [`agent`]: the agent's loop (enroll, heartbeat with jitter, results, scans with
//!   deltas, backoff; optionally the long-poll between heartbeats).
//! - [`scan`]: the synthetic inventory and the agent's scan bodies.
//! - [`ceiling`]: the bare rustls + hyper ceiling under the same connection pattern.
//! - [`report`]: the Markdown.
//! - [`nodes`] and [`shard`]: `patchctl-bench fleet-nodes`, the fleet's long-polls held
//!   across several nodes on one PostgreSQL by several simulator processes (one process
//!   here holds at most 20,000 files).
//!
//! A run: start the platform, ramp the agents up (each enrolls, heartbeats, sends its
//! full scan, then waits a uniformly random part of an interval so that the fleet's
//! phases spread), measure a window of steady state while an operator queues commands,
//! kill the platform (SIGKILL) and start it again (the reconnect storm), stop the
//! agents, and measure the closed-loop ceilings.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use http::Method;
use patchctl_proto::api::{CommandRecord, QueueCommandRequest};
use rand::Rng;
use uuid::Uuid;

pub mod agent;
pub mod ceiling;
pub mod conn;
pub mod nodes;
pub mod platform;
pub mod report;
pub mod scan;
pub mod shard;

use agent::{Fleet, Liveness, Recorder};
use platform::{Database, Platform};

/// The default PostgreSQL admin URL (a scratch database is made on it).
pub(crate) const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// `patchctl-bench fleet`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Simulated agents.
    #[arg(long, default_value_t = 100_000)]
    pub agents: usize,
    /// Heartbeat interval of the agents, in seconds (a real agent: 300; 30 s with
    /// 100,000 agents stands for a million at 300 s).
    #[arg(long, default_value_t = 30)]
    pub interval_secs: u64,
    /// Length of the measured window, in seconds.
    #[arg(long, default_value_t = 120)]
    pub seconds: u64,
    /// Seconds over which the agents start (default: agents / 1,500, at least 5).
    #[arg(long)]
    pub ramp_secs: Option<u64>,
    /// The platform's database.
    #[arg(long, value_enum, default_value_t = Database::Sqlite)]
    pub database: Database,
    /// PostgreSQL server for the scratch database.
    #[arg(long, default_value = DEFAULT_POSTGRES_URL)]
    pub postgres_url: String,
    /// Packages in each agent's inventory.
    #[arg(long, default_value_t = 300)]
    pub packages: usize,
    /// Heartbeats between two scans of an agent (12: hourly at 5 minutes).
    #[arg(long, default_value_t = 12)]
    pub scan_every: u32,
    /// One agent in this many changes a few packages between scans (0: none).
    #[arg(long, default_value_t = 10)]
    pub change_every: usize,
    /// Commands the operator queues per second during the window.
    #[arg(long, default_value_t = 5.0)]
    pub commands_per_sec: f64,
    /// Hold the long-poll (`POST /api/v1/agent/commands/wait`) between heartbeats.
    #[arg(long)]
    pub long_poll: bool,
    /// Seconds the platform stays down in the storm (0: no storm).
    #[arg(long, default_value_t = 10)]
    pub storm_down_secs: u64,
    /// Skip the reconnect storm.
    #[arg(long)]
    pub no_storm: bool,
    /// Closed-loop agents of the ceiling measurements (0: none).
    #[arg(long, default_value_t = 64)]
    pub ceiling_loops: usize,
    /// Seconds of each ceiling measurement.
    #[arg(long, default_value_t = 10)]
    pub ceiling_secs: u64,
    /// Worker threads of the simulator (default: the number of CPUs).
    #[arg(long)]
    pub client_threads: Option<usize>,
    /// The platform binary (default: `patchctl` beside this executable).
    #[arg(long)]
    pub patchctl_bin: Option<PathBuf>,
}

impl Args {
    /// The smoke form: 2,000 agents at 10 s on SQLite, a 10 s window, a 1 s storm.
    pub fn smoke() -> Args {
        Args {
            agents: 2_000,
            interval_secs: 10,
            seconds: 10,
            ramp_secs: Some(5),
            database: Database::Sqlite,
            postgres_url: DEFAULT_POSTGRES_URL.into(),
            packages: 100,
            scan_every: 2,
            change_every: 5,
            commands_per_sec: 10.0,
            long_poll: false,
            storm_down_secs: 1,
            no_storm: false,
            ceiling_loops: 8,
            ceiling_secs: 2,
            client_threads: None,
            patchctl_bin: None,
        }
    }

    fn ramp(&self) -> Duration {
        Duration::from_secs(
            self.ramp_secs
                .unwrap_or((self.agents as u64 / 1_500).max(5)),
        )
    }

    fn interval(&self) -> Duration {
        Duration::from_secs(self.interval_secs.max(1))
    }
}

/// Figures of a window.
#[derive(Debug, Clone, Default)]
pub struct Window {
    /// Its length.
    pub elapsed: Duration,
    /// Successful heartbeats.
    pub ok: u64,
    /// Failed steps (heartbeats, scans, results, connections).
    pub errors: u64,
    /// Heartbeat latency (connect + TLS + request).
    pub latency: Option<crate::stats::Summary>,
    /// Full handshakes in the window.
    pub full: u64,
    /// Resumed handshakes in the window.
    pub resumed: u64,
    /// Scans sent in the window, by kind (full, delta, unchanged).
    pub scans: (u64, u64, u64),
    /// CPU of the machine in the window.
    pub cpu: crate::cpu::Usage,
    /// CPU time of the platform process in the window.
    pub platform_cpu: Duration,
    /// CPU time of the simulator process in the window.
    pub simulator_cpu: Duration,
}

impl Window {
    /// Successful heartbeats per second.
    pub fn per_sec(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// The reconnect storm.
#[derive(Debug, Clone, Default)]
pub struct Storm {
    /// How long the platform was down (kill to listening again).
    pub down: Duration,
    /// From the restart until `/api/v1/health` answered.
    pub start: Duration,
    /// Agents with a failed step during the outage.
    pub affected: u64,
    /// From the kill until every affected agent had a successful heartbeat again.
    pub affected_back: Option<Duration>,
    /// From the kill until every agent had a successful heartbeat after the kill.
    pub all_back: Option<Duration>,
    /// Agents not back when the wait ended.
    pub missing: u64,
}

/// Everything a run measured.
pub struct Report {
    /// The parameters.
    pub args: Args,
    /// When the fleet was enrolled (all agents), since the start.
    pub enrolled_after: Option<Duration>,
    /// How long the bench waited for the whole fleet to enroll, and how many had by
    /// then (all of them when [`Report::enrolled_after`] is set).
    pub enroll_wait: (Duration, u64),
    /// Agents enrolled.
    pub enrolled: u64,
    /// The steady-state window.
    pub window: Window,
    /// Platform memory before the agents and after the window.
    pub mem_before: crate::procs::Mem,
    /// Platform memory after the window.
    pub mem_after: crate::procs::Mem,
    /// Open fds of the platform and of the simulator after the window.
    pub fds: (u64, u64),
    /// The fd limits (soft) of the simulator and the platform.
    pub nofile: (u64, u64),
    /// Agents holding a long-poll when the memory was sampled.
    pub waiting: i64,
    /// Commands queued, delivered, and the latency from the queue call's return to the
    /// agent holding the command.
    pub commands: (u64, u64, Option<crate::stats::Summary>),
    /// The storm.
    pub storm: Option<anyhow::Result<Storm>>,
    /// Closed loops: hello and the platform.
    pub ceilings: Vec<(&'static str, ceiling::Loop)>,
    /// A few errors seen.
    pub errors: Vec<String>,
    /// Counters over the whole run.
    pub totals: String,
}

/// `patchctl-bench fleet`.
pub fn main(a: Args) -> ExitCode {
    match run(a) {
        Ok(r) => {
            println!("{}\n{}", crate::machine_markdown(), report::markdown(&r));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("patchctl-bench: fleet: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The smoke check: the small run and what must hold.
pub fn smoke() -> anyhow::Result<String> {
    let r = run(Args::smoke())?;
    let md = report::markdown(&r);
    let mut wrong = Vec::new();
    if r.enrolled < r.args.agents as u64 {
        wrong.push(format!(
            "only {} of {} agents enrolled",
            r.enrolled, r.args.agents
        ));
    }
    if r.window.ok == 0 || r.window.errors > 0 {
        wrong.push(format!(
            "{} heartbeats, {} errors in the window",
            r.window.ok, r.window.errors
        ));
    }
    if r.window.resumed == 0 {
        wrong.push("no TLS session was resumed".into());
    }
    if r.commands.0 == 0 || r.commands.1 < r.commands.0 {
        wrong.push(format!(
            "{} of {} commands reached their agent",
            r.commands.1, r.commands.0
        ));
    }
    match &r.storm {
        Some(Ok(s)) if s.missing == 0 => {}
        Some(Ok(s)) => wrong.push(format!(
            "{} agents did not come back after the restart",
            s.missing
        )),
        Some(Err(e)) => wrong.push(format!("the storm failed: {e:#}")),
        None => {}
    }
    if wrong.is_empty() {
        Ok(md)
    } else {
        anyhow::bail!("{}\n{md}", wrong.join("; "))
    }
}

/// Runs the fleet.
pub fn run(args: Args) -> anyhow::Result<Report> {
    let own_nofile = platform::raise_nofile(platform::nr_open());
    let threads = args.client_threads.unwrap_or_else(crate::cpus);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .thread_name(crate::cpu::LOAD_THREADS)
        .enable_all()
        .build()?;
    let bin = args
        .patchctl_bin
        .clone()
        .unwrap_or_else(|| crate::footprint::beside_me("patchctl"));
    let mut plat = rt.block_on(Platform::start(
        &bin,
        args.database,
        &args.postgres_url,
        args.interval_secs,
    ))?;
    let result = run_with(&args, &rt, &mut plat, own_nofile);
    rt.block_on(plat.stop());
    rt.shutdown_timeout(Duration::from_secs(2));
    result
}

fn nofile_of(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/limits"))
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3).map(str::to_owned))
        })
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn run_with(
    args: &Args,
    rt: &tokio::runtime::Runtime,
    plat: &mut Platform,
    own_nofile: u64,
) -> anyhow::Result<Report> {
    let interval = args.interval();
    let mem_before = plat.mem();
    let nofile = (own_nofile, nofile_of(plat.pid()));
    let tls = conn::base_config(&plat.pki.ca_cert)?;
    let fleet = Arc::new(Fleet {
        server: plat.addr,
        tls: tls.clone(),
        key: plat.enrollment_key.clone(),
        interval,
        scan_every: args.scan_every,
        change_every: args.change_every,
        long_poll: args.long_poll,
        inventory: scan::Inventory::new(args.packages),
        rec: Recorder::default(),
        live: (0..args.agents).map(|_| Liveness::default()).collect(),
        hosts: Mutex::new(Vec::with_capacity(args.agents)),
        epoch: Instant::now(),
        stop: Default::default(),
        conns: Arc::new(tokio::sync::Semaphore::new(
            (own_nofile.saturating_sub(2_000) as usize).max(1_000),
        )),
    });
    let operator = plat.operator()?;
    let ramp = args.ramp();
    eprintln!(
        "fleet: {} agents at {} s on {}, starting over {} s ...",
        args.agents,
        args.interval_secs,
        args.database.label(),
        ramp.as_secs()
    );
    for i in 0..args.agents {
        let delay = ramp.mul_f64(i as f64 / args.agents.max(1) as f64);
        rt.spawn(agent::run(fleet.clone(), i, delay));
    }
    // Enrollment.
    let limit = ramp + interval * 2 + Duration::from_secs(120);
    let (enrolled_after, enroll_wait) = loop {
        std::thread::sleep(Duration::from_millis(200));
        let n = fleet.rec.enroll.ok.load(Ordering::Relaxed);
        if n >= args.agents as u64 {
            break (Some(fleet.epoch.elapsed()), (limit, n));
        }
        if fleet.epoch.elapsed() > limit {
            eprintln!(
                "fleet: only {n} of {} agents enrolled within {limit:?}",
                args.agents
            );
            break (None, (limit, n));
        }
    };
    // Steady state: every agent's first wait was part of an interval, so after one
    // more interval the phases are spread.
    eprintln!("fleet: enrolled; settling for one interval ...");
    std::thread::sleep(interval + interval / 10);
    eprintln!("fleet: measuring {} s ...", args.seconds);
    let window = measure(args, rt, plat, &fleet, operator)?;
    let mem_after = plat.mem();
    let waiting = fleet.rec.waiting.load(Ordering::Relaxed);
    let fds = (plat.fds(), platform::fds(std::process::id()));
    // Commands queued in the window reach their agents by the next heartbeat.
    let queued = window.1;
    let window = window.0;
    // At most a minute: with a 5-minute interval the report says how many arrived.
    let grace = if args.long_poll {
        Duration::from_secs(5)
    } else {
        (interval + interval / 5 + Duration::from_secs(2)).min(Duration::from_secs(60))
    };
    std::thread::sleep(grace);
    let commands = {
        let got = fleet.rec.received.lock().unwrap_or_else(|p| p.into_inner());
        let lat: Vec<Duration> = queued
            .iter()
            .filter_map(|(id, at)| got.get(id).map(|g| g.saturating_duration_since(*at)))
            .collect();
        (
            queued.len() as u64,
            lat.len() as u64,
            crate::stats::Summary::of(lat),
        )
    };
    let storm = (!args.no_storm && args.storm_down_secs > 0).then(|| {
        eprintln!(
            "fleet: reconnect storm (SIGKILL, {} s down) ...",
            args.storm_down_secs
        );
        storm(args, rt, plat, &fleet)
    });
    fleet.stop.store(true, Ordering::Relaxed);
    let mut ceilings = Vec::new();
    if args.ceiling_loops > 0 {
        eprintln!(
            "fleet: ceilings ({} closed loops, {} s each) ...",
            args.ceiling_loops, args.ceiling_secs
        );
        let (hello, hello_rt) =
            ceiling::start_hello(&plat.pki.server_cert, &plat.pki.server_key, crate::cpus())?;
        let w = Duration::from_secs(args.ceiling_secs.max(1));
        let me = std::process::id();
        // The bare server runs on threads named "hello" inside this process: its CPU is
        // theirs, the clients' is the rest of the process.
        let hello_cpu: ceiling::CpuProbe = Arc::new(move || {
            let server = platform::threads_cpu("hello");
            (server, platform::cpu_time(me).saturating_sub(server))
        });
        ceilings.push((
            "hello (bare rustls + hyper)",
            rt.block_on(ceiling::closed_loop(
                hello,
                &tls,
                None,
                args.ceiling_loops,
                w,
                hello_cpu,
            )),
        ));
        hello_rt.shutdown_background();
        let pid = plat.pid();
        let platform_cpu: ceiling::CpuProbe =
            Arc::new(move || (platform::cpu_time(pid), platform::cpu_time(me)));
        ceilings.push((
            "platform heartbeat",
            rt.block_on(ceiling::closed_loop(
                plat.addr,
                &tls,
                Some(plat.enrollment_key.clone()),
                args.ceiling_loops,
                w,
                platform_cpu,
            )),
        ));
    }
    let r = &fleet.rec;
    let totals = format!(
        "enrollments {} ok / {} failed; heartbeats {} / {}; scans {} / {} (full {}, delta {}, unchanged {}, need_full {}); results {} / {}; long-polls {} / {}; handshakes full {}, resumed {}; connections failed {}",
        r.enroll.ok.load(Ordering::Relaxed),
        r.enroll.err.load(Ordering::Relaxed),
        r.heartbeat.ok.load(Ordering::Relaxed),
        r.heartbeat.err.load(Ordering::Relaxed),
        r.scan.ok.load(Ordering::Relaxed),
        r.scan.err.load(Ordering::Relaxed),
        r.scan_full.load(Ordering::Relaxed),
        r.scan_delta.load(Ordering::Relaxed),
        r.scan_unchanged.load(Ordering::Relaxed),
        r.need_full.load(Ordering::Relaxed),
        r.results.ok.load(Ordering::Relaxed),
        r.results.err.load(Ordering::Relaxed),
        r.waits.ok.load(Ordering::Relaxed),
        r.waits.err.load(Ordering::Relaxed),
        r.full_handshakes.load(Ordering::Relaxed),
        r.resumed_handshakes.load(Ordering::Relaxed),
        r.connect_errors.load(Ordering::Relaxed),
    );
    let errors = r.errors.lock().unwrap_or_else(|p| p.into_inner()).clone();
    Ok(Report {
        args: args.clone(),
        enrolled_after,
        enroll_wait,
        enrolled: r.enroll.ok.load(Ordering::Relaxed),
        window,
        mem_before,
        mem_after,
        fds,
        nofile,
        waiting,
        commands,
        storm,
        ceilings,
        errors,
        totals,
    })
}

fn errors_now(r: &Recorder) -> u64 {
    r.heartbeat.err.load(Ordering::Relaxed)
        + r.scan.err.load(Ordering::Relaxed)
        + r.results.err.load(Ordering::Relaxed)
        + r.enroll.err.load(Ordering::Relaxed)
        + r.waits.err.load(Ordering::Relaxed)
        + r.connect_errors.load(Ordering::Relaxed)
}

/// Queues a `health_check` for `host` through the operator API; returns its id.
pub(crate) async fn queue_health_check(
    operator: &patchctl_net::HttpsClient,
    token: &patchctl_proto::Secret,
    host: Uuid,
) -> anyhow::Result<Uuid> {
    let req = QueueCommandRequest {
        host: host.to_string(),
        kind: "health_check".into(),
        params: serde_json::json!({}),
        expires_in_secs: None,
    };
    let rec: CommandRecord = operator
        .json(
            Method::POST,
            "/api/v1/commands",
            Some(token.expose()),
            Some(&req),
        )
        .await?;
    Ok(rec.id)
}

/// The measured window, with an operator queueing commands; returns the window and
/// each queued command with the moment its queue call returned.
fn measure(
    args: &Args,
    rt: &tokio::runtime::Runtime,
    plat: &Platform,
    fleet: &Arc<Fleet>,
    operator: patchctl_net::HttpsClient,
) -> anyhow::Result<(Window, HashMap<Uuid, Instant>)> {
    let r = &fleet.rec;
    let h0 = (
        r.full_handshakes.load(Ordering::Relaxed),
        r.resumed_handshakes.load(Ordering::Relaxed),
    );
    let s0 = (
        r.scan_full.load(Ordering::Relaxed),
        r.scan_delta.load(Ordering::Relaxed),
        r.scan_unchanged.load(Ordering::Relaxed),
    );
    let e0 = errors_now(r) - r.heartbeat.err.load(Ordering::Relaxed);
    let cpu0 = crate::cpu::snapshot();
    let me = std::process::id();
    let (p0, m0) = (platform::cpu_time(plat.pid()), platform::cpu_time(me));
    let w0 = fleet.epoch.elapsed();
    let start = Instant::now();
    let length = Duration::from_secs(args.seconds.max(1));
    let token = plat.token.clone();
    let hosts: Vec<Uuid> = fleet
        .hosts
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let queued: Arc<Mutex<HashMap<Uuid, Instant>>> = Arc::default();
    let q = queued.clone();
    let every = Duration::from_secs_f64(1.0 / args.commands_per_sec.max(0.001));
    let ops = rt.spawn(async move {
        if hosts.is_empty() {
            return Ok::<_, anyhow::Error>(());
        }
        let mut tick = tokio::time::interval(every);
        while start.elapsed() < length {
            tick.tick().await;
            let host = hosts[rand::rng().random_range(0..hosts.len())];
            let id = queue_health_check(&operator, &token, host)
                .await
                .context("the operator could not queue a command")?;
            q.lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(id, Instant::now());
        }
        Ok(())
    });
    std::thread::sleep(length);
    let w1 = fleet.epoch.elapsed();
    let cpu1 = crate::cpu::snapshot();
    let (p1, m1) = (platform::cpu_time(plat.pid()), platform::cpu_time(me));
    if let Err(e) = rt.block_on(ops)? {
        eprintln!("fleet: operator: {e:#}");
        r.error(&e);
    }
    let samples: Vec<agent::Sample> = r
        .samples
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .filter(|s| s.at >= w0 && s.at < w1)
        .copied()
        .collect();
    let ok: Vec<Duration> = samples.iter().filter(|s| s.ok).map(|s| s.latency).collect();
    let hb_err = samples.iter().filter(|s| !s.ok).count() as u64;
    let e1 = errors_now(r) - r.heartbeat.err.load(Ordering::Relaxed);
    let window = Window {
        elapsed: w1 - w0,
        ok: ok.len() as u64,
        errors: hb_err + (e1 - e0),
        latency: crate::stats::Summary::of(ok),
        full: r.full_handshakes.load(Ordering::Relaxed) - h0.0,
        resumed: r.resumed_handshakes.load(Ordering::Relaxed) - h0.1,
        scans: (
            r.scan_full.load(Ordering::Relaxed) - s0.0,
            r.scan_delta.load(Ordering::Relaxed) - s0.1,
            r.scan_unchanged.load(Ordering::Relaxed) - s0.2,
        ),
        cpu: cpu0.until(&cpu1),
        platform_cpu: p1.saturating_sub(p0),
        simulator_cpu: m1.saturating_sub(m0),
    };
    let queued = std::mem::take(&mut *queued.lock().unwrap_or_else(|p| p.into_inner()));
    Ok((window, queued))
}

/// Kills the platform, keeps it down, starts it again and waits for the agents.
fn storm(
    args: &Args,
    rt: &tokio::runtime::Runtime,
    plat: &mut Platform,
    fleet: &Arc<Fleet>,
) -> anyhow::Result<Storm> {
    let kill_at = Instant::now();
    let kill_ms = fleet.epoch.elapsed().as_millis() as u64;
    plat.kill();
    std::thread::sleep(Duration::from_secs(args.storm_down_secs));
    plat.restart()?;
    let start = rt.block_on(plat.wait_ready(Duration::from_secs(120)))?;
    let down = kill_at.elapsed();
    let limit = args.interval() * 2 + Duration::from_secs(60);
    let mut s = Storm {
        down,
        start,
        ..Storm::default()
    };
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let mut affected = 0;
        let mut affected_missing = 0;
        let mut missing = 0;
        for l in &fleet.live {
            let ok = l.last_ok_ms.load(Ordering::Relaxed);
            let fail = l.last_fail_ms.load(Ordering::Relaxed);
            if fail >= kill_ms {
                affected += 1;
                if ok <= fail {
                    affected_missing += 1;
                }
            }
            if ok <= kill_ms {
                missing += 1;
            }
        }
        s.affected = affected;
        // The start of the last stretch in which no affected agent was missing.
        if affected_missing > 0 {
            s.affected_back = None;
        } else if s.affected_back.is_none() {
            s.affected_back = Some(kill_at.elapsed());
        }
        s.missing = missing;
        if missing == 0 {
            s.all_back = Some(kill_at.elapsed());
            break;
        }
        // Agents the outage did not hit come back at their next heartbeat; with a long
        // interval the wait ends a minute after the affected ones are back.
        let settled = s
            .affected_back
            .is_some_and(|t| kill_at.elapsed() > t + Duration::from_secs(60));
        if kill_at.elapsed() > limit || settled {
            break;
        }
    }
    Ok(s)
}
