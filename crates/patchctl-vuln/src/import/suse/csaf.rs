//! SUSE's CSAF 2.0 documents: the per-CVE VEX documents (`csaf_vex`) and the
//! advisories (`csaf_security_advisory`: `SUSE-SU-…`, `openSUSE-SU-…`), feed
//! [`super::CSAF_FEED`].
//!
//! A product status names a full product id `<product>:<component>`, resolved through
//! `product_tree.relationships` (else split at the first `:`) to the product's **name**
//! (`SUSE Linux Enterprise Server 15 SP5`, `openSUSE Tumbleweed`) and the component;
//! the name becomes the ecosystem ([`super::product_ecosystem`]; a product that maps to
//! none is left out). Status mapping (the CSAF word, with the remediation's or flag's
//! words, goes to [`Affected::note`]):
//!
//! * `recommended` (SUSE's list of fixed builds; `fixed` and `first_fixed` are read the
//!   same way): the component is `<binary>-<version>-<release>` (advisories add
//!   `.<arch>`, removed) → [`Status::Fixed`] at `version-release` (no epoch);
//! * `known_affected` (`<binary>`, no version) → [`Status::WillNotFix`] when the
//!   product's remediation is `no_fix_planned`, [`Status::EndOfLife`] when that
//!   remediation (or a `none_available` one) says the product is unsupported or out of
//!   support, else [`Status::AffectedNoFix`];
//! * `known_not_affected` (`<binary>`) → [`Status::NotAffected`];
//! * `under_investigation` → [`Status::UnderInvestigation`];
//! * `first_affected` and `last_affected` are not read (SUSE does not write them).
//!
//! Several products of one service pack merge into one ecosystem; their statements
//! about one binary collapse by [`super::collapse`]. A VEX document gives one record per
//! vulnerability (id: its CVE); an advisory one record (id: `tracking.id`, the CVEs as
//! aliases, the statements of all its vulnerabilities collapsed). Severity: the
//! vulnerability's `impact` threat, else the document's `aggregate_severity`; CVSS: the
//! first CVSS v3 vector of `scores`, else v2. A document without vulnerabilities or
//! product statuses (SUSE's `CVE-1999-0003`) is a record without statements.
//!
//! Strictness: a document whose known fields have the wrong shape, that has no
//! `tracking.id`, a vulnerability without a CVE in a VEX document, or a fixed component
//! that is not `name-version-release` with a valid RPM version rejects that record (by
//! its id); unknown fields are ignored.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;
use serde_json::Value;

use super::{collapse, product_ecosystem, split_nvr, strip_arch};
use crate::ecosystem;
use crate::import::csaf::{Cvss, Flag, Remediation, Score, Threat};
use crate::import::{clip, one_line};
use crate::{Affected, Parsed, Record, Rejected, Status};

/// Whether `v` is one of SUSE's CSAF documents: `document.category` `csaf_vex` or
/// `csaf_security_advisory` and a SUSE publisher (namespace on `suse.com`, or a name
/// starting with "SUSE"). Other vendors' CSAF is not recognised here.
pub fn looks_like(v: &Value) -> bool {
    let Some(doc) = v.get("document") else {
        return false;
    };
    let category = doc.get("category").and_then(Value::as_str);
    if !matches!(category, Some("csaf_vex" | "csaf_security_advisory")) {
        return false;
    }
    let publisher = doc.get("publisher");
    let field = |k: &str| publisher.and_then(|p| p.get(k)).and_then(Value::as_str);
    field("namespace").is_some_and(|n| {
        n.strip_prefix("https://")
            .or_else(|| n.strip_prefix("http://"))
            .is_some_and(|host| host.starts_with("www.suse.com") || host.starts_with("suse.com"))
    }) || field("name").is_some_and(|n| n.starts_with("SUSE"))
}

#[derive(Deserialize)]
struct Csaf {
    document: Document,
    #[serde(default)]
    product_tree: Option<ProductTree>,
    #[serde(default)]
    vulnerabilities: Vec<Vulnerability>,
}

#[derive(Deserialize)]
struct Document {
    category: String,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    notes: Vec<Note>,
    tracking: Tracking,
    #[serde(default)]
    aggregate_severity: Option<Text>,
}

