//! The agent's audit log in a real journal, read back with `journalctl -o json`.
//!
//! A private mount namespace gets its own `/run` (so its own
//! `/run/systemd/journal/socket`, the socket `logging.rs` writes to, and its own
//! `/run/log/journal`) and a journald.conf for a volatile journal; the host's
//! `/lib/systemd/systemd-journald` runs there, and so does the real `patchctl-agent run`
//! binary, against the real platform (`patchctl server --dev`) on loopback. The apt state
//! the agent's scans refresh is a private, empty one in that namespace, so the host's apt
//! lists and caches are untouched.
//!
//! The operator CLI queues health_check and get_package_info; the platform is then
//! killed (the agent logs that it is unreachable, with the error as a field) and started
//! again (connected again); the agent is stopped. Every entry of the journal is then
//! read: the agent's are all `SYSLOG_IDENTIFIER=patchctl`; each command received,
//! accepted and finished and each result delivered is there with its fields
//! (`COMMAND_ID`, `KIND`, `STATUS`); the connection changes are there; and no field of
//! any entry holds the enrollment key, the agent's credential (from credential.json) or
//! the operator's API token. The agent's optional log file is checked the same way,
//! and for its mode (0600).

// The harness starts journald, the platform and the agent; the no-spawn rule is for
// agent code.
#![allow(clippy::disallowed_methods)]

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::platform::Platform;
use common::wait_for;
use patchctl_testkit::{Check, Harness, Need, find_program, trial};
use serde_json::Value;

const JOURNALD: &str = "/lib/systemd/systemd-journald";

static SYSTEMD_JOURNAL: Check = Check {
    what: "systemd-journald and journalctl",
    missing: journal_missing,
};

fn journal_missing() -> Option<String> {
    (find_program(JOURNALD).is_none() || find_program("journalctl").is_none())
        .then(|| format!("{JOURNALD} or journalctl is not installed (apt-get install systemd)"))
}

fn main() -> std::process::ExitCode {
    Harness::new()
        .test(trial!(the_audit_log_in_a_real_journal).needs([
            Need::Root,
            Need::Check(&SYSTEMD_JOURNAL),
            Need::Program("unshare"),
            Need::Program("nsenter"),
            Need::File("/etc/machine-id"),
            // The agent scans this machine's packages.
            Need::File("/var/lib/dpkg/status"),
        ]))
        .run()
}

/// A private mount namespace, held by a sleeping process; the processes started in it
/// are stopped (SIGTERM, then SIGKILL) when it is dropped, the holder last.
struct Namespace {
    holder: Child,
    procs: Vec<Child>,
}

impl Namespace {
    fn new() -> Namespace {
        let holder = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sleep", "3600"])
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let pid = holder.id();
        let mine = fs::read_link("/proc/self/ns/mnt").unwrap();
        wait_for("the namespace", 10, || {
            let comm = fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
            let ns = fs::read_link(format!("/proc/{pid}/ns/mnt")).ok()?;
            (comm.trim() == "sleep" && ns != mine).then_some(())
        });
        Namespace {
            holder,
            procs: Vec::new(),
        }
    }

    fn enter(&self) -> Command {
        let mut c = Command::new("nsenter");
        c.args(["-t", &self.holder.id().to_string(), "-m", "--"]);
        c
    }

