//! SUSE Linux Enterprise and openSUSE (Leap, Leap Micro, Tumbleweed) data, as SUSE
//! publishes it.
//!
//! * [`csaf`]: SUSE's CSAF 2.0 documents, feed [`CSAF_FEED`]: the per-CVE VEX documents
//!   (`csaf-vex/cve-*.json`, `document.category` `csaf_vex`: one [`crate::Record`] per
//!   CVE) and the advisories (`csaf/suse-su-*.json`, `opensuse-su-*.json`,
//!   `csaf_security_advisory`: one record per advisory id, its CVEs as aliases).
//! * SUSE's OSV records go through [`super::osv`] (feed `osv`); what is SUSE's own there
//!   ([`osv_binaries`], [`merge_products`]) lives here: the record's `package.name` is the
//!   **source** package and `ecosystem_specific.binaries` maps every binary the
//!   advisory ships to its fixed `version-release`, so each binary gets a
//!   [`Status::Fixed`] statement of its own beside the source's. The CVE ids are in
//!   `related` (read as aliases by the OSV importer); the `purl` is malformed
//!   (`purl:rpm/suse/NAME&distro=…`) and never read; `affected: []` is a record without
//!   statements.
//! * [`oval`]: SUSE's OVAL files, feed [`OVAL_FEED`]: fixed builds (`evr` "less than"),
//!   "not affected" criteria, one record per CVE merged over SUSE's per-product files.
//!
//! Ecosystems: a product name is mapped by
//! [`crate::ecosystem::names::suse_from_product`], which merges every product of one
//! service pack into one ecosystem (Server, Desktop, SAP, HPC and the modules of 15 SP5
//! are all `SUSE:Linux Enterprise 15 SP5`); products that are not an operating system
//! (SUSE Manager, Enterprise Storage, CaaS Platform, OpenStack Cloud, **Package Hub**)
//! map to nothing, and their statements are left out (not a rejection). See
//! [`product_ecosystem`] for the two names this module corrects before that mapping.
//!
//! Versions: SUSE writes `version-release` without an epoch; the RPM ordering counts a
//! missing epoch as 0, so a host's `0:4.19.2-1.1` and the data's `4.19.2-1.1` are equal.
//!
//! **When products of one ecosystem disagree** (one module of 15 SP5 says samba is fixed
//! in `4.17.12-…`, another that it is not affected), the statements about one
//! `(ecosystem, package)` collapse into one ([`collapse`]): identical statements are
//! kept once; different ones keep the statement under which the **most installed
//! versions are vulnerable**, so that the merge never hides a vulnerability one of the
//! products states: affected (no fix) > will not fix > end of life > under
//! investigation > fixed (the highest fixed version) > not affected. The note says that
//! other products of the ecosystem said otherwise.

pub mod csaf;
pub mod oval;

use std::collections::HashMap;

use serde_json::Value;

use crate::ecosystem::{self, names};
use crate::{Affected, Status};

/// Feed name of SUSE's CSAF documents (VEX and advisories).
pub const CSAF_FEED: &str = "suse-csaf";

/// Feed name of SUSE's OVAL files.
pub const OVAL_FEED: &str = "suse-oval";

/// Whether an ecosystem is SUSE's (`SUSE:…` or `openSUSE:…`).
pub fn is_suse(ecosystem: &str) -> bool {
    matches!(ecosystem::family(ecosystem), "SUSE" | "openSUSE")
}

/// The ecosystem of a SUSE product name: [`names::suse_from_product`], which maps SLE
/// Micro 6.x to `SUSE:Linux Micro 6.x` (SUSE's renamed product, os-release
/// `ID=sl-micro`) and the extended support of a service pack (`SP3-ESPOS`, `SP1-BCL`)
/// like LTSS.
pub fn product_ecosystem(name: &str) -> Option<String> {
    names::suse_from_product(name)
}

