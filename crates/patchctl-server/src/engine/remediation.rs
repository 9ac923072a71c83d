//! Deadlines over the engine's correlation: when each vulnerable finding was first seen
//! (kept here and in `finding_first_seen`), its due date and state under the
//! organisation's policy and exceptions, and the compliance views.
//!
//! First-seen times are kept in memory per host as sorted `(vuln id, package, ms)`
//! triples over interned names (16 bytes a finding), loaded from the database at start;
//! every sweep (start, a host's scan, a change of the vulnerability data) writes only the
//! findings never seen before, in bulk. The compliance walk reads the fleet's decisions
//! once each ([`Fleet::walk_vulnerable`](patchctl_vuln::fleet::Fleet::walk_vulnerable)),
//! so computing every host's deadlines is a pass over integers, not over findings.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use patchctl_policy::deadline::{self, Basis, Compliance, DeadlinePolicy};
use patchctl_proto::policy::deadlines::{
    ComplianceTally, ExceptionRef, FindingState, OverdueFinding, Remediation,
};
use patchctl_proto::policy::webhooks::EventSeverity;
use patchctl_storage::{
    ExceptionRow, ExceptionScope, FirstSeen, MissedDeadline, NewFinding, StorageError,
};
use patchctl_vuln::coverage::DataLevel;
use patchctl_vuln::fleet::VulnHit;
use patchctl_vuln::matcher::Finding;
use patchctl_vuln::severity::Severity;
use uuid::Uuid;

use super::{EngineError, VulnEngine};

/// First-seen times of every host's vulnerable findings.
#[derive(Debug, Default)]
pub(super) struct Seen {
    ids: HashMap<Arc<str>, u32>,
    names: Vec<Arc<str>>,
    hosts: HashMap<Uuid, Vec<(u32, u32, i64)>>,
}

impl Seen {
    fn id(&mut self, s: &str) -> u32 {
        if let Some(id) = self.ids.get(s) {
            return *id;
        }
        let id = self.names.len() as u32;
        let name: Arc<str> = Arc::from(s);
        self.names.push(Arc::clone(&name));
        self.ids.insert(name, id);
        id
    }

    /// Adds stored rows (the earliest time wins for a repeated key).
    pub(super) fn load(&mut self, rows: Vec<FirstSeen>) {
        for r in rows {
            let (v, p) = (self.id(&r.vuln_id), self.id(&r.package));
            self.hosts
                .entry(r.host_id)
                .or_default()
                .push((v, p, r.first_seen_at));
        }
        for list in self.hosts.values_mut() {
            list.sort_unstable();
            list.dedup_by(|a, b| a.0 == b.0 && a.1 == b.1);
        }
    }

    /// When a host's finding was first seen (Unix ms).
    pub(super) fn get(&self, host: Uuid, vuln: &str, package: &str) -> Option<i64> {
        let (v, p) = (*self.ids.get(vuln)?, *self.ids.get(package)?);
        let list = self.hosts.get(&host)?;
        list.binary_search_by(|e| (e.0, e.1).cmp(&(v, p)))
            .ok()
            .map(|i| list[i].2)
    }

    /// Records `hits` of `host` not seen before at `now`; returns the new rows.
    fn add(&mut self, org: Uuid, host: Uuid, hits: &[VulnHit<'_>], now: i64) -> Vec<NewFinding> {
        let mut new = Vec::new();
        for h in hits {
            if self.get(host, h.advisory, h.package).is_none() {
                let (v, p) = (self.id(h.advisory), self.id(h.package));
                self.hosts.entry(host).or_default().push((v, p, now));
                new.push(NewFinding {
                    seen: FirstSeen {
                        org_id: org,
                        host_id: host,
                        vuln_id: h.advisory.to_string(),
                        package: h.package.to_string(),
                        first_seen_at: now,
                    },
                    severity: event_severity(h.severity),
                });
            }
        }
        if !new.is_empty()
            && let Some(list) = self.hosts.get_mut(&host)
        {
            list.sort_unstable();
        }
        new
    }
}

/// The policy, exceptions and time a view is computed with.
#[derive(Debug, Clone)]
pub struct Deadlines {
    /// The organisation's policy.
    pub policy: DeadlinePolicy,
    /// The time asked about.
    pub now: DateTime<Utc>,
    /// Exceptions valid at `now`, by vulnerability id.
    exceptions: HashMap<String, Vec<ExceptionRow>>,
    /// The groups of each host (for group-scoped exceptions).
    host_groups: HashMap<Uuid, Vec<Uuid>>,
}

impl Deadlines {
    /// The context of a view: `exceptions` are kept only when valid at `now`;
    /// `host_groups` tells which hosts a group-scoped exception covers.
    pub fn new(
        policy: DeadlinePolicy,
        now: DateTime<Utc>,
        exceptions: Vec<ExceptionRow>,
        host_groups: HashMap<Uuid, Vec<Uuid>>,
    ) -> Deadlines {
        let mut by: HashMap<String, Vec<ExceptionRow>> = HashMap::new();
        for e in exceptions
            .into_iter()
            .filter(|e| e.valid_at(now.timestamp_millis()))
        {
            by.entry(e.new.vuln_id.clone()).or_default().push(e);
        }
        Deadlines {
            policy,
            now,
            exceptions: by,
            host_groups,
        }
    }

