//! The platform's settings, in layers: defaults, then the configuration file
//! (`server.json`, `patchctl server --config FILE`), then `PATCHCTL_*` environment
//! variables. Flags are the CLI's business and come last.
//!
//! [`Settings::load`] applies the file and the process environment;
//! [`Settings::load_with_env`] takes the variables as a list (tests, callers that filter
//! the environment); [`Settings::load_file`] reads the file alone. One variable per setting:
//!
//! | Variable                              | Setting                      | Value                           |
//! |---------------------------------------|------------------------------|---------------------------------|
//! | `PATCHCTL_LISTEN`                     | `listen`                     | `HOST:PORT` (`0.0.0.0:8443`)    |
//! | `PATCHCTL_DATABASE_URL`               | `database_url`               | `sqlite://PATH`, `postgres://…` |
//! | `PATCHCTL_TLS_CERT`                   | `tls_cert`                   | path                            |
//! | `PATCHCTL_TLS_KEY`                    | `tls_key`                    | path                            |
//! | `PATCHCTL_HEARTBEAT_INTERVAL_SECS`    | `heartbeat_interval_secs`    | positive whole seconds          |
//! | `PATCHCTL_COMMAND_LEASE_SECS`         | `command_lease_secs`         | positive whole seconds          |
//! | `PATCHCTL_POLICY_TICK_SECS`           | `policy_tick_secs`           | positive whole seconds (15)     |
//! | `PATCHCTL_METRICS_HISTORY_LEN`        | `metrics_history_len`        | positive count                  |
//! | `PATCHCTL_VULN_FEEDS`                 | `vuln_feeds`                 | JSON: `[{"name": …, "url": …}]` |
//! | `PATCHCTL_VULN_SYNC`                  | `vuln_sync`                  | `true` or `false` (default true)|
//! | `PATCHCTL_VULN_SYNC_INTERVAL_SECS`    | `vuln_sync_interval_secs`    | positive seconds (21600)        |
//! | `PATCHCTL_ENROLL_PER_ADDRESS_PER_MIN` | `enroll_per_address_per_min` | positive count (default 30)     |
//! | `PATCHCTL_ENROLL_PER_KEY_PER_MIN`     | `enroll_per_key_per_min`     | positive count (default 600)    |
//! | `PATCHCTL_METRICS_LISTEN`             | `metrics_listen`             | `HOST:PORT` (default: none)     |
//! | `PATCHCTL_SESSION_IDLE_SECS`          | `session_idle_secs`          | positive seconds (1800)         |
//! | `PATCHCTL_SESSION_MAX_SECS`           | `session_max_secs`           | positive seconds (43200)        |
//! | `PATCHCTL_WEBHOOK_ALLOW_NETWORKS`     | `webhook_allow_networks`     | CIDRs, comma-separated          |
//! | `PATCHCTL_WEBHOOK_CA_FILE`            | `webhook_ca_file`            | path (default: system roots)    |
//! | `PATCHCTL_WEBHOOK_RETRY_BASE_SECS`    | `webhook_retry_base_secs`    | positive seconds (30)           |
//! | `PATCHCTL_COMMAND_SIGNING_KEY`        | `command_signing_key`        | path (`command-signing.key` beside the file) |
//! | `PATCHCTL_LONG_POLL_MAX_SECS`         | `long_poll_max_secs`         | seconds, 0 = off (240)          |
//! | `PATCHCTL_DRAIN_SECS`                 | `drain_secs`                 | seconds (0)                     |
//! | `PATCHCTL_AGENT_PER_CREDENTIAL_PER_MIN` | `agent_per_credential_per_min` | positive count (default 60)  |
//! | `PATCHCTL_AGENT_PER_ADDRESS_PER_MIN`  | `agent_per_address_per_min`  | positive count (default 60000)  |
//! | `PATCHCTL_MAX_CONNECTIONS`            | `max_connections`            | positive count (default 100000) |
//! | `PATCHCTL_HEADER_READ_TIMEOUT_SECS`   | `header_read_timeout_secs`   | positive seconds (15)           |
//! | `PATCHCTL_IDLE_TIMEOUT_SECS`          | `idle_timeout_secs`          | positive seconds (120)          |
//! | `PATCHCTL_BODY_READ_TIMEOUT_SECS`     | `body_read_timeout_secs`     | positive seconds (30)           |
//! | `PATCHCTL_AGENT_REQUESTS_IN_FLIGHT`   | `agent_requests_in_flight`   | positive count (default 256)    |
//!
//! The abuse limits (docs/limits.md): every agent request but enrollment takes a token
//! of its credential's bucket and of its source address's (`ratelimit.rs`); a connection
//! over `max_connections` is closed at once; request headers must arrive within
//! `header_read_timeout_secs`, a connection without a request in flight is closed after
//! `idle_timeout_secs`, and a request body must arrive within `body_read_timeout_secs`
//! plus a second per 500 bytes received (`serve/`). Beyond `agent_requests_in_flight`
//! database-bound agent requests in flight (enrollment, inventory, scan, results,
//! credential rotation) one more is answered 503 `overloaded` with `Retry-After` at once
//! (`api/guard.rs`). `metrics_history_len` is at most [`MAX_METRICS_HISTORY_LEN`].
//!
//! `metrics_listen` serves `GET /metrics` over plain HTTP *without a token* (for a
//! Prometheus on the same machine or network segment): give it a loopback address such
//! as `127.0.0.1:9464` unless the network is trusted. Without it, `/metrics` is served
//! only on `listen`, over TLS, behind an API token (docs/metrics.md).
//!
//! The enrollment limits are token buckets per platform process (`ratelimit.rs`): each
//! source address (an IPv6 /64) and each enrollment key may make that many attempts a
//! minute, in bursts of up to a minute's worth. The defaults let a fleet roll out at
//! 600 hosts a minute per key; hosts behind one NAT address share its 30 a minute (an
//! agent refused with 429 retries after `Retry-After`), so raise
//! `enroll_per_address_per_min` for a large rollout behind NAT.
//!
//! A variable set to the empty string counts as unset. A setting without a default
//! (`listen`, `database_url`, `tls_cert`, `tls_key`) may be left out of the file when
//! its variable is set, which keeps a database password out of `server.json`. Other
//! `PATCHCTL_*` variables (the CLI's `PATCHCTL_SERVER`, `PATCHCTL_TOKEN`, …) are not
//! settings and are ignored here. A bad value is an error naming its variable, and never
//! repeats the value of `PATCHCTL_DATABASE_URL` or `PATCHCTL_VULN_FEEDS`.
//!
//! `Debug` of [`Settings`] and [`Feed`] never shows a password or token: the password of
//! a URL's user information and the values of secret query parameters (`password=`,
//! `token=`, …) print as `***` ([`redact_url`]).

