//! `patchctl commands ...`: the command queue, over the operator API.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Subcommand;
use http::Method;
use patchctl_proto::api::{CommandRecord, QueueCommandRequest};
use patchctl_proto::command::{RebootOutcome, ResultOutput};

use crate::client::{Api, Conn, enc};
use crate::output::{self, Format, ago, table};

/// `patchctl commands ...`.
#[derive(Subcommand)]
pub enum CommandsCmd {
    /// Queue a command for a host: check_updates, install_updates, get_package_info or
    /// health_check.
    Queue {
        /// Host id or name.
        #[arg(long)]
        host: String,
        /// Command kind.
        kind: String,
        /// Parameter `key=value` (repeatable). install_updates takes
        /// `package=NAME=VERSION` once per package, and `reboot=if_required` to reboot
        /// the host after the install when it needs one (default `never`).
        #[arg(long = "param", value_name = "KEY=VALUE")]
        params: Vec<String>,
        /// Seconds before an undelivered command expires (default one day).
        #[arg(long)]
        expires_in: Option<u64>,
        /// Wait up to this many seconds for the result and print it.
        #[arg(long, value_name = "SECS")]
        wait: Option<u64>,
    },
    /// List commands (newest first).
    List {
        /// Only this host (id or name).
        #[arg(long)]
        host: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Show one command with its result and every state change.
    Show {
        /// Command id.
        id: String,
    },
    /// Cancel a queued command.
    Cancel {
        /// Command id.
        id: String,
    },
}

/// Runs a `commands` subcommand.
pub async fn run(conn: &Conn, cmd: CommandsCmd) -> anyhow::Result<()> {
    let api = Api::new(conn)?;
    match cmd {
        CommandsCmd::Queue {
            host,
            kind,
            params,
            expires_in,
            wait,
        } => {
            let req = QueueCommandRequest {
                host,
                params: params_from_args(&kind, &params)?,
                kind,
                expires_in_secs: expires_in,
            };
            let mut rec: CommandRecord = api
                .call(Method::POST, "/api/v1/commands", Some(&req))
                .await?;
            if let Some(secs) = wait {
                let deadline = Instant::now() + Duration::from_secs(secs);
                while !rec.state.is_terminal() && Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    rec = api.get(&format!("/api/v1/commands/{}", rec.id)).await?;
                }
                if !rec.state.is_terminal() {
                    if conn.output == Format::Json {
                        output::json(&rec)?;
                    }
                    bail!(
                        "command {} is still {} after {secs} s; check later with `patchctl commands show {}`",
                        rec.id,
                        rec.state.as_str(),
                        rec.id
                    );
                }
                output::emit(conn.output, &rec, show_text)?;
            } else {
                output::emit(conn.output, &rec, |rec| {
                    format!(
                        "queued {} ({}) for host {}\n",
                        rec.id, rec.kind, rec.host_id
                    )
                })?;
            }
        }
        CommandsCmd::List { host, limit } => {
            // One page holds at most 1000; more follow X-Next-Cursor.
            let mut path = format!("/api/v1/commands?limit={}", limit.clamp(1, 1000));
            if let Some(h) = host {
                path.push_str(&format!("&host={}", enc(&h)));
            }
            let mut recs: Vec<CommandRecord> = if limit <= 1000 {
                api.get(&path).await?
            } else {
                api.get_all(&path).await?
            };
            recs.truncate(limit as usize);
            output::emit(conn.output, &recs, |r| list_table(r))?;
        }
        CommandsCmd::Show { id } => {
            let rec: CommandRecord = api.get(&format!("/api/v1/commands/{}", enc(&id))).await?;
            output::emit(conn.output, &rec, show_text)?;
        }
        CommandsCmd::Cancel { id } => {
            let rec: CommandRecord = api
                .post(&format!("/api/v1/commands/{}/cancel", enc(&id)))
                .await?;
            output::emit(conn.output, &rec, |rec| {
                format!("command {} is {}\n", rec.id, rec.state.as_str())
            })?;
        }
    }
    Ok(())
}

