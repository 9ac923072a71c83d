//! The dashboard's groups, approvals and manifests pages through the real router on a
//! real SQLite file with real sessions (login form, cookie, CSRF token): an owner
//! creates a group (a malformed one is refused with the reason, a hostile description
//! is escaped), tags a host on its page and sees it join the group; an operator
//! approves a host's security updates for the group, withdraws one, runs the rules an
//! owner made and freezes the group's approvals into a manifest whose exact versions
//! its page shows per ecosystem; a group without approvals cannot be frozen and the
//! built-in `all` cannot be deleted; a viewer sees every page without forms and is
//! refused on every POST; a POST without the CSRF token is refused; every change is in
//! the audit trail.

mod dash;

use axum::http::StatusCode;
use chrono::Utc;
use dash::{Answer, User};
use patchctl_proto::access::Role;
use patchctl_proto::agent::{OsInfo, SystemInfo};
use patchctl_proto::command::AvailableUpdate;
use patchctl_proto::scan::{ScanState, ScanUpdates};
use patchctl_server::bootstrap::create_org;
use patchctl_server::{AppState, Settings};
use patchctl_storage::{AuditFilter, NewHost, NewUser, Storage};
use uuid::Uuid;

const PASSWORD: &str = "correct horse battery staple";
const EVIL_TEXT: &str = "g<script>alert('group')</script>";

struct Env {
    _dir: tempfile::TempDir,
    st: AppState,
    org_id: Uuid,
    host: Uuid,
}

async fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("db.sqlite").display());
    let store = patchctl_storage::open(&url).await.unwrap();
    let org = create_org(store.as_ref(), "ui-policy").await.unwrap();
    let key = store
        .enrollment_key_by_hash(&patchctl_server::auth::hash_secret(
            org.enrollment_key.expose(),
        ))
        .await
        .unwrap()
        .unwrap();
    let org_id = key.org_id;
    let host = debian_host(store.as_ref(), org_id, key.id).await;
    for (name, role) in [
        ("olivia", Role::Owner),
        ("oscar", Role::Operator),
        ("victor", Role::Viewer),
    ] {
        store
            .create_user(NewUser {
                org_id,
                username: name.into(),
                password_hash: patchctl_server::passwords::hash_password(PASSWORD).unwrap(),
                role,
                now: Utc::now(),
            })
            .await
            .unwrap();
    }
    let settings: Settings = serde_json::from_value(serde_json::json!({
        "listen": "127.0.0.1:0",
        "database_url": url,
        "tls_cert": "unused",
        "tls_key": "unused",
        "vuln_feeds": [],
        "vuln_sync": false,
    }))
    .unwrap();
    Env {
        _dir: dir,
        st: AppState::new(store, settings),
        org_id,
        host,
    }
}

impl Env {
    async fn send(
        &self,
        method: &str,
        path: &str,
        cookie: Option<&str>,
        body: Option<String>,
    ) -> Answer {
        dash::send(&self.st, method, path, cookie, body).await
    }

    async fn login(&self, username: &str) -> User {
        dash::login(&self.st, username, PASSWORD, &["/ui/groups"]).await
    }

    async fn page(&self, u: &User, path: &str) -> String {
        let a = self.send("GET", path, Some(&u.cookie), None).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
        a.body
    }

    async fn post(&self, u: &User, path: &str, fields: &[(&str, &str)]) -> Answer {
        dash::post(&self.st, u, path, fields).await
    }
}

fn update(name: &str, from: &str, to: &str, security: bool) -> AvailableUpdate {
    AvailableUpdate {
        name: name.into(),
        arch: "amd64".into(),
        current_version: Some(from.into()),
        candidate_version: to.into(),
        origins: vec![if security {
            "Debian-Security:12/stable-security".into()
        } else {
            "Debian:12/stable".into()
        }],
        security,
        advisories: Vec::new(),
    }
}

