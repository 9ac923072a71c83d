//! Signed PatchCTL releases, two levels deep the way TUF and Tailscale's distsign do it.
//!
//! Offline **root** keys sign a [`SigningKeyList`] that expires; a **signing** key of
//! that list signs each release [`Manifest`] (product, version, target, SHA-256, size,
//! channel, expiry). [`verify_bundle`] checks a [`ReleaseBundle`] against the roots the
//! caller trusts (the agent's are built into its binary) with `verify_strict` only; an
//! empty root set, an empty key list or a missing signature is a refusal, never an
//! acceptance. [`Verified::check_artifact`] then holds the artifact to the manifest.
//!
//! Each signature covers `patchctl-release/v1/<document kind>\n` followed by the exact
//! signed text, so a signature over a key list can never pass as one over a manifest.
//! No I/O here: the CLI reads and writes the files, the agent downloads.

pub mod command;
pub mod keys;
pub mod version;

use chrono::{DateTime, Utc};
use ed25519_dalek::{Signature, Signer};
pub use keys::{KeyError, KeyRole, PublicKey, SecretKey};
pub use patchctl_proto::release::{
    Manifest, ReleaseBundle, SignatureEntry, SignedDocument, SigningKeyList,
};
use sha2::{Digest, Sha256};
pub use version::{ReleaseVersion, VersionError};

/// `kind` of a signing-key list.
pub const KEY_LIST_KIND: &str = "patchctl-signing-keys";
/// `kind` of a manifest.
pub const MANIFEST_KIND: &str = "patchctl-release-manifest";

fn message(kind: &str, signed: &str) -> Vec<u8> {
    let mut m = format!("patchctl-release/v1/{kind}\n").into_bytes();
    m.extend_from_slice(signed.as_bytes());
    m
}

/// Why a release was refused. Each message says what was wrong; none echoes a key's
/// secret or more of the document than an id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The verifier trusts no root at all.
    #[error(
        "no trusted release root: this binary was built without one (build with PATCHCTL_RELEASE_ROOTS=<root .pub files>), so no release can be verified"
    )]
    NoTrustedRoots,
    /// A document is not what it should be.
    #[error("the {document} is malformed: {reason}")]
    Malformed {
        /// `signing-key list` or `manifest`.
        document: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// A document carries no signature at all.
    #[error("the {document} carries no signature")]
    Unsigned {
        /// `signing-key list` or `manifest`.
        document: &'static str,
    },
    /// Signatures exist, but none is by a trusted key.
    #[error("the {document} is signed only by keys this agent does not trust ({key_ids})")]
    UnknownKey {
        /// `signing-key list` (roots) or `manifest` (signing keys).
        document: &'static str,
        /// The key ids that signed.
        key_ids: String,
    },
    /// A signature by a trusted key does not verify.
    #[error("the {document}'s signature by key {key_id} does not verify")]
    BadSignature {
        /// `signing-key list` or `manifest`.
        document: &'static str,
        /// The key id.
        key_id: String,
    },
    /// The signing-key list names no key.
    #[error("the signing-key list is empty")]
    EmptyKeyList,
    /// The signing-key list expired.
    #[error(
        "the signing-key list expired at {expired} (a frozen or replayed list); the roots must sign a fresh one"
    )]
    KeyListExpired {
        /// Its expiry.
        expired: DateTime<Utc>,
    },
    /// The manifest expired.
    #[error("the manifest expired at {expired}; the release must be signed again")]
    ManifestExpired {
        /// Its expiry.
        expired: DateTime<Utc>,
    },
    /// Another product.
    #[error("the manifest is for product {found:?}, not {expected:?}")]
    WrongProduct {
        /// Asked for.
        expected: String,
        /// In the manifest.
        found: String,
    },
    /// Another target.
    #[error("the manifest is for target {found:?}, but this agent runs on {expected:?}")]
    WrongTarget {
        /// Asked for.
        expected: String,
        /// In the manifest.
        found: String,
    },
    /// Another version than announced.
    #[error("the platform announced version {expected}, but the manifest is for {found}")]
    WrongVersion {
        /// Announced.
        expected: String,
        /// In the manifest.
        found: String,
    },
    /// Not newer than what was accepted before (rollback protection).
    #[error(
        "version {version} is not newer than {highest}, the highest version this agent has accepted (rollback protection)"
    )]
    NotNewer {
        /// The manifest's version.
        version: String,
        /// The highest accepted so far.
        highest: String,
    },
    /// The artifact's size is not the manifest's.
    #[error("the artifact is {found} bytes, the manifest says {expected}")]
    SizeMismatch {
        /// From the manifest.
        expected: u64,
        /// Downloaded.
        found: u64,
    },
    /// The artifact's SHA-256 is not the manifest's.
    #[error("the artifact's SHA-256 is {found}, the manifest says {expected}")]
    HashMismatch {
        /// From the manifest.
        expected: String,
        /// Computed.
        found: String,
    },
}

