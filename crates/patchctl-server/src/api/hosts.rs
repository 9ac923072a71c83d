//! The hosts of the operator's organisation: list (optionally by status), show,
//! packages, available updates, metrics history, revocation, and the approval of hosts
//! that wait for it (approve; reject, which revokes). Every change of a host's standing
//! forgets its cached credentials and is an audit event.

use axum::Json;
use axum::extract::{Path, Query, State};
use chrono::{DateTime, Utc};
use patchctl_proto::agent::Metrics;
use patchctl_proto::api::{HostDetail, HostPackages, HostStatus, HostSummary, HostUpdates};
use patchctl_proto::trust::Approval;
use patchctl_storage::{ApprovalChange, HostRow};
use serde::{Deserialize, Serialize};

use super::resolve_host;
use crate::AppState;
use crate::access::OperatorAuth;
use crate::error::ApiError;

pub(crate) fn summary(st: &AppState, h: &HostRow, now: DateTime<Utc>) -> HostSummary {
    let status = if h.revoked {
        HostStatus::Revoked
    } else if h.approval == Approval::Pending {
        HostStatus::Pending
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
        agent_update: h.agent_update.clone(),
        vulnerability_data: None,
    }
}

/// Query of `GET /api/v1/hosts`.
#[derive(Debug, Deserialize)]
pub struct ListHostsQuery {
    /// Only hosts of this status: `online`, `offline`, `revoked` or `pending`.
    pub status: Option<String>,
}

/// `GET /api/v1/hosts` (`?status=pending`: the hosts waiting for approval).
pub async fn list_hosts(
    State(st): State<AppState>,
    op: OperatorAuth,
    Query(q): Query<ListHostsQuery>,
) -> Result<Json<Vec<HostSummary>>, ApiError> {
    let want = match q.status.as_deref() {
        None | Some("") => None,
        Some(s) => Some(
            [
                HostStatus::Online,
                HostStatus::Offline,
                HostStatus::Revoked,
                HostStatus::Pending,
            ]
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "unknown host status {s:?}; use online, offline, revoked or pending"
                ))
            })?,
        ),
    };
    let now = Utc::now();
    let hosts = st.store.list_hosts(op.org_id).await?;
    let mut out = Vec::with_capacity(hosts.len());
    for h in &hosts {
        let mut s = summary(&st, h, now);
        if want.is_some_and(|w| s.status != w) {
            continue;
        }
        s.vulnerability_data = st.vulns.data_words(h).await;
        out.push(s);
    }
    Ok(Json(out))
}

/// `GET /api/v1/hosts/{host}`.
pub async fn show_host(
    State(st): State<AppState>,
    op: OperatorAuth,
    Path(host): Path<String>,
) -> Result<Json<HostDetail>, ApiError> {
    let h = resolve_host(&st, op.org_id, &host).await?;
    let mut summary = summary(&st, &h, Utc::now());
    summary.vulnerability_data = st.vulns.data_words(&h).await;
    Ok(Json(HostDetail {
        summary,
        system: h.system,
        metrics: h.metrics,
        metrics_at: h.metrics_at,
        inventory_scanned_at: h.inventory_scanned_at,
        package_manager: h.package_manager,
        credential_issued_at: Some(h.credential_issued_at),
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
    tracing::info!(
        target: "audit",
        event = "host.revoked",
        org_id = %op.org_id,
        host_id = %h.id,
        actor = %op.actor(),
        "host credential revoked by operator"
    );
    let h = resolve_host(&st, op.org_id, &h.id.to_string()).await?;
    Ok(Json(summary(&st, &h, Utc::now())))
}

/// `POST /api/v1/hosts/{host}/approve`: a host waiting for approval may use the agent
/// API from now on.
pub async fn approve_host(
    State(st): State<AppState>,
    op: OperatorAuth,
    Path(host): Path<String>,
) -> Result<Json<HostSummary>, ApiError> {
    decide(st, op, &host, true).await
}

/// `POST /api/v1/hosts/{host}/reject`: a host waiting for approval is refused for good
/// (revoked).
pub async fn reject_host(
    State(st): State<AppState>,
    op: OperatorAuth,
    Path(host): Path<String>,
) -> Result<Json<HostSummary>, ApiError> {
    decide(st, op, &host, false).await
}

async fn decide(
    st: AppState,
    op: OperatorAuth,
    host: &str,
    approve: bool,
) -> Result<Json<HostSummary>, ApiError> {
    let h = resolve_host(&st, op.org_id, host).await?;
    let change = st.store.set_approval(op.org_id, h.id, approve).await?;
    st.agents.forget_host(h.id);
    let now = Utc::now();
    match change {
        ApprovalChange::Changed => {
            tracing::info!(
                target: "audit",
                event = if approve { "host.approved" } else { "host.rejected" },
                org_id = %op.org_id,
                host_id = %h.id,
                actor = %op.actor(),
                "host approval decided"
            );
            let h = resolve_host(&st, op.org_id, &h.id.to_string()).await?;
            Ok(Json(summary(&st, &h, now)))
        }
        ApprovalChange::NotFound => Err(ApiError::not_found(format!(
            "no host {host:?}; `patchctl hosts list` shows the hosts you can see"
        ))),
        ApprovalChange::NotPending => {
            let h = resolve_host(&st, op.org_id, &h.id.to_string()).await?;
            let is = summary(&st, &h, now).status;
            let what = match (approve, h.approval, h.revoked) {
                (true, Approval::Approved, false) => return Ok(Json(summary(&st, &h, now))),
                (_, Approval::Rejected, _) => {
                    "it was rejected; a rejected host comes back only by enrolling anew (`patchctl-agent reenroll` on the host)"
                }
                (_, _, true) => {
                    "it is revoked; a revoked host comes back only by enrolling anew (`patchctl-agent reenroll` on the host)"
                }
                _ => "it is approved already; to shut it out, revoke it (`patchctl hosts revoke`)",
            };
            Err(ApiError::conflict(format!(
                "host {} ({}) is not waiting for approval (status {}): {what}",
                h.id,
                h.hostname,
                is.as_str()
            )))
        }
    }
}
