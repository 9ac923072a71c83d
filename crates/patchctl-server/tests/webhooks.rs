//! Webhooks end to end: a real platform (TLS, SQLite) delivers to a receiver that
//! verifies every message with the Standard Webhooks reference library (`standardwebhooks`,
//! Python, in the venv `.ci/run` makes under `/var/cache/patchctl-ci/venv`).
//!
//! * signatures verify with the library, also during a rotation with the old and the
//!   new secret; the secret is shown once and never in list, show or deliveries;
//! * loopback is refused without the allowance, private and link-local always;
//!   a delivery checks its target again (an allowance removed stops it);
//! * retries back off while the receiver is down, and survive a platform restart: the
//!   message arrives once, with the same `webhook-id`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitCode, Stdio};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use http::Method;
use patchctl_net::HttpsClient;
use patchctl_proto::policy::webhooks::{
    Webhook, WebhookDelivery, WebhookEvent, WebhookTestQueued, WebhookWithSecret,
};
use patchctl_server::Settings;
use patchctl_server::bootstrap::create_org;
use patchctl_server::webhooks::{Worker, WorkerConfig};
use patchctl_storage::Storage;
use patchctl_testkit::{Check, Harness, Need, trial};
use serde_json::{Value, json};

const VENV_PYTHON: &str = "/var/cache/patchctl-ci/venv/bin/python";

static VENV: Check = Check {
    what: "the standardwebhooks venv (/var/cache/patchctl-ci/venv)",
    missing: venv_missing,
};

fn venv_missing() -> Option<String> {
    let lib = Path::new("/var/cache/patchctl-ci/venv/lib");
    let found = std::fs::read_dir(lib).ok().is_some_and(|d| {
        d.flatten()
            .any(|e| e.path().join("site-packages/standardwebhooks").is_dir())
    });
    (!(Path::new(VENV_PYTHON).exists() && found)).then(|| {
        "no venv with standardwebhooks: python3 -m venv /var/cache/patchctl-ci/venv && \
         /var/cache/patchctl-ci/venv/bin/pip install standardwebhooks (.ci/run does it)"
            .to_owned()
    })
}

fn main() -> ExitCode {
    let venv = [Need::Check(&VENV)];
    Harness::new()
        .test(
            trial!(async signatures_verify_with_the_reference_library_also_during_rotation)
                .multi_thread(Some(2))
                .needs(venv),
        )
        .test(
            trial!(async loopback_private_and_link_local_targets_are_refused).multi_thread(Some(2)),
        )
        .test(
            trial!(async retries_back_off_while_the_receiver_is_down_and_survive_a_restart)
                .multi_thread(Some(2))
                .needs(venv),
        )
        .run()
}

/// A receiver process (killed on drop) and its files.
struct Receiver {
    child: Child,
    secrets: PathBuf,
    log: PathBuf,
}

