//! The process's open-file limit: every connection holds a descriptor, so the soft
//! limit (often 1,024) would stop a node long before `max_connections`. At start the
//! soft limit is raised to the hard limit (which only root or the unit's
//! `LimitNOFILE=` can raise), and a warning says so, once, when `max_connections` plus
//! the descriptors the process needs besides ([`RESERVED_FDS`]) do not fit.

use std::sync::Once;

use nix::sys::resource::{Resource, getrlimit, setrlimit};

/// Descriptors kept for what is not a client connection: the database pool, SQLite's
/// files, the listeners, feed downloads, logs.
pub const RESERVED_FDS: u64 = 1024;

/// The open-file limit after [`raise`]: soft and hard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdLimit {
    /// The soft limit (what the process may open).
    pub soft: u64,
    /// The hard limit.
    pub hard: u64,
}

impl FdLimit {
    /// Connections that fit beside [`RESERVED_FDS`].
    pub fn connections(&self) -> u64 {
        self.soft.saturating_sub(RESERVED_FDS)
    }
}

/// Raises the soft open-file limit to the hard limit; the limits after.
pub fn raise() -> Result<FdLimit, nix::Error> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_err() {
        // An unlimited hard limit is capped by the kernel's fs.nr_open.
        let nr_open = std::fs::read_to_string("/proc/sys/fs/nr_open")
            .ok()
            .and_then(|t| t.trim().parse::<u64>().ok())
            .unwrap_or(soft);
        setrlimit(Resource::RLIMIT_NOFILE, nr_open.min(hard), hard)?;
    }
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    Ok(FdLimit { soft, hard })
}

/// [`raise`], then a warning (once per process) when `max_connections` does not fit.
pub fn raise_and_check(max_connections: usize) {
    static WARNED: Once = Once::new();
    match raise() {
        Ok(limit) => {
            tracing::info!(
                soft = limit.soft,
                hard = limit.hard,
                "open-file limit raised to the hard limit"
            );
            if (max_connections as u64) > limit.connections() {
                WARNED.call_once(|| {
                    tracing::warn!(
                        max_connections,
                        open_file_limit = limit.soft,
                        connections_that_fit = limit.connections(),
                        "max_connections exceeds what the open-file limit allows ({} descriptors, {} kept for the database and files): past {} connections accepts fail instead of being refused cleanly; raise LimitNOFILE= in the systemd unit (or ulimit -Hn) to at least {}, or lower max_connections",
                        limit.soft,
                        RESERVED_FDS,
                        limit.connections(),
                        max_connections as u64 + RESERVED_FDS,
                    );
                });
            }
        }
        Err(e) => WARNED.call_once(|| {
            tracing::warn!(error = %e, "cannot read or raise the open-file limit");
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_ends_at_the_hard_limit() {
        let limit = raise().unwrap();
        assert!(
            limit.soft == limit.hard || limit.hard == u64::MAX,
            "{limit:?}"
        );
        assert_eq!(raise().unwrap(), limit);
        assert_eq!(
            FdLimit {
                soft: 2048,
                hard: 4096
            }
            .connections(),
            2048 - RESERVED_FDS
        );
    }
}
