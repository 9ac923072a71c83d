//! The storage conformance suite: every case runs against SQLite (a fresh database
//! file in a temporary directory) and against PostgreSQL (a fresh database created for
//! the test on the server `PATCHCTL_TEST_POSTGRES_URL` names, dropped afterwards).
//!
//! Without `PATCHCTL_TEST_POSTGRES_URL` the PostgreSQL tests are reported as ignored,
//! with the reason, by the patchctl-testkit harness, except under CI (`CI=true`), where
//! they fail: CI must test both backends.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use patchctl_proto::agent::{
    DiskUsage, InstalledPackage, InventoryUpload, Metrics, OsInfo, SystemInfo,
};
use patchctl_proto::api::CommandState;
use patchctl_proto::command::{
    Advisory, AvailableUpdate, CommandResult, HealthItem, HealthReport, HealthStatus, ResultOutput,
    ResultStatus,
};
use patchctl_proto::scan::{PackageRow, ScanState, ScanUpdates};
use patchctl_proto::trust::{Approval, KeyState, OrgSettings};
use patchctl_storage::{
    ApprovalChange, CancelOutcome, CredentialSlot, EnrollHost, Enrollment, HostAuth, HostRow,
    KeyRefusal, KeyRotation, NewCommand, NewEnrollmentKey, NewHost, Org, RecordOutcome, ScanKind,
    Storage, StorageError, StoredScan, StoredVulnRecord, VulnImport, VulnSource,
};
use patchctl_testkit::{Harness, Need, Test, trial};
use patchctl_vuln::{Affected, Record, Status};
use serde_json::json;
use sqlx::Connection;
use uuid::Uuid;

#[path = "conformance/audit.rs"]
mod audit;
use audit::{case_audit_append_only, case_audit_filters_and_paging};
#[path = "conformance/users_tokens.rs"]
mod users_tokens;
use users_tokens::{case_token_scope_expiry_and_revocation, case_users_owners_and_uniqueness};

#[path = "conformance/dashboard.rs"]
mod dashboard;
use dashboard::{case_dashboard_active_host_ids, case_dashboard_command_lines};
#[path = "conformance/operators.rs"]
mod operators;
use operators::{
    case_audit_is_append_only, case_audit_trail, case_last_owner_is_kept, case_user_tokens,
    case_users_and_sessions,
};
#[path = "conformance/approvals.rs"]
mod approvals;
use approvals::case_approvals_rules_and_manifests;
#[path = "conformance/deployments.rs"]
mod deployments;
use deployments::case_deployments;
#[path = "conformance/groups.rs"]
mod groups;
use groups::case_groups_select_hosts;
#[path = "conformance/fleet_counts.rs"]
mod fleet_counts;
use fleet_counts::case_fleet_counts;
#[path = "conformance/windows.rs"]
mod windows;
use windows::{case_windows_crud, case_windows_go_with_their_group};
#[path = "conformance/changes.rs"]
mod changes;
use changes::{
    case_delta_chain_is_stored, case_failed_writes_announce_nothing,
    case_writes_announce_their_changes,
};
#[path = "conformance/limits.rs"]
mod limits;
use limits::case_shared_rate_limits;
#[path = "conformance/nodes.rs"]
mod nodes;
use nodes::case_node_registry;
#[path = "conformance/reboots.rs"]
mod reboots;
use reboots::case_reboot_state;
#[path = "conformance/compliance.rs"]
mod compliance;
use compliance::{
    case_deadline_policy, case_exceptions_expire_and_revoke, case_first_seen_bulk_and_idempotent,
};
#[path = "conformance/releases.rs"]
mod releases;
use releases::{
    case_agent_rollout, case_heartbeat_stores_agent_target, case_latest_release_in_version_order,
    case_releases_publish, case_update_events,
};

#[path = "conformance/webhooks.rs"]
mod webhooks;
use webhooks::{
    case_webhook_backoff_bookkeeping, case_webhook_fan_out, case_webhook_lease_exclusive,
    case_webhook_offline_sweep,
};
#[path = "conformance/webhook_events.rs"]
mod webhook_events;
use webhook_events::{case_missed_deadlines_once, case_new_findings_announced_once};

#[path = "conformance/enroll_lock.rs"]
mod enroll_lock;
use enroll_lock::postgres_enrollment_locks_its_key_only_to_commit;

fn main() -> std::process::ExitCode {
    Harness::new()
        .tests(conformance_tests())
        .test(trial!(async unsupported_url_names_the_supported_schemes))
        .test(trial!(async sqlite_accepts_both_url_forms_and_creates_the_file))
        .test(trial!(async sqlite_in_memory_works))
        .test(trial!(with_database_replaces_only_the_database))
        .test(
            trial!(async postgres_enrollment_locks_its_key_only_to_commit)
                .multi_thread(Some(4))
                .needs([Need::Postgres]),
        )
        .run()
}

// ---------------------------------------------------------------------------------
// Harness.

/// The variable naming the PostgreSQL server to test against.
const PG_ENV: &str = "PATCHCTL_TEST_POSTGRES_URL";

/// A database for one test.
struct TestDb {
    url: String,
    /// Keeps the SQLite database's directory alive.
    _dir: Option<tempfile::TempDir>,
    /// PostgreSQL: the server URL and the database created on it.
    pg: Option<(String, String)>,
}

impl TestDb {
    /// A new SQLite database file in a temporary directory.
    fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = format!("sqlite://{}", dir.path().join("patchctl.db").display());
        TestDb {
            url,
            _dir: Some(dir),
            pg: None,
        }
    }

    /// A new database on the PostgreSQL server (the harness runs a PostgreSQL test only
    /// when `PATCHCTL_TEST_POSTGRES_URL` is set: [`Need::Postgres`]).
    async fn postgres(test: &str) -> TestDb {
        let base = std::env::var(PG_ENV)
            .unwrap_or_else(|_| panic!("{test}: {PG_ENV} is not set: declare Need::Postgres"));
        let name = format!("patchctl_t_{}", Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect(&base)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {PG_ENV}: {e}"));
        sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
        let _ = conn.close().await;
        TestDb {
            url: with_database(&base, &name),
            _dir: None,
            pg: Some((base, name)),
        }
    }

    /// Opens the store (migrating it).
    async fn open(&self) -> Arc<dyn Storage> {
        open_url(&self.url).await
    }

    /// Drops the PostgreSQL database, best effort.
    async fn cleanup(self) {
        if let Some((base, name)) = &self.pg {
            if let Ok(mut conn) = sqlx::PgConnection::connect(base).await {
                let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                if let Err(e) = sqlx::raw_sql(&sql).execute(&mut conn).await {
                    eprintln!("could not drop test database {name}: {e}");
                }
                let _ = conn.close().await;
            }
        }
    }
}

/// `base` (a PostgreSQL URL) with its database replaced by `name`.
fn with_database(base: &str, name: &str) -> String {
    let (main, query) = match base.split_once('?') {
        Some((m, q)) => (m, Some(q)),
        None => (base, None),
    };
    let authority_start = main.find("://").map_or(0, |i| i + 3);
    let root = match main[authority_start..].find('/') {
        Some(i) => &main[..authority_start + i],
        None => main,
    };
    match query {
        Some(q) => format!("{root}/{name}?{q}"),
        None => format!("{root}/{name}"),
    }
}

async fn open_url(url: &str) -> Arc<dyn Storage> {
    match patchctl_storage::open(url).await {
        Ok(store) => store,
        Err(e) => panic!("open {url}: {e}"),
    }
}

/// Runs `case` to completion in its own task, cleans up, then re-raises its panic.
async fn run<Fut>(db: TestDb, case: Fut)
where
    Fut: Future<Output = ()> + Send + 'static,
{
    let outcome = tokio::spawn(case).await;
    db.cleanup().await;
    if let Err(e) = outcome {
        match e.try_into_panic() {
            Ok(p) => std::panic::resume_unwind(p),
            Err(e) => panic!("test task failed: {e}"),
        }
    }
}

/// Generates, for every case, a SQLite and a PostgreSQL test, and `conformance_tests`
/// registering them. `store` cases get an open store; `url` cases get the database URL
/// (to close and reopen it).
macro_rules! conformance {
    (
        store: { $($case:ident => $sqlite:ident, $postgres:ident;)* }
        url: { $($ucase:ident => $usqlite:ident, $upostgres:ident;)* }
    ) => {
        $(
            async fn $sqlite() {
                let db = TestDb::sqlite();
                let store = db.open().await;
                run(db, $case(store)).await;
            }

            async fn $postgres() {
                let db = TestDb::postgres(stringify!($postgres)).await;
                let store = db.open().await;
                run(db, $case(store)).await;
            }
        )*
        $(
            async fn $usqlite() {
                let db = TestDb::sqlite();
                let url = db.url.clone();
                run(db, $ucase(url)).await;
            }

            async fn $upostgres() {
                let db = TestDb::postgres(stringify!($upostgres)).await;
                let url = db.url.clone();
                run(db, $ucase(url)).await;
            }
        )*

        /// Every case on both backends (each on a runtime of 4 workers); the PostgreSQL
        /// half needs a server.
        fn conformance_tests() -> Vec<Test> {
            vec![
                $(
                    trial!(async $sqlite).multi_thread(Some(4)),
                    trial!(async $postgres).multi_thread(Some(4)).needs([Need::Postgres]),
                )*
                $(
                    trial!(async $usqlite).multi_thread(Some(4)),
                    trial!(async $upostgres).multi_thread(Some(4)).needs([Need::Postgres]),
                )*
            ]
        }
    };
}

conformance! {
    store: {
        case_webhook_fan_out => sqlite_case_webhook_fan_out, postgres_case_webhook_fan_out;
        case_webhook_lease_exclusive =>
            sqlite_case_webhook_lease_exclusive, postgres_case_webhook_lease_exclusive;
        case_webhook_backoff_bookkeeping =>
            sqlite_case_webhook_backoff_bookkeeping, postgres_case_webhook_backoff_bookkeeping;
        case_webhook_offline_sweep =>
            sqlite_case_webhook_offline_sweep, postgres_case_webhook_offline_sweep;
        case_missed_deadlines_once =>
            sqlite_case_missed_deadlines_once, postgres_case_missed_deadlines_once;
        case_new_findings_announced_once =>
            sqlite_case_new_findings_announced_once, postgres_case_new_findings_announced_once;
        case_first_seen_bulk_and_idempotent => sqlite_case_first_seen_bulk_and_idempotent, postgres_case_first_seen_bulk_and_idempotent;
        case_exceptions_expire_and_revoke => sqlite_case_exceptions_expire_and_revoke, postgres_case_exceptions_expire_and_revoke;
        case_deadline_policy => sqlite_case_deadline_policy, postgres_case_deadline_policy;
        case_users_owners_and_uniqueness => sqlite_case_users_owners_and_uniqueness, postgres_case_users_owners_and_uniqueness;
        case_token_scope_expiry_and_revocation => sqlite_case_token_scope_expiry_and_revocation, postgres_case_token_scope_expiry_and_revocation;
        case_orgs => sqlite_case_orgs, postgres_case_orgs;
        case_shared_rate_limits => sqlite_case_shared_rate_limits, postgres_case_shared_rate_limits;
        case_node_registry => sqlite_case_node_registry, postgres_case_node_registry;
        case_writes_announce_their_changes =>
            sqlite_case_writes_announce_their_changes, postgres_case_writes_announce_their_changes;
        case_failed_writes_announce_nothing =>
            sqlite_case_failed_writes_announce_nothing, postgres_case_failed_writes_announce_nothing;
        case_delta_chain_is_stored =>
            sqlite_case_delta_chain_is_stored, postgres_case_delta_chain_is_stored;
        case_groups_select_hosts => sqlite_case_groups_select_hosts, postgres_case_groups_select_hosts;
        case_approvals_rules_and_manifests =>
            sqlite_case_approvals_rules_and_manifests, postgres_case_approvals_rules_and_manifests;
        case_deployments => sqlite_case_deployments, postgres_case_deployments;
        case_windows_crud => sqlite_case_windows_crud, postgres_case_windows_crud;
        case_windows_go_with_their_group =>
            sqlite_case_windows_go_with_their_group, postgres_case_windows_go_with_their_group;
        case_tokens_and_keys => sqlite_case_tokens_and_keys, postgres_case_tokens_and_keys;
        case_hosts => sqlite_case_hosts, postgres_case_hosts;
        case_heartbeat_history => sqlite_case_heartbeat_history, postgres_case_heartbeat_history;
        case_host_list_page => sqlite_case_host_list_page, postgres_case_host_list_page;
        case_heartbeat_batch => sqlite_case_heartbeat_batch, postgres_case_heartbeat_batch;
        case_inventory_replaces => sqlite_case_inventory_replaces, postgres_case_inventory_replaces;
        case_inventory_large => sqlite_case_inventory_large, postgres_case_inventory_large;
        case_command_lifecycle => sqlite_case_command_lifecycle, postgres_case_command_lifecycle;
        case_command_expiry => sqlite_case_command_expiry, postgres_case_command_expiry;
        case_cancel => sqlite_case_cancel, postgres_case_cancel;
        case_unknown_result => sqlite_case_unknown_result, postgres_case_unknown_result;
        case_lease_order_and_max =>
            sqlite_case_lease_order_and_max, postgres_case_lease_order_and_max;
        case_concurrent_leases => sqlite_case_concurrent_leases, postgres_case_concurrent_leases;
        case_list_commands => sqlite_case_list_commands, postgres_case_list_commands;
        case_command_pages => sqlite_case_command_pages, postgres_case_command_pages;
        case_host_pages => sqlite_case_host_pages, postgres_case_host_pages;
        case_org_isolation => sqlite_case_org_isolation, postgres_case_org_isolation;
        case_scan_round_trip => sqlite_case_scan_round_trip, postgres_case_scan_round_trip;
        case_scan_touch => sqlite_case_scan_touch, postgres_case_scan_touch;
        case_scan_updates_org_isolation =>
            sqlite_case_scan_updates_org_isolation, postgres_case_scan_updates_org_isolation;
        case_inventory_clears_scan_digest =>
            sqlite_case_inventory_clears_scan_digest, postgres_case_inventory_clears_scan_digest;
        case_all_hosts => sqlite_case_all_hosts, postgres_case_all_hosts;
        case_vuln_import_is_idempotent =>
            sqlite_case_vuln_import_is_idempotent, postgres_case_vuln_import_is_idempotent;
        case_vuln_import_change =>
            sqlite_case_vuln_import_change, postgres_case_vuln_import_change;
        case_vuln_records_for => sqlite_case_vuln_records_for, postgres_case_vuln_records_for;
        case_vuln_sync_and_sources =>
            sqlite_case_vuln_sync_and_sources, postgres_case_vuln_sync_and_sources;
        case_vuln_import_large => sqlite_case_vuln_import_large, postgres_case_vuln_import_large;
        case_vuln_refuses_nul => sqlite_case_vuln_refuses_nul, postgres_case_vuln_refuses_nul;
        case_key_life_cycle => sqlite_case_key_life_cycle, postgres_case_key_life_cycle;
        case_enroll_checks_and_counts_the_key =>
            sqlite_case_enroll_checks_and_counts_the_key,
            postgres_case_enroll_checks_and_counts_the_key;
        case_concurrent_enrollments_respect_max_uses =>
            sqlite_case_concurrent_enrollments_respect_max_uses,
            postgres_case_concurrent_enrollments_respect_max_uses;
        case_key_rotation => sqlite_case_key_rotation, postgres_case_key_rotation;
        case_credential_rotation =>
            sqlite_case_credential_rotation, postgres_case_credential_rotation;
        case_approval => sqlite_case_approval, postgres_case_approval;
        case_org_settings => sqlite_case_org_settings, postgres_case_org_settings;
        case_releases_publish => sqlite_case_releases_publish, postgres_case_releases_publish;
        case_latest_release_in_version_order =>
            sqlite_case_latest_release_in_version_order,
            postgres_case_latest_release_in_version_order;
        case_agent_rollout => sqlite_case_agent_rollout, postgres_case_agent_rollout;
        case_update_events => sqlite_case_update_events, postgres_case_update_events;
        case_reboot_state => sqlite_case_reboot_state, postgres_case_reboot_state;
        case_heartbeat_stores_agent_target =>
            sqlite_case_heartbeat_stores_agent_target,
            postgres_case_heartbeat_stores_agent_target;
        case_audit_filters_and_paging =>
            sqlite_case_audit_filters_and_paging, postgres_case_audit_filters_and_paging;
        case_dashboard_command_lines =>
            sqlite_case_dashboard_command_lines, postgres_case_dashboard_command_lines;
        case_dashboard_active_host_ids =>
            sqlite_case_dashboard_active_host_ids, postgres_case_dashboard_active_host_ids;
        case_users_and_sessions =>
            sqlite_case_users_and_sessions, postgres_case_users_and_sessions;
        case_user_tokens => sqlite_case_user_tokens, postgres_case_user_tokens;
        case_last_owner_is_kept =>
            sqlite_case_last_owner_is_kept, postgres_case_last_owner_is_kept;
        case_audit_trail => sqlite_case_audit_trail, postgres_case_audit_trail;
        case_fleet_counts => sqlite_case_fleet_counts, postgres_case_fleet_counts;
    }
    url: {
        case_survives_reopen => sqlite_case_survives_reopen, postgres_case_survives_reopen;
        case_scan_failed_write_keeps_old_state =>
            sqlite_case_scan_failed_write_keeps_old_state,
            postgres_case_scan_failed_write_keeps_old_state;
        case_vuln_corrupt_record =>
            sqlite_case_vuln_corrupt_record, postgres_case_vuln_corrupt_record;
        case_trust_migration_keeps_old_data =>
            sqlite_case_trust_migration_keeps_old_data,
            postgres_case_trust_migration_keeps_old_data;
        case_audit_append_only =>
            sqlite_case_audit_append_only, postgres_case_audit_append_only;
        case_audit_is_append_only =>
            sqlite_case_audit_is_append_only, postgres_case_audit_is_append_only;
    }
}

