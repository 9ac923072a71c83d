//! The dashboard's deployments pages through the real router on a real SQLite file with
//! real sessions (login form, cookie, CSRF token): an operator creates a deployment
//! from the form (manifest select, groups, rings "50,100"), sees its rings with counts,
//! its hosts with stage and detail and its events, pauses, resumes and cancels it (all
//! in the audit trail); a viewer sees the pages without forms and is refused on every
//! POST; a POST without the CSRF token is refused; a hostile name is escaped.

mod dash;

use axum::http::StatusCode;
use chrono::Utc;
use dash::{Answer, User};
use patchctl_proto::access::Role;
use patchctl_proto::agent::{OsInfo, SystemInfo};
use patchctl_proto::policy::approvals::UpdateItem;
use patchctl_server::bootstrap::create_org;
use patchctl_server::{AppState, Settings};
use patchctl_storage::{AuditFilter, Manifest, NewHost, NewUser};
use uuid::Uuid;

const PASSWORD: &str = "correct horse battery staple";

struct Env {
    _dir: tempfile::TempDir,
    st: AppState,
    org_id: Uuid,
}

async fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("db.sqlite").display());
    let store = patchctl_storage::open(&url).await.unwrap();
    let org = create_org(store.as_ref(), "ui-deployments").await.unwrap();
    let key = store
        .enrollment_key_by_hash(&patchctl_server::auth::hash_secret(
            org.enrollment_key.expose(),
        ))
        .await
        .unwrap()
        .unwrap();
    let org_id = key.org_id;
    for i in 0..2 {
        store
            .create_host(NewHost {
                org_id,
                enrollment_key_id: key.id,
                credential_hash: format!("cred-{i}"),
                agent_version: "1.0.0".into(),
                system: SystemInfo {
                    hostname: format!("web-{i}"),
                    os: OsInfo {
                        id: "debian".into(),
                        version_id: "12".into(),
                        ..Default::default()
                    },
                    ..Default::default()
                },
                now: Utc::now(),
            })
            .await
            .unwrap();
    }
    for (name, role) in [("oscar", Role::Operator), ("victor", Role::Viewer)] {
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
    let all = store.group_by_name(org_id, "all").await.unwrap().unwrap();
    store
        .create_manifest(
            org_id,
            &Manifest {
                id: Uuid::new_v4(),
                name: "october".into(),
                group_id: all.id,
                group_name: "all".into(),
                created_by: "test".into(),
                created_at: Utc::now(),
                item_count: 1,
            },
            &[UpdateItem {
                ecosystem: "Debian:12".into(),
                name: "openssl".into(),
                version: "3.0.15-1~deb12u1".into(),
            }],
        )
        .await
        .unwrap();
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
        dash::login(&self.st, username, PASSWORD, &["/ui/deployments"]).await
    }

    async fn get(&self, cookie: &str, path: &str) -> String {
        let a = self.send("GET", path, Some(cookie), None).await;
        assert_eq!(a.status, StatusCode::OK, "{path}: {}", a.body);
        a.body
    }

    async fn post(&self, u: &User, path: &str, fields: &[(&str, &str)]) -> Answer {
        dash::post(&self.st, u, path, fields).await
    }
}

