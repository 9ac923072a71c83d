//! The agent's rpm inventory against `rpm -qa`, on a real rpm database of N packages.
//!
//! The database: one spec file with N `%package -n pcb-NAME` subpackages (noarch, no
//! files, each with its own `Version:`, `Release:` and on some an `Epoch:`), built with
//! one `rpmbuild -bb`, installed with one `rpm --root R -i --justdb --nodeps
//! --noscripts` into a private root R, checked (`rpm --root R -qa` lists exactly N) and
//! kept under [`CACHE_DIR`]`/rpmdb-N` so that later runs reuse it.
//!
//! Measured on the same machine in the same run, alternately, after one untimed run of
//! each:
//! - the native tool: `rpm --root R -qa`, its wall time (spawn to reaped, all output
//!   read) and its peak RSS from `getrusage(RUSAGE_CHILDREN)` in a fresh wrapper process;
//! - the agent, exactly as a scan does it:
//!   `DnfBackend::new(DnfOptions { installroot: Some(R), .. }).inventory(&ProcessExecutor)`
//!   on a current-thread tokio runtime (as the agent's), i.e. `rpm --root=R -qa
//!   --queryformat …` through the executor, then `parse_qa`; its wall time;
//! - the agent's rpm child alone: the same argument vector (`rpm::query_all_argv`) with
//!   the executor's environment, spawned here so that its peak RSS can be read (the
//!   executor reaps its children itself);
//! - the parse alone: `patchctl_agent::inventory::rpm::parse_qa` on that child's output.
//!
//! Every rpm runs with the executor's environment (`PATH` and `LC_ALL=C` only): Debian's
//! rpm derives its database path from the home directory, so all of them must agree.

use std::io::{Read, Seek};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use patchctl_agent::exec::{CHILD_ENV, ProcessExecutor};
use patchctl_agent::inventory::rpm;
use patchctl_agent::pkgmgr::Backend;
use patchctl_agent::pkgmgr::dnf::{DnfBackend, DnfOptions};

use crate::stats::{Summary, mib, ms};

/// Where built rpm databases are kept between runs (outside the repository).
pub const CACHE_DIR: &str = "/var/cache/patchctl-ci";
/// The program that builds the packages.
pub const RPMBUILD: &str = "/usr/bin/rpmbuild";
/// The target for peak RSS during an inventory.
pub const TARGET_RSS_KIB: u64 = 32 * 1024;
/// The file inside a built root that records how long its build took.
const BUILD_NOTE: &str = "patchctl-bench-build.txt";

/// The result of a comparison.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Packages the database was built with.
    pub expected: usize,
    /// Timed runs of each.
    pub runs: usize,
    /// The rpm root.
    pub root: PathBuf,
    /// How the database came to be.
    pub db: DbOrigin,
    /// `rpm --root R -qa`.
    pub native: Summary,
    /// Peak RSS of each `rpm -qa`, KiB.
    pub native_rss: Vec<u64>,
    /// Bytes `rpm -qa` printed.
    pub native_bytes: usize,
    /// Lines `rpm -qa` printed.
    pub native_packages: usize,
    /// `DnfBackend::inventory` through the `ProcessExecutor`.
    pub agent: Summary,
    /// Packages the agent returned.
    pub agent_packages: usize,
    /// The agent's rpm child alone, spawned here.
    pub agent_rpm: Summary,
    /// Peak RSS of each of those children, KiB.
    pub agent_rpm_rss: Vec<u64>,
    /// Bytes the agent's query printed.
    pub agent_bytes: usize,
    /// `parse_qa` on that output (parse + free).
    pub parse: Summary,
    /// Lines `parse_qa` skipped.
    pub skipped: usize,
    /// `/proc/loadavg` (1, 5, 15 min) when the timed runs started.
    pub load: String,
}

/// Where the rpm database came from.
#[derive(Debug, Clone)]
pub enum DbOrigin {
    /// Built in this run: rpmbuild time, rpm -i time.
    Built(Duration, Duration),
    /// Reused from the cache; the note its build left, if any.
    Cached(Option<String>),
}

