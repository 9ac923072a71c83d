//! `GET /ui/`: the fleet overview. Hosts by status, updates and agent versions are
//! counted by the database ([`patchctl_storage::HostStore::fleet_counts`]); the
//! vulnerable hosts by severity come from the CVE engine's summary; the recent commands
//! are the newest of the organisation.

use askama::Template;
use axum::extract::State;
use patchctl_proto::api::CommandRecord;
use patchctl_storage::FleetCounts;
use patchctl_vuln::fleet::Summary;

use super::{Chrome, Page, UiError, UiSession};
use crate::AppState;

/// Commands the overview lists.
const RECENT_COMMANDS: u32 = 10;

/// The fleet overview page.
#[derive(Template)]
#[template(path = "overview.html")]
pub struct OverviewPage {
    /// The layout.
    pub chrome: Chrome,
    /// Hosts by status, updates, agent versions.
    pub counts: FleetCounts,
    /// The CVE summary (`None` while the engine loads).
    pub vulns: Option<Summary>,
    /// The newest commands, with the host name of each.
    pub commands: Vec<(CommandRecord, String)>,
    /// Hosts that need a reboot.
    pub reboots: u64,
}

/// `GET /ui/`: the fleet overview.
pub async fn overview(
    State(st): State<AppState>,
    session: UiSession,
) -> Result<Page<OverviewPage>, UiError> {
    let org = session.principal.org_id;
    let offline_after =
        chrono::Duration::from_std(st.settings.offline_after()).unwrap_or(chrono::Duration::MAX);
    // Both served stale while one recompute runs: crate::views.
    let counts = (*st.views.fleet_counts(&st.store, org, offline_after).await?).clone();
    let vulns = if st.vulns.is_ready() {
        st.views
            .summary(&st.vulns, org)
            .await
            .ok()
            .map(|s| (*s).clone())
    } else {
        None
    };
    let recent = st.store.list_commands(org, None, RECENT_COMMANDS).await?;
    let mut commands = Vec::with_capacity(recent.len());
    for c in recent {
        let name = st
            .store
            .host(org, c.host_id)
            .await?
            .map(|h| h.hostname)
            .unwrap_or_else(|| c.host_id.to_string());
        commands.push((c, name));
    }
    let reboots = st.store.reboot_count(org).await?;
    Ok(Page(OverviewPage {
        chrome: session.chrome("overview"),
        counts,
        vulns,
        commands,
        reboots,
    }))
}
