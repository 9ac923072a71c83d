//! The enrollment keys of the operator's organisation: list, create (with an expiry
//! and a maximum of uses), revoke and rotate. A key is shown once, when it is created;
//! only its hash is stored. A key's state is derived at answer time.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Duration, Utc};
use patchctl_proto::trust::{
    CreatedEnrollmentKey, EnrollmentKeyInfo, NewEnrollmentKey, RotateEnrollmentKey,
};
use patchctl_storage::{EnrollmentKey, KeyRotation};
use uuid::Uuid;

use crate::AppState;
use crate::access::OperatorAuth;
use crate::auth::{ENROLLMENT_KEY_PREFIX, hash_secret, new_secret};
use crate::error::{ApiError, ApiJson};

/// Longest key name, in characters.
const MAX_NAME_CHARS: usize = 100;
/// Longest expiry or grace: ten years.
const MAX_SECS: u64 = 10 * 366 * 86_400;

/// The operator's view of a key at `now`.
pub fn info(k: &EnrollmentKey, now: DateTime<Utc>) -> EnrollmentKeyInfo {
    EnrollmentKeyInfo {
        id: k.id,
        name: k.name.clone(),
        state: k.state(now),
        created_at: k.created_at,
        expires_at: k.expires_at,
        max_uses: k.max_uses,
        uses: k.uses,
        revoked_at: k.revoked_at,
        rotated_from: k.rotated_from,
    }
}

fn key_id(id: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id).map_err(|_| {
        ApiError::bad_request(format!(
            "{id:?} is not an enrollment key id (a UUID); `patchctl keys list` shows them"
        ))
    })
}

fn no_key(id: Uuid) -> ApiError {
    ApiError::not_found(format!(
        "no enrollment key {id}; `patchctl keys list` shows the keys you can see"
    ))
}

/// Seconds as a duration, within [`MAX_SECS`].
fn secs(what: &str, secs: u64) -> Result<Duration, ApiError> {
    if secs > MAX_SECS {
        return Err(ApiError::bad_request(format!(
            "{what} is {secs} s; give at most {MAX_SECS} s (ten years)"
        )));
    }
    Ok(Duration::seconds(secs as i64))
}

/// The body of a rotation: nothing (or `null`) for the defaults, else a
/// [`RotateEnrollmentKey`] without unknown fields (a misspelt `grace_secs` must not
/// end the old key at once).
fn rotation_request(body: &[u8]) -> Result<RotateEnrollmentKey, ApiError> {
    let bad = |why: String| {
        ApiError::bad_request(format!(
            "the body is not a rotation ({why}); send {{\"grace_secs\": SECONDS}} or nothing"
        ))
    };
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(RotateEnrollmentKey::default());
    }
    let v: serde_json::Value = serde_json::from_slice(body).map_err(|e| bad(e.to_string()))?;
    match &v {
        serde_json::Value::Null => return Ok(RotateEnrollmentKey::default()),
        serde_json::Value::Object(o) => {
            if let Some(k) = o.keys().find(|k| k.as_str() != "grace_secs") {
                return Err(bad(format!("unknown field {k:?}")));
            }
        }
        _ => return Err(bad("expected an object".to_owned())),
    }
    serde_json::from_value(v).map_err(|e| bad(e.to_string()))
}

/// `GET /api/v1/enrollment-keys`.
pub async fn list_keys(
    State(st): State<AppState>,
    op: OperatorAuth,
) -> Result<Json<Vec<EnrollmentKeyInfo>>, ApiError> {
    let now = Utc::now();
    let keys = st.store.list_enrollment_keys(op.org_id).await?;
    Ok(Json(keys.iter().map(|k| info(k, now)).collect()))
}

