//! `patchctl vulndb ...` and `patchctl vulns check` with the real binary, on the real
//! data in ../shared/data, offline on a database (no server), and `vulndb sync` against
//! a real TLS 1.3 feed server on loopback.
#![allow(clippy::disallowed_methods)] // tests run the real binaries

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use patchctl_net::testing::TestCa;
use patchctl_testkit::{Harness, Need, trial};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

fn patchctl() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_patchctl"))
}

fn main() -> std::process::ExitCode {
    let data = [
        Need::SharedData("debian/vuln-list-debian-samples"),
        Need::SharedData("osv/almalinux-9.zip"),
    ];
    Harness::new()
        .test(trial!(import_status_and_offline_check_on_real_data).needs(data))
        .test(
            trial!(async sync_downloads_only_what_changed_and_says_when_offline)
                .multi_thread(None)
                .needs([Need::SharedData("osv/almalinux-9.zip")]),
        )
        .run()
}

/// The shared data directory: the harness runs a test only when the data it declares is
/// there.
fn data() -> PathBuf {
    let p = patchctl_testkit::shared_data("");
    assert!(
        p.is_dir(),
        "{} is missing: declare Need::SharedData",
        p.display()
    );
    p
}

fn run(args: &[&str]) -> Output {
    Command::new(patchctl())
        .args(args)
        .env_remove("PATCHCTL_DATABASE_URL")
        .output()
        .expect("run patchctl")
}

fn ok(args: &[&str]) -> String {
    let o = run(args);
    assert!(
        o.status.success(),
        "patchctl {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

fn fails(args: &[&str]) -> String {
    let o = run(args);
    assert!(!o.status.success(), "patchctl {args:?} should fail");
    String::from_utf8(o.stderr).unwrap()
}

/// `vulndb status --output json`.
fn status_json(db: &str) -> Value {
    serde_json::from_str(&ok(&[
        "vulndb",
        "status",
        "--database-url",
        db,
        "--output",
        "json",
    ]))
    .unwrap()
}

/// `vulns check` on `db` of the packages in `file` (given as `flag`), with `os` as the
/// os-release, and `extra` arguments.
fn check(db: &str, os: &Path, flag: &str, file: &Path, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = ["vulns", "check", "--database-url", db, "--os-release"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.push(os.display().to_string());
    args.push(flag.to_string());
    args.push(file.display().to_string());
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// [`check`] with `--output json`, parsed.
fn check_json(db: &str, os: &Path, flag: &str, file: &Path, extra: &[&str]) -> Value {
    let args = check(db, os, flag, file, &[extra, &["--output", "json"]].concat());
    serde_json::from_str(&ok(&args.iter().map(String::as_str).collect::<Vec<_>>())).unwrap()
}

const DPKG_STATUS: &str = "\
Package: openssh-server
Status: install ok installed
Architecture: amd64
Source: openssh
Version: 1:9.2p1-2+deb12u2

Package: bsdutils
Status: install ok installed
Architecture: amd64
Source: util-linux (2.38.1-5+deb12u3)
Version: 1:2.38.1-5+deb12u3

Package: coreutils
Status: install ok installed
Architecture: amd64
Version: 9.1-1

Package: xz-utils
Status: install ok installed
Architecture: amd64
Version: 5.4.1-0.2
";

const BOOKWORM: &str = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\n";
const ALMA9: &str = "NAME=\"AlmaLinux\"\nID=\"almalinux\"\nID_LIKE=\"rhel centos fedora\"\nVERSION_ID=\"9.4\"\nPRETTY_NAME=\"AlmaLinux 9.4 (Seafoam Ocelot)\"\n";

fn import_status_and_offline_check_on_real_data() {
    let d = data();
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("v.db").display());
    let debian = d.join("debian/vuln-list-debian-samples");
    let alma = d.join("osv/almalinux-9.zip");
    let (debian, alma) = (debian.to_str().unwrap(), alma.to_str().unwrap());

    let out = ok(&["vulndb", "import", "--database-url", &db, debian, alma]);
    assert!(
        out.contains("osv: 1783 records (1783 new, 0 changed, 0 unchanged), 0 rejected"),
        "{out}"
    );
    assert!(out.contains("debian-tracker: "), "{out}");
    // the same data again changes nothing
    let again = ok(&["vulndb", "import", "--database-url", &db, debian, alma]);
    assert!(
        again.contains("osv: 1783 records (0 new, 0 changed, 1783 unchanged)"),
        "{again}"
    );

    let status: Value = status_json(&db);
    let osv = status
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "osv")
        .unwrap();
    assert_eq!(osv["record_count"], 1783);
    assert!(ok(&["vulndb", "status", "--database-url", &db]).contains("SOURCE"));

    // Debian 12: the traps, through the offline matcher
    let os = dir.path().join("os-release");
    std::fs::write(&os, BOOKWORM).unwrap();
    let status_file = dir.path().join("status");
    std::fs::write(&status_file, DPKG_STATUS).unwrap();
    let report = check_json(&db, &os, "--dpkg-status", &status_file, &[]);
    assert_eq!(report["ecosystems"], serde_json::json!(["Debian:12"]));
    let find = |id: &str| {
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["advisory"] == id)
            .cloned()
    };
    let ssh = find("CVE-2024-6387").expect("openssh finding");
    assert_eq!(ssh["fixed_version"], "1:9.2p1-2+deb12u3");
    assert_eq!(ssh["fixable"], true);
    let ul = find("CVE-2024-28085").expect("util-linux finding");
    assert_eq!(ul["installed_version"], "2.38.1-5+deb12u3");
    assert_eq!(ul["status"], "affected_no_fix");
    assert_eq!(find("CVE-2016-2781").unwrap()["status"], "will_not_fix");
    assert!(
        find("CVE-2024-3094").is_none(),
        "not_affected is hidden by default"
    );
    let shown = check_json(
        &db,
        &os,
        "--dpkg-status",
        &status_file,
        &["--status", "not_affected"],
    );
    assert_eq!(shown["findings"][0]["advisory"], "CVE-2024-3094");
    let fixable = check_json(&db, &os, "--dpkg-status", &status_file, &["--fixable"]);
    assert_eq!(fixable["findings"].as_array().unwrap().len(), 1);
    let table = ok(&check(&db, &os, "--dpkg-status", &status_file, &[])
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>());
    assert!(
        table.contains("CVE-2024-6387") && table.contains("fixed in 1:9.2p1-2+deb12u3"),
        "{table}"
    );

    // AlmaLinux 9 from rpm -qa output
    std::fs::write(&os, ALMA9).unwrap();
    let qa = dir.path().join("rpm-qa.txt");
    std::fs::write(
        &qa,
        "openssl-libs 1:3.5.5-3.el9_8 x86_64 openssl-3.5.5-3.el9_8.src.rpm\nsudo 0:1.9.17p2-3.el9_8 x86_64 sudo-1.9.17p2-3.el9_8.src.rpm\n",
    )
    .unwrap();
    let report = check_json(&db, &os, "--rpm-qa", &qa, &[]);
    let ids: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["advisory"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["ALSA-2026:25239"], "{report}");

    // bad input: clear errors
    std::fs::write(&qa, "this is not rpm output\n").unwrap();
    let args = check(&db, &os, "--rpm-qa", &qa, &[]);
    let err = fails(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(err.contains("line 1"), "{err}");
    let err = fails(&[
        "vulns",
        "check",
        "--database-url",
        &db,
        "--os-release",
        os.to_str().unwrap(),
    ]);
    assert!(err.contains("--dpkg-status"), "{err}");
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\"hello\": 1}").unwrap();
    let err = fails(&[
        "vulndb",
        "import",
        "--database-url",
        &db,
        bad.to_str().unwrap(),
    ]);
    assert!(err.contains("bad.json"), "{err}");
    // nothing stored was lost
    let after: Value = status_json(&db);
    assert_eq!(
        after
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == "osv")
            .unwrap()["record_count"],
        1783
    );
}

