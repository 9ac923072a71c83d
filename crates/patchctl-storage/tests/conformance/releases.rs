//! Conformance cases of `ReleaseStore`: publishing (idempotent, immutable versions),
//! listing, bundles and artifacts, the highest version in release order, the agent
//! rollout per organisation, update events with the host's last step, and the agent
//! target a heartbeat stores.

use std::sync::Arc;

use patchctl_proto::release::{
    AgentRollout, ReleaseBundle, SignatureEntry, SignedDocument, UpdateEvent, UpdateStep,
};
use patchctl_storage::{HeartbeatWrite, NewRelease, PutRelease, Storage, StorageError};
use uuid::Uuid;

use super::{host, metrics, org, t};

/// A bundle whose texts name the release (storage keeps it as given; verifying it is
/// the platform's job).
fn bundle(tag: &str) -> ReleaseBundle {
    let doc = |s: &str| SignedDocument {
        signed: format!("{{\"tag\": \"{s}\"}}"),
        signatures: vec![SignatureEntry {
            key_id: "0011223344556677".into(),
            signature: "ab".repeat(64),
        }],
    };
    ReleaseBundle {
        keys: doc(&format!("keys {tag}")),
        manifest: doc(&format!("manifest {tag}")),
    }
}

fn release(product: &str, version: &str, target: &str, artifact: &[u8], at: i64) -> NewRelease {
    NewRelease {
        product: product.into(),
        version: version.into(),
        target: target.into(),
        channel: "stable".into(),
        sha256: patchctl_release::sha256_hex(artifact),
        expires: t(86_400),
        bundle: bundle(&format!("{product} {version} {target}")),
        artifact: artifact.to_vec(),
        published_at: t(at),
        published_by: "api token x".into(),
    }
}

const X86: &str = "x86_64-unknown-linux-gnu";
const ARM: &str = "aarch64-unknown-linux-gnu";

pub(super) async fn case_releases_publish(store: Arc<dyn Storage>) {
    assert!(store.list_releases().await.unwrap().is_empty());
    let a = release("patchctl-agent", "1.2.0", X86, b"binary 1.2.0", 10);
    let PutRelease::Created(row) = store.put_release(&a).await.unwrap() else {
        panic!("not created")
    };
    assert_eq!(row.info.product, "patchctl-agent");
    assert_eq!(row.info.size, 12);
    assert_eq!(row.info.sha256, a.sha256);
    assert_eq!(row.info.expires, t(86_400));
    assert_eq!(row.info.published_at, t(10));
    assert_eq!(row.published_by, "api token x");
    // The same artifact again (later, by someone else): unchanged, the first kept.
    let mut again = a.clone();
    again.published_at = t(99);
    again.published_by = "api token y".into();
    assert_eq!(
        store.put_release(&again).await.unwrap(),
        PutRelease::Unchanged(row.clone())
    );
    // Another artifact under the same product, version and target: refused.
    let other = release("patchctl-agent", "1.2.0", X86, b"another binary", 20);
    assert_eq!(
        store.put_release(&other).await.unwrap(),
        PutRelease::Conflict(row.clone())
    );
    assert_eq!(
        store
            .release_artifact("patchctl-agent", "1.2.0", X86)
            .await
            .unwrap()
            .as_deref(),
        Some(&b"binary 1.2.0"[..])
    );
    assert_eq!(
        store
            .release_bundle("patchctl-agent", "1.2.0", X86)
            .await
            .unwrap(),
        Some(a.bundle.clone())
    );
    // The same version for another target or product is another release.
    let arm = release("patchctl-agent", "1.2.0", ARM, b"arm binary", 30);
    assert!(matches!(
        store.put_release(&arm).await.unwrap(),
        PutRelease::Created(_)
    ));
    let deb = release("patchctl-agent.deb", "1.2.0", X86, &[0u8, 1, 2, 255], 40);
    assert!(matches!(
        store.put_release(&deb).await.unwrap(),
        PutRelease::Created(_)
    ));
    assert_eq!(
        store
            .release_artifact("patchctl-agent.deb", "1.2.0", X86)
            .await
            .unwrap(),
        Some(vec![0u8, 1, 2, 255])
    );
    // Absent: none.
    for (p, v, tg) in [
        ("patchctl-agent", "1.2.1", X86),
        ("patchctl-agent", "1.2.0", "riscv64gc-unknown-linux-gnu"),
        ("patchctl-agent.rpm", "1.2.0", X86),
    ] {
        assert_eq!(store.release_artifact(p, v, tg).await.unwrap(), None);
        assert_eq!(store.release_bundle(p, v, tg).await.unwrap(), None);
    }
    // Newest first.
    let listed: Vec<(String, String)> = store
        .list_releases()
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.info.product, r.info.target))
        .collect();
    assert_eq!(
        listed,
        vec![
            ("patchctl-agent.deb".to_owned(), X86.to_owned()),
            ("patchctl-agent".to_owned(), ARM.to_owned()),
            ("patchctl-agent".to_owned(), X86.to_owned()),
        ]
    );
}

