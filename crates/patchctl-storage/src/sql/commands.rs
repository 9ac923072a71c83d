//! The SQL of [`CommandStore`]: `commands` (the queue: queued, delivered with a lease,
//! then a final state) and `command_events` (every state change, in order). Each state
//! change and its event are written in one transaction; queueing announces
//! [`Change::Commands`] with it (`commit_announcing`).

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use patchctl_proto::api::{CommandEvent, CommandRecord, CommandState};
use patchctl_proto::command::{CommandEnvelope, CommandResult, ResultStatus};
use uuid::Uuid;

use super::{
    ID_CHUNK, PostgresStore, SqliteStore, corrupt, count, from_json, ms, time, to_json, trunc, uuid,
};
use crate::changes::Change;
use crate::commands::{CancelOutcome, CommandStateCount, CommandStore, NewCommand, RecordOutcome};
use crate::error::Result;

/// Events per multi-row `INSERT` (4 parameters each).
const EVENT_CHUNK: usize = 1_000;
/// Longest event detail stored (in characters).
const MAX_DETAIL_CHARS: usize = 1_000;
/// Event detail when an undelivered command expires.
const EXPIRED_DETAIL: &str = "not delivered before it expired";
/// Event detail when an operator cancels a command.
const CANCELLED_DETAIL: &str = "cancelled by an operator";

/// The columns of `commands` that make a [`CommandRecord`] (see [`CommandDb`]).
macro_rules! command_columns {
    () => {
        "id, host_id, kind, params_json, state, created_at, updated_at, expires_at, \
         deliveries, result_json"
    };
}

/// Commands per organisation and state.
const COMMAND_STATE_COUNTS: &str = "SELECT c.org_id, o.name, c.state, COUNT(*) AS n \
     FROM commands c JOIN orgs o ON o.id = c.org_id \
     GROUP BY c.org_id, o.name, c.state ORDER BY o.name, c.state";

/// Milliseconds in `d`, saturating.
fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Decodes a stored command state.
fn state(s: &str, column: &str) -> Result<CommandState> {
    CommandState::parse(s).ok_or_else(|| corrupt(column, format!("unknown state {s:?}")))
}

/// The state a result moves its command to.
fn result_state(status: ResultStatus) -> CommandState {
    match status {
        ResultStatus::Succeeded => CommandState::Succeeded,
        ResultStatus::Failed => CommandState::Failed,
        ResultStatus::Rejected => CommandState::Rejected,
    }
}

/// An event detail, cut to [`MAX_DETAIL_CHARS`].
fn detail(s: &str) -> String {
    s.chars().take(MAX_DETAIL_CHARS).collect()
}

// ---------------------------------------------------------------------------------
// Rows as they come out of (and go into) the database.

/// The [`command_columns!`] of a row of `commands`.
#[derive(sqlx::FromRow)]
struct CommandDb {
    id: String,
    host_id: String,
    kind: String,
    params_json: String,
    state: String,
    created_at: i64,
    updated_at: i64,
    expires_at: i64,
    deliveries: i64,
    result_json: Option<String>,
}

impl CommandDb {
    fn decode(self, events: Vec<CommandEvent>) -> Result<CommandRecord> {
        Ok(CommandRecord {
            id: uuid(&self.id, "commands.id")?,
            host_id: uuid(&self.host_id, "commands.host_id")?,
            kind: self.kind,
            params: from_json(&self.params_json, "commands.params_json")?,
            state: state(&self.state, "commands.state")?,
            created_at: time(self.created_at, "commands.created_at")?,
            updated_at: time(self.updated_at, "commands.updated_at")?,
            expires_at: time(self.expires_at, "commands.expires_at")?,
            deliveries: count(self.deliveries, "commands.deliveries")?,
            result: self
                .result_json
                .as_deref()
                .map(|s| from_json(s, "commands.result_json"))
                .transpose()?,
            events,
        })
    }
}

/// A row of `command_events`.
#[derive(sqlx::FromRow)]
struct EventDb {
    command_id: String,
    state: String,
    at: i64,
    detail: String,
}

impl EventDb {
    fn decode(self) -> Result<CommandEvent> {
        Ok(CommandEvent {
            state: state(&self.state, "command_events.state")?,
            at: time(self.at, "command_events.at")?,
            detail: self.detail,
        })
    }
}

/// A deliverable command, as `lease_commands` selects it.
#[derive(sqlx::FromRow)]
struct LeaseDb {
    id: String,
    kind: String,
    params_json: String,
    created_at: i64,
    signed_json: Option<String>,
}

