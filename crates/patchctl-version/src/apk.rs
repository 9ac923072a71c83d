//! Alpine versions, ordered as `apk version -t` orders them.
//!
//! Well-formed versions follow `apk-package(5)`:
//! `number{.number}[letter]{_suffix[number]}[~hash][-rN]`, with the suffixes ordered
//! `_alpha < _beta < _pre < _rc < (none) < _cvs < _svn < _git < _hg < _p`.
//!
//! Written here: the only crate found (`apk-version`) is a C binding to apk-tools 3's
//! `version.c`, and neither apk-tools 2 nor apk-tools 3 alone passes the shared vectors.
//!
//! # Which apk
//!
//! apk-tools 2 (Alpine 3.x up to 3.21) and apk-tools 3 agree on well-formed versions but
//! not on malformed ones, and the shared vector file (from osv-scalibr) takes some
//! expectations from each; its comments mark several lines where "latest apk" and the 3.x
//! line disagree. The file's stated expectation is the specification, so [`compare`] is
//! a transcription of apk-tools 2's tokenizer (`src/version.c`: `get_token`,
//! `next_token`, `apk_version_compare_blob`), which is what produced the 6,990 generated
//! vectors from real Alpine package versions (`5.7.1p1-r0 < 5.7.1p1-r1` needs it: apk 3
//! calls a digit after the letter invalid and answers `=`), with these deviations,
//! each taken from apk-tools 3 or required by a line of the vector file:
//!
//! 1. When two versions diverge and one of them has turned invalid at that point, the
//!    invalid one is older (apk 3). apk 2 ranked "invalid" above everything:
//!    `1-r-0 < 1-r0`, `1.2.0A < 1.2.0d`.
//! 2. `-r` immediately followed by a letter is not a revision marker but invalid (apk 3):
//!    `1-ruff < 1`. `-r` followed by anything else still reads as revision 0 (apk 2):
//!    `1-r = 1-r0`, `1-r-2 = 1-r0-1`.
//! 3. A `.` that is not followed by a digit makes an *empty component*. apk 2 read it as
//!    the number 0; here it sorts below any other continuation except an invalid one,
//!    and two empty components at the same place compare equal so that comparison goes
//!    on (apk 2): `0.r1 < 0r2`, `0.8.21.r2 < 0.8.21r2`, `0.8.21.r2 > 0.8.21.r1`,
//!    `0..8 > 0...8`.
//! 4. Numbers of any length compare exactly (apk 2 accumulated them in a C `int`).
//! 5. A NUL byte ends the string, as it does for apk (C strings).
//!
//! With these rules every string maps to a sequence of tokens and versions compare
//! lexicographically over a total order of tokens, so [`compare`] is a total preorder on
//! *all* strings (reflexive, antisymmetric, transitive), not only on well-formed ones.
//! On well-formed versions it is apk's order: numeric components compare as numbers,
//! except that a component with leading zeros sorts before one without and such
//! components compare by their zeros first (`1.01 < 1.1`, `1.001 < 1.01`, Gentoo's
//! rule); more components is newer (`1.0 > 1`); a letter is newer than none
//! (`1.2a > 1.2`) but older than another component (`1.2a < 1.2.1`); pre-release
//! suffixes are older and post-release ones newer than no suffix; a missing `-rN` is
//! older than `-r0`.
//!
//! [`parse_check`] validates against the `apk-package(5)` grammar, as apk-tools 3 and
//! abuild do (so `6.6.2p1`, which both ordering rules still accept, is malformed).

use std::cmp::Ordering;

use crate::num::{cmp_digits, span};
use crate::{Scheme, VersionError};

const SCHEME: Scheme = Scheme::Apk;

/// apk 2's token types (`enum PARTS`), in its order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Type {
    Invalid,
    DigitOrZero,
    Digit,
    Letter,
    Suffix,
    SuffixNo,
    RevisionNo,
    End,
}

/// A token's value: apk 2 used a C `int`; digit runs are kept as text so that any
/// length compares exactly.
#[derive(Debug, Clone, Copy)]
enum Value<'a> {
    Small(i64),
    Digits(&'a [u8]),
}

