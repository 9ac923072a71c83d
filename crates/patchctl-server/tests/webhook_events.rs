//! The webhook events the platform emits from its own sweeps, through the real platform
//! state on SQLite and on PostgreSQL (a fresh database of `PATCHCTL_TEST_POSTGRES_URL`;
//! skipped with the reason without it, a failure under `CI=true`): `host.offline` from
//! the webhook worker's sweep, `deadline.missed` from the policy tick, `finding.new` from
//! the CVE engine (a scan, a change of the vulnerability data; not its initial load). The clock is the
//! test's: first-seen times are written before the platform starts, and the sweeps and
//! `policy::tick` are called with the time the test chooses. What was queued is read from the outbox itself
//! (`webhook_outbox`: one row per subscription and message, with the exact body).

use std::process::ExitCode;

use chrono::{DateTime, Duration, Utc};
use patchctl_proto::agent::{InstalledPackage, OsInfo, SystemInfo};
use patchctl_proto::policy::webhooks::{EventSeverity, EventType, Webhook};
use patchctl_proto::scan::{PackageRow, ScanState, ScanUpdates};
use patchctl_server::auth::hash_secret;
use patchctl_server::bootstrap::create_org;
use patchctl_server::{AppState, Settings};
use patchctl_storage::{ExceptionScope, FirstSeen, NewException, NewHost, NewWebhook, Storage};
use patchctl_testkit::{Harness, Need, trial};
use serde_json::Value;
use sqlx::Connection;
use uuid::Uuid;

fn main() -> ExitCode {
    Harness::new()
        .test(trial!(async sqlite_host_offline).multi_thread(Some(2)))
        .test(
            trial!(async postgres_host_offline)
                .multi_thread(Some(2))
                .needs([Need::Postgres]),
        )
        .test(trial!(async sqlite_finding_new).multi_thread(Some(2)))
        .test(
            trial!(async postgres_finding_new)
                .multi_thread(Some(2))
                .needs([Need::Postgres]),
        )
        .test(trial!(async sqlite_deadline_missed).multi_thread(Some(2)))
        .test(
            trial!(async postgres_deadline_missed)
                .multi_thread(Some(2))
                .needs([Need::Postgres]),
        )
        .run()
}

/// A fresh database: a SQLite file in `dir`, or a new PostgreSQL database (dropped by
/// [`drop_db`]).
async fn fresh_db(postgres: bool, dir: &tempfile::TempDir) -> String {
    if postgres {
        patchctl_testkit::scratch_postgres("patchctl_hookev").await
    } else {
        format!("sqlite://{}", dir.path().join("db.sqlite").display())
    }
}

async fn drop_db(url: &str) {
    patchctl_testkit::drop_scratch_postgres(url).await;
}

/// The bodies queued for subscription `sub`, oldest first.
async fn queued(url: &str, sub: Uuid) -> Vec<Value> {
    let sql = "SELECT payload FROM webhook_outbox WHERE subscription_id = $1 \
               ORDER BY created_at, id";
    let rows: Vec<(String,)> = if url.starts_with("sqlite") {
        let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::query_as(sql)
            .bind(sub.to_string())
            .fetch_all(&mut c)
            .await
            .unwrap()
    } else {
        let mut c = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query_as(sql)
            .bind(sub.to_string())
            .fetch_all(&mut c)
            .await
            .unwrap()
    };
    rows.into_iter()
        .map(|(p,)| serde_json::from_str(&p).unwrap())
        .collect()
}

fn settings(url: &str) -> Settings {
    Settings {
        metrics_history_len: 10,
        vuln_sync: false,
        ..Settings::with_defaults("127.0.0.1:0".parse().unwrap(), url, "unused", "unused")
    }
}

