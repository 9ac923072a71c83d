//! The package scan: system identification, the installed packages and the available
//! updates, and how little of it needs to cross the wire.
//!
//! [`collect`] gathers a [`ScanState`]; [`body_for`] compares it with the state the
//! platform acknowledged last ([`Acked`], kept in the state directory) and picks the
//! smallest body: `unchanged` (a digest), a delta, or the full state; [`encode`] turns
//! the upload into bytes, gzip-compressed when that pays. [`collect_local`] and
//! [`preview`] are `patchctl-agent scan`: what would be sent, without sending it.
//!
//! A scan is background work ([`crate::priority`]): every program it starts runs at
//! [`Priority::Background`] (through [`Background`], whatever executor it was given),
//! and its CPU-heavy steps in this process (sorting, hashing, diffing, compressing)
//! run on a lowered thread. The heartbeat and the four operations are not scans.

use std::io::Write;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use patchctl_proto::scan::{PackageRow, ScanBody, ScanState, ScanUpdates, ScanUpload};
use serde::{Deserialize, Serialize};

use crate::exec::{ExecError, ExecOutput, ExecRequest, Executor, Priority, ProcessExecutor};
use crate::pkgmgr::{self, Backend, Family};
use crate::priority::in_background;

/// Bodies at least this large are sent gzip-compressed.
pub const GZIP_FROM_BYTES: usize = 1024;

/// File in the state directory holding the last acknowledged state.
pub const ACKED_FILE: &str = "scan-state.json";

/// Why a scan could not be collected or encoded.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// The blocking task reading the system identification did not finish.
    #[error(transparent)]
    SystemInfo(#[from] tokio::task::JoinError),
    /// The package manager's inventory could not be read; its words.
    #[error(transparent)]
    Inventory(#[from] crate::pkgmgr::PkgError),
    /// The upload could not be serialised.
    #[error("cannot encode the scan: {0}")]
    Encode(serde_json::Error),
    /// The upload could not be compressed.
    #[error("cannot compress the scan: {0}")]
    Compress(std::io::Error),
}

/// An executor that runs every request of a scan at [`Priority::Background`] through
/// the executor it wraps (the allow-lists and the record stay that executor's).
pub struct Background<'a>(pub &'a dyn Executor);

#[async_trait]
impl Executor for Background<'_> {
    async fn run(&self, req: ExecRequest) -> Result<ExecOutput, ExecError> {
        self.0.run(req.with_priority(Priority::Background)).await
    }

    fn history(&self) -> Vec<Vec<String>> {
        self.0.history()
    }
}

/// Collects the state of this system: system identification, the installed packages
/// and the available updates (metadata refreshed first when running as root), at
/// background priority.
pub async fn collect(
    backend: Option<&dyn Backend>,
    exec: &dyn Executor,
) -> Result<ScanState, ScanError> {
    let exec = &Background(exec);
    let system = tokio::task::spawn_blocking(|| in_background(crate::sysinfo::collect)).await?;
    let (packages, updates) = match backend {
        None => (Vec::new(), None),
        Some(b) => {
            let packages = b.inventory(exec).await?;
            (packages, Some(updates(b, exec).await))
        }
    };
    let package_manager = backend.map(|b| b.family().database().as_str().to_owned());
    Ok(state_of(system, package_manager, &packages, updates))
}

/// The canonical scan state of these parts, built (rows, sorting) on a lowered thread.
pub fn state_of(
    system: patchctl_proto::agent::SystemInfo,
    package_manager: Option<String>,
    packages: &[patchctl_proto::agent::InstalledPackage],
    updates: Option<ScanUpdates>,
) -> ScanState {
    in_background(|| {
        let mut state = ScanState {
            system,
            package_manager,
            packages: packages.iter().map(PackageRow::from_package).collect(),
            updates,
        };
        state.canonicalize();
        state
    })
}

/// Collects the state of the system this agent runs on (`/`), with the package
/// manager found there and the real executor: what `patchctl-agent scan` shows.
pub async fn collect_local() -> Result<ScanState, ScanError> {
    let exec = ProcessExecutor::new();
    let backend = Family::detect(Path::new("/")).map(pkgmgr::backend_for);
    collect(backend.as_deref(), &exec).await
}

/// What `patchctl-agent scan` prints for `state`: with `print`, exactly the inventory
/// JSON that would be sent to a platform holding nothing yet; otherwise a one-line
/// summary.
pub fn preview(state: &ScanState, print: bool) -> Result<String, ScanError> {
    if print {
        let upload = upload_for(state, None, Utc::now());
        return serde_json::to_string(&upload).map_err(ScanError::Encode);
    }
    let (updates, security) = state.updates.as_ref().map_or((0, 0), |u| {
        (
            u.updates.len(),
            u.updates.iter().filter(|x| x.security).count(),
        )
    });
    Ok(format!(
        "{} packages ({}) on {}, {updates} updates available ({security} security); use --print to see exactly what would be sent",
        state.packages.len(),
        state
            .package_manager
            .as_deref()
            .unwrap_or("no package manager"),
        state.system.hostname
    ))
}

