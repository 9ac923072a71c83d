//! The agent routes' guards, run before their handlers (docs/limits.md): the rate
//! limits per agent credential and per source address ([`rate_limits`], before the
//! credential is looked up), the bound on database-bound agent requests in flight
//! ([`in_flight_if_db_bound`], [`in_flight`]: beyond it 503 `overloaded` at once), and
//! the size caps of every string and list of an agent message ([`size_caps`],
//! [`patchctl_proto::limits`], before the message is decoded; on the routes with a
//! credential, [`known_then_size_caps`] reads no body before the credential is known,
//! so an unknown one cannot make the platform read and inflate 16 MiB).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, MatchedPath, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::error::ApiError;
use crate::gate::AgentGate;

/// The bearer of `Authorization: Bearer ...`, as sent.
fn bearer(req: &Request) -> Option<&str> {
    req.headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// Takes a token of the request's credential (when it names one) and of its source
/// address, or answers 429 with `Retry-After`. The credential goes first, so that one
/// agent over its limit does not drain the bucket of the address it shares (NAT).
pub async fn rate_limits(State(st): State<AppState>, req: Request, next: Next) -> Response {
    if let Some(b) = bearer(&req)
        && let Err(e) = st.agent_limits.check_credential(b)
    {
        tracing::debug!(path = %req.uri().path(), "agent request rate-limited by credential");
        return ApiError::from(e).into_response();
    }
    let addr = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    if let Err(e) = st.agent_limits.check_address(addr) {
        tracing::debug!(peer = ?addr, "agent request rate-limited by source address");
        return ApiError::from(e).into_response();
    }
    next.run(req).await
}

/// On a POST or PUT: refuses a missing, unknown or revoked credential (as the handler
/// would, a pending host goes on), then [`size_caps`]. The handler's own check then
/// hits the credential cache.
pub async fn known_then_size_caps(
    State(st): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    if !matches!(*req.method(), Method::POST | Method::PUT) {
        return next.run(req).await;
    }
    let (mut parts, body) = req.into_parts();
    if let Err(e) = crate::auth::AgentIdentity::from_request_parts(&mut parts, &st).await {
        return e.into_response();
    }
    size_caps(Request::from_parts(parts, body), next).await
}

/// Reads the body of a POST or PUT (within the route's body limit, after
/// decompression) and checks every string and list in it against its cap: 400 naming
/// the field and the limit. The handler then decodes the same bytes.
pub async fn size_caps(req: Request, next: Next) -> Response {
    if !matches!(*req.method(), Method::POST | Method::PUT) {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let bytes = match Bytes::from_request(Request::from_parts(parts.clone(), body), &()).await {
        Ok(b) => b,
        Err(rejection) => {
            let status = rejection.status();
            let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
                "request body too large".to_owned()
            } else {
                rejection.body_text()
            };
            return ApiError::new(status, message).into_response();
        }
    };
    if let Err(e) = patchctl_proto::limits::check_agent_json(&bytes) {
        tracing::info!(path = %parts.uri.path(), error = %e, "agent message over a size cap");
        return ApiError::bad_request(e.to_string()).into_response();
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// The agent routes whose work needs a database connection (and whose credential
/// lookup may): behind the bound of [`AgentGate`]. Not the heartbeat (the group-commit
/// writer batches it, and it carries the reconnection of a whole fleet), not the
/// long-poll (it parks without a connection), not `whoami` or the release downloads.
pub const DB_BOUND_AGENT_ROUTES: [&str; 5] = [
    "/api/v1/agent/enroll",
    "/api/v1/agent/inventory",
    "/api/v1/agent/scan",
    "/api/v1/agent/results",
    "/api/v1/agent/credential",
];

/// Takes a permit of the gate for the request's life (until its handler has answered;
/// the answers of these routes are small and in memory), or answers 503 `overloaded`
/// with `Retry-After` at once.
pub async fn in_flight(State(gate): State<Arc<AgentGate>>, req: Request, next: Next) -> Response {
    let _permit = match gate.try_enter() {
        Ok(permit) => permit,
        Err(e) => {
            tracing::debug!(path = %req.uri().path(), "agent request shed: too many in flight");
            return ApiError::from(e).into_response();
        }
    };
    next.run(req).await
}

/// [`in_flight`] for the routes of [`DB_BOUND_AGENT_ROUTES`] (by the route matched);
/// any other request passes untouched.
pub async fn in_flight_if_db_bound(
    gate: State<Arc<AgentGate>>,
    req: Request,
    next: Next,
) -> Response {
    let db_bound = req
        .extensions()
        .get::<MatchedPath>()
        .is_some_and(|p| is_db_bound(p.as_str()));
    if db_bound {
        in_flight(gate, req, next).await
    } else {
        next.run(req).await
    }
}

/// Whether the route `template` is one of [`DB_BOUND_AGENT_ROUTES`].
pub fn is_db_bound(template: &str) -> bool {
    DB_BOUND_AGENT_ROUTES.contains(&template)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::SHED_RETRY_AFTER_SECS;
    use axum::Router;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::{Duration, Instant};
    use tokio::sync::Notify;
    use tower::ServiceExt;

    /// A router whose every request waits for `release` (one `notify_one` lets one go)
    /// behind [`in_flight`] with `gate`; `entered` counts the handlers started.
    fn held(gate: Arc<AgentGate>, release: Arc<Notify>, entered: Arc<AtomicU64>) -> Router {
        // A fallback, not a route: the role matrix reads the routes of this crate.
        Router::new()
            .fallback(move || {
                let (release, entered) = (release.clone(), entered.clone());
                async move {
                    entered.fetch_add(1, Ordering::SeqCst);
                    release.notified().await;
                    "done"
                }
            })
            .layer(axum::middleware::from_fn_with_state(gate, in_flight))
    }

    fn post() -> Request {
        Request::post("/api/v1/agent/scan")
            .body(Body::empty())
            .unwrap()
    }

    /// Waits until `n` handlers have started.
    async fn until_entered(entered: &AtomicU64, n: u64) {
        tokio::time::timeout(Duration::from_secs(5), async {
            while entered.load(Ordering::SeqCst) < n {
                tokio::task::yield_now().await;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
        .await
        .expect("the handlers start");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn beyond_its_permits_a_request_is_shed_at_once_and_a_freed_permit_lets_the_next_in() {
        let gate = Arc::new(AgentGate::new(2));
        let release = Arc::new(Notify::new());
        let entered = Arc::new(AtomicU64::new(0));
        let app = held(gate.clone(), release.clone(), entered.clone());
        let first = tokio::spawn(app.clone().oneshot(post()));
        let second = tokio::spawn(app.clone().oneshot(post()));
        until_entered(&entered, 2).await;
        assert_eq!(gate.in_flight(), 2);

        // The third: 503 within milliseconds, with Retry-After and the JSON body.
        let start = Instant::now();
        let resp = app.clone().oneshot(post()).await.unwrap();
        let took = start.elapsed();
        assert!(took < Duration::from_millis(200), "{took:?}");
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        let secs: u64 = resp.headers()[header::RETRY_AFTER]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(SHED_RETRY_AFTER_SECS.contains(&secs), "{secs}");
        let body = axum::body::to_bytes(resp.into_body(), 1 << 16)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["code"], "overloaded", "{body}");
        let msg = body["error"].as_str().unwrap();
        assert!(
            msg.contains("limit of 2 agent requests in flight")
                && msg.contains(&format!("retry in {secs} s")),
            "{msg}"
        );
        assert_eq!(
            entered.load(Ordering::SeqCst),
            2,
            "the shed request never ran"
        );
        assert_eq!((gate.shed(), gate.in_flight()), (1, 2));

        // One held request ends: the next passes (and is held in turn).
        release.notify_one();
        let done = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                if first.is_finished() || second.is_finished() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
        .await;
        assert!(done.is_ok(), "a released request ends");
        let fourth = tokio::spawn(app.clone().oneshot(post()));
        until_entered(&entered, 3).await;
        assert_eq!((gate.shed(), gate.in_flight()), (1, 2));
        // And a fifth is shed again while those two are held.
        let resp = app.clone().oneshot(post()).await.unwrap();
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(gate.shed(), 2);

        // Everything released: every held request answered 200, no permit left taken.
        release.notify_one();
        release.notify_one();
        for h in [first, second, fourth] {
            let resp = tokio::time::timeout(Duration::from_secs(5), h)
                .await
                .expect("released")
                .unwrap()
                .unwrap();
            assert_eq!(resp.status(), StatusCode::OK);
        }
        assert_eq!(gate.in_flight(), 0);
    }

    #[test]
    fn only_the_database_bound_agent_routes_are_gated() {
        for r in DB_BOUND_AGENT_ROUTES {
            assert!(is_db_bound(r));
        }
        for r in [
            "/api/v1/agent/heartbeat",
            "/api/v1/agent/commands/wait",
            "/api/v1/agent/whoami",
            "/api/v1/agent/releases/{version}/{target}",
            "/api/v1/agent/releases/{version}/{target}/artifact",
            "/scan",
        ] {
            assert!(!is_db_bound(r), "{r}");
        }
    }

    #[test]
    fn a_gate_of_zero_still_lets_one_in() {
        let gate = AgentGate::new(0);
        assert_eq!(gate.limit(), 1);
        let p = gate.try_enter().unwrap();
        assert!(gate.try_enter().is_err());
        drop(p);
        assert!(gate.try_enter().is_ok());
    }
}
