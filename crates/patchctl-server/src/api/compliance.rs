//! Remediation deadlines, exceptions and compliance of the operator's organisation:
//! `GET/PUT /api/v1/deadline-policy`, `GET/POST /api/v1/exceptions`,
//! `GET /api/v1/exceptions/{exception}`, `POST /api/v1/exceptions/{exception}/revoke`,
//! `GET /api/v1/compliance` and `GET /api/v1/compliance/overdue`.
//!
//! The service functions ([`create_exception`], [`revoke_exception`], [`put_policy`],
//! [`report`], [`overdue`]) are what the dashboard calls too. The math is
//! `patchctl_policy::deadline`; the walk over the fleet is the CVE engine's
//! ([`crate::engine::VulnEngine::compliance`]).

use std::collections::HashSet;

use axum::extract::{OriginalUri, Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Json};
use chrono::{DateTime, Duration, Utc};
use patchctl_policy::deadline::DeadlinePolicy;
use patchctl_proto::policy::deadlines::{
    ComplianceReport, DeadlineDays, DeadlineDaysRequest, DeadlinePolicyView, ExceptionScopeView,
    ExceptionStatus, ExceptionView, GroupCompliance, MAX_EXCEPTION_DAYS, NewExceptionBody,
    OverduePage,
};
use patchctl_storage::{
    DeadlinePolicyRow, ExceptionRow, ExceptionScope, NewException, RevokeOutcome,
};
use patchctl_vuln::severity::Severity;
use serde::Deserialize;
use uuid::Uuid;

use super::paging::{self, PageQuery};
use super::resolve_host;
use crate::AppState;
use crate::access::OperatorAuth;
use crate::audit::AuditDetails;
use crate::engine::{Deadlines, OverdueFilter};
use crate::error::{ApiError, ApiJson};

/// Longest reason, in characters.
const MAX_REASON_CHARS: usize = 2_000;
/// Longest owner, in characters.
const MAX_OWNER_CHARS: usize = 200;
/// Longest vulnerability id.
const MAX_VULN_ID_CHARS: usize = 100;

fn policy_of(days: DeadlineDays) -> DeadlinePolicy {
    DeadlinePolicy {
        critical_days: days.critical_days,
        high_days: days.high_days,
        medium_days: days.medium_days,
        low_days: days.low_days,
        kev_days: days.kev_days,
        due_soon_days: days.due_soon_days,
    }
}

fn days_of(p: &DeadlinePolicy) -> DeadlineDays {
    DeadlineDays {
        critical_days: p.critical_days,
        high_days: p.high_days,
        medium_days: p.medium_days,
        low_days: p.low_days,
        kev_days: p.kev_days,
        due_soon_days: p.due_soon_days,
    }
}

fn time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// The organisation's policy as shown.
pub async fn policy_view(st: &AppState, org: Uuid) -> Result<DeadlinePolicyView, ApiError> {
    Ok(match st.store.deadline_policy(org).await? {
        Some(r) => DeadlinePolicyView {
            days: days_of(&r.policy),
            default: false,
            updated_by: Some(r.updated_by),
            updated_at: Some(time(r.updated_at)),
        },
        None => DeadlinePolicyView {
            days: days_of(&DeadlinePolicy::default()),
            default: true,
            updated_by: None,
            updated_at: None,
        },
    })
}

/// Sets the organisation's policy for `actor`: what the API and the dashboard do.
pub async fn put_policy(
    st: &AppState,
    org: Uuid,
    actor: &str,
    days: DeadlineDays,
) -> Result<(DeadlinePolicyView, AuditDetails), ApiError> {
    let policy = policy_of(days);
    policy
        .validate()
        .map_err(|e| ApiError::bad_request(format!("{e}; nothing was changed")))?;
    let row = DeadlinePolicyRow {
        policy,
        updated_by: actor.to_string(),
        updated_at: Utc::now().timestamp_millis(),
    };
    st.store.put_deadline_policy(org, &row).await?;
    let details = AuditDetails(serde_json::to_value(days).unwrap_or_default());
    Ok((policy_view(st, org).await?, details))
}