    /// Runs a program in the namespace and returns its stdout; fails the test if it fails.
    fn run(&self, args: &[&str]) -> String {
        let out = self.enter().args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Starts a long-running program in the namespace (nsenter execs it: the child's
    /// pid is the program's).
    fn spawn(&mut self, args: &[&str], env: &[(&str, &str)], log: &Path) -> u32 {
        let log = fs::File::create(log).unwrap();
        let child = self
            .enter()
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let pid = child.id();
        self.procs.push(child);
        pid
    }

    /// Sends SIGTERM to `pid` (started by [`Namespace::spawn`]) and waits for it.
    fn stop(&mut self, pid: u32) {
        let i = self.procs.iter().position(|c| c.id() == pid).unwrap();
        let mut child = self.procs.remove(i);
        terminate(&mut child);
    }

    /// The path `p` of the namespace, seen from outside.
    fn path(&self, p: &str) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root{p}", self.holder.id()))
    }

    /// Every journal entry in the namespace's journal, in order.
    fn journal(&self) -> Vec<Value> {
        self.run(&[
            "journalctl",
            "--directory",
            "/run/log/journal",
            "-o",
            "json",
            "--no-pager",
        ])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
    }
}

fn terminate(child: &mut Child) {
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
}

impl Drop for Namespace {
    fn drop(&mut self) {
        for mut c in self.procs.drain(..).rev() {
            terminate(&mut c);
        }
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

/// A volatile journal that reads nothing but its sockets and forwards nothing.
const JOURNALD_CONF: &str = "[Journal]\nStorage=volatile\nReadKMsg=no\nAudit=no\nForwardToSyslog=no\nForwardToKMsg=no\nForwardToConsole=no\nForwardToWall=no\nRateLimitBurst=0\n";

/// The namespace's own /run, journal configuration and (empty) apt state.
fn prepare(ns: &Namespace, work: &Path) {
    let conf = work.join("journald.conf");
    fs::write(&conf, JOURNALD_CONF).unwrap();
    let empty = work.join("empty");
    fs::write(&empty, "").unwrap();
    let tmpfs = |dir: &str| {
        ns.run(&["mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", dir]);
    };
    tmpfs("/run");
    ns.run(&[
        "mkdir",
        "-p",
        "/run/systemd/journal",
        "/run/log/journal",
        "/run/lock",
    ]);
    ns.run(&[
        "mount",
        "--bind",
        conf.to_str().unwrap(),
        "/etc/systemd/journald.conf",
    ]);
    for dir in [
        "/etc/systemd/journald.conf.d",
        "/usr/lib/systemd/journald.conf.d",
        "/var/log/journal",
        "/etc/apt/sources.list.d",
        "/var/lib/apt/lists",
        "/var/cache/apt",
    ] {
        if Path::new(dir).is_dir() {
            tmpfs(dir);
        }
    }
    ns.run(&["mkdir", "-p", "/var/lib/apt/lists/partial"]);
    if Path::new("/etc/apt/sources.list").exists() {
        ns.run(&[
            "mount",
            "--bind",
            empty.to_str().unwrap(),
            "/etc/apt/sources.list",
        ]);
    }
}

/// Every string a journal entry holds, field names included (`journalctl -o json`
/// writes a value that is not valid text as an array of bytes, and a field given more
/// than once as an array).
fn texts(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) if !a.is_empty() && a.iter().all(Value::is_u64) => {
            let bytes: Vec<u8> = a.iter().map(|b| b.as_u64().unwrap() as u8).collect();
            out.push(String::from_utf8_lossy(&bytes).into_owned());
        }
        Value::Array(a) => a.iter().for_each(|x| texts(x, out)),
        Value::Object(o) => {
            for (k, x) in o {
                out.push(k.clone());
                texts(x, out);
            }
        }
        other => out.push(other.to_string()),
    }
}

/// The secrets (by name) that `entry` holds somewhere.
fn secrets_in(entry: &Value, secrets: &[(&str, String)]) -> Vec<String> {
    let mut all = Vec::new();
    texts(entry, &mut all);
    secrets
        .iter()
        .filter(|(_, s)| all.iter().any(|t| t.contains(s.as_str())))
        .map(|(name, _)| name.to_string())
        .collect()
}

fn the_audit_log_in_a_real_journal() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path();
    let mut platform = Platform::start(&work.join("platform"), &work.join("server.log"));

    let mut ns = Namespace::new();
    prepare(&ns, work);
    let journald = ns.spawn(&[JOURNALD], &[], &work.join("journald.log"));
    wait_for("journald's socket", 30, || {
        ns.path("/run/systemd/journal/socket")
            .exists()
            .then_some(())
    });

