//! The repositories' `updateinfo.xml` (root element `<updates>`), as Amazon Linux
//! (ALAS) and Fedora publish it: one `<update type=… status=…>` per advisory with its
//! `<id>`, `<severity>`, `<issued>`/`<updated>` dates, `<references>` and a `<pkglist>`
//! of `<package name epoch version release arch>` elements, each a binary (or, with
//! `arch="src"`, source) RPM that carries the fix.
//!
//! This module only reads the XML into [`Update`]s and hands each one to its vendor's
//! importer: [`super::amazon`] (feed [`super::amazon::FEED`]) for `ALAS…` ids or
//! `from="…@amazon.com"`, [`super::fedora`] (feed [`super::fedora::FEED`]) for `FEDORA-…`
//! ids or `from="…@fedoraproject.org"`. A file's updates of another vendor, or with no
//! id, are rejected (by id, or as `<file>: update N`) in the feed of the file's first
//! recognised update; a file none of whose updates is recognised is of no known format.
//!
//! Strictness: a `<package>` without `name`, `version` or `release`, or with an epoch
//! that is not a number, makes its update a [`Rejected`]; the other updates are read.
//! The XML must be well-formed (no DTD: roxmltree refuses one, which also rules out
//! entity expansion attacks).

use patchctl_version::Scheme;

use crate::{Affected, Parsed, Rejected, Status};

use super::{amazon, clip, fedora};

/// Longest id, name or version kept from the file (longer text is cut and the update
/// then fails its vendor's checks).
const MAX_FIELD: usize = 512;

/// One `<update>` element.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Update {
    /// `<id>` (`ALAS2-2018-939`, `FEDORA-2023-bb021a4854`).
    pub id: String,
    /// The `type` attribute: `security`, `bugfix`, `enhancement`, `newpackage`.
    pub kind: String,
    /// The `status` attribute: `final` (Amazon), `stable` or `testing` (Fedora).
    pub status: String,
    /// The `from` attribute (`linux-security@amazon.com`).
    pub from: String,
    /// `<title>`.
    pub title: String,
    /// `<release>` (Fedora: `Fedora 38 Modular`), empty when absent.
    pub release: String,
    /// `<severity>` as written (`critical`, `Important`, `None`), empty when absent.
    pub severity: String,
    /// `<issued date>`.
    pub issued: Option<String>,
    /// `<updated date>`.
    pub updated: Option<String>,
    /// `<description>`.
    pub description: String,
    /// `<references>`.
    pub references: Vec<Reference>,
    /// The `short` names of the `<pkglist>` collections (`amazon-linux-2`, `F38M`).
    pub collections: Vec<String>,
    /// Every `<package>` of every collection, in file order.
    pub packages: Vec<Package>,
}

/// One `<reference>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reference {
    /// `type`: `cve`, `bugzilla`, `redhat`, `self`.
    pub kind: String,
    /// `id` (`CVE-2011-3192`, a bug number).
    pub id: String,
    /// `title` (Fedora's bugzilla titles name the CVE ids).
    pub title: String,
}

/// One `<package>`: a fixed RPM.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Package {
    /// RPM name.
    pub name: String,
    /// Epoch (`0` when the attribute is absent).
    pub epoch: u64,
    /// Version.
    pub version: String,
    /// Release (`38.79.amzn2`, `1.fc43`).
    pub release: String,
    /// Architecture (`x86_64`, `noarch`, `src`).
    pub arch: String,
}

impl Package {
    /// `[epoch:]version-release`, the epoch written only when it is not 0 (as the agent
    /// reports installed RPMs; rpm orders a missing epoch as 0).
    pub fn evr(&self) -> String {
        if self.epoch == 0 {
            format!("{}-{}", self.version, self.release)
        } else {
            format!("{}:{}-{}", self.epoch, self.version, self.release)
        }
    }
}

/// Why an `updateinfo.xml` document could not be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpdateinfoError {
    /// Not well-formed XML.
    #[error("not well-formed XML: {0}")]
    Xml(String),
    /// Updates, but none from a vendor PatchCTL reads.
    #[error("an updateinfo.xml of no vendor PatchCTL reads (Amazon Linux, Fedora)")]
    UnknownVendor,
}

/// Whose advisories an update is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vendor {
    /// Amazon Linux (ALAS).
    Amazon,
    /// Fedora (and EPEL, which the Fedora importer skips).
    Fedora,
}

