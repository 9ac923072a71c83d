//! Conformance cases of the operators' domains: users, sessions, users' tokens
//! (`OperatorStore`) and the append-only audit trail (`AuditStore`).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use patchctl_proto::access::Role;
use patchctl_storage::{
    AuditActor, AuditFilter, AuditOutcome, NewApiToken, NewAuditEntry, NewSession, NewUser,
    Storage, StorageError,
};
use serde_json::json;
use sqlx::Connection;
use uuid::Uuid;

fn t(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(1_700_000_000_000 + secs * 1000).expect("time")
}

fn new_user(org_id: Uuid, username: &str, role: Role) -> NewUser {
    NewUser {
        org_id,
        username: username.to_owned(),
        password_hash: format!("$argon2id$fake-hash-of-{username}"),
        role,
        now: t(0),
    }
}

pub(super) async fn case_users_and_sessions(store: Arc<dyn Storage>) {
    let org = store
        .create_org(&format!("ops-{}", Uuid::new_v4()), t(0))
        .await
        .unwrap();
    let other = store
        .create_org(&format!("ops-{}", Uuid::new_v4()), t(0))
        .await
        .unwrap();
    let name = format!("alice-{}", Uuid::new_v4().simple());
    let alice = store
        .create_user(new_user(org.id, &name, Role::Owner))
        .await
        .unwrap();
    assert_eq!(alice.role, Role::Owner);
    let dup = store
        .create_user(new_user(other.id, &name, Role::Viewer))
        .await;
    assert!(matches!(dup, Err(StorageError::Conflict(_))), "{dup:?}");
    let (found, hash) = store.user_login(&name).await.unwrap().unwrap();
    assert_eq!(found, alice);
    assert_eq!(hash, format!("$argon2id$fake-hash-of-{name}"));
    assert!(store.user_login("nobody-at-all").await.unwrap().is_none());
    // Confined to the organisation.
    assert!(store.user(other.id, alice.id).await.unwrap().is_none());
    assert!(store.user_by_name(other.id, &name).await.unwrap().is_none());
    assert_eq!(
        store.user_by_name(org.id, &name).await.unwrap().unwrap(),
        alice
    );
    let bob_name = format!("bob-{}", Uuid::new_v4().simple());
    let bob = store
        .create_user(new_user(org.id, &bob_name, Role::Viewer))
        .await
        .unwrap();
    let names: Vec<String> = store
        .list_users(org.id)
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.username)
        .collect();
    assert_eq!(names, vec![name.clone(), bob_name.clone()]);
    assert_eq!(store.count_active_owners(org.id).await.unwrap(), 1);
    assert!(
        store
            .set_user_role(org.id, bob.id, Role::Owner)
            .await
            .unwrap()
    );
    assert!(
        !store
            .set_user_role(other.id, bob.id, Role::Viewer)
            .await
            .unwrap()
    );
    assert_eq!(store.count_active_owners(org.id).await.unwrap(), 2);
    assert!(
        store
            .set_user_password(org.id, bob.id, "new-hash", t(5))
            .await
            .unwrap()
    );
    assert_eq!(
        store.user_login(&bob_name).await.unwrap().unwrap().1,
        "new-hash"
    );

    // Sessions: looked up by hash with the user's role now; touched; ended.
    let sid = Uuid::new_v4();
    let secret_hash = format!("hash-{}", Uuid::new_v4().simple());
    store
        .create_session(NewSession {
            id: sid,
            secret_hash: secret_hash.clone(),
            user_id: bob.id,
            org_id: org.id,
            now: t(10),
        })
        .await
        .unwrap();
    let s = store.session_by_hash(&secret_hash).await.unwrap().unwrap();
    assert_eq!(
        (s.id, s.role, s.created_at, s.last_seen_at),
        (sid, Role::Owner, t(10), t(10))
    );
    assert!(s.ended_at.is_none() && !s.user_disabled);
    store.touch_session(sid, t(20)).await.unwrap();
    store.touch_session(sid, t(15)).await.unwrap(); // never backwards
    assert_eq!(
        store
            .session_by_hash(&secret_hash)
            .await
            .unwrap()
            .unwrap()
            .last_seen_at,
        t(20)
    );
    // Disabling ends the sessions and keeps the first time.
    assert!(store.disable_user(org.id, bob.id, t(30)).await.unwrap());
    assert!(store.disable_user(org.id, bob.id, t(40)).await.unwrap());
    let s = store.session_by_hash(&secret_hash).await.unwrap().unwrap();
    assert_eq!(s.ended_at, Some(t(30)));
    assert!(s.user_disabled);
    assert_eq!(
        store
            .user(org.id, bob.id)
            .await
            .unwrap()
            .unwrap()
            .disabled_at,
        Some(t(30))
    );
    assert_eq!(store.count_active_owners(org.id).await.unwrap(), 1);
    assert!(
        !store.end_session(sid, t(50)).await.unwrap(),
        "already ended"
    );
    // A password change ends every session of the user.
    let alice_sid = Uuid::new_v4();
    let alice_hash = format!("hash-{}", Uuid::new_v4().simple());
    store
        .create_session(NewSession {
            id: alice_sid,
            secret_hash: alice_hash.clone(),
            user_id: alice.id,
            org_id: org.id,
            now: t(60),
        })
        .await
        .unwrap();
    assert!(
        store
            .set_user_password(org.id, alice.id, "newer", t(70))
            .await
            .unwrap()
    );
    let s = store.session_by_hash(&alice_hash).await.unwrap().unwrap();
    assert_eq!(s.ended_at, Some(t(70)));
    assert!(
        store
            .session_by_hash("no-such-hash")
            .await
            .unwrap()
            .is_none()
    );
}

