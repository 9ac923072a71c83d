//! The platform's install script (`GET /install.sh`, `dist/install.sh`) end to end: the
//! debug agent's .deb and .rpm (`dist/package/build.sh`, stripped binary), signed as the
//! products `patchctl-agent.deb` and `patchctl-agent.rpm` with the TEST release keys
//! (crates/patchctl-release/testdata) by `patchctl release sign-keys` and `sign`, and
//! published with `patchctl release publish` to a real `patchctl server --dev
//! --no-agent` on 127.0.0.1. A Debian container booted with systemd
//! (`common/container.rs`; it shares the host's network, so the platform's loopback
//! port) with curl and sudo added (cached as `<codename>-systemd-curl`) then runs
//! exactly what docs/releases.md tells users:
//!
//! ```sh
//! curl --proto '=https' --tlsv1.3 --cacert CA -fsS https://127.0.0.1:PORT/install.sh \
//!   | sudo sh -s -- --enrollment-key KEY --cacert CA
//! ```
//!
//! In order, in one container:
//! 1. the served package does not match the SHA-256 the script holds (the stored
//!    artifact rewritten in the platform's SQLite database, as an attacker holding the
//!    platform would): refused, and nothing is installed or configured;
//! 2. a key the platform does not know: the package is installed and the agent started
//!    (`systemctl enable` and `restart`), the script waits, reads the agent's refusal
//!    from the journal and stops with it, without printing the key;
//! 3. the right key: the script rewrites the config (the earlier one kept as
//!    `config.json.previous`), restarts the agent, which enrolls; the script says so and
//!    the host shows online in `patchctl hosts list`. Checked: the package installed
//!    (`dpkg-query`), `/opt/patchctl/bin/patchctl-agent` 0755 root:root,
//!    `/etc/patchctl` 0700, `config.json` 0600 root:root with the server URL, the key
//!    and the CA bundle (a private copy of the CA);
//! 4. the same again on the enrolled host: the agent restarted, its identity kept (one
//!    host, the same id), and the script says the key was not used;
//! 5. a newer package (1.0.1) whose stored artifact was rewritten: refused, 1.0.0 stays
//!    installed with its binary and config untouched.

// The harness boots a container and runs the binaries under test in it.
#![allow(clippy::disallowed_methods)]

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

use common::chroot::{cached_bootable_chroot, run};
use common::container::{Container, NSPAWN};
use common::packages::{build, cached_chroot_with, stripped_agent};
use common::platform::Platform;
use common::wait_for;
use patchctl_testkit::{Harness, Need, trial};
use serde_json::Value;

fn main() -> std::process::ExitCode {
    Harness::new()
        .test(
            trial!(the_install_script_verifies_installs_configures_and_enrolls).needs([
                Need::Root,
                Need::Program("debootstrap"),
                Need::Program("dpkg-deb"),
                Need::Program("rpmbuild"),
                Need::Program("chroot"),
                Need::Program("nsenter"),
                Need::Check(&NSPAWN),
            ]),
        )
        .run()
}

const TARGET: &str = "x86_64-unknown-linux-gnu";
/// Where the container holds the platform's CA (not /tmp: the booted container mounts
/// a tmpfs there).
const CA_IN_CONTAINER: &str = "/root/platform-ca.pem";
/// A key of the right shape that the platform never issued.
const WRONG_KEY: &str = "pek_0000notakeythisplatformissued";

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
}

