//! The PatchCTL platform: the agent API and the operator API over TLS 1.3, on one
//! storage backend.
//!
//! The server is a function of a listener ([`launch_with_listener`]) and the routes a
//! function of the state ([`app`]), so tests bind `127.0.0.1:0` or call the router
//! directly.
//!
//! Layout: [`api`] holds the handlers, one file per resource, and wires the routes;
//! [`engine`] is the CVE engine the vulnerability views and the updates view ask;
//! [`heartbeats`] the group-commit writer every heartbeat goes through; [`auth`] the
//! secrets and the extractors that check them; [`ratelimit`] the in-memory rate limits,
//! each node taking its share as [`nodes`] counts the live nodes; [`releases`] what a published release must satisfy and the cache of
//! rollouts and releases behind the heartbeat's update offer; [`error`] the one error answer and the mapping of domain errors to status
//! codes; [`settings`] the layered configuration; [`serve`] the TLS accept loop;
//! [`bootstrap`] organisations and the `--dev` set-up; [`vulnsync`] the vulnerability
//! feed sync and its scheduler (every node, one at a time); [`metrics`] the Prometheus
//! metrics (`GET /metrics`, and the plain `metrics_listen` address).
//!
//! Every change of trust (an enrollment key created, revoked or rotated, a host
//! enrolled, approved, rejected or revoked, an agent credential rotated, the
//! organisation's settings, a release published, the agent rollout changed, an agent's
//! update step) is logged as an event of the tracing target `audit`, with
//! the organisation, the key or host and the actor (`api token ID`, `host ID`,
//! `enrollment key ID`), never a secret.
//! Handlers reach the database only through `Storage` methods (no SQL, no backend
//! branches) and the engine only through its public methods.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use patchctl_storage::Storage;
use tokio::net::TcpListener;

pub mod access;
pub mod api;
pub mod audit;
pub mod auth;
pub mod bootstrap;
pub mod changes;
pub mod drain;
pub mod engine;
pub mod error;
pub mod gate;
pub mod heartbeats;
pub mod longpoll;
pub mod lookup;
pub mod metrics;
pub mod nodes;
pub mod operators;
pub mod passwords;
pub mod policy;
pub mod ratelimit;
pub mod reboots;
pub mod releases;
pub mod serve;
pub mod settings;
pub mod signing;
pub mod throttled_log;
pub mod ui;
pub mod views;
pub mod vulnsync;
pub mod webhooks;
pub mod windows;

pub use settings::Settings;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// Storage backend.
    pub store: Arc<dyn Storage>,
    /// Settings.
    pub settings: Arc<Settings>,
    /// The heartbeat writer (group commit).
    pub heartbeats: heartbeats::HeartbeatBatcher,
    /// Recently seen agent credentials.
    pub agents: Arc<auth::CredentialCache>,
    /// The fleet's CVE correlation.
    pub vulns: Arc<engine::VulnEngine>,
    /// The enrollment rate limits of this process.
    pub limits: Arc<ratelimit::EnrollLimits>,
    /// Rollouts and published agent releases, for the heartbeat's update offer.
    pub releases: Arc<releases::ReleaseCache>,
    /// The Prometheus metrics of this process.
    pub metrics: Arc<metrics::Metrics>,
    /// The dashboard's login rate limits of this process.
    pub logins: Arc<ui::session::LoginLimits>,
    /// The dashboard's fleet-wide views, served stale while one recompute runs.
    pub views: Arc<views::FleetViews>,
    /// The organisations' command-signing keys.
    pub signer: Arc<signing::Signer>,
    /// The agents' long-polls this node holds.
    pub waiters: Arc<longpoll::Waiters>,
    /// Set when the node is stopping: readiness fails, long-polls answer at once.
    pub drain: drain::Drain,
    /// The agent API's rate limits of this process (per credential, per address).
    pub agent_limits: Arc<ratelimit::AgentLimits>,
    /// This node in the node registry; its count of live nodes divides the rate limits.
    pub nodes: Arc<nodes::Registry>,
    /// The bound on database-bound agent requests in flight (`agent_requests_in_flight`).
    pub agent_gate: Arc<gate::AgentGate>,
}

