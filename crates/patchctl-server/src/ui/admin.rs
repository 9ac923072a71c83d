//! The administration page: `GET /ui/admin` (users, API tokens, enrollment keys) and
//! its forms: create a user, change a role, disable a user, create a token (its secret
//! shown once, on the answer page), revoke a token, create / revoke / rotate an
//! enrollment key (the key shown once). Every mutation goes through the code the API
//! uses ([`crate::operators`], [`crate::api::keys`]), which checks the role again; the
//! session middleware checked the route's rule and the CSRF token first.

use askama::Template;
use axum::Extension;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use patchctl_proto::Secret;
use patchctl_proto::access::Role;
use patchctl_proto::trust::{EnrollmentKeyInfo, NewEnrollmentKey, RotateEnrollmentKey};
use serde::Deserialize;
use uuid::Uuid;

// Helper A's service and types, through a stand-in until A's branch is merged (see
// `ops.rs`): then `use crate::operators;` and `patchctl_proto::access::{...}`.
use super::{Chrome, Page, UiError, UiSession};
use crate::AppState;
use crate::api::keys;
use crate::operators;
use patchctl_proto::access::{NewTokenRequest, NewUserRequest, TokenInfo, UserInfo};

/// What a redirect back to the page says happened (fixed texts: nothing from the query
/// string is shown).
const DONE: [(&str, &str); 6] = [
    ("user-created", "The user was created."),
    ("role-changed", "The role was changed."),
    (
        "user-disabled",
        "The user was disabled; their sessions ended and their tokens stopped working.",
    ),
    ("token-revoked", "The token was revoked."),
    (
        "key-revoked",
        "The enrollment key was revoked; hosts it enrolled stay.",
    ),
    ("nothing", "Nothing changed."),
];

/// Query of `GET /ui/admin`.
#[derive(Debug, Default, Deserialize)]
pub struct AdminQuery {
    /// What the previous form did (a key of [`DONE`]).
    #[serde(default)]
    pub done: String,
}

/// The administration page.
#[derive(Template)]
#[template(path = "admin.html")]
pub struct AdminPage {
    /// The layout.
    pub chrome: Chrome,
    /// What the previous form did.
    pub notice: Option<&'static str>,
    /// The users.
    pub users: Vec<UserInfo>,
    /// The tokens.
    pub tokens: Vec<TokenInfo>,
    /// The enrollment keys.
    pub keys: Vec<EnrollmentKeyInfo>,
    /// The roles, for the selects.
    pub roles: Vec<&'static str>,
}

/// The answer page of a form that made a secret: shown this once.
#[derive(Template)]
#[template(path = "secret.html")]
pub struct SecretPage {
    /// The layout.
    pub chrome: Chrome,
    /// What was made (`API token`, `enrollment key`).
    pub what: &'static str,
    /// Its name.
    pub name: String,
    /// The secret.
    pub secret: String,
    /// What to do with it.
    pub hint: &'static str,
}

/// `GET /ui/admin`.
pub async fn page(
    State(st): State<AppState>,
    session: UiSession,
    Query(q): Query<AdminQuery>,
) -> Result<Page<AdminPage>, UiError> {
    let by = &session.principal;
    let users = operators::list_users(&st, by).await?;
    let tokens = operators::list_tokens(&st, by, None).await?;
    let now = Utc::now();
    let keys = st
        .store
        .list_enrollment_keys(by.org_id)
        .await?
        .iter()
        .map(|k| keys::info(k, now))
        .collect();
    Ok(Page(AdminPage {
        chrome: session.chrome("admin"),
        notice: DONE.iter().find(|(k, _)| *k == q.done).map(|(_, v)| *v),
        users,
        tokens,
        keys,
        roles: Role::ALL.iter().map(|r| r.as_str()).collect(),
    }))
}

fn back(done: &str) -> Response {
    Redirect::to(&format!("/ui/admin?done={done}")).into_response()
}

fn role(s: &str) -> Result<Role, UiError> {
    s.parse::<Role>()
        .map_err(|e: <Role as std::str::FromStr>::Err| UiError::BadRequest(e.to_string()))
}

/// The create-user form.
#[derive(Debug, Deserialize)]
pub struct NewUserForm {
    /// Login name.
    #[serde(default)]
    pub username: String,
    /// Initial password.
    #[serde(default)]
    pub password: String,
    /// Role.
    #[serde(default)]
    pub role: String,
}

/// `POST /ui/admin/users`.
pub async fn create_user(
    State(st): State<AppState>,
    session: UiSession,
    Form(f): Form<NewUserForm>,
) -> Result<Response, UiError> {
    let req = NewUserRequest {
        username: f.username.trim().to_owned(),
        role: role(&f.role)?,
        password: Secret::new(f.password),
    };
    operators::create_user(&st, &session.principal, req).await?;
    Ok(back("user-created"))
}

/// The change-role form.
#[derive(Debug, Deserialize)]
pub struct RoleForm {
    /// The new role.
    #[serde(default)]
    pub role: String,
}

/// `POST /ui/admin/users/{user}/role`.
pub async fn set_role(
    State(st): State<AppState>,
    session: UiSession,
    Path(user): Path<String>,
    Form(f): Form<RoleForm>,
) -> Result<Response, UiError> {
    operators::set_role(&st, &session.principal, &user, role(&f.role)?).await?;
    Ok(back("role-changed"))
}

/// `POST /ui/admin/users/{user}/disable`.
pub async fn disable_user(
    State(st): State<AppState>,
    session: UiSession,
    Path(user): Path<String>,
) -> Result<Response, UiError> {
    operators::disable_user(&st, &session.principal, &user).await?;
    Ok(back("user-disabled"))
}

