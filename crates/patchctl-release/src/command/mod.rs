//! Command signing (issue 15): the organisation's command-signing key signs each
//! command's [`CommandStatement`], and signs the [`KeyRotation`] to its successor.
//!
//! Signatures cover `patchctl-release/v1/<kind>\n` and the exact statement text, like
//! every document of this crate, so a command signature can never pass for a release
//! signature or a rotation, nor the reverse. Verification is `verify_strict` only. What
//! is checked here is the signature and the document's form; the agent checks the
//! rest (host, expiry, replay) with its own state.

use chrono::{DateTime, Utc};
use patchctl_proto::signing::{
    COMMAND_STATEMENT_KIND, CommandStatement, KEY_ROTATION_KIND, KeyRotation, MAX_ROTATION_CHAIN,
    SignedDocument,
};
use uuid::Uuid;

use crate::{KeyRole, PublicKey, SecretKey, SignError, sign_document};

pub mod approval;

/// Longest statement text accepted (an `install_updates` of 2,000 packages is ~200 KiB).
pub const MAX_STATEMENT_BYTES: usize = 1024 * 1024;

/// Why a signed command or rotation was refused. The messages name key ids, never key
/// material, and never more of the document than its kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandSigError {
    /// No signature at all.
    #[error("the command is not signed")]
    Unsigned,
    /// The statement text is not a statement.
    #[error("the signed statement is malformed: {0}")]
    Malformed(String),
    /// Signed only by keys the agent does not know.
    #[error("the command is signed by an unknown key ({0})")]
    UnknownKey(String),
    /// Signed by a key that a rotation retired.
    #[error("the command is signed by the retired key {0}")]
    RetiredKey(String),
    /// A signature by the known key does not verify.
    #[error("the command's signature by key {0} does not verify")]
    BadSignature(String),
}

/// Why a rotation chain was not followed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RotationError {
    /// A rotation does not start at the key reached so far.
    #[error("rotation {index} starts at key {found}, not at the trusted key {expected}")]
    Broken {
        /// Position in the chain.
        index: usize,
        /// The key id the agent trusts at that point.
        expected: String,
        /// The key id the rotation names as previous.
        found: String,
    },
    /// A rotation is not signed by the key it retires, or is malformed.
    #[error("rotation {index} is refused: {reason}")]
    Refused {
        /// Position in the chain.
        index: usize,
        /// Why.
        reason: String,
    },
    /// The chain does not end at the announced key.
    #[error("the rotations end at key {reached}, not at the announced key {announced}")]
    WrongEnd {
        /// Where the chain led.
        reached: String,
        /// What the platform announced.
        announced: String,
    },
    /// Longer than [`MAX_ROTATION_CHAIN`].
    #[error("{0} rotations in one answer; at most {MAX_ROTATION_CHAIN} are followed")]
    TooLong(usize),
}

/// The key signs one command statement. The key must be a command key and the
/// statement's kind right; the statement is serialised once and those bytes signed.
pub fn sign_command(
    key: &SecretKey,
    statement: &CommandStatement,
) -> Result<SignedDocument, SignError> {
    if key.role() != KeyRole::Command {
        return Err(SignError::WrongRole {
            document: "command",
            expected: "command",
            found: key.role().as_str(),
        });
    }
    if statement.kind != COMMAND_STATEMENT_KIND {
        return Err(SignError::Manifest(format!(
            "a command statement's kind must be {COMMAND_STATEMENT_KIND:?}"
        )));
    }
    Ok(sign_document(COMMAND_STATEMENT_KIND, statement, &[key]))
}