/// A binary RPM's `name-version-release`, optionally with `.arch` (which is removed
/// when it is `arch` or, without `arch`, a well-known architecture): `(name,
/// version-release)`. `None` when there are not three non-empty parts.
pub fn split_nvr<'a>(text: &'a str, arch: Option<&str>) -> Option<(&'a str, String)> {
    let text = strip_arch(text, arch);
    let mut parts = text.rsplitn(3, '-');
    let release = parts.next().filter(|s| !s.is_empty())?;
    let version = parts.next().filter(|s| !s.is_empty())?;
    let name = parts.next().filter(|s| !s.is_empty())?;
    Some((name, format!("{version}-{release}")))
}

/// RPM architectures SUSE builds for (and `noarch`, `src`).
const ARCHES: [&str; 14] = [
    "x86_64", "i586", "i686", "noarch", "aarch64", "ppc64le", "ppc64", "ppc", "s390x", "s390",
    "ia64", "armv7hl", "riscv64", "src",
];

/// `text` without its `.arch` suffix: `arch` when given, else one of the architectures
/// SUSE builds for (`x86_64`, `noarch`, `s390x`, ...).
pub fn strip_arch<'a>(text: &'a str, arch: Option<&str>) -> &'a str {
    let strip = |a: &str| {
        text.strip_suffix(a)
            .and_then(|t| t.strip_suffix('.'))
            .filter(|t| !t.is_empty())
    };
    match arch {
        Some(a) if !a.is_empty() => strip(a).unwrap_or(text),
        _ => ARCHES.iter().find_map(|a| strip(a)).unwrap_or(text),
    }
}

/// How strongly a statement says "vulnerable", for [`collapse`]: higher wins.
fn protection(status: &Status) -> u8 {
    match status {
        Status::AffectedNoFix => 6,
        Status::WillNotFix => 5,
        Status::EndOfLife => 4,
        Status::UnderInvestigation => 3,
        Status::UnknownVersion { .. } => 2,
        Status::Fixed { .. } => 1,
        Status::NotAffected => 0,
    }
}

/// One `(ecosystem, package)`'s statements from several products made one (see the
/// module docs): `None` for an empty list. Fixed versions are compared in the
/// ecosystem's ordering; one that does not parse counts as the highest (a statement
/// that cannot be compared is never the one dropped silently: it is kept, and the
/// matcher reports it as an unknown version).
pub fn collapse(mut statements: Vec<Affected>) -> Option<Affected> {
    let first = statements.first()?.clone();
    let scheme = ecosystem::rules(&first.ecosystem).map(|r| r.scheme);
    let higher_fix = |a: &str, b: &str| match scheme.map(|s| s.compare(a, b)) {
        Some(Ok(order)) => order.is_gt(),
        Some(Err(_)) => scheme.is_some_and(|s| s.parse_check(a).is_err()),
        None => a > b,
    };
    let mut best = 0;
    for (i, s) in statements.iter().enumerate().skip(1) {
        let kept = &statements[best];
        let (p, q) = (protection(&s.status), protection(&kept.status));
        let wins = match (&s.status, &kept.status) {
            (Status::Fixed { fixed_version: a }, Status::Fixed { fixed_version: b }) => {
                higher_fix(a, b)
            }
            _ => p > q,
        };
        if wins {
            best = i;
        }
    }
    let disagreeing: Vec<String> = {
        let kept = &statements[best].status;
        let mut others: Vec<String> = statements
            .iter()
            .filter(|s| s.status != *kept)
            .map(|s| match &s.status {
                Status::Fixed { fixed_version } => format!("fixed in {fixed_version}"),
                other => other.name().replace('_', " "),
            })
            .collect();
        others.sort();
        others.dedup();
        others
    };
    let mut kept = statements.swap_remove(best);
    if !disagreeing.is_empty() {
        let others = format!(
            "other products of {} say: {}",
            kept.ecosystem,
            disagreeing.join(", ")
        );
        kept.note = Some(match kept.note.take().filter(|n| !n.is_empty()) {
            Some(note) => format!("{note}; {others}"),
            None => others,
        });
    }
    Some(kept)
}

