//! The host's side of `hostload`: a CPU-bound and an IO-bound load that count their
//! work, and a scanner that repeats the agent's scan beside them. Every thread is
//! pinned to one CPU with `sched_setaffinity`, the scanner to the same one (the worst
//! case: the scan cannot move to an idle core), and the scan's own lowered threads
//! inherit that affinity.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use nix::sched::{CpuSet, sched_setaffinity};
use nix::unistd::Pid;

/// Pins the calling thread to `cpu`.
pub fn pin_to(cpu: usize) -> anyhow::Result<()> {
    let mut set = CpuSet::new();
    set.set(cpu).with_context(|| format!("CPU {cpu}"))?;
    sched_setaffinity(Pid::from_raw(0), &set).with_context(|| format!("cannot pin to CPU {cpu}"))
}

/// Runs `work` on a new thread pinned to `cpu` and returns its result.
fn pinned<T: Send + 'static>(
    cpu: usize,
    work: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    std::thread::spawn(move || {
        pin_to(cpu)?;
        work()
    })
    .join()
    .map_err(|_| anyhow::anyhow!("a load thread panicked"))?
}

/// The CPU-bound load: a xorshift loop on `cpu` for `secs`; iterations per second.
pub fn cpu_load(cpu: usize, secs: Duration) -> anyhow::Result<f64> {
    pinned(cpu, move || {
        const BATCH: u64 = 100_000;
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut batches = 0u64;
        let start = Instant::now();
        while start.elapsed() < secs {
            for _ in 0..BATCH {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
            }
            batches += 1;
        }
        std::hint::black_box(x);
        Ok((batches * BATCH) as f64 / start.elapsed().as_secs_f64())
    })
}

/// Size of the IO load's file and of each of its writes and reads.
const IO_FILE: u64 = 16 * 1024 * 1024;
const IO_BLOCK: usize = 4096;

/// The IO-bound load on `cpu` for `secs`, in a file under `dir`: each operation writes
/// a 4 KiB block, `fdatasync`s it, and reads back another block; operations per second.
pub fn io_load(cpu: usize, dir: &Path, secs: Duration) -> anyhow::Result<f64> {
    let path = dir.join("hostload-io.bin");
    pinned(cpu, move || {
        let file = File::options()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        if file.metadata()?.len() < IO_FILE {
            let block = vec![0x5au8; 1024 * 1024];
            let mut w = &file;
            for _ in 0..IO_FILE / block.len() as u64 {
                w.write_all(&block)?;
            }
            file.sync_all()?;
        }
        let blocks = IO_FILE / IO_BLOCK as u64;
        let mut buf = vec![0u8; IO_BLOCK];
        let mut ops = 0u64;
        let start = Instant::now();
        while start.elapsed() < secs {
            let at = (ops * 7919 % blocks) * IO_BLOCK as u64;
            buf[..8].copy_from_slice(&ops.to_le_bytes());
            file.write_all_at(&buf, at)?;
            file.sync_data()?;
            let back = ((ops * 104_729 + 13) % blocks) * IO_BLOCK as u64;
            file.read_exact_at(&mut buf, back)?;
            ops += 1;
        }
        Ok(ops as f64 / start.elapsed().as_secs_f64())
    })
}

/// The agent's scan repeated back to back on one CPU until stopped.
pub struct Scanner {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<anyhow::Result<u64>>,
}

impl Scanner {
    /// Starts scanning `status` (state in `state_dir`) on `cpu` (any CPU for `None`).
    pub fn start(cpu: Option<usize>, status: PathBuf, state_dir: PathBuf) -> Scanner {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            if let Some(cpu) = cpu {
                pin_to(cpu)?;
            }
            let mut scans = 0;
            while !flag.load(Ordering::Relaxed) {
                super::scan_once(&status, &state_dir)?;
                scans += 1;
            }
            Ok(scans)
        });
        Scanner { stop, handle }
    }

    /// Stops after the scan in progress; the number of scans made.
    pub fn stop(self) -> anyhow::Result<u64> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle
            .join()
            .map_err(|_| anyhow::anyhow!("the scanner panicked"))?
    }
}

/// The filesystem type `path` is on (the longest mount point of `/proc/self/mountinfo`
/// that holds it).
pub fn filesystem_of(path: &Path) -> String {
    let Ok(text) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return "unknown".into();
    };
    let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let mut best: Option<(usize, String)> = None;
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let Some(dash) = fields.iter().position(|f| *f == "-") else {
            continue;
        };
        let (Some(mount), Some(fs), Some(src)) =
            (fields.get(4), fields.get(dash + 1), fields.get(dash + 2))
        else {
            continue;
        };
        if path.starts_with(mount) && best.as_ref().is_none_or(|(l, _)| mount.len() >= *l) {
            best = Some((mount.len(), format!("{fs} ({src}) at {mount}")));
        }
    }
    best.map(|(_, s)| s).unwrap_or_else(|| "unknown".into())
}

/// The median of `v` (0 for none).
pub fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(&[]), 0.0);
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
    }

    #[test]
    fn loads_count_work() {
        let dir = tempfile::tempdir().unwrap();
        assert!(cpu_load(0, Duration::from_millis(100)).unwrap() > 0.0);
        assert!(io_load(0, dir.path(), Duration::from_millis(100)).unwrap() > 0.0);
        assert_ne!(filesystem_of(dir.path()), "unknown");
    }
}
