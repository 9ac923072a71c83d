//! Fault 4 of issue 16 §4: a network partition between an agent and the platform. The
//! real `patchctl-agent` runs in its own network namespace, joined to the machine by a
//! veth pair; the platform listens on the machine's end. Commands are queued; the moment
//! the platform hands them to the agent, the agent is frozen (SIGSTOP), its link is cut
//! (`ip link set … down`) and it is thawed: it finishes the commands it holds while cut
//! off, and their results wait in its outbox on disk. Once the link is back the results
//! arrive, every one, in the order they were made (the order the platform stores them,
//! read from its log, is the order of the commands).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use patchctl_proto::api::CommandState;
use serde_json::json;
use uuid::Uuid;

use super::load::queue_health_check;
use crate::common::nodes::Cluster;
use crate::common::{agent_bin, wait_for};

/// Commands queued in the partition round.
const COMMANDS: usize = 6;

/// A network namespace with a veth pair to the machine; removed when dropped.
struct Netns {
    name: String,
    host_if: String,
    ns_if: String,
    host_ip: String,
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Netns {
    fn create() -> Netns {
        let tag = std::process::id() % 100_000;
        let net = std::process::id() % 200 + 20;
        let n = Netns {
            name: format!("pcfaults{tag}"),
            host_if: format!("pcfh{tag}"),
            ns_if: format!("pcfa{tag}"),
            host_ip: format!("10.213.{net}.1"),
        };
        let agent_ip = format!("10.213.{net}.2/30");
        ip(&["netns", "add", &n.name]);
        ip(&[
            "link", "add", &n.host_if, "type", "veth", "peer", "name", &n.ns_if,
        ]);
        ip(&["link", "set", &n.ns_if, "netns", &n.name]);
        ip(&[
            "addr",
            "add",
            &format!("{}/30", n.host_ip),
            "dev",
            &n.host_if,
        ]);
        ip(&["link", "set", &n.host_if, "up"]);
        n.in_ns(&["addr", "add", &agent_ip, "dev", &n.ns_if]);
        n.in_ns(&["link", "set", &n.ns_if, "up"]);
        n.in_ns(&["link", "set", "lo", "up"]);
        n
    }

    fn in_ns(&self, args: &[&str]) {
        let mut a = vec!["netns", "exec", &self.name, "ip"];
        a.extend_from_slice(args);
        ip(&a);
    }

    /// Cuts the agent's link (from its side: its route to the platform is gone).
    fn cut(&self) {
        self.in_ns(&["link", "set", &self.ns_if, "down"]);
    }

    fn restore(&self) {
        self.in_ns(&["link", "set", &self.ns_if, "up"]);
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_if])
            .status();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// `None` when network namespaces and veth pairs can be made here.
fn netns_missing() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("network namespaces need root: run the tests as root".into());
    }
    let name = format!("pcfprobe{}", std::process::id());
    let ok = Command::new("ip")
        .args(["netns", "add", &name])
        .output()
        .map_err(|e| format!("cannot run ip ({e}): apt-get install iproute2"))
        .and_then(|o| {
            o.status.success().then_some(()).ok_or_else(|| {
                format!(
                    "ip netns add failed: {} (a container needs CAP_SYS_ADMIN and CAP_NET_ADMIN)",
                    String::from_utf8_lossy(&o.stderr).trim()
                )
            })
        });
    let _ = Command::new("ip").args(["netns", "del", &name]).status();
    ok.err()
}

/// The harness's check for this test.
pub static NETNS: patchctl_testkit::Check = patchctl_testkit::Check {
    what: "network namespaces and veth pairs (root, ip)",
    missing: netns_missing,
};

/// The real agent inside the namespace; killed when dropped.
struct NsAgent {
    child: Child,
    dir: PathBuf,
}

