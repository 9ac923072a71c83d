//! Approvals, auto-approval rules and manifests: thin handlers over
//! [`crate::policy::approvals`].

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use patchctl_proto::policy::approvals::{
    ApprovalView, ApproveOutcome, ApproveRequest, ManifestRequest, ManifestSignatureRequest,
    ManifestSignatureView, ManifestView, RuleRequest, RuleView,
};
use serde::Deserialize;
use serde_json::json;

use crate::AppState;
use crate::access::{OperatorAuth, Principal};
use crate::audit::AuditDetails;
use crate::error::{ApiError, ApiJson};
use crate::policy::approvals;

/// Query of `GET /api/v1/approvals`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListApprovalsQuery {
    /// Only this group's (name or id).
    pub group: Option<String>,
    /// Withdrawn approvals too.
    #[serde(default)]
    pub all: bool,
}

/// `GET /api/v1/approvals`: newest first.
#[utoipa::path(
    get,
    path = "/api/v1/approvals",
    tag = "approvals",
    params(ListApprovalsQuery),
    responses(
        (status = 200, description = "The approvals, newest first", body = Vec<ApprovalView>),
        (status = 400, description = "bad_request: a parameter is malformed", body = patchctl_proto::api::ApiErrorBody),
        (status = 401, description = "unauthorized: no valid bearer token", body = patchctl_proto::api::ApiErrorBody),
        (status = 403, description = "forbidden: the token's role may not do this (or no_access_rule)", body = patchctl_proto::api::ApiErrorBody),
        (status = 404, description = "not_found: no such group", body = patchctl_proto::api::ApiErrorBody),
        (status = 503, description = "unavailable: the database cannot answer right now; retry", body = patchctl_proto::api::ApiErrorBody),
    ),
)]
pub async fn list_approvals(
    State(st): State<AppState>,
    auth: OperatorAuth,
    Query(q): Query<ListApprovalsQuery>,
) -> Result<Json<Vec<ApprovalView>>, ApiError> {
    Ok(Json(
        approvals::list(&st, auth.org_id, q.group.as_deref(), q.all).await?,
    ))
}

/// `POST /api/v1/approvals`: approve updates (named, or a host's) for a group.
#[utoipa::path(
    post,
    path = "/api/v1/approvals",
    tag = "approvals",
    request_body = ApproveRequest,
    responses(
        (status = 201, description = "What was approved, and how many were approved already", body = ApproveOutcome),
        (status = 400, description = "bad_request: an ecosystem, name or version is malformed; the message says which", body = patchctl_proto::api::ApiErrorBody),
        (status = 401, description = "unauthorized: no valid bearer token", body = patchctl_proto::api::ApiErrorBody),
        (status = 403, description = "forbidden: the token's role may not do this (or no_access_rule)", body = patchctl_proto::api::ApiErrorBody),
        (status = 404, description = "not_found: no such group or host", body = patchctl_proto::api::ApiErrorBody),
        (status = 409, description = "conflict: the host has reported no updates, or several hosts have that name", body = patchctl_proto::api::ApiErrorBody),
        (status = 413, description = "too_large: the body is over the route's limit", body = patchctl_proto::api::ApiErrorBody),
        (status = 415, description = "unsupported_media_type: the body is not JSON", body = patchctl_proto::api::ApiErrorBody),
        (status = 503, description = "unavailable: the database cannot answer right now; retry", body = patchctl_proto::api::ApiErrorBody),
    ),
)]
pub async fn approve(
    State(st): State<AppState>,
    by: Principal,
    ApiJson(req): ApiJson<ApproveRequest>,
) -> Result<(StatusCode, Extension<AuditDetails>, Json<ApproveOutcome>), ApiError> {
    let out = approvals::approve(&st, &by, req).await?;
    Ok((StatusCode::CREATED, approve_details(&out), Json(out)))
}

/// What the audit trail keeps of an approval (the API's and the dashboard's).
pub fn approve_details(out: &ApproveOutcome) -> Extension<AuditDetails> {
    Extension(AuditDetails(json!({
        "approved": out.approved.iter().map(|a| json!({
            "id": a.id, "group": a.group, "ecosystem": a.item.ecosystem,
            "name": a.item.name, "version": a.item.version,
        })).collect::<Vec<_>>(),
        "already": out.already,
    })))
}

