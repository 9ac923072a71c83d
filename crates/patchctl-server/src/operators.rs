//! Users and API tokens: the service functions the operator API (`api/users.rs`,
//! `api/tokens.rs`) and the dashboard both call, so that both check the same rules.
//!
//! Every function takes the caller's [`Principal`] and checks it here, not only in the
//! route table: managing users and other people's tokens takes [`Need::Administer`];
//! making, demoting, disabling an owner, or touching an owner's password or tokens,
//! takes [`Need::Own`]; the last active owner of an organisation can be neither
//! demoted nor disabled. Anyone may list, create and revoke their own tokens and change
//! their own password.
//!
//! A token's secret is shown once, in [`CreatedToken`]; only its SHA-256 is stored. A
//! password is stored only as an Argon2id hash ([`crate::passwords`]), computed off the
//! async workers. No function logs a password or a token.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use patchctl_proto::Secret;
use patchctl_proto::access::{
    CreatedToken, CredentialKind, DEFAULT_TOKEN_LIFETIME_SECS, Need, NewTokenRequest,
    NewUserRequest, OperatorIdentity, Role, TokenInfo, TokenState, UserInfo,
};
use patchctl_storage::{ApiToken, NewApiToken, NewUser, User};
use uuid::Uuid;

use crate::AppState;
use crate::access::{Actor, Principal};
use crate::auth::{TOKEN_PREFIX, hash_secret, new_secret};
use crate::error::ApiError;
use crate::passwords;

/// Longest token name, in characters.
const MAX_TOKEN_NAME_CHARS: usize = 100;
/// Longest username, in characters.
const MAX_USERNAME_CHARS: usize = 64;
/// Longest token lifetime: ten years.
const MAX_TOKEN_LIFETIME_SECS: u64 = 10 * 366 * 86_400;

/// The operator's view of a user.
pub fn user_info(u: &User) -> UserInfo {
    UserInfo {
        id: u.id,
        username: u.username.clone(),
        role: u.role,
        created_at: u.created_at,
        disabled_at: u.disabled_at,
    }
}

/// Where a token stands at `now`: revoked, else expired, else active.
pub fn token_state(t: &ApiToken, now: DateTime<Utc>) -> TokenState {
    if t.revoked_at.is_some() {
        TokenState::Revoked
    } else if t.expires_at.is_some_and(|e| e <= now) {
        TokenState::Expired
    } else {
        TokenState::Active
    }
}

/// The operator's view of a token at `now` (never the token itself).
pub fn token_info(t: &ApiToken, username: Option<String>, now: DateTime<Utc>) -> TokenInfo {
    TokenInfo {
        id: t.id,
        name: t.name.clone(),
        user_id: t.user_id,
        username,
        read_only: t.read_only,
        state: token_state(t, now),
        created_at: t.created_at,
        expires_at: t.expires_at,
        last_used_at: t.last_used_at,
        revoked_at: t.revoked_at,
    }
}

/// The user the caller is, if any (the organisation token is nobody).
pub fn caller_user_id(by: &Principal) -> Option<Uuid> {
    match &by.actor {
        Actor::OrgToken { .. } => None,
        Actor::Token { user_id, .. } | Actor::Session { user_id, .. } => Some(*user_id),
    }
}

/// Checks a username: 1 to 64 characters of `a-z 0-9 . _ -`, starting with a letter or
/// a digit (so that it is never mistaken for an option or a path).
pub fn check_username(name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.chars().count() <= MAX_USERNAME_CHARS
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c));
    if ok && Uuid::parse_str(name).is_err() {
        return Ok(());
    }
    Err(ApiError::bad_request(format!(
        "{name:?} is not a valid username: use 1 to {MAX_USERNAME_CHARS} characters of \
         a-z, 0-9, '.', '_' and '-', starting with a letter or digit (and not a UUID)"
    )))
}

fn no_user(user: &str) -> ApiError {
    ApiError::not_found(format!(
        "no user {user:?} in your organisation; `patchctl users list` shows them"
    ))
}

/// The user `user` names (a username or an id) in the caller's organisation.
pub async fn find_user(st: &AppState, org_id: Uuid, user: &str) -> Result<User, ApiError> {
    if let Ok(id) = Uuid::parse_str(user) {
        if let Some(u) = st.store.user(org_id, id).await? {
            return Ok(u);
        }
    }
    st.store
        .user_by_name(org_id, user)
        .await?
        .ok_or_else(|| no_user(user))
}

/// Refuses to demote or disable `u` when it is the organisation's last active owner.
async fn keep_an_owner(st: &AppState, u: &User, what: &str) -> Result<(), ApiError> {
    if u.role == Role::Owner
        && u.disabled_at.is_none()
        && st.store.count_active_owners(u.org_id).await? <= 1
    {
        return Err(last_owner(u, what));
    }
    Ok(())
}

