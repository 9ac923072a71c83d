//! The offline inputs of `patchctl vulns check`: a host's os-release and its package
//! inventory as a file.
//!
//! The text formats are read by the very parsers the agent uses on the host
//! ([`patchctl_proto::inventory`]), so the offline check sees exactly the packages a
//! scan would report: binary name, version (dpkg and rpm with epoch, rpm's written
//! `E:V-R` only when the epoch is not 0), architecture, source package and its version
//! (the dpkg `Source: name (version)` field, the source RPM file name, apk's origin),
//! and the dpkg state word (`installed`, `half-configured`, ...).
//!
//! Unlike the agent, which logs and skips an entry it cannot read, these readers are
//! strict: an input with any malformed entry, or with no package at all, is refused
//! with an [`InventoryError`] naming each bad line, because a silently dropped package
//! is a silently missed vulnerability. The caller names the file with
//! [`InventoryError::in_file`]. No input makes them panic.

use std::fmt;

use patchctl_proto::agent::{InstalledPackage, InventoryUpload, SystemInfo};
use patchctl_proto::inventory::{apk, dpkg, rpm};
use patchctl_proto::scan::{PackageRow, ScanBody, ScanState, ScanUpload};

pub use patchctl_proto::inventory::parse_os_release;

/// How many problems an [`InventoryError`] message lists before "and N more".
const SHOWN_PROBLEMS: usize = 5;

/// The inventory file formats `patchctl vulns check` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// `/var/lib/dpkg/status` (`--dpkg-status`).
    DpkgStatus,
    /// `rpm -qa --qf '%{NAME} %{EPOCHNUM}:%{VERSION}-%{RELEASE} %{ARCH} %{SOURCERPM}\n'`
    /// output (`--rpm-qa`).
    RpmQa,
    /// `/lib/apk/db/installed` (`--apk-installed`).
    ApkInstalled,
    /// `pacman -Q` output: `name version` per line (`--pacman-q`).
    PacmanQ,
    /// What `patchctl-agent scan --print` prints (`--inventory`).
    ScanPrint,
}

impl Format {
    /// What a file of this format is, for messages.
    pub fn what(self) -> &'static str {
        match self {
            Format::DpkgStatus => "dpkg status file",
            Format::RpmQa => "rpm -qa listing",
            Format::ApkInstalled => "apk installed database",
            Format::PacmanQ => "pacman -Q listing",
            Format::ScanPrint => "patchctl-agent scan --print document",
        }
    }

    /// How to produce a good file of this format.
    fn hint(self) -> &'static str {
        match self {
            Format::DpkgStatus => "use a copy of the host's /var/lib/dpkg/status",
            Format::RpmQa => {
                "produce it on the host with: rpm -qa --qf '%{NAME} %{EPOCHNUM}:%{VERSION}-%{RELEASE} %{ARCH} %{SOURCERPM}\\n'"
            }
            Format::ApkInstalled => "use a copy of the host's /lib/apk/db/installed",
            Format::PacmanQ => "produce it on the host with: pacman -Q",
            Format::ScanPrint => "produce it on the host with: patchctl-agent scan --print",
        }
    }
}

/// An inventory file that cannot be used as a whole: what was wrong with which lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InventoryError {
    file: Option<String>,
    format: Format,
    problems: Vec<String>,
}

impl InventoryError {
    fn new(format: Format, problems: Vec<String>) -> Self {
        InventoryError {
            file: None,
            format,
            problems,
        }
    }

    /// The same error, naming the file it came from.
    pub fn in_file(mut self, file: impl fmt::Display) -> Self {
        self.file = Some(file.to_string());
        self
    }

    /// The format the input was read as.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Every problem found, each naming its line (`stanza at line 12 (package x): no
    /// Version field`, `line 3: expected 4 space-separated fields: "..."`).
    pub fn problems(&self) -> &[String] {
        &self.problems
    }
}

impl fmt::Display for InventoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{file}: ")?;
        }
        write!(f, "not a usable {}: ", self.format.what())?;
        let shown = &self.problems[..self.problems.len().min(SHOWN_PROBLEMS)];
        f.write_str(&shown.join("; "))?;
        if self.problems.len() > shown.len() {
            write!(f, "; and {} more", self.problems.len() - shown.len())?;
        }
        write!(f, " ({})", self.format.hint())
    }
}

impl std::error::Error for InventoryError {}

/// The packages, when nothing was skipped and there is at least one.
fn strict(
    format: Format,
    packages: Vec<InstalledPackage>,
    skipped: Vec<String>,
) -> Result<Vec<InstalledPackage>, InventoryError> {
    if !skipped.is_empty() {
        return Err(InventoryError::new(format, skipped));
    }
    if packages.is_empty() {
        return Err(InventoryError::new(
            format,
            vec!["it lists no installed package".to_owned()],
        ));
    }
    Ok(packages)
}

