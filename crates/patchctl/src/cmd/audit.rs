//! `patchctl audit ...`: the audit trail of operators, over the operator API (needs a
//! role that may read it: owner, admin or auditor). `list` shows the newest entries
//! first, filtered on the platform, one page or (`--all`) every page by following
//! `X-Next-Cursor`; `show` one entry with its structured details.

use chrono::{DateTime, SecondsFormat, Utc};
use clap::{Args, Subcommand};
use patchctl_proto::audit::{AuditOutcome, AuditRecord};

use crate::client::parse_duration;
use crate::client::{Api, Conn, enc};
use crate::output::{self, Format, table};

/// Entries asked for per page with `--all` when `--limit` is not given.
const ALL_PAGE: u32 = 1000;

/// `patchctl audit ...`.
#[derive(Subcommand)]
pub enum AuditCmd {
    /// List audit entries, newest first: time, actor, peer address, action, target and
    /// outcome (with the HTTP status).
    List(ListArgs),
    /// Show one entry with everything recorded about it.
    Show {
        /// The entry's sequence number (the SEQ column of `audit list`).
        seq: i64,
        /// Print the entry as JSON (same as --output json).
        #[arg(long)]
        json: bool,
    },
}

/// The filters and paging of `audit list`.
#[derive(Args)]
pub struct ListArgs {
    /// Only entries whose actor's name or id contains this: a user name, a token name,
    /// a token's or session's id.
    #[arg(long)]
    actor: Option<String>,
    /// Only entries whose action starts with this, such as `host.` or `command.queue`.
    #[arg(long, value_name = "PREFIX")]
    action: Option<String>,
    /// Only entries with this outcome: ok, refused (401, 403, 429), rejected (another
    /// 4xx) or failed (5xx).
    #[arg(long, value_parser = parse_outcome)]
    outcome: Option<AuditOutcome>,
    /// Only entries at or after this time: RFC 3339 (2026-01-31T12:00:00Z) or a
    /// duration ago (90m, 12h, 7d).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    since: Option<DateTime<Utc>>,
    /// Only entries before this time: RFC 3339 or a duration ago.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    until: Option<DateTime<Utc>>,
    /// At most this many entries (1 to 1000; default 100); with --all, the page size.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    limit: Option<u32>,
    /// Every matching entry: follow the pages to the end.
    #[arg(long)]
    all: bool,
    /// Print the entries as a JSON array (same as --output json).
    #[arg(long)]
    json: bool,
}

fn parse_outcome(s: &str) -> Result<AuditOutcome, String> {
    s.parse()
        .map_err(|e: patchctl_proto::audit::UnknownOutcome| e.to_string())
}

/// RFC 3339, or a duration before now (`12h`, `7d`).
fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    parse_time_at(s, Utc::now())
}

fn parse_time_at(s: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s.trim()) {
        return Ok(t.with_timezone(&Utc));
    }
    let secs = parse_duration(s).map_err(|_| {
        format!(
            "{s:?} is not a time; give RFC 3339 (2026-01-31T12:00:00Z) or a duration ago such as 90m, 12h or 7d"
        )
    })?;
    i64::try_from(secs)
        .ok()
        .and_then(chrono::Duration::try_seconds)
        .and_then(|d| now.checked_sub_signed(d))
        .ok_or_else(|| format!("{s:?} reaches back too far"))
}

/// The query of `GET /api/v1/audit` for these filters (without the cursor).
fn query(a: &ListArgs, limit: u32) -> String {
    let mut q = vec![format!("limit={limit}")];
    let mut put = |k: &str, v: &str| q.push(format!("{k}={}", enc(v)));
    if let Some(x) = &a.actor {
        put("actor", x);
    }
    if let Some(x) = &a.action {
        put("action", x);
    }
    if let Some(x) = a.outcome {
        put("outcome", x.as_str());
    }
    let time = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Millis, true);
    if let Some(t) = a.since {
        put("since", &time(t));
    }
    if let Some(t) = a.until {
        put("until", &time(t));
    }
    format!("/api/v1/audit?{}", q.join("&"))
}

/// Runs an `audit` subcommand.
pub async fn run(conn: &Conn, cmd: AuditCmd) -> anyhow::Result<()> {
    let api = Api::new(conn)?;
    match cmd {
        AuditCmd::List(args) => {
            let format = if args.json { Format::Json } else { conn.output };
            let limit = args.limit.unwrap_or(if args.all { ALL_PAGE } else { 100 });
            let base = query(&args, limit);
            let mut entries: Vec<AuditRecord> = Vec::new();
            let mut path = base.clone();
            let more = loop {
                let (page, next): (Vec<AuditRecord>, Option<String>) = api.get_page(&path).await?;
                entries.extend(page);
                match next {
                    Some(cursor) if args.all => path = format!("{base}&cursor={}", enc(&cursor)),
                    next => break next.is_some(),
                }
            };
            output::emit(format, &entries, |e| list_table(e))?;
            if format == Format::Table {
                if entries.is_empty() {
                    output::note("no audit entries match");
                } else if more {
                    output::note(&format!(
                        "the newest {} entries are shown; pass --all for every one, or narrow with --since, --until, --actor, --action or --outcome",
                        entries.len()
                    ));
                }
            }
        }
        AuditCmd::Show { seq, json } => {
            let format = if json { Format::Json } else { conn.output };
            let e: AuditRecord = api.get(&format!("/api/v1/audit/{seq}")).await?;
            output::emit(format, &e, show_text)?;
        }
    }
    Ok(())
}

