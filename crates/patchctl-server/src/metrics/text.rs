//! The Prometheus text exposition format (version 0.0.4), written by hand: families
//! with `# HELP` and `# TYPE`, samples with escaped label values, and a histogram type
//! whose buckets are atomics (observing takes no lock).
//!
//! Written here rather than taken from `prometheus-client`: that crate writes the
//! OpenMetrics text (`# EOF`, `_total` sample names under an unsuffixed family name),
//! while `promtool check metrics` and the 0.0.4 format expect the family name to carry
//! the suffix; and most families here are computed at scrape time with label sets that
//! come and go (agent versions), which a registry of long-lived series fits badly.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// The `Content-Type` of the format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A family's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up (names end in `_total`).
    Counter,
    /// Goes up and down.
    Gauge,
    /// Observations in buckets, with their sum and count.
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// A page of the format being written. A family's `# HELP` and `# TYPE` lines are
/// written with its first sample: a family without samples does not appear.
#[derive(Debug, Default)]
pub struct Text {
    out: String,
    pending: Option<String>,
}

impl Text {
    /// An empty page.
    pub fn new() -> Text {
        Text::default()
    }

    /// Starts family `name` of `kind`, described by `help`.
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) {
        self.pending = Some(format!(
            "# HELP {name} {}\n# TYPE {name} {}\n",
            escape_help(help),
            kind.as_str()
        ));
    }

    /// One sample of the current family.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        if let Some(header) = self.pending.take() {
            self.out.push_str(&header);
        }
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", escape_label(v));
            }
            self.out.push('}');
        }
        self.out.push(' ');
        self.out.push_str(&number(value));
        self.out.push('\n');
    }

    /// The samples of histogram `h` (family `name`, which [`Text::family`] started).
    pub fn histogram(&mut self, name: &str, labels: &[(&str, &str)], h: &Histogram) {
        let (buckets, sum, count) = h.snapshot();
        let bucket = format!("{name}_bucket");
        let mut cumulative = 0;
        let les: Vec<String> = h.bounds.iter().map(|b| number(*b)).collect();
        let mut with_le: Vec<(&str, &str)> = labels.to_vec();
        for (le, n) in les.iter().zip(&buckets) {
            cumulative += n;
            with_le.push(("le", le));
            self.sample(&bucket, &with_le, cumulative as f64);
            with_le.pop();
        }
        with_le.push(("le", "+Inf"));
        self.sample(&bucket, &with_le, count as f64);
        self.sample(&format!("{name}_sum"), labels, sum);
        self.sample(&format!("{name}_count"), labels, count as f64);
    }

    /// Appends another page.
    pub fn append(&mut self, other: &str) {
        self.pending = None;
        self.out.push_str(other);
    }

    /// The page.
    pub fn finish(self) -> String {
        self.out
    }
}

/// A label value: backslash, double quote and line feed escaped.
pub fn escape_label(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

/// A help text: backslash and line feed escaped.
fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

/// A sample value: whole numbers without a fraction, `+Inf`, `-Inf`, `NaN`.
fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// Bucket bounds for request latencies, in seconds.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Bucket bounds for re-correlation times, in seconds (a host takes microseconds, a
/// full load of a large database tens of seconds).
pub const RECORRELATION_BUCKETS: &[f64] =
    &[0.0001, 0.001, 0.01, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0];

/// A histogram with fixed bounds; observations are lock-free.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    /// Per bucket (not cumulative); the last one is above every bound.
    buckets: Box<[AtomicU64]>,
    /// The sum of observations, as `f64` bits.
    sum: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    /// An empty histogram over `bounds` (ascending).
    pub fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0f64.to_bits()),
            count: AtomicU64::new(0),
        }
    }

    /// Records one observation.
    pub fn observe(&self, v: f64) {
        let i = self
            .bounds
            .iter()
            .position(|b| v <= *b)
            .unwrap_or(self.bounds.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        let _ = self
            .sum
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + v).to_bits())
            });
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// Buckets within the bounds (not cumulative), sum and count. The count is the sum
    /// of all buckets read, so that the `+Inf` bucket always equals it.
    fn snapshot(&self) -> (Vec<u64>, f64, u64) {
        let all: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let count = all.iter().sum();
        let sum = f64::from_bits(self.sum.load(Ordering::Relaxed));
        (all[..self.bounds.len()].to_vec(), sum, count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label(r#"a\b"c"#), r#"a\\b\"c"#);
        assert_eq!(escape_label("x\ny"), "x\\ny");
        assert_eq!(escape_label("1.2.3 ünïcode"), "1.2.3 ünïcode");
    }

    #[test]
    fn a_histogram_is_cumulative_and_ends_with_its_count() {
        static B: &[f64] = &[0.1, 1.0];
        let h = Histogram::new(B);
        for v in [0.05, 0.5, 0.5, 7.0] {
            h.observe(v);
        }
        let mut t = Text::new();
        t.family("x_seconds", Kind::Histogram, "help");
        t.histogram("x_seconds", &[("k", "v")], &h);
        let page = t.finish();
        assert!(
            page.contains("x_seconds_bucket{k=\"v\",le=\"0.1\"} 1\n"),
            "{page}"
        );
        assert!(
            page.contains("x_seconds_bucket{k=\"v\",le=\"1\"} 3\n"),
            "{page}"
        );
        assert!(
            page.contains("x_seconds_bucket{k=\"v\",le=\"+Inf\"} 4\n"),
            "{page}"
        );
        assert!(page.contains("x_seconds_sum{k=\"v\"} 8.0"), "{page}");
        assert!(page.contains("x_seconds_count{k=\"v\"} 4\n"), "{page}");
    }

    #[test]
    fn a_family_without_samples_is_left_out() {
        let mut t = Text::new();
        t.family("a", Kind::Gauge, "none");
        t.family("b", Kind::Gauge, "one\nline");
        t.sample("b", &[], 1.0);
        assert_eq!(t.finish(), "# HELP b one\\nline\n# TYPE b gauge\nb 1\n");
    }

    #[test]
    fn numbers_are_written_as_prometheus_reads_them() {
        assert_eq!(number(3.0), "3");
        assert_eq!(number(0.25), "0.25");
        assert_eq!(number(f64::INFINITY), "+Inf");
        assert_eq!(number(f64::NAN), "NaN");
    }
}
