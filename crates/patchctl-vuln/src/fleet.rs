//! Incremental correlation of a whole fleet.
//!
//! [`Fleet`] holds the [`Index`], one shared *decision* per distinct
//! `(ecosystems, key, fallback key, version)` any host has, and per host only references
//! to those decisions (with the host's own binary names). Strings are interned, so
//! correlating a host allocates nothing for packages the fleet has seen before. Work is
//! shared and never redone:
//!
//! * Hosts with the same package at the same version in the same release share one
//!   evaluation.
//! * [`Fleet::set_host`]: when an inventory changes, only decisions the fleet has never
//!   made are evaluated.
//! * [`Fleet::apply`]: when records change, only the decisions on the `(ecosystem,
//!   package)` keys they touch are re-evaluated, once each, whatever the number of
//!   hosts that share them.
//!
//! Findings are materialized from decisions on demand ([`Fleet::host_findings`]);
//! per-decision counts make [`Fleet::summary`] a sum.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use patchctl_proto::agent::InstalledPackage;
use uuid::Uuid;

use crate::coverage::{self, Coverage, DataLevel};
use crate::ecosystem::{self, KeyedBy};
use crate::matcher::{self, Finding, Hit, Index, Probe, SourcedRecord};
use crate::severity::Severity;

mod walk;
pub use walk::VulnHit;

/// FNV-1a: the keys hashed here are small integers and short names from our own
/// tables, not attacker-chosen at a rate that would matter.
#[derive(Default, Clone, Copy)]
struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for b in bytes {
            h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<Fnv>>;

const NONE: u32 = u32::MAX;

/// Interned strings.
#[derive(Debug, Default)]
struct Strings {
    ids: FastMap<Box<str>, u32>,
    names: Vec<Box<str>>,
}

impl Strings {
    fn id(&mut self, s: &str) -> u32 {
        if let Some(id) = self.ids.get(s) {
            return *id;
        }
        let id = self.names.len() as u32;
        self.names.push(s.into());
        self.ids.insert(s.into(), id);
        id
    }

    fn get(&self, s: &str) -> Option<u32> {
        self.ids.get(s).copied()
    }

    fn name(&self, id: u32) -> &str {
        &self.names[id as usize]
    }
}

/// What a decision is about: (ecosystem set, key, fallback key, version).
type DecisionKey = (u32, u32, u32, u32);

/// One shared decision.
#[derive(Debug)]
struct Decision {
    key: DecisionKey,
    /// The probe as decided (its binaries are each host's own).
    probe: Probe,
    hits: Arc<[Hit]>,
    /// Vulnerable hits per severity (indexed like [`Severity::ALL`]), fixable ones.
    by_severity: [u32; 6],
    fixable: u32,
    /// Hits whose versions could not be compared.
    unknown: u32,
}

/// One host's reference to a decision; its binaries are
/// `HostState::binaries[start..start + len]` (12 bytes a probe, no allocation of its
/// own: a fleet of 10,000 hosts holds 15 million of them).
#[derive(Debug, Clone, Copy)]
struct HostProbe {
    decision: u32,
    start: u32,
    len: u32,
}

#[derive(Debug, Default)]
struct HostState {
    ecos: u32,
    probes: Vec<HostProbe>,
    binaries: Vec<u32>,
}

/// Counters of the work done, for tests and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Work {
    /// Decisions evaluated against the index.
    pub evaluated: u64,
    /// Host probes answered by a decision already made.
    pub shared: u64,
}

/// Findings of the fleet by severity.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    /// Findings whose versions could not be compared (`unknown_version`): neither
    /// vulnerable nor safe, shown as what they are.
    pub unknown_version: u64,
    /// Hosts whose release has no imported vulnerability data: their findings are
    /// unknown, not zero (they are not counted as "not vulnerable").
    pub hosts_without_data: u64,
    /// Of those, how many per release (`Fedora:41`, `CentOS Stream:9`, `gentoo 2.15`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub without_data: BTreeMap<String, u64>,
    /// Hosts whose release has only security advisories, no CVE feed (Fedora).
    pub hosts_advisories_only: u64,
    /// Of the vulnerable findings, those whose CVE is known to be exploited (CISA KEV).
    pub known_exploited: u64,
    /// Fixable findings a valid exception covers, left out of `fixable` (the platform
    /// sets it).
    #[serde(default)]
    pub excepted: u64,
}

