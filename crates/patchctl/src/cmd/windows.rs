//! `patchctl windows ...`: maintenance windows over the operator API — list, show,
//! create, update, delete, and `next` (the coming openings in UTC and local time, to
//! check a daylight-saving week). Durations are written `90m`, `2h`, `1h30m`; days
//! `mon,tue` or `daily`; the start `HH:MM` or `now` (the current minute in the zone,
//! every day).

use chrono::{DateTime, SecondsFormat, Utc};
use clap::{Args, Subcommand};
use http::Method;
use patchctl_policy::window::{MissedPolicy, format_minutes, parse_days, parse_minutes};
use patchctl_proto::policy::windows::{
    NewWindowRequest, UpdateWindowRequest, WindowInfo, WindowNow, WindowOpenings,
};

use crate::client::{Api, Conn, enc};
use crate::output::{self, table};

/// `patchctl windows ...`.
#[derive(Subcommand)]
pub enum WindowsCmd {
    /// List the windows (of one group with --group), each with its state now.
    List {
        /// Only this group's windows (name or id).
        #[arg(long)]
        group: Option<String>,
    },
    /// Show one window (name or id) and its state now.
    Show {
        /// Window name or id.
        window: String,
    },
    /// Create a window for a group.
    Create {
        /// Name, unique in the organisation.
        name: String,
        /// The group whose hosts it applies to (name or id).
        #[arg(long)]
        group: String,
        #[command(flatten)]
        schedule: Schedule,
    },
    /// Change a window: only the options given change.
    Update {
        /// Window name or id.
        window: String,
        /// New name.
        #[arg(long)]
        name: Option<String>,
        /// New group (name or id).
        #[arg(long)]
        group: Option<String>,
        #[command(flatten)]
        schedule: Schedule,
    },
    /// Delete a window.
    Delete {
        /// Window name or id.
        window: String,
    },
    /// The next openings of a window, in UTC and in its local time.
    Next {
        /// Window name or id.
        window: String,
        /// How many (1 to 100).
        #[arg(long, default_value_t = 10)]
        count: u32,
    },
}

/// A window's schedule options (on `create`, absent ones take their defaults).
#[derive(Args, Debug, Clone)]
pub struct Schedule {
    /// Days it opens on: `mon,tue,...` or `daily` (create: daily).
    #[arg(long, value_parser = check_days)]
    days: Option<String>,
    /// Local opening time `HH:MM`, or `now` (the current minute in the zone, every day).
    #[arg(long)]
    start: Option<String>,
    /// IANA time zone of the start time (create: UTC).
    #[arg(long)]
    timezone: Option<String>,
    /// How long it stays open: `90m`, `2h`, `1h30m`, up to `7d` (create: required).
    #[arg(long, value_parser = minutes)]
    duration: Option<u32>,
    /// Do not start an install when less than this is left: `30m` (create: 0).
    #[arg(long, value_parser = minutes)]
    min_remaining: Option<u32>,
    /// A host that was offline during its window: `next-window` or `immediately`.
    #[arg(long, value_parser = missed)]
    missed: Option<MissedPolicy>,
}

fn minutes(s: &str) -> Result<u32, String> {
    parse_minutes(s).map_err(|e| e.to_string())
}

fn check_days(s: &str) -> Result<String, String> {
    parse_days(s)
        .map(|_| s.to_string())
        .map_err(|e| e.to_string())
}

fn missed(s: &str) -> Result<MissedPolicy, String> {
    s.parse()
        .map_err(|e: patchctl_policy::window::WindowError| e.to_string())
}

/// `--days` as the API takes them (empty: every day).
fn days_list(days: &str) -> Vec<String> {
    parse_days(days)
        .unwrap_or_default()
        .iter()
        .map(|d| d.to_string())
        .collect()
}

