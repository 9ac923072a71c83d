//! The package scan: system identification plus the full inventory, exactly as sent.

use chrono::Utc;
use patchctl_proto::agent::InventoryUpload;

use crate::exec::{ExecRequest, Executor};
use crate::inventory::{PackageManager, dpkg, rpm};

/// Collects the inventory upload for this system.
pub async fn collect(
    pm: Option<PackageManager>,
    exec: &dyn Executor,
) -> Result<InventoryUpload, String> {
    let scanned_at = Utc::now();
    let system = tokio::task::spawn_blocking(crate::sysinfo::collect)
        .await
        .map_err(|e| e.to_string())?;
    let packages = match pm {
        None => Vec::new(),
        Some(PackageManager::Dpkg) => {
            let parsed = tokio::task::spawn_blocking(|| {
                dpkg::read_status(std::path::Path::new(dpkg::STATUS_PATH))
            })
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("cannot read {}: {e}", dpkg::STATUS_PATH))?;
            for reason in &parsed.skipped {
                tracing::warn!(%reason, "skipped a malformed dpkg status entry");
            }
            parsed.packages
        }
        Some(PackageManager::Rpm) => {
            let out = exec
                .run(ExecRequest::from_argv(&rpm::query_all_argv()))
                .await
                .map_err(|e| e.to_string())?;
            if !out.success() {
                return Err(format!(
                    "rpm -qa exited with {:?}: {}",
                    out.code,
                    crate::ops::truncate(out.stderr.trim(), 500)
                ));
            }
            let parsed = rpm::parse_qa(&out.stdout);
            for reason in &parsed.skipped {
                tracing::warn!(%reason, "skipped a malformed rpm line");
            }
            parsed.packages
        }
    };
    Ok(InventoryUpload {
        scanned_at,
        system,
        package_manager: pm.map(|p| p.as_str().to_owned()),
        packages,
    })
}
