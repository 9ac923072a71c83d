//! Host → probes: the installed packages a host's findings are decided on, as [`Spec`]s
//! keyed by the ecosystem's rules, resolved against the index and grouped into
//! [`Probe`]s.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use patchctl_proto::agent::InstalledPackage;

use super::index::Index;
use super::kernel::{is_running_kernel, kernel_source, newest_kernel, record_key_of_source};
use super::{MatchedBy, Probe};
use crate::ecosystem::{self, KeyedBy, Rules};

/// What one installed package asks of the index, before the key is resolved: borrowed
/// from the package (only a kernel's record key is computed).
#[derive(Debug, Clone)]
pub struct Spec<'a> {
    /// Key to look up first.
    pub key: Cow<'a, str>,
    /// For binary-keyed ecosystems: the source package's name (when it differs), the
    /// second key records may be stated under.
    pub fallback: Option<&'a str>,
    /// Version compared.
    pub version: &'a str,
    /// The installed binary package.
    pub name: &'a str,
}

/// The host's packages as [`Spec`]s (see the matcher's module docs): packages not `installed`
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

/// The probes of a host: its [`specs`], grouped by `(key, fallback key, version)` (all
/// binaries of one source share one probe where records are keyed by source, and so do
/// the binaries of one source RPM that no record names, decided on the source's name).
pub fn probes(
    index: &Index,
    ecosystems: &[String],
    running_kernel: Option<&str>,
    packages: &[InstalledPackage],
) -> Vec<Probe> {
    let Some(rules) = ecosystems.iter().find_map(|e| ecosystem::rules(e)) else {
        return Vec::new();
    };
    type Group = (String, Option<String>, String, MatchedBy);
    let mut grouped: BTreeMap<Group, Vec<String>> = BTreeMap::new();
    let own = match rules.keyed_by {
        KeyedBy::Source => MatchedBy::Source,
        KeyedBy::Binary => MatchedBy::Binary,
    };
    let named = |key: &str| ecosystems.iter().any(|e| index.has(e, key));
    specs(ecosystems, running_kernel, packages, |s| {
        let group = match s.fallback {
            // no record names the binary: one probe per source, decided on its name
            Some(src) if !named(&s.key) && named(src) => (
                src.to_string(),
                None,
                s.version.to_string(),
                MatchedBy::SourceRpm,
            ),
            fallback => (
                s.key.to_string(),
                fallback.map(str::to_string),
                s.version.to_string(),
                own,
            ),
        };
        grouped.entry(group).or_default().push(s.name.to_string());
    });
    let ecos: Arc<[String]> = ecosystems.iter().cloned().collect();
    grouped
        .into_iter()
        .map(|((key, fallback, version, matched_by), mut binaries)| {
            binaries.sort();
            binaries.dedup();
            Probe {
                ecosystems: Arc::clone(&ecos),
                key,
                fallback,
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
