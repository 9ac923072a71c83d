//! What the doctor and trust tests share: a real `patchctl server --dev` on loopback,
//! the real `patchctl-agent` binary as a child process with a private configuration,
//! `patchctl-agent doctor` runs, the operator API over real TLS, and small TLS servers
//! that present the certificate a case needs.

#![allow(dead_code)] // Each test binary uses a different part.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::wait_for;

pub fn patchctl() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_patchctl"))
}

pub use crate::common::agent_bin;

/// A child process whose stderr goes to a log file; killed when dropped.
pub struct Proc {
    pub child: Child,
    pub log: PathBuf,
}

impl Proc {
    pub fn spawn(cmd: &mut Command, log: &Path) -> Proc {
        let err = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let out = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log.with_extension("stdout"))
            .unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .env("RUST_LOG", "debug")
            .spawn()
            .unwrap();
        Proc {
            child,
            log: log.to_owned(),
        }
    }

    /// Waits up to `secs` for the process to exit by itself.
    pub fn wait_exit(&mut self, what: &str, secs: u64) -> ExitStatus {
        wait_for(what, secs, || self.child.try_wait().unwrap())
    }

    /// Still running.
    pub fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running development platform and what `dev.json` says about it.
pub struct Platform {
    pub proc: Proc,
    pub dev: Value,
}

impl Platform {
    /// `patchctl server --dev --no-agent` on 127.0.0.1:0 with its data in `dir`.
    pub fn start(dir: &Path) -> Platform {
        let mut cmd = Command::new(patchctl());
        cmd.args([
            "server",
            "--dev",
            "--no-agent",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(dir)
        .env("PATCHCTL_VULN_SYNC", "false"); // no feed downloads in tests
        let proc = Proc::spawn(&mut cmd, &dir.with_extension("server.log"));
        let dev_json = dir.join("dev.json");
        let dev: Value = wait_for("dev.json", 60, || {
            fs::read(&dev_json)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
        });
        let plat = Platform { proc, dev };
        wait_for("the platform to answer", 60, || {
            plat.cli(&["hosts", "list"]).status.success().then_some(())
        });
        plat
    }

    pub fn url(&self) -> &str {
        self.dev["url"].as_str().unwrap()
    }

    pub fn ca_file(&self) -> &str {
        self.dev["ca_file"].as_str().unwrap()
    }

    pub fn port(&self) -> u16 {
        self.url().rsplit(':').next().unwrap().parse().unwrap()
    }

    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(patchctl())
            .args(args)
            .env("PATCHCTL_SERVER", self.url())
            .env("PATCHCTL_TOKEN", self.dev["token"].as_str().unwrap())
            .env("PATCHCTL_CA_FILE", self.ca_file())
            .output()
            .unwrap()
    }

    pub fn json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.extend(["--output", "json"]);
        let out = self.cli(&a);
        assert!(
            out.status.success(),
            "patchctl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    pub fn hosts(&self) -> Vec<Value> {
        self.json(&["hosts", "list"]).as_array().unwrap().clone()
    }

    /// A client of the platform's API over real TLS, trusting the dev CA.
    pub fn client(&self) -> patchctl_net::HttpsClient {
        let tls = patchctl_net::client_config(Some(Path::new(self.ca_file()))).unwrap();
        patchctl_net::HttpsClient::new(self.url(), tls).unwrap()
    }

    /// An operator API call with the dev token; the JSON answer or the error.
    pub fn api(
        &self,
        method: http::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, patchctl_net::ClientError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(self.client().json::<Value, Value>(
            method,
            path,
            self.dev["token"].as_str(),
            body.as_ref(),
        ))
    }

    /// `GET /api/v1/agent/whoami` with an agent credential.
    pub fn whoami(&self, credential: &str) -> Result<Value, patchctl_net::ClientError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(self.client().json::<(), Value>(
            http::Method::GET,
            "/api/v1/agent/whoami",
            Some(credential),
            None,
        ))
    }
}

/// A private agent directory (0700) with `config.json` (0600) holding `doc`.
pub fn write_config(dir: &Path, doc: &Value) -> PathBuf {
    fs::create_dir_all(dir).unwrap();
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).unwrap();
    let cfg = dir.join("config.json");
    fs::write(&cfg, serde_json::to_vec_pretty(doc).unwrap()).unwrap();
    fs::set_permissions(&cfg, fs::Permissions::from_mode(0o600)).unwrap();
    cfg
}

/// The agent configuration for `plat`, with a 5-second heartbeat and `extra` fields.
pub fn agent_config(dir: &Path, plat: &Platform, extra: Value) -> PathBuf {
    let mut doc = serde_json::json!({
        "server_url": plat.url(),
        "license_key": plat.dev["enrollment_key"],
        "ca_bundle": plat.ca_file(),
        "heartbeat_interval_secs": 5,
        "state_dir": dir.join("state"),
    });
    for (k, v) in extra.as_object().unwrap() {
        doc[k] = v.clone();
    }
    write_config(dir, &doc)
}

pub fn start_agent(cfg: &Path, log: &Path) -> Proc {
    Proc::spawn(
        Command::new(agent_bin()).args(["run", "--config"]).arg(cfg),
        log,
    )
}

/// The stored identity of the agent in `dir`, as JSON.
pub fn identity(dir: &Path) -> Option<Value> {
    fs::read(dir.join("credential.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
}

/// Starts the agent, waits until its host is online with packages, and returns the
/// running agent and the host id.
pub fn enrolled_agent(dir: &Path, plat: &Platform, extra: Value) -> (Proc, String) {
    let cfg = agent_config(dir, plat, extra);
    let agent = start_agent(&cfg, &dir.with_extension("agent.log"));
    let host = wait_for("the agent's credential", 60, || {
        identity(dir).and_then(|v| v["host_id"].as_str().map(str::to_owned))
    });
    wait_for("the host online", 60, || {
        plat.hosts()
            .iter()
            .any(|h| h["id"] == host.as_str() && h["status"] == "online")
            .then_some(())
    });
    (agent, host)
}

/// The result of one `patchctl-agent doctor` run.
pub struct Doctor {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Doctor {
    /// The JSON document of `--output json`.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("doctor's JSON does not parse ({e}): {}", self.stdout))
    }

    /// The check `name` of the JSON document.
    pub fn check(&self, name: &str) -> Value {
        self.json()["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no check {name}: {}", self.stdout))
    }

    /// The level of check `name`.
    pub fn level(&self, name: &str) -> String {
        self.check(name)["level"].as_str().unwrap().to_owned()
    }
}

/// Runs `patchctl-agent doctor --config cfg` with `args`.
pub fn doctor(cfg: &Path, args: &[&str]) -> Doctor {
    let started = Instant::now();
    let out = Command::new(agent_bin())
        .arg("doctor")
        .arg("--config")
        .arg(cfg)
        .args(args)
        .output()
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "doctor took {:?}",
        started.elapsed()
    );
    Doctor {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A TLS 1.3 server on 127.0.0.1:0 presenting `leaf` (PEM files written to `dir`):
/// completes handshakes and closes. Runs until the test process ends.
pub fn tls_server(dir: &Path, leaf: &patchctl_net::testing::TestLeaf, stem: &str) -> u16 {
    let (cert, key) = leaf.write(dir, stem).unwrap();
    let config = patchctl_net::server_config(&cert, &key).unwrap();
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = std_listener.local_addr().unwrap().port();
    std_listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
            let acceptor = tokio_rustls::TlsAcceptor::from(config);
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let _ = acceptor.accept(tcp).await;
                });
            }
        });
    });
    port
}
