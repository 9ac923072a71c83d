//! The audit trail of operators: [`record`] appends one entry for every request that
//! may change state (any method but GET, HEAD and OPTIONS) on the operator API and the
//! dashboard, after its answer, whatever the outcome: done, refused (401, 403, 429),
//! rejected (other 4xx) or failed (5xx).
//!
//! An entry names who (the [`Principal`] [`crate::access::authorize`] put in the
//! answer, else anonymous), from which address, the route template and its action
//! name, the path parameters, the status, the outcome and the error code; and, when the
//! handler says so with [`AuditDetails`], what it did in structured form. Request
//! bodies are never recorded, so a password or token in one never reaches the trail;
//! handlers put only names and ids in their details.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts, RawPathParams, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use chrono::Utc;
use patchctl_proto::trust::ErrorCode;
use patchctl_storage::{AuditActor, AuditOutcome, NewAuditEntry};

use crate::AppState;
use crate::access::{Principal, route_of, rule_for};

/// What a handler did, in structured form, for its audit entry: put it in the
/// answer's extensions (`(Extension(AuditDetails(json!({...}))), Json(body))`). Never a
/// secret.
#[derive(Debug, Clone)]
pub struct AuditDetails(pub serde_json::Value);

/// The actor of a request nobody could be named for.
pub fn anonymous() -> AuditActor {
    AuditActor {
        kind: "anonymous".to_owned(),
        id: None,
        name: "anonymous".to_owned(),
        user_id: None,
    }
}

/// Appends `entry`; a failure is logged (the request's effect stands either way).
pub async fn append(state: &AppState, entry: NewAuditEntry) {
    let action = entry.action.clone();
    if let Err(e) = state.store.append_audit(entry).await {
        tracing::error!(target: "audit", action, error = %e, "could not append to the audit trail");
    }
}

/// The peer address of a request, as text.
pub fn peer_of(req: &Request) -> Option<String> {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
}

/// Middleware (a route layer, outside [`crate::access::authorize`]): appends the audit
/// entry of every state-changing request after its answer.
pub async fn record(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if matches!(req.method().as_str(), "GET" | "HEAD" | "OPTIONS") {
        return next.run(req).await;
    }
    let method = req.method().as_str().to_owned();
    let route = route_of(&req).unwrap_or_else(|| req.uri().path().to_owned());
    let peer = peer_of(&req);
    let (mut parts, body) = req.into_parts();
    let target = match RawPathParams::from_request_parts(&mut parts, &()).await {
        Ok(params) => serde_json::Value::Object(
            params
                .iter()
                .map(|(k, v)| (k.to_owned(), serde_json::Value::from(v)))
                .collect(),
        ),
        Err(_) => serde_json::json!({}),
    };
    let resp = next.run(Request::from_parts(parts, body)).await;
    let principal = resp.extensions().get::<Principal>();
    let status = resp.status().as_u16();
    let entry = NewAuditEntry {
        org_id: principal.map(|p| p.org_id),
        at: Utc::now(),
        actor: principal.map_or_else(anonymous, Principal::audit_actor),
        peer,
        action: rule_for(&method, &route)
            .map_or("unknown", |r| r.action)
            .to_owned(),
        method,
        route,
        target,
        details: resp
            .extensions()
            .get::<AuditDetails>()
            .map_or(serde_json::Value::Null, |d| d.0.clone()),
        status,
        outcome: AuditOutcome::of_status(status),
        // An error axum answered itself (plain text: a body that does not parse) gets
        // its JSON body and code from `error::errors_as_json` further out: the code of
        // its status. The dashboard's HTML error pages carry no code.
        error_code: resp
            .extensions()
            .get::<ErrorCode>()
            .copied()
            .or_else(|| {
                let plain = resp
                    .headers()
                    .get(axum::http::header::CONTENT_TYPE)
                    .is_none_or(|v| v.as_bytes().starts_with(b"text/plain"));
                (status >= 400 && plain).then(|| ErrorCode::for_status(status))
            })
            .map(|c| c.as_str().to_owned()),
    };
    append(&state, entry).await;
    resp
}
