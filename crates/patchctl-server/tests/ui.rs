//! The dashboard through the real router on a real SQLite file: sessions (login, the
//! same answer for an unknown user and a wrong password, logout that ends the session
//! on the server, timeouts), CSRF and Origin checks, the role checks (a viewer sees no
//! action and is refused the action), the security headers, and the escaping of
//! everything an agent sends.

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use chrono::Utc;
use http_body_util::BodyExt;
use patchctl_proto::access::Role;
use patchctl_proto::agent::{InstalledPackage, InventoryUpload, SystemInfo};
use patchctl_proto::command::{CommandResult, ResultStatus};
use patchctl_server::ui::session::{COOKIE, csrf_token};
use patchctl_server::{AppState, Settings, app, passwords};
use patchctl_storage::{NewCommand, NewHost, NewSession, NewUser, Storage};
use std::sync::Arc;
use tower::ServiceExt;
use uuid::Uuid;

/// What an agent may send that a page must never run.
const EVIL: &str = "<script>alert(\"pwn\")</script>'\"&";
const PASSWORD: &str = "correct horse battery staple";

struct Env {
    _dir: tempfile::TempDir,
    state: AppState,
    store: Arc<dyn Storage>,
    org: Uuid,
    host: Uuid,
}

async fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("db.sqlite").display());
    let store = patchctl_storage::open(&url).await.unwrap();
    let settings = Settings {
        metrics_history_len: 10,
        enroll_per_address_per_min: 1_000,
        enroll_per_key_per_min: 1_000,
        vuln_sync: false,
        webhook_allow_networks: vec!["127.0.0.0/8".parse().unwrap()],
        ..Settings::with_defaults("127.0.0.1:0".parse().unwrap(), url, "unused", "unused")
    };
    let now = Utc::now();
    let org = store.create_org("ui", now).await.unwrap();
    let key = store
        .create_enrollment_key(org.id, "k", "keyhash", now)
        .await
        .unwrap();
    let mut system = SystemInfo {
        hostname: EVIL.to_owned(),
        ..SystemInfo::default()
    };
    system.os.pretty_name = format!("Debian {EVIL}");
    let host = store
        .create_host(NewHost {
            org_id: org.id,
            enrollment_key_id: key.id,
            credential_hash: "cred".into(),
            agent_version: "1.0.0".into(),
            system: system.clone(),
            now,
        })
        .await
        .unwrap();
    store
        .put_inventory(
            host.id,
            &InventoryUpload {
                scanned_at: now,
                system,
                package_manager: Some("dpkg".into()),
                packages: vec![InstalledPackage {
                    name: format!("pkg{EVIL}"),
                    version: "1.0".into(),
                    arch: "amd64".into(),
                    source_name: None,
                    source_version: None,
                    status: "installed".into(),
                }],
            },
        )
        .await
        .unwrap();
    let cmd = store
        .queue_command(NewCommand {
            id: uuid::Uuid::new_v4(),
            signed: None,
            org_id: org.id,
            host_id: host.id,
            kind: "health_check".into(),
            params: serde_json::json!({}),
            now,
            expires_at: now + chrono::Duration::hours(1),
        })
        .await
        .unwrap();
    store
        .record_result(
            host.id,
            &CommandResult {
                command_id: cmd.id,
                status: ResultStatus::Succeeded,
                summary: format!("result {EVIL}"),
                started_at: now,
                finished_at: now,
                output: None,
            },
            now,
        )
        .await
        .unwrap();
    for (name, role) in [("alice", Role::Owner), ("victor", Role::Viewer)] {
        store
            .create_user(NewUser {
                org_id: org.id,
                username: name.into(),
                password_hash: passwords::hash_password(PASSWORD).unwrap(),
                role,
                now,
            })
            .await
            .unwrap();
    }
    Env {
        _dir: dir,
        state: AppState::new(store.clone(), settings),
        store,
        org: org.id,
        host: host.id,
    }
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Env {
    async fn call(
        &self,
        method: &str,
        path: &str,
        cookie: Option<&str>,
        form: Option<&str>,
    ) -> Answer {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(c) = cookie {
            req = req.header(header::COOKIE, format!("{COOKIE}={c}"));
        }
        if form.is_some() {
            req = req.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        }
        let req = req.body(Body::from(form.unwrap_or("").to_owned())).unwrap();
        let resp = app(self.state.clone()).oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        Answer {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    /// Logs `user` in through the form; returns the session secret of the cookie.
    async fn login(&self, user: &str) -> String {
        let a = self
            .call(
                "POST",
                "/ui/login",
                None,
                Some(&format!(
                    "username={user}&password={}&next=%2Fui%2F",
                    PASSWORD.replace(' ', "+")
                )),
            )
            .await;
        assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
        let cookie = a.headers[header::SET_COOKIE].to_str().unwrap().to_owned();
        for attr in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
            assert!(cookie.contains(attr), "{cookie} lacks {attr}");
        }
        cookie
            .strip_prefix(&format!("{COOKIE}="))
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned()
    }
}

#[tokio::test]
async fn agent_text_is_escaped_on_every_page() {
    let e = env().await;
    let s = e.login("alice").await;
    for path in [
        "/ui/".to_owned(),
        "/ui/hosts".to_owned(),
        format!("/ui/hosts/{}", e.host),
    ] {
        let a = e.call("GET", &path, Some(&s), None).await;
        assert_eq!(a.status, StatusCode::OK, "{path}: {}", a.body);
        assert!(
            !a.body.contains("<script>alert"),
            "{path} carries the raw script"
        );
        assert!(
            !a.body.contains("<script>"),
            "{path}: no inline script at all"
        );
    }
    let host = e
        .call("GET", &format!("/ui/hosts/{}", e.host), Some(&s), None)
        .await
        .body;
    let escaped = "&#60;script&#62;alert(&#34;pwn&#34;)&#60;/script&#62;&#39;&#34;&#38;";
    for what in [
        escaped.to_owned(),
        format!("pkg{escaped}"),
        format!("result {escaped}"),
    ] {
        assert!(
            host.contains(&what),
            "the host page shows {what:?} escaped:\n{host}"
        );
    }
}

#[tokio::test]
async fn security_headers_are_on_every_answer() {
    let e = env().await;
    for path in ["/ui/login", "/ui/", "/ui/hosts"] {
        let a = e.call("GET", path, None, None).await;
        let csp = a.headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(
            csp.contains("default-src 'self'") && !csp.contains("unsafe-inline"),
            "{csp}"
        );
        assert_eq!(a.headers[header::X_FRAME_OPTIONS], "DENY");
        assert_eq!(a.headers[header::REFERRER_POLICY], "same-origin");
        assert_eq!(a.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    }
    // Without a session a page goes to the login form and comes back after it.
    let a = e.call("GET", "/ui/hosts?q=a", None, None).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    assert_eq!(
        a.headers[header::LOCATION],
        "/ui/login?next=%2Fui%2Fhosts%3Fq%3Da"
    );
}

#[tokio::test]
async fn unknown_user_and_wrong_password_get_the_same_answer() {
    let e = env().await;
    let wrong = e
        .call(
            "POST",
            "/ui/login",
            None,
            Some("username=alice&password=nope"),
        )
        .await;
    let unknown = e
        .call(
            "POST",
            "/ui/login",
            None,
            Some("username=mallory&password=nope"),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    // The refusal is the login page again (HTML), never turned into the API's JSON
    // error body by the layer that gives axum's own errors one.
    let ct = wrong.headers[header::CONTENT_TYPE].to_str().unwrap();
    assert!(ct.starts_with("text/html"), "{ct}: {}", wrong.body);
    assert!(wrong.body.contains("<form"), "{}", wrong.body);
    assert_eq!(
        wrong.body.replace("alice", "X"),
        unknown.body.replace("mallory", "X"),
        "the two answers differ only by the name typed"
    );
    assert!(wrong.headers.get(header::SET_COOKIE).is_none());
    // The per-username bucket (10 a minute): attempts are refused with 429 once it is
    // empty. Each refused password costs an Argon2 verification (slow in a debug
    // build), during which the bucket refills a little, so count to the first 429.
    let mut attempts = 0;
    loop {
        attempts += 1;
        let a = e
            .call("POST", "/ui/login", None, Some("username=bob&password=x"))
            .await;
        if a.status == StatusCode::TOO_MANY_REQUESTS {
            assert!(a.headers.contains_key(header::RETRY_AFTER));
            assert!(a.body.contains("too many login attempts"), "{}", a.body);
            break;
        }
        assert_eq!(a.status, StatusCode::UNAUTHORIZED);
        assert!(attempts < 20, "no 429 after {attempts} attempts");
    }
    assert!(
        attempts > 10,
        "the burst is 10 attempts, refused at {attempts}"
    );
}

#[tokio::test]
async fn forms_need_the_session_csrf_token_and_our_origin() {
    let e = env().await;
    let s = e.login("alice").await;
    let path = format!("/ui/hosts/{}/commands", e.host);
    let csrf = csrf_token(&s);
    let none = e
        .call(
            "POST",
            &path,
            Some(&s),
            Some("kind=health_check&confirm=yes"),
        )
        .await;
    assert_eq!(none.status, StatusCode::FORBIDDEN);
    assert!(none.body.contains("no CSRF token"), "{}", none.body);
    let wrong = e
        .call(
            "POST",
            &path,
            Some(&s),
            Some(&format!(
                "kind=health_check&confirm=yes&csrf={}",
                csrf_token(&"0".repeat(64))
            )),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    // The right token: first a confirmation page, then the command is queued.
    let confirm = e
        .call(
            "POST",
            &path,
            Some(&s),
            Some(&format!("kind=health_check&csrf={csrf}")),
        )
        .await;
    assert_eq!(confirm.status, StatusCode::OK, "{}", confirm.body);
    assert!(confirm.body.contains("name=\"confirm\" value=\"yes\""));
    let before = e
        .store
        .list_commands(e.org, Some(e.host), 100)
        .await
        .unwrap()
        .len();
    let done = e
        .call(
            "POST",
            &path,
            Some(&s),
            Some(&format!("kind=health_check&confirm=yes&csrf={csrf}")),
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    let after = e
        .store
        .list_commands(e.org, Some(e.host), 100)
        .await
        .unwrap();
    assert_eq!(after.len(), before + 1);
    assert_eq!(after[0].kind, "health_check");
    // Every form post is in the audit trail, refusals included, naming the user.
    let trail = e
        .store
        .list_audit(e.org, &patchctl_storage::AuditFilter::default(), 100)
        .await
        .unwrap();
    let posts: Vec<(u16, &str, &str)> = trail
        .iter()
        .filter(|a| a.entry.route == "/ui/hosts/{host}/commands")
        .map(|a| {
            (
                a.entry.status,
                a.entry.outcome.as_str(),
                a.entry.actor.name.as_str(),
            )
        })
        .collect();
    assert_eq!(
        posts,
        vec![
            (303, "ok", "user alice (dashboard)"),
            (200, "ok", "user alice (dashboard)"),
            (403, "refused", "user alice (dashboard)"),
            (403, "refused", "user alice (dashboard)"),
        ],
        "{trail:#?}"
    );
}

#[tokio::test]
async fn a_viewer_sees_no_action_and_is_refused_it() {
    let e = env().await;
    let s = e.login("victor").await;
    let page = e
        .call("GET", &format!("/ui/hosts/{}", e.host), Some(&s), None)
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        !page.body.contains("queue-button"),
        "a viewer is shown no queue form"
    );
    assert!(page.body.contains("id=\"no-queue\""));
    let csrf = csrf_token(&s);
    let a = e
        .call(
            "POST",
            &format!("/ui/hosts/{}/commands", e.host),
            Some(&s),
            Some(&format!("kind=health_check&confirm=yes&csrf={csrf}")),
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert!(a.body.contains("viewer"), "{}", a.body);
    assert_eq!(
        e.store
            .list_commands(e.org, Some(e.host), 100)
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn logout_ends_the_session_on_the_server_and_timeouts_end_it_too() {
    let e = env().await;
    let s = e.login("alice").await;
    assert_eq!(
        e.call("GET", "/ui/", Some(&s), None).await.status,
        StatusCode::OK
    );
    // Logout is a form like any other: without the token it is refused.
    let a = e.call("POST", "/ui/logout", Some(&s), Some("")).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let a = e
        .call(
            "POST",
            "/ui/logout",
            Some(&s),
            Some(&format!("csrf={}", csrf_token(&s))),
        )
        .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    assert!(
        a.headers[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    // The old cookie no longer opens anything.
    let a = e.call("GET", "/ui/", Some(&s), None).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    assert!(
        a.headers[header::LOCATION]
            .to_str()
            .unwrap()
            .starts_with("/ui/login")
    );

    // A session idle for longer than session_idle_secs is over.
    let secret = "ab".repeat(32);
    let user = e.store.user_login("alice").await.unwrap().unwrap().0;
    let long_ago = Utc::now() - chrono::Duration::seconds(1_801);
    e.store
        .create_session(NewSession {
            id: Uuid::new_v4(),
            secret_hash: patchctl_server::auth::hash_secret(&secret),
            user_id: user.id,
            org_id: e.org,
            now: long_ago,
        })
        .await
        .unwrap();
    let a = e.call("GET", "/ui/", Some(&secret), None).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "an idle session is over");
}

#[tokio::test]
async fn a_host_without_a_scan_says_so_never_zero_packages() {
    let e = env().await;
    let s = e.login("alice").await;
    let key = e
        .store
        .create_enrollment_key(e.org, "k2", "keyhash2", Utc::now())
        .await
        .unwrap();
    e.store
        .create_host(NewHost {
            org_id: e.org,
            enrollment_key_id: key.id,
            credential_hash: "cred2".into(),
            agent_version: "1.0.0".into(),
            system: SystemInfo {
                hostname: "fresh-host".into(),
                ..SystemInfo::default()
            },
            now: Utc::now(),
        })
        .await
        .unwrap();
    let list = e
        .call("GET", "/ui/hosts?q=fresh-host", Some(&s), None)
        .await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    assert!(list.body.contains("fresh-host"), "{}", list.body);
    assert!(list.body.contains("not scanned yet"), "{}", list.body);
    // The scanned host keeps its numbers.
    let all = e.call("GET", "/ui/hosts", Some(&s), None).await;
    assert_eq!(
        all.body.matches("not scanned yet").count(),
        1,
        "{}",
        all.body
    );
}

#[tokio::test]
async fn webhooks_are_created_tested_and_rotated_from_the_dashboard() {
    let e = env().await;
    let s = e.login("alice").await;
    let csrf = csrf_token(&s);
    let page = e.call("GET", "/ui/webhooks", Some(&s), None).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("id=\"new-webhook\"") && page.body.contains("No webhooks yet"));
    // Refused targets say why.
    let bad = e
        .call(
            "POST",
            "/ui/webhooks",
            Some(&s),
            Some(&format!(
                "csrf={csrf}&name=x&url=https%3A%2F%2F192.168.1.1%2F"
            )),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("private"), "{}", bad.body);
    let made = e
        .call(
            "POST",
            "/ui/webhooks",
            Some(&s),
            Some(&format!(
                "csrf={csrf}&name=ops&url=http%3A%2F%2F127.0.0.1%3A9%2Fhook&event=host.enrolled&event=finding.new&min_severity=high"
            )),
        )
        .await;
    assert_eq!(made.status, StatusCode::OK, "{}", made.body);
    assert!(made.body.contains("whsec_"));
    let hooks = e.store.list_webhooks(e.org).await.unwrap();
    assert_eq!(hooks.len(), 1);
    let h = &hooks[0];
    assert_eq!(h.events.len(), 2);
    assert_eq!(
        h.min_severity,
        Some(patchctl_proto::policy::webhooks::EventSeverity::High)
    );
    // The list and the webhook's page never show the secret.
    let secret = made
        .body
        .split("whsec_")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .to_owned();
    for path in ["/ui/webhooks".to_owned(), format!("/ui/webhooks/{}", h.id)] {
        let p = e.call("GET", &path, Some(&s), None).await;
        assert_eq!(p.status, StatusCode::OK);
        assert!(
            p.body.contains("ops") && !p.body.contains(&secret),
            "{path}"
        );
    }
    let t = e
        .call(
            "POST",
            &format!("/ui/webhooks/{}/test", h.id),
            Some(&s),
            Some(&format!("csrf={csrf}")),
        )
        .await;
    assert_eq!(t.status, StatusCode::SEE_OTHER);
    let log = e
        .store
        .webhook_deliveries(e.org, h.id, None, 10)
        .await
        .unwrap();
    assert_eq!(log.items[0].event_type, "webhook.test");
    let p = e
        .call("GET", &format!("/ui/webhooks/{}", h.id), Some(&s), None)
        .await;
    assert!(p.body.contains(&log.items[0].message_id));
    let r = e
        .call(
            "POST",
            &format!("/ui/webhooks/{}/rotate", h.id),
            Some(&s),
            Some(&format!("csrf={csrf}&grace_hours=2")),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("whsec_") && !r.body.contains(&secret));
    // A viewer sees the list but no form, and is refused the actions.
    let v = e.login("victor").await;
    let p = e.call("GET", "/ui/webhooks", Some(&v), None).await;
    assert_eq!(p.status, StatusCode::OK);
    assert!(p.body.contains("ops") && !p.body.contains("new-webhook"));
    let refused = e
        .call(
            "POST",
            &format!("/ui/webhooks/{}/delete", h.id),
            Some(&v),
            Some(&format!("csrf={}", csrf_token(&v))),
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let d = e
        .call(
            "POST",
            &format!("/ui/webhooks/{}/delete", h.id),
            Some(&s),
            Some(&format!("csrf={csrf}")),
        )
        .await;
    assert_eq!(d.status, StatusCode::SEE_OTHER);
    assert!(e.store.list_webhooks(e.org).await.unwrap().is_empty());
}
