//! `patchctl hosts ...`: the managed hosts, over the operator API, and their standing:
//! revocation, and the approval of hosts that wait for it (pending, approve, reject).

use chrono::{DateTime, Utc};
use clap::Subcommand;
use patchctl_proto::api::{HostDetail, HostPackages, HostStatus, HostSummary, HostUpdates};
use patchctl_proto::policy::reboot::RebootHost;
use patchctl_proto::release::UpdateStep;
use patchctl_proto::trust::OrgSettings;

use crate::client::{Api, Conn, enc};
use crate::output::{self, ago, ago_from, table};

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
    /// Revoke a host's agent credential: the platform refuses it for good. The host
    /// comes back only when someone runs `patchctl-agent reenroll` on it.
    Revoke {
        /// Host id or name.
        host: String,
    },
    /// List the hosts waiting for approval (`patchctl settings set require-approval on`).
    Pending,
    /// Approve a host waiting for approval: it may work from now on.
    Approve {
        /// Host id or name.
        host: String,
    },
    /// Reject a host waiting for approval: its credential is revoked.
    Reject {
        /// Host id or name.
        host: String,
    },
    /// List the hosts that need a reboot, fleet-wide, longest waiting first, with why.
    Reboots,
}

/// Runs a `hosts` subcommand.
pub async fn run(conn: &Conn, cmd: HostsCmd) -> anyhow::Result<()> {
    let api = Api::new(conn)?;
    match cmd {
        HostsCmd::List => {
            let hosts: Vec<HostSummary> = api.get_all("/api/v1/hosts?limit=1000").await?;
            output::emit(conn.output, &hosts, |h| list_table(h))?;
            if conn.output == output::Format::Table {
                for n in update_notes(&hosts) {
                    output::note(&n);
                }
                if hosts.is_empty() {
                    output::note("no hosts yet: enroll an agent with the enrollment key");
                }
                let pending = hosts
                    .iter()
                    .filter(|h| h.status == HostStatus::Pending)
                    .count();
                if pending > 0 {
                    output::note(&format!(
                        "{pending} host(s) wait for approval: `patchctl hosts pending`, then `patchctl hosts approve HOST` or `patchctl hosts reject HOST`"
                    ));
                }
            }
        }
        HostsCmd::Pending => {
            let hosts: Vec<HostSummary> = api
                .get_all("/api/v1/hosts?status=pending&limit=1000")
                .await?;
            output::emit(conn.output, &hosts, |h| pending_table(h))?;
            if conn.output == output::Format::Table && hosts.is_empty() {
                let s: OrgSettings = api.get("/api/v1/settings").await?;
                output::note(if s.require_approval {
                    "no host is waiting for approval"
                } else {
                    "no host is waiting for approval; approval of new hosts is off (`patchctl settings set require-approval on`)"
                });
            }
        }
        HostsCmd::Approve { host } => {
            let h: HostSummary = api
                .post(&format!("/api/v1/hosts/{}/approve", enc(&host)))
                .await?;
            output::emit(conn.output, &h, |h| {
                format!(
                    "host {} ({}) is approved (now {}); it starts working at its next heartbeat\n",
                    h.id,
                    h.hostname,
                    h.status.as_str()
                )
            })?;
        }
        HostsCmd::Reject { host } => {
            let h: HostSummary = api
                .post(&format!("/api/v1/hosts/{}/reject", enc(&host)))
                .await?;
            output::emit(conn.output, &h, |h| {
                format!(
                    "host {} ({}) is rejected: its credential is {}\n",
                    h.id,
                    h.hostname,
                    h.status.as_str()
                )
            })?;
        }
        HostsCmd::Show { host } => {
            let h: HostDetail = api.get(&format!("/api/v1/hosts/{}", enc(&host))).await?;
            output::emit(conn.output, &h, show_table)?;
        }
        HostsCmd::Packages { host } => {
            let p: HostPackages = api
                .get(&format!("/api/v1/hosts/{}/packages", enc(&host)))
                .await?;
            output::emit(conn.output, &p, packages_table)?;
        }
        HostsCmd::Updates { host, security } => {
            let mut u: HostUpdates = api
                .get(&format!("/api/v1/hosts/{}/updates", enc(&host)))
                .await?;
            if security {
                u.updates.retain(|x| x.security);
            }
            output::emit(conn.output, &u, |u| {
                updates_report(&host, u, security, Utc::now())
            })?;
        }
        HostsCmd::Reboots => {
            let hosts: Vec<RebootHost> = api.get_all("/api/v1/reboots?limit=1000").await?;
            output::emit(conn.output, &hosts, |h| reboots_table(h, Utc::now()))?;
            if conn.output == output::Format::Table && hosts.is_empty() {
                output::note("no host needs a reboot");
            }
        }
        HostsCmd::Revoke { host } => {
            let h: HostSummary = api
                .post(&format!("/api/v1/hosts/{}/revoke", enc(&host)))
                .await?;
            output::emit(conn.output, &h, |h| {
                format!("host {} ({}) is {}\n", h.id, h.hostname, h.status.as_str())
            })?;
        }
    }
    Ok(())
}

