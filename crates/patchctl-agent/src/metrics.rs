//! Heartbeat metrics: CPU, load, memory, swap, disk usage and uptime.
//!
//! [`MetricsCollector`] reads `/proc/stat`, `/proc/loadavg`, `/proc/meminfo` and
//! `/proc/uptime` (memory through [`crate::procfs::parse_meminfo`], the disks through
//! [`crate::sysinfo::disks`]) and keeps the
//! previous CPU sample, so the CPU percentage covers the time since the previous
//! heartbeat. The parsers are pure functions of the file text; they never panic, and
//! a value that cannot be read is reported as 0.

use patchctl_proto::agent::Metrics;

use crate::procfs::{parse_meminfo, read_proc};
use crate::sysinfo::disks;

/// Cumulative CPU time from the aggregate `cpu` line of `/proc/stat`, in clock ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CpuTimes {
    /// Time not idle: user, nice, system, irq, softirq and steal.
    pub busy: u64,
    /// All time: busy plus idle and iowait. (guest and guest_nice are already counted
    /// in user and nice, so they are not added again.)
    pub total: u64,
}

/// Parses the aggregate `cpu` line of `/proc/stat`: `cpu user nice system idle [iowait
/// irq softirq steal guest guest_nice]`. `None` when there is no such line or fewer than
/// four of its counters are numbers.
pub fn parse_proc_stat_cpu(input: &str) -> Option<CpuTimes> {
    let line = input.lines().find(|l| {
        l.strip_prefix("cpu")
            .is_some_and(|rest| rest.starts_with([' ', '\t']))
    })?;
    let mut counters = [0u64; 8];
    let mut found = 0;
    for (slot, field) in counters.iter_mut().zip(line[3..].split_ascii_whitespace()) {
        *slot = field.parse().ok()?;
        found += 1;
    }
    if found < 4 {
        return None;
    }
    let [user, nice, system, idle, iowait, irq, softirq, steal] = counters;
    let busy = [user, nice, system, irq, softirq, steal]
        .into_iter()
        .fold(0u64, u64::saturating_add);
    Some(CpuTimes {
        busy,
        total: busy.saturating_add(idle).saturating_add(iowait),
    })
}

/// The CPU busy percentage (0–100) between two samples; 0 when no time has passed or
/// the counters went backwards.
pub fn cpu_percent(previous: CpuTimes, current: CpuTimes) -> f32 {
    let total = current.total.saturating_sub(previous.total);
    if total == 0 {
        return 0.0;
    }
    let busy = current.busy.saturating_sub(previous.busy);
    let percent = (busy as f64 / total as f64 * 100.0) as f32;
    percent.clamp(0.0, 100.0)
}

/// Parses `/proc/loadavg` (`0.52 0.58 0.59 1/234 5678`): the 1, 5 and 15 minute load
/// averages. `None` unless the first three words are finite, non-negative numbers.
pub fn parse_loadavg(input: &str) -> Option<[f32; 3]> {
    let mut words = input.split_ascii_whitespace();
    let mut load = [0f32; 3];
    for slot in &mut load {
        let value: f32 = words.next()?.parse().ok()?;
        if !value.is_finite() || value < 0.0 {
            return None;
        }
        *slot = value;
    }
    Some(load)
}

/// Parses `/proc/uptime` (`12345.67 54321.00`): whole seconds since boot.
pub fn parse_uptime(input: &str) -> Option<u64> {
    let first = input.split_ascii_whitespace().next()?;
    let (whole, fraction) = first.split_once('.').unwrap_or((first, "0"));
    if fraction.is_empty() || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    whole.parse().ok()
}

/// Samples the heartbeat [`Metrics`], remembering the CPU counters between samples.
#[derive(Debug, Clone, Default)]
pub struct MetricsCollector {
    previous: Option<CpuTimes>,
}

impl MetricsCollector {
    /// A collector whose first [`sample`](Self::sample) reports the CPU use since now.
    pub fn new() -> Self {
        Self {
            previous: read_proc("/proc/stat").and_then(|s| parse_proc_stat_cpu(&s)),
        }
    }

