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

/// rpmvercmp's step on one alphanumeric segment, shared by rpm and pacman (whose
/// algorithm is a fork of it): `a[i]` and `b[j]` are letters or digits; the run of
/// `a[i]`'s kind is taken from each. `Err(order)` when the segments decide, else the
/// ends of both runs.
pub(crate) fn segment(a: &[u8], i: usize, b: &[u8], j: usize) -> Result<(usize, usize), Ordering> {
    let numeric = a[i].is_ascii_digit();
    let kind = |c: u8| {
        if numeric {
            c.is_ascii_digit()
        } else {
            c.is_ascii_alphabetic()
        }
    };
    let (end_a, end_b) = (span(a, i, kind), span(b, j, kind));
    if end_b == j {
        // Different kinds: numeric segments are newer than alphabetic ones.
        return Err(if numeric {
            Ordering::Greater
        } else {
            Ordering::Less
        });
    }
    let order = if numeric {
        cmp_digits(&a[i..end_a], &b[j..end_b])
    } else {
        a[i..end_a].cmp(&b[j..end_b])
    };
    match order {
        Ordering::Equal => Ok((end_a, end_b)),
        decided => Err(decided),
    }
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
