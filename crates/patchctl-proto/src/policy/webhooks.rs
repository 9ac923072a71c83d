//! Webhooks: the events the platform sends to an organisation's subscribers, and the
//! operator API of subscriptions and their delivery log (`/api/v1/webhooks`).
//!
//! Every delivery is a Standard Webhooks message: the body is `{type, timestamp, data}`
//! ([`WebhookPayload`]), signed with the subscription's secret (docs/webhooks.md).
//! The platform emits an event with `WebhookStore::enqueue_event(org_id, &event, now_ms)`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Secret;

/// The type of an event, as in the payload's `type` and in a subscription's filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum EventType {
    /// A host enrolled (approved at once or pending approval).
    #[serde(rename = "host.enrolled")]
    HostEnrolled,
    /// A host missed three heartbeats; sent once per offline spell.
    #[serde(rename = "host.offline")]
    HostOffline,
    /// An operator revoked a host.
    #[serde(rename = "host.revoked")]
    HostRevoked,
    /// A command finished successfully.
    #[serde(rename = "command.succeeded")]
    CommandSucceeded,
    /// A command failed, was rejected or timed out.
    #[serde(rename = "command.failed")]
    CommandFailed,
    /// A deployment's ring finished.
    #[serde(rename = "deployment.ring_completed")]
    DeploymentRingCompleted,
    /// A deployment halted (a failure past its threshold, an unhealthy host).
    #[serde(rename = "deployment.halted")]
    DeploymentHalted,
    /// A deployment finished every ring.
    #[serde(rename = "deployment.completed")]
    DeploymentCompleted,
    /// A new CVE finding on a host (subscriptions may ask for a minimum severity).
    #[serde(rename = "finding.new")]
    FindingNew,
    /// A finding passed its remediation deadline unfixed.
    #[serde(rename = "deadline.missed")]
    DeadlineMissed,
}

impl EventType {
    /// Every event type, in the order of the documentation.
    pub const ALL: [EventType; 10] = [
        EventType::HostEnrolled,
        EventType::HostOffline,
        EventType::HostRevoked,
        EventType::CommandSucceeded,
        EventType::CommandFailed,
        EventType::DeploymentRingCompleted,
        EventType::DeploymentHalted,
        EventType::DeploymentCompleted,
        EventType::FindingNew,
        EventType::DeadlineMissed,
    ];

