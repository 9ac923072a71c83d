//! Maintenance windows: the service functions the operator API (`api/windows.rs`) and
//! the dashboard (`ui/windows.rs`) both call. A window is checked by
//! `patchctl_policy::window` before it is stored; its state is computed at the `now`
//! the caller passes (the handlers pass the clock, tests a time of their choosing).
//!
//! Windows and groups are looked up by id or by name, always in the caller's
//! organisation. Reading takes `Need::Read`, changes `Need::Administer` (also checked
//! by the route table).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use patchctl_policy::window::{
    Day, MissedPolicy, Window, WindowSpec, WindowState, format_days, parse_days, parse_zone,
};
use patchctl_proto::access::Need;
use patchctl_proto::policy::windows::{
    NewWindowRequest, OpeningInfo, UpdateWindowRequest, WindowInfo, WindowNow, WindowOpenings,
};
use patchctl_storage::{WindowFields, WindowRow};
use uuid::Uuid;

use crate::AppState;
use crate::access::Principal;
use crate::error::ApiError;

/// Longest window name, in characters.
const MAX_NAME_CHARS: usize = 64;
/// Most openings `next` answers.
pub const MAX_NEXT: u32 = 100;
/// Openings `next` answers when not told.
pub const DEFAULT_NEXT: u32 = 10;

/// The start time that means "the current minute in the window's zone".
const START_NOW: &str = "now";

/// The checked window of a stored row (a row that no longer checks, say after a zone
/// was removed from the IANA database, is reported as corrupt).
pub fn window_of(row: &WindowRow) -> Result<Window, ApiError> {
    spec_of(&row.fields).validate().map_err(|e| {
        ApiError::from(patchctl_storage::StorageError::Corrupt(format!(
            "window {}: {e}",
            row.id
        )))
    })
}

fn spec_of(f: &WindowFields) -> WindowSpec {
    WindowSpec {
        // Stored days were checked before they were stored.
        days: parse_days(&f.days).unwrap_or_default(),
        start: f.start_local.clone(),
        timezone: f.timezone.clone(),
        duration_minutes: f.duration_minutes,
        min_remaining_minutes: f.min_remaining_minutes,
    }
}

/// A window's state at `now`, as the API shows it.
pub fn state_now(w: &Window, now: DateTime<Utc>) -> WindowNow {
    let (open, opened_at, closes_at, next_opening) = match w.state_at(now) {
        WindowState::Open {
            opened_at,
            closes_at,
        } => (
            true,
            Some(opened_at),
            Some(closes_at),
            w.next_opening(opened_at),
        ),
        WindowState::Closed { opens_at } => (false, None, None, Some(opens_at)),
    };
    let verdict = w.may_start(now);
    WindowNow {
        at: now,
        open,
        opened_at,
        closes_at,
        next_opening,
        may_start: verdict.is_ok(),
        why_not: verdict.err().map(|e| e.to_string()),
    }
}

/// The API's view of a stored window at `now`.
pub fn window_info(
    row: &WindowRow,
    group_name: &str,
    now: DateTime<Utc>,
) -> Result<WindowInfo, ApiError> {
    let w = window_of(row)?;
    let f = &row.fields;
    Ok(WindowInfo {
        id: row.id,
        name: f.name.clone(),
        group_id: f.group_id,
        group_name: group_name.to_string(),
        days: parse_days(&f.days)
            .unwrap_or_default()
            .iter()
            .map(|d| d.to_string())
            .collect(),
        start: f.start_local.clone(),
        timezone: f.timezone.clone(),
        duration_minutes: f.duration_minutes,
        min_remaining_minutes: f.min_remaining_minutes,
        missed_policy: f.missed_policy.clone(),
        created_by: row.created_by.clone(),
        created_at: row.created_at,
        updated_at: row.updated_at,
        now: state_now(&w, now),
    })
}

