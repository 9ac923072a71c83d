//! `POST /api/v1/agent/scan` and the v1 `POST /api/v1/agent/inventory`: a host's
//! packages and available updates.
//!
//! A scan is stored only when it verifies: a full state must have the digest the agent
//! announced, a delta must apply to the stored state whose digest is its base and give
//! the announced digest. What does not verify is refused (a full state: 400) or
//! answered with `need_full` (a delta or "unchanged"), and the stored state stays as
//! it was. Storing a scan or inventory announces it with the write
//! (`crate::changes`): every node's CVE engine, this one's too, re-probes the host in
//! the background.
//!
//! Caps (docs/limits.md): a state holds at most
//! [`patchctl_proto::limits::MAX_SCAN_PACKAGES`] packages (also after a delta), and at
//! most [`MAX_DELTA_CHAIN`] deltas may follow a host's last full scan: the next one is
//! answered `need_full`, as a delta whose base does not match is, and the agent sends
//! its full state. The chain is stored with the host's scan state (`put_scan` sets it
//! in the same write: 0 after a full scan, one more after a delta), so every node
//! counts the same chain and a restart forgets nothing.

use axum::Json;
use axum::extract::State;
use patchctl_proto::agent::{InventoryAck, InventoryUpload};
use patchctl_proto::limits::MAX_SCAN_PACKAGES;
use patchctl_proto::scan::{PackageRow, ScanAck, ScanBody, ScanState, ScanStatus, ScanUpload};
use patchctl_storage::{ScanKind, StoredScan};
use uuid::Uuid;

use crate::AppState;
use crate::auth::AgentAuth;
use crate::error::{ApiError, ApiJson};

/// Most scan deltas accepted after a host's last full scan (counted in the database,
/// by every node together).
pub const MAX_DELTA_CHAIN: u32 = 64;

/// `POST /api/v1/agent/inventory`: replaces the host's inventory.
#[utoipa::path(
    post,
    path = "/api/v1/agent/inventory",
    tag = "agent",
    request_body = InventoryUpload,
    responses(
        (status = 200, description = "Stored (protocol v1)", body = InventoryAck),
        (status = 400, description = "bad_request: the request is malformed (parameters or body); the message says which", body = patchctl_proto::api::ApiErrorBody),
        (status = 401, description = "unauthorized: no valid bearer token", body = patchctl_proto::api::ApiErrorBody),
        (status = 403, description = "forbidden: the token's role may not do this (or no_access_rule)", body = patchctl_proto::api::ApiErrorBody),
        (status = 413, description = "too_large: the body is over the route's limit", body = patchctl_proto::api::ApiErrorBody),
        (status = 415, description = "unsupported_media_type: the body is not JSON (or an unknown Content-Encoding)", body = patchctl_proto::api::ApiErrorBody),
        (status = 503, description = "unavailable: the database (or the vulnerability correlation) cannot answer right now; retry. overloaded: the node holds agent_requests_in_flight database-bound agent requests already; retry after Retry-After seconds", body = patchctl_proto::api::ApiErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait before retrying (overloaded: 1 to 5, drawn at random)")))
    ),
    security(("agent_credential" = [])),
)]
pub async fn inventory(
    State(st): State<AppState>,
    agent: AgentAuth,
    ApiJson(upload): ApiJson<InventoryUpload>,
) -> Result<Json<InventoryAck>, ApiError> {
    let n = st.store.put_inventory(agent.host_id, &upload).await?;
    st.metrics.traffic.inventory();
    tracing::info!(host_id = %agent.host_id, packages = n, "inventory stored");
    Ok(Json(InventoryAck { packages: n }))
}

/// `POST /api/v1/agent/scan`: stores a scan sent whole, as changes against the state
/// the platform holds, or as "unchanged" (see the module documentation).
#[utoipa::path(
    post,
    path = "/api/v1/agent/scan",
    tag = "agent",
    request_body = ScanUpload,
    responses(
        (status = 200, description = "Stored, unchanged, or a full scan is needed", body = ScanAck),
        (status = 400, description = "bad_request: the request is malformed (parameters or body); the message says which", body = patchctl_proto::api::ApiErrorBody),
        (status = 401, description = "unauthorized: no valid bearer token", body = patchctl_proto::api::ApiErrorBody),
        (status = 403, description = "forbidden: the token's role may not do this (or no_access_rule)", body = patchctl_proto::api::ApiErrorBody),
        (status = 413, description = "too_large: the body is over the route's limit", body = patchctl_proto::api::ApiErrorBody),
        (status = 415, description = "unsupported_media_type: the body is not JSON (or an unknown Content-Encoding)", body = patchctl_proto::api::ApiErrorBody),
        (status = 503, description = "unavailable: the database (or the vulnerability correlation) cannot answer right now; retry. overloaded: the node holds agent_requests_in_flight database-bound agent requests already; retry after Retry-After seconds", body = patchctl_proto::api::ApiErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait before retrying (overloaded: 1 to 5, drawn at random)")))
    ),
    security(("agent_credential" = [])),
)]
pub async fn scan(
    State(st): State<AppState>,
    agent: AgentAuth,
    ApiJson(upload): ApiJson<ScanUpload>,
) -> Result<Json<ScanAck>, ApiError> {
    let host_id = agent.host_id;
    st.metrics.traffic.scan(&upload.body);
    let ScanUpload {
        scanned_at,
        digest,
        body,
        reboot,
    } = upload;
    let kind = match body {
        ScanBody::Delta { .. } => ScanKind::Delta,
        _ => ScanKind::Full,
    };
    if reboot.is_some() {
        let report = crate::reboots::report(reboot, None);
        st.store
            .record_reboot_state(host_id, &report, chrono::Utc::now())
            .await?;
    }
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
            let Some(StoredScan {
                digest: stored_digest,
                state: stored,
                delta_chain: chain,
            }) = st.store.scan_state(host_id).await?
            else {
                return Ok(need_full(
                    host_id,
                    "the platform holds no scan state to apply a delta to".to_owned(),
                ));
            };
            if chain >= MAX_DELTA_CHAIN {
                return Ok(need_full(
                    host_id,
                    format!(
                        "{chain} deltas followed the last full scan, the most this platform applies ({MAX_DELTA_CHAIN}); send the full state"
                    ),
                ));
            }
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
    if state.packages.len() > MAX_SCAN_PACKAGES {
        return Err(ApiError::bad_request(format!(
            "the scan state holds {} packages; the limit is {MAX_SCAN_PACKAGES}",
            state.packages.len()
        )));
    }
    check_storable(&state).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let packages = st
        .store
        .put_scan(host_id, scanned_at, &digest, &state, kind)
        .await?;
    tracing::info!(%host_id, packages, digest = %digest, "scan stored");
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

/// A package row that is not in its compact form, so storage could not give the state
/// back with the same digest.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "package row {name} {version} {arch} is not in its compact form: a source name or version equal to the package's own, and the state \"installed\", are sent as empty strings"
)]
pub struct NotCompact {
    /// The row's package name.
    pub name: String,
    /// The row's version.
    pub version: String,
    /// The row's architecture.
    pub arch: String,
}

/// Refuses a state that storage could not give back with the same digest: package rows
/// are stored as packages, so a row must be the one [`PackageRow::from_package`] makes
/// of its own package (the agent's rows always are).
fn check_storable(state: &ScanState) -> Result<(), NotCompact> {
    for row in &state.packages {
        if PackageRow::from_package(&row.to_package()) != *row {
            return Err(NotCompact {
                name: row.0.clone(),
                version: row.1.clone(),
                arch: row.2.clone(),
            });
        }
    }
    Ok(())
}