/// `POST /api/v1/approvals/{approval}/revoke`: withdraw an approval.
#[utoipa::path(
    post,
    path = "/api/v1/approvals/{approval}/revoke",
    tag = "approvals",
    params(("approval" = uuid::Uuid, Path, description = "Approval id")),
    responses(
        (status = 200, description = "The withdrawn approval", body = ApprovalView),
        (status = 400, description = "bad_request: not an approval id", body = patchctl_proto::api::ApiErrorBody),
        (status = 401, description = "unauthorized: no valid bearer token", body = patchctl_proto::api::ApiErrorBody),
        (status = 403, description = "forbidden: the token's role may not do this (or no_access_rule)", body = patchctl_proto::api::ApiErrorBody),
        (status = 404, description = "not_found: no active approval with that id", body = patchctl_proto::api::ApiErrorBody),
        (status = 503, description = "unavailable: the database cannot answer right now; retry", body = patchctl_proto::api::ApiErrorBody),
    ),
)]
pub async fn revoke_approval(
    State(st): State<AppState>,
    by: Principal,
    Path(approval): Path<String>,
) -> Result<(Extension<AuditDetails>, Json<ApprovalView>), ApiError> {
    let a = approvals::revoke(&st, &by, &approval).await?;
    Ok((revoke_details(&a), Json(a)))
}

/// What the audit trail keeps of a withdrawn approval.
pub fn revoke_details(a: &ApprovalView) -> Extension<AuditDetails> {
    Extension(AuditDetails(json!({
        "approval_id": a.id, "group": a.group, "ecosystem": a.item.ecosystem,
        "name": a.item.name, "version": a.item.version,
    })))
}

/// `GET /api/v1/approval-rules`.
#[utoipa::path(
    get,
    path = "/api/v1/approval-rules",
    tag = "approvals",
    responses(
        (status = 200, description = "The rules, by name", body = Vec<RuleView>),
        (status = 401, description = "unauthorized: no valid bearer token", body = patchctl_proto::api::ApiErrorBody),
        (status = 403, description = "forbidden: the token's role may not do this (or no_access_rule)", body = patchctl_proto::api::ApiErrorBody),
        (status = 503, description = "unavailable: the database cannot answer right now; retry", body = patchctl_proto::api::ApiErrorBody),
    ),
)]
pub async fn list_rules(
    State(st): State<AppState>,
    auth: OperatorAuth,
) -> Result<Json<Vec<RuleView>>, ApiError> {
    Ok(Json(approvals::rules(&st, auth.org_id).await?))
}

/// `POST /api/v1/approval-rules`.
#[utoipa::path(
    post,
    path = "/api/v1/approval-rules",
    tag = "approvals",
    request_body = RuleRequest,
    responses(
        (status = 201, description = "The new rule", body = RuleView),
        (status = 400, description = "bad_request: a value is malformed; the message says which", body = patchctl_proto::api::ApiErrorBody),
        (status = 401, description = "unauthorized: no valid bearer token", body = patchctl_proto::api::ApiErrorBody),
        (status = 403, description = "forbidden: the token's role may not do this (or no_access_rule)", body = patchctl_proto::api::ApiErrorBody),
        (status = 404, description = "not_found: no such group", body = patchctl_proto::api::ApiErrorBody),
        (status = 409, description = "conflict: the organisation has a rule of that name", body = patchctl_proto::api::ApiErrorBody),
        (status = 413, description = "too_large: the body is over the route's limit", body = patchctl_proto::api::ApiErrorBody),
        (status = 415, description = "unsupported_media_type: the body is not JSON", body = patchctl_proto::api::ApiErrorBody),
        (status = 503, description = "unavailable: the database cannot answer right now; retry", body = patchctl_proto::api::ApiErrorBody),
    ),
)]
pub async fn create_rule(
    State(st): State<AppState>,
    by: Principal,
    ApiJson(req): ApiJson<RuleRequest>,
) -> Result<(StatusCode, Extension<AuditDetails>, Json<RuleView>), ApiError> {
    let r = approvals::create_rule(&st, &by, req).await?;
    Ok((StatusCode::CREATED, rule_details(&r), Json(r)))
}

/// What the audit trail keeps of a rule change.
pub fn rule_details(r: &RuleView) -> Extension<AuditDetails> {
    Extension(AuditDetails(json!({
        "rule_id": r.id, "name": r.name, "group": r.group, "security_only": r.security_only,
        "min_severity": r.min_severity, "after_days": r.after_days,
    })))
}

