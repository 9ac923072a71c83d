//! The in-memory index of the matcher: statements by `(ecosystem, package)`, built and
//! updated record by record, and the evaluation of one probe against it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use patchctl_version::Scheme;

use super::decide::{Hit, decide, follows_stream, is_module_build, module_streams};
use super::entry::{Entry, Rare, split_status};
use super::{Advisory, Finding, Probe, SourcedRecord};
use crate::cvss;
use crate::ecosystem::{self, Rules};
use crate::model::Exploited;

/// A record's entries of the most specific slot seen so far: (ecosystem rank, stated
/// under the probe's own key), the slot's `(ecosystem, package)`, and the entries.
type RankedEntries<'a> = ((usize, bool), Key<'a>, Vec<&'a Arc<Entry>>);

/// An `(ecosystem, package)` key, shared with the index's maps.
type OwnedKey = (Arc<str>, Arc<str>);

/// One ecosystem's statements: package → entries.
type Packages = HashMap<Arc<str>, Vec<Arc<Entry>>>;

/// An `(ecosystem, package)` key as the index holds it.
type Key<'a> = (&'a Arc<str>, &'a Arc<str>);

/// The in-memory index: entries by `(ecosystem, package)`.
#[derive(Debug, Default)]
pub struct Index {
    /// ecosystem → package → entries.
    by_key: HashMap<Arc<str>, Packages>,
    /// `(source, id)` → the `(ecosystem, package)` keys it has entries under.
    keys_of: HashMap<(String, String), Vec<OwnedKey>>,
    entries: usize,
    /// Interned texts: ecosystems, package names, notes, severity words, streams.
    strings: HashSet<Arc<str>>,
    /// CVE id → known exploitation (from records with [`Record::exploited`]).
    exploited: HashMap<String, Arc<Exploited>>,
    /// `(source, id)` → the CVE ids it marks as exploited.
    exploited_of: HashMap<(String, String), Vec<String>>,
}

impl Index {
    /// An index of these records (withdrawn ones are skipped).
    pub fn build(records: impl IntoIterator<Item = SourcedRecord>) -> Index {
        let mut index = Index::default();
        for r in records {
            index.upsert(r);
        }
        index
    }

    /// Adds a record, replacing the entries of the same `(source, id)`. Returns the
    /// `(ecosystem, package)` keys whose entries changed (old and new).
    pub fn upsert(&mut self, r: SourcedRecord) -> Vec<(String, String)> {
        let mut touched = self.remove(&r.source, &r.record.id);
        if r.record.withdrawn {
            return touched;
        }
        if let Some(e) = &r.record.exploited {
            let e = Arc::new(e.clone());
            let cves: Vec<String> = r.record.cve_ids().map(str::to_string).collect();
            for cve in &cves {
                self.exploited.insert(cve.clone(), Arc::clone(&e));
            }
            self.exploited_of
                .insert((r.source.clone(), r.record.id.clone()), cves);
        }
        let advisory = Arc::new(Advisory {
            streams: module_streams(&r.record.summary),
            cvss_score: r
                .record
                .cvss_vector
                .as_deref()
                .and_then(|v| cvss::base_score(v).ok()),
            source: r.source.clone(),
            imported_at: r.imported_at,
            id: r.record.id.clone(),
            aliases: r.record.aliases,
            summary: r.record.summary,
            severity: r.record.severity,
            cvss_vector: r.record.cvss_vector,
        });
        let mut keys: Vec<OwnedKey> = Vec::new();
        for affected in r.record.affected {
            let rules = ecosystem::rules(&affected.ecosystem);
            let fixed = affected.status.fixed_version();
            let module = match (rules, fixed) {
                (
                    Some(Rules {
                        scheme: Scheme::Rpm,
                        ..
                    }),
                    Some(f),
                ) => Some(is_module_build(f)),
                _ => None,
            };
            let stream = match (module, fixed) {
                (Some(true), Some(f)) => advisory
                    .streams
                    .iter()
                    .find(|s| follows_stream(f, s))
                    .map(|s| self.intern(s)),
                _ => None,
            };
            let rare = (affected.introduced.is_some()
                || affected.last_affected.is_some()
                || stream.is_some())
            .then(|| {
                Box::new(Rare {
                    introduced: affected.introduced.map(String::into_boxed_str),
                    last_affected: affected.last_affected.map(String::into_boxed_str),
                    stream,
                })
            });
            let (kind, text) = split_status(affected.status);
            let entry = Entry {
                advisory: Arc::clone(&advisory),
                kind,
                module,
                text,
                note: affected.note.as_deref().map(|n| self.intern(n)),
                severity: affected.severity.as_deref().map(|n| self.intern(n)),
                rare,
            };
            let key = (
                self.intern(&affected.ecosystem),
                self.intern(&affected.package),
            );
            self.by_key
                .entry(Arc::clone(&key.0))
                .or_default()
                .entry(Arc::clone(&key.1))
                .or_default()
                .push(Arc::new(entry));
            self.entries += 1;
            keys.push(key);
        }
        keys.sort();
        keys.dedup();
        keys.shrink_to_fit();
        touched.extend(keys.iter().map(|(e, p)| (e.to_string(), p.to_string())));
        self.keys_of.insert((r.source, advisory.id.clone()), keys);
        touched.sort();
        touched.dedup();
        touched
    }

