//! What the agent keeps on disk between runs: its identity (credential) and the results
//! not yet acknowledged by the platform (the outbox, [`outbox`]: bounded, in order).
//!
//! Every file is written atomically (temporary file with mode 0600, fsync, rename,
//! fsync of the directory), so a crash leaves either the old or the new content.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use std::time::Duration;

use chrono::{DateTime, Utc};
use patchctl_proto::Secret;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::config::{ConfigError, check_private};

mod outbox;

pub use outbox::{Outbox, OutboxFull, OutboxLimits};

/// Name of the credential file, beside the configuration.
pub const CREDENTIAL_FILE: &str = "credential.json";

/// Name of the marker the agent leaves beside the credential when the platform revoked
/// it. While it exists the agent does not contact the platform at all; `patchctl-agent
/// reenroll` removes it.
pub const REVOKED_FILE: &str = "revoked.json";

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
    /// When the credential was issued; absent in files written before rotation
    /// existed, which makes the credential due for rotation at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_at: Option<DateTime<Utc>>,
}

impl Identity {
    /// True when the credential is at least `max_age` old (or its age is unknown).
    pub fn due_for_rotation(&self, max_age: Duration, now: DateTime<Utc>) -> bool {
        match self.issued_at {
            None => true,
            Some(at) => (now - at).to_std().is_ok_and(|age| age >= max_age),
        }
    }
}

/// What the agent wrote down when the platform revoked its credential. No secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RevokedMarker {
    /// When the agent was told.
    pub revoked_at: DateTime<Utc>,
    /// The platform that revoked it.
    pub server_url: String,
    /// The host it was on that platform, when it knew.
    pub host_id: Option<Uuid>,
    /// The platform's message.
    pub message: String,
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

/// Writes the revoked marker beside the credential (0600, atomically).
pub fn write_revoked(config_dir: &Path, marker: &RevokedMarker) -> std::io::Result<()> {
    let bytes = serde_json::to_vec_pretty(marker).map_err(std::io::Error::other)?;
    write_private(&config_dir.join(REVOKED_FILE), &bytes)
}

/// The revoked marker, when there is one. A marker that exists but cannot be read
/// still means "revoked": it comes back with what could not be read as its message.
pub fn load_revoked(config_dir: &Path) -> Option<RevokedMarker> {
    let path = config_dir.join(REVOKED_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => return Some(unreadable_marker(&path, &e.to_string())),
    };
    Some(serde_json::from_str(&text).unwrap_or_else(|e| unreadable_marker(&path, &e.to_string())))
}

fn unreadable_marker(path: &Path, why: &str) -> RevokedMarker {
    let revoked_at = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .map(DateTime::<Utc>::from)
        .unwrap_or_else(|_| Utc::now());
    RevokedMarker {
        revoked_at,
        server_url: String::new(),
        host_id: None,
        message: format!("{} exists but cannot be read ({why})", path.display()),
    }
}

/// What [`forget_revoked_identity`] removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forgotten {
    /// A credential file was there and is gone.
    pub credential: bool,
    /// A revoked marker was there and is gone.
    pub marker: bool,
}

/// The operator's way back after a revocation (`patchctl-agent reenroll`): removes the
/// credential, then the marker, so that a failure half-way leaves the agent stopped.
pub fn forget_revoked_identity(config_dir: &Path) -> std::io::Result<Forgotten> {
    let remove = |name: &str| match std::fs::remove_file(config_dir.join(name)) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    };
    let credential = remove(CREDENTIAL_FILE)?;
    let marker = remove(REVOKED_FILE)?;
    if credential || marker {
        File::open(config_dir)?.sync_all()?;
    }
    Ok(Forgotten { credential, marker })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use std::os::unix::fs::MetadataExt;

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
            issued_at: Some(Utc::now()),
        };
        save_identity(d.path(), &id).unwrap();
        let back = load_identity(d.path()).unwrap().unwrap();
        assert_eq!(back.host_id, id.host_id);
        assert_eq!(back.credential, id.credential);
        assert_eq!(back.issued_at, id.issued_at);
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

    fn private_dir() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::set_permissions(
            d.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap();
        d
    }

    #[test]
    fn an_identity_from_before_rotation_loads_and_is_due() {
        let d = private_dir();
        let host = Uuid::new_v4();
        let old =
            format!(r#"{{"host_id": "{host}", "credential": "c", "server_url": "https://x"}}"#);
        write_private(&d.path().join(CREDENTIAL_FILE), old.as_bytes()).unwrap();
        let id = load_identity(d.path()).unwrap().unwrap();
        assert_eq!(id.issued_at, None);
        assert!(id.due_for_rotation(Duration::from_secs(86_400), Utc::now()));
    }

    #[test]
    fn rotation_is_due_by_age() {
        let now = Utc::now();
        let day = Duration::from_secs(86_400);
        let at = |secs_ago: i64| Identity {
            host_id: Uuid::nil(),
            credential: Secret::new("c"),
            server_url: "https://x".into(),
            issued_at: Some(now - chrono::Duration::seconds(secs_ago)),
        };
        for (age, due) in [
            (0, false),
            (86_399, false),
            (86_400, true),
            (10 * 86_400, true),
        ] {
            assert_eq!(at(age).due_for_rotation(day, now), due, "{age}");
        }
        // Issued "in the future" (a clock that went back): not due.
        assert!(!at(-3600).due_for_rotation(day, now));
    }

    #[test]
    fn revoked_marker_is_private_and_reenroll_removes_it_with_the_credential() {
        let d = private_dir();
        assert_eq!(load_revoked(d.path()), None);
        let marker = RevokedMarker {
            revoked_at: Utc::now(),
            server_url: "https://p".into(),
            host_id: Some(Uuid::new_v4()),
            message: "host revoked by an operator".into(),
        };
        let id = Identity {
            host_id: Uuid::new_v4(),
            credential: Secret::new("canary-cred-2"),
            server_url: "https://p".into(),
            issued_at: None,
        };
        save_identity(d.path(), &id).unwrap();
        write_revoked(d.path(), &marker).unwrap();
        assert_eq!(load_revoked(d.path()), Some(marker));
        let text = std::fs::read_to_string(d.path().join(REVOKED_FILE)).unwrap();
        assert!(!text.contains("canary-cred-2"), "{text}");
        let mode = std::fs::metadata(d.path().join(REVOKED_FILE))
            .unwrap()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(
            forget_revoked_identity(d.path()).unwrap(),
            Forgotten {
                credential: true,
                marker: true
            }
        );
        assert_eq!(load_revoked(d.path()), None);
        assert!(load_identity(d.path()).unwrap().is_none());
        assert_eq!(
            forget_revoked_identity(d.path()).unwrap(),
            Forgotten {
                credential: false,
                marker: false
            }
        );
    }

    #[test]
    fn an_unreadable_marker_still_means_revoked() {
        let d = private_dir();
        write_private(&d.path().join(REVOKED_FILE), b"{garbage").unwrap();
        let m = load_revoked(d.path()).expect("still revoked");
        assert!(m.message.contains("cannot be read"), "{m:?}");
    }
}
