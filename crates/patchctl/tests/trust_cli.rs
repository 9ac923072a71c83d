//! The trust commands with the real `patchctl` binary against `patchctl server --dev`
//! over real TLS: `keys list|create|revoke|rotate`, `settings show|set`,
//! `hosts pending|approve|reject|show|list`, and the `--dev` start-up warning about a
//! revoked enrollment key. Hosts enroll with real HTTPS requests (the agent's side of
//! enrollment is tested with the agent).

// The harness starts the binary under test; the no-spawn rule is for agent code.
#![allow(clippy::disallowed_methods)]

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use common::wait_for;
use http::Method;
use patchctl_net::{ClientError, HttpsClient};
use patchctl_proto::agent::{
    EnrollRequest, EnrollResponse, HeartbeatRequest, HeartbeatResponse, Metrics, SystemInfo,
};
use patchctl_proto::{PROTOCOL_VERSION, Secret};
use serde_json::Value;

fn patchctl() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_patchctl"))
}

/// The dev platform, stopped when dropped.
struct Platform {
    child: Child,
    dir: PathBuf,
    dev: Value,
    rt: tokio::runtime::Runtime,
}

impl Drop for Platform {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `patchctl server --dev --no-agent` on `dir` (a free port the first time).
fn start(dir: &Path, first: bool) -> Platform {
    let mut cmd = Command::new(patchctl());
    cmd.args(["server", "--dev", "--no-agent", "--data-dir"])
        .arg(dir)
        .env("PATCHCTL_VULN_SYNC", "false"); // no feed downloads in tests
    if first {
        cmd.args(["--listen", "127.0.0.1:0"]);
    }
    let stdout = fs::File::create(dir.with_extension("stdout")).unwrap();
    let stderr = fs::File::create(dir.with_extension("stderr")).unwrap();
    let child = cmd
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .unwrap();
    let dev_json = dir.join("dev.json");
    let dev: Value = wait_for("dev.json", 60, || {
        fs::read(&dev_json)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
    });
    let p = Platform {
        child,
        dir: dir.to_owned(),
        dev,
        rt: tokio::runtime::Runtime::new().unwrap(),
    };
    wait_for("the platform to answer", 60, || {
        p.cli(&["hosts", "list"]).status.success().then_some(())
    });
    p
}

impl Platform {
    fn cli(&self, args: &[&str]) -> Output {
        Command::new(patchctl())
            .args(args)
            .env("PATCHCTL_SERVER", self.dev["url"].as_str().unwrap())
            .env("PATCHCTL_TOKEN", self.dev["token"].as_str().unwrap())
            .env("PATCHCTL_CA_FILE", self.dev["ca_file"].as_str().unwrap())
            .output()
            .unwrap()
    }

    /// Runs a command that must succeed: its stdout and stderr.
    #[track_caller]
    fn ok(&self, args: &[&str]) -> (String, String) {
        let out = self.cli(args);
        let (o, e) = (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        );
        assert!(out.status.success(), "patchctl {args:?} failed: {e}");
        (o, e)
    }

    /// Runs a command that must fail: its stderr.
    #[track_caller]
    fn fails(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            !out.status.success(),
            "patchctl {args:?} succeeded: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    #[track_caller]
    fn json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.extend(["--output", "json"]);
        let (o, _) = self.ok(&a);
        serde_json::from_str(&o).unwrap_or_else(|e| panic!("{args:?}: {e}: {o}"))
    }

    fn client(&self) -> HttpsClient {
        let tls =
            patchctl_net::client_config(Some(Path::new(self.dev["ca_file"].as_str().unwrap())))
                .unwrap();
        HttpsClient::new(self.dev["url"].as_str().unwrap(), tls).unwrap()
    }

    fn enroll(&self, key: &str, hostname: &str) -> Result<EnrollResponse, ClientError> {
        let req = EnrollRequest {
            protocol_version: PROTOCOL_VERSION,
            license_key: Secret::new(key.to_owned()),
            agent_version: "test".into(),
            system: SystemInfo {
                hostname: hostname.into(),
                ..Default::default()
            },
        };
        self.rt.block_on(
            self.client()
                .json(Method::POST, "/api/v1/agent/enroll", None, Some(&req)),
        )
    }

    fn heartbeat(&self, credential: &Secret) -> Result<HeartbeatResponse, ClientError> {
        let req = HeartbeatRequest {
            agent_version: "test".into(),
            metrics: Metrics::default(),
            agent_target: None,
            update_events: Vec::new(),
            trial: false,
            reboot: None,
            booted_at: None,
            command_key_id: None,
            approvers_serial: None,
        };
        self.rt.block_on(self.client().json(
            Method::POST,
            "/api/v1/agent/heartbeat",
            Some(credential.expose()),
            Some(&req),
        ))
    }
}

#[test]
fn keys_are_created_limited_rotated_and_revoked_from_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let p = start(&tmp.path().join("dev"), true);

