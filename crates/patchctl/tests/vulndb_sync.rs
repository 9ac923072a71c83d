//! The platform's own vulnerability feed sync (`patchctl_server::vulnsync`), against a
//! real TLS 1.3 feed server on loopback (a test CA), on real SQLite and PostgreSQL:
//!
//! - a platform started with feeds configured syncs them on its own schedule (no CLI
//!   call), and reports each feed through `GET /api/v1/vulndb/status`; a second sync
//!   gets 304; a feed that answers 500, breaks off, or cannot be reached keeps its
//!   earlier data and reports the error, its age and the next attempt;
//! - `repomd` feeds through `mirror.list` and straight to `repomd.xml` (the real
//!   sample), and the `redhat-vex-bulk` protocol (the real `archive_latest.txt`, archive,
//!   `changes.csv` and `deletions.csv`): what was requested and what was handed to the
//!   import;
//! - two platform nodes on one PostgreSQL: exactly one syncs per round;
//! - `patchctl server --dev` with unreachable feeds says so once and keeps running.
#![allow(clippy::disallowed_methods)] // tests run the real binaries

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::Utc;
use patchctl_net::testing::TestCa;
use patchctl_server::Settings;
use patchctl_server::settings::Feed;
use patchctl_server::vulnsync::schedule::Scheduler;
use patchctl_server::vulnsync::{FeedKind, Importer, Syncer};
use patchctl_storage::Storage;
use patchctl_testkit::{Harness, Need, trial};
use patchctl_vuln::import::{FeedBatch, ImportError};
use serde_json::Value;
use tokio::net::TcpListener;

#[path = "vulndb_sync/feed_server.rs"]
mod feed_server;
use feed_server::{Answer, FeedServer, Handed, drop_db, postgres_db};

fn main() -> std::process::ExitCode {
    let alma = Need::SharedData("osv/almalinux-9.zip");
    Harness::new()
        .test(
            trial!(async platform_syncs_on_its_own_and_reports_failures)
                .multi_thread(None)
                .needs([alma]),
        )
        .test(
            trial!(async repomd_through_mirror_list_and_direct)
                .multi_thread(None)
                .needs([Need::SharedData("amazon/updateinfo-samples")]),
        )
        .test(
            trial!(async redhat_bulk_full_then_changes_and_deletions)
                .multi_thread(None)
                .needs([Need::SharedData("redhat/csaf-vex-bulk")]),
        )
        .test(
            trial!(async every_family_synced_through_the_real_importers)
                .multi_thread(None)
                .needs([
                    Need::SharedData("amazon/updateinfo-samples"),
                    Need::SharedData("amazon/updateinfo-samples-vuln-list-update"),
                    Need::SharedData("redhat/csaf-vex-bulk"),
                    Need::SharedData("suse/csaf-vex/cve-2023-5568.json"),
                    Need::SharedData("arch/vuln-list-update/archlinux.json"),
                    Need::SharedData("kev/known_exploited_vulnerabilities.json"),
                ]),
        )
        .test(trial!(async lease_is_exclusive_on_sqlite).multi_thread(None))
        .test(
            trial!(async two_nodes_on_postgres_one_syncs_per_round)
                .multi_thread(None)
                .needs([alma, Need::Postgres]),
        )
        .test(trial!(dev_platform_says_once_that_feeds_are_offline))
        .run()
}

// ---------------------------------------------------------------------------------
// Helpers.

fn shared(rel: &str) -> Bytes {
    Bytes::from(std::fs::read(patchctl_testkit::shared_data(rel)).unwrap())
}

fn feed(name: &str, kind: FeedKind, url: String) -> Feed {
    Feed {
        name: name.into(),
        url,
        kind,
    }
}

/// What the import was handed: per call, the feed and each file's path below its
/// download directory with its bytes.
#[derive(Default)]
struct Recorder(Mutex<Handed>);

