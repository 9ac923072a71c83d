//! The dashboard's vulnerabilities, commands, audit and administration pages, through
//! the real router on a real SQLite file with real sessions (login form, cookie, CSRF
//! token): each page renders real data for an owner, the filters and pages work, a
//! viewer sees no form and is refused on every POST, a POST without the CSRF token is
//! refused, and everything that came from an agent is escaped.

mod dash;

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use chrono::{Duration, Utc};
use dash::{Answer, User, form};
use patchctl_proto::access::Role;
use patchctl_proto::agent::{InstalledPackage, OsInfo, SystemInfo};
use patchctl_proto::command::{AvailableUpdate, CommandResult, ResultStatus};
use patchctl_proto::scan::{PackageRow, ScanState, ScanUpdates};
use patchctl_server::bootstrap::{OrgSecrets, create_org};
use patchctl_server::{AppState, Settings, app};
use patchctl_storage::{NewCommand, NewHost, NewUser, Storage};
use tower::ServiceExt;
use uuid::Uuid;

const PASSWORD: &str = "correct horse battery staple";
/// A host name an attacker controls (the agent sends it).
const EVIL_HOST: &str = "evil\"><script>alert('host')</script>";
/// A package name from the same agent.
const EVIL_PKG: &str = "pkg<img src=x onerror=alert(1)>";
/// Result text from the agent.
const EVIL_RESULT: &str = "done <script>alert('result')</script> & more";

struct Env {
    _dir: tempfile::TempDir,
    st: AppState,
    org: OrgSecrets,
    org_id: Uuid,
    evil_host: Uuid,
    good_host: Uuid,
}

fn system(hostname: &str) -> SystemInfo {
    SystemInfo {
        hostname: hostname.into(),
        kernel: "6.1.0-28-amd64".into(),
        os: OsInfo {
            id: "debian".into(),
            version_id: "12".into(),
            version_codename: "bookworm".into(),
            pretty_name: "Debian GNU/Linux 12 (bookworm)".into(),
            ..Default::default()
        },
        ..Default::default()
    }
}

fn row(name: &str, version: &str, src: &str) -> PackageRow {
    PackageRow::from_package(&InstalledPackage {
        name: name.into(),
        version: version.into(),
        arch: "amd64".into(),
        source_name: Some(src.into()),
        source_version: Some(version.into()),
        status: "installed".into(),
    })
}

fn state(hostname: &str, packages: Vec<PackageRow>) -> ScanState {
    let mut s = ScanState {
        system: system(hostname),
        package_manager: Some("dpkg".into()),
        packages,
        updates: Some(ScanUpdates {
            refreshed: true,
            updates: vec![AvailableUpdate {
                name: "openssh-server".into(),
                arch: "amd64".into(),
                current_version: Some("1:9.2p1-2+deb12u2".into()),
                candidate_version: "1:9.2p1-2+deb12u3".into(),
                origins: vec!["Debian-Security:12/stable-security".into()],
                security: true,
                advisories: vec![],
            }],
            removals: vec![],
            error: None,
        }),
    };
    s.canonicalize();
    s
}

fn record(id: &str, package: &str, severity: &str, fixed: Option<&str>) -> patchctl_vuln::Record {
    patchctl_vuln::Record {
        id: id.into(),
        aliases: vec![],
        summary: format!("{package}: a <b>flaw</b>"),
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
            status: match fixed {
                Some(v) => patchctl_vuln::Status::Fixed {
                    fixed_version: v.into(),
                },
                None => patchctl_vuln::Status::WillNotFix,
            },
            note: None,
            severity: None,
        }],
    }
}

async fn add_user(store: &dyn Storage, org_id: Uuid, name: &str, role: Role) {
    store
        .create_user(NewUser {
            org_id,
            username: name.into(),
            password_hash: patchctl_server::passwords::hash_password(PASSWORD).unwrap(),
            role,
            now: Utc::now(),
        })
        .await
        .unwrap();
}

