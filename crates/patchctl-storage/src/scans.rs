//! Scans: a host's inventory, its scan state (the digest deltas apply to), its
//! available updates and its packages ([`ScanStore`]). The SQL is in `sql/scans.rs`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use patchctl_proto::agent::{InstalledPackage, InventoryUpload};
use patchctl_proto::api::HostUpdates;
use patchctl_proto::scan::ScanState;
use uuid::Uuid;

use crate::error::Result;

/// How a scan stored by [`ScanStore::put_scan`] came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanKind {
    /// The whole state: the host's delta chain starts again at 0.
    Full,
    /// Changes against the stored state: the host's delta chain grows by one.
    Delta,
}

/// A host's stored scan state, as [`ScanStore::scan_state`] gives it back.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredScan {
    /// The stored digest.
    pub digest: String,
    /// The state rebuilt from storage (canonical: its digest is [`StoredScan::digest`]).
    pub state: ScanState,
    /// Deltas stored since the host's last full scan, by every node together (the cap
    /// of docs/limits.md is checked against it).
    pub delta_chain: u32,
}

/// Inventories, scan states and available updates of hosts. Times are passed in (never
/// read from the clock inside).
#[async_trait]
pub trait ScanStore: Send + Sync + 'static {
    /// Replaces the host's inventory and system identification atomically (a v1
    /// upload); returns the number of packages stored. The scan digest becomes unknown,
    /// so the next scan delta is answered with "send the full state"; the stored
    /// updates stay, with their own scan time. Announces
    /// [`Change::Scan`](crate::Change::Scan) with the write (on PostgreSQL inside the
    /// transaction); an unknown host is an error, and nothing is announced.
    async fn put_inventory(&self, host_id: Uuid, upload: &InventoryUpload) -> Result<u64>;
    /// Replaces the host's whole scan state in one transaction: system identification,
    /// host name, package manager, packages (stored as [`PackageRow::to_package`]),
    /// the updates (as given and as rows of the update index), their counts, the scan
    /// time, `digest` and the delta chain (0 after a [`ScanKind::Full`], one more after
    /// a [`ScanKind::Delta`]). Returns the number of packages stored; an unknown host
    /// is an error and a failed write changes nothing. Announces
    /// [`Change::Scan`](crate::Change::Scan) with the write, as `put_inventory` does.
    ///
    /// `state` must be canonical ([`ScanState::canonicalize`]) and `digest` its
    /// [`ScanState::digest`], and every row must survive the trip through
    /// [`PackageRow::to_package`] unchanged (the agent's rows do); then
    /// [`ScanStore::scan_state`] gives back a state with exactly this digest.
    ///
    /// [`PackageRow::to_package`]: patchctl_proto::scan::PackageRow::to_package
    async fn put_scan(
        &self,
        host_id: Uuid,
        scanned_at: DateTime<Utc>,
        digest: &str,
        state: &ScanState,
        kind: ScanKind,
    ) -> Result<u64>;
    /// Records `scanned_at` as the host's latest scan time (of the inventory, and of the
    /// updates when there are any) when its stored scan digest is `digest`; false, with
    /// nothing changed, otherwise (another digest, none, or no such host).
    async fn touch_scan(
        &self,
        host_id: Uuid,
        scanned_at: DateTime<Utc>,
        digest: &str,
    ) -> Result<bool>;
    /// The stored scan digest, the state rebuilt from storage (canonical, so its
    /// digest is the stored one) and the delta chain; `None` when the digest is unknown
    /// or there is no such host. Deltas apply to this state.
    async fn scan_state(&self, host_id: Uuid) -> Result<Option<StoredScan>>;
    /// The available updates of a host of `org_id` as the last scan reported them,
    /// sorted by name, arch and candidate version; `None` when `org_id` has no such
    /// host, `scanned_at: None` when the host never reported updates.
    async fn host_updates(&self, org_id: Uuid, host_id: Uuid) -> Result<Option<HostUpdates>>;
    /// The stored inventory of a host of `org_id`, by name then arch.
    async fn host_packages(&self, org_id: Uuid, host_id: Uuid) -> Result<Vec<InstalledPackage>>;
}