/// An exception as shown at `now`.
pub async fn exception_view(st: &AppState, e: &ExceptionRow, now: DateTime<Utc>) -> ExceptionView {
    let scope = match e.new.scope {
        ExceptionScope::Host(h) => ExceptionScopeView::Host {
            host_id: h,
            hostname: st
                .store
                .host(e.new.org_id, h)
                .await
                .ok()
                .flatten()
                .map(|h| h.hostname),
        },
        ExceptionScope::Group(g) => ExceptionScopeView::Group { group_id: g },
        ExceptionScope::All => ExceptionScopeView::All,
    };
    let status = if e.revoked_at.is_some_and(|r| r <= now.timestamp_millis()) {
        ExceptionStatus::Revoked
    } else if e.valid_at(now.timestamp_millis()) {
        ExceptionStatus::Active
    } else {
        ExceptionStatus::Expired
    };
    ExceptionView {
        id: e.id,
        vuln_id: e.new.vuln_id.clone(),
        scope,
        reason: e.new.reason.clone(),
        owner: e.new.owner.clone(),
        expires_at: time(e.new.expires_at),
        created_by: e.new.created_by.clone(),
        created_at: time(e.new.created_at),
        revoked_at: e.revoked_at.map(time),
        revoked_by: e.revoked_by.clone(),
        status,
    }
}

fn text(what: &str, s: &str, max: usize) -> Result<String, ApiError> {
    let s = s.trim();
    let n = s.chars().count();
    if n == 0 || n > max || s.chars().any(|c| c.is_control() && c != '\n') {
        return Err(ApiError::bad_request(format!(
            "{what} is required: 1 to {max} characters without control characters (got {n})"
        )));
    }
    Ok(s.to_string())
}

/// A CVE or advisory id: letters, digits and `-_.:`, as feeds write them.
fn vuln_id(s: &str) -> Result<String, ApiError> {
    let s = s.trim();
    if s.is_empty()
        || s.len() > MAX_VULN_ID_CHARS
        || !s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
    {
        return Err(ApiError::bad_request(format!(
            "vuln_id {s:?} is not a vulnerability id; give a CVE (CVE-2024-6387) or an advisory id (DSA-5724-1)"
        )));
    }
    Ok(s.to_string())
}

/// Creates an exception of `org` for `actor`: what the API and the dashboard do.
pub async fn create_exception(
    st: &AppState,
    org: Uuid,
    actor: &str,
    body: NewExceptionBody,
) -> Result<(ExceptionView, AuditDetails), ApiError> {
    let now = Utc::now();
    let vuln = vuln_id(&body.vuln_id)?;
    let reason = text("reason", &body.reason, MAX_REASON_CHARS)?;
    let owner = text("owner", &body.owner, MAX_OWNER_CHARS)?;
    let scope = match (body.host.as_deref(), body.group.as_deref(), body.all_hosts) {
        (Some(h), None, false) => ExceptionScope::Host(resolve_host(st, org, h).await?.id),
        (None, Some(g), false) => {
            ExceptionScope::Group(crate::policy::groups::resolve(st, org, g.trim()).await?.id)
        }
        (None, None, true) => ExceptionScope::All,
        _ => {
            return Err(ApiError::bad_request(
                "give exactly one scope: host (an id or name), group (an id) or all_hosts: true",
            ));
        }
    };
    if body.expires_at <= now {
        return Err(ApiError::bad_request(format!(
            "expires_at {} is not in the future; an exception must expire, at most {MAX_EXCEPTION_DAYS} days from now",
            body.expires_at.to_rfc3339()
        )));
    }
    if body.expires_at > now + Duration::days(MAX_EXCEPTION_DAYS) {
        return Err(ApiError::bad_request(format!(
            "expires_at {} is more than {MAX_EXCEPTION_DAYS} days away; accepted risk is reviewed at least yearly (create a new exception when this one ends)",
            body.expires_at.to_rfc3339()
        )));
    }
    let row = st
        .store
        .create_exception(&NewException {
            org_id: org,
            vuln_id: vuln,
            scope,
            reason,
            owner,
            expires_at: body.expires_at.timestamp_millis(),
            created_by: actor.to_string(),
            created_at: now.timestamp_millis(),
        })
        .await?;
    let view = exception_view(st, &row, now).await;
    let details = AuditDetails(serde_json::json!({
        "exception_id": view.id,
        "vuln_id": view.vuln_id,
        "scope": view.scope,
        "owner": view.owner,
        "expires_at": view.expires_at,
    }));
    Ok((view, details))
}

