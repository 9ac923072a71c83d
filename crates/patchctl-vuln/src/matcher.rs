//! The in-memory index of vulnerability records and the release-exact matcher.
//!
//! Matching a host is two steps, so that a fleet shares work:
//!
//! 1. [`probes`] turns a host's ecosystems, running kernel and installed packages into
//!    [`Probe`]s: one per `(ecosystem, key, version)` the host has, where the key and
//!    version follow the ecosystem's rules ([`crate::ecosystem::rules`]): for Debian,
//!    Ubuntu and Alpine the **source** package and the installed **source** version (all
//!    binaries of one source share one probe); for the RPM families the **binary** name
//!    and version, with the source RPM's name as fallback key. Packages built from the
//!    kernel's source produce a probe only when they are the **running** kernel's image;
//!    headers, `linux-libc-dev`, tools and older kernels still on disk produce none.
//! 2. [`Index::evaluate`] decides one probe against the records of that
//!    `(ecosystem, key)`: a pure function of the probe's `(ecosystem, key, version)`, so
//!    hosts with the same triple can share the answer (the platform caches it).
//!
//! Decision rules, per record and key (all comparisons in the ecosystem's own ordering):
//!
//! * Only the host's most specific ecosystem that the record names counts (a record that
//!   speaks of both `Ubuntu:22.04:LTS` and `Ubuntu:Pro:22.04:LTS` is decided by the Pro
//!   statement on a Pro host).
//! * `fixed(v)` entries: a version inside `[introduced, v)` is vulnerable with fix `v`.
//!   Entries without a lower bound are alternative fixed builds of one advisory (the RPM
//!   families list one per module build): the host reaches the fix when its version is
//!   at or above **any** of them, and the fix shown is the lowest one above it.
//! * RPM module builds: an entry whose fixed version is a module build (`.module`) applies
//!   only to an installed module build and a plain entry only to a plain build; when the
//!   advisory names numeric module streams (`nodejs:18`) and the package's fixed upstream
//!   version follows one of them, the entry applies only to an installed version of the
//!   same stream.
//! * The other statuses apply as stated (within `introduced`/`last_affected` when given);
//!   a vulnerable `fixed` decision wins over them.
//! * Withdrawn records are never matched.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use patchctl_proto::agent::InstalledPackage;
use patchctl_version::Scheme;
use serde::{Deserialize, Serialize};

use crate::cvss;
use crate::ecosystem::{self, KeyedBy, Rules};
use crate::model::{Affected, Record, Status};
use crate::severity::{self, Severity};

/// What the index keeps of a record besides its entries: the evidence shown on findings.
#[derive(Debug, Clone, PartialEq)]
pub struct Advisory {
    /// Feed the record came from (`osv`, `debian-tracker`, ...).
    pub source: String,
    /// When this content of the record was imported.
    pub imported_at: Option<DateTime<Utc>>,
    /// Record id.
    pub id: String,
    /// Aliases (CVE ids first).
    pub aliases: Vec<String>,
    /// Summary.
    pub summary: String,
    /// Distribution severity word.
    pub severity: Option<String>,
    /// CVSS vector.
    pub cvss_vector: Option<String>,
    /// CVSS base score computed from the vector (v2, v3.x).
    pub cvss_score: Option<f32>,
    /// Numeric module streams the advisory names (`nodejs:18` → `18`).
    streams: Vec<String>,
}

/// One statement of one record about one `(ecosystem, package)`, as indexed.
#[derive(Debug, Clone)]
struct Entry {
    advisory: Arc<Advisory>,
    affected: Affected,
    /// `Some(is_module_build)` for RPM entries with a fixed version.
    module: Option<bool>,
    /// The module stream the fixed version follows, if the advisory names one.
    stream: Option<String>,
}

/// A record with where and when it came from, as the index is built from.
#[derive(Debug, Clone)]
pub struct SourcedRecord {
    /// Feed name.
    pub source: String,
    /// When this content was imported.
    pub imported_at: Option<DateTime<Utc>>,
    /// The record.
    pub record: Record,
}

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

/// How a probe's key was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchedBy {
    /// The source package and installed source version (Debian, Ubuntu, Alpine).
    Source,
    /// The binary package name (RPM families).
    Binary,
    /// The source RPM's name, for a binary the records do not name.
    SourceRpm,
}

/// One `(ecosystem, key, version)` of a host, with the binaries it stands for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Probe {
    /// The host ecosystems that apply, least specific first (the probe is decided by the
    /// most specific one a record names).
    pub ecosystems: Arc<[String]>,
    /// Package name records are keyed by.
    pub key: String,
    /// Installed version compared.
    pub version: String,
    /// How the key was chosen.
    pub matched_by: MatchedBy,
    /// Installed binary packages this probe stands for.
    pub binaries: Vec<String>,
    /// Version ordering.
    pub scheme: Scheme,
}

/// The decision for one record on one probe: the deciding statement (shared with the
/// index, not copied) and how it decided.
#[derive(Debug, Clone)]
pub struct Hit {
    entry: Arc<Entry>,
    how: Decided,
}

