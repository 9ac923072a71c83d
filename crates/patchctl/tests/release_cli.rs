//! The platform half of `patchctl release` with the real binary against
//! `patchctl server --dev` over real TLS: `release publish` (a bundle really signed
//! with test keys, then refusals: another file than the manifest's, another artifact
//! under a published version), `release list`, `release rollout` (show, set with a
//! canary, refused for an unpublished version or a canary out of range, off), the
//! offer a heartbeat then gets, and `hosts list`/`show` with the update state an agent
//! reported.

// The harness starts the binary under test; the no-spawn rule is for agent code.
#![allow(clippy::disallowed_methods)]

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use chrono::{Duration, Utc};
use common::wait_for;
use http::Method;
use patchctl_net::HttpsClient;
use patchctl_proto::agent::{
    EnrollRequest, EnrollResponse, HeartbeatRequest, HeartbeatResponse, Metrics, SystemInfo,
};
use patchctl_proto::release::{Manifest, ReleaseBundle, UpdateEvent, UpdateStep};
use patchctl_proto::{PROTOCOL_VERSION, Secret};
use patchctl_release::{KeyRole, SecretKey, sign_key_list, sign_manifest};
use serde_json::{Value, json};

const X86: &str = "x86_64-unknown-linux-gnu";

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

fn start(dir: &Path) -> Platform {
    let child = Command::new(patchctl())
        .args([
            "server",
            "--dev",
            "--no-agent",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(dir)
        .env("PATCHCTL_VULN_SYNC", "false") // no feed downloads in tests
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

    fn enroll(&self, hostname: &str) -> EnrollResponse {
        let req = EnrollRequest {
            protocol_version: PROTOCOL_VERSION,
            license_key: Secret::new(self.dev["enrollment_key"].as_str().unwrap().to_owned()),
            agent_version: "1.0.0".into(),
            system: SystemInfo {
                hostname: hostname.into(),
                ..Default::default()
            },
        };
        self.rt
            .block_on(
                self.client()
                    .json(Method::POST, "/api/v1/agent/enroll", None, Some(&req)),
            )
            .unwrap()
    }

    fn heartbeat(&self, credential: &Secret, events: Vec<UpdateEvent>) -> HeartbeatResponse {
        let req = HeartbeatRequest {
            agent_version: "1.0.0".into(),
            metrics: Metrics::default(),
            agent_target: Some(X86.into()),
            update_events: events,
            trial: false,
            reboot: None,
            booted_at: None,
            command_key_id: None,
            approvers_serial: None,
        };
        self.rt
            .block_on(self.client().json(
                Method::POST,
                "/api/v1/agent/heartbeat",
                Some(credential.expose()),
                Some(&req),
            ))
            .unwrap()
    }
}

/// Writes a bundle signed with test keys for `artifact` as `patchctl-agent` `version`,
/// and the artifact: their paths.
fn signed_release(dir: &Path, version: &str, artifact: &[u8]) -> (String, String) {
    let root = SecretKey::from_seed(KeyRole::Root, [5; 32]);
    let signing = SecretKey::from_seed(KeyRole::Signing, [6; 32]);
    let now = Utc::now();
    let keys = sign_key_list(
        &[&root],
        &[signing.public()],
        now - Duration::hours(1),
        now + Duration::days(365),
    )
    .unwrap();
    let manifest = Manifest {
        kind: patchctl_release::MANIFEST_KIND.into(),
        product: "patchctl-agent".into(),
        version: version.into(),
        target: X86.into(),
        sha256: patchctl_release::sha256_hex(artifact),
        size: artifact.len() as u64,
        channel: "stable".into(),
        created: now - Duration::hours(1),
        expires: now + Duration::days(30),
    };
    let bundle = ReleaseBundle {
        keys,
        manifest: sign_manifest(&signing, &manifest).unwrap(),
    };
    let b = dir.join(format!("bundle-{version}-{}.json", artifact.len()));
    let a = dir.join(format!("artifact-{version}-{}", artifact.len()));
    fs::write(&b, serde_json::to_vec_pretty(&bundle).unwrap()).unwrap();
    fs::write(&a, artifact).unwrap();
    (
        b.to_str().unwrap().to_owned(),
        a.to_str().unwrap().to_owned(),
    )
}

#[test]
fn releases_are_published_listed_and_rolled_out_from_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let p = start(&dir);

    let (_, err) = p.ok(&["release", "list"]);
    assert!(err.contains("no release is published yet"), "{err}");

    // Publish, twice (the same artifact: accepted again).
    let (bundle, artifact) = signed_release(tmp.path(), "1.1.0", b"agent binary 1.1.0");
    let (out, _) = p.ok(&["release", "publish", &bundle, &artifact]);
    assert!(
        out.starts_with(&format!("published patchctl-agent 1.1.0 for {X86}")),
        "{out}"
    );
    assert!(out.contains(&patchctl_release::sha256_hex(b"agent binary 1.1.0")));
    let again = p.json(&["release", "publish", &bundle, &artifact]);
    assert_eq!(again["version"], "1.1.0");
    // Another file than the one the manifest was signed for.
    let other = tmp.path().join("other");
    fs::write(&other, b"something else").unwrap();
    let err = p.fails(&["release", "publish", &bundle, other.to_str().unwrap()]);
    assert!(err.contains("release refused"), "{err}");
    assert!(err.contains("the manifest says 18"), "{err}");
    // Another artifact under the published version.
    let (b2, a2) = signed_release(tmp.path(), "1.1.0", b"a rebuilt 1.1.0");
    let err = p.fails(&["release", "publish", &b2, &a2]);
    assert!(
        err.contains("already published with another artifact"),
        "{err}"
    );
    // A file that is no bundle.
    let err = p.fails(&["release", "publish", &artifact, &artifact]);
    assert!(err.contains("is not a release bundle"), "{err}");

    let listed = p.json(&["release", "list"]);
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    let (table, _) = p.ok(&["release", "list"]);
    assert!(table.starts_with("PRODUCT"), "{table}");
    assert!(table.contains("patchctl-agent  1.1.0"), "{table}");

    // The rollout.
    let (out, _) = p.ok(&["release", "rollout"]);
    assert!(out.contains("no agent release is offered"), "{out}");
    let err = p.fails(&["release", "rollout", "9.9.9"]);
    assert!(
        err.contains("publish it first with patchctl release publish"),
        "{err}"
    );
    let err = p.fails(&["release", "rollout", "1.1.0", "--canary", "0"]);
    assert!(err.contains("0 is not in 1..=100"), "{err}");
    let err = p.fails(&["release", "rollout", "1.1.0", "--off"]);
    assert!(err.contains("cannot be used with"), "{err}");
    let (out, _) = p.ok(&["release", "rollout", "1.1.0", "--canary", "10"]);
    assert!(out.contains("canary of 10 %"), "{out}");
    assert_eq!(
        p.json(&["release", "rollout"]),
        json!({"version": "1.1.0", "canary_percent": 10})
    );
    let (out, _) = p.ok(&["release", "rollout", "1.1.0"]);
    assert!(out.contains("offered to every host"), "{out}");

    // An agent is offered the release, and reports how its update went.
    let enrolled = p.enroll("web-1");
    let hb = p.heartbeat(&enrolled.credential, vec![]);
    let offer = hb.agent_update.expect("an offer");
    assert_eq!(
        (offer.version.as_str(), offer.target.as_str()),
        ("1.1.0", X86)
    );
    p.heartbeat(
        &enrolled.credential,
        vec![UpdateEvent {
            at: Utc::now(),
            step: UpdateStep::RolledBack,
            version: "1.1.0".into(),
            detail: Some("the new binary exited at once".into()),
        }],
    );
    let (table, notes) = p.ok(&["hosts", "list"]);
    assert!(table.contains("AGENT UPDATE"), "{table}");
    assert!(table.contains("rolled_back 1.1.0"), "{table}");
    assert!(
        notes.contains(
            "web-1: the agent update to 1.1.0 was rolled back: the new binary exited at once"
        ),
        "{notes}"
    );
    let (shown, _) = p.ok(&["hosts", "show", "web-1"]);
    assert!(shown.contains("rolled_back 1.1.0"), "{shown}");
    assert!(shown.contains("the new binary exited at once"), "{shown}");
    let hosts = p.json(&["hosts", "list"]);
    assert_eq!(hosts[0]["agent_update"]["step"], "rolled_back");

    let (out, _) = p.ok(&["release", "rollout", "--off"]);
    assert!(out.contains("no agent release is offered"), "{out}");
    assert!(
        p.heartbeat(&enrolled.credential, vec![])
            .agent_update
            .is_none()
    );
}
