//! STAND-IN for helper A's `crate::operators` (users and tokens) and its wire types in
//! `patchctl_proto::access`, with the same names and signatures, so that the
//! administration page builds before A's branch is merged. When it is: delete this
//! file, `pub mod ops;` in `ui/mod.rs`, and point the imports of `ui/admin.rs` at
//! `crate::operators` and `patchctl_proto::access`.

use chrono::{DateTime, Duration, Utc};
use patchctl_proto::Secret;
use patchctl_proto::access::{Need, Role};
use patchctl_storage::{ApiToken, NewApiToken, NewUser, User};
use uuid::Uuid;

use crate::AppState;
use crate::access::Principal;
use crate::auth::{TOKEN_PREFIX, hash_secret, new_secret};
use crate::error::ApiError;

/// A user as operators see it.
#[derive(Debug, Clone)]
pub struct UserInfo {
    /// Id.
    pub id: Uuid,
    /// Login name.
    pub username: String,
    /// Role.
    pub role: Role,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Disabled.
    pub disabled_at: Option<DateTime<Utc>>,
}

/// Where a token stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenState {
    /// Works.
    Active,
    /// Past its expiry.
    Expired,
    /// Revoked.
    Revoked,
}

impl TokenState {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenState::Active => "active",
            TokenState::Expired => "expired",
            TokenState::Revoked => "revoked",
        }
    }
}

/// A token as operators see it (never the token).
#[derive(Debug, Clone)]
pub struct TokenInfo {
    /// Id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// Its user's name (none: the organisation token).
    pub username: Option<String>,
    /// Read-only scope.
    pub read_only: bool,
    /// State now.
    pub state: TokenState,
    /// Expiry.
    pub expires_at: Option<DateTime<Utc>>,
    /// Last use.
    pub last_used_at: Option<DateTime<Utc>>,
}

/// A new user.
#[derive(Debug, Clone)]
pub struct NewUserRequest {
    /// Login name.
    pub username: String,
    /// Role.
    pub role: Role,
    /// Initial password.
    pub password: Secret,
}

/// A new token.
#[derive(Debug, Clone)]
pub struct NewTokenRequest {
    /// Name.
    pub name: String,
    /// Whose (none: the caller's).
    pub user: Option<String>,
    /// Read-only.
    pub read_only: bool,
    /// Lifetime (none: 90 days).
    pub expires_in_secs: Option<u64>,
    /// Never expires.
    pub never_expires: bool,
}

/// A token made, shown once.
#[derive(Debug, Clone)]
pub struct CreatedToken {
    /// Its record.
    pub info: TokenInfo,
    /// The token.
    pub token: Secret,
}

fn info(u: &User) -> UserInfo {
    UserInfo {
        id: u.id,
        username: u.username.clone(),
        role: u.role,
        created_at: u.created_at,
        disabled_at: u.disabled_at,
    }
}

fn token_info(t: &ApiToken, username: Option<String>, now: DateTime<Utc>) -> TokenInfo {
    let state = if t.revoked_at.is_some() {
        TokenState::Revoked
    } else if t.expires_at.is_some_and(|e| e <= now) {
        TokenState::Expired
    } else {
        TokenState::Active
    };
    TokenInfo {
        id: t.id,
        name: t.name.clone(),
        username,
        read_only: t.read_only,
        state,
        expires_at: t.expires_at,
        last_used_at: t.last_used_at,
    }
}

async fn find(st: &AppState, org: Uuid, user: &str) -> Result<User, ApiError> {
    let found = match Uuid::parse_str(user) {
        Ok(id) => st.store.user(org, id).await?,
        Err(_) => st.store.user_by_name(org, user).await?,
    };
    found.ok_or_else(|| ApiError::not_found(format!("no user {user:?} in your organisation")))
}

async fn keep_an_owner(st: &AppState, u: &User) -> Result<(), ApiError> {
    if u.role == Role::Owner
        && u.disabled_at.is_none()
        && st.store.count_active_owners(u.org_id).await? <= 1
    {
        return Err(ApiError::conflict(format!(
            "{} is the organisation's last owner; make another owner first",
            u.username
        )));
    }
    Ok(())
}

/// Every user (needs Administer).
pub async fn list_users(st: &AppState, by: &Principal) -> Result<Vec<UserInfo>, ApiError> {
    by.require(Need::Administer)?;
    Ok(st
        .store
        .list_users(by.org_id)
        .await?
        .iter()
        .map(info)
        .collect())
}

