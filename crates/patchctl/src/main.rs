//! `patchctl`: the platform server (`patchctl server`) and the operator CLI.
//! Parse arguments, set up logging, dispatch to the command group, map errors to an
//! exit code.
//!
//! Layout: [`cmd`] holds one module per command group (`hosts`, `keys`, `settings`,
//! `commands`, `audit`, `release`, `vulns`, `vulndb`, `admin`, `server`); [`client`] is the operator API client, [`db`] the
//! direct database access of the offline commands, and [`output`] everything printed
//! (JSON, tables, and the neutralising of terminal control characters).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod client;
mod cmd;
mod db;
mod output;

use client::Conn;
use cmd::admin::AdminCmd;
use cmd::audit::AuditCmd;
use cmd::commands::CommandsCmd;
use cmd::hosts::HostsCmd;
use cmd::keys::KeysCmd;
use cmd::release::ReleaseCmd;
use cmd::server::ServerArgs;
use cmd::settings::SettingsCmd;
use cmd::vulndb::VulndbCmd;
use cmd::vulns::VulnsCmd;
use db::Db;
use output::Format;

/// PatchCTL: patch management for Linux fleets.
#[derive(Parser)]
#[command(name = "patchctl", version, about)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
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
        cmd: HostsCmd,
    },
    /// Enrollment keys: list, create (with an expiry and a maximum of uses), revoke,
    /// rotate.
    Keys {
        #[command(flatten)]
        conn: Conn,
        #[command(subcommand)]
        cmd: KeysCmd,
    },
    /// Signed releases of the agent: keys, signing, verifying (offline), publishing
    /// and rolling out (on the platform).
    Release {
        #[command(flatten)]
        conn: Conn,
        #[command(subcommand)]
        cmd: ReleaseCmd,
    },
    /// The organisation's settings (approval of new hosts).
    Settings {
        #[command(flatten)]
        conn: Conn,
        #[command(subcommand)]
        cmd: SettingsCmd,
    },
    /// The command queue.
    Commands {
        #[command(flatten)]
        conn: Conn,
        #[command(subcommand)]
        cmd: CommandsCmd,
    },
    /// The audit trail of operators: who changed what, when, from where, and how it
    /// ended (owner, admin or auditor).
    Audit {
        #[command(flatten)]
        conn: Conn,
        #[command(subcommand)]
        cmd: AuditCmd,
    },
    /// The vulnerability database (works on the database directly; no server needed).
    Vulndb {
        #[command(flatten)]
        db: Db,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table, global = true)]
        output: Format,
        #[command(subcommand)]
        cmd: VulndbCmd,
    },
    /// Vulnerability findings: per host, per CVE, fleet summary (over the API), and an
    /// offline check of an inventory file.
    Vulns {
        #[command(flatten)]
        conn: Conn,
        #[command(flatten)]
        db: Db,
        #[command(subcommand)]
        cmd: VulnsCmd,
    },
}

/// Logs to stderr (`RUST_LOG`, default `info`), in colour on a terminal. Only the
/// server logs; the operator commands print results and notes through [`output`].
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.cmd {
        Cmd::Server(args) => {
            init_logging();
            cmd::server::run(args).await
        }
        Cmd::Admin { cmd } => cmd::admin::run(cmd).await,
        Cmd::Hosts { conn, cmd } => cmd::hosts::run(&conn, cmd).await,
        Cmd::Keys { conn, cmd } => cmd::keys::run(&conn, cmd).await,
        Cmd::Release { conn, cmd } => cmd::release::run(&conn, cmd).await,
        Cmd::Settings { conn, cmd } => cmd::settings::run(&conn, cmd).await,
        Cmd::Commands { conn, cmd } => cmd::commands::run(&conn, cmd).await,
        Cmd::Audit { conn, cmd } => cmd::audit::run(&conn, cmd).await,
        Cmd::Vulndb { db, output, cmd } => cmd::vulndb::run(&db, output, cmd).await,
        Cmd::Vulns { conn, db, cmd } => cmd::vulns::run(&conn, &db, cmd).await,
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let res = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("cannot start the runtime: {e}"))
        .and_then(|rt| rt.block_on(run(cli)));
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            output::error(&e);
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
