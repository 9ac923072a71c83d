//! The exchanges of a heartbeat: the heartbeat itself (metrics, update steps, the
//! answer's clock), the commands it hands out (admitted, run, their results put in the
//! outbox), the results' delivery, and the trial heartbeat of a new binary.

use std::time::{Duration, Instant};

use chrono::Utc;
use http::Method;
use patchctl_proto::agent::{HeartbeatRequest, HeartbeatResponse, ResultsAck, ResultsUpload};

use super::{Agent, AgentError, Backoff, Failure};
use crate::state;

/// The operation a result came from, as its output shows it (for the audit log).
fn result_kind(r: &patchctl_proto::command::CommandResult) -> &'static str {
    use patchctl_proto::command::ResultOutput;
    match &r.output {
        Some(ResultOutput::Health(_)) => "health_check",
        Some(ResultOutput::PackageInfo(_)) => "get_package_info",
        Some(ResultOutput::Updates(_)) => "check_updates",
        Some(ResultOutput::Install(_)) => "install_updates",
        None => "none",
    }
}

/// A result's status, as the wire names it (for the audit log).
fn result_status(r: &patchctl_proto::command::CommandResult) -> &'static str {
    use patchctl_proto::command::ResultStatus;
    match r.status {
        ResultStatus::Succeeded => "succeeded",
        ResultStatus::Failed => "failed",
        ResultStatus::Rejected => "rejected",
    }
}

impl Agent {
    /// Sends one heartbeat (with the self-update steps not yet delivered) and takes
    /// in the answer's clock; `trial` marks the heartbeat of a binary on trial.
    pub(super) async fn send_heartbeat(
        &mut self,
        trial: bool,
    ) -> Result<HeartbeatResponse, Failure> {
        let update_events = self.updater.events().pending();
        let sent_events = update_events.len();
        let req = HeartbeatRequest {
            agent_version: self.updater.running_version().to_owned(),
            metrics: self.metrics.sample(),
            agent_target: Some(crate::selfupdate::TARGET.into()),
            update_events,
            trial,
            reboot: self.reboot_state.clone(),
            booted_at: crate::boot::booted_at(),
            command_key_id: self.admission.key_id(),
            approvers_serial: self.admission.approvers_serial(),
        };
        let sent = Instant::now();
        let sent_at = Utc::now();
        let resp: HeartbeatResponse = self
            .client
            .json(
                Method::POST,
                "/api/v1/agent/heartbeat",
                self.bearer(),
                Some(&req),
            )
            .await?;
        let rtt = sent.elapsed();
        {
            let mut link = self.link.lock().unwrap_or_else(|e| e.into_inner());
            link.last_contact = Some(Utc::now());
            link.last_rtt = Some(rtt);
            let midpoint = sent_at + chrono::Duration::from_std(rtt / 2).unwrap_or_default();
            link.clock_skew_secs =
                Some((midpoint - resp.server_time).num_milliseconds() as f64 / 1000.0);
        }
        self.set_connected(true, None);
        self.updater.events().delivered(sent_events);
        Ok(resp)
    }

    pub(super) async fn heartbeat(&mut self) -> Result<(), Failure> {
        let resp = self.send_heartbeat(false).await?;
        if self
            .run_commands(&resp.commands, resp.command_key.as_ref())
            .await?
        {
            return Ok(());
        }
        if let Some(offer) = &resp.agent_update
            && !self.stopping.load(std::sync::atomic::Ordering::SeqCst)
        {
            let bearer = self
                .identity
                .as_ref()
                .map(|i| i.credential.expose().to_owned());
            let outcome = self
                .updater
                .apply(offer, &self.client, bearer.as_deref(), &self.stopping)
                .await;
            if let crate::selfupdate::Outcome::HandOver(exe) = outcome {
                return Err(Failure::HandOver(exe));
            }
        }
        Ok(())
    }

