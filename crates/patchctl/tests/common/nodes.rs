//! Several real `patchctl server` processes on one database: the harness of the fault
//! tests (issue 16 §4) and of the multi-node test (§3).
//!
//! [`Cluster::new`] prepares what every node shares: one development PKI (a CA and a
//! server certificate for `localhost`, `127.0.0.1`, `::1`), one database URL (a SQLite
//! file or a PostgreSQL database) initialised by `patchctl admin init` (an organisation,
//! its API token and enrollment key), and one command-signing key file (made by the
//! first node that starts). [`Cluster::start_node`] starts node `i` (`patchctl server
//! --config node-i.json`, on its own loopback port, kept across restarts) and waits until
//! `/api/v1/health` answers; [`Cluster::kill`] SIGKILLs it, [`Cluster::restart`] starts
//! it again on the same port.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::wait_for;

/// What every node of a cluster shares, and the nodes started so far.
pub struct Cluster {
    /// The directory holding the PKI, the node configurations and their logs.
    pub dir: PathBuf,
    /// The database every node uses.
    pub database_url: String,
    /// The development CA's certificate (the agents' and the CLI's CA bundle).
    pub ca_file: PathBuf,
    /// The organisation's API token.
    pub token: String,
    /// The organisation's enrollment key.
    pub enrollment_key: String,
    cert: PathBuf,
    key: PathBuf,
    /// Server settings every node gets (`server.json` keys), beside the harness's own.
    settings: BTreeMap<String, Value>,
    /// The address the nodes listen on and are reached at (`127.0.0.1` unless
    /// [`Cluster::new_on`] says otherwise).
    host: String,
    nodes: BTreeMap<usize, Node>,
}

/// One node: its port (fixed for its life), configuration, log and process.
pub struct Node {
    /// The loopback port it listens on.
    pub port: u16,
    /// Its `server.json`.
    pub config: PathBuf,
    /// Its stderr (appended over restarts).
    pub log: PathBuf,
    child: Option<Child>,
}

