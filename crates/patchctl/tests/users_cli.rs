//! Users and tokens with the real `patchctl` binary against `patchctl server --dev`
//! over real TLS: the printed dashboard login (kept across restarts), `whoami`,
//! `users add|list|show|set-role|disable|passwd` with passwords from a file or stdin,
//! `tokens create|list|revoke` with scope and expiry, refusals a viewer's token meets,
//! `admin init` making the first owner, and the completion scripts and man page.

// The harness starts the binary under test; the no-spawn rule is for agent code.
#![allow(clippy::disallowed_methods)]

mod common;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use common::wait_for;
use serde_json::Value;

fn patchctl() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_patchctl"))
}

/// The dev platform, stopped when dropped.
struct Platform {
    child: Child,
    dev: Value,
    stdout: PathBuf,
}

impl Drop for Platform {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(dir: &Path, first: bool) -> Platform {
    let mut cmd = Command::new(patchctl());
    cmd.args(["server", "--dev", "--no-agent", "--data-dir"])
        .arg(dir)
        .env("PATCHCTL_VULN_SYNC", "false");
    if first {
        cmd.args(["--listen", "127.0.0.1:0"]);
    }
    let stdout = dir.with_extension(if first { "stdout1" } else { "stdout2" });
    let child = cmd
        .stdin(Stdio::null())
        .stdout(fs::File::create(&stdout).unwrap())
        .stderr(fs::File::create(dir.with_extension("stderr")).unwrap())
        .spawn()
        .unwrap();
    let mut p = Platform {
        child,
        dev: Value::Null,
        stdout,
    };
    let dev: Value = wait_for("dev.json", 60, || {
        fs::read(dir.join("dev.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .filter(|v| v["admin_password"].is_string())
    });
    p.dev = dev;
    wait_for("the platform to answer", 60, || {
        p.cli(None, &["whoami"], None)
            .status
            .success()
            .then_some(())
    });
    p
}

impl Platform {
    fn cli(&self, token: Option<&str>, args: &[&str], stdin: Option<&str>) -> Output {
        let mut c = Command::new(patchctl());
        c.args(args)
            .env("PATCHCTL_SERVER", self.dev["url"].as_str().unwrap())
            .env(
                "PATCHCTL_TOKEN",
                token.unwrap_or(self.dev["token"].as_str().unwrap()),
            )
            .env("PATCHCTL_CA_FILE", self.dev["ca_file"].as_str().unwrap())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        let mut input = child.stdin.take().unwrap();
        if let Some(s) = stdin {
            input.write_all(s.as_bytes()).unwrap();
        }
        drop(input);
        child.wait_with_output().unwrap()
    }

    #[track_caller]
    fn ok(&self, token: Option<&str>, args: &[&str]) -> String {
        let out = self.cli(token, args, None);
        let e = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "patchctl {args:?} failed: {e}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    #[track_caller]
    fn json(&self, token: Option<&str>, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.extend(["--output", "json"]);
        let o = self.ok(token, &a);
        serde_json::from_str(&o).unwrap_or_else(|e| panic!("{args:?}: {e}: {o}"))
    }

    #[track_caller]
    fn fails(&self, token: Option<&str>, args: &[&str]) -> String {
        let out = self.cli(token, args, None);
        assert!(
            !out.status.success(),
            "patchctl {args:?} succeeded: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }
}

#[test]
fn dev_prints_a_login_and_users_and_tokens_work_from_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("dev");
    let p = start(&dir, true);
    let password = p.dev["admin_password"].as_str().unwrap().to_owned();
    assert!(password.len() >= 12);
    let printed = wait_for("the start-up text", 30, || {
        fs::read_to_string(&p.stdout)
            .ok()
            .filter(|s| s.contains("Dashboard login"))
    });
    assert!(printed.contains("/ui/"), "{printed}");
    assert!(printed.contains("User:           admin"), "{printed}");
    assert!(printed.contains(&password), "{printed}");

    // The organisation token acts as an owner.
    let me = p.json(None, &["whoami"]);
    assert_eq!(me["role"], "owner");
    assert_eq!(me["via"], "org_token");

    // Users: add with a password file and from stdin, list, show, set-role.
    let pwfile = tmp.path().join("pw");
    fs::write(&pwfile, "bob-password-0123456\n").unwrap();
    p.ok(
        None,
        &[
            "users",
            "add",
            "bob",
            "--role",
            "viewer",
            "--password-file",
            pwfile.to_str().unwrap(),
        ],
    );
    let out = p.cli(
        None,
        &[
            "users",
            "add",
            "carol",
            "--role",
            "operator",
            "--password-stdin",
        ],
        Some("carol-password-987654\n"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list = p.ok(None, &["users", "list"]);
    for w in ["admin", "owner", "bob", "viewer", "carol", "operator"] {
        assert!(list.contains(w), "{w}: {list}");
    }
    let e = p.fails(None, &["users", "add", "dan", "--role", "viewer"]);
    assert!(
        e.contains("--password-file") || e.contains("password"),
        "{e}"
    );
    let e = p.fails(
        None,
        &[
            "users",
            "add",
            "dan",
            "--role",
            "wizard",
            "--password-stdin",
        ],
    );
    assert!(
        e.contains("owner, admin, operator, viewer or auditor"),
        "{e}"
    );

    // Tokens: a read-only one for bob, made by the owner.
    let c = p.json(
        None,
        &[
            "tokens",
            "create",
            "--name",
            "bob-ro",
            "--user",
            "bob",
            "--read-only",
            "--expires",
            "7d",
        ],
    );
    let bob_tok = c["token"].as_str().unwrap().to_owned();
    assert_eq!(c["info"]["read_only"], true);
    let me = p.json(Some(&bob_tok), &["whoami"]);
    assert_eq!(me["role"], "viewer");
    assert_eq!(me["user"]["username"], "bob");
    assert_eq!(me["read_only"], true);
    assert!(p.ok(Some(&bob_tok), &["whoami"]).contains("read-only"));
    // A viewer's token can read, not change.
    p.ok(Some(&bob_tok), &["hosts", "list"]);
    let e = p.fails(
        Some(&bob_tok),
        &[
            "users",
            "add",
            "mallory",
            "--role",
            "owner",
            "--password-file",
            pwfile.to_str().unwrap(),
        ],
    );
    assert!(
        e.contains("403") || e.to_lowercase().contains("forbidden") || e.contains("not allowed"),
        "{e}"
    );
    let table = p.ok(None, &["tokens", "list", "--user", "bob"]);
    assert!(
        table.contains("bob-ro") && table.contains("read-only"),
        "{table}"
    );
    assert!(!table.contains(&bob_tok));
    // Revoked: it stops working.
    let id = c["info"]["id"].as_str().unwrap();
    let out = p.ok(None, &["tokens", "revoke", id]);
    assert!(out.contains("revoked"), "{out}");
    p.fails(Some(&bob_tok), &["whoami"]);

    // A token of carol's own, then carol changes her password from stdin.
    let c = p.json(
        None,
        &[
            "tokens",
            "create",
            "--name",
            "carol",
            "--user",
            "carol",
            "--expires",
            "never",
        ],
    );
    assert!(c["info"]["expires_at"].is_null());
    let carol = c["token"].as_str().unwrap().to_owned();
    let out = p.cli(
        Some(&carol),
        &["users", "passwd", "carol", "--password-stdin"],
        Some("carol-second-password-42\n"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = p.json(None, &["users", "set-role", "carol", "viewer"]);
    assert_eq!(s["role"], "viewer");
    p.json(None, &["users", "disable", "carol"]);
    p.fails(Some(&carol), &["whoami"]);
    let shown = p.json(None, &["users", "show", "carol"]);
    assert!(!shown["disabled_at"].is_null());

    // A second start reuses the login.
    drop(p);
    let p2 = start(&dir, false);
    assert_eq!(p2.dev["admin_password"].as_str().unwrap(), password);
}

#[test]
fn admin_init_makes_the_first_owner_once() {
    let tmp = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", tmp.path().join("db.sqlite").display());
    let run = |args: &[&str]| {
        Command::new(patchctl())
            .args(["admin", "init", "--database-url", &db])
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["--org", "acme", "--owner", "alice"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["owner"]["username"], "alice");
    assert!(v["owner"]["password"].as_str().unwrap().len() >= 12);
    assert!(v["token"].as_str().unwrap().starts_with("pct_"));
    let again = run(&["--org", "acme", "--owner", "bob"]);
    assert!(!again.status.success());
    let e = String::from_utf8_lossy(&again.stderr);
    assert!(
        e.contains("owner") && e.contains("patchctl users add"),
        "{e}"
    );
    // With a password file: the password is not printed.
    let pw = tmp.path().join("pw");
    fs::write(&pw, "a-long-enough-password\n").unwrap();
    let out = run(&[
        "--org",
        "beta",
        "--owner",
        "bea",
        "--password-file",
        pw.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("a-long-enough-password"), "{text}");
    // A short password is refused with the reason.
    fs::write(&pw, "short\n").unwrap();
    let out = run(&["--org", "gamma", "--password-file", pw.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("12"));
}

#[test]
fn completions_and_the_man_page() {
    for shell in ["bash", "zsh", "fish"] {
        let out = Command::new(patchctl())
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(out.status.success(), "{shell}");
        let s = String::from_utf8_lossy(&out.stdout);
        assert!(s.contains("tokens") && s.contains("whoami"), "{shell}: {s}");
    }
    let out = Command::new(patchctl()).arg("man").output().unwrap();
    assert!(out.status.success());
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(
        s.starts_with(".ie") || s.contains(".TH"),
        "not roff: {}",
        &s[..200.min(s.len())]
    );
    assert!(
        s.contains("users") && s.contains("set\\-role"),
        "man page misses commands"
    );
}
