//! `patchctl settings ...`: the organisation's settings, over the operator API (today
//! one: whether new hosts wait for an operator's approval).

use clap::{Subcommand, ValueEnum};
use http::Method;
use patchctl_proto::trust::OrgSettings;

use crate::client::{Api, Conn};
use crate::output::{self, table};

/// `patchctl settings ...`.
#[derive(Subcommand)]
pub enum SettingsCmd {
    /// Show the organisation's settings.
    Show,
    /// Change one setting.
    Set {
        /// The setting.
        #[arg(value_enum)]
        setting: Setting,
        /// on or off.
        #[arg(value_enum)]
        value: OnOff,
    },
}

/// A setting's name on the command line.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Setting {
    /// New hosts wait for `patchctl hosts approve` before they may do anything.
    RequireApproval,
}

/// A switch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OnOff {
    /// On.
    On,
    /// Off.
    Off,
}

fn on_off(b: bool) -> &'static str {
    if b { "on" } else { "off" }
}

/// Runs a `settings` subcommand.
pub async fn run(conn: &Conn, cmd: SettingsCmd) -> anyhow::Result<()> {
    let api = Api::new(conn)?;
    match cmd {
        SettingsCmd::Show => {
            let s: OrgSettings = api.get("/api/v1/settings").await?;
            output::emit(conn.output, &s, show_table)?;
        }
        SettingsCmd::Set { setting, value } => {
            // The PUT replaces every setting: change one of the current ones.
            let mut s: OrgSettings = api.get("/api/v1/settings").await?;
            match setting {
                Setting::RequireApproval => s.require_approval = value == OnOff::On,
            }
            let s: OrgSettings = api.call(Method::PUT, "/api/v1/settings", Some(&s)).await?;
            output::emit(conn.output, &s, |s| {
                if s.require_approval {
                    "require-approval is on: hosts that enroll from now on wait for an operator (`patchctl hosts pending`, `patchctl hosts approve HOST`)\n".to_owned()
                } else {
                    "require-approval is off: hosts that enroll from now on may work at once (hosts already waiting still need `patchctl hosts approve`)\n".to_owned()
                }
            })?;
        }
    }
    Ok(())
}

/// `settings show`.
fn show_table(s: &OrgSettings) -> String {
    table(
        &["SETTING", "VALUE"],
        &[vec![
            "require-approval".into(),
            on_off(s.require_approval).into(),
        ]],
    )
}