    /// The valid exception covering a finding about `ids` on `host` (the one that
    /// holds longest).
    fn exception<'a>(
        &self,
        host: Uuid,
        ids: impl Iterator<Item = &'a str>,
    ) -> Option<&ExceptionRow> {
        if self.exceptions.is_empty() {
            return None;
        }
        let groups = self.host_groups.get(&host);
        ids.filter_map(|id| self.exceptions.get(id))
            .flatten()
            .filter(|e| match e.new.scope {
                ExceptionScope::All => true,
                ExceptionScope::Host(h) => h == host,
                ExceptionScope::Group(g) => groups.is_some_and(|gs| gs.contains(&g)),
            })
            .max_by_key(|e| e.new.expires_at)
    }

    /// The remediation of one vulnerable finding.
    fn remediation(
        &self,
        host: Uuid,
        first_seen: Option<i64>,
        hit: Hit<'_>,
    ) -> (Remediation, Option<(DateTime<Utc>, Basis)>) {
        let first_seen = first_seen
            .and_then(DateTime::from_timestamp_millis)
            .unwrap_or(self.now);
        let added = hit.kev_added.and_then(|d| d.parse::<NaiveDate>().ok());
        let due = hit.fixable.then(|| {
            let d = self.policy.due(first_seen, severity(hit.severity), added);
            (d.at, d.basis)
        });
        let exception = self.exception(host, hit.ids());
        let until = exception.and_then(|e| DateTime::from_timestamp_millis(e.new.expires_at));
        let state = match due {
            Some((at, _)) => wire_state(self.policy.state(at, until, self.now)),
            None if until.is_some() => FindingState::Excepted,
            None => FindingState::Open,
        };
        let r = Remediation {
            first_seen,
            due: due.map(|d| d.0),
            basis: due.map(|d| basis_name(d.1).to_string()),
            state,
            kev_date_added: hit.kev_added.map(str::to_string),
            exception: exception.zip(until).map(|(e, until)| ExceptionRef {
                id: e.id,
                expires_at: until,
            }),
        };
        (r, due)
    }
}

/// What the deadline math needs of a finding or a hit.
#[derive(Clone, Copy)]
struct Hit<'a> {
    advisory: &'a str,
    aliases: &'a [String],
    severity: Severity,
    fixable: bool,
    kev_added: Option<&'a str>,
}

