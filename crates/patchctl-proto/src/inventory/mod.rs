//! Pure parsers of the package databases and release files that both the agent (which
//! reads them on the host) and the platform (`patchctl vulns check`, which reads copies
//! of them offline) understand. Text in, [`crate::agent`] values out; no I/O, and no
//! input makes them panic.
//!
//! * [`dpkg`] reads `/var/lib/dpkg/status`;
//! * [`rpm`] reads `rpm -qa --queryformat` output (TAB- or space-separated);
//! * [`apk`] reads `/lib/apk/db/installed`;
//! * [`os_release`] reads `/etc/os-release`.
//!
//! Malformed entries are skipped and each is reported with its line, so a caller can
//! choose to log them (the agent) or refuse the input (an offline check).

pub mod apk;
pub mod dpkg;
pub mod os_release;
pub mod rpm;

pub use os_release::parse_os_release;

/// The longest excerpt of a malformed line quoted in a skip reason.
const MAX_QUOTE: usize = 60;

/// At most [`MAX_QUOTE`] bytes of `s`, cut on a character boundary.
fn quote(s: &str) -> &str {
    let mut end = s.len().min(MAX_QUOTE);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Why a value is not a word (see [`word`]); names the value's field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
enum WordError {
    /// The value is empty.
    #[error("empty {0}")]
    Empty(&'static str),
    /// The value contains white space.
    #[error("{0} contains white space")]
    WhiteSpace(&'static str),
}

/// A non-empty value without white space.
fn word<'a>(value: &'a str, what: &'static str) -> Result<&'a str, WordError> {
    if value.is_empty() {
        Err(WordError::Empty(what))
    } else if value.contains(char::is_whitespace) {
        Err(WordError::WhiteSpace(what))
    } else {
        Ok(value)
    }
}