fn gib(b: u64) -> String {
    format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64)
}

/// `hosts list`.
fn list_table(hosts: &[HostSummary]) -> String {
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
                h.agent_version.clone(),
                update_cell(h),
                h.os.clone(),
            ]
        })
        .collect::<Vec<_>>();
    table(
        &[
            "ID",
            "HOSTNAME",
            "STATUS",
            "LAST SEEN",
            "PACKAGES",
            "UPDATES",
            "SECURITY",
            "AGENT",
            "AGENT UPDATE",
            "OS",
        ],
        &rows,
    )
}

/// The last step of a host's agent update, short: `rolled_back 1.2.0` (`-`: none).
fn update_cell(h: &HostSummary) -> String {
    h.agent_update
        .as_ref()
        .map(|u| format!("{} {}", u.step.as_str(), u.version))
        .unwrap_or_else(|| "-".into())
}

/// Under `hosts list`: why each refused or rolled back update was (kept out of the
/// table, which stays narrow).
fn update_notes(hosts: &[HostSummary]) -> Vec<String> {
    hosts
        .iter()
        .filter_map(|h| {
            let u = h.agent_update.as_ref()?;
            let what = match u.step {
                UpdateStep::Refused => "refused",
                UpdateStep::RolledBack => "rolled back",
                _ => return None,
            };
            Some(format!(
                "{}: the agent update to {} was {what}: {}",
                h.hostname,
                u.version,
                u.detail.as_deref().unwrap_or("no reason given")
            ))
        })
        .collect()
}

/// `hosts pending`.
fn pending_table(hosts: &[HostSummary]) -> String {
    let rows = hosts
        .iter()
        .map(|h| {
            vec![
                h.id.to_string(),
                h.hostname.clone(),
                h.enrolled_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                h.agent_version.clone(),
                h.os.clone(),
            ]
        })
        .collect::<Vec<_>>();
    table(&["ID", "HOSTNAME", "ENROLLED", "AGENT", "OS"], &rows)
}

/// A host's status, with what it means when it is not plain online or offline.
fn status_text(s: &HostSummary) -> String {
    match s.status {
        HostStatus::Online | HostStatus::Offline => s.status.as_str().into(),
        HostStatus::Revoked => "REVOKED: the platform refuses this host's agent credential; it comes back only when someone runs `patchctl-agent reenroll` on it and restarts the agent".into(),
        HostStatus::Pending => format!(
            "PENDING APPROVAL: the host waits for an operator (`patchctl hosts approve {}` or `patchctl hosts reject {}`)",
            s.id, s.id
        ),
    }
}

