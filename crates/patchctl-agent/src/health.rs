//! Health probes that read system state: the package manager's lock.
//!
//! The lock is read from `/proc/locks` (POSIX and OFD record locks by device and inode),
//! so it needs neither root nor taking the lock ourselves — probing must never block a
//! real package-manager run.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use patchctl_proto::command::{HealthItem, HealthStatus};

use crate::inventory::PackageManager;

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
}
