//! The command-signing key file: each organisation's current secret key and the
//! rotations that led to it. JSON, mode 0600, written atomically (temporary file,
//! fsync, rename) under an exclusive lock on `<file>.lock`, so that `patchctl admin
//! signing-key` and a platform node never lose each other's change. The secrets never
//! leave this file: not into the database, a log, an error or an answer.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use patchctl_proto::signing::{APPROVERS_KIND, ApproverList, SignedDocument};
use patchctl_release::{KeyRole, PublicKey, SecretKey};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::SigningError;

const FILE_KIND: &str = "patchctl-command-signing-keys";

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDoc {
    kind: String,
    orgs: Vec<OrgEntry>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct OrgEntry {
    org: Uuid,
    /// The secret key, as `patchctl release keygen` writes one (role `command`).
    key: serde_json::Value,
    /// Every rotation, oldest first; the last one's `next` is `key`'s public key.
    #[serde(default)]
    rotations: Vec<SignedDocument>,
    /// The approver list, signed by `key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    approvers: Option<SignedDocument>,
}

/// One organisation's keys.
pub struct OrgKeys {
    /// The key that signs now.
    pub secret: SecretKey,
    /// Its public key.
    pub public: PublicKey,
    /// The rotations, oldest first.
    pub rotations: Vec<SignedDocument>,
    /// The keys those rotations retired, oldest first (`previous` of each).
    pub retired: Vec<PublicKey>,
    /// The approver list as signed by the current key, with its content.
    pub approvers: Option<(SignedDocument, ApproverList)>,
}

/// The whole file.
#[derive(Default)]
pub struct KeyFile {
    /// By organisation.
    pub orgs: BTreeMap<Uuid, OrgKeys>,
}

fn invalid(path: &Path, reason: impl Into<String>) -> SigningError {
    SigningError::File {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

impl KeyFile {
    /// Parses the file's text; `path` only names it in errors. Never echoes content.
    pub fn parse(path: &Path, text: &str) -> Result<KeyFile, SigningError> {
        let doc: FileDoc = serde_json::from_str(text).map_err(|e| {
            invalid(
                path,
                format!(
                    "not a command-signing key file (line {}, column {})",
                    e.line(),
                    e.column()
                ),
            )
        })?;
        if doc.kind != FILE_KIND {
            return Err(invalid(path, format!("its kind is not {FILE_KIND:?}")));
        }
        let mut orgs = BTreeMap::new();
        for e in doc.orgs {
            let secret = SecretKey::from_file(&e.key.to_string())
                .map_err(|err| invalid(path, format!("organisation {}: {err}", e.org)))?;
            if secret.role() != KeyRole::Command {
                return Err(invalid(
                    path,
                    format!("organisation {}: not a command key", e.org),
                ));
            }
            let public = secret.public();
            let mut retired = Vec::with_capacity(e.rotations.len());
            if let Some(first) = e.rotations.first() {
                let start = rotation_previous(first).ok_or_else(|| {
                    invalid(
                        path,
                        format!("organisation {}: a malformed rotation", e.org),
                    )
                })?;
                let passed = patchctl_release::command::follow_rotations(
                    &start,
                    e.org,
                    &e.rotations,
                    Some(&public),
                )
                .map_err(|err| invalid(path, format!("organisation {}: {err}", e.org)))?;
                retired.push(start);
                retired.extend(passed.iter().take(passed.len().saturating_sub(1)).copied());
            }
            let approvers = match e.approvers {
                None => None,
                Some(doc) => {
                    let list =
                        patchctl_release::command::approval::verify_approvers(&doc, &public, e.org)
                            .map_err(|err| {
                                invalid(
                                    path,
                                    format!("organisation {}: approver list: {err}", e.org),
                                )
                            })?;
                    Some((doc, list))
                }
            };
            orgs.insert(
                e.org,
                OrgKeys {
                    secret,
                    public,
                    rotations: e.rotations,
                    retired,
                    approvers,
                },
            );
        }
        Ok(KeyFile { orgs })
    }

    /// The file's text.
    pub fn to_text(&self) -> String {
        let doc = FileDoc {
            kind: FILE_KIND.into(),
            orgs: self
                .orgs
                .iter()
                .map(|(org, k)| OrgEntry {
                    org: *org,
                    key: serde_json::from_str(&k.secret.to_file()).unwrap_or_default(),
                    rotations: k.rotations.clone(),
                    approvers: k.approvers.as_ref().map(|(d, _)| d.clone()),
                })
                .collect(),
        };
        serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n"
    }

    /// Reads `path`; `None` when it does not exist. A file that others may read is
    /// refused: it holds secrets.
    pub fn read(path: &Path) -> Result<Option<KeyFile>, SigningError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(invalid(path, format!("cannot read it: {e}"))),
        };
        let mode = std::fs::metadata(path)
            .map_err(|e| invalid(path, format!("cannot read it: {e}")))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(invalid(
                path,
                format!(
                    "its mode is {:o}: group or others may read the secret keys; run `chmod 600 {}`",
                    mode & 0o777,
                    path.display()
                ),
            ));
        }
        KeyFile::parse(path, &text).map(Some)
    }

    /// Writes the file atomically with mode 0600.
    pub fn write(&self, path: &Path) -> Result<(), SigningError> {
        let tmp = temp_path(path);
        let io = |e: std::io::Error| invalid(path, format!("cannot write it: {e}"));
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io)?;
        f.write_all(self.to_text().as_bytes()).map_err(io)?;
        f.sync_all().map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)?;
        Ok(())
    }

    /// A new random key for `org` (which must have none).
    pub fn create(&mut self, org: Uuid) -> &OrgKeys {
        self.orgs.entry(org).or_insert_with(|| {
            let secret = random_key();
            OrgKeys {
                public: secret.public(),
                secret,
                rotations: Vec::new(),
                retired: Vec::new(),
                approvers: None,
            }
        })
    }

    /// Replaces `org`'s key with a new random one that the old one vouches for.
    /// Returns the old and the new public key.
    pub fn rotate(
        &mut self,
        org: Uuid,
        now: DateTime<Utc>,
    ) -> Result<(PublicKey, PublicKey), SigningError> {
        let keys = self.orgs.get_mut(&org).ok_or(SigningError::NoKey { org })?;
        let next = random_key();
        let doc = patchctl_release::command::sign_rotation(&keys.secret, &next.public(), org, now)
            .map_err(|e| SigningError::Sign(e.to_string()))?;
        let old = keys.public;
        keys.rotations.push(doc);
        keys.retired.push(old);
        keys.public = next.public();
        keys.secret = next;
        // The approver list is signed again by the new key (a higher serial), so that
        // agents enrolling from now on can verify it.
        if let Some((_, list)) = keys.approvers.take() {
            resign_approvers(keys, list, now)?;
        }
        Ok((old, keys.public))
    }

    /// Changes `org`'s approver list with `change` and signs it again (serial + 1).
    pub fn change_approvers(
        &mut self,
        org: Uuid,
        now: DateTime<Utc>,
        change: impl FnOnce(&mut ApproverList) -> Result<(), SigningError>,
    ) -> Result<&ApproverList, SigningError> {
        let keys = self.orgs.get_mut(&org).ok_or(SigningError::NoKey { org })?;
        let mut list = keys
            .approvers
            .as_ref()
            .map(|(_, l)| l.clone())
            .unwrap_or(ApproverList {
                kind: APPROVERS_KIND.into(),
                org,
                serial: 0,
                required: false,
                approvers: Vec::new(),
                created: now,
            });
        change(&mut list)?;
        resign_approvers(keys, list, now)?;
        Ok(&keys.approvers.as_ref().expect("just signed").1)
    }
}