/// The available updates; a failure is recorded in the result, not fatal to the scan
/// (the inventory is still worth sending).
async fn updates(b: &dyn Backend, exec: &dyn Executor) -> ScanUpdates {
    let mut error = None;
    let root = nix::unistd::geteuid().is_root();
    let mut refreshed = false;
    if root {
        match b.refresh(exec).await {
            Ok(()) => refreshed = true,
            Err(e) => {
                tracing::warn!(error = %e, "could not refresh the package metadata; listing updates from what is cached");
                error = Some(format!("metadata not refreshed: {e}"));
            }
        }
    }
    match b.updates(exec).await {
        Ok(u) => {
            for reason in &u.skipped {
                tracing::warn!(%reason, "skipped a line of the package manager's output");
            }
            ScanUpdates {
                refreshed,
                updates: u.updates,
                removals: u.removals,
                error,
            }
        }
        Err(e) => ScanUpdates {
            refreshed,
            updates: Vec::new(),
            removals: Vec::new(),
            error: Some(format!("updates could not be listed: {e}")),
        },
    }
}

/// The state the platform acknowledged last, as kept on disk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Acked {
    /// Its digest.
    pub digest: String,
    /// The state.
    pub state: ScanState,
}

impl Acked {
    fn path(state_dir: &Path) -> PathBuf {
        state_dir.join(ACKED_FILE)
    }

    /// Loads it; a missing or unreadable file means "none" (the next scan is sent in
    /// full, which is always correct).
    pub fn load(state_dir: &Path) -> Option<Acked> {
        in_background(|| Self::load_here(state_dir))
    }

    fn load_here(state_dir: &Path) -> Option<Acked> {
        let bytes = std::fs::read(Self::path(state_dir)).ok()?;
        match serde_json::from_slice::<Acked>(&bytes) {
            Ok(a) if a.state.digest() == a.digest => Some(a),
            Ok(_) => {
                tracing::warn!(
                    "the stored scan state does not match its digest; the next scan is sent in full"
                );
                None
            }
            Err(e) => {
                tracing::warn!(error = %e, "the stored scan state is unreadable; the next scan is sent in full");
                None
            }
        }
    }

    /// Stores it atomically (mode 0600).
    pub fn save(&self, state_dir: &Path) -> std::io::Result<()> {
        in_background(|| {
            let bytes = serde_json::to_vec(self).map_err(std::io::Error::other)?;
            crate::state::write_private(&Self::path(state_dir), &bytes)
        })
    }

    /// Forgets it (the platform lost it).
    pub fn clear(state_dir: &Path) {
        let _ = std::fs::remove_file(Self::path(state_dir));
    }
}

/// The smallest body that brings a platform holding `acked` to `state`.
pub fn body_for(state: &ScanState, digest: &str, acked: Option<&Acked>) -> ScanBody {
    match acked {
        Some(a) if a.digest == digest => ScanBody::Unchanged,
        Some(a) => state
            .delta_from(&a.state, &a.digest)
            .unwrap_or_else(|| ScanBody::Full {
                state: state.clone(),
            }),
        None => ScanBody::Full {
            state: state.clone(),
        },
    }
}

/// The upload for `state` given what the platform holds.
pub fn upload_for(
    state: &ScanState,
    acked: Option<&Acked>,
    scanned_at: DateTime<Utc>,
) -> ScanUpload {
    in_background(|| {
        let digest = state.digest();
        ScanUpload {
            scanned_at,
            body: body_for(state, &digest, acked),
            digest,
            reboot: None,
        }
    })
}

/// The bytes of an upload and whether they are gzip-compressed.
pub fn encode(upload: &ScanUpload) -> Result<(Vec<u8>, bool), ScanError> {
    in_background(|| encode_here(upload))
}

fn encode_here(upload: &ScanUpload) -> Result<(Vec<u8>, bool), ScanError> {
    let json = serde_json::to_vec(upload).map_err(ScanError::Encode)?;
    if json.len() < GZIP_FROM_BYTES {
        return Ok((json, false));
    }
    let mut gz = flate2::write::GzEncoder::new(
        Vec::with_capacity(json.len() / 6),
        flate2::Compression::best(),
    );
    gz.write_all(&json)
        .and_then(|_| gz.finish())
        .map(|bytes| (bytes, true))
        .map_err(ScanError::Compress)
}

#[cfg(test)]
mod tests {
    use super::*;
    use patchctl_proto::agent::InstalledPackage;

