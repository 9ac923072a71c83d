//! Admission of the platform's commands (issue 15 §1, docs/signing.md): a command runs
//! only when its statement is signed by the organisation's command-signing key that
//! this agent knows, is for this organisation and this host, has not expired, and its
//! id never ran here before. The statement is all that is trusted: the command that
//! runs is rebuilt from it, never from the envelope's `kind`/`params`.
//!
//! The key is learned at enrollment, or pinned in the config (strict mode: the key the
//! platform announces is then ignored unless a rotation signed by the pinned key leads
//! to it). Rotations are followed only as a chain that each retiring key signed; the
//! keys passed are retired. Both the keys (`command-keys.json`, beside the credential)
//! and the ids already run (`seen-commands.json`, in the state directory, kept until
//! their command expires) are written atomically before anything runs.

mod seen;

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use patchctl_proto::command::CommandEnvelope;
use patchctl_proto::signing::CommandKeyInfo;
use patchctl_proto::signing::{ApproverList, SignedDocument};
use patchctl_release::PublicKey;
use patchctl_release::command::approval::{ApprovalError, verify_approval, verify_approvers};
use patchctl_release::command::{CommandSigError, follow_rotations, verify_command};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use seen::SeenCommands;

/// File of the known keys, in the config directory.
pub const KEYS_FILE: &str = "command-keys.json";

/// Why a command was refused. Each becomes a `rejected` result whose summary is this
/// text, and an audit event; nothing runs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Signature, key or statement form.
    #[error("refused: {0}")]
    Signature(#[from] CommandSigError),
    /// The agent knows no command-signing key.
    #[error(
        "refused: this agent knows no command-signing key (enroll again, or pin one with command_signing_key in the config)"
    )]
    NoKey,
    /// The envelope says something else than the signed statement.
    #[error("refused: the command's {0} differs from what was signed")]
    Altered(&'static str),
    /// Signed for another organisation.
    #[error("refused: the command was signed for organisation {0}, not this agent's")]
    OtherOrg(Uuid),
    /// Signed for another host.
    #[error("refused: the command was signed for host {0}, not this one")]
    OtherHost(Uuid),
    /// Past its expiry.
    #[error("refused: the command expired at {0}")]
    Expired(DateTime<Utc>),
    /// The id ran here already.
    #[error("refused: command {0} was already run by this agent (replayed)")]
    Replayed(Uuid),
    /// The agent could not record the id before running it.
    #[error("refused: cannot record the command id before running it ({0})")]
    Unrecorded(String),
    /// An install without the approver's signature the organisation requires, or
    /// with one that does not hold or does not name what it installs.
    #[error("refused: {0}")]
    Approval(#[from] ApprovalError),
}

impl Refusal {
    /// A short name for logs and audit events.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::Signature(CommandSigError::Unsigned) => "unsigned",
            Refusal::Signature(CommandSigError::BadSignature(_)) => "bad_signature",
            Refusal::Signature(CommandSigError::UnknownKey(_)) => "unknown_key",
            Refusal::Signature(CommandSigError::RetiredKey(_)) => "retired_key",
            Refusal::Signature(CommandSigError::Malformed(_)) => "malformed",
            Refusal::NoKey => "no_key",
            Refusal::Altered(_) => "altered",
            Refusal::OtherOrg(_) => "other_org",
            Refusal::OtherHost(_) => "other_host",
            Refusal::Expired(_) => "expired",
            Refusal::Replayed(_) => "replayed",
            Refusal::Unrecorded(_) => "unrecorded",
            Refusal::Approval(_) => "unapproved",
        }
    }
}

/// The keys as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct KnownKeys {
    /// The organisation, once the platform named it.
    #[serde(default)]
    org: Option<Uuid>,
    /// The key that signs now, `ed25519:<hex>`.
    current: String,
    /// Ids of the keys rotations retired.
    #[serde(default)]
    retired: Vec<String>,
    /// The pinned key this state started from (strict mode), `ed25519:<hex>`.
    #[serde(default)]
    pinned: Option<String>,
    /// The organisation's approver list, as the current key signed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    approvers: Option<SignedDocument>,
}

/// The agent's admission state.
pub struct Admission {
    keys_path: PathBuf,
    pinned: Option<PublicKey>,
    keys: Option<KnownKeys>,
    current: Option<PublicKey>,
    /// The approver list held (verified when it arrived).
    approvers: Option<ApproverList>,
    seen: SeenCommands,
}