use std::ffi::OsStr;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use layer::Layer;

pub use crate::webhooks::address::Cidr;

/// The environment variable of `listen`.
pub const ENV_LISTEN: &str = "PATCHCTL_LISTEN";
/// The environment variable of `database_url`.
pub const ENV_DATABASE_URL: &str = "PATCHCTL_DATABASE_URL";
/// The environment variable of `tls_cert`.
pub const ENV_TLS_CERT: &str = "PATCHCTL_TLS_CERT";
/// The environment variable of `tls_key`.
pub const ENV_TLS_KEY: &str = "PATCHCTL_TLS_KEY";
/// The environment variable of `heartbeat_interval_secs`.
pub const ENV_HEARTBEAT_INTERVAL_SECS: &str = "PATCHCTL_HEARTBEAT_INTERVAL_SECS";
/// The environment variable of `command_lease_secs`.
pub const ENV_COMMAND_LEASE_SECS: &str = "PATCHCTL_COMMAND_LEASE_SECS";
/// The environment variable of `policy_tick_secs`.
pub const ENV_POLICY_TICK_SECS: &str = "PATCHCTL_POLICY_TICK_SECS";
/// The environment variable of `metrics_history_len`.
pub const ENV_METRICS_HISTORY_LEN: &str = "PATCHCTL_METRICS_HISTORY_LEN";
/// The environment variable of `vuln_feeds`.
pub const ENV_VULN_FEEDS: &str = "PATCHCTL_VULN_FEEDS";
/// The environment variable of `enroll_per_address_per_min`.
pub const ENV_ENROLL_PER_ADDRESS_PER_MIN: &str = "PATCHCTL_ENROLL_PER_ADDRESS_PER_MIN";
/// The environment variable of `enroll_per_key_per_min`.
pub const ENV_ENROLL_PER_KEY_PER_MIN: &str = "PATCHCTL_ENROLL_PER_KEY_PER_MIN";

/// The environment variable of `vuln_sync`.
pub const ENV_VULN_SYNC: &str = "PATCHCTL_VULN_SYNC";
/// The environment variable of `vuln_sync_interval_secs`.
pub const ENV_VULN_SYNC_INTERVAL_SECS: &str = "PATCHCTL_VULN_SYNC_INTERVAL_SECS";

