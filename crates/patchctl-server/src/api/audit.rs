//! The audit trail's readers (Need::Audit: owner, admin, auditor):
//!
//! * `GET /api/v1/audit`: the entries of the caller's organisation (and the refusals
//!   that named no organisation), newest first, filtered by `?actor=` (name or id
//!   contains), `?action=` (prefix), `?outcome=` (`ok`, `refused`, `rejected`,
//!   `failed`), `?since=` and `?until=` (RFC 3339), and paged by the convention of
//!   every list (`?limit=`, `?cursor=`, `X-Next-Cursor`, `Link`; the cursor holds the
//!   last entry's seq).
//! * `GET /api/v1/audit/{seq}`: one entry.
//!
//! Reading is not itself recorded: only requests that change something are.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::Uri;
use axum::response::Response;
use chrono::{DateTime, Utc};
use patchctl_proto::audit::{AuditActorRecord, AuditOutcome, AuditRecord};
use patchctl_storage::{AuditEntry, AuditFilter};
use serde::Deserialize;

use super::paging::{PageQuery, cut, paged};
use crate::AppState;
use crate::access::OperatorAuth;
use crate::error::ApiError;

/// The filters of `GET /api/v1/audit` (the paging is [`PageQuery`]).
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Entries whose actor's name or id contains this.
    pub actor: Option<String>,
    /// Entries whose action starts with this (`host.`, `command.queue`).
    pub action: Option<String>,
    /// `ok`, `refused`, `rejected` or `failed`.
    pub outcome: Option<String>,
    /// At or after this time (RFC 3339).
    pub since: Option<String>,
    /// Before this time (RFC 3339).
    pub until: Option<String>,
}

/// The wire form of a stored entry.
pub fn record(e: AuditEntry) -> AuditRecord {
    let AuditEntry { seq, entry: n } = e;
    AuditRecord {
        seq,
        org_id: n.org_id,
        at: n.at,
        actor: AuditActorRecord {
            kind: n.actor.kind,
            id: n.actor.id,
            name: n.actor.name,
            user_id: n.actor.user_id,
        },
        peer: n.peer,
        method: n.method,
        route: n.route,
        action: n.action,
        target: n.target,
        details: n.details,
        status: n.status,
        outcome: wire_outcome(n.outcome),
        error_code: n.error_code,
    }
}

fn wire_outcome(o: patchctl_storage::AuditOutcome) -> AuditOutcome {
    use patchctl_storage::AuditOutcome as S;
    match o {
        S::Ok => AuditOutcome::Ok,
        S::Refused => AuditOutcome::Refused,
        S::Rejected => AuditOutcome::Rejected,
        S::Failed => AuditOutcome::Failed,
    }
}

fn stored_outcome(o: AuditOutcome) -> patchctl_storage::AuditOutcome {
    use patchctl_storage::AuditOutcome as S;
    match o {
        AuditOutcome::Ok => S::Ok,
        AuditOutcome::Refused => S::Refused,
        AuditOutcome::Rejected => S::Rejected,
        AuditOutcome::Failed => S::Failed,
    }
}

fn time(name: &str, v: Option<&str>) -> Result<Option<DateTime<Utc>>, ApiError> {
    v.filter(|s| !s.is_empty())
        .map(|s| {
            DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| {
                    ApiError::bad_request(format!(
                        "{name}={s:?} is not an RFC 3339 time ({e}); give one such as 2026-01-31T12:00:00Z"
                    ))
                })
        })
        .transpose()
}

/// The storage filter of a query.
fn filter(q: &AuditQuery) -> Result<AuditFilter, ApiError> {
    let outcome = match q.outcome.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => Some(stored_outcome(
            s.parse::<AuditOutcome>()
                .map_err(|e| ApiError::bad_request(e.to_string()))?,
        )),
        None => None,
    };
    let nonempty = |s: &Option<String>| s.clone().filter(|s| !s.is_empty());
    Ok(AuditFilter {
        actor: nonempty(&q.actor),
        action: nonempty(&q.action),
        outcome,
        since: time("since", q.since.as_deref())?,
        until: time("until", q.until.as_deref())?,
        before_seq: None,
    })
}

/// `GET /api/v1/audit`: newest first, filtered, paged.
#[utoipa::path(
    get,
    path = "/api/v1/audit",
    tag = "audit",
    params(AuditQuery, PageQuery),
    responses(
        (status = 200, description = "Audit entries, newest first, one page", body = Vec<AuditRecord>, headers(("X-Next-Cursor" = String, description = "Present when there is more: the cursor of the next page"), ("Link" = String, description = "Present when there is more: `<PATH?cursor=...&limit=N>; rel=\"next\"`"))),
        (status = 400, description = "bad_request: the request is malformed (parameters or body); the message says which", body = patchctl_proto::api::ApiErrorBody),
        (status = 401, description = "unauthorized: no valid bearer token", body = patchctl_proto::api::ApiErrorBody),
        (status = 403, description = "forbidden: the token's role may not do this (or no_access_rule)", body = patchctl_proto::api::ApiErrorBody),
        (status = 404, description = "not_found", body = patchctl_proto::api::ApiErrorBody),
        (status = 503, description = "unavailable: the database cannot answer right now; retry", body = patchctl_proto::api::ApiErrorBody),
    ),
)]
pub async fn list_audit(
    State(st): State<AppState>,
    op: OperatorAuth,
    Query(q): Query<AuditQuery>,
    Query(page): Query<PageQuery>,
    uri: Uri,
) -> Result<Response, ApiError> {
    let mut f = filter(&q)?;
    f.before_seq = page.position::<i64>()?;
    let limit = page.limit()?;
    let rows = st.store.list_audit(op.org_id, &f, limit + 1).await?;
    let (rows, next) = cut(rows, limit, |e| e.seq);
    Ok(paged(
        &uri,
        rows.into_iter().map(record).collect::<Vec<_>>(),
        next,
    ))
}

/// `GET /api/v1/audit/{seq}`: one entry of the caller's organisation (or one that named
/// no organisation).
#[utoipa::path(
    get,
    path = "/api/v1/audit/{seq}",
    tag = "audit",
    params(("seq" = i64, Path, description = "Position in the trail")),
    responses(
        (status = 200, description = "One audit entry", body = AuditRecord),
        (status = 400, description = "bad_request: the request is malformed (parameters or body); the message says which", body = patchctl_proto::api::ApiErrorBody),
        (status = 401, description = "unauthorized: no valid bearer token", body = patchctl_proto::api::ApiErrorBody),
        (status = 403, description = "forbidden: the token's role may not do this (or no_access_rule)", body = patchctl_proto::api::ApiErrorBody),
        (status = 404, description = "not_found", body = patchctl_proto::api::ApiErrorBody),
        (status = 503, description = "unavailable: the database cannot answer right now; retry", body = patchctl_proto::api::ApiErrorBody),
    ),
)]
pub async fn show_audit(
    State(st): State<AppState>,
    op: OperatorAuth,
    Path(seq): Path<String>,
) -> Result<Json<AuditRecord>, ApiError> {
    let n: i64 = seq.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
        ApiError::bad_request(format!(
            "{seq:?} is not an audit entry number (a positive integer); `patchctl audit list` shows them"
        ))
    })?;
    let f = AuditFilter {
        before_seq: n.checked_add(1),
        ..AuditFilter::default()
    };
    st.store
        .list_audit(op.org_id, &f, 1)
        .await?
        .into_iter()
        .find(|e| e.seq == n)
        .map(|e| Json(record(e)))
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "no audit entry {n} that this organisation may see; `patchctl audit list` shows them"
            ))
        })
}
