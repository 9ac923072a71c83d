//! The delta chain lives in the database (docs/limits.md): at most
//! [`MAX_DELTA_CHAIN`] scan deltas follow a host's last full scan, counted with the
//! host's scan state, so that
//!
//! - two platform nodes (two `AppState`s, each its own router) on one PostgreSQL
//!   database, taking the deltas in turn, refuse the one past the cap with `need_full`
//!   together (a fresh database of `PATCHCTL_TEST_POSTGRES_URL`; skipped with the reason
//!   without it, a failure under `CI=true`);
//! - a node started again on the same SQLite file still counts the deltas the previous
//!   one stored.
//!
//! Requests go through the real router (`app`), the storage is real.

use std::process::ExitCode;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use patchctl_proto::agent::{EnrollRequest, EnrollResponse, SystemInfo};
use patchctl_proto::scan::{PackageRow, ScanAck, ScanBody, ScanState, ScanStatus, ScanUpload};
use patchctl_proto::{PROTOCOL_VERSION, Secret};
use patchctl_server::api::scans::MAX_DELTA_CHAIN;
use patchctl_server::bootstrap::create_org;
use patchctl_server::{AppState, Settings, app};
use patchctl_storage::Storage;
use patchctl_testkit::{Harness, Need, trial};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tower::ServiceExt;

fn main() -> ExitCode {
    Harness::new()
        .test(
            trial!(async two_nodes_on_one_postgres_share_the_delta_chain)
                .multi_thread(Some(2))
                .needs([Need::Postgres]),
        )
        .test(trial!(async the_delta_chain_survives_a_restart_on_sqlite).multi_thread(Some(2)))
        .run()
}

/// A node: its own state over its own connection to the database `url` names.
async fn node(url: &str) -> AppState {
    let store: Arc<dyn Storage> = patchctl_storage::open(url).await.unwrap();
    let settings = Settings {
        enroll_per_address_per_min: 1_000,
        enroll_per_key_per_min: 1_000,
        agent_per_credential_per_min: 100_000,
        agent_per_address_per_min: 100_000,
        vuln_sync: false,
        ..Settings::with_defaults("127.0.0.1:0".parse().unwrap(), url, "unused", "unused")
    };
    AppState::new(store, settings)
}

