//! The four operations, and the gate in front of them.
//!
//! [`Operations::handle`] is the only way a command from the platform leads to work:
//! the raw envelope is validated into the closed [`Command`] enum first, and anything
//! that does not validate (unknown kind, bad parameter) is answered with a `rejected`
//! result and audited, without touching the executor. Dispatch is one exhaustive
//! `match`, one handler per operation; `health_check`'s checks live in
//! [`crate::health`].

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use patchctl_proto::command::{
    Command, CommandEnvelope, CommandResult, InstallOutcome, InstallReport, PackageInfoReport,
    PackageTarget, RebootOutcome, RebootPolicy, ResultOutput, ResultStatus, UpdatesReport,
};
use patchctl_proto::validate::PackageName;

use crate::exec::Executor;
use crate::health;
use crate::pkgmgr::{self, Backend, Family};
use crate::text::truncate;

pub use crate::health::{LinkState, SharedLink};

/// Why an operation's step failed (the operations themselves answer with a result).
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    /// The package manager could not refresh or list; its words.
    #[error(transparent)]
    PackageManager(#[from] crate::pkgmgr::PkgError),
}

/// Runs validated operations.
pub struct Operations {
    exec: Arc<dyn Executor>,
    backend: Option<Arc<dyn Backend>>,
    root: PathBuf,
    config_path: Option<PathBuf>,
    heartbeat_interval: Duration,
    link: SharedLink,
}

impl Operations {
    /// Operations for the system under `root` ("/" in production).
    pub fn new(
        exec: Arc<dyn Executor>,
        root: &Path,
        config_path: Option<PathBuf>,
        heartbeat_interval: Duration,
        link: SharedLink,
    ) -> Self {
        Operations {
            exec,
            backend: Family::detect(root).map(pkgmgr::backend_for),
            root: root.to_owned(),
            config_path,
            heartbeat_interval,
            link,
        }
    }

    /// Overrides the detected backend (tests point one at a private root).
    pub fn with_backend(mut self, backend: Option<Arc<dyn Backend>>) -> Self {
        self.backend = backend;
        self
    }

    /// The package-manager family in use, if any.
    pub fn family(&self) -> Option<Family> {
        self.backend.as_ref().map(|b| b.family())
    }

    /// The backend in use, if any.
    pub fn backend(&self) -> Option<&Arc<dyn Backend>> {
        self.backend.as_ref()
    }

    /// Validates and runs one command whose signed statement was admitted
    /// ([`crate::admit::Admission::admit`]); always produces a result.
    pub async fn handle(&self, env: &CommandEnvelope) -> CommandResult {
        let started_at = Utc::now();
        let command = match Command::parse(&env.kind, &env.params) {
            Ok(c) => c,
            Err(reason) => {
                tracing::warn!(target: "audit", command_id = %env.id, kind = %truncate(&env.kind, 64), %reason, "command rejected");
                return CommandResult {
                    command_id: env.id,
                    status: ResultStatus::Rejected,
                    summary: reason.to_string(),
                    started_at,
                    finished_at: Utc::now(),
                    output: None,
                };
            }
        };
        tracing::info!(target: "audit", command_id = %env.id, kind = command.kind(), params = %command.params(), "command accepted");
        let (status, summary, output) = match &command {
            Command::HealthCheck(_) => self.health_check().await,
            Command::GetPackageInfo(p) => self.package_info(&p.name).await,
            Command::CheckUpdates(_) => self.check_updates().await,
            Command::InstallUpdates(p) => {
                if !nix::unistd::geteuid().is_root() {
                    (
                        ResultStatus::Failed,
                        format!(
                            "install_updates needs root; the agent runs as uid {}",
                            nix::unistd::geteuid()
                        ),
                        None,
                    )
                } else {
                    self.install(&p.packages, p.reboot).await
                }
            }
        };
        let result = CommandResult {
            command_id: env.id,
            status,
            summary,
            started_at,
            finished_at: Utc::now(),
            output,
        };
        tracing::info!(target: "audit", command_id = %env.id, kind = command.kind(), status = ?result.status, summary = %result.summary, "command finished");
        result
    }

