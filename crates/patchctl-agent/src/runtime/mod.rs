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

use patchctl_net::client::{ClientError, HttpsClient};
use patchctl_proto::trust::ErrorCode;

use crate::config::AgentConfig;
use crate::exec::{Executor, ProcessExecutor};
use crate::health::{LinkState, SharedLink};
use crate::metrics::MetricsCollector;
use crate::ops::Operations;
use crate::state::{self, Identity, IdentityError, Outbox};

mod backoff;
mod exchange;
mod identity;
mod poll;
mod scanning;

use backoff::MAX_BACKOFF;
pub use backoff::{Backoff, jittered};

/// The exit code of an agent stopped because the platform revoked its credential
/// (`EX_CONFIG`). The systemd unit lists it in `RestartPreventExitStatus=`, so the
/// service stays stopped instead of being restarted into the same answer.
pub const EXIT_REVOKED: u8 = 78;

/// How long the agent waits before it tries a failed credential rotation again.
pub(super) const ROTATION_RETRY: Duration = Duration::from_secs(3600);

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

/// What a turn of [`Agent::run`]'s loop did.
enum Phase {
    /// Enrolled if needed, sent the heartbeat, rotated, scanned when due.
    Stepped,
    /// Held long-polls until the next heartbeat was due (or a rescan asked for one).
    Idled,
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
    /// The client of long-polls: the same pool, a timeout past the longest wait.
    poll_client: HttpsClient,
    /// True while a long-poll only waits (a stop then ends it at once).
    waiting: Arc<std::sync::atomic::AtomicBool>,
    /// The platform holds no long-polls (switched off there, or too old to know the
    /// route): the agent sleeps between heartbeats until this instant, then asks again.
    poll_off_until: Option<Instant>,
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
        let poll_client = client
            .clone()
            .with_timeout(cfg.long_poll.unwrap_or_default() + poll::POLL_GRACE);
        Ok(Agent {
            admission,
            poll_client,
            waiting: Arc::default(),
            poll_off_until: None,
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

    fn bearer(&self) -> Option<&str> {
        self.identity.as_ref().map(|i| i.credential.expose())
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
        // With long-polling on, the agent holds `POST /api/v1/agent/commands/wait`
        // between heartbeats (`poll.rs`) until this instant.
        let mut idle_until: Option<Instant> = None;
        loop {
            // A stop asked for during a step lets the command in progress finish (an
            // install is never cut short: the unit's KillMode=process leaves the
            // children alone, and the agent waits for them) and then ends the loop. A
            // long-poll that is only waiting is dropped at once.
            let waiting = self.waiting.clone();
            let step = {
                let idle = idle_until.take();
                let fut = async {
                    match idle {
                        Some(until) => self.idle(until).await.map(|()| Phase::Idled),
                        None => self.step(&mut next_scan).await.map(|()| Phase::Stepped),
                    }
                };
                tokio::pin!(fut);
                loop {
                    tokio::select! {
                        r = &mut fut => break r,
                        _ = &mut shutdown, if !stopping.load(std::sync::atomic::Ordering::SeqCst) => {
                            stopping.store(true, std::sync::atomic::Ordering::SeqCst);
                            if waiting.load(std::sync::atomic::Ordering::SeqCst) {
                                break Ok(Phase::Idled);
                            }
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
                // The long-poll ended at the heartbeat's time (or early, for a rescan).
                Ok(Phase::Idled) => Duration::ZERO,
                Ok(Phase::Stepped) => {
                    backoff.reset();
                    if self.pending {
                        self.pending = false;
                        tracing::info!(target: "audit", host_id = %self.host_id().map(|h| h.to_string()).unwrap_or_default(), "an operator approved this host; carrying on");
                    }
                    let next = jittered(self.cfg.heartbeat_interval);
                    if self.cfg.long_poll.is_some() {
                        idle_until = Some(Instant::now() + next);
                        Duration::ZERO
                    } else {
                        next
                    }
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
