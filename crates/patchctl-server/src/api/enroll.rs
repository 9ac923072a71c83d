//! `POST /api/v1/agent/enroll`: an enrollment key buys a host record and an agent
//! credential (shown once; only its hash is stored).
//!
//! In order: the body is limited to [`MAX_ENROLL_BODY_BYTES`] (413 before anything
//! else is looked at), the source address takes a token of its rate limit (so guessing
//! keys is limited per address), the key is looked up and takes a token of its own
//! limit, then the key's use is counted and the host created in one transaction
//! ([`patchctl_storage::HostStore::enroll_host`]). A key that is unknown, revoked,
//! expired or used up gets 401 `enrollment_key_invalid` saying which (for an unknown
//! key, only that it is unknown).

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use chrono::Utc;
use patchctl_proto::PROTOCOL_VERSION;
use patchctl_proto::agent::{EnrollRequest, EnrollResponse};
use patchctl_proto::trust::ErrorCode;
use patchctl_storage::{EnrollHost, Enrollment, KeyRefusal};

use crate::AppState;
use crate::auth::{CREDENTIAL_PREFIX, hash_secret, new_secret};
use crate::error::{ApiError, ApiJson};

/// Largest enrollment body: an [`EnrollRequest`] is a key and the system's
/// identification, a few KiB at most.
pub const MAX_ENROLL_BODY_BYTES: usize = 64 * 1024;

/// The TCP peer's address, when the request came through [`crate::serve`] (absent when
/// the router is called in-process).
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub Option<SocketAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Peer(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0),
        ))
    }
}

/// The answer to a key that enrolls nothing: what is wrong with it and what to do.
fn refused(why: KeyRefusal) -> ApiError {
    let message = match why {
        KeyRefusal::Unknown => {
            "unknown enrollment key; check license_key in the agent's configuration"
        }
        KeyRefusal::Revoked => {
            "this enrollment key was revoked by an operator; put a current key (`patchctl keys create`) into license_key"
        }
        KeyRefusal::Expired => {
            "this enrollment key has expired; put a current key (`patchctl keys create` or `patchctl keys rotate`) into license_key"
        }
        KeyRefusal::Exhausted => {
            "this enrollment key has enrolled its maximum number of hosts; put another key (`patchctl keys create` or `patchctl keys rotate`) into license_key"
        }
    };
    ApiError::unauthorized(message).with_code(ErrorCode::EnrollmentKeyInvalid)
}

fn refusal_name(why: KeyRefusal) -> &'static str {
    match why {
        KeyRefusal::Unknown => "unknown",
        KeyRefusal::Revoked => "revoked",
        KeyRefusal::Expired => "expired",
        KeyRefusal::Exhausted => "exhausted",
    }
}

/// `POST /api/v1/agent/enroll`.
#[utoipa::path(
    post,
    path = "/api/v1/agent/enroll",
    tag = "agent",
    request_body = EnrollRequest,
    responses(
        (status = 200, description = "Enrolled: the host id and its credential", body = EnrollResponse),
        (status = 400, description = "bad_request: the request is malformed (parameters or body); the message says which", body = patchctl_proto::api::ApiErrorBody),
        (status = 401, description = "unauthorized: no valid bearer token", body = patchctl_proto::api::ApiErrorBody),
        (status = 413, description = "too_large: the body is over the route's limit", body = patchctl_proto::api::ApiErrorBody),
        (status = 415, description = "unsupported_media_type: the body is not JSON (or an unknown Content-Encoding)", body = patchctl_proto::api::ApiErrorBody),
        (status = 429, description = "rate_limited: retry after Retry-After seconds", body = patchctl_proto::api::ApiErrorBody, headers(("Retry-After" = u64, description = "Seconds until a retry can pass"))),
        (status = 503, description = "unavailable: the database (or the vulnerability correlation) cannot answer right now; retry. overloaded: the node holds agent_requests_in_flight database-bound agent requests already; retry after Retry-After seconds", body = patchctl_proto::api::ApiErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait before retrying (overloaded: 1 to 5, drawn at random)")))
    ),
    security(()),
)]
pub async fn enroll(
    State(st): State<AppState>,
    Peer(peer): Peer,
    ApiJson(req): ApiJson<EnrollRequest>,
) -> Result<Json<EnrollResponse>, ApiError> {
    let addr = peer.map(|p| p.ip());
    if let Err(e) = st.limits.check_address(addr) {
        tracing::warn!(peer = ?addr, "enrollment rate-limited by source address");
        return Err(e.into());
    }
    if req.protocol_version != PROTOCOL_VERSION {
        return Err(ApiError::bad_request(format!(
            "agent protocol version {} is not supported by this platform (version {PROTOCOL_VERSION}); upgrade the agent or the platform",
            req.protocol_version
        )));
    }
    let key_hash = hash_secret(req.license_key.expose());
    let Some(key) = st.store.enrollment_key_by_hash(&key_hash).await? else {
        tracing::warn!(target: "audit", event = "host.enroll_refused", reason = "unknown", peer = ?addr, hostname = %req.system.hostname, "enrollment refused: unknown key");
        return Err(refused(KeyRefusal::Unknown));
    };
    if let Err(e) = st.limits.check_key(key.id) {
        tracing::warn!(org_id = %key.org_id, key_id = %key.id, "enrollment rate-limited by key");
        return Err(e.into());
    }
    // The key's bucket every node shares (a stolen key enrolls no faster through three
    // nodes than through one).
    if let Some(retry_after) = st
        .store
        .take_token(
            &format!("enroll-key:{}", key.id),
            st.settings.enroll_per_key_per_min,
            chrono::Utc::now(),
        )
        .await?
    {
        tracing::warn!(org_id = %key.org_id, key_id = %key.id, "enrollment rate-limited by key (shared by every node)");
        return Err(crate::ratelimit::RateLimited {
            scope: crate::ratelimit::Scope::Key,
            retry_after,
        }
        .into());
    }
    // The organisation's command-signing key, before the host exists: a platform that
    // cannot name its key enrolls nobody (the agent would refuse every command).
    let command_key = st
        .signer
        .enrollment_key(st.store.as_ref(), key.org_id)
        .await?;
    let credential = new_secret(CREDENTIAL_PREFIX);
    let outcome = st
        .store
        .enroll_host(EnrollHost {
            key_hash,
            credential_hash: hash_secret(credential.expose()),
            agent_version: req.agent_version,
            system: req.system,
            now: Utc::now(),
        })
        .await?;
    let host = match outcome {
        Enrollment::Enrolled { host, .. } => host,
        Enrollment::Refused(why) => {
            tracing::warn!(target: "audit", event = "host.enroll_refused", reason = refusal_name(why), org_id = %key.org_id, key_id = %key.id, peer = ?addr, "enrollment refused");
            return Err(refused(why));
        }
    };
    tracing::info!(
        target: "audit",
        event = "host.enrolled",
        org_id = %host.org_id,
        host_id = %host.id,
        key_id = %key.id,
        actor = %format!("enrollment key {}", key.id),
        approval = host.approval.as_str(),
        hostname = %host.hostname,
        peer = ?addr,
        "host enrolled"
    );
    crate::webhooks::emit(
        &*st.store,
        host.org_id,
        &patchctl_proto::policy::webhooks::WebhookEvent::HostEnrolled {
            host_id: host.id,
            hostname: host.hostname.clone(),
            pending_approval: host.approval.as_str() == "pending",
        },
    )
    .await;
    Ok(Json(EnrollResponse {
        host_id: host.id,
        credential,
        command_key: Some(command_key),
    }))
}