/// The roots a verifier trusts.
#[derive(Debug, Clone, Default)]
pub struct TrustedRoots {
    keys: Vec<PublicKey>,
}

impl TrustedRoots {
    /// These keys (duplicates are harmless).
    pub fn new(keys: Vec<PublicKey>) -> TrustedRoots {
        TrustedRoots { keys }
    }

    /// The roots' key ids.
    pub fn key_ids(&self) -> Vec<String> {
        self.keys.iter().map(PublicKey::key_id).collect()
    }

    /// Whether a key with this id is a trusted root.
    pub fn contains(&self, key: &PublicKey) -> bool {
        self.keys.contains(key)
    }
}

pub(crate) fn check_signatures(
    document: &'static str,
    kind: &str,
    doc: &SignedDocument,
    trusted: &[PublicKey],
) -> Result<String, VerifyError> {
    if doc.signatures.is_empty() {
        return Err(VerifyError::Unsigned { document });
    }
    let msg = message(kind, &doc.signed);
    let mut bad = None;
    for entry in &doc.signatures {
        let Some(key) = trusted.iter().find(|k| k.key_id() == entry.key_id) else {
            continue;
        };
        let mut sig = [0u8; 64];
        let ok = hex::decode_to_slice(&entry.signature, &mut sig).is_ok()
            && key
                .0
                .verify_strict(&msg, &Signature::from_bytes(&sig))
                .is_ok();
        if ok {
            return Ok(entry.key_id.clone());
        }
        bad.get_or_insert_with(|| entry.key_id.clone());
    }
    if let Some(key_id) = bad {
        return Err(VerifyError::BadSignature { document, key_id });
    }
    let ids: Vec<String> = doc
        .signatures
        .iter()
        .map(|s| s.key_id.chars().take(16).collect())
        .collect();
    Err(VerifyError::UnknownKey {
        document,
        key_ids: ids.join(", "),
    })
}

/// A bundle whose signatures and expiries hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The manifest.
    pub manifest: Manifest,
    /// The manifest's parsed version.
    pub version: ReleaseVersion,
    /// The root that signed the key list (empty from [`verify_unrooted`]).
    pub root_key_id: String,
    /// The signing key that signed the manifest.
    pub signing_key_id: String,
    /// When the key list expires.
    pub keys_expire: DateTime<Utc>,
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Checks a bundle: the key list is signed by a trusted root and not expired, names at
/// least one key, and one of its keys signed the manifest, which is not expired and is
/// well formed. Product, target and version are the caller's to hold it to
/// ([`Verified::expect`]), the artifact too ([`Verified::check_artifact`]).
pub fn verify_bundle(
    roots: &TrustedRoots,
    bundle: &ReleaseBundle,
    now: DateTime<Utc>,
) -> Result<Verified, VerifyError> {
    if roots.keys.is_empty() {
        return Err(VerifyError::NoTrustedRoots);
    }
    let root_key_id =
        check_signatures("signing-key list", KEY_LIST_KIND, &bundle.keys, &roots.keys)?;
    verify_below_roots(bundle, now, root_key_id)
}

/// Everything [`verify_bundle`] checks except the roots' signature on the key list:
/// for the platform, which stores and serves releases but is not where trust is
/// decided (each agent holds its roots). A bundle this accepts may still be refused
/// by every agent; one it refuses would be refused by all of them.
pub fn verify_unrooted(
    bundle: &ReleaseBundle,
    now: DateTime<Utc>,
) -> Result<Verified, VerifyError> {
    if bundle.keys.signatures.is_empty() {
        return Err(VerifyError::Unsigned {
            document: "signing-key list",
        });
    }
    verify_below_roots(bundle, now, String::new())
}

