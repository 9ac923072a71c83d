//! The vulnerabilities pages: `GET /ui/vulns` (every advisory with a vulnerable finding
//! in the organisation, with its severity, known exploitation, whether a fix exists and
//! the number of hosts; filters and pages; the hosts whose findings are unknown shown as
//! such, never as zero) and `GET /ui/vulns/{id}` (the hosts of one advisory or CVE with
//! package, installed and fixed version and the evidence). Both are views of the CVE
//! engine ([`crate::engine::VulnEngine`]).

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use patchctl_vuln::fleet::{AdvisoryCount, Summary};
use patchctl_vuln::report::{AffectedHost, Filter};
use serde::Deserialize;

use super::{Chrome, Page, UiError, UiSession, paging};
use crate::AppState;
use crate::engine::EngineError;
use crate::error::ApiError;

/// Advisories per page.
pub const PAGE: usize = 100;
/// Hosts per page of one advisory.
pub const HOSTS_PAGE: usize = 200;

/// Query of `GET /ui/vulns`.
#[derive(Debug, Default, Deserialize)]
pub struct VulnsQuery {
    /// Only this severity (`critical`, `high`, ...).
    #[serde(default)]
    pub severity: String,
    /// Only advisories known to be exploited (any non-empty value).
    #[serde(default)]
    pub kev: String,
    /// Only advisories whose id, aliases or summary contain this (any case).
    #[serde(default)]
    pub q: String,
    /// The first line of the page (0-based).
    #[serde(default)]
    pub from: usize,
}

/// The advisories page.
#[derive(Template)]
#[template(path = "vulns.html")]
pub struct VulnsPage {
    /// The layout.
    pub chrome: Chrome,
    /// The filters as given.
    pub query: VulnsQuery,
    /// The severity names of the filter's select.
    pub severities: Vec<&'static str>,
    /// The organisation's summary.
    pub summary: Summary,
    /// Hosts without data per release, for the notice.
    pub without_data: Vec<(String, u64)>,
    /// The page of advisories.
    pub rows: Vec<AdvisoryCount>,
    /// Advisories the filters keep (all pages).
    pub total: usize,
    /// Query string of the next page, if any.
    pub next: Option<String>,
    /// Query string of the previous page, if any.
    pub prev: Option<String>,
}

/// What a page shows while the engine loads.
#[derive(Template)]
#[template(path = "vulns_loading.html")]
pub struct LoadingPage {
    /// The layout.
    pub chrome: Chrome,
}

fn params(q: &VulnsQuery) -> Vec<(&'static str, String)> {
    vec![
        ("severity", q.severity.clone()),
        ("kev", q.kev.clone()),
        ("q", q.q.clone()),
    ]
}

fn keep(q: &VulnsQuery, a: &AdvisoryCount) -> bool {
    if !q.severity.is_empty() && a.severity.name() != q.severity {
        return false;
    }
    if !q.kev.is_empty() && !a.known_exploited {
        return false;
    }
    let needle = q.q.trim().to_lowercase();
    needle.is_empty()
        || a.id.to_lowercase().contains(&needle)
        || a.aliases.iter().any(|x| x.to_lowercase().contains(&needle))
        || a.summary.to_lowercase().contains(&needle)
}

/// `Ok(None)` while the engine is still loading.
fn loaded<T>(r: Result<T, EngineError>) -> Result<Option<T>, UiError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(EngineError::Loading) => Ok(None),
        Err(e) => Err(UiError::Api(ApiError::from(e))),
    }
}

