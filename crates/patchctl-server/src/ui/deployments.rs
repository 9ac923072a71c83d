//! The deployments pages: `GET /ui/deployments` (every deployment with its rings'
//! progress, and the create form for roles that operate) and
//! `GET /ui/deployments/{deployment}` (per ring its state and counts, per host its ring,
//! stage and detail, the events, and pause/resume/cancel forms). Every change goes
//! through [`crate::policy::deployments`], the API's own service.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use chrono::Utc;
use patchctl_proto::command::RebootPolicy;
use patchctl_proto::policy::approvals::ManifestView;
use patchctl_proto::policy::deployments::{
    DeploymentEvent, DeploymentHostView, DeploymentRequest, DeploymentView, RingSpec,
};
use serde::Deserialize;
use serde_json::json;

use super::{Chrome, Page, UiError, UiSession};
use crate::AppState;
use crate::audit::AuditDetails;
use crate::policy::deployments::{self, Action};
use crate::policy::{approvals, groups};

/// What a redirect back says happened (fixed texts).
const DONE: [(&str, &str); 4] = [
    (
        "created",
        "The deployment was created; its first ring starts at the next tick.",
    ),
    (
        "paused",
        "The deployment was paused: no new install starts.",
    ),
    ("resumed", "The deployment was resumed."),
    (
        "cancelled",
        "The deployment was cancelled: hosts not started are skipped.",
    ),
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

/// The list page.
#[derive(Template)]
#[template(path = "deployments.html")]
pub struct DeploymentsPage {
    /// The layout.
    pub chrome: Chrome,
    /// What the previous form did.
    pub notice: Option<&'static str>,
    /// Newest first.
    pub deployments: Vec<DeploymentView>,
    /// For the form.
    pub manifests: Vec<ManifestView>,
    /// Group names, for the form.
    pub groups: Vec<String>,
}

/// One deployment's page.
#[derive(Template)]
#[template(path = "deployment.html")]
pub struct DeploymentPage {
    /// The layout.
    pub chrome: Chrome,
    /// What the previous form did.
    pub notice: Option<&'static str>,
    /// The deployment.
    pub d: DeploymentView,
    /// Its hosts.
    pub hosts: Vec<DeploymentHostView>,
    /// Its events, oldest first.
    pub events: Vec<DeploymentEvent>,
}

/// A wire name for the templates (`waiting_window`).
pub fn name<T: serde::Serialize>(v: &T) -> String {
    deployments::wire(v)
}

/// `GET /ui/deployments`.
pub async fn list(
    State(st): State<AppState>,
    session: UiSession,
    Query(q): Query<DoneQuery>,
) -> Result<Page<DeploymentsPage>, UiError> {
    let org = session.principal.org_id;
    Ok(Page(DeploymentsPage {
        chrome: session.chrome("deployments"),
        notice: notice(&q.done),
        deployments: deployments::list(&st, org).await?,
        manifests: approvals::manifests(&st, org).await?,
        groups: groups::list(&st, org)
            .await?
            .into_iter()
            .map(|g| g.name)
            .collect(),
    }))
}

/// `GET /ui/deployments/{deployment}`.
pub async fn show(
    State(st): State<AppState>,
    session: UiSession,
    Path(reference): Path<String>,
    Query(q): Query<DoneQuery>,
) -> Result<Page<DeploymentPage>, UiError> {
    let org = session.principal.org_id;
    let d = deployments::show(&st, org, &reference).await?;
    let id = d.id.to_string();
    Ok(Page(DeploymentPage {
        chrome: session.chrome("deployments"),
        notice: notice(&q.done),
        hosts: deployments::hosts(&st, org, &id).await?,
        events: deployments::events(&st, org, &id).await?,
        d,
    }))
}

/// The create form.
#[derive(Debug, Deserialize)]
pub struct NewDeploymentForm {
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Manifest id or name.
    #[serde(default)]
    pub manifest: String,
    /// Group names, comma-separated.
    #[serde(default)]
    pub groups: String,
    /// Cumulative percentages, `5,25,100`.
    #[serde(default)]
    pub rings: String,
    /// Soak minutes of every ring.
    #[serde(default)]
    pub soak_minutes: String,
    /// Failure threshold of every ring, percent.
    #[serde(default)]
    pub max_failed_percent: String,
    /// `never` or `if_required`.
    #[serde(default)]
    pub reboot: String,
}

fn number<T: std::str::FromStr>(what: &str, text: &str, default: T) -> Result<T, UiError> {
    match text.trim() {
        "" => Ok(default),
        t => t
            .parse()
            .map_err(|_| UiError::BadRequest(format!("{what}: {t:?} is not a whole number"))),
    }
}

/// The request a form stands for.
fn request(f: NewDeploymentForm) -> Result<DeploymentRequest, UiError> {
    let soak = number("soak minutes", &f.soak_minutes, 10u32)?;
    let max_failed = number("failure threshold", &f.max_failed_percent, 0u8)?;
    let mut rings = Vec::new();
    let cuts: Vec<&str> = f
        .rings
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    for (i, p) in cuts.iter().enumerate() {
        rings.push(RingSpec {
            name: (i == 0 && cuts.len() > 1).then(|| "canary".to_owned()),
            percent: number("rings", p, 100u8)?,
            max_failed_percent: max_failed,
            soak_minutes: soak,
        });
    }
    if rings.is_empty() {
        rings.push(RingSpec {
            name: Some("all".into()),
            percent: 100,
            max_failed_percent: max_failed,
            soak_minutes: soak,
        });
    }
    Ok(DeploymentRequest {
        name: f.name.trim().to_owned(),
        manifest: f.manifest,
        groups: f
            .groups
            .split(',')
            .map(str::trim)
            .filter(|g| !g.is_empty())
            .map(str::to_owned)
            .collect(),
        rings,
        reboot: if f.reboot == "if_required" {
            RebootPolicy::IfRequired
        } else {
            RebootPolicy::Never
        },
    })
}

/// `POST /ui/deployments`.
pub async fn create(
    State(st): State<AppState>,
    session: UiSession,
    Form(f): Form<NewDeploymentForm>,
) -> Result<Response, UiError> {
    let req = request(f)?;
    let d = deployments::create(&st, &session.principal, req, Utc::now()).await?;
    let details = Extension(AuditDetails(json!({
        "deployment_id": d.id, "name": d.name, "manifest": d.manifest,
        "groups": d.groups, "hosts": d.hosts,
    })));
    let to = format!("/ui/deployments/{}?done=created", d.id);
    Ok((details, Redirect::to(&to)).into_response())
}

/// The form of pause, resume and cancel.
#[derive(Debug, Default, Deserialize)]
pub struct ActionForm {
    /// Why (optional).
    #[serde(default)]
    pub reason: String,
}

async fn act(
    st: &AppState,
    session: &UiSession,
    reference: &str,
    action: Action,
    f: ActionForm,
) -> Result<Response, UiError> {
    let reason = Some(f.reason).filter(|r| !r.trim().is_empty());
    let d = deployments::act(
        st,
        &session.principal,
        reference,
        action,
        reason,
        Utc::now(),
    )
    .await?;
    let done = match action {
        Action::Pause => "paused",
        Action::Resume => "resumed",
        Action::Cancel => "cancelled",
    };
    let details = Extension(AuditDetails(json!({
        "deployment_id": d.id, "name": d.name, "action": action.as_str(), "state": d.state,
    })));
    let to = format!("/ui/deployments/{}?done={done}", d.id);
    Ok((details, Redirect::to(&to)).into_response())
}

/// `POST /ui/deployments/{deployment}/pause`.
pub async fn pause(
    State(st): State<AppState>,
    session: UiSession,
    Path(reference): Path<String>,
    Form(f): Form<ActionForm>,
) -> Result<Response, UiError> {
    act(&st, &session, &reference, Action::Pause, f).await
}

/// `POST /ui/deployments/{deployment}/resume`.
pub async fn resume(
    State(st): State<AppState>,
    session: UiSession,
    Path(reference): Path<String>,
    Form(f): Form<ActionForm>,
) -> Result<Response, UiError> {
    act(&st, &session, &reference, Action::Resume, f).await
}

/// `POST /ui/deployments/{deployment}/cancel`.
pub async fn cancel(
    State(st): State<AppState>,
    session: UiSession,
    Path(reference): Path<String>,
    Form(f): Form<ActionForm>,
) -> Result<Response, UiError> {
    act(&st, &session, &reference, Action::Cancel, f).await
}