impl Vendor {
    /// The vendor of an update: by its id, else by its `from` address.
    pub fn of(update: &Update) -> Option<Vendor> {
        if update.id.starts_with("ALAS") || update.from.ends_with("@amazon.com") {
            Some(Vendor::Amazon)
        } else if update.id.starts_with("FEDORA-") || update.from.ends_with("fedoraproject.org") {
            Some(Vendor::Fedora)
        } else {
            None
        }
    }

    /// The feed this vendor's records are imported into.
    pub fn feed(self) -> &'static str {
        match self {
            Vendor::Amazon => amazon::FEED,
            Vendor::Fedora => fedora::FEED,
        }
    }
}

/// Reads the `<update>` elements of an `updateinfo.xml` document: each one an
/// [`Update`], or a [`Rejected`] when it has no id or a malformed `<package>`.
pub fn read(origin: &str, text: &str) -> Result<Vec<Result<Update, Rejected>>, UpdateinfoError> {
    let doc = roxmltree::Document::parse(text).map_err(|e| UpdateinfoError::Xml(e.to_string()))?;
    let updates = doc
        .root_element()
        .children()
        .filter(|n| n.has_tag_name("update"));
    Ok(updates
        .enumerate()
        .map(|(i, node)| read_update(origin, i, node))
        .collect())
}

/// Imports an `updateinfo.xml` document: one [`Parsed`] per feed it holds records or
/// rejections for (see the module docs). An empty `<updates/>` gives nothing.
pub fn parse(origin: &str, text: &str) -> Result<Vec<(&'static str, Parsed)>, UpdateinfoError> {
    let updates = read(origin, text)?;
    let file_vendor = updates
        .iter()
        .filter_map(|u| u.as_ref().ok())
        .find_map(Vendor::of);
    let Some(file_vendor) = file_vendor else {
        return if updates.is_empty() {
            Ok(Vec::new())
        } else {
            Err(UpdateinfoError::UnknownVendor)
        };
    };
    let mut amazon = Parsed::default();
    let mut fedora = Parsed::default();
    for update in updates {
        let (vendor, result) = match update {
            Err(rejected) => (file_vendor, Err(rejected)),
            Ok(u) => match Vendor::of(&u) {
                Some(Vendor::Amazon) => (Vendor::Amazon, amazon::parse_update(&u)),
                Some(Vendor::Fedora) => (Vendor::Fedora, fedora::parse_update(&u)),
                None => (
                    file_vendor,
                    Err(Rejected {
                        reason: format!(
                            "update of an unknown vendor (from {:?}) in an updateinfo.xml of {}",
                            u.from,
                            file_vendor.feed()
                        ),
                        id: u.id,
                    }),
                ),
            },
        };
        let parsed = match vendor {
            Vendor::Amazon => &mut amazon,
            Vendor::Fedora => &mut fedora,
        };
        match result {
            Ok(Some(record)) => parsed.records.push(record),
            Ok(None) => {}
            Err(rejected) => parsed.rejected.push(rejected),
        }
    }
    let mut out = Vec::new();
    for (feed, parsed) in [(amazon::FEED, amazon), (fedora::FEED, fedora)] {
        if !(parsed.records.is_empty() && parsed.rejected.is_empty()) || feed == file_vendor.feed()
        {
            out.push((feed, parsed));
        }
    }
    Ok(out)
}

fn read_update(
    origin: &str,
    index: usize,
    node: roxmltree::Node<'_, '_>,
) -> Result<Update, Rejected> {
    let attr = |name: &str| field(node.attribute(name).unwrap_or_default());
    let child = |name: &str| node.children().find(|c| c.has_tag_name(name));
    let text = |name: &str| {
        child(name)
            .and_then(|c| c.text())
            .map(field)
            .unwrap_or_default()
    };
    let date = |name: &str| {
        child(name)
            .and_then(|c| c.attribute("date"))
            .filter(|d| !d.trim().is_empty())
            .map(|d| utc_time(&field(d)))
    };
    let id = text("id").trim().to_string();
    if id.is_empty() {
        return Err(Rejected {
            id: format!("{origin}: update {}", index + 1),
            reason: "an <update> without an <id>".into(),
        });
    }
    let mut update = Update {
        kind: attr("type"),
        status: attr("status"),
        from: attr("from"),
        title: text("title"),
        release: text("release").trim().to_string(),
        severity: text("severity").trim().to_string(),
        issued: date("issued"),
        updated: date("updated"),
        description: text("description"),
        references: Vec::new(),
        collections: Vec::new(),
        packages: Vec::new(),
        id,
    };
    for r in elements(child("references"), "reference") {
        update.references.push(Reference {
            kind: field(r.attribute("type").unwrap_or_default()),
            id: field(r.attribute("id").unwrap_or_default()),
            title: field(r.attribute("title").unwrap_or_default()),
        });
    }
    for collection in elements(child("pkglist"), "collection") {
        update
            .collections
            .push(field(collection.attribute("short").unwrap_or_default()));
        for (n, p) in elements(Some(collection), "package")
            .into_iter()
            .enumerate()
        {
            let package = read_package(p).map_err(|reason| Rejected {
                id: update.id.clone(),
                reason: format!("package {} of the pkglist: {reason}", n + 1),
            })?;
            update.packages.push(package);
        }
    }
    Ok(update)
}

