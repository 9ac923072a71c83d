//! The access rule of every operator route: what it needs ([`Need`]) and the name of
//! its action in the audit trail. One table, [`RULES`]; a route that is not in it is
//! refused for everyone ([`super::authorize`] fails closed), and the role-matrix test
//! walks every entry with every role. Routes that need no operator ([`PUBLIC`]) and
//! the agent's routes ([`AGENT`]) are listed too, so that the whole API is accounted
//! for.

use patchctl_proto::access::Need;

/// The rule of one route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// HTTP method (`GET`, `POST`, `PUT`, `DELETE`).
    pub method: &'static str,
    /// The full route template, as axum matched it (`/api/v1/hosts/{host}`).
    pub path: &'static str,
    /// What the caller's role must allow.
    pub need: Need,
    /// The action's name in the audit trail (`host.revoke`).
    pub action: &'static str,
}

const fn rule(method: &'static str, path: &'static str, need: Need, action: &'static str) -> Rule {
    Rule {
        method,
        path,
        need,
        action,
    }
}

use Need::{Account, Administer, Audit, Identity, Operate, Read};

/// Every operator route (API and dashboard) and its rule.
pub static RULES: &[Rule] = &[
    // Hosts.
    rule("GET", "/api/v1/hosts", Read, "hosts.list"),
    rule("GET", "/api/v1/hosts/{host}", Read, "host.show"),
    rule(
        "GET",
        "/api/v1/hosts/{host}/packages",
        Read,
        "host.packages",
    ),
    rule("GET", "/api/v1/hosts/{host}/updates", Read, "host.updates"),
    rule("GET", "/api/v1/hosts/{host}/metrics", Read, "host.metrics"),
    rule("GET", "/api/v1/hosts/{host}/vulns", Read, "host.vulns"),
    rule("GET", "/api/v1/reboots", Read, "reboots.list"),
    rule(
        "POST",
        "/api/v1/hosts/{host}/revoke",
        Administer,
        "host.revoke",
    ),
    rule(
        "POST",
        "/api/v1/hosts/{host}/approve",
        Administer,
        "host.approve",
    ),
    rule(
        "POST",
        "/api/v1/hosts/{host}/reject",
        Administer,
        "host.reject",
    ),
    // Vulnerabilities.
    rule("GET", "/api/v1/vulns/summary", Read, "vulns.summary"),
    rule("GET", "/api/v1/vulns/{id}", Read, "vuln.hosts"),
    rule("GET", "/api/v1/vulndb/status", Read, "vulndb.status"),
    // Enrollment keys.
    rule("GET", "/api/v1/enrollment-keys", Read, "keys.list"),
    rule("POST", "/api/v1/enrollment-keys", Administer, "key.create"),
    rule(
        "POST",
        "/api/v1/enrollment-keys/{id}/revoke",
        Administer,
        "key.revoke",
    ),
    rule(
        "POST",
        "/api/v1/enrollment-keys/{id}/rotate",
        Administer,
        "key.rotate",
    ),
    // The organisation's settings.
    rule("GET", "/api/v1/settings", Read, "settings.show"),
    rule("PUT", "/api/v1/settings", Administer, "settings.update"),
    // Remediation deadlines, exceptions and compliance.
    rule(
        "GET",
        "/api/v1/deadline-policy",
        Read,
        "deadline_policy.show",
    ),
    rule(
        "PUT",
        "/api/v1/deadline-policy",
        Administer,
        "deadline_policy.update",
    ),
    rule("GET", "/api/v1/exceptions", Read, "exceptions.list"),
    rule("POST", "/api/v1/exceptions", Administer, "exception.create"),
    rule(
        "GET",
        "/api/v1/exceptions/{exception}",
        Read,
        "exception.show",
    ),
    rule(
        "POST",
        "/api/v1/exceptions/{exception}/revoke",
        Administer,
        "exception.revoke",
    ),
    rule("GET", "/api/v1/compliance", Read, "compliance.show"),
    rule(
        "GET",
        "/api/v1/compliance/overdue",
        Read,
        "compliance.overdue",
    ),
    // Commands.
    rule("GET", "/api/v1/commands", Read, "commands.list"),
    rule("POST", "/api/v1/commands", Operate, "command.queue"),
    rule("GET", "/api/v1/commands/{id}", Read, "command.show"),
    rule(
        "POST",
        "/api/v1/commands/{id}/cancel",
        Operate,
        "command.cancel",
    ),
    // Releases and the agent rollout.
    rule("GET", "/api/v1/releases", Read, "releases.list"),
    rule("POST", "/api/v1/releases", Administer, "release.publish"),
    rule("GET", "/api/v1/agent-rollout", Read, "rollout.show"),
    rule("PUT", "/api/v1/agent-rollout", Administer, "rollout.update"),
    // Prometheus metrics on the main listener (the plain `metrics_listen` address
    // needs no token and is not a route of this router).
    rule("GET", "/metrics", Read, "metrics.read"),
    // The dashboard (a session cookie; crate::ui::session::require checks these).
    rule("GET", "/ui/", Read, "ui.overview"),
    rule("GET", "/ui/hosts", Read, "ui.hosts"),
    rule("GET", "/ui/hosts/{host}", Read, "ui.host"),
    rule(
        "POST",
        "/ui/hosts/{host}/commands",
        Operate,
        "command.queue",
    ),
    // The audit trail.
    rule("GET", "/api/v1/audit", Audit, "audit.list"),
    rule("GET", "/api/v1/audit/{seq}", Audit, "audit.show"),
    // Who am I, users and API tokens (crate::operators checks whose they are).
    rule("GET", "/api/v1/whoami", Identity, "whoami"),
    rule("GET", "/api/v1/users", Administer, "users.list"),
    rule("POST", "/api/v1/users", Administer, "user.create"),
    rule("GET", "/api/v1/users/{user}", Identity, "user.show"),
    rule(
        "PUT",
        "/api/v1/users/{user}/role",
        Administer,
        "user.set_role",
    ),
    rule(
        "POST",
        "/api/v1/users/{user}/disable",
        Administer,
        "user.disable",
    ),
    rule(
        "PUT",
        "/api/v1/users/{user}/password",
        Account,
        "user.set_password",
    ),
    rule("GET", "/api/v1/tokens", Identity, "tokens.list"),
    rule("POST", "/api/v1/tokens", Account, "token.create"),
    rule(
        "POST",
        "/api/v1/tokens/{id}/revoke",
        Account,
        "token.revoke",
    ),
    // Maintenance windows.
    rule("GET", "/api/v1/windows", Read, "windows.list"),
    rule("POST", "/api/v1/windows", Administer, "window.create"),
    rule("GET", "/api/v1/windows/{window}", Read, "window.show"),
    rule(
        "PUT",
        "/api/v1/windows/{window}",
        Administer,
        "window.update",
    ),
    rule(
        "DELETE",
        "/api/v1/windows/{window}",
        Administer,
        "window.delete",
    ),
    rule("GET", "/api/v1/windows/{window}/next", Read, "window.next"),
    // Webhooks.
    rule("GET", "/api/v1/webhooks", Read, "webhooks.list"),
    rule("POST", "/api/v1/webhooks", Administer, "webhook.create"),
    rule("GET", "/api/v1/webhooks/{webhook}", Read, "webhook.show"),
    rule(
        "PUT",
        "/api/v1/webhooks/{webhook}",
        Administer,
        "webhook.update",
    ),
    rule(
        "DELETE",
        "/api/v1/webhooks/{webhook}",
        Administer,
        "webhook.delete",
    ),
    rule(
        "POST",
        "/api/v1/webhooks/{webhook}/rotate-secret",
        Administer,
        "webhook.rotate_secret",
    ),
    rule(
        "GET",
        "/api/v1/webhooks/{webhook}/deliveries",
        Read,
        "webhook.deliveries",
    ),
    rule(
        "POST",
        "/api/v1/webhooks/{webhook}/test",
        Administer,
        "webhook.test",
    ),
    // Dashboard: vulnerabilities, commands, audit log, administration.
    rule("GET", "/ui/reboots", Read, "ui.reboots.list"),
    rule("GET", "/ui/vulns", Read, "ui.vulns.list"),
    rule("GET", "/ui/vulns/{id}", Read, "ui.vuln.hosts"),
    rule("GET", "/ui/compliance", Read, "ui.compliance"),
    rule(
        "POST",
        "/ui/compliance/policy",
        Administer,
        "deadline_policy.update",
    ),
    rule("GET", "/ui/exceptions", Read, "ui.exceptions"),
    rule("POST", "/ui/exceptions", Administer, "exception.create"),
    rule(
        "POST",
        "/ui/exceptions/{exception}/revoke",
        Administer,
        "exception.revoke",
    ),
    rule("GET", "/ui/commands", Read, "ui.commands.list"),
    rule("GET", "/ui/commands/{id}", Read, "ui.command.show"),
    rule(
        "POST",
        "/ui/commands/{id}/cancel",
        Operate,
        "command.cancel",
    ),
    rule("GET", "/ui/deployments", Read, "ui.deployments.list"),
    rule("POST", "/ui/deployments", Operate, "deployment.create"),
    rule(
        "GET",
        "/ui/deployments/{deployment}",
        Read,
        "ui.deployment.show",
    ),
    rule(
        "POST",
        "/ui/deployments/{deployment}/pause",
        Operate,
        "deployment.pause",
    ),
    rule(
        "POST",
        "/ui/deployments/{deployment}/resume",
        Operate,
        "deployment.resume",
    ),
    rule(
        "POST",
        "/ui/deployments/{deployment}/cancel",
        Operate,
        "deployment.cancel",
    ),
    rule("GET", "/ui/windows", Read, "ui.windows.list"),
    rule("POST", "/ui/windows", Administer, "window.create"),
    rule(
        "POST",
        "/ui/windows/{window}/delete",
        Administer,
        "window.delete",
    ),
    rule("GET", "/ui/audit", Audit, "ui.audit.list"),
    rule("GET", "/ui/webhooks", Read, "ui.webhooks.list"),
    rule("POST", "/ui/webhooks", Administer, "webhook.create"),
    rule("GET", "/ui/webhooks/{webhook}", Read, "ui.webhook.show"),
    rule(
        "POST",
        "/ui/webhooks/{webhook}/test",
        Administer,
        "webhook.test",
    ),
    rule(
        "POST",
        "/ui/webhooks/{webhook}/rotate",
        Administer,
        "webhook.rotate_secret",
    ),
    rule(
        "POST",
        "/ui/webhooks/{webhook}/delete",
        Administer,
        "webhook.delete",
    ),
    rule("GET", "/ui/admin", Administer, "ui.admin.show"),
    rule("POST", "/ui/admin/users", Administer, "user.create"),
    rule(
        "POST",
        "/ui/admin/users/{user}/role",
        Administer,
        "user.set_role",
    ),
    rule(
        "POST",
        "/ui/admin/users/{user}/disable",
        Administer,
        "user.disable",
    ),
    rule("POST", "/ui/admin/tokens", Administer, "token.create"),
    rule(
        "POST",
        "/ui/admin/tokens/{id}/revoke",
        Administer,
        "token.revoke",
    ),
    rule("POST", "/ui/admin/keys", Administer, "key.create"),
    rule(
        "POST",
        "/ui/admin/keys/{id}/revoke",
        Administer,
        "key.revoke",
    ),
    rule(
        "POST",
        "/ui/admin/keys/{id}/rotate",
        Administer,
        "key.rotate",
    ),
    // Groups and host tags (issue 14).
    rule("GET", "/api/v1/groups", Read, "groups.list"),
    rule("POST", "/api/v1/groups", Administer, "group.create"),
    rule("GET", "/api/v1/groups/{group}", Read, "group.show"),
    rule("PUT", "/api/v1/groups/{group}", Administer, "group.update"),
    rule(
        "DELETE",
        "/api/v1/groups/{group}",
        Administer,
        "group.delete",
    ),
    rule("GET", "/api/v1/hosts/{host}/tags", Read, "host.tags"),
    rule("PUT", "/api/v1/hosts/{host}/tags", Administer, "host.tag"),
    // Approvals, rules and manifests (issue 14).
    rule("GET", "/api/v1/approvals", Read, "approvals.list"),
    rule("POST", "/api/v1/approvals", Operate, "approval.create"),
    rule(
        "POST",
        "/api/v1/approvals/{approval}/revoke",
        Operate,
        "approval.revoke",
    ),
    rule("GET", "/api/v1/approval-rules", Read, "approval_rules.list"),
    rule(
        "POST",
        "/api/v1/approval-rules",
        Administer,
        "approval_rule.create",
    ),
    rule(
        "POST",
        "/api/v1/approval-rules/run",
        Operate,
        "approval_rules.run",
    ),
    rule(
        "DELETE",
        "/api/v1/approval-rules/{rule}",
        Administer,
        "approval_rule.delete",
    ),
    rule("GET", "/api/v1/manifests", Read, "manifests.list"),
    rule("POST", "/api/v1/manifests", Operate, "manifest.create"),
    rule("GET", "/api/v1/manifests/{manifest}", Read, "manifest.show"),
    // Approver signatures (issue 15): the approver's own key is what counts; the
    // route needs the role that freezes manifests.
    rule(
        "POST",
        "/api/v1/manifests/{manifest}/signatures",
        Operate,
        "manifest.sign",
    ),
    rule(
        "GET",
        "/api/v1/manifests/{manifest}/signatures",
        Read,
        "manifest.signatures",
    ),
    // The dashboard's groups, approvals and manifests pages (the same needs and audit
    // actions as the API routes they stand for).
    rule("POST", "/ui/hosts/{host}/tags", Administer, "host.tag"),
    rule("GET", "/ui/groups", Read, "ui.groups.list"),
    rule("POST", "/ui/groups", Administer, "group.create"),
    rule("GET", "/ui/groups/{group}", Read, "ui.group.show"),
    rule(
        "POST",
        "/ui/groups/{group}/delete",
        Administer,
        "group.delete",
    ),
    rule("GET", "/ui/approvals", Read, "ui.approvals.list"),
    rule("POST", "/ui/approvals", Operate, "approval.create"),
    rule(
        "POST",
        "/ui/approvals/{approval}/revoke",
        Operate,
        "approval.revoke",
    ),
    rule(
        "POST",
        "/ui/approval-rules",
        Administer,
        "approval_rule.create",
    ),
    rule(
        "POST",
        "/ui/approval-rules/run",
        Operate,
        "approval_rules.run",
    ),
    rule(
        "POST",
        "/ui/approval-rules/{rule}/delete",
        Administer,
        "approval_rule.delete",
    ),
    rule("GET", "/ui/manifests", Read, "ui.manifests.list"),
    rule("POST", "/ui/manifests", Operate, "manifest.create"),
    rule("GET", "/ui/manifests/{manifest}", Read, "ui.manifest.show"),
    // Deployments (issue 14 §4).
    rule("GET", "/api/v1/deployments", Read, "deployments.list"),
    rule("POST", "/api/v1/deployments", Operate, "deployment.create"),
    rule(
        "GET",
        "/api/v1/deployments/{deployment}",
        Read,
        "deployment.show",
    ),
    rule(
        "GET",
        "/api/v1/deployments/{deployment}/hosts",
        Read,
        "deployment.hosts",
    ),
    rule(
        "GET",
        "/api/v1/deployments/{deployment}/events",
        Read,
        "deployment.events",
    ),
    rule(
        "POST",
        "/api/v1/deployments/{deployment}/pause",
        Operate,
        "deployment.pause",
    ),
    rule(
        "POST",
        "/api/v1/deployments/{deployment}/resume",
        Operate,
        "deployment.resume",
    ),
    rule(
        "POST",
        "/api/v1/deployments/{deployment}/cancel",
        Operate,
        "deployment.cancel",
    ),
];

