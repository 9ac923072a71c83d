//! `patchctl admin ...`: first-run administration on the database directly (no server
//! needed).

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use patchctl_proto::Secret;
use patchctl_server::bootstrap;
use serde_json::Value;

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
    /// The organisations' command-signing keys (docs/signing.md): every command is
    /// signed by its organisation's key, and agents refuse anything else.
    #[command(subcommand)]
    SigningKey(SigningKeyCmd),
    /// The organisation's approvers (the two-person rule, docs/signing.md): their
    /// list is signed by the command-signing key, so it changes only here, on a node
    /// holding the key file.
    #[command(subcommand)]
    Approvers(ApproversCmd),
}

/// `patchctl admin approvers ...`.
#[derive(Subcommand)]
pub enum ApproversCmd {
    /// Print the approvers and whether agents require a signature.
    List {
        #[command(flatten)]
        place: KeyPlace,
        /// The organisation.
        #[arg(long, default_value = "default")]
        org: String,
    },
    /// Add an approver (or give them a new key).
    Add {
        #[command(flatten)]
        place: KeyPlace,
        /// The organisation.
        #[arg(long, default_value = "default")]
        org: String,
        /// The approver's name.
        #[arg(long)]
        name: String,
        /// Their public key file (PATH.pub from `patchctl approvals keygen`).
        #[arg(long)]
        key: PathBuf,
    },
    /// Remove an approver.
    Remove {
        #[command(flatten)]
        place: KeyPlace,
        /// The organisation.
        #[arg(long, default_value = "default")]
        org: String,
        /// The approver's name.
        #[arg(long)]
        name: String,
    },
    /// Whether every install of a deployment needs an approver's signature (`on`) or
    /// not (`off`). Agents follow at their next heartbeat.
    Require {
        #[command(flatten)]
        place: KeyPlace,
        /// The organisation.
        #[arg(long, default_value = "default")]
        org: String,
        /// `on` or `off`.
        #[arg(value_parser = ["on", "off"])]
        state: String,
    },
}

/// Where the key file and the database are: the server's settings file, or each given.
#[derive(clap::Args)]
pub struct KeyPlace {
    /// The platform's settings file (server.json): its database_url and
    /// command_signing_key (default: command-signing.key beside it).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The key file (instead of the one the settings name).
    #[arg(long, value_name = "FILE")]
    file: Option<PathBuf>,
    /// Database URL (instead of the settings').
    #[arg(long)]
    database_url: Option<String>,
}

/// `patchctl admin signing-key ...`.
#[derive(Subcommand)]
pub enum SigningKeyCmd {
    /// Create the key of every organisation that has none (or of --org). A platform
    /// node also does this at its first start.
    Create {
        #[command(flatten)]
        place: KeyPlace,
        /// Only this organisation.
        #[arg(long)]
        org: Option<String>,
    },
    /// Replace an organisation's key by a new one that the old key signs. Agents follow
    /// on their next heartbeat; copy the file to every other node.
    Rotate {
        #[command(flatten)]
        place: KeyPlace,
        /// The organisation.
        #[arg(long, default_value = "default")]
        org: String,
    },
    /// Print each organisation's public key: the line an agent's config pins as
    /// command_signing_key (strict mode).
    Show {
        #[command(flatten)]
        place: KeyPlace,
    },
    /// Write two commands for a host straight into the database, as an attacker with
    /// write access to it would: one unsigned, one signed by a made-up key. The agent
    /// must refuse both: `patchctl commands show ID` says why.
    CheckAgent {
        #[command(flatten)]
        place: KeyPlace,
        /// The organisation.
        #[arg(long, default_value = "default")]
        org: String,
        /// The host: its id or name.
        #[arg(long)]
        host: String,
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
        AdminCmd::SigningKey(cmd) => signing_key(cmd).await,
        AdminCmd::Approvers(cmd) => approvers(cmd).await,
    }
}

/// The key file and, when asked for, the database URL of `place`.
fn resolve(place: &KeyPlace) -> anyhow::Result<(PathBuf, Option<String>)> {
    let settings = match &place.config {
        Some(path) => Some(patchctl_server::Settings::load(path)?),
        None => None,
    };
    let file = place
        .file
        .clone()
        .or_else(|| {
            settings
                .as_ref()
                .and_then(|s| s.command_signing_key.clone())
        })
        .context("name the key file: --config SERVER_JSON or --file PATH")?;
    let url = place
        .database_url
        .clone()
        .or_else(|| settings.map(|s| s.database_url));
    Ok((file, url))
}

