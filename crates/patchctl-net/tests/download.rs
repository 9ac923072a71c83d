//! Real-TLS integration tests for `download::Downloader`.
//!
//! Each test starts a TLS 1.3 server on 127.0.0.1:0 (tokio-rustls + hyper,
//! HTTP/2 or HTTP/1.1 through ALPN) presenting a certificate from a test CA,
//! records the headers of every request it gets, and checks what the
//! downloader makes of its answers: bodies with validators, 304s, redirects,
//! error statuses, oversized and endless bodies, stalls, refused connections,
//! untrusted certificates, and that credentials never show up in errors.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use patchctl_net::download::{DownloadError, Downloader, Fetched, MAX_REDIRECTS, Validators};
use patchctl_net::testing::TestCa;
use patchctl_net::{client_config, server_config};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

const FEED: &[u8] = br#"{"schema_version":"1.6.0","id":"ALSA-2024:0001"}"#;
const ETAG: &str = "\"feed-v1\"";
const LAST_MODIFIED: &str = "Wed, 21 Oct 2015 07:28:00 GMT";
/// 1 MiB and a bit: several DATA frames / chunks.
const LARGE_LEN: usize = 1024 * 1024 + 17;
const MIB: u64 = 1024 * 1024;
const SECRET: &str = "hunter2-9c41";

/// What the server saw of one request.
#[derive(Debug, Clone)]
struct Seen {
    host: String,
    path: String,
    if_none_match: Option<String>,
    if_modified_since: Option<String>,
    authorization: Option<String>,
}

type Log = Arc<Mutex<Vec<Seen>>>;
type Reply = Response<BoxBody<Bytes, Infallible>>;

/// An endless body of 16 KiB chunks.
struct Endless;

impl Body for Endless {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        static CHUNK: [u8; 16 * 1024] = [b'x'; 16 * 1024];
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(&CHUNK)))))
    }
}

/// One chunk, then nothing, forever (the connection stays open).
struct Stall {
    sent: bool,
}

impl Body for Stall {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.sent {
            return Poll::Pending;
        }
        self.sent = true;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"partial")))))
    }
}

fn reply(status: StatusCode, headers: &[(&str, &str)], body: impl Into<Bytes>) -> Reply {
    let mut response = Response::builder().status(status);
    for (name, value) in headers {
        response = response.header(*name, *value);
    }
    response.body(Full::new(body.into()).boxed()).unwrap()
}

fn redirect(status: StatusCode, location: &str) -> Reply {
    reply(status, &[("location", location)], Bytes::new())
}

