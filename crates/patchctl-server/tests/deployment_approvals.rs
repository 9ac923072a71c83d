//! The two-person rule over the real platform (TLS 1.3 on loopback, a real SQLite
//! file, the command-signing key file): when the organisation's approver list (signed
//! by its command key) requires it, a deployment's hosts wait for an approver's
//! signature of the manifest; the API takes only a signature by a listed approver of
//! exactly the manifest's updates; once signed, every install the rollout engine
//! queues carries the approver's signature inside the statement the platform signs.

#[path = "deployments/agent.rs"]
mod agent;
mod support;

use agent::agent;
use axum::http::StatusCode;
use chrono::{DateTime, Duration, Utc};
use patchctl_proto::policy::approvals::UpdateItem;
use patchctl_proto::signing::{ApprovedItem, MANIFEST_APPROVAL_KIND, ManifestApproval};
use patchctl_release::command::approval::sign_approval;
use patchctl_release::{KeyRole, SecretKey};
use patchctl_server::signing::admin::{ApproverChange, change_approvers};
use patchctl_server::{AppState, Settings};
use patchctl_storage::Manifest;
use serde_json::json;
use support::{Platform, platform};
use uuid::Uuid;

fn ticker(p: &Platform) -> AppState {
    AppState::new(
        p.store.clone(),
        Settings {
            heartbeat_interval_secs: 7_200,
            command_signing_key: Some(p.key_file.clone()),
            ..Settings::with_defaults(
                "127.0.0.1:0".parse().unwrap(),
                "sqlite::memory:",
                "/x",
                "/y",
            )
        },
    )
}

async fn tick(st: &AppState, now: DateTime<Utc>) {
    let mut last = Some(now);
    patchctl_server::policy::tick(st, now, &mut last).await;
}

fn approval(key: &SecretKey, org: Uuid, manifest: Uuid, items: &[UpdateItem]) -> serde_json::Value {
    let doc = sign_approval(
        key,
        &ManifestApproval {
            kind: MANIFEST_APPROVAL_KIND.into(),
            org,
            manifest,
            name: "october".into(),
            items: items
                .iter()
                .map(|i| ApprovedItem {
                    ecosystem: i.ecosystem.clone(),
                    name: i.name.clone(),
                    version: i.version.clone(),
                })
                .collect(),
            created: Utc::now(),
        },
    )
    .unwrap();
    json!({ "signed": doc })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_waits_for_an_approver_and_its_installs_carry_the_signature() {
    let p = platform().await;
    let st = ticker(&p);
    let items = vec![UpdateItem {
        ecosystem: "Debian:12".into(),
        name: "openssl".into(),
        version: "3.0.15-1~deb12u1".into(),
    }];
    let all = p
        .store
        .group_by_name(p.org_id, "all")
        .await
        .unwrap()
        .unwrap();
    let manifest_id = Uuid::new_v4();
    p.store
        .create_manifest(
            p.org_id,
            &Manifest {
                id: manifest_id,
                name: "october".into(),
                group_id: all.id,
                group_name: "all".into(),
                created_by: "test".into(),
                created_at: Utc::now(),
                item_count: 1,
            },
            &items,
        )
        .await
        .unwrap();
    let op = p.caller("operator").token.clone();
    let sign = |body: serde_json::Value| {
        let op = op.clone();
        let p = &p;
        async move {
            p.req(
                "POST",
                "/api/v1/manifests/october/signatures",
                Some(&op),
                Some(&body),
            )
            .await
        }
    };

    // No approvers yet: nobody can sign.
    let alice = SecretKey::from_seed(KeyRole::Approver, [20; 32]);
    let r = sign(approval(&alice, p.org_id, manifest_id, &items)).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);

    // On a platform node: Alice is an approver, and installs require a signature.
    for change in [
        ApproverChange::Add {
            name: "alice".into(),
            key: alice.public(),
        },
        ApproverChange::Require(true),
    ] {
        change_approvers(&p.key_file, p.store.as_ref(), p.org_id, change)
            .await
            .unwrap();
    }

    let mut web = agent(&p, "web1", "web", None).await;
    let r = p
        .req(
            "POST",
            "/api/v1/deployments",
            Some(&op),
            Some(&json!({"name": "oct", "manifest": "october", "groups": ["all"], "rings": [{"percent": 100, "soak_minutes": 0}]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);

    // The baseline passes, then the host waits for the approver.
    let mut now = Utc::now();
    let mut detail = String::new();
    for _ in 0..6 {
        tick(&st, now).await;
        web.round(&p).await;
        now += Duration::minutes(1);
        let hosts = p
            .req("GET", "/api/v1/deployments/oct/hosts", Some(&op), None)
            .await
            .ok();
        assert_eq!(hosts[0]["hostname"], web.hostname.as_str());
        detail = hosts[0]["detail"].as_str().unwrap_or_default().to_owned();
        if detail.contains("approver") {
            break;
        }
    }
    assert!(
        detail.contains("waiting for an approver to sign manifest october"),
        "{detail}"
    );
    assert!(web.installs.is_empty());

    // Refused: someone not on the list; Alice signing other updates.
    let bob = SecretKey::from_seed(KeyRole::Approver, [21; 32]);
    let r = sign(approval(&bob, p.org_id, manifest_id, &items)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.text.contains("not signed by an approver"), "{}", r.text);
    let mut other = items.clone();
    other[0].version = "3.0.16-1".into();
    let r = sign(approval(&alice, p.org_id, manifest_id, &other)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.text.contains("other updates"), "{}", r.text);

    // Alice signs it; the signature is listed and audited.
    let good = approval(&alice, p.org_id, manifest_id, &items);
    let r = sign(good.clone()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let list = p
        .req(
            "GET",
            "/api/v1/manifests/october/signatures",
            Some(&op),
            None,
        )
        .await
        .ok();
    assert_eq!(list[0]["approver"], "alice", "{list}");

    // The next tick queues the install, whose signed statement carries her signature.
    tick(&st, now).await;
    let pending = p.store.unfinished_signatures(p.org_id).await.unwrap();
    let key = patchctl_server::signing::KeyFile::read(&p.key_file)
        .unwrap()
        .unwrap()
        .orgs
        .remove(&p.org_id)
        .unwrap()
        .public;
    let statements: Vec<_> = pending
        .iter()
        .filter_map(|(_, d)| d.as_ref())
        .map(|d| patchctl_release::command::verify_command(d, &key, &[]).unwrap())
        .filter(|s| s.operation == "install_updates")
        .collect();
    assert_eq!(statements.len(), 1, "{pending:?}");
    assert_eq!(statements[0].host, web.host);
    assert_eq!(
        statements[0].approval.as_ref().unwrap(),
        &serde_json::from_value::<patchctl_proto::signing::SignedDocument>(good["signed"].clone())
            .unwrap()
    );
    web.round(&p).await;
    assert_eq!(web.installs.len(), 1);
}
