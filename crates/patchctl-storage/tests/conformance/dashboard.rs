//! Conformance cases of `DashboardStore`: the command list's filters and keyset pages
//! (every command once, none missing, in order), and the ids of an organisation's
//! hosts that are not revoked.

use std::collections::HashSet;
use std::sync::Arc;

use patchctl_proto::api::CommandState;
use patchctl_storage::{CommandFilter, NewCommand, Storage};
use serde_json::json;
use uuid::Uuid;

use super::{host, org, t};

pub async fn case_dashboard_command_lines(store: Arc<dyn Storage>) {
    let a = org(&store, "dash-a").await;
    let b = org(&store, "dash-b").await;
    let (h1, _) = host(&store, &a, "h1 <b>").await;
    let (h2, _) = host(&store, &a, "h2").await;
    let (hb, _) = host(&store, &b, "other").await;
    let mut ids = Vec::new();
    for i in 0..7 {
        let (h, kind) = if i % 2 == 0 {
            (&h1, "health_check")
        } else {
            (&h2, "refresh")
        };
        // two commands share a queue time: the id breaks the tie
        let at = t(100 + i.min(5));
        let c = store
            .queue_command(NewCommand {
                id: uuid::Uuid::new_v4(),
                signed: None,
                org_id: a.id,
                host_id: h.id,
                kind: kind.into(),
                params: json!({}),
                now: at,
                expires_at: t(10_000),
            })
            .await
            .unwrap();
        ids.push((at, c.id));
    }
    store
        .queue_command(NewCommand {
            id: uuid::Uuid::new_v4(),
            signed: None,
            org_id: b.id,
            host_id: hb.id,
            kind: "health_check".into(),
            params: json!({}),
            now: t(100),
            expires_at: t(10_000),
        })
        .await
        .unwrap();
    store.cancel_command(a.id, ids[0].1, t(200)).await.unwrap();

    // every command of the organisation once, newest first, in pages of 3
    let all = CommandFilter::default();
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let page = store.command_lines(a.id, &all, before, 3).await.unwrap();
        assert!(page.len() <= 3);
        if page.is_empty() {
            break;
        }
        before = page.last().map(|l| (l.created_at, l.id));
        seen.extend(page);
    }
    let mut want = ids.clone();
    want.sort_by(|x, y| y.cmp(x));
    assert_eq!(
        seen.iter()
            .map(|l| (l.created_at, l.id))
            .collect::<Vec<_>>(),
        want
    );
    let h1_line = seen.iter().find(|l| l.host_id == h1.id).unwrap();
    assert_eq!(h1_line.hostname, "h1 <b>");

    // filters: state, kind, host, and all three at once
    let cancelled = CommandFilter {
        state: Some(CommandState::Cancelled),
        ..CommandFilter::default()
    };
    let lines = store
        .command_lines(a.id, &cancelled, None, 50)
        .await
        .unwrap();
    assert_eq!(lines.iter().map(|l| l.id).collect::<Vec<_>>(), [ids[0].1]);
    let refresh = CommandFilter {
        kind: Some("refresh".into()),
        ..CommandFilter::default()
    };
    let lines = store.command_lines(a.id, &refresh, None, 50).await.unwrap();
    assert_eq!(lines.len(), 3);
    assert!(
        lines
            .iter()
            .all(|l| l.kind == "refresh" && l.host_id == h2.id)
    );
    let on_h1 = CommandFilter {
        host_id: Some(h1.id),
        state: Some(CommandState::Queued),
        kind: Some("health_check".into()),
    };
    let lines = store.command_lines(a.id, &on_h1, None, 50).await.unwrap();
    assert_eq!(lines.len(), 3, "four on h1, one of them cancelled");
    // another organisation's host filters to nothing
    let theirs = CommandFilter {
        host_id: Some(hb.id),
        ..CommandFilter::default()
    };
    assert!(
        store
            .command_lines(a.id, &theirs, None, 50)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .command_lines(a.id, &all, None, 0)
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn case_dashboard_active_host_ids(store: Arc<dyn Storage>) {
    let a = org(&store, "ids-a").await;
    let b = org(&store, "ids-b").await;
    let (h1, _) = host(&store, &a, "h1").await;
    let (h2, _) = host(&store, &a, "h2").await;
    let (_, _) = host(&store, &b, "h3").await;
    assert!(store.revoke_host(a.id, h2.id).await.unwrap());
    let ids: HashSet<Uuid> = store
        .active_host_ids(a.id)
        .await
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(ids, HashSet::from([h1.id]));
    assert!(
        store
            .active_host_ids(Uuid::new_v4())
            .await
            .unwrap()
            .is_empty()
    );
}
