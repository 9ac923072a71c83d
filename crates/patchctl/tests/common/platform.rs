//! The real platform for the tests that run an agent elsewhere (a chroot, a container, a
//! private namespace): `patchctl server --dev --no-agent` on the host's loopback, and the
//! operator CLI pointed at it.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use super::wait_for;

/// A running `patchctl server --dev --no-agent`; killed when dropped.
pub struct Platform {
    /// The server process.
    pub child: Option<Child>,
    /// Its data directory.
    pub data: PathBuf,
    /// `dev.json`: url, token, ca_file, enrollment_key, database_url.
    pub dev: Value,
    /// The URL with `127.0.0.1` for `localhost` (a chroot may resolve neither name).
    pub url: String,
    log: PathBuf,
    /// More `PATCHCTL_*` settings of the server, kept for [`Platform::restart`].
    env: Vec<(String, String)>,
}

impl Platform {
    /// Starts the platform on a free loopback port with its data in `data`, its log
    /// (stderr) in `log`, and waits until it answers.
    pub fn start(data: &Path, log: &Path) -> Platform {
        Self::spawn(data, log, true, Vec::new())
    }

    /// [`Platform::start`] with more server settings in the environment
    /// (`PATCHCTL_POLICY_TICK_SECS`, say).
    pub fn start_with(data: &Path, log: &Path, env: &[(&str, &str)]) -> Platform {
        let env = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Self::spawn(data, log, true, env)
    }

    fn spawn(data: &Path, log: &Path, first: bool, env: Vec<(String, String)>) -> Platform {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_patchctl"));
        cmd.args(["server", "--dev", "--no-agent", "--data-dir"])
            .arg(data)
            .env("PATCHCTL_VULN_SYNC", "false") // no feed downloads in tests
            .envs(env.iter().map(|(k, v)| (k, v)));
        if first {
            cmd.args(["--listen", "127.0.0.1:0"]);
        }
        let err = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .unwrap();
        let dev: Value = wait_for("dev.json", 60, || {
            fs::read(data.join("dev.json"))
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
        });
        let url = dev["url"]
            .as_str()
            .unwrap()
            .replace("localhost", "127.0.0.1");
        let p = Platform {
            child: Some(child),
            data: data.to_owned(),
            dev,
            url,
            log: log.to_owned(),
            env,
        };
        wait_for("the platform to answer", 60, || {
            p.cli(&["hosts", "list"]).status.success().then_some(())
        });
        p
    }

    /// Kills the server (SIGKILL) and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the server again on the same data directory (and so the same address).
    pub fn restart(&mut self) {
        self.stop();
        let again = Self::spawn(&self.data, &self.log, false, self.env.clone());
        assert_eq!(again.url, self.url, "the restarted platform moved");
        *self = again;
    }

    /// The enrollment key (the agent config's `license_key`).
    pub fn enrollment_key(&self) -> &str {
        self.dev["enrollment_key"].as_str().unwrap()
    }

    /// The operator's API token.
    pub fn token(&self) -> &str {
        self.dev["token"].as_str().unwrap()
    }

    /// The development CA's certificate file.
    pub fn ca_file(&self) -> &str {
        self.dev["ca_file"].as_str().unwrap()
    }

    /// Runs the CLI against this platform.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_patchctl"))
            .args(args)
            .env("PATCHCTL_SERVER", &self.url)
            .env("PATCHCTL_TOKEN", self.token())
            .env("PATCHCTL_CA_FILE", self.ca_file())
            .output()
            .unwrap()
    }

    /// Runs the CLI with `--output json` and parses its answer.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.extend(["--output", "json"]);
        let out = self.cli(&a);
        assert!(
            out.status.success(),
            "patchctl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Queues `kind` with `params` (`key=value`) for `host`; waits up to `wait` seconds
    /// for its result when `wait` is non-zero.
    pub fn command(&self, host: &str, kind: &str, params: &[&str], wait: u32) -> Value {
        let wait = wait.to_string();
        let mut a = vec!["commands", "queue", "--host", host, kind];
        if wait != "0" {
            a.extend(["--wait", &wait]);
        }
        for p in params {
            a.extend(["--param", p]);
        }
        self.json(&a)
    }

    /// Calls the operator API (`/api/v1/...`) with the operator's token over the
    /// platform's TLS; the JSON answer (`null` when empty), or the client's error (its
    /// status and the API's error code).
    pub fn api(
        &self,
        method: http::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, patchctl_net::ClientError> {
        let tls = patchctl_net::client_config(Some(Path::new(self.ca_file()))).unwrap();
        let client = patchctl_net::HttpsClient::new(&self.url, tls).unwrap();
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(client.json(method, path, Some(self.token()), body))
    }

    /// The agent config for this platform: `server_url`, `license_key`, a 5 s
    /// heartbeat, and `ca_bundle` as given (the path the agent will see).
    pub fn agent_config(&self, ca_bundle: &str) -> Value {
        serde_json::json!({
            "server_url": self.url,
            "license_key": self.enrollment_key(),
            "ca_bundle": ca_bundle,
            "heartbeat_interval_secs": 5,
        })
    }
}

impl Drop for Platform {
    fn drop(&mut self) {
        self.stop();
    }
}
