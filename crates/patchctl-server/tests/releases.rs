//! Signed releases on the real platform over TLS 1.3 (loopback, a real SQLite file),
//! with bundles really signed by test keys: every refusal of a publication, idempotence
//! and the immutability of versions, the list, the rollout's validation, each condition
//! of the heartbeat's update offer (and that a publication or a rollout change through
//! the platform is seen at once), the agent's bundle and artifact routes behind its
//! credential, the public downloads and install script, and update events stored,
//! audited and shown in `GET /api/v1/hosts`.

// The install script is run with `sh` here (only up to its refusals); the no-spawn rule
// is for agent code.
#![allow(clippy::disallowed_methods)]

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use axum::body::Bytes;
use axum::http::{Request, StatusCode};
use base64::Engine as _;
use chrono::{DateTime, Duration, Utc};
use http_body_util::BodyExt;
use patchctl_proto::agent::{EnrollRequest, HeartbeatRequest, Metrics, SystemInfo};
use patchctl_proto::release::{
    Manifest, PublishRelease, ReleaseBundle, SignedDocument, UpdateEvent, UpdateStep, in_canary,
};
use patchctl_proto::{PROTOCOL_VERSION, Secret};
use patchctl_release::{KeyRole, SecretKey, sign_key_list, sign_manifest};
use patchctl_server::Settings;
use patchctl_server::bootstrap::{OrgSecrets, create_org};
use patchctl_storage::Storage;
use serde_json::{Value, json};
use uuid::Uuid;

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

/// The audit lines of the log that contain every one of `parts`.
fn audit_lines(parts: &[&str]) -> Vec<String> {
    String::from_utf8_lossy(&LOG.lock().unwrap())
        .lines()
        .filter(|l| l.contains(" audit: ") && parts.iter().all(|p| l.contains(p)))
        .map(str::to_owned)
        .collect()
}

// ---------------------------------------------------------------------------------
// Signing, as `patchctl release` does it, with test keys.

const X86: &str = "x86_64-unknown-linux-gnu";
const ARM: &str = "aarch64-unknown-linux-gnu";

fn root() -> SecretKey {
    SecretKey::from_seed(KeyRole::Root, [7; 32])
}

fn signing() -> SecretKey {
    SecretKey::from_seed(KeyRole::Signing, [9; 32])
}

fn key_list(keys_expire: DateTime<Utc>) -> SignedDocument {
    let now = Utc::now();
    sign_key_list(
        &[&root()],
        &[signing().public()],
        now - Duration::hours(1),
        keys_expire,
    )
    .unwrap()
}

fn manifest(product: &str, version: &str, target: &str, artifact: &[u8]) -> Manifest {
    Manifest {
        kind: patchctl_release::MANIFEST_KIND.into(),
        product: product.into(),
        version: version.into(),
        target: target.into(),
        sha256: patchctl_release::sha256_hex(artifact),
        size: artifact.len() as u64,
        channel: "stable".into(),
        created: Utc::now() - Duration::hours(1),
        expires: Utc::now() + Duration::days(30),
    }
}

fn bundle_for(m: &Manifest, signer: &SecretKey, keys_expire: DateTime<Utc>) -> ReleaseBundle {
    ReleaseBundle {
        keys: key_list(keys_expire),
        manifest: sign_manifest(signer, m).unwrap(),
    }
}

/// A publication of `artifact` as `product` `version` for `target`, signed properly.
fn publication(product: &str, version: &str, target: &str, artifact: &[u8]) -> Value {
    let m = manifest(product, version, target, artifact);
    let b = bundle_for(&m, &signing(), Utc::now() + Duration::days(365));
    body(&b, artifact)
}

fn body(bundle: &ReleaseBundle, artifact: &[u8]) -> Value {
    serde_json::to_value(PublishRelease {
        bundle: bundle.clone(),
        artifact_base64: base64::engine::general_purpose::STANDARD.encode(artifact),
    })
    .unwrap()
}

// ---------------------------------------------------------------------------------
// A platform over TLS.

#[derive(Debug)]
struct Raw {
    status: StatusCode,
    content_type: String,
    content_length: Option<u64>,
    body: Vec<u8>,
}

#[derive(Debug)]
struct Resp {
    status: StatusCode,
    body: Value,
}

