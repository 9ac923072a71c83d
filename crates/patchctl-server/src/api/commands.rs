//! The command queue of the operator's organisation: queue (validated against the
//! whitelist), list, show and cancel.

use axum::extract::{OriginalUri, Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use patchctl_proto::api::{CommandRecord, QueueCommandRequest};
use patchctl_proto::command::Command;
use patchctl_storage::CancelOutcome;
use serde::Deserialize;
use uuid::Uuid;

use super::paging::{self, PageQuery};
use super::resolve_host;
use crate::AppState;
use crate::access::OperatorAuth;
use crate::audit::AuditDetails;
use crate::error::{ApiError, ApiJson};

/// Default life of an undelivered command.
const DEFAULT_EXPIRY_SECS: u64 = 86_400;
/// Longest life of an undelivered command.
const MAX_EXPIRY_SECS: u64 = 30 * 86_400;

/// `POST /api/v1/commands`: validates against the whitelist and queues.
#[utoipa::path(
    post,
    path = "/api/v1/commands",
    tag = "commands",
    request_body = QueueCommandRequest,
    responses(
        (status = 201, description = "The queued command", body = CommandRecord),
        (status = 400, description = "bad_request: the request is malformed (parameters or body); the message says which", body = patchctl_proto::api::ApiErrorBody),
        (status = 401, description = "unauthorized: no valid bearer token", body = patchctl_proto::api::ApiErrorBody),
        (status = 403, description = "forbidden: the token's role may not do this (or no_access_rule)", body = patchctl_proto::api::ApiErrorBody),
        (status = 404, description = "not_found", body = patchctl_proto::api::ApiErrorBody),
        (status = 409, description = "conflict", body = patchctl_proto::api::ApiErrorBody),
        (status = 413, description = "too_large: the body is over the route's limit", body = patchctl_proto::api::ApiErrorBody),
        (status = 415, description = "unsupported_media_type: the body is not JSON (or an unknown Content-Encoding)", body = patchctl_proto::api::ApiErrorBody),
        (status = 503, description = "unavailable: the database (or the vulnerability correlation) cannot answer right now; retry", body = patchctl_proto::api::ApiErrorBody)
    ),
)]
pub async fn queue_command(
    State(st): State<AppState>,
    op: OperatorAuth,
    ApiJson(req): ApiJson<QueueCommandRequest>,
) -> Result<(StatusCode, Extension<AuditDetails>, Json<CommandRecord>), ApiError> {
    let (rec, details) = queue(&st, op.org_id, req).await?;
    Ok((StatusCode::CREATED, Extension(details), Json(rec)))
}

/// Queues a command for a host of `org_id` after the checks every way in takes (the
/// API and the dashboard): the host collects commands (not revoked, not pending), the
/// command passes the whitelist, the expiry is in range. Also what the audit entry
/// says it did.
pub(crate) async fn queue(
    st: &AppState,
    org_id: Uuid,
    req: QueueCommandRequest,
) -> Result<(CommandRecord, AuditDetails), ApiError> {
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
    let signed = st
        .signer
        .command(
            st.store.as_ref(),
            org_id,
            host.id,
            &cmd,
            now,
            now + chrono::Duration::seconds(secs as i64),
        )
        .await?;
    // Queueing announces the command to every node (the host's long-poll wakes).
    let rec = st.store.queue_command(signed).await?;
    tracing::info!(command_id = %rec.id, host_id = %host.id, kind = %rec.kind, "command queued");
    let details = AuditDetails(serde_json::json!({
        "command_id": rec.id,
        "host_id": host.id,
        "hostname": host.hostname,
        "operation": rec.kind,
        "packages": packages_of(&cmd.params()),
        "expires_at": rec.expires_at,
    }));
    Ok((rec, details))
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

/// The packages a command's parameters name (`packages: [{name, version}]` as
/// `name=version`, or get_package_info's `name`), for the audit trail; empty when it
/// names none.
fn packages_of(params: &serde_json::Value) -> Vec<String> {
    if let Some(name) = params["name"].as_str() {
        return vec![name.to_owned()];
    }
    params["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| match p {
            serde_json::Value::String(s) => Some(s.clone()),
            p => {
                let name = p["name"].as_str()?;
                Some(match p["version"].as_str() {
                    Some(v) => format!("{name}={v}"),
                    None => name.to_owned(),
                })
            }
        })
        .collect()
}

/// Query of `GET /api/v1/commands`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListCommandsQuery {
    /// Only the commands of this host (id or host name).
    pub host: Option<String>,
    /// Commands per page (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// Where to go on: `X-Next-Cursor` of the previous page.
    pub cursor: Option<String>,
}

