//! Fault 2 of issue 16 §4: the PostgreSQL server restarted under load. Two nodes run
//! on a private PostgreSQL instance ([`PrivatePostgres`]: the machine's shared cluster
//! is never restarted); simulated agents keep sending while it is down. Meanwhile the
//! platform answers 503 with a message that says to try again (and `Retry-After`); the
//! nodes stay up and reconnect by themselves; nothing acknowledged is lost.

use std::time::Duration;

use serde_json::json;
use uuid::Uuid;

use super::check::nothing_acknowledged_lost;
use super::load::{Load, queue_health_check};
use super::private_pg::PrivatePostgres;
use crate::common::nodes::Cluster;
use crate::common::wait_for;

/// The private instance's check for the harness.
pub static PRIVATE_POSTGRES: patchctl_testkit::Check = patchctl_testkit::Check {
    what: "a private PostgreSQL instance (root, /usr/lib/postgresql/*/bin, the postgres user)",
    missing: super::private_pg::missing,
};

pub fn postgres_restarted_under_load() {
    let pg = PrivatePostgres::start();
    let url = pg.url("postgres");
    let tmp = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::new(
        &tmp.path().join("cluster"),
        &url,
        json!({ "command_lease_secs": 3 }),
    );
    cluster.start(2);
    let load = Load::start(&cluster, 2, 16, 0);
    let commands: Vec<Uuid> = load.agents[..6]
        .iter()
        .enumerate()
        .map(|(k, (_, h))| queue_health_check(&cluster, k % 2, *h))
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    let before = load.last_heartbeats();
    let acknowledged_before = load.ledger.acknowledged();

    pg.stop();
    eprintln!("PostgreSQL stopped with {acknowledged_before} requests acknowledged so far");
    // While it is down, an operator's call is a clear, retryable refusal.
    let err = cluster
        .api(1, http::Method::GET, "/api/v1/hosts", None)
        .expect_err("the hosts list answered without its database");
    match &err {
        patchctl_net::ClientError::Status {
            status, message, ..
        }
        | patchctl_net::ClientError::RetryLater {
            status, message, ..
        } => {
            assert_eq!(*status, 503, "{err}");
            assert!(message.contains("try again"), "{message}");
        }
        other => panic!("expected a 503 while the database is down, got {other}"),
    }
    let headers = super::raw_headers(&cluster, 1, "/api/v1/hosts");
    assert!(
        headers.contains("retry-after: 5"),
        "no Retry-After on the 503: {headers}"
    );
    std::thread::sleep(Duration::from_secs(3));
    pg.start_again();
    eprintln!("PostgreSQL started again");

    load.wait_all_acknowledged_after(&before, 60);
    wait_for("the commands' results acknowledged", 60, || {
        commands.iter().all(|c| load.answered(*c)).then_some(())
    });
    // A command queued after the restart goes through as well.
    let after = queue_health_check(&cluster, 0, load.agents[7].1);
    wait_for("a command queued after the restart answered", 30, || {
        load.answered(after).then_some(())
    });
    let ledger = load.stop();
    for i in 0..2 {
        assert!(
            cluster.running(i),
            "node {i} died with its database: {}",
            cluster.log(i)
        );
    }
    cluster.wait_all_healthy();

    let errors = ledger.errors.lock().unwrap().clone();
    eprintln!("failures seen by the simulated agents: {errors:?}");
    assert!(
        errors.keys().any(|k| k.starts_with("HTTP 503: ")),
        "no agent was told 503 while the database was down: {errors:?}"
    );
    assert_eq!(
        ledger.unexpected_errors(),
        Vec::<String>::new(),
        "failures other than a refused connection or a 503"
    );
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(nothing_acknowledged_lost(&url, &ledger));
    drop(cluster);
    drop(pg);
}
