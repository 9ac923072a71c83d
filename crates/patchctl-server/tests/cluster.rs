//! Commands in seconds and several nodes on one database (issue 16 §2, §3), with real
//! platform nodes (`launch_with_listener`, each its own state: long-polls, credential
//! cache, CVE engine) over real TLS 1.3 on loopback, driven by the agent's own HTTPS
//! client:
//!
//! - one node on SQLite: a long-poll ends as soon as a command is queued, a command
//!   queued between two long-polls is not missed, the wait ends empty at its time, and
//!   a node with long-polls switched off says so;
//! - three nodes on one PostgreSQL database (a fresh database of
//!   `PATCHCTL_TEST_POSTGRES_URL`; skipped with the reason without it, a failure under
//!   `CI=true`): a command queued through one node wakes the long-poll another holds;
//!   commands leased concurrently through every node are each delivered once; a scan
//!   stored by one node gives the same findings on all three; a host revoked through
//!   one is refused by the other two at once, although both had its credential cached.
//!
//! - the enrollment limit per key holds for the three nodes together, not per node;
//! - the in-memory limits (per agent credential, per enrollment source address) hold
//!   for the three nodes together too: each node counts the live nodes in the node
//!   registry and admits a third; a node that stops gives its share back at once.
//!
//! The same checks with three `patchctl server` processes are in
//! `crates/patchctl/tests/nodes.rs`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use http::Method;
use patchctl_net::client::{ClientError, HttpsClient};
use patchctl_proto::PROTOCOL_VERSION;
use patchctl_proto::agent::{
    CommandWaitRequest, CommandWaitResponse, EnrollRequest, EnrollResponse, HeartbeatRequest,
    HeartbeatResponse, InstalledPackage, OsInfo, SystemInfo,
};
use patchctl_proto::scan::{PackageRow, ScanAck, ScanBody, ScanState, ScanUpdates, ScanUpload};
use patchctl_server::Settings;
use patchctl_server::bootstrap::{OrgSecrets, create_org};
use patchctl_storage::Storage;
use patchctl_testkit::{Harness, Need, trial};
use serde_json::{Value, json};
use uuid::Uuid;

fn main() -> ExitCode {
    Harness::new()
        .test(trial!(async sqlite_long_poll).multi_thread(Some(2)))
        .test(
            trial!(async postgres_three_nodes)
                .multi_thread(Some(2))
                .needs([Need::Postgres]),
        )
        .test(
            trial!(async postgres_enrollment_limit_is_shared)
                .multi_thread(Some(2))
                .needs([Need::Postgres]),
        )
        .test(
            trial!(async postgres_nodes_share_the_in_memory_limits)
                .multi_thread(Some(2))
                .needs([Need::Postgres]),
        )
        .run()
}

/// A running node and clients of it.
struct Node {
    addr: SocketAddr,
    ca: std::path::PathBuf,
    /// Dropping or sending stops the node (after its `drain_secs`).
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Node {
    fn client(&self) -> HttpsClient {
        let tls = patchctl_net::client_config(Some(&self.ca)).unwrap();
        HttpsClient::new(&format!("https://localhost:{}", self.addr.port()), tls)
            .unwrap()
            .with_timeout(Duration::from_secs(60))
    }
}

/// Starts a node on `url` with the shared PKI and key file in `dir`.
async fn node(url: &str, dir: &Path, tweak: impl FnOnce(&mut Settings)) -> Node {
    let pki =
        patchctl_net::ensure_dev_pki(&dir.join("pki"), &["localhost".into(), "127.0.0.1".into()])
            .unwrap();
    let mut settings = Settings {
        metrics_history_len: 10,
        policy_tick_secs: 86_400,
        enroll_per_address_per_min: 1_000,
        enroll_per_key_per_min: 1_000,
        // The exactly-once check sends ~80 requests with one credential in seconds;
        // three nodes divide the limit between them.
        agent_per_credential_per_min: 1_000,
        vuln_sync: false,
        command_signing_key: Some(dir.join("command-signing.key")),
        ..Settings::with_defaults(
            "127.0.0.1:0".parse().unwrap(),
            url,
            pki.server_cert.clone(),
            pki.server_key.clone(),
        )
    };
    tweak(&mut settings);
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.await;
        };
        if let Err(e) = patchctl_server::launch_with_listener(settings, listener, shutdown).await {
            panic!("node did not start: {e}");
        }
    });
    let n = Node {
        addr,
        ca: pki.ca_cert,
        stop: Some(stop),
    };
    // Ready when it answers.
    let c = n.client();
    let deadline = Instant::now() + Duration::from_secs(30);
    while c
        .json::<(), Value>(Method::GET, "/api/v1/health", None, None)
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "node {addr} never answered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    n
}

