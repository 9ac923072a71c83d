//! The approvals page: `GET /ui/approvals` (the active approvals with who approved
//! them and when, the auto-approval rules) and its forms: approve a host's available
//! updates (or only its security updates) for a group (`POST /ui/approvals`, the way a
//! newcomer approves this machine's security updates), withdraw an approval
//! (`POST /ui/approvals/{approval}/revoke`), create and delete a rule
//! (`POST /ui/approval-rules`, `POST /ui/approval-rules/{rule}/delete`) and run the
//! rules now (`POST /ui/approval-rules/run`). Every change goes through
//! [`crate::policy::approvals`], the service the API calls too.

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use patchctl_proto::policy::approvals::{
    ApprovalSource, ApprovalView, ApproveRequest, MinSeverity, RuleRequest, RuleView,
};
use patchctl_proto::policy::groups::GroupView;
use serde::Deserialize;
use uuid::Uuid;

use super::{Chrome, Page, UiError, UiSession};
use crate::AppState;
use crate::api::approvals::{approve_details, revoke_details, rule_details, run_details};
use crate::policy::{approvals, groups};

/// The severities a rule may ask for, as the form offers them.
pub const SEVERITIES: [&str; 5] = ["any", "low", "medium", "high", "critical"];

/// Query of `GET /ui/approvals`: what the previous form did, and its counts.
#[derive(Debug, Default, Deserialize)]
pub struct DoneQuery {
    /// `approved`, `revoked`, `rule-created`, `rule-deleted`, `ran`.
    #[serde(default)]
    pub done: String,
    /// How many were approved.
    #[serde(default)]
    pub n: u64,
    /// How many were approved already.
    #[serde(default)]
    pub already: u64,
}

fn notice(q: &DoneQuery) -> Option<String> {
    Some(match q.done.as_str() {
        "approved" => format!(
            "{} updates approved for the group ({} were approved already).",
            q.n, q.already
        ),
        "revoked" => "The approval was withdrawn.".into(),
        "rule-created" => "The rule was created; it runs every 10 minutes.".into(),
        "rule-deleted" => "The rule was deleted; its approvals stay.".into(),
        "ran" => format!("The rules ran: {} new approvals.", q.n),
        _ => return None,
    })
}

/// A host to pick in the approve form.
pub struct HostChoice {
    /// Id.
    pub id: Uuid,
    /// Name.
    pub hostname: String,
}

/// `GET /ui/approvals`.
#[derive(Template)]
#[template(path = "approvals.html")]
pub struct ApprovalsPage {
    /// The layout.
    pub chrome: Chrome,
    /// What the previous form did.
    pub notice: Option<String>,
    /// The active approvals, newest first.
    pub approvals: Vec<ApprovalView>,
    /// The rules, by name.
    pub rules: Vec<RuleView>,
    /// Every group, for the forms.
    pub groups: Vec<GroupView>,
    /// Every host (not revoked), for the approve form.
    pub hosts: Vec<HostChoice>,
    /// The severities a rule may ask for.
    pub severities: [&'static str; 5],
}

/// Who or what approved, in words: `user:alice`, `rule nightly-security`.
pub fn source_text(a: &ApprovalView) -> String {
    match &a.source {
        ApprovalSource::Manual => a.approved_by.clone(),
        ApprovalSource::Rule { rule, .. } => format!("rule {rule}"),
    }
}

/// A severity as the page names it.
pub fn severity_text(s: &MinSeverity) -> &'static str {
    match s {
        MinSeverity::Any => "any",
        MinSeverity::Low => "low",
        MinSeverity::Medium => "medium",
        MinSeverity::High => "high",
        MinSeverity::Critical => "critical",
    }
}

/// `GET /ui/approvals`.
pub async fn page(
    State(st): State<AppState>,
    session: UiSession,
    Query(q): Query<DoneQuery>,
) -> Result<Page<ApprovalsPage>, UiError> {
    let org = session.principal.org_id;
    let mut hosts: Vec<HostChoice> = st
        .store
        .host_facts(org, None)
        .await?
        .into_iter()
        .map(|h| HostChoice {
            id: h.host_id,
            hostname: h.hostname,
        })
        .collect();
    hosts.sort_by(|a, b| a.hostname.cmp(&b.hostname));
    Ok(Page(ApprovalsPage {
        chrome: session.chrome("approvals"),
        notice: notice(&q),
        approvals: approvals::list(&st, org, None, false).await?,
        rules: approvals::rules(&st, org).await?,
        groups: groups::list(&st, org).await?,
        hosts,
        severities: SEVERITIES,
    }))
}