/// `DELETE /api/v1/approval-rules/{rule}`: the rule's approvals stay.
#[utoipa::path(
    delete,
    path = "/api/v1/approval-rules/{rule}",
    tag = "approvals",
    params(("rule" = String, Path, description = "Rule id or name")),
    responses(
        (status = 200, description = "The deleted rule", body = RuleView),
        (status = 401, description = "unauthorized: no valid bearer token", body = patchctl_proto::api::ApiErrorBody),
        (status = 403, description = "forbidden: the token's role may not do this (or no_access_rule)", body = patchctl_proto::api::ApiErrorBody),
        (status = 404, description = "not_found: no such rule", body = patchctl_proto::api::ApiErrorBody),
        (status = 503, description = "unavailable: the database cannot answer right now; retry", body = patchctl_proto::api::ApiErrorBody),
    ),
)]
pub async fn delete_rule(
    State(st): State<AppState>,
    by: Principal,
    Path(rule): Path<String>,
) -> Result<(Extension<AuditDetails>, Json<RuleView>), ApiError> {
    let r = approvals::delete_rule(&st, &by, &rule).await?;
    Ok((rule_details(&r), Json(r)))
}

/// The answer of `POST /api/v1/approval-rules/run`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct RulesRun {
    /// Approvals the rules made.
    pub approved: u64,
}

/// `POST /api/v1/approval-rules/run`: run every rule now (they also run every 10 minutes).
#[utoipa::path(
    post,
    path = "/api/v1/approval-rules/run",
    tag = "approvals",
    responses(
        (status = 200, description = "How many approvals the rules made", body = RulesRun),
        (status = 401, description = "unauthorized: no valid bearer token", body = patchctl_proto::api::ApiErrorBody),
        (status = 403, description = "forbidden: the token's role may not do this (or no_access_rule)", body = patchctl_proto::api::ApiErrorBody),
        (status = 503, description = "unavailable: the database cannot answer right now; retry", body = patchctl_proto::api::ApiErrorBody),
    ),
)]
pub async fn run_rules(
    State(st): State<AppState>,
    _by: Principal,
) -> Result<(Extension<AuditDetails>, Json<RulesRun>), ApiError> {
    let approved = approvals::run_rules(&st, chrono::Utc::now()).await?;
    Ok((run_details(approved), Json(RulesRun { approved })))
}

/// What the audit trail keeps of a run of the rules.
pub fn run_details(approved: u64) -> Extension<AuditDetails> {
    Extension(AuditDetails(json!({"approved": approved})))
}

/// `GET /api/v1/manifests`: newest first, without their items.
#[utoipa::path(
    get,
    path = "/api/v1/manifests",
    tag = "approvals",
    responses(
        (status = 200, description = "The manifests", body = Vec<ManifestView>),
        (status = 401, description = "unauthorized: no valid bearer token", body = patchctl_proto::api::ApiErrorBody),
        (status = 403, description = "forbidden: the token's role may not do this (or no_access_rule)", body = patchctl_proto::api::ApiErrorBody),
        (status = 503, description = "unavailable: the database cannot answer right now; retry", body = patchctl_proto::api::ApiErrorBody),
    ),
)]
pub async fn list_manifests(
    State(st): State<AppState>,
    auth: OperatorAuth,
) -> Result<Json<Vec<ManifestView>>, ApiError> {
    Ok(Json(approvals::manifests(&st, auth.org_id).await?))
}

/// `POST /api/v1/manifests`: freeze a group's approvals into exact versions.
#[utoipa::path(
    post,
    path = "/api/v1/manifests",
    tag = "approvals",
    request_body = ManifestRequest,
    responses(
        (status = 201, description = "The manifest with its items", body = ManifestView),
        (status = 400, description = "bad_request: the name is malformed", body = patchctl_proto::api::ApiErrorBody),
        (status = 401, description = "unauthorized: no valid bearer token", body = patchctl_proto::api::ApiErrorBody),
        (status = 403, description = "forbidden: the token's role may not do this (or no_access_rule)", body = patchctl_proto::api::ApiErrorBody),
        (status = 404, description = "not_found: no such group", body = patchctl_proto::api::ApiErrorBody),
        (status = 409, description = "conflict: the name is taken, or the group has no approvals", body = patchctl_proto::api::ApiErrorBody),
        (status = 413, description = "too_large: the body is over the route's limit", body = patchctl_proto::api::ApiErrorBody),
        (status = 415, description = "unsupported_media_type: the body is not JSON", body = patchctl_proto::api::ApiErrorBody),
        (status = 503, description = "unavailable: the database cannot answer right now; retry", body = patchctl_proto::api::ApiErrorBody),
    ),
)]
pub async fn create_manifest(
    State(st): State<AppState>,
    by: Principal,
    ApiJson(req): ApiJson<ManifestRequest>,
) -> Result<(StatusCode, Extension<AuditDetails>, Json<ManifestView>), ApiError> {
    let m = approvals::freeze(&st, &by, req).await?;
    Ok((StatusCode::CREATED, manifest_details(&m), Json(m)))
}

