//! The SQL of [`DashboardStore`]: keyset pages over `commands` (with the host's name
//! joined in, never one query per line) and the ids of an organisation's hosts.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use patchctl_proto::api::CommandState;
use uuid::Uuid;

use super::{PostgresStore, SqliteStore, corrupt, count, ms, time, uuid};
use crate::dashboard::{CommandFilter, CommandLine, DashboardStore};
use crate::error::Result;

/// A row of a command list.
#[derive(sqlx::FromRow)]
struct LineDb {
    id: String,
    host_id: String,
    hostname: String,
    kind: String,
    state: String,
    created_at: i64,
    updated_at: i64,
    deliveries: i64,
}

impl LineDb {
    fn decode(self) -> Result<CommandLine> {
        Ok(CommandLine {
            id: uuid(&self.id, "commands.id")?,
            host_id: uuid(&self.host_id, "commands.host_id")?,
            hostname: self.hostname,
            kind: self.kind,
            state: CommandState::parse(&self.state).ok_or_else(|| {
                corrupt("commands.state", format!("unknown state {:?}", self.state))
            })?,
            created_at: time(self.created_at, "commands.created_at")?,
            updated_at: time(self.updated_at, "commands.updated_at")?,
            deliveries: count(self.deliveries, "commands.deliveries")?,
        })
    }
}

/// Implements [`DashboardStore`] for `$store` (a struct with a `reader` pool of
/// database `$db`).
macro_rules! impl_dashboard {
    ($store:ident, $db:ty) => {
        #[async_trait]
        impl DashboardStore for $store {
            async fn command_lines(
                &self,
                org_id: Uuid,
                filter: &CommandFilter,
                before: Option<(DateTime<Utc>, Uuid)>,
                limit: u32,
            ) -> Result<Vec<CommandLine>> {
                if limit == 0 {
                    return Ok(Vec::new());
                }
                let mut qb = sqlx::QueryBuilder::<$db>::new(
                    "SELECT c.id, c.host_id, h.hostname, c.kind, c.state, c.created_at, \
                     c.updated_at, c.deliveries FROM commands c \
                     JOIN hosts h ON h.id = c.host_id WHERE c.org_id = ",
                );
                qb.push_bind(org_id.to_string());
                if let Some(s) = filter.state {
                    qb.push(" AND c.state = ").push_bind(s.as_str());
                }
                if let Some(k) = &filter.kind {
                    qb.push(" AND c.kind = ").push_bind(k.clone());
                }
                if let Some(h) = filter.host_id {
                    qb.push(" AND c.host_id = ").push_bind(h.to_string());
                }
                if let Some((at, id)) = before {
                    let at = ms(at);
                    qb.push(" AND (c.created_at < ")
                        .push_bind(at)
                        .push(" OR (c.created_at = ")
                        .push_bind(at)
                        .push(" AND c.id < ")
                        .push_bind(id.to_string())
                        .push("))");
                }
                qb.push(" ORDER BY c.created_at DESC, c.id DESC LIMIT ")
                    .push_bind(i64::from(limit));
                let rows: Vec<LineDb> = qb.build_query_as().fetch_all(&self.reader).await?;
                rows.into_iter().map(LineDb::decode).collect()
            }

            async fn active_host_ids(&self, org_id: Uuid) -> Result<Vec<Uuid>> {
                let rows: Vec<(String,)> =
                    sqlx::query_as("SELECT id FROM hosts WHERE org_id = $1 AND revoked = FALSE")
                        .bind(org_id.to_string())
                        .fetch_all(&self.reader)
                        .await?;
                rows.iter().map(|(id,)| uuid(id, "hosts.id")).collect()
            }
        }
    };
}

impl_dashboard!(SqliteStore, sqlx::Sqlite);
impl_dashboard!(PostgresStore, sqlx::Postgres);
