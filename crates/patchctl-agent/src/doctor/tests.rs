//! Doctor's checks one by one, on real files, real locks and real sockets in private
//! directories; the whole run against real platforms is in `crates/patchctl/tests/doctor.rs`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::Utc;

use super::network::{Answer, skew_level, skew_secs};
use super::system::{lock_holder, parse_show, unit_finding};
use super::*;
use crate::exec::ProcessExecutor;

fn private_dir() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    d
}

fn write(path: &Path, text: &str, mode: u32) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn levels(r: &Report) -> Vec<(&str, Level)> {
    r.checks
        .iter()
        .map(|c| (c.name.as_str(), c.level))
        .collect()
}

/// A host without journal or systemd, rooted in an empty directory.
fn bare_host(root: &Path) -> Host {
    Host {
        root: root.to_owned(),
        journal_socket: root.join("no-journal-socket"),
        systemd: false,
    }
}

#[tokio::test]
async fn a_missing_config_fails_first_and_skips_what_needs_it() {
    let d = private_dir();
    let missing = d.path().join("config.json");
    let r = run_on(&missing, &bare_host(d.path()), &ProcessExecutor::new()).await;
    let got = levels(&r);
    assert_eq!(
        got[..9],
        [
            ("config_present", Level::Fail),
            ("config_valid", Level::Skipped),
            ("config_private", Level::Skipped),
            ("ca_bundle", Level::Skipped),
            ("dns", Level::Skipped),
            ("tcp", Level::Skipped),
            ("tls", Level::Skipped),
            ("clock", Level::Skipped),
            ("credential", Level::Skipped),
        ]
    );
    // The machine's own checks still run, in their order.
    let names: Vec<&str> = got[9..].iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names,
        [
            "package_manager",
            "disk:/",
            "disk:/var",
            "disk:/boot",
            "journald",
            "unit"
        ]
    );
    assert!(r.failed());
    let present = r.get("config_present").unwrap();
    assert!(present.detail.ends_with("does not exist"), "{present:?}");
    assert!(
        present
            .remedy
            .as_deref()
            .unwrap()
            .contains("server_url and license_key"),
        "{present:?}"
    );
}

#[test]
fn config_errors_say_which_and_how_to_fix() {
    let d = private_dir();
    let p = d.path().join("config.json");
    // Invalid JSON value, private.
    write(
        &p,
        r#"{"server_url": "http://x", "license_key": "k"}"#,
        0o600,
    );
    let mut r = Report::default();
    assert!(local::config(&mut r, &p).is_none());
    let valid = r.get("config_valid").unwrap();
    assert_eq!(valid.level, Level::Fail);
    assert!(
        valid.detail.contains("must start with https://"),
        "{valid:?}"
    );
    assert_eq!(r.get("config_private").unwrap().level, Level::Ok);

    // Valid but readable by others: reported with the command that fixes it, and the
    // configuration is still returned so the rest can be diagnosed.
    write(
        &p,
        r#"{"server_url": "https://x", "license_key": "canary-doctor-key"}"#,
        0o644,
    );
    let mut r = Report::default();
    assert!(local::config(&mut r, &p).is_some());
    let private = r.get("config_private").unwrap();
    assert_eq!(private.level, Level::Fail);
    assert!(private.detail.contains("0644"), "{private:?}");
    assert_eq!(
        private.remedy.as_deref(),
        Some(format!("chmod 600 {}", p.display()).as_str())
            .map(|c| format!("run: {c}"))
            .as_deref()
    );
    // The license key never shows.
    let all = serde_json::to_string(&r.checks).unwrap();
    assert!(!all.contains("canary-doctor-key"), "{all}");
}

