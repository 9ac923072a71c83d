//! `GET /api/v1/reboots`: the organisation's hosts that need a reboot, fleet-wide,
//! longest waiting first, with why and since when (`crate::reboots`).

use axum::extract::{OriginalUri, Query, State};
use axum::http::{HeaderName, HeaderValue};
use axum::response::Response;
use chrono::{DateTime, Utc};
use patchctl_proto::policy::reboot::RebootHost;
use uuid::Uuid;

use super::paging::{self, PageQuery};
use crate::AppState;
use crate::access::OperatorAuth;
use crate::error::ApiError;

/// The header with the number of hosts needing a reboot in all.
pub const TOTAL_COUNT: &str = "x-total-count";

/// `GET /api/v1/reboots`.
#[utoipa::path(
    get,
    path = "/api/v1/reboots",
    tag = "reboots",
    params(PageQuery),
    responses(
        (status = 200, description = "The hosts that need a reboot, longest waiting first, one page", body = Vec<RebootHost>, headers(("X-Total-Count" = u64, description = "Hosts that need a reboot in all"), ("X-Next-Cursor" = String, description = "Present when there is more: the cursor of the next page"), ("Link" = String, description = "Present when there is more: `<PATH?cursor=...&limit=N>; rel=\"next\"`"))),
        (status = 400, description = "bad_request: the request is malformed (parameters or body); the message says which", body = patchctl_proto::api::ApiErrorBody),
        (status = 401, description = "unauthorized: no valid bearer token", body = patchctl_proto::api::ApiErrorBody),
        (status = 403, description = "forbidden: the token's role may not do this (or no_access_rule)", body = patchctl_proto::api::ApiErrorBody),
        (status = 503, description = "unavailable: the database (or the vulnerability correlation) cannot answer right now; retry", body = patchctl_proto::api::ApiErrorBody)
    ),
)]
pub async fn list_reboots(
    State(st): State<AppState>,
    op: OperatorAuth,
    OriginalUri(uri): OriginalUri,
    Query(page): Query<PageQuery>,
) -> Result<Response, ApiError> {
    let limit = page.limit()?;
    let after: Option<(DateTime<Utc>, Uuid)> = page.position()?;
    let (hosts, more, total) = crate::reboots::page(&st, op.org_id, after, limit).await?;
    let next = more
        .then(|| {
            hosts
                .last()
                .map(|h| paging::encode_cursor(&crate::reboots::position(h)))
        })
        .flatten();
    let mut resp = paging::paged(&uri, hosts, next);
    resp.headers_mut().insert(
        HeaderName::from_static(TOTAL_COUNT),
        HeaderValue::from(total),
    );
    Ok(resp)
}
