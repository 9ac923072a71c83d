//! Signed releases and the agent's own life cycle on the wire.
//!
//! A release is an artifact (the agent binary, or a package of it) described by a
//! **manifest** that a **signing key** signed; the signing keys are a list that offline
//! **root** keys signed, with an expiry. Both signed documents travel as
//! [`SignedDocument`]: the exact JSON text that was signed, and the signatures over it,
//! so that no canonical form is ever needed. `patchctl-release` signs and verifies
//! them; this module only says what they look like.
//!
//! Self-update is not an operation: the heartbeat answer may carry an
//! [`AgentUpdateOffer`], and the agent reports each step of its own update as an
//! [`UpdateEvent`] with its next heartbeat. The four operations stay exactly four.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The product name of the agent binary in a manifest.
pub const PRODUCT_AGENT: &str = "patchctl-agent";

/// Largest artifact the platform accepts for publishing and an agent downloads
/// (the agent binary is ~7 MB; packages of it are smaller).
pub const MAX_ARTIFACT_BYTES: u64 = 64 * 1024 * 1024;

/// A JSON document and the ed25519 signatures over its exact bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SignedDocument {
    /// The signed JSON text, byte for byte as it was signed.
    pub signed: String,
    /// Signatures over a domain-separated form of `signed` (see `patchctl-release`).
    pub signatures: Vec<SignatureEntry>,
}

/// One signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SignatureEntry {
    /// The signer's key id: the first 8 bytes of SHA-256 of its public key, hex.
    pub key_id: String,
    /// The ed25519 signature, hex (64 bytes).
    pub signature: String,
}

/// The signing keys, as the roots signed them (`SignedDocument::signed` of
/// [`ReleaseBundle::keys`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SigningKeyList {
    /// Always `"patchctl-signing-keys"`.
    pub kind: String,
    /// The ed25519 public keys allowed to sign manifests, hex (32 bytes each).
    pub keys: Vec<String>,
    /// When the list was signed.
    pub created: DateTime<Utc>,
    /// After this instant the list, and every manifest it vouches for, is refused.
    pub expires: DateTime<Utc>,
}

/// What a signing key says about one artifact (`SignedDocument::signed` of
/// [`ReleaseBundle::manifest`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Manifest {
    /// Always `"patchctl-release-manifest"`.
    pub kind: String,
    /// The product: [`PRODUCT_AGENT`] for the agent binary, `patchctl-agent.deb`,
    /// `patchctl-agent.rpm`, … for packages of it.
    pub product: String,
    /// The release version (`MAJOR.MINOR.PATCH`, optionally `-PRERELEASE`).
    pub version: String,
    /// The Rust target triple the artifact runs on (`x86_64-unknown-linux-gnu`).
    pub target: String,
    /// SHA-256 of the artifact, hex.
    pub sha256: String,
    /// The artifact's size in bytes.
    pub size: u64,
    /// The release channel (`stable`, `beta`).
    pub channel: String,
    /// When the manifest was signed.
    pub created: DateTime<Utc>,
    /// After this instant the manifest is refused.
    pub expires: DateTime<Utc>,
}

/// A manifest with the signing-key list that vouches for it: everything an agent
/// needs, with its built-in roots, to decide about an artifact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReleaseBundle {
    /// The [`SigningKeyList`], signed by roots.
    pub keys: SignedDocument,
    /// The [`Manifest`], signed by a key of that list.
    pub manifest: SignedDocument,
}

/// In a heartbeat answer: the platform wants this agent to run another release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AgentUpdateOffer {
    /// The release version to run.
    pub version: String,
    /// The target triple the release was published for (the agent's own).
    pub target: String,
}

/// One step of the agent's own update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum UpdateStep {
    /// The artifact is in the staging file.
    Downloaded,
    /// Signatures, expiries, hash, size, target, product and version all hold, and the
    /// new binary passed its self-test.
    Verified,
    /// The new binary is in place (the old one kept as the previous version); the
    /// agent restarts into it.
    Swapped,
    /// The new binary reached the platform: the update is done.
    Confirmed,
    /// The update was refused before anything changed; `detail` says why.
    Refused,
    /// The new binary did not come up healthy; the previous one was restored.
    RolledBack,
}