#[derive(Deserialize)]
struct Tracking {
    id: String,
    #[serde(default)]
    initial_release_date: Option<String>,
    #[serde(default)]
    current_release_date: Option<String>,
}

#[derive(Deserialize)]
struct Text {
    #[serde(default)]
    text: Option<String>,
}

#[derive(Deserialize)]
struct Note {
    #[serde(default)]
    category: Option<String>,
    #[serde(default)]
    text: Option<String>,
}

#[derive(Deserialize, Default)]
struct ProductTree {
    #[serde(default)]
    branches: Vec<Branch>,
    #[serde(default)]
    relationships: Vec<Relationship>,
}

#[derive(Deserialize)]
struct Branch {
    #[serde(default)]
    category: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    product: Option<Product>,
    #[serde(default)]
    branches: Vec<Branch>,
}

#[derive(Deserialize)]
struct Product {
    #[serde(default)]
    name: Option<String>,
    product_id: String,
}

#[derive(Deserialize)]
struct Relationship {
    full_product_name: Product,
    product_reference: String,
    relates_to_product_reference: String,
}

#[derive(Deserialize)]
struct Vulnerability {
    #[serde(default)]
    cve: Option<String>,
    #[serde(default)]
    notes: Vec<Note>,
    #[serde(default)]
    product_status: Option<BTreeMap<String, Vec<String>>>,
    #[serde(default)]
    remediations: Vec<Remediation>,
    #[serde(default)]
    scores: Vec<Score>,
    #[serde(default)]
    threats: Vec<Threat>,
    #[serde(default)]
    flags: Vec<Flag>,
}

/// Deepest `product_tree.branches` nesting read (SUSE's is 3); deeper branches are
/// ignored.
const MAX_BRANCH_DEPTH: usize = 16;

/// What the product tree says about product ids.
#[derive(Default)]
struct Tree<'a> {
    /// Product id → product name (and, for a product version, its architecture).
    names: HashMap<&'a str, (&'a str, Option<&'a str>)>,
    /// Full product id → (product reference, component reference).
    relationships: HashMap<&'a str, (&'a str, &'a str)>,
}

impl<'a> Tree<'a> {
    fn new(tree: Option<&'a ProductTree>) -> Self {
        let mut out = Tree::default();
        let Some(tree) = tree else {
            return out;
        };
        out.walk(&tree.branches, None, 0);
        for r in &tree.relationships {
            out.relationships.insert(
                &r.full_product_name.product_id,
                (&r.relates_to_product_reference, &r.product_reference),
            );
        }
        out
    }

    fn walk(&mut self, branches: &'a [Branch], arch: Option<&'a str>, depth: usize) {
        if depth >= MAX_BRANCH_DEPTH {
            return;
        }
        for b in branches {
            let arch = match (b.category.as_deref(), b.name.as_deref()) {
                (Some("architecture"), Some(name)) => Some(name),
                _ => arch,
            };
            if let Some(p) = &b.product {
                let name = p
                    .name
                    .as_deref()
                    .or(b.name.as_deref())
                    .unwrap_or(&p.product_id);
                self.names.insert(&p.product_id, (name, arch));
            }
            self.walk(&b.branches, arch, depth + 1);
        }
    }

    /// The product name and the component (its text and architecture) of a full
    /// product id.
    fn resolve(&self, full_id: &'a str) -> Option<(&'a str, &'a str, Option<&'a str>)> {
        let (product, component) = match self.relationships.get(full_id) {
            Some(&(p, c)) => (p, c),
            None => full_id.split_once(':')?,
        };
        let product = self.names.get(product).map_or(product, |&(n, _)| n);
        let (component, arch) = self
            .names
            .get(component)
            .map_or((component, None), |&(n, a)| (n, a));
        Some((product, component, arch))
    }
}

