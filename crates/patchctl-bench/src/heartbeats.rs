//! Platform throughput: the real platform (`patchctl_server::launch_with_listener`) on
//! `127.0.0.1:0` over TLS 1.3 with a development PKI, on SQLite or PostgreSQL, driven
//! by simulated agents that enroll through `/api/v1/agent/enroll` and then send
//! heartbeats in a closed loop, each over its own `HttpsClient` (its own TLS
//! connection). The `hello` backend replaces the platform with a bare rustls + hyper
//! server, the ceiling the same load generator can reach on the same machine.
//!
//! The platform runs on its own tokio runtime (its own threads) and the load generator
//! on another, so they do not share a scheduler; they do share the machine's cores.
//!
//! Two diagnostic backends take the network away instead: `store-sqlite` and
//! `store-postgres` make, from as many concurrent tasks as there are agents, exactly
//! the storage calls the heartbeat handler makes (`host_by_credential` with the
//! credential's hash, `record_heartbeat`, `lease_commands`), on the platform's
//! runtime, with no TLS, HTTP or JSON.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Utc;
use clap::ValueEnum;
use patchctl_net::{DevPki, ensure_dev_pki, server_config};
use patchctl_proto::agent::{
    DiskUsage, EnrollRequest, EnrollResponse, HeartbeatRequest, HeartbeatResponse, Metrics, OsInfo,
    SystemInfo,
};
use patchctl_proto::{PROTOCOL_VERSION, Secret};
use patchctl_server::Settings;
use patchctl_server::auth::{CREDENTIAL_PREFIX, hash_secret, new_secret};
use patchctl_server::heartbeats::HeartbeatBatcher;
use patchctl_storage::{HeartbeatWrite, NewHost, Storage};
use tokio::net::TcpListener;
use tokio::runtime::Runtime;
use tokio::task::JoinSet;

use crate::cpu;
use crate::loadclient::{CLIENT_LABEL, LoadClient};
use crate::pg::ScratchDb;
use crate::stats::{Summary, ms, thousands};

/// The target on SQLite: heartbeats per second.
pub const TARGET_PER_SEC: f64 = 3_300.0;
/// The target on SQLite: 99th percentile latency.
pub const TARGET_P99: Duration = Duration::from_millis(25);

/// Per-request timeout of the simulated agents.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest enrollment plus warm-up phase.
const SETUP_TIMEOUT: Duration = Duration::from_secs(120);
/// Distinct error messages kept per run.
const MAX_ERROR_SAMPLES: usize = 5;
/// The heartbeat endpoint.
const HEARTBEAT_PATH: &str = "/api/v1/agent/heartbeat";
/// The platform's settings in these runs (its defaults).
const HEARTBEAT_SECS: u64 = 300;
const LEASE_SECS: u64 = 600;
const HISTORY_LEN: u32 = 288;
/// The heartbeat handler's cap on commands per heartbeat.
const MAX_COMMANDS: u32 = 16;

/// What serves the heartbeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    /// The platform on SQLite (a file in a temporary directory).
    Sqlite,
    /// The platform on a fresh PostgreSQL database.
    Postgres,
    /// A bare rustls + hyper server answering a fixed body: the ceiling.
    Hello,
    /// Diagnostic: the heartbeat handler's SQLite storage calls alone.
    StoreSqlite,
    /// Diagnostic: the heartbeat handler's PostgreSQL storage calls alone.
    StorePostgres,
}

impl Backend {
    /// Name in tables.
    pub fn label(self) -> &'static str {
        match self {
            Backend::Sqlite => "platform + SQLite",
            Backend::Postgres => "platform + PostgreSQL",
            Backend::Hello => "hello (bare TLS + HTTP)",
            Backend::StoreSqlite => "SQLite storage calls only (no TLS/HTTP)",
            Backend::StorePostgres => "PostgreSQL storage calls only (no TLS/HTTP)",
        }
    }

    fn is_postgres(self) -> bool {
        matches!(self, Backend::Postgres | Backend::StorePostgres)
    }

    fn is_store_only(self) -> bool {
        matches!(self, Backend::StoreSqlite | Backend::StorePostgres)
    }
}