    /// Reads the current metrics. The CPU percentage covers the time since the previous
    /// sample (or since [`new`](Self::new)); values that cannot be read are 0.
    pub fn sample(&mut self) -> Metrics {
        let current = read_proc("/proc/stat").and_then(|s| parse_proc_stat_cpu(&s));
        let cpu = match (self.previous, current) {
            (Some(previous), Some(current)) => cpu_percent(previous, current),
            _ => 0.0,
        };
        if current.is_some() {
            self.previous = current;
        }
        let mem = read_proc("/proc/meminfo")
            .map(|s| parse_meminfo(&s))
            .unwrap_or_default();
        Metrics {
            cpu_percent: cpu,
            load: read_proc("/proc/loadavg")
                .and_then(|s| parse_loadavg(&s))
                .unwrap_or_default(),
            mem_used_bytes: mem.used_bytes(),
            mem_total_bytes: mem.total_bytes,
            swap_used_bytes: mem.swap_used_bytes(),
            swap_total_bytes: mem.swap_total_bytes,
            disks: disks(),
            uptime_secs: read_proc("/proc/uptime")
                .and_then(|s| parse_uptime(&s))
                .unwrap_or(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn times(busy: u64, total: u64) -> CpuTimes {
        CpuTimes { busy, total }
    }

    #[test]
    fn proc_stat_cpu() {
        for (input, want) in [
            (
                "cpu  26634 0 6357 74484 663 0 216 3703 0 0\ncpu0 13087 0 2954 38054 127 0 22 1753 0 0\nintr 1 2\n",
                Some(times(
                    26634 + 6357 + 216 + 3703,
                    26634 + 6357 + 216 + 3703 + 74484 + 663,
                )),
            ),
            // guest time is inside user time: not counted twice.
            ("cpu 10 0 0 10 0 0 0 0 5 5\n", Some(times(10, 20))),
            // Old kernels have only four counters.
            ("cpu 1 2 3 4\n", Some(times(6, 10))),
            // The per-CPU lines are not the aggregate.
            ("cpu0 1 2 3 4\n", None),
            ("intr 1\ncpu\t1 2 3 4\n", Some(times(6, 10))),
            ("cpu 1 2 3\n", None),
            ("cpu 1 2 x 4\n", None),
            ("cpu -1 2 3 4\n", None),
            ("cpu\n", None),
            ("", None),
            (
                "cpu 18446744073709551615 18446744073709551615 0 1\n",
                Some(times(u64::MAX, u64::MAX)),
            ),
        ] {
            assert_eq!(parse_proc_stat_cpu(input), want, "input: {input:?}");
        }
    }

    #[test]
    fn cpu_percentages() {
        for (previous, current, want) in [
            (times(0, 0), times(50, 100), 50.0),
            (times(100, 1000), times(100, 1100), 0.0),
            (times(100, 1000), times(200, 1100), 100.0),
            (times(100, 1000), times(125, 1100), 25.0),
            (times(100, 1000), times(100, 1000), 0.0),
            // Counters going backwards (iowait may) never give a negative or >100 value.
            (times(100, 1000), times(90, 900), 0.0),
            (times(100, 1000), times(300, 1100), 100.0),
        ] {
            assert_eq!(
                cpu_percent(previous, current),
                want,
                "{previous:?} → {current:?}"
            );
        }
    }

    #[test]
    fn loadavg() {
        for (input, want) in [
            ("0.12 0.49 0.31 2/141 11355\n", Some([0.12, 0.49, 0.31])),
            ("12.00 8 0\n", Some([12.0, 8.0, 0.0])),
            ("0.12 0.49\n", None),
            ("0.12 x 0.31\n", None),
            ("-1 0 0\n", None),
            ("NaN 0 0\n", None),
            ("inf 0 0\n", None),
            ("", None),
        ] {
            assert_eq!(parse_loadavg(input), want, "input: {input:?}");
        }
    }

    #[test]
    fn uptime() {
        for (input, want) in [
            ("555.61 744.84\n", Some(555)),
            ("0.99 1.00\n", Some(0)),
            ("12345\n", Some(12345)),
            ("18446744073709551615.00 0\n", Some(u64::MAX)),
            ("18446744073709551616.00 0\n", None),
            ("-1.00 0\n", None),
            ("1e5 0\n", None),
            (".5\n", None),
            ("5.\n", None),
            ("x\n", None),
            ("", None),
        ] {
            assert_eq!(parse_uptime(input), want, "input: {input:?}");
        }
    }

    #[test]
    fn samples_this_host() {
        let mut collector = MetricsCollector::new();
        // Burn a little CPU so the second sample has something to measure.
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let metrics = collector.sample();
        assert!((0.0..=100.0).contains(&metrics.cpu_percent));
        if std::path::Path::new("/proc/meminfo").exists() {
            assert!(metrics.mem_total_bytes > 0);
            assert!(metrics.mem_used_bytes <= metrics.mem_total_bytes);
            assert!(metrics.swap_used_bytes <= metrics.swap_total_bytes);
            assert!(metrics.uptime_secs > 0);
        }
        let again = collector.sample();
        assert!((0.0..=100.0).contains(&again.cpu_percent));
    }

    proptest! {
        #[test]
        fn parsers_never_panic(s in "\\PC*") {
            let _ = parse_proc_stat_cpu(&s);
            let _ = parse_meminfo(&s);
            let _ = parse_loadavg(&s);
            let _ = parse_uptime(&s);
        }

        #[test]
        fn parsers_never_panic_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..1000)) {
            let s = String::from_utf8_lossy(&bytes);
            let _ = parse_proc_stat_cpu(&s);
            let _ = parse_meminfo(&s);
            let _ = parse_loadavg(&s);
            let _ = parse_uptime(&s);
        }

        #[test]
        fn parsers_never_panic_on_likely_input(s in "(cpu|MemTotal:|[0-9. kB:/-]){0,30}") {
            let _ = parse_proc_stat_cpu(&s);
            let _ = parse_meminfo(&s);
            let _ = parse_loadavg(&s);
            let _ = parse_uptime(&s);
        }

        #[test]
        fn cpu_percent_is_bounded(a in any::<u64>(), b in any::<u64>(), c in any::<u64>(), d in any::<u64>()) {
            let p = cpu_percent(times(a, b), times(c, d));
            prop_assert!((0.0..=100.0).contains(&p));
        }

        #[test]
        fn proc_stat_round_trips(counters in prop::collection::vec(0u64..1u64 << 40, 4..=10)) {
            let line = counters.iter().map(u64::to_string).collect::<Vec<_>>().join(" ");
            let parsed = parse_proc_stat_cpu(&format!("cpu  {line}\ncpu0 {line}\n")).unwrap();
            let get = |i: usize| counters.get(i).copied().unwrap_or(0);
            let busy = get(0) + get(1) + get(2) + get(5) + get(6) + get(7);
            prop_assert_eq!(parsed, times(busy, busy + get(3) + get(4)));
        }
    }
}
