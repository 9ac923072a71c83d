//! One severity scale for every feed.
//!
//! Distributions publish their own words (Red Hat and AlmaLinux `Important`, Debian
//! urgencies `high`/`unimportant`/`not yet assigned`, Ubuntu priorities
//! `negligible`/`untriaged`); CVSS gives a number. [`Severity`] is the one scale the API,
//! the CLI and filters speak, ordered with [`Severity::Critical`] highest and
//! [`Severity::Unknown`] lowest. [`overall`] decides a finding's severity: the
//! distribution's word when it is one we know (it judges the package as the
//! distribution builds it), else the CVSS base score's band.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A finding's severity. `Ord` puts [`Severity::Critical`] highest and
/// [`Severity::Unknown`] lowest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Critical (CVSS ≥ 9.0).
    Critical,
    /// High, Red Hat `Important` (CVSS 7.0–8.9).
    High,
    /// Medium, Red Hat `Moderate` (CVSS 4.0–6.9).
    Medium,
    /// Low (CVSS 0.1–3.9).
    Low,
    /// Negligible: Debian `unimportant`, Ubuntu `negligible`, CVSS 0.0.
    Negligible,
    /// Not assessed: Debian `not yet assigned`, Ubuntu `untriaged`, no CVSS score.
    Unknown,
}

impl Severity {
    /// Every severity, highest first.
    pub const ALL: [Severity; 6] = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
        Severity::Negligible,
        Severity::Unknown,
    ];

    /// The name in the API, the CLI and filters (`critical`, ..., `unknown`).
    pub fn name(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::High => "high",
            Severity::Medium => "medium",
            Severity::Low => "low",
            Severity::Negligible => "negligible",
            Severity::Unknown => "unknown",
        }
    }

    /// 5 for critical down to 0 for unknown.
    fn rank(self) -> u8 {
        5 - self as u8
    }
}

impl Ord for Severity {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.rank().cmp(&other.rank())
    }
}

impl PartialOrd for Severity {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A severity filter that names no severity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseSeverityError(String);

impl fmt::Display for ParseSeverityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = crate::cvss::clip_to(&self.0, 40);
        let names: Vec<&str> = Severity::ALL.iter().map(|s| s.name()).collect();
        write!(
            f,
            "unknown severity {s:?}; use one of: {}",
            names.join(", ")
        )
    }
}

impl std::error::Error for ParseSeverityError {}

impl FromStr for Severity {
    type Err = ParseSeverityError;

    /// A severity name, case-insensitive (`high`, `Critical`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        Severity::ALL
            .into_iter()
            .find(|v| v.name().eq_ignore_ascii_case(t))
            .ok_or_else(|| ParseSeverityError(s.to_owned()))
    }
}

/// The severity of a distribution's word, case-insensitive, trailing `*` stripped
/// (Debian writes `low*` for a guessed urgency): `Critical` and Fedora Bodhi's `urgent`
/// → Critical; `Important`/`high` → High;
/// `Moderate`/`medium` → Medium; `low`; Debian `unimportant` and Ubuntu `negligible` →
/// Negligible; anything else (`not yet assigned`, `untriaged`, `end-of-life`, empty) →
/// Unknown.
pub fn from_distro(word: &str) -> Severity {
    let word = word.trim().trim_end_matches('*').trim_end();
    [
        ("critical", Severity::Critical),
        ("urgent", Severity::Critical),
        ("important", Severity::High),
        ("high", Severity::High),
        ("moderate", Severity::Medium),
        ("medium", Severity::Medium),
        ("low", Severity::Low),
        ("unimportant", Severity::Negligible),
        ("negligible", Severity::Negligible),
    ]
    .into_iter()
    .find(|(w, _)| w.eq_ignore_ascii_case(word))
    .map_or(Severity::Unknown, |(_, s)| s)
}

/// The CVSS band of a base score: ≥ 9.0 Critical, ≥ 7.0 High, ≥ 4.0 Medium, > 0 Low,
/// 0.0 Negligible (CVSS "None"); a score outside 0–10 (or NaN) is Unknown.
pub fn from_cvss(score: f32) -> Severity {
    match score {
        s if !(0.0..=10.0).contains(&s) => Severity::Unknown,
        s if s >= 9.0 => Severity::Critical,
        s if s >= 7.0 => Severity::High,
        s if s >= 4.0 => Severity::Medium,
        s if s > 0.0 => Severity::Low,
        _ => Severity::Negligible,
    }
}

