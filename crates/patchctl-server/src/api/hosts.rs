//! The hosts of the operator's organisation: list (optionally by status), show,
//! packages, available updates, metrics history, revocation, and the approval of hosts
//! that wait for it (approve; reject, which revokes). Every change of a host's standing
//! forgets its cached credentials and is an audit event.

use axum::extract::{OriginalUri, Path, Query, State};
use axum::response::Response;
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use patchctl_proto::agent::Metrics;
use patchctl_proto::api::{HostDetail, HostPackages, HostStatus, HostSummary, HostUpdates};
use patchctl_proto::trust::Approval;
use patchctl_storage::{ApprovalChange, HostRow};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::paging::{self, PageQuery};
use super::resolve_host;
use crate::AppState;
use crate::access::OperatorAuth;
use crate::audit::AuditDetails;
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
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListHostsQuery {
    /// Only hosts of this status: `online`, `offline`, `revoked` or `pending`.
    pub status: Option<String>,
    /// Hosts per page (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// Where to go on: `X-Next-Cursor` of the previous page.
    pub cursor: Option<String>,
}

/// `GET /api/v1/hosts` (`?status=pending`: the hosts waiting for approval), by host
/// name, one page at a time (keyset on host name and id).
#[utoipa::path(
    get,
    path = "/api/v1/hosts",
    tag = "hosts",
    params(ListHostsQuery),
    responses(
        (status = 200, description = "The hosts, by host name, one page", body = Vec<HostSummary>, headers(("X-Next-Cursor" = String, description = "Present when there is more: the cursor of the next page"), ("Link" = String, description = "Present when there is more: `<PATH?cursor=...&limit=N>; rel=\"next\"`"))),
        (status = 400, description = "bad_request: the request is malformed (parameters or body); the message says which", body = patchctl_proto::api::ApiErrorBody),
        (status = 401, description = "unauthorized: no valid bearer token", body = patchctl_proto::api::ApiErrorBody),
        (status = 403, description = "forbidden: the token's role may not do this (or no_access_rule)", body = patchctl_proto::api::ApiErrorBody),
        (status = 503, description = "unavailable: the database (or the vulnerability correlation) cannot answer right now; retry", body = patchctl_proto::api::ApiErrorBody)
    ),
)]
pub async fn list_hosts(
    State(st): State<AppState>,
    op: OperatorAuth,
    OriginalUri(uri): OriginalUri,
    Query(q): Query<ListHostsQuery>,
) -> Result<Response, ApiError> {
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
    let page = PageQuery {
        limit: q.limit,
        cursor: q.cursor,
    };
    let limit = page.limit()?;
    let mut after: Option<(String, Uuid)> = page.position()?;
    let now = Utc::now();
    // One more than a page, to know whether there is a next one. The status is derived
    // from the time, so it filters here: read on until the page is full or the hosts
    // run out.
    let want_rows = limit as usize + 1;
    let mut rows: Vec<(HostSummary, HostRow)> = Vec::with_capacity(want_rows);
    loop {
        let batch = st
            .store
            .list_hosts_page(op.org_id, after.take(), limit + 1)
            .await?;
        let exhausted = batch.len() < want_rows;
        for h in batch {
            after = Some((h.hostname.clone(), h.id));
            let s = summary(&st, &h, now);
            if want.is_none_or(|w| s.status == w) {
                rows.push((s, h));
                if rows.len() == want_rows {
                    break;
                }
            }
        }
        if exhausted || rows.len() == want_rows {
            break;
        }
    }
    let (rows, next) = paging::cut(rows, limit, |(s, _)| (s.hostname.clone(), s.id));
    let mut out = Vec::with_capacity(rows.len());
    for (mut s, h) in rows {
        s.vulnerability_data = st.vulns.data_words(&h).await;
        out.push(s);
    }
    Ok(paging::paged(&uri, out, next))
}

/// `GET /api/v1/hosts/{host}`.
#[utoipa::path(
    get,
    path = "/api/v1/hosts/{host}",
    tag = "hosts",
    params(("host" = String, Path, description = "Host id or host name")),
    responses(
        (status = 200, description = "The host", body = HostDetail),
        (status = 401, description = "unauthorized: no valid bearer token", body = patchctl_proto::api::ApiErrorBody),
        (status = 403, description = "forbidden: the token's role may not do this (or no_access_rule)", body = patchctl_proto::api::ApiErrorBody),
        (status = 404, description = "not_found", body = patchctl_proto::api::ApiErrorBody),
        (status = 409, description = "conflict", body = patchctl_proto::api::ApiErrorBody),
        (status = 503, description = "unavailable: the database (or the vulnerability correlation) cannot answer right now; retry", body = patchctl_proto::api::ApiErrorBody)
    ),
)]
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
        reboot: Some(crate::reboots::host_reboot(&h.boot)),
    }))
}