impl<'a> Hit<'a> {
    fn ids(self) -> impl Iterator<Item = &'a str> {
        std::iter::once(self.advisory).chain(self.aliases.iter().map(String::as_str))
    }

    fn of_finding(f: &'a Finding) -> Hit<'a> {
        Hit {
            advisory: &f.advisory,
            aliases: &f.aliases,
            severity: f.severity,
            fixable: f.fixable,
            kev_added: f.known_exploited.as_ref().map(|e| e.date_added.as_str()),
        }
    }

    fn of_vuln(v: &VulnHit<'a>) -> Hit<'a> {
        Hit {
            advisory: v.advisory,
            aliases: v.aliases,
            severity: v.severity,
            fixable: v.fixable,
            kev_added: v.exploited.map(|e| e.date_added.as_str()),
        }
    }
}

/// The severity a `finding.new` event carries (and subscriptions filter on).
pub fn event_severity(s: Severity) -> EventSeverity {
    match s {
        Severity::Critical => EventSeverity::Critical,
        Severity::High => EventSeverity::High,
        Severity::Medium => EventSeverity::Medium,
        Severity::Low => EventSeverity::Low,
        Severity::Negligible => EventSeverity::Negligible,
        Severity::Unknown => EventSeverity::Unknown,
    }
}

/// The policy's severity of the engine's.
pub fn severity(s: Severity) -> deadline::Severity {
    match s {
        Severity::Critical => deadline::Severity::Critical,
        Severity::High => deadline::Severity::High,
        Severity::Medium => deadline::Severity::Medium,
        Severity::Low => deadline::Severity::Low,
        Severity::Negligible => deadline::Severity::Negligible,
        Severity::Unknown => deadline::Severity::Unknown,
    }
}

fn wire_state(s: deadline::FindingState) -> FindingState {
    match s {
        deadline::FindingState::Open => FindingState::Open,
        deadline::FindingState::DueSoon => FindingState::DueSoon,
        deadline::FindingState::Overdue => FindingState::Overdue,
        deadline::FindingState::Excepted => FindingState::Excepted,
    }
}

fn policy_state(s: FindingState) -> deadline::FindingState {
    match s {
        FindingState::Open => deadline::FindingState::Open,
        FindingState::DueSoon => deadline::FindingState::DueSoon,
        FindingState::Overdue => deadline::FindingState::Overdue,
        FindingState::Excepted => deadline::FindingState::Excepted,
    }
}

fn basis_name(b: Basis) -> &'static str {
    match b {
        Basis::Severity => "severity",
        Basis::Kev => "kev",
    }
}

/// An overdue finding before it is shown: due (ms), host, hit, first seen (ms), basis.
type Late<'a> = (i64, Uuid, VulnHit<'a>, i64, Basis);

/// Which overdue findings to list.
#[derive(Debug, Clone, Default)]
pub struct OverdueFilter {
    /// Only these severities (none: all).
    pub severity: HashSet<Severity>,
    /// Only known exploited (`Some(true)`) or only not (`Some(false)`).
    pub kev: Option<bool>,
}

/// A compliance view: the tally and, when asked, the overdue findings (most overdue
/// first).
#[derive(Debug, Clone, Default)]
pub struct ComplianceView {
    /// The tally.
    pub tally: ComplianceTally,
    /// The page of overdue findings asked for.
    pub overdue: Vec<OverdueFinding>,
    /// Overdue findings passing the filter, in all pages.
    pub overdue_total: u64,
}

/// The wire tally of a policy tally.
pub fn tally(c: &Compliance, overdue_kev: u64) -> ComplianceTally {
    ComplianceTally {
        hosts: c.hosts,
        compliant_hosts: c.compliant_hosts,
        host_percent: c.host_percent(),
        hosts_without_data: c.hosts_without_data,
        findings: c.findings,
        open: c.open,
        due_soon: c.due_soon,
        overdue: c.overdue,
        overdue_kev,
        excepted: c.excepted,
        finding_percent: c.finding_percent(),
    }
}

impl VulnEngine {
    /// Records the first-seen time (`now`) of every vulnerable finding of `hosts` (or
    /// of every host) the engine never saw; returns how many were new. With
    /// `announce`, each finding this call stored (not one another node stored first) is
    /// queued as `finding.new` in the same transaction; the sweep of the initial load
    /// does not announce (it backfills the fleet's history).
    pub async fn sweep_first_seen(
        &self,
        hosts: Option<&HashSet<Uuid>>,
        now: DateTime<Utc>,
        announce: bool,
    ) -> Result<u64, StorageError> {
        let rows = {
            let mut inner = self.inner.write().await;
            let super::Inner {
                fleet, seen, orgs, ..
            } = &mut *inner;
            let mut rows = Vec::new();
            fleet.walk_vulnerable(hosts, |host, _, hits| {
                if let Some(org) = orgs.get(&host) {
                    rows.extend(seen.add(*org, host, hits, now.timestamp_millis()));
                }
            });
            rows
        };
        if rows.is_empty() {
            return Ok(0);
        }
        self.store
            .record_new_findings(&rows, announce, now.timestamp_millis())
            .await
    }