/// How a statement decided; its words are made only when a finding is shown.
#[derive(Debug, Clone, Copy)]
enum Decided {
    /// The installed version is below the statement's fixed version.
    BelowFixed,
    /// The statement's status applies to every version.
    Every,
    /// The statement's status applies within its bounds: the installed version against
    /// `introduced` and `last_affected`.
    Within(Option<Ordering>, Option<Ordering>),
}

impl Hit {
    /// The record's evidence.
    pub fn advisory(&self) -> &Arc<Advisory> {
        &self.entry.advisory
    }

    /// The distribution severity that applies: the statement's, else the record's.
    pub fn distro_severity(&self) -> Option<&str> {
        self.entry
            .affected
            .severity
            .as_deref()
            .or(self.entry.advisory.severity.as_deref())
    }

    /// Overall severity (distribution's when known, else from CVSS).
    pub fn severity(&self) -> Severity {
        severity::overall(self.distro_severity(), self.entry.advisory.cvss_score)
    }

    /// Fixable: a fixed version exists above the installed one.
    pub fn fixable(&self) -> bool {
        matches!(self.entry.affected.status, Status::Fixed { .. })
    }

    /// The deciding statement.
    pub fn affected(&self) -> &Affected {
        &self.entry.affected
    }

    /// Status for this host (for `fixed`: the fix above the installed version).
    pub fn status(&self) -> &Status {
        &self.entry.affected.status
    }

    /// The comparison that decided, in words (`installed 2.38.1-5 < fixed
    /// 2.38.1-5+deb12u1 (dpkg)`).
    pub fn comparison(&self, probe: &Probe) -> String {
        let a = &self.entry.affected;
        let v = &probe.version;
        let scheme = probe.scheme.name();
        match self.how {
            Decided::BelowFixed => format!(
                "installed {v} < fixed {} ({scheme})",
                a.status.fixed_version().unwrap_or("")
            ),
            Decided::Every => format!(
                "{} for every version of {} in {}",
                a.status.name(),
                a.package,
                a.ecosystem
            ),
            Decided::Within(intro, last) => {
                let mut parts = Vec::new();
                if let (Some(i), Some(o)) = (&a.introduced, intro) {
                    parts.push(format!("installed {v} {} introduced {i}", op(o)));
                }
                if let (Some(l), Some(o)) = (&a.last_affected, last) {
                    parts.push(format!("installed {v} {} last affected {l}", op(o)));
                }
                format!("{} ({scheme})", parts.join(", "))
            }
        }
    }
}

/// A finding on a host, with the evidence that decided it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Advisory or vulnerability id of the record.
    pub advisory: String,
    /// Its aliases (CVE ids first).
    pub aliases: Vec<String>,
    /// Feed.
    pub source: String,
    /// When the record's content was imported.
    pub imported_at: Option<DateTime<Utc>>,
    /// Summary.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub summary: String,
    /// Ecosystem whose statement decided.
    pub ecosystem: String,
    /// Package the record names (source package for Debian/Ubuntu/Alpine).
    pub package: String,
    /// How the host's package was matched to it.
    pub matched_by: MatchedBy,
    /// Installed binary packages concerned.
    pub binaries: Vec<String>,
    /// Installed version compared (the source version where matched by source).
    pub installed_version: String,
    /// Status for this host.
    #[serde(flatten)]
    pub status: Status,
    /// The record's affected range, in words (`>= 0, < 1:9.2p1-2+deb12u3`).
    pub affected_range: String,
    /// The comparison that decided.
    pub comparison: String,
    /// The feed's own words, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Vulnerable: fixed-above-installed, affected without fix, will not fix, end of life.
    pub vulnerable: bool,
    /// Vulnerable and a fixed version exists (`installed < fixed`): the only actionable
    /// kind.
    pub fixable: bool,
    /// Overall severity (distribution's when known, else from CVSS).
    pub severity: Severity,
    /// Distribution severity as published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distro_severity: Option<String>,
    /// CVSS vector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cvss_vector: Option<String>,
    /// CVSS base score from the vector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cvss_score: Option<f32>,
}

impl Finding {
    /// The CVE ids of the finding (its id when a CVE, and its CVE aliases).
    pub fn cve_ids(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.advisory.as_str())
            .chain(self.aliases.iter().map(String::as_str))
            .filter(|s| s.starts_with("CVE-"))
    }

    /// Whether the finding is about this advisory or CVE id.
    pub fn concerns(&self, id: &str) -> bool {
        self.advisory == id || self.aliases.iter().any(|a| a == id)
    }
}

/// `true` for statuses that leave the host exposed.
pub fn is_vulnerable(status: &Status) -> bool {
    matches!(
        status,
        Status::Fixed { .. } | Status::AffectedNoFix | Status::WillNotFix | Status::EndOfLife
    )
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

    /// Every finding of a host: [`probes`] then [`Index::evaluate`] for each.
    pub fn match_host(
        &self,
        ecosystems: &[String],
        running_kernel: Option<&str>,
        packages: &[InstalledPackage],
    ) -> Vec<Finding> {
        let mut out = Vec::new();
        for probe in probes(self, ecosystems, running_kernel, packages) {
            out.extend(self.evaluate(&probe).iter().map(|h| finding(h, &probe)));
        }
        sort_findings(&mut out);
        out
    }
}