#[test]
fn ca_bundle_counts_certificates_or_says_what_is_wrong() {
    let d = private_dir();
    let cfg_path = d.path().join("config.json");
    let cfg = |bundle: &Path| {
        crate::config::AgentConfig::parse(
            &cfg_path,
            &format!(
                r#"{{"server_url": "https://x", "license_key": "k", "ca_bundle": "{}"}}"#,
                bundle.display()
            ),
        )
        .unwrap()
    };
    let ca = patchctl_net::testing::TestCa::new("Doctor Bundle CA").unwrap();
    let good = ca.write_cert(d.path(), "ca.pem").unwrap();
    let mut r = Report::default();
    let setup = local::ca_bundle(&mut r, &cfg(&good)).expect("usable");
    let f = r.get("ca_bundle").unwrap();
    assert_eq!(f.level, Level::Ok, "{f:?}");
    assert!(
        f.detail.contains("1 certificate: CN=Doctor Bundle CA"),
        "{f:?}"
    );
    assert_eq!(setup.bundle.unwrap().1.len(), 1);

    let garbage = d.path().join("garbage.pem");
    write(&garbage, "not a certificate\n", 0o644);
    let missing = d.path().join("missing.pem");
    for (path, want) in [
        (&garbage, "contains no certificate"),
        (&missing, "cannot read the CA bundle file"),
    ] {
        let mut r = Report::default();
        assert!(local::ca_bundle(&mut r, &cfg(path)).is_none());
        let f = r.get("ca_bundle").unwrap();
        assert_eq!(f.level, Level::Fail);
        assert!(f.detail.contains(want), "{f:?}");
        assert!(
            f.remedy.as_deref().unwrap().contains("set ca_bundle in"),
            "{f:?}"
        );
    }
}

/// A minimal apt system under `root`: os-release, the binary and the status file.
fn apt_root(root: &Path) -> PathBuf {
    for dir in ["etc", "usr/bin", "var/lib/dpkg/updates"] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    std::fs::write(root.join("etc/os-release"), "ID=debian\n").unwrap();
    std::fs::write(root.join("usr/bin/apt-get"), "").unwrap();
    std::fs::write(root.join("var/lib/dpkg/status"), "").unwrap();
    let lock = root.join("var/lib/dpkg/lock-frontend");
    std::fs::write(&lock, "").unwrap();
    lock
}

#[test]
fn a_held_dpkg_lock_fails_and_names_the_holder() {
    let d = tempfile::tempdir().unwrap();
    let lock = apt_root(d.path());
    let mut r = Report::default();
    assert_eq!(
        system::package_manager(&mut r, d.path()),
        Some(crate::pkgmgr::Family::Apt)
    );
    assert_eq!(r.get("package_manager").unwrap().level, Level::Ok);

    // A real POSIX write lock, as dpkg and apt take it (fcntl F_SETLK), in this process:
    // the OFD query sees it although it is ours. (Closing any descriptor of the file
    // drops a process's POSIX locks on it, so each look below takes the lock anew.)
    let f = std::fs::OpenOptions::new().write(true).open(&lock).unwrap();
    let hold = nix::libc::flock {
        l_type: nix::libc::F_WRLCK as nix::libc::c_short,
        l_whence: nix::libc::SEEK_SET as nix::libc::c_short,
        l_start: 0,
        l_len: 0,
        l_pid: 0,
    };
    nix::fcntl::fcntl(&f, nix::fcntl::FcntlArg::F_SETLK(&hold)).unwrap();
    let who = lock_holder(&lock).expect("held");
    assert_eq!(who.pid, Some(std::process::id()));
    nix::fcntl::fcntl(&f, nix::fcntl::FcntlArg::F_SETLK(&hold)).unwrap();
    let mut r = Report::default();
    system::package_manager(&mut r, d.path());
    let pm = r.get("package_manager").unwrap();
    assert_eq!(pm.level, Level::Fail, "{pm:?}");
    assert!(
        pm.detail
            .contains(&format!("locked by process {}", std::process::id())),
        "{pm:?}"
    );
    assert!(
        pm.remedy
            .as_deref()
            .unwrap()
            .contains("never delete the lock file")
    );
    drop(f);
    assert_eq!(lock_holder(&lock), None);
}

#[test]
fn an_flock_is_seen_too() {
    // apk locks with flock(2), which F_OFD_GETLK does not report; /proc/locks does.
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("lock");
    let f = std::fs::File::create(&path).unwrap();
    assert_eq!(lock_holder(&path), None);
    f.lock().unwrap();
    assert_eq!(lock_holder(&path).unwrap().pid, Some(std::process::id()));
    drop(f);
    assert_eq!(lock_holder(&path), None);
    assert_eq!(lock_holder(&d.path().join("absent")), None);
}

