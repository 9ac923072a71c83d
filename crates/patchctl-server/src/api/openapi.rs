//! The OpenAPI 3.1 document of the platform, generated from the handlers'
//! `#[utoipa::path]` attributes and the wire types' `ToSchema` derives (the `openapi`
//! feature of `patchctl-proto` and `patchctl-vuln`), and served, public, at
//! `GET /api/v1/openapi.json`.
//!
//! A route added to [`super::routes`] is added here too, one line in `paths(...)`;
//! `tests/openapi.rs` fails on any route of the access rules missing from the document
//! and on any path of the document that no rule names.

use std::sync::OnceLock;

use axum::Json;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{
    approvals, audit, compliance, deployments, groups, reboots, scans, tokens, users, vulndb,
    vulns, webhooks, windows,
};
use super::{commands, credential, enroll, heartbeat, hosts, keys, org, releases, results, wait};

/// The document: every route of the platform, its parameters, answers and error bodies.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "PatchCTL platform API",
        description = "The operator API (`/api/v1/...`, bearer API token), the agent API \
            (`/api/v1/agent/...`, bearer agent credential) and the public routes. Every \
            error answer is an `ApiErrorBody` with a stable machine code (`code`). Lists \
            are paged with `limit` and `cursor`; the next page's cursor is in \
            `X-Next-Cursor` (and `Link: <...>; rel=\"next\"`). See docs/api.md.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        health,
        openapi_json,
        hosts::list_hosts,
        hosts::show_host,
        hosts::host_packages,
        hosts::host_updates,
        hosts::host_metrics,
        hosts::revoke_host,
        hosts::approve_host,
        hosts::reject_host,
        vulns::host_vulns,
        vulns::summary,
        vulns::advisory_hosts,
        vulndb::status,
        reboots::list_reboots,
        keys::list_keys,
        keys::create_key,
        keys::revoke_key,
        keys::rotate_key,
        org::get_settings,
        org::put_settings,
        compliance::get_policy,
        compliance::set_policy,
        compliance::list_exceptions,
        compliance::post_exception,
        compliance::show_exception,
        compliance::post_revoke,
        compliance::get_compliance,
        compliance::get_overdue,
        commands::list_commands,
        commands::queue_command,
        commands::show_command,
        commands::cancel_command,
        releases::list_releases,
        releases::publish,
        releases::get_rollout,
        releases::put_rollout,
        enroll::enroll,
        credential::whoami,
        credential::rotate,
        heartbeat::heartbeat,
        wait::wait,
        super::health::live,
        super::health::ready,
        scans::inventory,
        scans::scan,
        results::results,
        releases::agent_bundle,
        releases::agent_artifact,
        releases::download,
        releases::install_sh,
        users::whoami,
        users::list_users,
        users::show_user,
        users::create_user,
        users::set_role,
        users::disable_user,
        users::set_password,
        tokens::list_tokens,
        tokens::create_token,
        tokens::revoke_token,
        groups::list_groups,
        groups::create_group,
        groups::show_group,
        groups::update_group,
        groups::delete_group,
        groups::host_tags,
        groups::set_host_tags,
        approvals::list_approvals,
        approvals::approve,
        approvals::revoke_approval,
        approvals::list_rules,
        approvals::create_rule,
        approvals::delete_rule,
        approvals::run_rules,
        approvals::list_manifests,
        approvals::create_manifest,
        approvals::show_manifest,
        approvals::sign_manifest,
        approvals::manifest_signatures,
        deployments::list_deployments,
        deployments::create_deployment,
        deployments::show_deployment,
        deployments::deployment_hosts,
        deployments::deployment_events,
        deployments::pause_deployment,
        deployments::resume_deployment,
        deployments::cancel_deployment,
        windows::list_windows,
        windows::show_window,
        windows::create_window,
        windows::update_window,
        windows::delete_window,
        windows::next_openings,
        audit::list_audit,
        audit::show_audit,
        crate::metrics::scrape,
        webhooks::list_webhooks,
        webhooks::create_webhook,
        webhooks::show_webhook,
        webhooks::update_webhook,
        webhooks::delete_webhook,
        webhooks::rotate_webhook_secret,
        webhooks::list_deliveries,
        webhooks::test_webhook,
    ),
    components(schemas(patchctl_proto::trust::ErrorCode)),
    modifiers(&BearerSchemes),
    security(("api_token" = [])),
    tags(
        (name = "hosts", description = "Hosts, their packages, updates, metrics and standing"),
        (name = "vulns", description = "CVE findings and the vulnerability database"),
        (name = "commands", description = "The command queue"),
        (name = "enrollment-keys", description = "Enrollment keys"),
        (name = "settings", description = "The organisation's settings"),
        (name = "compliance", description = "Remediation deadlines, exceptions (accepted risk) and compliance"),
        (name = "releases", description = "Signed releases and the agent rollout"),
        (name = "agent", description = "The agent API (bearer agent credential)"),
        (name = "public", description = "Routes without any credential"),
        (name = "users", description = "Users, their roles and who am I"),
        (name = "tokens", description = "API tokens"),
        (name = "audit", description = "The audit trail of operators"),
        (name = "windows", description = "Maintenance windows per group"),
        (name = "metrics", description = "Prometheus metrics"),
        (name = "groups", description = "Groups of hosts and host tags"),
        (name = "approvals", description = "Approvals, auto-approval rules and manifests"),
        (name = "deployments", description = "Deployments of manifests in rings, gated on health"),
        (name = "webhooks", description = "Webhook subscriptions and their deliveries"),
        (name = "reboots", description = "Hosts that need a reboot"),
    ),
)]
pub struct ApiDoc;

/// Adds the two bearer schemes: `api_token` (operators) and `agent_credential`.
struct BearerSchemes;

impl Modify for BearerSchemes {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API token: `Authorization: Bearer <token>` (the organisation \
                         token, or a user's token)",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "agent_credential",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An agent credential, issued at enrollment: `Authorization: Bearer \
                         <credential>`",
                    ))
                    .build(),
            ),
        );
    }
}

/// The document as JSON text, built once.
pub fn document_json() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        ApiDoc::openapi()
            .to_json()
            .expect("the OpenAPI document serialises")
    })
}

/// Answer of `GET /api/v1/health`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Health {
    /// Always `ok`.
    pub status: &'static str,
}

/// `GET /api/v1/health`: the platform answers.
#[utoipa::path(
    get,
    path = "/api/v1/health",
    tag = "public",
    responses((status = 200, description = "The platform answers", body = Health)),
    security(()),
)]
pub async fn health() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// `GET /api/v1/openapi.json`: this document.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "public",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json")),
    security(()),
)]
pub async fn openapi_json() -> Response {
    let mut resp = document_json().into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}
