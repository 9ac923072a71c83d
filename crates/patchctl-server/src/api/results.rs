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
#[utoipa::path(
    post,
    path = "/api/v1/agent/results",
    tag = "agent",
    request_body = ResultsUpload,
    responses(
        (status = 200, description = "Recorded", body = ResultsAck),
        (status = 400, description = "bad_request: the request is malformed (parameters or body); the message says which", body = patchctl_proto::api::ApiErrorBody),
        (status = 401, description = "unauthorized: no valid bearer token", body = patchctl_proto::api::ApiErrorBody),
        (status = 403, description = "forbidden: the token's role may not do this (or no_access_rule)", body = patchctl_proto::api::ApiErrorBody),
        (status = 413, description = "too_large: the body is over the route's limit", body = patchctl_proto::api::ApiErrorBody),
        (status = 415, description = "unsupported_media_type: the body is not JSON (or an unknown Content-Encoding)", body = patchctl_proto::api::ApiErrorBody),
        (status = 503, description = "unavailable: the database (or the vulnerability correlation) cannot answer right now; retry. overloaded: the node holds agent_requests_in_flight database-bound agent requests already; retry after Retry-After seconds", body = patchctl_proto::api::ApiErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait before retrying (overloaded: 1 to 5, drawn at random)")))
    ),
    security(("agent_credential" = [])),
)]
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
                tracing::info!(host_id = %agent.host_id, command_id = %r.command_id, status = ?r.status, "result stored");
                command_event(&st, agent.org_id, agent.host_id, r).await;
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

/// `command.succeeded` or `command.failed` for a result just stored.
async fn command_event(
    st: &AppState,
    org_id: uuid::Uuid,
    host_id: uuid::Uuid,
    r: &patchctl_proto::command::CommandResult,
) {
    use patchctl_proto::command::ResultStatus;
    use patchctl_proto::policy::webhooks::WebhookEvent;
    let kind = match st.store.command(org_id, r.command_id).await {
        Ok(Some(c)) => c.kind,
        _ => String::new(),
    };
    let event = match r.status {
        ResultStatus::Succeeded => WebhookEvent::CommandSucceeded {
            command_id: r.command_id,
            host_id,
            kind,
        },
        ResultStatus::Failed | ResultStatus::Rejected => WebhookEvent::CommandFailed {
            command_id: r.command_id,
            host_id,
            kind,
            state: if r.status == ResultStatus::Failed {
                "failed"
            } else {
                "rejected"
            }
            .to_owned(),
            error: Some(r.summary.chars().take(500).collect()),
        },
    };
    crate::webhooks::emit(&*st.store, org_id, &event).await;
}
