//! Conformance cases of the announcements the storage methods make with their writes
//! (issue 16 follow-up): a subscriber hears, from the storage call alone, a command
//! queued, a scan or inventory stored, and a host revoked, approved, rejected or with
//! its credential promoted, each once and in order; and a write that fails or changes
//! nothing announces nothing. On PostgreSQL the announcement is a `NOTIFY` inside the
//! write's transaction, heard through the store's own listening connection.

use std::sync::Arc;
use std::time::Duration;

use patchctl_proto::trust::OrgSettings;
use patchctl_storage::{ApprovalChange, Change, Enrollment, ScanKind, Storage};
use tokio::sync::broadcast;
use uuid::Uuid;

use super::{enrollment, host, limited_key, new_command, org, scan, t, upload};

/// How long an announcement may take to arrive.
const WITHIN: Duration = Duration::from_secs(5);

/// The next announcement that is not [`Change::Lost`] (which a PostgreSQL listener
/// sends whenever it (re)connects), within [`WITHIN`].
async fn next(rx: &mut broadcast::Receiver<Change>) -> Change {
    loop {
        match tokio::time::timeout(WITHIN, rx.recv()).await {
            Ok(Ok(Change::Lost)) => continue,
            Ok(Ok(c)) => return c,
            Ok(Err(e)) => panic!("the subscription failed: {e}"),
            Err(_) => panic!("no announcement within {WITHIN:?}"),
        }
    }
}

/// Announces a marker nothing else announces and waits for it: everything announced
/// before it has been heard by then (a listener hears a node's announcements in commit
/// order). Subscribing and marking first also makes sure the listener listens.
async fn marker(store: &Arc<dyn Storage>) -> Change {
    let mark = Change::Commands {
        host: Uuid::new_v4(),
    };
    store.announce(mark).await.expect("announce the marker");
    mark
}

/// Subscribes and waits until the subscription hears announcements: on PostgreSQL the
/// store starts listening at the first subscription, and what is announced before its
/// `LISTEN` is never heard, so markers are sent until one comes back (earlier ones
/// that do come back arrive before it).
async fn subscribed(store: &Arc<dyn Storage>) -> broadcast::Receiver<Change> {
    let mut rx = store.subscribe();
    let mut sent = Vec::new();
    let deadline = tokio::time::Instant::now() + WITHIN;
    while tokio::time::Instant::now() < deadline {
        sent.push(marker(store).await);
        let wait = tokio::time::Instant::now() + Duration::from_millis(250);
        while let Ok(heard) = tokio::time::timeout_at(wait, rx.recv()).await {
            match heard.expect("the subscription works") {
                c if Some(&c) == sent.last() => return rx,
                c if c == Change::Lost || sent.contains(&c) => {}
                c => panic!("nothing else was announced, yet {c:?} was heard"),
            }
        }
    }
    panic!("the subscription heard none of its markers within {WITHIN:?}");
}

/// Asserts that nothing but the marker is heard from now on.
async fn nothing_more(store: &Arc<dyn Storage>, rx: &mut broadcast::Receiver<Change>, why: &str) {
    let mark = marker(store).await;
    assert_eq!(next(rx).await, mark, "nothing announced: {why}");
}