async fn handle(req: Request<Incoming>, log: Log) -> Result<Reply, Infallible> {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    };
    // host:port, from the HTTP/2 :authority or the HTTP/1.1 Host header.
    let host = req
        .uri()
        .authority()
        .map(|a| a.to_string())
        .or_else(|| header("host"))
        .unwrap_or_default();
    let seen = Seen {
        host,
        path: req.uri().path().to_string(),
        if_none_match: header("if-none-match"),
        if_modified_since: header("if-modified-since"),
        authorization: header("authorization"),
    };
    log.lock().unwrap().push(seen.clone());
    let validators = [("etag", ETAG), ("last-modified", LAST_MODIFIED)];
    Ok(match seen.path.as_str() {
        "/feed.json" => {
            let fresh = match &seen.if_none_match {
                Some(tag) => tag == ETAG,
                None => seen.if_modified_since.as_deref() == Some(LAST_MODIFIED),
            };
            if fresh {
                reply(StatusCode::NOT_MODIFIED, &validators, Bytes::new())
            } else {
                reply(StatusCode::OK, &validators, FEED)
            }
        }
        "/no-validators" => reply(StatusCode::OK, &[], FEED),
        "/large" => reply(StatusCode::OK, &[], vec![b'a'; LARGE_LEN]),
        "/endless" => Response::new(Endless.boxed()),
        "/stall" => Response::new(Stall { sent: false }.boxed()),
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(10)).await;
            reply(StatusCode::OK, &[], FEED)
        }
        "/old/feed.json" => redirect(StatusCode::MOVED_PERMANENTLY, "/feed.json"),
        "/hop/a" => redirect(StatusCode::FOUND, "b"),
        "/hop/b" => redirect(StatusCode::TEMPORARY_REDIRECT, "../feed.json"),
        "/loop" => redirect(StatusCode::FOUND, "/loop"),
        "/to-http" => redirect(StatusCode::FOUND, "http://127.0.0.1:1/feed.json?token=x"),
        "/no-location" => reply(StatusCode::FOUND, &[], Bytes::new()),
        "/private" => {
            let expected = format!("Basic {}", "ZmVlZHVzZXI6aHVudGVyMi05YzQx"); // feeduser:hunter2-9c41
            if seen.authorization.as_deref() == Some(expected.as_str()) {
                reply(StatusCode::OK, &[], FEED)
            } else {
                reply(StatusCode::UNAUTHORIZED, &[], Bytes::new())
            }
        }
        "/private-moved" => redirect(StatusCode::FOUND, "/private"),
        "/cross-origin" => {
            let port = seen.host.rsplit_once(':').map_or("", |(_, p)| p);
            redirect(
                StatusCode::FOUND,
                &format!("https://localhost:{port}/private"),
            )
        }
        "/unasked-304" => reply(StatusCode::NOT_MODIFIED, &validators, Bytes::new()),
        "/broken" => reply(StatusCode::INTERNAL_SERVER_ERROR, &[], "oops"),
        _ => reply(StatusCode::NOT_FOUND, &[], "no such file"),
    })
}

struct Server {
    addr: SocketAddr,
    log: Log,
    _dir: tempfile::TempDir,
    ca_path: PathBuf,
}

