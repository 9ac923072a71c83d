//! Commands: the queue, leases, results, cancellation and the event log of each
//! command ([`CommandStore`]). The SQL is in `sql/commands.rs`.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use patchctl_proto::api::CommandRecord;
use patchctl_proto::command::{CommandEnvelope, CommandResult};
use uuid::Uuid;

use crate::error::Result;

/// A command to queue.
#[derive(Debug, Clone)]
pub struct NewCommand {
    /// The command's id (chosen before queueing: the signed statement names it).
    pub id: Uuid,
    /// Organisation (must own the host).
    pub org_id: Uuid,
    /// Target host.
    pub host_id: Uuid,
    /// Validated kind.
    pub kind: String,
    /// Validated parameters.
    pub params: serde_json::Value,
    /// Queue time.
    pub now: DateTime<Utc>,
    /// After this, an undelivered command expires.
    pub expires_at: DateTime<Utc>,
    /// The statement signed by the organisation's command-signing key (`None` only in
    /// tests of what an agent does with an unsigned command).
    pub signed: Option<patchctl_proto::signing::SignedDocument>,
}

/// What recording a result did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordOutcome {
    /// The result was stored and the command moved to its final state.
    Stored,
    /// A result was already stored; nothing changed.
    Duplicate,
    /// No such command for this host; nothing changed.
    UnknownCommand,
}

/// What cancelling did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelOutcome {
    /// The command is now cancelled.
    Cancelled,
    /// No such command in this organisation.
    NotFound,
    /// The command is past `queued` (its state is given) and cannot be cancelled.
    NotCancellable(patchctl_proto::api::CommandState),
}

/// How many commands of one organisation are in one state (see
/// [`CommandStore::command_state_counts`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandStateCount {
    /// Organisation.
    pub org_id: Uuid,
    /// The organisation's name.
    pub org: String,
    /// The state.
    pub state: patchctl_proto::api::CommandState,
    /// Commands.
    pub count: u64,
}

/// The command queue. Times are passed in (never read from the clock inside) so that
/// leases and expiry are testable.
#[async_trait]
pub trait CommandStore: Send + Sync + 'static {
    /// Queues a command (state `queued`, first event recorded) and announces
    /// [`Change::Commands`](crate::Change::Commands) for its host with it: on
    /// PostgreSQL inside the transaction (heard by every node exactly when it commits),
    /// on SQLite once it committed. A host `cmd.org_id` does not own is an error, and
    /// nothing is queued or announced.
    async fn queue_command(&self, cmd: NewCommand) -> Result<CommandRecord>;
    /// Hands the host its deliverable commands, oldest first, at most `max`: queued
    /// ones, and delivered ones whose lease ran out (redelivery). Each is marked
    /// `delivered` with a lease of `lease` from `now`. Undelivered commands past their
    /// expiry become `expired` instead.
    ///
    /// It takes the writer straight away, without first asking whether the host has
    /// anything pending: callers call it only for the hosts a heartbeat batch reported
    /// in [`HeartbeatOutcome::pending_commands`]. With nothing pending it returns an
    /// empty list, correctly, at the price of a write transaction.
    ///
    /// [`HeartbeatOutcome::pending_commands`]: crate::HeartbeatOutcome::pending_commands
    async fn lease_commands(
        &self,
        host_id: Uuid,
        now: DateTime<Utc>,
        lease: Duration,
        max: u32,
    ) -> Result<Vec<CommandEnvelope>>;
    /// The hosts with queued commands (one read; after announcements were missed, the
    /// long-polls of exactly these hosts are woken).
    async fn hosts_with_queued_commands(&self) -> Result<Vec<Uuid>>;
    /// The unfinished (queued or delivered) commands of `org_id` with their signed
    /// statements, for a key rotation to sign again.
    async fn unfinished_signatures(
        &self,
        org_id: Uuid,
    ) -> Result<Vec<(Uuid, Option<patchctl_proto::signing::SignedDocument>)>>;
    /// Replaces an unfinished command's signed statement; false when it finished
    /// meanwhile.
    async fn replace_signature(
        &self,
        command_id: Uuid,
        signed: &patchctl_proto::signing::SignedDocument,
    ) -> Result<bool>;
    /// Records an agent's result, once per command id.
    async fn record_result(
        &self,
        host_id: Uuid,
        result: &CommandResult,
        now: DateTime<Utc>,
    ) -> Result<RecordOutcome>;
    /// Cancels a queued command of `org_id`.
    async fn cancel_command(
        &self,
        org_id: Uuid,
        command_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<CancelOutcome>;
    /// One command of `org_id`, with its result and every event.
    async fn command(&self, org_id: Uuid, command_id: Uuid) -> Result<Option<CommandRecord>>;
    /// Commands of `org_id` (of one host when given), newest first, at most `limit`,
    /// with results and events.
    async fn list_commands(
        &self,
        org_id: Uuid,
        host_id: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<CommandRecord>>;
    /// Commands per organisation and state, by one aggregate query (for `/metrics`;
    /// `queued` is the queue depth: queued and not leased yet). Only non-zero counts
    /// are returned.
    async fn command_state_counts(&self) -> Result<Vec<CommandStateCount>>;
    /// One page of the commands of `org_id` (of one host when given), newest first
    /// (by creation time, then id): at most `limit` that come after `before` (the
    /// creation time and id of the last of the previous page; none: from the newest),
    /// with results and events.
    async fn list_commands_page(
        &self,
        org_id: Uuid,
        host_id: Option<Uuid>,
        before: Option<(DateTime<Utc>, Uuid)>,
        limit: u32,
    ) -> Result<Vec<CommandRecord>>;
}
