//! Group commit for heartbeats: every heartbeat waiting when the writer is free goes
//! into one transaction.
//!
//! At fleet scale heartbeats dominate the platform's writes. One task owns the write
//! path; a request hands its heartbeat over and waits for the commit. While a batch is
//! being written, the next one forms, so batching adds no latency when idle and
//! amortises the transaction when busy.
//!
//! The batch also answers which of its hosts have queued or delivered commands
//! (`pending_commands`), so the heartbeat handler leases commands only for those and the
//! lease itself does not ask again. A heartbeat that cannot be recorded gets a
//! [`HeartbeatError`].

use std::sync::Arc;

use patchctl_storage::{HeartbeatWrite, Storage, StorageError};
use tokio::sync::{mpsc, oneshot};

/// Most heartbeats in one transaction.
const MAX_BATCH: usize = 512;
/// Heartbeats that may wait for the writer before requests queue up behind them.
const QUEUE: usize = 8_192;

/// Why a heartbeat was not recorded.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HeartbeatError {
    /// The batch the heartbeat was part of could not be written (shared by every
    /// heartbeat of the batch; the writer logged it once).
    #[error("recording the heartbeat batch failed: {0}")]
    Storage(#[source] Arc<StorageError>),
    /// The writer task has stopped (the runtime is shutting down); nothing can be
    /// recorded any more.
    #[error("the heartbeat writer has stopped; restart the platform")]
    WriterGone,
}

type Reply = oneshot::Sender<Result<bool, HeartbeatError>>;

/// Handle to the heartbeat writer task.
#[derive(Clone)]
pub struct HeartbeatBatcher {
    tx: mpsc::Sender<(HeartbeatWrite, Reply)>,
}

impl HeartbeatBatcher {
    /// Starts the writer task on the current runtime.
    pub fn start(store: Arc<dyn Storage>, history_len: u32) -> Self {
        let (tx, mut rx) = mpsc::channel::<(HeartbeatWrite, Reply)>(QUEUE);
        tokio::spawn(async move {
            let mut writes = Vec::with_capacity(MAX_BATCH);
            let mut replies = Vec::with_capacity(MAX_BATCH);
            while let Some((w, r)) = rx.recv().await {
                writes.push(w);
                replies.push(r);
                while writes.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok((w, r)) => {
                            writes.push(w);
                            replies.push(r);
                        }
                        Err(_) => break,
                    }
                }
                match store.record_heartbeats(&writes, history_len).await {
                    Ok(out) => {
                        for (w, r) in writes.iter().zip(replies.drain(..)) {
                            let _ = r.send(Ok(out.pending_commands.contains(&w.host_id)));
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, batch = writes.len(), "recording heartbeats failed");
                        let e = Arc::new(e);
                        for r in replies.drain(..) {
                            let _ = r.send(Err(HeartbeatError::Storage(Arc::clone(&e))));
                        }
                    }
                }
                writes.clear();
            }
        });
        HeartbeatBatcher { tx }
    }

    /// Records one heartbeat; true when the host has queued or delivered commands
    /// (the batch's `pending_commands`: a caller leases commands only then, and the
    /// lease does not ask again).
    pub async fn record(&self, w: HeartbeatWrite) -> Result<bool, HeartbeatError> {
        let (reply, wait) = oneshot::channel();
        self.tx
            .send((w, reply))
            .await
            .map_err(|_| HeartbeatError::WriterGone)?;
        wait.await.map_err(|_| HeartbeatError::WriterGone)?
    }
}
