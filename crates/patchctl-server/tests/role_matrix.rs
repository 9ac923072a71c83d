//! THE ROLE MATRIX: every rule of `access::rules::RULES` called over real TLS by one
//! user of every role (read-write tokens), by the organisation token, by a read-only
//! token and by nobody, with bodies that get past deserialisation where the route
//! takes one. A role the rule's need does not allow gets 403 `forbidden`; an allowed
//! one never gets 401 or 403; a read-only token gets 403 on every non-GET; nobody gets
//! 401.
//!
//! It also finds every route the platform's router serves, by reading the `.route(...)`
//! and `.nest(...)` calls of `crates/patchctl-server/src` (no route can be added
//! without a literal path there), and fails when one has neither a rule nor a place in
//! `PUBLIC`, or when a rule names no route; and it checks that a route without a rule
//! is refused for everyone (fail closed) on a router made here.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use axum::http::StatusCode;
use patchctl_proto::access::{Need, Role};
use patchctl_server::access::rules::{AGENT, PUBLIC, RULES, Rule, rule_for};
use serde_json::{Value, json};
use support::{Caller, PASSWORD, Platform, platform};
use uuid::Uuid;

// ---------------------------------------------------------------------------------
// The routes the router serves, read from the source.

/// `(METHOD, full path)` of every `.route(...)` in the server's source, with the
/// prefixes of the `.nest(...)` calls that mount its router.
fn served_routes() -> BTreeSet<(String, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut routes = BTreeSet::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let text: String = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        routes.extend(routes_in(&text));
    }
    routes
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The text of the call whose `(` is at `open`, up to its matching `)`.
fn call_args(text: &str, open: usize) -> &str {
    let mut depth = 0usize;
    let mut in_str = false;
    let bytes = text.as_bytes();
    for (i, &b) in bytes.iter().enumerate().skip(open) {
        match b {
            b'"' if i == 0 || bytes[i - 1] != b'\\' => in_str = !in_str,
            b'(' if !in_str => depth += 1,
            b')' if !in_str => {
                depth -= 1;
                if depth == 0 {
                    return &text[open + 1..i];
                }
            }
            _ => {}
        }
    }
    panic!("unbalanced call at {open}")
}

/// The first string literal of `s`.
fn first_literal(s: &str) -> Option<String> {
    let start = s.find('"')? + 1;
    let end = start + s[start..].find('"')?;
    Some(s[start..end].to_owned())
}

/// The name that owns a router chain at `pos`: the variable of the last
/// `let NAME = Router::new()` before it, else the enclosing function's name.
fn owner_at(text: &str, pos: usize) -> String {
    let before = &text[..pos];
    let new = before.rfind("Router::new()");
    if let Some(n) = new {
        let head = before[..n].trim_end();
        if let Some(h) = head.strip_suffix('=') {
            let name = h
                .trim_end()
                .rsplit(|c: char| !c.is_alphanumeric() && c != '_')
                .next()
                .unwrap_or("");
            let let_kw = h.trim_end().trim_end_matches(name).trim_end();
            if let_kw.ends_with("let") || let_kw.ends_with("mut") {
                return name.to_owned();
            }
        }
    }
    let f = before.rfind("fn ").expect("a route outside any function");
    before[f + 3..]
        .split(|c: char| !c.is_alphanumeric() && c != '_')
        .next()
        .unwrap()
        .to_owned()
}

/// The routes of one file: `.nest("P", X)` mounts the chain owned by `X` (a variable,
/// or a function `module::X()`) under `P`, nested prefixes compose.
fn routes_in(text: &str) -> Vec<(String, String)> {
    // owner -> (parent owner, prefix)
    let mut nests: BTreeMap<String, (String, String)> = BTreeMap::new();
    for (i, _) in text.match_indices(".nest(") {
        let args = call_args(text, i + 5);
        let Some(prefix) = first_literal(args) else {
            continue;
        };
        let target = args.rsplit(',').next().unwrap().trim();
        let target = target.trim_end_matches("()");
        let target = target.rsplit("::").next().unwrap().to_owned();
        nests.insert(target, (owner_at(text, i), prefix));
    }
    let prefix_of = |owner: &str| {
        let mut p = String::new();
        let mut cur = owner.to_owned();
        let mut hops = 0;
        while let Some((parent, pre)) = nests.get(&cur) {
            p = format!("{pre}{p}");
            cur = parent.clone();
            hops += 1;
            assert!(hops < 10, "nest cycle at {owner}");
        }
        p
    };
    let mut out = Vec::new();
    for (i, _) in text.match_indices(".route(") {
        let args = call_args(text, i + 6);
        let path = first_literal(args).expect("a route without a literal path");
        let full = format!("{}{path}", prefix_of(&owner_at(text, i)));
        for m in ["get", "post", "put", "delete", "patch"] {
            let found = args.match_indices(&format!("{m}(")).any(|(j, _)| {
                j == 0
                    || !args.as_bytes()[j - 1].is_ascii_alphanumeric()
                        && args.as_bytes()[j - 1] != b'_'
            });
            if found {
                out.push((m.to_uppercase(), full.clone()));
            }
        }
    }
    out
}

