//! `POST /api/v1/agent/results`: the results of the host's commands, recorded once per
//! command id (a result sent again is acknowledged, not stored twice).

use axum::Json;
use axum::extract::State;
use chrono::Utc;
use patchctl_proto::agent::{ResultsAck, ResultsUpload};
use patchctl_storage::RecordOutcome;

use crate::AppState;
use crate::auth::AgentAuth;
use crate::error::{ApiError, ApiJson};

/// Most results accepted per upload.
const MAX_RESULTS_PER_UPLOAD: usize = 1_000;

/// `POST /api/v1/agent/results`: records results once per command id.
pub async fn results(
    State(st): State<AppState>,
    agent: AgentAuth,
    ApiJson(upload): ApiJson<ResultsUpload>,
) -> Result<Json<ResultsAck>, ApiError> {
    if upload.results.len() > MAX_RESULTS_PER_UPLOAD {
        return Err(ApiError::bad_request(format!(
            "{} results in one upload; send at most {MAX_RESULTS_PER_UPLOAD}",
            upload.results.len()
        )));
    }
    let now = Utc::now();
    let mut stored = Vec::with_capacity(upload.results.len());
    for r in &upload.results {
        let outcome = st.store.record_result(agent.host_id, r, now).await?;
        st.metrics.traffic.result(outcome);
        match outcome {
            RecordOutcome::Stored => {
                tracing::info!(host_id = %agent.host_id, command_id = %r.command_id, status = ?r.status, "result stored")
            }
            RecordOutcome::Duplicate => {
                tracing::info!(host_id = %agent.host_id, command_id = %r.command_id, "duplicate result ignored")
            }
            RecordOutcome::UnknownCommand => {
                tracing::warn!(host_id = %agent.host_id, command_id = %r.command_id, "result for an unknown command ignored")
            }
        }
        stored.push(r.command_id);
    }
    Ok(Json(ResultsAck { stored }))
}
