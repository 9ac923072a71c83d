//! Real-TLS integration tests for `HttpsClient` with `client_config`.
//!
//! Each test starts a TLS server on 127.0.0.1:0 (tokio-rustls + hyper) that
//! presents a certificate made for the test, and checks that the client
//! succeeds only against a valid TLS 1.3 server whose certificate chains to
//! the configured CA and names the host, and that every failure says why.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use patchctl_net::testing::{TestCa, TestLeaf, self_signed_leaf};
use patchctl_net::{ClientError, HttpsClient, client_config, server_config};
use patchctl_testkit::{Check, Harness, Need, trial};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

fn main() -> std::process::ExitCode {
    Harness::new()
        .test(trial!(async succeeds_against_server_from_configured_ca))
        .test(trial!(async sends_json_body_bearer_and_path_prefix))
        .test(trial!(async reuses_connections_across_requests_and_clones))
        .test(trial!(async refuses_tls12_only_server))
        .test(trial!(async refuses_self_signed_server))
        .test(trial!(async refuses_certificate_from_another_ca))
        .test(trial!(async refuses_certificate_for_wrong_host_name))
        .test(trial!(async refuses_expired_certificate))
        .test(
            trial!(async system_roots_do_not_trust_a_private_ca)
                .needs([Need::Check(&SYSTEM_ROOTS)]),
        )
        .test(trial!(async plain_http_urls_are_refused))
        .test(trial!(async plain_http_server_behind_https_url_is_explained))
        .test(trial!(async connection_refused_is_distinguished_from_tls_problems))
        .test(trial!(async error_status_carries_the_platform_message))
        .test(trial!(async empty_success_body_decodes_as_unit_and_bad_json_is_decode_error))
        .test(trial!(async response_bodies_are_capped))
        .test(trial!(async slow_answers_time_out))
        .test(trial!(async bearer_token_never_appears_in_errors))
        .run()
}

/// A system trust store for `client_config(None)` (client_config's own unit test covers
/// the error when there is none).
static SYSTEM_ROOTS: Check = Check {
    what: "a system trust store",
    missing: || {
        client_config(None)
            .err()
            .map(|e| format!("no system trust store ({e}): apt-get install ca-certificates"))
    },
};

const CANARY: &str = "canary-token-7d1f0c2e-do-not-leak";

struct Pki {
    dir: tempfile::TempDir,
    ca: TestCa,
    ca_path: PathBuf,
}

impl Pki {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ca = TestCa::new("PatchCTL test CA").unwrap();
        let ca_path = ca.write_cert(dir.path(), "ca.pem").unwrap();
        Pki { dir, ca, ca_path }
    }

    fn write_leaf(&self, leaf: &TestLeaf, stem: &str) -> (PathBuf, PathBuf) {
        leaf.write(self.dir.path(), stem).unwrap()
    }

    fn client(&self, addr: SocketAddr) -> HttpsClient {
        HttpsClient::new(
            &format!("https://{addr}"),
            client_config(Some(&self.ca_path)).unwrap(),
        )
        .unwrap()
    }
}

struct TestServer {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
}

async fn handle(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let version = format!("{:?}", req.version());
    let header = |name: &str| {
        req.headers()
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    };
    let auth = header("authorization");
    let user_agent = header("user-agent");
    let content_type = header("content-type");
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let body = req.into_body().collect().await.unwrap().to_bytes();
    let reply = |status: StatusCode, body: Vec<u8>| {
        Ok(Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .unwrap())
    };
    match path.as_str() {
        "/api/echo" | "/echo" => {
            let body: Value = if body.is_empty() {
                Value::Null
            } else {
                serde_json::from_slice(&body).unwrap()
            };
            reply(
                StatusCode::OK,
                serde_json::to_vec(&json!({
                    "ok": true,
                    "version": version,
                    "method": method,
                    "path": path,
                    "authorization": auth,
                    "user_agent": user_agent,
                    "content_type": content_type,
                    "body": body,
                }))
                .unwrap(),
            )
        }
        "/unprocessable" => reply(
            StatusCode::UNPROCESSABLE_ENTITY,
            br#"{"error":"hostname must not be empty"}"#.to_vec(),
        ),
        "/unauthorized-echo" => reply(
            StatusCode::UNAUTHORIZED,
            serde_json::to_vec(&json!({ "error": format!("credential {auth:?} rejected") }))
                .unwrap(),
        ),
        "/text-error" => reply(StatusCode::BAD_GATEWAY, "x".repeat(2000).into_bytes()),
        "/decode-echo" => reply(
            StatusCode::OK,
            serde_json::to_vec(&json!({ "ok": auth })).unwrap(),
        ),
        "/no-content" => reply(StatusCode::NO_CONTENT, Vec::new()),
        "/big" => reply(StatusCode::OK, vec![b' '; 100_000]),
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(10)).await;
            reply(StatusCode::OK, br#"{"ok":true}"#.to_vec())
        }
        _ => reply(
            StatusCode::NOT_FOUND,
            br#"{"error":"no such route"}"#.to_vec(),
        ),
    }
}