impl AppState {
    /// State over `store`; starts the heartbeat writer, the changes consumer and the
    /// node registry's beat on the current runtime. The command signer reads
    /// `settings.command_signing_key` (keys in memory when unset or unreadable, loudly).
    pub fn new(store: Arc<dyn Storage>, settings: Settings) -> Self {
        let signer = match &settings.command_signing_key {
            Some(path) => signing::Signer::open(path.clone()).unwrap_or_else(|e| {
                // `launch` refuses to start on this; state built in code (tests) keeps
                // going with keys in memory, loudly.
                tracing::error!(error = %e, "command-signing keys in memory only");
                signing::Signer::ephemeral()
            }),
            None => signing::Signer::ephemeral(),
        };
        Self::with_signer(store, settings, signer)
    }

    /// [`AppState::new`] with the signer given (`launch` opened and checked it).
    pub fn with_signer(
        store: Arc<dyn Storage>,
        settings: Settings,
        signer: signing::Signer,
    ) -> Self {
        let heartbeats =
            heartbeats::HeartbeatBatcher::start(store.clone(), settings.metrics_history_len);
        let metrics = Arc::new(metrics::Metrics::new());
        let vulns = engine::VulnEngine::new(store.clone());
        vulns.observe_recorrelation(metrics.recorrelation_observer());
        vulns.spawn();
        let nodes = Arc::new(nodes::Registry::new());
        nodes.set_address(Some(settings.listen.to_string()));
        nodes::start(store.clone(), nodes.clone());
        let limits = Arc::new(ratelimit::EnrollLimits::new(
            settings.enroll_per_address_per_min,
            settings.enroll_per_key_per_min,
            nodes.share(),
        ));
        let signer = Arc::new(signer);
        let waiters = Arc::new(longpoll::Waiters::default());
        let agents = Arc::new(auth::CredentialCache::default());
        changes::start(
            store.clone(),
            waiters.clone(),
            agents.clone(),
            vulns.clone(),
            nodes.clone(),
        );
        let settings_limits = (
            settings.agent_per_credential_per_min,
            settings.agent_per_address_per_min,
        );
        let agent_gate = Arc::new(gate::AgentGate::new(settings.agent_requests_in_flight));
        AppState {
            drain: drain::Drain::default(),
            waiters,
            signer,
            vulns,
            store,
            limits,
            settings: Arc::new(settings),
            heartbeats,
            agents,
            releases: Arc::new(releases::ReleaseCache::default()),
            metrics,
            logins: Arc::new(ui::session::LoginLimits::new(nodes.share())),
            views: Arc::new(views::FleetViews::default()),
            agent_limits: Arc::new(ratelimit::AgentLimits::new(
                settings_limits.0,
                settings_limits.1,
                nodes.share(),
            )),
            nodes,
            agent_gate,
        }
    }
}

/// All routes ([`api::routes`] and `GET /metrics`) over `state`, with the JSON 404
/// fallback, the panic guard and, outermost, the HTTP metrics.
pub fn app(state: AppState) -> Router {
    api::routes(state.clone())
        .route("/metrics", axum::routing::get(metrics::scrape))
        .merge(ui::routes(&state))
        .fallback(|| async {
            error::ApiError::not_found("no such endpoint; the API lives under /api/v1/")
        })
        .layer(axum::middleware::map_response(error::errors_as_json))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            |_: Box<dyn std::any::Any + Send>| {
                tracing::error!("a request handler panicked");
                axum::response::IntoResponse::into_response(error::ApiError::new(
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error; the platform logged it",
                ))
            },
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::http::track,
        ))
        .with_state(state)
}