impl Importer for Recorder {
    fn import(&self, feed: &Feed, files: &[PathBuf]) -> Result<Vec<FeedBatch>, ImportError> {
        let files = files
            .iter()
            .map(|p| {
                let rel: PathBuf = p
                    .components()
                    .skip_while(|c| !c.as_os_str().to_string_lossy().starts_with(".vulnsync-"))
                    .skip(1)
                    .collect();
                (rel.display().to_string(), std::fs::read(p).unwrap())
            })
            .collect();
        self.0.lock().unwrap().push((feed.name.clone(), files));
        Ok(Vec::new())
    }
}

impl Recorder {
    fn take(&self) -> Handed {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

async fn sqlite(dir: &Path) -> Arc<dyn Storage> {
    patchctl_storage::open(&format!("sqlite://{}", dir.join("p.db").display()))
        .await
        .unwrap()
}

fn syncer(store: Arc<dyn Storage>, server: &FeedServer, work: &Path) -> Syncer {
    Syncer::new(
        store,
        server.downloader(),
        work.to_path_buf(),
        Duration::from_secs(6 * 3600),
    )
}

async fn state(store: &dyn Storage, name: &str) -> patchctl_storage::FeedSyncState {
    store
        .vuln_feed_states()
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no state for {name}"))
}

async fn osv_records(store: &dyn Storage) -> u64 {
    store
        .vuln_sources()
        .await
        .unwrap()
        .iter()
        .find(|s| s.name == "osv")
        .map_or(0, |s| s.record_count)
}

/// Seconds from now until `t`.
fn secs_until(t: Option<chrono::DateTime<Utc>>) -> i64 {
    (t.unwrap() - Utc::now()).num_seconds()
}

fn no_leftovers(work: &Path) {
    let left: Vec<_> = std::fs::read_dir(work)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".vulnsync-"))
        .collect();
    assert!(left.is_empty(), "download directories left: {left:?}");
}

// ---------------------------------------------------------------------------------
// Tests.

