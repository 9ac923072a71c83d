//! Deployment planning for 100,000 hosts (issue 14 §4): the dashboard benchmark's fleet
//! on SQLite (Debian 12 hosts, all in the group `all`), a manifest of 200 packages for
//! Debian 12, and `policy::deployments::create` (groups resolved, hosts ordered by the
//! stable hash, cut into rings 5/25/100, every host row and the first events written in
//! one transaction) timed `samples` times. The target: ≤ 5 s.

use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Utc;
use patchctl_proto::access::Role;
use patchctl_proto::command::RebootPolicy;
use patchctl_proto::policy::approvals::UpdateItem;
use patchctl_proto::policy::deployments::{DeploymentRequest, RingSpec};
use patchctl_server::access::{Actor, Principal};
use patchctl_server::{AppState, Settings};
use patchctl_storage::Manifest;
use uuid::Uuid;

use crate::dashboard::seed::{self, Shape};

/// The target.
pub const TARGET: Duration = Duration::from_secs(5);

/// The run's parameters.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// Hosts (besides the seed's big one).
    pub hosts: usize,
    /// Packages of the manifest.
    pub packages: usize,
    /// Timed creations.
    pub samples: usize,
}

impl Config {
    /// 100,000 hosts, 200 packages, 3 samples.
    pub fn full() -> Config {
        Config {
            hosts: 100_000,
            packages: 200,
            samples: 3,
        }
    }

    /// 5,000 hosts, 200 packages, 3 samples.
    pub fn smoke() -> Config {
        Config {
            hosts: 5_000,
            ..Config::full()
        }
    }
}

/// What was measured.
#[derive(Debug, Clone)]
pub struct Report {
    /// The parameters.
    pub config: Config,
    /// Hosts each deployment targets.
    pub hosts: u64,
    /// Hosts per ring.
    pub rings: Vec<u64>,
    /// Time to write the fleet.
    pub seeded: Duration,
    /// Each timed creation.
    pub times: Vec<Duration>,
}

impl Report {
    /// The median creation.
    pub fn median(&self) -> Duration {
        let mut t = self.times.clone();
        t.sort();
        t.get(t.len() / 2).copied().unwrap_or_default()
    }

    /// Whether the median met the target and every host was planned.
    pub fn meets_target(&self) -> bool {
        self.median() <= TARGET && self.hosts as usize > self.config.hosts
    }
}

/// Runs the benchmark.
pub fn run(cfg: Config) -> anyhow::Result<Report> {
    let tmp = tempfile::Builder::new()
        .prefix("patchctl-bench-deploy-")
        .tempdir()?;
    let db = format!("sqlite://{}", tmp.path().join("patchctl.db").display());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let store = patchctl_storage::open(&db).await?;
        eprintln!("deploy-plan: writing {} hosts ...", cfg.hosts + 1);
        let shape = Shape {
            hosts: cfg.hosts,
            small_packages: 1,
            big_packages: 10,
            commands: 0,
        };
        let seeded = seed::seed(&store, shape, "bench-owner", "bench-password-123").await?;
        let org = store
            .org_by_name("bench")
            .await?
            .context("the bench organisation")?
            .id;
        let all = store
            .group_by_name(org, "all")
            .await?
            .context("the group all")?;
        let items: Vec<UpdateItem> = (0..cfg.packages)
            .map(|i| UpdateItem {
                ecosystem: "Debian:12".into(),
                name: format!("pkg{i:04}"),
                version: format!("1.{i}-1+deb12u1"),
            })
            .collect();
        let manifest = Manifest {
            id: Uuid::new_v4(),
            name: "bench".into(),
            group_id: all.id,
            group_name: "all".into(),
            created_by: "bench".into(),
            created_at: Utc::now(),
            item_count: items.len() as u64,
        };
        store.create_manifest(org, &manifest, &items).await?;
        let st = AppState::new(
            store.clone(),
            Settings::with_defaults("127.0.0.1:0".parse()?, &db, "/unused", "/unused"),
        );
        let by = Principal {
            org_id: org,
            role: Role::Operator,
            read_only: false,
            actor: Actor::OrgToken {
                id: Uuid::nil(),
                name: "bench".into(),
            },
        };
        let ring = |name: &str, percent: u8| RingSpec {
            name: Some(name.into()),
            percent,
            max_failed_percent: 0,
            soak_minutes: 10,
        };
        let mut times = Vec::with_capacity(cfg.samples);
        let mut last = None;
        for i in 0..cfg.samples {
            let req = DeploymentRequest {
                name: format!("bench-{i}"),
                manifest: "bench".into(),
                groups: vec!["all".into()],
                rings: vec![ring("canary", 5), ring("early", 25), ring("all", 100)],
                reboot: RebootPolicy::Never,
            };
            let t = Instant::now();
            let view = patchctl_server::policy::deployments::create(&st, &by, req, Utc::now())
                .await
                .map_err(|e| anyhow::anyhow!("create: {}", e.message))?;
            times.push(t.elapsed());
            eprintln!(
                "deploy-plan: {} hosts planned in {:.2} s",
                view.hosts,
                times[i].as_secs_f64()
            );
            last = Some(view);
        }
        let view = last.context("no sample")?;
        Ok(Report {
            config: cfg,
            hosts: view.hosts,
            rings: view.rings.iter().map(|r| r.hosts).collect(),
            seeded: seeded.took,
            times,
        })
    })
}

/// The report as Markdown.
pub fn markdown(r: &Report) -> String {
    let times: Vec<String> = r
        .times
        .iter()
        .map(|t| format!("{:.2} s", t.as_secs_f64()))
        .collect();
    format!(
        "### Issue 14: deployment planning\n\n\
         {} hosts in the group `all` on SQLite, a manifest of {} Debian 12 packages, rings \
         5/25/100 % ({} hosts). `deployments::create` (groups resolved, hosts ordered by \
         the stable hash and cut into rings, every host row and the first events written \
         in one transaction with multi-row INSERTs), {} runs: {} — median {:.2} s (target \
         ≤ {} s: {}). Writing the fleet took {:.1} s.\n",
        r.hosts,
        r.config.packages,
        r.rings
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(" / "),
        r.config.samples,
        times.join(", "),
        r.median().as_secs_f64(),
        TARGET.as_secs(),
        if r.meets_target() { "met" } else { "MISSED" },
        r.seeded.as_secs_f64(),
    )
}

/// The arguments of `patchctl-bench deploy-plan`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Hosts in the group `all` (besides the seed's big one).
    #[arg(long)]
    pub hosts: Option<usize>,
    /// The small form: 5,000 hosts.
    #[arg(long)]
    pub smoke: bool,
}

/// Runs `deploy-plan` with its arguments: the Markdown and whether the target was met.
pub fn cli(a: &Args) -> anyhow::Result<(String, bool)> {
    let mut cfg = if a.smoke {
        Config::smoke()
    } else {
        Config::full()
    };
    if let Some(h) = a.hosts {
        cfg.hosts = h;
    }
    let r = run(cfg)?;
    Ok((markdown(&r), r.meets_target()))
}

/// The small form for `smoke`: its Markdown, or an error when it missed the target.
pub fn smoke_check() -> anyhow::Result<String> {
    let r = run(Config::smoke())?;
    let md = markdown(&r);
    if r.meets_target() {
        Ok(md)
    } else {
        Err(anyhow::anyhow!(
            "over the target or hosts not planned\n{md}"
        ))
    }
}
