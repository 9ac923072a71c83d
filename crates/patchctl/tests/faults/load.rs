//! The load the fault tests put on a cluster: simulated agents spread over its nodes,
//! each on its own task of a multi-thread runtime, some of them holding commands until
//! they are delivered again; and the operator calls the tests make while it runs.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::json;
use uuid::Uuid;

use super::sim::{Commands, Ledger, SimAgent};
use crate::common::nodes::Cluster;
use crate::common::wait_for;

/// Simulated agents running against a cluster.
pub struct Load {
    rt: tokio::runtime::Runtime,
    /// What they were acknowledged, and the failures.
    pub ledger: Arc<Ledger>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// Every agent: `(node, host id)`.
    pub agents: Vec<(usize, Uuid)>,
    /// The hosts of the agents that answer a command only when it comes again.
    pub holders: Vec<Uuid>,
}

impl Load {
    /// Enrolls `agents` simulated agents, agent `i` on node `i % nodes`; the first
    /// `holders` answer commands only on redelivery. They start at once.
    pub fn start(cluster: &Cluster, nodes: usize, agents: usize, holders: usize) -> Load {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let ledger = Arc::new(Ledger::default());
        let stop = Arc::new(AtomicBool::new(false));
        let ca = cluster.ca_file.clone();
        let key = cluster.enrollment_key.clone();
        let urls: Vec<String> = (0..nodes).map(|i| cluster.url(i)).collect();
        let sims: Vec<SimAgent> = rt.block_on(async {
            let mut set = tokio::task::JoinSet::new();
            for i in 0..agents {
                let (url, ca, key) = (urls[i % nodes].clone(), ca.clone(), key.clone());
                let commands = if i < holders {
                    Commands::AnswerOnRedelivery
                } else {
                    Commands::Answer
                };
                set.spawn(async move { SimAgent::enroll(&url, &ca, &key, i, commands).await });
            }
            let mut out = Vec::new();
            while let Some(a) = set.join_next().await {
                out.push(a.unwrap());
            }
            out.sort_by_key(|a| a.index);
            out
        });
        let agents_list: Vec<(usize, Uuid)> =
            sims.iter().map(|a| (a.index % nodes, a.host_id)).collect();
        let holders_list = sims[..holders].iter().map(|a| a.host_id).collect();
        let tasks = sims
            .into_iter()
            .map(|a| rt.spawn(a.run(ledger.clone(), stop.clone(), Duration::from_millis(100))))
            .collect();
        Load {
            rt,
            ledger,
            stop,
            tasks,
            agents: agents_list,
            holders: holders_list,
        }
    }

    /// The highest heartbeat number acknowledged per host so far.
    pub fn last_heartbeats(&self) -> HashMap<Uuid, u64> {
        let mut out = HashMap::new();
        for (h, n) in self.ledger.heartbeats.lock().unwrap().iter() {
            let e = out.entry(*h).or_insert(0);
            *e = (*e).max(*n);
        }
        out
    }

    /// Waits until every agent had a heartbeat acknowledged after `since` (the
    /// numbers of [`Load::last_heartbeats`] taken before).
    pub fn wait_all_acknowledged_after(&self, since: &HashMap<Uuid, u64>, secs: u64) {
        wait_for(
            "a heartbeat of every simulated agent acknowledged",
            secs,
            || {
                let now = self.last_heartbeats();
                self.agents
                    .iter()
                    .all(|(_, h)| {
                        now.get(h).copied().unwrap_or(0) > since.get(h).copied().unwrap_or(0)
                    })
                    .then_some(())
            },
        );
    }

    /// How many times `command` was handed to an agent.
    pub fn deliveries(&self, command: Uuid) -> usize {
        self.ledger
            .delivered
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, c)| *c == command)
            .count()
    }

    /// True when the result of `command` was acknowledged.
    pub fn answered(&self, command: Uuid) -> bool {
        self.ledger.results.lock().unwrap().contains(&command)
    }

    /// Stops every agent and waits for them; the ledger.
    pub fn stop(self) -> Arc<Ledger> {
        self.stop.store(true, Ordering::SeqCst);
        let tasks = self.tasks;
        self.rt.block_on(async {
            for t in tasks {
                t.await.unwrap();
            }
        });
        self.ledger
    }
}

/// Queues a `health_check` for `host` through node `node`; the command id.
pub fn queue_health_check(cluster: &Cluster, node: usize, host: Uuid) -> Uuid {
    let body = json!({"host": host.to_string(), "kind": "health_check", "params": {}});
    let v = cluster
        .api(node, http::Method::POST, "/api/v1/commands", Some(&body))
        .unwrap_or_else(|e| panic!("queueing a health_check for {host} on node {node}: {e}"));
    v["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {v}"))
        .parse()
        .unwrap()
}
