//! `patchctl exceptions ...`, `patchctl deadlines ...` and `patchctl compliance`:
//! accepted risk, remediation deadlines and compliance, over the operator API.

use chrono::{DateTime, Duration, Utc};
use clap::{Args, Subcommand};
use http::Method;
use patchctl_proto::policy::deadlines::{
    ComplianceReport, ComplianceTally, DeadlineDays, DeadlinePolicyView, ExceptionScopeView,
    ExceptionView, NewExceptionBody, OverduePage,
};

use crate::client::{Api, Conn, enc, parse_duration};
use crate::output::{self, table};

/// `patchctl exceptions ...`.
#[derive(Subcommand)]
pub enum ExceptionsCmd {
    /// List the exceptions (newest first).
    List {
        /// Only those in force now.
        #[arg(long)]
        active: bool,
    },
    /// Show one exception.
    Show {
        /// Exception id.
        id: String,
    },
    /// Accept the risk of a vulnerability on a host, a group or every host, until it
    /// expires.
    Create {
        /// The CVE or advisory id (CVE-2024-6387, DSA-5724-1).
        vuln: String,
        /// On this host (id or name).
        #[arg(long, conflicts_with_all = ["group", "all_hosts"])]
        host: Option<String>,
        /// On the hosts of this group (id).
        #[arg(long, conflicts_with_all = ["host", "all_hosts"])]
        group: Option<String>,
        /// On every host of the organisation.
        #[arg(long)]
        all_hosts: bool,
        /// Why the risk is accepted.
        #[arg(long)]
        reason: String,
        /// Who answers for it.
        #[arg(long)]
        owner: String,
        /// How long it holds (30d, 2w, 12h; at most 365 days).
        #[arg(long, value_parser = parse_duration)]
        expires: u64,
    },
    /// Revoke an exception: its findings re-open at once.
    Revoke {
        /// Exception id.
        id: String,
    },
}

/// `patchctl deadlines ...`.
#[derive(Subcommand)]
pub enum DeadlinesCmd {
    /// Show the remediation deadlines (days per severity and for KEV).
    Show,
    /// Change some of the deadlines (the others stay).
    Set(DeadlineArgs),
}

/// The deadlines to change.
#[derive(Args)]
pub struct DeadlineArgs {
    /// Days for a critical finding.
    #[arg(long)]
    critical: Option<u32>,
    /// Days for a high finding.
    #[arg(long)]
    high: Option<u32>,
    /// Days for a medium (and unassessed) finding.
    #[arg(long)]
    medium: Option<u32>,
    /// Days for a low (and negligible) finding.
    #[arg(long)]
    low: Option<u32>,
    /// Days for a known exploited (CISA KEV) finding.
    #[arg(long)]
    kev: Option<u32>,
    /// "Due soon" this many days before the deadline.
    #[arg(long)]
    due_soon: Option<u32>,
}

/// `patchctl compliance`.
#[derive(Args)]
pub struct ComplianceArgs {
    /// Only the hosts of this group (id).
    #[arg(long)]
    group: Option<String>,
    /// List the overdue findings (most overdue first) instead of the percentages.
    #[arg(long)]
    overdue: bool,
    /// With --overdue: only these severities (comma-separated).
    #[arg(long, requires = "overdue")]
    severity: Option<String>,
    /// With --overdue: only known exploited (CISA KEV) findings.
    #[arg(long, requires = "overdue")]
    kev: bool,
    /// Compute the states at this time (RFC 3339) instead of now.
    #[arg(long)]
    at: Option<DateTime<Utc>>,
}

