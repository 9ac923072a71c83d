//! Parsers of zypper's XML output (`--xmlout`): the messages, `list-updates`,
//! `list-patches`, `patch-info`/`info` and the install plan of a dry run. Pure: text in,
//! values out; unreadable XML is an error, never "no updates".

use crate::pkgmgr::{Change, PkgError, Transaction};

/// The XML document in zypper's standard output: from `<?xml` (or `<stream`) to the
/// last `</stream>`, so stray text around it does not matter.
fn document(xml: &str) -> Result<roxmltree::Document<'_>, PkgError> {
    let start = xml
        .find("<?xml")
        .or_else(|| xml.find("<stream"))
        .ok_or_else(|| {
            PkgError::Unparsable("zypper printed no XML (expected --xmlout output)".to_owned())
        })?;
    let body = &xml[start..];
    let end = body
        .rfind("</stream>")
        .map(|i| i + "</stream>".len())
        .unwrap_or(body.len());
    roxmltree::Document::parse(&body[..end])
        .map_err(|e| PkgError::Unparsable(format!("zypper's XML output cannot be read: {e}")))
}

fn attr(n: roxmltree::Node<'_, '_>, name: &str) -> Option<String> {
    n.attribute(name)
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

fn text_of(n: roxmltree::Node<'_, '_>) -> String {
    n.descendants()
        .filter(|d| d.is_text())
        .filter_map(|d| d.text())
        .collect::<String>()
}

pub(super) fn quote(s: &str) -> String {
    crate::text::truncate(s.trim(), 120).replace('\n', " ")
}

/// What zypper said besides its data: `<message>`s, problem descriptions of
/// `<prompt>`s, and bare text in the stream (`package 'x' not found.`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Messages {
    /// `<message type="error">` texts and problem descriptions (dependency problems).
    pub errors: Vec<String>,
    /// `<message type="warning">` texts.
    pub warnings: Vec<String>,
    /// `<message type="info">` texts (also of unknown types) and bare text.
    pub info: Vec<String>,
}

impl Messages {
    fn read(doc: &roxmltree::Document<'_>) -> Messages {
        let mut m = Messages::default();
        for n in doc.descendants().filter(|n| n.is_element()) {
            match n.tag_name().name() {
                "message" => {
                    let text = text_of(n).trim().to_owned();
                    if text.is_empty() {
                        continue;
                    }
                    match n.attribute("type") {
                        Some("error") => m.errors.push(text),
                        Some("warning") => m.warnings.push(text),
                        _ => m.info.push(text),
                    }
                }
                "prompt" => {
                    for d in n.children().filter(|c| c.has_tag_name("description")) {
                        let text = text_of(d).trim().to_owned();
                        if !text.is_empty() {
                            m.errors.push(text);
                        }
                    }
                }
                "stream" => {
                    for t in n.children().filter(|c| c.is_text()) {
                        let text = t.text().unwrap_or("").trim();
                        if !text.is_empty() {
                            m.info.push(text.to_owned());
                        }
                    }
                }
                _ => {}
            }
        }
        m
    }
}

/// Parses only the messages of any zypper XML output.
pub fn parse_messages(xml: &str) -> Result<Messages, PkgError> {
    Ok(Messages::read(&document(xml)?))
}

/// One package update of `list-updates`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PackageUpdate {
    /// Package name.
    pub name: String,
    /// Architecture.
    pub arch: String,
    /// The candidate's edition (`[E:]V-R`).
    pub edition: String,
    /// The installed edition (`edition-old`; absent before zypper 1.14).
    pub edition_old: Option<String>,
    /// The repository's alias (or its URL when there is no alias).
    pub repository: Option<String>,
}

/// What `list-updates` said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListUpdates {
    /// The package updates.
    pub updates: Vec<PackageUpdate>,
    /// Entries that could not be read, with why.
    pub skipped: Vec<String>,
    /// zypper's messages.
    pub messages: Messages,
}