// ---------------------------------------------------------------------------------
// Fixtures.

/// A time `secs` seconds after a fixed epoch (whole milliseconds, as stored).
fn t(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(1_700_000_000_000 + secs * 1000).expect("time")
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", Uuid::new_v4().simple())
}

fn system(hostname: &str) -> SystemInfo {
    SystemInfo {
        hostname: hostname.to_owned(),
        ips: vec!["192.0.2.10".into(), "2001:db8::10".into()],
        os: OsInfo {
            id: "debian".into(),
            id_like: vec![],
            version_id: "12".into(),
            version_codename: "bookworm".into(),
            pretty_name: "Debian GNU/Linux 12 (bookworm)".into(),
        },
        kernel: "6.1.0-28-amd64".into(),
        arch: "x86_64".into(),
        cpu_model: "Test CPU".into(),
        cpu_count: 4,
        mem_total_bytes: 8 << 30,
        disks: vec![DiskUsage {
            mount: "/".into(),
            fs_type: "ext4".into(),
            used_bytes: 10 << 30,
            total_bytes: 40 << 30,
        }],
        tags: vec!["web".into()],
    }
}

fn metrics(i: u64) -> Metrics {
    Metrics {
        cpu_percent: i as f32 * 1.5,
        load: [0.25, 0.5, i as f32],
        mem_used_bytes: 1000 + i,
        mem_total_bytes: 8 << 30,
        swap_used_bytes: 0,
        swap_total_bytes: 1 << 30,
        disks: vec![],
        uptime_secs: 100 + i,
    }
}

fn pkg(name: &str, version: &str, arch: &str) -> InstalledPackage {
    InstalledPackage {
        name: name.to_owned(),
        version: version.to_owned(),
        arch: arch.to_owned(),
        source_name: None,
        source_version: None,
        status: "installed".to_owned(),
    }
}

fn upload(hostname: &str, at: DateTime<Utc>, packages: Vec<InstalledPackage>) -> InventoryUpload {
    InventoryUpload {
        scanned_at: at,
        system: system(hostname),
        package_manager: Some("dpkg".to_owned()),
        packages,
    }
}

async fn org(store: &Arc<dyn Storage>, name: &str) -> Org {
    store.create_org(name, t(0)).await.expect("create_org")
}

/// Enrolls a host named `hostname` in `org` (with a fresh enrollment key); returns it
/// and its credential hash.
async fn host(store: &Arc<dyn Storage>, org: &Org, hostname: &str) -> (HostRow, String) {
    let key = store
        .create_enrollment_key(org.id, "key", &unique("keyhash"), t(0))
        .await
        .expect("create_enrollment_key");
    let credential_hash = unique("cred");
    let row = store
        .create_host(NewHost {
            org_id: org.id,
            enrollment_key_id: key.id,
            credential_hash: credential_hash.clone(),
            agent_version: "1.0.0".into(),
            system: system(hostname),
            now: t(1),
        })
        .await
        .expect("create_host");
    (row, credential_hash)
}

