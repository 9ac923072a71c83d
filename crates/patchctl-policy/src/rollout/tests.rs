//! Tests of the rollout math: stable order, ring cut, threshold and the health gate.

use patchctl_proto::command::{HealthItem, HealthReport, HealthStatus};
use patchctl_proto::policy::deployments::RingSpec;
use proptest::prelude::*;
use uuid::Uuid;

use super::*;

fn ring(p: u8) -> RingSpec {
    RingSpec {
        name: None,
        percent: p,
        max_failed_percent: 0,
        soak_minutes: 10,
    }
}

fn report(checks: &[(&str, HealthStatus)], units: Option<&[&str]>) -> HealthReport {
    HealthReport {
        agent_version: "1.0.0".into(),
        checks: checks
            .iter()
            .map(|(n, s)| HealthItem {
                name: (*n).into(),
                status: *s,
                detail: String::new(),
            })
            .collect(),
        failed_units: units.map(|u| u.iter().map(|s| (*s).to_string()).collect()),
    }
}

fn ids(n: u128) -> Vec<Uuid> {
    (1..=n).map(Uuid::from_u128).collect()
}

#[test]
fn order_is_stable_and_depends_on_the_deployment() {
    let hosts = ids(50);
    let d1 = Uuid::from_u128(7);
    let d2 = Uuid::from_u128(8);
    let a = order_hosts(d1, &hosts);
    let mut reversed = hosts.clone();
    reversed.reverse();
    assert_eq!(a, order_hosts(d1, &reversed));
    assert_ne!(a, order_hosts(d2, &hosts));
    assert_ne!(a, hosts, "the order is not the ids' order");
    assert_ne!(host_key(d1, hosts[0]), host_key(d1, hosts[1]));
}

#[test]
fn rings_are_cut_by_cumulative_percent() {
    let rings = [ring(5), ring(25), ring(100)];
    let cut = assign_rings(Uuid::from_u128(1), &ids(100), &rings);
    let per = |r: u32| cut.iter().filter(|(_, x)| *x == r).count();
    assert_eq!((per(0), per(1), per(2)), (5, 20, 75));
    // Rings are contiguous in rollout order.
    assert!(cut.windows(2).all(|w| w[0].1 <= w[1].1));
    let three = assign_rings(Uuid::from_u128(1), &ids(3), &rings);
    assert_eq!(three.iter().map(|x| x.1).collect::<Vec<_>>(), vec![0, 1, 2]);
    // Duplicates count once.
    let mut dup = ids(4);
    dup.extend(ids(4));
    assert_eq!(assign_rings(Uuid::from_u128(1), &dup, &rings).len(), 4);
}

#[test]
fn threshold() {
    assert!(threshold_exceeded(1, 1, 0));
    assert!(!threshold_exceeded(0, 1, 0));
    assert!(!threshold_exceeded(1, 10, 10));
    assert!(threshold_exceeded(2, 10, 10));
    assert!(!threshold_exceeded(10, 10, 100));
}

#[test]
fn health_gate_cases() {
    use HealthStatus::*;
    let ok = [("server", Ok), ("disk:/", Warn)];
    // Pass, nothing new.
    let g = health_gate(
        &report(&ok, Some(&["a.service"])),
        Some(&["a.service".into()]),
    );
    assert_eq!(g, Result::Ok(GatePassed { note: None }));
    // A failed check.
    let e = health_gate(&report(&[("disk:/", Fail)], Some(&[])), Some(&[])).unwrap_err();
    assert!(e.contains("health check failed: disk:/"), "{e}");
    // A new failed unit.
    let e = health_gate(
        &report(&ok, Some(&["a.service", "nginx.service"])),
        Some(&["a.service".into()]),
    )
    .unwrap_err();
    assert_eq!(e, "new failed unit: nginx.service");
    // A unit failed before and still failed is not new; one that recovered is fine.
    assert!(health_gate(&report(&ok, Some(&[])), Some(&["a.service".into()])).is_ok());
    // Unknown on either side: not comparable, noted, not failed.
    let g = health_gate(&report(&ok, None), Some(&[])).unwrap();
    assert!(g.note.unwrap().contains("not compared"));
    let g = health_gate(&report(&ok, Some(&["x.service"])), None).unwrap();
    assert!(g.note.unwrap().contains("unknown before"));
    // The baseline gate.
    assert!(baseline_gate(&report(&ok, None)).is_ok());
    assert!(baseline_gate(&report(&[("clock", Fail)], None)).is_err());
}

proptest! {
    #[test]
    fn every_host_gets_one_ring_and_rings_fill_in_order(
        n in 0u128..400,
        seed in any::<u128>(),
        cuts in proptest::collection::btree_set(1u8..100, 0..5),
    ) {
        let mut rings: Vec<RingSpec> = cuts.into_iter().map(ring).collect();
        rings.push(ring(100));
        let hosts = ids(n);
        let cut = assign_rings(Uuid::from_u128(seed), &hosts, &rings);
        prop_assert_eq!(cut.len() as u128, n);
        let mut seen: Vec<Uuid> = cut.iter().map(|x| x.0).collect();
        seen.sort();
        prop_assert_eq!(&seen, &hosts);
        prop_assert!(cut.windows(2).all(|w| w[0].1 <= w[1].1));
        prop_assert!(cut.iter().all(|x| (x.1 as usize) < rings.len()));
        // Each ring holds at least one host while any are left.
        let ends = ring_ends(n as u64, &rings);
        for (i, end) in ends.iter().enumerate() {
            let upto = cut.iter().filter(|x| x.1 as usize <= i).count() as u64;
            prop_assert_eq!(upto, *end);
        }
        // Stable: the same input cuts the same way.
        prop_assert_eq!(assign_rings(Uuid::from_u128(seed), &hosts, &rings), cut);
    }

    #[test]
    fn threshold_matches_the_percentage(failed in 0u64..1000, total in 1u64..1000, max in 0u8..=100) {
        let exceeded = threshold_exceeded(failed, total, max);
        prop_assert_eq!(exceeded, (failed as f64) / (total as f64) * 100.0 > f64::from(max) + 1e-9);
    }
}
