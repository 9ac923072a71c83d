//! The compliance pages: `GET /ui/compliance` (compliance fleet-wide and per group, the
//! deadline policy with its form, the overdue findings) and `GET /ui/exceptions` (the
//! exceptions, the create form and revoke buttons). Every change goes through the API's
//! service functions ([`crate::api::compliance`]); the session middleware checked the
//! route's rule and the CSRF token first.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use chrono::{DateTime, Duration, Utc};
use patchctl_proto::policy::deadlines::{
    ComplianceReport, DeadlineDays, ExceptionScopeView, ExceptionView, NewExceptionBody,
    OverduePage,
};
use serde::Deserialize;
use uuid::Uuid;

use super::{Chrome, Page, UiError, UiSession, paging};
use crate::AppState;
use crate::api::compliance::{self, ComplianceQuery};

/// Overdue findings per page.
pub const PAGE: u32 = 100;

/// What a redirect back says happened (fixed texts).
const DONE: [(&str, &str); 4] = [
    ("policy-saved", "The deadline policy was saved."),
    ("exception-created", "The exception was created."),
    (
        "exception-revoked",
        "The exception was revoked; its findings are open again.",
    ),
    ("nothing", "Nothing changed."),
];

fn notice(done: &str) -> Option<&'static str> {
    DONE.iter().find(|(k, _)| *k == done).map(|(_, v)| *v)
}

/// Query of `GET /ui/compliance`.
#[derive(Debug, Default, Deserialize)]
pub struct CompliancePageQuery {
    /// Only KEV findings in the overdue list (`1`).
    #[serde(default)]
    pub kev: String,
    /// Only this severity in the overdue list.
    #[serde(default)]
    pub severity: String,
    /// The overdue list's cursor.
    #[serde(default)]
    pub cursor: String,
    /// What the previous form did.
    #[serde(default)]
    pub done: String,
}

/// `GET /ui/compliance`.
#[derive(Template)]
#[template(path = "compliance.html")]
pub struct CompliancePage {
    /// The layout.
    pub chrome: Chrome,
    /// What the previous form did.
    pub notice: Option<&'static str>,
    /// The report.
    pub report: ComplianceReport,
    /// One page of overdue findings.
    pub overdue: OverduePage,
    /// The query.
    pub query: CompliancePageQuery,
    /// Severity names, for the filter.
    pub severities: Vec<&'static str>,
    /// The next page's query string.
    pub next: Option<String>,
}

impl CompliancePage {
    /// A percentage, or a dash.
    pub fn pct(p: &Option<f64>) -> String {
        p.map_or("–".into(), |p| format!("{p:.1} %"))
    }
}

/// `GET /ui/compliance`.
pub async fn page(
    State(st): State<AppState>,
    session: UiSession,
    Query(q): Query<CompliancePageQuery>,
) -> Result<Response, UiError> {
    let org = session.principal.org_id;
    let api_q = ComplianceQuery {
        severity: Some(q.severity.clone()).filter(|s| !s.is_empty()),
        kev: (q.kev == "1").then_some(true),
        limit: Some(PAGE),
        cursor: Some(q.cursor.clone()).filter(|s| !s.is_empty()),
        ..ComplianceQuery::default()
    };
    let report = compliance::report(&st, org, &api_q).await?;
    let (overdue, next) = compliance::overdue(&st, org, &api_q).await?;
    let params = [("kev", q.kev.clone()), ("severity", q.severity.clone())];
    let next = next.map(|c| paging::with(&params, "cursor", &c));
    Ok(Page(CompliancePage {
        chrome: session.chrome("compliance"),
        notice: notice(&q.done),
        report,
        overdue,
        query: q,
        severities: patchctl_vuln::severity::Severity::ALL
            .iter()
            .map(|s| s.name())
            .collect(),
        next,
    })
    .into_response())
}

/// The deadline policy form.
#[derive(Debug, Deserialize)]
pub struct PolicyForm {
    critical_days: u32,
    high_days: u32,
    medium_days: u32,
    low_days: u32,
    kev_days: u32,
    due_soon_days: u32,
}

/// `POST /ui/compliance/policy`.
pub async fn set_policy(
    State(st): State<AppState>,
    session: UiSession,
    Form(f): Form<PolicyForm>,
) -> Result<Response, UiError> {
    let days = DeadlineDays {
        critical_days: f.critical_days,
        high_days: f.high_days,
        medium_days: f.medium_days,
        low_days: f.low_days,
        kev_days: f.kev_days,
        due_soon_days: f.due_soon_days,
    };
    let p = &session.principal;
    let (_, details) = compliance::put_policy(&st, p.org_id, &p.label(), days).await?;
    Ok((
        Extension(details),
        Redirect::to("/ui/compliance?done=policy-saved"),
    )
        .into_response())
}

