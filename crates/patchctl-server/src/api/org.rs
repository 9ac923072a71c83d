//! The organisation's settings: `GET/PUT /api/v1/settings` ([`OrgSettings`]). With
//! `require_approval` on, hosts that enroll wait for an operator (`hosts.rs`: approve,
//! reject).

use axum::Json;
use axum::extract::State;
use patchctl_proto::trust::OrgSettings;

use crate::AppState;
use crate::access::OperatorAuth;
use crate::error::{ApiError, ApiJson};

/// The settings a `PUT` may name; anything else is refused rather than ignored (a
/// misspelt setting must not look applied).
const KNOWN: [&str; 1] = ["require_approval"];

/// `GET /api/v1/settings`.
pub async fn get_settings(
    State(st): State<AppState>,
    op: OperatorAuth,
) -> Result<Json<OrgSettings>, ApiError> {
    Ok(Json(st.store.org_settings(op.org_id).await?))
}

/// `PUT /api/v1/settings`: replaces the settings (a setting left out takes its
/// default).
pub async fn put_settings(
    State(st): State<AppState>,
    op: OperatorAuth,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> Result<Json<OrgSettings>, ApiError> {
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
    Ok(Json(settings))
}
