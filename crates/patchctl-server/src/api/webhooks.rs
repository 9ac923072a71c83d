//! Webhook subscriptions of the operator's organisation: list, create (the secret shown
//! once), show, update, delete, rotate the secret (the previous one keeps signing for a
//! grace period), the delivery log, and a test message. Targets are checked when a
//! subscription is created or its URL changes (`webhooks::address`), and again at
//! every delivery. The service functions here are what the dashboard calls too.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use axum::{Extension, Json};
use chrono::{Duration, Utc};
use patchctl_proto::Secret;
use patchctl_proto::policy::webhooks::{
    CreateWebhook, DEFAULT_ROTATION_GRACE_SECS, RotateWebhookSecret, TEST_EVENT_TYPE,
    UpdateWebhook, Webhook, WebhookDelivery, WebhookPayload, WebhookTestQueued, WebhookWithSecret,
};
use patchctl_storage::{NewWebhook, WebhookChange};
use uuid::Uuid;

use super::paging::{PageQuery, encode_cursor, paged};
use crate::AppState;
use crate::access::OperatorAuth;
use crate::audit::AuditDetails;
use crate::error::{ApiError, ApiJson};
use crate::webhooks::{address, sign};

const MAX_NAME_CHARS: usize = 100;
/// The longest grace period of a rotation: 30 days.
const MAX_GRACE_SECS: u64 = 30 * 86_400;

fn no_webhook(what: &str) -> ApiError {
    ApiError::not_found(format!(
        "no webhook {what:?}; `patchctl webhooks list` shows the webhooks of your organisation"
    ))
}

fn check_name(name: &str) -> Result<String, ApiError> {
    let name = name.trim();
    let chars = name.chars().count();
    if chars == 0 || chars > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(ApiError::bad_request(format!(
            "a webhook's name is 1 to {MAX_NAME_CHARS} characters without control characters; got {chars}"
        )));
    }
    Ok(name.to_owned())
}

/// The subscription `what` (id or name) of `org_id`, or 404.
pub async fn find(st: &AppState, org_id: Uuid, what: &str) -> Result<Webhook, ApiError> {
    st.store
        .find_webhook(org_id, what)
        .await?
        .ok_or_else(|| no_webhook(what))
}

fn details(w: &Webhook) -> AuditDetails {
    // Never the secret: what names and aims the subscription.
    AuditDetails(serde_json::json!({
        "webhook_id": w.id,
        "name": w.name,
        "url": crate::settings::redact_url(&w.url),
        "events": w.events,
        "enabled": w.enabled,
    }))
}

/// Creates a subscription for `actor`, checking its target; the secret is in the
/// answer this once.
pub async fn create(
    st: &AppState,
    org_id: Uuid,
    actor: &str,
    req: CreateWebhook,
) -> Result<(WebhookWithSecret, AuditDetails), ApiError> {
    let name = check_name(&req.name)?;
    address::check_target(&req.url, &st.settings.webhook_allow_networks).await?;
    let secret = sign::new_secret();
    let w = st
        .store
        .create_webhook(&NewWebhook {
            org_id,
            name,
            url: req.url,
            events: req.events,
            min_severity: req.min_severity,
            enabled: req.enabled.unwrap_or(true),
            secret: secret.clone(),
            created_by: actor.to_owned(),
            created_at: Utc::now(),
        })
        .await?;
    tracing::info!(target: "audit", event = "webhook.created", org_id = %org_id,
        webhook_id = %w.id, actor = %actor, "webhook created");
    let d = details(&w);
    Ok((
        WebhookWithSecret {
            webhook: w,
            secret: Secret::new(secret),
        },
        d,
    ))
}

/// Changes subscription `what`; a new URL is checked like at creation.
pub async fn update(
    st: &AppState,
    org_id: Uuid,
    what: &str,
    req: UpdateWebhook,
) -> Result<(Webhook, AuditDetails), ApiError> {
    let w = find(st, org_id, what).await?;
    let name = req.name.as_deref().map(check_name).transpose()?;
    if let Some(url) = &req.url {
        address::check_target(url, &st.settings.webhook_allow_networks).await?;
    }
    let change = WebhookChange {
        name,
        url: req.url,
        events: req.events,
        min_severity: if req.clear_min_severity {
            Some(None)
        } else {
            req.min_severity.map(Some)
        },
        enabled: req.enabled,
    };
    let w = st
        .store
        .update_webhook(org_id, w.id, &change)
        .await?
        .ok_or_else(|| no_webhook(what))?;
    let d = details(&w);
    Ok((w, d))
}

