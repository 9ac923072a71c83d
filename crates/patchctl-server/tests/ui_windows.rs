//! The dashboard's maintenance windows page through the real router on a real SQLite
//! file with real sessions (login form, cookie, CSRF token): every group with its
//! windows and their state now; an owner creates a window (one that starts now is open)
//! and deletes it, both recorded in the audit trail; a bad window is refused with the
//! reason; a viewer sees the page without forms and is refused on every POST; a POST
//! without the CSRF token is refused; a hostile window name is escaped. And whether a
//! host may start an install, from the windows of its groups in real storage.

mod dash;

use axum::http::StatusCode;
use chrono::Utc;
use dash::{Answer, User};
use patchctl_proto::access::Role;
use patchctl_server::bootstrap::create_org;
use patchctl_server::{AppState, Settings};
use patchctl_storage::{AuditFilter, NewGroup, NewHost, NewUser};
use uuid::Uuid;

const PASSWORD: &str = "correct horse battery staple";
const EVIL_NAME: &str = "w<script>alert('window')</script>";

struct Env {
    _dir: tempfile::TempDir,
    st: AppState,
    org_id: Uuid,
    web: Uuid,
    host: Uuid,
}

async fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("db.sqlite").display());
    let store = patchctl_storage::open(&url).await.unwrap();
    let org = create_org(store.as_ref(), "ui-windows").await.unwrap();
    let key = store
        .enrollment_key_by_hash(&patchctl_server::auth::hash_secret(
            org.enrollment_key.expose(),
        ))
        .await
        .unwrap()
        .unwrap();
    let org_id = key.org_id;
    let host = store
        .create_host(NewHost {
            org_id,
            enrollment_key_id: key.id,
            credential_hash: "cred".into(),
            agent_version: "1.0.0".into(),
            system: Default::default(),
            now: Utc::now(),
        })
        .await
        .unwrap()
        .id;
    for (name, role) in [("olivia", Role::Owner), ("victor", Role::Viewer)] {
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
    let web = store
        .create_group(
            org_id,
            &NewGroup {
                name: "web".into(),
                description: String::new(),
                selector: patchctl_proto::policy::groups::GroupSelector {
                    tags: vec!["web".into()],
                    ..Default::default()
                },
                actor: "test".into(),
                now: Utc::now(),
            },
        )
        .await
        .unwrap()
        .id;
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
        web,
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
        dash::login(&self.st, username, PASSWORD, &["/ui/windows"]).await
    }

    async fn page(&self, u: &User) -> String {
        let a = self.send("GET", "/ui/windows", Some(&u.cookie), None).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
        a.body
    }

    async fn post(&self, u: &User, path: &str, fields: &[(&str, &str)]) -> Answer {
        dash::post(&self.st, u, path, fields).await
    }
}

fn new_window<'a>(
    name: &'a str,
    group: &'a str,
    start: &'a str,
    duration: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("name", name),
        ("group", group),
        ("days", "daily"),
        ("start", start),
        ("timezone", "Europe/Berlin"),
        ("duration", duration),
        ("min_remaining", "15m"),
        ("missed", "immediately"),
    ]
}