/// 409: `u` is the last active owner and cannot be `what`.
fn last_owner(u: &User, what: &str) -> ApiError {
    ApiError::conflict(format!(
        "{} is the last active owner of the organisation and cannot be {what}; \
         make another user owner first (`patchctl users set-role USER owner`)",
        u.username
    ))
}

/// Hashes a new password after checking it, off the async workers (Argon2id takes
/// tens of milliseconds by design).
async fn new_password_hash(password: &Secret) -> Result<String, ApiError> {
    passwords::check_new_password(password.expose())
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let pw = password.clone();
    tokio::task::spawn_blocking(move || passwords::hash_password(pw.expose()))
        .await
        .map_err(|_| internal("the password hashing task failed"))?
        .map_err(|e| {
            tracing::error!(error = %e, "password hashing failed");
            internal("the password could not be hashed")
        })
}

fn internal(why: &str) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
        format!("{why}; the platform logged it"),
    )
}

/// Every user of the caller's organisation (needs Administer).
pub async fn list_users(st: &AppState, by: &Principal) -> Result<Vec<UserInfo>, ApiError> {
    by.require(Need::Administer)?;
    let users = st.store.list_users(by.org_id).await?;
    Ok(users.iter().map(user_info).collect())
}

/// One user: the caller themselves, or anyone for an administrator.
pub async fn show_user(st: &AppState, by: &Principal, user: &str) -> Result<UserInfo, ApiError> {
    let u = find_user(st, by.org_id, user).await?;
    if caller_user_id(by) != Some(u.id) {
        by.require(Need::Administer)?;
    }
    Ok(user_info(&u))
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
    check_username(&req.username)?;
    let password_hash = new_password_hash(&req.password).await?;
    let u = st
        .store
        .create_user(NewUser {
            org_id: by.org_id,
            username: req.username.clone(),
            password_hash,
            role: req.role,
            now: Utc::now(),
        })
        .await
        .map_err(|e| match e {
            patchctl_storage::StorageError::Conflict(_) => ApiError::conflict(format!(
                "the username {:?} is taken (usernames are unique on the platform); choose another",
                req.username
            )),
            other => other.into(),
        })?;
    tracing::info!(target: "audit", event = "user.created", org_id = %by.org_id,
        user_id = %u.id, username = %u.username, role = %u.role, actor = %by.label(), "user created");
    Ok(user_info(&u))
}

/// Changes a user's role (needs Administer; to or from owner needs Own; never the last
/// active owner's).
pub async fn set_role(
    st: &AppState,
    by: &Principal,
    user: &str,
    role: Role,
) -> Result<UserInfo, ApiError> {
    by.require(Need::Administer)?;
    let u = find_user(st, by.org_id, user).await?;
    if u.role == Role::Owner || role == Role::Owner {
        by.require(Need::Own)?;
    }
    if u.role == role {
        return Ok(user_info(&u));
    }
    if role != Role::Owner {
        keep_an_owner(st, &u, "demoted").await?;
    }
    if !st.store.set_user_role(by.org_id, u.id, role).await? {
        // Gone, or another owner was demoted or disabled since the check above.
        find_user(st, by.org_id, &u.id.to_string()).await?;
        return Err(last_owner(&u, "demoted"));
    }
    tracing::info!(target: "audit", event = "user.role_changed", org_id = %by.org_id,
        user_id = %u.id, username = %u.username, from = %u.role, to = %role, actor = %by.label(),
        "user's role changed");
    let u = find_user(st, by.org_id, &u.id.to_string()).await?;
    Ok(user_info(&u))
}

/// Disables a user: no login, no token works, sessions end (needs Administer; an owner
/// needs Own; never the last active owner). Disabling a disabled user changes nothing.
pub async fn disable_user(st: &AppState, by: &Principal, user: &str) -> Result<UserInfo, ApiError> {
    by.require(Need::Administer)?;
    let u = find_user(st, by.org_id, user).await?;
    if u.role == Role::Owner {
        by.require(Need::Own)?;
    }
    if u.disabled_at.is_some() {
        return Ok(user_info(&u));
    }
    keep_an_owner(st, &u, "disabled").await?;
    if !st.store.disable_user(by.org_id, u.id, Utc::now()).await? {
        // Gone, or another owner was demoted or disabled since the check above.
        find_user(st, by.org_id, &u.id.to_string()).await?;
        return Err(last_owner(&u, "disabled"));
    }
    tracing::info!(target: "audit", event = "user.disabled", org_id = %by.org_id,
        user_id = %u.id, username = %u.username, actor = %by.label(), "user disabled");
    let u = find_user(st, by.org_id, &u.id.to_string()).await?;
    Ok(user_info(&u))
}

