//! Maintenance windows on the operator API: `GET/POST /api/v1/windows`,
//! `GET/PUT/DELETE /api/v1/windows/{window}`, `GET /api/v1/windows/{window}/next`.
//! A window belongs to a group and opens on some week days at a local time in an IANA
//! time zone, for a duration of elapsed time (docs/windows.md).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A maintenance window as the API shows it, with its state at the time of the answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WindowInfo {
    /// Id.
    pub id: Uuid,
    /// Name, unique in the organisation.
    pub name: String,
    /// The group whose hosts it applies to.
    pub group_id: Uuid,
    /// The group's name.
    pub group_name: String,
    /// Days it opens on (`mon` … `sun`); empty: every day.
    pub days: Vec<String>,
    /// Local opening time, `HH:MM`.
    pub start: String,
    /// IANA time zone of `start`.
    pub timezone: String,
    /// How long it stays open, in elapsed minutes.
    pub duration_minutes: u32,
    /// An install starts only while at least this many minutes remain.
    pub min_remaining_minutes: u32,
    /// What a host that was offline during its window does: `next_window` or
    /// `immediately`.
    pub missed_policy: String,
    /// Who created it.
    pub created_by: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was last changed.
    pub updated_at: DateTime<Utc>,
    /// Its state now.
    pub now: WindowNow,
}

/// A window's state at an instant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WindowNow {
    /// The instant this state is for.
    pub at: DateTime<Utc>,
    /// Whether it is open.
    pub open: bool,
    /// When the current opening began (when open).
    pub opened_at: Option<DateTime<Utc>>,
    /// When it closes (when open).
    pub closes_at: Option<DateTime<Utc>>,
    /// The next opening after the current one (or after now when closed).
    pub next_opening: Option<DateTime<Utc>>,
    /// Whether an install may start now (open, and at least the minimum remaining left).
    pub may_start: bool,
    /// Why an install may not start now.
    pub why_not: Option<String>,
}

/// `POST /api/v1/windows`: a new window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewWindowRequest {
    /// Name, unique in the organisation: 1 to 64 characters.
    pub name: String,
    /// The group: its id or its name.
    pub group: String,
    /// Days (`mon` … `sun`); empty or absent: every day.
    #[serde(default)]
    pub days: Vec<String>,
    /// Local opening time `HH:MM`, or `now`: the current minute in the zone, every day.
    pub start: String,
    /// IANA time zone (default `UTC`).
    #[serde(default)]
    pub timezone: Option<String>,
    /// Duration in minutes, 1 to 10,080 (a week).
    pub duration_minutes: u32,
    /// Minimum minutes left for an install to start (default 0); less than the duration.
    #[serde(default)]
    pub min_remaining_minutes: u32,
    /// `next_window` (default) or `immediately`.
    #[serde(default)]
    pub missed_policy: Option<String>,
}

/// `PUT /api/v1/windows/{window}`: the fields to change; absent fields keep their value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateWindowRequest {
    /// New name.
    #[serde(default)]
    pub name: Option<String>,
    /// New group (id or name).
    #[serde(default)]
    pub group: Option<String>,
    /// New days (empty: every day).
    #[serde(default)]
    pub days: Option<Vec<String>>,
    /// New local start `HH:MM`, or `now` (which also makes it every day).
    #[serde(default)]
    pub start: Option<String>,
    /// New IANA time zone.
    #[serde(default)]
    pub timezone: Option<String>,
    /// New duration in minutes.
    #[serde(default)]
    pub duration_minutes: Option<u32>,
    /// New minimum remaining minutes.
    #[serde(default)]
    pub min_remaining_minutes: Option<u32>,
    /// New missed-window policy.
    #[serde(default)]
    pub missed_policy: Option<String>,
}

/// `GET /api/v1/windows/{window}/next`: the next openings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WindowOpenings {
    /// The window.
    pub window: Uuid,
    /// Its time zone.
    pub timezone: String,
    /// The openings after now, in order.
    pub openings: Vec<OpeningInfo>,
}

/// One opening of a window, in UTC and in the window's local time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OpeningInfo {
    /// When it opens (UTC).
    pub opens_at: DateTime<Utc>,
    /// When it closes (UTC).
    pub closes_at: DateTime<Utc>,
    /// When it opens, local time with its offset (RFC 3339).
    pub local_opens_at: String,
    /// When it closes, local time with its offset (RFC 3339).
    pub local_closes_at: String,
    /// The zone's abbreviation at the opening (`CET`, `EDT`).
    pub local_zone: String,
}

/// `GET /api/v1/windows/{window}/next?count=N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NextQuery {
    /// How many openings (1 to 100, default 10).
    pub count: Option<u32>,
}

/// `GET /api/v1/windows?group=`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowListQuery {
    /// Only the windows of this group (id or name).
    pub group: Option<String>,
}
