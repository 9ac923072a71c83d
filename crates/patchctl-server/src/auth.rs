//! Secrets the platform hands out (API tokens, enrollment keys, agent credentials) and
//! the extractors that authenticate requests with them.
//!
//! Every secret is 256 random bits; only its SHA-256 is stored. A plain hash is enough
//! because the secrets are random, not passwords, and it keeps the heartbeat path cheap.
//!
//! Agent credentials are looked up whatever the host's standing, so that the answer
//! tells the agent what happened (the contract of `patchctl_proto::trust`): unknown
//! (401 `credential_unknown`), revoked or rejected (403 `credential_revoked`), waiting
//! for approval (403 `pending_approval`, except on `whoami`: [`AgentIdentity`]).
//! Operators (API tokens, sessions) are authenticated in [`crate::access`].

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use patchctl_proto::Secret;
use patchctl_proto::trust::{Approval, ErrorCode};
use patchctl_storage::{CredentialSlot, HostAuth};
use rand::RngCore;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::AppState;
use crate::error::ApiError;

/// Prefix of operator API tokens.
pub const TOKEN_PREFIX: &str = "pct_";
/// Prefix of enrollment (license) keys.
pub const ENROLLMENT_KEY_PREFIX: &str = "pek_";
/// Prefix of agent credentials.
pub const CREDENTIAL_PREFIX: &str = "pca_";

/// A new random secret: `prefix` + 64 hex digits (256 bits).
pub fn new_secret(prefix: &str) -> Secret {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    Secret::new(format!("{prefix}{}", hex::encode(bytes)))
}

/// SHA-256 of a secret, hex.
pub fn hash_secret(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// The bearer token of a request (agent credential or API token), if any.
pub(crate) fn bearer(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// What a revoked (or rejected) agent is told: what it means and what brings it back.
pub const REVOKED_MESSAGE: &str = "this host's agent credential was revoked by an operator \
(or the host was rejected while it waited for approval); the platform refuses it for good \
and the agent must not enroll again on its own. Bringing the host back takes an operator \
action: on the host run `patchctl-agent reenroll`, then restart the agent; it enrolls anew \
with its license key";
/// What an agent with a credential the platform does not know is told.
pub const UNKNOWN_MESSAGE: &str = "unknown agent credential: it was never issued by this \
platform or it was replaced by a credential rotation; if this host should be managed, run \
`patchctl-agent reenroll` on it and restart the agent";
/// What an agent waiting for approval is told.
pub const PENDING_MESSAGE: &str = "this host is waiting for an operator's approval \
(`patchctl hosts pending`, then `patchctl hosts approve HOST`); until then only \
GET /api/v1/agent/whoami is answered: keep asking at the heartbeat interval";

/// An authenticated agent whose host is approved and not revoked: what every agent
/// route but `whoami` requires. A revoked credential gets 403 `credential_revoked`, an
/// unknown one 401 `credential_unknown`, a host waiting for approval 403
/// `pending_approval`.
#[derive(Debug, Clone, Copy)]
pub struct AgentAuth {
    /// The host.
    pub host_id: Uuid,
    /// Its organisation.
    pub org_id: Uuid,
}

/// An authenticated agent that may also be waiting for approval (`whoami`). Revoked and
/// unknown credentials are refused as for [`AgentAuth`].
#[derive(Debug, Clone, Copy)]
pub struct AgentIdentity {
    /// The host.
    pub host_id: Uuid,
    /// Its organisation.
    pub org_id: Uuid,
    /// Approved or pending.
    pub approval: Approval,
}

/// How long a verified agent credential is trusted without asking the database again.
/// A revocation, rejection, approval or credential promotion through this process takes
/// effect at once ([`CredentialCache::forget_host`]); through another platform process
/// sharing the database, within this time.
pub const CREDENTIAL_CACHE_TTL: Duration = Duration::from_secs(30);
/// Entries kept before the cache starts over.
const CREDENTIAL_CACHE_MAX: usize = 500_000;

/// Credential hash → host, for [`CREDENTIAL_CACHE_TTL`]: spares the heartbeat path a
/// database round trip. Only accepted credentials (approved, not revoked, the current
/// credential) are kept.
///
/// A lookup that started before a [`CredentialCache::forget_host`] does not put its
/// (possibly stale) answer in afterwards: every forget moves a generation counter, and
/// an answer is kept only if the generation is the one read before the lookup.
#[derive(Default)]
pub struct CredentialCache {
    map: Mutex<HashMap<String, (HostAuth, Instant)>>,
    generation: AtomicU64,
}

impl CredentialCache {
    fn get(&self, hash: &str) -> Option<HostAuth> {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.get(hash)
            .filter(|(_, at)| at.elapsed() < CREDENTIAL_CACHE_TTL)
            .map(|(h, _)| *h)
    }

    /// The generation to pass to [`CredentialCache::put`], read before the lookup.
    fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    fn put(&self, hash: String, host: HostAuth, generation: u64) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if self.generation.load(Ordering::SeqCst) != generation {
            return;
        }
        if map.len() >= CREDENTIAL_CACHE_MAX {
            map.clear();
        }
        map.insert(hash, (host, Instant::now()));
    }

    /// Forgets every credential (after announcements of other nodes may have been
    /// missed: `crate::changes`).
    pub fn forget_all(&self) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        self.generation.fetch_add(1, Ordering::SeqCst);
        map.clear();
    }

    /// Forgets every credential of `host_id` (after a revocation, rejection, approval
    /// or credential promotion), and keeps lookups already under way from putting
    /// their answers in.
    pub fn forget_host(&self, host_id: Uuid) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        self.generation.fetch_add(1, Ordering::SeqCst);
        map.retain(|_, (h, _)| h.host_id != host_id);
    }
}

