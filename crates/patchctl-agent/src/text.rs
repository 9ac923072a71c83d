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

/// `"{what} failed (exit CODE): …"` with the tail of the standard error, or of the
/// standard output when the error is empty.
pub(crate) fn failed(what: &str, code: Option<i32>, stdout: &str, stderr: &str) -> String {
    let detail = if stderr.trim().is_empty() {
        stdout
    } else {
        stderr
    };
    format!(
        "{what} failed (exit {}): {}",
        code.map_or("none".to_owned(), |c| c.to_string()),
        tail(detail, 500)
    )
}
