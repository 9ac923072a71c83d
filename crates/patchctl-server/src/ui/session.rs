//! Dashboard sessions: the login form, the session cookie, the idle and absolute
//! timeouts, logout, CSRF, and the middleware every page behind a session goes through.
//!
//! The session secret is 256 random bits in the cookie `__Host-patchctl_session`
//! (Secure, HttpOnly, SameSite=Strict, Path=/); only its SHA-256 is stored. The CSRF
//! token of a session is hex(SHA-256("patchctl-csrf\0" || secret)): derived, so nothing
//! more is stored, and it cannot be turned back into the secret. A state-changing
//! request must carry it as the form field `csrf` (compared in constant time) and, when
//! the browser sends an `Origin`, come from this platform's own origin.
//!
//! An unknown user is answered exactly as a wrong password (same text, and the same
//! work: a verification against [`crate::passwords::dummy_hash`]). Login attempts are
//! rate-limited per source address (in-memory token buckets, like the enrollment
//! limits: each node takes its share) and per username (in memory, the whole limit, and
//! in the database for every node at once).

use std::net::SocketAddr;
use std::time::Instant;

use askama::Template;
use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequestParts, MatchedPath, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use patchctl_storage::{AuditActor, AuditOutcome, NewAuditEntry, NewSession};
use rand::RngCore;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{Page, UiError, assets};
use crate::AppState;
use crate::access::{Actor, Need, Principal, rules};
use crate::auth::hash_secret;
use crate::ratelimit::{AddrKey, Share, TokenBuckets};
use crate::{audit, passwords};

/// Name of the session cookie. The `__Host-` prefix makes the browser refuse it unless
/// it is Secure, has `Path=/` and no `Domain`: no other host can set or shadow it.
pub const COOKIE: &str = "__Host-patchctl_session";
/// Largest form body a page behind a session accepts.
pub const MAX_FORM_BYTES: usize = 64 * 1024;
/// Login attempts a minute per source address.
pub const LOGIN_PER_ADDRESS_PER_MIN: u32 = 20;
/// Login attempts a minute per username.
pub const LOGIN_PER_USER_PER_MIN: u32 = 10;
/// A session's last-seen time is written at most this often (seconds).
const TOUCH_EVERY_SECS: i64 = 60;

/// The login rate limits of one platform process.
#[derive(Debug)]
pub struct LoginLimits {
    per_address: TokenBuckets<AddrKey>,
    per_user: TokenBuckets<String>,
}

impl Default for LoginLimits {
    /// The limits of a node alone.
    fn default() -> Self {
        LoginLimits::new(Share::default())
    }
}

impl LoginLimits {
    /// This node's `share` of the per-address limit; the per-username limit whole (the
    /// database's bucket of the username holds for every node).
    pub fn new(share: Share) -> Self {
        LoginLimits {
            per_address: TokenBuckets::shared(LOGIN_PER_ADDRESS_PER_MIN, share),
            per_user: TokenBuckets::new(LOGIN_PER_USER_PER_MIN),
        }
    }

    /// Takes a token of the address's and of the username's bucket; the seconds to wait
    /// when either is empty.
    fn check(&self, addr: Option<SocketAddr>, username: &str) -> Result<(), u64> {
        let now = Instant::now();
        let a = self
            .per_address
            .take(&AddrKey::of(addr.map(|a| a.ip())), now);
        let u = self.per_user.take(&username.to_lowercase(), now);
        match (a, u) {
            (Ok(()), Ok(())) => Ok(()),
            (Err(w), _) | (_, Err(w)) => Err(w.as_secs().max(1)),
        }
    }
}

/// A valid dashboard session: who it is and the CSRF token of its forms. Put into the
/// request by [`require`]; a handler outside it gets a redirect to the login page.
#[derive(Debug, Clone)]
pub struct UiSession {
    /// Who is logged in, with the role of the organisation.
    pub principal: Principal,
    /// The session's CSRF token.
    pub csrf: String,
    /// The session's id.
    pub id: Uuid,
    /// The user's name.
    pub username: String,
}

