//! The enrollment keys of the operator's organisation: list, create (with an expiry
//! and a maximum of uses), revoke and rotate. A key is shown once, when it is created;
//! only its hash is stored. A key's state is derived at answer time.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use chrono::{DateTime, Duration, Utc};
use patchctl_proto::trust::{
    CreatedEnrollmentKey, EnrollmentKeyInfo, NewEnrollmentKey, RotateEnrollmentKey,
};
use patchctl_storage::{EnrollmentKey, KeyRotation};
use uuid::Uuid;

use crate::AppState;
use crate::access::OperatorAuth;
use crate::audit::AuditDetails;
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
#[utoipa::path(
    get,
    path = "/api/v1/enrollment-keys",
    tag = "enrollment-keys",
    responses(
        (status = 200, description = "The enrollment keys (never the keys themselves)", body = Vec<EnrollmentKeyInfo>),
        (status = 401, description = "unauthorized: no valid bearer token", body = patchctl_proto::api::ApiErrorBody),
        (status = 403, description = "forbidden: the token's role may not do this (or no_access_rule)", body = patchctl_proto::api::ApiErrorBody),
        (status = 503, description = "unavailable: the database (or the vulnerability correlation) cannot answer right now; retry", body = patchctl_proto::api::ApiErrorBody)
    ),
)]
pub async fn list_keys(
    State(st): State<AppState>,
    op: OperatorAuth,
) -> Result<Json<Vec<EnrollmentKeyInfo>>, ApiError> {
    let now = Utc::now();
    let keys = st.store.list_enrollment_keys(op.org_id).await?;
    Ok(Json(keys.iter().map(|k| info(k, now)).collect()))
}

/// `POST /api/v1/enrollment-keys`: a new key, shown this once.
#[utoipa::path(
    post,
    path = "/api/v1/enrollment-keys",
    tag = "enrollment-keys",
    request_body = NewEnrollmentKey,
    responses(
        (status = 201, description = "The new key, shown this once", body = CreatedEnrollmentKey),
        (status = 400, description = "bad_request: the request is malformed (parameters or body); the message says which", body = patchctl_proto::api::ApiErrorBody),
        (status = 401, description = "unauthorized: no valid bearer token", body = patchctl_proto::api::ApiErrorBody),
        (status = 403, description = "forbidden: the token's role may not do this (or no_access_rule)", body = patchctl_proto::api::ApiErrorBody),
        (status = 413, description = "too_large: the body is over the route's limit", body = patchctl_proto::api::ApiErrorBody),
        (status = 415, description = "unsupported_media_type: the body is not JSON (or an unknown Content-Encoding)", body = patchctl_proto::api::ApiErrorBody),
        (status = 503, description = "unavailable: the database (or the vulnerability correlation) cannot answer right now; retry", body = patchctl_proto::api::ApiErrorBody)
    ),
)]
pub async fn create_key(
    State(st): State<AppState>,
    op: OperatorAuth,
    ApiJson(req): ApiJson<NewEnrollmentKey>,
) -> Result<
    (
        StatusCode,
        Extension<AuditDetails>,
        Json<CreatedEnrollmentKey>,
    ),
    ApiError,
> {
    let (created, details) = create(&st, op.org_id, &op.actor(), req).await?;
    Ok((StatusCode::CREATED, Extension(details), Json(created)))
}

/// Creates a key of `org_id` for `actor` (named in the journal): what the API and the
/// dashboard's form both do, with what its audit entry says. The key is in the answer
/// this once (never in the details).
pub async fn create(
    st: &AppState,
    org_id: Uuid,
    actor: &str,
    req: NewEnrollmentKey,
) -> Result<(CreatedEnrollmentKey, AuditDetails), ApiError> {
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
    // The key itself never: only what names and limits it.
    let details = AuditDetails(serde_json::json!({
        "key_id": k.id,
        "name": k.name,
        "expires_at": k.expires_at,
        "max_uses": k.max_uses,
    }));
    Ok((
        CreatedEnrollmentKey {
            info: info(&k, now),
            key,
        },
        details,
    ))
}