#[test]
fn no_package_manager_is_a_warning() {
    let d = tempfile::tempdir().unwrap();
    let mut r = Report::default();
    assert_eq!(system::package_manager(&mut r, d.path()), None);
    assert_eq!(r.get("package_manager").unwrap().level, Level::Warn);
}

#[test]
fn journald_takes_a_datagram_on_a_real_socket() {
    let d = tempfile::tempdir().unwrap();
    let sock = d.path().join("socket");
    let listener = std::os::unix::net::UnixDatagram::bind(&sock).unwrap();
    let host = Host {
        root: d.path().to_owned(),
        journal_socket: sock.clone(),
        systemd: true,
    };
    let mut r = Report::default();
    local::journald(&mut r, &host);
    assert_eq!(r.get("journald").unwrap().level, Level::Ok);
    let mut buf = [0u8; 512];
    listener
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let n = listener.recv(&mut buf).unwrap();
    let got = String::from_utf8_lossy(&buf[..n]);
    assert!(got.contains("SYSLOG_IDENTIFIER=patchctl-doctor\n"), "{got}");

    // Nobody reads the socket any more: refused.
    drop(listener);
    let mut r = Report::default();
    local::journald(&mut r, &host);
    let f = r.get("journald").unwrap();
    assert_eq!(f.level, Level::Fail, "{f:?}");
    assert!(f.detail.contains("does not accept a datagram"), "{f:?}");

    // No socket: a failure under systemd, a warning without it.
    std::fs::remove_file(&sock).unwrap();
    let mut r = Report::default();
    local::journald(&mut r, &host);
    assert_eq!(r.get("journald").unwrap().level, Level::Fail);
    let mut r = Report::default();
    local::journald(&mut r, &bare_host(d.path()));
    assert_eq!(r.get("journald").unwrap().level, Level::Warn);
}

#[test]
fn unit_states_from_systemctl_show() {
    let check = |text: &str| {
        let mut r = Report::default();
        unit_finding(&mut r, &parse_show(text));
        r.checks.remove(0)
    };
    let base = "LoadState=loaded\nSubState=running\nResult=success\nNRestarts=0\n";
    let ok = check(&format!(
        "{base}ActiveState=active\nUnitFileState=enabled\nExecMainStatus=0\n"
    ));
    assert_eq!(ok.level, Level::Ok, "{ok:?}");
    let disabled = check(&format!(
        "{base}ActiveState=active\nUnitFileState=disabled\nExecMainStatus=0\n"
    ));
    assert_eq!(disabled.level, Level::Warn);
    assert_eq!(
        disabled.remedy.as_deref(),
        Some("systemctl enable patchctl")
    );
    let revoked = check(
        "LoadState=loaded\nActiveState=failed\nSubState=failed\nUnitFileState=enabled\nResult=exit-code\nExecMainStatus=78\nNRestarts=0\n",
    );
    assert_eq!(revoked.level, Level::Fail);
    assert!(revoked.detail.contains("revoked"), "{revoked:?}");
    assert!(revoked.remedy.unwrap().contains("patchctl-agent reenroll"));
    let missing = check("LoadState=not-found\nActiveState=inactive\n");
    assert_eq!(missing.level, Level::Fail);
    assert!(missing.detail.contains("not installed"));
    let dead = check(
        "LoadState=loaded\nActiveState=inactive\nSubState=dead\nUnitFileState=enabled\nResult=success\nExecMainStatus=0\nNRestarts=0\n",
    );
    assert_eq!(dead.level, Level::Fail);
}

#[tokio::test]
async fn without_systemd_the_unit_is_a_warning_and_nothing_runs() {
    let d = tempfile::tempdir().unwrap();
    let exec = ProcessExecutor::new();
    let mut r = Report::default();
    system::unit(&mut r, &bare_host(d.path()), &exec).await;
    assert_eq!(r.get("unit").unwrap().level, Level::Warn);
    assert!(exec.history().is_empty());
}

