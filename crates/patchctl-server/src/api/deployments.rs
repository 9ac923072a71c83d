//! Deployments: thin handlers over [`crate::policy::deployments`]. Reading needs
//! `read`; creating, pausing, resuming and cancelling need `operate` (the role that
//! queues installs and makes manifests).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use chrono::Utc;
use patchctl_proto::policy::deployments::{
    DeploymentAction, DeploymentEvent, DeploymentHostView, DeploymentRequest, DeploymentView,
};
use serde_json::json;

use crate::AppState;
use crate::access::{OperatorAuth, Principal};
use crate::audit::AuditDetails;
use crate::error::{ApiError, ApiJson};
use crate::policy::deployments::{self, Action};

/// `GET /api/v1/deployments`: newest first.
#[utoipa::path(
    get,
    path = "/api/v1/deployments",
    tag = "deployments",
    responses(
        (status = 200, description = "The deployments, newest first", body = Vec<DeploymentView>),
        (status = 401, description = "unauthorized: no valid bearer token", body = patchctl_proto::api::ApiErrorBody),
        (status = 403, description = "forbidden: the token's role may not do this (or no_access_rule)", body = patchctl_proto::api::ApiErrorBody),
        (status = 503, description = "unavailable: the database cannot answer right now; retry", body = patchctl_proto::api::ApiErrorBody),
    ),
)]
pub async fn list_deployments(
    State(st): State<AppState>,
    auth: OperatorAuth,
) -> Result<Json<Vec<DeploymentView>>, ApiError> {
    Ok(Json(deployments::list(&st, auth.org_id).await?))
}

/// `POST /api/v1/deployments`: deploy a manifest to groups in rings.
#[utoipa::path(
    post,
    path = "/api/v1/deployments",
    tag = "deployments",
    request_body = DeploymentRequest,
    responses(
        (status = 201, description = "The deployment, running, its first ring active", body = DeploymentView),
        (status = 400, description = "bad_request: a malformed body, name or rings, or the groups hold no hosts; the message says which", body = patchctl_proto::api::ApiErrorBody),
        (status = 401, description = "unauthorized: no valid bearer token", body = patchctl_proto::api::ApiErrorBody),
        (status = 403, description = "forbidden: the token's role may not do this (or no_access_rule)", body = patchctl_proto::api::ApiErrorBody),
        (status = 404, description = "not_found: no such manifest or group", body = patchctl_proto::api::ApiErrorBody),
        (status = 409, description = "conflict: the name is taken", body = patchctl_proto::api::ApiErrorBody),
        (status = 413, description = "too_large: the body is over the route's limit", body = patchctl_proto::api::ApiErrorBody),
        (status = 415, description = "unsupported_media_type: the body is not JSON", body = patchctl_proto::api::ApiErrorBody),
        (status = 503, description = "unavailable: the database cannot answer right now; retry", body = patchctl_proto::api::ApiErrorBody),
    ),
)]
pub async fn create_deployment(
    State(st): State<AppState>,
    by: Principal,
    ApiJson(req): ApiJson<DeploymentRequest>,
) -> Result<(StatusCode, Extension<AuditDetails>, Json<DeploymentView>), ApiError> {
    let d = deployments::create(&st, &by, req, Utc::now()).await?;
    let details = Extension(AuditDetails(json!({
        "deployment_id": d.id, "name": d.name, "manifest": d.manifest,
        "groups": d.groups, "hosts": d.hosts, "reboot": d.reboot,
        "rings": d.rings.iter().map(|r| json!({
            "name": r.name, "percent": r.percent, "hosts": r.hosts,
            "max_failed_percent": r.max_failed_percent, "soak_minutes": r.soak_minutes,
        })).collect::<Vec<_>>(),
    })));
    Ok((StatusCode::CREATED, details, Json(d)))
}

/// `GET /api/v1/deployments/{deployment}`.
#[utoipa::path(
    get,
    path = "/api/v1/deployments/{deployment}",
    tag = "deployments",
    params(("deployment" = String, Path, description = "Deployment id or name")),
    responses(
        (status = 200, description = "The deployment with its rings and their host counts by stage", body = DeploymentView),
        (status = 401, description = "unauthorized: no valid bearer token", body = patchctl_proto::api::ApiErrorBody),
        (status = 403, description = "forbidden: the token's role may not do this (or no_access_rule)", body = patchctl_proto::api::ApiErrorBody),
        (status = 404, description = "not_found: no such deployment", body = patchctl_proto::api::ApiErrorBody),
        (status = 503, description = "unavailable: the database cannot answer right now; retry", body = patchctl_proto::api::ApiErrorBody),
    ),
)]
pub async fn show_deployment(
    State(st): State<AppState>,
    auth: OperatorAuth,
    Path(deployment): Path<String>,
) -> Result<Json<DeploymentView>, ApiError> {
    Ok(Json(
        deployments::show(&st, auth.org_id, &deployment).await?,
    ))
}

