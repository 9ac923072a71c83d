//! The four operations, and the gate in front of them.
//!
//! [`Operations::handle`] is the only way a command from the platform leads to work:
//! the raw envelope is validated into the closed [`Command`] enum first, and anything
//! that does not validate (unknown kind, bad parameter) is answered with a `rejected`
//! result and audited, without touching the executor. Dispatch is one exhaustive
//! `match`, one handler per operation.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use patchctl_proto::agent::InstalledPackage;
use patchctl_proto::command::{
    Command, CommandEnvelope, CommandResult, HealthItem, HealthReport, HealthStatus,
    InstallOutcome, InstallReport, PackageInfoReport, PackageTarget, ResultOutput, ResultStatus,
    UpdatesReport,
};
use patchctl_proto::validate::PackageName;

use crate::exec::{ExecRequest, Executor};
use crate::inventory::{PackageManager, dpkg, rpm};
use crate::pkgmgr::apt::{self, AptOptions};

/// What the agent knows about its link to the platform, for `health_check`.
#[derive(Debug, Clone, Default)]
pub struct LinkState {
    /// Last successful exchange with the platform.
    pub last_contact: Option<DateTime<Utc>>,
    /// Round-trip time of that exchange.
    pub last_rtt: Option<Duration>,
    /// Local clock minus the platform's clock, seconds, at that exchange.
    pub clock_skew_secs: Option<f64>,
    /// The last connection error, if the last attempt failed.
    pub last_error: Option<String>,
}

/// Shared, updated by the runtime, read by `health_check`.
pub type SharedLink = Arc<Mutex<LinkState>>;

