//! Readers of apt's output: the simulation (`Inst`/`Conf`/`Remv`/`Purg` and apt's
//! informational lines), `apt-cache policy`, and `apt-get update`'s warnings.
//! Everything here reads untrusted text and never panics (property-tested).

use patchctl_proto::command::AvailableUpdate;

/// What `apt-cache policy` says of one package.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// Installed version.
    pub installed: Option<String>,
    /// Candidate version.
    pub candidate: Option<String>,
    /// Archives (suites) the candidate comes from, e.g. `bookworm-security`.
    pub candidate_archives: Vec<String>,
}

impl Policy {
    /// True when the candidate differs from what is installed and one of its archives
    /// is a security archive.
    pub fn security_update(&self) -> bool {
        self.candidate.is_some()
            && self.candidate != self.installed
            && self
                .candidate_archives
                .iter()
                .any(|a| a.ends_with("-security"))
    }
}

/// Parses `apt-cache policy` output for one package. Never panics.
pub fn parse_policy(output: &str) -> Policy {
    let mut p = Policy::default();
    let none = |v: &str| (v != "(none)" && !v.is_empty()).then(|| v.to_owned());
    let mut in_candidate = false;
    for line in output.lines() {
        let t = line.trim();
        if let Some(v) = t.strip_prefix("Installed:") {
            p.installed = none(v.trim());
        } else if let Some(v) = t.strip_prefix("Candidate:") {
            p.candidate = none(v.trim());
        } else if line.starts_with("     ") || line.starts_with(" *** ") {
            // A version line of the version table: "     VERSION PRIO" / " *** VERSION PRIO".
            if !line.starts_with("        ") {
                let ver = t.trim_start_matches("***").split_whitespace().next();
                in_candidate = ver.is_some() && ver.map(str::to_owned) == p.candidate;
                continue;
            }
            // A source line under it: "PRIO URI ARCHIVE/COMPONENT ARCH Packages".
            if in_candidate {
                let f: Vec<&str> = t.split_whitespace().collect();
                if f.len() >= 5 && f[f.len() - 1] == "Packages" {
                    let archive = f[2].split('/').next().unwrap_or("").to_owned();
                    if !archive.is_empty() && !p.candidate_archives.contains(&archive) {
                        p.candidate_archives.push(archive);
                    }
                }
            }
        }
    }
    p
}

/// True when apt's output says another process holds the dpkg lock.
pub fn is_locked(stderr: &str) -> bool {
    stderr.contains("Could not get lock")
        || stderr.contains("Unable to acquire the dpkg frontend lock")
}

/// apt's closing count line of a plan: `N upgraded, N newly installed, [N downgraded, ]
/// [N reinstalled, ]N to remove and N not upgraded.`
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Packages the plan installs (upgraded, newly installed, downgraded, reinstalled):
    /// as many `Inst` lines must follow.
    pub installs: u64,
    /// Packages the plan removes: as many `Remv`/`Purg` lines must follow.
    pub removals: u64,
}

impl Summary {
    fn parse(line: &str) -> Option<Summary> {
        let body = line.strip_suffix(" not upgraded.")?;
        let mut s = Summary::default();
        let mut seen_remove = false;
        // "1 upgraded, 0 newly installed, 2 to remove and 3" → comma/"and" separated.
        for part in body.split(", ").flat_map(|p| p.split(" and ")) {
            if part.parse::<u64>().is_ok() {
                // The count of "N not upgraded" (its words were stripped above).
                continue;
            }
            let (n, what) = part.split_once(' ')?;
            let n: u64 = n.parse().ok()?;
            match what {
                "upgraded" | "newly installed" | "downgraded" | "reinstalled" => {
                    s.installs = s.installs.checked_add(n)?
                }
                "to remove" => {
                    s.removals = n;
                    seen_remove = true;
                }
                _ => return None,
            }
        }
        seen_remove.then_some(s)
    }
}

/// What a simulation said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Simulation {
    /// Packages upgraded or newly installed.
    pub updates: Vec<AvailableUpdate>,
    /// Packages removed (`Remv` and `Purg`).
    pub removals: Vec<String>,
    /// Lines that could not be read or are not known, with why; and, when the plan is
    /// incomplete (no count line, or fewer actions than it announced), why.
    pub skipped: Vec<String>,
    /// apt's count line, when there was one.
    pub summary: Option<Summary>,
}

impl Simulation {
    /// The simulation as a transaction for the install gate ([`super::super::refusals`]):
    /// every unread or unknown line, and a plan that does not hold as many actions as
    /// its count line announced (output cut short), is a reason to refuse.
    pub fn transaction(&self) -> super::Transaction {
        let mut changes: Vec<super::super::Change> = self
            .updates
            .iter()
            .map(|u| super::super::Change {
                name: u.name.clone(),
                from: u.current_version.clone(),
                to: Some(u.candidate_version.clone()),
            })
            .collect();
        changes.extend(self.removals.iter().map(|r| super::super::Change {
            name: r.clone(),
            from: None,
            to: None,
        }));
        let mut skipped = self.skipped.clone();
        skipped.extend(self.incomplete());
        super::Transaction { changes, skipped }
    }

    /// Why the plan is not whole: no count line, or not as many `Inst`/`Remv`/`Purg`
    /// lines as it announced. `None` when it is whole.
    pub fn incomplete(&self) -> Option<String> {
        let Some(s) = self.summary else {
            return Some(
                "apt's plan has no count line (\"N upgraded, ... not upgraded.\"); its output was cut short or is not apt's".into(),
            );
        };
        let (inst, rem) = (self.updates.len() as u64, self.removals.len() as u64);
        (inst != s.installs || rem != s.removals).then(|| {
                format!(
                    "apt announced {} installs and {} removals but its plan lists {inst} and {rem}; its output was cut short",
                    s.installs, s.removals
                )
            })
    }
}

