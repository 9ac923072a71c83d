//! Maintenance windows on a controlled clock: every instant is written out, nothing
//! sleeps or reads the clock. DST cases use the 2026 transitions of Europe/Berlin
//! (29 March, 25 October, at 01:00 UTC), America/New_York (8 March at 07:00 UTC,
//! 1 November at 06:00 UTC) and Australia/Lord_Howe (a half-hour shift: 5 April at
//! 15:00 UTC, 3 October at 15:30 UTC).

use chrono::{DateTime, TimeZone, Utc};
use patchctl_policy::window::{
    Day, MissedPolicy, NotNow, Window, WindowError, WindowSpec, WindowState, format_days,
    format_minutes, parse_days, parse_minutes, parse_start,
};

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("test instant")
        .with_timezone(&Utc)
}

fn window(days: &str, start: &str, zone: &str, duration: u32, min: u32) -> Window {
    WindowSpec {
        days: parse_days(days).expect("days"),
        start: start.to_string(),
        timezone: zone.to_string(),
        duration_minutes: duration,
        min_remaining_minutes: min,
    }
    .validate()
    .expect("valid window")
}

/// Asserts that the window is open at `now`, between the two instants given.
fn check_open(w: &Window, now: &str, opened: &str, closes: &str) {
    assert_eq!(
        w.state_at(utc(now)),
        WindowState::Open {
            opened_at: utc(opened),
            closes_at: utc(closes)
        },
        "at {now}"
    );
}

/// Asserts that the window is closed at `now` and opens next at `opens`.
fn check_closed(w: &Window, now: &str, opens: &str) {
    assert_eq!(
        w.state_at(utc(now)),
        WindowState::Closed {
            opens_at: utc(opens)
        },
        "at {now}"
    );
}

#[test]
fn berlin_spring_forward_start_in_the_gap_opens_when_the_gap_ends() {
    // 02:30 does not exist on 29 March 2026: clocks go from 02:00 CET to 03:00 CEST.
    let w = window("daily", "02:30", "Europe/Berlin", 60, 0);
    check_open(
        &w,
        "2026-03-28T01:45:00Z",
        "2026-03-28T01:30:00Z",
        "2026-03-28T02:30:00Z",
    );
    check_closed(&w, "2026-03-29T00:59:00Z", "2026-03-29T01:00:00Z");
    check_open(
        &w,
        "2026-03-29T01:00:00Z",
        "2026-03-29T01:00:00Z",
        "2026-03-29T02:00:00Z",
    );
    check_closed(&w, "2026-03-29T02:00:00Z", "2026-03-30T00:30:00Z");
    let next: Vec<_> = w
        .next_openings(utc("2026-03-27T12:00:00Z"), 4)
        .iter()
        .map(|o| o.opens_at)
        .collect();
    assert_eq!(
        next,
        [
            "2026-03-28T01:30:00Z",
            "2026-03-29T01:00:00Z",
            "2026-03-30T00:30:00Z",
            "2026-03-31T00:30:00Z"
        ]
        .map(utc)
    );
    let local = w.next_openings(utc("2026-03-28T12:00:00Z"), 1)[0].local_opens_at;
    assert_eq!(local.format("%H:%M %Z").to_string(), "03:00 CEST");
}

#[test]
fn berlin_fall_back_opens_once_at_the_first_occurrence_and_lasts_elapsed_time() {
    // 02:30 happens twice on 25 October 2026: 00:30 UTC (CEST) and 01:30 UTC (CET).
    let w = window("daily", "02:30", "Europe/Berlin", 60, 0);
    check_open(
        &w,
        "2026-10-25T00:30:00Z",
        "2026-10-25T00:30:00Z",
        "2026-10-25T01:30:00Z",
    );
    // The second 02:30 local does not open it again.
    check_closed(&w, "2026-10-25T01:30:00Z", "2026-10-26T01:30:00Z");
    check_closed(&w, "2026-10-25T01:45:00Z", "2026-10-26T01:30:00Z");
    // A three-hour window across the shift lasts three hours: 01:00 CEST to 03:00 CET.
    let w = window("sun", "01:00", "Europe/Berlin", 180, 0);
    check_open(
        &w,
        "2026-10-25T01:59:00Z",
        "2026-10-24T23:00:00Z",
        "2026-10-25T02:00:00Z",
    );
    let o = w.next_openings(utc("2026-10-20T00:00:00Z"), 1)[0];
    assert_eq!(
        o.local_closes_at.format("%H:%M %Z").to_string(),
        "03:00 CET"
    );
}

