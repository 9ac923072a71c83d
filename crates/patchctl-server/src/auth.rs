//! Secrets the platform hands out (API tokens, enrollment keys, agent credentials) and
//! the extractors that authenticate requests with them.
//!
//! Every secret is 256 random bits; only its SHA-256 is stored. A plain hash is enough
//! because the secrets are random, not passwords, and it keeps the heartbeat path cheap.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use patchctl_proto::Secret;
use patchctl_storage::HostAuth;
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

fn bearer(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// An authenticated agent.
#[derive(Debug, Clone, Copy)]
pub struct AgentAuth {
    /// The host.
    pub host_id: Uuid,
    /// Its organisation.
    pub org_id: Uuid,
}

/// How long a verified agent credential is trusted without asking the database again.
/// A revocation through this process takes effect at once; through another platform
/// process sharing the database, within this time.
pub const CREDENTIAL_CACHE_TTL: Duration = Duration::from_secs(30);
/// Entries kept before the cache starts over.
const CREDENTIAL_CACHE_MAX: usize = 500_000;

/// Credential hash → host, for [`CREDENTIAL_CACHE_TTL`]: spares the heartbeat path a
/// database round trip.
#[derive(Default)]
pub struct CredentialCache {
    map: Mutex<HashMap<String, (HostAuth, Instant)>>,
}

impl CredentialCache {
    fn get(&self, hash: &str) -> Option<HostAuth> {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.get(hash)
            .filter(|(_, at)| at.elapsed() < CREDENTIAL_CACHE_TTL)
            .map(|(h, _)| *h)
    }

    fn put(&self, hash: String, host: HostAuth) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= CREDENTIAL_CACHE_MAX {
            map.clear();
        }
        map.insert(hash, (host, Instant::now()));
    }

    /// Forgets every credential of `host_id` (after a revocation).
    pub fn forget_host(&self, host_id: Uuid) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, (h, _)| h.host_id != host_id);
    }
}

impl FromRequestParts<AppState> for AgentAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(cred) = bearer(parts) else {
            return Err(ApiError::unauthorized("missing agent credential"));
        };
        let hash = hash_secret(cred);
        let host = match state.agents.get(&hash) {
            Some(h) => Some(h),
            None => {
                let found = state.store.host_by_credential(&hash).await?;
                if let Some(h) = found {
                    state.agents.put(hash, h);
                }
                found
            }
        };
        match host {
            Some(h) => Ok(AgentAuth {
                host_id: h.host_id,
                org_id: h.org_id,
            }),
            None => Err(ApiError::unauthorized(
                "unknown or revoked agent credential; the agent must enroll again",
            )),
        }
    }
}

/// An authenticated operator (API token).
#[derive(Debug, Clone, Copy)]
pub struct OperatorAuth {
    /// The token's organisation; every operator request is confined to it.
    pub org_id: Uuid,
}

impl FromRequestParts<AppState> for OperatorAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(tok) = bearer(parts) else {
            return Err(ApiError::unauthorized(
                "missing API token; pass --token or set PATCHCTL_TOKEN",
            ));
        };
        match state.store.api_token_by_hash(&hash_secret(tok)).await? {
            Some(t) => Ok(OperatorAuth { org_id: t.org_id }),
            None => Err(ApiError::unauthorized("invalid API token")),
        }
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
