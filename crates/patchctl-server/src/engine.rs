//! The CVE engine: the fleet's [`Fleet`] kept current, and the views the vulnerability
//! API answers with.
//!
//! The engine loads every stored record and every host's inventory once (in the
//! background: its views answer [`EngineError::Loading`] until then), then stays current
//! incrementally:
//!
//! * a stored scan or inventory re-probes that host only ([`VulnEngine::host_changed`]);
//! * a change of the vulnerability database (an import by this process, or by
//!   `patchctl vulndb import` against the same database: the stored generation moved) is
//!   diffed record by record (digests) and only the changed records' `(ecosystem,
//!   package)` keys are re-decided ([`VulnEngine::refresh_db`], run before each view and
//!   every [`REFRESH_EVERY`]).
//!
//! Its state is private: the handlers (`api::vulns`, `api::hosts`, `api::commands`,
//! `api::scans`) use only the methods below ([`VulnEngine::host_findings`],
//! [`VulnEngine::hosts_for`], [`VulnEngine::summary`], [`VulnEngine::annotate_updates`],
//! [`VulnEngine::host_changed_later`]). The engine knows nothing of HTTP; `error.rs`
//! turns an [`EngineError`] into a status code.
//!
//! Every node of a multi-node (PostgreSQL) deployment keeps its own engine over the same
//! database; the generation check keeps them in step.
//!
//! For `/metrics` the engine tells its size ([`VulnEngine::stats`]) and hands the time
//! of each re-correlation to an observer ([`VulnEngine::observe_recorrelation`]); it
//! knows nothing of the metrics themselves.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use patchctl_storage::{HostRow, Storage, StorageError};
use patchctl_vuln::coverage::Coverage;
use patchctl_vuln::ecosystem::{esm_installed, host_ecosystems};
use patchctl_vuln::fleet::{AdvisoryCount, Fleet, Summary};
use patchctl_vuln::matcher::{Finding, Index, SourcedRecord};
use patchctl_vuln::report::{AdvisoryHosts, AffectedHost, Filter, HostFindings};
use tokio::sync::RwLock;
use uuid::Uuid;

mod remediation;
#[cfg(test)]
mod tests;
pub use remediation::{
    ComplianceView, Deadlines, OverdueFilter, severity as policy_severity, tally,
};

/// Why a view of the engine could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The initial load has not finished yet.
    #[error("vulnerability correlation is still loading; retry in a few seconds")]
    Loading,
    /// The vulnerability database could not be read to bring the engine up to date.
    #[error("the vulnerability database cannot be read right now ({0}); retry shortly")]
    Refresh(#[source] StorageError),
    /// Another storage read the view needs (the organisation's hosts) failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// How often the engine checks the database generation on its own.
pub const REFRESH_EVERY: Duration = Duration::from_secs(30);

#[derive(Default)]
struct Inner {
    fleet: Fleet,
    digests: HashMap<(String, String), String>,
    generation: i64,
    hostnames: HashMap<Uuid, String>,
    packages: HashMap<Uuid, u64>,
    /// Each host's organisation (first-seen rows name it).
    orgs: HashMap<Uuid, Uuid>,
    /// When each vulnerable finding was first seen.
    seen: remediation::Seen,
}

impl Inner {
    /// A host's ecosystems (as correlated, or from its stored os-release when it never
    /// sent a scan) and what the imported data says about them.
    fn release_of(&self, h: &HostRow) -> (Vec<String>, Coverage) {
        let ecosystems = match self.fleet.host_ecosystems(h.id) {
            Some(e) => e.to_vec(),
            None => ecosystems_of(h, &[]),
        };
        let coverage = patchctl_vuln::coverage::coverage(self.fleet.index(), &ecosystems);
        (ecosystems, coverage)
    }
}

/// What a re-correlation was about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorrelation {
    /// The initial load: every record and every host.
    Load,
    /// A change of the vulnerability database: the changed records' packages.
    Database,
    /// One host after its scan or inventory.
    Host,
}

impl Recorrelation {
    /// Every kind.
    pub const ALL: [Recorrelation; 3] = [
        Recorrelation::Load,
        Recorrelation::Database,
        Recorrelation::Host,
    ];