/// `GET /api/v1/deployments/{deployment}/hosts`: by ring, then hostname.
#[utoipa::path(
    get,
    path = "/api/v1/deployments/{deployment}/hosts",
    tag = "deployments",
    params(("deployment" = String, Path, description = "Deployment id or name")),
    responses(
        (status = 200, description = "Its hosts with their ring, stage and detail", body = Vec<DeploymentHostView>),
        (status = 401, description = "unauthorized: no valid bearer token", body = patchctl_proto::api::ApiErrorBody),
        (status = 403, description = "forbidden: the token's role may not do this (or no_access_rule)", body = patchctl_proto::api::ApiErrorBody),
        (status = 404, description = "not_found: no such deployment", body = patchctl_proto::api::ApiErrorBody),
        (status = 503, description = "unavailable: the database cannot answer right now; retry", body = patchctl_proto::api::ApiErrorBody),
    ),
)]
pub async fn deployment_hosts(
    State(st): State<AppState>,
    auth: OperatorAuth,
    Path(deployment): Path<String>,
) -> Result<Json<Vec<DeploymentHostView>>, ApiError> {
    Ok(Json(
        deployments::hosts(&st, auth.org_id, &deployment).await?,
    ))
}

/// `GET /api/v1/deployments/{deployment}/events`: oldest first.
#[utoipa::path(
    get,
    path = "/api/v1/deployments/{deployment}/events",
    tag = "deployments",
    params(("deployment" = String, Path, description = "Deployment id or name")),
    responses(
        (status = 200, description = "Every transition of the deployment, its rings and hosts, oldest first", body = Vec<DeploymentEvent>),
        (status = 401, description = "unauthorized: no valid bearer token", body = patchctl_proto::api::ApiErrorBody),
        (status = 403, description = "forbidden: the token's role may not do this (or no_access_rule)", body = patchctl_proto::api::ApiErrorBody),
        (status = 404, description = "not_found: no such deployment", body = patchctl_proto::api::ApiErrorBody),
        (status = 503, description = "unavailable: the database cannot answer right now; retry", body = patchctl_proto::api::ApiErrorBody),
    ),
)]
pub async fn deployment_events(
    State(st): State<AppState>,
    auth: OperatorAuth,
    Path(deployment): Path<String>,
) -> Result<Json<Vec<DeploymentEvent>>, ApiError> {
    Ok(Json(
        deployments::events(&st, auth.org_id, &deployment).await?,
    ))
}

/// The optional body of an action: nothing, `null` or a [`DeploymentAction`].
fn action_body(body: &[u8]) -> Result<DeploymentAction, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(DeploymentAction::default());
    }
    let v: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!(
            "the body is not JSON ({e}); send {{\"reason\": \"...\"}} or nothing"
        ))
    })?;
    if v.is_null() {
        return Ok(DeploymentAction::default());
    }
    serde_json::from_value(v).map_err(|e| {
        ApiError::bad_request(format!(
            "the body is not an action ({e}); send {{\"reason\": \"...\"}} or nothing"
        ))
    })
}

async fn act(
    st: &AppState,
    by: &Principal,
    deployment: &str,
    action: Action,
    body: &[u8],
) -> Result<(Extension<AuditDetails>, Json<DeploymentView>), ApiError> {
    let req = action_body(body)?;
    let reason = req.reason.clone();
    let d = deployments::act(st, by, deployment, action, req.reason, Utc::now()).await?;
    let details = Extension(AuditDetails(json!({
        "deployment_id": d.id, "name": d.name, "action": action.as_str(),
        "state": d.state, "reason": reason,
    })));
    Ok((details, Json(d)))
}

