//! Maintenance windows: a recurring schedule in an IANA time zone (week days, a local
//! start time, a duration) and the questions asked of it — is it open at a given
//! instant, may an install start now, when does it open next.
//!
//! Daylight-saving rules (docs/windows.md):
//! - a start time that falls in a spring-forward gap opens at the first instant after
//!   the gap (the transition itself);
//! - on a fall-back day a start time that occurs twice opens once, at its first
//!   occurrence;
//! - the duration is elapsed time, so a window that spans a transition is as long in
//!   real time as on any other day (its closing wall-clock time moves by the shift);
//! - a window that opened on an earlier day and has not yet closed (crossing midnight,
//!   or a week day crossing into the next) is open.
//!
//! With a duration longer than the time between two openings, windows overlap; the
//! state at an instant then names the latest opening, the one that closes last.

use std::fmt;
use std::str::FromStr;

use chrono::{
    DateTime, Datelike, Days, LocalResult, NaiveDate, NaiveTime, TimeDelta, TimeZone, Utc,
};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// The longest window: a week.
pub const MAX_DURATION_MINUTES: u32 = 7 * 24 * 60;

/// A day of the week, as an operator writes it (`mon` … `sun`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Day {
    /// Monday.
    Mon,
    /// Tuesday.
    Tue,
    /// Wednesday.
    Wed,
    /// Thursday.
    Thu,
    /// Friday.
    Fri,
    /// Saturday.
    Sat,
    /// Sunday.
    Sun,
}

impl Day {
    /// Every day, Monday first.
    pub const ALL: [Day; 7] = [
        Day::Mon,
        Day::Tue,
        Day::Wed,
        Day::Thu,
        Day::Fri,
        Day::Sat,
        Day::Sun,
    ];

    /// The short lower-case name (`mon`).
    pub fn as_str(self) -> &'static str {
        match self {
            Day::Mon => "mon",
            Day::Tue => "tue",
            Day::Wed => "wed",
            Day::Thu => "thu",
            Day::Fri => "fri",
            Day::Sat => "sat",
            Day::Sun => "sun",
        }
    }

    fn index(self) -> u32 {
        self as u32
    }

    fn of(date: NaiveDate) -> Day {
        Day::ALL[date.weekday().num_days_from_monday() as usize]
    }
}

impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Day {
    type Err = WindowError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        let day = match lower.as_str() {
            "mon" | "monday" => Day::Mon,
            "tue" | "tuesday" => Day::Tue,
            "wed" | "wednesday" => Day::Wed,
            "thu" | "thursday" => Day::Thu,
            "fri" | "friday" => Day::Fri,
            "sat" | "saturday" => Day::Sat,
            "sun" | "sunday" => Day::Sun,
            _ => return Err(WindowError::BadDay(s.to_string())),
        };
        Ok(day)
    }
}

/// Parses a comma-separated list of days (`mon,tue`); `daily`, `every` or an empty text
/// mean every day (an empty list).
pub fn parse_days(text: &str) -> Result<Vec<Day>, WindowError> {
    let text = text.trim();
    if text.is_empty() || text.eq_ignore_ascii_case("daily") || text.eq_ignore_ascii_case("every") {
        return Ok(Vec::new());
    }
    text.split(',').map(str::parse).collect()
}

/// Formats days as `parse_days` reads them (`daily` for every day).
pub fn format_days(days: &[Day]) -> String {
    if days.is_empty() {
        return "daily".to_string();
    }
    days.iter()
        .map(|d| d.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// What to do for a host that was offline during its window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MissedPolicy {
    /// Wait for the next window (the default).
    #[default]
    NextWindow,
    /// Start as soon as the host is back, even outside a window.
    Immediately,
}

impl MissedPolicy {
    /// The stored and wire name (`next_window`, `immediately`).
    pub fn as_str(self) -> &'static str {
        match self {
            MissedPolicy::NextWindow => "next_window",
            MissedPolicy::Immediately => "immediately",
        }
    }
}