impl Value<'_> {
    fn cmp(self, other: Self) -> Ordering {
        /// The value of a digit run if it fits comfortably in an `i64`.
        fn small(digits: &[u8]) -> Option<i64> {
            let start = digits
                .iter()
                .position(|&c| c != b'0')
                .unwrap_or(digits.len());
            let digits = &digits[start..];
            (digits.len() <= 18)
                .then(|| digits.iter().fold(0, |n, &c| n * 10 + i64::from(c - b'0')))
        }
        match (self, other) {
            (Value::Small(a), Value::Small(b)) => a.cmp(&b),
            (Value::Digits(a), Value::Digits(b)) => cmp_digits(a, b),
            // Small values are tiny (letters, suffix ranks, minus a zero count): a digit
            // run too long for an i64 is larger than any of them.
            (Value::Small(a), Value::Digits(b)) => small(b).map_or(Ordering::Less, |b| a.cmp(&b)),
            (Value::Digits(a), Value::Small(b)) => {
                small(a).map_or(Ordering::Greater, |a| a.cmp(&b))
            }
        }
    }
}

/// Where a token sorts against a token of another class when two versions diverge:
/// older first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Class {
    /// `_alpha`, `_beta`, `_pre`, `_rc` and unknown suffixes (apk 2 gives those -1).
    PreSuffix,
    /// Nothing valid follows; compares equal to another `Invalid`, whatever comes after.
    Invalid,
    /// A `.` not followed by a digit (deviation 3).
    EmptyComponent,
    /// The end of the version.
    End,
    RevisionNo,
    SuffixNo,
    /// `_cvs`, `_svn`, `_git`, `_hg`, `_p`.
    PostSuffix,
    Letter,
    Digit,
    DigitOrZero,
}

#[derive(Debug, Clone, Copy)]
struct Token<'a> {
    class: Class,
    value: Value<'a>,
}

impl Token<'_> {
    /// The end of the version, or the point where it stops being valid.
    fn terminal(class: Class) -> Self {
        Token {
            class,
            value: Value::Small(0),
        }
    }
}

/// apk 2's tokenizer over one version.
struct Tokens<'a> {
    s: &'a [u8],
    pos: usize,
    /// Type of the next token (apk 2's `*type`).
    next: Type,
}

impl<'a> Tokens<'a> {
    fn new(version: &'a str) -> Self {
        let s = version.as_bytes();
        let s = &s[..s.iter().position(|&c| c == 0).unwrap_or(s.len())];
        Tokens {
            s,
            pos: 0,
            next: Type::Digit,
        }
    }