/// The child elements `name` of `parent`.
fn elements<'a, 'i>(
    parent: Option<roxmltree::Node<'a, 'i>>,
    name: &'static str,
) -> Vec<roxmltree::Node<'a, 'i>> {
    parent
        .into_iter()
        .flat_map(|p| p.children())
        .filter(|c| c.has_tag_name(name))
        .collect()
}

fn read_package(p: roxmltree::Node<'_, '_>) -> Result<Package, String> {
    let required = |name: &str| -> Result<String, String> {
        p.attribute(name)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(field)
            .ok_or_else(|| format!("no {name} attribute"))
    };
    let name = required("name")?;
    let epoch = match p.attribute("epoch").map(str::trim) {
        None | Some("") => 0,
        Some(e) => e
            .parse::<u64>()
            .map_err(|_| format!("{name}: epoch {:?} is not a number", clip(e, 40)))?,
    };
    Ok(Package {
        version: required("version").map_err(|e| format!("{name}: {e}"))?,
        release: required("release").map_err(|e| format!("{name}: {e}"))?,
        arch: field(p.attribute("arch").unwrap_or_default()),
        epoch,
        name,
    })
}

/// One [`Status::Fixed`] per package name (arches collapse; a `src` package is kept
/// under its own name): the lowest build of the name is the fixed version, and when
/// arches carry different builds the note names the others. Err: a version `scheme`
/// cannot read.
pub(crate) fn fixed_per_name(
    ecosystem: &str,
    scheme: Scheme,
    packages: &[Package],
) -> Result<Vec<Affected>, String> {
    let mut per_name: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
    for p in packages {
        let evr = p.evr();
        scheme
            .parse_check(&evr)
            .map_err(|e| format!("package {}: version {evr:?}: {e}", p.name))?;
        let builds = per_name.entry(&p.name).or_default();
        if !builds.contains(&evr) {
            builds.push(evr);
        }
    }
    let mut out = Vec::with_capacity(per_name.len());
    for (name, mut builds) in per_name {
        builds.sort_by(|a, b| scheme.compare(a, b).unwrap_or(std::cmp::Ordering::Equal));
        let lowest = builds.remove(0);
        let note = (!builds.is_empty())
            .then(|| format!("other architectures fixed in {}", builds.join(", ")));
        out.push(Affected {
            ecosystem: ecosystem.to_string(),
            package: name.to_string(),
            introduced: None,
            last_affected: None,
            status: Status::Fixed {
                fixed_version: lowest,
            },
            note,
            severity: None,
        });
    }
    Ok(out)
}

/// A field of the file, bounded to [`MAX_FIELD`] characters.
fn field(s: &str) -> String {
    clip(s, MAX_FIELD)
}

/// An updateinfo or Bodhi date (`2018-01-16 01:28`, `2023-02-22 23:22:00`, in UTC) as
/// RFC 3339 (`2018-01-16T01:28:00Z`); other text is kept as written.
pub(crate) fn utc_time(s: &str) -> String {
    let s = s.trim();
    for format in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, format) {
            return t.and_utc().format("%Y-%m-%dT%H:%M:%SZ").to_string();
        }
    }
    s.to_string()
}