fn update_list<'a, 'i>(
    doc: &'a roxmltree::Document<'i>,
    what: &str,
) -> Result<Vec<roxmltree::Node<'a, 'i>>, PkgError> {
    let status = doc
        .descendants()
        .find(|n| n.has_tag_name("update-status"))
        .ok_or_else(|| {
            let m = Messages::read(doc);
            PkgError::Unparsable(if m.errors.is_empty() {
                format!("zypper's {what} output has no <update-status> element")
            } else {
                format!("zypper {what}: {}", m.errors.join("; "))
            })
        })?;
    Ok(status
        .children()
        .filter(|n| n.has_tag_name("update-list"))
        .flat_map(|l| l.children().filter(|n| n.has_tag_name("update")))
        .collect())
}

/// Parses `zypper --xmlout list-updates`. `Err` when the output is not zypper's XML or
/// has no `<update-status>` (an empty list of updates is still an `<update-status>`).
/// Entries of other kinds than `package` are ignored. Never panics.
pub fn parse_list_updates(xml: &str) -> Result<ListUpdates, PkgError> {
    let doc = document(xml)?;
    let mut out = ListUpdates {
        messages: Messages::read(&doc),
        ..ListUpdates::default()
    };
    for u in update_list(&doc, "list-updates")? {
        if u.attribute("kind").is_some_and(|k| k != "package") {
            continue;
        }
        let (Some(name), Some(edition)) = (attr(u, "name"), attr(u, "edition")) else {
            out.skipped.push(format!(
                "an update without a name or edition: name={:?} edition={:?}",
                u.attribute("name").map(quote),
                u.attribute("edition").map(quote)
            ));
            continue;
        };
        let source = u.children().find(|c| c.has_tag_name("source"));
        out.updates.push(PackageUpdate {
            name,
            arch: attr(u, "arch").unwrap_or_default(),
            edition,
            edition_old: attr(u, "edition-old"),
            repository: source.and_then(|s| attr(s, "alias").or_else(|| attr(s, "url"))),
        });
    }
    Ok(out)
}

/// One patch of `list-patches`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Patch {
    /// The patch's name, the advisory id (`openSUSE-SLE-15.6-2024-1234`).
    pub name: String,
    /// `security`, `recommended`, `optional`, `feature`, `document`, `yast`.
    pub category: Option<String>,
    /// `critical`, `important`, `moderate`, `low`, `unspecified`.
    pub severity: Option<String>,
    /// `needed`, `applied`, `not-needed`.
    pub status: Option<String>,
    /// The repository's alias.
    pub repository: Option<String>,
}

/// What `list-patches` said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListPatches {
    /// The patches, needed or not, as listed.
    pub patches: Vec<Patch>,
    /// Entries that could not be read, with why.
    pub skipped: Vec<String>,
}

impl ListPatches {
    /// The patches that are needed (no status counts as needed: `list-patches` lists
    /// only those by default).
    pub fn needed(&self) -> impl Iterator<Item = &Patch> {
        self.patches
            .iter()
            .filter(|p| p.status.as_deref().is_none_or(|s| s == "needed"))
    }
}

/// Parses `zypper --xmlout list-patches`. `Err` as for [`parse_list_updates`]. Never
/// panics.
pub fn parse_list_patches(xml: &str) -> Result<ListPatches, PkgError> {
    let doc = document(xml)?;
    let mut out = ListPatches::default();
    for u in update_list(&doc, "list-patches")? {
        if u.attribute("kind").is_some_and(|k| k != "patch") {
            continue;
        }
        let Some(name) = attr(u, "name") else {
            out.skipped.push("a patch without a name".into());
            continue;
        };
        let source = u.children().find(|c| c.has_tag_name("source"));
        out.patches.push(Patch {
            name,
            category: attr(u, "category"),
            severity: attr(u, "severity"),
            status: attr(u, "status"),
            repository: source.and_then(|s| attr(s, "alias")),
        });
    }
    Ok(out)
}

