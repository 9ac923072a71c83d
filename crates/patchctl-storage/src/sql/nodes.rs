//! The SQL of [`NodeStore`]: table `nodes` (migration 0020), one row per node, written
//! by an `INSERT … ON CONFLICT DO UPDATE` in the transaction that also forgets the rows
//! of long-dead nodes and counts the live ones.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{PostgresStore, SqliteStore, count, ms};
use crate::error::Result;
use crate::nodes::{NODE_FORGET_AFTER, NODE_LIVE_WITHIN, NodeBeat, NodeStore};

/// `$1` id, `$2` now (ms), `$3` version, `$4` address.
const UPSERT: &str = "INSERT INTO nodes (id, started_at, seen_at, version, address) \
     VALUES ($1, $2, $2, $3, $4) \
     ON CONFLICT (id) DO UPDATE SET seen_at = EXCLUDED.seen_at, \
     version = EXCLUDED.version, address = EXCLUDED.address";

/// `$1` the oldest `seen_at` kept (ms).
const FORGET: &str = "DELETE FROM nodes WHERE seen_at < $1";

/// `$1` the oldest `seen_at` counted (ms).
const LIVE: &str = "SELECT COUNT(*) FROM nodes WHERE seen_at >= $1";

macro_rules! impl_nodes {
    ($store:ty, $db:ty) => {
        #[async_trait]
        impl NodeStore for $store {
            async fn beat(&self, node: &NodeBeat<'_>, now: DateTime<Utc>) -> Result<u32> {
                let mut tx = self.writer.begin().await?;
                sqlx::query(UPSERT)
                    .bind(node.id.to_string())
                    .bind(ms(now))
                    .bind(node.version)
                    .bind(node.address)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(FORGET)
                    .bind(ms(now - NODE_FORGET_AFTER))
                    .execute(&mut *tx)
                    .await?;
                let (live,): (i64,) = sqlx::query_as(LIVE)
                    .bind(ms(now - NODE_LIVE_WITHIN))
                    .fetch_one(&mut *tx)
                    .await?;
                tx.commit().await?;
                // This node's own row is always counted.
                Ok(count::<u32>(live, "nodes.count")?.max(1))
            }

            async fn remove_node(&self, node: Uuid) -> Result<bool> {
                let done = sqlx::query("DELETE FROM nodes WHERE id = $1")
                    .bind(node.to_string())
                    .execute(&self.writer)
                    .await?;
                Ok(done.rows_affected() > 0)
            }
        }
    };
}

impl_nodes!(SqliteStore, sqlx::Sqlite);
impl_nodes!(PostgresStore, sqlx::Postgres);