/// Parses one SUSE CSAF document (VEX or advisory). `origin` names it in a rejection
/// when it has no readable id.
pub fn parse(origin: &str, v: &Value) -> Parsed {
    let id = v
        .pointer("/document/tracking/id")
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .unwrap_or(origin)
        .to_string();
    let rejected = |id: String, reason: String| Parsed {
        records: Vec::new(),
        rejected: vec![Rejected { id, reason }],
    };
    let doc = match Csaf::deserialize(v) {
        Ok(doc) => doc,
        Err(e) => {
            let reason = format!(
                "not a valid SUSE CSAF document: {}",
                one_line(&e.to_string())
            );
            return rejected(id, reason);
        }
    };
    if doc.document.tracking.id.trim().is_empty() {
        return rejected(id, "the CSAF document's tracking.id is empty".into());
    }
    let tree = Tree::new(doc.product_tree.as_ref());
    if doc.document.category == "csaf_vex" {
        parse_vex(&doc, &tree)
    } else {
        match advisory(&doc, &tree) {
            Ok(record) => Parsed {
                records: vec![record],
                rejected: Vec::new(),
            },
            Err(reason) => rejected(id, reason),
        }
    }
}

/// One record per vulnerability of a VEX document; a document without any is one
/// record (by its tracking id) without statements.
fn parse_vex(doc: &Csaf, tree: &Tree) -> Parsed {
    let mut parsed = Parsed::default();
    if doc.vulnerabilities.is_empty() {
        let mut record = base_record(doc, doc.document.tracking.id.clone());
        record.normalize();
        parsed.records.push(record);
        return parsed;
    }
    for (i, vuln) in doc.vulnerabilities.iter().enumerate() {
        let Some(cve) = vuln.cve.as_deref().filter(|c| !c.trim().is_empty()) else {
            parsed.rejected.push(Rejected {
                id: format!("{} vulnerabilities[{i}]", doc.document.tracking.id),
                reason: "a VEX vulnerability without a CVE id".into(),
            });
            continue;
        };
        let mut record = base_record(doc, cve.to_string());
        if record.id != doc.document.tracking.id {
            record.aliases.push(doc.document.tracking.id.clone());
        }
        if let Some(summary) = description(&vuln.notes) {
            record.summary = summary;
        }
        record.severity = impact(vuln).or(record.severity);
        record.cvss_vector = cvss(vuln);
        let mut statements = BTreeMap::new();
        match statements_of(vuln, tree, &mut statements) {
            Ok(()) => {
                record.affected = statements.into_values().filter_map(collapse).collect();
                record.normalize();
                parsed.records.push(record);
            }
            Err(reason) => parsed.rejected.push(Rejected {
                id: record.id,
                reason,
            }),
        }
    }
    parsed
}

/// The one record of an advisory.
fn advisory(doc: &Csaf, tree: &Tree) -> Result<Record, String> {
    let mut record = base_record(doc, doc.document.tracking.id.clone());
    if let Some(title) = doc
        .document
        .title
        .as_deref()
        .filter(|t| !t.trim().is_empty())
    {
        record.summary = one_line(title);
    }
    let mut statements = BTreeMap::new();
    for vuln in &doc.vulnerabilities {
        record.aliases.extend(vuln.cve.clone());
        if record.severity.is_none() {
            record.severity = impact(vuln);
        }
        if record.cvss_vector.is_none() {
            record.cvss_vector = cvss(vuln);
        }
        statements_of(vuln, tree, &mut statements)?;
    }
    record.affected = statements.into_values().filter_map(collapse).collect();
    record.normalize();
    Ok(record)
}

/// A record with the document's id-independent fields.
fn base_record(doc: &Csaf, id: String) -> Record {
    let d = &doc.document;
    let mut record = super::super::bare_record(id, d.tracking.current_release_date.clone());
    record.published = d.tracking.initial_release_date.clone();
    record.severity = d
        .aggregate_severity
        .as_ref()
        .and_then(|s| s.text.clone())
        .filter(|s| !s.is_empty());
    record.summary = description(&d.notes)
        .or_else(|| d.title.as_deref().map(one_line))
        .unwrap_or_default();
    record
}

/// The first description-like note (`description`, `general`, `summary`).
fn description(notes: &[Note]) -> Option<String> {
    ["description", "general", "summary"].iter().find_map(|c| {
        notes
            .iter()
            .find(|n| n.category.as_deref() == Some(c))
            .and_then(|n| n.text.as_deref())
            .filter(|t| !t.trim().is_empty())
            .map(one_line)
    })
}