/// A platform with an organisation, users of each role, two hosts (one with hostile
/// names), vulnerability records, 105 commands and a result with hostile text.
async fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("db.sqlite").display());
    let store = patchctl_storage::open(&url).await.unwrap();
    let org = create_org(store.as_ref(), "ui").await.unwrap();
    let key = store
        .enrollment_key_by_hash(&patchctl_server::auth::hash_secret(
            org.enrollment_key.expose(),
        ))
        .await
        .unwrap()
        .unwrap();
    let org_id = key.org_id;
    for (name, role) in [
        ("olivia", Role::Owner),
        ("adam", Role::Admin),
        ("oscar", Role::Operator),
        ("victor", Role::Viewer),
        ("audrey", Role::Auditor),
    ] {
        add_user(store.as_ref(), org_id, name, role).await;
    }
    store
        .import_vuln_records(
            "test",
            &[
                record(
                    "CVE-2024-6387",
                    "openssh",
                    "critical",
                    Some("1:9.2p1-2+deb12u3"),
                ),
                record("CVE-2024-0001", "bash", "low", None),
                record("CVE-2024-9999", EVIL_PKG, "medium", Some("2.0")),
            ],
            Utc::now(),
        )
        .await
        .unwrap();
    let now = Utc::now();
    let mut ids = Vec::new();
    for (i, name) in [EVIL_HOST, "good-1"].into_iter().enumerate() {
        let h = store
            .create_host(NewHost {
                org_id,
                enrollment_key_id: key.id,
                credential_hash: format!("cred-{i}"),
                agent_version: "1.0.0".into(),
                system: system(name),
                now,
            })
            .await
            .unwrap();
        let s = state(
            name,
            vec![
                row("openssh-server", "1:9.2p1-2+deb12u2", "openssh"),
                row("bash", "5.2.15-2", "bash"),
                row(EVIL_PKG, "1.0", EVIL_PKG),
            ],
        );
        store
            .put_scan(h.id, now, &s.digest(), &s, patchctl_storage::ScanKind::Full)
            .await
            .unwrap();
        ids.push(h.id);
    }
    for i in 0..105 {
        let c = store
            .queue_command(NewCommand {
                id: uuid::Uuid::new_v4(),
                signed: None,
                org_id,
                host_id: ids[i % 2],
                kind: if i % 3 == 0 {
                    "check_updates"
                } else {
                    "health_check"
                }
                .into(),
                params: serde_json::json!({}),
                now: now - Duration::seconds(200 - i as i64),
                expires_at: now + Duration::days(1),
            })
            .await
            .unwrap();
        if i == 0 {
            store
                .lease_commands(ids[0], now, std::time::Duration::from_secs(60), 10)
                .await
                .unwrap();
            let r = CommandResult {
                command_id: c.id,
                status: ResultStatus::Failed,
                summary: EVIL_RESULT.into(),
                started_at: now,
                finished_at: now,
                output: None,
            };
            store.record_result(ids[0], &r, now).await.unwrap();
        }
    }
    let settings: Settings = serde_json::from_value(serde_json::json!({
        "listen": "127.0.0.1:0",
        "database_url": url,
        "tls_cert": "unused",
        "tls_key": "unused",
        "vuln_feeds": [],
        "vuln_sync": false,
    }))
    .unwrap();
    Env {
        _dir: dir,
        st: AppState::new(store, settings),
        org,
        org_id,
        evil_host: ids[0],
        good_host: ids[1],
    }
}

/// An answer.
/// A logged-in browser: the session cookie and the CSRF token of its forms.
impl Env {
    async fn send(
        &self,
        method: &str,
        path: &str,
        cookie: Option<&str>,
        body: Option<String>,
    ) -> Answer {
        dash::send(&self.st, method, path, cookie, body).await
    }

    async fn login(&self, username: &str) -> User {
        dash::login(&self.st, username, PASSWORD, &["/ui/commands", "/ui/audit"]).await
    }

    /// Calls the operator API with a bearer token; the status.
    async fn api(&self, method: &str, path: &str, token: &str) -> StatusCode {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap();
        let peer: SocketAddr = "127.0.0.1:40001".parse().unwrap();
        req.extensions_mut().insert(ConnectInfo(peer));
        app(self.st.clone()).oneshot(req).await.unwrap().status()
    }

    async fn get(&self, u: &User, path: &str) -> Answer {
        self.send("GET", path, Some(&u.cookie), None).await
    }

