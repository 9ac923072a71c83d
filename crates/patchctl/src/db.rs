//! How the offline commands (`vulndb ...`, `vulns check`) reach the database directly:
//! [`Db`], from `--database-url` or the server configuration.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::Args;
use patchctl_storage::Storage;

/// Default server configuration, where `--database-url` is not given.
const DEFAULT_SERVER_CONFIG: &str = "/etc/patchctl/server.json";
/// The development platform's configuration (`patchctl server --dev`).
const DEV_SERVER_CONFIG: &str = "patchctl-dev/server.json";

/// Which database the offline commands work on.
#[derive(Args, Clone, Debug)]
pub struct Db {
    /// Database URL: sqlite://PATH or postgres://USER@HOST/DB. Default: the one in the
    /// server configuration (--config).
    #[arg(long, env = "PATCHCTL_DATABASE_URL", global = true)]
    pub database_url: Option<String>,
    /// Server configuration whose database to use (default /etc/patchctl/server.json,
    /// else ./patchctl-dev/server.json).
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
}

impl Db {
    /// The server configuration named or found, if any.
    pub fn settings(&self) -> anyhow::Result<Option<patchctl_server::Settings>> {
        let candidates: Vec<PathBuf> = match &self.config {
            Some(c) => vec![c.clone()],
            None => vec![DEFAULT_SERVER_CONFIG.into(), DEV_SERVER_CONFIG.into()],
        };
        for c in &candidates {
            if c.exists() || self.config.is_some() {
                return Ok(Some(patchctl_server::Settings::load(c)?));
            }
        }
        Ok(None)
    }

    fn url(&self) -> anyhow::Result<String> {
        if let Some(url) = &self.database_url {
            return Ok(url.clone());
        }
        if let Some(s) = self.settings()? {
            return Ok(s.database_url);
        }
        bail!(
            "no database given: pass --database-url sqlite://PATH (or postgres://...), or --config with the server's configuration (none at {DEFAULT_SERVER_CONFIG} or ./{DEV_SERVER_CONFIG})"
        )
    }

    /// Opens the database.
    pub async fn open(&self) -> anyhow::Result<Arc<dyn Storage>> {
        let url = self.url()?;
        patchctl_storage::open(&url)
            .await
            .with_context(|| "cannot open the database".to_string())
    }
}
