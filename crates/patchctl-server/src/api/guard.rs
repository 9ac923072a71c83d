//! The agent routes' guards, run before their handlers (docs/limits.md): the rate
//! limits per agent credential and per source address ([`rate_limits`], before the
//! credential is looked up), and the size caps of every string and list of an agent
//! message ([`size_caps`], [`patchctl_proto::limits`], before the message is decoded;
//! on the routes with a credential, [`known_then_size_caps`] reads no body before the
//! credential is known, so an unknown one cannot make the platform read and inflate
//! 16 MiB).

use std::net::SocketAddr;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::error::ApiError;

/// The bearer of `Authorization: Bearer ...`, as sent.
fn bearer(req: &Request) -> Option<&str> {
    req.headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// Takes a token of the request's credential (when it names one) and of its source
/// address, or answers 429 with `Retry-After`. The credential goes first, so that one
/// agent over its limit does not drain the bucket of the address it shares (NAT).
pub async fn rate_limits(State(st): State<AppState>, req: Request, next: Next) -> Response {
    if let Some(b) = bearer(&req)
        && let Err(e) = st.agent_limits.check_credential(b)
    {
        tracing::debug!(path = %req.uri().path(), "agent request rate-limited by credential");
        return ApiError::from(e).into_response();
    }
    let addr = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    if let Err(e) = st.agent_limits.check_address(addr) {
        tracing::debug!(peer = ?addr, "agent request rate-limited by source address");
        return ApiError::from(e).into_response();
    }
    next.run(req).await
}

/// On a POST or PUT: refuses a missing, unknown or revoked credential (as the handler
/// would, a pending host goes on), then [`size_caps`]. The handler's own check then
/// hits the credential cache.
pub async fn known_then_size_caps(
    State(st): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    if !matches!(*req.method(), Method::POST | Method::PUT) {
        return next.run(req).await;
    }
    let (mut parts, body) = req.into_parts();
    if let Err(e) = crate::auth::AgentIdentity::from_request_parts(&mut parts, &st).await {
        return e.into_response();
    }
    size_caps(Request::from_parts(parts, body), next).await
}

/// Reads the body of a POST or PUT (within the route's body limit, after
/// decompression) and checks every string and list in it against its cap: 400 naming
/// the field and the limit. The handler then decodes the same bytes.
pub async fn size_caps(req: Request, next: Next) -> Response {
    if !matches!(*req.method(), Method::POST | Method::PUT) {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let bytes = match Bytes::from_request(Request::from_parts(parts.clone(), body), &()).await {
        Ok(b) => b,
        Err(rejection) => {
            let status = rejection.status();
            let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
                "request body too large".to_owned()
            } else {
                rejection.body_text()
            };
            return ApiError::new(status, message).into_response();
        }
    };
    if let Err(e) = patchctl_proto::limits::check_agent_json(&bytes) {
        tracing::info!(path = %parts.uri.path(), error = %e, "agent message over a size cap");
        return ApiError::bad_request(e.to_string()).into_response();
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}