fn impact(vuln: &Vulnerability) -> Option<String> {
    vuln.threats
        .iter()
        .find(|t| t.category == "impact")
        .and_then(|t| t.details.clone())
        .filter(|d| !d.is_empty())
}

fn cvss(vuln: &Vulnerability) -> Option<String> {
    let vector = |c: &Option<Cvss>| c.as_ref().and_then(|c| c.vector.clone());
    let v3 = vuln.scores.iter().find_map(|s| vector(&s.cvss_v3));
    v3.or_else(|| vuln.scores.iter().find_map(|s| vector(&s.cvss_v2)))
        .filter(|v| !v.is_empty())
}

/// Statements collected per `(ecosystem, package)` before they collapse.
type Statements = BTreeMap<(String, String), Vec<Affected>>;

/// Adds the statements of one vulnerability's product statuses.
fn statements_of(vuln: &Vulnerability, tree: &Tree, out: &mut Statements) -> Result<(), String> {
    let Some(status) = &vuln.product_status else {
        return Ok(());
    };
    let mut remediation: HashMap<&str, &Remediation> = HashMap::new();
    for r in &vuln.remediations {
        for p in &r.product_ids {
            remediation.entry(p).or_insert(r);
        }
    }
    let mut flags: HashMap<&str, &str> = HashMap::new();
    for f in &vuln.flags {
        for p in &f.product_ids {
            flags.entry(p).or_insert(&f.label);
        }
    }
    for (word, ids) in status {
        let versioned = matches!(word.as_str(), "recommended" | "fixed" | "first_fixed");
        if !versioned
            && !matches!(
                word.as_str(),
                "known_affected" | "known_not_affected" | "under_investigation"
            )
        {
            continue;
        }
        for full_id in ids {
            let Some((product, component, arch)) = tree.resolve(full_id) else {
                return Err(format!(
                    "{word} product '{}' names no product",
                    clip(full_id, 120)
                ));
            };
            let Some(eco) = product_ecosystem(product) else {
                continue;
            };
            let (package, status) = if versioned {
                let (name, version) = split_nvr(component, arch).ok_or_else(|| {
                    format!(
                        "{word} product '{}' is not <product>:<name>-<version>-<release>",
                        clip(full_id, 120)
                    )
                })?;
                if let Some(rules) = ecosystem::rules(&eco) {
                    rules.scheme.parse_check(&version).map_err(|e| {
                        format!("{word} version '{version}' of {name} in {product}: {e}")
                    })?;
                }
                let fixed_version = version;
                (name, Status::Fixed { fixed_version })
            } else {
                let name = strip_arch(component, arch);
                if name.is_empty() {
                    return Err(format!(
                        "{word} product '{}' names no package",
                        clip(full_id, 120)
                    ));
                }
                let status = match word.as_str() {
                    "known_not_affected" => Status::NotAffected,
                    "under_investigation" => Status::UnderInvestigation,
                    _ => affected_status(remediation.get(full_id.as_str()).copied()),
                };
                (name, status)
            };
            let detail = if versioned {
                None
            } else {
                flags
                    .get(full_id.as_str())
                    .map(|f| f.to_string())
                    .or_else(|| {
                        remediation
                            .get(full_id.as_str())
                            .and_then(|r| r.details.as_deref())
                            .map(|d| clip(&one_line(d), 120))
                    })
            };
            let note = match detail {
                Some(d) if !d.is_empty() => format!("{word}: {d}"),
                _ => word.clone(),
            };
            out.entry((eco.clone(), package.to_string()))
                .or_default()
                .push(Affected {
                    ecosystem: eco,
                    package: package.to_string(),
                    introduced: None,
                    last_affected: None,
                    status,
                    note: Some(note),
                    severity: None,
                });
        }
    }
    Ok(())
}

