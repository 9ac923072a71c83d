//! The users of the operator's organisation and `whoami`: thin handlers over
//! [`crate::operators`], which checks the caller's role. Each state-changing answer
//! carries [`AuditDetails`] naming the user and what changed (never a password).

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use axum::{Extension, Json};
use patchctl_proto::access::{
    NewUserRequest, OperatorIdentity, PasswordChange, RoleChange, UserInfo,
};
use serde_json::json;

use crate::AppState;
use crate::access::Principal;
use crate::audit::AuditDetails;
use crate::error::{ApiError, ApiJson};
use crate::operators;

use super::paging::{self, PageQuery};

/// One page of a short list kept in memory (users, tokens), by the id of the last item
/// of the previous page; the answer follows the paging convention of every list.
pub(crate) fn page_by_id<T: serde::Serialize>(
    uri: &Uri,
    items: Vec<T>,
    q: &PageQuery,
    id: impl Fn(&T) -> uuid::Uuid,
) -> Result<Response, ApiError> {
    let limit = q.limit()?;
    let start = match q.position::<uuid::Uuid>()? {
        None => 0,
        Some(after) => items
            .iter()
            .position(|t| id(t) == after)
            .map(|i| i + 1)
            .ok_or_else(|| {
                ApiError::bad_request(
                    "the cursor names nothing in this list; start again without a cursor",
                )
                .with_code(patchctl_proto::trust::ErrorCode::BadCursor)
            })?,
    };
    let rest: Vec<T> = items.into_iter().skip(start).collect();
    let (page, next) = paging::cut(rest, limit, |t| id(t));
    Ok(paging::paged(uri, page, next))
}

/// What the audit trail keeps of a user: id and name.
fn details(u: &UserInfo, extra: serde_json::Value) -> Extension<AuditDetails> {
    let mut v = json!({"user_id": u.id, "username": u.username});
    if let (Some(o), serde_json::Value::Object(e)) = (v.as_object_mut(), extra) {
        o.extend(e);
    }
    Extension(AuditDetails(v))
}

/// `GET /api/v1/whoami`: the caller's organisation, role, user and credential.
#[utoipa::path(
    get,
    path = "/api/v1/whoami",
    operation_id = "operator_whoami",
    tag = "users",
    responses(
        (status = 200, description = "Who the caller is", body = OperatorIdentity),
        (status = 403, description = "forbidden: the token's role may not do this (or no_access_rule)", body = patchctl_proto::api::ApiErrorBody),
        (status = 401, description = "unauthorized: no valid bearer token", body = patchctl_proto::api::ApiErrorBody),
        (status = 503, description = "unavailable: the database cannot answer right now; retry", body = patchctl_proto::api::ApiErrorBody),
    ),
)]
pub async fn whoami(
    State(st): State<AppState>,
    by: Principal,
) -> Result<Json<OperatorIdentity>, ApiError> {
    Ok(Json(operators::whoami(&st, &by).await?))
}

/// `GET /api/v1/users` (paged: `?limit=N&cursor=C`).
#[utoipa::path(
    get,
    path = "/api/v1/users",
    tag = "users",
    params(PageQuery),
    responses(
        (status = 200, description = "The users, one page", body = Vec<UserInfo>, headers(("X-Next-Cursor" = String, description = "Present when there is more: the cursor of the next page"), ("Link" = String, description = "Present when there is more: `<PATH?cursor=...&limit=N>; rel=\"next\"`"))),
        (status = 400, description = "bad_request: the request is malformed (parameters or body); the message says which", body = patchctl_proto::api::ApiErrorBody),
        (status = 401, description = "unauthorized: no valid bearer token", body = patchctl_proto::api::ApiErrorBody),
        (status = 403, description = "forbidden: the token's role may not do this (or no_access_rule)", body = patchctl_proto::api::ApiErrorBody),
        (status = 404, description = "not_found", body = patchctl_proto::api::ApiErrorBody),
        (status = 503, description = "unavailable: the database cannot answer right now; retry", body = patchctl_proto::api::ApiErrorBody),
    ),
)]
pub async fn list_users(
    State(st): State<AppState>,
    by: Principal,
    uri: Uri,
    Query(q): Query<PageQuery>,
) -> Result<Response, ApiError> {
    let users = operators::list_users(&st, &by).await?;
    page_by_id(&uri, users, &q, |u| u.id)
}

