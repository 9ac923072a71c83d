//! The bound on database-bound agent requests in flight in this process
//! (`agent_requests_in_flight`, docs/limits.md): [`AgentGate`]. The routes it guards
//! and its middleware are in [`crate::api::guard`]; the metrics read it at scrape time
//! ([`crate::metrics::limits`]).

use std::ops::RangeInclusive;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::StatusCode;
use patchctl_proto::trust::ErrorCode;
use rand::Rng;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::ApiError;
use crate::throttled_log::LogEveryMinute;

/// The `Retry-After` of a shed request, in seconds, drawn at random for each so that
/// the agents shed together do not come back together.
pub const SHED_RETRY_AFTER_SECS: RangeInclusive<u64> = 1..=5;

/// The bound on database-bound agent requests in flight in this process
/// (`agent_requests_in_flight`): a request takes a permit without waiting for one and
/// holds it until its handler has answered; when none is free it is shed (503
/// `overloaded` with `Retry-After`) at once, instead of waiting up to the database
/// pool's acquire timeout for a connection and failing then. Counts what it shed.
#[derive(Debug)]
pub struct AgentGate {
    permits: Arc<Semaphore>,
    limit: u32,
    shed: AtomicU64,
    log: ShedLog,
}

/// A request the gate refused: the node's limit and the seconds to wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overloaded {
    /// The node's `agent_requests_in_flight`.
    pub limit: u32,
    /// `Retry-After`, within [`SHED_RETRY_AFTER_SECS`].
    pub retry_after_secs: u64,
}

impl From<Overloaded> for ApiError {
    /// 503 `overloaded` with `Retry-After`, naming the limit.
    fn from(e: Overloaded) -> Self {
        ApiError {
            retry_after_secs: Some(e.retry_after_secs),
            ..ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "the platform is at its limit of {} agent requests in flight on this node \
                     (agent_requests_in_flight); retry in {} s",
                    e.limit, e.retry_after_secs
                ),
            )
            .with_code(ErrorCode::Overloaded)
        }
    }
}

impl AgentGate {
    /// A gate of `limit` permits (at least one: the settings refuse 0).
    pub fn new(limit: u32) -> AgentGate {
        let limit = limit.max(1);
        AgentGate {
            permits: Arc::new(Semaphore::new(limit as usize)),
            limit,
            shed: AtomicU64::new(0),
            log: ShedLog::default(),
        }
    }

    /// A permit, held until dropped; or, when all are taken, the refusal (counted).
    pub fn try_enter(&self) -> Result<OwnedSemaphorePermit, Overloaded> {
        match Arc::clone(&self.permits).try_acquire_owned() {
            Ok(permit) => Ok(permit),
            Err(_) => {
                let total = self.shed.fetch_add(1, Ordering::Relaxed) + 1;
                self.log.note(self.limit, total);
                Err(Overloaded {
                    limit: self.limit,
                    retry_after_secs: rand::rng().random_range(SHED_RETRY_AFTER_SECS),
                })
            }
        }
    }

    /// The bound (`agent_requests_in_flight`).
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// Requests holding a permit now.
    pub fn in_flight(&self) -> u32 {
        self.limit
            .saturating_sub(u32::try_from(self.permits.available_permits()).unwrap_or(u32::MAX))
    }

    /// Requests shed so far.
    pub fn shed(&self) -> u64 {
        self.shed.load(Ordering::Relaxed)
    }
}

/// Logs shedding at most once a minute, with how many were shed since.
#[derive(Debug, Default)]
struct ShedLog(LogEveryMinute);

impl ShedLog {
    fn note(&self, limit: u32, total: u64) {
        let Some(since) = self.0.due(total) else {
            return;
        };
        tracing::warn!(
            agent_requests_in_flight = limit,
            shed = since,
            "agent requests shed with 503 and Retry-After: this node holds as many database-bound agent requests as it may; add nodes, or raise agent_requests_in_flight if the database keeps up"
        );
    }
}
