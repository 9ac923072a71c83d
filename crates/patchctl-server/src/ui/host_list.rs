//! `GET /ui/hosts`: the host list, searched, filtered, sorted and paged by the database
//! ([`patchctl_storage::HostStore::host_list_page`]), so that a fleet of 100,000 hosts
//! is never loaded whole. Every link keeps the query, so the page works without script.

use askama::Template;
use axum::extract::{Query, State};
use chrono::Utc;
use patchctl_proto::api::{HostStatus, HostSummary};
use patchctl_storage::{HostListQuery, HostSort};
use serde::Deserialize;

use super::{Chrome, Page, UiError, UiSession};
use crate::AppState;
use crate::api::hosts as api_hosts;

/// Hosts a page shows by default.
const PAGE_SIZE: u32 = 50;
/// Most hosts a page shows.
const MAX_PAGE_SIZE: u32 = 500;

/// Query of the host list.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    /// Name contains.
    #[serde(default)]
    pub q: String,
    /// `online`, `offline`, `revoked`, `pending` or empty.
    #[serde(default)]
    pub status: String,
    /// Package manager (`apt`, `dnf`, ...) or empty.
    #[serde(default)]
    pub family: String,
    /// `name`, `seen`, `updates` or `security`.
    #[serde(default)]
    pub sort: String,
    /// 1-based page.
    #[serde(default)]
    pub page: Option<u64>,
    /// Hosts a page.
    #[serde(default)]
    pub per: Option<u32>,
}

/// The host list page.
#[derive(Template)]
#[template(path = "hosts.html")]
pub struct HostsPage {
    /// The layout.
    pub chrome: Chrome,
    /// The hosts of this page, each with whether a scan arrived from it (a host that
    /// never sent one shows "not scanned yet", never zero packages).
    pub hosts: Vec<(HostSummary, bool)>,
    /// Hosts matching in all.
    pub total: u64,
    /// The query as asked.
    pub q: ListQuery,
    /// The families there are to filter by.
    pub families: Vec<String>,
    /// This page (1-based) and the last.
    pub page: u64,
    /// The last page.
    pub pages: u64,
    /// The query string without `page`, for the pager's links.
    pub keep: String,
}

impl HostsPage {
    /// The status choices with whether each is selected.
    pub fn statuses(&self) -> Vec<(&'static str, bool)> {
        ["online", "offline", "pending", "revoked"]
            .into_iter()
            .map(|s| (s, self.q.status == s))
            .collect()
    }

    /// The sort choices: value, label, selected.
    pub fn sorts(&self) -> Vec<(&'static str, &'static str, bool)> {
        [
            ("name", "name"),
            ("seen", "last seen"),
            ("updates", "updates"),
            ("security", "security updates"),
        ]
        .into_iter()
        .map(|(v, l)| {
            (
                v,
                l,
                self.q.sort == v || (self.q.sort.is_empty() && v == "name"),
            )
        })
        .collect()
    }
}

fn parse_status(s: &str) -> Result<Option<HostStatus>, UiError> {
    Ok(match s {
        "" => None,
        "online" => Some(HostStatus::Online),
        "offline" => Some(HostStatus::Offline),
        "revoked" => Some(HostStatus::Revoked),
        "pending" => Some(HostStatus::Pending),
        other => {
            return Err(UiError::BadRequest(format!(
                "unknown host status {other:?}; use online, offline, pending or revoked"
            )));
        }
    })
}

fn parse_sort(s: &str) -> Result<HostSort, UiError> {
    Ok(match s {
        "" | "name" => HostSort::Name,
        "seen" => HostSort::LastSeen,
        "updates" => HostSort::Updates,
        "security" => HostSort::SecurityUpdates,
        other => {
            return Err(UiError::BadRequest(format!(
                "unknown sort {other:?}; use name, seen, updates or security"
            )));
        }
    })
}

/// `GET /ui/hosts`.
pub async fn list(
    State(st): State<AppState>,
    session: UiSession,
    Query(q): Query<ListQuery>,
) -> Result<Page<HostsPage>, UiError> {
    let org = session.principal.org_id;
    let now = Utc::now();
    let per = q.per.unwrap_or(PAGE_SIZE).clamp(1, MAX_PAGE_SIZE);
    let page = q.page.unwrap_or(1).max(1);
    let offline_after =
        chrono::Duration::from_std(st.settings.offline_after()).unwrap_or(chrono::Duration::MAX);
    let query = HostListQuery {
        search: Some(q.q.clone()).filter(|s| !s.trim().is_empty()),
        status: parse_status(&q.status)?,
        online_since: now.checked_sub_signed(offline_after).unwrap_or(now),
        package_manager: Some(q.family.clone()).filter(|s| !s.is_empty()),
        sort: parse_sort(&q.sort)?,
        offset: (page - 1).saturating_mul(u64::from(per)),
        limit: per,
    };
    let found = st.store.host_list_page(org, &query).await?;
    // Served stale while one recompute runs: crate::views.
    let families = (*st.views.package_managers(&st.store, org).await?).clone();
    let hosts = found
        .hosts
        .iter()
        .map(|h| {
            (
                api_hosts::summary(&st, h, now),
                h.inventory_scanned_at.is_some(),
            )
        })
        .collect();
    let keep = serde_urlencoded::to_string([
        ("q", q.q.as_str()),
        ("status", q.status.as_str()),
        ("family", q.family.as_str()),
        ("sort", q.sort.as_str()),
        ("per", &per.to_string()),
    ])
    .unwrap_or_default();
    Ok(Page(HostsPage {
        chrome: session.chrome("hosts"),
        hosts,
        total: found.total,
        pages: found.total.div_ceil(u64::from(per)).max(1),
        page,
        families,
        keep,
        q,
    }))
}
