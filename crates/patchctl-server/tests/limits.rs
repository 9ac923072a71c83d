//! The abuse limits of issue 16 §5 (docs/limits.md), one test each, against the real
//! platform over real TLS 1.3 on loopback (`launch_with_listeners`, or the real accept
//! loop `serve::serve` with a small router where a handler must take its time), on a
//! real SQLite file, with timeouts shortened through `Settings` so that each takes
//! seconds: a slowloris trickling headers, idle connections, a trickled body, the
//! connection cap, 429 per credential and per address with `Retry-After` (read back by
//! `patchctl-net`'s client), the size caps of agent messages (strings, package count,
//! delta chains, metrics history), the enrollment body limit before the key, and the
//! bound on database-bound agent requests in flight (503 `overloaded` at once).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use patchctl_net::{ClientError, HttpsClient};
use patchctl_proto::agent::{EnrollRequest, EnrollResponse, SystemInfo};
use patchctl_proto::limits::MAX_SCAN_PACKAGES;
use patchctl_proto::scan::{PackageRow, ScanAck, ScanBody, ScanState, ScanStatus, ScanUpload};
use patchctl_proto::{PROTOCOL_VERSION, Secret};
use patchctl_server::Settings;
use patchctl_server::bootstrap::{OrgSecrets, create_org};
use patchctl_storage::Storage;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// A platform node on loopback: its address, CA, plain metrics address and database.
struct Node {
    _dir: tempfile::TempDir,
    addr: SocketAddr,
    ca: PathBuf,
    metrics: SocketAddr,
    store: Arc<dyn Storage>,
    org: OrgSecrets,
}

/// Test PKI (server certificate for `localhost` and `127.0.0.1`) in `dir`.
fn pki(dir: &std::path::Path) -> patchctl_net::DevPki {
    patchctl_net::ensure_dev_pki(&dir.join("pki"), &["localhost".into(), "127.0.0.1".into()])
        .unwrap()
}

/// Starts a node whose settings are the test defaults (rate limits out of the way)
/// changed by `tweak`.
async fn node(tweak: impl FnOnce(&mut Settings)) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let url = format!("sqlite://{}", dir.path().join("db.sqlite").display());
    let store = patchctl_storage::open(&url).await.unwrap();
    let org = create_org(store.as_ref(), "limits").await.unwrap();
    let mut settings = Settings {
        metrics_history_len: 10,
        enroll_per_address_per_min: 10_000,
        enroll_per_key_per_min: 10_000,
        agent_per_credential_per_min: 100_000,
        agent_per_address_per_min: 100_000,
        vuln_sync: false,
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
    let plain = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics = plain.local_addr().unwrap();
    tokio::spawn(patchctl_server::launch_with_listeners(
        settings,
        listener,
        Some(plain),
        std::future::pending(),
    ));
    Node {
        _dir: dir,
        addr,
        ca: pki.ca_cert,
        metrics,
        store,
        org,
    }
}

/// A TLS connection to `addr` offering `alpn` (empty: none, HTTP/1.1).
async fn tls(
    addr: SocketAddr,
    ca: &std::path::Path,
    alpn: &[&[u8]],
) -> std::io::Result<TlsStream<TcpStream>> {
    let mut cfg = (*patchctl_net::client_config(Some(ca)).unwrap()).clone();
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let tcp = TcpStream::connect(addr).await?;
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(name, tcp)
        .await
}

/// One answer: status, `Retry-After`, JSON body.
struct Answer {
    status: StatusCode,
    retry_after: Option<String>,
    body: Value,
}

/// One HTTP/1.1 request on a new TLS connection.
async fn call(
    node: &Node,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    body: Vec<u8>,
) -> Answer {
    let stream = tls(node.addr, &node.ca, &[]).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "localhost")
        .header("content-type", "application/json");
    if let Some(b) = bearer {
        req = req.header("authorization", format!("Bearer {b}"));
    }
    let resp = sender
        .send_request(req.body(Full::new(Bytes::from(body))).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Answer {
        status,
        retry_after,
        body,
    }
}