async fn platform_syncs_on_its_own_and_reports_failures() {
    let server = FeedServer::start().await;
    let zip = shared("osv/almalinux-9.zip");
    server.set("/alma9.zip", Answer::Ok(zip.clone(), "\"v1\""));
    server.set("/broken.json", Answer::Status(500));
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite(dir.path()).await;
    let secrets = patchctl_server::bootstrap::create_org(&*store, "t")
        .await
        .unwrap();
    let token = secrets.token.expose().to_owned();

    // The platform, with the feeds configured and its own scheduler.
    let ca = TestCa::new("PatchCTL platform test CA").unwrap();
    let ca_path = ca.write_cert(dir.path(), "platform-ca.pem").unwrap();
    let (cert, key) = ca
        .issue(&["127.0.0.1"])
        .unwrap()
        .write(dir.path(), "platform")
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let feeds = vec![
        feed("alma9", FeedKind::File, server.url("/alma9.zip")),
        feed("broken", FeedKind::File, server.url("/broken.json")),
    ];
    let settings = Settings {
        heartbeat_interval_secs: 60,
        command_lease_secs: 60,
        metrics_history_len: 10,
        vuln_feeds: feeds.clone(),
        vuln_ca_file: Some(server.ca.clone()),
        enroll_per_address_per_min: 100,
        enroll_per_key_per_min: 100,
        ..Settings::with_defaults(
            listener.local_addr().unwrap(),
            format!("sqlite://{}", dir.path().join("p.db").display()),
            cert,
            key,
        )
    };
    let base = format!("https://{}", settings.listen);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let platform = tokio::spawn(patchctl_server::launch_with_listener(
        settings,
        listener,
        async {
            let _ = stopped.await;
        },
    ));

    // Its first round comes about 10 s after the start, without any CLI call.
    let started = Instant::now();
    loop {
        let states = store.vuln_feed_states().await.unwrap();
        if states.len() == 2 && states.iter().all(|s| s.last_attempt_at.is_some()) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(40),
            "the platform did not sync on its own: {states:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!("first scheduled round after {:?}", started.elapsed());
    assert_eq!(osv_records(&*store).await, 1783);
    let alma = state(&*store, "alma9").await;
    assert_eq!((alma.failures, alma.records), (0, Some(1783)));
    assert!(alma.last_error.is_none());
    let next = secs_until(alma.next_attempt_at);
    assert!((19_400..=23_800).contains(&next), "next sync in {next} s");
    let broken = state(&*store, "broken").await;
    assert_eq!(broken.failures, 1);
    assert!(broken.last_success_at.is_none());
    let err = broken.last_error.clone().unwrap();
    assert!(err.contains("HTTP 500"), "{err}");
    let retry = secs_until(broken.next_attempt_at);
    assert!((260..=330).contains(&retry), "retry in {retry} s");
    assert_eq!(
        server.requests(),
        [
            ("/alma9.zip".to_owned(), None),
            ("/broken.json".to_owned(), None)
        ]
    );
    no_leftovers(dir.path());

    // The report through the API (operator token).
    let client =
        patchctl_net::HttpsClient::new(&base, patchctl_net::client_config(Some(&ca_path)).unwrap())
            .unwrap();
    let report: Value = client
        .json::<(), Value>(
            hyper::Method::GET,
            "/api/v1/vulndb/status",
            Some(&token),
            None,
        )
        .await
        .unwrap();
    assert_eq!(report["automatic"], true);
    assert_eq!(report["interval_secs"], 21600);
    let feeds_json = report["feeds"].as_array().unwrap();
    assert_eq!(feeds_json[0]["name"], "alma9");
    assert_eq!(feeds_json[0]["kind"], "file");
    assert_eq!(feeds_json[0]["state"], "ok");
    assert_eq!(feeds_json[0]["records"], 1783);
    assert!(feeds_json[0]["age_secs"].as_i64().unwrap() < 60);
    assert_eq!(feeds_json[1]["state"], "failing");
    assert_eq!(feeds_json[1]["failures"], 1);
    assert!(
        feeds_json[1]["last_error"]
            .as_str()
            .unwrap()
            .contains("HTTP 500")
    );
    assert!(feeds_json[1]["next_attempt_at"].is_string());
    assert!(feeds_json[1]["last_success_at"].is_null());
    let refused = client
        .json::<(), Value>(hyper::Method::GET, "/api/v1/vulndb/status", None, None)
        .await;
    assert!(refused.is_err(), "the report needs an operator token");
    let _ = stop.send(());
    platform.await.unwrap().unwrap();

    // A second sync: 304, nothing imported.
    let work = dir.path();
    let sync = syncer(store.clone(), &server, work);
    let alma_feed = &feeds[..1];
    let r = sync
        .sync(
            alma_feed,
            false,
            &mut patchctl_server::vulnsync::LogObserver,
        )
        .await
        .unwrap();
    assert!(matches!(r[0].outcome, Ok(None)), "{:?}", r[0].outcome);
    assert_eq!(
        server.requests(),
        [("/alma9.zip".to_owned(), Some("\"v1\"".to_owned()))]
    );
    let generation = store.vuln_generation().await.unwrap();
    let good = state(&*store, "alma9").await.last_success_at;
    assert!(
        good > alma.last_success_at,
        "a 304 is a success: the data is current"
    );

    // The feed fails three ways; its data stays, the failure is reported.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    for (i, (answer, expect)) in [
        (Some(Answer::Status(500)), "HTTP 500"),
        (Some(Answer::Truncated(zip.clone())), "broke"),
        (None, "cannot reach"),
    ]
    .into_iter()
    .enumerate()
    {
        let f = match answer {
            Some(a) => {
                server.set("/alma9.zip", a);
                feeds[0].clone()
            }
            None => feed(
                "alma9",
                FeedKind::File,
                format!("https://127.0.0.1:{port}/alma9.zip"),
            ),
        };
        let r = sync
            .sync(
                std::slice::from_ref(&f),
                false,
                &mut patchctl_server::vulnsync::LogObserver,
            )
            .await
            .unwrap();
        let e = r[0]
            .outcome
            .as_ref()
            .expect_err("the sync should fail")
            .to_string();
        assert!(e.contains(expect), "{e}");
        assert_eq!(osv_records(&*store).await, 1783, "the earlier data is kept");
        assert_eq!(store.vuln_generation().await.unwrap(), generation);
        let s = state(&*store, "alma9").await;
        assert_eq!(s.last_error.as_deref(), Some(e.as_str()));
        if i < 2 {
            // Same URL: the failures count up, the last success stays.
            assert_eq!(s.failures, i as u32 + 1);
            assert_eq!(s.last_success_at, good);
            let retry = secs_until(s.next_attempt_at);
            let base = 300 * (1 << i);
            assert!(
                (base * 9 / 10 - 5..=base * 11 / 10).contains(&retry),
                "retry in {retry} s after failure {}",
                i + 1
            );
        } else {
            // Another URL is another feed: it starts over.
            assert_eq!(s.failures, 1);
            assert!(s.last_success_at.is_none());
        }
    }
    no_leftovers(dir.path());
}

