//! Webhooks ([`WebhookStore`]): an organisation's subscriptions, the durable outbox of
//! messages to deliver, and the log of every delivery attempt. The SQL is in
//! `sql/webhooks.rs`.
//!
//! [`WebhookStore::enqueue_event`] fans an event out, in one SQL statement, to every
//! enabled subscription of the organisation whose filter takes it: one outbox row per
//! subscription, all with the same message id (the `webhook-id` header). A platform
//! node takes due messages with [`WebhookStore::lease_webhook_messages`], a conditional
//! `UPDATE` that sets a lease: while it holds, no other node takes the message. The
//! outcome of each attempt ([`WebhookStore::finish_webhook_attempt`]) is recorded only
//! by the lease's holder. Retry timing is the caller's (the platform's worker);
//! storage keeps the bookkeeping. Times are unix milliseconds.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use patchctl_proto::policy::webhooks::{
    EventSeverity, EventType, Webhook, WebhookDelivery, WebhookEvent,
};
use uuid::Uuid;

use crate::error::Result;

/// A subscription to create.
#[derive(Clone)]
pub struct NewWebhook {
    /// Its organisation.
    pub org_id: Uuid,
    /// Name, unique in the organisation.
    pub name: String,
    /// Target URL (checked by the caller).
    pub url: String,
    /// Event types; empty: every type.
    pub events: Vec<EventType>,
    /// Minimum severity of `finding.new`.
    pub min_severity: Option<EventSeverity>,
    /// Whether it is enabled.
    pub enabled: bool,
    /// The signing secret (`whsec_...`).
    pub secret: String,
    /// Who creates it.
    pub created_by: String,
    /// When.
    pub created_at: DateTime<Utc>,
}

impl std::fmt::Debug for NewWebhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewWebhook")
            .field("org_id", &self.org_id)
            .field("name", &self.name)
            .field("url", &self.url)
            .field("events", &self.events)
            .field("min_severity", &self.min_severity)
            .field("enabled", &self.enabled)
            .field("secret", &"***")
            .finish()
    }
}

/// A change to a subscription: what is `Some` changes.
#[derive(Debug, Clone, Default)]
pub struct WebhookChange {
    /// New name.
    pub name: Option<String>,
    /// New URL.
    pub url: Option<String>,
    /// New filter.
    pub events: Option<Vec<EventType>>,
    /// New minimum severity (`Some(None)` clears it).
    pub min_severity: Option<Option<EventSeverity>>,
    /// Enable or disable.
    pub enabled: Option<bool>,
}

/// A message leased for delivery, with what signing and sending it needs.
#[derive(Clone)]
pub struct LeasedMessage {
    /// The outbox row.
    pub id: String,
    /// The `webhook-id`.
    pub message_id: String,
    /// The organisation.
    pub org_id: Uuid,
    /// The subscription.
    pub subscription_id: Uuid,
    /// Its URL.
    pub url: String,
    /// The event type.
    pub event_type: String,
    /// The body, exactly as sent.
    pub payload: String,
    /// Attempts before this one.
    pub attempts: u32,
    /// When the message was queued.
    pub created_at: DateTime<Utc>,
    /// The secrets that sign it: the current one, then the previous one while its grace
    /// period runs.
    pub secrets: Vec<String>,
}

impl std::fmt::Debug for LeasedMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeasedMessage")
            .field("id", &self.id)
            .field("url", &self.url)
            .field("event_type", &self.event_type)
            .field("attempts", &self.attempts)
            .field("secrets", &self.secrets.len())
            .finish()
    }
}

/// One attempt's outcome as logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    /// When it started (unix ms).
    pub at_ms: i64,
    /// The receiver's status code.
    pub status: Option<u16>,
    /// What went wrong (no secret in it).
    pub error: Option<String>,
    /// Duration in ms.
    pub duration_ms: u64,
}

/// What becomes of a message after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptNext {
    /// Delivered: done.
    Delivered,
    /// Try again at this time (unix ms).
    RetryAt(i64),
    /// Given up.
    Failed,
}

/// A page of a subscription's deliveries, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryPage {
    /// The messages.
    pub items: Vec<WebhookDelivery>,
    /// The cursor of the next page: `(created_at ms, outbox id)` of the last item.
    pub next: Option<(i64, String)>,
}

/// An overdue finding the policy tick found, to announce once as `deadline.missed`
/// (the key of `finding_first_seen`; times are Unix ms).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MissedDeadline {
    /// Host.
    pub host_id: Uuid,
    /// The finding's vulnerability (advisory or CVE) id.
    pub vuln_id: String,
    /// The package the finding names.
    pub package: String,
    /// The deadline that passed.
    pub due_ms: i64,
}

