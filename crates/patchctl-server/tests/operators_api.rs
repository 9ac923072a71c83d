//! Users and API tokens over the real operator API (TLS 1.3 on loopback, a real SQLite
//! file): creating users and tokens, the token's scope, expiry, last use and
//! revocation, a disabled user's tokens, the owner rules (the last owner stays, only an
//! owner makes or touches an owner), self-service (own tokens, own password), `whoami`,
//! and that no password or token reaches an answer, the audit trail or the log.

mod support;

use axum::http::StatusCode;
use chrono::{Duration, Utc};
use patchctl_proto::access::Role;
use serde_json::{Value, json};
use support::{PASSWORD, platform};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_expire_are_revoked_and_die_with_their_user() {
    let p = platform().await;
    let owner = p.caller("owner").token.clone();
    // Expired.
    let eve = p.user("eve", Role::Operator).await;
    let expired = p
        .token(&eve, false, Some(Utc::now() - Duration::seconds(1)))
        .await;
    let r = p.req("GET", "/api/v1/hosts", Some(&expired), None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
    assert!(!r.text.contains(&expired));
    // Made through the API, used, revoked.
    let c = p
        .req(
            "POST",
            "/api/v1/tokens",
            Some(&owner),
            Some(&json!({"name": "for eve", "user": "eve", "expires_in_secs": 3600})),
        )
        .await
        .ok();
    let tok = c["token"].as_str().unwrap().to_owned();
    p.remember(&tok);
    assert!(tok.starts_with("pct_"));
    assert_eq!(c["info"]["username"], "eve");
    assert_eq!(c["info"]["state"], "active");
    assert_eq!(
        p.req("GET", "/api/v1/hosts", Some(&tok), None).await.status,
        StatusCode::OK
    );
    let me = p.req("GET", "/api/v1/whoami", Some(&tok), None).await.ok();
    assert_eq!(me["role"], "operator");
    assert_eq!(me["user"]["username"], "eve");
    assert_eq!(me["via"], "token");
    assert_eq!(me["read_only"], false);
    let listed = p
        .req("GET", "/api/v1/tokens?user=eve", Some(&owner), None)
        .await
        .ok();
    let t = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == c["info"]["id"])
        .unwrap()
        .clone();
    assert!(!t["last_used_at"].is_null(), "last use not recorded: {t}");
    assert!(
        !listed.to_string().contains("pct_"),
        "a listing shows a token: {listed}"
    );
    let id = c["info"]["id"].as_str().unwrap();
    let rv = p
        .req(
            "POST",
            &format!("/api/v1/tokens/{id}/revoke"),
            Some(&tok),
            None,
        )
        .await
        .ok();
    assert_eq!(rv["state"], "revoked");
    let r = p.req("GET", "/api/v1/hosts", Some(&tok), None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "revoked: {}", r.text);
    // A disabled user's token.
    let eve_tok = p.token(&eve, false, None).await;
    assert_eq!(
        p.req("GET", "/api/v1/hosts", Some(&eve_tok), None)
            .await
            .status,
        StatusCode::OK
    );
    let d = p
        .req("POST", "/api/v1/users/eve/disable", Some(&owner), None)
        .await
        .ok();
    assert!(!d["disabled_at"].is_null());
    let r = p.req("GET", "/api/v1/hosts", Some(&eve_tok), None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "disabled: {}", r.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_tokens_only_read() {
    let p = platform().await;
    let ro = p.caller("read-only").token.clone();
    assert_eq!(
        p.req("GET", "/api/v1/hosts", Some(&ro), None).await.status,
        StatusCode::OK
    );
    let me = p.req("GET", "/api/v1/whoami", Some(&ro), None).await.ok();
    assert_eq!(me["read_only"], true);
    let r = p
        .req(
            "POST",
            "/api/v1/tokens",
            Some(&ro),
            Some(&json!({"name": "escalate"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert_eq!(r.code(), "forbidden");
    // A viewer makes a read-only token for themselves.
    let viewer = p.caller("viewer").token.clone();
    let c = p
        .req(
            "POST",
            "/api/v1/tokens",
            Some(&viewer),
            Some(&json!({"name": "dash", "read_only": true, "never_expires": true})),
        )
        .await
        .ok();
    assert_eq!(c["info"]["read_only"], true);
    assert!(c["info"]["expires_at"].is_null());
    p.remember(c["token"].as_str().unwrap());
    // Default expiry: 90 days.
    let c = p
        .req(
            "POST",
            "/api/v1/tokens",
            Some(&viewer),
            Some(&json!({"name": "d"})),
        )
        .await
        .ok();
    p.remember(c["token"].as_str().unwrap());
    let exp: chrono::DateTime<Utc> =
        serde_json::from_value(c["info"]["expires_at"].clone()).unwrap();
    let days = (exp - Utc::now()).num_hours() as f64 / 24.0;
    assert!((89.9..=90.0).contains(&days), "{days}");
    // A viewer cannot make one for someone else, nor see others' tokens.
    let r = p
        .req(
            "POST",
            "/api/v1/tokens",
            Some(&viewer),
            Some(&json!({"name": "x", "user": "operator"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    let mine = p
        .req("GET", "/api/v1/tokens", Some(&viewer), None)
        .await
        .ok();
    assert!(
        mine.as_array()
            .unwrap()
            .iter()
            .all(|t| t["username"] == "viewer"),
        "{mine}"
    );
    let admin = p.caller("admin").token.clone();
    let all = p
        .req("GET", "/api/v1/tokens", Some(&admin), None)
        .await
        .ok();
    let n = all.as_array().unwrap().len();
    assert!(n > mine.as_array().unwrap().len());
    // Paged like every list: two at a time, following the cursor, gives the same list.
    let mut seen = Vec::new();
    let mut path = "/api/v1/tokens?limit=2".to_owned();
    loop {
        let r = p.req("GET", &path, Some(&admin), None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        seen.extend(r.body.as_array().unwrap().iter().map(|t| t["id"].clone()));
        match r.next_cursor {
            Some(c) => path = format!("/api/v1/tokens?limit=2&cursor={c}"),
            None => break,
        }
    }
    let ids: Vec<Value> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].clone())
        .collect();
    assert_eq!(seen, ids);
    let r = p
        .req("GET", "/api/v1/users?cursor=garbage", Some(&admin), None)
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert_eq!(r.code(), "bad_cursor");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owners_are_protected() {
    let p = platform().await;
    let owner = p.caller("owner").token.clone();
    let admin = p.caller("admin").token.clone();
    // The only owner can be neither demoted nor disabled.
    for (m, path, body) in [
        (
            "PUT",
            "/api/v1/users/owner/role",
            Some(json!({"role": "admin"})),
        ),
        ("POST", "/api/v1/users/owner/disable", None),
    ] {
        let r = p.req(m, path, Some(&owner), body.as_ref()).await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{path}: {}", r.text);
        assert!(r.text.contains("last active owner"), "{}", r.text);
    }
    // An admin cannot make, demote, disable an owner or set an owner's password.
    let mk = json!({"username": "boss2", "role": "owner", "password": PASSWORD});
    for (m, path, body) in [
        ("POST", "/api/v1/users", Some(mk.clone())),
        (
            "PUT",
            "/api/v1/users/viewer/role",
            Some(json!({"role": "owner"})),
        ),
        (
            "PUT",
            "/api/v1/users/owner/role",
            Some(json!({"role": "viewer"})),
        ),
        ("POST", "/api/v1/users/owner/disable", None),
        (
            "PUT",
            "/api/v1/users/owner/password",
            Some(json!({"password": "another-long-password"})),
        ),
        (
            "POST",
            "/api/v1/tokens",
            Some(json!({"name": "steal", "user": "owner"})),
        ),
    ] {
        let r = p.req(m, path, Some(&admin), body.as_ref()).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{m} {path}: {}", r.text);
        assert_eq!(r.code(), "forbidden");
    }
    // An owner makes a second owner; then the first can step down.
    let u = p
        .req("POST", "/api/v1/users", Some(&owner), Some(&mk))
        .await;
    assert_eq!(u.status, StatusCode::CREATED, "{}", u.text);
    assert_eq!(u.body["role"], "owner");
    let d = p
        .req(
            "PUT",
            "/api/v1/users/owner/role",
            Some(&owner),
            Some(&json!({"role": "admin"})),
        )
        .await
        .ok();
    assert_eq!(d["role"], "admin");
    // A taken username, a bad one, a short password.
    let r = p
        .req(
            "POST",
            "/api/v1/users",
            Some(&admin),
            Some(&json!({"username": "viewer", "role": "viewer", "password": PASSWORD})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    let r = p
        .req(
            "POST",
            "/api/v1/users",
            Some(&admin),
            Some(&json!({"username": "Bad Name", "role": "viewer", "password": PASSWORD})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    let r = p
        .req(
            "POST",
            "/api/v1/users",
            Some(&admin),
            Some(&json!({"username": "shorty", "role": "viewer", "password": "short-pw"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(
        !r.text.contains("short-pw"),
        "the error repeats the password: {}",
        r.text
    );
    let r = p
        .req(
            "PUT",
            "/api/v1/users/viewer/role",
            Some(&admin),
            Some(&json!({"role": "wizard"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anyone_changes_their_own_password_and_nothing_leaks() {
    let p = platform().await;
    let viewer = p.caller("viewer").token.clone();
    let admin = p.caller("admin").token.clone();
    let new_pw = "viewer-new-password-canary-7731";
    p.remember(new_pw);
    let r = p
        .req(
            "PUT",
            "/api/v1/users/viewer/password",
            Some(&viewer),
            Some(&json!({"password": new_pw})),
        )
        .await
        .ok();
    assert_eq!(r["username"], "viewer");
    let (_, hash) = p.store.user_login("viewer").await.unwrap().unwrap();
    assert!(patchctl_server::passwords::verify_password(new_pw, &hash));
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    // Not someone else's.
    let r = p
        .req(
            "PUT",
            "/api/v1/users/operator/password",
            Some(&viewer),
            Some(&json!({"password": new_pw})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    // An admin sets a non-owner's password, creates users and tokens.
    let pw2 = "operator-reset-password-canary-1192";
    p.remember(pw2);
    p.req(
        "PUT",
        "/api/v1/users/operator/password",
        Some(&admin),
        Some(&json!({"password": pw2})),
    )
    .await
    .ok();
    let pw3 = "new-user-password-canary-5520";
    p.remember(pw3);
    p.req(
        "POST",
        "/api/v1/users",
        Some(&admin),
        Some(&json!({"username": "frank", "role": "auditor", "password": pw3})),
    )
    .await
    .ok();
    let c = p
        .req(
            "POST",
            "/api/v1/tokens",
            Some(&admin),
            Some(&json!({"name": "frank's", "user": "frank"})),
        )
        .await
        .ok();
    p.remember(c["token"].as_str().unwrap());
    let users = p.req("GET", "/api/v1/users", Some(&admin), None).await.ok();
    assert!(
        users
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["username"] == "frank" && u["role"] == "auditor")
    );
    assert!(
        !users.to_string().contains("argon2"),
        "a listing shows a hash: {users}"
    );

    // No secret in the audit trail or the log.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let entries = p
        .store
        .list_audit(p.org_id, &patchctl_storage::AuditFilter::default(), 1000)
        .await
        .unwrap();
    assert!(
        entries.iter().any(|e| e.entry.route.contains("/users")),
        "no user change audited: {entries:?}"
    );
    let audit = format!("{entries:?}");
    let log = support::log_text();
    for s in p.secrets.lock().unwrap().iter() {
        assert!(
            !audit.contains(s.as_str()),
            "a secret is in the audit trail: {s}"
        );
        assert!(!log.contains(s.as_str()), "a secret is in the log: {s}");
    }
}