/// The environment variable of `metrics_listen`.
pub const ENV_METRICS_LISTEN: &str = "PATCHCTL_METRICS_LISTEN";

/// The environment variable of `session_idle_secs`.
pub const ENV_SESSION_IDLE_SECS: &str = "PATCHCTL_SESSION_IDLE_SECS";
/// The environment variable of `session_max_secs`.
pub const ENV_SESSION_MAX_SECS: &str = "PATCHCTL_SESSION_MAX_SECS";

/// The environment variable of `webhook_allow_networks`.
pub const ENV_WEBHOOK_ALLOW_NETWORKS: &str = "PATCHCTL_WEBHOOK_ALLOW_NETWORKS";
/// The environment variable of `webhook_ca_file`.
pub const ENV_WEBHOOK_CA_FILE: &str = "PATCHCTL_WEBHOOK_CA_FILE";
/// The environment variable of `webhook_retry_base_secs`.
pub const ENV_WEBHOOK_RETRY_BASE_SECS: &str = "PATCHCTL_WEBHOOK_RETRY_BASE_SECS";
/// The environment variable of `command_signing_key`.
pub const ENV_COMMAND_SIGNING_KEY: &str = "PATCHCTL_COMMAND_SIGNING_KEY";
/// The environment variable of `long_poll_max_secs`.
pub const ENV_LONG_POLL_MAX_SECS: &str = "PATCHCTL_LONG_POLL_MAX_SECS";
/// The environment variable of `drain_secs`.
pub const ENV_DRAIN_SECS: &str = "PATCHCTL_DRAIN_SECS";

/// The environment variable of `agent_per_credential_per_min`.
pub const ENV_AGENT_PER_CREDENTIAL_PER_MIN: &str = "PATCHCTL_AGENT_PER_CREDENTIAL_PER_MIN";
/// The environment variable of `agent_per_address_per_min`.
pub const ENV_AGENT_PER_ADDRESS_PER_MIN: &str = "PATCHCTL_AGENT_PER_ADDRESS_PER_MIN";
/// The environment variable of `max_connections`.
pub const ENV_MAX_CONNECTIONS: &str = "PATCHCTL_MAX_CONNECTIONS";
/// The environment variable of `header_read_timeout_secs`.
pub const ENV_HEADER_READ_TIMEOUT_SECS: &str = "PATCHCTL_HEADER_READ_TIMEOUT_SECS";
/// The environment variable of `idle_timeout_secs`.
pub const ENV_IDLE_TIMEOUT_SECS: &str = "PATCHCTL_IDLE_TIMEOUT_SECS";
/// The environment variable of `body_read_timeout_secs`.
pub const ENV_BODY_READ_TIMEOUT_SECS: &str = "PATCHCTL_BODY_READ_TIMEOUT_SECS";
/// The environment variable of `agent_requests_in_flight`.
pub const ENV_AGENT_REQUESTS_IN_FLIGHT: &str = "PATCHCTL_AGENT_REQUESTS_IN_FLIGHT";

/// The largest `metrics_history_len`: a week of samples at the default 5-minute
/// heartbeat (the table holds this many rows per host).
pub const MAX_METRICS_HISTORY_LEN: u32 = 2016;

/// Every settings variable, in the order of the table above.
pub const ENV_VARS: [&str; 29] = [
    ENV_LISTEN,
    ENV_DATABASE_URL,
    ENV_TLS_CERT,
    ENV_TLS_KEY,
    ENV_HEARTBEAT_INTERVAL_SECS,
    ENV_COMMAND_LEASE_SECS,
    ENV_POLICY_TICK_SECS,
    ENV_METRICS_HISTORY_LEN,
    ENV_VULN_FEEDS,
    ENV_VULN_SYNC,
    ENV_VULN_SYNC_INTERVAL_SECS,
    ENV_ENROLL_PER_ADDRESS_PER_MIN,
    ENV_ENROLL_PER_KEY_PER_MIN,
    ENV_METRICS_LISTEN,
    ENV_SESSION_IDLE_SECS,
    ENV_SESSION_MAX_SECS,
    ENV_WEBHOOK_ALLOW_NETWORKS,
    ENV_WEBHOOK_CA_FILE,
    ENV_WEBHOOK_RETRY_BASE_SECS,
    ENV_COMMAND_SIGNING_KEY,
    ENV_LONG_POLL_MAX_SECS,
    ENV_DRAIN_SECS,
    ENV_AGENT_PER_CREDENTIAL_PER_MIN,
    ENV_AGENT_PER_ADDRESS_PER_MIN,
    ENV_MAX_CONNECTIONS,
    ENV_HEADER_READ_TIMEOUT_SECS,
    ENV_IDLE_TIMEOUT_SECS,
    ENV_BODY_READ_TIMEOUT_SECS,
    ENV_AGENT_REQUESTS_IN_FLIGHT,
];