/// The host of the bearer credential, whatever its approval; refuses a missing,
/// unknown or revoked credential. The first use of a rotation's next credential
/// promotes it here (the old one stops working).
async fn authenticate(parts: &Parts, state: &AppState) -> Result<HostAuth, ApiError> {
    let Some(cred) = bearer(parts) else {
        return Err(ApiError::unauthorized(
            "missing agent credential: send it as Authorization: Bearer CREDENTIAL",
        ));
    };
    let hash = hash_secret(cred);
    if let Some(h) = state.agents.get(&hash) {
        return Ok(h);
    }
    let generation = state.agents.generation();
    let mut found = state.store.host_by_credential(&hash).await?;
    if let Some(h) = found.filter(|h| h.slot == CredentialSlot::Next && !h.revoked) {
        if state.store.promote_credential(h.host_id, &hash).await? {
            // The promotion was announced with it: the other nodes forget the old
            // credential too (`crate::changes`).
            state.agents.forget_host(h.host_id);
            tracing::info!(
                target: "audit",
                event = "agent_credential.promoted",
                org_id = %h.org_id,
                host_id = %h.host_id,
                actor = %format!("host {}", h.host_id),
                "the rotated agent credential is in use; the previous one no longer works"
            );
        }
        // Promoted now or by a concurrent request, or replaced by a newer rotation:
        // ask again.
        found = state.store.host_by_credential(&hash).await?;
        return match found {
            Some(h) if h.revoked => Err(revoked()),
            Some(h) => Ok(h),
            None => Err(unknown()),
        };
    }
    match found {
        None => Err(unknown()),
        Some(h) if h.revoked => Err(revoked()),
        Some(h) => {
            if h.accepted() {
                state.agents.put(hash, h, generation);
            }
            Ok(h)
        }
    }
}

fn unknown() -> ApiError {
    ApiError::unauthorized(UNKNOWN_MESSAGE).with_code(ErrorCode::CredentialUnknown)
}

fn revoked() -> ApiError {
    ApiError::forbidden(REVOKED_MESSAGE).with_code(ErrorCode::CredentialRevoked)
}

impl FromRequestParts<AppState> for AgentAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let h = authenticate(parts, state).await?;
        match h.approval {
            Approval::Approved => Ok(AgentAuth {
                host_id: h.host_id,
                org_id: h.org_id,
            }),
            Approval::Pending => {
                Err(ApiError::forbidden(PENDING_MESSAGE).with_code(ErrorCode::PendingApproval))
            }
            // A rejected host is revoked too; `authenticate` refused it already.
            Approval::Rejected => Err(revoked()),
        }
    }
}

impl FromRequestParts<AppState> for AgentIdentity {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let h = authenticate(parts, state).await?;
        if h.approval == Approval::Rejected {
            return Err(revoked());
        }
        Ok(AgentIdentity {
            host_id: h.host_id,
            org_id: h.org_id,
            approval: h.approval,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_long_random_and_hashed() {
        let a = new_secret(TOKEN_PREFIX);
        let b = new_secret(TOKEN_PREFIX);
        assert_ne!(a, b);
        assert_eq!(a.expose().len(), TOKEN_PREFIX.len() + 64);
        let h = hash_secret(a.expose());
        assert_eq!(h.len(), 64);
        assert_ne!(h, a.expose()[TOKEN_PREFIX.len()..]);
    }
}