async fn repomd_through_mirror_list_and_direct() {
    let server = FeedServer::start().await;
    let repomd = shared("amazon/updateinfo-samples/repomd_valid.xml");
    let updateinfo = shared("amazon/updateinfo-samples/updateinfo_2.xml.gz");
    server.set(
        "/al2/mirror.list",
        Answer::Ok(
            Bytes::from(format!("{}/al2/repo/abc123\n", server.base)),
            "\"m\"",
        ),
    );
    server.set(
        "/al2/repo/abc123/repodata/repomd.xml",
        Answer::Ok(repomd.clone(), "\"r1\""),
    );
    server.set(
        "/al2/repo/abc123/repodata/updateinfo.xml.gz",
        Answer::Ok(updateinfo.clone(), "\"u1\""),
    );
    server.set(
        "/f43/x86_64/repodata/repomd.xml",
        Answer::Ok(repomd.clone(), "\"r1\""),
    );
    server.set(
        "/f43/x86_64/repodata/updateinfo.xml.gz",
        Answer::Ok(updateinfo.clone(), "\"u1\""),
    );
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite(dir.path()).await;
    let recorder = Arc::new(Recorder::default());
    let sync = syncer(store.clone(), &server, dir.path()).with_importer(recorder.clone());
    let feeds = [
        feed("al2", FeedKind::Repomd, server.url("/al2/mirror.list")),
        feed(
            "f43",
            FeedKind::Repomd,
            server.url("/f43/x86_64/repodata/repomd.xml"),
        ),
    ];
    let mut log = patchctl_server::vulnsync::LogObserver;

    let r = sync.sync(&feeds, false, &mut log).await.unwrap();
    assert!(r.iter().all(|r| matches!(r.outcome, Ok(Some(0)))), "{r:?}");
    assert_eq!(
        server.paths(),
        [
            "/al2/mirror.list",
            "/al2/repo/abc123/repodata/repomd.xml",
            "/al2/repo/abc123/repodata/updateinfo.xml.gz",
            "/f43/x86_64/repodata/repomd.xml",
            "/f43/x86_64/repodata/updateinfo.xml.gz",
        ]
    );
    let handed = recorder.take();
    assert_eq!(handed.len(), 2);
    for (i, name) in ["al2", "f43"].into_iter().enumerate() {
        assert_eq!(handed[i].0, name);
        assert_eq!(handed[i].1.len(), 1);
        assert_eq!(handed[i].1[0].0, "updateinfo.xml.gz");
        assert!(
            handed[i].1[0].1 == updateinfo,
            "the file handed over is the download"
        );
    }

    // Again: repomd.xml not modified, so nothing else is fetched or imported.
    let r = sync.sync(&feeds, false, &mut log).await.unwrap();
    assert!(r.iter().all(|r| matches!(r.outcome, Ok(None))), "{r:?}");
    assert_eq!(
        server.requests(),
        [
            ("/al2/mirror.list".to_owned(), None),
            (
                "/al2/repo/abc123/repodata/repomd.xml".to_owned(),
                Some("\"r1\"".to_owned())
            ),
            (
                "/f43/x86_64/repodata/repomd.xml".to_owned(),
                Some("\"r1\"".to_owned())
            ),
        ]
    );
    assert!(recorder.take().is_empty());

    // A repomd.xml without updateinfo is a clear failure.
    server.set(
        "/f43/x86_64/repodata/repomd.xml",
        Answer::Ok(Bytes::from_static(b"<repomd><data type=\"primary\"><location href=\"repodata/p.xml.gz\"/></data></repomd>"), "\"r2\""),
    );
    let r = sync.sync(&feeds[1..], false, &mut log).await.unwrap();
    let e = r[0].outcome.as_ref().unwrap_err().to_string();
    assert!(e.contains("no updateinfo"), "{e}");
    no_leftovers(dir.path());
}