/// A finding the CVE engine saw for the first time, with the severity its `finding.new`
/// carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFinding {
    /// Its first-seen row.
    pub seen: crate::compliance::FirstSeen,
    /// Its severity.
    pub severity: EventSeverity,
}

/// Webhook subscriptions, outbox and delivery log.
#[async_trait]
pub trait WebhookStore: Send + Sync {
    /// Creates a subscription; a name taken in the organisation is a `Conflict`.
    async fn create_webhook(&self, w: &NewWebhook) -> Result<Webhook>;

    /// The organisation's subscriptions, by name.
    async fn list_webhooks(&self, org_id: Uuid) -> Result<Vec<Webhook>>;

    /// One subscription, by id or name.
    async fn find_webhook(&self, org_id: Uuid, id_or_name: &str) -> Result<Option<Webhook>>;

    /// Changes a subscription; `None` when there is none. A taken name is a `Conflict`.
    async fn update_webhook(
        &self,
        org_id: Uuid,
        id: Uuid,
        change: &WebhookChange,
    ) -> Result<Option<Webhook>>;

    /// Deletes a subscription with its outbox and log; false when there was none.
    async fn delete_webhook(&self, org_id: Uuid, id: Uuid) -> Result<bool>;

    /// Makes `secret` the signing secret; the current one keeps signing beside it until
    /// `previous_until`. `None` when there is no such subscription.
    async fn rotate_webhook_secret(
        &self,
        org_id: Uuid,
        id: Uuid,
        secret: &str,
        previous_until: DateTime<Utc>,
    ) -> Result<Option<Webhook>>;

    /// Queues `event` for every enabled subscription of the organisation whose filter
    /// takes it (one SQL statement); returns how many messages were queued.
    async fn enqueue_event(&self, org_id: Uuid, event: &WebhookEvent, now_ms: i64) -> Result<u64>;

    /// Queues a message of type `event_type` with body `payload` for one subscription
    /// whatever its filter (a test message); its message id, `None` when there is no
    /// such subscription.
    async fn enqueue_webhook_message(
        &self,
        org_id: Uuid,
        id: Uuid,
        event_type: &str,
        payload: &str,
        now_ms: i64,
    ) -> Result<Option<String>>;

    /// Leases up to `max` due messages (pending, due by `now_ms`, not leased, of an
    /// enabled subscription) to `owner` until `now_ms + lease_ms`.
    async fn lease_webhook_messages(
        &self,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
        max: u32,
    ) -> Result<Vec<LeasedMessage>>;

    /// Records an attempt of the leased message `id` and what becomes of it, and drops
    /// the lease; false (nothing recorded) when `owner` no longer holds it.
    async fn finish_webhook_attempt(
        &self,
        id: &str,
        owner: &str,
        attempt: &AttemptRecord,
        next: AttemptNext,
    ) -> Result<bool>;

    /// A subscription's messages with their attempts, newest first, `limit` a page,
    /// after the cursor `after`.
    async fn webhook_deliveries(
        &self,
        org_id: Uuid,
        id: Uuid,
        after: Option<(i64, String)>,
        limit: u32,
    ) -> Result<DeliveryPage>;

    /// Queues `host.offline` for every host (approved, not revoked) whose last
    /// heartbeat is before `offline_before_ms` and not yet announced, and marks it
    /// announced, in one transaction (a host is announced once per offline spell, by one
    /// node). Returns how many hosts went offline.
    async fn sweep_offline_hosts(&self, offline_before_ms: i64, now_ms: i64) -> Result<u64>;

    /// Marks the findings of `missed` (of organisation `org`) whose deadline was not
    /// announced yet (`finding_first_seen.deadline_missed_at` null) and queues one
    /// `deadline.missed` for each, in one transaction (a finding is announced once, by
    /// one node; a finding without a first-seen row is skipped). Returns how many were
    /// announced.
    async fn announce_missed_deadlines(
        &self,
        org: Uuid,
        missed: &[MissedDeadline],
        now_ms: i64,
    ) -> Result<u64>;

    /// Stores the first-seen times of `rows` not stored yet (as
    /// `ComplianceStore::record_first_seen`) and, with `announce`, queues one
    /// `finding.new` for each row this call stored, in one transaction: a finding that
    /// another node (or an earlier run) stored first is not announced again. Returns how
    /// many rows were new.
    async fn record_new_findings(
        &self,
        rows: &[NewFinding],
        announce: bool,
        now_ms: i64,
    ) -> Result<u64>;
}