/// `GET /api/v1/users/{user}` (name or id).
#[utoipa::path(
    get,
    path = "/api/v1/users/{user}",
    tag = "users",
    params(("user" = String, Path, description = "User name or id")),
    responses(
        (status = 200, description = "The user", body = UserInfo),
        (status = 400, description = "bad_request: the request is malformed (parameters or body); the message says which", body = patchctl_proto::api::ApiErrorBody),
        (status = 401, description = "unauthorized: no valid bearer token", body = patchctl_proto::api::ApiErrorBody),
        (status = 403, description = "forbidden: the token's role may not do this (or no_access_rule)", body = patchctl_proto::api::ApiErrorBody),
        (status = 404, description = "not_found", body = patchctl_proto::api::ApiErrorBody),
        (status = 503, description = "unavailable: the database cannot answer right now; retry", body = patchctl_proto::api::ApiErrorBody),
    ),
)]
pub async fn show_user(
    State(st): State<AppState>,
    by: Principal,
    Path(user): Path<String>,
) -> Result<Json<UserInfo>, ApiError> {
    Ok(Json(operators::show_user(&st, &by, &user).await?))
}

/// `POST /api/v1/users`: 201 with the new user.
#[utoipa::path(
    post,
    path = "/api/v1/users",
    tag = "users",
    request_body = NewUserRequest,
    responses(
        (status = 201, description = "The new user", body = UserInfo),
        (status = 400, description = "bad_request: the request is malformed (parameters or body); the message says which", body = patchctl_proto::api::ApiErrorBody),
        (status = 401, description = "unauthorized: no valid bearer token", body = patchctl_proto::api::ApiErrorBody),
        (status = 403, description = "forbidden: the token's role may not do this (or no_access_rule)", body = patchctl_proto::api::ApiErrorBody),
        (status = 409, description = "conflict", body = patchctl_proto::api::ApiErrorBody),
        (status = 413, description = "too_large: the body is over the route's limit", body = patchctl_proto::api::ApiErrorBody),
        (status = 415, description = "unsupported_media_type: the body is not JSON", body = patchctl_proto::api::ApiErrorBody),
        (status = 503, description = "unavailable: the database cannot answer right now; retry", body = patchctl_proto::api::ApiErrorBody),
    ),
)]
pub async fn create_user(
    State(st): State<AppState>,
    by: Principal,
    ApiJson(req): ApiJson<NewUserRequest>,
) -> Result<(StatusCode, Extension<AuditDetails>, Json<UserInfo>), ApiError> {
    let u = operators::create_user(&st, &by, req).await?;
    let d = details(&u, json!({"role": u.role}));
    Ok((StatusCode::CREATED, d, Json(u)))
}

