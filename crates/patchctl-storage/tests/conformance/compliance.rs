//! Conformance cases of `ComplianceStore`: first-seen times written in bulk and never
//! moved, exceptions that expire on their own and end when revoked (per organisation),
//! and deadline policies.

use std::sync::Arc;

use patchctl_policy::deadline::DeadlinePolicy;
use patchctl_storage::{
    DeadlinePolicyRow, ExceptionScope, FirstSeen, NewException, RevokeOutcome, Storage,
};
use uuid::Uuid;

use super::{org, t};

fn ms(secs: i64) -> i64 {
    t(secs).timestamp_millis()
}

pub(super) async fn case_first_seen_bulk_and_idempotent(store: Arc<dyn Storage>) {
    let a = org(&store, "seen-a").await;
    let b = org(&store, "seen-b").await;
    let hosts: Vec<Uuid> = (0..50).map(|_| Uuid::new_v4()).collect();
    // 50 hosts x 100 findings: more than one multi-row statement
    let rows: Vec<FirstSeen> = hosts
        .iter()
        .flat_map(|h| {
            (0..100).map(move |i| FirstSeen {
                org_id: a.id,
                host_id: *h,
                vuln_id: format!("CVE-2024-{:05}", i),
                package: if i % 2 == 0 { "openssl" } else { "openssh" }.into(),
                first_seen_at: ms(10),
            })
        })
        .collect();
    assert_eq!(store.record_first_seen(&rows).await.unwrap(), 5_000);
    // seen again later, plus one new finding: only the new one is stored, the old
    // times stay
    let mut again: Vec<FirstSeen> = rows
        .iter()
        .map(|r| FirstSeen {
            first_seen_at: ms(99),
            ..r.clone()
        })
        .collect();
    again.push(FirstSeen {
        org_id: a.id,
        host_id: hosts[0],
        vuln_id: "CVE-2025-0001".into(),
        package: "bash".into(),
        first_seen_at: ms(99),
    });
    assert_eq!(store.record_first_seen(&again).await.unwrap(), 1);
    assert_eq!(store.record_first_seen(&[]).await.unwrap(), 0);
    let h0 = store.host_first_seen(a.id, hosts[0]).await.unwrap();
    assert_eq!(h0.len(), 101);
    assert_eq!(
        h0.iter().filter(|r| r.first_seen_at == ms(10)).count(),
        100,
        "stored times never move"
    );
    assert!(
        h0.iter()
            .any(|r| r.vuln_id == "CVE-2025-0001" && r.first_seen_at == ms(99))
    );
    // the same key in another organisation is another finding
    let other = FirstSeen {
        org_id: b.id,
        ..rows[0].clone()
    };
    assert_eq!(store.record_first_seen(&[other]).await.unwrap(), 1);
    assert!(
        store
            .host_first_seen(b.id, hosts[1])
            .await
            .unwrap()
            .is_empty()
    );
    let all = store.all_first_seen().await.unwrap();
    assert_eq!(all.len(), 5_002);
}

fn exception(org: Uuid, vuln: &str, scope: ExceptionScope, expires: i64) -> NewException {
    NewException {
        org_id: org,
        vuln_id: vuln.into(),
        scope,
        reason: "compensating control: the service is not exposed".into(),
        owner: "alice@example.com".into(),
        expires_at: ms(expires),
        created_by: "user alice".into(),
        created_at: ms(0),
    }
}

