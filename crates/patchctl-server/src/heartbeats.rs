//! Group commit for heartbeats: every heartbeat waiting when the writer is free goes
//! into one transaction.
//!
//! At fleet scale heartbeats dominate the platform's writes. One task owns the write
//! path; a request hands its heartbeat over and waits for the commit. While a batch is
//! being written, the next one forms, so batching adds no latency when idle and
//! amortises the transaction when busy.

use std::sync::Arc;

use patchctl_storage::{HeartbeatWrite, Storage};
use tokio::sync::{mpsc, oneshot};

/// Most heartbeats in one transaction.
const MAX_BATCH: usize = 512;
/// Heartbeats that may wait for the writer before requests queue up behind them.
const QUEUE: usize = 8_192;

type Reply = oneshot::Sender<Result<bool, ()>>;

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
                        for r in replies.drain(..) {
                            let _ = r.send(Err(()));
                        }
                    }
                }
                writes.clear();
            }
        });
        HeartbeatBatcher { tx }
    }

    /// Records one heartbeat; true when the host has queued or delivered commands.
    pub async fn record(&self, w: HeartbeatWrite) -> Result<bool, ()> {
        let (reply, wait) = oneshot::channel();
        self.tx.send((w, reply)).await.map_err(|_| ())?;
        wait.await.map_err(|_| ())?
    }
}