    fn rest(&self) -> &'a [u8] {
        &self.s[self.pos..]
    }

    /// apk 2's `next_token`: decides the type of the next token from the character
    /// after the current one, consuming separators.
    fn next_type(&mut self) {
        let rest = self.rest();
        let current = self.next;
        let mut n = Type::Invalid;
        match rest.first().copied() {
            None => n = Type::End,
            Some(c)
                if matches!(current, Type::Digit | Type::DigitOrZero) && c.is_ascii_lowercase() =>
            {
                n = Type::Letter;
            }
            Some(c) if current == Type::Letter && c.is_ascii_digit() => n = Type::Digit,
            Some(c) if current == Type::Suffix && c.is_ascii_digit() => n = Type::SuffixNo,
            Some(c) => {
                match c {
                    b'.' => n = Type::DigitOrZero,
                    b'_' => n = Type::Suffix,
                    // Deviation 2: "-r" then a letter is not a revision marker.
                    b'-' if rest.get(1) == Some(&b'r')
                        && !rest.get(2).is_some_and(u8::is_ascii_alphabetic) =>
                    {
                        n = Type::RevisionNo;
                        self.pos += 1;
                    }
                    _ => {}
                }
                self.pos += 1;
            }
        }
        let allowed_backwards = matches!(
            (n, current),
            (Type::DigitOrZero, Type::Digit)
                | (Type::Suffix, Type::SuffixNo)
                | (Type::Digit, Type::Letter)
        );
        if n < current && !allowed_backwards {
            n = Type::Invalid;
        }
        self.next = n;
    }

    /// apk 2's `get_token`: consumes the next token, returns it with its class.
    fn token(&mut self) -> Token<'a> {
        const PRE: [&[u8]; 4] = [b"alpha", b"beta", b"pre", b"rc"];
        const POST: [&[u8]; 5] = [b"cvs", b"svn", b"git", b"hg", b"p"];
        let ty = self.next;
        let rest = self.rest();
        let mut then = None;
        let (class, value, len) = match ty {
            Type::End => return Token::terminal(Class::End),
            Type::Invalid => return Token::terminal(Class::Invalid),
            Type::DigitOrZero if rest.first() == Some(&b'0') => {
                // Leading zeros: the token is minus their count, then the digits that
                // follow are a token of their own.
                let zeros = span(rest, 0, |c| c == b'0');
                then = Some(Type::Digit);
                let count = i64::try_from(zeros).unwrap_or(i64::MAX);
                (Class::DigitOrZero, Value::Small(-count), zeros)
            }
            Type::DigitOrZero | Type::Digit | Type::SuffixNo | Type::RevisionNo => {
                let len = span(rest, 0, |c| c.is_ascii_digit());
                let class = match ty {
                    Type::DigitOrZero if len == 0 => Class::EmptyComponent,
                    Type::DigitOrZero => Class::DigitOrZero,
                    Type::Digit => Class::Digit,
                    Type::SuffixNo => Class::SuffixNo,
                    _ => Class::RevisionNo,
                };
                (class, Value::Digits(&rest[..len]), len)
            }
            Type::Letter => match rest.first() {
                Some(&c) => (Class::Letter, Value::Small(i64::from(c)), 1),
                None => return Token::terminal(Class::End),
            },
            Type::Suffix => {
                let pre = PRE.iter().position(|p| rest.starts_with(p));
                let post = POST.iter().position(|p| rest.starts_with(p));
                match (pre, post) {
                    (Some(k), _) => (Class::PreSuffix, Value::Small(k as i64 - 4), PRE[k].len()),
                    (None, Some(k)) => (Class::PostSuffix, Value::Small(k as i64), POST[k].len()),
                    (None, None) => {
                        // Unknown suffix: apk 2 returns -1 and stops.
                        self.next = Type::Invalid;
                        return Token {
                            class: Class::PreSuffix,
                            value: Value::Small(-1),
                        };
                    }
                }
            }
        };
        self.pos += len;
        if self.pos == self.s.len() {
            self.next = Type::End;
        } else if let Some(then) = then {
            self.next = then;
        } else {
            self.next_type();
        }
        Token { class, value }
    }
}

/// Orders two apk versions (see the module docs). Accepts any string and never fails.
pub fn compare(a: &str, b: &str) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    let (mut ta, mut tb) = (Tokens::new(a), Tokens::new(b));
    loop {
        let (x, y) = (ta.token(), tb.token());
        if x.class != y.class {
            return x.class.cmp(&y.class);
        }
        if matches!(x.class, Class::End | Class::Invalid) {
            return Ordering::Equal;
        }
        match x.value.cmp(y.value) {
            Ordering::Equal => {}
            order => return order,
        }
    }
}

