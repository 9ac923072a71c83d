//! The platform's HTTP surface: error bodies, limits, authentication, organisation
//! isolation, idempotent results and scan uploads (full, delta, unchanged), through the
//! real router on a real SQLite file; TLS 1.3-only serving checked with
//! `openssl s_client` over loopback, and gzip request bodies (and a gzip bomb) sent to
//! the real server over TLS.

use std::io::Write;

use axum::body::{Body, Bytes};
use axum::http::{Request, StatusCode};
use chrono::{DateTime, Utc};
use http_body_util::BodyExt;
use patchctl_proto::agent::{
    DiskUsage, EnrollRequest, EnrollResponse, InstalledPackage, InventoryUpload, SystemInfo,
};
use patchctl_proto::command::{Advisory, AvailableUpdate};
use patchctl_proto::scan::{PackageKey, PackageRow, ScanBody, ScanState, ScanUpdates, ScanUpload};
use patchctl_proto::{MAX_AGENT_BODY_BYTES, PROTOCOL_VERSION, Secret};
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
        metrics_history_len: 10,
        enroll_per_address_per_min: 1_000,
        enroll_per_key_per_min: 1_000,
        vuln_sync: false,
        ..Settings::with_defaults("127.0.0.1:0".parse().unwrap(), url, "unused", "unused")
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
        format!("/api/v1/hosts/{hid}/updates"),
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
    // A revoked host's credential stops working, and the answer says it was revoked.
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
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    assert_eq!(v["code"], "credential_revoked", "{v}");
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

#[tokio::test]
async fn all_security_updates_are_resolved_into_exact_pairs_before_queueing() {
    let e = env().await;
    let org = e.org("a").await;
    let host = e.enroll(&org.enrollment_key, "web-1").await;
    let tok = Some(org.token.expose());
    let body =
        json!({"host": "web-1", "kind": "install_updates", "params": {"security_updates": "true"}})
            .to_string();
    // No scan yet: nothing to resolve, said clearly.
    let (st, v) = e.call("POST", "/api/v1/commands", tok, Some(&body)).await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("not reported available updates"),
        "{v}"
    );
    // State A has one security update (openssl) and one other (curl).
    e.full_scan(&host.credential, at(10), &state_a()).await;
    let (st, v) = e.call("POST", "/api/v1/commands", tok, Some(&body)).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(
        v["params"],
        json!({"packages": [{"name": "openssl", "version": "3.0.15-1"}]}),
        "{v}"
    );
    // State B has no security update left.
    let b = state_b();
    e.full_scan(&host.credential, at(20), &b).await;
    let (st, v) = e.call("POST", "/api/v1/commands", tok, Some(&body)).await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("no security updates"),
        "{v}"
    );
    // Mixed with explicit pairs it is not a shortcut: the whitelist refuses it.
    let mixed = json!({"host": "web-1", "kind": "install_updates",
        "params": {"security_updates": true, "packages": []}})
    .to_string();
    let (st, _) = e.call("POST", "/api/v1/commands", tok, Some(&mixed)).await;
    assert!(st.is_client_error());
}

/// Starts the real TLS server on 127.0.0.1:0 with a development PKI.
async fn tls_server() -> (tempfile::TempDir, std::net::SocketAddr, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let (addr, ca) = tls_server_in(dir.path()).await;
    (dir, addr, ca)
}