/// Turns `--param k=v` into the command's parameter object.
pub fn params_from_args(kind: &str, args: &[String]) -> anyhow::Result<serde_json::Value> {
    let mut obj = serde_json::Map::new();
    let mut packages = Vec::new();
    for a in args {
        let (k, v) = a
            .split_once('=')
            .with_context(|| format!("--param {a:?} must be KEY=VALUE"))?;
        if kind == "install_updates" && k == "package" {
            let (name, version) = v.split_once('=').with_context(|| {
                format!("--param {a:?}: install_updates takes package=NAME=VERSION")
            })?;
            packages.push(serde_json::json!({"name": name, "version": version}));
        } else if obj.insert(k.to_owned(), v.into()).is_some() {
            bail!("--param {k} given twice");
        }
    }
    if !packages.is_empty() {
        obj.insert("packages".into(), packages.into());
    }
    Ok(serde_json::Value::Object(obj))
}

/// `commands list`.
fn list_table(recs: &[CommandRecord]) -> String {
    let rows = recs
        .iter()
        .map(|r| {
            vec![
                r.id.to_string(),
                r.kind.clone(),
                r.state.as_str().into(),
                ago(Some(r.updated_at)),
                r.result
                    .as_ref()
                    .map(|x| x.summary.clone())
                    .unwrap_or_default(),
            ]
        })
        .collect::<Vec<_>>();
    table(&["ID", "KIND", "STATE", "UPDATED", "SUMMARY"], &rows)
}

/// `commands show` (and `queue --wait`): the command, its result's output, its events.
fn show_text(rec: &CommandRecord) -> String {
    let mut rows = vec![
        vec!["id".into(), rec.id.to_string()],
        vec!["host".into(), rec.host_id.to_string()],
        vec!["kind".into(), rec.kind.clone()],
        vec!["params".into(), rec.params.to_string()],
        vec!["state".into(), rec.state.as_str().into()],
        vec!["deliveries".into(), rec.deliveries.to_string()],
        vec!["queued".into(), rec.created_at.to_rfc3339()],
    ];
    if let Some(r) = &rec.result {
        rows.push(vec!["summary".into(), r.summary.clone()]);
    }
    let mut out = table(&["FIELD", "VALUE"], &rows);
    if let Some(output) = rec.result.as_ref().and_then(|r| r.output.as_ref()) {
        out.push('\n');
        out.push_str(&result_output_text(output));
    }
    out.push('\n');
    let rows = rec
        .events
        .iter()
        .map(|e| vec![e.at.to_rfc3339(), e.state.as_str().into(), e.detail.clone()])
        .collect::<Vec<_>>();
    out.push_str(&table(&["AT", "STATE", "DETAIL"], &rows));
    out
}

