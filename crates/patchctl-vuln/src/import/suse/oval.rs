//! SUSE's OVAL files (`suse.linux.enterprise.15-affected.xml`, `…16-patch.xml`,
//! `opensuse.tumbleweed.xml`, `opensuse.leap.15.2.xml`, as published, usually gzipped),
//! feed [`super::OVAL_FEED`]. Recognised by the root element `oval_definitions` and
//! SUSE's generator ("Marcus Updateinfo to OVAL Converter") or definition ids
//! (`oval:org.opensuse.security:`); other vendors' OVAL is not read here.
//!
//! Each definition's criteria tree is read from SUSE's criterion comments, which are
//! systematic (in SUSE's own excerpts most SLE `test_ref`s do not resolve, so the
//! comments are what is always there):
//!
//! * `<product> is installed` (a name with spaces: `SUSE Linux Enterprise Server 15
//!   SP3`, `openSUSE Tumbleweed`) names the products the sibling criteria of an `AND`
//!   apply to (directly, or through an `OR` of only products);
//! * `<binary>-<version>-<release> is installed` → [`Status::Fixed`]: the version is the
//!   test's `evr` when its operation is "less than" (`0:1.35-160000.2.2`, the zero epoch
//!   removed: SUSE's versions carry none), else the comment's; the binary is the test
//!   object's name, else the comment's;
//! * `<binary> is not affected` → [`Status::NotAffected`]; `<binary> is affected` →
//!   [`Status::AffectedNoFix`]; other criteria (signature checks, release versions) are
//!   not statements.
//!
//! Products map to ecosystems as in CSAF ([`super::product_ecosystem`]); statements of
//! products merged into one ecosystem collapse by [`super::collapse`]. One record per
//! definition: a `vulnerability` definition's id is its title (the CVE), a `patch`
//! definition's its OVAL id, with the CVEs it references as aliases. SUSE publishes one
//! file per product line, and one CVE is in several of them (Tumbleweed's and SLE 16's
//! `CVE-2001-1267`): records of the same id from several files are merged into one.
//!
//! Strictness: a definition without an id, or a fixed version that is not a valid RPM
//! version, is rejected by its id; a file that is not well-formed XML is an error.
//! The whole file is parsed in memory (roxmltree); the front door bounds its size.

use std::collections::{BTreeMap, HashMap};

use roxmltree::{Document, Node};

use super::{collapse, product_ecosystem, split_nvr};
use crate::ecosystem;
use crate::import::{bare_record, clip, one_line};
use crate::{Affected, Parsed, Record, Rejected, Status};

/// Whether an XML document whose root element is `oval_definitions` is SUSE's: its
/// generator or its definition ids (looked for in its first 64 KiB).
pub fn looks_like(text: &str) -> bool {
    let mut end = text.len().min(64 << 10);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let head = &text[..end];
    head.contains("Marcus Updateinfo to OVAL Converter")
        || head.contains("oval:org.opensuse.security:")
}

/// A record being assembled from one or more files.
struct Pending {
    record: Record,
    statements: BTreeMap<(String, String), Vec<Affected>>,
}

/// SUSE OVAL definitions read so far, merged by record id.
#[derive(Default)]
pub struct Oval {
    records: BTreeMap<String, Pending>,
    rejected: Vec<Rejected>,
}

/// What a `test_ref` resolves to: the object's package name and the state's `evr` when
/// its operation is "less than".
struct Test<'a> {
    name: Option<&'a str>,
    less_than: Option<&'a str>,
}

impl Oval {
    /// Whether nothing was read.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty() && self.rejected.is_empty()
    }

    /// Reads one OVAL document; `Err` (what the XML parser said) when it is not
    /// well-formed XML.
    pub fn add(&mut self, text: &str) -> Result<(), String> {
        let doc = Document::parse(text).map_err(|e| e.to_string())?;
        let tests = tests_of(&doc);
        for def in doc
            .descendants()
            .filter(|n| n.has_tag_name_local("definition"))
        {
            match definition(def, &tests) {
                Ok((record, statements)) => self.merge(record, statements),
                Err(rejected) => self.rejected.push(rejected),
            }
        }
        Ok(())
    }

    fn merge(&mut self, record: Record, statements: Vec<Affected>) {
        let pending = self
            .records
            .entry(record.id.clone())
            .or_insert_with(|| Pending {
                record: bare_record(record.id.clone(), None),
                statements: BTreeMap::new(),
            });
        let r = &mut pending.record;
        r.aliases.extend(record.aliases);
        if r.summary.is_empty() {
            r.summary = record.summary;
        }
        r.severity = r.severity.take().or(record.severity);
        r.published = match (r.published.take(), record.published) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        r.modified = r.modified.take().max(record.modified);
        for s in statements {
            let key = (s.ecosystem.clone(), s.package.clone());
            pending.statements.entry(key).or_default().push(s);
        }
    }

    /// The records (statements collapsed) and the rejections.
    pub fn finish(self) -> Parsed {
        let records = self
            .records
            .into_values()
            .map(|p| {
                let mut record = p.record;
                record.affected = p.statements.into_values().filter_map(collapse).collect();
                record.normalize();
                record
            })
            .collect();
        Parsed {
            records,
            rejected: self.rejected,
        }
    }
}

