//! `patchctl-agent doctor`, the real binary, against the real conditions it diagnoses: a
//! healthy development platform, a CA bundle from another CA, a closed port, an expired
//! certificate, a certificate for another name, a configuration others can read, the
//! real dpkg lock held by another process, a revoked credential (the agent's marker, and
//! the platform's own answer), and a credential the platform accepts.
//!
//! The platform's side of `whoami` and of `403 credential_revoked` comes with issue 10's
//! server work; `doctor_says_the_platform_accepts_the_credential` and
//! `doctor_confirms_a_revocation_with_the_platform` need it.

// The harness starts the binaries under test; the no-spawn rule is for agent code.
#![allow(clippy::disallowed_methods)]

mod agent_platform;
mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use agent_platform::{
    Doctor, Platform, agent_config, doctor, enrolled_agent, tls_server, write_config,
};
use patchctl_net::testing::TestCa;
use patchctl_testkit::{Harness, Need, trial};
use serde_json::{Value, json};

fn main() -> std::process::ExitCode {
    Harness::new()
        .test(trial!(doctor_on_a_healthy_platform_text_json_and_exit_code))
        .test(trial!(
            doctor_names_the_issuer_a_wrong_ca_bundle_does_not_trust
        ))
        .test(trial!(doctor_tells_a_closed_port_and_skips_what_follows))
        .test(trial!(doctor_dates_an_expired_certificate))
        .test(trial!(
            doctor_lists_the_names_of_a_certificate_for_another_host
        ))
        .test(trial!(doctor_explains_config_permissions))
        .test(
            trial!(doctor_names_the_process_holding_the_dpkg_lock)
                .needs([Need::Root, Need::File("/var/lib/dpkg/lock-frontend")]),
        )
        .test(trial!(
            doctor_reports_the_revoked_marker_and_reenroll_clears_it
        ))
        .test(trial!(doctor_says_the_platform_accepts_the_credential))
        .test(trial!(doctor_confirms_a_revocation_with_the_platform))
        .run()
}

/// Doctor reads the real dpkg lock, which one test holds: doctor runs one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn run_doctor(cfg: &Path, args: &[&str]) -> Doctor {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    doctor(cfg, args)
}

fn json_doctor(cfg: &Path) -> Doctor {
    let d = run_doctor(cfg, &["--output", "json"]);
    assert!(d.stderr.is_empty(), "doctor wrote to stderr: {}", d.stderr);
    d
}

fn assert_levels(d: &Doctor, want: &[(&str, &str)]) {
    for (name, level) in want {
        assert_eq!(
            d.level(name),
            *level,
            "{name}: {}\n{}",
            d.check(name),
            d.stdout
        );
    }
}

/// The config of an agent that has never run, for `url`, trusting `ca`.
fn config_for(dir: &Path, url: &str, ca: &Path) -> std::path::PathBuf {
    write_config(
        dir,
        &json!({"server_url": url, "license_key": "canary-doctor-license", "ca_bundle": ca}),
    )
}