impl fmt::Display for MissedPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MissedPolicy {
    type Err = WindowError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().replace('-', "_").as_str() {
            "next_window" => Ok(MissedPolicy::NextWindow),
            "immediately" => Ok(MissedPolicy::Immediately),
            _ => Err(WindowError::BadMissedPolicy(s.to_string())),
        }
    }
}

/// A window as an operator writes it, not yet checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowSpec {
    /// The days it opens on; empty for every day.
    #[serde(default)]
    pub days: Vec<Day>,
    /// The local opening time, `HH:MM` (24-hour).
    pub start: String,
    /// The IANA time zone the start time is in (`Europe/Berlin`, `UTC`).
    pub timezone: String,
    /// How long it stays open, in elapsed minutes.
    pub duration_minutes: u32,
    /// An install starts only while at least this many minutes remain.
    #[serde(default)]
    pub min_remaining_minutes: u32,
}

/// Why a window spec is not valid; each message says what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    /// The time zone is not an IANA name.
    #[error(
        "unknown time zone {0:?}: use an IANA name such as UTC, Europe/Berlin or America/New_York"
    )]
    UnknownZone(String),
    /// The start time is not `HH:MM`.
    #[error("bad start time {0:?}: write HH:MM on a 24-hour clock, from 00:00 to 23:59")]
    BadTime(String),
    /// A day name is not one of mon … sun.
    #[error("bad day {0:?}: use mon, tue, wed, thu, fri, sat, sun (comma-separated) or daily")]
    BadDay(String),
    /// The duration is zero.
    #[error("the duration must be at least one minute")]
    ZeroDuration,
    /// The duration is longer than a week.
    #[error(
        "a duration of {0} minutes is longer than a week: at most {MAX_DURATION_MINUTES} minutes (7d)"
    )]
    TooLong(u32),
    /// The minimum remaining time leaves no time to start.
    #[error(
        "the minimum remaining time ({min} minutes) must be shorter than the duration ({duration} minutes)"
    )]
    MinRemainingTooLong {
        /// The minimum remaining minutes asked for.
        min: u32,
        /// The window's duration in minutes.
        duration: u32,
    },
    /// The missed-window policy is not known.
    #[error("bad missed-window policy {0:?}: use next_window or immediately")]
    BadMissedPolicy(String),
    /// A duration text is not understood.
    #[error("bad duration {0:?}: write minutes or hours and minutes such as 90m, 2h, 1h30m or 1d")]
    BadDuration(String),
}

/// A checked window: only values that make sense.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    days: u8,
    start: NaiveTime,
    zone: Tz,
    duration: TimeDelta,
    min_remaining: TimeDelta,
}

/// The state of a window at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum WindowState {
    /// Open: it opened at `opened_at` and closes at `closes_at` (exclusive).
    Open {
        /// When the current opening began.
        opened_at: DateTime<Utc>,
        /// When it closes.
        closes_at: DateTime<Utc>,
    },
    /// Closed until `opens_at`.
    Closed {
        /// The next opening.
        opens_at: DateTime<Utc>,
    },
}

/// Why an install may not start now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NotNow {
    /// The window is closed.
    #[error("the window is closed until {opens_at}")]
    Closed {
        /// The next opening.
        opens_at: DateTime<Utc>,
    },
    /// The window is open but closes too soon.
    #[error(
        "only {remaining_minutes} minutes of the window are left (at least {min_remaining_minutes} needed); it opens next at {next_opening}"
    )]
    TooLittleLeft {
        /// Whole minutes left before it closes.
        remaining_minutes: i64,
        /// The minimum asked for.
        min_remaining_minutes: i64,
        /// When it closes.
        closes_at: DateTime<Utc>,
        /// The opening after this one.
        next_opening: DateTime<Utc>,
    },
}

/// An opening of the window as an instant and in the window's local time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Opening {
    /// When it opens.
    pub opens_at: DateTime<Utc>,
    /// When it closes.
    pub closes_at: DateTime<Utc>,
    /// The same opening in the window's zone.
    pub local_opens_at: DateTime<Tz>,
    /// The closing in the window's zone.
    pub local_closes_at: DateTime<Tz>,
}