/// The statement of `doc` when a signature by `current` verifies over it. A signature
/// only by a key in `retired` (ids) is [`CommandSigError::RetiredKey`].
pub fn verify_command(
    doc: &SignedDocument,
    current: &PublicKey,
    retired: &[String],
) -> Result<CommandStatement, CommandSigError> {
    if doc.signatures.is_empty() {
        return Err(CommandSigError::Unsigned);
    }
    let id = current.key_id();
    match crate::check_signatures("command", COMMAND_STATEMENT_KIND, doc, &[*current]) {
        Ok(_) => {}
        Err(crate::VerifyError::BadSignature { .. }) => {
            return Err(CommandSigError::BadSignature(id));
        }
        Err(_) => {
            let signer = doc
                .signatures
                .iter()
                .find(|s| retired.contains(&s.key_id))
                .map(|s| s.key_id.clone());
            if let Some(old) = signer {
                return Err(CommandSigError::RetiredKey(old));
            }
            let ids: Vec<String> = doc
                .signatures
                .iter()
                .map(|s| s.key_id.chars().take(16).collect())
                .collect();
            return Err(CommandSigError::UnknownKey(ids.join(", ")));
        }
    }
    if doc.signed.len() > MAX_STATEMENT_BYTES {
        return Err(CommandSigError::Malformed(format!(
            "{} bytes, at most {MAX_STATEMENT_BYTES}",
            doc.signed.len()
        )));
    }
    let statement: CommandStatement =
        serde_json::from_str(&doc.signed).map_err(|e| CommandSigError::Malformed(e.to_string()))?;
    if statement.kind != COMMAND_STATEMENT_KIND {
        return Err(CommandSigError::Malformed(format!(
            "kind is not {COMMAND_STATEMENT_KIND:?}"
        )));
    }
    Ok(statement)
}

/// The old key vouches for its successor.
pub fn sign_rotation(
    old: &SecretKey,
    next: &PublicKey,
    org: Uuid,
    created: DateTime<Utc>,
) -> Result<SignedDocument, SignError> {
    if old.role() != KeyRole::Command {
        return Err(SignError::WrongRole {
            document: "key rotation",
            expected: "command",
            found: old.role().as_str(),
        });
    }
    if old.public() == *next {
        return Err(SignError::Empty("a rotation must name a new key"));
    }
    let rotation = KeyRotation {
        kind: KEY_ROTATION_KIND.into(),
        org,
        previous: old.public().to_line(),
        next: next.to_line(),
        created,
    };
    Ok(sign_document(KEY_ROTATION_KIND, &rotation, &[old]))
}

/// Follows `chain` from `trusted` for `org`: each rotation must start at the key
/// reached so far and be signed by it. Returns the keys passed through, in order (the
/// last is the new current key; the others are retired). An empty chain returns none.
/// When `announced` is given, the chain must end there.
pub fn follow_rotations(
    trusted: &PublicKey,
    org: Uuid,
    chain: &[SignedDocument],
    announced: Option<&PublicKey>,
) -> Result<Vec<PublicKey>, RotationError> {
    if chain.len() > MAX_ROTATION_CHAIN {
        return Err(RotationError::TooLong(chain.len()));
    }
    let mut at = *trusted;
    let mut passed = Vec::with_capacity(chain.len());
    for (index, doc) in chain.iter().enumerate() {
        let refused = |reason: String| RotationError::Refused { index, reason };
        if doc.signed.len() > MAX_STATEMENT_BYTES {
            return Err(refused("too long".into()));
        }
        let rotation: KeyRotation =
            serde_json::from_str(&doc.signed).map_err(|e| refused(format!("malformed: {e}")))?;
        if rotation.kind != KEY_ROTATION_KIND {
            return Err(refused(format!("kind is not {KEY_ROTATION_KIND:?}")));
        }
        if rotation.org != org {
            return Err(refused("it is for another organisation".into()));
        }
        let previous = PublicKey::from_line(&rotation.previous)
            .ok_or_else(|| refused("the previous key is not an ed25519 key".into()))?;
        if previous != at {
            return Err(RotationError::Broken {
                index,
                expected: at.key_id(),
                found: previous.key_id(),
            });
        }
        crate::check_signatures("key rotation", KEY_ROTATION_KIND, doc, &[at])
            .map_err(|e| refused(e.to_string()))?;
        let next = PublicKey::from_line(&rotation.next)
            .ok_or_else(|| refused("the next key is not an ed25519 key".into()))?;
        if next == at {
            return Err(refused("it names the same key".into()));
        }
        passed.push(next);
        at = next;
    }
    if let Some(want) = announced
        && *want != at
    {
        return Err(RotationError::WrongEnd {
            reached: at.key_id(),
            announced: want.key_id(),
        });
    }
    Ok(passed)
}

#[cfg(test)]
mod tests;