impl Receiver {
    fn start(dir: &Path, port: u16) -> Receiver {
        let secrets = dir.join("secrets.json");
        let log = dir.join("received.jsonl");
        if !secrets.exists() {
            std::fs::write(&secrets, "[]").unwrap();
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/webhook_receiver.py");
        #[allow(clippy::disallowed_methods)] // Test harness: the receiver, not agent code.
        let mut child = std::process::Command::new(VENV_PYTHON)
            .arg(script)
            .arg(port.to_string())
            .arg(&secrets)
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("start the receiver");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Receiver {
                    child,
                    secrets,
                    log,
                };
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("the receiver did not listen on {port}");
    }

    fn set_secrets(&self, secrets: &[&str]) {
        std::fs::write(&self.secrets, serde_json::to_string(secrets).unwrap()).unwrap();
    }

    fn received(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Waits up to 20 s for a delivery of `id`.
    async fn wait_for(&self, id: &str) -> Value {
        for _ in 0..200 {
            if let Some(v) = self.received().into_iter().find(|v| v["id"] == id) {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no delivery of {id}; received {:?}", self.received());
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free loopback port (bound and let go).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A platform: its settings, database and operator client.
struct Env {
    dir: tempfile::TempDir,
    settings: Settings,
    store: Arc<dyn Storage>,
    token: String,
    enrollment_key: String,
    org_id: uuid::Uuid,
    ca: PathBuf,
}

async fn env(allow: &[&str]) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("db.sqlite").display());
    let store = patchctl_storage::open(&url).await.unwrap();
    let pki = patchctl_net::ensure_dev_pki(
        &dir.path().join("pki"),
        &["localhost".into(), "127.0.0.1".into()],
    )
    .unwrap();
    let settings = Settings {
        vuln_sync: false,
        webhook_allow_networks: allow.iter().map(|c| c.parse().unwrap()).collect(),
        webhook_retry_base_secs: 1,
        ..Settings::with_defaults(
            "127.0.0.1:0".parse().unwrap(),
            url,
            pki.server_cert.clone(),
            pki.server_key.clone(),
        )
    };
    let org = create_org(store.as_ref(), "hooks").await.unwrap();
    let org_id = store.org_by_name("hooks").await.unwrap().unwrap().id;
    Env {
        dir,
        settings,
        store,
        token: org.token.expose().to_owned(),
        enrollment_key: org.enrollment_key.expose().to_owned(),
        org_id,
        ca: pki.ca_cert.clone(),
    }
}

/// A running platform; stops when `stop` is sent (or dropped).
struct Running {
    addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Env {
    async fn launch(&self) -> Running {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, rx) = tokio::sync::oneshot::channel::<()>();
        let settings = self.settings.clone();
        let task = tokio::spawn(async move {
            patchctl_server::launch_with_listener(settings, listener, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        Running { addr, stop, task }
    }

    fn client(&self, r: &Running) -> HttpsClient {
        let tls = patchctl_net::tls::client_config(Some(&self.ca)).unwrap();
        HttpsClient::new(&format!("https://127.0.0.1:{}", r.addr.port()), tls).unwrap()
    }

    async fn api<T: serde::de::DeserializeOwned>(
        &self,
        r: &Running,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<T, patchctl_net::ClientError> {
        self.client(r)
            .json(method, path, Some(&self.token), body.as_ref())
            .await
    }

    async fn deliveries(&self, r: &Running, hook: &str) -> Vec<WebhookDelivery> {
        self.api(
            r,
            Method::GET,
            &format!("/api/v1/webhooks/{hook}/deliveries"),
            None,
        )
        .await
        .unwrap()
    }
}

impl Running {
    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = tokio::time::timeout(Duration::from_secs(10), self.task).await;
    }
}

async fn signatures_verify_with_the_reference_library_also_during_rotation() {
    let env = env(&["127.0.0.0/8"]).await;
    let platform = env.launch().await;
    let port = free_port();
    let receiver = Receiver::start(env.dir.path(), port);
    let created: WebhookWithSecret = env
        .api(
            &platform,
            Method::POST,
            "/api/v1/webhooks",
            Some(json!({"name": "ops", "url": format!("http://127.0.0.1:{port}/hook")})),
        )
        .await
        .unwrap();
    let s1 = created.secret.expose().to_owned();
    assert!(s1.starts_with("whsec_"));
    receiver.set_secrets(&[&s1]);
    // The secret is never shown again.
    let list: Value = env
        .api(&platform, Method::GET, "/api/v1/webhooks", None)
        .await
        .unwrap();
    let show: Value = env
        .api(&platform, Method::GET, "/api/v1/webhooks/ops", None)
        .await
        .unwrap();
    assert!(!list.to_string().contains(&s1) && !show.to_string().contains(&s1));
    assert_eq!(show["name"], "ops");

    // A test message, and a real event: both verified by the library with the secret.
    let q: WebhookTestQueued = env
        .api(&platform, Method::POST, "/api/v1/webhooks/ops/test", None)
        .await
        .unwrap();
    let got = receiver.wait_for(&q.message_id).await;
    assert_eq!(got["verified"], json!([true]), "{got}");
    assert_eq!(got["type"], "webhook.test");
    assert_eq!(got["path"], "/hook");
    let host = uuid::Uuid::new_v4();
    env.store
        .enqueue_event(
            env.org_id,
            &WebhookEvent::HostRevoked {
                host_id: host,
                hostname: "web-1".into(),
            },
            Utc::now().timestamp_millis(),
        )
        .await
        .unwrap();
    let d = loop_until(|| async {
        env.deliveries(&platform, "ops")
            .await
            .into_iter()
            .find(|d| d.event_type == "host.revoked" && d.attempts > 0)
    })
    .await;
    let got = receiver.wait_for(&d.message_id).await;
    assert_eq!(
        (got["type"].as_str(), &got["verified"]),
        (Some("host.revoked"), &json!([true]))
    );

    // The platform's own events: an enrollment and a revocation through the real API.
    let enrolled: Value = env
        .client(&platform)
        .json(
            Method::POST,
            "/api/v1/agent/enroll",
            None,
            Some(&patchctl_proto::agent::EnrollRequest {
                protocol_version: patchctl_proto::PROTOCOL_VERSION,
                license_key: patchctl_proto::Secret::new(env.enrollment_key.clone()),
                agent_version: "test".into(),
                system: patchctl_proto::agent::SystemInfo {
                    hostname: "web-9".into(),
                    ..Default::default()
                },
            }),
        )
        .await
        .unwrap();
    let host_id = enrolled["host_id"].as_str().unwrap().to_owned();
    let credential = enrolled["credential"].as_str().unwrap().to_owned();
    // Two commands, one succeeds and one fails: command.succeeded and command.failed.
    let mut ids = Vec::new();
    for name in ["dpkg", "nope"] {
        let c: Value = env
            .api(
                &platform,
                Method::POST,
                "/api/v1/commands",
                Some(
                    json!({"host": host_id, "kind": "get_package_info", "params": {"name": name}}),
                ),
            )
            .await
            .unwrap();
        ids.push(c["id"].as_str().unwrap().to_owned());
    }
    let hb = json!({"agent_version": "t", "metrics": {"cpu_percent": 1.5, "load": [0.1, 0.2, 0.3], "mem_used_bytes": 1, "mem_total_bytes": 2, "swap_used_bytes": 0, "swap_total_bytes": 0, "disks": [], "uptime_secs": 5}});
    let beat: Value = env
        .client(&platform)
        .json(
            Method::POST,
            "/api/v1/agent/heartbeat",
            Some(&credential),
            Some(&hb),
        )
        .await
        .unwrap();
    assert_eq!(beat["commands"].as_array().unwrap().len(), 2, "{beat}");
    let now = Utc::now().to_rfc3339();
    let results = json!({"results": [
        {"command_id": ids[0], "status": "succeeded", "summary": "ok", "started_at": now, "finished_at": now},
        {"command_id": ids[1], "status": "failed", "summary": "no such package", "started_at": now, "finished_at": now},
    ]});
    let _: Value = env
        .client(&platform)
        .json(
            Method::POST,
            "/api/v1/agent/results",
            Some(&credential),
            Some(&results),
        )
        .await
        .unwrap();
    let _: Value = env
        .api(
            &platform,
            Method::POST,
            &format!("/api/v1/hosts/{host_id}/revoke"),
            None,
        )
        .await
        .unwrap();
    for kind in [
        "host.enrolled",
        "command.succeeded",
        "command.failed",
        "host.revoked",
    ] {
        let d = loop_until(|| async {
            env.deliveries(&platform, "ops")
                .await
                .into_iter()
                .find(|d| {
                    d.event_type == kind
                        && d.state == patchctl_proto::policy::webhooks::MessageState::Delivered
                })
        })
        .await;
        let got = receiver.wait_for(&d.message_id).await;
        assert_eq!(got["verified"], json!([true]), "{kind}: {got}");
    }

    // Rotation: the new secret shown once; both sign during the grace period.
    let rotated: WebhookWithSecret = env
        .api(
            &platform,
            Method::POST,
            "/api/v1/webhooks/ops/rotate-secret",
            Some(json!({"grace_secs": 3600})),
        )
        .await
        .unwrap();
    let s2 = rotated.secret.expose().to_owned();
    assert_ne!(s1, s2);
    assert!(rotated.webhook.previous_secret_until.is_some());
    receiver.set_secrets(&[&s1, &s2]);
    let q: WebhookTestQueued = env
        .api(&platform, Method::POST, "/api/v1/webhooks/ops/test", None)
        .await
        .unwrap();
    let got = receiver.wait_for(&q.message_id).await;
    assert_eq!(got["verified"], json!([true, true]), "{got}");
    assert_eq!(got["signature"].as_str().unwrap().split(' ').count(), 2);
    // A rotation without grace: only the new secret signs.
    let rotated: WebhookWithSecret = env
        .api(
            &platform,
            Method::POST,
            "/api/v1/webhooks/ops/rotate-secret",
            Some(json!({"grace_secs": 0})),
        )
        .await
        .unwrap();
    let s3 = rotated.secret.expose().to_owned();
    receiver.set_secrets(&[&s2, &s3]);
    let q: WebhookTestQueued = env
        .api(&platform, Method::POST, "/api/v1/webhooks/ops/test", None)
        .await
        .unwrap();
    let got = receiver.wait_for(&q.message_id).await;
    assert_eq!(got["verified"], json!([false, true]), "{got}");
    // The log shows each delivered message; no secret anywhere in it.
    let log: Value = env
        .api(
            &platform,
            Method::GET,
            "/api/v1/webhooks/ops/deliveries",
            None,
        )
        .await
        .unwrap();
    for s in [&s1, &s2, &s3] {
        assert!(!log.to_string().contains(s.as_str()));
    }
    assert!(
        log.as_array()
            .unwrap()
            .iter()
            .all(|d| d["state"] == "delivered")
    );
    platform.stop().await;
}

async fn loop_until<T, F, Fut>(mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    for _ in 0..200 {
        if let Some(v) = f().await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("gave up waiting");
}

async fn loopback_private_and_link_local_targets_are_refused() {
    let env = env(&[]).await;
    let platform = env.launch().await;
    for (url, class) in [
        ("http://127.0.0.1:9/hook", "loopback"),
        ("https://127.0.0.1/hook", "loopback"),
        ("https://[::1]/hook", "loopback"),
        ("https://localhost/hook", "loopback"),
        ("https://10.1.2.3/hook", "private"),
        ("https://192.168.1.1/hook", "private"),
        ("https://100.64.0.1/hook", "private"),
        ("https://[fd00::1]/hook", "private"),
        ("https://169.254.169.254/latest/meta-data", "link-local"),
        ("https://[fe80::1]/hook", "link-local"),
        ("https://0.0.0.0/hook", "unspecified"),
        ("https://224.0.0.1/hook", "multicast"),
    ] {
        let e = env
            .api::<Value>(
                &platform,
                Method::POST,
                "/api/v1/webhooks",
                Some(json!({"name": "x", "url": url})),
            )
            .await
            .unwrap_err();
        assert_eq!(e.status(), Some(400), "{url}: {e}");
        let text = e.to_string();
        assert!(
            text.contains(class) && text.contains("webhook_allow_networks"),
            "{url}: {text}"
        );
    }
    // Plain http to a global address: refused, https is the way.
    let e = env
        .api::<Value>(
            &platform,
            Method::POST,
            "/api/v1/webhooks",
            Some(json!({"name": "x", "url": "ftp://hooks.example/"})),
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("https://"), "{e}");
    assert!(
        env.store
            .list_webhooks(env.org_id)
            .await
            .unwrap()
            .is_empty()
    );
    platform.stop().await;

    // With loopback allowed the subscription is created; a node without the allowance
    // refuses at delivery time and connects nowhere.
    let allowed = Env {
        settings: Settings {
            webhook_allow_networks: vec!["127.0.0.0/8".parse().unwrap()],
            ..env.settings.clone()
        },
        ..env
    };
    let platform = allowed.launch().await;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let w: WebhookWithSecret = allowed
        .api(
            &platform,
            Method::POST,
            "/api/v1/webhooks",
            Some(json!({"name": "local", "url": format!("http://127.0.0.1:{port}/"), "enabled": false})),
        )
        .await
        .unwrap();
    let hook: Webhook = allowed
        .api(
            &platform,
            Method::PUT,
            "/api/v1/webhooks/local",
            Some(json!({"url": "https://10.0.0.1/"})),
        )
        .await
        .map(|_: Webhook| panic!("a private URL was accepted on update"))
        .unwrap_or_else(|e| {
            assert_eq!(e.status(), Some(400));
            w.webhook.clone()
        });
    assert!(!hook.enabled);
    platform.stop().await;
    allowed
        .store
        .update_webhook(
            allowed.org_id,
            hook.id,
            &patchctl_storage::WebhookChange {
                enabled: Some(true),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let q = allowed
        .store
        .enqueue_webhook_message(
            allowed.org_id,
            hook.id,
            "webhook.test",
            "{}",
            Utc::now().timestamp_millis(),
        )
        .await
        .unwrap()
        .unwrap();
    let strict = Worker::new(
        &WorkerConfig {
            allow: Vec::new(),
            ..allowed.settings.webhook_config()
        },
        allowed.store.clone(),
    )
    .unwrap();
    let report = strict.tick(Utc::now()).await.unwrap();
    assert_eq!((report.delivered, report.retrying), (0, 1));
    assert!(
        listener.accept().is_err(),
        "the refused target was connected to"
    );
    let page = allowed
        .store
        .webhook_deliveries(allowed.org_id, hook.id, None, 10)
        .await
        .unwrap();
    let d = page.items.iter().find(|d| d.message_id == q).unwrap();
    let err = d.log[0].error.clone().unwrap();
    assert!(err.contains("loopback"), "{err}");
}

async fn retries_back_off_while_the_receiver_is_down_and_survive_a_restart() {
    let env = env(&["127.0.0.0/8"]).await;
    let port = free_port();
    let a = env.launch().await;
    let created: WebhookWithSecret = env
        .api(
            &a,
            Method::POST,
            "/api/v1/webhooks",
            Some(json!({"name": "down", "url": format!("http://127.0.0.1:{port}/")})),
        )
        .await
        .unwrap();
    let q: WebhookTestQueued = env
        .api(&a, Method::POST, "/api/v1/webhooks/down/test", None)
        .await
        .unwrap();
    // Nobody listens: attempts fail and the waits double (base 1 s here, ±10 %).
    let d = loop_until(|| async {
        env.deliveries(&a, "down")
            .await
            .into_iter()
            .find(|d| d.message_id == q.message_id && d.attempts >= 3)
    })
    .await;
    assert_eq!(
        d.state,
        patchctl_proto::policy::webhooks::MessageState::Pending
    );
    assert!(
        d.log
            .iter()
            .all(|l| l.status.is_none() && l.error.is_some())
    );
    let last = d.log.last().unwrap().at;
    let wait = d.next_attempt_at.unwrap() - last;
    let expected = 1000 * (1 << (d.attempts - 1));
    assert!(
        wait.num_milliseconds() >= expected * 9 / 10
            && wait.num_milliseconds() <= expected * 11 / 10 + 1,
        "attempt {} waits {wait} (expected about {expected} ms)",
        d.attempts
    );
    let gaps: Vec<i64> = d
        .log
        .windows(2)
        .map(|w| (w[1].at - w[0].at).num_milliseconds())
        .collect();
    // Attempt i+1 comes no earlier than its doubled wait (−10 %); the worker looks once
    // a second, so a gap may be up to a second longer than the wait (a 1 s and a 2 s
    // wait can both show as 2 s gaps): compare each gap with its own wait, not with the
    // gap before it.
    for (i, gap) in gaps.iter().enumerate() {
        let wait = 1000 * (1i64 << i);
        assert!(
            *gap >= wait * 9 / 10 && *gap <= wait + 5_000,
            "attempt {} came {gap} ms after the one before; its wait is {wait} ms: {gaps:?}",
            i + 2
        );
    }
    // The platform stops; the receiver comes up; a new platform process on the same
    // database delivers the message, once, with the same webhook-id.
    a.stop().await;
    let receiver = Receiver::start(env.dir.path(), port);
    receiver.set_secrets(&[created.secret.expose()]);
    let b = env.launch().await;
    let got = receiver.wait_for(&q.message_id).await;
    assert_eq!(got["verified"], json!([true]));
    tokio::time::sleep(Duration::from_secs(3)).await;
    let times = receiver
        .received()
        .iter()
        .filter(|v| v["id"] == q.message_id.as_str())
        .count();
    assert_eq!(times, 1, "delivered {times} times");
    let d = env
        .deliveries(&b, "down")
        .await
        .into_iter()
        .find(|d| d.message_id == q.message_id)
        .unwrap();
    assert_eq!(
        d.state,
        patchctl_proto::policy::webhooks::MessageState::Delivered
    );
    assert_eq!(d.log.last().unwrap().status, Some(204));
    b.stop().await;
}
