//! The platform's HTTP surface: error bodies, limits, authentication, organisation
//! isolation and idempotent results, through the real router on a real SQLite file;
//! and TLS 1.3-only serving checked with `openssl s_client` over loopback.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::Utc;
use http_body_util::BodyExt;
use patchctl_proto::agent::{EnrollRequest, EnrollResponse, SystemInfo};
use patchctl_proto::{PROTOCOL_VERSION, Secret};
use patchctl_server::bootstrap::{OrgSecrets, create_org};
use patchctl_server::{AppState, Settings, app};
use serde_json::{Value, json};
use tower::ServiceExt;

struct Env {
    _dir: tempfile::TempDir,
    state: AppState,
}

async fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("db.sqlite").display());
    let store = patchctl_storage::open(&url).await.unwrap();
    let settings = Settings {
        listen: "127.0.0.1:0".parse().unwrap(),
        database_url: url,
        tls_cert: "unused".into(),
        tls_key: "unused".into(),
        heartbeat_interval_secs: 300,
        command_lease_secs: 600,
        metrics_history_len: 10,
    };
    Env {
        _dir: dir,
        state: AppState::new(store, settings),
    }
}

impl Env {
    async fn call(
        &self,
        method: &str,
        path: &str,
        bearer: Option<&str>,
        body: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(b) = bearer {
            req = req.header("authorization", format!("Bearer {b}"));
        }
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        let req = req.body(Body::from(body.unwrap_or("").to_owned())).unwrap();
        let resp = app(self.state.clone()).oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let v = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            panic!(
                "{method} {path}: body is not JSON: {}",
                String::from_utf8_lossy(&bytes)
            )
        });
        (status, v)
    }

    async fn org(&self, name: &str) -> OrgSecrets {
        create_org(self.state.store.as_ref(), name).await.unwrap()
    }

    async fn enroll(&self, key: &Secret, hostname: &str) -> EnrollResponse {
        let req = EnrollRequest {
            protocol_version: PROTOCOL_VERSION,
            license_key: key.clone(),
            agent_version: "test".into(),
            system: SystemInfo {
                hostname: hostname.into(),
                ..Default::default()
            },
        };
        let (st, v) = self
            .call(
                "POST",
                "/api/v1/agent/enroll",
                None,
                Some(&serde_json::to_string(&req).unwrap()),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        serde_json::from_value(v).unwrap()
    }
}

#[tokio::test]
async fn malformed_json_gets_a_400_that_says_what_was_wrong() {
    let e = env().await;
    let org = e.org("a").await;
    let tok = org.token.expose();
    for (body, want) in [
        ("{", "EOF"),
        ("{\"host\": 5, \"kind\": \"health_check\"}", "invalid type"),
        ("{\"kind\": \"health_check\"}", "missing field `host`"),
        ("[]", "expected struct QueueCommandRequest"),
    ] {
        let (st, v) = e
            .call("POST", "/api/v1/commands", Some(tok), Some(body))
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{body}: {v}");
        assert!(v["error"].as_str().unwrap().contains(want), "{body}: {v}");
    }
    let (st, v) = e
        .call(
            "POST",
            "/api/v1/agent/enroll",
            None,
            Some("{\"protocol_version\": 1}"),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("missing field"),
        "{v}"
    );
}

#[tokio::test]
async fn bodies_are_size_limited() {
    let e = env().await;
    let org = e.org("a").await;
    let big = format!(
        "{{\"host\": \"{}\", \"kind\": \"health_check\"}}",
        "x".repeat(2 * 1024 * 1024)
    );
    let (st, v) = e
        .call(
            "POST",
            "/api/v1/commands",
            Some(org.token.expose()),
            Some(&big),
        )
        .await;
    assert_eq!(st, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    assert!(v["error"].as_str().unwrap().contains("too large"));
}

#[tokio::test]
async fn authentication_is_required_and_checked() {
    let e = env().await;
    let org = e.org("a").await;
    let (st, v) = e.call("GET", "/api/v1/hosts", None, None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert!(v["error"].as_str().unwrap().contains("PATCHCTL_TOKEN"));
    let (st, _) = e
        .call("GET", "/api/v1/hosts", Some("pct_wrong"), None)
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    // An enrollment key or an agent credential is not an operator token, and vice versa.
    let (st, _) = e
        .call(
            "GET",
            "/api/v1/hosts",
            Some(org.enrollment_key.expose()),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, _) = e
        .call("POST", "/api/v1/agent/heartbeat", Some(org.token.expose()), Some("{\"agent_version\":\"x\",\"metrics\":{\"cpu_percent\":0,\"load\":[0,0,0],\"mem_used_bytes\":0,\"mem_total_bytes\":0,\"swap_used_bytes\":0,\"swap_total_bytes\":0,\"disks\":[],\"uptime_secs\":0}}"))
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    // Unknown or wrong-protocol enrollment.
    let req = json!({"protocol_version": PROTOCOL_VERSION, "license_key": "pek_nope", "agent_version": "t", "system": SystemInfo::default()});
    let (st, v) = e
        .call("POST", "/api/v1/agent/enroll", None, Some(&req.to_string()))
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "{v}");
    let req = json!({"protocol_version": 999, "license_key": org.enrollment_key.expose(), "agent_version": "t", "system": SystemInfo::default()});
    let (st, v) = e
        .call("POST", "/api/v1/agent/enroll", None, Some(&req.to_string()))
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("protocol version 999")
    );
    let (st, v) = e.call("GET", "/nope", None, None).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert!(v["error"].as_str().unwrap().contains("/api/v1/"));
}