/// `POST /api/v1/deployments/{deployment}/pause`: no new install starts.
#[utoipa::path(
    post,
    path = "/api/v1/deployments/{deployment}/pause",
    tag = "deployments",
    params(("deployment" = String, Path, description = "Deployment id or name")),
    request_body(content = Option<DeploymentAction>, description = "Optional; why"),
    responses(
        (status = 200, description = "The paused deployment", body = DeploymentView),
        (status = 400, description = "bad_request: the body is malformed", body = patchctl_proto::api::ApiErrorBody),
        (status = 401, description = "unauthorized: no valid bearer token", body = patchctl_proto::api::ApiErrorBody),
        (status = 403, description = "forbidden: the token's role may not do this (or no_access_rule)", body = patchctl_proto::api::ApiErrorBody),
        (status = 404, description = "not_found: no such deployment", body = patchctl_proto::api::ApiErrorBody),
        (status = 409, description = "conflict: the deployment is not running", body = patchctl_proto::api::ApiErrorBody),
        (status = 413, description = "too_large: the body is over the route's limit", body = patchctl_proto::api::ApiErrorBody),
        (status = 503, description = "unavailable: the database cannot answer right now; retry", body = patchctl_proto::api::ApiErrorBody),
    ),
)]
pub async fn pause_deployment(
    State(st): State<AppState>,
    by: Principal,
    Path(deployment): Path<String>,
    body: Bytes,
) -> Result<(Extension<AuditDetails>, Json<DeploymentView>), ApiError> {
    act(&st, &by, &deployment, Action::Pause, &body).await
}

/// `POST /api/v1/deployments/{deployment}/resume`.
#[utoipa::path(
    post,
    path = "/api/v1/deployments/{deployment}/resume",
    tag = "deployments",
    params(("deployment" = String, Path, description = "Deployment id or name")),
    request_body(content = Option<DeploymentAction>, description = "Optional; why"),
    responses(
        (status = 200, description = "The running deployment", body = DeploymentView),
        (status = 400, description = "bad_request: the body is malformed", body = patchctl_proto::api::ApiErrorBody),
        (status = 401, description = "unauthorized: no valid bearer token", body = patchctl_proto::api::ApiErrorBody),
        (status = 403, description = "forbidden: the token's role may not do this (or no_access_rule)", body = patchctl_proto::api::ApiErrorBody),
        (status = 404, description = "not_found: no such deployment", body = patchctl_proto::api::ApiErrorBody),
        (status = 409, description = "conflict: the deployment is not paused", body = patchctl_proto::api::ApiErrorBody),
        (status = 413, description = "too_large: the body is over the route's limit", body = patchctl_proto::api::ApiErrorBody),
        (status = 503, description = "unavailable: the database cannot answer right now; retry", body = patchctl_proto::api::ApiErrorBody),
    ),
)]
pub async fn resume_deployment(
    State(st): State<AppState>,
    by: Principal,
    Path(deployment): Path<String>,
    body: Bytes,
) -> Result<(Extension<AuditDetails>, Json<DeploymentView>), ApiError> {
    act(&st, &by, &deployment, Action::Resume, &body).await
}

/// `POST /api/v1/deployments/{deployment}/cancel`: pending hosts skipped, undelivered
/// commands cancelled.
#[utoipa::path(
    post,
    path = "/api/v1/deployments/{deployment}/cancel",
    tag = "deployments",
    params(("deployment" = String, Path, description = "Deployment id or name")),
    request_body(content = Option<DeploymentAction>, description = "Optional; why"),
    responses(
        (status = 200, description = "The cancelled deployment", body = DeploymentView),
        (status = 400, description = "bad_request: the body is malformed", body = patchctl_proto::api::ApiErrorBody),
        (status = 401, description = "unauthorized: no valid bearer token", body = patchctl_proto::api::ApiErrorBody),
        (status = 403, description = "forbidden: the token's role may not do this (or no_access_rule)", body = patchctl_proto::api::ApiErrorBody),
        (status = 404, description = "not_found: no such deployment", body = patchctl_proto::api::ApiErrorBody),
        (status = 409, description = "conflict: the deployment is halted, completed or cancelled already", body = patchctl_proto::api::ApiErrorBody),
        (status = 413, description = "too_large: the body is over the route's limit", body = patchctl_proto::api::ApiErrorBody),
        (status = 503, description = "unavailable: the database cannot answer right now; retry", body = patchctl_proto::api::ApiErrorBody),
    ),
)]
pub async fn cancel_deployment(
    State(st): State<AppState>,
    by: Principal,
    Path(deployment): Path<String>,
    body: Bytes,
) -> Result<(Extension<AuditDetails>, Json<DeploymentView>), ApiError> {
    act(&st, &by, &deployment, Action::Cancel, &body).await
}
