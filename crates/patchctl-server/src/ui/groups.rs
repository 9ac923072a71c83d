//! The groups pages: `GET /ui/groups` (every group with its selector and size, a form
//! to create one), `GET /ui/groups/{group}` (its members now, with their facts and
//! tags), `POST /ui/groups/{group}/delete`, and the host page's tag form
//! (`POST /ui/hosts/{host}/tags`). Every change goes through
//! [`crate::policy::groups`], the service the API calls too; the session middleware
//! checked the route's rule (administer) and the CSRF token first.

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use patchctl_proto::policy::groups::{GroupRequest, GroupSelector, GroupView};
use patchctl_storage::HostFactsRow;
use serde::Deserialize;

use super::{Chrome, Page, UiError, UiSession};
use crate::AppState;
use crate::api::groups::{details, tag_details};
use crate::api::resolve_host;
use crate::policy::groups;

/// What a redirect back says happened (fixed texts).
const DONE: [(&str, &str); 2] = [
    ("created", "The group was created."),
    ("deleted", "The group was deleted."),
];

/// Query of the pages.
#[derive(Debug, Default, Deserialize)]
pub struct DoneQuery {
    /// What the previous form did (a key of [`DONE`]).
    #[serde(default)]
    pub done: String,
}

fn notice(done: &str) -> Option<&'static str> {
    DONE.iter().find(|(k, _)| *k == done).map(|(_, v)| *v)
}

/// A selector in words: `tags web,prod · os debian 12`, `every host`.
pub fn selector_text(s: &GroupSelector) -> String {
    let mut parts = Vec::new();
    if !s.tags.is_empty() {
        parts.push(format!("tags {}", s.tags.join(",")));
    }
    if !s.agent_tags.is_empty() {
        parts.push(format!("agent tags {}", s.agent_tags.join(",")));
    }
    if let Some(os) = &s.os {
        parts.push(format!("os {os}"));
    }
    if let Some(r) = &s.os_release {
        parts.push(format!("release {r}"));
    }
    if parts.is_empty() {
        "every host".into()
    } else {
        parts.join(" · ")
    }
}

/// `GET /ui/groups`.
#[derive(Template)]
#[template(path = "groups.html")]
pub struct GroupsPage {
    /// The layout.
    pub chrome: Chrome,
    /// What the previous form did.
    pub notice: Option<&'static str>,
    /// Every group, by name.
    pub groups: Vec<GroupView>,
}

/// `GET /ui/groups/{group}`.
#[derive(Template)]
#[template(path = "group.html")]
pub struct GroupPage {
    /// The layout.
    pub chrome: Chrome,
    /// The group.
    pub group: GroupView,
    /// Its hosts now, by name.
    pub members: Vec<HostFactsRow>,
}

/// `GET /ui/groups`.
pub async fn page(
    State(st): State<AppState>,
    session: UiSession,
    Query(q): Query<DoneQuery>,
) -> Result<Page<GroupsPage>, UiError> {
    let groups = groups::list(&st, session.principal.org_id).await?;
    Ok(Page(GroupsPage {
        chrome: session.chrome("groups"),
        notice: notice(&q.done),
        groups,
    }))
}

/// `GET /ui/groups/{group}`: the group's hosts now (the selector applied to every
/// host's facts).
pub async fn show(
    State(st): State<AppState>,
    session: UiSession,
    Path(group): Path<String>,
) -> Result<Page<GroupPage>, UiError> {
    let org = session.principal.org_id;
    let g = groups::resolve(&st, org, &group).await?;
    let mut members: Vec<HostFactsRow> = st
        .store
        .host_facts(org, None)
        .await?
        .into_iter()
        .filter(|h| g.selector.matches(&h.facts))
        .collect();
    members.sort_by(|a, b| a.hostname.cmp(&b.hostname));
    Ok(Page(GroupPage {
        chrome: session.chrome("groups"),
        group: groups::view(&g, members.len() as u64),
        members,
    }))
}

/// The create form. Tags are comma- or space-separated.
#[derive(Debug, Deserialize)]
pub struct NewGroupForm {
    /// Name.
    #[serde(default)]
    pub name: String,
    /// What it is for.
    #[serde(default)]
    pub description: String,
    /// Operator tags the hosts must carry.
    #[serde(default)]
    pub tags: String,
    /// Agent tags the hosts must carry.
    #[serde(default)]
    pub agent_tags: String,
    /// os-release `ID` or `ID_LIKE` (empty: any).
    #[serde(default)]
    pub os: String,
    /// os-release `VERSION_ID` or its prefix (empty: any).
    #[serde(default)]
    pub release: String,
}

/// Splits a tag field on commas and white space.
pub fn tag_list(s: &str) -> Vec<String> {
    s.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

fn optional(s: &str) -> Option<String> {
    Some(s.trim().to_owned()).filter(|s| !s.is_empty())
}

/// `POST /ui/groups`.
pub async fn create(
    State(st): State<AppState>,
    session: UiSession,
    Form(f): Form<NewGroupForm>,
) -> Result<Response, UiError> {
    let req = GroupRequest {
        name: f.name.trim().to_owned(),
        description: f.description.trim().to_owned(),
        selector: GroupSelector {
            tags: tag_list(&f.tags),
            agent_tags: tag_list(&f.agent_tags),
            os: optional(&f.os),
            os_release: optional(&f.release),
        },
    };
    let g = groups::create(&st, &session.principal, req).await?;
    Ok((details(&g), Redirect::to("/ui/groups?done=created")).into_response())
}

/// `POST /ui/groups/{group}/delete`.
pub async fn delete(
    State(st): State<AppState>,
    session: UiSession,
    Path(group): Path<String>,
) -> Result<Response, UiError> {
    let g = groups::delete(&st, &session.principal, &group).await?;
    Ok((details(&g), Redirect::to("/ui/groups?done=deleted")).into_response())
}

/// The host page's tag form: the host's operator tags, all of them (comma- or
/// space-separated; empty removes every tag).
#[derive(Debug, Deserialize)]
pub struct TagForm {
    /// The tags.
    #[serde(default)]
    pub tags: String,
}

/// `POST /ui/hosts/{host}/tags`: replaces the host's operator tags, then back to the
/// host page.
pub async fn tag(
    State(st): State<AppState>,
    session: UiSession,
    Path(host): Path<String>,
    Form(f): Form<TagForm>,
) -> Result<Response, UiError> {
    let org = session.principal.org_id;
    let h = resolve_host(&st, org, &host).await?;
    let tags = groups::set_host_tags(&st, org, h.id, tag_list(&f.tags)).await?;
    Ok((
        tag_details(&h, &tags),
        Redirect::to(&format!("/ui/hosts/{}?tagged=1#tags", h.id)),
    )
        .into_response())
}