/// Starts the real TLS server on 127.0.0.1:0 with a development PKI and the database
/// `db.sqlite`, both in `dir`; returns its address and CA certificate.
async fn tls_server_in(dir: &std::path::Path) -> (std::net::SocketAddr, std::path::PathBuf) {
    let pki =
        patchctl_net::ensure_dev_pki(&dir.join("pki"), &["localhost".into(), "127.0.0.1".into()])
            .unwrap();
    let settings = Settings {
        metrics_history_len: 10,
        enroll_per_address_per_min: 1_000,
        enroll_per_key_per_min: 1_000,
        vuln_sync: false,
        ..Settings::with_defaults(
            "127.0.0.1:0".parse().unwrap(),
            format!("sqlite://{}", dir.join("db.sqlite").display()),
            pki.server_cert.clone(),
            pki.server_key.clone(),
        )
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
    (addr, pki.ca_cert)
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

// ---------------------------------------------------------------------------------
// Scans.

/// A time `secs` seconds after a fixed epoch (whole milliseconds, as stored).
fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(1_767_225_600_000 + secs * 1000).unwrap()
}

/// A time as the API shows it.
fn time_of(v: &Value) -> Option<DateTime<Utc>> {
    v.as_str().map(|s| s.parse().unwrap())
}

fn row(name: &str, version: &str) -> PackageRow {
    PackageRow::from_package(&InstalledPackage {
        name: name.into(),
        version: version.into(),
        arch: "amd64".into(),
        source_name: Some(format!("{name}-src")),
        source_version: None,
        status: "installed".into(),
    })
}

fn available(name: &str, from: &str, to: &str, security: bool) -> AvailableUpdate {
    AvailableUpdate {
        name: name.into(),
        arch: "amd64".into(),
        current_version: Some(from.into()),
        candidate_version: to.into(),
        origins: vec![if security {
            "Debian-Security:12/stable-security".into()
        } else {
            "Debian:12.8/stable".into()
        }],
        security,
        advisories: security
            .then(|| Advisory {
                id: format!("DSA-{name}"),
                kind: Some("security".into()),
                severity: None,
            })
            .into_iter()
            .collect(),
    }
}

/// A canonical scan state of `hostname`.
fn scan_state(
    hostname: &str,
    packages: &[(&str, &str)],
    updates: Option<Vec<AvailableUpdate>>,
) -> ScanState {
    let mut s = ScanState {
        system: SystemInfo {
            hostname: hostname.into(),
            kernel: "6.1.0-28-amd64".into(),
            disks: vec![DiskUsage {
                mount: "/".into(),
                fs_type: "ext4".into(),
                used_bytes: 1 << 30,
                total_bytes: 10 << 30,
            }],
            ..Default::default()
        },
        package_manager: Some("dpkg".into()),
        packages: packages.iter().map(|(n, v)| row(n, v)).collect(),
        updates: updates.map(|updates| ScanUpdates {
            refreshed: true,
            updates,
            removals: vec![],
            error: None,
        }),
    };
    s.canonicalize();
    s
}

/// State A: three packages, two updates (one security).
fn state_a() -> ScanState {
    scan_state(
        "web-1",
        &[
            ("bash", "5.2-1"),
            ("openssl", "3.0.14-1"),
            ("curl", "7.88-1"),
        ],
        Some(vec![
            available("openssl", "3.0.14-1", "3.0.15-1", true),
            available("curl", "7.88-1", "7.88-2", false),
        ]),
    )
}

/// State B, A a scan later: openssl upgraded, zsh installed, curl's update left.
fn state_b() -> ScanState {
    scan_state(
        "web-1",
        &[
            ("bash", "5.2-1"),
            ("openssl", "3.0.15-1"),
            ("curl", "7.88-1"),
            ("zsh", "5.9-4"),
        ],
        Some(vec![available("curl", "7.88-1", "7.88-2", false)]),
    )
}

/// `state`'s packages as the operator API lists them.
fn packages_json(state: &ScanState) -> Value {
    serde_json::to_value(
        state
            .packages
            .iter()
            .map(PackageRow::to_package)
            .collect::<Vec<_>>(),
    )
    .unwrap()
}

impl Env {
    /// Uploads a scan taken at `scanned_at` announcing `digest`.
    async fn scan(
        &self,
        credential: &Secret,
        scanned_at: DateTime<Utc>,
        digest: &str,
        body: ScanBody,
    ) -> (StatusCode, Value) {
        let upload = ScanUpload {
            scanned_at,
            digest: digest.to_owned(),
            body,
            reboot: None,
        };
        self.call(
            "POST",
            "/api/v1/agent/scan",
            Some(credential.expose()),
            Some(&serde_json::to_string(&upload).unwrap()),
        )
        .await
    }

    /// Uploads `state` whole.
    async fn full_scan(&self, credential: &Secret, scanned_at: DateTime<Utc>, state: &ScanState) {
        let (st, v) = self
            .scan(
                credential,
                scanned_at,
                &state.digest(),
                ScanBody::Full {
                    state: state.clone(),
                },
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        assert_eq!(
            v,
            json!({"status": "stored", "packages": state.packages.len()})
        );
    }

    /// What an operator sees of a host: its detail, packages and updates.
    async fn seen(&self, token: &Secret, host: &str) -> (Value, Value, Value) {
        let mut out = Vec::new();
        for path in ["", "/packages", "/updates"] {
            let (st, v) = self
                .call(
                    "GET",
                    &format!("/api/v1/hosts/{host}{path}"),
                    Some(token.expose()),
                    None,
                )
                .await;
            assert_eq!(st, StatusCode::OK, "{path}: {v}");
            let mut v = v;
            // derived by the CVE engine, not stored: absent while it loads
            if let Some(o) = v.as_object_mut() {
                o.remove("vulnerability_data");
            }
            out.push(v);
        }
        let updates = out.pop().unwrap();
        let packages = out.pop().unwrap();
        (out.pop().unwrap(), packages, updates)
    }
}

#[tokio::test]
async fn a_full_scan_is_stored_and_unchanged_moves_only_the_scan_time() {
    let e = env().await;
    let org = e.org("a").await;
    let host = e.enroll(&org.enrollment_key, "web-1").await;
    let hid = host.host_id.to_string();
    let a = state_a();
    e.full_scan(&host.credential, at(10), &a).await;

    let (detail, packages, updates) = e.seen(&org.token, &hid).await;
    assert_eq!(time_of(&detail["inventory_scanned_at"]), Some(at(10)));
    assert_eq!(
        (
            &detail["packages"],
            &detail["updates"],
            &detail["security_updates"]
        ),
        (&json!(3), &json!(2), &json!(1))
    );
    assert_eq!(packages["packages"], packages_json(&a));
    assert_eq!(time_of(&updates["scanned_at"]), Some(at(10)));
    assert_eq!(
        updates["updates"],
        serde_json::to_value(&a.updates.as_ref().unwrap().updates).unwrap()
    );
    assert_eq!(
        (&updates["update_count"], &updates["security_update_count"]),
        (&json!(2), &json!(1))
    );
    let (_, list) = e
        .call("GET", "/api/v1/hosts", Some(org.token.expose()), None)
        .await;
    assert_eq!(
        (&list[0]["updates"], &list[0]["security_updates"]),
        (&json!(2), &json!(1))
    );

    // The same state again: only the scan times move.
    let (st, v) = e
        .scan(&host.credential, at(20), &a.digest(), ScanBody::Unchanged)
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v, json!({"status": "unchanged", "packages": 3}));
    let (detail2, packages2, updates2) = e.seen(&org.token, &hid).await;
    assert_eq!(time_of(&detail2["inventory_scanned_at"]), Some(at(20)));
    assert_eq!(time_of(&updates2["scanned_at"]), Some(at(20)));
    assert_eq!(packages2["packages"], packages["packages"]);
    assert_eq!(updates2["updates"], updates["updates"]);
    let strip = |mut v: Value, field: &str| {
        v[field] = Value::Null;
        v
    };
    assert_eq!(
        strip(detail2.clone(), "inventory_scanned_at"),
        strip(detail, "inventory_scanned_at")
    );

    // "Unchanged" against a state the platform does not hold records nothing.
    let (st, v) = e
        .scan(
            &host.credential,
            at(30),
            &"0".repeat(64),
            ScanBody::Unchanged,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "need_full");
    assert_eq!(v["packages"], 0);
    assert!(
        v["detail"].as_str().unwrap().contains("no scan state"),
        "{v}"
    );
    assert_eq!(e.seen(&org.token, &hid).await.0, detail2);
}

#[tokio::test]
async fn a_full_scan_that_does_not_verify_is_refused() {
    let e = env().await;
    let org = e.org("a").await;
    let host = e.enroll(&org.enrollment_key, "web-1").await;
    let hid = host.host_id.to_string();
    let before = e.seen(&org.token, &hid).await;
    let a = state_a();
    let (st, v) = e
        .scan(
            &host.credential,
            at(10),
            &state_b().digest(),
            ScanBody::Full { state: a.clone() },
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("digest mismatch"),
        "{v}"
    );

    // A row not in its compact form could not be given back with this digest.
    let mut odd = a.clone();
    odd.packages[0].5 = "installed".into();
    let (st, v) = e
        .scan(
            &host.credential,
            at(10),
            &odd.digest(),
            ScanBody::Full { state: odd },
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert!(v["error"].as_str().unwrap().contains("compact form"), "{v}");
    assert_eq!(e.seen(&org.token, &hid).await, before, "nothing stored");
    assert_eq!(before.2["scanned_at"], Value::Null);
}

#[tokio::test]
async fn a_delta_is_applied_and_visible_to_operators() {
    let e = env().await;
    let org = e.org("a").await;
    let host = e.enroll(&org.enrollment_key, "web-1").await;
    let hid = host.host_id.to_string();
    let (a, b) = (state_a(), state_b());
    e.full_scan(&host.credential, at(10), &a).await;

    let delta = b.delta_from(&a, &a.digest()).expect("a delta");
    let (st, v) = e.scan(&host.credential, at(20), &b.digest(), delta).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v, json!({"status": "stored", "packages": 4}));
    let (detail, packages, updates) = e.seen(&org.token, &hid).await;
    assert_eq!(packages["packages"], packages_json(&b));
    assert_eq!(
        updates["updates"],
        serde_json::to_value(&b.updates.as_ref().unwrap().updates).unwrap()
    );
    assert_eq!(time_of(&updates["scanned_at"]), Some(at(20)));
    assert_eq!(time_of(&detail["inventory_scanned_at"]), Some(at(20)));
    assert_eq!(
        (
            &detail["packages"],
            &detail["updates"],
            &detail["security_updates"]
        ),
        (&json!(4), &json!(1), &json!(0))
    );

    // A delta on the delta's result: the updates are gone (`null`), the system changed.
    let mut c = scan_state(
        "web-1-renamed",
        &[("bash", "5.2-1"), ("zsh", "5.9-4")],
        None,
    );
    c.system.kernel = "6.1.0-29-amd64".into();
    c.canonicalize();
    let delta = c.delta_from(&b, &b.digest()).expect("a delta");
    let ScanBody::Delta {
        updates, system, ..
    } = &delta
    else {
        panic!("{delta:?}")
    };
    assert_eq!((updates, system.is_some()), (&Some(None), true));
    let (st, v) = e.scan(&host.credential, at(30), &c.digest(), delta).await;
    assert_eq!(
        (st, &v["status"]),
        (StatusCode::OK, &json!("stored")),
        "{v}"
    );
    let (detail, packages, updates) = e.seen(&org.token, &hid).await;
    assert_eq!(detail["hostname"], "web-1-renamed");
    assert_eq!(detail["system"]["kernel"], "6.1.0-29-amd64");
    assert_eq!(packages["packages"], packages_json(&c));
    assert_eq!(
        (
            &updates["scanned_at"],
            &updates["updates"],
            &updates["update_count"]
        ),
        (&Value::Null, &json!([]), &json!(0))
    );
}

#[tokio::test]
async fn a_delta_against_another_base_needs_the_full_state_and_changes_nothing() {
    let e = env().await;
    let org = e.org("a").await;
    let host = e.enroll(&org.enrollment_key, "web-1").await;
    let hid = host.host_id.to_string();
    let (a, b) = (state_a(), state_b());

    // Nothing stored yet.
    let delta = b.delta_from(&a, &a.digest()).unwrap();
    let (st, v) = e
        .scan(&host.credential, at(5), &b.digest(), delta.clone())
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "need_full");
    assert!(
        v["detail"].as_str().unwrap().contains("no scan state"),
        "{v}"
    );

    // A stored, but the delta is against another state.
    e.full_scan(&host.credential, at(10), &a).await;
    let before = e.seen(&org.token, &hid).await;
    let other = scan_state("web-1", &[("bash", "5.2-1")], None);
    let delta = b.delta_from(&other, &other.digest()).unwrap();
    let (st, v) = e.scan(&host.credential, at(20), &b.digest(), delta).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "need_full");
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .contains("is not the stored state"),
        "{v}"
    );
    assert_eq!(e.seen(&org.token, &hid).await, before, "nothing changed");

    // A v1 inventory upload leaves no known digest: the next delta needs the full state.
    let inventory = InventoryUpload {
        scanned_at: at(30),
        system: a.system.clone(),
        package_manager: Some("dpkg".into()),
        packages: a.packages.iter().map(PackageRow::to_package).collect(),
    };
    let (st, v) = e
        .call(
            "POST",
            "/api/v1/agent/inventory",
            Some(host.credential.expose()),
            Some(&serde_json::to_string(&inventory).unwrap()),
        )
        .await;
    assert_eq!((st, v), (StatusCode::OK, json!({"packages": 3})));
    let delta = b.delta_from(&a, &a.digest()).unwrap();
    let (_, v) = e.scan(&host.credential, at(40), &b.digest(), delta).await;
    assert_eq!(v["status"], "need_full", "{v}");
    let (_, v) = e
        .scan(&host.credential, at(40), &a.digest(), ScanBody::Unchanged)
        .await;
    assert_eq!(v["status"], "need_full", "{v}");
}