/// `POST /api/v1/enrollment-keys`: a new key, shown this once.
pub async fn create_key(
    State(st): State<AppState>,
    op: OperatorAuth,
    ApiJson(req): ApiJson<NewEnrollmentKey>,
) -> Result<(StatusCode, Json<CreatedEnrollmentKey>), ApiError> {
    let created = create(&st, op.org_id, &op.actor(), req).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Creates a key of `org_id` for `actor` (named in the log): what the API and the
/// dashboard's form both do. The key is in the answer this once.
pub async fn create(
    st: &AppState,
    org_id: Uuid,
    actor: &str,
    req: NewEnrollmentKey,
) -> Result<CreatedEnrollmentKey, ApiError> {
    let name = req.name.trim();
    let chars = name.chars().count();
    if chars == 0 || chars > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(ApiError::bad_request(format!(
            "a key's name is 1 to {MAX_NAME_CHARS} characters without control characters; got {chars}"
        )));
    }
    let now = Utc::now();
    let expires_at = match req.expires_in_secs {
        Some(0) => {
            return Err(ApiError::bad_request(
                "expires_in_secs is 0; give a positive number of seconds, or leave it out for a key that does not expire",
            ));
        }
        Some(s) => Some(now + secs("expires_in_secs", s)?),
        None => None,
    };
    match req.max_uses {
        Some(0) => {
            return Err(ApiError::bad_request(
                "max_uses is 0; give at least 1, or leave it out for unlimited uses",
            ));
        }
        Some(m) if i64::try_from(m).is_err() => {
            return Err(ApiError::bad_request(format!(
                "max_uses is {m}; give at most {}",
                i64::MAX
            )));
        }
        _ => {}
    }
    let key = new_secret(ENROLLMENT_KEY_PREFIX);
    let k = st
        .store
        .insert_enrollment_key(patchctl_storage::NewEnrollmentKey {
            org_id,
            name: name.to_owned(),
            key_hash: hash_secret(key.expose()),
            expires_at,
            max_uses: req.max_uses,
            now,
        })
        .await?;
    tracing::info!(
        target: "audit",
        event = "enrollment_key.created",
        org_id = %org_id,
        key_id = %k.id,
        actor = %actor,
        name = %k.name,
        expires_at = ?k.expires_at,
        max_uses = ?k.max_uses,
        "enrollment key created"
    );
    Ok(CreatedEnrollmentKey {
        info: info(&k, now),
        key,
    })
}

/// `POST /api/v1/enrollment-keys/{id}/revoke`: the key enrolls nothing any more (hosts
/// it enrolled stay).
pub async fn revoke_key(
    State(st): State<AppState>,
    op: OperatorAuth,
    Path(id): Path<String>,
) -> Result<Json<EnrollmentKeyInfo>, ApiError> {
    let id = key_id(&id)?;
    revoke(&st, op.org_id, &op.actor(), id).await.map(Json)
}

/// Revokes key `id` of `org_id` for `actor`: what the API and the dashboard's form
/// both do.
pub async fn revoke(
    st: &AppState,
    org_id: Uuid,
    actor: &str,
    id: Uuid,
) -> Result<EnrollmentKeyInfo, ApiError> {
    let now = Utc::now();
    if !st.store.revoke_enrollment_key(org_id, id, now).await? {
        return Err(no_key(id));
    }
    let k = st
        .store
        .enrollment_key(org_id, id)
        .await?
        .ok_or_else(|| no_key(id))?;
    tracing::info!(
        target: "audit",
        event = "enrollment_key.revoked",
        org_id = %org_id,
        key_id = %id,
        actor = %actor,
        "enrollment key revoked"
    );
    Ok(info(&k, now))
}

/// `POST /api/v1/enrollment-keys/{id}/rotate` (body [`RotateEnrollmentKey`], optional):
/// a new key with the old one's name and limits; the old one stops enrolling after the
/// grace.
pub async fn rotate_key(
    State(st): State<AppState>,
    op: OperatorAuth,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<CreatedEnrollmentKey>), ApiError> {
    let id = key_id(&id)?;
    let req = rotation_request(&body)?;
    let created = rotate(&st, op.org_id, &op.actor(), id, req).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Rotates key `id` of `org_id` for `actor`: what the API and the dashboard's form both
/// do. The new key is in the answer this once.
pub async fn rotate(
    st: &AppState,
    org_id: Uuid,
    actor: &str,
    id: Uuid,
    req: RotateEnrollmentKey,
) -> Result<CreatedEnrollmentKey, ApiError> {
    let now = Utc::now();
    let grace_until = now + secs("grace_secs", req.grace_secs)?;
    let key = new_secret(ENROLLMENT_KEY_PREFIX);
    let rotation = st
        .store
        .rotate_enrollment_key(org_id, id, &hash_secret(key.expose()), grace_until, now)
        .await?;
    let (old, new) = match rotation {
        KeyRotation::Rotated { old, new } => (old, new),
        KeyRotation::NotFound => return Err(no_key(id)),
        KeyRotation::Revoked(_) => {
            return Err(ApiError::conflict(format!(
                "enrollment key {id} is revoked; a revoked key is not rotated: create a new one with `patchctl keys create`"
            )));
        }
    };
    tracing::info!(
        target: "audit",
        event = "enrollment_key.rotated",
        org_id = %org_id,
        key_id = %old.id,
        new_key_id = %new.id,
        actor = %actor,
        old_expires_at = ?old.expires_at,
        "enrollment key rotated"
    );
    Ok(CreatedEnrollmentKey {
        info: info(&new, now),
        key,
    })
}
