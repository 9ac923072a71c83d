//! The host page: `GET /ui/hosts/{host}` (one host: system, metrics and their history, updates with
//! the advisories they fix, CVE findings with their evidence, packages, command
//! history) and `POST /ui/hosts/{host}/commands` (queue one of the four operations:
//! first a confirmation page, then, with `confirm=yes`, the queue through the same code
//! as `POST /api/v1/commands`).

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use chrono::Utc;
use patchctl_proto::agent::InstalledPackage;
use patchctl_proto::api::{CommandRecord, HostStatus, HostSummary, QueueCommandRequest};
use patchctl_proto::command::AvailableUpdate;
use patchctl_proto::trust::Approval;
use patchctl_storage::HostRow;
use patchctl_vuln::report::{Filter, HostFindings};
use serde::Deserialize;

use super::chart::{self, Chart};
use super::{Chrome, Page, UiError, UiSession};
use crate::AppState;
use crate::access::Need;
use crate::api::{commands, hosts as api_hosts, resolve_host};

/// Commands shown on the host page.
const COMMANDS_SHOWN: u32 = 25;

/// The host page.
#[derive(Template)]
#[template(path = "host.html")]
pub struct HostPage {
    /// The layout.
    pub chrome: Chrome,
    /// The host as the API summarises it (status, counts).
    pub summary: HostSummary,
    /// The host as stored.
    pub host: HostRow,
    /// Memory and disks in words.
    pub facts: Vec<(&'static str, String)>,
    /// The metrics history chart.
    pub chart: Chart,
    /// Available updates, annotated by the CVE engine.
    pub updates: Vec<AvailableUpdate>,
    /// When the updates were scanned, in words.
    pub updates_scanned: String,
    /// The CVE findings (vulnerable first), `None` while the engine loads.
    pub findings: Option<HostFindings>,
    /// Installed packages.
    pub packages: Vec<InstalledPackage>,
    /// The latest commands, newest first.
    pub commands: Vec<CommandRecord>,
    /// Whether the queue form is shown (role and host standing).
    pub can_queue: bool,
    /// Why it is not, when the role allows it but the host does not.
    pub queue_blocked: Option<String>,
    /// The command just queued.
    pub queued: Option<String>,
    /// Seconds between live refreshes (0: none), while a command is in flight.
    pub refresh: u32,
    /// The host's tags and groups (`None` for a revoked host).
    pub tags: Option<patchctl_proto::policy::groups::HostTags>,
    /// Whether the tags were just changed.
    pub tagged: bool,
}

/// Query of the host page.
#[derive(Debug, Default, Deserialize)]
pub struct HostQuery {
    /// The command just queued (shown as a notice).
    #[serde(default)]
    pub queued: Option<String>,
    /// Set when the tags were just changed.
    #[serde(default)]
    pub tagged: Option<String>,
}

fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

fn facts(h: &HostRow) -> Vec<(&'static str, String)> {
    let s = &h.system;
    let mut out = vec![
        ("Operating system", s.os.pretty_name.clone()),
        ("Kernel", s.kernel.clone()),
        ("Architecture", s.arch.clone()),
        ("CPU", format!("{} × {}", s.cpu_count, s.cpu_model)),
        ("Memory", bytes(s.mem_total_bytes)),
        ("Addresses", s.ips.join(", ")),
        ("Agent", h.agent_version.clone()),
        (
            "Package manager",
            h.package_manager
                .clone()
                .unwrap_or_else(|| "not reported yet".into()),
        ),
        (
            "Enrolled",
            h.enrolled_at.format("%Y-%m-%d %H:%M UTC").to_string(),
        ),
    ];
    if let Some(m) = &h.metrics {
        out.push(("CPU busy", format!("{:.1} %", m.cpu_percent)));
        out.push((
            "Load",
            format!("{:.2} {:.2} {:.2}", m.load[0], m.load[1], m.load[2]),
        ));
        out.push((
            "Memory in use",
            format!(
                "{} of {}",
                bytes(m.mem_used_bytes),
                bytes(m.mem_total_bytes)
            ),
        ));
        for d in &m.disks {
            out.push((
                "Disk",
                format!(
                    "{} ({}): {} of {}",
                    d.mount,
                    d.fs_type,
                    bytes(d.used_bytes),
                    bytes(d.total_bytes)
                ),
            ));
        }
        out.push(("Up", format!("{} h", m.uptime_secs / 3600)));
    }
    out
}

/// `GET /ui/hosts/{host}`: one host.
pub async fn show(
    State(st): State<AppState>,
    session: UiSession,
    Path(host): Path<String>,
    Query(q): Query<HostQuery>,
) -> Result<Response, UiError> {
    let org = session.principal.org_id;
    let h = resolve_host(&st, org, &host).await?;
    let now = Utc::now();
    let summary = api_hosts::summary(&st, &h, now);
    let history = st.store.metrics_history(org, h.id).await?;
    let (updates, updates_scanned) = match st.store.host_updates(org, h.id).await? {
        Some(mut u) => {
            st.vulns.annotate_updates(h.id, &mut u).await;
            let when = u
                .scanned_at
                .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
                .unwrap_or_else(|| "never".into());
            (u.updates, when)
        }
        None => (Vec::new(), "never".into()),
    };
    let findings = st.vulns.host_findings(&h, &Filter::default()).await.ok();
    let packages = st.store.host_packages(org, h.id).await?;
    let commands = st
        .store
        .list_commands(org, Some(h.id), COMMANDS_SHOWN)
        .await?;
    let in_flight = commands.iter().any(|c| {
        matches!(
            c.state,
            patchctl_proto::api::CommandState::Queued
                | patchctl_proto::api::CommandState::Delivered
        )
    });
    let tags = crate::policy::groups::host_tags(&st, org, h.id).await.ok();
    let may = session.principal.may(Need::Operate);
    let queue_blocked = if h.revoked {
        Some("this host is revoked and collects no commands".to_owned())
    } else if h.approval == Approval::Pending {
        Some("this host waits for approval and collects no commands".to_owned())
    } else {
        None
    };
    let page = HostPage {
        chrome: session.chrome("hosts"),
        facts: facts(&h),
        chart: chart::chart(&history),
        can_queue: may && queue_blocked.is_none(),
        queue_blocked: queue_blocked.filter(|_| may),
        summary,
        updates,
        updates_scanned,
        findings,
        packages,
        commands,
        queued: q.queued,
        refresh: if in_flight { 3 } else { 0 },
        tags,
        tagged: q.tagged.is_some(),
        host: h,
    };
    Ok(Page(page).into_response())
}

impl HostPage {
    /// A command's parameters as JSON text, empty when there are none.
    pub fn params_text(&self, c: &CommandRecord) -> String {
        match &c.params {
            serde_json::Value::Object(o) if o.is_empty() => String::new(),
            serde_json::Value::Null => String::new(),
            p => p.to_string(),
        }
    }

