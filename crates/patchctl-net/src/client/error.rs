//! Why a request to the platform failed ([`ClientError`]), and the parts of an error
//! answer a caller acts on: its message, its machine-readable code, and the
//! `Retry-After` of a 429 or 503 (seconds, or an HTTP date).

use std::time::{Duration, SystemTime};

/// Longest error message kept from a non-JSON error response body, in characters.
pub(crate) const MAX_ERROR_TEXT: usize = 500;

/// Replaces the bearer token if a response ever echoes it back.
pub(crate) const REDACTED: &str = "[redacted]";

/// Why a request to the platform failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No usable connection: TLS certificate rejected, TLS version mismatch,
    /// connection refused, name resolution failure, or the connection broke.
    /// The text says which, with the underlying (e.g. rustls) reason.
    #[error("{0}")]
    Connect(String),
    /// The platform did not answer in time (see [`HttpsClient::with_timeout`]).
    #[error(
        "the platform did not answer in time; check that it is running and reachable, or raise the request timeout"
    )]
    Timeout,
    /// The platform answered with a non-success HTTP status.
    #[error("the platform answered HTTP {status}: {message}")]
    Status {
        /// The HTTP status code.
        status: u16,
        /// The platform's `{"error": "..."}` message, else the start of the body
        /// (at most 500 characters), else the status' reason phrase.
        message: String,
        /// The platform's machine-readable `{"code": "..."}`, when it sent one
        /// (`credential_revoked`, `pending_approval`, ...).
        code: Option<String>,
    },
    /// The platform answered 429 (a rate limit) or 503 (busy, or its database is
    /// unavailable) with a `Retry-After`: the caller waits that long before it tries
    /// again. The same answer without `Retry-After` is a [`ClientError::Status`].
    #[error("the platform answered HTTP {status}: {message} (retry after {} s)", retry_after.as_secs())]
    RetryLater {
        /// 429 or 503.
        status: u16,
        /// The platform's `{"error": "..."}` message (as for [`ClientError::Status`]).
        message: String,
        /// The platform's machine-readable code (`rate_limited`, ...).
        code: Option<String>,
        /// How long to wait, from `Retry-After` (at most [`MAX_RETRY_AFTER`]).
        retry_after: Duration,
    },
    /// A request or response could not be encoded or decoded (bad JSON, a
    /// bearer token unusable in a header, a response over the size limit).
    #[error("{0}")]
    Decode(String),
    /// The base URL or request path is unusable (not `https://`, malformed).
    #[error("{0}")]
    BadUrl(String),
}

impl ClientError {
    /// True when the platform answered 401 Unauthorized (bad, expired or revoked token).
    pub fn is_unauthorized(&self) -> bool {
        matches!(self, ClientError::Status { status: 401, .. })
    }

    /// The platform's machine-readable error code, when the answer carried one.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Status { code, .. } | ClientError::RetryLater { code, .. } => {
                code.as_deref()
            }
            _ => None,
        }
    }

    /// The HTTP status of an error answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Status { status, .. } | ClientError::RetryLater { status, .. } => {
                Some(*status)
            }
            _ => None,
        }
    }

    /// How long the platform asked to wait before the next try (`Retry-After` of a
    /// 429 or 503 answer).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ClientError::RetryLater { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }

    /// The error of a non-success answer: its status, body, and `Retry-After` header
    /// (as sent) — a [`ClientError::RetryLater`] for a 429 or 503 with a usable one.
    pub(crate) fn from_answer(
        status: http::StatusCode,
        retry_after: Option<&str>,
        body: &[u8],
    ) -> ClientError {
        let message = error_message(status, body);
        let code = error_code(body);
        let wait = matches!(status.as_u16(), 429 | 503)
            .then(|| retry_after.and_then(|v| parse_retry_after(v, SystemTime::now())))
            .flatten();
        match wait {
            Some(retry_after) => ClientError::RetryLater {
                status: status.as_u16(),
                message,
                code,
                retry_after,
            },
            None => ClientError::Status {
                status: status.as_u16(),
                message,
                code,
            },
        }
    }

    /// Removes `secret` from the error text, should any part of it have picked
    /// it up (e.g. a server echoing the request in its error body).
    pub(crate) fn redact(self, secret: Option<&str>) -> Self {
        let Some(secret) = secret.filter(|s| !s.is_empty()) else {
            return self;
        };
        let scrub = |s: String| {
            if s.contains(secret) {
                s.replace(secret, REDACTED)
            } else {
                s
            }
        };
        match self {
            ClientError::Connect(m) => ClientError::Connect(scrub(m)),
            ClientError::Timeout => ClientError::Timeout,
            ClientError::Status {
                status,
                message,
                code,
            } => ClientError::Status {
                status,
                message: scrub(message),
                code,
            },
            ClientError::RetryLater {
                status,
                message,
                code,
                retry_after,
            } => ClientError::RetryLater {
                status,
                message: scrub(message),
                code,
                retry_after,
            },
            ClientError::Decode(m) => ClientError::Decode(scrub(m)),
            ClientError::BadUrl(m) => ClientError::BadUrl(scrub(m)),
        }
    }
}

