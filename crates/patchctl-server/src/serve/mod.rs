//! The accept loop: TCP, then a TLS 1.3 handshake (rustls), then HTTP/1.1 or HTTP/2,
//! with the connection limits of docs/limits.md.
//!
//! Every request carries the TCP peer's address as axum's [`ConnectInfo`] in its
//! extensions (the rate limits per source address read it). The platform terminates
//! TLS itself, so this is the client's own address; behind a TCP proxy, every client
//! would share the proxy's.
//!
//! Limits, each counted in the metrics ([`ConnCounters`]):
//! - at most `max_connections` connections (fewer when the open-file limit does not
//!   leave room for them, [`fdlimit`]): one more is closed at once, the loop goes on;
//! - the TLS handshake within [`HANDSHAKE_TIMEOUT`];
//! - HTTP/1.1 request headers within `header_read_timeout_secs` (hyper's timer, which
//!   starts when the connection waits for a request head: on a kept-alive HTTP/1.1
//!   connection it also bounds the wait for the next request);
//! - a connection with no request in flight is closed after `idle_timeout_secs`
//!   ([`conn`]); a request in flight (a long-poll held for minutes, a download) keeps
//!   its connection however long it takes;
//! - a request body within `body_read_timeout_secs` plus a second per
//!   [`conn::MIN_BODY_RATE`] bytes received, else 408 ([`conn`]);
//! - HTTP/2: at most [`MAX_H2_STREAMS`] concurrent streams per connection.
//!
//! At start the process's soft open-file limit is raised to its hard limit
//! ([`fdlimit`]); when `max_connections` does not fit beside the descriptors the
//! database and files need, the node holds only what fits, with a warning.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

use crate::Settings;
use crate::metrics::limits::{ConnCounters, Timeout};
use crate::throttled_log::LogEveryMinute;

pub mod conn;
pub mod fdlimit;

/// Longest a client may take to complete the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Most concurrent HTTP/2 streams per connection: an agent holds one long-poll and
/// sends a heartbeat, a scan or results beside it; an operator's browser a page's worth.
pub const MAX_H2_STREAMS: u32 = 64;

/// The connection limits of the accept loop.
#[derive(Debug, Clone)]
pub struct Options {
    /// Connections held at most.
    pub max_connections: usize,
    /// HTTP/1.1 request headers must arrive within this.
    pub header_read_timeout: Duration,
    /// A connection without a request in flight is closed after this.
    pub idle_timeout: Duration,
    /// A request body must arrive within this, plus a second per
    /// [`conn::MIN_BODY_RATE`] bytes received.
    pub body_read_timeout: Duration,
    /// Where refusals and timeouts are counted.
    pub counters: Arc<ConnCounters>,
}

impl Options {
    /// The limits of `settings`, counted in `counters`.
    pub fn new(settings: &Settings, counters: Arc<ConnCounters>) -> Options {
        Options {
            max_connections: settings.max_connections as usize,
            header_read_timeout: Duration::from_secs(settings.header_read_timeout_secs),
            idle_timeout: Duration::from_secs(settings.idle_timeout_secs),
            body_read_timeout: Duration::from_secs(settings.body_read_timeout_secs),
            counters,
        }
    }
}

/// One accepted connection's share of the cap and of the open-connections gauge.
struct Held {
    _permit: tokio::sync::OwnedSemaphorePermit,
    counters: Arc<ConnCounters>,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.counters.closed();
    }
}

/// Serves `app` over TLS on `listener` until `shutdown` resolves. It cannot fail: a
/// failed accept, handshake or connection is logged and the loop goes on.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    options: Options,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let cap = fdlimit::raise_and_check(options.max_connections);
    let acceptor = TlsAcceptor::from(tls);
    let slots = Arc::new(Semaphore::new(cap.min(Semaphore::MAX_PERMITS)));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(options.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_H2_STREAMS);
    let builder = Arc::new(builder);
    let refusal_log = RefusalLog::default();
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            _ = &mut shutdown => return,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            // Over the cap: closed at once, before any TLS work.
            drop(tcp);
            options.counters.refused();
            refusal_log.note(cap, &options.counters);
            continue;
        };
        options.counters.opened();
        let held = Held {
            _permit: permit,
            counters: options.counters.clone(),
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let app = app.clone();
        let builder = builder.clone();
        let options = options.clone();
        tokio::spawn(async move {
            let _held = held;
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    options.counters.timed_out(Timeout::Handshake);
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            conn::run(&builder, TokioIo::new(tls), peer, app, &options).await;
        });
    }
}

/// Logs refusals by the cap at most once a minute, with how many there were.
#[derive(Default)]
struct RefusalLog(LogEveryMinute);

impl RefusalLog {
    fn note(&self, max: usize, counters: &ConnCounters) {
        let Some(since) = self.0.due(counters.refused_count()) else {
            return;
        };
        tracing::warn!(
            max_connections = max,
            refused = since,
            "connections refused: this node holds all the connections it may (max_connections, or what the open-file limit leaves); add nodes or raise max_connections and the open-file limit"
        );
    }
}
