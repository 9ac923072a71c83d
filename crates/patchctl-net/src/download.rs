//! Conditional HTTPS downloads of vulnerability feeds (`patchctl vulndb sync`).
//!
//! [`Downloader::fetch`] GETs one URL and returns either the body with the
//! validators to remember for next time ([`Fetched::Body`]) or
//! [`Fetched::NotModified`] when the server says the copy behind the validators
//! the caller passed is still current. [`Downloader::fetch_to_file`] does the same
//! but streams the body into a file (feeds of hundreds of MB).
//!
//! Invariants:
//! - Only `https://` is ever spoken, on the first request and after every
//!   redirect (TLS 1.3, certificates verified by the [`rustls::ClientConfig`]
//!   given, normally from [`crate::client_config`]). At most
//!   [`MAX_REDIRECTS`] redirects (301, 302, 303, 307, 308) are followed.
//! - Credentials never appear in errors: every URL an error shows is reduced to
//!   `https://host[:port]/path`, without user info, query or fragment (a query
//!   may hold a signed-URL token). User info in the URL is sent as HTTP Basic
//!   authentication, to that URL's origin only: it is dropped on a redirect to
//!   another scheme, host or port.
//! - A body is never larger than the configured limit (in memory, or in the file of
//!   [`Downloader::fetch_to_file`]): a declared
//!   `Content-Length` over the limit fails before reading, and a body without
//!   one fails as soon as the bytes received pass the limit.
//! - The timeout bounds connecting (TCP, TLS and the wait for the response
//!   head) and every wait for the next piece of body, not the whole download,
//!   so a large feed on a slow but live link still completes.
//! - Only 200 yields a body. 304 means "not modified" only when validators
//!   were sent; any other status is an error naming the URL and the status.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{
    ACCEPT, AUTHORIZATION, ETAG, HeaderMap, HeaderValue, IF_MODIFIED_SINCE, IF_NONE_MATCH,
    LAST_MODIFIED, LOCATION, USER_AGENT,
};
use http::{Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Empty};
use hyper::body::{Body, Incoming};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

use crate::client::{chain_text, find_rustls, https_only_client};

/// Default cap on a downloaded body: 2 GiB.
pub const DEFAULT_MAX_BYTES: u64 = 2 * 1024 * 1024 * 1024;

/// Default timeout for connecting and for each wait for more body: 60 s.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Most redirects followed for one [`Downloader::fetch`].
pub const MAX_REDIRECTS: usize = 5;

/// Shortest interval between two progress calls while a body arrives.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(100);

/// Most bytes reserved up front from a declared `Content-Length`; the buffer
/// grows past it as data really arrives.
const MAX_PREALLOCATION: u64 = 64 * 1024 * 1024;

/// The advice every "cannot get the file here" error ends with.
const OFFLINE_HINT: &str = "if this machine has no access, download the file on one that has \
                            and run `patchctl vulndb import FILE` here";

/// What identifies the version of a feed the caller already has (HTTP
/// validators, sent back as `If-None-Match` / `If-Modified-Since`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Validators {
    /// The `ETag` response header, verbatim (quotes and `W/` included).
    #[serde(default)]
    pub etag: Option<String>,
    /// The `Last-Modified` response header, verbatim.
    #[serde(default)]
    pub last_modified: Option<String>,
}

impl Validators {
    /// True when there is nothing to make a request conditional with.
    pub fn is_empty(&self) -> bool {
        self.etag.is_none() && self.last_modified.is_none()
    }

    fn from_headers(headers: &HeaderMap) -> Self {
        let text = |name| {
            headers
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
                .map(str::to_string)
        };
        Self {
            etag: text(ETAG),
            last_modified: text(LAST_MODIFIED),
        }
    }
}

/// The outcome of a successful [`Downloader::fetch`].
#[derive(Clone, PartialEq, Eq)]
pub enum Fetched {
    /// 304: the copy identified by the validators passed in is current.
    NotModified,
    /// 200: the whole body and the validators to pass next time.
    Body {
        /// The body, exactly as received (no content coding is requested).
        bytes: Vec<u8>,
        /// `ETag` / `Last-Modified` of this response (absent when the server sent none).
        validators: Validators,
    },
}

