//! The operator commands: `hosts ...` and `commands ...`, over the operator API.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use clap::Subcommand;
use http::Method;
use patchctl_net::HttpsClient;
use patchctl_proto::api::{
    CommandRecord, HostDetail, HostPackages, HostSummary, HostUpdates, QueueCommandRequest,
};
use patchctl_proto::command::ResultOutput;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Conn, Output, table};

/// `patchctl hosts ...`.
#[derive(Subcommand)]
pub enum HostsCmd {
    /// List hosts with their status.
    List,
    /// Show one host (id or host name).
    Show {
        /// Host id or name.
        host: String,
    },
    /// List a host's installed packages.
    Packages {
        /// Host id or name.
        host: String,
    },
    /// List the updates available to a host, as its last package scan reported them.
    Updates {
        /// Host id or name.
        host: String,
        /// Only security updates.
        #[arg(long)]
        security: bool,
    },
    /// Revoke a host's agent credential.
    Revoke {
        /// Host id or name.
        host: String,
    },
}

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
        /// `package=NAME=VERSION` once per package.
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

pub(crate) struct Api {
    client: HttpsClient,
    token: String,
}

impl Api {
    pub(crate) fn new(conn: &Conn) -> anyhow::Result<Api> {
        let server = conn
            .server
            .as_deref()
            .context("no platform given: pass --server https://HOST:PORT or set PATCHCTL_SERVER")?;
        let token = conn
            .token
            .clone()
            .context("no API token given: pass --token or set PATCHCTL_TOKEN")?;
        let tls = patchctl_net::client_config(conn.ca_file.as_deref())?;
        Ok(Api {
            client: HttpsClient::new(server, tls)?,
            token,
        })
    }

    async fn call<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&Req>,
    ) -> anyhow::Result<Resp> {
        Ok(self
            .client
            .json(method, path, Some(&self.token), body)
            .await?)
    }

    pub(crate) async fn get<Resp: DeserializeOwned>(&self, path: &str) -> anyhow::Result<Resp> {
        self.call::<(), Resp>(Method::GET, path, None).await
    }
}

pub(crate) fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub(crate) fn print_json<T: Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

pub(crate) fn ago(t: Option<DateTime<Utc>>) -> String {
    ago_from(Utc::now(), t)
}

/// How long before `now` `t` was.
fn ago_from(now: DateTime<Utc>, t: Option<DateTime<Utc>>) -> String {
    match t {
        None => "never".into(),
        Some(t) => {
            let s = (now - t).num_seconds().max(0);
            match s {
                0..60 => format!("{s}s ago"),
                60..3600 => format!("{}m ago", s / 60),
                3600..86400 => format!("{}h ago", s / 3600),
                _ => format!("{}d ago", s / 86400),
            }
        }
    }
}

fn gib(b: u64) -> String {
    format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64)
}

