//! The agent's own life cycle: signed self-update with rollback. Not an operation: the
//! platform offers a release in a heartbeat answer ([`patchctl_proto::release::AgentUpdateOffer`]); the four
//! operations stay four.
//!
//! Order ([`Updater::apply`]): the release's bundle is fetched and verified against the
//! roots built into this binary ([`trusted_roots`]: signature chain, every expiry,
//! product, target, the announced version), the version must be newer than the
//! highest this agent ever accepted ([`UpdateState::highest`], on disk: rollback
//! protection), the artifact is downloaded into a staging file beside the binary with
//! the manifest's size as the limit, its size and SHA-256 checked, fsynced, checked to
//! be a native executable for this target ([`native_executable`]: never a script,
//! which would need a shell), and the staged binary's `self-test` run. Then the swap: the running binary is hard-linked
//! as `<binary>.previous` and the staged file renamed over the binary (at every
//! instant a binary is in place). The new binary runs as a trial child
//! (`PATCHCTL_UPDATE_TRIAL`): it must reach the platform with a heartbeat within
//! `update_confirm_secs`. When it does, this process hands over to it (exec, same
//! process id); when it exits first or runs out of time, `.previous` is renamed back
//! and this process carries on. Each step is an audit event and a [`patchctl_proto::release::UpdateEvent`]
//! for the platform ([`EventLog`], sent with the next heartbeat).

mod apply;
mod files;

pub use apply::{Outcome, Updater};
pub use files::{EventLog, UpdateState};

use patchctl_release::{PublicKey, TrustedRoots};

/// The Rust target triple this binary was built for.
pub const TARGET: &str = env!("PATCHCTL_TARGET");

mod builtin {
    include!(concat!(env!("OUT_DIR"), "/release_roots.rs"));
}

/// The roots built into this binary: (public key hex, where the build took it from).
pub fn builtin_roots() -> &'static [(&'static str, &'static str)] {
    builtin::BUILTIN_ROOTS
}

/// The release roots this binary trusts. Built in at compile time (see `build.rs`);
/// nothing at run time adds one or turns verification off. A key that does not parse
/// is left out (and `self-test` fails on it).
pub fn trusted_roots() -> TrustedRoots {
    TrustedRoots::new(
        builtin::BUILTIN_ROOTS
            .iter()
            .filter_map(|(hex, _)| PublicKey::from_hex(hex))
            .collect(),
    )
}

/// The environment variable that makes `patchctl-agent run` a self-update trial.
pub const TRIAL_ENV: &str = "PATCHCTL_UPDATE_TRIAL";

/// What `patchctl-agent self-test` prints (JSON) and the updater checks.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SelfTest {
    /// Always [`patchctl_proto::release::PRODUCT_AGENT`].
    pub product: String,
    /// The build's version.
    pub version: String,
    /// The build's target triple.
    pub target: String,
    /// How many release roots it trusts (an update to a binary that trusts none would
    /// be the last one, so the updater refuses it).
    pub roots: usize,
}

/// This binary's self-test: it starts, parses its roots and says what it is.
pub fn self_test() -> SelfTest {
    let parsed = trusted_roots().key_ids().len();
    SelfTest {
        product: patchctl_proto::release::PRODUCT_AGENT.into(),
        version: crate::VERSION.into(),
        target: TARGET.into(),
        roots: if parsed == builtin::BUILTIN_ROOTS.len() {
            parsed
        } else {
            0
        },
    }
}

/// Whether `head` (the first bytes of a file) is a 64-bit little-endian ELF file for the
/// machine of `target`. A release artifact must be one before anything runs it: a
/// script would be started through its interpreter, and the agent never starts a shell.
pub fn native_executable(head: &[u8], target: &str) -> Result<(), String> {
    let machine: u16 = match target.split('-').next() {
        Some("x86_64") => 62,
        Some("aarch64") => 183,
        _ => {
            return Err(format!(
                "no executable format is known for target {target:?}"
            ));
        }
    };
    if head.len() < 20 || &head[..4] != b"\x7fELF" {
        return Err(
            "the new binary is not an ELF executable (a script or another file); only a native agent binary is ever run"
                .into(),
        );
    }
    if head[4] != 2 || head[5] != 1 {
        return Err("the new binary is not a 64-bit little-endian ELF executable".into());
    }
    let found = u16::from_le_bytes([head[18], head[19]]);
    if found != machine {
        return Err(format!(
            "the new binary is built for ELF machine {found}, not for {target} (machine {machine})"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