impl UpdateStep {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            UpdateStep::Downloaded => "downloaded",
            UpdateStep::Verified => "verified",
            UpdateStep::Swapped => "swapped",
            UpdateStep::Confirmed => "confirmed",
            UpdateStep::Refused => "refused",
            UpdateStep::RolledBack => "rolled_back",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<UpdateStep> {
        [
            UpdateStep::Downloaded,
            UpdateStep::Verified,
            UpdateStep::Swapped,
            UpdateStep::Confirmed,
            UpdateStep::Refused,
            UpdateStep::RolledBack,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }
}

/// What the agent reports of its own update, with its next heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UpdateEvent {
    /// When the step happened (the agent's clock).
    pub at: DateTime<Utc>,
    /// The step.
    pub step: UpdateStep,
    /// The release version the step is about.
    pub version: String,
    /// For a refusal or a rollback: the reason, for an operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A host's agent update as the operator API shows it: the last step reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HostUpdateState {
    /// The last step.
    pub step: UpdateStep,
    /// The release version it was about.
    pub version: String,
    /// The reason of a refusal or a rollback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// When the agent says it happened.
    pub at: DateTime<Utc>,
}

/// `POST /api/v1/releases`: publish a signed artifact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PublishRelease {
    /// The manifest and the key list vouching for it.
    pub bundle: ReleaseBundle,
    /// The artifact, base64 (standard alphabet, padded).
    pub artifact_base64: String,
}

/// A published release, as `GET /api/v1/releases` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReleaseInfo {
    /// Product.
    pub product: String,
    /// Version.
    pub version: String,
    /// Target triple.
    pub target: String,
    /// Channel.
    pub channel: String,
    /// SHA-256 of the artifact, hex.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// When the manifest expires.
    pub expires: DateTime<Utc>,
    /// When it was published.
    pub published_at: DateTime<Utc>,
}

/// `GET/PUT /api/v1/agent-rollout`: which agent release the organisation's hosts
/// should run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AgentRollout {
    /// The release version hosts should run; `None`: no self-update is offered.
    #[serde(default)]
    pub version: Option<String>,
    /// Offer it only to this share of hosts (1–100, chosen by a hash of the host id,
    /// so the same hosts stay in the canary as it grows); `None` is 100.
    #[serde(default)]
    pub canary_percent: Option<u8>,
}

/// Whether a host falls in a canary of `percent` hosts: a stable hash of its id, so the
/// same hosts are in a 10 % canary as in the 20 % one that follows.
pub fn in_canary(host_id: uuid::Uuid, percent: Option<u8>) -> bool {
    use sha2::{Digest, Sha256};
    let Some(p) = percent else { return true };
    let h = Sha256::digest(host_id.as_bytes());
    (u16::from_be_bytes([h[0], h[1]]) % 100) < u16::from(p.min(100))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_round_trip() {
        for s in [
            UpdateStep::Downloaded,
            UpdateStep::Verified,
            UpdateStep::Swapped,
            UpdateStep::Confirmed,
            UpdateStep::Refused,
            UpdateStep::RolledBack,
        ] {
            assert_eq!(UpdateStep::parse(s.as_str()), Some(s));
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(json, format!("\"{}\"", s.as_str()));
        }
        assert_eq!(UpdateStep::parse("installed"), None);
    }

    #[test]
    fn canary_grows_monotonically_and_covers_roughly_its_share() {
        let ids: Vec<uuid::Uuid> = (0..2000u128).map(uuid::Uuid::from_u128).collect();
        let count = |p: Option<u8>| ids.iter().filter(|h| in_canary(**h, p)).count();
        assert_eq!(count(None), ids.len());
        assert_eq!(count(Some(100)), ids.len());
        assert_eq!(count(Some(0)), 0);
        let ten = count(Some(10));
        assert!((120..=280).contains(&ten), "10 % canary took {ten} of 2000");
        for h in &ids {
            if in_canary(*h, Some(10)) {
                assert!(in_canary(*h, Some(20)), "a host left the canary as it grew");
            }
        }
    }
}
