//! The `health_check` operation: every check the agent runs on itself, its link to the
//! platform and the system (configuration, server, clock, disks, the package manager's
//! lock), and the summary built from them.
//!
//! The lock is read from `/proc/locks` (POSIX and OFD record locks by device and inode),
//! so it needs neither root nor taking the lock ourselves — probing must never block a
//! real package-manager run.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use patchctl_proto::command::{HealthItem, HealthReport, HealthStatus, ResultStatus};

use crate::config::AgentConfig;
use crate::inventory::PackageManager;
use crate::units::FailedUnits;

/// What the agent knows about its link to the platform, for `health_check`.
#[derive(Debug, Clone, Default)]
pub struct LinkState {
    /// Last successful exchange with the platform.
    pub last_contact: Option<DateTime<Utc>>,
    /// Round-trip time of that exchange.
    pub last_rtt: Option<Duration>,
    /// Local clock minus the platform's clock, seconds, at that exchange.
    pub clock_skew_secs: Option<f64>,
    /// The last connection error, if the last attempt failed.
    pub last_error: Option<String>,
}

/// Shared, updated by the runtime, read by `health_check`.
pub type SharedLink = Arc<Mutex<LinkState>>;

/// What the health check looks at.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// The system root (`/` in production).
    pub root: &'a Path,
    /// The agent's configuration file, when it runs with one.
    pub config_path: Option<&'a Path>,
    /// The link to the platform as last seen.
    pub link: &'a LinkState,
    /// The heartbeat interval: contact older than three of them is a warning.
    pub heartbeat_interval: Duration,
    /// The package database in use, if any.
    pub package_manager: Option<PackageManager>,
    /// What systemd said about failed units ([`crate::units::failed_units`]).
    pub failed_units: &'a FailedUnits,
}

/// Runs every check: the result status, the summary and the report.
pub fn check(subject: &Subject<'_>) -> (ResultStatus, String, HealthReport) {
    let mut checks = vec![HealthItem {
        name: "agent".into(),
        status: HealthStatus::Ok,
        detail: format!("patchctl-agent {}", crate::VERSION),
    }];
    checks.push(config_check(subject.config_path));
    checks.push(server_check(subject.link, subject.heartbeat_interval));
    checks.push(clock_check(subject.link));
    let mut seen_fs = Vec::new();
    for mount in ["/", "/var"] {
        let path = subject.root.join(mount.trim_start_matches('/'));
        let Ok(st) = nix::sys::statvfs::statvfs(&path) else {
            continue;
        };
        // /var on the same file system as / would only repeat the line.
        if seen_fs.contains(&st.filesystem_id()) {
            continue;
        }
        seen_fs.push(st.filesystem_id());
        if let Some(item) = disk_check(mount, &st) {
            checks.push(item);
        }
    }
    checks.push(package_lock(subject.root, subject.package_manager));
    checks.push(subject.failed_units.item());
    let worst = checks
        .iter()
        .filter(|c| matches!(c.status, HealthStatus::Fail | HealthStatus::Warn))
        .map(|c| c.name.as_str())
        .collect::<Vec<_>>();
    let failed = checks.iter().any(|c| c.status == HealthStatus::Fail);
    let summary = if worst.is_empty() {
        format!("healthy: {} checks passed or not applicable", checks.len())
    } else {
        format!("attention needed: {}", worst.join(", "))
    };
    let status = if failed {
        ResultStatus::Failed
    } else {
        ResultStatus::Succeeded
    };
    (
        status,
        summary,
        HealthReport {
            agent_version: crate::VERSION.into(),
            checks,
            failed_units: subject.failed_units.units(),
        },
    )
}

/// The `config` item: the configuration file still loads (valid and private).
fn config_check(config_path: Option<&Path>) -> HealthItem {
    match config_path {
        None => HealthItem {
            name: "config".into(),
            status: HealthStatus::Unsupported,
            detail: "the agent runs without a configuration file".into(),
        },
        Some(p) => match AgentConfig::load(p) {
            Ok(_) => HealthItem {
                name: "config".into(),
                status: HealthStatus::Ok,
                detail: format!("{} is valid and private", p.display()),
            },
            Err(e) => HealthItem {
                name: "config".into(),
                status: HealthStatus::Fail,
                detail: e.to_string(),
            },
        },
    }
}