/// The structured output of a result, by kind.
fn result_output_text(output: &ResultOutput) -> String {
    match output {
        ResultOutput::Health(h) => {
            let rows = h
                .checks
                .iter()
                .map(|c| {
                    vec![
                        c.name.clone(),
                        serde_json::to_value(c.status)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_owned))
                            .unwrap_or_default(),
                        c.detail.clone(),
                    ]
                })
                .collect::<Vec<_>>();
            table(&["CHECK", "STATUS", "DETAIL"], &rows)
        }
        ResultOutput::PackageInfo(p) => {
            let rows = p
                .installed
                .iter()
                .map(|i| {
                    vec![
                        i.name.clone(),
                        i.version.clone(),
                        i.arch.clone(),
                        i.source_name.clone().unwrap_or_default(),
                        i.source_version.clone().unwrap_or_default(),
                        i.status.clone(),
                    ]
                })
                .collect::<Vec<_>>();
            table(
                &[
                    "PACKAGE",
                    "VERSION",
                    "ARCH",
                    "SOURCE",
                    "SOURCE VERSION",
                    "STATUS",
                ],
                &rows,
            )
        }
        ResultOutput::Updates(u) => {
            let rows = u
                .updates
                .iter()
                .map(|x| {
                    vec![
                        x.name.clone(),
                        x.current_version.clone().unwrap_or_else(|| "(new)".into()),
                        x.candidate_version.clone(),
                        if x.security { "yes".into() } else { "".into() },
                        x.origins.join(", "),
                    ]
                })
                .collect::<Vec<_>>();
            let mut out = table(
                &["PACKAGE", "INSTALLED", "CANDIDATE", "SECURITY", "FROM"],
                &rows,
            );
            if !u.removals.is_empty() {
                out.push_str(&format!(
                    "a full upgrade would remove: {}\n",
                    u.removals.join(", ")
                ));
            }
            out
        }
        ResultOutput::Install(i) => {
            let mut out = String::new();
            for r in &i.refused {
                out.push_str(&format!("refused: {r}\n"));
            }
            let rows = i
                .packages
                .iter()
                .map(|p| {
                    vec![
                        p.name.clone(),
                        p.target_version.clone(),
                        p.before.clone().unwrap_or_default(),
                        p.after.clone().unwrap_or_default(),
                        if p.ok {
                            "ok".into()
                        } else {
                            "not installed".into()
                        },
                    ]
                })
                .collect::<Vec<_>>();
            out.push_str(&table(
                &["PACKAGE", "APPROVED", "BEFORE", "AFTER", "RESULT"],
                &rows,
            ));
            if i.reboot_required {
                out.push_str(&format!(
                    "a reboot is required: {}\n",
                    i.reboot_reasons.join("; ")
                ));
            }
            match i.reboot {
                Some(RebootOutcome::Scheduled) => out.push_str(
                    "reboot: scheduled (the host reboots once this result is delivered)\n",
                ),
                Some(RebootOutcome::Withheld) => {
                    out.push_str("reboot: not done, the install failed\n")
                }
                _ => {}
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params() {
        assert_eq!(
            params_from_args("get_package_info", &["name=dpkg".into()]).unwrap(),
            serde_json::json!({"name": "dpkg"})
        );
        assert_eq!(
            params_from_args(
                "install_updates",
                &[
                    "package=openssl=3.0.15-1~deb12u1".into(),
                    "package=curl=7.88.1-10".into()
                ]
            )
            .unwrap(),
            serde_json::json!({"packages": [
                {"name": "openssl", "version": "3.0.15-1~deb12u1"},
                {"name": "curl", "version": "7.88.1-10"}
            ]})
        );
        assert!(params_from_args("health_check", &["novalue".into()]).is_err());
        assert!(params_from_args("x", &["a=1".into(), "a=2".into()]).is_err());
    }

    const EVIL: &str = "\u{1b}]0;owned\u{7}\u{1b}[2J\rok\u{9b}31m\u{7f}";
    const AT: &str = "2026-01-01T00:00:00Z";

    fn record(output: serde_json::Value) -> CommandRecord {
        let what = output.to_string();
        serde_json::from_value(serde_json::json!({
            "id": uuid::Uuid::nil(),
            "host_id": uuid::Uuid::nil(),
            "kind": "install_updates",
            "params": {"name": EVIL},
            "state": "failed",
            "created_at": AT, "updated_at": AT, "expires_at": AT,
            "deliveries": 1,
            "result": {
                "command_id": uuid::Uuid::nil(),
                "status": "failed",
                "summary": format!("installed\r{EVIL}\nsecond line"),
                "started_at": AT, "finished_at": AT,
                "output": output,
            },
            "events": [{"state": "failed", "at": AT, "detail": EVIL}],
        }))
        .unwrap_or_else(|e| panic!("{what}: {e}"))
    }

    #[test]
    fn show_neutralises_every_result_the_agent_sent() {
        let outputs = [
            serde_json::json!({"type": "health", "agent_version": EVIL,
                "checks": [{"name": EVIL, "status": "ok", "detail": EVIL}]}),
            serde_json::json!({"type": "package_info", "name": EVIL, "package_manager": EVIL,
                "installed": [{"name": EVIL,
                "version": EVIL, "arch": EVIL, "source_name": EVIL, "status": EVIL}]}),
            serde_json::json!({"type": "updates", "package_manager": EVIL, "refreshed": true,
                "updates": [{"name": EVIL, "arch": EVIL, "current_version": EVIL,
                    "candidate_version": EVIL, "origins": [EVIL], "security": true,
                    "advisories": []}],
                "removals": [EVIL]}),
            serde_json::json!({"type": "install", "refused": [EVIL],
                "packages": [{"name": EVIL, "target_version": EVIL, "before": EVIL,
                    "after": null, "ok": false}],
                "reboot_required": true, "output_tail": EVIL}),
        ];
        for output in outputs {
            let rec = record(output);
            for text in [show_text(&rec), list_table(std::slice::from_ref(&rec))] {
                let shown = crate::output::clean_text(&text);
                assert!(
                    !shown.chars().any(|c| c.is_control() && c != '\n'),
                    "{shown:?}"
                );
                assert!(shown.contains(r"\x1b]0;owned\x07\x1b[2J\rok\u{9b}31m\x7f"));
                assert!(shown.contains(r"installed\r\x1b]0;owned"), "{shown}");
            }
        }
    }
}
