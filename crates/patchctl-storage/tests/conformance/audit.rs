//! Conformance cases of `AuditStore`: the trail is append-only on both backends (an
//! `UPDATE` or `DELETE` of `audit_log`, even by hand, fails and leaves the rows as they
//! were), and its filters and the seq cursor return every matching entry once, newest
//! first, confined to the organisation (plus the entries that name none).

use std::collections::HashSet;
use std::sync::Arc;

use patchctl_storage::{AuditActor, AuditFilter, AuditOutcome, NewAuditEntry, Storage};
use serde_json::json;
use sqlx::Connection;
use uuid::Uuid;

use super::{open_url, org, t};

fn entry(org_id: Option<Uuid>, at: i64, actor: &str, action: &str, status: u16) -> NewAuditEntry {
    NewAuditEntry {
        org_id,
        at: t(at),
        actor: AuditActor {
            kind: "token".into(),
            id: Some(format!("id-{actor}")),
            name: format!("user {actor} (token ci)"),
            user_id: None,
        },
        peer: Some("192.0.2.7:40000".into()),
        method: "POST".into(),
        route: "/api/v1/hosts/{host}/revoke".into(),
        action: action.into(),
        target: json!({"host": "web-1"}),
        details: json!({"host_id": "h", "n": at}),
        status,
        outcome: AuditOutcome::of_status(status),
        error_code: (status >= 400).then(|| "forbidden".to_owned()),
    }
}

/// Runs `sql` on the database at `url`; the error text, if it failed.
async fn exec(url: &str, sql: &str) -> Option<String> {
    let res = if url.starts_with("sqlite") {
        let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::query(sql).execute(&mut c).await.map(|_| ())
    } else {
        let mut c = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query(sql).execute(&mut c).await.map(|_| ())
    };
    res.err().map(|e| e.to_string())
}

/// An `UPDATE` or `DELETE` of the trail fails on both backends, whatever it names, and
/// the rows stay as they were.
pub(super) async fn case_audit_append_only(url: String) {
    let store = open_url(&url).await;
    let o = org(&store, "audited").await;
    let seq = store
        .append_audit(entry(Some(o.id), 1, "alice", "host.revoke", 200))
        .await
        .unwrap();
    store
        .append_audit(entry(None, 2, "nobody", "host.revoke", 401))
        .await
        .unwrap();
    let before = store
        .list_audit(o.id, &AuditFilter::default(), 10)
        .await
        .unwrap();
    assert_eq!(before.len(), 2);
    for sql in [
        format!("UPDATE audit_log SET actor_name = 'mallory' WHERE seq = {seq}"),
        "UPDATE audit_log SET status = 200".to_owned(),
        format!("DELETE FROM audit_log WHERE seq = {seq}"),
        "DELETE FROM audit_log".to_owned(),
    ] {
        let err = exec(&url, &sql)
            .await
            .unwrap_or_else(|| panic!("{sql} succeeded on the append-only trail"));
        assert!(err.contains("append-only"), "{sql}: {err}");
    }
    let after = store
        .list_audit(o.id, &AuditFilter::default(), 10)
        .await
        .unwrap();
    assert_eq!(after, before);
}

/// An appended entry of the paging case: seq, time, actor, action, status.
type Appended = (i64, i64, &'static str, &'static str, u16);

/// Filters (actor, action prefix, outcome, time) and the seq cursor: every matching
/// entry once, newest first; another organisation's entries never.
pub(super) async fn case_audit_filters_and_paging(store: Arc<dyn Storage>) {
    let a = org(&store, "a").await;
    let b = org(&store, "b").await;
    let mut mine: Vec<Appended> = Vec::new();
    for i in 0..57 {
        let (actor, action, status) = match i % 3 {
            0 => ("alice", "host.revoke", 200),
            1 => ("bob", "command.queue", 400),
            _ => ("alice", "command.cancel", 403),
        };
        let seq = store
            .append_audit(entry(Some(a.id), i, actor, action, status))
            .await
            .unwrap();
        mine.push((seq, i, actor, action, status));
        store
            .append_audit(entry(Some(b.id), i, "carol", action, status))
            .await
            .unwrap();
    }
    let none = store
        .append_audit(entry(None, 100, "unknown", "host.revoke", 401))
        .await
        .unwrap();

    // Pages of 10 by the cursor: every entry of a (and the one of no organisation)
    // once, newest first.
    let pages = |f: AuditFilter| {
        let store = store.clone();
        async move {
            let mut seen = Vec::new();
            let mut f = f;
            loop {
                let page = store.list_audit(a.id, &f, 10).await.unwrap();
                assert!(page.len() <= 10);
                let Some(last) = page.last() else { break };
                f.before_seq = Some(last.seq);
                seen.extend(page.iter().map(|e| e.seq));
            }
            seen
        }
    };
    let all = pages(AuditFilter::default()).await;
    let mut expected: Vec<i64> = mine.iter().map(|m| m.0).chain([none]).collect();
    expected.sort_unstable_by(|x, y| y.cmp(x));
    assert_eq!(all, expected, "every entry once, newest first");
    assert_eq!(all.iter().collect::<HashSet<_>>().len(), all.len());

    let want = |keep: &dyn Fn(&Appended) -> bool| {
        let mut v: Vec<i64> = mine.iter().filter(|m| keep(m)).map(|m| m.0).collect();
        v.sort_unstable_by(|x, y| y.cmp(x));
        v
    };
    let got = pages(AuditFilter {
        actor: Some("bob".into()),
        ..AuditFilter::default()
    })
    .await;
    assert_eq!(got, want(&|m| m.2 == "bob"));
    let got = pages(AuditFilter {
        action: Some("command.".into()),
        ..AuditFilter::default()
    })
    .await;
    assert_eq!(got, want(&|m| m.3.starts_with("command.")));
    let got = pages(AuditFilter {
        outcome: Some(AuditOutcome::Refused),
        actor: Some("alice".into()),
        ..AuditFilter::default()
    })
    .await;
    assert_eq!(got, want(&|m| m.4 == 403));
    let got = pages(AuditFilter {
        since: Some(t(10)),
        until: Some(t(20)),
        ..AuditFilter::default()
    })
    .await;
    assert_eq!(got, want(&|m| (10..20).contains(&m.1)));

    // What was appended comes back as it was.
    let one = store
        .list_audit(
            a.id,
            &AuditFilter {
                before_seq: Some(mine[4].0 + 1),
                ..AuditFilter::default()
            },
            1,
        )
        .await
        .unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].seq, mine[4].0);
    assert_eq!(
        one[0].entry,
        entry(Some(a.id), 4, "bob", "command.queue", 400)
    );
}
