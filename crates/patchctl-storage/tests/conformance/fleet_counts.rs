//! Conformance cases of the aggregate counts `/metrics` reads at scrape time: hosts
//! per organisation and status (the host listing's rule: revoked, pending, online,
//! offline), hosts per agent version (revoked ones left out), commands per state.

use std::sync::Arc;

use patchctl_proto::api::{CommandState, HostStatus};
use patchctl_proto::command::ResultStatus;
use patchctl_proto::trust::OrgSettings;
use patchctl_storage::{Enrollment, Storage};

use super::{enrollment, host, limited_key, metrics, new_command, org, result, t};

/// The counts of `org` as `(label, count)` pairs, sorted.
fn of<T>(rows: &[T], org: &str, name: impl Fn(&T) -> (&str, String, u64)) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = rows
        .iter()
        .map(&name)
        .filter(|(o, _, _)| *o == org)
        .map(|(_, l, n)| (l, n))
        .collect();
    v.sort();
    v
}

pub async fn case_fleet_counts(store: Arc<dyn Storage>) {
    let a = org(&store, "counts-a").await;
    let b = org(&store, "counts-b").await;
    // a: web1 seen at t(100) (online since t(50)), web2 seen at t(10) (offline), web3
    // revoked, p1 pending; b: one host never seen.
    let (w1, _) = host(&store, &a, "web1").await;
    let (w2, _) = host(&store, &a, "web2").await;
    let (w3, _) = host(&store, &a, "web3").await;
    let (bh, _) = host(&store, &b, "b1").await;
    store
        .record_heartbeat(w1.id, "2.0.0 \"beta\"\n", &metrics(1), t(100), 5)
        .await
        .unwrap();
    store
        .record_heartbeat(w2.id, "1.0.0", &metrics(1), t(10), 5)
        .await
        .unwrap();
    assert!(store.revoke_host(a.id, w3.id).await.unwrap());
    store
        .set_org_settings(
            a.id,
            &OrgSettings {
                require_approval: true,
            },
        )
        .await
        .unwrap();
    limited_key(&store, &a, "k", None, None).await;
    match store
        .enroll_host(enrollment("k", "p1", t(1)))
        .await
        .unwrap()
    {
        Enrollment::Enrolled { .. } => {}
        other => panic!("{other:?}"),
    }

    let statuses = store.host_status_counts(t(50)).await.unwrap();
    let status = |org: &str| {
        of(&statuses, org, |r| {
            (r.org.as_str(), r.status.as_str().to_owned(), r.count)
        })
    };
    assert_eq!(
        status("counts-a"),
        [
            ("offline".to_owned(), 1),
            ("online".to_owned(), 1),
            ("pending".to_owned(), 1),
            ("revoked".to_owned(), 1)
        ]
    );
    assert_eq!(status("counts-b"), [("offline".to_owned(), 1)]);
    assert!(
        statuses
            .iter()
            .all(|r| r.org_id == a.id || r.org_id == b.id)
    );
    assert!(
        statuses
            .iter()
            .any(|r| r.org_id == a.id && r.status == HostStatus::Online)
    );
    // Everything is online when the cut-off is before every heartbeat, and hosts never
    // seen stay offline.
    let early = store.host_status_counts(t(0)).await.unwrap();
    let early_a = of(&early, "counts-a", |r| {
        (r.org.as_str(), r.status.as_str().to_owned(), r.count)
    });
    assert_eq!(
        early_a,
        [
            ("online".to_owned(), 2),
            ("pending".to_owned(), 1),
            ("revoked".to_owned(), 1)
        ]
    );

    let versions = store.agent_version_counts().await.unwrap();
    let version = |org: &str| {
        of(&versions, org, |r| {
            (r.org.as_str(), r.version.clone(), r.count)
        })
    };
    // web3 (revoked) is left out; web2 and the pending host (enrolled with 1.0.0) are
    // one group.
    assert_eq!(enrollment("k", "p1", t(1)).agent_version, "1.0.0");
    assert_eq!(
        version("counts-a"),
        [("1.0.0".to_owned(), 2), ("2.0.0 \"beta\"\n".to_owned(), 1)]
    );
    assert_eq!(version("counts-b"), [("1.0.0".to_owned(), 1)]);

    // Commands: two queued on b1, one delivered then succeeded, one cancelled.
    for _ in 0..2 {
        store
            .queue_command(new_command(&b, &bh, t(0), t(3600)))
            .await
            .unwrap();
    }
    let done = store
        .queue_command(new_command(&b, &bh, t(0), t(3600)))
        .await
        .unwrap();
    let cancelled = store
        .queue_command(new_command(&b, &bh, t(0), t(3600)))
        .await
        .unwrap();
    store
        .cancel_command(b.id, cancelled.id, t(1))
        .await
        .unwrap();
    let leased = store
        .lease_commands(bh.id, t(2), std::time::Duration::from_secs(60), 3)
        .await
        .unwrap();
    assert_eq!(leased.len(), 3);
    store
        .record_result(
            bh.id,
            &result(done.id, ResultStatus::Succeeded, "ok", t(3)),
            t(3),
        )
        .await
        .unwrap();
    let states = store.command_state_counts().await.unwrap();
    let state = |org: &str| {
        of(&states, org, |r| {
            (r.org.as_str(), r.state.as_str().to_owned(), r.count)
        })
    };
    assert_eq!(
        state("counts-b"),
        [
            ("cancelled".to_owned(), 1),
            ("delivered".to_owned(), 2),
            ("succeeded".to_owned(), 1)
        ]
    );
    assert!(state("counts-a").is_empty());
    store
        .queue_command(new_command(&a, &w1, t(5), t(3600)))
        .await
        .unwrap();
    let states = store.command_state_counts().await.unwrap();
    assert!(
        states
            .iter()
            .any(|r| r.org_id == a.id && r.state == CommandState::Queued && r.count == 1)
    );
}