/// Server settings as stored in JSON.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
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
    /// How often the policy tick (approval rules, deployments) runs; 15 s by default,
    /// 5 s for `--dev`.
    #[serde(default = "default_policy_tick")]
    pub policy_tick_secs: u64,
    /// How long a delivered command is leased before it is delivered again.
    #[serde(default = "default_lease")]
    pub command_lease_secs: u64,
    /// Metrics samples kept per host.
    #[serde(default = "default_history")]
    pub metrics_history_len: u32,
    /// Vulnerability feeds the platform syncs and `patchctl vulndb sync` downloads
    /// (default, when empty: `vulnsync::DEFAULT_FEEDS`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vuln_feeds: Vec<Feed>,
    /// Whether every platform node syncs the feeds on its own schedule (false for
    /// air-gapped sites, which import files with `patchctl vulndb import`).
    #[serde(default = "default_vuln_sync")]
    pub vuln_sync: bool,
    /// Seconds between two syncs of a feed, jittered by ±10 % (default 6 hours).
    #[serde(default = "default_vuln_sync_interval")]
    pub vuln_sync_interval_secs: u64,
    /// Directory the feed downloads are staged in (default: the SQLite database's
    /// directory, else the system's temporary directory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vuln_sync_dir: Option<PathBuf>,
    /// CA bundle the feed servers are verified with instead of the system roots (a
    /// mirror with its own CA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vuln_ca_file: Option<PathBuf>,
    /// Enrollment attempts a minute per source address (an IPv6 /64), per process.
    #[serde(default = "default_enroll_per_address")]
    pub enroll_per_address_per_min: u32,
    /// Enrollments a minute per enrollment key, per process.
    #[serde(default = "default_enroll_per_key")]
    pub enroll_per_key_per_min: u32,
    /// A second, plain-HTTP address serving only `GET /metrics`, without a token (none
    /// by default; keep it on loopback or a trusted network).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_listen: Option<SocketAddr>,
    /// A dashboard session ends after this long without a request (default 30 minutes).
    #[serde(default = "default_session_idle")]
    pub session_idle_secs: u64,
    /// A dashboard session ends this long after its login, however busy (default 12 hours).
    #[serde(default = "default_session_max")]
    pub session_max_secs: u64,
    /// Networks webhook targets may be in although they are not global (loopback,
    /// private, link-local, ...): CIDRs such as `10.1.2.0/24` (default: none). `patchctl
    /// server --dev` allows `127.0.0.0/8` and `::1/128`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub webhook_allow_networks: Vec<Cidr>,
    /// CA bundle webhook receivers are verified with instead of the system roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_ca_file: Option<PathBuf>,
    /// The wait after a webhook's first failed attempt, doubling with every further one
    /// (at most 6 hours; given up a day after the event; default 30 s).
    #[serde(default = "default_webhook_retry_base")]
    pub webhook_retry_base_secs: u64,
    /// The command-signing key file (docs/signing.md): every node of a platform uses
    /// the same one. Loaded from a file, it defaults to `command-signing.key` beside
    /// that file; unset in settings built in code, keys live in memory only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command_signing_key: Option<PathBuf>,
    /// Longest a node holds an agent's long-poll (`POST /api/v1/agent/commands/wait`)
    /// before answering "no command"; 0 switches long-polls off (agents then wait for
    /// their heartbeats). Default 240 s.
    #[serde(default = "default_long_poll_max")]
    pub long_poll_max_secs: u64,
    /// How long a stopping node drains before it stops accepting connections: its
    /// readiness answers 503 and its long-polls end meanwhile (docs/deployment.md; 10 s
    /// behind a load balancer that checks every 5 s). Default 0.
    #[serde(default)]
    pub drain_secs: u64,
    /// Agent requests a minute per agent credential, per process (enrollment aside).
    #[serde(default = "default_agent_per_credential")]
    pub agent_per_credential_per_min: u32,
    /// Agent requests a minute per source address (an IPv6 /64), per process.
    #[serde(default = "default_agent_per_address")]
    pub agent_per_address_per_min: u32,
    /// Connections this process holds at most; one more is closed at once.
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
    /// Seconds a client has to send a request's headers (HTTP/1.1; also the longest
    /// wait for the next request on a kept-alive HTTP/1.1 connection).
    #[serde(default = "default_header_read_timeout")]
    pub header_read_timeout_secs: u64,
    /// Seconds a connection without a request in flight stays open.
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout_secs: u64,
    /// Seconds a request body has to arrive, plus one per 500 bytes received.
    #[serde(default = "default_body_read_timeout")]
    pub body_read_timeout_secs: u64,
    /// Database-bound agent requests (enrollment, inventory, scan, results, credential
    /// rotation) this process answers at once; one more gets 503 `overloaded` with
    /// `Retry-After` at once instead of waiting for a database connection.
    #[serde(default = "default_agent_requests_in_flight")]
    pub agent_requests_in_flight: u32,
}

