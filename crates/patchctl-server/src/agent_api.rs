//! The agent API (`/api/v1/agent/...`): enroll, heartbeat, scan (and the v1 inventory),
//! results.
//!
//! A scan is stored only when it verifies: a full state must have the digest the agent
//! announced, a delta must apply to the stored state whose digest is its base and give
//! the announced digest. What does not verify is refused (a full state: 400) or
//! answered with `need_full` (a delta or "unchanged"), and the stored state stays as
//! it was.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use chrono::Utc;
use patchctl_proto::PROTOCOL_VERSION;
use patchctl_proto::agent::{
    EnrollRequest, EnrollResponse, HeartbeatRequest, HeartbeatResponse, InventoryAck,
    InventoryUpload, ResultsAck, ResultsUpload,
};
use patchctl_proto::scan::{PackageRow, ScanAck, ScanBody, ScanState, ScanStatus, ScanUpload};
use patchctl_storage::{HeartbeatWrite, NewHost, RecordOutcome};
use uuid::Uuid;

use crate::AppState;
use crate::auth::{AgentAuth, CREDENTIAL_PREFIX, hash_secret, new_secret};
use crate::error::{ApiError, ApiJson};

/// Most commands handed out per heartbeat.
const MAX_COMMANDS_PER_HEARTBEAT: u32 = 16;
/// Most results accepted per upload.
const MAX_RESULTS_PER_UPLOAD: usize = 1_000;

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

/// `POST /api/v1/agent/heartbeat`: records metrics, hands out queued commands.
pub async fn heartbeat(
    State(st): State<AppState>,
    agent: AgentAuth,
    ApiJson(req): ApiJson<HeartbeatRequest>,
) -> Result<Json<HeartbeatResponse>, ApiError> {
    let now = Utc::now();
    let pending = st
        .heartbeats
        .record(HeartbeatWrite {
            host_id: agent.host_id,
            agent_version: req.agent_version,
            metrics: req.metrics,
            at: now,
        })
        .await
        .map_err(|()| {
            ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "the platform's database is unavailable; try again shortly",
            )
        })?;
    let commands = if pending {
        st.store
            .lease_commands(
                agent.host_id,
                now,
                Duration::from_secs(st.settings.command_lease_secs),
                MAX_COMMANDS_PER_HEARTBEAT,
            )
            .await?
    } else {
        Vec::new()
    };
    for c in &commands {
        tracing::info!(host_id = %agent.host_id, command_id = %c.id, kind = %c.kind, "command delivered");
    }
    Ok(Json(HeartbeatResponse {
        server_time: now,
        commands,
    }))
}

/// `POST /api/v1/agent/inventory`: replaces the host's inventory.
pub async fn inventory(
    State(st): State<AppState>,
    agent: AgentAuth,
    ApiJson(upload): ApiJson<InventoryUpload>,
) -> Result<Json<InventoryAck>, ApiError> {
    let n = st.store.put_inventory(agent.host_id, &upload).await?;
    tracing::info!(host_id = %agent.host_id, packages = n, "inventory stored");
    st.vulns.host_changed_later(agent.org_id, agent.host_id);
    Ok(Json(InventoryAck { packages: n }))
}

