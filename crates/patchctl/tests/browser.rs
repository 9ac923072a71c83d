//! The dashboard in a real browser: headless Chromium driven through WebDriver
//! (chromedriver on loopback, the WebDriver JSON written by hand) against a real platform
//! over TLS 1.3 (the development CA; Chromium trusts exactly the server's key through
//! `--ignore-certificate-errors-spki-list`, not every certificate) with a real
//! `patchctl-agent` process enrolled in it.
//!
//! Flows: log in; the overview and the host list show the host; open the host; queue
//! `health_check`, confirm, and see it succeed; a forged form without the CSRF token is
//! refused; logout ends the session on the server (the old cookie opens nothing); a
//! viewer sees no queue button and a forged queue form with a valid token is refused
//! all the same. A screenshot of each page goes to `$PATCHCTL_ARTIFACTS` (default
//! `target/ci-artifacts/screenshots`).

// The harness starts the binaries under test; the no-spawn rule is for agent code.
#![allow(clippy::disallowed_methods)]

mod common;

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use chrono::Utc;
use common::{agent_bin, wait_for};
use patchctl_proto::access::Role;
use patchctl_proto::policy::approvals::UpdateItem;
use patchctl_server::{Settings, passwords};
use patchctl_storage::{NewApprovals, NewUser};
use patchctl_testkit::{Harness, Need, find_program, trial};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

fn main() -> ExitCode {
    Harness::new()
        .test(trial!(browser_flows).needs([
            Need::Program("chromium"),
            Need::Program("chromedriver"),
            Need::File("/var/lib/dpkg/status"),
        ]))
        .run()
}

const ADMIN_PASSWORD: &str = "owner password for the browser test";
const VIEWER_PASSWORD: &str = "viewer password for the browser test";
/// The element key of WebDriver answers.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A child process killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(cmd: &mut Command, log: &Path) -> Proc {
    let f = fs::File::create(log).unwrap();
    Proc(
        cmd.stdin(Stdio::null())
            .stdout(f.try_clone().unwrap())
            .stderr(f)
            .spawn()
            .unwrap(),
    )
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One WebDriver request over a fresh loopback connection; the answer's `value`.
fn wd_http(port: u16, method: &str, path: &str, body: Option<&Value>) -> Value {
    let body = body.map(Value::to_string).unwrap_or_default();
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    // chromedriver keeps the connection open: read the head, then Content-Length bytes.
    let mut raw = Vec::new();
    let mut buf = [0u8; 65536];
    let (head, body_start) = loop {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "{method} {path}: chromedriver closed the connection");
        raw.extend_from_slice(&buf[..n]);
        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break (
                String::from_utf8_lossy(&raw[..i]).to_ascii_lowercase(),
                i + 4,
            );
        }
    };
    let payload = if let Some(len) = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
    {
        while raw.len() < body_start + len {
            let n = s.read(&mut buf).unwrap();
            assert!(n > 0, "{method} {path}: the answer was cut");
            raw.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&raw[body_start..body_start + len]).into_owned()
    } else {
        s.read_to_end(&mut raw).unwrap();
        let rest = String::from_utf8_lossy(&raw[body_start..]).into_owned();
        if head.contains("transfer-encoding: chunked") {
            dechunk(&rest)
        } else {
            rest
        }
    };
    let v: Value = serde_json::from_str(&payload)
        .unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {payload}"));
    let value = v["value"].clone();
    if let Some(err) = value.get("error").and_then(Value::as_str) {
        panic!("WebDriver {method} {path}: {err}: {}", value["message"]);
    }
    value
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// A WebDriver session of headless Chromium.
struct Browser {
    port: u16,
    session: String,
    shots: PathBuf,
    base: String,
}

impl Browser {
    fn cmd(&self, method: &str, what: &str, body: Option<Value>) -> Value {
        wd_http(
            self.port,
            method,
            &format!("/session/{}{what}", self.session),
            body.as_ref(),
        )
    }

