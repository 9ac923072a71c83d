//! Trust on the real platform over TLS 1.3 (loopback, a real SQLite file): revoked,
//! unknown and pending credentials and their codes, approval and rejection, credential
//! rotation, enrollment keys with expiry, maximum uses, revocation and rotation,
//! enrollment rate limits per address and per key, the enrollment body limit, the
//! isolation of organisations, the audit events, and that no secret reaches an error
//! body or the log.
//!
//! Every test runs its own platform (`launch_with_listener` on `127.0.0.1:0`); the
//! whole binary logs into one buffer ([`log_text`]), in which each test looks for its
//! own secrets and audit events.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{Request, StatusCode};
use chrono::Utc;
use http_body_util::BodyExt;
use patchctl_proto::agent::{EnrollRequest, HeartbeatRequest, Metrics, SystemInfo};
use patchctl_proto::{PROTOCOL_VERSION, Secret};
use patchctl_server::Settings;
use patchctl_server::auth::hash_secret;
use patchctl_server::bootstrap::{OrgSecrets, create_org};
use patchctl_storage::Storage;
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------
// The log of the whole test binary.

static LOG: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOG.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs the subscriber that writes every event (debug and up) into [`LOG`].
fn capture_logs() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(|| LogWriter)
            .init();
    });
}

fn log_text() -> String {
    String::from_utf8_lossy(&LOG.lock().unwrap()).into_owned()
}

// ---------------------------------------------------------------------------------
// A platform over TLS.

/// One answer: status, `Retry-After`, JSON body.
#[derive(Debug)]
struct Resp {
    status: StatusCode,
    retry_after: Option<String>,
    body: Value,
}

impl Resp {
    fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }
    fn error(&self) -> &str {
        self.body["error"].as_str().unwrap_or("")
    }
    #[track_caller]
    fn ok(self) -> Value {
        assert!(self.status.is_success(), "{self:?}");
        self.body
    }
}

struct Platform {
    _dir: tempfile::TempDir,
    addr: SocketAddr,
    ca: PathBuf,
    store: Arc<dyn Storage>,
    /// Every secret this test handled, looked for in error bodies and the log.
    secrets: Mutex<Vec<String>>,
    /// Every error body this test received.
    errors: Mutex<Vec<String>>,
}

