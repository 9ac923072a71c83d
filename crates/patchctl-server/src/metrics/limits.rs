//! What the abuse limits refused: connections over the cap, connections and requests
//! that timed out (TLS handshake, headers, idle, body), requests over a rate limit by
//! scope, and agent requests shed by the bound on requests in flight. The accept loop
//! (`serve/`) holds a [`ConnCounters`]; the rate limits count their own refusals
//! ([`crate::ratelimit::Refused`]) and the gate its own
//! ([`crate::gate::AgentGate`]), read at scrape time.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use super::text::{Kind, Text};
use crate::gate::AgentGate;
use crate::ratelimit::{Refused, Scope};

/// Why a connection or request was cut off by time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timeout {
    /// The TLS handshake took too long.
    Handshake,
    /// The request headers did not arrive in time (HTTP/1.1).
    Header,
    /// No request in flight for the idle timeout.
    Idle,
    /// A request body did not arrive in time (answered 408).
    Body,
}

impl Timeout {
    /// Every kind, in the order of the counters.
    pub const ALL: [Timeout; 4] = [
        Timeout::Handshake,
        Timeout::Header,
        Timeout::Idle,
        Timeout::Body,
    ];

    /// The label (`patchctl_connection_timeouts_total{kind=...}`).
    pub fn as_str(self) -> &'static str {
        match self {
            Timeout::Handshake => "handshake",
            Timeout::Header => "header",
            Timeout::Idle => "idle",
            Timeout::Body => "body",
        }
    }
}

/// The connection counters of one platform process.
#[derive(Debug, Default)]
pub struct ConnCounters {
    open: AtomicI64,
    refused: AtomicU64,
    timeouts: [AtomicU64; 4],
}

impl ConnCounters {
    /// A connection was accepted (under the cap).
    pub fn opened(&self) {
        self.open.fetch_add(1, Ordering::Relaxed);
    }

    /// An accepted connection ended.
    pub fn closed(&self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
    }

    /// A connection over `max_connections` was closed at once.
    pub fn refused(&self) {
        self.refused.fetch_add(1, Ordering::Relaxed);
    }

    /// A connection or request timed out.
    pub fn timed_out(&self, kind: Timeout) {
        let i = Timeout::ALL.iter().position(|k| *k == kind).unwrap_or(0);
        self.timeouts[i].fetch_add(1, Ordering::Relaxed);
    }

    /// Connections open now.
    pub fn open(&self) -> i64 {
        self.open.load(Ordering::Relaxed)
    }

    /// Connections refused by the cap so far.
    pub fn refused_count(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Timeouts of `kind` so far.
    pub fn timeouts(&self, kind: Timeout) -> u64 {
        let i = Timeout::ALL.iter().position(|k| *k == kind).unwrap_or(0);
        self.timeouts[i].load(Ordering::Relaxed)
    }

    /// Writes the connection families.
    pub fn encode(&self, t: &mut Text) {
        t.family(
            "patchctl_connections_open",
            Kind::Gauge,
            "TLS connections this process holds (accepted under max_connections, not yet closed).",
        );
        t.sample("patchctl_connections_open", &[], self.open() as f64);
        t.family(
            "patchctl_connections_refused_total",
            Kind::Counter,
            "Connections closed at once because this process held max_connections already.",
        );
        t.sample(
            "patchctl_connections_refused_total",
            &[],
            self.refused_count() as f64,
        );
        t.family(
            "patchctl_connection_timeouts_total",
            Kind::Counter,
            "Connections closed (or request bodies answered 408) by a timeout, by kind (handshake, header, idle, body).",
        );
        for kind in Timeout::ALL {
            t.sample(
                "patchctl_connection_timeouts_total",
                &[("kind", kind.as_str())],
                self.timeouts(kind) as f64,
            );
        }
    }
}

/// Writes the requests refused by a rate limit, by scope, from both sets of limits.
pub fn encode_rate_limited(t: &mut Text, enroll: &Refused, agent: &Refused) {
    t.family(
        "patchctl_rate_limited_total",
        Kind::Counter,
        "Requests answered 429 by a rate limit of this process, by scope (enroll_address, enroll_key, agent_credential, agent_address).",
    );
    for scope in Scope::ALL {
        let n = enroll.get(scope) + agent.get(scope);
        t.sample(
            "patchctl_rate_limited_total",
            &[("scope", scope.as_str())],
            n as f64,
        );
    }
}

/// Writes the database-bound agent requests in flight and those shed by the gate.
pub fn encode_agent_gate(t: &mut Text, gate: &AgentGate) {
    t.family(
        "patchctl_agent_requests_in_flight",
        Kind::Gauge,
        "Database-bound agent requests (enroll, inventory, scan, results, credential) this process answers now; at most agent_requests_in_flight.",
    );
    t.sample(
        "patchctl_agent_requests_in_flight",
        &[],
        f64::from(gate.in_flight()),
    );
    t.family(
        "patchctl_agent_requests_shed_total",
        Kind::Counter,
        "Database-bound agent requests answered 503 overloaded with Retry-After at once because this process held agent_requests_in_flight of them already.",
    );
    t.sample(
        "patchctl_agent_requests_shed_total",
        &[],
        gate.shed() as f64,
    );
}
