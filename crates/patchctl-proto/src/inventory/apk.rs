//! The apk inventory: a one-pass parser of Alpine's installed database,
//! `/lib/apk/db/installed`.
//!
//! The database is a list of blocks separated by empty lines; every line of a block is
//! `K:value` with a one-character key. Four keys are read: `P` (name), `V` (version),
//! `A` (architecture) and `o` (origin: the source package, `openssl` for `libcrypto3`).
//! Every other key (`C` checksum, `T` description, `D` dependencies, `F`/`R`/`Z` file
//! lists, ...) is stepped over without being copied. A source package is built once per
//! version, so the source version is the package's own `V`.
//!
//! apk has no package states: a package in the database is installed. A block that
//! cannot be trusted (no `P` or `V`, a line that is not `K:value`, a kept key given
//! twice, white space inside a kept value) is skipped and the reason recorded in
//! [`ParsedInstalled::skipped`]; the parser never panics.

use crate::agent::InstalledPackage;

use super::{WordError, quote, word};

/// The result of parsing an installed database.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ParsedInstalled {
    /// The installed packages, in database order. `source_name` is the origin (the
    /// package's own name when the block has none) and `source_version` the version;
    /// `status` is always `installed`.
    pub packages: Vec<InstalledPackage>,
    /// One reason for each block skipped as malformed.
    pub skipped: Vec<String>,
}

/// Parses the text of an installed database in one pass.
pub fn parse_installed(input: &str) -> ParsedInstalled {
    let mut out = ParsedInstalled::default();
    let mut block = Block::default();
    for (index, raw) in input.split('\n').enumerate() {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.trim().is_empty() {
            block.finish(&mut out);
            continue;
        }
        if !block.started {
            block.started = true;
            block.first_line = index + 1;
        }
        block.line(line);
    }
    block.finish(&mut out);
    out
}

/// The fields kept from the block being read, borrowed from the input.
#[derive(Default)]
struct Block<'a> {
    started: bool,
    first_line: usize,
    name: Option<&'a str>,
    version: Option<&'a str>,
    arch: Option<&'a str>,
    origin: Option<&'a str>,
    error: Option<BlockError<'a>>,
}

/// Why one block of the installed database was skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
enum BlockError<'a> {
    /// A line that is not `K:value`.
    #[error("not a K:value line: {0:?}")]
    NotKeyValue(&'a str),
    /// A kept field given twice.
    #[error("field {0} given twice")]
    Twice(char),
    /// A required field is missing.
    #[error("no {0} field")]
    Missing(&'static str),
    /// A field that is empty or contains white space.
    #[error(transparent)]
    Word(#[from] WordError),
}

impl<'a> Block<'a> {
    /// Records the first problem found in the block.
    fn fail(&mut self, reason: BlockError<'a>) {
        if self.error.is_none() {
            self.error = Some(reason);
        }
    }

    /// Reads one `K:value` line.
    fn line(&mut self, line: &'a str) {
        let mut chars = line.chars();
        let (Some(key), Some(':')) = (chars.next(), chars.next()) else {
            self.fail(BlockError::NotKeyValue(quote(line)));
            return;
        };
        if !key.is_ascii_alphanumeric() {
            self.fail(BlockError::NotKeyValue(quote(line)));
            return;
        }
        let value = &line[2..];
        let slot = match key {
            'P' => &mut self.name,
            'V' => &mut self.version,
            'A' => &mut self.arch,
            'o' => &mut self.origin,
            _ => return,
        };
        if slot.is_some() {
            self.fail(BlockError::Twice(key));
            return;
        }
        *slot = Some(value);
    }

    /// Ends the block: keeps the package or records why it was skipped.
    fn finish(&mut self, out: &mut ParsedInstalled) {
        if !self.started {
            return;
        }
        let block = std::mem::take(self);
        match block.build() {
            Ok(p) => out.packages.push(p),
            Err(reason) => {
                let what = match block.name {
                    Some(n) if !n.is_empty() => {
                        format!("block at line {} (package {})", block.first_line, quote(n))
                    }
                    _ => format!("block at line {}", block.first_line),
                };
                out.skipped.push(format!("{what}: {reason}"));
            }
        }
    }

    fn build(&self) -> Result<InstalledPackage, BlockError<'a>> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let name = word(
            self.name.ok_or(BlockError::Missing("P (name)"))?,
            "P (name)",
        )?;
        let version = word(
            self.version.ok_or(BlockError::Missing("V (version)"))?,
            "V (version)",
        )?;
        let arch = match self.arch {
            None | Some("") => "",
            Some(a) => word(a, "A (arch)")?,
        };
        let origin = match self.origin {
            None | Some("") => name,
            Some(o) => word(o, "o (origin)")?,
        };
        Ok(InstalledPackage {
            name: name.to_owned(),
            version: version.to_owned(),
            arch: arch.to_owned(),
            source_name: Some(origin.to_owned()),
            source_version: Some(version.to_owned()),
            status: "installed".to_owned(),
        })
    }
}
