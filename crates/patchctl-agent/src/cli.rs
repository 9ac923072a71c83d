//! The agent's command line, parsed by hand: nine subcommands and five flags do not
//! need an argument-parser library, and without one the agent's binary, whose pages
//! are most of its idle memory, is about 0.3 MB smaller (docs/benchmarks.md,
//! ARCHITECTURE.md "Decisions").

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;

use crate::config::DEFAULT_CONFIG_PATH;

/// What `patchctl-agent` was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cmd {
    /// `run [--config FILE]`.
    Run {
        /// Configuration file.
        config: PathBuf,
    },
    /// `check-config [--config FILE]`.
    CheckConfig {
        /// Configuration file.
        config: PathBuf,
    },
    /// `doctor [--config FILE] [--output text|json]`.
    Doctor {
        /// Configuration file.
        config: PathBuf,
        /// JSON instead of text.
        json: bool,
    },
    /// `reenroll [--config FILE]`.
    Reenroll {
        /// Configuration file.
        config: PathBuf,
    },
    /// `scan [--print]`.
    Scan {
        /// Print the whole scan JSON.
        print: bool,
    },
    /// `uninstall [--purge] [--yes]`.
    Uninstall {
        /// Also remove config, state and logs.
        purge: bool,
        /// Do it.
        yes: bool,
    },
    /// `version`, `--version`, `-V`.
    Version,
    /// `self-test`.
    SelfTest,
    /// `roots`.
    Roots,
    /// `help`, `--help`, `-h`, or a subcommand's `--help`.
    Help,
}

/// The help text.
pub const USAGE: &str = "\
patchctl-agent: reports this server's packages to the PatchCTL platform and runs only
check_updates, install_updates, get_package_info and health_check.

Usage: patchctl-agent <COMMAND> [OPTIONS]

Commands:
  run [--config FILE]            run the agent: enroll on first start, then heartbeat and scan
  check-config [--config FILE]   check the configuration file (permissions and contents)
  doctor [--config FILE] [--output text|json]
                                 check everything the agent needs, in order, and say how to fix
                                 what fails; exits 1 when a check fails
  reenroll [--config FILE]       after a revocation: forget the credential and the revoked
                                 marker, so that the next start enrolls as a new host
  scan [--print]                 scan this system and show what would be sent
  uninstall [--purge] [--yes]    remove the agent the way it was installed; without --yes only
                                 print the plan (exit 2); --purge also removes config, state, logs
  self-test                      say what this binary is (JSON); exits 1 without a release root
  roots                          list the release roots built into this binary
  version                        print the version
  help                           print this help

--config defaults to /etc/patchctl/config.json.
";

/// A command line that is not one of the above.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError(pub String);

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}; see `patchctl-agent help`", self.0)
    }
}

impl std::error::Error for CliError {}

/// The flags a subcommand takes: (name, takes a value).
fn flags_of(cmd: &str) -> Option<&'static [(&'static str, bool)]> {
    Some(match cmd {
        "run" | "check-config" | "reenroll" => &[("config", true)],
        "doctor" => &[("config", true), ("output", true)],
        "scan" => &[("print", false)],
        "uninstall" => &[("purge", false), ("yes", false)],
        "version" | "self-test" | "roots" | "help" => &[],
        _ => return None,
    })
}

