//! PatchCTL's vulnerability data and matcher.
//!
//! * [`model`]: the normalized [`Record`] every importer produces (one status enum for
//!   every feed, ecosystems as plain strings).
//! * [`import`]: parsers of the real feed formats (OSV records, directories and
//!   `all.zip` archives; the Debian Security Tracker; Ubuntu OpenVEX; Alpine secdb),
//!   strict per record and tolerant of unknown fields.
//! * [`ecosystem`]: which release's data applies to a host (from its os-release), which
//!   package name and version a family is matched on, and which ordering compares them.
//! * [`matcher`]: the in-memory index and the release-exact matching with evidence.
//! * [`coverage`]: whether the imported data covers a host's release ("no vulnerability
//!   data for …" instead of zero findings).
//! * [`cvss`], [`severity`]: CVSS base scores from vectors, one severity scale.
//! * [`inventory`]: offline inventory readers for `patchctl vulns check`.

pub mod coverage;
pub mod cvss;
pub mod ecosystem;
pub mod fleet;
pub mod import;
pub mod inventory;
pub mod matcher;
pub mod model;
pub mod report;
pub mod severity;

pub use model::{Affected, Parsed, Record, Rejected, Status};
