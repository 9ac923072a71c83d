//! Conformance cases of what users and API tokens (helper A's service) rely on from
//! `OperatorStore` and `IdentityStore`: usernames unique across organisations, the
//! count of active owners following role changes and disabling, user tokens with
//! scope, expiry, last use and revocation as `api_token_auth` reports them (the caller
//! decides), a disabled user seen through their token, and listings per user.

use std::sync::Arc;

use chrono::Utc;
use patchctl_proto::access::Role;
use patchctl_storage::{NewApiToken, NewUser, Storage, StorageError};
use uuid::Uuid;

use super::{org, t, unique};

fn new_user(org_id: Uuid, name: &str, role: Role) -> NewUser {
    NewUser {
        org_id,
        username: name.to_owned(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".to_owned(),
        role,
        now: t(0),
    }
}

/// Usernames are unique on the whole platform; owners are counted per organisation
/// and only while active.
pub async fn case_users_owners_and_uniqueness(store: Arc<dyn Storage>) {
    let a = org(&store, "users-a").await;
    let b = org(&store, "users-b").await;
    let alice = store
        .create_user(new_user(a.id, "alice", Role::Owner))
        .await
        .expect("create alice");
    assert_eq!(alice.role, Role::Owner);
    assert!(alice.disabled_at.is_none());
    let err = store
        .create_user(new_user(b.id, "alice", Role::Viewer))
        .await
        .expect_err("alice twice");
    assert!(matches!(err, StorageError::Conflict(_)), "{err:?}");
    let bob = store
        .create_user(new_user(a.id, "bob", Role::Owner))
        .await
        .expect("create bob");
    assert_eq!(store.count_active_owners(a.id).await.unwrap(), 2);
    assert_eq!(store.count_active_owners(b.id).await.unwrap(), 0);
    assert!(
        store
            .set_user_role(a.id, bob.id, Role::Admin)
            .await
            .unwrap()
    );
    assert_eq!(store.count_active_owners(a.id).await.unwrap(), 1);
    assert!(
        store
            .set_user_role(a.id, bob.id, Role::Owner)
            .await
            .unwrap()
    );
    assert!(store.disable_user(a.id, bob.id, t(10)).await.unwrap());
    assert_eq!(store.count_active_owners(a.id).await.unwrap(), 1);
    // Another organisation sees none of a's users and changes none of them.
    assert!(store.user(b.id, alice.id).await.unwrap().is_none());
    assert!(store.user_by_name(b.id, "alice").await.unwrap().is_none());
    assert!(
        !store
            .set_user_role(b.id, alice.id, Role::Viewer)
            .await
            .unwrap()
    );
    assert!(!store.disable_user(b.id, alice.id, t(10)).await.unwrap());
    assert!(
        !store
            .set_user_password(b.id, alice.id, "x", Utc::now())
            .await
            .unwrap()
    );
    let names: Vec<String> = store
        .list_users(a.id)
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.username)
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    let bob_now = store.user(a.id, bob.id).await.unwrap().unwrap();
    assert_eq!(bob_now.disabled_at, Some(t(10)));
    // The login lookup finds the user and the hash, across organisations.
    let (u, hash) = store.user_login("alice").await.unwrap().expect("login");
    assert_eq!(u.id, alice.id);
    assert!(hash.starts_with("$argon2id$"));
    assert!(
        store
            .set_user_password(a.id, alice.id, "$argon2id$new", Utc::now())
            .await
            .unwrap()
    );
    assert_eq!(
        store.user_login("alice").await.unwrap().unwrap().1,
        "$argon2id$new"
    );
    assert!(store.user_login("nobody").await.unwrap().is_none());
}

/// A user's token: scope, expiry, last use, revocation and the user's standing, as
/// `api_token_auth` reports them; listings by user.
pub async fn case_token_scope_expiry_and_revocation(store: Arc<dyn Storage>) {
    let a = org(&store, "tokens-a").await;
    let b = org(&store, "tokens-b").await;
    let carol = store
        .create_user(new_user(a.id, "carol", Role::Operator))
        .await
        .unwrap();
    let dave = store
        .create_user(new_user(a.id, "dave", Role::Viewer))
        .await
        .unwrap();
    let hash = unique("tokhash");
    let tok = store
        .insert_api_token(NewApiToken {
            org_id: a.id,
            user_id: Some(carol.id),
            name: "ci".into(),
            token_hash: hash.clone(),
            read_only: true,
            expires_at: Some(t(3600)),
            now: t(0),
        })
        .await
        .expect("insert_api_token");
    assert_eq!(tok.user_id, Some(carol.id));
    assert!(tok.read_only);
    assert_eq!(tok.expires_at, Some(t(3600)));
    assert!(tok.last_used_at.is_none() && tok.revoked_at.is_none());
    store
        .insert_api_token(NewApiToken {
            org_id: a.id,
            user_id: Some(dave.id),
            name: "dave's".into(),
            token_hash: unique("tokhash"),
            read_only: false,
            expires_at: None,
            now: t(0),
        })
        .await
        .unwrap();
    store
        .create_api_token(a.id, "org", &unique("orgtok"), t(0))
        .await
        .unwrap();
    let auth = store.api_token_auth(&hash).await.unwrap().expect("auth");
    assert_eq!(auth.token.id, tok.id);
    assert_eq!(auth.user.as_ref().map(|u| u.id), Some(carol.id));
    assert!(
        store
            .api_token_auth("no such hash")
            .await
            .unwrap()
            .is_none()
    );

    store.touch_api_token(tok.id, t(60)).await.unwrap();
    let listed = store.list_api_tokens(a.id, Some(carol.id)).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].last_used_at.is_some());
    assert_eq!(store.list_api_tokens(a.id, None).await.unwrap().len(), 3);
    assert!(store.list_api_tokens(b.id, None).await.unwrap().is_empty());

    // Another organisation cannot revoke it.
    assert!(!store.revoke_api_token(b.id, tok.id, t(100)).await.unwrap());
    assert!(store.revoke_api_token(a.id, tok.id, t(100)).await.unwrap());
    let auth = store
        .api_token_auth(&hash)
        .await
        .unwrap()
        .expect("still found");
    assert_eq!(auth.token.revoked_at, Some(t(100)));

    // A disabled user is seen through the token.
    assert!(store.disable_user(a.id, carol.id, t(200)).await.unwrap());
    let auth = store.api_token_auth(&hash).await.unwrap().unwrap();
    assert_eq!(auth.user.unwrap().disabled_at, Some(t(200)));
}
