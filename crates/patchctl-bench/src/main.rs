//! `patchctl-bench`: measures PatchCTL on the machine it runs on and prints Markdown.
//!
//! `dashboard` (page render times with 100,000 hosts), `overdue` (overdue findings of
//! 100,000 hosts), `deploy-plan` (planning a deployment of 100,000 hosts), `hostload` (the agent on a busy host),
//! `fleet` (simulated agents against one platform process), `heartbeats` (platform throughput on SQLite, PostgreSQL and a bare TLS + HTTP
//! ceiling), `agent` (the release agent's memory and binary sizes), `inventory` (the
//! agent's dpkg parser against `dpkg-query -W`), `all` (the three with their defaults)
//! and `smoke` (a quick end-to-end check of every benchmark, for CI). Build it in
//! release mode: `cargo build --release -p patchctl-bench -p patchctl -p patchctl-agent`.

// The workspace forbids `Command::new` so that the agent starts processes only through
// its executor (`patchctl_agent::exec`). This benchmark is not agent code and is not
// shipped: it must start `dpkg-query` and the release `patchctl` and `patchctl-agent`
// binaries itself to measure them.
#![allow(clippy::disallowed_methods)]

use std::{path::PathBuf, process::ExitCode, time::Duration};

use clap::Parser;

mod args;
mod cpu;
mod dashboard;
mod deploy_plan;
mod fleet;
mod footprint;
mod heartbeats;
mod hello;
mod hostload;
mod inventory;
mod loadclient;
mod overdue;
mod pg;
mod procs;
mod rpminv;
mod scanbytes;
mod selfupdate;
mod stats;
mod vulnfeeds;
mod vulns;

use args::{
    AllArgs, BackendArg, Bins, Cli, Cmd, DEFAULT_POSTGRES_URL, SMOKE_POSTGRES_ENV, Threads,
};
use heartbeats::Backend;

fn cpus() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

fn heartbeat_config(
    agents: usize,
    seconds: f64,
    postgres_url: String,
    threads: Threads,
) -> heartbeats::Config {
    heartbeats::Config {
        agents: agents.max(1),
        duration: Duration::from_secs_f64(seconds.max(0.1)),
        postgres_url,
        server_threads: threads.server_threads.unwrap_or_else(cpus),
        client_threads: threads.client_threads.unwrap_or_else(cpus),
    }
}

fn run_backends(
    cfg: &heartbeats::Config,
    backends: &[Backend],
) -> Vec<(Backend, anyhow::Result<heartbeats::Outcome>)> {
    backends
        .iter()
        .map(|&b| {
            eprintln!(
                "heartbeats: {}: {} agents for {:.0} s ...",
                b.label(),
                cfg.agents,
                cfg.duration.as_secs_f64()
            );
            let r = heartbeats::run(b, cfg);
            match &r {
                Ok(o) => eprintln!(
                    "heartbeats: {}: {:.0}/s, {} errors",
                    b.label(),
                    o.per_sec(),
                    o.errors
                ),
                Err(e) => eprintln!("heartbeats: {}: failed: {e:#}", b.label()),
            }
            (b, r)
        })
        .collect()
}

fn footprint_config(bins: &Bins, idle_secs: u64, samples: u32) -> footprint::Config {
    footprint::Config {
        agent_bin: bins
            .agent_bin
            .clone()
            .unwrap_or_else(|| footprint::beside_me("patchctl-agent")),
        patchctl_bin: bins
            .patchctl_bin
            .clone()
            .unwrap_or_else(|| footprint::beside_me("patchctl")),
        idle: Duration::from_secs(idle_secs),
        samples,
        sample_every: Duration::from_millis(500),
    }
}

fn first_line_of(path: &str, key: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_once(':').or_else(|| l.split_once('=')))
        .map(|(_, v)| v.trim().trim_matches('"').to_owned())
}

