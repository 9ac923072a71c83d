//! The agent's configuration file (`/etc/patchctl/config.json`) and the checks that
//! keep it private.
//!
//! The file holds the license key, so the agent refuses to start when the file or its
//! directory could be read or changed by anyone but the user the agent runs as (root in
//! production; the owner check follows the effective uid, so `--dev` and tests running
//! unprivileged are held to "owned by the running user" with the same mode checks).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use patchctl_proto::Secret;
use serde::Deserialize;

/// Where the agent looks for its configuration by default.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/patchctl/config.json";
/// Where the agent keeps results not yet delivered, by default.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/patchctl";
/// Default heartbeat interval: five minutes.
pub const DEFAULT_HEARTBEAT_SECS: u64 = 300;
/// Default package-scan interval: six hours.
pub const DEFAULT_SCAN_SECS: u64 = 21_600;
/// Default age at which the agent replaces its credential: 30 days.
pub const DEFAULT_CREDENTIAL_ROTATION_DAYS: u64 = 30;
/// Default time a new agent binary has to reach the platform before it is rolled back.
pub const DEFAULT_UPDATE_CONFIRM_SECS: u64 = 120;
/// Default longest wait of one long-poll (`POST /api/v1/agent/commands/wait`): four
/// minutes, under the heartbeat interval, so a command reaches the host in seconds.
pub const DEFAULT_LONG_POLL_SECS: u64 = 240;
/// The longest rotation interval accepted, in days.
const MAX_CREDENTIAL_ROTATION_DAYS: u64 = 365;

/// The configuration file as written by a person.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    server_url: String,
    license_key: Secret,
    #[serde(default)]
    ca_bundle: Option<PathBuf>,
    #[serde(default = "default_heartbeat")]
    heartbeat_interval_secs: u64,
    #[serde(default = "default_scan")]
    scan_interval_secs: u64,
    #[serde(default)]
    log_dir: Option<PathBuf>,
    #[serde(default)]
    state_dir: Option<PathBuf>,
    #[serde(default = "default_rotation")]
    credential_rotation_days: u64,
    #[serde(default = "default_self_update")]
    self_update: bool,
    #[serde(default = "default_confirm")]
    update_confirm_secs: u64,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    command_signing_key: Option<String>,
    #[serde(default = "default_long_poll")]
    long_poll_secs: u64,
}

fn default_long_poll() -> u64 {
    DEFAULT_LONG_POLL_SECS
}

fn default_self_update() -> bool {
    true
}

fn default_confirm() -> u64 {
    DEFAULT_UPDATE_CONFIRM_SECS
}

fn default_heartbeat() -> u64 {
    DEFAULT_HEARTBEAT_SECS
}

fn default_scan() -> u64 {
    DEFAULT_SCAN_SECS
}

fn default_rotation() -> u64 {
    DEFAULT_CREDENTIAL_ROTATION_DAYS
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Where the configuration was read from.
    pub path: PathBuf,
    /// Platform base URL (`https://...`).
    pub server_url: String,
    /// Enrollment key; sent once, at enrollment.
    pub license_key: Secret,
    /// CA bundle that alone is trusted, instead of the system roots.
    pub ca_bundle: Option<PathBuf>,
    /// Time between heartbeats (jitter is added).
    pub heartbeat_interval: Duration,
    /// Time between package scans.
    pub scan_interval: Duration,
    /// Optional directory for a local log file in addition to the journal.
    pub log_dir: Option<PathBuf>,
    /// Directory for undelivered results.
    pub state_dir: PathBuf,
    /// Age at which the agent asks the platform for a new credential; `None`: never.
    pub credential_rotation: Option<Duration>,
    /// Whether the agent installs the signed release the platform offers (default
    /// true). Off, offers are logged and left alone; verification is never off.
    pub self_update: bool,
    /// How long a new binary has to reach the platform before the previous one is
    /// restored.
    pub update_confirm: Duration,
    /// Labels of this host that the platform's groups can select on (`agent_tags`).
    pub tags: Vec<String>,
    /// Strict mode: the organisation's command-signing key, pinned by the operator
    /// (`ed25519:<hex>`, from `patchctl admin signing-key show`). The agent then trusts
    /// only this key and the rotations it signed, whatever the platform announces.
    pub command_signing_key: Option<patchctl_release::PublicKey>,
    /// Longest wait of one long-poll between heartbeats (`long_poll_secs`, default 240
    /// s); `None` (`0`): the agent sleeps between heartbeats and commands wait for the
    /// next one.
    pub long_poll: Option<Duration>,
}