/// `GET /api/v1/commands`: newest first, one page at a time (keyset on creation time
/// and id).
#[utoipa::path(
    get,
    path = "/api/v1/commands",
    tag = "commands",
    params(ListCommandsQuery),
    responses(
        (status = 200, description = "Commands, newest first, one page", body = Vec<CommandRecord>, headers(("X-Next-Cursor" = String, description = "Present when there is more: the cursor of the next page"), ("Link" = String, description = "Present when there is more: `<PATH?cursor=...&limit=N>; rel=\"next\"`"))),
        (status = 400, description = "bad_request: the request is malformed (parameters or body); the message says which", body = patchctl_proto::api::ApiErrorBody),
        (status = 401, description = "unauthorized: no valid bearer token", body = patchctl_proto::api::ApiErrorBody),
        (status = 403, description = "forbidden: the token's role may not do this (or no_access_rule)", body = patchctl_proto::api::ApiErrorBody),
        (status = 404, description = "not_found", body = patchctl_proto::api::ApiErrorBody),
        (status = 409, description = "conflict", body = patchctl_proto::api::ApiErrorBody),
        (status = 503, description = "unavailable: the database (or the vulnerability correlation) cannot answer right now; retry", body = patchctl_proto::api::ApiErrorBody)
    ),
)]
pub async fn list_commands(
    State(st): State<AppState>,
    op: OperatorAuth,
    OriginalUri(uri): OriginalUri,
    Query(q): Query<ListCommandsQuery>,
) -> Result<Response, ApiError> {
    let page = PageQuery {
        limit: q.limit,
        cursor: q.cursor,
    };
    let limit = page.limit()?;
    let before: Option<(DateTime<Utc>, Uuid)> = page.position()?;
    let host_id = match &q.host {
        Some(h) => Some(resolve_host(&st, op.org_id, h).await?.id),
        None => None,
    };
    let rows = st
        .store
        .list_commands_page(op.org_id, host_id, before, limit + 1)
        .await?;
    let (rows, next) = paging::cut(rows, limit, |c| (c.created_at, c.id));
    Ok(paging::paged(&uri, rows, next))
}

fn parse_command_id(id: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id)
        .map_err(|_| ApiError::bad_request(format!("{id:?} is not a command id (a UUID)")))
}

/// `GET /api/v1/commands/{id}`.
#[utoipa::path(
    get,
    path = "/api/v1/commands/{id}",
    tag = "commands",
    params(("id" = uuid::Uuid, Path, description = "Command id")),
    responses(
        (status = 200, description = "The command with its events and result", body = CommandRecord),
        (status = 400, description = "bad_request: the request is malformed (parameters or body); the message says which", body = patchctl_proto::api::ApiErrorBody),
        (status = 401, description = "unauthorized: no valid bearer token", body = patchctl_proto::api::ApiErrorBody),
        (status = 403, description = "forbidden: the token's role may not do this (or no_access_rule)", body = patchctl_proto::api::ApiErrorBody),
        (status = 404, description = "not_found", body = patchctl_proto::api::ApiErrorBody),
        (status = 503, description = "unavailable: the database (or the vulnerability correlation) cannot answer right now; retry", body = patchctl_proto::api::ApiErrorBody)
    ),
)]
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
#[utoipa::path(
    post,
    path = "/api/v1/commands/{id}/cancel",
    tag = "commands",
    params(("id" = uuid::Uuid, Path, description = "Command id")),
    responses(
        (status = 200, description = "The command, cancelled", body = CommandRecord),
        (status = 400, description = "bad_request: the request is malformed (parameters or body); the message says which", body = patchctl_proto::api::ApiErrorBody),
        (status = 401, description = "unauthorized: no valid bearer token", body = patchctl_proto::api::ApiErrorBody),
        (status = 403, description = "forbidden: the token's role may not do this (or no_access_rule)", body = patchctl_proto::api::ApiErrorBody),
        (status = 404, description = "not_found", body = patchctl_proto::api::ApiErrorBody),
        (status = 409, description = "conflict", body = patchctl_proto::api::ApiErrorBody),
        (status = 503, description = "unavailable: the database (or the vulnerability correlation) cannot answer right now; retry", body = patchctl_proto::api::ApiErrorBody)
    ),
)]
pub async fn cancel_command(
    State(st): State<AppState>,
    op: OperatorAuth,
    Path(id): Path<String>,
) -> Result<(Extension<AuditDetails>, Json<CommandRecord>), ApiError> {
    let id = parse_command_id(&id)?;
    let (rec, details) = cancel(&st, op.org_id, id).await?;
    Ok((Extension(details), Json(rec)))
}

/// Cancels a queued command of `org_id` and answers it as it now is, with what its
/// audit entry says: what the API's cancel and the dashboard's cancel form both do.
pub(crate) async fn cancel(
    st: &AppState,
    org_id: Uuid,
    id: Uuid,
) -> Result<(CommandRecord, AuditDetails), ApiError> {
    match st.store.cancel_command(org_id, id, Utc::now()).await? {
        CancelOutcome::Cancelled => {
            tracing::info!(command_id = %id, "command cancelled by operator");
            let rec = st
                .store
                .command(org_id, id)
                .await?
                .ok_or_else(|| ApiError::not_found(format!("no command {id}")))?;
            let details = AuditDetails(serde_json::json!({
                "command_id": rec.id,
                "host_id": rec.host_id,
                "operation": rec.kind,
                "packages": packages_of(&rec.params),
            }));
            Ok((rec, details))
        }
        CancelOutcome::NotFound => Err(ApiError::not_found(format!("no command {id}"))),
        CancelOutcome::NotCancellable(state) => Err(ApiError::conflict(format!(
            "command {id} is {}; only queued commands can be cancelled",
            state.as_str()
        ))),
    }
}