/// Parameters of a run.
#[derive(Debug, Clone)]
pub struct Config {
    /// Simulated agents (one TLS connection each).
    pub agents: usize,
    /// Length of the measured window.
    pub duration: Duration,
    /// Admin URL of the PostgreSQL server (a scratch database is created on it).
    pub postgres_url: String,
    /// Worker threads of the server's runtime.
    pub server_threads: usize,
    /// Worker threads of the load generator's runtime.
    pub client_threads: usize,
}

/// The result of one backend's run.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The backend.
    pub backend: Backend,
    /// Simulated agents.
    pub agents: usize,
    /// Time from the start of the measured window until the last request completed.
    pub elapsed: Duration,
    /// Successful heartbeats in the window.
    pub ok: u64,
    /// Failed heartbeats in the window.
    pub errors: u64,
    /// A few distinct error messages.
    pub error_samples: Vec<String>,
    /// Latency of the successful heartbeats.
    pub latency: Option<Summary>,
    /// Time to enroll every agent and send one warm-up heartbeat each.
    pub setup: Duration,
    /// CPU time spent during the measured window.
    pub cpu: cpu::Usage,
}

impl Outcome {
    /// Successful heartbeats per second.
    pub fn per_sec(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// CPU microseconds per successful heartbeat.
    fn cpu_per_op(&self, d: Duration) -> String {
        if self.ok == 0 {
            return "–".into();
        }
        format!("{:.0}", d.as_secs_f64() * 1e6 / self.ok as f64)
    }
}

fn runtime(name: &str, threads: usize) -> anyhow::Result<Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .thread_name(name)
        .enable_all()
        .build()?)
}

/// Runs one backend: start it, enroll, load, stop, clean up.
pub fn run(backend: Backend, cfg: &Config) -> anyhow::Result<Outcome> {
    let tmp = tempfile::Builder::new()
        .prefix("patchctl-bench-")
        .tempdir()?;
    let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    let pki = ensure_dev_pki(&tmp.path().join("pki"), &names)?;
    let server_rt = runtime(cpu::SERVER_THREADS, cfg.server_threads)?;
    let client_rt = runtime(cpu::LOAD_THREADS, cfg.client_threads)?;
    let scratch = if backend.is_postgres() {
        Some(client_rt.block_on(ScratchDb::create(&cfg.postgres_url))?)
    } else {
        None
    };
    let database_url = match &scratch {
        Some(db) => db.url.clone(),
        None => format!("sqlite://{}", tmp.path().join("patchctl.db").display()),
    };
    let result = if backend.is_store_only() {
        server_rt.block_on(store_only(backend, cfg, &database_url))
    } else {
        run_on(backend, cfg, &pki, &database_url, &server_rt, &client_rt)
    };
    // Stop the platform (and close its pool) before the scratch database is dropped.
    server_rt.shutdown_timeout(Duration::from_secs(5));
    if let Some(db) = scratch {
        if let Err(e) = client_rt.block_on(db.drop_db()) {
            eprintln!("warning: {e:#}");
        }
    }
    client_rt.shutdown_timeout(Duration::from_secs(5));
    result
}

