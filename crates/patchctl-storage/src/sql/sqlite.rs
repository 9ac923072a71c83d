//! The SQLite backend: opening the database file (WAL, `synchronous=NORMAL`, foreign
//! keys on, 5 s busy timeout), running `migrations/sqlite`, and the two connection
//! pools the per-domain SQL (`sql/<domain>.rs`) uses. Announcements
//! ([`ChangeStore`]) stay in the process: one process owns the file.
//!
//! All writes go through a single-connection writer pool, so no transaction ever has
//! to upgrade a read lock to a write lock against another connection of this process
//! (the source of `SQLITE_BUSY` with deferred transactions); reads go through a
//! separate multi-connection reader pool, which WAL lets run alongside the writer.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::SqlitePool;
use tokio::sync::broadcast;

use crate::changes::{BACKLOG, Change, ChangeStore};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::error::Result;

/// Readers in the SQLite reader pool.
const READERS: u32 = 8;

/// The SQLite backend (`sqlite://PATH` or `sqlite:PATH`).
#[derive(Debug, Clone)]
pub(crate) struct SqliteStore {
    /// The one connection every write (and every transaction) uses.
    pub(super) writer: SqlitePool,
    /// Connections for plain reads.
    pub(super) reader: SqlitePool,
    /// Announcements: one process owns the file, so they stay in the process.
    changes: broadcast::Sender<Change>,
}

impl SqliteStore {
    /// Opens (creating the file if needed) and migrates the database `url` names.
    pub(crate) async fn open(url: &str) -> Result<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&writer).await?;
        // A private in-memory database exists only inside its one connection.
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let reader = if in_memory {
            writer.clone()
        } else {
            SqlitePoolOptions::new()
                .max_connections(READERS)
                .connect_with(options)
                .await?
        };
        tracing::debug!(url, "opened SQLite storage");
        Ok(SqliteStore {
            writer,
            reader,
            changes: broadcast::channel(BACKLOG).0,
        })
    }
}

#[async_trait]
impl ChangeStore for SqliteStore {
    async fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.changes.subscribe()
    }

    async fn announce(&self, change: Change) -> Result<()> {
        // No subscriber is no error: nobody needed to hear it.
        let _ = self.changes.send(change);
        Ok(())
    }
}
