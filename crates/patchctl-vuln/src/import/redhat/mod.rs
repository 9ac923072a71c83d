//! Red Hat Enterprise Linux vulnerability data: CSAF VEX and RHSA advisories (feed
//! [`FEED_CSAF`]), the bulk archive's `deletions.csv` (same feed), and the Security Data
//! API's per-CVE JSON (feed [`FEED_API`]). Red Hat's OSV goes through [`super::osv`].
//!
//! Every statement names an RPM of one product stream; the stream's CPE gives the
//! ecosystem through [`names::redhat_from_cpe`] (a product that is not the RHEL operating
//! system, such as OpenShift or Satellite, has none and is left out, not rejected).
//! Statuses:
//!
//! | Red Hat | status | note |
//! |---|---|---|
//! | CSAF `fixed`, API `affected_release` | `fixed` (`epoch:version-release`, the epoch always written) | the advisory (`RHSA-2024:2289`) |
//! | `known_affected` + remediation `no_fix_planned` "Will not fix", API "Will not fix" | `will_not_fix` | Red Hat's words |
//! | `known_affected` + `no_fix_planned` "Out of support scope", API the same | `end_of_life` | Red Hat's words |
//! | `known_affected` + `none_available` ("Affected", "Deferred", "Fix deferred"), or no remediation; API "Affected", "Fix deferred" | `affected_no_fix` | Red Hat's words |
//! | `known_not_affected`, API "Not affected" | `not_affected` | the flag (`vulnerable_code_not_present`) |
//! | `under_investigation`, API "Under investigation" | `under_investigation` | |
//!
//! One statement per `(ecosystem, package)` (per module stream for module builds): the
//! arches collapse, and when several streams of one ecosystem state something about a
//! package (the main stream of RHEL 9 lists 9.2's and 9.3's z-stream builds) a `fixed`
//! statement beats an unfixed one, which beats `under_investigation`, which beats
//! `not_affected`; of two fixed versions the higher is kept (a main-stream host is
//! expected at the newest minor release; a host that stays on an older minor is decided
//! by its EUS statement). A product stream `X.Y.0.Z.MAIN.EUS` (the main stream of minor
//! X.Y, continued as EUS) also states for `Red Hat:X.Y EUS`.

mod api;
mod component;
mod csaf;
mod deletions;

use std::cmp::Ordering;
use std::collections::BTreeMap;

use patchctl_version::Scheme;
use serde_json::Value;

use crate::ecosystem::names;
use crate::{Affected, Status};

pub use api::parse as parse_api;
pub use csaf::parse as parse_csaf;
pub use deletions::{is_deletions_list, parse as parse_deletions};

/// Feed of Red Hat's CSAF documents (VEX per CVE, RHSA advisories) and of the bulk
/// archive's deletions.
pub const FEED_CSAF: &str = "redhat-csaf";

/// Feed of the Red Hat Security Data API's per-CVE JSON.
pub const FEED_API: &str = "redhat-api";

/// What [`super::ImportError::NotRecords`] says of the API's list endpoint.
pub const API_LIST_HINT: &str = "the Red Hat Security Data API's CVE list (cve.json), which \
     holds no statements: import the per-CVE documents it links (CVE-….json)";

/// Whether `v` is a CSAF document published by Red Hat (`document.category` `csaf_vex`
/// or `csaf_security_advisory`).
pub fn looks_like_csaf(v: &Value) -> bool {
    let Some(doc) = v.get("document") else {
        return false;
    };
    let category = doc.get("category").and_then(Value::as_str);
    let publisher = doc.get("publisher");
    let text = |k: &str| publisher.and_then(|p| p.get(k)).and_then(Value::as_str);
    matches!(category, Some("csaf_vex" | "csaf_security_advisory"))
        && (text("namespace").is_some_and(|n| n.contains("redhat.com"))
            || text("name").is_some_and(|n| n.starts_with("Red Hat")))
}

/// Whether `v` is one CVE of the Security Data API: an object whose `name` is a CVE id,
/// with `threat_severity`, `affected_release` or `package_state`.
pub fn looks_like_api(v: &Value) -> bool {
    v.get("name")
        .and_then(Value::as_str)
        .is_some_and(|n| n.starts_with("CVE-"))
        && ["threat_severity", "affected_release", "package_state"]
            .iter()
            .any(|k| v.get(k).is_some())
}

/// Whether `v` is the API's list endpoint (`cve.json`): an array of objects with `CVE`
/// and `resource_url`.
pub fn looks_like_api_list(v: &Value) -> bool {
    v.as_array().is_some_and(|items| {
        items
            .first()
            .is_some_and(|first| first.get("CVE").is_some() && first.get("resource_url").is_some())
    })
}

/// Whether a file name is one a directory walk reads for this module: an extensionless
/// API document (`CVE-2023-4863`) or the bulk archive's `deletions.csv`.
pub fn wanted_name(name: &str) -> bool {
    is_deletions_list(name) || is_cve_id(name)
}

