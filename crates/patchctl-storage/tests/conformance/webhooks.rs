//! Conformance cases of `WebhookStore`: subscriptions (unique names, updates, deletion
//! with their messages), the fan-out of an event to the subscriptions whose filter and
//! minimum severity take it, lease exclusivity (also under concurrent leasing), the
//! bookkeeping of attempts and retries, secret rotation, the delivery log's pages, and
//! the once-per-spell `host.offline` sweep.

use std::collections::HashSet;
use std::sync::Arc;

use patchctl_proto::policy::webhooks::{EventSeverity, EventType, MessageState, WebhookEvent};
use patchctl_storage::{
    AttemptNext, AttemptRecord, HeartbeatWrite, NewWebhook, Storage, StorageError, WebhookChange,
};
use uuid::Uuid;

use super::{host, metrics, org, t};

/// The epoch of `t` in unix milliseconds.
const B: i64 = 1_700_000_000_000;

fn sub(org: Uuid, name: &str, events: &[EventType], min: Option<EventSeverity>) -> NewWebhook {
    NewWebhook {
        org_id: org,
        name: name.into(),
        url: format!("https://hooks.example/{name}"),
        events: events.to_vec(),
        min_severity: min,
        enabled: true,
        secret: format!("whsec_{name}"),
        created_by: "api token x".into(),
        created_at: t(1),
    }
}

fn finding(sev: EventSeverity) -> WebhookEvent {
    WebhookEvent::FindingNew {
        host_id: Uuid::nil(),
        vulnerability: "CVE-2024-1".into(),
        package: "openssl".into(),
        severity: sev,
    }
}

fn failed() -> WebhookEvent {
    WebhookEvent::CommandFailed {
        command_id: Uuid::nil(),
        host_id: Uuid::nil(),
        kind: "install_updates".into(),
        state: "failed".into(),
        error: None,
    }
}

fn enrolled() -> WebhookEvent {
    WebhookEvent::HostEnrolled {
        host_id: Uuid::nil(),
        hostname: "web-1".into(),
        pending_approval: false,
    }
}

fn attempt(at_ms: i64, status: Option<u16>) -> AttemptRecord {
    AttemptRecord {
        at_ms,
        status,
        error: status.is_none().then(|| "connection refused".to_owned()),
        duration_ms: 12,
    }
}