fn no_window(window: &str) -> ApiError {
    ApiError::not_found(format!(
        "no maintenance window {window:?} in your organisation; `patchctl windows list` shows them"
    ))
}

/// The window `window` names (an id or a name) in `org_id`.
pub async fn find_window(st: &AppState, org_id: Uuid, window: &str) -> Result<WindowRow, ApiError> {
    if let Ok(id) = Uuid::parse_str(window) {
        if let Some(w) = st.store.window(org_id, id).await? {
            return Ok(w);
        }
    }
    st.store
        .window_by_name(org_id, window)
        .await?
        .ok_or_else(|| no_window(window))
}

/// The group `group` names (an id or a name) in `org_id`: its id and name.
pub async fn find_group(
    st: &AppState,
    org_id: Uuid,
    group: &str,
) -> Result<(Uuid, String), ApiError> {
    // As `policy::groups::resolve`, through storage: the policy tick asks this module
    // whether hosts may start, so it must not import `policy` back.
    let reference = group.trim();
    let found = match Uuid::parse_str(reference) {
        Ok(id) => st.store.group(org_id, id).await?,
        Err(_) => st.store.group_by_name(org_id, reference).await?,
    };
    let g = found.ok_or_else(|| {
        ApiError::not_found(format!(
            "no group {reference:?}; `patchctl groups list` shows the groups"
        ))
    })?;
    Ok((g.id, g.name))
}

/// The names of the groups of `org_id`, by id.
pub async fn group_names(st: &AppState, org_id: Uuid) -> Result<HashMap<Uuid, String>, ApiError> {
    Ok(st
        .store
        .list_groups(org_id)
        .await?
        .into_iter()
        .map(|g| (g.id, g.name))
        .collect())
}

fn name_of(names: &HashMap<Uuid, String>, id: Uuid) -> &str {
    names.get(&id).map(String::as_str).unwrap_or("?")
}

fn check_name(name: &str) -> Result<String, ApiError> {
    let name = name.trim();
    if name.is_empty()
        || name.chars().count() > MAX_NAME_CHARS
        || name.chars().any(char::is_control)
    {
        return Err(ApiError::bad_request(format!(
            "a window name is 1 to {MAX_NAME_CHARS} printable characters"
        )));
    }
    Ok(name.to_string())
}

