//! The operator API (`/api/v1/...`, bearer API token), confined to the token's
//! organisation: hosts and the command queue.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use patchctl_proto::agent::Metrics;
use patchctl_proto::api::{
    CommandRecord, HostDetail, HostPackages, HostStatus, HostSummary, HostUpdates,
    QueueCommandRequest,
};
use patchctl_proto::command::Command;
use patchctl_storage::{CancelOutcome, HostRow, NewCommand};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::AppState;
use crate::auth::OperatorAuth;
use crate::error::{ApiError, ApiJson};

/// Default life of an undelivered command.
const DEFAULT_EXPIRY_SECS: u64 = 86_400;
/// Longest life of an undelivered command.
const MAX_EXPIRY_SECS: u64 = 30 * 86_400;

fn summary(st: &AppState, h: &HostRow, now: DateTime<Utc>) -> HostSummary {
    let status = if h.revoked {
        HostStatus::Revoked
    } else {
        match h.last_seen {
            Some(seen)
                if (now - seen).to_std().unwrap_or_default() <= st.settings.offline_after() =>
            {
                HostStatus::Online
            }
            _ => HostStatus::Offline,
        }
    };
    HostSummary {
        id: h.id,
        hostname: h.hostname.clone(),
        os: h.system.os.pretty_name.clone(),
        status,
        last_seen: h.last_seen,
        agent_version: h.agent_version.clone(),
        packages: h.package_count,
        updates: h.update_count,
        security_updates: h.security_update_count,
        enrolled_at: h.enrolled_at,
    }
}

