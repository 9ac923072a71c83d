//! The HTTP API, one file per resource: what [`routes`] wires and the helpers the
//! handlers share.
//!
//! The agent API (`/api/v1/agent/...`, bearer agent credential) is [`enroll`] (its own
//! small body limit and the rate limits), [`heartbeat`], [`scans`] (the scan and the v1
//! inventory), [`results`] and [`credential`] (`whoami`, credential rotation). The
//! operator API (`/api/v1/...`, bearer API token, confined to the token's organisation)
//! is [`hosts`] (hosts, their packages, updates, metrics, revocation, approval),
//! [`keys`] (enrollment keys), [`org`] (the organisation's settings), [`commands`] (the
//! command queue), [`vulns`] (the vulnerability views), [`vulndb`] (the feed sync
//! report), [`windows`] (maintenance windows), [`reboots`] (the hosts that need a
//! reboot) and [`releases`] (signed
//! releases and the agent rollout; also the agent's release download, and the public
//! `/downloads/...` and `/install.sh`). [`openapi`] is the OpenAPI document of all of
//! them, served at `/api/v1/openapi.json`.
//!
//! Handlers reach the database only through [`patchctl_storage::Storage`] methods and
//! the CVE engine only through [`crate::engine::VulnEngine`]'s public methods; every
//! error they return is an [`ApiError`].

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post, put};

use crate::AppState;
use crate::error;

pub mod approvals;
pub mod audit;
pub mod commands;
pub mod compliance;
pub mod credential;
pub mod deployments;
pub mod enroll;
pub mod groups;
pub mod guard;
pub mod health;
pub mod heartbeat;
pub mod hosts;
pub mod keys;
pub mod openapi;
pub mod org;
pub mod paging;
pub mod reboots;
pub mod releases;
pub mod results;
pub mod scans;
pub mod tokens;
pub mod users;
pub mod vulndb;
pub mod vulns;
pub mod wait;
pub mod webhooks;
pub mod windows;

/// Largest operator request body.
const MAX_OPERATOR_BODY_BYTES: usize = 1024 * 1024;

