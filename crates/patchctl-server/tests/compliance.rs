//! Remediation deadlines, KEV, exceptions and compliance through the real router, on
//! SQLite and on PostgreSQL (a fresh database of `PATCHCTL_TEST_POSTGRES_URL`; skipped
//! with the reason without it, a failure under `CI=true`).
//!
//! The clock is the test's: first-seen times are written into the database before the
//! platform starts (as the engine would have written them 40 days ago), and the
//! compliance views are asked `at` a chosen time, so that an exception's expiry and a
//! deadline's passing are seen without sleeping.

use std::process::ExitCode;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::{DateTime, Duration, Utc};
use http_body_util::BodyExt;
use patchctl_proto::agent::{InstalledPackage, OsInfo, SystemInfo};
use patchctl_proto::policy::groups::GroupSelector;
use patchctl_proto::scan::{PackageRow, ScanState, ScanUpdates};
use patchctl_server::auth::hash_secret;
use patchctl_server::bootstrap::create_org;
use patchctl_server::{AppState, Settings, app};
use patchctl_storage::{FirstSeen, NewGroup, NewHost, Storage};
use patchctl_testkit::{Harness, Need, trial};
use serde_json::{Value, json};
use tower::ServiceExt;
use uuid::Uuid;

fn main() -> ExitCode {
    Harness::new()
        .test(trial!(async sqlite_deadlines_exceptions_and_compliance).multi_thread(Some(2)))
        .test(
            trial!(async postgres_deadlines_exceptions_and_compliance)
                .multi_thread(Some(2))
                .needs([Need::Postgres]),
        )
        .test(
            trial!(async a_real_kev_cve_gets_the_kev_deadline)
                .multi_thread(Some(2))
                .needs([
                    Need::SharedData("kev/known_exploited_vulnerabilities.json"),
                    Need::SharedData("redhat/security-data-api/CVE-2023-4863"),
                ]),
        )
        .run()
}

async fn sqlite_deadlines_exceptions_and_compliance() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("db.sqlite").display());
    deadlines_exceptions_and_compliance(&url).await;
}

async fn postgres_deadlines_exceptions_and_compliance() {
    let url = patchctl_testkit::scratch_postgres("patchctl_compliance").await;
    deadlines_exceptions_and_compliance(&url).await;
    patchctl_testkit::drop_scratch_postgres(&url).await;
}

fn settings(url: &str) -> Settings {
    Settings {
        metrics_history_len: 10,
        enroll_per_address_per_min: 1_000,
        enroll_per_key_per_min: 1_000,
        vuln_sync: false,
        ..Settings::with_defaults("127.0.0.1:0".parse().unwrap(), url, "unused", "unused")
    }
}

struct Answer {
    status: StatusCode,
    body: Value,
    next: Option<String>,
}