    let (list, _) = p.ok(&["keys", "list"]);
    let header = list.lines().next().unwrap();
    assert!(header.starts_with("ID") && header.contains("STATE") && header.contains("USES"));
    assert!(
        list.lines()
            .any(|l| l.contains("default") && l.contains("active")),
        "{list}"
    );

    // Create with limits; the key is shown once.
    let (text, _) = p.ok(&["keys", "create", "--name", "shown", "--expires", "1h30m"]);
    assert!(text.contains("shown only this once"), "{text}");
    let shown_key = text
        .split_whitespace()
        .find(|w| w.starts_with("pek_"))
        .expect("the key is printed");
    assert!(
        !p.ok(&["keys", "list"]).0.contains(&shown_key[4..]),
        "listed without it"
    );
    let created = p.json(&[
        "keys",
        "create",
        "--name",
        "fleet",
        "--expires",
        "30d",
        "--max-uses",
        "2",
    ]);
    let id = created["info"]["id"].as_str().unwrap().to_owned();
    let key = created["key"].as_str().unwrap().to_owned();
    assert_eq!(created["info"]["state"], "active");
    assert_eq!(created["info"]["max_uses"], 2);
    assert!(created["info"]["expires_at"].is_string());

    // Bad values say what is expected.
    for (args, says) in [
        (
            vec!["keys", "create", "--name", "x", "--expires", "3x"],
            "such as 30d",
        ),
        (
            vec!["keys", "create", "--name", "x", "--expires", "0d"],
            "positive",
        ),
        (
            vec!["keys", "create", "--name", "x", "--max-uses", "0"],
            "--max-uses",
        ),
        (
            vec!["keys", "rotate", &id, "--grace", "soon"],
            "such as 30d",
        ),
        (vec!["keys", "revoke", "nope"], "not an enrollment key id"),
        (vec!["keys", "create", "--name", ""], "1 to 100 characters"),
    ] {
        let e = p.fails(&args);
        assert!(e.contains(says), "{args:?}: {e}");
    }

    // Maximum uses.
    p.enroll(&key, "f1").unwrap();
    p.enroll(&key, "f2").unwrap();
    let e = p.enroll(&key, "f3").unwrap_err();
    assert_eq!(e.code(), Some("enrollment_key_invalid"), "{e}");
    let keys = p.json(&["keys", "list"]);
    let fleet = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == id.as_str())
        .unwrap();
    assert_eq!(
        (fleet["state"].as_str(), fleet["uses"].as_u64()),
        (Some("exhausted"), Some(2))
    );
    let (list, _) = p.ok(&["keys", "list"]);
    assert!(
        list.lines()
            .any(|l| l.contains(&id) && l.contains("exhausted") && l.contains("2/2")),
        "{list}"
    );

    // Rotation with a grace: a fresh key with the same limits; the old one still in
    // its grace hour.
    let (text, _) = p.ok(&["keys", "rotate", &id, "--grace", "1h"]);
    assert!(text.contains("keeps enrolling for 1h"), "{text}");
    assert!(text.contains("shown only this once"), "{text}");
    let new_key = text
        .split_whitespace()
        .find(|w| w.starts_with("pek_"))
        .unwrap()
        .to_owned();
    p.enroll(&new_key, "f4").unwrap();
    let keys = p.json(&["keys", "list"]);
    let new = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["rotated_from"] == id.as_str())
        .expect("the rotated key is listed");
    assert_eq!(
        (new["name"].as_str(), new["max_uses"].as_u64()),
        (Some("fleet"), Some(2))
    );
    assert_eq!(new["uses"], 1);

    // Revocation.
    let new_id = new["id"].as_str().unwrap().to_owned();
    let (text, _) = p.ok(&["keys", "revoke", &new_id]);
    assert!(text.contains("is revoked"), "{text}");
    let e = p.enroll(&new_key, "f5").unwrap_err();
    assert_eq!(e.code(), Some("enrollment_key_invalid"));
    assert!(e.to_string().contains("revoked"), "{e}");
    let e = p.fails(&["keys", "rotate", &new_id]);
    assert!(e.contains("revoked"), "{e}");
    // The secret keys never reach the log.
    let log = fs::read_to_string(p.dir.with_extension("stderr")).unwrap();
    for k in [&key, &new_key, &shown_key.to_owned()] {
        assert!(!log.contains(&k[4..]), "a key is in the server log");
    }
}

