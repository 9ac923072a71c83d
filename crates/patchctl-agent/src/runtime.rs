//! The agent's life: enroll once, then heartbeat, scan, run commands, report results.
//!
//! Pull only: every exchange is an outbound HTTPS request to the platform; the agent
//! never listens. When the platform is unreachable the agent retries with exponential
//! backoff and jitter, and results wait in the on-disk outbox until acknowledged.
//!
//! Trust: a `403 credential_revoked` answer to any request makes the agent write
//! `revoked.json` beside its credential, log an audit error and stop with
//! [`EXIT_REVOKED`]; while that marker exists it does not contact the platform at all
//! and never re-enrolls on its own (`patchctl-agent reenroll` is the operator's way
//! back). A `401` (credential unknown) still means "enroll again with the license key".
//! A host waiting for approval (`403 pending_approval`) keeps its credential and asks
//! again at its heartbeat interval, without scanning or running anything. After a
//! successful heartbeat the agent replaces a credential older than
//! `credential_rotation_days` (`POST /api/v1/agent/credential`).

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use http::Method;
use patchctl_net::client::{ClientError, HttpsClient};
use patchctl_proto::PROTOCOL_VERSION;
use patchctl_proto::agent::{
    EnrollRequest, EnrollResponse, HeartbeatRequest, HeartbeatResponse, ResultsAck, ResultsUpload,
};
use patchctl_proto::scan::{ScanAck, ScanBody, ScanStatus, ScanUpload};
use patchctl_proto::trust::{CredentialRotation, ErrorCode};
use rand::Rng;

use crate::config::AgentConfig;
use crate::exec::{Executor, ProcessExecutor};
use crate::health::{LinkState, SharedLink};
use crate::metrics::MetricsCollector;
use crate::ops::Operations;
use crate::state::{self, Identity, IdentityError, Outbox, RevokedMarker};

/// The exit code of an agent stopped because the platform revoked its credential
/// (`EX_CONFIG`). The systemd unit lists it in `RestartPreventExitStatus=`, so the
/// service stays stopped instead of being restarted into the same answer.
pub const EXIT_REVOKED: u8 = 78;

/// How long the agent waits before it tries a failed credential rotation again.
const ROTATION_RETRY: Duration = Duration::from_secs(3600);

/// Longest wait between retries while the platform is unreachable.
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// First retry delay.
const MIN_BACKOFF: Duration = Duration::from_secs(2);

/// Exponential backoff with full jitter.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    cap: Duration,
}

impl Backoff {
    /// Starts at `MIN_BACKOFF` (2 s), doubling up to `cap`.
    pub fn new(cap: Duration) -> Self {
        Backoff {
            next: MIN_BACKOFF,
            cap: cap.max(MIN_BACKOFF),
        }
    }

    /// The next delay: uniformly random in [delay/2, delay], then the delay doubles.
    pub fn delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(self.cap);
        let ms = d.as_millis() as u64;
        Duration::from_millis(rand::rng().random_range(ms / 2..=ms.max(1)))
    }

    /// Back to the first delay after a success.
    pub fn reset(&mut self) {
        self.next = MIN_BACKOFF;
    }
}

/// `interval` ± 10 %, so that a fleet restarted together spreads out.
pub fn jittered(interval: Duration) -> Duration {
    let ms = interval.as_millis() as u64;
    let spread = ms / 10;
    Duration::from_millis(rand::rng().random_range(ms - spread..=ms + spread))
}

/// Why an agent could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The TLS client configuration (CA bundle or system roots) could not be built.
    #[error("cannot set up TLS")]
    Tls(#[source] patchctl_net::tls::TlsError),
    /// The configured `server_url` is not a usable HTTPS base URL.
    #[error("invalid server_url")]
    ServerUrl(#[source] ClientError),
    /// The outbox directory could not be created.
    #[error("cannot open the outbox in {dir}")]
    Outbox {
        /// The state directory.
        dir: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The stored identity could not be loaded.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// The platform revoked the credential (now, or before: the marker says so). The
    /// agent stopped; exit with [`EXIT_REVOKED`].
    #[error(
        "the platform revoked this agent's credential ({message}); the agent does not contact the platform again until an operator runs `patchctl-agent reenroll` and restarts it"
    )]
    Revoked {
        /// The platform's message, as written in the marker.
        message: String,
    },
    /// A new binary on trial did not reach the platform in time.
    #[error("this binary did not reach the platform during its trial: {0}")]
    Trial(String),
}

