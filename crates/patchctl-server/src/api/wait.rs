//! `POST /api/v1/agent/commands/wait`: the agent's long-poll (issue 16). The node holds
//! the request until a command is queued for the host (announced by whichever node
//! queued it: `crate::changes`, `crate::longpoll`), leases it as a heartbeat would and
//! answers at once; or answers with no command after `wait_secs`, cut to
//! `long_poll_max_secs` (at most an hour). With `long_poll_max_secs` 0 it answers at
//! once with `waited_max_secs: 0`, and the agent waits for its heartbeats instead.
//!
//! Waiting costs no database work; the database is read only when the host was woken
//! (or a wake came since its last long-poll).

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use chrono::Utc;
use patchctl_proto::agent::{CommandWaitRequest, CommandWaitResponse};
use tokio::time::Instant;

use crate::AppState;
use crate::auth::AgentAuth;
use crate::error::{ApiError, ApiJson};

/// Most commands handed out per answer (as a heartbeat's).
const MAX_COMMANDS: u32 = 16;
/// The longest hold, whatever `long_poll_max_secs` says.
const MAX_HOLD_SECS: u64 = 3600;

/// `POST /api/v1/agent/commands/wait`: held until a command is queued for the host.
#[utoipa::path(
    post,
    path = "/api/v1/agent/commands/wait",
    tag = "agent",
    request_body = CommandWaitRequest,
    responses(
        (status = 200, description = "A command was queued (leased to this agent), or the wait ended without one", body = CommandWaitResponse),
        (status = 400, description = "bad_request: the request is malformed (parameters or body); the message says which", body = patchctl_proto::api::ApiErrorBody),
        (status = 401, description = "unauthorized: no valid bearer token", body = patchctl_proto::api::ApiErrorBody),
        (status = 403, description = "forbidden: the credential is revoked, or the host waits for approval", body = patchctl_proto::api::ApiErrorBody),
        (status = 413, description = "too_large: the body is over the route's limit", body = patchctl_proto::api::ApiErrorBody),
        (status = 415, description = "unsupported_media_type: the body is not JSON (or an unknown Content-Encoding)", body = patchctl_proto::api::ApiErrorBody),
        (status = 503, description = "unavailable: the database cannot answer right now; retry", body = patchctl_proto::api::ApiErrorBody)
    ),
    security(("agent_credential" = [])),
)]
pub async fn wait(
    State(st): State<AppState>,
    agent: AgentAuth,
    ApiJson(req): ApiJson<CommandWaitRequest>,
) -> Result<Json<CommandWaitResponse>, ApiError> {
    let max = st.settings.long_poll_max_secs.min(MAX_HOLD_SECS);
    let command_key = st.signer.announce(
        agent.org_id,
        req.command_key_id.as_deref(),
        req.approvers_serial,
    );
    let answer = |commands| {
        Json(CommandWaitResponse {
            server_time: Utc::now(),
            commands,
            waited_max_secs: u32::try_from(max).unwrap_or(u32::MAX),
            command_key: command_key.clone(),
        })
    };
    if max == 0 {
        return Ok(answer(Vec::new()));
    }
    let until = Instant::now() + Duration::from_secs(u64::from(req.wait_secs).min(max));
    let mut waiter = st.waiters.register(agent.host_id);
    st.metrics.traffic.long_poll();
    loop {
        if waiter.due {
            waiter.due = false;
            let commands = st
                .store
                .lease_commands(
                    agent.host_id,
                    Utc::now(),
                    Duration::from_secs(st.settings.command_lease_secs),
                    MAX_COMMANDS,
                )
                .await?;
            if !commands.is_empty() {
                for c in &commands {
                    tracing::info!(host_id = %agent.host_id, command_id = %c.id, kind = %c.kind, "command delivered by long-poll");
                }
                return Ok(answer(commands));
            }
        }
        tokio::select! {
            _ = waiter.woken() => {}
            _ = tokio::time::sleep_until(until) => return Ok(answer(Vec::new())),
            // The node stops: the agent comes back through another one.
            _ = st.drain.started() => return Ok(answer(Vec::new())),
        }
    }
}
