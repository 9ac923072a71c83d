//! The kinds of vulnerability feed a `vuln_feeds` entry names.

use serde::{Deserialize, Serialize};

/// How a feed's URL leads to the files the importers read.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum FeedKind {
    /// The URL of one file an importer reads (an OSV `all.zip`, the Debian tracker JSON,
    /// a compressed archive of documents).
    #[default]
    File,
    /// A package repository: the URL of its `repodata/repomd.xml`, or of a `mirror.list`
    /// whose first line is the repository's base URL. The `updateinfo` file repomd.xml
    /// names is fetched.
    Repomd,
    /// Red Hat's bulk CSAF VEX layout: the URL of `archive_latest.txt`, which names the
    /// current `.tar.zst` archive beside it; after the first full download, only the
    /// documents `changes.csv` lists as changed since, and `deletions.csv`.
    RedhatVexBulk,
}

impl FeedKind {
    /// The name as written in `server.json`.
    pub fn as_str(self) -> &'static str {
        match self {
            FeedKind::File => "file",
            FeedKind::Repomd => "repomd",
            FeedKind::RedhatVexBulk => "redhat-vex-bulk",
        }
    }
}

impl std::fmt::Display for FeedKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
