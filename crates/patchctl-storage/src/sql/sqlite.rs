//! The SQLite backend: opening the database file (WAL, `synchronous=NORMAL`, foreign
//! keys on, 5 s busy timeout), running `migrations/sqlite`, and the two connection
//! pools the per-domain SQL (`sql/<domain>.rs`) uses. Announcements
//! ([`ChangeStore`]) stay in the process: one process owns the file; the storage
//! methods that make an announced change send it once their transaction committed
//! (`commit_announcing`).
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

/// True when the writer connection comes back to the pool still inside a transaction:
/// its transaction failed and the `ROLLBACK` sqlx sent when it was dropped failed too
/// (on `SQLITE_FULL` or an I/O error SQLite may end the transaction itself, or refuse
/// the `ROLLBACK` while the failed statement is pending). sqlx then counts one open
/// transaction more than there is, nests every later transaction as a `SAVEPOINT`
/// inside one that never commits, and every later write would be acknowledged and
/// lost. The pool closes such a connection (SQLite rolls back what it held, nothing of
/// which was acknowledged) and opens a fresh one. The ping first lets the `ROLLBACK`
/// queued by the dropped transaction run.
async fn stuck_in_transaction(conn: &mut sqlx::SqliteConnection) -> Result<bool, sqlx::Error> {
    use sqlx::Connection;
    conn.ping().await?;
    let stuck = conn.is_in_transaction();
    if stuck {
        tracing::warn!(
            "the database connection was left inside a failed transaction (a full disk or an I/O error); reopening it"
        );
    }
    Ok(stuck)
}

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
        // A private in-memory database exists only inside its one connection.
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let mut writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None);
        if !in_memory {
            writer = writer.after_release(|conn, _| {
                Box::pin(async move { Ok(!stuck_in_transaction(conn).await?) })
            });
        }
        let writer = writer.connect_with(options.clone()).await?;
        // A binary older than the database (it does not know the newest migration)
        // still opens it: migrations only add (`tests/migrations.rs`).
        let mut migrator = sqlx::migrate!("./migrations/sqlite");
        migrator.set_ignore_missing(true);
        migrator.run(&writer).await?;
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

    /// Commits `tx`, then announces `changes` in the process: the one process owns the
    /// file, so if it dies after the commit its subscribers die with it.
    pub(super) async fn commit_announcing(
        &self,
        tx: sqlx::Transaction<'_, sqlx::Sqlite>,
        changes: &[Change],
    ) -> Result<()> {
        tx.commit().await?;
        for change in changes {
            // No subscriber is no error: nobody needed to hear it.
            let _ = self.changes.send(*change);
        }
        Ok(())
    }
}

#[async_trait]
impl ChangeStore for SqliteStore {
    fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.changes.subscribe()
    }

    async fn announce(&self, change: Change) -> Result<()> {
        // No subscriber is no error: nobody needed to hear it.
        let _ = self.changes.send(change);
        Ok(())
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        Ok(())
    }
}
