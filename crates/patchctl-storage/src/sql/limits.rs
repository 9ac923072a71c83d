//! The SQL of [`LimitStore`]: table `rate_buckets` (migration 0018), one row per bucket,
//! taken with one `INSERT … ON CONFLICT DO UPDATE … RETURNING` (atomic on both
//! backends: nodes racing on one bucket each see the other's token gone).

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{PostgresStore, SqliteStore, ms};
use crate::error::Result;
use crate::limits::LimitStore;

/// `$1` bucket, `$2` capacity (tokens), `$3` now (ms), `$4` refill (tokens a ms). The
/// tokens after this attempt: refilled for the time since the row's (never backwards,
/// whatever the nodes' clocks), capped at the capacity, one taken, floored at a debt of
/// the capacity.
const TAKE: &str = "INSERT INTO rate_buckets (bucket, tokens, at) VALUES ($1, $2 - 1.0, $3) \
     ON CONFLICT (bucket) DO UPDATE SET \
     tokens = CASE \
       WHEN rate_buckets.tokens + (CASE WHEN EXCLUDED.at > rate_buckets.at \
            THEN EXCLUDED.at - rate_buckets.at ELSE 0 END) * $4 >= $2 THEN $2 - 1.0 \
       WHEN rate_buckets.tokens + (CASE WHEN EXCLUDED.at > rate_buckets.at \
            THEN EXCLUDED.at - rate_buckets.at ELSE 0 END) * $4 - 1.0 < 0.0 - $2 THEN 0.0 - $2 \
       ELSE rate_buckets.tokens + (CASE WHEN EXCLUDED.at > rate_buckets.at \
            THEN EXCLUDED.at - rate_buckets.at ELSE 0 END) * $4 - 1.0 END, \
     at = CASE WHEN EXCLUDED.at > rate_buckets.at THEN EXCLUDED.at ELSE rate_buckets.at END \
     RETURNING tokens";

macro_rules! impl_limits {
    ($store:ty, $db:ty) => {
        #[async_trait]
        impl LimitStore for $store {
            async fn take_token(
                &self,
                bucket: &str,
                per_min: u32,
                now: DateTime<Utc>,
            ) -> Result<Option<Duration>> {
                let capacity = f64::from(per_min.max(1));
                let per_ms = capacity / 60_000.0;
                let (tokens,): (f64,) = sqlx::query_as(TAKE)
                    .bind(bucket)
                    .bind(capacity)
                    .bind(ms(now))
                    .bind(per_ms)
                    .fetch_one(&self.writer)
                    .await?;
                if tokens >= 0.0 {
                    return Ok(None);
                }
                // The next attempt passes once it finds a whole token after its own.
                let wait_ms = ((1.0 - tokens) / per_ms).ceil();
                Ok(Some(Duration::from_millis(wait_ms as u64)))
            }

            async fn trim_rate_buckets(&self, before: DateTime<Utc>) -> Result<u64> {
                let done = sqlx::query("DELETE FROM rate_buckets WHERE at < $1")
                    .bind(ms(before))
                    .execute(&self.writer)
                    .await?;
                Ok(done.rows_affected())
            }
        }
    };
}

impl_limits!(SqliteStore, sqlx::Sqlite);
impl_limits!(PostgresStore, sqlx::Postgres);
