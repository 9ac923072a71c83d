//! The test agent of `tests/deployments.rs`: a host created in the database that speaks
//! the agent API over real TLS (heartbeats collect its commands, results are posted
//! back), with a behaviour the test sets (failed units, a failing install, a reboot,
//! silence).

use axum::http::StatusCode;
use chrono::{DateTime, Duration, Utc};
use patchctl_proto::agent::{
    HeartbeatRequest, HeartbeatResponse, Metrics, OsInfo, ResultsUpload, SystemInfo,
};
use patchctl_proto::command::{
    CommandResult, HealthItem, HealthReport, HealthStatus, InstallReport, RebootOutcome,
    ResultOutput, ResultStatus,
};
use patchctl_server::auth::hash_secret;
use patchctl_storage::NewHost;
use serde_json::Value;
use uuid::Uuid;

use crate::support::Platform;

/// How one test agent behaves.
#[derive(Clone, Default)]
pub struct Behaviour {
    /// Failed units before the install.
    pub units_before: Vec<String>,
    /// Failed units after it.
    pub units_after: Vec<String>,
    /// The install fails with this text.
    pub install_error: Option<String>,
    /// The agent stopped (no heartbeat, no result).
    pub silent: bool,
    /// The install schedules a reboot (the next heartbeat reports a later boot time).
    pub reboots: bool,
}

pub struct Agent {
    pub host: Uuid,
    pub hostname: String,
    pub credential: String,
    pub installed: bool,
    pub does: Behaviour,
    /// The `install_updates` parameters it received.
    pub installs: Vec<Value>,
    /// Every command kind it received.
    pub kinds: Vec<String>,
    /// The boot time it reports.
    pub booted_at: DateTime<Utc>,
}

impl Agent {
    async fn heartbeat(&self, p: &Platform) -> HeartbeatResponse {
        let hb = HeartbeatRequest {
            agent_version: "1.0.0".into(),
            metrics: Metrics::default(),
            agent_target: None,
            update_events: Vec::new(),
            trial: false,
            reboot: None,
            booted_at: Some(self.booted_at),
            command_key_id: None,
            approvers_serial: None,
        };
        let r = p
            .req(
                "POST",
                "/api/v1/agent/heartbeat",
                Some(&self.credential),
                Some(&serde_json::to_value(&hb).unwrap()),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        serde_json::from_value(r.body).unwrap()
    }

    fn health(&self) -> HealthReport {
        HealthReport {
            agent_version: "1.0.0".into(),
            checks: vec![HealthItem {
                name: "server".into(),
                status: HealthStatus::Ok,
                detail: "reachable".into(),
            }],
            failed_units: Some(if self.installed {
                self.does.units_after.clone()
            } else {
                self.does.units_before.clone()
            }),
        }
    }

    /// One round: a heartbeat, the commands it brought answered, a heartbeat after.
    pub async fn round(&mut self, p: &Platform) {
        if self.does.silent {
            return;
        }
        let got = self.heartbeat(p).await;
        let mut results = Vec::new();
        for c in got.commands {
            self.kinds.push(c.kind.clone());
            let now = Utc::now();
            let (status, summary, output) = match c.kind.as_str() {
                "health_check" => (
                    ResultStatus::Succeeded,
                    "healthy".to_owned(),
                    ResultOutput::Health(self.health()),
                ),
                "install_updates" => {
                    self.installs.push(c.params.clone());
                    let report = InstallReport {
                        refused: Vec::new(),
                        packages: Vec::new(),
                        reboot_required: false,
                        reboot_reasons: Vec::new(),
                        reboot: Some(if self.does.reboots {
                            RebootOutcome::Scheduled
                        } else {
                            RebootOutcome::NotRequired
                        }),
                        output_tail: String::new(),
                    };
                    match &self.does.install_error {
                        Some(e) => (
                            ResultStatus::Failed,
                            e.clone(),
                            ResultOutput::Install(report),
                        ),
                        None => {
                            self.installed = true;
                            if self.does.reboots {
                                self.booted_at = Utc::now() + Duration::seconds(1);
                            }
                            (
                                ResultStatus::Succeeded,
                                "2 packages installed".to_owned(),
                                ResultOutput::Install(report),
                            )
                        }
                    }
                }
                other => panic!("a deployment queued {other}"),
            };
            results.push(CommandResult {
                command_id: c.id,
                status,
                summary,
                started_at: now,
                finished_at: now,
                output: Some(output),
            });
        }
        if !results.is_empty() {
            let up = ResultsUpload { results };
            let r = p
                .req(
                    "POST",
                    "/api/v1/agent/results",
                    Some(&self.credential),
                    Some(&serde_json::to_value(&up).unwrap()),
                )
                .await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.text);
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            self.heartbeat(p).await;
        }
    }
}

/// A Debian 12 host (`os` overrides) carrying agent tag `tag`.
pub async fn agent(p: &Platform, name: &str, tag: &str, os: Option<(&str, &str)>) -> Agent {
    let key = p
        .store
        .create_enrollment_key(p.org_id, "k", &Uuid::new_v4().to_string(), Utc::now())
        .await
        .unwrap();
    let credential = format!("cred-{}", Uuid::new_v4());
    let (id, version) = os.unwrap_or(("debian", "12"));
    let h = p
        .store
        .create_host(NewHost {
            org_id: p.org_id,
            enrollment_key_id: key.id,
            credential_hash: hash_secret(&credential),
            agent_version: "1.0.0".into(),
            system: SystemInfo {
                hostname: name.into(),
                os: OsInfo {
                    id: id.into(),
                    version_id: version.into(),
                    ..Default::default()
                },
                tags: vec![tag.into()],
                ..Default::default()
            },
            now: Utc::now(),
        })
        .await
        .unwrap();
    Agent {
        host: h.id,
        hostname: name.into(),
        credential,
        installed: false,
        does: Behaviour::default(),
        installs: Vec::new(),
        kinds: Vec::new(),
        booted_at: DateTime::from_timestamp(Utc::now().timestamp() - 86_400, 0).unwrap(),
    }
}
