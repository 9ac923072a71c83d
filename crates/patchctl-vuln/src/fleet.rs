//! Incremental correlation of a whole fleet.
//!
//! [`Fleet`] holds the [`Index`], every host's [`Probe`]s and, per probe, the
//! [`Hit`]s that decide it. Work is shared and never redone:
//!
//! * Decisions are cached by `(ecosystems, key, version, matched_by)`: hosts with the
//!   same package at the same version in the same release share one evaluation.
//! * [`Fleet::set_host`]: when an inventory changes, only the host's new probes are
//!   evaluated (unchanged packages keep their decisions).
//! * [`Fleet::apply`]: when records change, only the `(ecosystem, package)` keys they
//!   touch are invalidated and re-evaluated, for the hosts that have them.
//!
//! Findings are materialized from hits on demand ([`Fleet::host_findings`]).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use patchctl_proto::agent::InstalledPackage;
use uuid::Uuid;

use crate::matcher::{self, Finding, Hit, Index, MatchedBy, Probe, SourcedRecord};
use crate::severity::Severity;

type CacheKey = (Arc<[String]>, String, String, MatchedBy);

fn cache_key(p: &Probe) -> CacheKey {
    (
        Arc::clone(&p.ecosystems),
        p.key.clone(),
        p.version.clone(),
        p.matched_by,
    )
}

#[derive(Debug, Default)]
struct HostState {
    ecosystems: Vec<String>,
    probes: Vec<(Probe, Arc<[Hit]>)>,
}

/// Counters of the work done, for tests and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Work {
    /// Probes decided by evaluating the index (cache misses).
    pub evaluated: u64,
    /// Probes answered from the cache.
    pub shared: u64,
    /// Probes kept from the host's previous inventory.
    pub kept: u64,
}

/// Findings of the fleet by severity.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Summary {
    /// Hosts correlated.
    pub hosts: u64,
    /// Hosts with at least one vulnerable finding.
    pub vulnerable_hosts: u64,
    /// Vulnerable findings per severity name (`critical`, `high`, ...).
    pub by_severity: BTreeMap<String, u64>,
    /// Of the vulnerable findings, the fixable ones.
    pub fixable: u64,
    /// Vulnerable findings.
    pub vulnerable: u64,
    /// Distinct advisories with a vulnerable finding somewhere.
    pub advisories: u64,
}

/// The fleet's correlation state.
#[derive(Debug, Default)]
pub struct Fleet {
    index: Index,
    hosts: HashMap<Uuid, HostState>,
    cache: HashMap<CacheKey, Arc<[Hit]>>,
    /// `(ecosystem, key)` → hosts with a probe on it.
    users: HashMap<(String, String), HashSet<Uuid>>,
    work: Work,
}

impl Fleet {
    /// A fleet over an index, with no hosts yet.
    pub fn new(index: Index) -> Fleet {
        Fleet {
            index,
            ..Fleet::default()
        }
    }

    /// The index.
    pub fn index(&self) -> &Index {
        &self.index
    }

    /// Work done so far.
    pub fn work(&self) -> Work {
        self.work
    }

    /// Hosts correlated.
    pub fn host_count(&self) -> usize {
        self.hosts.len()
    }

    fn decide(&mut self, probe: &Probe) -> Arc<[Hit]> {
        let key = cache_key(probe);
        if let Some(hits) = self.cache.get(&key) {
            self.work.shared += 1;
            return Arc::clone(hits);
        }
        self.work.evaluated += 1;
        let hits: Arc<[Hit]> = self.index.evaluate(probe).into();
        self.cache.insert(key, Arc::clone(&hits));
        hits
    }

    /// Sets (or replaces) a host's inventory; only probes the host did not have before
    /// are decided.
    pub fn set_host(
        &mut self,
        id: Uuid,
        ecosystems: &[String],
        running_kernel: Option<&str>,
        packages: &[InstalledPackage],
    ) {
        let new = matcher::probes(&self.index, ecosystems, running_kernel, packages);
        let mut old: HashMap<CacheKey, Arc<[Hit]>> = HashMap::new();
        if let Some(prev) = self.hosts.remove(&id) {
            for (p, hits) in prev.probes {
                self.unuse(id, &p);
                old.insert(cache_key(&p), hits);
            }
        }
        let mut probes = Vec::with_capacity(new.len());
        for p in new {
            let hits = match old.get(&cache_key(&p)) {
                Some(h) => {
                    self.work.kept += 1;
                    Arc::clone(h)
                }
                None => self.decide(&p),
            };
            for eco in p.ecosystems.iter() {
                self.users
                    .entry((eco.clone(), p.key.clone()))
                    .or_default()
                    .insert(id);
            }
            probes.push((p, hits));
        }
        self.hosts.insert(
            id,
            HostState {
                ecosystems: ecosystems.to_vec(),
                probes,
            },
        );
    }

