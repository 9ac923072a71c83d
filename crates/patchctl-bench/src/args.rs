//! The command line of `patchctl-bench`: the subcommands and their arguments (clap).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::{deploy_plan, fleet, hostload};

/// Where the PostgreSQL benchmark creates its scratch database by default.
pub(crate) const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
/// The variable that turns the PostgreSQL part of `smoke` on (and gives its URL).
pub(crate) const SMOKE_POSTGRES_ENV: &str = "PATCHCTL_TEST_POSTGRES_URL";

/// Benchmarks of PatchCTL: platform throughput, agent footprint, dpkg inventory speed.
#[derive(Parser)]
#[command(name = "patchctl-bench", version, about)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) cmd: Cmd,
}

#[derive(Subcommand)]
pub(crate) enum Cmd {
    /// Platform throughput: simulated agents sending heartbeats over TLS 1.3.
    Heartbeats(HeartbeatArgs),
    /// Agent footprint: RSS during the first scan and idle, binary sizes.
    Agent(AgentArgs),
    /// The agent's self-update: time from rollout to confirmed, RSS while updating.
    /// The agent must trust the test release root (see `selfupdate::BUILD_HINT`).
    Update {
        #[command(flatten)]
        bins: Bins,
    },
    /// The agent's dpkg inventory against `dpkg-query -W`.
    Inventory(InventoryArgs),
    /// The agent's rpm inventory against `rpm -qa`, on a private rpm database.
    RpmInventory {
        /// Packages in the rpm database (built once, cached under /var/cache/patchctl-ci).
        #[arg(long, default_value_t = 2000)]
        packages: usize,
        /// Timed runs of each.
        #[arg(long, default_value_t = 10)]
        runs: u32,
    },
    /// Internal: runs a program and prints its wall time and peak RSS (used by
    /// `rpm-inventory`).
    #[command(hide = true)]
    RusageOf {
        /// The program and its arguments.
        #[arg(last = true, required = true)]
        argv: Vec<String>,
    },
    /// Bytes the agent sends per scan (full, unchanged, 1 % changed).
    ScanBytes {
        /// Packages in the inventory.
        #[arg(long, default_value_t = 2000)]
        packages: usize,
    },
    /// CVE correlation over the AlmaLinux data: import, index memory, pairs/s, and the
    /// re-correlation after one new advisory.
    Vulns {
        /// Synthetic hosts.
        #[arg(long, default_value_t = 10_000)]
        hosts: usize,
        /// Packages per host.
        #[arg(long, default_value_t = 1_500)]
        packages: usize,
        /// The shared data folder (default ../shared/data).
        #[arg(long)]
        data: Option<PathBuf>,
        #[command(flatten)]
        bins: Bins,
    },
    /// CVE data of every family (issue 12): each feed sample's import (wall, peak RSS),
    /// the index with every family at full size, and the correlation rate over a mixed
    /// fleet of every family.
    Vulnfeeds {
        /// Synthetic hosts in the mixed fleet.
        #[arg(long, default_value_t = 11_000)]
        hosts: usize,
        /// Packages per host.
        #[arg(long, default_value_t = 1_500)]
        packages: usize,
        /// Fraction of each family's full size to generate (1.0: full size).
        #[arg(long, default_value_t = 1.0)]
        scale: f64,
        /// The shared data folder (default ../shared/data).
        #[arg(long)]
        data: Option<PathBuf>,
        #[command(flatten)]
        bins: Bins,
    },
    /// Dashboard render times (issue 13): the fleet overview, hosts and host pages over
    /// TLS with 100,000 hosts on SQLite, against the targets.
    Dashboard {
        /// Hosts in the fleet (besides the one with 3,000 packages).
        #[arg(long)]
        hosts: Option<usize>,
        /// Timed requests per page.
        #[arg(long)]
        samples: Option<usize>,
        /// The small form: 5,000 hosts, 10 requests per page.
        #[arg(long)]
        smoke: bool,
    },
    /// Overdue findings for 100,000 hosts on SQLite (issue 14), against the 2 s target.
    Overdue {
        /// Hosts in the fleet (besides the one with 3,000 packages).
        #[arg(long)]
        hosts: Option<usize>,
        /// The small form: 5,000 hosts, 3 samples.
        #[arg(long)]
        smoke: bool,
    },
    /// Deployment planning for 100,000 hosts on SQLite (issue 14), against the 5 s target.
    DeployPlan(deploy_plan::Args),
    /// The agent on a busy host (issue 15): scan and heartbeat cost, loads beside scans.
    Hostload(hostload::Args),
    /// The fleet (issue 16): N simulated agents with the agent's protocol and connection
    /// pattern against one `patchctl server` process; rate, latency, memory, fds, the
    /// reconnect storm and the ceiling under the same pattern.
    Fleet(fleet::Args),
    /// The fleet's long-polls across several `patchctl server` nodes on one PostgreSQL
    /// (issue 16 §2, §3): the platform's memory per waiting agent at 100,000 waiting,
    /// and command latency across nodes.
    FleetNodes(fleet::nodes::Args),
    /// One simulator process of `fleet-nodes` (started by it).
    #[command(hide = true)]
    FleetShard(fleet::shard::Args),
    /// The benchmarks with their defaults, as Markdown.
    All(AllArgs),
    /// A quick end-to-end check that every benchmark still works (for CI).
    Smoke,
}