    async fn get_ok(&self, u: &User, path: &str) -> String {
        let a = self.get(u, path).await;
        assert_eq!(a.status, StatusCode::OK, "GET {path}: {}", a.body);
        a.body
    }

    async fn post(&self, u: &User, path: &str, fields: &[(&str, &str)]) -> Answer {
        dash::post(&self.st, u, path, fields).await
    }

    /// The vulnerabilities page once the engine has correlated the fleet.
    async fn vulns_page(&self, u: &User, path: &str) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let body = self.get_ok(u, path).await;
            if !body.contains("engine-loading") {
                return body;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the engine did not load"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    async fn command_ids(&self, u: &User, path: &str) -> (Vec<String>, Option<String>) {
        let body = self.get_ok(u, path).await;
        let ids = body
            .match_indices("href=\"/ui/commands/")
            .map(|(i, _)| body[i + 19..i + 19 + 36].to_owned())
            .collect();
        let next = body
            .find("rel=\"next\"")
            .and_then(|_| body.find("href=\"/ui/commands?"))
            .map(|i| {
                let rest = &body[i + 6..];
                rest[..rest.find('"').unwrap()].replace("&amp;", "&")
            });
        (ids, next)
    }
}

/// `body` with the HTML character references decoded (`&#60;`, `&lt;`, `&#x3c;`).
fn unescape(body: &str) -> String {
    let mut out = String::with_capacity(body.len());
    let mut rest = body;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(end) = rest.find(';').filter(|e| *e < 10) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let name = &rest[1..end];
        let c = match name {
            "lt" => Some('<'),
            "gt" => Some('>'),
            "amp" => Some('&'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            n if n.starts_with("#x") => u32::from_str_radix(&n[2..], 16)
                .ok()
                .and_then(char::from_u32),
            n if n.starts_with('#') => n[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match c {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The agent's `text` is on the page, escaped: its decoded form is there and its raw
/// form is not.
fn assert_shown_escaped(body: &str, text: &str) {
    assert!(!body.contains(text), "{text:?} is not escaped in:\n{body}");
    assert!(
        unescape(body).contains(text),
        "{text:?} is not shown in:\n{body}"
    );
}

fn assert_escaped(body: &str) {
    assert!(
        !body.contains("<script>alert"),
        "unescaped script in:\n{body}"
    );
    assert!(!body.contains("<img src=x"), "unescaped img in:\n{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vulnerabilities_by_advisory_with_filters_and_hosts_per_advisory() {
    let e = env().await;
    let owner = e.login("olivia").await;
    let body = e.vulns_page(&owner, "/ui/vulns").await;
    assert!(body.contains("CVE-2024-6387"), "{body}");
    assert!(body.contains("CVE-2024-0001"));
    assert!(
        body.contains("id=\"vulnerable-hosts\">2<"),
        "both hosts are vulnerable"
    );
    assert!(
        body.contains("unfixed"),
        "the will-not-fix advisory says so"
    );
    assert_shown_escaped(&body, "openssh: a <b>flaw</b>");
    let critical = e.vulns_page(&owner, "/ui/vulns?severity=critical").await;
    assert!(critical.contains("CVE-2024-6387") && !critical.contains("CVE-2024-0001"));
    let search = e.vulns_page(&owner, "/ui/vulns?q=bash").await;
    assert!(search.contains("CVE-2024-0001") && !search.contains("CVE-2024-6387"));
    let kev = e.vulns_page(&owner, "/ui/vulns?kev=1").await;
    assert!(
        !kev.contains("CVE-2024-6387"),
        "nothing here is known exploited"
    );
    let bad = e.get(&owner, "/ui/vulns?severity=dreadful").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("choose one of critical"));

    let one = e.vulns_page(&owner, "/ui/vulns/CVE-2024-6387").await;
    assert!(one.contains(&format!("/ui/hosts/{}", e.evil_host)));
    assert!(one.contains(&format!("/ui/hosts/{}", e.good_host)));
    assert!(one.contains("1:9.2p1-2+deb12u2") && one.contains("1:9.2p1-2+deb12u3"));
    assert_shown_escaped(
        &one,
        "installed 1:9.2p1-2+deb12u2 < fixed 1:9.2p1-2+deb12u3",
    );
    assert_shown_escaped(&one, EVIL_HOST);
    let evil = e.vulns_page(&owner, "/ui/vulns/CVE-2024-9999").await;
    assert_shown_escaped(&evil, EVIL_PKG);
    assert_escaped(&evil);
    assert_escaped(&one);
    let none = e.vulns_page(&owner, "/ui/vulns/CVE-1999-0000").await;
    assert!(none.contains("No host of your organisation"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_without_data_is_unknown_never_zero() {
    let e = env().await;
    let store = e.st.store.clone();
    let key = store
        .enrollment_key_by_hash(&patchctl_server::auth::hash_secret(
            e.org.enrollment_key.expose(),
        ))
        .await
        .unwrap()
        .unwrap();
    let mut sys = system("stream-1");
    sys.os.id = "centos".into();
    sys.os.version_id = "9".into();
    sys.os.pretty_name = "CentOS Stream 9".into();
    let h = store
        .create_host(NewHost {
            org_id: e.org_id,
            enrollment_key_id: key.id,
            credential_hash: "cred-stream".into(),
            agent_version: "1.0.0".into(),
            system: sys,
            now: Utc::now(),
        })
        .await
        .unwrap();
    e.st.vulns.host_changed(e.org_id, h.id).await.unwrap();
    let owner = e.login("olivia").await;
    let body = e.vulns_page(&owner, "/ui/vulns").await;
    assert!(body.contains("id=\"without-data\""), "{body}");
    assert!(body.contains("1 hosts have no vulnerability data"));
    assert!(body.contains("their findings are unknown, not zero"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_filter_page_show_and_cancel() {
    let e = env().await;
    let owner = e.login("olivia").await;
    // every command once over the pages
    let (mut all, mut next) = e.command_ids(&owner, "/ui/commands").await;
    assert_eq!(all.len(), 100);
    let mut pages = 1;
    while let Some(n) = next {
        let (ids, more) = e.command_ids(&owner, &n).await;
        all.extend(ids);
        next = more;
        pages += 1;
    }
    assert_eq!(pages, 2);
    let distinct: std::collections::HashSet<&String> = all.iter().collect();
    assert_eq!((all.len(), distinct.len()), (105, 105));
    // filters
    let (failed, _) = e.command_ids(&owner, "/ui/commands?state=failed").await;
    assert_eq!(failed.len(), 1);
    let (checks, _) = e
        .command_ids(&owner, "/ui/commands?kind=check_updates")
        .await;
    assert_eq!(checks.len(), 35);
    let (on_good, _) = e.command_ids(&owner, "/ui/commands?host=good-1").await;
    assert_eq!(on_good.len(), 52);
    let bad = e.get(&owner, "/ui/commands?state=sleeping").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let bad = e.get(&owner, "/ui/commands?cursor=garbage").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("bad cursor"));
    let list = e.get_ok(&owner, "/ui/commands").await;
    assert_shown_escaped(&list, EVIL_HOST);

    // the failed one: every state change and the agent's text, escaped
    let failed = &failed[0];
    let one = e.get_ok(&owner, &format!("/ui/commands/{failed}")).await;
    assert_shown_escaped(&one, EVIL_RESULT);
    for s in ["queued", "delivered", "failed"] {
        assert!(
            one.contains(&format!("<span class=\"badge {s}\">{s}</span>")),
            "{s}: {one}"
        );
    }
    assert!(
        !one.contains("cancel-form"),
        "a failed command cannot be cancelled"
    );
    assert_escaped(&one);

    // cancel a queued one through the form
    let (queued, _) = e.command_ids(&owner, "/ui/commands?state=queued").await;
    let target = &queued[0];
    let page = e.get_ok(&owner, &format!("/ui/commands/{target}")).await;
    assert!(page.contains("cancel-form"));
    let a = e
        .post(&owner, &format!("/ui/commands/{target}/cancel"), &[])
        .await;
    assert!(a.status.is_redirection(), "{} {}", a.status, a.body);
    let page = e.get_ok(&owner, &format!("/ui/commands/{target}")).await;
    assert!(page.contains("id=\"state\">cancelled<"), "{page}");
    // cancelling again: the API's answer, as a page
    let again = e
        .post(&owner, &format!("/ui/commands/{target}/cancel"), &[])
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert!(again.body.contains("only queued commands can be cancelled"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_sees_no_forms_and_every_post_is_refused() {
    let e = env().await;
    let viewer = e.login("victor").await;
    let owner = e.login("olivia").await;
    let (queued, _) = e.command_ids(&viewer, "/ui/commands?state=queued").await;
    let target = &queued[0];
    let page = e.get_ok(&viewer, &format!("/ui/commands/{target}")).await;
    assert!(
        !page.contains("cancel-form"),
        "no cancel button for a viewer"
    );
    let a = e
        .post(&viewer, &format!("/ui/commands/{target}/cancel"), &[])
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.body);
    let page = e.get_ok(&owner, &format!("/ui/commands/{target}")).await;
    assert!(
        page.contains("id=\"state\">queued<"),
        "the viewer changed nothing"
    );
    // the audit log and the administration are not theirs
    assert_eq!(
        e.get(&viewer, "/ui/audit").await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        e.get(&viewer, "/ui/admin").await.status,
        StatusCode::FORBIDDEN
    );
    for (path, fields) in [
        (
            "/ui/admin/users",
            vec![
                ("username", "mallory"),
                ("password", PASSWORD),
                ("role", "owner"),
            ],
        ),
        ("/ui/admin/tokens", vec![("name", "mine")]),
        ("/ui/admin/keys", vec![("name", "mine")]),
    ] {
        let a = e.post(&viewer, path, &fields).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{path}: {}", a.body);
    }
    let admin = e.get_ok(&owner, "/ui/admin").await;
    assert!(!admin.contains("mallory"));
    // an auditor reads the audit log: refusals are there, filtered and paged
    for _ in 0..101 {
        let st = e
            .api(
                "POST",
                &format!("/api/v1/commands/{target}/cancel"),
                "not-a-token",
            )
            .await;
        assert_eq!(st, StatusCode::UNAUTHORIZED);
    }
    let auditor = e.login("audrey").await;
    let route = "POST /api/v1/commands/{id}/cancel";
    let refused = e.get_ok(&auditor, "/ui/audit?outcome=refused").await;
    assert_eq!(audit_rows(&refused), 100, "a full page");
    assert!(
        refused.contains(route) && refused.contains(target.as_str()),
        "{refused}"
    );
    let next = refused
        .find("href=\"/ui/audit?")
        .map(|i| {
            refused[i + 6..]
                .split('"')
                .next()
                .unwrap()
                .replace("&amp;", "&")
                .replace("&#38;", "&")
        })
        .expect("a link to the older entries");
    let older = e.get_ok(&auditor, &next).await;
    assert!(audit_rows(&older) >= 1 && older.contains(route), "{older}");
    let ok = e.get_ok(&auditor, "/ui/audit?outcome=ok").await;
    assert!(!ok.contains(route));
    let bad = e.get(&auditor, "/ui/audit?since=yesterday").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(!refused.contains(PASSWORD), "no password in the audit log");
}

/// Lines of the audit table.
fn audit_rows(body: &str) -> usize {
    let table = &body[body.find("id=\"audit\"").unwrap()..];
    let table = &table[..table.find("</table>").unwrap()];
    table.matches("<td class=\"num\">").count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_without_the_csrf_token_is_refused() {
    let e = env().await;
    let owner = e.login("olivia").await;
    let (queued, _) = e.command_ids(&owner, "/ui/commands?state=queued").await;
    let target = &queued[0];
    for body in [String::new(), form(&[("csrf", "0".repeat(64).as_str())])] {
        let a = e
            .send(
                "POST",
                &format!("/ui/commands/{target}/cancel"),
                Some(&owner.cookie),
                Some(body),
            )
            .await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.body);
    }
    let a = e
        .send(
            "POST",
            "/ui/admin/users",
            Some(&owner.cookie),
            Some(form(&[
                ("username", "forged"),
                ("password", PASSWORD),
                ("role", "owner"),
            ])),
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let page = e.get_ok(&owner, &format!("/ui/commands/{target}")).await;
    assert!(page.contains("id=\"state\">queued<"));
    assert!(!e.get_ok(&owner, "/ui/admin").await.contains("forged"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn administration_of_users_tokens_and_keys() {
    let e = env().await;
    let owner = e.login("olivia").await;
    let page = e.get_ok(&owner, "/ui/admin").await;
    for name in ["olivia", "victor", "audrey"] {
        assert!(page.contains(name));
    }
    assert!(page.contains("id=\"new-user\"") && page.contains("id=\"new-key\""));

    // a user, its role, disabling it
    let a = e
        .post(
            &owner,
            "/ui/admin/users",
            &[
                ("username", "nina"),
                ("password", PASSWORD),
                ("role", "operator"),
            ],
        )
        .await;
    assert!(a.status.is_redirection(), "{} {}", a.status, a.body);
    assert_eq!(a.location.as_deref(), Some("/ui/admin?done=user-created"));
    let nina = e.login("nina").await;
    assert_eq!(
        e.get(&nina, "/ui/admin").await.status,
        StatusCode::FORBIDDEN
    );
    let a = e
        .post(&owner, "/ui/admin/users/nina/role", &[("role", "admin")])
        .await;
    assert!(a.status.is_redirection(), "{}", a.body);
    assert_eq!(
        e.get(&nina, "/ui/admin").await.status,
        StatusCode::OK,
        "an admin now"
    );
    let short = e
        .post(
            &owner,
            "/ui/admin/users",
            &[
                ("username", "tiny"),
                ("password", "short"),
                ("role", "viewer"),
            ],
        )
        .await;
    assert_eq!(short.status, StatusCode::BAD_REQUEST, "{}", short.body);
    let a = e.post(&owner, "/ui/admin/users/nina/disable", &[]).await;
    assert!(a.status.is_redirection(), "{}", a.body);
    assert_ne!(
        e.get(&nina, "/ui/admin").await.status,
        StatusCode::OK,
        "her session ended"
    );

    // a token: shown once, works on the API, revoked stops working
    let a = e
        .post(
            &owner,
            "/ui/admin/tokens",
            &[("name", "ci <deploy>"), ("read_only", "1")],
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let secret = a.body[a.body.find("<pre id=\"secret\">").unwrap() + 17..]
        .split('<')
        .next()
        .unwrap()
        .to_owned();
    assert_shown_escaped(&a.body, "ci <deploy>");
    assert_eq!(e.api("GET", "/api/v1/hosts", &secret).await, StatusCode::OK);
    let page = e.get_ok(&owner, "/ui/admin").await;
    assert!(!page.contains(&secret), "the token is shown only once");
    let at = page
        .find("ci &#60;deploy&#62;")
        .or_else(|| page.find("ci &lt;deploy&gt;"))
        .unwrap();
    let rest = &page[at..];
    let i = rest.find("/ui/admin/tokens/").unwrap();
    let id = &rest[i + 17..i + 17 + 36];
    let a = e
        .post(&owner, &format!("/ui/admin/tokens/{id}/revoke"), &[])
        .await;
    assert!(a.status.is_redirection(), "{}", a.body);
    assert_eq!(
        e.api("GET", "/api/v1/hosts", &secret).await,
        StatusCode::UNAUTHORIZED
    );

    // an enrollment key: created, rotated (a new secret), revoked
    let a = e
        .post(
            &owner,
            "/ui/admin/keys",
            &[("name", "rack-7"), ("max_uses", "3")],
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert!(a.body.contains("enrollment key: rack-7"));
    let page = e.get_ok(&owner, "/ui/admin").await;
    let at = page.find("rack-7").unwrap();
    let rest = &page[at..];
    let i = rest.find("/ui/admin/keys/").unwrap();
    let id = rest[i + 15..i + 15 + 36].to_owned();
    let a = e
        .post(
            &owner,
            &format!("/ui/admin/keys/{id}/rotate"),
            &[("grace_hours", "")],
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert!(a.body.contains("id=\"secret\""));
    let bad = e
        .post(&owner, &format!("/ui/admin/keys/{id}/revoke"), &[])
        .await;
    assert!(bad.status.is_redirection(), "{}", bad.body);

    // a read-write token cancels a command through the API: the audit log names it
    let a = e
        .post(&owner, "/ui/admin/tokens", &[("name", "ci-rw")])
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let rw = a.body[a.body.find("<pre id=\"secret\">").unwrap() + 17..]
        .split('<')
        .next()
        .unwrap()
        .to_owned();
    let (queued, _) = e.command_ids(&owner, "/ui/commands?state=queued").await;
    let cancel = format!("/api/v1/commands/{}/cancel", queued[0]);
    assert_eq!(e.api("POST", &cancel, &rw).await, StatusCode::OK);
    let log = e.get_ok(&owner, "/ui/audit?action=command.cancel").await;
    assert_eq!(audit_rows(&log), 1, "{log}");
    assert!(
        log.contains("ci-rw") && log.contains("POST /api/v1/commands/{id}/cancel"),
        "{log}"
    );
    assert!(
        log.contains(queued[0].as_str()),
        "the target names the command: {log}"
    );
    assert!(
        !log.contains(&rw) && !log.contains(PASSWORD),
        "no secret in the audit log"
    );
    let none = e.get_ok(&owner, "/ui/audit?actor=nobody-at-all").await;
    assert!(none.contains("No entry matches."));
}

/// Reboots on the dashboard: the Reboots page lists the hosts needing one (why, since
/// when; agent text escaped), the host page carries the badge and the boot time, the
/// overview counts them, and the nav links the page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reboots_page_badge_and_overview_count() {
    let e = env().await;
    let store = e.st.store.clone();
    let now = Utc::now();
    let report = |why: &str| patchctl_storage::RebootReport {
        required: Some((true, vec![why.to_owned()])),
        booted_at: Some(now - Duration::hours(5)),
    };
    assert!(
        store
            .record_reboot_state(e.evil_host, &report(EVIL_RESULT), now)
            .await
            .unwrap()
    );
    let owner = e.login("olivia").await;
    let overview = e.get_ok(&owner, "/ui/").await;
    assert!(overview.contains("id=\"reboot-count\">1<"), "{overview}");
    assert!(overview.contains("href=\"/ui/reboots\""));
    let page = e.get_ok(&owner, "/ui/reboots").await;
    assert!(page.contains(&format!("href=\"/ui/hosts/{}\"", e.evil_host)));
    assert!(!page.contains(&format!("href=\"/ui/hosts/{}\"", e.good_host)));
    assert!(page.contains("id=\"reboot-total\">1<"), "{page}");
    assert_escaped(&page);
    assert_shown_escaped(&page, EVIL_RESULT);
    let host = e
        .get_ok(&owner, &format!("/ui/hosts/{}", e.evil_host))
        .await;
    assert!(host.contains("id=\"reboot-badge\""), "{host}");
    assert!(host.contains("id=\"booted-at\""));
    assert_shown_escaped(&host, EVIL_RESULT);
    let good = e
        .get_ok(&owner, &format!("/ui/hosts/{}", e.good_host))
        .await;
    assert!(!good.contains("id=\"reboot-badge\""));
    // The need ends: the host leaves the page and the count.
    let done = patchctl_storage::RebootReport {
        required: Some((false, Vec::new())),
        booted_at: Some(now),
    };
    store
        .record_reboot_state(e.evil_host, &done, now)
        .await
        .unwrap();
    let page = e.get_ok(&owner, "/ui/reboots").await;
    assert!(page.contains("No host needs a reboot."), "{page}");
    // A viewer may read it.
    let viewer = e.login("victor").await;
    e.get_ok(&viewer, "/ui/reboots").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compliance_and_exceptions_pages() {
    let e = env().await;
    let owner = e.login("olivia").await;
    let viewer = e.login("victor").await;
    // the engine loads in the background; the page answers 503 until then
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let page = loop {
        let a = e.get(&owner, "/ui/compliance").await;
        if a.status == StatusCode::OK {
            break a.body;
        }
        assert!(std::time::Instant::now() < deadline, "{}", a.body);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(page.contains("id=\"compliance\""), "{page}");
    assert!(
        page.contains("Nothing is overdue."),
        "first seen now: nothing overdue"
    );
    assert!(page.contains("id=\"policy\""));
    // the deadlines form (an administrator's)
    let a = e
        .post(
            &owner,
            "/ui/compliance/policy",
            &[
                ("critical_days", "5"),
                ("high_days", "30"),
                ("medium_days", "90"),
                ("low_days", "180"),
                ("kev_days", "10"),
                ("due_soon_days", "2"),
            ],
        )
        .await;
    assert!(a.status.is_redirection(), "{} {}", a.status, a.body);
    let page = e.get_ok(&owner, "/ui/compliance?done=policy-saved").await;
    assert!(page.contains("The deadline policy was saved."));
    assert!(
        page.contains("name=\"critical_days\" type=\"number\" min=\"1\" max=\"1825\" value=\"5\""),
        "{page}"
    );
    let bad = e
        .post(
            &owner,
            "/ui/compliance/policy",
            &[
                ("critical_days", "0"),
                ("high_days", "30"),
                ("medium_days", "90"),
                ("low_days", "180"),
                ("kev_days", "10"),
                ("due_soon_days", "2"),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.body);
    // the vulnerability and host pages show the due date and state
    let vuln = e.vulns_page(&owner, "/ui/vulns/CVE-2024-6387").await;
    assert!(
        vuln.contains("<th>Due</th>") && vuln.contains("state-open"),
        "{vuln}"
    );
    // an exception through the form: every host, 30 days
    let expires = (Utc::now() + Duration::days(30))
        .format("%Y-%m-%d")
        .to_string();
    let a = e
        .post(
            &owner,
            "/ui/exceptions",
            &[
                ("vuln_id", "CVE-2024-6387"),
                ("scope", "all"),
                ("host", ""),
                ("reason", "sshd is not reachable <b>here</b>"),
                ("owner", "olivia"),
                ("expires", &expires),
            ],
        )
        .await;
    assert_eq!(
        a.location.as_deref(),
        Some("/ui/exceptions?done=exception-created"),
        "{} {}",
        a.status,
        a.body
    );
    let list = e
        .get_ok(&owner, "/ui/exceptions?done=exception-created")
        .await;
    assert!(list.contains("The exception was created."));
    assert!(
        list.contains("every host") && list.contains(">active<"),
        "{list}"
    );
    assert!(!list.contains("<b>here</b>"), "the reason is escaped");
    let host = e
        .get_ok(&owner, &format!("/ui/hosts/{}", e.good_host))
        .await;
    assert!(host.contains("state-excepted"), "{host}");
    let vuln = e.get_ok(&owner, "/ui/vulns/CVE-2024-6387").await;
    assert!(vuln.contains("excepted until"), "{vuln}");
    // a viewer sees the list, no form, and is refused
    let seen = e.get_ok(&viewer, "/ui/exceptions").await;
    assert!(seen.contains("CVE-2024-6387") && !seen.contains("new-exception"));
    let id_at = list.find("/ui/exceptions/").expect("a revoke form") + 15;
    let id = list[id_at..id_at + 36].to_owned();
    let refused = e
        .post(&viewer, &format!("/ui/exceptions/{id}/revoke"), &[])
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    let refused = e
        .post(&viewer, "/ui/compliance/policy", &[("critical_days", "1")])
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    // revoked by the owner: the finding is open again
    let a = e
        .post(&owner, &format!("/ui/exceptions/{id}/revoke"), &[])
        .await;
    assert_eq!(
        a.location.as_deref(),
        Some("/ui/exceptions?done=exception-revoked")
    );
    let list = e.get_ok(&owner, "/ui/exceptions").await;
    assert!(list.contains(">revoked<"), "{list}");
    let host = e
        .get_ok(&owner, &format!("/ui/hosts/{}", e.good_host))
        .await;
    assert!(!host.contains("state-excepted"));
    // a bad date is refused with what to do
    let a = e
        .post(
            &owner,
            "/ui/exceptions",
            &[
                ("vuln_id", "CVE-2024-6387"),
                ("scope", "all"),
                ("reason", "r"),
                ("owner", "o"),
                ("expires", "soon"),
            ],
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.body.contains("YYYY-MM-DD"), "{}", a.body);
}
