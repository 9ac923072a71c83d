//! A private PostgreSQL instance for one test: `initdb` and `pg_ctl` of the machine's
//! PostgreSQL (`/usr/lib/postgresql/*/bin`) run as the `postgres` user through
//! `runuser`, in a temporary directory, on a free loopback port. The machine's shared
//! cluster is never touched: other tests use it at the same time.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::nodes::free_port;

/// A running private PostgreSQL; stopped (immediate) and removed when dropped.
pub struct PrivatePostgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

/// The directory of `initdb` and `pg_ctl`, if PostgreSQL's server programs are here.
fn bin_dir() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|b| b.join("initdb").is_file() && b.join("pg_ctl").is_file())
        .collect();
    dirs.sort();
    dirs.pop()
}

/// `None` when a private instance can be made here; else why not and what to do.
pub fn missing() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("a private PostgreSQL needs root (to run initdb as the postgres user): run the tests as root".into());
    }
    if bin_dir().is_none() {
        return Some(
            "no PostgreSQL server programs in /usr/lib/postgresql/*/bin (apt-get install postgresql)"
                .into(),
        );
    }
    if nix::unistd::User::from_name("postgres")
        .ok()
        .flatten()
        .is_none()
    {
        return Some("no postgres user (apt-get install postgresql)".into());
    }
    None
}

fn as_postgres(bin: &Path, program: &str, args: &[&str]) {
    let out = Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .arg(bin.join(program))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?} as postgres failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl PrivatePostgres {
    /// `initdb` (trust authentication) and start on a free port.
    pub fn start() -> PrivatePostgres {
        if let Some(why) = missing() {
            panic!("cannot start a private PostgreSQL: {why}");
        }
        let bin = bin_dir().unwrap();
        let dir = tempfile::Builder::new()
            .prefix("patchctl-faults-pg")
            .tempdir()
            .unwrap();
        let pg = nix::unistd::User::from_name("postgres").unwrap().unwrap();
        nix::unistd::chown(dir.path(), Some(pg.uid), Some(pg.gid)).unwrap();
        let data = dir.path().join("data");
        as_postgres(
            &bin,
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        let p = PrivatePostgres {
            bin,
            dir,
            port: free_port(),
        };
        p.pg_ctl_start();
        p
    }

    fn pg_ctl_start(&self) {
        let data = self.dir.path().join("data");
        let log = self.dir.path().join("postgres.log");
        let opts = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {}",
            self.port,
            self.dir.path().display()
        );
        as_postgres(
            &self.bin,
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-l",
                log.to_str().unwrap(),
                "-o",
                &opts,
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
    }

    fn pg_ctl_stop(&self, mode: &str) {
        let data = self.dir.path().join("data");
        as_postgres(
            &self.bin,
            "pg_ctl",
            &["-D", data.to_str().unwrap(), "-m", mode, "-w", "stop"],
        );
    }

    /// The URL of database `db` on it.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Stops it (fast shutdown: sessions are cut).
    pub fn stop(&self) {
        self.pg_ctl_stop("fast");
    }

    /// Starts it again after [`PrivatePostgres::stop`].
    pub fn start_again(&self) {
        self.pg_ctl_start();
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .args([
                "-D",
                data.to_str().unwrap(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ])
            .output();
    }
}