    fn go(&self, path: &str) {
        self.cmd(
            "POST",
            "/url",
            Some(json!({"url": format!("{}{path}", self.base)})),
        );
    }

    fn url(&self) -> String {
        self.cmd("GET", "/url", None).as_str().unwrap().to_owned()
    }

    fn title(&self) -> String {
        self.cmd("GET", "/title", None).as_str().unwrap().to_owned()
    }

    fn source(&self) -> String {
        self.cmd("GET", "/source", None)
            .as_str()
            .unwrap()
            .to_owned()
    }

    fn all(&self, css: &str) -> Vec<String> {
        self.cmd(
            "POST",
            "/elements",
            Some(json!({"using": "css selector", "value": css})),
        )
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e[ELEMENT].as_str().unwrap().to_owned())
        .collect()
    }

    fn one(&self, css: &str) -> String {
        let found = self.all(css);
        assert!(
            !found.is_empty(),
            "no element {css:?} on {} ({})",
            self.url(),
            self.title()
        );
        found[0].clone()
    }

    fn click(&self, css: &str) {
        let e = self.one(css);
        self.cmd("POST", &format!("/element/{e}/click"), Some(json!({})));
    }

    fn type_in(&self, css: &str, text: &str) {
        let e = self.one(css);
        self.cmd("POST", &format!("/element/{e}/clear"), Some(json!({})));
        self.cmd(
            "POST",
            &format!("/element/{e}/value"),
            Some(json!({"text": text})),
        );
    }

    fn text(&self, css: &str) -> String {
        let e = self.one(css);
        self.cmd("GET", &format!("/element/{e}/text"), None)
            .as_str()
            .unwrap()
            .to_owned()
    }

    fn value(&self, css: &str) -> String {
        let e = self.one(css);
        self.cmd("GET", &format!("/element/{e}/property/value"), None)
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Saves a PNG of the window as `name.png` and checks it is one.
    fn shot(&self, name: &str) {
        let b64 = self.cmd("GET", "/screenshot", None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap())
            .unwrap();
        assert!(png.starts_with(b"\x89PNG"), "a screenshot is a PNG");
        let path = self.shots.join(format!("{name}.png"));
        fs::write(&path, png).unwrap();
        eprintln!("screenshot {}", path.display());
    }

    /// Waits until the page's title contains `what` (after a form post or a click).
    fn wait_title(&self, what: &str) {
        wait_for(&format!("a page titled {what:?}"), 30, || {
            self.title().contains(what).then_some(())
        });
    }

    fn login(&self, user: &str, password: &str) {
        self.go("/ui/login");
        self.type_in("#username", user);
        self.type_in("#password", password);
        self.click("#login");
        wait_for("the login to go through", 30, || {
            (!self.url().contains("/ui/login")).then_some(())
        });
    }

    /// Posts a form the page did not offer, as a forged one would be posted.
    fn forge(&self, action: &str, fields: &[(&str, &str)]) {
        let fields: Vec<Value> = fields.iter().map(|(k, v)| json!([k, v])).collect();
        self.cmd(
            "POST",
            "/execute/sync",
            Some(json!({
                "script": "const f = document.createElement('form'); f.method = 'post'; \
                    f.action = arguments[0]; \
                    for (const [k, v] of arguments[1]) { const i = document.createElement('input'); \
                    i.type = 'hidden'; i.name = k; i.value = v; f.appendChild(i); } \
                    document.body.appendChild(f); f.submit();",
                "args": [action, fields],
            })),
        );
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = std::panic::catch_unwind(|| {
            wd_http(
                self.port,
                "DELETE",
                &format!("/session/{}", self.session),
                None,
            )
        });
    }
}

