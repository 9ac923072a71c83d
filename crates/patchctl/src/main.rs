//! `patchctl`: the platform server (`patchctl server`) and the operator CLI.
//! Parse arguments, set up logging, dispatch to the command group, map errors to an
//! exit code.
//!
//! Layout: [`cmd`] holds one module per command group (`hosts`, `keys`, `settings`,
//! `commands`, `audit`, `release`, `vulns`, `vulndb`, `admin`, `server`, `users` (and
//! `whoami`), `tokens`, `groups`, `approvals`, `windows`, `webhooks`, `deployments`); [`client`] is the operator API client, [`db`] the
//! direct database access of the offline commands, and [`output`] everything printed
//! (JSON, tables, and the neutralising of terminal control characters).

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

mod client;
mod cmd;
mod db;
mod keyfiles;
mod output;

use client::Conn;
use cmd::admin::AdminCmd;
use cmd::approvals::{ApprovalsCmd, ManifestsCmd};
use cmd::audit::AuditCmd;
use cmd::commands::CommandsCmd;
use cmd::compliance::{ComplianceArgs, DeadlinesCmd, ExceptionsCmd};
use cmd::deployments::DeploymentsCmd;
use cmd::groups::GroupsCmd;
use cmd::hosts::HostsCmd;
use cmd::keys::KeysCmd;
use cmd::release::ReleaseCmd;
use cmd::server::ServerArgs;
use cmd::settings::SettingsCmd;
use cmd::tokens::TokensCmd;
use cmd::users::UsersCmd;
use cmd::vulndb::VulndbCmd;
use cmd::vulns::VulnsCmd;
use cmd::webhooks::WebhooksCmd;
use cmd::windows::WindowsCmd;
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
    /// Webhook subscriptions: list, show, create, update, delete, rotate-secret,
    /// deliveries, test.
    Webhooks {
        #[command(flatten)]
        conn: Conn,
        #[command(subcommand)]
        cmd: WebhooksCmd,
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
    /// Exceptions (accepted risk): list, show, create (with a reason, an owner and an
    /// expiry), revoke.
    Exceptions {
        #[command(flatten)]
        conn: Conn,
        #[command(subcommand)]
        cmd: ExceptionsCmd,
    },
    /// Remediation deadlines: days per severity and for known exploited (KEV) CVEs.
    Deadlines {
        #[command(flatten)]
        conn: Conn,
        #[command(subcommand)]
        cmd: DeadlinesCmd,
    },
    /// Compliance with the deadlines, fleet-wide (or a group), and the overdue findings.
    Compliance {
        #[command(flatten)]
        conn: Conn,
        #[command(flatten)]
        args: ComplianceArgs,
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
    /// Groups of hosts (by operator tags, agent tags, os and release) and host tags:
    /// list, show, create, update, delete, tag, host.
    Groups {
        #[command(flatten)]
        conn: Conn,
        #[command(subcommand)]
        cmd: GroupsCmd,
    },
    /// Approvals of updates for a group, and the rules that approve on their own: list,
    /// add, revoke, rules.
    Approvals {
        #[command(flatten)]
        conn: Conn,
        #[command(subcommand)]
        cmd: ApprovalsCmd,
    },
    /// Manifests: a group's approvals frozen into exact versions: list, show, create.
    Manifests {
        #[command(flatten)]
        conn: Conn,
        #[command(subcommand)]
        cmd: ManifestsCmd,
    },
    /// Deployments: a manifest installed on groups in rings gated on health: list,
    /// show, hosts, events, create, pause, resume, cancel.
    Deployments {
        #[command(flatten)]
        conn: Conn,
        /// Print the API's JSON (same as --output json).
        #[arg(long, global = true)]
        json: bool,
        #[command(subcommand)]
        cmd: DeploymentsCmd,
    },
    /// Users of the organisation and their roles: list, add, show, set-role, disable,
    /// passwd.
    Users {
        #[command(flatten)]
        conn: Conn,
        #[command(subcommand)]
        cmd: UsersCmd,
    },
    /// API tokens: list, create (read-only or read-write, with an expiry), revoke.
    Tokens {
        #[command(flatten)]
        conn: Conn,
        #[command(subcommand)]
        cmd: TokensCmd,
    },
    /// Maintenance windows per group: list, show, create, update, delete, next.
    Windows {
        #[command(flatten)]
        conn: Conn,
        #[command(subcommand)]
        cmd: WindowsCmd,
    },
    /// Who the token is: user, role, organisation and the token's scope.
    Whoami {
        #[command(flatten)]
        conn: Conn,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page of patchctl and every subcommand (roff).
    Man,
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
        Cmd::Webhooks { conn, cmd } => cmd::webhooks::run(&conn, cmd).await,
        Cmd::Release { conn, cmd } => cmd::release::run(&conn, cmd).await,
        Cmd::Settings { conn, cmd } => cmd::settings::run(&conn, cmd).await,
        Cmd::Exceptions { conn, cmd } => cmd::compliance::exceptions(&conn, cmd).await,
        Cmd::Deadlines { conn, cmd } => cmd::compliance::deadlines(&conn, cmd).await,
        Cmd::Compliance { conn, args } => cmd::compliance::compliance(&conn, args).await,
        Cmd::Commands { conn, cmd } => cmd::commands::run(&conn, cmd).await,
        Cmd::Audit { conn, cmd } => cmd::audit::run(&conn, cmd).await,
        Cmd::Vulndb { db, output, cmd } => cmd::vulndb::run(&db, output, cmd).await,
        Cmd::Vulns { conn, db, cmd } => cmd::vulns::run(&conn, &db, cmd).await,
        Cmd::Users { conn, cmd } => cmd::users::run(&conn, cmd).await,
        Cmd::Groups { conn, cmd } => cmd::groups::run(&conn, cmd).await,
        Cmd::Approvals { conn, cmd } => cmd::approvals::run(&conn, cmd).await,
        Cmd::Manifests { conn, cmd } => cmd::approvals::run_manifests(&conn, cmd).await,
        Cmd::Deployments { conn, json, cmd } => cmd::deployments::run(&conn, json, cmd).await,
        Cmd::Tokens { conn, cmd } => cmd::tokens::run(&conn, cmd).await,
        Cmd::Windows { conn, cmd } => cmd::windows::run(&conn, cmd).await,
        Cmd::Whoami { conn } => cmd::users::whoami(&conn).await,
        Cmd::Completions { shell } => {
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "patchctl", &mut buf);
            output::raw(&buf)
        }
        Cmd::Man => output::raw(&man_page()?),
    }
}