async fn call(st: &AppState, token: &str, method: &str, path: &str, body: Option<Value>) -> Answer {
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {token}"));
    if body.is_some() {
        req = req.header("content-type", "application/json");
    }
    let req = req
        .body(Body::from(body.map(|b| b.to_string()).unwrap_or_default()))
        .unwrap();
    let resp = app(st.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let next = resp
        .headers()
        .get("x-next-cursor")
        .map(|v| v.to_str().unwrap().to_owned());
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Answer { status, body, next }
}

fn record(id: &str, package: &str, fixed: &str) -> patchctl_vuln::Record {
    patchctl_vuln::Record {
        id: id.into(),
        aliases: vec![],
        summary: format!("{package} issue"),
        severity: Some("high".into()),
        cvss_vector: None,
        published: None,
        modified: None,
        withdrawn: false,
        exploited: None,
        affected: vec![patchctl_vuln::Affected {
            ecosystem: "Debian:12".into(),
            package: package.into(),
            introduced: None,
            last_affected: None,
            status: patchctl_vuln::Status::Fixed {
                fixed_version: fixed.into(),
            },
            note: None,
            severity: None,
        }],
    }
}

fn kev(cve: &str, added: &str) -> patchctl_vuln::Record {
    patchctl_vuln::Record {
        id: cve.into(),
        aliases: vec![],
        summary: "Known exploited".into(),
        severity: None,
        cvss_vector: None,
        published: Some(added.into()),
        modified: None,
        withdrawn: false,
        affected: vec![],
        exploited: Some(patchctl_vuln::model::Exploited {
            catalog: "CISA KEV test".into(),
            date_added: added.into(),
            due_date: None,
            ransomware: false,
            required_action: None,
        }),
    }
}

fn system(hostname: &str, id: &str, version: &str) -> SystemInfo {
    SystemInfo {
        hostname: hostname.into(),
        kernel: "6.1.0-28-amd64".into(),
        os: OsInfo {
            id: id.into(),
            version_id: version.into(),
            pretty_name: format!("{id} {version}"),
            ..Default::default()
        },
        ..Default::default()
    }
}

fn state(sys: SystemInfo) -> ScanState {
    let pkg = |name: &str, version: &str, src: &str| {
        PackageRow::from_package(&InstalledPackage {
            name: name.into(),
            version: version.into(),
            arch: "amd64".into(),
            source_name: Some(src.into()),
            source_version: Some(version.into()),
            status: "installed".into(),
        })
    };
    let mut s = ScanState {
        system: sys,
        package_manager: Some("dpkg".into()),
        packages: vec![
            pkg("openssh-server", "1:9.2p1-2+deb12u2", "openssh"),
            pkg("bsdutils", "2.38.1-5+deb12u1", "util-linux"),
        ],
        updates: Some(ScanUpdates {
            refreshed: true,
            updates: vec![],
            removals: vec![],
            error: None,
        }),
    };
    s.canonicalize();
    s
}

/// Seeds an organisation with a covered Debian 12 host and an uncovered one, the data
/// and a first-seen time 40 days old; returns (token, covered host id).
async fn seed(store: &dyn Storage, now: DateTime<Utc>) -> (String, Uuid, Uuid) {
    let org = create_org(store, "acme").await.unwrap();
    let key = store
        .enrollment_key_by_hash(&hash_secret(org.enrollment_key.expose()))
        .await
        .unwrap()
        .unwrap();
    let mut ids = Vec::new();
    for (i, sys) in [
        system("deb-1", "debian", "12"),
        system("gentoo-1", "gentoo", "2.15"),
    ]
    .into_iter()
    .enumerate()
    {
        let h = store
            .create_host(NewHost {
                org_id: key.org_id,
                enrollment_key_id: key.id,
                credential_hash: hash_secret(&format!("cred-{i}")),
                agent_version: "1.0.0".into(),
                system: sys.clone(),
                now,
            })
            .await
            .unwrap();
        let s = state(sys);
        store
            .put_scan(h.id, now, &s.digest(), &s, patchctl_storage::ScanKind::Full)
            .await
            .unwrap();
        ids.push(h.id);
    }
    store
        .import_vuln_records(
            "test",
            &[
                record("CVE-2024-6387", "openssh", "1:9.2p1-2+deb12u3"),
                record("CVE-2024-28085", "util-linux", "2.38.1-5+deb12u2"),
            ],
            now,
        )
        .await
        .unwrap();
    store
        .import_vuln_records("cisa-kev", &[kev("CVE-2024-6387", "2024-07-01")], now)
        .await
        .unwrap();
    // util-linux's finding was first seen 40 days ago (high: 30 days, so 10 overdue)
    store
        .record_first_seen(&[FirstSeen {
            org_id: key.org_id,
            host_id: ids[0],
            vuln_id: "CVE-2024-28085".into(),
            package: "util-linux".into(),
            first_seen_at: (now - Duration::days(40)).timestamp_millis(),
        }])
        .await
        .unwrap();
    store
        .create_group(
            key.org_id,
            &NewGroup {
                name: "debian".into(),
                description: "Debian hosts".into(),
                selector: GroupSelector {
                    os: Some("debian".into()),
                    ..Default::default()
                },
                actor: "test".into(),
                now,
            },
        )
        .await
        .unwrap();
    (org.token.expose().to_owned(), ids[0], ids[1])
}

fn finding<'a>(v: &'a Value, id: &str) -> &'a Value {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["advisory"] == id)
        .unwrap_or_else(|| panic!("no finding {id} in {v}"))
}

fn ms(v: &Value) -> i64 {
    DateTime::parse_from_rfc3339(v.as_str().unwrap())
        .unwrap()
        .timestamp_millis()
}

fn at(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        .replace('+', "%2B")
}

