//! Conformance cases of groups: the group `all` every organisation has, selectors over
//! operator tags, agent tags and os-release facts (derived by the database from the
//! stored system document, so a scan that changes the system moves the host between
//! groups), names unique per organisation, revoked hosts left out, organisations apart.

use std::sync::Arc;

use patchctl_proto::policy::groups::{ALL_GROUP, GroupSelector};
use patchctl_proto::scan::ScanState;
use patchctl_storage::{NewGroup, ScanKind, Storage, StorageError};

use super::{host, org, system, t};

fn new_group(name: &str, selector: GroupSelector) -> NewGroup {
    NewGroup {
        name: name.into(),
        description: format!("the {name} hosts"),
        selector,
        actor: "user:alice".into(),
        now: t(5),
    }
}

pub async fn case_groups_select_hosts(store: Arc<dyn Storage>) {
    let a = org(&store, "groups-a").await;
    let b = org(&store, "groups-b").await;
    // Every organisation starts with `all`.
    let groups = store.list_groups(a.id).await.unwrap();
    assert_eq!(groups.len(), 1);
    let all = &groups[0];
    assert_eq!(all.name, ALL_GROUP);
    assert!(all.selector.is_everything() && all.is_builtin());

    // web1: Debian 12 with the agent tag `web` (the test system); alma: AlmaLinux 9.4
    // after a scan; gone: revoked; other: org b.
    let (web1, _) = host(&store, &a, "web1").await;
    let (alma, _) = host(&store, &a, "alma").await;
    let (gone, _) = host(&store, &a, "gone").await;
    let (other, _) = host(&store, &b, "other").await;
    let mut sys = system("alma");
    sys.os.id = "almalinux".into();
    sys.os.id_like = vec!["rhel".into(), "centos".into(), "fedora".into()];
    sys.os.version_id = "9.4".into();
    sys.tags = vec!["db".into()];
    let mut state = ScanState {
        system: sys,
        package_manager: Some("rpm".into()),
        packages: Vec::new(),
        updates: None,
    };
    state.canonicalize();
    store
        .put_scan(alma.id, t(10), &state.digest(), &state, ScanKind::Full)
        .await
        .unwrap();
    assert!(store.revoke_host(a.id, gone.id).await.unwrap());

    // The facts as the database derived them.
    let facts = store.host_facts(a.id, Some(alma.id)).await.unwrap();
    assert_eq!(facts.len(), 1);
    assert_eq!(facts[0].facts.os_id, "almalinux");
    assert_eq!(facts[0].facts.os_like, ["rhel", "centos", "fedora"]);
    assert_eq!(facts[0].facts.os_version, "9.4");
    assert_eq!(facts[0].facts.agent_tags, ["db"]);
    let everyone = store.host_facts(a.id, None).await.unwrap();
    let ids: Vec<_> = everyone.iter().map(|h| h.host_id).collect();
    assert!(ids.contains(&web1.id) && ids.contains(&alma.id));
    assert!(!ids.contains(&gone.id), "revoked hosts are in no group");
    assert!(!ids.contains(&other.id), "organisations stay apart");

    // Operator tags.
    let tags = vec!["prod".to_string(), "eu".to_string()];
    assert!(store.set_host_tags(a.id, web1.id, &tags).await.unwrap());
    assert!(
        !store.set_host_tags(b.id, web1.id, &tags).await.unwrap(),
        "another organisation's host is not found"
    );
    let web1_facts = store.host_facts(a.id, Some(web1.id)).await.unwrap();
    assert_eq!(web1_facts[0].facts.tags, ["eu", "prod"]);
    assert_eq!(web1_facts[0].facts.agent_tags, ["web"]);

    let rhel = store
        .create_group(
            a.id,
            &new_group(
                "rhel9",
                GroupSelector {
                    os: Some("rhel".into()),
                    os_release: Some("9".into()),
                    ..Default::default()
                },
            ),
        )
        .await
        .unwrap();
    let prod = store
        .create_group(
            a.id,
            &new_group(
                "prod-web",
                GroupSelector {
                    tags: vec!["prod".into()],
                    agent_tags: vec!["web".into()],
                    ..Default::default()
                },
            ),
        )
        .await
        .unwrap();
    assert_eq!(prod.created_by, "user:alice");
    assert_eq!(
        store.group_host_ids(a.id, rhel.id).await.unwrap().unwrap(),
        vec![alma.id]
    );
    assert_eq!(
        store.group_host_ids(a.id, prod.id).await.unwrap().unwrap(),
        vec![web1.id]
    );
    let mut both = vec![web1.id, alma.id];
    both.sort();
    assert_eq!(
        store.group_host_ids(a.id, all.id).await.unwrap().unwrap(),
        both
    );
    assert!(
        store.group_host_ids(b.id, rhel.id).await.unwrap().is_none(),
        "another organisation's group is not found"
    );
    let mut in_groups = store.host_group_ids(a.id, web1.id).await.unwrap();
    in_groups.sort();
    let mut want = vec![all.id, prod.id];
    want.sort();
    assert_eq!(in_groups, want);
    let sizes = store
        .group_sizes(a.id, &store.list_groups(a.id).await.unwrap())
        .await
        .unwrap();
    assert_eq!(sizes[&all.id], 2);
    assert_eq!(sizes[&rhel.id], 1);

    // Tags replaced whole: web1 leaves prod-web.
    assert!(store.set_host_tags(a.id, web1.id, &[]).await.unwrap());
    assert!(
        store
            .group_host_ids(a.id, prod.id)
            .await
            .unwrap()
            .unwrap()
            .is_empty()
    );

    // Names are unique per organisation, not across them.
    let dup = store
        .create_group(a.id, &new_group("rhel9", GroupSelector::default()))
        .await
        .unwrap_err();
    assert!(matches!(dup, StorageError::Conflict(_)), "{dup}");
    store
        .create_group(b.id, &new_group("rhel9", GroupSelector::default()))
        .await
        .unwrap();

    // Update and delete.
    let mut change = new_group(
        "rhel",
        GroupSelector {
            os: Some("rhel".into()),
            ..Default::default()
        },
    );
    change.now = t(9);
    let updated = store
        .update_group(a.id, rhel.id, &change)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(updated.name, "rhel");
    assert_eq!(updated.created_at, rhel.created_at);
    assert_eq!(updated.updated_at, t(9));
    assert_eq!(
        store.group_by_name(a.id, "rhel").await.unwrap().unwrap().id,
        rhel.id
    );
    let taken = store
        .update_group(
            a.id,
            rhel.id,
            &new_group("prod-web", GroupSelector::default()),
        )
        .await
        .unwrap_err();
    assert!(matches!(taken, StorageError::Conflict(_)), "{taken}");
    assert!(
        store
            .update_group(b.id, rhel.id, &change)
            .await
            .unwrap()
            .is_none()
    );
    assert!(!store.delete_group(b.id, rhel.id).await.unwrap());
    assert!(store.delete_group(a.id, rhel.id).await.unwrap());
    assert!(store.group(a.id, rhel.id).await.unwrap().is_none());
}