impl fmt::Debug for Fetched {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fetched::NotModified => f.write_str("NotModified"),
            Fetched::Body { bytes, validators } => f
                .debug_struct("Body")
                .field("len", &bytes.len())
                .field("validators", validators)
                .finish(),
        }
    }
}

/// The outcome of a successful [`Downloader::fetch_to_file`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchedFile {
    /// 304: the copy identified by the validators passed in is current; no file was
    /// created.
    NotModified,
    /// 200: the whole body is in the file.
    Written {
        /// Bytes written.
        bytes: u64,
        /// `ETag` / `Last-Modified` of this response.
        validators: Validators,
    },
}

/// Where a body goes as it arrives: memory ([`Downloader::fetch`]) or a file
/// ([`Downloader::fetch_to_file`]).
enum Sink<'a> {
    Memory(&'a mut Vec<u8>),
    File {
        file: tokio::io::BufWriter<tokio::fs::File>,
        path: &'a Path,
    },
}

impl Sink<'_> {
    /// Room for `n` bytes, when known (a hint).
    fn reserve(&mut self, n: u64) {
        if let Sink::Memory(v) = self {
            v.reserve(usize::try_from(n).unwrap_or(0));
        }
    }

    /// Appends `data`.
    async fn write(&mut self, data: &[u8]) -> Result<(), DownloadError> {
        match self {
            Sink::Memory(v) => {
                v.extend_from_slice(data);
                Ok(())
            }
            Sink::File { file, path } => {
                file.write_all(data)
                    .await
                    .map_err(|source| DownloadError::Write {
                        path: path.to_path_buf(),
                        source,
                    })
            }
        }
    }

    /// Everything written reaches the disk.
    async fn finish(self) -> Result<(), DownloadError> {
        if let Sink::File { mut file, path } = self {
            let write_error = |source| DownloadError::Write {
                path: path.to_path_buf(),
                source,
            };
            file.flush().await.map_err(write_error)?;
            file.get_ref().sync_all().await.map_err(write_error)?;
        }
        Ok(())
    }
}

/// Why a download failed. Every URL shown is `https://host[:port]/path`, with
/// user info, query and fragment removed.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    /// The URL (or a redirect target) is unusable: only `https://` is accepted.
    #[error("cannot download {url}: {reason}")]
    BadUrl {
        /// The URL, credentials removed (or a placeholder when it cannot be shown safely).
        url: String,
        /// What is wrong with it and what to do.
        reason: String,
    },
    /// The host cannot be reached: offline, name resolution failed, connection
    /// refused or reset, or the connection broke during the download.
    #[error(
        "this machine cannot reach {url} ({detail}); check the network connection and the URL, \
         or, {OFFLINE_HINT}"
    )]
    Connect {
        /// The URL that was being fetched.
        url: String,
        /// The underlying failure.
        detail: String,
    },
    /// The TLS connection could not be established (certificate not trusted,
    /// wrong name, expired, no TLS 1.3, ...).
    #[error("TLS connection to {url} failed: {detail}")]
    Tls {
        /// The URL that was being fetched.
        url: String,
        /// The rustls reason and what to do about it.
        detail: String,
    },
    /// The server answered with a status other than 200 (or 304 to a conditional request).
    #[error("{url} answered HTTP {status}{}", status_hint(*.status))]
    Status {
        /// The URL that answered (after redirects).
        url: String,
        /// The HTTP status code.
        status: u16,
    },
    /// The body is larger than the configured limit (see [`Downloader::with_max_bytes`]).
    #[error(
        "{url} is larger than the download limit of {limit} bytes; raise the limit if the feed \
         really is that large, or {OFFLINE_HINT}"
    )]
    TooLarge {
        /// The URL being downloaded.
        url: String,
        /// The limit in bytes.
        limit: u64,
    },
    /// Connecting, or waiting for more of the body, took longer than the timeout.
    #[error(
        "{url} did not answer within {} s; check the network path or raise the download \
         timeout, or, {OFFLINE_HINT}", .timeout.as_secs_f32()
    )]
    Timeout {
        /// The URL being downloaded.
        url: String,
        /// The timeout that ran out (see [`Downloader::with_timeout`]).
        timeout: Duration,
    },
    /// The file a body is streamed to cannot be created or written (a full disk).
    #[error("cannot write the download to {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// What writing said.
        source: std::io::Error,
    },
    /// The server kept redirecting.
    #[error(
        "{url} redirected more than {limit} times in a row; check the feed URL (use the final \
         address directly)"
    )]
    TooManyRedirects {
        /// The last URL redirected from.
        url: String,
        /// How many redirects are followed.
        limit: usize,
    },
}

