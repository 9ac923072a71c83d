//! What can go wrong in storage: [`StorageError`], shared by every domain trait, and
//! the [`Result`] alias.

/// What went wrong in storage. Messages never contain secrets (only hashes are stored).
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The database URL is not one this build understands.
    #[error("unsupported database URL scheme {0:?}; use sqlite://PATH or postgres://USER@HOST/DB")]
    UnsupportedUrl(String),
    /// The database answered with an error or could not be reached.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A migration failed.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored value could not be decoded (a bug or a hand-edited database).
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// A unique value (organisation name, key hash) already exists.
    #[error("{0} already exists")]
    Conflict(String),
    /// A value cannot be stored as given (the message says which and why); nothing was
    /// written.
    #[error("cannot store {0}")]
    Invalid(String),
}

impl StorageError {
    /// True when the database's file system (SQLite `SQLITE_FULL`, or `ENOSPC`) or the
    /// database server's disk (PostgreSQL `disk_full`, 53100) is full: nothing was
    /// written, and freeing space is what helps.
    pub fn is_disk_full(&self) -> bool {
        let StorageError::Database(e) = self else {
            return false;
        };
        match e {
            // SQLITE_FULL is 13 (sqlx reports the extended code, the same here).
            sqlx::Error::Database(db) => {
                matches!(db.code().as_deref(), Some("13") | Some("53100"))
                    || db.message().contains("database or disk is full")
            }
            sqlx::Error::Io(io) => io.raw_os_error() == Some(28), // ENOSPC
            _ => false,
        }
    }
}

/// Result alias for storage operations.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;
