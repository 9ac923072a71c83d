//! The apk inventory on the host: reads Alpine's installed database,
//! `/lib/apk/db/installed`, and parses it with [`patchctl_proto::inventory::apk`] (a
//! one-pass parser shared with the platform's offline check, re-exported here).

use std::io;
use std::path::Path;

pub use patchctl_proto::inventory::apk::{ParsedInstalled, parse_installed};

/// Where apk keeps its database of installed packages, relative to the root.
pub const INSTALLED_PATH: &str = "/lib/apk/db/installed";

/// Reads and parses the installed database at `path` (normally [`INSTALLED_PATH`]
/// under the root). Bytes that are not UTF-8 are replaced, not refused: they only
/// occur in descriptions and maintainer names, which are not kept. Read and parsed at
/// background priority ([`crate::priority::in_background`]).
pub fn read_installed(path: &Path) -> io::Result<ParsedInstalled> {
    crate::priority::in_background(|| {
        let bytes = std::fs::read(path)?;
        Ok(parse_installed(&String::from_utf8_lossy(&bytes)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("installed");
        std::fs::write(&path, b"P:x\nV:1-r0\nm:\xff\xfe\n").unwrap();
        let parsed = read_installed(&path).unwrap();
        assert_eq!(parsed.packages.len(), 1);
        assert!(read_installed(&dir.path().join("missing")).is_err());
    }
}
