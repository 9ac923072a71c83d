//! Simulated agents for the fault tests: each enrolls over real TLS with
//! `patchctl_net::HttpsClient`, then sends heartbeats, inventories and command results
//! in a loop, and writes down in a [`Ledger`] every request the platform acknowledged
//! (a 2xx), so that the test can check afterwards that each of them is in the database.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::Utc;
use http::Method;
use patchctl_net::{ClientError, HttpsClient};
use serde_json::{Value, json};
use uuid::Uuid;

/// Every acknowledged request, and the failures seen, by kind.
#[derive(Default)]
pub struct Ledger {
    /// `(host, n)` of every heartbeat answered 2xx (`n` is sent as `uptime_secs`).
    pub heartbeats: Mutex<Vec<(Uuid, u64)>>,
    /// The highest inventory number answered 2xx per host (sent as the version of
    /// the package `faults-marker`).
    pub scans: Mutex<HashMap<Uuid, u64>>,
    /// Command ids of results acknowledged (`stored`).
    pub results: Mutex<Vec<Uuid>>,
    /// Every command handed to an agent, in the order received: `(host, command)`.
    pub delivered: Mutex<Vec<(Uuid, Uuid)>>,
    /// Failures by kind (`connect`, `timeout`, `HTTP 503: …`), with a count.
    pub errors: Mutex<BTreeMap<String, u64>>,
}

impl Ledger {
    fn error(&self, e: &ClientError) {
        let kind = match e {
            ClientError::Connect(_) => "connect".to_owned(),
            ClientError::Timeout => "timeout".to_owned(),
            ClientError::Status {
                status, message, ..
            }
            | ClientError::RetryLater {
                status, message, ..
            } => format!("HTTP {status}: {message}"),
            other => format!("other: {other}"),
        };
        *self.errors.lock().unwrap().entry(kind).or_default() += 1;
    }

    /// Failures that are neither "no connection" nor a retryable 503 with a message.
    pub fn unexpected_errors(&self) -> Vec<String> {
        self.errors
            .lock()
            .unwrap()
            .keys()
            .filter(|k| {
                !(k.as_str() == "connect" || k.as_str() == "timeout" || k.starts_with("HTTP 503: "))
            })
            .cloned()
            .collect()
    }

    /// How many requests were acknowledged.
    pub fn acknowledged(&self) -> usize {
        self.heartbeats.lock().unwrap().len()
            + self.scans.lock().unwrap().len()
            + self.results.lock().unwrap().len()
    }
}

/// How a simulated agent treats commands.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Commands {
    /// Posts a result for each command at once.
    Answer,
    /// Holds each command the first time it comes (as if the answer were lost with a
    /// node) and answers it when it is delivered again.
    AnswerOnRedelivery,
}

/// One simulated agent, enrolled.
pub struct SimAgent {
    /// Its number in the run.
    pub index: usize,
    /// Its host id on the platform.
    pub host_id: Uuid,
    client: HttpsClient,
    credential: String,
    commands: Commands,
    /// Commands seen once and held.
    held: HashSet<Uuid>,
}

/// A client of `url` as an agent makes it (its own TLS configuration).
pub fn client(url: &str, ca: &Path) -> HttpsClient {
    let tls = patchctl_net::client_config(Some(ca)).unwrap();
    HttpsClient::new(url, tls)
        .unwrap()
        .with_timeout(Duration::from_secs(10))
}

/// The system a simulated agent reports.
fn system(i: usize) -> Value {
    json!({
        "hostname": format!("faults-{i:03}.example.internal"),
        "ips": [format!("10.99.0.{}", i % 250 + 2)],
        "os": {"id": "debian", "id_like": [], "version_id": "12", "version_codename": "bookworm",
               "pretty_name": "Debian GNU/Linux 12 (bookworm)"},
        "kernel": "6.1.0-28-amd64",
        "arch": "x86_64",
        "cpu_model": "sim",
        "cpu_count": 2,
        "mem_total_bytes": 4_294_967_296u64,
        "disks": [],
    })
}