/// Parses `HH:MM` (24-hour, two-digit minutes).
pub fn parse_start(text: &str) -> Result<NaiveTime, WindowError> {
    let bad = || WindowError::BadTime(text.to_string());
    let (h, m) = text.trim().split_once(':').ok_or_else(bad)?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return Err(bad());
    }
    if !h.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let (h, m): (u32, u32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    NaiveTime::from_hms_opt(h, m, 0).ok_or_else(bad)
}

/// Parses a duration as an operator writes it: `90` or `90m` (minutes), `2h`, `1h30m`,
/// `1d`, `1d2h`. Answers whole minutes.
pub fn parse_minutes(text: &str) -> Result<u32, WindowError> {
    let bad = || WindowError::BadDuration(text.to_string());
    let t = text.trim().to_ascii_lowercase();
    if t.is_empty() {
        return Err(bad());
    }
    if t.bytes().all(|b| b.is_ascii_digit()) {
        return t.parse().map_err(|_| bad());
    }
    let mut total: u64 = 0;
    let mut number = String::new();
    let mut last_unit = 0u8;
    for c in t.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let (unit, rank) = match c {
            'd' => (24 * 60, 3),
            'h' => (60, 2),
            'm' => (1, 1),
            _ => return Err(bad()),
        };
        // Units in order, each once: 1d2h30m.
        if number.is_empty() || number.len() > 6 || (last_unit != 0 && rank >= last_unit) {
            return Err(bad());
        }
        last_unit = rank;
        total += number.parse::<u64>().map_err(|_| bad())? * unit;
        number.clear();
    }
    if !number.is_empty() {
        return Err(bad());
    }
    u32::try_from(total).map_err(|_| bad())
}

/// Formats minutes as `parse_minutes` reads them (`1h30m`, `2h`, `45m`, `1d`).
pub fn format_minutes(minutes: u32) -> String {
    let (d, h, m) = (minutes / 1440, minutes % 1440 / 60, minutes % 60);
    let mut out = String::new();
    if d > 0 {
        out.push_str(&format!("{d}d"));
    }
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 || out.is_empty() {
        out.push_str(&format!("{m}m"));
    }
    out
}

/// Looks up an IANA zone name (the data is built into the binary, not read from the host).
pub fn parse_zone(name: &str) -> Result<Tz, WindowError> {
    name.trim()
        .parse::<Tz>()
        .map_err(|_| WindowError::UnknownZone(name.to_string()))
}

impl WindowSpec {
    /// Checks the spec.
    pub fn validate(&self) -> Result<Window, WindowError> {
        let zone = parse_zone(&self.timezone)?;
        let start = parse_start(&self.start)?;
        if self.duration_minutes == 0 {
            return Err(WindowError::ZeroDuration);
        }
        if self.duration_minutes > MAX_DURATION_MINUTES {
            return Err(WindowError::TooLong(self.duration_minutes));
        }
        if self.min_remaining_minutes >= self.duration_minutes {
            return Err(WindowError::MinRemainingTooLong {
                min: self.min_remaining_minutes,
                duration: self.duration_minutes,
            });
        }
        let days = self
            .days
            .iter()
            .fold(0u8, |mask, d| mask | (1 << d.index()));
        Ok(Window {
            days: if days == 0 { 0x7f } else { days },
            start,
            zone,
            duration: TimeDelta::minutes(i64::from(self.duration_minutes)),
            min_remaining: TimeDelta::minutes(i64::from(self.min_remaining_minutes)),
        })
    }
}

impl Window {
    /// The window's time zone.
    pub fn zone(&self) -> Tz {
        self.zone
    }

    /// The duration.
    pub fn duration(&self) -> TimeDelta {
        self.duration
    }

    /// The minimum time that must remain for an install to start.
    pub fn min_remaining(&self) -> TimeDelta {
        self.min_remaining
    }

