//! `deletions.csv` of Red Hat's bulk VEX layout: one line per VEX document Red Hat
//! deleted, `"2023/cve-2023-6240.json","2024-08-04T10:17:22+00:00"`. Each becomes a
//! withdrawn record of feed [`super::FEED_CSAF`] (id the upper-case CVE id, `modified`
//! the deletion time), so that an offline import withdraws what the archive still had.
//! A line that is not of this shape is rejected by its line number.

use crate::import::bare_record;
use crate::{Parsed, Rejected};

/// Whether a file name is the bulk layout's deletions list.
pub fn is_deletions_list(name: &str) -> bool {
    name.eq_ignore_ascii_case("deletions.csv")
}

/// Parses a deletions list.
pub fn parse(name: &str, text: &str) -> Parsed {
    let mut out = Parsed::default();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let mut fields = line.split(',').map(|f| f.trim().trim_matches('"'));
        let (path, when) = (fields.next().unwrap_or(""), fields.next());
        let file = path.rsplit('/').next().unwrap_or(path);
        let id = file
            .strip_suffix(".json")
            .map(str::to_ascii_uppercase)
            .filter(|id| super::is_cve_id(id));
        match id {
            Some(id) => {
                let mut record =
                    bare_record(id, when.filter(|w| !w.is_empty()).map(str::to_string));
                record.withdrawn = true;
                record.summary = format!("deleted by Red Hat ({path})");
                out.records.push(record);
            }
            None => out.rejected.push(Rejected {
                id: format!("{name} line {}", i + 1),
                reason: format!(
                    "not a deleted VEX document (\"YYYY/cve-….json\",\"time\"): {}",
                    crate::import::clip(line, 120)
                ),
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines() {
        let p = parse(
            "deletions.csv",
            "\"2023/cve-2023-6240.json\",\"2024-08-04T10:17:22+00:00\"\nbad line\n",
        );
        assert_eq!(p.records.len(), 1);
        assert_eq!(p.records[0].id, "CVE-2023-6240");
        assert!(p.records[0].withdrawn);
        assert_eq!(
            p.records[0].modified.as_deref(),
            Some("2024-08-04T10:17:22+00:00")
        );
        assert_eq!(p.rejected[0].id, "deletions.csv line 2");
    }
}