fn resign_approvers(
    keys: &mut OrgKeys,
    mut list: ApproverList,
    now: DateTime<Utc>,
) -> Result<(), SigningError> {
    list.serial += 1;
    list.created = now;
    let doc = patchctl_release::command::approval::sign_approvers(&keys.secret, &list)
        .map_err(|e| SigningError::Sign(e.to_string()))?;
    keys.approvers = Some((doc, list));
    Ok(())
}

fn rotation_previous(doc: &SignedDocument) -> Option<PublicKey> {
    let r: patchctl_proto::signing::KeyRotation = serde_json::from_str(&doc.signed).ok()?;
    PublicKey::from_line(&r.previous)
}

fn random_key() -> SecretKey {
    let mut seed = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut seed);
    SecretKey::from_seed(KeyRole::Command, seed)
}

fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Runs `f` holding an exclusive lock on `<path>.lock` (created 0600 when missing).
pub fn locked<T>(
    path: &Path,
    f: impl FnOnce() -> Result<T, SigningError>,
) -> Result<T, SigningError> {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    let lock_path = path.with_file_name(name);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| invalid(path, format!("cannot create its directory: {e}")))?;
    }
    let lock = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&lock_path)
        .map_err(|e| invalid(&lock_path, format!("cannot open the lock: {e}")))?;
    // flock(2), released when the descriptor closes (the end of this function).
    let lock = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| invalid(&lock_path, format!("cannot take the lock: {e}")))?;
    let out = f();
    drop(lock);
    out
}
