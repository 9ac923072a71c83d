//! What the agent keeps on disk between runs: its identity (credential) and the results
//! not yet acknowledged by the platform (the outbox).
//!
//! Every file is written atomically (temporary file with mode 0600, fsync, rename,
//! fsync of the directory), so a crash leaves either the old or the new content.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use patchctl_proto::Secret;
use patchctl_proto::command::CommandResult;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::config::{ConfigError, check_private};

/// Name of the credential file, beside the configuration.
pub const CREDENTIAL_FILE: &str = "credential.json";

/// The agent's identity on the platform.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    /// Host id.
    pub host_id: Uuid,
    /// The per-agent credential.
    pub credential: Secret,
    /// The platform that issued it.
    pub server_url: String,
}

/// Writes `bytes` to `path` atomically with mode 0600.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("state")
    ));
    {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    File::open(dir)?.sync_all()
}

/// Why the stored identity could not be loaded. Messages name the file and say what
/// to do.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The credential file is not private to the agent's user.
    #[error("{0}")]
    Permissions(ConfigError),
    /// The credential file could not be read.
    #[error("cannot read {path}: {error}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
    /// The credential file is not a valid identity.
    #[error("{path} is corrupt ({error}); delete it to enroll again")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What the JSON parser said.
        error: serde_json::Error,
    },
}

/// Loads the identity stored beside the configuration, if any.
pub fn load_identity(config_dir: &Path) -> Result<Option<Identity>, IdentityError> {
    let path = config_dir.join(CREDENTIAL_FILE);
    if !path.exists() {
        return Ok(None);
    }
    check_private(&path, "credential file").map_err(IdentityError::Permissions)?;
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) => return Err(IdentityError::Read { path, error }),
    };
    match serde_json::from_str(&text) {
        Ok(id) => Ok(Some(id)),
        Err(error) => Err(IdentityError::Corrupt { path, error }),
    }
}

/// Stores the identity beside the configuration (0600).
pub fn save_identity(config_dir: &Path, id: &Identity) -> std::io::Result<()> {
    let bytes = serde_json::to_vec_pretty(id).map_err(std::io::Error::other)?;
    write_private(&config_dir.join(CREDENTIAL_FILE), &bytes)
}

/// Forgets the identity (after the platform revoked it).
pub fn remove_identity(config_dir: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(config_dir.join(CREDENTIAL_FILE)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Results produced but not yet acknowledged, one file per command id.
#[derive(Debug, Clone)]
pub struct Outbox {
    dir: PathBuf,
}

impl Outbox {
    /// Opens (creating, mode 0700) the outbox under `state_dir`.
    pub fn open(state_dir: &Path) -> std::io::Result<Outbox> {
        let dir = state_dir.join("outbox");
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)?;
        Ok(Outbox { dir })
    }

    fn path(&self, id: Uuid) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    /// Stores a result durably before it is sent.
    pub fn put(&self, result: &CommandResult) -> std::io::Result<()> {
        let bytes = serde_json::to_vec(result).map_err(std::io::Error::other)?;
        write_private(&self.path(result.command_id), &bytes)
    }

    /// True when a result for `id` is waiting (the command already ran).
    pub fn contains(&self, id: Uuid) -> bool {
        self.path(id).exists()
    }

    /// Every stored result; unreadable files are reported and left in place.
    pub fn all(&self) -> Vec<CommandResult> {
        let mut out = Vec::new();
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return out;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.extension().and_then(|x| x.to_str()) != Some("json") {
                continue;
            }
            match std::fs::read(&p)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
            {
                Ok(r) => out.push(r),
                Err(e) => {
                    tracing::warn!(path = %p.display(), error = %e, "unreadable result in outbox")
                }
            }
        }
        out.sort_by_key(|r: &CommandResult| r.finished_at);
        out
    }

    /// Forgets acknowledged results.
    pub fn remove(&self, ids: &[Uuid]) {
        for id in ids {
            let _ = std::fs::remove_file(self.path(*id));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use patchctl_proto::command::ResultStatus;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn outbox_survives_reopen() {
        let d = tempfile::tempdir().unwrap();
        let ob = Outbox::open(d.path()).unwrap();
        let r = CommandResult {
            command_id: Uuid::new_v4(),
            status: ResultStatus::Succeeded,
            summary: "ok".into(),
            started_at: Utc::now(),
            finished_at: Utc::now(),
            output: None,
        };
        ob.put(&r).unwrap();
        let ob2 = Outbox::open(d.path()).unwrap();
        assert!(ob2.contains(r.command_id));
        assert_eq!(ob2.all(), vec![r.clone()]);
        let mode = std::fs::metadata(ob2.path(r.command_id)).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o600);
        ob2.remove(&[r.command_id]);
        assert!(ob2.all().is_empty());
    }

    #[test]
    fn identity_is_private() {
        let d = tempfile::tempdir().unwrap();
        std::fs::set_permissions(
            d.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap();
        let id = Identity {
            host_id: Uuid::new_v4(),
            credential: Secret::new("canary-cred"),
            server_url: "https://x".into(),
        };
        save_identity(d.path(), &id).unwrap();
        let back = load_identity(d.path()).unwrap().unwrap();
        assert_eq!(back.host_id, id.host_id);
        assert_eq!(back.credential, id.credential);
        assert!(!format!("{back:?}").contains("canary-cred"));
        let mode = std::fs::metadata(d.path().join(CREDENTIAL_FILE))
            .unwrap()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn a_corrupt_identity_says_to_delete_it() {
        let d = tempfile::tempdir().unwrap();
        std::fs::set_permissions(
            d.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap();
        write_private(&d.path().join(CREDENTIAL_FILE), b"{not json").unwrap();
        let err = load_identity(d.path()).unwrap_err();
        assert!(matches!(err, IdentityError::Corrupt { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.starts_with(&format!(
                "{} is corrupt (",
                d.path().join(CREDENTIAL_FILE).display()
            )) && msg.ends_with("); delete it to enroll again"),
            "{msg}"
        );
    }
}
