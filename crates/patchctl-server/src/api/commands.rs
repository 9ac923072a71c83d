//! The command queue of the operator's organisation: queue (validated against the
//! whitelist), list, show and cancel.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use chrono::Utc;
use patchctl_proto::api::{CommandRecord, QueueCommandRequest};
use patchctl_proto::command::Command;
use patchctl_storage::{CancelOutcome, NewCommand};
use serde::Deserialize;
use uuid::Uuid;

use super::resolve_host;
use crate::AppState;
use crate::access::OperatorAuth;
use crate::error::{ApiError, ApiJson};

/// Default life of an undelivered command.
const DEFAULT_EXPIRY_SECS: u64 = 86_400;
/// Longest life of an undelivered command.
const MAX_EXPIRY_SECS: u64 = 30 * 86_400;

/// `POST /api/v1/commands`: validates against the whitelist and queues.
pub async fn queue_command(
    State(st): State<AppState>,
    op: OperatorAuth,
    ApiJson(req): ApiJson<QueueCommandRequest>,
) -> Result<(StatusCode, Json<CommandRecord>), ApiError> {
    let rec = queue(&st, op.org_id, req).await?;
    Ok((StatusCode::CREATED, Json(rec)))
}

/// Queues a command for a host of `org_id` after the checks every way in takes (the
/// API and the dashboard): the host collects commands (not revoked, not pending), the
/// command passes the whitelist, the expiry is in range.
pub(crate) async fn queue(
    st: &AppState,
    org_id: Uuid,
    req: QueueCommandRequest,
) -> Result<CommandRecord, ApiError> {
    let host = resolve_host(st, org_id, &req.host).await?;
    if host.revoked {
        return Err(ApiError::conflict(format!(
            "host {} is revoked; it will never collect commands",
            host.id
        )));
    }
    if host.approval == patchctl_proto::trust::Approval::Pending {
        return Err(ApiError::conflict(format!(
            "host {} ({}) is waiting for approval and collects no commands; approve it first (`patchctl hosts approve {}`)",
            host.id, host.hostname, host.id
        )));
    }
    let params = security_updates_as_pairs(st, org_id, host.id, &req.kind, req.params).await?;
    let cmd =
        Command::parse(&req.kind, &params).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let secs = req.expires_in_secs.unwrap_or(DEFAULT_EXPIRY_SECS);
    if secs == 0 || secs > MAX_EXPIRY_SECS {
        return Err(ApiError::bad_request(format!(
            "expires_in_secs is {secs}; use 1 to {MAX_EXPIRY_SECS}"
        )));
    }
    let now = Utc::now();
    let rec = st
        .store
        .queue_command(NewCommand {
            org_id,
            host_id: host.id,
            kind: cmd.kind().to_owned(),
            params: cmd.params(),
            now,
            expires_at: now + chrono::Duration::seconds(secs as i64),
        })
        .await?;
    tracing::info!(command_id = %rec.id, host_id = %host.id, kind = %rec.kind, "command queued");
    Ok(rec)
}

/// `install_updates` with `{"security_updates": true}` (or `"true"`, as the CLI's
/// `--param security_updates=true` sends it): every security update of the host's last
/// scan, resolved here into exact `name` + `version` pairs, which is all the agent ever
/// receives. Any other parameters pass through unchanged.
async fn security_updates_as_pairs(
    st: &AppState,
    org_id: Uuid,
    host_id: Uuid,
    kind: &str,
    params: serde_json::Value,
) -> Result<serde_json::Value, ApiError> {
    let asked = kind == "install_updates"
        && params.as_object().is_some_and(|o| {
            o.len() == 1
                && o.get("security_updates").is_some_and(|v| {
                    v == &serde_json::Value::Bool(true) || v.as_str() == Some("true")
                })
        });
    if !asked {
        return Ok(params);
    }
    let updates = st.store.host_updates(org_id, host_id).await?;
    let Some(mut updates) = updates.filter(|u| u.scanned_at.is_some()) else {
        return Err(ApiError::conflict(format!(
            "host {host_id} has not reported available updates yet; wait for its next scan or queue check_updates"
        )));
    };
    st.vulns.annotate_updates(host_id, &mut updates).await;
    let packages: Vec<serde_json::Value> = updates
        .updates
        .iter()
        .filter(|u| u.security)
        .map(|u| serde_json::json!({"name": u.name, "version": u.candidate_version}))
        .collect();
    if packages.is_empty() {
        return Err(ApiError::conflict(format!(
            "host {host_id} has no security updates in its last scan; nothing to install"
        )));
    }
    Ok(serde_json::json!({ "packages": packages }))
}

/// Query of `GET /api/v1/commands`.
#[derive(Debug, Deserialize)]
pub struct ListCommandsQuery {
    /// Host id or name.
    pub host: Option<String>,
    /// At most this many (default 50, at most 1000).
    pub limit: Option<u32>,
}

/// `GET /api/v1/commands`.
pub async fn list_commands(
    State(st): State<AppState>,
    op: OperatorAuth,
    Query(q): Query<ListCommandsQuery>,
) -> Result<Json<Vec<CommandRecord>>, ApiError> {
    let host_id = match &q.host {
        Some(h) => Some(resolve_host(&st, op.org_id, h).await?.id),
        None => None,
    };
    let limit = q.limit.unwrap_or(50).clamp(1, 1000);
    Ok(Json(
        st.store.list_commands(op.org_id, host_id, limit).await?,
    ))
}

fn parse_command_id(id: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id)
        .map_err(|_| ApiError::bad_request(format!("{id:?} is not a command id (a UUID)")))
}

/// `GET /api/v1/commands/{id}`.
pub async fn show_command(
    State(st): State<AppState>,
    op: OperatorAuth,
    Path(id): Path<String>,
) -> Result<Json<CommandRecord>, ApiError> {
    let id = parse_command_id(&id)?;
    st.store
        .command(op.org_id, id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no command {id}")))
}

/// `POST /api/v1/commands/{id}/cancel`.
pub async fn cancel_command(
    State(st): State<AppState>,
    op: OperatorAuth,
    Path(id): Path<String>,
) -> Result<Json<CommandRecord>, ApiError> {
    let id = parse_command_id(&id)?;
    cancel(&st, op.org_id, id).await.map(Json)
}

/// Cancels a queued command of `org_id` and answers it as it now is: what the API's
/// cancel and the dashboard's cancel form both do.
pub async fn cancel(st: &AppState, org_id: Uuid, id: Uuid) -> Result<CommandRecord, ApiError> {
    match st.store.cancel_command(org_id, id, Utc::now()).await? {
        CancelOutcome::Cancelled => {
            tracing::info!(command_id = %id, "command cancelled by operator");
            st.store
                .command(org_id, id)
                .await?
                .ok_or_else(|| ApiError::not_found(format!("no command {id}")))
        }
        CancelOutcome::NotFound => Err(ApiError::not_found(format!("no command {id}"))),
        CancelOutcome::NotCancellable(state) => Err(ApiError::conflict(format!(
            "command {id} is {}; only queued commands can be cancelled",
            state.as_str()
        ))),
    }
}
