//! Three `patchctl server` processes on one PostgreSQL database (issue 16 §3), set up as
//! the README's "Three nodes on one PostgreSQL" says (`--dev` once for its CA and
//! `server.json`, `admin init` on the database, three nodes with `PATCHCTL_LISTEN` and
//! `PATCHCTL_DATABASE_URL`), with three real agents, one per node, and operators using
//! the CLI through every node:
//!
//! - each command is delivered once (its events: queued, delivered, succeeded), whichever
//!   node queued it and whichever node the agent is connected to;
//! - the findings of every host agree on every node, although each host's scan reached
//!   one node only (vulnerability data imported with `patchctl vulndb import`);
//! - a revoked agent is refused by every node at once, although every node had its
//!   credential cached.
//!
//! Needs PostgreSQL (`PATCHCTL_TEST_POSTGRES_URL`); reported as skipped, with the reason,
//! without it, and a failure under `CI=true`.

#![allow(clippy::disallowed_methods)] // Test harness: starts servers and agents.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use common::{agent_bin, wait_for};
use patchctl_testkit::{Harness, Need, trial};
use serde_json::{Value, json};

fn main() -> ExitCode {
    Harness::new()
        .test(trial!(three_nodes_on_one_postgres).needs([Need::Postgres]))
        .run()
}

fn patchctl() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_patchctl"))
}

/// A child process, killed when dropped; its stderr in a log file.
struct Proc(Child);