fn verify_below_roots(
    bundle: &ReleaseBundle,
    now: DateTime<Utc>,
    root_key_id: String,
) -> Result<Verified, VerifyError> {
    let list: SigningKeyList =
        serde_json::from_str(&bundle.keys.signed).map_err(|e| VerifyError::Malformed {
            document: "signing-key list",
            reason: e.to_string(),
        })?;
    if list.kind != KEY_LIST_KIND {
        return Err(VerifyError::Malformed {
            document: "signing-key list",
            reason: format!("kind is not {KEY_LIST_KIND:?}"),
        });
    }
    if now >= list.expires {
        return Err(VerifyError::KeyListExpired {
            expired: list.expires,
        });
    }
    if list.keys.is_empty() {
        return Err(VerifyError::EmptyKeyList);
    }
    let signing: Vec<PublicKey> = list
        .keys
        .iter()
        .map(|k| {
            PublicKey::from_hex(k).ok_or_else(|| VerifyError::Malformed {
                document: "signing-key list",
                reason: "a key is not 64 hex digits of a valid ed25519 key".into(),
            })
        })
        .collect::<Result<_, _>>()?;
    let signing_key_id = check_signatures("manifest", MANIFEST_KIND, &bundle.manifest, &signing)?;
    let manifest: Manifest =
        serde_json::from_str(&bundle.manifest.signed).map_err(|e| VerifyError::Malformed {
            document: "manifest",
            reason: e.to_string(),
        })?;
    let malformed = |reason: String| VerifyError::Malformed {
        document: "manifest",
        reason,
    };
    if manifest.kind != MANIFEST_KIND {
        return Err(malformed(format!("kind is not {MANIFEST_KIND:?}")));
    }
    if now >= manifest.expires {
        return Err(VerifyError::ManifestExpired {
            expired: manifest.expires,
        });
    }
    let version = ReleaseVersion::parse(&manifest.version).map_err(|e| malformed(e.to_string()))?;
    for (field, value) in [
        ("product", &manifest.product),
        ("target", &manifest.target),
        ("channel", &manifest.channel),
    ] {
        if !is_token(value) {
            return Err(malformed(format!(
                "{field} must be 1–64 letters, digits, '.', '_' or '-'"
            )));
        }
    }
    if manifest.sha256.len() != 64
        || !manifest
            .sha256
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(malformed("sha256 must be 64 lowercase hex digits".into()));
    }
    if manifest.size == 0 || manifest.size > patchctl_proto::release::MAX_ARTIFACT_BYTES {
        return Err(malformed(format!(
            "size must be between 1 and {} bytes",
            patchctl_proto::release::MAX_ARTIFACT_BYTES
        )));
    }
    Ok(Verified {
        manifest,
        version,
        root_key_id,
        signing_key_id,
        keys_expire: list.expires,
    })
}

impl Verified {
    /// Holds the manifest to what the caller asked for: this product, this target
    /// and, when given, the announced version.
    pub fn expect(
        &self,
        product: &str,
        target: &str,
        version: Option<&str>,
    ) -> Result<(), VerifyError> {
        if self.manifest.product != product {
            return Err(VerifyError::WrongProduct {
                expected: product.into(),
                found: self.manifest.product.clone(),
            });
        }
        if self.manifest.target != target {
            return Err(VerifyError::WrongTarget {
                expected: target.into(),
                found: self.manifest.target.clone(),
            });
        }
        if let Some(v) = version
            && self.manifest.version != v
        {
            return Err(VerifyError::WrongVersion {
                expected: v.into(),
                found: self.manifest.version.clone(),
            });
        }
        Ok(())
    }

    /// Rollback protection: the version must be newer than `highest`.
    pub fn newer_than(&self, highest: &ReleaseVersion) -> Result<(), VerifyError> {
        if self.version <= *highest {
            return Err(VerifyError::NotNewer {
                version: self.manifest.version.clone(),
                highest: highest.to_string(),
            });
        }
        Ok(())
    }

