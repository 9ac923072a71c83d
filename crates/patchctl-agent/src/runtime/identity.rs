//! Who the agent is to the platform: enrollment with the license key, the rotation of
//! its credential, and what a revocation does (the marker, the audit error, the stop).

use std::time::Instant;

use chrono::Utc;
use http::Method;
use patchctl_net::client::ClientError;
use patchctl_proto::PROTOCOL_VERSION;
use patchctl_proto::agent::{EnrollRequest, EnrollResponse};
use patchctl_proto::trust::CredentialRotation;

use super::{Agent, AgentError, Failure, ROTATION_RETRY};
use crate::state::{self, Identity, RevokedMarker};

impl Agent {
    pub(super) async fn enroll(&mut self) -> Result<(), Failure> {
        let system = tokio::task::spawn_blocking(crate::sysinfo::collect)
            .await
            .map_err(|e| Failure::Other(e.to_string()))?;
        let system = patchctl_proto::agent::SystemInfo {
            tags: self.cfg.tags.clone(),
            ..system
        };
        let req = EnrollRequest {
            protocol_version: PROTOCOL_VERSION,
            license_key: self.cfg.license_key.clone(),
            agent_version: crate::VERSION.into(),
            system,
        };
        let resp: EnrollResponse = self
            .client
            .json(Method::POST, "/api/v1/agent/enroll", None, Some(&req))
            .await
            .map_err(|e| {
                if e.is_unauthorized() {
                    Failure::Other(format!(
                        "the platform refused the license key ({}); put a valid enrollment key in the config and restart",
                        match &e {
                            ClientError::Status { message, .. } => message.as_str(),
                            _ => "unknown or revoked",
                        }
                    ))
                } else {
                    Failure::from(e)
                }
            })?;
        let id = Identity {
            host_id: resp.host_id,
            credential: resp.credential,
            server_url: self.cfg.server_url.clone(),
            issued_at: Some(Utc::now()),
        };
        state::save_identity(self.cfg.dir(), &id).map_err(|e| {
            Failure::Other(format!(
                "cannot store the credential in {}: {e}",
                self.cfg.dir().display()
            ))
        })?;
        tracing::info!(target: "audit", host_id = %id.host_id, "enrolled with the platform");
        self.admission.enrolled(resp.command_key.as_ref());
        self.identity = Some(id);
        Ok(())
    }

    /// Replaces a credential older than `credential_rotation_days`, after a successful
    /// heartbeat. Only a revocation stops the step: any other failure is logged and
    /// tried again later, and the old credential stays in use (the platform keeps it
    /// valid until the new one is used).
    pub(super) async fn rotate_if_due(&mut self) -> Result<(), Failure> {
        let Some(max_age) = self.cfg.credential_rotation else {
            return Ok(());
        };
        let Some(current) = self.identity.clone() else {
            return Ok(());
        };
        if !current.due_for_rotation(max_age, Utc::now())
            || self.rotation_retry_at.is_some_and(|t| Instant::now() < t)
        {
            return Ok(());
        }
        let answer: Result<CredentialRotation, ClientError> = self
            .client
            .json::<(), _>(
                Method::POST,
                "/api/v1/agent/credential",
                self.bearer(),
                None,
            )
            .await;
        let rotation = match answer.map_err(Failure::from) {
            Ok(r) => r,
            Err(f @ (Failure::Revoked(_) | Failure::Pending)) => return Err(f),
            Err(Failure::Unauthorized | Failure::Other(_) | Failure::HandOver(_)) => {
                tracing::warn!(host_id = %current.host_id, retry_in_secs = ROTATION_RETRY.as_secs(), "credential rotation failed; the current credential stays in use");
                self.rotation_retry_at = Some(Instant::now() + ROTATION_RETRY);
                return Ok(());
            }
        };
        let next = Identity {
            credential: rotation.credential,
            issued_at: Some(rotation.issued_at),
            ..current
        };
        match state::save_identity(self.cfg.dir(), &next) {
            Ok(()) => {
                tracing::info!(target: "audit", host_id = %next.host_id, issued_at = %rotation.issued_at, "credential rotated");
                self.identity = Some(next);
                self.rotation_retry_at = None;
            }
            Err(e) => {
                tracing::error!(target: "audit", host_id = %next.host_id, dir = %self.cfg.dir().display(), error = %e, "cannot store the rotated credential; the current one stays in use (the platform accepts it until the new one is used); free space or fix permissions there");
                self.rotation_retry_at = Some(Instant::now() + ROTATION_RETRY);
            }
        }
        Ok(())
    }

    /// Writes the revoked marker and logs the revocation; the error to stop with.
    pub(super) fn revoked(&self, message: String) -> AgentError {
        let marker = RevokedMarker {
            revoked_at: Utc::now(),
            server_url: self.cfg.server_url.clone(),
            host_id: self.host_id(),
            message,
        };
        if let Err(e) = state::write_revoked(self.cfg.dir(), &marker) {
            tracing::error!(dir = %self.cfg.dir().display(), error = %e, "cannot write the revoked marker; the agent stops anyway, but a restart would ask the platform again");
        }
        Self::stopped(marker)
    }

    /// Logs the audit error of a revoked agent and gives the error to stop with.
    pub(super) fn stopped(marker: RevokedMarker) -> AgentError {
        let host = marker.host_id.map(|h| h.to_string()).unwrap_or_default();
        tracing::error!(
            target: "audit",
            host_id = %host,
            server_url = %marker.server_url,
            revoked_at = %marker.revoked_at,
            message = %marker.message,
            "the platform revoked this agent's credential; the agent stops and does not contact the platform again; to bring the host back, an operator runs `patchctl-agent reenroll` and restarts the agent"
        );
        AgentError::Revoked {
            message: marker.message,
        }
    }
}
