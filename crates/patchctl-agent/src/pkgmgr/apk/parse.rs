//! Parsers of what apk prints: versions and `NAME-VERSION` words, `list --upgradable`,
//! `policy`, the steps of `add --simulate` and the reason in an error. Pure: text in,
//! values out, no input makes them panic.

use std::cmp::Ordering;

use patchctl_proto::command::AvailableUpdate;

use crate::pkgmgr::{Change, Transaction, Updates};

use super::*;

/// True when `v` is a version as apk writes it: starts with a digit and follows
/// apk-tools' version grammar (`1.2.3`, `1.2a`, `1.0_rc1_p2`, `2.0~a1b2-r3`, `-rN`
/// last). A port of apk-tools' tokenizer (`src/version.c`), used to split
/// `NAME-VERSION` strings; comparisons are [`Family::compare`]'s business.
pub fn valid_version(v: &str) -> bool {
    #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
    enum T {
        DigitOrZero,
        Digit,
        Letter,
        Suffix,
        SuffixNo,
        CommitHash,
        RevisionNo,
    }
    const SUFFIXES: [&str; 9] = ["alpha", "beta", "pre", "rc", "cvs", "svn", "git", "hg", "p"];
    let b = v.as_bytes();
    if !b.first().is_some_and(u8::is_ascii_digit) {
        return false;
    }
    let mut i = 0;
    let mut t = T::Digit;
    loop {
        // The token's value.
        match t {
            T::DigitOrZero | T::Digit | T::SuffixNo | T::RevisionNo => {
                let start = i;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
                // Stricter than apk, which reads an empty number as 0: `1..2`,
                // `1.` and `1-r` are refused.
                if t != T::SuffixNo && i == start {
                    return false;
                }
            }
            T::Letter => i += 1,
            T::Suffix => {
                let Some(s) = SUFFIXES.iter().find(|s| b[i..].starts_with(s.as_bytes())) else {
                    return false;
                };
                i += s.len();
                if i == b.len() {
                    return true;
                }
                t = T::SuffixNo;
                continue;
            }
            T::CommitHash => {
                let start = i;
                while i < b.len() && b[i].is_ascii_hexdigit() {
                    i += 1;
                }
                if i == start {
                    return false;
                }
            }
        }
        if i >= b.len() {
            return true;
        }
        // The next token's type, from its first byte.
        let c = b[i];
        let n = if matches!(t, T::Digit | T::DigitOrZero) && c.is_ascii_lowercase() {
            T::Letter
        } else if t == T::Letter && c.is_ascii_digit() {
            T::Digit
        } else if t == T::Suffix && c.is_ascii_digit() {
            T::SuffixNo
        } else {
            i += 1;
            match c {
                b'.' => T::DigitOrZero,
                b'_' => T::Suffix,
                b'~' => T::CommitHash,
                b'-' if b.get(i) == Some(&b'r') => {
                    i += 1;
                    T::RevisionNo
                }
                _ => return false,
            }
        };
        let allowed_back = (n == T::DigitOrZero && t == T::Digit)
            || (n == T::Suffix && t == T::SuffixNo)
            || (n == T::Digit && t == T::Letter);
        if n < t && !allowed_back {
            return false;
        }
        // One revision and one commit hash at most.
        if n == t && matches!(t, T::RevisionNo | T::CommitHash) {
            return false;
        }
        t = n;
    }
}

/// Splits apk's `NAME-VERSION` (`libcrypto3-3.3.2-r0`) the way apk-tools does: the
/// version starts after the last `-` that is followed by a digit, stepping over at
/// most one other `-` (the one of `-rN`). `None` when there is no such `-`, the name
/// is empty or the rest is not a valid version ([`valid_version`]).
pub fn split_pkgver(s: &str) -> Option<(&str, &str)> {
    let b = s.as_bytes();
    let mut dashes = 0;
    let mut i = b.len().checked_sub(2)?;
    loop {
        if b[i] == b'-' {
            if b[i + 1].is_ascii_digit() {
                break;
            }
            dashes += 1;
            if dashes >= 2 {
                return None;
            }
        }
        i = i.checked_sub(1)?;
    }
    let (name, version) = (&s[..i], &s[i + 1..]);
    (!name.is_empty() && valid_version(version)).then_some((name, version))
}