/// Runs an `exceptions` subcommand.
pub async fn exceptions(conn: &Conn, cmd: ExceptionsCmd) -> anyhow::Result<()> {
    let api = Api::new(conn)?;
    match cmd {
        ExceptionsCmd::List { active } => {
            let path = if active {
                "/api/v1/exceptions?active=true"
            } else {
                "/api/v1/exceptions"
            };
            let list: Vec<ExceptionView> = api.get(path).await?;
            output::emit(conn.output, &list, |l| list_table(l))?;
        }
        ExceptionsCmd::Show { id } => {
            let e: ExceptionView = api.get(&format!("/api/v1/exceptions/{}", enc(&id))).await?;
            output::emit(conn.output, &e, show_text)?;
        }
        ExceptionsCmd::Create {
            vuln,
            host,
            group,
            all_hosts,
            reason,
            owner,
            expires,
        } => {
            if host.is_none() && group.is_none() && !all_hosts {
                anyhow::bail!("say where: --host HOST, --group GROUP or --all-hosts");
            }
            let body = NewExceptionBody {
                vuln_id: vuln,
                host,
                group,
                all_hosts,
                reason,
                owner,
                expires_at: Utc::now() + Duration::seconds(i64::try_from(expires)?),
            };
            let e: ExceptionView = api
                .call(Method::POST, "/api/v1/exceptions", Some(&body))
                .await?;
            output::emit(conn.output, &e, |e| {
                format!(
                    "exception {} accepts {} on {} until {}\n",
                    e.id,
                    e.vuln_id,
                    scope_words(&e.scope),
                    e.expires_at.to_rfc3339()
                )
            })?;
        }
        ExceptionsCmd::Revoke { id } => {
            let e: ExceptionView = api
                .post(&format!("/api/v1/exceptions/{}/revoke", enc(&id)))
                .await?;
            output::emit(conn.output, &e, |e| {
                format!(
                    "exception {} revoked: {} is open again on {}\n",
                    e.id,
                    e.vuln_id,
                    scope_words(&e.scope)
                )
            })?;
        }
    }
    Ok(())
}

fn scope_words(s: &ExceptionScopeView) -> String {
    match s {
        ExceptionScopeView::Host { host_id, hostname } => match hostname {
            Some(n) => format!("host {n}"),
            None => format!("host {host_id}"),
        },
        ExceptionScopeView::Group { group_id } => format!("group {group_id}"),
        ExceptionScopeView::All => "every host".to_string(),
    }
}