fn status_hint(status: u16) -> String {
    let reason = StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .map(|r| format!(" {r}"))
        .unwrap_or_default();
    let hint = match status {
        304 => "; the server answered an unconditional request with \"not modified\"",
        300..=399 => "; this redirect cannot be followed (no usable Location header)",
        401 | 403 => "; the server refused access: check the feed URL and any credentials in it",
        400..=499 => "; check the feed URL in the configuration",
        500..=599 => "; the server has a problem, try again later",
        _ => "; only 200 OK is accepted for a download",
    };
    format!("{reason}{hint}")
}

/// Downloads feeds over HTTPS with conditional requests, redirects, a size
/// limit and progress reporting. Cheap to clone; clones share the connection pool.
#[derive(Clone)]
pub struct Downloader {
    client: Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
    max_bytes: u64,
    timeout: Duration,
}

impl fmt::Debug for Downloader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Downloader")
            .field("max_bytes", &self.max_bytes)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Downloader {
    /// A downloader verifying servers with `tls` (see [`crate::client_config`]);
    /// ALPN protocols set in `tls` are replaced by `h2`, `http/1.1`.
    pub fn new(tls: Arc<rustls::ClientConfig>) -> Self {
        Self {
            client: https_only_client(&tls),
            max_bytes: DEFAULT_MAX_BYTES,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Returns this downloader with a different body size limit (default [`DEFAULT_MAX_BYTES`]).
    pub fn with_max_bytes(mut self, max_bytes: u64) -> Self {
        self.max_bytes = max_bytes;
        self
    }

    /// Returns this downloader with a different timeout for connecting and for
    /// each wait for more body (default [`DEFAULT_TIMEOUT`]).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// GETs `url`, conditionally on `known` (`If-None-Match` / `If-Modified-Since`).
    ///
    /// Follows up to [`MAX_REDIRECTS`] redirects, all of which must be
    /// `https://`. While the body arrives, `progress(received, total)` is
    /// called at most about ten times a second (`total` when the server
    /// declared a length), and once more with the final count unless the last
    /// call already had it. 304 to a conditional request gives
    /// [`Fetched::NotModified`], 200 gives [`Fetched::Body`]; anything else is
    /// a [`DownloadError::Status`]. A validator that cannot be sent as a header
    /// is left out, which at worst downloads the feed again.
    pub async fn fetch(
        &self,
        url: &str,
        known: &Validators,
        progress: &mut (dyn FnMut(u64, Option<u64>) + Send),
    ) -> Result<Fetched, DownloadError> {
        let Some((shown, response)) = self.get(url, known).await? else {
            return Ok(Fetched::NotModified);
        };
        let validators = Validators::from_headers(response.headers());
        let mut bytes = Vec::new();
        self.read_body(&shown, response, &mut Sink::Memory(&mut bytes), progress)
            .await?;
        Ok(Fetched::Body { bytes, validators })
    }

    /// As [`Downloader::fetch`], but the body is streamed to a new file at `path`
    /// instead of being held in memory (feeds of hundreds of MB): the same limits, the
    /// same errors, and [`DownloadError::Write`] when the file cannot be written. The
    /// file is created (replacing one that exists) only once the server answered 200;
    /// after an error it may hold part of the body, which the caller deletes.
    pub async fn fetch_to_file(
        &self,
        url: &str,
        known: &Validators,
        path: &Path,
        progress: &mut (dyn FnMut(u64, Option<u64>) + Send),
    ) -> Result<FetchedFile, DownloadError> {
        let Some((shown, response)) = self.get(url, known).await? else {
            return Ok(FetchedFile::NotModified);
        };
        let validators = Validators::from_headers(response.headers());
        let write_error = |source| DownloadError::Write {
            path: path.to_path_buf(),
            source,
        };
        let file = tokio::fs::File::create(path).await.map_err(write_error)?;
        let mut sink = Sink::File {
            file: tokio::io::BufWriter::new(file),
            path,
        };
        let bytes = self
            .read_body(&shown, response, &mut sink, progress)
            .await?;
        sink.finish().await?;
        Ok(FetchedFile::Written { bytes, validators })
    }

    /// GETs `url` conditionally on `known`, following redirects: `None` for 304, else
    /// the URL as shown and the 200 response.
    async fn get(
        &self,
        url: &str,
        known: &Validators,
    ) -> Result<Option<(String, Response<Incoming>)>, DownloadError> {
        let conditional = conditional_headers(known);
        let mut target = Target::parse(url)?;
        let mut redirects = 0;
        let response = loop {
            let response = self.send(&target, &conditional).await?;
            let status = response.status();
            if !is_redirect(status) {
                break response;
            }
            let location = response
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok());
            let Some(location) = location else {
                return Err(DownloadError::Status {
                    url: target.shown,
                    status: status.as_u16(),
                });
            };
            if redirects == MAX_REDIRECTS {
                return Err(DownloadError::TooManyRedirects {
                    url: target.shown,
                    limit: MAX_REDIRECTS,
                });
            }
            redirects += 1;
            target = target.follow(location)?;
        };
        match response.status() {
            StatusCode::OK => Ok(Some((target.shown, response))),
            StatusCode::NOT_MODIFIED if !conditional.is_empty() => Ok(None),
            status => Err(DownloadError::Status {
                url: target.shown,
                status: status.as_u16(),
            }),
        }
    }

    async fn send(
        &self,
        target: &Target,
        conditional: &[(http::HeaderName, HeaderValue)],
    ) -> Result<Response<Incoming>, DownloadError> {
        let mut builder = Request::get(target.uri.clone())
            .header(
                USER_AGENT,
                HeaderValue::from_static(concat!("patchctl/", env!("CARGO_PKG_VERSION"))),
            )
            .header(ACCEPT, HeaderValue::from_static("*/*"));
        for (name, value) in conditional {
            builder = builder.header(name, value.clone());
        }
        if let Some(auth) = &target.basic_auth {
            builder = builder.header(AUTHORIZATION, auth.clone());
        }
        let request = builder
            .body(Empty::new())
            .map_err(|e| DownloadError::BadUrl {
                url: target.shown.clone(),
                reason: format!("cannot build the request: {e}"),
            })?;
        tokio::time::timeout(self.timeout, self.client.request(request))
            .await
            .map_err(|_| self.timed_out(&target.shown))?
            .map_err(|e| request_error(&target.shown, &e))
    }

    /// Reads the body of `response` into `sink` within the limits; returns its length.
    async fn read_body(
        &self,
        url: &str,
        response: Response<Incoming>,
        sink: &mut Sink<'_>,
        progress: &mut (dyn FnMut(u64, Option<u64>) + Send),
    ) -> Result<u64, DownloadError> {
        let mut body = response.into_body();
        let total = body.size_hint().exact();
        let too_large = || DownloadError::TooLarge {
            url: url.to_string(),
            limit: self.max_bytes,
        };
        if total.is_some_and(|t| t > self.max_bytes) {
            return Err(too_large());
        }
        sink.reserve(total.unwrap_or(0).min(MAX_PREALLOCATION));
        let mut received: u64 = 0;
        let mut reported: Option<(u64, Instant)> = None;
        loop {
            let frame = tokio::time::timeout(self.timeout, body.frame())
                .await
                .map_err(|_| self.timed_out(url))?;
            let Some(frame) = frame else { break };
            let frame = frame.map_err(|e| DownloadError::Connect {
                url: url.to_string(),
                detail: format!(
                    "the connection broke after {received} bytes of the body: {}",
                    chain_text(&e)
                ),
            })?;
            let Ok(data) = frame.into_data() else {
                continue; // trailers
            };
            received = received.saturating_add(data.len() as u64);
            if received > self.max_bytes {
                return Err(too_large());
            }
            sink.write(&data).await?;
            let due = reported.is_none_or(|(_, at)| at.elapsed() >= PROGRESS_INTERVAL);
            if due {
                progress(received, total);
                reported = Some((received, Instant::now()));
            }
        }
        if reported.map(|(n, _)| n) != Some(received) {
            progress(received, total);
        }
        Ok(received)
    }

    fn timed_out(&self, url: &str) -> DownloadError {
        DownloadError::Timeout {
            url: url.to_string(),
            timeout: self.timeout,
        }
    }
}

fn is_redirect(status: StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
}

fn conditional_headers(known: &Validators) -> Vec<(http::HeaderName, HeaderValue)> {
    [
        (IF_NONE_MATCH, known.etag.as_deref()),
        (IF_MODIFIED_SINCE, known.last_modified.as_deref()),
    ]
    .into_iter()
    .filter_map(|(name, value)| Some((name, HeaderValue::from_str(value?).ok()?)))
    .collect()
}

/// One request target: the URI actually requested (no user info, no fragment),
/// how errors show it, and the Basic credentials for its origin.
struct Target {
    uri: Uri,
    /// `https://host[:port]/path`.
    shown: String,
    /// `host[:port]`, lower case.
    origin: String,
    basic_auth: Option<HeaderValue>,
}

impl Target {
    fn parse(raw: &str) -> Result<Self, DownloadError> {
        let raw = raw.trim();
        let raw = raw.split_once('#').map_or(raw, |(before, _)| before);
        let bad = |reason: String| DownloadError::BadUrl {
            url: shown_raw(raw),
            reason,
        };
        let scheme = raw.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
        match scheme.as_deref() {
            Some("https") => {}
            Some("http") => {
                return Err(bad(
                    "only https:// URLs are accepted and PatchCTL never downloads \
                     over plain http://; use the feed's https:// address"
                        .into(),
                ));
            }
            _ => {
                return Err(bad(
                    "only https:// URLs are accepted (https://host/path)".into()
                ));
            }
        }
        let uri: Uri = raw
            .parse()
            .map_err(|e| bad(format!("it is not a valid https:// URL ({e})")))?;
        let authority = uri
            .authority()
            .ok_or_else(|| bad("the URL has no host name; use https://host/path".into()))?;
        let (userinfo, host_port) = match authority.as_str().rsplit_once('@') {
            Some((user, host)) => (Some(user), host),
            None => (None, authority.as_str()),
        };
        if uri.host().is_none_or(str::is_empty) {
            return Err(bad("the URL has no host name; use https://host/path".into()));
        }
        let path_and_query = uri.path_and_query().map_or("/", |pq| pq.as_str());
        let request_uri: Uri = format!("https://{host_port}{path_and_query}")
            .parse()
            .map_err(|e| bad(format!("it is not a valid https:// URL ({e})")))?;
        let basic_auth = userinfo.and_then(basic_auth);
        Ok(Self {
            shown: format!("https://{host_port}{}", request_uri.path()),
            origin: host_port.to_ascii_lowercase(),
            uri: request_uri,
            basic_auth,
        })
    }

    /// The target a redirect from `self` to `location` points at.
    fn follow(&self, location: &str) -> Result<Self, DownloadError> {
        let location = location.trim();
        let absolute = if location.starts_with("//") {
            format!("https:{location}")
        } else if has_scheme(location) {
            location.to_string()
        } else {
            let (reference, query) =
                location.split_at(location.find('?').unwrap_or(location.len()));
            let path = self.uri.path();
            let path = if reference.starts_with('/') {
                reference.to_string()
            } else if reference.is_empty() {
                path.to_string()
            } else {
                let dir = path.rsplit_once('/').map_or("", |(dir, _)| dir);
                format!("{dir}/{reference}")
            };
            format!(
                "https://{}{}{query}",
                self.origin,
                remove_dot_segments(&path)
            )
        };
        let mut next = Target::parse(&absolute).map_err(|e| match e {
            DownloadError::BadUrl { url, reason } => DownloadError::BadUrl {
                url,
                reason: format!("{} redirected there, but {reason}", self.shown),
            },
            other => other,
        })?;
        if next.basic_auth.is_none() && next.origin == self.origin {
            next.basic_auth = self.basic_auth.clone();
        }
        Ok(next)
    }
}

/// RFC 3986 section 5.2.4 for a path starting with `/`: resolves `.` and `..`.
fn remove_dot_segments(path: &str) -> String {
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let mut out: Vec<&str> = Vec::with_capacity(segments.len());
    for (i, segment) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        match *segment {
            "." | ".." => {
                if *segment == ".." {
                    out.pop();
                }
                if last {
                    out.push("");
                }
            }
            other => out.push(other),
        }
    }
    format!("/{}", out.join("/"))
}

