//! First-run set-up: an organisation with an API token and an enrollment key, its first
//! owner ([`create_owner`], for `patchctl admin init`), and the `--dev` data directory
//! (SQLite, development CA, certificates, agent config, and the owner `admin` with a
//! random password kept in `dev.json` for the printed dashboard login).
//!
//! A reused `--dev` directory keeps its enrollment key; when an operator has revoked or
//! rotated it since (or it expired or was used up), [`DevSetup::key_warning`] says so,
//! for the start-up output, instead of agents failing to enroll without a word.

use std::net::SocketAddr;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use chrono::Utc;
use patchctl_net::tls::TlsError;
use patchctl_proto::Secret;
use patchctl_proto::trust::KeyState;
use patchctl_storage::{Storage, StorageError};
use serde::{Deserialize, Serialize};

use crate::Settings;
use crate::auth::{ENROLLMENT_KEY_PREFIX, TOKEN_PREFIX, hash_secret, new_secret};
use crate::passwords::{self, PasswordError};
use crate::settings::SettingsError;

/// The username `--dev` creates as the organisation's owner.
pub const DEV_ADMIN: &str = "admin";

/// A random password of 20 characters from an alphabet without look-alikes (about 116
/// bits), for `--dev` and `admin init` when none is given.
pub fn random_password() -> Secret {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    Secret::new(
        (0..20)
            .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
            .collect::<String>(),
    )
}

/// Why an owner could not be created.
#[derive(Debug, thiserror::Error)]
pub enum OwnerError {
    /// The password is too short or could not be hashed.
    #[error(transparent)]
    Password(#[from] PasswordError),
    /// The username is taken (usernames are unique on the platform).
    #[error("the username {0:?} is taken; choose another with --owner")]
    Taken(String),
    /// The database refused.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Creates `username` as an owner of `org_id` with `password`, stored as an Argon2id
/// hash.
pub async fn create_owner(
    store: &dyn Storage,
    org_id: uuid::Uuid,
    username: &str,
    password: &Secret,
) -> Result<patchctl_storage::User, OwnerError> {
    passwords::check_new_password(password.expose())?;
    let password_hash = passwords::hash_password(password.expose())?;
    store
        .create_user(patchctl_storage::NewUser {
            org_id,
            username: username.to_owned(),
            password_hash,
            role: patchctl_proto::access::Role::Owner,
            now: Utc::now(),
        })
        .await
        .map_err(|e| match e {
            StorageError::Conflict(_) => OwnerError::Taken(username.to_owned()),
            other => other.into(),
        })
}

/// Secrets created for a new organisation. Shown once; only hashes are stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OrgSecrets {
    /// Organisation name.
    pub org: String,
    /// Admin API token.
    pub token: Secret,
    /// Enrollment (license) key.
    pub enrollment_key: Secret,
}

/// Why the `--dev` set-up failed.
#[derive(Debug, thiserror::Error)]
pub enum DevSetupError {
    /// A file or directory of the data directory could not be created, read or written.
    #[error("cannot use {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// `dev.json` of a previous run is not what this version writes.
    #[error("{} is corrupt ({source}); delete the directory to start over", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        source: serde_json::Error,
    },
    /// A file's content cannot be written as JSON (a path that is not UTF-8).
    #[error("cannot write {}: {source}; use a data directory whose path is UTF-8", path.display())]
    Unwritable {
        /// The file.
        path: PathBuf,
        /// What the serialiser said.
        source: serde_json::Error,
    },
    /// `server.json` of a previous run does not load.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// The listen address is taken or not allowed.
    #[error("cannot listen on {addr}: {source}; pass --listen 127.0.0.1:PORT with a free port")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// What the system said.
        source: std::io::Error,
    },
    /// The development CA or the server certificate could not be made.
    #[error(transparent)]
    Pki(#[from] TlsError),
    /// The database could not be opened or the organisation not created.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The development owner could not be created.
    #[error("cannot create the development owner {DEV_ADMIN:?}: {0}")]
    Owner(#[from] OwnerError),
}

/// Creates an organisation with an admin token and an enrollment key.
pub async fn create_org(store: &dyn Storage, name: &str) -> Result<OrgSecrets, StorageError> {
    let now = Utc::now();
    let org = store.create_org(name, now).await?;
    let token = new_secret(TOKEN_PREFIX);
    store
        .create_api_token(org.id, "admin", &hash_secret(token.expose()), now)
        .await?;
    let key = new_secret(ENROLLMENT_KEY_PREFIX);
    store
        .create_enrollment_key(org.id, "default", &hash_secret(key.expose()), now)
        .await?;
    Ok(OrgSecrets {
        org: name.to_owned(),
        token,
        enrollment_key: key,
    })
}

/// What `patchctl server --dev` writes to `DIR/dev.json` (0600) and prints.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DevInfo {
    /// The platform's URL.
    pub url: String,
    /// The development CA to trust (`--ca-file`).
    pub ca_file: PathBuf,
    /// Admin API token.
    pub token: Secret,
    /// Enrollment key.
    pub enrollment_key: Secret,
    /// The database.
    pub database_url: String,
    /// Server config usable with `patchctl server --config`.
    pub server_config: PathBuf,
    /// Config of the agent that enrolls this machine.
    pub agent_config: PathBuf,
    /// The dashboard login: the owner's username.
    #[serde(default = "dev_admin")]
    pub admin_user: String,
    /// The dashboard login: the owner's password (none in a directory made before
    /// users existed; the next start creates it).
    #[serde(default)]
    pub admin_password: Option<Secret>,
}