fn new_command(
    org: &Org,
    host: &HostRow,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> NewCommand {
    NewCommand {
        id: uuid::Uuid::new_v4(),
        signed: None,
        org_id: org.id,
        host_id: host.id,
        kind: "get_package_info".into(),
        params: json!({"name": "openssl"}),
        now,
        expires_at,
    }
}

fn result(id: Uuid, status: ResultStatus, summary: &str, at: DateTime<Utc>) -> CommandResult {
    CommandResult {
        command_id: id,
        status,
        summary: summary.to_owned(),
        started_at: at,
        finished_at: at,
        output: Some(ResultOutput::Health(HealthReport {
            agent_version: "1.0.0".into(),
            checks: vec![HealthItem {
                name: "disk:/".into(),
                status: HealthStatus::Ok,
                detail: "25% used".into(),
            }],
            failed_units: Some(vec!["nginx.service".into()]),
        })),
    }
}

const MINUTE: Duration = Duration::from_secs(60);

fn update(name: &str, from: Option<&str>, to: &str, security: bool) -> AvailableUpdate {
    AvailableUpdate {
        name: name.to_owned(),
        arch: "amd64".to_owned(),
        current_version: from.map(str::to_owned),
        candidate_version: to.to_owned(),
        origins: vec![if security {
            "Debian-Security:12/stable-security".to_owned()
        } else {
            "Debian:12.8/stable".to_owned()
        }],
        security,
        advisories: if security {
            vec![Advisory {
                id: format!("DSA-{name}"),
                kind: Some("security".into()),
                severity: Some("important".into()),
            }]
        } else {
            vec![]
        },
    }
}

/// Updates as a scan reports them: `openssl` (security), `curl`, and a new `linux-image`.
fn scan_updates() -> ScanUpdates {
    ScanUpdates {
        refreshed: true,
        // Deliberately unsorted: canonicalisation sorts.
        updates: vec![
            update("openssl", Some("3.0.14-1"), "3.0.15-1", true),
            update("curl", Some("7.88.1-10"), "7.88.1-10+deb12u8", false),
            update("linux-image-6.1.0-29-amd64", None, "6.1.123-1", false),
        ],
        removals: vec!["old-dkms".into()],
        error: None,
    }
}

/// A canonical scan state of host `hostname` and its digest. The packages cover every
/// shape a row can take: source name and version the binary's own or different, and
/// a state other than `installed`.
fn scan(
    hostname: &str,
    packages: &[(&str, &str)],
    updates: Option<ScanUpdates>,
) -> (String, ScanState) {
    let mut rows: Vec<PackageRow> = packages
        .iter()
        .map(|(n, v)| PackageRow::from_package(&pkg(n, v, "amd64")))
        .collect();
    let mut libc = pkg("libc6", "2.36-9+deb12u9", "amd64");
    libc.source_name = Some("glibc".into());
    rows.push(PackageRow::from_package(&libc));
    let mut half = pkg("broken", "1.0", "all");
    half.source_version = Some("1.0-src".into());
    half.status = "half-configured".into();
    rows.push(PackageRow::from_package(&half));
    let mut state = ScanState {
        system: system(hostname),
        package_manager: Some("dpkg".into()),
        packages: rows,
        updates,
    };
    state.canonicalize();
    (state.digest(), state)
}

/// The rows of `available_updates` of `host`: name and security flag, by name.
async fn update_index(url: &str, host: Uuid) -> Vec<(String, bool)> {
    const SQL: &str =
        "SELECT name, security FROM available_updates WHERE host_id = $1 ORDER BY name";
    if url.starts_with("sqlite") {
        let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::query_as(SQL)
            .bind(host.to_string())
            .fetch_all(&mut c)
            .await
            .unwrap()
    } else {
        let mut c = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query_as(SQL)
            .bind(host.to_string())
            .fetch_all(&mut c)
            .await
            .unwrap()
    }
}

// ---------------------------------------------------------------------------------
// Cases.

async fn case_orgs(store: Arc<dyn Storage>) {
    let acme = store.create_org("acme", t(0)).await.expect("create_org");
    assert_eq!(acme.name, "acme");
    assert_eq!(acme.created_at, t(0));
    assert_eq!(store.org_by_name("acme").await.unwrap(), Some(acme.clone()));
    match store.create_org("acme", t(1)).await {
        Err(StorageError::Conflict(what)) => {
            assert!(what.contains("\"acme\""), "{what}");
            assert!(what.contains("organisation"), "{what}");
        }
        other => panic!("duplicate organisation name: {other:?}"),
    }
    let other = store.create_org("other", t(2)).await.expect("second org");
    assert_ne!(other.id, acme.id);
    assert_eq!(store.org_by_name("other").await.unwrap(), Some(other));
    assert_eq!(store.org_by_name("nope").await.unwrap(), None);
    // The failed duplicate did not replace the original.
    assert_eq!(store.org_by_name("acme").await.unwrap(), Some(acme));
}

async fn case_tokens_and_keys(store: Arc<dyn Storage>) {
    let a = org(&store, "a").await;
    let b = org(&store, "b").await;

    let token = store
        .create_api_token(a.id, "ci", "tokenhash-1", t(5))
        .await
        .expect("create_api_token");
    assert_eq!(
        (token.org_id, token.name.as_str(), token.created_at),
        (a.id, "ci", t(5))
    );
    assert_eq!(
        store.api_token_by_hash("tokenhash-1").await.unwrap(),
        Some(token)
    );
    assert_eq!(store.api_token_by_hash("tokenhash-2").await.unwrap(), None);
    match store
        .create_api_token(b.id, "dup", "tokenhash-1", t(6))
        .await
    {
        Err(StorageError::Conflict(what)) => assert!(what.contains("API token"), "{what}"),
        other => panic!("duplicate token hash: {other:?}"),
    }

    let key = store
        .create_enrollment_key(a.id, "fleet", "keyhash-1", t(7))
        .await
        .expect("create_enrollment_key");
    assert_eq!(key.revoked_at, None);
    assert_eq!((key.expires_at, key.max_uses, key.uses), (None, None, 0));
    assert_eq!(key.state(t(1_000_000)), KeyState::Active);
    assert_eq!(
        store.enrollment_key_by_hash("keyhash-1").await.unwrap(),
        Some(key.clone())
    );
    assert_eq!(
        store.enrollment_key_by_hash("keyhash-x").await.unwrap(),
        None
    );
    match store
        .create_enrollment_key(a.id, "again", "keyhash-1", t(8))
        .await
    {
        Err(StorageError::Conflict(what)) => assert!(what.contains("enrollment key"), "{what}"),
        other => panic!("duplicate key hash: {other:?}"),
    }

    assert!(
        !store
            .revoke_enrollment_key(a.id, Uuid::new_v4(), t(9))
            .await
            .unwrap()
    );
    assert!(
        store
            .revoke_enrollment_key(a.id, key.id, t(9))
            .await
            .unwrap()
    );
    let revoked = store
        .enrollment_key_by_hash("keyhash-1")
        .await
        .unwrap()
        .expect("still found");
    assert_eq!(revoked.revoked_at, Some(t(9)));
    assert_eq!(revoked.state(t(9)), KeyState::Revoked);
    assert_eq!(revoked.id, key.id);
}

async fn case_hosts(store: Arc<dyn Storage>) {
    let a = org(&store, "a").await;
    let (web, cred) = host(&store, &a, "web1").await;
    assert_eq!(web.hostname, "web1");
    assert_eq!(web.system, system("web1"));
    assert_eq!(web.enrolled_at, t(1));
    assert_eq!(web.agent_version, "1.0.0");
    assert!(!web.revoked);
    assert_eq!(
        (web.last_seen, web.metrics.as_ref(), web.package_count),
        (None, None, 0)
    );
    assert_eq!(store.host(a.id, web.id).await.unwrap(), Some(web.clone()));
    assert_eq!(web.approval, Approval::Approved);
    assert_eq!(web.credential_issued_at, t(1));
    assert_eq!(
        store.host_by_credential(&cred).await.unwrap(),
        Some(HostAuth {
            host_id: web.id,
            org_id: a.id,
            revoked: false,
            approval: Approval::Approved,
            slot: CredentialSlot::Current,
        })
    );
    assert_eq!(store.host_by_credential("unknown").await.unwrap(), None);

    let (alpha, _) = host(&store, &a, "alpha").await;
    let (web_again, _) = host(&store, &a, "web1").await;
    let listed: Vec<Uuid> = store
        .list_hosts(a.id)
        .await
        .unwrap()
        .iter()
        .map(|h| h.id)
        .collect();
    assert_eq!(listed.len(), 3);
    assert_eq!(listed[0], alpha.id, "sorted by host name");
    let named: HashSet<Uuid> = store
        .hosts_by_name(a.id, "web1")
        .await
        .unwrap()
        .iter()
        .map(|h| h.id)
        .collect();
    assert_eq!(named, HashSet::from([web.id, web_again.id]));
    assert!(
        store
            .hosts_by_name(a.id, "nothing")
            .await
            .unwrap()
            .is_empty()
    );

    // A second host with the same credential hash is refused.
    let key = store
        .create_enrollment_key(a.id, "k", "khash", t(0))
        .await
        .unwrap();
    let dup = store
        .create_host(NewHost {
            org_id: a.id,
            enrollment_key_id: key.id,
            credential_hash: cred.clone(),
            agent_version: "1.0.0".into(),
            system: system("dup"),
            now: t(2),
        })
        .await;
    assert!(matches!(dup, Err(StorageError::Conflict(_))), "{dup:?}");

    assert!(!store.revoke_host(a.id, Uuid::new_v4()).await.unwrap());
    assert!(store.revoke_host(a.id, web.id).await.unwrap());
    let auth = store
        .host_by_credential(&cred)
        .await
        .unwrap()
        .expect("a revoked host's credential is still known (as revoked)");
    assert!(auth.revoked && !auth.accepted(), "{auth:?}");
    assert!(
        store
            .host(a.id, web.id)
            .await
            .unwrap()
            .expect("still listed")
            .revoked
    );
}

async fn case_heartbeat_history(store: Arc<dyn Storage>) {
    let a = org(&store, "a").await;
    let (h, _) = host(&store, &a, "web1").await;
    let len: u32 = 4;
    let n = 2 * len as i64 + 3;
    for i in 0..n {
        store
            .record_heartbeat(h.id, "1.2.3", &metrics(i as u64), t(10 + i), len)
            .await
            .expect("record_heartbeat");
    }
    let row = store.host(a.id, h.id).await.unwrap().expect("host");
    assert_eq!(row.last_seen, Some(t(10 + n - 1)));
    assert_eq!(row.metrics_at, Some(t(10 + n - 1)));
    assert_eq!(row.metrics, Some(metrics(n as u64 - 1)));
    assert_eq!(row.agent_version, "1.2.3");

    let history = store.metrics_history(a.id, h.id).await.unwrap();
    let want: Vec<(DateTime<Utc>, Metrics)> = (n - len as i64..n)
        .map(|i| (t(10 + i), metrics(i as u64)))
        .collect();
    assert_eq!(
        history.len(),
        len as usize,
        "history is bounded at history_len"
    );
    assert_eq!(history, want, "the newest entries, oldest first");

    // A shorter history: the ring wraps at the new length and the trim drops the rest.
    store
        .record_heartbeat(h.id, "1.2.3", &metrics(100), t(100), 2)
        .await
        .unwrap();
    assert!(store.trim_metrics_history(2).await.unwrap() > 0);
    let history = store.metrics_history(a.id, h.id).await.unwrap();
    assert_eq!(history.len(), 2, "{history:?}");
    assert_eq!(history.last(), Some(&(t(100), metrics(100))));
    assert!(history.windows(2).all(|w| w[0].0 <= w[1].0));

    // A heartbeat for a host that does not exist is an error, not a silent no-op.
    assert!(
        store
            .record_heartbeat(Uuid::new_v4(), "1", &metrics(0), t(1), len)
            .await
            .is_err()
    );
}

/// The dashboard's host list: filtered, sorted and paged in the database.
async fn case_host_list_page(store: Arc<dyn Storage>) {
    use patchctl_proto::api::HostStatus;
    use patchctl_storage::{HostListQuery, HostSort};
    let a = org(&store, "a").await;
    let b = org(&store, "b").await;
    let mut ids = std::collections::HashMap::new();
    for name in ["web2", "Web1", "db_1", "dbx1", "x%y", "gone"] {
        ids.insert(name, host(&store, &a, name).await.0.id);
    }
    host(&store, &b, "web9").await;
    // Seen: web2 at 100, Web1 at 50, db_1 at 10; the others never.
    for (name, at) in [("web2", 100), ("Web1", 50), ("db_1", 10)] {
        store
            .record_heartbeat(ids[name], "1.0.0", &metrics(1), t(at), 4)
            .await
            .unwrap();
    }
    assert!(store.revoke_host(a.id, ids["gone"]).await.unwrap());
    let names = |p: &patchctl_storage::HostListPage| {
        p.hosts
            .iter()
            .map(|h| h.hostname.clone())
            .collect::<Vec<_>>()
    };
    let q = |f: &dyn Fn(&mut HostListQuery)| {
        let mut q = HostListQuery {
            limit: 100,
            online_since: t(40),
            ..HostListQuery::default()
        };
        f(&mut q);
        q
    };
    let page = store.host_list_page(a.id, &q(&|_| ())).await.unwrap();
    assert_eq!(page.total, 6, "only the organisation's hosts");
    assert_eq!(
        names(&page),
        ["Web1", "db_1", "dbx1", "gone", "web2", "x%y"]
    );
    // Paging: the same order, cut.
    let p2 = store
        .host_list_page(
            a.id,
            &q(&|q| {
                q.limit = 2;
                q.offset = 2;
            }),
        )
        .await
        .unwrap();
    assert_eq!(
        (names(&p2), p2.total),
        (vec!["dbx1".into(), "gone".into()], 6)
    );
    // Search: case-insensitive substring; % and _ are text, not wildcards.
    for (text, want) in [
        ("WEB", vec!["Web1", "web2"]),
        ("%", vec!["x%y"]),
        ("_", vec!["db_1"]),
        ("nothing", vec![]),
    ] {
        let p = store
            .host_list_page(a.id, &q(&|q| q.search = Some(text.into())))
            .await
            .unwrap();
        assert_eq!(names(&p), want, "search {text:?}");
        assert_eq!(p.total, want.len() as u64);
    }
    // Status: online means seen since online_since; revoked hosts are only revoked.
    for (status, want) in [
        (HostStatus::Online, vec!["Web1", "web2"]),
        (HostStatus::Offline, vec!["db_1", "dbx1", "x%y"]),
        (HostStatus::Revoked, vec!["gone"]),
        (HostStatus::Pending, vec![]),
    ] {
        let p = store
            .host_list_page(a.id, &q(&|q| q.status = Some(status)))
            .await
            .unwrap();
        assert_eq!(names(&p), want, "status {status:?}");
    }
    // Most recently seen first, never seen last (by name).
    let p = store
        .host_list_page(a.id, &q(&|q| q.sort = HostSort::LastSeen))
        .await
        .unwrap();
    assert_eq!(names(&p), ["web2", "Web1", "db_1", "dbx1", "gone", "x%y"]);
    // The overview's counts: web2 and Web1 online, three offline, one revoked.
    let c = store.fleet_counts(a.id, t(40)).await.unwrap();
    assert_eq!(
        (c.online, c.offline, c.pending, c.revoked),
        (2, 3, 0, 1),
        "{c:?}"
    );
    assert_eq!((c.updates, c.hosts_with_updates), (0, 0));
    assert_eq!(c.agent_versions, [("1.0.0".to_owned(), 5)]);
    // No inventory yet: no package manager to filter by, and filtering finds nothing.
    assert!(store.host_package_managers(a.id).await.unwrap().is_empty());
    let p = store
        .host_list_page(a.id, &q(&|q| q.package_manager = Some("apt".into())))
        .await
        .unwrap();
    assert_eq!(p.total, 0);
}

async fn case_heartbeat_batch(store: Arc<dyn Storage>) {
    use patchctl_storage::HeartbeatWrite;
    let a = org(&store, "a").await;
    let (h1, _) = host(&store, &a, "one").await;
    let (h2, _) = host(&store, &a, "two").await;
    let (h3, _) = host(&store, &a, "three").await;
    store
        .queue_command(new_command(&a, &h2, t(0), t(3600)))
        .await
        .unwrap();
    let w = |h: Uuid, i: u64| HeartbeatWrite {
        host_id: h,
        agent_version: format!("v{i}"),
        agent_target: None,
        metrics: metrics(i),
        at: t(i as i64),
        reboot: Default::default(),
    };
    // h1 twice (the last wins), h2 with a queued command, an unknown host, h3.
    let batch = vec![
        w(h1.id, 1),
        w(h2.id, 2),
        w(Uuid::new_v4(), 3),
        w(h1.id, 4),
        w(h3.id, 5),
    ];
    let out = store.record_heartbeats(&batch, 4).await.unwrap();
    assert_eq!(out.updated, 3, "three distinct known hosts");
    assert_eq!(
        out.pending_commands,
        vec![h2.id],
        "only h2 has a queued command"
    );
    let r1 = store.host(a.id, h1.id).await.unwrap().unwrap();
    assert_eq!(
        (r1.last_seen, r1.agent_version.as_str()),
        (Some(t(4)), "v4")
    );
    assert_eq!(r1.metrics, Some(metrics(4)));
    assert_eq!(
        store.metrics_history(a.id, h1.id).await.unwrap(),
        vec![(t(4), metrics(4))]
    );
    let r3 = store.host(a.id, h3.id).await.unwrap().unwrap();
    assert_eq!(r3.last_seen, Some(t(5)));
    // A second batch extends each host's ring.
    let out = store
        .record_heartbeats(&[w(h1.id, 6), w(h3.id, 7)], 4)
        .await
        .unwrap();
    assert_eq!(out.updated, 2);
    assert!(out.pending_commands.is_empty());
    assert_eq!(
        store.metrics_history(a.id, h1.id).await.unwrap(),
        vec![(t(4), metrics(4)), (t(6), metrics(6))]
    );
    // An empty batch is fine; zero history keeps none.
    assert_eq!(store.record_heartbeats(&[], 4).await.unwrap().updated, 0);
    store.record_heartbeats(&[w(h2.id, 8)], 0).await.unwrap();
    assert!(store.metrics_history(a.id, h2.id).await.unwrap().len() <= 1);
}

async fn case_inventory_replaces(store: Arc<dyn Storage>) {
    let a = org(&store, "a").await;
    let (h, _) = host(&store, &a, "web1").await;
    let (other, _) = host(&store, &a, "other").await;
    let mut libc = pkg("libc6", "2.36-9+deb12u9", "amd64");
    libc.source_name = Some("glibc".into());
    libc.source_version = Some("2.36-9+deb12u9".into());
    let first = vec![
        pkg("zlib1g", "1:1.2.13.dfsg-1", "amd64"),
        libc.clone(),
        pkg("libc6", "2.36-9+deb12u9", "i386"),
    ];
    assert_eq!(
        store
            .put_inventory(h.id, &upload("web1-renamed", t(20), first))
            .await
            .unwrap(),
        3
    );
    let got = store.host_packages(a.id, h.id).await.unwrap();
    let names: Vec<(&str, &str)> = got
        .iter()
        .map(|p| (p.name.as_str(), p.arch.as_str()))
        .collect();
    assert_eq!(
        names,
        [("libc6", "amd64"), ("libc6", "i386"), ("zlib1g", "amd64")]
    );
    assert_eq!(got[0], libc, "source fields round-trip");
    let row = store.host(a.id, h.id).await.unwrap().unwrap();
    assert_eq!(row.hostname, "web1-renamed");
    assert_eq!(row.system, system("web1-renamed"));
    assert_eq!(row.package_count, 3);
    assert_eq!(row.package_manager.as_deref(), Some("dpkg"));
    assert_eq!(row.inventory_scanned_at, Some(t(20)));

    store
        .put_inventory(
            other.id,
            &upload("other", t(20), vec![pkg("bash", "5.2", "amd64")]),
        )
        .await
        .unwrap();

    let mut second = upload(
        "web1",
        t(30),
        vec![
            pkg("openssl", "3.0.15", "amd64"),
            pkg("apt", "2.6.1", "amd64"),
        ],
    );
    second.package_manager = None;
    assert_eq!(store.put_inventory(h.id, &second).await.unwrap(), 2);
    let got = store.host_packages(a.id, h.id).await.unwrap();
    assert_eq!(
        got,
        vec![
            pkg("apt", "2.6.1", "amd64"),
            pkg("openssl", "3.0.15", "amd64")
        ]
    );
    let row = store.host(a.id, h.id).await.unwrap().unwrap();
    assert_eq!((row.hostname.as_str(), row.package_count), ("web1", 2));
    assert_eq!(row.package_manager, None);
    assert_eq!(row.inventory_scanned_at, Some(t(30)));

    // Another host's inventory is untouched; an unknown host is an error.
    assert_eq!(
        store.host_packages(a.id, other.id).await.unwrap(),
        vec![pkg("bash", "5.2", "amd64")]
    );
    assert!(store.put_inventory(Uuid::new_v4(), &second).await.is_err());
    assert_eq!(store.host_packages(a.id, h.id).await.unwrap().len(), 2);
}

async fn case_inventory_large(store: Arc<dyn Storage>) {
    let a = org(&store, "a").await;
    let (h, _) = host(&store, &a, "big").await;
    let packages: Vec<InstalledPackage> = (0..5000)
        .rev()
        .map(|i| {
            let mut p = pkg(
                &format!("pkg-{i:05}"),
                &format!("1.{i}-1"),
                if i % 3 == 0 { "all" } else { "amd64" },
            );
            if i % 2 == 0 {
                p.source_name = Some(format!("src-{i}"));
                p.source_version = Some(format!("1.{i}"));
            }
            p
        })
        .collect();
    let n = store
        .put_inventory(h.id, &upload("big", t(5), packages.clone()))
        .await
        .unwrap();
    assert_eq!(n, 5000);
    let mut want = packages;
    want.sort_by(|x, y| (&x.name, &x.arch).cmp(&(&y.name, &y.arch)));
    let got = store.host_packages(a.id, h.id).await.unwrap();
    assert_eq!(got.len(), 5000);
    assert_eq!(got, want);
    assert_eq!(
        store.host(a.id, h.id).await.unwrap().unwrap().package_count,
        5000
    );
}

async fn case_command_lifecycle(store: Arc<dyn Storage>) {
    let a = org(&store, "a").await;
    let (h, _) = host(&store, &a, "web1").await;
    let queued = store
        .queue_command(new_command(&a, &h, t(0), t(3600)))
        .await
        .unwrap();
    assert_eq!(queued.state, CommandState::Queued);
    assert_eq!(
        (queued.deliveries, queued.created_at, queued.expires_at),
        (0, t(0), t(3600))
    );
    assert_eq!(queued.events.len(), 1);
    assert_eq!(
        store.command(a.id, queued.id).await.unwrap(),
        Some(queued.clone())
    );

    let leased = store.lease_commands(h.id, t(10), MINUTE, 10).await.unwrap();
    assert_eq!(leased.len(), 1);
    assert_eq!(leased[0].id, queued.id);
    assert_eq!(leased[0].kind, "get_package_info");
    assert_eq!(leased[0].params, json!({"name": "openssl"}));
    assert_eq!(leased[0].queued_at, t(0));
    let rec = store.command(a.id, queued.id).await.unwrap().unwrap();
    assert_eq!(
        (rec.state, rec.deliveries, rec.updated_at),
        (CommandState::Delivered, 1, t(10))
    );

    // Leased: not handed out again until the lease runs out (t(70)).
    assert!(
        store
            .lease_commands(h.id, t(20), MINUTE, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .lease_commands(h.id, t(70), MINUTE, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let again = store.lease_commands(h.id, t(71), MINUTE, 10).await.unwrap();
    assert_eq!(again.iter().map(|e| e.id).collect::<Vec<_>>(), [queued.id]);
    assert_eq!(
        store
            .command(a.id, queued.id)
            .await
            .unwrap()
            .unwrap()
            .deliveries,
        2
    );

    let res = result(
        queued.id,
        ResultStatus::Succeeded,
        "openssl 3.0.15 installed",
        t(75),
    );
    assert_eq!(
        store.record_result(h.id, &res, t(80)).await.unwrap(),
        RecordOutcome::Stored
    );
    let done = store.command(a.id, queued.id).await.unwrap().unwrap();
    assert_eq!(done.state, CommandState::Succeeded);
    assert_eq!(done.result.as_ref(), Some(&res));
    assert_eq!(done.updated_at, t(80));

    let other = result(queued.id, ResultStatus::Failed, "something else", t(85));
    assert_eq!(
        store.record_result(h.id, &other, t(90)).await.unwrap(),
        RecordOutcome::Duplicate
    );
    let after = store.command(a.id, queued.id).await.unwrap().unwrap();
    assert_eq!(after, done, "a duplicate result changes nothing");

    let states: Vec<CommandState> = after.events.iter().map(|e| e.state).collect();
    assert_eq!(
        states,
        [
            CommandState::Queued,
            CommandState::Delivered,
            CommandState::Delivered,
            CommandState::Succeeded
        ]
    );
    let times: Vec<DateTime<Utc>> = after.events.iter().map(|e| e.at).collect();
    assert_eq!(times, [t(0), t(10), t(71), t(80)]);
    assert!(times.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(after.events[1].detail, "delivered (attempt 1)");
    assert_eq!(after.events[2].detail, "delivered (attempt 2)");
    assert_eq!(after.events[3].detail, "openssl 3.0.15 installed");

    // Finished commands are never delivered again.
    assert!(
        store
            .lease_commands(h.id, t(1000), MINUTE, 10)
            .await
            .unwrap()
            .is_empty()
    );

    // A rejected result with a long summary: state follows the status, the event
    // detail is cut to 1000 characters.
    let c2 = store
        .queue_command(new_command(&a, &h, t(100), t(3600)))
        .await
        .unwrap();
    store
        .lease_commands(h.id, t(101), MINUTE, 10)
        .await
        .unwrap();
    let long = "é".repeat(3000);
    let rej = result(c2.id, ResultStatus::Rejected, &long, t(102));
    assert_eq!(
        store.record_result(h.id, &rej, t(103)).await.unwrap(),
        RecordOutcome::Stored
    );
    let rec = store.command(a.id, c2.id).await.unwrap().unwrap();
    assert_eq!(rec.state, CommandState::Rejected);
    assert_eq!(
        rec.result.as_ref().map(|r| r.summary.len()),
        Some(long.len())
    );
    let last = rec.events.last().unwrap();
    assert_eq!(
        (last.state, last.detail.chars().count()),
        (CommandState::Rejected, 1000)
    );
}

async fn case_command_expiry(store: Arc<dyn Storage>) {
    let a = org(&store, "a").await;
    let (h, _) = host(&store, &a, "web1").await;
    // Undelivered past its expiry: expires instead of being delivered.
    let c1 = store
        .queue_command(new_command(&a, &h, t(0), t(30)))
        .await
        .unwrap();
    // Delivered, lease lapsed, then past expiry: expires too.
    let c2 = store
        .queue_command(new_command(&a, &h, t(1), t(100)))
        .await
        .unwrap();
    let first = store
        .lease_commands(h.id, t(10), Duration::from_secs(30), 1)
        .await
        .unwrap();
    assert_eq!(first.iter().map(|e| e.id).collect::<Vec<_>>(), [c1.id]);
    // c1 is delivered, leased until t(40) and expires at t(30); c2 is still queued.
    // At t(31) c1's lease still holds, so c1 stays delivered; c2 is delivered.
    let second = store
        .lease_commands(h.id, t(31), Duration::from_secs(30), 10)
        .await
        .unwrap();
    assert_eq!(second.iter().map(|e| e.id).collect::<Vec<_>>(), [c2.id]);
    assert_eq!(
        store.command(a.id, c1.id).await.unwrap().unwrap().state,
        CommandState::Delivered
    );
    // At t(41) c1's lease has lapsed and it is past its expiry: expired, not redelivered.
    assert!(
        store
            .lease_commands(h.id, t(41), MINUTE, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let rec1 = store.command(a.id, c1.id).await.unwrap().unwrap();
    assert_eq!(rec1.state, CommandState::Expired);
    assert_eq!(rec1.updated_at, t(41));
    let last = rec1.events.last().unwrap();
    assert_eq!(
        (last.state, last.at, last.detail.as_str()),
        (
            CommandState::Expired,
            t(41),
            "not delivered before it expired"
        )
    );

    // A never-delivered command past its expiry.
    let c3 = store
        .queue_command(new_command(&a, &h, t(50), t(60)))
        .await
        .unwrap();
    assert!(
        store
            .lease_commands(h.id, t(61), MINUTE, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let rec3 = store.command(a.id, c3.id).await.unwrap().unwrap();
    assert_eq!(rec3.state, CommandState::Expired);
    assert_eq!(rec3.deliveries, 0);
    let states: Vec<CommandState> = rec3.events.iter().map(|e| e.state).collect();
    assert_eq!(states, [CommandState::Queued, CommandState::Expired]);
    assert_eq!(
        store.cancel_command(a.id, c3.id, t(62)).await.unwrap(),
        CancelOutcome::NotCancellable(CommandState::Expired)
    );

    // A late result for an expired command is still stored.
    let late = result(c1.id, ResultStatus::Succeeded, "done late", t(42));
    assert_eq!(
        store.record_result(h.id, &late, t(43)).await.unwrap(),
        RecordOutcome::Stored
    );
    assert_eq!(
        store.command(a.id, c1.id).await.unwrap().unwrap().state,
        CommandState::Succeeded
    );
    assert_eq!(
        store.record_result(h.id, &late, t(44)).await.unwrap(),
        RecordOutcome::Duplicate
    );
    // c2 (delivered, lease until t(61), expires t(100)) is untouched by all this.
    assert_eq!(
        store.command(a.id, c2.id).await.unwrap().unwrap().state,
        CommandState::Delivered
    );
}

async fn case_cancel(store: Arc<dyn Storage>) {
    let a = org(&store, "a").await;
    let (h, _) = host(&store, &a, "web1").await;
    let c = store
        .queue_command(new_command(&a, &h, t(0), t(3600)))
        .await
        .unwrap();
    assert_eq!(
        store.cancel_command(a.id, c.id, t(5)).await.unwrap(),
        CancelOutcome::Cancelled
    );
    assert_eq!(
        store.cancel_command(a.id, c.id, t(6)).await.unwrap(),
        CancelOutcome::NotCancellable(CommandState::Cancelled)
    );
    assert!(
        store
            .lease_commands(h.id, t(10), MINUTE, 10)
            .await
            .unwrap()
            .is_empty(),
        "cancelled command leased"
    );
    let rec = store.command(a.id, c.id).await.unwrap().unwrap();
    assert_eq!(
        (rec.state, rec.deliveries, rec.updated_at),
        (CommandState::Cancelled, 0, t(5))
    );
    let states: Vec<CommandState> = rec.events.iter().map(|e| e.state).collect();
    assert_eq!(states, [CommandState::Queued, CommandState::Cancelled]);
    let res = result(c.id, ResultStatus::Succeeded, "ran anyway", t(11));
    assert_eq!(
        store.record_result(h.id, &res, t(12)).await.unwrap(),
        RecordOutcome::Duplicate
    );
    assert_eq!(store.command(a.id, c.id).await.unwrap().unwrap(), rec);

    let d = store
        .queue_command(new_command(&a, &h, t(20), t(3600)))
        .await
        .unwrap();
    assert_eq!(
        store
            .lease_commands(h.id, t(21), MINUTE, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        store.cancel_command(a.id, d.id, t(22)).await.unwrap(),
        CancelOutcome::NotCancellable(CommandState::Delivered)
    );
    assert_eq!(
        store
            .cancel_command(a.id, Uuid::new_v4(), t(23))
            .await
            .unwrap(),
        CancelOutcome::NotFound
    );
}

async fn case_unknown_result(store: Arc<dyn Storage>) {
    let a = org(&store, "a").await;
    let (h1, _) = host(&store, &a, "one").await;
    let (h2, _) = host(&store, &a, "two").await;
    let res = result(Uuid::new_v4(), ResultStatus::Succeeded, "?", t(1));
    assert_eq!(
        store.record_result(h1.id, &res, t(2)).await.unwrap(),
        RecordOutcome::UnknownCommand
    );

    // A command is answered only by its own host.
    let c = store
        .queue_command(new_command(&a, &h1, t(0), t(3600)))
        .await
        .unwrap();
    store.lease_commands(h1.id, t(1), MINUTE, 10).await.unwrap();
    let res = result(c.id, ResultStatus::Succeeded, "not mine", t(2));
    assert_eq!(
        store.record_result(h2.id, &res, t(3)).await.unwrap(),
        RecordOutcome::UnknownCommand
    );
    let rec = store.command(a.id, c.id).await.unwrap().unwrap();
    assert_eq!((rec.state, rec.result), (CommandState::Delivered, None));
}

async fn case_lease_order_and_max(store: Arc<dyn Storage>) {
    let a = org(&store, "a").await;
    let (h, _) = host(&store, &a, "web1").await;
    let (other, _) = host(&store, &a, "other").await;
    // Queued out of order: delivery follows created_at, not insertion.
    let c2 = store
        .queue_command(new_command(&a, &h, t(2), t(3600)))
        .await
        .unwrap();
    let c0 = store
        .queue_command(new_command(&a, &h, t(0), t(3600)))
        .await
        .unwrap();
    let c1 = store
        .queue_command(new_command(&a, &h, t(1), t(3600)))
        .await
        .unwrap();
    let x = store
        .queue_command(new_command(&a, &other, t(0), t(3600)))
        .await
        .unwrap();

    assert!(
        store
            .lease_commands(h.id, t(5), MINUTE, 0)
            .await
            .unwrap()
            .is_empty()
    );
    let first: Vec<Uuid> = store
        .lease_commands(h.id, t(5), MINUTE, 2)
        .await
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(first, [c0.id, c1.id]);
    let second: Vec<Uuid> = store
        .lease_commands(h.id, t(6), MINUTE, 2)
        .await
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(second, [c2.id]);
    assert!(
        store
            .lease_commands(h.id, t(7), MINUTE, 2)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.command(a.id, x.id).await.unwrap().unwrap().state,
        CommandState::Queued,
        "another host's command"
    );
    let theirs: Vec<Uuid> = store
        .lease_commands(other.id, t(8), MINUTE, 5)
        .await
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(theirs, [x.id]);
}

async fn case_concurrent_leases(store: Arc<dyn Storage>) {
    let a = org(&store, "a").await;
    let (h, _) = host(&store, &a, "web1").await;
    let mut all = HashSet::new();
    for i in 0..20 {
        all.insert(
            store
                .queue_command(new_command(&a, &h, t(i), t(3600)))
                .await
                .unwrap()
                .id,
        );
    }
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(
                async move { store.lease_commands(h.id, t(100), MINUTE, 5).await.unwrap() },
            )
        })
        .collect();
    let mut seen = Vec::new();
    for task in tasks {
        seen.extend(task.await.unwrap().into_iter().map(|e| e.id));
    }
    seen.extend(
        store
            .lease_commands(h.id, t(101), MINUTE, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.id),
    );
    let unique: HashSet<Uuid> = seen.iter().copied().collect();
    assert_eq!(
        unique.len(),
        seen.len(),
        "a command was leased twice within its lease"
    );
    assert_eq!(unique, all);
    for id in all {
        assert_eq!(
            store.command(a.id, id).await.unwrap().unwrap().deliveries,
            1
        );
    }
}

async fn case_list_commands(store: Arc<dyn Storage>) {
    let a = org(&store, "a").await;
    let (h1, _) = host(&store, &a, "one").await;
    let (h2, _) = host(&store, &a, "two").await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let h = if i % 2 == 0 { &h1 } else { &h2 };
        ids.push(
            store
                .queue_command(new_command(&a, h, t(i), t(3600)))
                .await
                .unwrap()
                .id,
        );
    }
    store
        .lease_commands(h1.id, t(10), MINUTE, 10)
        .await
        .unwrap();
    let res = result(ids[0], ResultStatus::Failed, "dpkg lock held", t(11));
    store.record_result(h1.id, &res, t(12)).await.unwrap();

    let all = store.list_commands(a.id, None, 10).await.unwrap();
    let listed: Vec<Uuid> = all.iter().map(|c| c.id).collect();
    assert_eq!(
        listed,
        ids.iter().rev().copied().collect::<Vec<_>>(),
        "newest first"
    );
    for rec in &all {
        assert_eq!(
            Some(rec),
            store.command(a.id, rec.id).await.unwrap().as_ref(),
            "list matches command()"
        );
    }
    let oldest = all.last().unwrap();
    assert_eq!(oldest.result.as_ref(), Some(&res));
    assert_eq!(oldest.events.len(), 3);
    assert_eq!(all[0].events.len(), 2, "queued + delivered");
    assert_eq!(all[1].events.len(), 1, "h2's command: queued only");

    let two: Vec<Uuid> = store
        .list_commands(a.id, None, 2)
        .await
        .unwrap()
        .iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(two, [ids[4], ids[3]]);
    let of_h1: Vec<Uuid> = store
        .list_commands(a.id, Some(h1.id), 10)
        .await
        .unwrap()
        .iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(of_h1, [ids[4], ids[2], ids[0]]);
    assert!(store.list_commands(a.id, None, 0).await.unwrap().is_empty());
}

/// Keyset pages of commands: newest first, ties of the creation time broken by id,
/// every command exactly once, one host's alone, none of another organisation.
async fn case_command_pages(store: Arc<dyn Storage>) {
    let a = org(&store, "a").await;
    let b = org(&store, "b").await;
    let (h1, _) = host(&store, &a, "one").await;
    let (h2, _) = host(&store, &a, "two").await;
    let (hb, _) = host(&store, &b, "other").await;
    // 7 commands, several created at the same millisecond.
    for i in 0..7 {
        let h = if i % 3 == 0 { &h2 } else { &h1 };
        store
            .queue_command(new_command(&a, h, t(i / 2), t(3600)))
            .await
            .unwrap();
    }
    store
        .queue_command(new_command(&b, &hb, t(1), t(3600)))
        .await
        .unwrap();
    let all = store.list_commands(a.id, None, 100).await.unwrap();
    assert_eq!(all.len(), 7);
    for host_id in [None, Some(h1.id)] {
        let want: Vec<Uuid> = all
            .iter()
            .filter(|c| host_id.is_none_or(|h| c.host_id == h))
            .map(|c| c.id)
            .collect();
        for limit in [1, 2, 3, 7, 8] {
            let mut got = Vec::new();
            let mut before = None;
            loop {
                let page = store
                    .list_commands_page(a.id, host_id, before, limit)
                    .await
                    .unwrap();
                assert!(page.len() <= limit as usize);
                got.extend(page.iter().map(|c| c.id));
                match page.last() {
                    Some(last) if page.len() == limit as usize => {
                        before = Some((last.created_at, last.id));
                    }
                    _ => break,
                }
            }
            assert_eq!(got, want, "limit {limit}, host {host_id:?}");
        }
    }
    let first = store.list_commands_page(a.id, None, None, 3).await.unwrap();
    assert_eq!(
        first,
        all[..3].to_vec(),
        "a page is what list_commands shows"
    );
}

/// Keyset pages of hosts: by host name then id (two hosts share a name), every host
/// exactly once, none of another organisation.
async fn case_host_pages(store: Arc<dyn Storage>) {
    let a = org(&store, "a").await;
    let b = org(&store, "b").await;
    for name in ["web-2", "db", "web-1", "web-1", "app", "zz", "db"] {
        host(&store, &a, name).await;
    }
    host(&store, &b, "other").await;
    let all = store.list_hosts(a.id).await.unwrap();
    assert_eq!(all.len(), 7);
    for limit in [1, 2, 3, 7, 8] {
        let mut got = Vec::new();
        let mut after = None;
        loop {
            let page = store.list_hosts_page(a.id, after, limit).await.unwrap();
            assert!(page.len() <= limit as usize);
            got.extend(page.iter().cloned());
            match page.last() {
                Some(last) if page.len() == limit as usize => {
                    after = Some((last.hostname.clone(), last.id));
                }
                _ => break,
            }
        }
        assert_eq!(got, all, "limit {limit}");
    }
}

async fn case_org_isolation(store: Arc<dyn Storage>) {
    let a = org(&store, "a").await;
    let b = org(&store, "b").await;
    let (ha, cred_a) = host(&store, &a, "shared-name").await;
    let (hb, _) = host(&store, &b, "shared-name").await;
    let key_a = store
        .create_enrollment_key(a.id, "a-key", "a-keyhash", t(0))
        .await
        .unwrap();
    store
        .record_heartbeat(ha.id, "1", &metrics(1), t(5), 10)
        .await
        .unwrap();
    store
        .put_inventory(
            ha.id,
            &upload("shared-name", t(6), vec![pkg("bash", "5", "amd64")]),
        )
        .await
        .unwrap();
    let cmd_a = store
        .queue_command(new_command(&a, &ha, t(7), t(3600)))
        .await
        .unwrap();

    assert_eq!(store.host(b.id, ha.id).await.unwrap(), None);
    let b_named: Vec<Uuid> = store
        .hosts_by_name(b.id, "shared-name")
        .await
        .unwrap()
        .iter()
        .map(|h| h.id)
        .collect();
    assert_eq!(b_named, [hb.id]);
    let b_hosts: Vec<Uuid> = store
        .list_hosts(b.id)
        .await
        .unwrap()
        .iter()
        .map(|h| h.id)
        .collect();
    assert_eq!(b_hosts, [hb.id]);
    assert!(store.host_packages(b.id, ha.id).await.unwrap().is_empty());
    assert!(store.metrics_history(b.id, ha.id).await.unwrap().is_empty());
    assert_eq!(store.command(b.id, cmd_a.id).await.unwrap(), None);
    assert!(
        store
            .list_commands(b.id, None, 100)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .list_commands(b.id, Some(ha.id), 100)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.cancel_command(b.id, cmd_a.id, t(8)).await.unwrap(),
        CancelOutcome::NotFound
    );
    assert!(!store.revoke_host(b.id, ha.id).await.unwrap());
    assert!(
        !store
            .revoke_enrollment_key(b.id, key_a.id, t(8))
            .await
            .unwrap()
    );
    assert_eq!(store.enrollment_key(b.id, key_a.id).await.unwrap(), None);
    assert!(
        store
            .list_enrollment_keys(b.id)
            .await
            .unwrap()
            .iter()
            .all(|k| k.org_id == b.id)
    );
    assert_eq!(
        store
            .rotate_enrollment_key(b.id, key_a.id, "b-steals", t(8), t(8))
            .await
            .unwrap(),
        KeyRotation::NotFound
    );
    assert_eq!(
        store.set_approval(b.id, ha.id, false).await.unwrap(),
        ApprovalChange::NotFound
    );
    // B cannot queue a command for A's host.
    assert!(
        store
            .queue_command(new_command(&b, &ha, t(9), t(3600)))
            .await
            .is_err()
    );

    // A's things are intact and visible to A.
    assert_eq!(
        store
            .host_by_credential(&cred_a)
            .await
            .unwrap()
            .map(|x| x.org_id),
        Some(a.id)
    );
    assert_eq!(
        store
            .enrollment_key_by_hash("a-keyhash")
            .await
            .unwrap()
            .unwrap()
            .revoked_at,
        None
    );
    assert!(
        store
            .host_by_credential(&cred_a)
            .await
            .unwrap()
            .unwrap()
            .accepted()
    );
    assert_eq!(
        store.command(a.id, cmd_a.id).await.unwrap().unwrap().state,
        CommandState::Queued
    );
    assert_eq!(store.list_commands(a.id, None, 100).await.unwrap().len(), 1);
    assert_eq!(store.host_packages(a.id, ha.id).await.unwrap().len(), 1);
    assert_eq!(store.metrics_history(a.id, ha.id).await.unwrap().len(), 1);
    assert!(store.host(a.id, ha.id).await.unwrap().is_some());
}

async fn case_survives_reopen(url: String) {
    let (org_id, host_id, cmd_id, cred) = {
        let store = open_url(&url).await;
        let a = org(&store, "durable").await;
        let (h, cred) = host(&store, &a, "web1").await;
        store
            .create_api_token(a.id, "t", "durable-token", t(0))
            .await
            .unwrap();
        store
            .record_heartbeat(h.id, "2.0.0", &metrics(7), t(10), 5)
            .await
            .unwrap();
        store
            .put_inventory(
                h.id,
                &upload("web1", t(11), vec![pkg("bash", "5", "amd64")]),
            )
            .await
            .unwrap();
        let c = store
            .queue_command(new_command(&a, &h, t(12), t(3600)))
            .await
            .unwrap();
        store.lease_commands(h.id, t(13), MINUTE, 10).await.unwrap();
        (a.id, h.id, c.id, cred)
    };
    // Let the dropped pools close their connections.
    tokio::time::sleep(Duration::from_millis(200)).await;

    let store = open_url(&url).await;
    assert_eq!(
        store.org_by_name("durable").await.unwrap().map(|o| o.id),
        Some(org_id)
    );
    assert!(
        store
            .api_token_by_hash("durable-token")
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        store
            .host_by_credential(&cred)
            .await
            .unwrap()
            .map(|x| x.host_id),
        Some(host_id)
    );
    let row = store.host(org_id, host_id).await.unwrap().unwrap();
    assert_eq!(
        (row.metrics, row.last_seen, row.package_count),
        (Some(metrics(7)), Some(t(10)), 1)
    );
    assert_eq!(
        store.metrics_history(org_id, host_id).await.unwrap(),
        [(t(10), metrics(7))]
    );
    assert_eq!(
        store.host_packages(org_id, host_id).await.unwrap(),
        [pkg("bash", "5", "amd64")]
    );
    let rec = store.command(org_id, cmd_id).await.unwrap().unwrap();
    assert_eq!(
        (rec.state, rec.deliveries, rec.events.len()),
        (CommandState::Delivered, 1, 2)
    );
    // And the reopened store keeps working.
    store
        .record_heartbeat(host_id, "2.0.1", &metrics(8), t(20), 5)
        .await
        .unwrap();
    assert_eq!(
        store.metrics_history(org_id, host_id).await.unwrap().len(),
        2
    );
}

// ---------------------------------------------------------------------------------
// Backend-independent tests.

async fn unsupported_url_names_the_supported_schemes() {
    match patchctl_storage::open("mysql://x").await {
        Err(e @ StorageError::UnsupportedUrl(_)) => {
            let msg = e.to_string();
            assert!(msg.contains("sqlite://"), "{msg}");
            assert!(msg.contains("postgres://"), "{msg}");
            assert!(msg.contains("mysql"), "{msg}");
        }
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("mysql:// opened"),
    }
}

async fn sqlite_accepts_both_url_forms_and_creates_the_file() {
    let dir = tempfile::tempdir().unwrap();
    for (i, prefix) in ["sqlite://", "sqlite:"].into_iter().enumerate() {
        let path = dir.path().join(format!("db{i}.sqlite"));
        assert!(!path.exists());
        let store = open_url(&format!("{prefix}{}", path.display())).await;
        store.create_org("x", t(0)).await.unwrap();
        assert!(path.exists(), "{prefix} did not create {}", path.display());
    }
}

async fn sqlite_in_memory_works() {
    let store = open_url("sqlite::memory:").await;
    let a = org(&store, "mem").await;
    let (h, _) = host(&store, &a, "web1").await;
    // Reads see the writes: one database, not one per connection.
    assert_eq!(store.org_by_name("mem").await.unwrap(), Some(a.clone()));
    assert_eq!(store.list_hosts(a.id).await.unwrap(), vec![h]);
}

fn with_database_replaces_only_the_database() {
    assert_eq!(
        with_database("postgres://u@h:5432/test", "n"),
        "postgres://u@h:5432/n"
    );
    assert_eq!(
        with_database("postgres://u@h/test?sslmode=disable", "n"),
        "postgres://u@h/n?sslmode=disable"
    );
    assert_eq!(with_database("postgresql://u@h", "n"), "postgresql://u@h/n");
}

// ---------------------------------------------------------------------------------
// Scans.

async fn case_scan_round_trip(store: Arc<dyn Storage>) {
    let a = org(&store, "a").await;
    let (h, _) = host(&store, &a, "web1").await;
    let (other, _) = host(&store, &a, "other").await;
    assert_eq!(store.scan_state(h.id).await.unwrap(), None, "never scanned");
    let (digest, state) = scan(
        "web1-renamed",
        &[("zlib1g", "1:1.2.13.dfsg-1"), ("bash", "5.2.15-2+b7")],
        Some(scan_updates()),
    );
    assert_eq!(
        store
            .put_scan(h.id, t(50), &digest, &state, ScanKind::Full)
            .await
            .unwrap(),
        4
    );

    // What a delta applies to is exactly what was stored, digest included.
    let stored = store.scan_state(h.id).await.unwrap().expect("stored state");
    let (got_digest, got) = (stored.digest, stored.state);
    assert_eq!(stored.delta_chain, 0, "a full scan starts no chain");
    assert_eq!(got_digest, digest);
    assert_eq!(
        got.digest(),
        digest,
        "the rebuilt state reproduces the digest"
    );
    assert_eq!(got, state);

    let row = store.host(a.id, h.id).await.unwrap().unwrap();
    assert_eq!(row.hostname, "web1-renamed");
    assert_eq!(row.system, system("web1-renamed"));
    assert_eq!(row.package_manager.as_deref(), Some("dpkg"));
    assert_eq!(row.inventory_scanned_at, Some(t(50)));
    assert_eq!(
        (
            row.package_count,
            row.update_count,
            row.security_update_count
        ),
        (4, 3, 1)
    );
    let packages = store.host_packages(a.id, h.id).await.unwrap();
    let want: Vec<InstalledPackage> = state.packages.iter().map(PackageRow::to_package).collect();
    assert_eq!(packages, want);

    let updates = store.host_updates(a.id, h.id).await.unwrap().unwrap();
    let canonical = state.updates.clone().unwrap();
    assert_eq!(updates.host_id, h.id);
    assert_eq!(updates.scanned_at, Some(t(50)));
    assert!(updates.refreshed);
    assert_eq!(updates.error, None);
    assert_eq!(updates.updates, canonical.updates);
    assert_eq!(updates.updates[0].name, "curl", "sorted by name");
    assert_eq!(updates.removals, ["old-dkms"]);
    assert_eq!(
        (updates.update_count, updates.security_update_count),
        (3, 1)
    );

    // A later state replaces everything; without updates, none are listed any more.
    let (digest2, state2) = scan("web1", &[("bash", "5.2.21-2")], None);
    assert_eq!(
        store
            .put_scan(h.id, t(60), &digest2, &state2, ScanKind::Full)
            .await
            .unwrap(),
        3
    );
    let StoredScan {
        digest: d,
        state: got,
        ..
    } = store.scan_state(h.id).await.unwrap().unwrap();
    assert_eq!(
        (d.as_str(), got.digest()),
        (digest2.as_str(), digest2.clone())
    );
    assert_eq!(got, state2);
    let updates = store.host_updates(a.id, h.id).await.unwrap().unwrap();
    assert_eq!(updates.scanned_at, None);
    assert!(updates.updates.is_empty());
    assert_eq!(
        (updates.update_count, updates.security_update_count),
        (0, 0)
    );
    let row = store.host(a.id, h.id).await.unwrap().unwrap();
    assert_eq!(
        (row.hostname.as_str(), row.package_count, row.update_count),
        ("web1", 3, 0)
    );

    // An update listing that failed is stored with its error; no packages at all is a
    // state too.
    let mut empty = ScanState {
        system: system("web1"),
        package_manager: None,
        packages: vec![],
        updates: Some(ScanUpdates {
            refreshed: false,
            updates: vec![],
            removals: vec![],
            error: Some("apt-get update failed: network unreachable".into()),
        }),
    };
    empty.canonicalize();
    assert_eq!(
        store
            .put_scan(h.id, t(70), &empty.digest(), &empty, ScanKind::Full)
            .await
            .unwrap(),
        0
    );
    let StoredScan {
        digest: d,
        state: got,
        ..
    } = store.scan_state(h.id).await.unwrap().unwrap();
    assert_eq!((d, &got), (empty.digest(), &empty));
    let updates = store.host_updates(a.id, h.id).await.unwrap().unwrap();
    assert_eq!(updates.scanned_at, Some(t(70)));
    assert_eq!(
        updates.error.as_deref(),
        Some("apt-get update failed: network unreachable")
    );

    // The other host is untouched; an unknown host is an error.
    assert_eq!(store.scan_state(other.id).await.unwrap(), None);
    assert!(
        store
            .host_packages(a.id, other.id)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .put_scan(Uuid::new_v4(), t(80), &digest, &state, ScanKind::Full)
            .await
            .is_err()
    );
}

async fn case_scan_touch(store: Arc<dyn Storage>) {
    let a = org(&store, "a").await;
    let (h, _) = host(&store, &a, "web1").await;
    let (digest, state) = scan("web1", &[("bash", "5.2")], Some(scan_updates()));
    assert!(
        !store.touch_scan(h.id, t(40), &digest).await.unwrap(),
        "no digest stored yet"
    );
    store
        .put_scan(h.id, t(50), &digest, &state, ScanKind::Full)
        .await
        .unwrap();

    assert!(store.touch_scan(h.id, t(90), &digest).await.unwrap());
    let row = store.host(a.id, h.id).await.unwrap().unwrap();
    assert_eq!(row.inventory_scanned_at, Some(t(90)));
    assert_eq!(
        store
            .host_updates(a.id, h.id)
            .await
            .unwrap()
            .unwrap()
            .scanned_at,
        Some(t(90))
    );
    assert_eq!(
        store.scan_state(h.id).await.unwrap(),
        Some(StoredScan {
            digest: digest.clone(),
            state,
            delta_chain: 0
        })
    );

    // Another digest, or another host, records nothing.
    let other = "0".repeat(64);
    assert!(!store.touch_scan(h.id, t(120), &other).await.unwrap());
    assert!(
        !store
            .touch_scan(Uuid::new_v4(), t(120), &digest)
            .await
            .unwrap()
    );
    let row = store.host(a.id, h.id).await.unwrap().unwrap();
    assert_eq!(row.inventory_scanned_at, Some(t(90)));

    // Without updates, only the inventory's scan time moves.
    let (digest2, state2) = scan("web1", &[("bash", "5.2")], None);
    store
        .put_scan(h.id, t(130), &digest2, &state2, ScanKind::Full)
        .await
        .unwrap();
    assert!(store.touch_scan(h.id, t(140), &digest2).await.unwrap());
    let row = store.host(a.id, h.id).await.unwrap().unwrap();
    assert_eq!(row.inventory_scanned_at, Some(t(140)));
    assert_eq!(
        store
            .host_updates(a.id, h.id)
            .await
            .unwrap()
            .unwrap()
            .scanned_at,
        None
    );
}

async fn case_scan_updates_org_isolation(store: Arc<dyn Storage>) {
    let a = org(&store, "a").await;
    let b = org(&store, "b").await;
    let (ha, _) = host(&store, &a, "shared-name").await;
    let (hb, _) = host(&store, &b, "shared-name").await;
    let (digest, state) = scan("shared-name", &[("bash", "5.2")], Some(scan_updates()));
    store
        .put_scan(ha.id, t(50), &digest, &state, ScanKind::Full)
        .await
        .unwrap();

    assert_eq!(store.host_updates(b.id, ha.id).await.unwrap(), None);
    assert_eq!(
        store.host_updates(a.id, Uuid::new_v4()).await.unwrap(),
        None
    );
    assert_eq!(
        store
            .host_updates(a.id, ha.id)
            .await
            .unwrap()
            .unwrap()
            .update_count,
        3
    );
    // B's own host never reported updates.
    let own = store.host_updates(b.id, hb.id).await.unwrap().unwrap();
    assert_eq!(
        (own.scanned_at, own.updates.len(), own.update_count),
        (None, 0, 0)
    );
    assert_eq!(store.scan_state(hb.id).await.unwrap(), None);
    let listed = store.list_hosts(b.id).await.unwrap();
    assert_eq!(
        (listed[0].update_count, listed[0].security_update_count),
        (0, 0)
    );
    let listed = store.list_hosts(a.id).await.unwrap();
    assert_eq!(
        (listed[0].update_count, listed[0].security_update_count),
        (3, 1)
    );
}

async fn case_inventory_clears_scan_digest(store: Arc<dyn Storage>) {
    let a = org(&store, "a").await;
    let (h, _) = host(&store, &a, "web1").await;
    let (digest, state) = scan("web1", &[("bash", "5.2")], Some(scan_updates()));
    store
        .put_scan(h.id, t(50), &digest, &state, ScanKind::Full)
        .await
        .unwrap();
    store
        .put_inventory(
            h.id,
            &upload("web1", t(60), vec![pkg("bash", "5.3", "amd64")]),
        )
        .await
        .unwrap();
    // The stored packages no longer have a known digest: a delta gets "send the full
    // state", and "unchanged" records nothing.
    assert_eq!(store.scan_state(h.id).await.unwrap(), None);
    assert!(!store.touch_scan(h.id, t(70), &digest).await.unwrap());
    let row = store.host(a.id, h.id).await.unwrap().unwrap();
    assert_eq!(row.inventory_scanned_at, Some(t(60)));
    assert_eq!(row.package_count, 1);
    // The updates stay, with their own scan time.
    let updates = store.host_updates(a.id, h.id).await.unwrap().unwrap();
    assert_eq!((updates.scanned_at, updates.update_count), (Some(t(50)), 3));
    // A full scan makes the digest known again.
    store
        .put_scan(h.id, t(80), &digest, &state, ScanKind::Full)
        .await
        .unwrap();
    assert_eq!(
        store.scan_state(h.id).await.unwrap().map(|x| x.digest),
        Some(digest)
    );
}

async fn case_scan_failed_write_keeps_old_state(url: String) {
    let store = open_url(&url).await;
    let a = org(&store, "a").await;
    let (h, _) = host(&store, &a, "web1").await;
    let (digest, state) = scan("web1", &[("bash", "5.2")], Some(scan_updates()));
    store
        .put_scan(h.id, t(50), &digest, &state, ScanKind::Full)
        .await
        .unwrap();
    let index = update_index(&url, h.id).await;
    assert_eq!(
        index,
        [
            ("curl".to_owned(), false),
            ("linux-image-6.1.0-29-amd64".to_owned(), false),
            ("openssl".to_owned(), true)
        ],
        "the update index holds the stored updates"
    );
    let before_row = store.host(a.id, h.id).await.unwrap().unwrap();
    let before_packages = store.host_packages(a.id, h.id).await.unwrap();
    let before_updates = store.host_updates(a.id, h.id).await.unwrap();

    // The last write of the transaction (an update without a name breaks the index's
    // constraint) fails after the host row, the packages and the old updates were
    // already replaced inside it: nothing of it may remain.
    let mut broken_updates = scan_updates();
    broken_updates.updates.push(update("", None, "1", true));
    let (bad_digest, bad) = scan("renamed", &[("zsh", "5.9")], Some(broken_updates));
    let err = store
        .put_scan(h.id, t(60), &bad_digest, &bad, ScanKind::Full)
        .await
        .expect_err("an update without a name is refused");
    assert!(err.to_string().to_lowercase().contains("check"), "{err}");

    assert_eq!(
        store.scan_state(h.id).await.unwrap(),
        Some(StoredScan {
            digest: digest.clone(),
            state,
            delta_chain: 0
        })
    );
    assert_eq!(store.host(a.id, h.id).await.unwrap().unwrap(), before_row);
    assert_eq!(
        store.host_packages(a.id, h.id).await.unwrap(),
        before_packages
    );
    assert_eq!(
        store.host_updates(a.id, h.id).await.unwrap(),
        before_updates
    );
    assert_eq!(update_index(&url, h.id).await, index);
    assert!(!store.touch_scan(h.id, t(70), &bad_digest).await.unwrap());

    // A state without updates empties the index.
    let (d2, s2) = scan("web1", &[("bash", "5.2")], None);
    store
        .put_scan(h.id, t(80), &d2, &s2, ScanKind::Full)
        .await
        .unwrap();
    assert!(update_index(&url, h.id).await.is_empty());
}

// ---------------------------------------------------------------------------------
// Hosts of every organisation.

async fn case_all_hosts(store: Arc<dyn Storage>) {
    assert!(store.all_hosts().await.unwrap().is_empty());
    let a = org(&store, "a").await;
    let b = org(&store, "b").await;
    let (a1, _) = host(&store, &a, "web1").await;
    let (a2, _) = host(&store, &a, "db1").await;
    let (b1, _) = host(&store, &b, "web1").await;
    assert!(store.revoke_host(a.id, a2.id).await.unwrap());
    let all = store.all_hosts().await.unwrap();
    let ids: HashSet<Uuid> = all.iter().map(|h| h.id).collect();
    assert_eq!(
        ids,
        HashSet::from([a1.id, b1.id]),
        "revoked db1 is left out"
    );
    assert_eq!(all.len(), 2);
    assert!(all.iter().all(|h| !h.revoked));
    let a1_row = all.iter().find(|h| h.id == a1.id).unwrap();
    assert_eq!(
        a1_row, &a1,
        "the full row, as the organisation's own list gives it"
    );
    assert_eq!(a1_row.system.os.version_codename, "bookworm");
}

// ---------------------------------------------------------------------------------
// Vulnerability database.

/// What a record says about one package: fixed at `fixed`, or not affected.
fn affected(ecosystem: &str, package: &str, fixed: Option<&str>) -> Affected {
    Affected {
        ecosystem: ecosystem.to_owned(),
        package: package.to_owned(),
        introduced: None,
        last_affected: None,
        status: fixed.map_or(Status::NotAffected, |v| Status::Fixed {
            fixed_version: v.to_owned(),
        }),
        note: fixed
            .is_none()
            .then(|| "Vulnerable code not present".to_owned()),
        severity: None,
    }
}

fn vuln(id: &str, aliases: &[&str], affected: Vec<Affected>) -> Record {
    let mut r = Record {
        id: id.to_owned(),
        aliases: aliases.iter().map(|a| (*a).to_owned()).collect(),
        summary: format!("summary of {id}"),
        severity: Some("high".to_owned()),
        cvss_vector: Some("CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:H/A:H".to_owned()),
        published: Some("2024-07-01T13:00:00Z".to_owned()),
        modified: Some("2024-07-02T08:00:00Z".to_owned()),
        withdrawn: false,
        exploited: None,
        affected,
    };
    r.normalize();
    r
}

/// Three Debian tracker records as the tracker states them (the trap cases of issue 4).
fn debian_records() -> Vec<Record> {
    vec![
        vuln(
            "CVE-2024-6387",
            &["DSA-5724-1"],
            vec![
                affected("Debian:12", "openssh", Some("1:9.2p1-2+deb12u3")),
                affected("Debian:11", "openssh", None),
            ],
        ),
        vuln(
            "CVE-2024-3094",
            &[],
            vec![
                affected("Debian:12", "xz-utils", None),
                affected("Debian:11", "xz-utils", None),
            ],
        ),
        vuln(
            "CVE-2024-28085",
            &[],
            vec![Affected {
                status: Status::AffectedNoFix,
                note: None,
                ..affected("Debian:12", "util-linux", None)
            }],
        ),
    ]
}

fn key(ecosystem: &str, package: &str) -> (String, String) {
    (ecosystem.to_owned(), package.to_owned())
}

/// `(source, record id, imported_at)` of every stored record, in the store's order.
async fn stored_ids(store: &Arc<dyn Storage>) -> Vec<(String, String, DateTime<Utc>)> {
    ids_of(&store.vuln_records().await.unwrap())
}

fn ids_of(records: &[StoredVulnRecord]) -> Vec<(String, String, DateTime<Utc>)> {
    records
        .iter()
        .map(|r| (r.source.clone(), r.record.id.clone(), r.imported_at))
        .collect()
}

async fn source(store: &Arc<dyn Storage>, name: &str) -> VulnSource {
    store
        .vuln_sources()
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no source {name}"))
}

async fn case_vuln_import_is_idempotent(store: Arc<dyn Storage>) {
    assert_eq!(store.vuln_generation().await.unwrap(), 0);
    assert!(store.vuln_records().await.unwrap().is_empty());
    let records = debian_records();
    let first = store
        .import_vuln_records("debian-tracker", &records, t(10))
        .await
        .unwrap();
    assert_eq!(
        first,
        VulnImport {
            inserted: 3,
            updated: 0,
            unchanged: 0,
            changed_keys: vec![
                key("Debian:11", "openssh"),
                key("Debian:11", "xz-utils"),
                key("Debian:12", "openssh"),
                key("Debian:12", "util-linux"),
                key("Debian:12", "xz-utils"),
            ],
            generation: 1,
        }
    );
    let stored = store.vuln_records().await.unwrap();
    // the stored digest is the record's own (readers compare it instead of hashing)
    for r in &stored {
        assert_eq!(r.digest, r.record.digest(), "{}", r.record.id);
    }
    assert_eq!(
        ids_of(&stored),
        [
            (
                "debian-tracker".to_owned(),
                "CVE-2024-28085".to_owned(),
                t(10)
            ),
            (
                "debian-tracker".to_owned(),
                "CVE-2024-3094".to_owned(),
                t(10)
            ),
            (
                "debian-tracker".to_owned(),
                "CVE-2024-6387".to_owned(),
                t(10)
            ),
        ],
        "by source, then id (byte order)"
    );
    let openssh = &stored[2].record;
    assert_eq!(openssh, &records[0], "the record reads back exactly");
    assert_eq!(openssh.aliases, ["DSA-5724-1"]);
    assert_eq!(
        openssh.affected[0].status.fixed_version(),
        Some("1:9.2p1-2+deb12u3")
    );

    let again = store
        .import_vuln_records("debian-tracker", &records, t(20))
        .await
        .unwrap();
    assert_eq!(
        again,
        VulnImport {
            inserted: 0,
            updated: 0,
            unchanged: 3,
            changed_keys: vec![],
            generation: 1,
        },
        "re-importing the same data changes nothing"
    );
    assert_eq!(store.vuln_generation().await.unwrap(), 1);
    assert_eq!(store.vuln_records().await.unwrap(), stored);
    let src = source(&store, "debian-tracker").await;
    assert_eq!(src.record_count, 3);
    assert_eq!(
        src.imported_at,
        Some(t(10)),
        "the last import that changed something"
    );
    assert_eq!(src.checked_at, Some(t(20)), "the last attempt");

    // The same records in another order, one twice: still nothing changes.
    let mut shuffled = vec![records[2].clone(), records[0].clone(), records[1].clone()];
    shuffled.push(records[2].clone());
    let third = store
        .import_vuln_records("debian-tracker", &shuffled, t(30))
        .await
        .unwrap();
    assert_eq!((third.inserted, third.updated, third.unchanged), (0, 0, 3));
    assert_eq!(store.vuln_generation().await.unwrap(), 1);
}

async fn case_vuln_import_change(store: Arc<dyn Storage>) {
    let mut records = debian_records();
    store
        .import_vuln_records("debian-tracker", &records, t(10))
        .await
        .unwrap();
    // Another source with the same id is another record.
    let osv = vec![vuln(
        "CVE-2024-6387",
        &[],
        vec![affected("Debian:12", "openssh", Some("1:9.2p1-2+deb12u3"))],
    )];
    let other = store.import_vuln_records("osv", &osv, t(11)).await.unwrap();
    assert_eq!((other.inserted, other.generation), (1, 2));

    // The tracker drops bullseye from openssh and adds trixie: one record changed.
    records[0].affected.retain(|a| a.ecosystem == "Debian:12");
    records[0]
        .affected
        .push(affected("Debian:13", "openssh", Some("1:9.7p1-7")));
    let out = store
        .import_vuln_records("debian-tracker", &records, t(20))
        .await
        .unwrap();
    assert_eq!(
        out,
        VulnImport {
            inserted: 0,
            updated: 1,
            unchanged: 2,
            changed_keys: vec![
                key("Debian:11", "openssh"),
                key("Debian:12", "openssh"),
                key("Debian:13", "openssh"),
            ],
            generation: 3,
        },
        "old and new keys of the changed record, none of the unchanged ones"
    );
    let at = |source: &str, id: &str, when| (source.to_owned(), id.to_owned(), when);
    assert_eq!(
        stored_ids(&store).await,
        [
            at("debian-tracker", "CVE-2024-28085", t(10)),
            at("debian-tracker", "CVE-2024-3094", t(10)),
            at("debian-tracker", "CVE-2024-6387", t(20)),
            at("osv", "CVE-2024-6387", t(11)),
        ],
        "the changed record moved, the others (same id of another source too) did not"
    );

    // Then it fixes util-linux in bookworm: new content, same key.
    records[2].affected = vec![affected(
        "Debian:12",
        "util-linux",
        Some("2.38.1-5+deb12u1"),
    )];
    records[2].modified = Some("2024-08-01T00:00:00Z".to_owned());
    let out = store
        .import_vuln_records("debian-tracker", &records, t(25))
        .await
        .unwrap();
    assert_eq!(
        (out.updated, out.unchanged, out.generation),
        (1, 2, 4),
        "{out:?}"
    );
    assert_eq!(out.changed_keys, [key("Debian:12", "util-linux")]);
    let util = store
        .vuln_records_for(&[key("Debian:12", "util-linux")])
        .await
        .unwrap();
    assert_eq!(util.len(), 1);
    assert_eq!(
        util[0].record, records[2],
        "the new content replaced the old"
    );
    assert_eq!(
        util[0].record.affected[0].status.fixed_version(),
        Some("2.38.1-5+deb12u1")
    );
    assert!(
        store
            .vuln_records_for(&[key("Debian:11", "openssh")])
            .await
            .unwrap()
            .is_empty(),
        "the dropped key no longer finds the record"
    );
    assert_eq!(
        ids_of(
            &store
                .vuln_records_for(&[key("Debian:13", "openssh")])
                .await
                .unwrap()
        ),
        [at("debian-tracker", "CVE-2024-6387", t(20))]
    );
    let src = source(&store, "debian-tracker").await;
    assert_eq!((src.record_count, src.imported_at), (3, Some(t(25))));

    // A partial import (one new record) deletes nothing.
    let coreutils = vuln(
        "CVE-2016-2781",
        &[],
        vec![Affected {
            status: Status::WillNotFix,
            note: Some("Minor issue".to_owned()),
            ..affected("Debian:12", "coreutils", None)
        }],
    );
    let partial = store
        .import_vuln_records("debian-tracker", std::slice::from_ref(&coreutils), t(30))
        .await
        .unwrap();
    assert_eq!(
        partial,
        VulnImport {
            inserted: 1,
            updated: 0,
            unchanged: 0,
            changed_keys: vec![key("Debian:12", "coreutils")],
            generation: 5,
        }
    );
    assert_eq!(store.vuln_records().await.unwrap().len(), 5);
    assert_eq!(source(&store, "debian-tracker").await.record_count, 4);
    assert_eq!(source(&store, "osv").await.record_count, 1);

    // Withdrawing is a change; the record stays, flagged.
    let mut withdrawn = coreutils.clone();
    withdrawn.withdrawn = true;
    let w = store
        .import_vuln_records("debian-tracker", &[withdrawn], t(40))
        .await
        .unwrap();
    assert_eq!((w.updated, w.generation), (1, 6));
    assert_eq!(w.changed_keys, [key("Debian:12", "coreutils")]);
    let got = store
        .vuln_records_for(&[key("Debian:12", "coreutils")])
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    assert!(got[0].record.withdrawn);
    assert_eq!(got[0].record.affected[0].status, Status::WillNotFix);
    assert_eq!(source(&store, "debian-tracker").await.record_count, 4);
}

async fn case_vuln_records_for(store: Arc<dyn Storage>) {
    store
        .import_vuln_records("debian-tracker", &debian_records(), t(10))
        .await
        .unwrap();
    let alma = vec![
        vuln(
            "ALSA-2024:4312",
            &["CVE-2024-6387"],
            vec![
                affected("AlmaLinux:9", "openssh", Some("8.7p1-38.el9_4.1.alma.1")),
                affected(
                    "AlmaLinux:9",
                    "openssh-server",
                    Some("8.7p1-38.el9_4.1.alma.1"),
                ),
                affected(
                    "AlmaLinux:9",
                    "openssh-clients",
                    Some("8.7p1-38.el9_4.1.alma.1"),
                ),
            ],
        ),
        vuln(
            "ALSA-2024:2722",
            &[],
            vec![affected("AlmaLinux:8", "openssh", Some("8.0p1-24.el8"))],
        ),
    ];
    store
        .import_vuln_records("almalinux", &alma, t(20))
        .await
        .unwrap();

    assert!(store.vuln_records_for(&[]).await.unwrap().is_empty());
    // Which releases have data at all (a host of another says "no vulnerability data").
    assert_eq!(
        store
            .vuln_ecosystems_with_data(&[
                "Debian:13".to_string(),
                "AlmaLinux:9".to_string(),
                "Debian:12".to_string(),
                "Fedora:40".to_string(),
            ])
            .await
            .unwrap(),
        ["AlmaLinux:9", "Debian:12"]
    );
    // One source's records, whole, by id.
    let of: Vec<String> = store
        .vuln_records_of("almalinux")
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.record.id)
        .collect();
    assert_eq!(of, ["ALSA-2024:2722", "ALSA-2024:4312"]);
    assert!(store.vuln_records_of("nothing").await.unwrap().is_empty());
    // Release-exact: the package name alone finds nothing.
    assert!(
        store
            .vuln_records_for(&[key("Debian:13", "openssh"), key("AlmaLinux:10", "openssh")])
            .await
            .unwrap()
            .is_empty()
    );
    let names = |got: Vec<StoredVulnRecord>| -> Vec<(String, String)> {
        got.into_iter().map(|r| (r.source, r.record.id)).collect()
    };
    // A record touching two requested pairs comes once.
    assert_eq!(
        names(
            store
                .vuln_records_for(&[
                    key("AlmaLinux:9", "openssh-server"),
                    key("Debian:12", "openssh"),
                    key("AlmaLinux:9", "openssh"),
                    key("Debian:12", "openssh"),
                ])
                .await
                .unwrap()
        ),
        [
            key("almalinux", "ALSA-2024:4312"),
            key("debian-tracker", "CVE-2024-6387"),
        ]
    );
    // Thousands of pairs (several chunks), the real ones spread among them.
    let mut keys: Vec<(String, String)> = (0..4_500)
        .map(|i| key("AlmaLinux:9", &format!("pkg{i}")))
        .collect();
    keys.insert(1_234, key("Debian:12", "xz-utils"));
    keys.insert(3_456, key("AlmaLinux:8", "openssh"));
    keys.push(key("Debian:12", "util-linux"));
    assert_eq!(
        names(store.vuln_records_for(&keys).await.unwrap()),
        [
            key("almalinux", "ALSA-2024:2722"),
            key("debian-tracker", "CVE-2024-28085"),
            key("debian-tracker", "CVE-2024-3094"),
        ]
    );
    let full = store
        .vuln_records_for(&[key("AlmaLinux:8", "openssh")])
        .await
        .unwrap();
    assert_eq!(full[0].record, alma[1]);
    assert_eq!(full[0].imported_at, t(20));
}

async fn case_vuln_sync_and_sources(store: Arc<dyn Storage>) {
    assert!(store.vuln_sources().await.unwrap().is_empty());
    let url = "https://security-tracker.example.org/tracker/data/json";
    store
        .record_vuln_sync(
            "debian-tracker",
            url,
            Some("\"5f3a-61b2\""),
            Some("Wed, 21 Aug 2024 07:28:00 GMT"),
            t(5),
        )
        .await
        .unwrap();
    assert_eq!(
        store.vuln_sources().await.unwrap(),
        [VulnSource {
            name: "debian-tracker".into(),
            record_count: 0,
            imported_at: None,
            checked_at: Some(t(5)),
            url: Some(url.into()),
            etag: Some("\"5f3a-61b2\"".into()),
            last_modified: Some("Wed, 21 Aug 2024 07:28:00 GMT".into()),
        }],
        "a sync creates the source without records"
    );
    assert_eq!(store.vuln_generation().await.unwrap(), 0);

    store
        .import_vuln_records("debian-tracker", &debian_records(), t(10))
        .await
        .unwrap();
    // An import with no records still creates its source, once.
    let empty = store
        .import_vuln_records("alpine", &[], t(12))
        .await
        .unwrap();
    assert_eq!(
        empty,
        VulnImport {
            generation: 1,
            ..VulnImport::default()
        }
    );
    let sources = store.vuln_sources().await.unwrap();
    assert_eq!(
        sources
            .iter()
            .map(|s| (s.name.as_str(), s.record_count, s.imported_at, s.checked_at))
            .collect::<Vec<_>>(),
        [
            ("alpine", 0, Some(t(12)), Some(t(12))),
            ("debian-tracker", 3, Some(t(10)), Some(t(10))),
        ]
    );
    assert_eq!(
        sources[1].etag.as_deref(),
        Some("\"5f3a-61b2\""),
        "an import keeps the validators"
    );

    // A later answer without an ETag clears the old one; records stay.
    store
        .record_vuln_sync(
            "debian-tracker",
            url,
            None,
            Some("Thu, 22 Aug 2024 07:28:00 GMT"),
            t(30),
        )
        .await
        .unwrap();
    let src = source(&store, "debian-tracker").await;
    assert_eq!(src.etag, None);
    assert_eq!(
        src.last_modified.as_deref(),
        Some("Thu, 22 Aug 2024 07:28:00 GMT")
    );
    assert_eq!(
        (src.record_count, src.imported_at, src.checked_at),
        (3, Some(t(10)), Some(t(30)))
    );
}

/// `n` synthetic AlmaLinux-like advisories, each fixing `per` binary packages.
fn synthetic_advisories(n: usize, per: usize) -> Vec<Record> {
    (0..n)
        .map(|i| {
            let affected = (0..per)
                .map(|j| {
                    affected(
                        &format!("AlmaLinux:{}", 8 + i % 3),
                        &format!("pkg{}-sub{j}", i % 700),
                        Some(&format!("{}:1.{i}-{j}.el9", i % 2)),
                    )
                })
                .collect();
            vuln(
                &format!("ALSA-2024:{i:05}"),
                &[&format!("CVE-2024-{:05}", 10_000 + i)],
                affected,
            )
        })
        .collect()
}

async fn case_vuln_import_large(store: Arc<dyn Storage>) {
    let records = synthetic_advisories(3_000, 12);
    let started = std::time::Instant::now();
    let out = store
        .import_vuln_records("almalinux", &records, t(10))
        .await
        .unwrap();
    eprintln!(
        "imported 3,000 records / 36,000 affected entries in {:?}",
        started.elapsed()
    );
    assert_eq!((out.inserted, out.updated, out.unchanged), (3_000, 0, 0));
    // Record i is of release 8 + i % 3 and touches pkg(i % 700)-sub0..11; 3 and 700
    // are coprime, so every (release, package) combination occurs.
    assert_eq!(out.changed_keys.len(), 3 * 700 * 12);
    assert_eq!(out.generation, 1);
    assert_eq!(source(&store, "almalinux").await.record_count, 3_000);
    let all = store.vuln_records().await.unwrap();
    assert_eq!(all.len(), 3_000);
    assert_eq!(all[1_234].record, records[1_234]);

    // Release 10 (i % 3 == 2) and pkg5 (i % 700 == 5): i = 5 and 2105 (i % 2100 == 5).
    let got = store
        .vuln_records_for(&[key("AlmaLinux:10", "pkg5-sub3")])
        .await
        .unwrap();
    let ids: Vec<&str> = got.iter().map(|r| r.record.id.as_str()).collect();
    assert_eq!(ids, ["ALSA-2024:00005", "ALSA-2024:02105"]);

    let again = store
        .import_vuln_records("almalinux", &records, t(20))
        .await
        .unwrap();
    assert_eq!((again.unchanged, again.generation), (3_000, 1));
}

async fn case_vuln_refuses_nul(store: Arc<dyn Storage>) {
    let mut records = debian_records();
    records.push(vuln(
        "CVE-2024-0001",
        &[],
        vec![affected("Debian:12", "bad\0name", Some("1.0"))],
    ));
    let err = store
        .import_vuln_records("debian-tracker", &records, t(10))
        .await
        .expect_err("a NUL character is refused");
    assert!(matches!(err, StorageError::Invalid(_)), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("CVE-2024-0001") && msg.contains("NUL"),
        "{msg}"
    );
    assert!(
        store.vuln_sources().await.unwrap().is_empty(),
        "nothing written"
    );
    assert_eq!(store.vuln_generation().await.unwrap(), 0);
    // Text inside the record (not a column) is fine.
    let mut summary = debian_records();
    summary[0].summary = "nul \0 inside".to_owned();
    store
        .import_vuln_records("debian-tracker", &summary, t(10))
        .await
        .unwrap();
    let got = store
        .vuln_records_for(&[key("Debian:12", "openssh")])
        .await
        .unwrap();
    assert_eq!(got[0].record.summary, "nul \0 inside");
}

/// Overwrites the stored JSON of record `id` (any source), outside the store.
async fn set_record_json(url: &str, id: &str, json: String) {
    const SQL: &str = "UPDATE vuln_records SET record_json = $1 WHERE id = $2";
    let id = id.to_owned();
    if url.starts_with("sqlite") {
        let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::query(SQL)
            .bind(json)
            .bind(id)
            .execute(&mut c)
            .await
            .unwrap();
    } else {
        let mut c = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query(SQL)
            .bind(json)
            .bind(id)
            .execute(&mut c)
            .await
            .unwrap();
    }
}

async fn case_vuln_corrupt_record(url: String) {
    let store = open_url(&url).await;
    store
        .import_vuln_records("debian-tracker", &debian_records(), t(10))
        .await
        .unwrap();
    set_record_json(&url, "CVE-2024-3094", r#"{"id": 7}"#.to_owned()).await;
    for err in [
        store
            .vuln_records()
            .await
            .expect_err("corrupt JSON is reported"),
        store
            .vuln_records_for(&[key("Debian:12", "xz-utils")])
            .await
            .expect_err("corrupt JSON is reported"),
    ] {
        assert!(matches!(err, StorageError::Corrupt(_)), "{err:?}");
        assert!(
            err.to_string().contains("vuln_records.record_json"),
            "{err}"
        );
    }
    // A row holding another record's JSON is corrupt too.
    let other = serde_json::to_string(&debian_records()[0]).unwrap();
    set_record_json(&url, "CVE-2024-3094", other).await;
    let err = store.vuln_records().await.expect_err("mismatched id");
    assert!(err.to_string().contains("CVE-2024-3094"), "{err}");
}

// ---------------------------------------------------------------------------------
// Trust: enrollment keys with a life cycle, enrollment, approval, credential rotation,
// organisation settings.

/// A key of `org` with these limits, whose hash is `hash`.
async fn limited_key(
    store: &Arc<dyn Storage>,
    org: &Org,
    hash: &str,
    expires_at: Option<DateTime<Utc>>,
    max_uses: Option<u64>,
) -> patchctl_storage::EnrollmentKey {
    store
        .insert_enrollment_key(NewEnrollmentKey {
            org_id: org.id,
            name: format!("key {hash}"),
            key_hash: hash.to_owned(),
            expires_at,
            max_uses,
            now: t(0),
        })
        .await
        .expect("insert_enrollment_key")
}

/// An enrollment with the key whose hash is `key_hash`, at `now`.
fn enrollment(key_hash: &str, hostname: &str, now: DateTime<Utc>) -> EnrollHost {
    EnrollHost {
        key_hash: key_hash.to_owned(),
        credential_hash: unique("cred"),
        agent_version: "1.0.0".into(),
        system: system(hostname),
        now,
    }
}

async fn uses_of(store: &Arc<dyn Storage>, org: &Org, key: Uuid) -> u64 {
    store
        .enrollment_key(org.id, key)
        .await
        .unwrap()
        .expect("key")
        .uses
}

async fn case_key_life_cycle(store: Arc<dyn Storage>) {
    let a = org(&store, "a").await;
    let k = limited_key(&store, &a, "life", Some(t(100)), Some(2)).await;
    assert_eq!(
        (
            k.expires_at,
            k.max_uses,
            k.uses,
            k.revoked_at,
            k.rotated_from
        ),
        (Some(t(100)), Some(2), 0, None, None)
    );
    assert_eq!(
        store.enrollment_key(a.id, k.id).await.unwrap(),
        Some(k.clone())
    );
    // The state is derived at the time asked.
    assert_eq!(k.state(t(99)), KeyState::Active);
    assert_eq!(k.state(t(100)), KeyState::Expired);
    let used_up = patchctl_storage::EnrollmentKey {
        uses: 2,
        ..k.clone()
    };
    assert_eq!(used_up.state(t(1)), KeyState::Exhausted);
    assert_eq!(
        used_up.state(t(100)),
        KeyState::Expired,
        "expiry comes first"
    );

    // Several keys at once, listed by creation.
    let other = limited_key(&store, &a, "other", None, None).await;
    let listed: Vec<Uuid> = store
        .list_enrollment_keys(a.id)
        .await
        .unwrap()
        .iter()
        .map(|k| k.id)
        .collect();
    assert_eq!(
        HashSet::<Uuid>::from_iter(listed),
        HashSet::from([k.id, other.id])
    );

    // Revocation keeps its first time.
    assert!(store.revoke_enrollment_key(a.id, k.id, t(5)).await.unwrap());
    assert!(store.revoke_enrollment_key(a.id, k.id, t(7)).await.unwrap());
    let k = store.enrollment_key(a.id, k.id).await.unwrap().unwrap();
    assert_eq!(k.revoked_at, Some(t(5)));
    assert_eq!(k.state(t(6)), KeyState::Revoked);

    // A maximum of 0 uses is refused, nothing stored.
    let err = store
        .insert_enrollment_key(NewEnrollmentKey {
            org_id: a.id,
            name: "zero".into(),
            key_hash: "zero".into(),
            expires_at: None,
            max_uses: Some(0),
            now: t(0),
        })
        .await
        .expect_err("max_uses 0");
    assert!(matches!(err, StorageError::Invalid(_)), "{err:?}");
    assert!(
        store
            .enrollment_key_by_hash("zero")
            .await
            .unwrap()
            .is_none()
    );
}

async fn case_enroll_checks_and_counts_the_key(store: Arc<dyn Storage>) {
    let a = org(&store, "a").await;
    let good = limited_key(&store, &a, "good", Some(t(100)), Some(2)).await;
    let revoked = limited_key(&store, &a, "revoked", None, None).await;
    store
        .revoke_enrollment_key(a.id, revoked.id, t(1))
        .await
        .unwrap();
    let expired = limited_key(&store, &a, "expired", Some(t(10)), None).await;

    for (hash, at, why) in [
        ("nothing", t(1), KeyRefusal::Unknown),
        ("revoked", t(2), KeyRefusal::Revoked),
        ("expired", t(10), KeyRefusal::Expired),
    ] {
        assert_eq!(
            store.enroll_host(enrollment(hash, "x", at)).await.unwrap(),
            Enrollment::Refused(why),
            "{hash}"
        );
    }
    assert_eq!(uses_of(&store, &a, revoked.id).await, 0);
    assert_eq!(uses_of(&store, &a, expired.id).await, 0);
    assert!(
        store.list_hosts(a.id).await.unwrap().is_empty(),
        "nothing created"
    );

    let e = enrollment("good", "web1", t(3));
    let cred = e.credential_hash.clone();
    let Enrollment::Enrolled { host, key_id } = store.enroll_host(e).await.unwrap() else {
        panic!("a valid key enrolls");
    };
    assert_eq!(key_id, good.id);
    assert_eq!(
        (host.org_id, host.approval, host.revoked),
        (a.id, Approval::Approved, false)
    );
    assert_eq!(host.credential_issued_at, t(3));
    assert_eq!(
        store.host(a.id, host.id).await.unwrap(),
        Some(*host.clone())
    );
    assert!(
        store
            .host_by_credential(&cred)
            .await
            .unwrap()
            .unwrap()
            .accepted()
    );
    assert_eq!(uses_of(&store, &a, good.id).await, 1);

    // A failed host insert (duplicate credential) does not count the use.
    let mut dup = enrollment("good", "dup", t(4));
    dup.credential_hash = cred.clone();
    assert!(matches!(
        store.enroll_host(dup).await,
        Err(StorageError::Conflict(_))
    ));
    assert_eq!(uses_of(&store, &a, good.id).await, 1);

    // With approval required, the host waits.
    assert!(
        store
            .set_org_settings(
                a.id,
                &OrgSettings {
                    require_approval: true
                }
            )
            .await
            .unwrap()
    );
    let e = enrollment("good", "web2", t(5));
    let cred2 = e.credential_hash.clone();
    let Enrollment::Enrolled { host: pending, .. } = store.enroll_host(e).await.unwrap() else {
        panic!("the second use enrolls");
    };
    assert_eq!(pending.approval, Approval::Pending);
    let auth = store.host_by_credential(&cred2).await.unwrap().unwrap();
    assert_eq!((auth.approval, auth.accepted()), (Approval::Pending, false));
    assert_eq!(uses_of(&store, &a, good.id).await, 2);

    // Used up now; later, expired (expiry is reported first).
    assert_eq!(
        store
            .enroll_host(enrollment("good", "web3", t(6)))
            .await
            .unwrap(),
        Enrollment::Refused(KeyRefusal::Exhausted)
    );
    assert_eq!(
        store
            .enroll_host(enrollment("good", "web3", t(100)))
            .await
            .unwrap(),
        Enrollment::Refused(KeyRefusal::Expired)
    );
    assert_eq!(uses_of(&store, &a, good.id).await, 2);
    assert_eq!(store.list_hosts(a.id).await.unwrap().len(), 2);
}

async fn case_concurrent_enrollments_respect_max_uses(store: Arc<dyn Storage>) {
    let a = org(&store, "a").await;
    let key = limited_key(&store, &a, "three", None, Some(3)).await;
    const N: usize = 24;
    let barrier = Arc::new(tokio::sync::Barrier::new(N));
    let mut tasks = Vec::new();
    for i in 0..N {
        let store = store.clone();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            store
                .enroll_host(enrollment("three", &format!("h{i}"), t(1)))
                .await
                .expect("enroll_host")
        }));
    }
    let mut enrolled = 0;
    for task in tasks {
        match task.await.unwrap() {
            Enrollment::Enrolled { key_id, .. } => {
                assert_eq!(key_id, key.id);
                enrolled += 1;
            }
            Enrollment::Refused(why) => assert_eq!(why, KeyRefusal::Exhausted),
        }
    }
    assert_eq!(enrolled, 3, "exactly max_uses enrollments");
    assert_eq!(uses_of(&store, &a, key.id).await, 3);
    assert_eq!(store.list_hosts(a.id).await.unwrap().len(), 3);
}

async fn case_key_rotation(store: Arc<dyn Storage>) {
    let a = org(&store, "a").await;
    // Created at t(0), lives 1000 s, at most 5 uses; used once.
    let old = limited_key(&store, &a, "old", Some(t(1000)), Some(5)).await;
    assert!(matches!(
        store
            .enroll_host(enrollment("old", "h", t(1)))
            .await
            .unwrap(),
        Enrollment::Enrolled { .. }
    ));
    let KeyRotation::Rotated { old: o, new } = store
        .rotate_enrollment_key(a.id, old.id, "new", t(60), t(50))
        .await
        .unwrap()
    else {
        panic!("rotated");
    };
    assert_eq!(new.name, old.name);
    assert_eq!(new.rotated_from, Some(old.id));
    assert_eq!(new.created_at, t(50));
    assert_eq!(new.expires_at, Some(t(1050)), "the same lifetime from now");
    assert_eq!((new.max_uses, new.uses), (Some(5), 0));
    assert_eq!(
        o.expires_at,
        Some(t(60)),
        "the old one ends after the grace"
    );
    assert_eq!(o.uses, 1);
    assert_eq!(
        store.enrollment_key_by_hash("new").await.unwrap(),
        Some(new.clone())
    );
    // Both enroll during the grace; only the new one after it.
    assert!(matches!(
        store
            .enroll_host(enrollment("old", "h", t(59)))
            .await
            .unwrap(),
        Enrollment::Enrolled { .. }
    ));
    assert_eq!(
        store
            .enroll_host(enrollment("old", "h", t(60)))
            .await
            .unwrap(),
        Enrollment::Refused(KeyRefusal::Expired)
    );
    assert!(matches!(
        store
            .enroll_host(enrollment("new", "h", t(60)))
            .await
            .unwrap(),
        Enrollment::Enrolled { .. }
    ));

    // A grace past the old key's own expiry does not extend it.
    let short = limited_key(&store, &a, "short", Some(t(10)), None).await;
    let KeyRotation::Rotated { old: s, new: s2 } = store
        .rotate_enrollment_key(a.id, short.id, "short2", t(500), t(5))
        .await
        .unwrap()
    else {
        panic!("rotated");
    };
    assert_eq!(s.expires_at, Some(t(10)));
    assert_eq!(s2.expires_at, Some(t(15)));
    // A key without expiry gives a key without expiry.
    let forever = limited_key(&store, &a, "forever", None, None).await;
    let KeyRotation::Rotated { new: f2, .. } = store
        .rotate_enrollment_key(a.id, forever.id, "forever2", t(3), t(3))
        .await
        .unwrap()
    else {
        panic!("rotated");
    };
    assert_eq!((f2.expires_at, f2.max_uses), (None, None));

    // A revoked key is not rotated; nothing is stored.
    store
        .revoke_enrollment_key(a.id, forever.id, t(4))
        .await
        .unwrap();
    assert!(matches!(
        store
            .rotate_enrollment_key(a.id, forever.id, "forever3", t(5), t(5))
            .await
            .unwrap(),
        KeyRotation::Revoked(k) if k.id == forever.id
    ));
    assert!(
        store
            .enrollment_key_by_hash("forever3")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store
            .rotate_enrollment_key(a.id, Uuid::new_v4(), "x", t(5), t(5))
            .await
            .unwrap(),
        KeyRotation::NotFound
    );
}

async fn case_credential_rotation(store: Arc<dyn Storage>) {
    let a = org(&store, "a").await;
    let (h, old) = host(&store, &a, "web1").await;
    let slot = |auth: Option<HostAuth>| auth.map(|x| (x.host_id, x.slot));

    assert!(store.stage_credential(h.id, "next-1", t(10)).await.unwrap());
    assert!(
        !store
            .stage_credential(Uuid::new_v4(), "next-x", t(10))
            .await
            .unwrap()
    );
    // Both work until the new one is used.
    assert_eq!(
        slot(store.host_by_credential(&old).await.unwrap()),
        Some((h.id, CredentialSlot::Current))
    );
    assert_eq!(
        slot(store.host_by_credential("next-1").await.unwrap()),
        Some((h.id, CredentialSlot::Next))
    );
    // A second rotation before the first was used replaces it.
    assert!(store.stage_credential(h.id, "next-2", t(20)).await.unwrap());
    assert_eq!(store.host_by_credential("next-1").await.unwrap(), None);
    assert!(!store.promote_credential(h.id, "next-1").await.unwrap());
    assert_eq!(
        store
            .host(a.id, h.id)
            .await
            .unwrap()
            .unwrap()
            .credential_issued_at,
        t(1),
        "still the enrollment's credential"
    );
    // First use of the new one: promoted; the old one is unknown from now on.
    assert!(store.promote_credential(h.id, "next-2").await.unwrap());
    assert!(
        !store.promote_credential(h.id, "next-2").await.unwrap(),
        "once"
    );
    assert_eq!(store.host_by_credential(&old).await.unwrap(), None);
    assert_eq!(
        slot(store.host_by_credential("next-2").await.unwrap()),
        Some((h.id, CredentialSlot::Current))
    );
    assert_eq!(
        store
            .host(a.id, h.id)
            .await
            .unwrap()
            .unwrap()
            .credential_issued_at,
        t(20)
    );
    // A staged hash that is another host's credential is a conflict.
    let (_, other) = host(&store, &a, "web2").await;
    let _ = other;
    assert!(store.stage_credential(h.id, "next-3", t(30)).await.unwrap());
    let (h2, _) = host(&store, &a, "web3").await;
    assert!(matches!(
        store.stage_credential(h2.id, "next-3", t(30)).await,
        Err(StorageError::Conflict(_))
    ));
}

async fn case_approval(store: Arc<dyn Storage>) {
    let a = org(&store, "a").await;
    let b = org(&store, "b").await;
    store
        .set_org_settings(
            a.id,
            &OrgSettings {
                require_approval: true,
            },
        )
        .await
        .unwrap();
    limited_key(&store, &a, "k", None, None).await;
    let enroll = |name: &'static str| {
        let store = store.clone();
        async move {
            let e = enrollment("k", name, t(1));
            let cred = e.credential_hash.clone();
            match store.enroll_host(e).await.unwrap() {
                Enrollment::Enrolled { host, .. } => (host, cred),
                other => panic!("{other:?}"),
            }
        }
    };
    let (p1, c1) = enroll("p1").await;
    let (p2, c2) = enroll("p2").await;
    assert_eq!(p1.approval, Approval::Pending);

    assert_eq!(
        store.set_approval(b.id, p1.id, true).await.unwrap(),
        ApprovalChange::NotFound,
        "another organisation's host"
    );
    assert_eq!(
        store.set_approval(a.id, p1.id, true).await.unwrap(),
        ApprovalChange::Changed
    );
    assert!(
        store
            .host_by_credential(&c1)
            .await
            .unwrap()
            .unwrap()
            .accepted()
    );
    assert_eq!(
        store.set_approval(a.id, p1.id, false).await.unwrap(),
        ApprovalChange::NotPending,
        "an approved host is revoked, not rejected"
    );
    assert_eq!(
        store.set_approval(a.id, p2.id, false).await.unwrap(),
        ApprovalChange::Changed
    );
    let r = store.host(a.id, p2.id).await.unwrap().unwrap();
    assert_eq!((r.approval, r.revoked), (Approval::Rejected, true));
    let auth = store.host_by_credential(&c2).await.unwrap().unwrap();
    assert!(auth.revoked && !auth.accepted());
    assert_eq!(
        store.set_approval(a.id, p2.id, true).await.unwrap(),
        ApprovalChange::NotPending,
        "a rejected host stays out"
    );
    // A revoked pending host cannot be approved either.
    let (p3, _) = enroll("p3").await;
    store.revoke_host(a.id, p3.id).await.unwrap();
    assert_eq!(
        store.set_approval(a.id, p3.id, true).await.unwrap(),
        ApprovalChange::NotPending
    );
}

async fn case_org_settings(store: Arc<dyn Storage>) {
    let a = org(&store, "a").await;
    let b = org(&store, "b").await;
    assert_eq!(
        store.org_settings(a.id).await.unwrap(),
        OrgSettings::default()
    );
    let on = OrgSettings {
        require_approval: true,
    };
    assert!(store.set_org_settings(a.id, &on).await.unwrap());
    assert_eq!(store.org_settings(a.id).await.unwrap(), on);
    assert_eq!(
        store.org_settings(b.id).await.unwrap(),
        OrgSettings::default()
    );
    assert!(!store.set_org_settings(Uuid::new_v4(), &on).await.unwrap());
    assert!(
        store
            .set_org_settings(a.id, &OrgSettings::default())
            .await
            .unwrap()
    );
    assert_eq!(
        store.org_settings(a.id).await.unwrap(),
        OrgSettings::default()
    );
}

/// The statements (and their bound values) of what a database of before the trust
/// migration holds: an organisation, a revoked key and a key that enrolled two hosts.
fn legacy_rows() -> Vec<(&'static str, Vec<String>)> {
    let sys = serde_json::to_string(&system("old")).unwrap();
    vec![
        (
            "INSERT INTO orgs (id, name, created_at) VALUES ($1, 'legacy', 5)",
            vec![LEGACY_ORG.into()],
        ),
        (
            "INSERT INTO enrollment_keys (id, org_id, name, key_hash, revoked, created_at) \
             VALUES ($1, $2, 'gone', 'legacy-revoked', TRUE, 7)",
            vec![LEGACY_REVOKED.into(), LEGACY_ORG.into()],
        ),
        (
            "INSERT INTO enrollment_keys (id, org_id, name, key_hash, revoked, created_at) \
             VALUES ($1, $2, 'fleet', 'legacy-fleet', FALSE, 8)",
            vec![LEGACY_FLEET.into(), LEGACY_ORG.into()],
        ),
        (
            "INSERT INTO hosts (id, org_id, enrollment_key_id, credential_hash, revoked, \
             hostname, system_json, agent_version, enrolled_at) \
             VALUES ($1, $2, $3, $4, FALSE, 'old', $5, '0.9', 9), \
                    ($6, $2, $3, $7, FALSE, 'old2', $5, '0.9', 10)",
            vec![
                LEGACY_HOST.into(),
                LEGACY_ORG.into(),
                LEGACY_FLEET.into(),
                "legacy-cred".into(),
                sys,
                LEGACY_HOST2.into(),
                "legacy-cred2".into(),
            ],
        ),
    ]
}

/// Runs [`legacy_rows`] on the connection `$c`.
macro_rules! insert_legacy_rows {
    ($c:expr) => {
        for (sql, binds) in legacy_rows() {
            let mut q = sqlx::query(sql);
            for b in binds {
                q = q.bind(b);
            }
            q.execute(&$c).await.unwrap();
        }
    };
}

/// Runs the migrations before the trust migration (0004) on `url`.
async fn migrate_before_trust(url: &str) {
    let dir = if url.starts_with("sqlite") {
        "sqlite"
    } else {
        "postgres"
    };
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(dir);
    let mut m = sqlx::migrate::Migrator::new(path).await.unwrap();
    m.migrations = m
        .migrations
        .iter()
        .filter(|x| x.version < 4)
        .cloned()
        .collect::<Vec<_>>()
        .into();
    if url.starts_with("sqlite") {
        let opts: sqlx::sqlite::SqliteConnectOptions = url.parse().unwrap();
        let pool = sqlx::SqlitePool::connect_with(opts.create_if_missing(true))
            .await
            .unwrap();
        m.run(&pool).await.unwrap();
        insert_legacy_rows!(pool);
        pool.close().await;
    } else {
        let pool = sqlx::PgPool::connect(url).await.unwrap();
        m.run(&pool).await.unwrap();
        insert_legacy_rows!(pool);
        pool.close().await;
    }
}

const LEGACY_ORG: &str = "00000000-0000-4000-8000-000000000001";
const LEGACY_REVOKED: &str = "00000000-0000-4000-8000-000000000002";
const LEGACY_FLEET: &str = "00000000-0000-4000-8000-000000000003";
const LEGACY_HOST: &str = "00000000-0000-4000-8000-000000000004";
const LEGACY_HOST2: &str = "00000000-0000-4000-8000-000000000005";

async fn case_trust_migration_keeps_old_data(url: String) {
    migrate_before_trust(&url).await;
    let store = open_url(&url).await;
    let org: Uuid = LEGACY_ORG.parse().unwrap();
    let revoked = store
        .enrollment_key_by_hash("legacy-revoked")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        revoked.revoked_at,
        Some(DateTime::from_timestamp_millis(7).unwrap())
    );
    assert_eq!(revoked.state(t(0)), KeyState::Revoked);
    let fleet = store
        .enrollment_key_by_hash("legacy-fleet")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (fleet.uses, fleet.max_uses, fleet.expires_at),
        (2, None, None)
    );
    assert_eq!(fleet.state(t(0)), KeyState::Active);
    let h = store
        .host(org, LEGACY_HOST.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(h.approval, Approval::Approved);
    assert_eq!(h.credential_issued_at, h.enrolled_at);
    assert!(
        store
            .host_by_credential("legacy-cred")
            .await
            .unwrap()
            .unwrap()
            .accepted()
    );
    assert_eq!(
        store.org_settings(org).await.unwrap(),
        OrgSettings::default()
    );
    assert_eq!(
        store
            .enroll_host(enrollment("legacy-revoked", "x", t(0)))
            .await
            .unwrap(),
        Enrollment::Refused(KeyRefusal::Revoked)
    );
}