/// True when `s` starts with `scheme:` (RFC 3986: a letter, then letters, digits, `+-.`).
fn has_scheme(s: &str) -> bool {
    let Some((scheme, _)) = s.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// How a refused URL is shown: `scheme://host[:port]/path` when it parses;
/// otherwise without query, and not at all when it may hold credentials (`@`),
/// since where they end cannot be told reliably.
fn shown_raw(raw: &str) -> String {
    let uri = raw.parse::<Uri>().ok();
    if let Some(shown) = uri.as_ref().and_then(shown) {
        return shown;
    }
    if raw.contains('@') {
        return "(URL not shown: it may contain credentials)".into();
    }
    let cut = raw.find('?').unwrap_or(raw.len());
    raw[..cut].chars().filter(|c| !c.is_control()).collect()
}

/// `scheme://host[:port]/path` of an absolute URI: no user info, query or fragment.
fn shown(uri: &Uri) -> Option<String> {
    let authority = uri.authority()?.as_str();
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    Some(format!("{}://{host}{}", uri.scheme_str()?, uri.path()))
}

/// `Authorization: Basic ...` for percent-encoded `user[:password]`, marked sensitive.
fn basic_auth(userinfo: &str) -> Option<HeaderValue> {
    let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    let mut credentials = percent_decode(user);
    credentials.push(b':');
    credentials.extend(percent_decode(password));
    let mut value = HeaderValue::try_from(format!("Basic {}", base64(&credentials))).ok()?;
    value.set_sensitive(true);
    Some(value)
}

fn percent_decode(s: &str) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .filter(|h| h.iter().all(u8::is_ascii_hexdigit));
        match hex {
            Some(h) if bytes[i] == b'%' => {
                let digit = |b: u8| (b as char).to_digit(16).unwrap_or(0) as u8;
                out.push(digit(h[0]) << 4 | digit(h[1]));
                i += 3;
            }
            _ => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    out
}

fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let byte = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let n = byte(0) << 16 | byte(1) << 8 | byte(2);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Turns a failed request into [`DownloadError::Tls`] or [`DownloadError::Connect`].
fn request_error(url: &str, err: &hyper_util::client::legacy::Error) -> DownloadError {
    match find_rustls(err) {
        Some(tls) => DownloadError::Tls {
            url: url.to_string(),
            detail: tls_detail(tls),
        },
        None => DownloadError::Connect {
            url: url.to_string(),
            detail: chain_text(err),
        },
    }
}

fn tls_detail(err: &rustls::Error) -> String {
    use rustls::{CertificateError as C, Error as E};
    let hint = match err {
        E::InvalidCertificate(C::UnknownIssuer) => {
            "the server's certificate is not issued by a CA trusted here; if the feed comes from \
             a mirror with its own CA, configure that CA's certificate as the CA bundle"
        }
        E::InvalidCertificate(C::NotValidForName | C::NotValidForNameContext { .. }) => {
            "the certificate does not cover the host name in the URL; use the host name the \
             certificate was issued for"
        }
        E::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => {
            "the certificate has expired (or this machine's clock is wrong)"
        }
        E::InvalidCertificate(C::NotValidYet | C::NotValidYetContext { .. }) => {
            "the certificate is not valid yet; check this machine's clock"
        }
        _ => {
            "PatchCTL only accepts TLS 1.3 with a verified certificate; check that the URL \
             points at an HTTPS server"
        }
    };
    format!("{err}; {hint}")
}

#[cfg(test)]
mod tests;
