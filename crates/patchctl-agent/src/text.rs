//! Small text helpers shared by the operations, the package-manager backends and the
//! inventory readers: cutting a program's output down to what a result can carry.
//!
//! Architecture invariant: this module imports no other agent module, so any module
//! may use it without creating an import cycle.

/// The last `max` bytes (about) of `s`, trimmed: where a program says why it failed.
pub fn tail(s: &str, max: usize) -> &str {
    let s = s.trim();
    let mut start = s.len().saturating_sub(max);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

/// At most `max` bytes of `s`, cut at a character boundary.
pub fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// What a failed program said: the standard error, or the standard output when the
/// error is empty, cut to its last 500 bytes.
pub fn failure_detail<'a>(stdout: &'a str, stderr: &'a str) -> &'a str {
    let detail = if stderr.trim().is_empty() {
        stdout
    } else {
        stderr
    };
    tail(detail, 500)
}

/// An exit code as a result shows it: the number, or `none` when the program was
/// killed by a signal.
pub fn exit_code(code: Option<i32>) -> String {
    code.map_or("none".to_owned(), |c| c.to_string())
}

/// The line of a package manager's output that says why an install failed, for a
/// result's one-line summary: dpkg's `dpkg: error processing package X (--configure):`
/// joined with the indented line after it (what failed: a maintainer script, a
/// dependency), else the first line starting `E:` (apt) or `Error:`/`error:` (dnf,
/// zypper, pacman); at most 300 bytes. `None` when no line says.
pub fn install_error(output: &str) -> Option<String> {
    let lines: Vec<&str> = output.lines().collect();
    let line = if let Some(i) = lines.iter().position(|l| l.starts_with("dpkg: error")) {
        match lines.get(i + 1) {
            Some(next) if next.starts_with(' ') => format!("{} {}", lines[i], next.trim()),
            _ => lines[i].to_owned(),
        }
    } else {
        lines
            .iter()
            .find(|l| l.starts_with("E: ") || l.starts_with("Error:") || l.starts_with("error:"))?
            .to_string()
    };
    Some(truncate(line.trim(), 300).to_owned())
}

#[cfg(test)]
mod tests {
    use super::install_error;
    use proptest::prelude::*;

    #[track_caller]
    fn check(output: &str, expected: Option<&str>) {
        assert_eq!(install_error(output).as_deref(), expected);
    }

    #[test]
    fn finds_why_an_install_failed() {
        check(
            "Setting up demo-bad (2.0) ...\ndemo-bad: postinst failed\n\
             dpkg: error processing package demo-bad (--configure):\n \
             installed demo-bad package post-installation script subprocess returned error exit status 1\n\
             Errors were encountered while processing:\n demo-bad\n\
             E: Sub-process /usr/bin/dpkg returned an error code (1)\n",
            Some(
                "dpkg: error processing package demo-bad (--configure): installed demo-bad \
                 package post-installation script subprocess returned error exit status 1",
            ),
        );
        check(
            "Reading package lists...\nE: Version '9.9' for 'curl' was not found\n",
            Some("E: Version '9.9' for 'curl' was not found"),
        );
        check(
            "Error: Unable to find a match: nginx-9\n",
            Some("Error: Unable to find a match: nginx-9"),
        );
        check(
            "dpkg: error: requested operation requires superuser privilege\n",
            Some("dpkg: error: requested operation requires superuser privilege"),
        );
        check("all fine\n", None);
        check("", None);
    }

    proptest! {
        /// Package-manager output is untrusted: any text gives a short line from it or
        /// nothing, never a panic.
        #[test]
        fn any_output_gives_a_short_line_or_none(
            lines in proptest::collection::vec(
                prop_oneof![
                    Just("dpkg: error processing package x (--configure):".to_string()),
                    Just(" subprocess returned error exit status 1".to_string()),
                    "E: .{0,400}",
                    "error:.{0,50}",
                    ".{0,80}",
                ],
                0..12,
            )
        ) {
            let output = lines.join("\n");
            if let Some(line) = install_error(&output) {
                prop_assert!(line.len() <= 300);
                prop_assert!(output.contains(line.split(' ').next().unwrap_or("")));
            }
        }
    }
}
