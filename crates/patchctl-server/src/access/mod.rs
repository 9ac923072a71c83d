//! Who is asking and whether they may: the [`Principal`] of an operator request
//! (an API token, or a dashboard session), and [`authorize`], the middleware that
//! checks every operator route against its rule in [`rules::RULES`].
//!
//! Invariant: every operator route has exactly one rule; a route without one is
//! refused for everyone (403 `no_access_rule`), so that forgetting a rule can never
//! open a route. A read-only token passes only `read` and `audit` rules.
//!
//! Tokens: only their SHA-256 is stored; a revoked or expired token, or one whose user
//! is disabled, is refused with 401 `unauthorized`. The organisation's own token (from
//! `admin create-org`, no user) acts as an owner. A token's last use is written at most
//! once a minute per token and process.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::{FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use patchctl_proto::trust::ErrorCode;
use patchctl_storage::AuditActor;
use uuid::Uuid;

use crate::AppState;
use crate::auth::{bearer, hash_secret};
use crate::error::ApiError;

pub mod rules;

pub use patchctl_proto::access::{Need, Role};
pub use rules::{Rule, rule_for};

/// Who made an operator request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// The organisation's own token (no user; acts as an owner).
    OrgToken {
        /// Token id.
        id: Uuid,
        /// Token name.
        name: String,
    },
    /// A user's API token.
    Token {
        /// Token id.
        id: Uuid,
        /// Token name.
        name: String,
        /// The user.
        user_id: Uuid,
        /// The user's name.
        username: String,
    },
    /// A user's dashboard session.
    Session {
        /// Session id (not its secret).
        id: Uuid,
        /// The user.
        user_id: Uuid,
        /// The user's name.
        username: String,
    },
}

/// An authenticated operator: organisation, role, token scope and who.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The organisation every request of this principal is confined to.
    pub org_id: Uuid,
    /// The role (the organisation token's is owner).
    pub role: Role,
    /// A read-only token: only `read` and `audit` rules pass.
    pub read_only: bool,
    /// Who.
    pub actor: Actor,
}

impl Principal {
    /// Whether this principal may do what `need` names.
    pub fn may(&self, need: Need) -> bool {
        self.role.allows(need) && (!self.read_only || need.read_only())
    }

    /// [`Principal::may`] as an answer: 403 `forbidden` saying what was missing.
    pub fn require(&self, need: Need) -> Result<(), ApiError> {
        if self.may(need) {
            return Ok(());
        }
        let why = if self.role.allows(need) {
            format!(
                "{} is read-only and this changes state; use a read-write token",
                self.label()
            )
        } else {
            format!(
                "{} has the role {}, which does not allow {} (see `patchctl users list`; an \
                 admin or owner can change roles)",
                self.label(),
                self.role,
                what_needs(need)
            )
        };
        Err(ApiError::forbidden(why).with_code(ErrorCode::Forbidden))
    }

    /// For people and the audit trail: `user alice (token ci)`, `user alice (dashboard)`,
    /// `organisation token admin`.
    pub fn label(&self) -> String {
        match &self.actor {
            Actor::OrgToken { name, .. } => format!("organisation token {name:?}"),
            Actor::Token { name, username, .. } => format!("user {username} (token {name:?})"),
            Actor::Session { username, .. } => format!("user {username} (dashboard)"),
        }
    }

    /// The user, when there is one.
    pub fn user_id(&self) -> Option<Uuid> {
        match &self.actor {
            Actor::OrgToken { .. } => None,
            Actor::Token { user_id, .. } | Actor::Session { user_id, .. } => Some(*user_id),
        }
    }

    /// The actor of this principal's audit entries.
    pub fn audit_actor(&self) -> AuditActor {
        let (kind, id) = match &self.actor {
            Actor::OrgToken { id, .. } => ("org-token", id),
            Actor::Token { id, .. } => ("token", id),
            Actor::Session { id, .. } => ("session", id),
        };
        AuditActor {
            kind: kind.to_owned(),
            id: Some(id.to_string()),
            name: self.label(),
            user_id: self.user_id(),
        }
    }
}

