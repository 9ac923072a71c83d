//! The manifests pages: `GET /ui/manifests` (every manifest, newest first, and a form
//! that freezes a group's active approvals into a new one, `POST /ui/manifests`) and
//! `GET /ui/manifests/{manifest}` (its exact versions per ecosystem). Freezing goes
//! through [`crate::policy::approvals::freeze`], the service the API calls too.

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use patchctl_proto::policy::approvals::{ManifestRequest, ManifestView, UpdateItem};
use patchctl_proto::policy::groups::GroupView;
use serde::Deserialize;

use super::{Chrome, Page, UiError, UiSession};
use crate::AppState;
use crate::api::approvals::manifest_details;
use crate::policy::{approvals, groups};

/// Query of the manifest page.
#[derive(Debug, Default, Deserialize)]
pub struct DoneQuery {
    /// `created` right after the form.
    #[serde(default)]
    pub done: String,
}

/// `GET /ui/manifests`.
#[derive(Template)]
#[template(path = "manifests.html")]
pub struct ManifestsPage {
    /// The layout.
    pub chrome: Chrome,
    /// The manifests, newest first (without their items).
    pub manifests: Vec<ManifestView>,
    /// Every group, for the form.
    pub groups: Vec<GroupView>,
}

/// One ecosystem's items of a manifest.
pub struct EcosystemItems {
    /// `Debian:12`.
    pub ecosystem: String,
    /// Its packages, by name.
    pub items: Vec<UpdateItem>,
}

/// `GET /ui/manifests/{manifest}`.
#[derive(Template)]
#[template(path = "manifest.html")]
pub struct ManifestPage {
    /// The layout.
    pub chrome: Chrome,
    /// Whether it was just created.
    pub created: bool,
    /// The manifest.
    pub manifest: ManifestView,
    /// Its items per ecosystem.
    pub ecosystems: Vec<EcosystemItems>,
}

/// `GET /ui/manifests`.
pub async fn page(
    State(st): State<AppState>,
    session: UiSession,
) -> Result<Page<ManifestsPage>, UiError> {
    let org = session.principal.org_id;
    Ok(Page(ManifestsPage {
        chrome: session.chrome("manifests"),
        manifests: approvals::manifests(&st, org).await?,
        groups: groups::list(&st, org).await?,
    }))
}

/// `items` (ordered by ecosystem, then name) cut per ecosystem.
pub fn by_ecosystem(items: &[UpdateItem]) -> Vec<EcosystemItems> {
    let mut out: Vec<EcosystemItems> = Vec::new();
    for i in items {
        match out.last_mut() {
            Some(e) if e.ecosystem == i.ecosystem => e.items.push(i.clone()),
            _ => out.push(EcosystemItems {
                ecosystem: i.ecosystem.clone(),
                items: vec![i.clone()],
            }),
        }
    }
    out
}

/// `GET /ui/manifests/{manifest}`.
pub async fn show(
    State(st): State<AppState>,
    session: UiSession,
    Path(manifest): Path<String>,
    Query(q): Query<DoneQuery>,
) -> Result<Page<ManifestPage>, UiError> {
    let mut m = approvals::manifest(&st, session.principal.org_id, &manifest).await?;
    m.items.sort();
    Ok(Page(ManifestPage {
        chrome: session.chrome("manifests"),
        created: q.done == "created",
        ecosystems: by_ecosystem(&m.items),
        manifest: m,
    }))
}

/// The create form.
#[derive(Debug, Deserialize)]
pub struct NewManifestForm {
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Group id or name.
    #[serde(default)]
    pub group: String,
}

/// `POST /ui/manifests`: freezes the group's active approvals, then shows the new
/// manifest.
pub async fn create(
    State(st): State<AppState>,
    session: UiSession,
    Form(f): Form<NewManifestForm>,
) -> Result<Response, UiError> {
    let req = ManifestRequest {
        name: f.name.trim().to_owned(),
        group: f.group,
    };
    let m = approvals::freeze(&st, &session.principal, req).await?;
    Ok((
        manifest_details(&m),
        Redirect::to(&format!("/ui/manifests/{}?done=created", m.id)),
    )
        .into_response())
}