/// base64(SHA-256(SubjectPublicKeyInfo)) of the server key: what
/// `--ignore-certificate-errors-spki-list` trusts (this key only).
fn spki_hash(key_pem: &Path) -> String {
    let pem = fs::read_to_string(key_pem).unwrap();
    let key = rcgen::KeyPair::from_pem(&pem).unwrap();
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(key.public_key_der()))
}

fn artifacts() -> PathBuf {
    let dir = std::env::var_os("PATCHCTL_ARTIFACTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/ci-artifacts/screenshots")
        });
    fs::create_dir_all(&dir).unwrap();
    dir
}

fn browser_flows() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // The platform, in this process, over real TLS on loopback.
    let pki = patchctl_net::devca::ensure_dev_pki(
        &dir.join("pki"),
        &["localhost".to_owned(), "127.0.0.1".to_owned()],
    )
    .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let database_url = format!("sqlite://{}", dir.join("db.sqlite").display());
    let (listener, port) = rt.block_on(async {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        (l, port)
    });
    let (key, hostname, org_id) = rt.block_on(async {
        let store = patchctl_storage::open(&database_url).await.unwrap();
        let now = Utc::now();
        let org = store.create_org("browser", now).await.unwrap();
        let key = patchctl_server::auth::new_secret(patchctl_server::auth::ENROLLMENT_KEY_PREFIX);
        store
            .create_enrollment_key(
                org.id,
                "browser",
                &patchctl_server::auth::hash_secret(key.expose()),
                now,
            )
            .await
            .unwrap();
        for (name, password, role) in [
            ("admin", ADMIN_PASSWORD, Role::Owner),
            ("viewer", VIEWER_PASSWORD, Role::Viewer),
        ] {
            store
                .create_user(NewUser {
                    org_id: org.id,
                    username: name.into(),
                    password_hash: passwords::hash_password(password).unwrap(),
                    role,
                    now,
                })
                .await
                .unwrap();
        }
        let hostname = fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
        (key.expose().to_owned(), hostname.trim().to_owned(), org.id)
    });
    let settings = Settings {
        heartbeat_interval_secs: 5,
        command_lease_secs: 60,
        metrics_history_len: 50,
        vuln_sync: false,
        policy_tick_secs: 1,
        enroll_per_address_per_min: 100,
        enroll_per_key_per_min: 100,
        ..Settings::with_defaults(
            format!("127.0.0.1:{port}").parse().unwrap(),
            database_url.clone(),
            pki.server_cert.clone(),
            pki.server_key.clone(),
        )
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = rt.spawn(patchctl_server::launch_with_listener(
        settings,
        listener,
        async {
            let _ = stopped.await;
        },
    ));
    let base = format!("https://localhost:{port}");

    // The real agent, enrolled with the key.
    let agent_dir = dir.join("agent");
    fs::create_dir_all(&agent_dir).unwrap();
    fs::set_permissions(&agent_dir, fs::Permissions::from_mode(0o700)).unwrap();
    let cfg = agent_dir.join("config.json");
    fs::write(
        &cfg,
        serde_json::to_vec_pretty(&json!({
            "server_url": base,
            "license_key": key,
            "ca_bundle": pki.ca_cert,
            "heartbeat_interval_secs": 5,
            "state_dir": agent_dir.join("state"),
        }))
        .unwrap(),
    )
    .unwrap();
    fs::set_permissions(&cfg, fs::Permissions::from_mode(0o600)).unwrap();
    let _agent = spawn(
        Command::new(agent_bin())
            .args(["run", "--config"])
            .arg(&cfg)
            .env("RUST_LOG", "info"),
        &dir.join("agent.log"),
    );

    // chromedriver and a headless Chromium that trusts the server's key only.
    let wd_port = free_port();
    let _driver = spawn(
        Command::new(find_program("chromedriver").unwrap()).arg(format!("--port={wd_port}")),
        &dir.join("chromedriver.log"),
    );
    wait_for("chromedriver to answer", 30, || {
        TcpStream::connect(("127.0.0.1", wd_port)).ok()
    });
    let profile = dir.join("chromium-profile");
    let caps = json!({"capabilities": {"alwaysMatch": {
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": find_program("chromium").unwrap(),
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,1000", "--no-first-run",
                format!("--user-data-dir={}", profile.display()),
                format!("--ignore-certificate-errors-spki-list={}", spki_hash(&pki.server_key)),
            ],
        },
    }}});
    let started = wd_http(wd_port, "POST", "/session", Some(&caps));
    let b = Browser {
        port: wd_port,
        session: started["sessionId"].as_str().unwrap().to_owned(),
        shots: artifacts(),
        base: base.clone(),
    };

    // Without a session, the dashboard is the login form.
    b.go("/");
    b.wait_title("Log in");
    assert!(b.url().contains("/ui/login?next=%2Fui%2F"), "{}", b.url());
    b.shot("01-login");
    // A wrong password is refused with the one answer.
    b.type_in("#username", "admin");
    b.type_in("#password", "not the password");
    b.click("#login");
    wait_for("the refusal", 30, || b.all("#error").first().cloned());
    assert_eq!(b.text("#error"), "wrong username or password");

    b.login("admin", ADMIN_PASSWORD);
    b.wait_title("Overview");
    assert_eq!(b.text("#whoami"), "admin");
    assert_eq!(b.text("#role"), "OWNER"); // shown in capitals by the stylesheet
    // The overview counts the agent's host once it has enrolled and reported.
    let t0 = Instant::now();
    wait_for("the host online on the overview", 60, || {
        b.go("/ui/");
        b.text("#by-status").contains("1 online").then_some(())
    });
    eprintln!("host online on the overview after {:?}", t0.elapsed());
    b.shot("02-overview");

    b.go("/ui/hosts");
    wait_for("the host in the list", 60, || {
        b.go("/ui/hosts");
        b.source().contains(&hostname).then_some(())
    });
    b.shot("03-hosts");
    b.click("a.host");
    b.wait_title(&hostname);
    assert_eq!(b.text("#status"), "online");
    let host_url = b.url();
    let host_path = host_url.strip_prefix(&base).unwrap().to_owned();
    b.shot("04-host");

    // Queue health_check: a confirmation page first, then the command runs.
    b.click("#queue-button");
    b.wait_title("Confirm health_check");
    b.shot("05-confirm");
    b.click("#confirm");
    wait_for("the queued notice", 30, || {
        b.all("#queued").first().cloned()
    });
    let t0 = Instant::now();
    wait_for("health_check to succeed on the host page", 90, || {
        let done = b
            .source()
            .contains("data-kind=\"health_check\" data-state=\"succeeded\"");
        if !done {
            std::thread::sleep(Duration::from_secs(1));
            b.go(&host_path);
        }
        done.then_some(())
    });
    eprintln!("health_check succeeded after {:?}", t0.elapsed());
    b.shot("06-host-health-check-succeeded");

    // A forged form without the CSRF token is refused, and says why.
    let queue_path = format!("{host_path}/commands");
    let commands_before = b.all("tr.command").len();
    b.forge(&queue_path, &[("kind", "health_check"), ("confirm", "yes")]);
    b.wait_title("403");
    assert!(b.text("#error").contains("CSRF"), "{}", b.text("#error"));
    b.shot("07-forged-form-refused");
    b.go(&host_path);
    assert_eq!(
        b.all("tr.command").len(),
        commands_before,
        "nothing was queued"
    );

    deployment_flow(&b, &rt, &database_url, org_id);

    // Logout ends the session on the server: the old cookie opens nothing.
    let old = b.cmd("GET", "/cookie/__Host-patchctl_session", None)["value"]
        .as_str()
        .unwrap()
        .to_owned();
    b.click("#logout");
    b.wait_title("Log in");
    assert!(b.text("#notice").contains("logged out"));
    b.shot("08-logged-out");
    b.cmd(
        "POST",
        "/cookie",
        Some(
            json!({"cookie": {"name": "__Host-patchctl_session", "value": old, "path": "/",
            "secure": true, "httpOnly": true, "sameSite": "Strict"}}),
        ),
    );
    b.go("/ui/hosts");
    b.wait_title("Log in");

    // A viewer sees the host but no queue button, and a forged queue form with the
    // viewer's own valid token is refused all the same.
    b.login("viewer", VIEWER_PASSWORD);
    b.go(&host_path);
    b.wait_title(&hostname);
    assert!(
        b.all("#queue-button").is_empty(),
        "a viewer has no queue button"
    );
    assert!(!b.all("#no-queue").is_empty());
    assert_eq!(b.text("#role"), "VIEWER");
    b.shot("09-viewer-host");
    let csrf = b.value("input[name=csrf]");
    b.forge(
        &queue_path,
        &[
            ("kind", "health_check"),
            ("confirm", "yes"),
            ("csrf", &csrf),
        ],
    );
    b.wait_title("403");
    assert!(b.text("#error").contains("viewer"), "{}", b.text("#error"));
    b.shot("10-viewer-refused");

    drop(b);
    let _ = stop.send(());
    let _ = rt.block_on(server);
}

