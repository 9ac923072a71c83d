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
