//! A node's health for load balancers and orchestrators (issue 16, docs/deployment.md):
//!
//! - `GET /api/v1/health/live` (and the older `GET /api/v1/health`): liveness. 200
//!   whenever the process serves requests; it never touches the database, so a
//!   database outage does not get every node restarted.
//! - `GET /api/v1/health/ready`: readiness. 200 when the node can do its work now: the
//!   database answers within [`PING_TIMEOUT`] and the node is not draining; otherwise
//!   503 with the reason, and the load balancer sends its traffic elsewhere. The CVE
//!   engine's state is reported, not required (while it loads, only the vulnerability
//!   views answer 503), and so are the live nodes this node counts (`crate::nodes`:
//!   each takes 1/N of the in-memory rate limits).

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::AppState;

/// Longest the readiness check waits for the database.
pub const PING_TIMEOUT: Duration = Duration::from_secs(2);

/// Answer of the readiness check.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Readiness {
    /// `ready`, `draining` or `not_ready`.
    pub status: &'static str,
    /// `ok`, or why the database is not usable.
    pub database: String,
    /// `ready` or `loading`.
    pub cve_engine: &'static str,
    /// Platform nodes seen in the node registry in the last 45 s, this one included, at
    /// this node's last beat (each admits 1/N of the in-memory rate limits).
    pub nodes_live: u32,
}

/// `GET /api/v1/health/live`: the process serves requests.
#[utoipa::path(
    get,
    path = "/api/v1/health/live",
    tag = "public",
    responses((status = 200, description = "The process serves requests", body = crate::api::openapi::Health)),
    security(()),
)]
pub async fn live() -> Json<crate::api::openapi::Health> {
    Json(crate::api::openapi::Health { status: "ok" })
}

/// `GET /api/v1/health/ready`: the node can take traffic now.
#[utoipa::path(
    get,
    path = "/api/v1/health/ready",
    tag = "public",
    responses(
        (status = 200, description = "Ready: the database answers and the node is not draining", body = Readiness),
        (status = 503, description = "Not ready (the database does not answer) or draining (the node is stopping); send traffic elsewhere", body = Readiness)
    ),
    security(()),
)]
pub async fn ready(State(st): State<AppState>) -> Response {
    let cve_engine = if st.vulns.is_ready() {
        "ready"
    } else {
        "loading"
    };
    let database = match tokio::time::timeout(PING_TIMEOUT, st.store.ping()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: the database does not answer");
            Err("the database refused the check; see the node's log".to_owned())
        }
        Err(_) => Err(format!(
            "the database did not answer within {} s",
            PING_TIMEOUT.as_secs()
        )),
    };
    let (code, status) = match (&database, st.drain.is_draining()) {
        (_, true) => (StatusCode::SERVICE_UNAVAILABLE, "draining"),
        (Err(_), false) => (StatusCode::SERVICE_UNAVAILABLE, "not_ready"),
        (Ok(()), false) => (StatusCode::OK, "ready"),
    };
    let body = Readiness {
        status,
        database: database.err().unwrap_or_else(|| "ok".into()),
        cve_engine,
        nodes_live: st.nodes.live(),
    };
    (code, Json(body)).into_response()
}
