//! Red Hat's CSAF 2.0 documents: VEX (`csaf_vex`, one per CVE: one record per
//! vulnerability, id the CVE, aliases the errata that fixed it) and security advisories
//! (`csaf_security_advisory`: one record, id the RHSA, aliases its CVEs, the statements
//! of all its vulnerabilities merged).
//!
//! A product status id is `<product stream>:<component>`; the relationships of the
//! product tree resolve it (the stream's CPE → ecosystem, the component's purl → name,
//! `epoch:version-release`, module stream), with Red Hat's id spelling as fallback.
//! A record is rejected when the document does not have CSAF's shape, a vulnerability has
//! no CVE id (VEX), or a fixed build of a RHEL stream has no readable version.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::Value;

use super::component::{self, Component};
use super::{Statements, ecosystems_of};
use crate::import::csaf::{Cvss, Flag, Remediation, Score, Threat};
use crate::import::{bare_record, one_line};
use crate::{Parsed, Record, Rejected, Status};
use patchctl_version::Scheme;

#[derive(Deserialize)]
struct Csaf {
    document: Document,
    #[serde(default)]
    product_tree: ProductTree,
    #[serde(default)]
    vulnerabilities: Vec<Vulnerability>,
}

#[derive(Deserialize)]
struct Document {
    category: String,
    #[serde(default)]
    title: String,
    tracking: Tracking,
    #[serde(default)]
    aggregate_severity: Option<Text>,
}

#[derive(Deserialize)]
struct Text {
    #[serde(default)]
    text: String,
}

#[derive(Deserialize)]
struct Tracking {
    id: String,
    #[serde(default)]
    initial_release_date: Option<String>,
    #[serde(default)]
    current_release_date: Option<String>,
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
    product: Option<Product>,
    #[serde(default)]
    branches: Vec<Branch>,
}

#[derive(Deserialize)]
struct Product {
    product_id: String,
    #[serde(default)]
    product_identification_helper: Option<Helper>,
}

#[derive(Deserialize, Default)]
struct Helper {
    #[serde(default)]
    cpe: Option<String>,
    #[serde(default)]
    purl: Option<String>,
}

#[derive(Deserialize)]
struct Relationship {
    full_product_name: FullName,
    product_reference: String,
    relates_to_product_reference: String,
}

#[derive(Deserialize)]
struct FullName {
    product_id: String,
}

#[derive(Deserialize)]
struct Vulnerability {
    #[serde(default)]
    cve: Option<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    release_date: Option<String>,
    #[serde(default)]
    product_status: ProductStatus,
    #[serde(default)]
    remediations: Vec<Remediation>,
    #[serde(default)]
    scores: Vec<Score>,
    #[serde(default)]
    threats: Vec<Threat>,
    #[serde(default)]
    flags: Vec<Flag>,
}

#[derive(Deserialize, Default)]
struct ProductStatus {
    #[serde(default)]
    fixed: Vec<String>,
    #[serde(default)]
    known_affected: Vec<String>,
    #[serde(default)]
    known_not_affected: Vec<String>,
    #[serde(default)]
    under_investigation: Vec<String>,
}

/// The product tree, indexed: stream id → CPE, component id → purl, full id → (component,
/// stream).
struct Tree<'a> {
    cpes: HashMap<&'a str, &'a str>,
    purls: HashMap<&'a str, &'a str>,
    relations: HashMap<&'a str, (&'a str, &'a str)>,
}

