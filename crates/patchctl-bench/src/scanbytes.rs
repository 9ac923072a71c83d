//! Bytes on the wire per scan, for an inventory of real Debian packages.
//!
//! Two sets of real Debian package records (`apt-cache dumpavail`: the archive's own
//! records, with their real versions and source packages), `n` packages each:
//!
//! - *a real host*: this machine's installed packages plus what apt resolves for
//!   `task-gnome-desktop task-xfce-desktop task-ssh-server task-web-server` (a desktop
//!   and web server as apt would install it), spread evenly down to `n`;
//! - *worst case*: `n` records spread evenly over the whole archive in name order, so
//!   that neighbours share almost nothing (no library families, few shared sources);
//!   real hosts never look like this.
//!
//! The agent's own code builds
//! and encodes the uploads ([`patchctl_agent::scan`]), so the figures are what the
//! agent sends: a full scan (gzip), an unchanged one (digest only) and one after 1 %
//! of the packages changed version (a delta). The reference is the re-send of the whole
//! list as plain JSON (our protocol-v1 inventory body), which is what a platform that
//! re-sends the full list every hour, as Fleet does, puts on the wire each time.

use anyhow::{Context, bail};
use chrono::Utc;
use patchctl_agent::scan::{Acked, encode, upload_for};
use patchctl_proto::agent::{InstalledPackage, InventoryUpload};
use patchctl_proto::scan::{PackageRow, ScanBody, ScanState, ScanUpdates};

/// What was measured.
pub struct Outcome {
    /// Which package set.
    pub dataset: Dataset,
    /// Packages in the inventory.
    pub packages: usize,
    /// The full list as plain JSON (v1 inventory body).
    pub v1_plain: usize,
    /// The full scan as the agent sends it (gzip).
    pub full: usize,
    /// An unchanged scan.
    pub unchanged: usize,
    /// A scan after 1 % of the packages changed version.
    pub delta_1pct: usize,
    /// Packages changed for the delta.
    pub changed: usize,
}

/// The tasks whose resolution, added to this machine's packages, makes the real host.
const TASKS: &[&str] = &[
    "task-gnome-desktop",
    "task-xfce-desktop",
    "task-ssh-server",
    "task-web-server",
];

/// Which set of packages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dataset {
    /// A real host's installed set.
    Host,
    /// Spread over the whole archive.
    WorstCase,
}

fn spread<T>(all: Vec<T>, n: usize) -> anyhow::Result<Vec<T>> {
    if all.len() < n {
        bail!("only {} packages available, fewer than {n}", all.len());
    }
    let len = all.len();
    Ok(all
        .into_iter()
        .enumerate()
        .filter(|(i, _)| i * n / len != (i + 1) * n / len)
        .map(|(_, p)| p)
        .collect())
}