    /// Admits and runs `commands` (from a heartbeat or a long-poll) after following the
    /// key announcement that came with them, puts their results in the outbox, delivers
    /// the outbox, and runs a reboot an install scheduled once its result is delivered.
    /// True when that reboot was started (nothing more is done this turn).
    pub(super) async fn run_commands(
        &mut self,
        commands: &[patchctl_proto::command::CommandEnvelope],
        command_key: Option<&patchctl_proto::signing::CommandKeyInfo>,
    ) -> Result<bool, Failure> {
        if let Some(info) = command_key {
            self.admission.follow(info);
        }
        for (i, env) in commands.iter().enumerate() {
            if self.stopping.load(std::sync::atomic::Ordering::SeqCst) {
                // Leased, not run: the platform delivers them again after the lease.
                tracing::info!(target: "audit", left = commands.len() - i, "stopping: the remaining commands wait for the next start");
                break;
            }
            tracing::info!(target: "audit", command_id = %env.id, kind = %crate::text::truncate(&env.kind, 64), "command received");
            if self.outbox.contains(env.id) {
                tracing::info!(command_id = %env.id, "command already ran; resending its result");
                continue;
            }
            // A full outbox (the platform unreachable for long) takes no new command:
            // no result is ever dropped; the command is delivered again after its lease.
            if let Err(full) = self.outbox.room() {
                tracing::warn!(target: "audit", command_id = %env.id, error = %full, "outbox full: command left for after its lease");
                continue;
            }
            let host = self.host_id().unwrap_or_default();
            let result = match self.admission.admit(env, host, Utc::now()) {
                Ok(signed) => self.ops.handle(&signed).await,
                Err(refusal) => crate::ops::refused(env, &refusal),
            };
            if matches!(&result.output, Some(patchctl_proto::command::ResultOutput::Install(r)) if r.refused.is_empty())
            {
                // Something was installed: the platform gets a fresh inventory now.
                self.rescan = true;
            }
            if let Some(patchctl_proto::command::ResultOutput::Install(r)) = &result.output {
                self.reboot_state = Some(patchctl_proto::agent::RebootState {
                    required: r.reboot_required,
                    reasons: r.reboot_reasons.clone(),
                });
            }
            self.pending_reboot.note(&result);
            if let Err(e) = self.outbox.put(&result) {
                // Kept in memory in its place (`state::outbox`): delivered with the
                // others below, written to disk once the disk takes it again.
                tracing::error!(target: "audit", command_id = %env.id, error = %e, in_memory = self.outbox.in_memory(), "cannot write a result to the outbox on disk; kept in memory until it is delivered or written (lost only if the agent stops first)");
            }
        }
        self.flush_outbox().await?;
        // A scheduled reboot runs only now that its result is delivered (never while
        // stopping: see crate::boot).
        if !self.stopping.load(std::sync::atomic::Ordering::SeqCst)
            && self
                .pending_reboot
                .run_if_due(&self.outbox, self.exec.as_ref())
                .await
        {
            return Ok(true);
        }
        Ok(false)
    }

    /// The trial of a new binary (`PATCHCTL_UPDATE_TRIAL`): heartbeats until one is
    /// answered, within `update_confirm_secs`; no scan, no command. `Ok` means the
    /// binary reaches the platform and its update is confirmed.
    pub async fn trial(mut self) -> Result<(), AgentError> {
        if let Some(marker) = state::load_revoked(self.cfg.dir()) {
            return Err(Self::stopped(marker));
        }
        let deadline = Instant::now() + self.cfg.update_confirm;
        let mut backoff = Backoff::new(Duration::from_secs(5));
        loop {
            match self.send_heartbeat(true).await {
                Ok(_) => {
                    tracing::info!(target: "audit", version = %self.updater.running_version(), "trial: this binary reached the platform");
                    return Ok(());
                }
                Err(Failure::Revoked(message)) => return Err(self.revoked(message)),
                Err(f) => {
                    let wait = backoff.delay();
                    if Instant::now() + wait >= deadline {
                        return Err(AgentError::Trial(format!("{f:?}")));
                    }
                    tracing::warn!(failure = ?f, "trial heartbeat failed; trying again");
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    pub(super) async fn send_results(
        &mut self,
        results: Vec<patchctl_proto::command::CommandResult>,
    ) -> Result<(), Failure> {
        if results.is_empty() {
            return Ok(());
        }
        let kinds: std::collections::HashMap<uuid::Uuid, &'static str> = results
            .iter()
            .map(|r| (r.command_id, result_kind(r)))
            .collect();
        let statuses: std::collections::HashMap<uuid::Uuid, &'static str> = results
            .iter()
            .map(|r| (r.command_id, result_status(r)))
            .collect();
        let upload = ResultsUpload { results };
        let ack: ResultsAck = self
            .client
            .json(
                Method::POST,
                "/api/v1/agent/results",
                self.bearer(),
                Some(&upload),
            )
            .await?;
        for id in &ack.stored {
            let kind = kinds.get(id).copied().unwrap_or("unknown");
            let status = statuses.get(id).copied().unwrap_or("unknown");
            tracing::info!(target: "audit", command_id = %id, kind, status, "result delivered");
        }
        self.outbox.remove(&ack.stored);
        Ok(())
    }

    pub(super) async fn flush_outbox(&mut self) -> Result<(), Failure> {
        let pending = self.outbox.all();
        self.send_results(pending).await
    }
}