/// A `known_affected` product's status, from its remediation.
fn affected_status(remediation: Option<&Remediation>) -> Status {
    let Some(r) = remediation else {
        return Status::AffectedNoFix;
    };
    let details = r
        .details
        .as_deref()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let unsupported = [
        "unsupported",
        "out of support",
        "end of life",
        "no longer supported",
    ]
    .iter()
    .any(|w| details.contains(w));
    match r.category.as_str() {
        "no_fix_planned" | "none_available" if unsupported => Status::EndOfLife,
        "no_fix_planned" => Status::WillNotFix,
        _ => Status::AffectedNoFix,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn vex(status: Value, remediations: Value) -> Value {
        json!({
            "document": {
                "category": "csaf_vex",
                "publisher": {"name": "SUSE Product Security Team", "namespace": "https://www.suse.com/"},
                "tracking": {"id": "CVE-2024-0001"},
            },
            "vulnerabilities": [{
                "cve": "CVE-2024-0001",
                "product_status": status,
                "remediations": remediations,
            }],
        })
    }

    fn statuses(doc: &Value) -> Vec<(String, String, Status, Option<String>)> {
        let parsed = parse("test", doc);
        assert!(parsed.rejected.is_empty(), "{:?}", parsed.rejected);
        parsed.records[0]
            .affected
            .iter()
            .map(|a| {
                (
                    a.ecosystem.clone(),
                    a.package.clone(),
                    a.status.clone(),
                    a.note.clone(),
                )
            })
            .collect()
    }

    #[test]
    fn known_affected_follows_the_remediation() {
        let doc = vex(
            json!({
                "known_affected": [
                    "SUSE Linux Enterprise Server 12 SP5:curl",
                    "SUSE Linux Enterprise Server 15 SP5:curl",
                    "SUSE Linux Enterprise Server 11 SP4 LTSS:curl",
                    "openSUSE Leap 15.5:curl",
                ],
                "under_investigation": ["openSUSE Tumbleweed:curl"],
            }),
            json!([
                {"category": "no_fix_planned", "details": "Will not fix",
                 "product_ids": ["SUSE Linux Enterprise Server 12 SP5:curl"]},
                {"category": "none_available", "details": "Unsupported",
                 "product_ids": ["SUSE Linux Enterprise Server 11 SP4 LTSS:curl"]},
            ]),
        );
        let got = statuses(&doc);
        let s = |e: &str, st: Status, note: &str| {
            (
                "".to_string() + e,
                "curl".to_string(),
                st,
                Some(note.to_string()),
            )
        };
        assert_eq!(
            got,
            [
                s(
                    "SUSE:Linux Enterprise 11 SP4 LTSS",
                    Status::EndOfLife,
                    "known_affected: Unsupported"
                ),
                s(
                    "SUSE:Linux Enterprise 12 SP5",
                    Status::WillNotFix,
                    "known_affected: Will not fix"
                ),
                s(
                    "SUSE:Linux Enterprise 15 SP5",
                    Status::AffectedNoFix,
                    "known_affected"
                ),
                s(
                    "openSUSE:Leap 15.5",
                    Status::AffectedNoFix,
                    "known_affected"
                ),
                s(
                    "openSUSE:Tumbleweed",
                    Status::UnderInvestigation,
                    "under_investigation"
                ),
            ]
        );
    }

    #[test]
    fn only_suse_csaf_is_recognised() {
        let suse = vex(json!({}), json!([]));
        assert!(looks_like(&suse));
        let mut red_hat = suse.clone();
        red_hat["document"]["publisher"] =
            json!({"name": "Red Hat Product Security", "namespace": "https://www.redhat.com"});
        assert!(!looks_like(&red_hat));
        let mut other = suse;
        other["document"]["category"] = "csaf_base".into();
        assert!(!looks_like(&other));
    }

    #[test]
    fn a_vulnerability_without_a_cve_is_rejected_and_the_others_kept() {
        let mut doc = vex(
            json!({"known_not_affected": ["openSUSE Tumbleweed:curl"]}),
            json!([]),
        );
        let second = json!({"product_status": {}});
        doc["vulnerabilities"].as_array_mut().unwrap().push(second);
        let parsed = parse("test", &doc);
        assert_eq!(parsed.records.len(), 1);
        assert_eq!(parsed.records[0].affected[0].status, Status::NotAffected);
        assert_eq!(parsed.rejected[0].id, "CVE-2024-0001 vulnerabilities[1]");
    }
}
