//! `patchctl-agent`: parse arguments, set up logging, load the config, run.

use std::process::ExitCode;

use patchctl_agent::ceiling::{Ceiling, DEFAULT_CEILING};
use patchctl_agent::cli::{Cmd, USAGE};
use patchctl_agent::config::AgentConfig;
use patchctl_agent::runtime::{AgentError, EXIT_REVOKED, Stopped};

/// The agent's memory ceiling: an allocation past it ends the process with
/// `ceiling::EXIT_MEMORY_CEILING` (75), and systemd restarts it.
#[global_allocator]
static ALLOCATOR: Ceiling = Ceiling::new(DEFAULT_CEILING);

fn main() -> ExitCode {
    ALLOCATOR.detect_journald();
    let cmd = match patchctl_agent::cli::parse(std::env::args_os().skip(1)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("patchctl-agent: {e}");
            return ExitCode::from(2);
        }
    };
    match run(cmd) {
        Ok(code) => code,
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

fn run(cmd: Cmd) -> anyhow::Result<ExitCode> {
    match cmd {
        Cmd::Version => {
            println!("patchctl-agent {}", patchctl_agent::VERSION);
        }
        Cmd::Help => print!("{USAGE}"),
        Cmd::SelfTest => {
            let t = patchctl_agent::selfupdate::self_test();
            println!("{}", serde_json::to_string(&t)?);
            if t.roots == 0 {
                eprintln!(
                    "patchctl-agent: this binary trusts no release root (build it with PATCHCTL_RELEASE_ROOTS=<root .pub files>)"
                );
                return Ok(ExitCode::FAILURE);
            }
        }
        Cmd::Roots => {
            let roots = patchctl_agent::selfupdate::builtin_roots();
            if roots.is_empty() {
                println!(
                    "no release root: this binary refuses every self-update (build with PATCHCTL_RELEASE_ROOTS=<root .pub files>)"
                );
            }
            for (hex, source) in roots {
                let id = patchctl_release::PublicKey::from_hex(hex)
                    .map(|k| k.key_id())
                    .unwrap_or_else(|| "invalid".into());
                println!("{id}  ed25519:{hex}  {source}");
            }
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
        }
        Cmd::Doctor { config, json } => {
            let report = runtime()?.block_on(patchctl_agent::doctor::run(&config));
            let mut out = std::io::stdout().lock();
            if json {
                patchctl_agent::doctor::output::write_json(&mut out, &report)?
            } else {
                let color = std::io::IsTerminal::is_terminal(&std::io::stdout());
                patchctl_agent::doctor::output::write_text(&mut out, &report, color)?
            }
            if report.failed() {
                return Ok(ExitCode::FAILURE);
            }
        }
        Cmd::Reenroll { config } => {
            let cfg = AgentConfig::load(&config)?;
            let gone = patchctl_agent::state::forget_revoked_identity(cfg.dir())?;
            let what = match (gone.credential, gone.marker) {
                (true, true) => "removed the revoked marker and the stored credential",
                (true, false) => "removed the stored credential (there was no revoked marker)",
                (false, true) => "removed the revoked marker (there was no stored credential)",
                (false, false) => "nothing to remove: no credential and no revoked marker",
            };
            println!(
                "{}: {what}.\nNext: restart the agent (systemctl restart patchctl). It enrolls with the license key in {} as a new host on {}; the revoked host stays revoked there.",
                cfg.dir().display(),
                config.display(),
                cfg.server_url
            );
        }
        Cmd::Scan { print } => {
            let state = runtime()?.block_on(patchctl_agent::scan::collect_local())?;
            println!("{}", patchctl_agent::scan::preview(&state, print)?);
        }
        Cmd::Uninstall { purge, yes } => return uninstall(purge, yes),
        Cmd::Run { config } => {
            let cfg = AgentConfig::load(&config)?;
            patchctl_agent::logging::init(cfg.log_dir.as_deref())?;
            if std::env::var_os(patchctl_agent::selfupdate::TRIAL_ENV).is_some() {
                // A new binary on trial: reach the platform once, then exit.
                let agent = patchctl_agent::runtime::Agent::new(cfg)?;
                return match runtime()?.block_on(agent.trial()) {
                    Ok(()) => Ok(ExitCode::SUCCESS),
                    Err(e) => {
                        eprintln!("patchctl-agent: {e}");
                        Ok(ExitCode::FAILURE)
                    }
                };
            }
            let stopped = runtime()?.block_on(async move {
                let agent = patchctl_agent::runtime::Agent::new(cfg)?;
                agent.run(shutdown_signal()).await
            });
            match stopped {
                Ok(Stopped::Shutdown) => {}
                Ok(Stopped::HandOver(exe)) => {
                    let e = patchctl_agent::exec::own::replace_process(&exe);
                    return Err(anyhow::anyhow!(
                        "cannot hand over to the new binary {}: {e}",
                        exe.display()
                    ));
                }
                Err(e @ AgentError::Revoked { .. }) => {
                    eprintln!("patchctl-agent: {e}");
                    return Ok(ExitCode::from(EXIT_REVOKED));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `patchctl-agent uninstall`: shows the plan; runs it only with `--yes` (else exit 2).
fn uninstall(purge: bool, yes: bool) -> anyhow::Result<ExitCode> {
    use patchctl_agent::uninstall::{self, Facts};
    uninstall::require_root()?;
    let ex = patchctl_agent::exec::ProcessExecutor::new();
    let rt = runtime()?;
    let facts = Facts::gather();
    let method = rt.block_on(uninstall::detect(&ex, &facts))?;
    let plan = uninstall::plan(method, purge, &facts);
    if plan.steps.is_empty() {
        println!("patchctl-agent uninstall: nothing to remove, no file of the agent is here");
        return Ok(ExitCode::SUCCESS);
    }
    let flag = if purge { " --purge" } else { "" };
    println!("patchctl-agent uninstall{flag}: the agent was installed {method}");
    if !yes {
        for (i, step) in plan.steps.iter().enumerate() {
            println!("  {}. {step}", i + 1);
        }
        for k in &plan.kept {
            println!("  kept: {k}");
        }
        println!("nothing was changed: run again with --yes to do this");
        return Ok(ExitCode::from(2));
    }
    // Every step is an audit event: to the journal where there is one, else stderr.
    patchctl_agent::logging::init(None)?;
    rt.block_on(uninstall::execute(&plan, &ex, |step, outcome| {
        let mut lines = outcome.lines();
        println!("  {step}: {}", lines.next().unwrap_or_default());
        for l in lines {
            println!("      {l}");
        }
    }))?;
    for k in &plan.kept {
        println!("  kept: {k}");
    }
    println!("the agent is uninstalled");
    Ok(ExitCode::SUCCESS)
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
