//! Where the CPU time goes during a load run: this process's threads grouped by name
//! (the platform's runtime, the load generator's runtime, SQLite's worker threads),
//! from `/proc/self/task/*/stat`; the other processes (PostgreSQL's backends and the
//! rest) from `/proc/PID/stat`; and the machine's idle and steal time from
//! `/proc/stat`.
//!
//! Per-thread and per-process figures come from the kernel's scheduler accounting;
//! processes that start and end between two snapshots are missed, so the figures
//! for other processes are lower bounds.

use std::collections::HashMap;
use std::time::Duration;

/// Clock ticks per second of the `/proc` counters (`USER_HZ`, 100 on Linux).
const TICKS_PER_SEC: u64 = 100;

/// Thread name prefix of the platform's runtime in this process.
pub const SERVER_THREADS: &str = "bench-server";
/// Thread name prefix of the load generator's runtime.
pub const LOAD_THREADS: &str = "bench-load";
/// Thread name prefix of sqlx's SQLite connection workers (`sqlx-sqlite-worker-N`,
/// truncated by the kernel to 15 bytes).
const SQLITE_THREADS: &str = "sqlx-sqlite";

/// CPU counters at one instant, in clock ticks.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    server: u64,
    load: u64,
    sqlite: u64,
    other: u64,
    /// Other processes: pid → (comm, ticks).
    processes: HashMap<u32, (String, u64)>,
    /// `/proc/stat` `cpu` line: user nice system idle iowait irq softirq steal.
    machine: [u64; 8],
}

/// CPU time spent between two snapshots.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    /// The platform's (or the hello server's) runtime threads.
    pub server: Duration,
    /// The load generator's runtime threads.
    pub load: Duration,
    /// SQLite's connection worker threads (the database work of the SQLite backend).
    pub sqlite: Duration,
    /// Other threads of this process.
    pub other: Duration,
    /// PostgreSQL's processes.
    pub postgres: Duration,
    /// Every other process on the machine.
    pub elsewhere: Duration,
    /// Fraction of the machine's CPU time that was idle (0–1).
    pub idle: f64,
    /// Fraction of the machine's CPU time stolen by the hypervisor (0–1).
    pub steal: f64,
}

fn ticks(t: u64) -> Duration {
    Duration::from_millis(t * 1000 / TICKS_PER_SEC)
}

/// `(comm, utime + stime)` of a `/proc/.../stat` line.
fn parse_task_stat(text: &str) -> Option<(String, u64)> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?.to_owned();
    // Fields after the comm start at field 3 (state); utime and stime are 14 and 15.
    let rest: Vec<&str> = text.get(close + 1..)?.split_whitespace().collect();
    let utime: u64 = rest.get(11)?.parse().ok()?;
    let stime: u64 = rest.get(12)?.parse().ok()?;
    Some((comm, utime + stime))
}

/// The first eight counters of the `cpu` line of `/proc/stat`.
fn parse_machine(text: &str) -> Option<[u64; 8]> {
    let line = text.lines().next()?;
    let mut it = line.split_whitespace();
    if it.next()? != "cpu" {
        return None;
    }
    let v: Vec<u64> = it.filter_map(|x| x.parse().ok()).collect();
    let mut out = [0u64; 8];
    for (i, slot) in out.iter_mut().enumerate() {
        *slot = *v.get(i)?;
    }
    Some(out)
}

fn read_machine() -> [u64; 8] {
    std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|t| parse_machine(&t))
        .unwrap_or_default()
}

/// The fraction (0–1) of the machine's CPU time that was busy over the next `window`.
pub fn machine_busy_over(window: Duration) -> Option<f64> {
    let a = read_machine();
    std::thread::sleep(window);
    let b = read_machine();
    let d: Vec<u64> = a.iter().zip(b).map(|(x, y)| y.saturating_sub(*x)).collect();
    let total: u64 = d.iter().sum();
    if total == 0 {
        return None;
    }
    Some(1.0 - (d[3] + d[4]) as f64 / total as f64)
}

/// Reads the counters now. Unreadable entries count as zero.
pub fn snapshot() -> Snapshot {
    let mut s = Snapshot::default();
    if let Ok(dir) = std::fs::read_dir("/proc/self/task") {
        for entry in dir.flatten() {
            let Ok(text) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            let Some((comm, t)) = parse_task_stat(&text) else {
                continue;
            };
            if comm.starts_with(SERVER_THREADS) {
                s.server += t;
            } else if comm.starts_with(LOAD_THREADS) {
                s.load += t;
            } else if comm.starts_with(SQLITE_THREADS) {
                s.sqlite += t;
            } else {
                s.other += t;
            }
        }
    }
    let me = std::process::id();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            if pid == me {
                continue;
            }
            let Ok(text) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            if let Some(p) = parse_task_stat(&text) {
                s.processes.insert(pid, p);
            }
        }
    }
    s.machine = read_machine();
    s
}

impl Snapshot {
    /// The CPU time spent from `self` to `later`.
    pub fn until(&self, later: &Snapshot) -> Usage {
        let d = |a: u64, b: u64| b.saturating_sub(a);
        let mut postgres = 0;
        let mut elsewhere = 0;
        for (pid, (comm, t)) in &later.processes {
            let before = match self.processes.get(pid) {
                Some((c, t0)) if c == comm => *t0,
                _ => 0,
            };
            let spent = t.saturating_sub(before);
            if comm.starts_with("postgres") {
                postgres += spent;
            } else {
                elsewhere += spent;
            }
        }
        let m: Vec<u64> = self
            .machine
            .iter()
            .zip(later.machine)
            .map(|(a, b)| b.saturating_sub(*a))
            .collect();
        let total = m.iter().sum::<u64>().max(1) as f64;
        Usage {
            server: ticks(d(self.server, later.server)),
            load: ticks(d(self.load, later.load)),
            sqlite: ticks(d(self.sqlite, later.sqlite)),
            other: ticks(d(self.other, later.other)),
            postgres: ticks(postgres),
            elsewhere: ticks(elsewhere),
            idle: (m[3] + m[4]) as f64 / total,
            steal: m[7] as f64 / total,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_task_stat() {
        let line =
            "1234 (bench-server) S 1 1234 1234 0 -1 4194560 300 0 0 0 17 5 0 0 20 0 4 0 100 0 0";
        assert_eq!(parse_task_stat(line), Some(("bench-server".to_owned(), 22)));
        let odd = "1 (a) b) R 1 1 1 0 -1 0 0 0 0 0 3 4 0 0";
        assert_eq!(parse_task_stat(odd), Some(("a) b".to_owned(), 7)));
    }

    #[test]
    fn parses_machine() {
        let text = "cpu  10 1 5 1000 7 2 3 4 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n";
        assert_eq!(parse_machine(text), Some([10, 1, 5, 1000, 7, 2, 3, 4]));
        assert_eq!(parse_machine("intr 1 2 3"), None);
    }

    #[test]
    fn own_process_is_visible() {
        let a = snapshot();
        let mut x = 0u64;
        let t0 = std::time::Instant::now();
        while t0.elapsed() < Duration::from_millis(60) {
            x = x.wrapping_add(std::hint::black_box(1));
        }
        let b = snapshot();
        let u = a.until(&b);
        assert!(x > 0);
        assert!(u.other + u.server + u.load + u.sqlite > Duration::ZERO);
        assert!((0.0..=1.0).contains(&u.idle));
        assert!(!b.processes.is_empty());
    }
}