/// Starts the platform with these enrollment limits (per address, per key, a minute).
async fn platform(per_address: u32, per_key: u32) -> Platform {
    capture_logs();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("db.sqlite").display());
    // Migrated before the server starts; the test writes stored times through it.
    let store = patchctl_storage::open(&url).await.unwrap();
    let pki = patchctl_net::ensure_dev_pki(
        &dir.path().join("pki"),
        &["localhost".into(), "127.0.0.1".into()],
    )
    .unwrap();
    let settings = Settings {
        metrics_history_len: 10,
        enroll_per_address_per_min: per_address,
        enroll_per_key_per_min: per_key,
        vuln_sync: false,
        ..Settings::with_defaults(
            "127.0.0.1:0".parse().unwrap(),
            url,
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
    Platform {
        _dir: dir,
        addr,
        ca: pki.ca_cert,
        store,
        secrets: Mutex::new(Vec::new()),
        errors: Mutex::new(Vec::new()),
    }
}

impl Platform {
    /// One request over a new TLS connection.
    async fn req(
        &self,
        method: &str,
        path: &str,
        bearer: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Resp {
        let tls = patchctl_net::client_config(Some(&self.ca)).unwrap();
        let tcp = tokio::net::TcpStream::connect(self.addr).await.unwrap();
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
            .method(method)
            .uri(path)
            .header("host", "localhost");
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        if let Some(b) = bearer {
            req = req.header("authorization", format!("Bearer {b}"));
        }
        let req = req
            .body(http_body_util::Full::new(Bytes::from(
                body.unwrap_or_default(),
            )))
            .unwrap();
        let resp = sender.send_request(req).await.unwrap();
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned());
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if !status.is_success() {
            self.errors.lock().unwrap().push(text.clone());
        }
        let body = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("{method} {path}: {status}: body is not JSON: {text}"));
        Resp {
            status,
            retry_after,
            body,
        }
    }

    async fn get(&self, path: &str, token: &str) -> Resp {
        self.req("GET", path, Some(token), None).await
    }

    async fn post(&self, path: &str, token: &str, body: Value) -> Resp {
        self.req(
            "POST",
            path,
            Some(token),
            Some(body.to_string().into_bytes()),
        )
        .await
    }

    fn remember(&self, secret: &str) {
        self.secrets.lock().unwrap().push(secret.to_owned());
    }

    async fn org(&self, name: &str) -> OrgSecrets {
        let o = create_org(self.store.as_ref(), name).await.unwrap();
        self.remember(o.token.expose());
        self.remember(o.enrollment_key.expose());
        o
    }

    /// Enrolls `hostname` with `key`; the raw answer.
    async fn try_enroll(&self, key: &str, hostname: &str) -> Resp {
        let req = EnrollRequest {
            protocol_version: PROTOCOL_VERSION,
            license_key: Secret::new(key.to_owned()),
            agent_version: "test".into(),
            system: SystemInfo {
                hostname: hostname.into(),
                ..Default::default()
            },
        };
        let r = self
            .req(
                "POST",
                "/api/v1/agent/enroll",
                None,
                Some(serde_json::to_vec(&req).unwrap()),
            )
            .await;
        if let Some(c) = r.body["credential"].as_str() {
            self.remember(c);
        }
        r
    }

    /// Enrolls `hostname` with `key`: its host id and credential.
    async fn enroll(&self, key: &str, hostname: &str) -> (String, String) {
        let v = self.try_enroll(key, hostname).await.ok();
        (
            v["host_id"].as_str().unwrap().to_owned(),
            v["credential"].as_str().unwrap().to_owned(),
        )
    }

    async fn heartbeat(&self, credential: &str) -> Resp {
        let hb = HeartbeatRequest {
            agent_version: "test".into(),
            metrics: Metrics::default(),
            agent_target: None,
            update_events: Vec::new(),
            trial: false,
            reboot: None,
            booted_at: None,
            command_key_id: None,
            approvers_serial: None,
        };
        self.req(
            "POST",
            "/api/v1/agent/heartbeat",
            Some(credential),
            Some(serde_json::to_vec(&hb).unwrap()),
        )
        .await
    }

    async fn whoami(&self, credential: &str) -> Resp {
        self.get("/api/v1/agent/whoami", credential).await
    }

    /// Creates a key through the API: its id and the key.
    async fn create_key(&self, token: &str, body: Value) -> (String, String) {
        let r = self.post("/api/v1/enrollment-keys", token, body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
        let key = r.body["key"].as_str().unwrap().to_owned();
        self.remember(&key);
        (r.body["info"]["id"].as_str().unwrap().to_owned(), key)
    }

    async fn key_info(&self, token: &str, id: &str) -> Value {
        let keys = self.get("/api/v1/enrollment-keys", token).await.ok();
        keys.as_array()
            .unwrap()
            .iter()
            .find(|k| k["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("key {id} not listed: {keys}"))
    }

    /// No secret of this test in any error body it received or in the log; every error
    /// body says something.
    fn assert_no_secret_leaked(&self) {
        let log = log_text();
        let errors = self.errors.lock().unwrap();
        let secrets = self.secrets.lock().unwrap();
        assert!(!secrets.is_empty());
        for s in secrets.iter() {
            // The part after the prefix: a secret cut or re-prefixed is still found.
            let core = &s[4..];
            assert!(!log.contains(core), "a secret is in the log");
            for e in errors.iter() {
                assert!(!e.contains(core), "a secret is in an error body: {e}");
            }
        }
        for e in errors.iter() {
            let v: Value = serde_json::from_str(e).unwrap();
            assert!(v["error"].as_str().is_some_and(|m| m.len() > 10), "{e}");
        }
    }
}

/// The audit events of the log that name `id`.
fn audit_lines(id: &str) -> Vec<String> {
    log_text()
        .lines()
        .filter(|l| l.contains(" audit: ") && l.contains(id))
        .map(str::to_owned)
        .collect()
}

#[track_caller]
fn assert_audited(event: &str, id: &str, actor: &str) {
    let lines = audit_lines(id);
    assert!(
        lines
            .iter()
            .any(|l| l.contains(&format!("event=\"{event}\""))
                || l.contains(&format!("event={event}")))
            && lines.iter().any(|l| l.contains(actor)),
        "no audit event {event} for {id} by {actor}: {lines:#?}"
    );
}

fn dir_of(p: &Path) -> &Path {
    p.parent().unwrap()
}

// ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn revoked_and_unknown_credentials_get_their_codes() {
    let p = platform(1_000, 1_000).await;
    let a = p.org("a").await;
    let tok = a.token.expose();
    let (host, cred) = p.enroll(a.enrollment_key.expose(), "web-1").await;
    assert_eq!(p.heartbeat(&cred).await.status, StatusCode::OK);
    // Cached now: the revocation must still hold at once.
    assert_eq!(p.heartbeat(&cred).await.status, StatusCode::OK);

    let unknown = p
        .heartbeat("pca_0000000000000000000000000000000000000000")
        .await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED, "{unknown:?}");
    assert_eq!(unknown.code(), "credential_unknown");
    let missing = p.req("GET", "/api/v1/agent/whoami", None, None).await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);

    let r = p
        .post(&format!("/api/v1/hosts/{host}/revoke"), tok, json!(null))
        .await;
    assert_eq!(r.ok()["status"], "revoked");
    for r in [
        p.heartbeat(&cred).await,
        p.whoami(&cred).await,
        p.req("POST", "/api/v1/agent/credential", Some(&cred), None)
            .await,
    ] {
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{r:?}");
        assert_eq!(r.code(), "credential_revoked");
        assert!(r.error().contains("patchctl-agent reenroll"), "{r:?}");
        assert!(r.error().contains("operator"), "{r:?}");
    }
    let shown = p.get(&format!("/api/v1/hosts/{host}"), tok).await.ok();
    assert_eq!(shown["status"], "revoked");
    assert_audited("host.revoked", &host, "organisation token ");
    p.assert_no_secret_leaked();
}