impl SimAgent {
    /// Enrolls agent `i` through `url`, retrying while the platform is unavailable.
    pub async fn enroll(url: &str, ca: &Path, key: &str, i: usize, commands: Commands) -> Self {
        let client = client(url, ca);
        let req = json!({
            "protocol_version": patchctl_proto::PROTOCOL_VERSION,
            "license_key": key,
            "agent_version": patchctl_agent::VERSION,
            "system": system(i),
        });
        let mut tries = 0;
        let resp: Value = loop {
            match client
                .json(Method::POST, "/api/v1/agent/enroll", None, Some(&req))
                .await
            {
                Ok(v) => break v,
                Err(e) if tries < 50 => {
                    tries += 1;
                    eprintln!("agent {i}: enrollment failed ({e}); again");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!("agent {i}: enrollment failed: {e}"),
            }
        };
        SimAgent {
            index: i,
            host_id: resp["host_id"].as_str().unwrap().parse().unwrap(),
            client,
            credential: resp["credential"].as_str().unwrap().to_owned(),
            commands,
            held: HashSet::new(),
        }
    }

    /// Heartbeat `n`; the commands it carried.
    async fn heartbeat(&self, n: u64) -> Result<Vec<Uuid>, ClientError> {
        let req = json!({
            "agent_version": patchctl_agent::VERSION,
            "metrics": {
                "cpu_percent": 1.0, "load": [0.1, 0.1, 0.1],
                "mem_used_bytes": 1u64 << 30, "mem_total_bytes": 4u64 << 30,
                "swap_used_bytes": 0, "swap_total_bytes": 0, "disks": [],
                "uptime_secs": n,
            },
        });
        let resp: Value = self
            .client
            .json(
                Method::POST,
                "/api/v1/agent/heartbeat",
                Some(&self.credential),
                Some(&req),
            )
            .await?;
        Ok(resp["commands"]
            .as_array()
            .map(|c| {
                c.iter()
                    .filter_map(|e| e["id"].as_str().and_then(|s| s.parse().ok()))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Inventory `n`: one package, `faults-marker` at version `1.n`.
    async fn inventory(&self, n: u64) -> Result<(), ClientError> {
        let req = json!({
            "scanned_at": Utc::now(),
            "system": system(self.index),
            "package_manager": "apt",
            "packages": [{"name": "faults-marker", "version": format!("1.{n}"), "arch": "amd64",
                          "status": "installed"}],
        });
        let _: Value = self
            .client
            .json(
                Method::POST,
                "/api/v1/agent/inventory",
                Some(&self.credential),
                Some(&req),
            )
            .await?;
        Ok(())
    }

    /// Posts the results of `ids`; the ids the platform stored.
    async fn results(&self, ids: &[Uuid]) -> Result<Vec<Uuid>, ClientError> {
        let now = Utc::now();
        let results: Vec<Value> = ids
            .iter()
            .map(|id| {
                json!({"command_id": id, "status": "succeeded", "summary": "simulated",
                       "started_at": now, "finished_at": now})
            })
            .collect();
        let ack: Value = self
            .client
            .json(
                Method::POST,
                "/api/v1/agent/results",
                Some(&self.credential),
                Some(&json!({ "results": results })),
            )
            .await?;
        Ok(ack["stored"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().parse().unwrap())
            .collect())
    }

    /// Sends heartbeats (and every third round an inventory, and the results of the
    /// commands received) until `stop`, writing down what was acknowledged.
    pub async fn run(mut self, ledger: Arc<Ledger>, stop: Arc<AtomicBool>, pause: Duration) {
        let mut n: u64 = 0;
        let mut unanswered: Vec<Uuid> = Vec::new();
        while !stop.load(Ordering::SeqCst) {
            n += 1;
            match self.heartbeat(n).await {
                Ok(commands) => {
                    ledger.heartbeats.lock().unwrap().push((self.host_id, n));
                    for id in commands {
                        ledger.delivered.lock().unwrap().push((self.host_id, id));
                        if self.commands == Commands::AnswerOnRedelivery && self.held.insert(id) {
                            continue;
                        }
                        unanswered.push(id);
                    }
                }
                Err(e) => ledger.error(&e),
            }
            if n % 3 == 0 {
                match self.inventory(n).await {
                    Ok(()) => {
                        let mut scans = ledger.scans.lock().unwrap();
                        let best = scans.entry(self.host_id).or_default();
                        *best = (*best).max(n);
                    }
                    Err(e) => ledger.error(&e),
                }
            }
            if !unanswered.is_empty() {
                match self.results(&unanswered).await {
                    Ok(stored) => {
                        unanswered.retain(|id| !stored.contains(id));
                        ledger.results.lock().unwrap().extend(stored);
                    }
                    Err(e) => ledger.error(&e),
                }
            }
            tokio::time::sleep(pause).await;
        }
    }
}
