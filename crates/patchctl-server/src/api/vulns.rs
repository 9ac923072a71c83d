//! The vulnerability views of the operator's organisation: a host's findings, the hosts
//! an advisory or CVE concerns, and the summary by severity. Each is one call of the
//! CVE engine ([`crate::engine::VulnEngine`]); this file only parses the query and
//! resolves the host.

use axum::Json;
use axum::extract::{Path, Query, State};
use patchctl_vuln::fleet::Summary;
use patchctl_vuln::report::{AdvisoryHosts, Filter, HostFindings};
use serde::Deserialize;

use super::resolve_host;
use crate::AppState;
use crate::access::OperatorAuth;
use crate::error::ApiError;

/// Query of the vulnerability views.
#[derive(Debug, Default, Deserialize)]
pub struct VulnQuery {
    /// Comma-separated severities.
    pub severity: Option<String>,
    /// Only fixable findings.
    #[serde(default)]
    pub fixable: bool,
    /// Comma-separated statuses.
    pub status: Option<String>,
}

impl VulnQuery {
    fn filter(&self) -> Result<Filter, ApiError> {
        Filter::parse(
            self.severity.as_deref(),
            self.fixable,
            self.status.as_deref(),
        )
        .map_err(|e| ApiError::bad_request(e.to_string()))
    }
}

/// `GET /api/v1/hosts/{host}/vulns`.
pub async fn host_vulns(
    State(st): State<AppState>,
    op: OperatorAuth,
    Path(host): Path<String>,
    Query(q): Query<VulnQuery>,
) -> Result<Json<HostFindings>, ApiError> {
    let filter = q.filter()?;
    let h = resolve_host(&st, op.org_id, &host).await?;
    Ok(Json(st.vulns.host_findings(&h, &filter).await?))
}

/// `GET /api/v1/vulns/{id}`: hosts with a finding about an advisory or CVE id.
pub async fn advisory_hosts(
    State(st): State<AppState>,
    op: OperatorAuth,
    Path(id): Path<String>,
    Query(q): Query<VulnQuery>,
) -> Result<Json<AdvisoryHosts>, ApiError> {
    let filter = q.filter()?;
    Ok(Json(st.vulns.hosts_for(op.org_id, id, &filter).await?))
}

/// `GET /api/v1/vulns/summary`: the organisation's vulnerable findings by severity.
pub async fn summary(
    State(st): State<AppState>,
    op: OperatorAuth,
) -> Result<Json<Summary>, ApiError> {
    Ok(Json(st.vulns.summary(op.org_id).await?))
}
