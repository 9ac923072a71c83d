//! One simulated agent, as `patchctl_agent::runtime::Agent::run` behaves: enroll once,
//! then each step heartbeats, answers the commands it got and scans when a scan is due;
//! after a good step it sleeps the agent's jittered interval
//! (`patchctl_agent::runtime::jittered`), after a failure the agent's `Backoff`
//! (capped at the interval, as the agent caps it). A step opens a new connection
//! (see [`super::conn`]) and makes all its requests over it.
//!
//! Commands are answered with a `succeeded` result whose summary says that a simulated
//! agent ran nothing: no package manager runs and the command's signature is not
//! checked (the real agent's admission does that).
//!
//! With `long_poll`, between heartbeats the agent holds `POST /api/v1/agent/commands/wait`
//! over its connection (`patchctl_proto::agent::CommandWaitRequest`), asking to wait
//! until its next heartbeat is due.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use patchctl_agent::runtime::{Backoff, jittered};
use patchctl_proto::Secret;
use patchctl_proto::agent::{
    CommandWaitRequest, CommandWaitResponse, EnrollResponse, HeartbeatResponse, ResultsAck,
    ResultsUpload,
};
use patchctl_proto::command::{CommandEnvelope, CommandResult, ResultStatus};
use patchctl_proto::scan::{ScanAck, ScanStatus};
use rand::Rng;
use uuid::Uuid;

use super::conn::{AgentTls, Body, Handshake, REQUEST_TIMEOUT, Session, StatusError};
use super::scan::{Inventory, ScanMemory, encode, kind, upload};

/// The agent's cap on its backoff (`runtime::MAX_BACKOFF`).
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// Distinct error messages kept.
const MAX_ERROR_SAMPLES: usize = 8;

/// One heartbeat as measured.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// When it ended, since the run's epoch.
    pub at: Duration,
    /// From before the connection was opened until the answer (connect, TLS handshake
    /// and request), or until the failure.
    pub latency: Duration,
    /// Whether it succeeded.
    pub ok: bool,
}

/// Counters of one kind of event.
#[derive(Default)]
pub struct Counter {
    /// Successes.
    pub ok: AtomicU64,
    /// Failures.
    pub err: AtomicU64,
}

