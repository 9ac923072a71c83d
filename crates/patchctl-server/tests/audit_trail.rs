//! The audit trail on the real platform over TLS 1.3, on SQLite and on PostgreSQL:
//!
//! - every state-changing route of `access::rules::RULES`, called once, leaves exactly
//!   one entry with the right actor, action, route template, target (the path
//!   parameters), status and outcome; the routes this test knows (hosts, keys,
//!   settings, commands, releases, rollout) are called so that they succeed, and their
//!   structured details are checked; any other route (added later) is called with a
//!   placeholder and still must leave its one entry;
//! - refusals are recorded with their outcome: 401 for an unknown token (no
//!   organisation, anonymous), 403 for a viewer, 400 for a command the platform
//!   rejects;
//! - no secret is stored: every column of every row of `audit_log` is dumped with raw
//!   SQL and searched for every token, enrollment key, agent credential and password
//!   the test handled (and a planted entry proves the search would see one);
//! - the readers: `GET /api/v1/audit` with each filter, the cursor paging (every entry
//!   once), `GET /api/v1/audit/{seq}`, bad input answered with 400, and only owner,
//!   admin and auditor may read.
//!
//! The PostgreSQL half runs on a fresh database of `PATCHCTL_TEST_POSTGRES_URL`
//! (reported as skipped without it, a failure under `CI=true`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, Request, StatusCode};
use chrono::Utc;
use http_body_util::BodyExt;
use patchctl_proto::access::Role;
use patchctl_proto::agent::{EnrollRequest, SystemInfo};
use patchctl_proto::trust::OrgSettings;
use patchctl_proto::{PROTOCOL_VERSION, Secret};
use patchctl_server::Settings;
use patchctl_server::access::rules::{PUBLIC, RULES, Rule, rule_for};
use patchctl_server::auth::{ENROLLMENT_KEY_PREFIX, TOKEN_PREFIX, hash_secret, new_secret};
use patchctl_server::bootstrap::{OrgSecrets, create_org};
use patchctl_storage::{
    AuditActor, AuditEntry, AuditFilter, AuditOutcome, NewApiToken, NewAuditEntry, NewCommand,
    NewEnrollmentKey, NewUser, Storage,
};
use patchctl_testkit::{Harness, Need, trial};
use serde_json::{Value, json};
use sqlx::Connection;
use uuid::Uuid;

fn main() -> ExitCode {
    Harness::new()
        .test(
            trial!(async sqlite_every_change_is_recorded_once_and_without_secrets)
                .multi_thread(Some(2)),
        )
        .test(
            trial!(async postgres_every_change_is_recorded_once_and_without_secrets)
                .multi_thread(Some(2))
                .needs([Need::Postgres]),
        )
        .test(trial!(async sqlite_the_trail_is_read_with_filters_and_pages).multi_thread(Some(2)))
        .test(
            trial!(async postgres_the_trail_is_read_with_filters_and_pages)
                .multi_thread(Some(2))
                .needs([Need::Postgres]),
        )
        .run()
}

async fn sqlite_every_change_is_recorded_once_and_without_secrets() {
    every_change_is_recorded_once_and_without_secrets(Db::sqlite()).await;
}

async fn postgres_every_change_is_recorded_once_and_without_secrets() {
    every_change_is_recorded_once_and_without_secrets(Db::postgres().await).await;
}

async fn sqlite_the_trail_is_read_with_filters_and_pages() {
    the_trail_is_read_with_filters_and_pages(Db::sqlite()).await;
}

async fn postgres_the_trail_is_read_with_filters_and_pages() {
    the_trail_is_read_with_filters_and_pages(Db::postgres().await).await;
}

// ---------------------------------------------------------------------------------
// A database and a platform on it.

/// A fresh database: a SQLite file, or a database created on the PostgreSQL server
/// (dropped when the test is done).
struct Db {
    url: String,
    dir: tempfile::TempDir,
    pg: bool,
}

