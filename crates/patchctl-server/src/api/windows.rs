//! Maintenance windows: thin handlers over [`crate::windows`]. Each state-changing
//! answer carries [`AuditDetails`] naming the window and its schedule.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use chrono::Utc;
use patchctl_proto::policy::windows::{
    NewWindowRequest, NextQuery, UpdateWindowRequest, WindowInfo, WindowListQuery, WindowOpenings,
};
use serde_json::json;

use crate::AppState;
use crate::access::Principal;
use crate::audit::AuditDetails;
use crate::error::{ApiError, ApiJson};
use crate::windows;

/// What the audit trail keeps of a window: id, name, group and schedule.
pub(crate) fn details(w: &WindowInfo) -> Extension<AuditDetails> {
    Extension(AuditDetails(json!({
        "window_id": w.id,
        "name": w.name,
        "group_id": w.group_id,
        "days": w.days,
        "start": w.start,
        "timezone": w.timezone,
        "duration_minutes": w.duration_minutes,
        "min_remaining_minutes": w.min_remaining_minutes,
        "missed_policy": w.missed_policy,
    })))
}

/// `GET /api/v1/windows[?group=G]`: every window, with its state now.
#[utoipa::path(
    get,
    path = "/api/v1/windows",
    tag = "windows",
    params(("group" = Option<String>, Query, description = "Only this group's windows (id or name)")),
    responses(
        (status = 200, description = "The windows, by name, each with its state now", body = Vec<WindowInfo>),
        (status = 400, description = "bad_request: the request is malformed (parameters or body); the message says which", body = patchctl_proto::api::ApiErrorBody),
        (status = 401, description = "unauthorized: no valid bearer token", body = patchctl_proto::api::ApiErrorBody),
        (status = 403, description = "forbidden: the token's role may not do this (or no_access_rule)", body = patchctl_proto::api::ApiErrorBody),
        (status = 404, description = "not_found: no such group", body = patchctl_proto::api::ApiErrorBody),
        (status = 503, description = "unavailable: the database cannot answer right now; retry", body = patchctl_proto::api::ApiErrorBody),
    ),
)]
pub async fn list_windows(
    State(st): State<AppState>,
    by: Principal,
    Query(q): Query<WindowListQuery>,
) -> Result<Json<Vec<WindowInfo>>, ApiError> {
    Ok(Json(
        windows::list(&st, &by, q.group.as_deref(), Utc::now()).await?,
    ))
}

/// `GET /api/v1/windows/{window}`.
#[utoipa::path(
    get,
    path = "/api/v1/windows/{window}",
    tag = "windows",
    params(("window" = String, Path, description = "Window name or id")),
    responses(
        (status = 200, description = "The window with its state now", body = WindowInfo),
        (status = 401, description = "unauthorized: no valid bearer token", body = patchctl_proto::api::ApiErrorBody),
        (status = 403, description = "forbidden: the token's role may not do this (or no_access_rule)", body = patchctl_proto::api::ApiErrorBody),
        (status = 404, description = "not_found", body = patchctl_proto::api::ApiErrorBody),
        (status = 503, description = "unavailable: the database cannot answer right now; retry", body = patchctl_proto::api::ApiErrorBody),
    ),
)]
pub async fn show_window(
    State(st): State<AppState>,
    by: Principal,
    Path(window): Path<String>,
) -> Result<Json<WindowInfo>, ApiError> {
    Ok(Json(windows::show(&st, &by, &window, Utc::now()).await?))
}

/// `POST /api/v1/windows`: 201 with the new window.
#[utoipa::path(
    post,
    path = "/api/v1/windows",
    tag = "windows",
    request_body = NewWindowRequest,
    responses(
        (status = 201, description = "The new window", body = WindowInfo),
        (status = 400, description = "bad_request: the window does not check (unknown zone, bad time, duration, minimum remaining); the message says what to write", body = patchctl_proto::api::ApiErrorBody),
        (status = 401, description = "unauthorized: no valid bearer token", body = patchctl_proto::api::ApiErrorBody),
        (status = 403, description = "forbidden: the token's role may not do this (or no_access_rule)", body = patchctl_proto::api::ApiErrorBody),
        (status = 404, description = "not_found: no such group", body = patchctl_proto::api::ApiErrorBody),
        (status = 409, description = "conflict: the name is taken", body = patchctl_proto::api::ApiErrorBody),
        (status = 413, description = "too_large: the body is over the route's limit", body = patchctl_proto::api::ApiErrorBody),
        (status = 415, description = "unsupported_media_type: the body is not JSON", body = patchctl_proto::api::ApiErrorBody),
        (status = 503, description = "unavailable: the database cannot answer right now; retry", body = patchctl_proto::api::ApiErrorBody),
    ),
)]
pub async fn create_window(
    State(st): State<AppState>,
    by: Principal,
    ApiJson(req): ApiJson<NewWindowRequest>,
) -> Result<(StatusCode, Extension<AuditDetails>, Json<WindowInfo>), ApiError> {
    let w = windows::create(&st, &by, req, Utc::now()).await?;
    Ok((StatusCode::CREATED, details(&w), Json(w)))
}