/// The binaries of a SUSE OSV `affected[]` entry and their fixed `version-release`, from
/// `ecosystem_specific.binaries` (a list of objects, or one object, mapping binary names
/// to versions); empty for another family's ecosystem or an entry without binaries. A
/// binaries value that is not of that shape is an error (the record is rejected).
pub fn osv_binaries(
    ecosystem: &str,
    ecosystem_specific: Option<&Value>,
) -> Result<Vec<(String, String)>, String> {
    if !is_suse(ecosystem) {
        return Ok(Vec::new());
    }
    let Some(binaries) = ecosystem_specific.and_then(|e| e.get("binaries")) else {
        return Ok(Vec::new());
    };
    let maps: Vec<&Value> = match binaries {
        Value::Array(items) => items.iter().collect(),
        Value::Object(_) => vec![binaries],
        Value::Null => Vec::new(),
        _ => return Err("ecosystem_specific.binaries is not a list of objects".into()),
    };
    let mut out = Vec::new();
    for map in maps {
        let Some(map) = map.as_object() else {
            return Err("an entry of ecosystem_specific.binaries is not an object".into());
        };
        for (binary, version) in map {
            match version.as_str().filter(|v| !v.is_empty()) {
                Some(v) if !binary.is_empty() => out.push((binary.clone(), v.to_string())),
                _ => {
                    return Err(format!(
                        "binary '{binary}' in ecosystem_specific.binaries has no version string"
                    ));
                }
            }
        }
    }
    Ok(out)
}