/// One line of `apk list --upgradable`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Package name.
    pub name: String,
    /// The available version.
    pub version: String,
    /// Architecture.
    pub arch: String,
    /// The origin (source package).
    pub origin: String,
    /// The license, as the index states it.
    pub license: String,
    /// The installed version it would replace.
    pub from: String,
}

/// What `apk list --upgradable` said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Upgradable {
    /// The lines read, in output order (a package may appear more than once when
    /// several repositories carry newer versions).
    pub listed: Vec<Listed>,
    /// Lines that could not be read, with why.
    pub skipped: Vec<String>,
}

/// Parses `apk list --upgradable`:
/// `NAME-VERSION ARCH {ORIGIN} (LICENSE) [upgradable from: NAME-OLDVERSION]`.
/// Never panics.
pub fn parse_upgradable(output: &str) -> Upgradable {
    let mut out = Upgradable::default();
    for line in output.lines() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        match parse_listed(line) {
            Ok(l) => out.listed.push(l),
            Err(why) => out.skipped.push(format!(
                "{why}: {:?}",
                crate::text::truncate(line, MAX_QUOTE)
            )),
        }
    }
    out
}

fn parse_listed(line: &str) -> Result<Listed, &'static str> {
    let (pkgver, rest) = line.split_once(' ').ok_or("not an apk list line")?;
    let (name, version) = split_pkgver(pkgver).ok_or("unreadable NAME-VERSION")?;
    let (arch, rest) = rest.split_once(' ').ok_or("no architecture")?;
    let rest = rest.strip_prefix('{').ok_or("no {origin}")?;
    let (origin, rest) = rest.split_once("} (").ok_or("no {origin} (license)")?;
    const FROM: &str = ") [upgradable from: ";
    let at = rest.rfind(FROM).ok_or("no [upgradable from: ...]")?;
    let license = &rest[..at];
    let from = rest[at + FROM.len()..]
        .strip_suffix(']')
        .ok_or("no closing ]")?;
    let from = match from.strip_prefix(name).and_then(|f| f.strip_prefix('-')) {
        Some(v) if valid_version(v) => v,
        _ => return Err("the installed NAME-VERSION names another package"),
    };
    if arch.is_empty() || origin.is_empty() || origin.contains(char::is_whitespace) {
        return Err("empty architecture or unreadable origin");
    }
    Ok(Listed {
        name: name.to_owned(),
        version: version.to_owned(),
        arch: arch.to_owned(),
        origin: origin.to_owned(),
        license: license.to_owned(),
        from: from.to_owned(),
    })
}

impl Upgradable {
    /// One update per package: the highest listed version by `cmp` when a package is
    /// listed more than once. When `cmp` cannot order two versions, the first listed
    /// is kept and the choice recorded in `skipped`. Alpine carries no security flag,
    /// so `security` is false and `advisories` and `origins` are empty.
    pub fn updates(&self, cmp: impl Fn(&str, &str) -> Option<Ordering>) -> Updates {
        let mut updates: Vec<AvailableUpdate> = Vec::new();
        let mut skipped = self.skipped.clone();
        for l in &self.listed {
            if let Some(u) = updates.iter_mut().find(|u| u.name == l.name) {
                match cmp(&l.version, &u.candidate_version) {
                    Some(Ordering::Greater) => u.candidate_version = l.version.clone(),
                    Some(_) => {}
                    None => skipped.push(format!(
                        "{} is listed with several versions and they cannot be compared; kept {}, not {}",
                        l.name, u.candidate_version, l.version
                    )),
                }
                continue;
            }
            updates.push(AvailableUpdate {
                name: l.name.clone(),
                arch: l.arch.clone(),
                current_version: Some(l.from.clone()),
                candidate_version: l.version.clone(),
                origins: Vec::new(),
                security: false,
                advisories: Vec::new(),
            });
        }
        Updates {
            updates,
            removals: Vec::new(),
            skipped,
        }
    }
}

