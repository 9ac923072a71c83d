//! `patchctl server`: the platform from a configuration file, or a development platform
//! with its own agent (`--dev`).

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use patchctl_server::Settings;
use patchctl_server::bootstrap;

use crate::output;

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

/// The accept backlog asked for. The kernel cuts it to `net.core.somaxconn` (4096 by
/// default since Linux 5.4): tokio's `TcpListener::bind` asks for 1024, too few for a
/// fleet reconnecting at once after a restart. Raise `net.core.somaxconn` (and
/// `net.ipv4.tcp_max_syn_backlog`) on the host to use more (docs/benchmarks.md, issue 16).
const LISTEN_BACKLOG: u32 = 65_535;

/// Binds `addr` (with `SO_REUSEADDR`, as tokio's `bind` does) and listens with
/// [`LISTEN_BACKLOG`].
fn listen(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Heartbeat interval of the local agent in `--dev` mode: short, so that queued
/// commands run within seconds.
const DEV_HEARTBEAT_SECS: u64 = 5;

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

/// What `--dev` says about the vulnerability feeds at start.
fn feeds_banner(settings: &Settings, data_dir: &std::path::Path) -> String {
    let feeds = patchctl_server::vulnsync::effective_feeds(&settings.vuln_feeds);
    if !settings.vuln_sync {
        return "\nVulnerability feeds: automatic sync is off (vuln_sync: false); import files with `patchctl vulndb import` or run `patchctl vulndb sync`.\n".to_owned();
    }
    let hours = settings.vuln_sync_interval_secs as f64 / 3600.0;
    format!(
        "\nVulnerability feeds: {} feeds, synced by the platform itself every {hours:.1} h (first round in about {} s, in the background). \
         If they cannot be reached the log says so once and the current data is kept; `patchctl vulndb status --feeds --config {}/server.json` shows each feed. \
         Off: \"vuln_sync\": false in server.json, or PATCHCTL_VULN_SYNC=false.\n",
        feeds.len(),
        patchctl_server::vulnsync::schedule::FIRST_DELAY.as_secs(),
        data_dir.display(),
    )
}

/// Runs the platform from a config file or in development mode.
pub async fn run(args: ServerArgs) -> anyhow::Result<()> {
    if !args.dev {
        let path = args.config.context("--config FILE or --dev is required")?;
        let settings = Settings::load(&path)?;
        let listener = listen(settings.listen)
            .with_context(|| format!("cannot listen on {}", settings.listen))?;
        tracing::info!(listen = %settings.listen, "platform listening (TLS 1.3)");
        patchctl_server::launch_with_listener(settings, listener, shutdown_signal()).await?;
        return Ok(());
    }
    let mut setup = bootstrap::dev_setup(&args.data_dir, args.listen, DEV_HEARTBEAT_SECS).await?;
    // The feed sync settings follow the environment too (PATCHCTL_VULN_SYNC=false,
    // PATCHCTL_VULN_FEEDS, PATCHCTL_VULN_SYNC_INTERVAL_SECS), over the directory's
    // server.json, and so does the plain metrics address (PATCHCTL_METRICS_LISTEN); the
    // rest of the dev settings stay as set up.
    let layered = Settings::load(&setup.info.server_config)?;
    setup.settings.vuln_sync = layered.vuln_sync;
    setup.settings.vuln_feeds = layered.vuln_feeds;
    setup.settings.vuln_sync_interval_secs = layered.vuln_sync_interval_secs;
    setup.settings.metrics_listen = layered.metrics_listen;
    // The policy tick: 5 s as set up, or PATCHCTL_POLICY_TICK_SECS.
    setup.settings.policy_tick_secs = layered.policy_tick_secs;
    let info = &setup.info;
    output::text(&format!(
        "PatchCTL development platform ({} data directory {})\n\n  URL:            {}\n  CA file:        {}\n  API token:      {}\n  Enrollment key: {}\n\nDashboard login:\n  URL:            {}/ui/\n  User:           {}\n  Password:       {}\n\nTry:\n  export PATCHCTL_SERVER={} PATCHCTL_CA_FILE={} PATCHCTL_TOKEN={}\n  patchctl hosts list\n  patchctl commands queue --host $(hostname) health_check --wait 30\n\nThe same values are in {}/dev.json (mode 0600). Stop with Ctrl-C.\n",
        if setup.fresh { "new" } else { "reusing" },
        args.data_dir.display(),
        info.url,
        info.ca_file.display(),
        info.token.expose(),
        info.enrollment_key.expose(),
        info.url,
        info.admin_user,
        info.admin_password
            .as_ref()
            .map(|p| p.expose())
            .unwrap_or("(see dev.json)"),
        info.url,
        info.ca_file.display(),
        info.token.expose(),
        args.data_dir.display(),
    ));
    output::text(&feeds_banner(&setup.settings, &args.data_dir));
    if let Some(w) = &setup.key_warning {
        output::text(&format!("\nWARNING: {w}\n"));
        output::note(&format!("patchctl server --dev: {w}"));
    }
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
                if matches!(e, patchctl_agent::runtime::AgentError::Revoked { .. }) {
                    output::note(&format!(
                        "The local agent's host was revoked; it stays out. To bring this machine back as a new host: patchctl-agent reenroll --config {}, then restart patchctl server --dev.",
                        agent_config.display()
                    ));
                }
            }
        });
    }
    server.await.context("server task failed")??;
    Ok(())
}