trait LocalName {
    fn has_tag_name_local(&self, name: &str) -> bool;
}

impl LocalName for Node<'_, '_> {
    fn has_tag_name_local(&self, name: &str) -> bool {
        self.is_element() && self.tag_name().name() == name
    }
}

fn child<'a, 'i>(node: Node<'a, 'i>, name: &str) -> Option<Node<'a, 'i>> {
    node.children().find(|n| n.has_tag_name_local(name))
}

/// Every `rpminfo_test`, resolved through its object and state.
fn tests_of<'a>(doc: &'a Document) -> HashMap<&'a str, Test<'a>> {
    let mut names = HashMap::new();
    let mut evrs = HashMap::new();
    for n in doc.descendants() {
        let Some(id) = n.attribute("id") else {
            continue;
        };
        if n.has_tag_name_local("rpminfo_object") {
            if let Some(name) = child(n, "name").and_then(|c| c.text()) {
                names.insert(id, name.trim());
            }
        } else if n.has_tag_name_local("rpminfo_state") {
            let evr = child(n, "evr").filter(|e| e.attribute("operation") == Some("less than"));
            if let Some(evr) = evr.and_then(|e| e.text()) {
                evrs.insert(id, evr.trim());
            }
        }
    }
    let mut tests = HashMap::new();
    for n in doc
        .descendants()
        .filter(|n| n.has_tag_name_local("rpminfo_test"))
    {
        let Some(id) = n.attribute("id") else {
            continue;
        };
        let reference = |tag: &str, attr: &str| child(n, tag).and_then(|c| c.attribute(attr));
        let name = reference("object", "object_ref").and_then(|o| names.get(o).copied());
        let less_than = reference("state", "state_ref").and_then(|s| evrs.get(s).copied());
        tests.insert(id, Test { name, less_than });
    }
    tests
}

/// One definition: its record (without statements) and its statements.
fn definition(def: Node, tests: &HashMap<&str, Test>) -> Result<(Record, Vec<Affected>), Rejected> {
    let meta = child(def, "metadata");
    let title = meta
        .and_then(|m| child(m, "title"))
        .and_then(|t| t.text())
        .map(str::trim)
        .unwrap_or_default();
    let def_id = def.attribute("id").unwrap_or_default();
    let id = if def.attribute("class") == Some("vulnerability") && title.starts_with("CVE-") {
        title.to_string()
    } else if !def_id.is_empty() {
        def_id.to_string()
    } else {
        return Err(Rejected {
            id: if title.is_empty() {
                "OVAL definition".into()
            } else {
                clip(title, 120)
            },
            reason: "an OVAL definition without an id".into(),
        });
    };
    let advisory = meta.and_then(|m| child(m, "advisory"));
    let date = |tag: &str| {
        advisory
            .and_then(|a| child(a, tag))
            .and_then(|d| d.attribute("date"))
            .map(str::to_string)
    };
    let mut record = bare_record(id.clone(), date("updated"));
    record.published = date("issued");
    record.summary = meta
        .and_then(|m| child(m, "description"))
        .and_then(|d| d.text())
        .map(one_line)
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| one_line(title));
    record.severity = advisory
        .and_then(|a| child(a, "severity"))
        .and_then(|s| s.text())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    if let Some(m) = meta {
        for r in m.children().filter(|n| n.has_tag_name_local("reference")) {
            if let Some(cve) = r
                .attribute("ref_id")
                .and_then(|i| i.split_whitespace().last())
            {
                if cve.starts_with("CVE-") {
                    record.aliases.push(cve.to_string());
                }
            }
        }
    }
    record.normalize();
    let mut statements = Vec::new();
    if let Some(criteria) = child(def, "criteria") {
        walk(criteria, &[], tests, &mut statements, 0).map_err(|reason| Rejected {
            id: id.clone(),
            reason,
        })?;
    }
    Ok((record, statements))
}

/// Deepest criteria nesting read (SUSE's is 4).
const MAX_DEPTH: usize = 32;

