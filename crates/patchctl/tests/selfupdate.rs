//! The agent's signed self-update, end to end with real files and real processes: a
//! real `patchctl server --dev` on loopback, the real `patchctl-agent` binary running
//! from its own install directory, releases signed with the test root (which debug
//! builds trust; crates/patchctl-release/testdata) and published with
//! `patchctl release publish`.
//!
//! Shown here: an update that is downloaded, verified, swapped, confirmed and handed
//! over (same process id); binaries that exit at once or never reach the platform,
//! rolled back; every attack refused with its reason reaching the platform, the audit
//! log holding it, and the running binary byte for byte untouched: a bad signature, an
//! unknown root, an unknown signing key, an expired signing-key list, an expired
//! manifest, an older version, the same version, a hash mismatch, a short (truncated)
//! artifact, an oversize download, the wrong target, the wrong product, a self-test that
//! fails, a signed script (the agent never starts a shell), and a full disk while
//! staging (a real tmpfs, root only). The broken binaries are a FAKE agent, a real
//! native executable compiled from `tests/data/fake_agent.rs`.
//!
//! Releases the platform itself refuses at publishing (bad signatures, expiries, a hash
//! that does not match) reach the agent here only because the test rewrites the stored
//! release in the platform's database: an attacker who holds the platform.

// The harness starts the binaries under test; the no-spawn rule is for agent code.
#![allow(clippy::disallowed_methods)]

mod agent_platform;
mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Instant;

use agent_platform::{Platform, Proc, agent_bin, agent_config, identity};
use chrono::Utc;
use common::wait_for;
use patchctl_release::{KeyRole, MANIFEST_KIND, Manifest, ReleaseBundle, SecretKey};
use patchctl_testkit::{Harness, Need, trial};
use serde_json::{Value, json};

fn main() -> std::process::ExitCode {
    Harness::new()
        .test(trial!(
            an_update_is_verified_swapped_confirmed_and_handed_over
        ))
        .test(trial!(broken_binaries_are_rolled_back))
        .test(trial!(every_attack_is_refused_and_the_binary_stays))
        .test(trial!(the_same_version_again_is_refused))
        .test(trial!(a_full_disk_while_staging_is_refused).needs([Need::Root]))
        .run()
}

const TARGET: &str = "x86_64-unknown-linux-gnu";

fn testdata(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../patchctl-release/testdata")
        .join(name)
}

fn test_key(name: &str) -> SecretKey {
    SecretKey::from_file(&fs::read_to_string(testdata(name)).unwrap()).unwrap()
}

fn sha256_file(p: &Path) -> String {
    patchctl_release::sha256_hex(&fs::read(p).unwrap())
}

/// How one release is signed.
struct Sign {
    version: String,
    product: String,
    target: String,
    root: SecretKey,
    signer: SecretKey,
    /// The signing key the root lists (the signer, unless a case says otherwise).
    listed: Option<SecretKey>,
    keys_expire: chrono::DateTime<Utc>,
    manifest_expires: chrono::DateTime<Utc>,
}

impl Sign {
    fn new(version: &str) -> Sign {
        Sign {
            version: version.into(),
            product: "patchctl-agent".into(),
            target: TARGET.into(),
            root: test_key("test-root.key"),
            signer: test_key("test-signing.key"),
            listed: None,
            keys_expire: Utc::now() + chrono::Duration::days(30),
            manifest_expires: Utc::now() + chrono::Duration::days(30),
        }
    }

    fn bundle(&self, artifact: &[u8]) -> ReleaseBundle {
        let listed = self.listed.as_ref().unwrap_or(&self.signer).public();
        let keys = patchctl_release::sign_key_list(
            &[&self.root],
            &[listed],
            Utc::now() - chrono::Duration::days(60),
            self.keys_expire,
        )
        .unwrap();
        let manifest = Manifest {
            kind: MANIFEST_KIND.into(),
            product: self.product.clone(),
            version: self.version.clone(),
            target: self.target.clone(),
            sha256: patchctl_release::sha256_hex(artifact),
            size: artifact.len() as u64,
            channel: "stable".into(),
            created: Utc::now() - chrono::Duration::days(60),
            expires: self.manifest_expires,
        };
        ReleaseBundle {
            keys,
            manifest: patchctl_release::sign_manifest(&self.signer, &manifest).unwrap(),
        }
    }
}

/// A platform, an agent installed in its own directory and running from there.
struct Rig {
    tmp: tempfile::TempDir,
    plat: Platform,
    bin: PathBuf,
    agent_dir: PathBuf,
    agent: Proc,
    host: String,
    original_sha: String,
}

