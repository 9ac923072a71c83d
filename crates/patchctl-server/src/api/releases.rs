//! Signed releases: publishing and listing them (operator), the organisation's agent
//! rollout (operator), the agent's download of a release it was offered (agent
//! credential), and the public downloads and install script.
//!
//! * `POST /api/v1/releases` ([`PublishRelease`], its own body limit
//!   [`MAX_PUBLISH_BODY_BYTES`]): 201 with the [`ReleaseInfo`], 200 when the same
//!   artifact was published before, 409 when another artifact holds the product,
//!   version and target, 400 for anything `crate::releases::check_publication` refuses.
//! * `GET /api/v1/releases`: every published release, newest first.
//! * `GET`/`PUT /api/v1/agent-rollout` ([`AgentRollout`]): the version the
//!   organisation's hosts should run, and the canary share.
//! * `GET /api/v1/agent/releases/{version}/{target}` (the [`ReleaseBundle`] of the
//!   agent) and `.../artifact` (its bytes).
//! * `GET /downloads/{product}/{version}/{target}` (`latest` for the highest version)
//!   and `GET /install.sh`, public: packages and binaries are not secret, and the
//!   install script runs before the host has any credential.
//!
//! Publications and rollout changes are audit events and clear the release cache the
//! heartbeat's offer uses.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use patchctl_proto::release::{
    AgentRollout, PRODUCT_AGENT, PublishRelease, ReleaseBundle, ReleaseInfo,
};
use patchctl_storage::{NewRelease, PutRelease};

use crate::AppState;
use crate::access::OperatorAuth;
use crate::auth::AgentAuth;
use crate::error::{ApiError, ApiJson};
use crate::releases::{
    PACKAGE_PRODUCTS, ReleaseError, check_publication, check_rollout, install_script, platform_url,
};

/// Largest `POST /api/v1/releases` body: a largest artifact in base64 and its bundle.
pub const MAX_PUBLISH_BODY_BYTES: usize = 96 * 1024 * 1024;

/// The fields a rollout `PUT` may name; anything else is refused rather than ignored.
const ROLLOUT_FIELDS: [&str; 2] = ["version", "canary_percent"];

/// `POST /api/v1/releases`.
pub async fn publish(
    State(st): State<AppState>,
    op: OperatorAuth,
    ApiJson(req): ApiJson<PublishRelease>,
) -> Result<(StatusCode, Json<ReleaseInfo>), ApiError> {
    let now = Utc::now();
    let (verified, artifact) = match check_publication(&req, now) {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(
                target: "audit",
                event = "release.refused",
                org_id = %op.org_id,
                actor = %op.actor(),
                reason = %e,
                "release refused"
            );
            return Err(e.into());
        }
    };
    let m = &verified.manifest;
    let release = NewRelease {
        product: m.product.clone(),
        version: m.version.clone(),
        target: m.target.clone(),
        channel: m.channel.clone(),
        sha256: m.sha256.clone(),
        expires: m.expires,
        bundle: req.bundle,
        artifact,
        published_at: now,
        published_by: op.actor(),
    };
    let (status, row) = match st.store.put_release(&release).await? {
        PutRelease::Created(row) => (StatusCode::CREATED, row),
        PutRelease::Unchanged(row) => (StatusCode::OK, row),
        PutRelease::Conflict(row) => {
            return Err(ReleaseError::Conflict {
                product: row.info.product,
                version: row.info.version,
                target: row.info.target,
                existing: row.info.sha256,
            }
            .into());
        }
    };
    st.releases.forget_published();
    tracing::info!(
        target: "audit",
        event = if status == StatusCode::CREATED { "release.published" } else { "release.republished" },
        org_id = %op.org_id,
        actor = %op.actor(),
        product = %row.info.product,
        version = %row.info.version,
        target_triple = %row.info.target,
        channel = %row.info.channel,
        sha256 = %row.info.sha256,
        size = row.info.size,
        signing_key = %verified.signing_key_id,
        "release published"
    );
    Ok((status, Json(row.info)))
}

/// `GET /api/v1/releases`: newest first.
pub async fn list_releases(
    State(st): State<AppState>,
    _op: OperatorAuth,
) -> Result<Json<Vec<ReleaseInfo>>, ApiError> {
    let rows = st.store.list_releases().await?;
    Ok(Json(rows.into_iter().map(|r| r.info).collect()))
}

/// `GET /api/v1/agent-rollout`.
pub async fn get_rollout(
    State(st): State<AppState>,
    op: OperatorAuth,
) -> Result<Json<AgentRollout>, ApiError> {
    Ok(Json(st.store.agent_rollout(op.org_id).await?.rollout))
}

