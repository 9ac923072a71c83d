//! `patchctl-bench fleet-nodes` (issue 16 §2 and §3): a fleet holding its long-polls
//! across several `patchctl server` nodes on one PostgreSQL database, for the figure one
//! process cannot give here: the platform's memory with 100,000 agents waiting.
//!
//! Every process on this machine may open at most 20,000 files (root cannot raise the
//! hard limit), and a waiting agent holds one connection at the platform and one at the
//! simulator. So the platform runs as N nodes (the first makes the organisation and the
//! development PKI; the others share its configuration and database, as
//! docs/deployment.md runs them), and the simulator as N shard processes
//! ([`super::shard`]), shard K's agents on node K, each shard with its own enrollment
//! key (docs/deployment.md: parts of a large fleet get their own keys).
//!
//! A run: start the nodes, start the shards, wait until every agent is enrolled and
//! holds its long-poll, sample every node's memory, then queue commands through the
//! nodes in turn for random hosts (so most commands are queued on a node other than the
//! one holding their agent's long-poll: the cross-node wake-up) and measure the time
//! from the queue call's return to the agent holding the command.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use patchctl_net::{HttpsClient, client_config};
use rand::Rng;
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use super::platform::{self, Database, Node, Platform};
use super::shard::{Status, unix_us};
use crate::procs::{ChildGuard, Mem, mem};
use crate::stats::{Summary, mib, ms, thousands};

/// Set on SIGINT or SIGTERM.
static STOP: AtomicBool = AtomicBool::new(false);

/// PostgreSQL connections one node may hold: its pool (16) and its `LISTEN` connection.
const PG_CONNECTIONS_PER_NODE: u64 = 17;
/// Connections a node may hold here: its 20,000 files less the 1,024 it keeps.
const CONNECTIONS_PER_PROCESS: usize = 18_000;

/// `patchctl-bench fleet-nodes`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Simulated agents, all holding the long-poll.
    #[arg(long, default_value_t = 100_000)]
    pub agents: usize,
    /// Platform nodes (and simulator shards): at most 18,000 agents each here.
    #[arg(long, default_value_t = 7)]
    pub nodes: usize,
    /// Heartbeat interval of the agents, in seconds.
    #[arg(long, default_value_t = 300)]
    pub interval_secs: u64,
    /// Seconds over which each shard starts its agents (default: agents / 120, about
    /// what 2 CPUs enroll per second on PostgreSQL beside the rest of the run; faster,
    /// the nodes shed enrollments and the agents' retries cost more than they gain).
    #[arg(long)]
    pub ramp_secs: Option<u64>,
    /// Seconds of the measured window (commands queued).
    #[arg(long, default_value_t = 60)]
    pub seconds: u64,
    /// Commands queued per second in the window.
    #[arg(long, default_value_t = 5.0)]
    pub commands_per_sec: f64,
    /// Packages in each agent's inventory (its one full scan).
    #[arg(long, default_value_t = 50)]
    pub packages: usize,
    /// Share of the agents that must hold a long-poll before the sample (0–1).
    #[arg(long, default_value_t = 0.98)]
    pub waiting_share: f64,
    /// PostgreSQL server for the scratch database.
    #[arg(long, default_value = super::DEFAULT_POSTGRES_URL)]
    pub postgres_url: String,
    /// The platform binary (default: `patchctl` beside this executable).
    #[arg(long)]
    pub patchctl_bin: Option<PathBuf>,
}

impl Args {
    /// The smoke form: 600 agents across 3 nodes at 30 s, a 5 s window.
    pub fn smoke(postgres_url: String) -> Args {
        Args {
            agents: 600,
            nodes: 3,
            interval_secs: 30,
            ramp_secs: Some(3),
            seconds: 5,
            commands_per_sec: 4.0,
            packages: 20,
            waiting_share: 0.98,
            postgres_url,
            patchctl_bin: None,
        }
    }
}

/// One platform node as measured.
struct NodeFigures {
    addr: std::net::SocketAddr,
    before: Mem,
    after: Mem,
    fds: u64,
    waiting: i64,
}

/// What a run measured.
struct Report {
    args: Args,
    nodes: Vec<NodeFigures>,
    enrolled_after: Duration,
    waiting_after: Duration,
    waiting: i64,
    /// The shards' statuses when the memory was sampled and after the window.
    sampled: Vec<Status>,
    shards: Vec<Status>,
    shard_mem: Vec<Mem>,
    shard_fds: Vec<u64>,
    queued: usize,
    cross_node: usize,
    latency: Option<Summary>,
    delivered: usize,
}