/// A stripped copy of the agent binary (small enough to publish quickly).
fn stripped_agent(into: &Path) -> PathBuf {
    let dest = into.join("patchctl-agent");
    fs::create_dir_all(into).unwrap();
    let st = Command::new("strip")
        .arg("-o")
        .arg(&dest)
        .arg(agent_bin())
        .status()
        .unwrap();
    assert!(st.success(), "strip failed");
    fs::set_permissions(&dest, fs::Permissions::from_mode(0o755)).unwrap();
    dest
}

impl Rig {
    fn start(seed_state: Option<Value>, install_dir: Option<PathBuf>) -> Rig {
        let tmp = tempfile::tempdir().unwrap();
        let plat = Platform::start(&tmp.path().join("platform"));
        let bin_dir = install_dir.unwrap_or_else(|| tmp.path().join("opt/bin"));
        let bin = stripped_agent(&bin_dir);
        let agent_dir = tmp.path().join("agent");
        let cfg = agent_config(
            &agent_dir,
            &plat,
            json!({ "update_confirm_secs": 10, "credential_rotation_days": 0 }),
        );
        if let Some(state) = seed_state {
            let sd = agent_dir.join("state");
            fs::create_dir_all(&sd).unwrap();
            fs::write(sd.join("update.json"), state.to_string()).unwrap();
        }
        let agent = Proc::spawn(
            Command::new(&bin).args(["run", "--config"]).arg(&cfg),
            &tmp.path().join("agent.log"),
        );
        let host = wait_for("the agent's credential", 60, || {
            identity(&agent_dir).and_then(|v| v["host_id"].as_str().map(str::to_owned))
        });
        let original_sha = sha256_file(&bin);
        let rig = Rig {
            tmp,
            plat,
            bin,
            agent_dir,
            agent,
            host,
            original_sha,
        };
        wait_for("the host online", 60, || {
            (rig.host_json()["status"] == "online").then_some(())
        });
        rig
    }

    fn host_json(&self) -> Value {
        self.plat
            .hosts()
            .into_iter()
            .find(|h| h["id"] == self.host.as_str())
            .unwrap_or(Value::Null)
    }

    /// Signs `artifact` as `sign` says, publishes it with the CLI, rolls it out.
    fn publish(&self, sign: &Sign, artifact: &[u8]) {
        let dir = self.tmp.path().join(format!("release-{}", sign.version));
        fs::create_dir_all(&dir).unwrap();
        let art = dir.join("artifact");
        fs::write(&art, artifact).unwrap();
        let bundle = dir.join("bundle.json");
        fs::write(&bundle, serde_json::to_vec(&sign.bundle(artifact)).unwrap()).unwrap();
        let out = self.plat.cli(&[
            "release",
            "publish",
            bundle.to_str().unwrap(),
            art.to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "publish {}: {}",
            sign.version,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn rollout(&self, version: &str) {
        let out = self.plat.cli(&["release", "rollout", version]);
        assert!(
            out.status.success(),
            "rollout {version}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Rewrites the stored release `version` in the platform's database, as an attacker
    /// holding the platform would: its bundle, artifact, product or target.
    fn tamper(&self, version: &str, set: &[(&str, Tampered)]) {
        let db = self.tmp.path().join("platform/patchctl.db");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
                .await
                .unwrap();
            for (column, value) in set {
                let sql = format!("UPDATE releases SET {column} = ? WHERE version = ?");
                let q = sqlx::query(&sql);
                let q = match value {
                    Tampered::Text(t) => q.bind(t.clone()),
                    Tampered::Bytes(b) => q.bind(b.clone()),
                    Tampered::Int(i) => q.bind(*i),
                };
                let done = q.bind(version).execute(&pool).await.unwrap();
                assert_eq!(done.rows_affected(), 1, "{sql} for {version}");
            }
            pool.close().await;
        });
    }

    /// Waits until the platform shows `step` for `version`, and returns the detail.
    fn await_step(&self, version: &str, step: &str, secs: u64) -> String {
        wait_for(
            &format!("{step} of {version} on the platform"),
            secs,
            || {
                let h = self.host_json();
                let u = &h["agent_update"];
                (u["version"] == version && u["step"] == step)
                    .then(|| u["detail"].as_str().unwrap_or("").to_owned())
            },
        )
    }

    /// The running binary is what it was, nothing is left in staging, the agent runs.
    fn assert_untouched(&mut self) {
        assert_eq!(
            sha256_file(&self.bin),
            self.original_sha,
            "the running binary changed"
        );
        assert!(
            !self.bin.with_file_name(".patchctl-agent.staging").exists(),
            "a staging file was left"
        );
        assert!(self.agent.running(), "the agent stopped");
    }

    fn log(&self) -> String {
        self.agent.log_text()
    }
}

/// How one attack case prepares its release on the platform.
type Prepare = Box<dyn Fn(&Rig, &str)>;
/// (version, what the refusal must say, how to prepare it).
type Case = (&'static str, &'static str, Prepare);

enum Tampered {
    Text(String),
    Bytes(Vec<u8>),
    Int(i64),
}

/// The FAKE agent (`tests/data/fake_agent.rs`), compiled once per test run with rustc:
/// a real native executable, as the agent runs nothing else.
fn fake_agent_binary() -> &'static [u8] {
    static BIN: OnceLock<Vec<u8>> = OnceLock::new();
    BIN.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("fake-agent");
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/fake_agent.rs");
        let rustc = std::env::var_os("CARGO")
            .map(|c| PathBuf::from(c).with_file_name("rustc"))
            .filter(|r| r.exists())
            .unwrap_or_else(|| PathBuf::from("rustc"));
        let st = Command::new(rustc)
            .args(["--edition", "2021", "-C", "opt-level=1", "-o"])
            .arg(&out)
            .arg(&src)
            .status()
            .expect("rustc runs");
        assert!(st.success(), "compiling {}", src.display());
        fs::read(&out).unwrap()
    })
}

