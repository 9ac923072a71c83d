//! What this node does with the changes every node announces (issue 16, several nodes
//! on one PostgreSQL; on SQLite the same path runs inside the one process):
//!
//! - a command queued for a host wakes that host's long-poll, on whichever node holds
//!   it (`crate::longpoll`);
//! - a scan stored by any node makes this node's CVE engine correlate the host again,
//!   so that every node serves the same findings;
//! - a host revoked, rejected or with a new credential is forgotten by this node's
//!   credential cache, so that a revoked agent is refused everywhere at once;
//! - a node joined or left: this node counts the live nodes again (`crate::nodes`), so
//!   that its share of the rate limits follows at once.
//!
//! When announcements may have been missed ([`Change::Lost`]: the node's listening
//! connection dropped, or this node fell behind), the node re-reads instead: it wakes
//! the long-polls of every host with queued commands, empties its credential cache,
//! reloads the engine and counts the live nodes. The bounds without any announcement are the long-poll's
//! timeout, the credential cache's time to live (`auth::CREDENTIAL_CACHE_TTL`) and the
//! engine's periodic refresh.
//!
//! Nothing here announces: the storage methods that make these changes announce them
//! with their write (`queue_command`, `put_scan`, `put_inventory`, `revoke_host`,
//! `set_approval`, `promote_credential`; on PostgreSQL a `NOTIFY` inside the
//! transaction, delivered exactly when it commits), so a node that dies right after
//! its commit loses no announcement, and a write that fails announces nothing.

use std::sync::Arc;
use std::time::Duration;

use patchctl_storage::{Change, Storage};
use tokio::sync::broadcast::error::RecvError;

use crate::auth::CredentialCache;
use crate::engine::VulnEngine;
use crate::longpoll::Waiters;
use crate::nodes::Registry;

/// How often remembered wakes nobody took are dropped.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// Starts the task that applies every announced change to this node's long-polls,
/// credential cache and CVE engine.
pub fn start(
    store: Arc<dyn Storage>,
    waiters: Arc<Waiters>,
    credentials: Arc<CredentialCache>,
    engine: Arc<VulnEngine>,
    nodes: Arc<Registry>,
) {
    // Subscribed before the first request can announce anything.
    let mut rx = store.subscribe();
    tokio::spawn(async move {
        let mut sweep = tokio::time::interval(SWEEP_EVERY);
        loop {
            let heard = tokio::select! {
                r = rx.recv() => r,
                _ = sweep.tick() => {
                    waiters.sweep();
                    // Shared rate-limit buckets untouched for an hour are full again.
                    let before = chrono::Utc::now() - chrono::Duration::hours(1);
                    if let Err(e) = store.trim_rate_buckets(before).await {
                        tracing::debug!(error = %e, "could not trim the shared rate-limit buckets");
                    }
                    continue;
                }
            };
            let change = match heard {
                Ok(c) => c,
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!(
                        missed = n,
                        "fell behind the changes other nodes announced; re-reading"
                    );
                    Change::Lost
                }
                Err(RecvError::Closed) => return,
            };
            match change {
                Change::Commands { host } => waiters.wake(host),
                Change::Scan { org, host } => engine.host_changed_later(org, host),
                Change::Standing { host } => credentials.forget_host(host),
                Change::Nodes => nodes.recount(),
                Change::Lost => {
                    credentials.forget_all();
                    nodes.recount();
                    match store.hosts_with_queued_commands().await {
                        Ok(hosts) => hosts.into_iter().for_each(|h| waiters.wake(h)),
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot read which hosts have queued commands; their long-polls end at their timeout")
                        }
                    }
                    engine.reload_later();
                }
            }
        }
    });
}
