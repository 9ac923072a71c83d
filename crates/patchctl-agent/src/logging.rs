//! Where the agent's audit and diagnostic events go: the journal when its socket exists
//! (SYSLOG_IDENTIFIER `patchctl`), otherwise stderr; optionally also a file in the
//! configured log directory.
//!
//! In the journal every field of an event is a journal field of its own, named in upper
//! case without a prefix (`command_id` becomes `COMMAND_ID`, `error` becomes `ERROR`), so
//! `journalctl -t patchctl COMMAND_ID=…` finds what happened to one command. The log
//! file is private (0600 in a 0700 directory when the agent creates it) whatever the
//! process's umask: the unit gives the agent the umask its package-manager children need
//! (0022), not the one its own files need.

use std::fs::File;
use std::io::IsTerminal;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::Mutex;

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The journal's native socket.
pub const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";

/// The log file's name in the configured log directory.
pub const LOG_FILE: &str = "agent.log";

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
            let file = open_log_file(dir)?;
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
        tracing_journald::layer().ok().map(|l| {
            l.with_syslog_identifier("patchctl".into())
                .with_field_prefix(None)
        })
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

/// Opens `dir/agent.log` for appending, creating the directory (0700) and the file
/// (0600) when missing. A file left readable by others (written by an older agent under
/// another umask) is made private before anything more is written to it.
pub fn open_log_file(dir: &Path) -> std::io::Result<File> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(dir.join(LOG_FILE))?;
    let mode = file.metadata()?.permissions().mode();
    if mode & 0o077 != 0 {
        file.set_permissions(std::fs::Permissions::from_mode(mode & 0o700))?;
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn the_log_file_is_private_whatever_the_umask() {
        // The test process runs with a permissive umask (0022 here, like the unit's): a
        // file opened without an explicit mode would come out 0644.
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("log/patchctl");
        let mut f = open_log_file(&dir).unwrap();
        std::io::Write::write_all(&mut f, b"line\n").unwrap();
        assert_eq!(mode(&dir.join(LOG_FILE)), 0o600);
        assert_eq!(mode(&dir), 0o700);
        // Opening again appends and keeps the mode.
        let mut f = open_log_file(&dir).unwrap();
        std::io::Write::write_all(&mut f, b"more\n").unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join(LOG_FILE)).unwrap(),
            "line\nmore\n"
        );
        assert_eq!(mode(&dir.join(LOG_FILE)), 0o600);
    }

    #[test]
    fn a_log_file_readable_by_others_is_made_private() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join(LOG_FILE);
        std::fs::write(&path, "old\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        open_log_file(tmp.path()).unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old\n");
    }
}