    fn state(n: usize, bump: usize) -> ScanState {
        let mut s = ScanState {
            package_manager: Some("dpkg".into()),
            packages: (0..n)
                .map(|i| {
                    PackageRow::from_package(&InstalledPackage {
                        name: format!("package-{i}"),
                        version: format!("1.{}-1", if i < bump { 1 } else { 0 }),
                        arch: "amd64".into(),
                        source_name: None,
                        source_version: None,
                        status: "installed".into(),
                    })
                })
                .collect(),
            ..ScanState::default()
        };
        s.canonicalize();
        s
    }

    #[test]
    fn picks_unchanged_delta_or_full() {
        let a = state(100, 0);
        let acked = Acked {
            digest: a.digest(),
            state: a.clone(),
        };
        let t = Utc::now();
        assert_eq!(upload_for(&a, Some(&acked), t).body, ScanBody::Unchanged);
        assert!(matches!(
            upload_for(&a, None, t).body,
            ScanBody::Full { .. }
        ));
        let b = state(100, 3);
        let ScanBody::Delta { added, removed, .. } = upload_for(&b, Some(&acked), t).body else {
            panic!("expected a delta");
        };
        assert_eq!((added.len(), removed.len()), (3, 3));
        // An unchanged upload is tiny and plain.
        let (bytes, gz) = encode(&upload_for(&a, Some(&acked), t)).unwrap();
        assert!(!gz && bytes.len() <= 200, "{} bytes", bytes.len());
        // A full one is compressed and decompresses to the same upload.
        let full = upload_for(&a, None, t);
        let (bytes, gz) = encode(&full).unwrap();
        assert!(gz);
        let mut json = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut json)
            .unwrap();
        assert_eq!(serde_json::from_slice::<ScanUpload>(&json).unwrap(), full);
    }

    #[test]
    fn acked_state_survives_a_restart_and_a_corrupt_file_means_full() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Acked::load(dir.path()).is_none());
        let a = state(10, 0);
        let acked = Acked {
            digest: a.digest(),
            state: a,
        };
        acked.save(dir.path()).unwrap();
        assert_eq!(Acked::load(dir.path()), Some(acked.clone()));
        // A digest that does not match its state is not trusted.
        let mut bad = acked;
        bad.digest = "0".repeat(64);
        bad.save(dir.path()).unwrap();
        assert!(Acked::load(dir.path()).is_none());
        std::fs::write(dir.path().join(ACKED_FILE), b"{not json").unwrap();
        assert!(Acked::load(dir.path()).is_none());
    }

    /// Records every request and answers each with an empty success.
    #[derive(Default)]
    struct Recorder(std::sync::Mutex<Vec<ExecRequest>>);

    #[async_trait]
    impl Executor for Recorder {
        async fn run(&self, req: ExecRequest) -> Result<ExecOutput, ExecError> {
            self.0.lock().unwrap().push(req);
            Ok(ExecOutput {
                code: Some(0),
                stdout: String::new(),
                stderr: String::new(),
                truncated: false,
            })
        }

        fn history(&self) -> Vec<Vec<String>> {
            Vec::new()
        }
    }

    /// Issue 15: every program a scan starts (the metadata refresh, the update listing)
    /// is asked for at background priority, whatever executor the scan is given.
    #[tokio::test]
    async fn every_program_a_scan_starts_runs_at_background_priority() {
        use crate::pkgmgr::apt::{AptBackend, AptOptions};
        let dir = tempfile::tempdir().unwrap();
        let status = dir.path().join("status");
        std::fs::write(
            &status,
            "Package: a\nStatus: install ok installed\nVersion: 1.0\nArchitecture: amd64\n\n",
        )
        .unwrap();
        let backend = AptBackend::new(AptOptions {
            config: vec![(
                "Dir::State::status".into(),
                status.to_string_lossy().into_owned(),
            )],
        });
        let rec = Recorder::default();
        let state = collect(Some(&backend), &rec).await.unwrap();
        assert_eq!(state.packages.len(), 1);
        let reqs = rec.0.lock().unwrap();
        assert!(!reqs.is_empty(), "a scan lists updates with apt-get");
        for r in reqs.iter() {
            assert_eq!(r.priority, Priority::Background, "{r:?}");
        }
    }

    #[test]
    fn preview_summarises_or_prints_the_full_upload() {
        let mut s = state(3, 0);
        s.system.hostname = "web-1".into();
        assert_eq!(
            preview(&s, false).unwrap(),
            "3 packages (dpkg) on web-1, 0 updates available (0 security); use --print to see exactly what would be sent"
        );
        let upload: ScanUpload = serde_json::from_str(&preview(&s, true).unwrap()).unwrap();
        assert_eq!(upload.digest, s.digest());
        assert_eq!(upload.body, ScanBody::Full { state: s });
    }
}
