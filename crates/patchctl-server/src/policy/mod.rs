//! Patch policy, the service functions the API and the dashboard share: groups and host
//! tags (`groups`), approvals, rules and manifests (`approvals`), deployments in rings
//! (`deployments`). Each function checks what the request holds, says what was wrong in
//! an [`ApiError`](crate::error::ApiError), and returns the view both callers show.

pub mod approvals;
pub mod deployments;
pub mod events;
pub mod groups;
pub mod signatures;

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::AppState;

/// How often the policy tick runs when the settings do not say (`policy_tick_secs`).
pub const TICK: Duration = Duration::from_secs(15);
/// How often the approval rules run (they look at every host of their groups).
pub const RULES_EVERY: chrono::Duration = chrono::Duration::minutes(10);

/// The platform's policy work at `now`: the approval rules and the `deadline.missed`
/// announcements when they are due (every [`RULES_EVERY`]), then every running or
/// paused deployment advanced. Tests call it with the time they choose. `last_rules` is
/// when the rules last ran in this process.
pub async fn tick(st: &AppState, now: DateTime<Utc>, last_rules: &mut Option<DateTime<Utc>>) {
    if last_rules.is_none_or(|last| now - last >= RULES_EVERY) {
        match approvals::run_rules(st, now).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(approved = n, "approval rules ran"),
            Err(e) => tracing::warn!("approval rules failed: {}", e.message),
        }
        match events::announce_missed_deadlines(st, now).await {
            0 => {}
            n => tracing::info!(announced = n, "missed remediation deadlines announced"),
        }
        *last_rules = Some(now);
    }
    deployments::advance_all(st, now).await;
}

/// Starts the policy tick on the current runtime.
pub fn spawn(st: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut last_rules = None;
        let secs = st.settings.policy_tick_secs;
        let mut every = tokio::time::interval(if secs == 0 {
            TICK
        } else {
            Duration::from_secs(secs)
        });
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            tick(&st, Utc::now(), &mut last_rules).await;
        }
    })
}