/// Why the platform could not start.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// The database could not be opened, migrated or trimmed.
    #[error(transparent)]
    Storage(#[from] patchctl_storage::StorageError),
    /// The TLS certificate or key could not be loaded.
    #[error(transparent)]
    Tls(#[from] patchctl_net::tls::TlsError),
    /// The command-signing key file is unusable or disagrees with the platform.
    #[error(transparent)]
    Signing(#[from] signing::SigningError),
    /// The plain metrics address (`metrics_listen`) could not be bound.
    #[error(
        "cannot listen on metrics_listen {addr}: {source}; choose a free address or leave metrics_listen unset"
    )]
    MetricsListen {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Opens storage, loads TLS and serves on `listener` until `shutdown` resolves; binds
/// `metrics_listen` when it is set and serves `/metrics` there too.
pub async fn launch_with_listener(
    settings: Settings,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), LaunchError> {
    let metrics = match settings.metrics_listen {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .map_err(|source| LaunchError::MetricsListen { addr, source })?,
        ),
        None => None,
    };
    launch_with_listeners(settings, listener, metrics, shutdown).await
}

/// [`launch_with_listener`] with the plain metrics listener given (tests bind
/// `127.0.0.1:0`); `settings.metrics_listen` is not looked at.
pub async fn launch_with_listeners(
    settings: Settings,
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), LaunchError> {
    let store = patchctl_storage::open(&settings.database_url).await?;
    let tls = patchctl_net::tls::server_config(&settings.tls_cert, &settings.tls_key)?;
    // The key file is read once, here: every organisation's key is checked (and made,
    // for one that has none anywhere) before the first request, so a node whose key
    // file disagrees with the platform does not start; the state keeps this signer.
    let signer = match &settings.command_signing_key {
        Some(path) => {
            let signer = signing::Signer::open(path.clone())?;
            for org in store.list_orgs().await? {
                signer.ensure(store.as_ref(), org.id).await?;
            }
            signer
        }
        None => {
            tracing::warn!(
                "no command_signing_key set: commands are signed with keys kept in memory, which agents refuse after a restart"
            );
            signing::Signer::ephemeral()
        }
    };
    let trimmed = store
        .trim_metrics_history(settings.metrics_history_len)
        .await?;
    if trimmed > 0 {
        tracing::info!(
            rows = trimmed,
            "metrics history trimmed to metrics_history_len"
        );
    }
    let sync = vulnsync::schedule::start(&settings, store.clone());
    let hooks = webhooks::start(&settings.webhook_config(), store.clone());
    let drain_for = std::time::Duration::from_secs(settings.drain_secs);
    let state = AppState::with_signer(store, settings, signer);
    if let Ok(addr) = listener.local_addr() {
        state.nodes.set_address(Some(addr.to_string()));
    }
    let policy = policy::spawn(state.clone());
    let drain = state.drain.clone();
    let (registry, store) = (state.nodes.clone(), state.store.clone());
    let shutdown = async move {
        shutdown.await;
        drain.start();
        // The other nodes take over this node's share of the rate limits now.
        registry.leave(store.as_ref()).await;
        if !drain_for.is_zero() {
            tracing::info!(
                drain_secs = drain_for.as_secs(),
                "stopping: draining first (readiness answers 503, long-polls end)"
            );
            tokio::time::sleep(drain_for).await;
        }
    };
    let plain = metrics_listener.map(|l| {
        tokio::spawn(metrics::serve_plain(
            l,
            state.clone(),
            std::future::pending(),
        ))
    });
    let options = serve::Options::new(&state.settings, state.metrics.conns.clone());
    serve::serve(listener, tls, options, app(state), shutdown).await;
    if let Some(sync) = sync {
        sync.abort();
    }
    if let Some(hooks) = hooks {
        hooks.abort();
    }
    if let Some(plain) = plain {
        plain.abort();
    }
    policy.abort();
    Ok(())
}
