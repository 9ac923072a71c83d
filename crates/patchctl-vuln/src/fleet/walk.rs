//! A walk over the fleet's vulnerable hits without materializing findings: what the
//! deadline and compliance views need for every host (100,000 of them) at once.

use std::collections::{HashMap, HashSet};

use uuid::Uuid;

use super::{FastMap, Fleet};
use crate::coverage::{self, DataLevel};
use crate::model::Exploited;
use crate::severity::Severity;

/// One vulnerable hit of a host, borrowed from the fleet.
#[derive(Debug, Clone, Copy)]
pub struct VulnHit<'a> {
    /// The advisory's id (a finding's `advisory`).
    pub advisory: &'a str,
    /// Its aliases.
    pub aliases: &'a [String],
    /// The package the deciding statement names (a finding's `package`).
    pub package: &'a str,
    /// Overall severity.
    pub severity: Severity,
    /// A fixed version exists above the installed one.
    pub fixable: bool,
    /// The CVE is known to be exploited (CISA KEV).
    pub exploited: Option<&'a Exploited>,
}

impl Fleet {
    /// Calls `f` once per host among `hosts` (or every host) with what the data says
    /// about its release and its vulnerable hits, one per `(advisory, package)`, sorted
    /// by them. Each decision's hits are looked at once, whatever the number of hosts
    /// that share it.
    pub fn walk_vulnerable<'a>(
        &'a self,
        hosts: Option<&HashSet<Uuid>>,
        mut f: impl FnMut(Uuid, DataLevel, &[VulnHit<'a>]),
    ) {
        let mut per_decision: FastMap<u32, Vec<VulnHit<'a>>> = FastMap::default();
        let mut levels: HashMap<u32, DataLevel> = HashMap::new();
        let mut buf: Vec<VulnHit<'a>> = Vec::new();
        let mut visit = |host: &Uuid, state: &'a super::HostState| {
            let level = *levels.entry(state.ecos).or_insert_with(|| {
                coverage::coverage(&self.index, &self.ecos_sets[state.ecos as usize]).level
            });
            buf.clear();
            for hp in &state.probes {
                let d = &self.decisions[hp.decision as usize];
                if d.by_severity.iter().all(|c| *c == 0) {
                    continue;
                }
                let hits = per_decision.entry(hp.decision).or_insert_with(|| {
                    d.hits
                        .iter()
                        .filter(|h| h.vulnerable())
                        .map(|h| {
                            let a = h.advisory();
                            VulnHit {
                                advisory: &a.id,
                                aliases: &a.aliases,
                                package: h.package(),
                                severity: h.severity(),
                                fixable: h.fixable(),
                                exploited: std::iter::once(&a.id)
                                    .chain(a.aliases.iter())
                                    .find_map(|c| self.index.exploited(c))
                                    .map(|e| &**e),
                            }
                        })
                        .collect()
                });
                buf.extend_from_slice(hits);
            }
            buf.sort_unstable_by(|a, b| (a.advisory, a.package).cmp(&(b.advisory, b.package)));
            buf.dedup_by(|a, b| a.advisory == b.advisory && a.package == b.package);
            f(*host, level, &buf);
        };
        match hosts {
            Some(set) => {
                for host in set {
                    if let Some(state) = self.hosts.get(host) {
                        visit(host, state);
                    }
                }
            }
            None => {
                for (host, state) in &self.hosts {
                    visit(host, state);
                }
            }
        }
    }
}

impl Fleet {
    /// How many of `hosts` the fleet has correlated.
    pub fn host_count_among(&self, hosts: &HashSet<Uuid>) -> usize {
        hosts.iter().filter(|h| self.hosts.contains_key(*h)).count()
    }
}
