//! Running rpm for the benchmark: setup commands with the executor's environment, and
//! the `rusage-of` wrapper that measures one child's wall time and peak RSS.

use std::io::{Read, Seek};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use patchctl_agent::exec::CHILD_ENV;
use patchctl_agent::inventory::rpm;

fn clean(cmd: &mut Command) -> &mut Command {
    cmd.env_clear().envs(CHILD_ENV.iter().copied())
}

/// Runs a setup command to completion; fails with its output when it fails.
pub(super) fn setup(cmd: &mut Command, what: &str) -> anyhow::Result<()> {
    let out = clean(cmd)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {what}"))?;
    if !out.status.success() {
        anyhow::bail!(
            "{what} failed ({}): {}{}",
            out.status,
            tail(&String::from_utf8_lossy(&out.stderr)),
            tail(&String::from_utf8_lossy(&out.stdout)),
        );
    }
    Ok(())
}

fn tail(s: &str) -> &str {
    let s = s.trim();
    let mut cut = s.len().saturating_sub(2000);
    while !s.is_char_boundary(cut) {
        cut += 1;
    }
    &s[cut..]
}

/// One measured child.
pub(crate) struct Measured {
    pub(crate) wall: Duration,
    pub(crate) maxrss_kib: u64,
    pub(crate) stdout: Vec<u8>,
}

/// The hidden `patchctl-bench rusage-of -- PROGRAM ARGS...`: runs the program with this
/// process's stdout and stderr, waits for it and prints `WALL_NS MAXRSS_KIB` as the last
/// line of stderr. A fresh process whose only child is the measured one, so
/// `getrusage(RUSAGE_CHILDREN)` is exactly that child's peak RSS — no unsafe code.
pub fn rusage_of(argv: &[String]) -> anyhow::Result<i32> {
    let (program, args) = argv.split_first().context("empty argument vector")?;
    let t0 = Instant::now();
    let status = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .status()
        .with_context(|| format!("cannot run {program}"))?;
    let wall = t0.elapsed();
    let ru = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)?;
    eprintln!("\n{} {}", wall.as_nanos(), ru.max_rss());
    Ok(status.code().unwrap_or(1))
}

/// Runs `argv` with the executor's environment under [`rusage_of`] and reads all its
/// output: the child's own wall time and peak RSS, and its stdout.
pub(crate) fn measure(argv: &[String]) -> anyhow::Result<Measured> {
    let me = std::env::current_exe().context("cannot find the bench binary")?;
    let mut errfile = tempfile::tempfile()?;
    let err_out = errfile.try_clone()?;
    let mut cmd = Command::new(&me);
    clean(&mut cmd)
        .arg("rusage-of")
        .arg("--")
        .args(argv)
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(err_out));
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot run {}", me.display()))?;
    let mut stdout = Vec::with_capacity(256 * 1024);
    let read = child
        .stdout
        .take()
        .context("no stdout pipe")?
        .read_to_end(&mut stdout);
    let status = child.wait()?;
    read.with_context(|| format!("cannot read the output of {}", argv.join(" ")))?;
    let mut err = String::new();
    errfile.rewind()?;
    let _ = errfile.read_to_string(&mut err);
    if !status.success() {
        anyhow::bail!("{} failed ({status}): {}", argv.join(" "), tail(&err));
    }
    let Some((wall, maxrss_kib)) = parse_measurement(&err) else {
        anyhow::bail!("no measurement from rusage-of: {}", tail(&err));
    };
    Ok(Measured {
        wall,
        maxrss_kib,
        stdout,
    })
}

/// The `WALL_NS MAXRSS_KIB` line [`rusage_of`] writes last on stderr.
fn parse_measurement(stderr: &str) -> Option<(Duration, u64)> {
    let last = stderr.lines().last()?;
    let mut f = last.split_whitespace().map(str::parse::<u64>);
    match (f.next(), f.next(), f.next()) {
        (Some(Ok(wall_ns)), Some(Ok(maxrss)), None) => {
            Some((Duration::from_nanos(wall_ns), maxrss))
        }
        _ => None,
    }
}

pub(super) fn lines(out: &[u8]) -> usize {
    out.split(|b| *b == b'\n').filter(|l| !l.is_empty()).count()
}

/// `rpm --root R -qa`.
pub(super) fn native_argv(root: &Path) -> Vec<String> {
    vec![
        rpm::RPM_PATH.to_owned(),
        "--root".to_owned(),
        root.display().to_string(),
        "-qa".to_owned(),
    ]
}

pub(super) fn count_installed(root: &Path) -> anyhow::Result<usize> {
    Ok(lines(&measure(&native_argv(root))?.stdout))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_a_child() {
        // The wrapper's own logic (the bench binary itself is not built for unit tests).
        assert_eq!(rusage_of(&["/bin/true".to_owned()]).unwrap(), 0);
        assert_eq!(rusage_of(&["/bin/false".to_owned()]).unwrap(), 1);
        assert!(rusage_of(&["/nonexistent/program".to_owned()]).is_err());
        let ru =
            nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN).unwrap();
        assert!(ru.max_rss() > 0, "the children's peak RSS is read");
        assert_eq!(
            parse_measurement("rpm: warning\n\n1500000 8123"),
            Some((Duration::from_micros(1500), 8123))
        );
        assert_eq!(parse_measurement("garbage"), None);
        assert_eq!(parse_measurement("1 2 3"), None);
    }
}