    /// The name (`load`, `database`, `host`).
    pub fn as_str(self) -> &'static str {
        match self {
            Recorrelation::Load => "load",
            Recorrelation::Database => "database",
            Recorrelation::Host => "host",
        }
    }
}

/// Called with the kind and the time of every re-correlation.
pub type RecorrelationObserver = Box<dyn Fn(Recorrelation, Duration) + Send + Sync>;

/// The engine's size, for `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// The database generation the engine is at.
    pub generation: i64,
    /// Vulnerability records loaded.
    pub records: u64,
    /// Entries of the index (records as the matcher holds them).
    pub entries: u64,
    /// Hosts correlated.
    pub hosts: u64,
    /// Of those, hosts with at least one vulnerable finding.
    pub vulnerable_hosts: u64,
    /// Of those, hosts whose release has no imported data (unknown, not safe).
    pub hosts_without_data: u64,
    /// Hosts without data per release label.
    pub without_data: BTreeMap<String, u64>,
}

/// The fleet's correlation, shared by the handlers.
pub struct VulnEngine {
    store: Arc<dyn Storage>,
    inner: RwLock<Inner>,
    /// Taken shared by every host re-probe and exclusively by every (re)load, for its
    /// whole run. A load reads the whole store and then replaces the state: a re-probe
    /// that read and wrote between the load's read and its replace would be overwritten
    /// by the older state, its host's newest scan lost until the next one (6 h later).
    /// With this, a re-probe runs wholly before a load (which then reads its scan) or
    /// wholly after it.
    loading: RwLock<()>,
    ready: AtomicBool,
    observer: OnceLock<RecorrelationObserver>,
    /// Tests only: a load waits here between its reads and its replace.
    #[cfg(test)]
    pause_before_replace: tests::Pause,
}

/// The ecosystems of a stored host: its os-release, plus Ubuntu Pro when the host has
/// ESM packages installed (their versions carry `+esm`).
pub fn ecosystems_of(
    h: &HostRow,
    packages: &[patchctl_proto::agent::InstalledPackage],
) -> Vec<String> {
    host_ecosystems(
        &h.system.os,
        esm_installed(&h.system.os, packages),
        kernel_of(h),
    )
}

fn kernel_of(h: &HostRow) -> Option<&str> {
    Some(h.system.kernel.as_str()).filter(|k| !k.is_empty())
}

impl VulnEngine {
    /// An empty engine; call [`VulnEngine::load`].
    pub fn new(store: Arc<dyn Storage>) -> Arc<VulnEngine> {
        Arc::new(VulnEngine {
            store,
            inner: RwLock::new(Inner::default()),
            loading: RwLock::new(()),
            ready: AtomicBool::new(false),
            observer: OnceLock::new(),
            #[cfg(test)]
            pause_before_replace: tests::Pause::default(),
        })
    }

    /// Hands the time of every later re-correlation to `observer` (the first observer
    /// set stays; false when one was set already).
    pub fn observe_recorrelation(&self, observer: RecorrelationObserver) -> bool {
        self.observer.set(observer).is_ok()
    }

    fn timed(&self, kind: Recorrelation, started: Instant) {
        if let Some(observe) = self.observer.get() {
            observe(kind, started.elapsed());
        }
    }

    /// The engine's size and the hosts without data; `None` while it is loading (so
    /// that "no data yet" never reads as zero).
    pub async fn stats(&self) -> Option<EngineStats> {
        if !self.is_ready() {
            return None;
        }
        let inner = self.inner.read().await;
        let summary = inner.fleet.summary(None);
        Some(EngineStats {
            generation: inner.generation,
            records: inner.digests.len() as u64,
            entries: inner.fleet.index().len() as u64,
            hosts: inner.fleet.host_count() as u64,
            vulnerable_hosts: summary.vulnerable_hosts,
            hosts_without_data: summary.hosts_without_data,
            without_data: summary.without_data,
        })
    }