fn exception_id(s: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(s).map_err(|_| {
        ApiError::bad_request(format!(
            "{s:?} is not an exception id (a UUID); `patchctl exceptions list` shows them"
        ))
    })
}

fn no_exception(id: Uuid) -> ApiError {
    ApiError::not_found(format!(
        "no exception {id}; `patchctl exceptions list` shows the exceptions you can see"
    ))
}

/// Revokes exception `id` of `org` for `actor`: what the API and the dashboard do.
pub async fn revoke_exception(
    st: &AppState,
    org: Uuid,
    actor: &str,
    id: Uuid,
) -> Result<(ExceptionView, AuditDetails), ApiError> {
    let now = Utc::now();
    match st
        .store
        .revoke_exception(org, id, actor, now.timestamp_millis())
        .await?
    {
        RevokeOutcome::Revoked(row) => {
            let view = exception_view(st, &row, now).await;
            let details = AuditDetails(serde_json::json!({
                "exception_id": id,
                "vuln_id": view.vuln_id,
            }));
            Ok((view, details))
        }
        RevokeOutcome::AlreadyRevoked(row) => Err(ApiError::conflict(format!(
            "exception {id} was revoked already, by {} at {}",
            row.revoked_by.unwrap_or_default(),
            row.revoked_at.map(time).unwrap_or_default().to_rfc3339()
        ))),
        RevokeOutcome::NotFound => Err(no_exception(id)),
    }
}

/// Query of the compliance views.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ComplianceQuery {
    /// Only the hosts of this group (a name or an id); without it the report has each
    /// group's compliance too.
    pub group: Option<String>,
    /// Comma-separated severities (overdue list only).
    pub severity: Option<String>,
    /// `true`: only known exploited (CISA KEV); `false`: only the others (overdue list
    /// only).
    pub kev: Option<bool>,
    /// Compute the states at this time (RFC 3339; default now): a later time shows what
    /// will be overdue by then.
    pub at: Option<DateTime<Utc>>,
    /// Findings per page (default 100, overdue list only).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// Where to go on: `X-Next-Cursor` of the previous page.
    pub cursor: Option<String>,
}

impl ComplianceQuery {
    /// The hosts of the group asked for (`None`: the whole fleet).
    async fn hosts(&self, st: &AppState, org: Uuid) -> Result<Option<HashSet<Uuid>>, ApiError> {
        let Some(g) = self.group.as_deref().filter(|g| !g.is_empty()) else {
            return Ok(None);
        };
        let group = crate::policy::groups::resolve(st, org, g).await?;
        group_hosts(st, org, group.id).await.map(Some)
    }
}

async fn group_hosts(st: &AppState, org: Uuid, group: Uuid) -> Result<HashSet<Uuid>, ApiError> {
    Ok(st
        .store
        .group_host_ids(org, group)
        .await?
        .unwrap_or_default()
        .into_iter()
        .collect())
}

/// The deadline context of `org` at `at`.
async fn deadlines(st: &AppState, org: Uuid, at: DateTime<Utc>) -> Result<Deadlines, ApiError> {
    Ok(st.vulns.deadlines(org, at).await?)
}