    /// The CSS class of the host's status badge.
    pub fn status_class(&self) -> &'static str {
        match self.summary.status {
            HostStatus::Online => "online",
            HostStatus::Offline => "offline",
            HostStatus::Revoked => "revoked",
            HostStatus::Pending => "pending",
        }
    }
}

/// The queue form (both steps).
#[derive(Debug, Deserialize)]
pub struct QueueForm {
    /// One of the four operations.
    #[serde(default)]
    pub kind: String,
    /// The package of `get_package_info`.
    #[serde(default)]
    pub name: String,
    /// `yes` on the confirmation step.
    #[serde(default)]
    pub confirm: String,
}

/// The confirmation page.
#[derive(Template)]
#[template(path = "confirm.html")]
pub struct ConfirmPage {
    /// The layout.
    pub chrome: Chrome,
    /// The host.
    pub host: HostRow,
    /// The operation.
    pub kind: String,
    /// The package of `get_package_info`.
    pub name: String,
    /// What will happen, in words.
    pub what: String,
}

/// The parameters of an operation queued from the dashboard, and what it does in
/// words. Installing from the dashboard installs the security updates of the last scan
/// (resolved by the platform into exact versions).
fn operation(form: &QueueForm) -> Result<(serde_json::Value, String), UiError> {
    match form.kind.as_str() {
        "health_check" => Ok((
            serde_json::json!({}),
            "run the agent's health checks (disk, package manager, repositories)".into(),
        )),
        "check_updates" => Ok((
            serde_json::json!({}),
            "refresh the package lists and report the available updates".into(),
        )),
        "install_updates" => Ok((
            serde_json::json!({"security_updates": true}),
            "install every security update of the last scan, at the exact versions it reported"
                .into(),
        )),
        "get_package_info" if !form.name.trim().is_empty() => Ok((
            serde_json::json!({"name": form.name.trim()}),
            format!("report what is known of the package {:?}", form.name.trim()),
        )),
        "get_package_info" => Err(UiError::BadRequest(
            "get_package_info needs a package name; go back and fill in the name".into(),
        )),
        other => Err(UiError::BadRequest(format!(
            "unknown operation {other:?}; choose health_check, check_updates, install_updates or get_package_info"
        ))),
    }
}

/// `POST /ui/hosts/{host}/commands`: without `confirm=yes`, the confirmation page;
/// with it, queues the command and goes back to the host page.
pub async fn queue(
    State(st): State<AppState>,
    session: UiSession,
    Path(host): Path<String>,
    Form(form): Form<QueueForm>,
) -> Result<Response, UiError> {
    let org = session.principal.org_id;
    let h = resolve_host(&st, org, &host).await?;
    let (params, what) = operation(&form)?;
    if form.confirm != "yes" {
        return Ok(Page(ConfirmPage {
            chrome: session.chrome("hosts"),
            host: h,
            kind: form.kind,
            name: form.name,
            what,
        })
        .into_response());
    }
    let (rec, details) = commands::queue(
        &st,
        org,
        QueueCommandRequest {
            host: h.id.to_string(),
            kind: form.kind.clone(),
            params,
            expires_in_secs: None,
        },
    )
    .await?;
    Ok((
        Extension(details),
        Redirect::to(&format!("/ui/hosts/{}?queued={}#commands", h.id, rec.id)),
    )
        .into_response())
}
