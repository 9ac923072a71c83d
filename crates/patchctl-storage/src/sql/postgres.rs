//! The PostgreSQL backend: connecting a pool to `postgres://...` and running
//! `migrations/postgres`. The per-domain SQL (`sql/<domain>.rs`) uses
//! the same pool for reads and writes (PostgreSQL has row locks, not a file lock).
//!
//! Announcements between nodes ([`ChangeStore`]): `NOTIFY` on [`CHANNEL`], issued by the
//! storage methods inside the transaction of the change they announce
//! (`commit_announcing`: delivered exactly when it commits), heard by one
//! listening connection per node (its own, outside the pool), started at the first
//! subscription and ended when the last subscriber is gone. A dropped listening
//! connection is re-established with the channel listened to again, and then
//! subscribers get [`Change::Lost`]: what was announced meanwhile was missed.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use sqlx::PgPool;
use sqlx::postgres::{PgListener, PgPoolOptions};
use tokio::sync::broadcast;

use crate::changes::{BACKLOG, CHANNEL, Change, ChangeStore};
use crate::error::Result;

/// Connections in the PostgreSQL pool.
const CONNECTIONS: u32 = 16;

/// Connections the pool keeps open whatever the load (see [`ACQUIRE_TIMEOUT`]). Not all
/// of [`CONNECTIONS`]: PostgreSQL's default `max_connections` is 100, and three nodes
/// holding 17 each (with the listener) would leave too little for anything else.
const KEPT_CONNECTIONS: u32 = 4;

/// How long a query waits for a connection before it fails. While the server is down
/// (a restart, a failover) a request then gets its 503 within this time instead of
/// hanging for sqlx's default 30 s.
///
/// The pool keeps [`KEPT_CONNECTIONS`] open whatever happens (`min_connections`: sqlx
/// reconnects in the background, with a deadline of its own) and does not ping a
/// connection before handing it out. Under overload both matter: a connect or a ping
/// made inside `acquire` is cut at this timeout, and a connection cut mid-ping is
/// closed, so a node flooded with requests (100,000 agents enrolling at once, issue 16)
/// lost its connections one by one and could not open new ones within 5 s: every
/// request failed with "pool timed out". A connection broken by a server restart fails
/// its next query (a 503 the client retries) and is replaced in the background; sqlx
/// still pings each connection when it is released.
const ACQUIRE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The PostgreSQL backend (`postgres://...` or `postgresql://...`).
#[derive(Debug, Clone)]
pub(crate) struct PostgresStore {
    /// The pool writes and transactions use.
    pub(super) writer: PgPool,
    /// The pool plain reads use (the same pool).
    pub(super) reader: PgPool,
    /// Announcements heard, for this node's subscribers.
    changes: broadcast::Sender<Change>,
    /// Whether the listening task runs (changed only under this lock).
    listening: Arc<Mutex<bool>>,
}

impl PostgresStore {
    /// Connects to and migrates the database `url` names.
    pub(crate) async fn open(url: &str) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(CONNECTIONS)
            .min_connections(KEPT_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .test_before_acquire(false)
            .connect(url)
            .await?;
        // Rolling upgrades (docs/deployment.md): the first node of a new release applies
        // its migrations (sqlx holds an advisory lock, so nodes starting together apply
        // them once); a node of the previous release that restarts meanwhile finds
        // migrations it does not know and starts anyway. Migrations only add (tables,
        // columns with defaults, indexes), so the previous release still works on the
        // new schema; a test in `tests/migrations.rs` keeps every shipped migration
        // free of DROP and RENAME.
        let mut migrator = sqlx::migrate!("./migrations/postgres");
        migrator.set_ignore_missing(true);
        migrator.run(&pool).await?;
        tracing::debug!("opened PostgreSQL storage");
        Ok(PostgresStore {
            writer: pool.clone(),
            reader: pool,
            changes: broadcast::channel(BACKLOG).0,
            listening: Arc::default(),
        })
    }