/// An event to append.
struct NewEvent {
    command_id: String,
    state: CommandState,
    at: i64,
    detail: String,
}

// ---------------------------------------------------------------------------------

/// Implements [`CommandStore`] for `$store` (a struct with `writer` and `reader` pools
/// of database `$db`).
macro_rules! impl_commands {
    ($store:ident, $db:ty) => {
        impl $store {
            /// Appends `events` to `command_events` inside `tx`.
            async fn append_events(
                tx: &mut sqlx::Transaction<'_, $db>,
                events: &[NewEvent],
            ) -> Result<()> {
                for chunk in events.chunks(EVENT_CHUNK) {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO command_events (command_id, state, at, detail) ",
                    );
                    qb.push_values(chunk, |mut b, e| {
                        b.push_bind(e.command_id.as_str())
                            .push_bind(e.state.as_str())
                            .push_bind(e.at)
                            .push_bind(e.detail.as_str());
                    });
                    qb.build().execute(&mut **tx).await?;
                }
                Ok(())
            }

            /// The events of the commands `ids`, oldest first, by command id.
            async fn events_of(
                &self,
                ids: &[String],
            ) -> Result<HashMap<String, Vec<CommandEvent>>> {
                let mut out: HashMap<String, Vec<CommandEvent>> = HashMap::new();
                for chunk in ids.chunks(ID_CHUNK) {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(
                        "SELECT command_id, state, at, detail FROM command_events \
                         WHERE command_id IN (",
                    );
                    let mut list = qb.separated(", ");
                    for id in chunk {
                        list.push_bind(id.as_str());
                    }
                    qb.push(") ORDER BY id");
                    let rows: Vec<EventDb> = qb.build_query_as().fetch_all(&self.reader).await?;
                    for row in rows {
                        let id = row.command_id.clone();
                        out.entry(id).or_default().push(row.decode()?);
                    }
                }
                Ok(out)
            }
        }

        #[async_trait]
        impl CommandStore for $store {
            async fn queue_command(&self, cmd: NewCommand) -> Result<CommandRecord> {
                let id = cmd.id;
                let params_json = to_json(&cmd.params, "commands.params_json")?;
                let signed_json = cmd
                    .signed
                    .as_ref()
                    .map(|d| to_json(d, "commands.signed_json"))
                    .transpose()?;
                let now = ms(cmd.now);
                let mut tx = self.writer.begin().await?;
                // Inserted only if the organisation owns the host.
                let done = sqlx::query(
                    "INSERT INTO commands (id, org_id, host_id, kind, params_json, state, \
                     created_at, updated_at, expires_at, deliveries, signed_json) \
                     SELECT $1, org_id, id, $4, $5, $6, $7, $7, $8, 0, $9 \
                     FROM hosts WHERE id = $2 AND org_id = $3",
                )
                .bind(id.to_string())
                .bind(cmd.host_id.to_string())
                .bind(cmd.org_id.to_string())
                .bind(&cmd.kind)
                .bind(&params_json)
                .bind(CommandState::Queued.as_str())
                .bind(now)
                .bind(ms(cmd.expires_at))
                .bind(signed_json)
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() == 0 {
                    return Err(sqlx::Error::RowNotFound.into());
                }
                let event = NewEvent {
                    command_id: id.to_string(),
                    state: CommandState::Queued,
                    at: now,
                    detail: String::new(),
                };
                Self::append_events(&mut tx, std::slice::from_ref(&event)).await?;
                // The host's long-poll wakes, on whichever node holds it.
                let change = Change::Commands { host: cmd.host_id };
                self.commit_announcing(tx, &[change]).await?;
                Ok(CommandRecord {
                    id,
                    host_id: cmd.host_id,
                    kind: cmd.kind,
                    params: cmd.params,
                    state: CommandState::Queued,
                    created_at: trunc(cmd.now),
                    updated_at: trunc(cmd.now),
                    expires_at: trunc(cmd.expires_at),
                    deliveries: 0,
                    result: None,
                    events: vec![CommandEvent {
                        state: CommandState::Queued,
                        at: trunc(cmd.now),
                        detail: String::new(),
                    }],
                })
            }

            async fn unfinished_signatures(
                &self,
                org_id: Uuid,
            ) -> Result<Vec<(Uuid, Option<patchctl_proto::signing::SignedDocument>)>> {
                let rows: Vec<(String, Option<String>)> = sqlx::query_as(
                    "SELECT id, signed_json FROM commands \
                     WHERE org_id = $1 AND state IN ($2, $3) ORDER BY created_at, id",
                )
                .bind(org_id.to_string())
                .bind(CommandState::Queued.as_str())
                .bind(CommandState::Delivered.as_str())
                .fetch_all(&self.reader)
                .await?;
                rows.into_iter()
                    .map(|(id, signed)| {
                        Ok((
                            uuid(&id, "commands.id")?,
                            signed
                                .as_deref()
                                .map(|j| from_json(j, "commands.signed_json"))
                                .transpose()?,
                        ))
                    })
                    .collect()
            }

            async fn hosts_with_queued_commands(&self) -> Result<Vec<Uuid>> {
                let rows: Vec<(String,)> =
                    sqlx::query_as("SELECT DISTINCT host_id FROM commands WHERE state = $1")
                        .bind(CommandState::Queued.as_str())
                        .fetch_all(&self.reader)
                        .await?;
                rows.iter()
                    .map(|(h,)| uuid(h, "commands.host_id"))
                    .collect()
            }

            async fn replace_signature(
                &self,
                command_id: Uuid,
                signed: &patchctl_proto::signing::SignedDocument,
            ) -> Result<bool> {
                let done = sqlx::query(
                    "UPDATE commands SET signed_json = $2 WHERE id = $1 AND state IN ($3, $4)",
                )
                .bind(command_id.to_string())
                .bind(to_json(signed, "commands.signed_json")?)
                .bind(CommandState::Queued.as_str())
                .bind(CommandState::Delivered.as_str())
                .execute(&self.writer)
                .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn lease_commands(
                &self,
                host_id: Uuid,
                now: DateTime<Utc>,
                lease: Duration,
                max: u32,
            ) -> Result<Vec<CommandEnvelope>> {
                let host = host_id.to_string();
                let now = ms(now);
                let until = now.saturating_add(duration_ms(lease));
                // No "anything pending?" read first: callers lease only for the hosts
                // their heartbeat batch reported pending (`HeartbeatOutcome`).
                let mut tx = self.writer.begin().await?;

                // 1. Undelivered (or lease-lapsed) commands past their expiry expire.
                let expired: Vec<String> = sqlx::query_scalar(
                    "UPDATE commands SET state = $3, updated_at = $2, lease_until = NULL \
                     WHERE host_id = $1 AND expires_at < $2 \
                     AND (state = $4 OR (state = $5 AND lease_until < $2)) \
                     RETURNING id",
                )
                .bind(&host)
                .bind(now)
                .bind(CommandState::Expired.as_str())
                .bind(CommandState::Queued.as_str())
                .bind(CommandState::Delivered.as_str())
                .fetch_all(&mut *tx)
                .await?;
                let events: Vec<NewEvent> = expired
                    .into_iter()
                    .map(|command_id| NewEvent {
                        command_id,
                        state: CommandState::Expired,
                        at: now,
                        detail: EXPIRED_DETAIL.to_owned(),
                    })
                    .collect();
                Self::append_events(&mut tx, &events).await?;

                // 2. The deliverable ones, oldest first.
                let candidates: Vec<LeaseDb> = if max == 0 {
                    Vec::new()
                } else {
                    sqlx::query_as(
                        "SELECT id, kind, params_json, created_at, signed_json FROM commands \
                         WHERE host_id = $1 \
                         AND (state = $3 OR (state = $4 AND lease_until < $2)) \
                         ORDER BY created_at, id LIMIT $5",
                    )
                    .bind(&host)
                    .bind(now)
                    .bind(CommandState::Queued.as_str())
                    .bind(CommandState::Delivered.as_str())
                    .bind(i64::from(max))
                    .fetch_all(&mut *tx)
                    .await?
                };
                if candidates.is_empty() {
                    tx.commit().await?;
                    return Ok(Vec::new());
                }
                let mut envelopes = Vec::with_capacity(candidates.len());
                for c in &candidates {
                    envelopes.push(CommandEnvelope {
                        id: uuid(&c.id, "commands.id")?,
                        kind: c.kind.clone(),
                        params: from_json(&c.params_json, "commands.params_json")?,
                        queued_at: time(c.created_at, "commands.created_at")?,
                        signed: c
                            .signed_json
                            .as_deref()
                            .map(|j| from_json(j, "commands.signed_json"))
                            .transpose()?,
                    });
                }

                // 3. Lease them. The state condition is checked again so that a
                // concurrent lease (PostgreSQL, READ COMMITTED) never hands out the
                // same command twice: only the rows this statement changed count.
                let mut qb = sqlx::QueryBuilder::<$db>::new("UPDATE commands SET state = ");
                qb.push_bind(CommandState::Delivered.as_str())
                    .push(", lease_until = ")
                    .push_bind(until)
                    .push(", deliveries = deliveries + 1, updated_at = ")
                    .push_bind(now)
                    .push(" WHERE host_id = ")
                    .push_bind(host.as_str())
                    .push(" AND (state = ")
                    .push_bind(CommandState::Queued.as_str())
                    .push(" OR (state = ")
                    .push_bind(CommandState::Delivered.as_str())
                    .push(" AND lease_until < ")
                    .push_bind(now)
                    .push(")) AND id IN (");
                let mut list = qb.separated(", ");
                for c in &candidates {
                    list.push_bind(c.id.as_str());
                }
                qb.push(") RETURNING id, deliveries");
                let leased: Vec<(String, i64)> = qb.build_query_as().fetch_all(&mut *tx).await?;
                let attempts: HashMap<String, i64> = leased.into_iter().collect();
                let mut events = Vec::with_capacity(attempts.len());
                let mut delivered = Vec::with_capacity(attempts.len());
                for (c, envelope) in candidates.iter().zip(envelopes) {
                    if let Some(n) = attempts.get(&c.id) {
                        events.push(NewEvent {
                            command_id: c.id.clone(),
                            state: CommandState::Delivered,
                            at: now,
                            detail: format!("delivered (attempt {n})"),
                        });
                        delivered.push(envelope);
                    }
                }
                Self::append_events(&mut tx, &events).await?;
                tx.commit().await?;
                Ok(delivered)
            }

            async fn record_result(
                &self,
                host_id: Uuid,
                result: &CommandResult,
                now: DateTime<Utc>,
            ) -> Result<RecordOutcome> {
                let id = result.command_id.to_string();
                let host = host_id.to_string();
                let new_state = result_state(result.status);
                let result_json = to_json(result, "commands.result_json")?;
                let mut tx = self.writer.begin().await?;
                // Only a command without a result that is queued, delivered or expired
                // takes one (a late result beats expiry).
                let done = sqlx::query(
                    "UPDATE commands SET state = $3, result_json = $4, updated_at = $5, \
                     lease_until = NULL \
                     WHERE id = $1 AND host_id = $2 AND result_json IS NULL \
                     AND state IN ($6, $7, $8)",
                )
                .bind(&id)
                .bind(&host)
                .bind(new_state.as_str())
                .bind(&result_json)
                .bind(ms(now))
                .bind(CommandState::Queued.as_str())
                .bind(CommandState::Delivered.as_str())
                .bind(CommandState::Expired.as_str())
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() == 0 {
                    let exists: Option<String> = sqlx::query_scalar(
                        "SELECT state FROM commands WHERE id = $1 AND host_id = $2",
                    )
                    .bind(&id)
                    .bind(&host)
                    .fetch_optional(&mut *tx)
                    .await?;
                    tx.rollback().await?;
                    return Ok(match exists {
                        Some(_) => RecordOutcome::Duplicate,
                        None => RecordOutcome::UnknownCommand,
                    });
                }
                let event = NewEvent {
                    command_id: id,
                    state: new_state,
                    at: ms(now),
                    detail: detail(&result.summary),
                };
                Self::append_events(&mut tx, std::slice::from_ref(&event)).await?;
                tx.commit().await?;
                Ok(RecordOutcome::Stored)
            }

            async fn cancel_command(
                &self,
                org_id: Uuid,
                command_id: Uuid,
                now: DateTime<Utc>,
            ) -> Result<CancelOutcome> {
                let id = command_id.to_string();
                let org = org_id.to_string();
                let mut tx = self.writer.begin().await?;
                let done = sqlx::query(
                    "UPDATE commands SET state = $3, updated_at = $4, lease_until = NULL \
                     WHERE id = $1 AND org_id = $2 AND state = $5",
                )
                .bind(&id)
                .bind(&org)
                .bind(CommandState::Cancelled.as_str())
                .bind(ms(now))
                .bind(CommandState::Queued.as_str())
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() == 0 {
                    let current: Option<String> = sqlx::query_scalar(
                        "SELECT state FROM commands WHERE id = $1 AND org_id = $2",
                    )
                    .bind(&id)
                    .bind(&org)
                    .fetch_optional(&mut *tx)
                    .await?;
                    tx.rollback().await?;
                    return match current {
                        Some(s) => Ok(CancelOutcome::NotCancellable(state(&s, "commands.state")?)),
                        None => Ok(CancelOutcome::NotFound),
                    };
                }
                let event = NewEvent {
                    command_id: id,
                    state: CommandState::Cancelled,
                    at: ms(now),
                    detail: CANCELLED_DETAIL.to_owned(),
                };
                Self::append_events(&mut tx, std::slice::from_ref(&event)).await?;
                tx.commit().await?;
                Ok(CancelOutcome::Cancelled)
            }

            async fn command(
                &self,
                org_id: Uuid,
                command_id: Uuid,
            ) -> Result<Option<CommandRecord>> {
                let row: Option<CommandDb> = sqlx::query_as(concat!(
                    "SELECT ",
                    command_columns!(),
                    " FROM commands WHERE id = $1 AND org_id = $2"
                ))
                .bind(command_id.to_string())
                .bind(org_id.to_string())
                .fetch_optional(&self.reader)
                .await?;
                let Some(row) = row else {
                    return Ok(None);
                };
                let mut events = self.events_of(std::slice::from_ref(&row.id)).await?;
                let events = events.remove(&row.id).unwrap_or_default();
                row.decode(events).map(Some)
            }

            async fn list_commands(
                &self,
                org_id: Uuid,
                host_id: Option<Uuid>,
                limit: u32,
            ) -> Result<Vec<CommandRecord>> {
                if limit == 0 {
                    return Ok(Vec::new());
                }
                let org = org_id.to_string();
                let limit = i64::from(limit);
                let rows: Vec<CommandDb> = match host_id {
                    Some(host_id) => {
                        sqlx::query_as(concat!(
                            "SELECT ",
                            command_columns!(),
                            " FROM commands WHERE org_id = $1 AND host_id = $2 \
                             ORDER BY created_at DESC, id DESC LIMIT $3"
                        ))
                        .bind(&org)
                        .bind(host_id.to_string())
                        .bind(limit)
                        .fetch_all(&self.reader)
                        .await?
                    }
                    None => {
                        sqlx::query_as(concat!(
                            "SELECT ",
                            command_columns!(),
                            " FROM commands WHERE org_id = $1 \
                             ORDER BY created_at DESC, id DESC LIMIT $2"
                        ))
                        .bind(&org)
                        .bind(limit)
                        .fetch_all(&self.reader)
                        .await?
                    }
                };
                let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
                let mut events = self.events_of(&ids).await?;
                rows.into_iter()
                    .map(|row| {
                        let ev = events.remove(&row.id).unwrap_or_default();
                        row.decode(ev)
                    })
                    .collect()
            }

            async fn command_state_counts(&self) -> Result<Vec<CommandStateCount>> {
                let rows: Vec<(String, String, String, i64)> = sqlx::query_as(COMMAND_STATE_COUNTS)
                    .fetch_all(&self.reader)
                    .await?;
                rows.into_iter()
                    .map(|(org_id, org, state, n)| {
                        Ok(CommandStateCount {
                            org_id: uuid(&org_id, "commands.org_id")?,
                            org,
                            state: CommandState::parse(&state).ok_or_else(|| {
                                corrupt("commands.state", format!("unknown value {state:?}"))
                            })?,
                            count: count(n, "COUNT(*)")?,
                        })
                    })
                    .collect()
            }

            async fn list_commands_page(
                &self,
                org_id: Uuid,
                host_id: Option<Uuid>,
                before: Option<(DateTime<Utc>, Uuid)>,
                limit: u32,
            ) -> Result<Vec<CommandRecord>> {
                if limit == 0 {
                    return Ok(Vec::new());
                }
                let (at, id) = match before {
                    Some((at, id)) => (Some(ms(at)), Some(id.to_string())),
                    None => (None, None),
                };
                let rows: Vec<CommandDb> = sqlx::query_as(concat!(
                    "SELECT ",
                    command_columns!(),
                    " FROM commands WHERE org_id = $1 \
                     AND ($2 IS NULL OR host_id = $2) \
                     AND ($3 IS NULL OR created_at < $3 OR (created_at = $3 AND id < $4)) \
                     ORDER BY created_at DESC, id DESC LIMIT $5"
                ))
                .bind(org_id.to_string())
                .bind(host_id.map(|h| h.to_string()))
                .bind(at)
                .bind(id)
                .bind(i64::from(limit))
                .fetch_all(&self.reader)
                .await?;
                let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
                let mut events = self.events_of(&ids).await?;
                rows.into_iter()
                    .map(|row| {
                        let ev = events.remove(&row.id).unwrap_or_default();
                        row.decode(ev)
                    })
                    .collect()
            }
        }
    };
}

impl_commands!(SqliteStore, sqlx::Sqlite);
impl_commands!(PostgresStore, sqlx::Postgres);
