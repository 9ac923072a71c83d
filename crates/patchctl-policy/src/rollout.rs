//! Staged rollouts, pure: the order a deployment's hosts take (a stable hash of the
//! deployment and the host, so that the canary is a stable, unbiased sample and the
//! same deployment always cuts the same rings), the cut into rings, the failure
//! threshold of a ring and the health gate of one host.

use patchctl_proto::command::{HealthReport, HealthStatus};
use patchctl_proto::policy::deployments::{RingSpec, ring_ends};
use uuid::Uuid;

/// A stable 64-bit key of `host` in `deployment` (FNV-1a over both ids, then a
/// SplitMix64 finaliser so that neighbouring ids spread). Never changes between
/// releases: a deployment's rings are a function of its id and its hosts.
pub fn host_key(deployment: Uuid, host: Uuid) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in deployment.as_bytes().iter().chain(host.as_bytes()) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// `hosts` in rollout order: by [`host_key`], ties (never in practice) by id.
pub fn order_hosts(deployment: Uuid, hosts: &[Uuid]) -> Vec<Uuid> {
    let mut keyed: Vec<(u64, Uuid)> = hosts
        .iter()
        .map(|h| (host_key(deployment, *h), *h))
        .collect();
    keyed.sort_unstable();
    keyed.dedup_by(|a, b| a.1 == b.1);
    keyed.into_iter().map(|(_, h)| h).collect()
}

/// The ring of every host, in rollout order: `(host, ring index)`. The hosts are
/// deduplicated; `rings` are validated ones (the last is 100 %).
pub fn assign_rings(deployment: Uuid, hosts: &[Uuid], rings: &[RingSpec]) -> Vec<(Uuid, u32)> {
    let ordered = order_hosts(deployment, hosts);
    let ends = ring_ends(ordered.len() as u64, rings);
    let mut ring = 0usize;
    ordered
        .into_iter()
        .enumerate()
        .map(|(i, h)| {
            while ring + 1 < ends.len() && i as u64 >= ends[ring] {
                ring += 1;
            }
            (h, ring as u32)
        })
        .collect()
}

/// Whether `failed` of a ring's `ring_hosts` is past its threshold: more than
/// `max_failed_percent` % of the ring (0 %: the first failure).
pub fn threshold_exceeded(failed: u64, ring_hosts: u64, max_failed_percent: u8) -> bool {
    u128::from(failed) * 100 > u128::from(max_failed_percent) * u128::from(ring_hosts)
}

/// The health gate passed, with what could not be compared, for the host's detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatePassed {
    /// A note for a person when the failed units could not be compared (unknown on
    /// either side), else `None`.
    pub note: Option<String>,
}

/// The health gate of one host after its install: the `health_check` report of the
/// verify run passes when no check failed and no systemd unit is failed that was not
/// failed in the baseline run. `baseline_failed_units` is `None` when the baseline did
/// not know (no systemd); an unknown on either side is not comparable: the gate says so
/// in the note and does not fail on it. `Err` says why it failed, for a person.
pub fn health_gate(
    verify: &HealthReport,
    baseline_failed_units: Option<&[String]>,
) -> Result<GatePassed, String> {
    let failed: Vec<String> = verify
        .checks
        .iter()
        .filter(|c| c.status == HealthStatus::Fail)
        .map(|c| {
            if c.detail.is_empty() {
                c.name.clone()
            } else {
                format!("{} ({})", c.name, c.detail)
            }
        })
        .collect();
    let new_units: Vec<&String> = match (&verify.failed_units, baseline_failed_units) {
        (Some(now), Some(before)) => now.iter().filter(|u| !before.contains(u)).collect(),
        _ => Vec::new(),
    };
    let mut why = Vec::new();
    if !failed.is_empty() {
        why.push(format!("health check failed: {}", failed.join(", ")));
    }
    if !new_units.is_empty() {
        let units: Vec<&str> = new_units.iter().map(|u| u.as_str()).collect();
        why.push(format!(
            "new failed unit{}: {}",
            if units.len() == 1 { "" } else { "s" },
            units.join(", ")
        ));
    }
    if !why.is_empty() {
        return Err(why.join("; "));
    }
    let note = match (&verify.failed_units, baseline_failed_units) {
        (Some(_), Some(_)) => None,
        (None, _) => Some("failed units not compared: systemd could not be asked now".into()),
        (Some(_), None) => Some(
            "failed units not compared: unknown before the install (systemd could not be asked)"
                .into(),
        ),
    };
    Ok(GatePassed { note })
}

/// Whether the baseline `health_check` (before the install) allows the install: no
/// check failed. `Err` says which failed.
pub fn baseline_gate(report: &HealthReport) -> Result<(), String> {
    let failed: Vec<String> = report
        .checks
        .iter()
        .filter(|c| c.status == HealthStatus::Fail)
        .map(|c| format!("{} ({})", c.name, c.detail))
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(failed.join(", "))
    }
}

#[cfg(test)]
mod tests;