    fn no_backend(&self) -> (ResultStatus, String, Option<ResultOutput>) {
        (
            ResultStatus::Failed,
            "no supported package manager found on this system (looked for apt, dnf, yum, zypper, apk, pacman)".into(),
            None,
        )
    }

    /// `check_updates`: refresh (as root), then list the available updates.
    pub async fn check_updates(&self) -> (ResultStatus, String, Option<ResultOutput>) {
        let Some(b) = &self.backend else {
            return self.no_backend();
        };
        match collect_updates(b.as_ref(), self.exec.as_ref()).await {
            Err(e) => (ResultStatus::Failed, e.to_string(), None),
            Ok(report) => {
                let security = report.updates.iter().filter(|u| u.security).count();
                let summary = format!(
                    "{} updates available ({security} security){}",
                    report.updates.len(),
                    if report.refreshed {
                        String::new()
                    } else if let Some(e) = &report.refresh_error {
                        format!("; package lists NOT refreshed, listed from older metadata: {e}")
                    } else {
                        format!(
                            "; package lists not refreshed: refreshing {} metadata needs root",
                            b.family().as_str()
                        )
                    }
                );
                (
                    ResultStatus::Succeeded,
                    summary,
                    Some(ResultOutput::Updates(report)),
                )
            }
        }
    }

    async fn installed_versions(
        &self,
        targets: &[PackageTarget],
    ) -> (
        Vec<Option<String>>,
        Vec<patchctl_proto::agent::InstalledPackage>,
    ) {
        let pkgs = match &self.backend {
            Some(b) => b.inventory(self.exec.as_ref()).await.unwrap_or_default(),
            None => Vec::new(),
        };
        let versions = targets
            .iter()
            .map(|t| {
                pkgs.iter()
                    .find(|p| p.name == t.name.as_str())
                    .map(|p| p.version.clone())
            })
            .collect();
        (versions, pkgs)
    }

    async fn install_report(
        &self,
        targets: &[PackageTarget],
        before: Vec<Option<String>>,
        refused: Vec<String>,
        output_tail: String,
    ) -> InstallReport {
        let (after, installed) = self.installed_versions(targets).await;
        let family = self.family();
        let packages = targets
            .iter()
            .zip(before)
            .zip(after)
            .map(|((t, before), after)| InstallOutcome {
                name: t.name.to_string(),
                target_version: t.version.to_string(),
                ok: after.as_deref().is_some_and(|a| {
                    a == t.version.as_str()
                        || family.and_then(|f| f.compare(a, t.version.as_str()))
                            == Some(std::cmp::Ordering::Equal)
                }),
                before,
                after,
            })
            .collect();
        let reboot = match &self.backend {
            Some(b) => {
                pkgmgr::reboot::state(
                    b.as_ref(),
                    self.exec.as_ref(),
                    &installed,
                    &pkgmgr::reboot::running_release(),
                )
                .await
            }
            None => Default::default(),
        };
        InstallReport {
            refused,
            packages,
            reboot_required: reboot.required,
            reboot_reasons: reboot.reasons,
            reboot: None,
            output_tail,
        }
    }

    /// `install_updates`: validate by the family's grammar, repair an interrupted run,
    /// simulate exactly the approved versions and refuse anything else, then install.
    async fn install(
        &self,
        targets: &[PackageTarget],
        policy: RebootPolicy,
    ) -> (ResultStatus, String, Option<ResultOutput>) {
        let (status, summary, mut output) = self.install_only(targets).await;
        let Some(ResultOutput::Install(report)) = &mut output else {
            return (status, summary, output);
        };
        let outcome = reboot_outcome(report.reboot_required, status, policy);
        report.reboot = Some(outcome);
        let summary = match outcome {
            RebootOutcome::Scheduled => format!("{summary}; reboot: scheduled"),
            RebootOutcome::Withheld => format!("{summary}; not rebooted: the install failed"),
            _ => summary,
        };
        (status, summary, output)
    }