/// Runs a `hosts` subcommand.
pub async fn hosts(conn: &Conn, cmd: HostsCmd) -> anyhow::Result<()> {
    let api = Api::new(conn)?;
    match cmd {
        HostsCmd::List => {
            let hosts: Vec<HostSummary> = api.get("/api/v1/hosts").await?;
            if conn.output == Output::Json {
                return print_json(&hosts);
            }
            let rows = hosts
                .iter()
                .map(|h| {
                    vec![
                        h.id.to_string(),
                        h.hostname.clone(),
                        h.status.as_str().into(),
                        ago(h.last_seen),
                        h.packages.to_string(),
                        h.updates.to_string(),
                        h.security_updates.to_string(),
                        h.os.clone(),
                    ]
                })
                .collect::<Vec<_>>();
            print!(
                "{}",
                table::render(
                    &[
                        "ID",
                        "HOSTNAME",
                        "STATUS",
                        "LAST SEEN",
                        "PACKAGES",
                        "UPDATES",
                        "SECURITY",
                        "OS"
                    ],
                    &rows
                )
            );
            if hosts.is_empty() {
                eprintln!("no hosts yet: enroll an agent with the enrollment key");
            }
        }
        HostsCmd::Show { host } => {
            let h: HostDetail = api.get(&format!("/api/v1/hosts/{}", enc(&host))).await?;
            if conn.output == Output::Json {
                return print_json(&h);
            }
            let s = &h.summary;
            let mut rows = vec![
                vec!["id".into(), s.id.to_string()],
                vec!["hostname".into(), s.hostname.clone()],
                vec!["status".into(), s.status.as_str().into()],
                vec!["last seen".into(), ago(s.last_seen)],
                vec!["enrolled".into(), s.enrolled_at.to_rfc3339()],
                vec!["agent".into(), s.agent_version.clone()],
                vec!["os".into(), h.system.os.pretty_name.clone()],
                vec!["kernel".into(), h.system.kernel.clone()],
                vec!["arch".into(), h.system.arch.clone()],
                vec![
                    "cpu".into(),
                    format!("{} x {}", h.system.cpu_count, h.system.cpu_model),
                ],
                vec!["ips".into(), h.system.ips.join(", ")],
                vec![
                    "packages".into(),
                    format!(
                        "{} ({}, scanned {})",
                        s.packages,
                        h.package_manager.as_deref().unwrap_or("none"),
                        ago(h.inventory_scanned_at)
                    ),
                ],
                vec![
                    "updates".into(),
                    format!("{} ({} security)", s.updates, s.security_updates),
                ],
            ];
            if let Some(m) = &h.metrics {
                rows.push(vec!["cpu use".into(), format!("{:.1} %", m.cpu_percent)]);
                rows.push(vec![
                    "load".into(),
                    format!("{:.2} {:.2} {:.2}", m.load[0], m.load[1], m.load[2]),
                ]);
                rows.push(vec![
                    "memory".into(),
                    format!("{} of {}", gib(m.mem_used_bytes), gib(m.mem_total_bytes)),
                ]);
                for d in &m.disks {
                    rows.push(vec![
                        format!("disk {}", d.mount),
                        format!("{} of {}", gib(d.used_bytes), gib(d.total_bytes)),
                    ]);
                }
                rows.push(vec!["uptime".into(), format!("{} h", m.uptime_secs / 3600)]);
            }
            print!("{}", table::render(&["FIELD", "VALUE"], &rows));
        }
        HostsCmd::Packages { host } => {
            let p: HostPackages = api
                .get(&format!("/api/v1/hosts/{}/packages", enc(&host)))
                .await?;
            if conn.output == Output::Json {
                return print_json(&p);
            }
            let rows = p
                .packages
                .iter()
                .map(|p| {
                    vec![
                        p.name.clone(),
                        p.version.clone(),
                        p.arch.clone(),
                        p.source_name.clone().unwrap_or_default(),
                        p.source_version.clone().unwrap_or_default(),
                    ]
                })
                .collect::<Vec<_>>();
            print!(
                "{}",
                table::render(
                    &["NAME", "VERSION", "ARCH", "SOURCE", "SOURCE VERSION"],
                    &rows
                )
            );
        }
        HostsCmd::Updates { host, security } => {
            let mut u: HostUpdates = api
                .get(&format!("/api/v1/hosts/{}/updates", enc(&host)))
                .await?;
            if security {
                u.updates.retain(|x| x.security);
            }
            if conn.output == Output::Json {
                return print_json(&u);
            }
            print!("{}", updates_report(&host, &u, security, Utc::now()));
        }
        HostsCmd::Revoke { host } => {
            let h: HostSummary = api
                .call::<(), _>(
                    Method::POST,
                    &format!("/api/v1/hosts/{}/revoke", enc(&host)),
                    None,
                )
                .await?;
            if conn.output == Output::Json {
                return print_json(&h);
            }
            println!("host {} ({}) is {}", h.id, h.hostname, h.status.as_str());
        }
    }
    Ok(())
}