/// The fleet's correlation state.
#[derive(Debug, Default)]
pub struct Fleet {
    index: Index,
    strings: Strings,
    /// Ecosystem sets by id.
    ecos_sets: Vec<Arc<[String]>>,
    ecos_ids: HashMap<Vec<String>, u32>,
    decisions: Vec<Decision>,
    decision_ids: FastMap<DecisionKey, u32>,
    hosts: HashMap<Uuid, HostState>,
    work: Work,
}

fn severity_slot(s: Severity) -> usize {
    Severity::ALL.iter().position(|x| *x == s).unwrap_or(0)
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

    /// Distinct decisions the fleet holds.
    pub fn decision_count(&self) -> usize {
        self.decisions.len()
    }

    fn ecos_id(&mut self, ecosystems: &[String]) -> u32 {
        if let Some(id) = self.ecos_ids.get(ecosystems) {
            return *id;
        }
        let id = self.ecos_sets.len() as u32;
        self.ecos_sets.push(ecosystems.iter().cloned().collect());
        self.ecos_ids.insert(ecosystems.to_vec(), id);
        id
    }

    /// Evaluates the decision `key` against the index.
    fn evaluate(&mut self, key: DecisionKey) -> (Probe, Arc<[Hit]>, [u32; 6], u32, u32) {
        let ecos = Arc::clone(&self.ecos_sets[key.0 as usize]);
        let rules = ecos.iter().find_map(|e| ecosystem::rules(e));
        let keyed_by = rules.map_or(KeyedBy::Source, |r| r.keyed_by);
        let name = self.strings.name(key.1);
        let fallback = (key.2 != NONE).then(|| self.strings.name(key.2));
        let probe = Probe {
            key: name.to_string(),
            fallback: fallback.map(str::to_string),
            version: self.strings.name(key.3).to_string(),
            matched_by: match keyed_by {
                KeyedBy::Source => matcher::MatchedBy::Source,
                KeyedBy::Binary => matcher::MatchedBy::Binary,
            },
            binaries: Vec::new(),
            scheme: rules.map_or(patchctl_version::Scheme::Dpkg, |r| r.scheme),
            ecosystems: ecos,
        };
        let hits: Arc<[Hit]> = self.index.evaluate(&probe).into();
        let mut by_severity = [0u32; 6];
        let mut fixable = 0;
        let mut unknown = 0;
        for h in hits.iter() {
            if h.vulnerable() {
                by_severity[severity_slot(h.severity())] += 1;
                fixable += u32::from(h.fixable());
            } else if h.uncomparable() {
                unknown += 1;
            }
        }
        self.work.evaluated += 1;
        (probe, hits, by_severity, fixable, unknown)
    }

    fn decision(&mut self, key: DecisionKey) -> u32 {
        if let Some(id) = self.decision_ids.get(&key) {
            self.work.shared += 1;
            return *id;
        }
        let (probe, hits, by_severity, fixable, unknown) = self.evaluate(key);
        let id = self.decisions.len() as u32;
        self.decisions.push(Decision {
            key,
            probe,
            hits,
            by_severity,
            fixable,
            unknown,
        });
        self.decision_ids.insert(key, id);
        id
    }

    /// Sets (or replaces) a host's inventory; only decisions the fleet never made are
    /// evaluated.
    pub fn set_host(
        &mut self,
        id: Uuid,
        ecosystems: &[String],
        running_kernel: Option<&str>,
        packages: &[InstalledPackage],
    ) {
        let ecos = self.ecos_id(ecosystems);
        let mut keyed: Vec<(DecisionKey, u32)> = Vec::with_capacity(packages.len());
        let strings = &mut self.strings;
        matcher::specs(ecosystems, running_kernel, packages, |s| {
            let key = (
                ecos,
                strings.id(&s.key),
                s.fallback.map_or(NONE, |f| strings.id(f)),
                strings.id(s.version),
            );
            keyed.push((key, strings.id(s.name)));
        });
        keyed.sort_unstable();
        keyed.dedup();
        let mut probes: Vec<HostProbe> = Vec::new();
        let binaries: Vec<u32> = keyed.iter().map(|k| k.1).collect();
        let mut i = 0;
        while i < keyed.len() {
            let key = keyed[i].0;
            let mut j = i;
            while j < keyed.len() && keyed[j].0 == key {
                j += 1;
            }
            probes.push(HostProbe {
                decision: self.decision(key),
                start: i as u32,
                len: (j - i) as u32,
            });
            i = j;
        }
        probes.shrink_to_fit();
        self.hosts.insert(
            id,
            HostState {
                ecos,
                probes,
                binaries,
            },
        );
    }

    /// Forgets a host.
    pub fn remove_host(&mut self, id: Uuid) {
        self.hosts.remove(&id);
    }

    /// Adds or replaces records (and removes `(source, id)` pairs in `removed`), then
    /// re-evaluates only the decisions on the `(ecosystem, package)` keys that changed.
    /// Returns how many decisions were re-evaluated.
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
        // touched (ecosystem, package) → (ecosystem, package id), for names hosts have
        let touched: HashSet<(&str, u32)> = touched
            .iter()
            .filter_map(|(e, p)| self.strings.get(p).map(|id| (e.as_str(), id)))
            .collect();
        if touched.is_empty() {
            return 0;
        }
        let stale: Vec<usize> = self
            .decisions
            .iter()
            .enumerate()
            .filter(|(_, d)| {
                let ecos = &self.ecos_sets[d.key.0 as usize];
                ecos.iter().any(|e| {
                    touched.contains(&(e.as_str(), d.key.1))
                        || (d.key.2 != NONE && touched.contains(&(e.as_str(), d.key.2)))
                })
            })
            .map(|(i, _)| i)
            .collect();
        for &i in &stale {
            let (probe, hits, by_severity, fixable, unknown) = self.evaluate(self.decisions[i].key);
            let d = &mut self.decisions[i];
            d.probe = probe;
            d.hits = hits;
            d.by_severity = by_severity;
            d.fixable = fixable;
            d.unknown = unknown;
        }
        stale.len()
    }

    /// The findings one host probe makes (its decision's hits with its binaries).
    fn probe_findings<'a>(
        &'a self,
        state: &'a HostState,
        hp: &'a HostProbe,
    ) -> impl Iterator<Item = Finding> + 'a {
        let d = &self.decisions[hp.decision as usize];
        let probe = (!d.hits.is_empty()).then(|| Probe {
            binaries: state.binaries[hp.start as usize..(hp.start + hp.len) as usize]
                .iter()
                .map(|b| self.strings.name(*b).to_string())
                .collect(),
            ..d.probe.clone()
        });
        d.hits
            .iter()
            .filter_map(move |h| probe.as_ref().map(|p| matcher::finding(h, p)))
    }

    /// A host's findings, most important first; `None` for an unknown host.
    pub fn host_findings(&self, id: Uuid) -> Option<Vec<Finding>> {
        let state = self.hosts.get(&id)?;
        let mut out: Vec<Finding> = state
            .probes
            .iter()
            .flat_map(|hp| self.probe_findings(state, hp))
            .collect();
        self.index.annotate(out.iter_mut());
        matcher::sort_findings(&mut out);
        Some(out)
    }

    /// The ecosystems a host is matched against.
    pub fn host_ecosystems(&self, id: Uuid) -> Option<&[String]> {
        self.hosts
            .get(&id)
            .map(|h| &self.ecos_sets[h.ecos as usize][..])
    }

    /// Every host with a finding about `id` (an advisory id or a CVE id), among `hosts`
    /// (or all when `None`).
    pub fn hosts_with(&self, id: &str, hosts: Option<&HashSet<Uuid>>) -> Vec<(Uuid, Finding)> {
        let concerned: HashSet<u32> = self
            .decisions
            .iter()
            .enumerate()
            .filter(|(_, d)| {
                d.hits.iter().any(|h| {
                    let a = h.advisory();
                    a.id == id || a.aliases.iter().any(|x| x == id)
                })
            })
            .map(|(i, _)| i as u32)
            .collect();
        let mut out = Vec::new();
        if concerned.is_empty() {
            return out;
        }
        for (host, state) in &self.hosts {
            if hosts.is_some_and(|h| !h.contains(host)) {
                continue;
            }
            for hp in state
                .probes
                .iter()
                .filter(|p| concerned.contains(&p.decision))
            {
                out.extend(
                    self.probe_findings(state, hp)
                        .filter(|f| f.concerns(id))
                        .map(|f| (*host, f)),
                );
            }
        }
        out.sort_by(|a, b| (a.0, &a.1.package).cmp(&(b.0, &b.1.package)));
        self.index.annotate(out.iter_mut().map(|(_, f)| f));
        out
    }

    /// Vulnerable findings by severity over `hosts` (or all).
    pub fn summary(&self, hosts: Option<&HashSet<Uuid>>) -> Summary {
        let mut s = Summary::default();
        let mut by = [0u64; 6];
        let mut used: HashSet<u32> = HashSet::new();
        let mut levels: HashMap<u32, DataLevel> = HashMap::new();
        // vulnerable hits known to be exploited, per decision (computed once each)
        let mut exploited: HashMap<u32, u64> = HashMap::new();
        for (host, state) in &self.hosts {
            if hosts.is_some_and(|h| !h.contains(host)) {
                continue;
            }
            s.hosts += 1;
            // hosts share ecosystem sets: one coverage per set
            let level = *levels.entry(state.ecos).or_insert_with(|| {
                coverage::coverage(&self.index, &self.ecos_sets[state.ecos as usize]).level
            });
            let ecos = &self.ecos_sets[state.ecos as usize];
            match level {
                DataLevel::None => {
                    s.hosts_without_data += 1;
                    *s.without_data.entry(Coverage::label(ecos)).or_default() += 1;
                }
                DataLevel::SecurityAdvisories => s.hosts_advisories_only += 1,
                DataLevel::Cve => {}
            }
            let mut any = false;
            for hp in &state.probes {
                let d = &self.decisions[hp.decision as usize];
                s.unknown_version += u64::from(d.unknown);
                let n: u32 = d.by_severity.iter().sum();
                if n > 0 {
                    any = true;
                    used.insert(hp.decision);
                    for (slot, c) in d.by_severity.iter().enumerate() {
                        by[slot] += u64::from(*c);
                    }
                    s.vulnerable += u64::from(n);
                    s.fixable += u64::from(d.fixable);
                    s.known_exploited += *exploited.entry(hp.decision).or_insert_with(|| {
                        d.hits
                            .iter()
                            .filter(|h| h.vulnerable())
                            .filter(|h| {
                                let a = h.advisory();
                                std::iter::once(&a.id)
                                    .chain(a.aliases.iter())
                                    .any(|c| self.index.exploited(c).is_some())
                            })
                            .count() as u64
                    });
                }
            }
            s.vulnerable_hosts += u64::from(any);
        }
        for (slot, sev) in Severity::ALL.iter().enumerate() {
            s.by_severity.insert(sev.name().to_string(), by[slot]);
        }
        let advisories: HashSet<&str> = used
            .iter()
            .flat_map(|d| self.decisions[*d as usize].hits.iter())
            .filter(|h| h.vulnerable())
            .map(|h| h.advisory().id.as_str())
            .collect();
        s.advisories = advisories.len() as u64;
        s
    }
}