/// `CVE-<year>-<number>`, case-insensitive.
fn is_cve_id(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    let Some(rest) = upper.strip_prefix("CVE-") else {
        return false;
    };
    let Some((year, number)) = rest.split_once('-') else {
        return false;
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    year.len() == 4 && digits(year) && digits(number) && number.len() <= 12
}

/// The ecosystems one product stream states for: its CPE's, and for a
/// `…-X.Y.0.Z.MAIN.EUS` stream of a main CPE also `Red Hat:X.Y EUS`.
fn ecosystems_of(product_id: &str, cpe: &str) -> Vec<String> {
    let Some(main) = names::redhat_from_cpe(cpe) else {
        return Vec::new();
    };
    let mut out = vec![main];
    // Red Hat names the z-stream of the current minor release `MAIN.EUS`, and gives it
    // the main CPE: its builds are the EUS builds of that minor too. The EUS ecosystem
    // string is made by names::redhat_from_cpe from the EUS CPE Red Hat uses later.
    if let Some(stream) = product_id.strip_suffix(".Z.MAIN.EUS") {
        let version = stream.rsplit('-').next().unwrap_or("");
        let mut parts = version.split('.');
        if let (Some(major), Some(minor)) = (parts.next(), parts.next()) {
            let eus = names::redhat_from_cpe(&format!("cpe:/o:redhat:rhel_eus:{major}.{minor}"));
            let same_major = out[0]
                == names::redhat_from_cpe(&format!("cpe:/o:redhat:enterprise_linux:{major}"))
                    .unwrap_or_default();
            if let (Some(eus), true) = (eus, same_major) {
                out.push(eus);
            }
        }
    }
    out
}

/// The statements of one record, one per `(ecosystem, package, module stream)`, merged
/// by the rule in the module docs.
#[derive(Debug, Default)]
struct Statements {
    by_key: BTreeMap<(String, String, Option<String>), Affected>,
}

/// A status's weight when two streams of one ecosystem state about one package.
fn rank(status: &Status) -> u8 {
    match status {
        Status::Fixed { .. } => 4,
        Status::AffectedNoFix | Status::WillNotFix | Status::EndOfLife => 3,
        Status::UnderInvestigation => 2,
        Status::NotAffected => 1,
        Status::UnknownVersion { .. } => 0,
    }
}

impl Statements {
    fn add(
        &mut self,
        ecosystem: &str,
        package: &str,
        module: Option<&str>,
        status: Status,
        note: Option<String>,
    ) {
        let key = (
            ecosystem.to_string(),
            package.to_string(),
            module.map(str::to_string),
        );
        let new = Affected {
            ecosystem: ecosystem.to_string(),
            package: package.to_string(),
            introduced: None,
            last_affected: None,
            status,
            note,
            severity: None,
        };
        match self.by_key.get_mut(&key) {
            None => {
                self.by_key.insert(key, new);
            }
            Some(kept) => {
                let replace = match rank(&new.status).cmp(&rank(&kept.status)) {
                    Ordering::Greater => true,
                    Ordering::Less => false,
                    Ordering::Equal => {
                        match (new.status.fixed_version(), kept.status.fixed_version()) {
                            (Some(n), Some(k)) => Scheme::Rpm
                                .compare(n, k)
                                .is_ok_and(|o| o == Ordering::Greater),
                            _ => false,
                        }
                    }
                };
                if replace {
                    *kept = new;
                }
            }
        }
    }

    fn finish(self) -> Vec<Affected> {
        self.by_key.into_values().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_streams() {
        assert!(wanted_name("CVE-2023-4863"));
        assert!(wanted_name("cve-2023-4863"));
        assert!(wanted_name("deletions.csv"));
        assert!(!wanted_name("changes.csv"));
        assert!(!wanted_name("archive_latest.txt"));
        assert!(!wanted_name("CVE-2023-4863.txt"));
        assert_eq!(
            ecosystems_of(
                "AppStream-9.2.0.Z.MAIN.EUS",
                "cpe:/a:redhat:enterprise_linux:9::appstream"
            ),
            ["Red Hat:9", "Red Hat:9.2 EUS"]
        );
        assert_eq!(
            ecosystems_of(
                "AppStream-9.4.0.GA",
                "cpe:/a:redhat:enterprise_linux:9::appstream"
            ),
            ["Red Hat:9"]
        );
        assert_eq!(
            ecosystems_of("BaseOS-9.2.0.Z.EUS", "cpe:/o:redhat:rhel_eus:9.2::baseos"),
            ["Red Hat:9.2 EUS"]
        );
        assert!(ecosystems_of("x", "cpe:/a:redhat:openshift:4.13::el9").is_empty());
    }

    #[test]
    fn fixed_beats_unfixed_and_the_higher_fix_is_kept() {
        let mut s = Statements::default();
        let fixed = |v: &str| Status::Fixed {
            fixed_version: v.into(),
        };
        s.add("Red Hat:9", "curl", None, Status::NotAffected, None);
        s.add(
            "Red Hat:9",
            "curl",
            None,
            fixed("0:7.76.1-23.el9_2.4"),
            None,
        );
        s.add(
            "Red Hat:9",
            "curl",
            None,
            fixed("0:7.76.1-26.el9_3.2"),
            None,
        );
        s.add(
            "Red Hat:9",
            "curl",
            None,
            fixed("0:7.76.1-14.el9_0.9"),
            None,
        );
        s.add("Red Hat:9", "curl", None, Status::AffectedNoFix, None);
        let out = s.finish();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].status, fixed("0:7.76.1-26.el9_3.2"));
    }
}
