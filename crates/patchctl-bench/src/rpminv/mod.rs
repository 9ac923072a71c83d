//! The agent's rpm inventory against `rpm -qa`, on a real rpm database of N packages.
//!
//! The database: one spec file with N `%package -n pcb-NAME` subpackages (noarch, no
//! files, each with its own `Version:`, `Release:` and on some an `Epoch:`), built with
//! one `rpmbuild -bb`, installed with one `rpm --root R -i --justdb --nodeps
//! --noscripts` into a private root R, checked (`rpm --root R -qa` lists exactly N) and
//! kept under [`db::CACHE_DIR`]`/rpmdb-N` so that later runs reuse it.
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
//!
//! Layout: `packages` generates the benchmark's packages and their spec file, `db` builds
//! and caches the rpm database, `rusage` runs rpm (and the `rusage-of` wrapper that
//! measures a child); this file runs the comparison and writes the report.

mod db;
mod packages;
mod rusage;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use patchctl_agent::exec::ProcessExecutor;
use patchctl_agent::inventory::rpm;
use patchctl_agent::pkgmgr::Backend;
use patchctl_agent::pkgmgr::dnf::{DnfBackend, DnfOptions};

use crate::stats::{Summary, mib, ms};
pub use db::DbOrigin;
use db::ensure_db;
pub(crate) use rusage::measure;
pub use rusage::rusage_of;
use rusage::{lines, native_argv};

/// The target for peak RSS during an inventory.
pub const TARGET_RSS_KIB: u64 = 32 * 1024;

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