/// Merges the statements of one OSV record about SUSE ecosystems the way [`collapse`]
/// does for CSAF: SUSE's OSV names every product of a service pack, all of them map to
/// one ecosystem, and the unbounded statements (no `introduced`, no `last_affected`)
/// about one `(ecosystem, package)` become one, at the place of the first. Bounded
/// statements and other families' statements are left as they are.
pub fn merge_products(affected: &mut Vec<Affected>) {
    let mut groups: HashMap<(String, String), Vec<Affected>> = HashMap::new();
    let mut order: Vec<Result<Affected, (String, String)>> = Vec::new();
    for a in affected.drain(..) {
        if is_suse(&a.ecosystem) && a.introduced.is_none() && a.last_affected.is_none() {
            let key = (a.ecosystem.clone(), a.package.clone());
            let group = groups.entry(key.clone()).or_default();
            if group.is_empty() {
                order.push(Err(key));
            }
            group.push(a);
        } else {
            order.push(Ok(a));
        }
    }
    for slot in order {
        match slot {
            Ok(a) => affected.push(a),
            Err(key) => affected.extend(groups.remove(&key).and_then(collapse)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statement(status: Status) -> Affected {
        Affected {
            ecosystem: "SUSE:Linux Enterprise 15 SP5".into(),
            package: "samba".into(),
            introduced: None,
            last_affected: None,
            status,
            note: Some("csaf".into()),
            severity: None,
        }
    }

    fn fixed(v: &str) -> Status {
        Status::Fixed {
            fixed_version: v.into(),
        }
    }

    #[test]
    fn product_names_with_local_corrections() {
        assert_eq!(
            product_ecosystem("SUSE Linux Enterprise Micro 6.0").as_deref(),
            Some("SUSE:Linux Micro 6.0")
        );
        assert_eq!(
            product_ecosystem("SUSE Linux Enterprise Micro 5.5").as_deref(),
            Some("SUSE:Linux Enterprise Micro 5.5")
        );
        assert_eq!(
            product_ecosystem("SUSE Linux Enterprise High Performance Computing 15 SP3-ESPOS")
                .as_deref(),
            Some("SUSE:Linux Enterprise 15 SP3 LTSS")
        );
        assert_eq!(
            product_ecosystem("SUSE Linux Enterprise Server 15 SP1-BCL").as_deref(),
            Some("SUSE:Linux Enterprise 15 SP1 LTSS")
        );
        assert_eq!(product_ecosystem("SUSE Package Hub 12"), None);
        assert_eq!(product_ecosystem("SUSE CaaS Platform 4.0"), None);
    }

    #[test]
    fn nvr_and_arch() {
        assert_eq!(
            split_nvr("bind-9.9.4P2-0.6.1.i586", Some("i586")),
            Some(("bind", "9.9.4P2-0.6.1".to_string()))
        );
        assert_eq!(
            split_nvr("samba-client-libs-4.19.4+git.339.acf1ccaa02-1.22", None),
            Some((
                "samba-client-libs",
                "4.19.4+git.339.acf1ccaa02-1.22".to_string()
            ))
        );
        assert_eq!(
            split_nvr("perl-Switch-2.17-4.1.noarch", None),
            Some(("perl-Switch", "2.17-4.1".to_string()))
        );
        assert_eq!(split_nvr("samba", None), None);
        assert_eq!(split_nvr("-1-2", None), None);
        assert_eq!(strip_arch(".x86_64", None), ".x86_64");
    }

    #[test]
    fn disagreeing_products_keep_the_protective_statement() {
        let c = |s: Vec<Status>| collapse(s.into_iter().map(statement).collect());
        assert_eq!(c(vec![]), None);
        let same = c(vec![Status::NotAffected, Status::NotAffected]).unwrap();
        assert_eq!(
            (same.status, same.note.as_deref()),
            (Status::NotAffected, Some("csaf"))
        );
        let kept = c(vec![Status::NotAffected, fixed("4.17.12-3.1")]).unwrap();
        assert_eq!(kept.status, fixed("4.17.12-3.1"));
        assert_eq!(
            kept.note.as_deref(),
            Some("csaf; other products of SUSE:Linux Enterprise 15 SP5 say: not affected")
        );
        // the higher fix wins, in RPM order (4.17.10 > 4.17.9)
        let kept = c(vec![fixed("4.17.10-1.1"), fixed("4.17.9-1.1")]).unwrap();
        assert_eq!(kept.status, fixed("4.17.10-1.1"));
        let kept = c(vec![fixed("4.17.9-1.1"), fixed("4.17.10-1.1")]).unwrap();
        assert_eq!(kept.status, fixed("4.17.10-1.1"));
        let kept = c(vec![
            fixed("4.17.9-1.1"),
            Status::AffectedNoFix,
            Status::UnderInvestigation,
        ])
        .unwrap();
        assert_eq!(kept.status, Status::AffectedNoFix);
        assert!(
            kept.note
                .unwrap()
                .ends_with("fixed in 4.17.9-1.1, under investigation")
        );
    }

    #[test]
    fn osv_binaries_shapes() {
        let v = serde_json::json!({"binaries": [{"a": "1-1", "b": "2-1"}]});
        assert_eq!(
            osv_binaries("SUSE:Linux Enterprise 12", Some(&v)).unwrap(),
            [("a".into(), "1-1".into()), ("b".into(), "2-1".into())]
        );
        assert!(osv_binaries("AlmaLinux:9", Some(&v)).unwrap().is_empty());
        assert!(
            osv_binaries("openSUSE:Tumbleweed", None)
                .unwrap()
                .is_empty()
        );
        let bad = serde_json::json!({"binaries": [{"a": 1}]});
        assert!(osv_binaries("openSUSE:Tumbleweed", Some(&bad)).is_err());
        let bad = serde_json::json!({"binaries": "a"});
        assert!(osv_binaries("openSUSE:Tumbleweed", Some(&bad)).is_err());
    }

    #[test]
    fn osv_statements_of_merged_products() {
        let mut other = statement(fixed("1-1"));
        other.ecosystem = "AlmaLinux:9".into();
        let mut bounded = statement(Status::AffectedNoFix);
        bounded.introduced = Some("4.0-1".into());
        let mut v = vec![
            statement(fixed("4.17.9-1.1")),
            other.clone(),
            other.clone(),
            bounded.clone(),
            statement(fixed("4.17.10-1.1")),
            statement(fixed("4.17.10-1.1")),
        ];
        merge_products(&mut v);
        assert_eq!(v.len(), 4, "{v:#?}");
        assert_eq!(v[0].status, fixed("4.17.10-1.1"));
        assert_eq!(
            v[0].note.as_deref(),
            Some("csaf; other products of SUSE:Linux Enterprise 15 SP5 say: fixed in 4.17.9-1.1")
        );
        assert_eq!(v[1..], [other.clone(), other, bounded]);
    }
}