    /// Commits `tx` with `changes` announced inside it: PostgreSQL delivers a `NOTIFY`
    /// issued in a transaction when that transaction commits, and never when it rolls
    /// back, so a committed change is announced even if this node dies right after.
    pub(super) async fn commit_announcing(
        &self,
        mut tx: sqlx::Transaction<'_, sqlx::Postgres>,
        changes: &[Change],
    ) -> Result<()> {
        for change in changes {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CHANNEL)
                .bind(change.encode())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

/// Wait before connecting the listener again after a failure.
const RELISTEN_PAUSE: Duration = Duration::from_secs(1);

/// Hears [`CHANNEL`] on a connection of its own and passes what it hears on, until
/// nobody subscribes any more.
async fn listen(pool: PgPool, tx: broadcast::Sender<Change>, listening: Arc<Mutex<bool>>) {
    // Its own pool of one connection, on the same options: the listening connection is
    // held for good and must not take one of the shared pool's.
    let own = PgPoolOptions::new()
        .max_connections(1)
        .max_lifetime(None)
        .idle_timeout(None)
        .connect_lazy_with((*pool.connect_options()).clone());
    let mut listener: Option<PgListener> = None;
    // Set when announcements may have been missed: sent once listening (again). At the
    // start, too: whatever was announced before the first LISTEN was not heard.
    let mut lost = true;
    loop {
        if listener.is_none() {
            let attempt = async {
                let mut l = PgListener::connect_with(&own).await?;
                l.listen(CHANNEL).await?;
                Ok::<_, sqlx::Error>(l)
            };
            match attempt.await {
                Ok(l) => {
                    listener = Some(l);
                    if lost {
                        lost = false;
                        let _ = tx.send(Change::Lost);
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for other nodes' changes; trying again");
                    lost = true;
                    tokio::select! {
                        _ = tx.closed() => if stop(&tx, &listening) { return },
                        _ = tokio::time::sleep(RELISTEN_PAUSE) => {}
                    }
                    continue;
                }
            }
        }
        let Some(l) = listener.as_mut() else { continue };
        tokio::select! {
            _ = tx.closed() => {
                if stop(&tx, &listening) {
                    return;
                }
            }
            heard = l.try_recv() => match heard {
                Ok(Some(n)) => match Change::decode(n.payload()) {
                    Some(c) => {
                        let _ = tx.send(c);
                    }
                    None => tracing::debug!("ignored an announcement of another form"),
                },
                // The connection dropped and was made again (and listens again):
                // whatever was announced meanwhile was missed.
                Ok(None) => {
                    tracing::warn!("the connection listening for other nodes' changes dropped; listening again");
                    let _ = tx.send(Change::Lost);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "lost the connection listening for other nodes' changes; reconnecting");
                    listener = None;
                    lost = true;
                    tokio::time::sleep(RELISTEN_PAUSE).await;
                }
            },
        }
    }
}

/// True (and the task marked stopped) when nobody subscribes any more; checked under the
/// lock a new subscriber takes, so a subscriber is never left without a listener.
fn stop(tx: &broadcast::Sender<Change>, listening: &Mutex<bool>) -> bool {
    let mut running = listening.lock().unwrap_or_else(|e| e.into_inner());
    if tx.receiver_count() == 0 {
        *running = false;
        true
    } else {
        false
    }
}

#[async_trait]
impl ChangeStore for PostgresStore {
    fn subscribe(&self) -> broadcast::Receiver<Change> {
        let mut running = self.listening.lock().unwrap_or_else(|e| e.into_inner());
        let rx = self.changes.subscribe();
        if !*running {
            *running = true;
            tokio::spawn(listen(
                self.writer.clone(),
                self.changes.clone(),
                Arc::clone(&self.listening),
            ));
        }
        rx
    }

    async fn announce(&self, change: Change) -> Result<()> {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(change.encode())
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        Ok(())
    }
}