/// What a need lets one do, for refusals.
fn what_needs(need: Need) -> &'static str {
    match need {
        Need::Read => "reading the fleet (viewer or above)",
        Need::Operate => "queueing or cancelling commands (operator or above)",
        Need::Administer => "administration (admin or owner)",
        Need::Own => "managing owners (owner)",
        Need::Audit => "reading the audit trail (auditor, admin or owner)",
        Need::Identity => "seeing one's own account",
        Need::Account => "managing one's own account",
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parts.extensions.get::<Principal>().cloned().ok_or_else(|| {
            ApiError::unauthorized("this route needs an operator: send an API token")
                .with_code(ErrorCode::Unauthorized)
        })
    }
}

fn unauthorized(message: impl Into<String>) -> ApiError {
    ApiError::unauthorized(message).with_code(ErrorCode::Unauthorized)
}

/// How often a token's last use is written.
const TOUCH_EVERY: Duration = Duration::from_secs(60);

/// Whether this process should write `token`'s last use now.
fn due_for_touch(token: Uuid) -> bool {
    static TOUCHED: OnceLock<Mutex<HashMap<Uuid, Instant>>> = OnceLock::new();
    let mut map = TOUCHED
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if map.len() > 100_000 {
        map.clear();
    }
    match map.get(&token) {
        Some(at) if at.elapsed() < TOUCH_EVERY => false,
        _ => {
            map.insert(token, Instant::now());
            true
        }
    }
}

/// The principal of an API token: 401 `unauthorized` for an unknown, revoked or expired
/// token, or one whose user is disabled.
pub async fn authenticate_token(
    state: &AppState,
    token: &str,
    now: DateTime<Utc>,
) -> Result<Principal, ApiError> {
    let Some(found) = state.store.api_token_auth(&hash_secret(token)).await? else {
        return Err(unauthorized(
            "invalid API token: it was never issued by this platform; create one with \
             `patchctl tokens create` or in the dashboard",
        ));
    };
    let t = &found.token;
    if let Some(at) = t.revoked_at {
        return Err(unauthorized(format!(
            "API token {:?} was revoked at {}; create a new one",
            t.name,
            at.to_rfc3339()
        )));
    }
    if let Some(at) = t.expires_at.filter(|at| *at <= now) {
        return Err(unauthorized(format!(
            "API token {:?} expired at {}; create a new one with `patchctl tokens create`",
            t.name,
            at.to_rfc3339()
        )));
    }
    let (role, actor) = match (t.user_id, &found.user) {
        (None, _) => (
            Role::Owner,
            Actor::OrgToken {
                id: t.id,
                name: t.name.clone(),
            },
        ),
        (Some(_), Some(u)) if u.disabled_at.is_none() => (
            u.role,
            Actor::Token {
                id: t.id,
                name: t.name.clone(),
                user_id: u.id,
                username: u.username.clone(),
            },
        ),
        (Some(_), _) => {
            return Err(unauthorized(format!(
                "API token {:?} belongs to a disabled user; an admin can enable a new user",
                t.name
            )));
        }
    };
    if due_for_touch(t.id) {
        state.store.touch_api_token(t.id, now).await?;
    }
    Ok(Principal {
        org_id: t.org_id,
        role,
        read_only: t.read_only,
        actor,
    })
}

/// The rule of a request's route and whether `principal` passes it: 403
/// `no_access_rule` for a route without a rule (for everyone), 403 `forbidden` for a
/// role or scope that does not allow it.
pub fn check(principal: &Principal, method: &str, route: &str) -> Result<&'static Rule, ApiError> {
    let Some(rule) = rule_for(method, route) else {
        tracing::error!(method, route, "a route without an access rule was refused");
        return Err(ApiError::forbidden(format!(
            "{method} {route} has no access rule, so it is refused for everyone; this is a \
             platform bug, please report it"
        ))
        .with_code(ErrorCode::NoAccessRule));
    };
    principal.require(rule.need)?;
    Ok(rule)
}

