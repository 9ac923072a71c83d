//! Prometheus metrics: `GET /metrics` in the text format, over TLS behind an API token
//! (any role that may read), and optionally on a separate plain-HTTP address without a
//! token (`metrics_listen`, [`serve_plain`]). docs/metrics.md lists every family.
//!
//! [`text`] writes the format; [`traffic`] counts what the agents sent (the agent API's
//! handlers increment it); [`http`] times every request by route template; [`fleet`]
//! computes the gauges that need the database (and the CVE engine and feed sync) at
//! scrape time, cached for a few seconds. Re-correlation times come from the engine's
//! observer ([`Metrics::recorrelation_observer`]). [`limits`] counts what the abuse
//! limits refused (connections over the cap, timeouts, 429 by scope, agent requests
//! shed). The node gauges
//! (live nodes in the registry, long-polls held) are read from the state at scrape
//! time ([`encode_node`]).

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use uuid::Uuid;

use crate::AppState;
use crate::engine::{Recorrelation, RecorrelationObserver};
use crate::error::ApiError;

pub mod fleet;
pub mod http;
pub mod limits;
pub mod text;
pub mod traffic;

use text::{Histogram, Kind, RECORRELATION_BUCKETS, Text};

/// The metrics of one platform process.
#[derive(Debug)]
pub struct Metrics {
    /// What the agents sent.
    pub traffic: traffic::Traffic,
    /// Request latencies and requests in flight.
    pub http: http::HttpMetrics,
    /// Connections held, refused by the cap, and timed out (the accept loop's).
    pub conns: Arc<limits::ConnCounters>,
    /// The scrape-time gauges.
    fleet: fleet::FleetCache,
    /// Re-correlation times per kind ([`Recorrelation::ALL`] order), and the last one.
    recorrelation: Arc<[(Histogram, std::sync::atomic::AtomicU64); 3]>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Everything at zero.
    pub fn new() -> Metrics {
        let slot = || {
            (
                Histogram::new(RECORRELATION_BUCKETS),
                std::sync::atomic::AtomicU64::new(f64::NAN.to_bits()),
            )
        };
        Metrics {
            traffic: traffic::Traffic::default(),
            http: http::HttpMetrics::default(),
            conns: Arc::default(),
            fleet: fleet::FleetCache::default(),
            recorrelation: Arc::new([slot(), slot(), slot()]),
        }
    }

    /// The observer to give the engine ([`crate::engine::VulnEngine::observe_recorrelation`]).
    pub fn recorrelation_observer(&self) -> RecorrelationObserver {
        let slots = Arc::clone(&self.recorrelation);
        Box::new(move |kind, took| {
            let i = Recorrelation::ALL
                .iter()
                .position(|k| *k == kind)
                .unwrap_or(0);
            let secs = took.as_secs_f64();
            slots[i].0.observe(secs);
            slots[i]
                .1
                .store(secs.to_bits(), std::sync::atomic::Ordering::Relaxed);
        })
    }

    fn encode_recorrelation(&self, t: &mut Text) {
        t.family(
            "patchctl_vuln_recorrelation_last_seconds",
            Kind::Gauge,
            "How long the last re-correlation of each kind took (load: everything at start; database: after a change of the vulnerability data; host: after a scan).",
        );
        for (kind, (_, last)) in Recorrelation::ALL.iter().zip(self.recorrelation.iter()) {
            let v = f64::from_bits(last.load(std::sync::atomic::Ordering::Relaxed));
            if !v.is_nan() {
                t.sample(
                    "patchctl_vuln_recorrelation_last_seconds",
                    &[("kind", kind.as_str())],
                    v,
                );
            }
        }
        t.family(
            "patchctl_vuln_recorrelation_seconds",
            Kind::Histogram,
            "Re-correlation times of the CVE engine, by kind.",
        );
        for (kind, (h, _)) in Recorrelation::ALL.iter().zip(self.recorrelation.iter()) {
            t.histogram(
                "patchctl_vuln_recorrelation_seconds",
                &[("kind", kind.as_str())],
                h,
            );
        }
    }
}

