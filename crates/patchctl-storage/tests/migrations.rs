//! Migrations fit rolling upgrades (issue 16, docs/deployment.md): every shipped
//! migration only adds (no `DROP` of a table or column, no `RENAME`), so nodes of the
//! previous release keep working on the new schema; and a node whose binary is older
//! than the database (it does not know the newest migration) still opens it. The
//! PostgreSQL half needs a server (a fresh database of `PATCHCTL_TEST_POSTGRES_URL`):
//! reported as skipped, with the reason, without one; a failure under `CI=true`.

use std::path::Path;
use std::process::ExitCode;

use patchctl_testkit::{Harness, Need, trial};
use sqlx::Connection;

fn main() -> ExitCode {
    Harness::new()
        .test(trial!(shipped_migrations_only_add))
        .test(trial!(async an_older_node_opens_a_newer_sqlite_database))
        .test(trial!(async an_older_node_opens_a_newer_postgres_database).needs([Need::Postgres]))
        .run()
}

fn shipped_migrations_only_add() {
    let mut seen = 0;
    for backend in ["postgres", "sqlite"] {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(backend);
        for e in std::fs::read_dir(&dir).unwrap() {
            let path = e.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap().to_ascii_uppercase();
            // Comments may say anything.
            let code: String = text
                .lines()
                .map(|l| l.split("--").next().unwrap_or(""))
                .collect::<Vec<_>>()
                .join("\n");
            for bad in ["DROP TABLE", "DROP COLUMN", "RENAME "] {
                assert!(
                    !code.contains(bad),
                    "{} contains {bad}: migrations only add, so that nodes of the previous release keep working during a rolling upgrade (remove in a later release, after nothing uses it)",
                    path.display()
                );
            }
            seen += 1;
        }
    }
    assert!(seen >= 34, "only {seen} migrations found");
}

/// Marks the database as migrated by a newer release: a migration this binary does
/// not know.
/// `{}` is the checksum's literal, written per backend.
fn newer(checksum: &str) -> String {
    format!(
        "INSERT INTO _sqlx_migrations \
         (version, description, installed_on, success, checksum, execution_time) \
         VALUES (99999, 'from a newer release', CURRENT_TIMESTAMP, TRUE, {checksum}, 0)"
    )
}

async fn an_older_node_opens_a_newer_sqlite_database() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("db.sqlite").display());
    drop(patchctl_storage::open(&url).await.unwrap());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query(&newer("X'00'"))
        .execute(&mut conn)
        .await
        .unwrap();
    drop(conn);
    let store = patchctl_storage::open(&url).await.unwrap();
    store.ping().await.unwrap();
}

async fn an_older_node_opens_a_newer_postgres_database() {
    let url = patchctl_testkit::scratch_postgres("patchctl_migr").await;
    drop(patchctl_storage::open(&url).await.unwrap());
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query(&newer("decode('00', 'hex')"))
        .execute(&mut conn)
        .await
        .unwrap();
    drop(conn);
    let store = patchctl_storage::open(&url).await.unwrap();
    store.ping().await.unwrap();
    drop(store);
}