/// Orders findings: vulnerable first, then severity (highest first), advisory, package.
pub fn sort_findings(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        (
            !a.vulnerable,
            std::cmp::Reverse(a.severity),
            &a.advisory,
            &a.package,
        )
            .cmp(&(
                !b.vulnerable,
                std::cmp::Reverse(b.severity),
                &b.advisory,
                &b.package,
            ))
    });
}

/// The finding a hit makes on a probe.
pub fn finding(hit: &Hit, probe: &Probe) -> Finding {
    let adv = hit.advisory();
    let affected = hit.affected();
    let vulnerable = is_vulnerable(hit.status());
    Finding {
        advisory: adv.id.clone(),
        aliases: adv.aliases.clone(),
        source: adv.source.clone(),
        imported_at: adv.imported_at,
        summary: adv.summary.clone(),
        ecosystem: affected.ecosystem.clone(),
        package: affected.package.clone(),
        matched_by: probe.matched_by,
        binaries: probe.binaries.clone(),
        installed_version: probe.version.clone(),
        status: affected.status.clone(),
        affected_range: range_words(affected),
        comparison: hit.comparison(probe),
        note: affected.note.clone(),
        vulnerable,
        fixable: hit.fixable(),
        severity: hit.severity(),
        distro_severity: hit.distro_severity().map(str::to_string),
        cvss_vector: adv.cvss_vector.clone(),
        cvss_score: adv.cvss_score,
    }
}

/// The affected range of a statement, in words.
fn range_words(a: &Affected) -> String {
    let low = a.introduced.as_deref().unwrap_or("0");
    match (&a.status, &a.last_affected) {
        (Status::Fixed { fixed_version }, _) => format!(">= {low}, < {fixed_version}"),
        (_, Some(last)) => format!(">= {low}, <= {last} ({})", a.status.name()),
        (s, None) if a.introduced.is_some() => format!(">= {low} ({})", s.name()),
        (s, None) => format!("all versions ({})", s.name()),
    }
}

fn cmp(scheme: Scheme, a: &str, b: &str) -> Option<Ordering> {
    scheme.compare(a, b).ok()
}

fn op(o: Ordering) -> &'static str {
    match o {
        Ordering::Less => "<",
        Ordering::Equal => "=",
        Ordering::Greater => ">",
    }
}

/// Decides one record's statements (all of one ecosystem) on a probe.
fn decide<'e>(probe: &Probe, entries: impl Iterator<Item = &'e Arc<Entry>> + Clone) -> Option<Hit> {
    let v = probe.version.as_str();
    let s = probe.scheme;
    let installed_module = is_module_build(v);
    let applies = |e: &Entry| -> bool {
        if let Some(m) = e.module {
            if m != installed_module {
                return false;
            }
        }
        if let Some(stream) = &e.stream {
            if !follows_stream(v, stream) {
                return false;
            }
        }
        if let Some(intro) = &e.affected.introduced {
            if cmp(s, v, intro) == Some(Ordering::Less) {
                return false;
            }
        }
        if let Some(last) = &e.affected.last_affected {
            if cmp(s, v, last) == Some(Ordering::Greater) {
                return false;
            }
        }
        true
    };
    let applicable = entries.filter(|e| applies(e));

    // fixed statements: bounded ones are intervals, unbounded ones alternatives.
    let mut vulnerable_fix: Option<(&Arc<Entry>, &str)> = None;
    let mut unbounded: Option<(&Arc<Entry>, &str)> = None;
    let mut resolved = false;
    for e in applicable.clone() {
        let Some(fixed) = e.affected.status.fixed_version() else {
            continue;
        };
        match cmp(s, v, fixed) {
            Some(Ordering::Less) if e.affected.introduced.is_some() => {
                vulnerable_fix = lowest(s, vulnerable_fix, (e, fixed));
            }
            Some(Ordering::Less) => unbounded = lowest(s, unbounded, (e, fixed)),
            Some(_) if e.affected.introduced.is_none() => resolved = true,
            _ => {}
        }
    }
    if let (false, Some(u)) = (resolved, unbounded) {
        vulnerable_fix = lowest(s, vulnerable_fix, u);
    }
    if let Some((e, _)) = vulnerable_fix {
        return Some(Hit {
            entry: Arc::clone(e),
            how: Decided::BelowFixed,
        });
    }
    if resolved {
        return None;
    }
    // other statuses
    let mut applicable = applicable;
    let e = applicable.find(|e| e.affected.status.fixed_version().is_none())?;
    let how = match (&e.affected.introduced, &e.affected.last_affected) {
        (None, None) => Decided::Every,
        (intro, last) => Decided::Within(
            intro.as_ref().and_then(|i| cmp(s, v, i)),
            last.as_ref().and_then(|l| cmp(s, v, l)),
        ),
    };
    Some(Hit {
        entry: Arc::clone(e),
        how,
    })
}