/// Why a step did not finish.
#[derive(Debug, PartialEq)]
enum Failure {
    /// The platform does not know the credential (401): enroll again.
    Unauthorized,
    /// The platform revoked the credential (403 `credential_revoked`): stop for good.
    Revoked(String),
    /// The host waits for an operator's approval (403 `pending_approval`).
    Pending,
    /// Anything else: retry later.
    Other(String),
    /// A new agent binary was confirmed: replace this process with it.
    HandOver(PathBuf),
}

/// How [`Agent::run`] ended, short of an error.
#[derive(Debug, PartialEq, Eq)]
pub enum Stopped {
    /// A stop was asked for.
    Shutdown,
    /// Self-update confirmed a new binary at this path: exec it
    /// ([`crate::exec::own::replace_process`]).
    HandOver(PathBuf),
}

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Self {
        let code = e.code();
        if e.status() == Some(403) && code == Some(ErrorCode::CredentialRevoked.as_str()) {
            let message = match e {
                ClientError::Status { message, .. } => message,
                other => other.to_string(),
            };
            Failure::Revoked(message)
        } else if e.status() == Some(403) && code == Some(ErrorCode::PendingApproval.as_str()) {
            Failure::Pending
        } else if e.is_unauthorized() {
            Failure::Unauthorized
        } else {
            Failure::Other(e.to_string())
        }
    }
}

/// The operation a result came from, as its output shows it (for the audit log).
fn result_kind(r: &patchctl_proto::command::CommandResult) -> &'static str {
    use patchctl_proto::command::ResultOutput;
    match &r.output {
        Some(ResultOutput::Health(_)) => "health_check",
        Some(ResultOutput::PackageInfo(_)) => "get_package_info",
        Some(ResultOutput::Updates(_)) => "check_updates",
        Some(ResultOutput::Install(_)) => "install_updates",
        None => "none",
    }
}

/// A result's status, as the wire names it (for the audit log).
fn result_status(r: &patchctl_proto::command::CommandResult) -> &'static str {
    use patchctl_proto::command::ResultStatus;
    match r.status {
        ResultStatus::Succeeded => "succeeded",
        ResultStatus::Failed => "failed",
        ResultStatus::Rejected => "rejected",
    }
}

/// A running agent.
pub struct Agent {
    cfg: AgentConfig,
    client: HttpsClient,
    exec: Arc<dyn Executor>,
    ops: Operations,
    outbox: Outbox,
    link: SharedLink,
    metrics: MetricsCollector,
    identity: Option<Identity>,
    connected: Option<bool>,
    rescan: bool,
    /// The platform said the host waits for approval (logged once).
    pending: bool,
    /// Set when a stop was asked for while a step ran: the command in progress
    /// finishes, the rest of the heartbeat's commands wait for the next start.
    stopping: Arc<std::sync::atomic::AtomicBool>,
    /// No credential rotation before this instant (after a failed one).
    rotation_retry_at: Option<Instant>,
    /// The agent's own updates.
    updater: crate::selfupdate::Updater,
    /// Whether the host needs a reboot, as the latest scan or install found it.
    reboot_state: Option<patchctl_proto::agent::RebootState>,
    /// The reboot an install scheduled, run once its result is delivered.
    pending_reboot: crate::boot::PendingReboot,
    /// Which commands may run: signature, key, host, expiry, replay.
    admission: crate::admit::Admission,
}

