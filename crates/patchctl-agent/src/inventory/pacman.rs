//! The pacman inventory: the local database `/var/lib/pacman/local/*/desc`, read
//! directly (no process).
//!
//! pacman keeps one directory per installed package, named `NAME-VERSION`, holding a
//! `desc` file (and `files`, `mtree`, which are not read). A `desc` file is a list of
//! sections: a `%KEY%` line, one value per line, an empty line. Every package in the
//! local database is installed (pacman has no other state; `%REASON%` only says
//! whether it was installed explicitly or as a dependency), so
//! [`InstalledPackage::status`] is always `installed`.
//!
//! Read: `%NAME%`, `%VERSION%` (`[epoch:]pkgver-pkgrel`), `%BASE%` (the `pkgbase`,
//! i.e. the source package; a split package's version is its base's version), `%ARCH%`,
//! and, for the install gate of [`crate::pkgmgr::pacman`], `%PROVIDES%`,
//! `%CONFLICTS%` and `%REPLACES%`. Other sections are stepped over.
//!
//! An entry that cannot be trusted is skipped with a reason in
//! [`ParsedLocal::skipped`], never guessed: no `desc`, no `%NAME%` or `%VERSION%`, a
//! single-valued section with several values or given twice, a line outside any
//! section, or a directory name that is not `%NAME%-%VERSION%` (pacman itself names
//! the directory so; a mismatch means the entry was tampered with or half-written).
//! Nothing here panics.

use std::io;
use std::path::Path;

use patchctl_proto::agent::InstalledPackage;

use super::quote;

/// pacman's local database of installed packages, relative to the root.
pub const LOCAL_DB: &str = "var/lib/pacman/local";

/// One installed package as its `desc` file describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocalPackage {
    /// `%NAME%`.
    pub name: String,
    /// `%VERSION%`: `[epoch:]pkgver-pkgrel`.
    pub version: String,
    /// `%BASE%`: the source package (`pkgbase`); `None` when the file has none.
    pub base: Option<String>,
    /// `%ARCH%` (`x86_64`, `any`, ...); empty when the file has none.
    pub arch: String,
    /// `%PROVIDES%`: virtual names, `name` or `name=version`.
    pub provides: Vec<String>,
    /// `%CONFLICTS%`: dependency strings (`name`, `name<2.0`, ...).
    pub conflicts: Vec<String>,
    /// `%REPLACES%`: dependency strings.
    pub replaces: Vec<String>,
}

impl LocalPackage {
    /// The package as the inventory reports it: always `installed`, the base as
    /// source package (itself when the file names none) with the package's version.
    pub fn to_installed(&self) -> InstalledPackage {
        InstalledPackage {
            name: self.name.clone(),
            version: self.version.clone(),
            arch: self.arch.clone(),
            source_name: Some(self.base.clone().unwrap_or_else(|| self.name.clone())),
            source_version: Some(self.version.clone()),
            status: "installed".into(),
        }
    }
}

/// The result of reading a local database.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedLocal {
    /// The installed packages, sorted by name (directory order is arbitrary).
    pub packages: Vec<LocalPackage>,
    /// One reason for each entry skipped as malformed.
    pub skipped: Vec<String>,
}

/// Why a local database entry cannot be trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DescError {
    /// A single-valued section (`%NAME%`) has no value.
    #[error("{0} has no value")]
    NoValue(String),
    /// A single-valued section has several values.
    #[error("{key} has {count} values, expected one")]
    ManyValues {
        /// The section's `%KEY%` line.
        key: String,
        /// How many values it has.
        count: usize,
    },
    /// A line that is neither a `%KEY%` line nor inside a section.
    #[error("line outside a section: {0:?}")]
    OutsideSection(String),
    /// A section given twice.
    #[error("section {0} given twice")]
    SectionTwice(String),
    /// A required section (`%NAME%`, `%VERSION%`) is missing.
    #[error("no {0}")]
    Missing(&'static str),
    /// A value that must be one word is empty or contains white space.
    #[error("{key} {value:?} is not one word")]
    NotOneWord {
        /// The section's `%KEY%` line.
        key: &'static str,
        /// The value, shortened.
        value: String,
    },
    /// The entry's directory is not named `%NAME%-%VERSION%`.
    #[error("the directory is not named %NAME%-%VERSION% ({0:?})")]
    DirectoryName(String),
}

