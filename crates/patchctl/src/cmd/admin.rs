//! `patchctl admin ...`: first-run administration on the database directly (no server
//! needed).

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use patchctl_proto::Secret;
use patchctl_server::bootstrap;

use crate::output;

/// `patchctl admin ...`.
#[derive(Subcommand)]
pub enum AdminCmd {
    /// Create the database (if needed), an organisation with an organisation API token
    /// and an enrollment key, and its first owner; prints the secrets once (only
    /// hashes are stored). On an existing organisation without an active owner, creates
    /// only the owner.
    Init {
        /// Database URL: sqlite://PATH or postgres://USER@HOST/DB.
        #[arg(long, env = "PATCHCTL_DATABASE_URL")]
        database_url: String,
        /// Organisation name.
        #[arg(long, default_value = "default")]
        org: String,
        /// Username of the first owner.
        #[arg(long, default_value = bootstrap::DEV_ADMIN)]
        owner: String,
        /// Read the owner's password from this file (its first line, at least 12
        /// characters); without it a random password is generated and printed once.
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
    },
}

/// Runs an `admin` subcommand.
pub async fn run(cmd: AdminCmd) -> anyhow::Result<()> {
    match cmd {
        AdminCmd::Init {
            database_url,
            org,
            owner,
            password_file,
        } => init(&database_url, &org, &owner, password_file).await,
    }
}

/// `patchctl admin init`.
async fn init(
    database_url: &str,
    org: &str,
    owner: &str,
    password_file: Option<PathBuf>,
) -> anyhow::Result<()> {
    let given = match &password_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the password file {}", path.display()))?;
            let line = text.lines().next().unwrap_or("").to_owned();
            anyhow::ensure!(
                !line.is_empty(),
                "the password file {} is empty: put the password on its first line",
                path.display()
            );
            Some(Secret::new(line))
        }
        None => None,
    };
    let store = patchctl_storage::open(database_url).await?;
    let mut doc = serde_json::json!({ "org": org });
    let org_id = match store.org_by_name(org).await? {
        Some(o) => {
            let owners = store.count_active_owners(o.id).await?;
            anyhow::ensure!(
                owners == 0,
                "the organisation {org:?} already exists with {owners} active owner(s); add users \
                 with `patchctl users add` (as an owner or admin)"
            );
            o.id
        }
        None => {
            let s = bootstrap::create_org(store.as_ref(), org).await?;
            doc["token"] = s.token.expose().into();
            doc["enrollment_key"] = s.enrollment_key.expose().into();
            store
                .org_by_name(org)
                .await?
                .context("the organisation just created is missing")?
                .id
        }
    };
    let password = given.clone().unwrap_or_else(bootstrap::random_password);
    let user = bootstrap::create_owner(store.as_ref(), org_id, owner, &password).await?;
    doc["owner"] = serde_json::json!({ "username": user.username, "id": user.id });
    if given.is_none() {
        doc["owner"]["password"] = password.expose().into();
    }
    output::json(&doc)?;
    output::note("Store these now: only their hashes are kept.");
    Ok(())
}