impl Proc {
    fn spawn(cmd: &mut Command, log: &Path) -> Proc {
        let f = fs::File::create(log).unwrap();
        Proc(
            cmd.stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(f)
                .env("PATCHCTL_VULN_SYNC", "false")
                .spawn()
                .unwrap(),
        )
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A fresh database on the test server; returns its URL.
fn fresh_database() -> String {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(patchctl_testkit::scratch_postgres("patchctl_nodes"))
}

/// The operator CLI against node `port`.
struct Cli {
    token: String,
    ca: PathBuf,
}

impl Cli {
    fn run(&self, port: u16, args: &[&str]) -> std::process::Output {
        Command::new(patchctl())
            .args(args)
            .env("PATCHCTL_SERVER", format!("https://localhost:{port}"))
            .env("PATCHCTL_TOKEN", &self.token)
            .env("PATCHCTL_CA_FILE", &self.ca)
            .output()
            .unwrap()
    }

    fn json(&self, port: u16, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.extend(["--output", "json"]);
        let out = self.run(port, &a);
        assert!(
            out.status.success(),
            "patchctl {args:?} through :{port} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

/// One heartbeat with `credential` to node `port`: its HTTP status.
fn heartbeat_status(port: u16, ca: &Path, credential: &str) -> u16 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let tls = patchctl_net::client_config(Some(ca)).unwrap();
        let c = patchctl_net::HttpsClient::new(&format!("https://localhost:{port}"), tls).unwrap();
        let body = patchctl_proto::agent::HeartbeatRequest {
            agent_version: "1.0.0".into(),
            metrics: Default::default(),
            agent_target: None,
            update_events: vec![],
            trial: false,
            reboot: None,
            booted_at: None,
            command_key_id: None,
            approvers_serial: None,
        };
        match c
            .json::<_, Value>(
                http::Method::POST,
                "/api/v1/agent/heartbeat",
                Some(credential),
                Some(&body),
            )
            .await
        {
            Ok(_) => 200,
            Err(e) => e.status().unwrap_or(0),
        }
    })
}

fn three_nodes_on_one_postgres() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();

    // 1. `--dev` once, for its development CA and server.json.
    let dev = dir.join("patchctl-dev");
    let dev_port = free_port();
    {
        let _dev = Proc::spawn(
            Command::new(patchctl())
                .args(["server", "--dev", "--no-agent", "--data-dir"])
                .arg(&dev)
                .args(["--listen", &format!("127.0.0.1:{dev_port}")])
                .env_remove("PATCHCTL_DATABASE_URL"),
            &dir.join("dev.log"),
        );
        wait_for("the development set-up", 60, || {
            (dev.join("server.json").exists() && dev.join("dev.json").exists()).then_some(())
        });
    }
    let server_json = dev.join("server.json");
    let ca = dev.join("pki/ca.pem");

    // 2. One PostgreSQL database: its organisation, and vulnerability data naming a
    // package this machine has (dpkg, fixed in a version it cannot have).
    let url = fresh_database();
    let init = Command::new(patchctl())
        .args(["admin", "init", "--org", "acme"])
        .env("PATCHCTL_DATABASE_URL", &url)
        .output()
        .unwrap();
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let secrets: Value = serde_json::from_slice(&init.stdout).unwrap();
    let osv = dir.join("osv.json");
    fs::write(
        &osv,
        serde_json::to_vec(&json!({
            "id": "PCTL-NODES-1",
            "summary": "dpkg issue (test data)",
            "modified": "2026-01-01T00:00:00Z",
            "affected": [{
                "package": {"ecosystem": "Debian:12", "name": "dpkg"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "99.0"}]}]
            }]
        }))
        .unwrap(),
    )
    .unwrap();
    let imported = Command::new(patchctl())
        .args(["vulndb", "import"])
        .arg(&osv)
        .env("PATCHCTL_DATABASE_URL", &url)
        .output()
        .unwrap();
    assert!(
        imported.status.success(),
        "{}",
        String::from_utf8_lossy(&imported.stderr)
    );

    // 3. Three nodes, one after the other (the first creates the organisation's
    // command-signing key in the shared key file).
    let ports = [free_port(), free_port(), free_port()];
    let cli = Cli {
        token: secrets["token"].as_str().unwrap().to_owned(),
        ca: ca.clone(),
    };
    let mut nodes = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        nodes.push(Proc::spawn(
            Command::new(patchctl())
                .args(["server", "--config"])
                .arg(&server_json)
                .env("PATCHCTL_LISTEN", format!("127.0.0.1:{port}"))
                .env("PATCHCTL_DATABASE_URL", &url),
            &dir.join(format!("node{i}.log")),
        ));
        wait_for(&format!("node {i} ready"), 60, || {
            cli.run(*port, &["hosts", "list"])
                .status
                .success()
                .then_some(())
        });
    }

    // 4. Three real agents, one per node.
    let mut agents = Vec::new();
    let mut agent_dirs = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let adir = dir.join(format!("agent{i}"));
        fs::create_dir_all(&adir).unwrap();
        fs::set_permissions(&adir, fs::Permissions::from_mode(0o700)).unwrap();
        let cfg = adir.join("config.json");
        fs::write(
            &cfg,
            serde_json::to_vec_pretty(&json!({
                "server_url": format!("https://localhost:{port}"),
                "license_key": secrets["enrollment_key"],
                "ca_bundle": ca,
                "heartbeat_interval_secs": 5,
                "state_dir": adir.join("state"),
            }))
            .unwrap(),
        )
        .unwrap();
        fs::set_permissions(&cfg, fs::Permissions::from_mode(0o600)).unwrap();
        agents.push(Some(Proc::spawn(
            Command::new(agent_bin())
                .args(["run", "--config"])
                .arg(&cfg),
            &dir.join(format!("agent{i}.log")),
        )));
        agent_dirs.push(adir);
    }
    let identity = |i: usize| -> Value {
        serde_json::from_slice(&fs::read(agent_dirs[i].join("credential.json")).unwrap()).unwrap()
    };
    wait_for("three hosts scanned", 90, || {
        let h = cli.json(ports[0], &["hosts", "list"]);
        let hosts = h.as_array()?;
        (hosts.len() == 3
            && hosts
                .iter()
                .all(|h| h["packages"].as_u64().unwrap_or(0) > 0))
        .then_some(())
    });
    let hosts: Vec<String> = (0..3)
        .map(|i| identity(i)["host_id"].as_str().unwrap().to_owned())
        .collect();

    // 5. Each command delivered once: agent i's command queued through node i+1.
    for (i, host) in hosts.iter().enumerate() {
        for _ in 0..2 {
            let through = ports[(i + 1) % 3];
            let c = cli.json(
                through,
                &[
                    "commands",
                    "queue",
                    "--host",
                    host,
                    "get_package_info",
                    "--param",
                    "name=dpkg",
                    "--wait",
                    "60",
                ],
            );
            assert_eq!(c["state"], "succeeded", "{c}");
            let states: Vec<&str> = c["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["state"].as_str().unwrap())
                .collect();
            assert_eq!(states, ["queued", "delivered", "succeeded"], "{c}");
        }
    }

    // 6. The findings agree on every node (each host's scan reached one node only).
    for host in &hosts {
        let views: Vec<Vec<String>> = ports
            .iter()
            .map(|port| {
                wait_for("the host's findings on every node", 30, || {
                    let v = cli.json(*port, &["vulns", "list", "--host", host]);
                    let ids: Vec<String> = v["findings"]
                        .as_array()?
                        .iter()
                        .filter_map(|f| f["advisory"].as_str().map(str::to_owned))
                        .collect();
                    ids.contains(&"PCTL-NODES-1".to_owned()).then_some(ids)
                })
            })
            .collect();
        assert!(views.windows(2).all(|w| w[0] == w[1]), "{views:?}");
    }

    // 7. Revocation reaches every node: agent 0 stopped, its credential used on every
    // node (each caches it), revoked through node 1, refused by all three at once.
    agents[0] = None;
    let credential = identity(0)["credential"].as_str().unwrap().to_owned();
    for port in ports {
        assert_eq!(heartbeat_status(port, &ca, &credential), 200);
    }
    let revoked = cli.json(ports[1], &["hosts", "revoke", &hosts[0]]);
    assert_eq!(revoked["id"], hosts[0].as_str(), "{revoked}");
    let t = Instant::now();
    for port in ports {
        loop {
            let status = heartbeat_status(port, &ca, &credential);
            if status == 403 {
                break;
            }
            assert!(
                t.elapsed() < Duration::from_secs(3),
                "node :{port} still answers {status} to a credential revoked {:?} ago (its cache keeps it 30 s)",
                t.elapsed()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    drop(agents);
    drop(nodes);
}
