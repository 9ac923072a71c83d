//! The maintenance windows page: `GET /ui/windows` (per group, each window with its
//! state now), its create form (`POST /ui/windows`) and delete buttons
//! (`POST /ui/windows/{window}/delete`), both for roles that administer. Every change
//! goes through [`crate::windows`], the API's own service, which checks the role again
//! and answers what the audit trail keeps.

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use patchctl_policy::window::{format_minutes, parse_days, parse_minutes};
use patchctl_proto::policy::windows::{NewWindowRequest, WindowInfo};
use serde::Deserialize;
use uuid::Uuid;

use super::{Chrome, Page, UiError, UiSession};
use crate::AppState;
use crate::api::windows::details;
use crate::windows;

/// What a redirect back to the page says happened (fixed texts).
const DONE: [(&str, &str); 2] = [
    ("created", "The window was created."),
    ("deleted", "The window was deleted."),
];

/// Query of `GET /ui/windows`.
#[derive(Debug, Default, Deserialize)]
pub struct WindowsQuery {
    /// What the previous form did (a key of [`DONE`]).
    #[serde(default)]
    pub done: String,
}

/// One window as the page shows it.
pub struct WindowLine {
    /// The API's view.
    pub w: WindowInfo,
    /// Days, `daily` for every day.
    pub days: String,
    /// The duration, `2h`.
    pub duration: String,
    /// The minimum remaining, `30m`.
    pub min_remaining: String,
    /// `open until ...` / `closed until ...` (UTC).
    pub state: String,
}

/// A group and its windows.
pub struct GroupSection {
    /// The group's id.
    pub id: Uuid,
    /// The group's name.
    pub name: String,
    /// Its windows, by name.
    pub windows: Vec<WindowLine>,
}

/// The windows page.
#[derive(Template)]
#[template(path = "windows.html")]
pub struct WindowsPage {
    /// The layout.
    pub chrome: Chrome,
    /// What the previous form did.
    pub notice: Option<&'static str>,
    /// Every group, with its windows.
    pub groups: Vec<GroupSection>,
}

fn line(w: WindowInfo) -> WindowLine {
    let fmt = |t: Option<chrono::DateTime<Utc>>| {
        t.map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
            .unwrap_or_default()
    };
    let state = if w.now.open {
        format!("open until {}", fmt(w.now.closes_at))
    } else {
        format!("closed until {}", fmt(w.now.next_opening))
    };
    WindowLine {
        days: if w.days.is_empty() {
            "daily".into()
        } else {
            w.days.join(",")
        },
        duration: format_minutes(w.duration_minutes),
        min_remaining: format_minutes(w.min_remaining_minutes),
        state,
        w,
    }
}

/// `GET /ui/windows`.
pub async fn page(
    State(st): State<AppState>,
    session: UiSession,
    Query(q): Query<WindowsQuery>,
) -> Result<Page<WindowsPage>, UiError> {
    let by = &session.principal;
    let mut all = windows::list(&st, by, None, Utc::now()).await?;
    let mut groups: Vec<GroupSection> = windows::group_names(&st, by.org_id)
        .await?
        .into_iter()
        .map(|(id, name)| GroupSection {
            id,
            name,
            windows: Vec::new(),
        })
        .collect();
    groups.sort_by(|a, b| a.name.cmp(&b.name));
    for g in &mut groups {
        let (mine, rest): (Vec<_>, Vec<_>) = all.into_iter().partition(|w| w.group_id == g.id);
        g.windows = mine.into_iter().map(line).collect();
        all = rest;
    }
    Ok(Page(WindowsPage {
        chrome: session.chrome("windows"),
        notice: DONE.iter().find(|(k, _)| *k == q.done).map(|(_, v)| *v),
        groups,
    }))
}

fn back(done: &str) -> Response {
    Redirect::to(&format!("/ui/windows?done={done}")).into_response()
}

/// The create form.
#[derive(Debug, Deserialize)]
pub struct NewWindowForm {
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Group id or name.
    #[serde(default)]
    pub group: String,
    /// `mon,tue` or `daily`.
    #[serde(default)]
    pub days: String,
    /// `HH:MM` or `now`.
    #[serde(default)]
    pub start: String,
    /// IANA zone (empty: UTC).
    #[serde(default)]
    pub timezone: String,
    /// `2h`, `90m`.
    #[serde(default)]
    pub duration: String,
    /// `30m` (empty: 0).
    #[serde(default)]
    pub min_remaining: String,
    /// `next_window` or `immediately`.
    #[serde(default)]
    pub missed: String,
}

/// `POST /ui/windows`.
pub async fn create(
    State(st): State<AppState>,
    session: UiSession,
    Form(f): Form<NewWindowForm>,
) -> Result<Response, UiError> {
    let bad = |e: patchctl_policy::window::WindowError| UiError::BadRequest(e.to_string());
    let min = match f.min_remaining.trim() {
        "" => 0,
        m => parse_minutes(m).map_err(bad)?,
    };
    let req = NewWindowRequest {
        name: f.name,
        group: f.group,
        days: parse_days(&f.days)
            .map_err(bad)?
            .iter()
            .map(|d| d.to_string())
            .collect(),
        start: f.start,
        timezone: Some(f.timezone.trim().to_string()).filter(|z| !z.is_empty()),
        duration_minutes: parse_minutes(&f.duration).map_err(bad)?,
        min_remaining_minutes: min,
        missed_policy: Some(f.missed).filter(|m| !m.is_empty()),
    };
    let w = windows::create(&st, &session.principal, req, Utc::now()).await?;
    Ok((details(&w), back("created")).into_response())
}

/// `POST /ui/windows/{window}/delete`.
pub async fn delete(
    State(st): State<AppState>,
    session: UiSession,
    Path(window): Path<String>,
) -> Result<Response, UiError> {
    let w = windows::delete(&st, &session.principal, &window, Utc::now()).await?;
    Ok((details(&w), back("deleted")).into_response())
}
