//! The platform's storage: one trait, [`Storage`], made of one trait per domain, and a
//! backend per database.
//!
//! The domains, each a module `src/<domain>.rs` with its trait and types (re-exported
//! here) and a file of SQL `src/sql/<domain>.rs`:
//! * `identity`: organisations and their settings, API tokens, enrollment keys
//!   ([`IdentityStore`]);
//! * `hosts`: hosts, enrollment, agent credentials (revocation, approval, rotation),
//!   heartbeats, metrics history ([`HostStore`]);
//! * `commands`: the command queue, leases, results, events ([`CommandStore`]);
//! * `scans`: inventories, scan states, available updates ([`ScanStore`]);
//! * `vulns`: the vulnerability database ([`VulnStore`]);
//! * `releases`: signed releases, each organisation's agent rollout and the agents'
//!   update steps ([`ReleaseStore`]);
//! * `operators`: users and their roles, dashboard sessions, users' API tokens
//!   ([`OperatorStore`]);
//! * `audit`: the append-only audit trail of operators ([`AuditStore`]);
//! * `dashboard`: the dashboard's filtered, keyset-paged lists ([`DashboardStore`]);
//! * `compliance`: findings' first-seen times, exceptions (accepted risk) and deadline
//!   policies ([`ComplianceStore`]);
//! * `groups`: groups of hosts (selectors over tags and facts) and host tags
//!   ([`GroupStore`]);
//! * `approvals`: approvals, auto-approval rules, update sightings and manifests
//!   ([`ApprovalStore`]).
//! * `windows`: maintenance windows per group ([`WindowStore`]).
//! * `webhooks`: webhook subscriptions, the outbox and the delivery log ([`WebhookStore`]).
//! * `deployments`: deployments of manifests in rings, their hosts and events
//!   ([`DeploymentStore`]).
//! * `limits`: rate limits every node shares ([`LimitStore`]).
//! * `nodes`: the platform nodes sharing the database, each beating every 15 s
//!   ([`NodeStore`]).
//! * `changes`: announcements every node hears: commands queued, scans stored,
//!   standings changed ([`ChangeStore`]; `NOTIFY`/`LISTEN` on PostgreSQL).
//!
//! [`Storage`] is every domain trait at once (a blanket impl), so `Arc<dyn Storage>`
//! reaches every method without importing the domain traits. A new domain (releases,
//! policies, audit) is a new module, a new `sql/<domain>.rs` and one more supertrait.
//!
//! The backend is chosen once, from the database URL, by [`open`]: `sqlite://PATH`
//! (the default; WAL, one file) or `postgres://...`. Each backend has its own
//! migrations under `migrations/<backend>/`; a shipped migration is never edited, a new
//! one is added. One conformance suite (`tests/conformance.rs`) runs against both.
//!
//! Architecture invariant: handlers never branch on the backend; everything they need is
//! a method of [`Storage`].
//!
//! Architecture invariant: all SQL lives in `src/sql/<domain>.rs`, one text for both
//! backends; the domain modules hold only traits and types.

use std::sync::Arc;

mod approvals;
mod audit;
pub mod changes;
mod commands;
mod compliance;
mod dashboard;
mod deployments;
mod error;
mod groups;
mod hosts;
mod identity;
mod limits;
mod nodes;
mod operators;
mod reboots;
mod releases;
mod scans;
mod sql;
mod vulns;
mod webhooks;
mod windows;

