//! What the tests over the real data share.
#![allow(dead_code)] // each test file uses a part

use std::path::PathBuf;

use patchctl_vuln::import::{self, FeedBatch};
use patchctl_vuln::matcher::{Index, SourcedRecord};
use patchctl_vuln::{Affected, Record, Status};

/// `../shared/data/<rel>` ([`patchctl_testkit::shared_data`]): the harness runs a test
/// only when the data it declares (`Need::SharedData`) is there, and a test that reads
/// data it did not declare fails here, saying so.
pub fn data(rel: &str) -> PathBuf {
    let path = patchctl_testkit::shared_data(rel);
    assert!(
        path.exists(),
        "{} is missing: the test must declare Need::SharedData({rel:?})",
        path.display()
    );
    path
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

/// The batches an import of `paths` gives.
pub fn batches(paths: &[PathBuf]) -> Vec<FeedBatch> {
    import::import_paths(paths, &mut |_| {}).expect("import")
}

/// The records an import of `paths` gives, all of feed `feed`, none rejected.
pub fn records_of(paths: &[PathBuf], feed: &str) -> Vec<Record> {
    let b = batches(paths);
    assert_eq!(
        b.len(),
        1,
        "one feed: {:?}",
        b.iter().map(|b| b.feed).collect::<Vec<_>>()
    );
    assert_eq!(b[0].feed, feed);
    assert!(
        b[0].parsed.rejected.is_empty(),
        "{:?}",
        b[0].parsed.rejected
    );
    b.into_iter()
        .next()
        .map(|b| b.parsed.records)
        .unwrap_or_default()
}

/// The matcher's index of `records`, from feed `feed`.
pub fn index_of(feed: &str, records: Vec<Record>) -> Index {
    Index::build(records.into_iter().map(|record| SourcedRecord {
        source: feed.into(),
        imported_at: None,
        record,
    }))
}

/// The matcher's index of every batch (each record under its batch's feed), none of
/// them with a rejection.
pub fn index_of_batches(batches: Vec<FeedBatch>) -> Index {
    let mut records = Vec::new();
    for b in batches {
        assert!(
            b.parsed.rejected.is_empty(),
            "{}: {:?}",
            b.feed,
            b.parsed.rejected
        );
        records.extend(b.parsed.records.into_iter().map(|record| SourcedRecord {
            source: b.feed.to_string(),
            imported_at: None,
            record,
        }));
    }
    Index::build(records)
}