/// The default feeds' kinds and formats, end to end: served as the vendors serve them
/// (Amazon's mirror.list → repomd.xml → updateinfo.xml.gz, Red Hat's bulk archive, a
/// SUSE CSAF VEX file, Arch's all.json, CISA's KEV catalog), synced and stored by the
/// real importers, each feed's records counted.
async fn every_family_synced_through_the_real_importers() {
    let server = FeedServer::start().await;
    server.set(
        "/al2/mirror.list",
        Answer::Ok(
            Bytes::from(format!("{}/al2/repo/abc123\n", server.base)),
            "\"m\"",
        ),
    );
    server.set(
        "/al2/repo/abc123/repodata/repomd.xml",
        Answer::Ok(
            shared("amazon/updateinfo-samples/repomd_valid.xml"),
            "\"r\"",
        ),
    );
    server.set(
        "/al2/repo/abc123/repodata/updateinfo.xml.gz",
        Answer::Ok(
            shared("amazon/updateinfo-samples-vuln-list-update/updateinfo_2_items.xml.gz"),
            "\"u\"",
        ),
    );
    server.set(
        "/vex/archive_latest.txt",
        Answer::Ok(shared("redhat/csaf-vex-bulk/archive_latest.txt"), "\"a\""),
    );
    server.set(
        "/vex/csaf_vex_2024-08-04.tar.zst",
        Answer::Ok(
            shared("redhat/csaf-vex-bulk/csaf_vex_2024-08-04.tar.zst"),
            "\"z\"",
        ),
    );
    server.set(
        "/suse/cve-2023-5568.json",
        Answer::Ok(shared("suse/csaf-vex/cve-2023-5568.json"), "\"s\""),
    );
    server.set(
        "/arch/all.json",
        Answer::Ok(shared("arch/vuln-list-update/archlinux.json"), "\"h\""),
    );
    server.set(
        "/kev.json",
        Answer::Ok(shared("kev/known_exploited_vulnerabilities.json"), "\"k\""),
    );
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite(dir.path()).await;
    let sync = syncer(store.clone(), &server, dir.path());
    let feeds = [
        feed("amazon-2", FeedKind::Repomd, server.url("/al2/mirror.list")),
        feed(
            "redhat-vex",
            FeedKind::RedhatVexBulk,
            server.url("/vex/archive_latest.txt"),
        ),
        feed(
            "suse",
            FeedKind::File,
            server.url("/suse/cve-2023-5568.json"),
        ),
        feed("arch", FeedKind::File, server.url("/arch/all.json")),
        feed("cisa-kev", FeedKind::File, server.url("/kev.json")),
    ];
    let mut log = patchctl_server::vulnsync::LogObserver;
    let r = sync.sync(&feeds, false, &mut log).await.unwrap();
    for r in &r {
        assert!(
            matches!(r.outcome, Ok(Some(n)) if n > 0),
            "{}: {:?}",
            r.feed.name,
            r.outcome
        );
    }
    let sources = store.vuln_sources().await.unwrap();
    let count = |name: &str| {
        sources
            .iter()
            .find(|s| s.name == name)
            .map_or(0, |s| s.record_count)
    };
    assert_eq!(count("amazon-alas"), 2, "{sources:?}");
    assert_eq!(count("redhat-csaf"), 5, "{sources:?}");
    assert_eq!(count("suse-csaf"), 1, "{sources:?}");
    assert_eq!(count("arch-tracker"), 2, "{sources:?}");
    assert_eq!(count("cisa-kev"), 1404, "{sources:?}");
    // the catalog's entries are stored with their dates, as the deadlines read them
    // (crates/patchctl-server/tests/compliance.rs: a real KEV CVE's KEV deadline)
    let webp = store
        .vuln_records()
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.source == "cisa-kev" && r.record.id == "CVE-2023-4863")
        .expect("libwebp's CVE from the synced catalog");
    let exploited = webp.record.exploited.expect("a KEV entry");
    assert_eq!(exploited.date_added, "2023-09-13");
    assert_eq!(exploited.due_date.as_deref(), Some("2023-10-04"));
    // the data now covers those releases
    let with = store
        .vuln_ecosystems_with_data(&[
            "Amazon Linux:2".to_string(),
            "Arch Linux".to_string(),
            "openSUSE:Tumbleweed".to_string(),
            "Red Hat:9".to_string(),
            "Fedora:40".to_string(),
        ])
        .await
        .unwrap();
    assert_eq!(
        with,
        [
            "Amazon Linux:2",
            "Arch Linux",
            "openSUSE:Tumbleweed",
            "Red Hat:9"
        ]
    );
}