#[tokio::test]
async fn deployments_pages_create_show_and_act() {
    let e = env().await;
    let op = e.login("oscar").await;
    let body = e.get(&op.cookie, "/ui/deployments").await;
    assert!(
        body.contains("href=\"/ui/deployments\""),
        "the nav links the page"
    );
    assert!(
        body.contains("id=\"new-deployment\""),
        "an operator has the form"
    );
    assert!(body.contains(">october</option>"), "the manifest select");
    assert!(body.contains("id=\"no-deployments\""));

    let fields = [
        ("name", "oct-web"),
        ("manifest", "october"),
        ("groups", "all"),
        ("rings", "50,100"),
        ("soak_minutes", "5"),
        ("max_failed_percent", "0"),
        ("reboot", "never"),
    ];
    let a = e.post(&op, "/ui/deployments", &fields).await;
    assert!(a.status.is_redirection(), "{} {}", a.status, a.body);
    let to = a.location.unwrap();
    assert!(to.ends_with("?done=created"), "{to}");
    let page = e.get(&op.cookie, &to).await;
    assert!(page.contains("The deployment was created"), "{page}");
    assert!(page.contains("id=\"state\">running<"), "{page}");
    assert!(page.contains("<td>canary</td><td>50 %</td>"), "{page}");
    assert!(page.contains("web-0") && page.contains("web-1"), "{page}");
    assert!(page.contains("id=\"pause\"") && page.contains("id=\"cancel\""));
    assert!(page.contains("<td>5 min</td>"));
    let list = e.get(&op.cookie, "/ui/deployments").await;
    assert!(
        list.contains("oct-web") && list.contains("canary 50 %: active"),
        "{list}"
    );

    // A duplicate name and bad rings are refused with the reason.
    let a = e.post(&op, "/ui/deployments", &fields).await;
    assert_eq!(a.status, StatusCode::CONFLICT, "{}", a.body);
    let mut bad = fields;
    bad[0] = ("name", "other");
    bad[3] = ("rings", "50,40");
    let a = e.post(&op, "/ui/deployments", &bad).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.body);
    assert!(a.body.contains("cumulative"), "{}", a.body);

    // A viewer sees it without forms and is refused on POST.
    let viewer = e.login("victor").await;
    let vpage = e
        .get(&viewer.cookie, &to.replace("?done=created", ""))
        .await;
    assert!(!vpage.contains("id=\"pause\""));
    assert!(
        !e.get(&viewer.cookie, "/ui/deployments")
            .await
            .contains("id=\"new-deployment\"")
    );
    let path = to.replace("?done=created", "");
    let a = e.post(&viewer, &format!("{path}/pause"), &[]).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.body);
    // Without the CSRF token: refused.
    let a = e
        .send(
            "POST",
            &format!("{path}/pause"),
            Some(&op.cookie),
            Some(String::new()),
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.body);

    // Pause, resume, cancel.
    let a = e
        .post(
            &op,
            &format!("{path}/pause"),
            &[("reason", "<b>freeze</b>")],
        )
        .await;
    assert!(a.status.is_redirection(), "{} {}", a.status, a.body);
    let page = e.get(&op.cookie, &a.location.unwrap()).await;
    assert!(
        page.contains("id=\"state\">paused<") && page.contains("id=\"resume\""),
        "{page}"
    );
    assert!(
        page.contains("freeze") && !page.contains("<b>freeze"),
        "escaped: {page}"
    );
    let a = e.post(&op, &format!("{path}/pause"), &[]).await;
    assert_eq!(a.status, StatusCode::CONFLICT, "{}", a.body);
    let a = e.post(&op, &format!("{path}/resume"), &[]).await;
    assert!(a.status.is_redirection(), "{} {}", a.status, a.body);
    let a = e
        .post(&op, &format!("{path}/cancel"), &[("reason", "")])
        .await;
    assert!(a.status.is_redirection(), "{} {}", a.status, a.body);
    let page = e.get(&op.cookie, &a.location.unwrap()).await;
    assert!(page.contains("id=\"state\">cancelled<"), "{page}");
    assert!(
        !page.contains("id=\"cancel\""),
        "nothing to do on a final one"
    );
    assert!(page.contains(">skipped<"), "{page}");
    let audit =
        e.st.store
            .list_audit(
                e.org_id,
                &AuditFilter {
                    action: Some("deployment.".into()),
                    ..Default::default()
                },
                50,
            )
            .await
            .unwrap();
    let actions: Vec<(&str, u16)> = audit
        .iter()
        .map(|a| (a.entry.action.as_str(), a.entry.status))
        .collect();
    for want in [
        "deployment.create",
        "deployment.pause",
        "deployment.resume",
        "deployment.cancel",
    ] {
        assert!(
            actions.iter().any(|(a, s)| *a == want && *s == 303),
            "{want}: {actions:?}"
        );
    }
}
