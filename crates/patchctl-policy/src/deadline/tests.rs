//! Deadline math under test: due dates by severity and KEV, states over time,
//! exception validity, compliance tallies; proptests of the invariants (due never before
//! first seen, KEV never later than without it, excepted never overdue).

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use proptest::prelude::*;

use super::*;

fn t(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, 0, 0).unwrap()
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

#[test]
fn each_severity_gets_its_days_from_first_seen() {
    let p = DeadlinePolicy::default();
    let seen = t(2026, 1, 10, 12);
    for (sev, days) in [
        (Severity::Critical, 7),
        (Severity::High, 30),
        (Severity::Medium, 90),
        (Severity::Low, 180),
        (Severity::Negligible, 180),
        (Severity::Unknown, 90),
    ] {
        let due = p.due(seen, sev, None);
        assert_eq!(due.at, seen + Duration::days(days), "{sev:?}");
        assert_eq!(due.basis, Basis::Severity);
    }
}

#[test]
fn kev_counts_from_the_later_of_first_seen_and_date_added() {
    let p = DeadlinePolicy::default();
    // known exploited long before the host had it: 14 days from first seen
    let seen = t(2026, 3, 1, 8);
    let due = p.due(seen, Severity::High, Some(date(2024, 7, 1)));
    assert_eq!(due.at, seen + Duration::days(14));
    assert_eq!(due.basis, Basis::Kev);
    // added to the catalog while the host had it for 10 days: 14 days from midnight
    // UTC of the day it was added
    let seen = t(2026, 3, 1, 8);
    let due = p.due(seen, Severity::Medium, Some(date(2026, 3, 11)));
    assert_eq!(due.at, t(2026, 3, 25, 0));
    assert_eq!(due.basis, Basis::Kev);
    // the severity deadline is earlier: it stays
    let due = p.due(seen, Severity::Critical, Some(date(2026, 3, 11)));
    assert_eq!(due.at, seen + Duration::days(7));
    assert_eq!(due.basis, Basis::Severity);
    // added long after the severity deadline: never later than without KEV
    let due = p.due(seen, Severity::High, Some(date(2026, 9, 1)));
    assert_eq!(due.at, seen + Duration::days(30));
}

#[test]
fn states_over_time() {
    let p = DeadlinePolicy::default();
    let due = t(2026, 5, 20, 0);
    assert_eq!(p.state(due, None, t(2026, 5, 1, 0)), FindingState::Open);
    assert_eq!(p.state(due, None, t(2026, 5, 16, 23)), FindingState::Open);
    assert_eq!(p.state(due, None, t(2026, 5, 17, 0)), FindingState::DueSoon);
    assert_eq!(
        p.state(due, None, due - Duration::milliseconds(1)),
        FindingState::DueSoon
    );
    assert_eq!(p.state(due, None, due), FindingState::Overdue);
    // an exception holds until it expires, then the finding is what it would be
    let until = t(2026, 6, 1, 0);
    assert_eq!(
        p.state(due, Some(until), t(2026, 5, 25, 0)),
        FindingState::Excepted
    );
    assert_eq!(
        p.state(due, Some(until), until - Duration::milliseconds(1)),
        FindingState::Excepted
    );
    assert_eq!(p.state(due, Some(until), until), FindingState::Overdue);
}

#[test]
fn exceptions_expire_on_their_own_and_revocation_ends_them() {
    assert!(exception_valid(1_000, None, 999));
    assert!(!exception_valid(1_000, None, 1_000));
    assert!(!exception_valid(1_000, Some(500), 600));
    // a revocation recorded "later" than the time asked about did not happen yet
    assert!(exception_valid(1_000, Some(800), 600));
}

#[test]
fn policy_values_are_checked() {
    assert_eq!(DeadlinePolicy::default().validate(), Ok(()));
    let p = DeadlinePolicy {
        high_days: 0,
        ..DeadlinePolicy::default()
    };
    let e = p.validate().unwrap_err();
    assert_eq!(
        e.to_string(),
        "high_days must be between 1 and 1825 days, not 0"
    );
    let p = DeadlinePolicy {
        kev_days: MAX_DAYS + 1,
        ..DeadlinePolicy::default()
    };
    assert!(p.validate().is_err());
    let p = DeadlinePolicy {
        due_soon_days: 91,
        ..DeadlinePolicy::default()
    };
    assert_eq!(p.validate(), Err(PolicyError::DueSoon(91)));
}

