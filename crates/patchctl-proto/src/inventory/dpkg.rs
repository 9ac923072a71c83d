//! The dpkg inventory: a one-pass parser of `/var/lib/dpkg/status`.
//!
//! The status file is a list of RFC 822-like stanzas separated by empty lines. Only
//! five fields are read (`Package`, `Status`, `Version`, `Architecture`, `Source`);
//! every other field, and every continuation line (`Description`, `Conffiles`, ...), is
//! stepped over without being copied. Strings are allocated only for the packages that
//! are kept, so reading the file is faster than running `dpkg-query -W`.
//!
//! A stanza that cannot be trusted (no `Package`, no `Version`, an unknown `Status`, a
//! line that is neither a field nor a continuation, a field given twice) is skipped and
//! the reason is recorded in [`ParsedStatus::skipped`]; the parser never panics.
//! Packages whose state is `not-installed` or `config-files` are not installed and are
//! left out silently.

use crate::agent::InstalledPackage;

use super::quote;

/// The result of parsing a dpkg status file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ParsedStatus {
    /// The installed packages (any state but `not-installed` and `config-files`), in
    /// file order. `source_name` and `source_version` are always filled: a package
    /// without a `Source` field is its own source, and a `Source` without a version
    /// has the binary version.
    pub packages: Vec<InstalledPackage>,
    /// One reason for each stanza skipped as malformed.
    pub skipped: Vec<String>,
}

/// Parses the text of a dpkg status file in one pass.
pub fn parse_status(input: &str) -> ParsedStatus {
    let mut out = ParsedStatus::default();
    let mut stanza = Stanza::default();
    for (index, raw) in input.split('\n').enumerate() {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        match line.as_bytes().first() {
            // An empty line ends the stanza.
            None => stanza.finish(&mut out),
            // A continuation line: part of a multi-line field we do not keep. Outside a
            // stanza, dpkg skips white space, so a blank line made of spaces is fine.
            Some(b' ' | b'\t') => {
                if !stanza.started && !is_blank(line) {
                    stanza.start(index + 1);
                    stanza.fail(StanzaError::StrayContinuation(quote(line)));
                }
            }
            Some(_) => {
                if !stanza.started {
                    stanza.start(index + 1);
                }
                stanza.field(line);
            }
        }
    }
    stanza.finish(&mut out);
    out
}

/// The fields kept from the stanza being read, borrowed from the input.
#[derive(Default)]
struct Stanza<'a> {
    started: bool,
    first_line: usize,
    package: Option<&'a str>,
    status: Option<&'a str>,
    version: Option<&'a str>,
    arch: Option<&'a str>,
    source: Option<&'a str>,
    error: Option<StanzaError<'a>>,
}

