//! The agents' long-polls held by this node (issue 16): who waits, and waking them.
//!
//! A long-poll registers its host ([`Waiters::register`]) and sleeps on the host's
//! [`Notify`]; a command queued for the host, announced by whichever node queued it
//! (`crate::changes`), wakes it ([`Waiters::wake`]) and the handler leases the command.
//! Waiting costs no database work: the handler reads the database only when woken.
//!
//! The gap between a heartbeat's lease and the next long-poll's registration (or
//! between two long-polls) is closed by remembering wakes: a wake for a host nobody
//! waits for is kept for [`REMEMBER`], and a long-poll registering meanwhile starts
//! with a lease ([`Waiter::due`]). A wake always arms before the lease it leads to, so
//! a command committed after a lease read it is announced after the waiter re-armed.
//!
//! The table is sharded by host so that thousands of long-polls starting and ending a
//! second do not queue on one lock.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio::sync::futures::OwnedNotified;
use uuid::Uuid;

/// How long a wake for a host nobody waits for is remembered.
pub const REMEMBER: Duration = Duration::from_secs(600);
/// Shards of the table.
const SHARDS: usize = 64;

#[derive(Default)]
struct Slot {
    notify: Arc<Notify>,
    /// Long-polls of the host registered now.
    waiting: u32,
    /// The last wake, when nobody consumed it yet.
    woken_at: Option<Instant>,
}

/// Every long-poll this node holds, by host.
pub struct Waiters {
    shards: Vec<Mutex<HashMap<Uuid, Slot>>>,
}

impl Default for Waiters {
    fn default() -> Self {
        Waiters {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
        }
    }
}

impl Waiters {
    fn shard(&self, host: Uuid) -> std::sync::MutexGuard<'_, HashMap<Uuid, Slot>> {
        let i = (host.as_u128() % SHARDS as u128) as usize;
        self.shards[i].lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes the host's long-polls, or remembers the wake for the next one.
    pub fn wake(&self, host: Uuid) {
        let mut shard = self.shard(host);
        let slot = shard.entry(host).or_default();
        slot.woken_at = Some(Instant::now());
        slot.notify.notify_waiters();
    }

    /// Registers a long-poll of `host`; it is armed (a wake from now on reaches it) and
    /// [`Waiter::due`] says whether a wake came since the host's last long-poll.
    pub fn register(self: &Arc<Self>, host: Uuid) -> Waiter {
        let mut shard = self.shard(host);
        let slot = shard.entry(host).or_default();
        slot.waiting += 1;
        let due = slot.woken_at.take().is_some_and(|t| t.elapsed() < REMEMBER);
        let notified = Box::pin(Arc::clone(&slot.notify).notified_owned());
        Waiter {
            host,
            due,
            notified,
            waiters: Arc::clone(self),
        }
    }

    /// Long-polls held now (for the metrics).
    pub fn waiting(&self) -> u64 {
        self.shards
            .iter()
            .map(|s| {
                let s = s.lock().unwrap_or_else(|e| e.into_inner());
                s.values().map(|slot| u64::from(slot.waiting)).sum::<u64>()
            })
            .sum()
    }

    /// Drops remembered wakes older than [`REMEMBER`] of hosts nobody waits for.
    pub fn sweep(&self) {
        for s in &self.shards {
            let mut s = s.lock().unwrap_or_else(|e| e.into_inner());
            s.retain(|_, slot| {
                slot.waiting > 0 || slot.woken_at.is_some_and(|t| t.elapsed() < REMEMBER)
            });
        }
    }

    fn release(&self, host: Uuid) {
        let mut shard = self.shard(host);
        if let Some(slot) = shard.get_mut(&host) {
            slot.waiting = slot.waiting.saturating_sub(1);
            if slot.waiting == 0 && slot.woken_at.is_none() {
                shard.remove(&host);
            }
        }
    }
}

/// One registered long-poll; unregistered when dropped.
pub struct Waiter {
    host: Uuid,
    /// A wake came before this long-poll registered (or since it last leased): lease.
    pub due: bool,
    notified: Pin<Box<OwnedNotified>>,
    waiters: Arc<Waiters>,
}

impl Waiter {
    /// Waits for the next wake, then arms again for the one after (before the caller
    /// leases, so nothing committed after the lease's read is missed).
    pub async fn woken(&mut self) {
        self.notified.as_mut().await;
        let mut shard = self.waiters.shard(self.host);
        let slot = shard.entry(self.host).or_default();
        // This waiter takes the wake; a remembered one is consumed with it.
        slot.woken_at = None;
        self.notified = Box::pin(Arc::clone(&slot.notify).notified_owned());
        self.due = true;
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        self.waiters.release(self.host);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_wake_reaches_a_registered_waiter_and_is_remembered_otherwise() {
        let w = Arc::new(Waiters::default());
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let mut wa = w.register(a);
        assert!(!wa.due);
        w.wake(a);
        tokio::time::timeout(Duration::from_secs(1), wa.woken())
            .await
            .expect("the wake reaches the waiter");
        assert!(wa.due);
        // A wake for a host nobody waits for is remembered for its next long-poll.
        w.wake(b);
        let wb = w.register(b);
        assert!(wb.due, "a remembered wake makes the next long-poll lease");
        drop(wb);
        assert!(!w.register(b).due, "a wake is consumed once");
        assert_eq!(w.waiting(), 1);
        drop(wa);
        assert_eq!(w.waiting(), 0);
        w.sweep();
    }

    #[tokio::test]
    async fn a_wake_between_two_waits_is_not_lost() {
        let w = Arc::new(Waiters::default());
        let h = Uuid::new_v4();
        let mut waiter = w.register(h);
        w.wake(h);
        waiter.woken().await;
        // Re-armed inside `woken`: a wake now (while the caller leases) ends the next wait.
        w.wake(h);
        tokio::time::timeout(Duration::from_secs(1), waiter.woken())
            .await
            .expect("the second wake is not lost");
    }
}