    /// Whether the initial load finished.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Loads every record and every host, then marks the engine ready.
    pub async fn load(&self) -> Result<(), StorageError> {
        let _exclusive = self.loading.write().await;
        let started = Instant::now();
        let generation = self.store.vuln_generation().await?;
        let stored = self.store.vuln_records().await?;
        let mut digests = HashMap::with_capacity(stored.len());
        let records: Vec<SourcedRecord> = stored
            .into_iter()
            .map(|s| {
                digests.insert((s.source.clone(), s.record.id.clone()), s.digest);
                SourcedRecord {
                    source: s.source,
                    imported_at: Some(s.imported_at),
                    record: s.record,
                }
            })
            .collect();
        let mut fleet = Fleet::new(Index::build(records));
        let mut hostnames = HashMap::new();
        let mut counts = HashMap::new();
        let mut orgs = HashMap::new();
        for h in self.store.all_hosts().await? {
            let packages = self.store.host_packages(h.org_id, h.id).await?;
            fleet.set_host(
                h.id,
                &ecosystems_of(&h, &packages),
                kernel_of(&h),
                &packages,
            );
            hostnames.insert(h.id, h.hostname.clone());
            counts.insert(h.id, packages.len() as u64);
            orgs.insert(h.id, h.org_id);
        }
        let mut seen = remediation::Seen::default();
        seen.load(self.store.all_first_seen().await?);
        let hosts = fleet.host_count();
        let entries = fleet.index().len();
        #[cfg(test)]
        self.pause_before_replace.wait().await;
        *self.inner.write().await = Inner {
            fleet,
            digests,
            generation,
            hostnames,
            packages: counts,
            orgs,
            seen,
        };
        // the fleet's history: recorded, not announced
        self.first_seen_now(None, false).await;
        self.ready.store(true, Ordering::Release);
        self.timed(Recorrelation::Load, started);
        tracing::info!(
            hosts,
            entries,
            generation,
            "vulnerability correlation loaded"
        );
        Ok(())
    }

    /// Re-probes one host after its inventory changed. It reads the stored state rather
    /// than taking the scan it follows: two scans of one host re-probed out of order
    /// still end on the newest. It waits while a load runs (`loading`).
    pub async fn host_changed(&self, org: Uuid, host: Uuid) -> Result<(), StorageError> {
        let _shared = self.loading.read().await;
        let Some(h) = self.store.host(org, host).await? else {
            return Ok(());
        };
        let packages = self.store.host_packages(org, host).await?;
        let started = Instant::now();
        let mut inner = self.inner.write().await;
        if h.revoked {
            inner.fleet.remove_host(host);
            return Ok(());
        }
        inner.fleet.set_host(
            h.id,
            &ecosystems_of(&h, &packages),
            kernel_of(&h),
            &packages,
        );
        inner.hostnames.insert(h.id, h.hostname);
        inner.packages.insert(h.id, packages.len() as u64);
        inner.orgs.insert(h.id, h.org_id);
        drop(inner);
        self.timed(Recorrelation::Host, started);
        self.first_seen_now(Some(&HashSet::from([host])), true)
            .await;
        Ok(())
    }

    /// [`VulnEngine::host_changed`] in the background (the agent's request does not
    /// wait for it); a failure is logged and the next scan corrects it.
    pub fn host_changed_later(self: &Arc<Self>, org: Uuid, host: Uuid) {
        let engine = Arc::clone(self);
        tokio::spawn(async move {
            if let Err(e) = engine.host_changed(org, host).await {
                tracing::warn!(%host, error = %e, "could not re-correlate the host after its scan");
            }
        });
    }

    /// Loads everything again in the background, once the initial load is done (after
    /// announcements of other nodes' scans may have been missed: `crate::changes`).
    /// Re-probes wait for it and then apply on top of it (`loading`).
    pub fn reload_later(self: &Arc<Self>) {
        if !self.is_ready() {
            return;
        }
        let engine = Arc::clone(self);
        tokio::spawn(async move {
            if let Err(e) = engine.load().await {
                tracing::warn!(error = %e, "could not reload the vulnerability correlation; it keeps its current state");
            }
        });
    }

