//! `patchctl release publish|list|rollout`: the platform's side of signed releases,
//! over the operator API. Publishing sends the bundle and the artifact
//! (`POST /api/v1/releases`, which verifies both before storing); the rollout names
//! the agent release the organisation's hosts should run (`/api/v1/agent-rollout`).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use base64::Engine as _;
use clap::Args;
use http::Method;
use patchctl_proto::release::{
    AgentRollout, MAX_ARTIFACT_BYTES, PublishRelease, ReleaseBundle, ReleaseInfo,
};

use crate::client::{Api, Conn};
use crate::output::{self, table};

/// How long a publication may take: the artifact is up to 64 MiB.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(600);

/// `release publish`.
#[derive(Args)]
pub struct PublishArgs {
    /// The signed bundle (JSON: the signing-key list and the manifest).
    pub bundle: PathBuf,
    /// The artifact the manifest describes (the agent binary or a package of it).
    pub artifact: PathBuf,
}

/// `release rollout`.
#[derive(Args)]
pub struct RolloutArgs {
    /// The agent release hosts should run (it must be published); none: show the
    /// current rollout.
    #[arg(conflicts_with = "off")]
    pub version: Option<String>,
    /// Offer it only to this share of hosts, 1–100 (the same hosts stay in as it grows);
    /// left out: every host.
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=100), requires = "version")]
    pub canary: Option<u8>,
    /// Stop offering any release (hosts keep the version they run).
    #[arg(long)]
    pub off: bool,
}

/// Reads the bundle and the artifact and publishes them.
pub async fn publish(conn: &Conn, args: PublishArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.bundle)
        .with_context(|| format!("cannot read the bundle {}", args.bundle.display()))?;
    let bundle: ReleaseBundle = serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not a release bundle (JSON with \"keys\" and \"manifest\", as `patchctl release sign` writes it)",
            args.bundle.display()
        )
    })?;
    let size = std::fs::metadata(&args.artifact)
        .with_context(|| format!("cannot read the artifact {}", args.artifact.display()))?
        .len();
    if size > MAX_ARTIFACT_BYTES {
        anyhow::bail!(
            "{} is {size} bytes; a release artifact may have at most {MAX_ARTIFACT_BYTES}",
            args.artifact.display()
        );
    }
    let bytes = std::fs::read(&args.artifact)
        .with_context(|| format!("cannot read the artifact {}", args.artifact.display()))?;
    let req = PublishRelease {
        bundle,
        artifact_base64: base64::engine::general_purpose::STANDARD.encode(&bytes),
    };
    let api = Api::new(conn)?.with_timeout(PUBLISH_TIMEOUT);
    let info: ReleaseInfo = api
        .call(Method::POST, "/api/v1/releases", Some(&req))
        .await?;
    output::emit(conn.output, &info, |i| {
        format!(
            "published {} {} for {} ({} channel, {} bytes, sha256 {}), expires {}\n",
            i.product,
            i.version,
            i.target,
            i.channel,
            i.size,
            i.sha256,
            i.expires.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )
    })?;
    Ok(())
}

/// Lists the published releases.
pub async fn list(conn: &Conn) -> anyhow::Result<()> {
    let api = Api::new(conn)?;
    let releases: Vec<ReleaseInfo> = api.get("/api/v1/releases").await?;
    output::emit(conn.output, &releases, |r| list_table(r))?;
    if conn.output == output::Format::Table && releases.is_empty() {
        output::note(
            "no release is published yet: `patchctl release publish BUNDLE ARTIFACT` publishes one",
        );
    }
    Ok(())
}

/// Shows or sets the rollout.
pub async fn rollout(conn: &Conn, args: RolloutArgs) -> anyhow::Result<()> {
    let api = Api::new(conn)?;
    let rollout: AgentRollout = if args.off {
        let off = AgentRollout::default();
        api.call(Method::PUT, "/api/v1/agent-rollout", Some(&off))
            .await?
    } else if let Some(version) = args.version {
        let set = AgentRollout {
            version: Some(version),
            canary_percent: args.canary,
        };
        api.call(Method::PUT, "/api/v1/agent-rollout", Some(&set))
            .await?
    } else {
        api.get("/api/v1/agent-rollout").await?
    };
    output::emit(conn.output, &rollout, |r| format!("{}\n", rollout_text(r)))?;
    Ok(())
}

/// A rollout in words.
fn rollout_text(r: &AgentRollout) -> String {
    match (&r.version, r.canary_percent) {
        (None, _) => "no agent release is offered: agents keep the version they run (`patchctl release rollout VERSION` offers one)".into(),
        (Some(v), None | Some(100)) => format!(
            "agent release {v} is offered to every host; each updates itself at its next heartbeat (`patchctl hosts list` shows how far they got)"
        ),
        (Some(v), Some(p)) => format!(
            "agent release {v} is offered to a canary of {p} % of the hosts (chosen by host id; the same hosts stay in as it grows); `patchctl hosts list` shows how far they got"
        ),
    }
}

/// `release list`.
fn list_table(releases: &[ReleaseInfo]) -> String {
    let rows = releases
        .iter()
        .map(|r| {
            vec![
                r.product.clone(),
                r.version.clone(),
                r.target.clone(),
                r.channel.clone(),
                r.size.to_string(),
                r.sha256.chars().take(16).collect(),
                r.expires.format("%Y-%m-%d").to_string(),
                r.published_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            ]
        })
        .collect::<Vec<_>>();
    table(
        &[
            "PRODUCT",
            "VERSION",
            "TARGET",
            "CHANNEL",
            "SIZE",
            "SHA256",
            "EXPIRES",
            "PUBLISHED",
        ],
        &rows,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rollout_in_words() {
        let r = |v: Option<&str>, p: Option<u8>| AgentRollout {
            version: v.map(str::to_owned),
            canary_percent: p,
        };
        assert!(rollout_text(&r(None, Some(5))).starts_with("no agent release is offered"));
        assert!(rollout_text(&r(Some("1.2.0"), None)).contains("1.2.0 is offered to every host"));
        assert!(rollout_text(&r(Some("1.2.0"), Some(100))).contains("every host"));
        assert!(rollout_text(&r(Some("1.2.0"), Some(10))).contains("canary of 10 %"));
    }
}
