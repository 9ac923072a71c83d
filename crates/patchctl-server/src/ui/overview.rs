//! `GET /ui/`: the fleet overview.

use askama::Template;
use axum::extract::State;

use super::{Chrome, Page, UiError, UiSession};
use crate::AppState;

/// The fleet overview page.
#[derive(Template)]
#[template(path = "overview.html")]
pub struct OverviewPage {
    /// The layout.
    pub chrome: Chrome,
}

/// `GET /ui/`: the fleet overview.
pub async fn overview(
    State(_st): State<AppState>,
    session: UiSession,
) -> Result<Page<OverviewPage>, UiError> {
    Ok(Page(OverviewPage {
        chrome: session.chrome("overview"),
    }))
}
