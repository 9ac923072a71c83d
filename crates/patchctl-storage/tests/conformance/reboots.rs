//! Conformance cases of reboots (migration 0012): the heartbeat group commit and scans
//! record whether a host needs a reboot (why, since when) and when it booted; the
//! fleet-wide list of hosts needing one pages in order; `host_boot_state` answers the
//! rollout engine's question for the hosts asked, in the order asked.

use std::sync::Arc;

use patchctl_storage::{HeartbeatWrite, RebootReport, Storage};
use uuid::Uuid;

use super::{host, metrics, org, t};

fn beat(host_id: Uuid, at: i64, reboot: RebootReport) -> HeartbeatWrite {
    HeartbeatWrite {
        host_id,
        agent_version: "1.0.0".into(),
        agent_target: None,
        metrics: metrics(1),
        at: t(at),
        reboot,
    }
}

fn needs(why: &str, booted: Option<i64>) -> RebootReport {
    RebootReport {
        required: Some((true, vec![why.to_owned()])),
        booted_at: booted.map(t),
    }
}

fn fine(booted: i64) -> RebootReport {
    RebootReport {
        required: Some((false, Vec::new())),
        booted_at: Some(t(booted)),
    }
}

pub async fn case_reboot_state(store: Arc<dyn Storage>) {
    let a = org(&store, "reboots-a").await;
    let b = org(&store, "reboots-b").await;
    let (h1, _) = host(&store, &a, "web1").await;
    let (h2, _) = host(&store, &a, "web2").await;
    let (h3, _) = host(&store, &a, "web3").await;
    let (hb, _) = host(&store, &b, "other").await;
    // Nothing reported yet.
    let h = store.host(a.id, h1.id).await.unwrap().unwrap();
    assert!(!h.boot.reboot_required);
    assert_eq!(h.boot.since, None);
    assert_eq!(store.reboot_count(a.id).await.unwrap(), 0);

    // One multi-row batch: h1 needs one (booted at 5), h2 is fine, h3 says nothing
    // (an older agent), b's host needs one too.
    let out = store
        .record_heartbeats(
            &[
                beat(h1.id, 100, needs("/run/reboot-required (libc6)", Some(5))),
                beat(h2.id, 100, fine(6)),
                beat(h3.id, 100, RebootReport::default()),
                beat(hb.id, 100, needs("kernel", Some(7))),
            ],
            5,
        )
        .await
        .unwrap();
    assert_eq!(out.updated, 4);
    let h = store.host(a.id, h1.id).await.unwrap().unwrap();
    assert!(h.boot.reboot_required);
    assert_eq!(h.boot.reasons, ["/run/reboot-required (libc6)"]);
    assert_eq!(h.boot.since, Some(t(100)));
    assert_eq!(h.boot.booted_at, Some(t(5)));
    let h = store.host(a.id, h3.id).await.unwrap().unwrap();
    assert!(!h.boot.reboot_required);
    assert_eq!(h.boot.booted_at, None);

    // Still needed later: `since` stays; a heartbeat without a report keeps it all.
    store
        .record_heartbeats(
            &[beat(
                h1.id,
                200,
                needs("/run/reboot-required (libc6, linux)", Some(5)),
            )],
            5,
        )
        .await
        .unwrap();
    store
        .record_heartbeats(&[beat(h1.id, 250, RebootReport::default())], 5)
        .await
        .unwrap();
    let h = store.host(a.id, h1.id).await.unwrap().unwrap();
    assert_eq!(h.boot.since, Some(t(100)));
    assert_eq!(h.boot.reasons, ["/run/reboot-required (libc6, linux)"]);
    assert_eq!(h.last_seen, Some(t(250)));

    // A scan says h2 needs one now (its boot time untouched: scans do not carry it).
    assert!(
        store
            .record_reboot_state(
                h2.id,
                &needs("needs-restarting -r: Reboot is required", None),
                t(300)
            )
            .await
            .unwrap()
    );
    assert!(
        !store
            .record_reboot_state(Uuid::new_v4(), &needs("x", None), t(300))
            .await
            .unwrap()
    );
    let h = store.host(a.id, h2.id).await.unwrap().unwrap();
    assert_eq!(h.boot.since, Some(t(300)));
    assert_eq!(h.boot.booted_at, Some(t(6)));

    // The list: a's two, longest waiting first, paged; b's host is b's alone.
    assert_eq!(store.reboot_count(a.id).await.unwrap(), 2);
    let (page, total) = store.reboot_page(a.id, None, 1).await.unwrap();
    assert_eq!(total, 2);
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].host_id, h1.id);
    assert_eq!(page[0].hostname, "web1");
    assert_eq!(page[0].boot.since, Some(t(100)));
    let (page2, _) = store
        .reboot_page(a.id, Some((t(100), h1.id)), 10)
        .await
        .unwrap();
    assert_eq!(page2.iter().map(|l| l.host_id).collect::<Vec<_>>(), [h2.id]);
    let (pb, tb) = store.reboot_page(b.id, None, 10).await.unwrap();
    assert_eq!((pb.len(), tb), (1, 1));

    // h1 rebooted: a new boot time, no need any more; it leaves the list.
    store
        .record_heartbeats(&[beat(h1.id, 400, fine(390))], 5)
        .await
        .unwrap();
    let h = store.host(a.id, h1.id).await.unwrap().unwrap();
    assert!(!h.boot.reboot_required);
    assert_eq!(h.boot.since, None);
    assert!(h.boot.reasons.is_empty());
    assert_eq!(h.boot.booted_at, Some(t(390)));
    assert_eq!(store.reboot_count(a.id).await.unwrap(), 1);

    // A revoked host is left out of the list.
    assert!(store.revoke_host(a.id, h2.id).await.unwrap());
    assert_eq!(store.reboot_count(a.id).await.unwrap(), 0);
    assert!(
        store
            .reboot_page(a.id, None, 10)
            .await
            .unwrap()
            .0
            .is_empty()
    );

    // The rollout engine's question: in the order asked, other organisations' and
    // unknown hosts left out.
    let state = store
        .host_boot_state(a.id, &[h3.id, hb.id, Uuid::new_v4(), h1.id])
        .await
        .unwrap();
    assert_eq!(
        state.iter().map(|s| s.host_id).collect::<Vec<_>>(),
        [h3.id, h1.id]
    );
    assert_eq!(state[1].booted_at, Some(t(390)));
    assert_eq!(state[1].last_seen, Some(t(400)));
    assert!(!state[1].reboot_required);
    assert_eq!(state[0].booted_at, None);
    assert!(store.host_boot_state(a.id, &[]).await.unwrap().is_empty());
}