/// One vulnerability feed: a name, a URL and how the URL leads to the records.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Feed {
    /// Name shown in progress and status (`osv-almalinux`).
    pub name: String,
    /// https URL.
    pub url: String,
    /// `file` (default), `repomd` or `redhat-vex-bulk` ([`FeedKind`]).
    #[serde(default, skip_serializing_if = "is_file_kind")]
    pub kind: FeedKind,
}

fn is_file_kind(k: &FeedKind) -> bool {
    *k == FeedKind::File
}

/// Default of `vuln_sync`.
pub fn default_vuln_sync() -> bool {
    true
}
/// Default of `vuln_sync_interval_secs`: 6 hours.
pub fn default_vuln_sync_interval() -> u64 {
    6 * 3600
}
fn default_heartbeat() -> u64 {
    300
}
fn default_long_poll_max() -> u64 {
    240
}
fn default_lease() -> u64 {
    600
}
fn default_history() -> u32 {
    288
}
/// Default of `enroll_per_address_per_min`.
pub fn default_enroll_per_address() -> u32 {
    30
}
/// Default of `session_idle_secs`: 30 minutes.
pub fn default_session_idle() -> u64 {
    30 * 60
}
/// Default of `session_max_secs`: 12 hours.
pub fn default_session_max() -> u64 {
    12 * 3600
}
/// Default of `policy_tick_secs`: 15 s.
pub fn default_policy_tick() -> u64 {
    15
}

/// Default of `webhook_retry_base_secs`: 30 s.
pub fn default_webhook_retry_base() -> u64 {
    30
}
/// Default of `enroll_per_key_per_min`.
pub fn default_enroll_per_key() -> u32 {
    600
}
/// Default of `agent_per_credential_per_min` (docs/limits.md: an agent makes about one
/// request a minute at most).
pub fn default_agent_per_credential() -> u32 {
    60
}
/// Default of `agent_per_address_per_min` (docs/limits.md: 50,000 agents behind one
/// NAT address).
pub fn default_agent_per_address() -> u32 {
    60_000
}
/// Default of `max_connections`.
pub fn default_max_connections() -> u32 {
    100_000
}
/// Default of `header_read_timeout_secs`.
pub fn default_header_read_timeout() -> u64 {
    15
}
/// Default of `idle_timeout_secs`: longer than the 90 s an idle pooled connection of
/// the agent's client lives, so that the client closes first.
pub fn default_idle_timeout() -> u64 {
    120
}
/// Default of `body_read_timeout_secs`.
pub fn default_body_read_timeout() -> u64 {
    30
}
/// Default of `agent_requests_in_flight` (docs/limits.md): 16 waiting requests per
/// connection of the PostgreSQL pool (16 connections).
pub fn default_agent_requests_in_flight() -> u32 {
    256
}

/// Why the settings could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The configuration file could not be read.
    #[error("cannot read server config {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What reading said.
        source: std::io::Error,
    },
    /// The configuration file is not JSON of the settings (unknown field, wrong type).
    #[error("server config {} is invalid: {source}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What the parser said (field, line, column).
        source: serde_json::Error,
    },
    /// A setting without a default is in neither the file nor the environment.
    #[error("server config {}: {setting} is not set; set it in the file or in {var}", path.display())]
    Missing {
        /// The file.
        path: PathBuf,
        /// The setting's name in the file.
        setting: &'static str,
        /// Its environment variable.
        var: &'static str,
    },
    /// A count or duration in the file is zero.
    #[error("server config {}: {setting} must be positive", path.display())]
    NotPositive {
        /// The file.
        path: PathBuf,
        /// The setting's name in the file.
        setting: &'static str,
    },
    /// A count is over its maximum.
    #[error(
        "{setting} = {value} is over its maximum of {max} ({why}); lower it in the server config {} or in {var}", path.display()
    )]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The setting's name in the file.
        setting: &'static str,
        /// Its environment variable.
        var: &'static str,
        /// The value given.
        value: u64,
        /// The maximum.
        max: u64,
        /// Why there is a maximum.
        why: &'static str,
    },
    /// An environment variable holds a value its setting cannot take.
    #[error("environment variable {var} is invalid: {reason}")]
    Env {
        /// The variable.
        var: &'static str,
        /// What is wrong and what is expected.
        reason: String,
    },
}