/// The machine, as far as `/proc` and `/etc/os-release` tell.
fn machine_markdown() -> String {
    let model = first_line_of("/proc/cpuinfo", "model name").unwrap_or_else(|| "unknown".into());
    let mem = first_line_of("/proc/meminfo", "MemTotal").unwrap_or_else(|| "unknown".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".into());
    let os = first_line_of("/etc/os-release", "PRETTY_NAME").unwrap_or_else(|| "unknown".into());
    let load = std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into());
    let busy = cpu::machine_busy_over(Duration::from_secs(2))
        .map(|f| format!("{:.0} %", f * 100.0))
        .unwrap_or_else(|| "unknown".into());
    format!(
        "### Machine\n\n- CPU: {model}, {} logical CPUs available\n- Memory: {mem}\n- Kernel: {kernel}; OS: {os}\n- Load average when the run started: {load}; CPU busy over the 2 s before it: {busy}\n",
        cpus()
    )
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Heartbeats(a) => {
            let backends: Vec<Backend> = match a.backend {
                BackendArg::Sqlite => vec![Backend::Sqlite],
                BackendArg::Postgres => vec![Backend::Postgres],
                BackendArg::Hello => vec![Backend::Hello],
                BackendArg::StoreSqlite => vec![Backend::StoreSqlite],
                BackendArg::StorePostgres => vec![Backend::StorePostgres],
                BackendArg::All => vec![Backend::Sqlite, Backend::Postgres, Backend::Hello],
            };
            let cfg = heartbeat_config(a.agents, a.seconds as f64, a.postgres_url, a.threads);
            let runs = run_backends(&cfg, &backends);
            println!(
                "### Platform heartbeat throughput\n\n{}",
                heartbeats::markdown(&cfg, &runs)
            );
            exit_code(runs.iter().all(|(_, r)| r.is_ok()))
        }
        Cmd::Agent(a) => {
            let cfg = footprint_config(&a.bins, a.idle_secs, a.samples);
            match footprint::run(&cfg) {
                Ok(o) => {
                    println!("{}", footprint::markdown(&cfg, &o));
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&format!("agent footprint: {e:#}")),
            }
        }
        Cmd::Update { bins } => {
            let cfg = footprint_config(&bins, 0, 1);
            match selfupdate::run(&cfg) {
                Ok(o) => {
                    println!("{}", selfupdate::markdown(&o));
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&format!("self-update: {e:#}")),
            }
        }
        Cmd::Inventory(a) => match inventory::run(a.runs) {
            Ok(o) => {
                println!("{}", inventory::markdown(&o));
                exit_code(o.counts_match())
            }
            Err(e) => fail(&format!("inventory: {e:#}")),
        },
        Cmd::RpmInventory { packages, runs } => match rpminv::run(packages, runs) {
            Ok(o) => {
                println!("{}", rpminv::markdown(&o));
                exit_code(o.counts_match())
            }
            Err(e) => fail(&format!("rpm inventory: {e:#}")),
        },
        Cmd::RusageOf { argv } => match rpminv::rusage_of(&argv) {
            Ok(0) => ExitCode::SUCCESS,
            Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
            Err(e) => fail(&format!("rusage-of: {e:#}")),
        },
        Cmd::ScanBytes { packages } => {
            let mut ok = true;
            for d in [scanbytes::Dataset::Host, scanbytes::Dataset::WorstCase] {
                match scanbytes::run(packages, d) {
                    Ok(o) => {
                        println!("{}", scanbytes::markdown(&o));
                        // The targets are for real hosts; the worst case is reported.
                        ok &= d == scanbytes::Dataset::WorstCase || o.meets_targets();
                    }
                    Err(e) => return fail(&format!("scan bytes: {e:#}")),
                }
            }
            exit_code(ok)
        }
        Cmd::Vulns {
            hosts,
            packages,
            data,
            bins,
        } => match vulns_bench(&bins, data.as_deref(), hosts, packages) {
            Ok(r) => {
                println!("{}", r.markdown);
                exit_code(r.meets_targets())
            }
            Err(e) => fail(&format!("vulns: {e:#}")),
        },
        Cmd::Vulnfeeds {
            hosts,
            packages,
            scale,
            data,
            bins,
        } => {
            let cfg = vulnfeeds::Config {
                hosts,
                packages,
                scale,
            };
            match vulnfeeds_bench(&bins, data.as_deref(), &cfg) {
                Ok(r) => {
                    println!("{}", r.markdown);
                    exit_code(r.meets_targets())
                }
                Err(e) => fail(&format!("vulnfeeds: {e:#}")),
            }
        }
        Cmd::Dashboard {
            hosts,
            samples,
            smoke,
        } => {
            let mut cfg = if smoke {
                dashboard::Config::smoke()
            } else {
                dashboard::Config::full()
            };
            if let Some(h) = hosts {
                cfg.shape.hosts = h;
            }
            if let Some(n) = samples {
                cfg.samples = n;
            }
            match dashboard::run(cfg) {
                Ok(r) => {
                    println!("{}\n{}", machine_markdown(), dashboard::markdown(&r));
                    exit_code(r.meets_targets())
                }
                Err(e) => fail(&format!("dashboard: {e:#}")),
            }
        }
        Cmd::Overdue { hosts, smoke } => {
            let mut cfg = if smoke {
                overdue::Config::smoke()
            } else {
                overdue::Config::full()
            };
            if let Some(h) = hosts {
                cfg.hosts = h;
            }
            match overdue::run(cfg) {
                Ok(r) => {
                    println!("{}\n{}", machine_markdown(), overdue::markdown(&r));
                    exit_code(r.meets_target())
                }
                Err(e) => fail(&format!("overdue: {e:#}")),
            }
        }
        Cmd::DeployPlan(a) => match deploy_plan::cli(&a) {
            Ok((md, ok)) => {
                println!("{}\n{md}", machine_markdown());
                exit_code(ok)
            }
            Err(e) => fail(&format!("deploy-plan: {e:#}")),
        },
        Cmd::All(a) => all(a),
        Cmd::Hostload(a) => hostload::main(a),
        Cmd::Fleet(a) => fleet::main(a),
        Cmd::FleetNodes(a) => fleet::nodes::main(a),
        Cmd::FleetShard(a) => fleet::shard::main(a),
        Cmd::Smoke => smoke(),
    }
}