#[tokio::test(flavor = "multi_thread")]
async fn pending_hosts_wait_until_approved_and_rejected_ones_are_revoked() {
    let p = platform(1_000, 1_000).await;
    let a = p.org("a").await;
    let tok = a.token.expose();
    assert_eq!(
        p.get("/api/v1/settings", tok).await.ok(),
        json!({"require_approval": false})
    );
    let r = p
        .req(
            "PUT",
            "/api/v1/settings",
            Some(tok),
            Some(br#"{"require_approval": true}"#.to_vec()),
        )
        .await;
    assert_eq!(r.ok(), json!({"require_approval": true}));
    let typo = p
        .req(
            "PUT",
            "/api/v1/settings",
            Some(tok),
            Some(br#"{"require-approval": false}"#.to_vec()),
        )
        .await;
    assert_eq!(typo.status, StatusCode::BAD_REQUEST);
    assert!(typo.error().contains("require_approval"), "{typo:?}");
    assert_eq!(
        p.get("/api/v1/settings", tok).await.ok()["require_approval"],
        true
    );

    let (h1, c1) = p.enroll(a.enrollment_key.expose(), "wait-1").await;
    let (h2, c2) = p.enroll(a.enrollment_key.expose(), "wait-2").await;
    // Pending: 403 everywhere but whoami.
    let hb = p.heartbeat(&c1).await;
    assert_eq!(hb.status, StatusCode::FORBIDDEN, "{hb:?}");
    assert_eq!(hb.code(), "pending_approval");
    assert!(hb.error().contains("whoami"), "{hb:?}");
    let rot = p
        .req("POST", "/api/v1/agent/credential", Some(&c1), None)
        .await;
    assert_eq!(
        (rot.status, rot.code()),
        (StatusCode::FORBIDDEN, "pending_approval")
    );
    let scan = p
        .req(
            "POST",
            "/api/v1/agent/results",
            Some(&c1),
            Some(br#"{"results": []}"#.to_vec()),
        )
        .await;
    assert_eq!(
        (scan.status, scan.code()),
        (StatusCode::FORBIDDEN, "pending_approval")
    );
    let me = p.whoami(&c1).await.ok();
    assert_eq!(me["host_id"], h1.as_str());
    assert_eq!(me["hostname"], "wait-1");
    assert_eq!(me["approval"], "pending");
    assert!(me["server_time"].is_string() && me["credential_issued_at"].is_string());

    let pending = p.get("/api/v1/hosts?status=pending", tok).await.ok();
    let ids: Vec<&str> = pending
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2, "{pending}");
    assert!(ids.contains(&h1.as_str()) && ids.contains(&h2.as_str()));
    assert!(
        pending
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["status"] == "pending")
    );
    let bad = p.get("/api/v1/hosts?status=waiting", tok).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);

    // No commands for a pending host.
    let q = p
        .post(
            "/api/v1/commands",
            tok,
            json!({"host": h1, "kind": "health_check"}),
        )
        .await;
    assert_eq!(q.status, StatusCode::CONFLICT, "{q:?}");
    assert!(q.error().contains("waiting for approval"), "{q:?}");

    // Approve one: it works at once.
    let r = p
        .post(&format!("/api/v1/hosts/{h1}/approve"), tok, json!(null))
        .await;
    assert_eq!(r.ok()["status"], "offline");
    assert_eq!(p.heartbeat(&c1).await.status, StatusCode::OK);
    assert_eq!(p.whoami(&c1).await.ok()["approval"], "approved");
    let again = p
        .post(&format!("/api/v1/hosts/{h1}/approve"), tok, json!(null))
        .await;
    assert_eq!(again.status, StatusCode::OK, "approving twice is harmless");
    let q = p
        .post(
            "/api/v1/commands",
            tok,
            json!({"host": h1, "kind": "health_check"}),
        )
        .await;
    assert_eq!(q.status, StatusCode::CREATED, "{q:?}");
    let rej = p
        .post(&format!("/api/v1/hosts/{h1}/reject"), tok, json!(null))
        .await;
    assert_eq!(rej.status, StatusCode::CONFLICT, "{rej:?}");
    assert!(rej.error().contains("revoke"), "{rej:?}");

    // Reject the other: revoked for good.
    let r = p
        .post(&format!("/api/v1/hosts/{h2}/reject"), tok, json!(null))
        .await;
    assert_eq!(r.ok()["status"], "revoked");
    for r in [p.heartbeat(&c2).await, p.whoami(&c2).await] {
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::FORBIDDEN, "credential_revoked"),
            "{r:?}"
        );
    }
    let back = p
        .post(&format!("/api/v1/hosts/{h2}/approve"), tok, json!(null))
        .await;
    assert_eq!(back.status, StatusCode::CONFLICT, "{back:?}");
    assert!(back.error().contains("reenroll"), "{back:?}");
    assert!(
        p.get("/api/v1/hosts?status=pending", tok)
            .await
            .ok()
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_audited("host.approved", &h1, "organisation token ");
    assert_audited("host.rejected", &h2, "organisation token ");
    assert_audited("host.enrolled", &h1, "enrollment key ");
    assert!(
        log_text().contains("org_settings.changed"),
        "the settings change is an audit event"
    );
    p.assert_no_secret_leaked();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rotated_credential_replaces_the_old_one_when_first_used() {
    let p = platform(1_000, 1_000).await;
    let a = p.org("a").await;
    let tok = a.token.expose();
    let (host, old) = p.enroll(a.enrollment_key.expose(), "web-1").await;
    let enrolled_at = p.whoami(&old).await.ok()["credential_issued_at"].clone();
    assert_eq!(p.heartbeat(&old).await.status, StatusCode::OK);

    let first = p
        .req("POST", "/api/v1/agent/credential", Some(&old), None)
        .await
        .ok();
    let c1 = first["credential"].as_str().unwrap().to_owned();
    p.remember(&c1);
    // The old one still works (an agent that crashed before storing the new one).
    assert_eq!(p.heartbeat(&old).await.status, StatusCode::OK);
    // A second rotation before the first was used replaces it.
    let second = p
        .req("POST", "/api/v1/agent/credential", Some(&old), None)
        .await
        .ok();
    let c2 = second["credential"].as_str().unwrap().to_owned();
    p.remember(&c2);
    assert_ne!(c1, c2);
    let r = p.heartbeat(&c1).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNAUTHORIZED, "credential_unknown")
    );
    assert_eq!(p.heartbeat(&old).await.status, StatusCode::OK);
    assert_eq!(
        p.whoami(&old).await.ok()["credential_issued_at"],
        enrolled_at,
        "the old credential is still the one in use"
    );
    // The new one's first use promotes it; the old one stops working at once.
    assert_eq!(p.heartbeat(&c2).await.status, StatusCode::OK);
    let r = p.heartbeat(&old).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNAUTHORIZED, "credential_unknown"),
        "{r:?}"
    );
    let me = p.whoami(&c2).await.ok();
    assert_eq!(
        chrono::DateTime::parse_from_rfc3339(me["credential_issued_at"].as_str().unwrap()).unwrap(),
        chrono::DateTime::parse_from_rfc3339(second["issued_at"].as_str().unwrap()).unwrap(),
    );
    let shown = p.get(&format!("/api/v1/hosts/{host}"), tok).await.ok();
    assert_eq!(shown["credential_issued_at"], me["credential_issued_at"]);
    assert_audited("agent_credential.issued", &host, &format!("host {host}"));
    assert_audited("agent_credential.promoted", &host, &format!("host {host}"));
    p.assert_no_secret_leaked();
}

