//! The engine's load against re-probes running beside it, on a real SQLite store. The
//! interleaving is forced with [`Pause`], a test-only stop inside `load` between its
//! reads and its replace of the state.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::Utc;
use patchctl_proto::agent::{OsInfo, SystemInfo};
use patchctl_storage::NewHost;
use tokio::sync::Notify;

use super::VulnEngine;

/// A stop a load waits at once armed: it says it got there, then waits to be released.
#[derive(Default)]
pub(super) struct Pause {
    armed: AtomicBool,
    reached: Notify,
    release: Notify,
}

impl Pause {
    pub(super) async fn wait(&self) {
        if self.armed.swap(false, Ordering::AcqRel) {
            self.reached.notify_one();
            self.release.notified().await;
        }
    }
}

/// A host enrolled (and re-probed) after a load read the store but before it replaced
/// the state is still correlated when both are done. Before the `loading` lock, the
/// re-probe finished first and the load then put back the state it had read, without
/// the host (seen in CI as the dashboard's "hosts without data" notice missing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_re_probed_while_a_load_reads_is_not_lost_by_the_load() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("db.sqlite").display());
    let store = patchctl_storage::open(&url).await.unwrap();
    // The organisation and its key straight in the store: this module imports no other
    // module of the crate (the layout test counts test modules' imports too).
    let now = Utc::now();
    let org = store.create_org("engine", now).await.unwrap();
    let key = store
        .create_enrollment_key(org.id, "default", "not-a-real-key-hash", now)
        .await
        .unwrap();
    let engine = VulnEngine::new(store.clone());

    engine
        .pause_before_replace
        .armed
        .store(true, Ordering::Release);
    let load = tokio::spawn({
        let engine = engine.clone();
        async move { engine.load().await }
    });
    engine.pause_before_replace.reached.notified().await;

    // The load has read every host: this one is not among them.
    let host = store
        .create_host(NewHost {
            org_id: key.org_id,
            enrollment_key_id: key.id,
            credential_hash: "cred-late".into(),
            agent_version: "1.0.0".into(),
            system: SystemInfo {
                hostname: "late-1".into(),
                os: OsInfo {
                    id: "debian".into(),
                    version_id: "12".into(),
                    ..Default::default()
                },
                ..Default::default()
            },
            now: Utc::now(),
        })
        .await
        .unwrap();
    let mut probe = tokio::spawn({
        let engine = engine.clone();
        async move { engine.host_changed(key.org_id, host.id).await }
    });
    // Without the lock the re-probe completes here, before the load replaces the state;
    // with it, it waits for the load.
    let finished_early = tokio::time::timeout(Duration::from_millis(500), &mut probe)
        .await
        .ok();
    engine.pause_before_replace.release.notify_one();
    load.await.unwrap().unwrap();
    match finished_early {
        Some(r) => r.unwrap().unwrap(),
        None => probe.await.unwrap().unwrap(),
    }

    let inner = engine.inner.read().await;
    assert!(
        inner.hostnames.contains_key(&host.id),
        "the host re-probed during the load is missing from the engine after it"
    );
    assert!(inner.fleet.host_ecosystems(host.id).is_some());
}