impl Settings {
    /// The settings with the four that have no default given and every other one at its
    /// default. Tests and callers write `Settings { field: …, ..Settings::with_defaults(…) }`
    /// so that a new setting never touches them.
    pub fn with_defaults(
        listen: SocketAddr,
        database_url: impl Into<String>,
        tls_cert: impl Into<PathBuf>,
        tls_key: impl Into<PathBuf>,
    ) -> Settings {
        Settings {
            listen,
            database_url: database_url.into(),
            tls_cert: tls_cert.into(),
            tls_key: tls_key.into(),
            heartbeat_interval_secs: default_heartbeat(),
            policy_tick_secs: default_policy_tick(),
            command_lease_secs: default_lease(),
            metrics_history_len: default_history(),
            vuln_feeds: Vec::new(),
            vuln_sync: default_vuln_sync(),
            vuln_sync_interval_secs: default_vuln_sync_interval(),
            vuln_sync_dir: None,
            vuln_ca_file: None,
            enroll_per_address_per_min: default_enroll_per_address(),
            enroll_per_key_per_min: default_enroll_per_key(),
            metrics_listen: None,
            session_idle_secs: default_session_idle(),
            session_max_secs: default_session_max(),
            webhook_allow_networks: Vec::new(),
            webhook_ca_file: None,
            webhook_retry_base_secs: default_webhook_retry_base(),
            command_signing_key: None,
            long_poll_max_secs: default_long_poll_max(),
            drain_secs: 0,
            agent_per_credential_per_min: default_agent_per_credential(),
            agent_per_address_per_min: default_agent_per_address(),
            max_connections: default_max_connections(),
            header_read_timeout_secs: default_header_read_timeout(),
            idle_timeout_secs: default_idle_timeout(),
            body_read_timeout_secs: default_body_read_timeout(),
            agent_requests_in_flight: default_agent_requests_in_flight(),
        }
    }

    /// Reads `path`, then applies the process's `PATCHCTL_*` variables (see the module
    /// documentation), and validates.
    pub fn load(path: &Path) -> Result<Settings, SettingsError> {
        Settings::load_with_env(path, std::env::vars_os())
    }

    /// Reads `path` alone (no environment) and validates: what a file holds, as
    /// `patchctl server --dev` reads back the file it wrote.
    pub fn load_file(path: &Path) -> Result<Settings, SettingsError> {
        Settings::load_with_env(path, std::iter::empty::<(&str, &str)>())
    }

