//! `GET /ui/reboots`: the organisation's hosts that need a reboot, longest waiting
//! first, with why and since when; paged by a cursor (the API's keyset, through the
//! same service, [`crate::reboots::page`]).

use askama::Template;
use axum::extract::{Query, State};
use chrono::{DateTime, Utc};
use patchctl_proto::policy::reboot::RebootHost;
use serde::Deserialize;
use uuid::Uuid;

use super::{Chrome, Page, UiError, UiSession, paging};
use crate::AppState;
use crate::api::paging::{decode_cursor, encode_cursor};

/// Hosts per page.
pub const PAGE: u32 = 100;

/// Query of `GET /ui/reboots`.
#[derive(Debug, Default, Deserialize)]
pub struct RebootsQuery {
    /// Where to go on (the previous page's link).
    #[serde(default)]
    pub cursor: String,
}

/// The reboots page.
#[derive(Template)]
#[template(path = "reboots.html")]
pub struct RebootsPage {
    /// The layout.
    pub chrome: Chrome,
    /// The hosts of this page.
    pub hosts: Vec<RebootHost>,
    /// Hosts that need a reboot in all.
    pub total: u64,
    /// Whether this is a later page.
    pub later: bool,
    /// Query string of the next page.
    pub next: Option<String>,
}

/// `GET /ui/reboots`.
pub async fn list(
    State(st): State<AppState>,
    session: UiSession,
    Query(q): Query<RebootsQuery>,
) -> Result<Page<RebootsPage>, UiError> {
    let after: Option<(DateTime<Utc>, Uuid)> = if q.cursor.is_empty() {
        None
    } else {
        Some(decode_cursor(&q.cursor)?)
    };
    let org = session.principal.org_id;
    let (hosts, more, total) = crate::reboots::page(&st, org, after, PAGE).await?;
    let next = more
        .then(|| hosts.last())
        .flatten()
        .map(|h| paging::with(&[], "cursor", &encode_cursor(&crate::reboots::position(h))));
    Ok(Page(RebootsPage {
        chrome: session.chrome("reboots"),
        hosts,
        total,
        later: after.is_some(),
        next,
    }))
}