/// A deployment made and watched in the browser: a manifest frozen on the Manifests page
/// from an approval of a package this machine does not have (so that nothing is
/// installed on the machine running the test), a deployment created on the Deployments
/// page, then its page followed while the real agent runs the baseline `health_check`
/// and the install fails: the deployment halts and says why, per ring and host.
fn deployment_flow(b: &Browser, rt: &tokio::runtime::Runtime, database_url: &str, org: Uuid) {
    rt.block_on(async {
        let store = patchctl_storage::open(database_url).await.unwrap();
        let host = store.list_hosts(org).await.unwrap().remove(0);
        let all = store.group_by_name(org, "all").await.unwrap().unwrap();
        store
            .approve(
                org,
                &NewApprovals {
                    group_id: all.id,
                    items: vec![UpdateItem {
                        ecosystem: patchctl_server::policy::approvals::host_ecosystem(&host),
                        name: "patchctl-browser-absent".into(),
                        version: "1.0".into(),
                    }],
                    rule: None,
                    actor: "browser test".into(),
                    now: Utc::now(),
                },
            )
            .await
            .unwrap();
    });
    b.go("/ui/manifests");
    b.wait_title("Manifests");
    b.type_in("#new-manifest input[name=name]", "browser-m");
    b.click("#new-manifest button");
    wait_for("the manifest in the list", 30, || {
        b.source().contains("browser-m").then_some(())
    });
    b.go("/ui/deployments");
    b.wait_title("Deployments");
    b.type_in("#new-deployment input[name=name]", "browser-d");
    b.type_in("#new-deployment input[name=rings]", "50,100");
    b.click("#new-deployment button");
    wait_for("the new deployment", 30, || {
        b.source().contains("browser-d").then_some(())
    });
    if b.all("#state").is_empty() {
        b.click("a[href^='/ui/deployments/']");
    }
    let page = b.url().strip_prefix(&b.base).unwrap().to_owned();
    let t0 = Instant::now();
    wait_for("the deployment to halt on its page", 120, || {
        b.go(&page);
        (b.text("#state") == "halted").then_some(())
    });
    eprintln!("deployment halted after {:?}", t0.elapsed());
    let reason = b.text("#reason");
    assert!(
        reason.contains("ring canary") && reason.contains("install failed"),
        "{reason}"
    );
    let hosts = b.text("table.hosts");
    assert!(hosts.contains("failed"), "{hosts}");
    let rings = b.text("table.rings");
    assert!(
        rings.contains("skipped"),
        "the second ring installs nothing: {rings}"
    );
    assert!(
        b.text("table.events").contains("halted"),
        "the transitions are shown"
    );
    b.shot("07b-deployment-halted");
}