/// Query of `GET /ui/exceptions`.
#[derive(Debug, Default, Deserialize)]
pub struct ExceptionsQuery {
    /// What the previous form did.
    #[serde(default)]
    pub done: String,
    /// Prefills the form's vulnerability.
    #[serde(default)]
    pub vuln: String,
    /// Prefills the form's host.
    #[serde(default)]
    pub host: String,
}

/// `GET /ui/exceptions`.
#[derive(Template)]
#[template(path = "exceptions.html")]
pub struct ExceptionsPage {
    /// The layout.
    pub chrome: Chrome,
    /// What the previous form did.
    pub notice: Option<&'static str>,
    /// The exceptions, newest first.
    pub exceptions: Vec<ExceptionView>,
    /// The form's prefill.
    pub query: ExceptionsQuery,
    /// The form's default expiry (`YYYY-MM-DD`, 90 days ahead).
    pub default_expiry: String,
    /// The latest expiry allowed.
    pub max_expiry: String,
}

impl ExceptionsPage {
    /// The scope in words.
    pub fn scope(s: &ExceptionScopeView) -> String {
        match s {
            ExceptionScopeView::Host { host_id, hostname } => {
                format!("host {}", hostname.clone().unwrap_or(host_id.to_string()))
            }
            ExceptionScopeView::Group { group_id } => format!("group {group_id}"),
            ExceptionScopeView::All => "every host".into(),
        }
    }

    /// The status word.
    pub fn status(e: &ExceptionView) -> &'static str {
        match e.status {
            patchctl_proto::policy::deadlines::ExceptionStatus::Active => "active",
            patchctl_proto::policy::deadlines::ExceptionStatus::Expired => "expired",
            patchctl_proto::policy::deadlines::ExceptionStatus::Revoked => "revoked",
        }
    }
}

/// `GET /ui/exceptions`.
pub async fn exceptions(
    State(st): State<AppState>,
    session: UiSession,
    Query(q): Query<ExceptionsQuery>,
) -> Result<Response, UiError> {
    let org = session.principal.org_id;
    let now = Utc::now();
    let rows = st.store.list_exceptions(org, None).await?;
    let mut list = Vec::with_capacity(rows.len());
    for r in &rows {
        list.push(compliance::exception_view(&st, r, now).await);
    }
    Ok(Page(ExceptionsPage {
        chrome: session.chrome("exceptions"),
        notice: notice(&q.done),
        exceptions: list,
        query: q,
        default_expiry: (now + Duration::days(90)).format("%Y-%m-%d").to_string(),
        max_expiry: (now + Duration::days(364)).format("%Y-%m-%d").to_string(),
    })
    .into_response())
}

/// The create-exception form.
#[derive(Debug, Deserialize)]
pub struct ExceptionForm {
    vuln_id: String,
    /// `host`, `group` or `all`.
    scope: String,
    #[serde(default)]
    host: String,
    #[serde(default)]
    group: String,
    reason: String,
    owner: String,
    /// `YYYY-MM-DD`: the exception holds until the end of that day (UTC).
    expires: String,
}

/// `POST /ui/exceptions`.
pub async fn create(
    State(st): State<AppState>,
    session: UiSession,
    Form(f): Form<ExceptionForm>,
) -> Result<Response, UiError> {
    let day = chrono::NaiveDate::parse_from_str(f.expires.trim(), "%Y-%m-%d").map_err(|_| {
        UiError::BadRequest(format!("expiry {:?} is not a date (YYYY-MM-DD)", f.expires))
    })?;
    let expires_at: DateTime<Utc> = (day + Duration::days(1))
        .and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc())
        .ok_or_else(|| UiError::BadRequest("expiry out of range".into()))?;
    let body = NewExceptionBody {
        vuln_id: f.vuln_id,
        host: (f.scope == "host").then_some(f.host),
        group: (f.scope == "group").then_some(f.group),
        all_hosts: f.scope == "all",
        reason: f.reason,
        owner: f.owner,
        expires_at,
    };
    let p = &session.principal;
    let (_, details) = compliance::create_exception(&st, p.org_id, &p.label(), body).await?;
    Ok((
        Extension(details),
        Redirect::to("/ui/exceptions?done=exception-created"),
    )
        .into_response())
}

/// `POST /ui/exceptions/{exception}/revoke`.
pub async fn revoke(
    State(st): State<AppState>,
    session: UiSession,
    Path(id): Path<String>,
) -> Result<Response, UiError> {
    let id = Uuid::parse_str(&id)
        .map_err(|_| UiError::BadRequest(format!("{id:?} is not an exception id (a UUID)")))?;
    let p = &session.principal;
    let (_, details) = compliance::revoke_exception(&st, p.org_id, &p.label(), id).await?;
    Ok((
        Extension(details),
        Redirect::to("/ui/exceptions?done=exception-revoked"),
    )
        .into_response())
}
