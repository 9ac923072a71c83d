//! The compliance commands with the real `patchctl` binary against `patchctl server
//! --dev` over real TLS: `deadlines show|set`, `exceptions create|list|show|revoke` and
//! `compliance [--overdue]`, in text and `--output json`, and their refusals.

// The harness starts the binary under test; the no-spawn rule is for agent code.
#![allow(clippy::disallowed_methods)]

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use common::wait_for;
use http::Method;
use patchctl_net::{ClientError, HttpsClient};
use patchctl_proto::agent::{EnrollRequest, EnrollResponse, SystemInfo};
use patchctl_proto::{PROTOCOL_VERSION, Secret};
use serde_json::Value;

fn patchctl() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_patchctl"))
}

/// The dev platform, stopped when dropped.
struct Platform {
    child: Child,
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
}

#[test]
fn deadlines_exceptions_and_compliance_from_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let p = start(&tmp.path().join("dev"), true);
    let key = p.dev["enrollment_key"].as_str().unwrap().to_owned();
    p.enroll(&key, "web-1").unwrap();

    // deadlines: the defaults, then two changed, the rest kept
    let d = p.json(&["deadlines", "show"]);
    assert_eq!(d["default"], true, "{d}");
    assert_eq!(d["critical_days"], 7);
    let (text, _) = p.ok(&["deadlines", "set", "--high", "21", "--kev", "10"]);
    assert!(
        text.contains("known exploited (KEV)") && text.contains("21"),
        "{text}"
    );
    let d = p.json(&["deadlines", "show"]);
    assert_eq!(d["high_days"], 21);
    assert_eq!(d["kev_days"], 10);
    assert_eq!(d["critical_days"], 7);
    assert_eq!(d["default"], false);
    let err = p.fails(&["deadlines", "set", "--critical", "0"]);
    assert!(
        err.contains("critical_days must be between 1 and 1825"),
        "{err}"
    );

    // an exception on the host, by name
    let e = p.json(&[
        "exceptions",
        "create",
        "CVE-2024-6387",
        "--host",
        "web-1",
        "--reason",
        "sshd listens on the management network only",
        "--owner",
        "alice",
        "--expires",
        "30d",
    ]);
    assert_eq!(e["status"], "active", "{e}");
    assert_eq!(e["scope"]["hostname"], "web-1");
    let id = e["id"].as_str().unwrap().to_owned();
    let (list, _) = p.ok(&["exceptions", "list"]);
    assert!(
        list.contains(&id) && list.contains("host web-1") && list.contains("active"),
        "{list}"
    );
    let (show, _) = p.ok(&["exceptions", "show", &id]);
    assert!(
        show.contains("sshd listens on the management network only"),
        "{show}"
    );
    let active = p.json(&["exceptions", "list", "--active"]);
    assert_eq!(active.as_array().unwrap().len(), 1);
    // refusals say why
    let err = p.fails(&[
        "exceptions",
        "create",
        "CVE-2024-6387",
        "--all-hosts",
        "--reason",
        "r",
        "--owner",
        "o",
        "--expires",
        "400d",
    ]);
    assert!(err.contains("365 days"), "{err}");
    let err = p.fails(&[
        "exceptions",
        "create",
        "CVE-2024-6387",
        "--reason",
        "r",
        "--owner",
        "o",
        "--expires",
        "1d",
    ]);
    assert!(err.contains("--all-hosts"), "{err}");
    let err = p.fails(&[
        "exceptions",
        "create",
        "CVE-2024-6387",
        "--host",
        "nope",
        "--reason",
        "r",
        "--owner",
        "o",
        "--expires",
        "1d",
    ]);
    assert!(err.contains("nope"), "{err}");
    let (text, _) = p.ok(&["exceptions", "revoke", &id]);
    assert!(text.contains("revoked"), "{text}");
    let err = p.fails(&["exceptions", "revoke", &id]);
    assert!(err.contains("revoked already"), "{err}");
    assert!(
        p.json(&["exceptions", "list", "--active"])
            .as_array()
            .unwrap()
            .is_empty()
    );

    // compliance: the host never sent a scan, so it is unknown, not compliant
    let c = p.json(&["compliance"]);
    assert_eq!(c["fleet"]["hosts_without_data"], 1, "{c}");
    assert_eq!(c["fleet"]["compliant_hosts"], 0);
    assert_eq!(c["policy"]["high_days"], 21);
    let (text, _) = p.ok(&["compliance"]);
    assert!(
        text.contains("NO DATA") && text.contains("never as compliant"),
        "{text}"
    );
    let o = p.json(&[
        "compliance",
        "--overdue",
        "--kev",
        "--severity",
        "critical,high",
    ]);
    assert_eq!(o["total"], 0, "{o}");
    let (text, _) = p.ok(&["compliance", "--overdue", "--at", "2030-01-01T00:00:00Z"]);
    assert!(text.contains("0 overdue at 2030-01-01"), "{text}");
    let err = p.fails(&["compliance", "--overdue", "--severity", "urgent"]);
    assert!(err.contains("urgent"), "{err}");
    let err = p.fails(&["compliance", "--group", "web"]);
    assert!(err.contains("no group \"web\""), "{err}");
    let c = p.json(&["compliance", "--group", "all"]);
    assert_eq!(c["fleet"]["hosts_without_data"], 1, "{c}");
    let c = p.json(&["compliance"]);
    assert!(
        c["groups"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["name"] == "all"),
        "{c}"
    );
}