impl Db {
    fn sqlite() -> Db {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("db.sqlite").display());
        Db {
            url,
            dir,
            pg: false,
        }
    }

    async fn postgres() -> Db {
        Db {
            url: patchctl_testkit::scratch_postgres("patchctl_audit").await,
            dir: tempfile::tempdir().unwrap(),
            pg: true,
        }
    }

    /// Every column of every row of `audit_log`, as text (raw SQL, not the store:
    /// a column the store does not read is searched too).
    async fn dump_audit_log(&self) -> String {
        let rows: Vec<(String,)> = if self.pg {
            let mut c = sqlx::PgConnection::connect(&self.url).await.unwrap();
            sqlx::query_as("SELECT row_to_json(a)::text FROM audit_log a")
                .fetch_all(&mut c)
                .await
                .unwrap()
        } else {
            let mut c = sqlx::SqliteConnection::connect(&self.url).await.unwrap();
            let cols: Vec<(String,)> =
                sqlx::query_as("SELECT name FROM pragma_table_info('audit_log')")
                    .fetch_all(&mut c)
                    .await
                    .unwrap();
            assert!(cols.len() >= 10, "audit_log has columns: {cols:?}");
            let expr = cols
                .iter()
                .map(|(c,)| format!("quote(\"{c}\")"))
                .collect::<Vec<_>>()
                .join(" || ' | ' || ");
            sqlx::query_as(&format!("SELECT {expr} FROM audit_log"))
                .fetch_all(&mut c)
                .await
                .unwrap()
        };
        rows.into_iter()
            .map(|(r,)| r)
            .collect::<Vec<_>>()
            .join("\n")
    }

    async fn cleanup(&self) {
        patchctl_testkit::drop_scratch_postgres(&self.url).await;
    }
}

/// One answer.
#[derive(Debug)]
struct Resp {
    status: StatusCode,
    headers: HeaderMap,
    text: String,
    /// The body as JSON (`null` when it is not JSON).
    body: Value,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    #[track_caller]
    fn ok(self) -> Value {
        assert!(self.status.is_success(), "{self:?}");
        self.body
    }
}

struct Platform {
    db: Db,
    addr: SocketAddr,
    ca: PathBuf,
    store: Arc<dyn Storage>,
    org: OrgSecrets,
    org_id: Uuid,
    /// Every secret this test handled: none may reach the trail.
    secrets: std::sync::Mutex<Vec<String>>,
}

async fn platform(db: Db) -> Platform {
    let store = patchctl_storage::open(&db.url).await.unwrap();
    let pki = patchctl_net::ensure_dev_pki(
        &db.dir.path().join("pki"),
        &["localhost".into(), "127.0.0.1".into()],
    )
    .unwrap();
    let settings = Settings {
        metrics_history_len: 10,
        enroll_per_address_per_min: 10_000,
        enroll_per_key_per_min: 10_000,
        vuln_sync: false,
        ..Settings::with_defaults(
            "127.0.0.1:0".parse().unwrap(),
            db.url.clone(),
            pki.server_cert.clone(),
            pki.server_key.clone(),
        )
    };
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(patchctl_server::launch_with_listener(
        settings,
        listener,
        std::future::pending(),
    ));
    let org = create_org(store.as_ref(), "audited").await.unwrap();
    let org_id = store.org_by_name("audited").await.unwrap().unwrap().id;
    Platform {
        db,
        addr,
        ca: pki.ca_cert,
        store,
        org_id,
        secrets: std::sync::Mutex::new(vec![
            org.token.expose().to_owned(),
            org.enrollment_key.expose().to_owned(),
        ]),
        org,
    }
}

impl Platform {
    fn token(&self) -> &str {
        self.org.token.expose()
    }

    fn remember(&self, secret: &str) {
        let mut secrets = self.secrets.lock().unwrap();
        if !secrets.iter().any(|s| s == secret) {
            secrets.push(secret.to_owned());
        }
    }

    /// One request over a new TLS connection; `body` is `(content type, bytes)`.
    async fn req(
        &self,
        method: &str,
        path: &str,
        bearer: Option<&str>,
        body: Option<(&str, Vec<u8>)>,
    ) -> Resp {
        let tls = patchctl_net::client_config(Some(&self.ca)).unwrap();
        let tcp = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let stream = tokio_rustls::TlsConnector::from(tls)
            .connect(name, tcp)
            .await
            .unwrap();
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .unwrap();
        tokio::spawn(conn);
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "localhost");
        if let Some((ct, _)) = &body {
            req = req.header("content-type", *ct);
        }
        if let Some(b) = bearer {
            req = req.header("authorization", format!("Bearer {b}"));
        }
        let req = req
            .body(http_body_util::Full::new(Bytes::from(
                body.map(|(_, b)| b).unwrap_or_default(),
            )))
            .unwrap();
        let resp = sender.send_request(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        // Whatever secret an answer hands out is one the trail must never hold.
        for word in text.split(|c: char| !c.is_ascii_alphanumeric() && c != '_') {
            let secret_like = [TOKEN_PREFIX, ENROLLMENT_KEY_PREFIX, "pca_"]
                .iter()
                .any(|p| word.starts_with(p) && word.len() == p.len() + 64);
            if secret_like {
                self.remember(word);
            }
        }
        Resp {
            status,
            headers,
            text,
            body,
        }
    }