/// Deletes subscription `what` with its messages and log.
pub async fn delete(st: &AppState, org_id: Uuid, what: &str) -> Result<AuditDetails, ApiError> {
    let w = find(st, org_id, what).await?;
    if !st.store.delete_webhook(org_id, w.id).await? {
        return Err(no_webhook(what));
    }
    Ok(details(&w))
}

/// A new secret for subscription `what`; the previous one signs beside it for `grace`
/// (default 24 h). The new secret is in the answer this once.
pub async fn rotate(
    st: &AppState,
    org_id: Uuid,
    what: &str,
    req: RotateWebhookSecret,
) -> Result<(WebhookWithSecret, AuditDetails), ApiError> {
    let grace = req.grace_secs.unwrap_or(DEFAULT_ROTATION_GRACE_SECS);
    if grace > MAX_GRACE_SECS {
        return Err(ApiError::bad_request(format!(
            "grace_secs is {grace}; give at most {MAX_GRACE_SECS} (30 days)"
        )));
    }
    let w = find(st, org_id, what).await?;
    let secret = sign::new_secret();
    let until = Utc::now() + Duration::seconds(grace as i64);
    let w = st
        .store
        .rotate_webhook_secret(org_id, w.id, &secret, until)
        .await?
        .ok_or_else(|| no_webhook(what))?;
    let mut d = details(&w);
    d.0["previous_secret_until"] = serde_json::json!(until);
    Ok((
        WebhookWithSecret {
            webhook: w,
            secret: Secret::new(secret),
        },
        d,
    ))
}

/// Queues a `webhook.test` message to subscription `what`, whatever its filter.
pub async fn test(
    st: &AppState,
    org_id: Uuid,
    what: &str,
) -> Result<(WebhookTestQueued, AuditDetails), ApiError> {
    let w = find(st, org_id, what).await?;
    let now = Utc::now();
    let payload = WebhookPayload {
        event_type: TEST_EVENT_TYPE.to_owned(),
        timestamp: now,
        data: serde_json::json!({"webhook_id": w.id, "name": w.name}),
    };
    let body = serde_json::to_string(&payload)
        .map_err(|e| ApiError::bad_request(format!("cannot encode the test message: {e}")))?;
    let message_id = st
        .store
        .enqueue_webhook_message(org_id, w.id, TEST_EVENT_TYPE, &body, now.timestamp_millis())
        .await?
        .ok_or_else(|| no_webhook(what))?;
    let mut d = details(&w);
    d.0["message_id"] = serde_json::json!(message_id);
    Ok((WebhookTestQueued { message_id }, d))
}

/// A page of subscription `what`'s deliveries, newest first.
pub async fn deliveries(
    st: &AppState,
    org_id: Uuid,
    what: &str,
    after: Option<(i64, String)>,
    limit: u32,
) -> Result<(Vec<WebhookDelivery>, Option<(i64, String)>), ApiError> {
    let w = find(st, org_id, what).await?;
    let page = st
        .store
        .webhook_deliveries(org_id, w.id, after, limit)
        .await?;
    Ok((page.items, page.next))
}

fn rotation_request(body: &[u8]) -> Result<RotateWebhookSecret, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(RotateWebhookSecret::default());
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!(
            "the body is not a rotation ({e}); send {{\"grace_secs\": SECONDS}} or nothing"
        ))
    })
}

/// `GET /api/v1/webhooks`.
#[utoipa::path(
    get,
    path = "/api/v1/webhooks",
    tag = "webhooks",
    responses(
        (status = 200, description = "The subscriptions (never their secrets)", body = Vec<Webhook>),
        (status = 401, description = "unauthorized: no valid bearer token", body = patchctl_proto::api::ApiErrorBody),
        (status = 403, description = "forbidden: the token's role may not do this (or no_access_rule)", body = patchctl_proto::api::ApiErrorBody),
        (status = 503, description = "unavailable: the database cannot answer right now; retry", body = patchctl_proto::api::ApiErrorBody)
    ),
)]
pub async fn list_webhooks(
    State(st): State<AppState>,
    op: OperatorAuth,
) -> Result<Json<Vec<Webhook>>, ApiError> {
    Ok(Json(st.store.list_webhooks(op.org_id).await?))
}