/// The `server` item: when the platform last answered, or why it did not.
fn server_check(link: &LinkState, interval: Duration) -> HealthItem {
    let (status, detail) = match (link.last_contact, &link.last_error) {
        (_, Some(err)) => (HealthStatus::Fail, format!("last attempt failed: {err}")),
        (Some(at), None) => {
            let age = (Utc::now() - at).num_seconds().max(0) as u64;
            let rtt = link.last_rtt.map(|d| d.as_millis()).unwrap_or(0);
            if age > 3 * interval.as_secs() {
                (
                    HealthStatus::Warn,
                    format!("last contact {age} s ago (round trip {rtt} ms)"),
                )
            } else {
                (
                    HealthStatus::Ok,
                    format!("reachable; last contact {age} s ago, round trip {rtt} ms"),
                )
            }
        }
        (None, None) => (
            HealthStatus::Warn,
            "no contact with the platform yet".into(),
        ),
    };
    HealthItem {
        name: "server".into(),
        status,
        detail,
    }
}

/// The `clock` item: the local clock against the platform's.
fn clock_check(link: &LinkState) -> HealthItem {
    let (status, detail) = match link.clock_skew_secs {
        None => (
            HealthStatus::Warn,
            "clock not compared with the platform yet".into(),
        ),
        Some(s) if s.abs() < 30.0 => (
            HealthStatus::Ok,
            format!("within {:.1} s of the platform", s.abs()),
        ),
        Some(s) if s.abs() < 300.0 => (
            HealthStatus::Warn,
            format!("{s:+.1} s off the platform's clock; check NTP (timedatectl)"),
        ),
        Some(s) => (
            HealthStatus::Fail,
            format!(
                "{s:+.1} s off the platform's clock; certificate checks may fail; fix NTP (timedatectl)"
            ),
        ),
    };
    HealthItem {
        name: "clock".into(),
        status,
        detail,
    }
}

/// A `disk:MOUNT` item: free space; `None` for a file system of no size.
// The statvfs fields are 32-bit on some 32-bit targets; the casts are not no-ops there.
#[allow(clippy::unnecessary_cast)]
fn disk_check(mount: &str, st: &nix::sys::statvfs::Statvfs) -> Option<HealthItem> {
    let frsize = st.fragment_size() as u64;
    let total = st.blocks() as u64 * frsize;
    let avail = st.blocks_available() as u64 * frsize;
    if total == 0 {
        return None;
    }
    let pct = avail as f64 * 100.0 / total as f64;
    const GIB: u64 = 1 << 30;
    let status = if avail < GIB / 4 || pct < 2.0 {
        HealthStatus::Fail
    } else if avail < GIB || pct < 10.0 {
        HealthStatus::Warn
    } else {
        HealthStatus::Ok
    };
    Some(HealthItem {
        name: format!("disk:{mount}"),
        status,
        detail: format!(
            "{:.1} GiB free of {:.1} GiB ({pct:.0} %)",
            avail as f64 / GIB as f64,
            total as f64 / GIB as f64
        ),
    })
}

/// pacman's lock file, relative to the root.
const PACMAN_LOCK: &str = "var/lib/pacman/db.lck";

/// Lock files of each package manager, relative to the system root.
fn lock_files(pm: PackageManager) -> &'static [&'static str] {
    match pm {
        PackageManager::Dpkg => &["var/lib/dpkg/lock-frontend", "var/lib/dpkg/lock"],
        PackageManager::Rpm => &["var/lib/rpm/.rpm.lock", "usr/lib/sysimage/rpm/.rpm.lock"],
        PackageManager::Apk => &["lib/apk/db/lock"],
        PackageManager::Pacman => &[],
    }
}