#[tokio::test(flavor = "multi_thread")]
async fn enrollment_keys_run_out_expire_are_revoked_and_rotated() {
    let p = platform(1_000, 1_000).await;
    let a = p.org("a").await;
    let tok = a.token.expose();

    // Maximum uses.
    let (twice, twice_key) = p
        .create_key(
            tok,
            json!({"name": "twice", "max_uses": 2, "expires_in_secs": 3600}),
        )
        .await;
    let info = p.key_info(tok, &twice).await;
    assert_eq!(
        (info["state"].as_str(), info["max_uses"].as_u64()),
        (Some("active"), Some(2))
    );
    let expires =
        chrono::DateTime::parse_from_rfc3339(info["expires_at"].as_str().unwrap()).unwrap();
    let in_secs = (expires.with_timezone(&Utc) - Utc::now()).num_seconds();
    assert!((3590..=3600).contains(&in_secs), "{in_secs}");
    p.enroll(&twice_key, "h1").await;
    p.enroll(&twice_key, "h2").await;
    let r = p.try_enroll(&twice_key, "h3").await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNAUTHORIZED, "enrollment_key_invalid")
    );
    assert!(r.error().contains("maximum number of hosts"), "{r:?}");
    let info = p.key_info(tok, &twice).await;
    assert_eq!(
        (info["state"].as_str(), info["uses"].as_u64()),
        (Some("exhausted"), Some(2))
    );

    // Expiry, from a stored time in the past.
    let past = Secret::new("pek_expired_for_the_test".to_owned());
    p.remember(past.expose());
    let org = p.store.org_by_name("a").await.unwrap().unwrap();
    let stored = p
        .store
        .insert_enrollment_key(patchctl_storage::NewEnrollmentKey {
            org_id: org.id,
            name: "old".into(),
            key_hash: hash_secret(past.expose()),
            expires_at: Some(Utc::now() - chrono::Duration::seconds(1)),
            max_uses: None,
            now: Utc::now() - chrono::Duration::hours(1),
        })
        .await
        .unwrap();
    let r = p.try_enroll(past.expose(), "late").await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNAUTHORIZED, "enrollment_key_invalid")
    );
    assert!(r.error().contains("expired"), "{r:?}");
    assert_eq!(
        p.key_info(tok, &stored.id.to_string()).await["state"],
        "expired"
    );

    // Revocation.
    let (gone, gone_key) = p.create_key(tok, json!({"name": "gone"})).await;
    let r = p
        .post(
            &format!("/api/v1/enrollment-keys/{gone}/revoke"),
            tok,
            json!(null),
        )
        .await;
    let v = r.ok();
    assert_eq!(v["state"], "revoked");
    assert!(v["revoked_at"].is_string());
    let r = p.try_enroll(&gone_key, "x").await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNAUTHORIZED, "enrollment_key_invalid")
    );
    assert!(r.error().contains("revoked"), "{r:?}");
    let r = p
        .post(
            &format!("/api/v1/enrollment-keys/{gone}/rotate"),
            tok,
            json!(null),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{r:?}");

    // An unknown key says only that.
    let r = p.try_enroll("pek_nothing_like_it", "x").await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNAUTHORIZED, "enrollment_key_invalid")
    );
    assert!(r.error().starts_with("unknown enrollment key"), "{r:?}");
    for word in ["revoked", "expired", "maximum", "organisation"] {
        assert!(!r.error().contains(word), "{r:?}");
    }

    // Rotation at once (no body): the old key stops, the new one has its name and limits.
    let (fleet, fleet_key) = p
        .create_key(
            tok,
            json!({"name": "fleet", "max_uses": 10, "expires_in_secs": 86400}),
        )
        .await;
    p.enroll(&fleet_key, "f1").await;
    let r = p
        .req(
            "POST",
            &format!("/api/v1/enrollment-keys/{fleet}/rotate"),
            Some(tok),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    let new_key = r.body["key"].as_str().unwrap().to_owned();
    p.remember(&new_key);
    let new = &r.body["info"];
    assert_eq!(
        (
            new["name"].as_str(),
            new["max_uses"].as_u64(),
            new["uses"].as_u64()
        ),
        (Some("fleet"), Some(10), Some(0))
    );
    assert_eq!(new["rotated_from"], fleet.as_str());
    assert_eq!(new["state"], "active");
    let r = p.try_enroll(&fleet_key, "f2").await;
    assert_eq!(r.code(), "enrollment_key_invalid", "{r:?}");
    assert_eq!(p.key_info(tok, &fleet).await["state"], "expired");
    p.enroll(&new_key, "f3").await;

    // Rotation with a grace: both enroll during it, only the new one after.
    let (graced, graced_key) = p.create_key(tok, json!({"name": "graced"})).await;
    let r = p
        .post(
            &format!("/api/v1/enrollment-keys/{graced}/rotate"),
            tok,
            json!({"grace_secs": 2}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    let graced_new = r.body["key"].as_str().unwrap().to_owned();
    p.remember(&graced_new);
    p.enroll(&graced_key, "g1").await;
    p.enroll(&graced_new, "g2").await;
    tokio::time::sleep(Duration::from_millis(2_200)).await;
    let r = p.try_enroll(&graced_key, "g3").await;
    assert_eq!(r.code(), "enrollment_key_invalid", "{r:?}");
    assert!(r.error().contains("expired"), "{r:?}");
    p.enroll(&graced_new, "g4").await;

    // Several keys valid at once.
    let listed = p.get("/api/v1/enrollment-keys", tok).await.ok();
    let active = listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["state"] == "active")
        .count();
    assert!(active >= 3, "{listed}");
    assert!(
        !listed.to_string().contains(&graced_new[4..]),
        "a listed key shows no secret"
    );

    // Requests that make no sense say why.
    for (body, says) in [
        (json!({"name": ""}), "1 to 100 characters"),
        (json!({"name": "x".repeat(101)}), "1 to 100 characters"),
        (json!({"name": "n", "max_uses": 0}), "max_uses is 0"),
        (
            json!({"name": "n", "expires_in_secs": 0}),
            "expires_in_secs is 0",
        ),
        (
            json!({"name": "n", "expires_in_secs": 10_000_000_000u64}),
            "ten years",
        ),
    ] {
        let r = p.post("/api/v1/enrollment-keys", tok, body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {r:?}");
        assert!(r.error().contains(says), "{body}: {r:?}");
    }
    let r = p
        .post("/api/v1/enrollment-keys/nope/revoke", tok, json!(null))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = p
        .post(
            &format!("/api/v1/enrollment-keys/{}/revoke", uuid::Uuid::new_v4()),
            tok,
            json!(null),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    for body in [json!({"grace": 5}), json!({"grace_secs": "1h"}), json!([1])] {
        let r = p
            .post(
                &format!("/api/v1/enrollment-keys/{graced}/rotate"),
                tok,
                body.clone(),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {r:?}");
        assert!(r.error().contains("grace_secs"), "{body}: {r:?}");
    }

    assert_audited("enrollment_key.created", &twice, "organisation token ");
    assert_audited("enrollment_key.revoked", &gone, "organisation token ");
    assert_audited("enrollment_key.rotated", &fleet, "organisation token ");
    p.assert_no_secret_leaked();
}

#[tokio::test(flavor = "multi_thread")]
async fn enrollment_is_rate_limited_per_address_with_retry_after() {
    let p = platform(3, 1_000).await;
    let a = p.org("a").await;
    // Unknown keys (guessing) use up the address's attempts too.
    for i in 0..3 {
        let r = p.try_enroll(&format!("pek_guess_{i}"), "x").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{r:?}");
    }
    for key in ["pek_guess_4", a.enrollment_key.expose()] {
        let r = p.try_enroll(key, "x").await;
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{r:?}");
        assert_eq!(r.code(), "rate_limited");
        let secs: u64 = r
            .retry_after
            .as_deref()
            .expect("Retry-After")
            .parse()
            .unwrap();
        // 3 a minute: the next token in about 20 s.
        assert!((1..=20).contains(&secs), "{secs}");
        assert!(r.error().contains("this address"), "{r:?}");
    }
    // Nothing was enrolled by the refused attempts.
    let hosts = p.get("/api/v1/hosts", a.token.expose()).await.ok();
    assert!(hosts.as_array().unwrap().is_empty());
    p.assert_no_secret_leaked();
}

#[tokio::test(flavor = "multi_thread")]
async fn enrollment_is_rate_limited_per_key() {
    let p = platform(1_000, 2).await;
    let a = p.org("a").await;
    let tok = a.token.expose();
    let (_, other) = p.create_key(tok, json!({"name": "other"})).await;
    p.enroll(a.enrollment_key.expose(), "k1").await;
    p.enroll(a.enrollment_key.expose(), "k2").await;
    let r = p.try_enroll(a.enrollment_key.expose(), "k3").await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::TOO_MANY_REQUESTS, "rate_limited")
    );
    let secs: u64 = r.retry_after.as_deref().unwrap().parse().unwrap();
    assert!((1..=30).contains(&secs), "{secs}");
    assert!(r.error().contains("enrollment key"), "{r:?}");
    // Another key has its own budget.
    p.enroll(&other, "k4").await;
    p.assert_no_secret_leaked();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_oversized_enrollment_body_gets_413_and_uses_nothing() {
    let p = platform(1_000, 1_000).await;
    let a = p.org("a").await;
    let tok = a.token.expose();
    let (id, key) = p
        .create_key(tok, json!({"name": "once", "max_uses": 1}))
        .await;
    let big = json!({
        "protocol_version": PROTOCOL_VERSION,
        "license_key": key,
        "agent_version": "t",
        "system": {"hostname": "x".repeat(100 * 1024)},
    });
    let r = p
        .req(
            "POST",
            "/api/v1/agent/enroll",
            None,
            Some(big.to_string().into_bytes()),
        )
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{r:?}");
    assert!(r.error().contains("too large"), "{r:?}");
    assert_eq!(p.key_info(tok, &id).await["uses"], 0);
    // The one use is still there.
    p.enroll(&key, "small").await;
    assert_eq!(p.key_info(tok, &id).await["uses"], 1);
    p.assert_no_secret_leaked();
}

#[tokio::test(flavor = "multi_thread")]
async fn organisations_cannot_see_or_touch_each_others_keys_hosts_and_settings() {
    let p = platform(1_000, 1_000).await;
    let a = p.org("a").await;
    let b = p.org("b").await;
    let (ta, tb) = (a.token.expose(), b.token.expose());
    let (ka, ka_key) = p.create_key(ta, json!({"name": "a-only"})).await;
    p.req(
        "PUT",
        "/api/v1/settings",
        Some(ta),
        Some(br#"{"require_approval": true}"#.to_vec()),
    )
    .await
    .ok();
    let (ha, ca) = p.enroll(&ka_key, "a-host").await;

    let b_keys = p.get("/api/v1/enrollment-keys", tb).await.ok();
    assert!(
        b_keys
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["id"] != ka.as_str()),
        "{b_keys}"
    );
    for path in [
        format!("/api/v1/enrollment-keys/{ka}/revoke"),
        format!("/api/v1/enrollment-keys/{ka}/rotate"),
        format!("/api/v1/hosts/{ha}/approve"),
        format!("/api/v1/hosts/{ha}/reject"),
        format!("/api/v1/hosts/{ha}/revoke"),
    ] {
        let r = p.post(&path, tb, json!(null)).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}: {r:?}");
    }
    assert!(
        p.get("/api/v1/hosts?status=pending", tb)
            .await
            .ok()
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        p.get("/api/v1/settings", tb).await.ok()["require_approval"],
        false
    );
    // B's enrollment is not held for approval by A's setting.
    let (_, cb) = p.enroll(b.enrollment_key.expose(), "b-host").await;
    assert_eq!(p.heartbeat(&cb).await.status, StatusCode::OK);
    // A's things are intact.
    assert_eq!(p.key_info(ta, &ka).await["state"], "active");
    assert_eq!(p.whoami(&ca).await.ok()["approval"], "pending");
    p.post(&format!("/api/v1/hosts/{ha}/approve"), ta, json!(null))
        .await
        .ok();
    assert_eq!(p.heartbeat(&ca).await.status, StatusCode::OK);
    p.assert_no_secret_leaked();
}

#[tokio::test(flavor = "multi_thread")]
async fn dev_setup_says_when_its_enrollment_key_no_longer_enrolls() {
    capture_logs();
    use patchctl_server::bootstrap::dev_setup;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("dev");
    let first = dev_setup(&dir, Some("127.0.0.1:0".parse().unwrap()), 5)
        .await
        .unwrap();
    assert_eq!(first.key_warning, None);
    drop(first.listener);
    let again = dev_setup(&dir, Some("127.0.0.1:0".parse().unwrap()), 5)
        .await
        .unwrap();
    assert_eq!(again.key_warning, None, "an active key: nothing to say");
    drop(again.listener);
    // An operator revokes the dev key.
    let store = patchctl_storage::open(&first.info.database_url)
        .await
        .unwrap();
    let key = store
        .enrollment_key_by_hash(&hash_secret(first.info.enrollment_key.expose()))
        .await
        .unwrap()
        .unwrap();
    store
        .revoke_enrollment_key(key.org_id, key.id, Utc::now())
        .await
        .unwrap();
    let third = dev_setup(&dir, Some("127.0.0.1:0".parse().unwrap()), 5)
        .await
        .unwrap();
    let w = third.key_warning.expect("a revoked key is reported");
    assert!(w.contains("was revoked"), "{w}");
    assert!(w.contains("patchctl keys create"), "{w}");
    assert!(
        w.contains(&*dir_of(&third.info.agent_config).display().to_string()),
        "{w}"
    );
    assert!(!w.contains(&first.info.enrollment_key.expose()[4..]), "{w}");
}