/// The compliance report of `org` at `at` (fleet-wide, or `group`'s hosts).
pub async fn report(
    st: &AppState,
    org: Uuid,
    q: &ComplianceQuery,
) -> Result<ComplianceReport, ApiError> {
    let at = q.at.unwrap_or_else(Utc::now);
    let hosts = q.hosts(st, org).await?;
    let ctx = deadlines(st, org, at).await?;
    let view = st.vulns.compliance(org, hosts.as_ref(), &ctx, None).await?;
    // per group (each group's own hosts), unless one group was asked for
    let mut groups = Vec::new();
    if hosts.is_none() {
        for g in st.store.list_groups(org).await? {
            let members = group_hosts(st, org, g.id).await?;
            let v = st.vulns.compliance(org, Some(&members), &ctx, None).await?;
            groups.push(GroupCompliance {
                group_id: g.id,
                name: g.name,
                compliance: v.tally,
            });
        }
    }
    Ok(ComplianceReport {
        at,
        policy: policy_view(st, org).await?,
        fleet: view.tally,
        groups,
    })
}

/// One page of `org`'s overdue findings at `at`, and the next page's cursor.
pub async fn overdue(
    st: &AppState,
    org: Uuid,
    q: &ComplianceQuery,
) -> Result<(OverduePage, Option<String>), ApiError> {
    let at = q.at.unwrap_or_else(Utc::now);
    let hosts = q.hosts(st, org).await?;
    let mut filter = OverdueFilter {
        kev: q.kev,
        ..OverdueFilter::default()
    };
    for w in q.severity.as_deref().unwrap_or("").split(',') {
        let w = w.trim();
        if !w.is_empty() {
            filter.severity.insert(
                w.parse::<Severity>()
                    .map_err(|e| ApiError::bad_request(e.to_string()))?,
            );
        }
    }
    let page = PageQuery {
        limit: q.limit,
        cursor: q.cursor.clone(),
    };
    let (limit, skip) = (page.limit()?, page.position::<usize>()?.unwrap_or(0));
    let ctx = deadlines(st, org, at).await?;
    let view = st
        .vulns
        .compliance(
            org,
            hosts.as_ref(),
            &ctx,
            Some((&filter, skip, limit as usize)),
        )
        .await?;
    let end = skip + view.overdue.len();
    let next = ((end as u64) < view.overdue_total).then(|| paging::encode_cursor(&end));
    Ok((
        OverduePage {
            at,
            total: view.overdue_total,
            findings: view.overdue,
        },
        next,
    ))
}

const E400: &str =
    "bad_request: the request is malformed (parameters or body); the message says which";
const E401: &str = "unauthorized: no valid bearer token";
const E403: &str = "forbidden: the token's role may not do this (or no_access_rule)";
const E503: &str =
    "unavailable: the database (or the vulnerability correlation) cannot answer right now; retry";

/// `GET /api/v1/deadline-policy`.
#[utoipa::path(get, path = "/api/v1/deadline-policy", tag = "compliance",
    responses(
        (status = 200, description = "The organisation's deadline policy (the defaults until one is set)", body = DeadlinePolicyView),
        (status = 401, description = E401, body = patchctl_proto::api::ApiErrorBody),
        (status = 403, description = E403, body = patchctl_proto::api::ApiErrorBody),
        (status = 503, description = E503, body = patchctl_proto::api::ApiErrorBody)
    ),
)]
pub async fn get_policy(
    State(st): State<AppState>,
    op: OperatorAuth,
) -> Result<Json<DeadlinePolicyView>, ApiError> {
    Ok(Json(policy_view(&st, op.org_id).await?))
}