/// Why one stanza of the status file was skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
enum StanzaError<'a> {
    /// A line that is neither a field nor a continuation.
    #[error("not a field: {0:?}")]
    NotAField(&'a str),
    /// A continuation line that does not follow a field.
    #[error("continuation line outside a field: {0:?}")]
    StrayContinuation(&'a str),
    /// A kept field given twice.
    #[error("field {0} given twice")]
    Twice(&'a str),
    /// A required field is missing.
    #[error("no {0} field")]
    Missing(&'static str),
    /// A field that is empty.
    #[error("empty {0} field")]
    Empty(&'static str),
    /// A field whose value contains white space.
    #[error("{0} {1:?} contains white space")]
    WhiteSpace(&'static str, &'a str),
    /// A `Status` value that is not three words.
    #[error("Status {0:?} is not \"want flag status\"")]
    BadStatus(&'a str),
    /// An unknown first word of `Status`.
    #[error("unknown selection {0:?} in Status")]
    UnknownSelection(&'a str),
    /// An unknown second word of `Status`.
    #[error("unknown flag {0:?} in Status")]
    UnknownFlag(&'a str),
    /// An unknown third word of `Status`.
    #[error("unknown state {0:?} in Status")]
    UnknownState(&'a str),
    /// A `Source` value that is not `name` or `name (version)`.
    #[error("Source {0:?} is not \"name\" or \"name (version)\"")]
    BadSource(&'a str),
}

impl<'a> Stanza<'a> {
    fn start(&mut self, line: usize) {
        self.started = true;
        self.first_line = line;
    }

    /// Records the first problem found in the stanza.
    fn fail(&mut self, reason: StanzaError<'a>) {
        if self.error.is_none() {
            self.error = Some(reason);
        }
    }

    /// Reads one `Name: value` line.
    fn field(&mut self, line: &'a str) {
        let Some((name, value)) = line.split_once(':') else {
            self.fail(StanzaError::NotAField(quote(line)));
            return;
        };
        let slot = match name.len() {
            6 if name.eq_ignore_ascii_case("Status") => &mut self.status,
            6 if name.eq_ignore_ascii_case("Source") => &mut self.source,
            7 if name.eq_ignore_ascii_case("Package") => &mut self.package,
            7 if name.eq_ignore_ascii_case("Version") => &mut self.version,
            12 if name.eq_ignore_ascii_case("Architecture") => &mut self.arch,
            _ => {
                if name.is_empty() || name.contains([' ', '\t']) {
                    self.fail(StanzaError::NotAField(quote(line)));
                }
                return;
            }
        };
        if slot.is_some() {
            self.fail(StanzaError::Twice(name));
            return;
        }
        *slot = Some(value.trim_matches([' ', '\t']));
    }

    /// Ends the stanza: keeps the package, drops it, or records why it was skipped.
    fn finish(&mut self, out: &mut ParsedStatus) {
        if !self.started {
            return;
        }
        let stanza = std::mem::take(self);
        match stanza.build() {
            Ok(Some(package)) => out.packages.push(package),
            Ok(None) => {}
            Err(reason) => {
                let what = match stanza.package {
                    Some(name) if !name.is_empty() => {
                        format!(
                            "stanza at line {} (package {})",
                            stanza.first_line,
                            quote(name)
                        )
                    }
                    _ => format!("stanza at line {}", stanza.first_line),
                };
                out.skipped.push(format!("{what}: {reason}"));
            }
        }
    }

    /// The package this stanza describes, `None` when it is not installed.
    fn build(&self) -> Result<Option<InstalledPackage>, StanzaError<'a>> {
        if let Some(error) = self.error {
            return Err(error);
        }
        let name = match self.package {
            None => return Err(StanzaError::Missing("Package")),
            Some(name) => word(name, "Package")?,
        };
        let status = match self.status {
            None => return Err(StanzaError::Missing("Status")),
            Some(status) => parse_state(status)?,
        };
        if status == "not-installed" || status == "config-files" {
            return Ok(None);
        }
        let version = match self.version {
            None => return Err(StanzaError::Missing("Version")),
            Some(version) => word(version, "Version")?,
        };
        let arch = match self.arch {
            // Very old packages have no Architecture; dpkg accepts them.
            None | Some("") => "",
            Some(arch) => word(arch, "Architecture")?,
        };
        let (source_name, source_version) = match self.source {
            None | Some("") => (name, version),
            Some(source) => {
                let (source_name, source_version) = parse_source(source)?;
                (source_name, source_version.unwrap_or(version))
            }
        };
        Ok(Some(InstalledPackage {
            name: name.to_owned(),
            version: version.to_owned(),
            arch: arch.to_owned(),
            source_name: Some(source_name.to_owned()),
            source_version: Some(source_version.to_owned()),
            status: status.to_owned(),
        }))
    }
}

/// The package states of dpkg's `Status` field (its third word).
pub const STATES: [&str; 8] = [
    "installed",
    "half-installed",
    "half-configured",
    "unpacked",
    "triggers-awaited",
    "triggers-pending",
    "config-files",
    "not-installed",
];

/// The third word of a `Status: want flag status` value.
fn parse_state(value: &str) -> Result<&'static str, StanzaError<'_>> {
    let mut words = value.split_ascii_whitespace();
    let (Some(want), Some(flag), Some(state), None) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return Err(StanzaError::BadStatus(quote(value)));
    };
    if !matches!(want, "unknown" | "install" | "hold" | "deinstall" | "purge") {
        return Err(StanzaError::UnknownSelection(quote(want)));
    }
    if !matches!(flag, "ok" | "reinstreq" | "hold" | "hold-reinstreq") {
        return Err(StanzaError::UnknownFlag(quote(flag)));
    }
    STATES
        .into_iter()
        .find(|s| *s == state)
        .ok_or(StanzaError::UnknownState(quote(state)))
}

/// A `Source` value: `name` or `name (version)`.
fn parse_source(value: &str) -> Result<(&str, Option<&str>), StanzaError<'_>> {
    let bad = || StanzaError::BadSource(quote(value));
    match value.split_once('(') {
        None => {
            let name = word(value, "Source").map_err(|_| bad())?;
            Ok((name, None))
        }
        Some((name, rest)) => {
            let name = name.trim_end_matches([' ', '\t']);
            let version = rest.strip_suffix(')').ok_or_else(bad)?;
            let version = version.trim_matches([' ', '\t']);
            let name = word(name, "Source").map_err(|_| bad())?;
            let version = word(version, "Source").map_err(|_| bad())?;
            if version.contains(['(', ')']) {
                return Err(bad());
            }
            Ok((name, Some(version)))
        }
    }
}

/// A non-empty value without white space.
fn word<'a>(value: &'a str, field: &'static str) -> Result<&'a str, StanzaError<'a>> {
    if value.is_empty() {
        Err(StanzaError::Empty(field))
    } else if value.contains(char::is_whitespace) {
        Err(StanzaError::WhiteSpace(field, quote(value)))
    } else {
        Ok(value)
    }
}

fn is_blank(line: &str) -> bool {
    line.bytes().all(|b| b == b' ' || b == b'\t')
}
