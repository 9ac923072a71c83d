//! What the agents sent: counters the agent API's handlers increment, one line each
//! (heartbeats recorded, scans by body, v1 inventories, command results by outcome).

use std::sync::atomic::{AtomicU64, Ordering};

use patchctl_proto::scan::ScanBody;
use patchctl_storage::RecordOutcome;

use super::text::{Kind, Text};

/// The scan bodies, as labelled.
const SCAN_BODIES: [&str; 3] = ["full", "delta", "unchanged"];
/// The result outcomes, as labelled.
const RESULT_OUTCOMES: [&str; 3] = ["stored", "duplicate", "unknown_command"];

/// The agent traffic counters of this process.
#[derive(Debug, Default)]
pub struct Traffic {
    heartbeats: AtomicU64,
    long_polls: AtomicU64,
    scans: [AtomicU64; 3],
    inventories: AtomicU64,
    results: [AtomicU64; 3],
}

impl Traffic {
    /// A heartbeat was recorded.
    pub fn heartbeat(&self) {
        self.heartbeats.fetch_add(1, Ordering::Relaxed);
    }

    /// A long-poll began to wait.
    pub fn long_poll(&self) {
        self.long_polls.fetch_add(1, Ordering::Relaxed);
    }

    /// A scan arrived with this body (counted whatever became of it).
    pub fn scan(&self, body: &ScanBody) {
        let i = match body {
            ScanBody::Full { .. } => 0,
            ScanBody::Delta { .. } => 1,
            ScanBody::Unchanged => 2,
        };
        self.scans[i].fetch_add(1, Ordering::Relaxed);
    }

    /// A v1 inventory was stored.
    pub fn inventory(&self) {
        self.inventories.fetch_add(1, Ordering::Relaxed);
    }

    /// A command result arrived and was recorded with `outcome`.
    pub fn result(&self, outcome: RecordOutcome) {
        let i = match outcome {
            RecordOutcome::Stored => 0,
            RecordOutcome::Duplicate => 1,
            RecordOutcome::UnknownCommand => 2,
        };
        self.results[i].fetch_add(1, Ordering::Relaxed);
    }

    /// Writes the counters.
    pub fn encode(&self, t: &mut Text) {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64;
        t.family(
            "patchctl_agent_heartbeats_total",
            Kind::Counter,
            "Agent heartbeats recorded by this process.",
        );
        t.sample(
            "patchctl_agent_heartbeats_total",
            &[],
            get(&self.heartbeats),
        );
        t.family(
            "patchctl_agent_long_polls_total",
            Kind::Counter,
            "Agent long-polls (POST /api/v1/agent/commands/wait) held by this process.",
        );
        t.sample(
            "patchctl_agent_long_polls_total",
            &[],
            get(&self.long_polls),
        );
        t.family(
            "patchctl_agent_scans_total",
            Kind::Counter,
            "Agent scans received by this process, by body (full state, delta, unchanged).",
        );
        for (body, n) in SCAN_BODIES.iter().zip(&self.scans) {
            t.sample("patchctl_agent_scans_total", &[("body", body)], get(n));
        }
        t.family(
            "patchctl_agent_inventories_total",
            Kind::Counter,
            "Protocol v1 inventories stored by this process.",
        );
        t.sample(
            "patchctl_agent_inventories_total",
            &[],
            get(&self.inventories),
        );
        t.family(
            "patchctl_command_results_total",
            Kind::Counter,
            "Command results received by this process, by what recording them did.",
        );
        for (outcome, n) in RESULT_OUTCOMES.iter().zip(&self.results) {
            t.sample(
                "patchctl_command_results_total",
                &[("outcome", outcome)],
                get(n),
            );
        }
    }
}