fn record(id: &str, package: &str, fixed: &str, severity: &str) -> patchctl_vuln::Record {
    patchctl_vuln::Record {
        id: id.into(),
        aliases: vec![],
        summary: format!("{package} issue"),
        severity: Some(severity.into()),
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

fn scan(hostname: &str, packages: &[(&str, &str, &str)]) -> ScanState {
    let mut s = ScanState {
        system: system(hostname),
        package_manager: Some("dpkg".into()),
        packages: packages
            .iter()
            .map(|(name, version, src)| {
                PackageRow::from_package(&InstalledPackage {
                    name: (*name).into(),
                    version: (*version).into(),
                    arch: "amd64".into(),
                    source_name: Some((*src).into()),
                    source_version: Some((*version).into()),
                    status: "installed".into(),
                })
            })
            .collect(),
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

fn system(hostname: &str) -> SystemInfo {
    SystemInfo {
        hostname: hostname.into(),
        kernel: "6.1.0-28-amd64".into(),
        os: OsInfo {
            id: "debian".into(),
            version_id: "12".into(),
            pretty_name: "Debian 12".into(),
            ..Default::default()
        },
        ..Default::default()
    }
}

const SSH: (&str, &str, &str) = ("openssh-server", "1:9.2p1-2+deb12u2", "openssh");
const UTIL: (&str, &str, &str) = ("bsdutils", "2.38.1-5+deb12u1", "util-linux");

/// An organisation with one Debian 12 host scanned with `packages`, the data of three
/// high findings (openssh, util-linux, curl) and a subscription to `events`; returns
/// (org, host, subscription).
async fn seed(
    store: &dyn Storage,
    now: DateTime<Utc>,
    packages: &[(&str, &str, &str)],
    events: &[EventType],
) -> (Uuid, Uuid, Webhook) {
    let org = create_org(store, "acme").await.unwrap();
    let key = store
        .enrollment_key_by_hash(&hash_secret(org.enrollment_key.expose()))
        .await
        .unwrap()
        .unwrap();
    let h = store
        .create_host(NewHost {
            org_id: key.org_id,
            enrollment_key_id: key.id,
            credential_hash: hash_secret("cred"),
            agent_version: "1.0.0".into(),
            system: system("deb-1"),
            now,
        })
        .await
        .unwrap();
    let s = scan("deb-1", packages);
    store
        .put_scan(h.id, now, &s.digest(), &s, patchctl_storage::ScanKind::Full)
        .await
        .unwrap();
    store
        .import_vuln_records(
            "test",
            &[
                record("CVE-2024-6387", "openssh", "1:9.2p1-2+deb12u3", "high"),
                record("CVE-2024-28085", "util-linux", "2.38.1-5+deb12u2", "high"),
            ],
            now,
        )
        .await
        .unwrap();
    let w = store
        .create_webhook(&NewWebhook {
            org_id: key.org_id,
            name: "events".into(),
            url: "https://hooks.example/events".into(),
            events: events.to_vec(),
            min_severity: None,
            enabled: true,
            secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
            created_by: "test".into(),
            created_at: now,
        })
        .await
        .unwrap();
    (key.org_id, h.id, w)
}

/// The platform over `store`, its CVE engine loaded.
async fn platform(store: &std::sync::Arc<dyn Storage>, url: &str) -> AppState {
    let st = AppState::new(store.clone(), settings(url));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !st.vulns.is_ready() {
        assert!(
            std::time::Instant::now() < deadline,
            "the engine did not load"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    st
}

/// One policy tick at `now` with the rules (and the deadline sweep) due.
async fn tick(st: &AppState, now: DateTime<Utc>) {
    patchctl_server::policy::tick(st, now, &mut None).await;
}

async fn sqlite_deadline_missed() {
    deadline_missed(false).await;
}

async fn postgres_deadline_missed() {
    deadline_missed(true).await;
}

/// `deadline.missed`: not before the deadline, once after it (two ticks, a restart),
/// never for an excepted finding.
async fn deadline_missed(postgres: bool) {
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_db(postgres, &dir).await;
    let now = Utc::now();
    let store = patchctl_storage::open(&url).await.unwrap();
    let (org, host, w) = seed(
        store.as_ref(),
        now,
        &[SSH, UTIL],
        &[EventType::DeadlineMissed],
    )
    .await;
    // both findings first seen 40 days ago (high: 30 days, so due 10 days ago)
    let seen = |vuln: &str, package: &str| FirstSeen {
        org_id: org,
        host_id: host,
        vuln_id: vuln.into(),
        package: package.into(),
        first_seen_at: (now - Duration::days(40)).timestamp_millis(),
    };
    store
        .record_first_seen(&[
            seen("CVE-2024-6387", "openssh"),
            seen("CVE-2024-28085", "util-linux"),
        ])
        .await
        .unwrap();
    // openssh's risk is accepted on this host
    store
        .create_exception(&NewException {
            org_id: org,
            vuln_id: "CVE-2024-6387".into(),
            scope: ExceptionScope::Host(host),
            reason: "not reachable".into(),
            owner: "alice".into(),
            expires_at: (now + Duration::days(30)).timestamp_millis(),
            created_by: "test".into(),
            created_at: (now - Duration::days(20)).timestamp_millis(),
        })
        .await
        .unwrap();
    let st = platform(&store, &url).await;

    // before the deadline: nothing
    tick(&st, now - Duration::days(11)).await;
    assert!(queued(&url, w.id).await.is_empty());

    // after it: util-linux's, once
    tick(&st, now).await;
    let q = queued(&url, w.id).await;
    assert_eq!(q.len(), 1, "{q:?}");
    assert_eq!(q[0]["type"], "deadline.missed");
    assert_eq!(q[0]["data"]["host_id"], host.to_string());
    assert_eq!(q[0]["data"]["vulnerability"], "CVE-2024-28085");
    let due = DateTime::parse_from_rfc3339(q[0]["data"]["deadline"].as_str().unwrap()).unwrap();
    assert_eq!(
        due.timestamp_millis(),
        (now - Duration::days(10)).timestamp_millis()
    );
    tick(&st, now + Duration::minutes(10)).await;
    tick(&st, now + Duration::days(1)).await;
    assert_eq!(queued(&url, w.id).await.len(), 1, "announced once");

    // a restarted platform does not announce it again
    let st = platform(&store, &url).await;
    tick(&st, now + Duration::days(2)).await;
    assert_eq!(
        queued(&url, w.id).await.len(),
        1,
        "announced once across a restart"
    );

    // once the exception has expired, openssh's is announced (once)
    tick(&st, now + Duration::days(31)).await;
    tick(&st, now + Duration::days(32)).await;
    let q = queued(&url, w.id).await;
    assert_eq!(q.len(), 2, "{q:?}");
    assert_eq!(q[1]["data"]["vulnerability"], "CVE-2024-6387");
    drop(st);
    drop_db(&url).await;
}

async fn sqlite_host_offline() {
    host_offline(false).await;
}

async fn postgres_host_offline() {
    host_offline(true).await;
}

/// `host.offline`: announced by the webhook worker's sweep once per outage, whichever
/// of two nodes sweeps and however often; again after a heartbeat and a second outage;
/// not while heartbeats arrive.
async fn host_offline(postgres: bool) {
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_db(postgres, &dir).await;
    let now = Utc::now();
    let store = patchctl_storage::open(&url).await.unwrap();
    let (_, host, w) = seed(store.as_ref(), now, &[SSH], &[EventType::HostOffline]).await;
    let settings = settings(&url);
    let after = Duration::from_std(settings.offline_after()).unwrap();
    let config = settings.webhook_config();
    // two platform nodes; the subscription's target (loopback, not allowed) fails fast
    let nodes = [
        patchctl_server::webhooks::Worker::new(&config, store.clone()).unwrap(),
        patchctl_server::webhooks::Worker::new(&config, store.clone()).unwrap(),
    ];
    let beat = |at: DateTime<Utc>| patchctl_storage::HeartbeatWrite {
        host_id: host,
        agent_version: "1.0.0".into(),
        agent_target: None,
        metrics: Default::default(),
        reboot: Default::default(),
        at,
    };
    let offline = |q: &[Value]| {
        q.iter()
            .filter(|m| m["type"] == "host.offline" && m["data"]["host_id"] == host.to_string())
            .count()
    };
    store.record_heartbeats(&[beat(now)], 10).await.unwrap();
    // within the window: nothing
    for n in &nodes {
        n.tick(now + after - Duration::seconds(1)).await.unwrap();
    }
    assert_eq!(offline(&queued(&url, w.id).await), 0);
    // past it: one event, whoever sweeps, however often (each node's sweep is due every
    // 15 s of its clock)
    for s in [1, 20, 40, 60] {
        for n in &nodes {
            n.tick(now + after + Duration::seconds(s)).await.unwrap();
        }
    }
    let q = queued(&url, w.id).await;
    assert_eq!(offline(&q), 1, "{q:?}");
    let last_seen = DateTime::parse_from_rfc3339(q[0]["data"]["last_seen"].as_str().unwrap())
        .unwrap()
        .timestamp_millis();
    assert_eq!(last_seen, now.timestamp_millis());
    // a restarted node does not announce it again
    let fresh = patchctl_server::webhooks::Worker::new(&config, store.clone()).unwrap();
    fresh.tick(now + after * 2).await.unwrap();
    assert_eq!(offline(&queued(&url, w.id).await), 1);
    // back (a heartbeat), then a second outage: a second event
    let back = now + after * 3;
    store.record_heartbeats(&[beat(back)], 10).await.unwrap();
    fresh.tick(back + Duration::seconds(20)).await.unwrap();
    assert_eq!(
        offline(&queued(&url, w.id).await),
        1,
        "online again: nothing"
    );
    for s in [1, 20, 40] {
        fresh
            .tick(back + after + Duration::seconds(s))
            .await
            .unwrap();
    }
    assert_eq!(offline(&queued(&url, w.id).await), 2, "the second outage");
    drop_db(&url).await;
}

async fn sqlite_finding_new() {
    finding_new(false).await;
}

async fn postgres_finding_new() {
    finding_new(true).await;
}

/// `finding.new`: not for the findings the engine's initial load records; once per new
/// finding after a scan and after a change of the vulnerability data (its severity
/// filtered by a subscription's minimum); not again when re-correlated, nor by a second
/// node (engine) over the same database.
async fn finding_new(postgres: bool) {
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_db(postgres, &dir).await;
    let now = Utc::now();
    let store = patchctl_storage::open(&url).await.unwrap();
    let (org, host, w) = seed(store.as_ref(), now, &[SSH], &[EventType::FindingNew]).await;
    let critical = store
        .create_webhook(&NewWebhook {
            org_id: org,
            name: "critical".into(),
            url: "https://hooks.example/critical".into(),
            events: vec![EventType::FindingNew],
            min_severity: Some(EventSeverity::Critical),
            enabled: true,
            secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
            created_by: "test".into(),
            created_at: now,
        })
        .await
        .unwrap();
    // the load records openssh's finding (first seen now) and announces nothing
    let st = platform(&store, &url).await;
    let other = platform(&store, &url).await;
    assert_eq!(store.host_first_seen(org, host).await.unwrap().len(), 1);
    assert!(
        queued(&url, w.id).await.is_empty(),
        "the initial load announces nothing"
    );

    // a scan adds util-linux: its finding, once (both nodes re-correlate the host)
    let s = scan("deb-1", &[SSH, UTIL]);
    store
        .put_scan(host, now, &s.digest(), &s, patchctl_storage::ScanKind::Full)
        .await
        .unwrap();
    st.vulns.host_changed(org, host).await.unwrap();
    other.vulns.host_changed(org, host).await.unwrap();
    st.vulns.host_changed(org, host).await.unwrap();
    let q = queued(&url, w.id).await;
    assert_eq!(q.len(), 1, "{q:?}");
    assert_eq!(q[0]["type"], "finding.new");
    assert_eq!(q[0]["data"]["host_id"], host.to_string());
    assert_eq!(q[0]["data"]["vulnerability"], "CVE-2024-28085");
    assert_eq!(q[0]["data"]["package"], "util-linux");
    assert_eq!(q[0]["data"]["severity"], "high");
    assert!(
        queued(&url, critical.id).await.is_empty(),
        "below its minimum"
    );

    // new vulnerability data: a critical openssh finding, once (both nodes refresh)
    store
        .import_vuln_records(
            "test",
            &[record(
                "CVE-2025-0001",
                "openssh",
                "1:9.2p1-2+deb12u9",
                "critical",
            )],
            now,
        )
        .await
        .unwrap();
    assert!(st.vulns.refresh_db().await.unwrap() > 0);
    other.vulns.refresh_db().await.unwrap();
    st.vulns.refresh_db().await.unwrap();
    let q = queued(&url, w.id).await;
    assert_eq!(q.len(), 2, "{q:?}");
    assert_eq!(q[1]["data"]["vulnerability"], "CVE-2025-0001");
    assert_eq!(q[1]["data"]["severity"], "critical");
    let c = queued(&url, critical.id).await;
    assert_eq!(c.len(), 1, "{c:?}");
    assert_eq!(c[0]["data"]["vulnerability"], "CVE-2025-0001");

    // a restarted platform loads everything again: nothing new, nothing announced
    let again = platform(&store, &url).await;
    again.vulns.host_changed(org, host).await.unwrap();
    assert_eq!(queued(&url, w.id).await.len(), 2);
    drop_db(&url).await;
}
