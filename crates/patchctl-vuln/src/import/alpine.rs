//! Alpine secdb (<https://secdb.alpinelinux.org/>), JSON or YAML: one document per
//! branch and repository (`distroversion: v3.11`, `reponame: main`), `packages[]` of
//! `pkg: {name, secfixes: {version: [ids]}}`, keyed by the **origin** (source) package.
//!
//! Every vulnerability id becomes one [`Record`] of the feed [`FEED`], whatever number
//! of documents mention it ([`SecDb`] collects them): one [`Affected`] per
//! `(ecosystem, package, version)` where the ecosystem is `Alpine:` + `distroversion`.
//! Version `"0"` → [`Status::NotAffected`] (Alpine's "never affected"); any other →
//! [`Status::Fixed`], which must pass apk's version check. A package that lists one id
//! under several versions (a fix on two upstream lines, `2.2.10-r0` and `2.4.2-r0`)
//! keeps each as its own entry.
//!
//! Id strings are free text in the real data. Each string is read up to its first `(`
//! (the rest, `CVE-2018-14467 (BGP)`, becomes the note); its whitespace-separated
//! tokens are ids when they look like one: `CVE-YYYY-N…` (also written `CVE_` or
//! `CVE YYYY-N…`; trailing junk such as `-1` or `.patch` is cut) or any other
//! `LETTERS-…` id (`XSA-207`, `TALOS-2017-0394`, `wnpa-sec-2017-18`). The CVE ids of a
//! string are its records and its other ids their aliases (`CVE-2017-8904 XSA-214`);
//! a string without a CVE id makes records of its other ids; placeholders such as
//! `CVE-????-?????` are not ids. A string with no id at all is reported as
//! [`Rejected`].
//!
//! Strictness: a document without a string `distroversion` and a `packages` list is
//! rejected whole; a package entry without a name, or whose `secfixes` is not a map, is
//! rejected; a version apk rejects (the 2020 data has `6.6.2p1-r0`, `2.7.16-33`,
//! `4.10-1-r1`) or whose ids are not a list of strings is rejected with all its ids
//! (id `Alpine:v3.11/name`, the version in the reason), and the package's other
//! versions and the rest of the document are imported.

use std::collections::BTreeMap;

use patchctl_version::{Scheme, VersionError};
use serde_json::Value;

use super::{bare_record, one_line};
use crate::{Affected, Parsed, Record, Rejected, Status};

/// Feed name of Alpine's secdb.
pub const FEED: &str = "alpine-secdb";

/// Whether `v` is a secdb document: an object with `distroversion` and `packages`.
pub fn looks_like(v: &Value) -> bool {
    v.get("distroversion").is_some() && v.get("packages").is_some()
}

/// Collects secdb documents into one record per vulnerability id.
#[derive(Default)]
pub struct SecDb {
    records: BTreeMap<String, Record>,
    rejected: Vec<Rejected>,
}

impl SecDb {
    /// Adds one secdb document; `origin` names it in rejections.
    pub fn add(&mut self, origin: &str, v: &Value) {
        let distro = v.get("distroversion").and_then(Value::as_str);
        let (Some(distro), Some(packages)) = (distro, v.get("packages")) else {
            let reason = "a secdb document needs a string 'distroversion' and a 'packages' list";
            return self.reject(origin, reason.into());
        };
        if distro.is_empty() {
            return self.reject(origin, "'distroversion' is empty".into());
        }
        let ecosystem = format!("Alpine:{distro}");
        // An empty `packages:` is YAML null: a branch without fixes.
        let packages = match packages {
            Value::Array(packages) => packages.as_slice(),
            Value::Null => &[],
            _ => return self.reject(origin, "'packages' is not a list".into()),
        };
        for (i, package) in packages.iter().enumerate() {
            let pkg = package.get("pkg");
            let Some(name) = pkg.and_then(|p| p.get("name")).and_then(Value::as_str) else {
                self.reject(
                    &format!("{origin}: packages[{i}]"),
                    "package entry without 'pkg.name'".into(),
                );
                continue;
            };
            let id = format!("{ecosystem}/{name}");
            for fix in fixes(pkg.and_then(|p| p.get("secfixes"))) {
                match fix.and_then(|fix| self.insert(&ecosystem, name, fix)) {
                    Ok(()) => {}
                    Err(reason) => self.reject(&id, format!("{reason} (in {origin})")),
                }
            }
        }
    }