/// A finding's severity: the distribution's word when it names a severity, else the
/// CVSS score's band, else Unknown.
pub fn overall(distro: Option<&str>, cvss_score: Option<f32>) -> Severity {
    match distro.map(from_distro) {
        Some(s) if s != Severity::Unknown => s,
        _ => cvss_score.map_or(Severity::Unknown, from_cvss),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn order_names_and_serde() {
        let mut v = vec![
            Severity::Unknown,
            Severity::Critical,
            Severity::Low,
            Severity::High,
        ];
        v.sort();
        assert_eq!(
            v,
            [
                Severity::Unknown,
                Severity::Low,
                Severity::High,
                Severity::Critical
            ]
        );
        assert!(Severity::Negligible > Severity::Unknown);
        assert!(Severity::Critical > Severity::High);
        assert_eq!(
            serde_json::to_string(&Severity::Negligible).unwrap(),
            "\"negligible\""
        );
        let back: Severity = serde_json::from_str("\"medium\"").unwrap();
        assert_eq!(back, Severity::Medium);
        for s in Severity::ALL {
            assert_eq!(s.name().parse::<Severity>(), Ok(s));
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{s}\""));
        }
        assert_eq!(" HIGH ".parse::<Severity>(), Ok(Severity::High));
        let err = "severe".parse::<Severity>().unwrap_err().to_string();
        assert_eq!(
            err,
            "unknown severity \"severe\"; use one of: critical, high, medium, low, negligible, unknown"
        );
    }

    #[test]
    fn distribution_words() {
        for (word, s) in [
            ("Critical", Severity::Critical),
            ("Important", Severity::High),
            ("Moderate", Severity::Medium),
            ("Low", Severity::Low),
            ("high", Severity::High),
            ("medium", Severity::Medium),
            ("low*", Severity::Low),
            ("medium**", Severity::Medium),
            ("unimportant", Severity::Negligible),
            ("not yet assigned", Severity::Unknown),
            ("end-of-life", Severity::Unknown),
            ("negligible", Severity::Negligible),
            ("untriaged", Severity::Unknown),
            ("CRITICAL", Severity::Critical),
            ("", Severity::Unknown),
            ("*", Severity::Unknown),
        ] {
            assert_eq!(from_distro(word), s, "{word:?}");
        }
    }

    #[test]
    fn cvss_bands() {
        for (score, s) in [
            (10.0, Severity::Critical),
            (9.0, Severity::Critical),
            (8.9, Severity::High),
            (7.0, Severity::High),
            (6.9, Severity::Medium),
            (4.0, Severity::Medium),
            (3.9, Severity::Low),
            (0.1, Severity::Low),
            (0.0, Severity::Negligible),
            (-1.0, Severity::Unknown),
            (10.5, Severity::Unknown),
            (f32::NAN, Severity::Unknown),
        ] {
            assert_eq!(from_cvss(score), s, "{score}");
        }
    }

    #[test]
    fn distribution_wins_when_known() {
        // Debian rates the wall escape (CVSS 5.5) low: the distribution's word wins.
        assert_eq!(overall(Some("low"), Some(5.5)), Severity::Low);
        assert_eq!(
            overall(Some("not yet assigned"), Some(9.8)),
            Severity::Critical
        );
        assert_eq!(overall(None, Some(8.1)), Severity::High);
        assert_eq!(overall(Some("untriaged"), None), Severity::Unknown);
        assert_eq!(overall(None, None), Severity::Unknown);
    }

    proptest! {
        #[test]
        fn never_panics(word in "\\PC{0,40}", score in proptest::num::f32::ANY) {
            let _ = from_distro(&word);
            let _ = word.parse::<Severity>().map_err(|e| e.to_string());
            let s = overall(Some(&word), Some(score));
            prop_assert!(Severity::ALL.contains(&s));
        }
    }
}
