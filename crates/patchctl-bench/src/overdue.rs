//! Overdue findings for 100,000 hosts (issue 14): the dashboard benchmark's fleet on
//! SQLite (Debian 12 hosts sharing their packages and records, one host with 3,000
//! packages), the CVE engine loaded from it (the first-seen times of every finding
//! written in bulk on the way), then the compliance view with its overdue list computed
//! `samples` times at a time when most fixable findings are past their deadlines, with
//! some exceptions in force. The target: ≤ 2 s.

use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Utc;
use patchctl_server::engine::{Deadlines, OverdueFilter, VulnEngine};
use patchctl_storage::{ExceptionScope, NewException};

use crate::dashboard::seed::{self, Shape};

/// The target.
pub const TARGET: Duration = Duration::from_secs(2);

/// The run's parameters.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// Small hosts (besides the big one).
    pub hosts: usize,
    /// Timed computations.
    pub samples: usize,
}

impl Config {
    /// 100,000 hosts.
    pub fn full() -> Config {
        Config {
            hosts: 100_000,
            samples: 10,
        }
    }

    /// 5,000 hosts, 3 samples.
    pub fn smoke() -> Config {
        Config {
            hosts: 5_000,
            samples: 3,
        }
    }
}

/// What was measured.
#[derive(Debug, Clone)]
pub struct Report {
    /// The parameters.
    pub config: Config,
    /// Hosts correlated.
    pub hosts: u64,
    /// Fixable findings with a deadline.
    pub findings: u64,
    /// Of those, overdue.
    pub overdue: u64,
    /// Time to write the fleet.
    pub seeded: Duration,
    /// Time of the engine's load, first-seen sweep included.
    pub load: Duration,
    /// First-seen rows written by the load.
    pub first_seen: u64,
    /// Each timed computation.
    pub times: Vec<Duration>,
}

impl Report {
    /// The median computation.
    pub fn median(&self) -> Duration {
        let mut t = self.times.clone();
        t.sort();
        t.get(t.len() / 2).copied().unwrap_or_default()
    }

    /// The slowest.
    pub fn max(&self) -> Duration {
        self.times.iter().copied().max().unwrap_or_default()
    }

    /// Whether the slowest computation met the target and something was computed.
    pub fn meets_target(&self) -> bool {
        self.max() <= TARGET && self.overdue > 0
    }
}

/// Runs the benchmark.
pub fn run(cfg: Config) -> anyhow::Result<Report> {
    let tmp = tempfile::Builder::new()
        .prefix("patchctl-bench-overdue-")
        .tempdir()?;
    let db = format!("sqlite://{}", tmp.path().join("patchctl.db").display());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let store = patchctl_storage::open(&db).await?;
        eprintln!("overdue: writing {} hosts ...", cfg.hosts + 1);
        let shape = Shape {
            hosts: cfg.hosts,
            small_packages: 6,
            big_packages: 3_000,
            commands: 0,
        };
        let seeded = seed::seed(&store, shape, "bench-owner", "bench-password-123").await?;
        let org = store
            .org_by_name("bench")
            .await?
            .context("the bench organisation")?
            .id;
        let started = Instant::now();
        let engine = VulnEngine::new(store.clone());
        engine.load().await?;
        let load = started.elapsed();
        let first_seen = store.all_first_seen().await?.len() as u64;
        eprintln!(
            "overdue: engine loaded in {:.1} s ({first_seen} first-seen times)",
            load.as_secs_f64()
        );
        // a few exceptions in force: one CVE everywhere, one on the big host
        let now = Utc::now();
        for (vuln, scope) in [
            ("CVE-2025-10003", ExceptionScope::All),
            ("CVE-2025-10010", ExceptionScope::Host(seeded.big_host)),
        ] {
            store
                .create_exception(&NewException {
                    org_id: org,
                    vuln_id: vuln.into(),
                    scope,
                    reason: "bench".into(),
                    owner: "bench".into(),
                    expires_at: (now + chrono::Duration::days(300)).timestamp_millis(),
                    created_by: "bench".into(),
                    created_at: now.timestamp_millis(),
                })
                .await?;
        }
        // 100 days on, everything but the low findings is overdue
        let at = now + chrono::Duration::days(100);
        let filter = OverdueFilter::default();
        let mut times = Vec::with_capacity(cfg.samples);
        let mut last = None;
        for _ in 0..cfg.samples {
            let t = Instant::now();
            let ctx: Deadlines = engine.deadlines(org, at).await?;
            let view = engine
                .compliance(org, None, &ctx, Some((&filter, 0, 100)))
                .await?;
            times.push(t.elapsed());
            last = Some(view);
        }
        let view = last.context("no sample")?;
        Ok(Report {
            config: cfg,
            hosts: view.tally.hosts + view.tally.hosts_without_data,
            findings: view.tally.findings,
            overdue: view.tally.overdue,
            seeded: seeded.took,
            load,
            first_seen,
            times,
        })
    })
}

/// The report as Markdown.
pub fn markdown(r: &Report) -> String {
    format!(
        "### Issue 14: overdue findings\n\n\
         {} hosts on SQLite ({} fixable findings with a deadline, {} of them overdue at \
         the time asked, two exceptions in force). The compliance view with its first \
         page of overdue findings (most overdue first), computed {} times: median \
         {:.0} ms, slowest {:.0} ms (target ≤ {} s: {}). The CVE engine's load, first-seen \
         sweep included ({} rows written in bulk), took {:.1} s; writing the fleet {:.1} s.\n",
        r.hosts,
        r.findings,
        r.overdue,
        r.config.samples,
        r.median().as_secs_f64() * 1000.0,
        r.max().as_secs_f64() * 1000.0,
        TARGET.as_secs(),
        if r.meets_target() { "met" } else { "MISSED" },
        r.first_seen,
        r.load.as_secs_f64(),
        r.seeded.as_secs_f64(),
    )
}
