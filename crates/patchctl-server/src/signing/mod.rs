//! Command signing on the platform (issue 15 §1, docs/signing.md).
//!
//! Each organisation has an ed25519 command-signing key in the file that the setting
//! `command_signing_key` names ([`file`]); its public key is recorded in the database
//! (`orgs.command_key`) so that a node whose file holds another key refuses to sign
//! instead of signing with it. A command is signed when it is queued, by the API or
//! the rollout engine, over a [`CommandStatement`] of its organisation, host, id,
//! operation, validated parameters, queue time and expiry; the agent trusts nothing
//! else about it. A row written straight into the database carries no valid
//! signature, and the agent refuses it.
//!
//! A rotation (`patchctl admin signing-key rotate`, [`admin::rotate`]) signs the
//! organisation's unfinished commands again with the new key, each only when its
//! signature by the retired key verifies: the platform never signs what it did not
//! sign before, and after the rotation nothing signed by the retired key is ever signed
//! again (a leaked retired key gets nothing through).
//!
//! Without a configured file (settings built in code, as tests and benchmarks do) the
//! keys live in memory for the life of the process ([`Signer::ephemeral`]).

pub mod admin;
pub mod file;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, Utc};
use patchctl_proto::command::Command;
use patchctl_proto::signing::{
    ApproverList, COMMAND_STATEMENT_KIND, CommandKeyInfo, CommandStatement, SignedDocument,
};
use patchctl_release::PublicKey;
use patchctl_storage::{NewCommand, Storage};
use uuid::Uuid;

pub use file::KeyFile;

/// The key file's name beside `server.json` when `command_signing_key` is not set.
pub const DEFAULT_FILE_NAME: &str = "command-signing.key";
/// How long a node trusts that its key is the one the database records.
const RECORD_CHECK: Duration = Duration::from_secs(30);

/// Why a command could not be signed, or the key file not used.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    /// The key file is unreadable, malformed or too open.
    #[error("command-signing key file {path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// The organisation has no key (in `patchctl admin signing-key rotate`).
    #[error(
        "organisation {org} has no command-signing key yet; create it with `patchctl admin signing-key create`"
    )]
    NoKey {
        /// The organisation.
        org: Uuid,
    },
    /// The database records a key for the organisation that this node's file lacks.
    #[error(
        "organisation {org}'s command-signing key {recorded} is not in this node's key file {path}; copy the key file from the node that created it (every node uses the same file)"
    )]
    Missing {
        /// The organisation.
        org: Uuid,
        /// The recorded key's id.
        recorded: String,
        /// This node's file.
        path: PathBuf,
    },
    /// This node's file holds another key than the database records.
    #[error(
        "organisation {org}'s command-signing key in {path} is {here}, but the platform's is {recorded}; copy the current key file to this node (after a rotation, every node needs the new file)"
    )]
    Mismatch {
        /// The organisation.
        org: Uuid,
        /// This node's key id.
        here: String,
        /// The recorded key id.
        recorded: String,
        /// This node's file.
        path: PathBuf,
    },
    /// Signing itself was refused.
    #[error("cannot sign: {0}")]
    Sign(String),
    /// The database.
    #[error(transparent)]
    Storage(#[from] patchctl_storage::StorageError),
}

struct Loaded {
    keys: KeyFile,
    /// Modification time and length of the file when read.
    stamp: Option<(SystemTime, u64)>,
    /// (org, key id) → when this node last saw the database record that key.
    recorded: HashMap<(Uuid, String), Instant>,
}

/// The platform's command signer (one per process, in `AppState`).
pub struct Signer {
    path: Option<PathBuf>,
    loaded: RwLock<Loaded>,
}

fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

fn ms(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}

impl Signer {
    /// Keys kept in `path` (read now when it exists; created when first needed).
    pub fn open(path: PathBuf) -> Result<Signer, SigningError> {
        let keys = KeyFile::read(&path)?.unwrap_or_default();
        Ok(Signer {
            loaded: RwLock::new(Loaded {
                stamp: stamp(&path),
                keys,
                recorded: HashMap::new(),
            }),
            path: Some(path),
        })
    }

