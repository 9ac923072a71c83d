//! Approver signatures (issue 15 §1, the two-person rule): the organisation's command
//! key signs the [`ApproverList`]; an approver's own key signs a [`ManifestApproval`]
//! of a manifest's exact updates, which an `install_updates` carries in its statement.

use patchctl_proto::signing::{
    APPROVERS_KIND, ApproverList, MANIFEST_APPROVAL_KIND, MAX_APPROVERS, ManifestApproval,
    SignedDocument,
};
use uuid::Uuid;

use super::{CommandSigError, MAX_STATEMENT_BYTES};
use crate::{KeyRole, PublicKey, SecretKey, SignError, sign_document};

/// Why an approval was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApprovalError {
    /// No approval where the organisation requires one.
    #[error("no approver signed it, and this organisation requires an approver's signature")]
    Missing,
    /// Not signed at all, or not by a listed approver.
    #[error("the approval is not signed by an approver of this organisation ({0})")]
    NotAnApprover(String),
    /// A listed approver's signature does not verify.
    #[error("the approval's signature by {0} does not verify")]
    BadSignature(String),
    /// Not an approval of this organisation.
    #[error("the approval is malformed: {0}")]
    Malformed(String),
    /// The command installs something the approval does not name.
    #[error("{0} is not in the approved manifest {1}")]
    NotApproved(String, String),
}

/// The command key signs the approver list.
pub fn sign_approvers(key: &SecretKey, list: &ApproverList) -> Result<SignedDocument, SignError> {
    if key.role() != KeyRole::Command {
        return Err(SignError::WrongRole {
            document: "approver list",
            expected: "command",
            found: key.role().as_str(),
        });
    }
    if list.kind != APPROVERS_KIND || list.approvers.len() > MAX_APPROVERS {
        return Err(SignError::Manifest(format!(
            "an approver list has kind {APPROVERS_KIND:?} and at most {MAX_APPROVERS} approvers"
        )));
    }
    if list
        .approvers
        .iter()
        .any(|a| PublicKey::from_line(&a.key).is_none())
    {
        return Err(SignError::Manifest(
            "every approver's key is an `ed25519:<hex>` line".into(),
        ));
    }
    Ok(sign_document(APPROVERS_KIND, list, &[key]))
}

/// The list of `doc` when `key` (the organisation's command key) signed it for `org`.
pub fn verify_approvers(
    doc: &SignedDocument,
    key: &PublicKey,
    org: Uuid,
) -> Result<ApproverList, CommandSigError> {
    if doc.signatures.is_empty() {
        return Err(CommandSigError::Unsigned);
    }
    crate::check_signatures("approver list", APPROVERS_KIND, doc, &[*key]).map_err(
        |e| match e {
            crate::VerifyError::BadSignature { key_id, .. } => {
                CommandSigError::BadSignature(key_id)
            }
            _ => CommandSigError::UnknownKey(
                doc.signatures
                    .iter()
                    .map(|s| s.key_id.clone())
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
        },
    )?;
    if doc.signed.len() > MAX_STATEMENT_BYTES {
        return Err(CommandSigError::Malformed("too long".into()));
    }
    let list: ApproverList =
        serde_json::from_str(&doc.signed).map_err(|e| CommandSigError::Malformed(e.to_string()))?;
    if list.kind != APPROVERS_KIND || list.org != org || list.approvers.len() > MAX_APPROVERS {
        return Err(CommandSigError::Malformed(
            "not this organisation's approver list".into(),
        ));
    }
    Ok(list)
}

/// An approver signs a manifest's approval with their own key.
pub fn sign_approval(
    key: &SecretKey,
    approval: &ManifestApproval,
) -> Result<SignedDocument, SignError> {
    if key.role() != KeyRole::Approver {
        return Err(SignError::WrongRole {
            document: "manifest approval",
            expected: "approver",
            found: key.role().as_str(),
        });
    }
    if approval.kind != MANIFEST_APPROVAL_KIND || approval.items.is_empty() {
        return Err(SignError::Manifest(format!(
            "an approval has kind {MANIFEST_APPROVAL_KIND:?} and names at least one update"
        )));
    }
    Ok(sign_document(MANIFEST_APPROVAL_KIND, approval, &[key]))
}

/// The approval of `doc` and the approver's name, when an approver of `list` signed it
/// for `list`'s organisation.
pub fn verify_approval(
    doc: &SignedDocument,
    list: &ApproverList,
) -> Result<(ManifestApproval, String), ApprovalError> {
    let keys: Vec<(PublicKey, &str)> = list
        .approvers
        .iter()
        .filter_map(|a| PublicKey::from_line(&a.key).map(|k| (k, a.name.as_str())))
        .collect();
    let trusted: Vec<PublicKey> = keys.iter().map(|(k, _)| *k).collect();
    let signer =
        crate::check_signatures("manifest approval", MANIFEST_APPROVAL_KIND, doc, &trusted)
            .map_err(|e| match e {
                crate::VerifyError::BadSignature { key_id, .. } => ApprovalError::BadSignature(
                    keys.iter()
                        .find(|(k, _)| k.key_id() == key_id)
                        .map_or(key_id, |(_, n)| (*n).to_owned()),
                ),
                _ => ApprovalError::NotAnApprover(
                    doc.signatures
                        .iter()
                        .map(|s| s.key_id.chars().take(16).collect::<String>())
                        .collect::<Vec<_>>()
                        .join(", "),
                ),
            })?;
    if doc.signed.len() > MAX_STATEMENT_BYTES {
        return Err(ApprovalError::Malformed("too long".into()));
    }
    let approval: ManifestApproval =
        serde_json::from_str(&doc.signed).map_err(|e| ApprovalError::Malformed(e.to_string()))?;
    if approval.kind != MANIFEST_APPROVAL_KIND || approval.org != list.org {
        return Err(ApprovalError::Malformed(
            "not an approval of this organisation".into(),
        ));
    }
    let name = keys
        .iter()
        .find(|(k, _)| k.key_id() == signer)
        .map_or(signer, |(_, n)| (*n).to_owned());
    Ok((approval, name))
}