    /// The one shared copy of a text.
    fn intern(&mut self, s: &str) -> Arc<str> {
        if let Some(a) = self.strings.get(s) {
            return Arc::clone(a);
        }
        let a: Arc<str> = Arc::from(s);
        self.strings.insert(Arc::clone(&a));
        a
    }

    /// Removes the entries of `(source, id)`; returns the keys they were under.
    pub fn remove(&mut self, source: &str, id: &str) -> Vec<(String, String)> {
        if let Some(cves) = self
            .exploited_of
            .remove(&(source.to_string(), id.to_string()))
        {
            for cve in cves {
                self.exploited.remove(&cve);
            }
        }
        let Some(keys) = self.keys_of.remove(&(source.to_string(), id.to_string())) else {
            return Vec::new();
        };
        for (eco, pkg) in &keys {
            if let Some(pkgs) = self.by_key.get_mut(eco) {
                if let Some(entries) = pkgs.get_mut(pkg) {
                    let before = entries.len();
                    entries.retain(|e| !(e.advisory.source == source && e.advisory.id == id));
                    self.entries -= before - entries.len();
                    if entries.is_empty() {
                        pkgs.remove(pkg);
                    }
                }
            }
        }
        keys.into_iter()
            .map(|(e, p)| (e.to_string(), p.to_string()))
            .collect()
    }

    /// Number of indexed statements.
    pub fn len(&self) -> usize {
        self.entries
    }

    /// No statements indexed.
    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// Number of indexed records.
    pub fn records(&self) -> usize {
        self.keys_of.len()
    }

    /// Known exploitation of a CVE, if a catalog lists it.
    pub fn exploited(&self, cve: &str) -> Option<&Arc<Exploited>> {
        self.exploited.get(cve)
    }

    /// Marks the findings whose CVE a catalog lists as known to be exploited (and clears
    /// the mark of those it no longer lists).
    pub fn annotate<'f>(&self, findings: impl IntoIterator<Item = &'f mut Finding>) {
        for f in findings {
            let found = f
                .cve_ids()
                .find_map(|c| self.exploited.get(c))
                .map(|e| (**e).clone());
            f.known_exploited = found;
        }
    }

    /// Whether any record states something about this ecosystem (its release has data).
    pub fn covers(&self, ecosystem: &str) -> bool {
        self.by_key.get(ecosystem).is_some_and(|p| !p.is_empty())
    }

    /// Whether any record names this package in this ecosystem.
    pub fn has(&self, ecosystem: &str, package: &str) -> bool {
        self.by_key
            .get(ecosystem)
            .is_some_and(|p| p.contains_key(package))
    }

    /// Decides one probe: one hit per record that states something about it (resolved
    /// `fixed` records produce none). A record is decided on the statements of the most
    /// specific host ecosystem it names; within it, on the statements about the probe's
    /// own key when it has any, else on those about the fallback (source) key.
    pub fn evaluate(&self, probe: &Probe) -> Vec<Hit> {
        let keys = std::iter::once((probe.key.as_str(), false))
            .chain(probe.fallback.as_deref().map(|f| (f, true)));
        let mut lists: Vec<(usize, bool, Key, &Vec<Arc<Entry>>)> = Vec::new();
        for (key, by_fallback) in keys {
            for (rank, eco) in probe.ecosystems.iter().enumerate() {
                let Some((eco, pkgs)) = self.by_key.get_key_value(eco.as_str()) else {
                    continue;
                };
                if let Some((pkg, l)) = pkgs.get_key_value(key) {
                    lists.push((rank, by_fallback, (eco, pkg), l));
                }
            }
        }
        match lists.as_slice() {
            [] => Vec::new(),
            // One list (the common case): a record's entries under one key are
            // contiguous (an upsert pushes them together).
            [(_, by_fallback, key, entries)] => entries
                .chunk_by(|a, b| Arc::ptr_eq(&a.advisory, &b.advisory))
                .filter_map(|chunk| decide(probe, *key, chunk.iter(), *by_fallback))
                .collect(),
            _ => {
                // record (source, id) → (rank, own key first), its key, entries of that slot
                let mut per_record: BTreeMap<(&str, &str), RankedEntries> = BTreeMap::new();
                for (rank, by_fallback, key, entries) in &lists {
                    let slot_rank = (*rank, !*by_fallback);
                    for e in entries.iter() {
                        let slot = per_record
                            .entry((&e.advisory.source, &e.advisory.id))
                            .or_insert((slot_rank, *key, Vec::new()));
                        if slot_rank > slot.0 {
                            *slot = (slot_rank, *key, Vec::new());
                        }
                        if slot_rank == slot.0 {
                            slot.2.push(e);
                        }
                    }
                }
                per_record
                    .into_values()
                    .filter_map(|((_, own), key, entries)| {
                        decide(probe, key, entries.into_iter(), !own)
                    })
                    .collect()
            }
        }
    }
}