/// The fake agent with `modes` in its trailer (see `tests/data/fake_agent.rs`): each
/// combination is a different file, so a different signed release.
fn fake(modes: &[&str]) -> Vec<u8> {
    let mut bin = fake_agent_binary().to_vec();
    bin.push(b'\n');
    for m in modes {
        bin.extend_from_slice(format!("PATCHCTL-FAKE:{m}\n").as_bytes());
    }
    bin
}

fn an_update_is_verified_swapped_confirmed_and_handed_over() {
    let rig = Rig::start(None, None);
    let pid = rig.agent.child.id();
    let new = fs::read(&rig.bin).unwrap();
    rig.publish(&Sign::new("0.2.0"), &new);
    let announced = Instant::now();
    rig.rollout("0.2.0");
    let detail = rig.await_step("0.2.0", "confirmed", 90);
    let took = announced.elapsed();
    assert!(detail.contains("reached the platform"), "{detail}");
    // The same process now runs the new binary and reports the release's version.
    wait_for("agent_version 0.2.0", 30, || {
        (rig.host_json()["agent_version"] == "0.2.0").then_some(())
    });
    assert_eq!(
        fs::read_link(format!("/proc/{pid}/exe")).unwrap(),
        rig.bin,
        "the agent process was replaced in place (same pid)"
    );
    let previous = rig.bin.with_file_name("patchctl-agent.previous");
    assert_eq!(sha256_file(&previous), rig.original_sha);
    let state: Value =
        serde_json::from_slice(&fs::read(rig.agent_dir.join("state/update.json")).unwrap())
            .unwrap();
    assert_eq!(state["running"]["version"], "0.2.0");
    assert_eq!(state["highest_accepted"], "0.2.0");
    let log = rig.log();
    for step in ["downloaded", "verified", "swapped", "confirmed"] {
        assert!(
            log.contains(&format!("self-update {step}")),
            "audit log lacks {step}: {log}"
        );
    }
    println!("update: announcement to confirmed in {took:?}");
    if let Ok(path) = std::env::var("PATCHCTL_BENCH_UPDATE_OUT") {
        fs::write(path, format!("{}", took.as_millis())).unwrap();
    }
}

fn broken_binaries_are_rolled_back() {
    let mut rig = Rig::start(None, None);
    let pid = rig.agent.child.id();
    rig.publish(&Sign::new("0.2.0"), &fake(&[]));
    rig.rollout("0.2.0");
    let detail = rig.await_step("0.2.0", "rolled_back", 90);
    assert!(detail.contains("exited"), "{detail}");
    assert!(detail.contains("restored"), "{detail}");
    rig.assert_untouched();
    assert_eq!(rig.agent.child.id(), pid);
    // A binary that starts and never reaches the platform: rolled back after the
    // confirmation time (10 s here).
    rig.publish(&Sign::new("0.3.0"), &fake(&["hang"]));
    rig.rollout("0.3.0");
    let detail = rig.await_step("0.3.0", "rolled_back", 90);
    assert!(
        detail.contains("did not reach the platform within 10 s"),
        "{detail}"
    );
    rig.assert_untouched();
    // Still the same agent, still heartbeating, on its old version.
    let h = rig.host_json();
    assert_eq!(h["status"], "online");
    assert_eq!(h["agent_version"], patchctl_agent::VERSION);
    let log = rig.log();
    assert!(log.contains("self-update rolled_back"), "{log}");
}

