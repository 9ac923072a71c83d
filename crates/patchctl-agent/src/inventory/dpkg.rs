//! The dpkg inventory on the host: reads `/var/lib/dpkg/status` and parses it with
//! [`patchctl_proto::inventory::dpkg`] (a one-pass parser shared with the platform's
//! offline check, re-exported here), and tells whether a dpkg run was interrupted.

use std::io;
use std::path::Path;

pub use patchctl_proto::inventory::dpkg::{ParsedStatus, parse_status};

/// Where dpkg keeps its database of installed packages.
pub const STATUS_PATH: &str = "/var/lib/dpkg/status";

/// Package states that only an interrupted (or failed) dpkg run leaves behind.
pub const INTERRUPTED_STATES: &[&str] = &[
    "half-installed",
    "half-configured",
    "unpacked",
    "triggers-awaited",
    "triggers-pending",
];

/// True when an interrupted dpkg run left work behind in `admindir`
/// (`/var/lib/dpkg`): journal files in `updates/`, or packages in one of the
/// [`INTERRUPTED_STATES`]. `dpkg --configure -a` finishes both.
pub fn interrupted(admindir: &Path) -> bool {
    let journal = std::fs::read_dir(admindir.join("updates"))
        .map(|d| {
            d.flatten().any(|e| {
                let n = e.file_name();
                let n = n.to_string_lossy();
                !n.is_empty() && n.chars().all(|c| c.is_ascii_digit())
            })
        })
        .unwrap_or(false);
    journal
        || read_status(&admindir.join("status"))
            .map(|s| {
                s.packages
                    .iter()
                    .any(|p| INTERRUPTED_STATES.contains(&p.status.as_str()))
            })
            .unwrap_or(false)
}

/// Reads and parses the status file at `path` (normally [`STATUS_PATH`]).
///
/// Bytes that are not UTF-8 (an old maintainer name in Latin-1, say) are replaced, not
/// refused: they never occur in the fields that are kept. Read and parsed on a thread
/// at background priority ([`crate::priority::in_background`]).
pub fn read_status(path: &Path) -> io::Result<ParsedStatus> {
    crate::priority::in_background(|| {
        let bytes = std::fs::read(path)?;
        Ok(parse_status(&String::from_utf8_lossy(&bytes)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use patchctl_proto::agent::InstalledPackage;

    fn pkg(
        name: &str,
        version: &str,
        arch: &str,
        source: (&str, &str),
        status: &str,
    ) -> InstalledPackage {
        InstalledPackage {
            name: name.into(),
            version: version.into(),
            arch: arch.into(),
            source_name: Some(source.0.into()),
            source_version: Some(source.1.into()),
            status: status.into(),
        }
    }

    #[test]
    fn read_status_replaces_bad_utf8() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("status");
        let mut bytes =
            b"Package: a\nStatus: install ok installed\nMaintainer: J\xe9r\xf4me\nVersion: 1.0\nArchitecture: amd64\n"
                .to_vec();
        bytes.extend_from_slice(b"\n");
        std::fs::write(&path, bytes).unwrap();
        let parsed = read_status(&path).unwrap();
        assert_eq!(
            parsed.packages,
            [pkg("a", "1.0", "amd64", ("a", "1.0"), "installed")]
        );
        assert!(read_status(&dir.path().join("missing")).is_err());
    }
}
