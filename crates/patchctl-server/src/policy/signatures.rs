//! Approver signatures of manifests (issue 15 §1, the two-person rule): the service
//! functions the API uses, and the rollout engine's lookup of the signature an
//! install carries. The approver list comes from the key file (signed by the
//! organisation's command key), never from the database.

use chrono::Utc;
use patchctl_proto::policy::approvals::ManifestSignatureView;
use patchctl_proto::signing::{ApprovedItem, SignedDocument};
use patchctl_release::command::approval::verify_approval;
use patchctl_storage::ManifestApprovalRow;
use uuid::Uuid;

use crate::AppState;
use crate::error::ApiError;

fn view(r: &ManifestApprovalRow) -> ManifestSignatureView {
    ManifestSignatureView {
        manifest_id: r.manifest_id,
        approver: r.approver.clone(),
        key_id: r.key_id.clone(),
        created_at: r.created_at,
    }
}

/// Takes an approver's signature of a manifest: it must verify against the
/// organisation's approver list and name exactly the manifest's updates.
pub async fn sign(
    st: &AppState,
    org: Uuid,
    reference: &str,
    signed: SignedDocument,
) -> Result<ManifestSignatureView, ApiError> {
    let (m, items) = st.store.manifest(org, reference).await?.ok_or_else(|| {
        ApiError::not_found(format!(
            "no manifest {reference:?}; `patchctl manifests list` shows them"
        ))
    })?;
    let (_, list) = st.signer.approvers(org).ok_or_else(|| {
        ApiError::conflict(
            "this organisation has no approvers; add one on a platform node with `patchctl admin approvers add`",
        )
    })?;
    let (approval, approver) =
        verify_approval(&signed, &list).map_err(|e| ApiError::bad_request(e.to_string()))?;
    if approval.manifest != m.id {
        return Err(ApiError::bad_request(format!(
            "the signature is of manifest {}, not of {} ({})",
            approval.manifest, m.name, m.id
        )));
    }
    let mut want: Vec<ApprovedItem> = items
        .into_iter()
        .map(|i| ApprovedItem {
            ecosystem: i.ecosystem,
            name: i.name,
            version: i.version,
        })
        .collect();
    let mut got = approval.items.clone();
    want.sort();
    got.sort();
    if want != got {
        return Err(ApiError::bad_request(format!(
            "the signature names other updates than manifest {} ({} signed, {} in the manifest); sign it again with `patchctl approvals sign`",
            m.name,
            got.len(),
            want.len()
        )));
    }
    let key_id = signed
        .signatures
        .iter()
        .find(|s| {
            list.approvers.iter().any(|a| {
                a.name == approver
                    && patchctl_release::PublicKey::from_line(&a.key)
                        .is_some_and(|k| k.key_id() == s.key_id)
            })
        })
        .map(|s| s.key_id.clone())
        .unwrap_or_default();
    let row = ManifestApprovalRow {
        manifest_id: m.id,
        org_id: org,
        key_id,
        approver,
        signed,
        created_at: Utc::now(),
    };
    st.store.add_manifest_approval(&row).await?;
    tracing::info!(target: "audit", %org, manifest = %m.name, approver = %row.approver, key_id = %row.key_id, "manifest signed by an approver");
    Ok(view(&row))
}

/// The approver signatures of a manifest.
pub async fn list(
    st: &AppState,
    org: Uuid,
    reference: &str,
) -> Result<Vec<ManifestSignatureView>, ApiError> {
    let (m, _) = st.store.manifest(org, reference).await?.ok_or_else(|| {
        ApiError::not_found(format!(
            "no manifest {reference:?}; `patchctl manifests list` shows them"
        ))
    })?;
    Ok(st
        .store
        .manifest_approvals(org, m.id)
        .await?
        .iter()
        .map(view)
        .collect())
}

/// For the rollout engine: the newest signature of the manifest that verifies against
/// the current approver list, and whether the organisation requires one.
pub async fn for_install(
    st: &AppState,
    org: Uuid,
    manifest: Uuid,
) -> Result<(Option<SignedDocument>, bool), ApiError> {
    let Some((_, list)) = st.signer.approvers(org) else {
        return Ok((None, false));
    };
    let rows = st.store.manifest_approvals(org, manifest).await?;
    let found = rows
        .into_iter()
        .rev()
        .find(|r| verify_approval(&r.signed, &list).is_ok_and(|(a, _)| a.manifest == manifest))
        .map(|r| r.signed);
    Ok((found, list.required))
}