async fn deadlines_exceptions_and_compliance(url: &str) {
    let now = Utc::now();
    let store = patchctl_storage::open(url).await.unwrap();
    let (token, deb, _gentoo) = seed(store.as_ref(), now).await;
    let st = AppState::new(store.clone(), settings(url));
    let t = token.as_str();

    // the engine loads in the background
    let host_path = format!("/api/v1/hosts/{deb}/vulns");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let v = loop {
        let a = call(&st, t, "GET", &host_path, None).await;
        if a.status == StatusCode::OK {
            break a.body;
        }
        assert!(std::time::Instant::now() < deadline, "{}", a.body);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(v["fixable"], 2, "{v}");
    // the KEV finding: 14 days from first seen (added to the catalog long before)
    let ssh = &finding(&v, "CVE-2024-6387")["remediation"];
    assert_eq!(ssh["kev_date_added"], "2024-07-01", "{ssh}");
    assert_eq!(ssh["basis"], "kev");
    assert_eq!(ms(&ssh["due"]) - ms(&ssh["first_seen"]), 14 * 86_400_000);
    assert_eq!(ssh["state"], "open");
    assert!(
        ms(&ssh["first_seen"]) >= now.timestamp_millis() - 1,
        "first seen by the engine now"
    );
    // the other: high, 30 days from 40 days ago
    let ul = &finding(&v, "CVE-2024-28085")["remediation"];
    assert_eq!(ul["basis"], "severity");
    assert_eq!(ul["state"], "overdue");
    assert_eq!(
        ms(&ul["first_seen"]),
        (now - Duration::days(40)).timestamp_millis()
    );
    assert_eq!(
        ms(&ul["due"]),
        (now - Duration::days(10)).timestamp_millis()
    );
    // first seen by the engine is stored, in bulk
    let stored = store
        .host_first_seen(st_org(&st, t).await, deb)
        .await
        .unwrap();
    assert_eq!(stored.len(), 2, "{stored:?}");

    // compliance: the uncovered host is apart, never compliant
    let c = call(&st, t, "GET", "/api/v1/compliance", None).await;
    assert_eq!(c.status, StatusCode::OK, "{}", c.body);
    let f = &c.body["fleet"];
    assert_eq!(f["hosts"], 1, "{f}");
    assert_eq!(f["hosts_without_data"], 1);
    assert_eq!(f["compliant_hosts"], 0);
    assert_eq!(f["host_percent"], 0.0);
    assert_eq!(f["overdue"], 1);
    assert_eq!(f["overdue_kev"], 0);
    assert_eq!(f["finding_percent"], 50.0);
    assert_eq!(c.body["policy"]["default"], true);
    // 20 days on, the KEV finding is overdue too
    let later = at(now + Duration::days(20));
    let c = call(
        &st,
        t,
        "GET",
        &format!("/api/v1/compliance?at={later}"),
        None,
    )
    .await;
    assert_eq!(c.body["fleet"]["overdue"], 2, "{}", c.body);
    assert_eq!(c.body["fleet"]["overdue_kev"], 1);
    let o = call(
        &st,
        t,
        "GET",
        &format!("/api/v1/compliance/overdue?at={later}&kev=true"),
        None,
    )
    .await;
    assert_eq!(o.status, StatusCode::OK, "{}", o.body);
    assert_eq!(o.body["total"], 1);
    assert_eq!(o.body["findings"][0]["vuln_id"], "CVE-2024-6387");
    assert_eq!(o.body["findings"][0]["hostname"], "deb-1");
    // due 14 days after it was first seen (a moment after `now`): 5 whole days late
    assert_eq!(o.body["findings"][0]["days_overdue"], 5);
    // paged, most overdue first
    let o = call(
        &st,
        t,
        "GET",
        &format!("/api/v1/compliance/overdue?at={later}&limit=1"),
        None,
    )
    .await;
    assert_eq!(o.body["total"], 2);
    assert_eq!(o.body["findings"][0]["vuln_id"], "CVE-2024-28085");
    let cursor = o.next.expect("a next page");
    let o = call(
        &st,
        t,
        "GET",
        &format!("/api/v1/compliance/overdue?at={later}&limit=1&cursor={cursor}"),
        None,
    )
    .await;
    assert_eq!(o.body["findings"][0]["vuln_id"], "CVE-2024-6387");
    assert!(o.next.is_none());
    let bad = call(
        &st,
        t,
        "GET",
        "/api/v1/compliance/overdue?severity=urgent",
        None,
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.body);

    // an exception of 5 days on the overdue finding
    let until = now + Duration::days(5);
    let e = call(
        &st,
        t,
        "POST",
        "/api/v1/exceptions",
        Some(json!({"vuln_id": "CVE-2024-28085", "host": "deb-1", "reason": "util-linux's wall is not installed setuid here", "owner": "alice", "expires_at": until})),
    )
    .await;
    assert_eq!(e.status, StatusCode::CREATED, "{}", e.body);
    assert_eq!(e.body["status"], "active");
    assert_eq!(e.body["scope"]["kind"], "host");
    assert_eq!(e.body["scope"]["hostname"], "deb-1");
    let id = e.body["id"].as_str().unwrap().to_owned();
    let v = call(&st, t, "GET", &host_path, None).await.body;
    let ul = &finding(&v, "CVE-2024-28085")["remediation"];
    assert_eq!(ul["state"], "excepted", "{ul}");
    assert_eq!(ul["exception"]["id"], id.as_str());
    assert_eq!(v["fixable"], 1, "excepted findings leave the fixable count");
    let s = call(&st, t, "GET", "/api/v1/vulns/summary", None)
        .await
        .body;
    assert_eq!(s["fixable"], 1, "{s}");
    assert_eq!(s["excepted"], 1);
    let c = call(&st, t, "GET", "/api/v1/compliance", None).await.body;
    assert_eq!(c["fleet"]["overdue"], 0, "{c}");
    assert_eq!(c["fleet"]["excepted"], 1);
    assert_eq!(c["fleet"]["compliant_hosts"], 1);
    assert_eq!(c["fleet"]["host_percent"], 100.0);
    // it expires on its own: 6 days on, the finding is overdue again
    let c = call(
        &st,
        t,
        "GET",
        &format!("/api/v1/compliance?at={}", at(now + Duration::days(6))),
        None,
    )
    .await
    .body;
    assert_eq!(c["fleet"]["excepted"], 0, "{c}");
    assert_eq!(c["fleet"]["overdue"], 1);
    // listed, shown, revoked once
    let l = call(&st, t, "GET", "/api/v1/exceptions?active=true", None)
        .await
        .body;
    assert_eq!(l.as_array().unwrap().len(), 1, "{l}");
    let one = call(&st, t, "GET", &format!("/api/v1/exceptions/{id}"), None).await;
    assert_eq!(one.body["owner"], "alice");
    let r = call(
        &st,
        t,
        "POST",
        &format!("/api/v1/exceptions/{id}/revoke"),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "revoked");
    let r = call(
        &st,
        t,
        "POST",
        &format!("/api/v1/exceptions/{id}/revoke"),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    let c = call(&st, t, "GET", "/api/v1/compliance", None).await.body;
    assert_eq!(c["fleet"]["overdue"], 1, "the finding re-opened: {c}");
    let l = call(&st, t, "GET", "/api/v1/exceptions?active=true", None)
        .await
        .body;
    assert!(l.as_array().unwrap().is_empty());
    let missing = call(
        &st,
        t,
        "GET",
        &format!("/api/v1/exceptions/{}", Uuid::new_v4()),
        None,
    )
    .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    // groups: a group-scoped exception covers the group's hosts
    let g = call(
        &st,
        t,
        "POST",
        "/api/v1/exceptions",
        Some(json!({"vuln_id": "CVE-2024-28085", "group": "debian", "reason": "r", "owner": "o", "expires_at": until})),
    )
    .await;
    assert_eq!(g.status, StatusCode::CREATED, "{}", g.body);
    assert_eq!(g.body["scope"]["kind"], "group");
    let v = call(&st, t, "GET", &host_path, None).await.body;
    assert_eq!(
        finding(&v, "CVE-2024-28085")["remediation"]["state"],
        "excepted",
        "{v}"
    );
    let gid = g.body["id"].as_str().unwrap().to_owned();
    let r = call(
        &st,
        t,
        "POST",
        &format!("/api/v1/exceptions/{gid}/revoke"),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let nope = call(
        &st,
        t,
        "POST",
        "/api/v1/exceptions",
        Some(json!({"vuln_id": "CVE-2024-28085", "group": "nope", "reason": "r", "owner": "o", "expires_at": until})),
    )
    .await;
    assert_eq!(nope.status, StatusCode::NOT_FOUND, "{}", nope.body);
    // compliance per group, and of one group
    let c = call(&st, t, "GET", "/api/v1/compliance", None).await.body;
    let group = |name: &str| {
        c["groups"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["name"] == name)
            .unwrap_or_else(|| panic!("no group {name}: {c}"))
            .clone()
    };
    assert_eq!(group("debian")["compliance"]["hosts"], 1, "{c}");
    assert_eq!(group("debian")["compliance"]["hosts_without_data"], 0);
    assert_eq!(group("debian")["compliance"]["overdue"], 1);
    assert_eq!(group("all")["compliance"]["hosts_without_data"], 1);
    let c = call(&st, t, "GET", "/api/v1/compliance?group=debian", None)
        .await
        .body;
    assert_eq!(c["fleet"]["hosts"], 1, "{c}");
    assert_eq!(c["fleet"]["hosts_without_data"], 0);
    let o = call(
        &st,
        t,
        "GET",
        "/api/v1/compliance/overdue?group=debian",
        None,
    )
    .await
    .body;
    assert_eq!(o["total"], 1, "{o}");
    let c = call(&st, t, "GET", "/api/v1/compliance?group=nope", None).await;
    assert_eq!(c.status, StatusCode::NOT_FOUND, "{}", c.body);

    // refused exceptions say why
    let base = json!({"vuln_id": "CVE-2024-28085", "all_hosts": true, "reason": "r", "owner": "o", "expires_at": until});
    for (change, status, words) in [
        (
            json!({"expires_at": now - Duration::hours(1)}),
            StatusCode::BAD_REQUEST,
            "not in the future",
        ),
        (
            json!({"expires_at": now + Duration::days(400)}),
            StatusCode::BAD_REQUEST,
            "365 days",
        ),
        (
            json!({"host": "deb-1"}),
            StatusCode::BAD_REQUEST,
            "exactly one scope",
        ),
        (
            json!({"all_hosts": false}),
            StatusCode::BAD_REQUEST,
            "exactly one scope",
        ),
        (
            json!({"reason": "  "}),
            StatusCode::BAD_REQUEST,
            "reason is required",
        ),
        (
            json!({"vuln_id": "CVE 2024; drop"}),
            StatusCode::BAD_REQUEST,
            "not a vulnerability id",
        ),
        (
            json!({"all_hosts": false, "host": "nope"}),
            StatusCode::NOT_FOUND,
            "nope",
        ),
    ] {
        let mut body = base.clone();
        for (k, v) in change.as_object().unwrap() {
            body[k] = v.clone();
        }
        let a = call(&st, t, "POST", "/api/v1/exceptions", Some(body)).await;
        assert_eq!(a.status, status, "{change}: {}", a.body);
        assert!(
            a.body["error"].as_str().unwrap().contains(words),
            "{change}: {}",
            a.body
        );
    }
    // an exception for every host covers the finding too
    let e = call(&st, t, "POST", "/api/v1/exceptions", Some(base)).await;
    assert_eq!(e.status, StatusCode::CREATED, "{}", e.body);
    let c = call(&st, t, "GET", "/api/v1/compliance", None).await.body;
    assert_eq!(c["fleet"]["excepted"], 1, "{c}");

    // the deadline policy
    let p = call(&st, t, "GET", "/api/v1/deadline-policy", None)
        .await
        .body;
    assert_eq!(p["high_days"], 30, "{p}");
    assert_eq!(p["default"], true);
    let days = json!({"critical_days": 7, "high_days": 60, "medium_days": 90, "low_days": 180, "kev_days": 14, "due_soon_days": 3});
    let p = call(&st, t, "PUT", "/api/v1/deadline-policy", Some(days.clone())).await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    assert_eq!(p.body["default"], false);
    assert_eq!(p.body["high_days"], 60);
    let v = call(&st, t, "GET", &host_path, None).await.body;
    let ul = &finding(&v, "CVE-2024-28085")["remediation"];
    assert_eq!(
        ms(&ul["due"]),
        (now + Duration::days(20)).timestamp_millis(),
        "{ul}"
    );
    let mut bad = days.clone();
    bad["kev_days"] = json!(0);
    let p = call(&st, t, "PUT", "/api/v1/deadline-policy", Some(bad)).await;
    assert_eq!(p.status, StatusCode::BAD_REQUEST, "{}", p.body);
    assert!(
        p.body["error"].as_str().unwrap().contains("kev_days"),
        "{}",
        p.body
    );
    let p = call(
        &st,
        t,
        "PUT",
        "/api/v1/deadline-policy",
        Some(json!({"high_days": 5})),
    )
    .await;
    assert_eq!(p.status, StatusCode::BAD_REQUEST, "{}", p.body);
}

/// The organisation of the token.
async fn st_org(st: &AppState, token: &str) -> Uuid {
    let w = call(st, token, "GET", "/api/v1/whoami", None).await.body;
    Uuid::parse_str(w["org_id"].as_str().unwrap_or_else(|| panic!("{w}"))).unwrap()
}

/// CISA's real catalog and Red Hat's real data about libwebp's CVE-2023-4863 (in the
/// catalog since 2023-09-13), imported the way `patchctl vulndb import` imports them:
/// a RHEL 8.10 host with the vulnerable libwebp has a KEV finding due 14 days after it
/// was first seen (its high severity would give 30).
async fn a_real_kev_cve_gets_the_kev_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("db.sqlite").display());
    let store = patchctl_storage::open(&url).await.unwrap();
    let now = Utc::now();
    let batches = patchctl_vuln::import::import_paths(
        &[
            patchctl_testkit::shared_data("kev/known_exploited_vulnerabilities.json"),
            patchctl_testkit::shared_data("redhat/security-data-api/CVE-2023-4863"),
        ],
        &mut |_| {},
    )
    .unwrap();
    for b in &batches {
        store
            .import_vuln_records(b.feed, &b.parsed.records, now)
            .await
            .unwrap();
    }
    let kev = batches.iter().find(|b| b.feed == "cisa-kev").unwrap();
    assert_eq!(kev.parsed.records.len(), 1404);
    let org = create_org(store.as_ref(), "acme").await.unwrap();
    let key = store
        .enrollment_key_by_hash(&hash_secret(org.enrollment_key.expose()))
        .await
        .unwrap()
        .unwrap();
    let sys = SystemInfo {
        hostname: "rhel-1".into(),
        os: patchctl_proto::inventory::os_release::parse_os_release(
            "NAME=\"Red Hat Enterprise Linux\"\nID=\"rhel\"\nVERSION_ID=\"8.10\"\nPRETTY_NAME=\"Red Hat Enterprise Linux 8.10 (Ootpa)\"\n",
        ),
        ..Default::default()
    };
    let h = store
        .create_host(NewHost {
            org_id: key.org_id,
            enrollment_key_id: key.id,
            credential_hash: hash_secret("cred-rhel"),
            agent_version: "1.0.0".into(),
            system: sys.clone(),
            now,
        })
        .await
        .unwrap();
    let packages = patchctl_proto::inventory::rpm::parse_qa(
        "libwebp 0:1.0.0-8.el8_8 x86_64 libwebp-1.0.0-8.el8_8.src.rpm\n",
    )
    .packages;
    assert_eq!(packages.len(), 1);
    let mut s = ScanState {
        system: sys,
        package_manager: Some("rpm".into()),
        packages: packages.iter().map(PackageRow::from_package).collect(),
        updates: None,
    };
    s.canonicalize();
    store
        .put_scan(h.id, now, &s.digest(), &s, patchctl_storage::ScanKind::Full)
        .await
        .unwrap();
    let st = AppState::new(store.clone(), settings(&url));
    let token = org.token.expose().to_owned();
    let path = format!("/api/v1/hosts/{}/vulns", h.id);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let v = loop {
        let a = call(&st, &token, "GET", &path, None).await;
        if a.status == StatusCode::OK {
            break a.body;
        }
        assert!(std::time::Instant::now() < deadline, "{}", a.body);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let f = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| {
            f["advisory"] == "CVE-2023-4863"
                || f["aliases"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|a| a == "CVE-2023-4863")
        })
        .unwrap_or_else(|| panic!("no CVE-2023-4863 finding: {v}"));
    assert_eq!(f["known_exploited"]["date_added"], "2023-09-13", "{f}");
    assert_eq!(f["fixable"], true, "{f}");
    let r = &f["remediation"];
    assert_eq!(r["kev_date_added"], "2023-09-13", "{r}");
    assert_eq!(r["basis"], "kev");
    assert_eq!(ms(&r["due"]) - ms(&r["first_seen"]), 14 * 86_400_000, "{r}");
    assert_eq!(r["state"], "open");
    // and it is the compliance view's KEV finding 15 days on
    let later = at(now + Duration::days(15));
    let o = call(
        &st,
        &token,
        "GET",
        &format!("/api/v1/compliance/overdue?kev=true&at={later}"),
        None,
    )
    .await
    .body;
    assert_eq!(o["total"], 1, "{o}");
    assert_eq!(o["findings"][0]["kev_date_added"], "2023-09-13");
    assert_eq!(o["findings"][0]["basis"], "kev");
}
