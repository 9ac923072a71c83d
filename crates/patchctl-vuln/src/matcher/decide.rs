//! The decision of one record's statements on one probe: which statement applies, how it
//! decided (below a fixed version, every version, within bounds), the comparison in words,
//! and the RPM module-build and module-stream rules the decision follows.

use std::cmp::Ordering;
use std::sync::Arc;

use patchctl_version::Scheme;

use super::entry::Entry;
use super::{Advisory, Probe};
use crate::model::{Affected, Status};
use crate::severity::{self, Severity};

/// The decision for one record on one probe: the deciding statement (shared with the
/// index, not copied) and how it decided.
#[derive(Debug, Clone)]
pub struct Hit {
    entry: Arc<Entry>,
    /// The `(ecosystem, package)` the statement is about (the index's key).
    ecosystem: Arc<str>,
    package: Arc<str>,
    how: Decided,
    /// Decided on the statements about the probe's fallback (source) key.
    by_fallback: bool,
}

/// How a statement decided; its words are made only when a finding is shown.
#[derive(Debug, Clone)]
enum Decided {
    /// The installed version is below the statement's fixed version.
    BelowFixed,
    /// The statement's status applies to every version.
    Every,
    /// The statement's status applies within its bounds: the installed version against
    /// `introduced` and `last_affected`.
    Within(Option<Ordering>, Option<Ordering>),
    /// The ecosystem's ordering could not compare the installed version with a version
    /// of the statement.
    Uncomparable(Arc<Uncomparable>),
}

/// A comparison the ecosystem's ordering could not make.
#[derive(Debug)]
struct Uncomparable {
    /// The version text that failed (installed or stated).
    failed: String,
    /// The statement's version it was compared with, and which bound it is.
    against: (String, &'static str),
    /// What the version parser said.
    reason: String,
}

impl Hit {
    /// The record's evidence.
    pub fn advisory(&self) -> &Arc<Advisory> {
        &self.entry.advisory
    }

    /// The distribution severity that applies: the statement's, else the record's.
    pub fn distro_severity(&self) -> Option<&str> {
        self.entry
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
        self.entry.fixed_version().is_some() && !matches!(self.how, Decided::Uncomparable(_))
    }

    /// Whether the host is exposed ([`is_vulnerable`] of [`Hit::status`], without
    /// building the status).
    pub fn vulnerable(&self) -> bool {
        !matches!(self.how, Decided::Uncomparable(_)) && self.entry.exposes()
    }

    /// Whether the versions could not be compared (`unknown_version`).
    pub fn uncomparable(&self) -> bool {
        matches!(self.how, Decided::Uncomparable(_))
    }

    /// Decided on the statements about the probe's fallback (source) key.
    pub fn by_fallback(&self) -> bool {
        self.by_fallback
    }

    /// The deciding statement, as the model writes it (built on each call).
    pub fn affected(&self) -> Affected {
        self.entry.affected(&self.ecosystem, &self.package)
    }

    /// The package of the deciding statement (a finding's `package`).
    pub fn package(&self) -> &str {
        &self.package
    }

    /// The ecosystem of the deciding statement.
    pub fn ecosystem(&self) -> &str {
        &self.ecosystem
    }

    /// Status for this host (for `fixed`: the fix above the installed version;
    /// `unknown_version` with the failing text when the versions could not be compared).
    pub fn status(&self) -> Status {
        match &self.how {
            Decided::Uncomparable(u) => Status::UnknownVersion {
                failed_version: u.failed.clone(),
            },
            _ => self.entry.status(),
        }
    }

    /// The comparison that decided, in words (`installed 2.38.1-5 < fixed
    /// 2.38.1-5+deb12u1 (dpkg)`).
    pub fn comparison(&self, probe: &Probe) -> String {
        let a = &self.affected();
        let v = &probe.version;
        let scheme = probe.scheme.name();
        match &self.how {
            Decided::Uncomparable(u) => format!(
                "cannot compare installed {v} with {} {} ({scheme}): {:?} is not a valid {scheme} version ({})",
                u.against.1, u.against.0, u.failed, u.reason
            ),
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
                    parts.push(format!("installed {v} {} introduced {i}", op(*o)));
                }
                if let (Some(l), Some(o)) = (&a.last_affected, last) {
                    parts.push(format!("installed {v} {} last affected {l}", op(*o)));
                }
                format!("{} ({scheme})", parts.join(", "))
            }
        }
    }
}

/// `true` for statuses that leave the host exposed.
pub fn is_vulnerable(status: &Status) -> bool {
    matches!(
        status,
        Status::Fixed { .. } | Status::AffectedNoFix | Status::WillNotFix | Status::EndOfLife
    )
}

fn cmp(scheme: Scheme, a: &str, b: &str) -> Option<Ordering> {
    scheme.compare(a, b).ok()
}