    async fn json(&self, method: &str, path: &str, token: &str, body: Value) -> Resp {
        self.req(
            method,
            path,
            Some(token),
            Some(("application/json", body.to_string().into_bytes())),
        )
        .await
    }

    async fn get(&self, path: &str, token: &str) -> Resp {
        self.req("GET", path, Some(token), None).await
    }

    /// Enrolls `hostname` with the organisation's key: its host id.
    async fn enroll(&self, hostname: &str) -> Uuid {
        let req = EnrollRequest {
            protocol_version: PROTOCOL_VERSION,
            license_key: Secret::new(self.org.enrollment_key.expose().to_owned()),
            agent_version: "test".into(),
            system: SystemInfo {
                hostname: hostname.into(),
                ..Default::default()
            },
        };
        let v = self
            .req(
                "POST",
                "/api/v1/agent/enroll",
                None,
                Some(("application/json", serde_json::to_vec(&req).unwrap())),
            )
            .await
            .ok();
        v["host_id"].as_str().unwrap().parse().unwrap()
    }

    /// A user with `role` and a read-write API token of theirs: (user id, token).
    async fn user_token(&self, username: &str, role: Role, password: &str) -> (Uuid, String) {
        self.remember(password);
        let user = self
            .store
            .create_user(NewUser {
                org_id: self.org_id,
                username: username.into(),
                password_hash: patchctl_server::passwords::hash_password(password).unwrap(),
                role,
                now: Utc::now(),
            })
            .await
            .unwrap();
        let token = new_secret(TOKEN_PREFIX);
        self.remember(token.expose());
        self.store
            .insert_api_token(NewApiToken {
                org_id: self.org_id,
                user_id: Some(user.id),
                name: format!("{username}-token"),
                token_hash: hash_secret(token.expose()),
                read_only: false,
                expires_at: None,
                now: Utc::now(),
            })
            .await
            .unwrap();
        (user.id, token.expose().to_owned())
    }

    /// Every entry this organisation may see, newest first.
    async fn trail(&self) -> Vec<AuditEntry> {
        self.store
            .list_audit(self.org_id, &AuditFilter::default(), 100_000)
            .await
            .unwrap()
    }

    /// The entries after `seq`, once at least one is there (the trail is written after
    /// the answer), and a moment later, so that a second entry would show.
    async fn new_entries(&self, after: i64) -> Vec<AuditEntry> {
        for _ in 0..100 {
            let fresh: Vec<AuditEntry> = self
                .trail()
                .await
                .into_iter()
                .filter(|e| e.seq > after)
                .collect();
            if !fresh.is_empty() {
                tokio::time::sleep(Duration::from_millis(30)).await;
                return self
                    .trail()
                    .await
                    .into_iter()
                    .filter(|e| e.seq > after)
                    .collect();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Vec::new()
    }

    async fn last_seq(&self) -> i64 {
        self.trail().await.first().map_or(0, |e| e.seq)
    }

    /// Sends one request and returns it with the one entry it left (fails when it left
    /// none or more than one).
    async fn recorded(
        &self,
        method: &str,
        path: &str,
        bearer: Option<&str>,
        body: Option<(&str, Vec<u8>)>,
    ) -> (Resp, AuditEntry) {
        let before = self.last_seq().await;
        let r = self.req(method, path, bearer, body).await;
        let mut fresh = self.new_entries(before).await;
        assert_eq!(
            fresh.len(),
            1,
            "{method} {path} ({}) must leave exactly one audit entry: {fresh:#?}",
            r.status
        );
        (r, fresh.remove(0))
    }
}

/// `template` with its `{name}` segments replaced by `params[name]`.
fn fill(template: &str, params: &BTreeMap<&str, String>) -> String {
    template
        .split('/')
        .map(
            |seg| match seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) => params
                    .get(name)
                    .cloned()
                    .unwrap_or_else(|| Uuid::nil().to_string()),
                None => seg.to_owned(),
            },
        )
        .collect::<Vec<_>>()
        .join("/")
}

/// The path parameters of `template` as the trail's target must show them.
fn target_of(template: &str, params: &BTreeMap<&str, String>) -> Value {
    let mut t = serde_json::Map::new();
    for seg in template.split('/') {
        if let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            let v = params
                .get(name)
                .cloned()
                .unwrap_or_else(|| Uuid::nil().to_string());
            t.insert(name.to_owned(), Value::String(v));
        }
    }
    Value::Object(t)
}

/// The methods that change something (the others are not recorded).
fn changes(method: &str) -> bool {
    !matches!(method, "GET" | "HEAD" | "OPTIONS")
}