/// `patchctl-bench fleet-nodes`.
pub fn main(a: Args) -> ExitCode {
    match run(a) {
        Ok(r) => {
            println!("{}\n{}", crate::machine_markdown(), markdown(&r));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("patchctl-bench: fleet-nodes: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The smoke check: the small run, every command delivered within 5 s.
pub fn smoke(postgres_url: String) -> anyhow::Result<String> {
    let r = run(Args::smoke(postgres_url))?;
    let md = markdown(&r);
    let mut wrong = Vec::new();
    if r.queued == 0 || r.delivered < r.queued {
        wrong.push(format!(
            "{} of {} commands reached their agent",
            r.delivered, r.queued
        ));
    }
    if r.cross_node == 0 {
        wrong.push("no command was queued through another node than its agent's".into());
    }
    if r.latency
        .as_ref()
        .is_some_and(|l| l.p99 > Duration::from_secs(5))
    {
        wrong.push("the p99 from queue to agent is over 5 s".into());
    }
    if r.nodes.iter().any(|n| n.waiting <= 0) {
        wrong.push("a node held no long-poll".into());
    }
    if wrong.is_empty() {
        Ok(md)
    } else {
        anyhow::bail!("{}\n{md}", wrong.join("; "))
    }
}

/// Fails unless PostgreSQL admits every node's connections, saying what to change.
async fn check_postgres(url: &str, nodes: usize) -> anyhow::Result<()> {
    let mut c = PgConnection::connect(url)
        .await
        .with_context(|| format!("cannot connect to PostgreSQL at {url}"))?;
    let max: String = sqlx::query_scalar("SHOW max_connections")
        .fetch_one(&mut c)
        .await?;
    let max: u64 = max.parse().unwrap_or(0);
    let need = nodes as u64 * PG_CONNECTIONS_PER_NODE + 10;
    if max < need {
        anyhow::bail!(
            "{nodes} nodes hold up to {} PostgreSQL connections, and this server's max_connections is {max}: \
             raise it (`ALTER SYSTEM SET max_connections = {need};` and restart PostgreSQL) or run fewer nodes",
            nodes as u64 * PG_CONNECTIONS_PER_NODE
        );
    }
    Ok(())
}

fn read_status(path: &Path) -> Option<Status> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

fn run(a: Args) -> anyhow::Result<Report> {
    anyhow::ensure!(a.nodes >= 1, "--nodes must be at least 1");
    let per_node = a.agents.div_ceil(a.nodes);
    anyhow::ensure!(
        per_node <= CONNECTIONS_PER_PROCESS,
        "{per_node} agents per node is more than one process here holds (about {CONNECTIONS_PER_PROCESS}): use at least {} nodes",
        a.agents.div_ceil(CONNECTIONS_PER_PROCESS)
    );
    platform::raise_nofile(platform::nr_open());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(check_postgres(&a.postgres_url, a.nodes))?;
    // Ctrl-C or SIGTERM ends the run through the error path, which stops the shards
    // and the nodes and drops the scratch database. The flag is read while the fleet
    // comes up (the long part); during the window the run ends on its own.
    rt.spawn(async {
        use tokio::signal::unix::{SignalKind, signal};
        if let (Ok(mut int), Ok(mut term)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            STOP.store(true, Ordering::Relaxed);
        }
    });
    let bin = a
        .patchctl_bin
        .clone()
        .unwrap_or_else(|| crate::footprint::beside_me("patchctl"));
    eprintln!(
        "fleet-nodes: starting {} nodes on one PostgreSQL ...",
        a.nodes
    );
    let mut plat = rt.block_on(Platform::start(
        &bin,
        Database::Postgres,
        &a.postgres_url,
        a.interval_secs,
    ))?;
    let result = (|| {
        let mut nodes = Vec::new();
        for n in 1..a.nodes {
            nodes.push(rt.block_on(plat.start_node(n))?);
        }
        run_with(&a, &rt, &mut plat, &mut nodes)
    })();
    rt.block_on(plat.stop());
    rt.shutdown_timeout(Duration::from_secs(2));
    result
}

fn run_with(
    a: &Args,
    rt: &tokio::runtime::Runtime,
    plat: &mut Platform,
    nodes: &mut [Node],
) -> anyhow::Result<Report> {
    let addrs: Vec<_> = std::iter::once(plat.addr)
        .chain(nodes.iter().map(|n| n.addr))
        .collect();
    let pids: Vec<u32> = std::iter::once(plat.pid())
        .chain(nodes.iter().map(|n| n.pid()))
        .collect();
    let before: Vec<Mem> = pids.iter().map(|p| mem(*p).unwrap_or_default()).collect();
    let dir = plat.dir().to_path_buf();
    let me = std::env::current_exe()?;
    let ramp = a.ramp_secs.unwrap_or((a.agents as u64 / 120).max(5));
    let mut shards = Vec::new();
    let mut status_files = Vec::new();
    let epoch = Instant::now();
    for (k, addr) in addrs.iter().enumerate() {
        let key = if k == 0 {
            plat.enrollment_key.clone()
        } else {
            rt.block_on(plat.new_enrollment_key(&format!("fleet-nodes shard {k}")))?
        };
        let key_file = dir.join(format!("shard-{k}.key"));
        std::fs::write(&key_file, key.expose())?;
        let first = k * a.agents / a.nodes;
        let count = (k + 1) * a.agents / a.nodes - first;
        let status = dir.join(format!("shard-{k}.json"));
        let mut cmd = Command::new(&me);
        cmd.arg("fleet-shard")
            .arg("--server")
            .arg(addr.to_string())
            .arg("--ca")
            .arg(&plat.pki.ca_cert)
            .arg("--key-file")
            .arg(&key_file)
            .arg("--status")
            .arg(&status)
            .args(["--first", &first.to_string(), "--count", &count.to_string()])
            .args(["--interval-secs", &a.interval_secs.to_string()])
            .args(["--ramp-secs", &ramp.to_string()])
            .args(["--packages", &a.packages.to_string()]);
        shards.push(ChildGuard::spawn(
            cmd,
            &format!("simulator shard {k}"),
            &dir.join(format!("shard-{k}.log")),
        )?);
        status_files.push(status);
    }
    eprintln!(
        "fleet-nodes: {} agents in {} shards, starting over {ramp} s, long-polls held ...",
        a.agents, a.nodes
    );
    // Enrollment, then every agent holding its long-poll.
    let limit = Duration::from_secs(ramp)
        + Duration::from_secs(a.interval_secs) * 2
        + Duration::from_secs(1_800);
    let want_waiting = (a.agents as f64 * a.waiting_share.clamp(0.0, 1.0)) as i64;
    let mut enrolled_after = None;
    let mut last_print = Instant::now();
    let (statuses, waiting_after) = loop {
        std::thread::sleep(Duration::from_secs(1));
        anyhow::ensure!(
            !STOP.load(Ordering::Relaxed),
            "interrupted; the shards, the nodes and the scratch database are cleaned up"
        );
        for s in shards.iter_mut() {
            s.ensure_running()?;
        }
        plat.ensure_running()?;
        for n in nodes.iter_mut() {
            n.ensure_running()?;
        }
        let st: Vec<Status> = status_files
            .iter()
            .map(|p| read_status(p).unwrap_or_default())
            .collect();
        let enrolled: u64 = st.iter().map(|s| s.enrolled).sum();
        let waiting: i64 = st.iter().map(|s| s.waiting).sum();
        if enrolled_after.is_none() && enrolled >= a.agents as u64 {
            enrolled_after = Some(epoch.elapsed());
        }
        if last_print.elapsed() >= Duration::from_secs(10) {
            last_print = Instant::now();
            let shed: u64 = st.iter().map(|s| s.enroll_failed).sum();
            eprintln!(
                "fleet-nodes: {:>4} s: {enrolled} enrolled ({shed} attempts shed or failed, retried), {waiting} waiting",
                epoch.elapsed().as_secs()
            );
        }
        if enrolled_after.is_some() && waiting >= want_waiting {
            break (st, epoch.elapsed());
        }
        if epoch.elapsed() > limit {
            let errors: Vec<&String> = st.iter().flat_map(|s| &s.errors).take(8).collect();
            anyhow::bail!(
                "after {limit:?}: {enrolled} of {} enrolled, {waiting} holding a long-poll (wanted {want_waiting}); errors seen: {errors:?}",
                a.agents
            );
        }
    };
    // The sample: every node's memory with the fleet waiting.
    let after: Vec<Mem> = pids.iter().map(|p| mem(*p).unwrap_or_default()).collect();
    let fds: Vec<u64> = pids.iter().map(|p| platform::fds(*p)).collect();
    let waiting: i64 = statuses.iter().map(|s| s.waiting).sum();
    let shard_mem: Vec<Mem> = shards
        .iter()
        .map(|s| mem(s.pid()).unwrap_or_default())
        .collect();
    let shard_fds: Vec<u64> = shards.iter().map(|s| platform::fds(s.pid())).collect();
    eprintln!(
        "fleet-nodes: {waiting} waiting; queueing {} commands/s for {} s through the nodes in turn ...",
        a.commands_per_sec, a.seconds
    );
    // Which node holds each host.
    let node_of: HashMap<Uuid, usize> = statuses
        .iter()
        .enumerate()
        .flat_map(|(k, s)| s.hosts.iter().map(move |h| (*h, k)))
        .collect();
    let hosts: Vec<Uuid> = node_of.keys().copied().collect();
    let queued = rt.block_on(queue_commands(a, plat, &addrs, &hosts))?;
    std::thread::sleep(Duration::from_secs(5));
    let end: Vec<Status> = status_files
        .iter()
        .map(|p| read_status(p).unwrap_or_default())
        .collect();
    let received: HashMap<Uuid, u64> = end.iter().flat_map(|s| s.received.clone()).collect();
    let lat: Vec<Duration> = queued
        .iter()
        .filter_map(|(id, _, _, at)| {
            received
                .get(id)
                .map(|r| Duration::from_micros(r.saturating_sub(*at)))
        })
        .collect();
    let cross_node = queued
        .iter()
        .filter(|(_, host, via, _)| node_of.get(host) != Some(via))
        .count();
    let nodes_fig = addrs
        .iter()
        .enumerate()
        .map(|(k, addr)| NodeFigures {
            addr: *addr,
            before: before[k],
            after: after[k],
            fds: fds[k],
            waiting: statuses[k].waiting,
        })
        .collect();
    Ok(Report {
        args: a.clone(),
        nodes: nodes_fig,
        enrolled_after: enrolled_after.unwrap_or_default(),
        waiting_after,
        waiting,
        sampled: statuses,
        shards: end,
        shard_mem,
        shard_fds,
        queued: queued.len(),
        cross_node,
        delivered: lat.len(),
        latency: Summary::of(lat),
    })
}

/// Queues `health_check` commands for random hosts through the nodes in turn; returns
/// each command with its host, the node it was queued through and the moment (Unix
/// microseconds) its queue call returned.
async fn queue_commands(
    a: &Args,
    plat: &Platform,
    addrs: &[std::net::SocketAddr],
    hosts: &[Uuid],
) -> anyhow::Result<Vec<(Uuid, Uuid, usize, u64)>> {
    anyhow::ensure!(!hosts.is_empty(), "no enrolled host to queue commands for");
    let tls = client_config(Some(&plat.pki.ca_cert))?;
    let operators: Vec<HttpsClient> = addrs
        .iter()
        .map(|addr| HttpsClient::new(&format!("https://{addr}"), tls.clone()))
        .collect::<Result<_, _>>()?;
    let every = Duration::from_secs_f64(1.0 / a.commands_per_sec.max(0.001));
    let mut tick = tokio::time::interval(every);
    let start = Instant::now();
    let mut out = Vec::new();
    let mut n = 0usize;
    while start.elapsed() < Duration::from_secs(a.seconds.max(1)) {
        tick.tick().await;
        let host = hosts[rand::rng().random_range(0..hosts.len())];
        let via = n % operators.len();
        n += 1;
        let id = super::queue_health_check(&operators[via], &plat.token, host)
            .await
            .with_context(|| {
                format!("the operator could not queue a command through node {via}")
            })?;
        out.push((id, host, via, unix_us(SystemTime::now())));
    }
    Ok(out)
}

fn markdown(r: &Report) -> String {
    let a = &r.args;
    let mut s = format!(
        "### fleet-nodes: {} agents holding long-polls across {} `patchctl server` nodes on one PostgreSQL\n\n\
         `patchctl-bench fleet-nodes --agents {} --nodes {} --interval-secs {} --seconds {} --commands-per-sec {} --packages {}`\n\n\
         Enrolled after {:.0} s; {} of them holding a long-poll after {:.0} s.\n\n\
         | node | VmRSS before | VmRSS with the fleet waiting | waiting on it | open fds |\n|---|---:|---:|---:|---:|\n",
        thousands(a.agents as u64),
        a.nodes,
        a.agents,
        a.nodes,
        a.interval_secs,
        a.seconds,
        a.commands_per_sec,
        a.packages,
        r.enrolled_after.as_secs_f64(),
        thousands(r.waiting.max(0) as u64),
        r.waiting_after.as_secs_f64(),
    );
    for (k, n) in r.nodes.iter().enumerate() {
        s += &format!(
            "| {k} ({}) | {} | {} | {} | {} |\n",
            n.addr,
            mib(n.before.rss_kib),
            mib(n.after.rss_kib),
            thousands(n.waiting.max(0) as u64),
            thousands(n.fds),
        );
    }
    let before: u64 = r.nodes.iter().map(|n| n.before.rss_kib).sum();
    let after: u64 = r.nodes.iter().map(|n| n.after.rss_kib).sum();
    let fds: u64 = r.nodes.iter().map(|n| n.fds).sum();
    s += &format!(
        "| **all nodes** | {} | {} | {} | {} |\n\n",
        mib(before),
        mib(after),
        thousands(r.waiting.max(0) as u64),
        thousands(fds)
    );
    let per = after.saturating_sub(before) as f64 / r.waiting.max(1) as f64;
    s += &format!(
        "**Platform RSS per waiting agent: {per:.1} KiB** (the nodes' VmRSS with the fleet waiting less before the fleet, over the agents waiting); \
         with the nodes' own baseline: {:.1} KiB per waiting agent, {} in all.\n\n",
        after as f64 / r.waiting.max(1) as f64,
        mib(after)
    );
    let lat = r
        .latency
        .as_ref()
        .map(|l| format!("{} / {} / {} ms", ms(l.p50), ms(l.p99), ms(l.max)))
        .unwrap_or_else(|| "none arrived".into());
    s += &format!(
        "| figure | measured | reference |\n|---|---:|---|\n\
         | commands queued / reached their agent | {} / {} | |\n\
         | of them queued through a node other than the one holding the agent's long-poll | {} | the cross-node wake-up (`NOTIFY`) |\n\
         | **queue → agent p50 / p99 / max** | **{lat}** | ≤ 5 s at p99 (issue 16 §2) |\n",
        r.queued, r.delivered, r.cross_node
    );
    let sum = |of: &[Status], f: fn(&Status) -> u64| of.iter().map(f).sum::<u64>();
    // The whole run (the fleet coming up included), then the window alone.
    let (run, sampled) = (&r.shards[..], &r.sampled[..]);
    let both = |f: fn(&Status) -> u64| {
        let all = sum(run, f);
        (
            thousands(all),
            thousands(all.saturating_sub(sum(sampled, f))),
        )
    };
    let (hb, hb_w) = both(|s| s.heartbeats);
    let (hbf, hbf_w) = both(|s| s.heartbeat_failed);
    let (wt, wt_w) = both(|s| s.waits);
    let (wtf, wtf_w) = both(|s| s.wait_failed);
    let (enf, enf_w) = both(|s| s.enroll_failed);
    let (oth, oth_w) = both(|s| s.other_failed);
    s += &format!(
        "| heartbeats ok / failed; long-polls answered / failed — whole run | {hb} / {hbf}; {wt} / {wtf} | |\n\
         | the same in the window | {hb_w} / {hbf_w}; {wt_w} / {wtf_w} | |\n\
         | enrollment attempts shed or failed (retried by the agents) — whole run / window | {enf} / {enf_w} | |\n\
         | scans, results, connections failed — whole run / window | {oth} / {oth_w} | |\n",
    );
    let shard_rss: u64 = r.shard_mem.iter().map(|m| m.rss_kib).sum();
    s += &format!(
        "| simulator: {} shard processes, VmRSS / open fds in all | {} / {} | |\n",
        r.shard_mem.len(),
        mib(shard_rss),
        thousands(r.shard_fds.iter().sum())
    );
    let errors: Vec<&String> = r.shards.iter().flat_map(|s| &s.errors).take(8).collect();
    if !errors.is_empty() {
        s += "\nErrors seen (a few, distinct per shard):\n\n";
        for e in errors {
            s += &format!("- {e}\n");
        }
    }
    s
}