/// `POST /api/v1/webhooks`.
#[utoipa::path(
    post,
    path = "/api/v1/webhooks",
    tag = "webhooks",
    request_body = CreateWebhook,
    responses(
        (status = 201, description = "The subscription and its secret, shown this once", body = WebhookWithSecret),
        (status = 400, description = "bad_request: a bad name, or a URL that is refused (scheme, address not allowed); the message says which", body = patchctl_proto::api::ApiErrorBody),
        (status = 401, description = "unauthorized: no valid bearer token", body = patchctl_proto::api::ApiErrorBody),
        (status = 403, description = "forbidden: the token's role may not do this (or no_access_rule)", body = patchctl_proto::api::ApiErrorBody),
        (status = 409, description = "conflict: the name is taken", body = patchctl_proto::api::ApiErrorBody),
        (status = 413, description = "too_large: the body is over the route's limit", body = patchctl_proto::api::ApiErrorBody),
        (status = 415, description = "unsupported_media_type: the body is not JSON", body = patchctl_proto::api::ApiErrorBody),
        (status = 503, description = "unavailable: the database cannot answer right now; retry", body = patchctl_proto::api::ApiErrorBody)
    ),
)]
pub async fn create_webhook(
    State(st): State<AppState>,
    op: OperatorAuth,
    ApiJson(req): ApiJson<CreateWebhook>,
) -> Result<(StatusCode, Extension<AuditDetails>, Json<WebhookWithSecret>), ApiError> {
    let (created, d) = create(&st, op.org_id, &op.actor(), req).await?;
    Ok((StatusCode::CREATED, Extension(d), Json(created)))
}

/// `GET /api/v1/webhooks/{webhook}`.
#[utoipa::path(
    get,
    path = "/api/v1/webhooks/{webhook}",
    tag = "webhooks",
    params(("webhook" = String, Path, description = "Webhook id or name")),
    responses(
        (status = 200, description = "The subscription", body = Webhook),
        (status = 401, description = "unauthorized: no valid bearer token", body = patchctl_proto::api::ApiErrorBody),
        (status = 403, description = "forbidden: the token's role may not do this (or no_access_rule)", body = patchctl_proto::api::ApiErrorBody),
        (status = 404, description = "not_found", body = patchctl_proto::api::ApiErrorBody),
        (status = 503, description = "unavailable: the database cannot answer right now; retry", body = patchctl_proto::api::ApiErrorBody)
    ),
)]
pub async fn show_webhook(
    State(st): State<AppState>,
    op: OperatorAuth,
    Path(what): Path<String>,
) -> Result<Json<Webhook>, ApiError> {
    Ok(Json(find(&st, op.org_id, &what).await?))
}

/// `PUT /api/v1/webhooks/{webhook}`.
#[utoipa::path(
    put,
    path = "/api/v1/webhooks/{webhook}",
    tag = "webhooks",
    params(("webhook" = String, Path, description = "Webhook id or name")),
    request_body = UpdateWebhook,
    responses(
        (status = 200, description = "The subscription, changed", body = Webhook),
        (status = 400, description = "bad_request: a bad name, or a URL that is refused; the message says which", body = patchctl_proto::api::ApiErrorBody),
        (status = 401, description = "unauthorized: no valid bearer token", body = patchctl_proto::api::ApiErrorBody),
        (status = 403, description = "forbidden: the token's role may not do this (or no_access_rule)", body = patchctl_proto::api::ApiErrorBody),
        (status = 404, description = "not_found", body = patchctl_proto::api::ApiErrorBody),
        (status = 409, description = "conflict: the name is taken", body = patchctl_proto::api::ApiErrorBody),
        (status = 413, description = "too_large: the body is over the route's limit", body = patchctl_proto::api::ApiErrorBody),
        (status = 415, description = "unsupported_media_type: the body is not JSON", body = patchctl_proto::api::ApiErrorBody),
        (status = 503, description = "unavailable: the database cannot answer right now; retry", body = patchctl_proto::api::ApiErrorBody)
    ),
)]
pub async fn update_webhook(
    State(st): State<AppState>,
    op: OperatorAuth,
    Path(what): Path<String>,
    ApiJson(req): ApiJson<UpdateWebhook>,
) -> Result<(Extension<AuditDetails>, Json<Webhook>), ApiError> {
    let (w, d) = update(&st, op.org_id, &what, req).await?;
    Ok((Extension(d), Json(w)))
}

/// `DELETE /api/v1/webhooks/{webhook}`.
#[utoipa::path(
    delete,
    path = "/api/v1/webhooks/{webhook}",
    tag = "webhooks",
    params(("webhook" = String, Path, description = "Webhook id or name")),
    responses(
        (status = 204, description = "Deleted, with its queued messages and log"),
        (status = 401, description = "unauthorized: no valid bearer token", body = patchctl_proto::api::ApiErrorBody),
        (status = 403, description = "forbidden: the token's role may not do this (or no_access_rule)", body = patchctl_proto::api::ApiErrorBody),
        (status = 404, description = "not_found", body = patchctl_proto::api::ApiErrorBody),
        (status = 503, description = "unavailable: the database cannot answer right now; retry", body = patchctl_proto::api::ApiErrorBody)
    ),
)]
pub async fn delete_webhook(
    State(st): State<AppState>,
    op: OperatorAuth,
    Path(what): Path<String>,
) -> Result<(StatusCode, Extension<AuditDetails>), ApiError> {
    let d = delete(&st, op.org_id, &what).await?;
    Ok((StatusCode::NO_CONTENT, Extension(d)))
}