#[test]
fn compliance_percentages_leave_hosts_without_data_apart() {
    let mut c = Compliance::default();
    c.add_host(true, [FindingState::Open, FindingState::DueSoon]);
    c.add_host(true, [FindingState::Overdue, FindingState::Open]);
    c.add_host(true, [FindingState::Excepted]);
    c.add_host(true, []);
    c.add_host(false, [FindingState::Overdue]);
    assert_eq!(c.hosts, 4);
    assert_eq!(c.compliant_hosts, 3);
    assert_eq!(c.hosts_without_data, 1);
    assert_eq!(c.findings, 5);
    assert_eq!(c.excepted, 1);
    assert_eq!(c.host_percent(), Some(75.0));
    // 4 findings counted (the excepted one left out), 1 overdue
    assert_eq!(c.finding_percent(), Some(75.0));
    assert_eq!(Compliance::default().host_percent(), None);
    let mut all = Compliance::default();
    all.add_host(true, std::iter::repeat_n(FindingState::Open, 2));
    let mut one = Compliance::default();
    one.add_host(true, [FindingState::Overdue]);
    for _ in 0..9998 {
        one.add_host(true, []);
    }
    assert_eq!(one.host_percent(), Some(99.9), "never rounded up to 100");
    all.merge(&one);
    assert_eq!(all.hosts, 10_000);
}

fn severity() -> impl Strategy<Value = Severity> {
    prop::sample::select(Severity::ALL.to_vec())
}

fn policy() -> impl Strategy<Value = DeadlinePolicy> {
    (
        1..=MAX_DAYS,
        1..=MAX_DAYS,
        1..=MAX_DAYS,
        1..=MAX_DAYS,
        1..=MAX_DAYS,
        0..=MAX_DUE_SOON_DAYS,
    )
        .prop_map(|(c, h, m, l, k, s)| DeadlinePolicy {
            critical_days: c,
            high_days: h,
            medium_days: m,
            low_days: l,
            kev_days: k,
            due_soon_days: s,
        })
}

fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    // 2000-01-01 .. 2060-01-01, in ms
    (946_684_800_000i64..2_840_140_800_000)
        .prop_map(|ms| DateTime::from_timestamp_millis(ms).unwrap())
}

fn day() -> impl Strategy<Value = NaiveDate> {
    (0i64..22_000).prop_map(|d| date(2000, 1, 1) + Duration::days(d))
}

proptest! {
    #[test]
    fn due_is_never_before_first_seen(p in policy(), seen in instant(), sev in severity(),
                                       kev in prop::option::of(day())) {
        prop_assert!(p.validate().is_ok());
        prop_assert!(p.due(seen, sev, kev).at > seen);
    }

    #[test]
    fn kev_is_never_later_than_without_it(p in policy(), seen in instant(), sev in severity(),
                                          added in day()) {
        let plain = p.due(seen, sev, None).at;
        let kev = p.due(seen, sev, Some(added));
        prop_assert!(kev.at <= plain);
        if kev.basis == Basis::Severity {
            prop_assert_eq!(kev.at, plain);
        }
    }

    #[test]
    fn excepted_is_never_overdue(p in policy(), seen in instant(), sev in severity(),
                                 now in instant(), until in instant()) {
        let due = p.due(seen, sev, None).at;
        let s = p.state(due, Some(until), now);
        if until > now {
            prop_assert_eq!(s, FindingState::Excepted);
        } else {
            // an expired exception changes nothing
            prop_assert_eq!(s, p.state(due, None, now));
        }
        prop_assert!(!(s == FindingState::Overdue && until > now));
    }

    #[test]
    fn a_later_now_never_makes_a_finding_less_late(p in policy(), seen in instant(),
                                                   sev in severity(), a in instant(), b in instant()) {
        let due = p.due(seen, sev, None).at;
        let rank = |s: FindingState| match s {
            FindingState::Open => 0,
            FindingState::DueSoon => 1,
            FindingState::Overdue => 2,
            FindingState::Excepted => unreachable!(),
        };
        let (early, late) = if a <= b { (a, b) } else { (b, a) };
        prop_assert!(rank(p.state(due, None, early)) <= rank(p.state(due, None, late)));
    }

    #[test]
    fn compliance_counts_add_up(hosts in prop::collection::vec(
        (any::<bool>(), prop::collection::vec(0u8..4, 0..20)), 0..50)) {
        let mut c = Compliance::default();
        for (covered, states) in &hosts {
            c.add_host(*covered, states.iter().map(|s| match s {
                0 => FindingState::Open,
                1 => FindingState::DueSoon,
                2 => FindingState::Overdue,
                _ => FindingState::Excepted,
            }));
        }
        prop_assert_eq!(c.hosts + c.hosts_without_data, hosts.len() as u64);
        prop_assert_eq!(c.open + c.due_soon + c.overdue + c.excepted, c.findings);
        prop_assert!(c.compliant_hosts <= c.hosts);
        if let Some(pct) = c.host_percent() { prop_assert!((0.0..=100.0).contains(&pct)); }
        if let Some(pct) = c.finding_percent() { prop_assert!((0.0..=100.0).contains(&pct)); }
    }
}