fn is_public(method: &str, path: &str) -> bool {
    PUBLIC
        .iter()
        .chain(AGENT)
        .any(|(a, b)| (*a == method && *b == path) || (*a == path && *b == method))
}

#[test]
fn every_route_behind_the_agent_gate_is_a_served_agent_route() {
    // The gate (`api/guard.rs`) picks its routes by template: a route renamed or
    // removed must not silently leave it.
    let served = served_routes();
    for path in patchctl_server::api::guard::DB_BOUND_AGENT_ROUTES {
        assert!(
            served.contains(&("POST".to_owned(), path.to_owned())),
            "{path} is in DB_BOUND_AGENT_ROUTES but no POST route serves it"
        );
    }
}

#[test]
fn every_served_route_has_a_rule_or_is_public_and_every_rule_a_route() {
    let served = served_routes();
    assert!(
        served.contains(&("GET".into(), "/api/v1/hosts".into()))
            && served.contains(&("POST".into(), "/api/v1/agent/heartbeat".into()))
            && served.contains(&("POST".into(), "/api/v1/tokens".into())),
        "the route reader is broken: {served:#?}"
    );
    let mut missing = Vec::new();
    for (m, p) in &served {
        if rule_for(m, p).is_none() && !is_public(m, p) {
            missing.push(format!("{m} {p}"));
        }
    }
    assert!(
        missing.is_empty(),
        "routes without an access rule (add them to access/rules.rs, PUBLIC or AGENT): {missing:#?}"
    );
    let stale: Vec<String> = RULES
        .iter()
        .filter(|r| !served.contains(&(r.method.to_owned(), r.path.to_owned())))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(
        stale.is_empty(),
        "rules that name no served route: {stale:#?}"
    );
    let mut seen = BTreeSet::new();
    for r in RULES {
        assert!(
            seen.insert((r.method, r.path)),
            "two rules for {} {}",
            r.method,
            r.path
        );
        assert!(
            !r.action.is_empty(),
            "{} {} has no action",
            r.method,
            r.path
        );
    }
}

#[test]
fn the_route_reader_sees_nests_and_method_chains() {
    let text = r#"
fn routes() -> Router<AppState> {
    let inner = Router::new()
        .route("/a/{id}", get(h::show).post(h::change))
        .route("/b", get(|| async { axum::Json(1) }).merge(post(h::x).layer(L)));
    Router::new()
        .route("/health", get(h::get_health))
        .nest("/api/v1", inner)
}
"#;
    let got: BTreeSet<_> = routes_in(text).into_iter().collect();
    let want: BTreeSet<(String, String)> = [
        ("GET", "/api/v1/a/{id}"),
        ("POST", "/api/v1/a/{id}"),
        ("GET", "/api/v1/b"),
        ("POST", "/api/v1/b"),
        ("GET", "/health"),
    ]
    .into_iter()
    .map(|(m, p)| (m.to_owned(), p.to_owned()))
    .collect();
    assert_eq!(got, want);
}

// ---------------------------------------------------------------------------------
// The matrix.