pub(super) async fn case_webhook_fan_out(store: Arc<dyn Storage>) {
    let a = org(&store, "a").await;
    let b = org(&store, "b").await;
    let all = store
        .create_webhook(&sub(a.id, "all", &[], None))
        .await
        .unwrap();
    let picky = store
        .create_webhook(&sub(
            a.id,
            "picky",
            &[EventType::CommandFailed, EventType::FindingNew],
            Some(EventSeverity::High),
        ))
        .await
        .unwrap();
    assert_eq!(
        picky.events,
        vec![EventType::CommandFailed, EventType::FindingNew]
    );
    assert_eq!(picky.min_severity, Some(EventSeverity::High));
    let off = store
        .create_webhook(&NewWebhook {
            enabled: false,
            ..sub(a.id, "off", &[], None)
        })
        .await
        .unwrap();
    store
        .create_webhook(&sub(b.id, "all", &[], None))
        .await
        .unwrap();
    // A name is unique in its organisation.
    assert!(matches!(
        store.create_webhook(&sub(a.id, "all", &[], None)).await,
        Err(StorageError::Conflict(_))
    ));
    assert_eq!(
        store
            .list_webhooks(a.id)
            .await
            .unwrap()
            .iter()
            .map(|w| w.name.as_str())
            .collect::<Vec<_>>(),
        ["all", "off", "picky"]
    );
    assert_eq!(
        store.find_webhook(a.id, "picky").await.unwrap().unwrap().id,
        picky.id
    );
    assert_eq!(
        store
            .find_webhook(a.id, &picky.id.to_string())
            .await
            .unwrap()
            .unwrap()
            .name,
        "picky"
    );
    assert!(store.find_webhook(b.id, "picky").await.unwrap().is_none());

    let now = 10_000;
    assert_eq!(
        store.enqueue_event(a.id, &enrolled(), now).await.unwrap(),
        1
    );
    assert_eq!(store.enqueue_event(a.id, &failed(), now).await.unwrap(), 2);
    assert_eq!(
        store
            .enqueue_event(a.id, &finding(EventSeverity::Medium), now)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .enqueue_event(a.id, &finding(EventSeverity::Critical), now)
            .await
            .unwrap(),
        2
    );
    // Updates: enable "off", drop picky's minimum.
    store
        .update_webhook(
            a.id,
            off.id,
            &WebhookChange {
                enabled: Some(true),
                events: Some(vec![EventType::HostEnrolled]),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .unwrap();
    let p = store
        .update_webhook(
            a.id,
            picky.id,
            &WebhookChange {
                min_severity: Some(None),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(p.min_severity, None);
    assert_eq!(p.name, "picky");
    assert_eq!(
        store
            .enqueue_event(a.id, &finding(EventSeverity::Low), now)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        store.enqueue_event(a.id, &enrolled(), now).await.unwrap(),
        2
    );
    // Renaming onto a taken name is a conflict.
    assert!(matches!(
        store
            .update_webhook(
                a.id,
                p.id,
                &WebhookChange {
                    name: Some("all".into()),
                    ..Default::default()
                },
            )
            .await,
        Err(StorageError::Conflict(_))
    ));
    // Every message of one event shares its message id; payload is {type, timestamp, data}.
    let leased = store
        .lease_webhook_messages("n1", now, 60_000, 100)
        .await
        .unwrap();
    assert_eq!(leased.len(), 1 + 2 + 1 + 2 + 2 + 2);
    let all_msgs: Vec<_> = leased
        .iter()
        .filter(|m| m.subscription_id == all.id)
        .collect();
    assert_eq!(all_msgs.len(), 6);
    let v: serde_json::Value = serde_json::from_str(&all_msgs[0].payload).unwrap();
    assert!(v.get("type").is_some() && v.get("timestamp").is_some() && v.get("data").is_some());
    let ids: HashSet<_> = leased.iter().map(|m| m.message_id.clone()).collect();
    assert_eq!(ids.len(), 6, "one message id per event");
    assert!(leased.iter().all(|m| m.org_id == a.id));
    // Deleting a subscription deletes its messages.
    assert!(store.delete_webhook(a.id, all.id).await.unwrap());
    assert!(!store.delete_webhook(a.id, all.id).await.unwrap());
    assert!(
        store
            .webhook_deliveries(a.id, all.id, None, 10)
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

pub(super) async fn case_webhook_lease_exclusive(store: Arc<dyn Storage>) {
    let a = org(&store, "a").await;
    store
        .create_webhook(&sub(a.id, "one", &[], None))
        .await
        .unwrap();
    store
        .create_webhook(&sub(a.id, "two", &[], None))
        .await
        .unwrap();
    for _ in 0..20 {
        store.enqueue_event(a.id, &enrolled(), 1_000).await.unwrap();
    }
    // Eight nodes lease at the same moment, round after round: every message goes to
    // exactly one (a node that lost a race for a row gets fewer, never a duplicate).
    let mut seen = HashSet::new();
    for round in 0..10 {
        let mut tasks = Vec::new();
        for n in 0..8 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                store
                    .lease_webhook_messages(&format!("node-{round}-{n}"), 2_000, 30_000, 10)
                    .await
                    .unwrap()
            }));
        }
        for task in tasks {
            for m in task.await.unwrap() {
                assert!(seen.insert(m.id.clone()), "{} leased twice", m.id);
            }
        }
        if seen.len() == 40 {
            break;
        }
    }
    assert_eq!(seen.len(), 40);
    // While leased, nobody else gets them; after the lease, another node may.
    assert!(
        store
            .lease_webhook_messages("late", 31_999, 30_000, 100)
            .await
            .unwrap()
            .is_empty()
    );
    let again = store
        .lease_webhook_messages("late", 32_000, 30_000, 100)
        .await
        .unwrap();
    assert_eq!(again.len(), 40);
    // The first holder lost its lease: its outcome is not recorded.
    let m = &again[0];
    assert!(
        !store
            .finish_webhook_attempt(
                &m.id,
                "node-0",
                &attempt(32_001, Some(200)),
                AttemptNext::Delivered
            )
            .await
            .unwrap()
    );
    assert!(
        store
            .finish_webhook_attempt(
                &m.id,
                "late",
                &attempt(32_001, Some(200)),
                AttemptNext::Delivered
            )
            .await
            .unwrap()
    );
    // Recorded once only.
    assert!(
        !store
            .finish_webhook_attempt(
                &m.id,
                "late",
                &attempt(32_002, Some(200)),
                AttemptNext::Delivered
            )
            .await
            .unwrap()
    );
}

pub(super) async fn case_webhook_backoff_bookkeeping(store: Arc<dyn Storage>) {
    let a = org(&store, "a").await;
    let w = store
        .create_webhook(&sub(a.id, "one", &[], None))
        .await
        .unwrap();
    store
        .enqueue_event(a.id, &enrolled(), B + 1_000)
        .await
        .unwrap();
    let m = store
        .lease_webhook_messages("n", B + 1_000, 10_000, 10)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(m.attempts, 0);
    assert_eq!(m.secrets, vec!["whsec_one".to_owned()]);
    assert!(
        store
            .finish_webhook_attempt(
                &m.id,
                "n",
                &attempt(B + 1_000, None),
                AttemptNext::RetryAt(B + 31_000)
            )
            .await
            .unwrap()
    );
    // Not due before its retry time, lease or no lease.
    assert!(
        store
            .lease_webhook_messages("n", B + 30_999, 10_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let m = store
        .lease_webhook_messages("n", B + 31_000, 10_000, 10)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(m.attempts, 1);
    store
        .finish_webhook_attempt(
            &m.id,
            "n",
            &attempt(B + 31_000, Some(503)),
            AttemptNext::RetryAt(B + 91_000),
        )
        .await
        .unwrap();
    let page = store
        .webhook_deliveries(a.id, w.id, None, 10)
        .await
        .unwrap();
    let d = &page.items[0];
    assert_eq!(d.state, MessageState::Pending);
    assert_eq!(d.attempts, 2);
    assert_eq!(d.next_attempt_at, Some(t(91)));
    assert_eq!(d.log.len(), 2);
    assert_eq!(d.log[0].status, None);
    assert_eq!(d.log[0].error.as_deref(), Some("connection refused"));
    assert_eq!(d.log[1].status, Some(503));
    assert_eq!(d.message_id, m.message_id);
    // Given up: failed, never leased again.
    let m = store
        .lease_webhook_messages("n", B + 91_000, 10_000, 10)
        .await
        .unwrap()
        .remove(0);
    store
        .finish_webhook_attempt(
            &m.id,
            "n",
            &attempt(B + 91_000, Some(500)),
            AttemptNext::Failed,
        )
        .await
        .unwrap();
    assert!(
        store
            .lease_webhook_messages("n", B + 10_000_000, 10_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let d = &store
        .webhook_deliveries(a.id, w.id, None, 10)
        .await
        .unwrap()
        .items[0];
    assert_eq!(
        (d.state, d.attempts, d.next_attempt_at),
        (MessageState::Failed, 3, None)
    );

    // A disabled subscription's messages wait.
    store
        .enqueue_event(a.id, &enrolled(), B + 2_000)
        .await
        .unwrap();
    store
        .update_webhook(
            a.id,
            w.id,
            &WebhookChange {
                enabled: Some(false),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(
        store
            .lease_webhook_messages("n", B + 3_000, 10_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    store
        .update_webhook(
            a.id,
            w.id,
            &WebhookChange {
                enabled: Some(true),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    // A test message goes whatever the filter; rotation signs with both secrets until
    // the grace period ends.
    store
        .update_webhook(
            a.id,
            w.id,
            &WebhookChange {
                events: Some(vec![EventType::DeadlineMissed]),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let id = store
        .enqueue_webhook_message(a.id, w.id, "webhook.test", "{}", B + 4_000)
        .await
        .unwrap()
        .unwrap();
    assert!(id.starts_with("msg_"));
    assert!(
        store
            .enqueue_webhook_message(a.id, Uuid::new_v4(), "webhook.test", "{}", B + 4_000)
            .await
            .unwrap()
            .is_none()
    );
    let rotated = store
        .rotate_webhook_secret(a.id, w.id, "whsec_new", t(100))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rotated.previous_secret_until, Some(t(100)));
    let leased = store
        .lease_webhook_messages("n", B + 5_000, 1_000, 10)
        .await
        .unwrap();
    assert_eq!(leased.len(), 2);
    assert!(
        leased
            .iter()
            .all(|m| m.secrets == ["whsec_new", "whsec_one"])
    );
    let leased = store
        .lease_webhook_messages("n", B + 100_000, 1_000, 10)
        .await
        .unwrap();
    assert!(leased.iter().all(|m| m.secrets == ["whsec_new"]));
    // Pages of the log, newest first.
    let p1 = store.webhook_deliveries(a.id, w.id, None, 2).await.unwrap();
    assert_eq!(p1.items.len(), 2);
    assert_eq!(p1.items[0].message_id, id);
    let p2 = store
        .webhook_deliveries(a.id, w.id, p1.next.clone(), 2)
        .await
        .unwrap();
    assert_eq!(p2.items.len(), 1);
    assert!(p2.next.is_none());
    assert_eq!(p2.items[0].state, MessageState::Failed);
}

pub(super) async fn case_webhook_offline_sweep(store: Arc<dyn Storage>) {
    let a = org(&store, "a").await;
    let w = store
        .create_webhook(&sub(a.id, "off", &[EventType::HostOffline], None))
        .await
        .unwrap();
    let (h, _) = host(&store, &a, "web-1").await;
    let beat = |at: i64| HeartbeatWrite {
        host_id: h.id,
        agent_version: "1.0.0".into(),
        agent_target: None,
        metrics: metrics(1),
        reboot: Default::default(),
        at: t(at),
    };
    store.record_heartbeats(&[beat(10)], 5).await.unwrap();
    assert_eq!(
        store
            .sweep_offline_hosts(B + 10_000, B + 20_000)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .sweep_offline_hosts(B + 10_001, B + 20_000)
            .await
            .unwrap(),
        1
    );
    // Once per offline spell.
    assert_eq!(
        store
            .sweep_offline_hosts(B + 50_000, B + 60_000)
            .await
            .unwrap(),
        0
    );
    store.record_heartbeats(&[beat(100)], 5).await.unwrap();
    assert_eq!(
        store
            .sweep_offline_hosts(B + 90_000, B + 100_000)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .sweep_offline_hosts(B + 200_000, B + 200_000)
            .await
            .unwrap(),
        1
    );
    let page = store
        .webhook_deliveries(a.id, w.id, None, 10)
        .await
        .unwrap();
    assert_eq!(page.items.len(), 2);
    assert!(page.items.iter().all(|d| d.event_type == "host.offline"));
    // A revoked host is not announced.
    store.record_heartbeats(&[beat(300)], 5).await.unwrap();
    store.revoke_host(a.id, h.id).await.unwrap();
    assert_eq!(
        store
            .sweep_offline_hosts(B + 400_000, B + 400_000)
            .await
            .unwrap(),
        0
    );
}
