//! The commands pages: `GET /ui/commands` (the organisation's commands, filtered by
//! state, operation and host, newest first, paged by a cursor in the database) and
//! `GET /ui/commands/{id}` (one command with every state change and its result), and
//! the cancel form (`POST /ui/commands/{id}/cancel`, through the API's own cancel).

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use patchctl_proto::api::{CommandRecord, CommandState};
use patchctl_storage::{CommandFilter, CommandLine};
use serde::Deserialize;
use uuid::Uuid;

use super::{Chrome, Page, UiError, UiSession, paging};
use crate::AppState;
use crate::api::resolve_host;

/// Commands per page.
pub const PAGE: u32 = 100;

/// Every state, for the filter's select.
pub const STATES: [CommandState; 7] = [
    CommandState::Queued,
    CommandState::Delivered,
    CommandState::Succeeded,
    CommandState::Failed,
    CommandState::Rejected,
    CommandState::Expired,
    CommandState::Cancelled,
];

/// The operations, for the filter's select.
pub use patchctl_proto::command::COMMAND_KINDS as KINDS;

/// Query of `GET /ui/commands`.
#[derive(Debug, Default, Deserialize)]
pub struct CommandsQuery {
    /// Only this state.
    #[serde(default)]
    pub state: String,
    /// Only this operation.
    #[serde(default)]
    pub kind: String,
    /// Only this host (name or id).
    #[serde(default)]
    pub host: String,
    /// Where the page starts (from the previous page's link).
    #[serde(default)]
    pub cursor: String,
}

/// The commands page.
#[derive(Template)]
#[template(path = "commands.html")]
pub struct CommandsPage {
    /// The layout.
    pub chrome: Chrome,
    /// The filters as given.
    pub query: CommandsQuery,
    /// The state names.
    pub states: Vec<&'static str>,
    /// The operations.
    pub kinds: [&'static str; 4],
    /// The page.
    pub rows: Vec<CommandLine>,
    /// Query string of the next page.
    pub next: Option<String>,
}

/// The cursor of the line after `l`: its queue time (ms) and id.
fn cursor_of(l: &CommandLine) -> String {
    format!("{}.{}", l.created_at.timestamp_millis(), l.id)
}

fn parse_cursor(s: &str) -> Result<Option<(DateTime<Utc>, Uuid)>, UiError> {
    if s.is_empty() {
        return Ok(None);
    }
    let bad = || {
        UiError::BadRequest(
            "this page link is damaged (bad cursor); go back to the first page".into(),
        )
    };
    let (ms, id) = s.split_once('.').ok_or_else(bad)?;
    let ms: i64 = ms.parse().map_err(|_| bad())?;
    let at = DateTime::from_timestamp_millis(ms).ok_or_else(bad)?;
    let id = Uuid::parse_str(id).map_err(|_| bad())?;
    Ok(Some((at, id)))
}

/// `GET /ui/commands`.
pub async fn list(
    State(st): State<AppState>,
    session: UiSession,
    Query(query): Query<CommandsQuery>,
) -> Result<Page<CommandsPage>, UiError> {
    let org = session.principal.org_id;
    let state = match query.state.as_str() {
        "" => None,
        s => Some(CommandState::parse(s).ok_or_else(|| {
            UiError::BadRequest(format!(
                "unknown state {s:?}; choose one of {}",
                STATES.map(|s| s.as_str()).join(", ")
            ))
        })?),
    };
    let kind = match query.kind.as_str() {
        "" => None,
        k if KINDS.contains(&k) => Some(k.to_owned()),
        k => {
            return Err(UiError::BadRequest(format!(
                "unknown operation {k:?}; choose one of {}",
                KINDS.join(", ")
            )));
        }
    };
    let host_id = match query.host.trim() {
        "" => None,
        h => Some(resolve_host(&st, org, h).await?.id),
    };
    let filter = CommandFilter {
        state,
        kind,
        host_id,
    };
    let before = parse_cursor(&query.cursor)?;
    let mut rows = st
        .store
        .command_lines(org, &filter, before, PAGE + 1)
        .await?;
    let next = if rows.len() > PAGE as usize {
        rows.truncate(PAGE as usize);
        let p = vec![
            ("state", query.state.clone()),
            ("kind", query.kind.clone()),
            ("host", query.host.clone()),
        ];
        rows.last()
            .map(|l| paging::with(&p, "cursor", &cursor_of(l)))
    } else {
        None
    };
    Ok(Page(CommandsPage {
        chrome: session.chrome("commands"),
        query,
        states: STATES.iter().map(|s| s.as_str()).collect(),
        kinds: KINDS,
        rows,
        next,
    }))
}

/// One command.
#[derive(Template)]
#[template(path = "command.html")]
pub struct CommandPage {
    /// The layout.
    pub chrome: Chrome,
    /// The command.
    pub cmd: CommandRecord,
    /// Its host's name (empty when the host is gone).
    pub hostname: String,
    /// Its parameters, as indented JSON.
    pub params: String,
    /// Its result's output, as indented JSON.
    pub output: Option<String>,
    /// Whether it can still be cancelled.
    pub cancellable: bool,
}

fn command_id(id: &str) -> Result<Uuid, UiError> {
    Uuid::parse_str(id)
        .map_err(|_| UiError::BadRequest(format!("{id:?} is not a command id (a UUID)")))
}

/// `GET /ui/commands/{id}`.
pub async fn show(
    State(st): State<AppState>,
    session: UiSession,
    Path(id): Path<String>,
) -> Result<Page<CommandPage>, UiError> {
    let org = session.principal.org_id;
    let id = command_id(&id)?;
    let cmd = st.store.command(org, id).await?.ok_or_else(|| {
        UiError::Api(crate::error::ApiError::not_found(format!(
            "no command {id} in your organisation"
        )))
    })?;
    let hostname = st
        .store
        .host(org, cmd.host_id)
        .await?
        .map(|h| h.hostname)
        .unwrap_or_default();
    let params = serde_json::to_string_pretty(&cmd.params).unwrap_or_default();
    let output = cmd
        .result
        .as_ref()
        .and_then(|r| r.output.as_ref())
        .and_then(|o| serde_json::to_string_pretty(o).ok());
    Ok(Page(CommandPage {
        chrome: session.chrome("commands"),
        cancellable: cmd.state == CommandState::Queued,
        cmd,
        hostname,
        params,
        output,
    }))
}

/// `POST /ui/commands/{id}/cancel` (the CSRF token and the role were checked by the
/// session middleware): cancels through the API's code, then shows the command.
pub async fn cancel(
    State(st): State<AppState>,
    session: UiSession,
    Path(id): Path<String>,
) -> Result<Response, UiError> {
    let id = command_id(&id)?;
    let (_, details) = crate::api::commands::cancel(&st, session.principal.org_id, id).await?;
    Ok((
        axum::Extension(details),
        Redirect::to(&format!("/ui/commands/{id}")),
    )
        .into_response())
}