fn lowest<'a>(
    s: Scheme,
    cur: Option<(&'a Arc<Entry>, &'a str)>,
    cand: (&'a Arc<Entry>, &'a str),
) -> Option<(&'a Arc<Entry>, &'a str)> {
    match cur {
        Some(c) if cmp(s, c.1, cand.1) != Some(Ordering::Greater) => Some(c),
        _ => Some(cand),
    }
}

/// An RPM release built in a module (`1.module_el9.1.0+16+91bc168f`,
/// `3.module+el8.5.0+123+abc`).
pub fn is_module_build(version: &str) -> bool {
    version.contains(".module_el") || version.contains(".module+el")
}

/// The upstream version of an `[epoch:]version[-release]`.
fn upstream(version: &str) -> &str {
    let v = version.split_once(':').map_or(version, |(_, r)| r);
    v.split_once('-').map_or(v, |(u, _)| u)
}

/// Whether `version`'s upstream version belongs to module stream `stream` (`18.14.2`
/// follows `18`, `8.1.14` follows `8.1`).
fn follows_stream(version: &str, stream: &str) -> bool {
    let u = upstream(version);
    u == stream
        || u.strip_prefix(stream)
            .is_some_and(|rest| rest.starts_with('.'))
}

/// Numeric module streams named in an advisory summary (`Moderate: nodejs:18 security
/// update` → `["18"]`; `php:8.1` → `["8.1"]`; `container-tools:rhel8` names none).
fn module_streams(summary: &str) -> Vec<String> {
    let mut out: Vec<String> = summary
        .split(|c: char| c.is_whitespace() || c == ',' || c == '(' || c == ')')
        .filter_map(|tok| {
            let (name, stream) = tok.split_once(':')?;
            let good_name = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
            let good_stream = !stream.is_empty()
                && stream.starts_with(|c: char| c.is_ascii_digit())
                && stream.chars().all(|c| c.is_ascii_digit() || c == '.');
            (good_name && good_stream).then(|| stream.to_string())
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

// ---------------------------------------------------------------------------------
// Host → probes.

/// The kernel-family packages of a host, and which of them is the running kernel.
fn kernel_source(rules: Rules, p: &InstalledPackage) -> bool {
    match (rules.scheme, rules.keyed_by) {
        (Scheme::Rpm, _) => {
            let src = p.source_name.as_deref().unwrap_or(&p.name);
            src == "kernel"
                || src.starts_with("kernel-rt")
                || src.starts_with("kernel-uek")
                || src.starts_with("kernel-64k")
        }
        (Scheme::Dpkg, _) => {
            let src = record_key_of_source(p.source_name.as_deref().unwrap_or(&p.name));
            is_deb_kernel_source(&src)
        }
        (Scheme::Apk, _) => {
            let src = p.source_name.as_deref().unwrap_or(&p.name);
            matches!(
                src,
                "linux-lts" | "linux-virt" | "linux-edge" | "linux-rpi" | "linux-stable"
            )
        }
        _ => false,
    }
}

/// Ubuntu's kernel flavour source packages (`linux-aws`, `linux-hwe-6.5`, ...) and
/// Debian's `linux`; `linux-firmware`, `linux-base` and the like are not kernels.
fn is_deb_kernel_source(src: &str) -> bool {
    const FLAVOURS: [&str; 19] = [
        "linux-aws",
        "linux-azure",
        "linux-gcp",
        "linux-gke",
        "linux-gkeop",
        "linux-hwe",
        "linux-oem",
        "linux-oracle",
        "linux-kvm",
        "linux-lowlatency",
        "linux-raspi",
        "linux-ibm",
        "linux-nvidia",
        "linux-intel",
        "linux-realtime",
        "linux-riscv",
        "linux-bluefield",
        "linux-xilinx",
        "linux-fips",
    ];
    src == "linux"
        || FLAVOURS
            .iter()
            .any(|f| src == *f || src.strip_prefix(f).is_some_and(|r| r.starts_with('-')))
}

/// The record key of a Debian/Ubuntu kernel source: signed images are built from
/// `linux-signed-*` sources but advisories name the unsigned source (`linux-signed-amd64`
/// → `linux`, `linux-signed-hwe-6.5` → `linux-hwe-6.5`).
pub fn record_key_of_source(src: &str) -> String {
    match src.strip_prefix("linux-signed") {
        Some("") => "linux".to_string(),
        Some(rest) => {
            let rest = rest.trim_start_matches('-');
            if matches!(rest, "amd64" | "arm64" | "i386" | "ppc64el" | "s390x") {
                "linux".to_string()
            } else {
                format!("linux-{rest}")
            }
        }
        None => src.to_string(),
    }
}

/// Whether `p` is the running kernel's image package.
fn is_running_kernel(rules: Rules, p: &InstalledPackage, running: &str) -> bool {
    match rules.scheme {
        Scheme::Rpm => {
            const IMAGES: [&str; 9] = [
                "kernel",
                "kernel-core",
                "kernel-modules",
                "kernel-modules-core",
                "kernel-modules-extra",
                "kernel-rt",
                "kernel-rt-core",
                "kernel-uek",
                "kernel-64k-core",
            ];
            let vr = p.version.split_once(':').map_or(&p.version[..], |(_, r)| r);
            IMAGES.contains(&p.name.as_str())
                && (format!("{vr}.{}", p.arch) == running || vr == running)
        }
        Scheme::Dpkg => {
            p.name == format!("linux-image-{running}")
                || p.name == format!("linux-image-unsigned-{running}")
                || p.name == format!("linux-image-{running}-unsigned")
        }
        Scheme::Apk => {
            // uname -r `6.6.14-0-lts` ↔ package `linux-lts` `6.6.14-r0`
            let mut parts = running.rsplitn(2, '-');
            let flavour = parts.next().unwrap_or("");
            let base = parts.next().unwrap_or("").split('-').next().unwrap_or("");
            p.name == format!("linux-{flavour}") && upstream_apk(&p.version) == base
        }
        Scheme::Pacman => false,
    }
}

fn upstream_apk(v: &str) -> &str {
    v.rsplit_once("-r").map_or(v, |(u, _)| u)
}

/// The running kernel when the host did not say: the newest installed kernel image.
fn newest_kernel(rules: Rules, packages: &[InstalledPackage]) -> Option<String> {
    let images = packages.iter().filter(|p| {
        kernel_source(rules, p)
            && match rules.scheme {
                Scheme::Dpkg => {
                    p.name.starts_with("linux-image-")
                        && p.name[12..].starts_with(|c: char| c.is_ascii_digit())
                }
                Scheme::Rpm => p.name == "kernel-core" || p.name == "kernel",
                _ => true,
            }
    });
    let best = images.max_by(|a, b| {
        rules
            .scheme
            .compare(&a.version, &b.version)
            .unwrap_or(Ordering::Equal)
    })?;
    Some(match rules.scheme {
        Scheme::Dpkg => best.name.trim_start_matches("linux-image-").to_string(),
        Scheme::Rpm => {
            let vr = best
                .version
                .split_once(':')
                .map_or(&best.version[..], |(_, r)| r);
            format!("{vr}.{}", best.arch)
        }
        _ => {
            let flavour = best.name.trim_start_matches("linux-");
            format!("{}-0-{flavour}", upstream_apk(&best.version))
        }
    })
}

/// What one installed package asks of the index, before the key is resolved: borrowed
/// from the package (only a kernel's record key is computed).
#[derive(Debug, Clone)]
pub struct Spec<'a> {
    /// Key to look up first.
    pub key: Cow<'a, str>,
    /// For binary-keyed ecosystems: the source RPM's name, looked up when no record
    /// names `key`.
    pub fallback: Option<&'a str>,
    /// Version compared.
    pub version: &'a str,
    /// The installed binary package.
    pub name: &'a str,
}

/// The host's packages as [`Spec`]s (see the module docs): packages not `installed`
/// and kernel-source packages other than the running kernel's image are left out.
/// `running_kernel` is `uname -r`; when `None`, the newest installed kernel image is
/// taken as running. Returns the ecosystems' rules, `None` when no ecosystem is one
/// PatchCTL matches.
pub fn specs<'a>(
    ecosystems: &[String],
    running_kernel: Option<&str>,
    packages: &'a [InstalledPackage],
    mut each: impl FnMut(Spec<'a>),
) -> Option<Rules> {
    let rules = ecosystems.iter().find_map(|e| ecosystem::rules(e))?;
    let guessed;
    let running = match running_kernel {
        Some(k) => Some(k),
        None => {
            guessed = newest_kernel(rules, packages);
            guessed.as_deref()
        }
    };
    for p in packages {
        if !(p.status.is_empty() || p.status == "installed") {
            continue;
        }
        let kernel = kernel_source(rules, p);
        if kernel && !running.is_some_and(|r| is_running_kernel(rules, p, r)) {
            continue;
        }
        let spec = match rules.keyed_by {
            KeyedBy::Source => {
                let src = p.source_name.as_deref().unwrap_or(&p.name);
                if kernel {
                    // signed images: the unsigned source's name, the binary's version
                    Spec {
                        key: Cow::Owned(record_key_of_source(src)),
                        fallback: None,
                        version: &p.version,
                        name: &p.name,
                    }
                } else {
                    Spec {
                        key: Cow::Borrowed(src),
                        fallback: None,
                        version: p.source_version.as_deref().unwrap_or(&p.version),
                        name: &p.name,
                    }
                }
            }
            KeyedBy::Binary => Spec {
                key: Cow::Borrowed(&p.name),
                fallback: p.source_name.as_deref().filter(|s| *s != p.name),
                version: &p.version,
                name: &p.name,
            },
        };
        each(spec);
    }
    Some(rules)
}

impl Index {
    /// The key a spec is decided on, and how: its own key, or the source RPM's name when
    /// no record of these ecosystems names the binary but one names its source.
    pub fn resolve<'k>(
        &self,
        ecosystems: &[String],
        key: &'k str,
        fallback: Option<&'k str>,
        keyed_by: KeyedBy,
    ) -> (&'k str, MatchedBy) {
        if keyed_by == KeyedBy::Source {
            return (key, MatchedBy::Source);
        }
        match fallback {
            Some(src)
                if !ecosystems.iter().any(|e| self.has(e, key))
                    && ecosystems.iter().any(|e| self.has(e, src)) =>
            {
                (src, MatchedBy::SourceRpm)
            }
            _ => (key, MatchedBy::Binary),
        }
    }
}

/// The probes of a host: its [`specs`], resolved against the index and grouped by
/// `(key, version, matched_by)` (all binaries of one source share one probe).
pub fn probes(
    index: &Index,
    ecosystems: &[String],
    running_kernel: Option<&str>,
    packages: &[InstalledPackage],
) -> Vec<Probe> {
    let Some(rules) = ecosystems.iter().find_map(|e| ecosystem::rules(e)) else {
        return Vec::new();
    };
    let mut grouped: BTreeMap<(String, String, MatchedBy), Vec<String>> = BTreeMap::new();
    specs(ecosystems, running_kernel, packages, |s| {
        let (key, by) = index.resolve(ecosystems, &s.key, s.fallback, rules.keyed_by);
        grouped
            .entry((key.to_string(), s.version.to_string(), by))
            .or_default()
            .push(s.name.to_string());
    });
    let ecos: Arc<[String]> = ecosystems.iter().cloned().collect();
    grouped
        .into_iter()
        .map(|((key, version, matched_by), mut binaries)| {
            binaries.sort();
            binaries.dedup();
            Probe {
                ecosystems: Arc::clone(&ecos),
                key,
                version,
                matched_by,
                binaries,
                scheme: rules.scheme,
            }
        })
        .collect()
}

/// The source version an available update brings, from its binary candidate version:
/// the same transformation that turns the installed binary version into the installed
/// source version (an epoch only the binary has, a binNMU suffix `+bN`).
pub fn candidate_source_version(
    installed_binary: &str,
    installed_source: Option<&str>,
    candidate_binary: &str,
) -> String {
    let Some(src) = installed_source else {
        return candidate_binary.to_string();
    };
    let mut c = candidate_binary.to_string();
    if !src.contains(':') {
        if let Some((_, rest)) = c.split_once(':') {
            c = rest.to_string();
        }
    }
    let bin = installed_binary
        .split_once(':')
        .map_or(installed_binary, |(_, r)| r);
    if bin != src.split_once(':').map_or(src, |(_, r)| r) {
        if let Some(pos) = c.rfind("+b") {
            if c[pos + 2..].chars().all(|ch| ch.is_ascii_digit()) && pos + 2 < c.len() {
                c.truncate(pos);
            }
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkg(name: &str, version: &str, source: Option<(&str, &str)>) -> InstalledPackage {
        InstalledPackage {
            name: name.into(),
            version: version.into(),
            arch: "amd64".into(),
            source_name: source.map(|s| s.0.into()),
            source_version: source.map(|s| s.1.into()),
            status: "installed".into(),
        }
    }

    fn fixed(eco: &str, package: &str, v: &str) -> Affected {
        Affected {
            ecosystem: eco.into(),
            package: package.into(),
            introduced: None,
            last_affected: None,
            status: Status::Fixed {
                fixed_version: v.into(),
            },
            note: None,
            severity: None,
        }
    }

    fn with(eco: &str, package: &str, status: Status) -> Affected {
        Affected {
            status,
            ..fixed(eco, package, "0")
        }
    }

    fn record(id: &str, summary: &str, affected: Vec<Affected>) -> SourcedRecord {
        SourcedRecord {
            source: "test".into(),
            imported_at: None,
            record: Record {
                id: id.into(),
                aliases: vec![],
                summary: summary.into(),
                severity: None,
                cvss_vector: None,
                published: None,
                modified: None,
                withdrawn: false,
                affected,
            },
        }
    }

    fn ecos(e: &[&str]) -> Vec<String> {
        e.iter().map(|s| s.to_string()).collect()
    }

    fn ids(f: &[Finding]) -> Vec<(String, String, &'static str)> {
        f.iter()
            .map(|f| (f.advisory.clone(), f.package.clone(), f.status.name()))
            .collect()
    }

    #[test]
    fn debian_matches_the_source_version_not_the_binary_epoch() {
        let idx = Index::build([record(
            "CVE-1",
            "",
            vec![fixed("Debian:12", "util-linux", "2.38.1-5+deb12u1")],
        )]);
        let host = [
            pkg("bsdutils", "1:2.38.1-5", Some(("util-linux", "2.38.1-5"))),
            pkg("util-linux", "2.38.1-5", Some(("util-linux", "2.38.1-5"))),
        ];
        let f = idx.match_host(&ecos(&["Debian:12"]), None, &host);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].binaries, ["bsdutils", "util-linux"]);
        assert_eq!(f[0].installed_version, "2.38.1-5");
        assert!(f[0].fixable && f[0].vulnerable);
        assert_eq!(
            f[0].comparison,
            "installed 2.38.1-5 < fixed 2.38.1-5+deb12u1 (dpkg)"
        );
        // another release's data never applies
        assert!(
            idx.match_host(&ecos(&["Debian:11"]), None, &host)
                .is_empty()
        );
        // at the fix: nothing
        let fixed_host = [pkg(
            "bsdutils",
            "1:2.38.1-5+deb12u1",
            Some(("util-linux", "2.38.1-5+deb12u1")),
        )];
        assert!(
            idx.match_host(&ecos(&["Debian:12"]), None, &fixed_host)
                .is_empty()
        );
    }

    #[test]
    fn statuses_are_shown_as_what_they_are() {
        let idx = Index::build([
            record(
                "A",
                "",
                vec![with("Debian:12", "xz-utils", Status::NotAffected)],
            ),
            record(
                "B",
                "",
                vec![with("Debian:12", "coreutils", Status::WillNotFix)],
            ),
            record(
                "C",
                "",
                vec![with("Debian:12", "expat", Status::AffectedNoFix)],
            ),
        ]);
        let host = [
            pkg("xz-utils", "5.4.1-0.2", None),
            pkg("coreutils", "9.1-1", None),
            pkg("libexpat1", "2.5.0-1", Some(("expat", "2.5.0-1"))),
        ];
        let f = idx.match_host(&ecos(&["Debian:12"]), None, &host);
        let got = ids(&f);
        assert!(got.contains(&("A".into(), "xz-utils".into(), "not_affected")));
        assert!(got.contains(&("B".into(), "coreutils".into(), "will_not_fix")));
        assert!(got.contains(&("C".into(), "expat".into(), "affected_no_fix")));
        assert!(f.iter().all(|f| !f.fixable));
        assert!(!f.iter().find(|f| f.advisory == "A").unwrap().vulnerable);
    }

    #[test]
    fn most_specific_ecosystem_decides() {
        let idx = Index::build([record(
            "U",
            "",
            vec![
                with("Ubuntu:16.04:LTS", "wayland", Status::WillNotFix),
                fixed(
                    "Ubuntu:Pro:16.04:LTS",
                    "wayland",
                    "1.12.0-1~ubuntu16.04.3+esm1",
                ),
            ],
        )]);
        let host = [pkg(
            "libwayland-client0",
            "1.12.0-1~ubuntu16.04.3+esm1",
            Some(("wayland", "1.12.0-1~ubuntu16.04.3+esm1")),
        )];
        assert!(
            idx.match_host(
                &ecos(&["Ubuntu:16.04:LTS", "Ubuntu:Pro:16.04:LTS"]),
                None,
                &host
            )
            .is_empty()
        );
        let f = idx.match_host(&ecos(&["Ubuntu:16.04:LTS"]), None, &host);
        assert_eq!(ids(&f), [("U".into(), "wayland".into(), "will_not_fix")]);
    }

    #[test]
    fn rpm_alternative_builds_and_module_streams() {
        let idx = Index::build([
            record(
                "ALSA-1",
                "Moderate: oci security update",
                vec![
                    fixed(
                        "AlmaLinux:8",
                        "oci-umount",
                        "2:2.3.4-2.module_el8.5.0+119+9a9ec082",
                    ),
                    fixed(
                        "AlmaLinux:8",
                        "oci-umount",
                        "2:2.3.4-2.module_el8.4.0+2496+12421f43",
                    ),
                ],
            ),
            record(
                "ALSA-18",
                "Important: nodejs:18 security update",
                vec![fixed(
                    "AlmaLinux:8",
                    "nodejs",
                    "1:18.14.2-3.module_el8.8.0+30+e3312493",
                )],
            ),
            record(
                "ALSA-20",
                "Important: nodejs:20 security update",
                vec![fixed(
                    "AlmaLinux:8",
                    "nodejs",
                    "1:20.5.1-1.module_el8.8.0+31+aaaaaaaa",
                )],
            ),
            record(
                "ALSA-plain",
                "Important: nodejs security update",
                vec![fixed("AlmaLinux:8", "nodejs", "1:16.20.2-1.el8")],
            ),
        ]);
        let e = ecos(&["AlmaLinux:8"]);
        // at the 8.4 build: fixed (one of the alternatives)
        let at = [pkg(
            "oci-umount",
            "2:2.3.4-2.module_el8.4.0+2496+12421f43",
            None,
        )];
        assert!(idx.match_host(&e, None, &at).is_empty());
        // below both: vulnerable, the lowest fix shown
        let below = [pkg(
            "oci-umount",
            "2:2.3.4-1.module_el8.4.0+2000+12421f43",
            None,
        )];
        let f = idx.match_host(&e, None, &below);
        assert_eq!(
            f[0].status.fixed_version(),
            Some("2:2.3.4-2.module_el8.4.0+2496+12421f43")
        );
        // nodejs 18 module: only the nodejs:18 advisory applies
        let n18 = [pkg(
            "nodejs",
            "1:18.10.0-1.module_el8.7.0+10+bbbbbbbb",
            None,
        )];
        assert_eq!(
            ids(&idx.match_host(&e, None, &n18)),
            [("ALSA-18".into(), "nodejs".into(), "fixed")]
        );
        // plain nodejs 16: module advisories do not apply
        let n16 = [pkg("nodejs", "1:16.19.0-1.el8", None)];
        assert_eq!(
            ids(&idx.match_host(&e, None, &n16)),
            [("ALSA-plain".into(), "nodejs".into(), "fixed")]
        );
    }

    #[test]
    fn rpm_falls_back_to_the_source_rpm() {
        let idx = Index::build([record(
            "ALSA-2",
            "",
            vec![fixed("AlmaLinux:9", "openssl", "1:3.0.7-27.el9")],
        )]);
        let host = [pkg(
            "openssl-fips-provider",
            "1:3.0.7-20.el9",
            Some(("openssl", "3.0.7-20.el9")),
        )];
        let f = idx.match_host(&ecos(&["AlmaLinux:9"]), None, &host);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].matched_by, MatchedBy::SourceRpm);
        assert_eq!(f[0].installed_version, "1:3.0.7-20.el9");
    }

    #[test]
    fn only_the_running_kernel_counts() {
        let idx = Index::build([
            record("K", "", vec![fixed("Debian:12", "linux", "6.1.90-1")]),
            record(
                "RK",
                "",
                vec![
                    fixed("AlmaLinux:9", "kernel-core", "5.14.0-427.el9"),
                    fixed("AlmaLinux:9", "kernel-headers", "5.14.0-427.el9"),
                    fixed("AlmaLinux:9", "bpftool", "7.3.0-427.el9"),
                ],
            ),
        ]);
        let deb = [
            pkg(
                "linux-image-6.1.0-18-amd64",
                "6.1.76-1",
                Some(("linux-signed-amd64", "6.1.76+1")),
            ),
            pkg(
                "linux-image-6.1.0-17-amd64",
                "6.1.69-1",
                Some(("linux-signed-amd64", "6.1.69+1")),
            ),
            pkg(
                "linux-headers-6.1.0-18-amd64",
                "6.1.76-1",
                Some(("linux", "6.1.76-1")),
            ),
            pkg("linux-libc-dev", "6.1.76-1", Some(("linux", "6.1.76-1"))),
        ];
        let f = idx.match_host(&ecos(&["Debian:12"]), Some("6.1.0-18-amd64"), &deb);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].binaries, ["linux-image-6.1.0-18-amd64"]);
        assert_eq!(f[0].installed_version, "6.1.76-1");
        // running kernel unknown: the newest image is taken
        assert_eq!(
            idx.match_host(&ecos(&["Debian:12"]), None, &deb)[0].binaries,
            ["linux-image-6.1.0-18-amd64"]
        );
        // already running a fixed kernel: headers of the old one do not count
        let f = idx.match_host(&ecos(&["Debian:12"]), Some("6.1.0-21-amd64"), &deb);
        assert!(f.is_empty(), "{f:?}");

        let mut core = pkg(
            "kernel-core",
            "5.14.0-362.el9",
            Some(("kernel", "5.14.0-362.el9")),
        );
        core.arch = "x86_64".into();
        let rpm = [
            core,
            pkg(
                "kernel-headers",
                "5.14.0-362.el9",
                Some(("kernel", "5.14.0-362.el9")),
            ),
            pkg(
                "bpftool",
                "7.2.0-362.el9",
                Some(("kernel", "5.14.0-362.el9")),
            ),
        ];
        let f = idx.match_host(&ecos(&["AlmaLinux:9"]), Some("5.14.0-362.el9.x86_64"), &rpm);
        assert_eq!(ids(&f), [("RK".into(), "kernel-core".into(), "fixed")]);
    }

    #[test]
    fn candidate_source_versions() {
        assert_eq!(
            candidate_source_version("1:2.38.1-5", Some("2.38.1-5"), "1:2.38.1-5+deb12u1"),
            "2.38.1-5+deb12u1"
        );
        assert_eq!(
            candidate_source_version("1.0-1+b1", Some("1.0-1"), "1.0-2+b1"),
            "1.0-2"
        );
        assert_eq!(candidate_source_version("1.0-1", None, "1.0-2"), "1.0-2");
        assert_eq!(
            candidate_source_version("1:9.2p1-2", Some("1:9.2p1-2"), "1:9.2p1-2+deb12u3"),
            "1:9.2p1-2+deb12u3"
        );
    }

    #[test]
    fn incremental_upsert_and_remove() {
        let mut idx = Index::build([record("A", "", vec![fixed("Debian:12", "a", "2")])]);
        assert_eq!(idx.len(), 1);
        let touched = idx.upsert(record("A", "", vec![fixed("Debian:12", "b", "2")]));
        assert_eq!(
            touched,
            [
                ("Debian:12".to_string(), "a".to_string()),
                ("Debian:12".to_string(), "b".to_string())
            ]
        );
        assert!(!idx.has("Debian:12", "a") && idx.has("Debian:12", "b"));
        assert_eq!(idx.remove("test", "A").len(), 1);
        assert!(idx.is_empty());
    }

    #[test]
    fn streams_from_summaries() {
        assert_eq!(
            module_streams("Moderate: nodejs:18 security update"),
            ["18"]
        );
        assert_eq!(
            module_streams("Important: php:8.1 and ruby:3.1 update"),
            ["3.1", "8.1"]
        );
        assert!(module_streams("Important: container-tools:rhel8 security update").is_empty());
    }
}
