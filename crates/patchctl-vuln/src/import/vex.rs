//! Ubuntu OpenVEX documents (<https://github.com/openvex/spec>), as Canonical publishes
//! them: one document per CVE, statements whose products are purls
//! `pkg:deb/ubuntu/NAME@VERSION?arch=source&distro=jammy` (Ubuntu Pro / ESM:
//! `distro=esm-infra/xenial`, `esm-apps/jammy`, `esm-infra-legacy/trusty`).
//!
//! Only `arch=source` products are read: Ubuntu's data is keyed by source package, and
//! Canonical lists every binary of the source next to it. One [`Record`] per
//! vulnerability name per document (feed [`FEED`]), with one [`Affected`] per
//! `(ecosystem, source package)`; a later statement about the same pair replaces an
//! earlier one. Status mapping (the feed's words go to [`Affected::note`]):
//!
//! * `fixed` → [`Status::Fixed`] at the product's version;
//! * `not_affected` → [`Status::NotAffected`] (justification and impact statement);
//! * `affected` → [`Status::EndOfLife`] when the action statement or notes say "end of
//!   life" or "no longer supported" (Canonical's words for a release out of support),
//!   [`Status::WillNotFix`] when they say "will not fix", "decided to not fix" or
//!   "ignored", else [`Status::AffectedNoFix`];
//! * `under_investigation` → [`Status::UnderInvestigation`].
//!
//! Strictness: a statement without a vulnerability name, status or products, a product
//! that is neither a string nor an object with `@id`, an unknown status, or an Ubuntu
//! source purl that is malformed (bad percent-escape, no name, no `distro`, a `fixed`
//! product without a valid dpkg version) rejects that vulnerability's record. A source
//! product of an Ubuntu release this build does not know is reported as [`Rejected`]
//! under the record's id and skipped; the rest of the record is imported. Percent-escapes
//! in purls are decoded.

use std::collections::BTreeMap;

use patchctl_version::{Scheme, VersionError};
use serde_json::Value;

use super::{bare_record, clip, one_line};
use crate::ecosystem::{self, ubuntu_ecosystem, ubuntu_version};
use crate::{Affected, Parsed, Record, Rejected, Status};

/// Feed name of Ubuntu's OpenVEX data.
pub const FEED: &str = "ubuntu-vex";

/// Whether `v` is an OpenVEX document: its `@context` mentions `openvex`.
pub fn looks_like(v: &Value) -> bool {
    let openvex = |c: &Value| c.as_str().is_some_and(|s| s.contains("openvex"));
    match header(v).get("@context") {
        Some(Value::Array(contexts)) => contexts.iter().any(openvex),
        Some(context) => openvex(context),
        None => false,
    }
}

/// The document's header fields (`@context`, `timestamp`, ...): the top level, or a
/// `metadata` object holding them (the layout of Canonical's VEX as vuls-data-update
/// keeps it), with the statements beside it.
fn header(v: &Value) -> &Value {
    v.get("metadata")
        .filter(|m| m.get("@context").is_some())
        .unwrap_or(v)
}

/// One vulnerability's record while its statements are read.
struct Pending {
    record: Record,
    affected: BTreeMap<(String, String), Affected>,
    error: Option<String>,
}

/// Parses one OpenVEX document. `origin` names it in rejections that have no id.
pub fn parse(origin: &str, v: &Value) -> Parsed {
    let mut parsed = Parsed::default();
    let statements = match v.get("statements") {
        Some(Value::Array(statements)) => statements.as_slice(),
        // a document that states nothing yet (Canonical publishes such documents)
        None | Some(Value::Null) => &[],
        Some(_) => {
            parsed.rejected.push(Rejected {
                id: origin.to_string(),
                reason: "OpenVEX document whose 'statements' is not an array".into(),
            });
            return parsed;
        }
    };
    let modified = ["last_updated", "timestamp"]
        .iter()
        .find_map(|k| header(v).get(k).and_then(Value::as_str))
        .map(str::to_string);
    let mut by_name: BTreeMap<String, Pending> = BTreeMap::new();
    for (i, statement) in statements.iter().enumerate() {
        let vulnerability = statement.get("vulnerability");
        let name = vulnerability
            .and_then(|v| v.get("name").or(Some(v)))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty());
        let Some(name) = name else {
            parsed.rejected.push(Rejected {
                id: format!("{origin} statements[{i}]"),
                reason: "statement has no vulnerability name".into(),
            });
            continue;
        };
        let pending = by_name.entry(name.to_string()).or_insert_with(|| Pending {
            record: bare_record(name.to_string(), modified.clone()),
            affected: BTreeMap::new(),
            error: None,
        });
        if pending.error.is_none() {
            if let Err(e) = pending.add(statement, &mut parsed.rejected) {
                pending.error = Some(format!("statements[{i}]: {e}"));
            }
        }
    }
    for (id, pending) in by_name {
        match pending.error {
            Some(reason) => parsed.rejected.push(Rejected { id, reason }),
            None => {
                let mut record = pending.record;
                record.affected = pending.affected.into_values().collect();
                record.normalize();
                parsed.records.push(record);
            }
        }
    }
    parsed
}

