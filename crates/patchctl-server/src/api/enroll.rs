//! `POST /api/v1/agent/enroll`: an enrollment key buys a host record and an agent
//! credential (shown once; only its hash is stored).

use axum::Json;
use axum::extract::State;
use chrono::Utc;
use patchctl_proto::PROTOCOL_VERSION;
use patchctl_proto::agent::{EnrollRequest, EnrollResponse};
use patchctl_storage::NewHost;

use crate::AppState;
use crate::auth::{CREDENTIAL_PREFIX, hash_secret, new_secret};
use crate::error::{ApiError, ApiJson};

/// `POST /api/v1/agent/enroll`.
pub async fn enroll(
    State(st): State<AppState>,
    ApiJson(req): ApiJson<EnrollRequest>,
) -> Result<Json<EnrollResponse>, ApiError> {
    if req.protocol_version != PROTOCOL_VERSION {
        return Err(ApiError::bad_request(format!(
            "agent protocol version {} is not supported by this platform (version {PROTOCOL_VERSION}); upgrade the agent or the platform",
            req.protocol_version
        )));
    }
    let key = st
        .store
        .enrollment_key_by_hash(&hash_secret(req.license_key.expose()))
        .await?;
    let key = match key {
        Some(k) if !k.revoked => k,
        _ => {
            tracing::warn!(hostname = %req.system.hostname, "enrollment refused: unknown or revoked key");
            return Err(ApiError::unauthorized("unknown or revoked enrollment key"));
        }
    };
    let credential = new_secret(CREDENTIAL_PREFIX);
    let host = st
        .store
        .create_host(NewHost {
            org_id: key.org_id,
            enrollment_key_id: key.id,
            credential_hash: hash_secret(credential.expose()),
            agent_version: req.agent_version,
            system: req.system,
            now: Utc::now(),
        })
        .await?;
    tracing::info!(host_id = %host.id, org_id = %host.org_id, hostname = %host.hostname, "host enrolled");
    Ok(Json(EnrollResponse {
        host_id: host.id,
        credential,
    }))
}