/// A package version a patch fixes: the patch conflicts with `name[.arch] < edition`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fix {
    /// Package name.
    pub name: String,
    /// Architecture, when the entry names one (`pc-lib.x86_64`); `None` for any.
    pub arch: Option<String>,
    /// The first fixed edition.
    pub edition: String,
}

/// One patch as `info -t patch` describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PatchDetail {
    /// The patch's name.
    pub name: String,
    /// Its category.
    pub category: Option<String>,
    /// Its severity.
    pub severity: Option<String>,
    /// The package versions it fixes (source packages left out).
    pub fixes: Vec<Fix>,
}

/// What `info -t patch` said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PatchInfo {
    /// One entry per patch found.
    pub patches: Vec<PatchDetail>,
    /// Lines that could not be read, with why.
    pub skipped: Vec<String>,
}

/// Architectures rpm knows, to tell `name.arch` from a name with a dot.
const ARCHES: &[&str] = &[
    "noarch",
    "x86_64",
    "i386",
    "i486",
    "i586",
    "i686",
    "athlon",
    "aarch64",
    "aarch64_ilp32",
    "armv5tel",
    "armv6hl",
    "armv6l",
    "armv7hl",
    "armv7l",
    "ppc",
    "ppc64",
    "ppc64le",
    "ppc64p7",
    "s390",
    "s390x",
    "riscv64",
    "ia64",
    "loongarch64",
    "src",
    "nosrc",
];

/// The `Key : Value` fields of one block of zypper's `info` text, each with the
/// indented lines that follow it.
fn fields(text: &str) -> Vec<(String, String, Vec<String>)> {
    let mut out: Vec<(String, String, Vec<String>)> = Vec::new();
    for line in text.lines() {
        let starts_field = !line.starts_with([' ', '\t']);
        match line.split_once(" : ").or_else(|| {
            line.strip_suffix(" :")
                .or_else(|| line.trim_end().strip_suffix(" :"))
                .map(|k| (k, ""))
        }) {
            Some((k, v)) if starts_field && !k.trim().is_empty() => {
                out.push((k.trim().to_owned(), v.trim().to_owned(), Vec::new()));
            }
            _ => {
                if let Some(last) = out.last_mut() {
                    if !line.trim().is_empty() {
                        last.2.push(line.trim().to_owned());
                    }
                }
            }
        }
    }
    out
}

fn field<'a>(f: &'a [(String, String, Vec<String>)], key: &str) -> Option<&'a str> {
    f.iter()
        .find(|(k, _, _)| k == key)
        .map(|(_, v, _)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// Reads one conflict entry: `NAME[.ARCH] < EDITION`. `Ok(None)` for entries that are
/// not binary packages (`srcpackage:x`, `x.src`).
/// Why a conflict entry of a patch could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum FixError {
    /// Not `NAME[.ARCH] OP EDITION`.
    #[error("unreadable conflict {0:?}")]
    Unreadable(String),
    /// An operator other than `<` or `<=`.
    #[error("unexpected conflict operator in {0:?}")]
    Operator(String),
}

pub(super) fn parse_fix(entry: &str) -> Result<Option<Fix>, FixError> {
    let mut words = entry.split_whitespace();
    let (Some(cap), Some(op), Some(edition), None) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return Err(FixError::Unreadable(quote(entry)));
    };
    if !matches!(op, "<" | "<=") {
        return Err(FixError::Operator(quote(entry)));
    }
    if cap.contains(':') {
        // `srcpackage:NAME`, `patch:NAME`: not an installable package.
        return Ok(None);
    }
    let (name, arch) = match cap.rsplit_once('.') {
        Some((n, a)) if ARCHES.contains(&a) && !n.is_empty() => (n, Some(a)),
        _ => (cap, None),
    };
    if matches!(arch, Some("src" | "nosrc")) {
        return Ok(None);
    }
    Ok(Some(Fix {
        name: name.to_owned(),
        arch: arch.map(str::to_owned),
        edition: edition.to_owned(),
    }))
}

