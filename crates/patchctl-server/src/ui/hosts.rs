//! The hosts pages: `GET /ui/hosts` (search, filter, sort, paged on the server) and
//! `GET /ui/hosts/{host}` (one host), and queueing an operation with a confirmation
//! step (`POST /ui/hosts/{host}/commands`).

use askama::Template;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};

use super::{Chrome, Page, UiError, UiSession};
use crate::AppState;

/// The hosts list page.
#[derive(Template)]
#[template(path = "hosts.html")]
pub struct HostsPage {
    /// The layout.
    pub chrome: Chrome,
}

/// `GET /ui/hosts`.
pub async fn list(
    State(_st): State<AppState>,
    session: UiSession,
) -> Result<Page<HostsPage>, UiError> {
    Ok(Page(HostsPage {
        chrome: session.chrome("hosts"),
    }))
}

/// `GET /ui/hosts/{host}`.
pub async fn show(
    State(_st): State<AppState>,
    session: UiSession,
    Path(_host): Path<String>,
) -> Result<Page<HostsPage>, UiError> {
    Ok(Page(HostsPage {
        chrome: session.chrome("hosts"),
    }))
}

/// `POST /ui/hosts/{host}/commands`.
pub async fn queue(
    State(_st): State<AppState>,
    _session: UiSession,
    Path(_host): Path<String>,
) -> Response {
    UiError::BadRequest("not yet".into()).into_response()
}
