//! `patchctl-agent doctor`: checks, in order, everything the agent needs, and gives one
//! concrete remedy for each failure.
//!
//! The order follows the path of a request: the configuration (present, valid,
//! private), the CA bundle, the platform's name in DNS, a TCP connection, the TLS 1.3
//! handshake (chain, issuer, expiry, host name), the clock against the platform's, the
//! credential (accepted, waiting for approval, unknown or revoked); then this machine:
//! the package manager and its lock, free disk, journald, the systemd unit. A check
//! that needs an earlier one which failed is reported as skipped, with the reason.
//!
//! Doctor is not an operation and not part of the agent's resident path: it runs only
//! when invoked, talks to the platform only with `GET /api/v1/agent/whoami`, and starts
//! processes (`systemctl show`) only through [`crate::exec`].
//!
//! Submodules: [`local`] (configuration, CA bundle, disks, journald), [`network`]
//! (DNS, TCP, TLS, clock, credential), [`system`] (package manager and its lock, the
//! unit), [`output`] (text and JSON).

pub mod local;
pub mod network;
pub mod output;
pub mod system;

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::exec::{Executor, ProcessExecutor};

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// Fine.
    Ok,
    /// Works, but deserves attention.
    Warn,
    /// Broken: the agent cannot work (or not fully) until it is fixed.
    Fail,
    /// Not run, because a check it depends on failed.
    Skipped,
}

impl Level {
    /// The word used in text and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Warn => "warn",
            Level::Fail => "fail",
            Level::Skipped => "skipped",
        }
    }
}

/// One check's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The check's name (`config_present`, `tls`, `disk:/var`, ...).
    pub name: String,
    /// Its level.
    pub level: Level,
    /// What was found.
    pub detail: String,
    /// What to do about it (warnings and failures).
    pub remedy: Option<String>,
}

/// Every finding, in the order the checks ran.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// The configuration file examined.
    pub config: PathBuf,
    /// The findings.
    pub checks: Vec<Finding>,
}

impl Report {
    /// True when any check failed (the exit code is then non-zero).
    pub fn failed(&self) -> bool {
        self.checks.iter().any(|c| c.level == Level::Fail)
    }

    /// The finding of check `name`, if it ran.
    pub fn get(&self, name: &str) -> Option<&Finding> {
        self.checks.iter().find(|c| c.name == name)
    }

    fn push(&mut self, name: &str, level: Level, detail: String, remedy: Option<String>) {
        self.checks.push(Finding {
            name: name.to_owned(),
            level,
            detail,
            remedy,
        });
    }

    pub(crate) fn ok(&mut self, name: &str, detail: impl Into<String>) {
        self.push(name, Level::Ok, detail.into(), None);
    }

    pub(crate) fn warn(
        &mut self,
        name: &str,
        detail: impl Into<String>,
        remedy: impl Into<String>,
    ) {
        self.push(name, Level::Warn, detail.into(), Some(remedy.into()));
    }

    pub(crate) fn fail(
        &mut self,
        name: &str,
        detail: impl Into<String>,
        remedy: impl Into<String>,
    ) {
        self.push(name, Level::Fail, detail.into(), Some(remedy.into()));
    }

    pub(crate) fn skip(&mut self, name: &str, because: impl Into<String>) {
        self.push(
            name,
            Level::Skipped,
            format!("skipped: {}", because.into()),
            None,
        );
    }

    /// The level the last pushed check came out with.
    fn last_level(&self) -> Option<Level> {
        self.checks.last().map(|c| c.level)
    }
}

/// Where doctor looks on this machine. [`Host::system`] in production; tests of a
/// single check may point one at files they made.
#[derive(Debug, Clone)]
pub struct Host {
    /// The system root (package databases, lock files, mount points).
    pub root: PathBuf,
    /// The journal's native socket.
    pub journal_socket: PathBuf,
    /// True when systemd runs as PID 1 (`/run/systemd/system` exists).
    pub systemd: bool,
}

impl Host {
    /// This machine.
    pub fn system() -> Host {
        Host {
            root: PathBuf::from("/"),
            journal_socket: PathBuf::from(crate::logging::JOURNAL_SOCKET),
            systemd: Path::new("/run/systemd/system").is_dir(),
        }
    }
}

/// Runs every check against this machine with the configuration at `config_path`.
pub async fn run(config_path: &Path) -> Report {
    run_on(config_path, &Host::system(), &ProcessExecutor::new()).await
}

/// Runs every check, in order, on `host`, starting processes through `exec`.
pub async fn run_on(config_path: &Path, host: &Host, exec: &dyn Executor) -> Report {
    let mut r = Report {
        config: config_path.to_owned(),
        checks: Vec::new(),
    };
    let cfg = local::config(&mut r, config_path);
    let tls = match &cfg {
        Some(cfg) => local::ca_bundle(&mut r, cfg),
        None => {
            r.skip("ca_bundle", "the configuration could not be read");
            None
        }
    };
    network::checks(&mut r, cfg.as_ref(), tls.as_ref()).await;
    let family = system::package_manager(&mut r, &host.root);
    local::disks(&mut r, &host.root, family);
    local::journald(&mut r, host);
    system::unit(&mut r, host, exec).await;
    r
}

#[cfg(test)]
mod tests;
