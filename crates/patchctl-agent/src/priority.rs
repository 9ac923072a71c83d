//! CPU and IO priority of the agent's background work: scans and package-database
//! reads run at nice [`BACKGROUND_NICE`] and IO class best-effort, level
//! [`BACKGROUND_IO_LEVEL`] (the lowest best-effort level), so that a busy host's own
//! work goes first. Installs, repairs and the heartbeat stay at the agent's priority.
//!
//! Two ways in: a child started by the executor with [`Priority::Background`] lowers
//! itself between fork and exec ([`lower_in_child`], called from `exec.rs`'s
//! `pre_exec`), and the agent's own scan work runs on a short-lived thread that lowers
//! itself first ([`in_background`]). Nice and IO priority are per thread on Linux and
//! a thread cannot raise them again without `CAP_SYS_NICE`, so the agent never lowers
//! a thread it keeps: the lowered thread ends with the work.
//!
//! Why best-effort 7 and not the idle class: the idle class may wait without bound
//! while other IO runs, and a scan's children hold package-manager locks while they
//! read (`rpm -qa` the rpmdb's shared lock, `zypper` the zypp lock): an operator's own
//! `dnf install` would then wait behind a starved agent. Best-effort 7 yields to every
//! other best-effort request but is never starved. Likewise nice 10 and not
//! `SCHED_IDLE` for those children: a lock holder must keep moving under full CPU load.
//! The agent's own scan thread holds no lock anyone else waits for (it reads the
//! package database files without locking them and writes only its own state), so it
//! also runs under `SCHED_IDLE` ([`in_background`]): the scheduler's weight 3 against a
//! busy program's 1024 gives it about 0.3 % of a contended CPU (nice 10's weight 110
//! would give 9.7 %), and it still finishes, since CFS never starves an idle-class
//! task outright (issue 15's ≤ 2 % beside a CPU-bound load).
//!
//! This module holds the agent's only `unsafe` code besides the memory ceiling: raw
//! `setpriority`, `getpriority`, `ioprio_set` and `ioprio_get` system calls, which
//! take integers only and are async-signal-safe (plain system calls, no lock, no
//! allocation), as code between fork and exec must be.

use std::io;

/// The nice value of background work (the agent's own, if already higher, is kept).
pub const BACKGROUND_NICE: i32 = 10;

/// The IO priority level of background work within the best-effort class (0 highest,
/// 7 lowest).
pub const BACKGROUND_IO_LEVEL: u16 = 7;

/// `IOPRIO_CLASS_BE` of `linux/ioprio.h`.
pub const IOPRIO_CLASS_BE: u16 = 2;
/// `IOPRIO_CLASS_IDLE` of `linux/ioprio.h`.
pub const IOPRIO_CLASS_IDLE: u16 = 3;
const IOPRIO_CLASS_SHIFT: u16 = 13;
const IOPRIO_WHO_PROCESS: i32 = 1;
const PRIO_PROCESS: i32 = 0;

/// How a program or a piece of the agent's work competes for CPU and disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Priority {
    /// The agent's own priority: installs, repairs, heartbeats, everything an operator
    /// waits for.
    #[default]
    Normal,
    /// Scans: nice [`BACKGROUND_NICE`], IO best-effort level [`BACKGROUND_IO_LEVEL`].
    Background,
}

/// The IO priority value of class `class` and level `level` (`IOPRIO_PRIO_VALUE`).
pub const fn ioprio_value(class: u16, level: u16) -> u16 {
    (class << IOPRIO_CLASS_SHIFT) | level
}

/// The class of an IO priority value (`IOPRIO_PRIO_CLASS`); 0 is "none": derived from
/// the nice value.
pub const fn ioprio_class(value: u16) -> u16 {
    value >> IOPRIO_CLASS_SHIFT
}

/// The level of an IO priority value (`IOPRIO_PRIO_DATA`).
pub const fn ioprio_level(value: u16) -> u16 {
    value & ((1 << IOPRIO_CLASS_SHIFT) - 1)
}