    /// Keys in memory only, for this process's life (no file configured).
    pub fn ephemeral() -> Signer {
        Signer {
            path: None,
            loaded: RwLock::new(Loaded {
                keys: KeyFile::default(),
                stamp: None,
                recorded: HashMap::new(),
            }),
        }
    }

    /// The key file, when there is one.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Loaded> {
        self.loaded.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Loaded> {
        self.loaded.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Re-reads the file when it changed (its modification time or length): one `stat`
    /// per use, so the heartbeat right after a rotation already announces it.
    fn refresh(&self) -> Result<(), SigningError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let now_stamp = stamp(path);
        let changed = self.read().stamp != now_stamp;
        if changed {
            let keys = KeyFile::read(path)?.unwrap_or_default();
            let mut l = self.write();
            l.keys = keys;
            l.stamp = now_stamp;
            l.recorded.clear();
            tracing::info!(target: "audit", path = %path.display(), "command-signing key file re-read");
        }
        Ok(())
    }

    /// The organisation's current public key, creating the key when the organisation
    /// has none anywhere, and checking it against the database's record.
    pub async fn ensure(&self, store: &dyn Storage, org: Uuid) -> Result<PublicKey, SigningError> {
        self.refresh()?;
        let have = self.read().keys.orgs.get(&org).map(|k| k.public);
        let Some(path) = self.path.clone() else {
            // In memory: no record, no other node to agree with.
            return Ok(match have {
                Some(k) => k,
                None => self.write().keys.create(org).public,
            });
        };
        if let Some(key) = have {
            let fresh = self
                .read()
                .recorded
                .get(&(org, key.key_id()))
                .is_some_and(|at| at.elapsed() < RECORD_CHECK);
            if fresh {
                return Ok(key);
            }
        }
        let recorded = store.org_command_key(org).await?;
        let key = match (have, recorded.as_deref().and_then(PublicKey::from_line)) {
            (Some(here), Some(rec)) if here == rec => here,
            (Some(here), Some(rec)) => {
                return Err(SigningError::Mismatch {
                    org,
                    here: here.key_id(),
                    recorded: rec.key_id(),
                    path,
                });
            }
            (Some(here), None) => {
                self.record(store, org, here, &path).await?;
                here
            }
            (None, Some(rec)) => {
                return Err(SigningError::Missing {
                    org,
                    recorded: rec.key_id(),
                    path,
                });
            }
            (None, None) => {
                let created = file::locked(&path, || {
                    let mut keys = KeyFile::read(&path)?.unwrap_or_default();
                    let made = !keys.orgs.contains_key(&org);
                    let key = keys.create(org).public;
                    if made {
                        keys.write(&path)?;
                    }
                    Ok((keys, key, made))
                })?;
                let (keys, key, made) = created;
                {
                    let mut l = self.write();
                    l.keys = keys;
                    l.stamp = stamp(&path);
                }
                if made {
                    tracing::info!(target: "audit", %org, key_id = %key.key_id(), path = %path.display(),
                        "command-signing key created for the organisation");
                }
                self.record(store, org, key, &path).await?;
                key
            }
        };
        self.write()
            .recorded
            .insert((org, key.key_id()), Instant::now());
        Ok(key)
    }

    async fn record(
        &self,
        store: &dyn Storage,
        org: Uuid,
        key: PublicKey,
        path: &Path,
    ) -> Result<(), SigningError> {
        if store.set_org_command_key(org, &key.to_line(), None).await? {
            return Ok(());
        }
        // Another node recorded one first.
        match store
            .org_command_key(org)
            .await?
            .as_deref()
            .and_then(PublicKey::from_line)
        {
            Some(rec) if rec == key => Ok(()),
            Some(rec) => Err(SigningError::Mismatch {
                org,
                here: key.key_id(),
                recorded: rec.key_id(),
                path: path.to_owned(),
            }),
            None => Err(SigningError::NoKey { org }),
        }
    }

