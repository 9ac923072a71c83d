//! Conformance case of deployments: created in one transaction with every host row, a
//! duplicate name refused, found by id and name, counts per ring and stage in one
//! grouped query, progress written only in the expected state, pending hosts skipped in
//! bulk with an event each, commands read back in bulk, organisations apart.

use std::sync::Arc;

use patchctl_proto::command::{RebootPolicy, ResultStatus};
use patchctl_proto::policy::deployments::{DeploymentEvent, DeploymentState, HostStage, RingState};
use patchctl_storage::{
    DeploymentRow, NewDeployment, NewDeploymentHost, Progress, RingRow, Storage, StorageError,
};
use uuid::Uuid;

use super::{host, new_command, org, result, t};

fn event(at: i64, subject: &str, ring: Option<u32>, to: &str) -> DeploymentEvent {
    DeploymentEvent {
        at: t(at),
        subject: subject.into(),
        ring,
        host_id: None,
        from: None,
        to: to.into(),
        by: "user alice".into(),
        reason: None,
    }
}

fn ring(index: u32, name: &str, percent: u8, state: RingState) -> RingRow {
    RingRow {
        index,
        name: name.into(),
        percent,
        max_failed_percent: 0,
        soak_minutes: 10,
        state,
        started_at: (state == RingState::Active).then(|| t(10)),
        finished_at: None,
    }
}