/// What a criterion's comment says.
enum Criterion<'a> {
    Product(&'a str),
    Installed(&'a str),
    NotAffected(&'a str),
    Affected(&'a str),
    Other,
}

fn criterion(comment: &str) -> Criterion<'_> {
    let comment = comment.trim();
    if let Some(s) = comment.strip_suffix(" is not affected") {
        return Criterion::NotAffected(s);
    }
    if let Some(s) = comment.strip_suffix(" is affected") {
        return Criterion::Affected(s);
    }
    match comment.strip_suffix(" is installed") {
        Some(s) if s.contains(' ') => Criterion::Product(s),
        Some(s) if !s.is_empty() => Criterion::Installed(s),
        _ => Criterion::Other,
    }
}

/// Whether every criterion under `node` names a product.
fn products_only(node: Node) -> bool {
    let mut any = false;
    for c in node
        .descendants()
        .filter(|n| n.has_tag_name_local("criterion"))
    {
        any = true;
        if !matches!(
            criterion(c.attribute("comment").unwrap_or_default()),
            Criterion::Product(_)
        ) {
            return false;
        }
    }
    any
}

fn walk(
    node: Node,
    inherited: &[String],
    tests: &HashMap<&str, Test>,
    out: &mut Vec<Affected>,
    depth: usize,
) -> Result<(), String> {
    if depth >= MAX_DEPTH {
        return Ok(());
    }
    let mut products: Vec<String> = inherited.to_vec();
    let and = node
        .attribute("operator")
        .is_none_or(|o| o.eq_ignore_ascii_case("AND"));
    if and {
        for c in node.children().filter(|n| n.is_element()) {
            if c.has_tag_name_local("criteria") && products_only(c) {
                for p in c
                    .descendants()
                    .filter(|n| n.has_tag_name_local("criterion"))
                {
                    if let Criterion::Product(name) =
                        criterion(p.attribute("comment").unwrap_or_default())
                    {
                        products.push(name.to_string());
                    }
                }
            } else if c.has_tag_name_local("criterion") {
                if let Criterion::Product(name) =
                    criterion(c.attribute("comment").unwrap_or_default())
                {
                    products.push(name.to_string());
                }
            }
        }
    }
    let ecosystems: Vec<String> = products
        .iter()
        .filter_map(|p| product_ecosystem(p))
        .collect();
    for c in node.children().filter(|n| n.is_element()) {
        if c.has_tag_name_local("criteria") {
            if !(and && products_only(c)) {
                walk(c, &products, tests, out, depth + 1)?;
            }
            continue;
        }
        if !c.has_tag_name_local("criterion") {
            continue;
        }
        let comment = c.attribute("comment").unwrap_or_default();
        let (package, status, note) = match criterion(comment) {
            Criterion::NotAffected(p) => (p.to_string(), Status::NotAffected, "not affected"),
            Criterion::Affected(p) => (p.to_string(), Status::AffectedNoFix, "affected"),
            Criterion::Installed(nvr) => {
                let test = c.attribute("test_ref").and_then(|t| tests.get(t));
                let (package, version) = fixed_of(nvr, test)?;
                (
                    package,
                    Status::Fixed {
                        fixed_version: version,
                    },
                    "fixed",
                )
            }
            Criterion::Product(_) | Criterion::Other => continue,
        };
        if package.is_empty() || package.contains(char::is_whitespace) {
            return Err(format!(
                "criterion '{}' names no package",
                clip(comment, 120)
            ));
        }
        for eco in &ecosystems {
            out.push(Affected {
                ecosystem: eco.clone(),
                package: package.clone(),
                introduced: None,
                last_affected: None,
                status: status.clone(),
                note: Some(note.to_string()),
                severity: None,
            });
        }
    }
    Ok(())
}

/// The binary and fixed version of an `<nvr> is installed` criterion: the test's
/// object name and "less than" `evr` when it resolves, else the comment's.
fn fixed_of(nvr: &str, test: Option<&Test>) -> Result<(String, String), String> {
    let from_comment = split_nvr(nvr, None);
    let name = test
        .and_then(|t| t.name)
        .or(from_comment.as_ref().map(|(n, _)| *n));
    let version = match test.and_then(|t| t.less_than) {
        Some(evr) => Some(evr.strip_prefix("0:").unwrap_or(evr).to_string()),
        None => from_comment.as_ref().map(|(_, v)| v.clone()),
    };
    let (Some(name), Some(version)) = (name, version) else {
        return Err(format!(
            "criterion '{} is installed' is not <name>-<version>-<release>",
            clip(nvr, 120)
        ));
    };
    if let Some(rules) = ecosystem::rules("SUSE") {
        rules
            .scheme
            .parse_check(&version)
            .map_err(|e| format!("fixed version '{version}' of {name}: {e}"))?;
    }
    Ok((name.to_string(), version))
}
