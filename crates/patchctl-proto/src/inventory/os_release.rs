//! os-release(5): the release identification a host's vulnerability data is chosen by.

use crate::agent::OsInfo;

/// Parses os-release(5) text: shell-like `KEY=value` lines, values optionally in double
/// quotes (with `\"`, `\\`, `\$` and `` \` `` escapes) or single quotes. Comments,
/// unknown keys and lines that are not assignments are ignored; a later assignment
/// wins.
pub fn parse_os_release(input: &str) -> OsInfo {
    let mut info = OsInfo::default();
    for line in input.lines() {
        let line = line.trim_start();
        if line.starts_with('#') {
            continue;
        }
        let Some((key, raw)) = line.split_once('=') else {
            continue;
        };
        let slot = match key {
            "ID" => &mut info.id,
            "VERSION_ID" => &mut info.version_id,
            "VERSION_CODENAME" => &mut info.version_codename,
            "PRETTY_NAME" => &mut info.pretty_name,
            "ID_LIKE" => {
                info.id_like = shell_value(raw)
                    .split_whitespace()
                    .map(str::to_owned)
                    .collect();
                continue;
            }
            _ => continue,
        };
        *slot = shell_value(raw);
    }
    info
}

/// The value of a shell word: quotes removed, escapes resolved, stopping at the first
/// unquoted white space (what follows, such as a comment, is ignored). An unterminated
/// quote runs to the end of the line.
fn shell_value(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => match chars.clone().next() {
                            Some(n @ ('"' | '\\' | '$' | '`')) => {
                                out.push(n);
                                chars.next();
                            }
                            _ => out.push('\\'),
                        },
                        c => out.push(c),
                    }
                }
            }
            '\'' => {
                for c in chars.by_ref() {
                    if c == '\'' {
                        break;
                    }
                    out.push(c);
                }
            }
            '\\' => {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            }
            c if c.is_whitespace() => break,
            c => out.push(c),
        }
    }
    out
}
