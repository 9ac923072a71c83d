//! Prometheus metrics on the real platform (TLS 1.3 on loopback, a real SQLite file),
//! fed by agents' traffic over the agent API: the families appear with the values the
//! traffic makes, label values sent by agents are escaped, HTTP latency is labelled by
//! route template (never a host id), `/metrics` needs a token and shows the token's
//! organisation only, and the plain `metrics_listen` address needs none and shows
//! every organisation.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{Request, StatusCode};
use chrono::Utc;
use http_body_util::BodyExt;
use patchctl_proto::access::Role;
use patchctl_proto::agent::{
    CommandWaitRequest, EnrollRequest, HeartbeatRequest, Metrics, SystemInfo,
};
use patchctl_proto::command::{CommandResult, ResultStatus};
use patchctl_proto::scan::{ScanBody, ScanState, ScanUpload};
use patchctl_proto::{PROTOCOL_VERSION, Secret};
use patchctl_server::Settings;
use patchctl_server::bootstrap::{OrgSecrets, create_org};
use patchctl_storage::{NewApiToken, NewUser, Storage};
use serde_json::{Value, json};

/// The agent version one host reports: a quote, a backslash and a line feed, which the
/// text format must escape.
const ODD_VERSION: &str = "2.0 \"rc\"\\x\nnext";

struct Platform {
    _dir: tempfile::TempDir,
    addr: SocketAddr,
    plain: SocketAddr,
    ca: PathBuf,
    store: Arc<dyn Storage>,
}

async fn platform() -> Platform {
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
    let plain_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let plain = plain_listener.local_addr().unwrap();
    tokio::spawn(patchctl_server::launch_with_listeners(
        settings,
        listener,
        Some(plain_listener),
        std::future::pending(),
    ));
    Platform {
        _dir: dir,
        addr,
        plain,
        ca: pki.ca_cert,
        store,
    }
}

/// One answer: status, `Content-Type`, body text.
struct Resp {
    status: StatusCode,
    content_type: String,
    text: String,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|_| panic!("not JSON: {}", self.text))
    }
}

