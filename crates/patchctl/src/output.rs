//! Everything the CLI writes for a person or a script: JSON or aligned tables
//! ([`emit`]), status notes and progress on stderr, and the neutralising of terminal
//! control characters in text that came from elsewhere.
//!
//! Host names, package names and versions, command results, health details, advisory
//! texts: most of what the CLI shows was written by an agent (or a vulnerability feed),
//! and an agent may be compromised. Printed raw, a string such as `"\x1b]0;owned\x07"`
//! retitles the operator's terminal, `"\x1b[2J"` clears it, and `"ok\rFAILED"` shows
//! `ok` over what is really there. So every byte the CLI writes to a terminal goes
//! through this module, and this module passes text through [`clean_line`] (a table
//! cell) or [`clean_text`] (a block of lines) first.
//!
//! The choice: C0 controls (U+0000–U+001F), DEL (U+007F) and C1 controls
//! (U+0080–U+009F, which some terminals read as `ESC` + a letter: U+009B is CSI) are
//! replaced by a visible Rust-style escape: `\t`, `\n`, `\r` for those three, `\x1b` for
//! the other C0 controls and DEL, `\u{9b}` for C1. The bidirectional marks, overrides
//! and isolates (U+200E, U+200F, U+202A–U+202E, U+2066–U+2069) are escaped the same way
//! (`\u{202e}`): they drive no terminal, but they reorder what it shows, so that one
//! name could display as another. [`clean_text`] keeps `\n` and `\t`
//! (multi-line text stays readable); [`clean_line`] escapes them too, so that a cell
//! cannot break a table's rows. Every other character, all of Unicode included, is
//! printed as it is. The escape is for display only: a backslash in the input is not
//! doubled, so `\x1b` on screen may also have been those four characters.
//!
//! JSON output (`--output json`) is not changed here: `serde_json` already writes every
//! control character as a `\u00XX` escape.
//!
//! Architecture invariant: only this module (and `main.rs`'s logging set-up) writes to
//! stdout or stderr; commands hand it values and text and never call `println!`.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::Write as _;

use chrono::{DateTime, Utc};
use clap::ValueEnum;
use serde::Serialize;

/// How results are printed.
#[derive(Clone, Copy, Debug, Default, ValueEnum, PartialEq, Eq)]
pub enum Format {
    /// Aligned columns for people.
    #[default]
    Table,
    /// The API's JSON, for scripts.
    Json,
}

/// Prints `value`: as pretty JSON with `--output json`, else the text `table` makes of
/// it (neutralised with [`clean_text`]).
pub fn emit<T: Serialize + ?Sized>(
    format: Format,
    value: &T,
    table: impl FnOnce(&T) -> String,
) -> anyhow::Result<()> {
    match format {
        Format::Json => json(value),
        Format::Table => {
            text(&table(value));
            Ok(())
        }
    }
}

/// Prints `value` as pretty JSON and a newline.
pub fn json<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Prints text to stdout as it is (it should end with a newline), neutralised with
/// [`clean_text`].
pub fn text(s: &str) {
    print!("{}", clean_text(s));
}

/// Prints a line to stderr (a note beside the result: progress done, a warning),
/// neutralised with [`clean_text`].
pub fn note(s: &str) {
    eprintln!("{}", clean_text(s));
}

/// Like [`note`], over the [`progress`] line shown before it.
pub fn note_over_progress(s: &str) {
    eprintln!("\r{}", clean_text(s));
}

/// Shows `s` (one line, neutralised with [`clean_line`]) at the start of the current
/// stderr line, overwriting the previous progress line.
pub fn progress(s: &str) {
    let mut err = std::io::stderr();
    let _ = write!(err, "\r{}", clean_line(s));
    let _ = err.flush();
}

/// Prints the error that ends the program, with its causes.
pub fn error(e: &anyhow::Error) {
    note(&format!("patchctl: {e:#}"));
}