/// The man page of `patchctl` followed by one section per subcommand, nested, so that
/// one page covers every command (`patchctl man | man -l -`).
fn man_page() -> anyhow::Result<Vec<u8>> {
    fn add(cmd: &clap::Command, prefix: &str, out: &mut Vec<u8>) -> anyhow::Result<()> {
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            // clap takes a command's name as `&'static str` (without its `string`
            // feature); the page is printed once and the process ends.
            let name: &'static str =
                Box::leak(format!("{prefix} {}", sub.get_name()).into_boxed_str());
            let page = sub.clone().name(name).bin_name(name);
            clap_mangen::Man::new(page).render(out)?;
            add(sub, name, out)?;
        }
        Ok(())
    }
    let cmd = Cli::command();
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut out)?;
    add(&cmd, "patchctl", &mut out)?;
    Ok(out)
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

    /// Every command and subcommand, with its path (`patchctl users add`).
    fn all_commands() -> Vec<(String, clap::Command)> {
        use clap::CommandFactory;
        fn walk(c: &clap::Command, path: &str, out: &mut Vec<(String, clap::Command)>) {
            for s in c.get_subcommands() {
                let p = format!("{path} {}", s.get_name());
                out.push((p.clone(), s.clone()));
                walk(s, &p, out);
            }
        }
        let mut out = Vec::new();
        walk(&super::Cli::command(), "patchctl", &mut out);
        out
    }

    #[test]
    fn every_subcommand_has_help_text() {
        let all = all_commands();
        assert!(all.len() > 40, "{}", all.len());
        for (path, c) in &all {
            let about = c.get_about().map(|a| a.to_string()).unwrap_or_default();
            assert!(!about.trim().is_empty(), "{path} has no --help text");
            for a in c.get_arguments().filter(|a| !a.is_hide_set()) {
                if a.get_id() == "help" || a.get_id() == "version" {
                    continue;
                }
                assert!(
                    a.get_help()
                        .is_some_and(|h| !h.to_string().trim().is_empty()),
                    "{path}: argument {} has no help text",
                    a.get_id()
                );
            }
        }
    }

    #[test]
    fn the_man_page_covers_every_command() {
        let page = String::from_utf8(super::man_page().unwrap()).unwrap();
        for (path, _) in all_commands() {
            if path.ends_with(" help") {
                continue;
            }
            assert!(
                page.contains(&path.replace('-', "\\-")),
                "{path} is not in the man page"
            );
        }
    }

    #[test]
    fn completions_name_the_new_commands() {
        use clap::CommandFactory;
        for shell in [
            clap_complete::Shell::Bash,
            clap_complete::Shell::Zsh,
            clap_complete::Shell::Fish,
        ] {
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut super::Cli::command(), "patchctl", &mut buf);
            let s = String::from_utf8(buf).unwrap();
            for word in [
                "users",
                "tokens",
                "whoami",
                "set-role",
                "password-stdin",
                "deployments",
                "max-failed-percent",
            ] {
                assert!(s.contains(word), "{shell}: {word} missing");
            }
        }
    }
}
