//! The in-memory index of the matcher: statements by `(ecosystem, package)`, built and
//! updated record by record, and the evaluation of one probe against it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use patchctl_version::Scheme;

use super::decide::{Hit, decide, follows_stream, is_module_build, module_streams};
use super::{Advisory, Entry, Probe, SourcedRecord};
use crate::cvss;
use crate::ecosystem::{self, Rules};

/// A record's entries of the most specific ecosystem seen so far, with its rank.
type RankedEntries<'a> = (usize, Vec<&'a Arc<Entry>>);

/// The in-memory index: entries by `(ecosystem, package)`.
#[derive(Debug, Default)]
pub struct Index {
    /// ecosystem → package → entries.
    by_key: HashMap<String, HashMap<String, Vec<Arc<Entry>>>>,
    /// `(source, id)` → the `(ecosystem, package)` keys it has entries under.
    keys_of: HashMap<(String, String), Vec<(String, String)>>,
    entries: usize,
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
        let mut keys = Vec::new();
        for affected in r.record.affected {
            let rules = ecosystem::rules(&affected.ecosystem);
            let module = match (rules, affected.status.fixed_version()) {
                (
                    Some(Rules {
                        scheme: Scheme::Rpm,
                        ..
                    }),
                    Some(f),
                ) => Some(is_module_build(f)),
                _ => None,
            };
            let stream = match (module, affected.status.fixed_version()) {
                (Some(true), Some(f)) => advisory
                    .streams
                    .iter()
                    .find(|s| follows_stream(f, s))
                    .cloned(),
                _ => None,
            };
            let key = (affected.ecosystem.clone(), affected.package.clone());
            self.by_key
                .entry(key.0.clone())
                .or_default()
                .entry(key.1.clone())
                .or_default()
                .push(Arc::new(Entry {
                    advisory: Arc::clone(&advisory),
                    affected,
                    module,
                    stream,
                }));
            self.entries += 1;
            keys.push(key);
        }
        keys.sort();
        keys.dedup();
        touched.extend(keys.iter().cloned());
        self.keys_of.insert((r.source, advisory.id.clone()), keys);
        touched.sort();
        touched.dedup();
        touched
    }

    /// Removes the entries of `(source, id)`; returns the keys they were under.
    pub fn remove(&mut self, source: &str, id: &str) -> Vec<(String, String)> {
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
        keys
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

    /// Whether any record names this package in this ecosystem.
    pub fn has(&self, ecosystem: &str, package: &str) -> bool {
        self.by_key
            .get(ecosystem)
            .is_some_and(|p| p.contains_key(package))
    }

    /// Decides one probe: one hit per record that states something about it (resolved
    /// `fixed` records produce none).
    pub fn evaluate(&self, probe: &Probe) -> Vec<Hit> {
        let lists: Vec<(usize, &Vec<Arc<Entry>>)> = probe
            .ecosystems
            .iter()
            .enumerate()
            .filter_map(|(rank, eco)| {
                self.by_key
                    .get(eco)
                    .and_then(|p| p.get(&probe.key))
                    .map(|l| (rank, l))
            })
            .collect();
        match lists.as_slice() {
            [] => Vec::new(),
            // One ecosystem names the key (the common case): a record's entries under
            // one key are contiguous (an upsert pushes them together).
            [(_, entries)] => entries
                .chunk_by(|a, b| Arc::ptr_eq(&a.advisory, &b.advisory))
                .filter_map(|chunk| decide(probe, chunk.iter()))
                .collect(),
            _ => {
                // record (source, id) → (ecosystem rank, entries of that ecosystem)
                let mut per_record: BTreeMap<(&str, &str), RankedEntries> = BTreeMap::new();
                for (rank, entries) in &lists {
                    for e in entries.iter() {
                        let slot = per_record
                            .entry((&e.advisory.source, &e.advisory.id))
                            .or_insert((*rank, Vec::new()));
                        if *rank > slot.0 {
                            *slot = (*rank, Vec::new());
                        }
                        if *rank == slot.0 {
                            slot.1.push(e);
                        }
                    }
                }
                per_record
                    .into_values()
                    .filter_map(|(_, entries)| decide(probe, entries.into_iter()))
                    .collect()
            }
        }
    }
}