/// `POST /api/v1/agent/scan`: stores a scan sent whole, as changes against the state
/// the platform holds, or as "unchanged" (see the module documentation).
pub async fn scan(
    State(st): State<AppState>,
    agent: AgentAuth,
    ApiJson(upload): ApiJson<ScanUpload>,
) -> Result<Json<ScanAck>, ApiError> {
    let host_id = agent.host_id;
    let ScanUpload {
        scanned_at,
        digest,
        body,
    } = upload;
    let state = match body {
        ScanBody::Unchanged => {
            if !st.store.touch_scan(host_id, scanned_at, &digest).await? {
                return Ok(need_full(
                    host_id,
                    format!("the platform holds no scan state with digest {digest}"),
                ));
            }
            let packages = st
                .store
                .host(agent.org_id, host_id)
                .await?
                .map_or(0, |h| h.package_count);
            tracing::debug!(%host_id, packages, "scan unchanged");
            return Ok(Json(ScanAck {
                status: ScanStatus::Unchanged,
                packages,
                detail: None,
            }));
        }
        ScanBody::Full { mut state } => {
            state.canonicalize();
            let got = state.digest();
            if got != digest {
                return Err(ApiError::bad_request(format!(
                    "digest mismatch: the state sent has digest {got}, the upload announces {digest}; compute the digest over the canonical state"
                )));
            }
            state
        }
        ScanBody::Delta {
            base,
            system,
            added,
            removed,
            updates,
        } => {
            let Some((stored_digest, stored)) = st.store.scan_state(host_id).await? else {
                return Ok(need_full(
                    host_id,
                    "the platform holds no scan state to apply a delta to".to_owned(),
                ));
            };
            if stored_digest != base {
                return Ok(need_full(
                    host_id,
                    format!("the delta's base {base} is not the stored state {stored_digest}"),
                ));
            }
            let next = match stored.apply(system.as_ref(), &added, &removed, updates.as_ref()) {
                Ok(next) => next,
                Err(why) => return Ok(need_full(host_id, why.to_string())),
            };
            let got = next.digest();
            if got != digest {
                return Ok(need_full(
                    host_id,
                    format!(
                        "the delta applied to {base} gives digest {got}, not the announced {digest}"
                    ),
                ));
            }
            next
        }
    };
    check_storable(&state).map_err(ApiError::bad_request)?;
    let packages = st
        .store
        .put_scan(host_id, scanned_at, &digest, &state)
        .await?;
    tracing::info!(%host_id, packages, digest = %digest, "scan stored");
    st.vulns.host_changed_later(agent.org_id, host_id);
    Ok(Json(ScanAck {
        status: ScanStatus::Stored,
        packages,
        detail: None,
    }))
}

/// The `need_full` answer, logged.
fn need_full(host_id: Uuid, detail: String) -> Json<ScanAck> {
    tracing::info!(%host_id, detail = %detail, "scan needs the full state");
    Json(ScanAck {
        status: ScanStatus::NeedFull,
        packages: 0,
        detail: Some(detail),
    })
}

/// Refuses a state that storage could not give back with the same digest: package rows
/// are stored as packages, so a row must be the one [`PackageRow::from_package`] makes
/// of its own package (the agent's rows always are).
fn check_storable(state: &ScanState) -> Result<(), String> {
    for row in &state.packages {
        if PackageRow::from_package(&row.to_package()) != *row {
            return Err(format!(
                "package row {} {} {} is not in its compact form: a source name or version equal to the package's own, and the state \"installed\", are sent as empty strings",
                row.0, row.1, row.2
            ));
        }
    }
    Ok(())
}

/// `POST /api/v1/agent/results`: records results once per command id.
pub async fn results(
    State(st): State<AppState>,
    agent: AgentAuth,
    ApiJson(upload): ApiJson<ResultsUpload>,
) -> Result<Json<ResultsAck>, ApiError> {
    if upload.results.len() > MAX_RESULTS_PER_UPLOAD {
        return Err(ApiError::bad_request(format!(
            "{} results in one upload; send at most {MAX_RESULTS_PER_UPLOAD}",
            upload.results.len()
        )));
    }
    let now = Utc::now();
    let mut stored = Vec::with_capacity(upload.results.len());
    for r in &upload.results {
        let outcome = st.store.record_result(agent.host_id, r, now).await?;
        match outcome {
            RecordOutcome::Stored => {
                tracing::info!(host_id = %agent.host_id, command_id = %r.command_id, status = ?r.status, "result stored")
            }
            RecordOutcome::Duplicate => {
                tracing::info!(host_id = %agent.host_id, command_id = %r.command_id, "duplicate result ignored")
            }
            RecordOutcome::UnknownCommand => {
                tracing::warn!(host_id = %agent.host_id, command_id = %r.command_id, "result for an unknown command ignored")
            }
        }
        stored.push(r.command_id);
    }
    Ok(Json(ResultsAck { stored }))
}
