//! The OpenAPI document as the real platform serves it (TLS on loopback, no token):
//! OpenAPI 3.1, and exactly the routes of the access rules (operator, public and agent
//! routes), with the same methods and paths, none missing and none extra. Every error
//! answer carries a machine code the document lists.

use std::collections::BTreeSet;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use patchctl_proto::trust::ErrorCode;
use patchctl_server::access::rules::{AGENT, PUBLIC, RULES};
use patchctl_server::{AppState, Settings};
use serde_json::Value;
use tower::ServiceExt;

fn settings(dir: &std::path::Path, cert: std::path::PathBuf, key: std::path::PathBuf) -> Settings {
    Settings {
        metrics_history_len: 10,
        enroll_per_address_per_min: 1_000,
        enroll_per_key_per_min: 1_000,
        vuln_sync: false,
        ..Settings::with_defaults(
            "127.0.0.1:0".parse().unwrap(),
            format!("sqlite://{}", dir.join("db.sqlite").display()),
            cert,
            key,
        )
    }
}

/// GET over real TLS 1.3 to the real server; status, content type and body.
async fn get_tls(
    addr: std::net::SocketAddr,
    ca: &std::path::Path,
    path: &str,
) -> (StatusCode, String, Vec<u8>) {
    let tls = patchctl_net::client_config(Some(ca)).unwrap();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
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
    let req = Request::builder()
        .method("GET")
        .uri(path)
        .header("host", "localhost")
        .body(http_body_util::Empty::<axum::body::Bytes>::new())
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    let status = resp.status();
    let ctype = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, ctype, bytes.to_vec())
}