async fn redhat_bulk_full_then_changes_and_deletions() {
    let server = FeedServer::start().await;
    let archive = shared("redhat/csaf-vex-bulk/csaf_vex_2024-08-04.tar.zst");
    let changes = shared("redhat/csaf-vex-bulk/changes.csv");
    let deletions = shared("redhat/csaf-vex-bulk/deletions.csv");
    server.set(
        "/vex/archive_latest.txt",
        Answer::Ok(shared("redhat/csaf-vex-bulk/archive_latest.txt"), "\"a1\""),
    );
    server.set(
        "/vex/csaf_vex_2024-08-04.tar.zst",
        Answer::Ok(archive.clone(), "\"z1\""),
    );
    server.set("/vex/changes.csv", Answer::Ok(changes, "\"c1\""));
    server.set(
        "/vex/deletions.csv",
        Answer::Ok(deletions.clone(), "\"d1\""),
    );
    let doc = Bytes::from_static(br#"{"document": {"tracking": {"id": "CVE-2023-6240"}}}"#);
    server.set(
        "/vex/2023/cve-2023-6240.json",
        Answer::Ok(doc.clone(), "\"x\""),
    );
    // cve-2023-6212.json is listed as changed but is gone (404): skipped.
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite(dir.path()).await;
    let recorder = Arc::new(Recorder::default());
    let sync = syncer(store.clone(), &server, dir.path()).with_importer(recorder.clone());
    let feeds = [feed(
        "redhat",
        FeedKind::RedhatVexBulk,
        server.url("/vex/archive_latest.txt"),
    )];
    let mut log = patchctl_server::vulnsync::LogObserver;

    // First: the archive archive_latest.txt names, whole.
    let r = sync.sync(&feeds, false, &mut log).await.unwrap();
    assert!(matches!(r[0].outcome, Ok(Some(0))), "{:?}", r[0].outcome);
    assert_eq!(
        server.paths(),
        [
            "/vex/archive_latest.txt",
            "/vex/csaf_vex_2024-08-04.tar.zst"
        ]
    );
    let handed = recorder.take();
    assert_eq!(handed.len(), 1);
    assert_eq!(handed[0].1.len(), 1);
    assert_eq!(handed[0].1[0].0, "csaf_vex_2024-08-04.tar.zst");
    assert!(handed[0].1[0].1 == archive);

    // Then: the documents changed after the archive's day (two of the three lines;
    // 2021/cve-2021-47343.json changed before it), and deletions.csv.
    let r = sync.sync(&feeds, false, &mut log).await.unwrap();
    assert!(matches!(r[0].outcome, Ok(Some(0))), "{:?}", r[0].outcome);
    assert_eq!(
        server.paths(),
        [
            "/vex/archive_latest.txt",
            "/vex/changes.csv",
            "/vex/2023/cve-2023-6240.json",
            "/vex/2023/cve-2023-6212.json",
            "/vex/deletions.csv",
        ]
    );
    let handed = recorder.take();
    let names: Vec<&str> = handed[0].1.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["2023/cve-2023-6240.json", "deletions.csv"]);
    assert!(handed[0].1[0].1 == doc && handed[0].1[1].1 == deletions);

    // Nothing changed since: conditional requests, nothing imported.
    let r = sync.sync(&feeds, false, &mut log).await.unwrap();
    assert!(matches!(r[0].outcome, Ok(None)), "{:?}", r[0].outcome);
    assert_eq!(
        server.requests(),
        [
            ("/vex/archive_latest.txt".to_owned(), None),
            ("/vex/changes.csv".to_owned(), Some("\"c1\"".to_owned())),
            ("/vex/deletions.csv".to_owned(), Some("\"d1\"".to_owned())),
        ]
    );
    assert!(recorder.take().is_empty());

    // A new archive name: a full re-sync.
    server.set(
        "/vex/archive_latest.txt",
        Answer::Ok(
            Bytes::from_static(b"csaf_vex_2024-08-05.tar.zst\n"),
            "\"a2\"",
        ),
    );
    server.set(
        "/vex/csaf_vex_2024-08-05.tar.zst",
        Answer::Ok(archive.clone(), "\"z2\""),
    );
    let r = sync.sync(&feeds, false, &mut log).await.unwrap();
    assert!(matches!(r[0].outcome, Ok(Some(0))), "{:?}", r[0].outcome);
    assert_eq!(
        server.paths(),
        [
            "/vex/archive_latest.txt",
            "/vex/csaf_vex_2024-08-05.tar.zst"
        ]
    );
    assert_eq!(recorder.take()[0].1[0].0, "csaf_vex_2024-08-05.tar.zst");

    // A pointer that names something else is refused, and nothing else is fetched.
    server.set(
        "/vex/archive_latest.txt",
        Answer::Ok(Bytes::from_static(b"../../etc/passwd\n"), "\"a3\""),
    );
    let r = sync.sync(&feeds, false, &mut log).await.unwrap();
    let e = r[0].outcome.as_ref().unwrap_err().to_string();
    assert!(e.contains("archive_latest.txt"), "{e}");
    assert_eq!(server.paths(), ["/vex/archive_latest.txt"]);
    no_leftovers(dir.path());
}

