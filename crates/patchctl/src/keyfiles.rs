//! Key files on the operator's disk: a secret key (`PATH.key`, 0600, refused when others
//! may read it) and its public key (`PATH.pub`), for `patchctl release` and for an
//! approver's own key (`patchctl approvals keygen`).

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use patchctl_release::{KeyRole, SecretKey};

/// 32 random bytes for a new key.
pub fn random_seed() -> anyhow::Result<[u8; 32]> {
    let mut seed = [0u8; 32];
    rand::fill(&mut seed);
    Ok(seed)
}

/// Writes `bytes` to a new file with `mode`; never overwrites.
pub fn write_new(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("cannot create {} (it must not exist yet)", path.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}

pub fn write_pair(base: &Path, key: &SecretKey) -> anyhow::Result<(PathBuf, PathBuf)> {
    let secret = base.with_extension("key");
    let public = base.with_extension("pub");
    write_new(&secret, key.to_file().as_bytes(), 0o600)?;
    let comment = match key.role() {
        KeyRole::Root => "PatchCTL release ROOT key: agents built with this file trust it",
        KeyRole::Signing => {
            "PatchCTL release signing key: list it with `patchctl release sign-keys`"
        }
        KeyRole::Command => "PatchCTL command-signing key",
        KeyRole::Approver => {
            "PatchCTL approver key: register it with `patchctl admin approvers add`"
        }
    };
    write_new(
        &public,
        format!(
            "# {comment} (key id {})\n{}\n",
            key.public().key_id(),
            key.public().to_line()
        )
        .as_bytes(),
        0o644,
    )?;
    Ok((secret, public))
}

pub fn read_secret(path: &Path, role: KeyRole) -> anyhow::Result<SecretKey> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    if meta.permissions().mode() & 0o077 != 0 {
        bail!(
            "{} can be read by others (mode {:o}); a secret key must be private: chmod 600 {}",
            path.display(),
            meta.permissions().mode() & 0o777,
            path.display()
        );
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let key = SecretKey::from_file(&text).with_context(|| format!("{}", path.display()))?;
    if key.role() != role {
        bail!(
            "{} is a {} key; this needs a {} key",
            path.display(),
            key.role().as_str(),
            role.as_str()
        );
    }
    Ok(key)
}
