//! One simulated agent's connections: the real agent's pattern, without its pool.
//!
//! A real agent heartbeats every 5 minutes through [`patchctl_net::HttpsClient`], whose
//! hyper pool drops an idle connection after 90 s (hyper-util's `pool_idle_timeout`
//! default, which `HttpsClient` keeps). So every heartbeat finds no pooled connection:
//! a new TCP connection and a TLS 1.3 handshake, resumed with a ticket from the agent's
//! previous session (its `rustls::ClientConfig` keeps a session store across
//! connections). Here each simulated agent has its own [`AgentTls`]: a clone of the
//! agent's `patchctl_net::client_config` with its own one-server session store, and its
//! own source address in 127.0.0.0/8 (bound before connecting), so a fleet of agents is
//! a fleet of distinct 4-tuples and distinct addresses for the platform's per-address
//! limits. ALPN offers `h2` then `http/1.1`, as `hyper-rustls` does for the agent.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use http::header::{
    ACCEPT, AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, HOST, HeaderValue, USER_AGENT,
};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::client::{ClientSessionMemoryCache, Resumption};
use rustls::pki_types::ServerName;
use tokio::net::TcpSocket;
use tokio_rustls::TlsConnector;

/// The agent's per-request timeout (`patchctl_net::client::DEFAULT_TIMEOUT`).
pub const REQUEST_TIMEOUT: Duration = patchctl_net::client::DEFAULT_TIMEOUT;

/// Source address of agent `i`: 127.b.c.d with d in 1..=254, skipping 127.0.x.x.
pub fn source_addr(i: usize) -> Ipv4Addr {
    let d = 1 + (i % 254) as u8;
    let c = ((i / 254) % 256) as u8;
    let b = (1 + i / (254 * 256)).min(254) as u8;
    Ipv4Addr::new(127, b, c, d)
}

/// How a TLS handshake went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handshake {
    /// A full handshake (certificate sent and verified).
    Full,
    /// Resumed with a ticket of an earlier session.
    Resumed,
}

/// One agent's TLS client configuration (with its own session store) and source address.
#[derive(Clone)]
pub struct AgentTls {
    config: Arc<rustls::ClientConfig>,
    source: Ipv4Addr,
}

/// The TLS configuration every agent starts from: the agent's own, with ALPN set.
pub fn base_config(ca: &std::path::Path) -> anyhow::Result<rustls::ClientConfig> {
    let mut cfg = (*patchctl_net::client_config(Some(ca))?).clone();
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(cfg)
}

impl AgentTls {
    /// Agent `i`'s configuration: `base` with a session store of its own.
    pub fn new(base: &rustls::ClientConfig, i: usize) -> AgentTls {
        let mut cfg = base.clone();
        cfg.resumption = Resumption::store(Arc::new(ClientSessionMemoryCache::new(1)));
        AgentTls {
            config: Arc::new(cfg),
            source: source_addr(i),
        }
    }