fn doctor_on_a_healthy_platform_text_json_and_exit_code() {
    let tmp = tempfile::tempdir().unwrap();
    let plat = Platform::start(&tmp.path().join("platform"));
    let cfg = agent_config(&tmp.path().join("agent"), &plat, json!({}));

    let text = run_doctor(&cfg, &[]);
    assert_eq!(text.code, Some(0), "{}{}", text.stdout, text.stderr);
    for name in [
        "config_present",
        "config_valid",
        "config_private",
        "ca_bundle",
        "dns",
        "tcp",
        "tls",
        "clock",
    ] {
        assert!(
            text.stdout
                .lines()
                .any(|l| l.starts_with("[ ok ] ") && l[7..].starts_with(name)),
            "no ok line for {name}:\n{}",
            text.stdout
        );
    }
    // Standard output is a pipe here: no terminal colours.
    assert!(!text.stdout.contains('\u{1b}'), "{:?}", text.stdout);
    assert!(
        text.stdout.contains("TLS 1.3 with localhost, verified"),
        "{}",
        text.stdout
    );
    // Never enrolled: a warning with its remedy on the next line.
    let lines: Vec<&str> = text.stdout.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with("[warn] credential"))
        .unwrap_or_else(|| panic!("{}", text.stdout));
    assert!(lines[at].contains("not enrolled yet"), "{}", lines[at]);
    assert!(
        lines[at + 1]
            .trim_start()
            .starts_with("fix: start the agent"),
        "{}",
        lines[at + 1]
    );

    let d = json_doctor(&cfg);
    assert_eq!(d.code, Some(0));
    let v = d.json();
    assert_eq!(v["result"], "ok");
    assert_eq!(v["config"], cfg.display().to_string());
    let checks = v["checks"].as_array().unwrap();
    let names: Vec<&str> = checks.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "config_present",
            "config_valid",
            "config_private",
            "ca_bundle",
            "dns",
            "tcp",
            "tls",
            "clock",
            "credential",
            "package_manager",
            "disk:/",
            "disk:/var",
            "disk:/boot",
            "journald",
            "unit"
        ]
    );
    for c in checks {
        let obj = c.as_object().unwrap();
        let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(keys, ["detail", "level", "name", "remedy"], "{c}");
        let level = c["level"].as_str().unwrap();
        assert!(["ok", "warn", "fail", "skipped"].contains(&level), "{c}");
        // A warning or failure always says what to do; an ok line never does.
        assert_eq!(
            c["remedy"].is_string(),
            level == "warn" || level == "fail",
            "{c}"
        );
    }
    let ca = d.check("ca_bundle");
    assert!(
        ca["detail"]
            .as_str()
            .unwrap()
            .contains("1 certificate: CN=PatchCTL development CA"),
        "{ca}"
    );
    assert!(
        !d.stdout.contains("canary")
            && !text
                .stdout
                .contains(plat.dev["enrollment_key"].as_str().unwrap())
    );
}

fn doctor_names_the_issuer_a_wrong_ca_bundle_does_not_trust() {
    let tmp = tempfile::tempdir().unwrap();
    let plat = Platform::start(&tmp.path().join("platform"));
    let other = TestCa::new("Unrelated Corporate CA").unwrap();
    let wrong = other.write_cert(tmp.path(), "wrong-ca.pem").unwrap();
    let cfg = config_for(&tmp.path().join("agent"), plat.url(), &wrong);
    let d = json_doctor(&cfg);
    assert_eq!(d.code, Some(1), "{}", d.stdout);
    assert_levels(
        &d,
        &[
            ("ca_bundle", "ok"),
            ("tcp", "ok"),
            ("tls", "fail"),
            ("clock", "skipped"),
            ("credential", "skipped"),
        ],
    );
    let tls = d.check("tls");
    let detail = tls["detail"].as_str().unwrap();
    assert!(
        detail.contains("issued by CN=PatchCTL development CA"),
        "{detail}"
    );
    assert!(
        detail.contains(&format!("the CA bundle {}", wrong.display())),
        "{detail}"
    );
    assert!(detail.contains("CN=Unrelated Corporate CA"), "{detail}");
    let remedy = tls["remedy"].as_str().unwrap();
    assert!(
        remedy.contains("set ca_bundle in") && remedy.contains("PatchCTL development CA"),
        "{remedy}"
    );
    assert!(
        d.check("clock")["detail"]
            .as_str()
            .unwrap()
            .starts_with("skipped: ")
    );
}