/// Checks that `s` follows the `apk-package(5)` grammar
/// `number{.number}[letter]{_suffix[number]}[~hash][-rN]` (hash: lower-case hex), as
/// apk-tools 3 and abuild require.
pub fn parse_check(s: &str) -> Result<(), VersionError> {
    if s.is_empty() {
        return Err(VersionError::Empty { scheme: SCHEME });
    }
    let b = s.as_bytes();
    let bad = |reason: String| Err(VersionError::malformed(SCHEME, s, reason));
    let digit = |c: u8| c.is_ascii_digit();

    let mut i = span(b, 0, digit);
    if i == 0 {
        return bad("does not start with a digit".into());
    }
    while b.get(i) == Some(&b'.') {
        let end = span(b, i + 1, digit);
        if end == i + 1 {
            return bad(format!("'.' at byte {i} is not followed by a digit"));
        }
        i = end;
    }
    if b.get(i).is_some_and(u8::is_ascii_lowercase) {
        i += 1;
    }
    while b.get(i) == Some(&b'_') {
        let end = span(b, i + 1, |c| c.is_ascii_lowercase());
        let name = &s[i + 1..end];
        if name.is_empty() || !(PRE_SUFFIXES.contains(&name) || POST_SUFFIXES.contains(&name)) {
            return bad(format!(
                "unknown suffix \"_{name}\" at byte {i} (expected one of _alpha _beta _pre _rc _cvs _svn _git _hg _p)"
            ));
        }
        i = span(b, end, digit);
    }
    if b.get(i) == Some(&b'~') {
        let end = span(b, i + 1, |c| {
            c.is_ascii_digit() || (b'a'..=b'f').contains(&c)
        });
        if end == i + 1 {
            return bad(format!(
                "'~' at byte {i} is not followed by a lower-case hex commit hash"
            ));
        }
        i = end;
    }
    if b.get(i) == Some(&b'-') {
        if b.get(i + 1) != Some(&b'r') {
            return bad(format!("'-' at byte {i} does not start a \"-rN\" revision"));
        }
        let end = span(b, i + 2, digit);
        if end == i + 2 {
            return bad("\"-r\" is not followed by a revision number".into());
        }
        i = end;
    }
    match s[i..].chars().next() {
        None => Ok(()),
        Some(ch) => Err(VersionError::InvalidChar {
            scheme: SCHEME,
            version: s.to_owned(),
            ch,
            index: i,
            part: "version",
        }),
    }
}

const PRE_SUFFIXES: [&str; 4] = ["alpha", "beta", "pre", "rc"];
const POST_SUFFIXES: [&str; 5] = ["cvs", "svn", "git", "hg", "p"];

#[cfg(test)]
mod tests {
    use super::*;

    fn cmp(a: &str, b: &str) -> Ordering {
        compare(a, b)
    }

    #[test]
    fn well_formed_order() {
        let ascending = [
            "0.9",
            "1",
            "1.0",
            "1.0.1_alpha",
            "1.0.1_alpha2",
            "1.0.1_beta",
            "1.0.1_pre1",
            "1.0.1_rc1",
            "1.0.1",
            "1.0.1-r0",
            "1.0.1-r1",
            "1.0.1-r10",
            "1.0.1_cvs",
            "1.0.1_svn",
            "1.0.1_git20240101",
            "1.0.1_hg",
            "1.0.1_p1",
            "1.0.1_p2-r3",
            "1.0.1a",
            "1.0.1b",
            "1.0.1.1",
            "1.01",
            "1.1",
            "1.10",
            "99999999999999999999999",
        ];
        for (i, a) in ascending.iter().enumerate() {
            for (j, b) in ascending.iter().enumerate() {
                assert_eq!(cmp(a, b), i.cmp(&j), "{a} vs {b}");
            }
        }
    }

    #[test]
    fn deviations_from_apk2_are_pinned() {
        assert_eq!(cmp("1-r-0", "1-r0"), Ordering::Less);
        assert_eq!(cmp("1-ruff", "1"), Ordering::Less);
        assert_eq!(cmp("1-r", "1-r0"), Ordering::Equal);
        assert_eq!(cmp("0.r1", "0r2"), Ordering::Less);
        assert_eq!(cmp("1.", "1"), Ordering::Less);
        assert_eq!(cmp("1\0garbage", "1"), Ordering::Equal);
    }

    #[test]
    fn parse_check_is_the_apk_package_grammar() {
        for good in [
            "1",
            "1.2.3",
            "1.2.3b",
            "1.2_alpha1_p2",
            "1.2~0a1f-r3",
            "20240101-r0",
            "1.0_rc",
        ] {
            assert!(
                parse_check(good).is_ok(),
                "{good:?}: {:?}",
                parse_check(good)
            );
        }
        for bad in [
            "", "a", ".1", "1.", "1..2", "1.2A", "1.2ab", "6.6.2p1", "1_blah", "1_", "1~", "1~ABC",
            "1-r", "1-ruff", "1-1", "1-r1-r2", "1 ",
        ] {
            assert!(parse_check(bad).is_err(), "{bad:?}");
        }
    }
}