/// The installed packages of a dpkg status file (any state but `not-installed` and
/// `config-files`; `status` keeps dpkg's word). Source name and version are always
/// filled: `Source: util-linux (2.38.1-5+deb12u3)` gives exactly that, `Source:
/// openssh` the binary's version, no `Source` the binary itself.
pub fn parse_dpkg_status(text: &str) -> Result<Vec<InstalledPackage>, InventoryError> {
    let parsed = dpkg::parse_status(text);
    strict(Format::DpkgStatus, parsed.packages, parsed.skipped)
}

/// The packages of an `rpm -qa` listing (space- or TAB-separated, see [`Format::RpmQa`]):
/// version `E:V-R`, the epoch written only when it is not 0 (as the AlmaLinux and Rocky
/// data write fixed versions); source name and `V-R` from the source RPM file name,
/// `None` for `(none)`. `gpg-pubkey` entries are keys, not packages, and are left out.
pub fn parse_rpm_qa(text: &str) -> Result<Vec<InstalledPackage>, InventoryError> {
    let parsed = rpm::parse_qa(text);
    let mut packages = parsed.packages;
    packages.retain(|p| p.name != "gpg-pubkey");
    strict(Format::RpmQa, packages, parsed.skipped)
}

/// The packages of an apk installed database: the origin (`o:`) is the source package,
/// built once per version, so the source version is the package's own.
pub fn parse_apk_installed(text: &str) -> Result<Vec<InstalledPackage>, InventoryError> {
    let parsed = apk::parse_installed(text);
    strict(Format::ApkInstalled, parsed.packages, parsed.skipped)
}

/// The packages of `pacman -Q` output (Arch): `name version` per line, the version
/// `[epoch:]pkgver-pkgrel`. pacman -Q names no source package (pkgbase); Arch's tracker
/// names the package itself, so none is needed.
pub fn parse_pacman_q(text: &str) -> Result<Vec<InstalledPackage>, InventoryError> {
    let mut packages = Vec::new();
    let mut problems = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let mut words = line.split_whitespace();
        match (words.next(), words.next(), words.next()) {
            (Some(name), Some(version), None) if version.contains('-') => {
                packages.push(InstalledPackage {
                    name: name.to_string(),
                    version: version.to_string(),
                    arch: String::new(),
                    source_name: None,
                    source_version: None,
                    status: "installed".into(),
                });
            }
            _ => problems.push(format!(
                "line {}: {:?} is not `name version` with version pkgver-pkgrel",
                i + 1,
                crate::cvss::clip_to(line, 60)
            )),
        }
    }
    strict(Format::PacmanQ, packages, problems)
}

/// The system and packages of what `patchctl-agent scan --print` prints: a
/// [`ScanUpload`] whose body is the full state. A bare [`ScanState`] and the v1
/// [`InventoryUpload`] are read too. An `unchanged` or `delta` upload holds no complete
/// inventory and is refused.
///
/// The system is `None` when it does not identify the release (empty `os.id`): then the
/// os-release must come from elsewhere (`--os-release`).
pub fn parse_scan_print(
    text: &str,
) -> Result<(Option<SystemInfo>, Vec<InstalledPackage>), InventoryError> {
    let fail = |problem: String| InventoryError::new(Format::ScanPrint, vec![problem]);
    let json = |e: serde_json::Error| fail(format!("invalid JSON: {e}"));
    let value: serde_json::Value = serde_json::from_str(text).map_err(json)?;
    let has = |key: &str| value.get(key).is_some();
    let (system, packages) = if has("body") {
        let upload: ScanUpload = serde_json::from_str(text).map_err(json)?;
        match upload.body {
            ScanBody::Full { state } => state_packages(state),
            ScanBody::Unchanged | ScanBody::Delta { .. } => {
                return Err(fail(
                    "this upload holds only changes against an earlier scan, not the \
                     inventory"
                        .to_owned(),
                ));
            }
        }
    } else if has("scanned_at") {
        let v1: InventoryUpload = serde_json::from_str(text).map_err(json)?;
        (v1.system, v1.packages)
    } else {
        state_packages(serde_json::from_str(text).map_err(json)?)
    };
    let problems: Vec<String> = packages
        .iter()
        .enumerate()
        .filter_map(|(i, p)| package_problem(p).map(|why| format!("package {}: {why}", i + 1)))
        .collect();
    let packages = strict(Format::ScanPrint, packages, problems)?;
    let system = (!system.os.id.is_empty()).then_some(system);
    Ok((system, packages))
}

fn state_packages(state: ScanState) -> (SystemInfo, Vec<InstalledPackage>) {
    let packages = state.packages.iter().map(PackageRow::to_package).collect();
    (state.system, packages)
}

/// Why a package read from JSON cannot be matched: an empty name or version, or white
/// space in one.
fn package_problem(p: &InstalledPackage) -> Option<String> {
    let fields = [("name", &p.name), ("version", &p.version)];
    fields.iter().find_map(|(what, v)| {
        if v.is_empty() {
            Some(format!("empty {what}"))
        } else if v.contains(char::is_whitespace) {
            Some(format!(
                "{what} {:?} contains white space",
                crate::cvss::clip_to(v, 60)
            ))
        } else {
            None
        }
    })
}