fn doctor_tells_a_closed_port_and_skips_what_follows() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = TestCa::new("Closed Port CA").unwrap();
    let ca_path = ca.write_cert(tmp.path(), "ca.pem").unwrap();
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = config_for(
        &tmp.path().join("agent"),
        &format!("https://127.0.0.1:{port}"),
        &ca_path,
    );
    let d = json_doctor(&cfg);
    assert_eq!(d.code, Some(1), "{}", d.stdout);
    assert_levels(
        &d,
        &[
            ("dns", "ok"),
            ("tcp", "fail"),
            ("tls", "skipped"),
            ("clock", "skipped"),
            ("credential", "skipped"),
        ],
    );
    let tcp = d.check("tcp");
    assert!(
        tcp["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("connection refused by 127.0.0.1:{port}")),
        "{tcp}"
    );
    assert!(
        tcp["remedy"]
            .as_str()
            .unwrap()
            .contains("start the platform"),
        "{tcp}"
    );
    assert_eq!(
        d.check("tls")["detail"],
        "skipped: no TCP connection to the platform"
    );
    // The machine's own checks still ran.
    assert_ne!(d.level("package_manager"), "skipped");
}

fn doctor_dates_an_expired_certificate() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = TestCa::new("Expiry Test CA").unwrap();
    let ca_path = ca.write_cert(tmp.path(), "ca.pem").unwrap();
    let day = Duration::from_secs(86_400);
    let leaf = ca
        .issue_with_validity(
            &["localhost"],
            SystemTime::now() - 400 * day,
            SystemTime::now() - 10 * day,
        )
        .unwrap();
    let port = tls_server(tmp.path(), &leaf, "expired");
    let cfg = config_for(
        &tmp.path().join("agent"),
        &format!("https://localhost:{port}"),
        &ca_path,
    );
    let d = json_doctor(&cfg);
    assert_eq!(d.code, Some(1), "{}", d.stdout);
    assert_levels(&d, &[("tcp", "ok"), ("tls", "fail"), ("clock", "skipped")]);
    let tls = d.check("tls");
    let detail = tls["detail"].as_str().unwrap();
    let expired_on = chrono::Utc::now() - chrono::Duration::days(10);
    assert!(detail.contains("expired on"), "{detail}");
    assert!(
        detail.contains(&expired_on.format("%Y-%m-%d").to_string())
            || detail.contains(
                &(expired_on - chrono::Duration::days(1))
                    .format("%Y-%m-%d")
                    .to_string()
            ),
        "{detail}"
    );
    assert!(
        detail.contains("10 days ago") || detail.contains("9 days ago"),
        "{detail}"
    );
    assert!(
        tls["remedy"]
            .as_str()
            .unwrap()
            .starts_with("renew the platform's certificate"),
        "{tls}"
    );
}

fn doctor_lists_the_names_of_a_certificate_for_another_host() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = TestCa::new("Name Test CA").unwrap();
    let ca_path = ca.write_cert(tmp.path(), "ca.pem").unwrap();
    let leaf = ca.issue(&["patch.example.org", "10.20.30.40"]).unwrap();
    let port = tls_server(tmp.path(), &leaf, "other-name");
    let cfg = config_for(
        &tmp.path().join("agent"),
        &format!("https://localhost:{port}"),
        &ca_path,
    );
    let d = json_doctor(&cfg);
    assert_eq!(d.code, Some(1));
    let tls = d.check("tls");
    assert_eq!(tls["level"], "fail");
    assert!(
        tls["detail"]
            .as_str()
            .unwrap()
            .contains("valid for patch.example.org, 10.20.30.40, not for localhost"),
        "{tls}"
    );
    assert!(
        tls["remedy"]
            .as_str()
            .unwrap()
            .contains("use one of those names in server_url"),
        "{tls}"
    );
}

