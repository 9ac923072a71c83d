//! The audit log page: `GET /ui/audit`, the organisation's audit trail newest first,
//! filtered by actor, action, outcome and time, paged by a cursor (the sequence number
//! of the last entry shown). Needs [`crate::access::Need::Audit`] (its rule says so).

use askama::Template;
use axum::extract::{Query, State};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use patchctl_storage::{AuditEntry, AuditFilter, AuditOutcome};
use serde::Deserialize;

use super::{Chrome, Page, UiError, UiSession, paging};
use crate::AppState;

/// Entries per page.
pub const PAGE: u32 = 100;

/// The outcomes, for the filter's select.
pub const OUTCOMES: [AuditOutcome; 4] = [
    AuditOutcome::Ok,
    AuditOutcome::Refused,
    AuditOutcome::Rejected,
    AuditOutcome::Failed,
];

/// Query of `GET /ui/audit`.
#[derive(Debug, Default, Deserialize)]
pub struct AuditQuery {
    /// Actor name or id.
    #[serde(default)]
    pub actor: String,
    /// Action prefix (`host.`, `command.queue`).
    #[serde(default)]
    pub action: String,
    /// `ok`, `refused`, `rejected` or `failed`.
    #[serde(default)]
    pub outcome: String,
    /// From this time (`YYYY-MM-DD`, `YYYY-MM-DDTHH:MM` in UTC, or RFC 3339).
    #[serde(default)]
    pub since: String,
    /// Until this time (same forms).
    #[serde(default)]
    pub until: String,
    /// Entries before this sequence number (from the previous page's link).
    #[serde(default)]
    pub cursor: String,
}

/// The audit page.
#[derive(Template)]
#[template(path = "audit.html")]
pub struct AuditPage {
    /// The layout.
    pub chrome: Chrome,
    /// The filters as given.
    pub query: AuditQuery,
    /// The outcome names.
    pub outcomes: Vec<&'static str>,
    /// The page.
    pub rows: Vec<AuditEntry>,
    /// Query string of the next page.
    pub next: Option<String>,
}

impl AuditPage {
    /// A JSON value as compact text (`{}` and `null` as nothing).
    pub fn json(v: &serde_json::Value) -> String {
        match v {
            serde_json::Value::Null => String::new(),
            serde_json::Value::Object(o) if o.is_empty() => String::new(),
            v => v.to_string(),
        }
    }
}

/// A time of the filter; `end` makes a bare date mean the end of that day.
fn parse_time(what: &str, s: &str, end: bool) -> Result<Option<DateTime<Utc>>, UiError> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(Some(t.with_timezone(&Utc)));
    }
    for f in ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
            return Ok(Some(t.and_utc()));
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        let t = if end {
            d.and_hms_milli_opt(23, 59, 59, 999)
        } else {
            d.and_hms_opt(0, 0, 0)
        };
        return Ok(t.map(|t| t.and_utc()));
    }
    Err(UiError::BadRequest(format!(
        "{what} {s:?} is not a time; give YYYY-MM-DD or YYYY-MM-DDTHH:MM (UTC)"
    )))
}

fn parse_outcome(s: &str) -> Result<Option<AuditOutcome>, UiError> {
    if s.is_empty() {
        return Ok(None);
    }
    AuditOutcome::parse(s).map(Some).ok_or_else(|| {
        UiError::BadRequest(format!(
            "unknown outcome {s:?}; choose one of {}",
            OUTCOMES.map(|o| o.as_str()).join(", ")
        ))
    })
}

/// `GET /ui/audit`.
pub async fn list(
    State(st): State<AppState>,
    session: UiSession,
    Query(query): Query<AuditQuery>,
) -> Result<Page<AuditPage>, UiError> {
    let before_seq = match query.cursor.trim() {
        "" => None,
        c => Some(c.parse::<i64>().map_err(|_| {
            UiError::BadRequest(
                "this page link is damaged (bad cursor); go back to the first page".into(),
            )
        })?),
    };
    let filter = AuditFilter {
        actor: Some(query.actor.trim().to_owned()).filter(|s| !s.is_empty()),
        action: Some(query.action.trim().to_owned()).filter(|s| !s.is_empty()),
        outcome: parse_outcome(&query.outcome)?,
        since: parse_time("since", &query.since, false)?,
        until: parse_time("until", &query.until, true)?,
        before_seq,
    };
    let mut rows = st
        .store
        .list_audit(session.principal.org_id, &filter, PAGE + 1)
        .await?;
    let next = if rows.len() > PAGE as usize {
        rows.truncate(PAGE as usize);
        let p = vec![
            ("actor", query.actor.clone()),
            ("action", query.action.clone()),
            ("outcome", query.outcome.clone()),
            ("since", query.since.clone()),
            ("until", query.until.clone()),
        ];
        rows.last()
            .map(|e| paging::with(&p, "cursor", &e.seq.to_string()))
    } else {
        None
    };
    Ok(Page(AuditPage {
        chrome: session.chrome("audit"),
        query,
        outcomes: OUTCOMES.iter().map(|o| o.as_str()).collect(),
        rows,
        next,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_times_take_dates_and_minutes() {
        let day = parse_time("since", "2026-03-01", false).unwrap().unwrap();
        assert_eq!(day.to_rfc3339(), "2026-03-01T00:00:00+00:00");
        let end = parse_time("until", "2026-03-01", true).unwrap().unwrap();
        assert_eq!(end.timestamp_millis() - day.timestamp_millis(), 86_399_999);
        let minute = parse_time("since", "2026-03-01T10:30", false)
            .unwrap()
            .unwrap();
        assert_eq!(minute.to_rfc3339(), "2026-03-01T10:30:00+00:00");
        assert!(parse_time("since", "", false).unwrap().is_none());
        assert!(parse_time("since", "yesterday", false).is_err());
        assert!(parse_outcome("refused").unwrap().is_some());
        assert!(parse_outcome("nope").is_err());
    }
}