/// A Debian 12 host `deb1` whose last scan reported two security updates and one other.
async fn debian_host(store: &dyn Storage, org_id: Uuid, key: Uuid) -> Uuid {
    let system = SystemInfo {
        hostname: "deb1".into(),
        os: OsInfo {
            id: "debian".into(),
            version_id: "12".into(),
            version_codename: "bookworm".into(),
            ..Default::default()
        },
        ..Default::default()
    };
    let h = store
        .create_host(NewHost {
            org_id,
            enrollment_key_id: key,
            credential_hash: "cred".into(),
            agent_version: "1.0.0".into(),
            system: system.clone(),
            now: Utc::now(),
        })
        .await
        .unwrap();
    let mut state = ScanState {
        system,
        package_manager: Some("dpkg".into()),
        packages: Vec::new(),
        updates: Some(ScanUpdates {
            refreshed: true,
            updates: vec![
                update("openssl", "3.0.14-1~deb12u2", "3.0.15-1~deb12u1", true),
                update("curl", "7.88.1-10+deb12u7", "7.88.1-10+deb12u8", true),
                update("tzdata", "2024a-0+deb12u1", "2025b-0+deb12u1", false),
            ],
            removals: Vec::new(),
            error: None,
        }),
    };
    state.canonicalize();
    store
        .put_scan(
            h.id,
            Utc::now(),
            &state.digest(),
            &state,
            patchctl_storage::ScanKind::Full,
        )
        .await
        .unwrap();
    h.id
}

fn assert_redirect(a: &Answer, to: &str) {
    assert!(
        a.status.is_redirection(),
        "expected a redirect to {to}: {} {}",
        a.status,
        a.body
    );
    assert_eq!(a.location.as_deref(), Some(to), "{}", a.body);
}