fn run_on(
    backend: Backend,
    cfg: &Config,
    pki: &DevPki,
    database_url: &str,
    server_rt: &Runtime,
    client_rt: &Runtime,
) -> anyhow::Result<Outcome> {
    let listener = server_rt.block_on(TcpListener::bind("127.0.0.1:0"))?;
    let addr = listener.local_addr()?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async move {
        let _ = stop_rx.await;
    };
    let (server, enrollment_key) = if backend == Backend::Hello {
        let tls = server_config(&pki.server_cert, &pki.server_key)?;
        (
            server_rt.spawn(crate::hello::serve(listener, tls, shutdown)),
            None,
        )
    } else {
        let secrets = server_rt
            .block_on(async {
                let store = patchctl_storage::open(database_url).await?;
                patchctl_server::bootstrap::create_org(store.as_ref(), "bench").await
            })
            .context("cannot create the organisation")?;
        let settings = Settings {
            heartbeat_interval_secs: HEARTBEAT_SECS,
            command_lease_secs: LEASE_SECS,
            metrics_history_len: HISTORY_LEN,
            // Every simulated agent enrolls from 127.0.0.1 with one key.
            enroll_per_address_per_min: u32::MAX,
            enroll_per_key_per_min: u32::MAX,
            // ... and each sends heartbeats back to back, far past an agent's rate
            // (docs/limits.md): the benchmark measures throughput, not the limits.
            agent_per_credential_per_min: u32::MAX,
            agent_per_address_per_min: u32::MAX,
            vuln_sync: false,
            ..Settings::with_defaults(
                addr,
                database_url.to_owned(),
                pki.server_cert.clone(),
                pki.server_key.clone(),
            )
        };
        (
            server_rt.spawn(async move {
                patchctl_server::launch_with_listener(settings, listener, shutdown)
                    .await
                    .map_err(anyhow::Error::from)
            }),
            Some(secrets.enrollment_key),
        )
    };
    let url = format!("https://127.0.0.1:{}", addr.port());
    let load = client_rt.block_on(async {
        let (agents, setup) = http_agents(&url, &pki.ca_cert, cfg, enrollment_key.as_ref()).await?;
        measure(backend, cfg, agents, setup).await
    });
    let _ = stop_tx.send(());
    let server_end =
        server_rt.block_on(async { tokio::time::timeout(Duration::from_secs(5), server).await });
    let server_error = match server_end {
        Ok(Ok(Ok(()))) => None,
        Ok(Ok(Err(e))) => Some(format!("the server failed: {e:#}")),
        Ok(Err(e)) => Some(format!("the server task failed: {e}")),
        Err(_) => Some("the server did not stop within 5 s".to_owned()),
    };
    match (load, server_error) {
        (Ok(outcome), None) => Ok(outcome),
        (Ok(_), Some(e)) => Err(anyhow::anyhow!(e)),
        (Err(e), Some(server)) => Err(e.context(server)),
        (Err(e), None) => Err(e),
    }
}

/// Runs a storage-only backend on the current (server) runtime.
async fn store_only(backend: Backend, cfg: &Config, database_url: &str) -> anyhow::Result<Outcome> {
    let setup_start = Instant::now();
    let store = patchctl_storage::open(database_url).await?;
    let secrets = patchctl_server::bootstrap::create_org(store.as_ref(), "bench").await?;
    let key = store
        .enrollment_key_by_hash(&hash_secret(secrets.enrollment_key.expose()))
        .await?
        .context("the new enrollment key is not stored")?;
    let batcher = HeartbeatBatcher::start(store.clone(), HISTORY_LEN);
    let mut agents = Vec::with_capacity(cfg.agents);
    for i in 0..cfg.agents {
        let credential = new_secret(CREDENTIAL_PREFIX);
        let host = store
            .create_host(NewHost {
                org_id: key.org_id,
                enrollment_key_id: key.id,
                credential_hash: hash_secret(credential.expose()),
                agent_version: patchctl_agent::VERSION.to_owned(),
                system: enroll_request(i, secrets.enrollment_key.clone()).system,
                now: Utc::now(),
            })
            .await?;
        let agent = SimAgent::Store {
            store: store.clone(),
            batcher: batcher.clone(),
            host_id: host.id,
        };
        agent
            .heartbeat(i, 0)
            .await
            .with_context(|| format!("agent {i}: warm-up heartbeat failed"))?;
        agents.push((i, agent));
    }
    measure(backend, cfg, agents, setup_start.elapsed()).await
}