#[tokio::test]
async fn a_delta_whose_result_does_not_verify_needs_the_full_state_and_changes_nothing() {
    let e = env().await;
    let org = e.org("a").await;
    let host = e.enroll(&org.enrollment_key, "web-1").await;
    let hid = host.host_id.to_string();
    let (a, b) = (state_a(), state_b());
    e.full_scan(&host.credential, at(10), &a).await;
    let before = e.seen(&org.token, &hid).await;

    // The right base, but the result is not the announced state (a change was lost).
    let Some(ScanBody::Delta {
        base,
        system,
        mut added,
        removed,
        updates,
    }) = b.delta_from(&a, &a.digest())
    else {
        panic!("expected a delta")
    };
    added.retain(|r| r.0 != "zsh");
    let lossy = ScanBody::Delta {
        base: base.clone(),
        system: system.clone(),
        added,
        removed: removed.clone(),
        updates: updates.clone(),
    };
    let (st, v) = e.scan(&host.credential, at(20), &b.digest(), lossy).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "need_full");
    assert!(
        v["detail"].as_str().unwrap().contains("gives digest"),
        "{v}"
    );

    // A delta that removes a package the platform does not hold.
    let mut removed = removed;
    removed.push(PackageKey("nano".into(), "amd64".into(), "7.2-1".into()));
    let bogus = ScanBody::Delta {
        base,
        system,
        added: vec![row("zsh", "5.9-4")],
        removed,
        updates,
    };
    let (_, v) = e.scan(&host.credential, at(20), &b.digest(), bogus).await;
    assert_eq!(v["status"], "need_full", "{v}");
    assert!(v["detail"].as_str().unwrap().contains("nano"), "{v}");

    assert_eq!(e.seen(&org.token, &hid).await, before, "nothing changed");
}

