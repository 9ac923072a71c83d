//! Maintenance windows with the real `patchctl` binary against `patchctl server --dev`
//! over real TLS: `windows create|list|show|update|next|delete` with days, a local
//! start in a zone, `--start now`, durations and the missed-window policy; the state
//! now in list and show; the next openings in UTC and local time; and the refusals an
//! operator meets (unknown zone, bad time, a minimum remaining as long as the window,
//! a taken name, an unknown group, a bad duration).

// The harness starts the binary under test; the no-spawn rule is for agent code.
#![allow(clippy::disallowed_methods)]

mod common;

use chrono::{DateTime, Timelike, Utc};
use common::platform::Platform;
use serde_json::Value;

fn fails(p: &Platform, args: &[&str]) -> String {
    let out = p.cli(args);
    assert!(
        !out.status.success(),
        "patchctl {args:?} succeeded: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn ok(p: &Platform, args: &[&str]) -> String {
    let out = p.cli(args);
    assert!(
        out.status.success(),
        "patchctl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn time(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().unwrap_or_else(|| panic!("not a time: {v}")))
        .unwrap()
        .with_timezone(&Utc)
}

#[test]
fn windows_from_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let p = Platform::start(&tmp.path().join("dev"), &tmp.path().join("server.log"));

    // A weekend window in Berlin time.
    let w = p.json(&[
        "windows",
        "create",
        "weekend",
        "--group",
        "all",
        "--days",
        "sat,sun",
        "--start",
        "2:00",
        "--timezone",
        "Europe/Berlin",
        "--duration",
        "3h",
        "--min-remaining",
        "30m",
    ]);
    assert_eq!(w["name"], "weekend");
    assert_eq!(w["group_name"], "all");
    assert_eq!(w["days"], serde_json::json!(["sat", "sun"]));
    assert_eq!(w["start"], "02:00", "stored as HH:MM");
    assert_eq!(w["timezone"], "Europe/Berlin");
    assert_eq!(w["duration_minutes"], 180);
    assert_eq!(w["min_remaining_minutes"], 30);
    assert_eq!(w["missed_policy"], "next_window");
    let now = &w["now"];
    if now["open"] == false {
        assert!(time(&now["next_opening"]) > time(&now["at"]));
        assert_eq!(now["may_start"], false);
        assert!(
            now["why_not"].as_str().unwrap().contains("closed until"),
            "{now}"
        );
    }

    // A window that starts now: open, an install may start.
    let before = Utc::now();
    let n = p.json(&[
        "windows",
        "create",
        "now",
        "--group",
        "all",
        "--start",
        "now",
        "--duration",
        "2h",
    ]);
    let after = Utc::now();
    assert_eq!(n["days"], serde_json::json!([]), "every day");
    assert_eq!(n["timezone"], "UTC");
    let hhmm = |t: DateTime<Utc>| format!("{:02}:{:02}", t.hour(), t.minute());
    assert!(
        [hhmm(before), hhmm(after)].contains(&n["start"].as_str().unwrap().to_string()),
        "{n}"
    );
    assert_eq!(n["now"]["open"], true, "{n}");
    assert_eq!(n["now"]["may_start"], true, "{n}");
    let opened = time(&n["now"]["opened_at"]);
    assert_eq!(
        time(&n["now"]["closes_at"]) - opened,
        chrono::Duration::hours(2)
    );

    // List and show, as tables and as JSON.
    let list = ok(&p, &["windows", "list"]);
    assert!(
        list.contains("weekend") && list.contains("sat,sun"),
        "{list}"
    );
    assert!(
        list.contains("02:00 Europe/Berlin") && list.contains("3h"),
        "{list}"
    );
    assert!(list.contains("open until"), "{list}");
    let listed = p.json(&["windows", "list", "--group", "all"]);
    assert_eq!(listed.as_array().unwrap().len(), 2);
    let shown = ok(&p, &["windows", "show", n["id"].as_str().unwrap()]);
    assert!(shown.contains("install now:    yes"), "{shown}");

    // The next openings, in UTC and Berlin time: Saturdays and Sundays at 02:00 local.
    let next = p.json(&["windows", "next", "weekend", "--count", "6"]);
    let openings = next["openings"].as_array().unwrap();
    assert_eq!(openings.len(), 6);
    let mut last = Utc::now();
    for o in openings {
        let at = time(&o["opens_at"]);
        assert!(at > last, "{next}");
        last = at;
        let local = o["local_opens_at"].as_str().unwrap();
        assert!(
            local.contains("T02:00:00+01:00") || local.contains("T02:00:00+02:00"),
            "{local}"
        );
        let zone = o["local_zone"].as_str().unwrap();
        assert!(zone == "CET" || zone == "CEST", "{zone}");
        assert_eq!(time(&o["closes_at"]) - at, chrono::Duration::hours(3));
    }
    let table = ok(&p, &["windows", "next", "weekend", "--count", "2"]);
    assert!(table.contains("OPENS (LOCAL)"), "{table}");

    // Update changes only what is given.
    let u = p.json(&[
        "windows",
        "update",
        "weekend",
        "--missed",
        "immediately",
        "--duration",
        "90m",
    ]);
    assert_eq!(u["missed_policy"], "immediately");
    assert_eq!(u["duration_minutes"], 90);
    assert_eq!(u["days"], serde_json::json!(["sat", "sun"]));
    assert_eq!(u["min_remaining_minutes"], 30);

    // Refusals say what was wrong.
    let e = fails(
        &p,
        &[
            "windows",
            "create",
            "x",
            "--group",
            "all",
            "--start",
            "02:00",
            "--timezone",
            "Mars/Olympus",
            "--duration",
            "1h",
        ],
    );
    assert!(e.contains("unknown time zone") && e.contains("IANA"), "{e}");
    let e = fails(
        &p,
        &[
            "windows",
            "create",
            "x",
            "--group",
            "all",
            "--start",
            "25:00",
            "--duration",
            "1h",
        ],
    );
    assert!(e.contains("bad start time"), "{e}");
    let e = fails(
        &p,
        &[
            "windows",
            "create",
            "x",
            "--group",
            "all",
            "--start",
            "02:00",
            "--duration",
            "1h",
            "--min-remaining",
            "1h",
        ],
    );
    assert!(e.contains("minimum remaining"), "{e}");
    let e = fails(
        &p,
        &[
            "windows",
            "create",
            "x",
            "--group",
            "all",
            "--start",
            "02:00",
            "--duration",
            "8d",
        ],
    );
    assert!(e.contains("longer than a week"), "{e}");
    let e = fails(
        &p,
        &[
            "windows",
            "create",
            "x",
            "--group",
            "all",
            "--start",
            "02:00",
            "--duration",
            "2x",
        ],
    );
    assert!(e.contains("bad duration"), "{e}");
    let e = fails(
        &p,
        &[
            "windows",
            "create",
            "x",
            "--group",
            "all",
            "--days",
            "funday",
            "--start",
            "02:00",
            "--duration",
            "1h",
        ],
    );
    assert!(e.contains("bad day"), "{e}");
    let e = fails(
        &p,
        &[
            "windows", "create", "x", "--group", "all", "--start", "02:00",
        ],
    );
    assert!(e.contains("--duration"), "{e}");
    let e = fails(
        &p,
        &[
            "windows",
            "create",
            "weekend",
            "--group",
            "all",
            "--start",
            "02:00",
            "--duration",
            "1h",
        ],
    );
    assert!(e.contains("already exists"), "{e}");
    let e = fails(
        &p,
        &[
            "windows",
            "create",
            "x",
            "--group",
            "no-such-group",
            "--start",
            "02:00",
            "--duration",
            "1h",
        ],
    );
    assert!(e.contains("no group"), "{e}");
    let e = fails(&p, &["windows", "show", "no-such-window"]);
    assert!(e.contains("no maintenance window"), "{e}");

    // Delete.
    let d = p.json(&["windows", "delete", "now"]);
    assert_eq!(d["name"], "now");
    let left = p.json(&["windows", "list"]);
    assert_eq!(left.as_array().unwrap().len(), 1);
    assert_eq!(left[0]["name"], "weekend");
}