/// A simulated agent: how it sends a heartbeat.
enum SimAgent {
    /// Over HTTPS to the platform (or the hello server).
    Http {
        client: LoadClient,
        credential: Secret,
    },
    /// Straight to the storage, as the heartbeat handler would.
    Store {
        store: Arc<dyn Storage>,
        batcher: HeartbeatBatcher,
        host_id: uuid::Uuid,
    },
}

impl SimAgent {
    /// Sends the `n`th heartbeat of agent `i`.
    async fn heartbeat(&self, i: usize, n: u64) -> anyhow::Result<()> {
        let req = heartbeat(i, n);
        match self {
            SimAgent::Http { client, credential } => {
                let _: HeartbeatResponse = client
                    .post(HEARTBEAT_PATH, Some(credential.expose()), &req)
                    .await?;
            }
            SimAgent::Store {
                store,
                batcher,
                host_id,
            } => {
                // As the handler: the credential was verified once (the platform caches
                // it), the heartbeat goes through the group-commit writer, and only a
                // host with pending commands asks for a lease.
                let now = Utc::now();
                let pending = batcher
                    .record(HeartbeatWrite {
                        host_id: *host_id,
                        agent_version: req.agent_version,
                        agent_target: req.agent_target,
                        metrics: req.metrics,
                        at: now,
                        reboot: Default::default(),
                    })
                    .await
                    .map_err(|e| anyhow::anyhow!("recording the heartbeat failed: {e}"))?;
                if pending {
                    store
                        .lease_commands(
                            *host_id,
                            now,
                            Duration::from_secs(LEASE_SECS),
                            MAX_COMMANDS,
                        )
                        .await?;
                }
            }
        }
        Ok(())
    }
}

/// Enrolls every agent (when there is a key) and sends one warm-up heartbeat each, all
/// at once; returns the agents and how long that took.
async fn http_agents(
    url: &str,
    ca: &Path,
    cfg: &Config,
    enrollment_key: Option<&Secret>,
) -> anyhow::Result<(Vec<(usize, SimAgent)>, Duration)> {
    let setup_start = Instant::now();
    let mut set = JoinSet::new();
    for i in 0..cfg.agents {
        // Each agent builds its own TLS configuration and client, as a real agent does.
        let client = LoadClient::new(url, ca, REQUEST_TIMEOUT)?;
        let key = enrollment_key.cloned();
        set.spawn(async move {
            let credential = match key {
                Some(key) => {
                    let resp: EnrollResponse = client
                        .post("/api/v1/agent/enroll", None, &enroll_request(i, key))
                        .await
                        .with_context(|| format!("agent {i}: enrollment failed"))?;
                    resp.credential
                }
                None => Secret::new("bench-hello-credential"),
            };
            let agent = SimAgent::Http { client, credential };
            agent
                .heartbeat(i, 0)
                .await
                .with_context(|| format!("agent {i}: warm-up heartbeat failed"))?;
            Ok::<_, anyhow::Error>((i, agent))
        });
    }
    let mut agents = Vec::with_capacity(cfg.agents);
    let joined = tokio::time::timeout(SETUP_TIMEOUT, async {
        while let Some(r) = set.join_next().await {
            agents.push(r??);
        }
        Ok::<_, anyhow::Error>(())
    })
    .await;
    match joined {
        Ok(r) => r?,
        Err(_) => anyhow::bail!("enrollment did not finish within {SETUP_TIMEOUT:?}"),
    }
    Ok((agents, setup_start.elapsed()))
}

/// What one simulated agent measured.
#[derive(Default)]
struct AgentLoad {
    latencies: Vec<Duration>,
    errors: u64,
    samples: Vec<String>,
}

