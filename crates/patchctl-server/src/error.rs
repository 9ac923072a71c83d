//! One error type for every handler: a status code and a JSON body that says what was
//! wrong. Internals (database messages) are logged, never sent.
//!
//! The domain errors the handlers meet (storage, the CVE engine, the heartbeat writer,
//! the enrollment rate limits, releases) are mapped to status codes here, in one place. Every
//! answer carries a machine-readable `code` ([`ErrorCode`]): a specific one where a client
//! must tell answers apart, else the general one of its status ([`ErrorCode::for_status`]);
//! a 429 carries `Retry-After`.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use patchctl_proto::api::ApiErrorBody;
use patchctl_proto::trust::ErrorCode;
use patchctl_storage::StorageError;

use crate::engine::EngineError;
use crate::heartbeats::HeartbeatError;
use crate::ratelimit::RateLimited;
use crate::releases::ReleaseError;

/// What a client is told when the database cannot answer (the cause is logged).
const DATABASE_UNAVAILABLE: &str = "the platform's database is unavailable; try again shortly";

/// What a client is told when the database's file system is full: nothing was stored,
/// and the platform's operator must free space (the platform recovers by itself then).
pub const DISK_FULL: &str = "the platform's disk is full: nothing was stored; try again later \
     (operators: free space on the file system of the platform's database; no restart is needed)";

/// Seconds a client is asked to wait (`Retry-After`) when the database cannot answer.
pub const UNAVAILABLE_RETRY_SECS: u64 = 5;

/// 503 for a database that cannot answer now: disk full, or unavailable; with
/// `Retry-After`.
fn unavailable(e: &StorageError) -> ApiError {
    let message = if e.is_disk_full() {
        DISK_FULL
    } else {
        DATABASE_UNAVAILABLE
    };
    ApiError {
        retry_after_secs: Some(UNAVAILABLE_RETRY_SECS),
        ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, message)
    }
}

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Message for the client.
    pub message: String,
    /// Machine-readable reason, for answers a client must tell apart.
    pub code: Option<ErrorCode>,
    /// Seconds for the `Retry-After` header (429).
    pub retry_after_secs: Option<u64>,
}

impl ApiError {
    /// 400 with a message.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
    /// 401 with a message.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }
    /// 403 with a message.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }
    /// 404 with a message.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }
    /// 409 with a message.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }
    /// Any status with a message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            code: None,
            retry_after_secs: None,
        }
    }

    /// The same error with a machine-readable code.
    pub fn with_code(mut self, code: ErrorCode) -> Self {
        self.code = Some(code);
        self
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::Conflict(what) => ApiError::conflict(format!("{what} already exists")),
            other => {
                tracing::error!(error = %other, "storage error");
                unavailable(&other)
            }
        }
    }
}

impl From<crate::signing::SigningError> for ApiError {
    /// The platform cannot sign (its key file is unusable or disagrees with the other
    /// nodes): 503 with what the operator of the platform does about it.
    fn from(e: crate::signing::SigningError) -> Self {
        match e {
            crate::signing::SigningError::Storage(e) => e.into(),
            other => {
                tracing::error!(error = %other, "cannot sign a command");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("the platform cannot sign commands right now: {other}"),
                )
            }
        }
    }
}

impl From<crate::webhooks::address::TargetError> for ApiError {
    /// A webhook target that is refused (bad URL, scheme, an address not allowed) is
    /// 400 with what to do; the message never holds the URL's user information.
    fn from(e: crate::webhooks::address::TargetError) -> Self {
        ApiError::bad_request(e.to_string())
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Loading => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "vulnerability correlation is still loading; retry in a few seconds",
            ),
            // The engine logged the cause.
            EngineError::Refresh(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the vulnerability database cannot be read right now; retry shortly",
            ),
            EngineError::Storage(e) => e.into(),
        }
    }
}

impl From<RateLimited> for ApiError {
    /// 429 `rate_limited`, with the seconds until the next attempt can pass (at least
    /// 1) in `Retry-After` and in the message.
    fn from(e: RateLimited) -> Self {
        let secs = e.retry_after.as_secs_f64().ceil().max(1.0) as u64;
        ApiError {
            retry_after_secs: Some(secs),
            ..ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!("{e}; retry in {secs} s"),
            )
            .with_code(ErrorCode::RateLimited)
        }
    }
}

impl From<ReleaseError> for ApiError {
    /// A release or rollout that cannot be accepted is 400 with the reason and what to
    /// do; another artifact under a published version 409; an absent release 404.
    fn from(e: ReleaseError) -> Self {
        match e {
            ReleaseError::Storage(e) => e.into(),
            ReleaseError::Conflict { .. } => ApiError::conflict(e.to_string()),
            ReleaseError::NotFound { .. } => ApiError::not_found(e.to_string()),
            ReleaseError::Base64(_)
            | ReleaseError::TooLarge { .. }
            | ReleaseError::Refused(_)
            | ReleaseError::InvalidRollout(_)
            | ReleaseError::NotPublished { .. } => ApiError::bad_request(e.to_string()),
        }
    }
}

impl From<patchctl_policy::window::WindowError> for ApiError {
    /// A maintenance window that does not check is 400 with what to write instead.
    fn from(e: patchctl_policy::window::WindowError) -> Self {
        ApiError::bad_request(e.to_string())
    }
}