/// The background IO priority value: best-effort, level 7.
pub const BACKGROUND_IOPRIO: u16 = ioprio_value(IOPRIO_CLASS_BE, BACKGROUND_IO_LEVEL);

/// Lowers the calling task (the child between fork and exec, or the calling thread)
/// to the background priority: nice `max(current, 10)`, IO best-effort 7 unless it is
/// already idle or lower. Failures are ignored (no capability is needed to lower one's
/// priority; a kernel without `ioprio_set` leaves IO as it was); the program still
/// runs. Async-signal-safe: system calls only.
#[allow(unsafe_code)]
fn lower_calling_task() {
    // SAFETY: raw system calls with integer arguments; `who` 0 is the calling task.
    // They touch no memory of this process.
    unsafe {
        // The raw getpriority returns 20 - nice (1..=40), never negative on success.
        let raw = nix::libc::syscall(nix::libc::SYS_getpriority, PRIO_PROCESS, 0);
        let current = if raw > 0 { 20 - raw as i32 } else { 0 };
        if current < BACKGROUND_NICE {
            nix::libc::syscall(nix::libc::SYS_setpriority, PRIO_PROCESS, 0, BACKGROUND_NICE);
        }
        let io = nix::libc::syscall(nix::libc::SYS_ioprio_get, IOPRIO_WHO_PROCESS, 0);
        let keep = io >= 0 && {
            let v = io as u16;
            ioprio_class(v) == IOPRIO_CLASS_IDLE
                || (ioprio_class(v) == IOPRIO_CLASS_BE && ioprio_level(v) >= BACKGROUND_IO_LEVEL)
        };
        if !keep {
            nix::libc::syscall(
                nix::libc::SYS_ioprio_set,
                IOPRIO_WHO_PROCESS,
                0,
                i32::from(BACKGROUND_IOPRIO),
            );
        }
    }
}

/// Puts the calling thread under `SCHED_IDLE` (failure ignored: the thread keeps its
/// lowered nice value).
#[allow(unsafe_code)]
fn idle_calling_thread() {
    let param = nix::libc::sched_param { sched_priority: 0 };
    // SAFETY: `pid` 0 is the calling thread; `param` is a valid, initialised struct that
    // outlives the call.
    unsafe {
        nix::libc::sched_setscheduler(0, nix::libc::SCHED_IDLE, &param);
    }
}

/// The scheduling policy of task `tid` (`SCHED_OTHER` 0, `SCHED_IDLE` 5, …).
#[allow(unsafe_code)]
pub fn sched_policy(tid: u32) -> io::Result<i32> {
    let who = i32::try_from(tid).map_err(io::Error::other)?;
    // SAFETY: a plain system call with an integer argument that reads a policy.
    let p = unsafe { nix::libc::sched_getscheduler(who) };
    if p < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(p)
}

/// Called in a child between fork and exec (the executor's `pre_exec`) for a program
/// run with [`Priority::Background`]. Always `Ok`: see [`lower_calling_task`].
pub fn lower_in_child() -> io::Result<()> {
    lower_calling_task();
    Ok(())
}

/// Runs `work` on a new thread lowered to the background priority and returns what it
/// returned; the calling thread waits, its own priority untouched. New threads inherit
/// the caller's CPU affinity. When no thread can be started, `work` runs here, at the
/// caller's priority (a scan at normal priority is better than no scan).
pub fn in_background<T, F>(work: F) -> T
where
    T: Send,
    F: FnOnce() -> T + Send,
{
    let mut work = Some(work);
    let out = std::thread::scope(|s| {
        let job = &mut work;
        let handle = std::thread::Builder::new()
            .name("patchctl-scan".into())
            .spawn_scoped(s, move || {
                lower_calling_task();
                idle_calling_thread();
                job.take().map(|w| w())
            });
        match handle {
            Ok(h) => match h.join() {
                Ok(out) => out,
                Err(panic) => std::panic::resume_unwind(panic),
            },
            Err(e) => {
                tracing::warn!(error = %e, "cannot start a background thread; scanning at normal priority");
                None
            }
        }
    });
    match (out, work) {
        (Some(out), _) => out,
        (None, Some(w)) => w(),
        (None, None) => unreachable!("the background thread took the work and returned it"),
    }
}