    /// Opens a new connection to `server` from this agent's source address.
    pub async fn open(&self, server: SocketAddr) -> anyhow::Result<Session> {
        let sock = TcpSocket::new_v4()?;
        sock.bind(SocketAddr::V4(SocketAddrV4::new(self.source, 0)))
            .with_context(|| format!("cannot bind the source address {}", self.source))?;
        let tcp = sock
            .connect(server)
            .await
            .with_context(|| format!("cannot connect to {server}"))?;
        tcp.set_nodelay(true)?;
        let name = ServerName::IpAddress(server.ip().into());
        let tls = TlsConnector::from(self.config.clone())
            .connect(name, tcp)
            .await
            .context("TLS handshake failed")?;
        let conn = tls.get_ref().1;
        let handshake = match conn.handshake_kind() {
            Some(rustls::HandshakeKind::Resumed) => Handshake::Resumed,
            _ => Handshake::Full,
        };
        let h2 = conn.alpn_protocol() == Some(&b"h2"[..]);
        let io = TokioIo::new(tls);
        let sender = if h2 {
            let (send, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                .await
                .context("HTTP/2 handshake failed")?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            Sender::H2(send)
        } else {
            let (send, conn) = hyper::client::conn::http1::handshake(io)
                .await
                .context("HTTP/1.1 handshake failed")?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            Sender::H1(send)
        };
        Ok(Session {
            sender,
            handshake,
            authority: server.to_string(),
        })
    }
}

enum Sender {
    H1(hyper::client::conn::http1::SendRequest<Full<Bytes>>),
    H2(hyper::client::conn::http2::SendRequest<Full<Bytes>>),
}

/// An open connection of one agent (HTTP/2 or HTTP/1.1 by ALPN).
pub struct Session {
    sender: Sender,
    /// How its TLS handshake went.
    pub handshake: Handshake,
    authority: String,
}

/// A request's body and how it is encoded.
pub struct Body {
    /// JSON bytes (gzip-compressed when `gzip`).
    pub bytes: Bytes,
    /// Sent with `Content-Encoding: gzip`.
    pub gzip: bool,
}

impl Body {
    /// `value` as JSON.
    pub fn json<T: serde::Serialize>(value: &T) -> anyhow::Result<Body> {
        Ok(Body {
            bytes: Bytes::from(serde_json::to_vec(value)?),
            gzip: false,
        })
    }
}

/// A non-success answer.
#[derive(Debug, thiserror::Error)]
#[error("the platform answered HTTP {status}: {text}")]
pub struct StatusError {
    /// The status.
    pub status: StatusCode,
    /// The start of the body.
    pub text: String,
}

impl Session {
    /// Whether the connection can take another request.
    pub fn is_open(&self) -> bool {
        match &self.sender {
            Sender::H1(s) => !s.is_closed(),
            Sender::H2(s) => !s.is_closed(),
        }
    }

    /// POSTs `body` to `path` and decodes the JSON answer.
    pub async fn post<Resp: serde::de::DeserializeOwned>(
        &mut self,
        path: &str,
        bearer: Option<&str>,
        body: Body,
    ) -> anyhow::Result<Resp> {
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(format!("https://{}{path}", self.authority))
            .header(USER_AGENT, concat!("patchctl/", env!("CARGO_PKG_VERSION")))
            .header(ACCEPT, "application/json")
            .header(CONTENT_TYPE, "application/json");
        if let Sender::H1(_) = self.sender {
            req = req.header(HOST, self.authority.as_str());
        }
        if body.gzip {
            req = req.header(CONTENT_ENCODING, "gzip");
        }
        if let Some(token) = bearer {
            let mut v = HeaderValue::from_str(&format!("Bearer {token}"))?;
            v.set_sensitive(true);
            req = req.header(AUTHORIZATION, v);
        }
        let req = req.body(Full::new(body.bytes))?;
        let resp = match &mut self.sender {
            Sender::H1(s) => {
                s.ready().await?;
                s.send_request(req).await?
            }
            Sender::H2(s) => {
                s.ready().await?;
                s.send_request(req).await?
            }
        };
        let status = resp.status();
        let bytes = resp.into_body().collect().await?.to_bytes();
        if !status.is_success() {
            let text = String::from_utf8_lossy(&bytes[..bytes.len().min(300)]).into_owned();
            return Err(StatusError { status, text }.into());
        }
        serde_json::from_slice(&bytes)
            .with_context(|| format!("the answer to POST {path} is not the expected JSON"))
    }
}

#[cfg(test)]
mod tests {
    use super::source_addr;
    use std::collections::HashSet;

    #[test]
    fn source_addresses_are_distinct_loopback_addresses() {
        let mut seen = HashSet::new();
        for i in 0..200_000 {
            let a = source_addr(i);
            assert!(a.is_loopback(), "{a}");
            assert_ne!(a.octets()[1], 0, "{a}");
            assert!(a.octets()[3] != 0 && a.octets()[3] != 255, "{a}");
            assert!(seen.insert(a), "{i}: {a} twice");
        }
    }
}