    /// The records and the rejections.
    pub fn finish(self) -> Parsed {
        let records = self
            .records
            .into_values()
            .map(|mut r| {
                r.affected.sort_by_cached_key(|a| {
                    let fixed = a.status.fixed_version().map(str::to_string);
                    (
                        a.ecosystem.clone(),
                        a.package.clone(),
                        fixed,
                        a.note.clone(),
                    )
                });
                r.affected.dedup();
                r.normalize();
                r
            })
            .collect();
        Parsed {
            records,
            rejected: self.rejected,
        }
    }

    fn reject(&mut self, id: &str, reason: String) {
        self.rejected.push(Rejected {
            id: id.to_string(),
            reason,
        });
    }

    /// Files one secfix under each of its ids.
    fn insert(&mut self, ecosystem: &str, package: &str, fix: Fix) -> Result<(), SecfixError> {
        let ids = parse_ids(&fix.ids).ok_or_else(|| SecfixError::NoId {
            ids: fix.ids.clone(),
            version: fix.version.clone(),
        })?;
        let status = match fix.version.as_str() {
            "0" => Status::NotAffected,
            _ => Status::Fixed {
                fixed_version: fix.version,
            },
        };
        for id in &ids.records {
            let record = self
                .records
                .entry(id.clone())
                .or_insert_with(|| bare_record(id.clone(), None));
            record.aliases.extend(ids.aliases.iter().cloned());
            record.affected.push(Affected {
                ecosystem: ecosystem.to_string(),
                package: package.to_string(),
                introduced: None,
                last_affected: None,
                status: status.clone(),
                note: ids.note.clone(),
                severity: None,
            });
        }
        Ok(())
    }
}

/// What is wrong with one package's `secfixes` (the reason of a rejection).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum SecfixError {
    /// `secfixes` is not a map.
    #[error("'secfixes' is not a map of version to ids")]
    NotAMap,
    /// A version key that is not an apk version.
    #[error("secfix version '{version}' is not a valid apk version: {error}")]
    BadVersion {
        version: String,
        error: VersionError,
    },
    /// The ids under a version are not a list.
    #[error("the ids of version '{0}' are not a list")]
    IdsNotAList(String),
    /// An id under a version that is not a string.
    #[error("a secfix of version '{version}' is not a string: {value}")]
    NotAString { version: String, value: String },
    /// A secfix string that names no vulnerability id.
    #[error("no vulnerability id in '{ids}' (version {version})")]
    NoId { ids: String, version: String },
}

/// One `version: id string` pair of `secfixes`.
struct Fix {
    version: String,
    ids: String,
}

/// The `secfixes` map, checked: each id string under a valid apk version (or `"0"`), or
/// what is wrong with a version or the map.
fn fixes(secfixes: Option<&Value>) -> Vec<Result<Fix, SecfixError>> {
    let map = match secfixes {
        None | Some(Value::Null) => return Vec::new(),
        Some(Value::Object(map)) => map,
        Some(_) => return vec![Err(SecfixError::NotAMap)],
    };
    let mut out = Vec::new();
    for (version, ids) in map {
        let checked = match version.as_str() {
            "0" => Ok(()),
            _ => Scheme::Apk
                .parse_check(version)
                .map_err(|error| SecfixError::BadVersion {
                    version: version.clone(),
                    error,
                }),
        };
        let ids = match (checked, ids) {
            (Err(e), _) => {
                out.push(Err(e));
                continue;
            }
            (Ok(()), Value::Array(ids)) => ids.as_slice(),
            // `7.4.0-r0:` with nothing under it is YAML null: no ids.
            (Ok(()), Value::Null) => &[],
            (Ok(()), _) => {
                out.push(Err(SecfixError::IdsNotAList(version.clone())));
                continue;
            }
        };
        out.extend(ids.iter().map(|id| match id.as_str() {
            Some(ids) => Ok(Fix {
                version: version.clone(),
                ids: ids.to_string(),
            }),
            None => Err(SecfixError::NotAString {
                version: version.clone(),
                value: one_line(&id.to_string()),
            }),
        }));
    }
    out
}

