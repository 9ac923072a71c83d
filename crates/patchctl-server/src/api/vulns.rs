//! The vulnerability views of the operator's organisation: a host's findings, the hosts
//! an advisory or CVE concerns, and the summary by severity. Each is one call of the
//! CVE engine ([`crate::engine::VulnEngine`]); this file only parses the query and
//! resolves the host.

use axum::Json;
use axum::extract::{OriginalUri, Path, Query, State};
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use patchctl_vuln::fleet::Summary;
use patchctl_vuln::report::Filter;
use serde::Deserialize;

use super::paging::{self, PageQuery};
use super::resolve_host;
use crate::AppState;
use crate::access::OperatorAuth;
use crate::error::ApiError;

/// Query of the vulnerability views.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VulnQuery {
    /// Comma-separated severities.
    pub severity: Option<String>,
    /// Only fixable findings.
    #[serde(default)]
    pub fixable: bool,
    /// Comma-separated statuses.
    pub status: Option<String>,
    /// Findings (of a host) or hosts (of an advisory) per page (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// Where to go on: `X-Next-Cursor` of the previous page.
    pub cursor: Option<String>,
}

impl VulnQuery {
    fn page(&self) -> PageQuery {
        PageQuery {
            limit: self.limit,
            cursor: self.cursor.clone(),
        }
    }

    fn filter(&self) -> Result<Filter, ApiError> {
        Filter::parse(
            self.severity.as_deref(),
            self.fixable,
            self.status.as_deref(),
        )
        .map_err(|e| ApiError::bad_request(e.to_string()))
    }
}

/// `GET /api/v1/hosts/{host}/vulns`.
#[utoipa::path(
    get,
    path = "/api/v1/hosts/{host}/vulns",
    tag = "vulns",
    params(("host" = String, Path, description = "Host id or host name"), VulnQuery),
    responses(
        (status = 200, description = "The host's findings; `findings` is one page", body = patchctl_vuln::report::HostFindings, headers(("X-Next-Cursor" = String, description = "Present when there is more: the cursor of the next page"), ("Link" = String, description = "Present when there is more: `<PATH?cursor=...&limit=N>; rel=\"next\"`"))),
        (status = 400, description = "bad_request: the request is malformed (parameters or body); the message says which", body = patchctl_proto::api::ApiErrorBody),
        (status = 401, description = "unauthorized: no valid bearer token", body = patchctl_proto::api::ApiErrorBody),
        (status = 403, description = "forbidden: the token's role may not do this (or no_access_rule)", body = patchctl_proto::api::ApiErrorBody),
        (status = 404, description = "not_found", body = patchctl_proto::api::ApiErrorBody),
        (status = 409, description = "conflict", body = patchctl_proto::api::ApiErrorBody),
        (status = 503, description = "unavailable: the database (or the vulnerability correlation) cannot answer right now; retry", body = patchctl_proto::api::ApiErrorBody)
    ),
)]
pub async fn host_vulns(
    State(st): State<AppState>,
    op: OperatorAuth,
    Path(host): Path<String>,
    OriginalUri(uri): OriginalUri,
    Query(q): Query<VulnQuery>,
) -> Result<Response, ApiError> {
    let filter = q.filter()?;
    let page = q.page();
    let (limit, skip) = (page.limit()?, page.position::<usize>()?.unwrap_or(0));
    let h = resolve_host(&st, op.org_id, &host).await?;
    let mut found = st.vulns.host_findings(&h, &filter).await?;
    let (findings, next) = page_of(std::mem::take(&mut found.findings), skip, limit);
    found.findings = findings;
    Ok(with_next(&uri, found, next))
}

/// `GET /api/v1/vulns/{id}`: hosts with a finding about an advisory or CVE id.
#[utoipa::path(
    get,
    path = "/api/v1/vulns/{id}",
    tag = "vulns",
    params(("id" = String, Path, description = "Advisory or CVE id"), VulnQuery),
    responses(
        (status = 200, description = "The hosts with a finding about the id; `hosts` is one page", body = patchctl_vuln::report::AdvisoryHosts, headers(("X-Next-Cursor" = String, description = "Present when there is more: the cursor of the next page"), ("Link" = String, description = "Present when there is more: `<PATH?cursor=...&limit=N>; rel=\"next\"`"))),
        (status = 400, description = "bad_request: the request is malformed (parameters or body); the message says which", body = patchctl_proto::api::ApiErrorBody),
        (status = 401, description = "unauthorized: no valid bearer token", body = patchctl_proto::api::ApiErrorBody),
        (status = 403, description = "forbidden: the token's role may not do this (or no_access_rule)", body = patchctl_proto::api::ApiErrorBody),
        (status = 503, description = "unavailable: the database (or the vulnerability correlation) cannot answer right now; retry", body = patchctl_proto::api::ApiErrorBody)
    ),
)]
pub async fn advisory_hosts(
    State(st): State<AppState>,
    op: OperatorAuth,
    Path(id): Path<String>,
    OriginalUri(uri): OriginalUri,
    Query(q): Query<VulnQuery>,
) -> Result<Response, ApiError> {
    let filter = q.filter()?;
    let page = q.page();
    let (limit, skip) = (page.limit()?, page.position::<usize>()?.unwrap_or(0));
    let mut found = st.vulns.hosts_for(op.org_id, id, &filter).await?;
    let (hosts, next) = page_of(std::mem::take(&mut found.hosts), skip, limit);
    found.hosts = hosts;
    Ok(with_next(&uri, found, next))
}

/// One page of a list the engine computed whole, in its own stable order (findings
/// most important first, hosts by name): the cursor is the position of the next item.
fn page_of<T>(items: Vec<T>, skip: usize, limit: u32) -> (Vec<T>, Option<String>) {
    let rest: Vec<T> = items.into_iter().skip(skip).collect();
    let (page, more) = paging::cut(rest, limit, |_| ());
    let next = more.map(|_| paging::encode_cursor(&(skip + limit as usize)));
    (page, next)
}

/// `body` as JSON with the paging headers of [`paging::paged`] when there is more.
pub(super) fn with_next<T: serde::Serialize>(uri: &Uri, body: T, next: Option<String>) -> Response {
    let headers = paging::paged(uri, Vec::<()>::new(), next).headers().clone();
    let mut resp = Json(body).into_response();
    for name in [paging::NEXT_CURSOR, "link"] {
        if let Some(v) = headers.get(name) {
            resp.headers_mut().insert(name, v.clone());
        }
    }
    resp
}

/// `GET /api/v1/vulns/summary`: the organisation's vulnerable findings by severity.
#[utoipa::path(
    get,
    path = "/api/v1/vulns/summary",
    tag = "vulns",
    responses(
        (status = 200, description = "The organisation's findings by severity", body = Summary),
        (status = 401, description = "unauthorized: no valid bearer token", body = patchctl_proto::api::ApiErrorBody),
        (status = 403, description = "forbidden: the token's role may not do this (or no_access_rule)", body = patchctl_proto::api::ApiErrorBody),
        (status = 503, description = "unavailable: the database (or the vulnerability correlation) cannot answer right now; retry", body = patchctl_proto::api::ApiErrorBody)
    ),
)]
pub async fn summary(
    State(st): State<AppState>,
    op: OperatorAuth,
) -> Result<Json<Summary>, ApiError> {
    Ok(Json(st.vulns.summary(op.org_id).await?))
}