    /// `install_updates` without its reboot.
    async fn install_only(
        &self,
        targets: &[PackageTarget],
    ) -> (ResultStatus, String, Option<ResultOutput>) {
        let Some(b) = &self.backend else {
            return self.no_backend();
        };
        let exec = self.exec.as_ref();
        let family = b.family();
        let invalid = family.validate_targets(targets);
        if !invalid.is_empty() {
            tracing::warn!(target: "audit", reasons = ?invalid, "install_updates refused: invalid for this package manager");
            return (
                ResultStatus::Rejected,
                format!(
                    "refused, nothing run: not valid {} names or versions: {}",
                    family.as_str(),
                    invalid.join("; ")
                ),
                None,
            );
        }
        let (before, _) = self.installed_versions(targets).await;
        // 0. Finish an interrupted earlier run, or nothing can be planned.
        let repaired = match b.repair(exec).await {
            Ok(r) => r,
            Err(e) => {
                let why = vec![format!(
                    "an interrupted earlier run could not be repaired: {e}"
                )];
                let report = self
                    .install_report(targets, before, why.clone(), String::new())
                    .await;
                return (
                    ResultStatus::Failed,
                    format!("refused, nothing installed: {}", why.join("; ")),
                    Some(ResultOutput::Install(report)),
                );
            }
        };
        // 1. Simulate exactly the approved versions; refuse anything else.
        let why = match b.simulate(exec, targets).await {
            Ok(tx) => pkgmgr::refusals(family, &tx, targets),
            Err(e) => vec![e.to_string()],
        };
        if !why.is_empty() {
            tracing::warn!(target: "audit", reasons = ?why, "install_updates refused after simulation");
            let summary = format!("refused, nothing installed: {}", why.join("; "));
            let report = self
                .install_report(targets, before, why, String::new())
                .await;
            return (
                ResultStatus::Failed,
                summary,
                Some(ResultOutput::Install(report)),
            );
        }
        // 2. Install.
        let run = b.install(exec, targets).await;
        let report = self
            .install_report(targets, before, Vec::new(), run.output)
            .await;
        if run.locked {
            return (
                ResultStatus::Failed,
                format!(
                    "the package manager is locked by another process; nothing installed, try again later ({})",
                    truncate(report.output_tail.lines().last().unwrap_or("").trim(), 300)
                ),
                Some(ResultOutput::Install(report)),
            );
        }
        let done = report.packages.iter().filter(|p| p.ok).count();
        let status = if run.code == Some(0) && done == targets.len() {
            ResultStatus::Succeeded
        } else {
            ResultStatus::Failed
        };
        let summary = format!(
            "{}{done} of {} approved updates installed{}{}",
            repaired.map(|r| format!("{r}; ")).unwrap_or_default(),
            targets.len(),
            if run.code == Some(0) {
                String::new()
            } else {
                // The exit status, and why in the package manager's words (a failed
                // maintainer script, say): the platform shows this line.
                format!(
                    "; {} exited with {}{}",
                    family.as_str(),
                    crate::text::exit_code(run.code),
                    crate::text::install_error(&report.output_tail)
                        .map(|why| format!(": {why}"))
                        .unwrap_or_default()
                )
            },
            if report.reboot_required {
                "; reboot required"
            } else {
                ""
            }
        );
        (status, summary, Some(ResultOutput::Install(report)))
    }