/// Creates a user (needs Administer; an owner needs Own).
pub async fn create_user(
    st: &AppState,
    by: &Principal,
    req: NewUserRequest,
) -> Result<UserInfo, ApiError> {
    by.require(Need::Administer)?;
    if req.role == Role::Owner {
        by.require(Need::Own)?;
    }
    crate::passwords::check_new_password(req.password.expose())
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let hash = crate::passwords::hash_password(req.password.expose())
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let u = st
        .store
        .create_user(NewUser {
            org_id: by.org_id,
            username: req.username,
            password_hash: hash,
            role: req.role,
            now: Utc::now(),
        })
        .await?;
    Ok(info(&u))
}

/// Changes a role (needs Administer; to or from owner needs Own).
pub async fn set_role(
    st: &AppState,
    by: &Principal,
    user: &str,
    role: Role,
) -> Result<UserInfo, ApiError> {
    by.require(Need::Administer)?;
    let u = find(st, by.org_id, user).await?;
    if u.role == Role::Owner || role == Role::Owner {
        by.require(Need::Own)?;
    }
    if role != Role::Owner {
        keep_an_owner(st, &u).await?;
    }
    st.store.set_user_role(by.org_id, u.id, role).await?;
    Ok(info(&find(st, by.org_id, &u.id.to_string()).await?))
}

/// Disables a user (needs Administer; an owner needs Own).
pub async fn disable_user(st: &AppState, by: &Principal, user: &str) -> Result<UserInfo, ApiError> {
    by.require(Need::Administer)?;
    let u = find(st, by.org_id, user).await?;
    if u.role == Role::Owner {
        by.require(Need::Own)?;
    }
    keep_an_owner(st, &u).await?;
    st.store.disable_user(by.org_id, u.id, Utc::now()).await?;
    Ok(info(&find(st, by.org_id, &u.id.to_string()).await?))
}

/// Every token of the organisation (needs Administer; `user` is not used here).
pub async fn list_tokens(
    st: &AppState,
    by: &Principal,
    _user: Option<&str>,
) -> Result<Vec<TokenInfo>, ApiError> {
    by.require(Need::Administer)?;
    let names: std::collections::HashMap<Uuid, String> = st
        .store
        .list_users(by.org_id)
        .await?
        .into_iter()
        .map(|u| (u.id, u.username))
        .collect();
    let now = Utc::now();
    Ok(st
        .store
        .list_api_tokens(by.org_id, None)
        .await?
        .iter()
        .map(|t| token_info(t, t.user_id.and_then(|u| names.get(&u).cloned()), now))
        .collect())
}

/// Creates a token for the caller or another user (needs Administer here).
pub async fn create_token(
    st: &AppState,
    by: &Principal,
    req: NewTokenRequest,
) -> Result<CreatedToken, ApiError> {
    by.require(Need::Administer)?;
    let name = req.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "a token's name is 1 to 100 characters without control characters",
        ));
    }
    let user = match &req.user {
        Some(u) => Some(find(st, by.org_id, u).await?),
        None => match &by.actor {
            crate::access::Actor::Session { user_id, .. }
            | crate::access::Actor::Token { user_id, .. } => {
                st.store.user(by.org_id, *user_id).await?
            }
            crate::access::Actor::OrgToken { .. } => None,
        },
    };
    if user.as_ref().is_some_and(|u| u.role == Role::Owner) {
        by.require(Need::Own)?;
    }
    let now = Utc::now();
    let expires_at = if req.never_expires {
        None
    } else {
        Some(
            now + Duration::seconds(
                req.expires_in_secs
                    .unwrap_or(90 * 86_400)
                    .min(10 * 366 * 86_400) as i64,
            ),
        )
    };
    let token = new_secret(TOKEN_PREFIX);
    let t = st
        .store
        .insert_api_token(NewApiToken {
            org_id: by.org_id,
            user_id: user.as_ref().map(|u| u.id),
            name,
            token_hash: hash_secret(token.expose()),
            read_only: req.read_only,
            expires_at,
            now,
        })
        .await?;
    Ok(CreatedToken {
        info: token_info(&t, user.map(|u| u.username), now),
        token,
    })
}

/// Revokes a token (needs Administer here).
pub async fn revoke_token(st: &AppState, by: &Principal, id: Uuid) -> Result<TokenInfo, ApiError> {
    by.require(Need::Administer)?;
    if !st.store.revoke_api_token(by.org_id, id, Utc::now()).await? {
        return Err(ApiError::not_found(format!(
            "no token {id} in your organisation"
        )));
    }
    let t = st
        .store
        .api_token(by.org_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no token {id}")))?;
    Ok(token_info(&t, None, Utc::now()))
}
