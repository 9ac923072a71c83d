//! The platform under test: one `patchctl server --config server.json` child process
//! (the release binary), on SQLite or on a scratch PostgreSQL database, with a
//! development PKI, the file-descriptor limit it inherits raised, and the run's
//! limits in its environment. It can be killed (SIGKILL) and started again on the same
//! port and database, for the reconnect storm. On PostgreSQL, further nodes on the same
//! configuration and database can be started ([`Platform::start_node`]).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context;
use http::Method;
use patchctl_net::{DevPki, HttpsClient, client_config, ensure_dev_pki};
use patchctl_proto::Secret;
use patchctl_proto::trust::{CreatedEnrollmentKey, NewEnrollmentKey};

use crate::pg::ScratchDb;
use crate::procs::{ChildGuard, Mem, mem};

/// Longest wait for the platform to answer `/api/v1/health`.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The limits the platform is started with (environment variables; the last three are
/// read only by platforms that have them, others ignore unknown variables).
pub const LIMIT_ENV: [(&str, &str); 5] = [
    ("PATCHCTL_ENROLL_PER_ADDRESS_PER_MIN", "1000000"),
    ("PATCHCTL_ENROLL_PER_KEY_PER_MIN", "10000000"),
    ("PATCHCTL_AGENT_PER_CREDENTIAL_PER_MIN", "600"),
    ("PATCHCTL_AGENT_PER_ADDRESS_PER_MIN", "600"),
    ("PATCHCTL_MAX_CONNECTIONS", "1000000"),
];

/// Where the platform keeps its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Database {
    /// A SQLite file in the run's temporary directory.
    Sqlite,
    /// A scratch PostgreSQL database, dropped afterwards.
    Postgres,
}

impl Database {
    /// Name in reports.
    pub fn label(self) -> &'static str {
        match self {
            Database::Sqlite => "SQLite",
            Database::Postgres => "PostgreSQL",
        }
    }
}

/// `/proc/sys/fs/nr_open`: the most a process may be allowed to open.
pub fn nr_open() -> u64 {
    std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(1_048_576)
}

/// Raises this process's `RLIMIT_NOFILE` to `want` (soft and hard: as root with
/// `CAP_SYS_RESOURCE`), else the soft limit to the hard one; returns the soft limit.
/// Children started afterwards inherit it.
pub fn raise_nofile(want: u64) -> u64 {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if setrlimit(Resource::RLIMIT_NOFILE, want, want).is_err()
        && let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
    {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
    getrlimit(Resource::RLIMIT_NOFILE)
        .map(|(soft, _)| soft)
        .unwrap_or(0)
}

/// Open file descriptors of a process (`/proc/PID/fd`).
pub fn fds(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count() as u64)
        .unwrap_or(0)
}

/// CPU time (user + system) a process has used, from `/proc/PID/stat` (clock ticks of
/// 10 ms, the Linux `USER_HZ`).
pub fn cpu_time(pid: u32) -> std::time::Duration {
    stat_cpu(&format!("/proc/{pid}/stat"))
}

/// CPU time of this process's threads named `name` (`/proc/self/task/*/stat`), e.g. the
/// bare server's runtime threads inside the simulator.
pub fn threads_cpu(name: &str) -> std::time::Duration {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return std::time::Duration::ZERO;
    };
    tasks
        .flatten()
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim_end() == name)
        })
        .map(|t| stat_cpu(&t.path().join("stat").to_string_lossy()))
        .sum()
}

fn stat_cpu(path: &str) -> std::time::Duration {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    // Fields after the command name (which may hold spaces) in parentheses.
    let after = text.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<u64> = after
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // utime and stime are fields 14 and 15 of the line: 12 and 13 after the name.
    let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
    std::time::Duration::from_millis(ticks * 10)
}

/// The running platform and what is needed to talk to it.
pub struct Platform {
    child: Option<ChildGuard>,
    bin: PathBuf,
    config: PathBuf,
    log: PathBuf,
    /// Its address.
    pub addr: SocketAddr,
    /// `https://127.0.0.1:PORT`.
    pub url: String,
    /// The development PKI (its CA is what agents trust).
    pub pki: DevPki,
    /// An organisation API token (operator).
    pub token: Secret,
    /// The enrollment key made for the run through the operator API.
    pub enrollment_key: Secret,
    scratch: Option<ScratchDb>,
    _dir: tempfile::TempDir,
}

fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

impl Platform {
    /// Sets up the data, the PKI and the configuration, starts the platform and makes
    /// an enrollment key.
    pub async fn start(
        bin: &Path,
        db: Database,
        postgres_url: &str,
        heartbeat_secs: u64,
    ) -> anyhow::Result<Platform> {
        if !bin.is_file() {
            anyhow::bail!(
                "{} not found: build it with `{}` (or pass --patchctl-bin)",
                bin.display(),
                crate::footprint::BUILD_HINT
            );
        }
        let dir = tempfile::Builder::new()
            .prefix("patchctl-bench-fleet-")
            .tempdir()?;
        let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        let pki = ensure_dev_pki(&dir.path().join("pki"), &names)?;
        let scratch = match db {
            Database::Postgres => Some(ScratchDb::create(postgres_url).await?),
            Database::Sqlite => None,
        };
        let database_url = match &scratch {
            Some(s) => s.url.clone(),
            None => format!("sqlite://{}", dir.path().join("patchctl.db").display()),
        };
        // The organisation and its first token, as `patchctl admin init` makes them.
        let secrets = {
            let store = patchctl_storage::open(&database_url).await?;
            patchctl_server::bootstrap::create_org(store.as_ref(), "fleet").await?
        };
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
        let config = dir.path().join("server.json");
        let json = serde_json::json!({
            "listen": addr.to_string(),
            "database_url": database_url,
            "tls_cert": pki.server_cert,
            "tls_key": pki.server_key,
            "heartbeat_interval_secs": heartbeat_secs,
            "vuln_sync": false,
            "command_signing_key": dir.path().join("command-signing.key"),
        });
        std::fs::write(&config, serde_json::to_vec_pretty(&json)?)?;
        let mut p = Platform {
            child: None,
            bin: bin.to_owned(),
            config,
            log: dir.path().join("server.log"),
            addr,
            url: format!("https://{addr}"),
            pki,
            token: secrets.token,
            enrollment_key: secrets.enrollment_key,
            scratch,
            _dir: dir,
        };
        p.spawn()?;
        p.wait_ready(START_TIMEOUT).await?;
        p.enrollment_key = p.new_enrollment_key("fleet simulator").await?;
        Ok(p)
    }