impl<'a> Tree<'a> {
    fn new(tree: &'a ProductTree) -> Tree<'a> {
        let mut t = Tree {
            cpes: HashMap::new(),
            purls: HashMap::new(),
            relations: HashMap::new(),
        };
        let mut stack: Vec<&Branch> = tree.branches.iter().collect();
        while let Some(b) = stack.pop() {
            if let Some(p) = &b.product {
                if let Some(h) = &p.product_identification_helper {
                    if let Some(cpe) = &h.cpe {
                        t.cpes.insert(&p.product_id, cpe);
                    }
                    if let Some(purl) = &h.purl {
                        t.purls.insert(&p.product_id, purl);
                    }
                }
            }
            stack.extend(b.branches.iter());
        }
        for r in &tree.relationships {
            t.relations.insert(
                &r.full_product_name.product_id,
                (&r.product_reference, &r.relates_to_product_reference),
            );
        }
        t
    }

    /// The ecosystems and component of a product status id; `None` when its stream is
    /// not RHEL (or unknown), `Some(Err(id))` when a RHEL stream's component is unreadable.
    fn resolve(&self, full_id: &'a str) -> Option<Result<(Vec<String>, Component), &'a str>> {
        let (component, stream) = match self.relations.get(full_id) {
            Some(&(c, s)) => (c, s),
            None => {
                let (s, c) = full_id.split_once(':')?;
                (c, s)
            }
        };
        let ecosystems = ecosystems_of(stream, self.cpes.get(stream)?);
        if ecosystems.is_empty() {
            return None;
        }
        let parsed = match self.purls.get(component) {
            Some(purl) if purl.starts_with("pkg:rpm/") => component::from_purl(purl),
            Some(_) => return None, // a container image or other non-RPM component
            None => component::from_id(component, true),
        };
        Some(parsed.map(|c| (ecosystems, c)).ok_or(full_id))
    }
}

/// Parses one Red Hat CSAF document (VEX or advisory).
pub fn parse(origin: &str, v: &Value) -> Parsed {
    let id = v
        .pointer("/document/tracking/id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .unwrap_or(origin)
        .to_string();
    let reject = |reason: String| Parsed {
        records: Vec::new(),
        rejected: vec![Rejected {
            id: id.clone(),
            reason,
        }],
    };
    let doc = match Csaf::deserialize(v) {
        Ok(doc) => doc,
        Err(e) => {
            return reject(format!(
                "not a valid Red Hat CSAF document: {}",
                one_line(&e.to_string())
            ));
        }
    };
    let tree = Tree::new(&doc.product_tree);
    if doc.document.category == "csaf_security_advisory" {
        return match advisory(&doc, &tree) {
            Ok(record) => Parsed {
                records: vec![record],
                rejected: Vec::new(),
            },
            Err(reason) => reject(reason),
        };
    }
    let mut out = Parsed::default();
    for (i, vuln) in doc.vulnerabilities.iter().enumerate() {
        let cve = vuln.cve.as_deref().filter(|c| c.starts_with("CVE-"));
        let Some(cve) = cve else {
            out.rejected.push(Rejected {
                id: format!("{id} vulnerabilities[{i}]"),
                reason: "a VEX vulnerability without a CVE id".into(),
            });
            continue;
        };
        let mut statements = Statements::default();
        match vex_record(&doc, vuln, cve, &tree, &mut statements) {
            Ok(mut record) => {
                record.affected = statements.finish();
                record.normalize();
                out.records.push(record);
            }
            Err(reason) => out.rejected.push(Rejected {
                id: cve.to_string(),
                reason,
            }),
        }
    }
    out
}

fn vex_record(
    doc: &Csaf,
    vuln: &Vulnerability,
    cve: &str,
    tree: &Tree,
    statements: &mut Statements,
) -> Result<Record, String> {
    let modules = add_statements(vuln, tree, None, statements)?;
    let mut record = bare_record(
        cve.to_string(),
        doc.document.tracking.current_release_date.clone(),
    );
    record.aliases = vuln
        .remediations
        .iter()
        .filter(|r| r.category == "vendor_fix")
        .filter_map(|r| erratum(r.url.as_deref()?))
        .map(str::to_string)
        .collect();
    let title = vuln.title.as_deref().unwrap_or(&doc.document.title);
    record.summary = with_modules(one_line(title), &modules);
    record.severity = impact(vuln).or_else(|| aggregate(doc));
    record.cvss_vector = best_cvss(std::slice::from_ref(vuln));
    record.published = vuln
        .release_date
        .clone()
        .or_else(|| doc.document.tracking.initial_release_date.clone());
    Ok(record)
}

fn advisory(doc: &Csaf, tree: &Tree) -> Result<Record, String> {
    let mut statements = Statements::default();
    let mut modules = Vec::new();
    let mut aliases = Vec::new();
    for vuln in &doc.vulnerabilities {
        let cve = vuln.cve.as_deref();
        modules.extend(add_statements(vuln, tree, cve, &mut statements)?);
        aliases.extend(cve.map(str::to_string));
    }
    let mut record = bare_record(
        doc.document.tracking.id.clone(),
        doc.document.tracking.current_release_date.clone(),
    );
    record.aliases = aliases;
    record.summary = with_modules(one_line(&doc.document.title), &modules);
    record.severity = aggregate(doc);
    record.cvss_vector = best_cvss(&doc.vulnerabilities);
    record.published = doc.document.tracking.initial_release_date.clone();
    record.affected = statements.finish();
    record.normalize();
    Ok(record)
}

/// `summary`, followed by the module streams its statements name that it does not
/// mention (`(module streams: ruby:2.7)`): the matcher reads numeric module streams from
/// the summary and applies a module build's fix only to installed builds of that stream.
fn with_modules(summary: String, modules: &[String]) -> String {
    let mut missing: Vec<&str> = modules
        .iter()
        .map(String::as_str)
        .filter(|m| !summary.split([' ', ',', '(', ')']).any(|t| t == *m))
        .collect();
    missing.sort_unstable();
    missing.dedup();
    if missing.is_empty() {
        summary
    } else {
        format!("{summary} (module streams: {})", missing.join(", "))
    }
}

/// The erratum id of an errata URL (`https://access.redhat.com/errata/RHSA-2024:2289`).
fn erratum(url: &str) -> Option<&str> {
    let id = url.rsplit('/').next()?;
    (id.starts_with("RHSA-") || id.starts_with("RHBA-") || id.starts_with("RHEA-")).then_some(id)
}

fn impact(vuln: &Vulnerability) -> Option<String> {
    vuln.threats
        .iter()
        .find(|t| t.category == "impact")
        .and_then(|t| t.details.clone())
        .filter(|d| !d.is_empty())
}

fn aggregate(doc: &Csaf) -> Option<String> {
    doc.document
        .aggregate_severity
        .as_ref()
        .map(|s| s.text.clone())
        .filter(|s| !s.is_empty())
}

/// The CVSS v3 vector with the highest base score, else a v2 vector.
fn best_cvss(vulns: &[Vulnerability]) -> Option<String> {
    let scores = || vulns.iter().flat_map(|v| v.scores.iter());
    let best = |pick: fn(&Score) -> Option<&Cvss>| {
        scores()
            .filter_map(pick)
            .filter(|c| c.vector.as_deref().is_some_and(|v| !v.is_empty()))
            .max_by(|a, b| {
                a.base_score
                    .unwrap_or(0.0)
                    .total_cmp(&b.base_score.unwrap_or(0.0))
            })
            .and_then(|c| c.vector.clone())
    };
    best(|s| s.cvss_v3.as_ref()).or_else(|| best(|s| s.cvss_v2.as_ref()))
}

/// Adds one vulnerability's statements; returns the module streams of its fixed module
/// builds. `cve` prefixes the notes of an advisory's unfixed statements (an RHSA speaks
/// of several CVEs; its fixed statements name the advisory itself).
fn add_statements(
    vuln: &Vulnerability,
    tree: &Tree,
    cve: Option<&str>,
    statements: &mut Statements,
) -> Result<Vec<String>, String> {
    let words = |text: String| match cve {
        Some(c) => format!("{c}: {text}"),
        None => text,
    };
    // remediation and flag per product id
    let mut fix_by: HashMap<&str, &str> = HashMap::new();
    let mut no_fix: HashMap<&str, (&str, &str)> = HashMap::new();
    for r in &vuln.remediations {
        for p in &r.product_ids {
            match r.category.as_str() {
                "vendor_fix" => {
                    if let Some(e) = r.url.as_deref().and_then(erratum) {
                        fix_by.insert(p, e);
                    }
                }
                "no_fix_planned" | "none_available" => {
                    no_fix.insert(p, (&r.category, r.details.as_deref().unwrap_or("")));
                }
                _ => {}
            }
        }
    }
    let mut flags: HashMap<&str, &str> = HashMap::new();
    for f in &vuln.flags {
        for p in &f.product_ids {
            flags.insert(p, &f.label);
        }
    }
    let mut modules = Vec::new();
    let ps = &vuln.product_status;
    for id in &ps.fixed {
        let Some(resolved) = tree.resolve(id) else {
            continue;
        };
        let (ecosystems, c) =
            resolved.map_err(|id| format!("fixed product {id:?} is not an RPM"))?;
        let Some(evr) = c.evr else {
            return Err(format!("fixed product {id:?} has no version"));
        };
        Scheme::Rpm
            .parse_check(&evr)
            .map_err(|e| format!("fixed product {id:?}: version {evr:?}: {e}"))?;
        let note = match (&c.module, fix_by.get(id.as_str())) {
            (Some(m), Some(e)) => Some(format!("{e} (module {m})")),
            (Some(m), None) => Some(format!("module {m}")),
            (None, e) => e.map(|e| e.to_string()),
        };
        modules.extend(c.module.clone());
        for eco in &ecosystems {
            statements.add(
                eco,
                &c.name,
                c.module.as_deref(),
                Status::Fixed {
                    fixed_version: evr.clone(),
                },
                note.clone(),
            );
        }
    }
    let lists = [
        (&ps.known_affected, None),
        (&ps.known_not_affected, Some(Status::NotAffected)),
        (&ps.under_investigation, Some(Status::UnderInvestigation)),
    ];
    for (list, fixed_status) in lists {
        for id in list {
            let Some(Ok((ecosystems, c))) = tree.resolve(id) else {
                continue; // not RHEL, or no package name to state about
            };
            let (status, note) = match &fixed_status {
                Some(Status::NotAffected) => (
                    Status::NotAffected,
                    Some(
                        flags
                            .get(id.as_str())
                            .map_or("Not affected".to_string(), |f| f.to_string()),
                    ),
                ),
                Some(s) => (s.clone(), Some("Under investigation".to_string())),
                None => affected_status(no_fix.get(id.as_str()).copied()),
            };
            let note = match (&c.module, note) {
                (Some(m), Some(n)) => Some(format!("{n} (module {m})")),
                (_, n) => n,
            };
            for eco in &ecosystems {
                statements.add(
                    eco,
                    &c.name,
                    c.module.as_deref(),
                    status.clone(),
                    note.clone().map(words),
                );
            }
        }
    }
    Ok(modules)
}

/// The status of a `known_affected` product from its remediation.
fn affected_status(remediation: Option<(&str, &str)>) -> (Status, Option<String>) {
    match remediation {
        Some((category, details)) => {
            let words = if details.is_empty() {
                category.to_string()
            } else {
                one_line(details)
            };
            let status = match (category, details.trim()) {
                ("no_fix_planned", "Out of support scope") => Status::EndOfLife,
                ("no_fix_planned", _) => Status::WillNotFix,
                _ => Status::AffectedNoFix,
            };
            (status, Some(words))
        }
        None => (Status::AffectedNoFix, Some("Affected".to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_streams_reach_the_summary() {
        let modules = ["nodejs:18".to_string(), "ruby:2.7".to_string()];
        // a VEX title names no stream: they are appended, where the matcher reads them
        assert_eq!(
            with_modules("nodejs: a flaw".into(), &modules),
            "nodejs: a flaw (module streams: nodejs:18, ruby:2.7)"
        );
        // an RHSA title that names its stream is kept as it is
        let title = "Red Hat Security Advisory: ruby:2.7 security update";
        assert_eq!(with_modules(title.into(), &modules[1..]), title);
        assert_eq!(with_modules("x".into(), &[]), "x");
        assert_eq!(
            erratum("https://access.redhat.com/errata/RHSA-2024:2289"),
            Some("RHSA-2024:2289")
        );
        assert_eq!(erratum("https://access.redhat.com/articles/11258"), None);
    }
}