/// Parses one `desc` file. Never panics; the error says what is wrong.
pub fn parse_desc(text: &str) -> Result<LocalPackage, DescError> {
    let mut p = LocalPackage::default();
    let (mut name, mut version, mut base, mut arch) = (None, None, None, None);
    let mut seen: Vec<&str> = Vec::new();
    // The section being read and the values collected for it.
    let mut section: Option<&str> = None;
    let mut values: Vec<&str> = Vec::new();

    let mut close = |section: Option<&str>, values: &mut Vec<&str>| -> Result<(), DescError> {
        let Some(key) = section else {
            return Ok(());
        };
        let vals = std::mem::take(values);
        let single = |slot: &mut Option<String>| -> Result<(), DescError> {
            match vals.as_slice() {
                [v] => {
                    *slot = Some((*v).to_owned());
                    Ok(())
                }
                [] => Err(DescError::NoValue(key.to_owned())),
                _ => Err(DescError::ManyValues {
                    key: key.to_owned(),
                    count: vals.len(),
                }),
            }
        };
        let list = |v: &mut Vec<String>| v.extend(vals.iter().map(|s| (*s).to_owned()));
        match key {
            "%NAME%" => single(&mut name),
            "%VERSION%" => single(&mut version),
            "%BASE%" => single(&mut base),
            "%ARCH%" => single(&mut arch),
            "%PROVIDES%" => {
                list(&mut p.provides);
                Ok(())
            }
            "%CONFLICTS%" => {
                list(&mut p.conflicts);
                Ok(())
            }
            "%REPLACES%" => {
                list(&mut p.replaces);
                Ok(())
            }
            _ => Ok(()),
        }
    };

    for raw in text.split('\n') {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.is_empty() {
            close(section.take(), &mut values)?;
            continue;
        }
        if section.is_none() {
            if !is_key(line) {
                return Err(DescError::OutsideSection(quote(line).to_owned()));
            }
            if seen.contains(&line) {
                return Err(DescError::SectionTwice(quote(line).to_owned()));
            }
            seen.push(line);
            section = Some(line);
            continue;
        }
        values.push(line);
    }
    close(section.take(), &mut values)?;

    let word = |v: Option<String>, key: &'static str| -> Result<String, DescError> {
        match v {
            None => Err(DescError::Missing(key)),
            Some(v) if v.is_empty() || v.contains(char::is_whitespace) => {
                Err(DescError::NotOneWord {
                    key,
                    value: quote(&v).to_owned(),
                })
            }
            Some(v) => Ok(v),
        }
    };
    p.name = word(name, "%NAME%")?;
    p.version = word(version, "%VERSION%")?;
    p.base = match base {
        None => None,
        Some(b) => Some(word(Some(b), "%BASE%")?),
    };
    p.arch = match arch {
        None => String::new(),
        Some(a) => word(Some(a), "%ARCH%")?,
    };
    Ok(p)
}

