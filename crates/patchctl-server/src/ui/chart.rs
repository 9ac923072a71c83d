//! The metrics history chart of the host page: inline SVG computed on the server (no
//! script), as the polylines of CPU, memory and fullest-disk use in percent.

use chrono::{DateTime, Utc};
use patchctl_proto::agent::Metrics;

/// Width of the chart's drawing, in SVG units.
pub const WIDTH: f64 = 720.0;
/// Height of the chart's drawing, in SVG units.
pub const HEIGHT: f64 = 200.0;
/// Left margin (the percent labels).
const LEFT: f64 = 34.0;
/// Top and bottom margin.
const PAD: f64 = 10.0;

/// The chart: three polylines (`points` attributes) and the time span they cover.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Chart {
    /// CPU busy percent.
    pub cpu: String,
    /// Memory in use, percent of physical memory.
    pub mem: String,
    /// The fullest file system, percent.
    pub disk: String,
    /// The first sample's time.
    pub from: String,
    /// The last sample's time.
    pub to: String,
    /// Samples drawn.
    pub samples: usize,
}

fn percent(used: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        (used as f64 / total as f64 * 100.0).clamp(0.0, 100.0)
    }
}

/// The chart of `history` (oldest first); empty when there are fewer than two samples.
pub fn chart(history: &[(DateTime<Utc>, Metrics)]) -> Chart {
    if history.len() < 2 {
        return Chart {
            samples: history.len(),
            ..Chart::default()
        };
    }
    let t0 = history[0].0.timestamp_millis() as f64;
    let t1 = history[history.len() - 1].0.timestamp_millis() as f64;
    let span = (t1 - t0).max(1.0);
    let x =
        |t: &DateTime<Utc>| LEFT + (t.timestamp_millis() as f64 - t0) / span * (WIDTH - LEFT - PAD);
    let y = |p: f64| HEIGHT - PAD - p / 100.0 * (HEIGHT - 2.0 * PAD);
    let line = |f: &dyn Fn(&Metrics) -> f64| {
        history
            .iter()
            .map(|(t, m)| format!("{:.1},{:.1}", x(t), y(f(m))))
            .collect::<Vec<_>>()
            .join(" ")
    };
    Chart {
        cpu: line(&|m| f64::from(m.cpu_percent).clamp(0.0, 100.0)),
        mem: line(&|m| percent(m.mem_used_bytes, m.mem_total_bytes)),
        disk: line(&|m| {
            m.disks
                .iter()
                .map(|d| percent(d.used_bytes, d.total_bytes))
                .fold(0.0, f64::max)
        }),
        from: history[0].0.format("%Y-%m-%d %H:%M UTC").to_string(),
        to: history[history.len() - 1]
            .0
            .format("%Y-%m-%d %H:%M UTC")
            .to_string(),
        samples: history.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_span_the_drawing_and_percent_maps_to_height() {
        let t = Utc::now();
        let m = |cpu: f32| Metrics {
            cpu_percent: cpu,
            mem_used_bytes: 1,
            mem_total_bytes: 4,
            ..Metrics::default()
        };
        let c = chart(&[(t, m(0.0)), (t + chrono::Duration::minutes(5), m(100.0))]);
        assert_eq!(c.cpu, "34.0,190.0 710.0,10.0");
        assert_eq!(c.mem, "34.0,145.0 710.0,145.0");
        assert_eq!(c.samples, 2);
        assert_eq!(chart(&[(t, m(1.0))]).cpu, "");
    }
}
