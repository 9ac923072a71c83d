//! Rate limits every node shares (issue 16: several nodes on one database): token
//! buckets kept in the database, for the limits that guard secrets — enrollment
//! attempts per enrollment key, login attempts per username — so that three nodes
//! allow what one does, not three times as much. Each node keeps its in-memory buckets
//! too (per address, checked first, before any database work).
//!
//! A bucket holds up to `per_min` tokens (a minute's worth) and refills at `per_min` a
//! minute. Every attempt takes a token, a refused one too (down to a debt of one
//! minute's worth): a client that keeps trying while refused stays refused, one that
//! waits the `Retry-After` it was given passes.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::Result;

/// The shared token buckets.
#[async_trait]
pub trait LimitStore: Send + Sync {
    /// Takes a token of `bucket` (`per_min` a minute, bursts of up to `per_min`) at
    /// `now`: `None` when there was one, else how long until an attempt passes.
    async fn take_token(
        &self,
        bucket: &str,
        per_min: u32,
        now: DateTime<Utc>,
    ) -> Result<Option<Duration>>;

    /// Forgets buckets untouched since `before` (they are full again); how many.
    async fn trim_rate_buckets(&self, before: DateTime<Utc>) -> Result<u64>;
}