    /// Sets the remediation of `host`'s vulnerable findings and returns how many of
    /// them are excepted and fixable (out of the fixable count).
    pub(super) fn annotate(
        seen: &Seen,
        ctx: &Deadlines,
        host: Uuid,
        findings: &mut [Finding],
    ) -> u64 {
        let mut excepted_fixable = 0;
        for f in findings.iter_mut().filter(|f| f.vulnerable) {
            let first = seen.get(host, &f.advisory, &f.package);
            let (r, _) = ctx.remediation(host, first, Hit::of_finding(f));
            excepted_fixable += u64::from(f.fixable && r.state == FindingState::Excepted);
            f.remediation = Some(r);
        }
        excepted_fixable
    }

    /// Compliance of `hosts` of `org` (all its active hosts when `None`) under `ctx`;
    /// with `overdue`, also one page (`skip`, `limit`) of the overdue findings that pass
    /// its filter, most overdue first, and how many there are in all.
    pub async fn compliance(
        &self,
        org: Uuid,
        hosts: Option<&HashSet<Uuid>>,
        ctx: &Deadlines,
        overdue: Option<(&OverdueFilter, usize, usize)>,
    ) -> Result<ComplianceView, EngineError> {
        let active = self.org_hosts(org).await?;
        let hosts: HashSet<Uuid> = match hosts {
            Some(h) => h.intersection(&active).copied().collect(),
            None => active,
        };
        self.current().await?;
        let inner = self.inner.read().await;
        let mut c = Compliance::default();
        let mut overdue_kev = 0u64;
        // (due ms, host, hit, first seen ms, basis): materialized only for the page
        let mut late: Vec<Late<'_>> = Vec::new();
        let mut states = Vec::new();
        inner
            .fleet
            .walk_vulnerable(Some(&hosts), |host, level, hits| {
                states.clear();
                for h in hits.iter().filter(|h| h.fixable) {
                    let first = inner.seen.get(host, h.advisory, h.package);
                    let (r, due) = ctx.remediation(host, first, Hit::of_vuln(h));
                    states.push(policy_state(r.state));
                    if r.state == FindingState::Overdue {
                        overdue_kev += u64::from(h.exploited.is_some());
                        if let (Some((filter, _, _)), Some((at, basis))) = (overdue, due)
                            && (filter.severity.is_empty() || filter.severity.contains(&h.severity))
                            && filter.kev.is_none_or(|k| k == h.exploited.is_some())
                        {
                            let seen_at = r.first_seen.timestamp_millis();
                            late.push((at.timestamp_millis(), host, *h, seen_at, basis));
                        }
                    }
                }
                // a host the data does not cover is unknown, never compliant
                c.add_host(level != DataLevel::None, states.iter().copied());
            });
        // hosts the engine has not correlated (never scanned) are unknown too
        let correlated = inner.fleet.host_count_among(&hosts);
        c.hosts_without_data += (hosts.len() - correlated) as u64;
        let name = |h: &Uuid| inner.hostnames.get(h).map_or("", String::as_str);
        let total = late.len() as u64;
        let (skip, limit) = overdue.map_or((0, 0), |o| (o.1, o.2));
        let end = skip.saturating_add(limit).min(late.len());
        let page: Vec<_> = if skip >= end {
            Vec::new()
        } else {
            let cmp = |a: &Late<'_>, b: &Late<'_>| {
                (a.0, name(&a.1), a.2.advisory, a.2.package).cmp(&(
                    b.0,
                    name(&b.1),
                    b.2.advisory,
                    b.2.package,
                ))
            };
            // only the first `end` in order: select them, then sort those
            if end < late.len() {
                late.select_nth_unstable_by(end - 1, cmp);
                late.truncate(end);
            }
            late.sort_unstable_by(cmp);
            late.into_iter().skip(skip).collect()
        };
        let now = ctx.now.timestamp_millis();
        let overdue = page
            .into_iter()
            .map(|(due, host, h, seen_at, basis)| OverdueFinding {
                host_id: host,
                hostname: name(&host).to_string(),
                vuln_id: h.advisory.to_string(),
                aliases: h.aliases.to_vec(),
                package: h.package.to_string(),
                severity: h.severity.name().to_string(),
                kev_date_added: h.exploited.map(|e| e.date_added.clone()),
                first_seen: DateTime::from_timestamp_millis(seen_at).unwrap_or(ctx.now),
                due: DateTime::from_timestamp_millis(due).unwrap_or(ctx.now),
                basis: basis_name(basis).to_string(),
                days_overdue: (now - due) / 86_400_000,
            })
            .collect();
        Ok(ComplianceView {
            tally: tally(&c, overdue_kev),
            overdue,
            overdue_total: total,
        })
    }
}