    /// The artifact's size and SHA-256 (size first: it is free).
    pub fn check_digest(&self, size: u64, sha256_hex: &str) -> Result<(), VerifyError> {
        if size != self.manifest.size {
            return Err(VerifyError::SizeMismatch {
                expected: self.manifest.size,
                found: size,
            });
        }
        if sha256_hex != self.manifest.sha256 {
            return Err(VerifyError::HashMismatch {
                expected: self.manifest.sha256.clone(),
                found: sha256_hex.into(),
            });
        }
        Ok(())
    }

    /// [`Self::check_digest`] of bytes in memory.
    pub fn check_artifact(&self, bytes: &[u8]) -> Result<(), VerifyError> {
        self.check_digest(bytes.len() as u64, &sha256_hex(bytes))
    }
}

/// SHA-256, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Signs `value` (serialised once, and those exact bytes kept) as a document of `kind`.
pub(crate) fn sign_document<T: serde::Serialize>(
    kind: &str,
    value: &T,
    signers: &[&SecretKey],
) -> SignedDocument {
    let signed = serde_json::to_string_pretty(value).unwrap_or_default();
    let msg = message(kind, &signed);
    let signatures = signers
        .iter()
        .map(|k| SignatureEntry {
            key_id: k.public().key_id(),
            signature: hex::encode(k.key.sign(&msg).to_bytes()),
        })
        .collect();
    SignedDocument { signed, signatures }
}

/// Why signing was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// A key of the wrong role.
    #[error("a {found} key cannot sign a {document}; use a {expected} key")]
    WrongRole {
        /// The document.
        document: &'static str,
        /// The role needed.
        expected: &'static str,
        /// The role given.
        found: &'static str,
    },
    /// Nothing to sign with, or nothing to vouch for.
    #[error("{0}")]
    Empty(&'static str),
    /// A manifest field is not acceptable.
    #[error("{0}")]
    Manifest(String),
}

/// The roots sign a list of signing keys valid until `expires`.
pub fn sign_key_list(
    roots: &[&SecretKey],
    keys: &[PublicKey],
    created: DateTime<Utc>,
    expires: DateTime<Utc>,
) -> Result<SignedDocument, SignError> {
    if roots.is_empty() {
        return Err(SignError::Empty(
            "no root key to sign the signing-key list with",
        ));
    }
    if keys.is_empty() {
        return Err(SignError::Empty(
            "the signing-key list must name at least one key",
        ));
    }
    if let Some(k) = roots.iter().find(|k| k.role != KeyRole::Root) {
        return Err(SignError::WrongRole {
            document: "signing-key list",
            expected: "root",
            found: k.role.as_str(),
        });
    }
    let list = SigningKeyList {
        kind: KEY_LIST_KIND.into(),
        keys: keys.iter().map(PublicKey::to_hex).collect(),
        created,
        expires,
    };
    Ok(sign_document(KEY_LIST_KIND, &list, roots))
}

/// A signing key signs a manifest. The manifest's fields are checked the way
/// [`verify_bundle`] will check them, so a release that would be refused is never
/// signed.
pub fn sign_manifest(key: &SecretKey, manifest: &Manifest) -> Result<SignedDocument, SignError> {
    if key.role != KeyRole::Signing {
        return Err(SignError::WrongRole {
            document: "manifest",
            expected: "signing",
            found: key.role.as_str(),
        });
    }
    ReleaseVersion::parse(&manifest.version).map_err(|e| SignError::Manifest(e.to_string()))?;
    for (field, value) in [
        ("product", &manifest.product),
        ("target", &manifest.target),
        ("channel", &manifest.channel),
    ] {
        if !is_token(value) {
            return Err(SignError::Manifest(format!(
                "{field} {value:?} must be 1–64 letters, digits, '.', '_' or '-'"
            )));
        }
    }
    if manifest.kind != MANIFEST_KIND {
        return Err(SignError::Manifest(format!(
            "kind must be {MANIFEST_KIND:?}"
        )));
    }
    Ok(sign_document(MANIFEST_KIND, manifest, &[key]))
}

#[cfg(test)]
mod tests;