    fn unuse(&mut self, id: Uuid, p: &Probe) {
        for eco in p.ecosystems.iter() {
            let k = (eco.clone(), p.key.clone());
            if let Some(set) = self.users.get_mut(&k) {
                set.remove(&id);
                if set.is_empty() {
                    self.users.remove(&k);
                }
            }
        }
    }

    /// Forgets a host.
    pub fn remove_host(&mut self, id: Uuid) {
        if let Some(prev) = self.hosts.remove(&id) {
            for (p, _) in prev.probes {
                self.unuse(id, &p);
            }
        }
    }

    /// Adds or replaces records (and removes `(source, id)` pairs in `removed`), then
    /// re-decides only the probes on the `(ecosystem, package)` keys that changed.
    /// Returns how many host probes were re-decided.
    pub fn apply(
        &mut self,
        records: impl IntoIterator<Item = SourcedRecord>,
        removed: &[(String, String)],
    ) -> usize {
        let mut touched: HashSet<(String, String)> = HashSet::new();
        for r in records {
            touched.extend(self.index.upsert(r));
        }
        for (source, id) in removed {
            touched.extend(self.index.remove(source, id));
        }
        if touched.is_empty() {
            return 0;
        }
        self.cache.retain(|k, _| {
            !k.0.iter()
                .any(|e| touched.contains(&(e.clone(), k.1.clone())))
        });
        let mut hosts: HashSet<Uuid> = HashSet::new();
        for k in &touched {
            if let Some(users) = self.users.get(k) {
                hosts.extend(users.iter().copied());
            }
        }
        let mut redone = 0;
        for id in hosts {
            let Some(mut state) = self.hosts.remove(&id) else {
                continue;
            };
            for (p, hits) in state.probes.iter_mut() {
                if p.ecosystems
                    .iter()
                    .any(|e| touched.contains(&(e.clone(), p.key.clone())))
                {
                    *hits = self.decide(p);
                    redone += 1;
                }
            }
            self.hosts.insert(id, state);
        }
        redone
    }

    /// A host's findings, most important first; `None` for an unknown host.
    pub fn host_findings(&self, id: Uuid) -> Option<Vec<Finding>> {
        let state = self.hosts.get(&id)?;
        let mut out: Vec<Finding> = state
            .probes
            .iter()
            .flat_map(|(p, hits)| hits.iter().map(move |h| matcher::finding(h, p)))
            .collect();
        matcher::sort_findings(&mut out);
        Some(out)
    }

    /// The ecosystems a host is matched against.
    pub fn host_ecosystems(&self, id: Uuid) -> Option<&[String]> {
        self.hosts.get(&id).map(|h| h.ecosystems.as_slice())
    }

    /// Every host with a finding about `id` (an advisory id or a CVE id), among `hosts`
    /// (or all when `None`).
    pub fn hosts_with(&self, id: &str, hosts: Option<&HashSet<Uuid>>) -> Vec<(Uuid, Finding)> {
        let mut out = Vec::new();
        for (host, state) in &self.hosts {
            if hosts.is_some_and(|h| !h.contains(host)) {
                continue;
            }
            for (p, hits) in &state.probes {
                for h in hits.iter() {
                    let a = h.advisory();
                    if a.id == id || a.aliases.iter().any(|x| x == id) {
                        out.push((*host, matcher::finding(h, p)));
                    }
                }
            }
        }
        out.sort_by(|a, b| (a.0, &a.1.package).cmp(&(b.0, &b.1.package)));
        out
    }

    /// Vulnerable findings by severity over `hosts` (or all).
    pub fn summary(&self, hosts: Option<&HashSet<Uuid>>) -> Summary {
        let mut s = Summary::default();
        let mut advisories: HashSet<&str> = HashSet::new();
        for (host, state) in &self.hosts {
            if hosts.is_some_and(|h| !h.contains(host)) {
                continue;
            }
            s.hosts += 1;
            let mut any = false;
            for (p, hits) in &state.probes {
                for h in hits.iter() {
                    if !matcher::is_vulnerable(&h.status) {
                        continue;
                    }
                    any = true;
                    let f = matcher::finding(h, p);
                    s.vulnerable += 1;
                    s.fixable += u64::from(f.fixable);
                    *s.by_severity
                        .entry(f.severity.name().to_string())
                        .or_default() += 1;
                    advisories.insert(&h.advisory().id);
                }
            }
            s.vulnerable_hosts += u64::from(any);
        }
        for sev in Severity::ALL {
            s.by_severity.entry(sev.name().to_string()).or_default();
        }
        s.advisories = advisories.len() as u64;
        s
    }
}
