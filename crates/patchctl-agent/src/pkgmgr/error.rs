//! [`PkgError`]: why a backend step (inventory, refresh, updates, candidate,
//! simulation, repair) gave no answer. Its text is what reaches a command's result, so
//! every variant prints the words the agent has always reported.

use std::path::PathBuf;

use crate::exec::ExecError;

/// Why a package-manager backend step failed.
#[derive(Debug, thiserror::Error)]
pub enum PkgError {
    /// The executor could not run the program (not allowed, not found, timed out).
    #[error(transparent)]
    Exec(#[from] ExecError),
    /// The program ran and exited unsuccessfully; check its output for why.
    #[error("{what} ({exit}): {output}")]
    ToolFailed {
        /// What failed, as the message says it (`apt-get update failed`).
        what: String,
        /// How it exited, as the message says it (`exit 1`, `zypper exit 104: not found`).
        exit: String,
        /// The tail of its output, or the reason read from it.
        output: String,
    },
    /// The executor could not run the program named in `what`.
    #[error("{what} {source}")]
    Run {
        /// What was being run, as the message says it (`zypper list-updates failed:`).
        what: String,
        /// Why it did not run.
        source: ExecError,
    },
    /// The metadata refresh ran but left repositories unrefreshed (unreachable,
    /// unsigned): the updates listed come from older metadata.
    #[error("the package lists were not fully refreshed: {0}")]
    RefreshIncomplete(String),
    /// The program's output could not be read (it says where and why).
    #[error("{0}")]
    Unparsable(String),
    /// Another process holds the package manager's lock; try again later.
    #[error("{0}")]
    Locked(String),
    /// The request was refused before anything was changed (the message says why).
    #[error("{0}")]
    Refused(String),
    /// The package manager's database is missing or not set up (the message says what
    /// to do).
    #[error("{0}")]
    Setup(String),
    /// The rpm inventory could not be read (the rpm query's own message).
    #[error(transparent)]
    Inventory(#[from] crate::inventory::rpm::RpmQueryError),
    /// A file or directory of the package database could not be used; check its
    /// permissions.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was attempted (`read`, `create`, `inspect`, `replace`).
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The blocking task that read the package database did not finish.
    #[error(transparent)]
    Task(#[from] tokio::task::JoinError),
}

impl PkgError {
    /// A program that exited with `code`, its exit status shown as Rust's `Option`
    /// debug form (`Some(1)`), as the agent has always reported it.
    pub fn exited(what: &str, code: Option<i32>, output: impl Into<String>) -> Self {
        PkgError::ToolFailed {
            what: format!("{what} failed"),
            exit: format!("exit {}", crate::text::exit_code(code)),
            output: output.into(),
        }
    }
}

impl PkgError {
    /// A program that exited with `code`: the tail of its standard error, or of its
    /// standard output when the error is empty, the exit status as a number (`none`
    /// when it was killed).
    pub fn failed(what: &str, code: Option<i32>, stdout: &str, stderr: &str) -> Self {
        PkgError::ToolFailed {
            what: format!("{what} failed"),
            exit: format!("exit {}", crate::text::exit_code(code)),
            output: crate::text::failure_detail(stdout, stderr).to_owned(),
        }
    }
}
