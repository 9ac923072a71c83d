//! Fault 3 of issue 16 §4: the disk of a SQLite platform fills up under load. The
//! database lives on a small tmpfs (`size=48m`); a filler file takes every byte left
//! while simulated agents keep sending. Writes are then refused with 503 and a message
//! saying the disk is full and what to do, `PRAGMA integrity_check` says `ok`, and once
//! the filler is removed the same node stores again, without a restart; nothing
//! acknowledged is lost.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::json;

use super::check::nothing_acknowledged_lost;
use super::load::{Load, queue_health_check};
use crate::common::nodes::Cluster;
use crate::common::wait_for;

/// A tmpfs mounted for the test; unmounted when dropped.
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Result<Tmpfs, String> {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mount -t tmpfs failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Tmpfs {
            dir: dir.to_owned(),
        })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

/// `None` when a tmpfs can be mounted here (tried on a scratch directory).
fn tmpfs_missing() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("mounting a small tmpfs needs root: run the tests as root".into());
    }
    let d = tempfile::tempdir().ok()?;
    match Tmpfs::mount(&d.path().join("t"), "1m") {
        Ok(_) => None,
        Err(e) => Some(format!(
            "{e} (a container without CAP_SYS_ADMIN cannot mount: run privileged)"
        )),
    }
}

/// The harness's check for this test.
pub static TMPFS: patchctl_testkit::Check = patchctl_testkit::Check {
    what: "mounting a small tmpfs (root, CAP_SYS_ADMIN)",
    missing: tmpfs_missing,
};

/// Writes `path` until the file system has no byte left; its size.
fn fill(path: &Path) -> u64 {
    let mut f = std::fs::File::create(path).unwrap();
    let mut written = 0u64;
    for chunk in [1 << 20, 4096, 512, 1] {
        let buf = vec![0x5au8; chunk];
        loop {
            match f.write(&buf) {
                Ok(0) => break,
                Ok(n) => written += n as u64,
                Err(e) if e.raw_os_error() == Some(libc_enospc()) => break,
                Err(e) => panic!("filling {}: {e}", path.display()),
            }
        }
    }
    let _ = f.sync_all();
    written
}

fn libc_enospc() -> i32 {
    nix::errno::Errno::ENOSPC as i32
}

/// `PRAGMA integrity_check` of the SQLite file at `db`, through a read-only connection.
async fn integrity(db: &Path) -> String {
    use sqlx::Connection;
    let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}?mode=ro", db.display()))
        .await
        .unwrap();
    let rows: Vec<(String,)> = sqlx::query_as("PRAGMA integrity_check")
        .fetch_all(&mut c)
        .await
        .unwrap();
    let _ = c.close().await;
    rows.into_iter().map(|r| r.0).collect::<Vec<_>>().join("; ")
}

pub fn sqlite_disk_full_under_load() {
    let tmp = tempfile::tempdir().unwrap();
    let fs = Tmpfs::mount(&tmp.path().join("data"), "48m").unwrap();
    let db = fs.dir.join("patchctl.db");
    let url = format!("sqlite://{}", db.display());
    let mut cluster = Cluster::new(
        &tmp.path().join("cluster"),
        &url,
        json!({ "command_lease_secs": 3 }),
    );
    cluster.start(1);
    let load = Load::start(&cluster, 1, 12, 0);
    let early = queue_health_check(&cluster, 0, load.agents[0].1);
    wait_for("a result before the disk fills", 30, || {
        load.answered(early).then_some(())
    });
    std::thread::sleep(Duration::from_secs(1));

    let filler = fs.dir.join("filler");
    let took = fill(&filler);
    eprintln!("the filler took the last {took} bytes of the tmpfs");
    let full_errors = || {
        load.ledger
            .errors
            .lock()
            .unwrap()
            .keys()
            .filter(|k| k.contains("disk is full"))
            .count()
    };
    wait_for("an agent told that the disk is full", 30, || {
        (full_errors() > 0).then_some(())
    });
    let told: Vec<String> = load
        .ledger
        .errors
        .lock()
        .unwrap()
        .keys()
        .filter(|k| k.contains("disk is full"))
        .cloned()
        .collect();
    for t in &told {
        assert!(
            t.starts_with("HTTP 503: ") && t.contains("free space"),
            "the refusal says what to do: {t}"
        );
    }
    // An operator's write: refused the same way when it needs space, or, when it fits
    // in pages SQLite already holds (its WAL is reused after a checkpoint), stored, and
    // then it must be there afterwards.
    let body = json!({"host": load.agents[1].1.to_string(), "kind": "health_check", "params": {}});
    let mut queued_while_full: Vec<String> = Vec::new();
    for _ in 0..5 {
        match cluster.api(0, http::Method::POST, "/api/v1/commands", Some(&body)) {
            Ok(v) => queued_while_full.push(v["id"].as_str().unwrap().to_owned()),
            Err(
                patchctl_net::ClientError::Status {
                    status, message, ..
                }
                | patchctl_net::ClientError::RetryLater {
                    status, message, ..
                },
            ) => {
                assert_eq!(status, 503, "{message}");
                assert!(
                    message.contains("disk is full") && message.contains("free space"),
                    "{message}"
                );
            }
            Err(e) => panic!("queueing a command on a full disk: {e}"),
        }
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    assert_eq!(rt.block_on(integrity(&db)), "ok", "while the disk is full");
    std::thread::sleep(Duration::from_secs(2));

    let before = load.last_heartbeats();
    std::fs::remove_file(&filler).unwrap();
    eprintln!("space is back");
    load.wait_all_acknowledged_after(&before, 60);
    let late = queue_health_check(&cluster, 0, load.agents[2].1);
    wait_for(
        "a command queued after the space came back answered",
        30,
        || load.answered(late).then_some(()),
    );
    let ledger = load.stop();
    assert!(cluster.running(0), "the node died: {}", cluster.log(0));

    let errors = ledger.errors.lock().unwrap().clone();
    eprintln!("failures seen by the simulated agents: {errors:?}");
    assert_eq!(
        ledger.unexpected_errors(),
        Vec::<String>::new(),
        "failures other than a 503"
    );
    let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on(nothing_acknowledged_lost(&url, &ledger))
    }));
    if let Err(e) = checked {
        let log = cluster.log(0);
        let bad: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("ERROR") || l.contains("WARN"))
            .take(40)
            .collect();
        eprintln!("the node's warnings and errors:\n{}", bad.join("\n"));
        std::panic::resume_unwind(e);
    }
    for id in &queued_while_full {
        let v = cluster
            .api(
                0,
                http::Method::GET,
                &format!("/api/v1/commands/{id}"),
                None,
            )
            .unwrap_or_else(|e| panic!("command {id}, queued on the full disk, is lost: {e}"));
        assert_eq!(v["id"], id.as_str());
    }
    assert_eq!(
        rt.block_on(integrity(&db)),
        "ok",
        "after the space came back"
    );
    drop(cluster);
    drop(fs);
}
