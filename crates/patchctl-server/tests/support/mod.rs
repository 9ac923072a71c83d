//! A real platform over TLS 1.3 on loopback with a real SQLite file, one user per role
//! with a read-write token each, the organisation token and a read-only token: what
//! the role matrix and the users/tokens API tests share. Every test binary logs into
//! one buffer ([`log_text`]) so that a test can look for secrets in it.

#![allow(dead_code)]

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use axum::body::Bytes;
use axum::http::{Request, StatusCode};
use chrono::{DateTime, Utc};
use http_body_util::BodyExt;
use patchctl_proto::access::Role;
use patchctl_server::Settings;
use patchctl_server::auth::{TOKEN_PREFIX, hash_secret, new_secret};
use patchctl_server::bootstrap::create_org;
use patchctl_storage::{NewApiToken, NewUser, Storage, User};
use serde_json::Value;
use uuid::Uuid;

static LOG: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOG.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs the subscriber that writes every event (debug and up) into the buffer.
pub fn capture_logs() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(|| LogWriter)
            .init();
    });
}

/// Everything logged so far by this test binary.
pub fn log_text() -> String {
    String::from_utf8_lossy(&LOG.lock().unwrap()).into_owned()
}

/// One answer.
#[derive(Debug)]
pub struct Resp {
    /// Status.
    pub status: StatusCode,
    /// The body as JSON (`Null` when it is not JSON).
    pub body: Value,
    /// The body as text.
    pub text: String,
    /// `X-Next-Cursor`, on a list with more.
    pub next_cursor: Option<String>,
}

impl Resp {
    /// The error code of an error body.
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }
    /// The body of a success, or a panic that shows the answer.
    #[track_caller]
    pub fn ok(self) -> Value {
        assert!(self.status.is_success(), "{} {}", self.status, self.text);
        self.body
    }
}

/// A principal of the test organisation: its label and bearer token.
#[derive(Debug, Clone)]
pub struct Caller {
    /// `owner`, `admin`, ..., `org-token`, `read-only`.
    pub label: &'static str,
    /// The role it acts with.
    pub role: Role,
    /// True for the read-only token.
    pub read_only: bool,
    /// The bearer token.
    pub token: String,
    /// The user (none for the organisation token).
    pub user: Option<User>,
}

/// The running platform.
pub struct Platform {
    _dir: tempfile::TempDir,
    /// The command-signing key file the platform uses.
    pub key_file: PathBuf,
    /// Its address.
    pub addr: SocketAddr,
    ca: PathBuf,
    /// The same database, opened by the test.
    pub store: Arc<dyn Storage>,
    /// The organisation.
    pub org_id: Uuid,
    /// One per role (read-write token), then the organisation token and a read-only
    /// token of the owner.
    pub callers: Vec<Caller>,
    /// Every secret the test handled.
    pub secrets: Mutex<Vec<String>>,
}

/// The password every test user gets.
pub const PASSWORD: &str = "correct-horse-battery-staple";

/// Starts a platform with an organisation and its callers.
pub async fn platform() -> Platform {
    capture_logs();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("db.sqlite").display());
    let store = patchctl_storage::open(&url).await.unwrap();
    let pki = patchctl_net::ensure_dev_pki(
        &dir.path().join("pki"),
        &["localhost".into(), "127.0.0.1".into()],
    )
    .unwrap();
    let settings = Settings {
        metrics_history_len: 10,
        // Tests drive the policy tick themselves, on the clock they choose.
        policy_tick_secs: 86_400,
        enroll_per_address_per_min: 1_000,
        enroll_per_key_per_min: 1_000,
        vuln_sync: false,
        // The organisation's command-signing key, as a real platform keeps it.
        command_signing_key: Some(dir.path().join("command-signing.key")),
        ..Settings::with_defaults(
            "127.0.0.1:0".parse().unwrap(),
            url,
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
    let org = create_org(store.as_ref(), "matrix").await.unwrap();
    let org_id = store.org_by_name("matrix").await.unwrap().unwrap().id;
    let mut p = Platform {
        key_file: dir.path().join("command-signing.key"),
        _dir: dir,
        addr,
        ca: pki.ca_cert,
        store,
        org_id,
        callers: Vec::new(),
        secrets: Mutex::new(vec![
            org.token.expose().to_owned(),
            org.enrollment_key.expose().to_owned(),
            PASSWORD.to_owned(),
        ]),
    };
    for role in Role::ALL {
        let user = p.user(role.as_str(), role).await;
        let token = p.token(&user, false, None).await;
        p.callers.push(Caller {
            label: role.as_str(),
            role,
            read_only: false,
            token,
            user: Some(user),
        });
    }
    let owner = p.callers[0].user.clone().unwrap();
    let ro = p.token(&owner, true, None).await;
    p.callers.push(Caller {
        label: "org-token",
        role: Role::Owner,
        read_only: false,
        token: org.token.expose().to_owned(),
        user: None,
    });
    p.callers.push(Caller {
        label: "read-only",
        role: Role::Owner,
        read_only: true,
        token: ro,
        user: Some(owner),
    });
    p
}

impl Platform {
    /// Creates a user straight in the database (password [`PASSWORD`]).
    pub async fn user(&self, name: &str, role: Role) -> User {
        let hash = patchctl_server::passwords::hash_password(PASSWORD).unwrap();
        self.store
            .create_user(NewUser {
                org_id: self.org_id,
                username: name.to_owned(),
                password_hash: hash,
                role,
                now: Utc::now(),
            })
            .await
            .unwrap()
    }

    /// Creates a token of `user` straight in the database; returns the secret.
    pub async fn token(
        &self,
        user: &User,
        read_only: bool,
        expires_at: Option<DateTime<Utc>>,
    ) -> String {
        let secret = new_secret(TOKEN_PREFIX);
        self.store
            .insert_api_token(NewApiToken {
                org_id: self.org_id,
                user_id: Some(user.id),
                name: format!("{}-token", user.username),
                token_hash: hash_secret(secret.expose()),
                read_only,
                expires_at,
                now: Utc::now(),
            })
            .await
            .unwrap();
        self.remember(secret.expose());
        secret.expose().to_owned()
    }

    /// Remembers a secret, to look for it in the audit trail and the log.
    pub fn remember(&self, s: &str) {
        self.secrets.lock().unwrap().push(s.to_owned());
    }

    /// The caller labelled `label`.
    pub fn caller(&self, label: &str) -> &Caller {
        self.callers.iter().find(|c| c.label == label).unwrap()
    }

    /// One request over a new TLS connection.
    pub async fn req(
        &self,
        method: &str,
        path: &str,
        bearer: Option<&str>,
        body: Option<&Value>,
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
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        if let Some(b) = bearer {
            req = req.header("authorization", format!("Bearer {b}"));
        }
        let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let req = req
            .body(http_body_util::Full::new(Bytes::from(bytes)))
            .unwrap();
        let resp = sender.send_request(req).await.unwrap();
        let status = resp.status();
        let next_cursor = resp
            .headers()
            .get("x-next-cursor")
            .map(|v| v.to_str().unwrap().to_owned());
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp {
            status,
            body,
            text,
            next_cursor,
        }
    }
}