/// What is wrong with one statement (the reason of a rejection).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum StatementError {
    /// The statement has no status.
    #[error("no status")]
    NoStatus,
    /// A status OpenVEX does not define.
    #[error("unknown status '{0}'")]
    UnknownStatus(String),
    /// The statement has no products.
    #[error("no 'products' array")]
    NoProducts,
    /// A product that is neither a purl nor an object with one.
    #[error("a product is neither a purl nor an object with '@id'")]
    BadProduct,
    /// A `fixed` product without a version.
    #[error("fixed product {0} has no version")]
    NoFixedVersion(String),
    /// A `fixed` product whose version is not one of the ecosystem's scheme.
    #[error("fixed product {purl}: '{version}' is not a valid {scheme} version: {error}")]
    BadFixedVersion {
        purl: String,
        version: String,
        scheme: Scheme,
        error: Box<VersionError>,
    },
    /// A purl qualifier without `=`.
    #[error("qualifier '{pair}' of {purl} has no '='")]
    BadQualifier { pair: String, purl: String },
    /// A purl without a usable package name.
    #[error("{0} has no valid package name")]
    NoName(String),
    /// A source purl without the `distro` qualifier.
    #[error("{0} has no 'distro' qualifier")]
    NoDistro(String),
    /// A malformed `%XX` escape.
    #[error("invalid percent-escape in '{0}'")]
    BadEscape(String),
    /// Escapes that decode to bytes that are not UTF-8.
    #[error("'{0}' does not decode to UTF-8")]
    NotUtf8(String),
}

impl Pending {
    fn add(
        &mut self,
        statement: &Value,
        rejected: &mut Vec<Rejected>,
    ) -> Result<(), StatementError> {
        let text = |key: &str| statement.get(key).and_then(Value::as_str);
        let vulnerability = statement.get("vulnerability");
        if self.record.summary.is_empty() {
            let description = vulnerability.and_then(|v| v.get("description"));
            if let Some(description) = description.and_then(Value::as_str) {
                self.record.summary = one_line(description);
            }
        }
        let aliases = vulnerability.and_then(|v| v.get("aliases"));
        for alias in aliases.and_then(Value::as_array).into_iter().flatten() {
            // URLs (`…/notices/USN-6429-1`, `…?id=CVE-2023-38545`) or plain ids.
            let last = alias.as_str().and_then(|a| a.rsplit(['/', '=']).next());
            let is_id = |s: &&str| {
                (s.starts_with("USN-") || s.starts_with("CVE-"))
                    && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            };
            if let Some(id) = last.filter(is_id) {
                self.record.aliases.push(id.to_string());
            }
        }
        if let Some(timestamp) = text("timestamp") {
            if self
                .record
                .published
                .as_deref()
                .is_none_or(|p| timestamp < p)
            {
                self.record.published = Some(timestamp.to_string());
            }
        }
        let words: Vec<&str> = ["justification", "impact_statement", "action_statement"]
            .into_iter()
            .chain(["status_notes"])
            .filter_map(text)
            .collect();
        let note = (!words.is_empty()).then(|| clip(&words.join(": "), 300));
        let status = text("status").ok_or(StatementError::NoStatus)?;
        let status = match status {
            "fixed" => None,
            "not_affected" => Some(Status::NotAffected),
            "affected" => Some(affected_status(&words.join(" "))),
            "under_investigation" => Some(Status::UnderInvestigation),
            other => return Err(StatementError::UnknownStatus(other.to_string())),
        };
        let products = statement
            .get("products")
            .and_then(Value::as_array)
            .ok_or(StatementError::NoProducts)?;
        for product in products {
            let purl = product
                .as_str()
                .or_else(|| product.get("@id").and_then(Value::as_str))
                .ok_or(StatementError::BadProduct)?;
            let Some(source) = source_purl(purl)? else {
                continue;
            };
            let Some(ecosystem) = distro_ecosystem(&source.distro) else {
                rejected.push(Rejected {
                    id: self.record.id.clone(),
                    reason: format!(
                        "product {purl} names an Ubuntu release this PatchCTL does not know \
                         (distro '{}'); it is skipped, update PatchCTL to import it",
                        source.distro
                    ),
                });
                continue;
            };
            let status = match &status {
                Some(status) => status.clone(),
                None => Status::Fixed {
                    fixed_version: fixed_version(purl, &ecosystem, source.version)?,
                },
            };
            let note = if status.fixed_version().is_some() {
                None
            } else {
                note.clone()
            };
            let key = (ecosystem, source.name);
            let affected = Affected {
                ecosystem: key.0.clone(),
                package: key.1.clone(),
                introduced: None,
                last_affected: None,
                status,
                note,
                severity: None,
            };
            self.affected.insert(key, affected);
        }
        Ok(())
    }
}