/// The route template axum matched (none outside a route).
pub fn route_of(req: &Request) -> Option<String> {
    req.extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
}

/// Middleware of the operator API (a route layer): authenticates the bearer token,
/// checks the route's rule, and puts the [`Principal`] in the request (for the
/// handler) and in the response (for the audit trail).
pub async fn authorize(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let route = route_of(&req).unwrap_or_default();
    let method = req.method().as_str().to_owned();
    let principal = match req.extensions().get::<Principal>() {
        Some(p) => p.clone(),
        None => {
            let (parts, body) = req.into_parts();
            let Some(token) = bearer(&parts).map(str::to_owned) else {
                return unauthorized(
                    "missing API token: send it as Authorization: Bearer TOKEN (the CLI: \
                     --token or PATCHCTL_TOKEN)",
                )
                .into_response();
            };
            req = Request::from_parts(parts, body);
            match authenticate_token(&state, &token, Utc::now()).await {
                Ok(p) => p,
                Err(e) => return e.into_response(),
            }
        }
    };
    if rule_for(&method, &route).is_none() && rules::RULES.iter().any(|r| r.path == route) {
        // A method the route does not serve (PUT on a GET route): axum answers 405.
        // No principal goes in, so a handler, were one there without a rule, would
        // refuse it with 401: still refused for everyone.
        return next.run(req).await;
    }
    if let Err(e) = check(&principal, &method, &route) {
        let mut resp = e.into_response();
        resp.extensions_mut().insert(principal);
        return resp;
    }
    req.extensions_mut().insert(principal.clone());
    let mut resp = next.run(req).await;
    resp.extensions_mut().insert(principal);
    resp
}

/// What most operator handlers need: the organisation and who, for their journal
/// events. Extracted from the request's [`Principal`] (so only on routes behind
/// [`authorize`]).
#[derive(Debug, Clone)]
pub struct OperatorAuth {
    /// The organisation every request is confined to.
    pub org_id: Uuid,
    /// Who.
    pub principal: Principal,
}

impl OperatorAuth {
    /// The actor of a journal audit event (`user alice (token "ci")`).
    pub fn actor(&self) -> String {
        self.principal.label()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for OperatorAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let principal = Principal::from_request_parts(parts, state).await?;
        Ok(OperatorAuth {
            org_id: principal.org_id,
            principal,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(role: Role, read_only: bool) -> Principal {
        Principal {
            org_id: Uuid::new_v4(),
            role,
            read_only,
            actor: Actor::Token {
                id: Uuid::new_v4(),
                name: "ci".into(),
                user_id: Uuid::new_v4(),
                username: "alice".into(),
            },
        }
    }

    #[test]
    fn a_read_only_token_reads_but_never_changes_state() {
        let p = principal(Role::Owner, true);
        assert!(p.may(Need::Read) && p.may(Need::Audit));
        assert!(!p.may(Need::Operate) && !p.may(Need::Administer) && !p.may(Need::Own));
        let e = check(&p, "POST", "/api/v1/commands").unwrap_err();
        assert_eq!(e.code, Some(ErrorCode::Forbidden));
        assert!(e.message.contains("read-only"), "{}", e.message);
    }

    #[test]
    fn a_route_without_a_rule_is_refused_even_for_an_owner() {
        let p = principal(Role::Owner, false);
        let e = check(&p, "POST", "/api/v1/not-a-route").unwrap_err();
        assert_eq!(e.code, Some(ErrorCode::NoAccessRule));
        check(&p, "POST", "/api/v1/hosts/{host}/revoke").unwrap();
        let v = principal(Role::Viewer, false);
        let e = check(&v, "POST", "/api/v1/hosts/{host}/revoke").unwrap_err();
        assert!(
            e.message.contains("viewer") && e.message.contains("alice"),
            "{}",
            e.message
        );
    }
}