/// `PUT /api/v1/deadline-policy`.
#[utoipa::path(put, path = "/api/v1/deadline-policy", tag = "compliance",
    request_body = DeadlineDaysRequest,
    responses(
        (status = 200, description = "The policy as stored", body = DeadlinePolicyView),
        (status = 400, description = E400, body = patchctl_proto::api::ApiErrorBody),
        (status = 401, description = E401, body = patchctl_proto::api::ApiErrorBody),
        (status = 403, description = E403, body = patchctl_proto::api::ApiErrorBody),
        (status = 415, description = "unsupported_media_type: the body is not JSON", body = patchctl_proto::api::ApiErrorBody),
        (status = 503, description = E503, body = patchctl_proto::api::ApiErrorBody)
    ),
)]
pub async fn set_policy(
    State(st): State<AppState>,
    op: OperatorAuth,
    ApiJson(days): ApiJson<DeadlineDaysRequest>,
) -> Result<(Extension<AuditDetails>, Json<DeadlinePolicyView>), ApiError> {
    let (view, details) = put_policy(&st, op.org_id, &op.actor(), days.into()).await?;
    Ok((Extension(details), Json(view)))
}

/// Query of the exception list.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExceptionQuery {
    /// Only the exceptions in force now.
    #[serde(default)]
    pub active: bool,
}

/// `GET /api/v1/exceptions`: newest first.
#[utoipa::path(get, path = "/api/v1/exceptions", tag = "compliance", params(ExceptionQuery),
    responses(
        (status = 200, description = "The organisation's exceptions, newest first", body = Vec<ExceptionView>),
        (status = 400, description = E400, body = patchctl_proto::api::ApiErrorBody),
        (status = 401, description = E401, body = patchctl_proto::api::ApiErrorBody),
        (status = 403, description = E403, body = patchctl_proto::api::ApiErrorBody),
        (status = 503, description = E503, body = patchctl_proto::api::ApiErrorBody)
    ),
)]
pub async fn list_exceptions(
    State(st): State<AppState>,
    op: OperatorAuth,
    Query(q): Query<ExceptionQuery>,
) -> Result<Json<Vec<ExceptionView>>, ApiError> {
    let now = Utc::now();
    let rows = st
        .store
        .list_exceptions(op.org_id, q.active.then(|| now.timestamp_millis()))
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        out.push(exception_view(&st, r, now).await);
    }
    Ok(Json(out))
}

/// `POST /api/v1/exceptions`.
#[utoipa::path(post, path = "/api/v1/exceptions", tag = "compliance",
    request_body = NewExceptionBody,
    responses(
        (status = 201, description = "The exception", body = ExceptionView),
        (status = 400, description = E400, body = patchctl_proto::api::ApiErrorBody),
        (status = 401, description = E401, body = patchctl_proto::api::ApiErrorBody),
        (status = 403, description = E403, body = patchctl_proto::api::ApiErrorBody),
        (status = 404, description = "not_found: no such host", body = patchctl_proto::api::ApiErrorBody),
        (status = 415, description = "unsupported_media_type: the body is not JSON", body = patchctl_proto::api::ApiErrorBody),
        (status = 503, description = E503, body = patchctl_proto::api::ApiErrorBody)
    ),
)]
pub async fn post_exception(
    State(st): State<AppState>,
    op: OperatorAuth,
    ApiJson(body): ApiJson<NewExceptionBody>,
) -> Result<(StatusCode, Extension<AuditDetails>, Json<ExceptionView>), ApiError> {
    let (view, details) = create_exception(&st, op.org_id, &op.actor(), body).await?;
    Ok((StatusCode::CREATED, Extension(details), Json(view)))
}

/// `GET /api/v1/exceptions/{exception}`.
#[utoipa::path(get, path = "/api/v1/exceptions/{exception}", tag = "compliance",
    params(("exception" = uuid::Uuid, Path, description = "Exception id")),
    responses(
        (status = 200, description = "The exception", body = ExceptionView),
        (status = 400, description = E400, body = patchctl_proto::api::ApiErrorBody),
        (status = 401, description = E401, body = patchctl_proto::api::ApiErrorBody),
        (status = 403, description = E403, body = patchctl_proto::api::ApiErrorBody),
        (status = 404, description = "not_found", body = patchctl_proto::api::ApiErrorBody),
        (status = 503, description = E503, body = patchctl_proto::api::ApiErrorBody)
    ),
)]
pub async fn show_exception(
    State(st): State<AppState>,
    op: OperatorAuth,
    Path(id): Path<String>,
) -> Result<Json<ExceptionView>, ApiError> {
    let id = exception_id(&id)?;
    let row = st
        .store
        .exception(op.org_id, id)
        .await?
        .ok_or_else(|| no_exception(id))?;
    Ok(Json(exception_view(&st, &row, Utc::now()).await))
}