fn doctor_explains_config_permissions() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = TestCa::new("Perm CA").unwrap();
    let ca_path = ca.write_cert(tmp.path(), "ca.pem").unwrap();
    let dir = tmp.path().join("agent");
    let cfg = config_for(&dir, "https://127.0.0.1:9", &ca_path);

    fs::set_permissions(&cfg, fs::Permissions::from_mode(0o644)).unwrap();
    let d = json_doctor(&cfg);
    assert_eq!(d.code, Some(1));
    let private = d.check("config_private");
    assert_eq!(private["level"], "fail", "{private}");
    assert!(
        private["detail"].as_str().unwrap().contains("mode 0644"),
        "{private}"
    );
    assert_eq!(
        private["remedy"],
        format!("run: chmod 600 {}", cfg.display())
    );
    // The rest is still diagnosed with the values the file holds.
    assert_eq!(d.level("config_valid"), "ok");
    assert_eq!(d.level("dns"), "ok");

    fs::set_permissions(&cfg, fs::Permissions::from_mode(0o600)).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    let d = json_doctor(&cfg);
    let private = d.check("config_private");
    assert_eq!(private["level"], "fail", "{private}");
    assert_eq!(
        private["remedy"],
        format!("run: chmod 700 {}", dir.display())
    );

    // Not JSON at all: what the parser said, and the later checks skipped.
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
    fs::write(&cfg, "{\"server_url\": ").unwrap();
    let d = json_doctor(&cfg);
    assert_levels(
        &d,
        &[
            ("config_present", "ok"),
            ("config_valid", "fail"),
            ("ca_bundle", "skipped"),
            ("dns", "skipped"),
        ],
    );
    assert!(
        d.check("config_valid")["detail"]
            .as_str()
            .unwrap()
            .contains("is invalid")
    );
    assert!(!d.stdout.contains("canary-doctor-license"));
}

fn doctor_names_the_process_holding_the_dpkg_lock() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = TestCa::new("Lock CA").unwrap();
    let ca_path = ca.write_cert(tmp.path(), "ca.pem").unwrap();
    let cfg = config_for(&tmp.path().join("agent"), "https://127.0.0.1:9", &ca_path);
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());

    let before = doctor(&cfg, &["--output", "json"]);
    let pm = before.check("package_manager");
    assert_eq!(
        pm["level"], "ok",
        "something else holds the dpkg lock: {pm}"
    );

    // Hold the real lock as apt and dpkg do (fcntl F_SETLK, write lock on the whole
    // file), briefly, from this process; doctor runs as another process.
    let lock = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/var/lib/dpkg/lock-frontend")
        .unwrap();
    let hold = nix::libc::flock {
        l_type: nix::libc::F_WRLCK as nix::libc::c_short,
        l_whence: nix::libc::SEEK_SET as nix::libc::c_short,
        l_start: 0,
        l_len: 0,
        l_pid: 0,
    };
    nix::fcntl::fcntl(&lock, nix::fcntl::FcntlArg::F_SETLK(&hold)).expect("take the dpkg lock");
    let held = doctor(&cfg, &["--output", "json"]);
    drop(lock); // releases it
    assert_eq!(held.code, Some(1), "{}", held.stdout);
    let pm = held.check("package_manager");
    assert_eq!(pm["level"], "fail", "{pm}");
    let me = std::process::id();
    let comm = fs::read_to_string("/proc/self/comm").unwrap();
    let detail = pm["detail"].as_str().unwrap();
    assert!(
        detail.contains(&format!(
            "/var/lib/dpkg/lock-frontend is locked by process {me} ({})",
            comm.trim()
        )),
        "{detail}"
    );
    assert!(
        pm["remedy"]
            .as_str()
            .unwrap()
            .contains(&format!("ps -o pid,etime,args -p {me}")),
        "{pm}"
    );

    let after = doctor(&cfg, &["--output", "json"]);
    assert_eq!(after.level("package_manager"), "ok");
}

