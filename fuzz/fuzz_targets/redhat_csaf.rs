#![no_main]
// Red Hat's formats: any bytes through the import front door and the deletions list,
// and JSON shaped like a Red Hat CSAF document (and API CVE) whose ids, CPEs, purls and
// versions come from the input, through the importers' own entry points: never a panic.
use patchctl_vuln::import::{parse_bytes, redhat};
use serde_json::{Value, json};

/// The input cut into short strings at `|`.
fn pieces(data: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(data)
        .split('|')
        .map(str::to_string)
        .take(64)
        .collect()
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = parse_bytes("fuzz", data);
    let _ = parse_bytes("deletions.csv", data);
    let _ = redhat::parse_deletions("deletions.csv", &String::from_utf8_lossy(data));

    let p = pieces(data);
    let s = |i: usize| p.get(i).cloned().unwrap_or_default();
    let stream = s(0);
    let component = s(1);
    let full = format!("{stream}:{component}");
    let category = if data.first().is_some_and(|b| b % 2 == 0) {
        "csaf_vex"
    } else {
        "csaf_security_advisory"
    };
    let doc = json!({
        "document": {
            "category": category,
            "title": s(2),
            "publisher": {"name": "Red Hat Product Security", "namespace": "https://www.redhat.com"},
            "tracking": {"id": s(3), "current_release_date": s(4)},
            "aggregate_severity": {"text": s(5)}
        },
        "product_tree": {
            "branches": [{"branches": [
                {"product": {"product_id": stream, "product_identification_helper": {"cpe": s(6)}}},
                {"product": {"product_id": component, "product_identification_helper": {"purl": s(7)}}}
            ]}],
            "relationships": [{
                "full_product_name": {"product_id": full},
                "product_reference": component,
                "relates_to_product_reference": stream
            }]
        },
        "vulnerabilities": [{
            "cve": s(8),
            "product_status": {
                "fixed": [full, s(9)],
                "known_affected": [s(10), format!("{stream}:{}", s(11))],
                "known_not_affected": [s(12)],
                "under_investigation": [s(13)]
            },
            "remediations": [
                {"category": s(14), "details": s(15), "url": s(16), "product_ids": [full, s(10)]}
            ],
            "threats": [{"category": "impact", "details": s(17)}],
            "scores": [{"cvss_v3": {"vectorString": s(18), "baseScore": 1.0}}],
            "flags": [{"label": s(19), "product_ids": [s(12)]}]
        }]
    });
    let _ = redhat::parse_csaf("fuzz", &doc);
    let _ = parse_bytes("fuzz.json", doc.to_string().as_bytes());

    let api = json!({
        "name": format!("CVE-{}", s(20)),
        "threat_severity": s(21),
        "affected_release": [{"advisory": s(22), "cpe": s(23), "package": s(24)}],
        "package_state": [{"fix_state": s(25), "package_name": s(26), "cpe": s(27)}],
        "cvss3": {"cvss3_scoring_vector": s(28)}
    });
    let _ = redhat::parse_api("fuzz", &api);
    // any JSON value at all
    if let Ok(v) = serde_json::from_slice::<Value>(data) {
        let _ = redhat::parse_csaf("fuzz", &v);
        let _ = redhat::parse_api("fuzz", &v);
    }
});