    async fn package_info(
        &self,
        name: &PackageName,
    ) -> (ResultStatus, String, Option<ResultOutput>) {
        let Some(b) = &self.backend else {
            return self.no_backend();
        };
        let exec = self.exec.as_ref();
        let installed = match b.installed(exec, name).await {
            Ok(i) => i,
            Err(e) => return (ResultStatus::Failed, e.to_string(), None),
        };
        let summary = match installed.first() {
            Some(p) => format!("{} {} ({}) is installed", p.name, p.version, p.arch),
            None => format!("{name} is not installed"),
        };
        let mut report = PackageInfoReport {
            name: name.to_string(),
            package_manager: b.family().database().as_str().into(),
            installed,
            candidate_version: None,
            candidate_origins: Vec::new(),
            security_update: false,
        };
        // The candidate and where it comes from; without it the answer is still
        // useful, so a failure here only leaves those fields empty.
        match b.candidate(exec, name).await {
            Ok(c) => {
                report.security_update = c.security;
                report.candidate_version = c.version;
                report.candidate_origins = c.origins;
            }
            Err(e) => tracing::warn!(error = %e, "no candidate information"),
        }
        let summary = match &report.candidate_version {
            Some(c) if report.installed.first().map(|p| &p.version) != Some(c) => format!(
                "{summary}; candidate {c}{}",
                if report.security_update {
                    " (security update)"
                } else {
                    ""
                }
            ),
            _ => summary,
        };
        (
            ResultStatus::Succeeded,
            summary,
            Some(ResultOutput::PackageInfo(report)),
        )
    }

    /// `health_check`: the checks of [`crate::health`] on this system and link, with
    /// systemd's failed units.
    async fn health_check(&self) -> (ResultStatus, String, Option<ResultOutput>) {
        let failed_units = crate::units::failed_units(self.exec.as_ref(), &self.root).await;
        let link = self.link.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let (status, summary, report) = health::check(&health::Subject {
            root: &self.root,
            config_path: self.config_path.as_deref(),
            link: &link,
            heartbeat_interval: self.heartbeat_interval,
            package_manager: self.family().map(|f| f.database()),
            failed_units: &failed_units,
        });
        (status, summary, Some(ResultOutput::Health(report)))
    }
}

/// What an install does about a reboot: reboots (after its result is delivered) only
/// when one is required, the install succeeded and the policy allows it.
pub fn reboot_outcome(required: bool, status: ResultStatus, policy: RebootPolicy) -> RebootOutcome {
    match (required, status, policy) {
        (false, _, _) => RebootOutcome::NotRequired,
        (true, _, RebootPolicy::Never) => RebootOutcome::Pending,
        (true, ResultStatus::Succeeded, RebootPolicy::IfRequired) => RebootOutcome::Scheduled,
        (true, _, RebootPolicy::IfRequired) => RebootOutcome::Withheld,
    }
}

/// Refreshes the metadata when running as root, then lists the available updates:
/// what `check_updates` answers and what the scan reports.
pub async fn collect_updates(
    b: &dyn Backend,
    exec: &dyn Executor,
) -> Result<UpdatesReport, OpsError> {
    let root = nix::unistd::geteuid().is_root();
    let mut refresh_error = None;
    if root {
        if let Err(e) = b.refresh(exec).await {
            tracing::warn!(error = %e, "could not refresh the package metadata; listing updates from what is cached");
            refresh_error = Some(e.to_string());
        }
    }
    let u = b.updates(exec).await?;
    for reason in &u.skipped {
        tracing::warn!(%reason, "skipped a line of the package manager's output");
    }
    Ok(UpdatesReport {
        package_manager: b.family().database().as_str().into(),
        refreshed: root && refresh_error.is_none(),
        refresh_error,
        updates: u.updates,
        removals: u.removals,
    })
}

/// The `rejected` result of a command that admission refused: nothing ran. The refusal
/// is an audit event naming the reason.
pub fn refused(env: &CommandEnvelope, why: &crate::admit::Refusal) -> CommandResult {
    tracing::warn!(target: "audit", command_id = %env.id, kind = %truncate(&env.kind, 64),
        reason = why.reason(), detail = %why, "command refused");
    let now = Utc::now();
    CommandResult {
        command_id: env.id,
        status: ResultStatus::Rejected,
        summary: why.to_string(),
        started_at: now,
        finished_at: now,
        output: None,
    }
}