impl Admission {
    /// Loads the known keys from `config_dir` and the ids run from `state_dir`. With a
    /// pinned key, the state starts from it (again, when the pin changed).
    pub fn open(config_dir: &Path, state_dir: &Path, pinned: Option<PublicKey>) -> Admission {
        let keys_path = config_dir.join(KEYS_FILE);
        let mut keys: Option<KnownKeys> = std::fs::read(&keys_path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        if let Some(pin) = &pinned
            && keys.as_ref().and_then(|k| k.pinned.as_deref()) != Some(pin.to_line().as_str())
        {
            keys = Some(KnownKeys {
                org: None,
                current: pin.to_line(),
                retired: Vec::new(),
                pinned: Some(pin.to_line()),
                approvers: None,
            });
        }
        let mut a = Admission {
            keys_path,
            pinned,
            current: None,
            approvers: None,
            keys,
            seen: SeenCommands::open(state_dir),
        };
        a.approvers = a.keys.as_ref().and_then(|k| {
            let doc = k.approvers.as_ref()?;
            serde_json::from_str::<ApproverList>(&doc.signed).ok()
        });
        a.current = a
            .keys
            .as_ref()
            .and_then(|k| PublicKey::from_line(&k.current));
        if a.pinned.is_some() {
            a.save();
        }
        a
    }

    /// The id of the key trusted now (sent with each heartbeat).
    pub fn key_id(&self) -> Option<String> {
        self.current.map(|k| k.key_id())
    }

    /// The serial of the approver list held (sent with each heartbeat).
    pub fn approvers_serial(&self) -> Option<u64> {
        self.approvers.as_ref().map(|l| l.serial)
    }

    /// Takes an approver list signed by the current key, when newer than the one held.
    fn take_approvers(&mut self, doc: Option<&SignedDocument>) {
        let (Some(doc), Some(current)) = (doc, self.current) else {
            return;
        };
        let Some(org) = self.keys.as_ref().and_then(|k| k.org) else {
            return;
        };
        match verify_approvers(doc, &current, org) {
            Ok(list) if Some(list.serial) > self.approvers_serial() => {
                tracing::info!(target: "audit", serial = list.serial, required = list.required,
                    approvers = list.approvers.len(), "approver list taken");
                if let Some(k) = self.keys.as_mut() {
                    k.approvers = Some(doc.clone());
                }
                self.approvers = Some(list);
                self.save();
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(target: "audit", error = %e, "the platform's approver list is not signed by the trusted key; ignored");
            }
        }
    }

    fn save(&self) {
        let Some(k) = &self.keys else { return };
        let bytes = serde_json::to_vec_pretty(k).unwrap_or_default();
        if let Err(e) = crate::state::write_private(&self.keys_path, &bytes) {
            tracing::error!(path = %self.keys_path.display(), error = %e, "cannot store the command-signing keys");
        }
    }

    fn set(&mut self, keys: KnownKeys) {
        self.current = PublicKey::from_line(&keys.current);
        self.keys = Some(keys);
        self.save();
    }

    /// The enrollment answer's key. Without a pin it becomes the key (a new
    /// enrollment replaces the old one); with a pin only its organisation is taken.
    pub fn enrolled(&mut self, info: Option<&CommandKeyInfo>) {
        let Some(info) = info else {
            tracing::warn!(target: "audit", "the platform named no command-signing key at enrollment; commands will be refused until it does");
            return;
        };
        if let Some(pin) = self.pinned {
            let mut keys = self.keys.clone().unwrap_or(KnownKeys {
                org: None,
                current: pin.to_line(),
                retired: Vec::new(),
                pinned: Some(pin.to_line()),
                approvers: None,
            });
            keys.org = Some(info.org);
            if PublicKey::from_line(&info.key) != self.current {
                tracing::warn!(target: "audit", announced = %short(&info.key), pinned = %pin.key_id(),
                    "the platform announced another command-signing key than the pinned one; only the pinned key (and rotations it signed) is trusted");
            }
            self.set(keys);
            self.take_approvers(info.approvers.as_ref());
            return;
        }
        match PublicKey::from_line(&info.key) {
            Some(key) => {
                tracing::info!(target: "audit", key_id = %key.key_id(), org = %info.org, "command-signing key learned at enrollment");
                self.approvers = None;
                self.set(KnownKeys {
                    org: Some(info.org),
                    current: key.to_line(),
                    retired: Vec::new(),
                    pinned: None,
                    approvers: None,
                });
                self.take_approvers(info.approvers.as_ref());
            }
            None => {
                tracing::error!(target: "audit", "the platform's command-signing key is malformed; commands will be refused")
            }
        }
    }

    /// A heartbeat answer's key: follows the rotations from the key trusted now. An
    /// agent that knows no key (enrolled before signed commands, not pinned) takes the
    /// announced key once, as at enrollment.
    pub fn follow(&mut self, info: &CommandKeyInfo) {
        let Some(current) = self.current else {
            if self.pinned.is_none() {
                tracing::info!(target: "audit", "no command-signing key known yet: taking the platform's, as at enrollment");
                self.enrolled(Some(info));
            }
            return;
        };
        let Some(announced) = PublicKey::from_line(&info.key) else {
            tracing::warn!(target: "audit", "the platform announced a malformed command-signing key; ignored");
            return;
        };
        if announced == current {
            self.take_approvers(info.approvers.as_ref());
            return;
        }
        let org = self.keys.as_ref().and_then(|k| k.org).unwrap_or(info.org);
        match follow_rotations(&current, org, &info.rotations, Some(&announced)) {
            Ok(passed) if !passed.is_empty() => {
                let mut keys = self.keys.clone().unwrap_or(KnownKeys {
                    org: Some(org),
                    current: current.to_line(),
                    retired: Vec::new(),
                    pinned: None,
                    approvers: None,
                });
                keys.retired.push(current.key_id());
                for k in &passed[..passed.len() - 1] {
                    keys.retired.push(k.key_id());
                }
                keys.current = announced.to_line();
                keys.org = Some(org);
                tracing::info!(target: "audit", from = %current.key_id(), to = %announced.key_id(),
                    rotations = passed.len(), "command-signing key rotated; the old key is retired");
                self.set(keys);
                self.take_approvers(info.approvers.as_ref());
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(target: "audit", trusted = %current.key_id(), announced = %announced.key_id(), error = %e,
                    "the platform announced a command-signing key this agent cannot reach by signed rotations; keeping the trusted key");
            }
        }
    }

    /// Admits one command for `host` at `now`: the envelope to run, rebuilt from the
    /// signed statement, with its id recorded as run; or why not.
    pub fn admit(
        &mut self,
        env: &CommandEnvelope,
        host: Uuid,
        now: DateTime<Utc>,
    ) -> Result<CommandEnvelope, Refusal> {
        let doc = env
            .signed
            .as_ref()
            .ok_or(Refusal::Signature(CommandSigError::Unsigned))?;
        let current = self.current.ok_or(Refusal::NoKey)?;
        let retired = self
            .keys
            .as_ref()
            .map(|k| k.retired.clone())
            .unwrap_or_default();
        let st = verify_command(doc, &current, &retired)?;
        if st.command != env.id {
            return Err(Refusal::Altered("id"));
        }
        if st.operation != env.kind {
            return Err(Refusal::Altered("kind"));
        }
        let params = if env.params.is_null() {
            serde_json::json!({})
        } else {
            env.params.clone()
        };
        if st.params != params {
            return Err(Refusal::Altered("parameters"));
        }
        if let Some(org) = self.keys.as_ref().and_then(|k| k.org)
            && st.org != org
        {
            return Err(Refusal::OtherOrg(st.org));
        }
        if st.host != host {
            return Err(Refusal::OtherHost(st.host));
        }
        if now > st.expires_at {
            return Err(Refusal::Expired(st.expires_at));
        }
        if self.seen.contains(st.command) {
            return Err(Refusal::Replayed(st.command));
        }
        if st.operation == "install_updates" {
            self.check_approval(&st)?;
        }
        self.seen
            .record(st.command, st.expires_at, now)
            .map_err(|e| Refusal::Unrecorded(e.to_string()))?;
        Ok(CommandEnvelope {
            id: st.command,
            kind: st.operation,
            params: st.params,
            queued_at: st.queued_at,
            signed: None,
        })
    }
}

impl Admission {
    /// The two-person rule: an install carries an approver's signature of a manifest
    /// that names every package it installs, at its exact version, when the approver
    /// list requires one; a signature that is there must hold either way.
    fn check_approval(
        &self,
        st: &patchctl_proto::signing::CommandStatement,
    ) -> Result<(), Refusal> {
        let Some(list) = &self.approvers else {
            return Ok(());
        };
        let Some(doc) = &st.approval else {
            return if list.required {
                Err(ApprovalError::Missing.into())
            } else {
                Ok(())
            };
        };
        let (approval, who) = verify_approval(doc, list)?;
        let packages = st.params["packages"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for p in &packages {
            let (name, version) = (
                p["name"].as_str().unwrap_or_default(),
                p["version"].as_str().unwrap_or_default(),
            );
            if !approval
                .items
                .iter()
                .any(|i| i.name == name && i.version == version)
            {
                return Err(ApprovalError::NotApproved(
                    format!("{name} {version}"),
                    format!("{} (signed by {who})", approval.name),
                )
                .into());
            }
        }
        Ok(())
    }
}

fn short(line: &str) -> String {
    PublicKey::from_line(line).map_or_else(|| "malformed".into(), |k| k.key_id())
}

#[cfg(test)]
mod tests;
