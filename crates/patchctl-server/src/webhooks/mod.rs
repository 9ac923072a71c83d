//! Webhooks: the delivery worker every platform node runs, the target check, the
//! signatures, the HTTP client of one attempt.
//!
//! [`Worker::tick`] (called every [`TICK`] by the task [`start`] spawns, and by tests
//! with a controlled time) first announces hosts that went offline (at most every
//! [`SWEEP_EVERY`]), then leases due messages from the outbox, checks each target again
//! (resolving its host and checking every address), signs the exact stored body and
//! POSTs it to a checked address, records the attempt, and schedules a retry with
//! exponential backoff and jitter (`webhook_retry_base_secs`, doubling, at most
//! [`MAX_DELAY`]) until a day after the message was queued, when it is `failed`.
//! Leases keep two nodes from sending one message; a node that dies mid-attempt loses
//! its lease after [`LEASE`] and another node retries with the same `webhook-id`.

pub mod address;
pub mod deliver;
pub mod sign;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use patchctl_storage::{AttemptNext, AttemptRecord, LeasedMessage, Storage, StorageError};
use rand::Rng;
use tokio::task::JoinSet;
use uuid::Uuid;

use address::Cidr;

/// How often a node looks for due messages.
pub const TICK: Duration = Duration::from_secs(1);
/// How often a node looks for hosts that went offline.
pub const SWEEP_EVERY: Duration = Duration::from_secs(15);
/// How long a leased message is a node's own.
pub const LEASE: Duration = Duration::from_secs(60);
/// The timeout of one attempt (connect, TLS, request, answer).
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest wait between two attempts.
pub const MAX_DELAY: Duration = Duration::from_secs(6 * 3600);
/// How long a message is retried after it was queued.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(24 * 3600);
/// Messages taken per tick.
const BATCH: u32 = 32;

/// Queues `event` for the organisation's subscribers, right after what it reports was
/// stored; a failure is logged and does not fail the request that caused it.
pub async fn emit(
    store: &dyn Storage,
    org_id: Uuid,
    event: &patchctl_proto::policy::webhooks::WebhookEvent,
) {
    if let Err(e) = store
        .enqueue_event(org_id, event, Utc::now().timestamp_millis())
        .await
    {
        tracing::error!(org_id = %org_id, event = %event.event_type(), error = %e,
            "could not queue the webhook event");
    }
}

/// What one tick did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TickReport {
    /// Hosts announced offline.
    pub offline: u64,
    /// Messages delivered.
    pub delivered: u32,
    /// Messages to be retried.
    pub retrying: u32,
    /// Messages given up.
    pub failed: u32,
}

/// What the worker takes from the settings (`Settings::webhook_config`).
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// `webhook_allow_networks`.
    pub allow: Vec<Cidr>,
    /// `webhook_ca_file`.
    pub ca_file: Option<std::path::PathBuf>,
    /// `webhook_retry_base_secs`.
    pub retry_base: Duration,
    /// When a host counts as offline.
    pub offline_after: Duration,
}

/// The delivery worker of one node.
pub struct Worker {
    store: Arc<dyn Storage>,
    allow: Vec<Cidr>,
    tls: Arc<rustls::ClientConfig>,
    retry_base: Duration,
    offline_after: Duration,
    node: Uuid,
    last_sweep: Mutex<Option<DateTime<Utc>>>,
}

impl Worker {
    /// A worker over `store` with the settings' allowance, CA bundle and retry base.
    pub fn new(
        config: &WorkerConfig,
        store: Arc<dyn Storage>,
    ) -> Result<Worker, patchctl_net::tls::TlsError> {
        let tls = patchctl_net::tls::client_config(config.ca_file.as_deref())?;
        Ok(Worker {
            store,
            allow: config.allow.clone(),
            tls,
            retry_base: config.retry_base,
            offline_after: config.offline_after,
            node: Uuid::new_v4(),
            last_sweep: Mutex::new(None),
        })
    }

