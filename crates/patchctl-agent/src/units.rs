//! Failed systemd units, for `health_check`: asked of systemd with one exact argument
//! vector ([`crate::exec::SYSTEMCTL_FAILED_UNITS`]) and read by [`parse_failed_units`],
//! a pure parser of what it printed (property-tested: the output is untrusted).

use std::path::Path;

use patchctl_proto::command::{HealthItem, HealthStatus};

use crate::exec::{ExecRequest, Executor, SYSTEMCTL_FAILED_UNITS};

/// What systemd said about failed units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailedUnits {
    /// systemd does not run here (`/run/systemd/system` is missing): a container, or
    /// another init.
    NoSystemd,
    /// systemd runs but could not be asked; why.
    Unreadable(String),
    /// The units in the `failed` state, sorted.
    Listed(Vec<String>),
}

impl FailedUnits {
    /// The units, `None` when systemd could not tell.
    pub fn units(&self) -> Option<Vec<String>> {
        match self {
            FailedUnits::Listed(u) => Some(u.clone()),
            _ => None,
        }
    }

    /// The `failed_units` health item.
    pub fn item(&self) -> HealthItem {
        let (status, detail) = match self {
            FailedUnits::NoSystemd => (
                HealthStatus::Unsupported,
                "systemd is not running on this system; failed units are not known".to_owned(),
            ),
            FailedUnits::Unreadable(why) => (
                HealthStatus::Warn,
                format!("systemd could not be asked for failed units: {why}"),
            ),
            FailedUnits::Listed(u) if u.is_empty() => {
                (HealthStatus::Ok, "no systemd unit has failed".to_owned())
            }
            FailedUnits::Listed(u) => (
                HealthStatus::Warn,
                format!(
                    "{} failed systemd unit{}: {}",
                    u.len(),
                    if u.len() == 1 { "" } else { "s" },
                    u.join(", ")
                ),
            ),
        };
        HealthItem {
            name: "failed_units".into(),
            status,
            detail,
        }
    }
}

/// Unit types systemd knows; a first column ending otherwise is not a unit.
const UNIT_SUFFIXES: &[&str] = &[
    ".service",
    ".socket",
    ".target",
    ".device",
    ".mount",
    ".automount",
    ".swap",
    ".path",
    ".timer",
    ".slice",
    ".scope",
];

/// Longest unit name kept (systemd's own limit is 255).
const MAX_UNIT_NAME: usize = 256;

/// Reads the output of [`SYSTEMCTL_FAILED_UNITS`] (`UNIT LOAD ACTIVE SUB DESCRIPTION`,
/// one unit a line, no legend): the units whose ACTIVE column is `failed`, sorted and
/// without duplicates. A leading status mark (`●`, `*`) is skipped; any line that is
/// not a unit row is ignored.
pub fn parse_failed_units(output: &str) -> Vec<String> {
    let mut units: Vec<String> = output
        .lines()
        .filter_map(|line| {
            let line = line.trim_start_matches(|c: char| c.is_whitespace() || c == '●' || c == '*');
            let mut cols = line.split_whitespace();
            let (unit, _load, active) = (cols.next()?, cols.next()?, cols.next()?);
            let is_unit = unit.len() <= MAX_UNIT_NAME
                && UNIT_SUFFIXES
                    .iter()
                    .any(|s| unit.len() > s.len() && unit.ends_with(s))
                && unit.chars().all(|c| c.is_ascii_graphic());
            (is_unit && active == "failed").then(|| unit.to_owned())
        })
        .collect();
    units.sort();
    units.dedup();
    units
}

/// Asks systemd for its failed units, when systemd runs on the system under `root`.
pub async fn failed_units(exec: &dyn Executor, root: &Path) -> FailedUnits {
    if !root.join("run/systemd/system").is_dir() {
        return FailedUnits::NoSystemd;
    }
    let argv: Vec<String> = SYSTEMCTL_FAILED_UNITS
        .iter()
        .map(|s| s.to_string())
        .collect();
    let req = ExecRequest::from_argv(&argv).with_timeout(std::time::Duration::from_secs(30));
    match exec.run(req).await {
        Ok(o) if o.success() && !o.truncated => FailedUnits::Listed(parse_failed_units(&o.stdout)),
        Ok(o) if o.truncated => FailedUnits::Unreadable("systemctl's output was cut short".into()),
        Ok(o) => FailedUnits::Unreadable(format!(
            "systemctl exited with {:?}: {}",
            o.code,
            crate::text::tail(o.stderr.trim(), 300)
        )),
        Err(e) => FailedUnits::Unreadable(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_systemctls_rows() {
        let out = "nginx.service   loaded failed failed A high performance web server\n\
                   ● broken.socket loaded failed failed Broken socket\n\
                   ok.service loaded active running Fine\n\
                   \n\
                   0 loaded units listed.\n\
                   nginx.service loaded failed failed again\n";
        assert_eq!(parse_failed_units(out), ["broken.socket", "nginx.service"]);
        assert!(parse_failed_units("").is_empty());
        assert!(parse_failed_units("notaunit loaded failed failed x").is_empty());
        assert!(parse_failed_units(".service loaded failed failed x").is_empty());
    }

    #[test]
    fn the_item_says_what_was_found() {
        assert_eq!(
            FailedUnits::NoSystemd.item().status,
            HealthStatus::Unsupported
        );
        assert_eq!(FailedUnits::NoSystemd.units(), None);
        let none = FailedUnits::Listed(vec![]);
        assert_eq!(none.item().status, HealthStatus::Ok);
        assert_eq!(none.units(), Some(vec![]));
        let two = FailedUnits::Listed(vec!["a.service".into(), "b.timer".into()]);
        assert_eq!(
            two.item().detail,
            "2 failed systemd units: a.service, b.timer"
        );
        assert_eq!(two.item().status, HealthStatus::Warn);
    }

    proptest! {
        /// Any output: no panic, and every unit returned is a unit name from it, sorted.
        #[test]
        fn never_panics_and_returns_only_units_from_the_input(s in "\\PC{0,400}") {
            let units = parse_failed_units(&s);
            let mut sorted = units.clone();
            sorted.sort();
            sorted.dedup();
            prop_assert_eq!(&units, &sorted);
            for u in &units {
                prop_assert!(s.contains(u.as_str()));
                prop_assert!(UNIT_SUFFIXES.iter().any(|x| u.ends_with(x)));
            }
        }

        /// Rows built from unit names and states come back exactly as the failed ones.
        #[test]
        fn finds_exactly_the_failed_rows(
            rows in proptest::collection::vec(
                ("[a-z][a-z0-9@_-]{0,20}", 0..UNIT_SUFFIXES.len(), any::<bool>(), any::<bool>(), "[ -~]{0,30}"),
                0..20,
            )
        ) {
            let mut out = String::new();
            let mut want = Vec::new();
            for (name, suffix, failed, dot, desc) in &rows {
                let unit = format!("{name}{}", UNIT_SUFFIXES[*suffix]);
                let active = if *failed { "failed" } else { "active" };
                let mark = if *dot { "● " } else { "" };
                out.push_str(&format!("{mark}{unit} loaded {active} {active} {desc}\n"));
                if *failed {
                    want.push(unit);
                }
            }
            want.sort();
            want.dedup();
            prop_assert_eq!(parse_failed_units(&out), want);
        }
    }
}