/// The `code` of a JSON error body (letters, digits and `_` only, at most 64).
pub(crate) fn error_code(body: &[u8]) -> Option<String> {
    let v = serde_json::from_slice::<serde_json::Value>(body).ok()?;
    let code = v.get("code")?.as_str()?;
    (!code.is_empty()
        && code.len() <= 64
        && code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
    .then(|| code.to_string())
}

/// The message of a non-success response.
pub(crate) fn error_message(status: http::StatusCode, body: &[u8]) -> String {
    let json_error = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("error").and_then(|m| m.as_str()).map(str::to_string));
    if let Some(msg) = json_error {
        return msg;
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return status
            .canonical_reason()
            .unwrap_or("no error message")
            .to_string();
    }
    match text.char_indices().nth(MAX_ERROR_TEXT) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

/// The longest wait a `Retry-After` is taken for: a platform (or a proxy in front of
/// it) asking for more is asked again after an hour.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// A `Retry-After` value: whole seconds, or an HTTP date (IMF-fixdate, RFC 850 or
/// asctime) that is turned into the wait from `now` (zero when it is past). Capped at
/// [`MAX_RETRY_AFTER`]; `None` when it is neither.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    let wait = if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Digits only: seconds (a huge number is still a long wait).
        Duration::from_secs(value.parse::<u64>().unwrap_or(u64::MAX))
    } else {
        let at = httpdate::parse_http_date(value).ok()?;
        at.duration_since(now).unwrap_or(Duration::ZERO)
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds_and_http_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:50:07 GMT", now),
            Some(Duration::from_secs(30))
        );
        // A date in the past: try now.
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_retry_after("99999999999999999999", now),
            Some(MAX_RETRY_AFTER)
        );
        assert_eq!(parse_retry_after("-1", now), None);
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("", now), None);
    }

    #[test]
    fn a_429_or_503_with_retry_after_says_how_long_to_wait() {
        use http::StatusCode;
        let body = br#"{"error":"too many requests with this agent credential; retry in 7 s","code":"rate_limited"}"#;
        let e = ClientError::from_answer(StatusCode::TOO_MANY_REQUESTS, Some("7"), body);
        assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
        assert_eq!(e.status(), Some(429));
        assert_eq!(e.code(), Some("rate_limited"));
        assert!(e.to_string().contains("retry after 7 s"), "{e}");
        let e = ClientError::from_answer(StatusCode::SERVICE_UNAVAILABLE, Some("3"), b"{}");
        assert_eq!(e.retry_after(), Some(Duration::from_secs(3)));
        // Without the header, or on another status, it is a plain Status.
        let e = ClientError::from_answer(StatusCode::TOO_MANY_REQUESTS, None, body);
        assert!(
            matches!(e, ClientError::Status { status: 429, .. }),
            "{e:?}"
        );
        assert_eq!(e.retry_after(), None);
        let e = ClientError::from_answer(StatusCode::BAD_REQUEST, Some("7"), body);
        assert_eq!(e.retry_after(), None);
        // Redaction keeps the wait.
        let e = ClientError::from_answer(
            StatusCode::TOO_MANY_REQUESTS,
            Some("7"),
            br#"{"error":"tok-1 no"}"#,
        )
        .redact(Some("tok-1"));
        assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
        assert!(!e.to_string().contains("tok-1"));
    }
}
