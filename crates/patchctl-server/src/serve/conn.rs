//! One connection after its TLS handshake: the requests in flight, the idle timeout,
//! and the body-read timeout.
//!
//! A request is in flight from the moment its head has arrived until its response body
//! has been sent whole (or dropped). A connection with none in flight for the idle
//! timeout is shut down gracefully (HTTP/1.1: closed; HTTP/2: GOAWAY), so a long-poll
//! held for minutes or a slow download never counts as idle.
//!
//! A request body must arrive within the body timeout plus one second per
//! [`MIN_BODY_RATE`] bytes received (as Apache's `mod_reqtimeout` does): a large upload
//! at any honest speed gets its time, a body trickled in a byte at a time does not.
//! The clock starts when the handler first reads the body. A body that runs out of time
//! fails its reader, and the answer is replaced by 408 (and, on HTTP/1.1, the
//! connection is closed, since the rest of the body was never read).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Request, Response, StatusCode, Version, header};
use axum::response::IntoResponse;
use hyper::body::{Bytes, Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use hyper_util::server::conn::auto;
use tokio::sync::Notify;
use tokio_rustls::server::TlsStream;
use tower::ServiceExt;

use super::Options;
use crate::error::ApiError;
use crate::metrics::limits::Timeout;

/// Bytes a second a request body must keep up, beyond the body timeout.
pub const MIN_BODY_RATE: f64 = 500.0;

/// Longest wait for a connection to finish after an idle shutdown began (HTTP/2's
/// GOAWAY exchange).
const IDLE_CLOSE_GRACE: Duration = Duration::from_secs(10);

/// The requests of one connection.
#[derive(Debug)]
struct Tracker {
    origin: Instant,
    in_flight: AtomicUsize,
    /// Milliseconds since `origin` when the last request ended.
    last_done_ms: AtomicU64,
    ended: Notify,
}

impl Tracker {
    fn new() -> Arc<Tracker> {
        Arc::new(Tracker {
            origin: Instant::now(),
            in_flight: AtomicUsize::new(0),
            last_done_ms: AtomicU64::new(0),
            ended: Notify::new(),
        })
    }

    /// Resolves once no request has been in flight for `idle`.
    async fn idle_for(&self, idle: Duration) {
        loop {
            if self.in_flight.load(Ordering::Acquire) > 0 {
                // A permit stored by an earlier end makes this return at once; the
                // loop looks again.
                self.ended.notified().await;
                continue;
            }
            let done =
                self.origin + Duration::from_millis(self.last_done_ms.load(Ordering::Acquire));
            let since = done.elapsed();
            if since >= idle {
                if self.in_flight.load(Ordering::Acquire) == 0 {
                    return;
                }
                continue;
            }
            tokio::time::sleep(idle - since).await;
        }
    }
}

/// A request in flight; its drop ends it.
struct InFlight(Arc<Tracker>);

impl InFlight {
    fn start(t: &Arc<Tracker>) -> InFlight {
        t.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(t.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let ms = self.0.origin.elapsed().as_millis() as u64;
        self.0.last_done_ms.fetch_max(ms, Ordering::AcqRel);
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.0.ended.notify_one();
    }
}

/// A response body that holds its request in flight until it is sent or dropped.
struct Tracked {
    inner: Body,
    _in_flight: InFlight,
}

impl hyper::body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The request body ran out of time.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
pub struct BodyTimedOut;

/// A request body read against the body timeout (see the module documentation).
pub struct TimedBody {
    inner: Incoming,
    base: Duration,
    started: Option<Instant>,
    received: u64,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    timed_out: Arc<AtomicBool>,
}

impl TimedBody {
    fn deadline(&self, start: Instant) -> Instant {
        start + self.base + Duration::from_secs_f64(self.received as f64 / MIN_BODY_RATE)
    }
}

impl hyper::body::Body for TimedBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        let start = *this.started.get_or_insert_with(Instant::now);
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(d) = frame.data_ref() {
                    this.received += d.len() as u64;
                }
                return Poll::Ready(Some(Ok(frame)));
            }
            Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => {}
        }
        let deadline = tokio::time::Instant::from_std(this.deadline(start));
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if sleep.deadline() != deadline {
            sleep.as_mut().reset(deadline);
        }
        if sleep.as_mut().poll(cx).is_ready() {
            this.timed_out.store(true, Ordering::Release);
            return Poll::Ready(Some(Err(Box::new(BodyTimedOut))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The 408 that replaces the answer to a request whose body ran out of time.
fn body_timeout_answer(base: Duration, version: Version) -> Response<Body> {
    let mut resp = ApiError::new(
        StatusCode::REQUEST_TIMEOUT,
        format!(
            "the request body did not arrive in time ({} s, plus a second per {MIN_BODY_RATE} bytes received); send the body without pauses",
            base.as_secs()
        ),
    )
    .into_response();
    if version <= Version::HTTP_11 {
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}

/// Serves one TLS connection until it ends, is idle for the idle timeout, or fails.
pub(super) async fn run(
    builder: &auto::Builder<hyper_util::rt::TokioExecutor>,
    io: TokioIo<TlsStream<tokio::net::TcpStream>>,
    peer: SocketAddr,
    app: Router,
    options: &Options,
) {
    let tracker = Tracker::new();
    let svc = {
        let tracker = tracker.clone();
        let counters = options.counters.clone();
        let base = options.body_read_timeout;
        hyper::service::service_fn(move |req: Request<Incoming>| {
            let in_flight = InFlight::start(&tracker);
            let app = app.clone();
            let counters = counters.clone();
            async move {
                let timed_out = Arc::new(AtomicBool::new(false));
                let version = req.version();
                let mut req = req.map(|inner| {
                    Body::new(TimedBody {
                        inner,
                        base,
                        started: None,
                        received: 0,
                        sleep: None,
                        timed_out: timed_out.clone(),
                    })
                });
                req.extensions_mut().insert(ConnectInfo(peer));
                let resp = match app.oneshot(req).await {
                    Ok(r) => r,
                    Err(never) => match never {},
                };
                let resp = if timed_out.load(Ordering::Acquire) {
                    counters.timed_out(Timeout::Body);
                    tracing::debug!(%peer, "request body timed out");
                    body_timeout_answer(base, version)
                } else {
                    resp
                };
                Ok::<_, Infallible>(resp.map(|inner| Tracked {
                    inner,
                    _in_flight: in_flight,
                }))
            }
        })
    };
    let conn = builder.serve_connection(io, svc);
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        () = tracker.idle_for(options.idle_timeout) => {
            options.counters.timed_out(Timeout::Idle);
            tracing::debug!(%peer, "idle connection closed");
            conn.as_mut().graceful_shutdown();
            if tracker.in_flight.load(Ordering::Acquire) > 0 {
                // A request began as the timeout fired: it runs to its end.
                conn.as_mut().await
            } else {
                tokio::time::timeout(IDLE_CLOSE_GRACE, conn.as_mut())
                    .await
                    .unwrap_or(Ok(()))
            }
        }
    };
    if let Err(e) = result {
        let header_timeout = e
            .downcast_ref::<hyper::Error>()
            .is_some_and(hyper::Error::is_timeout);
        if header_timeout {
            options.counters.timed_out(Timeout::Header);
            tracing::debug!(%peer, "request headers timed out");
        } else {
            tracing::debug!(%peer, error = %e, "connection ended with an error");
        }
    }
}
