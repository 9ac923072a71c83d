//! Signed commands on the wire (issue 15).
//!
//! Every command the platform queues is described by a [`CommandStatement`] that the
//! organisation's command-signing key signed when an operator (or the rollout engine,
//! on an operator's deployment) queued it. The agent runs only what a statement says,
//! and only when the signature verifies against the key it knows: what the database
//! row or the envelope says besides is not trusted. The statement travels as a
//! [`SignedDocument`] (the exact signed JSON text and its signatures, each naming its
//! key by id), so a signer that is not a key file (a hardware key, a KMS) signs the
//! same bytes and the wire stays the same.
//!
//! The key is rotated by a [`KeyRotation`] that the old key signs: an agent that knows
//! the old key follows the chain to the new one without being touched, and retires the
//! old key.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use crate::release::{SignatureEntry, SignedDocument};

/// `kind` of a [`CommandStatement`].
pub const COMMAND_STATEMENT_KIND: &str = "patchctl-command";
/// `kind` of a [`KeyRotation`].
pub const KEY_ROTATION_KIND: &str = "patchctl-command-key-rotation";
/// `kind` of an [`ApproverList`].
pub const APPROVERS_KIND: &str = "patchctl-approvers";
/// `kind` of a [`ManifestApproval`].
pub const MANIFEST_APPROVAL_KIND: &str = "patchctl-manifest-approval";
/// Most approvers an organisation lists.
pub const MAX_APPROVERS: usize = 64;
/// Most rotations one heartbeat answer carries (an agent further behind re-enrolls).
pub const MAX_ROTATION_CHAIN: usize = 64;

/// What the organisation's command-signing key vouches for: everything about one
/// command that the agent acts on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandStatement {
    /// Always [`COMMAND_STATEMENT_KIND`].
    pub kind: String,
    /// The organisation whose key signed.
    pub org: Uuid,
    /// The one host that may run it.
    pub host: Uuid,
    /// The command's id (an agent runs an id at most once).
    pub command: Uuid,
    /// The operation: one of the four kinds.
    pub operation: String,
    /// Its parameters, validated by the platform before signing (and again by the
    /// agent before anything runs).
    pub params: serde_json::Value,
    /// When it was queued.
    pub queued_at: DateTime<Utc>,
    /// After this instant the agent refuses it.
    pub expires_at: DateTime<Utc>,
    /// For `install_updates` of a deployment: an approver's [`ManifestApproval`] of
    /// the manifest the packages come from, signed by the approver's own key. Required
    /// by the agent when the organisation's [`ApproverList`] says so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<SignedDocument>,
}

/// A new command-signing key, vouched for by the key it replaces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyRotation {
    /// Always [`KEY_ROTATION_KIND`].
    pub kind: String,
    /// The organisation.
    pub org: Uuid,
    /// The key being retired, `ed25519:<hex>`.
    pub previous: String,
    /// The key that signs from now on, `ed25519:<hex>`.
    pub next: String,
    /// When the rotation was made.
    pub created: DateTime<Utc>,
}

/// The organisation's command-signing key as the platform announces it: in the
/// enrollment answer, and in a heartbeat answer when the agent reported another key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CommandKeyInfo {
    /// The organisation.
    pub org: Uuid,
    /// The current public key, `ed25519:<hex>`.
    pub key: String,
    /// The rotations from the key the agent reported to `key`, oldest first, each a
    /// signed [`KeyRotation`] (empty in an enrollment answer). An agent accepts `key`
    /// only through this chain once it knows a key.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rotations: Vec<SignedDocument>,
    /// The organisation's [`ApproverList`], signed by `key`, when it has one (sent at
    /// enrollment and whenever the agent reported an older serial).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approvers: Option<SignedDocument>,
}

/// Who may approve a manifest for install, and whether the agents require it: the
/// two-person rule (the platform queues, a human key approves). Signed by the
/// organisation's command-signing key, so the database cannot change it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApproverList {
    /// Always [`APPROVERS_KIND`].
    pub kind: String,
    /// The organisation.
    pub org: Uuid,
    /// Grows with every change; an agent takes only a higher one.
    pub serial: u64,
    /// Whether an `install_updates` must carry an approver's signature.
    pub required: bool,
    /// The approvers.
    pub approvers: Vec<Approver>,
    /// When the list was signed.
    pub created: DateTime<Utc>,
}

/// One approver: a person holding their own ed25519 key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Approver {
    /// Who (a name the organisation gives, `alice`).
    pub name: String,
    /// Their public key, `ed25519:<hex>`.
    pub key: String,
}

/// An approver's signature over the exact updates of a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestApproval {
    /// Always [`MANIFEST_APPROVAL_KIND`].
    pub kind: String,
    /// The organisation.
    pub org: Uuid,
    /// The manifest's id.
    pub manifest: Uuid,
    /// The manifest's name.
    pub name: String,
    /// Every update of the manifest, exactly.
    pub items: Vec<ApprovedItem>,
    /// When the approver signed.
    pub created: DateTime<Utc>,
}

/// One approved update.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovedItem {
    /// The ecosystem (`Debian:12`).
    pub ecosystem: String,
    /// The package.
    pub name: String,
    /// The exact version.
    pub version: String,
}
