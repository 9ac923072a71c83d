//! The SQL backends of [`Storage`](crate::Storage): SQLite ([`SqliteStore`]) and
//! PostgreSQL ([`PostgresStore`]), and what every domain's SQL shares.
//!
//! Both run the very same SQL text (`$N` placeholders, `INSERT ... ON CONFLICT`,
//! `RETURNING`), written once per domain in `identity.rs`, `hosts.rs` (with `enroll.rs` and
//! `heartbeats.rs`), `commands.rs`,
//! `scans.rs`, `vulns.rs`, `releases.rs`, `operators.rs`, `audit.rs` and `windows.rs`: each holds a small macro implementing its domain trait for
//! a store struct and a pool type, instantiated for both backends at its end. The
//! backends differ only in how they open their pools (`sqlite.rs`, `postgres.rs`) and in
//! their migrations (`migrations/<backend>/`). Every write and every transaction uses a
//! store's `writer` pool; single-statement reads use its `reader` pool.
//!
//! Column conventions, identical in both: ids are hyphenated UUIDs as text, times are
//! unix milliseconds as 64-bit integers, JSON documents are text, booleans are bound as
//! Rust `bool`. Anything that does not decode back is reported as
//! [`StorageError::Corrupt`] naming the table and column.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::error::{Result, StorageError};

mod approvals;
mod audit;
mod commands;
mod compliance;
mod dashboard;
mod deployments;
mod enroll;
mod groups;
mod heartbeats;
mod host_list;
mod hosts;
mod identity;
mod limits;
mod nodes;
mod operators;
mod postgres;
mod reboots;
mod releases;
mod scans;
mod sqlite;
mod vulns;
mod webhooks;
mod windows;

pub(crate) use postgres::PostgresStore;
pub(crate) use sqlite::SqliteStore;

/// Ids per `IN (...)` list.
const ID_CHUNK: usize = 1_000;

// ---------------------------------------------------------------------------------
// Conversions shared by both backends and every domain.

/// A time as stored: unix milliseconds.
fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// `t` as it reads back after storing (millisecond precision).
fn trunc(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms(t)).unwrap_or(t)
}

/// A [`StorageError::Corrupt`] for `column` (`table.column`).
fn corrupt(column: &str, why: impl std::fmt::Display) -> StorageError {
    StorageError::Corrupt(format!("{column}: {why}"))
}

/// Decodes a stored time.
fn time(v: i64, column: &str) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp_millis(v)
        .ok_or_else(|| corrupt(column, format!("time {v} out of range")))
}

/// Decodes a stored optional time.
fn opt_time(v: Option<i64>, column: &str) -> Result<Option<DateTime<Utc>>> {
    v.map(|v| time(v, column)).transpose()
}

/// Decodes a stored id.
fn uuid(s: &str, column: &str) -> Result<Uuid> {
    Uuid::parse_str(s).map_err(|e| corrupt(column, format!("bad id {s:?}: {e}")))
}

/// Decodes a stored JSON document.
fn from_json<T: DeserializeOwned>(s: &str, column: &str) -> Result<T> {
    serde_json::from_str(s).map_err(|e| corrupt(column, e))
}

/// Encodes a JSON document for storing.
fn to_json<T: Serialize>(v: &T, column: &str) -> Result<String> {
    serde_json::to_string(v).map_err(|e| corrupt(column, format!("cannot encode: {e}")))
}

/// Decodes a stored non-negative count.
fn count<T: TryFrom<i64>>(v: i64, column: &str) -> Result<T> {
    T::try_from(v).map_err(|_| corrupt(column, format!("count {v} out of range")))
}

/// Maps a unique-constraint violation to [`StorageError::Conflict`] naming `what`.
fn conflict(e: sqlx::Error, what: impl FnOnce() -> String) -> StorageError {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => StorageError::Conflict(what()),
        _ => StorageError::Database(e),
    }
}