/// Serves HTTPS (h2 or http/1.1) with `config` until the test ends.
async fn serve(config: Arc<rustls::ServerConfig>) -> TestServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let count = connections.clone();
    let acceptor = TlsAcceptor::from(config);
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            count.fetch_add(1, Ordering::SeqCst);
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // Handshake failures are what several tests are about: ignore them here.
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), service_fn(handle))
                    .await;
            });
        }
    });
    TestServer { addr, connections }
}

async fn serve_leaf(pki: &Pki, leaf: &TestLeaf, stem: &str) -> TestServer {
    let (cert, key) = pki.write_leaf(leaf, stem);
    serve(server_config(&cert, &key).unwrap()).await
}

/// A server that only speaks TLS 1.2 (possible only because the test build of
/// rustls has the `tls12` feature; the product's configs never enable it).
fn tls12_only_config(cert: &Path, key: &Path) -> Arc<rustls::ServerConfig> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let chain = CertificateDer::pem_file_iter(cert)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(key).unwrap();
    let mut cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS12])
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Arc::new(cfg)
}

#[derive(Debug, Deserialize)]
struct Echo {
    ok: bool,
    version: String,
    method: String,
    path: String,
    authorization: Option<String>,
    user_agent: Option<String>,
    content_type: Option<String>,
    body: Value,
}

#[derive(Serialize)]
struct Hello {
    hostname: String,
}

async fn get_echo(client: &HttpsClient) -> Result<Echo, ClientError> {
    client
        .json::<(), Echo>(Method::GET, "/echo", None, None)
        .await
}

fn connect_text(result: Result<Echo, ClientError>) -> String {
    match result {
        Err(ClientError::Connect(msg)) => {
            eprintln!("client error: {msg}");
            msg
        }
        other => panic!("expected a Connect error, got {other:?}"),
    }
}

async fn succeeds_against_server_from_configured_ca() {
    let pki = Pki::new();
    let leaf = pki.ca.issue(&["127.0.0.1", "localhost"]).unwrap();
    let server = serve_leaf(&pki, &leaf, "server").await;

    let client = pki.client(server.addr);
    let echo = get_echo(&client).await.unwrap();
    assert!(echo.ok);
    // ALPN negotiated HTTP/2 through hyper-rustls.
    assert_eq!(echo.version, "HTTP/2.0");
    assert_eq!(echo.method, "GET");
    assert_eq!(
        echo.user_agent.as_deref(),
        Some(concat!("patchctl/", env!("CARGO_PKG_VERSION")))
    );
    assert_eq!(echo.authorization, None);
    assert_eq!(echo.body, Value::Null);

    // By host name too.
    let by_name = HttpsClient::new(
        &format!("https://localhost:{}", server.addr.port()),
        client_config(Some(&pki.ca_path)).unwrap(),
    )
    .unwrap();
    assert!(get_echo(&by_name).await.unwrap().ok);
}