#[test]
fn new_york_spring_forward_and_fall_back() {
    // 8 March 2026: 02:00 EST becomes 03:00 EDT at 07:00 UTC; 02:00 itself is skipped.
    let w = window("sun", "02:00", "America/New_York", 120, 0);
    check_closed(&w, "2026-03-08T06:59:00Z", "2026-03-08T07:00:00Z");
    check_open(
        &w,
        "2026-03-08T08:59:00Z",
        "2026-03-08T07:00:00Z",
        "2026-03-08T09:00:00Z",
    );
    // The week before and after: 02:00 EST = 07:00 UTC, 02:00 EDT = 06:00 UTC.
    let next: Vec<_> = w
        .next_openings(utc("2026-02-28T00:00:00Z"), 3)
        .iter()
        .map(|o| o.opens_at)
        .collect();
    assert_eq!(
        next,
        [
            "2026-03-01T07:00:00Z",
            "2026-03-08T07:00:00Z",
            "2026-03-15T06:00:00Z"
        ]
        .map(utc)
    );
    // 1 November 2026: 01:30 happens at 05:30 UTC (EDT) and 06:30 UTC (EST).
    let w = window("daily", "01:30", "America/New_York", 45, 0);
    check_open(
        &w,
        "2026-11-01T05:30:00Z",
        "2026-11-01T05:30:00Z",
        "2026-11-01T06:15:00Z",
    );
    check_closed(&w, "2026-11-01T06:30:00Z", "2026-11-02T06:30:00Z");
}

#[test]
fn lord_howe_half_hour_shift() {
    // 4 October 2026: 02:00 +10:30 becomes 02:30 +11 at 15:30 UTC on the 3rd.
    let w = window("sun", "02:15", "Australia/Lord_Howe", 30, 0);
    check_closed(&w, "2026-10-03T15:29:00Z", "2026-10-03T15:30:00Z");
    check_open(
        &w,
        "2026-10-03T15:59:00Z",
        "2026-10-03T15:30:00Z",
        "2026-10-03T16:00:00Z",
    );
    // 5 April 2026: 02:00 +11 becomes 01:30 +10:30 at 15:00 UTC on the 4th, so 01:45 is
    // at 14:45 UTC and again at 15:15 UTC; the window opens at the first.
    let w = window("sun", "01:45", "Australia/Lord_Howe", 20, 0);
    check_open(
        &w,
        "2026-04-04T14:50:00Z",
        "2026-04-04T14:45:00Z",
        "2026-04-04T15:05:00Z",
    );
    check_closed(&w, "2026-04-04T15:15:00Z", "2026-04-11T15:15:00Z");
}

#[test]
fn a_window_crossing_midnight_is_open_the_next_day() {
    let w = window("fri", "22:00", "UTC", 240, 0);
    check_open(
        &w,
        "2026-06-06T01:59:00Z",
        "2026-06-05T22:00:00Z",
        "2026-06-06T02:00:00Z",
    );
    check_closed(&w, "2026-06-06T02:00:00Z", "2026-06-12T22:00:00Z");
    // Sunday night into Monday, in a zone: Monday is not a window day, it is still open.
    let w = window("sun", "23:00", "Europe/Berlin", 180, 0);
    check_open(
        &w,
        "2026-06-07T23:30:00Z",
        "2026-06-07T21:00:00Z",
        "2026-06-08T00:00:00Z",
    );
    // A two-day window opened last Saturday.
    let w = window("sat", "20:00", "America/New_York", 2 * 1440, 0);
    check_open(
        &w,
        "2026-06-08T20:00:00Z",
        "2026-06-07T00:00:00Z",
        "2026-06-09T00:00:00Z",
    );
}

