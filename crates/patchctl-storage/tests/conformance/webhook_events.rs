//! Conformance cases of the events the platform emits from its sweeps: `deadline.missed`
//! announced once per finding (`finding_first_seen.deadline_missed_at`), and
//! `finding.new` queued with the first-seen rows it reports (only for the rows a call
//! stores, each subscription's minimum severity applied), both also when two nodes race.

use std::sync::Arc;

use patchctl_proto::policy::webhooks::{EventSeverity, EventType};
use patchctl_storage::{FirstSeen, MissedDeadline, NewFinding, NewWebhook, Storage};
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

pub(super) async fn case_new_findings_announced_once(store: Arc<dyn Storage>) {
    let a = org(&store, "new-a").await;
    let all = store
        .create_webhook(&sub(a.id, "all", &[], None))
        .await
        .unwrap();
    let high = store
        .create_webhook(&sub(
            a.id,
            "high",
            &[EventType::FindingNew],
            Some(EventSeverity::High),
        ))
        .await
        .unwrap();
    let h = Uuid::new_v4();
    let row = |vuln: &str, severity: EventSeverity| NewFinding {
        seen: FirstSeen {
            org_id: a.id,
            host_id: h,
            vuln_id: vuln.into(),
            package: "openssl".into(),
            first_seen_at: t(1).timestamp_millis(),
        },
        severity,
    };
    let now = t(5).timestamp_millis();
    // not announced: stored only
    assert_eq!(
        store
            .record_new_findings(&[row("CVE-0", EventSeverity::Critical)], false, now)
            .await
            .unwrap(),
        1
    );
    // announced: only the rows this call stores (CVE-0 was stored before)
    let rows = [
        row("CVE-0", EventSeverity::Critical),
        row("CVE-1", EventSeverity::Low),
        row("CVE-2", EventSeverity::Critical),
    ];
    assert_eq!(
        store.record_new_findings(&rows, true, now).await.unwrap(),
        2
    );
    assert_eq!(
        store.record_new_findings(&rows, true, now).await.unwrap(),
        0
    );
    let sent = |w: Uuid| {
        let store = store.clone();
        async move {
            let page = store.webhook_deliveries(a.id, w, None, 100).await.unwrap();
            page.items
                .into_iter()
                .map(|d| d.event_type)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(sent(all.id).await, ["finding.new", "finding.new"]);
    // the minimum severity holds
    assert_eq!(sent(high.id).await, ["finding.new"]);
    // the rows are the first-seen rows (times kept)
    let seen = store.host_first_seen(a.id, h).await.unwrap();
    assert_eq!(seen.len(), 3);
    // two nodes racing to store the same new finding: announced once; more rows than
    // one statement takes
    let many: Vec<NewFinding> = (0..2_500)
        .map(|i| row(&format!("CVE-9-{i}"), EventSeverity::High))
        .collect();
    let (s1, s2) = (store.clone(), store.clone());
    let (r1, r2) = tokio::join!(
        s1.record_new_findings(&many, true, now),
        s2.record_new_findings(&many, true, now)
    );
    assert_eq!(r1.unwrap() + r2.unwrap(), 2_500);
    let mut total = 0;
    let mut after = None;
    loop {
        let page = store
            .webhook_deliveries(a.id, high.id, after, 500)
            .await
            .unwrap();
        total += page.items.len();
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    assert_eq!(total, 2_501);
    // an organisation without a subscription to finding.new: stored, nothing queued
    let b = org(&store, "new-b").await;
    let quiet = store
        .create_webhook(&sub(b.id, "quiet", &[EventType::HostOffline], None))
        .await
        .unwrap();
    let mut r = row("CVE-3", EventSeverity::Critical);
    r.seen.org_id = b.id;
    assert_eq!(store.record_new_findings(&[r], true, now).await.unwrap(), 1);
    assert!(sent_b(&store, b.id, quiet.id).await.is_empty());
}

async fn sent_b(store: &Arc<dyn Storage>, org: Uuid, w: Uuid) -> Vec<String> {
    let page = store.webhook_deliveries(org, w, None, 100).await.unwrap();
    page.items.into_iter().map(|d| d.event_type).collect()
}
