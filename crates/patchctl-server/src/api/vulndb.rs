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
pub async fn status(
    State(st): State<AppState>,
    _op: OperatorAuth,
) -> Result<Json<SyncStatus>, ApiError> {
    let states = st.store.vuln_feed_states().await?;
    Ok(Json(report(Some(&st.settings), &states, Utc::now())))
}
