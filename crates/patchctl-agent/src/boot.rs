//! The host's boot: when it booted ([`booted_at`], `btime` of `/proc/stat`, sent with
//! every heartbeat so that the platform sees a host come back from a reboot) and the
//! reboot of `install_updates` with `reboot: if_required` ([`PendingReboot`]).
//!
//! Order, the invariant: the install's result (saying `reboot: scheduled`) is written
//! to the outbox, the outbox is delivered, and only once the platform acknowledged that
//! result does the agent run [`SYSTEMCTL_REBOOT`]. The scheduled reboot is kept in
//! memory only: an agent stopped (or restarted) between the result and the reboot does
//! not reboot the host later on its own; the result still says `scheduled`, the
//! heartbeats keep reporting `reboot_required` with the old `booted_at`, and the host
//! stays on the platform's list of hosts needing a reboot (docs/reboots.md).

use chrono::{DateTime, TimeZone, Utc};
use patchctl_proto::command::{CommandResult, RebootOutcome, ResultOutput};
use uuid::Uuid;

use crate::exec::{ExecRequest, Executor, SYSTEMCTL_REBOOT};
use crate::state::Outbox;

/// Reads `btime` (seconds since the epoch when the system booted) from `/proc/stat`.
pub fn parse_btime(proc_stat: &str) -> Option<DateTime<Utc>> {
    let secs = proc_stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse::<i64>()
        .ok()?;
    Utc.timestamp_opt(secs, 0).single()
}

/// When this system booted; `None` when `/proc/stat` cannot be read.
pub fn booted_at() -> Option<DateTime<Utc>> {
    std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| parse_btime(&s))
}

/// The reboot an install scheduled, waiting for its result to be delivered.
#[derive(Debug, Default)]
pub struct PendingReboot {
    command: Option<Uuid>,
}

impl PendingReboot {
    /// Remembers the reboot when `result` is an install that scheduled one.
    pub fn note(&mut self, result: &CommandResult) {
        if let Some(ResultOutput::Install(r)) = &result.output {
            if r.reboot == Some(RebootOutcome::Scheduled) {
                tracing::info!(target: "audit", command_id = %result.command_id, "reboot scheduled: it runs once this result is delivered");
                self.command = Some(result.command_id);
            }
        }
    }

    /// The command whose reboot is due: scheduled, and its result is no longer in the
    /// outbox (the platform acknowledged it).
    pub fn due(&self, outbox: &Outbox) -> Option<Uuid> {
        self.command.filter(|id| !outbox.contains(*id))
    }

    /// Reboots the host when a scheduled reboot is due: `systemctl reboot`, once.
    /// Returns true when the reboot was asked for (systemd then stops the agent).
    pub async fn run_if_due(&mut self, outbox: &Outbox, exec: &dyn Executor) -> bool {
        let Some(id) = self.due(outbox) else {
            return false;
        };
        self.command = None;
        tracing::warn!(target: "audit", command_id = %id, "the install's result was delivered; rebooting the host");
        let argv: Vec<String> = SYSTEMCTL_REBOOT.iter().map(|s| s.to_string()).collect();
        match exec.run(ExecRequest::from_argv(&argv)).await {
            Ok(o) if o.success() => true,
            Ok(o) => {
                tracing::error!(target: "audit", command_id = %id, code = ?o.code, stderr = %crate::text::tail(o.stderr.trim(), 300), "the reboot was refused; the host still needs one");
                false
            }
            Err(e) => {
                tracing::error!(target: "audit", command_id = %id, error = %e, "the reboot did not run; the host still needs one");
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use patchctl_proto::command::{InstallReport, ResultStatus};
    use proptest::prelude::*;

    #[test]
    fn reads_btime() {
        let stat = "cpu  1 2 3 4\nintr 5\nctxt 6\nbtime 1764900000\nprocesses 7\n";
        assert_eq!(
            parse_btime(stat).map(|t| t.timestamp()),
            Some(1_764_900_000)
        );
        assert_eq!(parse_btime("cpu 1\n"), None);
        assert_eq!(parse_btime("btime x\n"), None);
        // This machine's own /proc/stat: booted in the past.
        let now = booted_at().unwrap();
        assert!(now <= Utc::now());
    }

    proptest! {
        #[test]
        fn btime_never_panics(s in "\\PC{0,200}") {
            let _ = parse_btime(&s);
        }
    }

    fn install(id: Uuid, reboot: Option<RebootOutcome>) -> CommandResult {
        CommandResult {
            command_id: id,
            status: ResultStatus::Succeeded,
            summary: "1 of 1 approved updates installed".into(),
            started_at: Utc::now(),
            finished_at: Utc::now(),
            output: Some(ResultOutput::Install(InstallReport {
                refused: vec![],
                packages: vec![],
                reboot_required: true,
                reboot_reasons: vec!["/run/reboot-required".into()],
                reboot,
                output_tail: String::new(),
            })),
        }
    }

    /// With the real outbox: the reboot is due only once the result left it.
    #[test]
    fn the_reboot_waits_for_the_result_to_be_delivered() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(dir.path()).unwrap();
        let mut pending = PendingReboot::default();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let never = install(a, Some(RebootOutcome::Pending));
        outbox.put(&never).unwrap();
        pending.note(&never);
        assert_eq!(pending.due(&outbox), None, "never: nothing scheduled");
        let scheduled = install(b, Some(RebootOutcome::Scheduled));
        outbox.put(&scheduled).unwrap();
        pending.note(&scheduled);
        assert_eq!(pending.due(&outbox), None, "not delivered yet");
        // An agent reopened on the same directory still holds the undelivered result.
        assert!(Outbox::open(dir.path()).unwrap().contains(b));
        outbox.remove(&[b]);
        assert_eq!(pending.due(&outbox), Some(b));
    }
}