/// A port free on loopback now (bound, then released for the node to take).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Cluster {
    /// Prepares a cluster in `dir` on `database_url`: the PKI, the organisation (by
    /// `patchctl admin init`) and the settings every node gets (`server.json` keys
    /// such as `command_lease_secs`, over the harness's: no feed sync, a long metrics
    /// history). No node runs yet.
    pub fn new(dir: &Path, database_url: &str, settings: Value) -> Cluster {
        Self::new_on(dir, database_url, settings, "127.0.0.1")
    }

    /// [`Cluster::new`] with the nodes listening on `host` (an address of this
    /// machine, e.g. the host end of a veth pair), which their certificate names too.
    pub fn new_on(dir: &Path, database_url: &str, settings: Value, host: &str) -> Cluster {
        fs::create_dir_all(dir).unwrap();
        let mut names: Vec<String> = ["localhost", "127.0.0.1", "::1"]
            .map(str::to_owned)
            .to_vec();
        if !names.iter().any(|n| n == host) {
            names.push(host.to_owned());
        }
        let pki = patchctl_net::devca::ensure_dev_pki(&dir.join("pki"), &names).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_patchctl"))
            .args(["admin", "init", "--database-url", database_url])
            .env_remove("PATCHCTL_DATABASE_URL")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "patchctl admin init on the cluster's database failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let init: Value = serde_json::from_slice(&out.stdout).unwrap();
        let mut base: BTreeMap<String, Value> = [
            ("vuln_sync", json!(false)),
            // The most the platform keeps (every acknowledged heartbeat must still be
            // there when the fault tests look; their load stays under it per host).
            ("metrics_history_len", json!(2_016)),
            // The simulated agents send back to back, far above a real agent's rate.
            ("agent_per_credential_per_min", json!(1_000_000)),
            ("agent_per_address_per_min", json!(100_000_000)),
            ("heartbeat_interval_secs", json!(2)),
            (
                "command_signing_key",
                json!(dir.join("command-signing.key")),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        for (k, v) in settings.as_object().cloned().unwrap_or_default() {
            base.insert(k, v);
        }
        Cluster {
            dir: dir.to_owned(),
            database_url: database_url.to_owned(),
            ca_file: pki.ca_cert,
            token: init["token"].as_str().unwrap().to_owned(),
            enrollment_key: init["enrollment_key"].as_str().unwrap().to_owned(),
            cert: pki.server_cert,
            key: pki.server_key,
            settings: base,
            host: host.to_owned(),
            nodes: BTreeMap::new(),
        }
    }

    /// Starts nodes `0..n` one after the other (the first makes the signing key).
    pub fn start(&mut self, n: usize) {
        for i in 0..n {
            self.start_node(i);
        }
    }

    /// Starts node `i` of the cluster (again, after a kill: on the same port) and waits
    /// until it answers `/api/v1/health`.
    pub fn start_node(&mut self, i: usize) {
        let settings = self.settings.clone();
        let host = self.host.clone();
        let (db, cert, key, dir) = (
            self.database_url.clone(),
            self.cert.clone(),
            self.key.clone(),
            self.dir.clone(),
        );
        let node = self.nodes.entry(i).or_insert_with(|| {
            let port = free_port();
            let mut doc = json!({
                "listen": format!("{host}:{port}"),
                "database_url": db,
                "tls_cert": cert,
                "tls_key": key,
            });
            for (k, v) in settings {
                doc[k] = v;
            }
            let config = dir.join(format!("node-{i}.json"));
            fs::write(&config, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
            Node {
                port,
                config,
                log: dir.join(format!("node-{i}.log")),
                child: None,
            }
        });
        assert!(node.child.is_none(), "node {i} is already running");
        let err = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)
            .unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_patchctl"));
        cmd.args(["server", "--config"]).arg(&node.config);
        // The node's settings are its file's: no PATCHCTL_* of the test's environment.
        for (k, _) in std::env::vars() {
            if k.starts_with("PATCHCTL_") {
                cmd.env_remove(k);
            }
        }
        let child = cmd
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .unwrap();
        node.child = Some(child);
        let url = self.url(i);
        let log = self.nodes[&i].log.clone();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if self.healthy(i) {
                return;
            }
            let node = self.nodes.get_mut(&i).unwrap();
            if let Some(status) = node.child.as_mut().unwrap().try_wait().unwrap() {
                node.child = None;
                panic!(
                    "node {i} ({url}) exited with {status} before it answered; its log:\n{}",
                    tail(&log)
                );
            }
            assert!(
                Instant::now() < deadline,
                "node {i} ({url}) did not answer /api/v1/health within 60 s; its log:\n{}",
                tail(&log)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// True when node `i` answers `GET /api/v1/health` with 200.
    pub fn healthy(&self, i: usize) -> bool {
        let client = self.client(i).with_timeout(Duration::from_secs(2));
        runtime()
            .block_on(client.json::<(), Value>(http::Method::GET, "/api/v1/health", None, None))
            .is_ok_and(|v| v["status"] == "ok")
    }

    /// SIGKILLs node `i` and reaps it.
    pub fn kill(&mut self, i: usize) {
        let node = self.nodes.get_mut(&i).expect("no such node");
        if let Some(mut c) = node.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGKILLs node `i` and starts it again on the same port.
    pub fn restart(&mut self, i: usize) {
        self.kill(i);
        self.start_node(i);
    }

    /// True while node `i`'s process runs.
    pub fn running(&mut self, i: usize) -> bool {
        self.nodes
            .get_mut(&i)
            .and_then(|n| n.child.as_mut())
            .is_some_and(|c| c.try_wait().unwrap().is_none())
    }

    /// Node `i`'s URL (`https://127.0.0.1:PORT`, or the address of [`Cluster::new_on`]).
    pub fn url(&self, i: usize) -> String {
        format!("https://{}:{}", self.host, self.nodes[&i].port)
    }

    /// The process id of node `i`, while it runs.
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.nodes[&i].child.as_ref().map(Child::id)
    }

    /// Node `i`'s log so far.
    pub fn log(&self, i: usize) -> String {
        fs::read_to_string(&self.nodes[&i].log).unwrap_or_default()
    }

    /// A client of node `i` over real TLS, trusting the cluster's CA.
    pub fn client(&self, i: usize) -> patchctl_net::HttpsClient {
        let tls = patchctl_net::client_config(Some(&self.ca_file)).unwrap();
        patchctl_net::HttpsClient::new(&self.url(i), tls).unwrap()
    }

    /// An operator API call on node `i` with the organisation's token (from a thread
    /// that is not inside a tokio runtime).
    pub fn api(
        &self,
        i: usize,
        method: http::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, patchctl_net::ClientError> {
        runtime().block_on(self.client(i).json(method, path, Some(&self.token), body))
    }

    /// Runs the CLI against node `i`.
    pub fn cli(&self, i: usize, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_patchctl"))
            .args(args)
            .env("PATCHCTL_SERVER", self.url(i))
            .env("PATCHCTL_TOKEN", &self.token)
            .env("PATCHCTL_CA_FILE", &self.ca_file)
            .output()
            .unwrap()
    }

    /// A real agent's configuration for node `i` in the private directory `dir`
    /// (heartbeat every 5 s, the least it takes; `extra` fields over it); the file's path.
    pub fn agent_config(&self, i: usize, dir: &Path, extra: Value) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        fs::create_dir_all(dir).unwrap();
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).unwrap();
        let mut doc = json!({
            "server_url": self.url(i),
            "license_key": self.enrollment_key,
            "ca_bundle": self.ca_file,
            "heartbeat_interval_secs": 5,
            "state_dir": dir.join("state"),
        });
        for (k, v) in extra.as_object().cloned().unwrap_or_default() {
            doc[k] = v;
        }
        let cfg = dir.join("config.json");
        fs::write(&cfg, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
        fs::set_permissions(&cfg, fs::Permissions::from_mode(0o600)).unwrap();
        cfg
    }

    /// Waits until every node started so far answers.
    pub fn wait_all_healthy(&self) {
        for &i in self.nodes.keys() {
            wait_for(&format!("node {i} healthy"), 60, || {
                self.healthy(i).then_some(())
            });
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in self.nodes.values_mut() {
            if let Some(mut c) = node.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

/// The last 4,000 bytes of a log file.
pub fn tail(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let start = text.len().saturating_sub(4000);
    let start = (start..text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(text.len());
    text[start..].to_owned()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A scratch database on the PostgreSQL server of `PATCHCTL_TEST_POSTGRES_URL`,
/// dropped (with its connections) when this is dropped.
pub struct ScratchPostgres {
    /// The scratch database's URL.
    pub url: String,
    base: String,
    name: String,
}

impl ScratchPostgres {
    /// Creates a fresh database named `patchctl_<prefix>_<random>` on the server of
    /// `base` (a URL of one of its databases).
    pub fn create(base: &str, prefix: &str) -> ScratchPostgres {
        let name = format!("patchctl_{prefix}_{}", uuid::Uuid::new_v4().simple());
        psql(base, &format!("CREATE DATABASE {name}"));
        let (main, query) = base
            .split_once('?')
            .map_or((base, None), |(m, q)| (m, Some(q)));
        let start = main.find("://").map_or(0, |i| i + 3);
        let root = main[start..].find('/').map_or(main, |i| &main[..start + i]);
        let url = match query {
            Some(q) => format!("{root}/{name}?{q}"),
            None => format!("{root}/{name}"),
        };
        ScratchPostgres {
            url,
            base: base.to_owned(),
            name,
        }
    }
}

impl Drop for ScratchPostgres {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let _ = std::panic::catch_unwind(|| psql(&self.base, &sql));
    }
}

/// Runs one statement on the server of `url` (through sqlx, outside any runtime).
pub fn psql(url: &str, sql: &str) {
    use sqlx::Connection;
    runtime().block_on(async {
        let mut conn = sqlx::PgConnection::connect(url)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to PostgreSQL for {sql:?}: {e}"));
        sqlx::raw_sql(sql).execute(&mut conn).await.unwrap();
        let _ = conn.close().await;
    });
}
