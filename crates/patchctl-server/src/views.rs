//! The fleet-wide views the dashboard shows on every load (the overview's host counts
//! and vulnerable hosts by severity, the vulnerabilities page, the host list's family
//! filter), kept per organisation
//! and served stale while one background task recomputes them.
//!
//! Computing a view walks every host of the organisation, in the CVE engine (about
//! 0.7 s for 100,000 hosts on the reference machine: docs/benchmarks.md) or in the
//! database (the counts), which a page that must render in 150 ms cannot do on every
//! request. A view younger than
//! [`FRESH_FOR`] is served as it is; an older one is served too, while a single
//! recompute runs in the background; only the very first request of an organisation
//! waits for one. So the dashboard's fleet-wide counts are at most [`FRESH_FOR`] plus
//! one recompute old. The API (`/api/v1/vulns/summary`) always computes afresh.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use patchctl_storage::{FleetCounts, Storage, StorageError};
use patchctl_vuln::fleet::{AdvisoryCount, Summary};
use uuid::Uuid;

use crate::engine::{EngineError, VulnEngine};

/// How long a view is served without recomputing it.
pub const FRESH_FOR: Duration = Duration::from_secs(15);

/// What a lookup found.
enum Lookup<T> {
    /// Young enough.
    Fresh(Arc<T>),
    /// Old: serve it; the caller starts the one recompute.
    Stale(Arc<T>),
    /// Never computed: compute and wait.
    Missing,
}

struct Entry<T> {
    at: Instant,
    value: Arc<T>,
    refreshing: bool,
}

/// One view per organisation.
struct ViewCache<T> {
    map: Mutex<HashMap<Uuid, Entry<T>>>,
}

impl<T> Default for ViewCache<T> {
    fn default() -> Self {
        ViewCache {
            map: Mutex::new(HashMap::new()),
        }
    }
}

impl<T> ViewCache<T> {
    fn lookup(&self, org: Uuid, fresh_for: Duration) -> Lookup<T> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        match map.get_mut(&org) {
            None => Lookup::Missing,
            Some(e) if e.at.elapsed() < fresh_for || e.refreshing => Lookup::Fresh(e.value.clone()),
            Some(e) => {
                e.refreshing = true;
                Lookup::Stale(e.value.clone())
            }
        }
    }

    fn put(&self, org: Uuid, value: Arc<T>) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.insert(
            org,
            Entry {
                at: Instant::now(),
                value,
                refreshing: false,
            },
        );
    }

    fn refresh_failed(&self, org: Uuid) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = map.get_mut(&org) {
            e.refreshing = false;
        }
    }
}

impl<T: Send + Sync + 'static> ViewCache<T> {
    /// The view of `org`: fresh, or stale while one background `compute` runs, or
    /// computed now when there is none yet.
    async fn serve<E, F, Fut>(
        self: &Arc<Self>,
        org: Uuid,
        fresh_for: Duration,
        compute: F,
    ) -> Result<Arc<T>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        match self.lookup(org, fresh_for) {
            Lookup::Fresh(v) => Ok(v),
            Lookup::Stale(v) => {
                let me = self.clone();
                let work = compute();
                tokio::spawn(async move {
                    match work.await {
                        Ok(t) => me.put(org, Arc::new(t)),
                        Err(_) => me.refresh_failed(org),
                    }
                });
                Ok(v)
            }
            Lookup::Missing => {
                let v = Arc::new(compute().await?);
                self.put(org, v.clone());
                Ok(v)
            }
        }
    }
}

/// The dashboard's fleet-wide views.
#[derive(Default)]
pub struct FleetViews {
    summaries: Arc<ViewCache<Summary>>,
    advisories: Arc<ViewCache<Vec<AdvisoryCount>>>,
    counts: Arc<ViewCache<FleetCounts>>,
    families: Arc<ViewCache<Vec<String>>>,
}

impl FleetViews {
    /// The vulnerable findings of `org`'s hosts by severity (see the module docs for
    /// how old it may be); an error while the engine loads.
    pub async fn summary(
        &self,
        engine: &Arc<VulnEngine>,
        org: Uuid,
    ) -> Result<Arc<Summary>, EngineError> {
        let engine = engine.clone();
        self.summaries
            .serve(
                org,
                FRESH_FOR,
                move || async move { engine.summary(org).await },
            )
            .await
    }

    /// Every advisory with vulnerable hosts in `org` and their counts (see the module
    /// docs for how old it may be); an error while the engine loads.
    pub async fn advisories(
        &self,
        engine: &Arc<VulnEngine>,
        org: Uuid,
    ) -> Result<Arc<Vec<AdvisoryCount>>, EngineError> {
        let engine = engine.clone();
        self.advisories
            .serve(org, FRESH_FOR, move || async move {
                engine.advisories(org).await
            })
            .await
    }

    /// `org`'s hosts counted by status, updates and agent version (the overview's
    /// counts, see the module docs for how old they may be); a host seen within
    /// `offline_after` of the time of counting is online.
    pub async fn fleet_counts(
        &self,
        store: &Arc<dyn Storage>,
        org: Uuid,
        offline_after: chrono::Duration,
    ) -> Result<Arc<FleetCounts>, StorageError> {
        let store = store.clone();
        self.counts
            .serve(org, FRESH_FOR, move || async move {
                let now = chrono::Utc::now();
                let since = now.checked_sub_signed(offline_after).unwrap_or(now);
                store.fleet_counts(org, since).await
            })
            .await
    }
}

impl FleetViews {
    /// The package managers of `org`'s hosts, the host list's family filter (see the
    /// module docs for how old it may be).
    pub async fn package_managers(
        &self,
        store: &Arc<dyn Storage>,
        org: Uuid,
    ) -> Result<Arc<Vec<String>>, StorageError> {
        let store = store.clone();
        self.families
            .serve(org, FRESH_FOR, move || async move {
                store.host_package_managers(org).await
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stale_view_is_served_while_one_recompute_runs() {
        let c: ViewCache<u32> = ViewCache::default();
        let org = Uuid::new_v4();
        assert!(matches!(c.lookup(org, FRESH_FOR), Lookup::Missing));
        c.put(org, Arc::new(1));
        assert!(matches!(c.lookup(org, FRESH_FOR), Lookup::Fresh(v) if *v == 1));
        // Old: the first asker starts the recompute, the others get the old value.
        assert!(matches!(c.lookup(org, Duration::ZERO), Lookup::Stale(v) if *v == 1));
        assert!(matches!(c.lookup(org, Duration::ZERO), Lookup::Fresh(v) if *v == 1));
        c.put(org, Arc::new(2));
        assert!(matches!(c.lookup(org, FRESH_FOR), Lookup::Fresh(v) if *v == 2));
        // A failed recompute lets the next asker try again.
        assert!(matches!(c.lookup(org, Duration::ZERO), Lookup::Stale(_)));
        c.refresh_failed(org);
        assert!(matches!(c.lookup(org, Duration::ZERO), Lookup::Stale(_)));
    }
}