/// Why a configuration was refused. Messages name the file and say what to do; they
/// never include the license key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {path}: {source}; create it (see README: agent configuration)")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid JSON or has unknown or missing fields.
    #[error("config {path} is invalid: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What serde said (field names, line and column).
        message: String,
    },
    /// A value is out of range or malformed.
    #[error("config {path}: {message}")]
    Value {
        /// The file.
        path: PathBuf,
        /// What was wrong and what to do.
        message: String,
    },
    /// The file or its directory is not private to the agent's user.
    #[error("refusing to start: {message}")]
    Permissions {
        /// Which check failed and how to fix it.
        message: String,
    },
}

impl AgentConfig {
    /// Reads, checks the permissions of, and validates the configuration at `path`.
    pub fn load(path: &Path) -> Result<AgentConfig, ConfigError> {
        check_private(path, "config")?;
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Validates configuration text (no permission checks).
    pub fn parse(path: &Path, text: &str) -> Result<AgentConfig, ConfigError> {
        let raw: RawConfig = serde_json::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        let value_err = |message: String| ConfigError::Value {
            path: path.to_owned(),
            message,
        };
        if !raw.server_url.starts_with("https://") {
            return Err(value_err(format!(
                "server_url {:?} must start with https:// (the agent only speaks TLS 1.3)",
                raw.server_url
            )));
        }
        if raw.license_key.is_empty() {
            return Err(value_err(
                "license_key is empty; paste the enrollment key from `patchctl server` output"
                    .into(),
            ));
        }
        if !(5..=86_400).contains(&raw.heartbeat_interval_secs) {
            return Err(value_err(format!(
                "heartbeat_interval_secs is {}; use a value from 5 to 86400 (default 300)",
                raw.heartbeat_interval_secs
            )));
        }
        if !(60..=7 * 86_400).contains(&raw.scan_interval_secs) {
            return Err(value_err(format!(
                "scan_interval_secs is {}; use a value from 60 to 604800 (default 21600)",
                raw.scan_interval_secs
            )));
        }
        if raw.long_poll_secs != 0 && !(10..=900).contains(&raw.long_poll_secs) {
            return Err(value_err(format!(
                "long_poll_secs is {}; use a value from 10 to 900, or 0 to wait by sleeping between heartbeats (default {DEFAULT_LONG_POLL_SECS})",
                raw.long_poll_secs
            )));
        }
        if raw.credential_rotation_days > MAX_CREDENTIAL_ROTATION_DAYS {
            return Err(value_err(format!(
                "credential_rotation_days is {}; use a value from 1 to {MAX_CREDENTIAL_ROTATION_DAYS}, or 0 to never rotate (default {DEFAULT_CREDENTIAL_ROTATION_DAYS})",
                raw.credential_rotation_days
            )));
        }
        if !(10..=3600).contains(&raw.update_confirm_secs) {
            return Err(value_err(format!(
                "update_confirm_secs is {}; use a value from 10 to 3600 (default {DEFAULT_UPDATE_CONFIRM_SECS})",
                raw.update_confirm_secs
            )));
        }
        patchctl_proto::policy::groups::validate_tags("tags", &raw.tags).map_err(|e| {
            value_err(format!(
                "{e}; tags label this host for the platform's groups"
            ))
        })?;
        let command_signing_key = match &raw.command_signing_key {
            None => None,
            Some(line) => Some(patchctl_release::PublicKey::from_line(line).ok_or_else(|| {
                value_err(format!(
                    "command_signing_key {:?} is not an ed25519 public key; copy the `ed25519:<64 hex digits>` line that `patchctl admin signing-key show` prints",
                    line.chars().take(80).collect::<String>()
                ))
            })?),
        };
        if let Some(ca) = &raw.ca_bundle {
            if !ca.is_absolute() {
                return Err(value_err(format!(
                    "ca_bundle {} must be an absolute path",
                    ca.display()
                )));
            }
        }
        Ok(AgentConfig {
            path: path.to_owned(),
            server_url: raw.server_url.trim_end_matches('/').to_owned(),
            license_key: raw.license_key,
            ca_bundle: raw.ca_bundle,
            heartbeat_interval: Duration::from_secs(raw.heartbeat_interval_secs),
            scan_interval: Duration::from_secs(raw.scan_interval_secs),
            log_dir: raw.log_dir,
            state_dir: raw
                .state_dir
                .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR)),
            credential_rotation: (raw.credential_rotation_days > 0)
                .then(|| Duration::from_secs(raw.credential_rotation_days * 86_400)),
            self_update: raw.self_update,
            update_confirm: Duration::from_secs(raw.update_confirm_secs),
            tags: raw.tags,
            command_signing_key,
            long_poll: (raw.long_poll_secs > 0).then(|| Duration::from_secs(raw.long_poll_secs)),
        })
    }

    /// The directory holding the configuration (and the credential file).
    pub fn dir(&self) -> &Path {
        self.path.parent().unwrap_or_else(|| Path::new("/"))
    }
}