impl Resp {
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
}

async fn platform() -> Platform {
    capture_logs();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("db.sqlite").display());
    let store = patchctl_storage::open(&url).await.unwrap();
    let pki = patchctl_net::ensure_dev_pki(
        &dir.path().join("pki"),
        &["localhost".into(), "127.0.0.1".into()],
    )
    .unwrap();
    let settings = Settings {
        metrics_history_len: 10,
        enroll_per_address_per_min: 1_000,
        enroll_per_key_per_min: 1_000,
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
    }
}

impl Platform {
    async fn raw(
        &self,
        method: &str,
        path: &str,
        bearer: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Raw {
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
            .header("host", format!("localhost:{}", self.addr.port()));
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
        let header = |n: &str| {
            resp.headers()
                .get(n)
                .map(|v| v.to_str().unwrap().to_owned())
        };
        let content_type = header("content-type").unwrap_or_default();
        let content_length = header("content-length").map(|v| v.parse().unwrap());
        let body = resp
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec();
        Raw {
            status,
            content_type,
            content_length,
            body,
        }
    }

    async fn req(
        &self,
        method: &str,
        path: &str,
        bearer: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        let r = self
            .raw(
                method,
                path,
                bearer,
                body.map(|b| b.to_string().into_bytes()),
            )
            .await;
        let body = serde_json::from_slice(&r.body).unwrap_or_else(|_| {
            panic!(
                "{method} {path}: {}: body is not JSON: {}",
                r.status,
                String::from_utf8_lossy(&r.body)
            )
        });
        Resp {
            status: r.status,
            body,
        }
    }

    async fn publish(&self, token: &str, body: Value) -> Resp {
        self.req("POST", "/api/v1/releases", Some(token), Some(body))
            .await
    }

    async fn rollout(&self, token: &str, body: Value) -> Resp {
        self.req("PUT", "/api/v1/agent-rollout", Some(token), Some(body))
            .await
    }

    async fn org(&self, name: &str) -> OrgSecrets {
        create_org(self.store.as_ref(), name).await.unwrap()
    }

    async fn org_id(&self, name: &str) -> Uuid {
        self.store.org_by_name(name).await.unwrap().unwrap().id
    }

    /// Enrolls `hostname`: its host id and credential.
    async fn enroll(&self, key: &str, hostname: &str) -> (Uuid, String) {
        let req = EnrollRequest {
            protocol_version: PROTOCOL_VERSION,
            license_key: Secret::new(key.to_owned()),
            agent_version: "1.0.0".into(),
            system: SystemInfo {
                hostname: hostname.into(),
                ..Default::default()
            },
        };
        let v = self
            .req(
                "POST",
                "/api/v1/agent/enroll",
                None,
                Some(serde_json::to_value(&req).unwrap()),
            )
            .await
            .ok();
        (
            v["host_id"].as_str().unwrap().parse().unwrap(),
            v["credential"].as_str().unwrap().to_owned(),
        )
    }

    /// A heartbeat; its answer's `agent_update`.
    async fn heartbeat(
        &self,
        credential: &str,
        version: &str,
        target: Option<&str>,
        events: Vec<UpdateEvent>,
    ) -> Value {
        let hb = HeartbeatRequest {
            agent_version: version.into(),
            metrics: Metrics::default(),
            agent_target: target.map(str::to_owned),
            update_events: events,
            trial: false,
            reboot: None,
            booted_at: None,
            command_key_id: None,
            approvers_serial: None,
        };
        let v = self
            .req(
                "POST",
                "/api/v1/agent/heartbeat",
                Some(credential),
                Some(serde_json::to_value(&hb).unwrap()),
            )
            .await
            .ok();
        v.get("agent_update").cloned().unwrap_or(Value::Null)
    }
}

#[track_caller]
fn assert_refused(r: &Resp, status: StatusCode, parts: &[&str]) {
    assert_eq!(r.status, status, "{r:?}");
    for p in parts {
        assert!(r.error().contains(p), "{p:?} not in {r:?}");
    }
}

// ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn every_refusal_of_a_publication_says_what_and_what_to_do() {
    let p = platform().await;
    let a = p.org("a").await;
    let tok = a.token.expose();
    let art = b"agent binary 1.1.0".to_vec();
    let good_m = manifest("patchctl-agent", "1.1.0", X86, &art);
    let year = Utc::now() + Duration::days(365);
    let good = bundle_for(&good_m, &signing(), year);