/// The value of the sample `name` (with its labels, as written) on the plain metrics
/// page.
async fn metric(node: &Node, sample: &str) -> f64 {
    let mut tcp = TcpStream::connect(node.metrics).await.unwrap();
    tcp.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut text = String::new();
    tcp.read_to_string(&mut text).await.unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no sample {sample} on the page:\n{text}"))
}

/// The platform's HTTPS client (the agent's), for `node`.
fn client(node: &Node) -> HttpsClient {
    HttpsClient::new(
        &format!("https://127.0.0.1:{}", node.addr.port()),
        patchctl_net::client_config(Some(&node.ca)).unwrap(),
    )
    .unwrap()
}

/// Enrolls a host; its credential.
async fn enroll(node: &Node, hostname: &str) -> Secret {
    let req = EnrollRequest {
        protocol_version: PROTOCOL_VERSION,
        license_key: node.org.enrollment_key.clone(),
        agent_version: "test".into(),
        system: SystemInfo {
            hostname: hostname.into(),
            ..Default::default()
        },
    };
    let resp: EnrollResponse = client(node)
        .json(Method::POST, "/api/v1/agent/enroll", None, Some(&req))
        .await
        .unwrap();
    resp.credential
}

/// Reads from `stream` until it is closed (EOF or error) or `within` passes; how long
/// it took, or `None` when it stayed open.
async fn closed_within(
    stream: &mut (impl AsyncReadExt + Unpin),
    within: Duration,
) -> Option<Duration> {
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at((start + within).into(), stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(start.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn slowloris_headers_are_cut_at_the_header_timeout_while_others_are_served() {
    let node = node(|s| {
        s.header_read_timeout_secs = 1;
        s.idle_timeout_secs = 60;
    })
    .await;
    let slow = tls(node.addr, &node.ca, &[]).await.unwrap();
    let (mut rd, mut wr) = tokio::io::split(slow);
    let start = Instant::now();
    // Headers trickled a byte at a time, never finished.
    let trickle = tokio::spawn(async move {
        wr.write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
            .await
            .ok();
        loop {
            if wr.write_all(b"a").await.is_err() || wr.flush().await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            if start.elapsed() > Duration::from_secs(8) {
                return;
            }
        }
    });
    // Meanwhile the node answers others.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let a = call(&node, "GET", "/api/v1/health", None, vec![]).await;
    assert_eq!(a.status, StatusCode::OK);
    let took = closed_within(&mut rd, Duration::from_secs(6))
        .await
        .expect("the slow connection is closed");
    let took = took + Duration::from_millis(300);
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(4),
        "closed after {took:?}"
    );
    trickle.abort();
    assert!(metric(&node, "patchctl_connection_timeouts_total{kind=\"header\"}").await >= 1.0);
    // And it still serves.
    assert_eq!(
        call(&node, "GET", "/api/v1/health", None, vec![])
            .await
            .status,
        StatusCode::OK
    );
}

/// The real accept loop over a small router: `/fast` answers at once, `/slow` after
/// three seconds (a long-poll's stand-in) and keeps the peak of `/slow` requests being
/// answered at once.
struct SlowNode {
    addr: SocketAddr,
    ca: PathBuf,
    counters: Arc<patchctl_server::metrics::limits::ConnCounters>,
    peak: Arc<std::sync::atomic::AtomicUsize>,
}

async fn slow_router_node(dir: &std::path::Path, idle: Duration) -> SlowNode {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let pki = pki(dir);
    let tls_cfg = patchctl_net::server_config(&pki.server_cert, &pki.server_key).unwrap();
    let now = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (n, p) = (now.clone(), peak.clone());
    let app = axum::Router::new()
        .route("/fast", axum::routing::get(|| async { "fast" }))
        .route(
            "/slow",
            axum::routing::get(move || {
                let (n, p) = (n.clone(), p.clone());
                async move {
                    let at = n.fetch_add(1, Ordering::SeqCst) + 1;
                    p.fetch_max(at, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_secs(3)).await;
                    n.fetch_sub(1, Ordering::SeqCst);
                    "slow"
                }
            }),
        );
    let counters = Arc::new(patchctl_server::metrics::limits::ConnCounters::default());
    let options = patchctl_server::serve::Options {
        max_connections: 100,
        header_read_timeout: Duration::from_secs(30),
        idle_timeout: idle,
        body_read_timeout: Duration::from_secs(30),
        counters: counters.clone(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(patchctl_server::serve::serve(
        listener,
        tls_cfg,
        options,
        app,
        std::future::pending(),
    ));
    SlowNode {
        addr,
        ca: pki.ca_cert,
        counters,
        peak,
    }
}

fn get(path: &'static str) -> Request<Full<Bytes>> {
    Request::get(path)
        .header("host", "localhost")
        .body(Full::new(Bytes::new()))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_http2_connection_gets_at_most_its_stream_cap_at_once() {
    use patchctl_server::serve::MAX_H2_STREAMS;
    let dir = tempfile::tempdir().unwrap();
    let node = slow_router_node(dir.path(), Duration::from_secs(60)).await;
    let h2 = tls(node.addr, &node.ca, &[b"h2"]).await.unwrap();
    let (sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(h2),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    // One exchange first, so that the client has the server's SETTINGS (a stream sent
    // before them, over the cap, is refused with REFUSED_STREAM, which is safe to
    // retry; a client that knows the cap waits instead).
    let mut first = sender.clone();
    assert_eq!(
        first.send_request(get("/fast")).await.unwrap().status(),
        StatusCode::OK
    );
    let n = MAX_H2_STREAMS as usize + 16;
    let all = (0..n).map(|_| {
        let mut s = sender.clone();
        async move { s.send_request(get("/slow")).await.map(|r| r.status()) }
    });
    let start = Instant::now();
    let answers = futures_join_all(all).await;
    assert!(
        answers.iter().all(|a| matches!(a, Ok(StatusCode::OK))),
        "{answers:?}"
    );
    // The cap held the rest back until the first streams ended.
    use std::sync::atomic::Ordering;
    assert_eq!(node.peak.load(Ordering::SeqCst), MAX_H2_STREAMS as usize);
    assert!(
        start.elapsed() >= Duration::from_secs(6),
        "{:?}",
        start.elapsed()
    );
}

/// Runs every future at once; their outputs in order.
async fn futures_join_all<F: std::future::Future + Send + 'static>(
    fs: impl Iterator<Item = F>,
) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = fs.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idle_connection_is_closed_but_a_request_in_flight_keeps_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let SlowNode {
        addr, ca, counters, ..
    } = slow_router_node(dir.path(), Duration::from_secs(1)).await;

    // HTTP/2 (as the agent negotiates): one request, then nothing.
    let h2 = tls(addr, &ca, &[b"h2"]).await.unwrap();
    let (mut idle2, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(h2),
    )
    .await
    .unwrap();
    let idle2_conn = tokio::spawn(conn);
    assert_eq!(
        idle2.send_request(get("/fast")).await.unwrap().status(),
        StatusCode::OK
    );

    // HTTP/1.1 with a header timeout far longer than the idle timeout.
    let h1 = tls(addr, &ca, &[]).await.unwrap();
    let (mut idle1, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(h1))
        .await
        .unwrap();
    let idle1_conn = tokio::spawn(conn);
    assert_eq!(
        idle1.send_request(get("/fast")).await.unwrap().status(),
        StatusCode::OK
    );

    // A request held three times the idle timeout, on HTTP/2 and on HTTP/1.1.
    let h2 = tls(addr, &ca, &[b"h2"]).await.unwrap();
    let (mut busy2, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(h2),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let h1 = tls(addr, &ca, &[]).await.unwrap();
    let (mut busy1, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(h1))
        .await
        .unwrap();
    tokio::spawn(conn);
    let start = Instant::now();
    let (r2, r1) = tokio::join!(
        busy2.send_request(get("/slow")),
        busy1.send_request(get("/slow"))
    );
    for r in [r2, r1] {
        let r = r.expect("a request in flight is never cut by the idle timeout");
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.into_body().collect().await.unwrap().to_bytes(), "slow");
    }
    assert!(start.elapsed() >= Duration::from_secs(3));

    // By now (3 s of nothing) both idle connections are gone.
    assert!(
        idle2_conn.is_finished(),
        "the idle HTTP/2 connection is closed"
    );
    assert!(
        idle1_conn.is_finished(),
        "the idle HTTP/1.1 connection is closed"
    );
    assert!(idle2.send_request(get("/fast")).await.is_err());
    assert!(idle1.send_request(get("/fast")).await.is_err());
    use patchctl_server::metrics::limits::Timeout;
    assert!(
        counters.timeouts(Timeout::Idle) >= 2,
        "{}",
        counters.timeouts(Timeout::Idle)
    );
}

/// The head of an HTTP/1.1 answer read from `stream`: its status line and the rest.
async fn read_answer(stream: &mut (impl AsyncReadExt + Unpin), within: Duration) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let _ = tokio::time::timeout(within, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_trickled_body_gets_408_and_the_connection_is_closed() {
    let node = node(|s| s.body_read_timeout_secs = 1).await;
    let stream = tls(node.addr, &node.ca, &[]).await.unwrap();
    let (mut rd, mut wr) = tokio::io::split(stream);
    wr.write_all(
        b"POST /api/v1/agent/enroll HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{",
    )
    .await
    .unwrap();
    let start = Instant::now();
    let trickle = tokio::spawn(async move {
        for _ in 0..60 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if wr.write_all(b" ").await.is_err() {
                return;
            }
        }
    });
    let answer = read_answer(&mut rd, Duration::from_secs(8)).await;
    let took = start.elapsed();
    trickle.abort();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("did not arrive in time"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "{took:?}"
    );
    assert_eq!(
        metric(&node, "patchctl_connection_timeouts_total{kind=\"body\"}").await,
        1.0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_over_the_cap_are_closed_at_once_and_the_node_stays_up() {
    let node = node(|s| s.max_connections = 2).await;
    let a = tls(node.addr, &node.ca, &[]).await.unwrap();
    let _b = tls(node.addr, &node.ca, &[]).await.unwrap();
    // The third: accepted by the kernel, closed by the node before any TLS.
    let start = Instant::now();
    let third = tls(node.addr, &node.ca, &[]).await;
    assert!(third.is_err(), "a connection over the cap is refused");
    assert!(start.elapsed() < Duration::from_secs(2));
    assert_eq!(
        metric(&node, "patchctl_connections_refused_total").await,
        1.0
    );
    assert_eq!(metric(&node, "patchctl_connections_open").await, 2.0);
    // One closes: the next is served.
    drop(a);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if metric(&node, "patchctl_connections_open").await < 2.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the closed connection is released"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        call(&node, "GET", "/api/v1/health", None, vec![])
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_credential_over_its_rate_gets_429_with_retry_after() {
    let node = node(|s| s.agent_per_credential_per_min = 3).await;
    let cred = enroll(&node, "web-1").await;
    let c = client(&node);
    for _ in 0..3 {
        let _: Value = c
            .json::<(), _>(
                Method::GET,
                "/api/v1/agent/whoami",
                Some(cred.expose()),
                None,
            )
            .await
            .unwrap();
    }
    let e = c
        .json::<(), Value>(
            Method::GET,
            "/api/v1/agent/whoami",
            Some(cred.expose()),
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(429), "{e}");
    assert_eq!(e.code(), Some("rate_limited"));
    assert!(e.to_string().contains("agent credential"), "{e}");
    let wait = e.retry_after().expect("the client keeps Retry-After");
    // Three a minute: the next token comes within 20 s.
    assert!(
        wait >= Duration::from_secs(1) && wait <= Duration::from_secs(21),
        "{wait:?}"
    );
    assert!(matches!(e, ClientError::RetryLater { .. }));
    // The answer itself: Retry-After in seconds and the JSON error body.
    let a = call(
        &node,
        "GET",
        "/api/v1/agent/whoami",
        Some(cred.expose()),
        vec![],
    )
    .await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    let secs: u64 = a.retry_after.unwrap().parse().unwrap();
    assert!((1..=21).contains(&secs), "{secs}");
    assert_eq!(a.body["code"], "rate_limited");
    // Another credential has its own bucket (an unknown one is refused as unknown).
    let other = call(
        &node,
        "GET",
        "/api/v1/agent/whoami",
        Some("pcag_unknown"),
        vec![],
    )
    .await;
    assert_eq!(other.status, StatusCode::UNAUTHORIZED, "{}", other.body);
    assert_eq!(
        metric(
            &node,
            "patchctl_rate_limited_total{scope=\"agent_credential\"}"
        )
        .await,
        2.0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_address_over_its_rate_gets_429_whatever_credentials_it_sprays() {
    let node = node(|s| s.agent_per_address_per_min = 4).await;
    for i in 0..4 {
        let a = call(
            &node,
            "GET",
            "/api/v1/agent/whoami",
            Some(&format!("pcag_guess{i}")),
            vec![],
        )
        .await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.body);
    }
    let a = call(
        &node,
        "GET",
        "/api/v1/agent/whoami",
        Some("pcag_guess9"),
        vec![],
    )
    .await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS, "{}", a.body);
    assert!(
        a.body["error"].as_str().unwrap().contains("address"),
        "{}",
        a.body
    );
    let secs: u64 = a.retry_after.unwrap().parse().unwrap();
    assert!((1..=16).contains(&secs), "{secs}");
    assert_eq!(
        metric(
            &node,
            "patchctl_rate_limited_total{scope=\"agent_address\"}"
        )
        .await,
        1.0
    );
    // Enrollment has its own limits: not touched by the agent address bucket.
    let _ = enroll(&node, "web-2").await;
}

/// The v1 heartbeat fixture with its hostname set to `hostname`.
fn heartbeat(hostname: &str) -> Vec<u8> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../patchctl-proto/tests/data/v1/heartbeat.json"
    );
    let mut v: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    v["system"]["hostname"] = json!(hostname);
    serde_json::to_vec(&v).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn strings_over_their_cap_are_refused_naming_the_field_and_the_limit() {
    let node = node(|_| {}).await;
    let cred = enroll(&node, "web-1").await;
    let ok = call(
        &node,
        "POST",
        "/api/v1/agent/heartbeat",
        Some(cred.expose()),
        heartbeat("web-1"),
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    let long = "h".repeat(254);
    // An unknown credential is refused before its body is read.
    let a = call(
        &node,
        "POST",
        "/api/v1/agent/heartbeat",
        Some("pcag_unknown"),
        heartbeat(&long),
    )
    .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.body);
    let a = call(
        &node,
        "POST",
        "/api/v1/agent/heartbeat",
        Some(cred.expose()),
        heartbeat(&long),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.body);
    let msg = a.body["error"].as_str().unwrap();
    assert!(
        msg.contains("system.hostname") && msg.contains("253"),
        "{msg}"
    );
    // Enrollment too (inside its 64 KiB).
    let mut req = serde_json::to_value(EnrollRequest {
        protocol_version: PROTOCOL_VERSION,
        license_key: node.org.enrollment_key.clone(),
        agent_version: "test".into(),
        system: SystemInfo {
            hostname: "web-2".into(),
            ..Default::default()
        },
    })
    .unwrap();
    req["system"]["os"]["id"] = json!("x".repeat(2000));
    let a = call(
        &node,
        "POST",
        "/api/v1/agent/enroll",
        None,
        serde_json::to_vec(&req).unwrap(),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.body);
    assert!(
        a.body["error"].as_str().unwrap().contains("system.os.id"),
        "{}",
        a.body
    );
    req["system"]["os"]["id"] = json!("debian");
    let a = call(
        &node,
        "POST",
        "/api/v1/agent/enroll",
        None,
        serde_json::to_vec(&req).unwrap(),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
}

fn row(name: &str, version: &str) -> PackageRow {
    PackageRow(
        name.into(),
        version.into(),
        "amd64".into(),
        String::new(),
        String::new(),
        String::new(),
    )
}

fn state(packages: Vec<PackageRow>) -> ScanState {
    let mut s = ScanState {
        system: SystemInfo {
            hostname: "web-1".into(),
            ..Default::default()
        },
        package_manager: Some("dpkg".into()),
        packages,
        updates: None,
    };
    s.canonicalize();
    s
}

async fn scan(
    c: &HttpsClient,
    cred: &Secret,
    digest: String,
    body: ScanBody,
) -> Result<ScanAck, ClientError> {
    let upload = ScanUpload {
        scanned_at: chrono::Utc::now(),
        digest,
        body,
        reboot: None,
    };
    c.json(
        Method::POST,
        "/api/v1/agent/scan",
        Some(cred.expose()),
        Some(&upload),
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_scan_over_the_package_count_is_refused_naming_the_cap() {
    let node = node(|_| {}).await;
    let cred = enroll(&node, "web-1").await;
    let c = client(&node);
    let big = state(
        (0..=MAX_SCAN_PACKAGES)
            .map(|i| row(&format!("p{i}"), "1"))
            .collect(),
    );
    let e = scan(
        &c,
        &cred,
        big.digest(),
        ScanBody::Full { state: big.clone() },
    )
    .await
    .unwrap_err();
    assert_eq!(e.status(), Some(400), "{e}");
    assert!(e.to_string().contains("packages"), "{e}");
    assert!(
        e.to_string().contains(&MAX_SCAN_PACKAGES.to_string()),
        "{e}"
    );
    // At the cap it is stored.
    let mut at = big;
    at.packages.pop();
    let ack = scan(&c, &cred, at.digest(), ScanBody::Full { state: at.clone() })
        .await
        .unwrap();
    assert_eq!(ack.status, ScanStatus::Stored);
    assert_eq!(ack.packages as usize, MAX_SCAN_PACKAGES);
}

#[tokio::test(flavor = "multi_thread")]
async fn after_the_longest_delta_chain_the_platform_asks_for_the_full_state() {
    use patchctl_server::api::scans::MAX_DELTA_CHAIN;
    let node = node(|_| {}).await;
    let cred = enroll(&node, "web-1").await;
    let c = client(&node);
    let mut current = state((0..10).map(|i| row(&format!("base{i}"), "1")).collect());
    let ack = scan(
        &c,
        &cred,
        current.digest(),
        ScanBody::Full {
            state: current.clone(),
        },
    )
    .await
    .unwrap();
    assert_eq!(ack.status, ScanStatus::Stored);
    let next_delta = |cur: &ScanState, i: u32| {
        let mut packages = cur.packages.clone();
        packages.push(row(&format!("added{i}"), "1"));
        let next = state(packages);
        let body = next.delta_from(cur, &cur.digest()).expect("a delta");
        (next, body)
    };
    for i in 0..MAX_DELTA_CHAIN {
        let (next, body) = next_delta(&current, i);
        let ack = scan(&c, &cred, next.digest(), body).await.unwrap();
        assert_eq!(ack.status, ScanStatus::Stored, "delta {i}: {ack:?}");
        current = next;
    }
    let (next, body) = next_delta(&current, MAX_DELTA_CHAIN);
    let ack = scan(&c, &cred, next.digest(), body).await.unwrap();
    assert_eq!(ack.status, ScanStatus::NeedFull, "{ack:?}");
    assert!(
        ack.detail
            .as_deref()
            .unwrap()
            .contains(&MAX_DELTA_CHAIN.to_string()),
        "{ack:?}"
    );
    // The stored state did not move; a full scan restarts the chain.
    let stored = node
        .store
        .scan_state(node_host(&node).await)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.digest, current.digest());
    let ack = scan(
        &c,
        &cred,
        next.digest(),
        ScanBody::Full {
            state: next.clone(),
        },
    )
    .await
    .unwrap();
    assert_eq!(ack.status, ScanStatus::Stored);
    let (after, body) = next_delta(&next, 1000);
    let ack = scan(&c, &cred, after.digest(), body).await.unwrap();
    assert_eq!(ack.status, ScanStatus::Stored, "{ack:?}");
}

/// The v1 results fixture.
fn results() -> Vec<u8> {
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../patchctl-proto/tests/data/v1/results.json"
    ))
    .unwrap()
}

/// A 503 `overloaded` answer naming the limit of one request, with a `Retry-After` of 1
/// to 5 s.
fn assert_shed(a: &Answer, what: &str) {
    assert_eq!(
        a.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{what}: {}",
        a.body
    );
    assert_eq!(a.body["code"], "overloaded", "{what}: {}", a.body);
    let secs: u64 = a
        .retry_after
        .as_deref()
        .unwrap_or_else(|| panic!("{what}: no Retry-After"))
        .parse()
        .unwrap();
    assert!((1..=5).contains(&secs), "{what}: Retry-After {secs}");
    let msg = a.body["error"].as_str().unwrap();
    assert!(
        msg.contains("limit of 1 agent requests in flight")
            && msg.contains(&format!("retry in {secs} s")),
        "{what}: {msg}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn database_bound_agent_requests_over_the_bound_are_shed_at_once_with_retry_after() {
    let node = node(|s| s.agent_requests_in_flight = 1).await;
    let held_cred = enroll(&node, "web-1").await;
    let other = enroll(&node, "web-2").await;
    assert_eq!(
        metric(&node, "patchctl_agent_requests_in_flight").await,
        0.0
    );

    // One scan held in flight: its head and half its body sent, the rest kept back.
    let st = state((0..20).map(|i| row(&format!("p{i}"), "1")).collect());
    let upload = serde_json::to_vec(&ScanUpload {
        scanned_at: chrono::Utc::now(),
        digest: st.digest(),
        body: ScanBody::Full { state: st },
        reboot: None,
    })
    .unwrap();
    let stream = tls(node.addr, &node.ca, &[]).await.unwrap();
    let (mut rd, mut wr) = tokio::io::split(stream);
    wr.write_all(
        format!(
            "POST /api/v1/agent/scan HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
             Authorization: Bearer {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            held_cred.expose(),
            upload.len()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let half = upload.len() / 2;
    wr.write_all(&upload[..half]).await.unwrap();
    wr.flush().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while metric(&node, "patchctl_agent_requests_in_flight").await < 1.0 {
        assert!(Instant::now() < deadline, "the held scan takes the permit");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Another agent's results and scan, and an enrollment: 503 at once, naming the
    // limit, with Retry-After.
    let start = Instant::now();
    let a = call(
        &node,
        "POST",
        "/api/v1/agent/results",
        Some(other.expose()),
        results(),
    )
    .await;
    let took = start.elapsed();
    assert_shed(&a, "results");
    // A new TLS connection and the answer; far from the database pool's 5 s wait.
    assert!(took < Duration::from_secs(1), "{took:?}");
    let a = call(
        &node,
        "POST",
        "/api/v1/agent/scan",
        Some(other.expose()),
        upload.clone(),
    )
    .await;
    assert_shed(&a, "scan");
    let enroll_req = serde_json::to_vec(&EnrollRequest {
        protocol_version: PROTOCOL_VERSION,
        license_key: node.org.enrollment_key.clone(),
        agent_version: "test".into(),
        system: SystemInfo {
            hostname: "web-3".into(),
            ..Default::default()
        },
    })
    .unwrap();
    let a = call(&node, "POST", "/api/v1/agent/enroll", None, enroll_req).await;
    assert_shed(&a, "enroll");
    // The agent's client reads it as "retry later", with the wait.
    let c = client(&node);
    let e = scan(
        &c,
        &other,
        "0".repeat(64),
        ScanBody::Full {
            state: state(vec![]),
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(e, ClientError::RetryLater { .. }), "{e}");
    assert_eq!((e.status(), e.code()), (Some(503), Some("overloaded")));
    let wait = e.retry_after().unwrap();
    assert!(
        wait >= Duration::from_secs(1) && wait <= Duration::from_secs(5),
        "{wait:?}"
    );
    // The routes outside the gate are served meanwhile: the heartbeat, whoami.
    let a = call(
        &node,
        "POST",
        "/api/v1/agent/heartbeat",
        Some(other.expose()),
        heartbeat("web-2"),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let a = call(
        &node,
        "GET",
        "/api/v1/agent/whoami",
        Some(other.expose()),
        vec![],
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(
        metric(&node, "patchctl_agent_requests_shed_total").await,
        4.0
    );
    assert_eq!(
        metric(&node, "patchctl_agent_requests_in_flight").await,
        1.0
    );

    // The held scan completes and is stored; then requests pass again.
    wr.write_all(&upload[half..]).await.unwrap();
    wr.flush().await.unwrap();
    let answer = read_answer(&mut rd, Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"stored\""), "{answer}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while metric(&node, "patchctl_agent_requests_in_flight").await > 0.0 {
        assert!(Instant::now() < deadline, "the permit is given back");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let a = call(
        &node,
        "POST",
        "/api/v1/agent/results",
        Some(other.expose()),
        results(),
    )
    .await;
    assert_ne!(a.status, StatusCode::SERVICE_UNAVAILABLE, "{}", a.body);
    let st = state(vec![row("bash", "5.2")]);
    let ack = scan(&c, &other, st.digest(), ScanBody::Full { state: st })
        .await
        .unwrap();
    assert_eq!(ack.status, ScanStatus::Stored);
    let _ = enroll(&node, "web-3").await;
    assert_eq!(
        metric(&node, "patchctl_agent_requests_shed_total").await,
        4.0
    );
}

/// The one host of `node`.
async fn node_host(node: &Node) -> uuid::Uuid {
    let org = node.store.org_by_name("limits").await.unwrap().unwrap();
    let hosts = node.store.list_hosts(org.id).await.unwrap();
    assert_eq!(hosts.len(), 1);
    hosts[0].id
}

#[tokio::test(flavor = "multi_thread")]
async fn an_oversized_enrollment_with_a_valid_key_gets_413_and_the_key_is_not_used() {
    let node = node(|_| {}).await;
    let key_hash = patchctl_server::auth::hash_secret(node.org.enrollment_key.expose());
    let uses = || async {
        node.store
            .enrollment_key_by_hash(&key_hash)
            .await
            .unwrap()
            .unwrap()
            .uses
    };
    assert_eq!(uses().await, 0);
    let req = json!({
        "protocol_version": PROTOCOL_VERSION,
        "license_key": node.org.enrollment_key.expose(),
        "agent_version": "test",
        "system": {"hostname": "web-1", "tags": vec!["t".repeat(100); 700]}
    });
    let body = serde_json::to_vec(&req).unwrap();
    assert!(body.len() > 64 * 1024);
    let a = call(&node, "POST", "/api/v1/agent/enroll", None, body).await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", a.body);
    assert_eq!(a.body["code"], "too_large");
    assert_eq!(uses().await, 0, "the key was not looked at");
    // The same key in a small body enrolls, and is counted.
    let _ = enroll(&node, "web-1").await;
    assert_eq!(uses().await, 1);
}

#[test]
fn a_metrics_history_over_its_maximum_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("server.json");
    std::fs::write(
        &path,
        r#"{"listen": "127.0.0.1:0", "database_url": "sqlite://x", "tls_cert": "c", "tls_key": "k", "metrics_history_len": 100000}"#,
    )
    .unwrap();
    let e = Settings::load_file(&path).unwrap_err().to_string();
    assert!(e.contains("metrics_history_len = 100000"), "{e}");
    assert!(
        e.contains(&patchctl_server::settings::MAX_METRICS_HISTORY_LEN.to_string()),
        "{e}"
    );
}