/// Runs a `windows` subcommand.
pub async fn run(conn: &Conn, cmd: WindowsCmd) -> anyhow::Result<()> {
    let api = Api::new(conn)?;
    let path = |w: &str, rest: &str| format!("/api/v1/windows/{}{rest}", enc(w));
    match cmd {
        WindowsCmd::List { group } => {
            let at = match group {
                Some(g) => format!("/api/v1/windows?group={}", enc(&g)),
                None => "/api/v1/windows".to_string(),
            };
            let windows: Vec<WindowInfo> = api.get(&at).await?;
            output::emit(conn.output, &windows, |w| list_table(w))?;
        }
        WindowsCmd::Show { window } => {
            let w: WindowInfo = api.get(&path(&window, "")).await?;
            output::emit(conn.output, &w, show_text)?;
        }
        WindowsCmd::Create {
            name,
            group,
            schedule: s,
        } => {
            let Some(duration_minutes) = s.duration else {
                anyhow::bail!(
                    "a window needs a duration: add --duration, for example --duration 2h"
                );
            };
            let Some(start) = s.start else {
                anyhow::bail!(
                    "a window needs a start time: add --start HH:MM (local) or --start now"
                );
            };
            let req = NewWindowRequest {
                name,
                group,
                days: s.days.as_deref().map(days_list).unwrap_or_default(),
                start,
                timezone: s.timezone,
                duration_minutes,
                min_remaining_minutes: s.min_remaining.unwrap_or(0),
                missed_policy: s.missed.map(|m| m.to_string()),
            };
            let w: WindowInfo = api
                .call(Method::POST, "/api/v1/windows", Some(&req))
                .await?;
            output::emit(conn.output, &w, |w| {
                format!("window {} created (id {})\n{}", w.name, w.id, show_text(w))
            })?;
        }
        WindowsCmd::Update {
            window,
            name,
            group,
            schedule: s,
        } => {
            let req = UpdateWindowRequest {
                name,
                group,
                days: s.days.as_deref().map(days_list),
                start: s.start,
                timezone: s.timezone,
                duration_minutes: s.duration,
                min_remaining_minutes: s.min_remaining,
                missed_policy: s.missed.map(|m| m.to_string()),
            };
            let w: WindowInfo = api
                .call(Method::PUT, &path(&window, ""), Some(&req))
                .await?;
            output::emit(conn.output, &w, |w| {
                format!("window {} updated\n{}", w.name, show_text(w))
            })?;
        }
        WindowsCmd::Delete { window } => {
            let w: WindowInfo = api
                .call::<(), _>(Method::DELETE, &path(&window, ""), None)
                .await?;
            output::emit(conn.output, &w, |w| format!("window {} deleted\n", w.name))?;
        }
        WindowsCmd::Next { window, count } => {
            let o: WindowOpenings = api
                .get(&path(&window, &format!("/next?count={count}")))
                .await?;
            output::emit(conn.output, &o, next_table)?;
        }
    }
    Ok(())
}

fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The state column: `open until T`, `closed until T`, with why an install may not start.
fn state_text(n: &WindowNow) -> String {
    let mut s = if n.open {
        format!("open until {}", n.closes_at.map(stamp).unwrap_or_default())
    } else {
        format!(
            "closed until {}",
            n.next_opening.map(stamp).unwrap_or_default()
        )
    };
    if n.open && !n.may_start {
        s.push_str(" (too late to start)");
    }
    s
}

fn days_text(days: &[String]) -> String {
    if days.is_empty() {
        "daily".to_string()
    } else {
        days.join(",")
    }
}

/// `windows list`.
fn list_table(windows: &[WindowInfo]) -> String {
    let rows = windows
        .iter()
        .map(|w| {
            vec![
                w.name.clone(),
                w.group_name.clone(),
                days_text(&w.days),
                format!("{} {}", w.start, w.timezone),
                format_minutes(w.duration_minutes),
                format_minutes(w.min_remaining_minutes),
                state_text(&w.now),
                w.id.to_string(),
            ]
        })
        .collect::<Vec<_>>();
    table(
        &[
            "NAME", "GROUP", "DAYS", "START", "DURATION", "MIN LEFT", "NOW", "ID",
        ],
        &rows,
    )
}

/// `windows show`.
fn show_text(w: &WindowInfo) -> String {
    let mut s = format!(
        "{}\n  group:          {} ({})\n  days:           {}\n  start:          {} {}\n  \
         duration:       {}\n  min remaining:  {}\n  missed window:  {}\n  now:            {}\n",
        w.name,
        w.group_name,
        w.group_id,
        days_text(&w.days),
        w.start,
        w.timezone,
        format_minutes(w.duration_minutes),
        format_minutes(w.min_remaining_minutes),
        w.missed_policy,
        state_text(&w.now),
    );
    match &w.now.why_not {
        Some(why) => s.push_str(&format!("  install now:    no: {why}\n")),
        None => s.push_str("  install now:    yes\n"),
    }
    s
}

/// `windows next`.
fn next_table(o: &WindowOpenings) -> String {
    let rows = o
        .openings
        .iter()
        .map(|x| {
            vec![
                stamp(x.opens_at),
                stamp(x.closes_at),
                x.local_opens_at.clone(),
                x.local_closes_at.clone(),
                x.local_zone.clone(),
            ]
        })
        .collect::<Vec<_>>();
    table(
        &[
            "OPENS (UTC)",
            "CLOSES (UTC)",
            "OPENS (LOCAL)",
            "CLOSES (LOCAL)",
            "ZONE",
        ],
        &rows,
    )
}
