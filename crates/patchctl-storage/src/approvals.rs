//! Approvals, auto-approval rules, update sightings and manifests ([`ApprovalStore`]).
//! The SQL is in `sql/approvals.rs`. At most one active approval exists per group and
//! update; approving again is a no-op that says so. A manifest's items are written once,
//! with the manifest, and never change.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use patchctl_proto::policy::approvals::{MinSeverity, UpdateItem};
use uuid::Uuid;

use crate::error::Result;

/// A stored approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    /// Id.
    pub id: Uuid,
    /// The group.
    pub group_id: Uuid,
    /// What is approved.
    pub item: UpdateItem,
    /// The rule that approved it (its id; `None` once the rule is deleted) with its
    /// name; `None` for a person.
    pub rule: Option<(Option<Uuid>, String)>,
    /// Who.
    pub approved_by: String,
    /// When.
    pub approved_at: DateTime<Utc>,
    /// When withdrawn, and by whom.
    pub revoked: Option<(DateTime<Utc>, String)>,
}

/// Approvals to make (see [`ApprovalStore::approve`]).
#[derive(Debug, Clone)]
pub struct NewApprovals {
    /// The group.
    pub group_id: Uuid,
    /// The updates (validated by the caller).
    pub items: Vec<UpdateItem>,
    /// The rule making them, `None` for a person.
    pub rule: Option<(Uuid, String)>,
    /// Who.
    pub actor: String,
    /// When.
    pub now: DateTime<Utc>,
}

/// A stored rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalRule {
    /// Id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// The group.
    pub group_id: Uuid,
    /// Only security updates.
    pub security_only: bool,
    /// The lowest severity approved.
    pub min_severity: MinSeverity,
    /// Days after first seen.
    pub after_days: u32,
    /// Who made it.
    pub created_by: String,
    /// When.
    pub created_at: DateTime<Utc>,
    /// When it last ran.
    pub last_run_at: Option<DateTime<Utc>>,
}

/// A stored manifest (items loaded on demand).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// Id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// The group whose approvals it froze.
    pub group_id: Uuid,
    /// That group's name when frozen.
    pub group_name: String,
    /// Who froze it.
    pub created_by: String,
    /// When.
    pub created_at: DateTime<Utc>,
    /// How many items.
    pub item_count: u64,
}

/// Approvals, rules, sightings and manifests.
#[async_trait]
pub trait ApprovalStore: Send + Sync {
    /// Approves `items` for the group: the approvals made (in the order given); items
    /// with an active approval for the group already are left out of the answer.
    async fn approve(&self, org_id: Uuid, new: &NewApprovals) -> Result<Vec<Approval>>;

    /// The organisation's approvals, newest first: of one group, and active only unless
    /// `include_revoked`.
    async fn list_approvals(
        &self,
        org_id: Uuid,
        group: Option<Uuid>,
        include_revoked: bool,
    ) -> Result<Vec<Approval>>;

    /// Withdraws an active approval; `None` when there is no active one with that id.
    async fn revoke_approval(
        &self,
        org_id: Uuid,
        id: Uuid,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Approval>>;

    /// Creates a rule; a name the organisation uses already is a conflict.
    async fn create_rule(&self, org_id: Uuid, rule: &ApprovalRule) -> Result<()>;

    /// The organisation's rules, by name.
    async fn list_rules(&self, org_id: Uuid) -> Result<Vec<ApprovalRule>>;

    /// Every organisation's rules (the rule runner's work list), with their organisation.
    async fn all_rules(&self) -> Result<Vec<(Uuid, ApprovalRule)>>;

    /// Deletes a rule (its approvals stay); whether there was one.
    async fn delete_rule(&self, org_id: Uuid, id: Uuid) -> Result<bool>;

    /// Records when a rule ran.
    async fn rule_ran(&self, org_id: Uuid, id: Uuid, now: DateTime<Utc>) -> Result<()>;

    /// Records that the organisation's hosts can update to `items` (the first sighting
    /// is kept) and answers when each was first seen.
    async fn sight_updates(
        &self,
        org_id: Uuid,
        items: &[UpdateItem],
        now: DateTime<Utc>,
    ) -> Result<HashMap<UpdateItem, DateTime<Utc>>>;

    /// Stores a manifest and its items in one transaction; a name the organisation uses
    /// already is a conflict.
    async fn create_manifest(
        &self,
        org_id: Uuid,
        manifest: &Manifest,
        items: &[UpdateItem],
    ) -> Result<()>;

    /// The organisation's manifests, newest first.
    async fn list_manifests(&self, org_id: Uuid) -> Result<Vec<Manifest>>;

    /// One manifest by id or name, with its items by ecosystem and name.
    async fn manifest(
        &self,
        org_id: Uuid,
        reference: &str,
    ) -> Result<Option<(Manifest, Vec<UpdateItem>)>>;

    /// Stores an approver's signature of a manifest (one per approver key: a second
    /// one of the same key replaces the first).
    async fn add_manifest_approval(&self, approval: &ManifestApprovalRow) -> Result<()>;

    /// The approver signatures of a manifest of `org_id`, oldest first.
    async fn manifest_approvals(
        &self,
        org_id: Uuid,
        manifest_id: Uuid,
    ) -> Result<Vec<ManifestApprovalRow>>;
}

/// An approver's signature of a manifest, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct ManifestApprovalRow {
    /// The manifest.
    pub manifest_id: Uuid,
    /// Its organisation.
    pub org_id: Uuid,
    /// The approver's key id.
    pub key_id: String,
    /// The approver's name in the organisation's approver list.
    pub approver: String,
    /// The approval exactly as the approver signed it.
    pub signed: patchctl_proto::signing::SignedDocument,
    /// When it was stored.
    pub created_at: DateTime<Utc>,
}
