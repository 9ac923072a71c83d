//! The simulated agents' HTTP client. By default it is the agent's own
//! [`patchctl_net::HttpsClient`]. The `nodelay` variant is a diagnostic: the same
//! hyper-rustls client with the same TLS 1.3 configuration, ALPN and headers, except
//! that its TCP connection has `TCP_NODELAY` set, which `HttpsClient` does not do (its
//! `HttpsConnectorBuilder::build()` leaves Nagle's algorithm on). Comparing the two
//! shows how much of a heartbeat's latency is the client waiting for a delayed ACK
//! rather than the platform working.

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use clap::ValueEnum;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue, USER_AGENT};
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use patchctl_net::{HttpsClient, client_config};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Which client the simulated agents use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ClientKind {
    /// The agent's `patchctl_net::HttpsClient`, as shipped.
    Patchctl,
    /// Diagnostic: the same client stack with `TCP_NODELAY` on its connection.
    Nodelay,
}

impl ClientKind {
    /// Name in tables.
    pub fn label(self) -> &'static str {
        match self {
            ClientKind::Patchctl => "patchctl_net::HttpsClient",
            ClientKind::Nodelay => "same client + TCP_NODELAY",
        }
    }
}

/// One simulated agent's client (its own connection pool, so its own connection).
pub enum LoadClient {
    /// The shipped client.
    Patchctl(HttpsClient),
    /// The diagnostic client.
    Nodelay {
        /// The hyper client.
        client: Box<Client<HttpsConnector<HttpConnector>, Full<Bytes>>>,
        /// `https://host:port`.
        base: String,
        /// Per-request timeout.
        timeout: Duration,
    },
}

impl LoadClient {
    /// A new client for `base` trusting `ca`.
    pub fn new(kind: ClientKind, base: &str, ca: &Path, timeout: Duration) -> anyhow::Result<Self> {
        let tls = client_config(Some(ca))?;
        Ok(match kind {
            ClientKind::Patchctl => {
                LoadClient::Patchctl(HttpsClient::new(base, tls)?.with_timeout(timeout))
            }
            ClientKind::Nodelay => {
                let mut tls = (*tls).clone();
                tls.alpn_protocols.clear();
                let mut http = HttpConnector::new();
                http.enforce_http(false);
                http.set_nodelay(true);
                let connector = HttpsConnectorBuilder::new()
                    .with_tls_config(tls)
                    .https_only()
                    .enable_http1()
                    .enable_http2()
                    .wrap_connector(http);
                LoadClient::Nodelay {
                    client: Box::new(Client::builder(TokioExecutor::new()).build(connector)),
                    base: base.trim_end_matches('/').to_owned(),
                    timeout,
                }
            }
        })
    }

    /// POSTs `body` as JSON to `path` and decodes the JSON answer.
    pub async fn post<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        path: &str,
        bearer: Option<&str>,
        body: &Req,
    ) -> anyhow::Result<Resp> {
        match self {
            LoadClient::Patchctl(c) => Ok(c.json(Method::POST, path, bearer, Some(body)).await?),
            LoadClient::Nodelay {
                client,
                base,
                timeout,
            } => {
                let mut b = Request::builder()
                    .method(Method::POST)
                    .uri(format!("{base}{path}"))
                    .header(USER_AGENT, HeaderValue::from_static("patchctl-bench"))
                    .header(ACCEPT, HeaderValue::from_static("application/json"))
                    .header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                if let Some(t) = bearer {
                    b = b.header(AUTHORIZATION, format!("Bearer {t}"));
                }
                let req = b.body(Full::new(Bytes::from(serde_json::to_vec(body)?)))?;
                let exchange = async {
                    let resp = client.request(req).await?;
                    let status = resp.status();
                    let bytes = resp.into_body().collect().await?.to_bytes();
                    if !status.is_success() {
                        anyhow::bail!(
                            "HTTP {}: {}",
                            status.as_u16(),
                            String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
                        );
                    }
                    Ok(serde_json::from_slice(&bytes)?)
                };
                tokio::time::timeout(*timeout, exchange)
                    .await
                    .map_err(|_| anyhow::anyhow!("no answer within {timeout:?}"))?
            }
        }
    }
}
