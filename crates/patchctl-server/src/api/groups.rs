//! Groups and host tags: thin handlers over [`crate::policy::groups`]. A group is named
//! by its id or its name in the path.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use patchctl_proto::policy::groups::{GroupRequest, GroupView, HostTags};
use serde_json::json;

use super::resolve_host;
use crate::AppState;
use crate::access::{OperatorAuth, Principal};
use crate::audit::AuditDetails;
use crate::error::{ApiError, ApiJson};
use crate::policy::groups;

/// What the audit trail keeps of a group change (the API's and the dashboard's).
pub fn details(g: &GroupView) -> Extension<AuditDetails> {
    Extension(AuditDetails(json!({
        "group_id": g.id,
        "name": g.name,
        "selector": g.selector,
    })))
}

/// `GET /api/v1/groups`: every group with the number of hosts it holds now.
#[utoipa::path(
    get,
    path = "/api/v1/groups",
    tag = "groups",
    responses(
        (status = 200, description = "The groups, by name", body = Vec<GroupView>),
        (status = 401, description = "unauthorized: no valid bearer token", body = patchctl_proto::api::ApiErrorBody),
        (status = 403, description = "forbidden: the token's role may not do this (or no_access_rule)", body = patchctl_proto::api::ApiErrorBody),
        (status = 503, description = "unavailable: the database cannot answer right now; retry", body = patchctl_proto::api::ApiErrorBody),
    ),
)]
pub async fn list_groups(
    State(st): State<AppState>,
    auth: OperatorAuth,
) -> Result<Json<Vec<GroupView>>, ApiError> {
    Ok(Json(groups::list(&st, auth.org_id).await?))
}

/// `POST /api/v1/groups`.
#[utoipa::path(
    post,
    path = "/api/v1/groups",
    tag = "groups",
    request_body = GroupRequest,
    responses(
        (status = 201, description = "The new group", body = GroupView),
        (status = 400, description = "bad_request: a name, tag or selector value is malformed; the message says which", body = patchctl_proto::api::ApiErrorBody),
        (status = 401, description = "unauthorized: no valid bearer token", body = patchctl_proto::api::ApiErrorBody),
        (status = 403, description = "forbidden: the token's role may not do this (or no_access_rule)", body = patchctl_proto::api::ApiErrorBody),
        (status = 409, description = "conflict: the organisation has a group of that name", body = patchctl_proto::api::ApiErrorBody),
        (status = 413, description = "too_large: the body is over the route's limit", body = patchctl_proto::api::ApiErrorBody),
        (status = 415, description = "unsupported_media_type: the body is not JSON", body = patchctl_proto::api::ApiErrorBody),
        (status = 503, description = "unavailable: the database cannot answer right now; retry", body = patchctl_proto::api::ApiErrorBody),
    ),
)]
pub async fn create_group(
    State(st): State<AppState>,
    by: Principal,
    ApiJson(req): ApiJson<GroupRequest>,
) -> Result<(StatusCode, Extension<AuditDetails>, Json<GroupView>), ApiError> {
    let g = groups::create(&st, &by, req).await?;
    Ok((StatusCode::CREATED, details(&g), Json(g)))
}

/// `GET /api/v1/groups/{group}`.
#[utoipa::path(
    get,
    path = "/api/v1/groups/{group}",
    tag = "groups",
    params(("group" = String, Path, description = "Group id or name")),
    responses(
        (status = 200, description = "The group", body = GroupView),
        (status = 401, description = "unauthorized: no valid bearer token", body = patchctl_proto::api::ApiErrorBody),
        (status = 403, description = "forbidden: the token's role may not do this (or no_access_rule)", body = patchctl_proto::api::ApiErrorBody),
        (status = 404, description = "not_found: no such group", body = patchctl_proto::api::ApiErrorBody),
        (status = 503, description = "unavailable: the database cannot answer right now; retry", body = patchctl_proto::api::ApiErrorBody),
    ),
)]
pub async fn show_group(
    State(st): State<AppState>,
    auth: OperatorAuth,
    Path(group): Path<String>,
) -> Result<Json<GroupView>, ApiError> {
    Ok(Json(groups::show(&st, auth.org_id, &group).await?))
}

/// `PUT /api/v1/groups/{group}`: the new name, description and selector.
#[utoipa::path(
    put,
    path = "/api/v1/groups/{group}",
    tag = "groups",
    params(("group" = String, Path, description = "Group id or name")),
    request_body = GroupRequest,
    responses(
        (status = 200, description = "The changed group", body = GroupView),
        (status = 400, description = "bad_request: a name, tag or selector value is malformed; the message says which", body = patchctl_proto::api::ApiErrorBody),
        (status = 401, description = "unauthorized: no valid bearer token", body = patchctl_proto::api::ApiErrorBody),
        (status = 403, description = "forbidden: the token's role may not do this (or no_access_rule)", body = patchctl_proto::api::ApiErrorBody),
        (status = 404, description = "not_found: no such group", body = patchctl_proto::api::ApiErrorBody),
        (status = 409, description = "conflict: the name is taken, or the group is the built-in `all`", body = patchctl_proto::api::ApiErrorBody),
        (status = 413, description = "too_large: the body is over the route's limit", body = patchctl_proto::api::ApiErrorBody),
        (status = 415, description = "unsupported_media_type: the body is not JSON", body = patchctl_proto::api::ApiErrorBody),
        (status = 503, description = "unavailable: the database cannot answer right now; retry", body = patchctl_proto::api::ApiErrorBody),
    ),
)]
pub async fn update_group(
    State(st): State<AppState>,
    by: Principal,
    Path(group): Path<String>,
    ApiJson(req): ApiJson<GroupRequest>,
) -> Result<(Extension<AuditDetails>, Json<GroupView>), ApiError> {
    let g = groups::update(&st, &by, &group, req).await?;
    Ok((details(&g), Json(g)))
}

