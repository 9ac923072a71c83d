//! Commands the platform queues for an agent and the results the agent reports.
//!
//! [`Command`] is the whitelist: a closed enum of exactly the four operations, each with
//! typed, validated parameters. The platform delivers commands as a
//! [`CommandEnvelope`] holding the raw `kind` and `params`, so that one command the
//! agent does not accept (an unknown kind, a bad parameter, a newer platform) is
//! answered with its own `rejected` result instead of failing the whole heartbeat.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::validate::{PackageName, PackageVersion};

/// Most packages one `install_updates` may name.
pub const MAX_INSTALL_PACKAGES: usize = 2_000;

/// The only operations the agent runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", content = "params", rename_all = "snake_case")]
pub enum Command {
    /// Refresh package metadata and report the available updates.
    CheckUpdates(NoParams),
    /// Install exactly the approved `name` + `version` pairs.
    InstallUpdates(InstallUpdatesParams),
    /// Report what is known about one package.
    GetPackageInfo(GetPackageInfoParams),
    /// Report the agent's and the system's health.
    HealthCheck(NoParams),
}

/// The kinds of [`Command`], as their wire names.
pub const COMMAND_KINDS: [&str; 4] = [
    "check_updates",
    "install_updates",
    "get_package_info",
    "health_check",
];

/// Parameters of an operation that takes none (an empty object).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NoParams {}

/// Parameters of `install_updates`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct InstallUpdatesParams {
    /// The approved updates, each an exact target version.
    pub packages: Vec<PackageTarget>,
    /// Whether the agent reboots the host after the install when it needs one.
    /// `never` (the default) is left off the wire, so that agents from before this
    /// parameter still accept the command.
    #[serde(default, skip_serializing_if = "RebootPolicy::is_never")]
    pub reboot: RebootPolicy,
}

/// Whether `install_updates` reboots the host afterwards (a parameter of the install,
/// not an operation of its own).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RebootPolicy {
    /// Never reboot; the result says whether a reboot is required.
    #[default]
    Never,
    /// Reboot when the install succeeded and the host then requires a reboot: the
    /// result (`reboot: scheduled`) is delivered first, then the host reboots.
    IfRequired,
}

impl RebootPolicy {
    /// True for [`RebootPolicy::Never`].
    pub fn is_never(&self) -> bool {
        *self == RebootPolicy::Never
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            RebootPolicy::Never => "never",
            RebootPolicy::IfRequired => "if_required",
        }
    }
}

/// What `install_updates` did about a reboot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RebootOutcome {
    /// No reboot is required.
    NotRequired,
    /// A reboot is required and the policy is `never`: the host waits for one.
    Pending,
    /// A reboot is required but the install failed: not rebooted.
    Withheld,
    /// The host reboots right after this result is delivered.
    Scheduled,
}

/// One approved update.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PackageTarget {
    /// Package name.
    pub name: PackageName,
    /// Exact version to install.
    pub version: PackageVersion,
}

/// Parameters of `get_package_info`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct GetPackageInfoParams {
    /// The package asked about.
    pub name: PackageName,
}

/// Why [`Command::parse`] refused a raw command.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The kind is not one the agent runs.
    #[error("unknown command kind {0:?}; the agent runs only {kinds}", kinds = COMMAND_KINDS.join(", "))]
    UnknownKind(String),
    /// The parameters do not fit the kind.
    #[error("invalid parameters for {kind}: {error}")]
    InvalidParams {
        /// The command kind.
        kind: String,
        /// What deserialising the parameters said.
        error: serde_json::Error,
    },
    /// `install_updates` naming no package.
    #[error("invalid parameters for install_updates: no packages named")]
    NoPackages,
    /// `install_updates` naming more than [`MAX_INSTALL_PACKAGES`] packages.
    #[error(
        "invalid parameters for install_updates: {0} packages named, at most {MAX_INSTALL_PACKAGES} allowed"
    )]
    TooManyPackages(usize),
}

