//! A node's orderly stop (issue 16, rolling upgrades behind a load balancer): when the
//! node is asked to stop, it first drains. Its readiness (`GET /api/v1/health/ready`)
//! answers 503 `draining` so the load balancer stops sending it new requests, the
//! long-polls it holds answer at once with no command (their agents come back through
//! another node), and only after `drain_secs` does it stop accepting connections.

use tokio::sync::watch;

/// Whether this node drains; cheap to clone.
#[derive(Clone)]
pub struct Drain {
    tx: std::sync::Arc<watch::Sender<bool>>,
}

impl Default for Drain {
    fn default() -> Self {
        Drain {
            tx: std::sync::Arc::new(watch::channel(false).0),
        }
    }
}

impl Drain {
    /// Starts draining (for good).
    pub fn start(&self) {
        self.tx.send_replace(true);
    }

    /// Whether the node drains.
    pub fn is_draining(&self) -> bool {
        *self.tx.borrow()
    }

    /// Resolves once the node drains.
    pub async fn started(&self) {
        let mut rx = self.tx.subscribe();
        let _ = rx.wait_for(|d| *d).await;
    }
}
