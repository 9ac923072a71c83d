//! The organisation's settings: `GET/PUT /api/v1/settings` ([`OrgSettings`]). With
//! `require_approval` on, hosts that enroll wait for an operator (`hosts.rs`: approve,
//! reject).

use axum::extract::State;
use axum::{Extension, Json};
use patchctl_proto::trust::OrgSettings;

use crate::AppState;
use crate::access::OperatorAuth;
use crate::audit::AuditDetails;
use crate::error::{ApiError, ApiJson};

/// The settings a `PUT` may name; anything else is refused rather than ignored (a
/// misspelt setting must not look applied).
const KNOWN: [&str; 1] = ["require_approval"];

/// `GET /api/v1/settings`.
#[utoipa::path(
    get,
    path = "/api/v1/settings",
    tag = "settings",
    responses(
        (status = 200, description = "The organisation's settings", body = OrgSettings),
        (status = 401, description = "unauthorized: no valid bearer token", body = patchctl_proto::api::ApiErrorBody),
        (status = 403, description = "forbidden: the token's role may not do this (or no_access_rule)", body = patchctl_proto::api::ApiErrorBody),
        (status = 503, description = "unavailable: the database (or the vulnerability correlation) cannot answer right now; retry", body = patchctl_proto::api::ApiErrorBody)
    ),
)]
pub async fn get_settings(
    State(st): State<AppState>,
    op: OperatorAuth,
) -> Result<Json<OrgSettings>, ApiError> {
    Ok(Json(st.store.org_settings(op.org_id).await?))
}

/// `PUT /api/v1/settings`: replaces the settings (a setting left out takes its
/// default).
#[utoipa::path(
    put,
    path = "/api/v1/settings",
    tag = "settings",
    request_body = OrgSettings,
    responses(
        (status = 200, description = "The settings as stored", body = OrgSettings),
        (status = 400, description = "bad_request: the request is malformed (parameters or body); the message says which", body = patchctl_proto::api::ApiErrorBody),
        (status = 401, description = "unauthorized: no valid bearer token", body = patchctl_proto::api::ApiErrorBody),
        (status = 403, description = "forbidden: the token's role may not do this (or no_access_rule)", body = patchctl_proto::api::ApiErrorBody),
        (status = 404, description = "not_found", body = patchctl_proto::api::ApiErrorBody),
        (status = 413, description = "too_large: the body is over the route's limit", body = patchctl_proto::api::ApiErrorBody),
        (status = 415, description = "unsupported_media_type: the body is not JSON (or an unknown Content-Encoding)", body = patchctl_proto::api::ApiErrorBody),
        (status = 503, description = "unavailable: the database (or the vulnerability correlation) cannot answer right now; retry", body = patchctl_proto::api::ApiErrorBody)
    ),
)]
pub async fn put_settings(
    State(st): State<AppState>,
    op: OperatorAuth,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> Result<(Extension<AuditDetails>, Json<OrgSettings>), ApiError> {
    let Some(fields) = body.as_object() else {
        return Err(ApiError::bad_request(
            "expected a JSON object such as {\"require_approval\": true}",
        ));
    };
    if let Some(unknown) = fields.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return Err(ApiError::bad_request(format!(
            "unknown setting {unknown:?}; the settings are: {}",
            KNOWN.join(", ")
        )));
    }
    let settings: OrgSettings = serde_json::from_value(body)
        .map_err(|e| ApiError::bad_request(format!("invalid settings: {e}")))?;
    let before = st.store.org_settings(op.org_id).await?;
    if !st.store.set_org_settings(op.org_id, &settings).await? {
        return Err(ApiError::not_found(
            "the organisation of this API token no longer exists",
        ));
    }
    tracing::info!(
        target: "audit",
        event = "org_settings.changed",
        org_id = %op.org_id,
        actor = %op.actor(),
        require_approval_before = before.require_approval,
        require_approval = settings.require_approval,
        "organisation settings changed"
    );
    let details = AuditDetails(serde_json::json!({"before": before, "after": settings}));
    Ok((Extension(details), Json(settings)))
}