impl Outcome {
    /// Median of the agent over median of `rpm -qa` (target ≤ 1).
    pub fn ratio(&self) -> f64 {
        self.agent.p50.as_secs_f64() / self.native.p50.as_secs_f64().max(1e-12)
    }

    /// True when both counted the same packages, all of them read.
    pub fn counts_match(&self) -> bool {
        self.agent_packages == self.native_packages && self.skipped == 0
    }

    /// The largest peak RSS of the agent's rpm child, KiB.
    pub fn agent_peak_kib(&self) -> u64 {
        self.agent_rpm_rss.iter().copied().max().unwrap_or(0)
    }

    /// The largest peak RSS of `rpm -qa`, KiB.
    pub fn native_peak_kib(&self) -> u64 {
        self.native_rss.iter().copied().max().unwrap_or(0)
    }
}

// ---------------------------------------------------------------------------------
// The packages.
// ---------------------------------------------------------------------------------

const PREFIXES: &[&str] = &[
    "", "lib", "python3-", "perl-", "golang-", "rust-", "nodejs-", "texlive-", "ghc-", "php-",
];
const WORDS: &[&str] = &[
    "ssl",
    "xml2",
    "curl",
    "zstd",
    "yaml",
    "json-c",
    "requests",
    "urllib3",
    "six",
    "idna",
    "glib2",
    "gtk3",
    "pango",
    "cairo",
    "harfbuzz",
    "freetype",
    "fontconfig",
    "pcre2",
    "sqlite",
    "krb5",
    "gnutls",
    "nettle",
    "p11-kit",
    "expat",
    "ncurses",
    "readline",
    "bzip2",
    "xz",
    "lz4",
    "acl",
    "attr",
    "audit",
    "selinux",
    "sepol",
    "cap-ng",
    "seccomp",
    "systemd",
    "dbus",
    "polkit",
    "stdc++",
];
const SUFFIXES: &[&str] = &["", "-devel", "-libs", "-doc", "-common", "-tools"];
const LICENSES: &[&str] = &[
    "MIT",
    "GPL-2.0-or-later",
    "LGPL-2.1-or-later",
    "BSD-3-Clause",
    "Apache-2.0",
];

/// One generated package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pkg {
    /// `pcb-…`.
    pub name: String,
    /// Epoch, when not 0.
    pub epoch: Option<u32>,
    /// Version.
    pub version: String,
    /// Release.
    pub release: String,
    /// License.
    pub license: &'static str,
}

