//! Reboots over the real platform (TLS 1.3 on loopback, a real SQLite file): agents
//! report reboot-required (with reasons) and their boot time by heartbeat and scan;
//! `GET /api/v1/reboots` lists the hosts needing one, longest waiting first, paged;
//! `hosts show` carries the state; a host that rebooted (a new boot time, no need)
//! leaves the list; an agent from before reboot reporting changes nothing.

mod support;

use axum::http::StatusCode;
use chrono::{DateTime, Duration, Utc};
use patchctl_proto::agent::{HeartbeatRequest, Metrics, RebootState, SystemInfo};
use patchctl_proto::scan::{ScanBody, ScanState, ScanUpload};
use patchctl_server::auth::hash_secret;
use patchctl_storage::NewHost;
use serde_json::Value;
use support::{Platform, platform};
use uuid::Uuid;

/// A host created in the database with agent credential `credential`.
async fn host(p: &Platform, name: &str, credential: &str) -> Uuid {
    let key_secret = p.secrets.lock().unwrap()[1].clone();
    let key = p
        .store
        .enrollment_key_by_hash(&hash_secret(&key_secret))
        .await
        .unwrap()
        .unwrap();
    p.store
        .create_host(NewHost {
            org_id: p.org_id,
            enrollment_key_id: key.id,
            credential_hash: hash_secret(credential),
            agent_version: "1.0.0".into(),
            system: SystemInfo {
                hostname: name.into(),
                ..Default::default()
            },
            now: Utc::now(),
        })
        .await
        .unwrap()
        .id
}

async fn heartbeat(
    p: &Platform,
    credential: &str,
    reboot: Option<RebootState>,
    booted_at: Option<DateTime<Utc>>,
) {
    let hb = HeartbeatRequest {
        agent_version: "1.0.0".into(),
        metrics: Metrics::default(),
        agent_target: None,
        update_events: Vec::new(),
        trial: false,
        reboot,
        booted_at,
        command_key_id: None,
        approvers_serial: None,
    };
    let r = p
        .req(
            "POST",
            "/api/v1/agent/heartbeat",
            Some(credential),
            Some(&serde_json::to_value(&hb).unwrap()),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

fn needs(why: &str) -> Option<RebootState> {
    Some(RebootState {
        required: true,
        reasons: vec![why.into()],
    })
}

fn ids(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|h| h["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_needing_a_reboot_are_listed_fleet_wide() {
    let p = platform().await;
    let viewer = p.caller("viewer").token.clone();
    let (c1, c2, c3) = ("agent-cred-1", "agent-cred-2", "agent-cred-3");
    let h1 = host(&p, "web1", c1).await;
    let h2 = host(&p, "web2", c2).await;
    let h3 = host(&p, "web3", c3).await;
    let booted = Utc::now() - Duration::hours(30);
    let booted = DateTime::from_timestamp(booted.timestamp(), 0).unwrap();

    // h1 by heartbeat; h3 an older agent (says nothing); nothing listed for them yet
    // but h1.
    heartbeat(&p, c1, needs("/run/reboot-required (libc6)"), Some(booted)).await;
    heartbeat(&p, c3, None, None).await;
    let list = p
        .req("GET", "/api/v1/reboots", Some(&viewer), None)
        .await
        .ok();
    assert_eq!(ids(&list), [h1.to_string()]);
    assert_eq!(list[0]["hostname"], "web1");
    assert_eq!(
        list[0]["reboot"]["reasons"][0],
        "/run/reboot-required (libc6)"
    );
    assert_eq!(
        list[0]["reboot"]["booted_at"],
        booted.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    assert!(list[0]["reboot"]["since"].is_string());

    // h2 by a full scan, a little later.
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let mut state = ScanState::default();
    state.canonicalize();
    let upload = ScanUpload {
        scanned_at: Utc::now(),
        digest: state.digest(),
        body: ScanBody::Full { state },
        reboot: needs("needs-restarting -r: Reboot is required"),
    };
    let r = p
        .req(
            "POST",
            "/api/v1/agent/scan",
            Some(c2),
            Some(&serde_json::to_value(&upload).unwrap()),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    // Longest waiting first, one per page.
    let first = p
        .req("GET", "/api/v1/reboots?limit=1", Some(&viewer), None)
        .await;
    let cursor = first.next_cursor.clone().expect("a next page");
    assert_eq!(ids(&first.ok()), [h1.to_string()]);
    let second = p
        .req(
            "GET",
            &format!("/api/v1/reboots?limit=1&cursor={cursor}"),
            Some(&viewer),
            None,
        )
        .await;
    assert!(second.next_cursor.is_none());
    assert_eq!(ids(&second.ok()), [h2.to_string()]);
    let bad = p
        .req("GET", "/api/v1/reboots?cursor=forged", Some(&viewer), None)
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.text);
    assert_eq!(bad.code(), "bad_cursor");

    // hosts show carries it.
    let shown = p
        .req("GET", &format!("/api/v1/hosts/{h1}"), Some(&viewer), None)
        .await
        .ok();
    assert_eq!(shown["reboot"]["required"], true);
    let shown3 = p
        .req("GET", &format!("/api/v1/hosts/{h3}"), Some(&viewer), None)
        .await
        .ok();
    assert_eq!(shown3["reboot"]["required"], false);

    // h1 rebooted: a later boot time, no need; it leaves the list. A heartbeat of an
    // older agent afterwards changes nothing.
    let back = Utc::now();
    let back = DateTime::from_timestamp(back.timestamp(), 0).unwrap();
    heartbeat(
        &p,
        c1,
        Some(RebootState {
            required: false,
            reasons: Vec::new(),
        }),
        Some(back),
    )
    .await;
    heartbeat(&p, c1, None, None).await;
    let list = p
        .req("GET", "/api/v1/reboots", Some(&viewer), None)
        .await
        .ok();
    assert_eq!(ids(&list), [h2.to_string()]);
    let shown = p
        .req("GET", &format!("/api/v1/hosts/{h1}"), Some(&viewer), None)
        .await
        .ok();
    assert_eq!(shown["reboot"]["required"], false);
    assert_eq!(
        shown["reboot"]["booted_at"],
        back.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    // The rollout engine's storage call sees the same.
    let state = p.store.host_boot_state(p.org_id, &[h1, h2]).await.unwrap();
    assert_eq!(state[0].booted_at, Some(back));
    assert!(state[1].reboot_required);

    // No token, no list.
    let r = p.req("GET", "/api/v1/reboots", None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}
