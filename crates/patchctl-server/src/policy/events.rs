//! Webhook events the policy tick announces: `deadline.missed`, once per finding whose
//! remediation deadline passed unfixed and not excepted. Which findings are overdue is
//! the CVE engine's (the same math as the compliance views); that a finding was
//! announced is `finding_first_seen.deadline_missed_at`, marked in the transaction that
//! queues the event, so a restart or a second platform node does not announce it again.
//! It runs with the approval rules, every [`super::RULES_EVERY`] (a pass over every
//! organisation's findings).

use chrono::{DateTime, Utc};

use crate::AppState;
use crate::engine::EngineError;

/// Announces every organisation's findings overdue at `now` not announced before;
/// returns how many were announced. An organisation that fails is logged and skipped
/// (the next run catches up); an engine still loading announces nothing.
pub async fn announce_missed_deadlines(st: &AppState, now: DateTime<Utc>) -> u64 {
    if !st.vulns.is_ready() {
        return 0;
    }
    let mut announced = 0;
    for org in st.vulns.org_ids().await {
        let ctx = match st.vulns.deadlines(org, now).await {
            Ok(ctx) => ctx,
            Err(e) => {
                tracing::warn!(%org, error = %e, "could not read the deadline policy");
                continue;
            }
        };
        let missed = match st.vulns.missed_deadlines(org, &ctx).await {
            Ok(m) => m,
            Err(EngineError::Loading) => return announced,
            Err(e) => {
                tracing::warn!(%org, error = %e, "could not compute the overdue findings");
                continue;
            }
        };
        match st
            .store
            .announce_missed_deadlines(org, &missed, now.timestamp_millis())
            .await
        {
            Ok(n) => announced += n,
            Err(e) => tracing::warn!(%org, error = %e, "could not announce missed deadlines"),
        }
    }
    announced
}
