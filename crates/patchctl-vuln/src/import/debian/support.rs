//! The `security-support-ended.debN` lists of package `debian-security-support`: one
//! `EndOfLife` record per package (see the module docs of `debian`).

use std::collections::BTreeMap;

use patchctl_version::Scheme;

use super::{EntryError, affected, note, record, rejected, summary};
use crate::{Parsed, Record, Status};

/// The Debian release number `N` of a `security-support-ended.debN` file name (a path
/// is allowed).
fn support_release(file_name: &str) -> Option<&str> {
    let base = file_name.rsplit(['/', '\\']).next().unwrap_or(file_name);
    let n = base.strip_prefix("security-support-ended.deb")?;
    (!n.is_empty() && n.len() <= 3 && n.bytes().all(|b| b.is_ascii_digit())).then_some(n)
}

/// Whether `file_name` is a `security-support-ended.debN` list.
pub fn looks_like_security_support(file_name: &str) -> bool {
    support_release(file_name).is_some()
}

/// The first whitespace-separated word of `s` and the rest (trimmed).
fn word(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    let end = s.find(char::is_whitespace).unwrap_or(s.len());
    (&s[..end], s[end..].trim())
}

/// Whether `s` is a `YYYY-mm-dd` date.
fn is_date(s: &str) -> bool {
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok() && s.len() == 10
}

/// Whether `s` is a Debian source package name (Policy §5.6.1).
fn is_source_name(s: &str) -> bool {
    s.len() >= 2
        && s.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-.".contains(&b))
}

/// Parses a `security-support-ended.debN` list: one `EndOfLife` record
/// `DEBIAN-EOL-N-pkg` per package, for versions up to the listed one (every version
/// when it is `0`). Lines are `package version date [details]`; `#` starts a comment.
/// A package given as a pattern (`node-.*`) is rejected: records name exact packages.
pub fn parse_security_support(file_name: &str, text: &str) -> Parsed {
    let mut parsed = Parsed::default();
    let Some(n) = support_release(file_name) else {
        parsed.rejected.push(rejected(
            file_name,
            "not a security-support-ended.debN file: the release number N is needed",
        ));
        return parsed;
    };
    let ecosystem = format!("Debian:{n}");
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (index, line) in text.lines().enumerate() {
        let line_no = index + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (package, rest) = word(line);
        let id = format!("DEBIAN-EOL-{n}-{package}");
        match support_line(&ecosystem, n, package, rest) {
            Err(reason) => parsed.rejected.push(rejected(
                id,
                format!("{file_name} line {line_no}: {reason}"),
            )),
            Ok(record) => match seen.insert(id.clone(), line_no) {
                Some(first) => parsed.rejected.push(rejected(
                    id,
                    format!("{file_name} line {line_no}: {package} already listed on line {first}"),
                )),
                None => parsed.records.push(record),
            },
        }
    }
    parsed.records.sort_by(|a, b| a.id.cmp(&b.id));
    parsed
}

/// One line of a `security-support-ended.debN` list after the package name.
fn support_line(ecosystem: &str, n: &str, package: &str, rest: &str) -> Result<Record, EntryError> {
    if !is_source_name(package) {
        return Err(EntryError::NotSourceName(package.to_owned()));
    }
    let (version, rest) = word(rest);
    if version.is_empty() {
        return Err(EntryError::NoVersionColumn.of_package(package));
    }
    let (date, details) = match word(rest) {
        (d, details) if is_date(d) => (Some(d), details),
        _ => (None, rest),
    };
    let last_affected = match version {
        "0" => None,
        v => {
            Scheme::Dpkg
                .parse_check(v)
                .map_err(|e| EntryError::Version(Box::new(e)).of_package(package))?;
            Some(v.to_owned())
        }
    };
    let details = (!details.is_empty()).then_some(details);
    let mut a = affected(ecosystem.to_owned(), package, Status::EndOfLife);
    a.last_affected = last_affected;
    a.note = note(
        Some(&match date {
            Some(d) => format!("security support ended {d}"),
            None => "security support ended".to_owned(),
        }),
        details,
    );
    let mut text = format!("security support for {package} ended in Debian {n}");
    if let Some(d) = details {
        text = format!("{text}: {d}");
    }
    let mut record = record(
        format!("DEBIAN-EOL-{n}-{package}"),
        [],
        summary(&text),
        false,
        vec![a],
    )
    .ok_or(EntryError::NoStatement)?;
    record.published = date.map(|d| format!("{d}T00:00:00Z"));
    Ok(record)
}