fn dev_admin() -> String {
    DEV_ADMIN.to_owned()
}

/// The development owner's password: the one `dev.json` keeps when the user exists,
/// else a new one (the user created, or its password reset when `dev.json` lost it).
async fn dev_owner(
    store: &dyn Storage,
    org: &str,
    kept: Option<Secret>,
) -> Result<Secret, DevSetupError> {
    let existing = store.user_login(DEV_ADMIN).await?;
    if let (Some(pw), Some(_)) = (&kept, &existing) {
        return Ok(pw.clone());
    }
    let pw = random_password();
    match existing {
        Some((u, _)) => {
            let hash = passwords::hash_password(pw.expose()).map_err(OwnerError::from)?;
            store
                .set_user_password(u.org_id, u.id, &hash, Utc::now())
                .await?;
        }
        None => {
            let org = store.org_by_name(org).await?.ok_or_else(|| {
                StorageError::Invalid(format!("the organisation {org:?} is missing"))
            })?;
            create_owner(store, org.id, DEV_ADMIN, &pw).await?;
        }
    }
    Ok(pw)
}

fn private_dir(p: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(p)
}

/// Pretty JSON of what goes into `path`.
fn to_json(path: &Path, v: &impl Serialize) -> Result<Vec<u8>, DevSetupError> {
    serde_json::to_vec_pretty(v).map_err(|source| DevSetupError::Unwritable {
        path: path.to_owned(),
        source,
    })
}