fn output(cmd: &mut std::process::Command) -> anyhow::Result<String> {
    let out = cmd
        .output()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn real_packages(n: usize, dataset: Dataset) -> anyhow::Result<Vec<InstalledPackage>> {
    let all = archive()?;
    match dataset {
        Dataset::WorstCase => spread(all, n),
        Dataset::Host => {
            let mut names: std::collections::BTreeSet<String> =
                output(std::process::Command::new("dpkg-query").args([
                    "-W",
                    "-f",
                    "${Package}\n",
                ]))?
                .lines()
                .map(str::to_owned)
                .collect();
            let sim = output(
                std::process::Command::new("apt-get")
                    .args(["-s", "-q", "-o", "Debug::NoLocking=true", "install"])
                    .args(TASKS),
            )?;
            names.extend(
                sim.lines()
                    .filter_map(|l| l.strip_prefix("Inst "))
                    .filter_map(|l| l.split_whitespace().next())
                    .map(str::to_owned),
            );
            let host: Vec<InstalledPackage> = all
                .into_iter()
                .filter(|p| names.contains(&p.name))
                .collect();
            // A machine with more installed already resolves fewer new packages (one
            // ended at 1,994 names the archive knows): within 5 % of `n`, the whole set
            // is the host (the report says how many); fewer is an error.
            if host.len() < n && host.len() >= n - n / 20 {
                eprintln!(
                    "scan bytes: the real host has {} packages here, fewer than {n}: using all",
                    host.len()
                );
                return Ok(host);
            }
            spread(host, n)
        }
    }
}

fn archive() -> anyhow::Result<Vec<InstalledPackage>> {
    let text = output(std::process::Command::new("apt-cache").arg("dumpavail"))?;
    let mut all: Vec<InstalledPackage> = Vec::new();
    for rec in text.split("\n\n") {
        let field = |k: &str| {
            rec.lines()
                .find_map(|l| l.strip_prefix(k).map(|v| v.trim().to_owned()))
        };
        let (Some(name), Some(version), Some(arch)) =
            (field("Package:"), field("Version:"), field("Architecture:"))
        else {
            continue;
        };
        // "Source: name (version)" or "Source: name"; absent means the binary's own.
        let (source_name, source_version) = match field("Source:") {
            Some(s) => match s.split_once(' ') {
                Some((sn, sv)) => (
                    sn.to_owned(),
                    sv.trim_matches(|c| c == '(' || c == ')').to_owned(),
                ),
                None => (s, version.clone()),
            },
            None => (name.clone(), version.clone()),
        };
        all.push(InstalledPackage {
            name,
            version,
            arch,
            source_name: Some(source_name),
            source_version: Some(source_version),
            status: "installed".into(),
        });
    }
    all.sort_by(|a, b| a.name.cmp(&b.name));
    all.dedup_by(|a, b| a.name == b.name);
    Ok(all)
}

/// Measures with `n` packages.
pub fn run(n: usize, dataset: Dataset) -> anyhow::Result<Outcome> {
    let packages = real_packages(n, dataset)?;
    let system = patchctl_agent::sysinfo::collect();
    let v1 = InventoryUpload {
        scanned_at: Utc::now(),
        system: system.clone(),
        package_manager: Some("dpkg".into()),
        packages: packages.clone(),
    };
    let v1_plain = serde_json::to_vec(&v1)?.len();
    let mut state = ScanState {
        system,
        package_manager: Some("dpkg".into()),
        packages: packages.iter().map(PackageRow::from_package).collect(),
        updates: Some(ScanUpdates {
            refreshed: true,
            ..ScanUpdates::default()
        }),
    };
    state.canonicalize();
    let t = Utc::now();
    let full = encode(&upload_for(&state, None, t)).map_err(anyhow::Error::msg)?;
    let acked = Acked {
        digest: state.digest(),
        state: state.clone(),
    };
    let unchanged_upload = upload_for(&state, Some(&acked), t);
    if unchanged_upload.body != ScanBody::Unchanged {
        bail!("an unchanged state did not give an unchanged upload");
    }
    let unchanged = encode(&unchanged_upload).map_err(anyhow::Error::msg)?;
    // 1 %: every hundredth package gets a new (security-style) version.
    let mut changed_pkgs = packages.clone();
    let mut changed = 0;
    for p in changed_pkgs.iter_mut().step_by(100) {
        p.version = format!("{}+deb12u9", p.version);
        p.source_version = Some(p.version.clone());
        changed += 1;
    }
    let mut next = state.clone();
    next.packages = changed_pkgs.iter().map(PackageRow::from_package).collect();
    next.canonicalize();
    let delta_upload = upload_for(&next, Some(&acked), t);
    let ScanBody::Delta { added, removed, .. } = &delta_upload.body else {
        bail!("a 1 % change did not give a delta");
    };
    // The delta must rebuild exactly the new state from the acknowledged one.
    let rebuilt = state
        .apply(None, added, removed, None)
        .map_err(anyhow::Error::msg)?;
    if rebuilt.digest() != next.digest() {
        bail!("the delta does not rebuild the new state");
    }
    let delta = encode(&delta_upload).map_err(anyhow::Error::msg)?;
    Ok(Outcome {
        dataset,
        packages: packages.len(),
        v1_plain,
        full: full.0.len(),
        unchanged: unchanged.0.len(),
        delta_1pct: delta.0.len(),
        changed,
    })
}

impl Outcome {
    /// True when every target is met.
    pub fn meets_targets(&self) -> bool {
        self.full <= 25_000 && self.unchanged <= 200 && self.delta_1pct <= 2_000
    }
}

/// The result as Markdown.
pub fn markdown(o: &Outcome) -> String {
    let per_day_ours = 4 * o.unchanged;
    let per_day_ref = 24 * o.v1_plain;
    format!(
        "### Bytes per scan: {} ({} real Debian packages)\n\n\
         | upload | bytes | target |\n|---|---:|---|\n\
         | reference: the whole list as plain JSON, re-sent every hour by Fleet-style agents | {} | |\n\
         | full scan (compact rows, gzip) | {} | ≤ 25,000 |\n\
         | unchanged scan (digest only) | {} | ≤ 200 |\n\
         | after 1 % changed ({} packages; delta) | {} | ≤ 2,000 |\n\n\
         An unchanged host, per day: PatchCTL {} bytes (4 scans) against {} bytes for an \
         hourly full re-send: {:.0}× less.\n",
        match o.dataset {
            Dataset::Host => "a real host's package set",
            Dataset::WorstCase => "worst case, spread over the whole archive",
        },
        o.packages,
        o.v1_plain,
        o.full,
        o.unchanged,
        o.changed,
        o.delta_1pct,
        per_day_ours,
        per_day_ref,
        per_day_ref as f64 / per_day_ours.max(1) as f64
    )
}