/// Parses `zypper --xmlout info -t patch -- PATCH...`: each patch is a `<message>`
/// holding `Key : Value` text; `Conflicts : [N]` is followed by N indented entries, or
/// `Conflicts : ENTRY` holds a single one. Never panics.
pub fn parse_patch_info(xml: &str) -> Result<PatchInfo, PkgError> {
    let doc = document(xml)?;
    let mut out = PatchInfo::default();
    for m in doc.descendants().filter(|n| n.has_tag_name("message")) {
        let text = text_of(m);
        let f = fields(&text);
        let Some(name) = field(&f, "Name") else {
            continue;
        };
        let mut p = PatchDetail {
            name: name.to_owned(),
            category: field(&f, "Category").map(str::to_owned),
            severity: field(&f, "Severity").map(str::to_owned),
            fixes: Vec::new(),
        };
        if let Some((_, value, more)) = f.iter().find(|(k, _, _)| k == "Conflicts") {
            let count = value
                .strip_prefix('[')
                .and_then(|v| v.strip_suffix(']'))
                .and_then(|n| n.parse::<usize>().ok());
            let entries: Vec<&str> = match count {
                Some(n) => {
                    if n != more.len() {
                        out.skipped.push(format!(
                            "patch {}: {n} conflicts announced, {} listed",
                            quote(name),
                            more.len()
                        ));
                    }
                    more.iter().map(String::as_str).collect()
                }
                None => std::iter::once(value.as_str())
                    .chain(more.iter().map(String::as_str))
                    .collect(),
            };
            for e in entries {
                match parse_fix(e) {
                    Ok(Some(fix)) => p.fixes.push(fix),
                    Ok(None) => {}
                    Err(why) => out.skipped.push(format!("patch {}: {why}", quote(name))),
                }
            }
        }
        out.patches.push(p);
    }
    Ok(out)
}

/// What `info -t package` says of one package.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PackageInfo {
    /// Package name.
    pub name: String,
    /// zypper's candidate: the update candidate when there is one, else the installed
    /// or the best available version.
    pub version: String,
    /// Architecture.
    pub arch: Option<String>,
    /// The candidate's repository (`@System` when it is only installed).
    pub repository: Option<String>,
    /// `Installed : Yes…`.
    pub installed: bool,
    /// `up-to-date`, `out-of-date (version X installed)`, `not installed`.
    pub status: Option<String>,
}

impl PackageInfo {
    /// True when zypper says a newer version than the installed one is available.
    pub fn out_of_date(&self) -> bool {
        self.status
            .as_deref()
            .is_some_and(|s| s.starts_with("out-of-date"))
    }
}

/// Parses `zypper --xmlout info -t package -- NAME`; `Ok(None)` when zypper knows no
/// such package. Never panics.
pub fn parse_package_info(xml: &str) -> Result<Option<PackageInfo>, PkgError> {
    let doc = document(xml)?;
    for m in doc.descendants().filter(|n| n.has_tag_name("message")) {
        let f = fields(&text_of(m));
        let (Some(name), Some(version)) = (field(&f, "Name"), field(&f, "Version")) else {
            continue;
        };
        return Ok(Some(PackageInfo {
            name: name.to_owned(),
            version: version.to_owned(),
            arch: field(&f, "Arch").map(str::to_owned),
            repository: field(&f, "Repository").map(str::to_owned),
            installed: field(&f, "Installed").is_some_and(|v| v.starts_with("Yes")),
            status: field(&f, "Status").map(str::to_owned),
        }));
    }
    Ok(None)
}

/// One solvable of an install summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedChange {
    /// The summary's section: `to-upgrade`, `to-install`, `to-remove`, ...
    pub section: String,
    /// The change for the install gate.
    pub change: Change,
    /// Architecture.
    pub arch: String,
}