/// True when one of apt's release strings (`Label:Version/Archive`) names a security
/// archive.
pub fn is_security_origin(origin: &str) -> bool {
    let archive = origin.rsplit('/').next().unwrap_or("");
    archive.ends_with("-security")
}

/// The informational lines apt prints around a plan (with `-q`, `LC_ALL=C`): known, so
/// that anything else is a reason to refuse an install rather than something ignored.
fn is_informational(line: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "Reading package lists",
        "Building dependency tree",
        "Reading state information",
        "Calculating upgrade",
        "The following ",
        "Suggested packages:",
        "Recommended packages:",
        "NOTE: This is only a simulation!",
        "Skipping ",
        "Selected version ",
        "Note, selecting ",
        "Need to get ",
        "After this operation",
        "Use 'apt autoremove' to remove",
        "Use 'apt-get autoremove' to remove",
    ];
    const SUFFIXES: &[&str] = &[
        " is already the newest version.",
        " set to manually installed.",
        " not fully installed or removed.",
    ];
    line.is_empty()
        || line.starts_with(' ')
        || PREFIXES.iter().any(|p| line.starts_with(p))
        || SUFFIXES.iter().any(|s| line.ends_with(s))
        // "X is already the newest version (1.2-3)."
        || (line.contains(" is already the newest version (") && line.ends_with(")."))
}

/// Parses the output of a simulation (`apt-get -s`). `Inst`, `Remv` and `Purg` lines
/// are the plan, `Conf` lines and apt's known informational lines are passed over;
/// every other line, and every malformed action line, is recorded in `skipped` (the
/// install gate refuses on it). Never panics.
pub fn parse_simulation(output: &str) -> Simulation {
    let mut sim = Simulation::default();
    let unread = |sim: &mut Simulation, why: &str, line: &str| {
        sim.skipped
            .push(format!("{why}: {}", crate::text::truncate(line, 200)))
    };
    for line in output.lines() {
        if let Some(rest) = line.strip_prefix("Inst ") {
            match parse_inst(rest) {
                Some(u) => sim.updates.push(u),
                None => unread(&mut sim, "unreadable line", line),
            }
        } else if let Some(rest) = line
            .strip_prefix("Remv ")
            .or_else(|| line.strip_prefix("Purg "))
        {
            match rest.split_whitespace().next() {
                Some(name) => sim.removals.push(name.to_owned()),
                None => unread(&mut sim, "removal line without a package", line),
            }
        } else if line.starts_with("Conf ") {
            // Configuring what an Inst line already named.
        } else if let Some(s) = Summary::parse(line) {
            if sim.summary.replace(s).is_some() {
                unread(&mut sim, "a second count line", line);
            }
        } else if !is_informational(line) {
            unread(&mut sim, "unknown line", line);
        }
    }
    sim
}

/// The problems `apt-get update` reported even when it exited 0: unreachable
/// repositories (`Err:`, `W: Failed to fetch`, `W: Some index files failed to
/// download`), unsigned or badly signed ones (`W: GPG error`, `E: The repository ...
/// is not signed`), and any other `E:` line. Empty when the refresh was clean. Each is
/// at most 300 characters; at most 10 are kept.
pub fn update_failures(stdout: &str, stderr: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in stdout.lines().chain(stderr.lines()) {
        let l = line.trim_end();
        let bad = l.starts_with("Err:")
            || l.starts_with("E: ")
            || l.starts_with("W: Failed to fetch")
            || l.starts_with("W: Some index files failed to download")
            || l.starts_with("W: GPG error")
            || l.starts_with("W: The repository")
            || (l.starts_with("W: ") && l.contains("is not signed"));
        if bad && out.len() < 10 {
            out.push(crate::text::truncate(l, 300).to_owned());
        }
    }
    out
}

/// `NAME [OLD] (NEW ORIGIN, ORIGIN [ARCH])`, the `[OLD]` part absent for new packages.
fn parse_inst(rest: &str) -> Option<AvailableUpdate> {
    let (name, rest) = rest.split_once(' ')?;
    let rest = rest.trim_start();
    let (current, rest) = match rest.strip_prefix('[') {
        Some(r) => {
            let (old, r) = r.split_once(']')?;
            (Some(old.to_owned()), r.trim_start())
        }
        None => (None, rest),
    };
    let inner = rest.strip_prefix('(')?;
    let inner = &inner[..inner.rfind(')')?];
    let (candidate, rest) = inner.split_once(' ').unwrap_or((inner, ""));
    let rest = rest.trim();
    let (origins, arch) = match rest
        .rfind(" [")
        .or_else(|| rest.starts_with('[').then_some(0))
    {
        Some(i) if rest.ends_with(']') => {
            let arch = rest[i..]
                .trim()
                .trim_start_matches('[')
                .trim_end_matches(']');
            (rest[..i].trim(), arch.to_owned())
        }
        _ => (rest, String::new()),
    };
    if name.is_empty() || candidate.is_empty() {
        return None;
    }
    let origins: Vec<String> = origins
        .split(", ")
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .map(str::to_owned)
        .collect();
    let security = origins.iter().any(|o| is_security_origin(o));
    Some(AvailableUpdate {
        name: name.to_owned(),
        arch,
        current_version: current,
        candidate_version: candidate.to_owned(),
        origins,
        security,
        advisories: Vec::new(),
    })
}