/// Renders rows under a header, columns padded to their widest cell. Every cell goes
/// through [`clean_line`] first.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let rows: Vec<Vec<Cow<'_, str>>> = rows
        .iter()
        .map(|r| r.iter().map(|c| clean_line(c)).collect())
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(c.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                let _ = write!(s, "{c:<w$}  ", w = widths[i]);
            }
        }
        s.trim_end().to_owned()
    };
    let mut out = line(header.to_vec());
    out.push('\n');
    for r in &rows {
        out.push_str(&line(r.iter().map(|c| c.as_ref()).collect()));
        out.push('\n');
    }
    out
}

/// `s` with every control character escaped, `\n` and `\t` included: one line, safe
/// for a terminal (see the module documentation).
pub fn clean_line(s: &str) -> Cow<'_, str> {
    neutralise(s, false)
}

/// `s` with every control character escaped except `\n` and `\t`: lines, safe for a
/// terminal (see the module documentation).
pub fn clean_text(s: &str) -> Cow<'_, str> {
    neutralise(s, true)
}

/// C0, DEL and C1 controls, and the bidirectional overrides and isolates, which do not
/// drive the terminal but reorder what it shows (a host name could display as another).
fn is_control(c: char) -> bool {
    matches!(
        c,
        '\u{0}'..='\u{1f}'
            | '\u{7f}'..='\u{9f}'
            | '\u{200e}'
            | '\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}'
    )
}

fn neutralise(s: &str, keep_lines: bool) -> Cow<'_, str> {
    let bad = |c: char| is_control(c) && !(keep_lines && (c == '\n' || c == '\t'));
    if !s.chars().any(bad) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if !bad(c) {
            out.push(c);
            continue;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{0}'..='\u{1f}' | '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            _ => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
        }
    }
    Cow::Owned(out)
}

/// How long ago `t` was, for people (`5m ago`, `never`).
pub fn ago(t: Option<DateTime<Utc>>) -> String {
    ago_from(Utc::now(), t)
}

