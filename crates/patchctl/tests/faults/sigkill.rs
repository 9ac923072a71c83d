//! Fault 1 of issue 16 §4: a platform node SIGKILLed under load, then started again.
//! Simulated agents keep sending heartbeats, inventories and results to every node;
//! real `patchctl-agent` processes talk to the node that is killed. Afterwards every
//! request that got a 2xx is in the database, the commands that were leased before
//! the kill and never answered are delivered again once their lease lapses
//! (`command_lease_secs` = 3), and the real agents' heartbeats resume on their own.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use super::check::nothing_acknowledged_lost;
use super::load::{Load, queue_health_check};
use crate::common::nodes::{Cluster, ScratchPostgres};
use crate::common::{agent_bin, wait_for};

/// The lease of a delivered command, short so that redelivery comes within the test.
const LEASE_SECS: u64 = 3;

/// One SQLite file, one node (SQLite is one platform process's database).
pub fn node_sigkilled_under_load_sqlite() {
    let tmp = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", tmp.path().join("patchctl.db").display());
    sigkill_under_load(tmp.path(), &url, 1);
}

/// A scratch PostgreSQL database, two nodes; node 0 is killed while node 1 serves on.
pub fn node_sigkilled_under_load_postgres() {
    let tmp = tempfile::tempdir().unwrap();
    let base = std::env::var(patchctl_testkit::POSTGRES_ENV).unwrap();
    let db = ScratchPostgres::create(&base, "faults_kill");
    sigkill_under_load(tmp.path(), &db.url, 2);
}

/// A real agent process; killed when dropped.
struct RealAgent {
    child: std::process::Child,
    dir: std::path::PathBuf,
}

impl Drop for RealAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl RealAgent {
    fn start(cluster: &Cluster, node: usize, dir: &Path) -> RealAgent {
        let cfg = cluster.agent_config(node, dir, json!({}));
        let log = std::fs::File::create(dir.with_extension("log")).unwrap();
        let child = Command::new(agent_bin())
            .args(["run", "--config"])
            .arg(&cfg)
            .env("RUST_LOG", "info")
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        RealAgent {
            child,
            dir: dir.to_owned(),
        }
    }

    fn host_id(&mut self) -> Uuid {
        let deadline = std::time::Instant::now() + Duration::from_secs(90);
        loop {
            if let Some(id) = std::fs::read(self.dir.join("credential.json"))
                .ok()
                .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
                .and_then(|v| v["host_id"].as_str()?.parse().ok())
            {
                return id;
            }
            let exited = self.child.try_wait().unwrap();
            assert!(
                std::time::Instant::now() < deadline && exited.is_none(),
                "the real agent in {} did not enroll ({exited:?}); its log:\n{}",
                self.dir.display(),
                crate::common::nodes::tail(&self.dir.with_extension("log"))
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// When `host` was last seen, as node `node` reports it.
fn last_seen(cluster: &Cluster, node: usize, host: Uuid) -> Option<DateTime<Utc>> {
    let v = cluster
        .api(
            node,
            http::Method::GET,
            &format!("/api/v1/hosts/{host}"),
            None,
        )
        .ok()?;
    v["last_seen"].as_str()?.parse().ok()
}

fn sigkill_under_load(dir: &Path, database_url: &str, nodes: usize) {
    let t0 = std::time::Instant::now();
    let phase = |what: &str| eprintln!("[{:5.1} s] {what}", t0.elapsed().as_secs_f64());
    let mut cluster = Cluster::new(
        &dir.join("cluster"),
        database_url,
        json!({ "command_lease_secs": LEASE_SECS }),
    );
    cluster.start(nodes);
    phase("nodes up");
    let mut real: Vec<RealAgent> = (0..2)
        .map(|k| RealAgent::start(&cluster, 0, &dir.join(format!("agent-{k}"))))
        .collect();
    let real_hosts: Vec<Uuid> = real.iter_mut().map(RealAgent::host_id).collect();
    // Their first scans run the host's real apt (an `apt-get update` that waits for the
    // lock while the other tests' agents hold it): the kill comes once both are in
    // their heartbeat loop, so the wait below measures the reconnection, not apt.
    for host in &real_hosts {
        wait_for(
            &format!("the first scan of the real agent {host}"),
            240,
            || {
                cluster
                    .api(0, http::Method::GET, &format!("/api/v1/hosts/{host}"), None)
                    .ok()?["inventory_scanned_at"]
                    .as_str()
                    .map(|_| ())
            },
        );
    }

    phase("real agents enrolled and scanned");
    let load = Load::start(&cluster, nodes, 24, 4);
    phase("simulated agents enrolled");
    // Commands the holders take and keep: leased, never answered before the kill.
    let held: Vec<Uuid> = load
        .holders
        .iter()
        .map(|h| queue_health_check(&cluster, nodes - 1, *h))
        .collect();
    // And some that are answered at once, before or across the kill.
    let answered: Vec<Uuid> = load.agents[4..12]
        .iter()
        .map(|(_, h)| queue_health_check(&cluster, nodes - 1, *h))
        .collect();
    wait_for("the held commands delivered once", 30, || {
        held.iter().all(|c| load.deliveries(*c) >= 1).then_some(())
    });
    phase("held commands delivered once");
    std::thread::sleep(Duration::from_secs(2));
    let before = load.last_heartbeats();
    let acknowledged_before = load.ledger.acknowledged();

    cluster.kill(0);
    phase(&format!(
        "node 0 SIGKILLed with {acknowledged_before} requests acknowledged so far"
    ));
    std::thread::sleep(Duration::from_secs(2));
    cluster.start_node(0);
    let back = Utc::now();
    phase("node 0 answers again");

    load.wait_all_acknowledged_after(&before, 60);
    phase("every simulated agent acknowledged again");
    wait_for(
        "the held commands delivered again after their lease and answered",
        60,
        || {
            held.iter()
                .all(|c| load.deliveries(*c) >= 2 && load.answered(*c))
                .then_some(())
        },
    );
    wait_for("the answered commands' results acknowledged", 60, || {
        answered.iter().all(|c| load.answered(*c)).then_some(())
    });
    phase("held commands delivered again, all results in");
    for host in &real_hosts {
        wait_for(
            &format!("a heartbeat of the real agent {host} after the restart"),
            90,
            || last_seen(&cluster, 0, *host).filter(|t| *t > back),
        );
    }
    phase("real agents' heartbeats resumed");
    let ledger = load.stop();

    let errors = ledger.errors.lock().unwrap().clone();
    eprintln!("failures seen by the simulated agents: {errors:?}");
    assert!(
        errors.contains_key("connect"),
        "no agent noticed the kill: {errors:?}"
    );
    assert_eq!(
        ledger.unexpected_errors(),
        Vec::<String>::new(),
        "failures other than a refused connection or a 503"
    );
    assert!(ledger.acknowledged() > acknowledged_before);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(nothing_acknowledged_lost(database_url, &ledger));
    phase("nothing acknowledged lost");
    rt.block_on(async {
        let store = patchctl_storage::open(database_url).await.unwrap();
        let org = store.org_by_name("default").await.unwrap().unwrap();
        for c in &held {
            let rec = store.command(org.id, *c).await.unwrap().unwrap();
            assert!(
                rec.deliveries >= 2 && rec.result.is_some(),
                "command {c}: {} deliveries, result {:?}",
                rec.deliveries,
                rec.result
            );
        }
    });
    drop(real);
}
