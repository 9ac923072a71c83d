//! The simulated agents' HTTP client: the agent's own [`patchctl_net::HttpsClient`],
//! one per simulated agent, so each has its own TLS connection.

use std::path::Path;
use std::time::Duration;

use http::Method;
use patchctl_net::{HttpsClient, client_config};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// What the simulated agents use, for tables.
pub const CLIENT_LABEL: &str = "patchctl_net::HttpsClient";

/// One simulated agent's client (its own connection pool, so its own connection).
pub struct LoadClient(HttpsClient);

impl LoadClient {
    /// A new client for `base` trusting `ca`.
    pub fn new(base: &str, ca: &Path, timeout: Duration) -> anyhow::Result<Self> {
        let tls = client_config(Some(ca))?;
        Ok(LoadClient(
            HttpsClient::new(base, tls)?.with_timeout(timeout),
        ))
    }

    /// POSTs `body` as JSON to `path` and decodes the JSON answer.
    pub async fn post<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        path: &str,
        bearer: Option<&str>,
        body: &Req,
    ) -> anyhow::Result<Resp> {
        Ok(self.0.json(Method::POST, path, bearer, Some(body)).await?)
    }
}