/// `PUT /api/v1/windows/{window}`: changes the fields given.
#[utoipa::path(
    put,
    path = "/api/v1/windows/{window}",
    tag = "windows",
    params(("window" = String, Path, description = "Window name or id")),
    request_body = UpdateWindowRequest,
    responses(
        (status = 200, description = "The changed window", body = WindowInfo),
        (status = 400, description = "bad_request: the window does not check; the message says what to write", body = patchctl_proto::api::ApiErrorBody),
        (status = 401, description = "unauthorized: no valid bearer token", body = patchctl_proto::api::ApiErrorBody),
        (status = 403, description = "forbidden: the token's role may not do this (or no_access_rule)", body = patchctl_proto::api::ApiErrorBody),
        (status = 404, description = "not_found: no such window or group", body = patchctl_proto::api::ApiErrorBody),
        (status = 409, description = "conflict: the name is taken", body = patchctl_proto::api::ApiErrorBody),
        (status = 413, description = "too_large: the body is over the route's limit", body = patchctl_proto::api::ApiErrorBody),
        (status = 415, description = "unsupported_media_type: the body is not JSON", body = patchctl_proto::api::ApiErrorBody),
        (status = 503, description = "unavailable: the database cannot answer right now; retry", body = patchctl_proto::api::ApiErrorBody),
    ),
)]
pub async fn update_window(
    State(st): State<AppState>,
    by: Principal,
    Path(window): Path<String>,
    ApiJson(req): ApiJson<UpdateWindowRequest>,
) -> Result<(Extension<AuditDetails>, Json<WindowInfo>), ApiError> {
    let w = windows::update(&st, &by, &window, req, Utc::now()).await?;
    Ok((details(&w), Json(w)))
}

/// `DELETE /api/v1/windows/{window}`: answers the deleted window.
#[utoipa::path(
    delete,
    path = "/api/v1/windows/{window}",
    tag = "windows",
    params(("window" = String, Path, description = "Window name or id")),
    responses(
        (status = 200, description = "The deleted window", body = WindowInfo),
        (status = 401, description = "unauthorized: no valid bearer token", body = patchctl_proto::api::ApiErrorBody),
        (status = 403, description = "forbidden: the token's role may not do this (or no_access_rule)", body = patchctl_proto::api::ApiErrorBody),
        (status = 404, description = "not_found", body = patchctl_proto::api::ApiErrorBody),
        (status = 503, description = "unavailable: the database cannot answer right now; retry", body = patchctl_proto::api::ApiErrorBody),
    ),
)]
pub async fn delete_window(
    State(st): State<AppState>,
    by: Principal,
    Path(window): Path<String>,
) -> Result<(Extension<AuditDetails>, Json<WindowInfo>), ApiError> {
    let w = windows::delete(&st, &by, &window, Utc::now()).await?;
    Ok((details(&w), Json(w)))
}

/// `GET /api/v1/windows/{window}/next?count=N`: the next openings, UTC and local.
#[utoipa::path(
    get,
    path = "/api/v1/windows/{window}/next",
    tag = "windows",
    params(
        ("window" = String, Path, description = "Window name or id"),
        ("count" = Option<u32>, Query, description = "How many openings, 1 to 100 (default 10)"),
    ),
    responses(
        (status = 200, description = "The next openings, in UTC and in the window's local time", body = WindowOpenings),
        (status = 400, description = "bad_request: count out of range", body = patchctl_proto::api::ApiErrorBody),
        (status = 401, description = "unauthorized: no valid bearer token", body = patchctl_proto::api::ApiErrorBody),
        (status = 403, description = "forbidden: the token's role may not do this (or no_access_rule)", body = patchctl_proto::api::ApiErrorBody),
        (status = 404, description = "not_found", body = patchctl_proto::api::ApiErrorBody),
        (status = 503, description = "unavailable: the database cannot answer right now; retry", body = patchctl_proto::api::ApiErrorBody),
    ),
)]
pub async fn next_openings(
    State(st): State<AppState>,
    by: Principal,
    Path(window): Path<String>,
    Query(q): Query<NextQuery>,
) -> Result<Json<WindowOpenings>, ApiError> {
    Ok(Json(
        windows::next(&st, &by, &window, q.count, Utc::now()).await?,
    ))
}