    /// The name in payloads, filters and the CLI (`host.enrolled`).
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::HostEnrolled => "host.enrolled",
            EventType::HostOffline => "host.offline",
            EventType::HostRevoked => "host.revoked",
            EventType::CommandSucceeded => "command.succeeded",
            EventType::CommandFailed => "command.failed",
            EventType::DeploymentRingCompleted => "deployment.ring_completed",
            EventType::DeploymentHalted => "deployment.halted",
            EventType::DeploymentCompleted => "deployment.completed",
            EventType::FindingNew => "finding.new",
            EventType::DeadlineMissed => "deadline.missed",
        }
    }

    /// The type named `s`, if any.
    pub fn parse(s: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The type of the message `POST /api/v1/webhooks/{webhook}/test` sends (no
/// subscription filters it out; it is never emitted otherwise).
pub const TEST_EVENT_TYPE: &str = "webhook.test";

/// A finding's severity as a `finding.new` event carries it and a subscription's
/// `min_severity` names it (the names of `patchctl_vuln::Severity`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum EventSeverity {
    /// Not assessed.
    Unknown,
    /// Negligible.
    Negligible,
    /// Low.
    Low,
    /// Medium.
    Medium,
    /// High.
    High,
    /// Critical.
    Critical,
}

impl EventSeverity {
    /// Every severity, lowest first.
    pub const ALL: [EventSeverity; 6] = [
        EventSeverity::Unknown,
        EventSeverity::Negligible,
        EventSeverity::Low,
        EventSeverity::Medium,
        EventSeverity::High,
        EventSeverity::Critical,
    ];

    /// 0 for unknown up to 5 for critical (the order a minimum compares in).
    pub fn rank(self) -> u8 {
        self as u8
    }

    /// The name (`critical`).
    pub fn as_str(self) -> &'static str {
        match self {
            EventSeverity::Unknown => "unknown",
            EventSeverity::Negligible => "negligible",
            EventSeverity::Low => "low",
            EventSeverity::Medium => "medium",
            EventSeverity::High => "high",
            EventSeverity::Critical => "critical",
        }
    }

    /// The severity named `s`, if any.
    pub fn parse(s: &str) -> Option<EventSeverity> {
        EventSeverity::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// The severity of rank `r` ([`EventSeverity::rank`]).
    pub fn from_rank(r: u8) -> Option<EventSeverity> {
        EventSeverity::ALL.get(usize::from(r)).copied()
    }
}

/// An event the platform emits: its type and its `data`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", content = "data")]
pub enum WebhookEvent {
    /// `host.enrolled`.
    #[serde(rename = "host.enrolled")]
    HostEnrolled {
        /// The host.
        host_id: Uuid,
        /// Its hostname.
        hostname: String,
        /// Whether it waits for an operator's approval.
        pending_approval: bool,
    },
    /// `host.offline`.
    #[serde(rename = "host.offline")]
    HostOffline {
        /// The host.
        host_id: Uuid,
        /// Its hostname.
        hostname: String,
        /// Its last heartbeat.
        last_seen: DateTime<Utc>,
    },
    /// `host.revoked`.
    #[serde(rename = "host.revoked")]
    HostRevoked {
        /// The host.
        host_id: Uuid,
        /// Its hostname.
        hostname: String,
    },
    /// `command.succeeded`.
    #[serde(rename = "command.succeeded")]
    CommandSucceeded {
        /// The command.
        command_id: Uuid,
        /// Its host.
        host_id: Uuid,
        /// Its kind (`install_updates`, ...).
        kind: String,
    },
    /// `command.failed`.
    #[serde(rename = "command.failed")]
    CommandFailed {
        /// The command.
        command_id: Uuid,
        /// Its host.
        host_id: Uuid,
        /// Its kind.
        kind: String,
        /// Its final state (`failed`, `rejected`, `timed_out`).
        state: String,
        /// The error's text, when the agent gave one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// `deployment.ring_completed`.
    #[serde(rename = "deployment.ring_completed")]
    DeploymentRingCompleted {
        /// The deployment.
        deployment_id: String,
        /// The ring's index (0 first).
        ring: u32,
        /// The ring's name.
        ring_name: String,
    },
    /// `deployment.halted`.
    #[serde(rename = "deployment.halted")]
    DeploymentHalted {
        /// The deployment.
        deployment_id: String,
        /// The ring it halted in, when one was running.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ring: Option<u32>,
        /// Why, in words.
        reason: String,
    },
    /// `deployment.completed`.
    #[serde(rename = "deployment.completed")]
    DeploymentCompleted {
        /// The deployment.
        deployment_id: String,
    },
    /// `finding.new`.
    #[serde(rename = "finding.new")]
    FindingNew {
        /// The host.
        host_id: Uuid,
        /// The vulnerability (`CVE-2024-1234`).
        vulnerability: String,
        /// The package.
        package: String,
        /// Its severity (subscriptions filter on it).
        severity: EventSeverity,
    },
    /// `deadline.missed`.
    #[serde(rename = "deadline.missed")]
    DeadlineMissed {
        /// The host.
        host_id: Uuid,
        /// The vulnerability.
        vulnerability: String,
        /// The deadline that passed.
        deadline: DateTime<Utc>,
    },
}

impl WebhookEvent {
    /// The event's type.
    pub fn event_type(&self) -> EventType {
        match self {
            WebhookEvent::HostEnrolled { .. } => EventType::HostEnrolled,
            WebhookEvent::HostOffline { .. } => EventType::HostOffline,
            WebhookEvent::HostRevoked { .. } => EventType::HostRevoked,
            WebhookEvent::CommandSucceeded { .. } => EventType::CommandSucceeded,
            WebhookEvent::CommandFailed { .. } => EventType::CommandFailed,
            WebhookEvent::DeploymentRingCompleted { .. } => EventType::DeploymentRingCompleted,
            WebhookEvent::DeploymentHalted { .. } => EventType::DeploymentHalted,
            WebhookEvent::DeploymentCompleted { .. } => EventType::DeploymentCompleted,
            WebhookEvent::FindingNew { .. } => EventType::FindingNew,
            WebhookEvent::DeadlineMissed { .. } => EventType::DeadlineMissed,
        }
    }

    /// The severity a subscription's `min_severity` compares with (`finding.new` only).
    pub fn severity(&self) -> Option<EventSeverity> {
        match self {
            WebhookEvent::FindingNew { severity, .. } => Some(*severity),
            _ => None,
        }
    }

    /// The payload delivered: `{type, timestamp, data}`.
    pub fn payload(&self, timestamp: DateTime<Utc>) -> WebhookPayload {
        let v = serde_json::to_value(self).unwrap_or_default();
        WebhookPayload {
            event_type: self.event_type().as_str().to_owned(),
            timestamp,
            data: v.get("data").cloned().unwrap_or_default(),
        }
    }
}

/// The body of every delivery, as Standard Webhooks recommends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookPayload {
    /// The event type (`host.enrolled`; `webhook.test` for a test message).
    #[serde(rename = "type")]
    pub event_type: String,
    /// When the event happened.
    pub timestamp: DateTime<Utc>,
    /// The event's data.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub data: serde_json::Value,
}

/// A subscription as the API shows it (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Webhook {
    /// Id.
    pub id: Uuid,
    /// Name, unique in the organisation.
    pub name: String,
    /// Where the messages are POSTed (`https://`, or `http://` inside an allowed network).
    pub url: String,
    /// The event types sent; empty: every type.
    pub events: Vec<EventType>,
    /// `finding.new` only at or above this severity (none: every finding).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_severity: Option<EventSeverity>,
    /// Whether messages are sent.
    pub enabled: bool,
    /// Who created it.
    pub created_by: String,
    /// When.
    pub created_at: DateTime<Utc>,
    /// Until when the previous secret, after a rotation, still signs beside the new one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_secret_until: Option<DateTime<Utc>>,
}

