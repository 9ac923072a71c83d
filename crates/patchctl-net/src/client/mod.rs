//! The HTTPS JSON client used by the agent and the CLI to talk to the platform.
//!
//! [`HttpsClient`] only speaks HTTPS (TLS 1.3, certificates verified by the
//! [`rustls::ClientConfig`] it is given, normally from
//! [`crate::client_config`]); `http://` URLs are refused when the client is
//! built. It negotiates HTTP/2 or HTTP/1.1 through ALPN, keeps connections in
//! a pool for reuse, and is cheap to clone. Errors say what went wrong in
//! terms an operator can act on: a rejected certificate (with the rustls
//! reason), a TLS version mismatch, a refused connection, a timeout, or the
//! platform's own error message. The bearer token passed to a request never
//! appears in any error text or `Debug` output. A 429 or 503 answer with
//! `Retry-After` is a [`ClientError::RetryLater`]: [`ClientError::retry_after`] says
//! how long the platform asked the caller to wait.

use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{
    ACCEPT, AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, HeaderValue, USER_AGENT,
};
use http::{Method, Request, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;
use serde::de::DeserializeOwned;

mod error;

pub use error::ClientError;
#[cfg(test)]
use error::{MAX_ERROR_TEXT, REDACTED, error_code, error_message};
pub use error::{MAX_RETRY_AFTER, parse_retry_after};

/// Default per-request timeout (connect, TLS handshake, request and full response body).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Default cap on a response body (64 MiB); larger responses fail with [`ClientError::Decode`].
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// An answer with the `Date` header it came with ([`HttpsClient::json_dated`]).
#[derive(Debug)]
pub struct Dated<T> {
    /// The decoded answer, or why there is none.
    pub result: Result<T, ClientError>,
    /// The answer's `Date` header (IMF-fixdate), when an answer came with one.
    pub date: Option<String>,
}

/// Headers of an answer that some callers want.
#[derive(Debug, Default)]
struct Seen {
    /// `Date` (IMF-fixdate), for comparing clocks.
    date: Option<String>,
    /// `X-Next-Cursor`, the next page of a list.
    next_cursor: Option<String>,
    /// `Retry-After` (of a 429 or 503).
    retry_after: Option<String>,
}

/// HTTPS JSON client for the platform API.
///
/// Built from a base URL (`https://host[:port][/prefix]`) and a TLS client
/// configuration. Clones share the connection pool.
#[derive(Clone)]
pub struct HttpsClient {
    pub(crate) inner: Arc<Inner>,
    timeout: Duration,
    max_response_bytes: usize,
}

pub(crate) struct Inner {
    pub(crate) client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    /// `https://authority` without trailing slash.
    pub(crate) origin: String,
    /// Path prefix without trailing slash (possibly empty).
    prefix: String,
    pub(crate) user_agent: HeaderValue,
}

impl fmt::Debug for HttpsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpsClient")
            .field("base_url", &self.base_url())
            .field("timeout", &self.timeout)
            .field("max_response_bytes", &self.max_response_bytes)
            .finish_non_exhaustive()
    }
}

