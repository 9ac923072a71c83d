//! The rpm inventory: a parser of `rpm -qa --queryformat` output.
//!
//! The parser reads the TAB-separated lines that [`QUERY_FORMAT`] produces (what the
//! agent runs) and also the space-separated
//! `%{NAME} %{EPOCHNUM}:%{VERSION}-%{RELEASE} %{ARCH} %{SOURCERPM}` lines that an
//! operator may paste (`patchctl vulns check --rpm-qa`). Lines it cannot read are
//! skipped with a reason in [`ParsedQa::skipped`]; it never panics.

use crate::agent::InstalledPackage;

use super::{WordError, quote, word};

/// The `--queryformat` of both queries: one line per package, six TAB-separated
/// fields.
pub const QUERY_FORMAT: &str =
    "%{NAME}\t%{EPOCHNUM}\t%{VERSION}\t%{RELEASE}\t%{ARCH}\t%{SOURCERPM}\n";

/// The result of parsing `rpm -q` output.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ParsedQa {
    /// The packages, in output order. `version` is `E:V-R` when the epoch is not 0,
    /// else `V-R`; `status` is always `installed`.
    pub packages: Vec<InstalledPackage>,
    /// One reason for each non-empty line that was skipped.
    pub skipped: Vec<String>,
}

/// Parses `rpm -q` output in the [`QUERY_FORMAT`] (TAB-separated) or the space format,
/// line by line; the two may even be mixed.
pub fn parse_qa(output: &str) -> ParsedQa {
    let mut out = ParsedQa::default();
    for (index, raw) in output.lines().enumerate() {
        let line = raw.trim_matches([' ', '\r']);
        if line.trim().is_empty() {
            continue;
        }
        match parse_line(line) {
            Ok(package) => out.packages.push(package),
            Err(reason) => {
                out.skipped
                    .push(format!("line {}: {reason}: {:?}", index + 1, quote(line)))
            }
        }
    }
    out
}

/// Why one line of `rpm -qa` output was skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
enum LineError<'a> {
    /// A TAB-separated line without exactly six fields.
    #[error("expected 6 TAB-separated fields")]
    TabFields,
    /// rpm's own line for a package that is not installed.
    #[error("package {0} is not installed")]
    NotInstalled(&'a str),
    /// A space-separated line without exactly four fields.
    #[error("expected 4 space-separated fields")]
    SpaceFields,
    /// A space-separated version without a release.
    #[error("version is not EPOCH:VERSION-RELEASE")]
    NotEvr,
    /// A field that is empty or contains white space.
    #[error(transparent)]
    Word(#[from] WordError),
    /// A version with an epoch or release separator in it.
    #[error("version contains ':' or '-'")]
    VersionSeparator,
    /// A release with an epoch separator in it.
    #[error("release contains ':'")]
    ReleaseColon,
    /// An epoch that does not fit 32 bits.
    #[error("epoch is too large")]
    EpochTooLarge,
    /// An epoch that is not a number.
    #[error("epoch is not a number")]
    EpochNotNumber,
}

fn parse_line(line: &str) -> Result<InstalledPackage, LineError<'_>> {
    let (name, epoch, version, release, arch, source) = if line.contains('\t') {
        let mut fields = line.split('\t');
        match (
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
        ) {
            (Some(n), Some(e), Some(v), Some(r), Some(a), Some(s), None) => {
                (n, e, v, r, a, s.trim_end())
            }
            _ => return Err(LineError::TabFields),
        }
    } else {
        if let Some(name) = line
            .strip_prefix("package ")
            .and_then(|l| l.strip_suffix(" is not installed"))
        {
            return Err(LineError::NotInstalled(quote(name)));
        }
        let mut fields = line.split_ascii_whitespace();
        let (Some(n), Some(evr), Some(a), Some(s), None) = (
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
        ) else {
            return Err(LineError::SpaceFields);
        };
        let (e, vr) = match evr.split_once(':') {
            Some((e, vr)) => (e, vr),
            None => ("0", evr),
        };
        let Some((v, r)) = vr.rsplit_once('-') else {
            return Err(LineError::NotEvr);
        };
        (n, e, v, r, a, s)
    };
    let name = word(name, "name")?;
    let version = word(version, "version")?;
    let release = word(release, "release")?;
    let arch = word(arch, "arch")?;
    let source = word(source, "source rpm")?;
    if version.contains([':', '-']) {
        return Err(LineError::VersionSeparator);
    }
    if release.contains(':') {
        return Err(LineError::ReleaseColon);
    }
    let epoch: u32 = match epoch {
        "" | "(none)" => 0,
        e if e.bytes().all(|b| b.is_ascii_digit()) => {
            e.parse().map_err(|_| LineError::EpochTooLarge)?
        }
        _ => return Err(LineError::EpochNotNumber),
    };
    let version = if epoch == 0 {
        format!("{version}-{release}")
    } else {
        format!("{epoch}:{version}-{release}")
    };
    let (source_name, source_version) = match parse_source_rpm(source) {
        Some((n, v)) => (Some(n.to_owned()), Some(v.to_owned())),
        None => (None, None),
    };
    Ok(InstalledPackage {
        name: name.to_owned(),
        version,
        // gpg-pubkey "packages" have no architecture.
        arch: if arch == "(none)" { "" } else { arch }.to_owned(),
        source_name,
        source_version,
        status: "installed".to_owned(),
    })
}

/// The source package name and `VERSION-RELEASE` of a source RPM file name:
/// `bash-5.1.8-6.el9.src.rpm` → `("bash", "5.1.8-6.el9")`. `None` for `(none)` (the
/// `gpg-pubkey` entries) and for anything that is not a source RPM file name. The file
/// name carries no epoch, so neither does the version.
pub fn parse_source_rpm(file: &str) -> Option<(&str, &str)> {
    let stem = file
        .strip_suffix(".src.rpm")
        .or_else(|| file.strip_suffix(".nosrc.rpm"))?;
    let (name_version, release) = stem.rsplit_once('-')?;
    let (name, version) = name_version.rsplit_once('-')?;
    if name.is_empty() || version.is_empty() || release.is_empty() {
        return None;
    }
    Some((name, &stem[name.len() + 1..]))
}