fn every_attack_is_refused_and_the_binary_stays() {
    let mut rig = Rig::start(None, None);
    // Every artifact here leaves a mark when anything runs it, even its self-test: no
    // refused artifact may ever have run (no unsigned code runs).
    let ran = rig.tmp.path().join("an-artifact-ran");
    let mark = format!("mark={}", ran.display());
    let good = fake(&[&mark]);
    let stranger = SecretKey::from_seed(KeyRole::Root, [42; 32]);
    let stranger_signing = SecretKey::from_seed(KeyRole::Signing, [43; 32]);
    let past = Utc::now() - chrono::Duration::days(1);
    let publish_with = |f: fn(&mut Sign)| {
        let good = good.clone();
        Box::new(move |rig: &Rig, v: &str| {
            let mut s = Sign::new(v);
            f(&mut s);
            rig.publish(&s, &good);
        }) as Prepare
    };
    // Published good, then rewritten in the platform's database.
    let rewritten = |f: Prepare| {
        let good = good.clone();
        Box::new(move |rig: &Rig, v: &str| {
            rig.publish(&Sign::new(v), &good);
            f(rig, v);
        }) as Prepare
    };
    let bundle_json = |b: &ReleaseBundle| Tampered::Text(serde_json::to_string(b).unwrap());
    let cases: Vec<Case> = vec![
        ("0.2.1", "signed only by keys this agent does not trust", {
            let s = stranger.to_file();
            let t = stranger_signing.to_file();
            let good = good.clone();
            Box::new(move |rig: &Rig, v: &str| {
                let mut sign = Sign::new(v);
                sign.root = SecretKey::from_file(&s).unwrap();
                sign.signer = SecretKey::from_file(&t).unwrap();
                rig.publish(&sign, &good);
            })
        }),
        ("0.0.9", "not newer than", publish_with(|_| {})),
        (
            "0.2.2",
            "does not verify",
            rewritten({
                let good = good.clone();
                Box::new(move |rig: &Rig, v: &str| {
                    let mut b = Sign::new(v).bundle(&good);
                    b.manifest.signed = b.manifest.signed.replace("stable", "beta");
                    rig.tamper(v, &[("bundle_json", bundle_json(&b))]);
                })
            }),
        ),
        (
            "0.2.3",
            "the manifest is signed only by keys this agent does not trust",
            rewritten({
                let good = good.clone();
                let t = stranger_signing.to_file();
                Box::new(move |rig: &Rig, v: &str| {
                    let mut sign = Sign::new(v);
                    sign.signer = SecretKey::from_file(&t).unwrap();
                    sign.listed = Some(test_key("test-signing.key"));
                    rig.tamper(v, &[("bundle_json", bundle_json(&sign.bundle(&good)))]);
                })
            }),
        ),
        (
            "0.2.4",
            "signing-key list expired",
            rewritten({
                let good = good.clone();
                Box::new(move |rig: &Rig, v: &str| {
                    let mut sign = Sign::new(v);
                    sign.keys_expire = past;
                    rig.tamper(v, &[("bundle_json", bundle_json(&sign.bundle(&good)))]);
                })
            }),
        ),
        (
            "0.2.5",
            "the manifest expired",
            rewritten({
                let good = good.clone();
                Box::new(move |rig: &Rig, v: &str| {
                    let mut sign = Sign::new(v);
                    sign.manifest_expires = past;
                    rig.tamper(v, &[("bundle_json", bundle_json(&sign.bundle(&good)))]);
                })
            }),
        ),
        (
            "0.2.6",
            "SHA-256",
            rewritten({
                let mut other = good.clone();
                let n = other.len() - 2;
                other[n] = b'1';
                Box::new(move |rig: &Rig, v: &str| {
                    rig.tamper(v, &[("artifact", Tampered::Bytes(other.clone()))]);
                })
            }),
        ),
        (
            "0.2.7",
            "the manifest says",
            rewritten({
                let short = good[..good.len() / 2].to_vec();
                Box::new(move |rig: &Rig, v: &str| {
                    rig.tamper(
                        v,
                        &[
                            ("artifact", Tampered::Bytes(short.clone())),
                            ("size", Tampered::Int(short.len() as i64)),
                        ],
                    );
                })
            }),
        ),
        (
            "0.2.8",
            "larger than",
            rewritten({
                let mut long = good.clone();
                long.extend(std::iter::repeat_n(b'#', 4096));
                Box::new(move |rig: &Rig, v: &str| {
                    rig.tamper(
                        v,
                        &[
                            ("artifact", Tampered::Bytes(long.clone())),
                            ("size", Tampered::Int(long.len() as i64)),
                        ],
                    );
                })
            }),
        ),
        ("0.2.9", "but this agent runs on", {
            let good = good.clone();
            Box::new(move |rig: &Rig, v: &str| {
                let mut sign = Sign::new(v);
                sign.target = "aarch64-unknown-linux-gnu".into();
                rig.publish(&sign, &good);
                rig.tamper(v, &[("target", Tampered::Text(TARGET.into()))]);
            })
        }),
        ("0.2.10", "is for product", {
            let good = good.clone();
            Box::new(move |rig: &Rig, v: &str| {
                let mut sign = Sign::new(v);
                sign.product = "patchctl-agent.deb".into();
                rig.publish(&sign, &good);
                rig.tamper(v, &[("product", Tampered::Text("patchctl-agent".into()))]);
            })
        }),
        ("0.2.11", "self-test failed (exit code 7)", {
            let failing = fake(&["fail-self-test"]);
            Box::new(move |rig: &Rig, v: &str| rig.publish(&Sign::new(v), &failing))
        }),
        // Signed, right size and hash, but a script: the agent never starts a shell, so
        // it refuses it before anything runs it (the script would leave the mark).
        ("0.2.12", "not an ELF executable", {
            let script = format!(
                "#!/bin/sh\ntouch {}\necho '{{\"product\":\"patchctl-agent\",\"version\":\"9.9.9\",\"target\":\"{TARGET}\",\"roots\":1}}'\n",
                ran.display()
            )
            .into_bytes();
            Box::new(move |rig: &Rig, v: &str| rig.publish(&Sign::new(v), &script))
        }),
    ];
    for (version, reason, prepare) in &cases {
        prepare(&rig, version);
        rig.rollout(version);
        let detail = rig.await_step(version, "refused", 60);
        assert!(
            detail.contains(reason),
            "{version}: expected {reason:?} in the refusal, got {detail:?}"
        );
        rig.assert_untouched();
        assert!(
            !ran.exists(),
            "{version}: a refused artifact ran before it was refused"
        );
        println!("{version}: refused: {detail}");
    }
    let log = rig.log();
    assert!(
        log.matches("self-update refused").count() >= cases.len(),
        "every refusal is in the audit log"
    );
    assert_eq!(rig.host_json()["agent_version"], patchctl_agent::VERSION);
}

