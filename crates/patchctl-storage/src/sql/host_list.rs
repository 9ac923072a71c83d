//! The dashboard's host list ([`crate::HostStore::host_list_page`]): its `WHERE` with
//! only the filters in use and its orders; the query itself is in `hosts.rs`.

use patchctl_proto::api::HostStatus;
use uuid::Uuid;

use super::ms;
use crate::hosts::{HostListQuery, HostSort};

/// A value bound to a host-list query.
pub(super) enum ListBind {
    /// Text.
    Text(String),
    /// A number.
    Int(i64),
}

/// The `FROM ... WHERE` of a host-list query with only the filters `q` uses (so that
/// an unfiltered list counts and orders on the `hosts_org_name` index instead of
/// reading every row), and its values in `$N` order from `$1` (the organisation).
/// The text is the same on both backends.
pub(super) fn host_list_where(org_id: Uuid, q: &HostListQuery) -> (String, Vec<ListBind>) {
    let mut sql = String::from(" FROM hosts WHERE org_id = $1");
    let mut binds = vec![ListBind::Text(org_id.to_string())];
    let next = |binds: &mut Vec<ListBind>, b: ListBind| {
        binds.push(b);
        format!("${}", binds.len())
    };
    if let Some(pattern) = q
        .search
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(contains_pattern)
    {
        let n = next(&mut binds, ListBind::Text(pattern));
        sql.push_str(&format!(" AND LOWER(hostname) LIKE {n} ESCAPE '\\'"));
    }
    match q.status {
        None => {}
        Some(HostStatus::Revoked) => sql.push_str(" AND revoked"),
        Some(HostStatus::Pending) => sql.push_str(" AND NOT revoked AND approval = 'pending'"),
        Some(HostStatus::Online) => {
            let n = next(&mut binds, ListBind::Int(ms(q.online_since)));
            sql.push_str(&format!(
                " AND NOT revoked AND approval <> 'pending' AND last_seen >= {n}"
            ));
        }
        Some(HostStatus::Offline) => {
            let n = next(&mut binds, ListBind::Int(ms(q.online_since)));
            sql.push_str(&format!(
                " AND NOT revoked AND approval <> 'pending' \
                 AND (last_seen IS NULL OR last_seen < {n})"
            ));
        }
    }
    if let Some(pm) = &q.package_manager {
        let n = next(&mut binds, ListBind::Text(pm.clone()));
        sql.push_str(&format!(" AND package_manager = {n}"));
    }
    (sql, binds)
}

/// The order of each [`HostSort`] (every one ends in a unique key).
pub(super) fn host_list_order(sort: HostSort) -> &'static str {
    match sort {
        HostSort::Name => "hostname, id",
        HostSort::LastSeen => {
            "CASE WHEN last_seen IS NULL THEN 1 ELSE 0 END, last_seen DESC, hostname, id"
        }
        HostSort::Updates => "update_count DESC, hostname, id",
        HostSort::SecurityUpdates => "security_update_count DESC, update_count DESC, hostname, id",
    }
}

/// The `LIKE` pattern of a search text: lower case, wildcards escaped.
fn contains_pattern(text: &str) -> String {
    let mut p = String::from("%");
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}
