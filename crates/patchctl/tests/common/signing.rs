//! Commands written straight into a platform's database, as an attacker with write
//! access to it (or a test) would: unsigned, signed by any key, or signed with the
//! platform's own key file (what only a holder of that file can do).

use std::path::Path;

use chrono::{DateTime, Utc};
use patchctl_proto::signing::{COMMAND_STATEMENT_KIND, CommandStatement, SignedDocument};
use patchctl_release::SecretKey;
use uuid::Uuid;

/// The secret key of `org` in a platform's key file.
pub fn platform_key(key_file: &Path, org: Uuid) -> SecretKey {
    let mut f = patchctl_server::signing::KeyFile::read(key_file)
        .unwrap()
        .expect("the platform's key file exists");
    f.orgs
        .remove(&org)
        .expect("the organisation has a key")
        .secret
}

/// A statement for `host` signed by `key`.
#[allow(clippy::too_many_arguments)]
pub fn statement(
    key: &SecretKey,
    org: Uuid,
    host: Uuid,
    id: Uuid,
    operation: &str,
    params: serde_json::Value,
    expires_at: DateTime<Utc>,
) -> SignedDocument {
    let st = CommandStatement {
        kind: COMMAND_STATEMENT_KIND.into(),
        org,
        host,
        command: id,
        operation: operation.into(),
        params,
        queued_at: Utc::now(),
        expires_at,
        approval: None,
    };
    patchctl_release::command::sign_command(key, &st).unwrap()
}

fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// Signs a statement for `host` with `key` (valid for an hour) and inserts its row:
/// returns the command id.
pub fn insert_signed(
    db_url: &str,
    key: &SecretKey,
    org: Uuid,
    host: Uuid,
    kind: &str,
    params: &serde_json::Value,
) -> Uuid {
    let id = Uuid::new_v4();
    let expires = Utc::now() + chrono::Duration::hours(1);
    let doc = statement(key, org, host, id, kind, params.clone(), expires);
    insert_row(db_url, org, host, id, kind, params, Some(&doc));
    id
}

/// Inserts a queued command row with raw SQL into the SQLite database at `db_url`
/// (`sqlite://PATH`), bypassing the platform: what the agent gets is exactly this row.
#[allow(clippy::too_many_arguments)]
pub fn insert_row(
    db_url: &str,
    org: Uuid,
    host: Uuid,
    id: Uuid,
    kind: &str,
    params: &serde_json::Value,
    signed: Option<&SignedDocument>,
) {
    block_on(async {
        let pool = sqlx::SqlitePool::connect(db_url).await.unwrap();
        let now = Utc::now().timestamp_millis();
        sqlx::query(
            "INSERT INTO commands (id, org_id, host_id, kind, params_json, state, created_at, \
             updated_at, expires_at, deliveries, signed_json) \
             VALUES (?, ?, ?, ?, ?, 'queued', ?, ?, ?, 0, ?)",
        )
        .bind(id.to_string())
        .bind(org.to_string())
        .bind(host.to_string())
        .bind(kind)
        .bind(params.to_string())
        .bind(now)
        .bind(now)
        .bind(now + 3_600_000)
        .bind(signed.map(|d| serde_json::to_string(d).unwrap()))
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;
    });
}

/// Sets a finished command back to `queued` with raw SQL: a replay of its row.
pub fn requeue_row(db_url: &str, id: Uuid) {
    block_on(async {
        let pool = sqlx::SqlitePool::connect(db_url).await.unwrap();
        let done = sqlx::query(
            "UPDATE commands SET state = 'queued', lease_until = NULL, \
             expires_at = ? WHERE id = ?",
        )
        .bind(Utc::now().timestamp_millis() + 3_600_000)
        .bind(id.to_string())
        .execute(&pool)
        .await
        .unwrap();
        assert_eq!(done.rows_affected(), 1);
        pool.close().await;
    });
}

/// The organisation of `host`, read from the database.
pub fn org_of_host(db_url: &str, host: Uuid) -> Uuid {
    block_on(async {
        let pool = sqlx::SqlitePool::connect(db_url).await.unwrap();
        let (org,): (String,) = sqlx::query_as("SELECT org_id FROM hosts WHERE id = ?")
            .bind(host.to_string())
            .fetch_one(&pool)
            .await
            .unwrap();
        pool.close().await;
        org.parse().unwrap()
    })
}