impl UiSession {
    /// Refuses `form_value` unless it is this session's CSRF token (constant time).
    pub fn check_csrf(&self, form_value: &str) -> Result<(), UiError> {
        if form_value.is_empty() {
            return Err(UiError::Csrf("the form carried no CSRF token"));
        }
        if constant_time_eq(form_value.as_bytes(), self.csrf.as_bytes()) {
            Ok(())
        } else {
            Err(UiError::Csrf("the form's CSRF token is not this session's"))
        }
    }

    /// The layout data of a page whose nav item is `nav`.
    pub fn chrome(&self, nav: &'static str) -> super::Chrome {
        super::Chrome {
            username: self.username.clone(),
            role: self.principal.role,
            csrf: self.csrf.clone(),
            nav,
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for UiSession {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Response> {
        match parts.extensions.get::<UiSession>() {
            Some(s) => Ok(s.clone()),
            None => Err(no_session(&parts.method, &parts.uri)),
        }
    }
}

/// The CSRF token of a session secret.
pub fn csrf_token(secret: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"patchctl-csrf\0");
    h.update(secret.as_bytes());
    hex::encode(h.finalize())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The session secret of the request's cookie, if any.
fn cookie_secret(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.trim().to_owned())
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// What a request without a valid session gets: a page load goes to the login form
/// (and comes back after it); a form post is refused with a page saying why.
fn no_session(method: &Method, uri: &axum::http::Uri) -> Response {
    if method == Method::GET || method == Method::HEAD {
        let next = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/ui/");
        let q = serde_urlencoded::to_string([("next", next)]).unwrap_or_default();
        Redirect::to(&format!("/ui/login?{q}")).into_response()
    } else {
        UiError::NoSession.into_response()
    }
}

/// The session of `secret`, if it is valid at `now`; a session past its idle or
/// absolute timeout is ended on the way.
async fn load(
    st: &AppState,
    secret: &str,
    now: DateTime<Utc>,
) -> Result<Option<UiSession>, UiError> {
    let Some(row) = st.store.session_by_hash(&hash_secret(secret)).await? else {
        return Ok(None);
    };
    if row.ended_at.is_some() || row.user_disabled {
        return Ok(None);
    }
    let idle = chrono::Duration::seconds(st.settings.session_idle_secs as i64);
    let max = chrono::Duration::seconds(st.settings.session_max_secs as i64);
    if now - row.last_seen_at > idle || now - row.created_at > max {
        st.store.end_session(row.id, now).await?;
        tracing::info!(session_id = %row.id, user = %row.username, "dashboard session timed out");
        return Ok(None);
    }
    if (now - row.last_seen_at).num_seconds() >= TOUCH_EVERY_SECS {
        st.store.touch_session(row.id, now).await?;
    }
    Ok(Some(UiSession {
        principal: Principal {
            org_id: row.org_id,
            role: row.role,
            read_only: false,
            actor: Actor::Session {
                id: row.id,
                user_id: row.user_id,
                username: row.username.clone(),
            },
        },
        csrf: csrf_token(secret),
        id: row.id,
        username: row.username,
    }))
}

/// Refuses a state-changing request whose `Origin` is not this platform's own.
fn check_origin(headers: &HeaderMap, uri: &axum::http::Uri) -> Result<(), UiError> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| uri.authority().map(|a| a.to_string()));
    match (origin.to_str().ok(), host) {
        (Some(o), Some(h)) if o == format!("https://{h}") => Ok(()),
        _ => Err(UiError::Csrf(
            "it came from another site (its Origin is not this platform)",
        )),
    }
}

#[derive(Deserialize)]
struct CsrfField {
    #[serde(default)]
    csrf: String,
}

/// The middleware of every page behind a session: a valid session (else the login
/// page), the route's access rule for the session's role (fail closed: a route without
/// a rule is refused for everyone), and on a state-changing request the `Origin` and
/// the form's CSRF token. Puts the [`UiSession`] and its [`Principal`] into the request.
pub async fn require(State(st): State<AppState>, req: Request, next: Next) -> Response {
    match check(&st, req).await {
        Ok((req, principal)) => {
            let mut resp = next.run(req).await;
            resp.extensions_mut().insert(principal);
            resp
        }
        Err(resp) => resp,
    }
}

/// `resp` carrying `principal`, so that the audit trail names who was refused.
fn with_principal(mut resp: Response, principal: &Principal) -> Response {
    resp.extensions_mut().insert(principal.clone());
    resp
}

async fn check(st: &AppState, req: Request) -> Result<(Request, Principal), Response> {
    let secret = cookie_secret(req.headers());
    let session = match secret {
        Some(s) => load(st, &s, Utc::now())
            .await
            .map_err(IntoResponse::into_response)?,
        None => None,
    };
    let Some(session) = session else {
        return Err(no_session(req.method(), req.uri()));
    };
    let p = session.principal.clone();
    let attach = move |r: Response| with_principal(r, &p);
    let method = req.method().clone();
    let path = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| req.uri().path().to_owned());
    let Some(rule) = rules::rule_for(method.as_str(), &path) else {
        return Err(attach(UiError::Forbidden(format!(
            "no access rule covers {method} {path}, so the platform refuses it for everyone; this is a bug of the platform"
        ))
        .into_response()));
    };
    if !session.principal.may(rule.need) {
        return Err(attach(
            UiError::Forbidden(format!(
                "your role ({}) does not allow this ({}); ask an owner or admin",
                session.principal.role, rule.action
            ))
            .into_response(),
        ));
    }
    let mut req = req;
    if method != Method::GET && method != Method::HEAD {
        check_origin(req.headers(), req.uri()).map_err(|e| attach(e.into_response()))?;
        let (parts, body) = req.into_parts();
        let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES)
            .await
            .map_err(|_| {
                attach(
                    UiError::BadRequest(format!("the form is larger than {MAX_FORM_BYTES} bytes"))
                        .into_response(),
                )
            })?;
        let field: CsrfField = serde_urlencoded::from_bytes(&bytes).unwrap_or(CsrfField {
            csrf: String::new(),
        });
        session
            .check_csrf(&field.csrf)
            .map_err(|e| attach(e.into_response()))?;
        req = Request::from_parts(parts, Body::from(bytes));
    }
    let principal = session.principal.clone();
    req.extensions_mut().insert(principal.clone());
    req.extensions_mut().insert(session);
    Ok((req, principal))
}