/// `{"host": "web-1", "id": "x"}` as `host=web-1 id=x`; `-` for nothing.
fn target_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Object(o) if !o.is_empty() => o
            .iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => format!("{k}={s}"),
                v => format!("{k}={v}"),
            })
            .collect::<Vec<_>>()
            .join(" "),
        serde_json::Value::Object(_) | serde_json::Value::Null => "-".into(),
        v => v.to_string(),
    }
}

/// `ok 201`, `refused 403 forbidden`.
fn outcome_text(e: &AuditRecord) -> String {
    match &e.error_code {
        Some(code) => format!("{} {} {code}", e.outcome, e.status),
        None => format!("{} {}", e.outcome, e.status),
    }
}

fn time_text(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// `audit list`.
fn list_table(entries: &[AuditRecord]) -> String {
    let rows = entries
        .iter()
        .map(|e| {
            vec![
                e.seq.to_string(),
                time_text(e.at),
                e.actor.name.clone(),
                e.peer.clone().unwrap_or_else(|| "-".into()),
                e.action.clone(),
                target_text(&e.target),
                outcome_text(e),
            ]
        })
        .collect::<Vec<_>>();
    table(
        &[
            "SEQ",
            "TIME (UTC)",
            "ACTOR",
            "PEER",
            "ACTION",
            "TARGET",
            "OUTCOME",
        ],
        &rows,
    )
}

/// `audit show`.
fn show_text(e: &AuditRecord) -> String {
    let details = serde_json::to_string_pretty(&e.details).unwrap_or_default();
    let mut actor = format!("{} ({}", e.actor.name, e.actor.kind);
    if let Some(id) = &e.actor.id {
        actor.push_str(&format!(" {id}"));
    }
    if let Some(u) = e.actor.user_id {
        actor.push_str(&format!(", user id {u}"));
    }
    actor.push(')');
    format!(
        "entry    {}\ntime     {}\nactor    {actor}\npeer     {}\nrequest  {} {}\naction   {}\ntarget   {}\noutcome  {}\norg      {}\ndetails  {}\n",
        e.seq,
        e.at.to_rfc3339_opts(SecondsFormat::Millis, true),
        e.peer.as_deref().unwrap_or("-"),
        e.method,
        e.route,
        e.action,
        target_text(&e.target),
        outcome_text(e),
        e.org_id
            .map(|o| o.to_string())
            .unwrap_or_else(|| "none (the credential named no organisation)".into()),
        details.replace('\n', "\n         "),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use patchctl_proto::audit::AuditActorRecord;
    use serde_json::json;

    fn entry(seq: i64, status: u16, code: Option<&str>) -> AuditRecord {
        AuditRecord {
            seq,
            org_id: None,
            at: DateTime::from_timestamp(1_767_225_600, 0).unwrap(),
            actor: AuditActorRecord {
                kind: "token".into(),
                id: Some("t1".into()),
                name: "user alice (token ci)".into(),
                user_id: None,
            },
            peer: Some("127.0.0.1:40000".into()),
            method: "POST".into(),
            route: "/api/v1/hosts/{host}/revoke".into(),
            action: "host.revoke".into(),
            target: json!({"host": "web-1\u{1b}[2J"}),
            details: json!({"host_id": "x", "hostname": "web-1"}),
            status,
            outcome: AuditOutcome::of_status(status),
            error_code: code.map(str::to_owned),
        }
    }

    #[test]
    fn times_are_rfc3339_or_a_duration_ago() {
        let now = DateTime::from_timestamp(1_767_225_600, 0).unwrap();
        assert_eq!(
            parse_time_at("2026-01-01T00:00:00Z", now),
            Ok(DateTime::from_timestamp(1_767_225_600, 0).unwrap())
        );
        assert_eq!(
            parse_time_at("2026-01-01T02:00:00+02:00", now),
            Ok(DateTime::from_timestamp(1_767_225_600, 0).unwrap())
        );
        assert_eq!(
            parse_time_at("2h", now),
            Ok(now - chrono::Duration::hours(2))
        );
        let e = parse_time_at("yesterday", now).unwrap_err();
        assert!(e.contains("RFC 3339") && e.contains("12h"), "{e}");
        assert!(parse_outcome("refused").is_ok());
        assert!(parse_outcome("nope").unwrap_err().contains("rejected"));
    }

    #[test]
    fn the_list_shows_actor_action_target_and_outcome_on_one_line_each() {
        let t = list_table(&[entry(7, 200, None), entry(6, 403, Some("forbidden"))]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3, "{t}");
        assert!(lines[0].starts_with("SEQ") && lines[0].contains("OUTCOME"));
        assert!(lines[1].contains("user alice (token ci)"), "{t}");
        assert!(lines[1].contains("host.revoke") && lines[1].contains("ok 200"));
        assert!(lines[1].contains(r"host=web-1\x1b[2J"), "{t}");
        assert!(lines[2].contains("refused 403 forbidden"), "{t}");
        let s = show_text(&entry(6, 403, Some("forbidden")));
        assert!(s.contains("POST /api/v1/hosts/{host}/revoke"), "{s}");
        assert!(s.contains("\"hostname\": \"web-1\""), "{s}");
    }
}