#[tokio::test]
async fn a_token_of_one_organisation_sees_and_does_nothing_in_another() {
    let e = env().await;
    let a = e.org("a").await;
    let b = e.org("b").await;
    let host = e.enroll(&a.enrollment_key, "web-1").await;
    let hid = host.host_id.to_string();
    let (st, cmd) = e
        .call(
            "POST",
            "/api/v1/commands",
            Some(a.token.expose()),
            Some(&json!({"host": hid, "kind": "health_check"}).to_string()),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{cmd}");
    let cid = cmd["id"].as_str().unwrap().to_owned();

    let bt = Some(b.token.expose());
    let (st, v) = e.call("GET", "/api/v1/hosts", bt, None).await;
    assert_eq!((st, v), (StatusCode::OK, json!([])));
    for path in [
        format!("/api/v1/hosts/{hid}"),
        "/api/v1/hosts/web-1".to_owned(),
        format!("/api/v1/hosts/{hid}/packages"),
        format!("/api/v1/hosts/{hid}/metrics"),
        format!("/api/v1/commands/{cid}"),
        format!("/api/v1/commands?host={hid}"),
    ] {
        let (st, v) = e.call("GET", &path, bt, None).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{path}: {v}");
    }
    let (st, v) = e.call("GET", "/api/v1/commands", bt, None).await;
    assert_eq!((st, v), (StatusCode::OK, json!([])));
    let (st, _) = e
        .call(
            "POST",
            "/api/v1/commands",
            bt,
            Some(&json!({"host": hid, "kind": "health_check"}).to_string()),
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, _) = e
        .call("POST", &format!("/api/v1/commands/{cid}/cancel"), bt, None)
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, _) = e
        .call("POST", &format!("/api/v1/hosts/{hid}/revoke"), bt, None)
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    // Org A still sees everything intact.
    let (st, v) = e
        .call(
            "GET",
            &format!("/api/v1/commands/{cid}"),
            Some(a.token.expose()),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["state"], "queued");
    let (_, v) = e
        .call(
            "GET",
            &format!("/api/v1/hosts/{hid}"),
            Some(a.token.expose()),
            None,
        )
        .await;
    assert_eq!(v["status"], "offline");
}

#[tokio::test]
async fn results_are_idempotent_by_command_id() {
    let e = env().await;
    let a = e.org("a").await;
    let host = e.enroll(&a.enrollment_key, "db-1").await;
    let cred = host.credential.expose();
    let (_, cmd) = e
        .call(
            "POST",
            "/api/v1/commands",
            Some(a.token.expose()),
            Some(
                &json!({"host": "db-1", "kind": "get_package_info", "params": {"name": "dpkg"}})
                    .to_string(),
            ),
        )
        .await;
    let cid = cmd["id"].as_str().unwrap();
    let hb = json!({"agent_version": "t", "metrics": {"cpu_percent": 1.5, "load": [0.1, 0.2, 0.3], "mem_used_bytes": 1, "mem_total_bytes": 2, "swap_used_bytes": 0, "swap_total_bytes": 0, "disks": [], "uptime_secs": 5}});
    let (st, v) = e
        .call(
            "POST",
            "/api/v1/agent/heartbeat",
            Some(cred),
            Some(&hb.to_string()),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["commands"][0]["id"], cid);
    assert_eq!(v["commands"][0]["params"], json!({"name": "dpkg"}));
    let now = Utc::now().to_rfc3339();
    let result = |summary: &str, status: &str| {
        json!({"results": [{"command_id": cid, "status": status, "summary": summary, "started_at": now, "finished_at": now}]}).to_string()
    };
    let (st, v) = e
        .call(
            "POST",
            "/api/v1/agent/results",
            Some(cred),
            Some(&result("first", "succeeded")),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["stored"], json!([cid]));
    let (_, v) = e
        .call(
            "POST",
            "/api/v1/agent/results",
            Some(cred),
            Some(&result("second", "failed")),
        )
        .await;
    assert_eq!(
        v["stored"],
        json!([cid]),
        "a duplicate is acknowledged so the agent forgets it"
    );
    let (_, rec) = e
        .call(
            "GET",
            &format!("/api/v1/commands/{cid}"),
            Some(a.token.expose()),
            None,
        )
        .await;
    assert_eq!(rec["state"], "succeeded");
    assert_eq!(rec["result"]["summary"], "first");
    assert_eq!(rec["events"].as_array().unwrap().len(), 3);
    // The host is online with its metrics.
    let (_, h) = e
        .call("GET", "/api/v1/hosts/db-1", Some(a.token.expose()), None)
        .await;
    assert_eq!(h["status"], "online");
    assert_eq!(h["metrics"]["uptime_secs"], 5);
    // A revoked host's credential stops working.
    let (st, _) = e
        .call(
            "POST",
            "/api/v1/hosts/db-1/revoke",
            Some(a.token.expose()),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let (st, v) = e
        .call(
            "POST",
            "/api/v1/agent/heartbeat",
            Some(cred),
            Some(&hb.to_string()),
        )
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "{v}");
}

