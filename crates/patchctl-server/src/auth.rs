//! Secrets the platform hands out (API tokens, enrollment keys, agent credentials) and
//! the extractors that authenticate requests with them.
//!
//! Every secret is 256 random bits; only its SHA-256 is stored. A plain hash is enough
//! because the secrets are random, not passwords, and it keeps the heartbeat path cheap.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use patchctl_proto::Secret;
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

impl FromRequestParts<AppState> for AgentAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(cred) = bearer(parts) else {
            return Err(ApiError::unauthorized("missing agent credential"));
        };
        match state.store.host_by_credential(&hash_secret(cred)).await? {
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