impl HttpsClient {
    /// Creates a client for `base_url` using `tls` (see [`crate::client_config`]).
    ///
    /// `base_url` must be `https://host[:port]` optionally followed by a path
    /// prefix that is put in front of every request path. `http://` and any
    /// other scheme are refused, as are user names/passwords, queries and
    /// fragments in the URL. ALPN protocols already set in `tls` are replaced
    /// by `h2`, `http/1.1`.
    pub fn new(base_url: &str, tls: Arc<rustls::ClientConfig>) -> Result<Self, ClientError> {
        let (origin, prefix) = parse_base_url(base_url)?;
        let client = https_only_client(&tls);
        let user_agent = HeaderValue::from_static(concat!("patchctl/", env!("CARGO_PKG_VERSION")));
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                origin,
                prefix,
                user_agent,
            }),
            timeout: DEFAULT_TIMEOUT,
            max_response_bytes: MAX_RESPONSE_BYTES,
        })
    }

    /// Returns this client with a different per-request timeout (default 30 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Returns this client with a different response body cap (default [`MAX_RESPONSE_BYTES`]).
    pub fn with_max_response_bytes(mut self, max: usize) -> Self {
        self.max_response_bytes = max;
        self
    }

    /// The per-request timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The base URL, normalised (`https://host:port/prefix`, no trailing slash).
    pub fn base_url(&self) -> String {
        format!("{}{}", self.inner.origin, self.inner.prefix)
    }

    /// Sends a JSON request and decodes the JSON response.
    ///
    /// `path` is appended to the base URL (a leading `/` is added if missing;
    /// it may carry a query string). `bearer` is sent as
    /// `Authorization: Bearer <token>`. `body`, when given, is serialised as
    /// JSON with `Content-Type: application/json`. A success status with an
    /// empty body decodes as JSON `null` (so `()` and `Option<T>` work).
    /// The whole exchange, including reading the body (capped at
    /// [`MAX_RESPONSE_BYTES`]), is bounded by the client's timeout.
    pub async fn json<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        bearer: Option<&str>,
        body: Option<&Req>,
    ) -> Result<Resp, ClientError> {
        let payload = match body {
            Some(b) => Some((
                Bytes::from(serde_json::to_vec(b).map_err(|e| {
                    ClientError::Decode(format!("cannot encode the request body as JSON: {e}"))
                })?),
                false,
            )),
            None => None,
        };
        self.json_inner(method, path, bearer, payload)
            .await
            .map_err(|e| e.redact(bearer))
    }

    /// Like [`HttpsClient::json`], with a body that is already JSON bytes, sent with
    /// `Content-Encoding: gzip` when `gzip` is true.
    pub async fn json_bytes<Resp: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        bearer: Option<&str>,
        body: Vec<u8>,
        gzip: bool,
    ) -> Result<Resp, ClientError> {
        self.json_inner(method, path, bearer, Some((Bytes::from(body), gzip)))
            .await
            .map_err(|e| e.redact(bearer))
    }

    /// Like [`HttpsClient::json`] without a body, also returning the `Date` header of
    /// the answer (success or error), as sent, for comparing clocks. `date` is `None`
    /// when no answer came or it had no `Date`.
    pub async fn json_dated<Resp: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        bearer: Option<&str>,
    ) -> Dated<Resp> {
        let mut seen = Seen::default();
        let result = self
            .exchange(method, path, bearer, None, &mut seen)
            .await
            .map_err(|e| e.redact(bearer));
        Dated {
            result,
            date: seen.date,
        }
    }

    /// `GET path` of a paged list: the answer and, when there is a next page, its
    /// cursor (the `X-Next-Cursor` header).
    pub async fn json_page<Resp: DeserializeOwned>(
        &self,
        path: &str,
        bearer: Option<&str>,
    ) -> Result<(Resp, Option<String>), ClientError> {
        let mut seen = Seen::default();
        let resp = self
            .exchange(Method::GET, path, bearer, None, &mut seen)
            .await
            .map_err(|e| e.redact(bearer))?;
        Ok((resp, seen.next_cursor))
    }

    async fn json_inner<Resp: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        bearer: Option<&str>,
        body: Option<(Bytes, bool)>,
    ) -> Result<Resp, ClientError> {
        self.exchange(method, path, bearer, body, &mut Seen::default())
            .await
    }

    async fn exchange<Resp: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        bearer: Option<&str>,
        body: Option<(Bytes, bool)>,
        seen: &mut Seen,
    ) -> Result<Resp, ClientError> {
        let uri = self.uri_for(path)?;
        let target = format!("{} {}", method, uri);
        let mut builder = self.request_builder(method, uri, bearer, "application/json")?;
        let payload = match body {
            Some((bytes, gzip)) => {
                builder =
                    builder.header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                if gzip {
                    builder = builder.header(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
                }
                bytes
            }
            None => Bytes::new(),
        };
        let request = builder
            .body(Full::new(payload))
            .map_err(|e| ClientError::BadUrl(format!("cannot build the request {target}: {e}")))?;

        let exchange = async {
            let response = self
                .inner
                .client
                .request(request)
                .await
                .map_err(|e| describe_request_error(&self.inner.origin, &e))?;
            let status = response.status();
            let header = |name: &str| {
                response
                    .headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            let seen_now = Seen {
                date: header("date"),
                next_cursor: header("x-next-cursor"),
                retry_after: header("retry-after"),
            };
            let bytes = Limited::new(response.into_body(), self.max_response_bytes)
                .collect()
                .await
                .map_err(|e| {
                    if e.downcast_ref::<http_body_util::LengthLimitError>()
                        .is_some()
                    {
                        ClientError::Decode(format!(
                            "the response to {target} is larger than the limit of {} bytes",
                            self.max_response_bytes
                        ))
                    } else {
                        ClientError::Connect(format!(
                            "reading the response to {target} failed: {}",
                            chain_text(&*e)
                        ))
                    }
                })?
                .to_bytes();
            Ok::<_, ClientError>((status, seen_now, bytes))
        };
        let (status, answer_seen, bytes) = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| ClientError::Timeout)??;
        *seen = answer_seen;

        if !status.is_success() {
            return Err(ClientError::from_answer(
                status,
                seen.retry_after.as_deref(),
                &bytes,
            ));
        }
        let json: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"null"
        } else {
            &bytes
        };
        serde_json::from_slice(json).map_err(|e| {
            ClientError::Decode(format!(
                "the response to {target} (HTTP {}) is not the expected JSON: {e}",
                status.as_u16()
            ))
        })
    }

    /// A request to `uri` with the user agent, `Accept: accept` and, when given, the
    /// bearer token (marked sensitive, never shown in an error).
    pub(crate) fn request_builder(
        &self,
        method: Method,
        uri: Uri,
        bearer: Option<&str>,
        accept: &'static str,
    ) -> Result<http::request::Builder, ClientError> {
        let mut builder = Request::builder()
            .method(method)
            .uri(uri)
            .header(USER_AGENT, self.inner.user_agent.clone())
            .header(ACCEPT, HeaderValue::from_static(accept));
        if let Some(token) = bearer {
            let mut value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
                ClientError::Decode(
                    "the bearer token cannot be sent in an HTTP header (it contains control or \
                     non-ASCII characters); the token is not shown"
                        .into(),
                )
            })?;
            value.set_sensitive(true);
            builder = builder.header(AUTHORIZATION, value);
        }
        Ok(builder)
    }

    pub(crate) fn uri_for(&self, path: &str) -> Result<Uri, ClientError> {
        let sep = if path.starts_with('/') { "" } else { "/" };
        let full = format!("{}{}{}{}", self.inner.origin, self.inner.prefix, sep, path);
        full.parse::<Uri>()
            .map_err(|e| ClientError::BadUrl(format!("invalid request path {path:?}: {e}")))
    }
}