    /// The days it opens on (all seven when it opens every day).
    pub fn days(&self) -> Vec<Day> {
        Day::ALL
            .into_iter()
            .filter(|d| self.days & (1 << d.index()) != 0)
            .collect()
    }

    /// Whether it opens on `day`.
    fn opens_on(&self, date: NaiveDate) -> bool {
        self.days & (1 << Day::of(date).index()) != 0
    }

    /// The instant the window opens on the local `date`, if it opens that day. A start in
    /// a spring-forward gap opens at the first instant after the gap; a start that occurs
    /// twice (fall back) opens at the first occurrence.
    fn opening_on(&self, date: NaiveDate) -> Option<DateTime<Utc>> {
        if !self.opens_on(date) {
            return None;
        }
        let local = date.and_time(self.start);
        match self.zone.from_local_datetime(&local) {
            LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
            LocalResult::Ambiguous(first, _) => Some(first.with_timezone(&Utc)),
            LocalResult::None => Some(self.after_gap(local)),
        }
    }

    /// The first instant whose local wall-clock time is past `local`, which lies in a gap:
    /// the transition that made the gap. Transitions fall on whole minutes, so the first
    /// valid local minute after `local` is the transition's local time (a whole skipped
    /// day, as Samoa's in 2011, takes at most two days of minutes).
    fn after_gap(&self, local: chrono::NaiveDateTime) -> DateTime<Utc> {
        let mut t = local;
        for _ in 0..(2 * 24 * 60) {
            t += TimeDelta::minutes(1);
            match self.zone.from_local_datetime(&t) {
                LocalResult::Single(x) | LocalResult::Ambiguous(x, _) => {
                    return x.with_timezone(&Utc);
                }
                LocalResult::None => {}
            }
        }
        // No zone has a gap this long; read the wall clock as UTC rather than loop on.
        Utc.from_utc_datetime(&local)
    }

    fn local_date(&self, at: DateTime<Utc>) -> NaiveDate {
        at.with_timezone(&self.zone).date_naive()
    }

    /// The latest opening at or before `now` (looking back as far as a window can last).
    fn last_opening(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let today = self.local_date(now);
        (0..=9u64)
            .filter_map(|back| {
                let date = today
                    .checked_add_days(Days::new(1))?
                    .checked_sub_days(Days::new(back))?;
                self.opening_on(date)
            })
            .find(|t| *t <= now)
    }

    /// The state at `now`.
    pub fn state_at(&self, now: DateTime<Utc>) -> WindowState {
        if let Some(opened_at) = self.last_opening(now) {
            let closes_at = opened_at + self.duration;
            if now < closes_at {
                return WindowState::Open {
                    opened_at,
                    closes_at,
                };
            }
        }
        match self.next_opening(now) {
            Some(opens_at) => WindowState::Closed { opens_at },
            // Only at the end of chrono's calendar, far past any real use.
            None => WindowState::Closed {
                opens_at: DateTime::<Utc>::MAX_UTC,
            },
        }
    }

    /// The first opening strictly after `after`.
    pub fn next_opening(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let start = self.local_date(after).checked_sub_days(Days::new(1))?;
        (0..=9u64)
            .filter_map(|ahead| self.opening_on(start.checked_add_days(Days::new(ahead))?))
            .find(|t| *t > after)
    }

    /// The next `n` openings strictly after `after`, in order.
    pub fn next_openings(&self, after: DateTime<Utc>, n: usize) -> Vec<Opening> {
        let mut out = Vec::with_capacity(n);
        let mut cursor = after;
        while out.len() < n {
            let Some(opens_at) = self.next_opening(cursor) else {
                break;
            };
            out.push(self.opening(opens_at));
            cursor = opens_at;
        }
        out
    }

    /// An opening at `opens_at`, with its closing and local times.
    pub fn opening(&self, opens_at: DateTime<Utc>) -> Opening {
        let closes_at = opens_at + self.duration;
        Opening {
            opens_at,
            closes_at,
            local_opens_at: opens_at.with_timezone(&self.zone),
            local_closes_at: closes_at.with_timezone(&self.zone),
        }
    }

