//! CVSS base scores computed from vectors, so that every finding shows a score the
//! operator can recompute by hand.
//!
//! * CVSS v3.0 and v3.1 (`CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H` → 9.8): the
//!   v3.1 specification's formulas, with its integer-based `Roundup` for both versions
//!   (v3.0's floating-point round-up gives the same result except for floating-point
//!   noise, which is exactly what v3.1 fixed).
//! * CVSS v2 (`AV:N/AC:L/Au:N/C:P/I:P/A:P` → 7.5), written without a prefix.
//! * CVSS v4 (`CVSS:4.0/...`) is not scored: [`base_score`] answers
//!   [`CvssError::Unsupported`] and the finding shows the vector as published, with no
//!   score.
//!
//! Parsing is strict, because the vectors come from feeds: every base metric must be
//! present exactly once with a value the specification defines; a missing, duplicate or
//! unknown metric (or value) is an error naming it. Temporal and environmental metrics
//! (`E`, `RL`, `RC`, `CR`, `MAV`, ...) are checked the same way and do not change the
//! *base* score. Quoted input in errors is cut to [`MAX_QUOTE`] bytes. No input panics.

use std::fmt;

/// The longest excerpt of a vector quoted in an error.
pub const MAX_QUOTE: usize = 40;

/// Why a vector has no base score.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CvssError {
    /// A CVSS v4.0 vector: valid, but PatchCTL does not compute v4 scores; show the
    /// vector as published.
    Unsupported,
    /// A `CVSS:x.y/` prefix of a version that does not exist.
    UnknownVersion(String),
    /// A part that is not `METRIC:VALUE`.
    Malformed(String),
    /// A metric the vector's version does not define.
    UnknownMetric(String),
    /// A metric given twice.
    Duplicate(String),
    /// A base metric that is absent.
    Missing(&'static str),
    /// A value the metric does not define.
    BadValue {
        /// The metric.
        metric: String,
        /// The value found.
        value: String,
    },
}

impl fmt::Display for CvssError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CvssError::Unsupported => write!(
                f,
                "CVSS v4.0 scores are not computed; the vector is shown as published"
            ),
            CvssError::UnknownVersion(v) => write!(
                f,
                "unknown CVSS version {:?}; vectors start with CVSS:3.0/ or CVSS:3.1/ (v2 vectors have no prefix)",
                clip(v)
            ),
            CvssError::Malformed(part) => write!(
                f,
                "CVSS vector part {:?} is not METRIC:VALUE; parts are separated by '/'",
                clip(part)
            ),
            CvssError::UnknownMetric(m) => {
                write!(f, "unknown CVSS metric {:?} for this version", clip(m))
            }
            CvssError::Duplicate(m) => write!(f, "CVSS metric {} is given twice", clip(m)),
            CvssError::Missing(m) => write!(f, "CVSS vector lacks the base metric {m}"),
            CvssError::BadValue { metric, value } => write!(
                f,
                "CVSS metric {} has an undefined value {:?}",
                clip(metric),
                clip(value)
            ),
        }
    }
}

impl std::error::Error for CvssError {}

/// At most `max` bytes of `s`, cut on a character boundary: how untrusted text is
/// quoted in this crate's messages.
pub(crate) fn clip_to(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn clip(s: &str) -> &str {
    clip_to(s, MAX_QUOTE)
}

/// A base metric: its name and its values with their weights.
struct Metric {
    name: &'static str,
    values: &'static [(&'static str, f64)],
}