#[tokio::test]
async fn host_updates_are_confined_to_the_organisation() {
    let e = env().await;
    let a = e.org("a").await;
    let b = e.org("b").await;
    let ha = e.enroll(&a.enrollment_key, "web-1").await;
    let hb = e.enroll(&b.enrollment_key, "web-1").await;
    e.full_scan(&ha.credential, at(10), &state_a()).await;
    let ida = ha.host_id.to_string();
    for path in [
        format!("/api/v1/hosts/{ida}/updates"),
        format!("/api/v1/hosts/{}/updates", uuid::Uuid::new_v4()),
        "/api/v1/hosts/nope/updates".to_owned(),
    ] {
        let (st, v) = e.call("GET", &path, Some(b.token.expose()), None).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{path}: {v}");
        assert!(v["error"].as_str().unwrap().contains("no host"), "{v}");
    }
    // By name, each organisation sees its own host only.
    let (st, v) = e
        .call(
            "GET",
            "/api/v1/hosts/web-1/updates",
            Some(b.token.expose()),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["host_id"], hb.host_id.to_string());
    assert_eq!(
        (&v["scanned_at"], &v["updates"]),
        (&Value::Null, &json!([]))
    );
    let (st, v) = e
        .call(
            "GET",
            "/api/v1/hosts/web-1/updates",
            Some(a.token.expose()),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(
        (&v["host_id"], &v["update_count"]),
        (&json!(ida), &json!(2))
    );
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// One HTTP/1.1 request over TLS to the real server; the status and the JSON body.
async fn https(
    addr: std::net::SocketAddr,
    ca: &std::path::Path,
    path: &str,
    bearer: Option<&str>,
    content_encoding: Option<&str>,
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let tls = patchctl_net::client_config(Some(ca)).unwrap();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let stream = tokio_rustls::TlsConnector::from(tls)
        .connect(name, tcp)
        .await
        .unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let mut req = Request::builder()
        .method("POST")
        .uri(path)
        .header("host", "localhost")
        .header("content-type", "application/json");
    if let Some(b) = bearer {
        req = req.header("authorization", format!("Bearer {b}"));
    }
    if let Some(enc) = content_encoding {
        req = req.header("content-encoding", enc);
    }
    let req = req
        .body(http_body_util::Full::new(Bytes::from(body)))
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let v = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
        panic!(
            "{path}: body is not JSON: {}",
            String::from_utf8_lossy(&bytes)
        )
    });
    (status, v)
}

