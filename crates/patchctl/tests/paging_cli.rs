//! The CLI follows the API's paging: with 2,500 hosts and 1,200 commands in the dev
//! platform's database, `patchctl hosts list` and `patchctl commands list` show every
//! one exactly once, in the list's order, although the platform answers at most 1,000
//! per page (real `patchctl server --dev` over real TLS, real SQLite).

// The harness starts the binary under test; the no-spawn rule is for agent code.
#![allow(clippy::disallowed_methods)]

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use chrono::Utc;
use common::wait_for;
use patchctl_proto::agent::SystemInfo;
use patchctl_storage::{NewCommand, NewHost};
use serde_json::Value;

fn patchctl() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_patchctl"))
}

/// The dev platform, stopped when dropped.
struct Platform {
    child: Child,
    dev: Value,
}

impl Drop for Platform {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(dir: &Path) -> Platform {
    let child = Command::new(patchctl())
        .args(["server", "--dev", "--no-agent", "--listen", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(dir)
        .env("PATCHCTL_VULN_SYNC", "false")
        .stdin(Stdio::null())
        .stdout(fs::File::create(dir.with_extension("stdout")).unwrap())
        .stderr(fs::File::create(dir.with_extension("stderr")).unwrap())
        .spawn()
        .unwrap();
    let dev_json = dir.join("dev.json");
    let dev: Value = wait_for("dev.json", 60, || {
        fs::read(&dev_json)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
    });
    let p = Platform { child, dev };
    wait_for("the platform to answer", 60, || {
        p.json(&["hosts", "list"]).map(|_| ())
    });
    p
}

impl Platform {
    fn json(&self, args: &[&str]) -> Option<Value> {
        let out = Command::new(patchctl())
            .args(args)
            .args(["--output", "json"])
            .env("PATCHCTL_SERVER", self.dev["url"].as_str().unwrap())
            .env("PATCHCTL_TOKEN", self.dev["token"].as_str().unwrap())
            .env("PATCHCTL_CA_FILE", self.dev["ca_file"].as_str().unwrap())
            .output()
            .unwrap();
        out.status
            .success()
            .then(|| serde_json::from_slice(&out.stdout).unwrap())
    }
}

fn ids(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn hosts_and_commands_page_through_with_no_duplicate_and_none_missing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("dev");
    let p = start(&dir);

    // 2,500 hosts straight into the platform's database (enrolling them one by one
    // would test the rate limits instead), 100 names shared by two hosts.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (host_ids, command_ids) = rt.block_on(async {
        let store = patchctl_storage::open(p.dev["database_url"].as_str().unwrap())
            .await
            .unwrap();
        let org = store.org_by_name("default").await.unwrap().unwrap();
        let key = store
            .create_enrollment_key(org.id, "paging", "paging-key-hash", Utc::now())
            .await
            .unwrap();
        let mut hosts = Vec::new();
        for i in 0..2_500u32 {
            let name = if i % 25 == 0 {
                format!("shared-{}", i / 50)
            } else {
                format!("host-{i:05}")
            };
            let h = store
                .create_host(NewHost {
                    org_id: org.id,
                    enrollment_key_id: key.id,
                    credential_hash: format!("paging-cred-{i}"),
                    agent_version: "test".into(),
                    system: SystemInfo {
                        hostname: name,
                        ..Default::default()
                    },
                    now: Utc::now(),
                })
                .await
                .unwrap();
            hosts.push(h.id.to_string());
        }
        let mut commands = Vec::new();
        let base = Utc::now();
        for i in 0..1_200usize {
            // A millisecond apart, so that "newest first" is the order of queueing.
            let now = base + chrono::Duration::milliseconds(i as i64);
            let c = store
                .queue_command(NewCommand {
                    id: uuid::Uuid::new_v4(),
                    signed: None,
                    org_id: org.id,
                    host_id: hosts[i % 3].parse().unwrap(),
                    kind: "health_check".into(),
                    params: serde_json::json!({}),
                    now,
                    expires_at: now + chrono::Duration::hours(1),
                })
                .await
                .unwrap();
            commands.push(c.id.to_string());
        }
        (hosts, commands)
    });

    let listed = p.json(&["hosts", "list"]).expect("hosts list");
    let listed_ids = ids(&listed);
    let unique: BTreeSet<&String> = listed_ids.iter().collect();
    assert_eq!(unique.len(), listed_ids.len(), "a host listed twice");
    assert_eq!(
        unique,
        host_ids.iter().collect::<BTreeSet<_>>(),
        "hosts missing or extra"
    );
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["hostname"].as_str().unwrap())
        .collect();
    assert!(names.windows(2).all(|w| w[0] <= w[1]), "by host name");

    let listed = p
        .json(&["commands", "list", "--limit", "5000"])
        .expect("commands list");
    let listed_ids = ids(&listed);
    assert_eq!(listed_ids.len(), 1_200);
    assert_eq!(
        listed_ids.iter().collect::<BTreeSet<_>>(),
        command_ids.iter().collect::<BTreeSet<_>>(),
        "commands missing or extra"
    );
    let newest_first: Vec<String> = command_ids.iter().rev().cloned().collect();
    assert_eq!(listed_ids, newest_first, "newest first");
    // --limit below a page: exactly that many, the newest.
    let few = ids(&p.json(&["commands", "list", "--limit", "3"]).unwrap());
    assert_eq!(few, newest_first[..3].to_vec());
}