/// Every route: the health check, the agent API under `/api/v1/agent` and the operator
/// API under `/api/v1`, each operator route behind its access rule
/// ([`crate::access::authorize`]) and recorded in the audit trail
/// ([`crate::audit::record`]) ([`crate::app`] adds the fallback and the panic guard).
pub fn routes(state: AppState) -> Router<AppState> {
    let agent = Router::new()
        .route("/whoami", get(credential::whoami))
        .route("/credential", post(credential::rotate))
        .route("/heartbeat", post(heartbeat::heartbeat))
        .route("/commands/wait", post(wait::wait))
        .route("/inventory", post(scans::inventory))
        .route("/scan", post(scans::scan))
        .route("/results", post(results::results))
        .route("/releases/{version}/{target}", get(releases::agent_bundle))
        .route(
            "/releases/{version}/{target}/artifact",
            get(releases::agent_artifact),
        )
        // Every agent route above: the rate limits per credential and per address
        // (outside: before any body is read or credential looked up), then, on the
        // database-bound routes (`guard::DB_BOUND_AGENT_ROUTES`), a permit of the
        // bound on requests in flight (503 `overloaded` at once when none is free),
        // then, for a known credential, the size caps of what it sends. Add agent
        // routes (the long-poll) above this line; routes below it have none of these.
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            guard::known_then_size_caps,
        ))
        .route_layer(axum::middleware::from_fn_with_state(
            state.agent_gate.clone(),
            guard::in_flight_if_db_bound,
        ))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            guard::rate_limits,
        ))
        // The innermost body limit wins: an enrollment body is small, and an oversized
        // one is refused before its key is looked at (and before its size caps are
        // checked). Enrollment has its own rate limits (per address, per key); it
        // takes a permit of the bound on requests in flight before its body is read.
        .route(
            "/enroll",
            post(enroll::enroll)
                .route_layer(axum::middleware::from_fn(guard::size_caps))
                .route_layer(axum::middleware::from_fn_with_state(
                    state.agent_gate.clone(),
                    guard::in_flight,
                ))
                .layer(DefaultBodyLimit::max(enroll::MAX_ENROLL_BODY_BYTES)),
        )
        // The limit applies to the body as the handlers read it, which is after the
        // decompression below: a small gzip body that inflates past the limit is
        // refused with 413 once the limit is reached, never inflated whole.
        .layer(DefaultBodyLimit::max(patchctl_proto::MAX_AGENT_BODY_BYTES))
        .layer(tower_http::decompression::RequestDecompressionLayer::new())
        .layer(axum::middleware::map_response(
            error::unsupported_encoding_as_json,
        ));
    let operator = Router::new()
        .route("/hosts", get(hosts::list_hosts))
        .route("/hosts/{host}", get(hosts::show_host))
        .route("/hosts/{host}/packages", get(hosts::host_packages))
        .route("/hosts/{host}/updates", get(hosts::host_updates))
        .route("/hosts/{host}/metrics", get(hosts::host_metrics))
        .route("/hosts/{host}/vulns", get(vulns::host_vulns))
        .route("/vulns/summary", get(vulns::summary))
        .route("/vulns/{id}", get(vulns::advisory_hosts))
        .route("/vulndb/status", get(vulndb::status))
        .route("/reboots", get(reboots::list_reboots))
        .route("/hosts/{host}/revoke", post(hosts::revoke_host))
        .route("/hosts/{host}/approve", post(hosts::approve_host))
        .route("/hosts/{host}/reject", post(hosts::reject_host))
        .route(
            "/enrollment-keys",
            get(keys::list_keys).post(keys::create_key),
        )
        .route("/enrollment-keys/{id}/revoke", post(keys::revoke_key))
        .route("/enrollment-keys/{id}/rotate", post(keys::rotate_key))
        .route("/settings", get(org::get_settings).put(org::put_settings))
        .route(
            "/deadline-policy",
            get(compliance::get_policy).put(compliance::set_policy),
        )
        .route(
            "/exceptions",
            get(compliance::list_exceptions).post(compliance::post_exception),
        )
        .route("/exceptions/{exception}", get(compliance::show_exception))
        .route(
            "/exceptions/{exception}/revoke",
            post(compliance::post_revoke),
        )
        .route("/compliance", get(compliance::get_compliance))
        .route("/compliance/overdue", get(compliance::get_overdue))
        .route(
            "/commands",
            get(commands::list_commands).post(commands::queue_command),
        )
        .route("/commands/{id}", get(commands::show_command))
        .route("/commands/{id}/cancel", post(commands::cancel_command))
        // The innermost body limit wins: a publication carries an artifact.
        .route(
            "/releases",
            get(releases::list_releases).merge(
                post(releases::publish)
                    .layer(DefaultBodyLimit::max(releases::MAX_PUBLISH_BODY_BYTES)),
            ),
        )
        .route(
            "/agent-rollout",
            get(releases::get_rollout).put(releases::put_rollout),
        )
        .route("/audit", get(audit::list_audit))
        .route("/audit/{seq}", get(audit::show_audit))
        .route("/whoami", get(users::whoami))
        .route("/users", get(users::list_users).post(users::create_user))
        .route("/users/{user}", get(users::show_user))
        .route("/users/{user}/role", put(users::set_role))
        .route("/users/{user}/disable", post(users::disable_user))
        .route("/users/{user}/password", put(users::set_password))
        .route(
            "/tokens",
            get(tokens::list_tokens).post(tokens::create_token),
        )
        .route("/tokens/{id}/revoke", post(tokens::revoke_token))
        .route(
            "/groups",
            get(groups::list_groups).post(groups::create_group),
        )
        .route(
            "/groups/{group}",
            get(groups::show_group)
                .put(groups::update_group)
                .delete(groups::delete_group),
        )
        .route(
            "/approvals",
            get(approvals::list_approvals).post(approvals::approve),
        )
        .route(
            "/approvals/{approval}/revoke",
            post(approvals::revoke_approval),
        )
        .route(
            "/approval-rules",
            get(approvals::list_rules).post(approvals::create_rule),
        )
        .route("/approval-rules/run", post(approvals::run_rules))
        .route(
            "/approval-rules/{rule}",
            axum::routing::delete(approvals::delete_rule),
        )
        .route(
            "/manifests",
            get(approvals::list_manifests).post(approvals::create_manifest),
        )
        .route("/manifests/{manifest}", get(approvals::show_manifest))
        .route(
            "/manifests/{manifest}/signatures",
            get(approvals::manifest_signatures).post(approvals::sign_manifest),
        )
        .route(
            "/deployments",
            get(deployments::list_deployments).post(deployments::create_deployment),
        )
        .route(
            "/deployments/{deployment}",
            get(deployments::show_deployment),
        )
        .route(
            "/deployments/{deployment}/hosts",
            get(deployments::deployment_hosts),
        )
        .route(
            "/deployments/{deployment}/events",
            get(deployments::deployment_events),
        )
        .route(
            "/deployments/{deployment}/pause",
            post(deployments::pause_deployment),
        )
        .route(
            "/deployments/{deployment}/resume",
            post(deployments::resume_deployment),
        )
        .route(
            "/deployments/{deployment}/cancel",
            post(deployments::cancel_deployment),
        )
        .route(
            "/hosts/{host}/tags",
            get(groups::host_tags).put(groups::set_host_tags),
        )
        .route(
            "/windows",
            get(windows::list_windows).post(windows::create_window),
        )
        .route(
            "/windows/{window}",
            get(windows::show_window)
                .put(windows::update_window)
                .delete(windows::delete_window),
        )
        .route("/windows/{window}/next", get(windows::next_openings))
        .route(
            "/webhooks",
            get(webhooks::list_webhooks).post(webhooks::create_webhook),
        )
        .route(
            "/webhooks/{webhook}",
            get(webhooks::show_webhook)
                .put(webhooks::update_webhook)
                .delete(webhooks::delete_webhook),
        )
        .route(
            "/webhooks/{webhook}/rotate-secret",
            post(webhooks::rotate_webhook_secret),
        )
        .route(
            "/webhooks/{webhook}/deliveries",
            get(webhooks::list_deliveries),
        )
        .route("/webhooks/{webhook}/test", post(webhooks::test_webhook))
        // Every route above: its access rule, then (outside it, so that refusals are
        // recorded too) the audit trail.
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::access::authorize,
        ))
        .route_layer(axum::middleware::from_fn_with_state(
            state,
            crate::audit::record,
        ))
        .layer(DefaultBodyLimit::max(MAX_OPERATOR_BODY_BYTES));
    Router::new()
        .route("/api/v1/health", get(openapi::health))
        .route("/api/v1/health/live", get(health::live))
        .route("/api/v1/health/ready", get(health::ready))
        .route("/api/v1/openapi.json", get(openapi::openapi_json))
        // Public: packages and binaries are not secret, and the install script runs
        // before the host has a credential.
        .route(
            "/downloads/{product}/{version}/{target}",
            get(releases::download),
        )
        .route("/install.sh", get(releases::install_sh))
        .nest("/api/v1/agent", agent)
        .nest("/api/v1", operator)
}

pub(crate) use crate::lookup::resolve_host;