fn exit_code(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn fail(msg: &str) -> ExitCode {
    eprintln!("patchctl-bench: {msg}");
    ExitCode::FAILURE
}

fn all(a: AllArgs) -> ExitCode {
    let mut ok = true;
    println!("## PatchCTL benchmarks\n\n{}", machine_markdown());
    let threads = Threads {
        server_threads: None,
        client_threads: None,
    };
    let backends = [Backend::Sqlite, Backend::Postgres, Backend::Hello];
    let cfg = heartbeat_config(64, 15.0, a.postgres_url.clone(), threads);
    let runs = run_backends(&cfg, &backends);
    ok &= runs.iter().all(|(_, r)| r.is_ok());
    println!(
        "### Platform heartbeat throughput\n\n{}",
        heartbeats::markdown(&cfg, &runs)
    );
    let cfg = heartbeat_config(64, 15.0, a.postgres_url, threads);
    let diagnostic = [Backend::StoreSqlite, Backend::StorePostgres];
    let runs = run_backends(&cfg, &diagnostic);
    ok &= runs.iter().all(|(_, r)| r.is_ok());
    println!(
        "### Diagnostic: storage alone\n\n\
         The heartbeat handler's storage work (group-commit writer, lease only when \
         commands are pending) driven directly from as many concurrent tasks, with no \
         TLS, HTTP or JSON.\n\n{}",
        heartbeats::markdown(&cfg, &runs)
    );

    eprintln!("agent: footprint (about 30 s) ...");
    let fcfg = footprint_config(&a.bins, 20, 12);
    match footprint::run(&fcfg) {
        Ok(o) => println!("{}", footprint::markdown(&fcfg, &o)),
        Err(e) => {
            ok = false;
            println!("### Agent footprint\n\nFAILED: {e:#}\n");
        }
    }

    eprintln!("agent: self-update (about 15 s) ...");
    match selfupdate::run(&fcfg) {
        Ok(o) => println!("{}", selfupdate::markdown(&o)),
        Err(e) => {
            ok = false;
            println!("### Agent self-update\n\nFAILED: {e:#}\n");
        }
    }

    eprintln!("inventory: 30 runs each ...");
    match inventory::run(30) {
        Ok(o) => {
            ok &= o.counts_match();
            println!("{}", inventory::markdown(&o));
        }
        Err(e) => {
            ok = false;
            println!("### dpkg inventory\n\nFAILED: {e:#}\n");
        }
    }
    eprintln!("rpm inventory: 2000 packages, 10 runs each ...");
    match rpminv::run(2000, 10) {
        Ok(o) => {
            ok &= o.counts_match();
            println!("{}", rpminv::markdown(&o));
        }
        Err(e) => {
            ok = false;
            println!("### rpm inventory\n\nFAILED: {e:#}\n");
        }
    }
    for d in [scanbytes::Dataset::Host, scanbytes::Dataset::WorstCase] {
        match scanbytes::run(2000, d) {
            Ok(o) => println!("{}", scanbytes::markdown(&o)),
            Err(e) => {
                ok = false;
                println!("### Bytes per scan\n\nFAILED: {e:#}\n");
            }
        }
    }
    eprintln!("vulns: import, index, 10,000 hosts x 1,500 packages ...");
    match vulns_bench(&a.bins, None, 10_000, 1_500) {
        Ok(r) => {
            ok &= r.meets_targets();
            println!("{}", r.markdown);
        }
        Err(e) => {
            ok = false;
            println!("### CVE correlation\n\nFAILED: {e:#}\n");
        }
    }
    exit_code(ok)
}

fn vulns_bench(
    bins: &Bins,
    data: Option<&std::path::Path>,
    hosts: usize,
    packages: usize,
) -> anyhow::Result<vulns::Report> {
    let patchctl = bins
        .patchctl_bin
        .clone()
        .unwrap_or_else(|| footprint::beside_me("patchctl"));
    vulns::run(&patchctl, &vulns::data_dir(data)?, hosts, packages)
}

fn vulnfeeds_bench(
    bins: &Bins,
    data: Option<&std::path::Path>,
    cfg: &vulnfeeds::Config,
) -> anyhow::Result<vulnfeeds::Report> {
    let patchctl = bins
        .patchctl_bin
        .clone()
        .unwrap_or_else(|| footprint::beside_me("patchctl"));
    let data = data.map_or_else(
        || PathBuf::from("../shared/data"),
        std::path::Path::to_path_buf,
    );
    vulnfeeds::run(&patchctl, &data, cfg)
}

/// Tallies the smoke checks.
#[derive(Default)]
struct Tally {
    passed: u32,
    failed: u32,
}

impl Tally {
    fn record(&mut self, name: &str, r: anyhow::Result<String>) {
        match r {
            Ok(md) => {
                println!("{md}");
                println!("smoke: {name}: ok\n");
                self.passed += 1;
            }
            Err(e) => {
                println!("smoke: {name}: FAILED: {e:#}\n");
                self.failed += 1;
            }
        }
    }
}

fn smoke_heartbeats(cfg: &heartbeats::Config, backend: Backend) -> anyhow::Result<String> {
    let o = heartbeats::run(backend, cfg)?;
    let md = heartbeats::markdown(cfg, &[(backend, Ok(o.clone()))]);
    if o.ok == 0 {
        anyhow::bail!("no heartbeat succeeded\n{md}");
    }
    if o.errors > 0 {
        anyhow::bail!("{} heartbeats failed\n{md}", o.errors);
    }
    Ok(md)
}

fn smoke() -> ExitCode {
    let mut t = Tally::default();
    let pg = std::env::var(SMOKE_POSTGRES_ENV)
        .ok()
        .filter(|s| !s.is_empty());
    let threads = Threads {
        server_threads: None,
        client_threads: None,
    };
    let pg_url = pg.clone().unwrap_or_else(|| DEFAULT_POSTGRES_URL.into());
    let cfg = heartbeat_config(4, 2.0, pg_url, threads);
    t.record("heartbeats sqlite", smoke_heartbeats(&cfg, Backend::Sqlite));
    t.record("heartbeats hello", smoke_heartbeats(&cfg, Backend::Hello));
    if pg.is_some() {
        t.record(
            "heartbeats postgres",
            smoke_heartbeats(&cfg, Backend::Postgres),
        );
    } else {
        println!("smoke: heartbeats postgres: skipped ({SMOKE_POSTGRES_ENV} is not set)\n");
    }
    t.record(
        "heartbeats sqlite storage calls only",
        smoke_heartbeats(&cfg, Backend::StoreSqlite),
    );
    t.record(
        "inventory",
        inventory::run(3).and_then(|o| {
            let md = inventory::markdown(&o);
            if o.counts_match() {
                Ok(md)
            } else {
                Err(anyhow::anyhow!("package counts differ\n{md}"))
            }
        }),
    );
    t.record(
        "rpm inventory",
        rpminv::run(200, 2).and_then(|o| {
            let md = rpminv::markdown(&o);
            if o.counts_match() {
                Ok(md)
            } else {
                Err(anyhow::anyhow!("package counts differ\n{md}"))
            }
        }),
    );
    t.record(
        "scan bytes",
        scanbytes::run(2000, scanbytes::Dataset::Host).and_then(|o| {
            let md = scanbytes::markdown(&o);
            if o.meets_targets() {
                Ok(md)
            } else {
                Err(anyhow::anyhow!("over a target\n{md}"))
            }
        }),
    );
    let bins = Bins {
        agent_bin: None,
        patchctl_bin: None,
    };
    let fcfg = footprint_config(&bins, 3, 4);
    t.record(
        "agent footprint",
        footprint::run(&fcfg).and_then(|o| {
            let md = footprint::markdown(&fcfg, &o);
            if o.packages == 0 || o.idle_max.rss_kib == 0 || o.at_scan.hwm_kib == 0 {
                Err(anyhow::anyhow!("implausible measurement\n{md}"))
            } else {
                Ok(md)
            }
        }),
    );
    t.record(
        "agent self-update",
        selfupdate::run(&fcfg).and_then(|o| {
            let md = selfupdate::markdown(&o);
            if o.agent_peak_kib == 0 || o.to_confirmed.is_zero() {
                Err(anyhow::anyhow!("implausible measurement\n{md}"))
            } else {
                Ok(md)
            }
        }),
    );
    t.record(
        "vulns",
        vulns_bench(&bins, None, 300, 300).and_then(|r| {
            if r.cold_pairs_per_s > 0.0 && r.fleet_pairs_per_s > 0.0 {
                Ok(r.markdown)
            } else {
                Err(anyhow::anyhow!("implausible measurement\n{}", r.markdown))
            }
        }),
    );
    let small = vulnfeeds::Config {
        hosts: 120,
        packages: 200,
        scale: 0.02,
    };
    t.record(
        "vulnfeeds",
        vulnfeeds_bench(&bins, None, &small).and_then(|r| {
            if r.failed_imports == 0 && r.cold_pairs_per_s > 0.0 && r.fleet_pairs_per_s > 0.0 {
                Ok(r.markdown)
            } else {
                Err(anyhow::anyhow!(
                    "a feed failed or an implausible measurement\n{}",
                    r.markdown
                ))
            }
        }),
    );
    t.record(
        "dashboard",
        dashboard::run(dashboard::Config::smoke()).and_then(|r| {
            let md = dashboard::markdown(&r);
            if r.meets_targets() {
                Ok(md)
            } else {
                Err(anyhow::anyhow!("a page missed its target\n{md}"))
            }
        }),
    );
    t.record(
        "overdue",
        overdue::run(overdue::Config::smoke()).and_then(|r| {
            let md = overdue::markdown(&r);
            if r.meets_target() {
                Ok(md)
            } else {
                Err(anyhow::anyhow!("over the target or nothing overdue\n{md}"))
            }
        }),
    );
    t.record("deploy-plan", deploy_plan::smoke_check());
    t.record("hostload", hostload::smoke());
    t.record("fleet (2,000 agents, SQLite)", fleet::smoke());
    match &pg {
        Some(url) => t.record(
            "fleet-nodes (600 agents, 3 nodes, PostgreSQL)",
            fleet::nodes::smoke(url.clone()),
        ),
        None => println!("smoke: fleet-nodes: skipped ({SMOKE_POSTGRES_ENV} is not set)\n"),
    }
    println!("bench smoke: {} passed, {} failed", t.passed, t.failed);
    exit_code(t.failed == 0)
}