fn mix(mut x: u64) -> u64 {
    // splitmix64: deterministic, well spread.
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Package `i` of the benchmark database: unique names (`pcb-libcurl-devel`,
/// `pcb-python3-yaml`, …) and realistic versions (`2.3.1`, `20240315`, `1.0~rc2`,
/// `0.4^git20240101.abc1234`, `1.1.1k`), releases (`4.el9`, `3.el9_4`, `0.2.beta1.fc40`,
/// module releases) and an epoch on about one in seven.
pub fn package(i: usize) -> Pkg {
    let (p, w, s) = (PREFIXES.len(), WORDS.len(), SUFFIXES.len());
    let mut name = format!(
        "pcb-{}{}{}",
        PREFIXES[i % p],
        WORDS[(i / p) % w],
        SUFFIXES[(i / (p * w)) % s]
    );
    let round = i / (p * w * s);
    if round > 0 {
        name.push_str(&format!("-r{round}"));
    }
    let h = mix(i as u64);
    let d = |shift: u32, m: u64| (h >> shift) % m;
    let (a, b, c) = (d(8, 12), d(12, 30), d(18, 25));
    let date = format!(
        "20{:02}{:02}{:02}",
        18 + d(24, 8),
        1 + d(28, 12),
        1 + d(32, 28)
    );
    let version = match h % 8 {
        0 => format!("{a}.{b}.{c}"),
        1 => format!("{a}.{b}"),
        2 => date.clone(),
        3 => format!("{a}.{b}.{c}~rc{}", 1 + d(36, 4)),
        4 => format!("{a}.{b}^git{date}.{:07x}", d(36, 0x0fff_ffff)),
        5 => format!("{a}.{b}.{c}.{}", d(36, 10)),
        6 => format!("{a}.{b}.{c}{}", char::from(b'a' + d(36, 26) as u8)),
        _ => format!("{}", 1 + a),
    };
    let n = 1 + d(40, 20);
    let release = match (h >> 44) % 5 {
        0 => format!("{n}.el9"),
        1 => format!("{n}.el9_{}", d(48, 5)),
        2 => format!("{n}.fc40"),
        3 => format!("0.{n}.beta{}.el9", 1 + d(48, 3)),
        _ => format!(
            "{n}.module+el9.{}.0+{}+{:08x}",
            d(48, 5),
            1000 + d(52, 9000),
            mix(h) as u32
        ),
    };
    let epoch = (h % 7 == 0).then(|| 1 + d(56, 3) as u32);
    Pkg {
        name,
        epoch,
        version,
        release,
        license: LICENSES[d(60, LICENSES.len() as u64) as usize],
    }
}

/// The one spec file with `n` subpackages.
pub fn spec(n: usize) -> String {
    let mut s = String::with_capacity(200 * n + 300);
    s.push_str(
        "Name: pcb-bench\nVersion: 1\nRelease: 1\nSummary: PatchCTL benchmark packages\n\
         License: Apache-2.0\nBuildArch: noarch\n%description\nPatchCTL benchmark packages.\n",
    );
    for i in 0..n {
        let p = package(i);
        s.push_str(&format!(
            "%package -n {name}\nVersion: {v}\nRelease: {r}\n{epoch}Summary: PatchCTL benchmark package {name}\nLicense: {l}\n%description -n {name}\nPatchCTL benchmark package {i}.\n",
            name = p.name,
            v = p.version,
            r = p.release,
            epoch = p.epoch.map(|e| format!("Epoch: {e}\n")).unwrap_or_default(),
            l = p.license,
        ));
    }
    for i in 0..n {
        s.push_str(&format!("%files -n {}\n", package(i).name));
    }
    s
}

// ---------------------------------------------------------------------------------
// Running rpm.
// ---------------------------------------------------------------------------------

/// `cmd` with the environment the agent's executor gives its children.
fn clean(cmd: &mut Command) -> &mut Command {
    cmd.env_clear().envs(CHILD_ENV.iter().copied())
}

/// Runs a setup command to completion; fails with its output when it fails.
fn setup(cmd: &mut Command, what: &str) -> anyhow::Result<()> {
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

fn lines(out: &[u8]) -> usize {
    out.split(|b| *b == b'\n').filter(|l| !l.is_empty()).count()
}

/// `rpm --root R -qa`.
fn native_argv(root: &Path) -> Vec<String> {
    vec![
        rpm::RPM_PATH.to_owned(),
        "--root".to_owned(),
        root.display().to_string(),
        "-qa".to_owned(),
    ]
}

fn count_installed(root: &Path) -> anyhow::Result<usize> {
    Ok(lines(&measure(&native_argv(root))?.stdout))
}

// ---------------------------------------------------------------------------------
// The database.
// ---------------------------------------------------------------------------------

/// The cached root for `n` packages.
pub fn cache_root(n: usize) -> PathBuf {
    Path::new(CACHE_DIR).join(format!("rpmdb-{n}"))
}

/// Builds a root with `n` packages under [`CACHE_DIR`] and moves it to
/// [`cache_root`], replacing what was there. Returns (rpmbuild time, rpm -i time).
pub fn build(n: usize) -> anyhow::Result<(Duration, Duration)> {
    for tool in [RPMBUILD, rpm::RPM_PATH] {
        if !Path::new(tool).exists() {
            anyhow::bail!("{tool} is missing (Debian: apt-get install rpm)");
        }
    }
    std::fs::create_dir_all(CACHE_DIR).with_context(|| {
        format!("cannot create {CACHE_DIR} (the rpm benchmark runs as root: it installs into a private rpm root)")
    })?;
    let staging = tempfile::Builder::new()
        .prefix(&format!(".rpmdb-{n}-build-"))
        .tempdir_in(CACHE_DIR)?;
    let t = staging.path();
    let spec_file = t.join("pcb.spec");
    std::fs::write(&spec_file, spec(n))?;
    let top = t.join("top");
    let t0 = Instant::now();
    setup(
        Command::new(RPMBUILD)
            .arg("--quiet")
            .args(["--define", &format!("_topdir {}", top.display())])
            .args(["--define", "_build_id_links none"])
            .args(["--define", "debug_package %{nil}"])
            .args(["--define", "__os_install_post %{nil}"])
            // Empty payloads: no compression to spend time on.
            .args(["--define", "_binary_payload w0.ufdio"])
            .arg("-bb")
            .arg(&spec_file),
        "rpmbuild",
    )?;
    let rpmbuild_time = t0.elapsed();
    let rpms_dir = top.join("RPMS/noarch");
    let mut rpms: Vec<String> = std::fs::read_dir(&rpms_dir)
        .with_context(|| format!("rpmbuild left no {}", rpms_dir.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|f| f.ends_with(".rpm"))
        .collect();
    rpms.sort();
    if rpms.len() != n {
        anyhow::bail!("rpmbuild made {} packages, not {n}", rpms.len());
    }
    let root = t.join("root");
    std::fs::create_dir_all(&root)?;
    let t1 = Instant::now();
    setup(
        Command::new(rpm::RPM_PATH)
            .arg("--root")
            .arg(&root)
            .arg("--initdb"),
        "rpm --initdb",
    )?;
    // Relative names (run in the RPMS directory) keep the command line short.
    setup(
        Command::new(rpm::RPM_PATH)
            .current_dir(&rpms_dir)
            .arg("--root")
            .arg(&root)
            .args([
                "-i",
                "--justdb",
                "--nodeps",
                "--noscripts",
                "--notriggers",
                "--nodigest",
                "--nosignature",
            ])
            .args(&rpms),
        "rpm -i",
    )?;
    let install_time = t1.elapsed();
    let counted = count_installed(&root)?;
    if counted != n {
        anyhow::bail!(
            "rpm --root {} -qa lists {counted} packages after installing {n}",
            root.display()
        );
    }
    std::fs::write(
        root.join(BUILD_NOTE),
        format!(
            "built {} with {n} packages: rpmbuild {:.1} s, rpm -i {:.1} s\n",
            chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
            rpmbuild_time.as_secs_f64(),
            install_time.as_secs_f64()
        ),
    )?;
    let dest = cache_root(n);
    if dest.exists() {
        std::fs::remove_dir_all(&dest)
            .with_context(|| format!("cannot remove the stale {}", dest.display()))?;
    }
    std::fs::rename(&root, &dest)
        .with_context(|| format!("cannot move the new root to {}", dest.display()))?;
    Ok((rpmbuild_time, install_time))
}

/// The cached root for `n` packages, built when missing or when it does not list
/// exactly `n` packages.
pub fn ensure_db(n: usize) -> anyhow::Result<(PathBuf, DbOrigin)> {
    let root = cache_root(n);
    if root.is_dir() {
        match count_installed(&root) {
            Ok(c) if c == n => {
                let note = std::fs::read_to_string(root.join(BUILD_NOTE))
                    .ok()
                    .map(|s| s.trim().to_owned());
                return Ok((root, DbOrigin::Cached(note)));
            }
            Ok(c) => eprintln!(
                "rpm inventory: {} lists {c} packages, not {n}: rebuilding",
                root.display()
            ),
            Err(e) => eprintln!(
                "rpm inventory: {} is unusable ({e:#}): rebuilding",
                root.display()
            ),
        }
    }
    eprintln!("rpm inventory: building an rpm database of {n} packages ...");
    let (b, i) = build(n)?;
    eprintln!(
        "rpm inventory: built in {:.1} s (rpmbuild {:.1} s, rpm -i {:.1} s)",
        (b + i).as_secs_f64(),
        b.as_secs_f64(),
        i.as_secs_f64()
    );
    Ok((root, DbOrigin::Built(b, i)))
}

// ---------------------------------------------------------------------------------
// The measurement.
// ---------------------------------------------------------------------------------

struct Agent {
    rt: tokio::runtime::Runtime,
    backend: DnfBackend,
    exec: ProcessExecutor,
}

impl Agent {
    /// One inventory exactly as the agent runs it: wall time (including freeing the
    /// result) and the package count.
    fn inventory(&self) -> anyhow::Result<(Duration, usize)> {
        let t0 = Instant::now();
        let packages = self
            .rt
            .block_on(self.backend.inventory(&self.exec))
            .map_err(|e| anyhow::anyhow!("the agent's rpm inventory failed: {e}"))?;
        let n = packages.len();
        drop(packages);
        Ok((t0.elapsed(), n))
    }
}

fn time_parse(text: &str) -> (Duration, usize, usize) {
    let t0 = Instant::now();
    let parsed = rpm::parse_qa(text);
    let (n, skipped) = (parsed.packages.len(), parsed.skipped.len());
    drop(parsed);
    (t0.elapsed(), n, skipped)
}

fn same(what: &str, first: usize, now: usize) -> anyhow::Result<()> {
    if first != now {
        anyhow::bail!("{what} counted {first} packages, then {now}: the database changed");
    }
    Ok(())
}

/// Builds or reuses the database of `packages` packages, then times `runs` runs of each,
/// alternating, after one untimed run of each.
pub fn run(packages: usize, runs: u32) -> anyhow::Result<Outcome> {
    let n = packages.max(1);
    let runs = runs.max(1) as usize;
    if !Path::new(rpm::RPM_PATH).exists() {
        anyhow::bail!(
            "{} is missing: the rpm benchmark needs rpm and rpmbuild (Debian: apt-get install rpm)",
            rpm::RPM_PATH
        );
    }
    let (root, db) = ensure_db(n)?;
    let agent = Agent {
        // The agent's own runtime is a current-thread one.
        rt: tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?,
        backend: DnfBackend::new(DnfOptions {
            installroot: Some(root.clone()),
            ..DnfOptions::default()
        }),
        exec: ProcessExecutor::new(),
    };
    let native = native_argv(&root);
    let agent_argv = rpm::query_all_argv(&root);

    // Untimed: warm the page cache, take the counts and the output to parse.
    let first = measure(&native)?;
    let native_packages = lines(&first.stdout);
    let native_bytes = first.stdout.len();
    let (_, agent_packages) = agent.inventory()?;
    let captured = measure(&agent_argv)?;
    let agent_bytes = captured.stdout.len();
    let agent_lines = lines(&captured.stdout);
    let text = String::from_utf8_lossy(&captured.stdout).into_owned();
    let (_, parsed, skipped) = time_parse(&text);

    let load = std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into());
    let mut t_native = Vec::with_capacity(runs);
    let mut rss_native = Vec::with_capacity(runs);
    let mut t_agent = Vec::with_capacity(runs);
    let mut t_child = Vec::with_capacity(runs);
    let mut rss_child = Vec::with_capacity(runs);
    let mut t_parse = Vec::with_capacity(runs);
    for i in 0..runs {
        let mut one_native = || -> anyhow::Result<()> {
            let m = measure(&native)?;
            same("rpm -qa", native_packages, lines(&m.stdout))?;
            t_native.push(m.wall);
            rss_native.push(m.maxrss_kib);
            Ok(())
        };
        let mut one_agent = || -> anyhow::Result<()> {
            let (d, c) = agent.inventory()?;
            same("the agent", agent_packages, c)?;
            t_agent.push(d);
            let m = measure(&agent_argv)?;
            same("the agent's rpm query", agent_lines, lines(&m.stdout))?;
            t_child.push(m.wall);
            rss_child.push(m.maxrss_kib);
            Ok(())
        };
        // Alternate which goes first, so neither always follows the other.
        if i % 2 == 0 {
            one_native()?;
            one_agent()?;
        } else {
            one_agent()?;
            one_native()?;
        }
        let (d, c, _) = time_parse(&text);
        same("parse_qa", parsed, c)?;
        t_parse.push(d);
    }
    Ok(Outcome {
        expected: n,
        runs,
        root,
        db,
        native: Summary::of(t_native).context("no rpm -qa timing")?,
        native_rss: rss_native,
        native_bytes,
        native_packages,
        agent: Summary::of(t_agent).context("no agent timing")?,
        agent_packages,
        agent_rpm: Summary::of(t_child).context("no agent rpm timing")?,
        agent_rpm_rss: rss_child,
        agent_bytes,
        parse: Summary::of(t_parse).context("no parse timing")?,
        skipped,
        load,
    })
}

fn median_kib(v: &[u64]) -> u64 {
    let mut v = v.to_vec();
    v.sort_unstable();
    v.get(v.len().saturating_sub(1) / 2).copied().unwrap_or(0)
}

fn kib(n: usize) -> String {
    format!("{:.0} KiB", n as f64 / 1024.0)
}

/// The Markdown report.
pub fn markdown(o: &Outcome) -> String {
    let ratio = o.ratio();
    let min_ratio = o.agent.min.as_secs_f64() / o.native.min.as_secs_f64().max(1e-12);
    let child_ratio = o.agent_rpm.p50.as_secs_f64() / o.native.p50.as_secs_f64().max(1e-12);
    let parse_share = o.parse.p50.as_secs_f64() / o.agent.p50.as_secs_f64().max(1e-12);
    let root = o.root.display();
    let mut s = String::new();
    s.push_str(&format!(
        "### rpm inventory\n\n{} packages in a private rpm database (`{root}`), {} timed runs \
         each, alternating, after one untimed run of each (page cache warm). rpm = spawning \
         `rpm --root R -qa` and reading all its output; agent = \
         `DnfBackend::new(DnfOptions {{ installroot: Some(R), .. }}).inventory(&ProcessExecutor::new())` \
         on a current-thread runtime, exactly what a scan runs (`rpm --root=R -qa --queryformat …` \
         through the executor, then `parse_qa`). Peak RSS is `ru_maxrss` (getrusage of a wrapper whose only child is the \
         rpm child; the agent's rpm child is measured by spawning its exact argument vector \
         (`rpm::query_all_argv`) with the executor's environment, since the executor reaps \
         its children itself.\n\n",
        o.expected, o.runs
    ));
    s.push_str(
        "| | median ms | p90 ms | min ms | max ms | peak RSS (median / max) | packages |\n\
         |---|---:|---:|---:|---:|---:|---:|\n",
    );
    s.push_str(&format!(
        "| rpm -qa (native) | {} | {} | {} | {} | {} / {} | {} |\n",
        ms(o.native.p50),
        ms(o.native.p90),
        ms(o.native.min),
        ms(o.native.max),
        mib(median_kib(&o.native_rss)),
        mib(o.native_peak_kib()),
        o.native_packages
    ));
    s.push_str(&format!(
        "| agent (DnfBackend::inventory) | {} | {} | {} | {} | {} / {} (its rpm child) | {} |\n",
        ms(o.agent.p50),
        ms(o.agent.p90),
        ms(o.agent.min),
        ms(o.agent.max),
        mib(median_kib(&o.agent_rpm_rss)),
        mib(o.agent_peak_kib()),
        o.agent_packages
    ));
    s.push_str(&format!(
        "| – of which the rpm query alone (`-qa --queryformat`) | {} | {} | {} | {} | {} / {} | {} |\n",
        ms(o.agent_rpm.p50),
        ms(o.agent_rpm.p90),
        ms(o.agent_rpm.min),
        ms(o.agent_rpm.max),
        mib(median_kib(&o.agent_rpm_rss)),
        mib(o.agent_peak_kib()),
        o.agent_packages + o.skipped
    ));
    s.push_str(&format!(
        "| – of which `parse_qa` in-process ({}) | {} | {} | {} | {} | | {} |\n\n",
        kib(o.agent_bytes),
        ms(o.parse.p50),
        ms(o.parse.p90),
        ms(o.parse.min),
        ms(o.parse.max),
        o.agent_packages
    ));
    s.push_str(&format!(
        "- Ratio agent / rpm -qa: {ratio:.2}× of the medians, {min_ratio:.2}× of the fastest \
         runs — target ≤ 1× (medians): {}. The agent's inventory *is* an `rpm -qa` (with a \
         query format: {child_ratio:.2}× the plain one, {} of output instead of {}) plus \
         spawning it through the executor and parsing its output, so it cannot be faster \
         than `rpm -qa` by construction{}; the parse is {} ms median ({:.1} % of the \
         agent's time). Load average at the start: {}.\n",
        if ratio <= 1.0 { "met" } else { "MISSED" },
        kib(o.agent_bytes),
        kib(o.native_bytes),
        if ratio < 1.0 || min_ratio < 1.0 {
            ": a ratio below 1 here is noise (other load on the machine), not a lead"
        } else {
            ""
        },
        ms(o.parse.p50),
        parse_share * 100.0,
        o.load
    ));
    let peak = o.agent_peak_kib();
    s.push_str(&format!(
        "- Peak RSS of the agent's rpm child: {} (rpm -qa: {}) — target ≤ 32 MiB: {}. The \
         agent process itself additionally holds the captured output ({}) and the parsed \
         list while it parses; its own RSS during a scan is measured by the agent footprint \
         benchmark.\n",
        mib(peak),
        mib(o.native_peak_kib()),
        if peak <= TARGET_RSS_KIB {
            "met"
        } else {
            "MISSED"
        },
        kib(o.agent_bytes)
    ));
    if o.counts_match() {
        s.push_str(&format!(
            "- Package counts agree: {} each ({} built).\n",
            o.native_packages, o.expected
        ));
    } else {
        s.push_str(&format!(
            "- Package counts DIFFER: agent {}, rpm -qa {} ({} line(s) the agent skipped, {} built).\n",
            o.agent_packages, o.native_packages, o.skipped, o.expected
        ));
    }
    match &o.db {
        DbOrigin::Built(b, i) => s.push_str(&format!(
            "- The database was built in this run in {:.1} s (one rpmbuild of {} subpackages: {:.1} s; \
             rpm --initdb and one rpm -i --justdb: {:.1} s) and is cached for later runs.\n",
            (*b + *i).as_secs_f64(),
            o.expected,
            b.as_secs_f64(),
            i.as_secs_f64()
        )),
        DbOrigin::Cached(note) => s.push_str(&format!(
            "- The database was reused from the cache ({}).\n",
            note.as_deref().unwrap_or("no build note")
        )),
    }
    s
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn names_are_unique_and_versions_well_formed() {
        let n = 5000;
        let mut names = HashSet::new();
        let mut epochs = 0;
        for i in 0..n {
            let p = package(i);
            assert!(names.insert(p.name.clone()), "duplicate {}", p.name);
            assert!(p.name.starts_with("pcb-"));
            assert!(
                p.name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-+._".contains(&b)),
                "{}",
                p.name
            );
            for v in [&p.version, &p.release] {
                assert!(!v.is_empty() && !v.contains(['-', ':', ' ']), "{v}");
            }
            epochs += usize::from(p.epoch.is_some());
        }
        assert!(epochs > n / 10 && epochs < n / 4, "{epochs} epochs");
        assert_eq!(package(17), package(17));
    }

    #[test]
    fn spec_has_every_subpackage() {
        let s = spec(3);
        assert_eq!(s.matches("%package -n pcb-").count(), 3);
        assert_eq!(s.matches("%files -n pcb-").count(), 3);
        // The main package's, then one per subpackage.
        assert_eq!(s.matches("\nVersion: ").count(), 4);
    }

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