/// The test release keys copied into `dir` (the CLI wants a secret key private), and
/// the signing-key list the test root signed with `patchctl release sign-keys`.
fn release_keys(plat: &Platform, dir: &Path) -> (PathBuf, PathBuf) {
    let testdata = Path::new(env!("CARGO_MANIFEST_DIR")).join("../patchctl-release/testdata");
    fs::create_dir_all(dir).unwrap();
    for f in ["test-root.key", "test-signing.key", "test-signing.pub"] {
        fs::copy(testdata.join(f), dir.join(f)).unwrap();
        fs::set_permissions(dir.join(f), fs::Permissions::from_mode(0o600)).unwrap();
    }
    let keys = dir.join("keys.json");
    let out = plat.cli(&[
        "release",
        "sign-keys",
        "--root",
        dir.join("test-root.key").to_str().unwrap(),
        "--key",
        dir.join("test-signing.pub").to_str().unwrap(),
        "--out",
        keys.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "sign-keys: {}", text(&out));
    (dir.join("test-signing.key"), keys)
}

/// Signs `artifact` as `product` `version` with `patchctl release sign` and publishes
/// it with `patchctl release publish`.
fn sign_and_publish(
    plat: &Platform,
    (key, keys): &(PathBuf, PathBuf),
    artifact: &Path,
    product: &str,
    version: &str,
) {
    let bundle = artifact.with_extension("release.json");
    let out = plat.cli(&[
        "release",
        "sign",
        "--key",
        key.to_str().unwrap(),
        "--keys",
        keys.to_str().unwrap(),
        "--artifact",
        artifact.to_str().unwrap(),
        "--version",
        version,
        "--product",
        product,
        "--target",
        TARGET,
        "--out",
        bundle.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "sign {product}: {}", text(&out));
    let out = plat.cli(&[
        "release",
        "publish",
        bundle.to_str().unwrap(),
        artifact.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "publish {product}: {}", text(&out));
}

/// Rewrites the stored artifact of `product` `version` in the platform's database.
fn set_artifact(plat: &Platform, product: &str, version: &str, bytes: &[u8]) {
    let db = plat.data.join("patchctl.db");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
            .await
            .unwrap();
        let done =
            sqlx::query("UPDATE releases SET artifact = ? WHERE product = ? AND version = ?")
                .bind(bytes)
                .bind(product)
                .bind(version)
                .execute(&pool)
                .await
                .unwrap();
        assert_eq!(done.rows_affected(), 1, "{product} {version}");
        pool.close().await;
    });
}

/// `bytes` with its last byte changed: the same size, another SHA-256.
fn altered(bytes: &[u8]) -> Vec<u8> {
    let mut b = bytes.to_vec();
    *b.last_mut().unwrap() ^= 0xff;
    b
}

/// The container and its root directory as the host sees it.
struct Host<'a> {
    ct: &'a Container,
    root: &'a Path,
    url: &'a str,
}

impl Host<'_> {
    /// Runs the documented command line with `key`: (success, everything it printed).
    fn install(&self, key: &str) -> (bool, String) {
        let line = format!(
            "curl --proto '=https' --tlsv1.3 --cacert {CA_IN_CONTAINER} -fsS {}/install.sh | sudo sh -s -- --enrollment-key {key} --cacert {CA_IN_CONTAINER}",
            self.url
        );
        let started = Instant::now();
        let out = self.ct.run(&["sh", "-c", &line]);
        eprintln!(
            "install.sh ({:.1} s):\n{}",
            started.elapsed().as_secs_f64(),
            text(&out)
        );
        (out.status.success(), text(&out))
    }

    fn at(&self, rel: &str) -> PathBuf {
        self.root.join(rel.trim_start_matches('/'))
    }

    fn exists(&self, rel: &str) -> bool {
        fs::symlink_metadata(self.at(rel)).is_ok()
    }

    /// (mode bits, uid, gid) of a path inside.
    fn meta(&self, rel: &str) -> (u32, u32, u32) {
        let m = fs::symlink_metadata(self.at(rel)).unwrap();
        (m.mode() & 0o7777, m.uid(), m.gid())
    }

    /// `Status Version` of the agent's package, or dpkg-query's complaint.
    fn package(&self) -> String {
        let out = self.ct.run(&[
            "dpkg-query",
            "-W",
            "-f",
            "${Status} ${Version}",
            "patchctl-agent",
        ]);
        text(&out).trim().to_owned()
    }
}