impl Command {
    /// The wire name of this command's kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Command::CheckUpdates(_) => "check_updates",
            Command::InstallUpdates(_) => "install_updates",
            Command::GetPackageInfo(_) => "get_package_info",
            Command::HealthCheck(_) => "health_check",
        }
    }

    /// Validates a raw `kind` and `params` into a command, or says why not.
    pub fn parse(kind: &str, params: &serde_json::Value) -> Result<Command, CommandError> {
        if !COMMAND_KINDS.contains(&kind) {
            return Err(CommandError::UnknownKind(kind.to_string()));
        }
        let params = if params.is_null() {
            serde_json::Value::Object(Default::default())
        } else {
            params.clone()
        };
        let value = serde_json::json!({ "kind": kind, "params": params });
        let cmd: Command =
            serde_json::from_value(value).map_err(|error| CommandError::InvalidParams {
                kind: kind.to_string(),
                error,
            })?;
        if let Command::InstallUpdates(p) = &cmd {
            if p.packages.is_empty() {
                return Err(CommandError::NoPackages);
            }
            if p.packages.len() > MAX_INSTALL_PACKAGES {
                return Err(CommandError::TooManyPackages(p.packages.len()));
            }
        }
        Ok(cmd)
    }

    /// The `params` object of this command, as sent on the wire.
    pub fn params(&self) -> serde_json::Value {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(mut m)) => {
                m.remove("params").unwrap_or_else(|| serde_json::json!({}))
            }
            _ => serde_json::json!({}),
        }
    }
}

/// A command as delivered to the agent: validated by the agent before anything runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CommandEnvelope {
    /// The command's id; results are idempotent by it.
    pub id: Uuid,
    /// The kind as the platform sent it (checked against the whitelist by the agent).
    pub kind: String,
    /// The parameters as the platform sent them (validated by the agent).
    #[serde(default)]
    pub params: serde_json::Value,
    /// When an operator queued it.
    pub queued_at: DateTime<Utc>,
    /// The [`crate::signing::CommandStatement`] signed by the organisation's
    /// command-signing key. The agent refuses a command without it, and runs what the
    /// statement says, never `kind`/`params` above.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed: Option<crate::signing::SignedDocument>,
}

/// How a command ended on the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ResultStatus {
    /// The operation ran and did what it was asked.
    Succeeded,
    /// The operation ran (or tried to) and failed; `summary` says why.
    Failed,
    /// The command was refused before anything ran (not on the whitelist, invalid
    /// parameters); `summary` says why.
    Rejected,
}

/// The outcome of one command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CommandResult {
    /// The command this answers.
    pub command_id: Uuid,
    /// How it ended.
    pub status: ResultStatus,
    /// One line a person can read.
    pub summary: String,
    /// When the agent started handling it.
    pub started_at: DateTime<Utc>,
    /// When the agent finished.
    pub finished_at: DateTime<Utc>,
    /// The operation's structured output, when it produced one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<ResultOutput>,
}

/// Structured output of an operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ResultOutput {
    /// Output of `health_check`.
    Health(HealthReport),
    /// Output of `get_package_info`.
    PackageInfo(PackageInfoReport),
    /// Output of `check_updates`.
    Updates(UpdatesReport),
    /// Output of `install_updates`.
    Install(InstallReport),
}

/// Output of `install_updates`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InstallReport {
    /// Why the run was refused before anything was installed (empty when it ran).
    pub refused: Vec<String>,
    /// One entry per approved package.
    pub packages: Vec<InstallOutcome>,
    /// Whether the system now asks for a reboot.
    pub reboot_required: bool,
    /// Why the system asks for a reboot (see [`crate::agent::RebootState`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reboot_reasons: Vec<String>,
    /// What the agent did about it; absent from agents before the reboot parameter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reboot: Option<RebootOutcome>,
    /// The last lines of the package manager's output.
    pub output_tail: String,
}

/// What happened to one approved package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InstallOutcome {
    /// Package name.
    pub name: String,
    /// The approved version.
    pub target_version: String,
    /// Installed version before the run.
    pub before: Option<String>,
    /// Installed version after the run.
    pub after: Option<String>,
    /// True when `after` is the approved version.
    pub ok: bool,
}

/// Output of `check_updates`: what the package manager would upgrade.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UpdatesReport {
    /// The package manager that answered (`dpkg`).
    pub package_manager: String,
    /// True when the package metadata was refreshed first (needs root) and every
    /// repository answered.
    pub refreshed: bool,
    /// Why the refresh failed or was incomplete (unreachable or unsigned repositories):
    /// the updates then come from older metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_error: Option<String>,
    /// The available updates.
    pub updates: Vec<AvailableUpdate>,
    /// Installed packages a full upgrade would remove.
    pub removals: Vec<String>,
}