/// Why `installed` and `stated` (the statement's `bound`) cannot be compared, or `None`
/// when they can.
fn uncomparable(
    scheme: Scheme,
    installed: &str,
    stated: &str,
    bound: &'static str,
) -> Option<Uncomparable> {
    let err = scheme.compare(installed, stated).err()?;
    let (failed, reason) = match scheme.parse_check(installed) {
        Err(e) => (installed, e.to_string()),
        Ok(()) => (
            stated,
            scheme
                .parse_check(stated)
                .err()
                .map_or_else(|| err.to_string(), |e| e.to_string()),
        ),
    };
    Some(Uncomparable {
        failed: failed.to_string(),
        against: (stated.to_string(), bound),
        reason,
    })
}

fn op(o: Ordering) -> &'static str {
    match o {
        Ordering::Less => "<",
        Ordering::Equal => "=",
        Ordering::Greater => ">",
    }
}

/// Decides one record's statements (all of one ecosystem and key) on a probe.
pub(super) fn decide<'e>(
    probe: &Probe,
    key: (&Arc<str>, &Arc<str>),
    entries: impl Iterator<Item = &'e Arc<Entry>> + Clone,
    by_fallback: bool,
) -> Option<Hit> {
    let v = probe.version.as_str();
    let s = probe.scheme;
    let installed_module = is_module_build(v);
    let hit = |e: &Arc<Entry>, how: Decided| Hit {
        entry: Arc::clone(e),
        ecosystem: Arc::clone(key.0),
        package: Arc::clone(key.1),
        how,
        by_fallback,
    };
    // the first comparison that could not be made, if no statement decides otherwise
    let mut unknown: Option<(&Arc<Entry>, Uncomparable)> = None;
    let mut note_unknown = |e: &'e Arc<Entry>, stated: &str, bound: &'static str| {
        if unknown.is_none() {
            unknown = uncomparable(s, v, stated, bound).map(|u| (e, u));
        }
    };
    let mut applicable: Vec<&'e Arc<Entry>> = Vec::new();
    for e in entries {
        if let Some(m) = e.module {
            if m != installed_module {
                continue;
            }
        }
        if let Some(stream) = e.stream() {
            if !follows_stream(v, stream) {
                continue;
            }
        }
        if let Some(intro) = e.introduced() {
            match cmp(s, v, intro) {
                Some(Ordering::Less) => continue,
                Some(_) => {}
                None => {
                    note_unknown(e, intro, "introduced");
                    continue;
                }
            }
        }
        if let Some(last) = e.last_affected() {
            match cmp(s, v, last) {
                Some(Ordering::Greater) => continue,
                Some(_) => {}
                None => {
                    note_unknown(e, last, "last affected");
                    continue;
                }
            }
        }
        applicable.push(e);
    }

    // fixed statements: bounded ones are intervals, unbounded ones alternatives.
    let mut vulnerable_fix: Option<(&Arc<Entry>, &str)> = None;
    let mut unbounded: Option<(&Arc<Entry>, &str)> = None;
    let mut resolved = false;
    for e in applicable.iter().copied() {
        let Some(fixed) = e.fixed_version() else {
            continue;
        };
        match cmp(s, v, fixed) {
            Some(Ordering::Less) if e.introduced().is_some() => {
                vulnerable_fix = lowest(s, vulnerable_fix, (e, fixed));
            }
            Some(Ordering::Less) => unbounded = lowest(s, unbounded, (e, fixed)),
            Some(_) if e.introduced().is_none() => resolved = true,
            Some(_) => {}
            None => note_unknown(e, fixed, "fixed"),
        }
    }
    if let (false, Some(u)) = (resolved, unbounded) {
        vulnerable_fix = lowest(s, vulnerable_fix, u);
    }
    if let Some((e, _)) = vulnerable_fix {
        return Some(hit(e, Decided::BelowFixed));
    }
    if resolved {
        return None;
    }
    if let Some((e, u)) = unknown {
        return Some(hit(e, Decided::Uncomparable(Arc::new(u))));
    }
    // other statuses
    let e = applicable
        .into_iter()
        .find(|e| e.fixed_version().is_none())?;
    let how = match (e.introduced(), e.last_affected()) {
        (None, None) => Decided::Every,
        (intro, last) => Decided::Within(
            intro.as_ref().and_then(|i| cmp(s, v, i)),
            last.as_ref().and_then(|l| cmp(s, v, l)),
        ),
    };
    Some(hit(e, how))
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
pub(super) fn follows_stream(version: &str, stream: &str) -> bool {
    let u = upstream(version);
    u == stream
        || u.strip_prefix(stream)
            .is_some_and(|rest| rest.starts_with('.'))
}

/// Numeric module streams named in an advisory summary (`Moderate: nodejs:18 security
/// update` → `["18"]`; `php:8.1` → `["8.1"]`; `container-tools:rhel8` names none).
pub(super) fn module_streams(summary: &str) -> Vec<String> {
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
