//! The benchmark's packages: `N` generated names, versions, releases and epochs shaped
//! like real RPM ones, and the one spec file that builds them all.

const PREFIXES: &[&str] = &[
    "", "lib", "python3-", "perl-", "golang-", "rust-", "nodejs-", "texlive-", "ghc-", "php-",
];
const WORDS: &[&str] = &[
    "ssl",
    "xml2",
    "curl",
    "zstd",
    "yaml",
    "json-c",
    "requests",
    "urllib3",
    "six",
    "idna",
    "glib2",
    "gtk3",
    "pango",
    "cairo",
    "harfbuzz",
    "freetype",
    "fontconfig",
    "pcre2",
    "sqlite",
    "krb5",
    "gnutls",
    "nettle",
    "p11-kit",
    "expat",
    "ncurses",
    "readline",
    "bzip2",
    "xz",
    "lz4",
    "acl",
    "attr",
    "audit",
    "selinux",
    "sepol",
    "cap-ng",
    "seccomp",
    "systemd",
    "dbus",
    "polkit",
    "stdc++",
];
const SUFFIXES: &[&str] = &["", "-devel", "-libs", "-doc", "-common", "-tools"];
const LICENSES: &[&str] = &[
    "MIT",
    "GPL-2.0-or-later",
    "LGPL-2.1-or-later",
    "BSD-3-Clause",
    "Apache-2.0",
];

/// One generated package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pkg {
    /// `pcb-…`.
    pub name: String,
    /// Epoch, when not 0.
    pub epoch: Option<u32>,
    /// Version.
    pub version: String,
    /// Release.
    pub release: String,
    /// License.
    pub license: &'static str,
}

fn mix(mut x: u64) -> u64 {
    // splitmix64: deterministic, well spread.
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Package `i` of the benchmark database: unique names (`pcb-libcurl-devel`,
/// `pcb-python3-yaml`, …) and realistic versions (`2.3.1`, `20240315`, `1.0~rc2`,
/// `0.4^git20240101.abc1234`, `1.1.1k`), releases (`4.el9`, `3.el9_4`, `0.2.beta1.fc40`,
/// module releases) and an epoch on about one in seven.
pub fn package(i: usize) -> Pkg {
    let (p, w, s) = (PREFIXES.len(), WORDS.len(), SUFFIXES.len());
    let mut name = format!(
        "pcb-{}{}{}",
        PREFIXES[i % p],
        WORDS[(i / p) % w],
        SUFFIXES[(i / (p * w)) % s]
    );
    let round = i / (p * w * s);
    if round > 0 {
        name.push_str(&format!("-r{round}"));
    }
    let h = mix(i as u64);
    let d = |shift: u32, m: u64| (h >> shift) % m;
    let (a, b, c) = (d(8, 12), d(12, 30), d(18, 25));
    let date = format!(
        "20{:02}{:02}{:02}",
        18 + d(24, 8),
        1 + d(28, 12),
        1 + d(32, 28)
    );
    let version = match h % 8 {
        0 => format!("{a}.{b}.{c}"),
        1 => format!("{a}.{b}"),
        2 => date.clone(),
        3 => format!("{a}.{b}.{c}~rc{}", 1 + d(36, 4)),
        4 => format!("{a}.{b}^git{date}.{:07x}", d(36, 0x0fff_ffff)),
        5 => format!("{a}.{b}.{c}.{}", d(36, 10)),
        6 => format!("{a}.{b}.{c}{}", char::from(b'a' + d(36, 26) as u8)),
        _ => format!("{}", 1 + a),
    };
    let n = 1 + d(40, 20);
    let release = match (h >> 44) % 5 {
        0 => format!("{n}.el9"),
        1 => format!("{n}.el9_{}", d(48, 5)),
        2 => format!("{n}.fc40"),
        3 => format!("0.{n}.beta{}.el9", 1 + d(48, 3)),
        _ => format!(
            "{n}.module+el9.{}.0+{}+{:08x}",
            d(48, 5),
            1000 + d(52, 9000),
            mix(h) as u32
        ),
    };
    let epoch = (h % 7 == 0).then(|| 1 + d(56, 3) as u32);
    Pkg {
        name,
        epoch,
        version,
        release,
        license: LICENSES[d(60, LICENSES.len() as u64) as usize],
    }
}

/// The one spec file with `n` subpackages.
pub fn spec(n: usize) -> String {
    let mut s = String::with_capacity(200 * n + 300);
    s.push_str(
        "Name: pcb-bench\nVersion: 1\nRelease: 1\nSummary: PatchCTL benchmark packages\n\
         License: Apache-2.0\nBuildArch: noarch\n%description\nPatchCTL benchmark packages.\n",
    );
    for i in 0..n {
        let p = package(i);
        s.push_str(&format!(
            "%package -n {name}\nVersion: {v}\nRelease: {r}\n{epoch}Summary: PatchCTL benchmark package {name}\nLicense: {l}\n%description -n {name}\nPatchCTL benchmark package {i}.\n",
            name = p.name,
            v = p.version,
            r = p.release,
            epoch = p.epoch.map(|e| format!("Epoch: {e}\n")).unwrap_or_default(),
            l = p.license,
        ));
    }
    for i in 0..n {
        s.push_str(&format!("%files -n {}\n", package(i).name));
    }
    s
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn names_are_unique_and_versions_well_formed() {
        let n = 5000;
        let mut names = HashSet::new();
        let mut epochs = 0;
        for i in 0..n {
            let p = package(i);
            assert!(names.insert(p.name.clone()), "duplicate {}", p.name);
            assert!(p.name.starts_with("pcb-"));
            assert!(
                p.name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-+._".contains(&b)),
                "{}",
                p.name
            );
            for v in [&p.version, &p.release] {
                assert!(!v.is_empty() && !v.contains(['-', ':', ' ']), "{v}");
            }
            epochs += usize::from(p.epoch.is_some());
        }
        assert!(epochs > n / 10 && epochs < n / 4, "{epochs} epochs");
        assert_eq!(package(17), package(17));
    }

    #[test]
    fn spec_has_every_subpackage() {
        let s = spec(3);
        assert_eq!(s.matches("%package -n pcb-").count(), 3);
        assert_eq!(s.matches("%files -n pcb-").count(), 3);
        // The main package's, then one per subpackage.
        assert_eq!(s.matches("\nVersion: ").count(), 4);
    }
}