/// One version of a package as `apk policy` lists it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyVersion {
    /// The version.
    pub version: String,
    /// True when this version is the installed one.
    pub installed: bool,
    /// Repositories carrying it: `URL` for untagged repositories, `@TAG URL` for
    /// tagged (pinned) ones.
    pub repos: Vec<String>,
}

impl PolicyVersion {
    /// True when an untagged repository carries it: only those are candidates for
    /// a package that was not installed from a tag.
    pub fn untagged(&self) -> bool {
        self.repos.iter().any(|r| !r.starts_with('@'))
    }
}

/// What `apk policy NAME` said of one package.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// Every version listed, in output order.
    pub versions: Vec<PolicyVersion>,
    /// Lines that could not be read, with why.
    pub skipped: Vec<String>,
}

/// The line apk prints under the installed version (`lib/apk/db` + `/installed`).
const INSTALLED_MARK: &str = "lib/apk/db/installed";

/// Parses `apk policy` output for `name`:
///
/// ```text
/// openssl policy:
///   3.3.1-r3:
///     lib/apk/db/installed
///   3.3.2-r0:
///     https://mirror.example/alpine/v3.20/main
///   3.4.0-r1:
///     @edge https://mirror.example/alpine/edge/main
/// ```
///
/// Blocks of other names are ignored. Never panics.
pub fn parse_policy(output: &str, name: &str) -> Policy {
    let mut p = Policy::default();
    let mut mine = false;
    for line in output.lines() {
        let line = line.trim_end_matches(['\r', ' ']);
        if line.is_empty() {
            continue;
        }
        if let Some(n) = line.strip_suffix(" policy:") {
            if !n.starts_with(' ') {
                mine = n == name;
                continue;
            }
        }
        if !mine {
            continue;
        }
        if let Some(entry) = line.strip_prefix("    ") {
            let entry = entry.trim();
            match p.versions.last_mut() {
                Some(v) if entry == INSTALLED_MARK => v.installed = true,
                Some(v) if !entry.is_empty() && !entry.contains(char::is_control) => {
                    v.repos.push(entry.to_owned())
                }
                _ => p.skipped.push(format!(
                    "a repository before any version: {:?}",
                    crate::text::truncate(line, MAX_QUOTE)
                )),
            }
        } else if let Some(v) = line
            .strip_prefix("  ")
            .and_then(|v| v.strip_suffix(':'))
            .filter(|v| !v.starts_with(' ') && valid_version(v))
        {
            p.versions.push(PolicyVersion {
                version: v.to_owned(),
                ..PolicyVersion::default()
            });
        } else {
            p.skipped.push(format!(
                "unreadable line: {:?}",
                crate::text::truncate(line, MAX_QUOTE)
            ));
        }
    }
    p
}

impl Policy {
    /// The installed version, if any.
    pub fn installed(&self) -> Option<&str> {
        self.versions
            .iter()
            .find(|v| v.installed)
            .map(|v| v.version.as_str())
    }

    /// The version apk would pick for an untagged package: the highest by `cmp` of
    /// the installed version and the versions an untagged repository carries. When
    /// `cmp` cannot order them, the answer is known only if there is one such version.
    pub fn candidate(
        &self,
        cmp: impl Fn(&str, &str) -> Option<Ordering>,
    ) -> Option<&PolicyVersion> {
        let mut eligible = self.versions.iter().filter(|v| v.installed || v.untagged());
        let mut best = eligible.next()?;
        for v in eligible {
            match cmp(&v.version, &best.version) {
                Some(Ordering::Greater) => best = v,
                Some(_) => {}
                None => return None,
            }
        }
        Some(best)
    }
}

/// What a simulated (or real) `apk add` would do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Simulation {
    /// Every package the transaction touches; a `@tag` after a name is dropped.
    pub changes: Vec<Change>,
    /// Lines that looked like steps but could not be read, with why.
    pub skipped: Vec<String>,
}

