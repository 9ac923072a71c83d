//! Conformance cases of approvals, rules, sightings and manifests: one active approval
//! per group and update (approving again is a no-op, a withdrawn one can be approved
//! anew), rules listed per organisation and for the runner, the first sighting of an
//! update kept, manifests frozen with their items, organisations apart.

use std::sync::Arc;

use patchctl_proto::policy::approvals::{MinSeverity, UpdateItem};
use patchctl_storage::{ApprovalRule, Manifest, NewApprovals, Storage, StorageError};
use uuid::Uuid;

use super::{org, t};

fn item(name: &str, version: &str) -> UpdateItem {
    UpdateItem {
        ecosystem: "Debian:12".into(),
        name: name.into(),
        version: version.into(),
    }
}

pub async fn case_approvals_rules_and_manifests(store: Arc<dyn Storage>) {
    let a = org(&store, "approvals-a").await;
    let b = org(&store, "approvals-b").await;
    let all_a = store.group_by_name(a.id, "all").await.unwrap().unwrap();
    let all_b = store.group_by_name(b.id, "all").await.unwrap().unwrap();
    let new = |items: Vec<UpdateItem>, at: i64| NewApprovals {
        group_id: all_a.id,
        items,
        rule: None,
        actor: "user:alice".into(),
        now: t(at),
    };

    let made = store
        .approve(
            a.id,
            &new(
                vec![
                    item("openssl", "3.0.15-1~deb12u1"),
                    item("curl", "7.88.1-10+deb12u8"),
                ],
                10,
            ),
        )
        .await
        .unwrap();
    assert_eq!(made.len(), 2);
    assert_eq!(made[0].item.name, "openssl");
    assert_eq!(made[0].approved_by, "user:alice");
    assert!(made[0].rule.is_none() && made[0].revoked.is_none());
    // Again: nothing new; another version of the same package is another approval.
    let again = store
        .approve(
            a.id,
            &new(
                vec![
                    item("openssl", "3.0.15-1~deb12u1"),
                    item("openssl", "3.0.16-1~deb12u1"),
                ],
                11,
            ),
        )
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].item.version, "3.0.16-1~deb12u1");
    // Another organisation's group is independent.
    let other = store
        .approve(
            b.id,
            &NewApprovals {
                group_id: all_b.id,
                ..new(vec![item("openssl", "3.0.15-1~deb12u1")], 12)
            },
        )
        .await
        .unwrap();
    assert_eq!(other.len(), 1);

    let active = store
        .list_approvals(a.id, Some(all_a.id), false)
        .await
        .unwrap();
    assert_eq!(active.len(), 3);
    assert_eq!(active[0].approved_at, t(11), "newest first");
    // Withdraw one; it can be approved anew; the history keeps both.
    let curl = made.iter().find(|x| x.item.name == "curl").unwrap();
    assert!(
        store
            .revoke_approval(b.id, curl.id, "x", t(13))
            .await
            .unwrap()
            .is_none()
    );
    let gone = store
        .revoke_approval(a.id, curl.id, "user:bob", t(13))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(gone.revoked, Some((t(13), "user:bob".to_string())));
    assert!(
        store
            .revoke_approval(a.id, curl.id, "user:bob", t(14))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store.list_approvals(a.id, None, false).await.unwrap().len(),
        2
    );
    let re = store
        .approve(a.id, &new(vec![item("curl", "7.88.1-10+deb12u8")], 15))
        .await
        .unwrap();
    assert_eq!(re.len(), 1);
    assert_eq!(
        store.list_approvals(a.id, None, true).await.unwrap().len(),
        4
    );

    // Rules.
    let rule = ApprovalRule {
        id: Uuid::new_v4(),
        name: "high-after-3d".into(),
        group_id: all_a.id,
        security_only: true,
        min_severity: MinSeverity::High,
        after_days: 3,
        created_by: "user:alice".into(),
        created_at: t(20),
        last_run_at: None,
    };
    store.create_rule(a.id, &rule).await.unwrap();
    let dup = store
        .create_rule(
            a.id,
            &ApprovalRule {
                id: Uuid::new_v4(),
                ..rule.clone()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(dup, StorageError::Conflict(_)), "{dup}");
    assert_eq!(store.list_rules(a.id).await.unwrap(), vec![rule.clone()]);
    assert!(store.list_rules(b.id).await.unwrap().is_empty());
    store.rule_ran(a.id, rule.id, t(21)).await.unwrap();
    let all = store.all_rules().await.unwrap();
    let mine = all
        .iter()
        .find(|(o, r)| *o == a.id && r.id == rule.id)
        .unwrap();
    assert_eq!(mine.1.last_run_at, Some(t(21)));
    let by_rule = store
        .approve(
            a.id,
            &NewApprovals {
                rule: Some((rule.id, rule.name.clone())),
                ..new(vec![item("zlib1g", "1:1.2.13")], 22)
            },
        )
        .await
        .unwrap();
    assert_eq!(by_rule[0].rule, Some((Some(rule.id), rule.name.clone())));
    assert!(!store.delete_rule(b.id, rule.id).await.unwrap());
    assert!(store.delete_rule(a.id, rule.id).await.unwrap());
    let kept = store.list_approvals(a.id, None, false).await.unwrap();
    let z = kept.iter().find(|x| x.item.name == "zlib1g").unwrap();
    assert_eq!(
        z.rule,
        Some((None, "high-after-3d".to_string())),
        "the rule's name outlives it, its id does not"
    );

    // Sightings keep the first time.
    let first = store
        .sight_updates(a.id, &[item("openssl", "9")], t(30))
        .await
        .unwrap();
    assert_eq!(first[&item("openssl", "9")], t(30));
    let later = store
        .sight_updates(a.id, &[item("openssl", "9"), item("curl", "9")], t(40))
        .await
        .unwrap();
    assert_eq!(later[&item("openssl", "9")], t(30));
    assert_eq!(later[&item("curl", "9")], t(40));
    let b_seen = store
        .sight_updates(b.id, &[item("openssl", "9")], t(50))
        .await
        .unwrap();
    assert_eq!(b_seen[&item("openssl", "9")], t(50), "per organisation");

    // Manifests.
    let m = Manifest {
        id: Uuid::new_v4(),
        name: "2026-12-patch-day".into(),
        group_id: all_a.id,
        group_name: "all".into(),
        created_by: "user:alice".into(),
        created_at: t(60),
        item_count: 2,
    };
    let items = vec![
        item("openssl", "3.0.16-1~deb12u1"),
        item("curl", "7.88.1-10+deb12u8"),
    ];
    store.create_manifest(a.id, &m, &items).await.unwrap();
    let dup = store
        .create_manifest(
            a.id,
            &Manifest {
                id: Uuid::new_v4(),
                ..m.clone()
            },
            &items,
        )
        .await
        .unwrap_err();
    assert!(matches!(dup, StorageError::Conflict(_)), "{dup}");
    let (got, got_items) = store
        .manifest(a.id, "2026-12-patch-day")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, m);
    assert_eq!(
        got_items,
        vec![items[1].clone(), items[0].clone()],
        "by ecosystem and name"
    );
    assert_eq!(
        store
            .manifest(a.id, &m.id.to_string())
            .await
            .unwrap()
            .unwrap()
            .0,
        m
    );
    assert!(
        store
            .manifest(b.id, &m.id.to_string())
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(store.list_manifests(a.id).await.unwrap(), vec![m]);
    // A large manifest goes in whole.
    let many: Vec<UpdateItem> = (0..700)
        .map(|i| item(&format!("pkg{i:04}"), "1.0"))
        .collect();
    let big = Manifest {
        id: Uuid::new_v4(),
        name: "big".into(),
        item_count: 700,
        created_at: t(61),
        ..got
    };
    store.create_manifest(a.id, &big, &many).await.unwrap();
    assert_eq!(
        store.manifest(a.id, "big").await.unwrap().unwrap().1.len(),
        700
    );
}
