//! What `patchctl admin signing-key` does to the key file and the database: the
//! operator's side of the key's life (create, rotate, show), audited.

use std::path::Path;

use chrono::{DateTime, Utc};
use patchctl_release::PublicKey;
use patchctl_storage::{AuditActor, AuditOutcome, NewAuditEntry, Storage};
use uuid::Uuid;

use super::{KeyFile, Signer, SigningError, file};

/// One organisation's key as `show` prints it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct KeyView {
    /// The organisation.
    pub org: Uuid,
    /// Its current public key, `ed25519:<hex>` (what an agent's config pins).
    pub key: String,
    /// Its id.
    pub key_id: String,
    /// Rotations so far.
    pub rotations: usize,
    /// Ids of the retired keys, oldest first.
    pub retired: Vec<String>,
}

/// The keys in `path`, by organisation.
pub fn show(path: &Path) -> Result<Vec<KeyView>, SigningError> {
    let Some(f) = KeyFile::read(path)? else {
        return Ok(Vec::new());
    };
    Ok(f.orgs
        .iter()
        .map(|(org, k)| KeyView {
            org: *org,
            key: k.public.to_line(),
            key_id: k.public.key_id(),
            rotations: k.rotations.len(),
            retired: k.retired.iter().map(PublicKey::key_id).collect(),
        })
        .collect())
}

/// Creates `org`'s key in `path` when the platform has none, records it, audits it;
/// an existing key is checked and kept.
pub async fn create(
    path: &Path,
    store: &dyn Storage,
    org: Uuid,
) -> Result<PublicKey, SigningError> {
    let had = store.org_command_key(org).await?;
    let key = Signer::open(path.to_owned())?.ensure(store, org).await?;
    if had.is_none() {
        audit(
            store,
            org,
            "signing_key.create",
            serde_json::json!({ "key_id": key.key_id() }),
        )
        .await?;
    }
    Ok(key)
}

/// Replaces `org`'s key by a new one that the old one signs: the file first (the old
/// key must be the one the platform records), then the record. Every node needs the
/// new file; agents follow by the signed rotation.
pub async fn rotate(
    path: &Path,
    store: &dyn Storage,
    org: Uuid,
    now: DateTime<Utc>,
) -> Result<(PublicKey, PublicKey), SigningError> {
    let recorded = store.org_command_key(org).await?;
    let (old, new) = file::locked(path, || {
        let mut f = KeyFile::read(path)?.ok_or_else(|| SigningError::File {
            path: path.to_owned(),
            reason:
                "it does not exist; create the key first with `patchctl admin signing-key create`"
                    .into(),
        })?;
        let here = f.orgs.get(&org).ok_or(SigningError::NoKey { org })?.public;
        if recorded.as_deref().and_then(PublicKey::from_line) != Some(here) {
            return Err(SigningError::Mismatch {
                org,
                here: here.key_id(),
                recorded: recorded
                    .as_deref()
                    .and_then(PublicKey::from_line)
                    .map_or_else(|| "none".into(), |k| k.key_id()),
                path: path.to_owned(),
            });
        }
        let pair = f.rotate(org, now)?;
        f.write(path)?;
        Ok(pair)
    })?;
    if !store
        .set_org_command_key(org, &new.to_line(), Some(&old.to_line()))
        .await?
    {
        return Err(SigningError::Sign(format!(
            "the key file now holds {} but the platform's record changed meanwhile; run `patchctl admin signing-key create` to see which key each side has",
            new.key_id()
        )));
    }
    let resigned = resign_unfinished(path, store, org, &old).await?;
    audit(
        store,
        org,
        "signing_key.rotate",
        serde_json::json!({ "from": old.key_id(), "to": new.key_id(), "resigned": resigned }),
    )
    .await?;
    tracing::info!(target: "audit", %org, from = %old.key_id(), to = %new.key_id(), "command-signing key rotated");
    Ok((old, new))
}

/// Signs the organisation's unfinished commands again with its current key, each only
/// when its signature by the retired key `old` verifies (a row written without the key
/// stays as it is, and the agent refuses it). Returns how many were signed again.
pub async fn resign_unfinished(
    path: &Path,
    store: &dyn Storage,
    org: Uuid,
    old: &PublicKey,
) -> Result<usize, SigningError> {
    let f = KeyFile::read(path)?.ok_or(SigningError::NoKey { org })?;
    let keys = f.orgs.get(&org).ok_or(SigningError::NoKey { org })?;
    let mut count = 0;
    for (id, signed) in store.unfinished_signatures(org).await? {
        let Some(doc) = signed else { continue };
        let Ok(st) = patchctl_release::command::verify_command(&doc, old, &[]) else {
            continue;
        };
        if st.org != org || st.command != id {
            continue;
        }
        let fresh = patchctl_release::command::sign_command(&keys.secret, &st)
            .map_err(|e| SigningError::Sign(e.to_string()))?;
        if store.replace_signature(id, &fresh).await? {
            count += 1;
        }
    }
    Ok(count)
}

/// `org`'s approver list in `path`, if it has one.
pub fn approvers(
    path: &Path,
    org: Uuid,
) -> Result<Option<patchctl_proto::signing::ApproverList>, SigningError> {
    Ok(KeyFile::read(path)?
        .and_then(|mut f| f.orgs.remove(&org))
        .and_then(|k| k.approvers.map(|(_, l)| l)))
}