    /// Whether an install may start at `now`: the window is open and at least the minimum
    /// remaining time is left. Answers the current opening, or why not.
    pub fn may_start(&self, now: DateTime<Utc>) -> Result<Opening, NotNow> {
        match self.state_at(now) {
            WindowState::Closed { opens_at } => Err(NotNow::Closed { opens_at }),
            WindowState::Open {
                opened_at,
                closes_at,
            } => {
                let remaining = closes_at - now;
                if remaining >= self.min_remaining {
                    return Ok(self.opening(opened_at));
                }
                Err(NotNow::TooLittleLeft {
                    remaining_minutes: remaining.num_minutes(),
                    min_remaining_minutes: self.min_remaining.num_minutes(),
                    closes_at,
                    next_opening: self
                        .next_opening(opened_at)
                        .unwrap_or(DateTime::<Utc>::MAX_UTC),
                })
            }
        }
    }

    /// Whether a whole startable part of an opening passed between `since` and `now`: an
    /// opening at or after `since` whose last start time (its closing less the minimum
    /// remaining) is before `now`. A host offline through such an opening missed it.
    pub fn missed_between(&self, since: DateTime<Utc>, now: DateTime<Utc>) -> bool {
        let mut cursor = since - TimeDelta::milliseconds(1);
        while let Some(opens_at) = self.next_opening(cursor) {
            if opens_at >= now {
                return false;
            }
            if opens_at + self.duration - self.min_remaining <= now {
                return true;
            }
            cursor = opens_at;
        }
        false
    }

    /// Whether an install that has waited since `waiting_since` may start at `now` for a
    /// host under `policy`: inside the window as `may_start` says, or, with
    /// `MissedPolicy::Immediately`, at once when the host missed a window since then.
    pub fn may_start_host(
        &self,
        now: DateTime<Utc>,
        waiting_since: DateTime<Utc>,
        policy: MissedPolicy,
    ) -> Result<(), NotNow> {
        match self.may_start(now) {
            Ok(_) => Ok(()),
            Err(_)
                if policy == MissedPolicy::Immediately
                    && self.missed_between(waiting_since, now) =>
            {
                Ok(())
            }
            Err(why) => Err(why),
        }
    }

    /// The spec this window was built from (every day as an empty list).
    pub fn spec(&self) -> WindowSpec {
        WindowSpec {
            days: if self.days == 0x7f {
                Vec::new()
            } else {
                self.days()
            },
            start: self.start.format("%H:%M").to_string(),
            timezone: self.zone.name().to_string(),
            duration_minutes: u32::try_from(self.duration.num_minutes()).unwrap_or(u32::MAX),
            min_remaining_minutes: u32::try_from(self.min_remaining.num_minutes()).unwrap_or(0),
        }
    }
}

/// Whether a host whose windows are `windows` (each with its missed-window policy) may
/// start an install at `now`, having waited since `waiting_since`: yes when any of them
/// allows it (`Window::may_start_host`), and yes when it has none (a host outside every
/// window is not restricted). Otherwise the refusal whose window opens soonest.
pub fn may_start_any(
    windows: &[(Window, MissedPolicy)],
    now: DateTime<Utc>,
    waiting_since: DateTime<Utc>,
) -> Result<(), NotNow> {
    let mut soonest: Option<NotNow> = None;
    for (w, policy) in windows {
        match w.may_start_host(now, waiting_since, *policy) {
            Ok(()) => return Ok(()),
            Err(why) => {
                let opens = |n: &NotNow| match n {
                    NotNow::Closed { opens_at } => *opens_at,
                    NotNow::TooLittleLeft { next_opening, .. } => *next_opening,
                };
                if soonest.as_ref().is_none_or(|s| opens(&why) < opens(s)) {
                    soonest = Some(why);
                }
            }
        }
    }
    soonest.map_or(Ok(()), Err)
}