impl Agent {
    /// Prepares an agent from a validated configuration.
    pub fn new(cfg: AgentConfig) -> Result<Agent, AgentError> {
        let tls =
            patchctl_net::tls::client_config(cfg.ca_bundle.as_deref()).map_err(AgentError::Tls)?;
        let client = HttpsClient::new(&cfg.server_url, tls).map_err(AgentError::ServerUrl)?;
        let exec: Arc<dyn Executor> = Arc::new(ProcessExecutor::new());
        let link: SharedLink = Arc::new(Mutex::new(LinkState::default()));
        let ops = Operations::new(
            exec.clone(),
            Path::new("/"),
            Some(cfg.path.clone()),
            cfg.heartbeat_interval,
            link.clone(),
        );
        let outbox = Outbox::open(&cfg.state_dir).map_err(|source| AgentError::Outbox {
            dir: cfg.state_dir.clone(),
            source,
        })?;
        let identity = match state::load_identity(cfg.dir()) {
            Ok(Some(id)) if id.server_url == cfg.server_url => Some(id),
            Ok(Some(_)) => {
                tracing::warn!(server_url = %cfg.server_url, "stored identity belongs to another platform; enrolling anew");
                None
            }
            Ok(None) => None,
            Err(e) => return Err(e.into()),
        };
        let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("/proc/self/exe"));
        let updater = crate::selfupdate::Updater::new(
            exe,
            &cfg.state_dir,
            crate::selfupdate::trusted_roots(),
            cfg.update_confirm,
            cfg.self_update,
        );
        let admission =
            crate::admit::Admission::open(cfg.dir(), &cfg.state_dir, cfg.command_signing_key);
        Ok(Agent {
            admission,
            cfg,
            client,
            exec,
            ops,
            outbox,
            link,
            metrics: MetricsCollector::new(),
            identity,
            connected: None,
            rescan: false,
            pending: false,
            stopping: Arc::default(),
            rotation_retry_at: None,
            updater,
            reboot_state: None,
            pending_reboot: Default::default(),
        })
    }

    /// The host id, once enrolled.
    pub fn host_id(&self) -> Option<uuid::Uuid> {
        self.identity.as_ref().map(|i| i.host_id)
    }

    fn set_connected(&mut self, ok: bool, error: Option<&str>) {
        if self.connected != Some(ok) {
            if ok {
                tracing::info!(target: "audit", server_url = %self.cfg.server_url, "connected to the platform");
            } else {
                tracing::warn!(target: "audit", server_url = %self.cfg.server_url, error = error.unwrap_or(""), "platform unreachable; retrying with backoff");
            }
            self.connected = Some(ok);
        }
        let mut link = self.link.lock().unwrap_or_else(|e| e.into_inner());
        link.last_error = error.map(str::to_owned);
    }

    async fn enroll(&mut self) -> Result<(), Failure> {
        let system = tokio::task::spawn_blocking(crate::sysinfo::collect)
            .await
            .map_err(|e| Failure::Other(e.to_string()))?;
        let system = patchctl_proto::agent::SystemInfo {
            tags: self.cfg.tags.clone(),
            ..system
        };
        let req = EnrollRequest {
            protocol_version: PROTOCOL_VERSION,
            license_key: self.cfg.license_key.clone(),
            agent_version: crate::VERSION.into(),
            system,
        };
        let resp: EnrollResponse = self
            .client
            .json(Method::POST, "/api/v1/agent/enroll", None, Some(&req))
            .await
            .map_err(|e| {
                if e.is_unauthorized() {
                    Failure::Other(format!(
                        "the platform refused the license key ({}); put a valid enrollment key in the config and restart",
                        match &e {
                            ClientError::Status { message, .. } => message.as_str(),
                            _ => "unknown or revoked",
                        }
                    ))
                } else {
                    Failure::from(e)
                }
            })?;
        let id = Identity {
            host_id: resp.host_id,
            credential: resp.credential,
            server_url: self.cfg.server_url.clone(),
            issued_at: Some(Utc::now()),
        };
        state::save_identity(self.cfg.dir(), &id).map_err(|e| {
            Failure::Other(format!(
                "cannot store the credential in {}: {e}",
                self.cfg.dir().display()
            ))
        })?;
        tracing::info!(target: "audit", host_id = %id.host_id, "enrolled with the platform");
        self.admission.enrolled(resp.command_key.as_ref());
        self.identity = Some(id);
        Ok(())
    }

    fn bearer(&self) -> Option<&str> {
        self.identity.as_ref().map(|i| i.credential.expose())
    }

    async fn scan_and_upload(&mut self) -> Result<(), Failure> {
        let mut state =
            crate::scan::collect(self.ops.backend().map(|b| b.as_ref()), self.exec.as_ref())
                .await
                .map_err(|e| Failure::Other(e.to_string()))?;
        state.system.tags = self.cfg.tags.clone();
        let scanned_at = Utc::now();
        if let Some(b) = self.ops.backend() {
            let packages: Vec<_> = state.packages.iter().map(|r| r.to_package()).collect();
            let running = crate::pkgmgr::reboot::running_release();
            // Part of the scan: its programs (`rpm -q kernel`, …) run at background
            // priority too.
            let exec = crate::scan::Background(self.exec.as_ref());
            let reboot = crate::pkgmgr::reboot::state(b.as_ref(), &exec, &packages, &running).await;
            self.reboot_state = Some(reboot);
        }
        let acked = crate::scan::Acked::load(&self.cfg.state_dir);
        let mut upload = crate::scan::upload_for(&state, acked.as_ref(), scanned_at);
        upload.reboot = self.reboot_state.clone();
        let mut ack = self.send_scan(&upload).await?;
        if ack.status == ScanStatus::NeedFull {
            tracing::info!(
                detail = ack.detail.as_deref().unwrap_or(""),
                "the platform asked for the full scan"
            );
            crate::scan::Acked::clear(&self.cfg.state_dir);
            upload = crate::scan::upload_for(&state, None, scanned_at);
            upload.reboot = self.reboot_state.clone();
            ack = self.send_scan(&upload).await?;
        }
        if ack.status == ScanStatus::NeedFull {
            return Err(Failure::Other(format!(
                "the platform did not accept the full scan: {}",
                ack.detail.unwrap_or_default()
            )));
        }
        let acked = crate::scan::Acked {
            digest: upload.digest,
            state,
        };
        if let Err(e) = acked.save(&self.cfg.state_dir) {
            tracing::warn!(error = %e, "cannot keep the acknowledged scan; the next one is sent in full");
        }
        Ok(())
    }

    async fn send_scan(&self, upload: &ScanUpload) -> Result<ScanAck, Failure> {
        let (bytes, gzip) =
            crate::scan::encode(upload).map_err(|e| Failure::Other(e.to_string()))?;
        let sent = bytes.len();
        let kind = match &upload.body {
            ScanBody::Unchanged => "unchanged",
            ScanBody::Full { .. } => "full",
            ScanBody::Delta { .. } => "delta",
        };
        let ack: ScanAck = self
            .client
            .json_bytes(
                Method::POST,
                "/api/v1/agent/scan",
                self.bearer(),
                bytes,
                gzip,
            )
            .await?;
        tracing::info!(kind, bytes = sent, status = ?ack.status, packages = ack.packages, "scan uploaded");
        Ok(ack)
    }

    /// Sends one heartbeat (with the self-update steps not yet delivered) and takes
    /// in the answer's clock; `trial` marks the heartbeat of a binary on trial.
    async fn send_heartbeat(&mut self, trial: bool) -> Result<HeartbeatResponse, Failure> {
        let update_events = self.updater.events().pending();
        let sent_events = update_events.len();
        let req = HeartbeatRequest {
            agent_version: self.updater.running_version().to_owned(),
            metrics: self.metrics.sample(),
            agent_target: Some(crate::selfupdate::TARGET.into()),
            update_events,
            trial,
            reboot: self.reboot_state.clone(),
            booted_at: crate::boot::booted_at(),
            command_key_id: self.admission.key_id(),
            approvers_serial: self.admission.approvers_serial(),
        };
        let sent = Instant::now();
        let sent_at = Utc::now();
        let resp: HeartbeatResponse = self
            .client
            .json(
                Method::POST,
                "/api/v1/agent/heartbeat",
                self.bearer(),
                Some(&req),
            )
            .await?;
        let rtt = sent.elapsed();
        {
            let mut link = self.link.lock().unwrap_or_else(|e| e.into_inner());
            link.last_contact = Some(Utc::now());
            link.last_rtt = Some(rtt);
            let midpoint = sent_at + chrono::Duration::from_std(rtt / 2).unwrap_or_default();
            link.clock_skew_secs =
                Some((midpoint - resp.server_time).num_milliseconds() as f64 / 1000.0);
        }
        self.set_connected(true, None);
        self.updater.events().delivered(sent_events);
        Ok(resp)
    }

    async fn heartbeat(&mut self) -> Result<(), Failure> {
        let resp = self.send_heartbeat(false).await?;
        if let Some(info) = &resp.command_key {
            self.admission.follow(info);
        }
        for (i, env) in resp.commands.iter().enumerate() {
            if self.stopping.load(std::sync::atomic::Ordering::SeqCst) {
                // Leased, not run: the platform delivers them again after the lease.
                tracing::info!(target: "audit", left = resp.commands.len() - i, "stopping: the remaining commands wait for the next start");
                break;
            }
            tracing::info!(target: "audit", command_id = %env.id, kind = %crate::text::truncate(&env.kind, 64), "command received");
            if self.outbox.contains(env.id) {
                tracing::info!(command_id = %env.id, "command already ran; resending its result");
                continue;
            }
            let host = self.host_id().unwrap_or_default();
            let result = match self.admission.admit(env, host, Utc::now()) {
                Ok(signed) => self.ops.handle(&signed).await,
                Err(refusal) => crate::ops::refused(env, &refusal),
            };
            if matches!(&result.output, Some(patchctl_proto::command::ResultOutput::Install(r)) if r.refused.is_empty())
            {
                // Something was installed: the platform gets a fresh inventory now.
                self.rescan = true;
            }
            if let Some(patchctl_proto::command::ResultOutput::Install(r)) = &result.output {
                self.reboot_state = Some(patchctl_proto::agent::RebootState {
                    required: r.reboot_required,
                    reasons: r.reboot_reasons.clone(),
                });
            }
            self.pending_reboot.note(&result);
            if let Err(e) = self.outbox.put(&result) {
                tracing::error!(command_id = %env.id, error = %e, "cannot store a result in the outbox; sending it directly");
                self.send_results(vec![result]).await?;
            }
        }
        self.flush_outbox().await?;
        // A scheduled reboot runs only now that its result is delivered (never while
        // stopping: see crate::boot).
        if !self.stopping.load(std::sync::atomic::Ordering::SeqCst)
            && self
                .pending_reboot
                .run_if_due(&self.outbox, self.exec.as_ref())
                .await
        {
            return Ok(());
        }
        if let Some(offer) = &resp.agent_update
            && !self.stopping.load(std::sync::atomic::Ordering::SeqCst)
        {
            let bearer = self
                .identity
                .as_ref()
                .map(|i| i.credential.expose().to_owned());
            let outcome = self
                .updater
                .apply(offer, &self.client, bearer.as_deref(), &self.stopping)
                .await;
            if let crate::selfupdate::Outcome::HandOver(exe) = outcome {
                return Err(Failure::HandOver(exe));
            }
        }
        Ok(())
    }

    /// The trial of a new binary (`PATCHCTL_UPDATE_TRIAL`): heartbeats until one is
    /// answered, within `update_confirm_secs`; no scan, no command. `Ok` means the
    /// binary reaches the platform and its update is confirmed.
    pub async fn trial(mut self) -> Result<(), AgentError> {
        if let Some(marker) = state::load_revoked(self.cfg.dir()) {
            return Err(Self::stopped(marker));
        }
        let deadline = Instant::now() + self.cfg.update_confirm;
        let mut backoff = Backoff::new(Duration::from_secs(5));
        loop {
            match self.send_heartbeat(true).await {
                Ok(_) => {
                    tracing::info!(target: "audit", version = %self.updater.running_version(), "trial: this binary reached the platform");
                    return Ok(());
                }
                Err(Failure::Revoked(message)) => return Err(self.revoked(message)),
                Err(f) => {
                    let wait = backoff.delay();
                    if Instant::now() + wait >= deadline {
                        return Err(AgentError::Trial(format!("{f:?}")));
                    }
                    tracing::warn!(failure = ?f, "trial heartbeat failed; trying again");
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    async fn send_results(
        &mut self,
        results: Vec<patchctl_proto::command::CommandResult>,
    ) -> Result<(), Failure> {
        if results.is_empty() {
            return Ok(());
        }
        let kinds: std::collections::HashMap<uuid::Uuid, &'static str> = results
            .iter()
            .map(|r| (r.command_id, result_kind(r)))
            .collect();
        let statuses: std::collections::HashMap<uuid::Uuid, &'static str> = results
            .iter()
            .map(|r| (r.command_id, result_status(r)))
            .collect();
        let upload = ResultsUpload { results };
        let ack: ResultsAck = self
            .client
            .json(
                Method::POST,
                "/api/v1/agent/results",
                self.bearer(),
                Some(&upload),
            )
            .await?;
        for id in &ack.stored {
            let kind = kinds.get(id).copied().unwrap_or("unknown");
            let status = statuses.get(id).copied().unwrap_or("unknown");
            tracing::info!(target: "audit", command_id = %id, kind, status, "result delivered");
        }
        self.outbox.remove(&ack.stored);
        Ok(())
    }

    async fn flush_outbox(&mut self) -> Result<(), Failure> {
        let pending = self.outbox.all();
        self.send_results(pending).await
    }

    /// Replaces a credential older than `credential_rotation_days`, after a successful
    /// heartbeat. Only a revocation stops the step: any other failure is logged and
    /// tried again later, and the old credential stays in use (the platform keeps it
    /// valid until the new one is used).
    async fn rotate_if_due(&mut self) -> Result<(), Failure> {
        let Some(max_age) = self.cfg.credential_rotation else {
            return Ok(());
        };
        let Some(current) = self.identity.clone() else {
            return Ok(());
        };
        if !current.due_for_rotation(max_age, Utc::now())
            || self.rotation_retry_at.is_some_and(|t| Instant::now() < t)
        {
            return Ok(());
        }
        let answer: Result<CredentialRotation, ClientError> = self
            .client
            .json::<(), _>(
                Method::POST,
                "/api/v1/agent/credential",
                self.bearer(),
                None,
            )
            .await;
        let rotation = match answer.map_err(Failure::from) {
            Ok(r) => r,
            Err(f @ (Failure::Revoked(_) | Failure::Pending)) => return Err(f),
            Err(Failure::Unauthorized | Failure::Other(_) | Failure::HandOver(_)) => {
                tracing::warn!(host_id = %current.host_id, retry_in_secs = ROTATION_RETRY.as_secs(), "credential rotation failed; the current credential stays in use");
                self.rotation_retry_at = Some(Instant::now() + ROTATION_RETRY);
                return Ok(());
            }
        };
        let next = Identity {
            credential: rotation.credential,
            issued_at: Some(rotation.issued_at),
            ..current
        };
        match state::save_identity(self.cfg.dir(), &next) {
            Ok(()) => {
                tracing::info!(target: "audit", host_id = %next.host_id, issued_at = %rotation.issued_at, "credential rotated");
                self.identity = Some(next);
                self.rotation_retry_at = None;
            }
            Err(e) => {
                tracing::error!(target: "audit", host_id = %next.host_id, dir = %self.cfg.dir().display(), error = %e, "cannot store the rotated credential; the current one stays in use (the platform accepts it until the new one is used); free space or fix permissions there");
                self.rotation_retry_at = Some(Instant::now() + ROTATION_RETRY);
            }
        }
        Ok(())
    }

    /// Writes the revoked marker and logs the revocation; the error to stop with.
    fn revoked(&self, message: String) -> AgentError {
        let marker = RevokedMarker {
            revoked_at: Utc::now(),
            server_url: self.cfg.server_url.clone(),
            host_id: self.host_id(),
            message,
        };
        if let Err(e) = state::write_revoked(self.cfg.dir(), &marker) {
            tracing::error!(dir = %self.cfg.dir().display(), error = %e, "cannot write the revoked marker; the agent stops anyway, but a restart would ask the platform again");
        }
        Self::stopped(marker)
    }

    /// Logs the audit error of a revoked agent and gives the error to stop with.
    fn stopped(marker: RevokedMarker) -> AgentError {
        let host = marker.host_id.map(|h| h.to_string()).unwrap_or_default();
        tracing::error!(
            target: "audit",
            host_id = %host,
            server_url = %marker.server_url,
            revoked_at = %marker.revoked_at,
            message = %marker.message,
            "the platform revoked this agent's credential; the agent stops and does not contact the platform again; to bring the host back, an operator runs `patchctl-agent reenroll` and restarts the agent"
        );
        AgentError::Revoked {
            message: marker.message,
        }
    }

    /// Runs until `shutdown` resolves, or until the platform revokes the credential
    /// ([`AgentError::Revoked`]).
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) -> Result<Stopped, AgentError> {
        if let Some(marker) = state::load_revoked(self.cfg.dir()) {
            return Err(Self::stopped(marker));
        }
        tokio::pin!(shutdown);
        let mut backoff = Backoff::new(self.cfg.heartbeat_interval.min(MAX_BACKOFF));
        let mut next_scan = Instant::now();
        tracing::info!(server_url = %self.cfg.server_url, version = crate::VERSION, package_manager = self.ops.family().map(|f| f.as_str()).unwrap_or("none"), "agent starting");
        let stopping = self.stopping.clone();
        loop {
            // A stop asked for during a step lets the command in progress finish (an
            // install is never cut short: the unit's KillMode=process leaves the
            // children alone, and the agent waits for them) and then ends the loop.
            let step = {
                let fut = self.step(&mut next_scan);
                tokio::pin!(fut);
                loop {
                    tokio::select! {
                        r = &mut fut => break r,
                        _ = &mut shutdown, if !stopping.load(std::sync::atomic::Ordering::SeqCst) => {
                            stopping.store(true, std::sync::atomic::Ordering::SeqCst);
                            tracing::info!("stop requested; finishing the command in progress first");
                        }
                    }
                }
            };
            if stopping.load(std::sync::atomic::Ordering::SeqCst) {
                match step {
                    Err(Failure::Revoked(message)) => return Err(self.revoked(message)),
                    Err(Failure::HandOver(exe)) => return Ok(Stopped::HandOver(exe)),
                    _ => {}
                }
                tracing::info!("agent stopping");
                return Ok(Stopped::Shutdown);
            }
            let wait = match step {
                Ok(()) => {
                    backoff.reset();
                    if self.pending {
                        self.pending = false;
                        tracing::info!(target: "audit", host_id = %self.host_id().map(|h| h.to_string()).unwrap_or_default(), "an operator approved this host; carrying on");
                    }
                    jittered(self.cfg.heartbeat_interval)
                }
                Err(Failure::Pending) => {
                    backoff.reset();
                    self.set_connected(true, None);
                    if !self.pending {
                        self.pending = true;
                        tracing::warn!(target: "audit", host_id = %self.host_id().map(|h| h.to_string()).unwrap_or_default(), "waiting for an operator to approve this host; asking again at every heartbeat");
                    }
                    jittered(self.cfg.heartbeat_interval)
                }
                Err(Failure::Revoked(message)) => return Err(self.revoked(message)),
                Err(Failure::HandOver(exe)) => return Ok(Stopped::HandOver(exe)),
                Err(Failure::Unauthorized) => {
                    if let Some(marker) = state::load_revoked(self.cfg.dir()) {
                        return Err(Self::stopped(marker));
                    }
                    tracing::warn!(target: "audit", "the platform rejected the agent credential (401); re-enrolling with the license key");
                    self.identity = None;
                    if let Err(e) = state::remove_identity(self.cfg.dir()) {
                        tracing::error!(error = %e, "cannot remove the revoked credential file");
                    }
                    Duration::ZERO
                }
                Err(Failure::Other(e)) => {
                    self.set_connected(false, Some(&e));
                    backoff.delay()
                }
            };
            tokio::select! {
                _ = &mut shutdown => {
                    tracing::info!("agent stopping");
                    return Ok(Stopped::Shutdown);
                }
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    async fn step(&mut self, next_scan: &mut Instant) -> Result<(), Failure> {
        if self.identity.is_none() {
            self.enroll().await?;
        }
        // Heartbeat first: the host shows online before the (slower) scan arrives.
        self.heartbeat().await?;
        self.rotate_if_due().await?;
        if self.rescan || Instant::now() >= *next_scan {
            self.rescan = false;
            self.scan_and_upload().await?;
            *next_scan = Instant::now() + self.cfg.scan_interval;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
