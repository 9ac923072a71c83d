//! Maintenance windows ([`WindowStore`]): recurring windows per group, stored as the
//! operator wrote them (days, local start, IANA zone, durations, missed-window policy).
//! The platform checks a window (`patchctl_policy::window`) before storing it; storage
//! keeps the text. The SQL is in `sql/windows.rs`.
//!
//! Names are unique per organisation. Deleting a group deletes its windows.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::Result;

/// A stored maintenance window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowRow {
    /// Id.
    pub id: Uuid,
    /// Organisation.
    pub org_id: Uuid,
    /// The fields an operator sets (the group among them).
    pub fields: WindowFields,
    /// Who created it (the actor's label).
    pub created_by: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was last changed.
    pub updated_at: DateTime<Utc>,
}

/// What an operator sets on a window (all of it, on create and on update).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowFields {
    /// The group whose hosts it applies to.
    pub group_id: Uuid,
    /// Name, unique in the organisation.
    pub name: String,
    /// Days as `mon,tue` (empty: every day).
    pub days: String,
    /// Local start, `HH:MM`.
    pub start_local: String,
    /// IANA time zone name.
    pub timezone: String,
    /// Duration in minutes (1 to 10,080).
    pub duration_minutes: u32,
    /// Minimum minutes that must remain for an install to start.
    pub min_remaining_minutes: u32,
    /// `next_window` or `immediately`.
    pub missed_policy: String,
}

/// Maintenance windows. Times are passed in.
#[async_trait]
pub trait WindowStore: Send + Sync + 'static {
    /// Creates a window; `Conflict` when the name is taken in the organisation.
    async fn create_window(
        &self,
        org_id: Uuid,
        fields: &WindowFields,
        created_by: &str,
        now: DateTime<Utc>,
    ) -> Result<WindowRow>;
    /// The windows of `org_id` (of one group when given), by name.
    async fn list_windows(&self, org_id: Uuid, group_id: Option<Uuid>) -> Result<Vec<WindowRow>>;
    /// One window of `org_id`.
    async fn window(&self, org_id: Uuid, id: Uuid) -> Result<Option<WindowRow>>;
    /// The window of `org_id` with this name.
    async fn window_by_name(&self, org_id: Uuid, name: &str) -> Result<Option<WindowRow>>;
    /// Replaces a window's fields; none when there is no such window, `Conflict` when
    /// the new name is taken.
    async fn update_window(
        &self,
        org_id: Uuid,
        id: Uuid,
        fields: &WindowFields,
        now: DateTime<Utc>,
    ) -> Result<Option<WindowRow>>;
    /// Deletes a window; false when there is none.
    async fn delete_window(&self, org_id: Uuid, id: Uuid) -> Result<bool>;
    /// The windows of any of `group_ids` in `org_id`, by group then name (a host's
    /// windows are those of its groups).
    async fn windows_for_groups(&self, org_id: Uuid, group_ids: &[Uuid]) -> Result<Vec<WindowRow>>;
}