#[tokio::test]
async fn windows_page_lists_creates_and_deletes() {
    let e = env().await;
    let owner = e.login("olivia").await;
    let body = e.page(&owner).await;
    assert!(
        body.contains("href=\"/ui/windows\""),
        "the nav links the page"
    );
    assert!(body.contains("id=\"new-window\""), "an owner has the form");
    assert!(
        body.contains(&format!("id=\"group-{}\"", e.web)),
        "every group has its section"
    );

    // Create a window that starts now: it is open, until two hours from now.
    let web = e.web.to_string();
    let a = e
        .post(
            &owner,
            "/ui/windows",
            &new_window("patch-now", &web, "now", "2h"),
        )
        .await;
    assert!(a.status.is_redirection(), "{} {}", a.status, a.body);
    assert_eq!(a.location.as_deref(), Some("/ui/windows?done=created"));
    let body = e
        .send("GET", "/ui/windows?done=created", Some(&owner.cookie), None)
        .await
        .body;
    assert!(body.contains("The window was created."), "{body}");
    assert!(
        body.contains("patch-now") && body.contains("Europe/Berlin"),
        "{body}"
    );
    assert!(body.contains("open until"), "{body}");
    assert!(
        body.contains("2h") && body.contains("15m") && body.contains("immediately"),
        "{body}"
    );

    // A bad window is refused with the reason.
    let a = e
        .post(
            &owner,
            "/ui/windows",
            &new_window("bad", &web, "02:00", "0m"),
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.body.contains("at least one minute"), "{}", a.body);
    let a = e
        .post(
            &owner,
            "/ui/windows",
            &[
                ("name", "bad"),
                ("group", &web),
                ("start", "02:00"),
                ("timezone", "Nowhere/City"),
                ("duration", "1h"),
            ],
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.body.contains("unknown time zone"), "{}", a.body);

    // A hostile name is escaped.
    let a = e
        .post(
            &owner,
            "/ui/windows",
            &new_window(EVIL_NAME, &web, "03:00", "1h"),
        )
        .await;
    assert!(a.status.is_redirection(), "{} {}", a.status, a.body);
    let body = e.page(&owner).await;
    assert!(!body.contains(EVIL_NAME), "unescaped: {body}");
    assert!(
        body.contains("&lt;script&gt;") || body.contains("&#60;script&#62;"),
        "{body}"
    );

    // A viewer sees the windows, no form, and is refused on every POST.
    let viewer = e.login("victor").await;
    let body = e.page(&viewer).await;
    assert!(body.contains("patch-now"));
    assert!(!body.contains("id=\"new-window\""), "a viewer has no form");
    assert!(!body.contains("/delete\""), "a viewer has no delete button");
    let rows = e.st.store.list_windows(e.org_id, None).await.unwrap();
    let id = rows
        .iter()
        .find(|r| r.fields.name == "patch-now")
        .unwrap()
        .id
        .to_string();
    let a = e
        .post(&viewer, "/ui/windows", &new_window("v", &web, "now", "1h"))
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let a = e
        .post(&viewer, &format!("/ui/windows/{id}/delete"), &[])
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);

    // Without the CSRF token: refused.
    let a = e
        .send(
            "POST",
            &format!("/ui/windows/{id}/delete"),
            Some(&owner.cookie),
            Some(String::new()),
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert_eq!(
        e.st.store.list_windows(e.org_id, None).await.unwrap().len(),
        2
    );

    // Delete.
    let a = e
        .post(&owner, &format!("/ui/windows/{id}/delete"), &[])
        .await;
    assert_eq!(
        a.location.as_deref(),
        Some("/ui/windows?done=deleted"),
        "{}",
        a.body
    );
    let names: Vec<_> =
        e.st.store
            .list_windows(e.org_id, None)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.fields.name)
            .collect();
    assert_eq!(names, vec![EVIL_NAME.to_string()]);

    // Both changes are in the audit trail, with the window named.
    let trail =
        e.st.store
            .list_audit(e.org_id, &AuditFilter::default(), 100)
            .await
            .unwrap();
    for action in ["window.create", "window.delete"] {
        assert!(
            trail.iter().any(|x| x.entry.action == action
                && x.entry.outcome.as_str() == "ok"
                && x.entry.details["name"] == "patch-now"),
            "no {action} of patch-now in the audit trail"
        );
    }
}

#[tokio::test]
async fn a_host_may_start_inside_a_window_of_its_groups() {
    use chrono::TimeZone;
    use patchctl_policy::window::NotNow;
    use patchctl_server::windows::host_may_start;
    let e = env().await;
    let at = |h: u32| Utc.with_ymd_and_hms(2026, 6, 1, h, 0, 0).unwrap();
    // No window yet: not restricted.
    assert_eq!(
        host_may_start(&e.st, e.org_id, e.host, at(14), at(13))
            .await
            .unwrap(),
        Ok(())
    );
    // A nightly window on `all` (every host is in it), a noon one on `web` (hosts tagged
    // `web`, which this one is not yet).
    let store = &e.st.store;
    let all = store
        .group_by_name(e.org_id, "all")
        .await
        .unwrap()
        .unwrap()
        .id;
    let mut f = patchctl_storage::WindowFields {
        group_id: all,
        name: "nightly".into(),
        days: String::new(),
        start_local: "02:00".into(),
        timezone: "UTC".into(),
        duration_minutes: 60,
        min_remaining_minutes: 10,
        missed_policy: "next_window".into(),
    };
    store
        .create_window(e.org_id, &f, "test", at(0))
        .await
        .unwrap();
    f.group_id = e.web;
    f.name = "web-noon".into();
    f.start_local = "12:00".into();
    store
        .create_window(e.org_id, &f, "test", at(0))
        .await
        .unwrap();
    assert_eq!(
        host_may_start(&e.st, e.org_id, e.host, at(2), at(1))
            .await
            .unwrap(),
        Ok(())
    );
    // The noon window is of a group the host is not in.
    assert_eq!(
        host_may_start(&e.st, e.org_id, e.host, at(12), at(11))
            .await
            .unwrap(),
        Err(NotNow::Closed {
            opens_at: Utc.with_ymd_and_hms(2026, 6, 2, 2, 0, 0).unwrap()
        })
    );
    // Tagged `web`, the host has the noon window too.
    assert!(
        store
            .set_host_tags(e.org_id, e.host, &["web".to_string()])
            .await
            .unwrap()
    );
    assert_eq!(
        host_may_start(&e.st, e.org_id, e.host, at(12), at(11))
            .await
            .unwrap(),
        Ok(())
    );
    // At 12:55 only 5 minutes of the noon window are left (10 needed): refused, and the
    // refusal names the soonest chance to start, the nightly window.
    let late = Utc.with_ymd_and_hms(2026, 6, 1, 12, 55, 0).unwrap();
    assert_eq!(
        host_may_start(&e.st, e.org_id, e.host, late, at(11))
            .await
            .unwrap(),
        Err(NotNow::Closed {
            opens_at: Utc.with_ymd_and_hms(2026, 6, 2, 2, 0, 0).unwrap()
        })
    );
    let at_1250 = Utc.with_ymd_and_hms(2026, 6, 1, 12, 50, 0).unwrap();
    assert_eq!(
        host_may_start(&e.st, e.org_id, e.host, at_1250, at(11))
            .await
            .unwrap(),
        Ok(())
    );
}