/// One available update.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AvailableUpdate {
    /// Binary package name.
    pub name: String,
    /// Architecture.
    pub arch: String,
    /// Installed version; `None` for a package the upgrade would newly install.
    pub current_version: Option<String>,
    /// Version that would be installed.
    pub candidate_version: String,
    /// Where the candidate comes from, as the package manager names the releases
    /// (`Debian-Security:12/stable-security`).
    pub origins: Vec<String>,
    /// True when the candidate comes from a security release (an archive or suite
    /// ending in `-security`) or fixes a security advisory, read from the
    /// repository's metadata.
    pub security: bool,
    /// Advisories the update fixes, as the repository's metadata lists them (dnf
    /// updateinfo, zypper patches); empty where the family has none (apt, apk, pacman).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub advisories: Vec<Advisory>,
}

/// An advisory from a repository's update metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Advisory {
    /// Its id (`ALSA-2024:1234`, `openSUSE-SU-2024:0123-1`).
    pub id: String,
    /// Its type (`security`, `bugfix`, `enhancement`), when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Its severity (`Important`, `moderate`), when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
}

/// Output of `health_check`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HealthReport {
    /// Version of the agent that ran the check.
    pub agent_version: String,
    /// One entry per check.
    pub checks: Vec<HealthItem>,
    /// systemd units in the `failed` state, sorted; `None` when systemd is not
    /// running or could not be asked (a check item says why).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_units: Option<Vec<String>>,
}

/// One health check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HealthItem {
    /// Short name: `config`, `server`, `clock`, `disk:/`, `package_lock`, ...
    pub name: String,
    /// The verdict.
    pub status: HealthStatus,
    /// What was found, for a person.
    pub detail: String,
}

/// Verdict of one health check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    /// Fine.
    Ok,
    /// Works, but needs attention soon.
    Warn,
    /// Broken.
    Fail,
    /// Could not be checked because the agent does not run as root.
    NeedsRoot,
    /// Does not apply to this system.
    Unsupported,
}

/// Output of `get_package_info`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PackageInfoReport {
    /// The name asked about.
    pub name: String,
    /// The package manager that answered (`dpkg`, `rpm`).
    pub package_manager: String,
    /// Installed instances (several for multi-arch); empty when not installed.
    pub installed: Vec<crate::package::InstalledPackage>,
    /// Version the package manager would install, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidate_version: Option<String>,
    /// Releases the candidate comes from (`bookworm-security`), when known.
    #[serde(default)]
    pub candidate_origins: Vec<String>,
    /// True when the candidate is newer than what is installed and comes from a
    /// security release.
    #[serde(default)]
    pub security_update: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(kind: &str, params: serde_json::Value, want_ok: bool) {
        let got = Command::parse(kind, &params);
        assert_eq!(got.is_ok(), want_ok, "{kind} {params}: {got:?}");
    }

    #[test]
    fn whitelist() {
        check("health_check", json!({}), true);
        check("health_check", serde_json::Value::Null, true);
        check("check_updates", json!({}), true);
        check("get_package_info", json!({"name": "dpkg"}), true);
        check(
            "install_updates",
            json!({"packages": [{"name": "openssl", "version": "3.0.15-1~deb12u1"}]}),
            true,
        );
        check("run_script", json!({"script": "id"}), false);
        check("HealthCheck", json!({}), false);
        check("health_check", json!({"extra": 1}), false);
        check("get_package_info", json!({}), false);
        check("get_package_info", json!({"name": "-oAPT::x"}), false);
        check("get_package_info", json!({"name": "foo;rm"}), false);
        check("get_package_info", json!({"name": 5}), false);
        check("install_updates", json!({"packages": []}), false);
        check(
            "install_updates",
            json!({"packages": [{"name": "a", "version": "1;reboot"}]}),
            false,
        );
    }

    #[test]
    fn unknown_kind_message_names_the_whitelist() {
        let e = Command::parse("shell", &json!({})).unwrap_err().to_string();
        assert!(e.contains("unknown command kind \"shell\""), "{e}");
        assert!(e.contains("health_check"), "{e}");
    }

    #[test]
    fn params_round_trip() {
        let c = Command::parse("get_package_info", &json!({"name": "dpkg"})).unwrap();
        assert_eq!(c.params(), json!({"name": "dpkg"}));
        assert_eq!(Command::parse(c.kind(), &c.params()).unwrap(), c);
    }
}