/// `GET /api/v1/hosts/{host}/packages`.
#[utoipa::path(
    get,
    path = "/api/v1/hosts/{host}/packages",
    tag = "hosts",
    params(("host" = String, Path, description = "Host id or host name")),
    responses(
        (status = 200, description = "The installed packages", body = HostPackages),
        (status = 401, description = "unauthorized: no valid bearer token", body = patchctl_proto::api::ApiErrorBody),
        (status = 403, description = "forbidden: the token's role may not do this (or no_access_rule)", body = patchctl_proto::api::ApiErrorBody),
        (status = 404, description = "not_found", body = patchctl_proto::api::ApiErrorBody),
        (status = 409, description = "conflict", body = patchctl_proto::api::ApiErrorBody),
        (status = 503, description = "unavailable: the database (or the vulnerability correlation) cannot answer right now; retry", body = patchctl_proto::api::ApiErrorBody)
    ),
)]
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
#[utoipa::path(
    get,
    path = "/api/v1/hosts/{host}/updates",
    tag = "hosts",
    params(("host" = String, Path, description = "Host id or host name")),
    responses(
        (status = 200, description = "The available updates", body = HostUpdates),
        (status = 401, description = "unauthorized: no valid bearer token", body = patchctl_proto::api::ApiErrorBody),
        (status = 403, description = "forbidden: the token's role may not do this (or no_access_rule)", body = patchctl_proto::api::ApiErrorBody),
        (status = 404, description = "not_found", body = patchctl_proto::api::ApiErrorBody),
        (status = 409, description = "conflict", body = patchctl_proto::api::ApiErrorBody),
        (status = 503, description = "unavailable: the database (or the vulnerability correlation) cannot answer right now; retry", body = patchctl_proto::api::ApiErrorBody)
    ),
)]
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
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MetricsSample {
    /// When it arrived.
    pub at: DateTime<Utc>,
    /// The metrics.
    pub metrics: Metrics,
}

/// `GET /api/v1/hosts/{host}/metrics`: the bounded history, oldest first.
#[utoipa::path(
    get,
    path = "/api/v1/hosts/{host}/metrics",
    tag = "hosts",
    params(("host" = String, Path, description = "Host id or host name")),
    responses(
        (status = 200, description = "The metrics history, oldest first", body = Vec<MetricsSample>),
        (status = 401, description = "unauthorized: no valid bearer token", body = patchctl_proto::api::ApiErrorBody),
        (status = 403, description = "forbidden: the token's role may not do this (or no_access_rule)", body = patchctl_proto::api::ApiErrorBody),
        (status = 404, description = "not_found", body = patchctl_proto::api::ApiErrorBody),
        (status = 409, description = "conflict", body = patchctl_proto::api::ApiErrorBody),
        (status = 503, description = "unavailable: the database (or the vulnerability correlation) cannot answer right now; retry", body = patchctl_proto::api::ApiErrorBody)
    ),
)]
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
#[utoipa::path(
    post,
    path = "/api/v1/hosts/{host}/revoke",
    tag = "hosts",
    params(("host" = String, Path, description = "Host id or host name")),
    responses(
        (status = 200, description = "The host, revoked", body = HostSummary),
        (status = 401, description = "unauthorized: no valid bearer token", body = patchctl_proto::api::ApiErrorBody),
        (status = 403, description = "forbidden: the token's role may not do this (or no_access_rule)", body = patchctl_proto::api::ApiErrorBody),
        (status = 404, description = "not_found", body = patchctl_proto::api::ApiErrorBody),
        (status = 409, description = "conflict", body = patchctl_proto::api::ApiErrorBody),
        (status = 503, description = "unavailable: the database (or the vulnerability correlation) cannot answer right now; retry", body = patchctl_proto::api::ApiErrorBody)
    ),
)]
pub async fn revoke_host(
    State(st): State<AppState>,
    op: OperatorAuth,
    Path(host): Path<String>,
) -> Result<(Extension<AuditDetails>, Json<HostSummary>), ApiError> {
    let h = resolve_host(&st, op.org_id, &host).await?;
    // Revoking announces it: every node forgets the host's cached credentials.
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
    crate::webhooks::emit(
        &*st.store,
        op.org_id,
        &patchctl_proto::policy::webhooks::WebhookEvent::HostRevoked {
            host_id: h.id,
            hostname: h.hostname.clone(),
        },
    )
    .await;
    let details = host_details(&h, serde_json::json!({"revoked": true}));
    let h = resolve_host(&st, op.org_id, &h.id.to_string()).await?;
    Ok((details, Json(summary(&st, &h, Utc::now()))))
}