/// A temporal or environmental metric: checked, not weighted.
type Extra = (&'static str, &'static [&'static str]);

const CIA3: &[(&str, f64)] = &[("H", 0.56), ("L", 0.22), ("N", 0.0)];

/// v3 base metrics, in the order the computation indexes them.
const V3_BASE: [Metric; 8] = [
    Metric {
        name: "AV",
        values: &[("N", 0.85), ("A", 0.62), ("L", 0.55), ("P", 0.2)],
    },
    Metric {
        name: "AC",
        values: &[("L", 0.77), ("H", 0.44)],
    },
    // Weights for an unchanged scope; a changed scope uses V3_PR_CHANGED.
    Metric {
        name: "PR",
        values: &[("N", 0.85), ("L", 0.62), ("H", 0.27)],
    },
    Metric {
        name: "UI",
        values: &[("N", 0.85), ("R", 0.62)],
    },
    Metric {
        name: "S",
        values: &[("U", 0.0), ("C", 1.0)],
    },
    Metric {
        name: "C",
        values: CIA3,
    },
    Metric {
        name: "I",
        values: CIA3,
    },
    Metric {
        name: "A",
        values: CIA3,
    },
];

/// PR weights (N, L, H) when the scope is changed.
const V3_PR_CHANGED: [f64; 3] = [0.85, 0.68, 0.5];

const LMH: &[&str] = &["X", "L", "M", "H"];
const NLH: &[&str] = &["X", "N", "L", "H"];

const V3_EXTRA: [Extra; 14] = [
    ("E", &["X", "U", "P", "F", "H"]),
    ("RL", &["X", "O", "T", "W", "U"]),
    ("RC", &["X", "U", "R", "C"]),
    ("CR", LMH),
    ("IR", LMH),
    ("AR", LMH),
    ("MAV", &["X", "N", "A", "L", "P"]),
    ("MAC", &["X", "L", "H"]),
    ("MPR", NLH),
    ("MUI", &["X", "N", "R"]),
    ("MS", &["X", "U", "C"]),
    ("MC", NLH),
    ("MI", NLH),
    ("MA", NLH),
];

const CIA2: &[(&str, f64)] = &[("N", 0.0), ("P", 0.275), ("C", 0.660)];

/// v2 base metrics, in the order the computation indexes them.
const V2_BASE: [Metric; 6] = [
    Metric {
        name: "AV",
        values: &[("L", 0.395), ("A", 0.646), ("N", 1.0)],
    },
    Metric {
        name: "AC",
        values: &[("H", 0.35), ("M", 0.61), ("L", 0.71)],
    },
    Metric {
        name: "Au",
        values: &[("M", 0.45), ("S", 0.56), ("N", 0.704)],
    },
    Metric {
        name: "C",
        values: CIA2,
    },
    Metric {
        name: "I",
        values: CIA2,
    },
    Metric {
        name: "A",
        values: CIA2,
    },
];

const LMH2: &[&str] = &["L", "M", "H", "ND"];

const V2_EXTRA: [Extra; 8] = [
    ("E", &["U", "POC", "F", "H", "ND"]),
    ("RL", &["OF", "TF", "W", "U", "ND"]),
    ("RC", &["UC", "UR", "C", "ND"]),
    ("CDP", &["N", "L", "LM", "MH", "H", "ND"]),
    ("TD", &["N", "L", "M", "H", "ND"]),
    ("CR", LMH2),
    ("IR", LMH2),
    ("AR", LMH2),
];

/// The base score (0.0–10.0, one decimal) of a CVSS v3.0, v3.1 or v2 vector.
///
/// A `CVSS:4.0/` vector is [`CvssError::Unsupported`]: show it as published without
/// a score. Any other problem is an error naming the metric or part at fault.
pub fn base_score(vector: &str) -> Result<f32, CvssError> {
    let vector = vector.trim();
    let Some(rest) = vector.strip_prefix("CVSS:") else {
        let w = weights(vector, &V2_BASE, &V2_EXTRA)?;
        return Ok(v2_score(w) as f32);
    };
    let (version, body) = rest.split_once('/').unwrap_or((rest, ""));
    match version {
        "3.0" | "3.1" => Ok(v3_score(weights(body, &V3_BASE, &V3_EXTRA)?) as f32),
        "4.0" => Err(CvssError::Unsupported),
        other => Err(CvssError::UnknownVersion(other.to_owned())),
    }
}

/// The index of each base metric's value in `body` (`M:V/M:V/...`), checking every
/// part against `base` and `extra`.
fn weights<const N: usize>(
    body: &str,
    base: &[Metric; N],
    extra: &[Extra],
) -> Result<[usize; N], CvssError> {
    let mut chosen = [None; N];
    let mut seen_extra: Vec<&str> = Vec::new();
    for part in body.split('/') {
        let Some((name, value)) = part.split_once(':') else {
            return Err(CvssError::Malformed(part.to_owned()));
        };
        let bad = || CvssError::BadValue {
            metric: name.to_owned(),
            value: value.to_owned(),
        };
        if let Some(i) = base.iter().position(|m| m.name == name) {
            if chosen[i].is_some() {
                return Err(CvssError::Duplicate(name.to_owned()));
            }
            let v = base[i].values.iter().position(|(v, _)| *v == value);
            chosen[i] = Some(v.ok_or_else(bad)?);
        } else if let Some((_, values)) = extra.iter().find(|(n, _)| *n == name) {
            if seen_extra.contains(&name) {
                return Err(CvssError::Duplicate(name.to_owned()));
            }
            if !values.contains(&value) {
                return Err(bad());
            }
            seen_extra.push(name);
        } else {
            return Err(CvssError::UnknownMetric(name.to_owned()));
        }
    }
    let mut out = [0; N];
    for (i, c) in chosen.iter().enumerate() {
        out[i] = c.ok_or(CvssError::Missing(base[i].name))?;
    }
    Ok(out)
}

/// The v3.1 base score from the chosen value indexes of [`V3_BASE`].
fn v3_score(idx: [usize; 8]) -> f64 {
    let w = |i: usize| V3_BASE[i].values[idx[i]].1;
    let changed = idx[4] == 1;
    let pr = if changed { V3_PR_CHANGED[idx[2]] } else { w(2) };
    let iss = 1.0 - (1.0 - w(5)) * (1.0 - w(6)) * (1.0 - w(7));
    let impact = if changed {
        7.52 * (iss - 0.029) - 3.25 * (iss - 0.02).powi(15)
    } else {
        6.42 * iss
    };
    let exploitability = 8.22 * w(0) * w(1) * pr * w(3);
    if impact <= 0.0 {
        0.0
    } else if changed {
        roundup((1.08 * (impact + exploitability)).min(10.0))
    } else {
        roundup((impact + exploitability).min(10.0))
    }
}

/// CVSS v3.1 `Roundup`: the smallest one-decimal number ≥ `x`, computed on integers so
/// that floating-point noise (4.000000001) does not round up.
fn roundup(x: f64) -> f64 {
    let i = (x * 100_000.0).round() as i64;
    if i % 10_000 == 0 {
        i as f64 / 100_000.0
    } else {
        (i / 10_000 + 1) as f64 / 10.0
    }
}

/// The v2 base score from the chosen value indexes of [`V2_BASE`].
fn v2_score(idx: [usize; 6]) -> f64 {
    let w = |i: usize| V2_BASE[i].values[idx[i]].1;
    let impact = 10.41 * (1.0 - (1.0 - w(3)) * (1.0 - w(4)) * (1.0 - w(5)));
    let exploitability = 20.0 * w(0) * w(1) * w(2);
    let f = if impact == 0.0 { 0.0 } else { 1.176 };
    (((0.6 * impact + 0.4 * exploitability - 1.5) * f) * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_v3_scores() {
        for (vector, score) in [
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8),
            // Scope changed.
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 10.0),
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", 6.1),
            // PR with a changed scope: L weighs 0.68 and H 0.5 instead of 0.62 and 0.27.
            ("CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:C/C:H/I:H/A:H", 9.9),
            ("CVSS:3.1/AV:N/AC:L/PR:H/UI:N/S:C/C:H/I:H/A:H", 9.1),
            ("CVSS:3.1/AV:N/AC:L/PR:L/UI:R/S:C/C:H/I:N/A:N", 6.8),
            ("CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", 8.8),
            ("CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", 7.8),
            // CVE-2024-6387 (regreSSHion).
            ("CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:H/A:H", 8.1),
            // CVE-2024-28085 (wall, util-linux).
            ("CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N", 5.5),
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H", 7.5),
            ("CVSS:3.1/AV:P/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N", 4.6),
            // From the Ubuntu and Rocky samples in the shared data.
            ("CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:L/I:L/A:H", 6.6),
            ("CVSS:3.0/AV:L/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:L", 4.0),
            // Zero impact is 0.0, whatever the exploitability.
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N", 0.0),
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:N/I:N/A:N", 0.0),
            // Metric order is free; temporal metrics do not change the base score.
            (
                "CVSS:3.1/S:U/AV:N/AC:L/PR:N/UI:N/C:H/I:H/A:H/E:P/RL:O/RC:C",
                9.8,
            ),
        ] {
            assert_eq!(base_score(vector), Ok(score), "{vector}");
        }
    }

    #[test]
    fn known_v2_scores() {
        for (vector, score) in [
            ("AV:N/AC:L/Au:N/C:P/I:P/A:P", 7.5),
            ("AV:N/AC:L/Au:N/C:C/I:C/A:C", 10.0),
            ("AV:N/AC:M/Au:N/C:N/I:P/A:N", 4.3),
            ("AV:L/AC:L/Au:N/C:C/I:C/A:C", 7.2),
            ("AV:N/AC:L/Au:N/C:N/I:N/A:P", 5.0),
            ("AV:N/AC:L/Au:N/C:N/I:N/A:N", 0.0),
            ("AV:N/AC:L/Au:N/C:P/I:P/A:P/E:POC/RL:OF/RC:C", 7.5),
        ] {
            assert_eq!(base_score(vector), Ok(score), "{vector}");
        }
    }

    #[test]
    fn errors_name_what_is_wrong() {
        let v4 = "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N";
        assert_eq!(base_score(v4), Err(CvssError::Unsupported));
        assert!(
            base_score(v4)
                .unwrap_err()
                .to_string()
                .contains("shown as published")
        );
        let cases = [
            (
                "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H",
                CvssError::Missing("A"),
            ),
            (
                "CVSS:3.1/AV:N/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
                CvssError::Duplicate("AV".into()),
            ),
            (
                "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/E:P/E:P",
                CvssError::Duplicate("E".into()),
            ),
            (
                "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/XX:1",
                CvssError::UnknownMetric("XX".into()),
            ),
            (
                "CVSS:3.1/AV:Q/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
                CvssError::BadValue {
                    metric: "AV".into(),
                    value: "Q".into(),
                },
            ),
            (
                "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/",
                CvssError::Malformed(String::new()),
            ),
            ("CVSS:3.2/AV:N", CvssError::UnknownVersion("3.2".into())),
            ("CVSS:3.1", CvssError::Malformed(String::new())),
            // v2 metric names in a v3 vector and the reverse.
            (
                "CVSS:3.1/AV:N/AC:L/Au:N/C:P/I:P/A:P",
                CvssError::UnknownMetric("Au".into()),
            ),
            ("AV:N/AC:L/Au:N/C:H/I:P/A:P", bad("C", "H")),
            ("", CvssError::Malformed(String::new())),
            ("9.8", CvssError::Malformed("9.8".into())),
        ];
        for (vector, error) in cases {
            assert_eq!(base_score(vector), Err(error), "{vector}");
        }
        let msg = base_score("CVSS:3.1/AV:N").unwrap_err().to_string();
        assert_eq!(msg, "CVSS vector lacks the base metric AC");
    }

    fn bad(metric: &str, value: &str) -> CvssError {
        CvssError::BadValue {
            metric: metric.into(),
            value: value.into(),
        }
    }

    #[test]
    fn roundup_ignores_floating_point_noise() {
        assert_eq!(roundup(4.000_000_01), 4.0);
        assert_eq!(roundup(4.02), 4.1);
        assert_eq!(roundup(0.0), 0.0);
        let long = format!("CVSS:3.1/{}:N", "X".repeat(500));
        assert!(base_score(&long).unwrap_err().to_string().len() < 120);
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,200}") {
            let _ = base_score(&s);
        }

        #[test]
        fn v3_vectors_score_in_range(
            parts in (0..4usize, 0..2usize, 0..3usize, 0..2usize, 0..2usize, 0..3usize, 0..3usize, 0..3usize)
        ) {
            let (av, ac, pr, ui, s, c, i, a) = parts;
            let v = |m: usize, k: usize| V3_BASE[m].values[k].0;
            let vector = format!(
                "CVSS:3.1/AV:{}/AC:{}/PR:{}/UI:{}/S:{}/C:{}/I:{}/A:{}",
                v(0, av), v(1, ac), v(2, pr), v(3, ui), v(4, s), v(5, c), v(6, i), v(7, a)
            );
            let score = base_score(&vector).unwrap();
            prop_assert!((0.0..=10.0).contains(&score), "{vector}: {score}");
            prop_assert_eq!(score == 0.0, c == 2 && i == 2 && a == 2, "{}", vector);
        }
    }
}