/// Parses the arguments after the program name.
pub fn parse<I: IntoIterator<Item = OsString>>(args: I) -> Result<Cmd, CliError> {
    let args: Vec<String> = args
        .into_iter()
        .map(|a| {
            a.into_string()
                .map_err(|a| CliError(format!("argument {a:?} is not valid UTF-8")))
        })
        .collect::<Result<_, _>>()?;
    let Some((cmd, rest)) = args.split_first() else {
        return Err(CliError("no command given".into()));
    };
    match cmd.as_str() {
        "--help" | "-h" => return Ok(Cmd::Help),
        "--version" | "-V" => return Ok(Cmd::Version),
        _ => {}
    }
    let known = flags_of(cmd).ok_or_else(|| CliError(format!("unknown command {cmd:?}")))?;
    let mut values: Vec<(&str, Option<String>)> = Vec::new();
    let mut i = 0;
    while i < rest.len() {
        let arg = &rest[i];
        if arg == "--help" || arg == "-h" {
            return Ok(Cmd::Help);
        }
        let Some(flag) = arg.strip_prefix("--") else {
            return Err(CliError(format!("unexpected argument {arg:?} for `{cmd}`")));
        };
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) => (n, Some(v.to_owned())),
            None => (flag, None),
        };
        let Some(&(name, takes_value)) = known.iter().find(|(n, _)| *n == name) else {
            return Err(CliError(format!("unknown option --{name} for `{cmd}`")));
        };
        if values.iter().any(|(n, _)| *n == name) {
            return Err(CliError(format!("--{name} given twice")));
        }
        let value = match (takes_value, inline) {
            (true, Some(v)) => Some(v),
            (true, None) => {
                i += 1;
                Some(
                    rest.get(i)
                        .cloned()
                        .ok_or_else(|| CliError(format!("--{name} needs a value")))?,
                )
            }
            (false, Some(_)) => return Err(CliError(format!("--{name} takes no value"))),
            (false, None) => None,
        };
        if value.as_deref() == Some("") {
            return Err(CliError(format!("--{name} needs a value")));
        }
        values.push((name, value));
        i += 1;
    }
    let get = |name: &str| {
        values
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
    };
    let config = || {
        get("config")
            .flatten()
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH))
    };
    let set = |name: &str| get(name).is_some();
    Ok(match cmd.as_str() {
        "run" => Cmd::Run { config: config() },
        "check-config" => Cmd::CheckConfig { config: config() },
        "reenroll" => Cmd::Reenroll { config: config() },
        "doctor" => Cmd::Doctor {
            config: config(),
            json: match get("output").flatten().as_deref() {
                None | Some("text") => false,
                Some("json") => true,
                Some(other) => {
                    return Err(CliError(format!("--output {other:?}: use text or json")));
                }
            },
        },
        "scan" => Cmd::Scan {
            print: set("print"),
        },
        "uninstall" => Cmd::Uninstall {
            purge: set("purge"),
            yes: set("yes"),
        },
        "version" => Cmd::Version,
        "self-test" => Cmd::SelfTest,
        "roots" => Cmd::Roots,
        _ => Cmd::Help,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Cmd, CliError> {
        parse(args.iter().map(OsString::from))
    }

    #[test]
    fn every_command_and_flag_parses() {
        let default = PathBuf::from(DEFAULT_CONFIG_PATH);
        assert_eq!(
            p(&["run"]),
            Ok(Cmd::Run {
                config: default.clone()
            })
        );
        assert_eq!(
            p(&["run", "--config", "/x.json"]),
            Ok(Cmd::Run {
                config: "/x.json".into()
            })
        );
        assert_eq!(
            p(&["run", "--config=/y.json"]),
            Ok(Cmd::Run {
                config: "/y.json".into()
            })
        );
        assert_eq!(
            p(&["check-config"]),
            Ok(Cmd::CheckConfig {
                config: default.clone()
            })
        );
        assert_eq!(
            p(&["doctor", "--output", "json", "--config", "/c"]),
            Ok(Cmd::Doctor {
                config: "/c".into(),
                json: true
            })
        );
        assert_eq!(
            p(&["doctor"]),
            Ok(Cmd::Doctor {
                config: default.clone(),
                json: false
            })
        );
        assert_eq!(
            p(&["reenroll", "--config", "/c"]),
            Ok(Cmd::Reenroll {
                config: "/c".into()
            })
        );
        assert_eq!(p(&["scan", "--print"]), Ok(Cmd::Scan { print: true }));
        assert_eq!(p(&["scan"]), Ok(Cmd::Scan { print: false }));
        assert_eq!(
            p(&["uninstall", "--yes", "--purge"]),
            Ok(Cmd::Uninstall {
                purge: true,
                yes: true
            })
        );
        assert_eq!(
            p(&["uninstall"]),
            Ok(Cmd::Uninstall {
                purge: false,
                yes: false
            })
        );
        for v in [&["version"][..], &["--version"], &["-V"]] {
            assert_eq!(p(v), Ok(Cmd::Version));
        }
        assert_eq!(p(&["self-test"]), Ok(Cmd::SelfTest));
        assert_eq!(p(&["roots"]), Ok(Cmd::Roots));
        for h in [&["help"][..], &["--help"], &["-h"], &["run", "--help"]] {
            assert_eq!(p(h), Ok(Cmd::Help));
        }
    }

    #[test]
    fn mistakes_are_named() {
        let e = |args: &[&str]| p(args).unwrap_err().to_string();
        assert!(e(&[]).contains("no command"));
        assert!(e(&["fly"]).contains("unknown command \"fly\""));
        assert!(e(&["run", "--confg", "/x"]).contains("unknown option --confg for `run`"));
        assert!(e(&["run", "--config"]).contains("--config needs a value"));
        assert!(e(&["run", "--config="]).contains("--config needs a value"));
        assert!(e(&["run", "/x"]).contains("unexpected argument \"/x\""));
        assert!(e(&["scan", "--print=yes"]).contains("takes no value"));
        assert!(e(&["doctor", "--output", "xml"]).contains("use text or json"));
        assert!(e(&["run", "--config", "/a", "--config", "/b"]).contains("given twice"));
        assert!(e(&["version", "--config", "/a"]).contains("unknown option"));
        assert!(e(&["fly"]).contains("patchctl-agent help"));
    }

    #[test]
    fn the_usage_names_every_command() {
        for cmd in [
            "run",
            "check-config",
            "doctor",
            "reenroll",
            "scan",
            "uninstall",
            "self-test",
            "roots",
            "version",
            "help",
        ] {
            assert!(flags_of(cmd).is_some());
            assert!(USAGE.contains(&format!("\n  {cmd}")), "{cmd}");
        }
    }
}
