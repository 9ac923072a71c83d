//! Cursor paging of the operator API through the real router on a real SQLite file:
//! every host and command exactly once across pages, also under a status or host
//! filter; `X-Next-Cursor` and `Link` only when there is more; bad limits and forged
//! cursors refused with their codes.

use std::collections::BTreeSet;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::Utc;
use http_body_util::BodyExt;
use patchctl_proto::agent::SystemInfo;
use patchctl_server::{AppState, Settings};
use patchctl_storage::{NewCommand, NewHost};
use serde_json::Value;
use tower::ServiceExt;

struct Page {
    status: StatusCode,
    body: Value,
    next: Option<String>,
    link: Option<String>,
}

async fn get(state: &AppState, token: &str, path: &str) -> Page {
    let req = Request::builder()
        .uri(path)
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let resp = patchctl_server::app(state.clone())
        .oneshot(req)
        .await
        .unwrap();
    let header = |n: &str| {
        resp.headers()
            .get(n)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let (next, link) = (header("x-next-cursor"), header("link"));
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    Page {
        status,
        body: serde_json::from_slice(&bytes).unwrap(),
        next,
        link,
    }
}

/// Every item of every page of `path` (`?` in it already), following the cursor.
async fn all_pages(state: &AppState, token: &str, path: &str) -> (Vec<Value>, usize) {
    let mut items = Vec::new();
    let mut pages = 0;
    let mut at = path.to_owned();
    loop {
        let p = get(state, token, &at).await;
        assert_eq!(p.status, StatusCode::OK, "{at}: {}", p.body);
        pages += 1;
        items.extend(p.body.as_array().unwrap().iter().cloned());
        match p.next {
            Some(next) => {
                let link = p.link.expect("Link beside X-Next-Cursor");
                assert!(
                    link.starts_with("</api/v1/") && link.ends_with(">; rel=\"next\""),
                    "{link}"
                );
                // The Link is the next page: follow it as a client would.
                at = link[1..link.find('>').unwrap()].to_owned();
                assert!(at.contains(&format!("cursor={next}")), "{at}");
            }
            None => {
                assert!(p.link.is_none());
                return (items, pages);
            }
        }
    }
}

fn ids(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn hosts_and_commands_page_through_every_item_once() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("db.sqlite").display());
    let store = patchctl_storage::open(&url).await.unwrap();
    let settings = Settings {
        metrics_history_len: 10,
        enroll_per_address_per_min: 1_000,
        enroll_per_key_per_min: 1_000,
        vuln_sync: false,
        ..Settings::with_defaults("127.0.0.1:0".parse().unwrap(), url, "unused", "unused")
    };
    let state = AppState::new(store, settings);
    let org = patchctl_server::bootstrap::create_org(state.store.as_ref(), "p")
        .await
        .unwrap();
    let token = org.token.expose().to_owned();
    let org_id = state.store.org_by_name("p").await.unwrap().unwrap().id;
    let key = state
        .store
        .create_enrollment_key(org_id, "k", "paging-key", Utc::now())
        .await
        .unwrap();
    let mut hosts = Vec::new();
    for i in 0..250u32 {
        let h = state
            .store
            .create_host(NewHost {
                org_id,
                enrollment_key_id: key.id,
                credential_hash: format!("cred-{i}"),
                agent_version: "test".into(),
                system: SystemInfo {
                    // Every tenth name is shared by two hosts.
                    hostname: format!("h-{:03}", if i % 10 == 0 { i + 1 } else { i }),
                    ..Default::default()
                },
                now: Utc::now(),
            })
            .await
            .unwrap();
        if i % 8 == 0 {
            state.store.revoke_host(org_id, h.id).await.unwrap();
        }
        hosts.push(h);
    }

    let (items, pages) = all_pages(&state, &token, "/api/v1/hosts?limit=100").await;
    assert_eq!(pages, 3);
    let got = ids(&items);
    let want: BTreeSet<String> = hosts.iter().map(|h| h.id.to_string()).collect();
    assert_eq!(got.len(), 250, "no duplicate");
    assert_eq!(got.iter().cloned().collect::<BTreeSet<_>>(), want);
    // The default page is 100.
    let first = get(&state, &token, "/api/v1/hosts").await;
    assert_eq!(first.body.as_array().unwrap().len(), 100);
    assert!(first.next.is_some());

    // A filter keeps its pages full and its cursor right.
    let (revoked, pages) = all_pages(&state, &token, "/api/v1/hosts?status=revoked&limit=7").await;
    let want: BTreeSet<String> = hosts
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 8 == 0)
        .map(|(_, h)| h.id.to_string())
        .collect();
    assert_eq!(ids(&revoked).len(), want.len());
    assert_eq!(ids(&revoked).into_iter().collect::<BTreeSet<_>>(), want);
    assert_eq!(pages, want.len().div_ceil(7));
    assert!(revoked.iter().all(|h| h["status"] == "revoked"));

    // Commands: newest first, of one host or all.
    let base = Utc::now();
    let mut queued = Vec::new();
    for i in 0..130i64 {
        let now = base + chrono::Duration::milliseconds(i / 3);
        let h = &hosts[1 + (i as usize % 2)];
        let c = state
            .store
            .queue_command(NewCommand {
                id: uuid::Uuid::new_v4(),
                signed: None,
                org_id,
                host_id: h.id,
                kind: "health_check".into(),
                params: serde_json::json!({}),
                now,
                expires_at: now + chrono::Duration::hours(1),
            })
            .await
            .unwrap();
        queued.push((c.id.to_string(), h.id));
    }
    let (items, pages) = all_pages(&state, &token, "/api/v1/commands?limit=50").await;
    assert_eq!(pages, 3);
    let got = ids(&items);
    assert_eq!(got.len(), 130);
    assert_eq!(
        got.iter().collect::<BTreeSet<_>>(),
        queued.iter().map(|(c, _)| c).collect::<BTreeSet<_>>()
    );
    let one = hosts[1].id;
    let (items, _) = all_pages(
        &state,
        &token,
        &format!("/api/v1/commands?host={one}&limit=9"),
    )
    .await;
    assert_eq!(
        ids(&items).into_iter().collect::<BTreeSet<_>>(),
        queued
            .iter()
            .filter(|(_, h)| *h == one)
            .map(|(c, _)| c.clone())
            .collect::<BTreeSet<_>>()
    );

    // Refusals.
    for (path, code) in [
        ("/api/v1/hosts?limit=0", "bad_request"),
        ("/api/v1/hosts?limit=1001", "bad_request"),
        ("/api/v1/commands?cursor=bm90IGpzb24", "bad_cursor"),
        ("/api/v1/hosts?cursor=%21%21", "bad_cursor"),
    ] {
        let p = get(&state, &token, path).await;
        assert_eq!(p.status, StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(p.body["code"], code, "{path}: {}", p.body);
    }
}
