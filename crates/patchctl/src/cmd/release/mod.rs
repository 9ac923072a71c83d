//! `patchctl release ...`: signed releases. The platform half is in [`platform`]
//! (publish, list, the agent rollout, over the operator API); the offline half (keys,
//! signing, verifying) joins it here.

use clap::Subcommand;

use crate::client::Conn;

pub mod platform;

/// `patchctl release ...`.
#[derive(Subcommand)]
pub enum ReleaseCmd {
    /// Publish a signed release to the platform: the bundle (`patchctl release sign`
    /// wrote it) and the artifact it was signed for. The platform checks signatures,
    /// expiries, size and SHA-256 before it stores anything.
    Publish(platform::PublishArgs),
    /// List the releases published on the platform, newest first.
    List,
    /// Show or set which agent release the organisation's hosts run: `rollout` shows
    /// it, `rollout VERSION [--canary PCT]` offers VERSION (to PCT % of the hosts),
    /// `rollout --off` stops offering.
    Rollout(platform::RolloutArgs),
}

/// Runs a `release` subcommand.
pub async fn run(conn: &Conn, cmd: ReleaseCmd) -> anyhow::Result<()> {
    match cmd {
        ReleaseCmd::Publish(args) => platform::publish(conn, args).await,
        ReleaseCmd::List => platform::list(conn).await,
        ReleaseCmd::Rollout(args) => platform::rollout(conn, args).await,
    }
}