/// The (METHOD, path) pairs of the document.
fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in ["get", "put", "post", "delete", "patch", "head", "options"] {
            if item.get(method).is_some() {
                out.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn the_served_document_is_openapi_3_1_and_names_exactly_the_routes_of_the_rules() {
    let dir = tempfile::tempdir().unwrap();
    let pki = patchctl_net::ensure_dev_pki(
        &dir.path().join("pki"),
        &["localhost".into(), "127.0.0.1".into()],
    )
    .unwrap();
    let settings = settings(dir.path(), pki.server_cert.clone(), pki.server_key.clone());
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(patchctl_server::launch_with_listener(
        settings,
        listener,
        std::future::pending(),
    ));

    // Public: no token.
    let (status, ctype, body) = get_tls(addr, &pki.ca_cert, "/api/v1/openapi.json").await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert!(ctype.starts_with("application/json"), "{ctype}");
    let doc: Value = serde_json::from_slice(&body).unwrap();
    let version = doc["openapi"].as_str().unwrap();
    assert!(version.starts_with("3.1."), "openapi {version}");

    let mut routes = BTreeSet::new();
    for r in RULES {
        assert!(
            routes.insert((r.method.to_owned(), r.path.to_owned())),
            "{} {} has two rules",
            r.method,
            r.path
        );
    }
    for (method, path) in PUBLIC.iter().chain(AGENT.iter()) {
        assert!(
            routes.insert(((*method).to_owned(), (*path).to_owned())),
            "{method} {path} listed twice"
        );
    }
    // The dashboard's pages are HTML for browsers, not part of the JSON API.
    routes.retain(|(_, path)| !path.starts_with("/ui") && *path != "/");
    let in_doc = documented(&doc);
    let missing: Vec<_> = routes.difference(&in_doc).collect();
    let extra: Vec<_> = in_doc.difference(&routes).collect();
    assert!(
        missing.is_empty(),
        "routes with an access rule but not in the OpenAPI document (add the handler to \
         `paths(...)` in api/openapi.rs): {missing:?}"
    );
    assert!(
        extra.is_empty(),
        "paths in the OpenAPI document that no access rule names: {extra:?}"
    );

    // Every operation of the operator API documents its error body, and the token.
    for (method, path) in &in_doc {
        let op = &doc["paths"][path][method.to_lowercase()];
        let responses = op["responses"].as_object().unwrap();
        let public = PUBLIC.iter().any(|(m, p)| m == method && p == path);
        let operator = RULES.iter().any(|r| r.method == method && r.path == path);
        if !public {
            // Every credential can be refused; a role only on the operator routes.
            let statuses: &[&str] = if operator { &["401", "403"] } else { &["401"] };
            for &status in statuses {
                let r = responses
                    .get(status)
                    .unwrap_or_else(|| panic!("{method} {path} does not document {status}"));
                let schema = &r["content"]["application/json"]["schema"]["$ref"];
                assert_eq!(
                    schema, "#/components/schemas/ApiErrorBody",
                    "{method} {path} {status}"
                );
            }
            assert!(
                op["security"].as_array().is_some_and(|s| !s.is_empty())
                    || doc["security"].as_array().is_some_and(|s| !s.is_empty()),
                "{method} {path} names no security scheme"
            );
        }
        if path.contains("{") {
            assert!(
                op["parameters"]
                    .as_array()
                    .is_some_and(|p| p.iter().any(|p| p["in"] == "path")),
                "{method} {path} does not document its path parameters"
            );
        }
    }
    // The list routes document the paging parameters and headers.
    for path in ["/api/v1/hosts", "/api/v1/commands"] {
        let op = &doc["paths"][path]["get"];
        let names: BTreeSet<&str> = op["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert!(
            names.contains("limit") && names.contains("cursor"),
            "{path}: {names:?}"
        );
        let headers = op["responses"]["200"]["headers"].as_object().unwrap();
        assert!(headers.contains_key("X-Next-Cursor") && headers.contains_key("Link"));
    }
    // The error codes are an enum of the document, with every code the platform sends.
    let codes: BTreeSet<&str> = doc["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .expect("ErrorCode is a string enum")
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    for c in ErrorCode::ALL {
        assert!(
            codes.contains(c.as_str()),
            "{} missing from {codes:?}",
            c.as_str()
        );
    }
}

async fn call(state: &AppState, method: &str, path: &str) -> (StatusCode, Value) {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .body(Body::empty())
        .unwrap();
    let resp = patchctl_server::app(state.clone())
        .oneshot(req)
        .await
        .unwrap();
    let status = resp.status();
    let ctype = resp.headers()["content-type"].to_str().unwrap().to_owned();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    assert!(
        ctype.starts_with("application/json"),
        "{method} {path}: {ctype}"
    );
    (status, serde_json::from_slice(&bytes).unwrap())
}

#[tokio::test]
async fn every_error_answer_is_json_with_a_stable_code() {
    let dir = tempfile::tempdir().unwrap();
    let s = settings(dir.path(), "unused".into(), "unused".into());
    let store = patchctl_storage::open(&s.database_url).await.unwrap();
    let state = AppState::new(store, s);
    let token = patchctl_server::bootstrap::create_org(state.store.as_ref(), "t")
        .await
        .unwrap()
        .token;
    let authed = |method: &str, path: &str| {
        Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {}", token.expose()))
            .body(Body::empty())
            .unwrap()
    };
    for (method, path, status, code) in [
        ("GET", "/nowhere", 404, "not_found"),
        ("GET", "/api/v1/hosts", 401, "unauthorized"),
        // Method not served on a path: was an empty body.
        ("DELETE", "/api/v1/health", 405, "method_not_allowed"),
    ] {
        let (got, body) = call(&state, method, path).await;
        assert_eq!(got.as_u16(), status, "{method} {path}: {body}");
        assert_eq!(body["code"], code, "{method} {path}: {body}");
        assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()));
    }
    for (path, status, code) in [
        // A query that does not parse: was axum's plain text.
        ("/api/v1/commands?limit=abc", 400, "bad_request"),
        ("/api/v1/hosts?limit=0", 400, "bad_request"),
        ("/api/v1/hosts?cursor=forged", 400, "bad_cursor"),
        ("/api/v1/hosts/nothere", 404, "not_found"),
        ("/api/v1/commands/not-a-uuid", 400, "bad_request"),
    ] {
        let resp = patchctl_server::app(state.clone())
            .oneshot(authed("GET", path))
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), status, "{path}");
        assert!(
            resp.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json"),
            "{path}"
        );
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let body: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body["code"], code, "{path}: {body}");
    }
    // A method an operator route does not serve is 405, not a refusal for a missing
    // access rule (schemathesis found PUT /api/v1/whoami answered 403 no_access_rule).
    for (method, path) in [("PUT", "/api/v1/whoami"), ("DELETE", "/api/v1/hosts")] {
        let resp = patchctl_server::app(state.clone())
            .oneshot(authed(method, path))
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 405, "{method} {path}");
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let body: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            body["code"], "method_not_allowed",
            "{method} {path}: {body}"
        );
    }
}
