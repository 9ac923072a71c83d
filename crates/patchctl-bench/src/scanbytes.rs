//! Bytes on the wire per scan, for an inventory of real Debian packages.
//!
//! The packages are the first `n` records, in name order spread evenly, of this
//! machine's apt package index (`apt-cache dumpavail`: the Debian archive's own
//! records, with their real versions and source packages). The agent's own code builds
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

fn real_packages(n: usize) -> anyhow::Result<Vec<InstalledPackage>> {
    let out = std::process::Command::new("apt-cache")
        .arg("dumpavail")
        .output()
        .context("cannot run apt-cache dumpavail")?;
    if !out.status.success() {
        bail!("apt-cache dumpavail failed");
    }
    let text = String::from_utf8_lossy(&out.stdout);
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
    if all.len() < n {
        bail!("the apt index holds {} packages, fewer than {n}", all.len());
    }
    let step = all.len() / n;
    Ok(all.into_iter().step_by(step).take(n).collect())
}

/// Measures with `n` packages.
pub fn run(n: usize) -> anyhow::Result<Outcome> {
    let packages = real_packages(n)?;
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
        packages: n,
        v1_plain,
        full: full.0.len(),
        unchanged: unchanged.0.len(),
        delta_1pct: delta.0.len(),
        changed,
    })
}

/// The result as Markdown.
pub fn markdown(o: &Outcome) -> String {
    let per_day_ours = 4 * o.unchanged;
    let per_day_ref = 24 * o.v1_plain;
    format!(
        "### Bytes per scan ({} real Debian packages)\n\n\
         | upload | bytes | target |\n|---|---:|---|\n\
         | reference: the whole list as plain JSON, re-sent every hour by Fleet-style agents | {} | |\n\
         | full scan (compact rows, gzip) | {} | ≤ 25,000 |\n\
         | unchanged scan (digest only) | {} | ≤ 200 |\n\
         | after 1 % changed ({} packages; delta) | {} | ≤ 2,000 |\n\n\
         An unchanged host, per day: PatchCTL {} bytes (4 scans) against {} bytes for an \
         hourly full re-send: {:.0}× less.\n",
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
