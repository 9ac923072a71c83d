//! The agent's dpkg inventory against `dpkg-query -W`: the agent's own parser
//! (`patchctl_agent::inventory::dpkg::read_status` on `/var/lib/dpkg/status`, exactly
//! what a scan does) and a spawned `/usr/bin/dpkg-query -W` with its output captured,
//! run alternately on the same machine in the same run, with their package counts
//! compared.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use patchctl_agent::inventory::dpkg;

use crate::stats::{Summary, ms};

/// The program the agent is compared with.
pub const DPKG_QUERY: &str = "/usr/bin/dpkg-query";

/// The result of a comparison.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Timed runs of each.
    pub runs: usize,
    /// The agent's parser.
    pub agent: Summary,
    /// `dpkg-query -W`.
    pub dpkg_query: Summary,
    /// Packages the agent found.
    pub agent_packages: usize,
    /// Lines `dpkg-query -W` printed.
    pub dpkg_packages: usize,
    /// Packages in state `config-files` (removed, configuration kept): `dpkg-query -W`
    /// lists them, the agent does not (they are not installed).
    pub config_files: usize,
    /// Stanzas the agent skipped as malformed.
    pub skipped: usize,
}

impl Outcome {
    /// Median of the agent over median of `dpkg-query` (target ≤ 1).
    pub fn ratio(&self) -> f64 {
        self.agent.p50.as_secs_f64() / self.dpkg_query.p50.as_secs_f64().max(1e-12)
    }

    /// True when both saw the same installed packages.
    pub fn counts_match(&self) -> bool {
        self.agent_packages + self.config_files == self.dpkg_packages
    }
}

fn time_agent() -> anyhow::Result<(Duration, usize, usize)> {
    let t0 = Instant::now();
    let parsed = dpkg::read_status(Path::new(dpkg::STATUS_PATH))
        .with_context(|| format!("cannot read {}", dpkg::STATUS_PATH))?;
    let n = parsed.packages.len();
    let skipped = parsed.skipped.len();
    drop(parsed);
    Ok((t0.elapsed(), n, skipped))
}

fn dpkg_query(args: &[&str]) -> anyhow::Result<Vec<u8>> {
    let out = Command::new(DPKG_QUERY)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {DPKG_QUERY}"))?;
    if !out.status.success() {
        anyhow::bail!(
            "{DPKG_QUERY} {} failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out.stdout)
}

fn time_dpkg_query() -> anyhow::Result<(Duration, usize)> {
    let t0 = Instant::now();
    let out = dpkg_query(&["-W"])?;
    let n = out.split(|b| *b == b'\n').filter(|l| !l.is_empty()).count();
    drop(out);
    Ok((t0.elapsed(), n))
}

/// Times `runs` runs of each, alternating, after one untimed run of each.
pub fn run(runs: usize) -> anyhow::Result<Outcome> {
    let runs = runs.max(1);
    if !Path::new(dpkg::STATUS_PATH).exists() {
        anyhow::bail!(
            "{} is missing: this is not a dpkg system",
            dpkg::STATUS_PATH
        );
    }
    // Warm the page cache for both.
    let (_, agent_packages, skipped) = time_agent()?;
    let (_, dpkg_packages) = time_dpkg_query()?;
    let mut agent = Vec::with_capacity(runs);
    let mut query = Vec::with_capacity(runs);
    for i in 0..runs {
        // Alternate which goes first, so neither always follows the other.
        if i % 2 == 0 {
            agent.push(check_agent(time_agent()?, agent_packages)?);
            query.push(check_query(time_dpkg_query()?, dpkg_packages)?);
        } else {
            query.push(check_query(time_dpkg_query()?, dpkg_packages)?);
            agent.push(check_agent(time_agent()?, agent_packages)?);
        }
    }
    let config_files = if agent_packages == dpkg_packages {
        0
    } else {
        let states = dpkg_query(&["-W", "-f", "${db:Status-Status}\\n"])?;
        String::from_utf8_lossy(&states)
            .lines()
            .filter(|l| l.trim() == "config-files")
            .count()
    };
    Ok(Outcome {
        runs,
        agent: Summary::of(agent).context("no agent timing")?,
        dpkg_query: Summary::of(query).context("no dpkg-query timing")?,
        agent_packages,
        dpkg_packages,
        config_files,
        skipped,
    })
}

fn check_agent((d, n, _): (Duration, usize, usize), first: usize) -> anyhow::Result<Duration> {
    if n != first {
        anyhow::bail!("the agent found {first} packages, then {n}: dpkg changed during the run");
    }
    Ok(d)
}

fn check_query((d, n): (Duration, usize), first: usize) -> anyhow::Result<Duration> {
    if n != first {
        anyhow::bail!(
            "dpkg-query -W printed {first} packages, then {n}: dpkg changed during the run"
        );
    }
    Ok(d)
}

/// The Markdown report.
pub fn markdown(o: &Outcome) -> String {
    let ratio = o.ratio();
    let mut s = String::new();
    s.push_str(&format!(
        "### dpkg inventory\n\n{} timed runs each, alternating, after one untimed run of each \
         (page cache warm). Agent = `patchctl_agent::inventory::dpkg::read_status(\"{}\")` \
         in-process (read + parse + free); dpkg-query = spawning `{DPKG_QUERY} -W` and \
         reading all its output.\n\n",
        o.runs,
        dpkg::STATUS_PATH
    ));
    s.push_str(
        "| | median ms | p90 ms | min ms | max ms | packages |\n|---|---:|---:|---:|---:|---:|\n",
    );
    s.push_str(&format!(
        "| agent (read_status) | {} | {} | {} | {} | {} |\n",
        ms(o.agent.p50),
        ms(o.agent.p90),
        ms(o.agent.min),
        ms(o.agent.max),
        o.agent_packages
    ));
    s.push_str(&format!(
        "| dpkg-query -W | {} | {} | {} | {} | {} |\n\n",
        ms(o.dpkg_query.p50),
        ms(o.dpkg_query.p90),
        ms(o.dpkg_query.min),
        ms(o.dpkg_query.max),
        o.dpkg_packages
    ));
    s.push_str(&format!(
        "- Ratio agent / dpkg-query (medians): {:.2}× — target ≤ 1×: {}.\n",
        ratio,
        if ratio <= 1.0 { "met" } else { "MISSED" }
    ));
    if o.counts_match() {
        if o.config_files > 0 {
            s.push_str(&format!(
                "- Package counts agree: dpkg-query also lists {} package(s) in state config-files, which are not installed and which the agent leaves out.\n",
                o.config_files
            ));
        } else {
            s.push_str("- Package counts agree.\n");
        }
    } else {
        s.push_str(&format!(
            "- Package counts DIFFER: agent {}, dpkg-query {} ({} config-files).\n",
            o.agent_packages, o.dpkg_packages, o.config_files
        ));
    }
    if o.skipped > 0 {
        s.push_str(&format!(
            "- The agent skipped {} malformed stanza(s).\n",
            o.skipped
        ));
    }
    s
}