/// Sets a user's password: one's own, or (needs Administer; an owner's needs Own)
/// someone else's.
pub async fn set_password(
    st: &AppState,
    by: &Principal,
    user: &str,
    password: &Secret,
) -> Result<UserInfo, ApiError> {
    let u = find_user(st, by.org_id, user).await?;
    if caller_user_id(by) != Some(u.id) {
        by.require(Need::Administer)?;
        if u.role == Role::Owner {
            by.require(Need::Own)?;
        }
    }
    let hash = new_password_hash(password).await?;
    if !st
        .store
        .set_user_password(by.org_id, u.id, &hash, Utc::now())
        .await?
    {
        return Err(no_user(user));
    }
    tracing::info!(target: "audit", event = "user.password_changed", org_id = %by.org_id,
        user_id = %u.id, username = %u.username, actor = %by.label(), "user's password changed");
    Ok(user_info(&u))
}

/// Usernames by id, for token listings.
async fn usernames(st: &AppState, org_id: Uuid) -> Result<HashMap<Uuid, String>, ApiError> {
    Ok(st
        .store
        .list_users(org_id)
        .await?
        .into_iter()
        .map(|u| (u.id, u.username))
        .collect())
}

/// Tokens: the caller's own (no `user`, or `user` is the caller), every token of the
/// organisation (no `user`, caller with Administer) or one user's (needs Administer).
pub async fn list_tokens(
    st: &AppState,
    by: &Principal,
    user: Option<&str>,
) -> Result<Vec<TokenInfo>, ApiError> {
    let me = caller_user_id(by);
    let filter = match user {
        Some(name) => {
            let u = find_user(st, by.org_id, name).await?;
            if me != Some(u.id) {
                by.require(Need::Administer)?;
            }
            Some(u.id)
        }
        None if by.may(Need::Administer) => None,
        None => me,
    };
    let tokens = st.store.list_api_tokens(by.org_id, filter).await?;
    let names = usernames(st, by.org_id).await?;
    let now = Utc::now();
    Ok(tokens
        .iter()
        .map(|t| token_info(t, t.user_id.and_then(|id| names.get(&id).cloned()), now))
        .collect())
}

/// The lifetime a token request asks for: none for never, else a positive number of
/// seconds up to ten years (default 90 days).
fn token_expiry(
    req: &NewTokenRequest,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, ApiError> {
    match (req.never_expires, req.expires_in_secs) {
        (true, Some(_)) => Err(ApiError::bad_request(
            "give either never_expires or expires_in_secs, not both",
        )),
        (true, None) => Ok(None),
        (false, Some(0)) => Err(ApiError::bad_request(
            "expires_in_secs is 0; give a positive number of seconds, or never_expires: true",
        )),
        (false, Some(s)) if s > MAX_TOKEN_LIFETIME_SECS => Err(ApiError::bad_request(format!(
            "expires_in_secs is {s}; give at most {MAX_TOKEN_LIFETIME_SECS} (ten years), or never_expires: true"
        ))),
        (false, s) => Ok(Some(
            now + Duration::seconds(s.unwrap_or(DEFAULT_TOKEN_LIFETIME_SECS) as i64),
        )),
    }
}

/// Creates a token for the caller, or for another user (needs Administer; an owner's
/// needs Own). The token is in the answer this once.
pub async fn create_token(
    st: &AppState,
    by: &Principal,
    req: NewTokenRequest,
) -> Result<CreatedToken, ApiError> {
    let name = req.name.trim().to_owned();
    let chars = name.chars().count();
    if chars == 0 || chars > MAX_TOKEN_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(ApiError::bad_request(format!(
            "a token's name is 1 to {MAX_TOKEN_NAME_CHARS} characters without control characters; got {chars}"
        )));
    }
    let now = Utc::now();
    let expires_at = token_expiry(&req, now)?;
    let me = caller_user_id(by);
    let target = match (req.user.as_deref(), me) {
        (Some(u), _) => find_user(st, by.org_id, u).await?,
        (None, Some(id)) => find_user(st, by.org_id, &id.to_string()).await?,
        (None, None) => {
            return Err(ApiError::bad_request(
                "the organisation token belongs to no user: name the user the new token is for (\"user\": NAME, or --user)",
            ));
        }
    };
    if me != Some(target.id) {
        by.require(Need::Administer)?;
        if target.role == Role::Owner {
            by.require(Need::Own)?;
        }
    }
    if target.disabled_at.is_some() {
        return Err(ApiError::conflict(format!(
            "user {} is disabled; a disabled user's tokens do not work",
            target.username
        )));
    }
    let secret = new_secret(TOKEN_PREFIX);
    let t = st
        .store
        .insert_api_token(NewApiToken {
            org_id: by.org_id,
            user_id: Some(target.id),
            name,
            token_hash: hash_secret(secret.expose()),
            read_only: req.read_only,
            expires_at,
            now,
        })
        .await?;
    tracing::info!(target: "audit", event = "api_token.created", org_id = %by.org_id,
        token_id = %t.id, user_id = %target.id, read_only = t.read_only,
        expires_at = ?t.expires_at, actor = %by.label(), "api token created");
    Ok(CreatedToken {
        info: token_info(&t, Some(target.username), now),
        token: secret,
    })
}