async fn sends_json_body_bearer_and_path_prefix() {
    let pki = Pki::new();
    let leaf = pki.ca.issue(&["127.0.0.1"]).unwrap();
    let server = serve_leaf(&pki, &leaf, "server").await;
    let client = HttpsClient::new(
        &format!("https://{}/api/", server.addr),
        client_config(Some(&pki.ca_path)).unwrap(),
    )
    .unwrap();
    assert_eq!(client.base_url(), format!("https://{}/api", server.addr));
    let echo: Echo = client
        .json(
            Method::POST,
            "echo",
            Some("tok-123"),
            Some(&Hello {
                hostname: "web-01".into(),
            }),
        )
        .await
        .unwrap();
    assert_eq!(echo.method, "POST");
    assert_eq!(echo.path, "/api/echo");
    assert_eq!(echo.authorization.as_deref(), Some("Bearer tok-123"));
    assert_eq!(echo.content_type.as_deref(), Some("application/json"));
    assert_eq!(echo.body, json!({"hostname": "web-01"}));
}

async fn reuses_connections_across_requests_and_clones() {
    let pki = Pki::new();
    let leaf = pki.ca.issue(&["127.0.0.1"]).unwrap();
    let server = serve_leaf(&pki, &leaf, "server").await;
    let client = pki.client(server.addr);
    let clone = client.clone();
    for c in [&client, &clone, &client, &clone] {
        assert!(get_echo(c).await.unwrap().ok);
    }
    assert_eq!(server.connections.load(Ordering::SeqCst), 1);
}

async fn refuses_tls12_only_server() {
    let pki = Pki::new();
    let leaf = pki.ca.issue(&["127.0.0.1"]).unwrap();
    let (cert, key) = pki.write_leaf(&leaf, "server");
    let server = serve(tls12_only_config(&cert, &key)).await;
    let msg = connect_text(get_echo(&pki.client(server.addr)).await);
    assert!(msg.contains("TLS protocol version"), "{msg}");
    assert!(msg.contains("TLS 1.3"), "{msg}");
    assert!(msg.contains("ProtocolVersion"), "{msg}");
}

async fn refuses_self_signed_server() {
    let pki = Pki::new();
    let leaf = self_signed_leaf(&["127.0.0.1", "localhost"]).unwrap();
    let server = serve_leaf(&pki, &leaf, "self-signed").await;
    let msg = connect_text(get_echo(&pki.client(server.addr)).await);
    assert!(
        msg.contains("invalid peer certificate: UnknownIssuer"),
        "{msg}"
    );
    assert!(msg.contains("self-signed or issued by a CA"), "{msg}");
}

async fn refuses_certificate_from_another_ca() {
    let pki = Pki::new();
    let other = TestCa::new("Some other CA").unwrap();
    let leaf = other.issue(&["127.0.0.1", "localhost"]).unwrap();
    let server = serve_leaf(&pki, &leaf, "other-ca").await;
    let msg = connect_text(get_echo(&pki.client(server.addr)).await);
    assert!(
        msg.contains("invalid peer certificate: UnknownIssuer"),
        "{msg}"
    );
    assert!(msg.contains("CA bundle"), "{msg}");
}

async fn refuses_certificate_for_wrong_host_name() {
    let pki = Pki::new();
    let leaf = pki.ca.issue(&["wrong.example"]).unwrap();
    let server = serve_leaf(&pki, &leaf, "wrong-name").await;
    let msg = connect_text(get_echo(&pki.client(server.addr)).await);
    assert!(msg.contains("not valid for name"), "{msg}");
    assert!(msg.contains("wrong.example"), "{msg}");
    assert!(msg.contains("does not cover the host name"), "{msg}");
}

async fn refuses_expired_certificate() {
    let pki = Pki::new();
    let day = Duration::from_secs(86_400);
    let now = SystemTime::now();
    let leaf = pki
        .ca
        .issue_with_validity(&["127.0.0.1", "localhost"], now - 30 * day, now - day)
        .unwrap();
    let server = serve_leaf(&pki, &leaf, "expired").await;
    let msg = connect_text(get_echo(&pki.client(server.addr)).await);
    assert!(msg.contains("certificate expired"), "{msg}");
    assert!(msg.contains("renew"), "{msg}");
}