#[test]
fn min_remaining_stops_late_starts() {
    let w = window("daily", "02:00", "UTC", 60, 30);
    assert!(w.may_start(utc("2026-06-01T02:00:00Z")).is_ok());
    assert!(
        w.may_start(utc("2026-06-01T02:30:00Z")).is_ok(),
        "exactly the minimum left"
    );
    let refused = w.may_start(utc("2026-06-01T02:31:00Z")).unwrap_err();
    assert_eq!(
        refused,
        NotNow::TooLittleLeft {
            remaining_minutes: 29,
            min_remaining_minutes: 30,
            closes_at: utc("2026-06-01T03:00:00Z"),
            next_opening: utc("2026-06-02T02:00:00Z"),
        }
    );
    assert!(refused.to_string().contains("only 29 minutes"), "{refused}");
    let closed = w.may_start(utc("2026-06-01T03:00:00Z")).unwrap_err();
    assert_eq!(
        closed,
        NotNow::Closed {
            opens_at: utc("2026-06-02T02:00:00Z")
        }
    );
    assert!(
        closed
            .to_string()
            .contains("closed until 2026-06-02 02:00:00 UTC"),
        "{closed}"
    );
}

#[test]
fn missed_window_policy() {
    let w = window("daily", "02:00", "UTC", 60, 15);
    let since = utc("2026-06-01T01:00:00Z");
    // Back at 10:00 after sleeping through the 02:00 window.
    let back = utc("2026-06-01T10:00:00Z");
    assert!(w.missed_between(since, back));
    assert!(
        w.may_start_host(back, since, MissedPolicy::NextWindow)
            .is_err()
    );
    assert!(
        w.may_start_host(back, since, MissedPolicy::Immediately)
            .is_ok()
    );
    // Nothing missed yet: waiting since 03:00, back at 10:00.
    let since = utc("2026-06-01T03:00:00Z");
    assert!(!w.missed_between(since, back));
    assert!(
        w.may_start_host(back, since, MissedPolicy::Immediately)
            .is_err()
    );
    // A window whose startable part has not ended is not missed: at 02:40 it can still start.
    let since = utc("2026-06-01T01:00:00Z");
    assert!(!w.missed_between(since, utc("2026-06-01T02:40:00Z")));
    assert!(w.missed_between(since, utc("2026-06-01T02:45:00Z")));
    assert_eq!(
        "next-window".parse::<MissedPolicy>(),
        Ok(MissedPolicy::NextWindow)
    );
    assert_eq!(
        "immediately".parse::<MissedPolicy>(),
        Ok(MissedPolicy::Immediately)
    );
    assert!("later".parse::<MissedPolicy>().is_err());
}

fn check_invalid(
    days: &str,
    start: &str,
    zone: &str,
    duration: u32,
    min: u32,
    expected: WindowError,
) {
    let spec = WindowSpec {
        days: parse_days(days).expect("days"),
        start: start.to_string(),
        timezone: zone.to_string(),
        duration_minutes: duration,
        min_remaining_minutes: min,
    };
    assert_eq!(spec.validate(), Err(expected));
}

#[test]
fn invalid_specs_are_refused_with_a_reason() {
    check_invalid(
        "",
        "02:00",
        "Europe/Berlim",
        60,
        0,
        WindowError::UnknownZone("Europe/Berlim".into()),
    );
    check_invalid(
        "",
        "24:00",
        "UTC",
        60,
        0,
        WindowError::BadTime("24:00".into()),
    );
    check_invalid("", "2:5", "UTC", 60, 0, WindowError::BadTime("2:5".into()));
    check_invalid(
        "",
        "02:60",
        "UTC",
        60,
        0,
        WindowError::BadTime("02:60".into()),
    );
    check_invalid("", "02:00", "UTC", 0, 0, WindowError::ZeroDuration);
    check_invalid("", "02:00", "UTC", 10081, 0, WindowError::TooLong(10081));
    check_invalid(
        "",
        "02:00",
        "UTC",
        60,
        60,
        WindowError::MinRemainingTooLong {
            min: 60,
            duration: 60,
        },
    );
    assert_eq!(
        parse_days("mon,funday"),
        Err(WindowError::BadDay("funday".into()))
    );
    let message = WindowError::UnknownZone("Mars/Olympus".into()).to_string();
    assert!(message.contains("IANA"), "{message}");
    // A week is allowed.
    window("mon", "00:00", "UTC", 10080, 0);
}

