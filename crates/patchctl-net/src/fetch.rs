//! Streaming an artifact from the platform into a file, with a byte limit: what the
//! agent's self-update downloads with. The body is never held whole in memory; more
//! bytes than the limit stop the download at once, and fewer than the announced
//! `Content-Length` are a truncated download, never a short success.

use std::time::Duration;

use http::Method;
use http_body_util::{BodyExt, Full};
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::client::{ClientError, HttpsClient, describe_request_error};

/// Why a download did not complete.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The request failed or the platform answered with an error status.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The platform sent more than the limit.
    #[error("the download is larger than the {limit} bytes expected; stopped")]
    TooLarge {
        /// The limit.
        limit: u64,
    },
    /// The connection ended before the announced length.
    #[error("the download was truncated: {got} of {expected} bytes arrived")]
    Truncated {
        /// `Content-Length`.
        expected: u64,
        /// What arrived.
        got: u64,
    },
    /// The connection broke while the body arrived.
    #[error("the download broke off after {got} bytes: {reason}")]
    Broken {
        /// What arrived.
        got: u64,
        /// Why.
        reason: String,
    },
    /// Writing the bytes failed (a full disk, typically).
    #[error("cannot write the download: {0}")]
    Write(#[source] std::io::Error),
    /// The whole download took longer than allowed.
    #[error("the download did not finish within {0:?}")]
    Timeout(Duration),
}

impl HttpsClient {
    /// `GET path` and writes the body to `sink`, at most `limit` bytes, within
    /// `timeout` for the whole transfer. Returns the number of bytes written.
    pub async fn fetch_to<W: AsyncWrite + Unpin>(
        &self,
        path: &str,
        bearer: Option<&str>,
        sink: &mut W,
        limit: u64,
        timeout: Duration,
    ) -> Result<u64, FetchError> {
        let transfer = async {
            let uri = self.uri_for(path)?;
            let builder =
                self.request_builder(Method::GET, uri, bearer, "application/octet-stream")?;
            let request = builder
                .body(Full::new(bytes::Bytes::new()))
                .map_err(|e| ClientError::BadUrl(format!("cannot build the request: {e}")))?;
            let response = self
                .inner
                .client
                .request(request)
                .await
                .map_err(|e| describe_request_error(&self.inner.origin, &e))?;
            let status = response.status();
            let announced = response
                .headers()
                .get(http::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            let retry_after = response
                .headers()
                .get(http::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let mut body = response.into_body();
            if !status.is_success() {
                let bytes = http_body_util::Limited::new(body, 64 * 1024)
                    .collect()
                    .await
                    .map(|c| c.to_bytes())
                    .unwrap_or_default();
                return Err(
                    ClientError::from_answer(status, retry_after.as_deref(), &bytes).into(),
                );
            }
            if let Some(n) = announced
                && n > limit
            {
                return Err(FetchError::TooLarge { limit });
            }
            let mut got: u64 = 0;
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| FetchError::Broken {
                    got,
                    reason: crate::client::chain_text(&e),
                })?;
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                got += data.len() as u64;
                if got > limit {
                    return Err(FetchError::TooLarge { limit });
                }
                sink.write_all(&data).await.map_err(FetchError::Write)?;
            }
            sink.flush().await.map_err(FetchError::Write)?;
            if let Some(n) = announced
                && got < n
            {
                return Err(FetchError::Truncated { expected: n, got });
            }
            Ok(got)
        };
        tokio::time::timeout(timeout, transfer)
            .await
            .map_err(|_| FetchError::Timeout(timeout))?
            .map_err(|e| match e {
                FetchError::Client(c) => FetchError::Client(c.redact(bearer)),
                other => other,
            })
    }
}