/// Runs validated operations.
pub struct Operations {
    exec: Arc<dyn Executor>,
    package_manager: Option<PackageManager>,
    root: PathBuf,
    config_path: Option<PathBuf>,
    heartbeat_interval: Duration,
    link: SharedLink,
    apt: AptOptions,
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
            package_manager: PackageManager::detect(root),
            root: root.to_owned(),
            config_path,
            heartbeat_interval,
            link,
            apt: AptOptions::default(),
        }
    }

    /// Extra apt settings (tests point apt at a private root with them).
    pub fn with_apt_options(mut self, apt: AptOptions) -> Self {
        self.apt = apt;
        self
    }

    /// Overrides the detected package manager (tests).
    pub fn with_package_manager(mut self, pm: Option<PackageManager>) -> Self {
        self.package_manager = pm;
        self
    }

    /// The package manager in use, if any.
    pub fn package_manager(&self) -> Option<PackageManager> {
        self.package_manager
    }

    /// Validates and runs one command from the platform; always produces a result.
    pub async fn handle(&self, env: &CommandEnvelope) -> CommandResult {
        let started_at = Utc::now();
        let command = match Command::parse(&env.kind, &env.params) {
            Ok(c) => c,
            Err(reason) => {
                tracing::warn!(target: "audit", command_id = %env.id, kind = %truncate(&env.kind, 64), %reason, "command rejected");
                return CommandResult {
                    command_id: env.id,
                    status: ResultStatus::Rejected,
                    summary: reason,
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
            Command::CheckUpdates(_) => match self.package_manager {
                Some(PackageManager::Dpkg) => self.check_updates_apt().await,
                _ => self.not_yet("check_updates"),
            },
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
                } else if self.package_manager == Some(PackageManager::Dpkg) {
                    self.install_apt(&p.packages).await
                } else {
                    self.not_yet("install_updates")
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

    fn not_yet(&self, kind: &str) -> (ResultStatus, String, Option<ResultOutput>) {
        let pm = self.package_manager.map(|p| p.as_str()).unwrap_or("none");
        (
            ResultStatus::Failed,
            format!(
                "{kind} is not yet supported on this system (package manager: {pm}); this agent version reports inventory and package info only"
            ),
            None,
        )
    }

    async fn check_updates_apt(&self) -> (ResultStatus, String, Option<ResultOutput>) {
        let root = nix::unistd::geteuid().is_root();
        if root {
            let mut req = ExecRequest::from_argv(&apt::update_argv(&self.apt));
            req.timeout = Duration::from_secs(600);
            match self.exec.run(req).await {
                Ok(o) if o.success() => {}
                Ok(o) => {
                    return (
                        ResultStatus::Failed,
                        format!(
                            "apt-get update failed (exit {:?}): {}",
                            o.code,
                            tail(&o.stderr, 500)
                        ),
                        None,
                    );
                }
                Err(e) => return (ResultStatus::Failed, e.to_string(), None),
            }
        }
        let out = match self
            .exec
            .run(ExecRequest::from_argv(&apt::simulate_argv(&self.apt)))
            .await
        {
            Ok(o) if o.success() => o,
            Ok(o) => {
                return (
                    ResultStatus::Failed,
                    format!(
                        "apt-get -s dist-upgrade failed (exit {:?}): {}",
                        o.code,
                        tail(&o.stderr, 500)
                    ),
                    None,
                );
            }
            Err(e) => return (ResultStatus::Failed, e.to_string(), None),
        };
        let sim = apt::parse_simulation(&out.stdout);
        for reason in &sim.skipped {
            tracing::warn!(%reason, "skipped a line of apt's simulation");
        }
        let security = sim.updates.iter().filter(|u| u.security).count();
        let summary = format!(
            "{} updates available ({security} security){}",
            sim.updates.len(),
            if root {
                ""
            } else {
                "; package lists not refreshed: apt-get update needs root"
            }
        );
        let report = UpdatesReport {
            package_manager: PackageManager::Dpkg.as_str().into(),
            refreshed: root,
            updates: sim.updates,
            removals: sim.removals,
        };
        (
            ResultStatus::Succeeded,
            summary,
            Some(ResultOutput::Updates(report)),
        )
    }

    /// Where the installed state is read: the dpkg status file apt is told to use.
    fn dpkg_status_path(&self) -> PathBuf {
        self.apt
            .config
            .iter()
            .find(|(k, _)| k == "Dir::State::status")
            .map(|(_, v)| PathBuf::from(v))
            .unwrap_or_else(|| self.root.join(dpkg::STATUS_PATH.trim_start_matches('/')))
    }

    fn installed_versions(&self, targets: &[PackageTarget]) -> Vec<Option<String>> {
        let pkgs = dpkg::read_status(&self.dpkg_status_path())
            .map(|s| s.packages)
            .unwrap_or_default();
        targets
            .iter()
            .map(|t| {
                pkgs.iter()
                    .find(|p| p.name == t.name.as_str())
                    .map(|p| p.version.clone())
            })
            .collect()
    }

    fn install_report(
        &self,
        targets: &[PackageTarget],
        before: Vec<Option<String>>,
        refused: Vec<String>,
        output_tail: String,
    ) -> InstallReport {
        let after = self.installed_versions(targets);
        let packages = targets
            .iter()
            .zip(before)
            .zip(after)
            .map(|((t, before), after)| InstallOutcome {
                name: t.name.to_string(),
                target_version: t.version.to_string(),
                ok: after.as_deref() == Some(t.version.as_str()),
                before,
                after,
            })
            .collect();
        InstallReport {
            refused,
            packages,
            reboot_required: self.root.join("run/reboot-required").exists(),
            output_tail,
        }
    }

    async fn install_apt(
        &self,
        targets: &[PackageTarget],
    ) -> (ResultStatus, String, Option<ResultOutput>) {
        let before = self.installed_versions(targets);
        // 1. Simulate exactly the approved versions; refuse anything else.
        let sim = self
            .exec
            .run(ExecRequest::from_argv(&apt::install_simulate_argv(
                &self.apt, targets,
            )))
            .await;
        let why = match sim {
            Ok(o) if o.success() => apt::refusals(&apt::parse_simulation(&o.stdout), targets),
            Ok(o) => vec![format!(
                "apt-get cannot plan the install (exit {:?}): {}",
                o.code,
                tail(&o.stderr, 500)
            )],
            Err(e) => vec![e.to_string()],
        };
        if !why.is_empty() {
            tracing::warn!(target: "audit", reasons = ?why, "install_updates refused after simulation");
            let summary = format!("refused, nothing installed: {}", why.join("; "));
            let report = self.install_report(targets, before, why, String::new());
            return (
                ResultStatus::Failed,
                summary,
                Some(ResultOutput::Install(report)),
            );
        }
        // 2. Install.
        let mut req = ExecRequest::from_argv(&apt::install_argv(&self.apt, targets));
        req.timeout = Duration::from_secs(1800);
        let (code, out_tail, locked) = match self.exec.run(req).await {
            Ok(o) => (
                o.code,
                tail(&format!("{}\n{}", o.stdout, o.stderr), 2000).to_owned(),
                apt::is_locked(&o.stderr),
            ),
            Err(e) => (None, e.to_string(), false),
        };
        if locked {
            let report = self.install_report(targets, before, Vec::new(), out_tail);
            return (
                ResultStatus::Failed,
                format!(
                    "the package manager is locked by another process (waited {} s); nothing installed, try again later",
                    apt::LOCK_TIMEOUT_SECS
                ),
                Some(ResultOutput::Install(report)),
            );
        }
        let report = self.install_report(targets, before, Vec::new(), out_tail);
        let done = report.packages.iter().filter(|p| p.ok).count();
        let status = if code == Some(0) && done == targets.len() {
            ResultStatus::Succeeded
        } else {
            ResultStatus::Failed
        };
        let summary = format!(
            "{done} of {} approved updates installed{}{}",
            targets.len(),
            if code == Some(0) {
                String::new()
            } else {
                format!("; apt-get exited with {code:?}")
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
        let Some(pm) = self.package_manager else {
            return (
                ResultStatus::Failed,
                "no supported package manager found on this system".into(),
                None,
            );
        };
        let installed: Result<Vec<InstalledPackage>, String> = match pm {
            PackageManager::Dpkg => {
                let path = self.dpkg_status_path();
                tokio::task::spawn_blocking(move || dpkg::read_status(&path))
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|r| r.map_err(|e| format!("cannot read dpkg status: {e}")))
                    .map(|s| {
                        s.packages
                            .into_iter()
                            .filter(|p| p.name == name.as_str())
                            .collect()
                    })
            }
            PackageManager::Rpm => {
                let req = ExecRequest::from_argv(&rpm::query_one_argv(name));
                match self.exec.run(req).await {
                    // rpm -q exits 1 for "not installed"; its stdout is then empty.
                    Ok(out) if out.success() || out.code == Some(1) => {
                        Ok(rpm::parse_qa(&out.stdout).packages)
                    }
                    Ok(out) => Err(format!(
                        "rpm exited with {:?}: {}",
                        out.code,
                        truncate(out.stderr.trim(), 500)
                    )),
                    Err(e) => Err(e.to_string()),
                }
            }
        };
        match installed {
            Err(e) => (ResultStatus::Failed, e, None),
            Ok(installed) => {
                let summary = match installed.first() {
                    Some(p) => format!("{} {} ({}) is installed", p.name, p.version, p.arch),
                    None => format!("{name} is not installed"),
                };
                let mut report = PackageInfoReport {
                    name: name.to_string(),
                    package_manager: pm.as_str().into(),
                    installed,
                    candidate_version: None,
                    candidate_origins: Vec::new(),
                    security_update: false,
                };
                if pm == PackageManager::Dpkg {
                    // The candidate and where it comes from; without it the answer is
                    // still useful, so a failure here only leaves those fields empty.
                    let req = ExecRequest::from_argv(&apt::policy_argv(&self.apt, name));
                    if let Ok(o) = self.exec.run(req).await {
                        if o.success() {
                            let p = apt::parse_policy(&o.stdout);
                            report.security_update = p.security_update();
                            report.candidate_version = p.candidate;
                            report.candidate_origins = p.candidate_archives;
                        }
                    }
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
        }
    }

    async fn health_check(&self) -> (ResultStatus, String, Option<ResultOutput>) {
        let mut checks = vec![HealthItem {
            name: "agent".into(),
            status: HealthStatus::Ok,
            detail: format!("patchctl-agent {}", crate::VERSION),
        }];
        checks.push(match &self.config_path {
            None => HealthItem {
                name: "config".into(),
                status: HealthStatus::Unsupported,
                detail: "the agent runs without a configuration file".into(),
            },
            Some(p) => match crate::config::AgentConfig::load(p) {
                Ok(_) => HealthItem {
                    name: "config".into(),
                    status: HealthStatus::Ok,
                    detail: format!("{} is valid and private", p.display()),
                },
                Err(e) => HealthItem {
                    name: "config".into(),
                    status: HealthStatus::Fail,
                    detail: e.to_string(),
                },
            },
        });
        let link = self.link.lock().unwrap_or_else(|e| e.into_inner()).clone();
        checks.push(server_check(&link, self.heartbeat_interval));
        checks.push(clock_check(&link));
        let mut seen_fs = Vec::new();
        for mount in ["/", "/var"] {
            let path = self.root.join(mount.trim_start_matches('/'));
            let Ok(st) = nix::sys::statvfs::statvfs(&path) else {
                continue;
            };
            // /var on the same file system as / would only repeat the line.
            if seen_fs.contains(&st.filesystem_id()) {
                continue;
            }
            seen_fs.push(st.filesystem_id());
            if let Some(item) = disk_check(mount, &st) {
                checks.push(item);
            }
        }
        checks.push(crate::health::package_lock(
            &self.root,
            self.package_manager,
        ));
        let worst = checks
            .iter()
            .filter(|c| matches!(c.status, HealthStatus::Fail | HealthStatus::Warn))
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>();
        let failed = checks.iter().any(|c| c.status == HealthStatus::Fail);
        let summary = if worst.is_empty() {
            format!("healthy: {} checks passed or not applicable", checks.len())
        } else {
            format!("attention needed: {}", worst.join(", "))
        };
        let status = if failed {
            ResultStatus::Failed
        } else {
            ResultStatus::Succeeded
        };
        (
            status,
            summary,
            Some(ResultOutput::Health(HealthReport {
                agent_version: crate::VERSION.into(),
                checks,
            })),
        )
    }
}

fn server_check(link: &LinkState, interval: Duration) -> HealthItem {
    let (status, detail) = match (link.last_contact, &link.last_error) {
        (_, Some(err)) => (HealthStatus::Fail, format!("last attempt failed: {err}")),
        (Some(at), None) => {
            let age = (Utc::now() - at).num_seconds().max(0) as u64;
            let rtt = link.last_rtt.map(|d| d.as_millis()).unwrap_or(0);
            if age > 3 * interval.as_secs() {
                (
                    HealthStatus::Warn,
                    format!("last contact {age} s ago (round trip {rtt} ms)"),
                )
            } else {
                (
                    HealthStatus::Ok,
                    format!("reachable; last contact {age} s ago, round trip {rtt} ms"),
                )
            }
        }
        (None, None) => (
            HealthStatus::Warn,
            "no contact with the platform yet".into(),
        ),
    };
    HealthItem {
        name: "server".into(),
        status,
        detail,
    }
}

fn clock_check(link: &LinkState) -> HealthItem {
    let (status, detail) = match link.clock_skew_secs {
        None => (
            HealthStatus::Warn,
            "clock not compared with the platform yet".into(),
        ),
        Some(s) if s.abs() < 30.0 => (
            HealthStatus::Ok,
            format!("within {:.1} s of the platform", s.abs()),
        ),
        Some(s) if s.abs() < 300.0 => (
            HealthStatus::Warn,
            format!("{s:+.1} s off the platform's clock; check NTP (timedatectl)"),
        ),
        Some(s) => (
            HealthStatus::Fail,
            format!(
                "{s:+.1} s off the platform's clock; certificate checks may fail; fix NTP (timedatectl)"
            ),
        ),
    };
    HealthItem {
        name: "clock".into(),
        status,
        detail,
    }
}

// The statvfs fields are 32-bit on some 32-bit targets; the casts are not no-ops there.
#[allow(clippy::unnecessary_cast)]
fn disk_check(mount: &str, st: &nix::sys::statvfs::Statvfs) -> Option<HealthItem> {
    let frsize = st.fragment_size() as u64;
    let total = st.blocks() as u64 * frsize;
    let avail = st.blocks_available() as u64 * frsize;
    if total == 0 {
        return None;
    }
    let pct = avail as f64 * 100.0 / total as f64;
    const GIB: u64 = 1 << 30;
    let status = if avail < GIB / 4 || pct < 2.0 {
        HealthStatus::Fail
    } else if avail < GIB || pct < 10.0 {
        HealthStatus::Warn
    } else {
        HealthStatus::Ok
    };
    Some(HealthItem {
        name: format!("disk:{mount}"),
        status,
        detail: format!(
            "{:.1} GiB free of {:.1} GiB ({pct:.0} %)",
            avail as f64 / GIB as f64,
            total as f64 / GIB as f64
        ),
    })
}

/// The last `max` bytes (about) of `s`, trimmed: where a program says why it failed.
pub fn tail(s: &str, max: usize) -> &str {
    let s = s.trim();
    let mut start = s.len().saturating_sub(max);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

/// At most `max` bytes of `s`, cut at a character boundary.
pub fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