/// The CVE ids written in `text` (`CVE-YYYY-NNNN…`, at least four digits after the year:
/// a title cut in the middle of an id gives none), in order, without repeats.
pub(crate) fn cve_ids_in(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("CVE-") {
        let tail = &rest[at + 4..];
        let year: String = tail.chars().take_while(char::is_ascii_digit).collect();
        let after_year = &tail[year.len()..];
        let number: String = after_year
            .strip_prefix('-')
            .map(|t| t.chars().take_while(char::is_ascii_digit).collect())
            .unwrap_or_default();
        let boundary = after_year
            .get(1 + number.len()..)
            .and_then(|t| t.chars().next())
            .is_none_or(|c| !c.is_ascii_alphanumeric());
        if year.len() == 4 && (4..=19).contains(&number.len()) && boundary {
            let id = format!("CVE-{year}-{number}");
            if !out.contains(&id) {
                out.push(id);
            }
        }
        rest = tail;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    use proptest::prelude::*;

    /// Pieces of updateinfo documents, shuffled into any order.
    fn piece() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(vec![
                "<updates>",
                "</updates>",
                "<update from=\"linux-security@amazon.com\" type=\"security\">",
                "<update from=\"updates@fedoraproject.org\" status=\"testing\" type=\"security\">",
                "</update>",
                "<id>ALAS2-2018-942</id>",
                "<id>ALAS2KERNEL-5.15-2022-001</id>",
                "<id>FEDORA-2023-1</id>",
                "<pkglist><collection short=\"F38\">",
                "</collection></pkglist>",
                "<package name=\"q\" epoch=\"10\" version=\"1.5\" release=\"1.amzn2\" arch=\"x86_64\"/>",
                "<package name=\"q\" epoch=\"x\" version=\"1\" release=\"1.amzn2023\"/>",
                "<package name=\"q\" version=\"\" release=\"1\"/>",
                "<references><reference type=\"cve\" id=\"CVE-2020-1234\"/></references>",
                "<severity>Important</severity>",
                "<release>Fedora 38 Modular</release>",
                "<issued date=\"2018-01-16 01:28\"/>",
            ])
            .prop_map(str::to_string),
            "[ -~]{0,12}",
        ]
    }

    proptest! {
        #[test]
        fn any_document_never_panics(pieces in prop::collection::vec(piece(), 0..30)) {
            let text = pieces.concat();
            if let Ok(feeds) = parse("p.xml", &text) {
                for (_, parsed) in feeds {
                    for r in parsed.records {
                        prop_assert!(!r.id.is_empty());
                        prop_assert!(r.affected.iter().all(|a| a.status.fixed_version().is_some()));
                    }
                }
            }
        }
    }

    #[test]
    fn cve_ids_and_cut_titles() {
        assert_eq!(
            cve_ids_in("CVE-2022-21594 CVE-2022-21599, CVE-2022-2 ... CVE-2022-21594"),
            ["CVE-2022-21594", "CVE-2022-21599"]
        );
        assert_eq!(
            cve_ids_in("TRIAGE CVE-2024-24989 nginx:"),
            ["CVE-2024-24989"]
        );
        assert!(cve_ids_in("CVE-2024-1234x CVE-24-12345 CVE-").is_empty());
    }

    #[test]
    fn dates_become_rfc3339() {
        assert_eq!(utc_time("2018-01-16 01:28"), "2018-01-16T01:28:00Z");
        assert_eq!(utc_time("2023-02-22 23:22:00"), "2023-02-22T23:22:00Z");
        assert_eq!(utc_time("yesterday"), "yesterday");
    }

    #[test]
    fn packages_without_version_reject_their_update() {
        let xml = r#"<updates>
          <update from="linux-security@amazon.com" type="security"><id>ALAS2-2099-1</id>
            <pkglist><collection short="amazon-linux-2">
              <package name="vim" epoch="2" release="1.amzn2" arch="x86_64"/>
            </collection></pkglist></update>
          <update type="security"><title>no id</title></update>
        </updates>"#;
        let Ok(got) = read("f.xml", xml) else {
            panic!("well-formed")
        };
        let ids: Vec<_> = got
            .iter()
            .map(|r| r.as_ref().map_or_else(|e| e.id.clone(), |u| u.id.clone()))
            .collect();
        assert_eq!(ids, ["ALAS2-2099-1", "f.xml: update 2"]);
        assert!(got.iter().all(Result::is_err));
        assert!(matches!(
            read("f.xml", "<updates><update>"),
            Err(UpdateinfoError::Xml(_))
        ));
        assert_eq!(
            parse("f.xml", "<updates><update><id>X-1</id></update></updates>"),
            Err(UpdateinfoError::UnknownVendor)
        );
        assert_eq!(parse("f.xml", "<updates/>"), Ok(Vec::new()));
    }
}