/// `GET /ui/vulns`.
pub async fn list(
    State(st): State<AppState>,
    session: UiSession,
    Query(query): Query<VulnsQuery>,
) -> Result<Response, UiError> {
    let chrome = session.chrome("vulns");
    let org = session.principal.org_id;
    let severities: Vec<&'static str> = patchctl_vuln::severity::Severity::ALL
        .iter()
        .map(|s| s.name())
        .collect();
    if !query.severity.is_empty() && !severities.contains(&query.severity.as_str()) {
        return Err(UiError::BadRequest(format!(
            "unknown severity {:?}; choose one of {}",
            query.severity,
            severities.join(", ")
        )));
    }
    // Both served stale while one recompute runs: crate::views.
    let Some(summary) = loaded(st.views.summary(&st.vulns, org).await)? else {
        return Ok(Page(LoadingPage { chrome }).into_response());
    };
    let Some(all) = loaded(st.views.advisories(&st.vulns, org).await)? else {
        return Ok(Page(LoadingPage { chrome }).into_response());
    };
    let kept: Vec<AdvisoryCount> = all.iter().filter(|a| keep(&query, a)).cloned().collect();
    let total = kept.len();
    let from = query.from.min(total);
    let rows: Vec<AdvisoryCount> = kept.into_iter().skip(from).take(PAGE).collect();
    let p = params(&query);
    let next = (from + PAGE < total).then(|| paging::with(&p, "from", &(from + PAGE).to_string()));
    let prev = (from > 0).then(|| paging::with(&p, "from", &from.saturating_sub(PAGE).to_string()));
    let without_data = summary
        .without_data
        .iter()
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    Ok(Page(VulnsPage {
        chrome,
        query,
        severities,
        summary: (*summary).clone(),
        without_data,
        rows,
        total,
        next,
        prev,
    })
    .into_response())
}

/// Query of `GET /ui/vulns/{id}`.
#[derive(Debug, Default, Deserialize)]
pub struct HostsQuery {
    /// The first host of the page (0-based).
    #[serde(default)]
    pub from: usize,
}

/// One advisory's hosts.
#[derive(Template)]
#[template(path = "vuln.html")]
pub struct VulnPage {
    /// The layout.
    pub chrome: Chrome,
    /// The advisory or CVE id asked for.
    pub id: String,
    /// What the first finding says about it (summary, aliases, scores).
    pub first: Option<patchctl_vuln::matcher::Finding>,
    /// Hosts concerned (all pages).
    pub total: usize,
    /// Of those, vulnerable ones.
    pub vulnerable: usize,
    /// The page of hosts.
    pub rows: Vec<AffectedHost>,
    /// Query string of the next page, if any.
    pub next: Option<String>,
    /// Query string of the previous page, if any.
    pub prev: Option<String>,
}

impl VulnPage {
    /// What a finding's status says about the fix, in words.
    pub fn fix(f: &patchctl_vuln::matcher::Finding) -> String {
        match f.status.fixed_version() {
            Some(v) => v.to_owned(),
            None => f.status.name().replace('_', " "),
        }
    }
}

/// `GET /ui/vulns/{id}`.
pub async fn show(
    State(st): State<AppState>,
    session: UiSession,
    Path(id): Path<String>,
    Query(q): Query<HostsQuery>,
) -> Result<Response, UiError> {
    let chrome = session.chrome("vulns");
    let org = session.principal.org_id;
    let id = id.trim().to_owned();
    if id.is_empty() || id.len() > 200 || id.chars().any(char::is_control) {
        return Err(UiError::BadRequest(
            "give an advisory or CVE id (CVE-2024-6387, DSA-5724-1)".into(),
        ));
    }
    let Some(found) = loaded(
        st.vulns
            .hosts_for(org, id.clone(), &Filter::default())
            .await,
    )?
    else {
        return Ok(Page(LoadingPage { chrome }).into_response());
    };
    let total = found.hosts.len();
    let vulnerable = found.hosts.iter().filter(|h| h.finding.vulnerable).count();
    let first = found.hosts.first().map(|h| h.finding.clone());
    let from = q.from.min(total);
    let rows: Vec<AffectedHost> = found
        .hosts
        .into_iter()
        .skip(from)
        .take(HOSTS_PAGE)
        .collect();
    let next = (from + HOSTS_PAGE < total).then(|| format!("from={}", from + HOSTS_PAGE));
    let prev = (from > 0).then(|| format!("from={}", from.saturating_sub(HOSTS_PAGE)));
    Ok(Page(VulnPage {
        chrome,
        id,
        first,
        total,
        vulnerable,
        rows,
        next,
        prev,
    })
    .into_response())
}