/// Routes anyone may call: the health check, the public downloads and install script.
pub static PUBLIC: &[(&str, &str)] = &[
    ("GET", "/api/v1/health"),
    ("GET", "/api/v1/health/live"),
    ("GET", "/api/v1/health/ready"),
    // The dashboard's way in: the redirects to it, the login form, logout (which checks
    // its own session and CSRF token) and the built-in assets.
    ("GET", "/"),
    ("GET", "/ui"),
    ("GET", "/ui/login"),
    ("POST", "/ui/login"),
    ("POST", "/ui/logout"),
    ("GET", "/ui/static/{file}"),
    ("GET", "/api/v1/openapi.json"),
    ("GET", "/downloads/{product}/{version}/{target}"),
    ("GET", "/install.sh"),
];

/// The agent's routes (an enrollment key or an agent credential, never an operator).
pub static AGENT: &[(&str, &str)] = &[
    ("POST", "/api/v1/agent/enroll"),
    ("GET", "/api/v1/agent/whoami"),
    ("POST", "/api/v1/agent/credential"),
    ("POST", "/api/v1/agent/heartbeat"),
    ("POST", "/api/v1/agent/commands/wait"),
    ("POST", "/api/v1/agent/inventory"),
    ("POST", "/api/v1/agent/scan"),
    ("POST", "/api/v1/agent/results"),
    ("GET", "/api/v1/agent/releases/{version}/{target}"),
    ("GET", "/api/v1/agent/releases/{version}/{target}/artifact"),
];

/// The rule of `method` (HEAD is looked up as GET) on the route template `path`.
pub fn rule_for(method: &str, path: &str) -> Option<&'static Rule> {
    let method = if method == "HEAD" { "GET" } else { method };
    RULES.iter().find(|r| r.method == method && r.path == path)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn every_route_is_listed_once_and_mutations_are_never_read_only() {
        let mut seen = HashSet::new();
        for r in RULES {
            assert!(
                seen.insert((r.method, r.path)),
                "{} {} twice",
                r.method,
                r.path
            );
            assert!(
                r.path.starts_with("/api/v1/") || r.path.starts_with("/ui") || r.path == "/metrics",
                "{}",
                r.path
            );
            if r.method != "GET" {
                assert!(
                    !r.need.read_only(),
                    "{} {} changes state but needs only {}",
                    r.method,
                    r.path,
                    r.need
                );
            }
        }
        for (m, p) in PUBLIC.iter().chain(AGENT) {
            assert!(seen.insert((m, p)), "{m} {p} is also an operator route");
        }
        assert_eq!(
            rule_for("HEAD", "/api/v1/hosts").unwrap().action,
            "hosts.list"
        );
        assert!(rule_for("DELETE", "/api/v1/hosts").is_none());
    }
}
