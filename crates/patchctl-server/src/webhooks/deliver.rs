//! One delivery attempt: connect to an address the target check passed (never resolving
//! again), TLS 1.3 verified as everywhere in the platform (`patchctl_net::tls`) for
//! `https://`, POST the signed body, read the status and at most a little of the answer,
//! all within a timeout.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::address::Target;

/// How much of an answer is read (and kept, cut further, in the log).
const MAX_ANSWER: usize = 4 * 1024;

/// What an attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The status code, when the receiver answered.
    pub status: Option<u16>,
    /// What went wrong, or the start of a non-2xx answer.
    pub error: Option<String>,
    /// How long it took.
    pub duration: Duration,
}

impl Answer {
    /// A 2xx answer.
    pub fn delivered(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// The signed headers of one attempt.
pub struct Signed {
    /// `webhook-id`.
    pub id: String,
    /// `webhook-timestamp` (seconds).
    pub timestamp: i64,
    /// `webhook-signature`.
    pub signature: String,
}

/// POSTs `body` to `target` at the first of `addrs` that accepts a connection.
pub async fn post(
    target: &Target,
    addrs: &[SocketAddr],
    tls: Arc<rustls::ClientConfig>,
    signed: &Signed,
    body: Bytes,
    timeout: Duration,
) -> Answer {
    let started = Instant::now();
    let result = tokio::time::timeout(timeout, attempt(target, addrs, tls, signed, body)).await;
    let duration = started.elapsed();
    match result {
        Ok(Ok((status, text))) => {
            let ok = (200..300).contains(&status);
            Answer {
                status: Some(status),
                error: (!ok).then(|| {
                    let t: String = text.chars().filter(|c| !c.is_control()).take(200).collect();
                    format!("HTTP {status}: {t}")
                }),
                duration,
            }
        }
        Ok(Err(e)) => Answer {
            status: None,
            error: Some(e),
            duration,
        },
        Err(_) => Answer {
            status: None,
            error: Some(format!("no answer within {} s", timeout.as_secs())),
            duration,
        },
    }
}

async fn attempt(
    target: &Target,
    addrs: &[SocketAddr],
    tls: Arc<rustls::ClientConfig>,
    signed: &Signed,
    body: Bytes,
) -> Result<(u16, String), String> {
    let mut last = String::from("no address");
    let mut tcp = None;
    for a in addrs {
        match TcpStream::connect(a).await {
            Ok(s) => {
                tcp = Some(s);
                break;
            }
            Err(e) => last = format!("cannot connect to {a}: {e}"),
        }
    }
    let tcp = tcp.ok_or(last)?;
    let _ = tcp.set_nodelay(true);
    if target.tls {
        let name = ServerName::try_from(target.host.clone())
            .map_err(|e| format!("{} is not a TLS server name: {e}", target.host))?;
        let stream = tokio_rustls::TlsConnector::from(tls)
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS handshake with {} failed: {e}", target.host))?;
        send(stream, target, signed, body).await
    } else {
        send(tcp, target, signed, body).await
    }
}

async fn send<S>(
    stream: S,
    target: &Target,
    signed: &Signed,
    body: Bytes,
) -> Result<(u16, String), String>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP handshake failed: {e}"))?;
    let driver = tokio::spawn(conn);
    let request = http::Request::post(target.path.as_str())
        .header(http::header::HOST, target.host_header())
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(
            http::header::USER_AGENT,
            concat!("patchctl-webhooks/", env!("CARGO_PKG_VERSION")),
        )
        .header("webhook-id", signed.id.as_str())
        .header("webhook-timestamp", signed.timestamp.to_string())
        .header("webhook-signature", signed.signature.as_str())
        .body(Full::new(body))
        .map_err(|e| format!("cannot build the request: {e}"))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("request failed: {e}"))?;
    let status = response.status().as_u16();
    let mut body = response.into_body();
    let mut read = Vec::new();
    while read.len() < MAX_ANSWER {
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    read.extend_from_slice(&data[..data.len().min(MAX_ANSWER - read.len())]);
                }
            }
            _ => break,
        }
    }
    driver.abort();
    Ok((status, String::from_utf8_lossy(&read).into_owned()))
}