/// A pooled HTTPS-only hyper client (HTTP/2 or HTTP/1.1 through ALPN) over `tls`.
///
/// ALPN protocols already set in `tls` are replaced by `h2`, `http/1.1`.
pub(crate) fn https_only_client<B>(
    tls: &rustls::ClientConfig,
) -> Client<HttpsConnector<HttpConnector>, B>
where
    B: hyper::body::Body + Send,
    B::Data: Send,
{
    let mut tls = tls.clone();
    // hyper-rustls insists on setting ALPN itself (it panics otherwise).
    tls.alpn_protocols.clear();
    // Nagle's algorithm would hold each small request back until the previous
    // segment is acknowledged: ~40 ms per request with delayed ACKs.
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    http.enforce_http(false);
    let connector = HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http);
    Client::builder(TokioExecutor::new()).build(connector)
}

/// Splits and validates the base URL into (`https://authority`, `/prefix` or "").
fn parse_base_url(base_url: &str) -> Result<(String, String), ClientError> {
    let trimmed = base_url.trim();
    let lower = trimmed.to_ascii_lowercase();
    if lower.starts_with("http://") {
        return Err(ClientError::BadUrl(
            "the platform URL must start with https://; PatchCTL never talks plain HTTP".into(),
        ));
    }
    if !lower.starts_with("https://") {
        return Err(ClientError::BadUrl(format!(
            "the platform URL must start with https:// (got {trimmed:?})"
        )));
    }
    let uri: Uri = trimmed.parse().map_err(|e| {
        ClientError::BadUrl(format!(
            "the platform URL {trimmed:?} is not a valid URL: {e}"
        ))
    })?;
    let authority = uri
        .authority()
        .ok_or_else(|| ClientError::BadUrl("the platform URL has no host".into()))?;
    if authority.as_str().contains('@') {
        // Do not echo the URL: it carries credentials.
        return Err(ClientError::BadUrl(
            "the platform URL must not contain a user name or password; PatchCTL authenticates \
             with tokens"
                .into(),
        ));
    }
    if authority.host().is_empty() {
        return Err(ClientError::BadUrl("the platform URL has no host".into()));
    }
    if uri.query().is_some() || trimmed.contains('#') {
        return Err(ClientError::BadUrl(format!(
            "the platform URL {trimmed:?} must not contain a query or fragment"
        )));
    }
    let prefix = uri.path().trim_end_matches('/').to_string();
    Ok((format!("https://{}", authority.as_str()), prefix))
}

