//! Helpers shared by the schemes.

use std::cmp::Ordering;

/// Compares two runs of ASCII digits as unbounded non-negative integers (leading zeros
/// ignored), so that no segment can overflow.
pub(crate) fn cmp_digits(a: &[u8], b: &[u8]) -> Ordering {
    let a = strip_zeros(a);
    let b = strip_zeros(b);
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

fn strip_zeros(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|&c| c != b'0').unwrap_or(s.len());
    &s[start..]
}

/// End of the run starting at `start` whose bytes satisfy `pred`.
pub(crate) fn span(s: &[u8], start: usize, pred: impl Fn(u8) -> bool) -> usize {
    s[start..]
        .iter()
        .position(|&c| !pred(c))
        .map_or(s.len(), |n| start + n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_compare_by_value() {
        assert_eq!(cmp_digits(b"10", b"9"), Ordering::Greater);
        assert_eq!(cmp_digits(b"0010", b"10"), Ordering::Equal);
        assert_eq!(cmp_digits(b"000", b""), Ordering::Equal);
        assert_eq!(
            cmp_digits(b"99999999999999999999999999", b"99999999999999999999999998"),
            Ordering::Greater
        );
    }

    #[test]
    fn span_stops_at_first_mismatch() {
        assert_eq!(span(b"123ab", 0, |c| c.is_ascii_digit()), 3);
        assert_eq!(span(b"123", 1, |c| c.is_ascii_digit()), 3);
        assert_eq!(span(b"a", 1, |c| c.is_ascii_digit()), 1);
    }
}