    // The agent, with a private config and an optional log file.
    let dir = work.join("agent");
    fs::create_dir_all(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
    let mut cfg = platform.agent_config(platform.ca_file());
    cfg["state_dir"] = dir.join("state").display().to_string().into();
    cfg["log_dir"] = dir.join("log").display().to_string().into();
    let cfg_path = dir.join("config.json");
    fs::write(&cfg_path, serde_json::to_vec(&cfg).unwrap()).unwrap();
    fs::set_permissions(&cfg_path, fs::Permissions::from_mode(0o600)).unwrap();
    let agent_bin = common::agent_bin();
    let agent = ns.spawn(
        &[
            agent_bin.to_str().unwrap(),
            "run",
            "--config",
            cfg_path.to_str().unwrap(),
        ],
        &[("RUST_LOG", "debug")],
        &work.join("agent.stderr"),
    );

    let host = wait_for("the agent enrolled and online", 60, || {
        let h = platform.json(&["hosts", "list"]);
        let h = h.as_array()?.first()?.clone();
        (h["status"] == "online").then(|| h["id"].as_str().unwrap().to_owned())
    });
    let hc = platform.command(&host, "health_check", &[], 60);
    let pi = platform.command(&host, "get_package_info", &["name=dpkg"], 60);
    assert_eq!(pi["state"], "succeeded", "{pi}");
    let commands = [
        (hc["id"].as_str().unwrap().to_owned(), "health_check"),
        (pi["id"].as_str().unwrap().to_owned(), "get_package_info"),
    ];
    // The results are delivered before the commands show a result; wait for the
    // agent's own line about it too.
    let logged = |message: &str, min: usize| {
        let n = ns
            .journal()
            .iter()
            .filter(|e| e["MESSAGE"] == message)
            .count();
        (n >= min).then_some(())
    };
    wait_for("both results delivered in the journal", 30, || {
        logged("result delivered", 2)
    });

    // The platform goes away and comes back.
    platform.stop();
    wait_for(
        "the agent to log that the platform is unreachable",
        60,
        || logged("platform unreachable; retrying with backoff", 1),
    );
    platform.restart();
    wait_for("the agent to connect again", 90, || {
        logged("connected to the platform", 2)
    });
    ns.stop(agent);
    ns.stop(journald);
    let journal = ns.journal();

    // Every entry of the agent process is the agent's, under its identifier.
    let mine: Vec<&Value> = journal
        .iter()
        .filter(|e| e["_PID"] == agent.to_string().as_str())
        .collect();
    assert!(mine.len() > 10, "{journal:#?}");
    for e in &mine {
        assert_eq!(e["SYSLOG_IDENTIFIER"], "patchctl", "{e:#}");
    }
    let find = |what: &str, pred: &dyn Fn(&Value) -> bool| -> Value {
        mine.iter()
            .find(|e| pred(e))
            .map(|e| (*e).clone())
            .unwrap_or_else(|| panic!("no {what} in the journal: {mine:#?}"))
    };
    for (id, kind) in &commands {
        let of = |m: &'static str| {
            let id = id.clone();
            move |e: &Value| e["MESSAGE"] == m && e["COMMAND_ID"] == id.as_str()
        };
        let received = find("command received", &of("command received"));
        assert_eq!(
            (received["KIND"].as_str(), received["TARGET"].as_str()),
            (Some(*kind), Some("audit")),
            "{received:#}"
        );
        let accepted = find("command accepted", &of("command accepted"));
        assert_eq!(accepted["KIND"], *kind, "{accepted:#}");
        let finished = find("command finished", &of("command finished"));
        assert_eq!(finished["KIND"], *kind, "{finished:#}");
        assert!(finished["STATUS"].is_string(), "{finished:#}");
        assert!(finished["SUMMARY"].is_string(), "{finished:#}");
        find("result delivered", &of("result delivered"));
    }
    // get_package_info ran dpkg-query or apt-cache, and the run is in the audit log.
    let ran = find("a program run", &|e| e["MESSAGE"] == "running program");
    assert!(
        ran["PROGRAM"]
            .as_str()
            .is_some_and(|p| p.starts_with("/usr/bin/")),
        "{ran:#}"
    );
    // Connection status, both ways, with the error as a field of its own.
    let connected: Vec<&&Value> = mine
        .iter()
        .filter(|e| e["MESSAGE"] == "connected to the platform")
        .collect();
    assert_eq!(connected.len(), 2, "{connected:#?}");
    assert_eq!(connected[0]["SERVER_URL"], platform.url.as_str());
    let down = find("platform unreachable", &|e| {
        e["MESSAGE"] == "platform unreachable; retrying with backoff"
    });
    assert_eq!(down["PRIORITY"], "4", "a warning: {down:#}");
    assert!(
        down["ERROR"].as_str().is_some_and(|s| !s.is_empty()),
        "{down:#}"
    );
    assert_eq!(mine.last().unwrap()["MESSAGE"], "agent stopping");

    // No secret anywhere: any field of any entry (journald's own ones too).
    let cred: Value =
        serde_json::from_slice(&fs::read(dir.join("credential.json")).unwrap()).unwrap();
    let secrets = [
        ("the enrollment key", platform.enrollment_key().to_owned()),
        (
            "the agent credential",
            cred["credential"].as_str().unwrap().to_owned(),
        ),
        ("the API token", platform.token().to_owned()),
    ];
    for (name, s) in &secrets {
        assert!(s.len() >= 20, "{name} looks too short to search for: {s:?}");
    }
    // The search finds a secret however journalctl writes it (text or bytes).
    let planted = serde_json::json!({
        "A": "x",
        "B": secrets[1].1.bytes().map(Value::from).collect::<Vec<_>>(),
    });
    assert_eq!(secrets_in(&planted, &secrets), ["the agent credential"]);
    for e in &journal {
        assert_eq!(secrets_in(e, &secrets), Vec::<String>::new(), "{e:#}");
    }

    // The log file: private, and as clean.
    let log = dir.join("log/agent.log");
    assert_eq!(
        fs::metadata(&log).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let text = fs::read_to_string(&log).unwrap();
    assert!(text.contains("command received"), "{text}");
    for (name, s) in &secrets {
        assert!(!text.contains(s.as_str()), "{name} in {}", log.display());
    }
    drop(ns);
    drop(platform);
}