pub async fn case_deployments(store: Arc<dyn Storage>) {
    let a = org(&store, "deploy-a").await;
    let b = org(&store, "deploy-b").await;
    let mut hosts = Vec::new();
    for i in 0..5 {
        hosts.push(host(&store, &a, &format!("web-{i}")).await.0);
    }
    let row = DeploymentRow {
        id: Uuid::new_v4(),
        org_id: a.id,
        name: "october".into(),
        manifest_id: Uuid::new_v4(),
        manifest_name: "m-october".into(),
        groups: vec!["all".into()],
        reboot: RebootPolicy::IfRequired,
        state: DeploymentState::Running,
        reason: None,
        current_ring: Some(0),
        host_count: 5,
        created_by: "user alice".into(),
        created_at: t(10),
        updated_at: t(10),
    };
    let new = NewDeployment {
        deployment: row.clone(),
        rings: vec![
            ring(0, "canary", 20, RingState::Active),
            ring(1, "all", 100, RingState::Pending),
        ],
        hosts: hosts
            .iter()
            .enumerate()
            .map(|(i, h)| NewDeploymentHost {
                host_id: h.id,
                ring: u32::from(i > 0),
                stage: if i == 4 {
                    HostStage::Skipped
                } else {
                    HostStage::Pending
                },
                detail: (i == 4).then(|| "the manifest has nothing for Alpine:3.20".into()),
                packages: if i == 4 { 0 } else { 2 },
            })
            .collect(),
        events: vec![
            event(10, "deployment", None, "running"),
            event(10, "ring", Some(0), "active"),
        ],
    };
    store.create_deployment(&new).await.unwrap();
    let twin = NewDeployment {
        deployment: DeploymentRow {
            id: Uuid::new_v4(),
            ..row.clone()
        },
        ..new.clone()
    };
    let again = store.create_deployment(&twin).await;
    assert!(matches!(again, Err(StorageError::Conflict(_))));

    let by_name = store.deployment(a.id, "october").await.unwrap().unwrap();
    assert_eq!(by_name, row);
    let by_id = store
        .deployment(a.id, &row.id.to_string())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_id.name, "october");
    assert!(store.deployment(b.id, "october").await.unwrap().is_none());
    assert!(store.list_deployments(b.id).await.unwrap().is_empty());
    assert_eq!(store.list_deployments(a.id).await.unwrap().len(), 1);
    assert_eq!(store.active_deployments().await.unwrap().len(), 1);

    let rings = store.deployment_rings(row.id).await.unwrap();
    assert_eq!(rings.len(), 2);
    assert_eq!(rings[0].name, "canary");
    assert_eq!(rings[0].started_at, Some(t(10)));
    let counts = store.deployment_stage_counts(row.id).await.unwrap();
    assert_eq!(counts.get(&(0, HostStage::Pending)), Some(&1));
    assert_eq!(counts.get(&(1, HostStage::Pending)), Some(&3));
    assert_eq!(counts.get(&(1, HostStage::Skipped)), Some(&1));

    let all = store.deployment_hosts(row.id, None).await.unwrap();
    assert_eq!(all.len(), 5);
    assert_eq!(all[0].hostname, "web-0");
    assert_eq!(all[0].ring, 0);
    assert_eq!(all[1].hostname, "web-1");
    let ring1 = store.deployment_hosts(row.id, Some(1)).await.unwrap();
    assert_eq!(ring1.len(), 4);

    // A host's progress, with a command read back in bulk.
    let cmd = store
        .queue_command(new_command(&a, &hosts[0], t(20), t(3600)))
        .await
        .unwrap();
    store
        .record_result(
            hosts[0].id,
            &result(cmd.id, ResultStatus::Succeeded, "ok", t(30)),
            t(30),
        )
        .await
        .unwrap();
    let outcomes = store
        .command_outcomes(a.id, &[cmd.id, Uuid::new_v4()])
        .await
        .unwrap();
    assert_eq!(outcomes.len(), 1);
    let o = &outcomes[&cmd.id];
    assert!(o.result.is_some());
    assert_eq!((o.created_at, o.updated_at), (t(20), t(30)));
    assert!(
        store
            .command_outcomes(b.id, &[cmd.id])
            .await
            .unwrap()
            .is_empty()
    );

    let mut h0 = all[0].clone();
    h0.stage = HostStage::Baseline;
    h0.baseline_command = Some(cmd.id);
    h0.baseline_failed_units = Some(vec!["nginx.service".into()]);
    h0.stage_since = t(40);
    h0.updated_at = t(40);
    let progress = Progress {
        expect: Some(DeploymentState::Running),
        hosts: vec![h0.clone()],
        events: vec![event(40, "host", Some(0), "baseline")],
        now: Some(t(40)),
        ..Progress::default()
    };
    assert!(store.save_progress(row.id, &progress).await.unwrap());
    let back = store.deployment_hosts(row.id, Some(0)).await.unwrap();
    assert_eq!(back[0], h0);

    // Paused: a tick that expects running writes nothing.
    let pause = Progress {
        expect: Some(DeploymentState::Running),
        deployment: Some((DeploymentState::Paused, Some("lunch".into()), Some(0))),
        events: vec![event(50, "deployment", None, "paused")],
        now: Some(t(50)),
        ..Progress::default()
    };
    assert!(store.save_progress(row.id, &pause).await.unwrap());
    assert!(!store.save_progress(row.id, &progress).await.unwrap());
    let d = store.deployment(a.id, "october").await.unwrap().unwrap();
    assert_eq!(d.state, DeploymentState::Paused);
    assert_eq!(d.reason.as_deref(), Some("lunch"));
    assert_eq!(d.updated_at, t(50));

    // Cancel: pending hosts skipped in bulk, an event each.
    let mut r0 = rings[0].clone();
    r0.state = RingState::Skipped;
    r0.finished_at = Some(t(60));
    let cancel = Progress {
        expect: Some(DeploymentState::Paused),
        deployment: Some((DeploymentState::Cancelled, Some("by alice".into()), None)),
        rings: vec![r0.clone()],
        skip: Some((vec![HostStage::Pending], "cancelled".into())),
        by: "user alice".into(),
        events: vec![event(60, "deployment", None, "cancelled")],
        now: Some(t(60)),
        ..Progress::default()
    };
    assert!(store.save_progress(row.id, &cancel).await.unwrap());
    let counts = store.deployment_stage_counts(row.id).await.unwrap();
    assert_eq!(counts.get(&(0, HostStage::Baseline)), Some(&1));
    assert_eq!(counts.get(&(1, HostStage::Skipped)), Some(&4));
    assert_eq!(counts.get(&(1, HostStage::Pending)), None);
    assert_eq!(store.deployment_rings(row.id).await.unwrap()[0], r0);
    assert!(store.active_deployments().await.unwrap().is_empty());

    let events = store.deployment_events(row.id).await.unwrap();
    let subjects: Vec<(&str, &str)> = events
        .iter()
        .map(|e| (e.subject.as_str(), e.to.as_str()))
        .collect();
    assert_eq!(
        &subjects[..5],
        &[
            ("deployment", "running"),
            ("ring", "active"),
            ("host", "baseline"),
            ("deployment", "paused"),
            ("deployment", "cancelled"),
        ]
    );
    let skipped: Vec<_> = events[5..].iter().collect();
    assert_eq!(skipped.len(), 3);
    assert!(skipped.iter().all(|e| e.subject == "host"
        && e.from.as_deref() == Some("pending")
        && e.to == "skipped"
        && e.host_id.is_some()
        && e.ring == Some(1)
        && e.reason.as_deref() == Some("cancelled")
        && e.at == t(60)));
}