    /// Applies the database's changes since the engine last looked (nothing when the
    /// generation did not move). Returns the host probes re-decided.
    pub async fn refresh_db(&self) -> Result<usize, StorageError> {
        let generation = self.store.vuln_generation().await?;
        if generation == self.inner.read().await.generation || !self.is_ready() {
            return Ok(0);
        }
        let started = Instant::now();
        let stored = self.store.vuln_records().await?;
        let mut inner = self.inner.write().await;
        if inner.generation == generation {
            return Ok(0);
        }
        let mut seen = HashSet::with_capacity(stored.len());
        let mut changed = Vec::new();
        for s in stored {
            let key = (s.source.clone(), s.record.id.clone());
            let digest = s.digest;
            seen.insert(key.clone());
            if inner.digests.get(&key) != Some(&digest) {
                inner.digests.insert(key, digest);
                changed.push(SourcedRecord {
                    source: s.source,
                    imported_at: Some(s.imported_at),
                    record: s.record,
                });
            }
        }
        let removed: Vec<(String, String)> = inner
            .digests
            .keys()
            .filter(|k| !seen.contains(*k))
            .cloned()
            .collect();
        for k in &removed {
            inner.digests.remove(k);
        }
        let records = changed.len();
        let redone = inner.fleet.apply(changed, &removed);
        inner.generation = generation;
        drop(inner);
        self.timed(Recorrelation::Database, started);
        if redone > 0 {
            self.first_seen_now(None, true).await;
        }
        tracing::info!(
            records,
            removed = removed.len(),
            redone,
            generation,
            "vulnerability data changed; re-correlated the affected packages"
        );
        Ok(redone)
    }

    /// Loads in the background and keeps the engine current every [`REFRESH_EVERY`].
    pub fn spawn(self: &Arc<Self>) {
        let engine = Arc::clone(self);
        tokio::spawn(async move {
            if let Err(e) = engine.load().await {
                tracing::error!(error = %e, "vulnerability correlation could not load; vulnerability views answer 503");
                return;
            }
            loop {
                tokio::time::sleep(REFRESH_EVERY).await;
                if let Err(e) = engine.refresh_db().await {
                    tracing::warn!(error = %e, "vulnerability database check failed; retrying");
                }
            }
        });
    }

    /// Ready and up to date with the database, or why not.
    async fn current(&self) -> Result<(), EngineError> {
        if !self.is_ready() {
            return Err(EngineError::Loading);
        }
        self.refresh_db().await.map_err(|e| {
            tracing::warn!(error = %e, "vulnerability database check failed");
            EngineError::Refresh(e)
        })?;
        Ok(())
    }

    /// The organisation's hosts the views may show (revoked ones are not).
    async fn org_hosts(&self, org: Uuid) -> Result<HashSet<Uuid>, StorageError> {
        // only the ids: reading every host's row would cost more than the views
        Ok(self.store.active_host_ids(org).await?.into_iter().collect())
    }

    /// Marks the updates that reach a fixed version of one of the host's findings as
    /// security updates and lists those findings' advisories on them (kind `security`),
    /// beside what the repository metadata said. Nothing changes while the engine is
    /// still loading.
    pub async fn annotate_updates(
        &self,
        host: Uuid,
        updates: &mut patchctl_proto::api::HostUpdates,
    ) {
        if !self.is_ready() {
            return;
        }
        let inner = self.inner.read().await;
        let Some(findings) = inner.fleet.host_findings(host) else {
            return;
        };
        let mut security = 0;
        for u in &mut updates.updates {
            for f in findings
                .iter()
                .filter(|f| f.fixable && f.binaries.contains(&u.name))
            {
                if fixes(f, u) && !u.advisories.iter().any(|a| a.id == f.advisory) {
                    u.advisories.push(patchctl_proto::command::Advisory {
                        id: f.advisory.clone(),
                        kind: Some("security".into()),
                        severity: Some(f.severity.name().into()),
                    });
                    u.security = true;
                }
            }
            security += u64::from(u.security);
        }
        updates.security_update_count = security;
    }

    /// What vulnerability data covers a host's release, in words (see
    /// `HostSummary::vulnerability_data`); `None` while the engine is loading. Its
    /// ecosystems come from the stored os-release (and packages, for Ubuntu Pro), so a
    /// host that never sent a scan is told too.
    pub async fn data_words(&self, h: &HostRow) -> Option<String> {
        if !self.is_ready() {
            return None;
        }
        let (_, coverage) = self.inner.read().await.release_of(h);
        Some(coverage.words())
    }