/// Which backends `heartbeats` runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum BackendArg {
    /// The platform on SQLite.
    Sqlite,
    /// The platform on PostgreSQL.
    Postgres,
    /// The bare TLS + HTTP ceiling.
    Hello,
    /// Diagnostic: the heartbeat handler's SQLite storage calls, without TLS or HTTP.
    StoreSqlite,
    /// Diagnostic: the heartbeat handler's PostgreSQL storage calls, without TLS or HTTP.
    StorePostgres,
    /// SQLite, PostgreSQL, then hello.
    All,
}

#[derive(Args)]
pub(crate) struct HeartbeatArgs {
    /// Simulated agents, each with its own TLS connection.
    #[arg(long, default_value_t = 64)]
    pub(crate) agents: usize,
    /// Length of the measured window per backend, in seconds.
    #[arg(long, default_value_t = 15)]
    pub(crate) seconds: u64,
    /// Backend(s) to measure.
    #[arg(long, value_enum, default_value_t = BackendArg::All)]
    pub(crate) backend: BackendArg,
    /// PostgreSQL server to create the scratch database `patchctl_bench_<random>` on.
    #[arg(long, default_value = DEFAULT_POSTGRES_URL)]
    pub(crate) postgres_url: String,
    #[command(flatten)]
    pub(crate) threads: Threads,
}

#[derive(Args, Clone, Copy)]
pub(crate) struct Threads {
    /// Worker threads of the server's runtime (default: the number of CPUs).
    #[arg(long)]
    pub(crate) server_threads: Option<usize>,
    /// Worker threads of the load generator's runtime (default: the number of CPUs).
    #[arg(long)]
    pub(crate) client_threads: Option<usize>,
}

#[derive(Args)]
pub(crate) struct AgentArgs {
    #[command(flatten)]
    pub(crate) bins: Bins,
    /// Quiet time after the first inventory upload before sampling the idle RSS, in seconds.
    #[arg(long, default_value_t = 20)]
    pub(crate) idle_secs: u64,
    /// Idle RSS samples (500 ms apart; 12 span more than one 5 s heartbeat).
    #[arg(long, default_value_t = 12)]
    pub(crate) samples: u32,
}

#[derive(Args, Clone)]
pub(crate) struct Bins {
    /// The agent binary (default: `patchctl-agent` beside this executable).
    #[arg(long)]
    pub(crate) agent_bin: Option<PathBuf>,
    /// The platform/CLI binary (default: `patchctl` beside this executable).
    #[arg(long)]
    pub(crate) patchctl_bin: Option<PathBuf>,
}

#[derive(Args)]
pub(crate) struct InventoryArgs {
    /// Timed runs of each.
    #[arg(long, default_value_t = 30)]
    pub(crate) runs: usize,
}

#[derive(Args)]
pub(crate) struct AllArgs {
    /// PostgreSQL server to create the scratch database on.
    #[arg(long, default_value = DEFAULT_POSTGRES_URL)]
    pub(crate) postgres_url: String,
    #[command(flatten)]
    pub(crate) bins: Bins,
}