/// What the audit trail keeps of a new manifest.
pub fn manifest_details(m: &ManifestView) -> Extension<AuditDetails> {
    Extension(AuditDetails(json!({
        "manifest_id": m.id, "name": m.name, "group": m.group, "items": m.item_count,
    })))
}

/// `GET /api/v1/manifests/{manifest}`: with its items.
#[utoipa::path(
    get,
    path = "/api/v1/manifests/{manifest}",
    tag = "approvals",
    params(("manifest" = String, Path, description = "Manifest id or name")),
    responses(
        (status = 200, description = "The manifest with its items", body = ManifestView),
        (status = 401, description = "unauthorized: no valid bearer token", body = patchctl_proto::api::ApiErrorBody),
        (status = 403, description = "forbidden: the token's role may not do this (or no_access_rule)", body = patchctl_proto::api::ApiErrorBody),
        (status = 404, description = "not_found: no such manifest", body = patchctl_proto::api::ApiErrorBody),
        (status = 503, description = "unavailable: the database cannot answer right now; retry", body = patchctl_proto::api::ApiErrorBody),
    ),
)]
pub async fn show_manifest(
    State(st): State<AppState>,
    auth: OperatorAuth,
    Path(manifest): Path<String>,
) -> Result<Json<ManifestView>, ApiError> {
    Ok(Json(
        approvals::manifest(&st, auth.org_id, &manifest).await?,
    ))
}

/// `POST /api/v1/manifests/{manifest}/signatures`: an approver's signature.
#[utoipa::path(
    post,
    path = "/api/v1/manifests/{manifest}/signatures",
    tag = "approvals",
    params(("manifest" = String, Path, description = "Manifest id or name")),
    request_body = ManifestSignatureRequest,
    responses(
        (status = 201, description = "The signature, verified and kept", body = ManifestSignatureView),
        (status = 400, description = "bad_request: not signed by an approver of the organisation, or not of exactly this manifest's updates", body = patchctl_proto::api::ApiErrorBody),
        (status = 401, description = "unauthorized: no valid bearer token", body = patchctl_proto::api::ApiErrorBody),
        (status = 403, description = "forbidden: the token's role may not do this (or no_access_rule)", body = patchctl_proto::api::ApiErrorBody),
        (status = 404, description = "not_found: no such manifest", body = patchctl_proto::api::ApiErrorBody),
        (status = 409, description = "conflict: the organisation has no approvers", body = patchctl_proto::api::ApiErrorBody),
        (status = 413, description = "too_large: the body is over the route's limit", body = patchctl_proto::api::ApiErrorBody),
        (status = 415, description = "unsupported_media_type: the body is not JSON", body = patchctl_proto::api::ApiErrorBody),
        (status = 503, description = "unavailable: the database cannot answer right now; retry", body = patchctl_proto::api::ApiErrorBody),
    ),
)]
pub async fn sign_manifest(
    State(st): State<AppState>,
    auth: OperatorAuth,
    Path(manifest): Path<String>,
    ApiJson(req): ApiJson<ManifestSignatureRequest>,
) -> Result<
    (
        StatusCode,
        Extension<AuditDetails>,
        Json<ManifestSignatureView>,
    ),
    ApiError,
> {
    let v = crate::policy::signatures::sign(&st, auth.org_id, &manifest, req.signed).await?;
    let details = Extension(AuditDetails(json!({
        "manifest_id": v.manifest_id, "approver": v.approver, "key_id": v.key_id,
    })));
    Ok((StatusCode::CREATED, details, Json(v)))
}

/// `GET /api/v1/manifests/{manifest}/signatures`: the approvers who signed it.
#[utoipa::path(
    get,
    path = "/api/v1/manifests/{manifest}/signatures",
    tag = "approvals",
    params(("manifest" = String, Path, description = "Manifest id or name")),
    responses(
        (status = 200, description = "The signatures, oldest first", body = Vec<ManifestSignatureView>),
        (status = 401, description = "unauthorized: no valid bearer token", body = patchctl_proto::api::ApiErrorBody),
        (status = 403, description = "forbidden: the token's role may not do this (or no_access_rule)", body = patchctl_proto::api::ApiErrorBody),
        (status = 404, description = "not_found: no such manifest", body = patchctl_proto::api::ApiErrorBody),
        (status = 503, description = "unavailable: the database cannot answer right now; retry", body = patchctl_proto::api::ApiErrorBody),
    ),
)]
pub async fn manifest_signatures(
    State(st): State<AppState>,
    auth: OperatorAuth,
    Path(manifest): Path<String>,
) -> Result<Json<Vec<ManifestSignatureView>>, ApiError> {
    Ok(Json(
        crate::policy::signatures::list(&st, auth.org_id, &manifest).await?,
    ))
}