#[test]
fn approval_is_turned_on_and_hosts_are_approved_or_rejected_from_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let p = start(&tmp.path().join("dev"), true);
    let key = p.dev["enrollment_key"].as_str().unwrap().to_owned();

    let (text, _) = p.ok(&["settings", "show"]);
    assert!(
        text.lines()
            .any(|l| l.starts_with("require-approval") && l.ends_with("off")),
        "{text}"
    );
    let (_, note) = p.ok(&["hosts", "pending"]);
    assert!(note.contains("settings set require-approval on"), "{note}");
    let e = p.fails(&["settings", "set", "require-approval", "maybe"]);
    assert!(e.contains("possible values: on, off"), "{e}");

    let (text, _) = p.ok(&["settings", "set", "require-approval", "on"]);
    assert!(text.contains("require-approval is on"), "{text}");
    assert_eq!(p.json(&["settings", "show"])["require_approval"], true);

    let h1 = p.enroll(&key, "wait-1").unwrap();
    let h2 = p.enroll(&key, "wait-2").unwrap();
    let h3 = p.enroll(&key, "wait-3").unwrap();
    let e = p.heartbeat(&h1.credential).unwrap_err();
    assert_eq!(
        (e.status(), e.code()),
        (Some(403), Some("pending_approval")),
        "{e}"
    );

    let (list, note) = p.ok(&["hosts", "list"]);
    assert_eq!(
        list.lines().filter(|l| l.contains("pending")).count(),
        3,
        "{list}"
    );
    assert!(note.contains("3 host(s) wait for approval"), "{note}");
    let pending = p.json(&["hosts", "pending"]);
    assert_eq!(pending.as_array().unwrap().len(), 3, "{pending}");
    let (table, _) = p.ok(&["hosts", "pending"]);
    assert!(table.lines().next().unwrap().starts_with("ID"));
    assert!(table.contains("wait-2"), "{table}");
    let (show, _) = p.ok(&["hosts", "show", "wait-1"]);
    assert!(show.contains("PENDING APPROVAL"), "{show}");
    let e = p.fails(&["commands", "queue", "--host", "wait-1", "health_check"]);
    assert!(e.contains("waiting for approval"), "{e}");

    let (text, _) = p.ok(&["hosts", "approve", "wait-1"]);
    assert!(text.contains("is approved"), "{text}");
    p.heartbeat(&h1.credential).unwrap();
    p.ok(&["commands", "queue", "--host", "wait-1", "health_check"]);

    let (text, _) = p.ok(&["hosts", "reject", &h2.host_id.to_string()]);
    assert!(
        text.contains("is rejected") && text.contains("revoked"),
        "{text}"
    );
    let e = p.heartbeat(&h2.credential).unwrap_err();
    assert_eq!(
        (e.status(), e.code()),
        (Some(403), Some("credential_revoked")),
        "{e}"
    );
    let (show, _) = p.ok(&["hosts", "show", "wait-2"]);
    assert!(
        show.contains("REVOKED") && show.contains("patchctl-agent reenroll"),
        "{show}"
    );
    let e = p.fails(&["hosts", "approve", "wait-2"]);
    assert!(e.contains("rejected"), "{e}");

    // Revoking an approved host holds too.
    let (text, _) = p.ok(&["hosts", "revoke", "wait-1"]);
    assert!(text.contains("revoked"), "{text}");
    let e = p.heartbeat(&h1.credential).unwrap_err();
    assert_eq!(e.code(), Some("credential_revoked"), "{e}");

    // Off again: new hosts work at once; the one still waiting keeps waiting.
    p.ok(&["settings", "set", "require-approval", "off"]);
    let h4 = p.enroll(&key, "free").unwrap();
    p.heartbeat(&h4.credential).unwrap();
    let e = p.heartbeat(&h3.credential).unwrap_err();
    assert_eq!(e.code(), Some("pending_approval"));
    let pending = p.json(&["hosts", "pending"]);
    assert_eq!(pending[0]["hostname"], "wait-3", "{pending}");
}

#[test]
fn the_dev_server_says_when_its_enrollment_key_was_revoked() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("dev");
    let p = start(&dir, true);
    let keys = p.json(&["keys", "list"]);
    let default = keys[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(keys[0]["name"], "default");
    p.ok(&["keys", "revoke", &default]);
    drop(p);
    // The warning is printed before the platform serves, and `start` waits until it
    // answers.
    let p = start(&dir, false);
    let banner = fs::read_to_string(dir.with_extension("stdout")).unwrap();
    assert!(
        banner.contains("WARNING: the enrollment key in dev.json was revoked"),
        "{banner}"
    );
    assert!(banner.contains("patchctl keys create"), "{banner}");
    drop(p);
}