pub use approvals::{
    Approval, ApprovalRule, ApprovalStore, Manifest, ManifestApprovalRow, NewApprovals,
};
pub use audit::{AuditActor, AuditEntry, AuditFilter, AuditOutcome, AuditStore, NewAuditEntry};
pub use changes::{Change, ChangeStore};
pub use commands::{CancelOutcome, CommandStateCount, CommandStore, NewCommand, RecordOutcome};
pub use compliance::{
    ComplianceStore, DeadlinePolicyRow, ExceptionRow, ExceptionScope, FirstSeen, NewException,
    RevokeOutcome,
};
pub use dashboard::{CommandFilter, CommandLine, DashboardStore};
pub use deployments::{
    CommandOutcome, DeploymentHostRow, DeploymentRow, DeploymentStore, NewDeployment,
    NewDeploymentHost, Progress, RingRow,
};
pub use error::{Result, StorageError};
pub use groups::{Group, GroupStore, HostFactsRow, NewGroup};
pub use hosts::{
    AgentVersionCount, ApprovalChange, CredentialSlot, EnrollHost, Enrollment, FleetCounts,
    HeartbeatOutcome, HeartbeatWrite, HostAuth, HostListPage, HostListQuery, HostRow, HostSort,
    HostStatusCount, HostStore, KeyRefusal, NewHost,
};
pub use identity::{ApiToken, EnrollmentKey, IdentityStore, KeyRotation, NewEnrollmentKey, Org};
pub use limits::LimitStore;
pub use nodes::{NODE_FORGET_AFTER, NODE_LIVE_WITHIN, NodeBeat, NodeStore};
pub use operators::{NewApiToken, NewSession, NewUser, OperatorStore, SessionRow, TokenAuth, User};
pub use reboots::{
    HostBoot, HostBootState, RebootLine, RebootReport, RebootStore, bounded_reasons,
};
pub use releases::{
    NewRelease, PutRelease, ReleaseRow, ReleaseStore, RolloutRow, StoredUpdateEvent,
};
pub use scans::{ScanKind, ScanStore, StoredScan};
pub use vulns::{FeedSyncState, StoredVulnRecord, VulnImport, VulnSource, VulnStore};
pub use webhooks::{
    AttemptNext, AttemptRecord, DeliveryPage, LeasedMessage, MissedDeadline, NewFinding,
    NewWebhook, WebhookChange, WebhookStore,
};
pub use windows::{WindowFields, WindowRow, WindowStore};

/// Everything the platform stores: every domain trait. Implemented for every type that
/// implements them all; call its methods on `dyn Storage` (or `S: Storage`) directly.
/// Times are passed in (never read from the clock inside) so that leases and expiry
/// are testable.
pub trait Storage:
    IdentityStore
    + HostStore
    + CommandStore
    + ScanStore
    + VulnStore
    + ReleaseStore
    + OperatorStore
    + AuditStore
    + DashboardStore
    + ComplianceStore
    + GroupStore
    + ApprovalStore
    + WindowStore
    + WebhookStore
    + RebootStore
    + DeploymentStore
    + ChangeStore
    + LimitStore
    + NodeStore
{
}

impl<T> Storage for T where
    T: IdentityStore
        + HostStore
        + CommandStore
        + ScanStore
        + VulnStore
        + ReleaseStore
        + DashboardStore
        + OperatorStore
        + AuditStore
        + ComplianceStore
        + GroupStore
        + ApprovalStore
        + WindowStore
        + WebhookStore
        + RebootStore
        + DeploymentStore
        + ChangeStore
        + LimitStore
        + NodeStore
{
}

/// Opens (creating if needed) and migrates the database that `url` names:
/// `sqlite://PATH` / `sqlite:PATH` or `postgres://...` / `postgresql://...`.
pub async fn open(url: &str) -> Result<Arc<dyn Storage>> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(sql::SqliteStore::open(url).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(sql::PostgresStore::open(url).await?))
    } else {
        let scheme = url.split(':').next().unwrap_or("").to_owned();
        Err(StorageError::UnsupportedUrl(scheme))
    }
}

#[cfg(test)]
mod tests {
    //! `Storage` reaches the methods of every domain trait without importing them, both
    //! as `dyn Storage` and as a generic `S: Storage` (only `Storage` is imported here).

    use std::time::Duration;

    use chrono::{DateTime, Utc};
    use uuid::Uuid;

    use super::{Result, Storage, open};

    /// One method of each domain, through a generic bound.
    async fn one_of_each<S: Storage + ?Sized>(s: &S, now: DateTime<Utc>) -> Result<()> {
        let org = s.create_org("generic", now).await?;
        assert!(s.list_hosts(org.id).await?.is_empty());
        let leased = s
            .lease_commands(Uuid::new_v4(), now, Duration::from_secs(60), 10)
            .await?;
        assert!(leased.is_empty());
        assert!(s.scan_state(Uuid::new_v4()).await?.is_none());
        assert_eq!(s.vuln_generation().await?, 0);
        assert!(s.list_releases().await?.is_empty());
        Ok(())
    }

    #[tokio::test]
    async fn storage_reaches_every_domain_method() {
        let store = open("sqlite::memory:").await.unwrap();
        let now = DateTime::from_timestamp_millis(1_000).unwrap();
        one_of_each(&*store, now).await.unwrap();
        // And through `dyn Storage` directly.
        assert!(store.org_by_name("generic").await.unwrap().is_some());
        assert!(store.vuln_sources().await.unwrap().is_empty());
    }
}
