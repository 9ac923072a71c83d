//! Looking up what a request names: a host by id or name.

use patchctl_storage::HostRow;
use uuid::Uuid;

use crate::AppState;
use crate::error::ApiError;

/// Resolves a host given as id or host name, within the organisation.
pub(crate) async fn resolve_host(
    st: &AppState,
    org: Uuid,
    host: &str,
) -> Result<HostRow, ApiError> {
    if let Ok(id) = Uuid::parse_str(host) {
        if let Some(h) = st.store.host(org, id).await? {
            return Ok(h);
        }
    }
    let mut found = st.store.hosts_by_name(org, host).await?;
    match found.len() {
        0 => Err(ApiError::not_found(format!(
            "no host {host:?}; `patchctl hosts list` shows the hosts you can see"
        ))),
        1 => Ok(found.remove(0)),
        _ => Err(ApiError::conflict(format!(
            "{} hosts are named {host:?} ({}); give the host id instead",
            found.len(),
            found
                .iter()
                .map(|h| h.id.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}
