//! Key material and its files.
//!
//! A public key file (`.pub`) is text: `#` comments and one `ed25519:<64 hex>` line per
//! key; the agent's build reads the same format for its built-in roots. A secret key
//! file (`.key`) is JSON with the role, the secret and the public key; whoever writes
//! one gives it mode 0600, and it belongs offline for a root.

use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// An ed25519 public key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(pub(crate) VerifyingKey);

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({})", self.key_id())
    }
}

/// Why key material could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Not `ed25519:` followed by 64 hex digits.
    #[error(
        "line {line}: expected `ed25519:` followed by 64 hex digits (a public key written by `patchctl release keygen`)"
    )]
    PublicLine {
        /// 1-based line number.
        line: usize,
    },
    /// The bytes are not a valid ed25519 point (or a weak one).
    #[error("line {line}: not a valid ed25519 public key")]
    PublicPoint {
        /// 1-based line number.
        line: usize,
    },
    /// No key in the file.
    #[error("no public key in the file (only comments or nothing)")]
    NoKey,
    /// The secret key file is not what `patchctl release keygen` writes.
    #[error("not a PatchCTL release secret key: {0}")]
    Secret(String),
}

impl PublicKey {
    /// From 32 raw bytes; weak (small-order) points are refused.
    pub fn from_bytes(bytes: &[u8; 32]) -> Option<PublicKey> {
        let k = VerifyingKey::from_bytes(bytes).ok()?;
        if k.is_weak() {
            return None;
        }
        Some(PublicKey(k))
    }

    /// From 64 hex digits.
    pub fn from_hex(s: &str) -> Option<PublicKey> {
        let mut b = [0u8; 32];
        hex::decode_to_slice(s, &mut b).ok()?;
        PublicKey::from_bytes(&b)
    }

    /// 64 hex digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0.as_bytes())
    }

    /// The key id signatures name: the first 8 bytes of SHA-256 of the key, hex.
    pub fn key_id(&self) -> String {
        hex::encode(&Sha256::digest(self.0.as_bytes())[..8])
    }

    /// The `.pub` file line.
    pub fn to_line(&self) -> String {
        format!("ed25519:{}", self.to_hex())
    }

    /// Reads one `ed25519:<64 hex>` line (surrounding whitespace ignored).
    pub fn from_line(line: &str) -> Option<PublicKey> {
        line.trim()
            .strip_prefix("ed25519:")
            .filter(|h| h.len() == 64)
            .and_then(PublicKey::from_hex)
    }

    /// Reads every key of a `.pub` text (comments and blank lines skipped).
    pub fn parse_file(text: &str) -> Result<Vec<PublicKey>, KeyError> {
        let mut keys = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let hex_part = line
                .strip_prefix("ed25519:")
                .filter(|h| h.len() == 64)
                .ok_or(KeyError::PublicLine { line: i + 1 })?;
            keys.push(PublicKey::from_hex(hex_part).ok_or(KeyError::PublicPoint { line: i + 1 })?);
        }
        if keys.is_empty() {
            return Err(KeyError::NoKey);
        }
        Ok(keys)
    }
}

/// What a secret key is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyRole {
    /// Signs the list of signing keys. Kept offline.
    Root,
    /// Signs release manifests.
    Signing,
    /// An organisation's command-signing key: signs commands and its own successor.
    Command,
    /// A person's approver key: signs manifest approvals (kept by the approver).
    Approver,
}

impl KeyRole {
    /// The role's name.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyRole::Root => "root",
            KeyRole::Signing => "signing",
            KeyRole::Command => "command",
            KeyRole::Approver => "approver",
        }
    }
}

#[derive(Serialize, Deserialize)]
struct SecretFile {
    kind: String,
    role: KeyRole,
    secret: String,
    public: String,
}

/// An ed25519 secret key with its role. `Debug` shows only the role and key id.
pub struct SecretKey {
    pub(crate) role: KeyRole,
    pub(crate) key: SigningKey,
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SecretKey({} {})",
            self.role.as_str(),
            self.public().key_id()
        )
    }
}

const SECRET_KIND: &str = "patchctl-release-secret-key";

impl SecretKey {
    /// A key from 32 random bytes (the caller's CSPRNG).
    pub fn from_seed(role: KeyRole, seed: [u8; 32]) -> SecretKey {
        SecretKey {
            role,
            key: SigningKey::from_bytes(&seed),
        }
    }

    /// Its role.
    pub fn role(&self) -> KeyRole {
        self.role
    }

    /// Its public key.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.key.verifying_key())
    }

    /// The `.key` file's JSON.
    pub fn to_file(&self) -> String {
        let f = SecretFile {
            kind: SECRET_KIND.into(),
            role: self.role,
            secret: hex::encode(self.key.to_bytes()),
            public: self.public().to_hex(),
        };
        serde_json::to_string_pretty(&f).unwrap_or_default() + "\n"
    }

    /// Reads a `.key` file's JSON; the stored public key must match the secret. The
    /// error never repeats the file's content.
    pub fn from_file(text: &str) -> Result<SecretKey, KeyError> {
        let f: SecretFile = serde_json::from_str(text).map_err(|_| {
            KeyError::Secret("not the JSON `patchctl release keygen` writes".into())
        })?;
        if f.kind != SECRET_KIND {
            return Err(KeyError::Secret(format!("kind is not {SECRET_KIND:?}")));
        }
        let mut seed = [0u8; 32];
        hex::decode_to_slice(&f.secret, &mut seed)
            .map_err(|_| KeyError::Secret("the secret is not 64 hex digits".into()))?;
        let key = SecretKey::from_seed(f.role, seed);
        if key.public().to_hex() != f.public {
            return Err(KeyError::Secret(
                "the public key in the file does not belong to its secret".into(),
            ));
        }
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_files_parse_and_refuse_clearly() {
        let k = SecretKey::from_seed(KeyRole::Root, [7; 32]).public();
        let text = format!("# a root\n\n{}\n", k.to_line());
        assert_eq!(PublicKey::parse_file(&text).unwrap(), vec![k]);
        assert_eq!(PublicKey::parse_file("# nothing\n"), Err(KeyError::NoKey));
        assert_eq!(
            PublicKey::parse_file("ed25519:abcd\n"),
            Err(KeyError::PublicLine { line: 1 })
        );
        // The identity point is a weak key.
        let weak = format!("ed25519:01{}", "0".repeat(62));
        assert_eq!(
            PublicKey::parse_file(&weak),
            Err(KeyError::PublicPoint { line: 1 })
        );
    }

    #[test]
    fn secret_files_round_trip_and_never_echo_content() {
        let k = SecretKey::from_seed(KeyRole::Signing, [9; 32]);
        let back = SecretKey::from_file(&k.to_file()).unwrap();
        assert_eq!(back.public(), k.public());
        assert_eq!(back.role(), KeyRole::Signing);
        let secret_hex = hex::encode([9u8; 32]);
        let tampered = k.to_file().replace(&k.public().to_hex(), &"ab".repeat(32));
        let e = SecretKey::from_file(&tampered).unwrap_err().to_string();
        assert!(!e.contains(&secret_hex), "{e}");
        assert!(!format!("{k:?}").contains(&secret_hex));
    }
}