#[test]
fn days_durations_and_times_parse_as_written() {
    assert_eq!(
        parse_days("mon,Tue , sunday").unwrap(),
        vec![Day::Mon, Day::Tue, Day::Sun]
    );
    assert_eq!(parse_days("daily").unwrap(), Vec::<Day>::new());
    assert_eq!(format_days(&[Day::Sat, Day::Sun]), "sat,sun");
    for (text, minutes) in [
        ("90", 90),
        ("90m", 90),
        ("2h", 120),
        ("1h30m", 90),
        ("1d", 1440),
        ("1d2h", 1560),
    ] {
        assert_eq!(parse_minutes(text), Ok(minutes), "{text}");
    }
    for bad in ["", "h", "2x", "30m2h", "1h1h", "-5m", "2h30", "9999999m"] {
        assert!(parse_minutes(bad).is_err(), "{bad:?}");
    }
    assert_eq!(format_minutes(90), "1h30m");
    assert_eq!(format_minutes(0), "0m");
    assert_eq!(parse_start("7:05").unwrap().to_string(), "07:05:00");
}

#[test]
fn spec_round_trips_through_the_window() {
    let spec = WindowSpec {
        days: vec![Day::Mon, Day::Wed],
        start: "22:15".into(),
        timezone: "Asia/Kolkata".into(),
        duration_minutes: 95,
        min_remaining_minutes: 20,
    };
    assert_eq!(spec.validate().unwrap().spec(), spec);
    let every = window("", "00:00", "UTC", 5, 0);
    assert!(every.spec().days.is_empty());
    assert_eq!(every.days().len(), 7);
}

#[test]
fn samoa_skipped_day_opens_after_the_gap() {
    // Pacific/Apia skipped 30 December 2011 entirely (UTC-10 to UTC+14 at 10:00 UTC).
    let w = window("fri", "12:00", "Pacific/Apia", 60, 0);
    let o = w.next_openings(Utc.with_ymd_and_hms(2011, 12, 25, 0, 0, 0).unwrap(), 1)[0];
    assert_eq!(o.opens_at, utc("2011-12-30T10:00:00Z"));
    assert_eq!(
        o.local_opens_at.format("%Y-%m-%d %H:%M").to_string(),
        "2011-12-31 00:00"
    );
}

#[test]
fn a_host_may_start_when_any_of_its_windows_allows() {
    use patchctl_policy::window::may_start_any;
    let night = window("daily", "02:00", "UTC", 60, 0);
    let noon = window("daily", "12:00", "UTC", 60, 0);
    let since = utc("2026-06-01T11:00:00Z");
    let both = [
        (night.clone(), MissedPolicy::NextWindow),
        (noon.clone(), MissedPolicy::NextWindow),
    ];
    assert_eq!(
        may_start_any(&both, utc("2026-06-01T12:30:00Z"), since),
        Ok(())
    );
    assert_eq!(
        may_start_any(&both, utc("2026-06-01T02:30:00Z"), since),
        Ok(())
    );
    // Closed in both: the refusal names the opening that comes first.
    assert_eq!(
        may_start_any(&both, utc("2026-06-01T14:00:00Z"), since),
        Err(NotNow::Closed {
            opens_at: utc("2026-06-02T02:00:00Z")
        })
    );
    // No window: not restricted.
    assert_eq!(
        may_start_any(&[], utc("2026-06-01T14:00:00Z"), since),
        Ok(())
    );
    // Missed the noon window, whose policy is to run at once.
    let catch_up = [
        (night, MissedPolicy::NextWindow),
        (noon, MissedPolicy::Immediately),
    ];
    assert_eq!(
        may_start_any(&catch_up, utc("2026-06-01T14:00:00Z"), since),
        Ok(())
    );
    assert!(
        may_start_any(
            &catch_up,
            utc("2026-06-01T14:00:00Z"),
            utc("2026-06-01T13:30:00Z")
        )
        .is_err()
    );
}
