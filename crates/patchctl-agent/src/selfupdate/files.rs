//! What the updater keeps on disk, in the state directory: `update.json` (the highest
//! version ever accepted, the release running and the one on trial) and
//! `update-events.json` (steps not yet delivered to the platform). Both are written
//! atomically (fsync, rename) with mode 0600.

use std::io::Read;
use std::path::{Path, PathBuf};

use chrono::Utc;
use patchctl_proto::release::{UpdateEvent, UpdateStep};
use patchctl_release::ReleaseVersion;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A release identified by its version and the SHA-256 of its binary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnownRelease {
    /// The signed manifest's version.
    pub version: String,
    /// SHA-256 of the binary, hex.
    pub sha256: String,
}

/// `update.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateState {
    /// The highest version ever accepted (verified); a release must be newer.
    #[serde(default)]
    pub highest_accepted: Option<String>,
    /// The release confirmed last.
    #[serde(default)]
    pub running: Option<KnownRelease>,
    /// The release swapped in and not yet confirmed.
    #[serde(default)]
    pub trial: Option<KnownRelease>,
}

impl UpdateState {
    fn path(state_dir: &Path) -> PathBuf {
        state_dir.join("update.json")
    }

    /// Loads it; a missing or unreadable file is the empty state (the build's own
    /// version is still the floor, see [`UpdateState::highest`]).
    pub fn load(state_dir: &Path) -> UpdateState {
        match std::fs::read(Self::path(state_dir)) {
            Ok(b) => serde_json::from_slice(&b).unwrap_or_else(|e| {
                tracing::warn!(error = %e, "update.json is unreadable; starting from this build's version");
                UpdateState::default()
            }),
            Err(_) => UpdateState::default(),
        }
    }

    /// Stores it atomically.
    pub fn save(&self, state_dir: &Path) -> std::io::Result<()> {
        let bytes = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        crate::state::write_private(&Self::path(state_dir), &bytes)
    }

    /// The version the running binary is: the release on record whose SHA-256 is the
    /// binary's, else the build's own version.
    pub fn running_version(&self, binary_sha256: Option<&str>) -> String {
        let matches = |r: &&KnownRelease| Some(r.sha256.as_str()) == binary_sha256;
        self.running
            .iter()
            .chain(self.trial.iter())
            .find(matches)
            .map(|r| r.version.clone())
            .unwrap_or_else(|| crate::VERSION.into())
    }

    /// The floor a new release must pass: the highest of the recorded highest, the
    /// running version and the build's version.
    pub fn highest(&self, running: &str) -> ReleaseVersion {
        let mut best = ReleaseVersion::parse(crate::VERSION).unwrap_or_else(|_| {
            ReleaseVersion::parse("0.0.0").unwrap_or_else(|_| unreachable!("0.0.0 parses"))
        });
        for v in [self.highest_accepted.as_deref(), Some(running)]
            .into_iter()
            .flatten()
        {
            if let Ok(v) = ReleaseVersion::parse(v)
                && v > best
            {
                best = v;
            }
        }
        best
    }
}

/// SHA-256 of a file, hex, read in 64 KiB chunks.
pub fn file_sha256(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// The most events kept undelivered (the oldest go first).
const MAX_EVENTS: usize = 64;

/// `update-events.json`: steps not yet delivered. Every push is also an audit event.
#[derive(Debug, Clone)]
pub struct EventLog {
    path: PathBuf,
}

impl EventLog {
    /// The log in `state_dir`.
    pub fn new(state_dir: &Path) -> EventLog {
        EventLog {
            path: state_dir.join("update-events.json"),
        }
    }

    /// The events not yet delivered, oldest first.
    pub fn pending(&self) -> Vec<UpdateEvent> {
        std::fs::read(&self.path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Records a step: an audit event now, an [`UpdateEvent`] for the platform.
    pub fn push(&self, step: UpdateStep, version: &str, detail: Option<String>) {
        let d = detail.as_deref().unwrap_or("");
        match step {
            UpdateStep::Refused | UpdateStep::RolledBack => {
                tracing::warn!(target: "audit", step = step.as_str(), version, detail = d, "self-update {}", step.as_str())
            }
            _ => {
                tracing::info!(target: "audit", step = step.as_str(), version, detail = d, "self-update {}", step.as_str())
            }
        }
        let mut all = self.pending();
        all.push(UpdateEvent {
            at: Utc::now(),
            step,
            version: version.chars().take(64).collect(),
            detail: detail.map(|d| d.chars().take(1000).collect()),
        });
        if all.len() > MAX_EVENTS {
            all.drain(..all.len() - MAX_EVENTS);
        }
        if let Err(e) = serde_json::to_vec(&all)
            .map_err(std::io::Error::other)
            .and_then(|b| crate::state::write_private(&self.path, &b))
        {
            tracing::error!(error = %e, path = %self.path.display(), "cannot keep a self-update event for the platform; it is in the journal only");
        }
    }

    /// Forgets the first `n` events (delivered).
    pub fn delivered(&self, n: usize) {
        if n == 0 {
            return;
        }
        let mut all = self.pending();
        all.drain(..n.min(all.len()));
        let result = if all.is_empty() {
            match std::fs::remove_file(&self.path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            }
        } else {
            serde_json::to_vec(&all)
                .map_err(std::io::Error::other)
                .and_then(|b| crate::state::write_private(&self.path, &b))
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "cannot forget delivered self-update events; they may be sent twice");
        }
    }
}