pub(super) async fn case_latest_release_in_version_order(store: Arc<dyn Storage>) {
    assert_eq!(
        store.latest_release("patchctl-agent", X86).await.unwrap(),
        None
    );
    // Published out of order; text order would pick 1.9.0, and 1.10.0-rc.1 sorts
    // before 1.10.0.
    for (i, v) in ["1.9.0", "1.10.0", "1.10.0-rc.1", "1.2.3"]
        .iter()
        .enumerate()
    {
        let r = release("patchctl-agent", v, X86, v.as_bytes(), i as i64);
        store.put_release(&r).await.unwrap();
    }
    let r = release("patchctl-agent", "2.0.0", ARM, b"arm", 9);
    store.put_release(&r).await.unwrap();
    let r = release("patchctl-agent.rpm", "3.0.0", X86, b"rpm", 9);
    store.put_release(&r).await.unwrap();
    let latest = store
        .latest_release("patchctl-agent", X86)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(latest.info.version, "1.10.0");
    assert_eq!(latest.info.sha256, patchctl_release::sha256_hex(b"1.10.0"));
    let arm = store
        .latest_release("patchctl-agent", ARM)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(arm.info.version, "2.0.0");
    assert_eq!(
        store
            .latest_release("patchctl-agent.deb", X86)
            .await
            .unwrap(),
        None
    );
}

pub(super) async fn case_agent_rollout(store: Arc<dyn Storage>) {
    let a = org(&store, "a").await;
    let b = org(&store, "b").await;
    let none = store.agent_rollout(a.id).await.unwrap();
    assert_eq!(none.rollout, AgentRollout::default());
    assert_eq!((none.updated_at, none.updated_by), (None, None));
    let r = AgentRollout {
        version: Some("1.2.0".into()),
        canary_percent: Some(10),
    };
    assert!(
        store
            .set_agent_rollout(a.id, &r, "api token a", t(5))
            .await
            .unwrap()
    );
    let got = store.agent_rollout(a.id).await.unwrap();
    assert_eq!(got.rollout, r);
    assert_eq!(got.updated_at, Some(t(5)));
    assert_eq!(got.updated_by.as_deref(), Some("api token a"));
    // Another organisation is untouched.
    assert_eq!(
        store.agent_rollout(b.id).await.unwrap().rollout,
        AgentRollout::default()
    );
    // Replaced whole; no version: nothing offered.
    let off = AgentRollout {
        version: None,
        canary_percent: None,
    };
    assert!(
        store
            .set_agent_rollout(a.id, &off, "api token b", t(6))
            .await
            .unwrap()
    );
    let got = store.agent_rollout(a.id).await.unwrap();
    assert_eq!(got.rollout, off);
    assert_eq!(got.updated_by.as_deref(), Some("api token b"));
    let all = AgentRollout {
        version: Some("1.3.0".into()),
        canary_percent: Some(100),
    };
    assert!(
        store
            .set_agent_rollout(a.id, &all, "x", t(7))
            .await
            .unwrap()
    );
    assert_eq!(store.agent_rollout(a.id).await.unwrap().rollout, all);
    // No such organisation.
    assert!(
        !store
            .set_agent_rollout(Uuid::new_v4(), &r, "x", t(8))
            .await
            .unwrap()
    );
    // A canary outside 1–100 is refused, nothing changed.
    for p in [0u8, 101, 255] {
        let bad = AgentRollout {
            version: Some("9.9.9".into()),
            canary_percent: Some(p),
        };
        let e = store
            .set_agent_rollout(a.id, &bad, "x", t(9))
            .await
            .unwrap_err();
        assert!(matches!(e, StorageError::Invalid(_)), "{p}: {e}");
    }
    assert_eq!(store.agent_rollout(a.id).await.unwrap().rollout, all);
}

fn event(at: i64, step: UpdateStep, version: &str, detail: Option<&str>) -> UpdateEvent {
    UpdateEvent {
        at: t(at),
        step,
        version: version.into(),
        detail: detail.map(str::to_owned),
    }
}