pub(super) async fn case_user_tokens(store: Arc<dyn Storage>) {
    let org = store
        .create_org(&format!("tok-{}", Uuid::new_v4()), t(0))
        .await
        .unwrap();
    let name = format!("carol-{}", Uuid::new_v4().simple());
    let carol = store
        .create_user(new_user(org.id, &name, Role::Operator))
        .await
        .unwrap();
    let hash = format!("tokhash-{}", Uuid::new_v4().simple());
    let tok = store
        .insert_api_token(NewApiToken {
            org_id: org.id,
            user_id: Some(carol.id),
            name: "ci".into(),
            token_hash: hash.clone(),
            read_only: true,
            expires_at: Some(t(3600)),
            now: t(0),
        })
        .await
        .unwrap();
    let org_token = store
        .create_api_token(org.id, "org", &format!("orghash-{}", Uuid::new_v4()), t(0))
        .await
        .unwrap();
    assert!(org_token.user_id.is_none() && !org_token.read_only);
    let auth = store.api_token_auth(&hash).await.unwrap().unwrap();
    assert_eq!(auth.token, tok);
    assert_eq!(auth.user.unwrap().id, carol.id);
    assert!(auth.token.read_only && auth.token.expires_at == Some(t(3600)));
    assert!(store.api_token_auth("unknown").await.unwrap().is_none());
    // Last use: written, then not again within a minute.
    store.touch_api_token(tok.id, t(100)).await.unwrap();
    store.touch_api_token(tok.id, t(130)).await.unwrap();
    assert_eq!(
        store
            .api_token(org.id, tok.id)
            .await
            .unwrap()
            .unwrap()
            .last_used_at,
        Some(t(100))
    );
    store.touch_api_token(tok.id, t(161)).await.unwrap();
    assert_eq!(
        store
            .api_token(org.id, tok.id)
            .await
            .unwrap()
            .unwrap()
            .last_used_at,
        Some(t(161))
    );
    let mine = store.list_api_tokens(org.id, Some(carol.id)).await.unwrap();
    assert_eq!(mine.iter().map(|t| t.id).collect::<Vec<_>>(), vec![tok.id]);
    assert_eq!(store.list_api_tokens(org.id, None).await.unwrap().len(), 2);
    assert!(
        store
            .revoke_api_token(org.id, tok.id, t(200))
            .await
            .unwrap()
    );
    assert!(
        store
            .revoke_api_token(org.id, tok.id, t(300))
            .await
            .unwrap()
    );
    let other = store
        .create_org(&format!("tok-{}", Uuid::new_v4()), t(0))
        .await
        .unwrap();
    assert!(
        !store
            .revoke_api_token(other.id, tok.id, t(300))
            .await
            .unwrap()
    );
    assert!(store.api_token(other.id, tok.id).await.unwrap().is_none());
    let auth = store.api_token_auth(&hash).await.unwrap().unwrap();
    assert_eq!(
        auth.token.revoked_at,
        Some(t(200)),
        "the first revocation stays"
    );
}