fn system(hostname: &str) -> SystemInfo {
    SystemInfo {
        hostname: hostname.into(),
        kernel: "6.1.0-28-amd64".into(),
        os: OsInfo {
            id: "debian".into(),
            version_id: "12".into(),
            pretty_name: "Debian 12".into(),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// Enrolls a host through `node`; returns (host id, credential).
async fn enroll(node: &Node, org: &OrgSecrets, hostname: &str) -> (Uuid, String) {
    let resp: EnrollResponse = node
        .client()
        .json(
            Method::POST,
            "/api/v1/agent/enroll",
            None,
            Some(&EnrollRequest {
                protocol_version: PROTOCOL_VERSION,
                license_key: org.enrollment_key.clone(),
                agent_version: "1.0.0".into(),
                system: system(hostname),
            }),
        )
        .await
        .unwrap();
    (resp.host_id, resp.credential.expose().to_owned())
}

async fn heartbeat(c: &HttpsClient, cred: &str) -> Result<HeartbeatResponse, ClientError> {
    c.json(
        Method::POST,
        "/api/v1/agent/heartbeat",
        Some(cred),
        Some(&HeartbeatRequest {
            agent_version: "1.0.0".into(),
            metrics: Default::default(),
            agent_target: None,
            update_events: vec![],
            trial: false,
            reboot: None,
            booted_at: None,
            command_key_id: None,
            approvers_serial: None,
        }),
    )
    .await
}

async fn long_poll(
    c: &HttpsClient,
    cred: &str,
    wait_secs: u32,
) -> Result<CommandWaitResponse, ClientError> {
    c.json(
        Method::POST,
        "/api/v1/agent/commands/wait",
        Some(cred),
        Some(&CommandWaitRequest {
            wait_secs,
            command_key_id: None,
            approvers_serial: None,
        }),
    )
    .await
}

/// Queues a `health_check` for `host` through `node`; returns the command id.
async fn queue(node: &Node, token: &str, host: Uuid) -> Uuid {
    let rec: Value = node
        .client()
        .json(
            Method::POST,
            "/api/v1/commands",
            Some(token),
            Some(&json!({"host": host.to_string(), "kind": "health_check"})),
        )
        .await
        .unwrap();
    rec["id"].as_str().unwrap().parse().unwrap()
}

async fn sqlite_long_poll() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("db.sqlite").display());
    let store = patchctl_storage::open(&url).await.unwrap();
    let org = create_org(store.as_ref(), "acme").await.unwrap();
    let n = node(&url, dir.path(), |_| {}).await;
    let token = org.token.expose().to_owned();
    let (host, cred) = enroll(&n, &org, "lp-1").await;
    let agent = n.client();
    heartbeat(&agent, &cred).await.unwrap();

    // A long-poll held; a command queued 300 ms later ends it at once.
    let started = Instant::now();
    let poll = {
        let (agent, cred) = (agent.clone(), cred.clone());
        tokio::spawn(async move { long_poll(&agent, &cred, 60).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let queued_at = Instant::now();
    let id = queue(&n, &token, host).await;
    let got = poll.await.unwrap().unwrap();
    let latency = queued_at.elapsed();
    assert_eq!(got.commands.len(), 1, "{got:?}");
    assert_eq!(got.commands[0].id, id);
    assert_eq!(got.waited_max_secs, 240, "the node's default hold");
    assert!(
        latency < Duration::from_secs(3),
        "the command took {latency:?} to reach the long-poll"
    );
    assert!(started.elapsed() < Duration::from_secs(10));

    // A command queued while no long-poll is held is handed to the next one at once.
    let id2 = queue(&n, &token, host).await;
    let t = Instant::now();
    let got = long_poll(&agent, &cred, 60).await.unwrap();
    assert_eq!(
        got.commands.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![id2]
    );
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());

    // Nothing queued: the wait ends empty at its time.
    let t = Instant::now();
    let got = long_poll(&agent, &cred, 1).await.unwrap();
    assert!(got.commands.is_empty(), "{got:?}");
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "{took:?}"
    );

    // A node with long-polls switched off answers at once and says so.
    let off = node(&url, dir.path(), |s| s.long_poll_max_secs = 0).await;
    let t = Instant::now();
    let got = long_poll(&off.client(), &cred, 60).await.unwrap();
    assert_eq!(got.waited_max_secs, 0);
    assert!(got.commands.is_empty());
    assert!(t.elapsed() < Duration::from_secs(3));

    // An unknown credential is refused, as on every agent route.
    let e = long_poll(&agent, "pc_agent_nope", 1).await.unwrap_err();
    assert_eq!(e.status(), Some(401), "{e}");

    // Readiness and liveness; a stopping node drains: not ready, its long-polls end
    // at once with no command, and it still serves until the drain is over.
    let mut draining = node(&url, dir.path(), |s| s.drain_secs = 3).await;
    let c = draining.client();
    let ready: Value = c
        .json(Method::GET, "/api/v1/health/ready", None, None::<&()>)
        .await
        .unwrap();
    assert_eq!(ready["status"], "ready", "{ready}");
    assert_eq!(ready["database"], "ok", "{ready}");
    let poll = {
        let (c, cred) = (c.clone(), cred.clone());
        tokio::spawn(async move { long_poll(&c, &cred, 60).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t = Instant::now();
    draining.stop.take().unwrap().send(()).unwrap();
    let got = poll.await.unwrap().unwrap();
    assert!(got.commands.is_empty());
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    let e = c
        .json::<(), Value>(Method::GET, "/api/v1/health/ready", None, None)
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(503), "{e}");
    assert!(e.to_string().contains("draining"), "{e}");
    let live: Value = c
        .json(Method::GET, "/api/v1/health/live", None, None::<&()>)
        .await
        .unwrap();
    assert_eq!(live["status"], "ok");
}

fn record(id: &str, package: &str, fixed: &str) -> patchctl_vuln::Record {
    patchctl_vuln::Record {
        id: id.into(),
        aliases: vec![],
        summary: format!("{package} issue"),
        severity: Some("high".into()),
        cvss_vector: None,
        published: None,
        modified: None,
        withdrawn: false,
        exploited: None,
        affected: vec![patchctl_vuln::Affected {
            ecosystem: "Debian:12".into(),
            package: package.into(),
            introduced: None,
            last_affected: None,
            status: patchctl_vuln::Status::Fixed {
                fixed_version: fixed.into(),
            },
            note: None,
            severity: None,
        }],
    }
}

fn scan_upload(hostname: &str) -> ScanUpload {
    let mut s = ScanState {
        system: system(hostname),
        package_manager: Some("dpkg".into()),
        packages: vec![PackageRow::from_package(&InstalledPackage {
            name: "openssh-server".into(),
            version: "1:9.2p1-2+deb12u2".into(),
            arch: "amd64".into(),
            source_name: Some("openssh".into()),
            source_version: Some("1:9.2p1-2+deb12u2".into()),
            status: "installed".into(),
        })],
        updates: Some(ScanUpdates {
            refreshed: true,
            updates: vec![],
            removals: vec![],
            error: None,
        }),
    };
    s.canonicalize();
    ScanUpload {
        scanned_at: Utc::now(),
        digest: s.digest(),
        body: ScanBody::Full { state: s },
        reboot: None,
    }
}

async fn postgres_three_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let url = patchctl_testkit::scratch_postgres("patchctl_cluster").await;
    let store: Arc<dyn Storage> = patchctl_storage::open(&url).await.unwrap();
    let org = create_org(store.as_ref(), "acme").await.unwrap();
    store
        .import_vuln_records(
            "test",
            &[record("CVE-2024-6387", "openssh", "1:9.2p1-2+deb12u3")],
            Utc::now(),
        )
        .await
        .unwrap();
    // A short lease, so that the exactly-once check also covers redelivery.
    let nodes = [
        node(&url, dir.path(), |_| {}).await,
        node(&url, dir.path(), |_| {}).await,
        node(&url, dir.path(), |_| {}).await,
    ];
    let token = org.token.expose().to_owned();
    let (host, cred) = enroll(&nodes[0], &org, "pg-1").await;

    // 1. Wake-up across nodes: the long-poll is held by node 1, the command queued
    // through node 2.
    let agent1 = nodes[1].client();
    heartbeat(&agent1, &cred).await.unwrap();
    let poll = {
        let (agent, cred) = (agent1.clone(), cred.clone());
        tokio::spawn(async move { long_poll(&agent, &cred, 60).await })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let t = Instant::now();
    let id = queue(&nodes[2], &token, host).await;
    let got = poll.await.unwrap().unwrap();
    assert_eq!(
        got.commands.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![id]
    );
    let latency = t.elapsed();
    assert!(
        latency < Duration::from_secs(3),
        "cross-node wake-up took {latency:?}"
    );

    // 2. Exactly once: 40 commands queued through the three nodes while heartbeats and
    // long-polls of the host lease through all three at once.
    let mut queued = Vec::new();
    for i in 0..40 {
        queued.push(queue(&nodes[i % 3], &token, host).await);
    }
    let mut tasks = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        for k in 0..4 {
            let (c, cred) = (n.client(), cred.clone());
            tasks.push(tokio::spawn(async move {
                let mut got = Vec::new();
                for _ in 0..6 {
                    let ids: Vec<Uuid> = if (i + k) % 2 == 0 {
                        heartbeat(&c, &cred).await.unwrap().commands
                    } else {
                        long_poll(&c, &cred, 1).await.unwrap().commands
                    }
                    .into_iter()
                    .map(|c| c.id)
                    .collect();
                    got.extend(ids);
                }
                got
            }));
        }
    }
    let mut seen: HashMap<Uuid, u32> = HashMap::new();
    for t in tasks {
        for id in t.await.unwrap() {
            *seen.entry(id).or_default() += 1;
        }
    }
    for id in &queued {
        assert_eq!(
            seen.get(id).copied(),
            Some(1),
            "command {id} delivered {:?} times",
            seen.get(id)
        );
    }
    assert_eq!(
        seen.len(),
        queued.len(),
        "only the queued commands: {seen:?}"
    );

    // 3. Findings agree: a scan stored through node 0; every node's engine shows the
    // finding without a scan of its own.
    let ack: ScanAck = nodes[0]
        .client()
        .json(
            Method::POST,
            "/api/v1/agent/scan",
            Some(&cred),
            Some(&scan_upload("pg-1")),
        )
        .await
        .unwrap();
    assert_eq!(ack.packages, 1, "{ack:?}");
    let path = format!("/api/v1/hosts/{host}/vulns");
    let deadline = Instant::now() + Duration::from_secs(20);
    for n in &nodes {
        loop {
            let r: Result<Value, _> = n
                .client()
                .json(Method::GET, &path, Some(&token), None::<&()>)
                .await;
            let ids: Vec<String> = r
                .ok()
                .and_then(|v| v["findings"].as_array().cloned())
                .unwrap_or_default()
                .iter()
                .filter_map(|f| f["advisory"].as_str().map(str::to_owned))
                .collect();
            if ids == ["CVE-2024-6387"] {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "node {} never showed the finding of a scan stored by node 0: {ids:?}",
                n.addr
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    // 4. Revocation: every node has the credential cached (a heartbeat each); revoked
    // through node 0, it is refused by nodes 1 and 2 within a second, well inside the
    // cache's 30 s.
    for n in &nodes {
        heartbeat(&n.client(), &cred).await.unwrap();
    }
    let _: Value = nodes[0]
        .client()
        .json(
            Method::POST,
            &format!("/api/v1/hosts/{host}/revoke"),
            Some(&token),
            None::<&()>,
        )
        .await
        .unwrap();
    let t = Instant::now();
    for n in &nodes[1..] {
        loop {
            match heartbeat(&n.client(), &cred).await {
                Err(e) if e.status() == Some(403) => break,
                other => {
                    assert!(
                        t.elapsed() < Duration::from_secs(3),
                        "node {} still accepts a revoked credential after {:?}: {other:?}",
                        n.addr,
                        t.elapsed()
                    );
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
}

/// `enroll_per_key_per_min` 4 on each of three nodes: four enrollments pass, spread over
/// the nodes; the fifth is refused with `Retry-After` by a node that itself saw only
/// one (its own buckets would let it through).
async fn postgres_enrollment_limit_is_shared() {
    let dir = tempfile::tempdir().unwrap();
    let url = patchctl_testkit::scratch_postgres("patchctl_shared_limits").await;
    let store: Arc<dyn Storage> = patchctl_storage::open(&url).await.unwrap();
    let org = create_org(store.as_ref(), "acme").await.unwrap();
    let mut nodes = Vec::new();
    for _ in 0..3 {
        nodes.push(node(&url, dir.path(), |s| s.enroll_per_key_per_min = 4).await);
    }
    for (i, n) in [0, 1, 2, 0].iter().enumerate() {
        enroll(&nodes[*n], &org, &format!("lim-{i}")).await;
    }
    let e = nodes[1]
        .client()
        .json::<_, Value>(
            Method::POST,
            "/api/v1/agent/enroll",
            None,
            Some(&EnrollRequest {
                protocol_version: PROTOCOL_VERSION,
                license_key: org.enrollment_key.clone(),
                agent_version: "1.0.0".into(),
                system: system("lim-5"),
            }),
        )
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(429), "{e}");
    let after = e.retry_after().expect("Retry-After");
    assert!(after >= Duration::from_secs(10), "{after:?}");
}

/// `GET path` over plain HTTP/1.1 (a node's `metrics_listen`): the whole answer.
async fn plain_get(addr: SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    answer
}

/// The live nodes `node`'s readiness answer reports.
async fn nodes_live(node: &Node) -> u64 {
    let ready: Value = node
        .client()
        .json(Method::GET, "/api/v1/health/ready", None, None::<&()>)
        .await
        .unwrap();
    ready["nodes_live"]
        .as_u64()
        .unwrap_or_else(|| panic!("no nodes_live in {ready}"))
}

/// Waits until every node of `nodes` counts `want` live nodes (a node joining or
/// leaving is announced: well within a beat of 15 s).
async fn until_live(nodes: &[&Node], want: u64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    for n in nodes {
        loop {
            let live = nodes_live(n).await;
            if live == want {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "node {} counts {live} live nodes, not {want}",
                n.addr
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Sends `attempts` requests round-robin over `nodes` (each node's own client); how
/// many passed the rate limits, and how long the burst took. Every refusal is a 429
/// with a `Retry-After` of at most `max_wait`.
async fn burst<F, Fut>(
    nodes: &[&Node],
    attempts: usize,
    max_wait: Duration,
    send: F,
) -> (usize, Duration)
where
    F: Fn(HttpsClient) -> Fut,
    Fut: std::future::Future<Output = Result<(), ClientError>>,
{
    let clients: Vec<HttpsClient> = nodes.iter().map(|n| n.client()).collect();
    let t = Instant::now();
    let mut passed = 0;
    for i in 0..attempts {
        match send(clients[i % clients.len()].clone()).await {
            Err(e) if e.status() == Some(429) => {
                let after = e.retry_after().expect("a 429 carries Retry-After");
                assert!(
                    after > Duration::ZERO && after <= max_wait,
                    "Retry-After {after:?}"
                );
            }
            _ => passed += 1,
        }
    }
    (passed, t.elapsed())
}

/// Three nodes with 30 requests a minute per agent credential and 30 enrollment
/// attempts a minute per source address: each node counts three live nodes and admits
/// 10 of each, so a burst sent round-robin over the three gets 30 through, not 90 (plus
/// what refills while it runs: a token per node every 6 s). A node that stops leaves
/// the registry: the two others count two at once.
async fn postgres_nodes_share_the_in_memory_limits() {
    let dir = tempfile::tempdir().unwrap();
    let url = patchctl_testkit::scratch_postgres("patchctl_node_shares").await;
    let store: Arc<dyn Storage> = patchctl_storage::open(&url).await.unwrap();
    let org = create_org(store.as_ref(), "acme").await.unwrap();
    // Node 0 serves its metrics on a plain address too.
    let metrics_addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut nodes = Vec::new();
    for i in 0..3 {
        nodes.push(
            node(&url, dir.path(), |s| {
                s.agent_per_credential_per_min = 30;
                s.agent_per_address_per_min = 100_000;
                s.enroll_per_address_per_min = 30;
                s.drain_secs = 0;
                if i == 0 {
                    s.metrics_listen = Some(metrics_addr);
                }
            })
            .await,
        );
    }
    let all: Vec<&Node> = nodes.iter().collect();
    until_live(&all, 3).await;
    // The metrics say so too.
    let page = plain_get(metrics_addr, "/metrics").await;
    assert!(
        page.lines().any(|l| l == "patchctl_nodes_live 3"),
        "no `patchctl_nodes_live 3` in:\n{page}"
    );

    // Agent requests with one credential, round-robin.
    let (_, cred) = enroll(&nodes[0], &org, "share-1").await;
    let (passed, took) = burst(&all, 90, Duration::from_secs(7), |c| {
        let cred = cred.clone();
        async move {
            c.json::<(), Value>(Method::GET, "/api/v1/agent/whoami", Some(&cred), None)
                .await
                .map(drop)
        }
    })
    .await;
    // One token a node every 6 s refills during the burst.
    let refill = 3 * (took.as_secs() as usize / 6 + 1);
    assert!(
        (30..=30 + refill).contains(&passed),
        "{passed} of 90 agent requests with one credential passed three nodes (limit 30 a minute, {took:?})"
    );

    // Enrollment attempts from one address (127.0.0.1), round-robin: the enrollment of
    // share-1 took one token of node 0 already.
    let (passed, took) = burst(&all, 90, Duration::from_secs(7), |c| async move {
        c.json::<_, Value>(
            Method::POST,
            "/api/v1/agent/enroll",
            None,
            Some(&EnrollRequest {
                protocol_version: PROTOCOL_VERSION,
                license_key: patchctl_proto::Secret::new("pc_enroll_guessed".to_owned()),
                agent_version: "1.0.0".into(),
                system: system("guess"),
            }),
        )
        .await
        .map(drop)
    })
    .await;
    let refill = 3 * (took.as_secs() as usize / 6 + 1);
    assert!(
        (29..=29 + refill).contains(&passed),
        "{passed} of 90 enrollment attempts from one address passed three nodes (limit 30 a minute, {took:?})"
    );

    // Node 2 stops: it leaves the registry, and the two others count two at once
    // (well inside the 45 s after which a silent node stops being counted).
    let mut gone = nodes.pop().unwrap();
    gone.stop.take().unwrap().send(()).unwrap();
    until_live(&[&nodes[0], &nodes[1]], 2).await;
}