/// `PUT /api/v1/agent-rollout`: replaces the rollout (`version: null` stops offering).
pub async fn put_rollout(
    State(st): State<AppState>,
    op: OperatorAuth,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> Result<Json<AgentRollout>, ApiError> {
    let Some(fields) = body.as_object() else {
        return Err(ApiError::bad_request(
            "expected a JSON object such as {\"version\": \"1.2.0\", \"canary_percent\": 10}",
        ));
    };
    if let Some(unknown) = fields
        .keys()
        .find(|k| !ROLLOUT_FIELDS.contains(&k.as_str()))
    {
        return Err(ApiError::bad_request(format!(
            "unknown rollout field {unknown:?}; the fields are: {}",
            ROLLOUT_FIELDS.join(", ")
        )));
    }
    let rollout: AgentRollout = serde_json::from_value(body).map_err(|e| {
        ApiError::bad_request(format!(
            "invalid rollout: {e}; give a version string (or null) and a canary_percent of 1 to 100 (or null)"
        ))
    })?;
    check_rollout(&rollout)?;
    if let Some(v) = &rollout.version {
        let published = st
            .store
            .list_releases()
            .await?
            .into_iter()
            .any(|r| r.info.product == PRODUCT_AGENT && &r.info.version == v);
        if !published {
            return Err(ReleaseError::NotPublished { version: v.clone() }.into());
        }
    }
    let before = st.store.agent_rollout(op.org_id).await?.rollout;
    if !st
        .store
        .set_agent_rollout(op.org_id, &rollout, &op.actor(), Utc::now())
        .await?
    {
        return Err(ApiError::not_found(
            "the organisation of this API token no longer exists",
        ));
    }
    st.releases.forget_rollout(op.org_id);
    tracing::info!(
        target: "audit",
        event = "agent_rollout.changed",
        org_id = %op.org_id,
        actor = %op.actor(),
        version_before = ?before.version,
        canary_percent_before = ?before.canary_percent,
        version = ?rollout.version,
        canary_percent = ?rollout.canary_percent,
        "agent rollout changed"
    );
    Ok(Json(rollout))
}

fn not_found(product: &str, version: &str, target: &str) -> ApiError {
    ReleaseError::NotFound {
        product: product.to_owned(),
        version: version.to_owned(),
        target: target.to_owned(),
    }
    .into()
}

/// Bytes as `application/octet-stream` with their length and SHA-256.
fn octets(bytes: Vec<u8>, sha256: Option<&str>) -> Response {
    let mut resp = bytes.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if let Some(s) = sha256.and_then(|s| HeaderValue::from_str(s).ok()) {
        h.insert("x-checksum-sha256", s);
    }
    resp
}

/// `GET /api/v1/agent/releases/{version}/{target}`: the agent's bundle.
pub async fn agent_bundle(
    State(st): State<AppState>,
    _agent: AgentAuth,
    Path((version, target)): Path<(String, String)>,
) -> Result<Json<ReleaseBundle>, ApiError> {
    st.store
        .release_bundle(PRODUCT_AGENT, &version, &target)
        .await?
        .map(Json)
        .ok_or_else(|| not_found(PRODUCT_AGENT, &version, &target))
}

/// `GET /api/v1/agent/releases/{version}/{target}/artifact`: the agent binary.
pub async fn agent_artifact(
    State(st): State<AppState>,
    _agent: AgentAuth,
    Path((version, target)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let bytes = st
        .store
        .release_artifact(PRODUCT_AGENT, &version, &target)
        .await?
        .ok_or_else(|| not_found(PRODUCT_AGENT, &version, &target))?;
    Ok(octets(bytes, None))
}

/// `GET /downloads/{product}/{version}/{target}`, `latest` for the highest version.
pub async fn download(
    State(st): State<AppState>,
    Path((product, version, target)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let (version, sha) = if version == "latest" {
        let row = st
            .store
            .latest_release(&product, &target)
            .await?
            .ok_or_else(|| not_found(&product, "latest", &target))?;
        (row.info.version, Some(row.info.sha256))
    } else {
        (version, None)
    };
    let bytes = st
        .store
        .release_artifact(&product, &version, &target)
        .await?
        .ok_or_else(|| not_found(&product, &version, &target))?;
    let sha = sha.unwrap_or_else(|| patchctl_release::sha256_hex(&bytes));
    Ok(octets(bytes, Some(&sha)))
}

/// `GET /install.sh`: the install script with this platform's URL (from the request's
/// authority) and the latest package of each family and target.
pub async fn install_sh(
    State(st): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let host = uri.authority().map(|a| a.as_str().to_owned()).or_else(|| {
        headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_owned)
    });
    let url = platform_url(host.as_deref());
    let rows = st.store.list_releases().await?;
    let mut latest = Vec::new();
    for (family, product) in PACKAGE_PRODUCTS {
        let mut targets: Vec<&str> = rows
            .iter()
            .filter(|r| r.info.product == product)
            .map(|r| r.info.target.as_str())
            .collect();
        targets.sort_unstable();
        targets.dedup();
        for target in targets {
            if let Some(row) = st.store.latest_release(product, target).await? {
                latest.push((family, row));
            }
        }
    }
    let script = install_script(url.as_deref(), &latest);
    let mut resp = script.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/x-shellscript; charset=utf-8"),
    );
    Ok(resp)
}