async fn send<S>(
    stream: S,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    body: Option<String>,
) -> Resp
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
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
    let content_type = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    Resp {
        status,
        content_type,
        text: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// One request to the platform at `addr` over a new TLS connection.
async fn tls_req(
    addr: SocketAddr,
    ca: &std::path::Path,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    body: Option<Value>,
) -> Resp {
    let tls = patchctl_net::client_config(Some(ca)).unwrap();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let stream = tokio_rustls::TlsConnector::from(tls)
        .connect(name, tcp)
        .await
        .unwrap();
    send(stream, method, path, bearer, body.map(|b| b.to_string())).await
}

impl Platform {
    /// One request over a new TLS connection.
    async fn req(
        &self,
        method: &str,
        path: &str,
        bearer: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        tls_req(self.addr, &self.ca, method, path, bearer, body).await
    }

    /// `GET /metrics` on the plain listener, without a token.
    async fn plain_metrics(&self) -> Resp {
        let tcp = tokio::net::TcpStream::connect(self.plain).await.unwrap();
        send(tcp, "GET", "/metrics", None, None).await
    }

    async fn org(&self, name: &str) -> OrgSecrets {
        create_org(self.store.as_ref(), name).await.unwrap()
    }

    /// Enrolls `hostname` reporting `version`: host id and credential.
    async fn enroll(&self, key: &str, hostname: &str, version: &str) -> (String, String) {
        let req = EnrollRequest {
            protocol_version: PROTOCOL_VERSION,
            license_key: Secret::new(key.to_owned()),
            agent_version: version.into(),
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
                Some(serde_json::to_value(&req).unwrap()),
            )
            .await;
        assert!(r.status.is_success(), "{}", r.text);
        let v = r.json();
        (
            v["host_id"].as_str().unwrap().to_owned(),
            v["credential"].as_str().unwrap().to_owned(),
        )
    }

    /// One heartbeat: the commands handed out.
    async fn heartbeat(&self, credential: &str, version: &str) -> Vec<Value> {
        let hb = HeartbeatRequest {
            agent_version: version.into(),
            metrics: Metrics::default(),
            agent_target: None,
            update_events: Vec::new(),
            trial: false,
            reboot: None,
            booted_at: None,
            command_key_id: None,
            approvers_serial: None,
        };
        let r = self
            .req(
                "POST",
                "/api/v1/agent/heartbeat",
                Some(credential),
                Some(serde_json::to_value(&hb).unwrap()),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        r.json()["commands"].as_array().cloned().unwrap_or_default()
    }

    async fn scan(&self, credential: &str, digest: &str, body: ScanBody) {
        let upload = ScanUpload {
            scanned_at: Utc::now(),
            digest: digest.to_owned(),
            body,
            reboot: None,
        };
        let r = self
            .req(
                "POST",
                "/api/v1/agent/scan",
                Some(credential),
                Some(serde_json::to_value(&upload).unwrap()),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }

    async fn result(&self, credential: &str, command_id: &str) {
        let now = Utc::now();
        let result = CommandResult {
            command_id: command_id.parse().unwrap(),
            status: ResultStatus::Succeeded,
            summary: "ok".into(),
            started_at: now,
            finished_at: now,
            output: None,
        };
        let r = self
            .req(
                "POST",
                "/api/v1/agent/results",
                Some(credential),
                Some(json!({ "results": [result] })),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }

    async fn queue(&self, token: &str, host: &str) -> String {
        let r = self
            .req(
                "POST",
                "/api/v1/commands",
                Some(token),
                Some(json!({"host": host, "kind": "health_check"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        r.json()["id"].as_str().unwrap().to_owned()
    }
}

/// The value of the sample written exactly as `series` (name and labels), if any.
fn value(page: &str, series: &str) -> Option<f64> {
    page.lines().find_map(|l| {
        l.strip_prefix(series)
            .and_then(|rest| rest.strip_prefix(' '))
            .map(|v| v.parse().unwrap())
    })
}

#[track_caller]
fn expect(page: &str, series: &str, want: f64) {
    assert_eq!(value(page, series), Some(want), "{series} in:\n{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_families_follow_agent_traffic() {
    let p = platform().await;
    let m = p.org("metrics-org").await;
    let other = p.org("other-org").await;
    let tok = m.token.expose();
    let (a_id, a) = p.enroll(m.enrollment_key.expose(), "web-a", "1.0.0").await;
    let (b_id, b) = p.enroll(m.enrollment_key.expose(), "web-b", "1.0.0").await;
    let (_, o) = p
        .enroll(other.enrollment_key.expose(), "elsewhere", "1.0.0")
        .await;

    // 3 heartbeats from a (with the odd version), 2 from b, 1 from the other org.
    for _ in 0..3 {
        p.heartbeat(&a, ODD_VERSION).await;
    }
    for _ in 0..2 {
        p.heartbeat(&b, "1.0.0").await;
    }
    p.heartbeat(&o, "1.0.0").await;
    // a: a full scan, then the same state unchanged.
    let mut state = ScanState {
        system: SystemInfo {
            hostname: "web-a".into(),
            ..Default::default()
        },
        package_manager: Some("dpkg".into()),
        packages: vec![patchctl_proto::scan::PackageRow(
            "openssl".into(),
            "3.0.0".into(),
            "amd64".into(),
            String::new(),
            String::new(),
            String::new(),
        )],
        updates: None,
    };
    state.canonicalize();
    let digest = state.digest();
    p.scan(
        &a,
        &digest,
        ScanBody::Full {
            state: state.clone(),
        },
    )
    .await;
    p.scan(&a, &digest, ScanBody::Unchanged).await;
    // Commands: two for a (delivered by its next heartbeat, one answered twice), one
    // for b (still queued).
    let c1 = p.queue(tok, &a_id).await;
    p.queue(tok, &a_id).await;
    p.queue(tok, &b_id).await;
    assert_eq!(p.heartbeat(&a, ODD_VERSION).await.len(), 2);
    p.result(&a, &c1).await;
    p.result(&a, &c1).await;
    // A host page by id: its latency must be filed under the route template.
    let shown = p
        .req("GET", &format!("/api/v1/hosts/{a_id}"), Some(tok), None)
        .await;
    assert_eq!(shown.status, StatusCode::OK);
    // The re-correlation after the scan runs in the background.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let r = p.req("GET", "/metrics", Some(tok), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(
        r.content_type.starts_with("text/plain; version=0.0.4"),
        "{}",
        r.content_type
    );
    let page = r.text;
    let org = "org=\"metrics-org\"";
    expect(
        &page,
        &format!("patchctl_hosts{{{org},status=\"online\"}}"),
        2.0,
    );
    expect(
        &page,
        &format!("patchctl_hosts{{{org},status=\"offline\"}}"),
        0.0,
    );
    expect(
        &page,
        &format!("patchctl_hosts{{{org},status=\"pending\"}}"),
        0.0,
    );
    expect(
        &page,
        &format!("patchctl_hosts{{{org},status=\"revoked\"}}"),
        0.0,
    );
    expect(
        &page,
        &format!("patchctl_hosts_by_agent_version{{{org},version=\"2.0 \\\"rc\\\"\\\\x\\nnext\"}}"),
        1.0,
    );
    expect(
        &page,
        &format!("patchctl_hosts_by_agent_version{{{org},version=\"1.0.0\"}}"),
        1.0,
    );
    expect(
        &page,
        &format!("patchctl_commands{{{org},state=\"queued\"}}"),
        1.0,
    );
    expect(
        &page,
        &format!("patchctl_commands{{{org},state=\"delivered\"}}"),
        1.0,
    );
    expect(
        &page,
        &format!("patchctl_commands{{{org},state=\"succeeded\"}}"),
        1.0,
    );
    expect(
        &page,
        &format!("patchctl_command_queue_depth{{{org}}}"),
        1.0,
    );
    // Counters are the process's: every organisation's traffic.
    expect(&page, "patchctl_agent_heartbeats_total", 7.0);
    expect(&page, "patchctl_agent_scans_total{body=\"full\"}", 1.0);
    expect(&page, "patchctl_agent_scans_total{body=\"unchanged\"}", 1.0);
    expect(&page, "patchctl_agent_scans_total{body=\"delta\"}", 0.0);
    expect(&page, "patchctl_agent_inventories_total", 0.0);
    expect(
        &page,
        "patchctl_command_results_total{outcome=\"stored\"}",
        1.0,
    );
    expect(
        &page,
        "patchctl_command_results_total{outcome=\"duplicate\"}",
        1.0,
    );
    // The token sees its own organisation only.
    assert!(!page.contains("other-org"), "{page}");
    // HTTP: by template, never by host id.
    expect(
        &page,
        "patchctl_http_request_duration_seconds_count{route=\"/api/v1/agent/heartbeat\",method=\"POST\",status=\"2xx\"}",
        7.0,
    );
    expect(
        &page,
        "patchctl_http_request_duration_seconds_count{route=\"/api/v1/hosts/{host}\",method=\"GET\",status=\"2xx\"}",
        1.0,
    );
    assert!(!page.contains(&a_id), "a host id became a label:\n{page}");
    expect(&page, "patchctl_http_requests_in_flight", 1.0);
    // The engine: loaded, one host correlated (a, the one that sent a scan), and with
    // no vulnerability data imported it is counted as without data, not as safe.
    expect(&page, "patchctl_vuln_engine_ready", 1.0);
    expect(&page, "patchctl_vuln_hosts_correlated", 1.0);
    expect(&page, "patchctl_vuln_hosts_without_data", 1.0);
    expect(&page, "patchctl_vuln_records", 0.0);
    assert!(
        value(
            &page,
            "patchctl_vuln_recorrelation_last_seconds{kind=\"load\"}"
        )
        .is_some(),
        "{page}"
    );
    expect(
        &page,
        "patchctl_vuln_recorrelation_seconds_count{kind=\"host\"}",
        1.0,
    );
    expect(&page, "patchctl_fleet_query_ok", 1.0);

    // The plain listener: no token, every organisation.
    let plain = p.plain_metrics().await;
    assert_eq!(plain.status, StatusCode::OK, "{}", plain.text);
    expect(
        &plain.text,
        "patchctl_hosts{org=\"other-org\",status=\"online\"}",
        1.0,
    );
    expect(
        &plain.text,
        &format!("patchctl_hosts{{{org},status=\"online\"}}"),
        2.0,
    );

    // This node alone in the node registry (SQLite), holding no long-poll; then one
    // long-poll held (a new host, nothing queued for it), counted while it waits and
    // no longer once it has ended.
    expect(&page, "patchctl_nodes_live", 1.0);
    expect(&page, "patchctl_long_polls_waiting", 0.0);
    let (_, poller) = p.enroll(m.enrollment_key.expose(), "poller", "1.0.0").await;
    let wait = CommandWaitRequest {
        wait_secs: 2,
        command_key_id: None,
        approvers_serial: None,
    };
    let held = {
        let (addr, ca, poller) = (p.addr, p.ca.clone(), poller.clone());
        let body = serde_json::to_value(&wait).unwrap();
        tokio::spawn(async move {
            tls_req(
                addr,
                &ca,
                "POST",
                "/api/v1/agent/commands/wait",
                Some(&poller),
                Some(body),
            )
            .await
        })
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    let page = loop {
        let page = p.plain_metrics().await.text;
        if value(&page, "patchctl_long_polls_waiting") == Some(1.0)
            || std::time::Instant::now() > deadline
        {
            break page;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    expect(&page, "patchctl_long_polls_waiting", 1.0);
    expect(&page, "patchctl_nodes_live", 1.0);
    let ended = held.await.unwrap();
    assert_eq!(ended.status, StatusCode::OK, "{}", ended.text);
    expect(
        &p.plain_metrics().await.text,
        "patchctl_long_polls_waiting",
        0.0,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_need_a_token_on_the_main_listener() {
    let p = platform().await;
    let m = p.org("auth-org").await;
    let r = p.req("GET", "/metrics", None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
    assert!(r.text.contains("API token"), "{}", r.text);
    let r = p
        .req("GET", "/metrics", Some("pct_not-a-token"), None)
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
    // The refusals are counted too, under the route template.
    let r = p.req("GET", "/metrics", Some(m.token.expose()), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    expect(
        &r.text,
        "patchctl_http_request_duration_seconds_count{route=\"/metrics\",method=\"GET\",status=\"4xx\"}",
        2.0,
    );
    // An unknown path has no route: one label for all of them.
    p.req("GET", "/no/such/path/123", None, None).await;
    let r = p.plain_metrics().await;
    expect(
        &r.text,
        "patchctl_http_request_duration_seconds_count{route=\"unmatched\",method=\"GET\",status=\"4xx\"}",
        1.0,
    );
    assert!(!r.text.contains("/no/such/path"), "{}", r.text);

    // Any role that may read scrapes (a viewer); the auditor, who reads only the audit
    // trail, is refused with 403.
    let org_id = p.store.org_by_name("auth-org").await.unwrap().unwrap().id;
    for (role, want) in [
        (Role::Viewer, StatusCode::OK),
        (Role::Auditor, StatusCode::FORBIDDEN),
    ] {
        let user = p
            .store
            .create_user(NewUser {
                org_id,
                username: format!("metrics-{role}"),
                password_hash: "unused".into(),
                role,
                now: Utc::now(),
            })
            .await
            .unwrap();
        let token = format!("pct_metrics_{role}_{}", uuid::Uuid::new_v4().simple());
        p.store
            .insert_api_token(NewApiToken {
                org_id,
                user_id: Some(user.id),
                name: "scrape".into(),
                token_hash: patchctl_server::auth::hash_secret(&token),
                read_only: true,
                expires_at: None,
                now: Utc::now(),
            })
            .await
            .unwrap();
        let r = p.req("GET", "/metrics", Some(&token), None).await;
        assert_eq!(r.status, want, "{role}: {}", r.text);
    }
}