/// `hosts show`.
fn show_table(h: &HostDetail) -> String {
    let s = &h.summary;
    let mut rows = vec![
        vec!["id".into(), s.id.to_string()],
        vec!["hostname".into(), s.hostname.clone()],
        vec!["status".into(), status_text(s)],
        vec!["last seen".into(), ago(s.last_seen)],
        vec!["enrolled".into(), s.enrolled_at.to_rfc3339()],
        vec![
            "credential issued".into(),
            h.credential_issued_at
                .map(|t| t.to_rfc3339())
                .unwrap_or_else(|| "unknown".into()),
        ],
        vec!["agent".into(), s.agent_version.clone()],
        vec![
            "agent update".into(),
            s.agent_update
                .as_ref()
                .map(|u| {
                    format!(
                        "{} {} ({})",
                        u.step.as_str(),
                        u.version,
                        u.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                    )
                })
                .unwrap_or_else(|| "none reported".into()),
        ],
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
        vec![
            "vulnerability data".into(),
            s.vulnerability_data
                .clone()
                .unwrap_or_else(|| "not known yet (the platform is loading)".into()),
        ],
    ];
    if let Some(r) = &h.reboot {
        rows.push(vec![
            "reboot".into(),
            if r.required {
                format!("REQUIRED since {}: {}", ago(r.since), r.reasons.join("; "))
            } else {
                "not required".into()
            },
        ]);
        rows.push(vec![
            "booted".into(),
            r.booted_at
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                .unwrap_or_else(|| "not reported".into()),
        ]);
    }
    if let Some(d) = s.agent_update.as_ref().and_then(|u| u.detail.as_ref()) {
        rows.push(vec!["update detail".into(), d.clone()]);
    }
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
    table(&["FIELD", "VALUE"], &rows)
}

/// `hosts reboots`.
fn reboots_table(hosts: &[RebootHost], now: DateTime<Utc>) -> String {
    let rows = hosts
        .iter()
        .map(|h| {
            vec![
                h.id.to_string(),
                h.hostname.clone(),
                ago_from(now, h.reboot.since),
                h.reboot.reasons.join("; "),
                h.reboot
                    .booted_at
                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                    .unwrap_or_default(),
                ago_from(now, h.last_seen),
            ]
        })
        .collect::<Vec<_>>();
    table(
        &[
            "ID",
            "HOSTNAME",
            "WAITING SINCE",
            "WHY",
            "BOOTED",
            "LAST SEEN",
        ],
        &rows,
    )
}