/// The measured window: every agent sends heartbeats back to back until the deadline.
async fn measure(
    backend: Backend,
    cfg: &Config,
    agents: Vec<(usize, SimAgent)>,
    setup: Duration,
) -> anyhow::Result<Outcome> {
    let before = cpu::snapshot();
    let start = Instant::now();
    let deadline = start + cfg.duration;
    let mut set = JoinSet::new();
    for (i, agent) in agents {
        set.spawn(async move {
            let mut out = AgentLoad {
                latencies: Vec::with_capacity(4096),
                ..AgentLoad::default()
            };
            let mut n: u64 = 1;
            while Instant::now() < deadline {
                let t0 = Instant::now();
                let r = tokio::time::timeout(REQUEST_TIMEOUT, agent.heartbeat(i, n)).await;
                let dt = t0.elapsed();
                n += 1;
                let err = match r {
                    Ok(Ok(())) => {
                        out.latencies.push(dt);
                        continue;
                    }
                    Ok(Err(e)) => format!("{e:#}"),
                    Err(_) => format!("no answer within {REQUEST_TIMEOUT:?}"),
                };
                out.errors += 1;
                if out.samples.len() < MAX_ERROR_SAMPLES && !out.samples.contains(&err) {
                    out.samples.push(err);
                }
                // Do not spin on a broken connection.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            out
        });
    }
    let mut all = AgentLoad::default();
    let limit = cfg.duration + REQUEST_TIMEOUT + Duration::from_secs(10);
    let joined = tokio::time::timeout(limit, async {
        while let Some(r) = set.join_next().await {
            let a = r.context("a load task failed")?;
            all.latencies.extend(a.latencies);
            all.errors += a.errors;
            for s in a.samples {
                if all.samples.len() < MAX_ERROR_SAMPLES && !all.samples.contains(&s) {
                    all.samples.push(s);
                }
            }
        }
        Ok::<_, anyhow::Error>(())
    })
    .await;
    match joined {
        Ok(r) => r?,
        Err(_) => {
            set.abort_all();
            anyhow::bail!("the load did not finish within {limit:?}");
        }
    }
    let elapsed = start.elapsed();
    let after = cpu::snapshot();
    Ok(Outcome {
        backend,
        agents: cfg.agents,
        elapsed,
        ok: all.latencies.len() as u64,
        errors: all.errors,
        error_samples: all.samples,
        latency: Summary::of(all.latencies),
        setup,
        cpu: before.until(&after),
    })
}

const GIB: u64 = 1024 * 1024 * 1024;

fn disks(i: usize) -> Vec<DiskUsage> {
    let i = i as u64;
    vec![
        DiskUsage {
            mount: "/".into(),
            fs_type: "ext4".into(),
            used_bytes: 12 * GIB + i * 37_000_000,
            total_bytes: 40 * GIB,
        },
        DiskUsage {
            mount: "/boot".into(),
            fs_type: "ext4".into(),
            used_bytes: 183_000_000 + i * 10_000,
            total_bytes: GIB,
        },
        DiskUsage {
            mount: "/var".into(),
            fs_type: "xfs".into(),
            used_bytes: 55 * GIB + i * 91_000_000,
            total_bytes: 200 * GIB,
        },
    ]
}

pub(crate) fn enroll_request(i: usize, key: Secret) -> EnrollRequest {
    EnrollRequest {
        protocol_version: PROTOCOL_VERSION,
        license_key: key,
        agent_version: patchctl_agent::VERSION.to_owned(),
        system: SystemInfo {
            hostname: format!("bench-{i:04}.example.internal"),
            ips: vec![format!("10.20.{}.{}", i / 250, i % 250 + 2)],
            os: OsInfo {
                id: "debian".into(),
                id_like: Vec::new(),
                version_id: "12".into(),
                version_codename: "bookworm".into(),
                pretty_name: "Debian GNU/Linux 12 (bookworm)".into(),
            },
            kernel: "6.1.0-28-amd64".into(),
            arch: "x86_64".into(),
            cpu_model: "Intel(R) Xeon(R) Gold 6230R CPU @ 2.10GHz".into(),
            cpu_count: 4,
            mem_total_bytes: 8 * GIB,
            disks: disks(i),
            tags: Vec::new(),
        },
    }
}

/// A plausible heartbeat of agent `i`, the `n`th it sends.
pub(crate) fn heartbeat(i: usize, n: u64) -> HeartbeatRequest {
    let wobble = ((i as u64 * 7919 + n * 104_729) % 1000) as f32 / 1000.0;
    HeartbeatRequest {
        agent_version: patchctl_agent::VERSION.to_owned(),
        metrics: Metrics {
            cpu_percent: 3.0 + 40.0 * wobble,
            load: [0.35 + wobble, 0.41 + wobble / 2.0, 0.38],
            mem_used_bytes: 3 * GIB + (wobble * 512_000_000.0) as u64,
            mem_total_bytes: 8 * GIB,
            swap_used_bytes: 12_582_912,
            swap_total_bytes: 2 * GIB,
            disks: disks(i),
            uptime_secs: 1_728_000 + n * 300,
        },
        agent_target: None,
        update_events: Vec::new(),
        trial: false,
        reboot: None,
        booted_at: None,
        command_key_id: None,
        approvers_serial: None,
    }
}

/// The Markdown report of a set of runs.
pub fn markdown(cfg: &Config, runs: &[(Backend, anyhow::Result<Outcome>)]) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "{} simulated agents, each with its own HTTPS client ({}) and TLS 1.3 connection, \
         sending heartbeats back to back for {} s (closed loop; 3 disks per heartbeat). \
         The server runs on its own tokio runtime ({} worker threads) and the load generator \
         on another ({} worker threads), in one process: **the load generator shares the \
         machine's {} cores with the server**, so the figures are a lower bound of what the \
         server alone would sustain.\n\n",
        cfg.agents,
        CLIENT_LABEL,
        cfg.duration.as_secs_f64(),
        cfg.server_threads,
        cfg.client_threads,
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
    ));
    s.push_str(
        "| backend | heartbeats | heartbeats/s | p50 ms | p90 ms | p99 ms | max ms | errors |\n",
    );
    s.push_str("|---|---:|---:|---:|---:|---:|---:|---:|\n");
    for (backend, r) in runs {
        match r {
            Ok(o) => {
                let (p50, p90, p99, max) = match &o.latency {
                    Some(l) => (ms(l.p50), ms(l.p90), ms(l.p99), ms(l.max)),
                    None => ("–".into(), "–".into(), "–".into(), "–".into()),
                };
                s.push_str(&format!(
                    "| {} | {} | {} | {p50} | {p90} | {p99} | {max} | {} |\n",
                    o.backend.label().to_owned(),
                    thousands(o.ok),
                    thousands(o.per_sec().round() as u64),
                    o.errors
                ));
            }
            Err(e) => s.push_str(&format!(
                "| {} | failed: {} | | | | | | |\n",
                backend.label().to_owned(),
                one_line(&format!("{e:#}"))
            )),
        }
    }
    s.push('\n');
    let ok: Vec<&Outcome> = runs.iter().filter_map(|(_, r)| r.as_ref().ok()).collect();
    if !ok.is_empty() {
        s.push_str(
            "CPU time per successful heartbeat (µs) during the window, and how idle the \
             machine was:\n\n",
        );
        s.push_str("| backend | server runtime | SQLite workers | load generator | PostgreSQL processes | other processes | machine idle | steal |\n");
        s.push_str("|---|---:|---:|---:|---:|---:|---:|---:|\n");
        for o in &ok {
            s.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {:.0} % | {:.0} % |\n",
                o.backend.label().to_owned(),
                o.cpu_per_op(o.cpu.server + o.cpu.other),
                o.cpu_per_op(o.cpu.sqlite),
                o.cpu_per_op(o.cpu.load),
                o.cpu_per_op(o.cpu.postgres),
                o.cpu_per_op(o.cpu.elsewhere),
                o.cpu.idle * 100.0,
                o.cpu.steal * 100.0,
            ));
        }
        s.push_str(
            "\n(\"server runtime\" is the platform's tokio threads: TLS, HTTP, routing, \
             authentication, JSON and the async side of the database driver; for the \
             storage-only rows it also runs the calling tasks. \"SQLite workers\" are sqlx's \
             one-per-connection SQLite threads. \"other processes\" is everything else on \
             the machine, kernel threads included. \"steal\" is time the hypervisor gave \
             to other guests.)\n\n",
        );
    }
    for o in &ok {
        s.push_str(&format!(
            "- {}: enrollment and warm-up of {} agents took {:.2} s.\n",
            o.backend.label().to_owned(),
            o.agents,
            o.setup.as_secs_f64()
        ));
        for e in &o.error_samples {
            s.push_str(&format!("  - error seen: {}\n", one_line(e)));
        }
    }
    for o in &ok {
        if o.backend == Backend::Hello {
            continue;
        }
        let hello = ok.iter().find(|h| h.backend == Backend::Hello);
        if let Some(h) = hello {
            s.push_str(&format!(
                "- {} reaches {:.0} % of the hello ceiling ({} of {} heartbeats/s).\n",
                o.backend.label().to_owned(),
                100.0 * o.per_sec() / h.per_sec().max(1e-9),
                thousands(o.per_sec().round() as u64),
                thousands(h.per_sec().round() as u64),
            ));
        }
    }
    for o in ok.iter().filter(|o| o.backend == Backend::Sqlite) {
        s.push_str(&format!("- {}\n", verdict(o)));
    }
    s
}

