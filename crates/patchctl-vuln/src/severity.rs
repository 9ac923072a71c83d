//! Severity (placeholder until the real module lands).
use serde::{Deserialize, Serialize};
/// Severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /** u */
    Unknown,
    /** n */
    Negligible,
    /** l */
    Low,
    /** m */
    Medium,
    /** h */
    High,
    /** c */
    Critical,
}
/// Overall.
pub fn overall(_d: Option<&str>, _c: Option<f32>) -> Severity {
    Severity::Unknown
}
impl Severity {
    /// All.
    pub const ALL: [Severity; 6] = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
        Severity::Negligible,
        Severity::Unknown,
    ];
    /// Name.
    pub fn name(self) -> &'static str {
        "unknown"
    }
}
impl std::str::FromStr for Severity {
    type Err = String;
    fn from_str(_s: &str) -> Result<Self, String> {
        Ok(Severity::Unknown)
    }
}