/// What a dry run (`--dry-run`) said it would do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// True when zypper printed an `<install-summary>` (absent when it stopped at a
    /// problem or an error).
    pub summary: bool,
    /// Every change, in the summary's order.
    pub changes: Vec<PlannedChange>,
    /// Parts of the summary that could not be read, with why.
    pub skipped: Vec<String>,
    /// zypper's messages (errors include dependency problems).
    pub messages: Messages,
}

impl Plan {
    /// The plan as a transaction for the install gate ([`crate::pkgmgr::refusals`]).
    pub fn transaction(&self) -> Transaction {
        Transaction {
            changes: self.changes.iter().map(|c| c.change.clone()).collect(),
            skipped: self.skipped.clone(),
        }
    }

    /// Names of the packages the plan removes.
    pub fn removals(&self) -> Vec<String> {
        self.changes
            .iter()
            .filter(|c| c.change.to.is_none())
            .map(|c| c.change.name.clone())
            .collect()
    }
}

/// Sections of `<install-summary>` that change packages; `_unsupported` only repeats
/// solvables of these with their support level.
const SECTIONS: &[&str] = &[
    "to-upgrade",
    "to-downgrade",
    "to-install",
    "to-reinstall",
    "to-remove",
    "to-change-arch",
    "to-change-vendor",
];

/// Parses the output of a dry run ([`simulate_argv`](super::simulate_argv), [`full_update_simulate_argv`](super::full_update_simulate_argv)):
/// the `<install-summary>`'s sections, and zypper's messages. Solvables that are not
/// packages are named `TYPE:NAME` (so the gate refuses them as unapproved); a section
/// the parser does not know, a solvable without a name or edition, and a downgrade
/// without its installed edition go to `skipped`. Never panics.
pub fn parse_plan(xml: &str) -> Result<Plan, PkgError> {
    let doc = document(xml)?;
    let mut plan = Plan {
        messages: Messages::read(&doc),
        ..Plan::default()
    };
    for summary in doc
        .descendants()
        .filter(|n| n.has_tag_name("install-summary"))
    {
        plan.summary = true;
        for section in summary.children().filter(|n| n.is_element()) {
            let sname = section.tag_name().name();
            if sname == "_unsupported" {
                continue;
            }
            if !SECTIONS.contains(&sname) {
                plan.skipped.push(format!(
                    "unknown install-summary section <{}>",
                    quote(sname)
                ));
                continue;
            }
            for s in section.children().filter(|n| n.has_tag_name("solvable")) {
                let (Some(name), Some(edition)) = (attr(s, "name"), attr(s, "edition")) else {
                    plan.skipped
                        .push(format!("a solvable in <{sname}> without a name or edition"));
                    continue;
                };
                let name = match s.attribute("type") {
                    None | Some("package") => name,
                    Some(t) => format!("{}:{name}", quote(t)),
                };
                let old = attr(s, "edition-old");
                let (from, to) = match sname {
                    "to-remove" => (Some(edition), None),
                    "to-install" => (None, Some(edition)),
                    "to-reinstall" => (Some(old.unwrap_or_else(|| edition.clone())), Some(edition)),
                    _ => {
                        if old.is_none() && sname == "to-downgrade" {
                            plan.skipped.push(format!(
                                "a downgrade of {name} without the installed edition"
                            ));
                            continue;
                        }
                        (old, Some(edition))
                    }
                };
                let change = Change { name, from, to };
                // A package that changes vendor or arch on upgrade is listed twice.
                if plan.changes.iter().any(|c| c.change == change) {
                    continue;
                }
                plan.changes.push(PlannedChange {
                    section: sname.to_owned(),
                    change,
                    arch: attr(s, "arch").unwrap_or_default(),
                });
            }
        }
    }
    Ok(plan)
}