async fn system_roots_do_not_trust_a_private_ca() {
    let pki = Pki::new();
    let leaf = pki.ca.issue(&["127.0.0.1"]).unwrap();
    let server = serve_leaf(&pki, &leaf, "server").await;
    let cfg = client_config(None).expect("the harness checked the system trust store");
    let client = HttpsClient::new(&format!("https://{}", server.addr), cfg).unwrap();
    let msg = connect_text(get_echo(&client).await);
    assert!(msg.contains("UnknownIssuer"), "{msg}");
}

async fn plain_http_urls_are_refused() {
    let pki = Pki::new();
    let cfg = client_config(Some(&pki.ca_path)).unwrap();
    for url in ["http://127.0.0.1:8080", "HTTP://platform.example/api"] {
        match HttpsClient::new(url, cfg.clone()) {
            Err(ClientError::BadUrl(msg)) => assert_eq!(
                msg,
                "the platform URL must start with https://; PatchCTL never talks plain HTTP"
            ),
            other => panic!("expected BadUrl for {url}, got {other:?}"),
        }
    }
    // Request paths are appended to the https:// base, so they cannot switch
    // scheme or host; malformed ones are refused before anything is sent.
    let client = HttpsClient::new("https://127.0.0.1:9", cfg).unwrap();
    let err = client
        .json::<(), Value>(Method::GET, "/has space", None, None)
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::BadUrl(_)), "{err:?}");
}

async fn plain_http_server_behind_https_url_is_explained() {
    let pki = Pki::new();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let _ = tcp
                .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
                .await;
        }
    });
    let msg = connect_text(get_echo(&pki.client(addr)).await);
    assert!(msg.contains("TLS"), "{msg}");
    assert!(msg.contains("speaking TLS"), "{msg}");
}

async fn connection_refused_is_distinguished_from_tls_problems() {
    let pki = Pki::new();
    let addr = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap()
    };
    let msg = connect_text(get_echo(&pki.client(addr)).await);
    assert!(msg.contains("refused"), "{msg}");
    assert!(!msg.contains("certificate"), "{msg}");
}

async fn error_status_carries_the_platform_message() {
    let pki = Pki::new();
    let leaf = pki.ca.issue(&["127.0.0.1"]).unwrap();
    let server = serve_leaf(&pki, &leaf, "server").await;
    let client = pki.client(server.addr);

    let err = client
        .json::<_, Value>(
            Method::POST,
            "/unprocessable",
            None,
            Some(&Hello {
                hostname: String::new(),
            }),
        )
        .await
        .unwrap_err();
    match &err {
        ClientError::Status {
            status, message, ..
        } => {
            assert_eq!(*status, 422);
            assert_eq!(message, "hostname must not be empty");
        }
        other => panic!("expected Status, got {other:?}"),
    }
    assert!(!err.is_unauthorized());
    assert!(err.to_string().contains("422"), "{err}");

    // Non-JSON bodies are truncated to 500 characters.
    match client
        .json::<(), Value>(Method::GET, "/text-error", None, None)
        .await
        .unwrap_err()
    {
        ClientError::Status {
            status, message, ..
        } => {
            assert_eq!(status, 502);
            assert_eq!(message.chars().filter(|c| *c == 'x').count(), 500);
        }
        other => panic!("expected Status, got {other:?}"),
    }

    let err = client
        .json::<(), Value>(Method::GET, "/unauthorized-echo", Some("x"), None)
        .await
        .unwrap_err();
    assert!(err.is_unauthorized(), "{err:?}");
}

async fn empty_success_body_decodes_as_unit_and_bad_json_is_decode_error() {
    let pki = Pki::new();
    let leaf = pki.ca.issue(&["127.0.0.1"]).unwrap();
    let server = serve_leaf(&pki, &leaf, "server").await;
    let client = pki.client(server.addr);
    client
        .json::<(), ()>(Method::DELETE, "/no-content", None, None)
        .await
        .unwrap();
    let err = client
        .json::<(), Echo>(Method::GET, "/no-content", None, None)
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Decode(_)), "{err:?}");
}