/// Finds a rustls error anywhere in the chain, looking inside `io::Error`
/// wrappers too (their `source()` skips the wrapped error itself).
pub(crate) fn find_rustls<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a rustls::Error> {
    let mut cur = Some(err);
    while let Some(e) = cur {
        if let Some(r) = e.downcast_ref::<rustls::Error>() {
            return Some(r);
        }
        let wrapped = e.downcast_ref::<io::Error>().and_then(|io| io.get_ref());
        if let Some(r) = wrapped.and_then(|inner| find_rustls(inner)) {
            return Some(r);
        }
        cur = e.source();
    }
    None
}

/// Finds the first `io::Error` in the chain whose kind is specific (not `Other`).
pub(crate) fn find_io_kind(err: &(dyn StdError + 'static)) -> Option<io::ErrorKind> {
    let mut cur = Some(err);
    while let Some(e) = cur {
        if let Some(io) = e.downcast_ref::<io::Error>() {
            if io.kind() != io::ErrorKind::Other {
                return Some(io.kind());
            }
            if let Some(kind) = io.get_ref().and_then(|inner| find_io_kind(inner)) {
                return Some(kind);
            }
        }
        cur = e.source();
    }
    None
}

/// All messages of an error chain, joined, without repeats.
pub(crate) fn chain_text(err: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur = Some(err);
    while let Some(e) = cur {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cur = e.source();
    }
    parts.join(": ")
}

/// Turns a failed request into an operator-facing [`ClientError::Connect`].
pub(crate) fn describe_request_error(
    origin: &str,
    err: &hyper_util::client::legacy::Error,
) -> ClientError {
    if let Some(tls) = find_rustls(err) {
        return ClientError::Connect(describe_tls_error(origin, tls));
    }
    let chain = chain_text(err);
    let msg = match find_io_kind(err) {
        Some(io::ErrorKind::ConnectionRefused) => format!(
            "connection to {origin} refused: nothing is listening there; check the platform URL \
             and that the platform is running ({chain})"
        ),
        Some(io::ErrorKind::TimedOut) => {
            format!("connecting to {origin} timed out; check the network path ({chain})")
        }
        _ if err.is_connect() => format!("cannot connect to {origin}: {chain}"),
        _ => format!("the request to {origin} failed: {chain}"),
    };
    ClientError::Connect(msg)
}

fn describe_tls_error(origin: &str, err: &rustls::Error) -> String {
    use rustls::{AlertDescription, CertificateError as C, Error as E, PeerIncompatible as P};
    match err {
        E::InvalidCertificate(cert) => {
            let hint = match cert {
                C::UnknownIssuer => {
                    "the certificate is self-signed or issued by a CA that is not trusted here; \
                     if the platform uses its own CA, configure that CA's certificate as the CA \
                     bundle"
                }
                C::Expired | C::ExpiredContext { .. } => {
                    "the certificate has expired; renew the platform's certificate (or check \
                     this machine's clock)"
                }
                C::NotValidYet | C::NotValidYetContext { .. } => {
                    "the certificate is not valid yet; check this machine's clock"
                }
                C::NotValidForName | C::NotValidForNameContext { .. } => {
                    "the certificate does not cover the host name in the platform URL; use a \
                     URL with a host name the certificate was issued for, or reissue it"
                }
                C::InvalidPurpose | C::InvalidPurposeContext { .. } => {
                    "the certificate is not issued for TLS server use"
                }
                _ => "the certificate chain could not be verified",
            };
            format!("TLS certificate of {origin} rejected: {err}; {hint}")
        }
        E::AlertReceived(AlertDescription::ProtocolVersion)
        | E::PeerIncompatible(
            P::ServerTlsVersionIsDisabledByOurConfig
            | P::SupportedVersionsExtensionRequired
            | P::ServerDoesNotSupportTls12Or13
            | P::Tls12NotOffered
            | P::Tls12NotOfferedOrEnabled,
        ) => format!(
            "TLS protocol version mismatch with {origin}: the server does not offer TLS 1.3 \
             ({err}); PatchCTL only speaks TLS 1.3, so upgrade the server or the TLS terminator \
             in front of it"
        ),
        E::InvalidMessage(_) | E::InappropriateMessage { .. } => format!(
            "TLS handshake with {origin} failed: {err}; is the server speaking TLS on this port?"
        ),
        E::AlertReceived(AlertDescription::BadCertificate | AlertDescription::UnknownCA) => {
            format!("TLS handshake with {origin} failed: the server refused the connection ({err})")
        }
        _ => format!("TLS handshake with {origin} failed: {err}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls() {
        assert_eq!(
            parse_base_url("https://example.com:8443/").unwrap(),
            ("https://example.com:8443".to_string(), String::new())
        );
        assert_eq!(
            parse_base_url("https://example.com/api/").unwrap(),
            ("https://example.com".to_string(), "/api".to_string())
        );
        assert_eq!(
            parse_base_url("HTTPS://[::1]:8443").unwrap(),
            ("https://[::1]:8443".to_string(), String::new())
        );
        let e = parse_base_url("http://example.com").unwrap_err();
        assert!(e.to_string().contains("never talks plain HTTP"), "{e}");
        let e = parse_base_url("HTTP://example.com").unwrap_err();
        assert!(e.to_string().contains("never talks plain HTTP"), "{e}");
        assert!(parse_base_url("ftp://example.com").is_err());
        assert!(parse_base_url("example.com").is_err());
        assert!(parse_base_url("https://").is_err());
        assert!(parse_base_url("https://example.com/?a=b").is_err());
        let e = parse_base_url("https://admin:hunter2@example.com").unwrap_err();
        assert!(!format!("{e} {e:?}").contains("hunter2"), "{e}");
    }

    #[test]
    fn error_messages() {
        use http::StatusCode;
        assert_eq!(
            error_message(StatusCode::BAD_REQUEST, br#"{"error":"bad thing"}"#),
            "bad thing"
        );
        assert_eq!(
            error_message(StatusCode::BAD_REQUEST, b" plain text \n"),
            "plain text"
        );
        assert_eq!(error_message(StatusCode::NOT_FOUND, b""), "Not Found");
        let long = "é".repeat(2000);
        let msg = error_message(StatusCode::BAD_GATEWAY, long.as_bytes());
        assert_eq!(msg.chars().count(), MAX_ERROR_TEXT + 1);
        assert!(msg.ends_with('…'));
    }

    #[test]
    fn error_codes_are_taken_only_when_plain() {
        assert_eq!(
            error_code(br#"{"error":"x","code":"credential_revoked"}"#).as_deref(),
            Some("credential_revoked")
        );
        assert_eq!(error_code(br#"{"error":"x"}"#), None);
        assert_eq!(error_code(br#"{"code":"bad code\u001b[31m"}"#), None);
        assert_eq!(error_code(br#"{"code":""}"#), None);
        assert_eq!(error_code(b"not json"), None);
        assert_eq!(
            error_code(format!(r#"{{"code":"{}"}}"#, "a".repeat(65)).as_bytes()),
            None
        );
    }

    #[test]
    fn rustls_error_is_found_through_io_wrappers() {
        let tls = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        // tokio-rustls wraps in InvalidData, hyper-rustls wraps that in Other.
        let inner = io::Error::new(io::ErrorKind::InvalidData, tls);
        let outer = io::Error::other(inner);
        let boxed: Box<dyn StdError + Send + Sync> = Box::new(outer);
        let found = find_rustls(&*boxed).unwrap();
        assert!(matches!(
            found,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)
        ));
        let plain = io::Error::new(io::ErrorKind::ConnectionRefused, "refused");
        assert!(find_rustls(&plain).is_none());
        assert_eq!(find_io_kind(&plain), Some(io::ErrorKind::ConnectionRefused));
    }

    #[test]
    fn redaction_and_unauthorized() {
        let e = ClientError::Status {
            status: 401,
            message: "token s3cr3t-token is revoked".into(),
            code: Some("credential_revoked".into()),
        }
        .redact(Some("s3cr3t-token"));
        assert!(e.is_unauthorized());
        assert_eq!(e.code(), Some("credential_revoked"));
        assert!(!format!("{e} {e:?}").contains("s3cr3t-token"));
        assert!(e.to_string().contains(REDACTED));
        assert!(!ClientError::Timeout.is_unauthorized());
        assert!(
            !ClientError::Status {
                status: 403,
                message: String::new(),
                code: None,
            }
            .is_unauthorized()
        );
    }
}
