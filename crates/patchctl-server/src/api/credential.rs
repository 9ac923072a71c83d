//! The agent's own standing: `GET /api/v1/agent/whoami` (answered while the host waits
//! for approval, too) and `POST /api/v1/agent/credential`, the credential rotation.
//!
//! A rotation stores the new credential's hash as the host's *next* credential; the
//! credential in use stays valid until the new one is first used, which promotes it
//! (`auth.rs`) and retires the old one. So an agent that crashes before it has stored
//! the new credential keeps working with the old one, and a second rotation before the
//! first was used simply replaces the unused one.

use axum::Json;
use axum::extract::State;
use chrono::Utc;
use patchctl_proto::trust::{CredentialRotation, WhoAmI};

use crate::AppState;
use crate::auth::{AgentAuth, AgentIdentity, CREDENTIAL_PREFIX, hash_secret, new_secret};
use crate::error::ApiError;

/// `GET /api/v1/agent/whoami`.
#[utoipa::path(
    get,
    path = "/api/v1/agent/whoami",
    tag = "agent",
    responses(
        (status = 200, description = "How the platform sees the credential", body = WhoAmI),
        (status = 401, description = "unauthorized: no valid bearer token", body = patchctl_proto::api::ApiErrorBody),
        (status = 403, description = "forbidden: the token's role may not do this (or no_access_rule)", body = patchctl_proto::api::ApiErrorBody),
        (status = 503, description = "unavailable: the database (or the vulnerability correlation) cannot answer right now; retry", body = patchctl_proto::api::ApiErrorBody)
    ),
    security(("agent_credential" = [])),
)]
pub async fn whoami(
    State(st): State<AppState>,
    agent: AgentIdentity,
) -> Result<Json<WhoAmI>, ApiError> {
    let h = st
        .store
        .host(agent.org_id, agent.host_id)
        .await?
        .ok_or_else(|| ApiError::unauthorized(crate::auth::UNKNOWN_MESSAGE))?;
    Ok(Json(WhoAmI {
        host_id: h.id,
        hostname: h.hostname,
        approval: agent.approval,
        credential_issued_at: h.credential_issued_at,
        server_time: Utc::now(),
    }))
}

/// `POST /api/v1/agent/credential`: a new credential (see the module documentation).
#[utoipa::path(
    post,
    path = "/api/v1/agent/credential",
    tag = "agent",
    responses(
        (status = 200, description = "A new credential", body = CredentialRotation),
        (status = 401, description = "unauthorized: no valid bearer token", body = patchctl_proto::api::ApiErrorBody),
        (status = 403, description = "forbidden: the token's role may not do this (or no_access_rule)", body = patchctl_proto::api::ApiErrorBody),
        (status = 503, description = "unavailable: the database (or the vulnerability correlation) cannot answer right now; retry. overloaded: the node holds agent_requests_in_flight database-bound agent requests already; retry after Retry-After seconds", body = patchctl_proto::api::ApiErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait before retrying (overloaded: 1 to 5, drawn at random)")))
    ),
    security(("agent_credential" = [])),
)]
pub async fn rotate(
    State(st): State<AppState>,
    agent: AgentAuth,
) -> Result<Json<CredentialRotation>, ApiError> {
    let credential = new_secret(CREDENTIAL_PREFIX);
    let now = Utc::now();
    if !st
        .store
        .stage_credential(agent.host_id, &hash_secret(credential.expose()), now)
        .await?
    {
        return Err(ApiError::unauthorized(crate::auth::UNKNOWN_MESSAGE));
    }
    tracing::info!(
        target: "audit",
        event = "agent_credential.issued",
        org_id = %agent.org_id,
        host_id = %agent.host_id,
        actor = %format!("host {}", agent.host_id),
        "new agent credential issued; the current one stays valid until the new one is used"
    );
    Ok(Json(CredentialRotation {
        credential,
        issued_at: chrono::DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now),
    }))
}
