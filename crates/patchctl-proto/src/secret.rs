//! A string that must never be printed: license keys, agent credentials, API tokens.
//!
//! `Debug` and `Display` print a fixed placeholder; the only way to the value is
//! [`Secret::expose`], which makes every use greppable.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A secret string. Serialises transparently (it has to reach the peer), but never
/// formats.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret value. Call only where it is sent, hashed or written to its 0600 file.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when the secret is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_value() {
        let s = Secret::new("canary-9f8e7d");
        assert!(!format!("{s:?}").contains("canary"));
        assert!(!format!("{s}").contains("canary"));
        assert!(!format!("{:#?}", Some(&s)).contains("canary"));
        assert_eq!(s.expose(), "canary-9f8e7d");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"canary-9f8e7d\"");
    }
}
