//! The PatchCTL platform: the agent API and the operator API over TLS 1.3, on one
//! storage backend.
//!
//! The server is a function of a listener ([`launch_with_listener`]) and the routes a
//! function of the state ([`app`]), so tests bind `127.0.0.1:0` or call the router
//! directly.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use patchctl_storage::Storage;
use tokio::net::TcpListener;

pub mod agent_api;
pub mod auth;
pub mod bootstrap;
pub mod error;
pub mod heartbeats;
pub mod operator_api;
pub mod serve;
pub mod settings;
pub mod vulns;

pub use settings::Settings;

/// Largest operator request body.
const MAX_OPERATOR_BODY_BYTES: usize = 1024 * 1024;

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
    pub vulns: Arc<vulns::VulnEngine>,
}

impl AppState {
    /// State over `store`; starts the heartbeat writer on the current runtime.
    pub fn new(store: Arc<dyn Storage>, settings: Settings) -> Self {
        let heartbeats =
            heartbeats::HeartbeatBatcher::start(store.clone(), settings.metrics_history_len);
        let vulns = vulns::VulnEngine::new(store.clone());
        vulns.spawn();
        AppState {
            vulns,
            store,
            settings: Arc::new(settings),
            heartbeats,
            agents: Arc::new(auth::CredentialCache::default()),
        }
    }
}

/// All routes.
pub fn app(state: AppState) -> Router {
    let agent = Router::new()
        .route("/enroll", post(agent_api::enroll))
        .route("/heartbeat", post(agent_api::heartbeat))
        .route("/inventory", post(agent_api::inventory))
        .route("/scan", post(agent_api::scan))
        .route("/results", post(agent_api::results))
        // The limit applies to the body as the handlers read it, which is after the
        // decompression below: a small gzip body that inflates past the limit is
        // refused with 413 once the limit is reached, never inflated whole.
        .layer(DefaultBodyLimit::max(patchctl_proto::MAX_AGENT_BODY_BYTES))
        .layer(tower_http::decompression::RequestDecompressionLayer::new())
        .layer(axum::middleware::map_response(
            error::unsupported_encoding_as_json,
        ));
    let operator = Router::new()
        .route("/hosts", get(operator_api::list_hosts))
        .route("/hosts/{host}", get(operator_api::show_host))
        .route("/hosts/{host}/packages", get(operator_api::host_packages))
        .route("/hosts/{host}/updates", get(operator_api::host_updates))
        .route("/hosts/{host}/metrics", get(operator_api::host_metrics))
        .route("/hosts/{host}/vulns", get(vulns::host_vulns))
        .route("/vulns/summary", get(vulns::summary))
        .route("/vulns/{id}", get(vulns::advisory_hosts))
        .route("/hosts/{host}/revoke", post(operator_api::revoke_host))
        .route(
            "/commands",
            get(operator_api::list_commands).post(operator_api::queue_command),
        )
        .route("/commands/{id}", get(operator_api::show_command))
        .route("/commands/{id}/cancel", post(operator_api::cancel_command))
        .layer(DefaultBodyLimit::max(MAX_OPERATOR_BODY_BYTES));
    Router::new()
        .route(
            "/api/v1/health",
            get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }),
        )
        .nest("/api/v1/agent", agent)
        .nest("/api/v1", operator)
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

/// Opens storage, loads TLS and serves on `listener` until `shutdown` resolves.
pub async fn launch_with_listener(
    settings: Settings,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
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
    let state = AppState::new(store, settings);
    serve::serve(listener, tls, app(state), shutdown).await
}