#[tokio::test(flavor = "multi_thread")]
async fn gzip_scans_are_accepted_and_a_gzip_bomb_gets_413() {
    let dir = tempfile::tempdir().unwrap();
    // The organisation exists (and the database is migrated) before the server starts.
    let store = patchctl_storage::open(&format!(
        "sqlite://{}",
        dir.path().join("db.sqlite").display()
    ))
    .await
    .unwrap();
    let org = create_org(store.as_ref(), "a").await.unwrap();
    let (addr, ca) = tls_server_in(dir.path()).await;
    let enroll = EnrollRequest {
        protocol_version: PROTOCOL_VERSION,
        license_key: org.enrollment_key.clone(),
        agent_version: "test".into(),
        system: SystemInfo {
            hostname: "web-1".into(),
            ..Default::default()
        },
    };
    // The listener is bound already: the handshake waits until the server accepts.
    let (st, v) = https(
        addr,
        &ca,
        "/api/v1/agent/enroll",
        None,
        None,
        serde_json::to_vec(&enroll).unwrap(),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let host: EnrollResponse = serde_json::from_value(v).unwrap();
    let cred = host.credential.expose();

    // A full state, gzip-compressed as the agent sends it.
    let a = state_a();
    let upload = ScanUpload {
        scanned_at: at(10),
        digest: a.digest(),
        body: ScanBody::Full { state: a.clone() },
        reboot: None,
    };
    let (st, v) = https(
        addr,
        &ca,
        "/api/v1/agent/scan",
        Some(cred),
        Some("gzip"),
        gzip(&serde_json::to_vec(&upload).unwrap()),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v, json!({"status": "stored", "packages": 3}));
    assert_eq!(
        store
            .scan_state(host.host_id)
            .await
            .unwrap()
            .map(|x| x.digest),
        Some(a.digest())
    );

    // A small body that inflates past the limit is cut off at the limit: 413.
    let huge = format!(
        "{{\"scanned_at\": \"2026-01-01T00:00:00Z\", \"digest\": \"{}\", \"body\": {{\"kind\": \"unchanged\"}}}}",
        "0".repeat(MAX_AGENT_BODY_BYTES + (1 << 20))
    );
    let bomb = gzip(huge.as_bytes());
    drop(huge);
    assert!(bomb.len() < 64 * 1024, "{} bytes", bomb.len());
    let (st, v) = https(
        addr,
        &ca,
        "/api/v1/agent/scan",
        Some(cred),
        Some("gzip"),
        bomb,
    )
    .await;
    assert_eq!(st, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    assert!(v["error"].as_str().unwrap().contains("too large"), "{v}");

    // An encoding the platform does not decode is refused with a JSON error.
    let (st, v) = https(
        addr,
        &ca,
        "/api/v1/agent/scan",
        Some(cred),
        Some("br"),
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(st, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{v}");
    assert!(v["error"].as_str().unwrap().contains("gzip"), "{v}");

    // A body that is not gzip at all is a client error, and the server keeps serving.
    let (st, v) = https(
        addr,
        &ca,
        "/api/v1/agent/scan",
        Some(cred),
        Some("gzip"),
        b"{\"not\": \"gzip\"}".to_vec(),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    let unchanged = ScanUpload {
        scanned_at: at(20),
        digest: a.digest(),
        body: ScanBody::Unchanged,
        reboot: None,
    };
    let (st, v) = https(
        addr,
        &ca,
        "/api/v1/agent/scan",
        Some(cred),
        None,
        serde_json::to_vec(&unchanged).unwrap(),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v, json!({"status": "unchanged", "packages": 3}));
}

// ---------------------------------------------------------------------------------
// CVE correlation views.

fn vuln_record(id: &str, package: &str, status: patchctl_vuln::Status) -> patchctl_vuln::Record {
    patchctl_vuln::Record {
        id: id.into(),
        aliases: vec![],
        summary: format!("{package} issue"),
        severity: Some("high".into()),
        cvss_vector: Some("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H".into()),
        published: None,
        modified: None,
        withdrawn: false,
        exploited: None,
        affected: vec![patchctl_vuln::Affected {
            ecosystem: "Debian:12".into(),
            package: package.into(),
            introduced: None,
            last_affected: None,
            status,
            note: None,
            severity: None,
        }],
    }
}

fn fixed(v: &str) -> patchctl_vuln::Status {
    patchctl_vuln::Status::Fixed {
        fixed_version: v.into(),
    }
}

/// A Debian 12 host state with openssh (source openssh) and bsdutils (source
/// util-linux, epoch on the binary only).
fn debian_state(openssh: &str, updates: Vec<AvailableUpdate>) -> ScanState {
    let pkg = |name: &str, version: &str, src: &str, src_version: &str| {
        PackageRow::from_package(&InstalledPackage {
            name: name.into(),
            version: version.into(),
            arch: "amd64".into(),
            source_name: Some(src.into()),
            source_version: Some(src_version.into()),
            status: "installed".into(),
        })
    };
    let mut s = ScanState {
        system: SystemInfo {
            hostname: "deb-1".into(),
            kernel: "6.1.0-28-amd64".into(),
            os: patchctl_proto::agent::OsInfo {
                id: "debian".into(),
                version_id: "12".into(),
                version_codename: "bookworm".into(),
                pretty_name: "Debian GNU/Linux 12 (bookworm)".into(),
                ..Default::default()
            },
            ..Default::default()
        },
        package_manager: Some("dpkg".into()),
        packages: vec![
            pkg("openssh-server", openssh, "openssh", openssh),
            pkg(
                "bsdutils",
                "1:2.38.1-5+deb12u1",
                "util-linux",
                "2.38.1-5+deb12u1",
            ),
        ],
        updates: Some(ScanUpdates {
            refreshed: true,
            updates,
            removals: vec![],
            error: None,
        }),
    };
    s.canonicalize();
    s
}

impl Env {
    /// GETs `path` until `ok` holds for the answer (the engine loads and re-correlates
    /// in the background), at most 10 s.
    async fn get_until(&self, token: &Secret, path: &str, ok: impl Fn(&Value) -> bool) -> Value {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let (st, v) = self.call("GET", path, Some(token.expose()), None).await;
            if st == StatusCode::OK && ok(&v) {
                return v;
            }
            assert!(std::time::Instant::now() < deadline, "{path}: {st} {v}");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

fn advisories_of(v: &Value) -> Vec<String> {
    let mut ids: Vec<String> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["advisory"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn findings_follow_scans_and_database_changes_incrementally() {
    let e = env().await;
    let org = e.org("a").await;
    let host = e.enroll(&org.enrollment_key, "deb-1").await;
    let store = e.state.store.clone();
    store
        .import_vuln_records(
            "test",
            &[
                vuln_record("CVE-2024-6387", "openssh", fixed("1:9.2p1-2+deb12u3")),
                vuln_record("CVE-2024-28085", "util-linux", fixed("2.38.1-5+deb12u2")),
                vuln_record(
                    "CVE-2016-2781",
                    "coreutils",
                    patchctl_vuln::Status::WillNotFix,
                ),
            ],
            Utc::now(),
        )
        .await
        .unwrap();
    let update = AvailableUpdate {
        security: false,
        origins: vec!["Debian:12.9/stable".into()],
        advisories: vec![],
        ..available(
            "openssh-server",
            "1:9.2p1-2+deb12u2",
            "1:9.2p1-2+deb12u3",
            false,
        )
    };
    let state = debian_state("1:9.2p1-2+deb12u2", vec![update]);
    e.full_scan(&host.credential, Utc::now(), &state).await;

    let path = format!("/api/v1/hosts/{}/vulns", host.host_id);
    let v = e
        .get_until(&org.token, &path, |v| {
            v["findings"].as_array().is_some_and(|f| f.len() == 2)
        })
        .await;
    assert_eq!(advisories_of(&v), ["CVE-2024-28085", "CVE-2024-6387"]);
    assert_eq!(v["ecosystems"], json!(["Debian:12"]));
    assert_eq!(v["vulnerable"], 2);
    let ssh = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["advisory"] == "CVE-2024-6387")
        .unwrap();
    assert_eq!(ssh["fixed_version"], "1:9.2p1-2+deb12u3");
    assert_eq!(ssh["binaries"], json!(["openssh-server"]));
    assert_eq!(ssh["severity"], "high");
    assert_eq!(ssh["cvss_score"], 9.8);
    assert_eq!(
        ssh["comparison"],
        "installed 1:9.2p1-2+deb12u2 < fixed 1:9.2p1-2+deb12u3 (dpkg)"
    );
    let ul = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["advisory"] == "CVE-2024-28085")
        .unwrap();
    assert_eq!(
        ul["installed_version"], "2.38.1-5+deb12u1",
        "source version, not the binary's epoch"
    );

    // filters
    let (st, v) = e
        .call(
            "GET",
            &format!("{path}?severity=critical"),
            Some(org.token.expose()),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    assert!(v["findings"].as_array().unwrap().is_empty());
    let (st, v) = e
        .call(
            "GET",
            &format!("{path}?status=bogus"),
            Some(org.token.expose()),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(v["error"].as_str().unwrap().contains("will_not_fix"), "{v}");

    // the update that reaches the fix is a security update, with the advisory it fixes
    let (_, u) = e
        .call(
            "GET",
            &format!("/api/v1/hosts/{}/updates", host.host_id),
            Some(org.token.expose()),
            None,
        )
        .await;
    assert_eq!(u["updates"][0]["security"], true, "{u}");
    assert_eq!(u["updates"][0]["advisories"][0]["id"], "CVE-2024-6387");
    assert_eq!(u["security_update_count"], 1);

    // hosts per CVE and the fleet summary
    let v = e
        .get_until(&org.token, "/api/v1/vulns/CVE-2024-6387", |_| true)
        .await;
    assert_eq!(v["hosts"][0]["hostname"], "deb-1");
    let s = e
        .get_until(&org.token, "/api/v1/vulns/summary", |_| true)
        .await;
    assert_eq!(s["vulnerable"], 2);
    assert_eq!(s["by_severity"]["high"], 2);
    // another organisation sees nothing
    let other = e.org("b").await;
    let v = e
        .get_until(&other.token, "/api/v1/vulns/CVE-2024-6387", |_| true)
        .await;
    assert_eq!(v["hosts"], json!([]));

    // the database changes (as `patchctl vulndb import` would): only that key changes
    store
        .import_vuln_records(
            "test",
            &[vuln_record(
                "CVE-2024-28085",
                "util-linux",
                fixed("2.38.1-5+deb12u1"),
            )],
            Utc::now(),
        )
        .await
        .unwrap();
    let v = e
        .get_until(&org.token, &path, |v| {
            v["findings"].as_array().is_some_and(|f| f.len() == 1)
        })
        .await;
    assert_eq!(advisories_of(&v), ["CVE-2024-6387"]);

    // the host installs the fix: its next scan clears the finding
    let fixed_state = debian_state("1:9.2p1-2+deb12u6", vec![]);
    e.full_scan(&host.credential, Utc::now(), &fixed_state)
        .await;
    e.get_until(&org.token, &path, |v| {
        v["findings"].as_array().is_some_and(|f| f.is_empty())
    })
    .await;
}

#[tokio::test]
async fn a_host_of_a_release_without_data_says_so_everywhere_never_zero() {
    let e = env().await;
    let org = e.org("a").await;
    let deb = e.enroll(&org.enrollment_key, "deb-1").await;
    let stream = e.enroll(&org.enrollment_key, "stream-1").await;
    e.state
        .store
        .import_vuln_records(
            "test",
            &[vuln_record(
                "CVE-2024-6387",
                "openssh",
                fixed("1:9.2p1-2+deb12u3"),
            )],
            Utc::now(),
        )
        .await
        .unwrap();
    e.full_scan(
        &deb.credential,
        Utc::now(),
        &debian_state("1:9.2p1-2+deb12u2", vec![]),
    )
    .await;
    // a CentOS Stream 9 host: PatchCTL has no source for it (never Red Hat's data)
    let mut cs = debian_state("1:9.2p1-2+deb12u2", vec![]);
    cs.system.hostname = "stream-1".into();
    cs.system.os = patchctl_proto::agent::OsInfo {
        id: "centos".into(),
        version_id: "9".into(),
        pretty_name: "CentOS Stream 9".into(),
        ..Default::default()
    };
    cs.canonicalize();
    e.full_scan(&stream.credential, Utc::now(), &cs).await;

    let path = format!("/api/v1/hosts/{}/vulns", stream.host_id);
    // The engine takes the scan in the background: wait until it has (the release of
    // the scan, not of the enrollment), then look.
    let v = e
        .get_until(&org.token, &path, |v| {
            v["packages"] == 2 && v["ecosystems"] == json!(["CentOS Stream:9"])
        })
        .await;
    assert_eq!(v["coverage"]["level"], "none", "{v}");
    assert_eq!(
        v["coverage"]["message"],
        "no vulnerability data for CentOS Stream:9 (PatchCTL has no vulnerability source \
         for this distribution; its packages are not checked)"
    );
    assert!(v["findings"].as_array().unwrap().is_empty());
    // the Debian host is covered
    let dv = e
        .get_until(
            &org.token,
            &format!("/api/v1/hosts/{}/vulns", deb.host_id),
            |v| v["vulnerable"] == 1,
        )
        .await;
    assert_eq!(dv["coverage"]["level"], "cve", "{dv}");
    assert_eq!(dv["coverage"]["covered"], json!(["Debian:12"]));

    // the host itself (hosts show / hosts list)
    let h = e
        .get_until(
            &org.token,
            &format!("/api/v1/hosts/{}", stream.host_id),
            |_| true,
        )
        .await;
    assert!(
        h["vulnerability_data"]
            .as_str()
            .unwrap()
            .starts_with("no vulnerability data for CentOS Stream:9"),
        "{h}"
    );
    let list = e.get_until(&org.token, "/api/v1/hosts", |_| true).await;
    let words: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["vulnerability_data"].as_str().unwrap())
        .collect();
    assert!(words.contains(&"full CVE data (Debian:12)"), "{list}");

    // the fleet summary counts it apart: not "not vulnerable"
    let s = e
        .get_until(&org.token, "/api/v1/vulns/summary", |s| s["hosts"] == 2)
        .await;
    assert_eq!(s["vulnerable_hosts"], 1, "{s}");
    assert_eq!(s["hosts_without_data"], 1, "{s}");
    assert_eq!(s["without_data"], json!({"CentOS Stream:9": 1}), "{s}");
}

#[tokio::test]
async fn dev_setup_reuses_its_directory_and_names_a_corrupt_file() {
    use patchctl_server::bootstrap::dev_setup;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("dev");
    let first = dev_setup(&dir, Some("127.0.0.1:0".parse().unwrap()), 5)
        .await
        .unwrap();
    assert!(first.fresh);
    assert_eq!(
        Settings::load_file(&first.info.server_config).unwrap(),
        first.settings
    );
    drop(first.listener);
    let again = dev_setup(&dir, Some("127.0.0.1:0".parse().unwrap()), 5)
        .await
        .unwrap();
    assert!(!again.fresh);
    assert_eq!(again.info.token, first.info.token);
    drop(again.listener);
    std::fs::write(dir.join("dev.json"), b"{").unwrap();
    let e = dev_setup(&dir, Some("127.0.0.1:0".parse().unwrap()), 5)
        .await
        .err()
        .expect("a corrupt dev.json is an error")
        .to_string();
    assert!(
        e.contains("dev.json is corrupt") && e.ends_with("delete the directory to start over"),
        "{e}"
    );
}