/// Revokes a token: one's own, or (needs Administer) another user's; an owner's token
/// and the organisation token need Own. Revoking a revoked token changes nothing.
pub async fn revoke_token(st: &AppState, by: &Principal, id: Uuid) -> Result<TokenInfo, ApiError> {
    let not_found = || {
        ApiError::not_found(format!(
            "no API token {id} in your organisation; `patchctl tokens list` shows them"
        ))
    };
    let tokens = st.store.list_api_tokens(by.org_id, None).await?;
    let t = tokens.iter().find(|t| t.id == id).ok_or_else(not_found)?;
    let owner = match t.user_id {
        Some(uid) => st.store.user(by.org_id, uid).await?,
        None => None,
    };
    let me = caller_user_id(by);
    if t.user_id.is_none() || me != t.user_id {
        // Someone else's token (the organisation token is no one's: an owner's).
        if !by.may(Need::Administer) {
            // The same answer as for a token that does not exist: one who may not
            // administer learns nothing about other people's tokens.
            return Err(not_found());
        }
        if t.user_id.is_none() || owner.as_ref().is_some_and(|u| u.role == Role::Owner) {
            by.require(Need::Own)?;
        }
    }
    let now = Utc::now();
    st.store.revoke_api_token(by.org_id, id, now).await?;
    tracing::info!(target: "audit", event = "api_token.revoked", org_id = %by.org_id,
        token_id = %id, actor = %by.label(), "api token revoked");
    let t = st
        .store
        .list_api_tokens(by.org_id, None)
        .await?
        .into_iter()
        .find(|t| t.id == id)
        .ok_or_else(not_found)?;
    Ok(token_info(&t, owner.map(|u| u.username), now))
}

/// Who the caller is: organisation, role, user, credential and its scope.
pub async fn whoami(st: &AppState, by: &Principal) -> Result<OperatorIdentity, ApiError> {
    let user = match caller_user_id(by) {
        Some(id) => st.store.user(by.org_id, id).await?.map(|u| user_info(&u)),
        None => None,
    };
    let (via, token_id) = match &by.actor {
        Actor::OrgToken { id, .. } => (CredentialKind::OrgToken, Some(*id)),
        Actor::Token { id, .. } => (CredentialKind::Token, Some(*id)),
        Actor::Session { .. } => (CredentialKind::Session, None),
    };
    let token = match token_id {
        Some(id) => st
            .store
            .list_api_tokens(by.org_id, None)
            .await?
            .into_iter()
            .find(|t| t.id == id),
        None => None,
    };
    Ok(OperatorIdentity {
        org_id: by.org_id,
        role: by.role,
        user,
        via,
        token_id,
        token_name: token.as_ref().map(|t| t.name.clone()),
        read_only: by.read_only,
        token_expires_at: token.and_then(|t| t.expires_at),
        label: by.label(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_plain_and_never_uuids() {
        for ok in ["alice", "a", "ops.bob", "ci_bot-2", "7eleven"] {
            assert!(check_username(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "Alice",
            "-rf",
            ".hidden",
            "a b",
            "a/b",
            "é",
            &"x".repeat(65),
            "8a1c6b0e-6a1f-4b5e-9a59-2f0a5cbe0f44",
        ] {
            let e = check_username(bad).unwrap_err();
            assert!(e.message.contains("valid username"), "{bad}: {}", e.message);
        }
    }

    #[test]
    fn token_expiry_defaults_to_90_days_and_allows_never() {
        let now = Utc::now();
        let req = |secs: Option<u64>, never: bool| NewTokenRequest {
            name: "t".into(),
            user: None,
            read_only: false,
            expires_in_secs: secs,
            never_expires: never,
        };
        assert_eq!(
            token_expiry(&req(None, false), now).unwrap(),
            Some(now + Duration::days(90))
        );
        assert_eq!(token_expiry(&req(None, true), now).unwrap(), None);
        assert_eq!(
            token_expiry(&req(Some(60), false), now).unwrap(),
            Some(now + Duration::seconds(60))
        );
        assert!(token_expiry(&req(Some(60), true), now).is_err());
        assert!(token_expiry(&req(Some(0), false), now).is_err());
        assert!(token_expiry(&req(Some(u64::MAX), false), now).is_err());
    }
}