    /// Reads `path`, applies the settings variables among `vars` over it, and validates.
    pub fn load_with_env<I, K, V>(path: &Path, vars: I) -> Result<Settings, SettingsError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        let text = std::fs::read_to_string(path).map_err(|source| SettingsError::Read {
            path: path.to_owned(),
            source,
        })?;
        let file: Layer = serde_json::from_str(&text).map_err(|source| SettingsError::Invalid {
            path: path.to_owned(),
            source,
        })?;
        let env = Layer::from_env(vars)?;
        Settings::complete(file.overlay(env), path)
    }

    /// The settings of the merged layers, with the defaults; checks what a file may get
    /// wrong that serde does not.
    fn complete(l: Layer, path: &Path) -> Result<Settings, SettingsError> {
        let missing = |setting, var| SettingsError::Missing {
            path: path.to_owned(),
            setting,
            var,
        };
        let s = Settings {
            listen: l.listen.ok_or_else(|| missing("listen", ENV_LISTEN))?,
            database_url: l
                .database_url
                .ok_or_else(|| missing("database_url", ENV_DATABASE_URL))?,
            tls_cert: l
                .tls_cert
                .ok_or_else(|| missing("tls_cert", ENV_TLS_CERT))?,
            tls_key: l.tls_key.ok_or_else(|| missing("tls_key", ENV_TLS_KEY))?,
            heartbeat_interval_secs: l.heartbeat_interval_secs.unwrap_or_else(default_heartbeat),
            policy_tick_secs: l.policy_tick_secs.unwrap_or_else(default_policy_tick),
            command_lease_secs: l.command_lease_secs.unwrap_or_else(default_lease),
            metrics_history_len: l.metrics_history_len.unwrap_or_else(default_history),
            vuln_feeds: l.vuln_feeds.unwrap_or_default(),
            vuln_sync: l.vuln_sync.unwrap_or_else(default_vuln_sync),
            vuln_sync_interval_secs: l
                .vuln_sync_interval_secs
                .unwrap_or_else(default_vuln_sync_interval),
            vuln_sync_dir: l.vuln_sync_dir,
            vuln_ca_file: l.vuln_ca_file,
            enroll_per_address_per_min: l
                .enroll_per_address_per_min
                .unwrap_or_else(default_enroll_per_address),
            enroll_per_key_per_min: l
                .enroll_per_key_per_min
                .unwrap_or_else(default_enroll_per_key),
            metrics_listen: l.metrics_listen,
            session_idle_secs: l.session_idle_secs.unwrap_or_else(default_session_idle),
            session_max_secs: l.session_max_secs.unwrap_or_else(default_session_max),
            webhook_allow_networks: l.webhook_allow_networks.unwrap_or_default(),
            webhook_ca_file: l.webhook_ca_file,
            webhook_retry_base_secs: l
                .webhook_retry_base_secs
                .unwrap_or_else(default_webhook_retry_base),
            command_signing_key: Some(
                l.command_signing_key
                    .unwrap_or_else(|| path.with_file_name(crate::signing::DEFAULT_FILE_NAME)),
            ),
            long_poll_max_secs: l.long_poll_max_secs.unwrap_or_else(default_long_poll_max),
            drain_secs: l.drain_secs.unwrap_or(0),
            agent_per_credential_per_min: l
                .agent_per_credential_per_min
                .unwrap_or_else(default_agent_per_credential),
            agent_per_address_per_min: l
                .agent_per_address_per_min
                .unwrap_or_else(default_agent_per_address),
            max_connections: l.max_connections.unwrap_or_else(default_max_connections),
            header_read_timeout_secs: l
                .header_read_timeout_secs
                .unwrap_or_else(default_header_read_timeout),
            idle_timeout_secs: l.idle_timeout_secs.unwrap_or_else(default_idle_timeout),
            body_read_timeout_secs: l
                .body_read_timeout_secs
                .unwrap_or_else(default_body_read_timeout),
            agent_requests_in_flight: l
                .agent_requests_in_flight
                .unwrap_or_else(default_agent_requests_in_flight),
        };
        let zero = [
            ("heartbeat_interval_secs", s.heartbeat_interval_secs == 0),
            ("command_lease_secs", s.command_lease_secs == 0),
            ("policy_tick_secs", s.policy_tick_secs == 0),
            ("metrics_history_len", s.metrics_history_len == 0),
            ("vuln_sync_interval_secs", s.vuln_sync_interval_secs == 0),
            (
                "enroll_per_address_per_min",
                s.enroll_per_address_per_min == 0,
            ),
            ("enroll_per_key_per_min", s.enroll_per_key_per_min == 0),
            ("session_idle_secs", s.session_idle_secs == 0),
            ("session_max_secs", s.session_max_secs == 0),
            ("webhook_retry_base_secs", s.webhook_retry_base_secs == 0),
            (
                "agent_per_credential_per_min",
                s.agent_per_credential_per_min == 0,
            ),
            (
                "agent_per_address_per_min",
                s.agent_per_address_per_min == 0,
            ),
            ("max_connections", s.max_connections == 0),
            ("header_read_timeout_secs", s.header_read_timeout_secs == 0),
            ("idle_timeout_secs", s.idle_timeout_secs == 0),
            ("body_read_timeout_secs", s.body_read_timeout_secs == 0),
            ("agent_requests_in_flight", s.agent_requests_in_flight == 0),
        ];
        if let Some((setting, _)) = zero.into_iter().find(|(_, z)| *z) {
            return Err(SettingsError::NotPositive {
                path: path.to_owned(),
                setting,
            });
        }
        if s.metrics_history_len > MAX_METRICS_HISTORY_LEN {
            return Err(SettingsError::TooLarge {
                path: path.to_owned(),
                setting: "metrics_history_len",
                var: ENV_METRICS_HISTORY_LEN,
                value: u64::from(s.metrics_history_len),
                max: u64::from(MAX_METRICS_HISTORY_LEN),
                why: "a week of 5-minute samples; every host keeps this many rows",
            });
        }
        Ok(s)
    }

    /// Where feed downloads are staged: `vuln_sync_dir`, else the SQLite database's
    /// directory, else the system's temporary directory.
    pub fn vuln_work_dir(&self) -> PathBuf {
        work_dir_for(&self.database_url, self.vuln_sync_dir.as_deref())
    }

    /// What the webhook worker takes from the settings.
    pub fn webhook_config(&self) -> crate::webhooks::WorkerConfig {
        crate::webhooks::WorkerConfig {
            allow: self.webhook_allow_networks.clone(),
            ca_file: self.webhook_ca_file.clone(),
            retry_base: Duration::from_secs(self.webhook_retry_base_secs),
            offline_after: self.offline_after(),
        }
    }

    /// A host is offline after this long without a heartbeat.
    pub fn offline_after(&self) -> Duration {
        Duration::from_secs(3 * self.heartbeat_interval_secs)
    }
}