impl Simulation {
    /// The simulation as a transaction for the install gate ([`crate::pkgmgr::refusals`]).
    pub fn transaction(&self) -> Transaction {
        Transaction {
            changes: self.changes.clone(),
            skipped: self.skipped.clone(),
        }
    }
}

/// Parses the steps apk prints for a transaction (`src/commit.c`):
///
/// ```text
/// (1/3) Upgrading libcrypto3 (3.3.1-r3 -> 3.3.2-r0)
/// (2/3) Installing foo (1.0-r0)
/// (3/3) Purging bar (2.0-r1)
/// ```
///
/// plus `Downgrading`, `Replacing` (same version, another build), `Re-installing`,
/// `[APK unavailable, skipped] Re-installing` and `Updating pinning`. Other lines
/// (`OK: ...`, `Executing ...`, warnings) are ignored; a `(i/n)` line that cannot be
/// read goes to `skipped`. Never panics.
pub fn parse_simulation(output: &str) -> Simulation {
    let mut sim = Simulation::default();
    for line in output.lines() {
        let line = line.trim_end_matches(['\r', ' ']);
        let Some(rest) = step(line) else {
            continue;
        };
        match parse_step(rest) {
            Some(c) => sim.changes.push(c),
            None => sim.skipped.push(format!(
                "unreadable step: {:?}",
                crate::text::truncate(line, MAX_QUOTE)
            )),
        }
    }
    sim
}

/// The text after a `(i/n) ` counter.
fn step(line: &str) -> Option<&str> {
    let inner = line.strip_prefix('(')?;
    let (count, rest) = inner.split_once(") ")?;
    let (i, n) = count.split_once('/')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (digits(i) && digits(n)).then_some(rest)
}

fn parse_step(rest: &str) -> Option<Change> {
    const ACTIONS: [&str; 8] = [
        "[APK unavailable, skipped] Re-installing ",
        "Updating pinning ",
        "Re-installing ",
        "Installing ",
        "Purging ",
        "Upgrading ",
        "Downgrading ",
        "Replacing ",
    ];
    let (action, rest) = ACTIONS
        .iter()
        .find_map(|a| rest.strip_prefix(a).map(|r| (a.trim(), r)))?;
    let (name, versions) = rest.split_once(" (")?;
    let versions = versions.strip_suffix(')')?;
    // `name@tag` when the package comes from a tagged repository.
    let name = name.split_once('@').map_or(name, |(n, _)| n);
    if name.is_empty() || name.contains(char::is_whitespace) {
        return None;
    }
    let word = |v: &str| (!v.is_empty() && !v.contains(char::is_whitespace)).then(|| v.to_owned());
    let (from, to) = match action {
        "Installing" => (None, Some(word(versions)?)),
        "Purging" => (Some(word(versions)?), None),
        "Upgrading" | "Downgrading" | "Replacing" => {
            let (a, b) = versions.split_once(" -> ")?;
            (Some(word(a)?), Some(word(b)?))
        }
        _ => {
            let v = word(versions)?;
            (Some(v.clone()), Some(v))
        }
    };
    Some(Change {
        name: name.to_owned(),
        from,
        to,
    })
}

/// apk's own words for why it cannot do something: every `ERROR:` line of its output
/// with the indented lines that follow it, joined on one line (`unable to select
/// packages: openssl-3.3.1-r3: breaks: world[openssl=3.9.9-r0]`). Falls back to the
/// tail of stderr when there is no `ERROR:` line.
pub fn error_reason(stdout: &str, stderr: &str) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut in_error = false;
    for line in stderr.lines().chain(stdout.lines()) {
        let line = line.trim_end();
        if let Some(e) = line.strip_prefix("ERROR: ") {
            in_error = true;
            parts.push(e.trim().to_owned());
        } else if in_error && line.starts_with(' ') && !line.trim().is_empty() {
            if let Some(last) = parts.last_mut() {
                last.push(' ');
                last.push_str(line.trim());
            }
        } else {
            in_error = false;
        }
    }
    let reason = if parts.is_empty() {
        crate::text::tail(stderr, 500).to_owned()
    } else {
        parts.join("; ")
    };
    crate::text::truncate(&reason, 1000).to_owned()
}