/// How long before `now` `t` was.
pub fn ago_from(now: DateTime<Utc>, t: Option<DateTime<Utc>>) -> String {
    match t {
        None => "never".into(),
        Some(t) => {
            let s = (now - t).num_seconds().max(0);
            match s {
                0..60 => format!("{s}s ago"),
                60..3600 => format!("{}m ago", s / 60),
                3600..86400 => format!("{}h ago", s / 3600),
                _ => format!("{}d ago", s / 86400),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_columns() {
        let t = table(
            &["ID", "NAME"],
            &[
                vec!["1".into(), "alpha".into()],
                vec!["22222".into(), "b".into()],
            ],
        );
        assert_eq!(t, "ID     NAME\n1      alpha\n22222  b\n");
    }

    fn check(input: &str, line: &str, text: &str) {
        assert_eq!(clean_line(input), line, "clean_line({input:?})");
        assert_eq!(clean_text(input), text, "clean_text({input:?})");
    }

    #[test]
    fn neutralises_terminal_controls() {
        // Plain text and all of Unicode are kept as they are, without a copy.
        check(
            "web-1.example.org",
            "web-1.example.org",
            "web-1.example.org",
        );
        check("café 日本 ü ✓ 🙂", "café 日本 ü ✓ 🙂", "café 日本 ü ✓ 🙂");
        assert!(matches!(clean_line("1:9.2p1-2+deb12u3"), Cow::Borrowed(_)));
        // Bidirectional overrides and isolates reorder the display: escaped.
        check(
            "web-1\u{202e}gro.elpmaxe",
            "web-1\\u{202e}gro.elpmaxe",
            "web-1\\u{202e}gro.elpmaxe",
        );
        check(
            "\u{2066}a\u{2069}\u{200f}",
            "\\u{2066}a\\u{2069}\\u{200f}",
            "\\u{2066}a\\u{2069}\\u{200f}",
        );
        // CSI sequences: colours, clear screen, cursor moves.
        check(
            "\x1b[31mred\x1b[0m",
            "\\x1b[31mred\\x1b[0m",
            "\\x1b[31mred\\x1b[0m",
        );
        check("\x1b[2J\x1b[H", "\\x1b[2J\\x1b[H", "\\x1b[2J\\x1b[H");
        // OSC: set the window title, ended by BEL or by ST (ESC \).
        check(
            "\x1b]0;owned\x07host",
            "\\x1b]0;owned\\x07host",
            "\\x1b]0;owned\\x07host",
        );
        check(
            "\x1b]8;;http://x\x1b\\",
            "\\x1b]8;;http://x\\x1b\\",
            "\\x1b]8;;http://x\\x1b\\",
        );
        // CR overwrites what was printed before it on the line; backspace too.
        check("FAILED\rok    ", "FAILED\\rok    ", "FAILED\\rok    ");
        check("ok\x08\x08no", "ok\\x08\\x08no", "ok\\x08\\x08no");
        // C1 controls: U+009B is CSI on its own, U+009D OSC; DEL and NUL.
        check("\u{9b}2J", "\\u{9b}2J", "\\u{9b}2J");
        check("\u{9d}0;t\u{9c}", "\\u{9d}0;t\\u{9c}", "\\u{9d}0;t\\u{9c}");
        check("a\x7fb\0c", "a\\x7fb\\x00c", "a\\x7fb\\x00c");
        // Lines and tabs: escaped in a cell, kept in a block of text.
        check(
            "line 1\n\tline 2\n",
            "line 1\\n\\tline 2\\n",
            "line 1\n\tline 2\n",
        );
        // The first character after the controls (U+00A0) is kept.
        check("a\u{a0}b", "a\u{a0}b", "a\u{a0}b");
    }

    #[test]
    fn table_cells_cannot_break_the_terminal_or_the_rows() {
        let t = table(
            &["HOST", "STATUS"],
            &[
                vec!["\x1b]0;pwned\x07evil\nfake  row".into(), "online".into()],
                vec!["ok".into(), "\u{9b}31mred".into()],
            ],
        );
        assert_eq!(
            t,
            "HOST                             STATUS\n\\x1b]0;pwned\\x07evil\\nfake  row  online\nok                               \\u{9b}31mred\n"
        );
    }

    #[test]
    fn ago_in_words() {
        let t = |s: i64| DateTime::from_timestamp(1_767_225_600 + s, 0);
        let now = t(100_000).unwrap();
        assert_eq!(ago_from(now, None), "never");
        assert_eq!(ago_from(now, t(100_000 - 59)), "59s ago");
        assert_eq!(ago_from(now, t(100_000 - 60)), "1m ago");
        assert_eq!(ago_from(now, t(100_000 - 7200)), "2h ago");
        assert_eq!(ago_from(now, t(0)), "1d ago");
        assert_eq!(ago_from(now, t(200_000)), "0s ago");
    }

    /// The architecture invariant of the module documentation, checked on the source:
    /// no other module prints (`main.rs` may hand stderr to the logger).
    #[test]
    fn only_this_module_writes_to_the_terminal() {
        fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
            for e in std::fs::read_dir(dir).unwrap().flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, out);
                } else if p.extension().is_some_and(|x| x == "rs") {
                    out.push(p);
                }
            }
        }
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        walk(&src, &mut files);
        assert!(files.len() > 8, "{files:?}");
        let forbidden = [
            ["print", "!("].concat(),
            ["print", "ln!("].concat(),
            ["dbg", "!("].concat(),
            ["io::", "stdout"].concat(),
            ["io::", "stderr"].concat(),
        ];
        let mut bad = Vec::new();
        for f in &files {
            let name = f.strip_prefix(&src).unwrap().to_string_lossy().into_owned();
            if name == "output.rs" {
                continue;
            }
            let text = std::fs::read_to_string(f).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap_or(&text);
            for pat in &forbidden {
                if code.contains(pat.as_str()) && !(name == "main.rs" && pat.ends_with("stderr")) {
                    bad.push(format!("{name}: {pat}"));
                }
            }
        }
        assert!(bad.is_empty(), "print only through crate::output: {bad:#?}");
    }
}