async fn lease_is_exclusive_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite(dir.path()).await;
    check_lease(&*store).await;
}

async fn check_lease(store: &dyn Storage) {
    let now = Utc::now();
    let later = now + chrono::Duration::seconds(300);
    assert!(store.take_vuln_sync_lease("a", now, later).await.unwrap());
    assert!(!store.take_vuln_sync_lease("b", now, later).await.unwrap());
    // The holder renews.
    assert!(store.take_vuln_sync_lease("a", now, later).await.unwrap());
    // Expired: another node takes it.
    let after = later + chrono::Duration::seconds(1);
    assert!(
        store
            .take_vuln_sync_lease("b", after, after + chrono::Duration::seconds(300))
            .await
            .unwrap()
    );
    assert!(!store.take_vuln_sync_lease("a", after, later).await.unwrap());
    // Released only by its holder.
    store.release_vuln_sync_lease("a").await.unwrap();
    assert!(!store.take_vuln_sync_lease("a", after, later).await.unwrap());
    store.release_vuln_sync_lease("b").await.unwrap();
    assert!(store.take_vuln_sync_lease("a", after, later).await.unwrap());
    store.release_vuln_sync_lease("a").await.unwrap();
}

/// A fresh database on the PostgreSQL server of `PATCHCTL_TEST_POSTGRES_URL`; its URL
async fn two_nodes_on_postgres_one_syncs_per_round() {
    let (url, base, name) = postgres_db().await;
    let server = FeedServer::start().await;
    server.set(
        "/alma9.zip",
        Answer::Ok(shared("osv/almalinux-9.zip"), "\"v1\""),
    );
    let dir = tempfile::tempdir().unwrap();
    let a = patchctl_storage::open(&url).await.unwrap();
    let b = patchctl_storage::open(&url).await.unwrap();
    check_lease(&*a).await;
    let feeds = vec![feed("alma9", FeedKind::File, server.url("/alma9.zip"))];
    let node = |store: Arc<dyn Storage>, holder: &str| {
        Scheduler::new(
            syncer(store, &server, dir.path()),
            feeds.clone(),
            holder.into(),
        )
    };
    let (node_a, node_b) = (node(a.clone(), "node-a"), node(b.clone(), "node-b"));

    // Both nodes start a round at once: one syncs, the other skips it (or finds
    // nothing due once it gets the lease).
    let (ra, rb) = tokio::join!(node_a.round(), node_b.round());
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    let synced = |r: &Option<Vec<patchctl_server::vulnsync::FeedReport>>| {
        r.as_ref().map_or(0, |reports| reports.len())
    };
    assert_eq!(
        synced(&ra) + synced(&rb),
        1,
        "exactly one node syncs the feed"
    );
    assert_eq!(server.paths(), ["/alma9.zip"]);
    assert_eq!(osv_records(&*b).await, 1783);
    assert_eq!(
        a.vuln_generation().await.unwrap(),
        b.vuln_generation().await.unwrap()
    );

    // Later rounds: nothing due, nothing fetched by either.
    let (ra, rb) = tokio::join!(node_a.round(), node_b.round());
    assert_eq!(synced(&ra.unwrap()) + synced(&rb.unwrap()), 0);
    assert!(server.paths().is_empty());
    drop((a, b));
    drop_db(&base, &name).await;
}