/// `hosts packages`.
fn packages_table(p: &HostPackages) -> String {
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
    table(
        &["NAME", "VERSION", "ARCH", "SOURCE", "SOURCE VERSION"],
        &rows,
    )
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
        out.push_str(&table(
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

    /// What an agent under an attacker's control could report: every kind of terminal
    /// control in the strings the host views print.
    const EVIL: &str = "\u{1b}]0;owned\u{7}\u{1b}[2J\rok\u{9b}31m\u{7f}";

    fn evil_detail() -> HostDetail {
        serde_json::from_value(serde_json::json!({
            "id": uuid::Uuid::nil(),
            "hostname": format!("web-1{EVIL}"),
            "os": format!("Debian{EVIL}"),
            "status": "online",
            "last_seen": null,
            "agent_version": format!("0.1{EVIL}"),
            "packages": 1,
            "enrolled_at": t(0),
            "agent_update": {"step": "rolled_back", "version": format!("1.2{EVIL}"),
                             "detail": format!("crashed{EVIL}\nfake row"), "at": t(0)},
            "system": {
                "hostname": EVIL, "ips": [EVIL], "kernel": EVIL, "arch": EVIL,
                "cpu_model": EVIL, "cpu_count": 2, "mem_total_bytes": 0, "disks": [],
                "os": {"id": EVIL, "id_like": [], "version_id": EVIL,
                       "version_codename": EVIL, "pretty_name": EVIL},
            },
            "metrics": {
                "cpu_percent": 1.0, "load": [0.0, 0.0, 0.0], "mem_used_bytes": 0,
                "mem_total_bytes": 0, "swap_used_bytes": 0, "swap_total_bytes": 0,
                "uptime_secs": 0,
                "disks": [{"mount": EVIL, "fs_type": EVIL, "used_bytes": 0, "total_bytes": 0}],
            },
            "metrics_at": null,
            "inventory_scanned_at": null,
            "package_manager": EVIL,
            "reboot": {"required": true, "reasons": [format!("/run/reboot-required{EVIL}\nfake")],
                       "since": t(0), "booted_at": t(0)},
        }))
        .unwrap()
    }

    /// Text as `emit` prints it holds no control character but the line ends.
    fn assert_inert(text: &str) {
        let shown = crate::output::clean_text(text);
        assert_eq!(shown, text, "the table itself must already be clean");
        assert!(
            !shown.chars().any(|c| c.is_control() && c != '\n'),
            "{shown:?}"
        );
        assert!(shown.contains(r"\x1b]0;owned\x07"), "{shown}");
        assert!(shown.contains(r"\u{9b}31m"), "{shown}");
    }

    #[test]
    fn update_state_is_a_short_cell_and_a_note_for_failures() {
        let mut h = evil_detail().summary;
        h.agent_update = None;
        assert_eq!(update_cell(&h), "-");
        assert!(update_notes(std::slice::from_ref(&h)).is_empty());
        h.agent_update = Some(patchctl_proto::release::HostUpdateState {
            step: UpdateStep::Confirmed,
            version: "1.2.0".into(),
            detail: None,
            at: t(0),
        });
        assert_eq!(update_cell(&h), "confirmed 1.2.0");
        assert!(update_notes(std::slice::from_ref(&h)).is_empty());
        h.agent_update = Some(patchctl_proto::release::HostUpdateState {
            step: UpdateStep::Refused,
            version: "1.3.0".into(),
            detail: Some("the manifest expired".into()),
            at: t(0),
        });
        assert_eq!(update_cell(&h), "refused 1.3.0");
        let notes = update_notes(std::slice::from_ref(&h));
        assert!(
            notes[0].ends_with("the agent update to 1.3.0 was refused: the manifest expired"),
            "{notes:?}"
        );
    }

    #[test]
    fn host_views_neutralise_what_the_agent_reported() {
        let h = evil_detail();
        let list = list_table(std::slice::from_ref(&h.summary));
        assert_inert(&list);
        assert_eq!(list.lines().count(), 2, "{list}");
        let show = show_table(&h);
        assert_inert(&show);
        assert!(show.contains(r"crashed\x1b]0;owned"), "{show}");
        assert!(show.contains("REQUIRED since"), "{show}");
        let reboots = reboots_table(
            &[RebootHost {
                id: h.summary.id,
                hostname: h.summary.hostname.clone(),
                os: h.summary.os.clone(),
                last_seen: None,
                reboot: h.reboot.clone().unwrap(),
            }],
            t(60),
        );
        assert_inert(&reboots);
        assert_eq!(reboots.lines().count(), 2, "{reboots}");
        let notes = update_notes(std::slice::from_ref(&h.summary));
        assert_eq!(notes.len(), 1);
        assert!(notes[0].contains("was rolled back: crashed"), "{notes:?}");
        assert!(show.contains(r"web-1\x1b]0;owned\x07\x1b[2J\rok\u{9b}31m\x7f"));
        let packages: HostPackages = serde_json::from_value(serde_json::json!({
            "host_id": uuid::Uuid::nil(),
            "scanned_at": null,
            "packages": [{"name": format!("bash{EVIL}\nfake 1.0"), "version": EVIL,
                          "arch": EVIL, "source_name": EVIL, "status": EVIL}],
        }))
        .unwrap();
        let packages = packages_table(&packages);
        assert_inert(&packages);
        assert_eq!(packages.lines().count(), 2, "{packages}");
        let mut u = updates();
        u.updates[0].name = EVIL.into();
        u.updates[1].advisories[0].severity = Some(EVIL.into());
        u.error = Some(EVIL.into());
        u.removals = vec![EVIL.into()];
        assert_inert(&crate::output::clean_text(&updates_report(
            EVIL,
            &u,
            false,
            t(0),
        )));
    }
}
