//! The platform nodes sharing the database (issue 16 §3: rate limits across nodes).
//!
//! Every node has a random id for the life of its process and beats every 15 s
//! ([`NodeStore::beat`]): its row (`nodes`, migration 0020) is written with the time,
//! and the answer is how many nodes were seen in the last [`NODE_LIVE_WITHIN`], this one
//! included. The server divides each in-memory rate limit by that count, so that the
//! nodes together admit what one node's limit says. A node that stops removes its row
//! ([`NodeStore::remove_node`]); one that died is no longer counted after
//! [`NODE_LIVE_WITHIN`], and its row is deleted after [`NODE_FORGET_AFTER`].
//!
//! Times are each node's own clock: nodes whose clocks disagree by seconds count each
//! other all the same (the window is three beats).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::Result;

/// A node seen this recently is live (three beats of 15 s).
pub const NODE_LIVE_WITHIN: chrono::Duration = chrono::Duration::seconds(45);

/// A node not seen for this long is deleted by any node's beat.
pub const NODE_FORGET_AFTER: chrono::Duration = chrono::Duration::days(1);

/// What a node says of itself at each beat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeBeat<'a> {
    /// The node's id (random, for the life of the process).
    pub id: Uuid,
    /// The node's version (`CARGO_PKG_VERSION`).
    pub version: &'a str,
    /// The address it serves on, when known.
    pub address: Option<&'a str>,
}

/// The node registry.
#[async_trait]
pub trait NodeStore: Send + Sync {
    /// Records that `node` is alive at `now` (its row is created at the first beat,
    /// with `started_at` = `now`), deletes the rows not seen since `now` −
    /// [`NODE_FORGET_AFTER`], and answers how many nodes were seen since `now` −
    /// [`NODE_LIVE_WITHIN`], this one included (so at least 1).
    async fn beat(&self, node: &NodeBeat<'_>, now: DateTime<Utc>) -> Result<u32>;

    /// Removes `node`'s row (it is stopping); whether there was one.
    async fn remove_node(&self, node: Uuid) -> Result<bool>;
}