/// Resolves a host given as id or host name, within the organisation.
pub(crate) async fn resolve_host(
    st: &AppState,
    org: Uuid,
    host: &str,
) -> Result<HostRow, ApiError> {
    if let Ok(id) = Uuid::parse_str(host) {
        if let Some(h) = st.store.host(org, id).await? {
            return Ok(h);
        }
    }
    let mut found = st.store.hosts_by_name(org, host).await?;
    match found.len() {
        0 => Err(ApiError::not_found(format!(
            "no host {host:?}; `patchctl hosts list` shows the hosts you can see"
        ))),
        1 => Ok(found.remove(0)),
        _ => Err(ApiError::conflict(format!(
            "{} hosts are named {host:?} ({}); give the host id instead",
            found.len(),
            found
                .iter()
                .map(|h| h.id.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// `GET /api/v1/hosts`.
pub async fn list_hosts(
    State(st): State<AppState>,
    op: OperatorAuth,
) -> Result<Json<Vec<HostSummary>>, ApiError> {
    let now = Utc::now();
    let hosts = st.store.list_hosts(op.org_id).await?;
    Ok(Json(hosts.iter().map(|h| summary(&st, h, now)).collect()))
}

/// `GET /api/v1/hosts/{host}`.
pub async fn show_host(
    State(st): State<AppState>,
    op: OperatorAuth,
    Path(host): Path<String>,
) -> Result<Json<HostDetail>, ApiError> {
    let h = resolve_host(&st, op.org_id, &host).await?;
    Ok(Json(HostDetail {
        summary: summary(&st, &h, Utc::now()),
        system: h.system,
        metrics: h.metrics,
        metrics_at: h.metrics_at,
        inventory_scanned_at: h.inventory_scanned_at,
        package_manager: h.package_manager,
    }))
}

/// `GET /api/v1/hosts/{host}/packages`.
pub async fn host_packages(
    State(st): State<AppState>,
    op: OperatorAuth,
    Path(host): Path<String>,
) -> Result<Json<HostPackages>, ApiError> {
    let h = resolve_host(&st, op.org_id, &host).await?;
    let packages = st.store.host_packages(op.org_id, h.id).await?;
    Ok(Json(HostPackages {
        host_id: h.id,
        scanned_at: h.inventory_scanned_at,
        packages,
    }))
}

/// `GET /api/v1/hosts/{host}/updates`: the available updates as the last scan reported
/// them.
pub async fn host_updates(
    State(st): State<AppState>,
    op: OperatorAuth,
    Path(host): Path<String>,
) -> Result<Json<HostUpdates>, ApiError> {
    let h = resolve_host(&st, op.org_id, &host).await?;
    let mut updates = st
        .store
        .host_updates(op.org_id, h.id)
        .await?
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "no host {host:?}; `patchctl hosts list` shows the hosts you can see"
            ))
        })?;
    st.vulns.annotate_updates(h.id, &mut updates).await;
    Ok(Json(updates))
}

/// One metrics sample.
#[derive(Debug, Serialize, Deserialize)]
pub struct MetricsSample {
    /// When it arrived.
    pub at: DateTime<Utc>,
    /// The metrics.
    pub metrics: Metrics,
}

/// `GET /api/v1/hosts/{host}/metrics`: the bounded history, oldest first.
pub async fn host_metrics(
    State(st): State<AppState>,
    op: OperatorAuth,
    Path(host): Path<String>,
) -> Result<Json<Vec<MetricsSample>>, ApiError> {
    let h = resolve_host(&st, op.org_id, &host).await?;
    let hist = st.store.metrics_history(op.org_id, h.id).await?;
    Ok(Json(
        hist.into_iter()
            .map(|(at, metrics)| MetricsSample { at, metrics })
            .collect(),
    ))
}

/// `POST /api/v1/hosts/{host}/revoke`: the agent's credential stops working.
pub async fn revoke_host(
    State(st): State<AppState>,
    op: OperatorAuth,
    Path(host): Path<String>,
) -> Result<Json<HostSummary>, ApiError> {
    let h = resolve_host(&st, op.org_id, &host).await?;
    st.store.revoke_host(op.org_id, h.id).await?;
    st.agents.forget_host(h.id);
    tracing::info!(host_id = %h.id, "host credential revoked by operator");
    let h = resolve_host(&st, op.org_id, &h.id.to_string()).await?;
    Ok(Json(summary(&st, &h, Utc::now())))
}

/// `POST /api/v1/commands`: validates against the whitelist and queues.
pub async fn queue_command(
    State(st): State<AppState>,
    op: OperatorAuth,
    ApiJson(req): ApiJson<QueueCommandRequest>,
) -> Result<(StatusCode, Json<CommandRecord>), ApiError> {
    let host = resolve_host(&st, op.org_id, &req.host).await?;
    if host.revoked {
        return Err(ApiError::conflict(format!(
            "host {} is revoked; it will never collect commands",
            host.id
        )));
    }
    let params = security_updates_as_pairs(&st, op.org_id, host.id, &req.kind, req.params).await?;
    let cmd =
        Command::parse(&req.kind, &params).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let secs = req.expires_in_secs.unwrap_or(DEFAULT_EXPIRY_SECS);
    if secs == 0 || secs > MAX_EXPIRY_SECS {
        return Err(ApiError::bad_request(format!(
            "expires_in_secs is {secs}; use 1 to {MAX_EXPIRY_SECS}"
        )));
    }
    let now = Utc::now();
    let rec = st
        .store
        .queue_command(NewCommand {
            org_id: op.org_id,
            host_id: host.id,
            kind: cmd.kind().to_owned(),
            params: cmd.params(),
            now,
            expires_at: now + chrono::Duration::seconds(secs as i64),
        })
        .await?;
    tracing::info!(command_id = %rec.id, host_id = %host.id, kind = %rec.kind, "command queued");
    Ok((StatusCode::CREATED, Json(rec)))
}

/// `install_updates` with `{"security_updates": true}` (or `"true"`, as the CLI's
/// `--param security_updates=true` sends it): every security update of the host's last
/// scan, resolved here into exact `name` + `version` pairs, which is all the agent ever
/// receives. Any other parameters pass through unchanged.
async fn security_updates_as_pairs(
    st: &AppState,
    org_id: Uuid,
    host_id: Uuid,
    kind: &str,
    params: serde_json::Value,
) -> Result<serde_json::Value, ApiError> {
    let asked = kind == "install_updates"
        && params.as_object().is_some_and(|o| {
            o.len() == 1
                && o.get("security_updates").is_some_and(|v| {
                    v == &serde_json::Value::Bool(true) || v.as_str() == Some("true")
                })
        });
    if !asked {
        return Ok(params);
    }
    let updates = st.store.host_updates(org_id, host_id).await?;
    let Some(mut updates) = updates.filter(|u| u.scanned_at.is_some()) else {
        return Err(ApiError::conflict(format!(
            "host {host_id} has not reported available updates yet; wait for its next scan or queue check_updates"
        )));
    };
    st.vulns.annotate_updates(host_id, &mut updates).await;
    let packages: Vec<serde_json::Value> = updates
        .updates
        .iter()
        .filter(|u| u.security)
        .map(|u| serde_json::json!({"name": u.name, "version": u.candidate_version}))
        .collect();
    if packages.is_empty() {
        return Err(ApiError::conflict(format!(
            "host {host_id} has no security updates in its last scan; nothing to install"
        )));
    }
    Ok(serde_json::json!({ "packages": packages }))
}

/// Query of `GET /api/v1/commands`.
#[derive(Debug, Deserialize)]
pub struct ListCommandsQuery {
    /// Host id or name.
    pub host: Option<String>,
    /// At most this many (default 50, at most 1000).
    pub limit: Option<u32>,
}

/// `GET /api/v1/commands`.
pub async fn list_commands(
    State(st): State<AppState>,
    op: OperatorAuth,
    Query(q): Query<ListCommandsQuery>,
) -> Result<Json<Vec<CommandRecord>>, ApiError> {
    let host_id = match &q.host {
        Some(h) => Some(resolve_host(&st, op.org_id, h).await?.id),
        None => None,
    };
    let limit = q.limit.unwrap_or(50).clamp(1, 1000);
    Ok(Json(
        st.store.list_commands(op.org_id, host_id, limit).await?,
    ))
}

fn parse_command_id(id: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id)
        .map_err(|_| ApiError::bad_request(format!("{id:?} is not a command id (a UUID)")))
}

/// `GET /api/v1/commands/{id}`.
pub async fn show_command(
    State(st): State<AppState>,
    op: OperatorAuth,
    Path(id): Path<String>,
) -> Result<Json<CommandRecord>, ApiError> {
    let id = parse_command_id(&id)?;
    st.store
        .command(op.org_id, id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no command {id}")))
}

/// `POST /api/v1/commands/{id}/cancel`.
pub async fn cancel_command(
    State(st): State<AppState>,
    op: OperatorAuth,
    Path(id): Path<String>,
) -> Result<Json<CommandRecord>, ApiError> {
    let id = parse_command_id(&id)?;
    match st.store.cancel_command(op.org_id, id, Utc::now()).await? {
        CancelOutcome::Cancelled => {
            tracing::info!(command_id = %id, "command cancelled by operator");
            st.store
                .command(op.org_id, id)
                .await?
                .map(Json)
                .ok_or_else(|| ApiError::not_found(format!("no command {id}")))
        }
        CancelOutcome::NotFound => Err(ApiError::not_found(format!("no command {id}"))),
        CancelOutcome::NotCancellable(state) => Err(ApiError::conflict(format!(
            "command {id} is {}; only queued commands can be cancelled",
            state.as_str()
        ))),
    }
}