    /// One round at time `now`: the offline sweep (when due), then every due message.
    pub async fn tick(&self, now: DateTime<Utc>) -> Result<TickReport, StorageError> {
        let mut report = TickReport::default();
        let sweep = {
            let mut last = self.last_sweep.lock().unwrap_or_else(|p| p.into_inner());
            let due = last.is_none_or(|l| {
                now - l >= chrono::Duration::from_std(SWEEP_EVERY).unwrap_or_default() || now < l
            });
            if due {
                *last = Some(now);
            }
            due
        };
        let now_ms = now.timestamp_millis();
        if sweep {
            let before = now_ms - i64::try_from(self.offline_after.as_millis()).unwrap_or(i64::MAX);
            report.offline = self.store.sweep_offline_hosts(before, now_ms).await?;
        }
        let owner = format!("{}/{}", self.node, Uuid::new_v4().simple());
        let leased = self
            .store
            .lease_webhook_messages(&owner, now_ms, LEASE.as_millis() as i64, BATCH)
            .await?;
        let mut tasks = JoinSet::new();
        for m in leased {
            let allow = self.allow.clone();
            let tls = self.tls.clone();
            tasks.spawn(async move {
                let answer = attempt(&m, &allow, tls, now).await;
                (m, answer)
            });
        }
        while let Some(done) = tasks.join_next().await {
            let Ok((m, answer)) = done else { continue };
            let next = if answer.delivered() {
                report.delivered += 1;
                AttemptNext::Delivered
            } else {
                match retry_at(&m, now, self.retry_base) {
                    Some(at) => {
                        report.retrying += 1;
                        AttemptNext::RetryAt(at.timestamp_millis())
                    }
                    None => {
                        report.failed += 1;
                        AttemptNext::Failed
                    }
                }
            };
            log_outcome(&m, &answer, next);
            let record = AttemptRecord {
                at_ms: now_ms,
                status: answer.status,
                error: answer.error.clone(),
                duration_ms: u64::try_from(answer.duration.as_millis()).unwrap_or(u64::MAX),
            };
            // One failed bookkeeping must not stop the others: that message's lease
            // runs out and it is tried again (same webhook-id).
            if let Err(e) = self
                .store
                .finish_webhook_attempt(&m.id, &owner, &record, next)
                .await
            {
                tracing::warn!(message_id = %m.message_id, error = %e,
                    "could not record the webhook attempt; the message will be tried again");
            }
        }
        Ok(report)
    }
}

fn log_outcome(m: &LeasedMessage, answer: &deliver::Answer, next: AttemptNext) {
    match next {
        AttemptNext::Delivered => tracing::info!(
            message_id = %m.message_id, subscription = %m.subscription_id,
            event = %m.event_type, status = ?answer.status, "webhook delivered"
        ),
        AttemptNext::RetryAt(at) => tracing::warn!(
            message_id = %m.message_id, subscription = %m.subscription_id,
            event = %m.event_type, status = ?answer.status, error = ?answer.error,
            retry_at_ms = at, "webhook attempt failed; will retry"
        ),
        AttemptNext::Failed => tracing::error!(
            message_id = %m.message_id, subscription = %m.subscription_id,
            event = %m.event_type, status = ?answer.status, error = ?answer.error,
            "webhook given up after a day of retries"
        ),
    }
}

/// One attempt of `m`: the target checked again (resolved now, every address), signed
/// at `now`, sent to a checked address.
async fn attempt(
    m: &LeasedMessage,
    allow: &[Cidr],
    tls: Arc<rustls::ClientConfig>,
    now: DateTime<Utc>,
) -> deliver::Answer {
    let (target, addrs) = match address::check_target(&m.url, allow).await {
        Ok(t) => t,
        Err(e) => {
            return deliver::Answer {
                status: None,
                error: Some(e.to_string()),
                duration: Duration::ZERO,
            };
        }
    };
    let timestamp = now.timestamp();
    let body = Bytes::from(m.payload.clone().into_bytes());
    let signed = deliver::Signed {
        id: m.message_id.clone(),
        timestamp,
        signature: sign::signature_header(&m.secrets, &m.message_id, timestamp, &body),
    };
    deliver::post(&target, &addrs, tls, &signed, body, ATTEMPT_TIMEOUT).await
}

