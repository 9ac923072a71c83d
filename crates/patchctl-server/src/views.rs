//! The fleet-wide views of the CVE engine the dashboard shows on every load (the
//! overview's vulnerable hosts by severity, the vulnerabilities page), kept per
//! organisation and served stale while one background task recomputes them.
//!
//! Computing a view walks every host of the organisation in the engine (about 0.7 s
//! for 100,000 hosts on the reference machine: docs/benchmarks.md), which a page that
//! must render in 150 ms cannot do on every request. A view younger than
//! [`FRESH_FOR`] is served as it is; an older one is served too, while a single
//! recompute runs in the background; only the very first request of an organisation
//! waits for one. So the dashboard's fleet-wide counts are at most [`FRESH_FOR`] plus
//! one recompute old. The API (`/api/v1/vulns/summary`) always computes afresh.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

/// The dashboard's fleet-wide views.
#[derive(Default)]
pub struct FleetViews {
    summaries: ViewCache<Summary>,
    advisories: ViewCache<Vec<AdvisoryCount>>,
    fresh_for: Option<Duration>,
}

impl FleetViews {
    /// Views served for `fresh_for` before a background recompute (tests: zero).
    pub fn with_freshness(fresh_for: Duration) -> FleetViews {
        FleetViews {
            fresh_for: Some(fresh_for),
            ..FleetViews::default()
        }
    }

    fn fresh_for(&self) -> Duration {
        self.fresh_for.unwrap_or(FRESH_FOR)
    }

    /// The vulnerable findings of `org`'s hosts by severity (see the module docs for
    /// how old it may be); an error while the engine loads.
    pub async fn summary(
        self: &Arc<Self>,
        engine: &Arc<VulnEngine>,
        org: Uuid,
    ) -> Result<Arc<Summary>, EngineError> {
        match self.summaries.lookup(org, self.fresh_for()) {
            Lookup::Fresh(v) => Ok(v),
            Lookup::Stale(v) => {
                let (me, engine) = (self.clone(), engine.clone());
                tokio::spawn(async move {
                    match engine.summary(org).await {
                        Ok(s) => me.summaries.put(org, Arc::new(s)),
                        Err(_) => me.summaries.refresh_failed(org),
                    }
                });
                Ok(v)
            }
            Lookup::Missing => {
                let v = Arc::new(engine.summary(org).await?);
                self.summaries.put(org, v.clone());
                Ok(v)
            }
        }
    }

    /// Every advisory with vulnerable hosts in `org` and their counts (see the module
    /// docs for how old it may be); an error while the engine loads.
    pub async fn advisories(
        self: &Arc<Self>,
        engine: &Arc<VulnEngine>,
        org: Uuid,
    ) -> Result<Arc<Vec<AdvisoryCount>>, EngineError> {
        match self.advisories.lookup(org, self.fresh_for()) {
            Lookup::Fresh(v) => Ok(v),
            Lookup::Stale(v) => {
                let (me, engine) = (self.clone(), engine.clone());
                tokio::spawn(async move {
                    match engine.advisories(org).await {
                        Ok(a) => me.advisories.put(org, Arc::new(a)),
                        Err(_) => me.advisories.refresh_failed(org),
                    }
                });
                Ok(v)
            }
            Lookup::Missing => {
                let v = Arc::new(engine.advisories(org).await?);
                self.advisories.put(org, v.clone());
                Ok(v)
            }
        }
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
