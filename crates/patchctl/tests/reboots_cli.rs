//! `patchctl hosts reboots` and the reboot lines of `patchctl hosts show` against a real
//! `patchctl server --dev` (real TLS, real SQLite): 1,050 hosts need a reboot (more than
//! one page of the API), each listed once, longest waiting first, with why; JSON and
//! the table; a host that no longer needs one is gone.

// The harness starts the binary under test; the no-spawn rule is for agent code.
#![allow(clippy::disallowed_methods)]

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use chrono::{Duration, Utc};
use common::wait_for;
use patchctl_proto::agent::SystemInfo;
use patchctl_storage::{NewHost, RebootReport};
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
        p.run(&["hosts", "list", "--output", "json"]).map(|_| ())
    });
    p
}

impl Platform {
    /// The CLI's standard output, when it succeeded.
    fn run(&self, args: &[&str]) -> Option<String> {
        let out = Command::new(patchctl())
            .args(args)
            .env("PATCHCTL_SERVER", self.dev["url"].as_str().unwrap())
            .env("PATCHCTL_TOKEN", self.dev["token"].as_str().unwrap())
            .env("PATCHCTL_CA_FILE", self.dev["ca_file"].as_str().unwrap())
            .output()
            .unwrap();
        out.status
            .success()
            .then(|| String::from_utf8(out.stdout).unwrap())
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.extend(["--output", "json"]);
        serde_json::from_str(&self.run(&a).expect("the CLI failed")).unwrap()
    }
}

#[test]
fn hosts_reboots_lists_every_host_needing_one() {
    const N: usize = 1_050;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("dev");
    let p = start(&dir);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (ids, fine) = rt.block_on(async {
        let store = patchctl_storage::open(p.dev["database_url"].as_str().unwrap())
            .await
            .unwrap();
        let org = store.org_by_name("default").await.unwrap().unwrap();
        let key = store
            .create_enrollment_key(org.id, "reboots", "reboots-key-hash", Utc::now())
            .await
            .unwrap();
        let base = Utc::now() - Duration::days(3);
        let mut ids = Vec::new();
        for i in 0..=N {
            let h = store
                .create_host(NewHost {
                    org_id: org.id,
                    enrollment_key_id: key.id,
                    credential_hash: format!("reboots-cred-{i}"),
                    agent_version: "test".into(),
                    system: SystemInfo {
                        hostname: format!("host-{i:05}"),
                        ..Default::default()
                    },
                    now: Utc::now(),
                })
                .await
                .unwrap();
            // The last host needs none; the others since a second apart, newest first.
            let report = RebootReport {
                required: Some((i < N, vec![format!("/run/reboot-required (pkg-{i})")])),
                booted_at: Some(base),
            };
            let since = base + Duration::seconds((N - i) as i64);
            store
                .record_reboot_state(h.id, &report, since)
                .await
                .unwrap();
            ids.push(h.id.to_string());
        }
        let fine = ids.pop().unwrap();
        ids.reverse();
        (ids, fine)
    });

    let listed = p.json(&["hosts", "reboots"]);
    let got: Vec<String> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(got.len(), N);
    assert_eq!(got, ids, "every host once, longest waiting first");
    assert!(!got.contains(&fine));
    assert_eq!(
        listed[0]["reboot"]["reasons"][0],
        format!("/run/reboot-required (pkg-{})", N - 1)
    );

    let table = p.run(&["hosts", "reboots"]).unwrap();
    assert!(table.starts_with("ID"), "{table}");
    assert!(table.contains("WAITING SINCE"));
    assert!(table.contains("/run/reboot-required (pkg-0)"));
    assert_eq!(table.lines().count(), N + 1);

    let show = p.run(&["hosts", "show", &ids[0]]).unwrap();
    assert!(show.contains("REQUIRED since"), "{show}");
    let show = p.run(&["hosts", "show", &fine]).unwrap();
    assert!(show.contains("not required"), "{show}");
    let detail = p.json(&["hosts", "show", &fine]);
    assert_eq!(detail["reboot"]["required"], false);
}
