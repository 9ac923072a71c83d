//! This node in the registry of nodes sharing the database (issue 16 §3), and the count
//! of live nodes that divides the in-memory rate limits ([`crate::ratelimit::Share`]).
//!
//! A [`Registry`] has a random id for the life of the process. Its task ([`start`])
//! beats every [`BEAT_EVERY`] (`patchctl_storage::NodeStore::beat`: the node's row is
//! written and the nodes seen in the last 45 s are counted) and sets the share to that
//! count, so every node admits ceil(limit / N). The first successful beat announces
//! [`Change::Nodes`], and so does [`Registry::leave`] (a draining node removes its row):
//! every node hearing it beats at once ([`Registry::recount`], called by
//! `crate::changes`), so that a node joining or leaving moves the shares within a
//! database round trip rather than a beat. A node that dies without leaving stops
//! being counted 45 s after its last beat; until then the others admit a little less
//! than the limit, never more.
//!
//! A failed beat keeps the last count (the limits stay as they were) and is logged once
//! per outage, as a warning; the beat that succeeds again is logged too. On SQLite the
//! count is 1 (one process owns the file): the share is the whole limit, and the row
//! shows the node all the same; after a crash and restart the dead process's row counts
//! for up to 45 s (the limit halved meanwhile, never raised).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use patchctl_storage::{Change, NodeBeat, Storage};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::ratelimit::Share;

/// How often a node writes its row and counts the others.
pub const BEAT_EVERY: Duration = Duration::from_secs(15);

/// This node, as the other nodes see it.
#[derive(Debug)]
pub struct Registry {
    id: Uuid,
    address: std::sync::Mutex<Option<String>>,
    share: Share,
    /// The last beat failed (the outage was logged).
    failing: AtomicBool,
    /// The node is leaving: no more beats (they would write its row again).
    left: AtomicBool,
    /// Beat now (another node joined or left).
    now: Notify,
}

impl Registry {
    /// A node with a new random id, alone until its first beat.
    pub fn new() -> Self {
        Registry {
            id: Uuid::new_v4(),
            address: std::sync::Mutex::new(None),
            share: Share::default(),
            failing: AtomicBool::new(false),
            left: AtomicBool::new(false),
            now: Notify::new(),
        }
    }

    /// This node's id.
    pub fn id(&self) -> Uuid {
        self.id
    }

    /// The live nodes at the last successful beat (1 before the first).
    pub fn live(&self) -> u32 {
        self.share.nodes()
    }

    /// The count the rate limits of this node divide by.
    pub fn share(&self) -> Share {
        self.share.clone()
    }

    /// Records the address this node serves on (written at the next beat).
    pub fn set_address(&self, address: Option<String>) {
        *self.address.lock().unwrap_or_else(|e| e.into_inner()) = address;
    }

    /// Writes this node's row and takes the count of live nodes; on failure keeps the
    /// last count. Answers the count in force. Does nothing once the node has left.
    pub async fn beat(&self, store: &dyn Storage) -> u32 {
        if self.left.load(Ordering::Relaxed) {
            return self.live();
        }
        let address = self
            .address
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let node = NodeBeat {
            id: self.id,
            version: env!("CARGO_PKG_VERSION"),
            address: address.as_deref(),
        };
        match store.beat(&node, chrono::Utc::now()).await {
            Ok(live) => {
                if self.failing.swap(false, Ordering::Relaxed) {
                    tracing::info!(node = %self.id, live, "node registry reachable again: the rate limits follow the live nodes");
                }
                let before = self.share.nodes();
                self.share.set(live);
                if before != live {
                    tracing::info!(node = %self.id, live, "live nodes changed: each takes 1/{live} of the in-memory rate limits");
                }
                live
            }
            Err(e) => {
                if !self.failing.swap(true, Ordering::Relaxed) {
                    tracing::warn!(node = %self.id, error = %e, live = self.live(), "cannot write this node's row in the node registry; the rate limits keep the last count of live nodes until it succeeds");
                }
                self.live()
            }
        }
    }

    /// Asks the beating task for a beat now (a node joined or left).
    pub fn recount(&self) {
        self.now.notify_one();
    }

    /// The node is stopping: no more beats, its row removed, and every node told to
    /// count again (they take over its share at once).
    pub async fn leave(&self, store: &dyn Storage) {
        self.left.store(true, Ordering::Relaxed);
        match store.remove_node(self.id).await {
            Ok(_) => announce_nodes(store).await,
            Err(e) => {
                tracing::warn!(node = %self.id, error = %e, "cannot remove this node from the node registry; the others stop counting it 45 s after its last beat")
            }
        }
    }
}

impl Default for Registry {
    fn default() -> Self {
        Registry::new()
    }
}

/// Tells every node to count the live nodes again; a failure is logged (they count at
/// their next beat).
async fn announce_nodes(store: &dyn Storage) {
    if let Err(e) = store.announce(Change::Nodes).await {
        tracing::warn!(error = %e, "could not tell the other nodes that this one joined or left; they count again at their next beat (15 s)");
    }
}

/// Starts the task that beats every [`BEAT_EVERY`] and whenever [`Registry::recount`]
/// asks; the first successful beat tells the other nodes that this one joined.
pub fn start(store: Arc<dyn Storage>, registry: Arc<Registry>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(BEAT_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut joined = false;
        loop {
            tokio::select! {
                _ = every.tick() => {}
                _ = registry.now.notified() => {}
            }
            if registry.left.load(Ordering::Relaxed) {
                return;
            }
            registry.beat(store.as_ref()).await;
            if !joined && !registry.failing.load(Ordering::Relaxed) {
                joined = true;
                announce_nodes(store.as_ref()).await;
            }
        }
    })
}
