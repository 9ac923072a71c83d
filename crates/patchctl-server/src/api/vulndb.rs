//! The vulnerability database's own state: `GET /api/v1/vulndb/status`, the feed sync
//! report ([`crate::vulnsync::status`]): per configured feed its state (ok, failing,
//! never synced, disabled), records, last success and age, last attempt, last error and
//! next attempt. Read-only; any operator token may read it (the feeds are the
//! platform's, not an organisation's, and URLs are shown without credentials).

use axum::Json;
use axum::extract::State;
use chrono::Utc;

use crate::AppState;
use crate::access::OperatorAuth;
use crate::error::ApiError;
use crate::vulnsync::status::{SyncStatus, report};

/// `GET /api/v1/vulndb/status`.
#[utoipa::path(
    get,
    path = "/api/v1/vulndb/status",
    tag = "vulns",
    responses(
        (status = 200, description = "The feed sync report", body = SyncStatus),
        (status = 401, description = "unauthorized: no valid bearer token", body = patchctl_proto::api::ApiErrorBody),
        (status = 403, description = "forbidden: the token's role may not do this (or no_access_rule)", body = patchctl_proto::api::ApiErrorBody),
        (status = 503, description = "unavailable: the database (or the vulnerability correlation) cannot answer right now; retry", body = patchctl_proto::api::ApiErrorBody)
    ),
)]
pub async fn status(
    State(st): State<AppState>,
    _op: OperatorAuth,
) -> Result<Json<SyncStatus>, ApiError> {
    let states = st.store.vuln_feed_states().await?;
    Ok(Json(report(Some(&st.settings), &states, Utc::now())))
}