    /// The command to queue: `cmd` for `host` of `org`, with a fresh id, signed.
    pub async fn command(
        &self,
        store: &dyn Storage,
        org: Uuid,
        host: Uuid,
        cmd: &Command,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<NewCommand, SigningError> {
        self.command_approved(store, org, host, cmd, now, expires_at, None)
            .await
    }

    /// [`Signer::command`] carrying an approver's signature of the manifest the
    /// install's packages come from.
    #[allow(clippy::too_many_arguments)]
    pub async fn command_approved(
        &self,
        store: &dyn Storage,
        org: Uuid,
        host: Uuid,
        cmd: &Command,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        approval: Option<SignedDocument>,
    ) -> Result<NewCommand, SigningError> {
        let key = self.ensure(store, org).await?;
        let (now, expires_at) = (ms(now), ms(expires_at));
        let id = Uuid::new_v4();
        let statement = CommandStatement {
            kind: COMMAND_STATEMENT_KIND.into(),
            org,
            host,
            command: id,
            operation: cmd.kind().to_owned(),
            params: cmd.params(),
            queued_at: now,
            expires_at,
            approval,
        };
        let signed = {
            let l = self.read();
            let keys = l
                .keys
                .orgs
                .get(&org)
                .filter(|k| k.public == key)
                .ok_or(SigningError::NoKey { org })?;
            patchctl_release::command::sign_command(&keys.secret, &statement)
                .map_err(|e| SigningError::Sign(e.to_string()))?
        };
        Ok(NewCommand {
            id,
            org_id: org,
            host_id: host,
            kind: statement.operation,
            params: statement.params,
            now,
            expires_at,
            signed: Some(signed),
        })
    }

    /// The organisation's key for an enrollment answer (created when it has none).
    pub async fn enrollment_key(
        &self,
        store: &dyn Storage,
        org: Uuid,
    ) -> Result<CommandKeyInfo, SigningError> {
        let key = self.ensure(store, org).await?;
        let approvers = self.approvers(org).map(|(doc, _)| doc);
        Ok(CommandKeyInfo {
            org,
            key: key.to_line(),
            rotations: Vec::new(),
            approvers,
        })
    }

    /// The organisation's approver list, as signed and as read (none when it has none).
    pub fn approvers(&self, org: Uuid) -> Option<(SignedDocument, ApproverList)> {
        if let Err(e) = self.refresh() {
            tracing::error!(error = %e, "command-signing keys not re-read");
        }
        self.read().keys.orgs.get(&org)?.approvers.clone()
    }

    /// For a heartbeat answer: the current key and the rotations from the key the
    /// agent reported, when that is not the current one, or the approver list when the
    /// agent reported an older serial (`None` when the agent is current, or the
    /// organisation has no key yet).
    pub fn announce(
        &self,
        org: Uuid,
        agent_key_id: Option<&str>,
        agent_approvers: Option<u64>,
    ) -> Option<CommandKeyInfo> {
        if let Err(e) = self.refresh() {
            tracing::error!(error = %e, "command-signing keys not re-read");
        }
        let l = self.read();
        let keys = l.keys.orgs.get(&org)?;
        let current = keys.public.key_id();
        let serial = keys.approvers.as_ref().map(|(_, l)| l.serial);
        if agent_key_id == Some(current.as_str()) && serial <= agent_approvers {
            return None;
        }
        let from = agent_key_id
            .and_then(|id| keys.retired.iter().position(|k| k.key_id() == id))
            .map_or(keys.rotations.len(), |i| i);
        Some(CommandKeyInfo {
            org,
            key: keys.public.to_line(),
            rotations: keys.rotations[from..].to_vec(),
            approvers: keys.approvers.as_ref().map(|(d, _)| d.clone()),
        })
    }
}

#[cfg(test)]
mod tests;