/// `PUT /api/v1/users/{user}/role`.
#[utoipa::path(
    put,
    path = "/api/v1/users/{user}/role",
    tag = "users",
    params(("user" = String, Path, description = "User name or id")),
    request_body = RoleChange,
    responses(
        (status = 200, description = "The user with the new role", body = UserInfo),
        (status = 400, description = "bad_request: the request is malformed (parameters or body); the message says which", body = patchctl_proto::api::ApiErrorBody),
        (status = 401, description = "unauthorized: no valid bearer token", body = patchctl_proto::api::ApiErrorBody),
        (status = 403, description = "forbidden: the token's role may not do this (or no_access_rule)", body = patchctl_proto::api::ApiErrorBody),
        (status = 404, description = "not_found", body = patchctl_proto::api::ApiErrorBody),
        (status = 409, description = "conflict", body = patchctl_proto::api::ApiErrorBody),
        (status = 413, description = "too_large: the body is over the route's limit", body = patchctl_proto::api::ApiErrorBody),
        (status = 415, description = "unsupported_media_type: the body is not JSON", body = patchctl_proto::api::ApiErrorBody),
        (status = 503, description = "unavailable: the database cannot answer right now; retry", body = patchctl_proto::api::ApiErrorBody),
    ),
)]
pub async fn set_role(
    State(st): State<AppState>,
    by: Principal,
    Path(user): Path<String>,
    ApiJson(req): ApiJson<RoleChange>,
) -> Result<(Extension<AuditDetails>, Json<UserInfo>), ApiError> {
    let u = operators::set_role(&st, &by, &user, req.role).await?;
    Ok((details(&u, json!({"role": u.role})), Json(u)))
}

/// `POST /api/v1/users/{user}/disable`.
#[utoipa::path(
    post,
    path = "/api/v1/users/{user}/disable",
    tag = "users",
    params(("user" = String, Path, description = "User name or id")),
    responses(
        (status = 200, description = "The disabled user", body = UserInfo),
        (status = 400, description = "bad_request: the request is malformed (parameters or body); the message says which", body = patchctl_proto::api::ApiErrorBody),
        (status = 401, description = "unauthorized: no valid bearer token", body = patchctl_proto::api::ApiErrorBody),
        (status = 403, description = "forbidden: the token's role may not do this (or no_access_rule)", body = patchctl_proto::api::ApiErrorBody),
        (status = 404, description = "not_found", body = patchctl_proto::api::ApiErrorBody),
        (status = 409, description = "conflict", body = patchctl_proto::api::ApiErrorBody),
        (status = 503, description = "unavailable: the database cannot answer right now; retry", body = patchctl_proto::api::ApiErrorBody),
    ),
)]
pub async fn disable_user(
    State(st): State<AppState>,
    by: Principal,
    Path(user): Path<String>,
) -> Result<(Extension<AuditDetails>, Json<UserInfo>), ApiError> {
    let u = operators::disable_user(&st, &by, &user).await?;
    Ok((details(&u, json!({"disabled_at": u.disabled_at})), Json(u)))
}

/// `PUT /api/v1/users/{user}/password`: the answer is the user; the password is in no
/// answer, log or audit entry.
#[utoipa::path(
    put,
    path = "/api/v1/users/{user}/password",
    tag = "users",
    params(("user" = String, Path, description = "User name or id")),
    request_body = PasswordChange,
    responses(
        (status = 200, description = "The user", body = UserInfo),
        (status = 400, description = "bad_request: the request is malformed (parameters or body); the message says which", body = patchctl_proto::api::ApiErrorBody),
        (status = 401, description = "unauthorized: no valid bearer token", body = patchctl_proto::api::ApiErrorBody),
        (status = 403, description = "forbidden: the token's role may not do this (or no_access_rule)", body = patchctl_proto::api::ApiErrorBody),
        (status = 404, description = "not_found", body = patchctl_proto::api::ApiErrorBody),
        (status = 413, description = "too_large: the body is over the route's limit", body = patchctl_proto::api::ApiErrorBody),
        (status = 415, description = "unsupported_media_type: the body is not JSON", body = patchctl_proto::api::ApiErrorBody),
        (status = 503, description = "unavailable: the database cannot answer right now; retry", body = patchctl_proto::api::ApiErrorBody),
    ),
)]
pub async fn set_password(
    State(st): State<AppState>,
    by: Principal,
    Path(user): Path<String>,
    ApiJson(req): ApiJson<PasswordChange>,
) -> Result<(Extension<AuditDetails>, Json<UserInfo>), ApiError> {
    let u = operators::set_password(&st, &by, &user, &req.password).await?;
    Ok((details(&u, json!({"password_changed": true})), Json(u)))
}