/// `POST /api/v1/hosts/{host}/approve`: a host waiting for approval may use the agent
/// API from now on.
#[utoipa::path(
    post,
    path = "/api/v1/hosts/{host}/approve",
    tag = "hosts",
    params(("host" = String, Path, description = "Host id or host name")),
    responses(
        (status = 200, description = "The host, approved", body = HostSummary),
        (status = 401, description = "unauthorized: no valid bearer token", body = patchctl_proto::api::ApiErrorBody),
        (status = 403, description = "forbidden: the token's role may not do this (or no_access_rule)", body = patchctl_proto::api::ApiErrorBody),
        (status = 404, description = "not_found", body = patchctl_proto::api::ApiErrorBody),
        (status = 409, description = "conflict", body = patchctl_proto::api::ApiErrorBody),
        (status = 503, description = "unavailable: the database (or the vulnerability correlation) cannot answer right now; retry", body = patchctl_proto::api::ApiErrorBody)
    ),
)]
pub async fn approve_host(
    State(st): State<AppState>,
    op: OperatorAuth,
    Path(host): Path<String>,
) -> Result<(Extension<AuditDetails>, Json<HostSummary>), ApiError> {
    decide(st, op, &host, true).await
}

/// `POST /api/v1/hosts/{host}/reject`: a host waiting for approval is refused for good
/// (revoked).
#[utoipa::path(
    post,
    path = "/api/v1/hosts/{host}/reject",
    tag = "hosts",
    params(("host" = String, Path, description = "Host id or host name")),
    responses(
        (status = 200, description = "The host, rejected and revoked", body = HostSummary),
        (status = 401, description = "unauthorized: no valid bearer token", body = patchctl_proto::api::ApiErrorBody),
        (status = 403, description = "forbidden: the token's role may not do this (or no_access_rule)", body = patchctl_proto::api::ApiErrorBody),
        (status = 404, description = "not_found", body = patchctl_proto::api::ApiErrorBody),
        (status = 409, description = "conflict", body = patchctl_proto::api::ApiErrorBody),
        (status = 503, description = "unavailable: the database (or the vulnerability correlation) cannot answer right now; retry", body = patchctl_proto::api::ApiErrorBody)
    ),
)]
pub async fn reject_host(
    State(st): State<AppState>,
    op: OperatorAuth,
    Path(host): Path<String>,
) -> Result<(Extension<AuditDetails>, Json<HostSummary>), ApiError> {
    decide(st, op, &host, false).await
}

async fn decide(
    st: AppState,
    op: OperatorAuth,
    host: &str,
    approve: bool,
) -> Result<(Extension<AuditDetails>, Json<HostSummary>), ApiError> {
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
            let details = host_details(
                &h,
                serde_json::json!({"approval": if approve { "approved" } else { "rejected" }}),
            );
            let h = resolve_host(&st, op.org_id, &h.id.to_string()).await?;
            Ok((details, Json(summary(&st, &h, now))))
        }
        ApprovalChange::NotFound => Err(ApiError::not_found(format!(
            "no host {host:?}; `patchctl hosts list` shows the hosts you can see"
        ))),
        ApprovalChange::NotPending => {
            let h = resolve_host(&st, op.org_id, &h.id.to_string()).await?;
            let is = summary(&st, &h, now).status;
            let what = match (approve, h.approval, h.revoked) {
                (true, Approval::Approved, false) => {
                    let details =
                        host_details(&h, serde_json::json!({"approval": "approved already"}));
                    return Ok((details, Json(summary(&st, &h, now))));
                }
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

/// What a change of a host's standing says in the audit trail: the host's id and name
/// and `change` (an object) merged in.
fn host_details(h: &HostRow, change: serde_json::Value) -> Extension<AuditDetails> {
    let mut d = serde_json::json!({"host_id": h.id, "hostname": h.hostname});
    if let (Some(d), serde_json::Value::Object(c)) = (d.as_object_mut(), change) {
        d.extend(c);
    }
    Extension(AuditDetails(d))
}
