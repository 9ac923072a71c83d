//! CVSS (placeholder until the real module lands).
/// Error.
#[derive(Debug)]
pub struct CvssError;
/// Base score.
pub fn base_score(_v: &str) -> Result<f32, CvssError> {
    Err(CvssError)
}