fn dev_platform_says_once_that_feeds_are_offline() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("dev");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let feeds = format!(
        r#"[{{"name": "debian-tracker", "url": "https://127.0.0.1:{port}/tracker/data/json"}},
            {{"name": "osv-alpine", "url": "https://127.0.0.1:{port}/Alpine/all.zip"}}]"#
    );
    let log = tmp.path().join("dev.log");
    let out = tmp.path().join("dev.out");
    let mut child = Command::new(env!("CARGO_BIN_EXE_patchctl"))
        .args([
            "server",
            "--dev",
            "--no-agent",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(&data)
        .env("PATCHCTL_VULN_FEEDS", &feeds)
        .env_remove("PATCHCTL_VULN_SYNC")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let notice = format!("vulnerability feeds: offline (cannot reach 127.0.0.1:{port}");
    let text = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains(&notice) {
            break text;
        }
        if started.elapsed() > Duration::from_secs(40) || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            panic!("no offline notice after {:?}:\n{text}", started.elapsed());
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    eprintln!("offline notice after {:?}", started.elapsed());
    assert!(
        text.contains("keeping the current data; next attempt at "),
        "{text}"
    );
    assert!(text.contains("patchctl vulndb import"), "{text}");
    let banner = std::fs::read_to_string(&out).unwrap();
    assert!(
        banner.contains("Vulnerability feeds: 2 feeds, synced by the platform itself"),
        "{banner}"
    );

    // vulndb status shows each feed failing, with the reason and the next attempt.
    let status = Command::new(env!("CARGO_BIN_EXE_patchctl"))
        .args([
            "vulndb", "status", "--feeds", "--output", "json", "--config",
        ])
        .arg(data.join("server.json"))
        .env_remove("PATCHCTL_DATABASE_URL")
        .env("PATCHCTL_VULN_FEEDS", &feeds)
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let report: Value = serde_json::from_slice(&status.stdout).unwrap();
    let feeds_json = report["feeds"].as_array().unwrap();
    assert_eq!(feeds_json.len(), 2);
    for f in feeds_json {
        assert_eq!(f["state"], "failing", "{f}");
        assert!(
            f["last_error"].as_str().unwrap().contains("cannot reach"),
            "{f}"
        );
        assert!(f["next_attempt_at"].is_string(), "{f}");
        assert!(f["last_success_at"].is_null(), "{f}");
    }
    let table = Command::new(env!("CARGO_BIN_EXE_patchctl"))
        .args(["vulndb", "status", "--config"])
        .arg(data.join("server.json"))
        .env_remove("PATCHCTL_DATABASE_URL")
        .env("PATCHCTL_VULN_FEEDS", &feeds)
        .output()
        .unwrap();
    let table = String::from_utf8(table.stdout).unwrap();
    assert!(
        table.contains("debian-tracker") && table.contains("failing"),
        "{table}"
    );

    // Said once: a second look a moment later finds the same single line.
    std::thread::sleep(Duration::from_secs(2));
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        text.matches("vulnerability feeds: offline").count(),
        1,
        "{text}"
    );
    let _ = child.kill();
    let _ = child.wait();
}