/// The SQLite run against the target, in words.
pub fn verdict(o: &Outcome) -> String {
    let rate = o.per_sec();
    let rate_ok = rate >= TARGET_PER_SEC;
    let p99 = o.latency.map(|l| l.p99);
    let p99_ok = p99.is_some_and(|p| p <= TARGET_P99);
    let rate_text = if rate_ok {
        format!(
            "{} heartbeats/s meets the target of {} ({:.0} % of it)",
            thousands(rate.round() as u64),
            thousands(TARGET_PER_SEC as u64),
            100.0 * rate / TARGET_PER_SEC
        )
    } else {
        format!(
            "{} heartbeats/s MISSES the target of {} by {} ({:.0} % of it)",
            thousands(rate.round() as u64),
            thousands(TARGET_PER_SEC as u64),
            thousands((TARGET_PER_SEC - rate).round() as u64),
            100.0 * rate / TARGET_PER_SEC
        )
    };
    let p99_text = match p99 {
        Some(p) if p99_ok => format!("p99 {} ms meets ≤ {} ms", ms(p), TARGET_P99.as_millis()),
        Some(p) => format!(
            "p99 {} ms MISSES ≤ {} ms by {} ms",
            ms(p),
            TARGET_P99.as_millis(),
            ms(p - TARGET_P99)
        ),
        None => "no successful heartbeat, so no p99".to_owned(),
    };
    format!(
        "{} against the target (≥ 3,300 heartbeats/s, p99 ≤ 25 ms): {rate_text}; {p99_text}.",
        o.backend.label().to_owned()
    )
}

fn one_line(s: &str) -> String {
    s.replace(['\n', '|'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_is_plausible() {
        let hb = heartbeat(3, 10);
        assert_eq!(hb.metrics.disks.len(), 3);
        assert!(hb.metrics.cpu_percent >= 0.0 && hb.metrics.cpu_percent <= 100.0);
        assert!(hb.metrics.mem_used_bytes < hb.metrics.mem_total_bytes);
        for d in &hb.metrics.disks {
            assert!(d.used_bytes < d.total_bytes);
        }
        let body = serde_json::to_vec(&hb).unwrap();
        assert!(body.len() > 300 && body.len() < 2000, "{}", body.len());
    }
}