fn the_same_version_again_is_refused() {
    // This agent accepted 0.2.0 before (and, say, rolled it back): 0.2.0 again is
    // refused by rollback protection, whatever the platform says.
    let mut rig = Rig::start(Some(json!({ "highest_accepted": "0.2.0" })), None);
    rig.publish(&Sign::new("0.2.0"), &fake(&[]));
    rig.rollout("0.2.0");
    let detail = rig.await_step("0.2.0", "refused", 60);
    assert!(
        detail.contains("is not newer than 0.2.0") && detail.contains("rollback protection"),
        "{detail}"
    );
    rig.assert_untouched();
}

fn a_full_disk_while_staging_is_refused() {
    // The agent's install directory is a real tmpfs with room for the binary and
    // little more: staging the new binary fills it.
    let mnt = tempfile::tempdir().unwrap();
    let measure = tempfile::tempdir().unwrap();
    let size = fs::metadata(stripped_agent(measure.path())).unwrap().len();
    let st = Command::new("mount")
        .args(["-t", "tmpfs", "-o"])
        .arg(format!("size={}", size + 512 * 1024))
        .arg("tmpfs")
        .arg(mnt.path())
        .status()
        .unwrap();
    assert!(st.success(), "mount tmpfs");
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
    let _guard = Unmount(mnt.path().to_owned());
    let mut rig = Rig::start(None, Some(mnt.path().join("bin")));
    let big = fs::read(&rig.bin).unwrap();
    rig.publish(&Sign::new("0.2.0"), &big);
    rig.rollout("0.2.0");
    let detail = rig.await_step("0.2.0", "refused", 60);
    assert!(
        detail.contains("No space left on device") && detail.contains("free space"),
        "{detail}"
    );
    rig.assert_untouched();
    drop(rig);
}
