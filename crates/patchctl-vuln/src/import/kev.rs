//! CISA's Known Exploited Vulnerabilities catalog (feed [`FEED`]).
//!
//! The catalog is one JSON document: `{title, catalogVersion, dateReleased, count,
//! vulnerabilities: [{cveID, vendorProject, product, vulnerabilityName, dateAdded,
//! shortDescription, requiredAction, dueDate, knownRansomwareCampaignUse, notes, cwes}]}`.
//! It says nothing about packages: each entry becomes a [`Record`] with the CVE id, no
//! statements and [`Record::exploited`] set, and the matcher marks every finding about
//! that CVE as known to be exploited (see `matcher::Index::annotate`).
//!
//! An entry without a well-formed `cveID` or `dateAdded` is rejected by its position
//! (or id); the rest is imported. A `count` that disagrees with the entries is reported as
//! a rejection of the catalog's header, not a failure.

use serde::Deserialize;
use serde_json::Value;

use super::bare_record;
use crate::model::{Exploited, Parsed, Record, Rejected};

/// The feed name of the catalog's records.
pub const FEED: &str = "cisa-kev";

#[derive(Deserialize)]
struct Entry {
    #[serde(rename = "cveID")]
    cve_id: Option<String>,
    #[serde(rename = "vendorProject", default)]
    vendor: Option<String>,
    #[serde(default)]
    product: Option<String>,
    #[serde(rename = "vulnerabilityName", default)]
    name: Option<String>,
    #[serde(rename = "dateAdded")]
    date_added: Option<String>,
    #[serde(rename = "dueDate", default)]
    due_date: Option<String>,
    #[serde(rename = "knownRansomwareCampaignUse", default)]
    ransomware: Option<String>,
    #[serde(rename = "requiredAction", default)]
    required_action: Option<String>,
}

/// Whether a document is the KEV catalog: `catalogVersion` and a `vulnerabilities` list.
pub fn looks_like(v: &Value) -> bool {
    v.get("catalogVersion").is_some() && v.get("vulnerabilities").is_some_and(Value::is_array)
}

fn is_cve(id: &str) -> bool {
    let Some(rest) = id.strip_prefix("CVE-") else {
        return false;
    };
    let mut parts = rest.splitn(2, '-');
    let (Some(year), Some(num)) = (parts.next(), parts.next()) else {
        return false;
    };
    year.len() == 4
        && year.chars().all(|c| c.is_ascii_digit())
        && num.len() >= 4
        && num.chars().all(|c| c.is_ascii_digit())
}

fn is_date(d: &str) -> bool {
    chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").is_ok()
}

/// The catalog's entries as records; `origin` names the file in rejections.
pub fn parse(origin: &str, v: &Value) -> Parsed {
    let mut out = Parsed::default();
    let catalog = v
        .get("catalogVersion")
        .and_then(Value::as_str)
        .unwrap_or("?")
        .to_string();
    let Some(items) = v.get("vulnerabilities").and_then(Value::as_array) else {
        return out;
    };
    for (i, item) in items.iter().enumerate() {
        let reject = |id: String, reason: String| Rejected { id, reason };
        let entry: Entry = match serde_json::from_value(item.clone()) {
            Ok(e) => e,
            Err(e) => {
                out.rejected.push(reject(
                    format!("{origin}: entry {}", i + 1),
                    format!("not a KEV entry: {e}"),
                ));
                continue;
            }
        };
        let id = entry.cve_id.clone().unwrap_or_default();
        if !is_cve(&id) {
            out.rejected.push(reject(
                format!("{origin}: entry {}", i + 1),
                format!("cveID {id:?} is not a CVE id"),
            ));
            continue;
        }
        let date_added = entry.date_added.clone().unwrap_or_default();
        if !is_date(&date_added) {
            out.rejected.push(reject(
                id,
                format!("dateAdded {date_added:?} is not a YYYY-MM-DD date"),
            ));
            continue;
        }
        let due_date = entry.due_date.clone().filter(|d| is_date(d));
        let what = [&entry.vendor, &entry.product]
            .iter()
            .filter_map(|s| s.as_deref())
            .collect::<Vec<_>>()
            .join(" ");
        let summary = match entry.name.as_deref() {
            Some(n) => format!("Known exploited ({what}): {n}"),
            None => format!("Known exploited ({what})"),
        };
        out.records.push(Record {
            summary: super::clip(&summary, 200),
            published: Some(date_added.clone()),
            exploited: Some(Exploited {
                catalog: format!("CISA KEV {catalog}"),
                date_added,
                due_date,
                ransomware: entry
                    .ransomware
                    .as_deref()
                    .is_some_and(|r| r.eq_ignore_ascii_case("known")),
                required_action: entry.required_action.map(|a| super::clip(&a, 300)),
            }),
            ..bare_record(id, None)
        });
    }
    if let Some(count) = v.get("count").and_then(Value::as_u64) {
        if count != items.len() as u64 {
            out.rejected.push(Rejected {
                id: format!("{origin}: header"),
                reason: format!(
                    "the catalog says count {count} but lists {} entries; imported what it lists",
                    items.len()
                ),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_and_rejections() {
        let v = serde_json::json!({
            "catalogVersion": "2025.08.25", "count": 4,
            "vulnerabilities": [
                {"cveID": "CVE-2024-3094", "vendorProject": "XZ Utils", "product": "XZ Utils",
                 "vulnerabilityName": "Backdoor", "dateAdded": "2024-03-29", "dueDate": "2024-04-19",
                 "knownRansomwareCampaignUse": "Known", "requiredAction": "Patch."},
                {"cveID": "not-a-cve", "dateAdded": "2024-03-29"},
                {"cveID": "CVE-2024-0001", "dateAdded": "yesterday"},
            ]
        });
        let p = parse("kev.json", &v);
        assert_eq!(p.records.len(), 1);
        let r = &p.records[0];
        assert_eq!(r.id, "CVE-2024-3094");
        assert!(r.affected.is_empty());
        let e = r.exploited.as_ref().unwrap();
        assert_eq!(
            (e.date_added.as_str(), e.due_date.as_deref(), e.ransomware),
            ("2024-03-29", Some("2024-04-19"), true)
        );
        assert_eq!(r.summary, "Known exploited (XZ Utils XZ Utils): Backdoor");
        let ids: Vec<&str> = p.rejected.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(
            ids,
            ["kev.json: entry 2", "CVE-2024-0001", "kev.json: header"]
        );
        assert!(looks_like(&v));
        assert!(!looks_like(&serde_json::json!({"id": "x"})));
    }
}