/// One advisory over a set of hosts (see [`Fleet::advisories`]).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AdvisoryCount {
    /// The advisory's id (`CVE-2024-6387`, `DSA-5724-1`).
    pub id: String,
    /// Its aliases (CVE ids first).
    pub aliases: Vec<String>,
    /// Its summary.
    pub summary: String,
    /// The highest severity of its vulnerable findings.
    pub severity: Severity,
    /// Its CVE is known to be exploited (CISA KEV).
    pub known_exploited: bool,
    /// Some of its vulnerable findings have a fixed version to install.
    pub fixable: bool,
    /// Hosts with a vulnerable finding about it.
    pub hosts: u64,
}

impl Fleet {
    /// Every advisory with a vulnerable finding on one of `hosts` (or all), with the
    /// number of such hosts; sorted by severity (highest first), then hosts (most
    /// first), then id.
    pub fn advisories(&self, hosts: Option<&HashSet<Uuid>>) -> Vec<AdvisoryCount> {
        // per decision, once: its vulnerable hits' advisory ids
        let mut per_decision: HashMap<u32, Vec<&str>> = HashMap::new();
        let mut counts: HashMap<&str, u64> = HashMap::new();
        let mut seen: Vec<&str> = Vec::new();
        for (host, state) in &self.hosts {
            if hosts.is_some_and(|h| !h.contains(host)) {
                continue;
            }
            seen.clear();
            for hp in &state.probes {
                let d = &self.decisions[hp.decision as usize];
                if d.by_severity.iter().all(|c| *c == 0) {
                    continue;
                }
                let ids = per_decision.entry(hp.decision).or_insert_with(|| {
                    d.hits
                        .iter()
                        .filter(|h| h.vulnerable())
                        .map(|h| h.advisory().id.as_str())
                        .collect()
                });
                seen.extend(ids.iter().copied());
            }
            seen.sort_unstable();
            seen.dedup();
            for id in &seen {
                *counts.entry(id).or_default() += 1;
            }
        }
        let mut out: HashMap<&str, AdvisoryCount> = HashMap::new();
        for d in per_decision.keys() {
            for h in self.decisions[*d as usize]
                .hits
                .iter()
                .filter(|h| h.vulnerable())
            {
                let a = h.advisory();
                let e = out.entry(a.id.as_str()).or_insert_with(|| AdvisoryCount {
                    id: a.id.clone(),
                    aliases: a.aliases.clone(),
                    summary: a.summary.clone(),
                    severity: h.severity(),
                    known_exploited: std::iter::once(&a.id)
                        .chain(a.aliases.iter())
                        .any(|c| self.index.exploited(c).is_some()),
                    fixable: false,
                    hosts: counts.get(a.id.as_str()).copied().unwrap_or(0),
                });
                if severity_slot(h.severity()) < severity_slot(e.severity) {
                    e.severity = h.severity();
                }
                e.fixable |= h.fixable();
            }
        }
        let mut out: Vec<AdvisoryCount> = out.into_values().collect();
        out.sort_by(|a, b| {
            (severity_slot(a.severity), std::cmp::Reverse(a.hosts), &a.id).cmp(&(
                severity_slot(b.severity),
                std::cmp::Reverse(b.hosts),
                &b.id,
            ))
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Affected, Record, Status};

    fn record(id: &str, package: &str, fixed: &str) -> SourcedRecord {
        SourcedRecord {
            source: "t".into(),
            imported_at: None,
            record: Record {
                id: id.into(),
                aliases: vec![],
                summary: String::new(),
                severity: Some("high".into()),
                cvss_vector: None,
                published: None,
                modified: None,
                withdrawn: false,
                exploited: None,
                affected: vec![Affected {
                    ecosystem: "Debian:12".into(),
                    package: package.into(),
                    introduced: None,
                    last_affected: None,
                    status: Status::Fixed {
                        fixed_version: fixed.into(),
                    },
                    note: None,
                    severity: None,
                }],
            },
        }
    }

    fn pkg(name: &str, version: &str, src: &str) -> InstalledPackage {
        InstalledPackage {
            name: name.into(),
            version: version.into(),
            arch: "amd64".into(),
            source_name: Some(src.into()),
            source_version: Some(version.into()),
            status: "installed".into(),
        }
    }

    #[test]
    fn decisions_are_shared_and_redone_only_where_records_changed() {
        let mut fleet = Fleet::new(Index::build([record("A", "openssl", "3.0.15-1")]));
        let eco = vec!["Debian:12".to_string()];
        let hosts: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
        for h in &hosts {
            fleet.set_host(
                *h,
                &eco,
                None,
                &[
                    pkg("libssl3", "3.0.14-1", "openssl"),
                    pkg("bash", "5.2-1", "bash"),
                ],
            );
        }
        assert_eq!(fleet.work().evaluated, 2, "openssl and bash, once each");
        assert_eq!(fleet.work().shared, 4);
        let f = fleet.host_findings(hosts[0]).unwrap();
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].binaries, ["libssl3"]);
        assert_eq!(fleet.summary(None).vulnerable, 3);
        assert_eq!(fleet.hosts_with("A", None).len(), 3);

        // a new record on bash: only bash's decision is redone
        assert_eq!(fleet.apply([record("B", "bash", "5.2-2")], &[]), 1);
        assert_eq!(fleet.summary(None).vulnerable, 6);
        // a record on a package no host has: nothing redone
        assert_eq!(fleet.apply([record("C", "zsh", "1")], &[]), 0);
        // one host upgrades: its findings follow, the others keep theirs
        fleet.set_host(
            hosts[0],
            &eco,
            None,
            &[
                pkg("libssl3", "3.0.15-1", "openssl"),
                pkg("bash", "5.2-2", "bash"),
            ],
        );
        assert!(fleet.host_findings(hosts[0]).unwrap().is_empty());
        assert_eq!(fleet.summary(None).vulnerable, 4);
        assert_eq!(fleet.summary(None).vulnerable_hosts, 2);
        // removing a record clears its findings
        assert_eq!(fleet.apply([], &[("t".to_string(), "A".to_string())]), 2);
        assert_eq!(fleet.summary(None).vulnerable, 2);
    }

