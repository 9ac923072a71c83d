//! How doctor's report is written: text for people (one line per check, the remedy on
//! the next line for a warning or failure, colour only on a terminal) or JSON.
//!
//! Some details carry text from the platform (its messages, the host name it knows);
//! control characters in them are shown as escapes so they cannot drive a terminal.

use std::io::{self, Write};

use serde::Serialize;

use super::{Finding, Level, Report};

/// The mark at the start of a check's line.
fn mark(level: Level) -> &'static str {
    match level {
        Level::Ok => "[ ok ]",
        Level::Warn => "[warn]",
        Level::Fail => "[FAIL]",
        Level::Skipped => "[skip]",
    }
}

fn colour(level: Level) -> &'static str {
    match level {
        Level::Ok => "\x1b[32m",
        Level::Warn => "\x1b[33m",
        Level::Fail => "\x1b[1;31m",
        Level::Skipped => "\x1b[2m",
    }
}

/// `s` with every control character shown as an escape.
pub fn inert(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Writes the report as text; `color` adds ANSI colours to the marks.
pub fn write_text(w: &mut dyn Write, report: &Report, color: bool) -> io::Result<()> {
    let width = report
        .checks
        .iter()
        .map(|c| c.name.len())
        .max()
        .unwrap_or(0);
    writeln!(
        w,
        "patchctl-agent {} doctor, config {}",
        crate::VERSION,
        inert(&report.config.display().to_string())
    )?;
    for c in &report.checks {
        let m = mark(c.level);
        if color {
            write!(w, "{}{m}\x1b[0m", colour(c.level))?;
        } else {
            write!(w, "{m}")?;
        }
        writeln!(w, " {:width$}  {}", c.name, inert(&c.detail))?;
        if let Some(fix) = &c.remedy {
            if matches!(c.level, Level::Warn | Level::Fail) {
                writeln!(w, "       {:width$}  fix: {}", "", inert(fix))?;
            }
        }
    }
    let count = |l: Level| report.checks.iter().filter(|c| c.level == l).count();
    writeln!(
        w,
        "{} ok, {} warning(s), {} failure(s), {} skipped",
        count(Level::Ok),
        count(Level::Warn),
        count(Level::Fail),
        count(Level::Skipped)
    )
}

/// The JSON document of `--output json`.
#[derive(Serialize)]
struct JsonReport<'a> {
    agent_version: &'a str,
    config: String,
    /// `fail` when any check failed, else `ok`.
    result: &'a str,
    checks: &'a [Finding],
}

/// Writes the report as one JSON object: `agent_version`, `config`, `result` (`ok` or
/// `fail`) and `checks`, each with `name`, `level`, `detail` and `remedy`.
pub fn write_json(w: &mut dyn Write, report: &Report) -> io::Result<()> {
    let doc = JsonReport {
        agent_version: crate::VERSION,
        config: report.config.display().to_string(),
        result: if report.failed() { "fail" } else { "ok" },
        checks: &report.checks,
    };
    serde_json::to_writer_pretty(&mut *w, &doc).map_err(io::Error::other)?;
    writeln!(w)
}