/// The ids of one secfix string.
#[derive(Debug, PartialEq)]
struct Ids {
    records: Vec<String>,
    aliases: Vec<String>,
    note: Option<String>,
}

/// Reads one secfix string (see the module docs); `None` when it names no id.
fn parse_ids(text: &str) -> Option<Ids> {
    let (ids, note) = match text.split_once('(') {
        Some((ids, rest)) => {
            let note = rest.trim().trim_end_matches(')').trim();
            (ids, (!note.is_empty()).then(|| note.to_string()))
        }
        None => (text, None),
    };
    let ids = ids.replace("CVE_", "CVE-").replace("CVE ", "CVE-");
    let (mut cves, mut others) = (Vec::new(), Vec::new());
    for token in ids.split_whitespace() {
        if let Some(cve) = cve_id(token) {
            cves.push(cve);
        } else if !token.starts_with("CVE") && is_other_id(token) {
            others.push(token.to_string());
        }
    }
    match (cves.is_empty(), others.is_empty()) {
        (true, true) => None,
        (true, false) => Some(Ids {
            records: others,
            aliases: Vec::new(),
            note,
        }),
        (false, _) => Some(Ids {
            records: cves,
            aliases: others,
            note,
        }),
    }
}

/// `CVE-YYYY-NNNN…` at the start of `token`, without what follows it.
fn cve_id(token: &str) -> Option<String> {
    let rest = token.strip_prefix("CVE-")?;
    let year = rest
        .get(..4)
        .filter(|y| y.bytes().all(|c| c.is_ascii_digit()))?;
    let number = rest.get(4..)?.strip_prefix('-')?;
    let digits = number.bytes().take_while(u8::is_ascii_digit).count();
    (digits >= 4).then(|| format!("CVE-{year}-{}", &number[..digits]))
}

/// `XSA-207`, `TALOS-2017-0394`, `wnpa-sec-2017-18`: starts with a letter, has a `-`,
/// and is only ASCII letters, digits and `-`.
fn is_other_id(token: &str) -> bool {
    token.starts_with(|c: char| c.is_ascii_alphabetic())
        && token.contains('-')
        && !token.ends_with('-')
        && token.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(records: &[&str], aliases: &[&str], note: Option<&str>) -> Option<Ids> {
        let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        Some(Ids {
            records: owned(records),
            aliases: owned(aliases),
            note: note.map(str::to_string),
        })
    }

    #[test]
    fn free_text_ids() {
        let cases = [
            (
                "CVE-2019-1234 CVE-2019-1235",
                ids(&["CVE-2019-1234", "CVE-2019-1235"], &[], None),
            ),
            (
                "CVE-2017-8904 XSA-214",
                ids(&["CVE-2017-8904"], &["XSA-214"], None),
            ),
            ("XSA-207", ids(&["XSA-207"], &[], None)),
            ("CVE-????-?????  XSA-284", ids(&["XSA-284"], &[], None)),
            (
                "CVE-2018-14467 (BGP)",
                ids(&["CVE-2018-14467"], &[], Some("BGP")),
            ),
            ("CVE_2019-2426", ids(&["CVE-2019-2426"], &[], None)),
            ("CVE 2018-16859", ids(&["CVE-2018-16859"], &[], None)),
            ("CVE-2017-8073.patch", ids(&["CVE-2017-8073"], &[], None)),
            ("CVE-2017-17434-1", ids(&["CVE-2017-17434"], &[], None)),
            ("wnpa-sec-2017-18", ids(&["wnpa-sec-2017-18"], &[], None)),
            ("CVE-????-?????", None),
            ("- (see above)", None),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_ids(text), expected, "{text}");
        }
    }
}
