//! The test feed server (real TLS 1.3 on loopback, a test CA) and the PostgreSQL
//! database helpers of `vulndb_sync`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use http_body_util::combinators::BoxBody;
use hyper::body::{Body, Frame};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use patchctl_net::download::Downloader;
use patchctl_net::testing::TestCa;
use sqlx::Connection;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

// ---------------------------------------------------------------------------------
// A feed server.

/// How the feed server answers a path.
#[derive(Clone)]
pub enum Answer {
    /// 200 with this ETag, or 304 to `If-None-Match` of it.
    Ok(Bytes, &'static str),
    /// This status, no body.
    Status(u16),
    /// Announces the whole length, sends half, then breaks off.
    Truncated(Bytes),
}

type Reply = Response<BoxBody<Bytes, std::io::Error>>;
/// Path and If-None-Match of every request.
type Log = Arc<Mutex<Vec<(String, Option<String>)>>>;
/// Per import call: the feed and its files (path below the download directory, bytes).
pub type Handed = Vec<(String, Vec<(String, Vec<u8>)>)>;

/// Half of a body, then, a moment later, an error (the connection breaks).
struct HalfThenError(Option<Bytes>, Pin<Box<tokio::time::Sleep>>);

impl Body for HalfThenError {
    type Data = Bytes;
    type Error = std::io::Error;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        if let Some(b) = self.0.take() {
            return Poll::Ready(Some(Ok(Frame::data(b))));
        }
        match self.1.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(()) => Poll::Ready(Some(Err(std::io::Error::other("broken off")))),
        }
    }
}

pub struct FeedServer {
    pub base: String,
    pub ca: PathBuf,
    _dir: tempfile::TempDir,
    routes: Arc<Mutex<HashMap<String, Answer>>>,
    /// Path and If-None-Match of every request.
    log: Log,
}

impl FeedServer {
    pub async fn start() -> FeedServer {
        let dir = tempfile::tempdir().unwrap();
        let ca = TestCa::new("PatchCTL feed sync test CA").unwrap();
        let ca_path = ca.write_cert(dir.path(), "ca.pem").unwrap();
        let (cert, key) = ca
            .issue(&["127.0.0.1", "localhost"])
            .unwrap()
            .write(dir.path(), "server")
            .unwrap();
        let acceptor = TlsAcceptor::from(patchctl_net::tls::server_config(&cert, &key).unwrap());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("https://{}", listener.local_addr().unwrap());
        let routes: Arc<Mutex<HashMap<String, Answer>>> = Arc::default();
        let log: Log = Arc::default();
        let (r, l) = (routes.clone(), log.clone());
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, routes, log) = (acceptor.clone(), r.clone(), l.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                        let (routes, log) = (routes.clone(), log.clone());
                        async move { Ok::<_, Infallible>(answer(&req, &routes, &log)) }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        FeedServer {
            base,
            ca: ca_path,
            _dir: dir,
            routes,
            log,
        }
    }

    pub fn set(&self, path: &str, answer: Answer) {
        self.routes.lock().unwrap().insert(path.to_owned(), answer);
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The paths requested since the last call.
    pub fn requests(&self) -> Vec<(String, Option<String>)> {
        std::mem::take(&mut *self.log.lock().unwrap())
    }

    pub fn paths(&self) -> Vec<String> {
        self.requests().into_iter().map(|(p, _)| p).collect()
    }

    pub fn downloader(&self) -> Downloader {
        Downloader::new(patchctl_net::client_config(Some(&self.ca)).unwrap())
    }
}

fn answer(
    req: &Request<hyper::body::Incoming>,
    routes: &Mutex<HashMap<String, Answer>>,
    log: &Mutex<Vec<(String, Option<String>)>>,
) -> Reply {
    let path = req.uri().path().to_owned();
    let inm = req
        .headers()
        .get("if-none-match")
        .map(|v| v.to_str().unwrap().to_owned());
    log.lock().unwrap().push((path.clone(), inm.clone()));
    let full = |b: Bytes| {
        http_body_util::Full::new(b)
            .map_err(|never| match never {})
            .boxed()
    };
    let answer = routes.lock().unwrap().get(&path).cloned();
    match answer {
        Some(Answer::Ok(_, etag)) if inm.as_deref() == Some(etag) => Response::builder()
            .status(StatusCode::NOT_MODIFIED)
            .header("etag", etag)
            .body(full(Bytes::new())),
        Some(Answer::Ok(body, etag)) => Response::builder().header("etag", etag).body(full(body)),
        Some(Answer::Status(s)) => Response::builder()
            .status(s)
            .body(full(Bytes::from_static(b"oops"))),
        Some(Answer::Truncated(body)) => {
            let half = body.slice(..body.len() / 2);
            Response::builder()
                .header("content-length", body.len())
                .body(
                    HalfThenError(
                        Some(half),
                        Box::pin(tokio::time::sleep(Duration::from_millis(300))),
                    )
                    .boxed(),
                )
        }
        None => Response::builder()
            .status(StatusCode::NOT_FOUND)
            .body(full(Bytes::from_static(b"no such file"))),
    }
    .unwrap()
}

/// and the server's.
pub async fn postgres_db() -> (String, String, String) {
    let base = std::env::var(patchctl_testkit::POSTGRES_ENV).unwrap();
    let name = format!("patchctl_sync_{}", uuid_like());
    let mut conn = sqlx::PgConnection::connect(&base).await.unwrap();
    sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .unwrap();
    let _ = conn.close().await;
    let (main, query) = base
        .split_once('?')
        .map_or((base.as_str(), None), |(m, q)| (m, Some(q)));
    let start = main.find("://").map_or(0, |i| i + 3);
    let root = main[start..].find('/').map_or(main, |i| &main[..start + i]);
    let url = match query {
        Some(q) => format!("{root}/{name}?{q}"),
        None => format!("{root}/{name}"),
    };
    (url, base, name)
}

fn uuid_like() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    );
    format!("{:016x}", h.finish())
}

pub async fn drop_db(base: &str, name: &str) {
    if let Ok(mut conn) = sqlx::PgConnection::connect(base).await {
        let _ = sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut conn)
            .await;
        let _ = conn.close().await;
    }
}
