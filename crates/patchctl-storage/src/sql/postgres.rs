//! The PostgreSQL backend: connecting a pool to `postgres://...` and running
//! `migrations/postgres`. The per-domain SQL (`sql/<domain>.rs`) uses
//! the same pool for reads and writes (PostgreSQL has row locks, not a file lock).

use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

use crate::error::Result;

/// Connections in the PostgreSQL pool.
const CONNECTIONS: u32 = 16;

/// How long a query waits for a connection before it fails. While the server is down
/// (a restart, a failover) a request then gets its 503 within this time instead of
/// hanging for sqlx's default 30 s; connections are checked before use, so the pool
/// reconnects by itself once the server is back.
const ACQUIRE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The PostgreSQL backend (`postgres://...` or `postgresql://...`).
#[derive(Debug, Clone)]
pub(crate) struct PostgresStore {
    /// The pool writes and transactions use.
    pub(super) writer: PgPool,
    /// The pool plain reads use (the same pool).
    pub(super) reader: PgPool,
}

impl PostgresStore {
    /// Connects to and migrates the database `url` names.
    pub(crate) async fn open(url: &str) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .test_before_acquire(true)
            .connect(url)
            .await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        tracing::debug!("opened PostgreSQL storage");
        Ok(PostgresStore {
            writer: pool.clone(),
            reader: pool,
        })
    }
}