type Seen = Arc<Mutex<Vec<Option<String>>>>;

/// A TLS 1.3 feed server on loopback: `/alma9.zip` with an ETag; records the
/// If-None-Match of every request.
async fn feed_server(body: Bytes, dir: &Path) -> (String, PathBuf, Seen) {
    let ca = TestCa::new("PatchCTL feed test CA").unwrap();
    let ca_path = ca.write_cert(dir, "ca.pem").unwrap();
    let (cert, key) = ca
        .issue(&["127.0.0.1"])
        .unwrap()
        .write(dir, "server")
        .unwrap();
    let acceptor = TlsAcceptor::from(patchctl_net::tls::server_config(&cert, &key).unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}/alma9.zip", listener.local_addr().unwrap());
    let seen: Seen = Arc::default();
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, body, log) = (acceptor.clone(), body.clone(), log.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                    let (body, log) = (body.clone(), log.clone());
                    async move {
                        let inm = req
                            .headers()
                            .get("if-none-match")
                            .map(|v| v.to_str().unwrap().to_string());
                        log.lock().unwrap().push(inm.clone());
                        let resp = if inm.as_deref() == Some("\"v1\"") {
                            Response::builder()
                                .status(StatusCode::NOT_MODIFIED)
                                .body(Full::new(Bytes::new()))
                        } else {
                            Response::builder()
                                .header("etag", "\"v1\"")
                                .body(Full::new(body))
                        };
                        Ok::<_, Infallible>(resp.unwrap())
                    }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    (url, ca_path, seen)
}

/// [`run`] off the runtime (the feed server runs on it meanwhile).
async fn run_blocking(args: &[&str]) -> Output {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || run(&args.iter().map(String::as_str).collect::<Vec<_>>()))
        .await
        .unwrap()
}

async fn sync_downloads_only_what_changed_and_says_when_offline() {
    let d = data();
    let dir = tempfile::tempdir().unwrap();
    let body = Bytes::from(std::fs::read(d.join("osv/almalinux-9.zip")).unwrap());
    let (url, ca, seen) = feed_server(body, dir.path()).await;
    let db = format!("sqlite://{}", dir.path().join("v.db").display());
    let feed = format!("alma9={url}");
    let args = [
        "vulndb",
        "sync",
        "--database-url",
        &db,
        "--feed",
        &feed,
        "--ca-file",
        ca.to_str().unwrap(),
    ];
    let first = run_blocking(&args).await;
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(String::from_utf8_lossy(&first.stdout).contains("osv: 1783 records (1783 new"));
    let second = run_blocking(&args).await;
    assert!(second.status.success());
    assert!(
        String::from_utf8_lossy(&second.stderr).contains("not modified"),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    assert_eq!(*seen.lock().unwrap(), [None, Some("\"v1\"".to_string())]);

    // offline: a closed port gives a clear error and a failing exit
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let feed = format!("gone=https://127.0.0.1:{port}/all.zip");
    let err = tokio::task::spawn_blocking(move || {
        fails(&["vulndb", "sync", "--database-url", &db, "--feed", &feed])
    })
    .await
    .unwrap();
    assert!(
        err.contains("cannot reach") && err.contains("vulndb import"),
        "{err}"
    );
}