impl From<HeartbeatError> for ApiError {
    /// Both kinds are 503: the batch's storage error was logged by the writer once for
    /// the whole batch (a full disk says so), and a stopped writer means no heartbeat
    /// can be recorded.
    fn from(e: HeartbeatError) -> Self {
        match e {
            HeartbeatError::Storage(e) => unavailable(&e),
            HeartbeatError::WriterGone => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, DATABASE_UNAVAILABLE)
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = self
            .code
            .unwrap_or_else(|| ErrorCode::for_status(self.status.as_u16()));
        let mut resp = (
            self.status,
            Json(ApiErrorBody {
                error: self.message,
                code: Some(code),
            }),
        )
            .into_response();
        if let Some(secs) = self.retry_after_secs {
            resp.headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        // For the audit trail (`crate::audit::record`).
        resp.extensions_mut().insert(code);
        resp
    }
}

/// Replaces the empty 415 that request decompression answers for an unknown
/// `Content-Encoding` with the JSON error body every other error has.
pub async fn unsupported_encoding_as_json(resp: Response) -> Response {
    if resp.status() != StatusCode::UNSUPPORTED_MEDIA_TYPE
        || resp
            .headers()
            .contains_key(axum::http::header::CONTENT_TYPE)
    {
        return resp;
    }
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported Content-Encoding; send the body uncompressed or with Content-Encoding: gzip",
    )
    .into_response()
}

/// Gives every error answer the JSON error body: axum's own rejections (a query string
/// or path parameter that does not parse, a method the path does not serve) answer in
/// plain text, or with no body at all; their text becomes the message and the status
/// its general code. Error answers that are JSON already pass unchanged.
pub async fn errors_as_json(resp: Response) -> Response {
    let status = resp.status();
    // Only axum's own answers (plain text or empty): the API's errors are JSON already
    // and the dashboard's error pages are HTML.
    if !(status.is_client_error() || status.is_server_error())
        || resp
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .is_some_and(|v| !v.as_bytes().starts_with(b"text/plain"))
    {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, 64 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let message = match (status, text.is_empty()) {
        (StatusCode::METHOD_NOT_ALLOWED, _) => {
            "this path does not take that method; the Allow header lists those it takes".to_owned()
        }
        (_, true) => status
            .canonical_reason()
            .unwrap_or("request refused")
            .to_lowercase(),
        (_, false) => text,
    };
    let mut out = ApiError::new(status, message).into_response();
    for (name, value) in parts.headers.iter() {
        if name != axum::http::header::CONTENT_TYPE && name != axum::http::header::CONTENT_LENGTH {
            out.headers_mut().insert(name.clone(), value.clone());
        }
    }
    out
}

/// `Json<T>` whose rejections are [`ApiError`]s with serde's message (field, line,
/// column) instead of axum's plain-text body.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    Json<T>: FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(ApiJson(v)),
            Err(r) => {
                let status = r.status();
                let message = match &r {
                    JsonRejection::MissingJsonContentType(_) => {
                        "expected a JSON body with Content-Type: application/json".to_owned()
                    }
                    _ if status == StatusCode::PAYLOAD_TOO_LARGE => {
                        "request body too large".to_owned()
                    }
                    _ => r.body_text(),
                };
                Err(ApiError::new(
                    if status == StatusCode::UNPROCESSABLE_ENTITY {
                        StatusCode::BAD_REQUEST
                    } else {
                        status
                    },
                    message,
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn storage(e: sqlx::Error) -> StorageError {
        StorageError::Database(e)
    }

    #[test]
    fn a_full_disk_is_503_saying_so_and_what_to_do_with_retry_after() {
        let full = storage(sqlx::Error::Io(std::io::Error::from_raw_os_error(28)));
        assert!(full.is_disk_full());
        let e = ApiError::from(full);
        assert_eq!(e.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(e.message, DISK_FULL);
        assert!(e.message.contains("disk is full") && e.message.contains("free space"));
        assert_eq!(e.retry_after_secs, Some(UNAVAILABLE_RETRY_SECS));
        let resp = e.into_response();
        assert_eq!(resp.headers()[axum::http::header::RETRY_AFTER], "5");

        // Through the heartbeat writer too.
        let full = storage(sqlx::Error::Io(std::io::Error::from_raw_os_error(28)));
        let e = ApiError::from(HeartbeatError::Storage(std::sync::Arc::new(full)));
        assert_eq!(e.message, DISK_FULL);
    }

    #[test]
    fn a_database_that_cannot_answer_is_503_with_retry_after() {
        let down = storage(sqlx::Error::PoolTimedOut);
        assert!(!down.is_disk_full());
        let e = ApiError::from(down);
        assert_eq!(e.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(e.message, DATABASE_UNAVAILABLE);
        assert_eq!(e.retry_after_secs, Some(UNAVAILABLE_RETRY_SECS));
        // A conflict is not a database failure.
        let e = ApiError::from(StorageError::Conflict("org".into()));
        assert_eq!(e.status, StatusCode::CONFLICT);
        assert_eq!(e.retry_after_secs, None);
    }
}
