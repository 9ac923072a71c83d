//! Changes every platform node must learn of at once, whichever node made them
//! (issue 16): a command queued for a host (its long-poll wakes), a scan stored (the CVE
//! engine re-correlates the host), a host's standing changed (cached credentials are
//! forgotten), a node joined or left (every node counts the live nodes again, to take
//! its share of the rate limits, `crate::nodes`).
//!
//! The storage methods that make these changes announce them with their write:
//! `queue_command` ([`Change::Commands`]), `put_scan` and `put_inventory`
//! ([`Change::Scan`]), `revoke_host`, `set_approval` and `promote_credential`
//! ([`Change::Standing`]). On PostgreSQL the announcement is a `NOTIFY` on the channel
//! [`CHANNEL`] issued inside the write's transaction, which PostgreSQL delivers exactly
//! when the transaction commits and never when it rolls back: a node that dies right
//! after its commit loses no announcement. On SQLite, where one process owns the file,
//! it is sent in the process once the commit succeeded (if the process dies, its
//! subscribers die with it). [`ChangeStore::announce`] announces outside any write (for
//! what is not a storage write; none is today). [`ChangeStore::subscribe`] hears every
//! announcement from then on; every node `LISTEN`s on one connection of its own, opened
//! at the first subscription.
//!
//! Notifications can still be missed by a listener: a node's listening connection can
//! drop (PostgreSQL restarted). Subscribers therefore get [`Change::Lost`] whenever the
//! listening connection was re-established (and a lagging receiver loses messages the
//! same way, which tokio reports), and each keeps a bound of its own: the credential
//! cache's time to live, the long-poll's timeout, the engine's periodic check.

use async_trait::async_trait;
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::error::Result;

/// The PostgreSQL channel of announcements.
pub const CHANNEL: &str = "patchctl_changes";

/// Announcements a subscriber may fall behind by before it gets
/// `RecvError::Lagged` (and must treat it as [`Change::Lost`]).
pub const BACKLOG: usize = 65_536;

/// One change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// A command was queued for the host.
    Commands {
        /// The host.
        host: Uuid,
    },
    /// A scan (or inventory) of the host was stored.
    Scan {
        /// The host's organisation.
        org: Uuid,
        /// The host.
        host: Uuid,
    },
    /// The host was revoked, approved or rejected, or its credential changed.
    Standing {
        /// The host.
        host: Uuid,
    },
    /// A node joined or is leaving: count the live nodes again.
    Nodes,
    /// Announcements may have been missed: re-read what matters.
    Lost,
}

impl Change {
    /// The text form (a `NOTIFY` payload): `c <host>`, `s <org> <host>`, `h <host>`,
    /// `nodes`, `lost`. (A node of an older release ignores `nodes`.)
    pub fn encode(&self) -> String {
        match self {
            Change::Commands { host } => format!("c {host}"),
            Change::Scan { org, host } => format!("s {org} {host}"),
            Change::Standing { host } => format!("h {host}"),
            Change::Nodes => "nodes".into(),
            Change::Lost => "lost".into(),
        }
    }

    /// Reads [`Change::encode`]'s form; `None` for anything else (a payload of another
    /// version is ignored, never misread).
    pub fn decode(text: &str) -> Option<Change> {
        let mut words = text.split(' ');
        let kind = words.next()?;
        let mut id = || words.next().and_then(|w| Uuid::parse_str(w).ok());
        let change = match kind {
            "c" => Change::Commands { host: id()? },
            "s" => {
                let org = id()?;
                Change::Scan { org, host: id()? }
            }
            "h" => Change::Standing { host: id()? },
            "nodes" => Change::Nodes,
            "lost" => Change::Lost,
            _ => return None,
        };
        words.next().is_none().then_some(change)
    }
}

/// Announcing changes to every node and hearing them.
#[async_trait]
pub trait ChangeStore: Send + Sync {
    /// Every announcement from now on, this node's own included (subscribed before
    /// this returns; on PostgreSQL, [`Change::Lost`] follows once the node listens, as
    /// what was announced before could not be heard).
    fn subscribe(&self) -> broadcast::Receiver<Change>;

    /// Tells every node sharing the database (this one too), outside any write. The
    /// storage methods that change what is announced announce with their write; this
    /// is for what is not a storage write.
    async fn announce(&self, change: Change) -> Result<()>;

    /// Whether the database answers a trivial query now (a node's readiness).
    async fn ping(&self) -> Result<()>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn every_change_reads_back() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        for c in [
            Change::Commands { host: a },
            Change::Scan { org: a, host: b },
            Change::Standing { host: b },
            Change::Nodes,
            Change::Lost,
        ] {
            assert_eq!(Change::decode(&c.encode()), Some(c));
        }
    }

    proptest! {
        #[test]
        fn any_text_decodes_or_is_refused(text in ".{0,120}") {
            if let Some(c) = Change::decode(&text) {
                prop_assert_eq!(c.encode(), text);
            }
        }
    }
}