fn days_of(days: &[String]) -> Result<Vec<Day>, ApiError> {
    let mut out = Vec::new();
    for d in days {
        for day in parse_days(d)? {
            if !out.contains(&day) {
                out.push(day);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Checks a window's fields and answers them as stored: `start` `now` becomes the
/// current minute in the zone (every day unless `days` were given).
fn checked(
    mut f: WindowFields,
    days: Option<&[String]>,
    now: DateTime<Utc>,
) -> Result<WindowFields, ApiError> {
    f.name = check_name(&f.name)?;
    let zone = parse_zone(&f.timezone)?;
    f.timezone = zone.name().to_string();
    if f.start_local.trim().eq_ignore_ascii_case(START_NOW) {
        f.start_local = now.with_timezone(&zone).format("%H:%M").to_string();
        if days.is_none() {
            f.days = String::new();
        }
    }
    if let Some(days) = days {
        let days = days_of(days)?;
        f.days = if days.is_empty() || days.len() == 7 {
            String::new()
        } else {
            format_days(&days)
        };
    }
    f.missed_policy = f
        .missed_policy
        .parse::<MissedPolicy>()?
        .as_str()
        .to_string();
    let w = spec_of(&f).validate()?;
    // As the window reads it back (`7:05` is stored as `07:05`).
    f.start_local = w.spec().start;
    Ok(f)
}

/// The windows of the caller's organisation (of one group when given), at `now`.
pub async fn list(
    st: &AppState,
    by: &Principal,
    group: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Vec<WindowInfo>, ApiError> {
    by.require(Need::Read)?;
    let group_id = match group {
        Some(g) => Some(find_group(st, by.org_id, g).await?.0),
        None => None,
    };
    let names = group_names(st, by.org_id).await?;
    st.store
        .list_windows(by.org_id, group_id)
        .await?
        .iter()
        .map(|r| window_info(r, name_of(&names, r.fields.group_id), now))
        .collect()
}

/// One window at `now`.
pub async fn show(
    st: &AppState,
    by: &Principal,
    window: &str,
    now: DateTime<Utc>,
) -> Result<WindowInfo, ApiError> {
    by.require(Need::Read)?;
    let row = find_window(st, by.org_id, window).await?;
    let names = group_names(st, by.org_id).await?;
    window_info(&row, name_of(&names, row.fields.group_id), now)
}

/// Creates a window (needs Administer).
pub async fn create(
    st: &AppState,
    by: &Principal,
    req: NewWindowRequest,
    now: DateTime<Utc>,
) -> Result<WindowInfo, ApiError> {
    by.require(Need::Administer)?;
    let (group_id, group_name) = find_group(st, by.org_id, &req.group).await?;
    let fields = WindowFields {
        group_id,
        name: req.name,
        days: String::new(),
        start_local: req.start,
        timezone: req.timezone.unwrap_or_else(|| "UTC".to_string()),
        duration_minutes: req.duration_minutes,
        min_remaining_minutes: req.min_remaining_minutes,
        missed_policy: req
            .missed_policy
            .unwrap_or_else(|| MissedPolicy::default().to_string()),
    };
    let fields = checked(fields, Some(&req.days), now)?;
    let row = st
        .store
        .create_window(by.org_id, &fields, &by.label(), now)
        .await?;
    window_info(&row, &group_name, now)
}

/// Changes the fields a request names (needs Administer).
pub async fn update(
    st: &AppState,
    by: &Principal,
    window: &str,
    req: UpdateWindowRequest,
    now: DateTime<Utc>,
) -> Result<WindowInfo, ApiError> {
    by.require(Need::Administer)?;
    let row = find_window(st, by.org_id, window).await?;
    let mut f = row.fields.clone();
    let group_name = match &req.group {
        Some(g) => {
            let (id, name) = find_group(st, by.org_id, g).await?;
            f.group_id = id;
            Some(name)
        }
        None => None,
    };
    if let Some(name) = req.name {
        f.name = name;
    }
    if let Some(start) = req.start {
        f.start_local = start;
    }
    if let Some(zone) = req.timezone {
        f.timezone = zone;
    }
    if let Some(d) = req.duration_minutes {
        f.duration_minutes = d;
    }
    if let Some(m) = req.min_remaining_minutes {
        f.min_remaining_minutes = m;
    }
    if let Some(p) = req.missed_policy {
        f.missed_policy = p;
    }
    let f = checked(f, req.days.as_deref(), now)?;
    let updated = st
        .store
        .update_window(by.org_id, row.id, &f, now)
        .await?
        .ok_or_else(|| no_window(window))?;
    let group_name = match group_name {
        Some(n) => n,
        None => name_of(&group_names(st, by.org_id).await?, f.group_id).to_string(),
    };
    window_info(&updated, &group_name, now)
}

/// Deletes a window (needs Administer); answers it as it was.
pub async fn delete(
    st: &AppState,
    by: &Principal,
    window: &str,
    now: DateTime<Utc>,
) -> Result<WindowInfo, ApiError> {
    by.require(Need::Administer)?;
    let row = find_window(st, by.org_id, window).await?;
    let names = group_names(st, by.org_id).await?;
    let info = window_info(&row, name_of(&names, row.fields.group_id), now)?;
    if !st.store.delete_window(by.org_id, row.id).await? {
        return Err(no_window(window));
    }
    Ok(info)
}

/// The next `count` openings after `now` (1 to [`MAX_NEXT`]), in UTC and local time.
pub async fn next(
    st: &AppState,
    by: &Principal,
    window: &str,
    count: Option<u32>,
    now: DateTime<Utc>,
) -> Result<WindowOpenings, ApiError> {
    by.require(Need::Read)?;
    let count = count.unwrap_or(DEFAULT_NEXT);
    if count == 0 || count > MAX_NEXT {
        return Err(ApiError::bad_request(format!(
            "count must be 1 to {MAX_NEXT}"
        )));
    }
    let row = find_window(st, by.org_id, window).await?;
    let w = window_of(&row)?;
    let openings = w
        .next_openings(now, count as usize)
        .into_iter()
        .map(|o| OpeningInfo {
            opens_at: o.opens_at,
            closes_at: o.closes_at,
            local_opens_at: o.local_opens_at.to_rfc3339(),
            local_closes_at: o.local_closes_at.to_rfc3339(),
            local_zone: o.local_opens_at.format("%Z").to_string(),
        })
        .collect();
    Ok(WindowOpenings {
        window: row.id,
        timezone: row.fields.timezone,
        openings,
    })
}

/// Whether host `host_id` may start an install at `now`, having waited since
/// `waiting_since`: the windows of every group it is in, combined by
/// `patchctl_policy::window::may_start_any` (any window that allows it; a host in no
/// window is not restricted). The inner error says why not.
pub async fn host_may_start(
    st: &AppState,
    org_id: Uuid,
    host_id: Uuid,
    now: DateTime<Utc>,
    waiting_since: DateTime<Utc>,
) -> Result<Result<(), patchctl_policy::window::NotNow>, ApiError> {
    let groups = st.store.host_group_ids(org_id, host_id).await?;
    let rows = st.store.windows_for_groups(org_id, &groups).await?;
    let mut windows = Vec::with_capacity(rows.len());
    for r in &rows {
        let policy = r.fields.missed_policy.parse::<MissedPolicy>()?;
        windows.push((window_of(r)?, policy));
    }
    Ok(patchctl_policy::window::may_start_any(
        &windows,
        now,
        waiting_since,
    ))
}

/// [`host_may_start`] for many hosts (`(host, waiting since)`) with one read of the
/// groups, the windows and the hosts' facts: what a deployment's tick asks for a whole
/// ring. A host that is not found is not restricted (it is in no group's window).
pub async fn hosts_may_start(
    st: &AppState,
    org_id: Uuid,
    hosts: &[(Uuid, DateTime<Utc>)],
    now: DateTime<Utc>,
) -> Result<HashMap<Uuid, Result<(), patchctl_policy::window::NotNow>>, ApiError> {
    let groups = st.store.list_groups(org_id).await?;
    let ids: Vec<Uuid> = groups.iter().map(|g| g.id).collect();
    let rows = st.store.windows_for_groups(org_id, &ids).await?;
    if rows.is_empty() {
        return Ok(hosts.iter().map(|(h, _)| (*h, Ok(()))).collect());
    }
    let mut by_group: HashMap<Uuid, Vec<(Window, MissedPolicy)>> = HashMap::new();
    for r in &rows {
        let policy = r.fields.missed_policy.parse::<MissedPolicy>()?;
        by_group
            .entry(r.fields.group_id)
            .or_default()
            .push((window_of(r)?, policy));
    }
    let facts: HashMap<Uuid, _> = st
        .store
        .host_facts(org_id, None)
        .await?
        .into_iter()
        .map(|f| (f.host_id, f.facts))
        .collect();
    Ok(hosts
        .iter()
        .map(|(host, since)| {
            let windows: Vec<(Window, MissedPolicy)> = match facts.get(host) {
                Some(f) => groups
                    .iter()
                    .filter(|g| by_group.contains_key(&g.id) && g.selector.matches(f))
                    .flat_map(|g| by_group[&g.id].iter().cloned())
                    .collect(),
                None => Vec::new(),
            };
            (
                *host,
                patchctl_policy::window::may_start_any(&windows, now, *since),
            )
        })
        .collect())
}
