//! `patchctl admin ...`: first-run administration on the database directly (no server
//! needed).

use clap::Subcommand;
use patchctl_server::bootstrap;

use crate::output;

/// `patchctl admin ...`.
#[derive(Subcommand)]
pub enum AdminCmd {
    /// Create the database (if needed) and an organisation with an admin API token and
    /// an enrollment key; prints them once (only hashes are stored).
    Init {
        /// Database URL: sqlite://PATH or postgres://USER@HOST/DB.
        #[arg(long, env = "PATCHCTL_DATABASE_URL")]
        database_url: String,
        /// Organisation name.
        #[arg(long, default_value = "default")]
        org: String,
    },
}

/// Runs an `admin` subcommand.
pub async fn run(cmd: AdminCmd) -> anyhow::Result<()> {
    match cmd {
        AdminCmd::Init { database_url, org } => init(&database_url, &org).await,
    }
}

/// `patchctl admin init`.
async fn init(database_url: &str, org: &str) -> anyhow::Result<()> {
    let store = patchctl_storage::open(database_url).await?;
    let s = bootstrap::create_org(store.as_ref(), org).await?;
    let doc = serde_json::json!({
        "org": s.org,
        "token": s.token.expose(),
        "enrollment_key": s.enrollment_key.expose(),
    });
    output::json(&doc)?;
    output::note("Store these now: only their hashes are kept.");
    Ok(())
}