fn status_word(e: &ExceptionView) -> String {
    serde_json::to_value(e.status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn list_table(list: &[ExceptionView]) -> String {
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|e| {
            vec![
                e.id.to_string(),
                e.vuln_id.clone(),
                scope_words(&e.scope),
                status_word(e),
                e.expires_at.format("%Y-%m-%d %H:%M").to_string(),
                e.owner.clone(),
            ]
        })
        .collect();
    table(
        &["ID", "VULNERABILITY", "SCOPE", "STATUS", "EXPIRES", "OWNER"],
        &rows,
    )
}

fn show_text(e: &ExceptionView) -> String {
    let mut s = format!(
        "id:         {}\nvuln:       {}\nscope:      {}\nstatus:     {}\nreason:     {}\nowner:      {}\nexpires:    {}\ncreated:    {} by {}\n",
        e.id,
        e.vuln_id,
        scope_words(&e.scope),
        status_word(e),
        e.reason,
        e.owner,
        e.expires_at.to_rfc3339(),
        e.created_at.to_rfc3339(),
        e.created_by
    );
    if let (Some(at), Some(by)) = (e.revoked_at, &e.revoked_by) {
        s.push_str(&format!("revoked:    {} by {by}\n", at.to_rfc3339()));
    }
    s
}

/// Runs a `deadlines` subcommand.
pub async fn deadlines(conn: &Conn, cmd: DeadlinesCmd) -> anyhow::Result<()> {
    let api = Api::new(conn)?;
    let mut p: DeadlinePolicyView = api.get("/api/v1/deadline-policy").await?;
    if let DeadlinesCmd::Set(a) = cmd {
        let d = &mut p.days;
        for (slot, v) in [
            (&mut d.critical_days, a.critical),
            (&mut d.high_days, a.high),
            (&mut d.medium_days, a.medium),
            (&mut d.low_days, a.low),
            (&mut d.kev_days, a.kev),
            (&mut d.due_soon_days, a.due_soon),
        ] {
            if let Some(v) = v {
                *slot = v;
            }
        }
        let days: DeadlineDays = p.days;
        p = api
            .call(Method::PUT, "/api/v1/deadline-policy", Some(&days))
            .await?;
    }
    output::emit(conn.output, &p, policy_table)?;
    Ok(())
}

fn policy_table(p: &DeadlinePolicyView) -> String {
    let d = &p.days;
    let mut s = table(
        &["SEVERITY", "DAYS"],
        &[
            vec!["critical".into(), d.critical_days.to_string()],
            vec!["high".into(), d.high_days.to_string()],
            vec!["medium (and unassessed)".into(), d.medium_days.to_string()],
            vec!["low (and negligible)".into(), d.low_days.to_string()],
            vec!["known exploited (KEV)".into(), d.kev_days.to_string()],
        ],
    );
    s.push_str(&format!(
        "due soon from {} days before the deadline; {}\n",
        d.due_soon_days,
        match (&p.updated_by, p.updated_at) {
            (Some(by), Some(at)) => format!("set by {by} at {}", at.to_rfc3339()),
            _ => "the defaults (never set)".to_string(),
        }
    ));
    s
}

/// Runs `compliance`.
pub async fn compliance(conn: &Conn, a: ComplianceArgs) -> anyhow::Result<()> {
    let api = Api::new(conn)?;
    let mut query = Vec::new();
    if let Some(g) = &a.group {
        query.push(format!("group={}", enc(g)));
    }
    if let Some(at) = a.at {
        query.push(format!("at={}", enc(&at.to_rfc3339())));
    }
    if a.overdue {
        if let Some(s) = &a.severity {
            query.push(format!("severity={}", enc(s)));
        }
        if a.kev {
            query.push("kev=true".into());
        }
        query.push("limit=1000".into());
        let path = format!("/api/v1/compliance/overdue?{}", query.join("&"));
        let pages: Vec<OverduePage> = api.get_pages(&path).await?;
        let mut all = match pages.first() {
            Some(p) => OverduePage {
                at: p.at,
                total: p.total,
                findings: Vec::new(),
            },
            None => anyhow::bail!("the platform answered no page"),
        };
        for p in pages {
            all.findings.extend(p.findings);
        }
        output::emit(conn.output, &all, overdue_table)?;
    } else {
        let sep = if query.is_empty() { "" } else { "?" };
        let r: ComplianceReport = api
            .get(&format!("/api/v1/compliance{sep}{}", query.join("&")))
            .await?;
        output::emit(conn.output, &r, report_text)?;
    }
    Ok(())
}

fn pct(p: Option<f64>) -> String {
    p.map_or("-".into(), |p| format!("{p:.1} %"))
}

fn tally_row(name: &str, t: &ComplianceTally) -> Vec<String> {
    vec![
        name.to_string(),
        format!("{}/{}", t.compliant_hosts, t.hosts),
        pct(t.host_percent),
        t.overdue.to_string(),
        t.overdue_kev.to_string(),
        t.due_soon.to_string(),
        t.excepted.to_string(),
        pct(t.finding_percent),
        t.hosts_without_data.to_string(),
    ]
}

fn report_text(r: &ComplianceReport) -> String {
    let mut rows = vec![tally_row("fleet", &r.fleet)];
    rows.extend(r.groups.iter().map(|g| tally_row(&g.name, &g.compliance)));
    let mut s = table(
        &[
            "SCOPE",
            "COMPLIANT HOSTS",
            "HOSTS %",
            "OVERDUE",
            "OVERDUE KEV",
            "DUE SOON",
            "EXCEPTED",
            "FINDINGS %",
            "NO DATA",
        ],
        &rows,
    );
    s.push_str(&format!(
        "at {}; hosts without CVE data are counted apart, never as compliant\n",
        r.at.to_rfc3339()
    ));
    s
}

fn overdue_table(p: &OverduePage) -> String {
    let rows: Vec<Vec<String>> = p
        .findings
        .iter()
        .map(|f| {
            vec![
                f.hostname.clone(),
                f.vuln_id.clone(),
                f.package.clone(),
                f.severity.clone(),
                f.kev_date_added
                    .clone()
                    .map_or("-".into(), |d| format!("KEV {d}")),
                f.due.format("%Y-%m-%d").to_string(),
                f.days_overdue.to_string(),
            ]
        })
        .collect();
    let mut s = table(
        &[
            "HOST",
            "VULNERABILITY",
            "PACKAGE",
            "SEVERITY",
            "KEV",
            "DUE",
            "DAYS OVERDUE",
        ],
        &rows,
    );
    s.push_str(&format!("{} overdue at {}\n", p.total, p.at.to_rfc3339()));
    s
}
