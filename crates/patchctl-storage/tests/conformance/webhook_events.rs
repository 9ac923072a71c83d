//! Conformance cases of the events the platform emits from its sweeps: `deadline.missed`
//! announced once per finding (`finding_first_seen.deadline_missed_at`), also when two
//! nodes race.

use std::sync::Arc;

use patchctl_proto::policy::webhooks::{EventSeverity, EventType};
use patchctl_storage::{FirstSeen, MissedDeadline, NewWebhook, Storage};
use uuid::Uuid;

use super::{org, t};

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

pub(super) async fn case_missed_deadlines_once(store: Arc<dyn Storage>) {
    let a = org(&store, "missed-a").await;
    let b = org(&store, "missed-b").await;
    let w = store
        .create_webhook(&sub(a.id, "late", &[EventType::DeadlineMissed], None))
        .await
        .unwrap();
    let (h1, h2) = (Uuid::new_v4(), Uuid::new_v4());
    let seen = |org: Uuid, host: Uuid, vuln: &str| FirstSeen {
        org_id: org,
        host_id: host,
        vuln_id: vuln.into(),
        package: "openssl".into(),
        first_seen_at: t(1).timestamp_millis(),
    };
    store
        .record_first_seen(&[
            seen(a.id, h1, "CVE-1"),
            seen(a.id, h1, "CVE-2"),
            seen(a.id, h2, "CVE-1"),
            seen(b.id, h1, "CVE-1"),
        ])
        .await
        .unwrap();
    let missed = |host: Uuid, vuln: &str| MissedDeadline {
        host_id: host,
        vuln_id: vuln.into(),
        package: "openssl".into(),
        due_ms: t(2).timestamp_millis(),
    };
    let now = t(10).timestamp_millis();
    // a finding without a first-seen row is not announced
    assert_eq!(
        store
            .announce_missed_deadlines(a.id, &[missed(h1, "CVE-1"), missed(h1, "CVE-9")], now)
            .await
            .unwrap(),
        1
    );
    // again (and with a new one): only the new one
    let more = [
        missed(h1, "CVE-1"),
        missed(h1, "CVE-2"),
        missed(h1, "CVE-1"),
    ];
    assert_eq!(
        store
            .announce_missed_deadlines(a.id, &more, now)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .announce_missed_deadlines(a.id, &more, now)
            .await
            .unwrap(),
        0
    );
    // another organisation's row of the same key is its own
    assert_eq!(
        store
            .announce_missed_deadlines(b.id, &[missed(h1, "CVE-1")], now)
            .await
            .unwrap(),
        1
    );
    // two nodes racing for the same finding: announced once
    let (s1, s2) = (store.clone(), store.clone());
    let one = [missed(h2, "CVE-1")];
    let (r1, r2) = tokio::join!(
        s1.announce_missed_deadlines(a.id, &one, now),
        s2.announce_missed_deadlines(a.id, &one, now)
    );
    assert_eq!(r1.unwrap() + r2.unwrap(), 1);
    let page = store
        .webhook_deliveries(a.id, w.id, None, 100)
        .await
        .unwrap();
    assert_eq!(page.items.len(), 3);
    assert!(page.items.iter().all(|d| d.event_type == "deadline.missed"));
    assert_eq!(
        store
            .announce_missed_deadlines(a.id, &[], now)
            .await
            .unwrap(),
        0
    );
}
