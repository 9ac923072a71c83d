//! Size caps on what an agent sends: one place that checks every string and every list
//! of an agent message against a stated maximum, before the message is decoded.
//!
//! [`check_agent_json`] walks the JSON text of any agent message (enrollment,
//! heartbeat, long-poll, scan, inventory, results) without building it: each string is
//! held to the maximum of the field it is the value of ([`max_string_len`]), each list
//! to the maximum of its field ([`max_items`]). A string inside a list, or a list inside
//! a list (the compact package rows of a scan), counts as its field's. The field names
//! are those of `agent.rs`, `scan.rs`, `command.rs` and `package.rs`; a field without a
//! line of its own gets [`DEFAULT_MAX_STRING`] and [`DEFAULT_MAX_ITEMS`], so a field
//! added later is capped too. Text that is not JSON passes: the decoder refuses it
//! with its own message.
//!
//! The caps sit far above what a real agent sends (a package name of 128 bytes is
//! refused by [`crate::validate`] already; the agent cuts the output it reports to
//! 2,000 characters) and far below what would hurt the platform.

use std::fmt;

use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// Most packages one scan, delta or inventory may hold (a large distribution host has
/// 5,000–10,000).
pub const MAX_SCAN_PACKAGES: usize = 50_000;
/// Longest string of a field without a line in [`max_string_len`], in bytes.
pub const DEFAULT_MAX_STRING: usize = 1024;
/// Most items of a list without a line in [`max_items`].
pub const DEFAULT_MAX_ITEMS: usize = 4096;
/// Longest package name, version, architecture or source string, in bytes (a package
/// row's strings: dpkg and rpm names and versions are far shorter).
pub const MAX_PACKAGE_STRING: usize = 256;
/// Longest hostname (DNS: 253 bytes).
pub const MAX_HOSTNAME: usize = 253;
/// Longest free text an agent reports (a result's summary, a check's detail, the tail
/// of a package manager's output): the agent cuts its output to 2,000 characters.
pub const MAX_TEXT: usize = 16 * 1024;

/// The longest string `field` may hold, in bytes.
pub fn max_string_len(field: &str) -> usize {
    match field {
        "hostname" => MAX_HOSTNAME,
        // Package rows (scan `packages`, `added`, `removed` are lists of compact rows)
        // and package objects.
        "packages" | "added" | "removed" | "installed" | "name" | "version" | "arch"
        | "source_name" | "source_version" | "status" | "current_version" | "candidate_version"
        | "target_version" | "before" | "after" | "removals" | "failed_units" => MAX_PACKAGE_STRING,
        "summary" | "detail" | "output_tail" | "refresh_error" | "error" | "refused"
        | "reasons" | "reboot_reasons" => MAX_TEXT,
        _ => DEFAULT_MAX_STRING,
    }
}

/// The most items the list of `field` may hold.
pub fn max_items(field: &str) -> usize {
    match field {
        "packages" | "added" | "removed" | "installed" | "updates" | "removals" => {
            MAX_SCAN_PACKAGES
        }
        _ => DEFAULT_MAX_ITEMS,
    }
}

/// A value over its cap: what the platform answers (400), naming the field and the
/// limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    /// A string longer than its field allows.
    #[error(
        "field {path} is {len} bytes long; the limit is {max} bytes: shorten it (the agent sends nothing this long)"
    )]
    TooLong {
        /// Where (`system.hostname`, `body.state.packages[][]`).
        path: String,
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A list with more items than its field allows.
    #[error("field {path} holds {len} items; the limit is {max}")]
    TooMany {
        /// Where.
        path: String,
        /// Its items (counted up to one past the limit).
        len: usize,
        /// The limit.
        max: usize,
    },
}

/// Checks every string and list of the agent message `json` against its cap (see the
/// module documentation). Text that is not JSON passes.
pub fn check_agent_json(json: &[u8]) -> Result<(), LimitError> {
    let mut de = serde_json::Deserializer::from_slice(json);
    let mut found = None;
    let walk = Walk {
        path: &mut Vec::new(),
        field: "",
        found: &mut found,
    };
    // A parse error ends the walk; the decoder reports it.
    let _ = walk.deserialize(&mut de);
    match found {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// One value being walked: the path to it, the field whose caps it takes, and where
/// the first error goes. An error also fails the walk (a custom serde error) so that
/// the rest of the text is not read.
struct Walk<'p> {
    path: &'p mut Vec<String>,
    field: &'p str,
    found: &'p mut Option<LimitError>,
}

impl Walk<'_> {
    fn path_text(&self) -> String {
        let mut s = String::new();
        for p in self.path.iter() {
            if p != "[]" && !s.is_empty() {
                s.push('.');
            }
            s.push_str(p);
        }
        s
    }

    fn fail<E: serde::de::Error>(self, e: LimitError) -> E {
        let text = e.to_string();
        *self.found = Some(e);
        E::custom(text)
    }

    fn string<E: serde::de::Error>(self, v: &str) -> Result<(), E> {
        let max = max_string_len(self.field);
        if v.len() > max {
            let path = self.path_text();
            return Err(self.fail(LimitError::TooLong {
                path,
                len: v.len(),
                max,
            }));
        }
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_none<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<(), E> {
        self.string(v)
    }
    fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<(), E> {
        self.string(v)
    }
    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<(), E> {
        self.string(&v)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let max = max_items(self.field);
        self.path.push("[]".to_owned());
        let mut n = 0usize;
        loop {
            if n == max {
                // One more is one too many.
                if seq.next_element::<IgnoredAny>()?.is_some() {
                    let path = self.path_text();
                    self.path.pop();
                    return Err(self.fail(LimitError::TooMany {
                        path,
                        len: n + 1,
                        max,
                    }));
                }
                break;
            }
            let item = Walk {
                path: &mut *self.path,
                field: self.field,
                found: &mut *self.found,
            };
            if seq.next_element_seed(item)?.is_none() {
                break;
            }
            n += 1;
        }
        self.path.pop();
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            if key.len() > DEFAULT_MAX_STRING {
                let path = self.path_text();
                return Err(self.fail(LimitError::TooLong {
                    path: format!("{path} (a field name)"),
                    len: key.len(),
                    max: DEFAULT_MAX_STRING,
                }));
            }
            self.path.push(key.clone());
            let value = Walk {
                path: &mut *self.path,
                field: &key,
                found: &mut *self.found,
            };
            map.next_value_seed(value)?;
            self.path.pop();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
