#![no_main]
// SUSE's CSAF documents: any bytes through the import front door, and arbitrary
// CSAF-shaped JSON (SUSE's product names, relationships, branches, product statuses,
// remediations, flags, all with arbitrary strings mixed in) into the SUSE CSAF parser;
// and arbitrary SUSE-shaped OVAL (nested criteria, product / package / "not affected"
// comments, tests, objects and states) through the front door.
// Never panics; every statement it keeps is one of the six feed statuses, and a fixed
// version is one the ecosystem's RPM ordering reads.
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use patchctl_vuln::import::suse::csaf;
use patchctl_vuln::{Parsed, Status, ecosystem};
use serde_json::{Value, json};

const PRODUCTS: [&str; 8] = [
    "SUSE Linux Enterprise Server 15 SP5",
    "SUSE Linux Enterprise Module for Basesystem 15 SP5",
    "SUSE Linux Enterprise Server 15 SP3-LTSS",
    "SUSE Linux Enterprise High Performance Computing 15 SP3-ESPOS",
    "SUSE Linux Enterprise Micro 6.0",
    "openSUSE Tumbleweed",
    "openSUSE Leap 15.5",
    "SUSE Package Hub 12",
];
const WORDS: [&str; 9] = [
    "recommended",
    "fixed",
    "first_fixed",
    "known_affected",
    "known_not_affected",
    "under_investigation",
    "last_affected",
    "first_affected",
    "other",
];
const COMPONENTS: [&str; 6] = [
    "samba",
    "samba-4.19.2+git.322.7e9201cef5-1.1",
    "bind-9.9.4P2-0.6.1.x86_64",
    "samba-client-libs-4.17.9-150500.3.11.1.noarch",
    "a-b-c",
    "-",
];

fn text(u: &mut Unstructured, pool: &[&str]) -> Result<String> {
    if u.ratio(1, 4)? {
        Ok(u.arbitrary::<String>()?)
    } else {
        Ok(u.choose(pool)?.to_string())
    }
}

fn product_id(u: &mut Unstructured) -> Result<String> {
    if u.ratio(1, 6)? {
        return u.arbitrary();
    }
    Ok(format!("{}:{}", text(u, &PRODUCTS)?, text(u, &COMPONENTS)?))
}

fn ids(u: &mut Unstructured) -> Result<Vec<Value>> {
    let n = u.int_in_range(0..=6)?;
    (0..n).map(|_| product_id(u).map(Value::from)).collect()
}

fn branches(u: &mut Unstructured, depth: u32) -> Result<Value> {
    let n = if depth > 20 {
        0
    } else {
        u.int_in_range(0..=3)?
    };
    let mut out = Vec::new();
    for _ in 0..n {
        let category = text(
            u,
            &["vendor", "architecture", "product_name", "product_version"],
        )?;
        let name = text(u, &["x86_64", "noarch", "SUSE"])?;
        let mut b = json!({"category": category, "name": name});
        if u.arbitrary()? {
            b["product"] = json!({"name": text(u, &PRODUCTS)?, "product_id": text(u, &PRODUCTS)?});
        }
        if u.arbitrary()? {
            b["branches"] = branches(u, depth + 1)?;
        }
        out.push(b);
    }
    Ok(Value::Array(out))
}

fn document(u: &mut Unstructured) -> Result<Value> {
    let category = text(u, &["csaf_vex", "csaf_security_advisory"])?;
    let mut relationships = Vec::new();
    for _ in 0..u.int_in_range(0..=4)? {
        relationships.push(json!({
            "category": "default_component_of",
            "full_product_name": {"name": "x", "product_id": product_id(u)?},
            "product_reference": text(u, &COMPONENTS)?,
            "relates_to_product_reference": text(u, &PRODUCTS)?,
        }));
    }
    let mut vulnerabilities = Vec::new();
    for _ in 0..u.int_in_range(0..=3)? {
        let mut status = serde_json::Map::new();
        for _ in 0..u.int_in_range(0..=4)? {
            status.insert(text(u, &WORDS)?, Value::Array(ids(u)?));
        }
        let mut v = json!({
            "product_status": status,
            "remediations": [{
                "category": text(u, &["vendor_fix", "no_fix_planned", "none_available"])?,
                "details": text(u, &["Unsupported", "will not fix", ""])?,
                "product_ids": ids(u)?,
            }],
            "flags": [{"label": text(u, &["component_not_present"])?, "product_ids": ids(u)?}],
            "threats": [{"category": "impact", "details": text(u, &["moderate"])?}],
            "scores": [{"cvss_v3": {"vectorString": text(u, &["CVSS:3.1/AV:N"])?}}],
        });
        if u.arbitrary()? {
            v["cve"] = text(u, &["CVE-2023-5568", ""])?.into();
        }
        vulnerabilities.push(v);
    }
    let mut doc = json!({
        "document": {
            "category": category,
            "publisher": {"name": "SUSE Product Security Team", "namespace": "https://www.suse.com/"},
            "tracking": {"id": text(u, &["CVE-2023-5568", "SUSE-SU-2015:0011-2", ""])?},
            "title": text(u, &["Security update for bind"])?,
        },
        "product_tree": {"branches": branches(u, 0)?, "relationships": relationships},
        "vulnerabilities": vulnerabilities,
    });
    if u.ratio(1, 8)? {
        // a field of the wrong shape
        let key = text(u, &["product_tree", "vulnerabilities", "document"])?;
        doc[key] = u.arbitrary::<String>()?.into();
    }
    Ok(doc)
}