impl VulnEngine {
    /// The organisations of the hosts the engine knows.
    pub async fn org_ids(&self) -> Vec<Uuid> {
        let inner = self.inner.read().await;
        let mut orgs: Vec<Uuid> = inner.orgs.values().copied().collect();
        orgs.sort_unstable();
        orgs.dedup();
        orgs
    }

    /// Every overdue finding of `org`'s active hosts under `ctx` (unordered, not a
    /// page: one pass over the fleet's decisions, nothing else materialized), for the
    /// `deadline.missed` announcements.
    pub async fn missed_deadlines(
        &self,
        org: Uuid,
        ctx: &Deadlines,
    ) -> Result<Vec<MissedDeadline>, EngineError> {
        let hosts = self.org_hosts(org).await?;
        self.current().await?;
        let inner = self.inner.read().await;
        let mut missed = Vec::new();
        inner.fleet.walk_vulnerable(Some(&hosts), |host, _, hits| {
            for h in hits.iter().filter(|h| h.fixable) {
                let first = inner.seen.get(host, h.advisory, h.package);
                let (r, due) = ctx.remediation(host, first, Hit::of_vuln(h));
                if let (FindingState::Overdue, Some((at, _))) = (r.state, due) {
                    missed.push(MissedDeadline {
                        host_id: host,
                        vuln_id: h.advisory.to_string(),
                        package: h.package.to_string(),
                        due_ms: at.timestamp_millis(),
                    });
                }
            }
        });
        Ok(missed)
    }
}

impl VulnEngine {
    /// Records first-seen times at the clock's time, logging a failure (the next sweep
    /// writes what is missing).
    pub(super) async fn first_seen_now(&self, hosts: Option<&HashSet<Uuid>>, announce: bool) {
        match self.sweep_first_seen(hosts, Utc::now(), announce).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(new = n, "recorded first-seen times of new findings"),
            Err(e) => tracing::warn!(error = %e, "could not record first-seen times"),
        }
    }

    /// The deadline context of `org` at `now`: its policy (or the defaults), its
    /// exceptions valid then and the hosts of the groups they name.
    pub async fn deadlines(
        &self,
        org: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Deadlines, StorageError> {
        let policy = self
            .store
            .deadline_policy(org)
            .await?
            .map_or_else(DeadlinePolicy::default, |r| r.policy);
        let exceptions = self
            .store
            .list_exceptions(org, Some(now.timestamp_millis()))
            .await?;
        let ctx = Deadlines::new(policy, now, exceptions, HashMap::new());
        // the hosts of every group an exception in force names
        let mut host_groups: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
        for g in ctx.excepted_groups() {
            for h in self.store.group_host_ids(org, g).await?.unwrap_or_default() {
                host_groups.entry(h).or_default().push(g);
            }
        }
        Ok(ctx.with_host_groups(host_groups))
    }
}

impl Deadlines {
    /// The fixable findings of `hosts` a valid exception covers.
    pub(super) fn excepted_fixable(&self, inner: &super::Inner, hosts: &HashSet<Uuid>) -> u64 {
        if self.exceptions.is_empty() {
            return 0;
        }
        let mut n = 0;
        inner.fleet.walk_vulnerable(Some(hosts), |host, _, hits| {
            n += hits
                .iter()
                .filter(|h| h.fixable)
                .filter(|h| self.exception(host, Hit::of_vuln(h).ids()).is_some())
                .count() as u64;
        });
        n
    }

    /// The groups that exceptions in force name.
    pub fn excepted_groups(&self) -> Vec<Uuid> {
        let mut g: Vec<Uuid> = self
            .exceptions
            .values()
            .flatten()
            .filter_map(|e| match e.new.scope {
                ExceptionScope::Group(g) => Some(g),
                _ => None,
            })
            .collect();
        g.sort();
        g.dedup();
        g
    }

    /// Replaces the groups of each host (for group-scoped exceptions).
    pub fn with_host_groups(mut self, host_groups: HashMap<Uuid, Vec<Uuid>>) -> Deadlines {
        self.host_groups = host_groups;
        self
    }
}