    /// Makes another enrollment key through the operator API.
    pub async fn new_enrollment_key(&self, name: &str) -> anyhow::Result<Secret> {
        let created: CreatedEnrollmentKey = self
            .operator()?
            .json(
                Method::POST,
                "/api/v1/enrollment-keys",
                Some(self.token.expose()),
                Some(&NewEnrollmentKey {
                    name: name.into(),
                    expires_in_secs: None,
                    max_uses: None,
                }),
            )
            .await
            .context("cannot create an enrollment key through the operator API")?;
        Ok(created.key)
    }

    /// Starts another node: the same configuration and database, listening on a port of
    /// its own (`PATCHCTL_LISTEN`), as docs/deployment.md runs several nodes.
    pub async fn start_node(&self, n: usize) -> anyhow::Result<Node> {
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
        let mut cmd = self.command();
        cmd.env("PATCHCTL_LISTEN", addr.to_string());
        let log = self.log.with_file_name(format!("server-{n}.log"));
        let mut node = Node {
            child: ChildGuard::spawn(cmd, &format!("patchctl server (node {n})"), &log)?,
            addr,
        };
        let client = HttpsClient::new(
            &format!("https://{addr}"),
            client_config(Some(&self.pki.ca_cert))?,
        )?;
        wait_health(client, &mut node.child, START_TIMEOUT, &format!("node {n}")).await?;
        Ok(node)
    }

    /// The run's directory (configuration, PKI, logs); removed with the platform.
    pub fn dir(&self) -> &Path {
        self._dir.path()
    }

    /// A client for the operator API.
    pub fn operator(&self) -> anyhow::Result<HttpsClient> {
        Ok(HttpsClient::new(
            &self.url,
            client_config(Some(&self.pki.ca_cert))?,
        )?)
    }

    /// `patchctl server --config` with the run's limits.
    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.arg("server").arg("--config").arg(&self.config);
        for (k, v) in LIMIT_ENV {
            cmd.env(k, v);
        }
        cmd.env("RUST_LOG", "warn");
        // The child inherits the raised RLIMIT_NOFILE (the workspace forbids the
        // `unsafe` a `pre_exec` hook needs, and a hook would set the same limit).
        raise_nofile(nr_open());
        cmd
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let cmd = self.command();
        self.child = Some(ChildGuard::spawn(cmd, "patchctl server", &self.log)?);
        Ok(())
    }

    /// Waits until `/api/v1/health` answers.
    pub async fn wait_ready(&mut self, limit: Duration) -> anyhow::Result<Duration> {
        let client = self.operator()?;
        let child = self.child.as_mut().context("the platform is not running")?;
        wait_health(client, child, limit, "the platform").await
    }

    /// Fails with the end of its output when the platform has exited.
    pub fn ensure_running(&mut self) -> anyhow::Result<()> {
        match self.child.as_mut() {
            Some(c) => c.ensure_running(),
            None => anyhow::bail!("the platform is not running"),
        }
    }

    /// The platform's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.pid()).unwrap_or(0)
    }

    /// Its memory (`VmRSS`, `VmHWM`).
    pub fn mem(&self) -> Mem {
        mem(self.pid()).unwrap_or_default()
    }

    /// Its open file descriptors.
    pub fn fds(&self) -> u64 {
        fds(self.pid())
    }

    /// SIGKILLs the platform (the guard's drop kills and reaps it).
    pub fn kill(&mut self) {
        self.child = None;
    }

    /// Starts it again with the same configuration (same port, same database).
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.spawn()
    }

    /// Stops the platform and drops the scratch database.
    pub async fn stop(mut self) {
        self.child = None;
        if let Some(db) = self.scratch.take()
            && let Err(e) = db.drop_db().await
        {
            eprintln!("warning: {e:#}");
        }
    }
}

/// Waits until `/api/v1/health` answers through `client`, failing with the end of the
/// child's output when it exits or `limit` passes.
async fn wait_health(
    client: HttpsClient,
    child: &mut ChildGuard,
    limit: Duration,
    what: &str,
) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let client = client.with_timeout(Duration::from_secs(2));
    loop {
        child.ensure_running()?;
        let r: Result<serde_json::Value, _> = client
            .json::<(), _>(Method::GET, "/api/v1/health", None, None)
            .await;
        if r.is_ok() {
            return Ok(start.elapsed());
        }
        if start.elapsed() > limit {
            anyhow::bail!(
                "{what} did not answer /api/v1/health within {limit:?}; its output:\n{}",
                child.log_tail(20)
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A further node of the platform (see [`Platform::start_node`]), killed when dropped.
pub struct Node {
    child: ChildGuard,
    /// Its address.
    pub addr: SocketAddr,
}

impl Node {
    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.pid()
    }

    /// Fails with the end of its output when it has exited.
    pub fn ensure_running(&mut self) -> anyhow::Result<()> {
        self.child.ensure_running()
    }
}
