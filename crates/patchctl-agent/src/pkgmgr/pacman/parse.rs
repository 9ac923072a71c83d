//! Parsers of what pacman prints (`-Qu`, `-Si`, `-S --print`) and the plan of a
//! transaction built from them: dependency matching and the installed packages an
//! upgrade would remove. Pure: text in, values out, no input makes them panic.

use crate::inventory::pacman::LocalPackage;
use crate::pkgmgr::{Change, Family, PkgError, Transaction};

/// The longest excerpt of a malformed line quoted in a skip reason.
const MAX_QUOTE: usize = 200;

fn unreadable(line: &str) -> String {
    format!(
        "unreadable line: {:?}",
        crate::text::truncate(line, MAX_QUOTE)
    )
}

/// One line of `pacman -Qu`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upgrade {
    /// Package name.
    pub name: String,
    /// Installed version.
    pub installed: String,
    /// Version in the sync database.
    pub available: String,
    /// True when the package is in `IgnorePkg`/`IgnoreGroup` (`[ignored]`).
    pub ignored: bool,
}

/// What `pacman -Qu` said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedUpgrades {
    /// The upgrades, in output order.
    pub upgrades: Vec<Upgrade>,
    /// Lines that could not be read, with why.
    pub skipped: Vec<String>,
}

/// Parses `pacman -Qu` output: `name installed -> available [ignored]`. Never panics.
pub fn parse_upgrades(output: &str) -> ParsedUpgrades {
    let mut out = ParsedUpgrades::default();
    for line in output.lines() {
        if line.trim().is_empty() {
            continue;
        }
        let w: Vec<&str> = line.split_whitespace().collect();
        let ignored = match w.get(4) {
            None => false,
            Some(&"[ignored]") if w.len() == 5 => true,
            Some(_) => {
                out.skipped.push(unreadable(line));
                continue;
            }
        };
        match w.as_slice() {
            [name, old, "->", new, ..] => out.upgrades.push(Upgrade {
                name: (*name).to_owned(),
                installed: (*old).to_owned(),
                available: (*new).to_owned(),
                ignored,
            }),
            _ => out.skipped.push(unreadable(line)),
        }
    }
    out
}

/// One package block of `pacman -Si`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncPackage {
    /// `Repository`.
    pub repo: String,
    /// `Name`.
    pub name: String,
    /// `Version`.
    pub version: String,
    /// `Architecture`.
    pub arch: String,
    /// `Provides`: `name` or `name=version`.
    pub provides: Vec<String>,
    /// `Depends On`.
    pub depends: Vec<String>,
    /// `Conflicts With`: dependency strings.
    pub conflicts: Vec<String>,
    /// `Replaces`: dependency strings.
    pub replaces: Vec<String>,
}

/// What `pacman -Si` said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedInfo {
    /// The package blocks, in output order (repositories in configuration order).
    pub packages: Vec<SyncPackage>,
    /// Blocks that could not be read, with why.
    pub skipped: Vec<String>,
}

/// Parses `pacman -Si` output: blocks of `Key : value` lines separated by empty
/// lines; a line starting with white space continues the previous value (pacman wraps
/// long lists on a terminal). List values are separated by white space; `None` is
/// an empty list. A block without `Repository`, `Name` or `Version`, with a line that
/// is no field, or with a field given twice is skipped. Never panics.
pub fn parse_info(output: &str) -> ParsedInfo {
    let mut out = ParsedInfo::default();
    let mut block: Vec<(String, String)> = Vec::new();
    let mut error: Option<String> = None;
    let mut first_line = 0;
    let lines: Vec<&str> = output.lines().collect();
    for (index, line) in lines.iter().chain(std::iter::once(&"")).enumerate() {
        if line.trim().is_empty() {
            if !block.is_empty() || error.is_some() {
                finish_block(
                    &mut out,
                    std::mem::take(&mut block),
                    error.take(),
                    first_line,
                );
            }
            continue;
        }
        if block.is_empty() && error.is_none() {
            first_line = index + 1;
        }
        if line.starts_with([' ', '\t']) {
            match block.last_mut() {
                Some((_, v)) => {
                    v.push(' ');
                    v.push_str(line.trim());
                }
                None => {
                    error.get_or_insert_with(|| {
                        format!("continuation without a field: {}", unreadable(line))
                    });
                }
            }
            continue;
        }
        match line.split_once(':') {
            Some((k, v)) if !k.trim().is_empty() => {
                let k = k.trim();
                if block.iter().any(|(key, _)| key == k) {
                    error.get_or_insert_with(|| format!("field {k:?} given twice"));
                }
                block.push((k.to_owned(), v.trim().to_owned()));
            }
            _ => {
                error.get_or_insert_with(|| unreadable(line));
            }
        }
    }
    out
}