pub(super) async fn case_update_events(store: Arc<dyn Storage>) {
    let a = org(&store, "a").await;
    let b = org(&store, "b").await;
    let (h, _) = host(&store, &a, "web-1").await;
    let (other, _) = host(&store, &b, "db-1").await;
    assert_eq!(
        store.host(a.id, h.id).await.unwrap().unwrap().agent_update,
        None
    );
    // Nothing to store: nothing changes.
    assert!(store.record_update_events(h.id, &[], t(1)).await.unwrap());
    assert_eq!(
        store.host(a.id, h.id).await.unwrap().unwrap().agent_update,
        None
    );
    let first = vec![
        event(10, UpdateStep::Downloaded, "1.2.0", None),
        event(11, UpdateStep::Verified, "1.2.0", None),
        event(12, UpdateStep::Swapped, "1.2.0", None),
    ];
    assert!(
        store
            .record_update_events(h.id, &first, t(20))
            .await
            .unwrap()
    );
    let state = store
        .host(a.id, h.id)
        .await
        .unwrap()
        .unwrap()
        .agent_update
        .unwrap();
    assert_eq!(
        (state.step, state.version.as_str(), state.detail, state.at),
        (UpdateStep::Swapped, "1.2.0", None, t(12))
    );
    let second = vec![event(
        30,
        UpdateStep::RolledBack,
        "1.2.0",
        Some("the new binary did not reach the platform within 120 s"),
    )];
    assert!(
        store
            .record_update_events(h.id, &second, t(40))
            .await
            .unwrap()
    );
    let listed = store.list_hosts(a.id).await.unwrap();
    let state = listed[0].agent_update.clone().unwrap();
    assert_eq!(state.step, UpdateStep::RolledBack);
    assert_eq!(
        state.detail.as_deref(),
        Some("the new binary did not reach the platform within 120 s")
    );
    // Every event, oldest first, with the time it arrived.
    let events = store.update_events(a.id, h.id, 100).await.unwrap();
    let got: Vec<(UpdateStep, chrono::DateTime<chrono::Utc>)> = events
        .iter()
        .map(|e| (e.event.step, e.received_at))
        .collect();
    assert_eq!(
        got,
        vec![
            (UpdateStep::Downloaded, t(20)),
            (UpdateStep::Verified, t(20)),
            (UpdateStep::Swapped, t(20)),
            (UpdateStep::RolledBack, t(40)),
        ]
    );
    assert_eq!(events[3].event, second[0]);
    // The latest `limit`, still oldest first.
    let last2: Vec<UpdateStep> = store
        .update_events(a.id, h.id, 2)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event.step)
        .collect();
    assert_eq!(last2, vec![UpdateStep::Swapped, UpdateStep::RolledBack]);
    // Confined to the organisation; an unknown host stores nothing.
    assert!(
        store
            .update_events(b.id, h.id, 100)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .update_events(b.id, other.id, 100)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        !store
            .record_update_events(Uuid::new_v4(), &first, t(50))
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .host(b.id, other.id)
            .await
            .unwrap()
            .unwrap()
            .agent_update,
        None
    );
}

pub(super) async fn case_heartbeat_stores_agent_target(store: Arc<dyn Storage>) {
    let a = org(&store, "a").await;
    let (h1, _) = host(&store, &a, "web-1").await;
    let (h2, _) = host(&store, &a, "web-2").await;
    assert_eq!(h1.agent_target, None);
    let w = |host: Uuid, target: Option<&str>, at: i64| HeartbeatWrite {
        host_id: host,
        agent_version: "1.2.0".into(),
        agent_target: target.map(str::to_owned),
        metrics: metrics(1),
        at: t(at),
        reboot: Default::default(),
    };
    let out = store
        .record_heartbeats(&[w(h1.id, Some(X86), 1), w(h2.id, None, 1)], 5)
        .await
        .unwrap();
    assert_eq!(out.updated, 2);
    let target = |id: Uuid| {
        let store = store.clone();
        async move { store.host(a.id, id).await.unwrap().unwrap().agent_target }
    };
    assert_eq!(target(h1.id).await.as_deref(), Some(X86));
    assert_eq!(target(h2.id).await, None);
    store
        .record_heartbeats(&[w(h2.id, Some(ARM), 2), w(h1.id, None, 2)], 5)
        .await
        .unwrap();
    assert_eq!(target(h1.id).await, None);
    assert_eq!(target(h2.id).await.as_deref(), Some(ARM));
}