pub(super) async fn case_exceptions_expire_and_revoke(store: Arc<dyn Storage>) {
    let a = org(&store, "exc-a").await;
    let b = org(&store, "exc-b").await;
    let host = Uuid::new_v4();
    let group = Uuid::new_v4();
    let on_host = store
        .create_exception(&exception(
            a.id,
            "CVE-2024-6387",
            ExceptionScope::Host(host),
            100,
        ))
        .await
        .unwrap();
    let on_group = store
        .create_exception(&exception(
            a.id,
            "CVE-2024-3094",
            ExceptionScope::Group(group),
            200,
        ))
        .await
        .unwrap();
    let everywhere = store
        .create_exception(&exception(a.id, "DSA-5724-1", ExceptionScope::All, 300))
        .await
        .unwrap();
    // read back as created
    let read = store.exception(a.id, on_host.id).await.unwrap().unwrap();
    assert_eq!(read, on_host);
    assert_eq!(
        store
            .exception(a.id, on_group.id)
            .await
            .unwrap()
            .unwrap()
            .new
            .scope,
        ExceptionScope::Group(group)
    );
    assert_eq!(
        store
            .exception(a.id, everywhere.id)
            .await
            .unwrap()
            .unwrap()
            .new
            .scope,
        ExceptionScope::All
    );
    // another organisation sees none of them
    assert!(store.exception(b.id, on_host.id).await.unwrap().is_none());
    assert!(store.list_exceptions(b.id, None).await.unwrap().is_empty());
    // validity follows the time asked about: nothing runs to expire them
    let valid = |at: i64| {
        let store = Arc::clone(&store);
        async move {
            let mut ids: Vec<Uuid> = store
                .list_exceptions(a.id, Some(ms(at)))
                .await
                .unwrap()
                .iter()
                .map(|e| e.id)
                .collect();
            ids.sort();
            ids
        }
    };
    let mut all3 = vec![on_host.id, on_group.id, everywhere.id];
    all3.sort();
    assert_eq!(valid(50).await, all3);
    assert_eq!(valid(100).await.len(), 2, "expired at its expiry");
    assert_eq!(valid(250).await, vec![everywhere.id]);
    assert!(valid(300).await.is_empty());
    assert!(on_host.valid_at(ms(99)) && !on_host.valid_at(ms(100)));
    assert_eq!(store.list_exceptions(a.id, None).await.unwrap().len(), 3);
    // revocation ends one at once, once
    match store
        .revoke_exception(a.id, everywhere.id, "user bob", ms(20))
        .await
        .unwrap()
    {
        RevokeOutcome::Revoked(r) => {
            assert_eq!(r.revoked_at, Some(ms(20)));
            assert_eq!(r.revoked_by.as_deref(), Some("user bob"));
            assert!(!r.valid_at(ms(21)));
        }
        other => panic!("expected Revoked, got {other:?}"),
    }
    assert!(!valid(30).await.contains(&everywhere.id));
    assert!(matches!(
        store
            .revoke_exception(a.id, everywhere.id, "user carol", ms(40))
            .await
            .unwrap(),
        RevokeOutcome::AlreadyRevoked(r) if r.revoked_by.as_deref() == Some("user bob")
    ));
    assert_eq!(
        store
            .revoke_exception(b.id, on_host.id, "user mallory", ms(40))
            .await
            .unwrap(),
        RevokeOutcome::NotFound
    );
    assert!(
        store
            .exception(a.id, on_host.id)
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_none()
    );
}

pub(super) async fn case_deadline_policy(store: Arc<dyn Storage>) {
    let a = org(&store, "policy-a").await;
    let b = org(&store, "policy-b").await;
    assert!(store.deadline_policy(a.id).await.unwrap().is_none());
    let row = DeadlinePolicyRow {
        policy: DeadlinePolicy {
            critical_days: 3,
            high_days: 14,
            medium_days: 60,
            low_days: 365,
            kev_days: 7,
            due_soon_days: 2,
        },
        updated_by: "user alice".into(),
        updated_at: ms(5),
    };
    store.put_deadline_policy(a.id, &row).await.unwrap();
    assert_eq!(
        store.deadline_policy(a.id).await.unwrap(),
        Some(row.clone())
    );
    let changed = DeadlinePolicyRow {
        policy: DeadlinePolicy::default(),
        updated_by: "user bob".into(),
        updated_at: ms(6),
    };
    store.put_deadline_policy(a.id, &changed).await.unwrap();
    assert_eq!(store.deadline_policy(a.id).await.unwrap(), Some(changed));
    assert!(store.deadline_policy(b.id).await.unwrap().is_none());
}