async fn response_bodies_are_capped() {
    let pki = Pki::new();
    let leaf = pki.ca.issue(&["127.0.0.1"]).unwrap();
    let server = serve_leaf(&pki, &leaf, "server").await;
    let client = pki.client(server.addr).with_max_response_bytes(10_000);
    let err = client
        .json::<(), Value>(Method::GET, "/big", None, None)
        .await
        .unwrap_err();
    match err {
        ClientError::Decode(msg) => assert!(msg.contains("larger than the limit"), "{msg}"),
        other => panic!("expected Decode, got {other:?}"),
    }
    // Under the default cap the same response is read fine (all whitespace → null).
    let v: Value = pki
        .client(server.addr)
        .json::<(), Value>(Method::GET, "/big", None, None)
        .await
        .unwrap();
    assert_eq!(v, Value::Null);
}

async fn slow_answers_time_out() {
    let pki = Pki::new();
    let leaf = pki.ca.issue(&["127.0.0.1"]).unwrap();
    let server = serve_leaf(&pki, &leaf, "server").await;
    let client = pki
        .client(server.addr)
        .with_timeout(Duration::from_millis(300));
    assert_eq!(client.timeout(), Duration::from_millis(300));
    let started = std::time::Instant::now();
    let err = client
        .json::<(), Value>(Method::GET, "/slow", None, None)
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Timeout), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

async fn bearer_token_never_appears_in_errors() {
    let pki = Pki::new();
    let leaf = pki.ca.issue(&["127.0.0.1"]).unwrap();
    let server = serve_leaf(&pki, &leaf, "server").await;
    let bad_leaf = self_signed_leaf(&["127.0.0.1"]).unwrap();
    let bad_server = serve_leaf(&pki, &bad_leaf, "bad").await;
    let refused = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap()
    };
    let client = pki.client(server.addr);

    // Sanity: the server really does echo the token back, so the checks below
    // would catch a leak.
    let echo: Echo = client
        .json::<(), Echo>(Method::GET, "/echo", Some(CANARY), None)
        .await
        .unwrap();
    assert!(echo.authorization.unwrap().contains(CANARY));

    let mut errors = Vec::new();
    // The server puts the Authorization header into its 401 error message.
    errors.push(
        client
            .json::<(), Value>(Method::GET, "/unauthorized-echo", Some(CANARY), None)
            .await
            .unwrap_err(),
    );
    // The server returns the token where a bool is expected (serde quotes it).
    errors.push(
        client
            .json::<(), Echo>(Method::GET, "/decode-echo", Some(CANARY), None)
            .await
            .unwrap_err(),
    );
    errors.push(
        pki.client(bad_server.addr)
            .json::<(), Value>(Method::GET, "/echo", Some(CANARY), None)
            .await
            .unwrap_err(),
    );
    errors.push(
        pki.client(refused)
            .json::<(), Value>(Method::GET, "/echo", Some(CANARY), None)
            .await
            .unwrap_err(),
    );
    errors.push(
        client
            .clone()
            .with_timeout(Duration::from_millis(200))
            .json::<(), Value>(Method::GET, "/slow", Some(CANARY), None)
            .await
            .unwrap_err(),
    );
    let bad_token = format!("{CANARY}\n");
    errors.push(
        client
            .json::<(), Value>(Method::GET, "/echo", Some(&bad_token), None)
            .await
            .unwrap_err(),
    );
    assert!(matches!(errors[0], ClientError::Status { status: 401, .. }));
    assert!(matches!(errors[1], ClientError::Decode(_)));
    assert!(matches!(errors[2], ClientError::Connect(_)));
    assert!(matches!(errors[3], ClientError::Connect(_)));
    assert!(matches!(errors[4], ClientError::Timeout));
    assert!(matches!(errors[5], ClientError::Decode(_)));
    for e in &errors {
        let shown = format!("{e} | {e:?} | {e:#?}");
        assert!(!shown.contains(CANARY), "token leaked: {shown}");
    }
    // The redaction is visible where the server echoed it.
    assert!(
        errors[0].to_string().contains("[redacted]"),
        "{}",
        errors[0]
    );
    assert!(!format!("{client:?}").contains(CANARY));
}