fn write_private(p: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(p)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// The development set-up: settings to serve with and what to print.
pub struct DevSetup {
    /// Settings for [`crate::launch_with_listener`].
    pub settings: Settings,
    /// The listener, already bound.
    pub listener: tokio::net::TcpListener,
    /// What was written to `dev.json`.
    pub info: DevInfo,
    /// True when the data directory was created now (not reused).
    pub fresh: bool,
    /// Set when the enrollment key of `dev.json` no longer enrolls hosts: what is
    /// wrong and what to do.
    pub key_warning: Option<String>,
}

/// What to tell when the development enrollment key is in `state` (none: the database
/// does not know it), or nothing when it still enrolls hosts.
fn key_warning(state: Option<KeyState>, agent_config: &Path) -> Option<String> {
    let what = match state {
        Some(KeyState::Active) => return None,
        Some(KeyState::Revoked) => "was revoked",
        Some(KeyState::Expired) => "has expired (or was rotated)",
        Some(KeyState::Exhausted) => "has enrolled its maximum number of hosts",
        None => "is not known to the database",
    };
    Some(format!(
        "the enrollment key in dev.json {what}: an agent that has not enrolled yet cannot \
         enroll with it (an agent that already enrolled keeps its credential). Create a key \
         with `patchctl keys create --name dev` and put it into {} as license_key",
        agent_config.display()
    ))
}

/// Creates (or reuses) a development data directory and binds the listener.
///
/// `listen` defaults to the address of a previous run in the same directory, else
/// `127.0.0.1:8443`. Port 0 picks a free port.
pub async fn dev_setup(
    dir: &Path,
    listen: Option<SocketAddr>,
    agent_heartbeat_secs: u64,
) -> Result<DevSetup, DevSetupError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| DevSetupError::Io { path, source }
    };
    private_dir(dir).map_err(io(dir))?;
    let dir = std::fs::canonicalize(dir).map_err(io(dir))?;
    let dev_json = dir.join("dev.json");
    let server_json = dir.join("server.json");
    let previous: Option<(DevInfo, Settings)> = if dev_json.exists() && server_json.exists() {
        let bytes = std::fs::read(&dev_json).map_err(io(&dev_json))?;
        let info: DevInfo =
            serde_json::from_slice(&bytes).map_err(|source| DevSetupError::Corrupt {
                path: dev_json.clone(),
                source,
            })?;
        Some((info, Settings::load_file(&server_json)?))
    } else {
        None
    };
    let fresh = previous.is_none();
    let previous_settings = previous.as_ref().map(|(_, s)| s.clone());
    let listen = listen
        .or(previous.as_ref().map(|(_, s)| s.listen))
        .unwrap_or_else(|| "127.0.0.1:8443".parse().expect("valid address"));
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| DevSetupError::Listen {
            addr: listen,
            source,
        })?;
    let bound = listener
        .local_addr()
        .map_err(|source| DevSetupError::Listen {
            addr: listen,
            source,
        })?;
    let names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    let pki = patchctl_net::devca::ensure_dev_pki(&dir.join("pki"), &names)?;
    let database_url = format!("sqlite://{}", dir.join("patchctl.db").display());
    let url = format!("https://localhost:{}", bound.port());
    let settings = Settings {
        heartbeat_interval_secs: agent_heartbeat_secs,
        policy_tick_secs: 5,
        command_lease_secs: 120,
        // The feed settings an operator put in the directory's server.json are kept.
        vuln_feeds: previous_settings
            .as_ref()
            .map(|s| s.vuln_feeds.clone())
            .unwrap_or_default(),
        vuln_sync: previous_settings.as_ref().is_none_or(|s| s.vuln_sync),
        vuln_sync_interval_secs: previous_settings
            .as_ref()
            .map_or_else(crate::settings::default_vuln_sync_interval, |s| {
                s.vuln_sync_interval_secs
            }),
        vuln_sync_dir: previous_settings
            .as_ref()
            .and_then(|s| s.vuln_sync_dir.clone()),
        vuln_ca_file: previous_settings
            .as_ref()
            .and_then(|s| s.vuln_ca_file.clone()),
        metrics_listen: previous_settings.as_ref().and_then(|s| s.metrics_listen),
        // A newcomer's local webhook receiver: loopback is allowed (and whatever else an
        // operator put in the directory's server.json).
        webhook_allow_networks: dev_webhook_networks(previous_settings.as_ref()),
        // The organisation's command-signing key, kept with the rest of the directory.
        command_signing_key: Some(dir.join(crate::signing::DEFAULT_FILE_NAME)),
        ..Settings::with_defaults(
            bound,
            database_url.clone(),
            pki.server_cert.clone(),
            pki.server_key.clone(),
        )
    };
    let agent_dir = dir.join("agent");
    let agent_config = agent_dir.join("config.json");
    let store = patchctl_storage::open(&database_url).await?;
    let kept_password = previous
        .as_ref()
        .and_then(|(info, _)| info.admin_password.clone());
    let (token, enrollment_key, key_warning) = match previous {
        Some((info, _)) => {
            let state = store
                .enrollment_key_by_hash(&hash_secret(info.enrollment_key.expose()))
                .await?
                .map(|k| k.state(Utc::now()));
            (
                info.token,
                info.enrollment_key,
                key_warning(state, &agent_config),
            )
        }
        None => {
            let s = create_org(store.as_ref(), "default").await?;
            (s.token, s.enrollment_key, None)
        }
    };
    let admin_password = dev_owner(store.as_ref(), "default", kept_password).await?;
    drop(store);
    write_private(&server_json, &to_json(&server_json, &settings)?).map_err(io(&server_json))?;
    private_dir(&agent_dir).map_err(io(&agent_dir))?;
    let agent_cfg = serde_json::json!({
        "server_url": url,
        "license_key": enrollment_key.expose(),
        "ca_bundle": pki.ca_cert,
        "heartbeat_interval_secs": agent_heartbeat_secs,
        "state_dir": agent_dir.join("state"),
    });
    write_private(&agent_config, &to_json(&agent_config, &agent_cfg)?)
        .map_err(io(&agent_config))?;
    let info = DevInfo {
        url,
        ca_file: pki.ca_cert,
        token,
        enrollment_key,
        database_url,
        server_config: server_json,
        agent_config,
        admin_user: DEV_ADMIN.to_owned(),
        admin_password: Some(admin_password),
    };
    // dev.json holds the token and key (a Secret serialises its value): written 0600,
    // like every secret file.
    write_private(&dev_json, &to_json(&dev_json, &info)?).map_err(io(&dev_json))?;
    Ok(DevSetup {
        settings,
        listener,
        info,
        fresh,
        key_warning,
    })
}

/// The webhook networks of `--dev`: loopback (`127.0.0.0/8`, `::1`) and any the
/// directory's previous `server.json` allowed.
fn dev_webhook_networks(previous: Option<&Settings>) -> Vec<crate::settings::Cidr> {
    let mut nets: Vec<crate::settings::Cidr> = ["127.0.0.0/8", "::1/128"]
        .iter()
        .filter_map(|c| c.parse().ok())
        .collect();
    for n in previous
        .map(|s| s.webhook_allow_networks.clone())
        .unwrap_or_default()
    {
        if !nets.contains(&n) {
            nets.push(n);
        }
    }
    nets
}
