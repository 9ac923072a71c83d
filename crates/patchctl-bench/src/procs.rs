//! Child processes and `/proc`: a guard that kills its child when dropped (so every
//! error path cleans up), and readers of the memory counters in `/proc/PID/status`.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};

use anyhow::Context;

/// A running child process, killed (SIGKILL) and reaped when the guard is dropped.
pub struct ChildGuard {
    child: Child,
    name: String,
    log: PathBuf,
}

impl ChildGuard {
    /// Starts `cmd` with stdin closed and stdout and stderr appended to `log`.
    pub fn spawn(mut cmd: Command, name: &str, log: &Path) -> anyhow::Result<ChildGuard> {
        let out = File::options()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("cannot create the log file {}", log.display()))?;
        let err = out.try_clone()?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .with_context(|| format!("cannot start {name} ({:?})", cmd.get_program()))?;
        Ok(ChildGuard {
            child,
            name: name.to_owned(),
            log: log.to_owned(),
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The exit status if the child has ended.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Fails with the end of the child's log when it has exited.
    pub fn ensure_running(&mut self) -> anyhow::Result<()> {
        match self.exited() {
            None => Ok(()),
            Some(status) => anyhow::bail!(
                "{} exited early ({status}); end of its output:\n{}",
                self.name,
                self.log_tail(20)
            ),
        }
    }

    /// The last `lines` lines of the child's output.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// The child's output so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if self.exited().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Memory counters of a process, in KiB, from `/proc/PID/status`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Mem {
    /// Resident set size now (`VmRSS`).
    pub rss_kib: u64,
    /// Peak resident set size since the process started (`VmHWM`).
    pub hwm_kib: u64,
    /// Anonymous resident memory (`RssAnon`): heap and stacks, not shared.
    pub anon_kib: u64,
    /// File-backed resident memory (`RssFile`): mostly the binary's own pages.
    pub file_kib: u64,
}

/// Reads the memory counters of process `pid`.
pub fn mem(pid: u32) -> anyhow::Result<Mem> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    Ok(parse_status(&text))
}

/// Parses the `kB` fields of a `/proc/PID/status` text that [`Mem`] holds.
pub fn parse_status(text: &str) -> Mem {
    let mut m = Mem::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let kib = value
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse::<u64>()
            .ok();
        let Some(kib) = kib else { continue };
        match key {
            "VmRSS" => m.rss_kib = kib,
            "VmHWM" => m.hwm_kib = kib,
            "RssAnon" => m.anon_kib = kib,
            "RssFile" => m.file_kib = kib,
            _ => {}
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_status() {
        let text = "Name:\tx\nVmHWM:\t    9000 kB\nVmRSS:\t    7000 kB\nRssAnon:\t    2000 kB\nRssFile:\t    5000 kB\nThreads:\t2\n";
        let m = parse_status(text);
        assert_eq!(
            m,
            Mem {
                rss_kib: 7000,
                hwm_kib: 9000,
                anon_kib: 2000,
                file_kib: 5000
            }
        );
    }

    #[test]
    fn reads_own_status() {
        let m = mem(std::process::id()).unwrap();
        assert!(m.rss_kib > 0 && m.hwm_kib >= m.rss_kib);
    }

    #[test]
    fn guard_kills_on_drop() {
        let tmp = tempfile::tempdir().unwrap();
        let mut cmd = Command::new("/bin/sleep");
        cmd.arg("30");
        let guard = ChildGuard::spawn(cmd, "sleep", &tmp.path().join("log")).unwrap();
        let pid = guard.pid();
        assert!(Path::new(&format!("/proc/{pid}")).exists());
        drop(guard);
        // Reaped: the pid is gone (or reused by something that is not our sleep).
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        assert!(!cmdline.starts_with(b"/bin/sleep"));
    }
}
