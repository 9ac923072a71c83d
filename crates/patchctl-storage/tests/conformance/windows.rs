//! Conformance cases of `WindowStore`: create, get by id and name, list (per group),
//! update, delete, names unique per organisation, organisations kept apart,
//! `windows_for_groups`, and deleting a group deleting its windows.

use std::sync::Arc;

use patchctl_proto::policy::groups::GroupSelector;
use patchctl_storage::{NewGroup, Storage, StorageError, WindowFields};
use uuid::Uuid;

use super::{org, t};

fn fields(group_id: Uuid, name: &str) -> WindowFields {
    WindowFields {
        group_id,
        name: name.into(),
        days: "sat,sun".into(),
        start_local: "02:00".into(),
        timezone: "Europe/Berlin".into(),
        duration_minutes: 180,
        min_remaining_minutes: 30,
        missed_policy: "next_window".into(),
    }
}

/// A group of `org_id` named `name`.
async fn group(store: &Arc<dyn Storage>, org_id: Uuid, name: &str) -> Uuid {
    let g = NewGroup {
        name: name.into(),
        description: String::new(),
        selector: GroupSelector::default(),
        actor: "user:alice".into(),
        now: t(1),
    };
    store.create_group(org_id, &g).await.unwrap().id
}

pub(super) async fn case_windows_crud(store: Arc<dyn Storage>) {
    let a = org(&store, "windows-a").await;
    let b = org(&store, "windows-b").await;
    let web = group(&store, a.id, "web").await;
    let db = group(&store, a.id, "db").await;
    let other = group(&store, b.id, "web").await;

    let w1 = store
        .create_window(a.id, &fields(web, "weekend"), "user alice", t(10))
        .await
        .unwrap();
    assert_eq!(w1.org_id, a.id);
    assert_eq!(w1.fields, fields(web, "weekend"));
    assert_eq!((w1.created_at, w1.updated_at), (t(10), t(10)));
    assert_eq!(w1.created_by, "user alice");
    let mut nightly = fields(db, "nightly");
    nightly.days = String::new();
    nightly.missed_policy = "immediately".into();
    let w2 = store
        .create_window(a.id, &nightly, "user alice", t(11))
        .await
        .unwrap();
    // The same name in another organisation is another window.
    let w3 = store
        .create_window(b.id, &fields(other, "weekend"), "user bob", t(12))
        .await
        .unwrap();

    // Names are unique per organisation.
    let dup = store
        .create_window(a.id, &fields(db, "weekend"), "x", t(13))
        .await;
    assert!(matches!(dup, Err(StorageError::Conflict(_))), "{dup:?}");

    assert_eq!(store.window(a.id, w1.id).await.unwrap(), Some(w1.clone()));
    assert_eq!(
        store.window(b.id, w1.id).await.unwrap(),
        None,
        "another organisation's"
    );
    assert_eq!(
        store.window_by_name(a.id, "nightly").await.unwrap(),
        Some(w2.clone())
    );
    assert_eq!(store.window_by_name(b.id, "nightly").await.unwrap(), None);

    let all: Vec<_> = store.list_windows(a.id, None).await.unwrap();
    assert_eq!(all, vec![w2.clone(), w1.clone()], "by name");
    assert_eq!(
        store.list_windows(a.id, Some(web)).await.unwrap(),
        vec![w1.clone()]
    );
    assert_eq!(
        store.list_windows(b.id, None).await.unwrap(),
        vec![w3.clone()]
    );

    let both = store.windows_for_groups(a.id, &[web, db]).await.unwrap();
    assert_eq!(both.len(), 2);
    assert!(both.contains(&w1) && both.contains(&w2));
    assert!(
        store
            .windows_for_groups(a.id, &[])
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .windows_for_groups(a.id, &[other])
            .await
            .unwrap()
            .is_empty(),
        "b's group"
    );

    // Update: every field, the creation kept.
    let mut changed = fields(db, "weekend-db");
    changed.duration_minutes = 90;
    changed.timezone = "America/New_York".into();
    let u = store
        .update_window(a.id, w1.id, &changed, t(20))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(u.fields, changed);
    assert_eq!(
        (u.created_at, u.updated_at, u.created_by.as_str()),
        (t(10), t(20), "user alice")
    );
    assert_eq!(store.window(a.id, w1.id).await.unwrap(), Some(u.clone()));
    // Renaming onto a taken name conflicts and changes nothing.
    let clash = store
        .update_window(a.id, w1.id, &fields(db, "nightly"), t(21))
        .await;
    assert!(matches!(clash, Err(StorageError::Conflict(_))), "{clash:?}");
    assert_eq!(store.window(a.id, w1.id).await.unwrap(), Some(u));
    assert_eq!(
        store
            .update_window(b.id, w1.id, &changed, t(22))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .update_window(a.id, Uuid::new_v4(), &changed, t(22))
            .await
            .unwrap(),
        None
    );

    // Delete.
    assert!(
        !store.delete_window(b.id, w2.id).await.unwrap(),
        "another organisation's"
    );
    assert!(store.delete_window(a.id, w2.id).await.unwrap());
    assert!(!store.delete_window(a.id, w2.id).await.unwrap());
    assert_eq!(store.window(a.id, w2.id).await.unwrap(), None);
    assert_eq!(store.list_windows(a.id, None).await.unwrap().len(), 1);
}

pub(super) async fn case_windows_go_with_their_group(store: Arc<dyn Storage>) {
    let a = org(&store, "windows-cascade").await;
    let web = group(&store, a.id, "web").await;
    let db = group(&store, a.id, "db").await;
    store
        .create_window(a.id, &fields(web, "w1"), "x", t(1))
        .await
        .unwrap();
    store
        .create_window(a.id, &fields(web, "w2"), "x", t(1))
        .await
        .unwrap();
    let kept = store
        .create_window(a.id, &fields(db, "w3"), "x", t(1))
        .await
        .unwrap();
    assert!(store.delete_group(a.id, web).await.unwrap());
    assert_eq!(store.list_windows(a.id, None).await.unwrap(), vec![kept]);
    // A window names a group that exists.
    let orphan = store
        .create_window(a.id, &fields(Uuid::new_v4(), "w4"), "x", t(2))
        .await;
    assert!(orphan.is_err(), "{orphan:?}");
}