impl fmt::Debug for Settings {
    /// As the derived `Debug`, with the database URL's password (and any secret query
    /// parameter) shown as `***`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("listen", &self.listen)
            .field("database_url", &redact_url(&self.database_url))
            .field("tls_cert", &self.tls_cert)
            .field("tls_key", &self.tls_key)
            .field("heartbeat_interval_secs", &self.heartbeat_interval_secs)
            .field("command_lease_secs", &self.command_lease_secs)
            .field("metrics_history_len", &self.metrics_history_len)
            .field("vuln_feeds", &self.vuln_feeds)
            .field("vuln_sync", &self.vuln_sync)
            .field("vuln_sync_interval_secs", &self.vuln_sync_interval_secs)
            .field("vuln_sync_dir", &self.vuln_sync_dir)
            .field("vuln_ca_file", &self.vuln_ca_file)
            .field(
                "enroll_per_address_per_min",
                &self.enroll_per_address_per_min,
            )
            .field("enroll_per_key_per_min", &self.enroll_per_key_per_min)
            .field("metrics_listen", &self.metrics_listen)
            .field("session_idle_secs", &self.session_idle_secs)
            .field("session_max_secs", &self.session_max_secs)
            .field("webhook_allow_networks", &self.webhook_allow_networks)
            .field("webhook_ca_file", &self.webhook_ca_file)
            .field("webhook_retry_base_secs", &self.webhook_retry_base_secs)
            .field("command_signing_key", &self.command_signing_key)
            .field("long_poll_max_secs", &self.long_poll_max_secs)
            .field("drain_secs", &self.drain_secs)
            .field(
                "agent_per_credential_per_min",
                &self.agent_per_credential_per_min,
            )
            .field("agent_per_address_per_min", &self.agent_per_address_per_min)
            .field("max_connections", &self.max_connections)
            .field("header_read_timeout_secs", &self.header_read_timeout_secs)
            .field("idle_timeout_secs", &self.idle_timeout_secs)
            .field("body_read_timeout_secs", &self.body_read_timeout_secs)
            .field("agent_requests_in_flight", &self.agent_requests_in_flight)
            .finish()
    }
}

impl fmt::Debug for Feed {
    /// As the derived `Debug`, with the URL redacted like the database URL.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Feed")
            .field("name", &self.name)
            .field("url", &redact_url(&self.url))
            .field("kind", &self.kind)
            .finish()
    }
}

mod feed;
mod layer;
mod redact;
#[cfg(test)]
mod tests;

pub use feed::FeedKind;
pub use redact::redact_url;

/// Where feed downloads are staged: `configured` (`vuln_sync_dir`), else the directory
/// of a SQLite `database_url`, else the system's temporary directory.
pub fn work_dir_for(database_url: &str, configured: Option<&Path>) -> PathBuf {
    if let Some(d) = configured {
        return d.to_path_buf();
    }
    let sqlite = database_url
        .strip_prefix("sqlite://")
        .or_else(|| database_url.strip_prefix("sqlite:"))
        .map(|p| Path::new(p.split('?').next().unwrap_or(p)));
    sqlite
        .filter(|p| *p != Path::new(":memory:"))
        .and_then(Path::parent)
        .filter(|d| !d.as_os_str().is_empty())
        .map_or_else(std::env::temp_dir, Path::to_path_buf)
}