impl Drop for NsAgent {
    fn drop(&mut self) {
        let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGCONT);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl NsAgent {
    fn signal(&self, s: Signal) {
        kill(Pid::from_raw(self.child.id() as i32), s).unwrap();
    }

    fn outbox(&self) -> Vec<PathBuf> {
        std::fs::read_dir(self.dir.join("state/outbox"))
            .map(|d| {
                d.flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "json"))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// The command ids of the `result stored` lines of a node's log, in order.
fn stored_order(log: &str) -> Vec<Uuid> {
    log.lines()
        .filter(|l| l.contains("result stored"))
        .filter_map(|l| {
            let at = l.find("command_id=")? + "command_id=".len();
            l.get(at..at + 36)?.parse().ok()
        })
        .collect()
}

pub fn partitioned_agent_delivers_its_outbox_in_order() {
    let ns = Netns::create();
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("patchctl.db");
    let url = format!("sqlite://{}", db.display());
    let mut cluster = Cluster::new_on(
        &tmp.path().join("cluster"),
        &url,
        json!({ "command_lease_secs": 120 }),
        &ns.host_ip,
    );
    cluster.start(1);
    let dir = tmp.path().join("agent");
    let cfg = cluster.agent_config(0, &dir, json!({}));
    let log = std::fs::File::create(tmp.path().join("agent.log")).unwrap();
    let agent = NsAgent {
        child: Command::new("ip")
            .args(["netns", "exec", &ns.name])
            .arg(agent_bin())
            .args(["run", "--config"])
            .arg(&cfg)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
        dir: dir.clone(),
    };
    let host: Uuid = wait_for("the agent in the namespace enrolled", 90, || {
        std::fs::read(dir.join("credential.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v["host_id"].as_str()?.parse().ok())
    });

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let store = rt.block_on(patchctl_storage::open(&url)).unwrap();
    let org = rt
        .block_on(store.org_by_name("default"))
        .unwrap()
        .unwrap()
        .id;
    let state = |id: Uuid| {
        rt.block_on(store.command(org, id))
            .unwrap()
            .map(|c| (c.state, c.result.is_some()))
    };

    // Queued while the agent is frozen, so that one heartbeat takes them all.
    agent.signal(Signal::SIGSTOP);
    let commands: Vec<Uuid> = (0..COMMANDS)
        .map(|_| queue_health_check(&cluster, 0, host))
        .collect();
    agent.signal(Signal::SIGCONT);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if commands
            .iter()
            .any(|c| state(*c).is_some_and(|(s, _)| s != CommandState::Queued))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no command was delivered in 30 s"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    agent.signal(Signal::SIGSTOP);
    ns.cut();
    agent.signal(Signal::SIGCONT);
    let held: Vec<Uuid> = commands
        .iter()
        .copied()
        .filter(|c| state(*c).is_some_and(|(s, _)| s == CommandState::Delivered))
        .collect();
    eprintln!("cut off holding {} of {COMMANDS} commands", held.len());
    assert!(
        held.len() >= 2,
        "the agent answered before the link was cut: {:?}",
        commands.iter().map(|c| state(*c)).collect::<Vec<_>>()
    );

    // The agent finishes what it holds; the results wait in its outbox.
    wait_for(
        "the held commands' results in the agent's outbox",
        60,
        || (agent.outbox().len() >= held.len()).then_some(()),
    );
    std::thread::sleep(Duration::from_secs(4));
    for c in &held {
        assert_eq!(
            state(*c).map(|(_, r)| r),
            Some(false),
            "a result crossed the partition"
        );
    }
    assert!(agent.outbox().len() >= held.len());

    ns.restore();
    eprintln!("link restored");
    wait_for("every result at the platform", 120, || {
        commands
            .iter()
            .all(|c| state(*c).is_some_and(|(_, r)| r))
            .then_some(())
    });
    wait_for("the agent's outbox drained", 30, || {
        agent.outbox().is_empty().then_some(())
    });
    let order: Vec<Uuid> = stored_order(&cluster.log(0))
        .into_iter()
        .filter(|c| commands.contains(c))
        .collect();
    assert_eq!(
        order, commands,
        "the platform stored the results in another order than the commands were run"
    );
    drop(agent);
    drop(cluster);
}