impl Counter {
    fn add(&self, ok: bool) {
        if ok {
            self.ok.fetch_add(1, Ordering::Relaxed);
        } else {
            self.err.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// What every agent reports to.
#[derive(Default)]
pub struct Recorder {
    /// Enrollments.
    pub enroll: Counter,
    /// Heartbeats.
    pub heartbeat: Counter,
    /// Scans (any body).
    pub scan: Counter,
    /// Result uploads.
    pub results: Counter,
    /// Long-poll requests answered (with or without a command).
    pub waits: Counter,
    /// Scan bodies by kind: full, delta, unchanged.
    pub scan_full: AtomicU64,
    /// Delta scans.
    pub scan_delta: AtomicU64,
    /// Unchanged scans.
    pub scan_unchanged: AtomicU64,
    /// Answers `need_full` to a delta.
    pub need_full: AtomicU64,
    /// Full TLS handshakes.
    pub full_handshakes: AtomicU64,
    /// Resumed TLS handshakes.
    pub resumed_handshakes: AtomicU64,
    /// Connections that failed before a handshake kind was known.
    pub connect_errors: AtomicU64,
    /// Heartbeats, in the order they ended.
    pub samples: Mutex<Vec<Sample>>,
    /// A few distinct errors.
    pub errors: Mutex<Vec<String>>,
    /// When each command reached its agent.
    pub received: Mutex<HashMap<Uuid, Instant>>,
    /// Long-poll requests in flight now.
    pub waiting: AtomicI64,
}

impl Recorder {
    /// Keeps `e` when it is new and there is room.
    pub fn error(&self, e: &anyhow::Error) {
        let text = format!("{e:#}");
        let mut v = self.errors.lock().unwrap_or_else(|p| p.into_inner());
        if v.len() < MAX_ERROR_SAMPLES && !v.iter().any(|s| s == &text) {
            v.push(text);
        }
    }

    fn handshake(&self, h: Handshake) {
        match h {
            Handshake::Full => &self.full_handshakes,
            Handshake::Resumed => &self.resumed_handshakes,
        }
        .fetch_add(1, Ordering::Relaxed);
    }
}

/// Per-agent liveness, for the reconnect storm: milliseconds since the epoch of the
/// last successful heartbeat and of the last failed step (0: never).
#[derive(Default)]
pub struct Liveness {
    /// Last successful heartbeat.
    pub last_ok_ms: AtomicU64,
    /// Last failed step.
    pub last_fail_ms: AtomicU64,
}

/// What all agents share.
pub struct Fleet {
    /// The platform.
    pub server: SocketAddr,
    /// The TLS configuration each agent clones.
    pub tls: rustls::ClientConfig,
    /// The enrollment key.
    pub key: Secret,
    /// The heartbeat interval.
    pub interval: Duration,
    /// Heartbeats between scans.
    pub scan_every: u32,
    /// One agent in `change_every` changes packages between scans (0: none).
    pub change_every: usize,
    /// Hold the long-poll between heartbeats.
    pub long_poll: bool,
    /// The package list.
    pub inventory: Inventory,
    /// Measurements.
    pub rec: Recorder,
    /// Per-agent liveness.
    pub live: Vec<Liveness>,
    /// Host ids of the enrolled agents.
    pub hosts: Mutex<Vec<Uuid>>,
    /// The run's epoch.
    pub epoch: Instant,
    /// Set to stop every agent at its next step.
    pub stop: AtomicBool,
    /// The simulator's own cap on open connections (its file-descriptor limit less a
    /// reserve): an agent waits for a permit before connecting, and that wait counts in
    /// its latency.
    pub conns: Arc<tokio::sync::Semaphore>,
}

impl Fleet {
    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }
}

/// A simulated agent's own state.
struct Agent {
    i: usize,
    tls: AgentTls,
    credential: Option<Secret>,
    heartbeats: u64,
    scan: ScanMemory,
    generation: u32,
    session: Option<(Session, tokio::sync::OwnedSemaphorePermit)>,
}

/// Runs agent `i` until the fleet stops, starting after `delay`.
pub async fn run(fleet: Arc<Fleet>, i: usize, delay: Duration) {
    tokio::time::sleep(delay).await;
    let mut a = Agent {
        i,
        tls: AgentTls::new(&fleet.tls, i),
        credential: None,
        heartbeats: 0,
        scan: ScanMemory::default(),
        generation: 0,
        session: None,
    };
    let mut backoff = Backoff::new(fleet.interval.min(MAX_BACKOFF));
    let mut first = true;
    while !fleet.stop.load(Ordering::Relaxed) {
        let wait = match a.step(&fleet).await {
            Ok(()) if first => {
                // A fleet that has run for a while has its phases spread over the
                // interval: the first wait is a uniformly random part of it.
                first = false;
                backoff.reset();
                fleet.interval.mul_f64(rand::rng().random_range(0.0..1.0))
            }
            Ok(()) => {
                backoff.reset();
                jittered(fleet.interval)
            }
            Err(e) => {
                a.session = None;
                fleet.live[i]
                    .last_fail_ms
                    .store(fleet.now_ms().max(1), Ordering::Relaxed);
                fleet.rec.error(&e);
                if matches!(e.downcast_ref::<StatusError>(), Some(s) if s.status == 401) {
                    a.credential = None;
                    Duration::ZERO
                } else {
                    backoff.delay()
                }
            }
        };
        if fleet.long_poll && a.session.is_some() {
            let until = Instant::now() + wait;
            if let Err(e) = a.hold(&fleet, until).await {
                a.session = None;
                fleet.rec.error(&e);
            }
            tokio::time::sleep_until(until.into()).await;
        } else {
            a.session = None;
            tokio::time::sleep(wait).await;
        }
    }
}

impl Agent {
    fn bearer(&self) -> Option<&str> {
        self.credential.as_ref().map(|c| c.expose())
    }

    async fn session(&mut self, fleet: &Fleet) -> anyhow::Result<&mut Session> {
        if !self.session.as_ref().is_some_and(|(s, _)| s.is_open()) {
            self.session = None;
            let permit = fleet.conns.clone().acquire_owned().await?;
            let s = tokio::time::timeout(REQUEST_TIMEOUT, self.tls.open(fleet.server))
                .await
                .map_err(|_| anyhow::anyhow!("no connection within {REQUEST_TIMEOUT:?}"))
                .and_then(|r| r);
            match &s {
                Ok(s) => fleet.rec.handshake(s.handshake),
                Err(_) => {
                    fleet.rec.connect_errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            self.session = Some((s?, permit));
        }
        Ok(&mut self.session.as_mut().expect("just set").0)
    }

    async fn post<R: serde::de::DeserializeOwned>(
        &mut self,
        fleet: &Fleet,
        path: &str,
        body: Body,
    ) -> anyhow::Result<R> {
        let bearer = self.bearer().map(str::to_owned);
        let s = self.session(fleet).await?;
        tokio::time::timeout(REQUEST_TIMEOUT, s.post(path, bearer.as_deref(), body))
            .await
            .map_err(|_| anyhow::anyhow!("no answer to {path} within {REQUEST_TIMEOUT:?}"))?
    }

    async fn step(&mut self, fleet: &Fleet) -> anyhow::Result<()> {
        let start = Instant::now();
        if self.credential.is_none() {
            let req = crate::heartbeats::enroll_request(self.i, fleet.key.clone());
            let r: anyhow::Result<EnrollResponse> = self
                .post(fleet, "/api/v1/agent/enroll", Body::json(&req)?)
                .await;
            fleet.rec.enroll.add(r.is_ok());
            let resp = r?;
            fleet
                .hosts
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(resp.host_id);
            self.credential = Some(resp.credential);
        }
        self.heartbeats += 1;
        let req = crate::heartbeats::heartbeat(self.i, self.heartbeats);
        let r: anyhow::Result<HeartbeatResponse> = self
            .post(fleet, "/api/v1/agent/heartbeat", Body::json(&req)?)
            .await;
        let sample = Sample {
            at: fleet.epoch.elapsed(),
            latency: start.elapsed(),
            ok: r.is_ok(),
        };
        fleet.rec.heartbeat.add(sample.ok);
        fleet
            .rec
            .samples
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(sample);
        let resp = r?;
        fleet.live[self.i]
            .last_ok_ms
            .store(fleet.now_ms().max(1), Ordering::Relaxed);
        self.answer(fleet, &resp.commands).await?;
        // As the agent: the first successful step scans, then every `scan_every`.
        if self.scan.acked.is_none()
            || (self.heartbeats - 1) % u64::from(fleet.scan_every.max(1)) == 0
        {
            self.scan(fleet).await?;
        }
        Ok(())
    }

    /// Posts a `succeeded` result for each command.
    async fn answer(&mut self, fleet: &Fleet, commands: &[CommandEnvelope]) -> anyhow::Result<()> {
        if commands.is_empty() {
            return Ok(());
        }
        let now = Instant::now();
        {
            let mut got = fleet.rec.received.lock().unwrap_or_else(|p| p.into_inner());
            for c in commands {
                got.entry(c.id).or_insert(now);
            }
        }
        let at = Utc::now();
        let results = commands
            .iter()
            .map(|c| CommandResult {
                command_id: c.id,
                status: ResultStatus::Succeeded,
                summary: "simulated agent (patchctl-bench fleet): nothing was run".into(),
                started_at: at,
                finished_at: at,
                output: None,
            })
            .collect();
        let r: anyhow::Result<ResultsAck> = self
            .post(
                fleet,
                "/api/v1/agent/results",
                Body::json(&ResultsUpload { results })?,
            )
            .await;
        fleet.rec.results.add(r.is_ok());
        r.map(|_| ())
    }

    async fn scan(&mut self, fleet: &Fleet) -> anyhow::Result<()> {
        if fleet.change_every > 0 && self.i % fleet.change_every == 0 && self.scan.acked.is_some() {
            self.generation += 1;
        }
        let mut up = upload(&fleet.inventory, self.i, self.generation, &self.scan);
        for _ in 0..2 {
            let k = kind(&up);
            let r: anyhow::Result<ScanAck> =
                self.post(fleet, "/api/v1/agent/scan", encode(&up)?).await;
            fleet.rec.scan.add(r.is_ok());
            let ack = r?;
            match k {
                "full" => &fleet.rec.scan_full,
                "delta" => &fleet.rec.scan_delta,
                _ => &fleet.rec.scan_unchanged,
            }
            .fetch_add(1, Ordering::Relaxed);
            if ack.status == ScanStatus::NeedFull {
                fleet.rec.need_full.fetch_add(1, Ordering::Relaxed);
                self.scan.acked = None;
                up = upload(&fleet.inventory, self.i, self.generation, &self.scan);
                continue;
            }
            self.scan.acked = Some((self.generation, up.digest));
            return Ok(());
        }
        anyhow::bail!("the platform did not accept the full scan")
    }

    /// Holds the long-poll over the open connection until `until`.
    async fn hold(&mut self, fleet: &Fleet, until: Instant) -> anyhow::Result<()> {
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left < Duration::from_secs(1) || fleet.stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            let req = CommandWaitRequest {
                wait_secs: left.as_secs() as u32,
                command_key_id: None,
                approvers_serial: None,
            };
            let bearer = self.bearer().map(str::to_owned);
            let s = self.session(fleet).await?;
            fleet.rec.waiting.fetch_add(1, Ordering::Relaxed);
            let r: anyhow::Result<CommandWaitResponse> = tokio::time::timeout(
                left + REQUEST_TIMEOUT,
                s.post(
                    "/api/v1/agent/commands/wait",
                    bearer.as_deref(),
                    Body::json(&req)?,
                ),
            )
            .await
            .map_err(|_| anyhow::anyhow!("the long-poll was not answered in time"))
            .and_then(|r| r);
            fleet.rec.waiting.fetch_sub(1, Ordering::Relaxed);
            fleet.rec.waits.add(r.is_ok());
            let resp = r?;
            if resp.waited_max_secs == 0 && resp.commands.is_empty() {
                // Long-polling is off on the platform: wait by sleeping.
                return Ok(());
            }
            self.answer(fleet, &resp.commands).await?;
        }
    }
}
