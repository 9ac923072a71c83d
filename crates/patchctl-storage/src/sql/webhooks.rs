//! The SQL of [`WebhookStore`]: `webhook_subscriptions`, the outbox `webhook_outbox` and
//! the attempt log `webhook_attempts` (migration 0011), and `hosts.offline_event_seen`, and
//! `finding_first_seen.deadline_missed_at` (migration 0016), and the `finding_first_seen`
//! rows the CVE engine stores with their `finding.new` events.
//!
//! The fan-out is one `INSERT ... SELECT` over the organisation's subscriptions: the
//! filter is `events = ''` (every type) or `events LIKE '%,type,%'`, the severity
//! `min_severity IS NULL OR min_severity <= rank`. A lease is a conditional `UPDATE`
//! whose `WHERE` repeats the due-and-free test, so that when two nodes race for a row
//! (PostgreSQL re-checks the condition after the first one's commit) only one gets it.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use patchctl_proto::policy::webhooks::{
    DeliveryAttempt, EventSeverity, EventType, MessageState, Webhook, WebhookDelivery, WebhookEvent,
};
use uuid::Uuid;

use super::{
    ID_CHUNK, PostgresStore, SqliteStore, conflict, corrupt, count, ms, opt_time, time, uuid,
};
use crate::error::{Result, StorageError};
use crate::webhooks::{
    AttemptNext, AttemptRecord, DeliveryPage, LeasedMessage, MissedDeadline, NewFinding,
    NewWebhook, WebhookChange, WebhookStore,
};

/// The columns of `webhook_subscriptions` that make a [`Webhook`] (see [`WebhookDb`]).
macro_rules! webhook_columns {
    () => {
        "id, name, url, events, min_severity, enabled, created_by, created_at, \
         previous_secret_until"
    };
}

/// First-seen rows per multi-row statement (5 bound values each; SQLite allows 32,766).
const SEEN_CHUNK: usize = 2_000;

/// A severity rank above every real one: events other than `finding.new` pass any
/// minimum.
const NO_SEVERITY: i64 = 1_000;

/// A row of `webhook_subscriptions` without its secrets.
#[derive(sqlx::FromRow)]
struct WebhookDb {
    id: String,
    name: String,
    url: String,
    events: String,
    min_severity: Option<i64>,
    enabled: bool,
    created_by: String,
    created_at: i64,
    previous_secret_until: Option<i64>,
}