/// The approve form: a host's updates for a group.
#[derive(Debug, Deserialize)]
pub struct ApproveForm {
    /// Group id or name.
    #[serde(default)]
    pub group: String,
    /// Host id or name.
    #[serde(default)]
    pub host: String,
    /// Present (`on`) when only security updates are approved.
    #[serde(default)]
    pub security_only: Option<String>,
}

/// `POST /ui/approvals`.
pub async fn approve(
    State(st): State<AppState>,
    session: UiSession,
    Form(f): Form<ApproveForm>,
) -> Result<Response, UiError> {
    if f.host.trim().is_empty() {
        return Err(UiError::BadRequest(
            "choose the host whose available updates to approve".into(),
        ));
    }
    let req = ApproveRequest {
        group: f.group,
        updates: Vec::new(),
        from_host: Some(f.host.trim().to_owned()),
        security_only: f.security_only.is_some(),
    };
    let out = approvals::approve(&st, &session.principal, req).await?;
    let to = format!(
        "/ui/approvals?done=approved&n={}&already={}",
        out.approved.len(),
        out.already
    );
    Ok((approve_details(&out), Redirect::to(&to)).into_response())
}

/// `POST /ui/approvals/{approval}/revoke`.
pub async fn revoke(
    State(st): State<AppState>,
    session: UiSession,
    Path(approval): Path<String>,
) -> Result<Response, UiError> {
    let a = approvals::revoke(&st, &session.principal, &approval).await?;
    Ok((
        revoke_details(&a),
        Redirect::to("/ui/approvals?done=revoked"),
    )
        .into_response())
}

/// The rule form.
#[derive(Debug, Deserialize)]
pub struct RuleForm {
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Group id or name.
    #[serde(default)]
    pub group: String,
    /// Present (`on`) for security updates only.
    #[serde(default)]
    pub security_only: Option<String>,
    /// One of [`SEVERITIES`].
    #[serde(default)]
    pub min_severity: String,
    /// Days after first seen.
    #[serde(default)]
    pub after_days: String,
}

fn severity(s: &str) -> Result<MinSeverity, UiError> {
    Ok(match s.trim() {
        "" | "any" => MinSeverity::Any,
        "low" => MinSeverity::Low,
        "medium" => MinSeverity::Medium,
        "high" => MinSeverity::High,
        "critical" => MinSeverity::Critical,
        other => {
            return Err(UiError::BadRequest(format!(
                "minimum severity {other:?} is not one of any, low, medium, high, critical"
            )));
        }
    })
}

/// `POST /ui/approval-rules`.
pub async fn create_rule(
    State(st): State<AppState>,
    session: UiSession,
    Form(f): Form<RuleForm>,
) -> Result<Response, UiError> {
    let after_days = match f.after_days.trim() {
        "" => 0,
        d => d.parse::<u32>().map_err(|_| {
            UiError::BadRequest(format!(
                "days after first seen {d:?} is not a whole number of days (0 to 365)"
            ))
        })?,
    };
    let req = RuleRequest {
        name: f.name.trim().to_owned(),
        group: f.group,
        security_only: f.security_only.is_some(),
        min_severity: severity(&f.min_severity)?,
        after_days,
    };
    let r = approvals::create_rule(&st, &session.principal, req).await?;
    Ok((
        rule_details(&r),
        Redirect::to("/ui/approvals?done=rule-created#rules"),
    )
        .into_response())
}

/// `POST /ui/approval-rules/{rule}/delete`.
pub async fn delete_rule(
    State(st): State<AppState>,
    session: UiSession,
    Path(rule): Path<String>,
) -> Result<Response, UiError> {
    let r = approvals::delete_rule(&st, &session.principal, &rule).await?;
    Ok((
        rule_details(&r),
        Redirect::to("/ui/approvals?done=rule-deleted#rules"),
    )
        .into_response())
}

/// `POST /ui/approval-rules/run`: every rule now.
pub async fn run_rules(
    State(st): State<AppState>,
    _session: UiSession,
) -> Result<Response, UiError> {
    let n = approvals::run_rules(&st, Utc::now()).await?;
    Ok((
        run_details(n),
        Redirect::to(&format!("/ui/approvals?done=ran&n={n}")),
    )
        .into_response())
}