/// When to try `m` again after its attempt at `now` failed, `None` to give up: `base`
/// doubling with every attempt, at most [`MAX_DELAY`], ±10 % jitter, while within
/// [`GIVE_UP_AFTER`] of its queueing.
pub fn retry_at(m: &LeasedMessage, now: DateTime<Utc>, base: Duration) -> Option<DateTime<Utc>> {
    let delay = backoff(m.attempts + 1, base);
    let jitter = rand::rng().random_range(0.9..=1.1);
    let delay = delay.mul_f64(jitter);
    let at = now + chrono::Duration::from_std(delay).ok()?;
    let give_up = m.created_at + chrono::Duration::from_std(GIVE_UP_AFTER).ok()?;
    (at <= give_up).then_some(at)
}

/// The delay after the `attempt`-th failed attempt (1 first): `base * 2^(attempt-1)`,
/// at most [`MAX_DELAY`].
pub fn backoff(attempt: u32, base: Duration) -> Duration {
    let factor = 1u32
        .checked_shl(attempt.saturating_sub(1))
        .unwrap_or(u32::MAX);
    base.checked_mul(factor).unwrap_or(MAX_DELAY).min(MAX_DELAY)
}

/// Starts the worker of this node: a tick every [`TICK`]. `None` (logged) when the
/// webhook CA bundle cannot be read.
pub fn start(
    config: &WorkerConfig,
    store: Arc<dyn Storage>,
) -> Option<tokio::task::JoinHandle<()>> {
    let worker = match Worker::new(config, store) {
        Ok(w) => w,
        Err(e) => {
            tracing::error!(error = %e, "webhooks are not delivered: cannot load webhook_ca_file");
            return None;
        }
    };
    Some(tokio::spawn(async move {
        loop {
            if let Err(e) = worker.tick(Utc::now()).await {
                tracing::warn!(error = %e, "webhook tick failed; trying again");
            }
            tokio::time::sleep(TICK).await;
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let b = Duration::from_secs(30);
        assert_eq!(backoff(1, b), Duration::from_secs(30));
        assert_eq!(backoff(2, b), Duration::from_secs(60));
        assert_eq!(backoff(5, b), Duration::from_secs(480));
        assert_eq!(backoff(20, b), MAX_DELAY);
        assert_eq!(backoff(200, b), MAX_DELAY);
    }

    fn message(attempts: u32, age: chrono::Duration, now: DateTime<Utc>) -> LeasedMessage {
        LeasedMessage {
            id: "m:s".into(),
            message_id: "msg_x".into(),
            org_id: Uuid::nil(),
            subscription_id: Uuid::nil(),
            url: "https://hooks.example/".into(),
            event_type: "host.enrolled".into(),
            payload: "{}".into(),
            attempts,
            created_at: now - age,
            secrets: Vec::new(),
        }
    }

    #[test]
    fn retries_are_jittered_and_given_up_after_a_day() {
        let now = Utc::now();
        let base = Duration::from_secs(30);
        for attempts in 0..6 {
            let m = message(attempts, chrono::Duration::zero(), now);
            let wait = (retry_at(&m, now, base).unwrap() - now).to_std().unwrap();
            let expected = backoff(attempts + 1, base);
            assert!(
                wait >= expected.mul_f64(0.9) && wait <= expected.mul_f64(1.1),
                "{wait:?}"
            );
        }
        // A retry that would fall past a day after the event: given up.
        let m = message(12, chrono::Duration::hours(23), now);
        assert_eq!(retry_at(&m, now, base), None);
        let m = message(1, chrono::Duration::hours(23), now);
        assert!(retry_at(&m, now, base).is_some());
    }
}
