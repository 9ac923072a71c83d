//! `POST /api/v1/agent/heartbeat`: records the host's metrics through the group-commit
//! writer and hands out its queued commands.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use chrono::Utc;
use patchctl_proto::agent::{HeartbeatRequest, HeartbeatResponse};
use patchctl_storage::HeartbeatWrite;

use crate::AppState;
use crate::auth::AgentAuth;
use crate::error::{ApiError, ApiJson};

/// Most commands handed out per heartbeat.
const MAX_COMMANDS_PER_HEARTBEAT: u32 = 16;

/// `POST /api/v1/agent/heartbeat`: records metrics, hands out queued commands.
pub async fn heartbeat(
    State(st): State<AppState>,
    agent: AgentAuth,
    ApiJson(req): ApiJson<HeartbeatRequest>,
) -> Result<Json<HeartbeatResponse>, ApiError> {
    let now = Utc::now();
    let pending = st
        .heartbeats
        .record(HeartbeatWrite {
            host_id: agent.host_id,
            agent_version: req.agent_version,
            metrics: req.metrics,
            at: now,
        })
        .await?;
    // Lease only when the batch reported this host with queued or delivered commands
    // (`pending_commands` of the heartbeat transaction). That answer is the only
    // "anything pending?" check on this path: `lease_commands` is not expected to ask
    // again, so calling it unconditionally would cost every idle heartbeat (nearly all
    // of them) a lease transaction.
    let commands = if pending {
        st.store
            .lease_commands(
                agent.host_id,
                now,
                Duration::from_secs(st.settings.command_lease_secs),
                MAX_COMMANDS_PER_HEARTBEAT,
            )
            .await?
    } else {
        Vec::new()
    };
    for c in &commands {
        tracing::info!(host_id = %agent.host_id, command_id = %c.id, kind = %c.kind, "command delivered");
    }
    Ok(Json(HeartbeatResponse {
        server_time: now,
        commands,
        agent_update: None,
    }))
}
