//! Properties of maintenance windows over any instant, zone and schedule, and of the
//! operator-text parsers (start time, days, durations) over any input.

use chrono::{DateTime, TimeDelta, Utc};
use patchctl_policy::window::{
    Day, Window, WindowSpec, WindowState, format_minutes, parse_days, parse_minutes, parse_start,
};
use proptest::prelude::*;

const ZONES: &[&str] = &[
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "Pacific/Chatham",
    "Pacific/Apia",
    "America/Santiago",
    "Africa/Casablanca",
];

fn windows() -> impl Strategy<Value = Window> {
    (
        0..ZONES.len(),
        0u8..128,
        0u32..24,
        0u32..60,
        1u32..=10080,
        0u32..10080,
    )
        .prop_map(|(zone, mask, h, m, duration, min)| {
            WindowSpec {
                days: Day::ALL
                    .into_iter()
                    .filter(|d| mask & (1 << (*d as u8)) != 0)
                    .collect(),
                start: format!("{h:02}:{m:02}"),
                timezone: ZONES[zone].to_string(),
                duration_minutes: duration,
                min_remaining_minutes: min % duration,
            }
            .validate()
            .expect("generated specs are valid")
        })
}

/// Instants from 1990 to 2060, to the second.
fn instants() -> impl Strategy<Value = DateTime<Utc>> {
    (631_152_000i64..2_871_763_200).prop_map(|s| DateTime::from_timestamp(s, 0).expect("in range"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn state_is_consistent(w in windows(), now in instants()) {
        match w.state_at(now) {
            WindowState::Open { opened_at, closes_at } => {
                prop_assert!(opened_at <= now && now < closes_at);
                prop_assert_eq!(closes_at - opened_at, w.duration());
            }
            WindowState::Closed { opens_at } => {
                prop_assert!(opens_at > now);
                let at_open = w.state_at(opens_at);
                let opened = matches!(at_open, WindowState::Open { opened_at, .. } if opened_at == opens_at);
                prop_assert!(opened, "not open at its opening: {:?}", at_open);
                // Nothing opens between now and then.
                prop_assert_eq!(w.next_opening(now), Some(opens_at));
            }
        }
    }

    #[test]
    fn next_openings_strictly_increase(w in windows(), after in instants(), n in 1usize..20) {
        let next = w.next_openings(after, n);
        prop_assert_eq!(next.len(), n);
        prop_assert!(next[0].opens_at > after);
        for pair in next.windows(2) {
            prop_assert!(pair[0].opens_at < pair[1].opens_at);
        }
        for o in &next {
            prop_assert_eq!(o.closes_at - o.opens_at, w.duration());
            prop_assert_eq!(o.local_opens_at.with_timezone(&Utc), o.opens_at);
        }
        // Consecutive openings are at most a week and a day apart.
        for pair in next.windows(2) {
            prop_assert!(pair[1].opens_at - pair[0].opens_at <= TimeDelta::days(8));
        }
    }

    #[test]
    fn may_start_agrees_with_state(w in windows(), now in instants()) {
        match (w.state_at(now), w.may_start(now)) {
            (WindowState::Open { closes_at, .. }, Ok(o)) => {
                prop_assert!(closes_at - now >= w.min_remaining());
                prop_assert_eq!(o.closes_at, closes_at);
            }
            (WindowState::Open { closes_at, .. }, Err(_)) => prop_assert!(closes_at - now < w.min_remaining()),
            (WindowState::Closed { .. }, Ok(_)) => prop_assert!(false, "closed but may start"),
            (WindowState::Closed { .. }, Err(_)) => {}
        }
    }

    #[test]
    fn start_parser_never_panics_and_round_trips(text in ".{0,12}", h in 0u32..24, m in 0u32..60) {
        let _ = parse_start(&text);
        let t = parse_start(&format!("{h:02}:{m:02}")).expect("valid");
        prop_assert_eq!(t.format("%H:%M").to_string(), format!("{h:02}:{m:02}"));
    }

    #[test]
    fn duration_parser_never_panics_and_round_trips(text in "[0-9dhm ]{0,12}|.{0,12}", minutes in 0u32..100_000) {
        let _ = parse_minutes(&text);
        prop_assert_eq!(parse_minutes(&format_minutes(minutes)), Ok(minutes));
    }

    #[test]
    fn days_parser_never_panics(text in "[a-zA-Z, ]{0,30}|.{0,30}") {
        if let Ok(days) = parse_days(&text) {
            prop_assert!(days.len() <= text.split(',').count());
        }
    }
}
