//! Reboots (issue 14 §5), the service the API, the dashboard and the CLI's route share:
//! what agents report (heartbeats through the group commit, scans here) and the hosts
//! that need a reboot, fleet-wide, longest waiting first.

use chrono::{DateTime, Utc};
use patchctl_proto::agent::RebootState;
use patchctl_proto::policy::reboot::{HostReboot, RebootHost};
use patchctl_storage::{HostBoot, RebootLine, RebootReport, StorageError};
use uuid::Uuid;

use crate::AppState;

/// What a heartbeat or a scan said, as storage records it.
pub fn report(state: Option<RebootState>, booted_at: Option<DateTime<Utc>>) -> RebootReport {
    RebootReport {
        required: state.map(|s| (s.required, s.reasons)),
        booted_at,
    }
}

/// A host's stored reboot state as the API shows it.
pub fn host_reboot(b: &HostBoot) -> HostReboot {
    HostReboot {
        required: b.reboot_required,
        reasons: b.reasons.clone(),
        since: b.since,
        booted_at: b.booted_at,
    }
}

/// One line of the list as the API shows it.
pub fn reboot_host(l: RebootLine) -> RebootHost {
    RebootHost {
        id: l.host_id,
        hostname: l.hostname,
        os: l.os,
        last_seen: l.last_seen,
        reboot: host_reboot(&l.boot),
    }
}

/// A page of the organisation's hosts that need a reboot: at most `limit` after
/// `after` (`since`, host id of the previous page's last), whether there are more, and
/// how many in all.
pub async fn page(
    st: &AppState,
    org_id: Uuid,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: u32,
) -> Result<(Vec<RebootHost>, bool, u64), StorageError> {
    let (mut lines, total) = st.store.reboot_page(org_id, after, limit + 1).await?;
    let more = lines.len() > limit as usize;
    lines.truncate(limit as usize);
    Ok((lines.into_iter().map(reboot_host).collect(), more, total))
}

/// The keyset position of a line (what the next page starts after).
pub fn position(h: &RebootHost) -> (DateTime<Utc>, Uuid) {
    (h.reboot.since.unwrap_or(DateTime::<Utc>::UNIX_EPOCH), h.id)
}