fn finish_block(
    out: &mut ParsedInfo,
    block: Vec<(String, String)>,
    error: Option<String>,
    first_line: usize,
) {
    let built = match error {
        Some(why) => Err(PkgError::Unparsable(why)),
        None => build_block(&block),
    };
    match built {
        Ok(p) => out.packages.push(p),
        Err(why) => out
            .skipped
            .push(format!("package block at line {first_line}: {why}")),
    }
}

fn build_block(block: &[(String, String)]) -> Result<SyncPackage, PkgError> {
    let field = |k: &str| {
        block
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    let word = |k: &str| -> Result<String, PkgError> {
        match field(k) {
            None => Err(PkgError::Unparsable(format!("no {k}"))),
            Some(v) if v.is_empty() || v.contains(char::is_whitespace) => {
                Err(PkgError::Unparsable(format!(
                    "{k} {:?} is not one word",
                    crate::text::truncate(v, 60)
                )))
            }
            Some(v) => Ok(v.to_owned()),
        }
    };
    let list = |k: &str| -> Vec<String> {
        match field(k) {
            None | Some("None") => Vec::new(),
            Some(v) => v.split_whitespace().map(str::to_owned).collect(),
        }
    };
    Ok(SyncPackage {
        repo: word("Repository")?,
        name: word("Name")?,
        version: word("Version")?,
        arch: field("Architecture").unwrap_or("").to_owned(),
        provides: list("Provides"),
        depends: list("Depends On"),
        conflicts: list("Conflicts With"),
        replaces: list("Replaces"),
    })
}

/// One package of the install plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    /// Package name.
    pub name: String,
    /// The version pacman would install.
    pub version: String,
}

/// What `pacman -S --print --print-format '%n %v'` said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedPlan {
    /// Packages pacman would install or upgrade, dependencies first.
    pub packages: Vec<Planned>,
    /// Lines that could not be read, with why (a reason to refuse).
    pub skipped: Vec<String>,
}

/// Parses the output of [`print_argv`](super::print_argv): one `name version` line per package. Never
/// panics.
pub fn parse_plan(output: &str) -> ParsedPlan {
    let mut out = ParsedPlan::default();
    for line in output.lines() {
        let t = line.trim();
        if t.is_empty() || t == "there is nothing to do" {
            continue;
        }
        let w: Vec<&str> = t.split_whitespace().collect();
        match w.as_slice() {
            [name, version] => out.packages.push(Planned {
                name: (*name).to_owned(),
                version: (*version).to_owned(),
            }),
            _ => out.skipped.push(unreadable(line)),
        }
    }
    out
}

/// A version constraint of a dependency string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
}

/// `name[<|<=|=|>=|>version]`, pacman's dependency strings (a `: description`
/// suffix, as optional dependencies have, is ignored).
fn parse_dep(s: &str) -> (&str, Option<(Op, &str)>) {
    let s = s.split(": ").next().unwrap_or(s);
    let Some(i) = s.find(['<', '>', '=']) else {
        return (s, None);
    };
    let (name, rest) = s.split_at(i);
    let (op, version) = if let Some(v) = rest.strip_prefix("<=") {
        (Op::Le, v)
    } else if let Some(v) = rest.strip_prefix(">=") {
        (Op::Ge, v)
    } else if let Some(v) = rest.strip_prefix('<') {
        (Op::Lt, v)
    } else if let Some(v) = rest.strip_prefix('>') {
        (Op::Gt, v)
    } else {
        (Op::Eq, rest.trim_start_matches('='))
    };
    if version.is_empty() {
        (name, None)
    } else {
        (name, Some((op, version)))
    }
}

