//! `patchctl`: the platform server (`patchctl server`) and the operator CLI.
//! Parse arguments, set up logging, call the library, map errors to an exit code.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

mod cli;
mod server;
mod sync;
mod table;
mod vulns;

/// PatchCTL: patch management for Linux fleets.
#[derive(Parser)]
#[command(name = "patchctl", version, about)]
pub struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

/// How results are printed.
#[derive(Clone, Copy, Debug, Default, ValueEnum, PartialEq, Eq)]
pub enum Output {
    /// Aligned columns for people.
    #[default]
    Table,
    /// The API's JSON, for scripts.
    Json,
}

/// How to reach the platform.
#[derive(Args, Clone, Debug)]
pub struct Conn {
    /// Platform URL (https://HOST:PORT).
    #[arg(long, env = "PATCHCTL_SERVER", global = true)]
    pub server: Option<String>,
    /// Operator API token.
    #[arg(long, env = "PATCHCTL_TOKEN", global = true, hide_env_values = true)]
    pub token: Option<String>,
    /// CA bundle to trust instead of the system roots (the dev CA in --dev mode).
    #[arg(long, env = "PATCHCTL_CA_FILE", global = true)]
    pub ca_file: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Table, global = true)]
    pub output: Output,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the platform.
    Server(ServerArgs),
    /// First-run administration on the database directly (no server needed).
    Admin {
        #[command(subcommand)]
        cmd: AdminCmd,
    },
    /// Managed hosts.
    Hosts {
        #[command(flatten)]
        conn: Conn,
        #[command(subcommand)]
        cmd: cli::HostsCmd,
    },
    /// The command queue.
    Commands {
        #[command(flatten)]
        conn: Conn,
        #[command(subcommand)]
        cmd: cli::CommandsCmd,
    },
    /// The vulnerability database (works on the database directly; no server needed).
    Vulndb {
        #[command(flatten)]
        db: vulns::Db,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Output::Table, global = true)]
        output: Output,
        #[command(subcommand)]
        cmd: vulns::VulndbCmd,
    },
    /// Vulnerability findings: per host, per CVE, fleet summary (over the API), and an
    /// offline check of an inventory file.
    Vulns {
        #[command(flatten)]
        conn: Conn,
        #[command(flatten)]
        db: vulns::Db,
        #[command(subcommand)]
        cmd: vulns::VulnsCmd,
    },
}

/// `patchctl server`.
#[derive(Args)]
pub struct ServerArgs {
    /// Server configuration file (JSON).
    #[arg(long, conflicts_with = "dev", required_unless_present = "dev")]
    pub config: Option<PathBuf>,
    /// Development mode: a throw-away data directory, SQLite, a development CA, and
    /// this machine enrolled through the real agent.
    #[arg(long)]
    pub dev: bool,
    /// Data directory for --dev.
    #[arg(long, default_value = "./patchctl-dev", requires = "dev")]
    pub data_dir: PathBuf,
    /// Listen address for --dev (default 127.0.0.1:8443, or the previous run's).
    #[arg(long, requires = "dev")]
    pub listen: Option<SocketAddr>,
    /// In --dev mode, do not run the local agent.
    #[arg(long, requires = "dev")]
    pub no_agent: bool,
}

#[derive(Subcommand)]
enum AdminCmd {
    /// Create the database (if needed) and an organisation with an admin API token and
    /// an enrollment key; prints them once (only hashes are stored).
    Init {
        /// Database URL: sqlite://PATH or postgres://USER@HOST/DB.
        #[arg(long, env = "PATCHCTL_DATABASE_URL")]
        database_url: String,
        /// Organisation name.
        #[arg(long, default_value = "default")]
        org: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("patchctl: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let res = rt.block_on(async move {
        match cli.cmd {
            Cmd::Server(args) => server::run(args).await,
            Cmd::Admin {
                cmd: AdminCmd::Init { database_url, org },
            } => server::admin_init(&database_url, &org).await,
            Cmd::Hosts { conn, cmd } => cli::hosts(&conn, cmd).await,
            Cmd::Commands { conn, cmd } => cli::commands(&conn, cmd).await,
            Cmd::Vulndb { db, output, cmd } => vulns::vulndb(&db, output, cmd).await,
            Cmd::Vulns { conn, db, cmd } => vulns::vulns(&conn, &db, cmd).await,
        }
    });
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("patchctl: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_subcommand_is_well_formed() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