/// The path of `rule` for `caller`: `{user}` is the caller's own user on the routes
/// anyone may use on themselves (show, password), else a viewer made for the test;
/// every other parameter a value that names nothing (the handler answers 404 or 400,
/// which is past the authorisation).
fn path_for(rule: &Rule, caller: &Caller, target: &str) -> String {
    let own = caller
        .user
        .as_ref()
        .map(|u| u.username.clone())
        .unwrap_or_else(|| target.to_owned());
    let self_service = rule.path.ends_with("/password")
        || (rule.method == "GET" && rule.path.ends_with("/users/{user}"));
    let mut out = String::new();
    let mut rest = rule.path;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let end = start + rest[start..].find('}').unwrap();
        let name = rest[start + 1..end].trim_start_matches('*');
        out.push_str(&match name {
            "user" if self_service => own.clone(),
            "user" => target.to_owned(),
            "version" => "9.9.9".to_owned(),
            "target" => "x86_64-unknown-linux-musl".to_owned(),
            "product" => "patchctl-agent".to_owned(),
            _ => Uuid::new_v4().to_string(),
        });
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// A body that deserialises, for the routes that take one.
fn body_for(rule: &Rule) -> Option<Value> {
    if rule.method == "GET" {
        return None;
    }
    let p = rule.path.trim_start_matches("/api/v1");
    Some(match (rule.method, p) {
        ("POST", "/users") => json!({
            "username": format!("u{}", Uuid::new_v4().simple()),
            "role": "viewer",
            "password": PASSWORD,
        }),
        ("PUT", "/users/{user}/role") => json!({"role": "viewer"}),
        ("PUT", "/users/{user}/password") => json!({"password": PASSWORD}),
        ("POST", "/tokens") => json!({"name": "matrix"}),
        ("POST", "/commands") => json!({"host": Uuid::new_v4(), "kind": "health_check"}),
        ("POST", "/enrollment-keys") => json!({"name": "matrix"}),
        ("PUT", "/settings") => json!({"require_approval": false}),
        ("PUT", "/agent-rollout") => json!({"version": null}),
        ("POST", "/deployments") => json!({
            "name": "matrix", "manifest": "none", "groups": ["all"],
        }),
        _ => json!({}),
    })
}

/// Whether `caller` passes `rule`: its role allows the need, and a read-only token
/// only what reads (never a method other than GET: checked in the walk).
fn allowed(caller: &Caller, rule: &Rule) -> bool {
    let ok = caller.role.allows(rule.need) && (!caller.read_only || rule.need.read_only());
    assert!(
        !(ok && caller.read_only && rule.method != "GET"),
        "{} {} lets a read-only token change state (need {:?})",
        rule.method,
        rule.path,
        rule.need
    );
    ok
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rule_with_every_role() {
    let p: Platform = platform().await;
    let target = p.user("matrix-target", Role::Viewer).await;
    let mut failures = Vec::new();
    let mut calls = 0;
    for rule in RULES {
        if rule.path.starts_with("/ui") {
            continue; // the dashboard's sessions: see every_ui_rule_follows_the_matrix
        }
        let anon = p
            .req(
                rule.method,
                &path_for(rule, &p.callers[0], &target.username),
                None,
                body_for(rule).as_ref(),
            )
            .await;
        if anon.status != StatusCode::UNAUTHORIZED {
            failures.push(format!(
                "{} {} without a token: {} {}",
                rule.method, rule.path, anon.status, anon.text
            ));
        }
        for c in &p.callers {
            let path = path_for(rule, c, &target.username);
            let r = p
                .req(rule.method, &path, Some(&c.token), body_for(rule).as_ref())
                .await;
            calls += 1;
            let ok = if allowed(c, rule) {
                r.status != StatusCode::UNAUTHORIZED && r.status != StatusCode::FORBIDDEN
            } else {
                r.status == StatusCode::FORBIDDEN && r.code() == "forbidden"
            };
            if !ok {
                failures.push(format!(
                    "{} {} as {} (need {:?}, {}): {} {}",
                    rule.method,
                    path,
                    c.label,
                    rule.need,
                    if allowed(c, rule) {
                        "allowed"
                    } else {
                        "refused"
                    },
                    r.status,
                    r.text
                ));
            }
        }
    }
    assert!(calls >= 7 * 30, "only {calls} calls: is RULES complete?");
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_ui_rule_follows_the_matrix() {
    // The dashboard answers sessions, not tokens; its own browser tests log in. What
    // is checked here is that its rules are in the one table with a need and an
    // action, and that the need is one the matrix knows.
    for r in RULES.iter().filter(|r| r.path.starts_with("/ui")) {
        assert!(!r.action.is_empty(), "{} {}", r.method, r.path);
        let _ = Role::ALL.iter().filter(|role| role.allows(r.need)).count();
    }
}

#[test]
fn the_matrix_is_what_the_docs_say() {
    use Need::*;
    use Role::*;
    let table = [
        (Owner, [true, true, true, true, true]),
        (Admin, [true, true, true, false, true]),
        (Operator, [true, true, false, false, false]),
        (Viewer, [true, false, false, false, false]),
        (Auditor, [false, false, false, false, true]),
    ];
    for (role, row) in table {
        for (need, want) in [Read, Operate, Administer, Own, Audit].into_iter().zip(row) {
            assert_eq!(role.allows(need), want, "{role} {need:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_without_a_rule_is_refused_for_everyone() {
    use axum::body::Body;
    use tower::ServiceExt;
    let p = platform().await;
    assert!(rule_for("GET", "/api/v1/zz-no-rule").is_none());
    let state = patchctl_server::AppState::new(p.store.clone(), test_settings());
    let router = axum::Router::new()
        .route(
            "/api/v1/zz-no-rule",
            axum::routing::get(|| async { "reached" }),
        )
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            patchctl_server::access::authorize,
        ))
        .with_state(state);
    for c in &p.callers {
        let req = axum::http::Request::builder()
            .uri("/api/v1/zz-no-rule")
            .header("authorization", format!("Bearer {}", c.token))
            .body(Body::empty())
            .unwrap();
        let resp = router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = http_body_util::BodyExt::collect(resp.into_body())
            .await
            .unwrap()
            .to_bytes();
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        assert_eq!(status, StatusCode::FORBIDDEN, "{}: {body}", c.label);
        assert_eq!(body["code"], "no_access_rule", "{}: {body}", c.label);
    }
}

fn test_settings() -> patchctl_server::Settings {
    patchctl_server::Settings {
        metrics_history_len: 10,
        enroll_per_address_per_min: 1_000,
        enroll_per_key_per_min: 1_000,
        vuln_sync: false,
        ..patchctl_server::Settings::with_defaults(
            "127.0.0.1:0".parse().unwrap(),
            "sqlite::memory:",
            "unused",
            "unused",
        )
    }
}