/// True when `version` satisfies the constraint; a comparison that cannot be made
/// counts as satisfied (a conflict is assumed rather than ruled out).
fn meets(version: &str, op: Op, wanted: &str) -> bool {
    use std::cmp::Ordering::*;
    match Family::Pacman.compare(version, wanted) {
        None => true,
        Some(o) => match op {
            Op::Lt => o == Less,
            Op::Le => o != Greater,
            Op::Eq => o == Equal,
            Op::Ge => o != Less,
            Op::Gt => o == Greater,
        },
    }
}

/// True when the dependency string `dep` names the package `name` `version`, or one of
/// its `provides` (pacman's rule: an unversioned provision satisfies only an
/// unversioned dependency).
pub fn dep_matches(dep: &str, name: &str, version: &str, provides: &[String]) -> bool {
    let (dname, constraint) = parse_dep(dep);
    if dname.is_empty() {
        return false;
    }
    let fits = |v: Option<&str>| match (constraint, v) {
        (None, _) => true,
        (Some((op, want)), Some(v)) => meets(v, op, want),
        (Some(_), None) => false,
    };
    (dname == name && fits(Some(version)))
        || provides.iter().any(|p| {
            let (pname, pv) = parse_dep(p);
            pname == dname && fits(pv.map(|(_, v)| v))
        })
}

/// An installed package that installing the planned packages would remove.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removal {
    /// The installed package.
    pub name: String,
    /// Its installed version.
    pub version: String,
    /// Why, e.g. `pc-new 1.1-1 conflicts with it (pc-victim)`.
    pub because: String,
}

/// The installed packages that installing `incoming` would remove: a package that an
/// incoming one conflicts with (by name or by what it provides) or replaces (by name),
/// or one whose own conflicts name an incoming package. Packages being upgraded (same
/// name) are not removals.
pub fn removals(installed: &[LocalPackage], incoming: &[SyncPackage]) -> Vec<Removal> {
    let mut out: Vec<Removal> = Vec::new();
    for l in installed {
        if incoming.iter().any(|p| p.name == l.name) || out.iter().any(|r| r.name == l.name) {
            continue;
        }
        let why = incoming.iter().find_map(|p| {
            let who = format!("{} {}", p.name, p.version);
            if let Some(c) = p
                .conflicts
                .iter()
                .find(|c| dep_matches(c, &l.name, &l.version, &l.provides))
            {
                return Some(format!("{who} conflicts with it ({c})"));
            }
            if let Some(r) = p
                .replaces
                .iter()
                .find(|r| dep_matches(r, &l.name, &l.version, &[]))
            {
                return Some(format!("{who} replaces it ({r})"));
            }
            l.conflicts
                .iter()
                .find(|c| dep_matches(c, &p.name, &p.version, &p.provides))
                .map(|c| format!("it conflicts with {who} ({c})"))
        });
        if let Some(because) = why {
            out.push(Removal {
                name: l.name.clone(),
                version: l.version.clone(),
                because,
            });
        }
    }
    out
}

/// Builds the transaction the install gate judges: the planned packages (with the
/// installed version each replaces), the removals, and whatever could not be read or
/// looked up.
pub fn plan_transaction(
    plan: &ParsedPlan,
    info: &ParsedInfo,
    installed: &[LocalPackage],
) -> Transaction {
    let mut tx = Transaction {
        skipped: plan.skipped.clone(),
        ..Transaction::default()
    };
    let mut incoming = Vec::new();
    for p in &plan.packages {
        tx.changes.push(Change {
            name: p.name.clone(),
            from: installed
                .iter()
                .find(|l| l.name == p.name)
                .map(|l| l.version.clone()),
            to: Some(p.version.clone()),
        });
        let blocks: Vec<&SyncPackage> = info
            .packages
            .iter()
            .filter(|s| s.name == p.name && s.version == p.version)
            .collect();
        if blocks.is_empty() {
            tx.skipped.push(format!(
                "no repository information for {} {}: cannot tell what it conflicts with",
                p.name, p.version
            ));
        }
        // Every repository offering this exact version: all their conflicts count.
        incoming.extend(blocks.into_iter().cloned());
    }
    tx.skipped.extend(info.skipped.iter().cloned());
    for r in removals(installed, &incoming) {
        tracing::warn!(package = %r.name, because = %r.because, "the install would remove an installed package");
        tx.changes.push(Change {
            name: r.name,
            from: Some(r.version),
            to: None,
        });
    }
    tx
}