/// The login page.
#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    css: &'static str,
    next: String,
    username: String,
    error: Option<String>,
    notice: Option<String>,
}

/// Query of the login page.
#[derive(Debug, Default, Deserialize)]
pub struct LoginQuery {
    /// Where to go after logging in.
    #[serde(default)]
    pub next: String,
    /// Set after a logout.
    #[serde(default)]
    pub out: Option<String>,
}

/// `GET /ui/login`: the login form.
pub async fn login_page(Query(q): Query<LoginQuery>) -> Response {
    Page(LoginPage {
        css: assets::css_url(),
        next: safe_next(&q.next).to_owned(),
        username: String::new(),
        error: None,
        notice: q.out.map(|_| "You are logged out.".to_owned()),
    })
    .into_response()
}

/// Where to go after logging in: a dashboard path, never another site.
fn safe_next(next: &str) -> &str {
    let ok = next.starts_with("/ui/")
        && !next.starts_with("//")
        && !next.contains('\\')
        && !next.bytes().any(|b| b.is_ascii_control());
    if ok { next } else { "/ui/" }
}

/// The login form.
#[derive(Deserialize)]
pub struct LoginForm {
    /// The username.
    #[serde(default)]
    pub username: String,
    /// The password (never logged).
    #[serde(default)]
    pub password: String,
    /// Where to go after logging in.
    #[serde(default)]
    pub next: String,
}

/// The one answer to a wrong password and to an unknown user.
const WRONG_LOGIN: &str = "wrong username or password";

fn peer_of(parts: &axum::http::Extensions) -> Option<SocketAddr> {
    parts.get::<ConnectInfo<SocketAddr>>().map(|c| c.0)
}

