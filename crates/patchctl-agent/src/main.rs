//! `patchctl-agent`: parse arguments, set up logging, load the config, run.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use patchctl_agent::config::{AgentConfig, DEFAULT_CONFIG_PATH};

/// The PatchCTL agent: reports this server's packages to the platform and runs only
/// check_updates, install_updates, get_package_info and health_check.
#[derive(Parser)]
#[command(name = "patchctl-agent", version, about)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the agent (enroll on first start, then heartbeat and scan).
    Run {
        /// Configuration file.
        #[arg(long, default_value = DEFAULT_CONFIG_PATH)]
        config: PathBuf,
    },
    /// Check the configuration file (permissions and contents) and exit.
    CheckConfig {
        /// Configuration file.
        #[arg(long, default_value = DEFAULT_CONFIG_PATH)]
        config: PathBuf,
    },
    /// Scan this system and show what would be sent.
    Scan {
        /// Print exactly the inventory JSON that would be sent to the platform.
        #[arg(long)]
        print: bool,
    },
    /// Print the agent's version.
    Version,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.cmd) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("patchctl-agent: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

fn run(cmd: Cmd) -> anyhow::Result<()> {
    match cmd {
        Cmd::Version => {
            println!("patchctl-agent {}", patchctl_agent::VERSION);
            Ok(())
        }
        Cmd::CheckConfig { config } => {
            let cfg = AgentConfig::load(&config)?;
            println!(
                "{}: ok (server {}, heartbeat {} s, scan {} s)",
                config.display(),
                cfg.server_url,
                cfg.heartbeat_interval.as_secs(),
                cfg.scan_interval.as_secs()
            );
            Ok(())
        }
        Cmd::Scan { print } => {
            let state = runtime()?.block_on(patchctl_agent::scan::collect_local())?;
            println!("{}", patchctl_agent::scan::preview(&state, print)?);
            Ok(())
        }
        Cmd::Run { config } => {
            let cfg = AgentConfig::load(&config)?;
            patchctl_agent::logging::init(cfg.log_dir.as_deref())?;
            runtime()?.block_on(async move {
                let agent = patchctl_agent::runtime::Agent::new(cfg)?;
                agent.run(shutdown_signal()).await?;
                Ok(())
            })
        }
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