/// `POST /api/v1/webhooks/{webhook}/rotate-secret` (body optional).
#[utoipa::path(
    post,
    path = "/api/v1/webhooks/{webhook}/rotate-secret",
    tag = "webhooks",
    params(("webhook" = String, Path, description = "Webhook id or name")),
    request_body(content = Option<RotateWebhookSecret>, description = "Optional; an empty body takes the default grace of 24 hours"),
    responses(
        (status = 201, description = "The new secret, shown this once", body = WebhookWithSecret),
        (status = 400, description = "bad_request: the body is not a rotation", body = patchctl_proto::api::ApiErrorBody),
        (status = 401, description = "unauthorized: no valid bearer token", body = patchctl_proto::api::ApiErrorBody),
        (status = 403, description = "forbidden: the token's role may not do this (or no_access_rule)", body = patchctl_proto::api::ApiErrorBody),
        (status = 404, description = "not_found", body = patchctl_proto::api::ApiErrorBody),
        (status = 413, description = "too_large: the body is over the route's limit", body = patchctl_proto::api::ApiErrorBody),
        (status = 503, description = "unavailable: the database cannot answer right now; retry", body = patchctl_proto::api::ApiErrorBody)
    ),
)]
pub async fn rotate_webhook_secret(
    State(st): State<AppState>,
    op: OperatorAuth,
    Path(what): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Extension<AuditDetails>, Json<WebhookWithSecret>), ApiError> {
    let req = rotation_request(&body)?;
    let (rotated, d) = rotate(&st, op.org_id, &what, req).await?;
    Ok((StatusCode::CREATED, Extension(d), Json(rotated)))
}

/// `GET /api/v1/webhooks/{webhook}/deliveries` (paged, newest first).
#[utoipa::path(
    get,
    path = "/api/v1/webhooks/{webhook}/deliveries",
    tag = "webhooks",
    params(("webhook" = String, Path, description = "Webhook id or name"), PageQuery),
    responses(
        (status = 200, description = "Messages with their attempts, newest first; more pages in X-Next-Cursor", body = Vec<WebhookDelivery>),
        (status = 400, description = "bad_request: bad limit or cursor", body = patchctl_proto::api::ApiErrorBody),
        (status = 401, description = "unauthorized: no valid bearer token", body = patchctl_proto::api::ApiErrorBody),
        (status = 403, description = "forbidden: the token's role may not do this (or no_access_rule)", body = patchctl_proto::api::ApiErrorBody),
        (status = 404, description = "not_found", body = patchctl_proto::api::ApiErrorBody),
        (status = 503, description = "unavailable: the database cannot answer right now; retry", body = patchctl_proto::api::ApiErrorBody)
    ),
)]
pub async fn list_deliveries(
    State(st): State<AppState>,
    op: OperatorAuth,
    Path(what): Path<String>,
    Query(page): Query<PageQuery>,
    uri: Uri,
) -> Result<Response, ApiError> {
    let limit = page.limit()?;
    let after = page.position::<(i64, String)>()?;
    let (items, next) = deliveries(&st, op.org_id, &what, after, limit).await?;
    Ok(paged(&uri, items, next.as_ref().map(encode_cursor)))
}

/// `POST /api/v1/webhooks/{webhook}/test`: a `webhook.test` message.
#[utoipa::path(
    post,
    path = "/api/v1/webhooks/{webhook}/test",
    tag = "webhooks",
    params(("webhook" = String, Path, description = "Webhook id or name")),
    responses(
        (status = 202, description = "The test message is queued; its attempts show in the deliveries", body = WebhookTestQueued),
        (status = 401, description = "unauthorized: no valid bearer token", body = patchctl_proto::api::ApiErrorBody),
        (status = 403, description = "forbidden: the token's role may not do this (or no_access_rule)", body = patchctl_proto::api::ApiErrorBody),
        (status = 404, description = "not_found", body = patchctl_proto::api::ApiErrorBody),
        (status = 503, description = "unavailable: the database cannot answer right now; retry", body = patchctl_proto::api::ApiErrorBody)
    ),
)]
pub async fn test_webhook(
    State(st): State<AppState>,
    op: OperatorAuth,
    Path(what): Path<String>,
) -> Result<(StatusCode, Extension<AuditDetails>, Json<WebhookTestQueued>), ApiError> {
    let (q, d) = test(&st, op.org_id, &what).await?;
    Ok((StatusCode::ACCEPTED, Extension(d), Json(q)))
}
