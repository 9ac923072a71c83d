//! `POST /api/v1/agent/heartbeat`: records the host's metrics (and its agent target)
//! through the group-commit writer, stores the steps of the agent's own update it
//! reports (rare: only when there are some, each an audit event), hands out its queued
//! commands (none to a binary on trial), and offers the release the organisation's rollout wants it to run
//! (`crate::releases::ReleaseCache`, no database round trip on most heartbeats).

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use chrono::Utc;
use patchctl_proto::agent::{HeartbeatRequest, HeartbeatResponse};
use patchctl_proto::release::{UpdateEvent, UpdateStep};
use patchctl_storage::HeartbeatWrite;
use uuid::Uuid;

use crate::AppState;
use crate::auth::AgentAuth;
use crate::error::{ApiError, ApiJson};

/// Most commands handed out per heartbeat.
const MAX_COMMANDS_PER_HEARTBEAT: u32 = 16;
/// Most update events kept of one heartbeat (the latest); an agent reports a handful.
const MAX_UPDATE_EVENTS: usize = 64;
/// Longest detail of an update event kept, in characters.
const MAX_DETAIL_CHARS: usize = 2_000;

/// A target triple as the agent reported it, if it is one (1–64 letters, digits, `.`,
/// `_`, `-`, as a manifest's target must be).
fn target(t: Option<String>) -> Option<String> {
    t.filter(|t| {
        !t.is_empty()
            && t.len() <= 64
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    })
}

/// The events kept: the latest [`MAX_UPDATE_EVENTS`], versions and details cut to size.
fn bounded(mut events: Vec<UpdateEvent>) -> Vec<UpdateEvent> {
    if events.len() > MAX_UPDATE_EVENTS {
        events.drain(..events.len() - MAX_UPDATE_EVENTS);
    }
    for e in &mut events {
        e.version = e.version.chars().take(64).collect();
        if let Some(d) = &mut e.detail {
            *d = d.chars().take(MAX_DETAIL_CHARS).collect();
        }
    }
    events
}

/// Each step an audit event; a refusal or a rollback at warn level.
fn audit(org_id: Uuid, host_id: Uuid, e: &UpdateEvent) {
    let actor = format!("host {host_id}");
    let event = format!("agent_update.{}", e.step.as_str());
    let detail = e.detail.as_deref().unwrap_or("");
    match e.step {
        UpdateStep::Refused | UpdateStep::RolledBack => tracing::warn!(
            target: "audit",
            event = %event,
            org_id = %org_id,
            host_id = %host_id,
            actor = %actor,
            step = e.step.as_str(),
            version = %e.version,
            at = %e.at,
            detail = %detail,
            "agent update {}", e.step.as_str()
        ),
        _ => tracing::info!(
            target: "audit",
            event = %event,
            org_id = %org_id,
            host_id = %host_id,
            actor = %actor,
            step = e.step.as_str(),
            version = %e.version,
            at = %e.at,
            "agent update {}", e.step.as_str()
        ),
    }
}

/// `POST /api/v1/agent/heartbeat`: records metrics and update steps, hands out queued
/// commands and the update offer.
#[utoipa::path(
    post,
    path = "/api/v1/agent/heartbeat",
    tag = "agent",
    request_body = HeartbeatRequest,
    responses(
        (status = 200, description = "Accepted: commands to run, what to do next", body = HeartbeatResponse),
        (status = 400, description = "bad_request: the request is malformed (parameters or body); the message says which", body = patchctl_proto::api::ApiErrorBody),
        (status = 401, description = "unauthorized: no valid bearer token", body = patchctl_proto::api::ApiErrorBody),
        (status = 403, description = "forbidden: the token's role may not do this (or no_access_rule)", body = patchctl_proto::api::ApiErrorBody),
        (status = 413, description = "too_large: the body is over the route's limit", body = patchctl_proto::api::ApiErrorBody),
        (status = 415, description = "unsupported_media_type: the body is not JSON (or an unknown Content-Encoding)", body = patchctl_proto::api::ApiErrorBody),
        (status = 503, description = "unavailable: the database (or the vulnerability correlation) cannot answer right now; retry", body = patchctl_proto::api::ApiErrorBody)
    ),
    security(("agent_credential" = [])),
)]
pub async fn heartbeat(
    State(st): State<AppState>,
    agent: AgentAuth,
    ApiJson(req): ApiJson<HeartbeatRequest>,
) -> Result<Json<HeartbeatResponse>, ApiError> {
    let now = Utc::now();
    let agent_target = target(req.agent_target);
    let pending = st
        .heartbeats
        .record(HeartbeatWrite {
            host_id: agent.host_id,
            agent_version: req.agent_version.clone(),
            agent_target: agent_target.clone(),
            metrics: req.metrics,
            at: now,
            reboot: crate::reboots::report(req.reboot.clone(), req.booted_at),
        })
        .await?;
    st.metrics.traffic.heartbeat();
    // Update events are rare (a few per update): written only when there are some, so
    // the idle heartbeat stays one row of the group commit. An error answers the
    // heartbeat with 503, and the agent sends the events again.
    if !req.update_events.is_empty() {
        let events = bounded(req.update_events);
        st.store
            .record_update_events(agent.host_id, &events, now)
            .await?;
        for e in &events {
            audit(agent.org_id, agent.host_id, e);
        }
    }
    // Lease only when the batch reported this host with queued or delivered commands
    // (`pending_commands` of the heartbeat transaction). That answer is the only
    // "anything pending?" check on this path: `lease_commands` is not expected to ask
    // again, so calling it unconditionally would cost every idle heartbeat (nearly all
    // of them) a lease transaction.
    // A new agent binary on trial (self-update) only proves that it reaches the
    // platform and exits: it gets no command (those wait for the agent that takes over)
    // and no offer.
    let commands = if pending && !req.trial {
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
    // The heartbeat is recorded and its commands leased: a failure to decide the offer
    // only postpones it to a later heartbeat.
    let agent_update = if req.trial {
        None
    } else {
        match st
            .releases
            .offer(
                st.store.as_ref(),
                agent.org_id,
                agent.host_id,
                &req.agent_version,
                agent_target.as_deref(),
            )
            .await
        {
            Ok(offer) => offer,
            Err(e) => {
                tracing::warn!(host_id = %agent.host_id, error = %e, "could not decide the agent update offer; none this heartbeat");
                None
            }
        }
    };
    let command_key = st.signer.announce(
        agent.org_id,
        req.command_key_id.as_deref(),
        req.approvers_serial,
    );
    Ok(Json(HeartbeatResponse {
        server_time: now,
        commands,
        agent_update,
        command_key,
    }))
}