async fn signing_key(cmd: SigningKeyCmd) -> anyhow::Result<()> {
    use patchctl_server::signing::admin;
    let open = |url: Option<String>| async move {
        let url = url.context("name the database: --config SERVER_JSON or --database-url URL")?;
        anyhow::Ok(patchctl_storage::open(&url).await?)
    };
    match cmd {
        SigningKeyCmd::Show { place } => {
            let (file, _) = resolve(&place)?;
            let keys = admin::show(&file)?;
            if keys.is_empty() {
                output::note(&format!(
                    "{} holds no key yet: `patchctl admin signing-key create` (or the platform's first start) makes them",
                    file.display()
                ));
            }
            let rows: Vec<Vec<String>> = keys
                .iter()
                .map(|k| {
                    vec![
                        k.org.to_string(),
                        k.key.clone(),
                        k.key_id.clone(),
                        k.rotations.to_string(),
                    ]
                })
                .collect();
            if !keys.is_empty() {
                output::text(&output::table(
                    &["ORG", "PUBLIC KEY (pin this)", "KEY ID", "ROTATIONS"],
                    &rows,
                ));
            }
        }
        SigningKeyCmd::Create { place, org } => {
            let (file, url) = resolve(&place)?;
            let store = open(url).await?;
            let orgs = match org {
                Some(name) => vec![
                    store
                        .org_by_name(&name)
                        .await?
                        .with_context(|| format!("no organisation named {name:?}"))?,
                ],
                None => store.list_orgs().await?,
            };
            let mut out = Vec::new();
            for o in orgs {
                let key = admin::create(&file, store.as_ref(), o.id).await?;
                out.push(serde_json::json!({ "org": o.name, "org_id": o.id, "key": key.to_line(), "key_id": key.key_id() }));
            }
            output::json(&out)?;
            output::note(&format!(
                "The secret keys are in {} (mode 0600). Every platform node uses this same file.",
                file.display()
            ));
        }
        SigningKeyCmd::CheckAgent { place, org, host } => {
            let (_, url) = resolve(&place)?;
            let store = open(url).await?;
            let o = store
                .org_by_name(&org)
                .await?
                .with_context(|| format!("no organisation named {org:?}"))?;
            let by_id = match uuid::Uuid::parse_str(&host) {
                Ok(id) => store.host(o.id, id).await?,
                Err(_) => None,
            };
            let h = match by_id {
                Some(h) => h,
                None => {
                    let mut found = store.hosts_by_name(o.id, &host).await?;
                    anyhow::ensure!(
                        found.len() == 1,
                        "{} hosts are named {host:?}; give the host id (`patchctl hosts list`)",
                        found.len()
                    );
                    found.remove(0)
                }
            };
            let made = admin::check_agent(store.as_ref(), o.id, h.id).await?;
            let out: Vec<Value> = made
                .iter()
                .map(|(id, what)| serde_json::json!({ "command_id": id, "forged": what }))
                .collect();
            output::json(&out)?;
            output::note(
                "Within a heartbeat the agent refuses both: `patchctl commands show <command_id>` shows `rejected` and why.",
            );
        }
        SigningKeyCmd::Rotate { place, org } => {
            let (file, url) = resolve(&place)?;
            let store = open(url).await?;
            let o = store
                .org_by_name(&org)
                .await?
                .with_context(|| format!("no organisation named {org:?}"))?;
            let (old, new) = admin::rotate(&file, store.as_ref(), o.id, chrono::Utc::now()).await?;
            output::json(&serde_json::json!({
                "org": o.name, "retired": old.key_id(), "key": new.to_line(), "key_id": new.key_id(),
            }))?;
            output::note(
                "Agents follow the rotation on their next heartbeat (the old key signed it). Copy the key file to every other platform node now; strict-mode agents pinned to the old key follow it too.",
            );
        }
    }
    Ok(())
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

async fn approvers(cmd: ApproversCmd) -> anyhow::Result<()> {
    use patchctl_server::signing::admin::{self, ApproverChange};
    let (place, org, change) = match cmd {
        ApproversCmd::List { place, org } => (place, org, None),
        ApproversCmd::Add {
            place,
            org,
            name,
            key,
        } => {
            let text = std::fs::read_to_string(&key)
                .with_context(|| format!("cannot read {}", key.display()))?;
            let keys = patchctl_release::PublicKey::parse_file(&text)
                .with_context(|| format!("{}", key.display()))?;
            anyhow::ensure!(
                keys.len() == 1,
                "{} holds {} keys; give the approver's one .pub file",
                key.display(),
                keys.len()
            );
            (place, org, Some(ApproverChange::Add { name, key: keys[0] }))
        }
        ApproversCmd::Remove { place, org, name } => {
            (place, org, Some(ApproverChange::Remove { name }))
        }
        ApproversCmd::Require { place, org, state } => {
            (place, org, Some(ApproverChange::Require(state == "on")))
        }
    };
    let (file, url) = resolve(&place)?;
    let url = url.context("name the database: --config SERVER_JSON or --database-url URL")?;
    let store = patchctl_storage::open(&url).await?;
    let o = store
        .org_by_name(&org)
        .await?
        .with_context(|| format!("no organisation named {org:?}"))?;
    let list = match change {
        Some(c) => Some(admin::change_approvers(&file, store.as_ref(), o.id, c).await?),
        None => admin::approvers(&file, o.id)?,
    };
    match list {
        None => output::note(&format!("organisation {org} has no approvers")),
        Some(l) => {
            output::json(&l)?;
            output::note(&format!(
                "approver signatures {} (list serial {}); agents take the list at their next heartbeat",
                if l.required {
                    "REQUIRED on installs"
                } else {
                    "not required"
                },
                l.serial
            ));
        }
    }
    Ok(())
}