/// `POST /api/v1/enrollment-keys/{id}/revoke`: the key enrolls nothing any more (hosts
/// it enrolled stay).
#[utoipa::path(
    post,
    path = "/api/v1/enrollment-keys/{id}/revoke",
    tag = "enrollment-keys",
    params(("id" = uuid::Uuid, Path, description = "Key id")),
    responses(
        (status = 200, description = "The key, revoked", body = EnrollmentKeyInfo),
        (status = 400, description = "bad_request: the request is malformed (parameters or body); the message says which", body = patchctl_proto::api::ApiErrorBody),
        (status = 401, description = "unauthorized: no valid bearer token", body = patchctl_proto::api::ApiErrorBody),
        (status = 403, description = "forbidden: the token's role may not do this (or no_access_rule)", body = patchctl_proto::api::ApiErrorBody),
        (status = 404, description = "not_found", body = patchctl_proto::api::ApiErrorBody),
        (status = 503, description = "unavailable: the database (or the vulnerability correlation) cannot answer right now; retry", body = patchctl_proto::api::ApiErrorBody)
    ),
)]
pub async fn revoke_key(
    State(st): State<AppState>,
    op: OperatorAuth,
    Path(id): Path<String>,
) -> Result<(Extension<AuditDetails>, Json<EnrollmentKeyInfo>), ApiError> {
    let id = key_id(&id)?;
    let (key, details) = revoke(&st, op.org_id, &op.actor(), id).await?;
    Ok((Extension(details), Json(key)))
}

/// Revokes key `id` of `org_id` for `actor`: what the API and the dashboard's form
/// both do, with what its audit entry says.
pub async fn revoke(
    st: &AppState,
    org_id: Uuid,
    actor: &str,
    id: Uuid,
) -> Result<(EnrollmentKeyInfo, AuditDetails), ApiError> {
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
    let details = AuditDetails(serde_json::json!({
        "key_id": k.id,
        "name": k.name,
        "revoked_at": k.revoked_at,
        "uses": k.uses,
    }));
    Ok((info(&k, now), details))
}

/// `POST /api/v1/enrollment-keys/{id}/rotate` (body [`RotateEnrollmentKey`], optional):
/// a new key with the old one's name and limits; the old one stops enrolling after the
/// grace.
#[utoipa::path(
    post,
    path = "/api/v1/enrollment-keys/{id}/rotate",
    tag = "enrollment-keys",
    params(("id" = uuid::Uuid, Path, description = "Key id")),
    request_body(content = Option<RotateEnrollmentKey>, description = "Optional; an empty body takes the defaults"),
    responses(
        (status = 201, description = "The new key, shown this once", body = CreatedEnrollmentKey),
        (status = 400, description = "bad_request: the request is malformed (parameters or body); the message says which", body = patchctl_proto::api::ApiErrorBody),
        (status = 401, description = "unauthorized: no valid bearer token", body = patchctl_proto::api::ApiErrorBody),
        (status = 403, description = "forbidden: the token's role may not do this (or no_access_rule)", body = patchctl_proto::api::ApiErrorBody),
        (status = 404, description = "not_found", body = patchctl_proto::api::ApiErrorBody),
        (status = 409, description = "conflict", body = patchctl_proto::api::ApiErrorBody),
        (status = 413, description = "too_large: the body is over the route's limit", body = patchctl_proto::api::ApiErrorBody),
        (status = 503, description = "unavailable: the database (or the vulnerability correlation) cannot answer right now; retry", body = patchctl_proto::api::ApiErrorBody)
    ),
)]
pub async fn rotate_key(
    State(st): State<AppState>,
    op: OperatorAuth,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<
    (
        StatusCode,
        Extension<AuditDetails>,
        Json<CreatedEnrollmentKey>,
    ),
    ApiError,
> {
    let id = key_id(&id)?;
    let req = rotation_request(&body)?;
    let (created, details) = rotate(&st, op.org_id, &op.actor(), id, req).await?;
    Ok((StatusCode::CREATED, Extension(details), Json(created)))
}

/// Rotates key `id` of `org_id` for `actor`: what the API and the dashboard's form both
/// do, with what its audit entry says. The new key is in the answer this once.
pub async fn rotate(
    st: &AppState,
    org_id: Uuid,
    actor: &str,
    id: Uuid,
    req: RotateEnrollmentKey,
) -> Result<(CreatedEnrollmentKey, AuditDetails), ApiError> {
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
    // The new key itself never: its id, and until when the old one still enrolls.
    let details = AuditDetails(serde_json::json!({
        "key_id": old.id,
        "name": old.name,
        "new_key_id": new.id,
        "grace_secs": req.grace_secs,
        "old_expires_at": old.expires_at,
    }));
    Ok((
        CreatedEnrollmentKey {
            info: info(&new, now),
            key,
        },
        details,
    ))
}