pub async fn case_writes_announce_their_changes(store: Arc<dyn Storage>) {
    let a = org(&store, "a").await;
    let (h, _) = host(&store, &a, "web1").await;
    let mut rx = subscribed(&store).await;

    store
        .queue_command(new_command(&a, &h, t(10), t(3600)))
        .await
        .unwrap();
    assert_eq!(next(&mut rx).await, Change::Commands { host: h.id });

    let (digest, state) = scan("web1", &[("bash", "5.2")], None);
    store
        .put_scan(h.id, t(20), &digest, &state, ScanKind::Full)
        .await
        .unwrap();
    let scanned = Change::Scan {
        org: a.id,
        host: h.id,
    };
    assert_eq!(next(&mut rx).await, scanned);
    store
        .put_scan(h.id, t(21), &digest, &state, ScanKind::Delta)
        .await
        .unwrap();
    assert_eq!(next(&mut rx).await, scanned, "a delta too");
    store
        .put_inventory(h.id, &upload("web1", t(30), vec![]))
        .await
        .unwrap();
    assert_eq!(next(&mut rx).await, scanned, "a v1 inventory too");

    store.stage_credential(h.id, "next-1", t(40)).await.unwrap();
    assert!(store.promote_credential(h.id, "next-1").await.unwrap());
    let standing = Change::Standing { host: h.id };
    assert_eq!(next(&mut rx).await, standing, "a promoted credential");

    assert!(store.revoke_host(a.id, h.id).await.unwrap());
    assert_eq!(next(&mut rx).await, standing, "a revocation");

    // Approval and rejection of pending hosts.
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
    let mut pending = Vec::new();
    for name in ["p1", "p2"] {
        match store
            .enroll_host(enrollment("k", name, t(50)))
            .await
            .unwrap()
        {
            Enrollment::Enrolled { host, .. } => pending.push(host.id),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        store.set_approval(a.id, pending[0], true).await.unwrap(),
        ApprovalChange::Changed
    );
    assert_eq!(
        next(&mut rx).await,
        Change::Standing { host: pending[0] },
        "an approval"
    );
    assert_eq!(
        store.set_approval(a.id, pending[1], false).await.unwrap(),
        ApprovalChange::Changed
    );
    assert_eq!(
        next(&mut rx).await,
        Change::Standing { host: pending[1] },
        "a rejection"
    );

    // Each once: enrollment announced nothing, and nothing was announced twice.
    nothing_more(&store, &mut rx, "after the last change").await;
}

pub async fn case_failed_writes_announce_nothing(store: Arc<dyn Storage>) {
    let a = org(&store, "a").await;
    let b = org(&store, "b").await;
    let (h, _) = host(&store, &a, "web1").await;
    let (other, _) = host(&store, &b, "web1").await;
    let mut rx = subscribed(&store).await;

    // Queueing for a host that does not exist, or for another organisation's host:
    // the transaction rolls back, and its announcement with it.
    let mut ghost = new_command(&a, &h, t(10), t(3600));
    ghost.host_id = Uuid::new_v4();
    assert!(store.queue_command(ghost).await.is_err());
    let mut foreign = new_command(&a, &h, t(10), t(3600));
    foreign.host_id = other.id;
    assert!(store.queue_command(foreign).await.is_err());
    nothing_more(&store, &mut rx, "no command was queued").await;

    // Scans and inventories of unknown hosts.
    let (digest, state) = scan("web1", &[("bash", "5.2")], None);
    for kind in [ScanKind::Full, ScanKind::Delta] {
        assert!(
            store
                .put_scan(Uuid::new_v4(), t(20), &digest, &state, kind)
                .await
                .is_err()
        );
    }
    assert!(
        store
            .put_inventory(Uuid::new_v4(), &upload("web1", t(30), vec![]))
            .await
            .is_err()
    );
    nothing_more(&store, &mut rx, "no scan was stored").await;

    // Standing changes that change nothing.
    assert!(!store.revoke_host(a.id, other.id).await.unwrap());
    assert!(!store.revoke_host(a.id, Uuid::new_v4()).await.unwrap());
    assert_eq!(
        store.set_approval(a.id, h.id, true).await.unwrap(),
        ApprovalChange::NotPending
    );
    assert_eq!(
        store
            .set_approval(a.id, Uuid::new_v4(), false)
            .await
            .unwrap(),
        ApprovalChange::NotFound
    );
    assert!(
        !store
            .promote_credential(h.id, "never-staged")
            .await
            .unwrap()
    );
    nothing_more(&store, &mut rx, "no standing changed").await;

    // What did not change is as it was: the host is neither revoked nor scanned.
    let row = store.host(a.id, h.id).await.unwrap().unwrap();
    assert!(!row.revoked);
    assert_eq!(store.scan_state(h.id).await.unwrap(), None);
}

pub async fn case_delta_chain_is_stored(store: Arc<dyn Storage>) {
    let a = org(&store, "a").await;
    let (h, _) = host(&store, &a, "web1").await;
    let chain = |store: Arc<dyn Storage>| async move {
        store
            .scan_state(h.id)
            .await
            .unwrap()
            .expect("a stored state")
            .delta_chain
    };
    let (digest, state) = scan("web1", &[("bash", "5.2")], None);
    store
        .put_scan(h.id, t(10), &digest, &state, ScanKind::Full)
        .await
        .unwrap();
    assert_eq!(chain(store.clone()).await, 0);
    for n in 1..=3 {
        store
            .put_scan(h.id, t(10 + n), &digest, &state, ScanKind::Delta)
            .await
            .unwrap();
        assert_eq!(chain(store.clone()).await, n as u32);
    }
    // "Unchanged" keeps the chain; a full scan starts it again.
    assert!(store.touch_scan(h.id, t(20), &digest).await.unwrap());
    assert_eq!(chain(store.clone()).await, 3);
    store
        .put_scan(h.id, t(30), &digest, &state, ScanKind::Full)
        .await
        .unwrap();
    assert_eq!(chain(store.clone()).await, 0);
}
