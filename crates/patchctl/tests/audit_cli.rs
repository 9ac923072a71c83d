//! `patchctl audit list|show` with the real binary against `patchctl server --dev` over
//! real TLS: the table and its columns, `--json`, the filters (`--outcome`,
//! `--action`, `--actor`, `--since`, `--until`), `--limit` with its note, `--all`
//! following `X-Next-Cursor` to the end (every entry once), `show` in text and JSON,
//! and the errors for a bad outcome and an unknown entry.

// The harness starts the binary under test; the no-spawn rule is for agent code.
#![allow(clippy::disallowed_methods)]

mod common;

use std::collections::HashSet;
use std::process::Output;

use common::platform::Platform;
use common::wait_for;
use serde_json::Value;

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[track_caller]
fn ok(p: &Platform, args: &[&str]) -> (String, String) {
    let out = p.cli(args);
    let (o, e) = text(&out);
    assert!(out.status.success(), "patchctl {args:?} failed: {e}");
    (o, e)
}

#[track_caller]
fn fails(p: &Platform, args: &[&str]) -> String {
    let out = p.cli(args);
    let (o, e) = text(&out);
    assert!(!out.status.success(), "patchctl {args:?} succeeded: {o}");
    e
}

#[track_caller]
fn entries(p: &Platform, args: &[&str]) -> Vec<Value> {
    let mut a = vec!["audit", "list"];
    a.extend(args);
    a.push("--json");
    let (o, _) = ok(p, &a);
    let v: Value = serde_json::from_str(&o).unwrap_or_else(|e| panic!("{a:?}: {e}: {o}"));
    v.as_array().unwrap().clone()
}

#[test]
fn the_trail_is_listed_filtered_paged_and_shown_from_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let p = Platform::start(&tmp.path().join("dev"), &tmp.path().join("server.log"));

    // History: 5 keys created, 2 rejected revocations, 1 refusal (a token the platform
    // does not know).
    for i in 0..5 {
        ok(&p, &["keys", "create", "--name", &format!("cli-{i}")]);
    }
    for _ in 0..2 {
        fails(
            &p,
            &["keys", "revoke", "00000000-0000-0000-0000-000000000000"],
        );
    }
    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_patchctl"))
        .args(["keys", "create", "--name", "nope"])
        .env("PATCHCTL_SERVER", &p.url)
        .env("PATCHCTL_TOKEN", format!("pct_{}", "0".repeat(64)))
        .env("PATCHCTL_CA_FILE", p.ca_file())
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let all = wait_for("8 audit entries", 30, || {
        let all = entries(&p, &["--limit", "1000"]);
        (all.len() >= 8).then_some(all)
    });
    assert_eq!(all.len(), 8, "{all:#?}");
    let seqs: Vec<i64> = all.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] > w[1]),
        "newest first: {seqs:?}"
    );

    // The table: one line per entry under the header.
    let (table, _) = ok(&p, &["audit", "list"]);
    let lines: Vec<&str> = table.lines().collect();
    for col in [
        "SEQ", "TIME", "ACTOR", "PEER", "ACTION", "TARGET", "OUTCOME",
    ] {
        assert!(lines[0].contains(col), "{col}: {table}");
    }
    assert_eq!(lines.len(), 9, "{table}");
    assert!(lines[1].contains("refused 401"), "{table}");
    assert!(lines[1].contains("anonymous"), "{table}");
    assert!(lines[2].contains("rejected 404"), "{table}");
    assert!(
        lines[2].contains("id=00000000-0000-0000-0000-000000000000"),
        "{table}"
    );
    assert!(
        lines[8].contains("ok 201") && lines[8].contains("127.0.0.1"),
        "{table}"
    );

    // --limit: the newest N, and a note that there is more.
    let (table, note) = ok(&p, &["audit", "list", "--limit", "3"]);
    assert_eq!(table.lines().count(), 4, "{table}");
    assert!(note.contains("--all"), "{note}");

    // --all: pages of 3 followed to the end, every entry once.
    let paged = entries(&p, &["--all", "--limit", "3"]);
    let paged_seqs: Vec<i64> = paged.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert_eq!(paged_seqs, seqs);
    assert_eq!(paged_seqs.iter().collect::<HashSet<_>>().len(), 8);
    let (_, note) = ok(&p, &["audit", "list", "--all", "--limit", "3"]);
    assert!(!note.contains("--all"), "{note}");

    // Filters.
    let refused = entries(&p, &["--outcome", "refused"]);
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0]["status"], 401);
    assert_eq!(refused[0]["actor"]["kind"], "anonymous");
    let rejected = entries(&p, &["--outcome", "rejected", "--all"]);
    assert_eq!(rejected.len(), 2);
    let ok_action = all[7]["action"].as_str().unwrap().to_owned();
    let prefix = &ok_action[..ok_action.find('.').map_or(ok_action.len(), |i| i + 1)];
    let by_action = entries(&p, &["--action", prefix]);
    assert!(by_action.len() >= 5, "{prefix}: {by_action:#?}");
    assert!(
        by_action
            .iter()
            .all(|e| e["action"].as_str().unwrap().starts_with(prefix))
    );
    let actor = all[7]["actor"]["name"].as_str().unwrap().to_owned();
    assert_eq!(entries(&p, &["--actor", &actor]).len(), 7, "{actor}");
    assert_eq!(entries(&p, &["--since", "1h"]).len(), 8);
    assert_eq!(entries(&p, &["--until", "1h"]).len(), 0);
    let (_, note) = ok(&p, &["audit", "list", "--until", "2000-01-01T00:00:00Z"]);
    assert!(note.contains("no audit entries"), "{note}");
    let at = all[4]["at"].as_str().unwrap();
    assert_eq!(
        entries(&p, &["--since", at]).len(),
        all.iter()
            .filter(|e| e["at"].as_str().unwrap() >= at)
            .count()
    );

    // show: text and JSON.
    let seq = seqs[2].to_string();
    let (shown, _) = ok(&p, &["audit", "show", &seq]);
    assert!(shown.contains(&format!("entry    {seq}")), "{shown}");
    assert!(
        shown.contains("POST /api/v1/enrollment-keys/{id}/revoke"),
        "{shown}"
    );
    let (j, _) = ok(&p, &["audit", "show", &seq, "--json"]);
    let one: Value = serde_json::from_str(&j).unwrap();
    assert_eq!(one, all[2]);
    let created = &all[7];
    assert!(created["details"]["key_id"].is_string(), "{created:#}");
    assert_eq!(created["details"]["name"], "cli-0");

    // Errors say what to do.
    let e = fails(&p, &["audit", "list", "--outcome", "denied"]);
    assert!(e.contains("ok, refused, rejected and failed"), "{e}");
    let e = fails(&p, &["audit", "list", "--since", "yesterday"]);
    assert!(e.contains("RFC 3339"), "{e}");
    let e = fails(&p, &["audit", "show", "999999"]);
    assert!(e.contains("no audit entry 999999"), "{e}");
}