#[tokio::test]
async fn groups_approvals_and_manifests_from_the_dashboard() {
    let e = env().await;
    let host = e.host.to_string();
    let owner = e.login("olivia").await;

    // The nav links the three pages; the owner has the group form.
    let body = e.page(&owner, "/ui/groups").await;
    for href in ["/ui/groups", "/ui/approvals", "/ui/manifests"] {
        assert!(body.contains(&format!("href=\"{href}\"")), "nav: {href}");
    }
    assert!(body.contains("id=\"new-group\""), "an owner has the form");
    assert!(
        body.contains(">all<"),
        "the built-in group is listed: {body}"
    );

    // Create a group of the hosts tagged `web` running Debian.
    let a = e
        .post(
            &owner,
            "/ui/groups",
            &[
                ("name", "web"),
                ("description", EVIL_TEXT),
                ("tags", "web"),
                ("agent_tags", ""),
                ("os", "debian"),
                ("release", ""),
            ],
        )
        .await;
    assert_redirect(&a, "/ui/groups?done=created");
    let body = e.page(&owner, "/ui/groups?done=created").await;
    assert!(body.contains("The group was created."), "{body}");
    assert!(body.contains("tags web · os debian"), "{body}");
    assert!(!body.contains(EVIL_TEXT), "unescaped: {body}");
    assert!(
        body.contains("&lt;script&gt;") || body.contains("&#60;script&#62;"),
        "{body}"
    );
    let web =
        e.st.store
            .group_by_name(e.org_id, "web")
            .await
            .unwrap()
            .unwrap()
            .id;
    let group_page = format!("/ui/groups/{web}");
    let body = e.page(&owner, &group_page).await;
    assert!(body.contains("id=\"host-count\">0<"), "{body}");
    assert!(!body.contains("deb1"), "not tagged yet: {body}");

    // A malformed group is refused with the reason.
    let a = e
        .post(&owner, "/ui/groups", &[("name", "bad name!"), ("tags", "")])
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.body);
    assert!(a.body.contains("name"), "{}", a.body);
    let a = e
        .post(&owner, "/ui/groups", &[("name", "web"), ("tags", "x")])
        .await;
    assert_eq!(
        a.status,
        StatusCode::CONFLICT,
        "the name is taken: {}",
        a.body
    );

    // Tag the host on its page: it joins the group.
    let body = e.page(&owner, &format!("/ui/hosts/{host}")).await;
    assert!(body.contains("id=\"tag-form\""), "{body}");
    let a = e
        .post(
            &owner,
            &format!("/ui/hosts/{host}/tags"),
            &[("tags", "web, prod")],
        )
        .await;
    assert_redirect(&a, &format!("/ui/hosts/{host}?tagged=1#tags"));
    let body = e.page(&owner, &format!("/ui/hosts/{host}?tagged=1")).await;
    assert!(body.contains("The host's tags were saved."), "{body}");
    assert!(body.contains("id=\"host-tags\">prod, web<"), "{body}");
    assert!(body.contains("href=\"/ui/groups/web\">web<"), "{body}");
    let a = e
        .post(
            &owner,
            &format!("/ui/hosts/{host}/tags"),
            &[("tags", "no spaces; allowed")],
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.body);
    let body = e.page(&owner, &group_page).await;
    assert!(body.contains("id=\"host-count\">1<"), "{body}");
    assert!(body.contains("deb1"), "{body}");
    let body = e.page(&owner, "/ui/groups/web").await;
    assert!(body.contains("deb1"), "by name too: {body}");

    // A manifest of a group without approvals: refused, with what to do.
    let oscar = e.login("oscar").await;
    let a = e
        .post(&oscar, "/ui/manifests", &[("name", "m0"), ("group", "web")])
        .await;
    assert_eq!(a.status, StatusCode::CONFLICT, "{}", a.body);
    assert!(a.body.contains("no active approvals"), "{}", a.body);

    // The operator approves deb1's security updates for `web`.
    let body = e.page(&oscar, "/ui/approvals").await;
    assert!(body.contains("id=\"approve-host\""), "{body}");
    assert!(!body.contains("id=\"new-rule\""), "rules are for admins");
    let web_id = web.to_string();
    let a = e
        .post(
            &oscar,
            "/ui/approvals",
            &[("host", &host), ("group", &web_id), ("security_only", "on")],
        )
        .await;
    assert_redirect(&a, "/ui/approvals?done=approved&n=2&already=0");
    let body = e
        .page(&oscar, "/ui/approvals?done=approved&n=2&already=0")
        .await;
    assert!(body.contains("2 updates approved"), "{body}");
    for want in [
        "openssl",
        "3.0.15-1~deb12u1",
        "curl",
        "7.88.1-10+deb12u8",
        "Debian:12",
        "user oscar (dashboard)",
    ] {
        assert!(body.contains(want), "{want}: {body}");
    }
    assert!(!body.contains("tzdata"), "security only: {body}");
    // Again: nothing new.
    let a = e
        .post(
            &oscar,
            "/ui/approvals",
            &[("host", &host), ("group", "web"), ("security_only", "on")],
        )
        .await;
    assert_redirect(&a, "/ui/approvals?done=approved&n=0&already=2");
    // Without a host: refused.
    let a = e
        .post(&oscar, "/ui/approvals", &[("host", ""), ("group", "web")])
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.body);

    // Withdraw curl.
    let curl =
        e.st.store
            .list_approvals(e.org_id, Some(web), false)
            .await
            .unwrap()
            .into_iter()
            .find(|a| a.item.name == "curl")
            .unwrap()
            .id;
    let a = e
        .post(&oscar, &format!("/ui/approvals/{curl}/revoke"), &[])
        .await;
    assert_redirect(&a, "/ui/approvals?done=revoked");
    let active =
        e.st.store
            .list_approvals(e.org_id, Some(web), false)
            .await
            .unwrap();
    assert_eq!(active.len(), 1);
    assert_eq!(active[0].item.name, "openssl");

    // Rules: an operator may not create one; the owner does, the operator runs them.
    let rule = [
        ("name", "all-security"),
        ("group", "all"),
        ("security_only", "on"),
        ("min_severity", "any"),
        ("after_days", "0"),
    ];
    let a = e.post(&oscar, "/ui/approval-rules", &rule).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.body);
    let a = e
        .post(
            &owner,
            "/ui/approval-rules",
            &[("name", "r"), ("group", "all"), ("after_days", "x")],
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.body);
    let a = e.post(&owner, "/ui/approval-rules", &rule).await;
    assert_redirect(&a, "/ui/approvals?done=rule-created#rules");
    let body = e.page(&owner, "/ui/approvals").await;
    assert!(body.contains("all-security"), "{body}");
    assert!(body.contains("id=\"new-rule\""), "{body}");
    let a = e.post(&oscar, "/ui/approval-rules/run", &[]).await;
    assert_redirect(&a, "/ui/approvals?done=ran&n=2");
    let body = e.page(&oscar, "/ui/approvals?done=ran&n=2").await;
    assert!(body.contains("The rules ran: 2 new approvals."), "{body}");
    assert!(body.contains("rule all-security"), "{body}");

    // Freeze web's approvals: only openssl is left, at its exact version.
    let a = e
        .post(
            &oscar,
            "/ui/manifests",
            &[("name", "dec-security"), ("group", &web_id)],
        )
        .await;
    let (m, _) =
        e.st.store
            .manifest(e.org_id, "dec-security")
            .await
            .unwrap()
            .unwrap();
    assert_redirect(&a, &format!("/ui/manifests/{}?done=created", m.id));
    let body = e
        .page(&oscar, &format!("/ui/manifests/{}?done=created", m.id))
        .await;
    assert!(body.contains("The manifest was created"), "{body}");
    assert!(body.contains("<h2>Debian:12</h2>"), "{body}");
    assert!(
        body.contains("<td class=\"mono\">openssl</td><td class=\"mono\">3.0.15-1~deb12u1</td>"),
        "{body}"
    );
    assert!(!body.contains("curl"), "withdrawn: {body}");
    let body = e.page(&oscar, "/ui/manifests").await;
    assert!(body.contains("dec-security"), "{body}");
    assert!(body.contains("id=\"new-manifest\""), "{body}");
    let body = e.page(&oscar, "/ui/manifests/dec-security").await;
    assert!(body.contains("3.0.15-1~deb12u1"), "by name too");
    let a = e
        .send("GET", "/ui/manifests/nope", Some(&oscar.cookie), None)
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);

    // A viewer sees every page without forms and is refused on every POST.
    let victor = e.login("victor").await;
    for (path, forms) in [
        ("/ui/groups", &["new-group", "/delete\""][..]),
        (group_page.as_str(), &[][..]),
        (
            "/ui/approvals",
            &["approve-host", "new-rule", "run-rules", "/revoke\""][..],
        ),
        ("/ui/manifests", &["new-manifest"][..]),
        (&format!("/ui/hosts/{host}"), &["tag-form"][..]),
    ] {
        let body = e.page(&victor, path).await;
        for f in forms {
            assert!(!body.contains(f), "{path}: a viewer has {f}");
        }
    }
    let body = e.page(&victor, "/ui/approvals").await;
    assert!(body.contains("openssl"), "a viewer sees the approvals");
    let rule_id = e.st.store.list_rules(e.org_id).await.unwrap()[0].id;
    let refused = [
        ("/ui/groups".to_string(), vec![("name", "v"), ("tags", "v")]),
        (format!("/ui/groups/{web}/delete"), vec![]),
        (format!("/ui/hosts/{host}/tags"), vec![("tags", "v")]),
        (
            "/ui/approvals".to_string(),
            vec![("host", host.as_str()), ("group", "web")],
        ),
        (format!("/ui/approvals/{}/revoke", active[0].id), vec![]),
        ("/ui/approval-rules".to_string(), rule.to_vec()),
        ("/ui/approval-rules/run".to_string(), vec![]),
        (format!("/ui/approval-rules/{rule_id}/delete"), vec![]),
        (
            "/ui/manifests".to_string(),
            vec![("name", "v"), ("group", "web")],
        ),
    ];
    for (path, fields) in &refused {
        let a = e.post(&victor, path, fields).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "viewer POST {path}");
    }

    // Without the CSRF token: refused.
    let a = e
        .send(
            "POST",
            &format!("/ui/groups/{web}/delete"),
            Some(&owner.cookie),
            Some(String::new()),
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert!(e.st.store.group(e.org_id, web).await.unwrap().is_some());

    // The built-in group stays; the rule and web go.
    let all =
        e.st.store
            .group_by_name(e.org_id, "all")
            .await
            .unwrap()
            .unwrap()
            .id;
    let a = e
        .post(&owner, &format!("/ui/groups/{all}/delete"), &[])
        .await;
    assert_eq!(a.status, StatusCode::CONFLICT, "{}", a.body);
    let a = e
        .post(&owner, &format!("/ui/approval-rules/{rule_id}/delete"), &[])
        .await;
    assert_redirect(&a, "/ui/approvals?done=rule-deleted#rules");
    assert!(e.st.store.list_rules(e.org_id).await.unwrap().is_empty());
    let a = e
        .post(&owner, &format!("/ui/groups/{web}/delete"), &[])
        .await;
    assert_redirect(&a, "/ui/groups?done=deleted");
    assert!(e.st.store.group(e.org_id, web).await.unwrap().is_none());

    // Every change is in the audit trail, ok, with what it changed.
    let trail =
        e.st.store
            .list_audit(e.org_id, &AuditFilter::default(), 500)
            .await
            .unwrap();
    for action in [
        "group.create",
        "host.tag",
        "approval.create",
        "approval.revoke",
        "approval_rule.create",
        "approval_rules.run",
        "manifest.create",
        "approval_rule.delete",
        "group.delete",
    ] {
        assert!(
            trail
                .iter()
                .any(|x| x.entry.action == action && x.entry.outcome.as_str() == "ok"),
            "no successful {action} in the audit trail"
        );
    }
    assert!(
        trail.iter().any(|x| x.entry.action == "manifest.create"
            && x.entry.details["name"] == "dec-security"
            && x.entry.details["items"] == 1),
        "the manifest's details"
    );
    assert!(
        trail
            .iter()
            .any(|x| x.entry.action == "group.create" && x.entry.outcome.as_str() == "refused"),
        "the viewer's refusals are recorded"
    );
}