/// `POST /ui/login`: checks the password and starts a session.
pub async fn login(State(st): State<AppState>, req: Request) -> Response {
    let peer = peer_of(req.extensions());
    let headers = req.headers().clone();
    let uri = req.uri().clone();
    let form: LoginForm = match axum::body::to_bytes(req.into_body(), MAX_FORM_BYTES).await {
        Ok(b) => match serde_urlencoded::from_bytes(&b) {
            Ok(f) => f,
            Err(_) => {
                return UiError::BadRequest("the login form could not be read".into())
                    .into_response();
            }
        },
        Err(_) => return UiError::BadRequest("the login form is too large".into()).into_response(),
    };
    if let Err(resp) = check_origin(&headers, &uri) {
        // A cross-site login form (login CSRF) is refused like any other forged form.
        return resp.into_response();
    }
    let username = form.username.trim().to_owned();
    let next = safe_next(&form.next).to_owned();
    let refuse = |status: StatusCode, error: String| {
        let mut resp = Page(LoginPage {
            css: assets::css_url(),
            next: next.clone(),
            username: username.clone(),
            error: Some(error),
            notice: None,
        })
        .into_response();
        *resp.status_mut() = status;
        resp
    };
    // This node's buckets (per address and per username) first, then the username's
    // bucket every node shares: three nodes allow one node's guesses, not three times.
    let shared = async {
        let bucket = format!("login-user:{}", username.to_lowercase());
        match st
            .store
            .take_token(&bucket, LOGIN_PER_USER_PER_MIN, chrono::Utc::now())
            .await
        {
            Ok(None) => Ok(()),
            Ok(Some(wait)) => Err(wait.as_secs().max(1)),
            Err(e) => {
                tracing::warn!(error = %e, "the shared login limit could not be read; this node's limits apply");
                Ok(())
            }
        }
    };
    let limited = match st.logins.check(peer, &username) {
        Err(secs) => Err(secs),
        Ok(()) => shared.await,
    };
    if let Err(secs) = limited {
        tracing::warn!(peer = ?peer.map(|p| p.ip()), "dashboard login rate-limited");
        record_login(
            &st,
            peer,
            None,
            &username,
            429,
            AuditOutcome::Refused,
            Some("rate_limited"),
        )
        .await;
        let mut resp = refuse(
            StatusCode::TOO_MANY_REQUESTS,
            format!("too many login attempts; wait {secs} seconds and try again"),
        );
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        return resp;
    }
    let found = match st.store.user_login(&username).await {
        Ok(f) => f,
        Err(e) => return UiError::from(e).into_response(),
    };
    let user = match found {
        Some((user, hash)) => {
            let ok = verify_blocking(form.password, hash).await;
            (ok && user.disabled_at.is_none()).then_some(user)
        }
        None => {
            verify_blocking(form.password, passwords::dummy_hash().to_owned()).await;
            None
        }
    };
    let Some(user) = user else {
        record_login(
            &st,
            peer,
            None,
            &username,
            401,
            AuditOutcome::Refused,
            Some("unauthorized"),
        )
        .await;
        return refuse(StatusCode::UNAUTHORIZED, WRONG_LOGIN.to_owned());
    };
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let secret = hex::encode(bytes);
    let id = Uuid::new_v4();
    let now = Utc::now();
    if let Err(e) = st
        .store
        .create_session(NewSession {
            id,
            secret_hash: hash_secret(&secret),
            user_id: user.id,
            org_id: user.org_id,
            now,
        })
        .await
    {
        return UiError::from(e).into_response();
    }
    tracing::info!(target: "audit", org_id = %user.org_id, user = %user.username, session_id = %id, "dashboard login");
    record_login(
        &st,
        peer,
        Some((id, &user)),
        &user.username,
        303,
        AuditOutcome::Ok,
        None,
    )
    .await;
    let dest = if next == "/ui/" && !user.role.allows(Need::Read) {
        "/ui/audit".to_owned()
    } else {
        next
    };
    let mut resp = Redirect::to(&dest).into_response();
    let cookie = format!(
        "{COOKIE}={secret}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={}",
        st.settings.session_max_secs
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

/// Argon2 is slow on purpose: it runs off the async workers.
async fn verify_blocking(password: String, hash: String) -> bool {
    tokio::task::spawn_blocking(move || passwords::verify_password(&password, &hash))
        .await
        .unwrap_or(false)
}

#[allow(clippy::too_many_arguments)]
async fn record_login(
    st: &AppState,
    peer: Option<SocketAddr>,
    session: Option<(Uuid, &patchctl_storage::User)>,
    username: &str,
    status: u16,
    outcome: AuditOutcome,
    error_code: Option<&str>,
) {
    let (org_id, actor) = match session {
        Some((id, user)) => (
            Some(user.org_id),
            AuditActor {
                kind: "session".to_owned(),
                id: Some(id.to_string()),
                name: format!("user {}", user.username),
                user_id: Some(user.id),
            },
        ),
        None => (
            None,
            AuditActor {
                kind: "anonymous".to_owned(),
                id: None,
                name: "anonymous".to_owned(),
                user_id: None,
            },
        ),
    };
    let entry = NewAuditEntry {
        org_id,
        at: Utc::now(),
        actor,
        peer: peer.map(|p| p.ip().to_string()),
        method: "POST".to_owned(),
        route: "/ui/login".to_owned(),
        action: "session.login".to_owned(),
        target: serde_json::json!({ "username": username }),
        details: serde_json::json!({}),
        status,
        outcome,
        error_code: error_code.map(str::to_owned),
    };
    audit::append(st, entry).await;
}

/// `POST /ui/logout`: ends the session on the server (the old cookie no longer works)
/// and clears the cookie. Needs the session's CSRF token like any other form.
pub async fn logout(State(st): State<AppState>, req: Request) -> Response {
    let peer = peer_of(req.extensions());
    let headers = req.headers().clone();
    let uri = req.uri().clone();
    let Some(secret) = cookie_secret(&headers) else {
        return Redirect::to("/ui/login").into_response();
    };
    let now = Utc::now();
    let session = match load(&st, &secret, now).await {
        Ok(Some(s)) => s,
        Ok(None) => return Redirect::to("/ui/login").into_response(),
        Err(e) => return e.into_response(),
    };
    if let Err(e) = check_origin(&headers, &uri) {
        return e.into_response();
    }
    let field: CsrfField = match axum::body::to_bytes(req.into_body(), MAX_FORM_BYTES).await {
        Ok(b) => serde_urlencoded::from_bytes(&b).unwrap_or(CsrfField {
            csrf: String::new(),
        }),
        Err(_) => CsrfField {
            csrf: String::new(),
        },
    };
    if let Err(e) = session.check_csrf(&field.csrf) {
        return e.into_response();
    }
    if let Err(e) = st.store.end_session(session.id, now).await {
        return UiError::from(e).into_response();
    }
    tracing::info!(target: "audit", org_id = %session.principal.org_id, user = %session.username, session_id = %session.id, "dashboard logout");
    audit::append(
        &st,
        NewAuditEntry {
            org_id: Some(session.principal.org_id),
            at: now,
            actor: session.principal.audit_actor(),
            peer: peer.map(|p| p.ip().to_string()),
            method: "POST".to_owned(),
            route: "/ui/logout".to_owned(),
            action: "session.logout".to_owned(),
            target: serde_json::json!({ "username": session.username }),
            details: serde_json::json!({}),
            status: 303,
            outcome: AuditOutcome::Ok,
            error_code: None,
        },
    )
    .await;
    let mut resp = Redirect::to("/ui/login?out=1").into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "__Host-patchctl_session=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0",
        ),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_csrf_token_is_derived_and_checked_in_full() {
        let t = csrf_token(&"ab".repeat(32));
        assert_eq!(t.len(), 64);
        assert_ne!(t, csrf_token(&"ac".repeat(32)));
        assert!(constant_time_eq(t.as_bytes(), t.as_bytes()));
        assert!(!constant_time_eq(t.as_bytes(), &t.as_bytes()[..63]));
    }

    #[test]
    fn next_stays_on_the_dashboard() {
        for (input, want) in [
            ("/ui/hosts?q=a", "/ui/hosts?q=a"),
            ("https://evil.example/", "/ui/"),
            ("//evil.example/ui/", "/ui/"),
            ("/ui/\\evil", "/ui/"),
            ("/api/v1/hosts", "/ui/"),
            ("", "/ui/"),
        ] {
            assert_eq!(safe_next(input), want, "{input}");
        }
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        let s = "0f".repeat(32);
        h.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("a=b; {COOKIE}={s}; c=d")).unwrap(),
        );
        assert_eq!(cookie_secret(&h), Some(s));
        h.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("{COOKIE}=short")).unwrap(),
        );
        assert_eq!(cookie_secret(&h), None);
    }
}