/// `DELETE /api/v1/groups/{group}`: the deleted group.
#[utoipa::path(
    delete,
    path = "/api/v1/groups/{group}",
    tag = "groups",
    params(("group" = String, Path, description = "Group id or name")),
    responses(
        (status = 200, description = "The deleted group", body = GroupView),
        (status = 401, description = "unauthorized: no valid bearer token", body = patchctl_proto::api::ApiErrorBody),
        (status = 403, description = "forbidden: the token's role may not do this (or no_access_rule)", body = patchctl_proto::api::ApiErrorBody),
        (status = 404, description = "not_found: no such group", body = patchctl_proto::api::ApiErrorBody),
        (status = 409, description = "conflict: the group is the built-in `all`", body = patchctl_proto::api::ApiErrorBody),
        (status = 503, description = "unavailable: the database cannot answer right now; retry", body = patchctl_proto::api::ApiErrorBody),
    ),
)]
pub async fn delete_group(
    State(st): State<AppState>,
    by: Principal,
    Path(group): Path<String>,
) -> Result<(Extension<AuditDetails>, Json<GroupView>), ApiError> {
    let g = groups::delete(&st, &by, &group).await?;
    Ok((details(&g), Json(g)))
}

/// `GET /api/v1/hosts/{host}/tags`: the host's tags (its own and the agent's) and its
/// groups.
#[utoipa::path(
    get,
    path = "/api/v1/hosts/{host}/tags",
    tag = "groups",
    params(("host" = String, Path, description = "Host id or name")),
    responses(
        (status = 200, description = "The host's tags and groups", body = HostTags),
        (status = 401, description = "unauthorized: no valid bearer token", body = patchctl_proto::api::ApiErrorBody),
        (status = 403, description = "forbidden: the token's role may not do this (or no_access_rule)", body = patchctl_proto::api::ApiErrorBody),
        (status = 404, description = "not_found: no such host, or it is revoked", body = patchctl_proto::api::ApiErrorBody),
        (status = 409, description = "conflict: several hosts have that name; give the id", body = patchctl_proto::api::ApiErrorBody),
        (status = 503, description = "unavailable: the database cannot answer right now; retry", body = patchctl_proto::api::ApiErrorBody),
    ),
)]
pub async fn host_tags(
    State(st): State<AppState>,
    auth: OperatorAuth,
    Path(host): Path<String>,
) -> Result<Json<HostTags>, ApiError> {
    let h = resolve_host(&st, auth.org_id, &host).await?;
    Ok(Json(groups::host_tags(&st, auth.org_id, h.id).await?))
}

/// `PUT /api/v1/hosts/{host}/tags`: replaces the host's operator-set tags.
#[utoipa::path(
    put,
    path = "/api/v1/hosts/{host}/tags",
    tag = "groups",
    params(("host" = String, Path, description = "Host id or name")),
    request_body = HostTags,
    responses(
        (status = 200, description = "The host's tags and groups now", body = HostTags),
        (status = 400, description = "bad_request: a tag is malformed; the message says which", body = patchctl_proto::api::ApiErrorBody),
        (status = 401, description = "unauthorized: no valid bearer token", body = patchctl_proto::api::ApiErrorBody),
        (status = 403, description = "forbidden: the token's role may not do this (or no_access_rule)", body = patchctl_proto::api::ApiErrorBody),
        (status = 404, description = "not_found: no such host, or it is revoked", body = patchctl_proto::api::ApiErrorBody),
        (status = 409, description = "conflict: several hosts have that name; give the id", body = patchctl_proto::api::ApiErrorBody),
        (status = 413, description = "too_large: the body is over the route's limit", body = patchctl_proto::api::ApiErrorBody),
        (status = 415, description = "unsupported_media_type: the body is not JSON", body = patchctl_proto::api::ApiErrorBody),
        (status = 503, description = "unavailable: the database cannot answer right now; retry", body = patchctl_proto::api::ApiErrorBody),
    ),
)]
pub async fn set_host_tags(
    State(st): State<AppState>,
    auth: OperatorAuth,
    Path(host): Path<String>,
    ApiJson(req): ApiJson<HostTags>,
) -> Result<(Extension<AuditDetails>, Json<HostTags>), ApiError> {
    let h = resolve_host(&st, auth.org_id, &host).await?;
    let tags = groups::set_host_tags(&st, auth.org_id, h.id, req.tags).await?;
    Ok((tag_details(&h, &tags), Json(tags)))
}

/// What the audit trail keeps of a change of a host's tags.
pub fn tag_details(h: &patchctl_storage::HostRow, tags: &HostTags) -> Extension<AuditDetails> {
    Extension(AuditDetails(json!({
        "host_id": h.id,
        "hostname": h.hostname,
        "tags": tags.tags,
    })))
}