/// True for a `%KEY%` line.
fn is_key(line: &str) -> bool {
    line.len() > 2
        && line.starts_with('%')
        && line.ends_with('%')
        && line[1..line.len() - 1]
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

/// Checks one database entry: `dir` is the directory's name, `desc` its `desc` file.
pub fn parse_entry(dir: &str, desc: &str) -> Result<LocalPackage, DescError> {
    let p = parse_desc(desc)?;
    let want = format!("{}-{}", p.name, p.version);
    if dir != want {
        return Err(DescError::DirectoryName(quote(&want).to_owned()));
    }
    Ok(p)
}

/// Reads the local database directory `dir` (normally `/var/lib/pacman/local`).
/// Fails only when the directory itself cannot be read; bad entries are skipped. Read
/// at background priority ([`crate::priority::in_background`]).
pub fn read_local(dir: &Path) -> io::Result<ParsedLocal> {
    crate::priority::in_background(|| read_local_here(dir))
}

fn read_local_here(dir: &Path) -> io::Result<ParsedLocal> {
    let mut out = ParsedLocal::default();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let fname = entry.file_name();
        let fname = fname.to_string_lossy();
        // ALPM_DB_VERSION and any other plain file are not packages.
        if !entry.path().is_dir() {
            continue;
        }
        let desc = entry.path().join("desc");
        let text = match std::fs::read(&desc) {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(e) => {
                out.skipped
                    .push(format!("{}: cannot read desc: {e}", quote(&fname)));
                continue;
            }
        };
        match parse_entry(&fname, &text) {
            Ok(p) => out.packages.push(p),
            Err(reason) => out.skipped.push(format!("{}: {reason}", quote(&fname))),
        }
    }
    out.packages
        .sort_by(|a, b| a.name.cmp(&b.name).then(a.version.cmp(&b.version)));
    out.skipped.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/pacman");

    #[test]
    fn real_desc_files() {
        // Written by pacman 6.0.2 (`pacman -U --asdeps`) in a private root.
        let p = parse_desc(include_str!("../../tests/data/pacman/desc-pc-lib.txt")).unwrap();
        assert_eq!(p.name, "pc-lib");
        assert_eq!(p.version, "2:1.0.3-2");
        assert_eq!(p.base.as_deref(), Some("pc-split"));
        assert_eq!(p.arch, "x86_64");
        assert_eq!(p.provides, ["libpc.so=1-64", "pc-lib-compat=1.0"]);
        assert_eq!(p.conflicts, ["pc-oldlib<2"]);
        assert!(p.replaces.is_empty());
        let i = p.to_installed();
        assert_eq!(i.source_name.as_deref(), Some("pc-split"));
        assert_eq!(i.source_version.as_deref(), Some("2:1.0.3-2"));
        assert_eq!(i.status, "installed");
    }

    #[test]
    fn real_local_database() {
        let parsed = read_local(&Path::new(DATA).join("local")).unwrap();
        assert!(parsed.skipped.is_empty(), "{:?}", parsed.skipped);
        let names: Vec<_> = parsed
            .packages
            .iter()
            .map(|p| format!("{} {} {}", p.name, p.version, p.arch))
            .collect();
        assert_eq!(
            names,
            [
                "pc-new 1.0-1 any",
                "pc-sec 1.0-1 any",
                "pc-upd 1.0-1 any",
                "pc-victim 1.0-1 any"
            ]
        );
        assert!(parsed.packages[0].conflicts.is_empty());
        // pc-new 1.1-1, installed alone in another root: it conflicts with and replaces
        // pc-victim.
        let new = parse_desc(include_str!("../../tests/data/pacman/desc-pc-new-1.1.txt")).unwrap();
        assert_eq!(new.version, "1.1-1");
        assert_eq!(new.conflicts, ["pc-victim"]);
        assert_eq!(new.replaces, ["pc-victim"]);
    }

    #[test]
    fn malformed_entries_are_skipped_with_reasons() {
        let tmp = tempfile::tempdir().unwrap();
        let good = include_str!("../../tests/data/pacman/local/pc-sec-1.0-1/desc");
        let put = |dir: &str, desc: Option<&str>| {
            let d = tmp.path().join(dir);
            std::fs::create_dir_all(&d).unwrap();
            if let Some(t) = desc {
                std::fs::write(d.join("desc"), t).unwrap();
            }
        };
        put("pc-sec-1.0-1", Some(good));
        put("pc-nodesc-1-1", None);
        put("pc-renamed-1.0-1", Some(good));
        put("x-1-1", Some("%NAME%\nx\n\n%VERSION%\n1-1\n1-2\n"));
        put("y-1-1", Some("garbage\n%NAME%\ny\n"));
        put("z-1-1", Some("%NAME%\nz\n\n%NAME%\nz\n\n%VERSION%\n1-1\n"));
        put("v-1", Some("%NAME%\nv\n"));
        std::fs::write(tmp.path().join("ALPM_DB_VERSION"), "9\n").unwrap();
        let parsed = read_local(tmp.path()).unwrap();
        assert_eq!(parsed.packages.len(), 1);
        assert_eq!(parsed.packages[0].name, "pc-sec");
        let s = parsed.skipped.join("\n");
        assert_eq!(parsed.skipped.len(), 6, "{s}");
        for want in [
            "pc-nodesc-1-1: cannot read desc",
            "pc-renamed-1.0-1: the directory is not named",
            "x-1-1: %VERSION% has 2 values",
            "y-1-1: line outside a section",
            "z-1-1: section %NAME% given twice",
            "v-1: no %VERSION%",
        ] {
            assert!(s.contains(want), "{want} not in\n{s}");
        }
    }

    #[test]
    fn small_cases() {
        // Windows line ends, unknown sections, no trailing blank line, pacman 6.1's
        // %XDATA%.
        let p = parse_desc(
            "%NAME%\r\nfoo\r\n\r\n%VERSION%\r\n1.0-1\r\n\r\n%XDATA%\r\npkgtype=pkg\r\n\r\n%ARCH%\r\nany",
        )
        .unwrap();
        assert_eq!((p.name.as_str(), p.version.as_str()), ("foo", "1.0-1"));
        assert_eq!(p.arch, "any");
        assert_eq!(p.base, None);
        assert_eq!(p.to_installed().source_name.as_deref(), Some("foo"));
        assert!(parse_desc("").is_err());
        assert!(parse_desc("%NAME%\nfoo bar\n\n%VERSION%\n1-1\n").is_err());
        assert!(parse_desc("%NAME%\n\n%VERSION%\n1-1\n").is_err());
        assert!(parse_entry("foo-1.0-2", "%NAME%\nfoo\n\n%VERSION%\n1.0-1\n").is_err());
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,400}", dir in "\\PC{0,20}") {
            let _ = parse_desc(&s);
            let _ = parse_entry(&dir, &s);
            let _ = parse_desc(&format!("%NAME%\n{s}"));
        }

        #[test]
        fn written_entries_read_back(
            name in "[a-z0-9@_+][a-z0-9@._+-]{0,20}",
            version in "([0-9]{1,3}:)?[0-9][0-9a-z.+_]{0,10}-[0-9]{1,3}(\\.[0-9])?",
            base in proptest::option::of("[a-z0-9][a-z0-9._+-]{0,20}"),
            arch in "(x86_64|any|aarch64)",
            provides in proptest::collection::vec("[a-z][a-z0-9.-]{0,10}(=[0-9.]{1,5})?", 0..3),
            conflicts in proptest::collection::vec("[a-z][a-z0-9.-]{0,10}((<|>|<=|>=|=)[0-9.]{1,5})?", 0..3),
            noise in proptest::collection::btree_map("[A-Z]{1,10}", "[ -~]{1,30}", 0..3),
        ) {
            let mut desc = format!("%NAME%\n{name}\n\n%VERSION%\n{version}\n\n");
            if let Some(b) = &base {
                desc.push_str(&format!("%BASE%\n{b}\n\n"));
            }
            for (k, v) in &noise {
                if !matches!(k.as_str(), "NAME" | "VERSION" | "BASE" | "ARCH" | "PROVIDES" | "CONFLICTS" | "REPLACES") {
                    desc.push_str(&format!("%{k}%\n{}\n\n", v.trim()));
                }
            }
            desc.push_str(&format!("%ARCH%\n{arch}\n\n"));
            for (key, vals) in [("PROVIDES", &provides), ("CONFLICTS", &conflicts)] {
                if !vals.is_empty() {
                    desc.push_str(&format!("%{key}%\n{}\n\n", vals.join("\n")));
                }
            }
            let dir = format!("{name}-{version}");
            let p = parse_entry(&dir, &desc);
            prop_assert!(p.is_ok(), "{:?}\n{}", p, desc);
            let p = p.unwrap();
            prop_assert_eq!(&p.name, &name);
            prop_assert_eq!(&p.version, &version);
            prop_assert_eq!(&p.base, &base);
            prop_assert_eq!(&p.arch, &arch);
            prop_assert_eq!(&p.provides, &provides);
            prop_assert_eq!(&p.conflicts, &conflicts);
        }
    }
}