const COMMENTS: [&str; 8] = [
    "openSUSE Tumbleweed is installed",
    "SUSE Linux Enterprise Server 15 SP1-BCL is installed",
    "SUSE Manager Server 4.3 is installed",
    "tar-1.34-2.2 is installed",
    "tar is not affected",
    "tar is affected",
    "tar is signed with openSUSE key",
    " is installed",
];

fn criteria(u: &mut Unstructured, depth: u32, out: &mut String) -> Result<()> {
    let op = text(u, &["AND", "OR"])?;
    out.push_str(&format!("<criteria operator=\"{}\">", escape(&op)));
    for _ in 0..u.int_in_range(0..=4)? {
        if depth < 40 && u.ratio(1, 3)? {
            criteria(u, depth + 1, out)?;
        } else {
            let test = u.int_in_range(0..=3)?;
            let comment = escape(&text(u, &COMMENTS)?);
            out.push_str(&format!(
                "<criterion test_ref=\"t{test}\" comment=\"{comment}\"/>"
            ));
        }
    }
    out.push_str("</criteria>");
    Ok(())
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn oval(u: &mut Unstructured) -> Result<String> {
    let mut x = String::from(
        "<?xml version=\"1.0\"?><oval_definitions><generator><product_name>Marcus \
         Updateinfo to OVAL Converter</product_name></generator><definitions>",
    );
    for _ in 0..u.int_in_range(0..=3)? {
        let class = escape(&text(u, &["vulnerability", "patch"])?);
        let title = escape(&text(u, &["CVE-2001-1267", ""])?);
        x.push_str(&format!(
            "<definition id=\"d{}\" class=\"{class}\"><metadata><title>{title}</title>\
             <reference ref_id=\"CVE-2014-8105\" source=\"CVE\"/><advisory><issued \
             date=\"2021-10-02\"/></advisory></metadata>",
            u.int_in_range(0..=2)?
        ));
        criteria(u, 0, &mut x)?;
        x.push_str("</definition>");
    }
    x.push_str("</definitions><tests>");
    for t in 0..4 {
        x.push_str(&format!(
            "<rpminfo_test id=\"t{t}\"><object object_ref=\"o{}\"/><state \
             state_ref=\"s{}\"/></rpminfo_test>",
            u.int_in_range(0..=2)?,
            u.int_in_range(0..=2)?
        ));
    }
    x.push_str("</tests><objects>");
    for o in 0..2 {
        let name = escape(&text(u, &["tar", "tar-doc"])?);
        x.push_str(&format!(
            "<rpminfo_object id=\"o{o}\"><name>{name}</name></rpminfo_object>"
        ));
    }
    x.push_str("</objects><states>");
    for s in 0..2 {
        let op = escape(&text(u, &["less than", "equals"])?);
        let evr = escape(&text(u, &["0:1.34-2.2", "0:1.34-", "1.35-160000.2.2"])?);
        x.push_str(&format!(
            "<rpminfo_state id=\"s{s}\"><evr operation=\"{op}\">{evr}</evr></rpminfo_state>"
        ));
    }
    x.push_str("</states></oval_definitions>");
    Ok(x)
}

fn check(parsed: &Parsed) {
    for record in &parsed.records {
        for a in &record.affected {
            assert!(!matches!(a.status, Status::UnknownVersion { .. }));
            if let (Status::Fixed { fixed_version }, Some(rules)) =
                (&a.status, ecosystem::rules(&a.ecosystem))
            {
                assert!(rules.scheme.parse_check(fixed_version).is_ok(), "{a:?}");
            }
        }
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = patchctl_vuln::import::parse_bytes("fuzz.json", data);
    if let Ok(v) = serde_json::from_slice::<Value>(data) {
        check(&csaf::parse("fuzz", &v));
    }
    let mut u = Unstructured::new(data);
    if let Ok(xml) = oval(&mut Unstructured::new(data)) {
        if let Ok(batches) = patchctl_vuln::import::parse_bytes("fuzz.xml", xml.as_bytes()) {
            for b in &batches {
                check(&b.parsed);
            }
        }
    }
    if let Ok(doc) = document(&mut u) {
        let _ = csaf::looks_like(&doc);
        check(&csaf::parse("fuzz", &doc));
        if let Ok(bytes) = serde_json::to_vec(&doc) {
            if let Ok(batches) = patchctl_vuln::import::parse_bytes("fuzz.json", &bytes) {
                for b in &batches {
                    check(&b.parsed);
                }
            }
        }
    }
});