/// `hosts updates` as a person reads it: when the host scanned and whether the
/// repository metadata was fresh, then the updates (only the security ones when
/// `security_only`, which the caller has already filtered).
fn updates_report(host: &str, u: &HostUpdates, security_only: bool, now: DateTime<Utc>) -> String {
    let Some(scanned_at) = u.scanned_at else {
        return format!(
            "host {host} has not reported available updates yet: its agent lists them with each package scan (agents that only upload inventories, or that found no package manager, never do)\n"
        );
    };
    let mut out = format!(
        "scanned {} ({}); {}; {} updates, {} security\n",
        ago_from(now, Some(scanned_at)),
        scanned_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        if u.refreshed {
            "repository metadata refreshed first"
        } else {
            "repository metadata NOT refreshed (the list may be stale)"
        },
        u.update_count,
        u.security_update_count,
    );
    if let Some(e) = &u.error {
        out.push_str(&format!("listing the updates failed: {e}\n"));
    }
    if u.updates.is_empty() {
        out.push_str(if security_only {
            "no security updates available\n"
        } else {
            "no updates available\n"
        });
    } else {
        let rows = u
            .updates
            .iter()
            .map(|x| {
                vec![
                    x.name.clone(),
                    x.arch.clone(),
                    x.current_version.clone().unwrap_or_else(|| "(new)".into()),
                    x.candidate_version.clone(),
                    if x.security { "yes".into() } else { "".into() },
                    x.origins.join(", "),
                    x.advisories
                        .iter()
                        .map(|a| match &a.severity {
                            Some(sev) => format!("{} ({sev})", a.id),
                            None => a.id.clone(),
                        })
                        .collect::<Vec<_>>()
                        .join(", "),
                ]
            })
            .collect::<Vec<_>>();
        out.push_str(&table::render(
            &[
                "NAME",
                "ARCH",
                "INSTALLED",
                "CANDIDATE",
                "SECURITY",
                "ORIGIN",
                "ADVISORIES",
            ],
            &rows,
        ));
    }
    if !u.removals.is_empty() {
        out.push_str(&format!(
            "a full upgrade would remove: {}\n",
            u.removals.join(", ")
        ));
    }
    out
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

fn print_command(rec: &CommandRecord) {
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
    print!("{}", table::render(&["FIELD", "VALUE"], &rows));
    if let Some(r) = &rec.result {
        match &r.output {
            Some(ResultOutput::Health(h)) => {
                println!();
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
                print!("{}", table::render(&["CHECK", "STATUS", "DETAIL"], &rows));
            }
            Some(ResultOutput::PackageInfo(p)) => {
                println!();
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
                print!(
                    "{}",
                    table::render(
                        &[
                            "PACKAGE",
                            "VERSION",
                            "ARCH",
                            "SOURCE",
                            "SOURCE VERSION",
                            "STATUS"
                        ],
                        &rows
                    )
                );
            }
            Some(ResultOutput::Updates(u)) => {
                println!();
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
                print!(
                    "{}",
                    table::render(
                        &["PACKAGE", "INSTALLED", "CANDIDATE", "SECURITY", "FROM"],
                        &rows
                    )
                );
                if !u.removals.is_empty() {
                    println!("a full upgrade would remove: {}", u.removals.join(", "));
                }
            }
            Some(ResultOutput::Install(i)) => {
                println!();
                for r in &i.refused {
                    println!("refused: {r}");
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
                print!(
                    "{}",
                    table::render(&["PACKAGE", "APPROVED", "BEFORE", "AFTER", "RESULT"], &rows)
                );
                if i.reboot_required {
                    println!("a reboot is required");
                }
            }
            None => {}
        }
    }
    println!();
    let rows = rec
        .events
        .iter()
        .map(|e| vec![e.at.to_rfc3339(), e.state.as_str().into(), e.detail.clone()])
        .collect::<Vec<_>>();
    print!("{}", table::render(&["AT", "STATE", "DETAIL"], &rows));
}

/// Runs a `commands` subcommand.
pub async fn commands(conn: &Conn, cmd: CommandsCmd) -> anyhow::Result<()> {
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
                    if conn.output == Output::Json {
                        print_json(&rec)?;
                    }
                    bail!(
                        "command {} is still {} after {secs} s; check later with `patchctl commands show {}`",
                        rec.id,
                        rec.state.as_str(),
                        rec.id
                    );
                }
            }
            if conn.output == Output::Json {
                return print_json(&rec);
            }
            if wait.is_some() {
                print_command(&rec);
            } else {
                println!("queued {} ({}) for host {}", rec.id, rec.kind, rec.host_id);
            }
        }
        CommandsCmd::List { host, limit } => {
            let mut path = format!("/api/v1/commands?limit={limit}");
            if let Some(h) = host {
                path.push_str(&format!("&host={}", enc(&h)));
            }
            let recs: Vec<CommandRecord> = api.get(&path).await?;
            if conn.output == Output::Json {
                return print_json(&recs);
            }
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
            print!(
                "{}",
                table::render(&["ID", "KIND", "STATE", "UPDATED", "SUMMARY"], &rows)
            );
        }
        CommandsCmd::Show { id } => {
            let rec: CommandRecord = api.get(&format!("/api/v1/commands/{}", enc(&id))).await?;
            if conn.output == Output::Json {
                return print_json(&rec);
            }
            print_command(&rec);
        }
        CommandsCmd::Cancel { id } => {
            let rec: CommandRecord = api
                .call::<(), _>(
                    Method::POST,
                    &format!("/api/v1/commands/{}/cancel", enc(&id)),
                    None,
                )
                .await?;
            if conn.output == Output::Json {
                return print_json(&rec);
            }
            println!("command {} is {}", rec.id, rec.state.as_str());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use patchctl_proto::command::{Advisory, AvailableUpdate};

    fn updates() -> HostUpdates {
        let update = |name: &str, security: bool| AvailableUpdate {
            name: name.into(),
            arch: "amd64".into(),
            current_version: Some("1.0-1".into()),
            candidate_version: "1.0-2".into(),
            origins: vec![if security {
                "Debian-Security:12/stable-security".into()
            } else {
                "Debian:12.8/stable".into()
            }],
            security,
            advisories: if security {
                vec![
                    Advisory {
                        id: "DSA-5800-1".into(),
                        kind: Some("security".into()),
                        severity: Some("important".into()),
                    },
                    Advisory {
                        id: "DSA-5801-1".into(),
                        kind: None,
                        severity: None,
                    },
                ]
            } else {
                vec![]
            },
        };
        HostUpdates {
            host_id: uuid::Uuid::nil(),
            scanned_at: Some(t(0)),
            refreshed: true,
            error: None,
            updates: vec![update("curl", false), update("openssl", true)],
            removals: vec![],
            update_count: 2,
            security_update_count: 1,
        }
    }

    fn t(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_767_225_600 + secs, 0).unwrap()
    }

    #[test]
    fn updates_report_has_a_header_and_a_table() {
        let got = updates_report("web-1", &updates(), false, t(300));
        assert_eq!(
            got,
            "scanned 5m ago (2026-01-01T00:00:00Z); repository metadata refreshed first; 2 updates, 1 security
NAME     ARCH   INSTALLED  CANDIDATE  SECURITY  ORIGIN                              ADVISORIES
curl     amd64  1.0-1      1.0-2                Debian:12.8/stable
openssl  amd64  1.0-1      1.0-2      yes       Debian-Security:12/stable-security  DSA-5800-1 (important), DSA-5801-1
"
        );
    }

    #[test]
    fn updates_report_says_what_is_missing() {
        let never = HostUpdates {
            scanned_at: None,
            refreshed: false,
            updates: vec![],
            update_count: 0,
            security_update_count: 0,
            ..updates()
        };
        let got = updates_report("web-1", &never, false, t(0));
        assert!(
            got.starts_with("host web-1 has not reported available updates yet"),
            "{got}"
        );

        let mut u = updates();
        u.refreshed = false;
        u.error = Some("apt-get update failed".into());
        u.removals = vec!["old-dkms".into()];
        u.updates.clear();
        let got = updates_report("web-1", &u, true, t(7200));
        assert_eq!(
            got,
            "scanned 2h ago (2026-01-01T00:00:00Z); repository metadata NOT refreshed (the list may be stale); 2 updates, 1 security
listing the updates failed: apt-get update failed
no security updates available
a full upgrade would remove: old-dkms
"
        );
    }

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
}
