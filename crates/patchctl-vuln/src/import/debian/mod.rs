//! The Debian Security Tracker's data, in the three shapes it is published in.
//!
//! * **Tracker JSON** (`/tracker/data/json`, and the osv.dev test mock of it):
//!   `{source: {CVE-id: {description, scope, debianbug, releases: {codename: {status,
//!   fixed_version, urgency, nodsa, nodsa_reason, repositories}}}}}` →
//!   [`parse_tracker_json`]. One [`Record`] per issue id (the entries of every source
//!   package merged), one [`Affected`] per `(release, source package)`.
//! * **vuln-list-debian records** (`CVE/*.json`, `DSA/*.json`, `DLA/*.json`: the
//!   tracker's `data/*/list` files, one JSON record per entry, each annotation line
//!   parsed) → [`VulnList`], which needs every record before it can resolve them.
//! * **`security-support-ended.debN`** (package `debian-security-support`) →
//!   [`parse_security_support`]. `security-support-limited` is not imported: its lines
//!   carry no version and no end, only "supported with restrictions", which is none of
//!   the statuses; `security-support-ended` without `.debN` is not imported either, since
//!   it does not say which release it is about.
//!
//! Invariants of everything this module produces:
//!
//! * Packages are **source** packages; ecosystems are `Debian:N` from the codename
//!   ([`debian_ecosystem`](crate::ecosystem::debian_ecosystem)). `sid` and codenames PatchCTL has no number for are skipped
//!   silently: they are no release a host runs (tracker JSON entries for them are not
//!   even checked; list lines for them are, being part of the same entry).
//! * Every `Fixed` version and every `last_affected` passed dpkg's `parse_check`; a
//!   record with one that does not is rejected as a whole (named by its id, with the
//!   package), never imported in part.
//! * Severity is the tracker's urgency word without its `*` marks (`high**` → `high`);
//!   `not yet assigned` is no severity.
//! * A record without any statement for a Debian release is not emitted (a CVE that is
//!   `NOT-FOR-US`, or whose only lines are for `sid` or `<removed>`/`<itp>`).
//! * Output is deterministic: records sorted by id, `affected` by `(ecosystem,
//!   package)`, every record [normalized](Record::normalize).
//!
//! Status mapping (tracker JSON / list line → [`Status`], the tracker's words kept in
//! [`Affected::note`]):
//!
//! | tracker JSON | list line | status |
//! |---|---|---|
//! | `resolved`, `fixed_version` `0` | `<not-affected>` | `NotAffected` |
//! | `resolved`, `fixed_version` V | `- pkg V` | `Fixed { V }` |
//! | `open` | `<unfixed>` | `AffectedNoFix` |
//! | `open`, `nodsa_reason` `postponed` / empty | `<postponed>`, `<no-dsa>` | `AffectedNoFix` (note says so) |
//! | `open`, `nodsa_reason` `ignored` | `<ignored>` | `WillNotFix` |
//! | `open`, urgency `end-of-life` | `<end-of-life>` | `EndOfLife` |
//! | `undetermined` | `<undetermined>` | `UnderInvestigation` |
//! | — | `<removed>`, `<itp>` | no statement |
//!
//! **Inheritance (list records).** In the tracker's list files the line without a
//! release is about unstable, and a release without a line of its own is compared with
//! unstable's statement. So the unstable statement of a package is *inherited* by every
//! release from buster to forky ([`INHERITING`]) without a line for that package, with a
//! note that says so. A DSA/DLA that fixes the package in a release and names the CVE
//! replaces an inherited statement with its fixed version (an explicit line of the CVE
//! always wins), and its id becomes an alias of the CVE. DSA/DLA records are never
//! emitted themselves: each fix would otherwise be reported twice.
//!
//! Layout: this file holds the helpers the three shapes share and [`EntryError`], the
//! reason a record or entry is rejected; `tracker` parses the tracker JSON, `list` the
//! vuln-list records, `support` the `security-support-ended.debN` lists.

mod list;
mod support;
mod tracker;

use patchctl_version::{Scheme, VersionError};
use serde_json::{Map, Value};

use crate::{Affected, Record, Rejected, Status};

pub use list::{VulnList, looks_like_vuln_list};
pub use support::{looks_like_security_support, parse_security_support};
pub use tracker::{looks_like_tracker_json, parse_tracker_json};

/// The feed name these importers report.
pub const FEED: &str = "debian-tracker";

/// Releases that inherit unstable's statement when they have no line of their own.
pub const INHERITING: [&str; 5] = ["buster", "bullseye", "bookworm", "trixie", "forky"];

/// Longest summary, in characters.
const SUMMARY_CHARS: usize = 200;

