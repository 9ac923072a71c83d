//! A throw-away PostgreSQL database for one benchmark run: `patchctl_bench_<random>`,
//! created on the server an admin URL points at and dropped afterwards, so a run never
//! touches an existing database.

use std::time::Duration;

use anyhow::Context;
use sqlx::{Connection, Executor, PgConnection};

/// Longest wait for the admin connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A database created for this run. Call [`ScratchDb::drop_db`] when done.
#[derive(Debug)]
pub struct ScratchDb {
    /// URL of the new database.
    pub url: String,
    /// URL of the database the admin connection used.
    admin_url: String,
    /// Name of the new database.
    name: String,
}

/// Returns `url` with its database (the path) replaced by `db`; the query is kept.
pub fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let after_scheme = base.find("://").map(|i| i + 3).unwrap_or(0);
    let authority_end = base[after_scheme..]
        .find('/')
        .map(|i| after_scheme + i)
        .unwrap_or(base.len());
    let mut out = format!("{}/{}", &base[..authority_end], db);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

async fn connect(url: &str) -> anyhow::Result<PgConnection> {
    tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect(url))
        .await
        .map_err(|_| anyhow::anyhow!("PostgreSQL did not answer within {CONNECT_TIMEOUT:?}"))?
        .map_err(anyhow::Error::from)
}

impl ScratchDb {
    /// Creates a fresh database on the server of `admin_url`.
    ///
    /// When the database `admin_url` names does not exist, the server's `postgres`
    /// database is used for the admin connection instead.
    pub async fn create(admin_url: &str) -> anyhow::Result<ScratchDb> {
        let (mut conn, admin_url) = match connect(admin_url).await {
            Ok(c) => (c, admin_url.to_owned()),
            Err(first) => {
                let fallback = with_database(admin_url, "postgres");
                match connect(&fallback).await {
                    Ok(c) => (c, fallback),
                    Err(_) => {
                        return Err(first.context(
                            "cannot connect to PostgreSQL (pass --postgres-url, or start it)",
                        ));
                    }
                }
            }
        };
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        let name = format!("patchctl_bench_{}", &suffix[..12]);
        conn.execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .with_context(|| format!("cannot create the database {name}"))?;
        let _ = conn.close().await;
        Ok(ScratchDb {
            url: with_database(&admin_url, &name),
            admin_url,
            name,
        })
    }

    /// Drops the database (closing any connection still open to it).
    pub async fn drop_db(self) -> anyhow::Result<()> {
        let mut conn = connect(&self.admin_url).await?;
        conn.execute(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name).as_str())
            .await
            .with_context(|| format!("cannot drop the database {}", self.name))?;
        let _ = conn.close().await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn replaces_the_database() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://u:p@h/test?sslmode=disable", "x"),
            "postgres://u:p@h/x?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://h:5432", "x"),
            "postgres://h:5432/x"
        );
    }
}