fn the_install_script_verifies_installs_configures_and_enrolls() {
    let started = Instant::now();
    let cached = cached_chroot_with(
        &cached_bootable_chroot(),
        "systemd-curl",
        &["curl", "sudo"],
        "usr/bin/sudo",
    );
    let work = tempfile::Builder::new()
        .prefix("patchctl-install-script-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let root = work.path().join("root");
    run(Command::new("cp").arg("-a").arg(&cached).arg(&root));

    // The packages, signed and published.
    let agent = stripped_agent(work.path());
    let out = work.path().join("out");
    // Two builder runs at once: most of their time is xz compressing the binary.
    let (deb, rpm) = std::thread::scope(|s| {
        let deb = s.spawn(|| build(&agent, "1.0.0", "deb", &out.join("deb")).remove(0));
        let rpm = s.spawn(|| build(&agent, "1.0.0", "rpm", &out.join("rpm")).remove(0));
        (deb.join().unwrap(), rpm.join().unwrap())
    });
    let plat = Platform::start(
        &work.path().join("platform"),
        &work.path().join("platform.log"),
    );
    let keys = release_keys(&plat, &work.path().join("keys"));
    sign_and_publish(&plat, &keys, &deb, "patchctl-agent.deb", "1.0.0");
    sign_and_publish(&plat, &keys, &rpm, "patchctl-agent.rpm", "1.0.0");
    let deb_bytes = fs::read(&deb).unwrap();
    let deb_sha = patchctl_release::sha256_hex(&deb_bytes);
    let rpm_sha = patchctl_release::sha256_hex(&fs::read(&rpm).unwrap());

    fs::copy(
        plat.ca_file(),
        root.join(CA_IN_CONTAINER.trim_start_matches('/')),
    )
    .unwrap();
    let ct = Container::boot(&root, &work.path().join("nspawn.log"), "patchctl-install");
    let host = Host {
        ct: &ct,
        root: &root,
        url: &plat.url,
    };
    let key = plat.enrollment_key().to_owned();

    // The script as served to the container: this platform's URL and both packages.
    let served = ct.ok(&[
        "curl",
        "--proto",
        "=https",
        "--tlsv1.3",
        "--cacert",
        CA_IN_CONTAINER,
        "-fsS",
        &format!("{}/install.sh", plat.url),
    ]);
    assert!(
        served.contains(&format!("PLATFORM_URL='{}'", plat.url)),
        "{served}"
    );
    for (family, sha) in [("deb", &deb_sha), ("rpm", &rpm_sha)] {
        let line = format!(
            "{family} {TARGET} 1.0.0 /downloads/patchctl-agent.{family}/1.0.0/{TARGET} {sha}\n"
        );
        assert!(served.contains(&line), "{line} not in {served}");
    }

    // 1. The served package is not the one the signed manifest describes: refused
    // before anything is installed.
    set_artifact(&plat, "patchctl-agent.deb", "1.0.0", &altered(&deb_bytes));
    let (ok, said) = host.install(&key);
    assert!(!ok, "a tampered package was accepted: {said}");
    assert!(said.contains("SHA-256"), "{said}");
    assert!(said.contains("nothing was installed"), "{said}");
    assert!(!said.contains(&key), "the key was printed: {said}");
    assert!(
        host.package().contains("no packages found"),
        "{}",
        host.package()
    );
    for p in ["/opt/patchctl", "/etc/patchctl", "/var/lib/patchctl"] {
        assert!(!host.exists(p), "{p} exists after a refused install");
    }
    set_artifact(&plat, "patchctl-agent.deb", "1.0.0", &deb_bytes);

    // 2. A key the platform never issued: installed and started, and the script stops
    // with the platform's refusal.
    let (ok, said) = host.install(WRONG_KEY);
    assert!(!ok, "a wrong key was reported as enrolled: {said}");
    assert!(said.contains("not enrolled"), "{said}");
    assert!(said.contains("unknown enrollment key"), "{said}");
    assert!(
        said.contains("Run this script again with a current key"),
        "{said}"
    );
    assert!(!said.contains(WRONG_KEY), "the key was printed: {said}");
    assert!(!host.exists("/etc/patchctl/credential.json"));

    // 3. The right key: the config rewritten, the agent restarted; it enrolls.
    let (ok, said) = host.install(&key);
    assert!(ok, "install.sh failed: {said}");
    assert!(said.contains("SHA-256 verified"), "{said}");
    assert!(said.contains("the agent enrolled"), "{said}");
    assert!(!said.contains(&key), "the key was printed: {said}");
    assert_eq!(host.package(), "install ok installed 1.0.0");
    assert_eq!(host.meta("/opt/patchctl/bin/patchctl-agent"), (0o755, 0, 0));
    assert_eq!(host.meta("/etc/patchctl"), (0o700, 0, 0));
    assert_eq!(host.meta("/etc/patchctl/config.json"), (0o600, 0, 0));
    assert_eq!(host.meta("/etc/patchctl/ca.pem"), (0o600, 0, 0));
    assert_eq!(
        fs::read(host.at("/etc/patchctl/ca.pem")).unwrap(),
        fs::read(plat.ca_file()).unwrap()
    );
    let config_text = fs::read_to_string(host.at("/etc/patchctl/config.json")).unwrap();
    let config: Value = serde_json::from_str(&config_text).unwrap();
    assert_eq!(config["server_url"], plat.url.as_str());
    assert_eq!(config["license_key"], key.as_str());
    assert_eq!(config["ca_bundle"], "/etc/patchctl/ca.pem");
    let previous: Value =
        serde_json::from_slice(&fs::read(host.at("/etc/patchctl/config.json.previous")).unwrap())
            .unwrap();
    assert_eq!(previous["license_key"], WRONG_KEY);
    assert_eq!(host.meta("/etc/patchctl/config.json.previous").0, 0o600);
    assert_eq!(ct.show("patchctl.service", "UnitFileState"), "enabled");
    assert_eq!(ct.show("patchctl.service", "ActiveState"), "active");
    let hostname = ct
        .ok(&["cat", "/proc/sys/kernel/hostname"])
        .trim()
        .to_owned();
    let listed = wait_for("the container's host online", 30, || {
        plat.json(&["hosts", "list"])
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["hostname"] == hostname.as_str() && h["status"] == "online")
            .cloned()
    });
    assert_eq!(plat.json(&["hosts", "list"]).as_array().unwrap().len(), 1);
    let table = text(&plat.cli(&["hosts", "list"]));
    assert!(
        table
            .lines()
            .any(|l| l.contains(&hostname) && l.contains("online")),
        "{table}"
    );
    eprintln!("enrolled: {listed}");

    // Run again on the enrolled host: the agent restarted, its identity kept.
    let pid = ct.show("patchctl.service", "MainPID");
    let (ok, said) = host.install(&key);
    assert!(ok, "install.sh run again failed: {said}");
    assert!(said.contains("already enrolled"), "{said}");
    assert_ne!(ct.show("patchctl.service", "MainPID"), pid, "not restarted");
    let hosts = plat.json(&["hosts", "list"]);
    assert_eq!(hosts.as_array().unwrap().len(), 1, "{hosts}");
    assert_eq!(hosts[0]["id"], listed["id"]);
    let config_text = fs::read_to_string(host.at("/etc/patchctl/config.json")).unwrap();

    // 5. A newer package whose stored artifact was rewritten: refused; 1.0.0 stays, its
    // binary and config untouched.
    // The 1.0.0 .deb's bytes, signed and published as 1.0.1 (the platform does not read
    // a package's own version, and the script never gets to install it), then altered.
    let binary = fs::read(host.at("/opt/patchctl/bin/patchctl-agent")).unwrap();
    let deb2 = out.join("patchctl-agent_1.0.1_amd64.deb");
    fs::copy(&deb, &deb2).unwrap();
    sign_and_publish(&plat, &keys, &deb2, "patchctl-agent.deb", "1.0.1");
    set_artifact(&plat, "patchctl-agent.deb", "1.0.1", &altered(&deb_bytes));
    let (ok, said) = host.install(&key);
    assert!(!ok, "a tampered upgrade was accepted: {said}");
    assert!(said.contains("patchctl-agent 1.0.1"), "{said}");
    assert!(said.contains("nothing was installed"), "{said}");
    assert_eq!(host.package(), "install ok installed 1.0.0");
    assert_eq!(
        fs::read(host.at("/opt/patchctl/bin/patchctl-agent")).unwrap(),
        binary
    );
    assert_eq!(
        fs::read_to_string(host.at("/etc/patchctl/config.json")).unwrap(),
        config_text
    );

    // The agent's first scan refreshes apt's lists, and a stop waits for the command in
    // progress (TimeoutStopSec=1h): end it all now, or the container's shutdown waits.
    ct.run(&["systemctl", "kill", "--signal=SIGKILL", "patchctl.service"]);
    eprintln!("done in {:.1} s", started.elapsed().as_secs_f64());
}
