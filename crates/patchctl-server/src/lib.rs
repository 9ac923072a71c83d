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
//! secrets and the extractors that check them; [`ratelimit`] the enrollment rate
//! limits; [`releases`] what a published release must satisfy and the cache of
//! rollouts and releases behind the heartbeat's update offer; [`error`] the one error answer and the mapping of domain errors to status
//! codes; [`settings`] the layered configuration; [`serve`] the TLS accept loop;
//! [`bootstrap`] organisations and the `--dev` set-up; [`vulnsync`] the vulnerability
//! feed sync and its scheduler (every node, one at a time).
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
pub mod engine;
pub mod error;
pub mod heartbeats;
pub mod passwords;
pub mod ratelimit;
pub mod releases;
pub mod serve;
pub mod settings;
pub mod ui;
pub mod vulnsync;

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
    /// The dashboard's login rate limits of this process.
    pub logins: Arc<ui::session::LoginLimits>,
}

impl AppState {
    /// State over `store`; starts the heartbeat writer on the current runtime.
    pub fn new(store: Arc<dyn Storage>, settings: Settings) -> Self {
        let heartbeats =
            heartbeats::HeartbeatBatcher::start(store.clone(), settings.metrics_history_len);
        let vulns = engine::VulnEngine::new(store.clone());
        vulns.spawn();
        let limits = Arc::new(ratelimit::EnrollLimits::new(
            settings.enroll_per_address_per_min,
            settings.enroll_per_key_per_min,
        ));
        AppState {
            vulns,
            store,
            limits,
            settings: Arc::new(settings),
            heartbeats,
            agents: Arc::new(auth::CredentialCache::default()),
            releases: Arc::new(releases::ReleaseCache::default()),
            logins: Arc::new(ui::session::LoginLimits::default()),
        }
    }
}

/// All routes ([`api::routes`]) over `state`, with the JSON 404 fallback and the panic
/// guard.
pub fn app(state: AppState) -> Router {
    api::routes(state.clone())
        .merge(ui::routes(&state))
        .fallback(|| async {
            error::ApiError::not_found("no such endpoint; the API lives under /api/v1/")
        })
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            |_: Box<dyn std::any::Any + Send>| {
                tracing::error!("a request handler panicked");
                axum::response::IntoResponse::into_response(error::ApiError::new(
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error; the platform logged it",
                ))
            },
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
}

/// Opens storage, loads TLS and serves on `listener` until `shutdown` resolves.
pub async fn launch_with_listener(
    settings: Settings,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), LaunchError> {
    let store = patchctl_storage::open(&settings.database_url).await?;
    let tls = patchctl_net::tls::server_config(&settings.tls_cert, &settings.tls_key)?;
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
    let state = AppState::new(store, settings);
    serve::serve(listener, tls, app(state), shutdown).await;
    if let Some(sync) = sync {
        sync.abort();
    }
    Ok(())
}
