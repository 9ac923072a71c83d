//! API tokens: the caller's own, or (for administrators) anyone's in the organisation.
//! Thin handlers over [`crate::operators`], which checks the caller's role. A token is
//! in the creation answer this once; the audit trail keeps its id, name, owner, scope
//! and expiry, never the token.

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use axum::{Extension, Json};
use patchctl_proto::access::{CreatedToken, NewTokenRequest, TokenInfo};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::AppState;
use crate::access::Principal;
use crate::audit::AuditDetails;
use crate::error::{ApiError, ApiJson};
use crate::operators;

/// Query of `GET /api/v1/tokens`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListTokensQuery {
    /// Only this user's tokens (name or id).
    pub user: Option<String>,
    /// Items per page (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// Where to go on (from `X-Next-Cursor`).
    pub cursor: Option<String>,
}

/// `GET /api/v1/tokens[?user=NAME]` (paged: `&limit=N&cursor=C`).
#[utoipa::path(
    get,
    path = "/api/v1/tokens",
    tag = "tokens",
    params(ListTokensQuery),
    responses(
        (status = 200, description = "The tokens, one page", body = Vec<TokenInfo>, headers(("X-Next-Cursor" = String, description = "Present when there is more: the cursor of the next page"), ("Link" = String, description = "Present when there is more: `<PATH?cursor=...&limit=N>; rel=\"next\"`"))),
        (status = 400, description = "bad_request: the request is malformed (parameters or body); the message says which", body = patchctl_proto::api::ApiErrorBody),
        (status = 401, description = "unauthorized: no valid bearer token", body = patchctl_proto::api::ApiErrorBody),
        (status = 403, description = "forbidden: the token's role may not do this (or no_access_rule)", body = patchctl_proto::api::ApiErrorBody),
        (status = 404, description = "not_found", body = patchctl_proto::api::ApiErrorBody),
        (status = 503, description = "unavailable: the database cannot answer right now; retry", body = patchctl_proto::api::ApiErrorBody),
    ),
)]
pub async fn list_tokens(
    State(st): State<AppState>,
    by: Principal,
    uri: Uri,
    Query(q): Query<ListTokensQuery>,
) -> Result<Response, ApiError> {
    let tokens = operators::list_tokens(&st, &by, q.user.as_deref()).await?;
    let page = super::paging::PageQuery {
        limit: q.limit,
        cursor: q.cursor,
    };
    super::users::page_by_id(&uri, tokens, &page, |t: &TokenInfo| t.id)
}

fn details(t: &TokenInfo) -> Extension<AuditDetails> {
    Extension(AuditDetails(json!({
        "token_id": t.id,
        "name": t.name,
        "user_id": t.user_id,
        "username": t.username,
        "read_only": t.read_only,
        "expires_at": t.expires_at,
        "state": t.state,
    })))
}

/// `POST /api/v1/tokens`: 201 with the token, shown this once.
#[utoipa::path(
    post,
    path = "/api/v1/tokens",
    tag = "tokens",
    request_body = NewTokenRequest,
    responses(
        (status = 201, description = "The new token; its secret is shown this once", body = CreatedToken),
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
pub async fn create_token(
    State(st): State<AppState>,
    by: Principal,
    ApiJson(req): ApiJson<NewTokenRequest>,
) -> Result<(StatusCode, Extension<AuditDetails>, Json<CreatedToken>), ApiError> {
    let created = operators::create_token(&st, &by, req).await?;
    Ok((StatusCode::CREATED, details(&created.info), Json(created)))
}

/// `POST /api/v1/tokens/{id}/revoke`.
#[utoipa::path(
    post,
    path = "/api/v1/tokens/{id}/revoke",
    tag = "tokens",
    params(("id" = uuid::Uuid, Path, description = "Token id")),
    responses(
        (status = 200, description = "The revoked token", body = TokenInfo),
        (status = 400, description = "bad_request: the request is malformed (parameters or body); the message says which", body = patchctl_proto::api::ApiErrorBody),
        (status = 401, description = "unauthorized: no valid bearer token", body = patchctl_proto::api::ApiErrorBody),
        (status = 403, description = "forbidden: the token's role may not do this (or no_access_rule)", body = patchctl_proto::api::ApiErrorBody),
        (status = 404, description = "not_found", body = patchctl_proto::api::ApiErrorBody),
        (status = 503, description = "unavailable: the database cannot answer right now; retry", body = patchctl_proto::api::ApiErrorBody),
    ),
)]
pub async fn revoke_token(
    State(st): State<AppState>,
    by: Principal,
    Path(id): Path<String>,
) -> Result<(Extension<AuditDetails>, Json<TokenInfo>), ApiError> {
    let id = Uuid::parse_str(&id).map_err(|_| {
        ApiError::bad_request(format!(
            "{id:?} is not a token id (a UUID); `patchctl tokens list` shows them"
        ))
    })?;
    let t = operators::revoke_token(&st, &by, id).await?;
    Ok((details(&t), Json(t)))
}