/// `POST path` with `body` through `node`'s router; the answer, which must be 200.
async fn post<B: Serialize, T: DeserializeOwned>(
    node: &AppState,
    path: &str,
    bearer: Option<&Secret>,
    body: &B,
) -> T {
    let mut req = Request::builder()
        .method("POST")
        .uri(path)
        .header("content-type", "application/json");
    if let Some(b) = bearer {
        req = req.header("authorization", format!("Bearer {}", b.expose()));
    }
    let req = req
        .body(Body::from(serde_json::to_vec(body).unwrap()))
        .unwrap();
    let resp = app(node.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(
        status,
        StatusCode::OK,
        "{path}: {}",
        String::from_utf8_lossy(&bytes)
    );
    serde_json::from_slice(&bytes).unwrap()
}

/// Enrolls `web-1` through `node` with a new organisation's key; its credential.
async fn enroll(node: &AppState) -> Secret {
    let org = create_org(node.store.as_ref(), "chain").await.unwrap();
    let req = EnrollRequest {
        protocol_version: PROTOCOL_VERSION,
        license_key: org.enrollment_key.clone(),
        agent_version: "test".into(),
        system: SystemInfo {
            hostname: "web-1".into(),
            ..Default::default()
        },
    };
    let resp: EnrollResponse = post(node, "/api/v1/agent/enroll", None, &req).await;
    resp.credential
}

fn state(packages: Vec<PackageRow>) -> ScanState {
    let mut s = ScanState {
        system: SystemInfo {
            hostname: "web-1".into(),
            ..Default::default()
        },
        package_manager: Some("dpkg".into()),
        packages,
        updates: None,
    };
    s.canonicalize();
    s
}

fn row(name: &str) -> PackageRow {
    PackageRow(
        name.into(),
        "1".into(),
        "amd64".into(),
        String::new(),
        String::new(),
        String::new(),
    )
}

/// Uploads a scan through `node`.
async fn scan(node: &AppState, cred: &Secret, digest: String, body: ScanBody) -> ScanAck {
    let upload = ScanUpload {
        scanned_at: chrono::Utc::now(),
        digest,
        body,
        reboot: None,
    };
    post(node, "/api/v1/agent/scan", Some(cred), &upload).await
}

/// The host's scan state after one more package, and the delta that brings it there.
fn next_delta(current: &ScanState, i: u32) -> (ScanState, ScanBody) {
    let mut packages = current.packages.clone();
    packages.push(row(&format!("added{i}")));
    let next = state(packages);
    let body = next
        .delta_from(current, &current.digest())
        .expect("a delta");
    (next, body)
}

/// A full scan through `nodes[0]`, then [`MAX_DELTA_CHAIN`] deltas through the nodes in
/// turn (each stored); the state reached.
async fn full_then_the_longest_chain(nodes: &[&AppState], cred: &Secret) -> ScanState {
    let mut current = state((0..5).map(|i| row(&format!("base{i}"))).collect());
    let full = ScanBody::Full {
        state: current.clone(),
    };
    let ack = scan(nodes[0], cred, current.digest(), full).await;
    assert_eq!(ack.status, ScanStatus::Stored, "{ack:?}");
    for i in 0..MAX_DELTA_CHAIN {
        let node = nodes[i as usize % nodes.len()];
        let (next, body) = next_delta(&current, i);
        let ack = scan(node, cred, next.digest(), body).await;
        assert_eq!(ack.status, ScanStatus::Stored, "delta {i}: {ack:?}");
        current = next;
    }
    current
}

/// The delta past the cap, through `node`: `need_full`, naming the cap.
async fn past_the_cap_needs_full(node: &AppState, cred: &Secret, current: &ScanState) {
    let (next, body) = next_delta(current, MAX_DELTA_CHAIN);
    let ack = scan(node, cred, next.digest(), body).await;
    assert_eq!(
        ack.status,
        ScanStatus::NeedFull,
        "delta {} after the last full scan: {ack:?}",
        MAX_DELTA_CHAIN + 1
    );
    let detail = ack.detail.unwrap_or_default();
    assert!(detail.contains(&MAX_DELTA_CHAIN.to_string()), "{detail}");
}

async fn two_nodes_on_one_postgres_share_the_delta_chain() {
    let url = patchctl_testkit::scratch_postgres("patchctl_delta_chain").await;
    let (a, b) = (node(&url).await, node(&url).await);
    let cred = enroll(&a).await;
    let current = full_then_the_longest_chain(&[&a, &b], &cred).await;
    // Each node took 32 deltas; together they took the most there may be.
    past_the_cap_needs_full(&a, &cred, &current).await;
    past_the_cap_needs_full(&b, &cred, &current).await;
    // A full scan through either starts the chain again for both.
    let full = ScanBody::Full {
        state: current.clone(),
    };
    let ack = scan(&b, &cred, current.digest(), full).await;
    assert_eq!(ack.status, ScanStatus::Stored, "{ack:?}");
    let (next, body) = next_delta(&current, 1_000);
    let ack = scan(&a, &cred, next.digest(), body).await;
    assert_eq!(ack.status, ScanStatus::Stored, "{ack:?}");
}

async fn the_delta_chain_survives_a_restart_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("db.sqlite").display());
    let before = node(&url).await;
    let cred = enroll(&before).await;
    let current = full_then_the_longest_chain(&[&before], &cred).await;
    drop(before);
    // The node starts again: a new state over the same file.
    let after = node(&url).await;
    past_the_cap_needs_full(&after, &cred, &current).await;
}