    // Not base64.
    let mut v = body(&good, &art);
    v["artifact_base64"] = json!("not base64 !!");
    assert_refused(
        &p.publish(tok, v).await,
        StatusCode::BAD_REQUEST,
        &["not valid base64", "patchctl release publish"],
    );
    // The key list carries no signature.
    let mut b = good.clone();
    b.keys.signatures.clear();
    assert_refused(
        &p.publish(tok, body(&b, &art)).await,
        StatusCode::BAD_REQUEST,
        &[
            "signing-key list carries no signature",
            "patchctl release sign",
        ],
    );
    // The key list expired.
    let b = bundle_for(&good_m, &signing(), Utc::now() - Duration::minutes(1));
    assert_refused(
        &p.publish(tok, body(&b, &art)).await,
        StatusCode::BAD_REQUEST,
        &["signing-key list expired", "sign-keys"],
    );
    // The manifest expired.
    let mut m = good_m.clone();
    m.expires = Utc::now() - Duration::minutes(1);
    assert_refused(
        &p.publish(tok, body(&bundle_for(&m, &signing(), year), &art))
            .await,
        StatusCode::BAD_REQUEST,
        &["manifest expired", "patchctl release sign"],
    );
    // Signed by a key the list does not name.
    let stranger = SecretKey::from_seed(KeyRole::Signing, [3; 32]);
    assert_refused(
        &p.publish(tok, body(&bundle_for(&good_m, &stranger, year), &art))
            .await,
        StatusCode::BAD_REQUEST,
        &["manifest is signed only by keys", "patchctl release"],
    );
    // A manifest changed after it was signed.
    let mut b = good.clone();
    b.manifest.signed = b.manifest.signed.replace("1.1.0", "1.1.9");
    assert_refused(
        &p.publish(tok, body(&b, &art)).await,
        StatusCode::BAD_REQUEST,
        &["signature by key", "does not verify"],
    );
    // A manifest larger than any release may be.
    let mut m = good_m.clone();
    m.size = patchctl_proto::release::MAX_ARTIFACT_BYTES + 1;
    assert_refused(
        &p.publish(tok, body(&bundle_for(&m, &signing(), year), &art))
            .await,
        StatusCode::BAD_REQUEST,
        &["size must be between 1 and 67108864"],
    );
    // Another artifact than the manifest's: size, then hash.
    assert_refused(
        &p.publish(tok, body(&good, b"short")).await,
        StatusCode::BAD_REQUEST,
        &[
            "the artifact is 5 bytes, the manifest says 18",
            "the very file",
        ],
    );
    let mut same_len = art.clone();
    same_len[0] ^= 1;
    assert_refused(
        &p.publish(tok, body(&good, &same_len)).await,
        StatusCode::BAD_REQUEST,
        &["SHA-256 is", "the manifest says"],
    );
    // Without a token.
    let r = p
        .req("POST", "/api/v1/releases", None, Some(body(&good, &art)))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // Nothing was stored.
    assert_eq!(
        p.req("GET", "/api/v1/releases", Some(tok), None).await.ok(),
        json!([])
    );
    assert!(!audit_lines(&["release.refused", "does not verify"]).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn publishing_is_idempotent_and_versions_are_immutable() {
    let p = platform().await;
    let a = p.org("a").await;
    let tok = a.token.expose();
    let art = b"agent binary 1.1.0";
    let first = p
        .publish(tok, publication("patchctl-agent", "1.1.0", X86, art))
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{first:?}");
    let info = first.body;
    assert_eq!(info["product"], "patchctl-agent");
    assert_eq!(info["version"], "1.1.0");
    assert_eq!(info["target"], X86);
    assert_eq!(info["size"], art.len());
    assert_eq!(info["sha256"], patchctl_release::sha256_hex(art));
    // The same artifact again (signed anew: another bundle) is accepted, unchanged.
    let again = p
        .publish(tok, publication("patchctl-agent", "1.1.0", X86, art))
        .await;
    assert_eq!(again.status, StatusCode::OK, "{again:?}");
    assert_eq!(again.body, info);
    // Another artifact under the same version is refused.
    let other = p
        .publish(
            tok,
            publication("patchctl-agent", "1.1.0", X86, b"another build"),
        )
        .await;
    assert_refused(
        &other,
        StatusCode::CONFLICT,
        &[
            "already published with another artifact",
            "publish a new version",
        ],
    );
    // Later releases list first; an operator of another organisation sees them too
    // (releases are the platform's, not an organisation's).
    let arm = p
        .publish(tok, publication("patchctl-agent", "1.1.0", ARM, b"arm"))
        .await;
    assert_eq!(arm.status, StatusCode::CREATED);
    let b = p.org("b").await;
    let listed = p
        .req("GET", "/api/v1/releases", Some(b.token.expose()), None)
        .await
        .ok();
    let targets: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["target"].as_str().unwrap())
        .collect();
    assert_eq!(targets, vec![ARM, X86]);
    assert!(!audit_lines(&["release.published", "organisation token", "1.1.0"]).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_rollout_is_validated_and_audited() {
    let p = platform().await;
    let a = p.org("a").await;
    let tok = a.token.expose();
    assert_eq!(
        p.req("GET", "/api/v1/agent-rollout", Some(tok), None)
            .await
            .ok(),
        json!({"version": null, "canary_percent": null})
    );
    assert_refused(
        &p.rollout(tok, json!({"version": "1.1.0"})).await,
        StatusCode::BAD_REQUEST,
        &[
            "no patchctl-agent release 1.1.0",
            "publish it first with patchctl release publish",
        ],
    );
    // A package of that version is not an agent release.
    p.publish(tok, publication("patchctl-agent.deb", "1.1.0", X86, b"deb"))
        .await
        .ok();
    assert_refused(
        &p.rollout(tok, json!({"version": "1.1.0"})).await,
        StatusCode::BAD_REQUEST,
        &["publish it first"],
    );
    p.publish(tok, publication("patchctl-agent", "1.1.0", X86, b"bin"))
        .await
        .ok();
    assert_refused(
        &p.rollout(tok, json!({"version": "1.1"})).await,
        StatusCode::BAD_REQUEST,
        &["not a release version", "MAJOR.MINOR.PATCH"],
    );
    for bad in [0, 101] {
        assert_refused(
            &p.rollout(tok, json!({"version": "1.1.0", "canary_percent": bad}))
                .await,
            StatusCode::BAD_REQUEST,
            &["1 to 100"],
        );
    }
    assert_refused(
        &p.rollout(tok, json!({"version": "1.1.0", "canary_percent": 300}))
            .await,
        StatusCode::BAD_REQUEST,
        &["invalid rollout"],
    );
    assert_refused(
        &p.rollout(tok, json!({"version": "1.1.0", "canary": 10}))
            .await,
        StatusCode::BAD_REQUEST,
        &["unknown rollout field \"canary\"", "canary_percent"],
    );
    let set = json!({"version": "1.1.0", "canary_percent": 10});
    assert_eq!(p.rollout(tok, set.clone()).await.ok(), set);
    assert_eq!(
        p.req("GET", "/api/v1/agent-rollout", Some(tok), None)
            .await
            .ok(),
        set
    );
    // Another organisation's rollout is its own.
    let b = p.org("b").await;
    assert_eq!(
        p.req("GET", "/api/v1/agent-rollout", Some(b.token.expose()), None)
            .await
            .ok()["version"],
        Value::Null
    );
    let off = json!({"version": null, "canary_percent": null});
    assert_eq!(p.rollout(tok, off.clone()).await.ok(), off);
    let org = p.org_id("a").await.to_string();
    assert!(!audit_lines(&["agent_rollout.changed", &org, "1.1.0"]).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_offer_holds_exactly_when_every_condition_does() {
    let p = platform().await;
    let a = p.org("a").await;
    let tok = a.token.expose();
    let key = a.enrollment_key.expose();
    let (_, cred) = p.enroll(key, "web-1").await;
    p.publish(
        tok,
        publication("patchctl-agent", "1.1.0", X86, b"x86 1.1.0"),
    )
    .await
    .ok();
    // No rollout: nothing offered.
    assert_eq!(
        p.heartbeat(&cred, "1.0.0", Some(X86), vec![]).await,
        Value::Null
    );
    p.rollout(tok, json!({"version": "1.1.0", "canary_percent": 100}))
        .await
        .ok();
    // Every condition holds: offered at once (the rollout change cleared the cache).
    assert_eq!(
        p.heartbeat(&cred, "1.0.0", Some(X86), vec![]).await,
        json!({"version": "1.1.0", "target": X86})
    );
    // Already that version.
    assert_eq!(
        p.heartbeat(&cred, "1.1.0", Some(X86), vec![]).await,
        Value::Null
    );
    // No target said.
    assert_eq!(p.heartbeat(&cred, "1.0.0", None, vec![]).await, Value::Null);
    // A target that is no target triple is not taken.
    assert_eq!(
        p.heartbeat(&cred, "1.0.0", Some("x86_64 unknown"), vec![])
            .await,
        Value::Null
    );
    // No release for its target; publishing one offers it at the next heartbeat.
    assert_eq!(
        p.heartbeat(&cred, "1.0.0", Some(ARM), vec![]).await,
        Value::Null
    );
    p.publish(
        tok,
        publication("patchctl-agent", "1.1.0", ARM, b"arm 1.1.0"),
    )
    .await
    .ok();
    assert_eq!(
        p.heartbeat(&cred, "1.0.0", Some(ARM), vec![]).await,
        json!({"version": "1.1.0", "target": ARM})
    );
    // A package of the version is no agent release.
    assert_eq!(
        p.heartbeat(&cred, "1.0.0", Some("riscv64gc-unknown-linux-gnu"), vec![])
            .await,
        Value::Null
    );
    // Another organisation's hosts are not offered this organisation's rollout.
    let b = p.org("b").await;
    let (_, other) = p.enroll(b.enrollment_key.expose(), "db-1").await;
    assert_eq!(
        p.heartbeat(&other, "1.0.0", Some(X86), vec![]).await,
        Value::Null
    );

    // The canary: two hosts in different buckets, a share that takes one of them.
    let mut hosts = Vec::new();
    let bucket = |h: Uuid| (1..=100u8).find(|p| in_canary(h, Some(*p))).unwrap();
    while hosts.len() < 2 {
        let (h, c) = p.enroll(key, &format!("canary-{}", hosts.len())).await;
        if hosts.iter().all(|(o, _)| bucket(*o) != bucket(h)) {
            hosts.push((h, c));
        }
    }
    hosts.sort_by_key(|(h, _)| bucket(*h));
    let (low, high) = (&hosts[0], &hosts[1]);
    let share = bucket(high.0) - 1;
    assert!(share >= 1 && in_canary(low.0, Some(share)) && !in_canary(high.0, Some(share)));
    p.rollout(tok, json!({"version": "1.1.0", "canary_percent": share}))
        .await
        .ok();
    assert_eq!(
        p.heartbeat(&low.1, "1.0.0", Some(X86), vec![]).await,
        json!({"version": "1.1.0", "target": X86})
    );
    assert_eq!(
        p.heartbeat(&high.1, "1.0.0", Some(X86), vec![]).await,
        Value::Null
    );
    // A canary of 100 takes both.
    p.rollout(tok, json!({"version": "1.1.0", "canary_percent": 100}))
        .await
        .ok();
    assert_ne!(
        p.heartbeat(&high.1, "1.0.0", Some(X86), vec![]).await,
        Value::Null
    );
    // Stopped: nothing offered, at once.
    p.rollout(tok, json!({"version": null})).await.ok();
    assert_eq!(
        p.heartbeat(&low.1, "1.0.0", Some(X86), vec![]).await,
        Value::Null
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn agents_fetch_bundle_and_artifact_with_their_credential() {
    let p = platform().await;
    let a = p.org("a").await;
    let tok = a.token.expose();
    let (_, cred) = p.enroll(a.enrollment_key.expose(), "web-1").await;
    // 3 MiB: past the 1 MiB limit of other operator requests (publishing has its own).
    let art: Vec<u8> = (0..=255u8).cycle().take(3 << 20).collect();
    let pubn = publication("patchctl-agent", "1.1.0", X86, &art);
    p.publish(tok, pubn.clone()).await.ok();
    let bundle = p
        .req(
            "GET",
            &format!("/api/v1/agent/releases/1.1.0/{X86}"),
            Some(&cred),
            None,
        )
        .await
        .ok();
    assert_eq!(bundle, pubn["bundle"]);
    let b: ReleaseBundle = serde_json::from_value(bundle).unwrap();
    let verified = patchctl_release::verify_bundle(
        &patchctl_release::TrustedRoots::new(vec![root().public()]),
        &b,
        Utc::now(),
    )
    .unwrap();
    let raw = p
        .raw(
            "GET",
            &format!("/api/v1/agent/releases/1.1.0/{X86}/artifact"),
            Some(&cred),
            None,
        )
        .await;
    assert_eq!(raw.status, StatusCode::OK);
    assert_eq!(raw.content_type, "application/octet-stream");
    assert_eq!(raw.content_length, Some(art.len() as u64));
    assert_eq!(raw.body, art);
    verified.check_artifact(&raw.body).unwrap();
    // Without a credential, or an unknown one: 401.
    for bearer in [None, Some("pca_0000")] {
        for path in [
            format!("/api/v1/agent/releases/1.1.0/{X86}"),
            format!("/api/v1/agent/releases/1.1.0/{X86}/artifact"),
        ] {
            let r = p.req("GET", &path, bearer, None).await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{path}: {r:?}");
        }
    }
    // An operator token is no agent credential.
    let r = p
        .req(
            "GET",
            &format!("/api/v1/agent/releases/1.1.0/{X86}"),
            Some(tok),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // Absent: 404 with a JSON error.
    for path in [
        format!("/api/v1/agent/releases/1.2.0/{X86}"),
        format!("/api/v1/agent/releases/1.1.0/{ARM}/artifact"),
    ] {
        let r = p.req("GET", &path, Some(&cred), None).await;
        assert_refused(
            &r,
            StatusCode::NOT_FOUND,
            &["is published", "patchctl release list"],
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn downloads_and_the_install_script_are_public() {
    let p = platform().await;
    let a = p.org("a").await;
    let tok = a.token.expose();
    // Before any package: the script is served, and says there is none.
    let empty = p.raw("GET", "/install.sh", None, None).await;
    assert_eq!(empty.status, StatusCode::OK);
    assert!(empty.content_type.starts_with("text/x-shellscript"));
    for (product, version, target, art) in [
        ("patchctl-agent.deb", "1.9.0", X86, b"deb 1.9.0".as_slice()),
        ("patchctl-agent.deb", "1.10.0", X86, b"deb 1.10.0"),
        ("patchctl-agent.deb", "1.2.0", ARM, b"deb arm 1.2.0"),
        ("patchctl-agent.rpm", "1.10.0", X86, b"rpm 1.10.0"),
        ("patchctl-agent", "2.0.0", X86, b"binary"),
    ] {
        p.publish(tok, publication(product, version, target, art))
            .await
            .ok();
    }
    let d = p
        .raw(
            "GET",
            &format!("/downloads/patchctl-agent.deb/1.9.0/{X86}"),
            None,
            None,
        )
        .await;
    assert_eq!(
        (d.status, d.body.as_slice()),
        (StatusCode::OK, b"deb 1.9.0".as_slice())
    );
    assert_eq!(d.content_length, Some(9));
    // `latest` is the highest version in release order (1.10.0, not 1.9.0).
    let d = p
        .raw(
            "GET",
            &format!("/downloads/patchctl-agent.deb/latest/{X86}"),
            None,
            None,
        )
        .await;
    assert_eq!(d.body, b"deb 1.10.0");
    let d = p
        .raw(
            "GET",
            &format!("/downloads/patchctl-agent.rpm/latest/{ARM}"),
            None,
            None,
        )
        .await;
    assert_eq!(d.status, StatusCode::NOT_FOUND);
    assert!(String::from_utf8_lossy(&d.body).contains("no release patchctl-agent.rpm latest"));

    let script = p.raw("GET", "/install.sh", None, None).await;
    assert_eq!(script.status, StatusCode::OK);
    let text = String::from_utf8(script.body).unwrap();
    assert!(!text.contains('@'), "a placeholder was left: {text}");
    let url = format!("PLATFORM_URL='https://localhost:{}'", p.addr.port());
    assert!(text.contains(&url), "{text}");
    let line = |family: &str, target: &str, version: &str, art: &[u8]| {
        format!(
            "{family} {target} {version} /downloads/patchctl-agent.{family}/{version}/{target} {}\n",
            patchctl_release::sha256_hex(art)
        )
    };
    for want in [
        line("deb", X86, "1.10.0", b"deb 1.10.0"),
        line("deb", ARM, "1.2.0", b"deb arm 1.2.0"),
        line("rpm", X86, "1.10.0", b"rpm 1.10.0"),
    ] {
        assert!(text.contains(&want), "{want} not in {text}");
    }
    assert!(!text.contains("/1.9.0/"), "an older package is offered");
    assert!(
        !text.contains("/downloads/patchctl-agent/"),
        "the bare binary is no package"
    );
    check_script(&text);
}

/// The served script parses, and refuses what it must before it touches anything
/// (these tests may run as root: no case here gets past the argument checks but the
/// ones whose PATH holds no package manager or only a stand-in `dpkg`).
fn check_script(text: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("install.sh");
    std::fs::write(&path, text).unwrap();
    let run = |args: &[&str], path_env: Option<&str>| {
        let mut c = std::process::Command::new("/bin/sh");
        c.arg(&path).args(args);
        if let Some(pe) = path_env {
            c.env("PATH", pe);
        }
        let out = c.output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let ok = std::process::Command::new("/bin/sh")
        .arg("-n")
        .arg(&path)
        .status()
        .unwrap();
    assert!(ok.success(), "sh -n refuses the served script");
    let secret = "pek_0123456789abcdef";
    for (args, want) in [
        (vec![], "--enrollment-key KEY is required"),
        (
            vec!["--enrollment-key", secret, "--bogus"],
            "unknown option --bogus",
        ),
        (vec![secret], "not shown: it may be a secret"),
        (vec!["--enrollment-key", "a'b"], "copy it again"),
        (
            vec!["--enrollment-key", secret, "--server", "http://x"],
            "must be an https:// URL",
        ),
        (
            vec![
                "--enrollment-key",
                secret,
                "--cacert",
                "/nonexistent/ca.pem",
            ],
            "cannot read the CA file",
        ),
    ] {
        let (ok, out) = run(&args, None);
        assert!(!ok, "{args:?} succeeded: {out}");
        assert!(out.contains(want), "{args:?}: {want:?} not in {out}");
        assert!(!out.contains(&secret[4..]), "the key was printed: {out}");
    }
    // No package manager (a PATH of only what the checks before it use).
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    for tool in ["id", "uname"] {
        let real = ["/usr/bin", "/bin"]
            .iter()
            .map(|d| std::path::Path::new(d).join(tool))
            .find(|p| p.exists())
            .unwrap();
        std::os::unix::fs::symlink(real, bin.join(tool)).unwrap();
    }
    let is_root = uid() == 0;
    let (ok, out) = run(&["--enrollment-key", secret], Some(bin.to_str().unwrap()));
    assert!(!ok);
    if is_root {
        assert!(out.contains("no supported package manager found"), "{out}");
        assert!(out.contains(".deb") && out.contains(".rpm"), "{out}");
    } else {
        assert!(out.contains("must run as root"), "{out}");
    }
    assert!(!out.contains(&secret[4..]));
}

/// The effective uid, from `id -u`.
fn uid() -> u32 {
    let out = std::process::Command::new("id").arg("-u").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn update_events_are_stored_audited_and_shown() {
    let p = platform().await;
    let a = p.org("a").await;
    let tok = a.token.expose();
    let (host, cred) = p.enroll(a.enrollment_key.expose(), "web-1").await;
    let hosts = p.req("GET", "/api/v1/hosts", Some(tok), None).await.ok();
    assert!(hosts[0].get("agent_update").is_none(), "{hosts}");
    let ev = |step: UpdateStep, detail: Option<&str>| UpdateEvent {
        at: Utc::now(),
        step,
        version: "1.1.0".into(),
        detail: detail.map(str::to_owned),
    };
    p.heartbeat(
        &cred,
        "1.0.0",
        Some(X86),
        vec![
            ev(UpdateStep::Downloaded, None),
            ev(UpdateStep::Verified, None),
            ev(UpdateStep::Swapped, None),
        ],
    )
    .await;
    let hosts = p.req("GET", "/api/v1/hosts", Some(tok), None).await.ok();
    assert_eq!(hosts[0]["agent_update"]["step"], "swapped");
    assert_eq!(hosts[0]["agent_update"]["version"], "1.1.0");
    let detail = "the new binary did not reach the platform within 120 s";
    p.heartbeat(
        &cred,
        "1.0.0",
        Some(X86),
        vec![ev(UpdateStep::RolledBack, Some(detail))],
    )
    .await;
    let shown = p
        .req("GET", &format!("/api/v1/hosts/{host}"), Some(tok), None)
        .await
        .ok();
    let hosts = p.req("GET", "/api/v1/hosts", Some(tok), None).await.ok();
    assert_eq!(hosts[0]["agent_update"]["step"], "rolled_back");
    assert_eq!(hosts[0]["agent_update"]["detail"], detail);
    assert_eq!(hosts[0]["agent_version"], "1.0.0");
    assert!(shown.to_string().contains("rolled_back"), "{shown}");
    // Each step is an audit event naming the host; the rollback a warning.
    let id = host.to_string();
    for step in ["downloaded", "verified", "swapped"] {
        let lines = audit_lines(&[&format!("agent_update.{step}"), &id]);
        assert!(
            lines.iter().any(|l| l.contains(" INFO ")),
            "{step}: {lines:#?}"
        );
    }
    let lines = audit_lines(&["agent_update.rolled_back", &id, detail]);
    assert!(lines.iter().any(|l| l.contains(" WARN ")), "{lines:#?}");
    // All four are stored, in order.
    let org = p.org_id("a").await;
    let events = p.store.update_events(org, host, 10).await.unwrap();
    let steps: Vec<UpdateStep> = events.iter().map(|e| e.event.step).collect();
    assert_eq!(
        steps,
        vec![
            UpdateStep::Downloaded,
            UpdateStep::Verified,
            UpdateStep::Swapped,
            UpdateStep::RolledBack
        ]
    );
    // The target the heartbeat reported is stored.
    let row = p.store.host(org, host).await.unwrap().unwrap();
    assert_eq!(row.agent_target.as_deref(), Some(X86));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_trial_heartbeat_gets_no_command_and_no_offer() {
    // A new agent binary on trial only proves it reaches the platform: the commands wait
    // for the agent that takes over, and the trial is offered nothing.
    let p = platform().await;
    let a = p.org("a").await;
    let tok = a.token.expose();
    let (host, cred) = p.enroll(a.enrollment_key.expose(), "trial-host").await;
    p.publish(tok, publication("patchctl-agent", "1.1.0", X86, b"bin"))
        .await
        .ok();
    p.rollout(tok, json!({"version": "1.1.0"})).await.ok();
    p.req(
        "POST",
        "/api/v1/commands",
        Some(tok),
        Some(json!({"host": host.to_string(), "kind": "health_check"})),
    )
    .await
    .ok();
    let beat = |trial: bool| {
        let hb = HeartbeatRequest {
            agent_version: "1.0.0".into(),
            metrics: Metrics::default(),
            agent_target: Some(X86.into()),
            update_events: Vec::new(),
            trial,
            reboot: None,
            booted_at: None,
            command_key_id: None,
            approvers_serial: None,
        };
        serde_json::to_value(&hb).unwrap()
    };
    let on_trial = p
        .req(
            "POST",
            "/api/v1/agent/heartbeat",
            Some(&cred),
            Some(beat(true)),
        )
        .await
        .ok();
    assert_eq!(on_trial["commands"], json!([]), "{on_trial}");
    assert!(on_trial.get("agent_update").is_none(), "{on_trial}");
    let normal = p
        .req(
            "POST",
            "/api/v1/agent/heartbeat",
            Some(&cred),
            Some(beat(false)),
        )
        .await
        .ok();
    assert_eq!(normal["commands"].as_array().unwrap().len(), 1, "{normal}");
    assert_eq!(normal["agent_update"]["version"], "1.1.0", "{normal}");
}