/// The rule of a known route (fails when the route has none: the rule table changed).
#[track_caller]
fn rule(method: &str, path: &str) -> &'static Rule {
    rule_for(method, path).unwrap_or_else(|| panic!("no rule for {method} {path}"))
}

#[track_caller]
fn check_entry(e: &AuditEntry, rule: &Rule, target: &Value, r: &Resp) {
    let n = &e.entry;
    let what = format!("{} {} → {}: {n:#?}", rule.method, rule.path, r.status);
    assert_eq!(n.method, rule.method, "{what}");
    assert_eq!(n.route, rule.path, "{what}");
    assert_eq!(n.action, rule.action, "{what}");
    assert_eq!(&n.target, target, "{what}");
    assert_eq!(n.status, r.status.as_u16(), "{what}");
    assert_eq!(n.outcome, AuditOutcome::of_status(n.status), "{what}");
    assert!(
        n.peer
            .as_deref()
            .is_some_and(|p| p.starts_with("127.0.0.1")),
        "{what}"
    );
    if r.status.is_client_error() || r.status.is_server_error() {
        assert_eq!(n.error_code.as_deref(), r.body["code"].as_str(), "{what}");
    } else {
        assert_eq!(n.error_code, None, "{what}");
    }
    assert!((Utc::now() - n.at).num_seconds() < 60, "{what}");
}

/// The answer's error code is `code`. Codes of plain errors (`not_found`,
/// `bad_request`) come with the error-code work of issue 13; until an answer carries a
/// code at all, only a wrong one fails.
#[track_caller]
fn assert_code(r: &Resp, code: &str) {
    if let Some(c) = r.body["code"].as_str() {
        assert_eq!(c, code, "{}", r.text);
    }
}

/// A password no request may leave in the trail.
const PASSWORD: &str = "correct-horse-battery-staple-9";

// ---------------------------------------------------------------------------------
// Every state-changing route, refusals, secrets.

