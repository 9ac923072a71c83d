//! `patchctl server` and `patchctl admin`.

use anyhow::Context;
use patchctl_server::Settings;
use patchctl_server::bootstrap;

use crate::ServerArgs;

/// Heartbeat interval of the local agent in `--dev` mode: short, so that queued
/// commands run within seconds.
const DEV_HEARTBEAT_SECS: u64 = 5;

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Runs the platform from a config file or in development mode.
pub async fn run(args: ServerArgs) -> anyhow::Result<()> {
    init_logging();
    if !args.dev {
        let path = args.config.context("--config FILE or --dev is required")?;
        let settings = Settings::load(&path)?;
        let listener = tokio::net::TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("cannot listen on {}", settings.listen))?;
        tracing::info!(listen = %settings.listen, "platform listening (TLS 1.3)");
        return patchctl_server::launch_with_listener(settings, listener, shutdown_signal()).await;
    }
    let setup = bootstrap::dev_setup(&args.data_dir, args.listen, DEV_HEARTBEAT_SECS).await?;
    let info = &setup.info;
    println!(
        "PatchCTL development platform ({} data directory {})\n\n  URL:            {}\n  CA file:        {}\n  API token:      {}\n  Enrollment key: {}\n\nTry:\n  export PATCHCTL_SERVER={} PATCHCTL_CA_FILE={} PATCHCTL_TOKEN={}\n  patchctl hosts list\n  patchctl commands queue --host $(hostname) health_check --wait 30\n\nThe same values are in {}/dev.json (mode 0600). Stop with Ctrl-C.",
        if setup.fresh { "new" } else { "reusing" },
        args.data_dir.display(),
        info.url,
        info.ca_file.display(),
        info.token.expose(),
        info.enrollment_key.expose(),
        info.url,
        info.ca_file.display(),
        info.token.expose(),
        args.data_dir.display(),
    );
    let agent_config = info.agent_config.clone();
    let server = tokio::spawn(patchctl_server::launch_with_listener(
        setup.settings,
        setup.listener,
        shutdown_signal(),
    ));
    if !args.no_agent {
        let cfg = patchctl_agent::config::AgentConfig::load(&agent_config)?;
        let agent = patchctl_agent::runtime::Agent::new(cfg)?;
        tokio::spawn(async move {
            if let Err(e) = agent.run(shutdown_signal()).await {
                tracing::error!(error = %e, "local agent stopped");
            }
        });
    }
    server.await.context("server task failed")?
}

/// `patchctl admin init`.
pub async fn admin_init(database_url: &str, org: &str) -> anyhow::Result<()> {
    let store = patchctl_storage::open(database_url).await?;
    let s = bootstrap::create_org(store.as_ref(), org).await?;
    let doc = serde_json::json!({
        "org": s.org,
        "token": s.token.expose(),
        "enrollment_key": s.enrollment_key.expose(),
    });
    println!("{}", serde_json::to_string_pretty(&doc)?);
    eprintln!("Store these now: only their hashes are kept.");
    Ok(())
}