/// The whole page for `org` (every organisation when `None`).
pub async fn render(st: &AppState, org: Option<Uuid>) -> String {
    let mut t = Text::new();
    t.append(&st.metrics.fleet.page(st, org).await);
    st.metrics.traffic.encode(&mut t);
    st.metrics.encode_recorrelation(&mut t);
    st.metrics.http.encode(&mut t);
    st.metrics.conns.encode(&mut t);
    limits::encode_rate_limited(&mut t, st.limits.refused(), st.agent_limits.refused());
    limits::encode_agent_gate(&mut t, &st.agent_gate);
    encode_node(&mut t, st);
    t.finish()
}

/// This node's gauges: the live nodes it shares the rate limits with, the long-polls it
/// holds.
fn encode_node(t: &mut Text, st: &AppState) {
    t.family(
        "patchctl_nodes_live",
        Kind::Gauge,
        "Platform nodes seen in the node registry in the last 45 s, this one included, at this node's last beat; each node admits 1/N of the in-memory rate limits.",
    );
    t.sample("patchctl_nodes_live", &[], f64::from(st.nodes.live()));
    t.family(
        "patchctl_long_polls_waiting",
        Kind::Gauge,
        "Agents' long-polls (POST /api/v1/agent/commands/wait) this node holds now.",
    );
    t.sample(
        "patchctl_long_polls_waiting",
        &[],
        st.waiters.waiting() as f64,
    );
}

/// The page as an answer.
fn page(text: String) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, text::CONTENT_TYPE)],
        text,
    )
        .into_response()
}

/// `GET /metrics` on the main listener: needs an API token that may read; the
/// organisation families show the token's organisation only.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "metrics",
    responses(
        (status = 200, description = "The Prometheus text format (version 0.0.4)", body = String, content_type = "text/plain; version=0.0.4"),
        (status = 401, description = "unauthorized: no valid bearer token", body = patchctl_proto::api::ApiErrorBody),
        (status = 403, description = "forbidden: the token's role may not read", body = patchctl_proto::api::ApiErrorBody),
    ),
)]
pub async fn scrape(State(st): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let org = authorize(&st, &headers).await?;
    Ok(page(render(&st, Some(org)).await))
}

/// The bearer token of `headers`, checked against the rule of `GET /metrics`
/// (`access::rules`): the organisation it may read.
async fn authorize(st: &AppState, headers: &HeaderMap) -> Result<Uuid, ApiError> {
    let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return Err(ApiError::unauthorized(
            "missing API token: scrape /metrics with `Authorization: Bearer TOKEN` (any role that may read), or use the plain metrics_listen address",
        )
        .with_code(patchctl_proto::trust::ErrorCode::Unauthorized));
    };
    let principal = crate::access::authenticate_token(st, token.trim(), chrono::Utc::now()).await?;
    crate::access::check(&principal, "GET", "/metrics")?;
    Ok(principal.org_id)
}

/// The router of the plain listener: `GET /metrics` without a token, every
/// organisation.
pub fn plain_router(state: AppState) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(|State(st): State<AppState>| async move { page(render(&st, None).await) }),
        )
        .with_state(state)
}

/// Serves [`plain_router`] over plain HTTP on `listener` until `shutdown` resolves.
pub async fn serve_plain(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    if let Ok(addr) = listener.local_addr() {
        if !addr.ip().is_loopback() {
            tracing::warn!(%addr, "metrics_listen is not a loopback address: /metrics is served there without a token");
        }
        tracing::info!(%addr, "serving /metrics over plain HTTP (metrics_listen)");
    }
    if let Err(e) = axum::serve(listener, plain_router(state))
        .with_graceful_shutdown(shutdown)
        .await
    {
        tracing::error!(error = %e, "the metrics listener stopped");
    }
}
