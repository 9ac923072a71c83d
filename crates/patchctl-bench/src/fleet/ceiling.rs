//! The ceiling under the fleet's connection pattern: a closed loop of simulated agents,
//! each making one request per new connection (TCP + TLS 1.3, resumed with its own
//! previous session's ticket), against the bare rustls + hyper server of
//! [`crate::hello`] and, for comparison, against the platform's heartbeat endpoint.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use patchctl_proto::Secret;
use patchctl_proto::agent::{EnrollResponse, HeartbeatResponse};
use tokio::net::TcpListener;

use super::conn::{AgentTls, Body, Handshake, REQUEST_TIMEOUT};
use crate::stats::Summary;

/// Indices of the closed loop's agents start here (apart from the fleet's).
const FIRST_INDEX: usize = 5_000_000;

/// What a closed loop measured.
#[derive(Debug, Clone)]
pub struct Loop {
    /// Successful requests.
    pub ok: u64,
    /// Failed requests.
    pub errors: u64,
    /// Length of the window.
    pub elapsed: Duration,
    /// Latency of the successful requests (connect, handshake, request).
    pub latency: Option<Summary>,
    /// Full handshakes.
    pub full: u64,
    /// Resumed handshakes.
    pub resumed: u64,
    /// One error, if any.
    pub error: Option<String>,
    /// CPU time the server and the client used in the window ([`CpuProbe`]).
    pub cpu: (Duration, Duration),
}

/// Reads the CPU time (user + system) used so far by the server under test and by the
/// simulated clients, in that order.
pub type CpuProbe = Arc<dyn Fn() -> (Duration, Duration) + Send + Sync>;

impl Loop {
    /// Successful requests per second.
    pub fn per_sec(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// CPU time per successful request of the server and of the client, in µs.
    pub fn cpu_per_request_us(&self) -> (f64, f64) {
        let n = self.ok.max(1) as f64;
        (
            self.cpu.0.as_secs_f64() * 1e6 / n,
            self.cpu.1.as_secs_f64() * 1e6 / n,
        )
    }

    /// The rate the server would sustain with `cpus` CPUs of its own: `cpus` divided by
    /// its CPU time per request (the handshake included), the clients elsewhere.
    pub fn per_sec_on(&self, cpus: f64) -> f64 {
        let us = self.cpu_per_request_us().0;
        if us > 0.0 { cpus * 1e6 / us } else { 0.0 }
    }
}

/// Runs `loops` closed loops for `window` against `server`; with `key`, each loop
/// enrolls first and then sends heartbeats with its credential. `cpu` is read at the
/// window's start and end.
pub async fn closed_loop(
    server: SocketAddr,
    tls: &rustls::ClientConfig,
    key: Option<Secret>,
    loops: usize,
    window: Duration,
    cpu: CpuProbe,
) -> Loop {
    let mut set = tokio::task::JoinSet::new();
    let start = Instant::now() + Duration::from_millis(200);
    let sampler = tokio::spawn(async move {
        tokio::time::sleep_until(start.into()).await;
        let (s0, c0) = cpu();
        tokio::time::sleep_until((start + window).into()).await;
        let (s1, c1) = cpu();
        (s1.saturating_sub(s0), c1.saturating_sub(c0))
    });
    for n in 0..loops {
        let i = FIRST_INDEX + n;
        let agent = AgentTls::new(tls, i);
        let key = key.clone();
        set.spawn(async move {
            let mut out = (Vec::new(), 0u64, 0u64, 0u64, None::<String>);
            let bearer = match key {
                Some(key) => {
                    let req = crate::heartbeats::enroll_request(i, key);
                    let r: anyhow::Result<EnrollResponse> = async {
                        let mut s = agent.open(server).await?;
                        s.post("/api/v1/agent/enroll", None, Body::json(&req)?)
                            .await
                    }
                    .await;
                    match r {
                        Ok(r) => r.credential,
                        Err(e) => {
                            out.4 = Some(format!("{e:#}"));
                            out.1 += 1;
                            return out;
                        }
                    }
                }
                None => Secret::new("hello"),
            };
            tokio::time::sleep_until(start.into()).await;
            let end = start + window;
            let mut n = 0u64;
            while Instant::now() < end {
                n += 1;
                let t0 = Instant::now();
                let body = crate::heartbeats::heartbeat(i, n);
                let r: anyhow::Result<(Handshake, HeartbeatResponse)> =
                    tokio::time::timeout(REQUEST_TIMEOUT, async {
                        let mut s = agent.open(server).await?;
                        let h = s.handshake;
                        let resp = s
                            .post(
                                "/api/v1/agent/heartbeat",
                                Some(bearer.expose()),
                                Body::json(&body)?,
                            )
                            .await?;
                        Ok((h, resp))
                    })
                    .await
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("timed out")));
                match r {
                    Ok((h, _)) => {
                        out.0.push(t0.elapsed());
                        if h == Handshake::Full {
                            out.2 += 1;
                        } else {
                            out.3 += 1;
                        }
                    }
                    Err(e) => {
                        out.1 += 1;
                        out.4.get_or_insert_with(|| format!("{e:#}"));
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
            out
        });
    }
    let mut lat = Vec::new();
    let (mut errors, mut full, mut resumed, mut error) = (0, 0, 0, None);
    while let Some(r) = set.join_next().await {
        if let Ok((l, e, f, res, err)) = r {
            lat.extend(l);
            errors += e;
            full += f;
            resumed += res;
            if error.is_none() {
                error = err;
            }
        }
    }
    let elapsed = start.elapsed().max(window);
    let cpu = sampler.await.unwrap_or_default();
    Loop {
        ok: lat.len() as u64,
        errors,
        elapsed,
        latency: Summary::of(lat),
        full,
        resumed,
        error,
        cpu,
    }
}

/// Starts the bare rustls + hyper server with the platform's TLS configuration (from
/// the same PKI) on a runtime of its own; returns its address and the runtime (drop it
/// to stop the server).
pub fn start_hello(
    cert: &std::path::Path,
    key: &std::path::Path,
    threads: usize,
) -> anyhow::Result<(SocketAddr, tokio::runtime::Runtime)> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .thread_name("hello")
        .enable_all()
        .build()?;
    let tls: Arc<rustls::ServerConfig> = patchctl_net::server_config(cert, key)?;
    let listener = rt.block_on(TcpListener::bind("127.0.0.1:0"))?;
    let addr = listener.local_addr()?;
    rt.spawn(crate::hello::serve(
        listener,
        tls,
        std::future::pending::<()>(),
    ));
    Ok((addr, rt))
}
