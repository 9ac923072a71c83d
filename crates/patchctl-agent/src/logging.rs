//! Where the agent's audit and diagnostic events go: the journal when its socket exists
//! (SYSLOG_IDENTIFIER `patchctl`), otherwise stderr; optionally also a file in the
//! configured log directory.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::Mutex;

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The journal's native socket.
pub const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    /// The log directory or its `agent.log` could not be created or opened.
    #[error(transparent)]
    File(#[from] std::io::Error),
    /// A global subscriber was already installed.
    #[error(transparent)]
    Init(#[from] tracing_subscriber::util::TryInitError),
}

/// Installs the global subscriber. `RUST_LOG` (`level` or `target=level,...`)
/// overrides the default `info` level. A target filter, not `EnvFilter`: the agent then
/// links no regular-expression engine, which keeps its resident code small.
pub fn init(log_dir: Option<&Path>) -> Result<(), LoggingError> {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|s| s.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(LevelFilter::INFO));
    let file_layer = match log_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join("agent.log"))?;
            Some(
                tracing_subscriber::fmt::layer()
                    .with_ansi(false)
                    .with_writer(Mutex::new(file)),
            )
        }
        None => None,
    };
    let registry = tracing_subscriber::registry().with(filter).with(file_layer);
    let journal = if Path::new(JOURNAL_SOCKET).exists() {
        tracing_journald::layer()
            .ok()
            .map(|l| l.with_syslog_identifier("patchctl".into()))
    } else {
        None
    };
    match journal {
        Some(j) => registry.with(j).try_init()?,
        None => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(std::io::stderr().is_terminal())
                    .with_writer(std::io::stderr),
            )
            .try_init()?,
    }
    Ok(())
}