fn user_name(uid: u32) -> String {
    if uid == 0 {
        "root".into()
    } else {
        format!("uid {uid}")
    }
}

/// Checks that `path` and its directory belong to the effective user and that the file
/// grants nothing to group or others, and the directory no read or write to them.
pub fn check_private(path: &Path, what: &str) -> Result<(), ConfigError> {
    let euid = nix::unistd::geteuid().as_raw();
    let meta = std::fs::metadata(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    let p = path.display();
    if meta.uid() != euid {
        return Err(ConfigError::Permissions {
            message: format!(
                "{what} {p} is owned by {}, not by {} who runs the agent; run: chown {}:{} {p}",
                user_name(meta.uid()),
                user_name(euid),
                user_name(euid).replace("uid ", ""),
                if euid == 0 {
                    "root".to_owned()
                } else {
                    nix::unistd::getegid().as_raw().to_string()
                },
            ),
        });
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(ConfigError::Permissions {
            message: format!(
                "{what} {p} has mode {mode:04o}: it is {} by group or others and holds the license key; run: chmod 600 {p}",
                rw_words(mode)
            ),
        });
    }
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let dmeta = std::fs::metadata(dir).map_err(|source| ConfigError::Read {
        path: dir.to_owned(),
        source,
    })?;
    let d = dir.display();
    if dmeta.uid() != euid {
        return Err(ConfigError::Permissions {
            message: format!(
                "directory {d} of the {what} is owned by {}, not by {}; run: chown {} {d}",
                user_name(dmeta.uid()),
                user_name(euid),
                if euid == 0 {
                    "root:root".to_owned()
                } else {
                    euid.to_string()
                },
            ),
        });
    }
    let dmode = dmeta.mode() & 0o777;
    if dmode & 0o066 != 0 {
        return Err(ConfigError::Permissions {
            message: format!(
                "directory {d} of the {what} has mode {dmode:04o}: it is {} by group or others; run: chmod 700 {d}",
                rw_words(dmode)
            ),
        });
    }
    Ok(())
}

fn rw_words(mode: u32) -> &'static str {
    let readable = mode & 0o044 != 0;
    let writable = mode & 0o022 != 0;
    match (readable, writable) {
        (true, true) => "readable and writable",
        (true, false) => "readable",
        (false, true) => "writable",
        (false, false) => "accessible",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const GOOD: &str =
        r#"{"server_url": "https://patch.example:8443", "license_key": "canary-key-1"}"#;

    fn write(dir: &Path, text: &str, mode: u32) -> PathBuf {
        let p = dir.join("config.json");
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    fn private_dir() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        d
    }

    #[test]
    fn defaults() {
        let d = private_dir();
        let c = AgentConfig::load(&write(d.path(), GOOD, 0o600)).unwrap();
        assert_eq!(c.heartbeat_interval, Duration::from_secs(300));
        assert_eq!(c.scan_interval, Duration::from_secs(21_600));
        assert_eq!(c.state_dir, PathBuf::from("/var/lib/patchctl"));
        assert_eq!(
            c.credential_rotation,
            Some(Duration::from_secs(30 * 86_400))
        );
        assert!(!format!("{c:?}").contains("canary-key-1"));
    }

    fn parse_err(text: &str) -> String {
        AgentConfig::parse(Path::new("/etc/patchctl/config.json"), text)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn unknown_field_is_named() {
        let e =
            parse_err(r#"{"server_url": "https://a", "license_key": "k", "verify_tls": false}"#);
        assert!(e.contains("unknown field `verify_tls`"), "{e}");
        assert!(e.contains("/etc/patchctl/config.json"), "{e}");
    }

    #[test]
    fn bad_values() {
        for (text, want) in [
            (
                r#"{"server_url": "http://a", "license_key": "k"}"#,
                "must start with https://",
            ),
            (
                r#"{"server_url": "https://a", "license_key": ""}"#,
                "license_key is empty",
            ),
            (
                r#"{"server_url": "https://a"}"#,
                "missing field `license_key`",
            ),
            (
                r#"{"server_url": "https://a", "license_key": "k", "heartbeat_interval_secs": 0}"#,
                "heartbeat_interval_secs is 0",
            ),
            (
                r#"{"server_url": "https://a", "license_key": "k", "ca_bundle": "ca.pem"}"#,
                "absolute path",
            ),
            (
                r#"{"server_url": "https://a", "license_key": "k", "credential_rotation_days": 366}"#,
                "credential_rotation_days is 366; use a value from 1 to 365, or 0 to never rotate",
            ),
            (
                r#"{"server_url": "https://a", "license_key": "k", "credential_rotation_days": -1}"#,
                "integer `-1`, expected u64",
            ),
            (
                r#"{"server_url": "https://a", "license_key": "k", "tags": ["web", "Bad Tag"]}"#,
                "tags label this host for the platform's groups",
            ),
            (
                r#"{"server_url": "https://a", "license_key": "k", "tags": [""]}"#,
                "tags label this host for the platform's groups",
            ),
            ("{", "EOF"),
        ] {
            let e = parse_err(text);
            assert!(e.contains(want), "{text}: {e}");
        }
    }

    #[test]
    fn tags_are_kept() {
        let c = AgentConfig::parse(
            Path::new("/etc/patchctl/config.json"),
            r#"{"server_url": "https://a", "license_key": "k", "tags": ["web", "dc-2"]}"#,
        )
        .unwrap();
        assert_eq!(c.tags, vec!["web".to_string(), "dc-2".to_string()]);
    }

    #[test]
    fn rotation_can_be_turned_off_or_set() {
        let parse = |days: u64| {
            AgentConfig::parse(
                Path::new("/c.json"),
                &format!(
                    r#"{{"server_url": "https://a", "license_key": "k", "credential_rotation_days": {days}}}"#
                ),
            )
            .unwrap()
            .credential_rotation
        };
        assert_eq!(parse(0), None);
        assert_eq!(parse(1), Some(Duration::from_secs(86_400)));
        assert_eq!(parse(365), Some(Duration::from_secs(365 * 86_400)));
    }

    #[test]
    fn secret_never_in_errors() {
        let e = parse_err(r#"{"server_url": "ftp://x", "license_key": "canary-key-2"}"#);
        assert!(!e.contains("canary-key-2"), "{e}");
    }

    #[test]
    fn refuses_group_or_other_access() {
        for mode in [0o640, 0o604, 0o620, 0o602, 0o644, 0o666, 0o610] {
            let d = private_dir();
            let p = write(d.path(), GOOD, mode);
            let e = AgentConfig::load(&p).unwrap_err().to_string();
            assert!(
                e.contains(&format!("chmod 600 {}", p.display())),
                "{mode:o}: {e}"
            );
            assert!(e.contains(&format!("{mode:04o}")), "{mode:o}: {e}");
        }
    }

    #[test]
    fn refuses_open_directory() {
        for dmode in [0o777, 0o770, 0o755, 0o750, 0o703] {
            let d = private_dir();
            let p = write(d.path(), GOOD, 0o600);
            std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(dmode)).unwrap();
            let e = AgentConfig::load(&p).unwrap_err().to_string();
            assert!(e.contains("chmod 700"), "{dmode:o}: {e}");
        }
        // Search permission alone (0711) reveals nothing and is accepted.
        let d = private_dir();
        let p = write(d.path(), GOOD, 0o600);
        std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
        AgentConfig::load(&p).unwrap();
    }
}