/// The create-token form.
#[derive(Debug, Deserialize)]
pub struct NewTokenForm {
    /// Its name.
    #[serde(default)]
    pub name: String,
    /// Whose (name or id; empty: the caller's).
    #[serde(default)]
    pub user: String,
    /// `1` for read-only.
    #[serde(default)]
    pub read_only: String,
    /// Days until it expires (`never`, or empty for the default).
    #[serde(default)]
    pub expires_days: String,
}

/// `POST /ui/admin/tokens`: the token is on the answer page, this once.
pub async fn create_token(
    State(st): State<AppState>,
    session: UiSession,
    Form(f): Form<NewTokenForm>,
) -> Result<Response, UiError> {
    let (expires_in_secs, never_expires) = match f.expires_days.trim() {
        "" => (None, false),
        "never" => (None, true),
        d => {
            let days: u64 = d.parse().map_err(|_| {
                UiError::BadRequest(format!(
                    "expires in {d:?} days is not a number of days; give a whole number or choose never"
                ))
            })?;
            (Some(days.saturating_mul(86_400)), false)
        }
    };
    let req = NewTokenRequest {
        name: f.name,
        user: Some(f.user.trim().to_owned()).filter(|u| !u.is_empty()),
        read_only: !f.read_only.is_empty(),
        expires_in_secs,
        never_expires,
    };
    let made = operators::create_token(&st, &session.principal, req).await?;
    Ok(Page(SecretPage {
        chrome: session.chrome("admin"),
        what: "API token",
        name: made.info.name.clone(),
        secret: made.token.expose().to_owned(),
        hint: "Use it as `Authorization: Bearer TOKEN`, or with `patchctl --token`.",
    })
    .into_response())
}

fn uuid_of(what: &str, id: &str) -> Result<Uuid, UiError> {
    Uuid::parse_str(id)
        .map_err(|_| UiError::BadRequest(format!("{id:?} is not {what} id (a UUID)")))
}

/// `POST /ui/admin/tokens/{id}/revoke`.
pub async fn revoke_token(
    State(st): State<AppState>,
    session: UiSession,
    Path(id): Path<String>,
) -> Result<Response, UiError> {
    let id = uuid_of("a token", &id)?;
    operators::revoke_token(&st, &session.principal, id).await?;
    Ok(back("token-revoked"))
}

/// The create-key form.
#[derive(Debug, Deserialize)]
pub struct NewKeyForm {
    /// Its name.
    #[serde(default)]
    pub name: String,
    /// Days until it expires (empty: never).
    #[serde(default)]
    pub expires_days: String,
    /// Most hosts it may enroll (empty: no limit).
    #[serde(default)]
    pub max_uses: String,
}

fn number(what: &str, s: &str) -> Result<Option<u64>, UiError> {
    match s.trim() {
        "" => Ok(None),
        v => v.parse().map(Some).map_err(|_| {
            UiError::BadRequest(format!(
                "{what} {v:?} is not a whole number; give one or leave it empty"
            ))
        }),
    }
}

/// `POST /ui/admin/keys`: the key is on the answer page, this once.
pub async fn create_key(
    State(st): State<AppState>,
    session: UiSession,
    Form(f): Form<NewKeyForm>,
) -> Result<Response, UiError> {
    let req = NewEnrollmentKey {
        name: f.name,
        expires_in_secs: number("expires in days", &f.expires_days)?
            .map(|d| d.saturating_mul(86_400)),
        max_uses: number("maximum of uses", &f.max_uses)?,
    };
    let p = &session.principal;
    let (made, details) = keys::create(&st, p.org_id, &p.label(), req).await?;
    Ok((Extension(details), key_page(&session, made)).into_response())
}

fn key_page(session: &UiSession, made: patchctl_proto::trust::CreatedEnrollmentKey) -> Response {
    Page(SecretPage {
        chrome: session.chrome("admin"),
        what: "enrollment key",
        name: made.info.name.clone(),
        secret: made.key.expose().to_owned(),
        hint: "Give it to `patchctl-agent enroll --key` on the hosts to enroll.",
    })
    .into_response()
}

/// `POST /ui/admin/keys/{id}/revoke`.
pub async fn revoke_key(
    State(st): State<AppState>,
    session: UiSession,
    Path(id): Path<String>,
) -> Result<Response, UiError> {
    let id = uuid_of("an enrollment key", &id)?;
    let p = &session.principal;
    let (_, details) = keys::revoke(&st, p.org_id, &p.label(), id).await?;
    Ok((Extension(details), back("key-revoked")).into_response())
}

/// The rotate-key form.
#[derive(Debug, Deserialize)]
pub struct RotateForm {
    /// Hours the old key keeps enrolling (empty: it stops at once).
    #[serde(default)]
    pub grace_hours: String,
}

/// `POST /ui/admin/keys/{id}/rotate`: the new key is on the answer page, this once.
pub async fn rotate_key(
    State(st): State<AppState>,
    session: UiSession,
    Path(id): Path<String>,
    Form(f): Form<RotateForm>,
) -> Result<Response, UiError> {
    let id = uuid_of("an enrollment key", &id)?;
    let grace_secs = number("grace in hours", &f.grace_hours)?
        .unwrap_or(0)
        .saturating_mul(3_600);
    let p = &session.principal;
    let made = keys::rotate(
        &st,
        p.org_id,
        &p.label(),
        id,
        RotateEnrollmentKey { grace_secs },
    )
    .await?;
    let (made, details) = made;
    Ok((Extension(details), key_page(&session, made)).into_response())
}