#[test]
fn clock_skew_levels_and_the_date_header() {
    for (skew, level) in [
        (0.0, Level::Ok),
        (29.9, Level::Ok),
        (-30.0, Level::Warn),
        (299.0, Level::Warn),
        (300.0, Level::Fail),
        (-3600.0, Level::Fail),
    ] {
        assert_eq!(skew_level(skew), level, "{skew}");
    }
    // A platform ten minutes ahead, seen through its Date header only.
    let server = Utc::now() + chrono::Duration::minutes(10);
    let answer = Answer {
        result: Err(patchctl_net::ClientError::Status {
            status: 404,
            message: "not found".into(),
            code: None,
        }),
        date: Some(server.format("%a, %d %b %Y %H:%M:%S GMT").to_string()),
        sent_at: Utc::now(),
        rtt: Duration::from_millis(4),
        with_credential: true,
    };
    let (skew, source) = skew_secs(&answer).unwrap();
    assert_eq!(source, "the Date header");
    assert!((skew + 600.0).abs() < 2.0, "{skew}");
    assert_eq!(
        super::network::http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
        Some(chrono::DateTime::from_timestamp(784_111_777, 0).unwrap())
    );
    for bad in [
        "Sunday, 06-Nov-94 08:49:37 GMT",
        "Sun, 06 Nov 1994 08:49:37 CET",
        "Sun, 31 Feb 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 08:49 GMT",
        "",
    ] {
        assert_eq!(super::network::http_date(bad), None, "{bad}");
    }
    let no_date = Answer {
        date: None,
        ..answer
    };
    assert!(skew_secs(&no_date).is_none());
}

#[test]
fn text_has_one_line_per_check_and_the_remedy_under_it() {
    let mut r = Report {
        config: PathBuf::from("/etc/patchctl/config.json"),
        checks: Vec::new(),
    };
    r.ok("dns", "platform.example resolves to 10.0.0.1");
    r.fail("tcp", "refused\u{1b}[2J", "start the platform");
    r.skip("tls", "no TCP connection");
    r.warn("unit", "not enabled", "systemctl enable patchctl");
    let mut plain = Vec::new();
    output::write_text(&mut plain, &r, false).unwrap();
    let text = String::from_utf8(plain).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].contains("doctor, config /etc/patchctl/config.json"));
    assert!(lines[1].starts_with("[ ok ] dns "), "{text}");
    assert!(lines[2].starts_with("[FAIL] tcp "), "{text}");
    assert!(
        lines[3].trim_start().starts_with("fix: start the platform"),
        "{text}"
    );
    assert!(lines[4].starts_with("[skip] tls "), "{text}");
    assert!(lines[5].starts_with("[warn] unit"), "{text}");
    assert!(
        lines[6]
            .trim_start()
            .starts_with("fix: systemctl enable patchctl")
    );
    assert_eq!(lines[7], "1 ok, 1 warning(s), 1 failure(s), 1 skipped");
    assert!(
        !text.contains('\u{1b}'),
        "no escape without a terminal: {text:?}"
    );
    assert!(text.contains(r"refused\u{1b}[2J"), "{text}");

    let mut coloured = Vec::new();
    output::write_text(&mut coloured, &r, true).unwrap();
    let coloured = String::from_utf8(coloured).unwrap();
    assert!(
        coloured.contains("\u{1b}[1;31m[FAIL]\u{1b}[0m"),
        "{coloured:?}"
    );
}

#[test]
fn json_has_every_check_with_name_level_detail_remedy() {
    let mut r = Report {
        config: PathBuf::from("/c.json"),
        checks: Vec::new(),
    };
    r.ok("dns", "fine");
    r.fail("tcp", "refused", "start it");
    r.skip("tls", "no TCP");
    let mut out = Vec::new();
    output::write_json(&mut out, &r).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["result"], "fail");
    assert_eq!(v["config"], "/c.json");
    assert_eq!(v["agent_version"], crate::VERSION);
    let checks = v["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 3);
    assert_eq!(
        checks[1],
        serde_json::json!({"name": "tcp", "level": "fail", "detail": "refused", "remedy": "start it"})
    );
    assert_eq!(checks[2]["level"], "skipped");
    assert_eq!(checks[2]["remedy"], serde_json::Value::Null);
}
