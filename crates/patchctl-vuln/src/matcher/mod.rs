//! The in-memory index of vulnerability records and the release-exact matcher.
//!
//! Matching a host is two steps, so that a fleet shares work:
//!
//! 1. [`probes`] turns a host's ecosystems, running kernel and installed packages into
//!    [`Probe`]s: one per `(ecosystem, key, version)` the host has, where the key and
//!    version follow the ecosystem's rules ([`crate::ecosystem::rules`]): for Debian,
//!    Ubuntu and Alpine the **source** package and the installed **source** version (all
//!    binaries of one source share one probe); for the RPM families and Arch the
//!    **binary** name and version, with the source package's name as a second key:
//!    each record is decided on the binary's statements when it names the binary, else
//!    on the source's (a record naming only the source is never missed because another
//!    record names the binary). Packages built from the
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
//! * A version the ecosystem's ordering cannot compare (installed or stated) makes the
//!   record's finding `unknown_version`, with the text that failed; it is never dropped.
//!
//! Layout: this file holds the shared types ([`Advisory`], [`SourcedRecord`], [`Probe`],
//! [`MatchedBy`]) and [`Index::match_host`]; `index` builds and queries the [`Index`];
//! `decide` decides one record's statements on a probe ([`Hit`], RPM module builds and
//! streams); `evidence` turns a hit into a [`Finding`]; `host` turns a host's packages
//! into [`Spec`]s and [`Probe`]s, with `kernel` deciding which kernel package is the
//! running one. The submodules use this file's types and never each other in a circle:
//! `host` → `kernel`, `index`; `index` → `decide`; `evidence` → `decide`.

mod decide;
mod entry;
mod evidence;
mod host;
mod index;
mod kernel;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use patchctl_proto::agent::InstalledPackage;
use patchctl_version::Scheme;
use serde::{Deserialize, Serialize};

use crate::model::Record;

pub use decide::{Hit, is_module_build, is_vulnerable};
pub use evidence::{Finding, finding, sort_findings};
pub use host::{Spec, candidate_source_version, probes, specs};
pub use index::Index;
pub use kernel::record_key_of_source;

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

/// How a probe's key was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum MatchedBy {
    /// The source package and installed source version (Debian, Ubuntu, Alpine).
    Source,
    /// The binary package name (RPM families).
    Binary,
    /// The source package's name, for a record that does not name the binary.
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
    /// For binary-keyed ecosystems: the source package's name, when it differs. Records
    /// that name the source package instead of the binary (Red Hat's `known_affected`,
    /// the Security Data API, Fedora's Bodhi) are decided on it; a record that names the
    /// binary itself is decided on the binary's statements.
    pub fallback: Option<String>,
    /// Installed version compared.
    pub version: String,
    /// How the key was chosen.
    pub matched_by: MatchedBy,
    /// Installed binary packages this probe stands for.
    pub binaries: Vec<String>,
    /// Version ordering.
    pub scheme: Scheme,
}

impl Index {
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
        self.annotate(out.iter_mut());
        sort_findings(&mut out);
        out
    }
}
