//! The simulated agents' scans: a synthetic package list shared by every agent, each
//! agent's [`ScanState`] built from it with that agent's system identification, and the
//! upload chosen by the agent's own code (`patchctl_agent::scan::body_for`: unchanged,
//! delta against the acknowledged state, or full). A share of agents change a few
//! packages between scans (each scan is a new "generation" of its packages).
//!
//! The agent's `scan::upload_for` and `scan::encode` run their work on a new
//! `SCHED_IDLE` thread and block the caller until it ends: right for one agent on its
//! host, wrong for 100,000 simulated agents on a saturated tokio runtime (the thread
//! could starve while a worker waits). So the same steps are called here directly:
//! `body_for`, `ScanState::digest`, and JSON gzip-compressed from
//! `patchctl_agent::scan::GZIP_FROM_BYTES` bytes on, at flate2's fast level (the
//! agent uses `best`; this only changes the simulator's own CPU, not what the
//! platform does with it).

use std::io::Write;

use bytes::Bytes;
use chrono::Utc;
use patchctl_agent::scan::{Acked, GZIP_FROM_BYTES, body_for};
use patchctl_proto::agent::InstalledPackage;
use patchctl_proto::scan::{ScanBody, ScanState, ScanUpload};

use super::conn::Body;

/// Packages changed per scan by a changing agent.
pub const CHANGES_PER_SCAN: usize = 3;

/// The package list every simulated agent starts from.
pub struct Inventory {
    packages: Vec<InstalledPackage>,
}

impl Inventory {
    /// `n` plausible Debian packages.
    pub fn new(n: usize) -> Inventory {
        let packages = (0..n)
            .map(|j| InstalledPackage {
                name: format!(
                    "lib{}-sim{j}",
                    ["ssl", "curl", "xml", "z", "gcc", "systemd"][j % 6]
                ),
                version: format!("{}.{}.{}-{}", 1 + j % 5, j % 13, j % 7, 1 + j % 3),
                arch: if j % 11 == 0 { "all" } else { "amd64" }.into(),
                source_name: (j % 4 == 0).then(|| format!("src-sim{}", j / 4)),
                source_version: None,
                status: "installed".into(),
            })
            .collect();
        Inventory { packages }
    }

    /// Agent `i`'s state at `generation` (0: the shared list as is; each later one has
    /// [`CHANGES_PER_SCAN`] packages at a new version).
    pub fn state(&self, i: usize, generation: u32) -> ScanState {
        let system = crate::heartbeats::enroll_request(i, patchctl_proto::Secret::new("x")).system;
        let n = self.packages.len().max(1);
        let mut packages = self.packages.clone();
        if generation > 0 {
            for k in 0..CHANGES_PER_SCAN.min(n) {
                let j = (i * 31 + generation as usize * 7 + k * 97) % n;
                packages[j].version = format!("{}+sim{generation}", packages[j].version);
            }
        }
        patchctl_proto_state(system, &packages)
    }
}

fn patchctl_proto_state(
    system: patchctl_proto::agent::SystemInfo,
    packages: &[InstalledPackage],
) -> ScanState {
    let mut state = ScanState {
        system,
        package_manager: Some("dpkg".into()),
        packages: packages
            .iter()
            .map(patchctl_proto::scan::PackageRow::from_package)
            .collect(),
        updates: None,
    };
    state.canonicalize();
    state
}

/// What a simulated agent remembers of its scans: the generation and digest the
/// platform acknowledged last.
#[derive(Debug, Clone, Default)]
pub struct ScanMemory {
    /// The acknowledged generation and its digest.
    pub acked: Option<(u32, String)>,
}

/// The upload of agent `i` for `generation`, given what the platform acknowledged.
pub fn upload(inv: &Inventory, i: usize, generation: u32, mem: &ScanMemory) -> ScanUpload {
    let scanned_at = Utc::now();
    if let Some((g, digest)) = &mem.acked
        && *g == generation
    {
        // What body_for answers when the digests are equal, without rebuilding the state.
        return ScanUpload {
            scanned_at,
            body: ScanBody::Unchanged,
            digest: digest.clone(),
            reboot: None,
        };
    }
    let state = inv.state(i, generation);
    let digest = state.digest();
    let acked = mem.acked.as_ref().map(|(g, d)| Acked {
        digest: d.clone(),
        state: inv.state(i, *g),
    });
    ScanUpload {
        scanned_at,
        body: body_for(&state, &digest, acked.as_ref()),
        digest,
        reboot: None,
    }
}

/// The bytes of an upload, gzip-compressed from `GZIP_FROM_BYTES` on.
pub fn encode(upload: &ScanUpload) -> anyhow::Result<Body> {
    let json = serde_json::to_vec(upload)?;
    if json.len() < GZIP_FROM_BYTES {
        return Ok(Body {
            bytes: Bytes::from(json),
            gzip: false,
        });
    }
    let mut gz = flate2::write::GzEncoder::new(
        Vec::with_capacity(json.len() / 4),
        flate2::Compression::fast(),
    );
    gz.write_all(&json)?;
    Ok(Body {
        bytes: Bytes::from(gz.finish()?),
        gzip: true,
    })
}

/// The kind of a body, for counting.
pub fn kind(upload: &ScanUpload) -> &'static str {
    match upload.body {
        ScanBody::Unchanged => "unchanged",
        ScanBody::Delta { .. } => "delta",
        ScanBody::Full { .. } => "full",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_follow_the_acknowledged_state() {
        let inv = Inventory::new(200);
        let mut mem = ScanMemory::default();
        let first = upload(&inv, 7, 0, &mem);
        assert_eq!(kind(&first), "full");
        assert!(encode(&first).unwrap().gzip);
        mem.acked = Some((0, first.digest.clone()));
        let same = upload(&inv, 7, 0, &mem);
        assert_eq!(kind(&same), "unchanged");
        assert_eq!(same.digest, first.digest);
        let next = upload(&inv, 7, 1, &mem);
        assert_eq!(kind(&next), "delta");
        assert_ne!(next.digest, first.digest);
        match &next.body {
            ScanBody::Delta { added, removed, .. } => {
                assert_eq!(added.len(), CHANGES_PER_SCAN);
                assert_eq!(removed.len(), CHANGES_PER_SCAN);
            }
            _ => unreachable!(),
        }
        // Two agents differ (their systems do).
        assert_ne!(
            upload(&inv, 8, 0, &ScanMemory::default()).digest,
            first.digest
        );
    }
}
