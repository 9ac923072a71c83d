//! The webhooks page: `GET /ui/webhooks` (the subscriptions, a form to create one) and
//! `GET /ui/webhooks/{webhook}` (its delivery log, with forms to send a test message,
//! rotate the secret and delete it). A secret is shown once, on the answer page of
//! create and rotate. Every action goes through the API's own service functions
//! ([`crate::api::webhooks`]); the session middleware checked the route's rule and the
//! CSRF token first.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use patchctl_proto::policy::webhooks::{
    CreateWebhook, EventSeverity, EventType, RotateWebhookSecret, Webhook, WebhookDelivery,
    WebhookWithSecret,
};
use serde::Deserialize;

use super::{Chrome, Page, UiError, UiSession};
use crate::AppState;
use crate::api::webhooks;

/// Deliveries shown on a subscription's page.
const LOG_LIMIT: u32 = 50;

/// What a redirect back says happened (fixed texts).
const DONE: [(&str, &str); 2] = [
    (
        "test-queued",
        "A test message was queued; its attempts appear below within seconds.",
    ),
    ("deleted", "The webhook was deleted."),
];

fn notice(done: &str) -> Option<&'static str> {
    DONE.iter().find(|(k, _)| *k == done).map(|(_, v)| *v)
}

/// Query of the pages.
#[derive(Debug, Default, Deserialize)]
pub struct DoneQuery {
    /// What the previous form did (a key of [`DONE`]).
    #[serde(default)]
    pub done: String,
}

/// `GET /ui/webhooks`.
#[derive(Template)]
#[template(path = "webhooks.html")]
pub struct WebhooksPage {
    /// The layout.
    pub chrome: Chrome,
    /// What the previous form did.
    pub notice: Option<&'static str>,
    /// The subscriptions.
    pub hooks: Vec<Webhook>,
    /// Every event type, for the form.
    pub event_types: Vec<&'static str>,
    /// Every severity, for the form.
    pub severities: Vec<&'static str>,
}

/// `GET /ui/webhooks/{webhook}`.
#[derive(Template)]
#[template(path = "webhook.html")]
pub struct WebhookPage {
    /// The layout.
    pub chrome: Chrome,
    /// What the previous form did.
    pub notice: Option<&'static str>,
    /// The subscription.
    pub hook: Webhook,
    /// Its latest deliveries.
    pub deliveries: Vec<WebhookDelivery>,
}

/// The answer page of create and rotate: the secret, shown this once.
#[derive(Template)]
#[template(path = "webhook_secret.html")]
pub struct SecretPage {
    /// The layout.
    pub chrome: Chrome,
    /// What happened (`created`, `rotated`).
    pub verb: &'static str,
    /// The subscription.
    pub hook: Webhook,
    /// The secret.
    pub secret: String,
}

/// The events a subscription takes, in words.
pub fn events_text(h: &Webhook) -> String {
    if h.events.is_empty() {
        "all events".to_owned()
    } else {
        h.events
            .iter()
            .map(|e| e.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// `GET /ui/webhooks`.
pub async fn page(
    State(st): State<AppState>,
    session: UiSession,
    Query(q): Query<DoneQuery>,
) -> Result<Page<WebhooksPage>, UiError> {
    let hooks = st.store.list_webhooks(session.principal.org_id).await?;
    Ok(Page(WebhooksPage {
        chrome: session.chrome("webhooks"),
        notice: notice(&q.done),
        hooks,
        event_types: EventType::ALL.iter().map(|e| e.as_str()).collect(),
        severities: EventSeverity::ALL.iter().map(|s| s.as_str()).collect(),
    }))
}

/// `GET /ui/webhooks/{webhook}`.
pub async fn show(
    State(st): State<AppState>,
    session: UiSession,
    Path(what): Path<String>,
    Query(q): Query<DoneQuery>,
) -> Result<Page<WebhookPage>, UiError> {
    let org = session.principal.org_id;
    let hook = webhooks::find(&st, org, &what).await?;
    let (deliveries, _) =
        webhooks::deliveries(&st, org, &hook.id.to_string(), None, LOG_LIMIT).await?;
    Ok(Page(WebhookPage {
        chrome: session.chrome("webhooks"),
        notice: notice(&q.done),
        hook,
        deliveries,
    }))
}

fn secret_page(session: &UiSession, verb: &'static str, made: WebhookWithSecret) -> Response {
    Page(SecretPage {
        chrome: session.chrome("webhooks"),
        verb,
        secret: made.secret.expose().to_owned(),
        hook: made.webhook,
    })
    .into_response()
}

/// `POST /ui/webhooks`: fields `name`, `url`, `min_severity` (empty: none) and one
/// `event` per checked event type (none checked: every type).
pub async fn create(
    State(st): State<AppState>,
    session: UiSession,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, UiError> {
    let field = |k: &str| {
        fields
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_default()
    };
    let events = fields
        .iter()
        .filter(|(n, _)| n == "event")
        .map(|(_, v)| {
            EventType::parse(v)
                .ok_or_else(|| UiError::BadRequest(format!("unknown event type {v:?}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let min_severity = match field("min_severity").as_str() {
        "" => None,
        s => Some(
            EventSeverity::parse(s)
                .ok_or_else(|| UiError::BadRequest(format!("unknown severity {s:?}")))?,
        ),
    };
    let p = &session.principal;
    let req = CreateWebhook {
        name: field("name"),
        url: field("url"),
        events,
        min_severity,
        enabled: Some(true),
    };
    let (made, details) = webhooks::create(&st, p.org_id, &p.label(), req).await?;
    Ok((Extension(details), secret_page(&session, "created", made)).into_response())
}

/// The rotate form.
#[derive(Debug, Deserialize)]
pub struct RotateForm {
    /// Hours the previous secret keeps signing (empty: 24).
    #[serde(default)]
    pub grace_hours: String,
}

/// `POST /ui/webhooks/{webhook}/rotate`.
pub async fn rotate(
    State(st): State<AppState>,
    session: UiSession,
    Path(what): Path<String>,
    Form(f): Form<RotateForm>,
) -> Result<Response, UiError> {
    let grace_secs = match f.grace_hours.trim() {
        "" => None,
        h => Some(
            h.parse::<u64>()
                .map_err(|_| UiError::BadRequest(format!("{h:?} is not a whole number of hours")))?
                .saturating_mul(3600),
        ),
    };
    let p = &session.principal;
    let (made, details) =
        webhooks::rotate(&st, p.org_id, &what, RotateWebhookSecret { grace_secs }).await?;
    Ok((Extension(details), secret_page(&session, "rotated", made)).into_response())
}

/// `POST /ui/webhooks/{webhook}/test`.
pub async fn test(
    State(st): State<AppState>,
    session: UiSession,
    Path(what): Path<String>,
) -> Result<Response, UiError> {
    let org = session.principal.org_id;
    let hook = webhooks::find(&st, org, &what).await?;
    let (_, details) = webhooks::test(&st, org, &hook.id.to_string()).await?;
    let back = format!("/ui/webhooks/{}?done=test-queued", hook.id);
    Ok((Extension(details), Redirect::to(&back)).into_response())
}

/// `POST /ui/webhooks/{webhook}/delete`.
pub async fn delete(
    State(st): State<AppState>,
    session: UiSession,
    Path(what): Path<String>,
) -> Result<Response, UiError> {
    let details = webhooks::delete(&st, session.principal.org_id, &what).await?;
    Ok((
        Extension(details),
        Redirect::to("/ui/webhooks?done=deleted"),
    )
        .into_response())
}