/// Parses `/proc/locks` and returns the pid holding a lock on (`dev`, `ino`), if any.
/// `dev` is the `st_dev` of the file.
pub fn lock_holder(proc_locks: &str, dev: u64, ino: u64) -> Option<u32> {
    let major = nix::sys::stat::major(dev);
    let minor = nix::sys::stat::minor(dev);
    let want = format!("{major:02x}:{minor:02x}:{ino}");
    for line in proc_locks.lines() {
        // "1: POSIX  ADVISORY  WRITE 1234 08:01:123456 0 EOF" (blocked waiters carry "->").
        if line.contains("->") {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() >= 6 && fields[5] == want {
            return fields[4].parse().ok();
        }
    }
    None
}

/// The `package_lock` health item.
pub fn package_lock(root: &Path, pm: Option<PackageManager>) -> HealthItem {
    let name = "package_lock".to_string();
    let Some(pm) = pm else {
        return HealthItem {
            name,
            status: HealthStatus::Unsupported,
            detail: "no supported package manager found".into(),
        };
    };
    let locks = std::fs::read_to_string("/proc/locks").unwrap_or_default();
    let mut seen = Vec::new();
    for rel in lock_files(pm) {
        let path = root.join(rel);
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        seen.push(path.display().to_string());
        if let Some(pid) = lock_holder(&locks, meta.dev(), meta.ino()) {
            return HealthItem {
                name,
                status: HealthStatus::Warn,
                detail: format!(
                    "{} is locked by another process (pid {pid})",
                    path.display()
                ),
            };
        }
    }
    if pm == PackageManager::Pacman && root.join(PACMAN_LOCK).exists() {
        // pacman's lock is a file that exists while it runs (or after it crashed).
        return HealthItem {
            name,
            status: HealthStatus::Warn,
            detail: format!(
                "{} exists: pacman is running, or crashed and left it behind (remove it only if no pacman runs)",
                root.join(PACMAN_LOCK).display()
            ),
        };
    }
    if pm == PackageManager::Dpkg {
        let pending = crate::inventory::dpkg::interrupted(&root.join("var/lib/dpkg"));
        if pending {
            return HealthItem {
                name,
                status: HealthStatus::Fail,
                detail:
                    "an interrupted dpkg run left packages unfinished; `dpkg --configure -a` is needed (the agent runs it before the next install)"
                        .into(),
            };
        }
    }
    if seen.is_empty() {
        return HealthItem {
            name,
            status: HealthStatus::Ok,
            detail: format!("{} is not locked (no lock file yet)", pm.as_str()),
        };
    }
    HealthItem {
        name,
        status: HealthStatus::Ok,
        detail: format!("not locked: {}", seen.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_lock_holder() {
        let dev = nix::sys::stat::makedev(8, 1);
        let locks = "1: POSIX  ADVISORY  WRITE 4242 08:01:1234 0 EOF\n\
                     1: -> POSIX  ADVISORY  WRITE 5555 08:01:1234 0 EOF\n\
                     2: FLOCK  ADVISORY  WRITE 77 fd:00:99 0 EOF\n";
        assert_eq!(lock_holder(locks, dev, 1234), Some(4242));
        assert_eq!(lock_holder(locks, dev, 99), None);
        assert_eq!(
            lock_holder(locks, nix::sys::stat::makedev(0xfd, 0), 99),
            Some(77)
        );
        assert_eq!(lock_holder("garbage\n\n1:", dev, 1), None);
    }

    #[test]
    fn sees_a_real_lock() {
        // Take a real POSIX lock on a temp file with the std API and find it.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        let f = std::fs::File::create(&path).unwrap();
        f.lock().unwrap(); // flock(2): appears in /proc/locks as FLOCK
        let meta = std::fs::metadata(&path).unwrap();
        let locks = std::fs::read_to_string("/proc/locks").unwrap();
        assert_eq!(
            lock_holder(&locks, meta.dev(), meta.ino()),
            Some(std::process::id())
        );
        drop(f);
    }

    #[test]
    fn check_lists_every_item_and_names_the_ones_needing_attention() {
        let dir = tempfile::tempdir().unwrap();
        let link = LinkState::default();
        let (status, summary, report) = check(&Subject {
            root: dir.path(),
            config_path: None,
            link: &link,
            heartbeat_interval: Duration::from_secs(60),
            package_manager: None,
            failed_units: &FailedUnits::NoSystemd,
        });
        let names: Vec<&str> = report.checks.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names[..4], ["agent", "config", "server", "clock"]);
        assert_eq!(names[names.len() - 2..], ["package_lock", "failed_units"]);
        assert_eq!(report.failed_units, None);
        assert_eq!(report.agent_version, crate::VERSION);
        // No contact yet: server and clock warn, which is attention but not failure.
        assert!(
            summary.starts_with("attention needed: server, clock"),
            "{summary}"
        );
        let failed = report.checks.iter().any(|c| c.status == HealthStatus::Fail);
        assert_eq!(status == ResultStatus::Failed, failed);
    }
}
