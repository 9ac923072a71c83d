//! What the tests over the real data share.
#![allow(dead_code)] // each test file uses a part

use std::path::{Path, PathBuf};

use patchctl_vuln::{Affected, Record, Status};

/// `../shared/data/<rel>`, or `None` (after a loud message) when it is absent; under
/// `CI=true` its absence fails the test.
pub fn data(rel: &str) -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data")
        .join(rel);
    if path.exists() {
        return Some(path);
    }
    let msg = format!(
        "real vulnerability data not found at {}: this test needs ../shared/data \
         (see shared/data/PROVENANCE.md)",
        path.display()
    );
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{msg}");
    }
    eprintln!("\n!!!!! SKIPPED: {msg}\n");
    None
}

/// The record `id` among `records`.
pub fn find<'a>(records: &'a [Record], id: &str) -> &'a Record {
    records
        .iter()
        .find(|r| r.id == id)
        .unwrap_or_else(|| panic!("no record {id}"))
}

/// What `record` says about `package` in `ecosystem`.
pub fn entry<'a>(record: &'a Record, ecosystem: &str, package: &str) -> &'a Affected {
    record
        .affected
        .iter()
        .find(|a| a.ecosystem == ecosystem && a.package == package)
        .unwrap_or_else(|| panic!("{} has no entry for {package} in {ecosystem}", record.id))
}

/// `Status::Fixed` at `version`.
pub fn fixed(version: &str) -> Status {
    Status::Fixed {
        fixed_version: version.into(),
    }
}
