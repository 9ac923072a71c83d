//! PostgreSQL only: an enrollment holds its key's row lock from counting the use to the
//! commit, not across the reads and the host insert before it. Enrollments with one
//! shared key queue on that lock, so its span sets how many a second a fleet enrolls
//! (issue 16: 100,000 agents sharing one key).
//!
//! The test stops an enrollment at its host insert (another transaction holds `hosts` in
//! `SHARE` mode) and then takes the key's row lock with `NOWAIT`: it is free while the
//! enrollment waits. With the use counted first, as before, it was taken.

use std::time::{Duration, Instant};

use sqlx::Connection;

use super::{TestDb, enrollment, limited_key, org, t, uses_of};
use patchctl_storage::Enrollment;

pub async fn postgres_enrollment_locks_its_key_only_to_commit() {
    let db = TestDb::postgres("postgres_enrollment_locks_its_key_only_to_commit").await;
    let store = db.open().await;
    let url = db.url.clone();
    // Not in a task of its own (`super::run`): a spawned future holding `&mut
    // PgConnection` across awaits does not type-check (sqlx's `Executor` lifetimes). A
    // failure leaves its scratch database behind.
    {
        let a = org(&store, "a").await;
        let key = limited_key(&store, &a, "fleet", None, Some(10)).await;

        // Inserts into `hosts` wait for this transaction.
        let mut blocker = sqlx::PgConnection::connect(&url).await.expect("connect");
        sqlx::raw_sql("BEGIN; LOCK TABLE hosts IN SHARE MODE")
            .execute(&mut blocker)
            .await
            .expect("lock hosts");

        let enrolling = {
            let store = store.clone();
            tokio::spawn(async move { store.enroll_host(enrollment("fleet", "h1", t(1))).await })
        };

        // Until the enrollment waits for the table lock.
        let mut probe = sqlx::PgConnection::connect(&url).await.expect("connect");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (waiting,): (i64,) = sqlx::query_as(
                "SELECT COUNT(*) FROM pg_stat_activity \
                 WHERE datname = current_database() AND wait_event_type = 'Lock' \
                 AND query LIKE 'INSERT INTO hosts%'",
            )
            .fetch_one(&mut probe)
            .await
            .expect("pg_stat_activity");
            if waiting == 1 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the enrollment never reached its host insert within 10 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }

        // The key's row is free while the enrollment waits.
        let mut tx = probe.begin().await.expect("begin");
        let locked =
            sqlx::query("SELECT id FROM enrollment_keys WHERE id = $1 FOR NO KEY UPDATE NOWAIT")
                .bind(key.id.to_string())
                .fetch_optional(&mut *tx)
                .await;
        tx.rollback().await.expect("rollback");
        if let Err(e) = locked {
            panic!(
                "an enrollment waiting at its host insert holds the key's row lock \
                 (every enrollment with this key waits for it): {e}"
            );
        }

        // Released, the enrollment completes and counts its use.
        sqlx::raw_sql("COMMIT")
            .execute(&mut blocker)
            .await
            .expect("commit");
        let done = tokio::time::timeout(Duration::from_secs(10), enrolling)
            .await
            .expect("the enrollment completes once hosts is free")
            .expect("task")
            .expect("enroll_host");
        assert!(matches!(done, Enrollment::Enrolled { .. }), "{done:?}");
        assert_eq!(uses_of(&store, &a, key.id).await, 1);
    }
    db.cleanup().await;
}