impl Server {
    /// Starts a TLS 1.3 server with a certificate for 127.0.0.1 and localhost from a fresh CA.
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ca = TestCa::new("PatchCTL download test CA").unwrap();
        let ca_path = ca.write_cert(dir.path(), "ca.pem").unwrap();
        let leaf = ca.issue(&["127.0.0.1", "localhost"]).unwrap();
        let (cert, key) = leaf.write(dir.path(), "server").unwrap();
        let acceptor = TlsAcceptor::from(server_config(&cert, &key).unwrap());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let log = Log::default();
        let server_log = log.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let log = server_log.clone();
                tokio::spawn(async move {
                    // Handshake failures are what some tests are about: ignore them here.
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = service_fn(move |req| handle(req, log.clone()));
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        Server {
            addr,
            log,
            _dir: dir,
            ca_path,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
    }

    fn downloader(&self) -> Downloader {
        Downloader::new(client_config(Some(&self.ca_path)).unwrap())
    }

    fn seen(&self) -> Vec<Seen> {
        self.log.lock().unwrap().clone()
    }

    fn paths(&self) -> Vec<String> {
        self.seen().into_iter().map(|s| s.path).collect()
    }
}

/// Fetches and records every progress call.
async fn fetch(
    downloader: &Downloader,
    url: &str,
    known: &Validators,
) -> (Result<Fetched, DownloadError>, Vec<(u64, Option<u64>)>) {
    let mut calls = Vec::new();
    let result = downloader
        .fetch(url, known, &mut |received, total| {
            calls.push((received, total))
        })
        .await;
    (result, calls)
}

fn body(result: Result<Fetched, DownloadError>) -> (Vec<u8>, Validators) {
    match result {
        Ok(Fetched::Body { bytes, validators }) => (bytes, validators),
        other => panic!("expected a body, got {other:?}"),
    }
}

fn error(result: Result<Fetched, DownloadError>) -> DownloadError {
    let err = result.expect_err("expected an error");
    eprintln!("error: {err}");
    err
}

#[tokio::test]
async fn body_with_validators_then_not_modified() {
    let server = Server::start().await;
    let downloader = server.downloader();
    let url = server.url("/feed.json");

    let (result, calls) = fetch(&downloader, &url, &Validators::default()).await;
    let (bytes, validators) = body(result);
    assert_eq!(bytes, FEED);
    assert_eq!(validators.etag.as_deref(), Some(ETAG));
    assert_eq!(validators.last_modified.as_deref(), Some(LAST_MODIFIED));
    assert_eq!(
        calls.last(),
        Some(&(FEED.len() as u64, Some(FEED.len() as u64)))
    );

    let (result, calls) = fetch(&downloader, &url, &validators).await;
    assert!(matches!(result, Ok(Fetched::NotModified)), "{result:?}");
    assert!(calls.is_empty(), "{calls:?}");

    // Last-Modified alone is enough for this server.
    let only_date = Validators {
        etag: None,
        last_modified: Some(LAST_MODIFIED.into()),
    };
    let (result, _) = fetch(&downloader, &url, &only_date).await;
    assert!(matches!(result, Ok(Fetched::NotModified)), "{result:?}");

    // A stale ETag gets the new body.
    let stale = Validators {
        etag: Some("\"feed-v0\"".into()),
        last_modified: None,
    };
    let (bytes, _) = body(fetch(&downloader, &url, &stale).await.0);
    assert_eq!(bytes, FEED);

    let seen = server.seen();
    assert_eq!(seen.len(), 4);
    assert_eq!(seen[0].if_none_match, None);
    assert_eq!(seen[0].if_modified_since, None);
    assert_eq!(seen[1].if_none_match.as_deref(), Some(ETAG));
    assert_eq!(seen[1].if_modified_since.as_deref(), Some(LAST_MODIFIED));
    assert_eq!(seen[2].if_none_match, None);
    assert_eq!(seen[2].if_modified_since.as_deref(), Some(LAST_MODIFIED));
    assert_eq!(seen[3].if_none_match.as_deref(), Some("\"feed-v0\""));
    assert!(seen.iter().all(|s| s.authorization.is_none()));
}

#[tokio::test]
async fn missing_validators_are_none_and_unasked_304_is_an_error() {
    let server = Server::start().await;
    let downloader = server.downloader();
    let (bytes, validators) = body(
        fetch(
            &downloader,
            &server.url("/no-validators"),
            &Validators::default(),
        )
        .await
        .0,
    );
    assert_eq!(bytes, FEED);
    assert_eq!(validators, Validators::default());

    // 304 cannot mean "your copy is current" when there is no copy.
    let err = error(
        fetch(
            &downloader,
            &server.url("/unasked-304"),
            &Validators::default(),
        )
        .await
        .0,
    );
    assert!(
        matches!(err, DownloadError::Status { status: 304, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("unconditional request"), "{err}");
}

#[tokio::test]
async fn progress_reports_the_final_count() {
    let server = Server::start().await;
    let (result, calls) = fetch(
        &server.downloader(),
        &server.url("/large"),
        &Validators::default(),
    )
    .await;
    let (bytes, _) = body(result);
    assert_eq!(bytes.len(), LARGE_LEN);
    assert!(bytes.iter().all(|b| *b == b'a'));
    let total = LARGE_LEN as u64;
    assert_eq!(calls.last(), Some(&(total, Some(total))));
    assert!(calls.windows(2).all(|w| w[0].0 < w[1].0), "{calls:?}");
    assert!(calls.iter().all(|(_, t)| *t == Some(total)), "{calls:?}");
}

#[tokio::test]
async fn redirects_are_followed() {
    let server = Server::start().await;
    let downloader = server.downloader();
    let (bytes, validators) = body(
        fetch(
            &downloader,
            &server.url("/old/feed.json"),
            &Validators::default(),
        )
        .await
        .0,
    );
    assert_eq!(bytes, FEED);
    assert_eq!(validators.etag.as_deref(), Some(ETAG));

    // Relative locations, and the validators travel along.
    let known = Validators {
        etag: Some(ETAG.into()),
        last_modified: None,
    };
    let (result, _) = fetch(&downloader, &server.url("/hop/a"), &known).await;
    assert!(matches!(result, Ok(Fetched::NotModified)), "{result:?}");

    assert_eq!(
        server.paths(),
        [
            "/old/feed.json",
            "/feed.json",
            "/hop/a",
            "/hop/b",
            "/feed.json"
        ]
    );
    assert_eq!(server.seen()[4].if_none_match.as_deref(), Some(ETAG));
}

#[tokio::test]
async fn redirect_limits_and_plain_http_targets() {
    let server = Server::start().await;
    let downloader = server.downloader();

    let err = error(
        fetch(&downloader, &server.url("/loop"), &Validators::default())
            .await
            .0,
    );
    match &err {
        DownloadError::TooManyRedirects { url, limit } => {
            assert_eq!(url, &server.url("/loop"));
            assert_eq!(*limit, MAX_REDIRECTS);
        }
        other => panic!("expected TooManyRedirects, got {other:?}"),
    }
    assert_eq!(server.paths().len(), MAX_REDIRECTS + 1);

    let err = error(
        fetch(&downloader, &server.url("/to-http"), &Validators::default())
            .await
            .0,
    );
    match &err {
        DownloadError::BadUrl { url, reason } => {
            assert_eq!(url, "http://127.0.0.1:1/feed.json");
            assert!(reason.contains("/to-http redirected there"), "{reason}");
            assert!(
                reason.contains("only https:// URLs are accepted"),
                "{reason}"
            );
        }
        other => panic!("expected BadUrl, got {other:?}"),
    }
    assert!(!err.to_string().contains("token=x"), "{err}");

    let err = error(
        fetch(
            &downloader,
            &server.url("/no-location"),
            &Validators::default(),
        )
        .await
        .0,
    );
    assert!(
        matches!(err, DownloadError::Status { status: 302, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn error_statuses_name_url_and_status() {
    let server = Server::start().await;
    let downloader = server.downloader();
    let url = server.url("/missing.json");
    let err = error(fetch(&downloader, &url, &Validators::default()).await.0);
    match &err {
        DownloadError::Status { url: shown, status } => {
            assert_eq!(shown, &url);
            assert_eq!(*status, 404);
        }
        other => panic!("expected Status, got {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        format!("{url} answered HTTP 404 Not Found; check the feed URL in the configuration")
    );

    let err = error(
        fetch(&downloader, &server.url("/broken"), &Validators::default())
            .await
            .0,
    );
    assert!(
        matches!(err, DownloadError::Status { status: 500, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("try again later"), "{err}");
}

#[tokio::test]
async fn bodies_over_the_limit_are_refused_without_buffering_them() {
    let server = Server::start().await;
    let downloader = server.downloader().with_max_bytes(MIB);

    // No length declared and no end: only a streaming check can stop this.
    let started = Instant::now();
    let (result, calls) = fetch(&downloader, &server.url("/endless"), &Validators::default()).await;
    let err = error(result);
    match &err {
        DownloadError::TooLarge { url, limit } => {
            assert_eq!(url, &server.url("/endless"));
            assert_eq!(*limit, MIB);
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    assert!(err.to_string().contains("1048576 bytes"), "{err}");
    assert!(
        err.to_string().contains("patchctl vulndb import FILE"),
        "{err}"
    );
    assert!(
        calls.iter().all(|(n, t)| *n <= MIB && t.is_none()),
        "{calls:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(20));

    // A declared length over the limit fails before any of the body is read.
    let (result, calls) = fetch(&downloader, &server.url("/large"), &Validators::default()).await;
    assert!(
        matches!(error(result), DownloadError::TooLarge { limit: MIB, .. }),
        "expected TooLarge"
    );
    assert!(calls.is_empty(), "{calls:?}");

    // Exactly at the limit is fine.
    let exact = server.downloader().with_max_bytes(LARGE_LEN as u64);
    let (bytes, _) = body(
        fetch(&exact, &server.url("/large"), &Validators::default())
            .await
            .0,
    );
    assert_eq!(bytes.len(), LARGE_LEN);
}

#[tokio::test]
async fn closed_port_says_what_to_do() {
    let addr = {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap()
    };
    let server = Server::start().await;
    let url = format!("https://feeduser:{SECRET}@{addr}/osv/all.zip?token={SECRET}");
    let err = error(
        fetch(&server.downloader(), &url, &Validators::default())
            .await
            .0,
    );
    match &err {
        DownloadError::Connect { url, detail } => {
            assert_eq!(url, &format!("https://{addr}/osv/all.zip"));
            assert!(detail.contains("Connection refused"), "{detail}");
        }
        other => panic!("expected Connect, got {other:?}"),
    }
    let text = err.to_string();
    assert!(text.starts_with(&format!(
        "this machine cannot reach https://{addr}/osv/all.zip"
    )));
    assert!(text.contains("patchctl vulndb import FILE"), "{text}");
    assert!(!format!("{err} {err:?}").contains(SECRET), "{text}");
}

#[tokio::test]
async fn only_https_urls_are_accepted() {
    let server = Server::start().await;
    let downloader = server.downloader();
    for url in [
        format!("http://{}/feed.json", server.addr),
        format!("HTTP://feeduser:{SECRET}@{}/feed.json", server.addr),
        "ftp://mirror.example/feed.json".to_string(),
        "mirror.example/feed.json".to_string(),
    ] {
        let err = error(fetch(&downloader, &url, &Validators::default()).await.0);
        match &err {
            DownloadError::BadUrl { reason, .. } => {
                assert!(
                    reason.contains("only https:// URLs are accepted"),
                    "{reason}"
                )
            }
            other => panic!("expected BadUrl for {url}, got {other:?}"),
        }
        assert!(!format!("{err} {err:?}").contains(SECRET), "{err}");
    }
    let err = error(
        fetch(
            &downloader,
            &format!("http://u:{SECRET}@{}/f?t=1", server.addr),
            &Validators::default(),
        )
        .await
        .0,
    );
    assert!(
        err.to_string()
            .starts_with(&format!("cannot download http://{}/f: ", server.addr)),
        "{err}"
    );
    // Nothing was sent anywhere.
    assert!(server.seen().is_empty());
}

#[tokio::test]
async fn untrusted_certificate_is_a_tls_error() {
    let server = Server::start().await;
    let dir = tempfile::tempdir().unwrap();
    let other_ca = TestCa::new("Some other CA")
        .unwrap()
        .write_cert(dir.path(), "other.pem")
        .unwrap();
    let downloader = Downloader::new(client_config(Some(&other_ca)).unwrap());
    let err = error(
        fetch(
            &downloader,
            &server.url("/feed.json"),
            &Validators::default(),
        )
        .await
        .0,
    );
    match &err {
        DownloadError::Tls { url, detail } => {
            assert_eq!(url, &server.url("/feed.json"));
            assert!(detail.contains("UnknownIssuer"), "{detail}");
            assert!(detail.contains("CA bundle"), "{detail}");
        }
        other => panic!("expected Tls, got {other:?}"),
    }
    assert!(server.seen().is_empty());

    // The system roots do not trust the test CA either (when this machine has any).
    if let Ok(system) = client_config(None) {
        let err = error(
            fetch(
                &Downloader::new(system),
                &server.url("/feed.json"),
                &Validators::default(),
            )
            .await
            .0,
        );
        assert!(matches!(err, DownloadError::Tls { .. }), "{err:?}");
    }
}

#[tokio::test]
async fn slow_heads_and_stalled_bodies_time_out() {
    let server = Server::start().await;
    let timeout = Duration::from_millis(300);
    let downloader = server.downloader().with_timeout(timeout);
    for path in ["/slow", "/stall"] {
        // Bounded from outside too, so that a missing timeout fails instead of hanging.
        let outer = Duration::from_secs(5);
        let (url, known) = (server.url(path), Validators::default());
        let err = match tokio::time::timeout(outer, fetch(&downloader, &url, &known)).await {
            Ok((result, _)) => error(result),
            Err(_) => panic!("{path}: the downloader's timeout did not fire within {outer:?}"),
        };
        match &err {
            DownloadError::Timeout { url, timeout: t } => {
                assert_eq!(url, &server.url(path));
                assert_eq!(*t, timeout);
            }
            other => panic!("expected Timeout for {path}, got {other:?}"),
        }
        assert!(err.to_string().contains("within 0.3 s"), "{err}");
    }
}

#[tokio::test]
async fn url_credentials_are_sent_to_their_origin_only_and_never_shown() {
    let server = Server::start().await;
    let downloader = server.downloader();
    let port = server.addr.port();
    let with_user =
        |host: &str, path: &str| format!("https://feeduser:{SECRET}@{host}:{port}{path}");

    let (bytes, _) = body(
        fetch(
            &downloader,
            &with_user("127.0.0.1", "/private"),
            &Validators::default(),
        )
        .await
        .0,
    );
    assert_eq!(bytes, FEED);
    // Kept across a same-origin redirect.
    let (bytes, _) = body(
        fetch(
            &downloader,
            &with_user("127.0.0.1", "/private-moved"),
            &Validators::default(),
        )
        .await
        .0,
    );
    assert_eq!(bytes, FEED);

    // Errors with credentials in the URL do not show them.
    let err = error(
        fetch(
            &downloader,
            &with_user("localhost", "/missing"),
            &Validators::default(),
        )
        .await
        .0,
    );
    assert!(
        matches!(err, DownloadError::Status { status: 404, .. }),
        "{err:?}"
    );
    assert!(!format!("{err} {err:?}").contains(SECRET), "{err}");

    // Dropped on a redirect to another origin (same server, other host name):
    // the server then answers 401.
    let err = error(
        fetch(
            &downloader,
            &with_user("127.0.0.1", "/cross-origin"),
            &Validators::default(),
        )
        .await
        .0,
    );
    assert!(
        matches!(err, DownloadError::Status { status: 401, .. }),
        "{err:?}"
    );

    let seen = server.seen();
    let paths: Vec<_> = seen
        .iter()
        .map(|s| (s.host.as_str(), s.path.as_str()))
        .collect();
    let (local, named) = (format!("127.0.0.1:{port}"), format!("localhost:{port}"));
    assert_eq!(
        paths,
        [
            (local.as_str(), "/private"),
            (local.as_str(), "/private-moved"),
            (local.as_str(), "/private"),
            (named.as_str(), "/missing"),
            (local.as_str(), "/cross-origin"),
            (named.as_str(), "/private"),
        ]
    );
    let sent: Vec<bool> = seen.iter().map(|s| s.authorization.is_some()).collect();
    assert_eq!(sent, [true, true, true, true, true, false]);
}

#[test]
fn fetch_future_is_send() {
    fn assert_send<T: Send>(_: T) {}
    let downloader = Downloader::new(client_config(None).unwrap_or_else(|_| {
        let dir = tempfile::tempdir().unwrap();
        let ca = TestCa::new("send check").unwrap();
        client_config(Some(&ca.write_cert(dir.path(), "ca.pem").unwrap())).unwrap()
    }));
    let known = Validators::default();
    let mut progress = |_: u64, _: Option<u64>| {};
    assert_send(downloader.fetch("https://localhost/x", &known, &mut progress));
}