/// `POST /api/v1/exceptions/{exception}/revoke`: its findings re-open at once.
#[utoipa::path(post, path = "/api/v1/exceptions/{exception}/revoke", tag = "compliance",
    params(("exception" = uuid::Uuid, Path, description = "Exception id")),
    responses(
        (status = 200, description = "The exception, revoked", body = ExceptionView),
        (status = 400, description = E400, body = patchctl_proto::api::ApiErrorBody),
        (status = 401, description = E401, body = patchctl_proto::api::ApiErrorBody),
        (status = 403, description = E403, body = patchctl_proto::api::ApiErrorBody),
        (status = 404, description = "not_found", body = patchctl_proto::api::ApiErrorBody),
        (status = 409, description = "conflict: revoked already", body = patchctl_proto::api::ApiErrorBody),
        (status = 503, description = E503, body = patchctl_proto::api::ApiErrorBody)
    ),
)]
pub async fn post_revoke(
    State(st): State<AppState>,
    op: OperatorAuth,
    Path(id): Path<String>,
) -> Result<(Extension<AuditDetails>, Json<ExceptionView>), ApiError> {
    let id = exception_id(&id)?;
    let (view, details) = revoke_exception(&st, op.org_id, &op.actor(), id).await?;
    Ok((Extension(details), Json(view)))
}

/// `GET /api/v1/compliance`: compliance percentages, fleet-wide and per group.
#[utoipa::path(get, path = "/api/v1/compliance", tag = "compliance", params(ComplianceQuery),
    responses(
        (status = 200, description = "Compliance at the time asked about", body = ComplianceReport),
        (status = 400, description = E400, body = patchctl_proto::api::ApiErrorBody),
        (status = 401, description = E401, body = patchctl_proto::api::ApiErrorBody),
        (status = 403, description = E403, body = patchctl_proto::api::ApiErrorBody),
        (status = 404, description = "not_found: no such group", body = patchctl_proto::api::ApiErrorBody),
        (status = 503, description = E503, body = patchctl_proto::api::ApiErrorBody)
    ),
)]
pub async fn get_compliance(
    State(st): State<AppState>,
    op: OperatorAuth,
    Query(q): Query<ComplianceQuery>,
) -> Result<Json<ComplianceReport>, ApiError> {
    Ok(Json(report(&st, op.org_id, &q).await?))
}

/// `GET /api/v1/compliance/overdue`: overdue findings, most overdue first, paged.
#[utoipa::path(get, path = "/api/v1/compliance/overdue", tag = "compliance", params(ComplianceQuery),
    responses(
        (status = 200, description = "One page of overdue findings", body = OverduePage, headers(("X-Next-Cursor" = String, description = "Present when there is more: the cursor of the next page"), ("Link" = String, description = "Present when there is more: `<PATH?cursor=...&limit=N>; rel=\"next\"`"))),
        (status = 400, description = E400, body = patchctl_proto::api::ApiErrorBody),
        (status = 401, description = E401, body = patchctl_proto::api::ApiErrorBody),
        (status = 403, description = E403, body = patchctl_proto::api::ApiErrorBody),
        (status = 404, description = "not_found: no such group", body = patchctl_proto::api::ApiErrorBody),
        (status = 503, description = E503, body = patchctl_proto::api::ApiErrorBody)
    ),
)]
pub async fn get_overdue(
    State(st): State<AppState>,
    op: OperatorAuth,
    OriginalUri(uri): OriginalUri,
    Query(q): Query<ComplianceQuery>,
) -> Result<Response, ApiError> {
    let (page, next) = overdue(&st, op.org_id, &q).await?;
    Ok(super::vulns::with_next(&uri, page, next))
}
