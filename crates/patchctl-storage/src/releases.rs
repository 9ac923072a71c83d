//! Signed releases and the agents' self-update ([`ReleaseStore`]): the published
//! releases (platform-wide: the public downloads know no organisation), each
//! organisation's agent rollout (which version its hosts should run, to which canary
//! share), and the update steps the agents report. The SQL is in `sql/releases.rs`.
//!
//! A published `(product, version, target)` is immutable: publishing it again with the
//! same artifact changes nothing ([`PutRelease::Unchanged`]), with another artifact is
//! refused ([`PutRelease::Conflict`]). Verifying a release is the caller's job
//! (`patchctl_release`); storage keeps what it is given.
//!
//! A host's agent target is stored by its heartbeats
//! ([`crate::HostStore::record_heartbeats`]); its last update step by
//! [`ReleaseStore::record_update_events`], which the platform calls only for the rare
//! heartbeat that carries some.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use patchctl_proto::release::{AgentRollout, ReleaseBundle, ReleaseInfo, UpdateEvent};
use uuid::Uuid;

use crate::error::Result;

/// A release to publish: the verified manifest's fields, the bundle and the artifact.
#[derive(Debug, Clone)]
pub struct NewRelease {
    /// Product (`patchctl-agent`, `patchctl-agent.deb`, ...).
    pub product: String,
    /// Version.
    pub version: String,
    /// Target triple.
    pub target: String,
    /// Channel.
    pub channel: String,
    /// SHA-256 of the artifact, hex.
    pub sha256: String,
    /// When the manifest expires.
    pub expires: DateTime<Utc>,
    /// The manifest and the key list vouching for it, as published.
    pub bundle: ReleaseBundle,
    /// The artifact (its length is the release's size).
    pub artifact: Vec<u8>,
    /// Publishing time.
    pub published_at: DateTime<Utc>,
    /// Who published it (the audit actor, `api token ID`).
    pub published_by: String,
}

/// A published release, without its bundle and artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseRow {
    /// What the operator API lists.
    pub info: ReleaseInfo,
    /// Who published it.
    pub published_by: String,
}

/// What [`ReleaseStore::put_release`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutRelease {
    /// The release was stored.
    Created(ReleaseRow),
    /// The same artifact (same SHA-256) was published before: nothing changed.
    Unchanged(ReleaseRow),
    /// Another artifact was published under this product, version and target
    /// (versions are immutable): nothing changed. The release already stored.
    Conflict(ReleaseRow),
}

/// An organisation's agent rollout and who set it last.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RolloutRow {
    /// The rollout (the default, no version offered, when never set).
    pub rollout: AgentRollout,
    /// When it was last set.
    pub updated_at: Option<DateTime<Utc>>,
    /// Who set it last.
    pub updated_by: Option<String>,
}

/// An update step as stored, with the platform's time of arrival.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredUpdateEvent {
    /// The event as the agent reported it.
    pub event: UpdateEvent,
    /// When the platform received it.
    pub received_at: DateTime<Utc>,
}

/// Releases, agent rollouts and update events. Times are passed in.
#[async_trait]
pub trait ReleaseStore: Send + Sync + 'static {
    /// Publishes a release: stores it unless its `(product, version, target)` is
    /// published already, in which case the same SHA-256 is
    /// [`PutRelease::Unchanged`] and another a [`PutRelease::Conflict`].
    async fn put_release(&self, release: &NewRelease) -> Result<PutRelease>;
    /// Every published release, newest first (by publishing time, then product,
    /// version and target).
    async fn list_releases(&self) -> Result<Vec<ReleaseRow>>;
    /// The bundle of a published release.
    async fn release_bundle(
        &self,
        product: &str,
        version: &str,
        target: &str,
    ) -> Result<Option<ReleaseBundle>>;
    /// The artifact of a published release.
    async fn release_artifact(
        &self,
        product: &str,
        version: &str,
        target: &str,
    ) -> Result<Option<Vec<u8>>>;
    /// The release of `product` for `target` with the highest version, in release
    /// version order (`1.10.0` after `1.9.0`, `1.0.0-rc.1` before `1.0.0`).
    async fn latest_release(&self, product: &str, target: &str) -> Result<Option<ReleaseRow>>;
    /// The organisation's agent rollout (the default when never set).
    async fn agent_rollout(&self, org_id: Uuid) -> Result<RolloutRow>;
    /// Replaces the organisation's agent rollout; false when there is no such
    /// organisation. The canary share must be 1–100 or none
    /// ([`crate::StorageError::Invalid`]).
    async fn set_agent_rollout(
        &self,
        org_id: Uuid,
        rollout: &AgentRollout,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<bool>;
    /// Stores the update steps a host reported (in the order given) and makes the last
    /// of them the host's update state, in one transaction; false (nothing stored)
    /// when there is no such host. An empty list changes nothing.
    async fn record_update_events(
        &self,
        host_id: Uuid,
        events: &[UpdateEvent],
        received_at: DateTime<Utc>,
    ) -> Result<bool>;
    /// The update steps a host of `org_id` reported, oldest first, at most `limit` (the
    /// latest ones).
    async fn update_events(
        &self,
        org_id: Uuid,
        host_id: Uuid,
        limit: u32,
    ) -> Result<Vec<StoredUpdateEvent>>;
}
