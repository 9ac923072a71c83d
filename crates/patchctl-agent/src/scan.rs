//! The package scan: system identification plus the full inventory, exactly as sent.

use chrono::Utc;
use patchctl_proto::agent::InventoryUpload;

use crate::exec::Executor;
use crate::pkgmgr::Backend;

/// Collects the inventory upload for this system.
pub async fn collect(
    backend: Option<&dyn Backend>,
    exec: &dyn Executor,
) -> Result<InventoryUpload, String> {
    let scanned_at = Utc::now();
    let system = tokio::task::spawn_blocking(crate::sysinfo::collect)
        .await
        .map_err(|e| e.to_string())?;
    let packages = match backend {
        None => Vec::new(),
        Some(b) => b.inventory(exec).await?,
    };
    Ok(InventoryUpload {
        scanned_at,
        system,
        package_manager: backend.map(|b| b.family().database().as_str().to_owned()),
        packages,
    })
}
