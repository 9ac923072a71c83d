//! End to end with the real binaries on loopback: `patchctl server` and a separate
//! `patchctl-agent` process over real TLS 1.3, real enrollment, the real dpkg inventory
//! of this machine, restarts of both sides, a SIGKILL of the server, and a revocation
//! that holds.

// The harness starts the binaries under test; the no-spawn rule is for agent code.
#![allow(clippy::disallowed_methods)]

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::wait_for;
use serde_json::Value;

fn patchctl() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_patchctl"))
}

/// The agent binary is built by `cargo test --workspace` next to `patchctl`.
fn agent_bin() -> PathBuf {
    let p = patchctl().with_file_name("patchctl-agent");
    assert!(
        p.exists(),
        "{} is missing: run the tests with `cargo test --workspace` (or `cargo build -p patchctl-agent` first)",
        p.display()
    );
    p
}

struct Proc {
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn spawn(cmd: &mut Command, log: &Path) -> Proc {
        // Logs (stderr) and the banner (stdout, which prints the dev secrets on
        // purpose) go to separate files; only the log is checked for secrets.
        let f = fs::OpenOptions::new()
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
            .stderr(f)
            .env("RUST_LOG", "debug")
            // No feed downloads from the internet during the tests (vulndb_sync tests
            // the platform's sync).
            .env("PATCHCTL_VULN_SYNC", "false")
            .spawn()
            .unwrap();
        Proc {
            child,
            log: log.to_owned(),
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn kill9(mut self) {
        let _ = self.child.kill(); // SIGKILL
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Platform {
    dir: PathBuf,
    dev: Value,
}

impl Platform {
    fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(patchctl())
            .args(args)
            .env("PATCHCTL_SERVER", self.dev["url"].as_str().unwrap())
            .env("PATCHCTL_TOKEN", self.dev["token"].as_str().unwrap())
            .env("PATCHCTL_CA_FILE", self.dev["ca_file"].as_str().unwrap())
            .output()
            .unwrap()
    }

    fn json(&self, args: &[&str]) -> Value {
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

    fn port(&self) -> u16 {
        self.dev["url"]
            .as_str()
            .unwrap()
            .rsplit(':')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    }
}

fn start_server(dir: &Path, first: bool) -> (Proc, Platform) {
    let mut cmd = Command::new(patchctl());
    cmd.args(["server", "--dev", "--no-agent", "--data-dir"])
        .arg(dir);
    if first {
        cmd.args(["--listen", "127.0.0.1:0"]);
    }
    let p = Proc::spawn(&mut cmd, &dir.with_extension("server.log"));
    let dev_json = dir.join("dev.json");
    let dev: Value = wait_for("dev.json", 60, || {
        fs::read(&dev_json)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
    });
    let plat = Platform {
        dir: dir.to_owned(),
        dev,
    };
    wait_for("the platform to answer", 60, || {
        plat.cli(&["hosts", "list"]).status.success().then_some(())
    });
    (p, plat)
}

fn write_agent_config(dir: &Path, plat: &Platform) -> PathBuf {
    fs::create_dir_all(dir).unwrap();
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).unwrap();
    let cfg = dir.join("config.json");
    let doc = serde_json::json!({
        "server_url": plat.dev["url"],
        "license_key": plat.dev["enrollment_key"],
        "ca_bundle": plat.dev["ca_file"],
        "heartbeat_interval_secs": 5,
        "state_dir": dir.join("state"),
    });
    fs::write(&cfg, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    fs::set_permissions(&cfg, fs::Permissions::from_mode(0o600)).unwrap();
    cfg
}

fn start_agent(cfg: &Path, log: &Path) -> Proc {
    Proc::spawn(
        Command::new(agent_bin()).args(["run", "--config"]).arg(cfg),
        log,
    )
}

/// Sockets of `pid` (inodes), from its open file descriptors.
fn socket_inodes(pid: u32) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(rd) = fs::read_dir(format!("/proc/{pid}/fd")) {
        for e in rd.flatten() {
            if let Ok(t) = fs::read_link(e.path()) {
                let t = t.to_string_lossy().into_owned();
                if let Some(i) = t.strip_prefix("socket:[").and_then(|s| s.strip_suffix(']')) {
                    out.push(i.to_owned());
                }
            }
        }
    }
    out
}

/// Listening TCP sockets and bound UDP sockets of `pid`, from /proc/net.
fn listening_sockets(pid: u32) -> Vec<String> {
    let inodes = socket_inodes(pid);
    let mut found = Vec::new();
    for table in ["tcp", "tcp6", "udp", "udp6"] {
        let text = fs::read_to_string(format!("/proc/{pid}/net/{table}")).unwrap_or_default();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 10 || !inodes.iter().any(|i| i == f[9]) {
                continue;
            }
            // TCP state 0A is LISTEN; any UDP socket of the agent would be a listener.
            if table.starts_with("udp") || f[3] == "0A" {
                found.push(format!("{table} {} state {}", f[1], f[3]));
            }
        }
    }
    found
}

fn host_id_of(agent_dir: &Path) -> String {
    let v: Value =
        serde_json::from_slice(&fs::read(agent_dir.join("credential.json")).unwrap()).unwrap();
    v["host_id"].as_str().unwrap().to_owned()
}

/// Installed packages according to the status file, counted independently of the agent.
fn dpkg_installed_count() -> usize {
    let text = fs::read_to_string("/var/lib/dpkg/status").unwrap();
    text.split("\n\n")
        .filter(|s| {
            s.lines().any(|l| {
                l.starts_with("Status: ")
                    && !l.ends_with(" not-installed")
                    && !l.ends_with(" config-files")
            })
        })
        .count()
}

fn queue_and_wait(plat: &Platform, host: &str, kind: &str, params: &[&str]) -> Value {
    let mut args = vec!["commands", "queue", "--host", host, kind, "--wait", "60"];
    for p in params {
        args.extend(["--param", p]);
    }
    plat.json(&args)
}

#[test]
fn whole_loop_with_real_binaries() {
    if !Path::new("/var/lib/dpkg/status").exists() {
        panic!("this end-to-end test reads the real dpkg inventory; run it on Debian/Ubuntu");
    }
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("platform");
    let agent_dir = tmp.path().join("agent");
    let agent_log = tmp.path().join("agent.log");

    let (server, plat) = start_server(&data, true);
    let cfg = write_agent_config(&agent_dir, &plat);
    let agent = start_agent(&cfg, &agent_log);

    // Enrollment and the real dpkg inventory of this machine.
    let want = dpkg_installed_count();
    let hosts = wait_for("the agent's inventory", 60, || {
        let h = plat.json(&["hosts", "list"]);
        (h.as_array().unwrap().len() == 1 && h[0]["packages"].as_u64() == Some(want as u64))
            .then_some(h)
    });
    assert_eq!(hosts[0]["status"], "online");
    let host_id = host_id_of(&agent_dir);
    assert_eq!(hosts[0]["id"], host_id.as_str());
    let pkgs = plat.json(&["hosts", "packages", &host_id]);
    let dpkg = pkgs["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "dpkg")
        .expect("dpkg in the inventory")
        .clone();

    // Pull only: the running agent has no listening socket (and the check can fail:
    // the server has one).
    assert_eq!(listening_sockets(agent.pid()), Vec::<String>::new());
    assert!(
        !listening_sockets(server.pid()).is_empty(),
        "the check must see the server's listener"
    );
    assert!(
        !socket_inodes(agent.pid()).is_empty(),
        "the agent should hold a connection"
    );

    // health_check and get_package_info through the platform.
    let hc = queue_and_wait(&plat, &host_id, "health_check", &[]);
    assert!(
        ["succeeded", "failed"].contains(&hc["state"].as_str().unwrap()),
        "{hc}"
    );
    let checks = hc["result"]["output"]["checks"].as_array().unwrap();
    for name in ["agent", "config", "server", "clock", "package_lock"] {
        assert!(
            checks.iter().any(|c| c["name"] == name),
            "missing check {name}: {hc}"
        );
    }
    let config_check = checks.iter().find(|c| c["name"] == "config").unwrap();
    assert_eq!(config_check["status"], "ok", "{hc}");
    let pi = queue_and_wait(&plat, &host_id, "get_package_info", &["name=dpkg"]);
    assert_eq!(pi["state"], "succeeded", "{pi}");
    let installed = &pi["result"]["output"]["installed"][0];
    assert_eq!(installed["version"], dpkg["version"]);
    let shown = plat.cli(&["commands", "show", pi["id"].as_str().unwrap()]);
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(
        shown.contains("succeeded") && shown.contains(dpkg["version"].as_str().unwrap()),
        "{shown}"
    );
    let states: Vec<&str> = pi["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["queued", "delivered", "succeeded"]);

    // The platform refuses a command outside the whitelist before queueing it.
    let bad = plat.cli(&[
        "commands",
        "queue",
        "--host",
        &host_id,
        "run_script",
        "--param",
        "script=id",
    ]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown command kind"));

    // A command that bypasses the platform's check (written straight into the database
    // and signed with the platform's own key file, as a compromised or newer platform
    // could) is rejected by the agent itself: a valid signature does not make invalid
    // parameters run.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let injected = rt.block_on(async {
        let store = patchctl_storage::open(plat.dev["database_url"].as_str().unwrap())
            .await
            .unwrap();
        let cred: Value =
            serde_json::from_slice(&fs::read(agent_dir.join("credential.json")).unwrap()).unwrap();
        let hash = patchctl_server::auth::hash_secret(cred["credential"].as_str().unwrap());
        let org = store
            .host_by_credential(&hash)
            .await
            .unwrap()
            .unwrap()
            .org_id;
        let now = chrono::Utc::now();
        let id = uuid::Uuid::new_v4();
        let params = serde_json::json!({"name": "foo;rm -rf /"});
        let key = common::signing::platform_key(&plat.dir.join("command-signing.key"), org);
        let signed = common::signing::statement(
            &key,
            org,
            host_id.parse().unwrap(),
            id,
            "get_package_info",
            params.clone(),
            now + chrono::Duration::hours(1),
        );
        store
            .queue_command(patchctl_storage::NewCommand {
                id,
                signed: Some(signed),
                org_id: org,
                host_id: host_id.parse().unwrap(),
                kind: "get_package_info".into(),
                params,
                now,
                expires_at: now + chrono::Duration::hours(1),
            })
            .await
            .unwrap()
            .id
    });
    let rec = wait_for("the agent to reject the injected command", 60, || {
        let r = plat.json(&["commands", "show", &injected.to_string()]);
        (r["state"] == "rejected").then_some(r)
    });
    assert!(
        rec["result"]["summary"]
            .as_str()
            .unwrap()
            .contains("invalid parameters"),
        "{rec}"
    );

    // The agent is killed and restarted: same identity, no second host.
    agent.kill9();
    let agent = start_agent(&cfg, &agent_log);
    let again = queue_and_wait(&plat, &host_id, "get_package_info", &["name=dpkg"]);
    assert_eq!(again["state"], "succeeded");
    assert_eq!(host_id_of(&agent_dir), host_id);
    assert_eq!(plat.json(&["hosts", "list"]).as_array().unwrap().len(), 1);
    drop(agent);

    // Queued while the agent is down, then the server is SIGKILLed and restarted:
    // nothing acknowledged is lost, and the command runs when the agent returns.
    let queued = plat.json(&["commands", "queue", "--host", &host_id, "health_check"]);
    assert_eq!(queued["state"], "queued");
    let port = plat.port();
    server.kill9();
    // The agent comes back while the platform is still down: it retries with backoff.
    let agent = start_agent(&cfg, &agent_log);
    wait_for("the agent to notice the platform is down", 60, || {
        let log = fs::read_to_string(&agent_log).unwrap_or_default();
        (log.matches("platform unreachable").count() >= 1).then_some(())
    });
    let (server, plat) = start_server(&data, false);
    assert_eq!(
        plat.port(),
        port,
        "the restarted platform keeps its address"
    );
    // The acknowledged command survived the SIGKILL (the reconnecting agent may
    // already have collected it, so its state is not pinned here).
    let after = plat.json(&["commands", "show", queued["id"].as_str().unwrap()]);
    assert_eq!(after["id"], queued["id"]);
    assert_eq!(after["events"][0]["state"], "queued");
    assert_eq!(after["kind"], "health_check");
    let old = plat.json(&["commands", "show", pi["id"].as_str().unwrap()]);
    assert_eq!(old["state"], "succeeded");
    assert_eq!(old["result"], pi["result"]);
    let done = wait_for(
        "the queued command to run after the agent returns",
        60,
        || {
            let r = plat.json(&["commands", "show", queued["id"].as_str().unwrap()]);
            (r["state"] != "queued" && r["state"] != "delivered").then_some(r)
        },
    );
    assert!(done["result"]["output"]["checks"].is_array(), "{done}");
    assert_eq!(host_id_of(&agent_dir), host_id);

    // Revocation holds (issue 10: a revoked agent used to re-enroll within seconds
    // under a new id): the platform answers 403 credential_revoked, and the host stays
    // revoked, under its id, through three of the agent's heartbeat intervals.
    let cred: Value =
        serde_json::from_slice(&fs::read(agent_dir.join("credential.json")).unwrap()).unwrap();
    let cred = cred["credential"].as_str().unwrap().to_owned();
    let revoked = plat.json(&["hosts", "revoke", &host_id]);
    assert_eq!(revoked["status"], "revoked");
    std::thread::sleep(Duration::from_secs(16));
    let hosts = plat.json(&["hosts", "list"]);
    assert_eq!(hosts.as_array().unwrap().len(), 1, "{hosts}");
    assert_eq!(hosts[0]["id"], host_id.as_str());
    assert_eq!(hosts[0]["status"], "revoked");
    let log = fs::read_to_string(&agent_log).unwrap();
    assert!(
        !log.contains("re-enrolling with the license key"),
        "the revoked agent enrolled again"
    );

    // Secrets never reach a log line.
    drop(agent);
    drop(server);
    let key = plat.dev["enrollment_key"].as_str().unwrap();
    for log in [agent_log.clone(), data.with_extension("server.log")] {
        let text = fs::read_to_string(&log).unwrap();
        assert!(
            text.contains("command received") || text.contains("host enrolled"),
            "{} looks empty",
            log.display()
        );
        assert!(
            !text.contains(key),
            "enrollment key found in {}",
            log.display()
        );
        assert!(
            !text.contains(&cred),
            "agent credential found in {}",
            log.display()
        );
    }
    let _ = plat.dir;
}

/// Issue 16: with a heartbeat only every 10 minutes, a command still reaches the agent in
/// seconds, through its long-poll; the agent still listens on nothing.
#[test]
fn commands_reach_a_long_polling_agent_in_seconds() {
    let tmp = tempfile::tempdir().unwrap();
    let (_server, plat) = start_server(&tmp.path().join("platform"), true);
    let agent_dir = tmp.path().join("agent");
    let cfg = write_agent_config(&agent_dir, &plat);
    let mut doc: Value = serde_json::from_slice(&fs::read(&cfg).unwrap()).unwrap();
    doc["heartbeat_interval_secs"] = 600.into();
    doc["long_poll_secs"] = 120.into();
    fs::write(&cfg, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    let agent = start_agent(&cfg, &tmp.path().join("agent.log"));
    // The first heartbeat and scan come at start; then the agent waits on its long-poll.
    wait_for("the agent's first scan", 60, || {
        let h = plat.json(&["hosts", "list"]);
        (h.as_array().unwrap().len() == 1 && h[0]["packages"].as_u64().unwrap_or(0) > 0)
            .then_some(())
    });
    std::thread::sleep(Duration::from_secs(1));
    let host_id = host_id_of(&agent_dir);
    for _ in 0..2 {
        let t = std::time::Instant::now();
        let pi = queue_and_wait(&plat, &host_id, "get_package_info", &["name=dpkg"]);
        let took = t.elapsed();
        assert_eq!(pi["state"], "succeeded", "{pi}");
        assert!(
            took < Duration::from_secs(15),
            "the command took {took:?} with heartbeats 10 minutes apart"
        );
    }
    assert_eq!(listening_sockets(agent.pid()), Vec::<String>::new());
}

#[test]
fn dev_mode_shows_this_machine_within_seconds() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("dev");
    let p = Proc::spawn(
        Command::new(patchctl())
            .args(["server", "--dev", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&data),
        &tmp.path().join("dev.log"),
    );
    let dev_json = data.join("dev.json");
    let dev: Value = wait_for("dev.json", 60, || {
        fs::read(&dev_json)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
    });
    let mode = fs::metadata(&dev_json).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "dev.json holds the token and must be private");
    let plat = Platform {
        dir: data.clone(),
        dev,
    };
    let started = Instant::now();
    // Listed with its packages and seen by a heartbeat: the first heartbeat's group
    // commit may land just after the scan on a loaded machine, so wait for both (within
    // the same bound) before asserting on them.
    let hosts = wait_for("this machine in `hosts list`, online", 30, || {
        let out = plat.cli(&["hosts", "list", "--output", "json"]);
        let v: Value = serde_json::from_slice(&out.stdout).ok()?;
        (v.as_array()?.len() == 1 && v[0]["packages"].as_u64()? > 0 && v[0]["status"] == "online")
            .then_some(v)
    });
    eprintln!("this machine listed after {:?}", started.elapsed());
    let hostname = fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(hosts[0]["hostname"], hostname.trim());
    assert_eq!(hosts[0]["status"], "online");
    let table = String::from_utf8(plat.cli(&["hosts", "list"]).stdout).unwrap();
    assert!(
        table.starts_with("ID") && table.contains(hostname.trim()),
        "{table}"
    );
    let log = fs::read_to_string(&p.log).unwrap_or_default();
    assert!(!log.contains(plat.dev["enrollment_key"].as_str().unwrap()));
}

#[test]
fn dev_mode_works_without_root() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cmd;
    if nix::unistd::geteuid().is_root() {
        // Drop to nobody: copy the binary where nobody can run it, give nobody the dir.
        let bin = tmp.path().join("patchctl");
        fs::copy(patchctl(), &bin).unwrap();
        nix::unistd::chown(
            tmp.path(),
            Some(nix::unistd::Uid::from_raw(65534)),
            Some(nix::unistd::Gid::from_raw(65534)),
        )
        .unwrap();
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
        cmd = Command::new("/usr/bin/setpriv");
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(&bin);
    } else {
        cmd = Command::new(patchctl());
    }
    let data = tmp.path().join("dev");
    cmd.args(["server", "--dev", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data);
    let log = std::env::temp_dir().join(format!("patchctl-nonroot-{}.log", std::process::id()));
    let _p = Proc::spawn(&mut cmd, &log);
    let dev: Value = wait_for("dev.json written by the unprivileged server", 60, || {
        fs::read(data.join("dev.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
    });
    use std::os::unix::fs::MetadataExt;
    if nix::unistd::geteuid().is_root() {
        assert_eq!(fs::metadata(data.join("dev.json")).unwrap().uid(), 65534);
    }
    let plat = Platform {
        dir: data.clone(),
        dev,
    };
    wait_for(
        "this machine listed by the unprivileged platform",
        60,
        || {
            let out = plat.cli(&["hosts", "list", "--output", "json"]);
            let v: Value = serde_json::from_slice(&out.stdout).ok()?;
            (v.as_array()?.len() == 1 && v[0]["packages"].as_u64()? > 0).then_some(())
        },
    );
    let hc = queue_and_wait(
        &plat,
        fs::read_to_string("/proc/sys/kernel/hostname")
            .unwrap()
            .trim(),
        "health_check",
        &[],
    );
    assert_eq!(hc["state"], "succeeded", "{hc}");
    // Root-only operations say so instead of failing obscurely.
    let iu = queue_and_wait(
        &plat,
        hc["host_id"].as_str().unwrap(),
        "install_updates",
        &["package=dpkg=1.0"],
    );
    assert_eq!(iu["state"], "failed");
    assert!(
        iu["result"]["summary"]
            .as_str()
            .unwrap()
            .contains("needs root"),
        "{iu}"
    );
    let _ = fs::remove_file(&log);
}

#[test]
fn production_path_admin_init_then_server_config() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let db = format!("sqlite://{}", dir.join("patchctl.db").display());
    let init = Command::new(patchctl())
        .args(["admin", "init", "--database-url", &db, "--org", "acme"])
        .output()
        .unwrap();
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let secrets: Value = serde_json::from_slice(&init.stdout).unwrap();
    let again = Command::new(patchctl())
        .args(["admin", "init", "--database-url", &db, "--org", "acme"])
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));

    let pki =
        patchctl_net::ensure_dev_pki(&dir.join("pki"), &["localhost".into(), "127.0.0.1".into()])
            .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let settings = serde_json::json!({
        "listen": format!("127.0.0.1:{port}"),
        "database_url": db,
        "tls_cert": pki.server_cert,
        "tls_key": pki.server_key,
        "heartbeat_interval_secs": 5,
    });
    let cfg_path = dir.join("server.json");
    fs::write(&cfg_path, serde_json::to_vec(&settings).unwrap()).unwrap();
    let _server = Proc::spawn(
        Command::new(patchctl())
            .args(["server", "--config"])
            .arg(&cfg_path),
        &dir.join("server.log"),
    );
    let plat = Platform {
        dir: dir.to_owned(),
        dev: serde_json::json!({
            "url": format!("https://localhost:{port}"),
            "token": secrets["token"],
            "ca_file": pki.ca_cert,
            "enrollment_key": secrets["enrollment_key"],
        }),
    };
    wait_for("the configured platform to answer", 60, || {
        plat.cli(&["hosts", "list"]).status.success().then_some(())
    });
    let agent_dir = dir.join("agent");
    let cfg = write_agent_config(&agent_dir, &plat);
    let _agent = start_agent(&cfg, &dir.join("agent.log"));
    let hosts = wait_for("the agent enrolled in org acme", 60, || {
        let h = plat.json(&["hosts", "list"]);
        (h.as_array()?.len() == 1 && h[0]["status"] == "online").then_some(h)
    });
    assert_eq!(hosts[0]["id"], host_id_of(&agent_dir).as_str());
    // An unknown field in the server config is an error that names it.
    fs::write(&cfg_path, br#"{"listen": "127.0.0.1:1", "database_url": "sqlite:///x", "tls_cert": "a", "tls_key": "b", "verify": false}"#).unwrap();
    let bad = Command::new(patchctl())
        .args(["server", "--config"])
        .arg(&cfg_path)
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("unknown field `verify`"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}

/// What a compromised agent could report: a title-setting OSC, a screen clear, a
/// carriage return that hides what came before it, a C1 CSI and DEL.
const EVIL: &str = "\u{1b}]0;owned\u{7}\u{1b}[2J\rok\u{9b}31m\u{7f}";

/// Text a terminal can show without being driven: no control character but the line
/// ends, and the attack visible as escapes.
fn assert_inert(what: &str, out: &std::process::Output) {
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout.clone()).unwrap();
    let raw: Vec<char> = text
        .chars()
        .filter(|c| c.is_control() && *c != '\n')
        .collect();
    assert!(
        raw.is_empty(),
        "{what} printed raw controls {raw:?}: {text}"
    );
    assert!(
        text.contains(r"\x1b]0;owned\x07\x1b[2J\rok\u{9b}31m\x7f"),
        "{what}: {text}"
    );
}

#[test]
fn agent_text_reaches_the_terminal_neutralised() {
    let tmp = tempfile::tempdir().unwrap();
    let (_server, plat) = start_server(&tmp.path().join("platform"), true);
    // An "agent" that speaks the real agent API over TLS, with hostile strings.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let tls = patchctl_net::client_config(Some(Path::new(plat.dev["ca_file"].as_str().unwrap())))
        .unwrap();
    let agent = patchctl_net::HttpsClient::new(plat.dev["url"].as_str().unwrap(), tls).unwrap();
    let post = |path: &str, bearer: Option<&str>, body: Value| -> Value {
        rt.block_on(agent.json(http::Method::POST, path, bearer, Some(&body)))
            .unwrap_or_else(|e| panic!("{path}: {e}"))
    };
    let system = serde_json::json!({
        "hostname": format!("web-1{EVIL}"), "ips": [EVIL], "kernel": EVIL, "arch": EVIL,
        "cpu_model": EVIL, "cpu_count": 1, "mem_total_bytes": 0, "disks": [],
        "os": {"id": "debian", "id_like": [], "version_id": "12", "version_codename": EVIL,
               "pretty_name": format!("Debian{EVIL}")},
    });
    let enrolled = post(
        "/api/v1/agent/enroll",
        None,
        serde_json::json!({
            "protocol_version": patchctl_proto::PROTOCOL_VERSION,
            "license_key": plat.dev["enrollment_key"],
            "agent_version": EVIL,
            "system": system,
        }),
    );
    let host_id = enrolled["host_id"].as_str().unwrap().to_owned();
    let cred = enrolled["credential"].as_str().unwrap().to_owned();
    post(
        "/api/v1/agent/inventory",
        Some(&cred),
        serde_json::json!({
            "scanned_at": chrono::Utc::now(),
            "system": system,
            "package_manager": EVIL,
            "packages": [{"name": format!("bash{EVIL}"), "version": EVIL, "arch": EVIL,
                          "source_name": EVIL, "status": EVIL}],
        }),
    );
    let queued = plat.json(&["commands", "queue", "--host", &host_id, "health_check"]);
    let command_id = queued["id"].as_str().unwrap();
    let beat = wait_for("the command leased at a heartbeat", 30, || {
        let b = post(
            "/api/v1/agent/heartbeat",
            Some(&cred),
            serde_json::json!({"agent_version": EVIL, "metrics": {
                "cpu_percent": 0.0, "load": [0.0, 0.0, 0.0], "mem_used_bytes": 0,
                "mem_total_bytes": 0, "swap_used_bytes": 0, "swap_total_bytes": 0,
                "disks": [{"mount": EVIL, "fs_type": EVIL, "used_bytes": 0, "total_bytes": 0}],
                "uptime_secs": 0}}),
        );
        (!b["commands"].as_array()?.is_empty()).then_some(b)
    });
    assert_eq!(beat["commands"][0]["id"], command_id);
    let now = chrono::Utc::now();
    post(
        "/api/v1/agent/results",
        Some(&cred),
        serde_json::json!({"results": [{
            "command_id": command_id, "status": "succeeded",
            "summary": format!("healthy{EVIL}\nfake line"),
            "started_at": now, "finished_at": now,
            "output": {"type": "health", "agent_version": EVIL,
                       "checks": [{"name": EVIL, "status": "ok", "detail": EVIL}]},
        }]}),
    );

    // JSON carries the strings as they were sent (escaped by the JSON encoder)...
    let hosts = plat.json(&["hosts", "list"]);
    assert_eq!(hosts[0]["hostname"], format!("web-1{EVIL}"));
    let shown = plat.json(&["commands", "show", command_id]);
    assert_eq!(shown["result"]["output"]["checks"][0]["detail"], EVIL);
    // ...and every view for people shows them inert.
    assert_inert("hosts list", &plat.cli(&["hosts", "list"]));
    assert_inert("hosts show", &plat.cli(&["hosts", "show", &host_id]));
    assert_inert(
        "hosts packages",
        &plat.cli(&["hosts", "packages", &host_id]),
    );
    assert_inert("commands list", &plat.cli(&["commands", "list"]));
    let show = plat.cli(&["commands", "show", command_id]);
    assert_inert("commands show", &show);
    let show = String::from_utf8(show.stdout).unwrap();
    assert!(show.contains(r"healthy\x1b]0;owned"), "{show}");
    assert!(
        !show.contains("\nfake line"),
        "a result made up a line: {show}"
    );
}