    /// The findings of one host (all, unfiltered), if the engine knows it. Does not
    /// wait for the initial load nor look at the database generation.
    pub async fn findings(&self, host: Uuid) -> Option<Vec<Finding>> {
        self.inner.read().await.fleet.host_findings(host)
    }

    /// The view of one host (already resolved within its organisation): its
    /// ecosystems, package count and the findings `filter` keeps.
    pub async fn host_findings(
        &self,
        host: &HostRow,
        filter: &Filter,
    ) -> Result<HostFindings, EngineError> {
        self.current().await?;
        let ctx = self.deadlines(host.org_id, chrono::Utc::now()).await?;
        let inner = self.inner.read().await;
        let findings = inner.fleet.host_findings(host.id).unwrap_or_default();
        // a host that never sent a scan: its os-release still says what data applies
        let (ecosystems, coverage) = inner.release_of(host);
        let mut view = HostFindings::new(
            Some(host.id),
            host.hostname.clone(),
            ecosystems,
            coverage,
            inner.packages.get(&host.id).copied().unwrap_or(0),
            findings,
            filter,
        );
        let excepted = VulnEngine::annotate(&inner.seen, &ctx, host.id, &mut view.findings);
        view.fixable -= excepted;
        Ok(view)
    }

    /// The hosts of `org` (not revoked) with a finding about advisory or CVE `id` that
    /// `filter` keeps.
    pub async fn hosts_for(
        &self,
        org: Uuid,
        id: String,
        filter: &Filter,
    ) -> Result<AdvisoryHosts, EngineError> {
        let hosts = self.org_hosts(org).await?;
        self.current().await?;
        let ctx = self.deadlines(org, chrono::Utc::now()).await?;
        let inner = self.inner.read().await;
        let hosts = inner
            .fleet
            .hosts_with(&id, Some(&hosts))
            .into_iter()
            .filter(|(_, f)| filter.keep(f))
            .map(|(host_id, mut finding)| {
                VulnEngine::annotate(
                    &inner.seen,
                    &ctx,
                    host_id,
                    std::slice::from_mut(&mut finding),
                );
                AffectedHost {
                    host_id,
                    hostname: inner.hostnames.get(&host_id).cloned().unwrap_or_default(),
                    finding,
                }
            })
            .collect();
        Ok(AdvisoryHosts { id, hosts })
    }

    /// Every advisory with a vulnerable finding on one of `org`'s hosts (not revoked),
    /// with the number of those hosts, most severe first.
    pub async fn advisories(&self, org: Uuid) -> Result<Vec<AdvisoryCount>, EngineError> {
        let hosts = self.org_hosts(org).await?;
        self.current().await?;
        Ok(self.inner.read().await.fleet.advisories(Some(&hosts)))
    }

    /// The vulnerable findings of `org`'s hosts (not revoked) by severity.
    pub async fn summary(&self, org: Uuid) -> Result<Summary, EngineError> {
        let hosts = self.org_hosts(org).await?;
        self.current().await?;
        let ctx = self.deadlines(org, chrono::Utc::now()).await?;
        let inner = self.inner.read().await;
        let mut summary = inner.fleet.summary(Some(&hosts));
        summary.excepted = ctx.excepted_fixable(&inner, &hosts);
        summary.fixable -= summary.excepted.min(summary.fixable);
        Ok(summary)
    }
}

/// Whether installing update `u` reaches the fixed version of finding `f`: the
/// candidate is compared in the record's terms (the source version, derived from the
/// binary candidate the way the installed source version derives from the installed
/// binary, for source-keyed ecosystems).
pub fn fixes(f: &Finding, u: &patchctl_proto::command::AvailableUpdate) -> bool {
    let (Some(fixed), Some(rules)) = (
        f.status.fixed_version(),
        patchctl_vuln::ecosystem::rules(&f.ecosystem),
    ) else {
        return false;
    };
    let candidate = match (f.matched_by, &u.current_version) {
        (patchctl_vuln::matcher::MatchedBy::Source, Some(current)) => {
            patchctl_vuln::matcher::candidate_source_version(
                current,
                Some(&f.installed_version),
                &u.candidate_version,
            )
        }
        _ => u.candidate_version.clone(),
    };
    rules
        .scheme
        .compare(&candidate, fixed)
        .is_ok_and(|o| o != std::cmp::Ordering::Less)
}