    #[test]
    fn summary_counts_unknown_versions_and_hosts_without_data_apart() {
        let mut fleet = Fleet::new(Index::build([
            record("A", "openssl", "3.0.15-1"),
            record("B", "bash", "not a version!"),
        ]));
        let debian = vec!["Debian:12".to_string()];
        fleet.set_host(
            Uuid::new_v4(),
            &debian,
            None,
            &[
                pkg("libssl3", "3.0.14-1", "openssl"),
                pkg("bash", "5.2-1", "bash"),
            ],
        );
        for ecos in [["Debian:13"], ["Fedora:40"], ["gentoo 2.15"]] {
            let ecos: Vec<String> = ecos.iter().map(|e| e.to_string()).collect();
            fleet.set_host(Uuid::new_v4(), &ecos, None, &[pkg("bash", "5.2-1", "bash")]);
        }
        let s = fleet.summary(None);
        assert_eq!((s.hosts, s.vulnerable_hosts, s.vulnerable), (4, 1, 1));
        assert_eq!(
            s.unknown_version, 1,
            "bash's fixed version cannot be compared"
        );
        // Fedora has no data imported here either: all three are without data
        assert_eq!(s.hosts_without_data, 3);
        assert_eq!(
            s.without_data.keys().collect::<Vec<_>>(),
            ["Debian:13", "Fedora:40", "gentoo 2.15"]
        );
        assert_eq!(s.hosts_advisories_only, 0);
    }