fn entry(org: Option<Uuid>, secs: i64, action: &str, actor: &str, status: u16) -> NewAuditEntry {
    NewAuditEntry {
        org_id: org,
        at: t(secs),
        actor: AuditActor {
            kind: "token".into(),
            id: Some(Uuid::new_v4().to_string()),
            name: actor.into(),
            user_id: None,
        },
        peer: Some("192.0.2.7".into()),
        method: "POST".into(),
        route: "/api/v1/hosts/{host}/revoke".into(),
        action: action.into(),
        target: json!({"host": "web-01"}),
        details: json!({"host_name": "web-01"}),
        status,
        outcome: AuditOutcome::of_status(status),
        error_code: (status >= 400).then(|| "forbidden".to_owned()),
    }
}

pub(super) async fn case_audit_trail(store: Arc<dyn Storage>) {
    let org = store
        .create_org(&format!("aud-{}", Uuid::new_v4()), t(0))
        .await
        .unwrap();
    let other = store
        .create_org(&format!("aud-{}", Uuid::new_v4()), t(0))
        .await
        .unwrap();
    let a = store
        .append_audit(entry(Some(org.id), 1, "host.revoke", "user alice", 200))
        .await
        .unwrap();
    let b = store
        .append_audit(entry(Some(org.id), 2, "key.create", "user b_o%b", 403))
        .await
        .unwrap();
    let c = store
        .append_audit(entry(None, 3, "unknown", "anonymous", 401))
        .await
        .unwrap();
    store
        .append_audit(entry(Some(other.id), 4, "host.revoke", "user eve", 200))
        .await
        .unwrap();
    assert!(a < b && b < c);
    let all = store
        .list_audit(org.id, &AuditFilter::default(), 100)
        .await
        .unwrap();
    let seqs: Vec<i64> = all
        .iter()
        .map(|e| e.seq)
        .filter(|s| [a, b, c].contains(s))
        .collect();
    assert_eq!(
        seqs,
        vec![c, b, a],
        "newest first, with the unattributed refusal"
    );
    assert!(
        all.iter().all(|e| e.entry.org_id != Some(other.id)),
        "other organisations stay out"
    );
    let first = all.iter().find(|e| e.seq == a).unwrap();
    assert_eq!(
        first.entry,
        entry_like(
            &first.entry,
            Some(org.id),
            1,
            "host.revoke",
            "user alice",
            200
        )
    );
    let only = |f: AuditFilter| {
        let store = store.clone();
        async move {
            store
                .list_audit(org.id, &f, 100)
                .await
                .unwrap()
                .into_iter()
                .map(|e| e.seq)
                .filter(|s| [a, b, c].contains(s))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        only(AuditFilter {
            action: Some("host.".into()),
            ..Default::default()
        })
        .await,
        vec![a]
    );
    // LIKE wildcards in a filter are literal.
    assert_eq!(
        only(AuditFilter {
            actor: Some("b_o%b".into()),
            ..Default::default()
        })
        .await,
        vec![b]
    );
    assert_eq!(
        only(AuditFilter {
            actor: Some("%".into()),
            ..Default::default()
        })
        .await,
        vec![b]
    );
    assert_eq!(
        only(AuditFilter {
            outcome: Some(AuditOutcome::Refused),
            ..Default::default()
        })
        .await,
        vec![c, b]
    );
    assert_eq!(
        only(AuditFilter {
            since: Some(t(2)),
            until: Some(t(3)),
            ..Default::default()
        })
        .await,
        vec![b]
    );
    assert_eq!(
        only(AuditFilter {
            before_seq: Some(b),
            ..Default::default()
        })
        .await,
        vec![a]
    );
    let page = store
        .list_audit(org.id, &AuditFilter::default(), 1)
        .await
        .unwrap();
    assert_eq!(page.len(), 1);
}

/// `got` with the fields the case fixed replaced by the expected values (the actor id
/// is random).
fn entry_like(
    got: &NewAuditEntry,
    org: Option<Uuid>,
    secs: i64,
    action: &str,
    actor: &str,
    status: u16,
) -> NewAuditEntry {
    let mut want = entry(org, secs, action, actor, status);
    want.actor.id = got.actor.id.clone();
    want
}

/// Runs `sql` on the database at `url` directly, returning its error text.
async fn raw(url: String, sql: &'static str) -> Result<(), String> {
    let failed: Option<String> = if url.starts_with("sqlite") {
        let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
        let r = sqlx::query(sql).execute(&mut c).await;
        r.err().map(|e| e.to_string())
    } else {
        let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
        let r = sqlx::query(sql).execute(&mut c).await;
        r.err().map(|e| e.to_string())
    };
    match failed {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

pub(super) async fn case_audit_is_append_only(url: String) {
    let store = super::open_url(&url).await;
    let org = store.create_org("append-only", t(0)).await.unwrap();
    store
        .append_audit(entry(Some(org.id), 1, "host.revoke", "user alice", 200))
        .await
        .unwrap();
    for sql in [
        "UPDATE audit_log SET actor_name = 'someone else'",
        "DELETE FROM audit_log",
    ] {
        let e = raw(url.clone(), sql).await.expect_err(sql);
        assert!(e.contains("append-only"), "{sql}: {e}");
    }
    if !url.starts_with("sqlite") {
        let e = raw(url.clone(), "TRUNCATE audit_log")
            .await
            .expect_err("truncate");
        assert!(e.contains("append-only"), "{e}");
    }
    let left = store
        .list_audit(org.id, &AuditFilter::default(), 10)
        .await
        .unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].entry.actor.name, "user alice");
}

pub(super) async fn case_last_owner_is_kept(store: Arc<dyn Storage>) {
    let org = store
        .create_org(&format!("owners-{}", Uuid::new_v4()), t(0))
        .await
        .unwrap();
    let owner = |n: &str| {
        new_user(
            org.id,
            &format!("{n}-{}", Uuid::new_v4().simple()),
            Role::Owner,
        )
    };
    let a = store.create_user(owner("a")).await.unwrap();
    let b = store.create_user(owner("b")).await.unwrap();
    // Two demotions racing: exactly one passes, one active owner stays.
    for _ in 0..5 {
        let (s1, s2) = (store.clone(), store.clone());
        let (r1, r2) = tokio::join!(
            tokio::spawn(async move { s1.set_user_role(org.id, a.id, Role::Viewer).await }),
            tokio::spawn(async move { s2.set_user_role(org.id, b.id, Role::Viewer).await }),
        );
        let (r1, r2) = (r1.unwrap().unwrap(), r2.unwrap().unwrap());
        assert!(r1 ^ r2, "exactly one demotion passes: {r1} {r2}");
        assert_eq!(store.count_active_owners(org.id).await.unwrap(), 1);
        // Back to two owners for the next round.
        assert!(
            store
                .set_user_role(org.id, a.id, Role::Owner)
                .await
                .unwrap()
        );
        assert!(
            store
                .set_user_role(org.id, b.id, Role::Owner)
                .await
                .unwrap()
        );
    }
    // Disabling: the last active owner stays, and keeps its sessions.
    assert!(store.disable_user(org.id, a.id, t(10)).await.unwrap());
    let sid = Uuid::new_v4();
    let hash = format!("hash-{}", Uuid::new_v4().simple());
    store
        .create_session(NewSession {
            id: sid,
            secret_hash: hash.clone(),
            user_id: b.id,
            org_id: org.id,
            now: t(11),
        })
        .await
        .unwrap();
    assert!(!store.disable_user(org.id, b.id, t(12)).await.unwrap());
    assert!(
        !store
            .set_user_role(org.id, b.id, Role::Admin)
            .await
            .unwrap()
    );
    assert_eq!(store.count_active_owners(org.id).await.unwrap(), 1);
    let s = store.session_by_hash(&hash).await.unwrap().unwrap();
    assert!(s.ended_at.is_none() && !s.user_disabled);
    // A non-owner changes freely; a disabled owner may be demoted.
    assert!(
        store
            .set_user_role(org.id, a.id, Role::Viewer)
            .await
            .unwrap()
    );
}