/// `POST /api/v1/webhooks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    /// Name, unique in the organisation.
    pub name: String,
    /// Target URL.
    pub url: String,
    /// Event types; empty or absent: every type.
    #[serde(default)]
    pub events: Vec<EventType>,
    /// Minimum severity of `finding.new`.
    #[serde(default)]
    pub min_severity: Option<EventSeverity>,
    /// Enabled (default true).
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// `PUT /api/v1/webhooks/{webhook}`: what is given changes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateWebhook {
    /// New name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// New URL (checked like at creation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// New event filter (empty: every type).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<EventType>>,
    /// New minimum severity; `"min_severity": null` is not distinguished from absent,
    /// so use `clear_min_severity`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_severity: Option<EventSeverity>,
    /// Drop the minimum severity.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub clear_min_severity: bool,
    /// Enable or disable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// Answer to creating a subscription or rotating its secret: the secret, shown once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookWithSecret {
    /// The subscription.
    pub webhook: Webhook,
    /// `whsec_<base64>`: verify signatures with it; it is not shown again.
    pub secret: Secret,
}

/// `POST /api/v1/webhooks/{webhook}/rotate-secret`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RotateWebhookSecret {
    /// How long the previous secret keeps signing beside the new one (default 86400).
    #[serde(default)]
    pub grace_secs: Option<u64>,
}

/// The default grace period of a rotation: 24 hours.
pub const DEFAULT_ROTATION_GRACE_SECS: u64 = 24 * 3600;

/// A message's state in the outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum MessageState {
    /// Waiting for its next attempt.
    Pending,
    /// A receiver answered 2xx.
    Delivered,
    /// Given up after a day of retries.
    Failed,
}

impl MessageState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageState::Pending => "pending",
            MessageState::Delivered => "delivered",
            MessageState::Failed => "failed",
        }
    }

    /// The state named `s`.
    pub fn parse(s: &str) -> Option<MessageState> {
        [
            MessageState::Pending,
            MessageState::Delivered,
            MessageState::Failed,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

/// One message to one subscription, with its attempts (`GET .../deliveries`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookDelivery {
    /// The `webhook-id` header (the same on every attempt).
    pub message_id: String,
    /// The event type.
    pub event_type: String,
    /// When the event was queued.
    pub created_at: DateTime<Utc>,
    /// Its state.
    pub state: MessageState,
    /// Attempts so far.
    pub attempts: u32,
    /// The next attempt (pending only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Each attempt, oldest first.
    pub log: Vec<DeliveryAttempt>,
}

/// One attempt to deliver a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeliveryAttempt {
    /// When it started.
    pub at: DateTime<Utc>,
    /// The receiver's status code, when it answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Why it failed without an answer, or what a non-2xx answer said (cut short).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// How long it took, in milliseconds.
    pub duration_ms: u64,
}

/// Answer to `POST /api/v1/webhooks/{webhook}/test`: the queued message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookTestQueued {
    /// Its `webhook-id`.
    pub message_id: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_is_type_timestamp_data() {
        let e = WebhookEvent::FindingNew {
            host_id: Uuid::nil(),
            vulnerability: "CVE-2024-1".into(),
            package: "openssl".into(),
            severity: EventSeverity::High,
        };
        let p = e.payload(DateTime::from_timestamp(1_700_000_000, 0).unwrap());
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(v["type"], "finding.new");
        assert_eq!(v["timestamp"], "2023-11-14T22:13:20Z");
        assert_eq!(v["data"]["severity"], "high");
        assert_eq!(v["data"]["package"], "openssl");
        for t in EventType::ALL {
            let s = serde_json::to_string(&t).unwrap();
            assert_eq!(s, format!("\"{}\"", t.as_str()));
            assert_eq!(EventType::parse(t.as_str()), Some(t));
        }
        for s in EventSeverity::ALL {
            assert_eq!(EventSeverity::from_rank(s.rank()), Some(s));
            assert_eq!(EventSeverity::parse(s.as_str()), Some(s));
        }
    }
}
