//! The process's open-file limit: every connection holds a descriptor, so the soft
//! limit (often 1,024) would stop a node long before `max_connections`. At start the
//! soft limit is raised to the hard limit (which only root or the unit's
//! `LimitNOFILE=` can raise).
//!
//! When `max_connections` plus the descriptors the process needs besides
//! ([`RESERVED_FDS`]) do not fit, the node holds only the connections that fit, and a
//! warning says so, once. Client connections never take the descriptors the database
//! needs: without this cap, a flood of connections ran the process out of descriptors,
//! the PostgreSQL pool could not reconnect, and every request failed with "pool timed
//! out" (issue 16, a 100,000-agent run on PostgreSQL with `max_connections` 1,000,000
//! and 20,000 descriptors).

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

    /// The connections a node holds at once: `max_connections`, or fewer when the
    /// limit does not leave room for them (at least 1).
    pub fn cap(&self, max_connections: usize) -> usize {
        let fit = usize::try_from(self.connections()).unwrap_or(usize::MAX);
        max_connections.min(fit).max(1)
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

/// [`raise`]; the connections the node holds at once ([`FdLimit::cap`]), with a
/// warning (once per process) when that is fewer than `max_connections`.
pub fn raise_and_check(max_connections: usize) -> usize {
    static WARNED: Once = Once::new();
    match raise() {
        Ok(limit) => {
            tracing::info!(
                soft = limit.soft,
                hard = limit.hard,
                "open-file limit raised to the hard limit"
            );
            let cap = limit.cap(max_connections);
            if cap < max_connections {
                WARNED.call_once(|| {
                    tracing::warn!(
                        max_connections,
                        open_file_limit = limit.soft,
                        connections_held = cap,
                        "max_connections exceeds what the open-file limit allows ({} descriptors, {} kept for the database and files): this node holds at most {} connections and refuses more; raise LimitNOFILE= in the systemd unit (or ulimit -Hn) to at least {} for the whole max_connections",
                        limit.soft,
                        RESERVED_FDS,
                        cap,
                        max_connections as u64 + RESERVED_FDS,
                    );
                });
            }
            cap
        }
        Err(e) => {
            WARNED.call_once(|| {
                tracing::warn!(error = %e, "cannot read or raise the open-file limit");
            });
            max_connections
        }
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

    #[test]
    fn connections_never_take_the_descriptors_the_database_needs() {
        let limit = FdLimit {
            soft: 20_000,
            hard: 20_000,
        };
        assert_eq!(limit.cap(1_000_000), 20_000 - RESERVED_FDS as usize);
        assert_eq!(limit.cap(5_000), 5_000, "a cap that fits is kept");
        let tiny = FdLimit {
            soft: 100,
            hard: 100,
        };
        assert_eq!(tiny.cap(10), 1, "at least one connection");
    }
}