/// What an `affected` statement's words say.
fn affected_status(words: &str) -> Status {
    let words = words.to_lowercase();
    let says = |phrases: &[&str]| phrases.iter().any(|p| words.contains(p));
    if says(&["end of life", "end-of-life", "no longer supported"]) {
        Status::EndOfLife
    } else if says(&["will not fix", "decided to not fix", "ignored"]) {
        Status::WillNotFix
    } else {
        Status::AffectedNoFix
    }
}

/// The version of a `fixed` product, checked with the ecosystem's scheme.
fn fixed_version(
    purl: &str,
    ecosystem: &str,
    version: Option<String>,
) -> Result<String, StatementError> {
    let version = version.ok_or_else(|| StatementError::NoFixedVersion(purl.to_string()))?;
    if let Some(rules) = ecosystem::rules(ecosystem) {
        rules
            .scheme
            .parse_check(&version)
            .map_err(|error| StatementError::BadFixedVersion {
                purl: purl.to_string(),
                version: version.clone(),
                scheme: rules.scheme,
                error: Box::new(error),
            })?;
    }
    Ok(version)
}

/// `jammy` → `Ubuntu:22.04:LTS`; `esm-infra/xenial` → `Ubuntu:Pro:16.04:LTS`.
fn distro_ecosystem(distro: &str) -> Option<String> {
    let (pro, codename) = match distro.rsplit_once('/') {
        Some((_, codename)) => (true, codename),
        None => (false, distro),
    };
    ubuntu_ecosystem(ubuntu_version(codename)?, pro)
}

/// An Ubuntu source package purl, decoded.
struct SourcePurl {
    name: String,
    version: Option<String>,
    distro: String,
}

/// `Ok(None)` for a purl that is not `pkg:deb/ubuntu/…?arch=source`; an error for one
/// that is but is malformed.
fn source_purl(purl: &str) -> Result<Option<SourcePurl>, StatementError> {
    let Some(rest) = purl.strip_prefix("pkg:deb/ubuntu/") else {
        return Ok(None);
    };
    let rest = rest.split('#').next().unwrap_or_default();
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (mut arch, mut distro) = (None, None);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| StatementError::BadQualifier {
                pair: pair.to_string(),
                purl: purl.to_string(),
            })?;
        match key {
            "arch" => arch = Some(percent_decode(value)?),
            "distro" => distro = Some(percent_decode(value)?),
            _ => {}
        }
    }
    if arch.as_deref() != Some("source") {
        return Ok(None);
    }
    let (name, version) = match path.rsplit_once('@') {
        Some((name, version)) => (name, Some(percent_decode(version)?)),
        None => (path, None),
    };
    let name = percent_decode(name)?;
    if name.is_empty() || name.contains('/') {
        return Err(StatementError::NoName(purl.to_string()));
    }
    let distro = distro.ok_or_else(|| StatementError::NoDistro(purl.to_string()))?;
    Ok(Some(SourcePurl {
        name,
        version,
        distro,
    }))
}

/// Decodes `%XX` escapes; the result must be UTF-8.
fn percent_decode(s: &str) -> Result<String, StatementError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                .and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok())
                .ok_or_else(|| StatementError::BadEscape(s.to_string()))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| StatementError::NotUtf8(s.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purls() {
        let p = source_purl(
            "pkg:deb/ubuntu/zabbix@1%3A6.0.25%2Bdfsg-1?arch=source&distro=esm-apps/jammy",
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            (p.name.as_str(), p.version.as_deref()),
            ("zabbix", Some("1:6.0.25+dfsg-1"))
        );
        assert_eq!(
            distro_ecosystem(&p.distro).as_deref(),
            Some("Ubuntu:Pro:22.04:LTS")
        );
        assert!(
            source_purl("pkg:deb/ubuntu/curl@1?arch=amd64&distro=jammy")
                .unwrap()
                .is_none()
        );
        assert!(
            source_purl("pkg:rpm/redhat/curl@1?arch=source")
                .unwrap()
                .is_none()
        );
        assert!(source_purl("pkg:deb/ubuntu/curl@1%zz?arch=source&distro=jammy").is_err());
        assert!(source_purl("pkg:deb/ubuntu/curl@1?arch=source").is_err());
        assert_eq!(percent_decode("%2b%2B").unwrap(), "++");
        assert!(percent_decode("%+1").is_err());
        assert!(percent_decode("%ff").is_err());
    }

    #[test]
    fn affected_words() {
        assert_eq!(
            affected_status("the Ubuntu Security Team decided to not fix it"),
            Status::WillNotFix
        );
        assert_eq!(
            affected_status("This package (for the given release) is no longer supported."),
            Status::EndOfLife
        );
        assert_eq!(affected_status("Marking as Ignored"), Status::WillNotFix);
        assert_eq!(affected_status("deferred"), Status::AffectedNoFix);
    }
}
