//! The platform's configuration file (`patchctl server --config FILE`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Server settings as stored in JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// `sqlite://PATH` (default backend) or `postgres://...`.
    pub database_url: String,
    /// PEM certificate chain (ECDSA) presented to agents and operators.
    pub tls_cert: PathBuf,
    /// PEM private key of `tls_cert`.
    pub tls_key: PathBuf,
    /// The agents' heartbeat interval; a host is offline after three missed ones.
    #[serde(default = "default_heartbeat")]
    pub heartbeat_interval_secs: u64,
    /// How long a delivered command is leased before it is delivered again.
    #[serde(default = "default_lease")]
    pub command_lease_secs: u64,
    /// Metrics samples kept per host.
    #[serde(default = "default_history")]
    pub metrics_history_len: u32,
    /// Vulnerability feeds `patchctl vulndb sync` downloads (default: the official ones).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vuln_feeds: Vec<Feed>,
}

/// One vulnerability feed: a name and the URL of a file the importers read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Feed {
    /// Name shown in progress and status (`osv-almalinux`).
    pub name: String,
    /// https URL.
    pub url: String,
}

fn default_heartbeat() -> u64 {
    300
}
fn default_lease() -> u64 {
    600
}
fn default_history() -> u32 {
    288
}

impl Settings {
    /// Reads and validates a settings file.
    pub fn load(path: &Path) -> anyhow::Result<Settings> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read server config {}: {e}", path.display()))?;
        let s: Settings = serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("server config {} is invalid: {e}", path.display()))?;
        if s.heartbeat_interval_secs == 0 || s.command_lease_secs == 0 || s.metrics_history_len == 0
        {
            anyhow::bail!(
                "server config {}: heartbeat_interval_secs, command_lease_secs and metrics_history_len must be positive",
                path.display()
            );
        }
        Ok(s)
    }

    /// A host is offline after this long without a heartbeat.
    pub fn offline_after(&self) -> Duration {
        Duration::from_secs(3 * self.heartbeat_interval_secs)
    }
}