fn doctor_reports_the_revoked_marker_and_reenroll_clears_it() {
    let tmp = tempfile::tempdir().unwrap();
    let plat = Platform::start(&tmp.path().join("platform"));
    let dir = tmp.path().join("agent");
    let cfg = agent_config(&dir, &plat, json!({}));
    let host = uuid::Uuid::new_v4();
    // What the agent leaves when the platform revokes it (the agent's own writer).
    patchctl_agent::state::write_revoked(
        &dir,
        &patchctl_agent::state::RevokedMarker {
            revoked_at: chrono::Utc::now(),
            server_url: plat.url().to_owned(),
            host_id: Some(host),
            message: "host revoked by an operator".into(),
        },
    )
    .unwrap();
    let d = json_doctor(&cfg);
    assert_eq!(d.code, Some(1), "{}", d.stdout);
    let cred = d.check("credential");
    assert_eq!(cred["level"], "fail", "{cred}");
    let detail = cred["detail"].as_str().unwrap();
    assert!(detail.starts_with("revoked: "), "{detail}");
    assert!(
        detail.contains(&host.to_string()) && detail.contains("host revoked by an operator"),
        "{detail}"
    );
    assert!(
        cred["remedy"]
            .as_str()
            .unwrap()
            .contains("patchctl-agent reenroll"),
        "{cred}"
    );

    // The operator's way back.
    let out = std::process::Command::new(agent_platform::agent_bin())
        .args(["reenroll", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("removed the revoked marker"), "{said}");
    assert!(said.contains("systemctl restart patchctl"), "{said}");
    assert!(!dir.join("revoked.json").exists());
    let d = json_doctor(&cfg);
    assert_eq!(d.level("credential"), "warn");
    assert_eq!(d.code, Some(0), "{}", d.stdout);
}

// Needs the platform's side of issue 10 (`GET /api/v1/agent/whoami`).
fn doctor_says_the_platform_accepts_the_credential() {
    let tmp = tempfile::tempdir().unwrap();
    let plat = Platform::start(&tmp.path().join("platform"));
    let dir = tmp.path().join("agent");
    let (agent, host) = enrolled_agent(&dir, &plat, json!({}));
    drop(agent);
    let d = json_doctor(&dir.join("config.json"));
    let cred = d.check("credential");
    assert_eq!(cred["level"], "ok", "{cred}");
    assert!(
        cred["detail"]
            .as_str()
            .unwrap()
            .starts_with(&format!("accepted: host {host}")),
        "{cred}"
    );
    let clock = d.check("clock");
    assert_eq!(clock["level"], "ok");
    assert!(
        clock["detail"].as_str().unwrap().contains("(from whoami)"),
        "{clock}"
    );
    assert_eq!(d.code, Some(0), "{}", d.stdout);
}

// Needs the platform's side of issue 10 (`403 credential_revoked`, whoami).
fn doctor_confirms_a_revocation_with_the_platform() {
    let tmp = tempfile::tempdir().unwrap();
    let plat = Platform::start(&tmp.path().join("platform"));
    let dir = tmp.path().join("agent");
    let (agent, host) = enrolled_agent(&dir, &plat, json!({}));
    drop(agent); // stopped before it hears of the revocation: no marker yet
    let revoked = plat.json(&["hosts", "revoke", &host]);
    assert_eq!(revoked["status"], "revoked");
    assert!(!dir.join("revoked.json").exists());
    let d = json_doctor(&dir.join("config.json"));
    assert_eq!(d.code, Some(1), "{}", d.stdout);
    let cred = d.check("credential");
    assert_eq!(cred["level"], "fail", "{cred}");
    assert!(
        cred["detail"]
            .as_str()
            .unwrap()
            .starts_with("revoked: the platform refuses"),
        "{cred}"
    );
    assert!(
        cred["remedy"]
            .as_str()
            .unwrap()
            .contains("patchctl-agent reenroll")
    );

    // The agent then stops with its marker; doctor says so, and that the platform agrees.
    let mut agent =
        agent_platform::start_agent(&dir.join("config.json"), &tmp.path().join("again.log"));
    let status = agent.wait_exit("the revoked agent to stop", 60);
    assert_eq!(status.code(), Some(78));
    let d = json_doctor(&dir.join("config.json"));
    let cred: Value = d.check("credential");
    let detail = cred["detail"].as_str().unwrap();
    assert!(
        detail.contains("the agent stopped") && detail.ends_with("the platform confirms it"),
        "{detail}"
    );
}