/// What `patchctl admin approvers` changes.
#[derive(Debug, Clone)]
pub enum ApproverChange {
    /// Adds (or replaces the key of) an approver.
    Add {
        /// The approver's name.
        name: String,
        /// Their public key.
        key: PublicKey,
    },
    /// Removes an approver.
    Remove {
        /// The approver's name.
        name: String,
    },
    /// Whether agents require an approver's signature on installs.
    Require(bool),
}

/// Changes `org`'s approver list in the key file (signed again by the command key,
/// its serial one higher) and audits it. Agents take the new list at their next
/// heartbeat.
pub async fn change_approvers(
    path: &Path,
    store: &dyn Storage,
    org: Uuid,
    change: ApproverChange,
) -> Result<patchctl_proto::signing::ApproverList, SigningError> {
    // The key must be the platform's before its signature means anything.
    Signer::open(path.to_owned())?.ensure(store, org).await?;
    let c = change.clone();
    let list = file::locked(path, || {
        let mut f = KeyFile::read(path)?.ok_or(SigningError::NoKey { org })?;
        let list = f
            .change_approvers(org, Utc::now(), |l| {
                match c {
                    ApproverChange::Add { name, key } => {
                        let valid = !name.is_empty()
                            && name.len() <= 64
                            && name.chars().all(|ch| ch.is_ascii_alphanumeric() || "._-@".contains(ch));
                        if !valid {
                            return Err(SigningError::Sign(format!(
                                "approver name {name:?}: use 1-64 letters, digits, '.', '_', '-' or '@'"
                            )));
                        }
                        if l.approvers.len() >= patchctl_proto::signing::MAX_APPROVERS {
                            return Err(SigningError::Sign("too many approvers".into()));
                        }
                        l.approvers.retain(|a| a.name != name);
                        l.approvers.push(patchctl_proto::signing::Approver {
                            name,
                            key: key.to_line(),
                        });
                    }
                    ApproverChange::Remove { name } => {
                        let before = l.approvers.len();
                        l.approvers.retain(|a| a.name != name);
                        if l.approvers.len() == before {
                            return Err(SigningError::Sign(format!("no approver named {name:?}")));
                        }
                    }
                    ApproverChange::Require(on) => l.required = on,
                }
                if l.required && l.approvers.is_empty() {
                    return Err(SigningError::Sign(
                        "an approver's signature cannot be required with no approver: add one first".into(),
                    ));
                }
                Ok(())
            })?
            .clone();
        f.write(path)?;
        Ok(list)
    })?;
    let details = match &change {
        ApproverChange::Add { name, key } => {
            serde_json::json!({ "add": name, "key_id": key.key_id(), "serial": list.serial })
        }
        ApproverChange::Remove { name } => {
            serde_json::json!({ "remove": name, "serial": list.serial })
        }
        ApproverChange::Require(on) => serde_json::json!({ "required": on, "serial": list.serial }),
    };
    audit(store, org, "approvers.change", details).await?;
    Ok(list)
}

/// `patchctl admin signing-key check-agent`: writes two commands for `host` straight
/// into the database, as an attacker with write access to it would (one unsigned, one
/// signed by a key made up on the spot), so that an operator sees the agent refuse
/// both (`patchctl commands show`). Both are a harmless `get_package_info dpkg`.
/// Returns their ids with what each is.
pub async fn check_agent(
    store: &dyn Storage,
    org: Uuid,
    host: Uuid,
) -> Result<Vec<(Uuid, &'static str)>, SigningError> {
    let now = Utc::now();
    let expires_at = now + chrono::Duration::hours(1);
    let params = serde_json::json!({ "name": "dpkg" });
    let stranger = Signer::ephemeral();
    let mut out = Vec::new();
    for what in ["unsigned", "signed by an unknown key"] {
        let cmd = patchctl_proto::command::Command::parse("get_package_info", &params)
            .map_err(|e| SigningError::Sign(e.to_string()))?;
        let mut new = stranger
            .command(store, org, host, &cmd, now, expires_at)
            .await?;
        if what == "unsigned" {
            new.signed = None;
        }
        // Queueing announces it: the agent's long-poll, on whichever node, wakes now.
        let id = store.queue_command(new).await?.id;
        out.push((id, what));
    }
    audit(
        store,
        org,
        "signing_key.check_agent",
        serde_json::json!({ "host_id": host, "commands": out.iter().map(|(id, _)| id).collect::<Vec<_>>() }),
    )
    .await?;
    Ok(out)
}

async fn audit(
    store: &dyn Storage,
    org: Uuid,
    action: &str,
    details: serde_json::Value,
) -> Result<(), SigningError> {
    let who = std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| "unknown".into());
    store
        .append_audit(NewAuditEntry {
            org_id: Some(org),
            at: Utc::now(),
            actor: AuditActor {
                kind: "admin-cli".into(),
                id: None,
                name: format!("patchctl admin (local user {who})"),
                user_id: None,
            },
            peer: None,
            method: "CLI".into(),
            route: format!(
                "patchctl admin {}",
                action.replace('.', " ").replace('_', "-")
            ),
            action: action.into(),
            target: serde_json::json!({ "org": org }),
            details,
            status: 200,
            outcome: AuditOutcome::Ok,
            error_code: None,
        })
        .await?;
    Ok(())
}
