//! Between heartbeats: the long-poll (issue 16). Still pull only: the agent holds one
//! outbound request, `POST /api/v1/agent/commands/wait`, that the platform answers as
//! soon as a command is queued for this host, or with none after the wait. Commands
//! that arrive this way run at once, as a heartbeat's would; the next heartbeat still
//! comes at its time. The agent opens no listening socket.
//!
//! Failures never make the agent hammer the platform: any answer but commands or an
//! empty wait ends the long-polls until the next heartbeat, which then does the
//! backoff. A platform that holds no long-polls (`waited_max_secs: 0`, switched off
//! there) or does not know the route (404, an older platform) is asked again only after
//! [`POLL_OFF_RECHECK`]; meanwhile the agent sleeps between heartbeats as before.

use std::time::{Duration, Instant};

use http::Method;
use patchctl_proto::agent::{CommandWaitRequest, CommandWaitResponse};

use super::{Agent, Failure};

/// How much longer than the wait the client gives a long-poll's answer.
pub(super) const POLL_GRACE: Duration = Duration::from_secs(30);
/// A wait shorter than this is slept, not polled.
const MIN_POLL: Duration = Duration::from_secs(2);
/// How long a platform that holds no long-polls is left alone.
pub(super) const POLL_OFF_RECHECK: Duration = Duration::from_secs(3600);

/// The route of the long-poll.
pub const WAIT_PATH: &str = "/api/v1/agent/commands/wait";

impl Agent {
    /// Waits until `until`, holding long-polls (when `long_poll_secs` allows) and running
    /// the commands they bring. Returns early when a command asked for a fresh scan (an
    /// install), so that the next heartbeat and scan come now; errors that end the
    /// agent's turn (revoked, unknown credential, pending approval) are returned.
    pub(super) async fn idle(&mut self, until: Instant) -> Result<(), Failure> {
        let flag = self.stopping.clone();
        let stopping = move || flag.load(std::sync::atomic::Ordering::SeqCst);
        loop {
            let now = Instant::now();
            let polling = self.cfg.long_poll.is_some()
                && self.poll_off_until.is_none_or(|t| now >= t)
                && self.identity.is_some();
            if stopping() || now + MIN_POLL >= until || !polling {
                if !stopping() {
                    tokio::time::sleep_until(until.into()).await;
                }
                return Ok(());
            }
            let wait = (until - now).min(self.cfg.long_poll.unwrap_or_default());
            let req = CommandWaitRequest {
                wait_secs: u32::try_from(wait.as_secs()).unwrap_or(u32::MAX),
                command_key_id: self.admission.key_id(),
                approvers_serial: self.admission.approvers_serial(),
            };
            self.waiting
                .store(true, std::sync::atomic::Ordering::SeqCst);
            let answer: Result<CommandWaitResponse, _> = self
                .poll_client
                .json(Method::POST, WAIT_PATH, self.bearer(), Some(&req))
                .await;
            self.waiting
                .store(false, std::sync::atomic::Ordering::SeqCst);
            match answer {
                Ok(resp) if resp.waited_max_secs == 0 => {
                    tracing::info!(
                        recheck_secs = POLL_OFF_RECHECK.as_secs(),
                        "the platform holds no long-polls; commands wait for the next heartbeat"
                    );
                    self.poll_off_until = Some(Instant::now() + POLL_OFF_RECHECK);
                }
                Ok(resp) => {
                    if !resp.commands.is_empty() {
                        tracing::info!(
                            commands = resp.commands.len(),
                            "commands arrived by long-poll"
                        );
                    }
                    if self
                        .run_commands(&resp.commands, resp.command_key.as_ref())
                        .await?
                        || self.rescan
                    {
                        return Ok(());
                    }
                }
                Err(e) if e.status() == Some(404) => {
                    tracing::info!(
                        recheck_secs = POLL_OFF_RECHECK.as_secs(),
                        "the platform does not know long-polls (an older version); commands wait for the next heartbeat"
                    );
                    self.poll_off_until = Some(Instant::now() + POLL_OFF_RECHECK);
                }
                Err(e) => match Failure::from(e) {
                    f @ (Failure::Revoked(_) | Failure::Unauthorized | Failure::Pending) => {
                        return Err(f);
                    }
                    Failure::Other(why) => {
                        // The next heartbeat finds out what is wrong and backs off.
                        tracing::debug!(error = %why, "long-poll failed; waiting for the next heartbeat");
                        if !stopping() {
                            tokio::time::sleep_until(until.into()).await;
                        }
                        return Ok(());
                    }
                    Failure::HandOver(exe) => return Err(Failure::HandOver(exe)),
                },
            }
        }
    }
}
