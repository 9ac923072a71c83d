//! The dashboard's views ([`DashboardStore`]): the pages of lists it shows, filtered and
//! paged in the database so that a fleet of 100,000 hosts is never loaded whole. The
//! SQL is in `sql/dashboard.rs`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use patchctl_proto::api::CommandState;
use uuid::Uuid;

use crate::error::Result;

/// Which commands a list shows (every field narrows it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommandFilter {
    /// Only commands in this state.
    pub state: Option<CommandState>,
    /// Only commands of this kind (`install`, `health_check`, ...).
    pub kind: Option<String>,
    /// Only commands for this host.
    pub host_id: Option<Uuid>,
}

/// One line of a list of commands (no result, no events: [`crate::CommandStore::command`]
/// has them).
#[derive(Debug, Clone, PartialEq)]
pub struct CommandLine {
    /// Command id.
    pub id: Uuid,
    /// The host.
    pub host_id: Uuid,
    /// The host's name.
    pub hostname: String,
    /// Kind.
    pub kind: String,
    /// Current state.
    pub state: CommandState,
    /// When it was queued.
    pub created_at: DateTime<Utc>,
    /// When it last changed state.
    pub updated_at: DateTime<Utc>,
    /// How many times it was handed to the agent.
    pub deliveries: u32,
}

/// The queries behind the dashboard's lists.
#[async_trait]
pub trait DashboardStore: Send + Sync + 'static {
    /// Commands of `org_id` that `filter` keeps, newest first (by queue time, then id),
    /// strictly before `before` when given (the last line of the previous page), at most
    /// `limit`.
    async fn command_lines(
        &self,
        org_id: Uuid,
        filter: &CommandFilter,
        before: Option<(DateTime<Utc>, Uuid)>,
        limit: u32,
    ) -> Result<Vec<CommandLine>>;
    /// The ids of `org_id`'s hosts that are not revoked (what the vulnerability views
    /// count), without reading their rows.
    async fn active_host_ids(&self, org_id: Uuid) -> Result<Vec<Uuid>>;
}