async fn every_change_is_recorded_once_and_without_secrets(db: Db) {
    let p = platform(db).await;
    let token = p.token().to_owned();
    let now = Utc::now();

    // Fixtures, made through the store or the agent API (neither is recorded).
    let web = p.enroll("web-1").await;
    let app = p.enroll("app-1").await;
    p.store
        .set_org_settings(
            p.org_id,
            &OrgSettings {
                require_approval: true,
            },
        )
        .await
        .unwrap();
    let pend_a = p.enroll("pend-a").await;
    let pend_b = p.enroll("pend-b").await;
    let key = |name: &str| {
        let secret = new_secret(ENROLLMENT_KEY_PREFIX);
        p.remember(secret.expose());
        NewEnrollmentKey {
            org_id: p.org_id,
            name: name.into(),
            key_hash: hash_secret(secret.expose()),
            expires_at: None,
            max_uses: None,
            now,
        }
    };
    let to_revoke = p
        .store
        .insert_enrollment_key(key("to-revoke"))
        .await
        .unwrap();
    let to_rotate = p
        .store
        .insert_enrollment_key(key("to-rotate"))
        .await
        .unwrap();
    let queued = p
        .store
        .queue_command(NewCommand {
            id: uuid::Uuid::new_v4(),
            signed: None,
            org_id: p.org_id,
            host_id: app,
            kind: "health_check".into(),
            params: json!({}),
            now,
            expires_at: now + chrono::Duration::hours(1),
        })
        .await
        .unwrap();
    assert!(p.trail().await.is_empty(), "fixtures are not recorded");

    // The known routes: parameters, body, the status they must answer, the details
    // they must record.
    type Known = (BTreeMap<&'static str, String>, Value, u16, Value);
    let mut known: BTreeMap<(&str, &str), Known> = BTreeMap::new();
    let params = |pairs: &[(&'static str, String)]| pairs.iter().cloned().collect();
    known.insert(
        ("POST", "/api/v1/hosts/{host}/revoke"),
        (
            params(&[("host", "web-1".into())]),
            Value::Null,
            200,
            json!({"host_id": web, "hostname": "web-1"}),
        ),
    );
    known.insert(
        ("POST", "/api/v1/hosts/{host}/approve"),
        (
            params(&[("host", pend_a.to_string())]),
            Value::Null,
            200,
            json!({"host_id": pend_a, "hostname": "pend-a", "approval": "approved"}),
        ),
    );
    known.insert(
        ("POST", "/api/v1/hosts/{host}/reject"),
        (
            params(&[("host", "pend-b".into())]),
            Value::Null,
            200,
            json!({"host_id": pend_b, "hostname": "pend-b", "approval": "rejected"}),
        ),
    );
    known.insert(
        ("POST", "/api/v1/enrollment-keys"),
        (
            BTreeMap::new(),
            json!({"name": "walk-key", "max_uses": 3}),
            201,
            json!({"name": "walk-key", "max_uses": 3}),
        ),
    );
    known.insert(
        ("POST", "/api/v1/enrollment-keys/{id}/revoke"),
        (
            params(&[("id", to_revoke.id.to_string())]),
            Value::Null,
            200,
            json!({"key_id": to_revoke.id, "name": "to-revoke"}),
        ),
    );
    known.insert(
        ("POST", "/api/v1/enrollment-keys/{id}/rotate"),
        (
            params(&[("id", to_rotate.id.to_string())]),
            json!({"grace_secs": 60}),
            201,
            json!({"key_id": to_rotate.id, "name": "to-rotate", "grace_secs": 60}),
        ),
    );
    known.insert(
        ("PUT", "/api/v1/settings"),
        (
            BTreeMap::new(),
            json!({"require_approval": false}),
            200,
            json!({"before": {"require_approval": true}, "after": {"require_approval": false}}),
        ),
    );
    known.insert(
        ("POST", "/api/v1/commands"),
        (
            BTreeMap::new(),
            json!({"host": "app-1", "kind": "install_updates",
                   "params": {"packages": [{"name": "openssl", "version": "3.0.15-1~deb12u1"}]}}),
            201,
            json!({"host_id": app, "hostname": "app-1", "operation": "install_updates",
                   "packages": ["openssl=3.0.15-1~deb12u1"]}),
        ),
    );
    known.insert(
        ("POST", "/api/v1/commands/{id}/cancel"),
        (
            params(&[("id", queued.id.to_string())]),
            Value::Null,
            200,
            json!({"command_id": queued.id, "host_id": app, "operation": "health_check"}),
        ),
    );
    known.insert(
        ("PUT", "/api/v1/agent-rollout"),
        (
            BTreeMap::new(),
            json!({"version": null, "canary_percent": null}),
            200,
            json!({"after": {"version": null, "canary_percent": null}}),
        ),
    );
    // Publishing needs a signed release; an empty one is rejected, and the rejection is
    // what must be recorded.
    known.insert(
        ("POST", "/api/v1/releases"),
        (BTreeMap::new(), json!({}), 400, json!({})),
    );

    let walked: Vec<&Rule> = RULES.iter().filter(|r| changes(r.method)).collect();
    assert!(
        walked.len() >= known.len(),
        "RULES lists the state-changing routes"
    );
    for k in known.keys() {
        rule(k.0, k.1);
    }
    let mut calls = 0usize;
    for r in &walked {
        let (params, body, status, details) = known.get(&(r.method, r.path)).cloned().unwrap_or((
            BTreeMap::new(),
            // A placeholder body a route added later may read; it carries a password
            // that must not reach the trail.
            json!({"name": "walker", "username": "walker", "password": PASSWORD,
                   "new_password": PASSWORD, "role": "viewer"}),
            0,
            Value::Null,
        ));
        let path = fill(r.path, &params);
        let body = match (&body, r.path.starts_with("/ui")) {
            (Value::Null, _) => None,
            (_, true) => Some((
                "application/x-www-form-urlencoded",
                format!("name=walker&username=walker&password={PASSWORD}").into_bytes(),
            )),
            (b, false) => Some(("application/json", b.to_string().into_bytes())),
        };
        let (resp, e) = p.recorded(r.method, &path, Some(&token), body).await;
        calls += 1;
        check_entry(&e, r, &target_of(r.path, &params), &resp);
        if r.path.starts_with("/api/") {
            assert_eq!(e.entry.org_id, Some(p.org_id), "{}", r.path);
            assert_ne!(
                e.entry.actor.kind, "anonymous",
                "{}: {:?}",
                r.path, e.entry.actor
            );
            assert!(e.entry.actor.name.contains("admin"), "{:?}", e.entry.actor);
            assert_eq!(
                e.entry.actor.user_id, None,
                "the organisation token has no user"
            );
        }
        if status != 0 {
            assert_eq!(
                resp.status.as_u16(),
                status,
                "{} {path}: {}",
                r.method,
                resp.text
            );
            // The details name what changed: every field given here, as given.
            for (k, v) in details.as_object().unwrap() {
                assert_eq!(&e.entry.details[k], v, "{} {}: {k}", r.method, r.path);
            }
        }
        if r.path == "/api/v1/enrollment-keys" {
            assert_eq!(e.entry.details["key_id"], resp.body["info"]["id"]);
        }
        if r.path == "/api/v1/enrollment-keys/{id}/rotate" {
            assert_eq!(e.entry.details["new_key_id"], resp.body["info"]["id"]);
        }
        if r.path == "/api/v1/commands" {
            assert_eq!(e.entry.details["command_id"], resp.body["id"]);
        }
        if r.path == "/api/v1/releases" {
            assert_eq!(e.entry.outcome, AuditOutcome::Rejected);
        }
    }

    // Refusals. An unknown token: 401, anonymous, no organisation.
    let bogus = format!("{TOKEN_PREFIX}{}", "0".repeat(64));
    p.remember(&bogus);
    let revoke = rule("POST", "/api/v1/hosts/{host}/revoke");
    let (r, e) = p
        .recorded("POST", "/api/v1/hosts/app-1/revoke", Some(&bogus), None)
        .await;
    calls += 1;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
    check_entry(&e, revoke, &json!({"host": "app-1"}), &r);
    assert_eq!(e.entry.outcome, AuditOutcome::Refused);
    assert_eq!(e.entry.org_id, None);
    assert_eq!(e.entry.actor.kind, "anonymous");

    // A viewer: 403, the viewer named.
    let (vera, vera_token) = p.user_token("vera", Role::Viewer, PASSWORD).await;
    let create = rule("POST", "/api/v1/enrollment-keys");
    let (r, e) = p
        .recorded(
            "POST",
            "/api/v1/enrollment-keys",
            Some(&vera_token),
            Some(("application/json", br#"{"name": "nope"}"#.to_vec())),
        )
        .await;
    calls += 1;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    check_entry(&e, create, &json!({}), &r);
    assert_eq!(e.entry.outcome, AuditOutcome::Refused);
    assert_eq!(e.entry.error_code.as_deref(), Some("forbidden"));
    assert_eq!(e.entry.actor.user_id, Some(vera));
    assert!(e.entry.actor.name.contains("vera"), "{:?}", e.entry.actor);
    assert_eq!(e.entry.org_id, Some(p.org_id));

    // A command the platform rejects: 400.
    let queue = rule("POST", "/api/v1/commands");
    let (r, e) = p
        .recorded(
            "POST",
            "/api/v1/commands",
            Some(&token),
            Some((
                "application/json",
                br#"{"host": "app-1", "kind": "run_shell", "params": {"cmd": "id"}}"#.to_vec(),
            )),
        )
        .await;
    calls += 1;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    check_entry(&e, queue, &json!({}), &r);
    assert_eq!(e.entry.outcome, AuditOutcome::Rejected);
    // The answer's code, as the answer gave it (every error has one: `bad_request`).
    assert_eq!(e.entry.error_code.as_deref(), r.body["code"].as_str());

    // Reading is not recorded.
    let before = p.last_seq().await;
    p.get("/api/v1/hosts", &token).await.ok();
    p.get("/api/v1/audit", &token).await.ok();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(p.last_seq().await, before, "GET requests are not recorded");

    // A wrong password at the dashboard's login, when there is one (recorded by the
    // dashboard itself).
    if PUBLIC
        .iter()
        .any(|(m, path)| *m == "POST" && *path == "/ui/login")
    {
        let wrong = format!("{PASSWORD}-wrong");
        p.remember(&wrong);
        let form = format!("username=vera&password={wrong}");
        let r = p
            .req(
                "POST",
                "/ui/login",
                None,
                Some(("application/x-www-form-urlencoded", form.into_bytes())),
            )
            .await;
        assert!(!r.status.is_success() || !r.text.contains(&wrong), "{r:?}");
    }

    // Every call above left its entry, and nothing else was written.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let trail = p.trail().await;
    let counted = trail.len();
    let login_entries = trail
        .iter()
        .filter(|e| e.entry.route == "/ui/login")
        .count();
    assert_eq!(
        counted - login_entries,
        calls,
        "one entry per call: {trail:#?}"
    );

    // No secret anywhere in the table.
    let dump = p.db.dump_audit_log().await;
    assert!(dump.contains("host.revoke") || dump.contains(&revoke.action.to_string()));
    assert!(dump.contains("vera"), "the dump holds the rows");
    let secrets = p.secrets.lock().unwrap().clone();
    assert!(secrets.len() >= 8, "{secrets:?}");
    let leaked = leaks(&dump, &secrets);
    assert!(
        leaked.is_empty(),
        "secrets in the audit trail: {leaked:?}\n{dump}"
    );

    // The search would see one: an entry planted with a key in its details is found.
    let planted = p.org.enrollment_key.expose().to_owned();
    p.store
        .append_audit(NewAuditEntry {
            org_id: Some(p.org_id),
            at: Utc::now(),
            actor: AuditActor {
                kind: "token".into(),
                id: None,
                name: "planted".into(),
                user_id: None,
            },
            peer: None,
            method: "POST".into(),
            route: "/planted".into(),
            action: "planted".into(),
            target: json!({}),
            details: json!({"oops": planted}),
            status: 200,
            outcome: AuditOutcome::Ok,
            error_code: None,
        })
        .await
        .unwrap();
    let dump = p.db.dump_audit_log().await;
    assert_eq!(leaks(&dump, &secrets).len(), 1, "the planted key is found");
    p.db.cleanup().await;
}

/// The secrets of `secrets` found in `text`: whole, or without their 4-character
/// prefix (a secret cut or re-prefixed is still found).
fn leaks(text: &str, secrets: &[String]) -> Vec<String> {
    secrets
        .iter()
        .filter(|s| {
            let core = if s.len() > 40 && s.as_bytes()[3] == b'_' {
                &s[4..]
            } else {
                s.as_str()
            };
            text.contains(core)
        })
        .cloned()
        .collect()
}

// ---------------------------------------------------------------------------------
// Reading the trail.

async fn the_trail_is_read_with_filters_and_pages(db: Db) {
    let p = platform(db).await;
    let token = p.token().to_owned();
    let (_, vera) = p.user_token("vera", Role::Viewer, PASSWORD).await;
    let (_, otto) = p.user_token("otto", Role::Operator, PASSWORD).await;
    let (_, aude) = p.user_token("aude", Role::Auditor, PASSWORD).await;
    p.enroll("web-1").await;

    // Some history: successes, rejections, refusals.
    for i in 0..7 {
        p.json(
            "POST",
            "/api/v1/enrollment-keys",
            &token,
            json!({"name": format!("k{i}")}),
        )
        .await
        .ok();
    }
    for _ in 0..3 {
        let r = p
            .json(
                "POST",
                "/api/v1/enrollment-keys",
                &vera,
                json!({"name": "x"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
    }
    for _ in 0..2 {
        let r = p
            .json(
                "POST",
                "/api/v1/commands",
                &token,
                json!({"host": "web-1", "kind": "nope"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
    }
    p.json(
        "PUT",
        "/api/v1/settings",
        &token,
        json!({"require_approval": true}),
    )
    .await
    .ok();
    p.req("POST", "/api/v1/hosts/web-1/revoke", Some(&token), None)
        .await
        .ok();
    // 14 entries; wait until all are written.
    for _ in 0..100 {
        if p.trail().await.len() >= 14 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stored = p.trail().await;
    assert_eq!(stored.len(), 14);

    // Who may read: owner (the organisation token), auditor; not viewer, operator.
    let all: Vec<Value> = p
        .get("/api/v1/audit?limit=1000", &token)
        .await
        .ok()
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(all.len(), 14);
    let seqs: Vec<i64> = all.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert_eq!(
        seqs,
        stored.iter().map(|e| e.seq).collect::<Vec<_>>(),
        "newest first"
    );
    assert_eq!(
        p.get("/api/v1/audit", &aude)
            .await
            .ok()
            .as_array()
            .unwrap()
            .len(),
        14
    );
    for (who, t) in [("viewer", &vera), ("operator", &otto)] {
        let r = p.get("/api/v1/audit", t).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{who}: {}", r.text);
        assert_eq!(r.body["code"], "forbidden", "{who}");
        let r = p.get(&format!("/api/v1/audit/{}", seqs[0]), t).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{who}");
    }

    // The wire record is the stored entry.
    let first = &stored[0].entry;
    assert_eq!(all[0]["action"], first.action);
    assert_eq!(all[0]["route"], first.route);
    assert_eq!(all[0]["outcome"], first.outcome.as_str());
    assert_eq!(all[0]["status"], first.status);
    assert_eq!(all[0]["target"], first.target);
    assert_eq!(all[0]["details"], first.details);
    assert_eq!(all[0]["actor"]["name"], first.actor.name);

    // Pages of 3 by the cursor: every entry once, in order; Link names the next page.
    let mut paged = Vec::new();
    let mut path = "/api/v1/audit?limit=3".to_owned();
    let mut pages = 0;
    loop {
        let r = p.get(&path, &token).await;
        let next = r.header("x-next-cursor").map(str::to_owned);
        let link = r.header("link").map(str::to_owned);
        let page = r.ok();
        let page = page.as_array().unwrap();
        assert!(page.len() <= 3);
        paged.extend(page.iter().map(|e| e["seq"].as_i64().unwrap()));
        pages += 1;
        match next {
            Some(c) => {
                let link = link.expect("a Link header beside X-Next-Cursor");
                assert!(
                    link.contains("rel=\"next\"") && link.contains("cursor="),
                    "{link}"
                );
                path = format!("/api/v1/audit?limit=3&cursor={c}");
            }
            None => break,
        }
        assert!(pages < 20, "the cursor does not end");
    }
    assert_eq!(paged, seqs, "every entry once, newest first");
    assert_eq!(pages, 5);

    // Filters, alone and with the cursor.
    let query = |q: String| {
        let p = &p;
        let token = token.clone();
        async move {
            let mut out = Vec::new();
            let mut path = format!("/api/v1/audit?limit=2&{q}");
            loop {
                let r = p.get(&path, &token).await;
                let next = r.header("x-next-cursor").map(str::to_owned);
                out.extend(r.ok().as_array().unwrap().iter().cloned());
                match next {
                    Some(c) => path = format!("/api/v1/audit?limit=2&{q}&cursor={c}"),
                    None => break,
                }
            }
            out
        }
    };
    let count = |keep: &dyn Fn(&Value) -> bool| all.iter().filter(|e| keep(e)).count();
    let refused = query("outcome=refused".into()).await;
    assert_eq!(refused.len(), 3);
    assert!(
        refused
            .iter()
            .all(|e| e["outcome"] == "refused" && e["status"] == 403)
    );
    let rejected = query("outcome=rejected".into()).await;
    assert_eq!(rejected.len(), 2);
    let create_action = rule("POST", "/api/v1/enrollment-keys").action;
    let prefix = create_action.split('.').next().unwrap().to_owned();
    let by_action = query(format!("action={prefix}")).await;
    assert_eq!(
        by_action.len(),
        count(&|e| e["action"].as_str().unwrap().starts_with(&prefix))
    );
    assert!(by_action.len() >= 10);
    let by_vera = query("actor=vera".into()).await;
    assert_eq!(by_vera.len(), 3);
    assert!(
        by_vera
            .iter()
            .all(|e| e["actor"]["name"].as_str().unwrap().contains("vera"))
    );
    let cut = stored[5].entry.at;
    let since = cut.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let later = query(format!("since={}", since.replace('+', "%2B"))).await;
    assert_eq!(
        later.len(),
        stored.iter().filter(|e| e.entry.at >= cut).count()
    );
    let earlier = query(format!("until={}", since.replace('+', "%2B"))).await;
    assert_eq!(
        later.len() + earlier.len(),
        14,
        "since and until split the trail"
    );

    // One entry; another organisation's is not shown.
    let one = p
        .get(&format!("/api/v1/audit/{}", seqs[3]), &token)
        .await
        .ok();
    assert_eq!(one, all[3]);
    let r = p.get("/api/v1/audit/999999", &token).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    assert_code(&r, "not_found");
    let other = create_org(p.store.as_ref(), "other").await.unwrap();
    p.remember(other.token.expose());
    p.json(
        "POST",
        "/api/v1/enrollment-keys",
        other.token.expose(),
        json!({"name": "theirs"}),
    )
    .await
    .ok();
    let mut theirs = None;
    for _ in 0..100 {
        let r = p
            .get("/api/v1/audit?limit=1", other.token.expose())
            .await
            .ok();
        if let Some(e) = r.as_array().unwrap().first() {
            theirs = e["seq"].as_i64();
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let theirs = theirs.expect("the other organisation's entry");
    let r = p.get(&format!("/api/v1/audit/{theirs}"), &token).await;
    assert_eq!(
        r.status,
        StatusCode::NOT_FOUND,
        "another organisation's entry: {}",
        r.text
    );
    let mine = p.get("/api/v1/audit?limit=1000", &token).await.ok();
    assert_eq!(
        mine.as_array().unwrap().len(),
        14,
        "not in this organisation's list"
    );

    // Bad input is a 400 that says what to do.
    for (q, code) in [
        ("cursor=not-a-cursor", "bad_cursor"),
        ("outcome=denied", "bad_request"),
        ("since=yesterday", "bad_request"),
        ("until=2026-13-01", "bad_request"),
    ] {
        let r = p.get(&format!("/api/v1/audit?{q}"), &token).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{q}: {}", r.text);
        assert_code(&r, code);
        assert!(
            r.body["error"].as_str().unwrap().len() > 20,
            "{q}: {}",
            r.text
        );
    }
    let r = p.get("/api/v1/audit/abc", &token).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    p.db.cleanup().await;
}
