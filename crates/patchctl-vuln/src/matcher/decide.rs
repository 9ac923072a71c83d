//! The decision of one record's statements on one probe: which statement applies, how it
//! decided (below a fixed version, every version, within bounds), the comparison in words,
//! and the RPM module-build and module-stream rules the decision follows.

use std::cmp::Ordering;
use std::sync::Arc;

use patchctl_version::Scheme;

use super::{Advisory, Entry, Probe};
use crate::model::{Affected, Status};
use crate::severity::{self, Severity};

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

fn op(o: Ordering) -> &'static str {
    match o {
        Ordering::Less => "<",
        Ordering::Equal => "=",
        Ordering::Greater => ">",
    }
}

/// Decides one record's statements (all of one ecosystem) on a probe.
pub(super) fn decide<'e>(
    probe: &Probe,
    entries: impl Iterator<Item = &'e Arc<Entry>> + Clone,
) -> Option<Hit> {
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