#[tokio::test]
async fn queueing_validates_against_the_whitelist() {
    let e = env().await;
    let a = e.org("a").await;
    e.enroll(&a.enrollment_key, "h").await;
    let tok = Some(a.token.expose());
    for (body, want) in [
        (
            json!({"host": "h", "kind": "run_script", "params": {"script": "id"}}),
            "unknown command kind",
        ),
        (
            json!({"host": "h", "kind": "get_package_info", "params": {"name": "-oAPT::x"}}),
            "must start with a letter or digit",
        ),
        (
            json!({"host": "h", "kind": "get_package_info", "params": {"name": "foo;rm"}}),
            "';'",
        ),
        (
            json!({"host": "h", "kind": "health_check", "params": {}, "expires_in_secs": 0}),
            "expires_in_secs",
        ),
        (json!({"host": "nope", "kind": "health_check"}), "no host"),
    ] {
        let (st, v) = e
            .call("POST", "/api/v1/commands", tok, Some(&body.to_string()))
            .await;
        assert!(st.is_client_error(), "{body}: {st}");
        assert!(v["error"].as_str().unwrap().contains(want), "{body}: {v}");
    }
}

/// Starts the real TLS server on 127.0.0.1:0 with a development PKI.
async fn tls_server() -> (tempfile::TempDir, std::net::SocketAddr, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let pki = patchctl_net::ensure_dev_pki(
        &dir.path().join("pki"),
        &["localhost".into(), "127.0.0.1".into()],
    )
    .unwrap();
    let settings = Settings {
        listen: "127.0.0.1:0".parse().unwrap(),
        database_url: format!("sqlite://{}", dir.path().join("db.sqlite").display()),
        tls_cert: pki.server_cert.clone(),
        tls_key: pki.server_key.clone(),
        heartbeat_interval_secs: 300,
        command_lease_secs: 600,
        metrics_history_len: 10,
    };
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(patchctl_server::launch_with_listener(
        settings,
        listener,
        std::future::pending(),
    ));
    (dir, addr, pki.ca_cert)
}

fn s_client(
    addr: std::net::SocketAddr,
    ca: &std::path::Path,
    version: &str,
) -> std::process::Output {
    #[allow(clippy::disallowed_methods)] // Test harness: runs openssl, not agent code.
    let out = std::process::Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &addr.to_string(),
            "-servername",
            "localhost",
            version,
            "-CAfile",
        ])
        .arg(ca)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("openssl must be installed (apt-get install openssl)");
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn openssl_sees_tls13_only_with_an_ecdsa_certificate() {
    let (_dir, addr, ca) = tls_server().await;
    let (t12, t13) = tokio::task::spawn_blocking(move || {
        (
            s_client(addr, &ca, "-tls1_2"),
            s_client(addr, &ca, "-tls1_3"),
        )
    })
    .await
    .unwrap();
    let out13 = String::from_utf8_lossy(&t13.stdout);
    assert!(t13.status.success(), "TLS 1.3 handshake failed: {out13}");
    assert!(out13.contains("TLSv1.3"), "{out13}");
    assert!(out13.contains("Verify return code: 0 (ok)"), "{out13}");
    assert!(
        out13.contains("ECDSA") || out13.contains("id-ecPublicKey") || out13.contains("prime256v1"),
        "not an ECDSA certificate: {out13}"
    );
    assert!(
        !t12.status.success(),
        "a TLS 1.2 handshake succeeded: {}",
        String::from_utf8_lossy(&t12.stdout)
    );
}