impl WebhookDb {
    fn decode(self) -> Result<Webhook> {
        let events = self
            .events
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|s| {
                EventType::parse(s).ok_or_else(|| {
                    corrupt(
                        "webhook_subscriptions.events",
                        format!("unknown type {s:?}"),
                    )
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let min_severity = self
            .min_severity
            .map(|r| {
                u8::try_from(r)
                    .ok()
                    .and_then(EventSeverity::from_rank)
                    .ok_or_else(|| corrupt("webhook_subscriptions.min_severity", r))
            })
            .transpose()?;
        Ok(Webhook {
            id: uuid(&self.id, "webhook_subscriptions.id")?,
            name: self.name,
            url: self.url,
            events,
            min_severity,
            enabled: self.enabled,
            created_by: self.created_by,
            created_at: time(self.created_at, "webhook_subscriptions.created_at")?,
            previous_secret_until: opt_time(
                self.previous_secret_until,
                "webhook_subscriptions.previous_secret_until",
            )?,
        })
    }
}

/// A filter as stored: `''` for every type, else `,a,b,`.
fn events_column(events: &[EventType]) -> String {
    if events.is_empty() {
        return String::new();
    }
    let mut sorted = events.to_vec();
    sorted.sort();
    sorted.dedup();
    let mut s = String::from(",");
    for e in sorted {
        s.push_str(e.as_str());
        s.push(',');
    }
    s
}

/// A leased row joined with its subscription.
#[derive(sqlx::FromRow)]
struct LeasedDb {
    id: String,
    message_id: String,
    org_id: String,
    subscription_id: String,
    event_type: String,
    payload: String,
    attempts: i64,
    created_at: i64,
    url: String,
    secret: String,
    previous_secret: Option<String>,
    previous_secret_until: Option<i64>,
}

impl LeasedDb {
    fn decode(self, now_ms: i64) -> Result<LeasedMessage> {
        let mut secrets = vec![self.secret];
        if let (Some(p), Some(until)) = (self.previous_secret, self.previous_secret_until) {
            if until > now_ms {
                secrets.push(p);
            }
        }
        Ok(LeasedMessage {
            id: self.id,
            message_id: self.message_id,
            org_id: uuid(&self.org_id, "webhook_outbox.org_id")?,
            subscription_id: uuid(&self.subscription_id, "webhook_outbox.subscription_id")?,
            url: self.url,
            event_type: self.event_type,
            payload: self.payload,
            attempts: count(self.attempts, "webhook_outbox.attempts")?,
            created_at: time(self.created_at, "webhook_outbox.created_at")?,
            secrets,
        })
    }
}

/// A row of `webhook_outbox` as the delivery log shows it.
#[derive(sqlx::FromRow)]
struct OutboxDb {
    id: String,
    message_id: String,
    event_type: String,
    created_at: i64,
    state: String,
    attempts: i64,
    next_attempt_at: i64,
}

/// A row of `webhook_attempts`.
#[derive(sqlx::FromRow)]
struct AttemptDb {
    outbox_id: String,
    at: i64,
    status: Option<i64>,
    error: Option<String>,
    duration_ms: i64,
}

impl AttemptDb {
    fn decode(self) -> Result<DeliveryAttempt> {
        Ok(DeliveryAttempt {
            at: time(self.at, "webhook_attempts.at")?,
            status: self
                .status
                .map(|s| count(s, "webhook_attempts.status"))
                .transpose()?,
            error: self.error,
            duration_ms: count(self.duration_ms, "webhook_attempts.duration_ms")?,
        })
    }
}

/// A host that went offline, as the sweep finds it.
#[derive(sqlx::FromRow)]
struct OfflineDb {
    id: String,
    org_id: String,
    hostname: String,
    last_seen: i64,
}

/// A new message id: `msg_` and a UUID's 32 hex digits.
fn message_id() -> String {
    format!("msg_{}", Uuid::new_v4().simple())
}

/// The stored payload of `event` at `now_ms`.
fn payload_of(event: &WebhookEvent, now_ms: i64) -> Result<String> {
    let at = DateTime::<Utc>::from_timestamp_millis(now_ms)
        .ok_or_else(|| StorageError::Invalid(format!("time {now_ms} out of range")))?;
    serde_json::to_string(&event.payload(at))
        .map_err(|e| StorageError::Invalid(format!("cannot encode the event: {e}")))
}

/// Implements [`WebhookStore`] for `$store` (a struct with `writer` and `reader` pools
/// of database `$db`).
macro_rules! impl_webhooks {
    ($store:ident, $db:ty) => {
        impl $store {
            /// The fan-out of `event` inside `tx`.
            async fn fan_out(
                tx: &mut sqlx::Transaction<'_, $db>,
                org_id: Uuid,
                event: &WebhookEvent,
                now_ms: i64,
            ) -> Result<u64> {
                let payload = payload_of(event, now_ms)?;
                let kind = event.event_type().as_str();
                let rank = event.severity().map_or(NO_SEVERITY, |s| i64::from(s.rank()));
                let done = sqlx::query(
                    "INSERT INTO webhook_outbox (id, message_id, org_id, subscription_id, \
                     event_type, payload, created_at, attempts, next_attempt_at, state) \
                     SELECT $1 || ':' || s.id, $1, s.org_id, s.id, $2, $3, $4, 0, $4, 'pending' \
                     FROM webhook_subscriptions s \
                     WHERE s.org_id = $5 AND s.enabled = $6 \
                     AND (s.events = '' OR s.events LIKE $7) \
                     AND (s.min_severity IS NULL OR s.min_severity <= $8)",
                )
                .bind(message_id())
                .bind(kind)
                .bind(&payload)
                .bind(now_ms)
                .bind(org_id.to_string())
                .bind(true)
                .bind(format!("%,{kind},%"))
                .bind(rank)
                .execute(&mut **tx)
                .await?;
                Ok(done.rows_affected())
            }
        }

        #[async_trait]
        impl WebhookStore for $store {
            async fn create_webhook(&self, w: &NewWebhook) -> Result<Webhook> {
                let id = Uuid::new_v4();
                let row: WebhookDb = sqlx::query_as(concat!(
                    "INSERT INTO webhook_subscriptions (id, org_id, name, url, events, \
                     min_severity, enabled, secret, created_by, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING ",
                    webhook_columns!()
                ))
                .bind(id.to_string())
                .bind(w.org_id.to_string())
                .bind(&w.name)
                .bind(&w.url)
                .bind(events_column(&w.events))
                .bind(w.min_severity.map(|s| i64::from(s.rank())))
                .bind(w.enabled)
                .bind(&w.secret)
                .bind(&w.created_by)
                .bind(ms(w.created_at))
                .fetch_one(&self.writer)
                .await
                .map_err(|e| conflict(e, || format!("webhook {:?}", w.name)))?;
                row.decode()
            }

            async fn list_webhooks(&self, org_id: Uuid) -> Result<Vec<Webhook>> {
                let rows: Vec<WebhookDb> = sqlx::query_as(concat!(
                    "SELECT ",
                    webhook_columns!(),
                    " FROM webhook_subscriptions WHERE org_id = $1 ORDER BY name"
                ))
                .bind(org_id.to_string())
                .fetch_all(&self.reader)
                .await?;
                rows.into_iter().map(WebhookDb::decode).collect()
            }

            async fn find_webhook(
                &self,
                org_id: Uuid,
                id_or_name: &str,
            ) -> Result<Option<Webhook>> {
                let row: Option<WebhookDb> = sqlx::query_as(concat!(
                    "SELECT ",
                    webhook_columns!(),
                    " FROM webhook_subscriptions WHERE org_id = $1 AND (id = $2 OR name = $2)"
                ))
                .bind(org_id.to_string())
                .bind(id_or_name)
                .fetch_optional(&self.reader)
                .await?;
                row.map(WebhookDb::decode).transpose()
            }

            async fn update_webhook(
                &self,
                org_id: Uuid,
                id: Uuid,
                c: &WebhookChange,
            ) -> Result<Option<Webhook>> {
                let row: Option<WebhookDb> = sqlx::query_as(concat!(
                    "UPDATE webhook_subscriptions SET \
                     name = COALESCE($3, name), url = COALESCE($4, url), \
                     events = COALESCE($5, events), \
                     min_severity = CASE WHEN $6 THEN $7 ELSE min_severity END, \
                     enabled = COALESCE($8, enabled) \
                     WHERE org_id = $1 AND id = $2 RETURNING ",
                    webhook_columns!()
                ))
                .bind(org_id.to_string())
                .bind(id.to_string())
                .bind(c.name.as_deref())
                .bind(c.url.as_deref())
                .bind(c.events.as_deref().map(events_column))
                .bind(c.min_severity.is_some())
                .bind(c.min_severity.flatten().map(|s| i64::from(s.rank())))
                .bind(c.enabled)
                .fetch_optional(&self.writer)
                .await
                .map_err(|e| conflict(e, || "a webhook of that name".to_owned()))?;
                row.map(WebhookDb::decode).transpose()
            }

            async fn delete_webhook(&self, org_id: Uuid, id: Uuid) -> Result<bool> {
                let done =
                    sqlx::query("DELETE FROM webhook_subscriptions WHERE org_id = $1 AND id = $2")
                        .bind(org_id.to_string())
                        .bind(id.to_string())
                        .execute(&self.writer)
                        .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn rotate_webhook_secret(
                &self,
                org_id: Uuid,
                id: Uuid,
                secret: &str,
                previous_until: DateTime<Utc>,
            ) -> Result<Option<Webhook>> {
                let row: Option<WebhookDb> = sqlx::query_as(concat!(
                    "UPDATE webhook_subscriptions SET previous_secret = secret, \
                     previous_secret_until = $4, secret = $3 \
                     WHERE org_id = $1 AND id = $2 RETURNING ",
                    webhook_columns!()
                ))
                .bind(org_id.to_string())
                .bind(id.to_string())
                .bind(secret)
                .bind(ms(previous_until))
                .fetch_optional(&self.writer)
                .await?;
                row.map(WebhookDb::decode).transpose()
            }

            async fn enqueue_event(
                &self,
                org_id: Uuid,
                event: &WebhookEvent,
                now_ms: i64,
            ) -> Result<u64> {
                let mut tx = self.writer.begin().await?;
                let n = Self::fan_out(&mut tx, org_id, event, now_ms).await?;
                tx.commit().await?;
                Ok(n)
            }

            async fn enqueue_webhook_message(
                &self,
                org_id: Uuid,
                id: Uuid,
                event_type: &str,
                payload: &str,
                now_ms: i64,
            ) -> Result<Option<String>> {
                let msg = message_id();
                let done = sqlx::query(
                    "INSERT INTO webhook_outbox (id, message_id, org_id, subscription_id, \
                     event_type, payload, created_at, attempts, next_attempt_at, state) \
                     SELECT $1 || ':' || s.id, $1, s.org_id, s.id, $2, $3, $4, 0, $4, 'pending' \
                     FROM webhook_subscriptions s WHERE s.org_id = $5 AND s.id = $6",
                )
                .bind(&msg)
                .bind(event_type)
                .bind(payload)
                .bind(now_ms)
                .bind(org_id.to_string())
                .bind(id.to_string())
                .execute(&self.writer)
                .await?;
                Ok((done.rows_affected() > 0).then_some(msg))
            }

            async fn lease_webhook_messages(
                &self,
                owner: &str,
                now_ms: i64,
                lease_ms: i64,
                max: u32,
            ) -> Result<Vec<LeasedMessage>> {
                let ids: Vec<(String,)> = sqlx::query_as(
                    "UPDATE webhook_outbox SET lease_owner = $1, lease_until = $2 \
                     WHERE id IN (SELECT o.id FROM webhook_outbox o \
                       JOIN webhook_subscriptions s ON s.id = o.subscription_id \
                       WHERE o.state = 'pending' AND o.next_attempt_at <= $3 \
                       AND (o.lease_until IS NULL OR o.lease_until <= $3) AND s.enabled = $5 \
                       ORDER BY o.next_attempt_at, o.id LIMIT $4) \
                     AND state = 'pending' AND next_attempt_at <= $3 \
                     AND (lease_until IS NULL OR lease_until <= $3) \
                     RETURNING id",
                )
                .bind(owner)
                .bind(now_ms.saturating_add(lease_ms))
                .bind(now_ms)
                .bind(i64::from(max))
                .bind(true)
                .fetch_all(&self.writer)
                .await?;
                let mut out = Vec::with_capacity(ids.len());
                for chunk in ids.chunks(ID_CHUNK) {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(
                        "SELECT o.id, o.message_id, o.org_id, o.subscription_id, o.event_type, \
                         o.payload, o.attempts, o.created_at, s.url, s.secret, \
                         s.previous_secret, s.previous_secret_until \
                         FROM webhook_outbox o \
                         JOIN webhook_subscriptions s ON s.id = o.subscription_id \
                         WHERE o.lease_owner = ",
                    );
                    qb.push_bind(owner);
                    qb.push(" AND o.id IN (");
                    let mut list = qb.separated(", ");
                    for (id,) in chunk {
                        list.push_bind(id.as_str());
                    }
                    qb.push(") ORDER BY o.next_attempt_at, o.id");
                    let rows: Vec<LeasedDb> =
                        qb.build_query_as().fetch_all(&self.writer).await?;
                    for r in rows {
                        out.push(r.decode(now_ms)?);
                    }
                }
                Ok(out)
            }

            async fn finish_webhook_attempt(
                &self,
                id: &str,
                owner: &str,
                a: &AttemptRecord,
                next: AttemptNext,
            ) -> Result<bool> {
                let (state, next_at) = match next {
                    AttemptNext::Delivered => (MessageState::Delivered, a.at_ms),
                    AttemptNext::RetryAt(t) => (MessageState::Pending, t),
                    AttemptNext::Failed => (MessageState::Failed, a.at_ms),
                };
                let mut tx = self.writer.begin().await?;
                let row: Option<(i64,)> = sqlx::query_as(
                    "UPDATE webhook_outbox SET attempts = attempts + 1, state = $3, \
                     next_attempt_at = $4, lease_owner = NULL, lease_until = NULL \
                     WHERE id = $1 AND lease_owner = $2 AND state = 'pending' \
                     RETURNING attempts",
                )
                .bind(id)
                .bind(owner)
                .bind(state.as_str())
                .bind(next_at)
                .fetch_optional(&mut *tx)
                .await?;
                let Some((attempt,)) = row else {
                    return Ok(false);
                };
                sqlx::query(
                    "INSERT INTO webhook_attempts (outbox_id, attempt, at, status, error, \
                     duration_ms) VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(id)
                .bind(attempt)
                .bind(a.at_ms)
                .bind(a.status.map(i64::from))
                .bind(a.error.as_deref())
                .bind(i64::try_from(a.duration_ms).unwrap_or(i64::MAX))
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn webhook_deliveries(
                &self,
                org_id: Uuid,
                id: Uuid,
                after: Option<(i64, String)>,
                limit: u32,
            ) -> Result<DeliveryPage> {
                let (after_at, after_id) = after.unwrap_or((i64::MAX, String::new()));
                let unbounded = after_id.is_empty();
                let rows: Vec<OutboxDb> = sqlx::query_as(
                    "SELECT id, message_id, event_type, created_at, state, attempts, \
                     next_attempt_at FROM webhook_outbox \
                     WHERE org_id = $1 AND subscription_id = $2 \
                     AND ($3 OR created_at < $4 OR (created_at = $4 AND id < $5)) \
                     ORDER BY created_at DESC, id DESC LIMIT $6",
                )
                .bind(org_id.to_string())
                .bind(id.to_string())
                .bind(unbounded)
                .bind(after_at)
                .bind(&after_id)
                .bind(i64::from(limit) + 1)
                .fetch_all(&self.reader)
                .await?;
                let more = rows.len() > limit as usize;
                let rows: Vec<OutboxDb> = rows.into_iter().take(limit as usize).collect();
                let mut logs: std::collections::HashMap<String, Vec<DeliveryAttempt>> =
                    std::collections::HashMap::new();
                let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
                for chunk in ids.chunks(ID_CHUNK) {
                    if chunk.is_empty() {
                        continue;
                    }
                    let mut qb = sqlx::QueryBuilder::<$db>::new(
                        "SELECT outbox_id, at, status, error, duration_ms FROM webhook_attempts \
                         WHERE outbox_id IN (",
                    );
                    let mut list = qb.separated(", ");
                    for id in chunk {
                        list.push_bind(*id);
                    }
                    qb.push(") ORDER BY outbox_id, attempt");
                    let found: Vec<AttemptDb> =
                        qb.build_query_as().fetch_all(&self.reader).await?;
                    for a in found {
                        let key = a.outbox_id.clone();
                        logs.entry(key).or_default().push(a.decode()?);
                    }
                }
                let next = if more {
                    rows.last().map(|r| (r.created_at, r.id.clone()))
                } else {
                    None
                };
                let mut items = Vec::with_capacity(rows.len());
                for r in rows {
                    let state = MessageState::parse(&r.state).ok_or_else(|| {
                        corrupt("webhook_outbox.state", format!("unknown state {:?}", r.state))
                    })?;
                    items.push(WebhookDelivery {
                        log: logs.remove(&r.id).unwrap_or_default(),
                        message_id: r.message_id,
                        event_type: r.event_type,
                        created_at: time(r.created_at, "webhook_outbox.created_at")?,
                        state,
                        attempts: count(r.attempts, "webhook_outbox.attempts")?,
                        next_attempt_at: if state == MessageState::Pending {
                            Some(time(r.next_attempt_at, "webhook_outbox.next_attempt_at")?)
                        } else {
                            None
                        },
                    });
                }
                Ok(DeliveryPage { items, next })
            }

            async fn sweep_offline_hosts(
                &self,
                offline_before_ms: i64,
                now_ms: i64,
            ) -> Result<u64> {
                let mut tx = self.writer.begin().await?;
                let hosts: Vec<OfflineDb> = sqlx::query_as(
                    "UPDATE hosts SET offline_event_seen = last_seen \
                     WHERE last_seen IS NOT NULL AND last_seen < $1 AND NOT revoked \
                     AND approval = 'approved' \
                     AND (offline_event_seen IS NULL OR offline_event_seen <> last_seen) \
                     RETURNING id, org_id, hostname, last_seen",
                )
                .bind(offline_before_ms)
                .fetch_all(&mut *tx)
                .await?;
                for h in &hosts {
                    let event = WebhookEvent::HostOffline {
                        host_id: uuid(&h.id, "hosts.id")?,
                        hostname: h.hostname.clone(),
                        last_seen: time(h.last_seen, "hosts.last_seen")?,
                    };
                    let org = uuid(&h.org_id, "hosts.org_id")?;
                    Self::fan_out(&mut tx, org, &event, now_ms).await?;
                }
                tx.commit().await?;
                Ok(hosts.len() as u64)
            }

            async fn record_new_findings(
                &self,
                rows: &[NewFinding],
                announce: bool,
                now_ms: i64,
            ) -> Result<u64> {
                if rows.is_empty() {
                    return Ok(0);
                }
                let mut tx = self.writer.begin().await?;
                let mut added = 0;
                // whether an organisation has a subscription that takes finding.new
                let mut wanted: HashMap<Uuid, bool> = HashMap::new();
                for chunk in rows.chunks(SEEN_CHUNK) {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO finding_first_seen \
                         (org_id, host_id, vuln_id, package, first_seen_at) ",
                    );
                    qb.push_values(chunk, |mut b, r| {
                        b.push_bind(r.seen.org_id.to_string())
                            .push_bind(r.seen.host_id.to_string())
                            .push_bind(r.seen.vuln_id.as_str())
                            .push_bind(r.seen.package.as_str())
                            .push_bind(r.seen.first_seen_at);
                    });
                    // only the rows this statement stored come back
                    qb.push(
                        " ON CONFLICT (org_id, host_id, vuln_id, package) DO NOTHING \
                         RETURNING org_id, host_id, vuln_id, package",
                    );
                    let stored: Vec<(String, String, String, String)> =
                        qb.build_query_as().fetch_all(&mut *tx).await?;
                    added += stored.len() as u64;
                    if !announce || stored.is_empty() {
                        continue;
                    }
                    let stored: HashSet<(String, String, String, String)> =
                        stored.into_iter().collect();
                    for r in chunk {
                        let key = (
                            r.seen.org_id.to_string(),
                            r.seen.host_id.to_string(),
                            r.seen.vuln_id.clone(),
                            r.seen.package.clone(),
                        );
                        if !stored.contains(&key) {
                            continue;
                        }
                        let org = r.seen.org_id;
                        if !wanted.contains_key(&org) {
                            let (n,): (i64,) = sqlx::query_as(
                                "SELECT COUNT(*) FROM webhook_subscriptions \
                                 WHERE org_id = $1 AND enabled = $2 \
                                 AND (events = '' OR events LIKE $3)",
                            )
                            .bind(org.to_string())
                            .bind(true)
                            .bind(format!("%,{},%", EventType::FindingNew.as_str()))
                            .fetch_one(&mut *tx)
                            .await?;
                            wanted.insert(org, n > 0);
                        }
                        if !wanted[&org] {
                            continue;
                        }
                        let event = WebhookEvent::FindingNew {
                            host_id: r.seen.host_id,
                            vulnerability: r.seen.vuln_id.clone(),
                            package: r.seen.package.clone(),
                            severity: r.severity,
                        };
                        Self::fan_out(&mut tx, org, &event, now_ms).await?;
                    }
                }
                tx.commit().await?;
                Ok(added)
            }

            async fn announce_missed_deadlines(
                &self,
                org: Uuid,
                missed: &[MissedDeadline],
                now_ms: i64,
            ) -> Result<u64> {
                if missed.is_empty() {
                    return Ok(0);
                }
                let mut tx = self.writer.begin().await?;
                // those announced before are skipped without a statement each
                let marked: Vec<(String, String, String)> = sqlx::query_as(
                    "SELECT host_id, vuln_id, package FROM finding_first_seen \
                     WHERE org_id = $1 AND deadline_missed_at IS NOT NULL",
                )
                .bind(org.to_string())
                .fetch_all(&mut *tx)
                .await?;
                let marked: HashSet<(String, String, String)> = marked.into_iter().collect();
                let mut n = 0;
                for m in missed {
                    let key = (m.host_id.to_string(), m.vuln_id.clone(), m.package.clone());
                    if marked.contains(&key) {
                        continue;
                    }
                    // conditional: of two nodes racing, only one marks (and announces)
                    let done = sqlx::query(
                        "UPDATE finding_first_seen SET deadline_missed_at = $1 \
                         WHERE org_id = $2 AND host_id = $3 AND vuln_id = $4 AND package = $5 \
                         AND deadline_missed_at IS NULL",
                    )
                    .bind(now_ms)
                    .bind(org.to_string())
                    .bind(&key.0)
                    .bind(&key.1)
                    .bind(&key.2)
                    .execute(&mut *tx)
                    .await?;
                    if done.rows_affected() == 0 {
                        continue;
                    }
                    let event = WebhookEvent::DeadlineMissed {
                        host_id: m.host_id,
                        vulnerability: m.vuln_id.clone(),
                        deadline: time(m.due_ms, "deadline")?,
                    };
                    Self::fan_out(&mut tx, org, &event, now_ms).await?;
                    n += 1;
                }
                tx.commit().await?;
                Ok(n)
            }
        }
    };
}

impl_webhooks!(SqliteStore, sqlx::Sqlite);
impl_webhooks!(PostgresStore, sqlx::Postgres);