    #[test]
    fn advisories_count_each_host_once_and_follow_the_host_set() {
        let mut fleet = Fleet::new(Index::build([
            record("A", "openssl", "3.0.15-1"),
            record("B", "bash", "5.2-2"),
        ]));
        let eco = vec!["Debian:12".to_string()];
        let hosts: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
        // host 0: two binaries of openssl (one finding each, one host), bash too
        fleet.set_host(
            hosts[0],
            &eco,
            None,
            &[
                pkg("libssl3", "3.0.14-1", "openssl"),
                pkg("openssl", "3.0.14-1", "openssl"),
                pkg("bash", "5.2-1", "bash"),
            ],
        );
        fleet.set_host(
            hosts[1],
            &eco,
            None,
            &[pkg("libssl3", "3.0.14-1", "openssl")],
        );
        fleet.set_host(
            hosts[2],
            &eco,
            None,
            &[pkg("libssl3", "3.0.15-1", "openssl")],
        );
        let all = fleet.advisories(None);
        let counts: Vec<(&str, u64, bool)> = all
            .iter()
            .map(|a| (a.id.as_str(), a.hosts, a.fixable))
            .collect();
        assert_eq!(counts, [("A", 2, true), ("B", 1, true)]);
        assert_eq!(all[0].severity, Severity::High);
        let only: HashSet<Uuid> = [hosts[1], hosts[2]].into();
        let some = fleet.advisories(Some(&only));
        assert_eq!(some.len(), 1);
        assert_eq!((some[0].id.as_str(), some[0].hosts), ("A", 1));
    }
}