/// What the kernel says about one task's priority, read back for tests and the
/// benchmark: the nice value (field 19 of `/proc/<pid>/stat`) and the IO priority
/// value (`ioprio_get`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observed {
    /// The nice value, -20..=19.
    pub nice: i32,
    /// The IO priority value; class 0 ("none") means derived from the nice value.
    pub ioprio: u16,
}

/// Reads the priority of task `tid` (a process id, or a thread id of this process).
pub fn observe(tid: u32) -> io::Result<Observed> {
    let stat = std::fs::read_to_string(format!("/proc/{tid}/stat"))?;
    let nice = parse_stat_nice(&stat)
        .ok_or_else(|| io::Error::other(format!("cannot read the nice value of {tid}")))?;
    let ioprio = ioprio_of(tid)?;
    Ok(Observed { nice, ioprio })
}

/// The priority of the calling thread.
pub fn observe_current_thread() -> io::Result<Observed> {
    observe(nix::unistd::gettid().as_raw() as u32)
}

/// The nice value in a `/proc/<pid>/stat` line: the 19th field, the 17th after the
/// command name in parentheses (which may itself hold spaces and parentheses).
pub fn parse_stat_nice(stat: &str) -> Option<i32> {
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(16)?.parse().ok()
}

#[allow(unsafe_code)]
fn ioprio_of(tid: u32) -> io::Result<u16> {
    let who = i32::try_from(tid).map_err(io::Error::other)?;
    // SAFETY: a raw system call with integer arguments that reads a priority.
    let v = unsafe { nix::libc::syscall(nix::libc::SYS_ioprio_get, IOPRIO_WHO_PROCESS, who) };
    if v < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(v as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_nice_from_a_stat_line_with_a_tricky_name() {
        let line = "42 (a) b (c) S 1 42 42 0 -1 4194304 100 0 0 0 5 3 0 0 20 7 1 0 100 0 0";
        assert_eq!(parse_stat_nice(line), Some(7));
        let own = std::fs::read_to_string("/proc/self/stat").unwrap();
        assert!(parse_stat_nice(&own).is_some());
    }

    #[test]
    fn ioprio_values_match_the_kernel_header() {
        // IOPRIO_PRIO_VALUE(IOPRIO_CLASS_BE, 7) = (2 << 13) | 7.
        assert_eq!(BACKGROUND_IOPRIO, 16391);
        assert_eq!(ioprio_class(BACKGROUND_IOPRIO), IOPRIO_CLASS_BE);
        assert_eq!(ioprio_level(BACKGROUND_IOPRIO), 7);
    }

    /// The work runs on a lowered thread, measured there; the caller is untouched.
    #[test]
    fn background_work_runs_lowered_and_leaves_the_caller_alone() {
        let before = observe_current_thread().unwrap();
        let tid = || nix::unistd::gettid().as_raw() as u32;
        let (seen, policy) = in_background(|| {
            (
                observe_current_thread().unwrap(),
                sched_policy(tid()).unwrap(),
            )
        });
        assert_eq!(
            policy,
            nix::libc::SCHED_IDLE,
            "the scan thread is idle-class"
        );
        assert_eq!(sched_policy(tid()).unwrap(), nix::libc::SCHED_OTHER);
        assert_eq!(seen.nice, before.nice.max(BACKGROUND_NICE), "{seen:?}");
        assert_eq!(ioprio_class(seen.ioprio), IOPRIO_CLASS_BE, "{seen:?}");
        assert_eq!(ioprio_level(seen.ioprio), BACKGROUND_IO_LEVEL, "{seen:?}");
        assert_eq!(observe_current_thread().unwrap(), before);
    }
}