/// What is wrong with one entry of the tracker's data: the reason of a rejection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum EntryError {
    /// A field that is neither absent, null nor a string.
    #[error("{key} is {kind}, not a string")]
    NotString { key: String, kind: &'static str },
    /// A field or value that is not an object.
    #[error("{what} is {kind}, not an object")]
    NotObject { what: String, kind: &'static str },
    /// An annotation that is not an object.
    #[error("is {0}, not an object")]
    AnnotationNotObject(&'static str),
    /// A version that is not a Debian version.
    #[error("{0}")]
    Version(Box<VersionError>),
    /// A `resolved` release entry without its fixed version.
    #[error("status resolved without fixed_version")]
    ResolvedWithoutFixed,
    /// A `nodsa_reason` the tracker does not define.
    #[error("unknown nodsa_reason {0:?}")]
    UnknownNodsaReason(String),
    /// A release status the tracker does not define.
    #[error("unknown status {0:?}")]
    UnknownStatus(String),
    /// A release entry without a status.
    #[error("no status")]
    NoStatus,
    /// What is wrong with one release of an entry.
    #[error("release {codename}: {error}")]
    InRelease {
        codename: String,
        error: Box<EntryError>,
    },
    /// What is wrong with one annotation of a list record.
    #[error("annotation {n}: {error}")]
    Annotation { n: usize, error: Box<EntryError> },
    /// A `package` annotation without a package.
    #[error("package line without Package")]
    NoPackage,
    /// What is wrong with one package's line.
    #[error("{package}: {error}")]
    OfPackage {
        package: String,
        error: Box<EntryError>,
    },
    /// A `package` annotation without a kind.
    #[error("no Kind")]
    NoKind,
    /// A `fixed` line without a version.
    #[error("Kind fixed without Version")]
    FixedWithoutVersion,
    /// A line kind the tracker does not define.
    #[error("unknown Kind {0:?}")]
    UnknownKind(String),
    /// Two lines of one record for one package and release.
    #[error("two lines for {package} in {release}")]
    TwoLines { package: String, release: String },
    /// A package column that is not a source package name.
    #[error(
        "{0:?} is not a source package name (a pattern is not imported: records name exact \
         packages)"
    )]
    NotSourceName(String),
    /// A support line without its version column.
    #[error("no version column")]
    NoVersionColumn,
    /// A support line that makes no statement.
    #[error("no statement")]
    NoStatement,
}

impl EntryError {
    /// This error, about `package`.
    fn of_package(self, package: &str) -> EntryError {
        EntryError::OfPackage {
            package: package.to_owned(),
            error: Box::new(self),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Shared helpers

/// A one-line summary: whitespace collapsed, at most [`SUMMARY_CHARS`] characters.
fn summary(text: &str) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(SUMMARY_CHARS) {
        Some((cut, _)) => line[..cut].to_owned(),
        None => line,
    }
}

/// `word: text`, either part optional.
fn note(word: Option<&str>, text: Option<&str>) -> Option<String> {
    let text = text.map(str::trim).filter(|t| !t.is_empty());
    match (word, text) {
        (Some(w), Some(t)) => Some(format!("{w}: {t}")),
        (Some(w), None) => Some(w.to_owned()),
        (None, t) => t.map(str::to_owned),
    }
}

/// The tracker's urgency as a severity word: `*` marks dropped, `not yet assigned` and
/// `end-of-life` (a status, not a severity) are none.
fn severity(urgency: Option<&str>) -> Option<String> {
    let word = urgency?.trim().trim_end_matches('*').trim();
    match word {
        "" | "not yet assigned" | "end-of-life" => None,
        w => Some(w.to_owned()),
    }
}

/// A `Fixed` status, when `version` is a well-formed Debian version.
fn fixed(version: &str) -> Result<Status, EntryError> {
    Scheme::Dpkg
        .parse_check(version)
        .map(|()| Status::Fixed {
            fixed_version: version.to_owned(),
        })
        .map_err(|e| EntryError::Version(Box::new(e)))
}

/// Field `key` of `obj` as a string: `None` when absent or null, an error when it is
/// something else.
fn opt_str<'a>(obj: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, EntryError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(EntryError::NotString {
            key: key.to_owned(),
            kind: kind_of(other),
        }),
    }
}

/// Field `key` of `obj` as an object: empty when absent, null or `[]` (how an empty
/// table is sometimes serialized), an error when it is something else.
fn opt_object<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
) -> Result<Option<&'a Map<String, Value>>, EntryError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(a)) if a.is_empty() => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m)),
        Some(other) => Err(EntryError::NotObject {
            what: key.to_owned(),
            kind: kind_of(other),
        }),
    }
}

/// The JSON type of `v`, for messages.
fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn rejected(id: impl Into<String>, reason: impl std::fmt::Display) -> Rejected {
    Rejected {
        id: id.into(),
        reason: reason.to_string(),
    }
}

/// A record from its parts; `None` when it has no statement.
fn record(
    id: String,
    aliases: impl IntoIterator<Item = String>,
    summary: String,
    withdrawn: bool,
    affected: Vec<Affected>,
) -> Option<Record> {
    if affected.is_empty() {
        return None;
    }
    let mut record = Record {
        id,
        aliases: aliases.into_iter().collect(),
        summary,
        severity: None,
        cvss_vector: None,
        published: None,
        modified: None,
        withdrawn,
        affected,
        exploited: None,
    };
    record.normalize();
    Some(record)
}

/// A statement about one package of one release.
fn affected(ecosystem: String, package: &str, status: Status) -> Affected {
    Affected {
        ecosystem,
        package: package.to_owned(),
        introduced: None,
        last_affected: None,
        status,
        note: None,
        severity: None,
    }
}
